// The io_uring-backed writable file of the POSIX Env (FileOptions::use_io_uring),
// the once-per-process probe that decides whether it can be used
// (PosixIoUringAvailable), and its test hooks. What it promises:
// env/posix_env.h, "io_uring".
//
// Locking: none. Each file owns its ring and, like every WritableFile, is used
// by one thread at a time (env/env.h). The process-wide state is the probe's
// result (a function-local static: built once, then only read), the "fallback
// already reported" flag and the two test counters, all atomic.

#include "env/posix_io_uring_file.h"

#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "env/posix_env.h"
#include "env/posix_io.h"

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
namespace posix_internal {
namespace {

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

// Buffered like the plain PosixWritableFile (env/posix_env.cc: both are
// PosixBufferedFiles), but the buffer goes to the kernel through the file's
// own io_uring. See posix_env.h.
class PosixUringWritableFile final : public PosixBufferedFile {
 public:
  // Takes ownership of fd and of the initialized `ring`. Writes start at
  // `offset` (the file's size as the caller sees it).
  PosixUringWritableFile(std::string path, int fd, const struct io_uring& ring,
                         uint64_t offset)
      : PosixBufferedFile(std::move(path), fd, offset),
        ring_(ring),
        write_offset_(offset) {}
  ~PosixUringWritableFile() override {
    if (fd() >= 0) Close().IgnoreError();
  }

 private:
  // user_data of the two kinds of request.
  static constexpr uint64_t kWriteTag = 1;
  static constexpr uint64_t kSyncTag = 2;
  // Largest write in one request (the kernel would cut it near 2 GiB anyway).
  static constexpr size_t kMaxWrite = size_t{1} << 30;

  // Nothing is in flight at Close: every submission was waited for.
  void ReleaseBeforeClose() override { ExitRing(&ring_); }

  // Writes [data, data + n) at write_offset_ and then, if `sync`, makes the
  // file's data durable. A full write and its fsync go in one submission; each
  // round makes progress (bytes written) or ends with an error.
  absl::Status WriteThrough(const char* data, size_t n, bool sync) override {
    bool synced = !sync;
    while (n > 0 || !synced) {
      const size_t chunk = std::min(n, kMaxWrite);
      // Link the fsync only behind the write of the last byte.
      const bool with_sync = sync && chunk == n;
      unsigned queued = 0;
      // The queue is empty between calls, so two entries are always free.
      if (chunk > 0) {
        struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_write(sqe, fd(), data, static_cast<unsigned>(chunk),
                            write_offset_);
        io_uring_sqe_set_data64(sqe, kWriteTag);
        if (with_sync) sqe->flags |= IOSQE_IO_LINK;
        ++queued;
      }
      if (with_sync) {
        struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_fsync(sqe, fd(), IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data64(sqe, kSyncTag);
        ++queued;
      }
      int write_res = 0;
      int sync_res = -ECANCELED;
      if (absl::Status s = SubmitAndReap(queued, &write_res, &sync_res);
          !s.ok()) {
        return s;
      }
      bool wrote_all = true;
      if (chunk > 0) {
        if (write_res == -EINTR) continue;  // as write(2): try again
        if (write_res < 0) {
          return PosixError("write", path(), -write_res);
        }
        if (write_res == 0) {
          // write(2) never returns 0 for n > 0 on a file; do not spin on it.
          return absl::InternalError(
              absl::StrCat("write ", path(), ": no progress at offset ",
                           write_offset_, " (", chunk, " bytes submitted)"));
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
        return PosixError("fdatasync", path(), -sync_res);
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
        status = PosixError("io_uring_enter", path(), r < 0 ? -r : EAGAIN);
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
      if (w < 0) return PosixError("io_uring_wait_cqe", path(), -w);
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

  struct io_uring ring_;
  uint64_t write_offset_;  // where the next WriteThrough writes
};

}  // namespace

std::unique_ptr<WritableFile> NewPosixIoUringWritableFile(
    const std::string& path, int fd, uint64_t offset) {
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
  return nullptr;
}

}  // namespace posix_internal

bool PosixIoUringAvailable(std::string* why) {
  if (posix_internal::UringDisabledByEnvironment()) {
    if (why != nullptr) *why = "SEGWAL_DISABLE_IO_URING=1 is set";
    return false;
  }
  const posix_internal::UringProbe& probe = posix_internal::GetUringProbe();
  if (why != nullptr) *why = probe.why;
  return probe.ok;
}

uint64_t PosixIoUringSubmitsForTesting() {
  return posix_internal::uring_submits.load(std::memory_order_relaxed);
}

void SimulatePosixIoUringShortWritesForTesting(int n) {
  posix_internal::uring_simulated_short_writes.store(
      n, std::memory_order_relaxed);
}

}  // namespace segwal
