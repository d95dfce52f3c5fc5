// Out-of-line destructors and the defaults of Env's optional virtuals.

#include "env/env.h"

#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "port/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace segwal {

WritableFile::~WritableFile() = default;
SequentialFile::~SequentialFile() = default;
RandomAccessFile::~RandomAccessFile() = default;
FileLock::~FileLock() = default;
Env::~Env() = default;

absl::Status WritableFile::Allocate(uint64_t offset, uint64_t len) {
  return absl::OkStatus();
}

namespace {

// Paths locked through the default Env::LockFile, by any Env in this process.
// Never destroyed, so a lock released during static destruction is still safe.
class DefaultLockTable {
 public:
  static DefaultLockTable& Get() {
    static DefaultLockTable* table = new DefaultLockTable;
    return *table;
  }
  // False if `path` is held already.
  bool TryAcquire(const std::string& path) ABSL_LOCKS_EXCLUDED(mu_) {
    port::MutexLock l(&mu_);
    return held_.insert(path).second;
  }
  void Release(const std::string& path) ABSL_LOCKS_EXCLUDED(mu_) {
    port::MutexLock l(&mu_);
    held_.erase(path);
  }

 private:
  port::Mutex mu_;
  std::set<std::string> held_ ABSL_GUARDED_BY(mu_);
};

class DefaultFileLock final : public FileLock {
 public:
  explicit DefaultFileLock(std::string path) : path_(std::move(path)) {}
  ~DefaultFileLock() override { DefaultLockTable::Get().Release(path_); }

 private:
  const std::string path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WritableFile>> Env::NewWritableFileWithOptions(
    const std::string& path, const FileOptions& options) {
  if (options.use_direct_io) {
    return absl::UnimplementedError(
        absl::StrCat("open ", path, ": this Env does not support direct I/O"));
  }
  return NewWritableFile(path);
}

// The table is keyed by the path as spelled, so two spellings of one file are
// two locks; Envs that can do better (POSIX, MemEnv) override this.
absl::StatusOr<std::unique_ptr<FileLock>> Env::LockFile(
    const std::string& path) {
  if (!DefaultLockTable::Get().TryAcquire(path)) {
    return absl::FailedPreconditionError(
        absl::StrCat("lock ", path, ": already held by this process"));
  }
  auto lock = std::make_unique<DefaultFileLock>(path);
  // The contract creates the lock file if it is missing.
  absl::StatusOr<std::unique_ptr<WritableFile>> file = NewAppendableFile(path);
  if (!file.ok()) return file.status();  // `lock` releases the path
  absl::Status s = (*file)->Close();
  if (!s.ok()) return s;
  return std::unique_ptr<FileLock>(std::move(lock));
}

absl::Status Env::UnlockFile(std::unique_ptr<FileLock> lock) {
  if (lock == nullptr) {
    return absl::InvalidArgumentError("UnlockFile: null lock");
  }
  lock.reset();  // every FileLock releases itself when destroyed
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<WritableFile>> Env::ReopenWritableFile(
    const std::string& path, uint64_t offset) {
  return absl::UnimplementedError(absl::StrCat(
      "reopen ", path, " for writing at offset ", offset,
      ": this Env cannot overwrite files in place"));
}

absl::StatusOr<std::unique_ptr<WritableFile>>
Env::ReopenWritableFileWithOptions(const std::string& path, uint64_t offset,
                                   const FileOptions& options) {
  if (options.use_direct_io || options.use_io_uring) {
    return absl::UnimplementedError(absl::StrCat(
        "reopen ", path, " for writing at offset ", offset,
        ": this Env takes no file options (direct I/O, io_uring)"));
  }
  return ReopenWritableFile(path, offset);
}

absl::Status Env::DeleteDir(const std::string& dir) {
  return absl::UnimplementedError(
      absl::StrCat("rmdir ", dir, ": this Env cannot delete directories"));
}

uint64_t Env::NowMicros() {
  return static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
}

absl::Status CreateDirsDurably(Env* env, const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string level = dir.substr(0, pos);
    if (level.empty() || level.back() == '/') continue;
    if (env->FileExists(level)) continue;
    absl::Status s = env->CreateDirIfMissing(level);
    if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
    std::string parent = ".";
    if (const size_t slash = level.rfind('/'); slash != std::string::npos) {
      parent = slash == 0 ? "/" : level.substr(0, slash);
    }
    s = env->SyncDir(parent);
    if (!s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("syncing ", parent, " after creating ", level,
                                 ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace segwal
