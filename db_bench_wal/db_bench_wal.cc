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
//
// Files: flags here, bench_spec (parsing --benchmarks), benchmark (running
// them), bench_report (header and --compare table).

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
#include "db_bench_wal/bench_spec.h"
#include "db_bench_wal/benchmark.h"

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

void OnSignal(int) { g_interrupted.store(true); }

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
