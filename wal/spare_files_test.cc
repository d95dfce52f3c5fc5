// Spare files (preallocate_segments, recycle_segments): segments start in
// spares, a crash in a spare loses nothing, recycled stale bytes are never
// replayed, leftovers are reused or deleted.

#include "wal/segmented_wal_test_harness.h"

namespace segwal {
namespace {

// ===================== Spare files (preallocation, recycling) ===============

// Copies a Snapshot into `dir` (as a crash would leave the files, with
// everything the WAL had written so far).
void RestoreSnapshot(Env* env, const std::string& dir,
                     const std::map<std::string, std::string>& files) {
  ASSERT_OK(env->CreateDirIfMissing(dir));
  for (const auto& [name, bytes] : files) {
    ASSERT_OK_AND_ASSIGN(auto f, env->NewWritableFile(dir + "/" + name));
    ASSERT_OK(f->Append(bytes));
    ASSERT_OK(f->Close());
  }
}

size_t CountSpares(Env* env, const std::string& dir) {
  size_t n = 0;
  auto children = env->GetChildren(dir);
  if (!children.ok()) return 0;
  for (const std::string& c : *children) {
    if (c.rfind("spare-", 0) == 0) n++;
  }
  return n;
}

TEST_P(SegmentedWalEnvTest, SegmentsStartInSparesAndCloseLeavesNoSpareBytes) {
  const SegmentedWalOptions o = InlineSpares(Options(), 8192);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    // The first segment is written in place into an 8 KiB zero-filled file.
    EXPECT_EQ(FileSize(SegmentPath(1)), 8192u);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 200, 100, &expected));
    ASSERT_OK(wal->Sync());
    EXPECT_GE(wal->GetStats().segments_from_spares, 3u);
    ASSERT_OK_AND_ASSIGN(segs, wal->ListSegments());
    ASSERT_GE(segs.size(), 3u);
    // Sealed segments end at their footer; the active one is a whole spare.
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      EXPECT_EQ(FileSize(segs[i].path), segs[i].file_size) << segs[i].path;
      EXPECT_LT(segs[i].file_size, 8192u + 1024);
    }
    EXPECT_EQ(FileSize(segs.back().path), 8192u);
    EXPECT_EQ(CountSpares(env_, dir_), 0u);  // in line: made at the roll
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
  // A clean close cuts the active segment after its last record.
  EXPECT_LT(FileSize(segs.back().path), 8192u);
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 100, 100, &expected));
  ASSERT_OK(wal->Sync());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_P(SegmentedWalEnvTest, NoSparesWhenPreallocationIsOff) {
  SegmentedWalOptions o = SmallSegments(4096);
  o.preallocate_segments = false;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 200, 100, &expected));
  ASSERT_OK(wal->Sync());
  ASSERT_OK(wal->TruncateBefore(100).status());
  EXPECT_EQ(CountSpares(env_, dir_), 0u);
  const WalStats s = wal->GetStats();
  EXPECT_EQ(s.segments_from_spares, 0u);
  EXPECT_EQ(s.spares_zero_filled + s.spares_recycled, 0u);
  ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
  for (const SegmentMeta& m : segs) {
    EXPECT_EQ(FileSize(m.path), m.file_size);
  }
}

// A crash while the active segment sits in a zero-filled spare: the zeros
// after the last record are a clean end, in every mode.
TEST_F(SegmentedWalTest, CrashInAZeroFilledSpareLosesNothingInAnyMode) {
  std::vector<WalRecord> expected;
  std::map<std::string, std::string> crashed;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(InlineSpares(Options(), 8192)));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 70, 100, &expected));
    ASSERT_OK(wal->Sync());
    crashed = Snapshot(dir_);
  }
  for (RecoveryMode mode :
       {RecoveryMode::kTolerateCorruptedTail, RecoveryMode::kAbsoluteConsistency,
        RecoveryMode::kPointInTimeRecovery,
        RecoveryMode::kSkipAnyCorruptedRecords}) {
    SCOPED_TRACE(static_cast<int>(mode));
    const std::string dir = other_dir_ + std::to_string(static_cast<int>(mode));
    ASSERT_NO_FATAL_FAILURE(RestoreSnapshot(env_, dir, crashed));
    SegmentedWalOptions o = InlineSpares(Options(), 8192);
    o.wal_dir = dir;
    o.recovery_mode = mode;
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    EXPECT_EQ(wal->recovery_report().records_recovered, expected.size());
    for (const RecoveryDrop& d : wal->recovery_report().drops) {
      EXPECT_THAT(d.reason, HasSubstr("zero fill")) << d.file;
    }
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
}

// A recycled segment keeps its old records after the new ones: under the new
// salt they are stale bytes, which recovery cuts as a torn tail and never
// returns.
TEST_F(SegmentedWalTest, RecycledSegmentsStaleBytesAreNeverReplayed) {
  SegmentedWalOptions o = InlineSpares(Options(), 4096);
  o.recycle_segments = 2;
  std::vector<WalRecord> all, expected;
  std::map<std::string, std::string> crashed;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 100, 100, &all));
    ASSERT_OK(wal->Sync());
    ASSERT_OK_AND_ASSIGN(TruncateResult t, wal->TruncateBefore(wal->next_lsn()));
    ASSERT_GE(t.segments_deleted, 2u);
    EXPECT_EQ(wal->GetStats().spares_recycled, 2u);  // the pool is empty
    EXPECT_EQ(CountSpares(env_, dir_), 2u);
    // Roll until both recycled spares were used, then "crash" with a few
    // records in the second.
    const uint64_t used_before = wal->GetStats().segments_from_spares;
    const uint64_t zero_filled = wal->GetStats().spares_zero_filled;
    while (wal->GetStats().segments_from_spares < used_before + 2) {
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 1, 100, &all));
    }
    EXPECT_EQ(wal->GetStats().spares_zero_filled, zero_filled);  // recycled
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, 100, &all));
    ASSERT_OK(wal->Sync());
    ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
    // The active file is longer than its records: old records follow them.
    EXPECT_GT(FileSize(segs.back().path), segs.back().file_size / 2);
    for (const WalRecord& r : all) {
      if (r.lsn >= segs.front().first_lsn) expected.push_back(r);
    }
    crashed = Snapshot(dir_);
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
  ASSERT_NO_FATAL_FAILURE(RestoreSnapshot(env_, other_dir_, crashed));
  o.wal_dir = other_dir_;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 50, 100, &expected));
  ASSERT_OK(wal->Sync());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, AbsoluteConsistencyNeverRecycles) {
  SegmentedWalOptions o = InlineSpares(Options(), 4096);
  o.recovery_mode = RecoveryMode::kAbsoluteConsistency;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 100, 100, &expected));
  ASSERT_OK(wal->Sync());
  ASSERT_OK_AND_ASSIGN(TruncateResult t, wal->TruncateBefore(wal->next_lsn()));
  EXPECT_GE(t.segments_deleted, 2u);
  EXPECT_EQ(wal->GetStats().spares_recycled, 0u);
  EXPECT_LE(CountSpares(env_, dir_), 1u);  // at most the zero-filled one
}

TEST_F(SegmentedWalTest, LeftoverSparesAreReusedOrDeleted) {
  ASSERT_OK(env_->CreateDirIfMissing(dir_));
  // Garbage, as a crash may leave a half-written or recycled spare.
  for (int i = 1; i <= 4; ++i) {
    WriteAll(dir_ + "/spare-0000000000000000000" + std::to_string(i) + ".tmp",
             rnd_.RandomBytes(6000));
  }
  SegmentedWalOptions o = InlineSpares(Options(), 4096);
  o.recycle_segments = 1;
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    // One kept (and used for the first segment), the rest deleted.
    EXPECT_EQ(wal->GetStats().spares_zero_filled, 0u);
    EXPECT_EQ(wal->GetStats().segments_from_spares, 1u);
    EXPECT_EQ(CountSpares(env_, dir_), 0u);
    EXPECT_EQ(FileSize(SegmentPath(1)), 6000u);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 10, 100, &expected));
    ASSERT_OK(wal->Sync());
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  // New spares do not reuse the names of the deleted ones' ids.
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 60, 100, &expected));
  ASSERT_OK(wal->Sync());
  auto children = env_->GetChildren(dir_);
  ASSERT_OK(children.status());
  for (const std::string& c : *children) {
    if (c.rfind("spare-", 0) == 0) {
      EXPECT_GT(c, "spare-00000000000000000004.tmp");
    }
  }
}

// io_uring writes (POSIX): the same log, byte for byte readable, across rolls,
// spares and a reopen; when the kernel allows io_uring, it was used.
TEST_P(SegmentedWalEnvTest, IoUringWritesTheSameLog) {
  SegmentedWalOptions o = InlineSpares(Options(), 8 << 10);
  o.use_io_uring = true;
  const uint64_t submits_before = PosixIoUringSubmitsForTesting();
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    for (int i = 0; i < 20; ++i) {
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 10, kRandomSize, &expected));
      ASSERT_OK(wal->Sync());
    }
    EXPECT_GE(wal->GetStats().rollovers, 2u);
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
  std::string why;
  if (GetParam() == EnvKind::kPosix && PosixIoUringAvailable(&why)) {
    EXPECT_GT(PosixIoUringSubmitsForTesting(), submits_before + 20);
  } else {
    EXPECT_EQ(PosixIoUringSubmitsForTesting(), submits_before) << why;
  }
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

// The background preparer keeps up with a writer that rolls often.
TEST_P(SegmentedWalEnvTest, BackgroundSparesServeRolls) {
  SegmentedWalOptions o = SmallSegments(64 << 10);
  o.background_preallocation = true;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  std::vector<WalRecord> expected;
  for (int round = 0; round < 400 && wal->GetStats().segments_from_spares < 4;
       ++round) {
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 50, 200, &expected));
    ASSERT_OK(wal->Sync());
  }
  EXPECT_GE(wal->GetStats().segments_from_spares, 4u);
  EXPECT_EQ(wal->GetStats().spare_failures, 0u);
  ASSERT_OK(wal->TruncateBefore(wal->next_lsn() / 2).status());
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 200, 200, &expected));
  ASSERT_OK(wal->Sync());
  ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
  std::vector<WalRecord> tail;
  for (const WalRecord& r : expected) {
    if (r.lsn >= segs.front().first_lsn) tail.push_back(r);
  }
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, tail));
}

}  // namespace

SEGWAL_INSTANTIATE_ENV_TESTS()

}  // namespace segwal
