// The io_uring-backed WritableFile of the POSIX Env (FileOptions::use_io_uring;
// what it promises is in env/posix_env.h, "io_uring"). Internal to //env:env:
// the Env opens such files through this factory; PosixIoUringAvailable and the
// test hooks are declared in env/posix_env.h.

#ifndef SEGWAL_ENV_POSIX_IO_URING_FILE_H_
#define SEGWAL_ENV_POSIX_IO_URING_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "env/env.h"

namespace segwal {
namespace posix_internal {

// An io_uring WritableFile on `fd` that writes at explicit offsets from
// `offset` on (the file's size as the caller sees it), owning fd and a ring of
// its own. Null when io_uring cannot be used (PosixIoUringAvailable is false,
// or this file's ring cannot be set up): fd is then still the caller's, and
// the first such call in the process writes one line to stderr saying why.
std::unique_ptr<WritableFile> NewPosixIoUringWritableFile(
    const std::string& path, int fd, uint64_t offset);

}  // namespace posix_internal
}  // namespace segwal

#endif  // SEGWAL_ENV_POSIX_IO_URING_FILE_H_
