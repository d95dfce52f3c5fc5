// The file-system seam. Everything segwal reads or writes goes through an Env, so
// tests can swap the real POSIX file system for an in-memory one (env/mem_env.h)
// or for one that simulates power loss and I/O errors (env/fault_injection_env.h).
//
// Durability vocabulary used throughout segwal:
//   - Append: bytes are accepted; they may sit in a user-space buffer and are lost if
//     the process crashes.
//   - Flush: buffered bytes are handed to the operating system; they survive a
//     process crash but not a power loss.
//   - Sync: bytes are on the device (fdatasync); they survive a power loss. A new file's
//     directory entry is NOT made durable by Sync: call Env::SyncDir on its directory.
//   - Close: releases the file. Close flushes but is NOT a sync.
//
// Thread safety: an Env may be used from many threads at once. A WritableFile,
// SequentialFile or RandomAccessFile object is used by one thread at a time unless its
// class says otherwise (RandomAccessFile::Read is const and safe to call concurrently).

#ifndef SEGWAL_ENV_ENV_H_
#define SEGWAL_ENV_ENV_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace segwal {

// An append-only file.
class WritableFile {
 public:
  WritableFile() = default;
  WritableFile(const WritableFile&) = delete;
  WritableFile& operator=(const WritableFile&) = delete;
  virtual ~WritableFile();

  // Accepts `data` at the end of the file. May buffer: nothing is promised to
  // survive a crash until Flush (process crash) or Sync (power loss).
  virtual absl::Status Append(absl::string_view data) = 0;
  // Hands buffered bytes to the OS: survives a process crash, not a power loss.
  virtual absl::Status Flush() = 0;
  // Makes every byte appended so far durable on the device (fdatasync): survives a
  // power loss. Implies Flush. Does not make the file's directory entry durable.
  virtual absl::Status Sync() = 0;
  // Flushes and releases the file. Close is NOT a sync. Further calls fail.
  virtual absl::Status Close() = 0;
  // Bytes appended so far (including buffered ones), plus the size the file had
  // when it was opened.
  virtual uint64_t Size() const = 0;

  // Hint: reserve [offset, offset+len) on the device so later appends do not have to
  // allocate. Does not change Size(). Default: does nothing.
  virtual absl::Status Allocate(uint64_t offset, uint64_t len);
  // Hint: start writing back to the device, without waiting, the bytes already
  // handed to the OS (Flush) in [offset, offset + nbytes); nbytes 0 means to the
  // end of the file. Promises nothing about durability (only Sync does), but
  // makes a later Sync cheaper (RocksDB's bytes_per_sync). Default: does nothing.
  virtual absl::Status RangeSync(uint64_t offset, uint64_t nbytes) {
    (void)offset;
    (void)nbytes;
    return absl::OkStatus();
  }
};

// A file read from start to end.
class SequentialFile {
 public:
  SequentialFile() = default;
  SequentialFile(const SequentialFile&) = delete;
  SequentialFile& operator=(const SequentialFile&) = delete;
  virtual ~SequentialFile();

  // Reads up to n bytes; *result may point into scratch (which must hold n bytes).
  // An empty *result means end of file. A short read is not an error.
  virtual absl::Status Read(size_t n, absl::string_view* result, char* scratch) = 0;
  // Skips n bytes (or to end of file, if fewer remain).
  virtual absl::Status Skip(uint64_t n) = 0;
};

// A file read at arbitrary offsets. Read is safe to call from several threads.
class RandomAccessFile {
 public:
  RandomAccessFile() = default;
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;
  virtual ~RandomAccessFile();

  // Reads up to n bytes at offset; *result may point into scratch (which must hold n
  // bytes). Fewer than n bytes (maybe zero) means the read reached end of file.
  virtual absl::Status Read(uint64_t offset, size_t n, absl::string_view* result,
                            char* scratch) const = 0;
};

// A held lock on a file (see Env::LockFile).
class FileLock {
 public:
  FileLock() = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  virtual ~FileLock();
};

// Options for opening a file for writing (see Env::NewWritableFileWithOptions).
struct FileOptions {
  // Bypass the page cache (O_DIRECT). Appends are then staged in an aligned buffer;
  // an Env that cannot do direct I/O returns InvalidArgument/Unimplemented. With
  // ReopenWritableFileWithOptions the offset must be block-aligned (the POSIX
  // Env's rules: env/posix_env.h).
  bool use_direct_io = false;
  // Submit writes and syncs through io_uring when the kernel allows it (a
  // Sync is then one linked write + fdatasync submission), else fall back to
  // plain write()/fdatasync(). A hint: the file's behaviour (what Flush and
  // Sync promise, which errors it reports, poisoning) is identical either way.
  // An Env without io_uring may ignore it (NewWritableFileWithOptions) or
  // refuse it (the default ReopenWritableFileWithOptions). Ignored with
  // use_direct_io.
  bool use_io_uring = false;
};

class Env {
 public:
  Env() = default;
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  virtual ~Env();

  // The POSIX Env. Never deleted; safe to use from any thread.
  static Env* Default();

  // Creates the file, or truncates it to zero if it exists.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // Opens the file for appending after its current end; creates it if missing.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) = 0;
  // NotFound if the file does not exist.
  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) = 0;
  // NotFound if the file does not exist.
  virtual absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  // Names (not paths) of the entries of dir, without "." and "..". NotFound if dir
  // does not exist.
  virtual absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) = 0;
  virtual absl::StatusOr<uint64_t> GetFileSize(const std::string& path) = 0;
  // Removes the directory entry. Not durable until SyncDir of the directory.
  virtual absl::Status DeleteFile(const std::string& path) = 0;
  // Atomically replaces `to` (if present) with `from`. Not durable until SyncDir.
  virtual absl::Status RenameFile(const std::string& from,
                                  const std::string& to) = 0;
  // Cuts (or extends with zeros) the file to `size` bytes. Durable after a Sync of
  // the file (open it with NewAppendableFile and Sync).
  virtual absl::Status TruncateFile(const std::string& path, uint64_t size) = 0;
  // Creates dir (one level). OK if it exists already.
  virtual absl::Status CreateDirIfMissing(const std::string& dir) = 0;
  // Makes the creates, renames and deletes of entries in dir durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;

  // ---- Beyond the seed API: virtuals with safe defaults. ----

  // Like NewWritableFile (create or truncate), with options. Default: plain
  // NewWritableFile when no option is set, else Unimplemented.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFileWithOptions(
      const std::string& path, const FileOptions& options);

  // Takes an exclusive lock on `path` (created if missing) that is held until the
  // returned FileLock is released with UnlockFile (or destroyed). A second LockFile
  // of the same path, from this process or (POSIX) another one, fails with
  // FailedPrecondition. Default: a process-wide table of held paths.
  virtual absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path);
  // Releases a lock taken by LockFile of this Env; destroying the FileLock
  // releases it too. InvalidArgument if `lock` is null.
  virtual absl::Status UnlockFile(std::unique_ptr<FileLock> lock);

  // Opens the existing file `path` for writing from `offset` on, over the bytes
  // already there (a preallocated, zero-filled or recycled file): Append writes
  // at offset, offset + n, ..., and extends the file once it passes the end;
  // nothing is truncated and bytes beyond what is written keep their contents.
  // Size() is offset plus the bytes appended. Sync makes the written bytes
  // durable. NotFound if the file is missing; InvalidArgument if offset is
  // beyond its end. Default: Unimplemented (callers fall back to
  // NewWritableFile).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path, uint64_t offset);
  // ReopenWritableFile with options. Default: plain ReopenWritableFile when no
  // option is set, else Unimplemented (callers fall back to
  // ReopenWritableFile).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>>
  ReopenWritableFileWithOptions(const std::string& path, uint64_t offset,
                                const FileOptions& options);

  // Removes an empty directory. Default: Unimplemented.
  virtual absl::Status DeleteDir(const std::string& dir);

  // Microseconds since an arbitrary, fixed epoch. Default: wall clock.
  virtual uint64_t NowMicros();
};

// Creates every missing level of `dir` (absolute or relative) and, after
// creating each level, syncs its parent before going on: a directory whose own
// entry is not durable takes everything in it along at a power loss, however
// well its files were synced (docs/DURABILITY.md, section 1). Levels that
// exist are left alone and no directory is synced for them. An error names the
// level (and the parent being synced) it failed on.
absl::Status CreateDirsDurably(Env* env, const std::string& dir);

}  // namespace segwal

#endif  // SEGWAL_ENV_ENV_H_
