// What the POSIX Env's source files share (env/posix_env.cc,
// env/posix_io_uring_file.cc): errno text, the system-call helpers every
// writable file type uses, and PosixBufferedFile, the user-space write buffer
// in front of the plain and the io_uring files. Internal to //env:env.
// PosixError itself is public (env/posix_env.h) and is defined in
// posix_io.cc, beside the errno table.
//
// Thread safety: the functions are pure functions of their arguments (and
// errno). A PosixBufferedFile, like every WritableFile, is used by one thread
// at a time (env/env.h) and has no lock.

#ifndef SEGWAL_ENV_POSIX_IO_H_
#define SEGWAL_ENV_POSIX_IO_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "env/env.h"

namespace segwal {
namespace posix_internal {

// strerror(err), thread-safe.
std::string ErrnoText(int err);

// FailedPrecondition "<op> <path>: file is closed": what a closed file's
// methods return.
absl::Status ClosedError(absl::string_view op, const std::string& path);

// WritableFile::Allocate: fallocate(FALLOC_FL_KEEP_SIZE) of
// [offset, offset + len), retried on EINTR. A file system without it
// (EOPNOTSUPP, ENOSYS) is not an error: the hint is dropped.
absl::Status FallocateKeepSize(int fd, const std::string& path,
                               uint64_t offset, uint64_t len);

// WritableFile::RangeSync: sync_file_range(SYNC_FILE_RANGE_WRITE). Only a
// hint: a file system that cannot do it (ENOSYS, EINVAL) loses nothing, and a
// real write-back error will surface in the next Sync.
void StartWriteBack(int fd, uint64_t offset, uint64_t nbytes);

// A WritableFile that copies appends into a kPosixWritableBufferSize buffer
// (env/posix_env.h, "Writable files") and hands the buffer to WriteThrough
// when it fills, on Flush, on Sync and on Close; an append larger than the
// buffer goes straight through. The first failure poisons the file: every
// later call returns it (posix_env.h, "poisoned"). Subclasses say how bytes
// reach the file and what closing releases.
class PosixBufferedFile : public WritableFile {
 public:
  PosixBufferedFile(const PosixBufferedFile&) = delete;
  PosixBufferedFile& operator=(const PosixBufferedFile&) = delete;

  absl::Status Append(absl::string_view data) final;
  absl::Status Flush() final;
  absl::Status Sync() final;
  absl::Status RangeSync(uint64_t offset, uint64_t nbytes) final;
  // Writes what is buffered (unless poisoned), ReleaseBeforeClose, close(2).
  absl::Status Close() final;
  uint64_t Size() const final { return size_; }
  absl::Status Allocate(uint64_t offset, uint64_t len) final;

 protected:
  // Owns fd; the file is `initial_size` bytes long and appends go after them.
  PosixBufferedFile(std::string path, int fd, uint64_t initial_size);
  // Subclasses' destructors call Close() if fd() >= 0 (it calls a virtual).
  ~PosixBufferedFile() override = default;

  // Writes [data, data + n) after everything written so far, then, if
  // `sync`, makes the file's data durable (fdatasync). n may be 0. Errors
  // name the file and the system call; the caller poisons the file.
  virtual absl::Status WriteThrough(const char* data, size_t n, bool sync) = 0;
  // Close: after the last write, before close(2). Default: nothing.
  virtual void ReleaseBeforeClose() {}

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }  // -1 once closed

 private:
  absl::Status CheckUsable(absl::string_view op) const;
  // Remembers the first failure.
  absl::Status Poison(absl::Status s);
  // WriteThrough of the buffer (and the sync, if asked), emptying it.
  absl::Status FlushBuffer(bool sync);

  const std::string path_;
  int fd_;
  const std::unique_ptr<char[]> buf_;
  size_t len_ = 0;  // bytes in buf_
  uint64_t size_;   // file size the caller sees: written + buffered
  absl::Status error_;
};

}  // namespace posix_internal
}  // namespace segwal

#endif  // SEGWAL_ENV_POSIX_IO_H_
