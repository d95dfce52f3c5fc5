// The Env conformance suite: every test in EnvTest runs against each Env in
// AllEnvs() (POSIX in a temp dir, POSIX with io_uring files, MemEnv, and
// FaultInjectionEnv over POSIX and MemEnv), so they all keep the same
// observable behaviour. Then: MemEnv against POSIX on the same script of
// mistakes (same codes, same messages), POSIX-only behaviour (errno mapping,
// buffering, locks across processes, direct I/O, io_uring and its fallback,
// poisoning), the defaults of Env's optional virtuals, and MemEnv-only
// promises.

#include "env/env.h"
#include "env/env_wrapper.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "env/posix_env.h"
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

// ---- Helpers. ----

absl::Status WriteStringToFile(Env* env, const std::string& path,
                               absl::string_view data) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env->NewWritableFile(path);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Append(data); !s.ok()) return s;
  return (*file)->Close();
}

// Reads the whole file through a SequentialFile, in `chunk`-byte reads.
absl::StatusOr<std::string> ReadFileToString(Env* env, const std::string& path,
                                             size_t chunk = 8192) {
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  std::string out;
  std::vector<char> scratch(chunk);
  for (;;) {
    absl::string_view piece;
    if (absl::Status s = (*file)->Read(chunk, &piece, scratch.data());
        !s.ok()) {
      return s;
    }
    if (piece.empty()) return out;
    out.append(piece.data(), piece.size());
  }
}

std::string ReadAt(const RandomAccessFile& file, uint64_t offset, size_t n) {
  std::string scratch(n, '\0');
  absl::string_view result;
  absl::Status s = file.Read(offset, n, &result, scratch.data());
  if (!s.ok()) return "<error: " + s.ToString() + ">";
  return std::string(result);
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// ---- The Envs under test. ----

// One Env under test and an existing, empty directory to work in.
class TestEnv {
 public:
  virtual ~TestEnv() = default;
  Env* env() const { return env_; }
  const std::string& root() const { return root_; }

 protected:
  Env* env_ = nullptr;
  std::string root_;
};

class PosixTestEnv : public TestEnv {
 public:
  PosixTestEnv() {
    env_ = Env::Default();
    root_ = dir_.path();
  }

 private:
  testutil::TempDir dir_;
};

class MemTestEnv : public TestEnv {
 public:
  MemTestEnv() : mem_(NewMemEnv()) {
    env_ = mem_.get();
    root_ = "/test";
    env_->CreateDirIfMissing(root_).IgnoreError();  // checked by every test
  }

 private:
  std::unique_ptr<Env> mem_;
};

// The POSIX Env with every writable file opened with FileOptions::use_io_uring
// (an io_uring file where the kernel allows it, else the fallback), so the
// whole suite covers that path too.
class PosixIoUringEnv final : public EnvWrapper {
 public:
  PosixIoUringEnv() : EnvWrapper(Env::Default()) {}
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& p) override {
    return NewWritableFileWithOptions(p, FileOptions());
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFileWithOptions(
      const std::string& p, const FileOptions& options) override {
    return target()->NewWritableFileWithOptions(p, WithUring(options));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& p, uint64_t offset) override {
    return ReopenWritableFileWithOptions(p, offset, FileOptions());
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFileWithOptions(
      const std::string& p, uint64_t offset,
      const FileOptions& options) override {
    return target()->ReopenWritableFileWithOptions(p, offset,
                                                   WithUring(options));
  }

 private:
  static FileOptions WithUring(FileOptions options) {
    options.use_io_uring = true;
    return options;
  }
};

class PosixIoUringTestEnv : public TestEnv {
 public:
  PosixIoUringTestEnv() {
    env_ = &uring_;
    root_ = dir_.path();
  }

 private:
  PosixIoUringEnv uring_;
  testutil::TempDir dir_;
};

// A FaultInjectionEnv over Base's Env; nothing is ever crashed or failed, so it
// must behave exactly like its base.
template <typename Base>
class FaultTestEnv : public Base {
 public:
  FaultTestEnv() : fault_(this->env_) { this->env_ = &fault_; }

 private:
  FaultInjectionEnv fault_;
};

struct EnvFactory {
  std::string name;
  std::function<std::unique_ptr<TestEnv>()> make;
};

template <typename T>
EnvFactory Factory(std::string name) {
  return {std::move(name), [] { return std::unique_ptr<TestEnv>(new T); }};
}

// Adding an Env to the conformance suite is one line here.
std::vector<EnvFactory> AllEnvs() {
  return {
      Factory<PosixTestEnv>("Posix"),
      Factory<PosixIoUringTestEnv>("PosixIoUring"),
      Factory<MemTestEnv>("Mem"),
      Factory<FaultTestEnv<PosixTestEnv>>("FaultInjectionOverPosix"),
      Factory<FaultTestEnv<MemTestEnv>>("FaultInjectionOverMem"),
  };
}

class EnvTest : public testing::TestWithParam<EnvFactory> {
 protected:
  void SetUp() override {
    test_env_ = GetParam().make();
    env_ = test_env_->env();
    ASSERT_THAT(env_->GetChildren(test_env_->root()), IsOkAndHolds(IsEmpty()));
  }
  std::string Path(const std::string& name) const {
    return test_env_->root() + "/" + name;
  }

  std::unique_ptr<TestEnv> test_env_;
  Env* env_ = nullptr;
};

// ---- Writing and reading. ----

TEST_P(EnvTest, AppendThenReadBack) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
  ASSERT_OK(file->Append("hello "));
  ASSERT_OK(file->Append("world"));
  ASSERT_OK(file->Append(""));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("hello world"));
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(11u));
  EXPECT_TRUE(env_->FileExists(path));
}

TEST_P(EnvTest, EmptyFileReadsAsEmpty) {
  const std::string path = Path("empty");
  ASSERT_OK(WriteStringToFile(env_, path, ""));
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(""));
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(0u));
}

TEST_P(EnvTest, NewWritableFileTruncates) {
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, "old contents"));
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
  EXPECT_EQ(file->Size(), 0u);
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(0u));
  ASSERT_OK(file->Append("new"));
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("new"));
}

TEST_P(EnvTest, AppendableFileKeepsContent) {
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, "abc"));
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewAppendableFile(path));
  EXPECT_EQ(file->Size(), 3u);
  ASSERT_OK(file->Append("def"));
  EXPECT_EQ(file->Size(), 6u);
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("abcdef"));
}

TEST_P(EnvTest, AppendableFileCreatesMissingFile) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewAppendableFile(path));
  EXPECT_EQ(file->Size(), 0u);
  EXPECT_TRUE(env_->FileExists(path));
  ASSERT_OK(file->Append("x"));
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("x"));
}

TEST_P(EnvTest, ReopenWritableFileOverwritesInPlace) {
  const std::string path = Path("f");
  auto missing = env_->ReopenWritableFile(Path("missing"), 0);
  if (absl::IsUnimplemented(missing.status())) {
    GTEST_SKIP() << "this Env cannot overwrite in place";
  }
  EXPECT_THAT(missing.status(), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(WriteStringToFile(env_, path, "0123456789"));
  EXPECT_THAT(env_->ReopenWritableFile(path, 11).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(auto file, env_->ReopenWritableFile(path, 3));
  EXPECT_EQ(file->Size(), 3u);
  ASSERT_OK(file->Append("ab"));
  EXPECT_EQ(file->Size(), 5u);
  ASSERT_OK(file->Sync());
  // Bytes past the write keep their contents; the size does not change.
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("012ab56789"));
  ASSERT_OK(file->Append("cdefghi"));  // runs past the old end
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("012abcdefghi"));
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(12u));
}

TEST_P(EnvTest, WithDefaultOptionsIsPlainWritableFile) {
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, "old contents"));
  ASSERT_OK_AND_ASSIGN(auto file,
                       env_->NewWritableFileWithOptions(path, FileOptions()));
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(0u));
  ASSERT_OK(file->Append("new"));
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("new"));
}

TEST_P(EnvTest, SizeCountsBufferedBytes) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
  ASSERT_OK(file->Append("0123456789"));
  EXPECT_EQ(file->Size(), 10u);  // whether or not it reached the file yet
  ASSERT_OK(file->Append(std::string(100, 'x')));
  EXPECT_EQ(file->Size(), 110u);
  ASSERT_OK(file->Flush());
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(110u));
  ASSERT_OK(file->Close());
}

// RangeSync only starts write-back: it changes no byte and no size, and a
// Sync after it still works.
TEST_P(EnvTest, RangeSyncIsOnlyAHint) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
  const std::string data(3 << 20, 'r');
  ASSERT_OK(file->Append(data));
  ASSERT_OK(file->Flush());
  EXPECT_OK(file->RangeSync(0, 1 << 20));
  EXPECT_OK(file->RangeSync(1 << 20, 0));
  EXPECT_EQ(file->Size(), data.size());
  ASSERT_OK(file->Append("tail"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(data + "tail"));
}

TEST_P(EnvTest, CloseMakesBufferedBytesVisible) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
  ASSERT_OK(file->Append("tail"));
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("tail"));
}

TEST_P(EnvTest, DestroyingWritableFileKeepsAppendedBytes) {
  const std::string path = Path("f");
  {
    ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
    ASSERT_OK(file->Append("unclosed"));
  }
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("unclosed"));
}

TEST_P(EnvTest, ClosedFileRejectsCalls) {
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(Path("f")));
  ASSERT_OK(file->Close());
  EXPECT_THAT(file->Append("x"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(file->Flush(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(file->Close(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_P(EnvTest, LargeAppendBiggerThanBuffer) {
  testutil::Random rnd(testutil::TestSeed(301));
  const std::string path = Path("f");
  const std::string head = rnd.RandomBytes(100);
  const std::string big = rnd.RandomBytes(3 * kPosixWritableBufferSize + 17);
  const std::string tail = rnd.RandomBytes(5);
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
  ASSERT_OK(file->Append(head));
  ASSERT_OK(file->Append(big));
  ASSERT_OK(file->Append(tail));
  EXPECT_EQ(file->Size(), head.size() + big.size() + tail.size());
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(head + big + tail));
}

TEST_P(EnvTest, RandomSizedAppendsAndFlushesRoundTrip) {
  const uint64_t seed = testutil::TestSeed(302);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  testutil::Random rnd(seed);
  const std::string path = Path("f");
  std::string expected;
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
  for (int i = 0; i < 200; ++i) {
    const std::string piece = rnd.RandomBytes(rnd.Skewed(17));  // < 128 KiB
    ASSERT_OK(file->Append(piece));
    expected += piece;
    if (rnd.OneIn(4)) {
      ASSERT_OK(file->Flush());
      ASSERT_THAT(env_->GetFileSize(path), IsOkAndHolds(expected.size()));
    }
  }
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path, 1000), IsOkAndHolds(expected));
}

TEST_P(EnvTest, AllocateDoesNotChangeSize) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
  ASSERT_OK(file->Allocate(0, 1 << 20));
  EXPECT_EQ(file->Size(), 0u);
  ASSERT_OK(file->Append("abc"));
  ASSERT_OK(file->Close());
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(3u));
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("abc"));
}

TEST_P(EnvTest, DirectIoRoundTripsOrIsRefused) {
  const std::string path = Path("direct");
  FileOptions options;
  options.use_direct_io = true;
  absl::StatusOr<std::unique_ptr<WritableFile>> opened =
      env_->NewWritableFileWithOptions(path, options);
  if (absl::IsInvalidArgument(opened.status()) ||
      absl::IsUnimplemented(opened.status())) {
    GTEST_SKIP() << "direct I/O refused here: " << opened.status();
  }
  ASSERT_OK(opened.status());
  std::unique_ptr<WritableFile> file = *std::move(opened);
  testutil::Random rnd(testutil::TestSeed(303));
  std::string expected;
  for (size_t n : {100, 5000, 1, 70000, 4096 - 1, 4096, 200000}) {
    const std::string piece = rnd.RandomBytes(n);
    ASSERT_OK(file->Append(piece));
    expected += piece;
    ASSERT_OK(file->Flush());
    ASSERT_EQ(file->Size(), expected.size());
    // The file may hold zero padding beyond Size() until Close.
    ASSERT_OK_AND_ASSIGN(std::string on_disk, ReadFileToString(env_, path));
    ASSERT_GE(on_disk.size(), expected.size());
    ASSERT_EQ(on_disk.substr(0, expected.size()), expected);
    ASSERT_EQ(on_disk.substr(expected.size()),
              std::string(on_disk.size() - expected.size(), '\0'));
  }
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Append("unflushed tail"));
  expected += "unflushed tail";
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(expected));
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(expected.size()));
}

// ---- Readers. ----

TEST_P(EnvTest, RandomAccessSeesLaterAppends) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto writer, env_->NewWritableFile(path));
  ASSERT_OK(writer->Append("abc"));
  ASSERT_OK(writer->Flush());
  ASSERT_OK_AND_ASSIGN(auto reader, env_->NewRandomAccessFile(path));
  EXPECT_EQ(ReadAt(*reader, 0, 10), "abc");
  ASSERT_OK(writer->Append("def"));
  ASSERT_OK(writer->Flush());
  EXPECT_EQ(ReadAt(*reader, 0, 10), "abcdef");
  EXPECT_EQ(ReadAt(*reader, 4, 10), "ef");
  ASSERT_OK(writer->Close());
}

TEST_P(EnvTest, RandomAccessReadsAtOffsets) {
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, "0123456789"));
  ASSERT_OK_AND_ASSIGN(auto reader, env_->NewRandomAccessFile(path));
  EXPECT_EQ(ReadAt(*reader, 0, 3), "012");
  EXPECT_EQ(ReadAt(*reader, 7, 3), "789");
  EXPECT_EQ(ReadAt(*reader, 8, 5), "89");  // short read at end of file
  EXPECT_EQ(ReadAt(*reader, 10, 5), "");
  EXPECT_EQ(ReadAt(*reader, 1000, 5), "");
  EXPECT_EQ(ReadAt(*reader, 3, 0), "");
}

TEST_P(EnvTest, SequentialReadsInChunks) {
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, "0123456789"));
  ASSERT_OK_AND_ASSIGN(auto reader, env_->NewSequentialFile(path));
  char scratch[4];
  absl::string_view piece;
  ASSERT_OK(reader->Read(4, &piece, scratch));
  EXPECT_EQ(piece, "0123");
  ASSERT_OK(reader->Read(4, &piece, scratch));
  EXPECT_EQ(piece, "4567");
  ASSERT_OK(reader->Read(4, &piece, scratch));
  EXPECT_EQ(piece, "89");
  ASSERT_OK(reader->Read(4, &piece, scratch));
  EXPECT_EQ(piece, "");
}

TEST_P(EnvTest, SequentialSkip) {
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, "0123456789"));
  ASSERT_OK_AND_ASSIGN(auto reader, env_->NewSequentialFile(path));
  char scratch[2];
  absl::string_view piece;
  ASSERT_OK(reader->Skip(3));
  ASSERT_OK(reader->Read(2, &piece, scratch));
  EXPECT_EQ(piece, "34");
  ASSERT_OK(reader->Skip(0));
  ASSERT_OK(reader->Read(2, &piece, scratch));
  EXPECT_EQ(piece, "56");
  ASSERT_OK(reader->Skip(1000));  // past the end: stops at end of file
  ASSERT_OK(reader->Read(2, &piece, scratch));
  EXPECT_EQ(piece, "");
}

TEST_P(EnvTest, OpenReaderKeepsBytesOfDeletedFile) {
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, "still here"));
  ASSERT_OK_AND_ASSIGN(auto reader, env_->NewRandomAccessFile(path));
  ASSERT_OK(env_->DeleteFile(path));
  EXPECT_EQ(ReadAt(*reader, 0, 100), "still here");
}

// ---- Names: missing files, delete, rename, truncate. ----

TEST_P(EnvTest, MissingFileIsNotFound) {
  const std::string path = Path("missing");
  EXPECT_FALSE(env_->FileExists(path));
  EXPECT_THAT(env_->NewSequentialFile(path),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
  EXPECT_THAT(env_->NewRandomAccessFile(path),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
  EXPECT_THAT(env_->GetFileSize(path),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
}

TEST_P(EnvTest, DeleteRemovesFile) {
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, "x"));
  ASSERT_OK(env_->DeleteFile(path));
  EXPECT_FALSE(env_->FileExists(path));
  EXPECT_THAT(env_->GetChildren(test_env_->root()), IsOkAndHolds(IsEmpty()));
}

TEST_P(EnvTest, DeleteMissingIsNotFound) {
  EXPECT_THAT(env_->DeleteFile(Path("missing")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(Path("missing"))));
}

TEST_P(EnvTest, RenameReplacesTarget) {
  ASSERT_OK(WriteStringToFile(env_, Path("new"), "new contents"));
  ASSERT_OK(WriteStringToFile(env_, Path("current"), "old contents"));
  ASSERT_OK(env_->RenameFile(Path("new"), Path("current")));
  EXPECT_FALSE(env_->FileExists(Path("new")));
  EXPECT_THAT(ReadFileToString(env_, Path("current")),
              IsOkAndHolds("new contents"));
  EXPECT_THAT(env_->GetChildren(test_env_->root()),
              IsOkAndHolds(ElementsAre("current")));
}

TEST_P(EnvTest, RenameToNewName) {
  ASSERT_OK(WriteStringToFile(env_, Path("a"), "contents"));
  ASSERT_OK(env_->RenameFile(Path("a"), Path("b")));
  EXPECT_FALSE(env_->FileExists(Path("a")));
  EXPECT_THAT(ReadFileToString(env_, Path("b")), IsOkAndHolds("contents"));
}

TEST_P(EnvTest, ReaderOfReplacedFileKeepsOldBytes) {
  ASSERT_OK(WriteStringToFile(env_, Path("a"), "new"));
  ASSERT_OK(WriteStringToFile(env_, Path("b"), "old"));
  ASSERT_OK_AND_ASSIGN(auto reader, env_->NewRandomAccessFile(Path("b")));
  ASSERT_OK(env_->RenameFile(Path("a"), Path("b")));
  EXPECT_EQ(ReadAt(*reader, 0, 10), "old");
}

TEST_P(EnvTest, RenameMissingIsNotFound) {
  EXPECT_THAT(env_->RenameFile(Path("missing"), Path("b")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(Path("missing"))));
}

TEST_P(EnvTest, RenameIntoMissingDirIsNotFound) {
  ASSERT_OK(WriteStringToFile(env_, Path("a"), "x"));
  EXPECT_THAT(env_->RenameFile(Path("a"), Path("nodir/b")),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(env_->FileExists(Path("a")));
}

TEST_P(EnvTest, RenameOntoItselfKeepsFile) {
  ASSERT_OK(WriteStringToFile(env_, Path("a"), "x"));
  ASSERT_OK(env_->RenameFile(Path("a"), Path("a")));
  EXPECT_THAT(ReadFileToString(env_, Path("a")), IsOkAndHolds("x"));
}

TEST_P(EnvTest, TruncateShrinksAndExtends) {
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, "0123456789"));
  ASSERT_OK(env_->TruncateFile(path, 4));
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("0123"));
  ASSERT_OK(env_->TruncateFile(path, 8));
  EXPECT_THAT(ReadFileToString(env_, path),
              IsOkAndHolds(std::string("0123\0\0\0\0", 8)));
  ASSERT_OK(env_->TruncateFile(path, 0));
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(0u));
}

TEST_P(EnvTest, TruncateMissingIsNotFound) {
  EXPECT_THAT(env_->TruncateFile(Path("missing"), 0),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(env_->FileExists(Path("missing")));
}

// ---- Directories. ----

TEST_P(EnvTest, GetChildrenListsNames) {
  ASSERT_OK(WriteStringToFile(env_, Path("b"), ""));
  ASSERT_OK(WriteStringToFile(env_, Path("a"), ""));
  ASSERT_OK(env_->CreateDirIfMissing(Path("sub")));
  ASSERT_OK(WriteStringToFile(env_, Path("sub/c"), ""));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names,
                       env_->GetChildren(test_env_->root()));
  EXPECT_THAT(Sorted(names), ElementsAre("a", "b", "sub"));
  EXPECT_THAT(env_->GetChildren(Path("sub")), IsOkAndHolds(ElementsAre("c")));
}

TEST_P(EnvTest, GetChildrenOfMissingDirIsNotFound) {
  EXPECT_THAT(env_->GetChildren(Path("missing")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(Path("missing"))));
}

TEST_P(EnvTest, GetChildrenOfFileFails) {
  ASSERT_OK(WriteStringToFile(env_, Path("f"), ""));
  EXPECT_THAT(env_->GetChildren(Path("f")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_P(EnvTest, CreateFileInMissingDirFails) {
  const std::string path = Path("missing/f");
  EXPECT_THAT(env_->NewWritableFile(path),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
  EXPECT_THAT(env_->NewAppendableFile(path),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
  EXPECT_FALSE(env_->FileExists(Path("missing")));
}

TEST_P(EnvTest, CreateFileUnderRegularFileFails) {
  ASSERT_OK(WriteStringToFile(env_, Path("f"), ""));
  EXPECT_THAT(env_->NewWritableFile(Path("f/g")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(Path("f/g"))));
}

TEST_P(EnvTest, OpenDirectoryAsFileFails) {
  ASSERT_OK(env_->CreateDirIfMissing(Path("d")));
  for (const auto& s : {env_->NewWritableFile(Path("d")).status(),
                        env_->NewAppendableFile(Path("d")).status(),
                        env_->NewSequentialFile(Path("d")).status(),
                        env_->NewRandomAccessFile(Path("d")).status(),
                        env_->GetFileSize(Path("d")).status(),
                        env_->DeleteFile(Path("d"))}) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition,
                            HasSubstr(Path("d"))));
  }
  EXPECT_TRUE(env_->FileExists(Path("d")));
}

TEST_P(EnvTest, CreateDirIfMissingIsIdempotent) {
  ASSERT_OK(env_->CreateDirIfMissing(Path("d")));
  ASSERT_OK(env_->CreateDirIfMissing(Path("d")));
  ASSERT_OK(env_->CreateDirIfMissing(Path("d") + "/"));
  EXPECT_TRUE(env_->FileExists(Path("d")));
  EXPECT_THAT(env_->GetChildren(Path("d")), IsOkAndHolds(IsEmpty()));
}

TEST_P(EnvTest, CreateDirNeedsParent) {
  EXPECT_THAT(env_->CreateDirIfMissing(Path("a/b")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(Path("a/b"))));
  EXPECT_FALSE(env_->FileExists(Path("a")));
}

TEST_P(EnvTest, CreateDirOverFileFails) {
  ASSERT_OK(WriteStringToFile(env_, Path("f"), "x"));
  EXPECT_THAT(env_->CreateDirIfMissing(Path("f")),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr(Path("f"))));
  EXPECT_THAT(ReadFileToString(env_, Path("f")), IsOkAndHolds("x"));
}

TEST_P(EnvTest, DeleteDirRemovesEmptyDir) {
  ASSERT_OK(env_->CreateDirIfMissing(Path("d")));
  ASSERT_OK(env_->DeleteDir(Path("d")));
  EXPECT_FALSE(env_->FileExists(Path("d")));
  EXPECT_THAT(env_->DeleteDir(Path("d")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(EnvTest, DeleteDirOfNonEmptyDirFails) {
  ASSERT_OK(env_->CreateDirIfMissing(Path("d")));
  ASSERT_OK(WriteStringToFile(env_, Path("d/f"), ""));
  EXPECT_THAT(env_->DeleteDir(Path("d")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(env_->FileExists(Path("d/f")));
}

TEST_P(EnvTest, SyncDirOfExistingDirSucceeds) {
  ASSERT_OK(WriteStringToFile(env_, Path("f"), ""));
  EXPECT_OK(env_->SyncDir(test_env_->root()));
}

TEST_P(EnvTest, SyncDirOfMissingDirIsNotFound) {
  EXPECT_THAT(env_->SyncDir(Path("missing")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(EnvTest, DuplicateSlashesNameTheSameFile) {
  ASSERT_OK(env_->CreateDirIfMissing(Path("d")));
  ASSERT_OK(WriteStringToFile(env_, test_env_->root() + "//d///f", "x"));
  EXPECT_THAT(ReadFileToString(env_, Path("d/f")), IsOkAndHolds("x"));
  EXPECT_THAT(env_->GetChildren(Path("d") + "/"),
              IsOkAndHolds(ElementsAre("f")));
}

// ---- Locks. ----

TEST_P(EnvTest, LockCreatesFile) {
  const std::string path = Path("LOCK");
  ASSERT_OK_AND_ASSIGN(auto lock, env_->LockFile(path));
  EXPECT_TRUE(env_->FileExists(path));
  EXPECT_OK(env_->UnlockFile(std::move(lock)));
}

TEST_P(EnvTest, LockKeepsExistingContent) {
  const std::string path = Path("LOCK");
  ASSERT_OK(WriteStringToFile(env_, path, "pid 42"));
  ASSERT_OK_AND_ASSIGN(auto lock, env_->LockFile(path));
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("pid 42"));
  EXPECT_OK(env_->UnlockFile(std::move(lock)));
}

TEST_P(EnvTest, SecondLockFails) {
  const std::string path = Path("LOCK");
  ASSERT_OK_AND_ASSIGN(auto lock, env_->LockFile(path));
  EXPECT_THAT(env_->LockFile(path),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(path)));
  EXPECT_OK(env_->UnlockFile(std::move(lock)));
}

TEST_P(EnvTest, UnlockThenRelock) {
  const std::string path = Path("LOCK");
  ASSERT_OK_AND_ASSIGN(auto lock, env_->LockFile(path));
  ASSERT_OK(env_->UnlockFile(std::move(lock)));
  ASSERT_OK_AND_ASSIGN(auto again, env_->LockFile(path));
  EXPECT_OK(env_->UnlockFile(std::move(again)));
}

TEST_P(EnvTest, DestroyingLockReleasesIt) {
  const std::string path = Path("LOCK");
  { ASSERT_OK_AND_ASSIGN(auto lock, env_->LockFile(path)); }
  ASSERT_OK_AND_ASSIGN(auto again, env_->LockFile(path));
  EXPECT_OK(env_->UnlockFile(std::move(again)));
}

TEST_P(EnvTest, LocksOfDifferentFilesAreIndependent) {
  ASSERT_OK_AND_ASSIGN(auto a, env_->LockFile(Path("a.lock")));
  ASSERT_OK_AND_ASSIGN(auto b, env_->LockFile(Path("b.lock")));
  EXPECT_OK(env_->UnlockFile(std::move(a)));
  EXPECT_OK(env_->UnlockFile(std::move(b)));
}

TEST_P(EnvTest, UnlockOfNullIsInvalidArgument) {
  EXPECT_THAT(env_->UnlockFile(nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(EnvTest, LockInMissingDirIsNotFound) {
  EXPECT_THAT(env_->LockFile(Path("missing/LOCK")),
              StatusIs(absl::StatusCode::kNotFound));
}

// ---- Threads and clock. ----

TEST_P(EnvTest, ConcurrentAppendsToDifferentFiles) {
  constexpr int kThreads = 8;
  constexpr int kRecords = 300;
  auto record = [](int t, int i) {
    return absl::StrCat("thread ", t, " record ", i, std::string(i % 97, '.'),
                        "\n");
  };
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      absl::StatusOr<std::unique_ptr<WritableFile>> file =
          env_->NewWritableFile(Path(absl::StrCat("t", t)));
      absl::Status s = file.status();
      for (int i = 0; s.ok() && i < kRecords; ++i) {
        s = (*file)->Append(record(t, i));
        if (s.ok() && i % 50 == 0) s = (*file)->Flush();
      }
      if (s.ok()) s = (*file)->Close();
      results[t] = s;
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_OK(results[t]);
    std::string expected;
    for (int i = 0; i < kRecords; ++i) expected += record(t, i);
    EXPECT_THAT(ReadFileToString(env_, Path(absl::StrCat("t", t))),
                IsOkAndHolds(expected));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names,
                       env_->GetChildren(test_env_->root()));
  EXPECT_EQ(names.size(), static_cast<size_t>(kThreads));
}

TEST_P(EnvTest, ConcurrentRandomAccessReads) {
  testutil::Random rnd(testutil::TestSeed(304));
  const std::string contents = rnd.RandomBytes(256 << 10);
  ASSERT_OK(WriteStringToFile(env_, Path("f"), contents));
  ASSERT_OK_AND_ASSIGN(auto reader, env_->NewRandomAccessFile(Path("f")));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      testutil::Random local(t + 1);
      for (int i = 0; i < 200; ++i) {
        const uint64_t offset = local.Uniform(contents.size());
        const size_t n = static_cast<size_t>(local.Uniform(9000));
        const std::string want =
            contents.substr(offset, std::min<uint64_t>(n, contents.size() - offset));
        if (ReadAt(*reader, offset, n) != want) ++mismatches;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_P(EnvTest, ConcurrentNamespaceChanges) {
  constexpr int kThreads = 6;
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string dir = Path(absl::StrCat("d", t));
      absl::Status s = env_->CreateDirIfMissing(dir);
      for (int i = 0; s.ok() && i < 50; ++i) {
        s = WriteStringToFile(env_, dir + "/tmp", absl::StrCat(i));
        if (s.ok()) s = env_->RenameFile(dir + "/tmp", dir + "/current");
        if (s.ok() && i % 10 == 0) s = env_->SyncDir(dir);
      }
      results[t] = s;
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_OK(results[t]);
    const std::string dir = Path(absl::StrCat("d", t));
    EXPECT_THAT(env_->GetChildren(dir), IsOkAndHolds(ElementsAre("current")));
    EXPECT_THAT(ReadFileToString(env_, dir + "/current"), IsOkAndHolds("49"));
  }
}

TEST_P(EnvTest, NowMicrosAdvances) {
  const uint64_t before = env_->NowMicros();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const uint64_t after = env_->NowMicros();
  EXPECT_GT(before, 0u);
  EXPECT_GE(after, before + 1000);
}

INSTANTIATE_TEST_SUITE_P(AllEnvs, EnvTest, testing::ValuesIn(AllEnvs()),
                         [](const testing::TestParamInfo<EnvFactory>& info) {
                           return info.param.name;
                         });

// ---- MemEnv and POSIX give the same answer to the same mistakes. ----

// Runs one operation and describes its outcome with the root replaced by
// "<root>", e.g. "FAILED_PRECONDITION: open <root>/f/x: Not a directory".
class Script {
 public:
  Script(Env* env, std::string root) : env_(env), root_(std::move(root)) {}

  std::string Run(const std::string& op, const std::string& a,
                  const std::string& b = "") {
    const std::string pa = root_ + "/" + a;
    const std::string pb = root_ + "/" + b;
    absl::Status s;
    std::string extra;
    if (op == "write") {
      s = WriteStringToFile(env_, pa, "data");
    } else if (op == "append") {
      s = env_->NewAppendableFile(pa).status();
    } else if (op == "read") {
      s = env_->NewSequentialFile(pa).status();
    } else if (op == "pread") {
      s = env_->NewRandomAccessFile(pa).status();
    } else if (op == "size") {
      absl::StatusOr<uint64_t> size = env_->GetFileSize(pa);
      s = size.status();
      if (size.ok()) extra = absl::StrCat(" ", *size);
    } else if (op == "exists") {
      extra = env_->FileExists(pa) ? " yes" : " no";
    } else if (op == "ls") {
      absl::StatusOr<std::vector<std::string>> names = env_->GetChildren(pa);
      s = names.status();
      if (names.ok()) {
        for (const std::string& n : Sorted(*names)) absl::StrAppend(&extra, " ", n);
      }
    } else if (op == "unlink") {
      s = env_->DeleteFile(pa);
    } else if (op == "rename") {
      s = env_->RenameFile(pa, pb);
    } else if (op == "truncate") {
      s = env_->TruncateFile(pa, 2);
    } else if (op == "mkdir") {
      s = env_->CreateDirIfMissing(pa);
    } else if (op == "rmdir") {
      s = env_->DeleteDir(pa);
    } else if (op == "syncdir") {
      s = env_->SyncDir(pa);
    } else if (op == "lock") {
      absl::StatusOr<std::unique_ptr<FileLock>> lock = env_->LockFile(pa);
      s = lock.status();
    } else {
      return "unknown op " + op;
    }
    return absl::StrReplaceAll(s.ToString() + extra, {{root_, "<root>"}});
  }

 private:
  Env* const env_;
  const std::string root_;
};

TEST(MemEnvVsPosixTest, SameOutcomesForSameScript) {
  testutil::TempDir dir;
  Script posix(Env::Default(), dir.path());
  std::unique_ptr<Env> mem_env = NewMemEnv();
  ASSERT_OK(mem_env->CreateDirIfMissing("/mem"));
  ASSERT_OK(mem_env->CreateDirIfMissing("/mem/root"));
  Script mem(mem_env.get(), "/mem/root");

  const std::vector<std::vector<std::string>> steps = {
      {"mkdir", "d"},          {"mkdir", "d"},
      {"mkdir", "d/e/f"},      {"write", "f"},
      {"mkdir", "f"},          {"write", "f/x"},
      {"append", "f/x/y"},     {"write", "missing/x"},
      {"read", "missing"},     {"pread", "f/x"},
      {"read", "d"},           {"pread", "d"},
      {"write", "d"},          {"append", "d"},
      {"size", "d"},           {"size", "f"},
      {"size", "nope"},        {"exists", "d"},
      {"exists", "f"},         {"exists", "f/x"},
      {"exists", "nope"},      {"unlink", "d"},
      {"unlink", "nope"},      {"unlink", "f/x"},
      {"rmdir", "f"},          {"rmdir", "nope"},
      {"write", "d/g"},        {"rmdir", "d"},
      {"rename", "d", "f"},    {"rename", "f", "d"},
      {"rename", "d", "d/sub"}, {"rename", "nope", "x"},
      {"rename", "f", "nodir/x"}, {"rename", "f", "f"},
      {"rename", "d", "d2"},   {"ls", "d2"},
      {"ls", "d"},             {"ls", "f"},
      {"mkdir", "d3"},         {"mkdir", "d4"},
      {"write", "d4/h"},       {"rename", "d2", "d4"},
      {"rename", "d2", "d3"},  {"ls", "d3"},
      {"ls", ""},              {"truncate", "nope"},
      {"truncate", "d3"},      {"truncate", "f"},
      {"size", "f"},           {"syncdir", "f"},
      {"syncdir", "nope"},     {"syncdir", "d3"},
      {"lock", "d3"},          {"lock", "nodir/LOCK"},
      {"lock", "LOCK"},        {"rmdir", "d3"},
      {"unlink", "d3/g"},      {"rmdir", "d3"},
      {"ls", ""},
  };
  for (const std::vector<std::string>& step : steps) {
    const std::string a = step[1];
    const std::string b = step.size() > 2 ? step[2] : "";
    SCOPED_TRACE(absl::StrCat(step[0], " ", a, " ", b));
    EXPECT_EQ(mem.Run(step[0], a, b), posix.Run(step[0], a, b));
  }
}

// ---- POSIX-only behaviour. ----

TEST(PosixErrorTest, MapsErrnoToCodes) {
  EXPECT_THAT(PosixError("open", "/p", ENOENT),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(PosixError("open", "/p", EEXIST),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(PosixError("open", "/p", EACCES),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(PosixError("open", "/p", EPERM),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(PosixError("write", "/p", ENOSPC),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(PosixError("write", "/p", EDQUOT),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(PosixError("open", "/p", ENOTDIR),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(PosixError("rmdir", "/p", ENOTEMPTY),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(PosixError("open", "/p", EINVAL),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A device error must not look like corruption that recovery may skip.
  EXPECT_THAT(PosixError("fdatasync", "/p", EIO),
              StatusIs(absl::StatusCode::kInternal));
}

TEST(PosixErrorTest, MessageNamesOperationPathAndReason) {
  EXPECT_EQ(PosixError("open", "/wal/1.log", ENOENT).message(),
            "open /wal/1.log: No such file or directory");
}

class PosixEnvTest : public testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.Join(name); }

  Env* const env_ = Env::Default();
  testutil::TempDir dir_;
};

TEST_F(PosixEnvTest, DefaultIsOneInstance) {
  EXPECT_EQ(Env::Default(), Env::Default());
}

TEST_F(PosixEnvTest, CreateInMissingDirIsNotFoundNamingPath) {
  const std::string path = Path("missing/f");
  EXPECT_THAT(env_->NewWritableFile(path),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("open " + path + ": No such file or directory")));
}

// Fails for root too (permission bits would not).
TEST_F(PosixEnvTest, PathUnderRegularFileIsFailedPrecondition) {
  ASSERT_OK(WriteStringToFile(env_, Path("f"), "x"));
  const std::string path = Path("f/g");
  EXPECT_THAT(env_->NewWritableFile(path),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("open " + path + ": Not a directory")));
  EXPECT_THAT(env_->CreateDirIfMissing(path),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(path)));
}

TEST_F(PosixEnvTest, BufferedBytesReachFileOnFlush) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
  ASSERT_OK(file->Append("buffered"));
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(0u));
  ASSERT_OK(file->Flush());
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(8u));
  ASSERT_OK(file->Close());
}

TEST_F(PosixEnvTest, AppendLargerThanBufferIsWrittenAtOnce) {
  const std::string path = Path("f");
  const std::string big(4 * kPosixWritableBufferSize, 'b');
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewWritableFile(path));
  ASSERT_OK(file->Append(big));
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(big.size()));
  ASSERT_OK(file->Close());
}

TEST_F(PosixEnvTest, FullDiskIsResourceExhaustedAndPoisonsFile) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full";
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewAppendableFile("/dev/full"));
  ASSERT_OK(file->Append("accepted into the buffer"));
  EXPECT_THAT(file->Flush(), StatusIs(absl::StatusCode::kResourceExhausted,
                                      HasSubstr("write /dev/full")));
  // Every later call reports the first failure, even Sync.
  EXPECT_THAT(file->Append("more"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(file->Close(), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(PosixEnvTest, RemoveDirOfNonEmptyDirNamesReason) {
  ASSERT_OK(env_->CreateDirIfMissing(Path("d")));
  ASSERT_OK(WriteStringToFile(env_, Path("d/f"), ""));
  EXPECT_THAT(env_->DeleteDir(Path("d")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("rmdir " + Path("d") + ": Directory not empty")));
}

// Runs `child` in a forked process and returns its exit code (-1 if it did not
// exit normally).
int ExitCodeOfChild(const std::function<int()>& child) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) _exit(child());
  if (pid < 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// 0: the child got the lock; 1: refused because another process holds it;
// 2: anything else.
int TryLockInChild(const std::string& path) {
  absl::StatusOr<std::unique_ptr<FileLock>> lock =
      Env::Default()->LockFile(path);
  if (lock.ok()) return 0;
  if (absl::IsFailedPrecondition(lock.status()) &&
      lock.status().message().find("held by another process") !=
          absl::string_view::npos) {
    return 1;
  }
  return 2;
}

TEST_F(PosixEnvTest, LockHeldByAnotherProcessFails) {
  const std::string path = Path("LOCK");
  ASSERT_OK_AND_ASSIGN(auto lock, env_->LockFile(path));
  EXPECT_EQ(ExitCodeOfChild([&] { return TryLockInChild(path); }), 1);
  ASSERT_OK(env_->UnlockFile(std::move(lock)));
  EXPECT_EQ(ExitCodeOfChild([&] { return TryLockInChild(path); }), 0);
}

TEST_F(PosixEnvTest, SecondLockInProcessSaysSo) {
  const std::string path = Path("LOCK");
  ASSERT_OK_AND_ASSIGN(auto lock, env_->LockFile(path));
  // Another spelling of the same file is the same lock.
  EXPECT_THAT(env_->LockFile(dir_.path() + "//./LOCK"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("already held by this process")));
  ASSERT_OK(env_->UnlockFile(std::move(lock)));
}

// Opens `path` for direct I/O, or skips the test when the file system refuses.
#define OPEN_DIRECT_OR_SKIP(file, path)                                  \
  FileOptions direct_options;                                            \
  direct_options.use_direct_io = true;                                   \
  absl::StatusOr<std::unique_ptr<WritableFile>> file##_or =              \
      env_->NewWritableFileWithOptions((path), direct_options);          \
  if (absl::IsInvalidArgument(file##_or.status())) {                     \
    GTEST_SKIP() << "file system refuses O_DIRECT: " << file##_or.status(); \
  }                                                                      \
  ASSERT_OK(file##_or.status());                                         \
  std::unique_ptr<WritableFile> file = *std::move(file##_or)

TEST_F(PosixEnvTest, DirectIoRewritesPartialBlockUntilClose) {
  const std::string path = Path("direct");
  OPEN_DIRECT_OR_SKIP(file, path);
  ASSERT_OK(file->Append(std::string(100, 'a')));
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(0u));  // still staged
  ASSERT_OK(file->Flush());
  // One zero-padded block on disk.
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(kDirectIoAlignment));
  ASSERT_OK(file->Append(std::string(100, 'b')));
  ASSERT_OK(file->Sync());
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(kDirectIoAlignment));
  ASSERT_OK_AND_ASSIGN(std::string on_disk, ReadFileToString(env_, path));
  EXPECT_EQ(on_disk, std::string(100, 'a') + std::string(100, 'b') +
                         std::string(kDirectIoAlignment - 200, '\0'));
  ASSERT_OK(file->Append(std::string(kDirectIoAlignment, 'c')));
  ASSERT_OK(file->Flush());
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(2 * kDirectIoAlignment));
  EXPECT_EQ(file->Size(), 200 + kDirectIoAlignment);
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path),
              IsOkAndHolds(std::string(100, 'a') + std::string(100, 'b') +
                           std::string(kDirectIoAlignment, 'c')));
}

TEST_F(PosixEnvTest, DirectIoRandomAppendsRoundTrip) {
  const uint64_t seed = testutil::TestSeed(305);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  const std::string path = Path("direct");
  OPEN_DIRECT_OR_SKIP(file, path);
  testutil::Random rnd(seed);
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    const std::string piece = rnd.RandomBytes(rnd.Skewed(15));
    ASSERT_OK(file->Append(piece));
    expected += piece;
    if (rnd.OneIn(5)) {
      ASSERT_OK(rnd.OneIn(2) ? file->Flush() : file->Sync());
    }
  }
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(expected));
}

// Appends that fill the staging buffer several times over, with no Flush or
// Sync: each full buffer goes to the file as it fills (one piece is larger
// than the buffer), and the tail at Close.
TEST_F(PosixEnvTest, DirectIoWritesFullBuffersAsTheyFill) {
  const std::string path = Path("direct-big");
  OPEN_DIRECT_OR_SKIP(file, path);
  testutil::Random rnd(306);
  std::string expected;
  const size_t pieces[] = {1, 4095, kDirectIoBufferSize - 4096 + 7,
                           kDirectIoBufferSize + 12345, 3 * 4096, 100000};
  for (size_t n : pieces) {
    const std::string piece = rnd.RandomBytes(n);
    ASSERT_OK(file->Append(piece));
    expected += piece;
  }
  ASSERT_GT(expected.size(), 2 * kDirectIoBufferSize);
  // Whole buffers are on disk already; only the last partial one is not.
  ASSERT_OK_AND_ASSIGN(const uint64_t before_close, env_->GetFileSize(path));
  EXPECT_GE(before_close, expected.size() / kDirectIoBufferSize *
                              kDirectIoBufferSize);
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(expected));
}

// Reopens `path` at `offset` for direct I/O, or skips the test when the file
// system refuses O_DIRECT.
#define REOPEN_DIRECT_OR_SKIP(file, path, offset)                          \
  FileOptions file##_options;                                              \
  file##_options.use_direct_io = true;                                     \
  absl::StatusOr<std::unique_ptr<WritableFile>> file##_or =                \
      env_->ReopenWritableFileWithOptions((path), (offset), file##_options); \
  if (absl::IsInvalidArgument(file##_or.status()) &&                       \
      absl::StrContains(file##_or.status().message(), "refuses")) {        \
    GTEST_SKIP() << "file system refuses O_DIRECT: " << file##_or.status(); \
  }                                                                        \
  ASSERT_OK(file##_or.status());                                           \
  std::unique_ptr<WritableFile> file = *std::move(file##_or)

// A spare file (3 blocks of 'x') rewritten in place from block 1: the file
// keeps its length, the partial block's padding zeroes only the rest of that
// block, and a block synced whole is never written again by later appends.
TEST_F(PosixEnvTest, DirectIoReopenWritesInPlaceFromBlockBoundary) {
  constexpr size_t kB = kDirectIoAlignment;
  const std::string path = Path("spare");
  const std::string spare(3 * kB, 'x');
  ASSERT_OK(WriteStringToFile(env_, path, spare));
  REOPEN_DIRECT_OR_SKIP(file, path, kB);
  EXPECT_EQ(file->Size(), kB);
  ASSERT_OK(file->Append(std::string(100, 'a')));
  ASSERT_OK(file->Flush());
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(3 * kB));
  std::string expected = spare;
  expected.replace(kB, kB, std::string(100, 'a') + std::string(kB - 100, '\0'));
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(expected));
  // Fill the block exactly and sync: on a block boundary nothing stays
  // staged, so the next appends start a new block.
  ASSERT_OK(file->Append(std::string(kB - 100, 'b')));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Append("c"));
  ASSERT_OK(file->Flush());
  expected.replace(kB + 100, kB - 100, std::string(kB - 100, 'b'));
  expected.replace(2 * kB, kB, "c" + std::string(kB - 1, '\0'));
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(expected));
  EXPECT_EQ(file->Size(), 2 * kB + 1);
  // Close keeps the spare's length (its last block was padded, not cut).
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(expected));
}

TEST_F(PosixEnvTest, DirectIoReopenPastTheEndCutsItsOwnPadding) {
  constexpr size_t kB = kDirectIoAlignment;
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, std::string(kB, 'x')));
  REOPEN_DIRECT_OR_SKIP(file, path, kB);
  ASSERT_OK(file->Append(std::string(kB + 10, 'y')));
  ASSERT_OK(file->Sync());
  // Two blocks on disk until Close cuts the zero padding.
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(3 * kB));
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path),
              IsOkAndHolds(std::string(kB, 'x') + std::string(kB + 10, 'y')));
}

TEST_F(PosixEnvTest, DirectIoReopenChecksPathAndOffset) {
  constexpr size_t kB = kDirectIoAlignment;
  FileOptions direct;
  direct.use_direct_io = true;
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, std::string(kB, 'x')));
  absl::StatusOr<std::unique_ptr<WritableFile>> probe =
      env_->ReopenWritableFileWithOptions(path, 0, direct);
  if (absl::IsInvalidArgument(probe.status())) {
    GTEST_SKIP() << "file system refuses O_DIRECT: " << probe.status();
  }
  ASSERT_OK(probe.status());
  ASSERT_OK((*probe)->Close());
  EXPECT_THAT(env_->ReopenWritableFileWithOptions(Path("missing"), 0, direct),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
  EXPECT_THAT(env_->ReopenWritableFileWithOptions(path, 2 * kB, direct),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("beyond its end (4096 bytes)")));
  EXPECT_THAT(env_->ReopenWritableFileWithOptions(path, 100, direct),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("offset 100: not a multiple of 4096")));
  // Neither refusal touched the file.
  EXPECT_THAT(ReadFileToString(env_, path),
              IsOkAndHolds(std::string(kB, 'x')));
}

TEST_F(PosixEnvTest, DirectIoOnTmpfsIsRefusedClearly) {
  // /dev/shm is usually tmpfs, which refuses O_DIRECT on older kernels.
  if (access("/dev/shm", W_OK) != 0) GTEST_SKIP() << "no /dev/shm";
  const std::string path =
      absl::StrCat("/dev/shm/segwal_env_test_direct.", getpid());
  FileOptions options;
  options.use_direct_io = true;
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env_->NewWritableFileWithOptions(path, options);
  if (file.ok()) {
    ASSERT_OK((*file)->Close());
    env_->DeleteFile(path).IgnoreError();
    GTEST_SKIP() << "this kernel's /dev/shm accepts O_DIRECT";
  }
  env_->DeleteFile(path).IgnoreError();
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("refuses direct I/O")));
}

// ---- POSIX io_uring files (FileOptions::use_io_uring). ----

// Rings open in this process: each io_uring file owns one, a plain file none.
int OpenIoUringRings() {
  int rings = 0;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    std::error_code link_ec;
    const std::filesystem::path target =
        std::filesystem::read_symlink(entry.path(), link_ec);
    if (!link_ec && target.string() == "anon_inode:[io_uring]") ++rings;
  }
  return rings;
}

FileOptions UringOptions() {
  FileOptions options;
  options.use_io_uring = true;
  return options;
}

// Sets SEGWAL_DISABLE_IO_URING for the lifetime of the object.
class ScopedDisableIoUring {
 public:
  ScopedDisableIoUring() { ::setenv("SEGWAL_DISABLE_IO_URING", "1", 1); }
  ~ScopedDisableIoUring() { ::unsetenv("SEGWAL_DISABLE_IO_URING"); }
  ScopedDisableIoUring(const ScopedDisableIoUring&) = delete;
  ScopedDisableIoUring& operator=(const ScopedDisableIoUring&) = delete;
};

// Tests of the io_uring path itself; skipped (with the reason) where the
// kernel does not allow io_uring.
class PosixIoUringTest : public PosixEnvTest {
 protected:
  void SetUp() override {
    std::string why;
    if (!PosixIoUringAvailable(&why)) GTEST_SKIP() << why;
  }
  void TearDown() override { SimulatePosixIoUringShortWritesForTesting(0); }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewUringFile(
      const std::string& path) {
    return env_->NewWritableFileWithOptions(path, UringOptions());
  }
};

TEST_F(PosixIoUringTest, FileOwnsARingUntilClose) {
  const int before = OpenIoUringRings();
  ASSERT_OK_AND_ASSIGN(auto file, NewUringFile(Path("f")));
  EXPECT_EQ(OpenIoUringRings(), before + 1);
  ASSERT_OK(file->Close());
  EXPECT_EQ(OpenIoUringRings(), before);
}

TEST_F(PosixIoUringTest, SizesAroundTheBufferRoundTripWithSyncs) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, NewUringFile(path));
  const size_t b = kPosixWritableBufferSize;
  std::string expected;
  char fill = 'a';
  for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{4095},
                   size_t{4096}, b - 1, b, b + 1, size_t{7}, 3 * b + 7}) {
    SCOPED_TRACE(n);
    const std::string piece(n, fill++);
    ASSERT_OK(file->Append(piece));
    expected += piece;
    EXPECT_EQ(file->Size(), expected.size());
    ASSERT_OK(file->Sync());
    EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(expected.size()));
  }
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(expected));
}

TEST_F(PosixIoUringTest, RandomAppendsFlushesAndSyncsRoundTrip) {
  const uint64_t seed = testutil::TestSeed(1307);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, NewUringFile(path));
  testutil::Random rnd(seed);
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    const std::string piece = rnd.RandomBytes(rnd.Skewed(18));
    ASSERT_OK(file->Append(piece));
    expected += piece;
    if (rnd.OneIn(4)) {
      ASSERT_OK(rnd.OneIn(2) ? file->Flush() : file->Sync());
    }
  }
  EXPECT_EQ(file->Size(), expected.size());
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(expected));
}

TEST_F(PosixIoUringTest, LargeAppendIsWrittenAtOnce) {
  const std::string path = Path("f");
  std::string big(16 * kPosixWritableBufferSize + 3, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  ASSERT_OK_AND_ASSIGN(auto file, NewUringFile(path));
  ASSERT_OK(file->Append("head"));
  ASSERT_OK(file->Append(big));
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(4 + big.size()));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("head" + big));
}

TEST_F(PosixIoUringTest, BufferedBytesReachFileOnFlush) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, NewUringFile(path));
  ASSERT_OK(file->Append("buffered"));
  EXPECT_EQ(file->Size(), 8u);
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(0u));
  ASSERT_OK(file->Flush());
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(8u));
  ASSERT_OK(file->Close());
}

// The point of the design: a Sync (write + linked fdatasync) is one
// io_uring_enter, and so is a Sync with nothing buffered (fdatasync alone).
TEST_F(PosixIoUringTest, SyncIsOneSubmission) {
  ASSERT_OK_AND_ASSIGN(auto file, NewUringFile(Path("f")));
  uint64_t before = PosixIoUringSubmitsForTesting();
  ASSERT_OK(file->Append(std::string(100, 'x')));
  EXPECT_EQ(PosixIoUringSubmitsForTesting(), before);  // only buffered
  ASSERT_OK(file->Sync());
  EXPECT_EQ(PosixIoUringSubmitsForTesting(), before + 1);
  ASSERT_OK(file->Sync());
  EXPECT_EQ(PosixIoUringSubmitsForTesting(), before + 2);
  ASSERT_OK(file->Flush());  // nothing buffered: nothing submitted
  EXPECT_EQ(PosixIoUringSubmitsForTesting(), before + 2);
  ASSERT_OK(file->Append(std::string(4096, 'y')));
  ASSERT_OK(file->Flush());
  EXPECT_EQ(PosixIoUringSubmitsForTesting(), before + 3);
  ASSERT_OK(file->Close());
}

// A short write breaks the link: the fsync comes back ECANCELED, the rest of
// the bytes are written and the fsync is issued again behind them.
TEST_F(PosixIoUringTest, ShortWriteIsCompletedAndSyncReissued) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, NewUringFile(path));
  const std::string data(1000, 's');
  ASSERT_OK(file->Append(data));
  SimulatePosixIoUringShortWritesForTesting(3);
  const uint64_t before = PosixIoUringSubmitsForTesting();
  ASSERT_OK(file->Sync());
  // 1000 -> 500 -> 250 -> 125 written short, then 125 + fsync in full.
  EXPECT_EQ(PosixIoUringSubmitsForTesting(), before + 4);
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(data));
  ASSERT_OK(file->Append("tail"));  // still at the right offset
  SimulatePosixIoUringShortWritesForTesting(1);
  ASSERT_OK(file->Flush());
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds(data + "tail"));
}

// A real short write: the file size limit cuts the write, io_uring reports the
// bytes it wrote, the retry of the rest fails with EFBIG, and the Sync reports
// that (never the cancelled fsync, never OK). The same script on a plain file
// gives the same answers. Run in a child process: the limit is process-wide.
TEST_F(PosixEnvTest, FileSizeLimitCutsWriteAndSyncFailsOnBothPaths) {
  for (bool uring : {false, true}) {
    SCOPED_TRACE(uring ? "io_uring" : "plain");
    if (uring && !PosixIoUringAvailable(nullptr)) continue;
    const std::string path = Path(uring ? "uring" : "plain");
    const int code = ExitCodeOfChild([&] {
      ::signal(SIGXFSZ, SIG_IGN);
      struct rlimit limit;
      if (::getrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
      limit.rlim_cur = 1000;
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 11;
      FileOptions options;
      options.use_io_uring = uring;
      auto file = Env::Default()->NewWritableFileWithOptions(path, options);
      if (!file.ok()) return 12;
      if (!(*file)->Append(std::string(3000, 'z')).ok()) return 13;
      const absl::Status s = (*file)->Sync();
      if (s.code() != absl::StatusCode::kResourceExhausted) return 14;
      if (s.message() != "write " + path + ": File too large") return 15;
      if ((*file)->Sync() != s || (*file)->Append("x") != s) return 16;
      if ((*file)->Close() != s) return 17;
      return 0;
    });
    EXPECT_EQ(code, 0);
    EXPECT_THAT(ReadFileToString(env_, path),
                IsOkAndHolds(std::string(1000, 'z')));
  }
}

// /dev/full accepts the open and fails every write with ENOSPC: the write is
// reported (not the linked fsync it cancelled), and it poisons the file.
TEST_F(PosixIoUringTest, FullDeviceFailsSyncWithTheWriteErrorAndPoisons) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full";
  ASSERT_OK_AND_ASSIGN(auto file, env_->ReopenWritableFileWithOptions(
                                      "/dev/full", 0, UringOptions()));
  ASSERT_OK(file->Append("accepted into the buffer"));
  const absl::Status s = file->Sync();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted,
                          HasSubstr("write /dev/full: No space left")));
  EXPECT_EQ(file->Append("more"), s);
  EXPECT_EQ(file->Flush(), s);
  EXPECT_EQ(file->Sync(), s);
  EXPECT_EQ(file->Close(), s);
}

// /dev/null takes every write but has no fsync (EINVAL): a failed fdatasync
// after a good write is reported and poisons the file, on both paths alike.
TEST_F(PosixEnvTest, FailedFdatasyncPoisonsOnBothPaths) {
  if (access("/dev/null", W_OK) != 0) GTEST_SKIP() << "no writable /dev/null";
  std::vector<absl::Status> seen;
  for (bool uring : {false, true}) {
    SCOPED_TRACE(uring ? "io_uring" : "plain");
    if (uring && !PosixIoUringAvailable(nullptr)) continue;
    FileOptions options;
    options.use_io_uring = uring;
    ASSERT_OK_AND_ASSIGN(auto file, env_->ReopenWritableFileWithOptions(
                                        "/dev/null", 0, options));
    ASSERT_OK(file->Append("x"));
    ASSERT_OK(file->Flush());
    const absl::Status s = file->Sync();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                            "fdatasync /dev/null: Invalid argument"));
    EXPECT_EQ(file->Append("y"), s);
    EXPECT_EQ(file->Sync(), s);
    EXPECT_EQ(file->Close(), s);
    seen.push_back(s);
  }
  if (seen.size() == 2) {
    EXPECT_EQ(seen[0], seen[1]);
  }
}

TEST_F(PosixIoUringTest, ClosedFileRejectsCallsAndCloseIsNotRepeated) {
  const std::string path = Path("f");
  ASSERT_OK_AND_ASSIGN(auto file, NewUringFile(path));
  ASSERT_OK(file->Append("abc"));
  ASSERT_OK(file->Close());  // flushes
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("abc"));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                     "fdatasync " + path + ": file is closed"));
  EXPECT_THAT(file->Append("x"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(file->Flush(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(file->Close(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                      "close " + path + ": file is closed"));
  EXPECT_EQ(file->Size(), 3u);
}

TEST_F(PosixIoUringTest, DestroyingFileFlushesAndReleasesRing) {
  const std::string path = Path("f");
  const int before = OpenIoUringRings();
  {
    ASSERT_OK_AND_ASSIGN(auto file, NewUringFile(path));
    ASSERT_OK(file->Append("kept"));
  }
  EXPECT_EQ(OpenIoUringRings(), before);
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("kept"));
}

TEST_F(PosixIoUringTest, ReopenWritesInPlaceFromOffset) {
  const std::string path = Path("f");
  ASSERT_OK(WriteStringToFile(env_, path, std::string(10, '0')));
  const int before = OpenIoUringRings();
  ASSERT_OK_AND_ASSIGN(
      auto file, env_->ReopenWritableFileWithOptions(path, 4, UringOptions()));
  EXPECT_EQ(OpenIoUringRings(), before + 1);
  EXPECT_EQ(file->Size(), 4u);
  ASSERT_OK(file->Append("ab"));
  ASSERT_OK(file->Sync());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("0000ab0000"));
  ASSERT_OK(file->Append("cdefgh"));  // past the old end
  EXPECT_EQ(file->Size(), 12u);
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("0000abcdefgh"));
}

TEST_F(PosixEnvTest, ReopenWithOptionsChecksLikeReopen) {
  const std::string path = Path("f");
  EXPECT_THAT(
      env_->ReopenWritableFileWithOptions(Path("missing"), 0, UringOptions()),
      StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(WriteStringToFile(env_, path, "0123"));
  EXPECT_THAT(env_->ReopenWritableFileWithOptions(path, 5, UringOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("beyond its end (4 bytes)")));
  FileOptions direct;
  direct.use_direct_io = true;
  // Direct writes start on a block boundary (checked before opening).
  EXPECT_THAT(env_->ReopenWritableFileWithOptions(path, 2, direct),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a multiple of 4096")));
  ASSERT_OK_AND_ASSIGN(
      auto plain, env_->ReopenWritableFileWithOptions(path, 4, FileOptions()));
  ASSERT_OK(plain->Append("45"));
  ASSERT_OK(plain->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("012345"));
}

// SEGWAL_DISABLE_IO_URING=1 is read at every open: the option then gives a
// plain file (no ring), which behaves the same. Runs whether or not the kernel
// allows io_uring.
TEST_F(PosixEnvTest, DisableIoUringEnvVarForcesPlainFile) {
  const std::string path = Path("f");
  {
    ScopedDisableIoUring disable;
    std::string why;
    EXPECT_FALSE(PosixIoUringAvailable(&why));
    EXPECT_THAT(why, HasSubstr("SEGWAL_DISABLE_IO_URING"));
    const int before = OpenIoUringRings();
    const uint64_t submits = PosixIoUringSubmitsForTesting();
    ASSERT_OK_AND_ASSIGN(
        auto file, env_->NewWritableFileWithOptions(path, UringOptions()));
    EXPECT_EQ(OpenIoUringRings(), before);
    ASSERT_OK(file->Append("plain"));
    ASSERT_OK(file->Sync());
    EXPECT_EQ(PosixIoUringSubmitsForTesting(), submits);
    ASSERT_OK(file->Close());
    EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("plain"));
  }
  std::string why;
  const bool available = PosixIoUringAvailable(&why);
  EXPECT_THAT(why, testing::Not(HasSubstr("SEGWAL_DISABLE_IO_URING")));
  if (available) {
    const int before = OpenIoUringRings();
    ASSERT_OK_AND_ASSIGN(
        auto file, env_->NewWritableFileWithOptions(path, UringOptions()));
    EXPECT_EQ(OpenIoUringRings(), before + 1);
    ASSERT_OK(file->Close());
  }
}

// Direct I/O wins over io_uring: the file is the O_DIRECT one.
TEST_F(PosixIoUringTest, DirectIoWinsOverIoUring) {
  const std::string path = Path("direct");
  FileOptions options = UringOptions();
  options.use_direct_io = true;
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env_->NewWritableFileWithOptions(path, options);
  if (absl::IsInvalidArgument(file.status())) {
    GTEST_SKIP() << "file system refuses O_DIRECT: " << file.status();
  }
  ASSERT_OK(file.status());
  ASSERT_OK((*file)->Append("abc"));
  ASSERT_OK((*file)->Flush());
  // Zero-padded block on disk: the direct-I/O file, not a buffered one.
  EXPECT_THAT(env_->GetFileSize(path), IsOkAndHolds(kDirectIoAlignment));
  ASSERT_OK((*file)->Close());
  EXPECT_THAT(ReadFileToString(env_, path), IsOkAndHolds("abc"));
}

// ---- Defaults of Env's optional virtuals. ----

// Implements only the pure virtuals (by forwarding to a MemEnv), so every
// optional virtual runs its default.
class MinimalEnv : public Env {
 public:
  explicit MinimalEnv(Env* base) : base_(base) {}
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& p) override {
    return base_->NewWritableFile(p);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& p) override {
    return base_->NewAppendableFile(p);
  }
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& p) override {
    return base_->NewSequentialFile(p);
  }
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& p) override {
    return base_->NewRandomAccessFile(p);
  }
  bool FileExists(const std::string& p) override { return base_->FileExists(p); }
  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& d) override {
    return base_->GetChildren(d);
  }
  absl::StatusOr<uint64_t> GetFileSize(const std::string& p) override {
    return base_->GetFileSize(p);
  }
  absl::Status DeleteFile(const std::string& p) override {
    return base_->DeleteFile(p);
  }
  absl::Status RenameFile(const std::string& f, const std::string& t) override {
    return base_->RenameFile(f, t);
  }
  absl::Status TruncateFile(const std::string& p, uint64_t n) override {
    return base_->TruncateFile(p, n);
  }
  absl::Status CreateDirIfMissing(const std::string& d) override {
    return base_->CreateDirIfMissing(d);
  }
  absl::Status SyncDir(const std::string& d) override {
    return base_->SyncDir(d);
  }

 private:
  Env* const base_;
};

class EnvDefaultsTest : public testing::Test {
 protected:
  std::unique_ptr<Env> mem_ = NewMemEnv();
  MinimalEnv env_{mem_.get()};
};

TEST_F(EnvDefaultsTest, LockTableRefusesSecondLockNamingPath) {
  const std::string path = "/defaults_test_LOCK";
  ASSERT_OK_AND_ASSIGN(auto lock, env_.LockFile(path));
  EXPECT_TRUE(env_.FileExists(path));
  EXPECT_THAT(env_.LockFile(path),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("lock " + path + ": already held")));
  ASSERT_OK(env_.UnlockFile(std::move(lock)));
  ASSERT_OK_AND_ASSIGN(auto again, env_.LockFile(path));
  EXPECT_OK(env_.UnlockFile(std::move(again)));
}

TEST_F(EnvDefaultsTest, FailedLockDoesNotStayHeld) {
  const std::string path = "/missing_dir/LOCK";
  EXPECT_THAT(env_.LockFile(path), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(env_.CreateDirIfMissing("/missing_dir"));
  ASSERT_OK_AND_ASSIGN(auto lock, env_.LockFile(path));
  EXPECT_OK(env_.UnlockFile(std::move(lock)));
}

TEST_F(EnvDefaultsTest, UnlockOfNullIsInvalidArgument) {
  EXPECT_THAT(env_.UnlockFile(nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(EnvDefaultsTest, DirectIoIsUnimplementedAndPlainOptionsWork) {
  FileOptions options;
  options.use_direct_io = true;
  EXPECT_THAT(env_.NewWritableFileWithOptions("/f", options),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("/f")));
  ASSERT_OK_AND_ASSIGN(auto file,
                       env_.NewWritableFileWithOptions("/f", FileOptions()));
  EXPECT_OK(file->Close());
}

TEST_F(EnvDefaultsTest, ReopenWithOptionsIsReopenOnlyWithoutOptions) {
  // Without options it is ReopenWritableFile (itself a default here).
  EXPECT_THAT(env_.ReopenWritableFileWithOptions("/f", 0, FileOptions()),
              StatusIs(absl::StatusCode::kUnimplemented,
                       HasSubstr("cannot overwrite files in place")));
  FileOptions options;
  options.use_io_uring = true;
  EXPECT_THAT(env_.ReopenWritableFileWithOptions("/f", 0, options),
              StatusIs(absl::StatusCode::kUnimplemented,
                       HasSubstr("takes no file options")));
}

TEST_F(EnvDefaultsTest, DeleteDirIsUnimplemented) {
  ASSERT_OK(env_.CreateDirIfMissing("/d"));
  EXPECT_THAT(env_.DeleteDir("/d"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("/d")));
}

TEST_F(EnvDefaultsTest, NowMicrosIsWallClock) {
  const uint64_t now = env_.NowMicros();
  EXPECT_GT(now, uint64_t{1600000000} * 1000000);  // after 2020
}

// ---- MemEnv-only promises. ----

TEST(MemEnvTest, NormalizesPaths) {
  std::unique_ptr<Env> env = NewMemEnv();
  ASSERT_OK(env->CreateDirIfMissing("/a/"));
  ASSERT_OK(WriteStringToFile(env.get(), "//a///f", "x"));
  EXPECT_TRUE(env->FileExists("/a/f"));
  EXPECT_TRUE(env->FileExists("/a/./f"));
  EXPECT_TRUE(env->FileExists("/a/b/../f"));
  EXPECT_TRUE(env->FileExists("a/f"));  // relative to "/"
  EXPECT_THAT(env->GetChildren("/"), IsOkAndHolds(ElementsAre("a")));
}

TEST(MemEnvTest, RootAlwaysExists) {
  std::unique_ptr<Env> env = NewMemEnv();
  EXPECT_TRUE(env->FileExists("/"));
  EXPECT_THAT(env->GetChildren("/"), IsOkAndHolds(IsEmpty()));
  EXPECT_OK(env->CreateDirIfMissing("/"));
  EXPECT_OK(env->SyncDir("/"));
  EXPECT_THAT(env->DeleteDir("/"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(MemEnvTest, RenameMovesDirectoryWithChildren) {
  std::unique_ptr<Env> env = NewMemEnv();
  ASSERT_OK(env->CreateDirIfMissing("/a"));
  ASSERT_OK(env->CreateDirIfMissing("/a/sub"));
  ASSERT_OK(WriteStringToFile(env.get(), "/a/sub/f", "x"));
  ASSERT_OK(WriteStringToFile(env.get(), "/a-b", "sorts between /a and /a/"));
  ASSERT_OK(env->RenameFile("/a", "/z"));
  EXPECT_THAT(ReadFileToString(env.get(), "/z/sub/f"), IsOkAndHolds("x"));
  EXPECT_FALSE(env->FileExists("/a/sub"));
  EXPECT_THAT(env->GetChildren("/"), IsOkAndHolds(ElementsAre("a-b", "z")));
}

TEST(MemEnvTest, HasChildrenIgnoresSiblingsWithCommonPrefix) {
  std::unique_ptr<Env> env = NewMemEnv();
  ASSERT_OK(env->CreateDirIfMissing("/a"));
  ASSERT_OK(env->CreateDirIfMissing("/a-b"));
  ASSERT_OK(WriteStringToFile(env.get(), "/a/f", ""));
  EXPECT_THAT(env->DeleteDir("/a"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_OK(env->DeleteDir("/a-b"));
}

TEST(MemEnvTest, DirectIoOptionIsAcceptedAndNeedsNoPadding) {
  std::unique_ptr<Env> env = NewMemEnv();
  FileOptions options;
  options.use_direct_io = true;
  ASSERT_OK_AND_ASSIGN(auto file, env->NewWritableFileWithOptions("/f", options));
  ASSERT_OK(file->Append("abc"));
  ASSERT_OK(file->Flush());
  EXPECT_THAT(env->GetFileSize("/f"), IsOkAndHolds(3u));
  EXPECT_OK(file->Close());
}

TEST(MemEnvTest, ReopenIgnoresOptions) {
  std::unique_ptr<Env> env = NewMemEnv();
  ASSERT_OK(WriteStringToFile(env.get(), "/f", "0123"));
  FileOptions options;
  options.use_io_uring = true;
  options.use_direct_io = true;
  ASSERT_OK_AND_ASSIGN(auto file,
                       env->ReopenWritableFileWithOptions("/f", 2, options));
  ASSERT_OK(file->Append("ab"));
  ASSERT_OK(file->Close());
  EXPECT_THAT(ReadFileToString(env.get(), "/f"), IsOkAndHolds("01ab"));
}

TEST(MemEnvTest, HandlesAndLocksMayOutliveEnv) {
  std::unique_ptr<Env> env = NewMemEnv();
  ASSERT_OK(WriteStringToFile(env.get(), "/f", "bytes"));
  ASSERT_OK_AND_ASSIGN(auto reader, env->NewRandomAccessFile("/f"));
  ASSERT_OK_AND_ASSIGN(auto writer, env->NewAppendableFile("/f"));
  ASSERT_OK_AND_ASSIGN(auto lock, env->LockFile("/LOCK"));
  env.reset();
  ASSERT_OK(writer->Append("!"));
  EXPECT_EQ(ReadAt(*reader, 0, 100), "bytes!");
  lock.reset();
}

TEST(MemEnvTest, EnvsAreIndependent) {
  std::unique_ptr<Env> a = NewMemEnv();
  std::unique_ptr<Env> b = NewMemEnv();
  ASSERT_OK(WriteStringToFile(a.get(), "/f", "x"));
  EXPECT_FALSE(b->FileExists("/f"));
  ASSERT_OK_AND_ASSIGN(auto lock_a, a->LockFile("/LOCK"));
  ASSERT_OK_AND_ASSIGN(auto lock_b, b->LockFile("/LOCK"));
}

}  // namespace
}  // namespace segwal
