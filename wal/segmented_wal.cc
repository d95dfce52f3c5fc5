#include "wal/segmented_wal.h"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <iterator>
#include <optional>
#include <system_error>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "port/mutex.h"
#include "wal/format.h"
#include "wal/kill_point.h"
#include "wal/parallel_replay.h"
#include "wal/payload_codec.h"
#include "wal/recovery_scan.h"
#include "wal/segment_iterator.h"
#include "wal/segment_reader.h"

namespace segwal {

using wal_format::Footer;
using wal_format::IndexEntry;
using wal_format::kRecordHeaderSize;
using wal_format::kSegmentHeaderSize;
using wal_format::RecordHeader;
using wal_format::SegmentHeader;

WalIterator::~WalIterator() = default;

namespace {

// f->Sync(), its duration appended to *micros (for WalStats: syncs and
// sync_latency_micros count every fsync made, failed or not).
absl::Status TimedSync(WritableFile* f, std::vector<uint64_t>* micros) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = f->Sync();
  micros->push_back(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - start)
          .count()));
  return s;
}

constexpr char kLockFileName[] = "LOCK";
constexpr char kQuarantineDir[] = "quarantine";
// Upper bound of SegmentedWalOptions::replay_threads.
constexpr size_t kMaxReplayThreads = 64;
// Upper bound of SegmentedWalOptions::max_seals_in_flight.
constexpr size_t kMaxSealsInFlight = 64;

absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

// Spares are zero-filled up to the segment target size, but no further than
// this: a segment that grows beyond its spare extends the file as usual.
constexpr uint64_t kMaxSpareSize = uint64_t{256} << 20;

// Says, once per process, that use_direct_io fell back to buffered writes
// (like the POSIX Env's io_uring fallback line).
void LogDirectIoFallback(const std::string& why) {
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    std::fprintf(stderr,
                 "segwal: direct I/O unavailable (%s); writing WAL segments "
                 "through the page cache (padding frames still end every sync "
                 "on a 4 KiB boundary)\n",
                 why.c_str());
  }
}

// Fresh random salt for a segment, from the kernel's RNG.
void FillSalt(char* salt) {
  size_t got = 0;
  while (got < wal_format::kSaltSize) {
    const ssize_t r = getrandom(salt + got, wal_format::kSaltSize - got, 0);
    if (r > 0) got += static_cast<size_t>(r);
  }
}

}  // namespace

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
// immutable after construction.
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

  // Guarded by the WAL's mu_.
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
      : options_(options), env_(env) {
    if (options_.encryption_ring.has_value()) {
      ring_ = std::make_shared<const KeyRing>(*options_.encryption_ring);
      rings_.push_back(ring_);
    }
  }
  ~Impl();

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
  absl::Status Sync() { return Drain(/*sync=*/true); }
  absl::Status Flush() { return Drain(/*sync=*/false); }
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
  // REQUIRES: the token is free (!io_busy_).
  // With `defer`, the waiters this round releases are appended there, for the
  // caller to wake (FinishReleases) once it has let go of mu_.
  absl::Status SyncRoundLocked(uint64_t self,
                               std::vector<SyncWaiter*>* defer = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
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
  // Takes the I/O token. REQUIRES: !io_busy_.
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
  // waiters. REQUIRES: the token is free (!io_busy_).
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

  // Spare files (SegmentedWalOptions::preallocate_segments, FORMAT.md).
  struct Spare {
    std::string path;
    uint64_t size;
  };
  std::string SparePath(uint64_t id) const {
    return options_.wal_dir + "/" + wal_format::SpareFileName(id);
  }
  // Decides whether spares are used, adopts the spare files a previous
  // instance left (deleting extras). Called by Recover once reading is done.
  void SetUpSpares(const std::vector<std::string>& children)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Writes a zero-filled spare of about segment_target_size and adds it to
  // spares_. On failure deletes what it wrote.
  absl::Status PrepareSpare() ABSL_LOCKS_EXCLUDED(mu_);
  // PrepareSpare; on failure stops using spares (counted in stats). A full
  // disk (ResourceExhausted) only ends preallocation: records go on until
  // their own writes fail. Any other error is returned, and the caller
  // poisons the instance as for any failed write.
  absl::Status PrepareSpareOrGiveUp() ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<Spare> TakeSpare() ABSL_LOCKS_EXCLUDED(mu_);
  // An empty file under a fresh spare name, for CreateInSpare to fill.
  absl::StatusOr<Spare> NewEmptySpare() ABSL_LOCKS_EXCLUDED(mu_);
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
  void StartSpareThread() ABSL_LOCKS_EXCLUDED(mu_);
  void SpareThreadMain() ABSL_LOCKS_EXCLUDED(mu_);

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
  absl::Status Quarantine(const std::vector<std::string>& names);
  absl::Status CreateSegmentFileNow(uint64_t first_lsn) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status OpenTailForAppend(std::shared_ptr<Segment> seg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_token_) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the recovered last segment of an encrypted WAL (or of one that is
  // to become encrypted) and starts a new segment after it.
  absl::Status RetireRecoveredTail() ABSL_LOCKS_EXCLUDED(mu_);

  const SegmentedWalOptions options_;
  Env* const env_;
  RecoveryReport report_;

  mutable port::Mutex mu_;
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

  port::Mutex truncate_mu_;  // serialises TruncateBefore calls
  std::unique_ptr<FileLock> lock_;

  std::deque<Spare> spares_ ABSL_GUARDED_BY(mu_);  // ready, oldest first
  uint64_t next_spare_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool spares_enabled_ ABSL_GUARDED_BY(mu_) = false;
  bool recycle_enabled_ ABSL_GUARDED_BY(mu_) = false;
  // The active segment is a quarter full and no spare is ready: prepare one.
  bool spare_wanted_ ABSL_GUARDED_BY(mu_) = false;
  // use_direct_io: why the Env refused it (then no file is tried again), and
  // whether the last segment file opened is O_DIRECT.
  std::string direct_io_fallback_ ABSL_GUARDED_BY(mu_);
  bool direct_io_active_ ABSL_GUARDED_BY(mu_) = false;
  port::CondVar spare_cv_;
  std::thread spare_thread_;

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
  std::thread syncer_thread_;

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
  std::thread sealer_thread_;
  friend class SegmentedWal;
};

// ---------------------------------------------------------------------------
// Writing.

void SegmentedWal::Impl::StartSegmentLocked() {
  auto seg = std::make_shared<Segment>();
  SegmentHeader h;
  h.first_lsn = next_lsn_;
  FillSalt(h.salt);
  if (ring_ != nullptr) {
    h.flags = wal_format::kSegmentEncrypted;
    h.cipher = SegmentCipher::kAes256Gcm;
    h.key_id = ring_->current().key_id();
  }
  if (options_.use_direct_io) h.flags |= wal_format::kSegmentPadded;
  std::string encoded_header = wal_format::EncodeSegmentHeader(h);
  seg->first_lsn = next_lsn_;
  seg->path = PathOf(next_lsn_);
  seg->seed = wal_format::SegmentSeed(h);
  seg->encrypted = ring_ != nullptr;
  seg->padded = options_.use_direct_io;
  // The header's block is written whole (header + padding frame): records
  // never share it, so no record write rewrites the header.
  std::string data = encoded_header;
  if (seg->padded) {
    wal_format::AppendPaddingFrame(seg->seed, kSegmentHeaderSize,
                                   next_lsn_ - 1, durable_lsn_, &data);
    stats_.padding_bytes += data.size() - kSegmentHeaderSize;
  }
  auto codec = PayloadCodec::ForNewSegment(h, encoded_header, ring_.get());
  if (codec.ok()) {
    seg->codec = std::move(*codec);
  } else {
    // No record can be framed into it: Append checks poisoned_ first.
    PoisonLocked(Annotate(codec.status(), "starting segment " + seg->path));
  }
  seg->framed_size = data.size();
  seg->framed_last_lsn = next_lsn_ - 1;
  seg->next_index_offset = kSegmentHeaderSize;
  seg->readable_size = 0;  // not even the header yet
  seg->readable_last_lsn = next_lsn_ - 1;
  IoOp op{IoOp::kCreate, seg, std::move(data), seg->framed_size,
          next_lsn_ - 1};
  queued_bytes_ += op.data.size();
  ops_.push_back(std::move(op));
  segments_.push_back(std::move(seg));
}

void SegmentedWal::Impl::QueueStagedLocked() {
  if (staged_.empty()) return;
  const std::shared_ptr<Segment>& seg = segments_.back();
  IoOp op{IoOp::kWrite, seg, std::move(staged_), seg->framed_size,
          staged_last_lsn_};
  staged_.clear();
  queued_bytes_ += op.data.size();
  ops_.push_back(std::move(op));
}

void SegmentedWal::Impl::PadActiveSegmentLocked() {
  Segment* seg = segments_.back().get();
  if (!options_.use_direct_io || !seg->padded ||
      seg->framed_size % wal_format::kPaddingBlockSize == 0) {
    return;
  }
  const size_t before = staged_.size();
  wal_format::AppendPaddingFrame(seg->seed, seg->framed_size,
                                 seg->framed_last_lsn, durable_lsn_, &staged_);
  seg->framed_size += staged_.size() - before;
  staged_last_lsn_ = seg->framed_last_lsn;
  stats_.padding_bytes += staged_.size() - before;
}

void SegmentedWal::Impl::RollLocked() {
  QueueStagedLocked();
  const std::shared_ptr<Segment>& seg = segments_.back();
  Footer f;
  f.footer_offset = seg->framed_size;
  f.last_lsn = seg->framed_last_lsn;
  f.record_count = seg->record_count;
  f.index = seg->index;
  std::string footer;
  wal_format::AppendFooter(seg->seed, durable_lsn_, f, &footer);
  seg->framed_size += footer.size();
  IoOp op{IoOp::kSeal, seg, std::move(footer), seg->framed_size,
          seg->framed_last_lsn};
  queued_bytes_ += op.data.size();
  ops_.push_back(std::move(op));
  StartSegmentLocked();
}

absl::StatusOr<uint64_t> SegmentedWal::Impl::Append(
    uint32_t record_type, uint64_t tenant_id, uint32_t vshard_id,
    uint64_t database_id, absl::string_view payload) {
  if (payload.size() > options_.max_record_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("record payload of ", payload.size(),
                     " bytes exceeds max_record_size ",
                     options_.max_record_size));
  }
  // Compression does not depend on the segment: done before taking the lock,
  // into a per-thread buffer (no allocation per append once it has grown;
  // one that grew past 1 MiB is given back).
  thread_local std::string compressed;
  struct Trim {
    ~Trim() {
      if (compressed.capacity() > (1u << 20)) std::string().swap(compressed);
    }
  } trim;
  const bool is_compressed =
      CompressPayload(options_.compression, payload, &compressed);
  const absl::string_view body =
      is_compressed ? absl::string_view(compressed) : payload;
  port::MutexLock l(&mu_);
  // Back-pressure: do not let queued I/O grow without bound while another
  // thread holds the I/O token.
  while (poisoned_.ok() && io_busy_ &&
         queued_bytes_ + staged_.size() >
             4 * options_.write_buffer_size + payload.size()) {
    cv_.Wait(&mu_);
  }
  if (!poisoned_.ok()) return poisoned_;
  const uint64_t lsn = next_lsn_++;
  Segment* seg = segments_.back().get();
  const uint64_t offset = seg->framed_size;
  RecordHeader h;
  h.lsn = lsn;
  h.durable_lsn = durable_lsn_;
  h.tenant_id = tenant_id;
  h.database_id = database_id;
  h.record_type = record_type;
  h.vshard_id = vshard_id;
  const size_t before = staged_.size();
  // Sets the flags and stored length, seals the body if the segment is
  // encrypted (nonce from the LSN), and frames it.
  absl::Status framed =
      seg->codec == nullptr
          ? absl::InternalError("appending to a segment without a codec " +
                                seg->path)
          : seg->codec->AppendRecord(seg->seed, is_compressed, body, &h,
                                     &staged_);
  if (!framed.ok()) {
    // Nothing was staged and no reader saw the LSN: give it back.
    staged_.resize(before);
    next_lsn_--;
    PoisonLocked(framed);
    return framed;
  }
  seg->framed_size += staged_.size() - before;
  stats_.appends++;
  stats_.bytes_appended += payload.size();
  stats_.bytes_framed += staged_.size() - before;
  seg->framed_last_lsn = lsn;
  seg->record_count++;
  staged_last_lsn_ = lsn;
  if (offset >= seg->next_index_offset) {
    seg->index.push_back({lsn, offset});
    seg->next_index_offset = offset + wal_format::kIndexInterval;
  }
  if (spares_enabled_ && !spare_wanted_ && spares_.empty() &&
      seg->framed_size >= options_.segment_target_size / 4) {
    spare_wanted_ = true;  // ready well before the roll needs it
    if (options_.background_preallocation) spare_cv_.Signal();
  }
  if (seg->framed_size >= options_.segment_target_size) {
    stats_.rollovers++;  // (not the seals of key rotation or recovery)
    RollLocked();
  } else if (staged_.size() >= options_.write_buffer_size) {
    QueueStagedLocked();
  }
  if (!ops_.empty() && !io_busy_) {
    // Become the I/O token holder and write the queued chunks (no sync). The
    // record is framed and its LSN assigned, and its bytes may already be in
    // the file: this Append succeeded as a buffered append always does. A
    // write failure here poisons the instance and is reported by every later
    // call (Sync in particular), never by an LSN that readers could see twice.
    (void)RunQueuedLocked(/*sync=*/false);
  }
  return lsn;
}

absl::Status SegmentedWal::Impl::RunQueuedLocked(
    bool sync, const std::function<absl::Status()>& first) {
  AcquireIoTokenLocked();
  std::deque<IoOp> ops;
  ops.swap(ops_);
  queued_bytes_ = 0;
  std::shared_ptr<Segment> active = segments_.back();
  mu_.Unlock();
  absl::Status s = first ? first() : absl::OkStatus();
  if (s.ok()) s = RunOps(ops, sync, active);
  mu_.Lock();
  ReleaseIoTokenLocked();
  return s;
}

absl::Status SegmentedWal::Impl::RunOps(std::deque<IoOp>& ops, bool sync,
                                        std::shared_ptr<Segment> active) {
  absl::Status s;
  // Record the progress of each op so readers and durable_lsn_ follow.
  struct Done {
    std::shared_ptr<Segment> seg;
    uint64_t size, last_lsn;
    bool sealed;
  };
  std::vector<Done> done;
  uint64_t sealed_durable = 0;
  // Stats of this run, added to stats_ under mu_ at the end.
  uint64_t bytes_written = 0;
  uint64_t from_spares = 0;
  std::vector<uint64_t> sync_micros;
  auto timed_sync = [&sync_micros](WritableFile* f) {
    return TimedSync(f, &sync_micros);
  };
  // A seal kSeal left for the kCreate that follows, which hands it to the
  // sealer once the next segment exists under a spare's name.
  std::optional<PendingSeal> handoff;
  size_t handoff_done_index = 0;
  // Finishes a handed-off seal on this thread (the Env cannot write in place,
  // or the kCreate failed).
  auto seal_in_line = [&]() {
    absl::Status st;
    {
      // The seals queued before it first: then the segment has its own name,
      // and the plain file created next cannot be named before they are done.
      port::MutexLock l(&mu_);
      st = WaitForSealLocked();
    }
    if (st.ok() && handoff->cut) {
      st = env_->TruncateFile(handoff->sealed->path, handoff->end_size);
    }
    if (st.ok()) st = timed_sync(handoff->file.get());
    if (st.ok()) st = handoff->file->Close();
    if (st.ok()) SEGWAL_KILL_POINT("Roll:BetweenSealAndCreate");
    st = Annotate(st, "sealing segment " + handoff->sealed->path);
    if (st.ok()) {
      sealed_durable = handoff->last_lsn;
      done[handoff_done_index].sealed = true;
    }
    handoff.reset();
    return st;
  };
  for (IoOp& op : ops) {
    Segment* seg = op.segment.get();
    Segment::FileState& io = seg->io(io_token_);
    switch (op.kind) {
      case IoOp::kCreate: {
        if (handoff.has_value()) {
          // The new segment starts under a spare's name: a ready spare, or
          // else a new file given a spare's name.
          std::optional<Spare> spare = TakeSpare();
          bool unsupported = false;
          if (spare.has_value()) {
            s = CreateInSpare(seg, *spare, op.data, &sync_micros, &unsupported,
                              /*publish=*/false);
            if (s.ok() && !unsupported) from_spares++;
          } else {
            uint64_t id;
            {
              port::MutexLock l(&mu_);
              id = next_spare_id_++;
            }
            spare = Spare{SparePath(id), 0};
            auto file =
                OpenSegmentForWrite(spare->path, std::nullopt, &io.direct);
            s = file.status();
            if (s.ok()) s = (*file)->Append(op.data);
            if (s.ok()) s = (*file)->Flush();
            if (s.ok()) io.file = *std::move(file);
            s = Annotate(s, "creating segment " + seg->path + " as " +
                                spare->path);
          }
          if (!s.ok()) break;
          if (!unsupported) {
            // A second handle on the new file, for the sealer to sync its
            // header with (the appends go on through io.file meanwhile).
            // An Env that cannot reopen files: sync the header here.
            auto sync_handle =
                env_->ReopenWritableFile(spare->path, op.data.size());
            if (sync_handle.ok()) {
              handoff->next_sync = *std::move(sync_handle);
            } else if (absl::IsUnimplemented(sync_handle.status())) {
              s = timed_sync(io.file.get());
            } else {
              s = sync_handle.status();
            }
            s = Annotate(s, "opening segment " + seg->path + " as " +
                                spare->path + " to sync its header");
            if (!s.ok()) break;
            handoff->spare_path = spare->path;
            handoff->next_path = seg->path;
            port::MutexLock l(&mu_);
            pending_seals_.push_back(std::move(*handoff));
            seals_in_flight_++;
            if (!sealer_thread_.joinable()) {
              sealer_thread_ = std::thread([this] { SealerMain(); });
            }
            sealer_cv_.Signal();
            handoff.reset();
            break;
          }
          s = seal_in_line();  // then create the segment as a plain file
          if (!s.ok()) break;
        } else {
          // Created under its own name: never before the queued seals have
          // renamed theirs. One may be about to rename a spare to this very
          // name: key rotation replaces an empty active segment that is still
          // under a spare's name (found by ConcurrencyTest in
          // wal/encryption_test.cc).
          port::MutexLock l(&mu_);
          s = WaitForSealLocked();
          if (!s.ok()) break;
        }
        if (!options_.background_preallocation) {
          bool want;
          {
            port::MutexLock l(&mu_);
            want = spares_enabled_ && spares_.empty();
          }
          if (want) s = PrepareSpareOrGiveUp();  // in line: a fixed op order
          if (!s.ok()) break;
        }
        if (std::optional<Spare> spare = TakeSpare()) {
          bool unsupported = false;
          s = CreateInSpare(seg, *spare, op.data, &sync_micros, &unsupported);
          if (!unsupported) {
            if (s.ok()) from_spares++;
            break;
          }
        }
        if (seg->padded) {
          // A whole-block creation write can be torn into far more than a
          // header's length (recovery would call that corruption): as in a
          // spare, the block is durable before the segment's name exists.
          auto empty = NewEmptySpare();
          s = empty.status();
          if (!s.ok()) break;
          bool unsupported = false;
          s = CreateInSpare(seg, *empty, op.data, &sync_micros, &unsupported);
          if (!unsupported) break;
        }
        auto file = OpenSegmentForWrite(seg->path, std::nullopt, &io.direct);
        if (!file.ok()) {
          s = Annotate(file.status(), "creating segment " + seg->path);
          break;
        }
        io.file = std::move(*file);
        s = io.file->Append(op.data);
        if (s.ok()) s = timed_sync(io.file.get());
        if (s.ok()) SEGWAL_KILL_POINT("Create:BeforeSyncDir");
        if (s.ok()) s = env_->SyncDir(options_.wal_dir);
        if (s.ok()) SEGWAL_KILL_POINT("Create:AfterSyncDir");
        s = Annotate(s, "creating segment " + seg->path);
        break;
      }
      case IoOp::kWrite:
        s = Annotate(io.file->Append(op.data),
                     "writing records to " + seg->path);
        io.unsynced = true;
        if (s.ok()) SEGWAL_KILL_POINT("Write:AfterAppend");
        // (O_DIRECT writes need no write-back.)
        if (s.ok() && !io.direct &&
            options_.bytes_per_sync > 0 &&
            op.end_size - io.range_synced >= options_.bytes_per_sync) {
          // Start write-back now, so the Sync that seals a 64 MiB segment
          // does not have to write it all at once.
          s = Annotate(io.file->Flush(), "flushing " + seg->path);
          if (s.ok()) {
            s = Annotate(io.file->RangeSync(io.range_synced, 0),
                         "starting write-back of " + seg->path);
          }
          io.range_synced = op.end_size;
        }
        break;
      case IoOp::kSeal: {
        SEGWAL_KILL_POINT("Seal:BeforeFooter");
        const bool background = options_.background_sealing;
        if (background) {
          // Handed over, the next segment starts under a spare's name, which
          // it trades for its own after this seal. The sealer cuts the file
          // after the footer: until the seals queued before this one are
          // done, the segment may itself still be under a spare's name.
          {
            port::MutexLock l(&mu_);
            s = WaitForSealRoomLocked();
          }
          if (s.ok()) s = io.file->Append(op.data);
          if (s.ok()) SEGWAL_KILL_POINT("Seal:AfterFooterWrite");
          if (s.ok()) s = io.file->Flush();
          s = Annotate(s, "sealing segment " + seg->path);
          if (s.ok()) {
            io.unsynced = false;
            handoff.emplace();
            handoff->sealed = op.segment;
            handoff->file = std::move(io.file);
            handoff->end_size = op.end_size;
            handoff->last_lsn = op.last_lsn;
            handoff->cut = io.in_spare || io.direct;
            handoff_done_index = done.size();
          }
          break;
        }
        {
          port::MutexLock l(&mu_);
          s = WaitForSealLocked();
        }
        if (!s.ok()) break;
        if (io.in_spare) {
          // The footer must end the file (readers find it from the end): cut
          // the rest of the spare first. The sync below covers the new size.
          s = io.file->Flush();
          if (s.ok()) {
            s = env_->TruncateFile(seg->path, op.end_size - op.data.size());
          }
        }
        if (s.ok()) s = io.file->Append(op.data);
        if (s.ok()) SEGWAL_KILL_POINT("Seal:AfterFooterWrite");
        if (s.ok() && io.direct) {
          // The footer's block went out zero-tailed: cut the file after the
          // footer; the sync makes the size durable with it.
          s = io.file->Flush();
          if (s.ok()) s = env_->TruncateFile(seg->path, op.end_size);
        }
        if (s.ok()) s = timed_sync(io.file.get());
        if (s.ok()) s = io.file->Close();
        if (s.ok()) SEGWAL_KILL_POINT("Roll:BetweenSealAndCreate");
        s = Annotate(s, "sealing segment " + seg->path);
        if (s.ok()) {
          io.file.reset();
          io.unsynced = false;
          sealed_durable = op.last_lsn;
        }
        break;
      }
    }
    if (!s.ok()) break;
    bytes_written += op.data.size();
    done.push_back({op.segment, op.end_size, op.last_lsn,
                    op.kind == IoOp::kSeal && !handoff.has_value()});
  }
  if (handoff.has_value()) {
    // Not followed by its kCreate (failed before it): finish it here.
    absl::Status st = seal_in_line();
    if (s.ok()) s = st;
  }
  if (s.ok() && sync) {
    // Durable means the sealed segments and the active one's name too.
    port::MutexLock l(&mu_);
    s = WaitForSealLocked();
  }
  Segment::FileState& active_io = active->io(io_token_);
  if (s.ok() && active_io.file != nullptr) {
    if (sync && active_io.unsynced) {
      SEGWAL_KILL_POINT("Sync:BeforeFsync");
      s = Annotate(timed_sync(active_io.file.get()), "syncing " + active->path);
      if (s.ok()) active_io.unsynced = false;
    } else if (!sync) {
      s = Annotate(active_io.file->Flush(), "flushing " + active->path);
    }
  }
  port::MutexLock l(&mu_);
  stats_.segments_from_spares += from_spares;
  for (const Done& d : done) {
    d.seg->readable_size = d.size;
    d.seg->readable_last_lsn = d.last_lsn;
    if (d.sealed) d.seg->sealed = true;
  }
  if (s.ok() && !done.empty()) {
    flushed_lsn_ = std::max(flushed_lsn_, done.back().last_lsn);
  }
  if (sealed_durable > durable_lsn_) durable_lsn_ = sealed_durable;
  stats_.bytes_written += bytes_written;
  stats_.syncs += sync_micros.size();
  for (uint64_t us : sync_micros) stats_.sync_latency_micros.Add(us);
  if (!s.ok()) PoisonLocked(s);
  return s;
}

absl::Status SegmentedWal::Impl::Drain(bool sync) {
  SyncWaiter w;
  {
    port::MutexLock l(&mu_);
    std::optional<absl::Status> s = DrainLocked(sync, &w);
    if (s.has_value()) return *s;
  }
  // Queued for the group-commit thread (see SyncWaiter).
  w.WaitUntilReleased();
  return w.status;
}

std::optional<absl::Status> SegmentedWal::Impl::DrainLocked(bool sync,
                                                            SyncWaiter* w) {
  if (sync) {
    stats_.sync_requests++;
    if (++sync_calls_since_release_ >= released_by_last_sync_) {
      syncer_cv_.Signal();  // everyone the last round released is back
    }
  }
  if (segments_.empty()) return poisoned_;
  const uint64_t target = next_lsn_ - 1;
  while (true) {
    if (!poisoned_.ok()) {
      // A read-only Open (full disk) has nothing staged: reads go ahead.
      if (!sync && read_only_) return absl::OkStatus();
      return poisoned_;
    }
    if ((sync ? durable_lsn_ : flushed_lsn_) >= target) return absl::OkStatus();
    // Contended: a sync runs, others wait, or callers the last round
    // released are expected back. Queue for the group-commit thread.
    if (sync && (io_busy_ || !sync_waiters_.empty() ||
                 (released_by_last_sync_ > 1 &&
                  sync_calls_since_release_ < released_by_last_sync_))) {
      w->target = target;
      sync_waiters_.push_back(w);
      StartSyncerLocked();
      syncer_cv_.Signal();
      return std::nullopt;  // the caller waits, without mu_
    }
    if (io_busy_) {
      cv_.Wait(&mu_);
      continue;
    }
    if (sync) {
      // Uncontended: write and sync on this thread (file operations in a
      // fixed order for single-threaded users and seeded crash tests).
      absl::Status s = SyncRoundLocked(/*self=*/1);
      if (!s.ok()) return s;
      continue;
    }
    // Become the I/O token holder: write everything framed so far.
    QueueStagedLocked();
    const uint64_t covered = next_lsn_ - 1;
    absl::Status s = RunQueuedLocked(/*sync=*/false);
    if (!s.ok()) return s;
    flushed_lsn_ = std::max(flushed_lsn_, covered);
  }
}

absl::Status SegmentedWal::Impl::SyncRoundLocked(
    uint64_t self, std::vector<SyncWaiter*>* defer) {
  PadActiveSegmentLocked();  // padded (direct I/O) segments: end on a block
  QueueStagedLocked();
  const uint64_t covered = next_lsn_ - 1;
  const uint64_t durable_before = durable_lsn_;
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = RunQueuedLocked(/*sync=*/true);
  last_release_ = std::chrono::steady_clock::now();
  last_sync_round_micros_ = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(last_release_ -
                                                            start)
          .count());
  if (s.ok()) {
    flushed_lsn_ = std::max(flushed_lsn_, covered);
    durable_lsn_ = std::max(durable_lsn_, covered);
    if (covered > durable_before) {
      stats_.records_per_sync.Add(covered - durable_before);
    }
  }
  released_by_last_sync_ = WakeSyncWaitersLocked(defer) + self;
  sync_calls_since_release_ = 0;
  return s;
}

size_t SegmentedWal::Impl::WakeSyncWaitersLocked(
    std::vector<SyncWaiter*>* defer) {
  size_t woken = 0, kept = 0;
  for (SyncWaiter* w : sync_waiters_) {
    if (!poisoned_.ok() || durable_lsn_ >= w->target) {
      w->status = poisoned_;
      w->state.store(SyncWaiter::kReleasing, std::memory_order_release);
      if (defer != nullptr) {
        defer->push_back(w);
      } else {
        w->state.notify_one();
        w->state.store(SyncWaiter::kReleased, std::memory_order_release);
      }
      woken++;
    } else {
      sync_waiters_[kept++] = w;
    }
  }
  sync_waiters_.resize(kept);
  return woken;
}

void SegmentedWal::Impl::StartSyncerLocked() {
  if (!syncer_thread_.joinable()) {
    syncer_thread_ = std::thread([this] { SyncerMain(); });
  }
}

void SegmentedWal::Impl::SyncerMain() {
  std::vector<SyncWaiter*> released;
  port::MutexLock l(&mu_);
  while (true) {
    WakeSyncWaitersLocked();  // covered by a seal or another sync, or poisoned
    if (sync_waiters_.empty()) {
      if (closing_) return;
      syncer_cv_.Wait(&mu_);
      continue;
    }
    if (io_busy_) {
      syncer_cv_.Wait(&mu_);  // ReleaseIoTokenLocked signals
      continue;
    }
    // Give the callers the last round released a moment to append their next
    // records and come back, so that this fsync carries them too (otherwise
    // they wait for the next one, and the callers split into two alternating
    // groups of half the size).
    if (sync_calls_since_release_ < released_by_last_sync_ && !closing_) {
      const auto deadline =
          last_release_ +
          std::chrono::microseconds(std::min(options_.group_commit_wait_micros,
                                             last_sync_round_micros_));
      const auto now = std::chrono::steady_clock::now();
      if (now < deadline) {
        syncer_cv_.WaitFor(
            &mu_, std::chrono::duration_cast<std::chrono::microseconds>(
                      deadline - now) +
                      std::chrono::microseconds(1));
        continue;
      }
    }
    (void)SyncRoundLocked(/*self=*/0, &released);  // errors reach the waiters
    if (!released.empty()) {
      // Wake them without mu_, which they need at once for their next
      // Append and Sync.
      mu_.Unlock();
      FinishReleases(&released);
      mu_.Lock();
    }
  }
}

// ---------------------------------------------------------------------------
// Spare files.

void SegmentedWal::Impl::SetUpSpares(const std::vector<std::string>& children) {
  // (An Env that cannot write in place is found out at the first use.)
  const bool enabled = options_.preallocate_segments;
  const size_t keep = std::max<size_t>(1, options_.recycle_segments);
  port::MutexLock l(&mu_);
  spares_enabled_ = enabled;
  recycle_enabled_ = enabled && options_.recycle_segments > 0 &&
                     options_.recovery_mode != RecoveryMode::kAbsoluteConsistency;
  for (const std::string& name : children) {
    uint64_t id;
    if (!wal_format::ParseSpareFileName(name, &id)) continue;
    next_spare_id_ = std::max(next_spare_id_, id + 1);
    const std::string path = options_.wal_dir + "/" + name;
    auto size = env_->GetFileSize(path);
    if (enabled && spares_.size() < keep && size.ok() &&
        *size >= kSegmentHeaderSize) {
      spares_.push_back({path, *size});
    } else {
      // Holds no record: dropping it loses nothing (not synced: a crash may
      // bring it back, and the next Open deletes it again).
      (void)env_->DeleteFile(path);
    }
  }
}

absl::Status SegmentedWal::Impl::PrepareSpare() {
  uint64_t id;
  {
    port::MutexLock l(&mu_);
    id = next_spare_id_++;
  }
  const std::string path = SparePath(id);
  constexpr uint64_t kPage = 4096;
  const uint64_t size =
      (std::clamp<uint64_t>(options_.segment_target_size, kSegmentHeaderSize,
                            kMaxSpareSize) +
       kPage - 1) / kPage * kPage;
  static const std::string* const kZeros = new std::string(1 << 20, '\0');
  auto file = env_->NewWritableFile(path);
  absl::Status s = file.status();
  for (uint64_t done = 0; s.ok() && done < size;) {
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kZeros->size(), size - done));
    s = (*file)->Append(absl::string_view(kZeros->data(), n));
    done += n;
  }
  // Synced so that the blocks are allocated and written before a segment
  // overwrites them (its fdatasyncs then commit no metadata).
  if (s.ok()) s = (*file)->Sync();
  if (s.ok()) s = (*file)->Close();
  if (!s.ok()) {
    if (file.ok()) (void)(*file)->Close();
    if (file.ok()) (void)env_->DeleteFile(path);
    return Annotate(s, "preparing spare " + path);
  }
  port::MutexLock l(&mu_);
  spares_.push_back({path, size});
  stats_.spares_zero_filled++;
  return absl::OkStatus();
}

absl::Status SegmentedWal::Impl::PrepareSpareOrGiveUp() {
  absl::Status s = PrepareSpare();
  port::MutexLock l(&mu_);
  spare_wanted_ = false;
  if (s.ok()) return s;
  // Segments are created as plain files from now on.
  spares_enabled_ = false;
  recycle_enabled_ = false;
  stats_.spare_failures++;
  if (absl::IsResourceExhausted(s)) return absl::OkStatus();
  return s;
}

std::optional<SegmentedWal::Impl::Spare> SegmentedWal::Impl::TakeSpare() {
  port::MutexLock l(&mu_);
  if (!spares_enabled_ || spares_.empty()) return std::nullopt;
  Spare spare = std::move(spares_.front());
  spares_.pop_front();
  return spare;
}

absl::StatusOr<SegmentedWal::Impl::Spare> SegmentedWal::Impl::NewEmptySpare() {
  uint64_t id;
  {
    port::MutexLock l(&mu_);
    id = next_spare_id_++;
  }
  Spare spare{SparePath(id), 0};
  auto file = env_->NewWritableFile(spare.path);
  absl::Status s = file.status();
  if (s.ok()) s = (*file)->Close();
  if (!s.ok()) return Annotate(s, "creating " + spare.path);
  return spare;
}

absl::Status SegmentedWal::Impl::CreateInSpare(
    Segment* seg, const Spare& spare, const std::string& header,
    std::vector<uint64_t>* sync_micros, bool* unsupported, bool publish) {
  Segment::FileState& io = seg->io(io_token_);
  // The header is durable before the segment's name exists, so the name never
  // reaches stale bytes at offset 0 (FORMAT.md, "Spare files").
  auto file = publish ? env_->ReopenWritableFile(spare.path, 0)
                      : OpenSegmentForWrite(spare.path, 0, &io.direct);
  if (absl::IsUnimplemented(file.status())) {
    *unsupported = true;
    std::deque<Spare> rest;
    {
      port::MutexLock l(&mu_);
      spares_enabled_ = false;
      recycle_enabled_ = false;
      rest.swap(spares_);
    }
    rest.push_back(spare);
    for (const Spare& sp : rest) (void)env_->DeleteFile(sp.path);
    return absl::OkStatus();
  }
  absl::Status s = file.status();
  if (s.ok()) s = (*file)->Append(header);
  if (s.ok() && !publish) {
    // The sealer syncs the header before it names the file (SealerMain).
    s = (*file)->Flush();
    if (s.ok()) {
      io.file = *std::move(file);
      io.in_spare = true;
      port::MutexLock l(&mu_);
      seg->spare_size = spare.size;
    }
    return Annotate(s, "creating segment " + seg->path + " in spare " +
                           spare.path);
  }
  if (s.ok()) s = TimedSync(file->get(), sync_micros);
  if (s.ok()) s = (*file)->Close();
  if (s.ok()) s = env_->RenameFile(spare.path, seg->path);
  if (s.ok()) SEGWAL_KILL_POINT("Create:BeforeSyncDir");
  if (s.ok()) s = env_->SyncDir(options_.wal_dir);
  if (s.ok()) SEGWAL_KILL_POINT("Create:AfterSyncDir");
  if (s.ok()) {
    auto reopened = OpenSegmentForWrite(seg->path, header.size(), &io.direct);
    s = reopened.status();
    if (s.ok()) io.file = *std::move(reopened);
  }
  if (s.ok()) {
    io.in_spare = true;
    port::MutexLock l(&mu_);
    seg->spare_size = spare.size;
  }
  return Annotate(s, "creating segment " + seg->path + " in spare " + spare.path);
}

void SegmentedWal::Impl::StartSpareThread() {
  {
    port::MutexLock l(&mu_);
    if (!spares_enabled_ || !options_.background_preallocation) return;
  }
  spare_thread_ = std::thread([this] { SpareThreadMain(); });
}

void SegmentedWal::Impl::SpareThreadMain() {
  port::MutexLock l(&mu_);
  while (true) {
    while (!closing_ && !(spare_wanted_ && spares_enabled_)) {
      spare_cv_.Wait(&mu_);
    }
    if (closing_) return;
    mu_.Unlock();
    absl::Status s = PrepareSpareOrGiveUp();
    mu_.Lock();
    if (!s.ok()) PoisonLocked(s);
  }
}

void SegmentedWal::Impl::SealerMain() {
  port::MutexLock l(&mu_);
  while (true) {
    while (!SealerShouldRunLocked()) sealer_cv_.Wait(&mu_);
    if (pending_seals_.empty()) return;  // stopping
    sealer_draining_ = true;
    PendingSeal p = std::move(pending_seals_.front());
    pending_seals_.pop_front();
    // After a failed seal (or any other poisoning) the seals queued behind
    // it name nothing: their files are closed and left under spare names.
    const bool go = poisoned_.ok();
    mu_.Unlock();
    absl::Status s;
    std::vector<uint64_t> sync_micros;  // the fsyncs made, for the stats
    auto timed_sync = [&sync_micros](WritableFile* f) {
      return TimedSync(f, &sync_micros);
    };
    if (go) {
      // Queued in order: the seal before this one gave the segment its name.
      if (p.cut) s = env_->TruncateFile(p.sealed->path, p.end_size);
      if (s.ok()) s = timed_sync(p.file.get());
      if (s.ok()) s = p.file->Close();
      if (s.ok()) SEGWAL_KILL_POINT("Roll:BetweenSealAndCreate");
      s = Annotate(s, "sealing segment " + p.sealed->path);
      if (s.ok() && p.next_sync != nullptr) {
        s = timed_sync(p.next_sync.get());
        if (s.ok()) s = p.next_sync->Close();
        s = Annotate(s, "syncing the header of segment " + p.next_path +
                            " in spare " + p.spare_path);
      }
      if (s.ok()) {
        s = env_->RenameFile(p.spare_path, p.next_path);
        if (s.ok()) SEGWAL_KILL_POINT("Create:BeforeSyncDir");
        if (s.ok()) s = env_->SyncDir(options_.wal_dir);
        if (s.ok()) SEGWAL_KILL_POINT("Create:AfterSyncDir");
        s = Annotate(s, "creating segment " + p.next_path + " in spare " +
                            p.spare_path);
      }
    }
    p.file.reset();
    p.next_sync.reset();
    mu_.Lock();
    stats_.syncs += sync_micros.size();
    for (uint64_t micros : sync_micros) stats_.sync_latency_micros.Add(micros);
    if (go && s.ok()) {
      p.sealed->readable_size = std::max(p.sealed->readable_size, p.end_size);
      p.sealed->readable_last_lsn =
          std::max(p.sealed->readable_last_lsn, p.last_lsn);
      p.sealed->sealed = true;
      durable_lsn_ = std::max(durable_lsn_, p.last_lsn);
    } else if (go) {
      PoisonLocked(s);
    }
    seals_in_flight_--;
    if (pending_seals_.empty()) sealer_draining_ = false;
    cv_.SignalAll();
    syncer_cv_.Signal();
  }
}

// ---------------------------------------------------------------------------
// Truncation.

absl::StatusOr<TruncateResult> SegmentedWal::Impl::TruncateBefore(
    uint64_t checkpoint_lsn) {
  port::MutexLock tl(&truncate_mu_);
  TruncateResult result;
  while (true) {
    std::shared_ptr<Segment> victim;
    std::string spare_path;  // recycle the victim under this name
    {
      port::MutexLock l(&mu_);
      if (!poisoned_.ok()) return poisoned_;
      if (segments_.size() < 2) break;
      const std::shared_ptr<Segment>& oldest = segments_.front();
      if (!oldest->sealed && oldest->framed_last_lsn < checkpoint_lsn &&
          seals_in_flight_ > 0) {
        // Full, but its seal is queued (or running): have it done first.
        absl::Status s = WaitForSealLocked();
        if (!s.ok()) return s;
        continue;
      }
      if (!oldest->sealed || oldest->framed_last_lsn >= checkpoint_lsn) break;
      victim = oldest;
      // Readers that start now no longer see it.
      segments_.erase(segments_.begin());
      if (recycle_enabled_ && spares_.size() < options_.recycle_segments) {
        spare_path = SparePath(next_spare_id_++);
      }
    }
    // Either way the segment's name is gone once the directory is synced;
    // a recycled file's records become stale bytes (its salt is replaced).
    absl::Status s = spare_path.empty()
                         ? env_->DeleteFile(victim->path)
                         : env_->RenameFile(victim->path, spare_path);
    if (s.ok()) SEGWAL_KILL_POINT("Truncate:AfterDelete");
    if (s.ok()) s = env_->SyncDir(options_.wal_dir);
    if (s.ok()) SEGWAL_KILL_POINT("Truncate:AfterSyncDir");
    if (!s.ok()) {
      port::MutexLock l(&mu_);
      s = Annotate(s, "truncating (deleting " + victim->path + ")");
      PoisonLocked(s);
      return s;
    }
    result.segments_deleted++;
    result.bytes_reclaimed += victim->readable_size;
    port::MutexLock l(&mu_);
    stats_.segments_deleted++;
    if (!spare_path.empty()) {
      spares_.push_back({spare_path, victim->readable_size});
      stats_.spares_recycled++;
    }
  }
  return result;
}

WalStats SegmentedWal::Impl::GetStats() const {
  port::MutexLock l(&mu_);
  WalStats stats = stats_;
  for (const auto& seg : segments_) {
    if (seg->readable_size == 0) continue;  // creation not written yet
    stats.segments_on_disk++;
    stats.bytes_on_disk += seg->sealed
                               ? seg->readable_size
                               : std::max(seg->readable_size, seg->spare_size);
  }
  stats.durable_lsn = durable_lsn_;
  stats.direct_io = direct_io_active_;
  stats.direct_io_fallback = direct_io_fallback_;
  stats.poisoned = !poisoned_.ok();
  if (stats.poisoned) stats.poisoned_reason = poisoned_.ToString();
  return stats;
}

// ---------------------------------------------------------------------------
// Reading.

absl::StatusOr<std::vector<SegmentView>> SegmentedWal::Impl::Snapshot(
    uint64_t* from_lsn_ptr, std::shared_ptr<const KeyRing>* ring) {
  absl::Status s = Drain(/*sync=*/false);
  if (!s.ok()) return s;
  port::MutexLock l(&mu_);
  // Every segment under its own name (a background seal renames the next).
  (void)WaitForSealLocked();  // (a poisoned log still reads)
  if (ring != nullptr) *ring = ring_;
  const uint64_t floor = segments_.front()->first_lsn;
  if (*from_lsn_ptr == 0) *from_lsn_ptr = floor;  // "from the start"
  const uint64_t from_lsn = *from_lsn_ptr;
  if (from_lsn < floor) {
    return absl::OutOfRangeError(absl::StrCat(
        "LSN ", from_lsn, " was truncated: the log starts at LSN ", floor));
  }
  std::vector<SegmentView> views;
  // The last segment whose first LSN is <= from_lsn holds it.
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), from_lsn,
      [](uint64_t lsn, const std::shared_ptr<Segment>& seg) {
        return lsn < seg->first_lsn;
      });
  if (it != segments_.begin()) --it;
  bool first = true;
  for (; it != segments_.end(); ++it) {
    const Segment& seg = **it;
    if (seg.readable_size < kSegmentHeaderSize) break;  // not created yet
    SegmentView v{seg.path,          seg.first_lsn,          seg.readable_last_lsn,
                  seg.readable_size, seg.has_skipped_damage, seg.skips, {}};
    v.encrypted = seg.encrypted;
    if (first) {
      for (const IndexEntry& e : seg.index) {
        if (e.offset >= seg.readable_size) break;
        v.index.push_back(e);
      }
      first = false;
    }
    views.push_back(std::move(v));
  }
  return views;
}

absl::StatusOr<std::vector<SegmentMeta>> SegmentedWal::Impl::ListSegments() {
  absl::Status s = Drain(/*sync=*/false);
  if (!s.ok()) return s;
  port::MutexLock l(&mu_);
  (void)WaitForSealLocked();  // as in Snapshot
  std::vector<SegmentMeta> out;
  for (const auto& seg : segments_) {
    if (seg->readable_size == 0) continue;
    out.push_back({seg->path, seg->first_lsn,
                   seg->sealed ? seg->readable_size
                               : std::max(seg->readable_size, seg->spare_size)});
  }
  return out;
}


// ---------------------------------------------------------------------------
// Recovery (FORMAT.md, "Recovery").

absl::Status SegmentedWal::Impl::Quarantine(
    const std::vector<std::string>& names) {
  if (names.empty()) return absl::OkStatus();
  const std::string qdir = options_.wal_dir + "/" + kQuarantineDir;
  absl::Status s = env_->CreateDirIfMissing(qdir);
  // The directory's own entry must be durable before anything moves into it.
  if (s.ok()) s = env_->SyncDir(options_.wal_dir);
  if (!s.ok()) return s;
  for (const std::string& name : names) {
    // Never replace what an earlier recovery quarantined.
    std::string target = qdir + "/" + name;
    for (int n = 1; env_->FileExists(target); ++n) {
      target = absl::StrCat(qdir, "/", name, ".", n);
    }
    s = env_->RenameFile(options_.wal_dir + "/" + name, target);
    if (!s.ok()) return s;
  }
  s = env_->SyncDir(qdir);
  if (s.ok()) s = env_->SyncDir(options_.wal_dir);
  return s;
}

absl::Status SegmentedWal::Impl::CreateSegmentFileNow(uint64_t first_lsn) {
  port::MutexLock l(&mu_);
  next_lsn_ = first_lsn;
  StartSegmentLocked();
  return RunQueuedLocked(/*sync=*/true);
}

absl::Status SegmentedWal::Impl::OpenTailForAppend(std::shared_ptr<Segment> seg) {
  Segment::FileState& io = seg->io(io_token_);
  auto file = env_->NewAppendableFile(seg->path);
  if (!file.ok()) return Annotate(file.status(), "reopening " + seg->path);
  // use_direct_io: O_DIRECT appends start on a block boundary. A padded
  // writer's syncs end on boundaries, so records in the last partial block
  // were never acknowledged: padding that block now (this one buffered
  // write, made durable by the sync below) rewrites no acknowledged block.
  const bool direct = options_.use_direct_io && seg->padded;
  uint64_t end;
  {
    port::MutexLock l(&mu_);
    end = seg->framed_size;
  }
  absl::Status s;
  if (direct && end % wal_format::kPaddingBlockSize != 0) {
    std::string pad;
    wal_format::AppendPaddingFrame(seg->seed, end, seg->framed_last_lsn,
                                   /*durable_lsn=*/0, &pad);
    s = (*file)->Append(pad);
    if (!s.ok()) return Annotate(s, "padding recovered tail " + seg->path);
    end += pad.size();
    port::MutexLock l(&mu_);
    seg->framed_size = seg->readable_size = end;
    stats_.padding_bytes += pad.size();
  }
  // The recovered bytes may be only in the OS cache (a process crash): make
  // them durable before durable_lsn() claims them and before records framed
  // with that durable LSN can follow them.
  s = (*file)->Sync();
  if (!s.ok()) return Annotate(s, "syncing recovered tail " + seg->path);
  if (direct) {
    auto reopened = OpenDirect(seg->path, end);
    if (!reopened.ok()) {
      return Annotate(reopened.status(), "reopening recovered tail " + seg->path);
    }
    if (*reopened != nullptr) {  // else: refused, keep appending through the cache
      s = (*file)->Close();
      if (!s.ok()) return Annotate(s, "reopening recovered tail " + seg->path);
      *file = *std::move(reopened);
      io.direct = true;
    }
  }
  io.file = std::move(*file);
  return absl::OkStatus();
}

absl::Status SegmentedWal::Impl::RetireRecoveredTail() {
  std::shared_ptr<Segment> tail;
  {
    port::MutexLock l(&mu_);
    tail = segments_.back();
    if (tail->record_count == 0) segments_.pop_back();
  }
  if (tail->record_count == 0) {
    // No record of it survived, but some may have been sealed under its
    // subkey before the crash: rewrite the file with a fresh salt.
    return CreateSegmentFileNow(tail->first_lsn);
  }
  absl::Status s;
  {
    IoTokenHold token(this);
    s = OpenTailForAppend(tail);  // makes the recovered bytes durable
  }
  if (!s.ok()) return s;
  port::MutexLock l(&mu_);
  durable_lsn_ = tail->framed_last_lsn;  // the footer frame carries it
  if (tail->has_skipped_damage) {
    // Its footer could not describe the LSNs it lacks: leave it unsealed
    // (recovery reads such a segment in the middle of the log).
    tail->sealed = true;  // closed and durable: TruncateBefore may delete it
    // Nothing is queued: this only closes the file, as the token holder.
    s = RunQueuedLocked(/*sync=*/false, [this, &tail] {
      io_token_.AssertHeld();
      Segment::FileState& io = tail->io(io_token_);
      absl::Status st = io.file->Close();
      io.file.reset();
      return Annotate(st, "closing recovered tail " + tail->path);
    });
    if (!s.ok()) return s;
    StartSegmentLocked();
  } else {
    RollLocked();  // footer (with the index from the scan), sync, next segment
  }
  return RunQueuedLocked(/*sync=*/true);
}

absl::Status SegmentedWal::Impl::InstallRing(KeyRing ring, bool rotate) {
  auto shared = std::make_shared<const KeyRing>(std::move(ring));
  port::MutexLock l(&mu_);
  // Become the I/O token holder with nothing queued, so the active segment's
  // file exists and no op on it is pending.
  while (true) {
    if (!poisoned_.ok()) return poisoned_;
    if (io_busy_) {
      cv_.Wait(&mu_);
      continue;
    }
    if (ops_.empty()) break;
    absl::Status s = RunQueuedLocked(/*sync=*/false);
    if (!s.ok()) return s;
  }
  std::shared_ptr<Segment> active = segments_.back();
  std::shared_ptr<Segment> replaced;
  if (active->record_count == 0) {
    // Nothing was sealed under the active segment's key: replace it (same
    // name, fresh salt, the new key) instead of sealing an empty segment.
    replaced = active;
    segments_.pop_back();
  } else if (!rotate) {
    return absl::FailedPreconditionError(absl::StrCat(
        "SetEncryptionRing: the active segment ", active->path, " already holds ",
        active->record_count, " records (LSNs ", active->first_lsn, "..",
        active->framed_last_lsn,
        "), which are never re-encrypted; use RotateEncryptionRing to encrypt "
        "from a new segment on"));
  }
  ring_ = shared;
  rings_.push_back(shared);
  if (replaced != nullptr) {
    StartSegmentLocked();
  } else {
    RollLocked();  // seal the active segment; the next one uses the new key
  }
  absl::Status s = RunQueuedLocked(/*sync=*/true, [this, &replaced] {
    io_token_.AssertHeld();
    absl::Status st;
    if (replaced != nullptr) {
      Segment::FileState& io = replaced->io(io_token_);
      if (io.file != nullptr) {
        st = Annotate(io.file->Close(), "closing " + replaced->path);
        io.file.reset();
      }
    }
    return st;
  });
  if (!s.ok()) PoisonLocked(s);
  return poisoned_;
}

absl::Status SegmentedWal::Impl::Recover() {
  const std::string& dir = options_.wal_dir;
  auto children = env_->GetChildren(dir);
  if (!children.ok()) return children.status();
  std::vector<std::pair<uint64_t, std::string>> found;
  for (const std::string& name : *children) {
    uint64_t lsn;
    if (wal_format::ParseSegmentFileName(name, &lsn)) found.push_back({lsn, name});
  }
  std::sort(found.begin(), found.end());
  report_.segments_found = found.size();
  // No segwal wrote a name outside [1, 2^63] (FORMAT.md, "Directory"); taking
  // one at its word would wrap LSNs around (found by fuzz/open_directory).
  for (const auto& [lsn, name] : found) {
    if (lsn == 0 || lsn > wal_format::kMaxFirstLsn) {
      return absl::DataLossError(absl::StrCat(
          dir, "/", name, " offset 0: a segment cannot start at LSN ", lsn,
          " (first LSNs are in [1, 2^63])"));
    }
  }

  const RecoveryMode mode = options_.recovery_mode;
  const bool pit = mode == RecoveryMode::kPointInTimeRecovery;
  const bool skip_bad = mode == RecoveryMode::kSkipAnyCorruptedRecords;
  const bool read_footers_only = mode == RecoveryMode::kTolerateCorruptedTail;

  // Moves found[from..] to quarantine/ (kPointInTimeRecovery) and reports it.
  auto quarantine_rest = [&](size_t from, const std::string& why) {
    std::vector<std::string> names;
    for (size_t j = from; j < found.size(); ++j) {
      const std::string path = dir + "/" + found[j].second;
      auto size = env_->GetFileSize(path);
      report_.drops.push_back({path, 0, size.ok() ? *size : 0,
                               "moved to " + std::string(kQuarantineDir) +
                                   "/: " + why});
      names.push_back(found[j].second);
    }
    found.resize(from);
    return Quarantine(names);
  };

  std::vector<std::shared_ptr<Segment>> segs;
  // What to do with the end of the log once the segments are known.
  std::optional<uint64_t> recreate_lsn;  // torn creation: rewrite this segment
  // A torn tail to cut off the last segment before appending.
  std::string cut_path;
  uint64_t cut_offset = 0;
  // Encryption is never turned off (FORMAT.md, "Encryption and compression"):
  // a plaintext segment after an encrypted one is a forgery or a replaced
  // file, whatever its CRCs say.
  std::string first_encrypted;
  for (size_t i = 0; i < found.size(); ++i) {
    const bool is_last = i + 1 == found.size();
    const std::string path = dir + "/" + found[i].second;
    if (!segs.empty() && found[i].first != segs.back()->framed_last_lsn + 1) {
      const uint64_t prev_last = segs.back()->framed_last_lsn;
      const bool gap = found[i].first > prev_last + 1;
      const std::string msg =
          gap ? absl::StrCat("missing records: LSNs ", prev_last + 1, "..",
                             found[i].first - 1, " are absent between ",
                             segs.back()->path, " and ", path)
              : absl::StrCat("overlapping segments: LSNs ", found[i].first,
                             "..", prev_last, " appear in both ",
                             segs.back()->path, " and ", path);
      if (!pit) return absl::DataLossError(msg);
      absl::Status s = quarantine_rest(i, msg);
      if (!s.ok()) return s;
      break;
    }
    auto size = env_->GetFileSize(path);
    if (!size.ok()) return size.status();
    auto reader_or = SegmentReader::Open(
        env_, path, *size, options_.max_record_size,
        options_.encryption_ring ? &*options_.encryption_ring : nullptr);
    if (!reader_or.ok()) {
      const absl::Status& s = reader_or.status();
      if (IsReadError(s)) return s;  // never mistaken for damage
      // A last segment no longer than a header whose header is invalid is a
      // torn creation: no record of it can have been acknowledged.
      if (absl::IsDataLoss(s) && is_last && *size <= kSegmentHeaderSize &&
          mode != RecoveryMode::kAbsoluteConsistency) {
        report_.drops.push_back({path, 0, *size,
                                 "torn segment creation: " +
                                     std::string(s.message())});
        report_.truncated_tail = true;
        recreate_lsn = found[i].first;
        break;
      }
      if (pit && absl::IsDataLoss(s) && !segs.empty()) {
        absl::Status qs = quarantine_rest(i, std::string(s.message()));
        if (!qs.ok()) return qs;
        break;
      }
      return s;
    }
    SegmentReader* reader = reader_or->get();
    if (reader->encrypted() && !options_.encryption_ring.has_value()) {
      // FailedPrecondition naming the key id the WAL needs.
      return reader->key_status();
    }
    if (reader->header().first_lsn != found[i].first) {
      return absl::DataLossError(absl::StrCat(
          path, " offset 16: header says first LSN ",
          reader->header().first_lsn, " but the file name says ",
          found[i].first));
    }
    if (reader->encrypted()) {
      if (first_encrypted.empty()) first_encrypted = path;
    } else if (!first_encrypted.empty()) {
      const std::string msg = absl::StrCat(
          path, " offset 0: a plaintext segment after the encrypted segment ",
          first_encrypted,
          " (encryption is never turned off: the file was replaced or "
          "forged)");
      if (!pit) return absl::DataLossError(msg);
      absl::Status qs = quarantine_rest(i, msg);
      if (!qs.ok()) return qs;
      break;
    }

    SegmentScan scan;
    scan.end_offset = kSegmentHeaderSize;
    absl::StatusOr<Footer> footer = absl::NotFoundError("not read");
    if (!is_last && read_footers_only) {
      footer = reader->ReadFooter();
      if (IsReadError(footer.status())) return footer.status();
      if (!footer.ok() && !absl::IsNotFound(footer.status())) {
        return absl::DataLossError(
            absl::StrCat("sealed segment ", path, " has a damaged footer: ",
                         footer.status().message()));
      }
    }
    if (footer.ok()) {
      scan.sealed = true;
      scan.count = footer->record_count;
      scan.last_lsn = found[i].first + footer->record_count - 1;
      scan.index = std::move(footer->index);
      scan.end_offset = footer->footer_offset;
    } else {
      ScanOptions scan_options;
      scan_options.is_last = is_last;
      scan_options.skip_damage = skip_bad;
      absl::Status s = ScanSegment(reader, scan_options, &scan);
      if (!s.ok()) return s;
      for (const ScannedDamage& d : scan.skipped) {
        report_.drops.push_back(
            {path, d.offset, *d.resume_offset - d.offset,
             absl::StrCat("skipped damaged bytes (", d.reason, "), ",
                          d.resume_lsn == d.lsn
                              ? std::string("no LSN missing")
                              : absl::StrCat("LSNs ", d.lsn, "..",
                                             d.resume_lsn - 1, " missing"))});
      }
    }

    // What the damage (if any) means in this mode (recovery_scan.h).
    bool cut = false;
    bool keeps_damage = !scan.skipped.empty();  // readers must resynchronise
    if (scan.damage.has_value()) {
      const ScannedDamage& d = *scan.damage;
      const std::string kind = DamageKindName(d);
      const std::string where =
          absl::StrCat(path, " offset ", d.offset, " (LSN ", d.lsn, ")");
      switch (DecideDamage(mode, is_last, d)) {
        case DamageAction::kFailOpen:
          return absl::DataLossError(absl::StrCat(
              kind, " at ", where, ": ", d.reason,
              !d.corruption   ? ""
              : !is_last      ? " (the segment was sealed)"
              : d.undecodable ? " (its checksums match: not a torn write)"
                              : " (a later record proves these bytes were "
                                "durable)"));
        case DamageAction::kKeep:
          // Damage at the end of a non-last segment: kept, readers skip it.
          if (d.offset < *size) {
            report_.drops.push_back(
                {path, d.offset, *size - d.offset,
                 absl::StrCat("skipped ", kind, ": ", d.reason)});
          }
          keeps_damage = true;
          break;
        case DamageAction::kCut:
          report_.drops.push_back({path, d.offset, *size - d.offset,
                                   absl::StrCat(kind, ": ", d.reason)});
          cut = true;
          if (pit && !is_last) {
            absl::Status s = quarantine_rest(
                i + 1, absl::StrCat("after the first bad record at ", where));
            if (!s.ok()) return s;
          }
          break;
      }
    } else if (!scan.sealed && scan.end_offset < *size) {
      // Zero fill after the last record: nothing lost, but cut it before
      // appending so the log has no hole.
      report_.drops.push_back({path, scan.end_offset, *size - scan.end_offset,
                               "zero fill after the last record"});
      cut = true;
    }
    if (cut) {
      // Done below, with the other steps that prepare for appending.
      cut_path = path;
      cut_offset = scan.end_offset;
      scan.sealed = false;
    }

    auto seg = std::make_shared<Segment>();
    seg->path = path;
    seg->first_lsn = found[i].first;
    seg->seed = reader->seed();
    seg->framed_size = scan.sealed ? *size : scan.end_offset;
    seg->framed_last_lsn = scan.last_lsn;
    seg->record_count = scan.count;
    seg->index = std::move(scan.index);
    seg->next_index_offset =
        seg->index.empty()
            ? kSegmentHeaderSize
            : seg->index.back().offset + wal_format::kIndexInterval;
    seg->readable_size = seg->framed_size;
    seg->readable_last_lsn = scan.last_lsn;
    // A non-last segment is closed and durable even without a footer (an
    // earlier recovery ended it cleanly): TruncateBefore may delete it.
    seg->sealed = scan.sealed || (!cut && i + 1 < found.size());
    seg->has_skipped_damage = keeps_damage;
    seg->skips = scan.SkipRanges();
    seg->encrypted = reader->encrypted();
    seg->padded = reader->padded();
    if (!seg->encrypted) seg->codec = std::make_unique<PayloadCodec>();
    report_.records_recovered += scan.count;
    segs.push_back(std::move(seg));
    if (cut || i + 1 == found.size()) break;
  }

  const uint64_t last_lsn =
      segs.empty() ? (recreate_lsn ? *recreate_lsn - 1 : 0)
                   : segs.back()->framed_last_lsn;
  {
    port::MutexLock l(&mu_);
    segments_ = segs;
    next_lsn_ = last_lsn + 1;
  }
  // Reading is done. What follows prepares for appending and needs writes: a
  // torn tail is cut (and synced) before anything is appended after it, and
  // the last segment is synced or a new one created.
  SetUpSpares(*children);
  absl::Status s;
  if (!cut_path.empty()) {
    s = Annotate(env_->TruncateFile(cut_path, cut_offset),
                 "cutting the torn tail of " + cut_path);
    if (s.ok()) {
      SEGWAL_KILL_POINT("Recover:AfterTruncateTail");
      report_.truncated_tail = true;
    }
  }
  if (!s.ok()) {
  } else if (segs.empty() || recreate_lsn || segs.back()->sealed) {
    // A fresh directory, a torn creation, or a sealed last segment: start the
    // next segment now (created, synced, directory synced), in a spare.
    bool need_spare;
    {
      port::MutexLock l(&mu_);
      need_spare = spares_enabled_ && spares_.empty();
    }
    if (need_spare) s = PrepareSpareOrGiveUp();
    if (s.ok()) s = CreateSegmentFileNow(last_lsn + 1);
  } else if (segs.back()->encrypted || options_.encryption_ring.has_value() ||
             (options_.use_direct_io && !segs.back()->padded)) {
    // Never append to an encrypted segment this process did not create: a
    // crash may have lost records whose LSNs (nonces) were already sealed
    // under its subkey (FORMAT.md, "Encryption and compression"). Nor, with
    // direct I/O, to one that cannot hold padding frames.
    s = RetireRecoveredTail();
  } else {
    IoTokenHold token(this);
    s = OpenTailForAppend(segs.back());
  }
  port::MutexLock l(&mu_);
  report_.first_lsn = segments_.front()->first_lsn;
  report_.last_lsn = last_lsn;
  flushed_lsn_ = last_lsn;
  if (!s.ok()) {
    if (segs.empty()) return s;  // nothing to read either
    // A full or failing disk must not stop a restart (docs/DURABILITY.md,
    // section 3; tikv/raft-engine#344): the log opens read-only. Readers see what recovery found (never a
    // torn tail: they stop at the last good record); Append and Sync return
    // this error. durable_lsn() stays 0: this instance confirmed nothing.
    PoisonLocked(s);
    read_only_ = true;
    report_.read_only_reason = std::string(s.message());
    return absl::OkStatus();
  }
  durable_lsn_ = last_lsn;
  return absl::OkStatus();
}

SegmentedWal::Impl::~Impl() {
  {
    port::MutexLock l(&mu_);
    closing_ = true;
  }
  spare_cv_.SignalAll();
  if (spare_thread_.joinable()) spare_thread_.join();
  syncer_cv_.SignalAll();  // it serves whoever is still queued, then ends
  if (syncer_thread_.joinable()) syncer_thread_.join();
  absl::Status s = Drain(/*sync=*/false);
  (void)s;  // Close does not promise durability; errors were already reported
  {
    port::MutexLock l(&mu_);
    sealer_stop_ = true;  // after the last seal Drain may have handed over
  }
  sealer_cv_.SignalAll();
  if (sealer_thread_.joinable()) sealer_thread_.join();
  IoTokenHold token(this);  // every thread that could hold it has ended
  port::MutexLock l(&mu_);
  for (auto& seg : segments_) {
    Segment::FileState& io = seg->io(io_token_);
    if (io.file != nullptr && io.in_spare && poisoned_.ok() &&
        io.file->Flush().ok()) {
      // Leave no spare bytes after the last record of a cleanly closed log
      // (not synced: Close is not a sync, and a crash leaves zeros or stale
      // bytes that recovery cuts as it always does).
      (void)env_->TruncateFile(seg->path, seg->readable_size);
    }
    if (io.file != nullptr) {
      (void)io.file->Close();
      io.file.reset();
    }
  }
  if (lock_ != nullptr) (void)env_->UnlockFile(std::move(lock_));
}

// ---------------------------------------------------------------------------
// SegmentedWal.

SegmentedWal::SegmentedWal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SegmentedWal::~SegmentedWal() = default;

namespace {

absl::Status CreateDirs(Env* env, const std::string& dir) {
  // Creates every missing level of an absolute or relative path.
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos == dir.size() || dir[pos] == '/') {
      const std::string prefix = dir.substr(0, pos);
      if (prefix.empty() || prefix.back() == '/') continue;
      absl::Status s = env->CreateDirIfMissing(prefix);
      if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SegmentedWal>> SegmentedWal::Open(
    const SegmentedWalOptions& options) {
  if (options.wal_dir.empty()) {
    return absl::InvalidArgumentError("SegmentedWalOptions.wal_dir is empty");
  }
  if (options.segment_target_size == 0) {
    return absl::InvalidArgumentError(
        "SegmentedWalOptions.segment_target_size must be > 0");
  }
  if (options.max_record_size == 0 || options.max_record_size > (1u << 31)) {
    return absl::InvalidArgumentError(
        "SegmentedWalOptions.max_record_size must be in (0, 2 GiB]");
  }
  if (options.write_buffer_size == 0) {
    return absl::InvalidArgumentError(
        "SegmentedWalOptions.write_buffer_size must be > 0");
  }
  if (options.replay_threads > kMaxReplayThreads) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SegmentedWalOptions.replay_threads must be <= ", kMaxReplayThreads,
        " (0: min(hardware threads, 8))"));
  }
  if (options.max_seals_in_flight == 0 ||
      options.max_seals_in_flight > kMaxSealsInFlight) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SegmentedWalOptions.max_seals_in_flight must be in [1, ",
        kMaxSealsInFlight, "], got ", options.max_seals_in_flight));
  }
  if (options.compression != Compression::kNone &&
      options.compression != Compression::kSnappy) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SegmentedWalOptions.compression has an unknown value ",
        static_cast<int>(options.compression)));
  }
  Env* env = options.env != nullptr ? options.env : Env::Default();
  std::string dir = options.wal_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  SegmentedWalOptions opts = options;
  opts.wal_dir = dir;
  absl::Status s = CreateDirs(env, dir);
  if (!s.ok()) return Annotate(s, "creating WAL directory " + dir);
  auto lock = env->LockFile(dir + "/" + kLockFileName);
  if (!lock.ok()) {
    if (absl::IsFailedPrecondition(lock.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "WAL directory ", dir, " is already open (", lock.status().message(),
          ")"));
    }
    return Annotate(lock.status(), "locking WAL directory " + dir);
  }
  auto impl = std::make_unique<Impl>(opts, env);
  impl->lock_ = std::move(*lock);
  s = impl->Recover();
  if (!s.ok()) {
    // Nothing was written; release the lock without the destructor's flush.
    {
      port::MutexLock l(&impl->mu_);
      impl->PoisonLocked(s);
    }
    return s;
  }
  bool writable;
  {
    port::MutexLock l(&impl->mu_);
    writable = impl->poisoned_.ok();
  }
  if (writable) impl->StartSpareThread();
  return std::unique_ptr<SegmentedWal>(new SegmentedWal(std::move(impl)));
}

absl::Status SegmentedWal::SetEncryptionRing(KeyRing ring) {
  return impl_->InstallRing(std::move(ring), /*rotate=*/false);
}

absl::Status SegmentedWal::RotateEncryptionRing(KeyRing ring) {
  return impl_->InstallRing(std::move(ring), /*rotate=*/true);
}

const KeyRing* SegmentedWal::encryption_ring() const { return impl_->ring(); }

absl::StatusOr<uint64_t> SegmentedWal::Append(uint32_t record_type,
                                              uint64_t tenant_id,
                                              uint32_t vshard_id,
                                              uint64_t database_id,
                                              absl::string_view payload) {
  return impl_->Append(record_type, tenant_id, vshard_id, database_id, payload);
}

absl::Status SegmentedWal::Sync() { return impl_->Sync(); }
absl::Status SegmentedWal::Flush() { return impl_->Flush(); }
uint64_t SegmentedWal::next_lsn() const { return impl_->next_lsn(); }
uint64_t SegmentedWal::active_segment_first_lsn() const {
  return impl_->active_segment_first_lsn();
}
const std::string& SegmentedWal::wal_dir() const {
  return impl_->options().wal_dir;
}
uint64_t SegmentedWal::durable_lsn() const { return impl_->durable_lsn(); }
absl::Status SegmentedWal::poisoned_status() const {
  return impl_->poisoned_status();
}
WalStats SegmentedWal::GetStats() const { return impl_->GetStats(); }
const RecoveryReport& SegmentedWal::recovery_report() const {
  return impl_->report();
}

absl::StatusOr<TruncateResult> SegmentedWal::TruncateBefore(
    uint64_t checkpoint_lsn) {
  return impl_->TruncateBefore(checkpoint_lsn);
}

absl::StatusOr<std::unique_ptr<WalIterator>> SegmentedWal::NewIterator(
    uint64_t from_lsn) const {
  // LSNs start at 1: from_lsn 0 asks for no record that 1 would not.
  return impl_->NewIterator(std::max<uint64_t>(from_lsn, 1));
}

absl::StatusOr<std::unique_ptr<WalIterator>> SegmentedWal::Impl::NewIterator(
    uint64_t from_lsn) {
  std::shared_ptr<const KeyRing> ring;
  auto views = Snapshot(&from_lsn, &ring);
  if (!views.ok()) return views.status();
  return std::unique_ptr<WalIterator>(
      new SegmentIterator(env_, std::move(*views), from_lsn,
                          options_.max_record_size, std::move(ring)));
}

size_t SegmentedWal::Impl::ReplayThreads() const {
  if (options_.replay_threads != 0) return options_.replay_threads;
  const size_t hardware = std::thread::hardware_concurrency();
  return std::clamp<size_t>(hardware, 1, 8);
}

absl::StatusOr<ReplayPage> SegmentedWal::Impl::ReadPage(
    uint64_t from_lsn, size_t max_records) {
  std::shared_ptr<const KeyRing> ring;
  auto views = Snapshot(&from_lsn, &ring);
  if (!views.ok()) return views.status();
  ReplayOptions replay;
  replay.threads = ReplayThreads();
  replay.min_bytes_per_thread = options_.replay_min_bytes_per_thread;
  replay.max_record_size = options_.max_record_size;
  return ReadViews(env_, std::move(*views), from_lsn, max_records, replay,
                   std::move(ring));
}

absl::StatusOr<ReplayPage> SegmentedWal::ReplayFromLimit(
    uint64_t from_lsn, size_t max_records) const {
  return impl_->ReadPage(std::max<uint64_t>(from_lsn, 1), max_records);
}

absl::StatusOr<std::vector<WalRecord>> SegmentedWal::ReplayFrom(
    uint64_t from_lsn) const {
  auto page = impl_->ReadPage(std::max<uint64_t>(from_lsn, 1), SIZE_MAX);
  if (!page.ok()) return page.status();
  return std::move(page->records);
}

absl::StatusOr<std::vector<WalRecord>> SegmentedWal::Replay() const {
  auto page = impl_->ReadPage(/*from the start*/ 0, SIZE_MAX);
  if (!page.ok()) return page.status();
  return std::move(page->records);
}

absl::StatusOr<std::vector<SegmentMeta>> SegmentedWal::ListSegments() const {
  return impl_->ListSegments();
}

absl::StatusOr<uint64_t> SegmentedWal::TotalSizeBytes() const {
  auto segs = ListSegments();
  if (!segs.ok()) return segs.status();
  uint64_t total = 0;
  for (const SegmentMeta& m : *segs) total += m.file_size;
  return total;
}

}  // namespace segwal
