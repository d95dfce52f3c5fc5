// db_bench_wal: RocksDB-db_bench-style benchmarks of segwal's SegmentedWal,
// with raw POSIX baselines measured on the same disk in the same process.
//
//   bazel run -c opt //db_bench_wal:db_bench_wal -- --compare
//       --benchmarks=rawwrite,fillseq,rawsync,fillsync,fillsync[threads=16]
//
// Every benchmark prints one db_bench result line
//   fillseq      :       0.412 micros/op 2427184 ops/sec 0.412 seconds 1000000
//   operations;  231.5 MB/s
// where micros/op is thread time per operation, ops/sec the aggregate rate and
// MB/s (2^20 bytes) counts payload bytes (value_size per record; the raw
// baselines are counted the same way although they also write the 56-byte
// record header). `--histogram` adds latency statistics in nanoseconds and
// `--compare` a table of WAL/baseline ratios from this run. Run with --help for
// the flags; README.md ("db_bench_wal") has the details.
//
// Uses only segwal's public headers (wal/segmented_wal.h, env/env.h) and POSIX.

#include <gflags/gflags.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "db_bench_wal/histogram.h"
#include "db_bench_wal/raw_file.h"
#include "env/env.h"
#include "env/posix_env.h"
#include "wal/segmented_wal.h"

DEFINE_string(
    benchmarks,
    "rawwrite,fillseq,rawsync,fillsync,fillbatch,replay,iterate,openrecover,"
    "rollover,truncate,firsttouch",
    "Comma-separated list of benchmarks, run in order. A benchmark may carry "
    "its own settings in brackets, e.g. fillsync[threads=16,duration=3] or "
    "fillseq[X3,value_size=4096,num=1000] (keys: X<n> runs it n times and "
    "adds a [MEDIAN n runs] line; threads, value_size, num, duration, "
    "batch_size, segment_size, prealloc (rawsync); num is then the exact "
    "operation count per thread). Benchmarks:\n"
    "\tfillseq     -- Append num records, no sync (then Flush)\n"
    "\tfillsync    -- Append + Sync per record, num/1000 records per thread;\n"
    "\t               with --threads each thread syncs its own (group commit)\n"
    "\tfillbatch   -- batch_size Appends then one Sync, num records\n"
    "\treplay      -- Replay() the whole log (page cache); fills it if empty;\n"
    "\t               decoded on up to --replay_threads threads\n"
    "\titerate     -- stream the whole log with NewIterator; fills it if "
    "empty\n"
    "\topenrecover -- time Open (with recovery) of the log, open_count times\n"
    "\trollover    -- Appends into a scratch WAL whose segments roll after "
    "every\n"
    "\t               record (or segment_size bytes), num/1000 records\n"
    "\ttruncate    -- TruncateBefore deleting one segment per call, num/1000\n"
    "\trawsync     -- baseline: pwrite+fdatasync of each record (value_size + "
    "56\n"
    "\t               bytes) into a preallocated file, num/1000 records\n"
    "\trawwrite    -- baseline: the same bytes through a write_buffer_size "
    "user\n"
    "\t               buffer with write(2), no sync, num records\n"
    "\tfirsttouch  -- baseline for replay: build num records of value_size "
    "in\n"
    "\t               fresh memory as Replay() does (one vector, a malloc per\n"
    "\t               payload, on as many threads), no I/O; its first run in\n"
    "\t               a process shows how fast this machine backs new "
    "memory\n");
DEFINE_int64(
    num, 1000000,
    "Records per thread for the fill, raw and read benchmarks (those "
    "that sync every operation do num/1000, like db_bench's fillsync)");
DEFINE_int64(value_size, 100, "Payload bytes per record");
DEFINE_int32(threads, 1,
             "Threads per benchmark (openrecover and truncate always use 1)");
DEFINE_bool(sync, false,
            "fillseq syncs after every Append (it then measures what fillsync "
            "does, and --compare pairs it with rawsync)");
DEFINE_int64(segment_size, 64 << 20,
             "SegmentedWalOptions::segment_target_size in bytes");
DEFINE_int64(write_buffer_size, 1 << 20,
             "SegmentedWalOptions::write_buffer_size, and the user buffer of "
             "rawwrite");
DEFINE_string(compression, "none", "Record compression: none or snappy");
DEFINE_bool(preallocate_segments, true,
            "SegmentedWalOptions::preallocate_segments: segments start in "
            "zero-filled spare files");
DEFINE_bool(use_io_uring, false,
            "SegmentedWalOptions::use_io_uring: segment writes and syncs "
            "through io_uring (falls back to write()/fdatasync())");
DEFINE_bool(background_preallocation, true,
            "SegmentedWalOptions::background_preallocation");
DEFINE_bool(background_sealing, true,
            "SegmentedWalOptions::background_sealing: full segments are "
            "sealed (fdatasync) off the appending thread");
DEFINE_int64(max_seals_in_flight, 4,
             "SegmentedWalOptions::max_seals_in_flight: full segments that may "
             "wait for their seal before a roll waits (1 to 64)");
DEFINE_uint64(bytes_per_sync, 0,
              "SegmentedWalOptions::bytes_per_sync: start write-back of the "
              "active segment every this many bytes (0: never)");
DEFINE_uint64(group_commit_wait_micros, 100,
              "SegmentedWalOptions::group_commit_wait_micros");
DEFINE_int64(recycle_segments, 2,
             "SegmentedWalOptions::recycle_segments (segments TruncateBefore "
             "keeps as spares)");
DEFINE_int64(replay_threads, 0,
             "SegmentedWalOptions::replay_threads: threads one Replay() may "
             "decode segments on (0: min(hardware threads, 8); 1: "
             "sequential; at most 64). Replays of less than 8 MiB per "
             "thread use fewer (replay_min_bytes_per_thread)");
DEFINE_double(compression_ratio, 0.5,
              "Values compress to about this fraction of their size");
DEFINE_bool(encrypt, false, "Encrypt the WAL at rest under a fresh random key");
DEFINE_bool(use_direct_io, false,
            "O_DIRECT writes: SegmentedWalOptions::use_direct_io for the WAL "
            "(every sync padded to a 4 KiB block; falls back to buffered "
            "writes where the file system refuses, and the header says so) "
            "and O_DIRECT for the rawsync/rawwrite baselines");
DEFINE_string(wal_dir, "",
              "WAL directory. Default: a fresh temporary directory on the "
              "local disk ($TMPDIR, /var/tmp or /tmp, whichever is not "
              "tmpfs), removed at exit. A given directory must be empty "
              "unless --use_existing_wal; it is kept at exit");
DEFINE_bool(use_existing_wal, false,
            "Benchmark the log already in --wal_dir: fills append to it "
            "instead of starting from an empty log, and nothing is deleted");
DEFINE_bool(histogram, false,
            "Print latency statistics (nanoseconds per operation; per batch "
            "for fillbatch)");
DEFINE_int64(seed, 301,
             "Seed for the generated values; 0 derives it from the clock");
DEFINE_double(duration, 0,
              "If > 0, run each benchmark for this many seconds instead of a "
              "fixed number of operations (replay/iterate repeat passes)");
DEFINE_double(stats_interval_seconds, 5,
              "Print a progress line on stderr this often while a benchmark "
              "runs (0: never)");
DEFINE_bool(statistics, false,
            "After each fill benchmark, print the WAL's runtime statistics "
            "(SegmentedWal::GetStats: syncs, records per sync, sync latency, "
            "rollovers, bytes on disk)");
DEFINE_bool(compare, false,
            "At the end, print each WAL result as a ratio of its baseline "
            "from this run (fillseq/rawwrite, fillsync/rawsync, fillsync with "
            "N threads/1 thread, openrecover/replay, ...)");
DEFINE_int64(batch_size, 100, "Records per Sync for fillbatch");
DEFINE_int64(open_count, 10, "Opens timed by openrecover");
DEFINE_string(recovery_mode, "tolerate_corrupted_tail",
              "Recovery mode for every Open: tolerate_corrupted_tail, "
              "absolute_consistency, point_in_time, skip_any");
DEFINE_string(rawsync_prealloc, "zero",
              "How rawsync prepares its file: zero (written with zeros and "
              "synced), fallocate, or none (appends grow the file)");
DEFINE_bool(warmup_page_cache, true,
            "Before each fillseq, fillbatch and rawwrite run (untimed), write "
            "and delete a scratch file as large as the run will write (at "
            "most 4 GiB). On a VM whose host backs guest memory lazily and "
            "takes freed memory back (virtio-balloon free page reporting), "
            "writing into page cache is several times faster right after "
            "other page cache was freed; the warm-up gives the WAL and its "
            "baseline the same start");

namespace segwal {
namespace bench {
namespace {

constexpr size_t kRecordHeaderBytes = 56;  // wal/FORMAT.md, "Record"
constexpr int kUsageError = 2;
constexpr int kRuntimeError = 1;

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

uint64_t NowNanos() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

[[noreturn]] void Die(int code, absl::string_view message) {
  fprintf(stderr, "db_bench_wal: %.*s\n", static_cast<int>(message.size()),
          message.data());
  fflush(stdout);
  exit(code);
}

std::string Plural(uint64_t n, absl::string_view noun) {
  return absl::StrCat(n, " ", noun, n == 1 ? "" : "s");
}

// ---------------------------------------------------------------------------
// Benchmark specifications.

enum class Kind {
  kFillSeq,
  kFillSync,
  kFillBatch,
  kReplay,
  kIterate,
  kOpenRecover,
  kRollover,
  kTruncate,
  kRawSync,
  kRawWrite,
  kFirstTouch,
};

struct KindName {
  const char* name;
  Kind kind;
};
constexpr KindName kKinds[] = {
    {"fillseq", Kind::kFillSeq},     {"fillsync", Kind::kFillSync},
    {"fillbatch", Kind::kFillBatch}, {"replay", Kind::kReplay},
    {"iterate", Kind::kIterate},     {"openrecover", Kind::kOpenRecover},
    {"rollover", Kind::kRollover},   {"truncate", Kind::kTruncate},
    {"rawsync", Kind::kRawSync},     {"rawwrite", Kind::kRawWrite},
    {"firsttouch", Kind::kFirstTouch},
};

bool UsesWal(Kind k) {
  return k != Kind::kRawSync && k != Kind::kRawWrite && k != Kind::kFirstTouch;
}
bool SyncsEveryOp(Kind k) {
  return k == Kind::kFillSync || k == Kind::kRawSync || k == Kind::kRollover ||
         k == Kind::kTruncate;
}
bool SingleThreaded(Kind k) {
  return k == Kind::kOpenRecover || k == Kind::kTruncate;
}

// One entry of --benchmarks, with the global flags and its bracketed
// overrides applied.
struct BenchSpec {
  std::string label;  // as written: printed in the result line
  Kind kind = Kind::kFillSeq;
  int threads = 1;
  uint64_t value_size = 100;
  std::optional<int64_t> num;  // exact ops per thread, from brackets
  double duration = 0;
  uint64_t batch_size = 100;
  uint64_t segment_size = 64 << 20;
  bool segment_size_given = false;
  int repeats = 1;  // [X<n>]: run n times, report each run and the median
  Prealloc prealloc = Prealloc::kZeroFill;  // rawsync's file

  // Operations per thread when not run for a duration.
  uint64_t OpsPerThread() const {
    if (num.has_value()) return static_cast<uint64_t>(*num);
    if (kind == Kind::kOpenRecover)
      return static_cast<uint64_t>(FLAGS_open_count);
    if (SyncsEveryOp(kind)) return std::max<int64_t>(1, FLAGS_num / 1000);
    return static_cast<uint64_t>(FLAGS_num);
  }
};

absl::Status ParseInt(absl::string_view what, absl::string_view text,
                      int64_t min, int64_t max, int64_t* out) {
  if (!absl::SimpleAtoi(text, out) || *out < min || *out > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, "=", text, ": expected an integer in [", min, ", ", max, "]"));
  }
  return absl::OkStatus();
}

absl::Status ParseSeconds(absl::string_view what, absl::string_view text,
                          double* out) {
  if (!absl::SimpleAtod(text, out) || !(*out >= 0) || *out > 1e6) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, "=", text, ": expected seconds >= 0"));
  }
  return absl::OkStatus();
}

constexpr int64_t kMaxValueSize = 64 << 20;  // SegmentedWalOptions default
constexpr int64_t kMaxThreads = 1024;

// Checks the global flags that every benchmark inherits.
absl::Status ValidateGlobalFlags() {
  auto check = [](absl::string_view flag, int64_t v, int64_t min,
                  int64_t max) -> absl::Status {
    if (v < min || v > max) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, "=", v, ": must be in [", min, ", ", max, "]"));
    }
    return absl::OkStatus();
  };
  for (absl::Status s : {
           check("num", FLAGS_num, FLAGS_duration > 0 ? 0 : 1, INT64_MAX / 2),
           check("value_size", FLAGS_value_size, 1, kMaxValueSize),
           check("threads", FLAGS_threads, 1, kMaxThreads),
           check("segment_size", FLAGS_segment_size, 1, int64_t{1} << 40),
           check("write_buffer_size", FLAGS_write_buffer_size, 1,
                 int64_t{1} << 30),
           check("batch_size", FLAGS_batch_size, 1, int64_t{1} << 30),
           check("open_count", FLAGS_open_count, 1, 1000000),
           check("recycle_segments", FLAGS_recycle_segments, 0, 1000),
           check("replay_threads", FLAGS_replay_threads, 0, 64),
       }) {
    if (!s.ok()) return s;
  }
  if (!(FLAGS_duration >= 0)) {
    return absl::InvalidArgumentError("--duration must be >= 0 seconds");
  }
  if (!(FLAGS_stats_interval_seconds >= 0)) {
    return absl::InvalidArgumentError(
        "--stats_interval_seconds must be >= 0 seconds");
  }
  if (!(FLAGS_compression_ratio > 0 && FLAGS_compression_ratio <= 1)) {
    return absl::InvalidArgumentError("--compression_ratio must be in (0, 1]");
  }
  if (FLAGS_compression != "none" && FLAGS_compression != "snappy") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--compression=", FLAGS_compression, ": expected none or snappy"));
  }
  Prealloc p;
  if (!ParsePrealloc(FLAGS_rawsync_prealloc, &p)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rawsync_prealloc=", FLAGS_rawsync_prealloc,
                     ": expected zero, fallocate or none"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RecoveryMode> ParseRecoveryMode(absl::string_view name) {
  if (name == "tolerate_corrupted_tail")
    return RecoveryMode::kTolerateCorruptedTail;
  if (name == "absolute_consistency") return RecoveryMode::kAbsoluteConsistency;
  if (name == "point_in_time") return RecoveryMode::kPointInTimeRecovery;
  if (name == "skip_any") return RecoveryMode::kSkipAnyCorruptedRecords;
  return absl::InvalidArgumentError(
      absl::StrCat("--recovery_mode=", name,
                   ": expected tolerate_corrupted_tail, absolute_consistency, "
                   "point_in_time or skip_any"));
}

std::string KnownBenchmarks() {
  std::vector<std::string> names;
  for (const KindName& k : kKinds) names.push_back(k.name);
  return absl::StrJoin(names, ", ");
}

// Splits "a,b[x=1,y=2],c" at the commas outside brackets.
absl::StatusOr<std::vector<std::string>> SplitBenchmarkList(
    absl::string_view list) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : list) {
    if (c == '[') depth++;
    if (c == ']') depth--;
    if (depth < 0 || depth > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--benchmarks=", list, ": unbalanced brackets"));
    }
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (depth != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--benchmarks=", list, ": unbalanced brackets"));
  }
  out.push_back(cur);
  return out;
}

absl::StatusOr<std::vector<BenchSpec>> ParseBenchmarks(absl::string_view list) {
  absl::StatusOr<std::vector<std::string>> tokens = SplitBenchmarkList(list);
  if (!tokens.ok()) return tokens.status();
  std::vector<BenchSpec> specs;
  for (const std::string& token : *tokens) {
    if (token.empty()) continue;  // "a,,b" and a trailing comma, as db_bench
    BenchSpec spec;
    spec.label = token;
    spec.threads = FLAGS_threads;
    spec.value_size = static_cast<uint64_t>(FLAGS_value_size);
    spec.duration = FLAGS_duration;
    spec.batch_size = static_cast<uint64_t>(FLAGS_batch_size);
    spec.segment_size = static_cast<uint64_t>(FLAGS_segment_size);
    ParsePrealloc(FLAGS_rawsync_prealloc, &spec.prealloc);
    const size_t bracket = token.find('[');
    const std::string name = token.substr(0, bracket);
    bool known = false;
    for (const KindName& k : kKinds) {
      if (name == k.name) {
        spec.kind = k.kind;
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown benchmark '", name,
                       "' in --benchmarks (known: ", KnownBenchmarks(), ")"));
    }
    if (bracket != std::string::npos) {
      if (token.back() != ']') {
        return absl::InvalidArgumentError(absl::StrCat(
            "--benchmarks: '", token, "': settings must end with ']'"));
      }
      const std::string inner =
          token.substr(bracket + 1, token.size() - bracket - 2);
      for (absl::string_view kv :
           absl::StrSplit(inner, ',', absl::SkipEmpty())) {
        const size_t eq = kv.find('=');
        if (eq == absl::string_view::npos && kv.size() > 1 && kv[0] == 'X') {
          // db_bench's repeat syntax: fillseq[X3].
          int64_t n = 0;
          absl::Status s = ParseInt(
              absl::StrCat("--benchmarks: '", token, "': repeat count X"),
              kv.substr(1), 1, 1000, &n);
          if (!s.ok()) return s;
          spec.repeats = static_cast<int>(n);
          continue;
        }
        if (eq == absl::string_view::npos) {
          return absl::InvalidArgumentError(
              absl::StrCat("--benchmarks: '", token,
                           "': expected key=value, got '", kv, "'"));
        }
        const absl::string_view key = kv.substr(0, eq);
        const absl::string_view value = kv.substr(eq + 1);
        const std::string what =
            absl::StrCat("--benchmarks: '", token, "': ", key);
        int64_t v = 0;
        absl::Status s;
        if (key == "threads") {
          s = ParseInt(what, value, 1, kMaxThreads, &v);
          spec.threads = static_cast<int>(v);
        } else if (key == "value_size") {
          s = ParseInt(what, value, 1, kMaxValueSize, &v);
          spec.value_size = static_cast<uint64_t>(v);
        } else if (key == "num") {
          s = ParseInt(what, value, 1, INT64_MAX / 2, &v);
          spec.num = v;
        } else if (key == "duration") {
          s = ParseSeconds(what, value, &spec.duration);
        } else if (key == "batch_size") {
          s = ParseInt(what, value, 1, int64_t{1} << 30, &v);
          spec.batch_size = static_cast<uint64_t>(v);
        } else if (key == "prealloc") {
          if (!ParsePrealloc(value, &spec.prealloc)) {
            s = absl::InvalidArgumentError(absl::StrCat(
                what, "=", value, ": expected zero, fallocate or none"));
          }
        } else if (key == "segment_size") {
          s = ParseInt(what, value, 1, int64_t{1} << 40, &v);
          spec.segment_size = static_cast<uint64_t>(v);
          spec.segment_size_given = true;
        } else {
          s = absl::InvalidArgumentError(absl::StrCat(
              "--benchmarks: '", token, "': unknown setting '", key,
              "' (known: X<repeats>, threads, value_size, num, duration, "
              "batch_size, segment_size, prealloc)"));
        }
        if (!s.ok()) return s;
      }
    }
    if (SingleThreaded(spec.kind)) spec.threads = 1;
    if (spec.duration == 0 && spec.OpsPerThread() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--benchmarks: '", token,
                       "' would run 0 operations (--num=0 needs "
                       "--duration)"));
    }
    specs.push_back(std::move(spec));
  }
  if (specs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--benchmarks is empty (known: ", KnownBenchmarks(), ")"));
  }
  return specs;
}

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

absl::Status Benchmark::ResetWal() {
  if (!owns_wal_) return absl::OkStatus();
  std::error_code ec;
  const std::filesystem::path scratch(scratch_dir_);
  for (const auto& entry : std::filesystem::directory_iterator(wal_dir_, ec)) {
    if (entry.path() == scratch) continue;
    std::filesystem::remove_all(entry.path(), ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("removing ", entry.path().string(), ": ", ec.message()));
    }
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("listing ", wal_dir_, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status Benchmark::WarmUpPageCache(uint64_t bytes) {
  bytes = std::min<uint64_t>(bytes, uint64_t{4} << 30);
  const std::string path = scratch_dir_ + "/warmup";
  absl::StatusOr<std::unique_ptr<RawBufferedWriter>> w =
      RawBufferedWriter::Create(path, 1 << 20, /*direct_io=*/false);
  if (!w.ok()) return w.status();
  const std::string chunk(1 << 20, 'w');
  absl::Status s;
  for (uint64_t done = 0; s.ok() && done < bytes; done += chunk.size()) {
    s = (*w)->Append(chunk);
  }
  if (s.ok()) s = (*w)->Finish();
  w->reset();
  RemoveFileQuietly(path);
  return s;
}

absl::StatusOr<std::string> Benchmark::FreshScratch(const std::string& name) {
  const std::string dir = scratch_dir_ + "/" + name;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("creating ", dir, ": ", ec.message()));
  }
  return dir;
}

absl::Status Benchmark::FillUntimed(SegmentedWal* wal, const BenchSpec& spec) {
  const uint64_t n = spec.num.value_or(FLAGS_num > 0 ? FLAGS_num : 1000000);
  fprintf(stderr,
          "%s: the log is empty; filling it with %" PRIu64
          " records of %" PRIu64 " bytes first (not timed)\n",
          spec.label.c_str(), n, spec.value_size);
  ValueGenerator values(static_cast<uint64_t>(FLAGS_seed),
                        FLAGS_compression_ratio, spec.value_size);
  for (uint64_t i = 0; i < n && !g_interrupted.load(); ++i) {
    absl::StatusOr<uint64_t> lsn =
        wal->Append(/*record_type=*/1, /*tenant_id=*/0,
                    /*vshard_id=*/static_cast<uint32_t>(i % 16),
                    /*database_id=*/0, values.Next(spec.value_size));
    if (!lsn.ok()) return lsn.status();
  }
  return wal->Sync();
}

absl::StatusOr<Result> Benchmark::RunThreads(const BenchSpec& spec,
                                             const Worker& worker) {
  stop_.store(false);
  std::vector<std::unique_ptr<ThreadState>> states;
  for (int i = 0; i < spec.threads; ++i) {
    states.push_back(std::make_unique<ThreadState>(
        i, static_cast<uint64_t>(FLAGS_seed) + 1000 * (i + 1),
        spec.value_size));
  }
  // Threads start together (the slowest-starting one does not skew the
  // rate). std::mutex rather than absl::Mutex: ThreadSanitizer sees it (the
  // system Abseil is not TSan-instrumented).
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0, finished = 0;
  bool go = false;
  std::vector<std::thread> threads;
  for (auto& st : states) {
    ThreadState* t = st.get();
    threads.emplace_back([&, t] {
      {
        std::unique_lock<std::mutex> l(mu);
        ready++;
        cv.notify_all();
        cv.wait(l, [&] { return go; });
      }
      t->start_ns = NowNanos();
      worker(t);
      t->finish_ns = NowNanos();
      std::lock_guard<std::mutex> l(mu);
      finished++;
      cv.notify_all();
    });
  }
  const int n = spec.threads;
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return ready == n; });
    go = true;
    cv.notify_all();
  }
  const uint64_t start = NowNanos();
  uint64_t last_report = start, last_done = 0;
  const double interval = FLAGS_stats_interval_seconds;
  while (true) {
    std::unique_lock<std::mutex> l(mu);
    if (cv.wait_for(l, std::chrono::milliseconds(50),
                    [&] { return finished == n; })) {
      break;
    }
    const uint64_t now = NowNanos();
    if (g_interrupted.load() ||
        (spec.duration > 0 && (now - start) * 1e-9 >= spec.duration)) {
      stop_.store(true);
    }
    if (interval > 0 && (now - last_report) * 1e-9 >= interval) {
      uint64_t done = 0;
      for (auto& st : states) done += st->done.load(std::memory_order_relaxed);
      const double secs = (now - start) * 1e-9;
      fprintf(stderr,
              "%s: %" PRIu64
              " ops in %.1f s, %.0f ops/sec (last %.1f s: %.0f "
              "ops/sec)\n",
              spec.label.c_str(), done, secs, done / secs,
              (now - last_report) * 1e-9,
              (done - last_done) / ((now - last_report) * 1e-9));
      last_report = now;
      last_done = done;
    }
  }
  for (std::thread& t : threads) t.join();

  Result r;
  r.spec = spec;
  uint64_t first_start = UINT64_MAX, last_finish = 0;
  Histogram hist;
  for (auto& st : states) {
    if (!st->status.ok()) return st->status;
    r.ops += st->done.load();
    r.bytes += st->bytes;
    r.passes += st->passes;
    r.thread_seconds += (st->finish_ns - st->start_ns - st->excluded_ns) * 1e-9;
    first_start = std::min(first_start, st->start_ns);
    last_finish = std::max(last_finish, st->finish_ns);
    hist.Merge(st->hist);
  }
  r.elapsed = n == 1 ? r.thread_seconds : (last_finish - first_start) * 1e-9;
  if (g_interrupted.load()) return absl::CancelledError("interrupted");
  if (FLAGS_histogram) {
    printf("Nanoseconds per %s (%s, %d thread%s):\n%s\n",
           spec.kind == Kind::kFillBatch ? "batch"
           : spec.kind == Kind::kReplay || spec.kind == Kind::kIterate ||
                   spec.kind == Kind::kFirstTouch
               ? "pass over the log"
               : "op",
           spec.label.c_str(), n, n == 1 ? "" : "s", hist.ToString().c_str());
  }
  return r;
}

void Benchmark::Report(const Result& r, const std::string& suffix) {
  std::string extra;
  if (r.bytes > 0) extra = absl::StrFormat("%6.1f MB/s", r.MBPerSec());
  if (!r.extra.empty()) {
    if (!extra.empty()) extra += " ";
    extra += r.extra;
  }
  printf("%-12s : %11.3f micros/op %ld ops/sec %.3f seconds %" PRIu64
         " operations;%s%s\n",
         (r.spec.label + suffix).c_str(), r.MicrosPerOp(),
         static_cast<long>(r.OpsPerSec()), r.elapsed, r.ops,
         extra.empty() ? "" : " ", extra.c_str());
  fflush(stdout);
}

// fillseq, fillsync, fillbatch.
absl::StatusOr<Result> Benchmark::Fill(const BenchSpec& spec) {
  absl::Status s = ResetWal();
  if (!s.ok()) return s;
  absl::StatusOr<std::unique_ptr<SegmentedWal>> wal_or =
      OpenWal(wal_dir_, spec.segment_size);
  if (!wal_or.ok()) return wal_or.status();
  SegmentedWal* wal = wal_or->get();
  const bool sync_each = spec.kind == Kind::kFillSync ||
                         (spec.kind == Kind::kFillSeq && FLAGS_sync);
  const uint64_t batch = spec.kind == Kind::kFillBatch ? spec.batch_size : 1;
  absl::StatusOr<Result> r = RunThreads(spec, [&](ThreadState* t) {
    const uint32_t vshard = static_cast<uint32_t>(t->tid);
    uint64_t i = 0;
    while (KeepGoing(spec, i)) {
      const uint64_t op_start = OpStart();
      uint64_t n = 0;
      for (; n < batch && KeepGoing(spec, i + n); ++n) {
        absl::StatusOr<uint64_t> lsn =
            wal->Append(/*record_type=*/1, /*tenant_id=*/t->tid + 1, vshard,
                        /*database_id=*/0, t->values.Next(spec.value_size));
        if (!lsn.ok()) {
          t->status = lsn.status();
          return;
        }
        if (sync_each) {
          absl::Status st = wal->Sync();
          if (!st.ok()) {
            t->status = st;
            return;
          }
        }
      }
      if (spec.kind == Kind::kFillBatch) {
        absl::Status st = wal->Sync();
        if (!st.ok()) {
          t->status = st;
          return;
        }
      }
      i += n;
      t->bytes += n * spec.value_size;
      FinishedOps(t, n, op_start);
    }
    // Unsynced fills end with the records handed to the OS, as rawwrite does.
    if (!sync_each && spec.kind != Kind::kFillBatch) t->status = wal->Flush();
  });
  if (!r.ok()) return r;
  absl::StatusOr<std::vector<SegmentMeta>> segs = wal->ListSegments();
  if (segs.ok()) {
    r->extra = absl::StrCat("(", Plural(segs->size(), "segment"), ")");
    const WalStats st = wal->GetStats();
    if (FLAGS_use_direct_io && st.bytes_written > 0) {
      // The space block alignment costs: padding frames in what was written.
      r->extra = absl::StrFormat(
          "(%s, %s, %.0f%% padding)", Plural(segs->size(), "segment"),
          st.direct_io ? "O_DIRECT" : "buffered: direct I/O refused",
          100.0 * static_cast<double>(st.padding_bytes) /
              static_cast<double>(st.bytes_written));
    }
  }
  if (FLAGS_statistics) {
    printf("WAL statistics (%s):\n%s\n", spec.label.c_str(),
           wal->GetStats().ToString().c_str());
  }
  return r;
}

// replay, iterate.
absl::StatusOr<Result> Benchmark::Read(const BenchSpec& spec) {
  absl::StatusOr<std::unique_ptr<SegmentedWal>> wal_or =
      OpenWal(wal_dir_, spec.segment_size);
  if (!wal_or.ok()) return wal_or.status();
  SegmentedWal* wal = wal_or->get();
  if (wal->next_lsn() == 1) {
    absl::Status s = FillUntimed(wal, spec);
    if (!s.ok()) return s;
  }
  absl::StatusOr<std::vector<SegmentMeta>> segs = wal->ListSegments();
  if (!segs.ok()) return segs.status();
  const uint64_t first_lsn = segs->empty() ? 1 : segs->front().first_lsn;
  const uint64_t expected = wal->next_lsn() - first_lsn;
  absl::StatusOr<Result> r = RunThreads(spec, [&](ThreadState* t) {
    uint64_t pass = 0;
    while (!stop_.load(std::memory_order_relaxed) &&
           (pass == 0 || spec.duration > 0)) {
      const uint64_t op_start = OpStart();
      uint64_t records = 0, bytes = 0;
      if (spec.kind == Kind::kReplay) {
        absl::StatusOr<std::vector<WalRecord>> all = wal->Replay();
        if (!all.ok()) {
          t->status = all.status();
          return;
        }
        records = all->size();
        for (const WalRecord& rec : *all) bytes += rec.payload.size();
      } else {
        absl::StatusOr<std::unique_ptr<WalIterator>> it =
            wal->NewIterator(first_lsn);
        if (!it.ok()) {
          t->status = it.status();
          return;
        }
        for (; (*it)->Valid(); (*it)->Next()) {
          records++;
          bytes += (*it)->record().payload.size();
        }
        if (!(*it)->status().ok()) {
          t->status = (*it)->status();
          return;
        }
      }
      if (records != expected) {
        t->status = absl::DataLossError(
            absl::StrCat(spec.label, " read ", records,
                         " records, the log holds ", expected));
        return;
      }
      t->bytes += bytes;
      pass++;
      t->passes++;
      // One histogram sample per pass.
      FinishedOps(t, records, op_start);
    }
  });
  if (!r.ok()) return r;
  r->extra =
      absl::StrCat("(", expected, " records, ", Plural(segs->size(), "segment"),
                   ", ", r->passes, r->passes == 1 ? " pass)" : " passes)");
  return r;
}

absl::StatusOr<Result> Benchmark::OpenRecover(const BenchSpec& spec) {
  uint64_t log_bytes = 0, segments = 0;
  {
    absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
        OpenWal(wal_dir_, spec.segment_size);
    if (!wal.ok()) return wal.status();
    if ((*wal)->next_lsn() == 1) {
      absl::Status s = FillUntimed(wal->get(), spec);
      if (!s.ok()) return s;
    }
    // A synced tail, so Open measures recovery, not writeback of dirty pages.
    absl::Status s = (*wal)->Sync();
    if (!s.ok()) return s;
    absl::StatusOr<uint64_t> size = (*wal)->TotalSizeBytes();
    absl::StatusOr<std::vector<SegmentMeta>> segs = (*wal)->ListSegments();
    if (!size.ok()) return size.status();
    if (!segs.ok()) return segs.status();
    log_bytes = *size;
    segments = segs->size();
  }
  uint64_t records = 0;
  absl::StatusOr<Result> r = RunThreads(spec, [&](ThreadState* t) {
    for (uint64_t i = 0; KeepGoing(spec, i); ++i) {
      const uint64_t op_start = NowNanos();
      absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
          OpenWal(wal_dir_, spec.segment_size);
      const uint64_t opened = NowNanos();
      if (!wal.ok()) {
        t->status = wal.status();
        return;
      }
      records = (*wal)->recovery_report().records_recovered;
      t->bytes += log_bytes;
      t->done.store(i + 1, std::memory_order_relaxed);
      if (FLAGS_histogram) t->hist.Add(opened - op_start);
      wal->reset();  // closing is not part of Open
      t->excluded_ns += NowNanos() - opened;
    }
  });
  if (!r.ok()) return r;
  r->extra = absl::StrFormat("(%" PRIu64 " segments, %.1f MB log, %" PRIu64
                             " records recovered)",
                             segments, log_bytes / 1048576.0, records);
  return r;
}

absl::StatusOr<Result> Benchmark::Rollover(const BenchSpec& spec) {
  absl::StatusOr<std::string> dir = FreshScratch("rollover");
  if (!dir.ok()) return dir.status();
  const uint64_t segment_size = spec.segment_size_given ? spec.segment_size : 1;
  absl::StatusOr<Result> r;
  {
    absl::StatusOr<std::unique_ptr<SegmentedWal>> wal_or =
        OpenWal(*dir, segment_size);
    if (!wal_or.ok()) return wal_or.status();
    SegmentedWal* wal = wal_or->get();
    r = RunThreads(spec, [&](ThreadState* t) {
      for (uint64_t i = 0; KeepGoing(spec, i); ++i) {
        const uint64_t op_start = OpStart();
        absl::StatusOr<uint64_t> lsn =
            wal->Append(1, t->tid + 1, 0, 0, t->values.Next(spec.value_size));
        if (!lsn.ok()) {
          t->status = lsn.status();
          return;
        }
        t->bytes += spec.value_size;
        FinishedOps(t, 1, op_start);
      }
    });
    if (r.ok()) {
      absl::StatusOr<std::vector<SegmentMeta>> segs = wal->ListSegments();
      if (segs.ok()) {
        r->extra =
            absl::StrCat("(", Plural(segs->size() - 1, "segment roll"), ")");
      }
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(*dir, ec);
  return r;
}

absl::StatusOr<Result> Benchmark::Truncate(const BenchSpec& spec) {
  absl::StatusOr<std::string> dir = FreshScratch("truncate");
  if (!dir.ok()) return dir.status();
  const uint64_t segment_size = spec.segment_size_given ? spec.segment_size : 1;
  // Each call deletes one segment, so the run needs that many sealed ones.
  const uint64_t want = spec.duration > 0 && !spec.num.has_value()
                            ? std::max<uint64_t>(1, FLAGS_num / 1000)
                            : spec.OpsPerThread();
  absl::StatusOr<Result> r;
  {
    absl::StatusOr<std::unique_ptr<SegmentedWal>> wal_or =
        OpenWal(*dir, segment_size);
    if (!wal_or.ok()) return wal_or.status();
    SegmentedWal* wal = wal_or->get();
    ValueGenerator values(static_cast<uint64_t>(FLAGS_seed),
                          FLAGS_compression_ratio, spec.value_size);
    fprintf(stderr, "%s: creating %" PRIu64 " segments first (not timed)\n",
            spec.label.c_str(), want);
    uint64_t rolls = 0, active = wal->active_segment_first_lsn();
    while (rolls < want && !g_interrupted.load()) {
      absl::StatusOr<uint64_t> lsn =
          wal->Append(1, 1, 0, 0, values.Next(spec.value_size));
      if (!lsn.ok()) return lsn.status();
      if (wal->active_segment_first_lsn() != active) {
        active = wal->active_segment_first_lsn();
        rolls++;
      }
    }
    absl::StatusOr<std::vector<SegmentMeta>> segs = wal->ListSegments();
    if (!segs.ok()) return segs.status();
    BenchSpec timed = spec;
    timed.num = static_cast<int64_t>(segs->size() - 1);
    timed.duration = 0;
    r = RunThreads(timed, [&](ThreadState* t) {
      for (uint64_t i = 0; KeepGoing(timed, i); ++i) {
        const uint64_t op_start = OpStart();
        absl::StatusOr<TruncateResult> tr =
            wal->TruncateBefore((*segs)[i + 1].first_lsn);
        if (!tr.ok()) {
          t->status = tr.status();
          return;
        }
        if (tr->segments_deleted != 1) {
          t->status = absl::InternalError(absl::StrCat(
              "TruncateBefore(", (*segs)[i + 1].first_lsn, ") deleted ",
              tr->segments_deleted, " segments, expected 1"));
          return;
        }
        t->bytes += tr->bytes_reclaimed;
        FinishedOps(t, 1, op_start);
      }
    });
    if (r.ok()) {
      r->spec = spec;
      r->extra = "(one segment deleted per call)";
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(*dir, ec);
  return r;
}

// rawsync, rawwrite.
absl::StatusOr<Result> Benchmark::Raw(const BenchSpec& spec) {
  absl::StatusOr<std::string> dir = FreshScratch("raw");
  if (!dir.ok()) return dir.status();
  const size_t record_size = kRecordHeaderBytes + spec.value_size;
  const Prealloc prealloc = spec.prealloc;
  // Preallocate what the run writes (when known), at most 256 MiB per thread;
  // writes wrap around inside the preallocated range.
  const uint64_t prealloc_bytes =
      spec.duration > 0 ? uint64_t{64} << 20
                        : std::min<uint64_t>(spec.OpsPerThread() * record_size,
                                             uint64_t{256} << 20);
  std::vector<std::unique_ptr<RawSyncWriter>> syncers;
  std::vector<std::unique_ptr<RawBufferedWriter>> writers;
  for (int i = 0; i < spec.threads; ++i) {
    const std::string path = absl::StrCat(
        *dir, "/", spec.kind == Kind::kRawSync ? "rawsync." : "rawwrite.", i);
    if (spec.kind == Kind::kRawSync) {
      auto w = RawSyncWriter::Create(path, prealloc, prealloc_bytes,
                                     FLAGS_use_direct_io, record_size);
      if (!w.ok()) return w.status();
      syncers.push_back(std::move(*w));
    } else {
      auto w = RawBufferedWriter::Create(
          path, static_cast<size_t>(FLAGS_write_buffer_size),
          FLAGS_use_direct_io);
      if (!w.ok()) return w.status();
      writers.push_back(std::move(*w));
    }
  }
  absl::StatusOr<Result> r = RunThreads(spec, [&](ThreadState* t) {
    // The record: 56 header-like bytes, then the value, as the WAL frames
    // it. rawwrite copies both straight into its buffer (one copy, as the WAL
    // frames into its staging buffer); rawsync needs them contiguous.
    std::string record(record_size, '\0');
    for (uint64_t i = 0; KeepGoing(spec, i); ++i) {
      const uint64_t op_start = OpStart();
      const absl::string_view head = t->values.Next(kRecordHeaderBytes);
      const absl::string_view value = t->values.Next(spec.value_size);
      absl::Status s;
      if (spec.kind == Kind::kRawSync) {
        memcpy(record.data(), head.data(), head.size());
        memcpy(record.data() + kRecordHeaderBytes, value.data(), value.size());
        s = syncers[t->tid]->WriteAndSync(record);
      } else {
        s = writers[t->tid]->Append(head);
        if (s.ok()) s = writers[t->tid]->Append(value);
      }
      if (!s.ok()) {
        t->status = s;
        return;
      }
      t->bytes += spec.value_size;
      FinishedOps(t, 1, op_start);
    }
    if (spec.kind == Kind::kRawWrite) t->status = writers[t->tid]->Finish();
  });
  syncers.clear();
  writers.clear();
  std::error_code ec;
  std::filesystem::remove_all(*dir, ec);
  if (r.ok() && spec.kind == Kind::kRawSync) {
    r->extra = absl::StrCat("(prealloc ", PreallocName(prealloc),
                            FLAGS_use_direct_io ? ", O_DIRECT)" : ")");
  } else if (r.ok() && FLAGS_use_direct_io) {
    r->extra = "(O_DIRECT)";
  }
  return r;
}

// firsttouch: what Replay() of a log of num records costs in memory alone.
// Replay() decodes on up to replay_threads threads (fewer when the log holds
// less than SegmentedWalOptions::replay_min_bytes_per_thread per thread),
// each into its own vector, the first reserving room for every record; the
// others are moved into it. Each record's payload is its own std::string, so
// a malloc and a copy of value_size bytes. This does the same with the bytes
// of a value pool instead of segment files, and frees the result inside the
// timed pass as the replay benchmark does. Where fresh memory is slow to
// back (a VM whose host maps guest pages on first touch), this is the
// ceiling replay cannot beat.
absl::StatusOr<Result> Benchmark::FirstTouch(const BenchSpec& spec) {
  const uint64_t records = spec.OpsPerThread();
  const uint64_t payload_bytes = records * spec.value_size;
  size_t threads = FLAGS_replay_threads != 0
                       ? static_cast<size_t>(FLAGS_replay_threads)
                       : std::clamp<size_t>(std::thread::hardware_concurrency(),
                                            1, 8);
  const uint64_t min_bytes = SegmentedWalOptions().replay_min_bytes_per_thread;
  if (min_bytes > 0) {
    threads = static_cast<size_t>(std::clamp<uint64_t>(
        (payload_bytes + records * kRecordHeaderBytes) / min_bytes, 1,
        threads));
  }
  threads = static_cast<size_t>(std::min<uint64_t>(threads, records));
  absl::StatusOr<Result> r = RunThreads(spec, [&](ThreadState* t) {
    // Every share copies from the same pool slice (values are not what is
    // measured); one slice of value_size bytes per record.
    const absl::string_view value = t->values.Next(spec.value_size);
    uint64_t pass = 0;
    while (!stop_.load(std::memory_order_relaxed) &&
           (pass == 0 || spec.duration > 0)) {
      const uint64_t op_start = OpStart();
      std::vector<std::vector<WalRecord>> shares(threads);
      auto build = [&](size_t share) {
        const uint64_t begin = records * share / threads;
        const uint64_t end = records * (share + 1) / threads;
        std::vector<WalRecord>& out = shares[share];
        out.reserve(share == 0 ? records : end - begin);
        for (uint64_t i = begin; i < end; ++i) {
          WalRecord rec;
          rec.lsn = i + 1;
          rec.record_type = 1;
          rec.vshard_id = static_cast<uint32_t>(i % 16);
          rec.payload.assign(value.data(), value.size());
          out.push_back(std::move(rec));
        }
      };
      std::vector<std::thread> helpers;
      for (size_t i = 1; i < threads; ++i) helpers.emplace_back(build, i);
      build(0);
      for (std::thread& h : helpers) h.join();
      std::vector<WalRecord> all = std::move(shares[0]);
      for (size_t i = 1; i < threads; ++i) {
        std::move(shares[i].begin(), shares[i].end(), std::back_inserter(all));
        std::vector<WalRecord>().swap(shares[i]);
      }
      uint64_t bytes = 0;
      for (const WalRecord& rec : all) bytes += rec.payload.size();
      std::vector<WalRecord>().swap(all);
      t->bytes += bytes;
      pass++;
      t->passes++;
      FinishedOps(t, records, op_start);
    }
  });
  if (!r.ok()) return r;
  r->extra = absl::StrCat("(", records, " records, ",
                          Plural(threads, "thread"), ", ",
                          r->passes, r->passes == 1 ? " pass)" : " passes)");
  return r;
}

absl::Status Benchmark::Run(const BenchSpec& spec) {
  std::vector<Result> runs;
  for (int i = 0; i < spec.repeats; ++i) {
    absl::StatusOr<Result> r = RunOnce(spec);
    if (!r.ok()) return r.status();
    Report(*r);
    runs.push_back(*std::move(r));
  }
  if (runs.size() == 1) {
    results_.push_back(runs[0]);
    return absl::OkStatus();
  }
  // The median run by ops/sec (of an even count, the faster middle one)
  // stands for the benchmark in --compare.
  std::sort(runs.begin(), runs.end(), [](const Result& a, const Result& b) {
    return a.OpsPerSec() > b.OpsPerSec();
  });
  const Result& median = runs[(runs.size() - 1) / 2];
  Report(median, absl::StrCat(" [MEDIAN ", runs.size(), " runs]"));
  results_.push_back(median);
  return absl::OkStatus();
}

absl::StatusOr<Result> Benchmark::RunOnce(const BenchSpec& spec) {
  if (FLAGS_warmup_page_cache && spec.duration == 0 &&
      (spec.kind == Kind::kFillSeq || spec.kind == Kind::kFillBatch ||
       spec.kind == Kind::kRawWrite)) {
    absl::Status s = WarmUpPageCache(spec.OpsPerThread() * spec.threads *
                                     (spec.value_size + kRecordHeaderBytes));
    if (!s.ok()) return s;
  }
  absl::StatusOr<Result> r;
  switch (spec.kind) {
    case Kind::kFillSeq:
    case Kind::kFillSync:
    case Kind::kFillBatch:
      r = Fill(spec);
      break;
    case Kind::kReplay:
    case Kind::kIterate:
      r = Read(spec);
      break;
    case Kind::kOpenRecover:
      r = OpenRecover(spec);
      break;
    case Kind::kRollover:
      r = Rollover(spec);
      break;
    case Kind::kTruncate:
      r = Truncate(spec);
      break;
    case Kind::kRawSync:
    case Kind::kRawWrite:
      r = Raw(spec);
      break;
    case Kind::kFirstTouch:
      r = FirstTouch(spec);
      break;
  }
  return r;
}

// ---------------------------------------------------------------------------
// Header and comparison.

std::string CpuDescription() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model, cache;
  int count = 0;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t'))
      key.pop_back();
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (key == "model name") {
      count++;
      model = value;
    } else if (key == "cache size") {
      cache = value;
    }
  }
  return absl::StrCat(
      count, " * ", model.empty() ? "unknown" : model,
      cache.empty() ? "" : absl::StrCat("\nCPUCache:   ", cache));
}

void Benchmark::PrintHeader(const std::vector<BenchSpec>& specs, bool temp_dir,
                            uint64_t seed) const {
  const time_t now = time(nullptr);
  char date[64];
  ctime_r(&now, date);
  date[strcspn(date, "\n")] = '\0';
  printf("segwal:     db_bench_wal\n");
  printf("Date:       %s\n", date);
  printf("CPU:        %s\n", CpuDescription().c_str());
  printf("WAL dir:    %s%s\n", wal_dir_.c_str(),
         temp_dir                 ? " (temporary, removed at exit)"
         : FLAGS_use_existing_wal ? " (existing log)"
                                  : "");
  printf("Values:     %" PRId64 " bytes each (%.0f bytes after compression)\n",
         FLAGS_value_size, FLAGS_value_size * FLAGS_compression_ratio);
  printf("Records:    %" PRId64 " bytes framed (56-byte header + value)\n",
         FLAGS_value_size + static_cast<int64_t>(kRecordHeaderBytes));
  printf("Entries:    %" PRId64
         " per thread (num/1000 for per-op-sync "
         "benchmarks)\n",
         FLAGS_num);
  printf("Threads:    %d\n", FLAGS_threads);
  printf("Segments:   %" PRId64 " bytes target, write buffer %" PRId64
         " bytes\n",
         FLAGS_segment_size, FLAGS_write_buffer_size);
  printf("Compression: %s\n", FLAGS_compression.c_str());
  printf("Encryption: %s\n", FLAGS_encrypt ? "on (random key)" : "off");
  printf("Direct I/O: %s\n",
         FLAGS_use_direct_io
             ? "WAL (use_direct_io: syncs padded to 4 KiB) and rawsync/rawwrite"
             : "off");
  printf("Raw prealloc: %s\n", FLAGS_rawsync_prealloc.c_str());
  if (FLAGS_use_direct_io && probed_stats_.has_value()) {
    if (probed_stats_->direct_io) {
      printf("WAL writes: O_DIRECT pwrite()/fdatasync(), 4 KiB blocks\n");
    } else {
      printf("WAL writes: write()/fdatasync() (direct I/O refused: %s; "
             "syncs still padded to 4 KiB)\n",
             probed_stats_->direct_io_fallback.c_str());
    }
  } else if (FLAGS_use_io_uring) {
    std::string why;
    const bool on = PosixIoUringAvailable(&why);
    printf("WAL writes: %s (%s)\n", on ? "io_uring" : "write()/fdatasync()",
           why.c_str());
  } else {
    printf("WAL writes: write()/fdatasync()\n");
  }
  printf("WAL spares: %s, %s, recycle up to %" PRId64 "\n",
         FLAGS_preallocate_segments ? "zero-filled ahead" : "off",
         FLAGS_background_preallocation ? "background" : "in line",
         FLAGS_recycle_segments);
  if (FLAGS_replay_threads == 0) {
    printf("Replay:     up to min(hardware threads, 8) = %u threads\n",
           std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  } else {
    printf("Replay:     up to %" PRId64 " thread%s\n", FLAGS_replay_threads,
           FLAGS_replay_threads == 1 ? " (sequential)" : "s");
  }
  printf("Seed:       %" PRIu64 "\n", seed);
  if (FLAGS_duration > 0)
    printf("Duration:   %.1f s per benchmark\n", FLAGS_duration);
#ifndef NDEBUG
  printf(
      "WARNING: Optimization is disabled: benchmarks unnecessarily slow "
      "(use bazel run -c opt)\n");
#endif
  (void)specs;
  printf("------------------------------------------------\n");
  fflush(stdout);
}

// The result of `kind` with the same value size that ran closest to
// results[self] (a baseline interleaved with the WAL runs pairs with its
// neighbour), preferring one with `threads` threads, then a rawsync with the
// --rawsync_prealloc file (not a bracketed prealloc= variant).
const Result* FindBaseline(const std::vector<Result>& results, size_t self,
                           Kind kind, uint64_t value_size, int threads) {
  Prealloc flag_prealloc = Prealloc::kZeroFill;
  ParsePrealloc(FLAGS_rawsync_prealloc, &flag_prealloc);
  const Result* best = nullptr;
  int best_rank = -1;
  size_t best_distance = SIZE_MAX;
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& b = results[i];
    if (i == self || b.spec.kind != kind || b.spec.value_size != value_size) {
      continue;
    }
    const int rank = (b.spec.threads == threads ? 2 : 0) +
                     (b.spec.prealloc == flag_prealloc ? 1 : 0);
    const size_t distance = i > self ? i - self : self - i;
    if (rank > best_rank || (rank == best_rank && distance < best_distance)) {
      best = &b;
      best_rank = rank;
      best_distance = distance;
    }
  }
  return best;
}

void Benchmark::PrintComparison() const {
  printf("------------------------------------------------\n");
  printf("Comparison (ratios measured in this run):\n");
  int w = 20;
  for (const Result& r : results_) {
    w = std::max(w, static_cast<int>(r.spec.label.size()));
  }
  printf("%-*s %-*s %10s  %s\n", w, "benchmark", w, "baseline", "ratio", "of");
  int rows = 0;
  auto row = [&](const Result& r, const char* missing, const Result* b,
                 double ratio, const char* of) {
    rows++;
    if (b == nullptr) {
      printf("%-*s %-*s %10s  (add %s to --benchmarks)\n", w,
             r.spec.label.c_str(), w, missing, "n/a", missing);
    } else {
      printf("%-*s %-*s %9.3fx  %s\n", w, r.spec.label.c_str(), w,
             b->spec.label.c_str(), ratio, of);
    }
  };
  // The run of `kind` closest to results_[self], whatever its settings.
  auto nearest = [&](size_t self, Kind kind) -> const Result* {
    const Result* best = nullptr;
    size_t best_distance = SIZE_MAX;
    for (size_t i = 0; i < results_.size(); ++i) {
      const size_t d = i > self ? i - self : self - i;
      if (results_[i].spec.kind == kind && d < best_distance) {
        best = &results_[i];
        best_distance = d;
      }
    }
    return best;
  };
  for (size_t i = 0; i < results_.size(); ++i) {
    const Result& r = results_[i];
    const uint64_t vs = r.spec.value_size;
    switch (r.spec.kind) {
      case Kind::kFillSeq: {
        const Kind base_kind = FLAGS_sync ? Kind::kRawSync : Kind::kRawWrite;
        const Result* b =
            FindBaseline(results_, i, base_kind, vs, r.spec.threads);
        row(r, FLAGS_sync ? "rawsync" : "rawwrite", b,
            b ? r.OpsPerSec() / b->OpsPerSec() : 0, "ops/sec");
        break;
      }
      case Kind::kFillSync: {
        const Result* b =
            FindBaseline(results_, i, Kind::kRawSync, vs, r.spec.threads);
        row(r, "rawsync", b, b ? r.OpsPerSec() / b->OpsPerSec() : 0, "ops/sec");
        if (r.spec.threads > 1) {
          const Result* one = FindBaseline(results_, i, Kind::kFillSync, vs, 1);
          if (one != nullptr && one->spec.threads != 1) one = nullptr;
          row(r, "fillsync (1 thread)", one,
              one ? r.OpsPerSec() / one->OpsPerSec() : 0,
              "ops/sec (group commit scaling)");
        }
        break;
      }
      case Kind::kReplay: {
        const Result* b = FindBaseline(results_, i, Kind::kFirstTouch, vs, 1);
        if (b != nullptr) {
          row(r, "firsttouch", b, r.OpsPerSec() / b->OpsPerSec(),
              "records/sec (replay / building its result in fresh memory)");
        }
        break;
      }
      case Kind::kOpenRecover: {
        for (Kind k : {Kind::kReplay, Kind::kIterate}) {
          const Result* b = nearest(i, k);
          row(r, k == Kind::kReplay ? "replay" : "iterate", b,
              b ? (r.thread_seconds / std::max<uint64_t>(1, r.ops)) /
                      b->SecondsPerPass()
                : 0,
              "time (one Open / one full pass)");
        }
        break;
      }
      case Kind::kRollover:
      case Kind::kTruncate: {
        const Result* b = FindBaseline(results_, i, Kind::kRawSync, vs, 1);
        if (b == nullptr) b = nearest(i, Kind::kRawSync);
        row(r, "rawsync", b, b ? r.MicrosPerOp() / b->MicrosPerOp() : 0,
            "micros/op (fdatasync-equivalents per op)");
        break;
      }
      default:
        break;
    }
  }
  if (rows == 0) printf("(no WAL benchmark with a baseline in this run)\n");
  fflush(stdout);
}

// ---------------------------------------------------------------------------
// Directories.

bool IsTmpfs(const std::string& dir) {
  struct statfs st;
  if (statfs(dir.c_str(), &st) != 0) return false;
  return st.f_type == 0x01021994;  // TMPFS_MAGIC
}

// A fresh temporary directory on a disk-backed file system.
absl::StatusOr<std::string> MakeTempRoot() {
  std::vector<std::string> bases;
  if (const char* t = getenv("TMPDIR"); t != nullptr && t[0] != '\0') {
    bases.push_back(t);
  }
  bases.push_back("/var/tmp");
  bases.push_back("/tmp");
  std::string chosen;
  for (const std::string& b : bases) {
    std::error_code ec;
    if (std::filesystem::is_directory(b, ec) && access(b.c_str(), W_OK) == 0 &&
        !IsTmpfs(b)) {
      chosen = b;
      break;
    }
  }
  if (chosen.empty()) {
    chosen = "/tmp";
    fprintf(stderr,
            "db_bench_wal: warning: no disk-backed temporary directory found; "
            "using %s (pass --wal_dir to choose the disk)\n",
            chosen.c_str());
  }
  std::string templ = chosen + "/db_bench_wal.XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp ", templ, ": ", strerror(errno)));
  }
  return templ;
}

int Main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "db_bench_wal [--benchmarks=a,b[k=v],...] [--num=N] [--value_size=B] "
      "[--threads=T] [--compare] ...\nBenchmarks segwal's SegmentedWal against "
      "raw POSIX baselines on the same disk.");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (argc > 1) {
    Die(kUsageError, absl::StrCat("unexpected argument '", argv[1],
                                  "' (flags are --name=value)"));
  }
  if (absl::Status s = ValidateGlobalFlags(); !s.ok()) {
    Die(kUsageError, s.message());
  }
  if (absl::StatusOr<RecoveryMode> m = ParseRecoveryMode(FLAGS_recovery_mode);
      !m.ok()) {
    Die(kUsageError, m.status().message());
  }
  absl::StatusOr<std::vector<BenchSpec>> specs =
      ParseBenchmarks(FLAGS_benchmarks);
  if (!specs.ok()) Die(kUsageError, specs.status().message());

  uint64_t seed = static_cast<uint64_t>(FLAGS_seed);
  if (seed == 0) {
    seed = static_cast<uint64_t>(
        std::chrono::system_clock::now().time_since_epoch().count());
    FLAGS_seed = static_cast<int64_t>(seed & INT64_MAX);
  }

  // Directories: the log in wal_dir, scratch files (raw baselines, rollover and
  // truncate logs) beside it on the same file system.
  std::string root, wal_dir, scratch;
  const bool temp = FLAGS_wal_dir.empty();
  if (temp) {
    absl::StatusOr<std::string> r = MakeTempRoot();
    if (!r.ok()) Die(kRuntimeError, r.status().message());
    root = *r;
    wal_dir = root + "/wal";
    scratch = root + "/scratch";
  } else {
    wal_dir = FLAGS_wal_dir;
    while (wal_dir.size() > 1 && wal_dir.back() == '/') wal_dir.pop_back();
    scratch = wal_dir + "/db_bench_wal.scratch";
    std::error_code ec;
    if (std::filesystem::exists(wal_dir, ec) && !FLAGS_use_existing_wal &&
        !std::filesystem::is_empty(wal_dir, ec)) {
      Die(kUsageError,
          absl::StrCat("--wal_dir=", wal_dir,
                       " is not empty: pass --use_existing_wal to benchmark "
                       "the log in it, or name an empty or new directory"));
    }
  }
  auto cleanup = [&]() {
    std::error_code ec;
    if (temp) {
      std::filesystem::remove_all(root, ec);
    } else {
      std::filesystem::remove_all(scratch, ec);
    }
  };
  {
    std::error_code ec;
    std::filesystem::create_directories(wal_dir, ec);
    std::filesystem::create_directories(scratch, ec);
    if (ec) {
      cleanup();
      Die(kRuntimeError,
          absl::StrCat("creating ", scratch, ": ", ec.message()));
    }
  }

  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  Benchmark bench(wal_dir, scratch, /*owns_wal=*/!FLAGS_use_existing_wal);
  bool any_wal = false;
  for (const BenchSpec& s : *specs) any_wal |= UsesWal(s.kind);
  if (any_wal) {
    if (absl::Status s = bench.Probe(); !s.ok()) {
      cleanup();
      std::string flags;
      if (FLAGS_compression != "none")
        flags += " --compression=" + FLAGS_compression;
      if (FLAGS_encrypt) flags += " --encrypt";
      Die(kRuntimeError,
          absl::StrCat("cannot open the WAL in ", wal_dir,
                       flags.empty() ? "" : absl::StrCat(" with", flags), ": ",
                       s.ToString()));
    }
  }
  bench.PrintHeader(*specs, temp, seed);
  for (const BenchSpec& spec : *specs) {
    absl::Status s = bench.Run(spec);
    if (!s.ok()) {
      cleanup();
      if (g_interrupted.load()) Die(130, "interrupted");
      Die(kRuntimeError, absl::StrCat(spec.label, " failed: ", s.ToString()));
    }
  }
  if (FLAGS_compare) bench.PrintComparison();
  cleanup();
  return 0;
}

}  // namespace
}  // namespace bench
}  // namespace segwal

int main(int argc, char** argv) { return segwal::bench::Main(argc, argv); }
