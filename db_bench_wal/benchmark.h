// db_bench_wal's runner: Benchmark runs one BenchSpec at a time against a
// SegmentedWal (or a raw POSIX baseline) on spec.threads threads, prints the
// db_bench result line, and keeps the results for the --compare table.
// ThreadState is one worker thread's view of a run; Result what a run
// measured. A Benchmark is used by the main thread; its workers share only
// stop_ (atomic) and their own ThreadState.

#ifndef SEGWAL_DB_BENCH_WAL_BENCHMARK_H_
#define SEGWAL_DB_BENCH_WAL_BENCHMARK_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "db_bench_wal/histogram.h"
#include "wal/segmented_wal.h"
#include "db_bench_wal/bench_spec.h"
#include "db_bench_wal/flags.h"

namespace segwal {
namespace bench {

inline constexpr size_t kRecordHeaderBytes = 56;  // wal/FORMAT.md, "Record"
inline constexpr int kUsageError = 2;
inline constexpr int kRuntimeError = 1;

// Set by SIGINT/SIGTERM; long loops stop early.
extern std::atomic<bool> g_interrupted;

uint64_t NowNanos();
// Prints "db_bench_wal: message" on stderr and exits with `code`.
[[noreturn]] void Die(int code, absl::string_view message);
std::string Plural(uint64_t n, absl::string_view noun);

// ---------------------------------------------------------------------------
// Values.

// Values that compress to about `ratio` of their size: each 100-byte piece is
// a random prefix of ratio * 100 printable bytes, repeated. A 1 MiB pool (or
// two values, if larger) is cut into successive values.
class ValueGenerator {
 public:
  ValueGenerator(uint64_t seed, double ratio, size_t max_value) {
    std::mt19937_64 rng(seed);
    const size_t size = std::max<size_t>(1 << 20, 2 * max_value);
    const size_t piece = 100;
    const size_t random_len = std::max<size_t>(
        1, static_cast<size_t>(static_cast<double>(piece) * ratio));
    data_.reserve(size + piece);
    while (data_.size() < size) {
      std::string random(random_len, ' ');
      for (char& c : random) c = static_cast<char>(' ' + rng() % 95);
      for (size_t i = 0; i < piece; ++i)
        data_.push_back(random[i % random_len]);
    }
  }

  absl::string_view Next(size_t len) {
    if (pos_ + len > data_.size()) pos_ = 0;
    absl::string_view v(data_.data() + pos_, len);
    pos_ += len;
    return v;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// Running a benchmark.

// One thread's view of a run. Aligned so the progress counters of different
// threads do not share a cache line.
struct alignas(64) ThreadState {
  ThreadState(int tid, uint64_t seed, size_t max_value)
      : tid(tid), values(seed, FLAGS_compression_ratio, max_value) {}

  const int tid;
  ValueGenerator values;
  Histogram hist;
  std::atomic<uint64_t> done{0};  // operations finished (read for progress)
  uint64_t bytes = 0;
  uint64_t start_ns = 0;
  uint64_t finish_ns = 0;
  uint64_t excluded_ns = 0;  // untimed work inside the loop (openrecover)
  uint64_t passes = 0;       // replay/iterate: full passes over the log
  absl::Status status;
};

// What one benchmark measured.
struct Result {
  BenchSpec spec;
  uint64_t ops = 0;
  uint64_t bytes = 0;
  double elapsed = 0;         // wall seconds, first start to last finish
  double thread_seconds = 0;  // summed over threads (db_bench's micros/op)
  uint64_t passes = 0;
  std::string extra;

  double MicrosPerOp() const {
    return ops == 0 ? 0 : thread_seconds * 1e6 / ops;
  }
  double OpsPerSec() const { return elapsed <= 0 ? 0 : ops / elapsed; }
  double MBPerSec() const {
    return elapsed <= 0 ? 0 : bytes / 1048576.0 / elapsed;
  }
  // Seconds for one pass over the log (replay/iterate, per thread).
  double SecondsPerPass() const {
    return passes == 0 ? elapsed : thread_seconds / passes;
  }
};

class Benchmark {
 public:
  Benchmark(std::string wal_dir, std::string scratch_dir, bool owns_wal)
      : wal_dir_(std::move(wal_dir)),
        scratch_dir_(std::move(scratch_dir)),
        owns_wal_(owns_wal) {}

  // Opens (and closes) the WAL once with the options of the run, so flags it
  // refuses (compression, encryption not yet supported) fail before any
  // benchmark runs.
  // Also learns which write path the WAL uses (see WalWritePath).
  absl::Status Probe() {
    absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
        OpenWal(wal_dir_, static_cast<uint64_t>(FLAGS_segment_size));
    if (wal.ok()) probed_stats_ = (*wal)->GetStats();
    return wal.status();
  }

  void PrintHeader(const std::vector<BenchSpec>& specs, bool temp_dir,
                   uint64_t seed) const;
  // Runs spec.repeats times; prints every run, and the median of several.
  absl::Status Run(const BenchSpec& spec);
  void PrintComparison() const;

 private:
  using Worker = std::function<void(ThreadState*)>;

  SegmentedWalOptions WalOptions(const std::string& dir,
                                 uint64_t segment_size) const {
    SegmentedWalOptions o;
    o.wal_dir = dir;
    o.segment_target_size = segment_size;
    o.write_buffer_size = static_cast<size_t>(FLAGS_write_buffer_size);
    o.compression = FLAGS_compression == "snappy" ? Compression::kSnappy
                                                  : Compression::kNone;
    o.recovery_mode = *ParseRecoveryMode(FLAGS_recovery_mode);
    o.preallocate_segments = FLAGS_preallocate_segments;
    o.use_io_uring = FLAGS_use_io_uring;
    o.use_direct_io = FLAGS_use_direct_io;
    o.background_preallocation = FLAGS_background_preallocation;
    o.background_sealing = FLAGS_background_sealing;
    o.bytes_per_sync = FLAGS_bytes_per_sync;
    o.max_seals_in_flight = static_cast<size_t>(FLAGS_max_seals_in_flight);
    o.group_commit_wait_micros = FLAGS_group_commit_wait_micros;
    o.recycle_segments = static_cast<size_t>(FLAGS_recycle_segments);
    o.replay_threads = static_cast<size_t>(FLAGS_replay_threads);
    if (FLAGS_encrypt) o.encryption_ring.emplace(key_);
    return o;
  }
  absl::StatusOr<std::unique_ptr<SegmentedWal>> OpenWal(
      const std::string& dir, uint64_t segment_size) const {
    return SegmentedWal::Open(WalOptions(dir, segment_size));
  }

  // Deletes the log in wal_dir_ (only a log this run created).
  absl::Status ResetWal();
  // Appends spec.OpsPerThread() records (untimed) and syncs, for the read
  // benchmarks when the log is empty.
  absl::Status FillUntimed(SegmentedWal* wal, const BenchSpec& spec);
  // See --warmup_page_cache.
  absl::Status WarmUpPageCache(uint64_t bytes);
  // A fresh, empty directory under scratch_dir_.
  absl::StatusOr<std::string> FreshScratch(const std::string& name);

  // Runs `worker` on spec.threads threads and reports. `extra` is appended to
  // the result line.
  absl::StatusOr<Result> RunThreads(const BenchSpec& spec,
                                    const Worker& worker);
  // Prints the db_bench result line; `suffix` is appended to the label.
  void Report(const Result& r, const std::string& suffix = "");

  // The loop condition every worker uses.
  bool KeepGoing(const BenchSpec& spec, uint64_t i) const {
    if (stop_.load(std::memory_order_relaxed)) return false;
    return spec.duration > 0 || i < spec.OpsPerThread();
  }
  void FinishedOps(ThreadState* t, uint64_t ops, uint64_t op_start_ns) const {
    t->done.store(t->done.load(std::memory_order_relaxed) + ops,
                  std::memory_order_relaxed);
    if (FLAGS_histogram) t->hist.Add(NowNanos() - op_start_ns);
  }
  uint64_t OpStart() const { return FLAGS_histogram ? NowNanos() : 0; }

  absl::StatusOr<Result> RunOnce(const BenchSpec& spec);
  absl::StatusOr<Result> Fill(const BenchSpec& spec);
  absl::StatusOr<Result> Read(const BenchSpec& spec);
  absl::StatusOr<Result> OpenRecover(const BenchSpec& spec);
  absl::StatusOr<Result> Rollover(const BenchSpec& spec);
  absl::StatusOr<Result> Truncate(const BenchSpec& spec);
  absl::StatusOr<Result> Raw(const BenchSpec& spec);
  absl::StatusOr<Result> FirstTouch(const BenchSpec& spec);

  const std::string wal_dir_;
  const std::string scratch_dir_;
  // GetStats() of the WAL Probe opened (direct I/O granted or refused).
  std::optional<WalStats> probed_stats_;
  const bool owns_wal_;
  // --encrypt: one random key for the whole run, so every Open can read what
  // the earlier benchmarks wrote.
  const WalEncryptionKey key_ = WalEncryptionKey::Generate();
  std::atomic<bool> stop_{false};
  std::vector<Result> results_;
};

}  // namespace bench
}  // namespace segwal

#endif  // SEGWAL_DB_BENCH_WAL_BENCHMARK_H_
