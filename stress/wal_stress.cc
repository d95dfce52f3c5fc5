#include "stress/wal_stress.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace segwal {
namespace stress {
namespace {

// A small seeded generator (xorshift64*), one per thread.
class Rng {
 public:
  explicit Rng(uint64_t seed) : x_(Mix64(seed) | 1) {}
  uint64_t Next() {
    x_ ^= x_ >> 12;
    x_ ^= x_ << 25;
    x_ ^= x_ >> 27;
    return x_ * 0x2545f4914f6cdd1dULL;
  }
  uint64_t Uniform(uint64_t n) { return Next() % n; }

 private:
  uint64_t x_;
};

struct Shared {
  const StressOptions* options;
  SegmentedWal* wal;
  StateStore* store;
  uint64_t seed;
  uint32_t generation;
  uint64_t first_lsn;  // first LSN retained when the generation started

  std::mutex state_mu;
  ExpectedState* state;  // guarded by state_mu

  std::atomic<bool> stop{false};
  std::atomic<int> finished{0};  // workers that ran out of operations
  std::mutex error_mu;
  absl::Status error;  // guarded by error_mu

  std::mutex stats_mu;
  GenerationStats* stats;  // guarded by stats_mu

  // Records the first failure (as Internal: what went wrong is in the text).
  void Fail(const std::string& what) {
    {
      std::lock_guard<std::mutex> l(error_mu);
      if (error.ok()) error = absl::InternalError(what);
    }
    stop.store(true);
  }
};

class Worker {
 public:
  Worker(Shared* shared, uint32_t thread)
      : sh_(shared),
        thread_(thread),
        rng_(shared->seed ^ Mix64(uint64_t{shared->generation} << 20 | thread)) {}

  void Run() {
    const uint64_t max_ops = sh_->options->max_ops;
    for (uint64_t op = 0; !sh_->stop.load(std::memory_order_relaxed) &&
                          (max_ops == 0 || op < max_ops);
         ++op) {
      const uint64_t r = rng_.Uniform(1000);
      if (r < 640) {
        Append();
      } else if (r < 790) {
        Sync();
      } else if (r < 850) {
        Flush();
      } else if (r < 900) {
        ReadBack();
      } else if (r < 925) {
        Iterate();
      } else if (r < 945) {
        Truncate();
      } else {
        std::this_thread::yield();
      }
    }
    sh_->finished.fetch_add(1);
    std::lock_guard<std::mutex> l(sh_->stats_mu);
    GenerationStats& s = *sh_->stats;
    s.appended += stats_.appended;
    s.syncs += stats_.syncs;
    s.flushes += stats_.flushes;
    s.acknowledged += stats_.acknowledged;
    s.read_backs += stats_.read_backs;
    s.iterations += stats_.iterations;
    s.records_iterated += stats_.records_iterated;
    s.truncations += stats_.truncations;
    s.segments_deleted += stats_.segments_deleted;
  }

 private:
  std::string Who() const {
    return absl::StrCat("generation ", sh_->generation, " thread ", thread_,
                        " (seed ", sh_->seed, ")");
  }

  uint32_t BodyLength() {
    const uint64_t r = rng_.Uniform(100);
    const uint32_t max = sh_->options->max_body;
    uint64_t n;
    if (r < 60) {
      n = rng_.Uniform(100);
    } else if (r < 90) {
      n = rng_.Uniform(2000);
    } else if (r < 98) {
      n = rng_.Uniform(16 << 10);
    } else {
      n = rng_.Uniform(max + 1);
    }
    return static_cast<uint32_t>(std::min<uint64_t>(n, max));
  }

  void Append() {
    const RecordId id{sh_->generation, thread_, seq_};
    StressRecord rec = MakeRecord(sh_->seed, id, prev_lsn_, BodyLength());
    auto lsn = sh_->wal->Append(rec.record_type, rec.tenant_id, rec.vshard_id,
                                rec.database_id, rec.payload);
    if (!lsn.ok()) {
      sh_->Fail(absl::StrCat(Who(), ": Append of seq ", seq_, ": ",
                             lsn.status().ToString()));
      return;
    }
    DecodedRecord d;
    WalRecord as_read{*lsn, rec.record_type, rec.tenant_id, rec.vshard_id,
                      rec.database_id, rec.payload};
    (void)DecodeRecord(as_read, &d);
    last_ = Pin{*lsn, id, d.crc};
    has_last_ = true;
    prev_lsn_ = *lsn;
    ++seq_;
    ++stats_.appended;
  }

  void Sync() {
    absl::Status s = sh_->wal->Sync();
    ++stats_.syncs;
    if (!s.ok()) {
      sh_->Fail(absl::StrCat(Who(), ": Sync: ", s.ToString()));
      return;
    }
    if (!has_last_) return;
    // Sync covered every record appended before it, ours included.
    const uint64_t durable = sh_->wal->durable_lsn();
    if (durable < last_.lsn) {
      sh_->Fail(absl::StrCat(Who(), ": Sync returned OK but durable_lsn() is ",
                             durable, " < LSN ", last_.lsn,
                             " appended before it"));
      return;
    }
    std::lock_guard<std::mutex> l(sh_->state_mu);
    ExpectedState next = *sh_->state;
    if (!next.Acknowledge(last_, durable)) return;  // nothing new to record
    absl::Status saved = sh_->store->Save(next);
    if (!saved.ok()) {
      sh_->Fail(absl::StrCat(Who(), ": saving the expected state: ",
                             saved.ToString()));
      return;
    }
    *sh_->state = std::move(next);
    ++stats_.acknowledged;
  }

  void Flush() {
    absl::Status s = sh_->wal->Flush();
    ++stats_.flushes;
    if (!s.ok()) sh_->Fail(absl::StrCat(Who(), ": Flush: ", s.ToString()));
  }

  uint64_t Floor() {
    std::lock_guard<std::mutex> l(sh_->state_mu);
    return std::max(sh_->state->truncate_floor, sh_->first_lsn);
  }

  // Replay sees every record whose Append returned before it began: our own
  // last record must be readable, intact, at its LSN.
  void ReadBack() {
    if (!has_last_) return;
    ++stats_.read_backs;
    auto page = sh_->wal->ReplayFromLimit(last_.lsn, 1);
    if (!page.ok()) {
      if (absl::IsOutOfRange(page.status()) && last_.lsn < Floor()) return;
      sh_->Fail(absl::StrCat(Who(), ": ReplayFromLimit(", last_.lsn,
                             ", 1): ", page.status().ToString()));
      return;
    }
    if (page->records.empty() || page->records[0].lsn != last_.lsn) {
      sh_->Fail(absl::StrCat(Who(), ": ReplayFromLimit(", last_.lsn,
                             ", 1) did not return LSN ", last_.lsn,
                             " which Append returned"));
      return;
    }
    DecodedRecord d;
    const std::string bad = DecodeRecord(page->records[0], &d);
    if (!bad.empty() || !(d.id == last_.id) || d.crc != last_.crc) {
      sh_->Fail(absl::StrCat(Who(), ": LSN ", last_.lsn,
                             " read back is not the record appended there",
                             bad.empty() ? "" : ": ", bad));
    }
  }

  // Streams part of the live log and checks it record by record.
  void Iterate() {
    ++stats_.iterations;
    ExpectedState snapshot;
    {
      std::lock_guard<std::mutex> l(sh_->state_mu);
      snapshot = *sh_->state;
    }
    uint64_t from = std::max(snapshot.truncate_floor, sh_->first_lsn);
    if (rng_.Uniform(2) == 0 && has_last_ && last_.lsn > from + 300) {
      from = last_.lsn - rng_.Uniform(300);
    }
    auto it = sh_->wal->NewIterator(from);
    if (!it.ok()) {
      if (absl::IsOutOfRange(it.status())) return;  // truncated meanwhile
      sh_->Fail(absl::StrCat(Who(), ": NewIterator(", from,
                             "): ", it.status().ToString()));
      return;
    }
    LogVerifier verifier(snapshot, sh_->generation);
    const uint64_t limit = 200 + rng_.Uniform(2000);
    uint64_t n = 0;
    for (; (*it)->Valid() && n < limit; (*it)->Next(), ++n) {
      verifier.Add((*it)->record());
    }
    stats_.records_iterated += n;
    const bool complete = !(*it)->Valid();
    if (!(*it)->status().ok() && !absl::IsOutOfRange((*it)->status())) {
      sh_->Fail(absl::StrCat(Who(), ": iterating from LSN ", from, ": ",
                             (*it)->status().ToString()));
      return;
    }
    VerifyResult v = verifier.Finish(0, /*check_durable=*/false);
    if (!v.ok) {
      sh_->Fail(absl::StrCat(Who(), ": live log from LSN ", from,
                             " is wrong; first bad LSN ", v.first_bad_lsn,
                             ": ", v.error));
      return;
    }
    if (n > 0 && v.first_lsn != from) {
      sh_->Fail(absl::StrCat(Who(), ": NewIterator(", from,
                             ") started at LSN ", v.first_lsn));
      return;
    }
    if (complete && (*it)->status().ok() && has_last_ && last_.lsn >= from &&
        v.last_lsn < last_.lsn) {
      sh_->Fail(absl::StrCat(Who(), ": iterator from LSN ", from,
                             " ended at LSN ", v.last_lsn,
                             " before our own LSN ", last_.lsn));
    }
  }

  void Truncate() {
    uint64_t checkpoint;
    {
      std::lock_guard<std::mutex> l(sh_->state_mu);
      const uint64_t acked = sh_->state->acked_lsn;
      const uint64_t lag = rng_.Uniform(4000);
      if (acked <= lag) return;
      checkpoint = acked - lag;
      if (checkpoint <= sh_->state->truncate_floor) return;
      // The floor is recorded before the call: a crash in the middle of the
      // truncation must not make missing segments look like data loss.
      ExpectedState next = *sh_->state;
      next.truncate_floor = checkpoint;
      absl::Status saved = sh_->store->Save(next);
      if (!saved.ok()) {
        sh_->Fail(absl::StrCat(Who(), ": saving the expected state: ",
                               saved.ToString()));
        return;
      }
      *sh_->state = std::move(next);
    }
    auto r = sh_->wal->TruncateBefore(checkpoint);
    ++stats_.truncations;
    if (!r.ok()) {
      sh_->Fail(absl::StrCat(Who(), ": TruncateBefore(", checkpoint,
                             "): ", r.status().ToString()));
      return;
    }
    stats_.segments_deleted += r->segments_deleted;
  }

  Shared* sh_;
  const uint32_t thread_;
  Rng rng_;
  uint64_t seq_ = 0;
  uint64_t prev_lsn_ = 0;
  Pin last_;
  bool has_last_ = false;
  GenerationStats stats_;
};

}  // namespace

std::string GenerationStats::ToString() const {
  return absl::StrCat(appended, " appended, ", syncs, " syncs (", acknowledged,
                      " acknowledgments saved), ", flushes, " flushes, ",
                      read_backs, " read-backs, ", iterations, " iterations (",
                      records_iterated, " records), ", truncations,
                      " truncations (", segments_deleted, " segments deleted)");
}

SegmentedWalOptions WalOptionsFor(const StressOptions& options, uint64_t seed,
                                  uint32_t generation) {
  const uint64_t x = Mix64(seed ^ Mix64(generation));
  static constexpr uint64_t kSegmentSizes[] = {8 << 10, 32 << 10, 128 << 10,
                                               512 << 10};
  static constexpr size_t kBufferSizes[] = {256, 4 << 10, 64 << 10};
  SegmentedWalOptions o;
  o.wal_dir = options.wal_dir;
  o.env = options.env;
  o.segment_target_size = options.segment_target_size != 0
                              ? options.segment_target_size
                              : kSegmentSizes[x % 4];
  o.write_buffer_size = options.write_buffer_size != 0
                            ? options.write_buffer_size
                            : kBufferSizes[(x >> 8) % 3];
  return o;
}

VerifyResult VerifyWal(const SegmentedWal& wal, const ExpectedState& state,
                       bool check_durable) {
  LogVerifier verifier(state, state.generation);
  VerifyResult failed;
  failed.ok = false;
  auto segs = wal.ListSegments();
  if (!segs.ok()) {
    failed.error = absl::StrCat("ListSegments: ", segs.status().ToString());
    return failed;
  }
  const uint64_t from = segs->empty() ? wal.next_lsn() : segs->front().first_lsn;
  auto it = wal.NewIterator(from);
  if (!it.ok()) {
    failed.first_bad_lsn = from;
    failed.error = absl::StrCat("NewIterator(", from,
                                "): ", it.status().ToString());
    return failed;
  }
  for (; (*it)->Valid(); (*it)->Next()) verifier.Add((*it)->record());
  VerifyResult v = verifier.Finish(wal.next_lsn(), check_durable);
  if (v.ok && !(*it)->status().ok()) {
    v.ok = false;
    v.first_bad_lsn = v.last_lsn + 1;
    v.error = absl::StrCat("reading the log after LSN ", v.last_lsn, ": ",
                           (*it)->status().ToString());
  }
  return v;
}

absl::Status RunGeneration(const StressOptions& options, SegmentedWal* wal,
                           StateStore* store, ExpectedState* state,
                           GenerationStats* stats,
                           const std::atomic<bool>* stop) {
  Shared sh;
  sh.options = &options;
  sh.wal = wal;
  sh.store = store;
  sh.seed = state->seed;
  sh.generation = state->generation + 1;
  sh.state = state;
  sh.stats = stats;
  {
    auto segs = wal->ListSegments();
    if (!segs.ok()) return segs.status();
    sh.first_lsn = segs->empty() ? wal->next_lsn() : segs->front().first_lsn;
  }
  // The generation is recorded before it appends anything.
  ExpectedState next = *state;
  next.generation = sh.generation;
  absl::Status s = store->Save(next);
  if (!s.ok()) return s;
  *state = next;

  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < options.threads; ++t) {
    workers.push_back(std::make_unique<Worker>(&sh, static_cast<uint32_t>(t)));
  }
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(options.duration_ms);
  while (!sh.stop.load() && std::chrono::steady_clock::now() < deadline &&
         (stop == nullptr || !stop->load())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // Workers end on their own after max_ops.
    if (sh.finished.load() == options.threads) break;
  }
  sh.stop.store(true);
  for (auto& t : threads) t.join();
  std::lock_guard<std::mutex> l(sh.error_mu);
  return sh.error;
}

namespace {

void AddStats(const GenerationStats& g, GenerationStats* total) {
  total->appended += g.appended;
  total->syncs += g.syncs;
  total->flushes += g.flushes;
  total->acknowledged += g.acknowledged;
  total->read_backs += g.read_backs;
  total->iterations += g.iterations;
  total->records_iterated += g.records_iterated;
  total->truncations += g.truncations;
  total->segments_deleted += g.segments_deleted;
}

}  // namespace

CycleReport RunCycles(const StressOptions& options, FaultInjectionEnv* fault,
                      uint64_t seed, int cycles) {
  CycleReport report;
  ExpectedState initial;
  initial.seed = seed;
  MemoryStateStore store(initial);
  for (int cycle = 0; cycle <= cycles; ++cycle) {
    ExpectedState state = *store.Load();
    auto where = [&](uint64_t lsn) {
      return absl::StrCat("seed ", seed, " generation ", state.generation,
                          lsn != 0 ? absl::StrCat(" first bad LSN ", lsn) : "",
                          ": ");
    };
    auto wal = SegmentedWal::Open(
        WalOptionsFor(options, state.seed, state.generation + 1));
    if (!wal.ok()) {
      report.failure = absl::StrCat(where(0), "Open after cycle ", cycle,
                                    " failed: ", wal.status().ToString());
      return report;
    }
    for (const RecoveryDrop& d : (*wal)->recovery_report().drops) {
      report.dropped_bytes += d.bytes;
    }
    const VerifyResult v = VerifyWal(**wal, state, /*check_durable=*/true);
    report.records_verified += v.records;
    report.acked_lost += v.acked_lost;
    report.phantom += v.phantom;
    if (!v.ok) {
      report.failure = absl::StrCat(where(v.first_bad_lsn), v.error);
      return report;
    }
    if (cycle == cycles) break;
    GenerationStats stats;
    absl::Status s =
        RunGeneration(options, wal->get(), &store, &state, &stats);
    AddStats(stats, &report.workload);
    if (!s.ok()) {
      report.failure = absl::StrCat(where(0), s.ToString());
      return report;
    }
    report.cycles++;
    if (fault != nullptr) {
      const uint64_t x = Mix64(state.seed ^ Mix64(state.generation));
      const CrashMode mode = kAllCrashModes[x % std::size(kAllCrashModes)];
      absl::Status c;
      if ((x >> 8) % 2 == 0) {  // power loss with the WAL still open
        c = fault->SimulateCrash(mode, x);
        wal->reset();
      } else {  // power loss right after a clean close
        wal->reset();
        c = fault->SimulateCrash(mode, x);
      }
      report.crashes++;
      if (!c.ok()) {
        report.failure = absl::StrCat(where(0), "SimulateCrash: ", c.ToString());
        return report;
      }
    } else {
      wal->reset();
    }
  }
  return report;
}

std::string DescribeVerify(const VerifyResult& v, const ExpectedState& state) {
  return absl::StrCat("records ", v.records, ", LSNs ", v.first_lsn, "..",
                      v.last_lsn, ", acknowledged LSN ", state.acked_lsn,
                      ", truncation floor ", state.truncate_floor,
                      ", generation ", state.generation);
}

}  // namespace stress
}  // namespace segwal
