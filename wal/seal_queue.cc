// Background sealing (SegmentedWalOptions::background_sealing): the sealer
// thread takes PendingSeals in order from the queue (guarded by mu_) and
// seals each without mu_: cut, fdatasync, sync the next segment's header,
// rename it to its name, sync the directory. The queue stays under mu_
// rather than a lock of its own because a finished seal changes mu_-guarded
// state (segment sealed, durable_lsn_) atomically with the queue count its
// waiters read (wal/README.md, "What stays under mu_, and why").
#include "wal/segmented_wal_impl.h"

#include "absl/strings/str_cat.h"
#include "wal/kill_point.h"

namespace segwal {

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

}  // namespace segwal
