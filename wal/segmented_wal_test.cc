// Behaviour of SegmentedWal through its public API (wal/segmented_wal.h):
// appends and LSNs, rollover, ReplayFrom and pages, iterators, TruncateBefore,
// the directory lock, close, crashes and poisoning. Recovery from damage,
// group commit and sealing, spare files, parallel replay and direct I/O have
// their own files beside this one; the harness is
// segmented_wal_test_harness.h. Most tests run on a MemEnv;
// SegmentedWalEnvTest runs a representative subset on the POSIX Env too.

#include "wal/segmented_wal_test_harness.h"

namespace segwal {
namespace {

// ===================== Basics =====================

TEST_P(SegmentedWalEnvTest, LsnsStartAtOneAndAreContiguous) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_EQ(wal->next_lsn(), 1u);
  EXPECT_EQ(wal->wal_dir(), dir_);
  for (uint64_t lsn = 1; lsn <= 100; ++lsn) {
    EXPECT_THAT(wal->Append(1, 2, 3, 4, "x"), IsOkAndHolds(lsn));
    EXPECT_EQ(wal->next_lsn(), lsn + 1);
  }
}

TEST_P(SegmentedWalEnvTest, ReplayReturnsEveryFieldByteIdentical) {
  std::vector<WalRecord> expected;
  auto add = [&](uint32_t type, uint64_t tenant, uint32_t vshard, uint64_t db,
                 std::string payload) {
    WalRecord r;
    r.lsn = expected.size() + 1;
    r.record_type = type;
    r.tenant_id = tenant;
    r.vshard_id = vshard;
    r.database_id = db;
    r.payload = std::move(payload);
    expected.push_back(std::move(r));
  };
  add(0, 0, 0, 0, "");  // every field zero, empty payload
  add(UINT32_MAX, UINT64_MAX, UINT32_MAX, UINT64_MAX, "");
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  add(7, 1, 2, 0, all_bytes);                      // binary, default database
  add(8, 2, 3, 4, std::string(5, '\0'));           // only NULs
  add(9, 3, 4, 5, std::string(kSegmentMagic, 8));  // looks like a header
  add(10, 4, 5, 6, std::string(kRecordHeaderSize, '\xff'));
  add(11, 5, 6, 7, "");
  for (int i = 0; i < 50; ++i) {
    expected.push_back(RandomRecord(expected.size() + 1, rnd_.Skewed(11)));
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    for (const WalRecord& r : expected) {
      ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), r));
    }
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    ASSERT_OK(wal->Sync());
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_P(SegmentedWalEnvTest, ReopenContinuesAtLastLsnPlusOne) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 17, kRandomSize, &expected));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    EXPECT_EQ(wal->next_lsn(), 18u);
    const RecoveryReport& report = wal->recovery_report();
    EXPECT_EQ(report.last_lsn, 17u);
    EXPECT_EQ(report.first_lsn, 1u);
    EXPECT_EQ(report.records_recovered, 17u);
    EXPECT_THAT(report.drops, IsEmpty());
    EXPECT_FALSE(report.truncated_tail);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 5, kRandomSize, &expected));
    EXPECT_EQ(expected.back().lsn, 22u);
    ASSERT_OK(wal->Sync());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_EQ(wal->next_lsn(), 23u);
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, EmptyLogReopensEmpty) {
  { ASSERT_OK(SegmentedWal::Open(Options()).status()); }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_EQ(wal->next_lsn(), 1u);
  EXPECT_THAT(wal->Replay(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "first"), IsOkAndHolds(1u));
}

TEST_F(SegmentedWalTest, DurableLsnIsZeroBeforeSyncAndMovesWithSync) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    EXPECT_EQ(wal->durable_lsn(), 0u);
    std::vector<WalRecord> expected;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &expected));
    EXPECT_EQ(wal->durable_lsn(), 0u);
    ASSERT_OK(wal->Sync());
    EXPECT_EQ(wal->durable_lsn(), 3u);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, kPayload, &expected));
    EXPECT_EQ(wal->durable_lsn(), 3u);
    ASSERT_OK(wal->Flush());
    EXPECT_EQ(wal->durable_lsn(), 3u) << "Flush is not a sync";
    ASSERT_OK(wal->Sync());
    EXPECT_EQ(wal->durable_lsn(), 5u);
  }
  // FORMAT.md: after recovery Open syncs the last segment.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_EQ(wal->durable_lsn(), 5u);
}

TEST_F(SegmentedWalTest, SyncWithNothingAppendedIsOk) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_OK(wal->Sync());
  EXPECT_EQ(wal->durable_lsn(), 0u);
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "a"), IsOkAndHolds(1u));
  EXPECT_OK(wal->Sync());
  EXPECT_OK(wal->Sync());
  EXPECT_EQ(wal->durable_lsn(), 1u);
  EXPECT_OK(wal->poisoned_status());
}

TEST_P(SegmentedWalEnvTest, RecordsOfManySizesIncludingLargerThanBuffers) {
  constexpr uint64_t kMaxRecord = 4 << 20;
  const std::vector<size_t> sizes = {
      0,     1,     55,      56,         57, 4095, 4096, 65535,
      65536, 65537, 3 << 20, kMaxRecord, 0,  1,    1000, (1 << 16) * 3 + 7,
      17};
  // Once into one big segment, once into segments smaller than the records.
  for (uint64_t target : {uint64_t{64} << 20, uint64_t{64} << 10}) {
    SCOPED_TRACE(absl::StrCat("segment_target_size ", target));
    SegmentedWalOptions options = Options();
    options.wal_dir = absl::StrCat(dir_, "_", target);
    options.segment_target_size = target;
    options.write_buffer_size = 64 << 10;
    options.max_record_size = kMaxRecord;
    std::vector<WalRecord> expected;
    {
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                           SegmentedWal::Open(options));
      for (size_t size : sizes) {
        WalRecord r = RandomRecord(wal->next_lsn(), size);
        ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), r));
        expected.push_back(std::move(r));
      }
      ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
      ASSERT_OK(wal->Sync());
    }
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, 11, expected));
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, 12, expected));
    ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 10, expected));
  }
}

TEST_F(SegmentedWalTest,
       AppendAboveMaxRecordSizeIsInvalidArgumentAndUsesNoLsn) {
  SegmentedWalOptions options = Options();
  options.max_record_size = 1024;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, std::string(1025, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(wal->next_lsn(), 1u);
  std::vector<WalRecord> expected;
  expected.push_back(RandomRecord(1, 1024));  // exactly max_record_size
  ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), expected.back()));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, std::string(5000, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(wal->next_lsn(), 2u);
  expected.push_back(RandomRecord(2, 10));
  ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), expected.back()));
  // A refused record is the caller's mistake, not an I/O failure: no poison.
  EXPECT_OK(wal->poisoned_status());
  EXPECT_OK(wal->Sync());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, ReadsSeeRecordsAppendedButNotYetFlushed) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));  // 1 MiB write buffer
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, 20, &expected));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, 2, expected));
  ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(1, 10));
  EXPECT_TRUE(SameRecords(page.records, expected));
  EXPECT_FALSE(page.has_more);
  ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 1, expected));
}

TEST_F(SegmentedWalTest, OpenRejectsEmptyWalDir) {
  SegmentedWalOptions options = Options();
  options.wal_dir = "";
  EXPECT_THAT(SegmentedWal::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SegmentedWalTest, OpenRejectsZeroSegmentTargetSize) {
  SegmentedWalOptions options = Options();
  options.segment_target_size = 0;
  EXPECT_THAT(SegmentedWal::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Records the directory operations Open makes, in order.
class DirOpRecordingEnv : public EnvWrapper {
 public:
  explicit DirOpRecordingEnv(Env* target) : EnvWrapper(target) {}
  absl::Status CreateDirIfMissing(const std::string& dir) override {
    ops.push_back("mkdir " + dir);
    return EnvWrapper::CreateDirIfMissing(dir);
  }
  absl::Status SyncDir(const std::string& dir) override {
    ops.push_back("syncdir " + dir);
    return EnvWrapper::SyncDir(dir);
  }
  std::vector<std::string> ops;
};

// A WAL directory whose own entry is not durable takes every synced segment
// in it with it at a power cut: each level Open creates is followed by a
// sync of its parent, before the first segment is written.
TEST_F(SegmentedWalTest, OpenSyncsTheParentOfEveryDirectoryItCreates) {
  std::unique_ptr<Env> mem = NewMemEnv();
  ASSERT_OK(mem->CreateDirIfMissing("/data"));
  DirOpRecordingEnv env(mem.get());
  SegmentedWalOptions options = Options();
  options.env = &env;
  options.wal_dir = "/data/db/wal";
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(options));
    ASSERT_OK(wal->Append(1, 2, 3, 4, "x").status());
    ASSERT_OK(wal->Sync());
  }
  ASSERT_GE(env.ops.size(), 4u);
  EXPECT_EQ(std::vector<std::string>(env.ops.begin(), env.ops.begin() + 4),
            (std::vector<std::string>{"mkdir /data/db", "syncdir /data",
                                      "mkdir /data/db/wal", "syncdir /data/db"}));
  // Reopening an existing directory creates nothing and syncs no parent.
  env.ops.clear();
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(options));
  }
  for (const std::string& op : env.ops) {
    EXPECT_NE(op.rfind("mkdir", 0), 0u) << op;
    EXPECT_NE(op, "syncdir /data");
    EXPECT_NE(op, "syncdir /data/db");
  }
}

// A failed sync of a new directory's parent fails Open: the directory entry
// is not known durable.
TEST_F(SegmentedWalTest, OpenFailsWhenTheParentOfANewDirectoryCannotBeSynced) {
  class FailingParentSync : public EnvWrapper {
   public:
    explicit FailingParentSync(Env* target) : EnvWrapper(target) {}
    absl::Status SyncDir(const std::string& dir) override {
      if (dir == "/data") return absl::UnavailableError("injected EIO");
      return EnvWrapper::SyncDir(dir);
    }
  };
  std::unique_ptr<Env> mem = NewMemEnv();
  ASSERT_OK(mem->CreateDirIfMissing("/data"));
  FailingParentSync env(mem.get());
  SegmentedWalOptions options = Options();
  options.env = &env;
  options.wal_dir = "/data/wal";
  auto wal = SegmentedWal::Open(options);
  ASSERT_FALSE(wal.ok());
  EXPECT_THAT(std::string(wal.status().message()),
              AllOf(HasSubstr("/data/wal"), HasSubstr("injected EIO")));
}

// Reports OK without syncing for every SyncDir of a directory above `dir`:
// an Open that skipped the parent syncs of the levels it creates.
class ParentSyncDroppingEnv : public EnvWrapper {
 public:
  ParentSyncDroppingEnv(Env* target, std::string dir)
      : EnvWrapper(target), dir_(std::move(dir)) {}
  absl::Status SyncDir(const std::string& d) override {
    if (d == "/" || absl::StartsWith(dir_, d + "/")) return absl::OkStatus();
    return EnvWrapper::SyncDir(d);
  }

 private:
  const std::string dir_;
};

// Through FaultInjectionEnv, whose power cut removes every directory whose
// creation was never synced into its parent (with all under it): a WAL opened
// in a fresh nested directory keeps its synced records, because Open synced
// the parent of each level it created; the same history with those parent
// syncs dropped loses the whole tree, segments synced or not.
TEST_F(SegmentedWalTest,
       WalInAFreshNestedDirectoryKeepsSyncedRecordsAcrossAPowerCut) {
  for (bool drop_parent_syncs : {false, true}) {
    SCOPED_TRACE(absl::StrCat("parent syncs dropped: ", drop_parent_syncs));
    std::unique_ptr<Env> mem = NewMemEnv();
    FaultInjectionEnv fault_env(mem.get());
    ParentSyncDroppingEnv dropping(&fault_env, "/data/db/wal");
    SegmentedWalOptions options = SmallSegments(2048);
    options.wal_dir = "/data/db/wal";
    options.env = drop_parent_syncs ? static_cast<Env*>(&dropping) : &fault_env;
    std::vector<WalRecord> expected;
    {
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                           SegmentedWal::Open(options));
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 40, kPayload, &expected));
      ASSERT_OK(wal->Sync());
      ASSERT_GT(wal->active_segment_first_lsn(), 1u) << "several segments";
    }
    ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 3));
    options.env = &fault_env;
    if (drop_parent_syncs) {
      EXPECT_FALSE(mem->FileExists("/data"));
      expected.clear();
    }
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
}

// ===================== Rollover =====================

TEST_P(SegmentedWalEnvTest,
       SmallSegmentTargetRollsOverIntoSegmentsNamedByFirstLsn) {
  SegmentedWalOptions options = SmallSegments(4096);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 200, kRandomSize, &expected));
  ASSERT_OK(wal->Flush());
  ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> segs, wal->ListSegments());
  ASSERT_GE(segs.size(), 4u);
  EXPECT_EQ(segs.front().first_lsn, 1u);
  EXPECT_EQ(wal->active_segment_first_lsn(), segs.back().first_lsn);
  for (size_t i = 0; i < segs.size(); ++i) {
    SCOPED_TRACE(segs[i].path);
    EXPECT_THAT(segs[i].path, EndsWith("/" + SegmentName(segs[i].first_lsn)));
    if (i > 0) {
      EXPECT_LT(segs[i - 1].first_lsn, segs[i].first_lsn);
    }
    const std::string bytes = ReadAll(segs[i].path);
    ASSERT_GE(bytes.size(), kSegmentHeaderSize);
    EXPECT_EQ(bytes.substr(0, 8), std::string(kSegmentMagic, 8));
    EXPECT_EQ(GetLE(bytes, kSegmentFirstLsnOffset, 8), segs[i].first_lsn);
    if (i + 1 == segs.size()) continue;
    // A sealed segment: contiguous records from its first LSN to the one
    // before its successor's, then a footer that ends the file.
    EXPECT_EQ(segs[i].file_size, bytes.size());
    const std::vector<Frame> frames = ScanFrames(bytes);
    ASSERT_GE(frames.size(), 2u);
    EXPECT_TRUE(frames.back().footer);
    EXPECT_EQ(frames.back().offset + frames.back().size, bytes.size());
    EXPECT_EQ(frames.back().lsn, segs[i + 1].first_lsn - 1);
    ASSERT_EQ(frames.size() - 1, segs[i + 1].first_lsn - segs[i].first_lsn);
    for (size_t j = 0; j + 1 < frames.size(); ++j) {
      EXPECT_EQ(frames[j].lsn, segs[i].first_lsn + j);
      EXPECT_FALSE(frames[j].footer);
    }
  }
  // The directory holds exactly these segments, and sorting the names sorts
  // by LSN.
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> children,
                       env_->GetChildren(dir_));
  std::vector<std::string> names;
  for (const std::string& c : children) {
    if (c.size() > 4 && c.substr(c.size() - 4) == ".wal") names.push_back(c);
  }
  std::sort(names.begin(), names.end());
  ASSERT_EQ(names.size(), segs.size());
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ(names[i], SegmentName(segs[i].first_lsn));
    EXPECT_EQ(names[i].size(), kSegmentNameDigits + 4);
  }
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_P(SegmentedWalEnvTest,
       TotalSizeBytesIsTheSumOfSegmentFileSizesAfterFlush) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(4096)));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 150, kRandomSize, &expected));
  ASSERT_OK(wal->Flush());
  ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> segs, wal->ListSegments());
  ASSERT_GE(segs.size(), 3u);
  uint64_t on_disk = 0, listed = 0;
  for (const SegmentMeta& s : segs) {
    on_disk += FileSize(s.path);
    listed += s.file_size;
  }
  EXPECT_THAT(wal->TotalSizeBytes(), IsOkAndHolds(on_disk));
  EXPECT_EQ(listed, on_disk);
}

TEST_P(SegmentedWalEnvTest,
       ReplaySpansSegmentsAndReopenAfterRolloverContinues) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> before;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(4096), 180, kRandomSize, &expected, &before));
  ASSERT_GE(before.size(), 3u);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(SmallSegments(4096)));
    EXPECT_EQ(wal->recovery_report().segments_found, before.size());
    EXPECT_EQ(wal->recovery_report().last_lsn, 180u);
    ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> after, wal->ListSegments());
    ASSERT_GE(after.size(), before.size());
    for (size_t i = 0; i < before.size(); ++i) {
      EXPECT_EQ(after[i].first_lsn, before[i].first_lsn);
    }
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    EXPECT_EQ(wal->next_lsn(), 181u);
    ASSERT_NO_FATAL_FAILURE(
        AppendRandom(wal.get(), 120, kRandomSize, &expected));
    ASSERT_OK(wal->Sync());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(4096)));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  EXPECT_EQ(wal->next_lsn(), 301u);
}

// ===================== ReplayFrom / ReplayFromLimit =====================

TEST_P(SegmentedWalEnvTest, ReplayFromEveryLsnOfAMultiSegmentLog) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(2048), 120, kRandomSize, &expected, &segs));
  ASSERT_GE(segs.size(), 4u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(2048)));
  for (uint64_t lsn = 1; lsn <= 121; ++lsn) {
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, lsn, expected));
  }
}

TEST_F(SegmentedWalTest, ReplayFromSeeksThroughTheFooterIndexOfLargeSegments) {
  // 256 KiB segments of 1 KiB records: each footer index has ~16 entries
  // (FORMAT.md: one per 16 KiB), so a seek lands between index entries.
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(256 << 10), 700, 1000, &expected, &segs));
  ASSERT_GE(segs.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(256 << 10)));
  std::vector<uint64_t> starts;
  for (uint64_t lsn = 1; lsn <= 701; lsn += 13) starts.push_back(lsn);
  for (const SegmentMeta& s : segs) {
    for (uint64_t d : {0, 1, 2}) {
      starts.push_back(s.first_lsn + d);
      if (s.first_lsn > d) starts.push_back(s.first_lsn - d);
    }
  }
  for (uint64_t lsn : starts) {
    if (lsn == 0) continue;
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, lsn, expected));
  }
}

TEST_P(SegmentedWalEnvTest, ReplayFromBeyondTheEndIsEmpty) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(2048), 40, kPayload, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(2048)));
  EXPECT_THAT(wal->ReplayFrom(41), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(wal->ReplayFrom(1000000), IsOkAndHolds(IsEmpty()));
  ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(41, 10));
  EXPECT_THAT(page.records, IsEmpty());
  EXPECT_FALSE(page.has_more);
}

TEST_P(SegmentedWalEnvTest, ReplayFromLimitHasMoreOnlyWhenALaterRecordExists) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 10, kRandomSize, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  struct Case {
    uint64_t from;
    size_t max;
    uint64_t want_last;  // 0: no records
    bool want_more;
  };
  const Case cases[] = {
      {1, 10, 10, false},   // exact fit: the page ends at the last record
      {1, 9, 9, true},      //
      {1, 100, 10, false},  //
      {4, 7, 10, false},    // exact fit from the middle
      {4, 6, 9, true},      //
      {10, 1, 10, false},   // exact fit, last record alone
      {9, 1, 9, true},      //
      {11, 5, 0, false},    // beyond the end
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("ReplayFromLimit(", c.from, ", ", c.max, ")"));
    ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(c.from, c.max));
    EXPECT_TRUE(SameRecords(page.records,
                            c.want_last == 0
                                ? std::vector<WalRecord>{}
                                : Slice(expected, c.from, c.want_last + 1)));
    EXPECT_EQ(page.has_more, c.want_more);
  }
}

TEST_F(SegmentedWalTest, ReplayFromLimitWithZeroMaxRecordsReturnsNothing) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(1, 0));
  EXPECT_THAT(page.records, IsEmpty());
  EXPECT_TRUE(page.has_more) << "records 1..5 are still to be read";
  ASSERT_OK_AND_ASSIGN(page, wal->ReplayFromLimit(6, 0));
  EXPECT_THAT(page.records, IsEmpty());
  EXPECT_FALSE(page.has_more);
}

// A page ends at its last record: damage to the record after it (here bit
// rot after Open) is reported by the page that would hold it, naming the file
// and offset, and the pages before it read as usual.
TEST_F(SegmentedWalTest, ReplayFromLimitLeavesDamageAfterThePageToTheNextPage) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(2048), 40, kPayload, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(2048)));
  ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> segs, wal->ListSegments());
  ASSERT_GE(segs.size(), 3u);
  const std::string path = segs[1].path;  // sealed, neither first nor last
  std::vector<Frame> frames = RecordFrames(ReadAll(path));
  ASSERT_GE(frames.size(), 3u);
  const Frame bad = frames[1];
  ASSERT_NO_FATAL_FAILURE(CorruptByte(path, bad.offset + kRecordHeaderSize + 2));
  const size_t before = bad.lsn - 1;  // records 1..bad.lsn-1 are intact
  ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(1, before));
  EXPECT_TRUE(SameRecords(page.records, Slice(expected, 1, bad.lsn)));
  EXPECT_TRUE(page.has_more);
  ASSERT_OK_AND_ASSIGN(page, wal->ReplayFromLimit(bad.lsn - 1, 1));
  EXPECT_TRUE(SameRecords(page.records, Slice(expected, bad.lsn - 1, bad.lsn)));
  EXPECT_TRUE(page.has_more);
  EXPECT_THAT(wal->ReplayFromLimit(bad.lsn, 5),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(path),
                             HasSubstr(absl::StrCat("offset ", bad.offset)))));
  EXPECT_THAT(wal->ReplayFromLimit(1, before + 1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(path)));
}

TEST_P(SegmentedWalEnvTest,
       PagingThroughAMultiSegmentLogCollectsEveryRecordOnce) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(2048), 150, kRandomSize, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(2048)));
  for (size_t page_size :
       {size_t{1}, size_t{7}, size_t{50}, size_t{150}, size_t{151}}) {
    SCOPED_TRACE(absl::StrCat("page size ", page_size));
    std::vector<WalRecord> collected;
    uint64_t from = 1;
    size_t pages = 0;
    while (true) {
      ASSERT_OK_AND_ASSIGN(ReplayPage page,
                           wal->ReplayFromLimit(from, page_size));
      ++pages;
      ASSERT_LE(pages, 200u) << "paging does not terminate";
      ASSERT_LE(page.records.size(), page_size);
      if (page.has_more) {
        ASSERT_EQ(page.records.size(), page_size);
      }
      for (WalRecord& r : page.records) collected.push_back(std::move(r));
      if (!page.has_more) break;
      from = collected.back().lsn + 1;
    }
    EXPECT_EQ(pages, (150 + page_size - 1) / page_size)
        << "an exact-fit page must say has_more = false";
    EXPECT_TRUE(SameRecords(collected, expected));
  }
}

// ===================== Iterators =====================

TEST_F(SegmentedWalTest, IteratorMatchesReplayFromForManyStartPoints) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(2048), 100, kRandomSize, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(2048)));
  // Records still in the write buffer of the active segment as well.
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 10, kRandomSize, &expected));
  for (uint64_t lsn = 1; lsn <= 112; ++lsn) {
    ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, lsn, expected));
  }
}

TEST_F(SegmentedWalTest, IteratorSeesRecordsAppendedBeforeItWasCreated) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(4096)));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 60, kPayload, &expected));
  // Neither flushed nor synced: the last ones are only in the write buffer.
  ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 1, expected));
  ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 60, expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WalIterator> it, wal->NewIterator(61));
  EXPECT_FALSE(it->Valid());
  EXPECT_OK(it->status());
}

TEST_F(SegmentedWalTest, IteratorWalksALogOfManySegments) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(4096), 3000, 64, &expected, &segs));
  ASSERT_GE(segs.size(), 50u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(4096)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WalIterator> it, wal->NewIterator(1));
  uint64_t lsn = 1;
  for (; it->Valid(); it->Next(), ++lsn) {
    ASSERT_LE(lsn, expected.size());
    ASSERT_TRUE(it->record() == expected[lsn - 1]) << "at LSN " << lsn;
  }
  EXPECT_OK(it->status());
  EXPECT_EQ(lsn, 3001u);
  ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 2500, expected));
}

// ===================== TruncateBefore =====================

TEST_P(SegmentedWalEnvTest,
       TruncateBeforeDeletesOnlySealedSegmentsBelowTheCheckpoint) {
  const SegmentedWalOptions options = SmallSegments(1024);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 60, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 5u);
  uint64_t active_first = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    // Segment 0's last record is segs[1].first_lsn - 1: not below that.
    EXPECT_THAT(wal->TruncateBefore(segs[1].first_lsn - 1),
                IsOkAndHolds(Truncated(0, 0)));
    EXPECT_TRUE(env_->FileExists(segs[0].path));
    // Every record of segments 0 and 1 is below segs[2].first_lsn.
    EXPECT_THAT(
        wal->TruncateBefore(segs[2].first_lsn),
        IsOkAndHolds(Truncated(2, segs[0].file_size + segs[1].file_size)));
    EXPECT_FALSE(env_->FileExists(segs[0].path));
    EXPECT_FALSE(env_->FileExists(segs[1].path));
    EXPECT_TRUE(env_->FileExists(segs[2].path));
    const uint64_t floor = segs[2].first_lsn;
    ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> left, wal->ListSegments());
    ASSERT_FALSE(left.empty());
    EXPECT_EQ(left.front().first_lsn, floor);
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, Slice(expected, floor)));
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, floor, expected));
    ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, floor, expected));
    // Below the floor: never silently fewer records.
    EXPECT_THAT(wal->ReplayFrom(floor - 1),
                StatusIs(absl::StatusCode::kOutOfRange));
    EXPECT_THAT(wal->ReplayFrom(1), StatusIs(absl::StatusCode::kOutOfRange));
    EXPECT_THAT(wal->NewIterator(floor - 1),
                StatusIs(absl::StatusCode::kOutOfRange));
    EXPECT_THAT(wal->ReplayFromLimit(1, 10),
                StatusIs(absl::StatusCode::kOutOfRange));

    // A checkpoint past the end deletes every sealed segment, never the active.
    active_first = wal->active_segment_first_lsn();
    uint64_t sealed_bytes = 0;
    size_t sealed = 0;
    for (const SegmentMeta& s : left) {
      if (s.first_lsn < active_first) {
        sealed_bytes += s.file_size;
        ++sealed;
      }
    }
    EXPECT_THAT(wal->TruncateBefore(wal->next_lsn() + 1000),
                IsOkAndHolds(Truncated(sealed, sealed_bytes)));
    ASSERT_OK_AND_ASSIGN(left, wal->ListSegments());
    ASSERT_THAT(left, SizeIs(1));
    EXPECT_EQ(left[0].first_lsn, active_first);
    EXPECT_TRUE(env_->FileExists(SegmentPath(active_first)));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, Slice(expected, active_first)));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &expected));
    ASSERT_OK(wal->Sync());
  }
  // Reopen: the log starts at the floor and continues where it was.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  EXPECT_EQ(wal->recovery_report().first_lsn, active_first);
  EXPECT_EQ(wal->next_lsn(), 64u);
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, Slice(expected, active_first)));
  EXPECT_THAT(wal->ReplayFrom(active_first - 1),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(SegmentedWalTest, TruncateBeforeZeroOrOneDeletesNothing) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(1024), 30, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 3u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(1024)));
  EXPECT_THAT(wal->TruncateBefore(0), IsOkAndHolds(Truncated(0, 0)));
  EXPECT_THAT(wal->TruncateBefore(1), IsOkAndHolds(Truncated(0, 0)));
  EXPECT_THAT(wal->ListSegments(), IsOkAndHolds(SizeIs(segs.size())));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest,
       ReopenAfterTruncatingEverySealedSegmentKeepsLsnsGoing) {
  const SegmentedWalOptions options = SmallSegments(1024);
  uint64_t next = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    std::vector<WalRecord> expected;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 50, kPayload, &expected));
    ASSERT_OK(wal->Sync());
    ASSERT_OK(wal->TruncateBefore(UINT64_MAX).status());
    next = wal->next_lsn();
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  EXPECT_EQ(wal->next_lsn(), next) << "LSNs must never rewind";
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "after"), IsOkAndHolds(next));
}

// ===================== Lock =====================

TEST_P(SegmentedWalEnvTest,
       SecondOpenOfAnOpenDirectoryFailsUntilTheFirstIsClosed) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> first,
                       SegmentedWal::Open(Options()));
  EXPECT_THAT(first->Append(1, 1, 1, 1, "one"), IsOkAndHolds(1u));
  EXPECT_THAT(SegmentedWal::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // The refused Open did not disturb the first instance.
  EXPECT_THAT(first->Append(1, 1, 1, 1, "two"), IsOkAndHolds(2u));
  EXPECT_OK(first->Sync());
  EXPECT_THAT(first->Replay(), IsOkAndHolds(SizeIs(2)));
  first.reset();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> second,
                       SegmentedWal::Open(Options()));
  EXPECT_THAT(second->Replay(), IsOkAndHolds(SizeIs(2)));
}

// ===================== Close, crashes and poisoning =====================

TEST_F(SegmentedWalTest, DestructorFlushesBufferedRecordsToTheOs) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SegmentedWalOptions options = Options();
  options.env = &fault_env;
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 5, kPayload, &expected));
  }
  // A process crash keeps what reached the OS: reopen without a power loss.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, DestructorDoesNotSync) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SegmentedWalOptions options = Options();
  options.env = &fault_env;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    std::vector<WalRecord> unsynced;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 5, kPayload, &unsynced));
  }
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 1));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  EXPECT_THAT(wal->Replay(), IsOkAndHolds(IsEmpty()));
  EXPECT_EQ(wal->next_lsn(), 1u);
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "again"), IsOkAndHolds(1u));
  EXPECT_OK(wal->Sync());
}

TEST_F(SegmentedWalTest, RecordsSyncedBeforeCloseSurviveAPowerLoss) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SegmentedWalOptions options = SmallSegments(2048);
  options.env = &fault_env;
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 48, kPayload, &expected));
    ASSERT_OK(wal->Sync());
    const uint64_t active = wal->active_segment_first_lsn();
    ASSERT_GT(active, 1u) << "the synced records span several segments";
    std::vector<WalRecord> unsynced;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, kPayload, &unsynced));
    // A rollover would seal (and so sync) them: this test needs none.
    ASSERT_EQ(wal->active_segment_first_lsn(), active);
  }
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 2));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "next"), IsOkAndHolds(49u));
}

TEST_F(SegmentedWalTest, FailedSyncPoisonsTheInstanceForever) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SegmentedWalOptions options = Options();
  options.env = &fault_env;
  std::vector<WalRecord> durable;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &durable));
    ASSERT_OK(wal->Sync());
    std::vector<WalRecord> lost;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, kPayload, &lost));
    // Fails the next sync only: afterwards the disk is healthy again, and a
    // WAL that retried the fsync would get OK (fsyncgate).
    fault_env.InjectError(kOpSync,
                          absl::InternalError("injected fsync failure"));
    const auto is_injected = StatusIs(absl::StatusCode::kInternal,
                                      HasSubstr("injected fsync failure"));
    EXPECT_THAT(wal->Sync(), is_injected);
    EXPECT_EQ(wal->durable_lsn(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_THAT(wal->Sync(), is_injected);
    EXPECT_THAT(wal->Append(1, 1, 1, 1, "refused"), is_injected);
    EXPECT_EQ(wal->next_lsn(), 6u) << "a refused append used an LSN";
    EXPECT_THAT(wal->Flush(), is_injected);
    EXPECT_THAT(wal->TruncateBefore(2), is_injected);
    EXPECT_THAT(wal->Replay(), is_injected);
    EXPECT_THAT(wal->poisoned_status(), is_injected);
    EXPECT_EQ(wal->durable_lsn(), 3u);
  }
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 3));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, durable));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "recovered"), IsOkAndHolds(4u));
  EXPECT_OK(wal->Sync());
}

TEST_F(SegmentedWalTest, FailedWritePoisonsTheInstance) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SegmentedWalOptions options = Options();
  options.env = &fault_env;
  std::vector<WalRecord> durable;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 4, kPayload, &durable));
    ASSERT_OK(wal->Sync());
    std::vector<WalRecord> lost;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, kPayload, &lost));
    fault_env.InjectError(kOpAppend,
                          absl::ResourceExhaustedError("injected disk full"));
    const auto is_injected = StatusIs(absl::StatusCode::kResourceExhausted,
                                      HasSubstr("injected disk full"));
    EXPECT_THAT(wal->Sync(), is_injected);  // writes the staged records first
    EXPECT_THAT(wal->Sync(), is_injected);
    EXPECT_THAT(wal->Append(1, 1, 1, 1, "refused"), is_injected);
    EXPECT_EQ(wal->durable_lsn(), 4u);
  }
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 4));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, durable));
}

// RocksDB #3096: followers of a failed group commit were told OK.

}  // namespace

SEGWAL_INSTANTIATE_ENV_TESTS()

}  // namespace segwal
