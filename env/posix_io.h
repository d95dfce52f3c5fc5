// What the POSIX Env's source files share (env/posix_env.cc,
// env/posix_io_uring_file.cc): errno text and the system-call helpers every
// writable file type uses. Internal to //env:env. PosixError itself is public
// (env/posix_env.h) and is defined in posix_io.cc, beside the errno table.
//
// Thread safety: pure functions of their arguments (and errno).

#ifndef SEGWAL_ENV_POSIX_IO_H_
#define SEGWAL_ENV_POSIX_IO_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

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

}  // namespace posix_internal
}  // namespace segwal

#endif  // SEGWAL_ENV_POSIX_IO_H_
