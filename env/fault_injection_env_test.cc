#include "env/fault_injection_env.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "env/env.h"
#include "env/env_wrapper.h"
#include "env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"

namespace segwal {
namespace {

using ::segwal::testutil::IsOk;
using ::segwal::testutil::IsOkAndHolds;
using ::segwal::testutil::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

enum class BaseKind { kMem, kPosix };

std::string BaseKindName(const ::testing::TestParamInfo<BaseKind>& info) {
  return info.param == BaseKind::kMem ? "MemEnv" : "PosixEnv";
}

// Everything in a file, read straight from `env`; nullopt if it is missing.
std::optional<std::string> ReadAll(Env* env, const std::string& path) {
  if (!env->FileExists(path)) return std::nullopt;
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return std::nullopt;
  std::string out;
  std::string scratch(4096, '\0');
  while (true) {
    absl::string_view chunk;
    if (!(*file)->Read(scratch.size(), &chunk, scratch.data()).ok()) {
      return std::nullopt;
    }
    if (chunk.empty()) return out;
    out.append(chunk.data(), chunk.size());
  }
}

// "name: size bytes, fnv <hash>" per file: readable failure messages for
// snapshots of binary files.
std::string Describe(const std::map<std::string, std::string>& files) {
  std::string out;
  for (const auto& [name, data] : files) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (char c : data)
      h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    absl::StrAppend(&out, name, ": ", data.size(), " bytes, fnv ", h, "\n");
  }
  return out;
}

// Runs every test over a MemEnv and over the POSIX Env (in a TempDir).
class FaultInjectionEnvTest : public ::testing::TestWithParam<BaseKind> {
 protected:
  void SetUp() override { ResetBase(); }

  // A fresh, empty base file system under root_ and a FaultInjectionEnv over
  // it.
  void ResetBase() {
    fi_.reset();
    if (GetParam() == BaseKind::kMem) {
      mem_ = NewMemEnv();
      base_ = mem_.get();
      root_ = "/fi";
    } else {
      if (tmp_ == nullptr) tmp_ = std::make_unique<testutil::TempDir>();
      base_ = Env::Default();
      root_ = tmp_->Join("fi");
      testutil::RemoveTree(root_);
    }
    ASSERT_OK(base_->CreateDirIfMissing(root_));
    fi_ = std::make_unique<FaultInjectionEnv>(base_);
  }

  std::string Path(const std::string& name) const { return root_ + "/" + name; }

  // Writes `synced` and Syncs, then appends `unsynced` and closes (not a sync).
  void WriteFile(const std::string& name, absl::string_view synced,
                 absl::string_view unsynced, bool sync_dir = true) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                         fi_->NewWritableFile(Path(name)));
    ASSERT_OK(file->Append(synced));
    ASSERT_OK(file->Sync());
    ASSERT_OK(file->Append(unsynced));
    ASSERT_OK(file->Close());
    if (sync_dir) {
      ASSERT_OK(fi_->SyncDir(root_));
    }
  }

  // Writes through the base Env: a file the FaultInjectionEnv never saw.
  void WriteBaseFile(const std::string& name, absl::string_view data) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                         base_->NewWritableFile(Path(name)));
    ASSERT_OK(file->Append(data));
    ASSERT_OK(file->Sync());
    ASSERT_OK(file->Close());
    ASSERT_OK(base_->SyncDir(root_));
  }

  // Rewrites `name` in place from `offset` (ReopenWritableFile): writes
  // `synced` and Syncs (unless it is empty: a Sync would make every earlier
  // write to the file durable too), then writes `unsynced` and closes (not a
  // sync).
  void Overwrite(const std::string& name, uint64_t offset,
                 absl::string_view synced, absl::string_view unsynced) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                         fi_->ReopenWritableFile(Path(name), offset));
    if (!synced.empty()) {
      ASSERT_OK(file->Append(synced));
      ASSERT_OK(file->Sync());
    }
    ASSERT_OK(file->Append(unsynced));
    ASSERT_OK(file->Close());
  }

  std::optional<std::string> Contents(const std::string& name) {
    return ReadAll(base_, Path(name));
  }

  // Every file under root_ (one level) with its content.
  std::map<std::string, std::string> Snapshot() {
    std::map<std::string, std::string> out;
    absl::StatusOr<std::vector<std::string>> children =
        base_->GetChildren(root_);
    EXPECT_OK(children);
    if (!children.ok()) return out;
    for (const std::string& child : *children) {
      std::optional<std::string> data = ReadAll(base_, Path(child));
      if (data.has_value()) out[child] = *data;
    }
    return out;
  }

  // A history touching every kind of change: synced and unsynced bytes,
  // unsynced creates, renames and deletes. Same calls every time.
  void RunMixedHistory() {
    testutil::Random rnd(7);
    for (int i = 0; i < 6; ++i) {
      const std::string synced = rnd.RandomBytes(100 + 300 * i);
      const std::string unsynced = rnd.RandomBytes(700 + 400 * i);
      WriteFile(absl::StrCat("f", i), synced, unsynced);
    }
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> open,
                         fi_->NewWritableFile(Path("open")));
    ASSERT_OK(fi_->SyncDir(root_));
    ASSERT_OK(open->Append(rnd.RandomBytes(1500)));
    ASSERT_OK(open->Sync());
    ASSERT_OK(open->Append(rnd.RandomBytes(2500)));
    ASSERT_OK(open->Flush());
    ASSERT_OK(fi_->RenameFile(Path("f1"), Path("g1")));
    ASSERT_OK(fi_->DeleteFile(Path("f2")));
    ASSERT_OK(fi_->RenameFile(Path("f3"), Path("f4")));
    const std::string synced = rnd.RandomBytes(900);
    const std::string unsynced = rnd.RandomBytes(900);
    WriteFile("new", synced, unsynced, /*sync_dir=*/false);
  }

  std::unique_ptr<Env> mem_;
  std::unique_ptr<testutil::TempDir> tmp_;
  Env* base_ = nullptr;
  std::string root_;
  std::unique_ptr<FaultInjectionEnv> fi_;
};

INSTANTIATE_TEST_SUITE_P(Bases, FaultInjectionEnvTest,
                         ::testing::Values(BaseKind::kMem, BaseKind::kPosix),
                         BaseKindName);

// ---- What survives each crash mode. ----

TEST_P(FaultInjectionEnvTest, DropUnsyncedKeepsSyncedPrefix) {
  WriteFile("a", "hello", " world");
  EXPECT_THAT(fi_->SyncedSize(Path("a")), IsOkAndHolds(5));
  EXPECT_THAT(fi_->AppendedSize(Path("a")), IsOkAndHolds(11));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "hello");
}

TEST_P(FaultInjectionEnvTest, DropUnsyncedEmptiesNeverSyncedFile) {
  WriteFile("a", "", "never synced");
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "");
}

TEST_P(FaultInjectionEnvTest, SyncsAccumulate) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewWritableFile(Path("a")));
  ASSERT_OK(fi_->SyncDir(root_));
  ASSERT_OK(file->Append("one,"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Append("two,"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Append("three"));
  ASSERT_OK(file->Flush());
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "one,two,");
}

TEST_P(FaultInjectionEnvTest, FullySyncedFileSurvivesEveryMode) {
  const std::string data = testutil::Random(3).RandomBytes(2000);
  for (CrashMode mode : kAllCrashModes) {
    for (uint64_t seed = 0; seed < 10; ++seed) {
      ResetBase();
      WriteFile("a", data, "");
      ASSERT_OK(fi_->SimulateCrash(mode, seed));
      EXPECT_EQ(Contents("a"), data);
    }
  }
}

TEST_P(FaultInjectionEnvTest, TornTailKeepsPrefixAtLeastAsLongAsSynced) {
  const std::string data = testutil::Random(4).RandomBytes(3000);
  std::set<size_t> lengths;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    ResetBase();
    WriteFile("a", absl::string_view(data).substr(0, 1000),
              absl::string_view(data).substr(1000));
    ASSERT_OK(fi_->SimulateCrash(CrashMode::kTornTail, seed));
    std::optional<std::string> got = Contents("a");
    ASSERT_TRUE(got.has_value());
    ASSERT_GE(got->size(), 1000u) << "seed " << seed;
    EXPECT_EQ(*got, data.substr(0, got->size())) << "seed " << seed;
    lengths.insert(got->size());
  }
  // The cut point really is random: many different lengths over 40 seeds.
  EXPECT_GE(lengths.size(), 20u);
}

TEST_P(FaultInjectionEnvTest, TornSectorsKeepsSyncedBytesAndTearsSectors) {
  // Synced up to the middle of sector 1; 5300 bytes in all (sector 10 partial).
  const std::string data = testutil::Random(5).RandomBytes(5300);
  constexpr size_t kSynced = 700;
  int kept = 0, zeroed = 0, garbage = 0, cut = 0, uncut = 0;
  int later_sector_survived_earlier_lost = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    ResetBase();
    WriteFile("a", absl::string_view(data).substr(0, kSynced),
              absl::string_view(data).substr(kSynced));
    ASSERT_OK(fi_->SimulateCrash(CrashMode::kTornSectors, seed));
    std::optional<std::string> got = Contents("a");
    ASSERT_TRUE(got.has_value());
    ASSERT_GE(got->size(), kSynced) << "seed " << seed;
    ASSERT_LE(got->size(), data.size()) << "seed " << seed;
    EXPECT_EQ(got->substr(0, kSynced), data.substr(0, kSynced))
        << "seed " << seed;
    // A cut lands on a sector boundary, at the synced size, or not at all.
    const bool was_cut = got->size() != data.size();
    was_cut ? ++cut : ++uncut;
    if (was_cut && got->size() != kSynced) {
      EXPECT_EQ(got->size() % 512, 0u);
    }

    bool lost_before = false;
    std::string last_kind;
    for (size_t sector = 512; sector < got->size(); sector += 512) {
      const size_t begin = std::max(sector, kSynced);
      const size_t end = std::min(sector + 512, got->size());
      const std::string now = got->substr(begin, end - begin);
      const std::string original = data.substr(begin, end - begin);
      if (now == original) {
        ++kept;
        last_kind = "kept";
        if (lost_before) ++later_sector_survived_earlier_lost;
      } else if (now == std::string(now.size(), '\0')) {
        ++zeroed;
        last_kind = "zeroed";
        lost_before = true;
      } else {
        ++garbage;  // anything else is garbage, which differs from original
        last_kind = "garbage";
        lost_before = true;
      }
    }
    // A cut is made right after the last kept sector.
    if (was_cut && got->size() > kSynced) {
      EXPECT_EQ(last_kind, "kept") << "seed " << seed;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(zeroed, 0);
  EXPECT_GT(garbage, 0);
  EXPECT_GT(cut, 0);
  EXPECT_GT(uncut, 0);
  EXPECT_GT(later_sector_survived_earlier_lost, 0);
}

TEST_P(FaultInjectionEnvTest, EqualSeedsGiveIdenticalResults) {
  for (CrashMode mode : kAllCrashModes) {
    ResetBase();
    RunMixedHistory();
    ASSERT_OK(fi_->SimulateCrash(mode, 42));
    const std::map<std::string, std::string> first = Snapshot();
    ResetBase();
    RunMixedHistory();
    ASSERT_OK(fi_->SimulateCrash(mode, 42));
    const std::map<std::string, std::string> second = Snapshot();
    EXPECT_TRUE(second == first) << "mode " << static_cast<int>(mode) << "\n"
                                 << Describe(first) << "vs\n"
                                 << Describe(second);
  }
}

TEST_P(FaultInjectionEnvTest, DifferentSeedsGiveDifferentResults) {
  for (CrashMode mode : {CrashMode::kTornTail, CrashMode::kTornSectors}) {
    ResetBase();
    RunMixedHistory();
    ASSERT_OK(fi_->SimulateCrash(mode, 1));
    const std::map<std::string, std::string> first = Snapshot();
    ResetBase();
    RunMixedHistory();
    ASSERT_OK(fi_->SimulateCrash(mode, 2));
    const std::map<std::string, std::string> second = Snapshot();
    EXPECT_TRUE(second != first) << "mode " << static_cast<int>(mode) << "\n"
                                 << Describe(first);
  }
}

TEST_P(FaultInjectionEnvTest, MixedHistoryDropUnsyncedIsExact) {
  testutil::Random rnd(7);  // the same bytes RunMixedHistory writes
  std::vector<std::string> synced;
  for (int i = 0; i < 6; ++i) {
    synced.push_back(rnd.RandomBytes(100 + 300 * i));
    rnd.RandomBytes(700 + 400 * i);
  }
  const std::string open_synced = rnd.RandomBytes(1500);
  RunMixedHistory();
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 9));
  const std::map<std::string, std::string> expected = {
      {"f0", synced[0]}, {"f1", synced[1]},  // rename f1 -> g1 undone
      {"f2", synced[2]},                     // delete undone
      {"f3", synced[3]}, {"f4", synced[4]},  // rename over f4 undone
      {"f5", synced[5]}, {"open", open_synced},
      // "new" was never made durable in its directory.
  };
  const std::map<std::string, std::string> got = Snapshot();
  EXPECT_TRUE(got == expected) << Describe(got) << "expected\n"
                               << Describe(expected);
}

// ---- Directory entries. ----

TEST_P(FaultInjectionEnvTest, UnsyncedCreateVanishes) {
  for (CrashMode mode : kAllCrashModes) {
    ResetBase();
    WriteFile("a", "synced data", "", /*sync_dir=*/false);
    EXPECT_THAT(fi_->UnsyncedDirEntries(), ElementsAre(Path("a")));
    ASSERT_OK(fi_->SimulateCrash(mode, 1));
    EXPECT_FALSE(base_->FileExists(Path("a")));
  }
}

TEST_P(FaultInjectionEnvTest, DirSyncedCreateSurvives) {
  WriteFile("a", "synced data", "", /*sync_dir=*/true);
  EXPECT_THAT(fi_->UnsyncedDirEntries(), IsEmpty());
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "synced data");
}

TEST_P(FaultInjectionEnvTest, SyncDirOfAnotherDirectoryDoesNotHelp) {
  const std::string sub = Path("sub");
  ASSERT_OK(fi_->CreateDirIfMissing(sub));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewWritableFile(sub + "/a"));
  ASSERT_OK(file->Append("x"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(fi_->SyncDir(root_));  // the parent, not the file's directory
  file.reset();
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_FALSE(base_->FileExists(sub + "/a"));
  EXPECT_TRUE(base_->FileExists(sub));  // its own entry, in root_, was synced
}

TEST_P(FaultInjectionEnvTest, SyncDirMatchesEquivalentSpellings) {
  WriteFile("a", "x", "", /*sync_dir=*/false);
  ASSERT_OK(fi_->SyncDir(root_ + "/"));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "x");
}

TEST_P(FaultInjectionEnvTest, RenameWithoutSyncDirIsUndone) {
  WriteFile("a", "abc", "def");
  ASSERT_OK(fi_->RenameFile(Path("a"), Path("b")));
  EXPECT_THAT(fi_->UnsyncedDirEntries(), ElementsAre(Path("a"), Path("b")));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  // The old name is back, with the content the crash rules leave.
  EXPECT_EQ(Contents("a"), "abc");
  EXPECT_FALSE(base_->FileExists(Path("b")));
}

TEST_P(FaultInjectionEnvTest, RenameWithSyncDirSurvives) {
  WriteFile("a", "abc", "def");
  ASSERT_OK(fi_->RenameFile(Path("a"), Path("b")));
  ASSERT_OK(fi_->SyncDir(root_));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_FALSE(base_->FileExists(Path("a")));
  EXPECT_EQ(Contents("b"), "abc");
}

TEST_P(FaultInjectionEnvTest, RenameOverExistingFileIsUndone) {
  WriteFile("a", "new contents", "");
  WriteFile("b", "old contents", " unsynced");
  ASSERT_OK(fi_->RenameFile(Path("a"), Path("b")));
  EXPECT_EQ(Contents("b"), "new contents");
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "new contents");
  EXPECT_EQ(Contents("b"), "old contents");  // the replaced file, synced part
}

TEST_P(FaultInjectionEnvTest, RenameChainIsUndoneToDurableName) {
  WriteFile("a", "payload", "");
  ASSERT_OK(fi_->RenameFile(Path("a"), Path("b")));
  ASSERT_OK(fi_->RenameFile(Path("b"), Path("c")));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_THAT(Snapshot(), ElementsAre(std::pair<const std::string, std::string>(
                              "a", "payload")));
}

TEST_P(FaultInjectionEnvTest, RenameOfUnsyncedCreateVanishes) {
  WriteFile("tmp", "payload", "", /*sync_dir=*/false);
  ASSERT_OK(fi_->RenameFile(Path("tmp"), Path("final")));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_THAT(Snapshot(), IsEmpty());
}

TEST_P(FaultInjectionEnvTest, DeleteWithoutSyncDirIsUndone) {
  WriteFile("a", "abc", "def");
  ASSERT_OK(fi_->DeleteFile(Path("a")));
  EXPECT_FALSE(base_->FileExists(Path("a")));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "abc");  // back with its synced content
}

TEST_P(FaultInjectionEnvTest, DeleteWithSyncDirIsPermanent) {
  WriteFile("a", "abc", "def");
  ASSERT_OK(fi_->DeleteFile(Path("a")));
  ASSERT_OK(fi_->SyncDir(root_));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_FALSE(base_->FileExists(Path("a")));
}

TEST_P(FaultInjectionEnvTest, DeleteThenRecreateRestoresOriginal) {
  WriteFile("a", "original", "");
  ASSERT_OK(fi_->DeleteFile(Path("a")));
  WriteFile("a", "replacement", "", /*sync_dir=*/false);
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kTornTail, 5));
  EXPECT_EQ(Contents("a"), "original");
}

TEST_P(FaultInjectionEnvTest, FileNotWrittenThroughEnvCountsAsDurable) {
  WriteBaseFile("a", "preexisting");
  WriteBaseFile("untouched", "left alone");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewAppendableFile(Path("a")));
  EXPECT_EQ(file->Size(), 11u);
  EXPECT_THAT(fi_->SyncedSize(Path("a")), IsOkAndHolds(11));
  ASSERT_OK(file->Append(" and more"));
  ASSERT_OK(file->Close());
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "preexisting");
  EXPECT_EQ(Contents("untouched"), "left alone");
}

TEST_P(FaultInjectionEnvTest, DeleteOfPreexistingFileIsUndone) {
  WriteBaseFile("a", "preexisting");
  ASSERT_OK(fi_->DeleteFile(Path("a")));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "preexisting");
}

// ---- Directories created through the Env. ----

// Writes `data` to `path` (a full path) through the FaultInjectionEnv, Syncs
// it and syncs the directory holding it: durable, as far as that directory
// goes.
void WriteDurably(FaultInjectionEnv* fi, const std::string& path,
                  absl::string_view data) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi->NewWritableFile(path));
  ASSERT_OK(file->Append(data));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Close());
  ASSERT_OK(fi->SyncDir(path.substr(0, path.rfind('/'))));
}

TEST_P(FaultInjectionEnvTest,
       CreatedDirectoryVanishesWhenItsParentWasNotSynced) {
  for (CrashMode mode : kAllCrashModes) {
    ResetBase();
    const std::string sub = Path("sub");
    ASSERT_OK(fi_->CreateDirIfMissing(sub));
    EXPECT_THAT(fi_->UnsyncedDirEntries(), ElementsAre(sub));
    ASSERT_OK(fi_->SimulateCrash(mode, 1));
    EXPECT_FALSE(base_->FileExists(sub)) << CrashModeName(mode);
    EXPECT_THAT(fi_->UnsyncedDirEntries(), IsEmpty());
  }
}

TEST_P(FaultInjectionEnvTest, SyncedFileInALostDirectoryIsLostToo) {
  for (CrashMode mode : kAllCrashModes) {
    ResetBase();
    const std::string sub = Path("sub");
    ASSERT_OK(fi_->CreateDirIfMissing(sub));
    WriteDurably(fi_.get(), sub + "/a", "synced, its directory synced too");
    WriteFile("sub/b", "synced", " and not", /*sync_dir=*/false);
    // Files the Env never saw are under the lost directory all the same.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> raw,
                         base_->NewWritableFile(sub + "/c"));
    ASSERT_OK(raw->Append("written straight to the base"));
    ASSERT_OK(raw->Sync());
    ASSERT_OK(raw->Close());
    ASSERT_OK(fi_->SimulateCrash(mode, 1));
    EXPECT_FALSE(base_->FileExists(sub + "/a")) << CrashModeName(mode);
    EXPECT_FALSE(base_->FileExists(sub + "/c")) << CrashModeName(mode);
    EXPECT_FALSE(base_->FileExists(sub)) << CrashModeName(mode);
    EXPECT_THAT(Snapshot(), IsEmpty());
  }
}

TEST_P(FaultInjectionEnvTest, DirectoryCreationSurvivesOnceParentIsSynced) {
  for (CrashMode mode : kAllCrashModes) {
    ResetBase();
    const std::string sub = Path("sub");
    ASSERT_OK(fi_->CreateDirIfMissing(sub));
    ASSERT_OK(fi_->SyncDir(root_));
    EXPECT_THAT(fi_->UnsyncedDirEntries(), IsEmpty());
    WriteDurably(fi_.get(), sub + "/a", "payload");
    ASSERT_OK(fi_->SimulateCrash(mode, 1));
    EXPECT_EQ(ReadAll(base_, sub + "/a"), "payload") << CrashModeName(mode);
  }
}

TEST_P(FaultInjectionEnvTest, NestedDirectoriesNeedEveryParentSynced) {
  // Which of the two parents (root_ for "outer", outer for "inner") is synced
  // after both levels are created, and what survives.
  struct Case {
    bool sync_root;
    bool sync_outer;
    bool outer_survives;
    bool inner_survives;
  };
  for (const Case& c :
       {Case{false, false, false, false}, Case{false, true, false, false},
        Case{true, false, true, false}, Case{true, true, true, true}}) {
    SCOPED_TRACE(
        absl::StrCat("sync root ", c.sync_root, ", sync outer ", c.sync_outer));
    ResetBase();
    const std::string outer = Path("outer");
    const std::string inner = outer + "/inner";
    ASSERT_OK(fi_->CreateDirIfMissing(outer));
    ASSERT_OK(fi_->CreateDirIfMissing(inner));
    EXPECT_THAT(fi_->UnsyncedDirEntries(), ElementsAre(outer, inner));
    WriteDurably(fi_.get(), inner + "/a", "deep");
    if (c.sync_root) {
      ASSERT_OK(fi_->SyncDir(root_));
    }
    if (c.sync_outer) {
      ASSERT_OK(fi_->SyncDir(outer));
    }
    ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
    EXPECT_EQ(base_->FileExists(outer), c.outer_survives);
    EXPECT_EQ(base_->FileExists(inner), c.inner_survives);
    EXPECT_EQ(
        ReadAll(base_, inner + "/a"),
        c.inner_survives ? std::optional<std::string>("deep") : std::nullopt);
  }
}

TEST_P(FaultInjectionEnvTest, DirectoryThatExistedBeforeTheEnvCountsAsDurable) {
  const std::string pre = Path("pre");
  ASSERT_OK(base_->CreateDirIfMissing(pre));
  ASSERT_OK(fi_->CreateDirIfMissing(pre));  // finds it there: nothing new
  EXPECT_THAT(fi_->UnsyncedDirEntries(), IsEmpty());
  WriteDurably(fi_.get(), pre + "/a", "kept");
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(ReadAll(base_, pre + "/a"), "kept");
}

TEST_P(FaultInjectionEnvTest, FailedSyncDirKeepsDirectoryCreationUndoable) {
  const std::string sub = Path("sub");
  ASSERT_OK(fi_->CreateDirIfMissing(sub));
  WriteDurably(fi_.get(), sub + "/a", "x");
  fi_->InjectError(kOpSyncDir, absl::InternalError("dir fsync failed"));
  EXPECT_THAT(fi_->SyncDir(root_), StatusIs(absl::StatusCode::kInternal));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_FALSE(base_->FileExists(sub));
}

TEST_P(FaultInjectionEnvTest,
       FileRenamedOutOfALostDirectorySurvivesWhereSynced) {
  // `keep` was there before the Env; `lost` is created through it and its
  // parent is never synced.
  for (bool sync_target : {false, true}) {
    SCOPED_TRACE(absl::StrCat("target directory synced: ", sync_target));
    ResetBase();
    const std::string keep = Path("keep");
    const std::string lost = Path("lost");
    ASSERT_OK(base_->CreateDirIfMissing(keep));
    ASSERT_OK(fi_->CreateDirIfMissing(lost));
    WriteDurably(fi_.get(), lost + "/a", "moved out");
    ASSERT_OK(fi_->RenameFile(lost + "/a", keep + "/a"));
    ASSERT_OK(fi_->SyncDir(lost));
    if (sync_target) {
      ASSERT_OK(fi_->SyncDir(keep));
    }
    ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
    EXPECT_FALSE(base_->FileExists(lost));
    // Its only durable name is the new one, if its directory was synced.
    EXPECT_EQ(
        ReadAll(base_, keep + "/a"),
        sync_target ? std::optional<std::string>("moved out") : std::nullopt);
  }
}

TEST_P(FaultInjectionEnvTest,
       FileRenamedIntoALostDirectoryIsLostOnceItsOldNameIs) {
  for (bool sync_source : {false, true}) {
    SCOPED_TRACE(absl::StrCat("source directory synced: ", sync_source));
    ResetBase();
    const std::string keep = Path("keep");
    const std::string lost = Path("lost");
    ASSERT_OK(base_->CreateDirIfMissing(keep));
    WriteDurably(fi_.get(), keep + "/a", "durable");
    ASSERT_OK(fi_->CreateDirIfMissing(lost));
    // Unsynced bytes written after the move are reverted wherever it lands.
    ASSERT_OK(fi_->RenameFile(keep + "/a", lost + "/a"));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                         fi_->NewAppendableFile(lost + "/a"));
    ASSERT_OK(file->Append(" plus unsynced"));
    ASSERT_OK(file->Close());
    ASSERT_OK(fi_->SyncDir(lost));
    if (sync_source) {
      ASSERT_OK(fi_->SyncDir(keep));
    }
    ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
    EXPECT_FALSE(base_->FileExists(lost));
    // An unsynced rename is undone: the old name comes back.
    EXPECT_EQ(
        ReadAll(base_, keep + "/a"),
        sync_source ? std::nullopt : std::optional<std::string>("durable"));
  }
}

TEST_P(FaultInjectionEnvTest, DeletingAnUnsyncedDirectoryForgetsIt) {
  const std::string sub = Path("sub");
  ASSERT_OK(fi_->CreateDirIfMissing(sub));
  WriteDurably(fi_.get(), sub + "/a", "x");
  ASSERT_OK(fi_->DeleteFile(sub + "/a"));  // not synced in sub
  ASSERT_OK(fi_->DeleteDir(sub));
  EXPECT_THAT(fi_->UnsyncedDirEntries(), IsEmpty());
  ASSERT_OK(fi_->SyncDir(root_));
  // Neither the directory nor the file whose delete was never synced comes
  // back: they were only ever under a directory that never became durable.
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_FALSE(base_->FileExists(sub));
  EXPECT_FALSE(base_->FileExists(sub + "/a"));
  // Creating it again is a new creation, lost without a sync of the parent.
  ASSERT_OK(fi_->CreateDirIfMissing(sub));
  EXPECT_THAT(fi_->UnsyncedDirEntries(), ElementsAre(sub));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 2));
  EXPECT_FALSE(base_->FileExists(sub));
}

// CreateDirsDurably (env/env.h): every level it creates survives a power cut,
// and so does a file made durable in the deepest one; plain CreateDirIfMissing
// calls of the same levels lose it all.
TEST_P(FaultInjectionEnvTest, CreateDirsDurablyMakesEveryNewLevelSurvive) {
  for (bool durably : {true, false}) {
    SCOPED_TRACE(durably ? "CreateDirsDurably" : "CreateDirIfMissing");
    ResetBase();
    const std::string deep = Path("a/b/c");
    if (durably) {
      ASSERT_OK(CreateDirsDurably(fi_.get(), deep));
    } else {
      for (const char* level : {"a", "a/b", "a/b/c"}) {
        ASSERT_OK(fi_->CreateDirIfMissing(Path(level)));
      }
    }
    EXPECT_EQ(fi_->UnsyncedDirEntries().empty(), durably);
    WriteDurably(fi_.get(), deep + "/f", "deep");
    ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
    EXPECT_EQ(ReadAll(base_, deep + "/f"),
              durably ? std::optional<std::string>("deep") : std::nullopt);
    EXPECT_EQ(base_->FileExists(Path("a")), durably);
  }
  // A level already there is left alone: its parent is not synced for it.
  ASSERT_OK(fi_->CreateDirIfMissing(Path("a")));
  ASSERT_OK(CreateDirsDurably(fi_.get(), Path("a")));
  EXPECT_THAT(fi_->UnsyncedDirEntries(), ElementsAre(Path("a")));
}

TEST_P(FaultInjectionEnvTest,
       LostDirectoriesAreRemovedTheSameWayForEqualSeeds) {
  auto run = [&](uint64_t seed) {
    ResetBase();
    testutil::Random rnd(11);
    EXPECT_OK(fi_->CreateDirIfMissing(Path("kept")));
    EXPECT_OK(fi_->SyncDir(root_));
    EXPECT_OK(fi_->CreateDirIfMissing(Path("lost")));
    for (const char* dir : {"kept", "lost"}) {
      WriteFile(absl::StrCat(dir, "/f"), rnd.RandomBytes(700),
                rnd.RandomBytes(900), /*sync_dir=*/false);
      EXPECT_OK(fi_->SyncDir(Path(dir)));
    }
    EXPECT_OK(fi_->SimulateCrash(CrashMode::kTornSectors, seed));
    return std::make_pair(ReadAll(base_, Path("kept/f")),
                          base_->FileExists(Path("lost")));
  };
  const auto first = run(5);
  EXPECT_TRUE(first.first.has_value());
  EXPECT_FALSE(first.second);
  EXPECT_EQ(run(5), first);
}

// ---- TruncateFile. ----

TEST_P(FaultInjectionEnvTest, TruncateShrinkIsDurable) {
  WriteFile("a", "0123456789", "");
  ASSERT_OK(fi_->TruncateFile(Path("a"), 4));
  EXPECT_THAT(fi_->SyncedSize(Path("a")), IsOkAndHolds(4));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "0123");
}

TEST_P(FaultInjectionEnvTest, TruncateExtensionIsUnsyncedUntilSync) {
  WriteFile("a", "abcd", "");
  ASSERT_OK(fi_->TruncateFile(Path("a"), 10));
  EXPECT_THAT(fi_->SyncedSize(Path("a")), IsOkAndHolds(4));
  EXPECT_THAT(fi_->AppendedSize(Path("a")), IsOkAndHolds(10));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "abcd");

  ASSERT_OK(fi_->TruncateFile(Path("a"), 10));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewAppendableFile(Path("a")));
  ASSERT_OK(file->Sync());
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), std::string("abcd\0\0\0\0\0\0", 10));
}

// ---- Injected errors. ----

TEST_P(FaultInjectionEnvTest, InjectedErrorSurfacesUnchanged) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewWritableFile(Path("a")));
  ASSERT_OK(file->Append("kept"));
  const absl::Status error = absl::DataLossError("disk on fire");
  fi_->InjectError(kOpAppend, error);
  EXPECT_EQ(file->Append("lost"), error);
  // A failed append changes nothing: not recorded, not on the base file.
  EXPECT_THAT(fi_->AppendedSize(Path("a")), IsOkAndHolds(4));
  EXPECT_EQ(file->Size(), 4u);
  ASSERT_OK(file->Close());
  EXPECT_EQ(Contents("a"), "kept");
}

TEST_P(FaultInjectionEnvTest, InjectedErrorHonoursSkipAndCount) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewWritableFile(Path("a")));
  fi_->InjectError(kOpSync, absl::ResourceExhaustedError("full"), "",
                   /*skip=*/2, /*count=*/2);
  std::vector<absl::StatusCode> codes;
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK(file->Append("x"));
    codes.push_back(file->Sync().code());
  }
  EXPECT_THAT(codes, ElementsAre(absl::StatusCode::kOk, absl::StatusCode::kOk,
                                 absl::StatusCode::kResourceExhausted,
                                 absl::StatusCode::kResourceExhausted,
                                 absl::StatusCode::kOk, absl::StatusCode::kOk));
}

TEST_P(FaultInjectionEnvTest, NegativeCountFailsUntilCleared) {
  fi_->InjectError(kOpOpen, absl::PermissionDeniedError("no"), "", 0, -1);
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(fi_->NewWritableFile(Path("a")),
                StatusIs(absl::StatusCode::kPermissionDenied, "no"));
  }
  fi_->ClearInjectedErrors();
  EXPECT_OK(fi_->NewWritableFile(Path("a")));
}

TEST_P(FaultInjectionEnvTest, InjectedErrorMatchesPathSubstring) {
  fi_->InjectError(kOpOpen, absl::InternalError("only b"), "b.log", 0, -1);
  EXPECT_OK(fi_->NewWritableFile(Path("a.log")));
  EXPECT_THAT(fi_->NewWritableFile(Path("b.log")),
              StatusIs(absl::StatusCode::kInternal, "only b"));
  // A rename matches on either path.
  fi_->InjectError(kOpRename, absl::InternalError("rename"), "c.log");
  EXPECT_THAT(fi_->RenameFile(Path("a.log"), Path("c.log")),
              StatusIs(absl::StatusCode::kInternal, "rename"));
  EXPECT_TRUE(base_->FileExists(Path("a.log")));
}

TEST_P(FaultInjectionEnvTest, FirstMatchingInjectionDecides) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewWritableFile(Path("a")));
  fi_->InjectError(kOpSync, absl::InternalError("first"));
  fi_->InjectError(kOpSync | kOpFlush, absl::AbortedError("second"));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kInternal, "first"));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kAborted, "second"));
  EXPECT_OK(file->Sync());
  EXPECT_OK(file->Flush());
}

TEST_P(FaultInjectionEnvTest, FailedSyncLeavesSyncedSizeUnchanged) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewWritableFile(Path("a")));
  ASSERT_OK(fi_->SyncDir(root_));
  ASSERT_OK(file->Append("abc"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Append("def"));
  fi_->InjectError(kOpSync, absl::UnavailableError("fsync failed"));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(fi_->SyncedSize(Path("a")), IsOkAndHolds(3));
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), ElementsAre(Path("a")));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "abc");
}

TEST_P(FaultInjectionEnvTest, FailedSyncDirKeepsCreateUndoable) {
  WriteFile("a", "data", "", /*sync_dir=*/false);
  fi_->InjectError(kOpSyncDir, absl::InternalError("dir fsync failed"));
  EXPECT_THAT(fi_->SyncDir(root_), StatusIs(absl::StatusCode::kInternal));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_FALSE(base_->FileExists(Path("a")));
}

TEST_P(FaultInjectionEnvTest, FailedDeleteAndRenameChangeNothing) {
  WriteFile("a", "abc", "");
  fi_->InjectError(kOpDelete | kOpRename, absl::InternalError("no"), "", 0, 2);
  EXPECT_THAT(fi_->DeleteFile(Path("a")),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(fi_->RenameFile(Path("a"), Path("b")),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(fi_->UnsyncedDirEntries(), IsEmpty());
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "abc");
}

TEST_P(FaultInjectionEnvTest, EveryOperationKindCanBeInjected) {
  WriteFile("r", "readable", "");
  ASSERT_OK(fi_->CreateDirIfMissing(Path("d")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> w,
                       fi_->NewWritableFile(Path("w")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SequentialFile> seq,
                       fi_->NewSequentialFile(Path("r")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RandomAccessFile> ra,
                       fi_->NewRandomAccessFile(Path("r")));
  char scratch[16];
  absl::string_view result;
  struct Case {
    const char* name;
    uint32_t op;
    std::function<absl::Status()> call;
  };
  const std::vector<Case> cases = {
      {"NewWritableFile", kOpOpen,
       [&] { return fi_->NewWritableFile(Path("x")).status(); }},
      {"NewAppendableFile", kOpOpen,
       [&] { return fi_->NewAppendableFile(Path("x")).status(); }},
      {"NewSequentialFile", kOpOpen,
       [&] { return fi_->NewSequentialFile(Path("r")).status(); }},
      {"NewRandomAccessFile", kOpOpen,
       [&] { return fi_->NewRandomAccessFile(Path("r")).status(); }},
      {"LockFile", kOpOpen,
       [&] { return fi_->LockFile(Path("LOCK")).status(); }},
      {"Append", kOpAppend, [&] { return w->Append("x"); }},
      {"Flush", kOpFlush, [&] { return w->Flush(); }},
      {"Sync", kOpSync, [&] { return w->Sync(); }},
      {"SequentialRead", kOpRead,
       [&] { return seq->Read(1, &result, scratch); }},
      {"Skip", kOpRead, [&] { return seq->Skip(1); }},
      {"RandomRead", kOpRead, [&] { return ra->Read(0, 1, &result, scratch); }},
      {"DeleteFile", kOpDelete, [&] { return fi_->DeleteFile(Path("x")); }},
      {"Rename", kOpRename,
       [&] { return fi_->RenameFile(Path("w"), Path("w2")); }},
      {"Truncate", kOpTruncate,
       [&] { return fi_->TruncateFile(Path("r"), 8); }},
      {"SyncDir", kOpSyncDir, [&] { return fi_->SyncDir(root_); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const absl::Status error =
        absl::InternalError(absl::StrCat("injected ", c.name));
    fi_->InjectError(c.op, error);
    EXPECT_EQ(c.call(), error);
    if (c.op == kOpOpen && std::string(c.name) == "LockFile") {
      absl::StatusOr<std::unique_ptr<FileLock>> lock =
          fi_->LockFile(Path("LOCK"));
      ASSERT_OK(lock);
      EXPECT_OK(fi_->UnlockFile(*std::move(lock)));
    } else {
      EXPECT_OK(c.call());  // count 1: the next call goes through
    }
  }
}

TEST_P(FaultInjectionEnvTest, InjectionsOnOtherOpsDoNotFire) {
  fi_->InjectError(kOpAll & ~kOpOpen & ~kOpAppend, absl::AbortedError("no"), "",
                   0, -1);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewWritableFile(Path("a")));
  EXPECT_OK(file->Append("x"));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kAborted));
}

// ---- SetFilesystemActive. ----

TEST_P(FaultInjectionEnvTest, InactiveFilesystemFailsEveryCall) {
  WriteFile("a", "abc", "");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> w,
                       fi_->NewAppendableFile(Path("a")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SequentialFile> seq,
                       fi_->NewSequentialFile(Path("a")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RandomAccessFile> ra,
                       fi_->NewRandomAccessFile(Path("a")));
  const absl::Status dead = absl::ResourceExhaustedError("dead disk");
  fi_->SetFilesystemActive(false, dead);
  EXPECT_FALSE(fi_->IsFilesystemActive());

  char scratch[8];
  absl::string_view result;
  EXPECT_EQ(fi_->NewWritableFile(Path("b")).status(), dead);
  EXPECT_EQ(fi_->NewAppendableFile(Path("b")).status(), dead);
  EXPECT_EQ(fi_->NewSequentialFile(Path("a")).status(), dead);
  EXPECT_EQ(fi_->NewRandomAccessFile(Path("a")).status(), dead);
  EXPECT_EQ(fi_->NewWritableFileWithOptions(Path("b"), FileOptions()).status(),
            dead);
  EXPECT_FALSE(fi_->FileExists(Path("a")));
  EXPECT_EQ(fi_->GetChildren(root_).status(), dead);
  EXPECT_EQ(fi_->GetFileSize(Path("a")).status(), dead);
  EXPECT_EQ(fi_->DeleteFile(Path("a")), dead);
  EXPECT_EQ(fi_->RenameFile(Path("a"), Path("b")), dead);
  EXPECT_EQ(fi_->TruncateFile(Path("a"), 0), dead);
  EXPECT_EQ(fi_->CreateDirIfMissing(Path("d")), dead);
  EXPECT_EQ(fi_->SyncDir(root_), dead);
  EXPECT_EQ(fi_->LockFile(Path("LOCK")).status(), dead);
  EXPECT_EQ(fi_->DeleteDir(Path("d")), dead);
  EXPECT_EQ(w->Append("x"), dead);
  EXPECT_EQ(w->Flush(), dead);
  EXPECT_EQ(w->Sync(), dead);
  EXPECT_EQ(w->Allocate(0, 100), dead);
  EXPECT_EQ(w->Close(), dead);
  EXPECT_EQ(seq->Read(1, &result, scratch), dead);
  EXPECT_EQ(seq->Skip(1), dead);
  EXPECT_EQ(ra->Read(0, 1, &result, scratch), dead);
  EXPECT_GT(fi_->NowMicros(), 0u);
  EXPECT_EQ(Contents("a"), "abc");

  fi_->SetFilesystemActive(true);
  EXPECT_TRUE(fi_->IsFilesystemActive());
  EXPECT_OK(w->Append("x"));
  EXPECT_OK(w->Close());
  EXPECT_TRUE(fi_->FileExists(Path("a")));
}

TEST_P(FaultInjectionEnvTest, CrashReactivatesAndClearsInjections) {
  WriteFile("a", "abc", "");
  fi_->SetFilesystemActive(false);
  fi_->InjectError(kOpAll, absl::InternalError("x"), "", 0, -1);
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_TRUE(fi_->IsFilesystemActive());
  EXPECT_EQ(fi_->CrashCount(), 1u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewAppendableFile(Path("a")));
  EXPECT_OK(file->Append("def"));
  EXPECT_OK(file->Sync());
}

// ---- Handles across a crash. ----

TEST_P(FaultInjectionEnvTest, StaleWritableHandleFailsAfterCrash) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewWritableFile(Path("a")));
  ASSERT_OK(fi_->SyncDir(root_));
  ASSERT_OK(file->Append("abc"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Append("buffered, never flushed"));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));

  const auto stale =
      StatusIs(absl::StatusCode::kFailedPrecondition,
               HasSubstr("stale handle from before SimulateCrash"));
  EXPECT_THAT(file->Append("more"), stale);
  EXPECT_THAT(file->Flush(), stale);
  EXPECT_THAT(file->Sync(), stale);
  EXPECT_THAT(file->Allocate(0, 10), stale);
  EXPECT_THAT(file->Close(), stale);
  file.reset();  // destroying it must not flush into the post-crash file
  EXPECT_EQ(Contents("a"), "abc");

  ASSERT_OK_AND_ASSIGN(file, fi_->NewAppendableFile(Path("a")));
  ASSERT_OK(file->Append("def"));
  ASSERT_OK(file->Close());
  EXPECT_EQ(Contents("a"), "abcdef");
}

TEST_P(FaultInjectionEnvTest, StaleReadHandlesFailAfterCrash) {
  WriteFile("a", "abcdef", "");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SequentialFile> seq,
                       fi_->NewSequentialFile(Path("a")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RandomAccessFile> ra,
                       fi_->NewRandomAccessFile(Path("a")));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kTornTail, 1));
  char scratch[8];
  absl::string_view result;
  EXPECT_THAT(seq->Read(2, &result, scratch),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(seq->Skip(1), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(ra->Read(0, 2, &result, scratch),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_P(FaultInjectionEnvTest, CrashReleasesLocks) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<FileLock> old_lock,
                       fi_->LockFile(Path("LOCK")));
  EXPECT_THAT(fi_->LockFile(Path("LOCK")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  // A power loss releases every lock: the "restarted" process can take it.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<FileLock> new_lock,
                       fi_->LockFile(Path("LOCK")));
  // The dead process's lock cannot release the new holder's lock.
  EXPECT_THAT(fi_->UnlockFile(std::move(old_lock)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(fi_->LockFile(Path("LOCK")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_OK(fi_->UnlockFile(std::move(new_lock)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<FileLock> again,
                       fi_->LockFile(Path("LOCK")));
  again.reset();  // destroying a lock releases it too
  EXPECT_OK(fi_->LockFile(Path("LOCK")));
}

TEST_P(FaultInjectionEnvTest, TrackingRestartsAfterCrash) {
  WriteFile("a", "abc", "def");
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), IsEmpty());
  EXPECT_THAT(fi_->UnsyncedDirEntries(), IsEmpty());
  // Everything that survived is durable now; a second crash sees only new work.
  ASSERT_OK(fi_->RenameFile(Path("a"), Path("b")));
  WriteFile("c", "123", "456", /*sync_dir=*/false);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewAppendableFile(Path("b")));
  ASSERT_OK(file->Append("ghi"));
  ASSERT_OK(file->Flush());
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 2));
  EXPECT_THAT(Snapshot(), ElementsAre(std::pair<const std::string, std::string>(
                              "a", "abc")));
  EXPECT_EQ(fi_->CrashCount(), 2u);
}

// ---- Overwrites in place (ReopenWritableFile). ----

// `data` with `patch` written over it at `offset` (extending it if needed).
std::string Patched(std::string data, size_t offset, absl::string_view patch) {
  if (data.size() < offset + patch.size()) data.resize(offset + patch.size());
  data.replace(offset, patch.size(), patch.data(), patch.size());
  return data;
}

TEST_P(FaultInjectionEnvTest, PreallocatedOverwriteDropUnsyncedRevertsToZeros) {
  const std::string zeros(8192, '\0');
  WriteBaseFile("a", zeros);  // preallocated, never seen by fi_: durable
  testutil::Random rnd(21);
  const std::string synced = rnd.RandomBytes(1000);
  const std::string unsynced = rnd.RandomBytes(3000);
  Overwrite("a", 0, synced, unsynced);
  EXPECT_THAT(fi_->SyncedSize(Path("a")), IsOkAndHolds(8192));
  EXPECT_THAT(fi_->AppendedSize(Path("a")), IsOkAndHolds(8192));
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), ElementsAre(Path("a")));
  const std::string durable = Patched(zeros, 0, synced);
  EXPECT_THAT(fi_->DurableContent(Path("a")), IsOkAndHolds(durable));
  EXPECT_EQ(Contents("a"), Patched(durable, 1000, unsynced));

  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  // The file keeps its preallocated size; the unsynced bytes are zeros again.
  EXPECT_EQ(Contents("a"), durable);
}

TEST_P(FaultInjectionEnvTest, PreallocatedOverwriteTornTailKeepsPrefixInOrder) {
  // 4096 preallocated zeros; 1000 synced bytes, then 4000 unsynced ones that
  // overwrite [1000, 4096) and extend the file to 5000.
  const std::string zeros(4096, '\0');
  testutil::Random rnd(22);
  const std::string synced = rnd.RandomBytes(1000);
  const std::string unsynced = rnd.RandomBytes(4000);
  std::set<size_t> kept_counts;
  bool reverted_below_durable_size = false, kept_beyond_it = false;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    ResetBase();
    WriteBaseFile("a", zeros);
    Overwrite("a", 0, synced, unsynced);
    EXPECT_THAT(fi_->SyncedSize(Path("a")), IsOkAndHolds(4096));
    EXPECT_THAT(fi_->AppendedSize(Path("a")), IsOkAndHolds(5000));
    ASSERT_OK(fi_->SimulateCrash(CrashMode::kTornTail, seed));
    std::optional<std::string> got = Contents("a");
    ASSERT_TRUE(got.has_value());
    ASSERT_GE(got->size(), 4096u) << "seed " << seed;
    // Some k: the first k unsynced bytes survive, the rest is reverted (zeros
    // below 4096, cut beyond).
    size_t k = got->size() - 1000;
    if (got->size() == 4096) {
      k = 0;
      while (k < 3096 && (*got)[1000 + k] == unsynced[k]) ++k;
    }
    const std::string expected =
        Patched(Patched(zeros, 0, synced), 1000, unsynced.substr(0, k));
    EXPECT_EQ(*got, expected) << "seed " << seed << " k " << k;
    kept_counts.insert(k);
    if (k < 3096) reverted_below_durable_size = true;
    if (k > 3096) kept_beyond_it = true;
  }
  EXPECT_GE(kept_counts.size(), 20u);
  EXPECT_TRUE(reverted_below_durable_size);
  EXPECT_TRUE(kept_beyond_it);
}

// kTornSectors over a file of 4096 durable bytes `old` (zeros: preallocated;
// random: a recycled segment), overwritten with 700 synced bytes then 4600
// unsynced ones, which run 1204 bytes past the old end.
TEST_P(FaultInjectionEnvTest, TornSectorsOverwriteKeepsRevertsOrGarbles) {
  testutil::Random rnd(23);
  const std::string written = rnd.RandomBytes(5300);
  constexpr size_t kSynced = 700;
  constexpr size_t kDurable = 4096;
  for (const std::string& old :
       {std::string(kDurable, '\0'), rnd.RandomBytes(kDurable)}) {
    SCOPED_TRACE(old[0] == '\0' && old[1] == '\0' ? "preallocated"
                                                  : "recycled");
    // What reverting gives: the old bytes below kDurable, zeros beyond.
    const std::string reverted = old + std::string(5300 - kDurable, '\0');
    uint64_t kept = 0, reverted_count = 0, garbled = 0;
    int reverted_below_durable = 0, later_kept_after_lost = 0, cut = 0;
    for (uint64_t seed = 0; seed < 60; ++seed) {
      ResetBase();
      WriteBaseFile("a", old);
      Overwrite("a", 0, absl::string_view(written).substr(0, kSynced),
                absl::string_view(written).substr(kSynced));
      ASSERT_OK(fi_->SimulateCrash(CrashMode::kTornSectors, seed));
      const FaultInjectionEnv::TornSectorCounts counts =
          fi_->LastCrashTornSectors();
      // Sectors 1 (partly) to 10 hold unsynced bytes.
      EXPECT_EQ(counts.kept + counts.reverted + counts.garbled, 10u);
      std::optional<std::string> got = Contents("a");
      ASSERT_TRUE(got.has_value());
      // Never cut below the durable size; a cut lands on a sector boundary.
      ASSERT_GE(got->size(), kDurable) << "seed " << seed;
      ASSERT_LE(got->size(), written.size()) << "seed " << seed;
      if (got->size() != written.size()) {
        ++cut;
        EXPECT_EQ(got->size() % 512, 0u) << "seed " << seed;
      }
      EXPECT_EQ(got->substr(0, kSynced), written.substr(0, kSynced))
          << "seed " << seed;
      uint64_t seen_kept = 0;
      bool lost_before = false;
      std::string last_kind;
      for (size_t sector = 512; sector < got->size(); sector += 512) {
        const size_t begin = std::max(sector, kSynced);
        const size_t end = std::min(sector + 512, got->size());
        const std::string now = got->substr(begin, end - begin);
        if (now == written.substr(begin, end - begin)) {
          ++kept, ++seen_kept;
          last_kind = "kept";
          if (lost_before) ++later_kept_after_lost;
        } else if (now == reverted.substr(begin, end - begin)) {
          ++reverted_count;
          last_kind = "reverted";
          lost_before = true;
          if (end <= kDurable) ++reverted_below_durable;
        } else {
          ++garbled;
          last_kind = "garbled";
          lost_before = true;
        }
      }
      // A cut drops only reverted or garbled sectors, never a kept one.
      EXPECT_EQ(seen_kept, counts.kept) << "seed " << seed;
      if (got->size() > kDurable && got->size() != written.size()) {
        EXPECT_EQ(last_kind, "kept") << "seed " << seed;
      }
    }
    EXPECT_GT(kept, 0u);
    EXPECT_GT(reverted_count, 0u);
    EXPECT_GT(garbled, 0u);
    EXPECT_GT(reverted_below_durable, 0);
    EXPECT_GT(later_kept_after_lost, 0);
    EXPECT_GT(cut, 0);
  }
}

TEST_P(FaultInjectionEnvTest, TornSectorsGarbageIsNeverTheNewOrOldBytes) {
  // One-byte overwrites, one per sector: a random garbage byte would equal the
  // new or the old byte about once in 128 garbled sectors. A sector's bytes
  // must tell what the crash did to it.
  constexpr size_t kSectors = 64;
  const std::string old = testutil::Random(24).RandomBytes(kSectors * 512);
  uint64_t garbled = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    ResetBase();
    WriteFile("a", old, "");
    std::string written = old;
    for (size_t i = 0; i < kSectors; ++i) {
      const size_t at = i * 512 + (i * 37) % 512;
      written[at] = static_cast<char>(old[at] + 1 + i % 3);
      Overwrite("a", at, "", written.substr(at, 1));
    }
    ASSERT_OK(fi_->SimulateCrash(CrashMode::kTornSectors, seed));
    const FaultInjectionEnv::TornSectorCounts counts =
        fi_->LastCrashTornSectors();
    std::optional<std::string> got = Contents("a");
    ASSERT_TRUE(got.has_value());
    ASSERT_EQ(got->size(), old.size()) << "seed " << seed;
    uint64_t now_new = 0, now_old = 0, now_other = 0;
    for (size_t i = 0; i < got->size(); ++i) {
      if (written[i] == old[i]) {
        ASSERT_EQ((*got)[i], old[i]) << "durable byte " << i << " changed";
      } else if ((*got)[i] == written[i]) {
        ++now_new;
      } else if ((*got)[i] == old[i]) {
        ++now_old;
      } else {
        ++now_other;
      }
    }
    EXPECT_EQ(now_new, counts.kept) << "seed " << seed;
    EXPECT_EQ(now_old, counts.reverted) << "seed " << seed;
    EXPECT_EQ(now_other, counts.garbled) << "seed " << seed;
    garbled += counts.garbled;
  }
  EXPECT_GT(garbled, 1000u);  // enough draws to catch a collision
}

TEST_P(FaultInjectionEnvTest, SyncedOverwriteSurvivesEveryMode) {
  testutil::Random rnd(25);
  const std::string old = rnd.RandomBytes(3000);
  const std::string written = rnd.RandomBytes(2500);  // [1000, 3500)
  const std::string expected = Patched(old, 1000, written);
  for (CrashMode mode : kAllCrashModes) {
    for (uint64_t seed = 0; seed < 10; ++seed) {
      ResetBase();
      WriteFile("a", old, "");
      Overwrite("a", 1000, written, "");
      EXPECT_THAT(fi_->FilesWithUnsyncedData(), IsEmpty());
      EXPECT_THAT(fi_->SyncedSize(Path("a")), IsOkAndHolds(3500));
      ASSERT_OK(fi_->SimulateCrash(mode, seed));
      EXPECT_EQ(Contents("a"), expected)
          << "mode " << static_cast<int>(mode) << " seed " << seed;
    }
  }
}

TEST_P(FaultInjectionEnvTest, RecycledOverwriteRevertsToOldBytes) {
  testutil::Random rnd(26);
  const std::string old = rnd.RandomBytes(5000);
  WriteFile("a", old, "");
  const std::string first = rnd.RandomBytes(1200);
  const std::string second = rnd.RandomBytes(1800);
  // Two writes over the same durable bytes: the pre-image is the durable one,
  // not what the first write left.
  Overwrite("a", 0, "", first);
  Overwrite("a", 600, "", second);
  EXPECT_THAT(fi_->DurableContent(Path("a")), IsOkAndHolds(old));
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), ElementsAre(Path("a")));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), old);
}

TEST_P(FaultInjectionEnvTest, OverwriteOfUnsyncedBytesIsNotSaved) {
  // 100 synced bytes and 100 unsynced ones; an overwrite of [50, 150) only
  // has a durable pre-image for [50, 100).
  testutil::Random rnd(27);
  const std::string synced = rnd.RandomBytes(100);
  WriteFile("a", synced, rnd.RandomBytes(100));
  Overwrite("a", 50, "", rnd.RandomBytes(100));
  EXPECT_THAT(fi_->SyncedSize(Path("a")), IsOkAndHolds(100));
  EXPECT_THAT(fi_->AppendedSize(Path("a")), IsOkAndHolds(200));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), synced);
}

// ReopenWritableFileWithOptions (the WAL's direct-I/O spares) is tracked
// like ReopenWritableFile. The options reach the base: the POSIX Env really
// opens O_DIRECT (whole blocks are written here, so it pads nothing), MemEnv
// ignores them.
TEST_P(FaultInjectionEnvTest, ReopenWithDirectIoIsTrackedLikeReopen) {
  constexpr size_t kB = 4096;
  testutil::Random rnd(28);
  const std::string old = rnd.RandomBytes(3 * kB);
  WriteFile("a", old, "");
  FileOptions direct;
  direct.use_direct_io = true;
  fi_->InjectError(kOpOpen, absl::UnavailableError("injected"), "a");
  EXPECT_THAT(fi_->ReopenWritableFileWithOptions(Path("a"), kB, direct),
              StatusIs(absl::StatusCode::kUnavailable, "injected"));
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      fi_->ReopenWritableFileWithOptions(Path("a"), kB, direct);
  if (absl::IsInvalidArgument(file.status())) {
    GTEST_SKIP() << "file system refuses O_DIRECT: " << file.status();
  }
  ASSERT_OK(file.status());
  const std::string synced = rnd.RandomBytes(kB);
  const std::string unsynced = rnd.RandomBytes(kB);
  ASSERT_OK((*file)->Append(synced));
  ASSERT_OK((*file)->Sync());
  ASSERT_OK((*file)->Append(unsynced));
  ASSERT_OK((*file)->Close());
  const std::string durable = Patched(old, kB, synced);
  EXPECT_THAT(fi_->DurableContent(Path("a")), IsOkAndHolds(durable));
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), ElementsAre(Path("a")));
  EXPECT_EQ(Contents("a"), Patched(durable, 2 * kB, unsynced));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), durable);  // the pre-image of block 2 is back
}

TEST_P(FaultInjectionEnvTest, OverwriteCrashIsDeterministic) {
  testutil::Random rnd(28);
  const std::string old = rnd.RandomBytes(6000);
  const std::string synced = rnd.RandomBytes(500);
  const std::string unsynced = rnd.RandomBytes(7000);
  auto crash = [&](CrashMode mode, uint64_t seed) {
    ResetBase();
    WriteFile("a", old, "");
    Overwrite("a", 300, synced, unsynced);
    EXPECT_OK(fi_->SimulateCrash(mode, seed));
    return Contents("a").value_or("<missing>");
  };
  for (CrashMode mode : {CrashMode::kTornTail, CrashMode::kTornSectors}) {
    std::set<std::string> outcomes;
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      const std::string first = crash(mode, seed);
      EXPECT_EQ(crash(mode, seed), first)
          << "mode " << static_cast<int>(mode) << " seed " << seed;
      outcomes.insert(first);
    }
    EXPECT_GE(outcomes.size(), 3u) << "mode " << static_cast<int>(mode);
  }
}

TEST_P(FaultInjectionEnvTest, ReopenedHandleGoesThroughInjection) {
  const std::string old = "0123456789abcdef";
  WriteFile("a", old, "");
  EXPECT_THAT(fi_->ReopenWritableFile(Path("missing"), 0).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fi_->ReopenWritableFile(Path("a"), 17).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const uint64_t opens = fi_->OpCount(kOpOpen);
  fi_->InjectError(kOpOpen, absl::ResourceExhaustedError("open"), "a");
  EXPECT_THAT(fi_->ReopenWritableFile(Path("a"), 0).status(),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(fi_->OpCount(kOpOpen), opens + 1);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->ReopenWritableFile(Path("a"), 4));
  // A failed Append neither writes nor takes a pre-image.
  fi_->InjectError(kOpAppend, absl::ResourceExhaustedError("disk full"));
  EXPECT_THAT(file->Append("XYZ"),
              StatusIs(absl::StatusCode::kResourceExhausted, "disk full"));
  EXPECT_EQ(file->Size(), 4u);
  EXPECT_EQ(Contents("a"), old);
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), IsEmpty());
  EXPECT_THAT(fi_->AppendedSize(Path("a")), IsOkAndHolds(16));

  // A failed Sync keeps the overwrite unsynced.
  ASSERT_OK(file->Append("XYZ"));
  fi_->InjectError(kOpSync, absl::DataLossError("EIO"));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK(file->Flush());
  EXPECT_EQ(Contents("a"), "0123XYZ789abcdef");
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), ElementsAre(Path("a")));
  EXPECT_THAT(fi_->DurableContent(Path("a")), IsOkAndHolds(old));

  fi_->SetFilesystemActive(false);
  EXPECT_THAT(file->Append("Q"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(fi_->ReopenWritableFile(Path("a"), 0).status(),
              StatusIs(absl::StatusCode::kUnavailable));
  fi_->SetFilesystemActive(true);

  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), old);
  EXPECT_THAT(file->Append("Q"), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          HasSubstr("stale handle")));
  file.reset();
  EXPECT_EQ(Contents("a"), old);
}

TEST_P(FaultInjectionEnvTest, RenameAfterOverwriteKeepsPreimages) {
  testutil::Random rnd(29);
  const std::string old = rnd.RandomBytes(2000);
  const std::string unsynced = rnd.RandomBytes(700);
  // Durable rename: the pre-images follow the file to its new name.
  WriteFile("a", old, "");
  Overwrite("a", 100, "", unsynced);
  ASSERT_OK(fi_->RenameFile(Path("a"), Path("b")));
  ASSERT_OK(fi_->SyncDir(root_));
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), ElementsAre(Path("b")));
  EXPECT_THAT(fi_->DurableContent(Path("b")), IsOkAndHolds(old));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), std::nullopt);
  EXPECT_EQ(Contents("b"), old);

  // Undone rename: the old name comes back with the content after the crash
  // step, and the file the rename replaced comes back with its durable bytes.
  ResetBase();
  const std::string replaced = rnd.RandomBytes(300);
  WriteFile("a", old, "");
  WriteFile("b", replaced, "");
  Overwrite("a", 100, "", unsynced);
  ASSERT_OK(fi_->RenameFile(Path("a"), Path("b")));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), old);
  EXPECT_EQ(Contents("b"), replaced);
}

TEST_P(FaultInjectionEnvTest, UndoneDeleteAfterOverwriteRestoresDurableBytes) {
  testutil::Random rnd(30);
  const std::string old = rnd.RandomBytes(1500);
  WriteFile("a", old, "");
  Overwrite("a", 0, "", rnd.RandomBytes(1000));
  ASSERT_OK(fi_->DeleteFile(Path("a")));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kTornSectors, 1));
  EXPECT_EQ(Contents("a"), old);
}

TEST_P(FaultInjectionEnvTest,
       RenameOverOverwrittenFileRestoresItsDurableBytes) {
  testutil::Random rnd(31);
  const std::string old = rnd.RandomBytes(1500);
  WriteFile("a", old, "");
  WriteFile("b", "other", "");
  Overwrite("a", 200, "", rnd.RandomBytes(900));
  ASSERT_OK(fi_->RenameFile(Path("b"), Path("a")));  // replaces "a"
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), old);
  EXPECT_EQ(Contents("b"), "other");
}

TEST_P(FaultInjectionEnvTest,
       NewWritableFileOverOverwrittenFileDropsPreimages) {
  testutil::Random rnd(32);
  WriteFile("a", rnd.RandomBytes(1000), "");
  Overwrite("a", 0, "", rnd.RandomBytes(400));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewWritableFile(Path("a")));
  ASSERT_OK(file->Append("fresh"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Close());
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), IsEmpty());
  for (CrashMode mode : kAllCrashModes) {
    ASSERT_OK(fi_->SimulateCrash(mode, 1));
    EXPECT_EQ(Contents("a"), "fresh") << "mode " << static_cast<int>(mode);
  }
}

TEST_P(FaultInjectionEnvTest, TruncateCutsPreimagesWithTheFile) {
  testutil::Random rnd(33);
  const std::string old = rnd.RandomBytes(1000);
  WriteFile("a", old, "");
  Overwrite("a", 0, "", rnd.RandomBytes(600));
  ASSERT_OK(fi_->TruncateFile(Path("a"), 300));
  EXPECT_THAT(fi_->SyncedSize(Path("a")), IsOkAndHolds(300));
  EXPECT_THAT(fi_->DurableContent(Path("a")), IsOkAndHolds(old.substr(0, 300)));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), old.substr(0, 300));
}

TEST_P(FaultInjectionEnvTest, SyncThroughAnyHandleMakesOverwritesDurable) {
  testutil::Random rnd(34);
  const std::string old = rnd.RandomBytes(1000);
  const std::string written = rnd.RandomBytes(300);
  WriteFile("a", old, "");
  Overwrite("a", 0, "", written);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> appender,
                       fi_->NewAppendableFile(Path("a")));
  ASSERT_OK(appender->Append("tail"));
  ASSERT_OK(appender->Sync());  // fdatasync covers the whole file
  ASSERT_OK(appender->Close());
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), IsEmpty());
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), Patched(old, 0, written) + "tail");
}

// ---- Introspection and forwarding. ----

TEST_P(FaultInjectionEnvTest, OpCountCountsCallsIncludingFailures) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> file,
                       fi_->NewWritableFile(Path("a")));
  ASSERT_OK(file->Append("1"));
  ASSERT_OK(file->Append("2"));
  ASSERT_OK(file->Sync());
  fi_->InjectError(kOpSync, absl::InternalError("x"));
  EXPECT_FALSE(file->Sync().ok());
  ASSERT_OK(fi_->SyncDir(root_));
  EXPECT_EQ(fi_->OpCount(kOpOpen), 1u);
  EXPECT_EQ(fi_->OpCount(kOpAppend), 2u);
  EXPECT_EQ(fi_->OpCount(kOpSync), 2u);
  EXPECT_EQ(fi_->OpCount(kOpSyncDir), 1u);
  EXPECT_EQ(fi_->OpCount(kOpSync | kOpAppend), 4u);
  EXPECT_EQ(fi_->OpCount(kOpAll), 6u);
}

TEST_P(FaultInjectionEnvTest, AccessorsReportUnsyncedState) {
  WriteFile("a", "abc", "", /*sync_dir=*/true);
  WriteFile("b", "abc", "def", /*sync_dir=*/false);
  EXPECT_THAT(fi_->FilesWithUnsyncedData(), ElementsAre(Path("b")));
  EXPECT_THAT(fi_->UnsyncedDirEntries(), ElementsAre(Path("b")));
  EXPECT_THAT(fi_->SyncedSize(Path("b")), IsOkAndHolds(3));
  EXPECT_THAT(fi_->AppendedSize(Path("b")), IsOkAndHolds(6));
  EXPECT_THAT(fi_->SyncedSize(Path("missing")),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(fi_->SyncDir(root_));
  EXPECT_THAT(fi_->UnsyncedDirEntries(), IsEmpty());
  EXPECT_EQ(fi_->base(), base_);
}

TEST_P(FaultInjectionEnvTest, ForwardsExtraVirtuals) {
  EXPECT_GT(fi_->NowMicros(), 0u);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<WritableFile> file,
      fi_->NewWritableFileWithOptions(Path("a"), FileOptions()));
  ASSERT_OK(fi_->SyncDir(root_));
  ASSERT_OK(file->Allocate(0, 4096));
  EXPECT_EQ(file->Size(), 0u);
  ASSERT_OK(file->Append("abc"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Append("def"));
  ASSERT_OK(file->Close());
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_EQ(Contents("a"), "abc");

  ASSERT_OK(fi_->CreateDirIfMissing(Path("empty")));
  const absl::Status deleted = fi_->DeleteDir(Path("empty"));
  if (deleted.ok()) {
    EXPECT_FALSE(base_->FileExists(Path("empty")));
  } else {
    EXPECT_THAT(deleted, StatusIs(absl::StatusCode::kUnimplemented));
  }
}

TEST_P(FaultInjectionEnvTest, BaseErrorsPassThroughUnchanged) {
  const absl::Status direct = base_->DeleteFile(Path("missing"));
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(fi_->DeleteFile(Path("missing")), direct);
  EXPECT_EQ(fi_->NewSequentialFile(Path("missing")).status(),
            base_->NewSequentialFile(Path("missing")).status());
  EXPECT_EQ(fi_->RenameFile(Path("missing"), Path("b")),
            base_->RenameFile(Path("missing"), Path("b")));
}

// A base Env (over a MemEnv) whose NewWritableFileWithOptions creates the file
// and then fails, as the POSIX Env does when the file system refuses O_DIRECT.
class CreateThenFailEnv : public EnvWrapper {
 public:
  explicit CreateThenFailEnv(Env* mem) : EnvWrapper(mem) {}
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFileWithOptions(
      const std::string& path, const FileOptions& options) override {
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        target()->NewWritableFile(path);
    if (!file.ok()) return file.status();
    return absl::InvalidArgumentError("O_DIRECT refused");
  }
};

TEST(FaultInjectionEnvFailedOpenTest, FileCreatedByFailedOpenIsTracked) {
  std::unique_ptr<Env> mem = NewMemEnv();
  CreateThenFailEnv base(mem.get());
  FaultInjectionEnv fi(&base);
  FileOptions direct;
  direct.use_direct_io = true;
  EXPECT_THAT(fi.NewWritableFileWithOptions("/a", direct),
              StatusIs(absl::StatusCode::kInvalidArgument, "O_DIRECT refused"));
  EXPECT_TRUE(mem->FileExists("/a"));
  EXPECT_THAT(fi.UnsyncedDirEntries(), ElementsAre("/a"));
  ASSERT_OK(fi.SimulateCrash(CrashMode::kDropUnsynced, 1));
  EXPECT_FALSE(mem->FileExists("/a"));  // never made durable in "/"
}

// ---- Threads. ----

TEST_P(FaultInjectionEnvTest, ConcurrentAppendsAndSyncsAreSafe) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 200;
  std::vector<uint64_t> synced_bytes(kThreads, 0);
  std::vector<std::string> written(kThreads);
  std::atomic<bool> done{false};
  std::thread observer([&] {
    while (!done.load()) {
      EXPECT_OK(fi_->SyncDir(root_));
      fi_->FilesWithUnsyncedData();
      fi_->UnsyncedDirEntries();
      fi_->OpCount(kOpAll);
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      testutil::Random rnd(100 + t);
      absl::StatusOr<std::unique_ptr<WritableFile>> file =
          fi_->NewWritableFile(Path(absl::StrCat("t", t)));
      ASSERT_OK(file);
      for (int i = 0; i < kRounds; ++i) {
        const std::string data = rnd.RandomBytes(1 + rnd.Uniform(200));
        ASSERT_OK((*file)->Append(data));
        written[t] += data;
        if (i % 3 == 0) {
          ASSERT_OK((*file)->Sync());
          synced_bytes[t] = written[t].size();
        }
      }
      ASSERT_OK((*file)->Close());
    });
  }
  for (std::thread& w : writers) w.join();
  done = true;
  observer.join();
  ASSERT_OK(fi_->SyncDir(root_));
  for (int t = 0; t < kThreads; ++t) {
    const std::string path = Path(absl::StrCat("t", t));
    EXPECT_THAT(fi_->SyncedSize(path), IsOkAndHolds(synced_bytes[t]));
    EXPECT_THAT(fi_->AppendedSize(path), IsOkAndHolds(written[t].size()));
  }
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kDropUnsynced, 1));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(Contents(absl::StrCat("t", t)),
              written[t].substr(0, synced_bytes[t]));
  }
}

TEST_P(FaultInjectionEnvTest, CrashDuringConcurrentWritesIsSafe) {
  constexpr int kThreads = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> opened{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      const std::string path = Path(absl::StrCat("t", t));
      absl::StatusOr<std::unique_ptr<WritableFile>> file =
          fi_->NewWritableFile(path);
      ++opened;
      ASSERT_OK(file);
      while (!stop.load()) {
        absl::Status s = (*file)->Append("0123456789");
        if (s.ok()) s = (*file)->Sync();
        if (!s.ok()) {
          // The only way to fail here: the handle went stale in the crash.
          EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition));
          return;
        }
        std::this_thread::yield();
      }
    });
  }
  while (opened.load() < kThreads) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kTornSectors, 3));
  stop = true;
  for (std::thread& w : writers) w.join();
  // Nothing was dir-synced: every file vanished, and no stale handle wrote.
  EXPECT_THAT(Snapshot(), IsEmpty());
}

TEST_P(FaultInjectionEnvTest, CrashDuringConcurrentOverwritesIsSafe) {
  constexpr int kThreads = 4;
  constexpr size_t kFileSize = 64 << 10;
  for (int t = 0; t < kThreads; ++t) {
    WriteBaseFile(absl::StrCat("t", t), std::string(kFileSize, '\0'));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> opened{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      absl::StatusOr<std::unique_ptr<WritableFile>> file =
          fi_->ReopenWritableFile(Path(absl::StrCat("t", t)), 0);
      ++opened;
      ASSERT_OK(file);
      // Stays below kFileSize: 10 bytes per round.
      for (int round = 0; round < 6000 && !stop.load(); ++round) {
        absl::Status s = (*file)->Append("0123456789");
        if (s.ok() && round % 2 == 0) s = (*file)->Sync();
        if (!s.ok()) {
          // The only way to fail here: the handle went stale in the crash.
          EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition));
          return;
        }
        std::this_thread::yield();
      }
    });
  }
  while (opened.load() < kThreads) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_OK(fi_->SimulateCrash(CrashMode::kTornSectors, 3));
  stop = true;
  for (std::thread& w : writers) w.join();
  // Preallocated files keep their size whatever the crash tore.
  for (int t = 0; t < kThreads; ++t) {
    std::optional<std::string> got = Contents(absl::StrCat("t", t));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->size(), kFileSize);
  }
}

}  // namespace
}  // namespace segwal
