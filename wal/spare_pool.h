// SparePool: the WAL's spare segment files (SegmentedWalOptions::
// preallocate_segments, background_preallocation, recycle_segments;
// FORMAT.md, "Spare files") and the spare thread that prepares them.
//
// Owns: the list of ready spares (oldest first), the counter that names new
// spares, whether spares and recycling are in use, the "prepare one now"
// request, the spare counters of WalStats, and the spare thread.
//
// Lock: its own mu_ guards all of that. It is a leaf: taken with or without
// the WAL's mu_ (SegmentedWal::Impl::mu_) and the I/O token held, never held
// while taking another lock, making a file operation or calling out of the
// pool (the error callback is called without it). Order, wal/README.md:
// truncate_mu_, I/O token, the WAL's mu_, SparePool::mu_, Env locks.
//
// Promises: a spare handed out (Take, NewEmpty, NewPath, RecycleName) is
// handed out once; a name is never reused by this instance; once spares are
// disabled (a failed preparation, an Env that cannot write in place) they stay
// disabled. Cost: every call but WantsSpareHint takes mu_ (uncontended
// except against the spare thread's bookkeeping); PrepareOrGiveUp writes and
// fdatasyncs a zero-filled file of about segment_target_size (at most
// kMaxSpareSize), on the spare thread or on the caller's.

#ifndef SEGWAL_WAL_SPARE_POOL_H_
#define SEGWAL_WAL_SPARE_POOL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "env/env.h"
#include "port/mutex.h"

namespace segwal {

// Spares are zero-filled up to the segment target size, but no further than
// this: a segment that grows beyond its spare extends the file as usual.
inline constexpr uint64_t kMaxSpareSize = uint64_t{256} << 20;

class SparePool {
 public:
  struct Spare {
    std::string path;
    uint64_t size;
  };
  struct Counters {
    uint64_t zero_filled = 0;  // WalStats::spares_zero_filled
    uint64_t recycled = 0;     // WalStats::spares_recycled
    uint64_t failures = 0;     // WalStats::spare_failures
  };

  // From SegmentedWalOptions (SegmentedWal::Impl fills it in).
  struct Options {
    std::string wal_dir;               // normalised by Open
    uint64_t segment_target_size = 0;  // spares are this long (page-rounded)
    bool preallocate = false;          // preallocate_segments
    bool background = false;           // background_preallocation
    size_t recycle_segments = 0;
    // Recycled files' stale bytes read as a torn tail, which
    // kAbsoluteConsistency refuses: false in that mode.
    bool recycle_allowed = true;
  };
  SparePool(const Options& options, Env* env);
  ~SparePool() ABSL_LOCKS_EXCLUDED(mu_);  // Stop()
  SparePool(const SparePool&) = delete;
  SparePool& operator=(const SparePool&) = delete;

  // Decides whether spares are used, adopts the spare files a previous
  // instance left among `children` (the WAL directory's entries), deleting
  // extras. Called once by recovery, before the spare thread starts.
  void SetUp(const std::vector<std::string>& children) ABSL_LOCKS_EXCLUDED(mu_);
  // Starts the spare thread if spares are in use and prepared in the
  // background. It calls on_error (without mu_) with any failure that is not
  // just a full disk (see PrepareOrGiveUp).
  void Start(std::function<void(const absl::Status&)> on_error)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the spare thread (after the preparation it is in, if any).
  // Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Spares are in use and none is ready: the caller creating a segment may
  // prepare one in line (background_preallocation off, recovery).
  bool NeedsOne() const ABSL_LOCKS_EXCLUDED(mu_);
  // The active segment has `framed_size` bytes: once it is a quarter of the
  // target and no spare is ready or requested, requests one (the spare thread
  // prepares it ahead of the roll). Called by Append for every record: see
  // WantsSpareHint for why that costs no lock almost always.
  void NoteActiveSize(uint64_t framed_size) ABSL_LOCKS_EXCLUDED(mu_) {
    if (framed_size < target_size_ / 4) return;
    if (!want_hint_.load(std::memory_order_acquire)) return;
    Request();
  }
  // Writes a zero-filled spare and adds it to the pool; the request is
  // cleared either way. On failure deletes what it wrote and stops using
  // spares (counted in failures). A full disk (ResourceExhausted) only ends
  // preallocation and returns OK: records go on until their own writes fail.
  // Any other error is returned, and the caller poisons the instance as for
  // any failed write.
  absl::Status PrepareOrGiveUp() ABSL_LOCKS_EXCLUDED(mu_);
  // The oldest ready spare, if spares are in use.
  std::optional<Spare> Take() ABSL_LOCKS_EXCLUDED(mu_);
  // A fresh spare name (the file is not created).
  std::string NewPath() ABSL_LOCKS_EXCLUDED(mu_);
  // An empty file under a fresh spare name.
  absl::StatusOr<Spare> NewEmpty() ABSL_LOCKS_EXCLUDED(mu_);
  // The Env cannot write in place: stops using spares and hands back the
  // ready ones, for the caller to delete (without any lock).
  std::deque<Spare> DisableAndTakeAll() ABSL_LOCKS_EXCLUDED(mu_);
  // TruncateBefore: the name to recycle a deleted segment under, or "" to
  // delete it (recycling off, or recycle_segments spares ready).
  std::string RecycleName() ABSL_LOCKS_EXCLUDED(mu_);
  // TruncateBefore renamed a segment to `path` (from RecycleName).
  void AddRecycled(std::string path, uint64_t size) ABSL_LOCKS_EXCLUDED(mu_);
  Counters counters() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::string PathOf(uint64_t id) const;
  void Request() ABSL_LOCKS_EXCLUDED(mu_);
  // Recomputes want_hint_ after a change of the fields it summarises.
  void UpdateHintLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    want_hint_.store(enabled_ && !wanted_ && spares_.empty(),
                     std::memory_order_release);
  }
  // Writes the zero-filled spare (PrepareOrGiveUp without the giving up).
  absl::Status Prepare() ABSL_LOCKS_EXCLUDED(mu_);
  void ThreadMain() ABSL_LOCKS_EXCLUDED(mu_);

  // Immutable after construction.
  Env* const env_;
  const std::string wal_dir_;
  const uint64_t target_size_;
  const bool preallocate_;
  const bool background_;
  const size_t recycle_segments_;
  const bool recycle_allowed_;

  mutable port::Mutex mu_;
  port::CondVar cv_;  // the spare thread waits on it for a request or Stop
  std::deque<Spare> spares_ ABSL_GUARDED_BY(mu_);  // ready, oldest first
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool enabled_ ABSL_GUARDED_BY(mu_) = false;
  bool recycle_enabled_ ABSL_GUARDED_BY(mu_) = false;
  // The active segment is a quarter full and no spare is ready: prepare one.
  bool wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  Counters counters_ ABSL_GUARDED_BY(mu_);
  // enabled_ && !wanted_ && spares_.empty(), written under mu_ whenever one of
  // them changes and read without it by NoteActiveSize, so that Append takes
  // mu_ only when a request may be due. Read without the lock on purpose: a
  // stale value delays or repeats a check that Request makes again under mu_.
  std::atomic<bool> want_hint_{false};
  std::function<void(const absl::Status&)> on_error_;  // set before the thread
  // Started by Start, joined by Stop; only the thread that owns the WAL
  // (Open, the destructor) touches it.
  std::thread thread_;
};

}  // namespace segwal

#endif  // SEGWAL_WAL_SPARE_POOL_H_
