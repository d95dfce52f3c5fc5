// Group commit (SegmentedWalOptions::group_commit_wait_micros): Sync and
// Flush (Drain), one sync round as the token taker (SyncRoundLocked), the
// SyncWaiters a round releases, and the group-commit thread (SyncerMain). The
// waiter list and counters are guarded by mu_; a queued caller sleeps on its
// own SyncWaiter, without mu_. The list stays under mu_ rather than a lock of
// its own: whether to queue depends on io_busy_, durable_lsn_ and poisoned_
// read with it (wal/README.md, "What stays under mu_, and why").
#include "wal/segmented_wal_impl.h"


namespace segwal {

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

}  // namespace segwal
