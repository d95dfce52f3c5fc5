// Injected I/O errors and read errors against SegmentedWal's public API
// (wal/segmented_wal.h, docs/DURABILITY.md section 3):
//
//   InjectedErrorTest    For every FaultOp the writer uses and every k, a fixed
//                        workload with the k-th matching call failing (EIO-
//                        and ENOSPC-like): the error reaches the caller with
//                        its code, the instance stays poisoned, and a reopen
//                        (with or without a crash) recovers everything
//                        acknowledged.
//   FullDiskTest         Open and Replay work while every write fails.
//   OpenReadErrorTest, ReplayReadErrorTest  Read errors surface as errors,
//                        never as a shorter (or cut, or quarantined) log.

#include "wal/wal_crash_test_harness.h"

namespace segwal {
namespace {

// ---------------------------------------------------------------------------
// 2. Injected errors.

// Fault tests run hundreds of cases; one bug would otherwise stop the loop (or
// repeat itself hundreds of times). A FailureDigest runs each case with its
// gtest failures intercepted, then reports every distinct failing check once,
// with its first message (which names the case) and how often it failed.
thread_local const ::testing::TestPartResultArray* t_intercepted = nullptr;

// HasFatalFailure() that also sees failures a FailureDigest intercepted.
bool Fatal() {
  if (t_intercepted == nullptr) return ::testing::Test::HasFatalFailure();
  for (int i = 0; i < t_intercepted->size(); ++i) {
    if (t_intercepted->GetTestPartResult(i).fatally_failed()) return true;
  }
  return false;
}

class FailureDigest {
 public:
  // Runs `body`; returns true if it had no failure.
  template <typename F>
  bool Run(F&& body) {
    ::testing::TestPartResultArray results;
    {
      ::testing::ScopedFakeTestPartResultReporter reporter(
          ::testing::ScopedFakeTestPartResultReporter::
              INTERCEPT_ONLY_CURRENT_THREAD,
          &results);
      t_intercepted = &results;
      body();
      t_intercepted = nullptr;
    }
    ++runs_;
    bool ok = true;
    for (int i = 0; i < results.size(); ++i) {
      const ::testing::TestPartResult& r = results.GetTestPartResult(i);
      if (!r.failed()) continue;
      ok = false;
      const std::string key = absl::StrCat(
          r.file_name() != nullptr ? r.file_name() : "?", ":", r.line_number());
      auto [it, inserted] = checks_.try_emplace(key);
      if (inserted) it->second.first_message = r.message();
      ++it->second.failures;
    }
    if (!ok) ++failed_runs_;
    return ok;
  }

  uint64_t runs() const { return runs_; }
  uint64_t failed_runs() const { return failed_runs_; }

  void Report(const std::string& what) const {
    for (const auto& [key, check] : checks_) {
      ADD_FAILURE() << what << ": the check at " << key << " failed "
                    << check.failures << " time(s) (" << failed_runs_ << " of "
                    << runs_ << " runs failed some check). First:\n"
                    << check.first_message;
    }
  }

 private:
  struct Check {
    uint64_t failures = 0;
    std::string first_message;
  };
  uint64_t runs_ = 0;
  uint64_t failed_runs_ = 0;
  std::map<std::string, Check> checks_;
};

// The fixed workload every injected-fault run performs (identical each run).
struct FaultStep {
  enum Kind { kAppend, kSync, kFlush, kTruncate, kReplay };
  Kind kind;
  WalRecord record;  // kAppend (lsn filled in at run time)
};

std::vector<FaultStep> FixedFaultWorkload() {
  Random rnd(0xfa017);
  std::vector<FaultStep> steps;
  for (int i = 0; i < 64; ++i) {
    FaultStep a{FaultStep::kAppend, RandomRecord(rnd, 0)};
    if (i % 9 == 4) a.record.payload = rnd.RandomBytes(3000);  // > segment
    if (i % 11 == 7) a.record.payload.clear();
    if (i % 13 == 0) a.record.payload = rnd.RandomBytes(9000);  // > buffers
    steps.push_back(std::move(a));
    if (i % 4 == 3) steps.push_back({FaultStep::kSync, {}});
    if (i % 7 == 5) steps.push_back({FaultStep::kFlush, {}});
    if (i == 24 || i == 50) steps.push_back({FaultStep::kTruncate, {}});
    if (i == 40) steps.push_back({FaultStep::kReplay, {}});
  }
  steps.push_back({FaultStep::kSync, {}});
  return steps;
}

// What a public call returned, judged against the single injected error.
class FailureTracker {
 public:
  explicit FailureTracker(absl::Status injected)
      : injected_(std::move(injected)) {}

  // `write` marks Append/Sync/Flush: once one fails, they must all fail.
  void Observe(const std::string& call, const absl::Status& s, bool write) {
    if (s.ok()) {
      if (write && poisoned_) {
        ADD_FAILURE() << call << " returned OK after " << first_failure_
                      << " failed with " << first_status_
                      << ": a poisoned WAL must refuse every later write";
      }
      return;
    }
    EXPECT_EQ(s.code(), injected_.code())
        << call << " failed with " << s << ", injected " << injected_;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr(std::string(injected_.message())))
        << call << " lost the injected message";
    if (first_failure_.empty()) {
      first_failure_ = call;
      first_status_ = s;
    }
    if (write) poisoned_ = true;
  }

  bool any_failure() const { return !first_failure_.empty(); }
  bool poisoned() const { return poisoned_; }
  const std::string& first_failure() const { return first_failure_; }

 private:
  const absl::Status injected_;
  std::string first_failure_;
  absl::Status first_status_;
  bool poisoned_ = false;
};

struct FaultCase {
  uint32_t op;
  absl::Status error;
  int64_t skip;
  bool crash;                 // SimulateCrash(crash_mode) before reopening
  bool crash_before_destroy;  // ... while the failed WAL is still open
  CrashMode crash_mode = CrashMode::kDropUnsynced;
};

struct FaultOutcome {
  bool decided = false;       // the injected phase ran to its end
  bool fired = false;         // the injected error was returned by the Env
  std::string first_failure;  // "" if no public call failed
};

// One injected-fault run on a fresh file system:
//   Setup     (no faults) 12 synced records, 3 more flushed by the destructor,
//             then an unsynced garbage tail the next Open has to cut.
//   Injected  the k-th call of one FaultOp fails; Open (which cuts the tail)
//             and the fixed workload run; every public call is judged.
//   Recover   errors cleared, the WAL destroyed (optionally with a
//             kDropUnsynced crash), reopened and compared with the model;
//             appends then continue.
class FaultRunner {
 public:
  FaultRunner() : mem_(NewMemEnv()), fi_(mem_.get()) {}
  ~FaultRunner() { wal_.reset(); }

  void Run(const FaultCase& fc, FaultOutcome* out) {
    Setup();
    if (Fatal()) return;
    InjectedPhase(fc, out);
    if (Fatal()) return;
    Recover(fc);
  }

 private:
  void Setup() {
    Random rnd(0x5e7);
    {
      ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(FaultOptions(&fi_)));
      for (int i = 0; i < 15; ++i) {
        WalRecord r = RandomRecord(rnd, model_.next_lsn());
        ASSERT_OK(AppendRecord(*wal, r));
        model_.Add(std::move(r));
        if (i == 11) {
          ASSERT_OK(wal->Sync());
        }
      }
      model_.acked = 12;
    }
    ASSERT_OK_AND_ASSIGN(std::vector<std::string> names,
                         fi_.GetChildren(kWalDir));
    std::string last;
    for (const std::string& n : names) {
      if (n.size() == 24 && n.substr(20) == ".wal") last = std::max(last, n);
    }
    ASSERT_FALSE(last.empty());
    // Through the base Env: the garbage (like the 3 flushed records) is not
    // durable as far as FaultInjectionEnv knows, so a crash drops it and an
    // Open that claims records 13-15 durable without syncing them is caught.
    ASSERT_OK_AND_ASSIGN(auto f, fi_.base()->NewAppendableFile(
                                     absl::StrCat(kWalDir, "/", last)));
    ASSERT_OK(f->Append(rnd.RandomBytes(200)));
    ASSERT_OK(f->Close());
  }

  // Flush is a write like Append and Sync, except on an instance Open left
  // read-only (it could not prepare the tail for appending): nothing is ever
  // staged there, and the header documents Flush as OK.
  bool FlushMustFail() const {
    return wal_->recovery_report().read_only_reason.empty();
  }

  void NoteDurable(const FailureTracker& t) {
    const uint64_t d = wal_->durable_lsn();
    if (d > model_.last_lsn() && durable_beyond_reported_) return;
    durable_beyond_reported_ = d > model_.last_lsn();
    EXPECT_LE(d, model_.last_lsn())
        << "durable_lsn() is beyond the last LSN whose Append returned OK ("
        << (t.any_failure() ? "after " + t.first_failure() + " failed"
                            : std::string("no call failed"))
        << "): the record of a failed Append was made durable";
    model_.acked = std::max(model_.acked, std::min(d, model_.last_lsn()));
  }

  void InjectedPhase(const FaultCase& fc, FaultOutcome* out) {
    static const std::vector<FaultStep>* const kSteps =
        new std::vector<FaultStep>(FixedFaultWorkload());
    FailureTracker t(fc.error);
    fi_.InjectError(fc.op, fc.error, "", fc.skip, 1);
    const uint64_t count_before = fi_.OpCount(fc.op);

    auto opened = SegmentedWal::Open(FaultOptions(&fi_));
    t.Observe("Open", opened.status(), /*write=*/false);
    if (opened.ok()) {
      wal_ = std::move(opened).value();
      NoteDurable(t);
      for (size_t i = 0; i < kSteps->size(); ++i) {
        if (Fatal()) return;
        const FaultStep& step = (*kSteps)[i];
        const std::string call_at = absl::StrCat(" (step ", i, ")");
        switch (step.kind) {
          case FaultStep::kAppend: {
            WalRecord r = step.record;
            r.lsn = model_.next_lsn();
            auto lsn = AppendRecord(*wal_, r);
            t.Observe("Append" + call_at, lsn.status(), true);
            if (lsn.ok()) {
              ASSERT_EQ(*lsn, r.lsn) << "LSNs must be contiguous";
              model_.Add(std::move(r));
            } else if (!has_failed_append_) {
              has_failed_append_ = true;
              failed_append_ = std::move(r);
            }
            break;
          }
          case FaultStep::kSync: {
            const uint64_t last = model_.last_lsn();
            const absl::Status s = wal_->Sync();
            t.Observe("Sync" + call_at, s, true);
            if (s.ok()) {
              EXPECT_GE(wal_->durable_lsn(), last)
                  << "Sync OK but durable_lsn() does not cover " << last;
            }
            break;
          }
          case FaultStep::kFlush:
            t.Observe("Flush" + call_at, wal_->Flush(), FlushMustFail());
            break;
          case FaultStep::kTruncate: {
            const uint64_t c = std::min(wal_->durable_lsn(), model_.last_lsn());
            if (c == 0) break;
            auto r = wal_->TruncateBefore(c);
            t.Observe("TruncateBefore" + call_at, r.status(), false);
            model_.floor_hi = std::max(model_.floor_hi, c);
            if (r.ok()) {
              auto segs = wal_->ListSegments();
              t.Observe("ListSegments" + call_at, segs.status(), false);
              if (segs.ok()) {
                ASSERT_FALSE(segs->empty());
                const uint64_t first = segs->front().first_lsn;
                ASSERT_LE(first, c);
                // Deletes are durable once TruncateBefore returned OK.
                model_.DropBefore(first);
                model_.floor_hi = first;
              }
            }
            break;
          }
          case FaultStep::kReplay: {
            auto got = wal_->Replay();
            t.Observe("Replay" + call_at, got.status(), false);
            if (got.ok()) {
              std::string err = CheckRecovered(*got, wal_->next_lsn(), model_);
              if (err.empty() && !got->empty() &&
                  got->back().lsn != model_.last_lsn()) {
                err = absl::StrCat("live Replay ends at ", got->back().lsn,
                                   ", appended up to ", model_.last_lsn());
              }
              EXPECT_TRUE(err.empty()) << "live Replay: " << err;
            }
            break;
          }
        }
        NoteDurable(t);
      }
      if (t.poisoned()) {
        EXPECT_EQ(wal_->poisoned_status().code(), fc.error.code())
            << "poisoned_status() after a failed write: "
            << wal_->poisoned_status();
        // Poisoned for good: neither writes nor syncs ever succeed again.
        t.Observe("Append after poison",
                  wal_->Append(1, 2, 3, 4, "after poison").status(), true);
        t.Observe("Sync after poison", wal_->Sync(), true);
        t.Observe("Flush after poison", wal_->Flush(), FlushMustFail());
      }
    }
    out->decided = true;
    out->fired =
        fi_.OpCount(fc.op) - count_before > static_cast<uint64_t>(fc.skip);
    out->first_failure = t.first_failure();
    if (out->fired) {
      // The one error a WAL keeps going after: a full disk while preparing a
      // spare file only ends preallocation (segmented_wal.h), and says so.
      const bool spare_full = absl::IsResourceExhausted(fc.error) &&
                              wal_ != nullptr &&
                              wal_->GetStats().spare_failures > 0;
      EXPECT_TRUE(t.any_failure() || spare_full)
          << "the injected " << OpName(fc.op) << " error (call #" << fc.skip
          << ") was swallowed: every public call returned OK";
    } else {
      EXPECT_FALSE(t.any_failure())
          << t.first_failure() << " failed although no error was injected";
    }
    fi_.ClearInjectedErrors();
  }

  void Recover(const FaultCase& fc) {
    const uint64_t crash_seed = 7 + fc.skip;
    if (fc.crash && fc.crash_before_destroy) {
      ASSERT_OK(fi_.SimulateCrash(fc.crash_mode, crash_seed));
      wal_.reset();
    } else {
      wal_.reset();
      if (fc.crash) {
        ASSERT_OK(fi_.SimulateCrash(fc.crash_mode, crash_seed));
      }
    }
    ASSERT_OK_AND_ASSIGN(wal_, SegmentedWal::Open(FaultOptions(&fi_)));
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal_->Replay());
    if (has_failed_append_ && !got.empty() &&
        failed_append_.lsn == model_.next_lsn() &&
        got.back().lsn >= failed_append_.lsn &&
        got[failed_append_.lsn - got.front().lsn] == failed_append_) {
      // Reported once here; then taken into the model so that the rest of
      // the run still checks everything else.
      ADD_FAILURE() << "the record of an Append that returned an error ("
                    << Describe(failed_append_)
                    << ") was recovered: a failed Append must not assign an "
                       "LSN visible to readers (docs/DURABILITY.md, section 3; "
                       "NodeDB-Lab/nodedb#164)";
      model_.Add(failed_append_);
    }
    const std::string err =
        CheckRecovered(got, wal_->next_lsn(), model_,
                       has_failed_append_ ? &failed_append_ : nullptr);
    ASSERT_TRUE(err.empty())
        << "after reopening: " << err
        << " (recovery: " << DescribeDrops(wal_->recovery_report()) << ")";
    const uint64_t first = got.empty() ? wal_->next_lsn() : got.front().lsn;
    model_.CutAfter(wal_->next_lsn() - 1);
    model_.DropBefore(first);
    model_.floor_hi = model_.floor;

    // The recovered WAL is healthy: appends continue after the prefix.
    WalRecord r;
    r.lsn = model_.next_lsn();
    r.record_type = 9;
    r.payload = "after recovery";
    ASSERT_OK_AND_ASSIGN(uint64_t lsn, AppendRecord(*wal_, r));
    ASSERT_EQ(lsn, r.lsn);
    model_.Add(std::move(r));
    ASSERT_OK(wal_->Sync());
    ASSERT_EQ(wal_->durable_lsn(), model_.last_lsn());
    wal_.reset();
    ASSERT_OK_AND_ASSIGN(wal_, SegmentedWal::Open(FaultOptions(&fi_)));
    ASSERT_OK_AND_ASSIGN(got, wal_->Replay());
    const std::string err2 = CheckComplete(got, wal_->next_lsn(), model_);
    ASSERT_TRUE(err2.empty())
        << "after appending to the recovered log: " << err2;
  }

  std::unique_ptr<Env> mem_;
  FaultInjectionEnv fi_;
  std::unique_ptr<SegmentedWal> wal_;
  WalModel model_;
  bool has_failed_append_ = false;
  WalRecord failed_append_;
  bool durable_beyond_reported_ = false;
};

class InjectedErrorTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(InjectedErrorTest, ErrorSurfacesPoisonsAndReopenRecoversDurable) {
  const uint32_t op = GetParam();
  const absl::Status errors[] = {
      absl::InternalError("injected EIO"),
      absl::DataLossError("injected EIO (data loss)"),
      absl::ResourceExhaustedError("injected ENOSPC"),
  };
  FailureDigest digest;
  uint64_t fired_runs = 0, max_k = 0;
  std::map<std::string, uint64_t> first_failures;
  for (size_t e = 0; e < 3; ++e) {
    // Reopen variants: 0 no crash; 1 destroy, then crash (kDropUnsynced);
    // 2 crash (kDropUnsynced), then destroy; 3 destroy, then crash
    // (kTornSectors). DataLoss is the rarer EIO flavour: it cycles through
    // them over k.
    constexpr int kVariants = 4;
    for (int variant = 0; variant < (e == 1 ? 1 : kVariants); ++variant) {
      for (int64_t k = 0;; ++k) {
        ASSERT_LT(k, 5000) << "the fixed workload never stopped hitting "
                           << OpName(op);
        const int v = e == 1 ? static_cast<int>(k % kVariants) : variant;
        FaultCase fc{op, errors[e], k, v != 0, v == 2};
        if (v == 3) fc.crash_mode = CrashMode::kTornSectors;
        const char* const kVariantNames[] = {
            "; reopen without crash",
            "; destroy, crash (kDropUnsynced), reopen",
            "; crash (kDropUnsynced), destroy, reopen",
            "; destroy, crash (kTornSectors), reopen"};
        FaultOutcome out;
        digest.Run([&] {
          SCOPED_TRACE(absl::StrCat(OpName(op), " call #", k, " fails with ",
                                    errors[e].ToString(), kVariantNames[v]));
          FaultRunner runner;
          runner.Run(fc, &out);
        });
        if (out.decided && !out.fired) break;
        if (!out.decided) continue;  // failed before it could tell
        ++fired_runs;
        max_k = std::max<uint64_t>(max_k, k);
        ++first_failures[out.first_failure.empty()
                             ? "none"
                             : out.first_failure.substr(
                                   0, out.first_failure.find(' '))];
      }
    }
  }
  std::string calls;
  for (const auto& [call, n] : first_failures) {
    absl::StrAppend(&calls, call, " ", n, ", ");
  }
  printf("[wal_crash_test] %s: %" PRIu64 " runs, %" PRIu64
         " with the fault fired (calls #0..#%" PRIu64
         " of the workload), %" PRIu64 " failed; first failing call: %s\n",
         OpName(op), digest.runs(), fired_runs, max_k, digest.failed_runs(),
         calls.c_str());
  fflush(stdout);
  {
    std::lock_guard<std::mutex> l(g_stats_mu);
    g_fault_runs += digest.runs();
    g_fault_fired += fired_runs;
  }
  digest.Report(OpName(op));
}

INSTANTIATE_TEST_SUITE_P(
    EveryWriterOp, InjectedErrorTest,
    ::testing::Values(kOpOpen, kOpAppend, kOpFlush, kOpSync, kOpDelete,
                      kOpSyncDir, kOpTruncate, kOpRename),
    [](const ::testing::TestParamInfo<uint32_t>& info) {
      return std::string(OpName(info.param)).substr(3);  // "Open", ...
    });

// A full disk must not stop a restart (docs/DURABILITY.md, section 3;
// tikv/raft-engine#344): Open of a
// log with no torn tail must not need to write, and Replay works. Writes then
// fail with the disk's error; nothing is lost once the disk has room again.
class FullDiskTest : public ::testing::TestWithParam<int> {};

TEST_P(FullDiskTest, OpenAndReplayWhileWritesFail) {
  // Bit 0: all write ops fail (else only Append and Sync). Bit 1: a power
  // loss (kDropUnsynced) before the final reopen, which holds the read-only
  // instance to its durable_lsn(). Bits 2-3: the state the log was left in.
  const bool all_writes = (GetParam() & 1) != 0;
  const bool crash = (GetParam() & 2) != 0;
  const int state = GetParam() >> 2;
  const char* const kStates[] = {"synced, then closed",
                                 "flushed by close, not synced",
                                 "last segment sealed, next never created"};
  SCOPED_TRACE(absl::StrCat("log ", kStates[state], "; failing: ",
                            all_writes ? "every write op" : "Append and Sync",
                            crash ? "; then a crash" : ""));
  auto mem = NewMemEnv();
  FaultInjectionEnv fi(mem.get());
  WalModel model;
  std::optional<WalRecord> rolled_record;
  Random rnd(0xd15c + state);
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(FaultOptions(&fi)));
    for (int i = 0; i < 40; ++i) {
      WalRecord r = RandomRecord(rnd, model.next_lsn());
      if (state == 2 && i == 39) {
        // Make this Append roll, and fail creating the next segment: the
        // sealed segment stays the last one.
        r.payload = rnd.RandomBytes(4000);
        fi.InjectError(kOpOpen, absl::InternalError("injected create failure"),
                       ".wal", 0, 1);
      }
      auto lsn = AppendRecord(*wal, r);
      if (state == 2 && i == 39) {
        r.lsn = model.next_lsn();
        if (lsn.ok()) {
          model.Add(std::move(r));
        } else {
          // Whether a failed Append's record may come back is
          // InjectedErrorTest's business: accept it below if so.
          rolled_record = std::move(r);
        }
        break;
      }
      ASSERT_OK(lsn);
      model.Add(std::move(r));
      if (i == 29) {
        ASSERT_OK(wal->Sync());
      }
    }
    if (state == 0) {
      ASSERT_OK(wal->Sync());
    }
    model.acked = wal->durable_lsn();
  }
  fi.ClearInjectedErrors();

  const absl::Status full =
      absl::ResourceExhaustedError("injected ENOSPC: disk full");
  const uint32_t ops = all_writes
                           ? kOpAppend | kOpFlush | kOpSync | kOpSyncDir |
                                 kOpTruncate | kOpDelete | kOpRename
                           : kOpAppend | kOpSync;
  fi.InjectError(ops, full, "", 0, -1);
  {
    auto opened = SegmentedWal::Open(FaultOptions(&fi));
    ASSERT_TRUE(opened.ok())
        << "Open of a log without a torn tail fails while writes fail: "
        << opened.status();
    std::unique_ptr<SegmentedWal> wal = std::move(opened).value();
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
    if (rolled_record.has_value() && !got.empty() &&
        got.back() == *rolled_record) {
      model.Add(*rolled_record);
    }
    std::string err = CheckComplete(got, wal->next_lsn(), model);
    EXPECT_TRUE(err.empty()) << "Replay with the disk full: " << err;
    err = CheckIterator(*wal, model, model.floor);
    EXPECT_TRUE(err.empty()) << "with the disk full: " << err;
    EXPECT_LE(wal->durable_lsn(), model.last_lsn());
    // Writes cannot become durable: Sync must say so.
    auto lsn = wal->Append(1, 2, 3, 4, "no room");
    if (lsn.ok()) {
      EXPECT_EQ(*lsn, model.next_lsn());
      EXPECT_THAT(wal->Sync(),
                  testutil::StatusIs(absl::StatusCode::kResourceExhausted))
          << "Sync with the disk full";
    } else {
      EXPECT_THAT(lsn,
                  testutil::StatusIs(absl::StatusCode::kResourceExhausted));
    }
    EXPECT_LE(wal->durable_lsn(), model.last_lsn());
    model.acked = std::max(model.acked, wal->durable_lsn());
  }
  fi.ClearInjectedErrors();
  if (crash) {
    ASSERT_OK(fi.SimulateCrash(CrashMode::kDropUnsynced, 1));
  }
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(FaultOptions(&fi)));
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
  const std::string err = crash ? CheckRecovered(got, wal->next_lsn(), model)
                                : CheckComplete(got, wal->next_lsn(), model);
  EXPECT_TRUE(err.empty()) << "after the disk-full episode: " << err;
}

INSTANTIATE_TEST_SUITE_P(States, FullDiskTest, ::testing::Range(0, 12));

// A log of several segments written without faults, and its model.
void BuildCleanLog(FaultInjectionEnv* fi, WalModel* model) {
  Random rnd(0x7ead);
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(FaultOptions(fi)));
  for (int i = 0; i < 80; ++i) {
    WalRecord r = RandomRecord(rnd, model->next_lsn());
    if (i % 10 == 3) r.payload = rnd.RandomBytes(5000);
    ASSERT_OK(AppendRecord(*wal, r));
    model->Add(std::move(r));
    if (i % 6 == 5) {
      ASSERT_OK(wal->Sync());
    }
  }
  ASSERT_OK(wal->Sync());
  model->acked = model->last_lsn();
  ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> segs, wal->ListSegments());
  ASSERT_GE(segs.size(), 5u);
}

// A read error while Open scans the log is an error, not damage: Open fails
// with it (or succeeds having lost nothing), and nothing is cut, quarantined
// or skipped because of it.
class OpenReadErrorTest : public ::testing::TestWithParam<RecoveryMode> {};

TEST_P(OpenReadErrorTest, OpenNeverMistakesAReadErrorForDamage) {
  const RecoveryMode mode = GetParam();
  const absl::Status injected = absl::DataLossError("injected read error");
  FailureDigest digest;
  for (int64_t k = 0;; ++k) {
    ASSERT_LT(k, 100000);
    bool decided = false, fired = false;
    digest.Run([&] {
      SCOPED_TRACE(absl::StrCat(RecoveryModeName(mode), ": read #", k,
                                " of Open fails with ", injected.ToString()));
      auto mem = NewMemEnv();
      FaultInjectionEnv fi(mem.get());
      WalModel model;
      BuildCleanLog(&fi, &model);
      if (Fatal()) return;
      SegmentedWalOptions o = FaultOptions(&fi);
      o.recovery_mode = mode;
      fi.InjectError(kOpRead, injected, "", k, 1);
      const uint64_t before = fi.OpCount(kOpRead);
      {
        auto wal = SegmentedWal::Open(o);
        fired = fi.OpCount(kOpRead) - before > static_cast<uint64_t>(k);
        decided = true;
        fi.ClearInjectedErrors();
        if (!wal.ok()) {
          EXPECT_TRUE(fired)
              << "Open failed without an error: " << wal.status();
          EXPECT_EQ(wal.status().code(), injected.code()) << wal.status();
          EXPECT_THAT(std::string(wal.status().message()),
                      HasSubstr("injected read error"));
        } else {
          // Open may only succeed if it lost nothing to the error.
          EXPECT_EQ((*wal)->next_lsn(), model.next_lsn())
              << "a read error during Open changed where the log ends";
          EXPECT_TRUE((*wal)->recovery_report().drops.empty())
              << "a read error during Open was taken for damage: "
              << DescribeDrops((*wal)->recovery_report());
          ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, (*wal)->Replay());
          const std::string err = CheckComplete(got, (*wal)->next_lsn(), model);
          EXPECT_TRUE(err.empty()) << err;
        }
      }
      // Nothing was cut, quarantined or rewritten because of the read error.
      ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(FaultOptions(&fi)));
      ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
      const std::string err = CheckComplete(got, wal->next_lsn(), model);
      EXPECT_TRUE(err.empty())
          << "reopened after a read error during Open: " << err;
      auto quarantined = fi.GetChildren(absl::StrCat(kWalDir, "/quarantine"));
      if (quarantined.ok()) {
        EXPECT_TRUE(quarantined->empty())
            << "segments were quarantined because of a read error";
      }
    });
    if (decided && !fired) break;
  }
  printf("[wal_crash_test] read errors during Open (%s): %" PRIu64
         " runs, %" PRIu64 " failed\n",
         RecoveryModeName(mode), digest.runs(), digest.failed_runs());
  {
    std::lock_guard<std::mutex> l(g_stats_mu);
    g_fault_runs += digest.runs();
  }
  digest.Report(RecoveryModeName(mode));
}

INSTANTIATE_TEST_SUITE_P(
    EveryRecoveryMode, OpenReadErrorTest,
    ::testing::Values(RecoveryMode::kTolerateCorruptedTail,
                      RecoveryMode::kAbsoluteConsistency,
                      RecoveryMode::kPointInTimeRecovery,
                      RecoveryMode::kSkipAnyCorruptedRecords),
    [](const ::testing::TestParamInfo<RecoveryMode>& info) {
      return std::string(RecoveryModeName(info.param)).substr(1);
    });

TEST(ReplayReadErrorTest, ReadersReportErrorsNeverAShorterLog) {
  auto mem = NewMemEnv();
  FaultInjectionEnv fi(mem.get());
  WalModel model;
  BuildCleanLog(&fi, &model);
  if (HasFatalFailure()) return;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(FaultOptions(&fi)));
  const absl::Status injected = absl::InternalError("injected EIO on read");
  const uint64_t mid = model.floor + model.records.size() / 2;
  auto judge = [&](const std::string& what, const absl::Status& s,
                   const std::string& content_error) {
    if (s.ok()) {
      EXPECT_TRUE(content_error.empty()) << what << ": " << content_error;
    } else {
      EXPECT_EQ(s.code(), injected.code()) << what << ": " << s;
      EXPECT_THAT(std::string(s.message()), HasSubstr("injected EIO on read"))
          << what;
    }
  };
  FailureDigest digest;
  for (int64_t k = 0;; ++k) {
    ASSERT_LT(k, 100000);
    fi.InjectError(kOpRead, injected, "", k, 1);
    const uint64_t before = fi.OpCount(kOpRead);
    digest.Run([&] {
      SCOPED_TRACE(absl::StrCat("read #", k, " fails"));

      auto all = wal->Replay();
      judge("Replay", all.status(),
            all.ok() ? CheckComplete(*all, wal->next_lsn(), model) : "");

      auto from = wal->ReplayFrom(mid);
      std::string err;
      if (from.ok()) {
        if (from->size() != model.next_lsn() - mid) {
          err = absl::StrCat("ReplayFrom(", mid, ") returned ", from->size(),
                             " records, want ", model.next_lsn() - mid);
        } else {
          for (size_t i = 0; i < from->size() && err.empty(); ++i) {
            if (!((*from)[i] == model.records[mid - model.floor + i])) {
              err = absl::StrCat("ReplayFrom: first bad LSN ", mid + i);
            }
          }
        }
      }
      judge("ReplayFrom", from.status(), err);

      // Paging: an error must come back as an error with the injected code.
      err = CheckPaging(*wal, model, model.floor, 7);
      if (!err.empty() &&
          err.find("injected EIO on read") != std::string::npos) {
        EXPECT_THAT(err, HasSubstr(absl::StatusCodeToString(injected.code())))
            << "ReplayFromLimit";
      } else {
        EXPECT_TRUE(err.empty()) << err;
      }
      auto it = wal->NewIterator(model.floor);
      if (!it.ok()) {
        judge("NewIterator", it.status(), "");
      } else {
        uint64_t expect = model.floor;
        for (; (*it)->Valid(); (*it)->Next()) {
          ASSERT_EQ((*it)->record().lsn, expect);
          ASSERT_TRUE((*it)->record() == model.records[expect - model.floor]);
          ++expect;
        }
        if ((*it)->status().ok()) {
          EXPECT_EQ(expect, model.next_lsn())
              << "the iterator ended early with an OK status";
        } else {
          judge("iterator", (*it)->status(), "");
        }
      }
    });
    // Outside the run, so that a failed ASSERT inside it cannot skip this.
    const bool fired = fi.OpCount(kOpRead) - before > static_cast<uint64_t>(k);
    fi.ClearInjectedErrors();
    if (!fired) break;
  }
  // Read errors do not damage the log or poison the writer.
  EXPECT_OK(wal->poisoned_status());
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
  const std::string err = CheckComplete(got, wal->next_lsn(), model);
  EXPECT_TRUE(err.empty()) << err;
  printf("[wal_crash_test] read errors during replay: %" PRIu64
         " runs, %" PRIu64 " failed\n",
         digest.runs(), digest.failed_runs());
  {
    std::lock_guard<std::mutex> l(g_stats_mu);
    g_fault_runs += digest.runs();
  }
  digest.Report("readers");
}

}  // namespace
}  // namespace segwal
