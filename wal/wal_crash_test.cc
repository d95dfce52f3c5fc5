// Crash, fault and concurrency tests for SegmentedWal, against its public API.
//
// Every test checks the same promise (wal/segmented_wal.h, wal/FORMAT.md
// "Durability"): what was acknowledged durable (a Sync returned OK, or
// durable_lsn() said so) survives, and what comes back is exactly a prefix of
// what was appended from the truncation floor (contiguous LSNs, no holes, no
// phantom or altered records).
//
//   CrashCycleTest       Random workloads over FaultInjectionEnv(MemEnv), each
//                        ended by SimulateCrash in a random CrashMode (before
//                        or after destroying the WAL), then a reopen checked
//                        against a model of the log. Sharded. The total is
//                        SEGWAL_CRASH_CYCLES (default 24,000; ASan 4,000,
//                        TSan 1,600). A failure prints the seed, the first bad
//                        LSN and the bazel command that replays it.
//   CrashCycleRecoveryModeTest  The same, reopening in each other recovery
//                        mode (one shard's worth each).
//   CrashUnderLoadTest   Power cut at a random moment while threads append,
//                        sync and truncate (mid-rollover, mid-group-commit,
//                        mid-truncation).
//
// Injected I/O errors are in wal_fault_test.cc, concurrency in
// wal_concurrency_test.cc; the shared harness is wal_crash_test_harness.h.

#include "wal/wal_crash_test_harness.h"

namespace segwal {
namespace {

// ---------------------------------------------------------------------------
// 1. Crash cycles.

constexpr int kCrashShards = 8;
constexpr uint64_t kDefaultCrashSeed = 0x5e6a17c4a54ULL;

int64_t CrashCycleBudget() {
  // Never fewer than 300 by default (the TSan build runs 1,600).
  const int64_t fallback = kTsan ? 1600 : kSanitized ? 4000 : 24000;
  return std::max<int64_t>(testutil::EnvInt("SEGWAL_CRASH_CYCLES", fallback),
                           kCrashShards);
}

class CrashCycleRunner {
 public:
  // `recovery`: the mode of every reopen after a crash.
  CrashCycleRunner(uint64_t seed, std::string where, RecoveryMode recovery)
      : rnd_(seed), where_(std::move(where)), recovery_(recovery) {}
  ~CrashCycleRunner() {
    wal_.reset();  // before the Envs it uses
    fi_.reset();
  }

  const CrashStats& stats() const { return stats_; }

  void Run(int64_t cycles) {
    int64_t cycles_left_in_env = 0;
    for (int64_t cycle = 0; cycle < cycles; ++cycle) {
      SCOPED_TRACE(absl::StrCat(where_, " cycle ", cycle));
      if (cycles_left_in_env == 0) {
        // A fresh file system now and then keeps logs small and covers
        // crashes of a young log (first segment, nothing synced yet).
        cycles_left_in_env = 1 + static_cast<int64_t>(rnd_.Uniform(40));
        NewFileSystem();
        if (::testing::Test::HasFatalFailure()) return;
      }
      --cycles_left_in_env;
      Workload();
      if (::testing::Test::HasFatalFailure()) return;
      CrashAndRecover();
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

 private:
  void NewFileSystem() {
    wal_.reset();
    fi_.reset();
    mem_ = NewMemEnv();
    fi_ = std::make_unique<FaultInjectionEnv>(mem_.get());
    model_ = WalModel();
    // Padded segments (direct I/O: MemEnv ignores O_DIRECT, the format and
    // the writer's block alignment are what is exercised) in a third of the
    // file systems.
    direct_io_ = rnd_.OneIn(3);
    OpenWal();
    if (::testing::Test::HasFatalFailure()) return;
    ASSERT_EQ(wal_->next_lsn(), 1u);
    ASSERT_EQ(wal_->durable_lsn(), 0u);
  }

  void OpenWal(RecoveryMode mode = RecoveryMode::kTolerateCorruptedTail) {
    const absl::Status s = TryOpenWal(mode);
    ASSERT_TRUE(s.ok()) << "Open (" << RecoveryModeName(mode) << ") after "
                        << last_event_ << ": " << s;
  }

  absl::Status TryOpenWal(RecoveryMode mode) {
    SegmentedWalOptions o;
    o.wal_dir = kWalDir;
    o.env = fi_.get();
    o.segment_target_size = 1024 + rnd_.Uniform(15 * 1024 + 1);  // 1-16 KiB
    o.write_buffer_size = size_t{64} << rnd_.Uniform(11);        // 64B-64KiB
    o.recovery_mode = mode;
    // Spares (zero-filled and recycled) in most runs, prepared in line so the
    // file operations, and so the crash points, follow from the seed.
    o.preallocate_segments = !rnd_.OneIn(4);
    o.background_preallocation = false;
    o.background_sealing = false;
    o.recycle_segments = rnd_.Uniform(3);
    // Now and then the option flips across a reopen: a direct-I/O writer
    // seals an unpadded tail, a buffered one appends to a padded segment.
    o.use_direct_io = direct_io_ != rnd_.OneIn(8);
    direct_io_open_ = o.use_direct_io;
    auto wal = SegmentedWal::Open(o);
    if (!wal.ok() && mode == RecoveryMode::kAbsoluteConsistency) {
      // Refusing a torn tail is kAbsoluteConsistency's job; it must say
      // DataLoss and change nothing (the default mode then recovers).
      EXPECT_THAT(wal, testutil::StatusIs(absl::StatusCode::kDataLoss))
          << "kAbsoluteConsistency Open after " << last_event_;
      ++stats_.absolute_refusals;
      return TryOpenWal(RecoveryMode::kTolerateCorruptedTail);
    }
    if (!wal.ok()) return wal.status();
    wal_ = std::move(wal).value();
    durable_seen_ = wal_->durable_lsn();
    return absl::OkStatus();
  }

  // A power cut somewhere inside the next workload: from the cut_at_-th
  // file-system call on, every call fails, so nothing more reaches the disk,
  // as if power died in the middle of whatever the WAL was doing (a roll, a
  // group commit, a truncation, an Open). The crash that ends the cycle then
  // applies the loss. Deterministic, unlike a crash from another thread.
  void ArmPowerCut() {
    cut_armed_ = true;
    cut_at_ = rnd_.Uniform(120);
    cut_base_ = fi_->OpCount(kOpAll);
    fi_->InjectError(kOpAll, absl::UnavailableError("power cut"), "", cut_at_,
                     -1);
    ++stats_.power_cut_cycles;
  }
  bool PowerIsCut() const {
    return cut_armed_ && fi_->OpCount(kOpAll) - cut_base_ > cut_at_;
  }
  // A public call failed: acceptable only once the power is cut, and then
  // the workload stops (the process is dying).
  void Failed(const char* call, const absl::Status& s) {
    ASSERT_TRUE(PowerIsCut()) << call << " failed: " << s;
    ASSERT_EQ(s.code(), absl::StatusCode::kUnavailable)
        << call << " failed after the power cut with another code: " << s;
    dead_ = true;
    ++stats_.power_cuts_hit;
    ++stats_.power_cut_calls[call];
  }

  // Called after every operation: durable_lsn() is a promise we can hold the
  // WAL to at the next crash.
  void NoteDurable() {
    if (wal_ == nullptr) return;
    const uint64_t d = wal_->durable_lsn();
    ASSERT_GE(d, durable_seen_) << "durable_lsn() went backwards";
    ASSERT_LE(d, model_.last_lsn())
        << "durable_lsn() is beyond the last LSN appended";
    durable_seen_ = d;
    model_.acked = std::max(model_.acked, d);
  }

  void Workload() {
    dead_ = false;
    cut_armed_ = false;
    if (rnd_.OneIn(3)) ArmPowerCut();
    const uint64_t ops = 1 + rnd_.Uniform(rnd_.OneIn(5) ? 300 : 60);
    for (uint64_t i = 0; i < ops && !dead_; ++i) {
      const uint64_t dice = rnd_.Uniform(100);
      if (dice < 70) {
        DoAppend();
      } else if (dice < 83) {
        DoSync();
      } else if (dice < 87) {
        last_event_ = "Flush";
        const absl::Status s = wal_->Flush();
        if (!s.ok()) Failed("Flush", s);
      } else if (dice < 92) {
        DoTruncate();
      } else if (dice < 94) {
        DoCleanReopen();
      } else if (dice < 95) {
        last_event_ = "live Replay";
        auto got = wal_->Replay();
        if (!got.ok()) {
          Failed("Replay", got.status());
        } else {
          const std::string err = CheckComplete(*got, wal_->next_lsn(), model_);
          ASSERT_TRUE(err.empty()) << "live Replay: " << err;
        }
      } else {
        DoAppend();
      }
      if (::testing::Test::HasFatalFailure()) return;
      NoteDurable();
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  void DoAppend() {
    last_event_ = "Append";
    WalRecord rec = RandomRecord(rnd_, model_.next_lsn());
    auto lsn = AppendRecord(*wal_, rec);
    if (!lsn.ok()) {
      Failed("Append", lsn.status());
      return;
    }
    ASSERT_EQ(*lsn, rec.lsn) << "LSNs must be contiguous";
    ASSERT_EQ(wal_->next_lsn(), *lsn + 1);
    model_.Add(std::move(rec));
    ++stats_.records_appended;
  }

  void DoSync() {
    last_event_ = "Sync";
    const uint64_t last = model_.last_lsn();
    const absl::Status s = wal_->Sync();
    if (!s.ok()) {
      Failed("Sync", s);
      return;
    }
    ASSERT_GE(wal_->durable_lsn(), last)
        << "Sync returned OK but durable_lsn() does not cover LSN " << last;
    ++stats_.syncs;
  }

  void DoTruncate() {
    last_event_ = "TruncateBefore";
    const uint64_t d = wal_->durable_lsn();
    if (d == 0) return;
    const uint64_t checkpoint = 1 + rnd_.Uniform(d);  // <= durable
    auto before = wal_->ListSegments();
    if (!before.ok()) {
      Failed("ListSegments", before.status());
      return;
    }
    auto tr = wal_->TruncateBefore(checkpoint);
    if (!tr.ok()) {
      // Some deletes may be durable, the last perhaps not: after the crash
      // the log starts anywhere in [floor, checkpoint].
      model_.floor_hi = std::max(model_.floor_hi, checkpoint);
      Failed("TruncateBefore", tr.status());
      return;
    }
    auto after = wal_->ListSegments();
    if (!after.ok()) {
      Failed("ListSegments", after.status());
      return;
    }
    ASSERT_FALSE(after->empty()) << "TruncateBefore deleted the active segment";
    ASSERT_EQ(before->size() - after->size(), tr->segments_deleted);
    const uint64_t first = after->front().first_lsn;
    ASSERT_GE(first, model_.floor);
    ASSERT_LE(first, std::max(checkpoint, model_.floor))
        << "TruncateBefore(" << checkpoint << ") deleted LSNs >= checkpoint";
    if (after->size() > 1) {
      // Every sealed segment whose records are all < checkpoint is deleted.
      ASSERT_GT((*after)[1].first_lsn, checkpoint)
          << "TruncateBefore(" << checkpoint << ") kept segment "
          << after->front().path << " whose records all precede it";
    }
    model_.DropBefore(first);  // the deletes were synced: durable
    ++stats_.truncations;
    stats_.segments_deleted += tr->segments_deleted;
    if (first > 1 && rnd_.OneIn(4)) {
      auto below = wal_->ReplayFrom(first - 1);
      if (!(PowerIsCut() &&
            below.status().code() == absl::StatusCode::kUnavailable)) {
        EXPECT_THAT(below, testutil::StatusIs(absl::StatusCode::kOutOfRange))
            << "ReplayFrom below the retained floor " << first;
      }
    }
  }

  void DoCleanReopen() {
    last_event_ = "clean reopen";
    wal_.reset();
    const absl::Status s = TryOpenWal(RecoveryMode::kTolerateCorruptedTail);
    if (!s.ok()) {
      Failed("Open (clean reopen)", s);
      return;
    }
    ++stats_.clean_reopens;
    auto got = wal_->Replay();
    if (!got.ok()) {
      Failed("Replay after a clean reopen", got.status());
      return;
    }
    // Nothing was lost: a clean close flushes (and the power is still on for
    // everything the destructor wrote, or else Open would have failed).
    const std::string err = CheckComplete(*got, wal_->next_lsn(), model_);
    ASSERT_TRUE(err.empty()) << "after a reopen without crash: " << err;
    stats_.records_verified += got->size();
  }

  void CrashAndRecover() {
    const auto mode = static_cast<CrashMode>(rnd_.Uniform(3));
    const uint64_t crash_seed = rnd_.Next64();
    const bool crash_first = rnd_.OneIn(2);
    SCOPED_TRACE(absl::StrCat(
        "crash ", CrashModeName(mode), " seed ", crash_seed,
        crash_first ? ", crash then destroy" : ", destroy then crash",
        cut_armed_ ? absl::StrCat(", power cut at file-system call #", cut_at_,
                                  dead_ ? " (hit)" : " (not reached)")
                   : std::string(),
        "; model: floor ", model_.floor, " (up to ", model_.floor_hi,
        "), acked ", model_.acked, ", last appended ", model_.last_lsn()));
    last_event_ = absl::StrCat("crash ", CrashModeName(mode));
    if (direct_io_open_) ++stats_.direct_io_cycles;
    if (crash_first) {
      ASSERT_OK(fi_->SimulateCrash(mode, crash_seed));
      wal_.reset();  // its handles are stale: must not touch the new state
      ++stats_.crash_first;
    } else {
      wal_.reset();
      ASSERT_OK(fi_->SimulateCrash(mode, crash_seed));
    }
    ++stats_.cycles[static_cast<int>(mode)];

    // Every mode must give the same answer for the damage a crash does (a
    // torn tail of the last segment), except that kAbsoluteConsistency may
    // refuse it.
    const RecoveryMode recovery = recovery_;
    ++stats_.recoveries[static_cast<int>(recovery)];
    SCOPED_TRACE(absl::StrCat("reopened with ", RecoveryModeName(recovery)));
    OpenWal(recovery);
    if (::testing::Test::HasFatalFailure()) return;
    const RecoveryReport& report = wal_->recovery_report();
    SCOPED_TRACE(absl::StrCat("recovery drops: ", DescribeDrops(report)));
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal_->Replay());
    const uint64_t next = wal_->next_lsn();
    const std::string err = CheckRecovered(got, next, model_);
    ASSERT_TRUE(err.empty()) << err;
    const uint64_t last = next - 1;
    const uint64_t first = got.empty() ? next : got.front().lsn;
    if (got.empty()) {
      ASSERT_TRUE(wal_->durable_lsn() == 0 || wal_->durable_lsn() == last)
          << "durable_lsn() " << wal_->durable_lsn() << " of an empty log";
    } else {
      ASSERT_EQ(wal_->durable_lsn(), last)
          << "Open must leave every recovered record durable";
      ASSERT_EQ(report.last_lsn, last);
      ASSERT_EQ(report.first_lsn, got.front().lsn);
    }
    ASSERT_GE(std::max(wal_->durable_lsn(), first - 1), model_.acked);

    stats_.records_verified += got.size();
    stats_.records_lost += model_.last_lsn() - last;
    stats_.bytes_dropped += DroppedBytes(report);
    model_.CutAfter(last);
    model_.DropBefore(first);
    model_.floor_hi = model_.floor;
    durable_seen_ = wal_->durable_lsn();
    model_.acked = std::max(model_.acked, durable_seen_);

    if (rnd_.OneIn(8)) {
      // The other readers agree with Replay.
      const uint64_t span = model_.next_lsn() - model_.floor + 1;
      std::string e =
          CheckIterator(*wal_, model_, model_.floor + rnd_.Uniform(span));
      ASSERT_TRUE(e.empty()) << e;
      e = CheckPaging(*wal_, model_, model_.floor + rnd_.Uniform(span),
                      1 + rnd_.Uniform(20));
      ASSERT_TRUE(e.empty()) << e;
    }

    // Appends continue right after the recovered prefix (LSNs of lost records
    // are reused).
    DoAppend();
  }

  Random rnd_;
  const std::string where_;
  const RecoveryMode recovery_;
  // The power cut of the current cycle (see ArmPowerCut).
  bool cut_armed_ = false;
  uint64_t cut_at_ = 0;
  uint64_t cut_base_ = 0;
  bool dead_ = false;  // a call failed after the cut: the workload stopped
  bool direct_io_ = false;       // this file system's WAL uses direct I/O
  bool direct_io_open_ = false;  // the last Open did
  std::unique_ptr<Env> mem_;
  std::unique_ptr<FaultInjectionEnv> fi_;
  std::unique_ptr<SegmentedWal> wal_;
  WalModel model_;
  uint64_t durable_seen_ = 0;
  std::string last_event_ = "start";
  CrashStats stats_;
};

// Runs `cycles` crash cycles from `seed`, reopening with `recovery`, and
// adds the numbers to the summary. `filter` replays just this test.
void RunCrashCycles(const std::string& label, uint64_t seed, int64_t cycles,
                    RecoveryMode recovery, const std::string& filter) {
  const uint64_t base_seed = testutil::TestSeed(kDefaultCrashSeed);
  const std::string where = absl::StrCat(
      label,
      "; replay: bazel test //wal:wal_crash_test "
      "--test_env=SEGWAL_TEST_SEED=",
      base_seed, " --test_env=SEGWAL_CRASH_CYCLES=", CrashCycleBudget(),
      " --test_filter='", filter, "'");
  CrashCycleRunner runner(seed, where, recovery);
  runner.Run(cycles);
  const CrashStats& s = runner.stats();
  printf("[wal_crash_test] %s, seed %" PRIu64 ": %s\n", label.c_str(),
         base_seed, s.Summary().c_str());
  fflush(stdout);
  {
    std::lock_guard<std::mutex> l(g_stats_mu);
    g_crash_stats.Add(s);
  }
  if (!::testing::Test::HasFatalFailure() && cycles >= 60) {
    for (int m = 0; m < 3; ++m) {
      EXPECT_GT(s.cycles[m], 0u)
          << "no cycle crashed in " << CrashModeName(static_cast<CrashMode>(m));
    }
    EXPECT_GT(s.direct_io_cycles, 0u) << "no cycle crashed with use_direct_io";
  }
}

// The heart: SEGWAL_CRASH_CYCLES cycles over kCrashShards shards, reopening
// in the default mode (kTolerateCorruptedTail).
class CrashCycleTest : public ::testing::TestWithParam<int> {};

TEST_P(CrashCycleTest, AcknowledgedRecordsSurviveAndNothingElseAppears) {
  const int shard = GetParam();
  const int64_t total = CrashCycleBudget();
  const int64_t mine = total / kCrashShards + (shard < total % kCrashShards);
  const uint64_t seed = testutil::TestSeed(kDefaultCrashSeed) +
                        0x9e3779b97f4a7c15ULL * (shard + 1);
  RunCrashCycles(absl::StrCat("shard ", shard), seed, mine,
                 RecoveryMode::kTolerateCorruptedTail,
                 absl::StrCat("Shards/CrashCycleTest.*/", shard));
}

INSTANTIATE_TEST_SUITE_P(Shards, CrashCycleTest,
                         ::testing::Range(0, kCrashShards));

// The same cycles reopened in each other recovery mode (one shard's worth
// each): a crash only tears the tail of the last segment, which every mode
// cuts (FORMAT.md "What each mode does"); kAbsoluteConsistency may instead
// refuse with DataLoss, changing nothing.
class CrashCycleRecoveryModeTest
    : public ::testing::TestWithParam<RecoveryMode> {};

TEST_P(CrashCycleRecoveryModeTest, EveryModeCutsATornTailTheSameWay) {
  const RecoveryMode recovery = GetParam();
  const uint64_t seed =
      testutil::TestSeed(kDefaultCrashSeed) +
      0x2545f4914f6cdd1dULL * (static_cast<int>(recovery) + 1);
  const std::string name = RecoveryModeName(recovery);
  RunCrashCycles(name, seed, CrashCycleBudget() / kCrashShards, recovery,
                 absl::StrCat("RecoveryModes/CrashCycleRecoveryModeTest.*/",
                              name.substr(1)));
}

INSTANTIATE_TEST_SUITE_P(
    RecoveryModes, CrashCycleRecoveryModeTest,
    ::testing::Values(RecoveryMode::kAbsoluteConsistency,
                      RecoveryMode::kPointInTimeRecovery,
                      RecoveryMode::kSkipAnyCorruptedRecords),
    [](const ::testing::TestParamInfo<RecoveryMode>& info) {
      return std::string(RecoveryModeName(info.param)).substr(1);
    });

// Power loss at a random moment while 4 threads append and sync and another
// truncates: crashes land mid-rollover, mid-group-commit and mid-truncation.
// Acknowledged = covered by a Sync that returned OK, or by durable_lsn().
TEST(CrashUnderLoadTest, CrashWhileThreadsAppendSyncAndTruncate) {
  constexpr int kAppenders = 4;
  const int64_t cycles =
      testutil::EnvInt("SEGWAL_LOAD_CRASH_CYCLES", kSanitized ? 60 : 300);
  const uint64_t seed = testutil::TestSeed(0x10ad);
  SCOPED_TRACE(absl::StrCat("SEGWAL_TEST_SEED=", seed));
  Random rnd(seed);
  std::unique_ptr<Env> mem;
  std::unique_ptr<FaultInjectionEnv> fi;
  WalModel known;  // the log as verified after the previous crash
  uint64_t modes[3] = {0, 0, 0}, appended_total = 0, lost_total = 0,
           failed_append_recovered = 0, truncations_total = 0;
  for (int64_t cycle = 0; cycle < cycles; ++cycle) {
    if (cycle % 25 == 0) {
      fi.reset();
      mem = NewMemEnv();
      fi = std::make_unique<FaultInjectionEnv>(mem.get());
      known = WalModel();
    }
    const auto mode = static_cast<CrashMode>(rnd.Uniform(3));
    const uint64_t crash_seed = rnd.Next64();
    const uint64_t crash_after = 1 + rnd.Uniform(400);  // appends
    SCOPED_TRACE(absl::StrCat("cycle ", cycle, ": ", CrashModeName(mode), " seed ",
                              crash_seed, " after ", crash_after,
                              " appends; log [", known.floor, ", ",
                              known.last_lsn(), "]"));
    SegmentedWalOptions o;
    o.wal_dir = kWalDir;
    o.env = fi.get();
    o.segment_target_size = 1024 + rnd.Uniform(15 * 1024 + 1);
    o.write_buffer_size = size_t{64} << rnd.Uniform(11);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(o));
    ASSERT_EQ(wal->next_lsn(), known.next_lsn());

    std::atomic<bool> crashing{false};
    std::atomic<uint64_t> appends{0};
    std::atomic<uint64_t> acked{known.acked};
    std::atomic<uint64_t> max_checkpoint{0};
    ThreadErrors errors;
    // Per appender: records whose Append returned OK, and the payloads of
    // those whose Append failed.
    std::vector<std::vector<WalRecord>> ok(kAppenders);
    std::vector<std::vector<std::string>> failed(kAppenders);
    auto appender = [&](uint32_t tid) {
      Random r(crash_seed + tid);
      for (uint32_t seq = 0;; ++seq) {
        WalRecord rec = RandomRecord(r, 0);
        rec.tenant_id = tid;
        rec.database_id = static_cast<uint64_t>(cycle);
        rec.payload = EncodePayload(tid, seq, rec.payload);
        auto lsn = AppendRecord(*wal, rec);
        if (!lsn.ok()) {
          if (!crashing.load(std::memory_order_acquire)) {
            errors.Add(absl::StrCat("Append before the crash: ",
                                    lsn.status().ToString()));
          }
          failed[tid].push_back(std::move(rec.payload));
          return;
        }
        rec.lsn = *lsn;
        ok[tid].push_back(rec);
        appends.fetch_add(1, std::memory_order_acq_rel);
        if (r.OneIn(3)) {
          const absl::Status s = wal->Sync();
          if (!s.ok()) {
            if (!crashing.load(std::memory_order_acquire)) {
              errors.Add(absl::StrCat("Sync before the crash: ", s.ToString()));
            }
            return;
          }
          AtomicMax(&acked, *lsn);
          AtomicMax(&acked, wal->durable_lsn());
        }
      }
    };
    auto truncator = [&] {
      Random r(crash_seed ^ 0x7777);
      while (!crashing.load(std::memory_order_acquire)) {
        const uint64_t d = wal->durable_lsn();
        if (d > 1 && r.OneIn(2)) {
          const uint64_t c = 1 + r.Uniform(d);
          AtomicMax(&max_checkpoint, c);  // before: it may take effect
          auto t = wal->TruncateBefore(c);
          if (!t.ok()) {
            if (!crashing.load(std::memory_order_acquire)) {
              errors.Add(absl::StrCat("TruncateBefore before the crash: ",
                                      t.status().ToString()));
            }
            return;
          }
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    };
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < kAppenders; ++t) {
      threads.emplace_back(appender, t);
    }
    threads.emplace_back(truncator);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (appends.load(std::memory_order_acquire) < crash_after &&
           !errors.failed() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    // The power cut: from this instant every I/O fails. The threads then
    // stop and the WAL is destroyed before SimulateCrash applies the cut:
    // a process does not outlive its power loss (Env-level calls such as
    // TruncateBefore's deletes are not stale handles, so a WAL still running
    // after SimulateCrash would change the post-crash file system).
    crashing.store(true, std::memory_order_release);
    fi->SetFilesystemActive(false, absl::UnavailableError("power cut"));
    for (std::thread& t : threads) t.join();
    AtomicMax(&acked, wal->durable_lsn());  // a promise made before the cut
    wal.reset();
    ASSERT_OK(fi->SimulateCrash(mode, crash_seed));
    for (const std::string& e : errors.Take()) ADD_FAILURE() << e;
    if (HasFailure()) return;
    ++modes[static_cast<int>(mode)];

    // What may come back: the known log, then records whose Append returned
    // OK, by LSN.
    std::map<uint64_t, const WalRecord*> by_lsn;
    std::map<std::string, uint64_t> failed_payloads;
    for (int t = 0; t < kAppenders; ++t) {
      for (const WalRecord& r : ok[t]) by_lsn[r.lsn] = &r;
      for (const std::string& p : failed[t]) failed_payloads[p] = 0;
      appended_total += ok[t].size();
    }
    // A failed Append may leave a gap between LSNs that were returned OK
    // (another thread's Append can complete after it): the model stops at
    // the first gap; records after it are matched below.
    for (auto it = by_lsn.begin();
         it != by_lsn.end() && it->first == known.next_lsn(); ++it) {
      known.Add(*it->second);
    }
    known.acked = acked.load();
    known.floor_hi = std::max(known.floor, max_checkpoint.load());
    if (max_checkpoint.load() > 0) ++truncations_total;

    ASSERT_OK_AND_ASSIGN(wal, SegmentedWal::Open(o));
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
    for (const WalRecord& g : got) {
      if (g.lsn < known.next_lsn()) continue;
      if (g.lsn > known.next_lsn()) break;  // a hole: CheckRecovered says so
      auto it = by_lsn.find(g.lsn);
      if (it != by_lsn.end() && *it->second == g) {
        known.Add(g);  // appended OK after a failed Append's LSN
      } else if (failed_payloads.count(g.payload) > 0) {
        // The record of an Append that returned an error (the crash
        // interrupted it) came back; InjectedErrorTest pins this down.
        ++failed_append_recovered;
        known.Add(g);
      } else {
        break;
      }
    }
    const std::string err = CheckRecovered(got, wal->next_lsn(), known);
    ASSERT_TRUE(err.empty())
        << err << " (recovery: " << DescribeDrops(wal->recovery_report())
        << ")";
    const uint64_t last = wal->next_lsn() - 1;
    lost_total += known.last_lsn() - last;
    known.CutAfter(last);
    known.DropBefore(got.empty() ? wal->next_lsn() : got.front().lsn);
    known.floor_hi = known.floor;
    known.acked = std::max(known.acked, wal->durable_lsn());
  }
  EXPECT_EQ(failed_append_recovered, 0u)
      << "records of Appends that returned an error were recovered in "
      << failed_append_recovered << " cycles";
  printf("[wal_crash_test] crash under load: %" PRId64
         " cycles (kDropUnsynced %" PRIu64 ", kTornTail %" PRIu64
         ", kTornSectors %" PRIu64 "), %" PRIu64 " records appended, %" PRIu64
         " unsynced records lost, %" PRIu64 " cycles truncating\n",
         cycles, modes[0], modes[1], modes[2], appended_total, lost_total,
         truncations_total);
  fflush(stdout);
}

}  // namespace
}  // namespace segwal
