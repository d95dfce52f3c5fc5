// The harness of the crash, fault and concurrency tests (wal_crash_test,
// wal_fault_test, wal_concurrency_test): sanitizer-scaled budgets, small
// helpers, WalModel (the model of the log every test checks recovery
// against), the per-binary totals and the SEGWAL_STATS line CI's durability
// summary reads (tools/durability_summary.sh), FaultOptions, and the
// thread-tagged payloads of the concurrent workloads. Testonly.

#ifndef SEGWAL_WAL_WAL_CRASH_TEST_HARNESS_H_
#define SEGWAL_WAL_WAL_CRASH_TEST_HARNESS_H_
//   InjectedErrorTest    For every FaultOp the writer uses and every k, a fixed
//                        workload with the k-th matching call failing (EIO-
//                        and ENOSPC-like): the error reaches the caller with
//                        its code, the instance stays poisoned, and a reopen
//                        (with or without a crash) recovers everything
//                        acknowledged.
//   FullDiskTest         Open and Replay work while every write fails.
//   OpenReadErrorTest, ReplayReadErrorTest  Read errors surface as errors,
//                        never as a shorter (or cut, or quarantined) log.
//   ConcurrencyTest      8 appending/syncing threads, a tailing iterator and a
//                        lagging TruncateBefore; a failing group-commit sync
//                        reaches every waiter. Clean under --config=tsan.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "env/env.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "testutil/log_bounds.h"
#include "testutil/testutil.h"
#include "wal/segmented_wal.h"

// Sanitizers make the crash cycles slower (ASan about 5x, TSan about 40x):
// the defaults shrink under them.
#if defined(__SANITIZE_THREAD__)
#define SEGWAL_CRASH_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SEGWAL_CRASH_TEST_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SEGWAL_CRASH_TEST_TSAN)
#define SEGWAL_CRASH_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define SEGWAL_CRASH_TEST_SANITIZED 1
#endif
#endif

namespace segwal {
namespace {

using ::testing::HasSubstr;
using testutil::Random;

constexpr char kWalDir[] = "/wal";
#if defined(SEGWAL_CRASH_TEST_TSAN)
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif
#if defined(SEGWAL_CRASH_TEST_SANITIZED)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// ---------------------------------------------------------------------------
// Small helpers.

inline uint64_t Fnv1a(absl::string_view data, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline std::string Describe(const WalRecord& r) {
  char hash[20];
  snprintf(hash, sizeof(hash), "%016" PRIx64, Fnv1a(r.payload));
  return absl::StrCat("{lsn ", r.lsn, " type ", r.record_type, " tenant ",
                      r.tenant_id, " vshard ", r.vshard_id, " db ",
                      r.database_id, " payload ", r.payload.size(),
                      " bytes fnv ", hash, "}");
}

inline const char* OpName(uint32_t op) {
  switch (op) {
    case kOpOpen:
      return "kOpOpen";
    case kOpAppend:
      return "kOpAppend";
    case kOpFlush:
      return "kOpFlush";
    case kOpSync:
      return "kOpSync";
    case kOpRead:
      return "kOpRead";
    case kOpDelete:
      return "kOpDelete";
    case kOpRename:
      return "kOpRename";
    case kOpTruncate:
      return "kOpTruncate";
    case kOpSyncDir:
      return "kOpSyncDir";
  }
  return "?";
}

inline const char* RecoveryModeName(RecoveryMode mode) {
  switch (mode) {
    case RecoveryMode::kTolerateCorruptedTail:
      return "kTolerateCorruptedTail";
    case RecoveryMode::kAbsoluteConsistency:
      return "kAbsoluteConsistency";
    case RecoveryMode::kPointInTimeRecovery:
      return "kPointInTimeRecovery";
    case RecoveryMode::kSkipAnyCorruptedRecords:
      return "kSkipAnyCorruptedRecords";
  }
  return "?";
}

// A record with random ids and a payload that is usually small, sometimes
// empty, and sometimes larger than any segment or write buffer the tests use.
inline WalRecord RandomRecord(Random& rnd, uint64_t lsn) {
  WalRecord r;
  r.lsn = lsn;
  r.record_type = static_cast<uint32_t>(rnd.Next64());
  r.tenant_id = rnd.OneIn(4) ? 0 : rnd.Next64();
  r.vshard_id = static_cast<uint32_t>(rnd.Uniform(4096));
  r.database_id = rnd.OneIn(2) ? 0 : rnd.Next64();
  size_t len;
  if (rnd.OneIn(12)) {
    len = 0;
  } else if (rnd.OneIn(60)) {
    len = (8 << 10) + rnd.Uniform(56 << 10);  // 8-64 KiB
  } else {
    len = rnd.Skewed(11);
  }
  r.payload = rnd.RandomBytes(len);
  return r;
}

inline absl::StatusOr<uint64_t> AppendRecord(SegmentedWal& wal, const WalRecord& r) {
  return wal.Append(r.record_type, r.tenant_id, r.vshard_id, r.database_id,
                    r.payload);
}

// ---------------------------------------------------------------------------
// The model of a log: what was appended (and returned OK), what must survive.

struct WalModel {
  // The log starts at an LSN in [floor, floor_hi]. They differ only after a
  // TruncateBefore that failed or was cut short by a power cut (its last
  // delete may or may not be durable).
  uint64_t floor = 1;
  uint64_t floor_hi = 1;
  std::deque<WalRecord> records;  // records[i].lsn == floor + i
  // Every LSN in [floor_hi, acked] must survive any crash.
  uint64_t acked = 0;

  uint64_t next_lsn() const { return floor + records.size(); }
  uint64_t last_lsn() const { return next_lsn() - 1; }

  void Add(WalRecord r) { records.push_back(std::move(r)); }
  // The log now starts at `first` (truncation made durable).
  void DropBefore(uint64_t first) {
    while (!records.empty() && records.front().lsn < first) {
      records.pop_front();
    }
    floor = std::max(floor, first);
    floor_hi = std::max(floor_hi, floor);
  }
  // Records after `last` were lost by a crash (none was acknowledged).
  void CutAfter(uint64_t last) {
    while (!records.empty() && records.back().lsn > last) records.pop_back();
  }
};

// Checks a log read back after a crash or an error against the model. Returns
// "" when it is a valid outcome, else what is wrong, naming the first bad LSN.
// `failed_append` (may be null): the record of the first Append that returned
// an error, with the LSN it would have had.
inline std::string CheckRecovered(const std::vector<WalRecord>& got, uint64_t next_lsn,
                           const WalModel& m,
                           const WalRecord* failed_append = nullptr) {
  // The bounds (start, acknowledged end, next LSN): the rule wal_stress
  // applies too (testutil/log_bounds.h).
  testutil::RecoveredLogBounds bounds;
  bounds.empty = got.empty();
  if (!got.empty()) {
    bounds.first = got.front().lsn;
    bounds.last = got.back().lsn;
  }
  bounds.next_lsn = next_lsn;
  testutil::ExpectedLogBounds want;
  want.first_min = m.floor;
  want.first_max = m.floor_hi;
  want.acked = m.acked;
  // Records are checked first, so a phantom or altered record is named even
  // where the log's bounds are wrong too.
  if (!got.empty() && got.front().lsn >= m.floor) {
    const uint64_t first = got.front().lsn;
    for (size_t i = 0; i < got.size(); ++i) {
      const uint64_t want_lsn = first + i;
      const WalRecord& g = got[i];
      if (g.lsn != want_lsn) {
        return absl::StrCat("first bad LSN ", want_lsn, ": got LSN ", g.lsn,
                            " instead (hole or reordering) ", Describe(g));
      }
      if (want_lsn > m.last_lsn()) {
        WalRecord failed;
        if (failed_append != nullptr) failed = *failed_append;
        const bool is_failed = failed_append != nullptr && failed == g;
        return absl::StrCat("first bad LSN ", want_lsn, ": ",
                            is_failed
                                ? "the record of an Append that returned an error"
                                : "a phantom record (never appended OK)",
                            " came back: ", Describe(g),
                            "; last LSN appended OK is ", m.last_lsn());
      }
      const WalRecord& w = m.records[want_lsn - m.floor];
      if (!(g == w)) {
        return absl::StrCat("first bad LSN ", want_lsn, ": got ", Describe(g),
                            ", appended ", Describe(w));
      }
    }
  }
  return testutil::CheckLogBounds(bounds, want).error;
}

// Like CheckRecovered, for a live instance: nothing may be missing.
inline std::string CheckComplete(const std::vector<WalRecord>& got, uint64_t next_lsn,
                          const WalModel& m) {
  std::string err = CheckRecovered(got, next_lsn, m);
  if (!err.empty()) return err;
  const uint64_t last = got.empty() ? next_lsn - 1 : got.back().lsn;
  if (last != m.last_lsn()) {
    return absl::StrCat("first bad LSN ", last + 1, ": log ends at ", last,
                        " but LSNs up to ", m.last_lsn(), " were appended");
  }
  return "";
}

// Reads [from, end) through NewIterator and compares with the model.
inline std::string CheckIterator(const SegmentedWal& wal, const WalModel& m,
                          uint64_t from) {
  auto it = wal.NewIterator(from);
  if (!it.ok()) {
    return absl::StrCat("NewIterator(", from, "): ", it.status().ToString());
  }
  uint64_t expect = from;
  for (; (*it)->Valid(); (*it)->Next()) {
    const WalRecord& r = (*it)->record();
    if (r.lsn != expect) {
      return absl::StrCat("iterator from ", from, ": first bad LSN ", expect,
                          ", got ", Describe(r));
    }
    if (expect < m.floor || expect > m.last_lsn() ||
        !(r == m.records[expect - m.floor])) {
      return absl::StrCat("iterator from ", from, ": first bad LSN ", expect,
                          ", got ", Describe(r));
    }
    ++expect;
  }
  if (!(*it)->status().ok()) {
    return absl::StrCat("iterator from ", from, " failed at LSN ", expect, ": ",
                        (*it)->status().ToString());
  }
  if (expect != m.next_lsn()) {
    return absl::StrCat("iterator from ", from, " stopped at LSN ", expect,
                        ", log ends at ", m.last_lsn());
  }
  return "";
}

// Pages through [from, end) with ReplayFromLimit and compares with the model,
// including has_more (true iff a later record exists, also on an exact fit).
inline std::string CheckPaging(const SegmentedWal& wal, const WalModel& m,
                        uint64_t from, size_t page) {
  uint64_t expect = from;
  for (int guard = 0; guard < 1000000; ++guard) {
    auto p = wal.ReplayFromLimit(expect, page);
    if (!p.ok()) {
      return absl::StrCat("ReplayFromLimit(", expect, ", ", page,
                          "): ", p.status().ToString());
    }
    if (p->records.size() > page) {
      return absl::StrCat("ReplayFromLimit(", expect, ", ", page, ") returned ",
                          p->records.size(), " records");
    }
    for (const WalRecord& r : p->records) {
      if (r.lsn != expect || expect > m.last_lsn() ||
          !(r == m.records[expect - m.floor])) {
        return absl::StrCat("ReplayFromLimit: first bad LSN ", expect, ", got ",
                            Describe(r));
      }
      ++expect;
    }
    const bool more = expect <= m.last_lsn();
    if (p->has_more != more) {
      return absl::StrCat("ReplayFromLimit(..., ", page, ") ending at LSN ",
                          expect - 1, ": has_more ", p->has_more,
                          ", log ends at ", m.last_lsn());
    }
    if (!more) return "";
    if (p->records.empty()) {
      return absl::StrCat("ReplayFromLimit(", expect, ", ", page,
                          ") returned nothing before the end");
    }
  }
  return "ReplayFromLimit never reached the end";
}

inline uint64_t DroppedBytes(const RecoveryReport& report) {
  uint64_t n = 0;
  for (const RecoveryDrop& d : report.drops) n += d.bytes;
  return n;
}

inline std::string DescribeDrops(const RecoveryReport& report) {
  std::string s;
  for (const RecoveryDrop& d : report.drops) {
    absl::StrAppend(&s, "[", d.file, " @", d.offset, " +", d.bytes, ": ",
                    d.reason, "] ");
  }
  return s;
}


struct CrashStats {
  uint64_t cycles[3] = {0, 0, 0};  // by CrashMode
  uint64_t crash_first = 0;        // SimulateCrash before destroying the WAL
  uint64_t records_verified = 0;
  uint64_t records_appended = 0;
  uint64_t records_lost = 0;   // unacknowledged records a crash took
  uint64_t bytes_dropped = 0;  // as reported by recovery
  uint64_t clean_reopens = 0;
  uint64_t truncations = 0;
  uint64_t segments_deleted = 0;
  uint64_t syncs = 0;
  uint64_t recoveries[4] = {0, 0, 0, 0};  // by RecoveryMode at the reopen
  uint64_t absolute_refusals = 0;         // kAbsoluteConsistency said DataLoss
  uint64_t power_cut_cycles = 0;          // a power cut was armed ...
  uint64_t power_cuts_hit = 0;            // ... and struck during the workload
  std::map<std::string, uint64_t> power_cut_calls;  // the call it struck
  uint64_t direct_io_cycles = 0;  // the WAL crashed with use_direct_io on

  void Add(const CrashStats& o) {
    direct_io_cycles += o.direct_io_cycles;
    power_cut_cycles += o.power_cut_cycles;
    power_cuts_hit += o.power_cuts_hit;
    for (const auto& [call, n] : o.power_cut_calls) power_cut_calls[call] += n;
    for (int i = 0; i < 4; ++i) recoveries[i] += o.recoveries[i];
    absolute_refusals += o.absolute_refusals;
    for (int i = 0; i < 3; ++i) cycles[i] += o.cycles[i];
    crash_first += o.crash_first;
    records_verified += o.records_verified;
    records_appended += o.records_appended;
    records_lost += o.records_lost;
    bytes_dropped += o.bytes_dropped;
    clean_reopens += o.clean_reopens;
    truncations += o.truncations;
    segments_deleted += o.segments_deleted;
    syncs += o.syncs;
  }
  std::string CutCalls() const {
    std::string out;
    for (const auto& [call, n] : power_cut_calls) {
      absl::StrAppend(&out, out.empty() ? "" : ", ", call, " ", n);
    }
    return out;
  }
  std::string Summary() const {
    return absl::StrCat(
        cycles[0] + cycles[1] + cycles[2], " crash cycles (kDropUnsynced ",
        cycles[0], ", kTornTail ", cycles[1], ", kTornSectors ", cycles[2],
        "; ", direct_io_cycles, " with use_direct_io; ", crash_first, " crashed before destroy; ", power_cuts_hit,
        " struck mid-workload by a power cut, of ", power_cut_cycles,
        " armed), ", records_appended, " records appended, ", records_verified,
        " records verified, ", records_lost, " unsynced records lost, ",
        bytes_dropped, " bytes dropped by recovery, ", syncs, " syncs, ",
        clean_reopens, " clean reopens, ", truncations, " truncations (",
        segments_deleted,
        " segments deleted); reopened after the crash with "
        "kTolerateCorruptedTail ",
        recoveries[0], ", kAbsoluteConsistency ", recoveries[1], " (",
        absolute_refusals, " refused with DataLoss), kPointInTimeRecovery ",
        recoveries[2], ", kSkipAnyCorruptedRecords ", recoveries[3],
        "; power cuts struck in: ", CutCalls());
  }
};

// Totals for the closing summary. std::mutex rather than absl::Mutex: the
// system Abseil is not TSan-instrumented (see port/mutex.h).
std::mutex g_stats_mu;
CrashStats g_crash_stats;    // guarded by g_stats_mu
uint64_t g_fault_runs = 0;   // guarded by g_stats_mu
uint64_t g_fault_fired = 0;  // guarded by g_stats_mu

class SummaryPrinter : public ::testing::Environment {
 public:
  void TearDown() override {
    std::lock_guard<std::mutex> l(g_stats_mu);
    if (g_crash_stats.cycles[0] + g_crash_stats.cycles[1] +
            g_crash_stats.cycles[2] >
        0) {
      printf("[wal_crash_test] total: %s\n", g_crash_stats.Summary().c_str());
    }
    if (g_fault_runs > 0) {
      printf("[wal_crash_test] total: %" PRIu64 " injected-fault runs, %" PRIu64
             " in which the fault fired\n",
             g_fault_runs, g_fault_fired);
    }
    // Machine-readable, summed over the suite by tools/durability_summary.sh.
    printf("SEGWAL_STATS crash_cycles=%" PRIu64 " injected_faults=%" PRIu64 "\n",
           g_crash_stats.cycles[0] + g_crash_stats.cycles[1] +
               g_crash_stats.cycles[2],
           g_fault_fired);
    fflush(stdout);
  }
};

[[maybe_unused]] ::testing::Environment* const kSummaryPrinter =
    ::testing::AddGlobalTestEnvironment(new SummaryPrinter);

// Options for the fixed-order fault and concurrency workloads.
inline SegmentedWalOptions FaultOptions(Env* env) {
  SegmentedWalOptions o;
  o.wal_dir = kWalDir;
  o.env = env;
  o.segment_target_size = 2048;
  o.write_buffer_size = 512;
  o.background_preallocation = false;  // file operations in a fixed order
  o.background_sealing = false;
  return o;
}

// ---- Payloads that say which thread appended them, and thread errors.
inline void PutU32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutU64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
inline uint64_t GetLE(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Payload: thread id, sequence number, checksum of both and the body, body.
inline std::string EncodePayload(uint32_t tid, uint32_t seq, absl::string_view body) {
  std::string p;
  PutU32(&p, tid);
  PutU32(&p, seq);
  PutU64(&p, Fnv1a(body, Fnv1a(p)));
  p.append(body.data(), body.size());
  return p;
}

inline bool DecodePayload(absl::string_view p, uint32_t* tid, uint32_t* seq) {
  if (p.size() < 16) return false;
  *tid = static_cast<uint32_t>(GetLE(p.data(), 4));
  *seq = static_cast<uint32_t>(GetLE(p.data() + 4, 4));
  return GetLE(p.data() + 8, 8) == Fnv1a(p.substr(16), Fnv1a(p.substr(0, 8)));
}

// Collects failures from worker threads (gtest assertions there cannot stop
// the thread) and tells the others to stop.
class ThreadErrors {
 public:
  void Add(std::string e) {
    std::lock_guard<std::mutex> l(mu_);
    if (errors_.size() < 20) errors_.push_back(std::move(e));
    failed_.store(true, std::memory_order_relaxed);
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  std::vector<std::string> Take() {
    std::lock_guard<std::mutex> l(mu_);
    return errors_;
  }

 private:
  std::mutex mu_;                    // not absl::Mutex: see g_stats_mu
  std::vector<std::string> errors_;  // guarded by mu_
  std::atomic<bool> failed_{false};
};

inline void AtomicMax(std::atomic<uint64_t>* a, uint64_t v) {
  uint64_t cur = a->load(std::memory_order_relaxed);
  while (cur < v &&
         !a->compare_exchange_weak(cur, v, std::memory_order_acq_rel)) {
  }
}


}  // namespace
}  // namespace segwal

#endif  // SEGWAL_WAL_WAL_CRASH_TEST_HARNESS_H_
