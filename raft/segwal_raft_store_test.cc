// SegwalRaftStore on MemEnv and FaultInjectionEnv: the raft log it rebuilds
// after truncations, snapshots and reopening; what is durable when; what it
// refuses.

#include "raft/segwal_raft_store.h"

#include <string>
#include <vector>

#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"

namespace segwal {
namespace raftstore {
namespace {

using ::segwal::testutil::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint16_t kCommand = 1;  // RAFT_COMMAND
constexpr uint16_t kChange = 3;   // RAFT_CHANGE

class SegwalRaftStoreTest : public ::testing::Test {
 protected:
  SegwalRaftStoreOptions Options() {
    SegwalRaftStoreOptions o;
    o.dir = "/raft";
    o.env = env_;
    o.wal.segment_target_size = 1024;  // many segments: truncation has work
    o.wal.background_sealing = false;
    o.wal.background_preallocation = false;
    return o;
  }
  std::unique_ptr<SegwalRaftStore> OpenStore() {
    absl::StatusOr<std::unique_ptr<SegwalRaftStore>> s =
        SegwalRaftStore::Open(Options());
    EXPECT_OK(s.status());
    return s.ok() ? std::move(*s) : nullptr;
  }
  LoadedRaftLog LoadOf(SegwalRaftStore* store) {
    absl::StatusOr<LoadedRaftLog> l = store->Load();
    EXPECT_OK(l.status());
    return l.ok() ? *l : LoadedRaftLog{};
  }
  // Appends `n` command entries of term `term` whose data names their index.
  void AppendN(SegwalRaftStore* store, int n, uint64_t term) {
    std::vector<std::string> data;
    for (int i = 0; i < n; ++i) {
      data.push_back(absl::StrCat("t", term, "-i", store->next_index() + i));
    }
    std::vector<RaftEntryView> views;
    for (const std::string& d : data) views.push_back({term, kCommand, d});
    ASSERT_OK(store->Append(views).status());
  }
  static std::vector<uint64_t> Indexes(const LoadedRaftLog& l) {
    std::vector<uint64_t> out;
    for (const RaftEntry& e : l.entries) out.push_back(e.index);
    return out;
  }
  static std::vector<uint64_t> Terms(const LoadedRaftLog& l) {
    std::vector<uint64_t> out;
    for (const RaftEntry& e : l.entries) out.push_back(e.term);
    return out;
  }
  static RaftSnapshot MakeSnapshot(uint64_t index, uint64_t term,
                                   std::string data) {
    RaftSnapshot s;
    s.index = index;
    s.term = term;
    s.configuration = {{1, "127.0.0.1:9001", 1}, {2, "127.0.0.1:9002", 0}};
    s.configuration_index = 1;
    s.data = std::move(data);
    return s;
  }

  std::unique_ptr<Env> mem_ = NewMemEnv();
  Env* env_ = mem_.get();
};

TEST_F(SegwalRaftStoreTest, FreshStoreLoadsAnEmptyLogAtIndexOne) {
  auto store = OpenStore();
  LoadedRaftLog l = LoadOf(store.get());
  EXPECT_EQ(l.term, 0u);
  EXPECT_EQ(l.voted_for, 0u);
  EXPECT_FALSE(l.snapshot.has_value());
  EXPECT_EQ(l.start_index, 1u);
  EXPECT_THAT(l.entries, IsEmpty());
}

TEST_F(SegwalRaftStoreTest, BootstrapWritesTermOneAndTheConfigurationEntry) {
  auto store = OpenStore();
  ASSERT_OK(store->Bootstrap(kChange, "conf"));
  LoadedRaftLog l = LoadOf(store.get());
  EXPECT_EQ(l.term, 1u);
  ASSERT_EQ(l.entries.size(), 1u);
  EXPECT_EQ(l.entries[0], (RaftEntry{1, 1, kChange, "conf"}));
  EXPECT_THAT(store->Bootstrap(kChange, "conf"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(SegwalRaftStoreTest, AppendTruncateAppendAgainLoadsTheNewSuffix) {
  auto store = OpenStore();
  ASSERT_OK(store->Bootstrap(kChange, "conf"));
  AppendN(store.get(), 9, 2);  // 2..10, term 2
  ASSERT_OK(store->Truncate(6));
  EXPECT_EQ(store->next_index(), 6u);
  AppendN(store.get(), 3, 3);  // 6..8, term 3
  ASSERT_OK(store->Truncate(8));
  AppendN(store.get(), 4, 4);  // 8..11, term 4
  ASSERT_OK(store->Sync());
  LoadedRaftLog l = LoadOf(store.get());
  EXPECT_EQ(l.start_index, 1u);
  EXPECT_THAT(Indexes(l), ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
  EXPECT_THAT(Terms(l), ElementsAre(1, 2, 2, 2, 2, 3, 3, 4, 4, 4, 4));
  EXPECT_EQ(l.entries[6].data, "t3-i7");
  EXPECT_EQ(l.entries[7].data, "t4-i8");
}

TEST_F(SegwalRaftStoreTest, LoadAfterReopenEqualsLoadBefore) {
  LoadedRaftLog before;
  {
    auto store = OpenStore();
    ASSERT_OK(store->Bootstrap(kChange, "conf"));
    ASSERT_OK(store->SetTerm(5));
    ASSERT_OK(store->SetVote(2));
    AppendN(store.get(), 40, 5);
    ASSERT_OK(store->Truncate(30));
    AppendN(store.get(), 5, 6);
    ASSERT_OK(store->Sync());
    before = LoadOf(store.get());
  }
  auto store = OpenStore();
  LoadedRaftLog after = LoadOf(store.get());
  EXPECT_EQ(after.term, 5u);
  EXPECT_EQ(after.voted_for, 2u);
  EXPECT_EQ(after.start_index, before.start_index);
  EXPECT_EQ(after.entries, before.entries);
  EXPECT_EQ(store->next_index(), 35u);
}

// canonical/raft 0.15's raft_uv loses committed entries whose size is not a
// multiple of 8 at restart (upstream issue #304, fixed by #305 in 0.16). The
// store frames each entry as one WAL record: any size comes back.
TEST_F(SegwalRaftStoreTest, OddSizedEntriesSurviveReopen) {
  const std::vector<size_t> sizes = {1, 3, 7, 13, 0, 8, 9, 15, 17, 4095, 4097};
  testutil::Random rnd(304);
  std::vector<std::string> data;
  {
    auto store = OpenStore();
    ASSERT_OK(store->Bootstrap(kChange, "c"));
    for (size_t size : sizes) {
      data.push_back(rnd.RandomBytes(size));
      RaftEntryView v{1, kCommand, data.back()};
      ASSERT_OK(store->Append({&v, 1}).status());
    }
    ASSERT_OK(store->Sync());
  }
  auto store = OpenStore();
  LoadedRaftLog l = LoadOf(store.get());
  ASSERT_EQ(l.entries.size(), sizes.size() + 1);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(l.entries[i + 1].data, data[i]) << "size " << sizes[i];
    EXPECT_EQ(l.entries[i + 1].index, i + 2);
  }
}

TEST_F(SegwalRaftStoreTest, InstalledSnapshotReplacesTheWholeLog) {
  {
    auto store = OpenStore();
    ASSERT_OK(store->Bootstrap(kChange, "conf"));
    AppendN(store.get(), 20, 2);
    ASSERT_OK(store->PutSnapshot(MakeSnapshot(100, 7, "state@100"), 0));
    EXPECT_EQ(store->next_index(), 101u);
    AppendN(store.get(), 3, 7);  // 101..103
    ASSERT_OK(store->Sync());
  }
  auto store = OpenStore();
  LoadedRaftLog l = LoadOf(store.get());
  ASSERT_TRUE(l.snapshot.has_value());
  EXPECT_EQ(l.snapshot->index, 100u);
  EXPECT_EQ(l.snapshot->term, 7u);
  EXPECT_EQ(l.snapshot->data, "state@100");
  EXPECT_EQ(l.snapshot->configuration, MakeSnapshot(1, 1, "").configuration);
  EXPECT_EQ(l.snapshot->configuration_index, 1u);
  EXPECT_EQ(l.start_index, 101u);
  EXPECT_THAT(Indexes(l), ElementsAre(101, 102, 103));
}

TEST_F(SegwalRaftStoreTest, SnapshotWithTrailingKeepsTrailingEntriesAndFreesSegments) {
  auto store = OpenStore();
  ASSERT_OK(store->Bootstrap(kChange, "conf"));
  ASSERT_OK(store->SetTerm(2));
  ASSERT_OK(store->SetVote(1));  // its record is far behind the snapshot
  AppendN(store.get(), 199, 2);  // 2..200, ~40 bytes a record: many segments
  ASSERT_OK(store->Sync());
  const uint64_t segments_before = store->wal()->GetStats().segments_on_disk;
  ASSERT_OK(store->PutSnapshot(MakeSnapshot(150, 2, "state@150"), 10));
  EXPECT_LT(store->wal()->GetStats().segments_on_disk, segments_before);
  EXPECT_EQ(store->next_index(), 201u);
  AppendN(store.get(), 2, 2);  // 201, 202
  ASSERT_OK(store->Sync());
  for (int reopen = 0; reopen < 2; ++reopen) {
    LoadedRaftLog l = LoadOf(store.get());
    ASSERT_TRUE(l.snapshot.has_value());
    EXPECT_EQ(l.snapshot->index, 150u);
    EXPECT_EQ(l.start_index, 141u);
    EXPECT_EQ(l.entries.front().index, 141u);
    EXPECT_EQ(l.entries.back().index, 202u);
    EXPECT_EQ(l.entries.front().data, "t2-i141");
    EXPECT_EQ(l.term, 2u);
    EXPECT_EQ(l.voted_for, 1u);
    store.reset();
    store = OpenStore();
  }
}

TEST_F(SegwalRaftStoreTest, ASecondSnapshotRemovesTheFirstFile) {
  auto store = OpenStore();
  ASSERT_OK(store->Bootstrap(kChange, "conf"));
  AppendN(store.get(), 30, 1);
  ASSERT_OK(store->PutSnapshot(MakeSnapshot(10, 1, "s10"), 5));
  ASSERT_OK(store->PutSnapshot(MakeSnapshot(20, 1, "s20"), 5));
  auto children = env_->GetChildren("/raft/snapshots");
  ASSERT_OK(children.status());
  EXPECT_EQ(children->size(), 1u);
  auto snapshot = store->GetSnapshot();
  ASSERT_OK(snapshot.status());
  ASSERT_TRUE(snapshot->has_value());
  EXPECT_EQ((*snapshot)->data, "s20");
}

TEST_F(SegwalRaftStoreTest, TruncateAtOrBelowTheSnapshotResumesAfterIt) {
  auto store = OpenStore();
  ASSERT_OK(store->PutSnapshot(MakeSnapshot(50, 3, "s"), 0));
  AppendN(store.get(), 5, 3);  // 51..55
  ASSERT_OK(store->Truncate(1));
  EXPECT_EQ(store->next_index(), 51u);
  AppendN(store.get(), 1, 4);
  ASSERT_OK(store->Sync());
  store.reset();
  store = OpenStore();
  LoadedRaftLog l = LoadOf(store.get());
  EXPECT_EQ(l.start_index, 51u);
  EXPECT_THAT(Indexes(l), ElementsAre(51));
  EXPECT_THAT(Terms(l), ElementsAre(4));
}

TEST_F(SegwalRaftStoreTest, OpenRefusesRecoveryModesThatDropAcknowledgedRecords) {
  for (RecoveryMode mode : {RecoveryMode::kPointInTimeRecovery,
                            RecoveryMode::kSkipAnyCorruptedRecords}) {
    SegwalRaftStoreOptions o = Options();
    o.wal.recovery_mode = mode;
    EXPECT_THAT(SegwalRaftStore::Open(o).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("acknowledged votes or entries")));
  }
  SegwalRaftStoreOptions o = Options();
  o.wal.recovery_mode = RecoveryMode::kAbsoluteConsistency;
  EXPECT_OK(SegwalRaftStore::Open(o).status());
}

TEST_F(SegwalRaftStoreTest, MissingSnapshotFileFailsOpenWithDataLoss) {
  {
    auto store = OpenStore();
    ASSERT_OK(store->PutSnapshot(MakeSnapshot(9, 1, "s"), 0));
  }
  auto children = env_->GetChildren("/raft/snapshots");
  ASSERT_OK(children.status());
  ASSERT_EQ(children->size(), 1u);
  ASSERT_OK(env_->DeleteFile("/raft/snapshots/" + (*children)[0]));
  EXPECT_THAT(SegwalRaftStore::Open(Options()).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("is missing")));
}

TEST_F(SegwalRaftStoreTest, CorruptSnapshotFileIsDataLossAtLoad) {
  {
    auto store = OpenStore();
    ASSERT_OK(store->PutSnapshot(MakeSnapshot(9, 1, "snapshot bytes"), 0));
  }
  const std::string path = "/raft/snapshots/" + (*env_->GetChildren("/raft/snapshots"))[0];
  std::string bytes(*env_->GetFileSize(path), '\0');
  {
    auto f = env_->NewSequentialFile(path);
    absl::string_view got;
    ASSERT_OK((*f)->Read(bytes.size(), &got, bytes.data()));
    bytes.assign(got.data(), got.size());
  }
  bytes[bytes.size() / 2] ^= 1;
  {
    auto w = env_->NewWritableFile(path);
    ASSERT_OK((*w)->Append(bytes));
    ASSERT_OK((*w)->Close());
  }
  auto store = OpenStore();
  EXPECT_THAT(store->Load().status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST_F(SegwalRaftStoreTest, LeftoverTemporaryAndOrphanSnapshotFilesAreRemovedAtOpen) {
  ASSERT_OK(env_->CreateDirIfMissing("/raft"));
  ASSERT_OK(env_->CreateDirIfMissing("/raft/snapshots"));
  for (const char* name : {"snapshot-00000000000000000007.snap",
                           "snapshot-00000000000000000009.snap.tmp"}) {
    auto w = env_->NewWritableFile(std::string("/raft/snapshots/") + name);
    ASSERT_OK((*w)->Append("x"));
    ASSERT_OK((*w)->Close());
  }
  auto store = OpenStore();
  auto children = env_->GetChildren("/raft/snapshots");
  ASSERT_OK(children.status());
  EXPECT_THAT(*children, IsEmpty());
}

TEST_F(SegwalRaftStoreTest, TermAndVoteAreDurableOnReturn) {
  FaultInjectionEnv fi(env_);
  SegwalRaftStoreOptions o = Options();
  o.env = &fi;
  {
    auto store = SegwalRaftStore::Open(o);
    ASSERT_OK(store.status());
    ASSERT_OK((*store)->SetTerm(3));
    ASSERT_OK((*store)->SetVote(2));
    // The process dies here: nothing after this point reaches the disk.
    fi.SetFilesystemActive(false);
  }
  ASSERT_OK(fi.SimulateCrash(CrashMode::kDropUnsynced, 1));
  auto store = SegwalRaftStore::Open(o);
  ASSERT_OK(store.status());
  EXPECT_EQ((*store)->term(), 3u);
  EXPECT_EQ((*store)->voted_for(), 2u);
}

// A power cut (FaultInjectionEnv) removes every directory whose creation was
// never synced into its parent, with everything in it. Open creates the store
// directory (right under "/", or several missing levels deep) and snapshots/,
// syncing each new level's parent first, so what was durable on return stays.
TEST_F(SegwalRaftStoreTest,
       StoreInAFreshDirectoryKeepsTermVoteEntriesAndSnapshot) {
  for (const std::string dir : {"/raft", "/srv/raft/node1"}) {
    SCOPED_TRACE(dir);
    std::unique_ptr<Env> mem = NewMemEnv();
    FaultInjectionEnv fi(mem.get());
    SegwalRaftStoreOptions o = Options();
    o.dir = dir;
    o.env = &fi;
    {
      auto store = SegwalRaftStore::Open(o);
      ASSERT_OK(store.status());
      ASSERT_OK((*store)->Bootstrap(kChange, "conf"));
      AppendN(store->get(), 4, 1);  // 2..5
      ASSERT_OK((*store)->PutSnapshot(MakeSnapshot(3, 1, "state@3"), 2));
      ASSERT_OK((*store)->SetTerm(3));
      ASSERT_OK((*store)->SetVote(2));
      fi.SetFilesystemActive(false);  // the process dies here
    }
    ASSERT_OK(fi.SimulateCrash(CrashMode::kDropUnsynced, 1));
    auto store = SegwalRaftStore::Open(o);
    ASSERT_OK(store.status());
    EXPECT_EQ((*store)->term(), 3u);
    EXPECT_EQ((*store)->voted_for(), 2u);
    LoadedRaftLog l = LoadOf(store->get());
    ASSERT_TRUE(l.snapshot.has_value());
    EXPECT_EQ(l.snapshot->index, 3u);
    EXPECT_EQ(l.snapshot->data, "state@3");
    EXPECT_EQ((*store)->next_index(), 6u);
  }
}

TEST_F(SegwalRaftStoreTest, SetTermResetsTheVote) {
  auto store = OpenStore();
  ASSERT_OK(store->SetTerm(3));
  ASSERT_OK(store->SetVote(2));
  ASSERT_OK(store->SetTerm(4));
  EXPECT_EQ(store->voted_for(), 0u);
  EXPECT_EQ(LoadOf(store.get()).voted_for, 0u);
}

TEST_F(SegwalRaftStoreTest, AppendedEntriesAreLostByAPowerCutUntilSynced) {
  FaultInjectionEnv fi(env_);
  SegwalRaftStoreOptions o = Options();
  o.env = &fi;
  {
    auto store = SegwalRaftStore::Open(o);
    ASSERT_OK(store.status());
    ASSERT_OK((*store)->Bootstrap(kChange, "conf"));
    AppendN(store->get(), 3, 1);  // 2..4
    ASSERT_OK((*store)->Sync());
    AppendN(store->get(), 3, 1);  // 5..7, never synced
    fi.SetFilesystemActive(false);
  }
  ASSERT_OK(fi.SimulateCrash(CrashMode::kDropUnsynced, 1));
  auto store = SegwalRaftStore::Open(o);
  ASSERT_OK(store.status());
  EXPECT_THAT(Indexes(LoadOf(store->get())), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ((*store)->next_index(), 5u);
}

TEST_F(SegwalRaftStoreTest, PoisonedWalFailsEveryLaterCall) {
  FaultInjectionEnv fi(env_);
  SegwalRaftStoreOptions o = Options();
  o.env = &fi;
  auto store = SegwalRaftStore::Open(o);
  ASSERT_OK(store.status());
  ASSERT_OK((*store)->Bootstrap(kChange, "conf"));
  fi.InjectError(kOpSync, absl::DataLossError("injected sync failure"));
  EXPECT_THAT((*store)->SetTerm(2), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ((*store)->term(), 1u);  // never claimed
  RaftEntryView v{1, kCommand, "x"};
  EXPECT_FALSE((*store)->Append({&v, 1}).ok());
  EXPECT_FALSE((*store)->Truncate(1).ok());
  EXPECT_FALSE((*store)->SetVote(1).ok());
  EXPECT_FALSE((*store)->PutSnapshot(MakeSnapshot(1, 1, "s"), 0).ok());
  EXPECT_FALSE((*store)->poisoned_status().ok());
}

}  // namespace
}  // namespace raftstore
}  // namespace segwal
