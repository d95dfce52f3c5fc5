// db_bench_wal's benchmark specifications: the benchmark kinds, one entry of
// --benchmarks with its bracketed overrides applied (BenchSpec), and the
// parsing and checking of --benchmarks and the global flags. No state.

#ifndef SEGWAL_DB_BENCH_WAL_BENCH_SPEC_H_
#define SEGWAL_DB_BENCH_WAL_BENCH_SPEC_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "db_bench_wal/flags.h"
#include "db_bench_wal/raw_file.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace bench {

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
inline constexpr KindName kKinds[] = {
    {"fillseq", Kind::kFillSeq},     {"fillsync", Kind::kFillSync},
    {"fillbatch", Kind::kFillBatch}, {"replay", Kind::kReplay},
    {"iterate", Kind::kIterate},     {"openrecover", Kind::kOpenRecover},
    {"rollover", Kind::kRollover},   {"truncate", Kind::kTruncate},
    {"rawsync", Kind::kRawSync},     {"rawwrite", Kind::kRawWrite},
    {"firsttouch", Kind::kFirstTouch},
};

inline bool UsesWal(Kind k) {
  return k != Kind::kRawSync && k != Kind::kRawWrite && k != Kind::kFirstTouch;
}
inline bool SyncsEveryOp(Kind k) {
  return k == Kind::kFillSync || k == Kind::kRawSync || k == Kind::kRollover ||
         k == Kind::kTruncate;
}
inline bool SingleThreaded(Kind k) {
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

inline constexpr int64_t kMaxValueSize = 64 << 20;  // SegmentedWalOptions default
inline constexpr int64_t kMaxThreads = 1024;

// Checks the global flags that every benchmark inherits.
absl::Status ValidateGlobalFlags();
absl::StatusOr<RecoveryMode> ParseRecoveryMode(absl::string_view name);
// The benchmark names, for error messages and --help.
std::string KnownBenchmarks();
// Parses --benchmarks: "a,b[k=v,...],...".
absl::StatusOr<std::vector<BenchSpec>> ParseBenchmarks(absl::string_view list);

}  // namespace bench
}  // namespace segwal

#endif  // SEGWAL_DB_BENCH_WAL_BENCH_SPEC_H_
