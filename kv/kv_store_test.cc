// KvStore behaviour on MemEnv and FaultInjectionEnv: writes and reads,
// durability of answers, checkpoints and the log behind them, recovery and
// what it refuses.

#include "kv/kv_store.h"

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gtest/gtest.h"
#include "kv/checkpoint_file.h"
#include "kv/record_codec.h"
#include "testutil/testutil.h"

namespace segwal {
namespace kv {
namespace {

using ::segwal::testutil::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;

class KvStoreTest : public ::testing::Test {
 protected:
  KvStoreOptions Options() {
    KvStoreOptions o;
    o.dir = "/db";
    o.env = env_;
    o.checkpoint_every_bytes = 0;
    o.wal.segment_target_size = 4096;  // many segments: truncation has work
    o.wal.background_sealing = false;
    o.wal.background_preallocation = false;
    return o;
  }
  std::unique_ptr<KvStore> OpenStore() {
    absl::StatusOr<std::unique_ptr<KvStore>> s = KvStore::Open(Options());
    EXPECT_OK(s.status());
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::optional<std::string> Get(KvStore* s, absl::string_view key) {
    absl::StatusOr<std::optional<std::string>> v = s->Get(key);
    EXPECT_OK(v.status());
    return v.ok() ? *v : std::nullopt;
  }
  std::vector<std::string> CheckpointFiles() {
    std::vector<std::string> out;
    absl::StatusOr<std::vector<std::string>> children =
        env_->GetChildren("/db/checkpoints");
    EXPECT_OK(children.status());
    if (!children.ok()) return out;
    for (const std::string& n : *children) {
      uint64_t lsn;
      if (ParseCheckpointFileName(n, &lsn)) out.push_back(n);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  void Corrupt(const std::string& path) {
    auto f = env_->NewSequentialFile(path);
    std::string data(*env_->GetFileSize(path), '\0');
    absl::string_view got;
    ASSERT_OK((*f)->Read(data.size(), &got, data.data()));
    std::string bad(got);
    bad[bad.size() / 2] ^= 1;
    auto w = env_->NewWritableFile(path);
    ASSERT_OK((*w)->Append(bad));
    ASSERT_OK((*w)->Close());
  }

  std::unique_ptr<Env> mem_ = NewMemEnv();
  Env* env_ = mem_.get();
};

TEST_F(KvStoreTest, WritesSurviveReopen) {
  {
    auto s = OpenStore();
    ASSERT_OK(s->Set("a", "1"));
    ASSERT_OK(s->Set("b", "2"));
    ASSERT_OK(s->Set("a", "3"));
    EXPECT_THAT(s->Del({"b", "nope"}), testutil::IsOkAndHolds(1));
    EXPECT_THAT(s->IncrBy("n", 5), testutil::IsOkAndHolds(5));
    EXPECT_THAT(s->IncrBy("n", -7), testutil::IsOkAndHolds(-2));
  }
  auto s = OpenStore();
  EXPECT_THAT(Get(s.get(), "a"), Optional(std::string("3")));
  EXPECT_EQ(Get(s.get(), "b"), std::nullopt);
  EXPECT_THAT(Get(s.get(), "n"), Optional(std::string("-2")));
  EXPECT_EQ(s->recovery_report().log_records_replayed, 6u);
  EXPECT_EQ(s->DbSize().integer, 2);
}

TEST_F(KvStoreTest, MSetIsOneRecordAppliedWhole) {
  auto s = OpenStore();
  const uint64_t before = s->wal().next_lsn();
  Mutation m{KvOp::kMSet, {"x", "y", "z"}, {"1", "2", "3"}, 0};
  ASSERT_OK(s->Write(m).status());
  EXPECT_EQ(s->wal().next_lsn(), before + 1);
  ReadResult r = s->MultiLookup({"x", "y", "z", "w"});
  EXPECT_THAT(r.values, ElementsAre(Optional(std::string("1")),
                                    Optional(std::string("2")),
                                    Optional(std::string("3")), std::nullopt));
}

TEST_F(KvStoreTest, IncrOfANonIntegerOrAnOverflowWritesNothing) {
  auto s = OpenStore();
  ASSERT_OK(s->Set("text", "12a"));
  ASSERT_OK(s->Set("big", "9223372036854775807"));
  ASSERT_OK(s->Set("zeros", "007"));
  const uint64_t before = s->wal().next_lsn();
  EXPECT_THAT(s->IncrBy("text", 1).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not an integer")));
  EXPECT_THAT(s->IncrBy("zeros", 1).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(s->IncrBy("big", 1).status(),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("overflow")));
  EXPECT_EQ(s->wal().next_lsn(), before);
  EXPECT_THAT(Get(s.get(), "big"), Optional(std::string("9223372036854775807")));
}

TEST_F(KvStoreTest, OversizedKeyOrValueIsRefusedAndWritesNothing) {
  KvStoreOptions o = Options();
  o.max_key_size = 8;
  o.max_value_size = 16;
  auto s = *KvStore::Open(o);
  EXPECT_THAT(s->Set("123456789", "v"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_key_size")));
  EXPECT_THAT(s->Set("k", std::string(17, 'v')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_value_size")));
  Mutation bad{KvOp::kMSet, {"a", "b"}, {"1"}, 0};
  EXPECT_THAT(s->Write(bad).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(s->wal().next_lsn(), 1u);
}

TEST_F(KvStoreTest, ReadsSayWhichRecordTheyDependOn) {
  auto s = OpenStore();
  ASSERT_OK_AND_ASSIGN(WriteResult w, s->Submit({KvOp::kSet, {"k"}, {"v"}, 0}));
  ReadResult r = s->Lookup("k");
  EXPECT_THAT(r.values, ElementsAre(Optional(std::string("v"))));
  EXPECT_EQ(r.depends_on_lsn, w.lsn);
  EXPECT_LT(s->durable_lsn(), w.lsn);  // applied, not yet durable
  ASSERT_OK_AND_ASSIGN(WriteResult d, s->Submit({KvOp::kDel, {"other"}, {}, 0}));
  EXPECT_EQ(s->Lookup("missing").depends_on_lsn, d.lsn);
  EXPECT_EQ(s->Exists({"k", "missing"}).integer, 1);
  // Get waits for the record it read.
  EXPECT_THAT(Get(s.get(), "k"), Optional(std::string("v")));
  EXPECT_GE(s->durable_lsn(), w.lsn);
}

TEST_F(KvStoreTest, KeysMatchesGlobInKeyOrder) {
  auto s = OpenStore();
  for (const char* k : {"user:2", "user:1", "item:1", "user:10"}) ASSERT_OK(s->Set(k, "v"));
  EXPECT_THAT(s->Keys("user:*").keys, ElementsAre("user:1", "user:10", "user:2"));
  EXPECT_THAT(s->Keys("user:?").keys, ElementsAre("user:1", "user:2"));
  EXPECT_THAT(s->Keys("nothing*").keys, IsEmpty());
}

TEST_F(KvStoreTest, FlushAllEmptiesTheStoreDurably) {
  {
    auto s = OpenStore();
    ASSERT_OK(s->Set("a", "1"));
    ASSERT_OK(s->Write({KvOp::kFlushAll, {}, {}, 0}).status());
    EXPECT_EQ(s->DbSize().integer, 0);
    ASSERT_OK(s->Set("b", "2"));
  }
  auto s = OpenStore();
  EXPECT_EQ(Get(s.get(), "a"), std::nullopt);
  EXPECT_THAT(s->Keys("*").keys, ElementsAre("b"));
}

TEST_F(KvStoreTest, CheckpointTruncatesTheLogBehindThePreviousOne) {
  auto s = OpenStore();
  std::string value(200, 'v');
  for (int i = 0; i < 100; ++i) ASSERT_OK(s->Set(absl::StrCat("k", i), value));
  ASSERT_OK_AND_ASSIGN(CheckpointInfo c1, s->Checkpoint());
  EXPECT_EQ(c1.lsn, 100u);
  EXPECT_EQ(c1.keys, 100u);
  EXPECT_EQ(c1.log_segments_deleted, 0u);  // no previous checkpoint: log kept
  for (int i = 0; i < 100; ++i) ASSERT_OK(s->Set(absl::StrCat("k", i), "w"));
  ASSERT_OK_AND_ASSIGN(CheckpointInfo c2, s->Checkpoint());
  EXPECT_EQ(c2.lsn, 200u);
  EXPECT_GT(c2.log_segments_deleted, 0u);
  EXPECT_LE(s->wal().recovery_report().first_lsn, 1u);  // (Open's view)
  ASSERT_OK_AND_ASSIGN(auto segments, s->wal().ListSegments());
  EXPECT_LE(segments.front().first_lsn, c1.lsn + 1);
  EXPECT_GT(segments.front().first_lsn, 1u);
  for (int i = 0; i < 10; ++i) ASSERT_OK(s->Set(absl::StrCat("k", i), "x"));
  ASSERT_OK_AND_ASSIGN(CheckpointInfo c3, s->Checkpoint());
  EXPECT_THAT(CheckpointFiles(),
              ElementsAre(CheckpointFileName(c2.lsn), CheckpointFileName(c3.lsn)));
  s.reset();
  s = OpenStore();
  EXPECT_EQ(s->recovery_report().checkpoint_lsn, c3.lsn);
  EXPECT_EQ(s->recovery_report().log_records_replayed, 0u);
  EXPECT_THAT(Get(s.get(), "k0"), Optional(std::string("x")));
  EXPECT_THAT(Get(s.get(), "k50"), Optional(std::string("w")));
}

TEST_F(KvStoreTest, CheckpointWithNothingNewReturnsTheSameOne) {
  auto s = OpenStore();
  ASSERT_OK(s->Set("a", "1"));
  ASSERT_OK_AND_ASSIGN(CheckpointInfo c1, s->Checkpoint());
  ASSERT_OK_AND_ASSIGN(CheckpointInfo c2, s->Checkpoint());
  EXPECT_EQ(c1.lsn, c2.lsn);
  EXPECT_EQ(CheckpointFiles().size(), 1u);
}

TEST_F(KvStoreTest, CorruptNewestCheckpointFallsBackToThePreviousOne) {
  uint64_t newest;
  {
    auto s = OpenStore();
    for (int i = 0; i < 50; ++i) ASSERT_OK(s->Set(absl::StrCat("k", i), "old"));
    ASSERT_OK(s->Checkpoint().status());
    for (int i = 0; i < 50; ++i) ASSERT_OK(s->Set(absl::StrCat("k", i), "new"));
    ASSERT_OK_AND_ASSIGN(CheckpointInfo c, s->Checkpoint());
    newest = c.lsn;
    ASSERT_OK(s->Set("after", "1"));
  }
  const std::string path = "/db/checkpoints/" + CheckpointFileName(newest);
  Corrupt(path);
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->recovery_report().checkpoint_lsn, 50u);
  ASSERT_EQ(s->recovery_report().rejected_checkpoints.size(), 1u);
  EXPECT_THAT(s->recovery_report().rejected_checkpoints[0], HasSubstr(path));
  EXPECT_THAT(Get(s.get(), "k3"), Optional(std::string("new")));
  EXPECT_THAT(Get(s.get(), "after"), Optional(std::string("1")));
  EXPECT_TRUE(env_->FileExists(path));  // kept for inspection
}

TEST_F(KvStoreTest, NoUsableCheckpointAndTruncatedLogIsDataLossAndDeletesNothing) {
  std::vector<std::string> files;
  {
    auto s = OpenStore();
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 50; ++i) ASSERT_OK(s->Set(absl::StrCat("k", i), "v"));
      ASSERT_OK(s->Checkpoint().status());
    }
    files = CheckpointFiles();
  }
  ASSERT_EQ(files.size(), 2u);
  for (const std::string& f : files) Corrupt("/db/checkpoints/" + f);
  const auto before = *env_->GetChildren("/db/wal");
  absl::StatusOr<std::unique_ptr<KvStore>> s = KvStore::Open(Options());
  EXPECT_THAT(s.status(), StatusIs(absl::StatusCode::kDataLoss,
                                   HasSubstr("/db/checkpoints/" + files[1])));
  EXPECT_THAT(s.status().message(), HasSubstr("starts at LSN"));
  EXPECT_EQ(*env_->GetChildren("/db/wal"), before);
  EXPECT_EQ(CheckpointFiles(), files);
}

TEST_F(KvStoreTest, UnknownRecordTypeInTheLogFailsOpenNamingTheLsn) {
  { auto s = OpenStore(); ASSERT_OK(s->Set("a", "1")); }
  {
    SegmentedWalOptions w;
    w.wal_dir = "/db/wal";
    w.env = env_;
    auto wal = *SegmentedWal::Open(w);
    ASSERT_OK(wal->Append(77, 0, 0, 0, "x").status());
    ASSERT_OK(wal->Sync());
  }
  EXPECT_THAT(KvStore::Open(Options()).status(),
              StatusIs(absl::StatusCode::kDataLoss,
                       testing::AllOf(HasSubstr("LSN 2"), HasSubstr("type 77"))));
}

TEST_F(KvStoreTest, LogEndingBeforeTheCheckpointIsDataLoss) {
  {
    auto s = OpenStore();
    ASSERT_OK(s->Set("a", "1"));
    ASSERT_OK(s->Checkpoint().status());
  }
  // A checkpoint from the future: its LSN is past the log's end.
  KvMap map;
  ASSERT_OK(WriteCheckpoint(env_, "/db/checkpoints", 500, map).status());
  EXPECT_THAT(KvStore::Open(Options()).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("ends at LSN 1")));
}

TEST_F(KvStoreTest, LeftoverTemporaryCheckpointIsIgnoredAndRemoved) {
  { auto s = OpenStore(); ASSERT_OK(s->Set("a", "1")); }
  const std::string tmp = "/db/checkpoints/" + CheckpointFileName(1) + ".tmp";
  auto f = env_->NewWritableFile(tmp);
  ASSERT_OK((*f)->Append("half a checkpoint"));
  ASSERT_OK((*f)->Close());
  auto s = OpenStore();
  EXPECT_THAT(Get(s.get(), "a"), Optional(std::string("1")));
  EXPECT_FALSE(env_->FileExists(tmp));
}

TEST_F(KvStoreTest, BackgroundCheckpointLetsWritesGoOn) {
  auto s = OpenStore();
  for (int i = 0; i < 2000; ++i) ASSERT_OK(s->Set(absl::StrCat("k", i), "v"));
  ASSERT_OK(s->StartBackgroundCheckpoint());
  EXPECT_THAT(s->StartBackgroundCheckpoint(),
              testing::AnyOf(testutil::IsOk(),
                             StatusIs(absl::StatusCode::kFailedPrecondition)));
  for (int i = 0; i < 100; ++i) ASSERT_OK(s->Set(absl::StrCat("w", i), "v"));
  s->WaitForBackgroundCheckpoint();
  KvStats st = s->GetStats();
  EXPECT_GE(st.checkpoints, 1u);
  ASSERT_TRUE(st.last_checkpoint.has_value());
  EXPECT_OK(st.last_checkpoint_status);
  EXPECT_LE(st.last_checkpoint->pause_micros, st.last_checkpoint->total_micros);
}

TEST_F(KvStoreTest, BackgroundCheckpointHoldsTheStateAtItsLsnWhileWritesGoOn) {
  auto s = OpenStore();
  std::map<std::string, std::string> model;
  for (int i = 0; i < 20000; ++i) {
    const std::string k = absl::StrCat("k", i);
    ASSERT_OK(s->Submit({KvOp::kSet, {k}, {"initial"}, 0}).status());
    model[k] = "initial";
  }
  ASSERT_OK(s->WaitDurable(s->last_applied_lsn()));
  // A writer changes keys all over the key space (ahead of and behind the
  // copy's position), deletes, and flushes once, recording each LSN.
  std::vector<std::pair<uint64_t, Mutation>> log;
  std::vector<std::string> keys, values;
  keys.reserve(200000);
  values.reserve(200000);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    testutil::Random rnd(7);
    for (int i = 0; !stop.load() && i < 200000; ++i) {
      keys.push_back(absl::StrCat("k", rnd.Uniform(30000)));
      values.push_back(absl::StrCat("v", i));
      Mutation m{rnd.OneIn(5) ? KvOp::kDel : KvOp::kSet, {keys.back()}, {}, 0};
      if (m.op == KvOp::kSet) m.values = {values.back()};
      if (i == 5000) m = {KvOp::kFlushAll, {}, {}, 0};
      absl::StatusOr<WriteResult> w = s->Submit(m);
      ASSERT_OK(w.status());
      log.emplace_back(w->lsn, m);
    }
  });
  while (s->last_applied_lsn() < 20100) std::this_thread::yield();
  ASSERT_OK(s->StartBackgroundCheckpoint());
  s->WaitForBackgroundCheckpoint();
  stop = true;
  writer.join();
  KvStats st = s->GetStats();
  ASSERT_OK(st.last_checkpoint_status);
  const uint64_t lsn = st.last_checkpoint->lsn;
  for (const auto& [at, m] : log) {
    if (at > lsn) break;
    if (m.op == KvOp::kFlushAll) model.clear();
    else if (m.op == KvOp::kDel) model.erase(std::string(m.keys[0]));
    else model[std::string(m.keys[0])] = std::string(m.values[0]);
  }
  KvMap loaded;
  ASSERT_OK(LoadCheckpoint(env_, st.last_checkpoint->path, &loaded).status());
  ASSERT_EQ(loaded.size(), model.size()) << "checkpoint at LSN " << lsn;
  for (const auto& [k, v] : model) {
    ASSERT_TRUE(loaded.contains(k)) << k;
    ASSERT_EQ(*loaded[k].value, v) << k;
  }
}

TEST_F(KvStoreTest, CheckpointsStartThemselvesEveryNBytes) {
  KvStoreOptions o = Options();
  o.checkpoint_every_bytes = 10000;
  {
    auto s = *KvStore::Open(o);
    // Each round appends more than checkpoint_every_bytes; the thread it
    // starts may not run before the round ends, so wait for it.
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 100; ++i) {
        ASSERT_OK(s->Set(absl::StrCat("k", round * 100 + i), std::string(100, 'v')));
      }
      s->WaitForBackgroundCheckpoint();
    }
    EXPECT_GE(s->GetStats().checkpoints, 3u);
  }
  auto s = *KvStore::Open(o);
  EXPECT_GT(s->recovery_report().checkpoint_lsn, 0u);
  EXPECT_EQ(s->DbSize().integer, 300);
}

TEST_F(KvStoreTest, ConcurrentWritersShareSyncsAndLoseNothing) {
  auto s = OpenStore();
  constexpr int kThreads = 8, kEach = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_OK(s->Set(absl::StrCat("t", t, ":", i), "v"));
        ASSERT_OK(s->IncrBy("counter", 1).status());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_THAT(Get(s.get(), "counter"), Optional(std::to_string(kThreads * kEach)));
  s.reset();
  s = OpenStore();
  EXPECT_EQ(s->DbSize().integer, kThreads * kEach + 1);
  EXPECT_THAT(Get(s.get(), "counter"), Optional(std::to_string(kThreads * kEach)));
}

class PoisonedKvStoreTest : public KvStoreTest {
 protected:
  PoisonedKvStoreTest() { env_ = &fi_; }
  FaultInjectionEnv fi_{mem_.get()};
};

TEST_F(PoisonedKvStoreTest, FailedSyncFailsWritesAndKeepsDurableReads) {
  auto s = OpenStore();
  ASSERT_OK(s->Set("durable", "1"));
  fi_.InjectError(kOpSync, absl::DataLossError("injected sync failure"), "/db/wal");
  EXPECT_THAT(s->Set("lost", "2"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("injected")));
  fi_.ClearInjectedErrors();
  // Poisoned: later writes fail with the first error, even with a healthy disk.
  EXPECT_THAT(s->Set("later", "3"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_FALSE(s->GetStats().poisoned.ok());
  EXPECT_THAT(Get(s.get(), "durable"), Optional(std::string("1")));
  // A read of the write that was never acknowledged cannot be answered.
  EXPECT_THAT(s->Get("lost").status(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(s->Checkpoint().status(), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(PoisonedKvStoreTest, FailedCheckpointWriteKeepsTheStoreWorking) {
  auto s = OpenStore();
  ASSERT_OK(s->Set("a", "1"));
  fi_.InjectError(kOpSync, absl::UnavailableError("injected"), "/db/checkpoints");
  EXPECT_THAT(s->Checkpoint().status(), StatusIs(absl::StatusCode::kUnavailable,
                                                 HasSubstr("checkpoint")));
  EXPECT_THAT(CheckpointFiles(), IsEmpty());
  ASSERT_OK(s->Set("b", "2"));
  ASSERT_OK(s->Checkpoint().status());
  s.reset();
  s = OpenStore();
  EXPECT_EQ(s->DbSize().integer, 2);
}

// A power cut (FaultInjectionEnv) removes every directory whose creation was
// never synced into its parent, with everything in it. Open creates the data
// directory (right under "/", several missing levels deep, or relative) and
// checkpoints/, and syncs each new level's parent before writing in it, so an
// acknowledged write and a checkpoint survive the first power cut.
TEST(KvStorePowerCutTest, StoreInAFreshDirectoryKeepsAcknowledgedWrites) {
  for (const std::string dir : {"/db", "/data/stores/db", "db"}) {
    SCOPED_TRACE(dir);
    std::unique_ptr<Env> mem = NewMemEnv();
    FaultInjectionEnv fi(mem.get());
    KvStoreOptions o;
    o.dir = dir;
    o.env = &fi;
    o.checkpoint_every_bytes = 0;
    o.wal.background_sealing = false;
    o.wal.background_preallocation = false;
    {
      absl::StatusOr<std::unique_ptr<KvStore>> s = KvStore::Open(o);
      ASSERT_OK(s.status());
      ASSERT_OK((*s)->Set("in-checkpoint", "1"));
      ASSERT_OK((*s)->Checkpoint().status());
      ASSERT_OK((*s)->Set("in-log", "2"));
      fi.SetFilesystemActive(false);  // the process dies here
    }
    ASSERT_OK(fi.SimulateCrash(CrashMode::kDropUnsynced, 1));
    absl::StatusOr<std::unique_ptr<KvStore>> s = KvStore::Open(o);
    ASSERT_OK(s.status());
    EXPECT_GT((*s)->recovery_report().checkpoint_lsn, 0u);
    EXPECT_THAT((*s)->Get("in-checkpoint"),
                testutil::IsOkAndHolds(Optional(std::string("1"))));
    EXPECT_THAT((*s)->Get("in-log"),
                testutil::IsOkAndHolds(Optional(std::string("2"))));
  }
}

}  // namespace
}  // namespace kv
}  // namespace segwal
