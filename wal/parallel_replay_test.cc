// Parallel replay (replay_threads): the same records, in the same order, or
// the same error as a sequential read, also with Snappy, encryption and
// skipped damage, and while segments are truncated.

#include "wal/segmented_wal_test_harness.h"

namespace segwal {
namespace {

// ===================== Parallel replay =====================
// SegmentedWalOptions::replay_threads: a replay of several segments decoded
// by several threads returns what the sequential read returns, errors
// included. replay_min_bytes_per_thread = 0 makes these small logs split.

class ParallelReplayTest : public SegmentedWalTest {
 protected:
  ParallelReplayTest() : read_env_(mem_env_.get()) {}

  // Segments of about 2 KiB, read with `threads` threads; no spare files
  // (ReadThreadsEnv cannot write in place: spares would stop at the first
  // roll anyway).
  SegmentedWalOptions Threads(size_t threads, SegmentedWalOptions base = {}) {
    SegmentedWalOptions o = base;
    o.wal_dir = dir_;
    o.env = &read_env_;
    o.segment_target_size = 2048;
    o.preallocate_segments = false;
    o.replay_threads = threads;
    o.replay_min_bytes_per_thread = 0;
    return o;
  }

  // Every read of a log, replayed with one thread and with four: both return
  // `want`, and the second really used more than one thread.
  void ExpectParallelMatchesSequential(const SegmentedWalOptions& base,
                                       const std::vector<WalRecord>& want,
                                       const std::vector<SegmentMeta>& segs) {
    ASSERT_GE(segs.size(), 6u);
    // An LSN in the middle of a segment, not its first.
    const uint64_t mid = segs[2].first_lsn + 2;
    ASSERT_LT(mid, segs[3].first_lsn);
    const std::vector<WalRecord> from_mid = Slice(want, mid);
    for (size_t threads : {size_t{1}, size_t{4}}) {
      SCOPED_TRACE(absl::StrCat("replay_threads=", threads));
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                           SegmentedWal::Open(Threads(threads, base)));
      read_env_.TakeReaderThreadCount();
      ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> all, wal->Replay());
      EXPECT_TRUE(SameRecords(all, want));
      const size_t readers = read_env_.TakeReaderThreadCount();
      if (threads == 1) {
        EXPECT_EQ(readers, 1u);
      } else {
        EXPECT_GE(readers, 2u) << "the replay was not split";
        EXPECT_LE(readers, 4u);
      }
      ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->ReplayFrom(mid));
      EXPECT_TRUE(SameRecords(got, from_mid));
      EXPECT_EQ(read_env_.TakeReaderThreadCount() >= 2, threads > 1);
      // A page that holds the whole range may be split; has_more is exact.
      ASSERT_OK_AND_ASSIGN(ReplayPage page,
                           wal->ReplayFromLimit(mid, from_mid.size()));
      EXPECT_TRUE(SameRecords(page.records, from_mid));
      EXPECT_FALSE(page.has_more);
      ASSERT_OK_AND_ASSIGN(page, wal->ReplayFromLimit(mid, SIZE_MAX));
      EXPECT_TRUE(SameRecords(page.records, from_mid));
      EXPECT_FALSE(page.has_more);
      ASSERT_OK_AND_ASSIGN(page,
                           wal->ReplayFromLimit(mid, from_mid.size() - 1));
      EXPECT_TRUE(SameRecords(
          page.records,
          std::vector<WalRecord>(from_mid.begin(), from_mid.end() - 1)));
      EXPECT_TRUE(page.has_more);
      // From the first LSN of a later segment, and past the end.
      ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, segs[4].first_lsn, want));
      ASSERT_OK_AND_ASSIGN(got, wal->ReplayFrom(wal->next_lsn()));
      EXPECT_THAT(got, IsEmpty());
    }
  }

  ReadThreadsEnv read_env_;
};

TEST_F(ParallelReplayTest, ParallelReplayMatchesSequentialReplay) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(Threads(1), 200, kRandomSize, &expected, &segs));
  ASSERT_NO_FATAL_FAILURE(ExpectParallelMatchesSequential({}, expected, segs));
}

TEST_F(ParallelReplayTest, ParallelReplayMatchesSequentialReplayWithSnappy) {
  SegmentedWalOptions base;
  base.compression = Compression::kSnappy;
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  {
    // Compressible payloads, so records really are stored compressed.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Threads(1, base)));
    for (int i = 0; i < 300; ++i) {
      WalRecord r = RandomRecord(wal->next_lsn(), 0);
      r.payload = std::string(100 + rnd_.Uniform(300), 'a' + i % 26) +
                  rnd_.RandomBytes(8);
      ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), r));
      expected.push_back(std::move(r));
    }
    ASSERT_OK(wal->Sync());
    ASSERT_OK_AND_ASSIGN(segs, wal->ListSegments());
  }
  uint64_t stored = 0, logical = 0;
  for (const SegmentMeta& m : segs) stored += m.file_size;
  for (const WalRecord& r : expected) logical += r.payload.size();
  ASSERT_LT(stored, logical) << "payloads were not stored compressed";
  ASSERT_NO_FATAL_FAILURE(
      ExpectParallelMatchesSequential(base, expected, segs));
}

TEST_F(ParallelReplayTest, ParallelReplayMatchesSequentialReplayEncrypted) {
  SegmentedWalOptions base;
  base.compression = Compression::kSnappy;
  base.encryption_ring.emplace(WalEncryptionKey::Generate());
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(Threads(1, base), 200, kRandomSize, &expected, &segs));
  // The records are not readable without the key: every run needs the ring.
  SegmentedWalOptions no_key = Threads(4);
  EXPECT_THAT(SegmentedWal::Open(no_key),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_NO_FATAL_FAILURE(
      ExpectParallelMatchesSequential(base, expected, segs));
}

// Damage in a middle segment: the parallel read fails with the status the
// sequential read fails with (file and offset of the first damage), even when
// a later run finds damage of its own.
TEST_F(ParallelReplayTest, CorruptMiddleSegmentFailsAsSequentialReplayDoes) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(Threads(1), 120, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 8u);
  const std::vector<Frame> frames = RecordFrames(ReadAll(segs[2].path));
  ASSERT_GE(frames.size(), 3u);
  const uint64_t bad = frames[1].offset;
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(segs[2].path, bad + kRecordHeaderSize + 5));
  // Damage in a later sealed segment too, found by another run.
  const std::vector<Frame> later = RecordFrames(ReadAll(segs[6].path));
  ASSERT_GE(later.size(), 1u);
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(segs[6].path, later[0].offset + kRecordHeaderSize + 5));
  const auto names_first_damage =
      StatusIs(absl::StatusCode::kDataLoss,
               AllOf(HasSubstr(SegmentName(segs[2].first_lsn)),
                     HasSubstr(absl::StrCat("offset ", bad))));
  absl::Status sequential, sequential_from;
  for (size_t threads : {size_t{1}, size_t{4}}) {
    SCOPED_TRACE(absl::StrCat("replay_threads=", threads));
    // The default mode reads only the footers of sealed segments at Open.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Threads(threads)));
    read_env_.TakeReaderThreadCount();
    absl::Status s = wal->Replay().status();
    EXPECT_THAT(s, names_first_damage);
    EXPECT_EQ(read_env_.TakeReaderThreadCount() >= 2, threads > 1);
    absl::Status from = wal->ReplayFrom(segs[1].first_lsn + 1).status();
    EXPECT_THAT(from, names_first_damage);
    if (threads == 1) {
      sequential = s;
      sequential_from = from;
    } else {
      EXPECT_EQ(s, sequential);
      EXPECT_EQ(from, sequential_from);
    }
    // Reads that start after the first damage stop at the second.
    EXPECT_THAT(wal->ReplayFrom(segs[3].first_lsn),
                StatusIs(absl::StatusCode::kDataLoss,
                         HasSubstr(SegmentName(segs[6].first_lsn))));
    // And reads that end before any damage still work.
    ASSERT_OK_AND_ASSIGN(ReplayPage page,
                         wal->ReplayFromLimit(1, segs[2].first_lsn - 1));
    EXPECT_TRUE(
        SameRecords(page.records, Slice(expected, 1, segs[2].first_lsn)));
    EXPECT_TRUE(page.has_more);
  }
}

// A read error (the Env failed, not damage) in a middle segment.
TEST_F(ParallelReplayTest,
       ReadErrorInAMiddleSegmentFailsAsSequentialReplayDoes) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(Threads(1), 120, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 8u);
  FaultInjectionEnv fault_env(&read_env_);
  absl::Status sequential;
  for (size_t threads : {size_t{1}, size_t{4}}) {
    SCOPED_TRACE(absl::StrCat("replay_threads=", threads));
    SegmentedWalOptions options = Threads(threads);
    options.env = &fault_env;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    fault_env.InjectError(kOpRead, absl::InternalError("injected read error"),
                          SegmentName(segs[3].first_lsn), 0, -1);
    read_env_.TakeReaderThreadCount();
    absl::Status s = wal->Replay().status();
    fault_env.ClearInjectedErrors();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInternal,
                            HasSubstr("injected read error")));
    if (threads == 1) {
      sequential = s;
    } else {
      EXPECT_GE(read_env_.TakeReaderThreadCount(), 2u);
      EXPECT_EQ(s, sequential);
    }
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
}

// kSkipAnyCorruptedRecords: every run replays recovery's jumps, and resyncs
// past damage that appeared after Open, as the sequential read does.
TEST_F(ParallelReplayTest, SkipAnyCorruptedRecordsSkipsTheSameRecords) {
  SegmentedWalOptions base;
  base.recovery_mode = RecoveryMode::kSkipAnyCorruptedRecords;
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(Threads(1, base), 120, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 8u);
  // Damage recovery finds and skips: the second record of segments 1 and 4.
  std::vector<uint64_t> bad_lsns;
  for (size_t seg : {size_t{1}, size_t{4}}) {
    const std::vector<Frame> frames = RecordFrames(ReadAll(segs[seg].path));
    ASSERT_GE(frames.size(), 5u);
    ASSERT_NO_FATAL_FAILURE(
        CorruptByte(segs[seg].path, frames[1].offset + kRecordHeaderSize + 9));
    bad_lsns.push_back(frames[1].lsn);
  }
  // Damage that appears after Open, further into segment 4: a segment with
  // skipped damage resyncs past it.
  const std::string late_path = segs[4].path;
  const std::string before_late = ReadAll(late_path);
  const std::vector<Frame> late = RecordFrames(before_late);
  ASSERT_GE(late.size(), 5u);
  bad_lsns.push_back(late[3].lsn);
  std::vector<WalRecord> kept;
  for (const WalRecord& r : expected) {
    if (std::find(bad_lsns.begin(), bad_lsns.end(), r.lsn) == bad_lsns.end()) {
      kept.push_back(r);
    }
  }
  ASSERT_EQ(kept.size(), expected.size() - 3);
  const std::vector<WalRecord> from_mid = Slice(kept, segs[1].first_lsn + 3);
  for (size_t threads : {size_t{1}, size_t{4}}) {
    SCOPED_TRACE(absl::StrCat("replay_threads=", threads));
    ASSERT_NO_FATAL_FAILURE(WriteAll(late_path, before_late));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Threads(threads, base)));
    ASSERT_THAT(wal->recovery_report().drops, SizeIs(2));
    ASSERT_NO_FATAL_FAILURE(
        CorruptByte(late_path, late[3].offset + kRecordHeaderSize + 9));
    read_env_.TakeReaderThreadCount();
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
    EXPECT_TRUE(SameRecords(got, kept));
    EXPECT_EQ(read_env_.TakeReaderThreadCount() >= 2, threads > 1);
    ASSERT_OK_AND_ASSIGN(got, wal->ReplayFrom(segs[1].first_lsn + 3));
    EXPECT_TRUE(SameRecords(got, from_mid));
  }
}

// Replays split across threads while TruncateBefore deletes (and recycles)
// the segments they read: each replay returns a whole suffix of the log or
// OutOfRange, never a crash, a hole or a race (TSan).
TEST_F(SegmentedWalTest, TruncateBeforeDuringParallelReplays) {
  SegmentedWalOptions options = SmallSegments(1024);
  options.replay_threads = 4;
  options.replay_min_bytes_per_thread = 0;
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 400, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 40u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  std::atomic<bool> done{false};
  std::thread truncator([&] {
    for (size_t i = 1; i < segs.size(); ++i) {
      EXPECT_OK(wal->TruncateBefore(segs[i].first_lsn).status());
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    done = true;
  });
  int replays = 0;
  while (!done || replays < 5) {
    absl::StatusOr<std::vector<WalRecord>> got = wal->Replay();
    ++replays;
    if (absl::IsOutOfRange(got.status())) continue;
    ASSERT_OK(got.status());
    ASSERT_FALSE(got->empty());
    EXPECT_EQ(got->back().lsn, expected.back().lsn);
    EXPECT_TRUE(SameRecords(*got, Slice(expected, got->front().lsn)))
        << "replay " << replays;
  }
  truncator.join();
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
  EXPECT_TRUE(SameRecords(got, Slice(expected, segs.back().first_lsn)));
}

TEST_F(SegmentedWalTest, OpenRejectsMoreThan64ReplayThreads) {
  SegmentedWalOptions options = Options();
  options.replay_threads = 65;
  EXPECT_THAT(SegmentedWal::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("replay_threads")));
  options.replay_threads = 64;
  EXPECT_OK(SegmentedWal::Open(options).status());
}

}  // namespace

}  // namespace segwal
