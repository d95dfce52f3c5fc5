// Histogram: latency statistics in the shape RocksDB's db_bench prints them.
//
// Values are unsigned integers (db_bench_wal records nanoseconds). Buckets have
// RocksDB-style limits: 1, 2, then each limit is 1.5x the previous one, cut to
// its two most significant decimal digits (3, 4, 6, 9, 13, 19, 28, 42, 63, 94,
// 140, 210, ...), up to the largest uint64_t. Percentiles interpolate linearly
// inside a bucket and are clamped to [min, max].
//
// ToString() prints
//   Count: 1000 Average: 12.3400  StdDev: 5.67
//   Min: 3  Median: 11.2000  Max: 97
//   Percentiles: P50: 11.20 P75: 14.80 P99: 60.10 P99.9: 95.00 P99.99: 97.00
//   ------------------------------------------------------
//   [       0,       1 ]        2   0.200%   0.200%
//   (       9,      13 ]      400  40.000%  40.200% ########
// one bar line per non-empty bucket: range, count, percent, cumulative percent,
// and one '#' per 5%.
//
// Thread safety: none. Give each thread its own Histogram and Merge them.

#ifndef SEGWAL_DB_BENCH_WAL_HISTOGRAM_H_
#define SEGWAL_DB_BENCH_WAL_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace segwal {
namespace bench {

class Histogram {
 public:
  Histogram();

  void Clear();
  void Add(uint64_t value);
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double Average() const;
  double StandardDeviation() const;
  // p in [0, 100].
  double Percentile(double p) const;
  double Median() const { return Percentile(50); }

  std::string ToString() const;

  // The upper (inclusive) limit of each bucket; bucket 0 is [0, 1].
  static const std::vector<uint64_t>& BucketLimits();
  // Index of the bucket that holds `value`.
  static size_t BucketIndex(uint64_t value);

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  // Doubles: sums of squared nanosecond latencies overflow 64 bits quickly.
  double sum_ = 0;
  double sum_squares_ = 0;
};

}  // namespace bench
}  // namespace segwal

#endif  // SEGWAL_DB_BENCH_WAL_HISTOGRAM_H_
