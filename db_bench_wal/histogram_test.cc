#include "db_bench_wal/histogram.h"

#include <string>

#include "gtest/gtest.h"

namespace segwal {
namespace bench {
namespace {

TEST(HistogramTest, BucketLimitsAreRocksDbStyle) {
  const std::vector<uint64_t>& limits = Histogram::BucketLimits();
  const std::vector<uint64_t> head = {1,  2,  3,  4,  6,   9,   13,  19,
                                      28, 42, 63, 94, 140, 210, 310, 460};
  ASSERT_GE(limits.size(), head.size());
  for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(limits[i], head[i]) << i;
  for (size_t i = 1; i < limits.size(); ++i)
    EXPECT_LT(limits[i - 1], limits[i]);
  EXPECT_EQ(limits.back(), UINT64_MAX);
}

TEST(HistogramTest, BucketIndexIsInclusiveOfTheUpperLimit) {
  EXPECT_EQ(Histogram::BucketIndex(0), 0u);
  EXPECT_EQ(Histogram::BucketIndex(1), 0u);
  EXPECT_EQ(Histogram::BucketIndex(2), 1u);
  EXPECT_EQ(Histogram::BucketIndex(5), 4u);  // (4, 6]
  EXPECT_EQ(Histogram::BucketIndex(UINT64_MAX),
            Histogram::BucketLimits().size() - 1);
}

TEST(HistogramTest, EmptyHistogramPrintsZeros) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(99), 0.0);
  const std::string s = h.ToString();
  EXPECT_NE(s.find("Count: 0 Average: 0.0000  StdDev: 0.00"), std::string::npos)
      << s;
}

TEST(HistogramTest, StatisticsOfKnownValues) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Add(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.Average(), 50.5);
  EXPECT_NEAR(h.StandardDeviation(), 28.866, 0.001);
  // Interpolated inside (42, 63]: 50 values <= 50, 42 of them below the bucket.
  EXPECT_NEAR(h.Median(), 42 + 21.0 * (50 - 42) / 21, 1e-9);
  EXPECT_LE(h.Percentile(99.99), 100.0);
  EXPECT_GE(h.Percentile(0), 1.0);
}

TEST(HistogramTest, MergeEqualsAddingEverything) {
  Histogram a, b, all;
  for (uint64_t v = 0; v < 1000; ++v) {
    (v % 3 == 0 ? a : b).Add(v * 7);
    all.Add(v * 7);
  }
  a.Merge(b);
  EXPECT_EQ(a.ToString(), all.ToString());
}

TEST(HistogramTest, ToStringHasDbBenchShape) {
  Histogram h;
  for (int i = 0; i < 90; ++i) h.Add(10);
  for (int i = 0; i < 10; ++i) h.Add(1000);
  const std::string s = h.ToString();
  EXPECT_NE(s.find("Count: 100 Average: 109.0000  StdDev: 297.00\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("Min: 10  Median: "), std::string::npos) << s;
  EXPECT_NE(s.find("Max: 1000\n"), std::string::npos) << s;
  EXPECT_NE(s.find("Percentiles: P50: "), std::string::npos) << s;
  EXPECT_NE(s.find(" P99.99: 1000.00\n"), std::string::npos) << s;
  // 90% in (9, 13]: 18 marks; 10% in (690, 1030]: 2 marks.
  EXPECT_NE(s.find("(       9,      13 ]       90  90.000%  90.000% "
                   "##################\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("(     690,    1030 ]       10  10.000% 100.000% ##\n"),
            std::string::npos)
      << s;
}

}  // namespace
}  // namespace bench
}  // namespace segwal
