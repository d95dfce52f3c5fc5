// The POSIX Env (Env::Default()): the Env itself, the plain buffered and the
// direct-I/O writable files, the read-only files and file locks. The io_uring
// writable file is in env/posix_io_uring_file.cc; the errno mapping and the
// helpers both share are in env/posix_io.cc. What it promises beyond env/env.h
// (buffering, direct I/O, locks, error mapping): env/posix_env.h.
//
// Locking: the files hold no locks (each is used by one thread at a time,
// env/env.h). PosixLockTable::mu guards the process-wide table of files this
// process holds a flock on; LockFile and ~PosixFileLock take it around the
// lock file's flock and close, and call nothing else under it.

#include "env/posix_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "env/env.h"
#include "env/posix_io.h"
#include "env/posix_io_uring_file.h"
#include "port/mutex.h"

namespace segwal {
namespace {

using posix_internal::ClosedError;
using posix_internal::ErrnoText;
using posix_internal::FallocateKeepSize;
using posix_internal::NewPosixIoUringWritableFile;
using posix_internal::PosixBufferedFile;
using posix_internal::StartWriteBack;

int OpenRetry(const std::string& path, int flags, mode_t mode = 0644) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// Opens `path` read-only, refusing directories (open(2) would accept them and
// only the first read would fail).
absl::StatusOr<int> OpenForReading(const std::string& path) {
  const int fd = OpenRetry(path, O_RDONLY);
  if (fd < 0) return PosixError("open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return PosixError("fstat", path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return PosixError("open", path, EISDIR);
  }
  return fd;
}

// Writes all of [data, data+n) with write(2), retrying short writes and EINTR.
absl::Status WriteAll(int fd, const std::string& path, const char* data,
                      size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return PosixError("write", path, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

// Like WriteAll, with pwrite(2) at `offset`.
absl::Status PwriteAll(int fd, const std::string& path, const char* data,
                       size_t n, uint64_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return PosixError("pwrite", path, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return absl::OkStatus();
}

// ---- Writable files. ----

// Buffered writes through the page cache (write(2), fdatasync(2)). See
// posix_env.h.
class PosixWritableFile final : public PosixBufferedFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t initial_size)
      : PosixBufferedFile(std::move(path), fd, initial_size) {}
  ~PosixWritableFile() override {
    if (fd() >= 0) Close().IgnoreError();
  }

 private:
  absl::Status WriteThrough(const char* data, size_t n, bool sync) override {
    if (absl::Status s = WriteAll(fd(), path(), data, n); !s.ok()) return s;
    if (sync && ::fdatasync(fd()) != 0) {
      return PosixError("fdatasync", path(), errno);
    }
    return absl::OkStatus();
  }
};

// O_DIRECT writes through an aligned staging buffer. See posix_env.h.
//
// buf_ holds the file's bytes [buf_offset_, buf_offset_ + len_), with buf_offset_
// a multiple of kDirectIoAlignment. The first flushed_ bytes of buf_ are already
// on disk (as part of a zero-padded block).
class PosixDirectWritableFile final : public WritableFile {
 public:
  static constexpr size_t kAlign = kDirectIoAlignment;
  static_assert(kDirectIoBufferSize % kAlign == 0);

  // Writes start at `offset` (a multiple of kAlign) of a file that is
  // `initial_size` bytes long (0 for a new file).
  PosixDirectWritableFile(std::string path, int fd, uint64_t offset = 0,
                          uint64_t initial_size = 0)
      : path_(std::move(path)),
        fd_(fd),
        buf_(static_cast<char*>(std::aligned_alloc(kAlign, kDirectIoBufferSize))),
        buf_offset_(offset),
        initial_size_(initial_size),
        size_(offset) {}
  ~PosixDirectWritableFile() override {
    if (fd_ >= 0) Close().IgnoreError();
  }

  // REQUIRES: called once, right after construction.
  bool ok() const { return buf_ != nullptr; }

  absl::Status Append(absl::string_view data) override {
    if (absl::Status s = CheckUsable("write"); !s.ok()) return s;
    size_ += data.size();
    while (!data.empty()) {
      const size_t n = std::min(data.size(), kDirectIoBufferSize - len_);
      std::memcpy(buf_.get() + len_, data.data(), n);
      len_ += n;
      data.remove_prefix(n);
      if (len_ == kDirectIoBufferSize) {
        absl::Status s = Poison(PwriteAll(fd_, path_, buf_.get(),
                                          kDirectIoBufferSize, buf_offset_));
        if (!s.ok()) return s;
        disk_end_ = std::max(disk_end_, buf_offset_ + kDirectIoBufferSize);
        buf_offset_ += kDirectIoBufferSize;
        len_ = 0;
        flushed_ = 0;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Flush() override {
    if (absl::Status s = CheckUsable("pwrite"); !s.ok()) return s;
    return FlushBuffer();
  }

  absl::Status Sync() override {
    if (absl::Status s = CheckUsable("fdatasync"); !s.ok()) return s;
    if (absl::Status s = FlushBuffer(); !s.ok()) return s;
    if (::fdatasync(fd_) != 0) {
      return Poison(PosixError("fdatasync", path_, errno));
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return ClosedError("close", path_);
    absl::Status s = error_.ok() ? FlushBuffer() : error_;
    // Cut the zero padding of the last block where it extended the file (a
    // reopened file keeps its length: the padding then only replaced bytes
    // after Size() in that block).
    const uint64_t keep = std::max(size_, initial_size_);
    if (s.ok() && disk_end_ > keep &&
        ::ftruncate(fd_, static_cast<off_t>(keep)) != 0) {
      s = PosixError("ftruncate", path_, errno);
    }
    if (::close(fd_) != 0 && s.ok()) s = PosixError("close", path_, errno);
    fd_ = -1;
    return s;
  }

  uint64_t Size() const override { return size_; }

  absl::Status Allocate(uint64_t offset, uint64_t len) override {
    if (fd_ < 0) return ClosedError("fallocate", path_);
    return FallocateKeepSize(fd_, path_, offset, len);
  }

 private:
  struct FreeDeleter {
    void operator()(char* p) const { std::free(p); }
  };

  absl::Status CheckUsable(absl::string_view op) const {
    if (fd_ < 0) return ClosedError(op, path_);
    return error_;
  }
  absl::Status Poison(absl::Status s) {
    if (!s.ok() && error_.ok()) error_ = s;
    return s;
  }
  // Writes the buffered bytes as whole blocks (the last one zero-padded) and
  // keeps a partial last block buffered, so it is rewritten when it grows.
  absl::Status FlushBuffer() {
    if (len_ == flushed_) return absl::OkStatus();
    const size_t padded = (len_ + kAlign - 1) / kAlign * kAlign;
    std::memset(buf_.get() + len_, 0, padded - len_);
    absl::Status s =
        Poison(PwriteAll(fd_, path_, buf_.get(), padded, buf_offset_));
    if (!s.ok()) return s;
    disk_end_ = std::max(disk_end_, buf_offset_ + padded);
    const size_t whole = len_ / kAlign * kAlign;
    const size_t tail = len_ - whole;
    if (whole > 0 && tail > 0) std::memmove(buf_.get(), buf_.get() + whole, tail);
    buf_offset_ += whole;
    len_ = tail;
    flushed_ = tail;
    return absl::OkStatus();
  }

  const std::string path_;
  int fd_;  // -1 once closed
  const std::unique_ptr<char, FreeDeleter> buf_;
  uint64_t buf_offset_ = 0;  // file offset of buf_[0]; aligned
  const uint64_t initial_size_;  // the file's size when it was opened
  size_t len_ = 0;           // bytes in buf_
  size_t flushed_ = 0;       // leading bytes of buf_ already on disk
  uint64_t disk_end_ = 0;    // end of the furthest block written
  uint64_t size_ = 0;        // write offset at open + bytes appended
  absl::Status error_;
};

// Opens `path` with O_DIRECT and `flags`, or fails with InvalidArgument
// saying the file system refuses direct I/O (EINVAL).
absl::StatusOr<int> OpenDirect(const std::string& path, int flags) {
  const int fd = OpenRetry(path, flags | O_DIRECT);
  if (fd >= 0) return fd;
  const int err = errno;
  if (err == EINVAL) {
    return absl::InvalidArgumentError(absl::StrCat(
        "open ", path, " with O_DIRECT: the file system refuses direct I/O (",
        ErrnoText(err), ")"));
  }
  return PosixError("open", path, err);
}

// A writable file on `fd` (positioned at `offset`, which is also where writing
// starts) for `options`: an io_uring file when asked for and possible, else a
// plain PosixWritableFile. Takes ownership of fd.
std::unique_ptr<WritableFile> NewPosixWritableFile(const std::string& path,
                                                   int fd, uint64_t offset,
                                                   const FileOptions& options) {
  if (options.use_io_uring) {
    std::unique_ptr<WritableFile> file =
        NewPosixIoUringWritableFile(path, fd, offset);
    if (file != nullptr) return file;
  }
  return std::make_unique<PosixWritableFile>(path, fd, offset);
}

// ---- Read-only files. ----

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { ::close(fd_); }

  absl::Status Read(size_t n, absl::string_view* result,
                    char* scratch) override {
    ssize_t r;
    do {
      r = ::read(fd_, scratch, n);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      *result = absl::string_view();
      return PosixError("read", path_, errno);
    }
    *result = absl::string_view(scratch, static_cast<size_t>(r));
    return absl::OkStatus();
  }

  absl::Status Skip(uint64_t n) override {
    const off_t pos = ::lseek(fd_, 0, SEEK_CUR);
    if (pos < 0) return PosixError("lseek", path_, errno);
    struct stat st;
    if (::fstat(fd_, &st) != 0) return PosixError("fstat", path_, errno);
    const uint64_t cur = static_cast<uint64_t>(pos);
    const uint64_t end = static_cast<uint64_t>(st.st_size);
    const uint64_t target = cur >= end ? cur : cur + std::min(n, end - cur);
    if (::lseek(fd_, static_cast<off_t>(target), SEEK_SET) < 0) {
      return PosixError("lseek", path_, errno);
    }
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  absl::Status Read(uint64_t offset, size_t n, absl::string_view* result,
                    char* scratch) const override {
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd_, scratch + got, n - got,
                                static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        *result = absl::string_view();
        return PosixError("pread", path_, errno);
      }
      if (r == 0) break;  // end of file
      got += static_cast<size_t>(r);
    }
    *result = absl::string_view(scratch, got);
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  const int fd_;
};

// ---- Locks. ----

// Files (device, inode) locked by this process, with the pid that locked them:
// after fork() the child inherits the table but not the locks, so entries made
// by another pid are ignored. Never destroyed.
class PosixLockTable {
 public:
  using Key = std::pair<dev_t, ino_t>;
  static PosixLockTable& Get() {
    static PosixLockTable* table = new PosixLockTable;
    return *table;
  }
  port::Mutex mu;
  std::map<Key, pid_t> held ABSL_GUARDED_BY(mu);
};

class PosixFileLock final : public FileLock {
 public:
  PosixFileLock(int fd, PosixLockTable::Key key) : fd_(fd), key_(key) {}
  ~PosixFileLock() override {
    PosixLockTable& table = PosixLockTable::Get();
    port::MutexLock l(&table.mu);
    // Close first, under the table lock, so no thread of this process can see
    // the entry gone while the flock is still held.
    ::close(fd_);
    auto it = table.held.find(key_);
    if (it != table.held.end() && it->second == ::getpid()) table.held.erase(it);
  }

 private:
  const int fd_;
  const PosixLockTable::Key key_;
};

// ---- The Env. ----

class PosixEnv final : public Env {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    const int fd = OpenRetry(path, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0) return PosixError("open", path, errno);
    return std::unique_ptr<WritableFile>(
        std::make_unique<PosixWritableFile>(path, fd, 0));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    const int fd = OpenRetry(path, O_WRONLY | O_CREAT | O_APPEND);
    if (fd < 0) return PosixError("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return PosixError("fstat", path, err);
    }
    return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(
        path, fd, static_cast<uint64_t>(st.st_size)));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path, uint64_t offset) override {
    return ReopenWritableFileWithOptions(path, offset, FileOptions());
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFileWithOptions(
      const std::string& path, uint64_t offset,
      const FileOptions& options) override {
    if (options.use_direct_io && offset % kDirectIoAlignment != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "reopen ", path, " for direct I/O at offset ", offset,
          ": not a multiple of ", kDirectIoAlignment,
          " (direct writes start on a block boundary)"));
    }
    int fd;
    if (options.use_direct_io) {
      absl::StatusOr<int> direct = OpenDirect(path, O_WRONLY);
      if (!direct.ok()) return direct.status();
      fd = *direct;
    } else {
      fd = OpenRetry(path, O_WRONLY);  // no O_CREAT: NotFound if missing
      if (fd < 0) return PosixError("open", path, errno);
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return PosixError("fstat", path, err);
    }
    if (offset > static_cast<uint64_t>(st.st_size)) {
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          "reopen ", path, " for writing at offset ", offset,
          ": beyond its end (", st.st_size, " bytes)"));
    }
    if (options.use_direct_io) {
      auto file = std::make_unique<PosixDirectWritableFile>(
          path, fd, offset, static_cast<uint64_t>(st.st_size));
      if (!file->ok()) {
        ::close(fd);
        return PosixError("aligned_alloc", path, ENOMEM);
      }
      return std::unique_ptr<WritableFile>(std::move(file));
    }
    // A plain file writes at the descriptor's position; an io_uring file at
    // explicit offsets starting from `offset`.
    if (::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
      const int err = errno;
      ::close(fd);
      return PosixError("lseek", path, err);
    }
    return NewPosixWritableFile(path, fd, offset, options);
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFileWithOptions(
      const std::string& path, const FileOptions& options) override {
    if (!options.use_direct_io) {
      const int fd = OpenRetry(path, O_WRONLY | O_CREAT | O_TRUNC);
      if (fd < 0) return PosixError("open", path, errno);
      return NewPosixWritableFile(path, fd, 0, options);
    }
    absl::StatusOr<int> direct =
        OpenDirect(path, O_WRONLY | O_CREAT | O_TRUNC);
    if (!direct.ok()) return direct.status();
    const int fd = *direct;
    auto file = std::make_unique<PosixDirectWritableFile>(path, fd);
    if (!file->ok()) {
      ::close(fd);
      return PosixError("aligned_alloc", path, ENOMEM);
    }
    return std::unique_ptr<WritableFile>(std::move(file));
  }

  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    absl::StatusOr<int> fd = OpenForReading(path);
    if (!fd.ok()) return fd.status();
    return std::unique_ptr<SequentialFile>(
        std::make_unique<PosixSequentialFile>(path, *fd));
  }

  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    absl::StatusOr<int> fd = OpenForReading(path);
    if (!fd.ok()) return fd.status();
    return std::unique_ptr<RandomAccessFile>(
        std::make_unique<PosixRandomAccessFile>(path, *fd));
  }

  bool FileExists(const std::string& path) override {
    return ::access(path.c_str(), F_OK) == 0;
  }

  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return PosixError("opendir", dir, errno);
    std::vector<std::string> names;
    for (;;) {
      errno = 0;
      const struct dirent* e = ::readdir(d);
      if (e == nullptr) break;
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) {
        continue;
      }
      names.emplace_back(e->d_name);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return PosixError("readdir", dir, err);
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat", path, errno);
    if (S_ISDIR(st.st_mode)) return PosixError("stat", path, EISDIR);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::Status DeleteFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError("unlink", path, errno);
    return absl::OkStatus();
  }

  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError("rename", absl::StrCat(from, " -> ", to), errno);
    }
    return absl::OkStatus();
  }

  absl::Status TruncateFile(const std::string& path, uint64_t size) override {
    int r;
    do {
      r = ::truncate(path.c_str(), static_cast<off_t>(size));
    } while (r != 0 && errno == EINTR);
    if (r != 0) return PosixError("truncate", path, errno);
    return absl::OkStatus();
  }

  absl::Status CreateDirIfMissing(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) == 0) return absl::OkStatus();
    const int err = errno;
    struct stat st;
    if (err == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return absl::OkStatus();
    }
    return PosixError("mkdir", dir, err);
  }

  absl::Status SyncDir(const std::string& dir) override {
    const int fd = OpenRetry(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return PosixError("open", dir, errno);
    absl::Status s;
    if (::fsync(fd) != 0) s = PosixError("fsync", dir, errno);
    ::close(fd);
    return s;
  }

  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override {
    const int fd = OpenRetry(path, O_RDWR | O_CREAT);
    if (fd < 0) return PosixError("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return PosixError("fstat", path, err);
    }
    const PosixLockTable::Key key(st.st_dev, st.st_ino);
    PosixLockTable& table = PosixLockTable::Get();
    port::MutexLock l(&table.mu);
    auto it = table.held.find(key);
    if (it != table.held.end() && it->second == ::getpid()) {
      ::close(fd);  // flock locks belong to the other descriptor: unaffected
      return absl::FailedPreconditionError(
          absl::StrCat("lock ", path, ": already held by this process"));
    }
    int r;
    do {
      r = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return absl::FailedPreconditionError(
            absl::StrCat("lock ", path, ": held by another process"));
      }
      return PosixError("flock", path, err);
    }
    table.held[key] = ::getpid();
    return std::unique_ptr<FileLock>(std::make_unique<PosixFileLock>(fd, key));
  }

  absl::Status DeleteDir(const std::string& dir) override {
    if (::rmdir(dir.c_str()) != 0) return PosixError("rmdir", dir, errno);
    return absl::OkStatus();
  }
};

}  // namespace

Env* Env::Default() {
  static Env* const env = new PosixEnv;
  return env;
}

}  // namespace segwal
