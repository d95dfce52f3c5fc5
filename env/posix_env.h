// What the POSIX Env (Env::Default(), env/posix_env.cc) promises beyond env.h,
// and the errno -> absl::Status mapping it shares with the in-memory Env so that
// both report the same code and message for the same mistake.
//
// Writable files. Appends are copied into a kPosixWritableBufferSize user-space
// buffer; an append that does not fit is written straight through with write(2)
// once the buffer has been emptied. Short writes and EINTR are retried. Flush
// writes the buffer out; Sync is Flush + fdatasync(2); Close is Flush + close(2),
// never a sync. Size() counts buffered bytes. After a write or fdatasync fails the
// file is poisoned: every later Append/Flush/Sync/Close returns that first error,
// because the kernel may have dropped the dirty pages and a later successful
// fdatasync would prove nothing ("fsyncgate").
//
// Direct I/O (FileOptions::use_direct_io; NewWritableFileWithOptions and
// ReopenWritableFileWithOptions). The file is opened with O_DIRECT and appends
// are staged in a kDirectIoAlignment-aligned buffer; whole buffers are written
// as they fill. Flush/Sync of a partial block write that block padded with zeros
// and keep its bytes buffered, so the next Flush rewrites the same block with
// more data (a caller that must never rewrite a block it synced, like the WAL,
// syncs only on block boundaries: see wal/FORMAT.md, "Padding frames"). Close
// cuts the zero padding where it extended the file, with ftruncate(2): a new
// file ends at Size(), a reopened one at the larger of Size() and the length
// it had when reopened. Until Close (or if the process dies first) the file on
// disk may be longer than Size() by less than kDirectIoAlignment bytes of
// zeros: readers must tolerate a zero tail. For a reopened file, the bytes
// after Size() in its last written block may read as zeros (the padding
// replaced them); bytes beyond that block keep their contents. A reopened
// file's offset must be a multiple of kDirectIoAlignment (InvalidArgument
// otherwise: the block before it would have to be read and rewritten). A file
// system that refuses O_DIRECT (EINVAL, e.g. older tmpfs) makes the open fail
// with InvalidArgument "... the file system refuses direct I/O"; a new file
// may have been created (or truncated) by then, a reopened one is untouched.
//
// io_uring (FileOptions::use_io_uring; NewWritableFileWithOptions and
// ReopenWritableFileWithOptions). Same buffering, Size(), Close and poisoning
// rules as above, but each file owns a small io_uring instance: a flush is an
// IORING_OP_WRITE at the file's explicit offset, and Sync submits the pending
// write linked (IOSQE_IO_LINK) to an IORING_OP_FSYNC with
// IORING_FSYNC_DATASYNC, so a Sync costs one io_uring_enter. Every completion
// is checked: a short write is completed by resubmitting the remainder (the
// kernel cancels the linked fsync with ECANCELED; it is issued again after the
// last byte), and a Sync is
// reported OK only once every byte was written and an fdatasync-equivalent
// completed after them. Failures are reported exactly as on the plain path
// ("write <path>: ...", "fdatasync <path>: ..." with the errno table below).
// Whether io_uring can be used is probed once per process (io_uring_queue_init,
// then IORING_OP_WRITE and IORING_OP_FSYNC in io_uring_get_probe); when it
// cannot (seccomp, old kernel, kernel.io_uring_disabled, or the environment
// variable SEGWAL_DISABLE_IO_URING=1, read at every open), the option silently
// gives a plain file as above, and the first such open writes one line to
// stderr saying why. A file whose own ring cannot be set up (e.g. out of
// locked memory or descriptors) is also a plain file. Direct I/O wins over
// use_io_uring.
//
// Read-only files: SequentialFile uses read(2) (one call per Read, retried on EINTR);
// RandomAccessFile uses pread(2) in a loop until n bytes or end of file. Opening a
// directory as a file fails with FailedPrecondition (EISDIR).
//
// Locks: LockFile opens the path with O_CREAT and takes flock(LOCK_EX|LOCK_NB). A
// lock held by another process fails with FailedPrecondition "... held by another
// process"; a second lock of the same file (same device and inode) from this
// process fails with FailedPrecondition "... already held by this process".
// Releasing the FileLock (UnlockFile or destruction) closes the descriptor, which
// drops the flock. Lock descriptors are O_CLOEXEC, but a child created by fork()
// without exec shares them: the flock stays held until both processes have closed
// the descriptor (or exited), and a LockFile in the child counts as another process.
//
// Allocate uses fallocate(FALLOC_FL_KEEP_SIZE); file systems without it
// (EOPNOTSUPP/ENOSYS) are fine: the hint is dropped.

#ifndef SEGWAL_ENV_POSIX_ENV_H_
#define SEGWAL_ENV_POSIX_ENV_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace segwal {

// User-space buffer of a POSIX WritableFile.
inline constexpr size_t kPosixWritableBufferSize = 64 << 10;
// Block size and buffer alignment for direct I/O.
inline constexpr size_t kDirectIoAlignment = 4096;
// Staging buffer of a direct-I/O WritableFile (a multiple of kDirectIoAlignment).
inline constexpr size_t kDirectIoBufferSize = 1 << 20;

// A status for a failed system call: the code from the table below, and the
// message "<op> <path>: <strerror(err)>", e.g. "open /wal/000001.log: No such
// file or directory".
//
//   ENOENT                                     -> NotFound
//   EEXIST                                     -> AlreadyExists
//   EACCES, EPERM                              -> PermissionDenied
//   ENOSPC, EDQUOT, EFBIG, EMFILE, ENFILE,
//   ENOMEM                                     -> ResourceExhausted
//   ENOTDIR, EISDIR, ENOTEMPTY, EBUSY, EROFS,
//   EXDEV, ETXTBSY                             -> FailedPrecondition
//   EINVAL, ENAMETOOLONG, ELOOP                -> InvalidArgument
//   EIO and everything else                    -> Internal
//
// EIO is deliberately Internal, not DataLoss: segwal uses DataLoss for corruption
// it found in bytes it read (which recovery may tolerate, e.g. as a torn tail),
// while a device error must stop the caller, never be skipped over as corruption.
absl::Status PosixError(absl::string_view op, absl::string_view path, int err);

// True if FileOptions::use_io_uring gives io_uring files in this process right
// now: the probe succeeded and SEGWAL_DISABLE_IO_URING is not set to "1". If
// `why` is not null it is set to a one-line reason either way, e.g.
// "io_uring_queue_init: Operation not permitted". Thread-safe.
bool PosixIoUringAvailable(std::string* why);

// ---- Test hooks (process-wide, thread-safe). ----

// io_uring_enter calls made by io_uring files so far (each submits and waits).
uint64_t PosixIoUringSubmitsForTesting();
// The next `n` io_uring write completions of more than one byte are handed to
// the file as if the kernel had written only half (and a linked fsync as
// cancelled with ECANCELED), as a real short write is. The kernel did write
// every byte, so the file's retry rewrites identical bytes at the same offset.
void SimulatePosixIoUringShortWritesForTesting(int n);

}  // namespace segwal

#endif  // SEGWAL_ENV_POSIX_ENV_H_
