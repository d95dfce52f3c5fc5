// FaultInjectionEnv, part 2 of 2: applying a power loss (SimulateCrash). This
// file owns what a crash does to the base file system, in the order the header
// states ("What a crash does"): detaching handles (step 1, defined beside the
// handles in fault_injection_env.cc), reverting, tearing or garbling the
// unsynced bytes of each file by CrashMode (step 2), undoing file entries not
// made durable by SyncDir (step 3), removing directories whose creation was not
// made durable (step 4), and the fresh start (step 5). The recording that
// feeds it (what is synced, which entries changed) is fault_injection_env.cc.
//
// Locking: SimulateCrash holds crash_mu_ exclusively (no call or handle of the
// Env runs meanwhile; every one holds crash_mu_ shared) and mu_ (the recorded
// state: files_, live_, undo_, new_dirs_, torn_sectors_) for the whole crash.
// Base I/O runs under both: nothing else can observe the base file system
// half-crashed through this Env.

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "env/fault_injection_env.h"
#include "env/fault_injection_internal.h"

namespace segwal {
namespace {

using fault_injection_internal::DirOf;
using fault_injection_internal::ReadAt;
using fault_injection_internal::ReadPrefix;

constexpr uint64_t kSectorSize = 512;

// Per-file crash randomness: a splitmix64 stream keyed by (seed, path) only, so
// one file's outcome does not depend on which other files exist.
class CrashRandom {
 public:
  CrashRandom(uint64_t seed, absl::string_view path) : state_(seed) {
    uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
    for (char c : path) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ULL;
    }
    state_ = Next() ^ h;
  }
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t Uniform(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

// Reads bytes [offset, offset + n) of `path` (fewer at end of file).
absl::StatusOr<std::string> ReadRange(Env* env, const std::string& path,
                                      uint64_t offset, uint64_t n) {
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> file =
      env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  return ReadAt(**file, offset, n);
}

// Writes `data` over `path` at `offset`, extending the file if needed.
absl::Status WriteAt(Env* env, const std::string& path, uint64_t offset,
                     absl::string_view data) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env->ReopenWritableFile(path, offset);
  if (!file.ok()) return file.status();
  absl::Status s = (*file)->Append(data);
  absl::Status c = (*file)->Close();
  return s.ok() ? c : s;
}

absl::Status AppendToFile(Env* env, const std::string& path,
                          absl::string_view data, bool truncate) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      truncate ? env->NewWritableFile(path) : env->NewAppendableFile(path);
  if (!file.ok()) return file.status();
  absl::Status s = (*file)->Append(data);
  absl::Status c = (*file)->Close();
  return s.ok() ? c : s;
}

// A run of unsynced bytes at a crash: what the file holds there now, and what
// reverting it puts back (the durable pre-image of an overwrite, or zeros past
// the durable size).
struct UnsyncedRange {
  uint64_t offset;
  std::string now;
  std::string reverted;
  bool changed = false;  // `now` was modified by the crash
};

// kTornSectors over `ranges` (disjoint, in offset order): each 512-byte sector
// holding unsynced bytes is kept, reverted or garbled, with one draw per
// sector, in place in `now`. Returns the end offset of the last kept sector's
// unsynced bytes, 0 if none was kept.
uint64_t TearSectors(std::vector<UnsyncedRange>& ranges, CrashRandom& rnd,
                     FaultInjectionEnv::TornSectorCounts& counts) {
  // The unsynced bytes of one sector: `n` bytes at `begin` of a range.
  struct Piece {
    UnsyncedRange* range;
    size_t begin;
    size_t n;
  };
  std::vector<Piece> pieces;
  uint64_t last_kept = 0;
  auto tear = [&] {
    std::string now, reverted;
    for (const Piece& p : pieces) {
      now.append(p.range->now, p.begin, p.n);
      reverted.append(p.range->reverted, p.begin, p.n);
    }
    std::string result;
    switch (rnd.Uniform(3)) {
      case 0: {
        ++counts.kept;
        const Piece& last = pieces.back();
        last_kept = last.range->offset + last.begin + last.n;
        return;
      }
      case 1:
        ++counts.reverted;
        result = std::move(reverted);
        break;
      default:
        // Garbage: neither what was written nor what reverting would give, so
        // a reader can never mistake it for either.
        ++counts.garbled;
        result.resize(now.size());
        for (char& c : result) c = static_cast<char>(rnd.Next() & 0xff);
        while (result == now || result == reverted) {
          result[0] = static_cast<char>(result[0] + 1);
        }
        break;
    }
    size_t at = 0;
    for (const Piece& p : pieces) {
      p.range->now.replace(p.begin, p.n, result, at, p.n);
      p.range->changed = true;
      at += p.n;
    }
  };
  uint64_t sector = UINT64_MAX;
  for (UnsyncedRange& range : ranges) {
    const uint64_t end = range.offset + range.now.size();
    for (uint64_t begin = range.offset; begin < end;) {
      const uint64_t this_sector = begin / kSectorSize * kSectorSize;
      const uint64_t piece_end = std::min(end, this_sector + kSectorSize);
      if (this_sector != sector) {
        if (!pieces.empty()) tear();
        pieces.clear();
        sector = this_sector;
      }
      pieces.push_back(Piece{&range, static_cast<size_t>(begin - range.offset),
                             static_cast<size_t>(piece_end - begin)});
      begin = piece_end;
    }
  }
  if (!pieces.empty()) tear();
  return last_kept;
}

// Removes `path` on `env` and, if it is a directory, everything under it
// (children in name order). A path already gone is fine. Each entry is first
// tried as a file, so a symbolic link is removed, never followed.
absl::Status RemoveTree(Env* env, const std::string& path) {
  if (!env->FileExists(path)) return absl::OkStatus();
  if (env->DeleteFile(path).ok()) return absl::OkStatus();
  absl::StatusOr<std::vector<std::string>> children = env->GetChildren(path);
  if (!children.ok()) return children.status();
  std::sort(children->begin(), children->end());
  for (const std::string& name : *children) {
    if (absl::Status s = RemoveTree(env, path + "/" + name); !s.ok()) return s;
  }
  return env->DeleteDir(path);
}

}  // namespace

const char* CrashModeName(CrashMode mode) {
  switch (mode) {
    case CrashMode::kDropUnsynced:
      return "kDropUnsynced";
    case CrashMode::kTornTail:
      return "kTornTail";
    case CrashMode::kTornSectors:
      return "kTornSectors";
  }
  return "?";
}

absl::Status FaultInjectionEnv::ApplyCrashMode(CrashMode mode, uint64_t seed,
                                               const std::string& norm,
                                               const Binding& binding,
                                               const FileState& state) {
  const std::string& raw = binding.raw_path;
  absl::StatusOr<uint64_t> actual = base_->GetFileSize(raw);
  if (absl::IsNotFound(actual.status())) return absl::OkStatus();
  if (!actual.ok()) return actual.status();
  // Bytes the base holds beyond what this Env saw appended are unsynced too.
  const uint64_t size = *actual;
  const uint64_t synced = std::min(state.synced, size);
  // The unsynced overwrites below `synced`, in offset order.
  std::vector<std::pair<uint64_t, absl::string_view>> overwritten;
  uint64_t overwritten_bytes = 0;
  for (const auto& [offset, preimage] : state.preimages) {
    if (offset >= synced) break;
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>(preimage.size(), synced - offset));
    overwritten.emplace_back(offset, absl::string_view(preimage).substr(0, n));
    overwritten_bytes += n;
  }
  if (synced == size && overwritten.empty()) return absl::OkStatus();
  CrashRandom rnd(seed, norm);
  switch (mode) {
    case CrashMode::kDropUnsynced:
      for (const auto& [offset, preimage] : overwritten) {
        if (absl::Status s = WriteAt(base_, raw, offset, preimage); !s.ok()) {
          return s;
        }
      }
      if (synced == size) return absl::OkStatus();
      return base_->TruncateFile(raw, synced);
    case CrashMode::kTornTail: {
      // How many unsynced bytes survive, counted in file-offset order.
      uint64_t keep = rnd.Uniform(overwritten_bytes + (size - synced) + 1);
      for (const auto& [offset, preimage] : overwritten) {
        const uint64_t kept = std::min<uint64_t>(keep, preimage.size());
        keep -= kept;
        if (kept == preimage.size()) continue;
        absl::Status s = WriteAt(base_, raw, offset + kept,
                                 preimage.substr(static_cast<size_t>(kept)));
        if (!s.ok()) return s;
      }
      if (synced + keep == size) return absl::OkStatus();
      return base_->TruncateFile(raw, synced + keep);
    }
    case CrashMode::kTornSectors: {
      std::vector<UnsyncedRange> ranges;
      for (const auto& [offset, preimage] : overwritten) {
        absl::StatusOr<std::string> now =
            ReadRange(base_, raw, offset, preimage.size());
        if (!now.ok()) return now.status();
        if (now->size() != preimage.size()) {
          return absl::InternalError(
              absl::StrCat("FaultInjectionEnv: short read of ", raw, " at ",
                           offset, " while tearing sectors"));
        }
        ranges.push_back(
            UnsyncedRange{offset, *std::move(now), std::string(preimage)});
      }
      const bool has_tail = synced < size;
      if (has_tail) {
        absl::StatusOr<std::string> tail =
            ReadRange(base_, raw, synced, size - synced);
        if (!tail.ok()) return tail.status();
        const size_t n = tail->size();
        ranges.push_back(
            UnsyncedRange{synced, *std::move(tail), std::string(n, '\0')});
      }
      const uint64_t last_kept = TearSectors(ranges, rnd, torn_sectors_);
      const bool cut = rnd.Uniform(2) == 0;
      for (size_t i = 0; i + (has_tail ? 1 : 0) < ranges.size(); ++i) {
        if (!ranges[i].changed) continue;
        absl::Status s = WriteAt(base_, raw, ranges[i].offset, ranges[i].now);
        if (!s.ok()) return s;
      }
      if (!has_tail) return absl::OkStatus();
      // Cut right after the last kept sector, never below the durable size.
      std::string& tail = ranges.back().now;
      if (cut) tail.resize(std::max(last_kept, synced) - synced);
      // Rewrite only the tail: bytes below `synced` were patched in place.
      if (absl::Status s = base_->TruncateFile(raw, synced); !s.ok()) return s;
      return AppendToFile(base_, raw, tail, /*truncate=*/false);
    }
  }
  return absl::InternalError("unknown CrashMode");
}

bool FaultInjectionEnv::InsideLostDirectory(const std::string& norm) const {
  if (new_dirs_.empty()) return false;
  for (std::string dir = DirOf(norm);; dir = DirOf(dir)) {
    auto parent = new_dirs_.find(DirOf(dir));
    if (parent != new_dirs_.end() && parent->second.count(dir) != 0) {
      return true;
    }
    if (dir == "/" || dir == ".") return false;
  }
}

absl::Status FaultInjectionEnv::UndoFileEntries() {
  absl::Status result;
  struct Change {
    Binding durable;     // file 0: the name must not exist
    uint64_t live_file;  // 0: the name does not exist now
    std::string live_raw;
    bool restore;  // bring the durable binding back (not in a lost directory)
  };
  std::vector<Change> changes;  // in (directory, path) order
  for (const auto& [dir, entries] : undo_) {
    for (const auto& [norm, durable] : entries) {
      auto it = live_.find(norm);
      const uint64_t live_file = it == live_.end() ? 0 : it->second.file;
      if (live_file == durable.file) continue;
      changes.push_back(Change{
          durable, live_file, it == live_.end() ? "" : it->second.raw_path,
          durable.file != 0 && !InsideLostDirectory(norm)});
    }
  }
  // Contents of the files that come back, read before any name is removed.
  std::map<uint64_t, std::string> contents;
  for (const Change& change : changes) {
    const uint64_t file = change.durable.file;
    if (!change.restore || contents.count(file) != 0) continue;
    const FileState& state = files_.at(file);
    if (!state.live_path.empty()) {
      absl::StatusOr<std::string> bytes =
          ReadPrefix(base_, live_.at(state.live_path).raw_path, UINT64_MAX);
      if (!bytes.ok()) {
        result.Update(bytes.status());
        continue;
      }
      contents[file] = *std::move(bytes);
    } else if (state.has_saved_bytes) {
      contents[file] = state.saved_bytes;
    } else {
      result.Update(absl::InternalError(absl::StrCat(
          "FaultInjectionEnv lost the bytes of ", change.durable.raw_path)));
    }
  }
  for (const Change& change : changes) {
    if (change.live_file != 0)
      result.Update(base_->DeleteFile(change.live_raw));
  }
  for (const Change& change : changes) {
    const uint64_t file = change.durable.file;
    if (!change.restore || contents.count(file) == 0) continue;
    const std::string& raw = change.durable.raw_path;
    const size_t slash = raw.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      result.Update(base_->CreateDirIfMissing(raw.substr(0, slash)));
    }
    result.Update(AppendToFile(base_, raw, contents[file], /*truncate=*/true));
  }
  return result;
}

absl::Status FaultInjectionEnv::RemoveLostDirectories() {
  absl::Status result;
  for (const auto& [parent, dirs] : new_dirs_) {
    for (const auto& [norm, raw] : dirs) {
      // An outer lost directory takes this one with it.
      if (InsideLostDirectory(norm)) continue;
      result.Update(RemoveTree(base_, raw));
    }
  }
  return result;
}

absl::Status FaultInjectionEnv::SimulateCrash(CrashMode mode, uint64_t seed) {
  port::WriterMutexLock crash(&crash_mu_);
  port::MutexLock l(&mu_);
  absl::Status result;

  // 1. Every pre-crash handle goes stale; its buffered bytes land first.
  DetachHandlesForCrash();
  ++crash_count_;
  torn_sectors_ = TornSectorCounts();

  // 2. File contents, in path order (files in lost directories too: one
  // renamed out of there may come back elsewhere in step 3).
  for (const auto& [norm, binding] : live_) {
    result.Update(
        ApplyCrashMode(mode, seed, norm, binding, files_.at(binding.file)));
  }

  // 3. File entries: every changed name goes back to its durable binding.
  result.Update(UndoFileEntries());

  // 4. Directories whose entry in their parent was never made durable.
  result.Update(RemoveLostDirectories());

  // 5. A fresh start: everything on the file system is now durable.
  files_.clear();
  live_.clear();
  undo_.clear();
  new_dirs_.clear();
  active_ = true;
  injections_.clear();
  return result;
}

}  // namespace segwal
