// SegmentedWal::Impl: the WAL behind the public facade (segmented_wal.h).
// Private to //wal:wal. Its member functions are split over files by job,
// as RocksDB splits DBImpl (db_impl_write.cc, db_impl_open.cc, ...):
//
//   segmented_wal.cc  the facade and Open; LSNs and segment bookkeeping;
//                     framing and staging (Append, rolls); truncation; stats
//                     and listings; snapshots for readers; key rotation;
//                     Close
//   io_token.cc       the I/O token's executor: RunQueuedLocked (the only
//                     place the take-token / unlock / run / relock protocol
//                     is written), RunOps (create, write, seal, sync) and
//                     CreateInSpare
//   group_commit.cc   Sync and Flush (Drain), sync rounds, SyncWaiter, the
//                     group-commit thread
//   spare_pool.{h,cc} SparePool: spare segment files and their thread, under
//                     its own leaf lock (Impl holds one: spares_)
//   seal_queue.cc     the background sealer thread
//   recovery.cc       Open's recovery (Recover) and the tail it prepares
//
// Locks (wal/README.md has the picture): mu_ guards every field marked
// ABSL_GUARDED_BY(mu_) and the fields of Segment marked "Guarded by the WAL's
// mu_"; the I/O token (IoToken) guards each Segment's FileState; truncate_mu_
// serialises TruncateBefore; SparePool::mu_ (spare_pool.h) guards the spares.
// Order: truncate_mu_, then the I/O token, then mu_, then SparePool::mu_,
// then Env locks.

#ifndef SEGWAL_WAL_SEGMENTED_WAL_IMPL_H_
#define SEGWAL_WAL_SEGMENTED_WAL_IMPL_H_

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/key_ring.h"
#include "env/env.h"
#include "port/mutex.h"
#include "wal/format.h"
#include "wal/payload_codec.h"
#include "wal/recovery_scan.h"
#include "wal/segment_iterator.h"
#include "wal/segment_reader.h"
#include "wal/segmented_wal.h"
#include "wal/spare_pool.h"

namespace segwal {

using wal_format::Footer;
using wal_format::IndexEntry;
using wal_format::kRecordHeaderSize;
using wal_format::kSegmentHeaderSize;
using wal_format::RecordHeader;
using wal_format::SegmentHeader;

inline constexpr char kLockFileName[] = "LOCK";
inline constexpr char kQuarantineDir[] = "quarantine";
// Upper bound of SegmentedWalOptions::replay_threads.
inline constexpr size_t kMaxReplayThreads = 64;
// Upper bound of SegmentedWalOptions::max_seals_in_flight.
inline constexpr size_t kMaxSealsInFlight = 64;

// f->Sync(), its duration appended to *micros (for WalStats: syncs and
// sync_latency_micros count every fsync made, failed or not).
absl::Status TimedSync(WritableFile* f, std::vector<uint64_t>* micros);
// s with "<what>: " before its message (OK stays OK).
absl::Status Annotate(const absl::Status& s, absl::string_view what);
// Says, once per process, that use_direct_io fell back to buffered writes
// (like the POSIX Env's io_uring fallback line).
void LogDirectIoFallback(const std::string& why);
// Fresh random salt for a segment, from the kernel's RNG.
void FillSalt(char* salt);

// The I/O token: the right to perform file operations on segment files (run
// the queued IoOps; open, write, sync, close a segment's file), held by one
// thread at a time. A thread takes it under the WAL's mu_ when it is free
// (Impl::io_busy_), runs the operations with mu_ released, and gives it back
// under mu_ (Impl::RunQueuedLocked). For the thread-safety analysis it is a
// capability: what needs it says ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_token_),
// and the per-segment file state it guards is reached only through
// Segment::io(token). Taking it is bookkeeping (no lock of its own): the
// flag under mu_ is what makes it exclusive.
class ABSL_LOCKABLE IoToken {
 public:
  void Acquire() ABSL_EXCLUSIVE_LOCK_FUNCTION() {}
  void Release() ABSL_UNLOCK_FUNCTION() {}
  // For lambdas run by the holder (the analysis does not look into them).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}
};

// One segment file, as the WAL sees it. Fields not marked otherwise are
// immutable after construction (set by the thread that creates the segment,
// before it is published in Impl::segments_).
struct Segment {
  std::string path;
  uint64_t first_lsn = 0;
  uint32_t seed = 0;
  bool encrypted = false;
  // May hold padding frames (segment flag bit 1; FORMAT.md "Padding frames").
  bool padded = false;
  // Frames the segment's records (seals them under its subkey if encrypted).
  // Null for an encrypted segment recovered by Open: the WAL never appends to
  // an encrypted segment it did not create (FORMAT.md, "Encryption and
  // compression").
  std::unique_ptr<PayloadCodec> codec;

  // Guarded by the WAL's mu_ (SegmentedWal::Impl::mu_). Not annotated: a
  // Segment cannot name the mutex of the Impl that owns it. Every access is in
  // an Impl method annotated ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) or holding a
  // MutexLock on it, except in Recover on segments it has not published yet
  // (before any other thread exists).
  uint64_t framed_size = 0;     // header + every record framed so far
  uint64_t framed_last_lsn = 0; // first_lsn - 1 when empty
  uint64_t record_count = 0;
  std::vector<IndexEntry> index;
  uint64_t next_index_offset = 0;  // frame an index entry at/after this offset
  uint64_t readable_size = 0;      // bytes handed to the OS: readers stop here
  uint64_t readable_last_lsn = 0;
  bool sealed = false;             // footer written and synced
  // Size of the spare file the segment was started in (0 if none): until it
  // is sealed the file is that long, whatever its readable size.
  uint64_t spare_size = 0;
  // Records that were skipped by kSkipAnyCorruptedRecords recovery live in this
  // segment: readers must resynchronise instead of failing.
  bool has_skipped_damage = false;
  std::vector<SkipRange> skips;  // in offset order; immutable after Open

  // The segment's open file and its write state: only the I/O token holder
  // touches them.
  struct FileState {
    std::unique_ptr<WritableFile> file;
    bool unsynced = false;
    uint64_t range_synced = 0;  // write-back started up to here (RangeSync)
    // Written in place into a spare file, which may be longer than the
    // segment's bytes: sealing cuts the file at the footer, Close at the last
    // record.
    bool in_spare = false;
    // `file` is O_DIRECT: it may leave a zero-tailed block after its last
    // byte.
    bool direct = false;
  };
  FileState& io(const IoToken& token) ABSL_EXCLUSIVE_LOCKS_REQUIRED(token) {
    return io_;
  }

 private:
  FileState io_;
};

// A queued file operation, executed in order by the I/O token holder.
struct IoOp {
  enum Kind { kCreate, kWrite, kSeal } kind;
  std::shared_ptr<Segment> segment;
  std::string data;        // header, framed records, or footer
  uint64_t end_size = 0;   // segment size after this op
  uint64_t last_lsn = 0;   // last LSN contained after this op
};


class SegmentedWal::Impl {
 public:
  Impl(const SegmentedWalOptions& options, Env* env)
      : options_(options), env_(env), spares_(SpareOptions(options_), env_) {
    if (options_.encryption_ring.has_value()) {
      ring_ = std::make_shared<const KeyRing>(*options_.encryption_ring);
      rings_.push_back(ring_);
    }
  }
  ~Impl();

  static SparePool::Options SpareOptions(const SegmentedWalOptions& o) {
    SparePool::Options so;
    so.wal_dir = o.wal_dir;
    so.segment_target_size = o.segment_target_size;
    so.preallocate = o.preallocate_segments;
    so.background = o.background_preallocation;
    so.recycle_segments = o.recycle_segments;
    so.recycle_allowed = o.recovery_mode != RecoveryMode::kAbsoluteConsistency;
    return so;
  }

  // SetEncryptionRing (rotate=false) and RotateEncryptionRing (rotate=true).
  absl::Status InstallRing(KeyRing ring, bool rotate) ABSL_LOCKS_EXCLUDED(mu_);
  const KeyRing* ring() const ABSL_LOCKS_EXCLUDED(mu_) {
    port::MutexLock l(&mu_);
    return ring_.get();
  }

  absl::Status Recover() ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<uint64_t> Append(uint32_t record_type, uint64_t tenant_id,
                                  uint32_t vshard_id, uint64_t database_id,
                                  absl::string_view payload)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Sync() ABSL_LOCKS_EXCLUDED(mu_) { return Drain(/*sync=*/true); }
  absl::Status Flush() ABSL_LOCKS_EXCLUDED(mu_) {
    return Drain(/*sync=*/false);
  }
  absl::StatusOr<TruncateResult> TruncateBefore(uint64_t checkpoint_lsn)
      ABSL_LOCKS_EXCLUDED(mu_, truncate_mu_);
  // Views of the segments a read from *from_lsn needs. *from_lsn == 0 means
  // from the first retained record (and is replaced by its LSN). OutOfRange
  // below the retained floor.
  // *ring (if not null) gets the ring readers of these views must use.
  absl::StatusOr<std::vector<SegmentView>> Snapshot(
      uint64_t* from_lsn, std::shared_ptr<const KeyRing>* ring = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<SegmentMeta>> ListSegments() ABSL_LOCKS_EXCLUDED(mu_);
  // from_lsn 0: from the first retained record.
  absl::StatusOr<std::unique_ptr<WalIterator>> NewIterator(uint64_t from_lsn)
      ABSL_LOCKS_EXCLUDED(mu_);
  // ReplayFromLimit; Replay and ReplayFrom with max_records = SIZE_MAX.
  absl::StatusOr<ReplayPage> ReadPage(uint64_t from_lsn, size_t max_records)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Threads a replay may use (SegmentedWalOptions::replay_threads resolved).
  size_t ReplayThreads() const;

  uint64_t next_lsn() const ABSL_LOCKS_EXCLUDED(mu_) {
    port::MutexLock l(&mu_);
    return next_lsn_;
  }
  uint64_t active_segment_first_lsn() const ABSL_LOCKS_EXCLUDED(mu_) {
    port::MutexLock l(&mu_);
    return segments_.back()->first_lsn;
  }
  uint64_t durable_lsn() const ABSL_LOCKS_EXCLUDED(mu_) {
    port::MutexLock l(&mu_);
    return durable_lsn_;
  }
  absl::Status poisoned_status() const ABSL_LOCKS_EXCLUDED(mu_) {
    port::MutexLock l(&mu_);
    return poisoned_;
  }
  WalStats GetStats() const ABSL_LOCKS_EXCLUDED(mu_);
  const RecoveryReport& report() const { return report_; }
  const SegmentedWalOptions& options() const { return options_; }
  Env* env() const { return env_; }

 private:
  // Opens a segment file for writing: created (or truncated), or, with
  // `reopen_at`, written in place from that offset. With O_DIRECT when
  // options_.use_direct_io and the Env can (*direct says so; a refusal is
  // logged once and not retried); else through io_uring when
  // options_.use_io_uring and the Env can; plain writes otherwise.
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenSegmentForWrite(
      const std::string& path, std::optional<uint64_t> reopen_at,
      bool* direct = nullptr) ABSL_LOCKS_EXCLUDED(mu_) {
    auto f = OpenDirect(path, reopen_at);
    if (direct != nullptr) *direct = f.ok() && *f != nullptr;
    if (!f.ok() || *f != nullptr) return f;
    if (options_.use_io_uring) {
      FileOptions fo;
      fo.use_io_uring = true;
      auto f = reopen_at ? env_->ReopenWritableFileWithOptions(path, *reopen_at, fo)
                         : env_->NewWritableFileWithOptions(path, fo);
      if (!absl::IsUnimplemented(f.status())) return f;
    }
    return reopen_at ? env_->ReopenWritableFile(path, *reopen_at)
                     : env_->NewWritableFile(path);
  }
  // The segment file opened with O_DIRECT, or nullptr when use_direct_io is
  // off or the Env refuses direct I/O (InvalidArgument, Unimplemented: logged
  // once per process, and not tried again by this instance).
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenDirect(
      const std::string& path, std::optional<uint64_t> reopen_at)
      ABSL_LOCKS_EXCLUDED(mu_) {
    {
      port::MutexLock l(&mu_);
      if (!options_.use_direct_io || !direct_io_fallback_.empty()) {
        direct_io_active_ = false;
        return nullptr;
      }
    }
    FileOptions fo;
    fo.use_direct_io = true;
    auto f = reopen_at ? env_->ReopenWritableFileWithOptions(path, *reopen_at, fo)
                       : env_->NewWritableFileWithOptions(path, fo);
    if (!f.ok() && (absl::IsUnimplemented(f.status()) ||
                    absl::IsInvalidArgument(f.status()))) {
      const std::string why(f.status().message());
      LogDirectIoFallback(why);
      port::MutexLock l(&mu_);
      direct_io_fallback_ = why;
      direct_io_active_ = false;
      return nullptr;
    }
    if (f.ok()) {
      port::MutexLock l(&mu_);
      direct_io_active_ = true;
    }
    return f;
  }
  std::string PathOf(uint64_t first_lsn) const {
    return options_.wal_dir + "/" + wal_format::SegmentFileName(first_lsn);
  }
  // Makes every record framed before the call readable (sync=false) or
  // durable (sync=true).
  absl::Status Drain(bool sync) ABSL_LOCKS_EXCLUDED(mu_);

  // Group commit (SegmentedWalOptions::group_commit_wait_micros). A Sync that
  // finds the I/O token taken or others queued registers a SyncWaiter (on its
  // stack) and sleeps on the waiter's own futex word, without mu_, so that a
  // finished sync wakes only the callers it covered and they return without
  // taking mu_ again; the group-commit thread runs the syncs.
  struct SyncWaiter {
    uint64_t target = 0;  // released once durable_lsn_ >= target (or poisoned)
    absl::Status status;  // written before `state` leaves kWaiting
    // kWaiting -> kReleasing (the releaser may still touch the waiter: it is
    // waking it) -> kReleased (the waiter may return and destroy it).
    static constexpr uint32_t kWaiting = 0, kReleasing = 1, kReleased = 2;
    std::atomic<uint32_t> state{kWaiting};
    // Called without mu_ (Drain, ABSL_LOCKS_EXCLUDED(mu_)).
    void WaitUntilReleased() {
      uint32_t st;
      while ((st = state.load(std::memory_order_acquire)) != kReleased) {
        if (st == kWaiting) {
          state.wait(kWaiting, std::memory_order_acquire);
        } else {
          std::this_thread::yield();  // the releaser is in notify_one
        }
      }
    }
  };
  // Drain's work under mu_: the status to return, or nullopt once `w` is
  // queued for the group-commit thread (the caller then waits for it, after
  // releasing mu_).
  std::optional<absl::Status> DrainLocked(bool sync, SyncWaiter* w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes everything framed and syncs, as the I/O token taker. `self`: 1 if
  // the calling thread is itself a Sync caller that this round releases.
  // Called only when io_busy_ is false (the token is free; a flag, not a
  // lock, so the analysis cannot check it: the callers test it under mu_).
  // With `defer`, the waiters this round releases are appended there, for the
  // caller to wake (FinishReleases) once it has let go of mu_.
  absl::Status SyncRoundLocked(uint64_t self,
                               std::vector<SyncWaiter*>* defer = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) ABSL_LOCKS_EXCLUDED(io_token_);
  // Releases the waiters whose records are durable (all of them, with the
  // error, once poisoned). Returns how many. A waiter cannot return (and
  // destroy its SyncWaiter) before this is done with it: see
  // SyncWaiter::state.
  size_t WakeSyncWaitersLocked(std::vector<SyncWaiter*>* defer = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the waiters WakeSyncWaitersLocked deferred (they are already
  // released: each spins until this is done with it). Clears `released`.
  static void FinishReleases(std::vector<SyncWaiter*>* released) {
    for (SyncWaiter* w : *released) {
      w->state.notify_one();
      w->state.store(SyncWaiter::kReleased, std::memory_order_release);
    }
    released->clear();
  }
  void StartSyncerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SyncerMain() ABSL_LOCKS_EXCLUDED(mu_);
  // Takes the I/O token. Called only when io_busy_ is false (checked by the
  // callers under mu_).
  void AcquireIoTokenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_)
      ABSL_EXCLUSIVE_LOCK_FUNCTION(io_token_) {
    io_busy_ = true;
    io_token_.Acquire();
  }
  // Gives back the I/O token and wakes whoever waits for it.
  void ReleaseIoTokenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_)
      ABSL_UNLOCK_FUNCTION(io_token_) {
    io_busy_ = false;
    io_token_.Release();
    cv_.SignalAll();
    syncer_cv_.Signal();
  }
  // Holds the I/O token for a scope, for work outside the op queue
  // (recovery's tail, Close): waits under mu_ until the token is free.
  class ABSL_SCOPED_LOCKABLE IoTokenHold {
   public:
    explicit IoTokenHold(Impl* impl) ABSL_EXCLUSIVE_LOCK_FUNCTION(impl->io_token_)
        : impl_(impl) {
      port::MutexLock l(&impl_->mu_);
      while (impl_->io_busy_) impl_->cv_.Wait(&impl_->mu_);
      impl_->AcquireIoTokenLocked();
    }
    ~IoTokenHold() ABSL_UNLOCK_FUNCTION() {
      port::MutexLock l(&impl_->mu_);
      impl_->ReleaseIoTokenLocked();
    }
    IoTokenHold(const IoTokenHold&) = delete;
    IoTokenHold& operator=(const IoTokenHold&) = delete;

   private:
    Impl* const impl_;
  };
  // Frames a new segment starting at next_lsn_ and queues its creation.
  void StartSegmentLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the staged records (if any) as a write to the active segment.
  void QueueStagedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // use_direct_io: stages a padding frame so that the active segment's framed
  // bytes end on a block boundary (before a sync; FORMAT.md).
  void PadActiveSegmentLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RollLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The I/O-token protocol, the one place it is written: takes the token,
  // takes the queued ops, releases mu_, runs `first` (if set) and then the
  // ops (unless `first` failed), relocks, gives the token back and wakes
  // waiters. Called only when io_busy_ is false (the token is free).
  absl::Status RunQueuedLocked(
      bool sync, const std::function<absl::Status()>& first = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) ABSL_LOCKS_EXCLUDED(io_token_);
  // Runs queued ops as the I/O token holder.
  absl::Status RunOps(std::deque<IoOp>& ops, bool sync,
                      std::shared_ptr<Segment> active)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_token_) ABSL_LOCKS_EXCLUDED(mu_);
  void PoisonLocked(const absl::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (poisoned_.ok()) poisoned_ = s;
    syncer_cv_.Signal();  // its waiters get the error now
  }

  // Spare files (SparePool, spare_pool.h).
  using Spare = SparePool::Spare;
  // Creates `seg` by writing `header` into `spare` (synced), renaming it to the
  // segment's name and syncing the directory. As the I/O token holder. If the
  // Env cannot write in place, sets *unsupported, stops using spares (deleting
  // them) and returns OK with nothing done.
  // With publish=false the header is only handed to the OS (not synced), and
  // the file keeps the spare's name and stays open as seg->file: the
  // background sealer syncs the header and renames the file once the previous
  // segment's seal is durable (SealerMain).
  absl::Status CreateInSpare(Segment* seg, const Spare& spare,
                             const std::string& header,
                             std::vector<uint64_t>* sync_micros,
                             bool* unsupported, bool publish = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_token_) ABSL_LOCKS_EXCLUDED(mu_);
  // Starts the spare thread (SparePool::Start); its errors poison.
  void StartSpareThread() ABSL_LOCKS_EXCLUDED(mu_);

  // Background sealing (SegmentedWalOptions::background_sealing and
  // max_seals_in_flight). At a roll whose next segment starts in a spare, the
  // token holder writes the footer and hands the sealed segment's file to the
  // sealer thread's queue, writes the next segment's header into the spare
  // (handed to the OS, not synced) and goes on appending there under the
  // spare's name. The sealer takes the queue in order. For each seal it cuts
  // the sealed file after its footer (spare or direct-I/O bytes beyond it),
  // fdatasyncs and closes it, fdatasyncs the next segment's file (its
  // header), and only then renames that spare to the next segment's name and
  // syncs the directory: a segment's name never becomes durable before its
  // predecessor's seal, nor before its own header. A failed seal poisons and
  // the seals queued behind it rename nothing. Everything that needs the
  // directory as it will be (Sync, readers, listings) waits for the whole
  // queue (WaitForSealLocked); a roll waits for room in it.
  struct PendingSeal {
    std::shared_ptr<Segment> sealed;  // footer written and handed to the OS
    std::unique_ptr<WritableFile> file;
    uint64_t end_size = 0;            // footer end
    uint64_t last_lsn = 0;
    // The file may hold bytes after the footer (a spare's, or a direct-I/O
    // block's zero tail): cut it at end_size before the sync.
    bool cut = false;
    std::string spare_path;           // the next segment, under its spare's name
    std::string next_path;            // ... and the name it gets
    // A handle on the next segment's file that only syncs (its header); null
    // if the header was synced already.
    std::unique_ptr<WritableFile> next_sync;
  };
  // Waits until no seal is queued or in flight; returns poisoned_ (a failed
  // background seal poisons).
  absl::Status WaitForSealLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (seals_in_flight_ > 0) {
      seal_demand_++;  // the sealer starts now, queue full or not
      sealer_cv_.Signal();
      while (seals_in_flight_ > 0) cv_.Wait(&mu_);
      seal_demand_--;
    }
    return poisoned_;
  }
  // Whether the sealer should take the next queued seal: once the queue is
  // full, someone waits for the seals, the instance closes or is poisoned; and
  // from then on until the queue is empty.
  bool SealerShouldRunLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (pending_seals_.empty()) return sealer_stop_;
    return sealer_draining_ || sealer_stop_ || seal_demand_ > 0 ||
           !poisoned_.ok() || seals_in_flight_ >= options_.max_seals_in_flight;
  }
  // Waits until fewer than max_seals_in_flight seals are queued or in flight
  // (or the instance is poisoned); returns poisoned_.
  absl::Status WaitForSealRoomLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (seals_in_flight_ >= options_.max_seals_in_flight && poisoned_.ok()) {
      cv_.Wait(&mu_);
    }
    return poisoned_;
  }
  void SealerMain() ABSL_LOCKS_EXCLUDED(mu_);

  // Recovery helpers.
  absl::Status Quarantine(const std::vector<std::string>& names)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CreateSegmentFileNow(uint64_t first_lsn) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status OpenTailForAppend(std::shared_ptr<Segment> seg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_token_) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the recovered last segment of an encrypted WAL (or of one that is
  // to become encrypted) and starts a new segment after it.
  absl::Status RetireRecoveredTail() ABSL_LOCKS_EXCLUDED(mu_);

  const SegmentedWalOptions options_;
  Env* const env_;
  // Written by Recover (parts under mu_, all before Open returns the WAL to
  // its caller, so before any other thread can call in); read-only after, so
  // report() reads it without a lock.
  RecoveryReport report_;

  mutable port::Mutex mu_;
  // Condition variables used with mu_ (a CondVar has no state to guard):
  // cv_ for the token and seal progress; syncer_cv_, sealer_cv_ below.
  port::CondVar cv_;
  std::vector<std::shared_ptr<Segment>> segments_ ABSL_GUARDED_BY(mu_);
  uint64_t next_lsn_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t durable_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  // Every record with LSN <= flushed_lsn_ has been handed to the OS.
  uint64_t flushed_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  std::string staged_ ABSL_GUARDED_BY(mu_);
  uint64_t staged_last_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<IoOp> ops_ ABSL_GUARDED_BY(mu_);
  uint64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // The I/O token (IoToken): io_busy_ says it is taken; io_token_ is the
  // capability the analysis tracks.
  bool io_busy_ ABSL_GUARDED_BY(mu_) = false;
  IoToken io_token_;
  absl::Status poisoned_ ABSL_GUARDED_BY(mu_);
  // Open could read the log but not prepare it for appending (see
  // RecoveryReport::read_only_reason): reads work, writes return poisoned_.
  bool read_only_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  WalStats stats_ ABSL_GUARDED_BY(mu_);  // counters; GetStats fills the rest
  // The ring new segments are encrypted under (null: not encrypted), and every
  // ring installed so far, so encryption_ring() pointers stay valid.
  std::shared_ptr<const KeyRing> ring_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<const KeyRing>> rings_ ABSL_GUARDED_BY(mu_);

  port::Mutex truncate_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // serialises TruncateBefore
  // The directory's LOCK file: set by Open before the WAL is returned,
  // released by the destructor; no other thread touches it.
  std::unique_ptr<FileLock> lock_;

  // Spare files: guarded by the pool's own leaf lock (spare_pool.h), taken
  // with or without mu_.
  SparePool spares_;
  // use_direct_io: why the Env refused it (then no file is tried again), and
  // whether the last segment file opened is O_DIRECT.
  std::string direct_io_fallback_ ABSL_GUARDED_BY(mu_);
  bool direct_io_active_ ABSL_GUARDED_BY(mu_) = false;

  // Group commit under contention (SyncRoundLocked, SyncerMain).
  std::vector<SyncWaiter*> sync_waiters_ ABSL_GUARDED_BY(mu_);
  // The last sync round released this many Sync callers at last_release_,
  // and sync_calls_since_release_ Sync calls came in since: the group-commit
  // thread waits (a little) for the released callers to come back.
  uint64_t released_by_last_sync_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t sync_calls_since_release_ ABSL_GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point last_release_ ABSL_GUARDED_BY(mu_);
  uint64_t last_sync_round_micros_ ABSL_GUARDED_BY(mu_) = 0;
  port::CondVar syncer_cv_;
  // Started under mu_ (StartSyncerLocked); the destructor moves it out under
  // mu_ and joins it without.
  std::thread syncer_thread_ ABSL_GUARDED_BY(mu_);

  // Background sealing (PendingSeal, SealerMain). seals_in_flight_ counts the
  // seals handed over and not finished: those in pending_seals_ and the one
  // the sealer is working on. Each finished seal signals cv_.
  std::deque<PendingSeal> pending_seals_ ABSL_GUARDED_BY(mu_);
  size_t seals_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t seal_demand_ ABSL_GUARDED_BY(mu_) = 0;  // threads in WaitForSealLocked
  // Sealing until the queue is empty (SealerShouldRunLocked).
  bool sealer_draining_ ABSL_GUARDED_BY(mu_) = false;
  bool sealer_stop_ ABSL_GUARDED_BY(mu_) = false;
  port::CondVar sealer_cv_;
  // Started under mu_ (RunOps); the destructor moves it out under mu_ and
  // joins it without.
  std::thread sealer_thread_ ABSL_GUARDED_BY(mu_);
  friend class SegmentedWal;
};

}  // namespace segwal

#endif  // SEGWAL_WAL_SEGMENTED_WAL_IMPL_H_
