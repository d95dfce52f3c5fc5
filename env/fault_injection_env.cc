// FaultInjectionEnv, part 1 of 2: recording. This file owns the handles it
// returns and the Env methods, which forward to the base Env and record what a
// crash must know (see the header): per file, its visible and durable size and
// the pre-images of unsynced overwrites; per directory, the file entries
// changed and the directories created since its last SyncDir; plus fault
// control (inactive file system, injected errors) and the introspection tests
// use. Applying a crash to the base file system is fault_injection_crash.cc.
//
// Locking: crash_mu_ is held shared by every Env call and handle call for its
// whole duration, and exclusively by SimulateCrash, so a crash never overlaps
// a call; epoch_ (which handles are stale) is guarded by it. mu_ guards
// everything recorded (files_, live_, undo_, new_dirs_, injections_, counters,
// the handle and lock tables) and is always taken after crash_mu_. Env methods
// that change directory entries hold mu_ across their base call, so the
// recorded state and the base change together; handle I/O runs without mu_.

#include "env/fault_injection_env.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "env/fault_injection_internal.h"

namespace segwal {
namespace {

using fault_injection_internal::DirOf;
using fault_injection_internal::NormalizePath;
using fault_injection_internal::ReadAt;
using fault_injection_internal::ReadPrefix;

// ---- Pre-image maps: offset -> bytes; disjoint, non-adjacent ranges. ----

using PreimageMap = std::map<uint64_t, std::string>;

uint64_t EndOf(const PreimageMap::value_type& entry) {
  return entry.first + entry.second.size();
}

// The parts of [begin, end) no range of `map` covers, in offset order.
std::vector<std::pair<uint64_t, uint64_t>> Uncovered(const PreimageMap& map,
                                                     uint64_t begin,
                                                     uint64_t end) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  auto it = map.upper_bound(begin);
  if (it != map.begin() && EndOf(*std::prev(it)) > begin) {
    begin = std::min(end, EndOf(*std::prev(it)));
  }
  while (begin < end) {
    const uint64_t gap_end = it == map.end() ? end : std::min(end, it->first);
    if (begin < gap_end) out.emplace_back(begin, gap_end);
    if (it == map.end()) break;
    begin = std::max(begin, EndOf(*it));
    ++it;
  }
  return out;
}

// Adds `bytes` as the pre-image of [offset, offset + bytes.size()) where the
// map has none yet (an older pre-image is the durable one), then merges
// adjacent ranges.
void MergePreimage(PreimageMap& map, uint64_t offset, absl::string_view bytes) {
  const uint64_t end = offset + bytes.size();
  for (const auto& [begin, gap_end] : Uncovered(map, offset, end)) {
    map.emplace(begin,
                std::string(bytes.substr(begin - offset, gap_end - begin)));
  }
  auto it = map.upper_bound(offset);
  if (it != map.begin()) --it;
  while (it != map.end() && it->first <= end) {
    auto next = std::next(it);
    if (next != map.end() && EndOf(*it) == next->first) {
      it->second += next->second;
      map.erase(next);
    } else {
      it = next;
    }
  }
}

// Drops the pre-images of bytes at or beyond `size`.
void ClipPreimages(PreimageMap& map, uint64_t size) {
  map.erase(map.lower_bound(size), map.end());
  if (!map.empty() && EndOf(*map.rbegin()) > size) {
    map.rbegin()->second.resize(size - map.rbegin()->first);
  }
}

absl::Status StaleHandleError(const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat("stale handle from before SimulateCrash: ", path));
}

}  // namespace

// ---- Handles. ----
//
// Each handle call holds crash_mu_ shared for its whole duration, so a crash
// never interleaves with it, and takes mu_ only briefly to check for faults and
// update the recorded state (base I/O runs without mu_).
//
// A handle's base object is touched by its owner's calls (one at a time, under
// crash_mu_ shared) and by SimulateCrash (crash_mu_ exclusive), never both at
// once.

class FaultInjectionEnv::WritableHandle : public WritableFile {
 public:
  // `durable_reader` reads the base file; non-null for a handle that writes
  // in place (ReopenWritableFile), which must save the bytes it overwrites.
  WritableHandle(FaultInjectionEnv* env, std::unique_ptr<WritableFile> base,
                 std::unique_ptr<RandomAccessFile> durable_reader,
                 uint64_t file, std::string path, uint64_t epoch, uint64_t id)
      : env_(env),
        base_(std::move(base)),
        durable_reader_(std::move(durable_reader)),
        file_(file),
        path_(std::move(path)),
        epoch_(epoch),
        id_(id) {}

  ~WritableHandle() override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    {
      port::MutexLock l(&env_->mu_);
      env_->writable_handles_.erase(id_);
    }
    // May flush buffered bytes (already counted as appended); never during a
    // crash, and never after one (SimulateCrash has reset base_ by then).
    base_.reset();
    durable_reader_.reset();
  }

  absl::Status Append(absl::string_view data) override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    if (absl::Status s = Check(kOpAppend); !s.ok()) return s;
    const uint64_t before = base_->Size();
    // The durable bytes this write replaces, read before it lands. Earlier
    // writes of this handle sit at lower offsets, so even while the base
    // buffers them the range still holds what the device holds.
    std::vector<std::pair<uint64_t, std::string>> preimages;
    if (durable_reader_ != nullptr) {
      absl::Status s = env_->ReadPreimages(file_, *durable_reader_, before,
                                           data.size(), &preimages);
      if (!s.ok()) return s;
    }
    absl::Status s = base_->Append(data);
    uint64_t added = data.size();
    if (!s.ok()) {
      // Whatever part the base took anyway is on the file: count it.
      const uint64_t after = base_->Size();
      added = after > before ? after - before : 0;
    }
    if (durable_reader_ != nullptr) {
      env_->AddOverwritten(file_, before, added, std::move(preimages));
    } else {
      env_->AddAppended(file_, added);
    }
    return s;
  }

  absl::Status Flush() override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    if (absl::Status s = Check(kOpFlush); !s.ok()) return s;
    return base_->Flush();
  }

  absl::Status Sync() override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    if (absl::Status s = Check(kOpSync); !s.ok()) return s;
    uint64_t target = 0;
    {
      port::MutexLock l(&env_->mu_);
      auto it = env_->files_.find(file_);
      if (it != env_->files_.end()) target = it->second.size;
    }
    absl::Status s = base_->Sync();
    if (!s.ok()) return s;
    port::MutexLock l(&env_->mu_);
    auto it = env_->files_.find(file_);
    if (it != env_->files_.end()) {
      // fdatasync covers the whole file: every overwrite is durable now.
      FileState& state = it->second;
      state.synced = std::min(std::max(state.synced, target), state.size);
      state.preimages.clear();
    }
    return s;
  }

  absl::Status Close() override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    if (absl::Status s = Check(0); !s.ok()) return s;
    return base_->Close();
  }

  uint64_t Size() const override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    return base_ != nullptr ? base_->Size() : size_at_crash_;
  }

  absl::Status Allocate(uint64_t offset, uint64_t len) override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    if (absl::Status s = Check(0); !s.ok()) return s;
    return base_->Allocate(offset, len);
  }

  // Called by SimulateCrash (crash_mu_ exclusive): buffered bytes reach the
  // base file before the crash rules cut it, and nothing reaches it afterwards.
  void DetachForCrash() {
    if (base_ == nullptr) return;
    size_at_crash_ = base_->Size();
    base_->Close().IgnoreError();
    base_.reset();
    durable_reader_.reset();
  }

 private:
  absl::Status Check(uint32_t op) const
      ABSL_SHARED_LOCKS_REQUIRED(env_->crash_mu_) {
    if (epoch_ != env_->epoch_) return StaleHandleError(path_);
    port::MutexLock l(&env_->mu_);
    return env_->CheckOp(op, path_);
  }

  FaultInjectionEnv* const env_;
  std::unique_ptr<WritableFile> base_;
  std::unique_ptr<RandomAccessFile> durable_reader_;
  uint64_t size_at_crash_ = 0;
  const uint64_t file_;
  const std::string path_;
  const uint64_t epoch_;
  const uint64_t id_;
};

class FaultInjectionEnv::SequentialHandle : public SequentialFile {
 public:
  SequentialHandle(FaultInjectionEnv* env, std::unique_ptr<SequentialFile> base,
                   std::string path, uint64_t epoch)
      : env_(env),
        base_(std::move(base)),
        path_(std::move(path)),
        epoch_(epoch) {}

  absl::Status Read(size_t n, absl::string_view* result,
                    char* scratch) override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    if (absl::Status s = Check(); !s.ok()) {
      *result = absl::string_view();
      return s;
    }
    return base_->Read(n, result, scratch);
  }

  absl::Status Skip(uint64_t n) override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    if (absl::Status s = Check(); !s.ok()) return s;
    return base_->Skip(n);
  }

 private:
  absl::Status Check() const ABSL_SHARED_LOCKS_REQUIRED(env_->crash_mu_) {
    if (epoch_ != env_->epoch_) return StaleHandleError(path_);
    port::MutexLock l(&env_->mu_);
    return env_->CheckOp(kOpRead, path_);
  }

  FaultInjectionEnv* const env_;
  const std::unique_ptr<SequentialFile> base_;
  const std::string path_;
  const uint64_t epoch_;
};

class FaultInjectionEnv::RandomAccessHandle : public RandomAccessFile {
 public:
  RandomAccessHandle(FaultInjectionEnv* env,
                     std::unique_ptr<RandomAccessFile> base, std::string path,
                     uint64_t epoch)
      : env_(env),
        base_(std::move(base)),
        path_(std::move(path)),
        epoch_(epoch) {}

  absl::Status Read(uint64_t offset, size_t n, absl::string_view* result,
                    char* scratch) const override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    if (absl::Status s = Check(); !s.ok()) {
      *result = absl::string_view();
      return s;
    }
    return base_->Read(offset, n, result, scratch);
  }

 private:
  absl::Status Check() const ABSL_SHARED_LOCKS_REQUIRED(env_->crash_mu_) {
    if (epoch_ != env_->epoch_) return StaleHandleError(path_);
    port::MutexLock l(&env_->mu_);
    return env_->CheckOp(kOpRead, path_);
  }

  FaultInjectionEnv* const env_;
  const std::unique_ptr<RandomAccessFile> base_;
  const std::string path_;
  const uint64_t epoch_;
};

class FaultInjectionEnv::LockHandle : public FileLock {
 public:
  LockHandle(FaultInjectionEnv* env, std::unique_ptr<FileLock> base,
             std::string path, uint64_t epoch, uint64_t id)
      : env_(env),
        base_(std::move(base)),
        path_(std::move(path)),
        epoch_(epoch),
        id_(id) {}

  ~LockHandle() override {
    port::ReaderMutexLock crash(&env_->crash_mu_);
    port::MutexLock l(&env_->mu_);
    env_->locks_.erase(id_);
    if (base_ != nullptr)
      env_->base_->UnlockFile(std::move(base_)).IgnoreError();
  }

  // Gives the base lock back to the base Env (UnlockFile, or a crash: a power
  // loss releases every lock). Idempotent.
  absl::Status Release() {
    if (base_ == nullptr) return absl::OkStatus();
    return env_->base_->UnlockFile(std::move(base_));
  }

  const std::string& path() const { return path_; }
  uint64_t epoch() const { return epoch_; }
  uint64_t id() const { return id_; }

 private:
  FaultInjectionEnv* const env_;
  std::unique_ptr<FileLock> base_;
  const std::string path_;
  const uint64_t epoch_;
  const uint64_t id_;
};

void FaultInjectionEnv::DetachHandlesForCrash() {
  for (auto& [id, handle] : writable_handles_) handle->DetachForCrash();
  for (auto& [id, lock] : locks_) lock->Release().IgnoreError();
  writable_handles_.clear();
  locks_.clear();
  ++epoch_;
}

// ---- FaultInjectionEnv. ----

FaultInjectionEnv::FaultInjectionEnv(Env* base) : base_(base) {}

FaultInjectionEnv::~FaultInjectionEnv() = default;

absl::Status FaultInjectionEnv::CheckOp(uint32_t op, const std::string& path,
                                        const std::string& path2) {
  if (op != 0) ++op_counts_[std::countr_zero(op)];
  if (!active_) return inactive_error_;
  if (op == 0) return absl::OkStatus();
  for (auto it = injections_.begin(); it != injections_.end(); ++it) {
    Injection& injection = *it;
    if ((injection.ops & op) == 0) continue;
    if (!injection.path_substring.empty() &&
        !absl::StrContains(path, injection.path_substring) &&
        !absl::StrContains(path2, injection.path_substring)) {
      continue;
    }
    if (injection.skip > 0) {
      --injection.skip;
      continue;
    }
    if (injection.count == 0) continue;
    if (injection.count > 0) --injection.count;
    absl::Status error = injection.error;
    if (injection.count == 0) injections_.erase(it);
    return error;
  }
  return absl::OkStatus();
}

uint64_t FaultInjectionEnv::TrackExisting(const std::string& norm,
                                          const std::string& raw) {
  auto it = live_.find(norm);
  if (it != live_.end()) return it->second.file;
  absl::StatusOr<uint64_t> size = base_->GetFileSize(raw);
  if (!size.ok()) return 0;
  const uint64_t file = AddFile(norm, raw);
  files_[file].size = *size;
  files_[file].synced = *size;
  return file;
}

uint64_t FaultInjectionEnv::AddFile(const std::string& norm,
                                    const std::string& raw) {
  const uint64_t file = next_file_++;
  files_[file].live_path = norm;
  live_[norm] = Binding{file, raw};
  return file;
}

void FaultInjectionEnv::RecordDirChange(const std::string& norm,
                                        const std::string& raw) {
  std::map<std::string, Binding>& entries = undo_[DirOf(norm)];
  if (entries.count(norm) != 0) return;  // the durable binding is known
  auto it = live_.find(norm);
  if (it == live_.end()) {
    entries.emplace(norm, Binding{0, raw});
  } else {
    ++files_[it->second.file].undo_refs;
    entries.emplace(norm, it->second);
  }
}

absl::Status FaultInjectionEnv::SaveBytesIfUndoable(uint64_t file,
                                                    const std::string& raw) {
  FileState& state = files_[file];
  if (state.undo_refs == 0) return absl::OkStatus();
  absl::StatusOr<std::string> bytes = ReadDurableContent(state, raw);
  if (!bytes.ok()) return bytes.status();
  state.saved_bytes = *std::move(bytes);
  state.has_saved_bytes = true;
  return absl::OkStatus();
}

void FaultInjectionEnv::Unlink(const std::string& norm) {
  auto it = live_.find(norm);
  if (it == live_.end()) return;
  const uint64_t file = it->second.file;
  live_.erase(it);
  FileState& state = files_[file];
  if (state.live_path == norm) state.live_path.clear();
  ForgetIfUnreachable(file);
}

void FaultInjectionEnv::ForgetIfUnreachable(uint64_t file) {
  auto it = files_.find(file);
  if (it != files_.end() && it->second.live_path.empty() &&
      it->second.undo_refs == 0) {
    files_.erase(it);
  }
}

void FaultInjectionEnv::ReleaseUndoRecords(
    const std::map<std::string, Binding>& entries) {
  std::vector<uint64_t> released;
  for (const auto& [norm, durable] : entries) {
    if (durable.file != 0) released.push_back(durable.file);
  }
  for (uint64_t file : released) {
    --files_[file].undo_refs;
    ForgetIfUnreachable(file);
  }
}

void FaultInjectionEnv::ForgetDeletedDirectory(const std::string& norm) {
  auto parent = new_dirs_.find(DirOf(norm));
  if (parent == new_dirs_.end() || parent->second.erase(norm) == 0) return;
  if (parent->second.empty()) new_dirs_.erase(parent);
  // Records keyed by `norm` itself or by a directory under it.
  auto at_or_under = [&norm](const std::string& dir) {
    return dir == norm ||
           (dir.size() > norm.size() &&
            dir.compare(0, norm.size(), norm) == 0 && dir[norm.size()] == '/');
  };
  for (auto it = new_dirs_.begin(); it != new_dirs_.end();) {
    it = at_or_under(it->first) ? new_dirs_.erase(it) : std::next(it);
  }
  for (auto it = undo_.begin(); it != undo_.end();) {
    if (!at_or_under(it->first)) {
      ++it;
      continue;
    }
    const std::map<std::string, Binding> entries = std::move(it->second);
    it = undo_.erase(it);
    ReleaseUndoRecords(entries);
  }
}

void FaultInjectionEnv::NoteFailedOpen(const std::string& norm,
                                       const std::string& raw, bool existed) {
  absl::StatusOr<uint64_t> size = base_->GetFileSize(raw);
  if (!size.ok()) return;
  auto it = live_.find(norm);
  if (it == live_.end()) {
    if (existed) return;  // untracked: durable as it is now
    RecordDirChange(norm, raw);
    files_[AddFile(norm, raw)].size = *size;
    return;
  }
  FileState& state = files_[it->second.file];
  if (*size < state.size) ShrinkState(state, *size);
}

absl::StatusOr<std::string> FaultInjectionEnv::ReadDurableContent(
    const FileState& state, const std::string& raw) const {
  absl::StatusOr<std::string> bytes = ReadPrefix(base_, raw, state.synced);
  if (!bytes.ok()) return bytes;
  for (const auto& [offset, preimage] : state.preimages) {
    if (offset >= bytes->size()) break;
    const size_t n = std::min<size_t>(preimage.size(), bytes->size() - offset);
    bytes->replace(offset, n, preimage, 0, n);
  }
  return bytes;
}

void FaultInjectionEnv::ShrinkState(FileState& state, uint64_t size) {
  state.size = size;
  state.synced = std::min(state.synced, size);
  ClipPreimages(state.preimages, size);
}

void FaultInjectionEnv::AddAppended(uint64_t file, uint64_t bytes) {
  port::MutexLock l(&mu_);
  auto it = files_.find(file);
  if (it != files_.end()) it->second.size += bytes;
}

absl::Status FaultInjectionEnv::ReadPreimages(
    uint64_t file, const RandomAccessFile& reader, uint64_t offset, uint64_t n,
    std::vector<std::pair<uint64_t, std::string>>* preimages) {
  port::MutexLock l(&mu_);
  auto it = files_.find(file);
  if (it == files_.end()) return absl::OkStatus();  // unreachable: not tracked
  const FileState& state = it->second;
  const uint64_t durable_end = std::min(offset + n, state.synced);
  if (offset >= durable_end) return absl::OkStatus();
  for (const auto& [begin, end] :
       Uncovered(state.preimages, offset, durable_end)) {
    absl::StatusOr<std::string> bytes = ReadAt(reader, begin, end - begin);
    if (!bytes.ok()) return bytes.status();
    if (bytes->size() != end - begin) {
      return absl::InternalError(
          absl::StrCat("FaultInjectionEnv: the durable bytes [", begin, ", ",
                       end, ") of a file are missing from the base file (",
                       bytes->size(), " read)"));
    }
    preimages->emplace_back(begin, *std::move(bytes));
  }
  return absl::OkStatus();
}

void FaultInjectionEnv::AddOverwritten(
    uint64_t file, uint64_t offset, uint64_t written,
    std::vector<std::pair<uint64_t, std::string>> preimages) {
  port::MutexLock l(&mu_);
  auto it = files_.find(file);
  if (it == files_.end()) return;
  FileState& state = it->second;
  const uint64_t end = offset + written;
  state.size = std::max(state.size, end);
  // Only the bytes the base really wrote lost their durable content, and only
  // below the durable size (a concurrent shrink may have lowered it).
  const uint64_t limit = std::min(end, state.synced);
  for (auto& [begin, bytes] : preimages) {
    if (begin >= limit) break;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(bytes.size(), limit - begin));
    MergePreimage(state.preimages, begin,
                  absl::string_view(bytes).substr(0, n));
  }
}

// ---- Fault control. ----

void FaultInjectionEnv::SetFilesystemActive(bool active, absl::Status error) {
  port::MutexLock l(&mu_);
  active_ = active;
  inactive_error_ =
      error.ok() ? absl::UnavailableError("filesystem inactive") : error;
}

void FaultInjectionEnv::InjectError(uint32_t ops, absl::Status error,
                                    std::string path_substring, int64_t skip,
                                    int64_t count) {
  if (error.ok()) error = absl::UnavailableError("injected error");
  port::MutexLock l(&mu_);
  injections_.push_back(Injection{ops, std::move(error),
                                  std::move(path_substring),
                                  std::max<int64_t>(skip, 0), count});
}

void FaultInjectionEnv::ClearInjectedErrors() {
  port::MutexLock l(&mu_);
  injections_.clear();
}

bool FaultInjectionEnv::IsFilesystemActive() const {
  port::MutexLock l(&mu_);
  return active_;
}

uint64_t FaultInjectionEnv::OpCount(uint32_t ops) const {
  port::MutexLock l(&mu_);
  uint64_t total = 0;
  for (size_t i = 0; i < op_counts_.size(); ++i) {
    if ((ops >> i) & 1) total += op_counts_[i];
  }
  return total;
}

uint64_t FaultInjectionEnv::CrashCount() const {
  port::MutexLock l(&mu_);
  return crash_count_;
}

absl::StatusOr<uint64_t> FaultInjectionEnv::SyncedSize(
    const std::string& path) const {
  port::MutexLock l(&mu_);
  auto it = live_.find(NormalizePath(path));
  if (it != live_.end()) return files_.at(it->second.file).synced;
  return base_->GetFileSize(path);
}

absl::StatusOr<uint64_t> FaultInjectionEnv::AppendedSize(
    const std::string& path) const {
  port::MutexLock l(&mu_);
  auto it = live_.find(NormalizePath(path));
  if (it != live_.end()) return files_.at(it->second.file).size;
  return base_->GetFileSize(path);
}

absl::StatusOr<std::string> FaultInjectionEnv::DurableContent(
    const std::string& path) const {
  port::MutexLock l(&mu_);
  auto it = live_.find(NormalizePath(path));
  if (it == live_.end()) return ReadPrefix(base_, path, UINT64_MAX);
  return ReadDurableContent(files_.at(it->second.file), it->second.raw_path);
}

std::vector<std::string> FaultInjectionEnv::FilesWithUnsyncedData() const {
  port::MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [norm, binding] : live_) {
    const FileState& state = files_.at(binding.file);
    if (state.size > state.synced || !state.preimages.empty()) {
      out.push_back(binding.raw_path);
    }
  }
  return out;
}

FaultInjectionEnv::TornSectorCounts FaultInjectionEnv::LastCrashTornSectors()
    const {
  port::MutexLock l(&mu_);
  return torn_sectors_;
}

std::vector<std::string> FaultInjectionEnv::UnsyncedDirEntries() const {
  port::MutexLock l(&mu_);
  std::map<std::string, std::string> changed;  // norm -> raw, sorted by norm
  for (const auto& [dir, entries] : undo_) {
    for (const auto& [norm, durable] : entries) {
      auto it = live_.find(norm);
      const uint64_t live_file = it == live_.end() ? 0 : it->second.file;
      if (live_file != durable.file) changed.emplace(norm, durable.raw_path);
    }
  }
  for (const auto& [parent, dirs] : new_dirs_) {
    for (const auto& [norm, raw] : dirs) changed.emplace(norm, raw);
  }
  std::vector<std::string> out;
  for (auto& [norm, raw] : changed) out.push_back(raw);
  return out;
}

// ---- Env. ----

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionEnv::OpenWritable(
    const std::string& path, const FileOptions* options) {
  port::ReaderMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  if (absl::Status s = CheckOp(kOpOpen, path); !s.ok()) return s;
  const std::string norm = NormalizePath(path);
  const bool existed = base_->FileExists(path);
  absl::StatusOr<std::unique_ptr<WritableFile>> base_file =
      options != nullptr ? base_->NewWritableFileWithOptions(path, *options)
                         : base_->NewWritableFile(path);
  if (!base_file.ok()) {
    NoteFailedOpen(norm, path, existed);
    return base_file.status();
  }
  uint64_t file;
  auto it = live_.find(norm);
  if (existed && it != live_.end()) {
    // Same file, truncated: a shrink, durable at once (see the header).
    file = it->second.file;
    ShrinkState(files_[file], 0);
  } else if (existed) {
    file = AddFile(norm, path);  // its directory entry was already durable
  } else {
    RecordDirChange(norm, path);
    file = AddFile(norm, path);
  }
  const uint64_t id = next_handle_++;
  auto handle = std::make_unique<WritableHandle>(
      this, *std::move(base_file), nullptr, file, path, epoch_, id);
  writable_handles_[id] = handle.get();
  return handle;
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::NewWritableFile(const std::string& path) {
  return OpenWritable(path, nullptr);
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::NewWritableFileWithOptions(const std::string& path,
                                              const FileOptions& options) {
  return OpenWritable(path, &options);
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::NewAppendableFile(const std::string& path) {
  port::ReaderMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  if (absl::Status s = CheckOp(kOpOpen, path); !s.ok()) return s;
  const std::string norm = NormalizePath(path);
  // An existing file counts as durable at its size before we append to it.
  const bool existed = base_->FileExists(path);
  uint64_t file = existed ? TrackExisting(norm, path) : 0;
  absl::StatusOr<std::unique_ptr<WritableFile>> base_file =
      base_->NewAppendableFile(path);
  if (!base_file.ok()) {
    NoteFailedOpen(norm, path, existed);
    return base_file.status();
  }
  if (file == 0) {
    RecordDirChange(norm, path);
    file = AddFile(norm, path);
  }
  const uint64_t id = next_handle_++;
  auto handle = std::make_unique<WritableHandle>(
      this, *std::move(base_file), nullptr, file, path, epoch_, id);
  writable_handles_[id] = handle.get();
  return handle;
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::ReopenWritableFile(const std::string& path,
                                      uint64_t offset) {
  return ReopenWritable(path, offset, nullptr);
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::ReopenWritableFileWithOptions(const std::string& path,
                                                 uint64_t offset,
                                                 const FileOptions& options) {
  return ReopenWritable(path, offset, &options);
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionEnv::ReopenWritable(
    const std::string& path, uint64_t offset, const FileOptions* options) {
  port::ReaderMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  if (absl::Status s = CheckOp(kOpOpen, path); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<WritableFile>> base_file =
      options != nullptr
          ? base_->ReopenWritableFileWithOptions(path, offset, *options)
          : base_->ReopenWritableFile(path, offset);
  if (!base_file.ok()) return base_file.status();
  // Reads what the device holds before each write lands. Opened on the same
  // file as the writer, so it follows the file across renames.
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> reader =
      base_->NewRandomAccessFile(path);
  if (!reader.ok()) return reader.status();
  // Reopening changes nothing: a file not seen before is durable as it is.
  const uint64_t file = TrackExisting(NormalizePath(path), path);
  if (file == 0) {
    return absl::NotFoundError(
        absl::StrCat("reopen ", path, ": vanished while being opened"));
  }
  const uint64_t id = next_handle_++;
  auto handle = std::make_unique<WritableHandle>(
      this, *std::move(base_file), *std::move(reader), file, path, epoch_, id);
  writable_handles_[id] = handle.get();
  return handle;
}

absl::StatusOr<std::unique_ptr<SequentialFile>>
FaultInjectionEnv::NewSequentialFile(const std::string& path) {
  port::ReaderMutexLock crash(&crash_mu_);
  {
    port::MutexLock l(&mu_);
    if (absl::Status s = CheckOp(kOpOpen, path); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<SequentialFile>> base_file =
      base_->NewSequentialFile(path);
  if (!base_file.ok()) return base_file.status();
  return std::make_unique<SequentialHandle>(this, *std::move(base_file), path,
                                            epoch_);
}

absl::StatusOr<std::unique_ptr<RandomAccessFile>>
FaultInjectionEnv::NewRandomAccessFile(const std::string& path) {
  port::ReaderMutexLock crash(&crash_mu_);
  {
    port::MutexLock l(&mu_);
    if (absl::Status s = CheckOp(kOpOpen, path); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> base_file =
      base_->NewRandomAccessFile(path);
  if (!base_file.ok()) return base_file.status();
  return std::make_unique<RandomAccessHandle>(this, *std::move(base_file), path,
                                              epoch_);
}

bool FaultInjectionEnv::FileExists(const std::string& path) {
  port::ReaderMutexLock crash(&crash_mu_);
  {
    port::MutexLock l(&mu_);
    if (!CheckOp(0, path).ok()) return false;
  }
  return base_->FileExists(path);
}

absl::StatusOr<std::vector<std::string>> FaultInjectionEnv::GetChildren(
    const std::string& dir) {
  port::ReaderMutexLock crash(&crash_mu_);
  {
    port::MutexLock l(&mu_);
    if (absl::Status s = CheckOp(0, dir); !s.ok()) return s;
  }
  return base_->GetChildren(dir);
}

absl::StatusOr<uint64_t> FaultInjectionEnv::GetFileSize(
    const std::string& path) {
  port::ReaderMutexLock crash(&crash_mu_);
  {
    port::MutexLock l(&mu_);
    if (absl::Status s = CheckOp(0, path); !s.ok()) return s;
  }
  return base_->GetFileSize(path);
}

absl::Status FaultInjectionEnv::DeleteFile(const std::string& path) {
  port::ReaderMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  if (absl::Status s = CheckOp(kOpDelete, path); !s.ok()) return s;
  const std::string norm = NormalizePath(path);
  const uint64_t file = TrackExisting(norm, path);
  if (file == 0) return base_->DeleteFile(path);  // the base reports why
  RecordDirChange(norm, path);
  if (absl::Status s = SaveBytesIfUndoable(file, path); !s.ok()) return s;
  if (absl::Status s = base_->DeleteFile(path); !s.ok()) return s;
  Unlink(norm);
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::RenameFile(const std::string& from,
                                           const std::string& to) {
  port::ReaderMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  if (absl::Status s = CheckOp(kOpRename, from, to); !s.ok()) return s;
  const std::string norm_from = NormalizePath(from);
  const std::string norm_to = NormalizePath(to);
  const uint64_t file = TrackExisting(norm_from, from);
  if (file == 0 || norm_from == norm_to) return base_->RenameFile(from, to);
  const uint64_t replaced = TrackExisting(norm_to, to);
  RecordDirChange(norm_from, from);
  RecordDirChange(norm_to, to);
  if (replaced != 0) {
    if (absl::Status s = SaveBytesIfUndoable(replaced, to); !s.ok()) return s;
  }
  if (absl::Status s = base_->RenameFile(from, to); !s.ok()) return s;
  if (replaced != 0) Unlink(norm_to);
  live_.erase(norm_from);
  live_[norm_to] = Binding{file, to};
  files_[file].live_path = norm_to;
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::TruncateFile(const std::string& path,
                                             uint64_t size) {
  port::ReaderMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  if (absl::Status s = CheckOp(kOpTruncate, path); !s.ok()) return s;
  const uint64_t file = TrackExisting(NormalizePath(path), path);
  if (absl::Status s = base_->TruncateFile(path, size); !s.ok()) return s;
  if (file != 0) ShrinkState(files_[file], size);
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::CreateDirIfMissing(const std::string& dir) {
  port::ReaderMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  if (absl::Status s = CheckOp(0, dir); !s.ok()) return s;
  // Only a directory this call creates is new: one already there (made by
  // the base directly, or before this Env existed) counts as durable.
  const bool existed = base_->FileExists(dir);
  if (absl::Status s = base_->CreateDirIfMissing(dir); !s.ok()) return s;
  if (!existed) {
    const std::string norm = NormalizePath(dir);
    new_dirs_[DirOf(norm)].emplace(norm, dir);
  }
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  port::ReaderMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  if (absl::Status s = CheckOp(kOpSyncDir, dir); !s.ok()) return s;
  if (absl::Status s = base_->SyncDir(dir); !s.ok()) return s;
  const std::string norm = NormalizePath(dir);
  new_dirs_.erase(norm);  // the directories created in it are durable now
  auto it = undo_.find(norm);
  if (it == undo_.end()) return absl::OkStatus();
  const std::map<std::string, Binding> entries = std::move(it->second);
  undo_.erase(it);
  ReleaseUndoRecords(entries);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileLock>> FaultInjectionEnv::LockFile(
    const std::string& path) {
  port::ReaderMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  if (absl::Status s = CheckOp(kOpOpen, path); !s.ok()) return s;
  const bool existed = base_->FileExists(path);
  absl::StatusOr<std::unique_ptr<FileLock>> base_lock = base_->LockFile(path);
  if (!base_lock.ok()) return base_lock.status();
  const std::string norm = NormalizePath(path);
  if (!existed && live_.count(norm) == 0 && base_->FileExists(path)) {
    // LockFile created the file: a new directory entry like any other.
    RecordDirChange(norm, path);
    AddFile(norm, path);
  }
  const uint64_t id = next_handle_++;
  auto handle = std::make_unique<LockHandle>(this, *std::move(base_lock), path,
                                             epoch_, id);
  locks_[id] = handle.get();
  return handle;
}

absl::Status FaultInjectionEnv::UnlockFile(std::unique_ptr<FileLock> lock) {
  auto* handle = dynamic_cast<LockHandle*>(lock.get());
  if (handle == nullptr) {
    return absl::InvalidArgumentError(
        "UnlockFile: not a lock taken through this FaultInjectionEnv");
  }
  absl::Status result;
  {
    port::ReaderMutexLock crash(&crash_mu_);
    port::MutexLock l(&mu_);
    if (handle->epoch() != epoch_) {
      result = StaleHandleError(handle->path());
    } else {
      // The caller gave the lock up: release it even when the call fails.
      result = CheckOp(0, handle->path());
      locks_.erase(handle->id());
      absl::Status s = handle->Release();
      if (result.ok()) result = s;
    }
  }
  lock.reset();  // outside the locks: ~LockHandle takes them again
  return result;
}

absl::Status FaultInjectionEnv::DeleteDir(const std::string& dir) {
  port::ReaderMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  if (absl::Status s = CheckOp(kOpDelete, dir); !s.ok()) return s;
  if (absl::Status s = base_->DeleteDir(dir); !s.ok()) return s;
  ForgetDeletedDirectory(NormalizePath(dir));
  return absl::OkStatus();
}

uint64_t FaultInjectionEnv::NowMicros() { return base_->NowMicros(); }

}  // namespace segwal
