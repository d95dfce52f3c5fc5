// The I/O token's executor (segmented_wal_impl.h, IoToken): RunQueuedLocked
// takes the token under mu_, runs the queued ops without mu_ and gives the
// token back; RunOps creates, writes, seals and syncs segment files as the
// token holder, taking mu_ only briefly (seal queue, stats), and
// CreateInSpare starts a segment in a spare file from the SparePool (whose
// own leaf lock guards the spare list). Segment::FileState is reached only
// through the token (Segment::io).
#include "wal/segmented_wal_impl.h"

#include "absl/strings/str_cat.h"
#include "wal/kill_point.h"

namespace segwal {

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
          std::optional<Spare> spare = spares_.Take();
          bool unsupported = false;
          if (spare.has_value()) {
            s = CreateInSpare(seg, *spare, op.data, &sync_micros, &unsupported,
                              /*publish=*/false);
            if (s.ok() && !unsupported) from_spares++;
          } else {
            spare = Spare{spares_.NewPath(), 0};
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
          // In line: a fixed op order.
          if (spares_.NeedsOne()) s = spares_.PrepareOrGiveUp();
          if (!s.ok()) break;
        }
        if (std::optional<Spare> spare = spares_.Take()) {
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
          auto empty = spares_.NewEmpty();
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
    std::deque<Spare> rest = spares_.DisableAndTakeAll();
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

}  // namespace segwal
