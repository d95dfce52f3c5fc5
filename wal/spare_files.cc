// Spare segment files (SegmentedWalOptions::preallocate_segments,
// recycle_segments; FORMAT.md, "Spare files"): adopting a previous
// instance's spares, preparing zero-filled ones (on the spare thread or in
// line), recycling, and creating a segment in a spare as the I/O token holder
// (CreateInSpare). The spare list is guarded by mu_; file work runs without
// it.
#include "wal/segmented_wal_impl.h"

#include "absl/strings/str_cat.h"
#include "wal/kill_point.h"

namespace segwal {

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

}  // namespace segwal
