#include "db_bench_wal/histogram.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>

namespace segwal {
namespace bench {

namespace {

std::vector<uint64_t> MakeBucketLimits() {
  std::vector<uint64_t> limits = {1, 2};
  const double kMax = static_cast<double>(std::numeric_limits<uint64_t>::max());
  double next = 2;
  while ((next = 1.5 * static_cast<double>(limits.back())) < kMax) {
    // Keep two significant digits so the bucket edges read well (172 -> 170).
    uint64_t v = static_cast<uint64_t>(next);
    uint64_t scale = 1;
    while (v / 10 > 10) {
      v /= 10;
      scale *= 10;
    }
    limits.push_back(v * scale);
  }
  limits.push_back(std::numeric_limits<uint64_t>::max());
  return limits;
}

}  // namespace

const std::vector<uint64_t>& Histogram::BucketLimits() {
  static const std::vector<uint64_t>* limits =
      new std::vector<uint64_t>(MakeBucketLimits());
  return *limits;
}

size_t Histogram::BucketIndex(uint64_t value) {
  const std::vector<uint64_t>& limits = BucketLimits();
  return static_cast<size_t>(
      std::lower_bound(limits.begin(), limits.end(), value) - limits.begin());
}

Histogram::Histogram() : buckets_(BucketLimits().size(), 0) {}

void Histogram::Clear() {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = min_ = max_ = 0;
  sum_ = sum_squares_ = 0;
}

void Histogram::Add(uint64_t value) {
  buckets_[BucketIndex(value)]++;
  if (count_ == 0 || value < min_) min_ = value;
  if (value > max_) max_ = value;
  count_++;
  const double v = static_cast<double>(value);
  sum_ += v;
  sum_squares_ += v * v;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  if (count_ == 0 || other.min_ < min_) min_ = other.min_;
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
  sum_squares_ += other.sum_squares_;
}

double Histogram::Average() const {
  return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_);
}

double Histogram::StandardDeviation() const {
  if (count_ == 0) return 0.0;
  const double n = static_cast<double>(count_);
  const double variance = sum_squares_ / n - (sum_ / n) * (sum_ / n);
  return variance <= 0 ? 0.0 : std::sqrt(variance);
}

double Histogram::Percentile(double p) const {
  if (count_ == 0) return 0.0;
  const std::vector<uint64_t>& limits = BucketLimits();
  const double threshold = static_cast<double>(count_) * (p / 100.0);
  uint64_t cumulative = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    if (buckets_[b] == 0) continue;
    const uint64_t before = cumulative;
    cumulative += buckets_[b];
    if (static_cast<double>(cumulative) < threshold) continue;
    // Interpolate linearly inside the bucket, then clamp to what was seen.
    const double left = b == 0 ? 0.0 : static_cast<double>(limits[b - 1]);
    const double right = static_cast<double>(limits[b]);
    const double pos = (threshold - static_cast<double>(before)) /
                       static_cast<double>(buckets_[b]);
    double r = left + (right - left) * pos;
    r = std::max(r, static_cast<double>(min_));
    r = std::min(r, static_cast<double>(max_));
    return r;
  }
  return static_cast<double>(max_);
}

std::string Histogram::ToString() const {
  std::string out;
  char line[256];
  snprintf(line, sizeof(line),
           "Count: %" PRIu64 " Average: %.4f  StdDev: %.2f\n", count_,
           Average(), StandardDeviation());
  out += line;
  snprintf(line, sizeof(line),
           "Min: %" PRIu64 "  Median: %.4f  Max: %" PRIu64 "\n", min(),
           Median(), max());
  out += line;
  snprintf(
      line, sizeof(line),
      "Percentiles: P50: %.2f P75: %.2f P99: %.2f P99.9: %.2f P99.99: %.2f\n",
      Percentile(50), Percentile(75), Percentile(99), Percentile(99.9),
      Percentile(99.99));
  out += line;
  out += "------------------------------------------------------\n";
  if (count_ == 0) return out;
  const std::vector<uint64_t>& limits = BucketLimits();
  const double percent_per_value = 100.0 / static_cast<double>(count_);
  uint64_t cumulative = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    if (buckets_[b] == 0) continue;
    cumulative += buckets_[b];
    const double percent = percent_per_value * static_cast<double>(buckets_[b]);
    snprintf(line, sizeof(line),
             "%c %7" PRIu64 ", %7" PRIu64 " ] %8" PRIu64 " %7.3f%% %7.3f%% ",
             b == 0 ? '[' : '(', b == 0 ? uint64_t{0} : limits[b - 1],
             limits[b], buckets_[b], percent,
             percent_per_value * static_cast<double>(cumulative));
    out += line;
    out.append(static_cast<size_t>(percent / 5.0 + 0.5), '#');
    out += '\n';
  }
  return out;
}

}  // namespace bench
}  // namespace segwal
