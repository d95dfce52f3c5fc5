// An Env that keeps a whole file system in memory, for fast, hermetic tests.
//
// It behaves like the POSIX Env (env/posix_env.h) for everything in the Env
// interface, down to the status code and message of each error (they come from
// the same errno table, e.g. "open /db/x: No such file or directory"):
//   - Directories exist explicitly. "/" always exists; CreateDirIfMissing creates
//     one level and needs the parent; creating a file in a missing directory is
//     NotFound, under a regular file FailedPrecondition (ENOTDIR).
//   - Files are shared by reference, like inodes: an open handle keeps seeing (and
//     writing) the same bytes after the file is renamed, deleted or truncated, and
//     a RandomAccessFile sees later appends. NewWritableFile truncates the existing
//     file in place; RenameFile atomically replaces the target (directories too,
//     when the target is an empty directory).
//   - Paths are normalized lexically: duplicate and trailing slashes and "."
//     are dropped, ".." removes the previous component, and a relative path is
//     taken relative to "/". Messages quote the path as the caller spelled it.
//   - Locks live in a table of this Env: a second LockFile of a path fails with
//     FailedPrecondition until the first lock is released.
//   - GetChildren returns names sorted.
// Differences, on purpose:
//   - Appends are visible to readers at once; Flush and Sync do nothing else
//     (there is no page cache and no power to lose: use FaultInjectionEnv for that).
//   - FileOptions are accepted and ignored (NewWritableFileWithOptions,
//     ReopenWritableFileWithOptions): direct I/O's zero padding of a partial
//     last block before Close is not modelled, and io_uring changes nothing
//     observable.
//   - Nothing is ever full (no ResourceExhausted) and there are no permissions.
//
// Thread safety: the Env and its read handles may be used from many threads at
// once; a WritableFile by one thread at a time (as with every Env). Handles and
// locks may outlive the Env.

#ifndef SEGWAL_ENV_MEM_ENV_H_
#define SEGWAL_ENV_MEM_ENV_H_

#include <memory>

#include "env/env.h"

namespace segwal {

// A new, empty in-memory file system holding only "/".
std::unique_ptr<Env> NewMemEnv();

}  // namespace segwal

#endif  // SEGWAL_ENV_MEM_ENV_H_
