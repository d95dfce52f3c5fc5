// SegmentedWal::GetStats() and WalHistogram: exact counters on small,
// deterministic workloads (MemEnv), group commit under threads, poisoning.

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "env/env.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"
#include "wal/format.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace {

using ::segwal::testutil::IsOkAndHolds;
using ::testing::HasSubstr;

constexpr uint64_t kHeader = wal_format::kSegmentHeaderSize;
constexpr uint64_t kFrame = wal_format::kRecordHeaderSize;

TEST(WalHistogramTest, PowerOfTwoBuckets) {
  WalHistogram h;
  for (uint64_t v : {0, 1, 2, 3, 4, 1000}) h.Add(v);
  EXPECT_EQ(h.count, 6u);
  EXPECT_EQ(h.sum, 1010u);
  EXPECT_EQ(h.min, 0u);
  EXPECT_EQ(h.max, 1000u);
  EXPECT_EQ(h.buckets[0], 1u);   // 0
  EXPECT_EQ(h.buckets[1], 1u);   // [1,2)
  EXPECT_EQ(h.buckets[2], 2u);   // [2,4)
  EXPECT_EQ(h.buckets[3], 1u);   // [4,8)
  EXPECT_EQ(h.buckets[10], 1u);  // [512,1024)
  EXPECT_EQ(h.Percentile(50), 3u);
  EXPECT_EQ(h.Percentile(100), 1000u);  // capped at max
  EXPECT_EQ(h.ToString(),
            "count=6 avg=168.3 min=0 max=1000 p50<=3 p99<=1000 | [0,1):1 "
            "[1,2):1 [2,4):2 [4,8):1 [512,1024):1");
}

TEST(WalHistogramTest, EmptyAndExtremes) {
  WalHistogram h;
  EXPECT_EQ(h.ToString(), "count=0 avg=0.0 min=0 max=0 p50<=0 p99<=0");
  EXPECT_EQ(h.Percentile(50), 0u);
  h.Add(~uint64_t{0});
  h.Add(7);
  EXPECT_EQ(h.buckets[64], 1u);
  EXPECT_EQ(h.min, 7u);
  EXPECT_THAT(h.ToString(), HasSubstr("[4,8):1 [9223372036854775808,inf):1"));
  EXPECT_EQ(h.Percentile(100), ~uint64_t{0});
}

class WalStatsTest : public ::testing::Test {
 protected:
  SegmentedWalOptions Options(uint64_t segment_target_size = 1 << 20) {
    SegmentedWalOptions o;
    o.wal_dir = "/wal";
    o.env = env_.get();
    o.segment_target_size = segment_target_size;
    // Exact byte counts below assume plain segment files; spares have their
    // own test (with the in-line preparer, whose timing is fixed).
    o.preallocate_segments = false;
    // Counts read right after a roll assume the roll sealed in line (with
    // background sealing the seal's fsync lands a little later).
    o.background_sealing = false;
    return o;
  }
  std::unique_ptr<SegmentedWal> Open(uint64_t segment_target_size = 1 << 20) {
    auto wal = SegmentedWal::Open(Options(segment_target_size));
    EXPECT_TRUE(wal.ok()) << wal.status();
    return wal.ok() ? std::move(*wal) : nullptr;
  }
  std::unique_ptr<Env> env_ = NewMemEnv();
};

TEST_F(WalStatsTest, FreshWalCountsItsFirstSegmentOnly) {
  auto wal = Open();
  ASSERT_NE(wal, nullptr);
  const WalStats s = wal->GetStats();
  EXPECT_EQ(s.appends, 0u);
  EXPECT_EQ(s.bytes_written, kHeader);  // the first segment's header
  EXPECT_EQ(s.syncs, 1u);               // ... synced before any record
  EXPECT_EQ(s.sync_requests, 0u);
  EXPECT_EQ(s.records_per_sync.count, 0u);
  EXPECT_EQ(s.sync_latency_micros.count, 1u);
  EXPECT_EQ(s.segments_on_disk, 1u);
  EXPECT_EQ(s.bytes_on_disk, kHeader);
  EXPECT_EQ(s.durable_lsn, 0u);
  EXPECT_FALSE(s.poisoned);
}

TEST_F(WalStatsTest, AppendsBytesAndOneSyncAreCountedExactly) {
  auto wal = Open();
  ASSERT_NE(wal, nullptr);
  for (size_t size : {0, 10, 100}) {
    ASSERT_OK(wal->Append(1, 2, 3, 4, std::string(size, 'p')).status());
  }
  WalStats s = wal->GetStats();
  EXPECT_EQ(s.appends, 3u);
  EXPECT_EQ(s.bytes_appended, 110u);
  EXPECT_EQ(s.bytes_framed, 110u + 3 * kFrame);
  EXPECT_EQ(s.bytes_written, kHeader);  // staged, not written yet
  EXPECT_EQ(s.durable_lsn, 0u);

  ASSERT_OK(wal->Sync());
  s = wal->GetStats();
  EXPECT_EQ(s.sync_requests, 1u);
  EXPECT_EQ(s.syncs, 2u);
  EXPECT_EQ(s.bytes_written, kHeader + 110 + 3 * kFrame);
  EXPECT_EQ(s.records_per_sync.count, 1u);
  EXPECT_EQ(s.records_per_sync.sum, 3u);
  EXPECT_EQ(s.records_per_sync.buckets[2], 1u);  // [2,4)
  EXPECT_EQ(s.sync_latency_micros.count, s.syncs);
  EXPECT_EQ(s.durable_lsn, 3u);
  ASSERT_OK_AND_ASSIGN(const uint64_t total, wal->TotalSizeBytes());
  EXPECT_EQ(s.bytes_on_disk, total);

  // Nothing new: a Sync request, but no fsync.
  ASSERT_OK(wal->Sync());
  s = wal->GetStats();
  EXPECT_EQ(s.sync_requests, 2u);
  EXPECT_EQ(s.syncs, 2u);
  EXPECT_EQ(s.records_per_sync.count, 1u);
}

// With background sealing the sealer makes the seal's fsync and the next
// segment's header fsync: both are counted, as when they are made in line.
TEST_F(WalStatsTest, BackgroundSealsCountTheSealAndTheNextHeaderSync) {
  SegmentedWalOptions o = Options(/*segment_target_size=*/300);
  o.background_sealing = true;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(o));
  for (int i = 1; i <= 4; ++i) {  // the 4th append rolls (as below)
    ASSERT_OK(wal->Append(1, 1, 1, 1, absl::StrCat("value-", i)).status());
  }
  ASSERT_EQ(wal->GetStats().rollovers, 1u);
  ASSERT_OK(wal->Sync());  // waits for the queued seal
  WalStats s = wal->GetStats();
  EXPECT_EQ(s.syncs, 3u);  // first segment, sealing sync, next segment
  EXPECT_EQ(s.sync_latency_micros.count, s.syncs);
  EXPECT_EQ(s.durable_lsn, 4u);
  ASSERT_OK(wal->Append(1, 1, 1, 1, "value-5").status());
  ASSERT_OK(wal->Sync());
  s = wal->GetStats();
  EXPECT_EQ(s.syncs, 4u);
  EXPECT_EQ(s.sync_latency_micros.count, s.syncs);
}

TEST_F(WalStatsTest, RolloverSealsAndTruncationAreCounted) {
  auto wal = Open(/*segment_target_size=*/300);
  ASSERT_NE(wal, nullptr);
  // 4 records of 7 bytes: 64 + 4 * 63 = 316 >= 300, so the 4th append rolls.
  for (int i = 1; i <= 4; ++i) {
    ASSERT_OK(wal->Append(1, 1, 1, 1, absl::StrCat("value-", i)).status());
  }
  WalStats s = wal->GetStats();
  EXPECT_EQ(s.rollovers, 1u);
  EXPECT_EQ(s.syncs, 3u);  // first segment, sealing sync, next segment
  const uint64_t footer = wal_format::FooterFrameSize(1);
  EXPECT_EQ(s.bytes_written, kHeader + 4 * 63 + footer + kHeader);
  EXPECT_EQ(s.durable_lsn, 4u);  // sealed segments are durable
  EXPECT_EQ(s.segments_on_disk, 2u);
  EXPECT_EQ(s.bytes_on_disk, kHeader + 4 * 63 + footer + kHeader);
  // The seal made everything durable: Sync has nothing to do.
  ASSERT_OK(wal->Sync());
  EXPECT_EQ(wal->GetStats().syncs, 3u);

  for (int i = 5; i <= 12; ++i) {
    ASSERT_OK(wal->Append(1, 1, 1, 1, absl::StrCat("value-", i)).status());
  }
  ASSERT_OK(wal->Sync());
  s = wal->GetStats();
  ASSERT_OK_AND_ASSIGN(auto segments, wal->ListSegments());
  EXPECT_EQ(s.rollovers, segments.size() - 1);
  ASSERT_OK_AND_ASSIGN(const TruncateResult t, wal->TruncateBefore(9));
  EXPECT_EQ(t.segments_deleted, 2u);
  s = wal->GetStats();
  EXPECT_EQ(s.segments_deleted, 2u);
  ASSERT_OK_AND_ASSIGN(const uint64_t total, wal->TotalSizeBytes());
  EXPECT_EQ(s.bytes_on_disk, total);
  EXPECT_EQ(s.segments_on_disk, segments.size() - 2);
}

TEST_F(WalStatsTest, GroupCommitHistogramAccountsForEveryDurableRecord) {
  auto wal = Open();
  ASSERT_NE(wal, nullptr);
  constexpr int kThreads = 8, kPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&wal, t] {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_OK(wal->Append(1, t, 0, 0, "payload").status());
        EXPECT_OK(wal->Sync());
      }
    });
  }
  for (std::thread& th : threads) th.join();
  const WalStats s = wal->GetStats();
  constexpr uint64_t kRecords = kThreads * kPerThread;
  EXPECT_EQ(s.appends, kRecords);
  EXPECT_EQ(s.sync_requests, kRecords);
  EXPECT_EQ(s.durable_lsn, kRecords);
  // Every record became durable in exactly one Sync round.
  EXPECT_EQ(s.records_per_sync.sum, kRecords);
  EXPECT_LE(s.records_per_sync.count, kRecords);
  // One fsync per round, plus the first segment's creation.
  EXPECT_EQ(s.syncs, s.records_per_sync.count + 1);
  EXPECT_EQ(s.sync_latency_micros.count, s.syncs);
}

TEST_F(WalStatsTest, PoisonedInstanceSaysWhy) {
  FaultInjectionEnv fault(env_.get());
  SegmentedWalOptions o = Options();
  o.env = &fault;
  auto wal = SegmentedWal::Open(o);
  ASSERT_TRUE(wal.ok()) << wal.status();
  ASSERT_OK((*wal)->Append(1, 1, 1, 1, "x").status());
  fault.InjectError(kOpSync, absl::InternalError("injected fsync failure"));
  EXPECT_FALSE((*wal)->Sync().ok());
  const WalStats s = (*wal)->GetStats();
  EXPECT_TRUE(s.poisoned);
  EXPECT_THAT(s.poisoned_reason, HasSubstr("injected fsync failure"));
  EXPECT_EQ(s.durable_lsn, 0u);
  EXPECT_THAT(s.ToString(), HasSubstr("poisoned: yes (INTERNAL: "));
}

TEST_F(WalStatsTest, SparesAreCountedAndSizedToTheTarget) {
  SegmentedWalOptions o = Options(/*segment_target_size=*/5000);
  o.preallocate_segments = true;
  o.background_preallocation = false;
  o.background_sealing = false;
  o.recycle_segments = 1;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  WalStats s = wal->GetStats();
  // Open prepared a spare (5000 rounded up to 4 KiB pages) and started the
  // first segment in it.
  EXPECT_EQ(s.spares_zero_filled, 1u);
  EXPECT_EQ(s.segments_from_spares, 1u);
  EXPECT_EQ(s.bytes_on_disk, 8192u);
  EXPECT_THAT(wal->TotalSizeBytes(), IsOkAndHolds(8192u));
  // In-line preparation happens at the roll, not before.
  for (int i = 0; i < 30; ++i) {
    ASSERT_OK(wal->Append(1, 1, 1, 1, std::string(50, 'x')).status());
  }
  ASSERT_OK(wal->Sync());
  s = wal->GetStats();
  EXPECT_EQ(s.spares_zero_filled, 1u);
  EXPECT_EQ(s.segments_from_spares, 1u);
  // Roll: the next segment starts in a new spare; the sealed one is cut at
  // its footer.
  while (wal->GetStats().rollovers == 0) {
    ASSERT_OK(wal->Append(1, 1, 1, 1, std::string(50, 'x')).status());
  }
  ASSERT_OK(wal->Sync());
  s = wal->GetStats();
  EXPECT_EQ(s.spares_zero_filled, 2u);
  EXPECT_EQ(s.segments_from_spares, 2u);
  ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_THAT(env_->GetFileSize(segs[0].path), IsOkAndHolds(segs[0].file_size));
  EXPECT_LT(segs[0].file_size, 8192u);
  EXPECT_EQ(segs[1].file_size, 8192u);
  // Truncation keeps the sealed segment as a spare (recycle_segments = 1).
  ASSERT_OK_AND_ASSIGN(auto t, wal->TruncateBefore(wal->next_lsn()));
  EXPECT_EQ(t.segments_deleted, 1u);
  s = wal->GetStats();
  EXPECT_EQ(s.spares_recycled, 1u);
  EXPECT_EQ(s.spare_failures, 0u);
  EXPECT_FALSE(env_->FileExists(segs[0].path));
}

TEST_F(WalStatsTest, KeyRotationSealsAreNotRollovers) {
  auto wal = Open();
  ASSERT_NE(wal, nullptr);
  ASSERT_OK(wal->Append(1, 1, 1, 1, "before").status());
  auto key = WalEncryptionKey::FromBytes(std::string(32, 'k'));
  ASSERT_OK(key.status());
  // Seals the active segment and starts an encrypted one: not a full segment.
  ASSERT_OK(wal->RotateEncryptionRing(KeyRing(*key)));
  ASSERT_OK(wal->Append(1, 1, 1, 1, "after").status());
  ASSERT_OK(wal->Sync());
  const WalStats s = wal->GetStats();
  EXPECT_EQ(s.segments_on_disk, 2u);
  EXPECT_EQ(s.rollovers, 0u);
}

TEST_F(WalStatsTest, ToStringHasOneLinePerField) {
  auto wal = Open();
  ASSERT_NE(wal, nullptr);
  ASSERT_OK(wal->Append(1, 1, 1, 1, "abc").status());
  ASSERT_OK(wal->Sync());
  const std::string text = wal->GetStats().ToString();
  for (const char* field :
       {"appends: 1\n", "bytes_appended: 3\n", "bytes_framed: 59\n",
        "bytes_written: 123\n", "sync_requests: 1\n", "syncs: 2\n",
        "records_per_sync: count=1 avg=1.0 min=1 max=1 p50<=1 p99<=1 | "
        "[1,2):1\n",
        "sync_latency_micros: count=2 ", "rollovers: 0\n",
        "segments_deleted: 0\n", "spares_zero_filled: 0\n",
        "spares_recycled: 0\n", "segments_from_spares: 0\n",
        "spare_failures: 0\n", "padding_bytes: 0\n", "direct_io: off\n",
        "segments_on_disk: 1\n",
        "bytes_on_disk: 123\n", "durable_lsn: 1\n", "poisoned: no\n"}) {
    EXPECT_THAT(text, HasSubstr(field));
  }
}

}  // namespace
}  // namespace segwal
