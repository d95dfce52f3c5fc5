// SparePool (spare_pool.h): spare segment files and the spare thread. Every
// field is guarded by SparePool::mu_, a leaf lock; file work (zero-filling,
// creating, deleting) runs without it. Creating a segment in a spare is the
// I/O token holder's job (SegmentedWal::Impl::CreateInSpare, io_token.cc).
#include "wal/spare_pool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "wal/format.h"

namespace segwal {

namespace {

// s with "<what>: " before its message (OK stays OK), as the WAL's Annotate.
absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

}  // namespace

SparePool::SparePool(const Options& options, Env* env)
    : env_(env),
      wal_dir_(options.wal_dir),
      target_size_(options.segment_target_size),
      preallocate_(options.preallocate),
      background_(options.background),
      recycle_segments_(options.recycle_segments),
      recycle_allowed_(options.recycle_allowed) {}

SparePool::~SparePool() { Stop(); }

std::string SparePool::PathOf(uint64_t id) const {
  return wal_dir_ + "/" + wal_format::SpareFileName(id);
}

void SparePool::SetUp(const std::vector<std::string>& children) {
  // (An Env that cannot write in place is found out at the first use.)
  const bool enabled = preallocate_;
  const size_t keep = std::max<size_t>(1, recycle_segments_);
  std::deque<Spare> adopted;
  uint64_t next_id = 1;
  for (const std::string& name : children) {
    uint64_t id;
    if (!wal_format::ParseSpareFileName(name, &id)) continue;
    next_id = std::max(next_id, id + 1);
    const std::string path = wal_dir_ + "/" + name;
    auto size = env_->GetFileSize(path);
    if (enabled && adopted.size() < keep && size.ok() &&
        *size >= wal_format::kSegmentHeaderSize) {
      adopted.push_back({path, *size});
    } else {
      // Holds no record: dropping it loses nothing (not synced: a crash may
      // bring it back, and the next Open deletes it again).
      (void)env_->DeleteFile(path);
    }
  }
  port::MutexLock l(&mu_);
  enabled_ = enabled;
  recycle_enabled_ = enabled && recycle_segments_ > 0 && recycle_allowed_;
  next_id_ = std::max(next_id_, next_id);
  for (Spare& sp : adopted) spares_.push_back(std::move(sp));
  UpdateHintLocked();
}

void SparePool::Start(std::function<void(const absl::Status&)> on_error) {
  {
    port::MutexLock l(&mu_);
    if (!enabled_ || !background_ || stop_) return;
  }
  on_error_ = std::move(on_error);
  thread_ = std::thread([this] { ThreadMain(); });
}

void SparePool::Stop() {
  {
    port::MutexLock l(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void SparePool::ThreadMain() {
  port::MutexLock l(&mu_);
  while (true) {
    while (!stop_ && !(wanted_ && enabled_)) cv_.Wait(&mu_);
    if (stop_) return;
    mu_.Unlock();
    absl::Status s = PrepareOrGiveUp();
    if (!s.ok()) on_error_(s);  // poisons the WAL (takes its mu_)
    mu_.Lock();
  }
}

bool SparePool::NeedsOne() const {
  port::MutexLock l(&mu_);
  return enabled_ && spares_.empty();
}

void SparePool::Request() {
  port::MutexLock l(&mu_);
  if (!enabled_ || wanted_ || !spares_.empty()) return;
  wanted_ = true;  // ready well before the roll needs it
  UpdateHintLocked();
  if (background_) cv_.Signal();
}

absl::Status SparePool::Prepare() {
  const std::string path = NewPath();
  constexpr uint64_t kPage = 4096;
  const uint64_t size =
      (std::clamp<uint64_t>(target_size_, wal_format::kSegmentHeaderSize,
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
  counters_.zero_filled++;
  UpdateHintLocked();
  return absl::OkStatus();
}

absl::Status SparePool::PrepareOrGiveUp() {
  absl::Status s = Prepare();
  port::MutexLock l(&mu_);
  wanted_ = false;
  if (s.ok()) {
    UpdateHintLocked();
    return s;
  }
  // Segments are created as plain files from now on.
  enabled_ = false;
  recycle_enabled_ = false;
  counters_.failures++;
  UpdateHintLocked();
  if (absl::IsResourceExhausted(s)) return absl::OkStatus();
  return s;
}

std::optional<SparePool::Spare> SparePool::Take() {
  port::MutexLock l(&mu_);
  if (!enabled_ || spares_.empty()) return std::nullopt;
  Spare spare = std::move(spares_.front());
  spares_.pop_front();
  UpdateHintLocked();
  return spare;
}

std::string SparePool::NewPath() {
  uint64_t id;
  {
    port::MutexLock l(&mu_);
    id = next_id_++;
  }
  return PathOf(id);
}

absl::StatusOr<SparePool::Spare> SparePool::NewEmpty() {
  Spare spare{NewPath(), 0};
  auto file = env_->NewWritableFile(spare.path);
  absl::Status s = file.status();
  if (s.ok()) s = (*file)->Close();
  if (!s.ok()) return Annotate(s, "creating " + spare.path);
  return spare;
}

std::deque<SparePool::Spare> SparePool::DisableAndTakeAll() {
  std::deque<Spare> rest;
  port::MutexLock l(&mu_);
  enabled_ = false;
  recycle_enabled_ = false;
  rest.swap(spares_);
  UpdateHintLocked();
  return rest;
}

std::string SparePool::RecycleName() {
  port::MutexLock l(&mu_);
  if (!recycle_enabled_ || spares_.size() >= recycle_segments_) return "";
  return PathOf(next_id_++);
}

void SparePool::AddRecycled(std::string path, uint64_t size) {
  port::MutexLock l(&mu_);
  spares_.push_back({std::move(path), size});
  counters_.recycled++;
  UpdateHintLocked();
}

SparePool::Counters SparePool::counters() const {
  port::MutexLock l(&mu_);
  return counters_;
}

}  // namespace segwal
