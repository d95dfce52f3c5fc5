// The POSIX Env: Env::Default(). See env/posix_env.h for what it promises beyond
// env/env.h (buffering, direct I/O, locks, error mapping).

#include "env/posix_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "port/mutex.h"
#include "env/env.h"

#if defined(__SANITIZE_THREAD__)
#define SEGWAL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SEGWAL_TSAN 1
#endif
#endif
#ifdef SEGWAL_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace segwal {
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

std::string ErrnoText(int err) {
  char buf[256];
  buf[0] = '\0';
  return StrErrorText(strerror_r(err, buf, sizeof(buf)), buf);
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

absl::Status ClosedError(absl::string_view op, const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat(op, " ", path, ": file is closed"));
}

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

// ---- Writable files. ----

// Buffered writes through the page cache. See posix_env.h.
class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t initial_size)
      : path_(std::move(path)),
        fd_(fd),
        buf_(new char[kPosixWritableBufferSize]),
        size_(initial_size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) Close().IgnoreError();
  }

  absl::Status Append(absl::string_view data) override {
    if (absl::Status s = CheckUsable("write"); !s.ok()) return s;
    size_ += data.size();
    const size_t fits = std::min(data.size(), kPosixWritableBufferSize - len_);
    std::memcpy(buf_.get() + len_, data.data(), fits);
    len_ += fits;
    data.remove_prefix(fits);
    if (data.empty()) return absl::OkStatus();
    // The buffer is full; empty it, then buffer the rest if it is small.
    if (absl::Status s = FlushBuffer(); !s.ok()) return s;
    if (data.size() < kPosixWritableBufferSize) {
      std::memcpy(buf_.get(), data.data(), data.size());
      len_ = data.size();
      return absl::OkStatus();
    }
    return Poison(WriteAll(fd_, path_, data.data(), data.size()));
  }

  absl::Status Flush() override {
    if (absl::Status s = CheckUsable("write"); !s.ok()) return s;
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

  absl::Status RangeSync(uint64_t offset, uint64_t nbytes) override {
    if (absl::Status s = CheckUsable("sync_file_range"); !s.ok()) return s;
    // Only a hint: a file system that cannot do it (ENOSYS, EINVAL) loses
    // nothing, and a real write-back error will surface in the next Sync.
    (void)::sync_file_range(fd_, static_cast<off64_t>(offset),
                            static_cast<off64_t>(nbytes),
                            SYNC_FILE_RANGE_WRITE);
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return ClosedError("close", path_);
    absl::Status s = error_.ok() ? FlushBuffer() : error_;
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
  absl::Status CheckUsable(absl::string_view op) const {
    if (fd_ < 0) return ClosedError(op, path_);
    return error_;
  }
  // Remembers the first failure: see "poisoned" in posix_env.h.
  absl::Status Poison(absl::Status s) {
    if (!s.ok() && error_.ok()) error_ = s;
    return s;
  }
  absl::Status FlushBuffer() {
    const size_t n = len_;
    len_ = 0;
    return Poison(WriteAll(fd_, path_, buf_.get(), n));
  }

  const std::string path_;
  int fd_;  // -1 once closed
  const std::unique_ptr<char[]> buf_;
  size_t len_ = 0;  // bytes in buf_
  uint64_t size_;   // file size the caller sees: written + buffered
  absl::Status error_;
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

// ---- io_uring. ----

std::atomic<uint64_t> uring_submits{0};
std::atomic<int> uring_simulated_short_writes{0};

// Entries in each file's ring: a Sync needs two (write + fsync).
constexpr unsigned kUringEntries = 4;

// liburing maps and unmaps its rings with raw system calls that TSan does not
// intercept. When the kernel gives a closed ring's addresses to a new ring in
// another thread, TSan would take the new ring's first SQE writes for a race
// with the old ring's last ones; the kernel orders them (munmap before mmap),
// and these two calls tell TSan so. No-ops in other builds.
#ifdef SEGWAL_TSAN
char ring_recycling;
void RingMapped() { __tsan_acquire(&ring_recycling); }
void RingUnmapping() { __tsan_release(&ring_recycling); }
#else
void RingMapped() {}
void RingUnmapping() {}
#endif

// A new ring, or -errno.
int InitRing(struct io_uring* ring) {
  const int r = io_uring_queue_init(kUringEntries, ring, 0);
  if (r == 0) RingMapped();
  return r;
}

void ExitRing(struct io_uring* ring) {
  RingUnmapping();
  io_uring_queue_exit(ring);
}

struct UringProbe {
  bool ok = false;
  std::string why;
};

// Done once per process: can this kernel (and seccomp policy, and sysctl) give
// us a ring with IORING_OP_WRITE and IORING_OP_FSYNC?
UringProbe RunUringProbe() {
  UringProbe p;
  struct io_uring ring;
  const int r = InitRing(&ring);
  if (r < 0) {
    p.why = absl::StrCat("io_uring_queue_init: ", ErrnoText(-r));
    return p;
  }
  struct io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (probe == nullptr) {
    p.why = "io_uring_get_probe: the kernel cannot list its opcodes";
  } else if (!io_uring_opcode_supported(probe, IORING_OP_WRITE)) {
    p.why = "io_uring_get_probe: IORING_OP_WRITE unsupported";
  } else if (!io_uring_opcode_supported(probe, IORING_OP_FSYNC)) {
    p.why = "io_uring_get_probe: IORING_OP_FSYNC unsupported";
  } else {
    p.ok = true;
    p.why = "io_uring available (IORING_OP_WRITE, IORING_OP_FSYNC)";
  }
  if (probe != nullptr) io_uring_free_probe(probe);
  ExitRing(&ring);
  return p;
}

const UringProbe& GetUringProbe() {
  static const UringProbe* const probe = new UringProbe(RunUringProbe());
  return *probe;
}

bool UringDisabledByEnvironment() {
  const char* v = std::getenv("SEGWAL_DISABLE_IO_URING");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

// Called when use_io_uring falls back to a plain file; says so once per
// process.
void NoteUringFallback(const std::string& why) {
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    std::fprintf(
        stderr,
        "segwal: io_uring unavailable (%s); using write()/fdatasync()\n",
        why.c_str());
  }
}

// Buffered like PosixWritableFile, but the buffer goes to the kernel through
// the file's own io_uring. See posix_env.h.
class PosixUringWritableFile final : public WritableFile {
 public:
  // Takes ownership of fd and of the initialized `ring`. Writes start at
  // `offset` (the file's size as the caller sees it).
  PosixUringWritableFile(std::string path, int fd, const struct io_uring& ring,
                         uint64_t offset)
      : path_(std::move(path)),
        fd_(fd),
        ring_(ring),
        buf_(new char[kPosixWritableBufferSize]),
        write_offset_(offset),
        size_(offset) {}
  ~PosixUringWritableFile() override {
    if (fd_ >= 0) Close().IgnoreError();
  }

  absl::Status Append(absl::string_view data) override {
    if (absl::Status s = CheckUsable("write"); !s.ok()) return s;
    size_ += data.size();
    const size_t fits = std::min(data.size(), kPosixWritableBufferSize - len_);
    std::memcpy(buf_.get() + len_, data.data(), fits);
    len_ += fits;
    data.remove_prefix(fits);
    if (data.empty()) return absl::OkStatus();
    if (absl::Status s = FlushBuffer(/*sync=*/false); !s.ok()) return s;
    if (data.size() < kPosixWritableBufferSize) {
      std::memcpy(buf_.get(), data.data(), data.size());
      len_ = data.size();
      return absl::OkStatus();
    }
    return Write(data.data(), data.size(), /*sync=*/false);
  }

  absl::Status Flush() override {
    if (absl::Status s = CheckUsable("write"); !s.ok()) return s;
    return FlushBuffer(/*sync=*/false);
  }

  absl::Status Sync() override {
    if (absl::Status s = CheckUsable("fdatasync"); !s.ok()) return s;
    return FlushBuffer(/*sync=*/true);
  }

  absl::Status RangeSync(uint64_t offset, uint64_t nbytes) override {
    if (absl::Status s = CheckUsable("sync_file_range"); !s.ok()) return s;
    // Only a hint, as for PosixWritableFile.
    (void)::sync_file_range(fd_, static_cast<off64_t>(offset),
                            static_cast<off64_t>(nbytes),
                            SYNC_FILE_RANGE_WRITE);
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return ClosedError("close", path_);
    absl::Status s = error_.ok() ? FlushBuffer(/*sync=*/false) : error_;
    // Nothing is in flight: every submission was waited for.
    ExitRing(&ring_);
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
  // user_data of the two kinds of request.
  static constexpr uint64_t kWriteTag = 1;
  static constexpr uint64_t kSyncTag = 2;
  // Largest write in one request (the kernel would cut it near 2 GiB anyway).
  static constexpr size_t kMaxWrite = size_t{1} << 30;

  absl::Status CheckUsable(absl::string_view op) const {
    if (fd_ < 0) return ClosedError(op, path_);
    return error_;
  }
  absl::Status Poison(absl::Status s) {
    if (!s.ok() && error_.ok()) error_ = s;
    return s;
  }
  absl::Status FlushBuffer(bool sync) {
    const size_t n = len_;
    len_ = 0;
    if (n == 0 && !sync) return absl::OkStatus();
    return Write(buf_.get(), n, sync);
  }

  // Writes [data, data + n) at write_offset_ and then, if `sync`, makes the
  // file's data durable. A full write and its fsync go in one submission; each
  // round makes progress (bytes written) or ends with an error.
  absl::Status Write(const char* data, size_t n, bool sync) {
    bool synced = !sync;
    while (n > 0 || !synced) {
      const size_t chunk = std::min(n, kMaxWrite);
      // Link the fsync only behind the write of the last byte.
      const bool with_sync = sync && chunk == n;
      unsigned queued = 0;
      // The queue is empty between calls, so two entries are always free.
      if (chunk > 0) {
        struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_write(sqe, fd_, data, static_cast<unsigned>(chunk),
                            write_offset_);
        io_uring_sqe_set_data64(sqe, kWriteTag);
        if (with_sync) sqe->flags |= IOSQE_IO_LINK;
        ++queued;
      }
      if (with_sync) {
        struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data64(sqe, kSyncTag);
        ++queued;
      }
      int write_res = 0;
      int sync_res = -ECANCELED;
      if (absl::Status s = SubmitAndReap(queued, &write_res, &sync_res);
          !s.ok()) {
        return Poison(s);
      }
      bool wrote_all = true;
      if (chunk > 0) {
        if (write_res == -EINTR) continue;  // as write(2): try again
        if (write_res < 0) {
          return Poison(PosixError("write", path_, -write_res));
        }
        if (write_res == 0) {
          // write(2) never returns 0 for n > 0 on a file; do not spin on it.
          return Poison(absl::InternalError(
              absl::StrCat("write ", path_, ": no progress at offset ",
                           write_offset_, " (", chunk, " bytes submitted)")));
        }
        const size_t written = static_cast<size_t>(write_res);
        data += written;
        n -= written;
        write_offset_ += written;
        wrote_all = n == 0;
      }
      if (!with_sync) continue;
      if (sync_res == 0 && wrote_all) {
        synced = true;
      } else if (sync_res < 0 && sync_res != -ECANCELED && sync_res != -EINTR) {
        return Poison(PosixError("fdatasync", path_, -sync_res));
      }
      // Else the fsync was cancelled by a short write (or by a signal): it is
      // issued again after the rest of the bytes.
    }
    return absl::OkStatus();
  }

  // Submits the `queued` prepared requests and waits for all of them with one
  // io_uring_enter (more only if the kernel takes fewer requests than offered),
  // and stores their results.
  absl::Status SubmitAndReap(unsigned queued, int* write_res, int* sync_res) {
    absl::Status status;
    unsigned submitted = 0;
    while (submitted < queued) {
      uring_submits.fetch_add(1, std::memory_order_relaxed);
      // The kernel waits only when it took every request, so asking for all
      // `queued` completions cannot hang on a partial submission.
      const int r = submitted == 0 ? io_uring_submit_and_wait(&ring_, queued)
                                   : io_uring_submit(&ring_);
      if (r == -EINTR) continue;
      if (r <= 0) {
        // Requests not taken stay in the submission queue; the caller poisons
        // the file, so they are never submitted.
        status = PosixError("io_uring_enter", path_, r < 0 ? -r : EAGAIN);
        break;
      }
      submitted += static_cast<unsigned>(r);
    }
    // Submitted requests use buffers that must stay valid until they complete:
    // reap every one before returning, even after an error.
    bool cancel_sync = false;
    for (unsigned reaped = 0; reaped < submitted;) {
      struct io_uring_cqe* cqe = nullptr;
      const int w = io_uring_wait_cqe(&ring_, &cqe);
      if (w == -EINTR) continue;
      if (w < 0) return PosixError("io_uring_wait_cqe", path_, -w);
      int res = cqe->res;
      const uint64_t tag = io_uring_cqe_get_data64(cqe);
      io_uring_cqe_seen(&ring_, cqe);
      ++reaped;
      if (tag == kWriteTag) {
        if (res > 1 && SimulateShortWrite()) {
          res /= 2;
          cancel_sync = true;  // what the kernel does to the linked fsync
        }
        *write_res = res;
      } else {
        *sync_res = cancel_sync ? -ECANCELED : res;
      }
    }
    return status;
  }

  static bool SimulateShortWrite() {
    int left = uring_simulated_short_writes.load(std::memory_order_relaxed);
    while (left > 0) {
      if (uring_simulated_short_writes.compare_exchange_weak(left, left - 1)) {
        return true;
      }
    }
    return false;
  }

  const std::string path_;
  int fd_;  // -1 once closed
  struct io_uring ring_;
  const std::unique_ptr<char[]> buf_;
  size_t len_ = 0;         // bytes in buf_
  uint64_t write_offset_;  // file offset of buf_[0]: where the next write goes
  uint64_t size_;          // file size the caller sees: written + buffered
  absl::Status error_;
};

// A writable file on `fd` (positioned at `offset`, which is also where writing
// starts) for `options`: an io_uring file when asked for and possible, else a
// plain PosixWritableFile. Takes ownership of fd.
std::unique_ptr<WritableFile> NewPosixWritableFile(const std::string& path,
                                                   int fd, uint64_t offset,
                                                   const FileOptions& options) {
  if (options.use_io_uring) {
    std::string why;
    if (PosixIoUringAvailable(&why)) {
      struct io_uring ring;
      const int r = InitRing(&ring);
      if (r == 0) {
        return std::make_unique<PosixUringWritableFile>(path, fd, ring, offset);
      }
      why = absl::StrCat("io_uring_queue_init for ", path, ": ", ErrnoText(-r));
    }
    NoteUringFallback(why);
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

absl::Status PosixError(absl::string_view op, absl::string_view path, int err) {
  return absl::Status(ErrnoCode(err),
                      absl::StrCat(op, " ", path, ": ", ErrnoText(err)));
}

bool PosixIoUringAvailable(std::string* why) {
  if (UringDisabledByEnvironment()) {
    if (why != nullptr) *why = "SEGWAL_DISABLE_IO_URING=1 is set";
    return false;
  }
  const UringProbe& probe = GetUringProbe();
  if (why != nullptr) *why = probe.why;
  return probe.ok;
}

uint64_t PosixIoUringSubmitsForTesting() {
  return uring_submits.load(std::memory_order_relaxed);
}

void SimulatePosixIoUringShortWritesForTesting(int n) {
  uring_simulated_short_writes.store(n, std::memory_order_relaxed);
}

Env* Env::Default() {
  static Env* const env = new PosixEnv;
  return env;
}

}  // namespace segwal
