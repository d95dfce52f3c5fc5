// The errno -> absl::Status mapping of the POSIX Env (PosixError, promised in
// env/posix_env.h) and the small system-call helpers its files share
// (env/posix_io.h). No state, no locks.

#include "env/posix_io.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

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

}  // namespace posix_internal

absl::Status PosixError(absl::string_view op, absl::string_view path, int err) {
  return absl::Status(
      posix_internal::ErrnoCode(err),
      absl::StrCat(op, " ", path, ": ", posix_internal::ErrnoText(err)));
}

}  // namespace segwal
