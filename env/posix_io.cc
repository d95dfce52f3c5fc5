// The errno -> absl::Status mapping of the POSIX Env (PosixError, promised in
// env/posix_env.h), the small system-call helpers its files share, and the
// write buffer of its plain and io_uring files (PosixBufferedFile; all in
// env/posix_io.h). No shared state, no locks.

#include "env/posix_io.h"

#include <fcntl.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "env/posix_env.h"

namespace segwal {
namespace posix_internal {
namespace {

// strerror_r comes in two flavours (GNU returns the text, XSI fills the buffer);
// overloading on the return type accepts either.
[[maybe_unused]] const char* StrErrorText(int /*xsi_result*/, const char* buf) {
  return buf;
}
[[maybe_unused]] const char* StrErrorText(const char* gnu_result,
                                          const char* /*buf*/) {
  return gnu_result;
}

absl::StatusCode ErrnoCode(int err) {
  switch (err) {
    case ENOENT:
      return absl::StatusCode::kNotFound;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return absl::StatusCode::kResourceExhausted;
    case ENOTDIR:
    case EISDIR:
    case ENOTEMPTY:
    case EBUSY:
    case EROFS:
    case EXDEV:
    case ETXTBSY:
      return absl::StatusCode::kFailedPrecondition;
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
      return absl::StatusCode::kInvalidArgument;
    default:  // EIO included: see posix_env.h
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

std::string ErrnoText(int err) {
  char buf[256];
  buf[0] = '\0';
  return StrErrorText(strerror_r(err, buf, sizeof(buf)), buf);
}

absl::Status ClosedError(absl::string_view op, const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat(op, " ", path, ": file is closed"));
}

absl::Status FallocateKeepSize(int fd, const std::string& path,
                               uint64_t offset, uint64_t len) {
  if (len == 0) return absl::OkStatus();
  int r;
  do {
    r = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(len));
  } while (r != 0 && errno == EINTR);
  if (r != 0 && errno != EOPNOTSUPP && errno != ENOSYS) {
    return PosixError("fallocate", path, errno);
  }
  return absl::OkStatus();
}

void StartWriteBack(int fd, uint64_t offset, uint64_t nbytes) {
  (void)::sync_file_range(fd, static_cast<off64_t>(offset),
                          static_cast<off64_t>(nbytes), SYNC_FILE_RANGE_WRITE);
}

PosixBufferedFile::PosixBufferedFile(std::string path, int fd,
                                     uint64_t initial_size)
    : path_(std::move(path)),
      fd_(fd),
      buf_(new char[kPosixWritableBufferSize]),
      size_(initial_size) {}

absl::Status PosixBufferedFile::Append(absl::string_view data) {
  if (absl::Status s = CheckUsable("write"); !s.ok()) return s;
  size_ += data.size();
  const size_t fits = std::min(data.size(), kPosixWritableBufferSize - len_);
  std::memcpy(buf_.get() + len_, data.data(), fits);
  len_ += fits;
  data.remove_prefix(fits);
  if (data.empty()) return absl::OkStatus();
  // The buffer is full; empty it, then buffer the rest if it is small.
  if (absl::Status s = FlushBuffer(/*sync=*/false); !s.ok()) return s;
  if (data.size() < kPosixWritableBufferSize) {
    std::memcpy(buf_.get(), data.data(), data.size());
    len_ = data.size();
    return absl::OkStatus();
  }
  return Poison(WriteThrough(data.data(), data.size(), /*sync=*/false));
}

absl::Status PosixBufferedFile::Flush() {
  if (absl::Status s = CheckUsable("write"); !s.ok()) return s;
  return FlushBuffer(/*sync=*/false);
}

absl::Status PosixBufferedFile::Sync() {
  if (absl::Status s = CheckUsable("fdatasync"); !s.ok()) return s;
  return FlushBuffer(/*sync=*/true);
}

absl::Status PosixBufferedFile::RangeSync(uint64_t offset, uint64_t nbytes) {
  if (absl::Status s = CheckUsable("sync_file_range"); !s.ok()) return s;
  StartWriteBack(fd_, offset, nbytes);
  return absl::OkStatus();
}

absl::Status PosixBufferedFile::Close() {
  if (fd_ < 0) return ClosedError("close", path_);
  absl::Status s = error_.ok() ? FlushBuffer(/*sync=*/false) : error_;
  ReleaseBeforeClose();
  if (::close(fd_) != 0 && s.ok()) s = PosixError("close", path_, errno);
  fd_ = -1;
  return s;
}

absl::Status PosixBufferedFile::Allocate(uint64_t offset, uint64_t len) {
  if (fd_ < 0) return ClosedError("fallocate", path_);
  return FallocateKeepSize(fd_, path_, offset, len);
}

absl::Status PosixBufferedFile::CheckUsable(absl::string_view op) const {
  if (fd_ < 0) return ClosedError(op, path_);
  return error_;
}

absl::Status PosixBufferedFile::Poison(absl::Status s) {
  if (!s.ok() && error_.ok()) error_ = s;
  return s;
}

absl::Status PosixBufferedFile::FlushBuffer(bool sync) {
  const size_t n = len_;
  len_ = 0;
  if (n == 0 && !sync) return absl::OkStatus();
  return Poison(WriteThrough(buf_.get(), n, sync));
}

}  // namespace posix_internal

absl::Status PosixError(absl::string_view op, absl::string_view path, int err) {
  return absl::Status(
      posix_internal::ErrnoCode(err),
      absl::StrCat(op, " ", path, ": ", posix_internal::ErrnoText(err)));
}

}  // namespace segwal
