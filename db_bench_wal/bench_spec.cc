// Parsing and checking of --benchmarks and the global flags (bench_spec.h).

#include "db_bench_wal/bench_spec.h"

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

namespace {

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

}  // namespace

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

}  // namespace bench
}  // namespace segwal
