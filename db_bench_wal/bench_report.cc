// Benchmark's header (machine, options, write path) and --compare table.

#include "db_bench_wal/benchmark.h"

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

namespace segwal {
namespace bench {

// ---------------------------------------------------------------------------
// Header and comparison.

namespace {

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

}  // namespace

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
namespace {

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

}  // namespace

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

}  // namespace bench
}  // namespace segwal
