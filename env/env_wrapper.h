// EnvWrapper: an Env that forwards every call to another Env (the target), for
// Envs that change a few operations and pass the rest through: test Envs that
// gate, count or fail particular calls, or a production Env that adds, say,
// rate limiting. Derive from it and override only what differs; a call not
// overridden behaves exactly as the target's.
//
// Thread safety: as the target's. REQUIRES: the target outlives the wrapper.

#ifndef SEGWAL_ENV_ENV_WRAPPER_H_
#define SEGWAL_ENV_ENV_WRAPPER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "env/env.h"

namespace segwal {

class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}

  Env* target() const { return target_; }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return target_->NewAppendableFile(path);
  }
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    return target_->NewSequentialFile(path);
  }
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    return target_->NewRandomAccessFile(path);
  }
  bool FileExists(const std::string& path) override {
    return target_->FileExists(path);
  }
  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override {
    return target_->GetChildren(dir);
  }
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override {
    return target_->GetFileSize(path);
  }
  absl::Status DeleteFile(const std::string& path) override {
    return target_->DeleteFile(path);
  }
  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  absl::Status TruncateFile(const std::string& path, uint64_t size) override {
    return target_->TruncateFile(path, size);
  }
  absl::Status CreateDirIfMissing(const std::string& dir) override {
    return target_->CreateDirIfMissing(dir);
  }
  absl::Status SyncDir(const std::string& dir) override {
    return target_->SyncDir(dir);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFileWithOptions(
      const std::string& path, const FileOptions& options) override {
    return target_->NewWritableFileWithOptions(path, options);
  }
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override {
    return target_->LockFile(path);
  }
  absl::Status UnlockFile(std::unique_ptr<FileLock> lock) override {
    return target_->UnlockFile(std::move(lock));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path, uint64_t offset) override {
    return target_->ReopenWritableFile(path, offset);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFileWithOptions(
      const std::string& path, uint64_t offset,
      const FileOptions& options) override {
    return target_->ReopenWritableFileWithOptions(path, offset, options);
  }
  absl::Status DeleteDir(const std::string& dir) override {
    return target_->DeleteDir(dir);
  }
  uint64_t NowMicros() override { return target_->NowMicros(); }

 private:
  Env* const target_;
};

}  // namespace segwal

#endif  // SEGWAL_ENV_ENV_WRAPPER_H_
