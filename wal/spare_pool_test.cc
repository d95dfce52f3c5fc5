// SparePool (wal/spare_pool.h) on its own, over MemEnv / FaultInjectionEnv:
// which spare files a restart adopts, that names are never reused, that a
// full disk only ends preallocation while another error is reported, that
// recycling stops at recycle_segments, and that the spare thread prepares a
// spare once asked and stops. (The WAL's use of spares: spare_files_test.cc.)
#include "wal/spare_pool.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "env/env.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gtest/gtest.h"

namespace segwal {
namespace {

constexpr char kDir[] = "/wal";

class SparePoolTest : public ::testing::Test {
 protected:
  SparePoolTest() : env_(NewMemEnv()) {
    EXPECT_TRUE(env_->CreateDirIfMissing(kDir).ok());
  }

  SparePool::Options Opts() const {
    SparePool::Options o;
    o.wal_dir = kDir;
    o.segment_target_size = 64 << 10;
    o.preallocate = true;
    o.background = false;
    o.recycle_segments = 2;
    return o;
  }

  void WriteFile(const std::string& name, size_t size) {
    auto f = env_->NewWritableFile(std::string(kDir) + "/" + name);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(std::string(size, 'x')).ok());
    ASSERT_TRUE((*f)->Close().ok());
  }

  std::vector<std::string> Spares(Env* env) {
    auto children = env->GetChildren(kDir);
    EXPECT_TRUE(children.ok());
    std::vector<std::string> out;
    for (const std::string& c : *children) {
      if (c.rfind("spare-", 0) == 0) out.push_back(c);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::unique_ptr<Env> env_;
};

std::string SpareName(int id) {
  std::string digits = std::to_string(id);
  return "spare-" + std::string(20 - digits.size(), '0') + digits + ".tmp";
}

TEST_F(SparePoolTest, RestartAdoptsUpToRecycleSegmentsAndDeletesTheRest) {
  WriteFile(SpareName(3), 4096);
  WriteFile(SpareName(7), 4096);
  WriteFile(SpareName(9), 4096);
  WriteFile(SpareName(5), 10);  // shorter than a segment header
  WriteFile("not-a-spare", 4096);
  SparePool pool(Opts(), env_.get());
  pool.SetUp(*env_->GetChildren(kDir));
  // Two kept (recycle_segments), the short one and the third deleted.
  EXPECT_EQ(Spares(env_.get()).size(), 2u);
  EXPECT_TRUE(env_->FileExists(std::string(kDir) + "/not-a-spare"));
  EXPECT_FALSE(pool.NeedsOne());
  // New names come after the largest id seen, deleted ones included.
  EXPECT_EQ(pool.NewPath(), std::string(kDir) + "/" + SpareName(10));
  auto a = pool.Take();
  auto b = pool.Take();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_NE(a->path, b->path);
  EXPECT_FALSE(pool.Take().has_value());
  EXPECT_TRUE(pool.NeedsOne());
}

TEST_F(SparePoolTest, PreallocationOffAdoptsNothing) {
  WriteFile(SpareName(1), 4096);
  SparePool::Options o = Opts();
  o.preallocate = false;
  SparePool pool(o, env_.get());
  pool.SetUp(*env_->GetChildren(kDir));
  EXPECT_TRUE(Spares(env_.get()).empty());
  EXPECT_FALSE(pool.NeedsOne());
  EXPECT_FALSE(pool.Take().has_value());
  EXPECT_EQ(pool.RecycleName(), "");
}

TEST_F(SparePoolTest, PreparedSpareIsZeroFilledToThePageRoundedTarget) {
  SparePool::Options o = Opts();
  o.segment_target_size = 10000;
  SparePool pool(o, env_.get());
  pool.SetUp({});
  ASSERT_TRUE(pool.NeedsOne());
  ASSERT_TRUE(pool.PrepareOrGiveUp().ok());
  EXPECT_EQ(pool.counters().zero_filled, 1u);
  auto spare = pool.Take();
  ASSERT_TRUE(spare.has_value());
  EXPECT_EQ(spare->size, 12288u);
  EXPECT_EQ(*env_->GetFileSize(spare->path), 12288u);
}

TEST_F(SparePoolTest, FullDiskEndsPreallocationWithoutAnError) {
  FaultInjectionEnv fenv(env_.get());
  fenv.InjectError(kOpAppend, absl::ResourceExhaustedError("disk full"));
  SparePool pool(Opts(), &fenv);
  pool.SetUp({});
  EXPECT_TRUE(pool.PrepareOrGiveUp().ok());
  EXPECT_EQ(pool.counters().failures, 1u);
  EXPECT_EQ(pool.counters().zero_filled, 0u);
  EXPECT_TRUE(Spares(&fenv).empty());  // the half-written spare is deleted
  // Disabled for good: nothing is needed, handed out or recycled.
  EXPECT_FALSE(pool.NeedsOne());
  EXPECT_FALSE(pool.Take().has_value());
  EXPECT_EQ(pool.RecycleName(), "");
}

TEST_F(SparePoolTest, OtherWriteErrorIsReportedAndEndsPreallocation) {
  FaultInjectionEnv fenv(env_.get());
  fenv.InjectError(kOpSync, absl::DataLossError("EIO"));
  SparePool pool(Opts(), &fenv);
  pool.SetUp({});
  absl::Status s = pool.PrepareOrGiveUp();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(pool.counters().failures, 1u);
  EXPECT_FALSE(pool.NeedsOne());
}

TEST_F(SparePoolTest, RecyclingStopsOnceRecycleSegmentsSparesAreReady) {
  SparePool pool(Opts(), env_.get());
  pool.SetUp({});
  const std::string first = pool.RecycleName();
  ASSERT_NE(first, "");
  pool.AddRecycled(first, 4096);
  const std::string second = pool.RecycleName();
  ASSERT_NE(second, "");
  EXPECT_NE(first, second);
  pool.AddRecycled(second, 4096);
  EXPECT_EQ(pool.RecycleName(), "");  // two ready: the next one is deleted
  EXPECT_EQ(pool.counters().recycled, 2u);
  ASSERT_TRUE(pool.Take().has_value());
  EXPECT_NE(pool.RecycleName(), "");
}

TEST_F(SparePoolTest, AbsoluteConsistencyNeverRecycles) {
  SparePool::Options o = Opts();
  o.recycle_allowed = false;
  SparePool pool(o, env_.get());
  pool.SetUp({});
  EXPECT_EQ(pool.RecycleName(), "");
  EXPECT_TRUE(pool.NeedsOne());  // preallocation itself goes on
}

TEST_F(SparePoolTest, DisableHandsBackTheReadySparesForDeletion) {
  SparePool pool(Opts(), env_.get());
  pool.SetUp({});
  ASSERT_TRUE(pool.PrepareOrGiveUp().ok());
  std::deque<SparePool::Spare> rest = pool.DisableAndTakeAll();
  EXPECT_EQ(rest.size(), 1u);
  EXPECT_FALSE(pool.Take().has_value());
  EXPECT_FALSE(pool.NeedsOne());
}

TEST_F(SparePoolTest, SpareThreadPreparesOneOnceTheActiveSegmentIsAQuarterFull) {
  SparePool::Options o = Opts();
  o.background = true;
  SparePool pool(o, env_.get());
  pool.SetUp({});
  int errors = 0;
  pool.Start([&errors](const absl::Status&) { errors++; });
  pool.NoteActiveSize(o.segment_target_size / 4 - 1);  // not yet
  pool.NoteActiveSize(o.segment_target_size / 4);
  // Waits for the thread (no timing asserted: the test's timeout bounds it).
  while (pool.counters().zero_filled == 0) std::this_thread::yield();
  pool.Stop();
  EXPECT_EQ(pool.counters().zero_filled, 1u);
  EXPECT_EQ(errors, 0);
  EXPECT_TRUE(pool.Take().has_value());
  pool.Stop();  // idempotent
}

}  // namespace
}  // namespace segwal
