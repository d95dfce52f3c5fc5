// KvStore::Impl: the map, the WAL, and checkpoints.
//
// Locks, in the order they may be taken:
//   ckpt_mu_  checkpoint bookkeeping: whether one runs, the background thread,
//             the checkpoint files believed good, the last outcome.
//   mu_       (SharedMutex) the map and everything that must move with it: the
//             last applied LSN, the LSN of the last removal, byte counters.
//             Writers hold it exclusively across validation, WAL Append and
//             apply, so LSN order is apply order; readers share it.
// Never held while waiting for I/O: WAL Sync, checkpoint writing and truncation
// happen with no lock held (Append only buffers; segwal's own locks order it).

#include "kv/kv_store.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "env/env.h"
#include "kv/checkpoint_file.h"
#include "kv/record_codec.h"
#include "port/mutex.h"

namespace segwal {
namespace kv {
namespace {

uint64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}


// Record framing overhead counted toward checkpoint_every_bytes (a WAL frame
// header; the exact figure does not matter, only that the count grows).
constexpr uint64_t kRecordOverhead = 40;

}  // namespace

bool ParseRedisInt64(absl::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 20 || s[0] == '+') return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (ec != std::errc() || ptr != s.data() + s.size()) return false;
  // Refuse forms Redis refuses: leading zeros ("007", "-0").
  const size_t digits = s[0] == '-' ? 1 : 0;
  if (s.size() > digits + 1 && s[digits] == '0') return false;
  if (s == "-0") return false;
  return true;
}

class KvStore::Impl {
 public:
  Impl(const KvStoreOptions& options, Env* env)
      : options_(options),
        env_(env),
        ckpt_dir_(options.dir + "/checkpoints") {}

  ~Impl() {
    WaitForBackgroundCheckpoint();
    // wal_ is destroyed after: buffered records reach the OS (not synced;
    // acknowledged ones were synced already).
  }

  absl::Status Open();

  absl::StatusOr<WriteResult> Submit(const Mutation& m)
      ABSL_LOCKS_EXCLUDED(mu_, ckpt_mu_);
  absl::Status WaitDurable(uint64_t lsn);

  ReadResult Lookup(absl::string_view key) const ABSL_LOCKS_EXCLUDED(mu_);
  ReadResult MultiLookup(const std::vector<absl::string_view>& keys) const
      ABSL_LOCKS_EXCLUDED(mu_);
  ReadResult Exists(const std::vector<absl::string_view>& keys) const
      ABSL_LOCKS_EXCLUDED(mu_);
  ReadResult DbSize() const ABSL_LOCKS_EXCLUDED(mu_);
  ReadResult Keys(absl::string_view pattern) const ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<CheckpointInfo> Checkpoint() ABSL_LOCKS_EXCLUDED(ckpt_mu_);
  absl::Status StartBackgroundCheckpoint() ABSL_LOCKS_EXCLUDED(ckpt_mu_);
  void WaitForBackgroundCheckpoint() ABSL_LOCKS_EXCLUDED(ckpt_mu_);

  uint64_t durable_lsn() const { return wal_->durable_lsn(); }
  uint64_t last_applied_lsn() const ABSL_LOCKS_EXCLUDED(mu_) {
    ReaderMutexLock l(&mu_);
    return last_applied_lsn_;
  }
  KvStats GetStats() const ABSL_LOCKS_EXCLUDED(mu_, ckpt_mu_);
  const KvRecoveryReport& recovery_report() const { return report_; }
  const SegmentedWal& wal() const { return *wal_; }

 private:
  using MutexLock = port::MutexLock;
  using ReaderMutexLock = port::ReaderMutexLock;
  using WriterMutexLock = port::WriterMutexLock;

  absl::Status Validate(const Mutation& m) const;
  // Applies a decoded or validated mutation to the map at `lsn`.
  void ApplyLocked(KvOp op, const std::vector<absl::string_view>& keys,
                   const std::vector<absl::string_view>& values,
                   int64_t incr_result, uint64_t lsn, int64_t* removed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReplayLog(uint64_t from_lsn) ABSL_LOCKS_EXCLUDED(mu_);
  // REQUIRES: the caller owns the checkpoint slot (checkpoint_running_).
  absl::StatusOr<CheckpointInfo> DoCheckpoint() ABSL_LOCKS_EXCLUDED(mu_, ckpt_mu_);
  void AcquireCheckpointSlot() ABSL_LOCKS_EXCLUDED(ckpt_mu_);
  void ReleaseCheckpointSlot(const absl::StatusOr<CheckpointInfo>& result,
                             bool background) ABSL_LOCKS_EXCLUDED(ckpt_mu_);
  void MaybeStartAutoCheckpoint() ABSL_LOCKS_EXCLUDED(ckpt_mu_);

  const KvStoreOptions options_;
  Env* const env_;
  const std::string ckpt_dir_;
  std::unique_ptr<SegmentedWal> wal_;  // set by Open, then never replaced
  KvRecoveryReport report_;            // written by Open only

  mutable port::SharedMutex mu_;
  KvMap map_ ABSL_GUARDED_BY(mu_);
  uint64_t last_applied_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  // LSN of the newest record that removed keys (DEL, FLUSHALL): a read that
  // finds no key depends on it.
  uint64_t last_removal_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_since_checkpoint_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t writes_ ABSL_GUARDED_BY(mu_) = 0;
  // While a checkpoint copies the map in chunks (copying_), every change is
  // also recorded here, in order, to be replayed onto the copy at the end.
  struct Delta {
    enum Kind { kPut, kErase, kClear } kind;
    std::string key;
    std::shared_ptr<const std::string> value;
  };
  bool copying_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Delta> deltas_ ABSL_GUARDED_BY(mu_);
  // Set once an automatic checkpoint was asked for, until it starts.
  std::atomic<bool> auto_checkpoint_wanted_{false};

  mutable port::Mutex ckpt_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  port::CondVar ckpt_cv_;
  bool checkpoint_running_ ABSL_GUARDED_BY(ckpt_mu_) = false;
  std::thread background_ ABSL_GUARDED_BY(ckpt_mu_);
  // LSNs of the checkpoint files on disk believed good, ascending. The log is
  // kept from the second newest one's LSN + 1.
  std::vector<uint64_t> checkpoints_ ABSL_GUARDED_BY(ckpt_mu_);
  uint64_t checkpoints_taken_ ABSL_GUARDED_BY(ckpt_mu_) = 0;
  std::optional<CheckpointInfo> last_checkpoint_ ABSL_GUARDED_BY(ckpt_mu_);
  absl::Status last_checkpoint_status_ ABSL_GUARDED_BY(ckpt_mu_);
};

// ---------------------------------------------------------------- Open

absl::Status KvStore::Impl::Open() {
  if (options_.dir.empty()) {
    return absl::InvalidArgumentError("KvStoreOptions::dir is empty");
  }
  // Each directory created here is durable in its parent before anything is
  // written in it (docs/DURABILITY.md, section 1, `Open`; section 5).
  absl::Status s = CreateDirsDurably(env_, options_.dir);
  if (s.ok()) s = CreateDirsDurably(env_, ckpt_dir_);
  if (!s.ok()) return s;

  // Every checkpoint name on disk, newest first; temporary ones are leftovers
  // of a checkpoint that never became durable.
  absl::StatusOr<std::vector<std::string>> children = env_->GetChildren(ckpt_dir_);
  if (!children.ok()) return children.status();
  std::vector<uint64_t> found;
  std::vector<std::string> leftovers;
  for (const std::string& name : *children) {
    uint64_t lsn;
    if (ParseCheckpointFileName(name, &lsn)) {
      found.push_back(lsn);
    } else if (IsTemporaryCheckpointName(name)) {
      leftovers.push_back(ckpt_dir_ + "/" + name);
    }
  }
  std::sort(found.rbegin(), found.rend());

  SegmentedWalOptions wal_options = options_.wal;
  wal_options.wal_dir = options_.dir + "/wal";
  wal_options.env = env_;
  absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
      SegmentedWal::Open(wal_options);
  if (!wal.ok()) return wal.status();
  wal_ = std::move(*wal);

  const uint64_t next_lsn = wal_->next_lsn();
  uint64_t floor = wal_->recovery_report().first_lsn;
  if (floor == 0) floor = next_lsn;  // an empty log
  report_.log_first_lsn = floor;

  // The newest checkpoint that reads back whole.
  const uint64_t t0 = NowMicros();
  uint64_t base_lsn = 0;
  std::string base_path;
  {
    WriterMutexLock l(&mu_);
    for (uint64_t lsn : found) {
      const std::string path = ckpt_dir_ + "/" + CheckpointFileName(lsn);
      absl::StatusOr<LoadedCheckpoint> loaded = LoadCheckpoint(env_, path, &map_);
      if (!loaded.ok()) {
        report_.rejected_checkpoints.push_back(
            std::string(loaded.status().message()));
        map_.clear();
        continue;
      }
      if (loaded->lsn != lsn) {
        report_.rejected_checkpoints.push_back(absl::StrCat(
            path, ": its header says LSN ", loaded->lsn, ", its name ", lsn));
        map_.clear();
        continue;
      }
      base_lsn = lsn;
      base_path = path;
      report_.checkpoint_keys = loaded->keys;
      break;
    }
  }
  report_.checkpoint_load_micros = NowMicros() - t0;
  report_.checkpoint_path = base_path;
  report_.checkpoint_lsn = base_lsn;

  auto rejected = [&]() {
    std::string out;
    for (const std::string& r : report_.rejected_checkpoints) {
      absl::StrAppend(&out, "; rejected ", r);
    }
    return out;
  };
  const std::string& wal_dir = wal_->wal_dir();
  if (base_lsn + 1 < floor) {
    return absl::DataLossError(absl::StrCat(
        base_path.empty() ? std::string("no usable checkpoint in ") + ckpt_dir_
                          : "checkpoint " + base_path + " covers LSN " +
                                std::to_string(base_lsn),
        ", but the log in ", wal_dir, " starts at LSN ", floor,
        ": records ", base_lsn + 1, " to ", floor - 1,
        " are in neither (nothing was deleted)", rejected()));
  }
  if (base_lsn >= next_lsn) {
    return absl::DataLossError(absl::StrCat(
        "checkpoint ", base_path, " covers LSN ", base_lsn, ", but the log in ",
        wal_dir, " ends at LSN ", next_lsn - 1,
        ": the log lost records the checkpoint holds (nothing was deleted)"));
  }
  {
    MutexLock l(&ckpt_mu_);
    // Older names are kept for pruning; only the base was read back.
    for (auto it = found.rbegin(); it != found.rend(); ++it) {
      if (*it <= base_lsn) checkpoints_.push_back(*it);
    }
  }

  const uint64_t t1 = NowMicros();
  s = ReplayLog(base_lsn + 1);
  report_.log_replay_micros = NowMicros() - t1;
  if (!s.ok()) return s;
  {
    ReaderMutexLock l(&mu_);
    report_.last_lsn = last_applied_lsn_;
  }
  for (const std::string& path : leftovers) {
    s = env_->DeleteFile(path);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status KvStore::Impl::ReplayLog(uint64_t from_lsn) {
  WriterMutexLock l(&mu_);
  last_applied_lsn_ = from_lsn - 1;
  if (from_lsn >= wal_->next_lsn()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<WalIterator>> it = wal_->NewIterator(from_lsn);
  if (!it.ok()) return it.status();
  for (; (*it)->Valid(); (*it)->Next()) {
    const WalRecord& rec = (*it)->record();
    absl::StatusOr<DecodedRecord> r = DecodeRecord(rec.record_type, rec.payload);
    if (!r.ok()) {
      return absl::DataLossError(absl::StrCat(
          wal_->wal_dir(), ": LSN ", rec.lsn, ": ", r.status().message()));
    }
    if (r->op == KvOp::kIncrBy) {
      // The record carries the result; check that it follows from the state,
      // so a log that does not continue this checkpoint is caught.
      int64_t before = 0;
      auto e = map_.find(r->keys[0]);
      if (e != map_.end() && !ParseRedisInt64(*e->second.value, &before)) {
        return absl::DataLossError(absl::StrCat(
            wal_->wal_dir(), ": LSN ", rec.lsn, ": INCRBY of a key whose value "
            "is not an integer: the log does not continue the checkpoint"));
      }
      int64_t expect;
      if (__builtin_add_overflow(before, r->delta, &expect) ||
          expect != r->result) {
        return absl::DataLossError(absl::StrCat(
            wal_->wal_dir(), ": LSN ", rec.lsn, ": INCRBY ", r->delta, " of ",
            before, " recorded ", r->result,
            ": the log does not continue the checkpoint"));
      }
    }
    int64_t removed;
    ApplyLocked(r->op, r->keys, r->values, r->result, rec.lsn, &removed);
    bytes_since_checkpoint_ += rec.payload.size() + kRecordOverhead;
    ++report_.log_records_replayed;
  }
  if (!(*it)->status().ok()) return (*it)->status();
  return absl::OkStatus();
}

// ---------------------------------------------------------------- writes

absl::Status KvStore::Impl::Validate(const Mutation& m) const {
  size_t want_keys_min = 1, want_keys_max = 1, want_values = 0;
  switch (m.op) {
    case KvOp::kSet:
      want_values = 1;
      break;
    case KvOp::kIncrBy:
      break;
    case KvOp::kDel:
      want_keys_max = SIZE_MAX;
      break;
    case KvOp::kMSet:
      want_keys_max = SIZE_MAX;
      want_values = m.keys.size();
      break;
    case KvOp::kFlushAll:
      want_keys_min = want_keys_max = 0;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown mutation op ", static_cast<uint32_t>(m.op)));
  }
  if (m.keys.size() < want_keys_min || m.keys.size() > want_keys_max ||
      m.values.size() != want_values) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mutation op ", static_cast<uint32_t>(m.op), " with ", m.keys.size(),
        " keys and ", m.values.size(), " values"));
  }
  for (absl::string_view k : m.keys) {
    if (k.size() > options_.max_key_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "key of ", k.size(), " bytes is larger than max_key_size (",
          options_.max_key_size, ")"));
    }
  }
  for (absl::string_view v : m.values) {
    if (v.size() > options_.max_value_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "value of ", v.size(), " bytes is larger than max_value_size (",
          options_.max_value_size, ")"));
    }
  }
  return absl::OkStatus();
}

void KvStore::Impl::ApplyLocked(KvOp op,
                                const std::vector<absl::string_view>& keys,
                                const std::vector<absl::string_view>& values,
                                int64_t incr_result, uint64_t lsn,
                                int64_t* removed) {
  *removed = 0;
  auto put = [&](absl::string_view key, std::shared_ptr<const std::string> v)
                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (copying_) deltas_.push_back({Delta::kPut, std::string(key), v});
    auto it = map_.find(key);
    if (it == map_.end()) it = map_.emplace(std::string(key), KvEntry{}).first;
    it->second.value = std::move(v);
    it->second.lsn = lsn;
  };
  switch (op) {
    case KvOp::kSet:
    case KvOp::kMSet:
      for (size_t i = 0; i < keys.size(); ++i) {
        put(keys[i], std::make_shared<const std::string>(values[i]));
      }
      break;
    case KvOp::kIncrBy:
      put(keys[0], std::make_shared<const std::string>(std::to_string(incr_result)));
      break;
    case KvOp::kDel:
      for (absl::string_view k : keys) {
        if (copying_) deltas_.push_back({Delta::kErase, std::string(k), nullptr});
        *removed += map_.erase(k);
      }
      last_removal_lsn_ = lsn;
      break;
    case KvOp::kFlushAll:
      if (copying_) deltas_.push_back({Delta::kClear, "", nullptr});
      *removed = map_.size();
      map_.clear();
      last_removal_lsn_ = lsn;
      break;
  }
  last_applied_lsn_ = lsn;
}

absl::StatusOr<WriteResult> KvStore::Impl::Submit(const Mutation& m) {
  absl::Status s = Validate(m);
  if (!s.ok()) return s;
  WriteResult result;
  bool want_checkpoint = false;
  {
    WriterMutexLock l(&mu_);
    int64_t incr_result = 0;
    if (m.op == KvOp::kIncrBy) {
      int64_t before = 0;
      auto e = map_.find(m.keys[0]);
      if (e != map_.end() && !ParseRedisInt64(*e->second.value, &before)) {
        return absl::FailedPreconditionError(
            "value is not an integer or out of range");
      }
      if (__builtin_add_overflow(before, m.delta, &incr_result)) {
        return absl::OutOfRangeError("increment or decrement would overflow");
      }
    }
    const std::string payload = EncodeRecord(m, incr_result);
    absl::StatusOr<uint64_t> lsn =
        wal_->Append(static_cast<uint32_t>(m.op), 0, 0, 0, payload);
    if (!lsn.ok()) return lsn.status();
    // The record has its LSN (even if the WAL was poisoned while writing it:
    // then WaitDurable fails and nobody is told it succeeded).
    ApplyLocked(m.op, m.keys, m.values, incr_result, *lsn, &result.integer);
    if (m.op == KvOp::kIncrBy) result.integer = incr_result;
    result.lsn = *lsn;
    ++writes_;
    bytes_since_checkpoint_ += payload.size() + kRecordOverhead;
    if (options_.checkpoint_every_bytes > 0 &&
        bytes_since_checkpoint_ >= options_.checkpoint_every_bytes &&
        !auto_checkpoint_wanted_.exchange(true)) {
      want_checkpoint = true;
    }
  }
  if (want_checkpoint) MaybeStartAutoCheckpoint();
  return result;
}

absl::Status KvStore::Impl::WaitDurable(uint64_t lsn) {
  if (wal_->durable_lsn() >= lsn) return absl::OkStatus();
  absl::Status s = wal_->Sync();
  if (!s.ok()) return s;
  if (wal_->durable_lsn() < lsn) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WaitDurable(", lsn, "): no such record (next LSN ", wal_->next_lsn(), ")"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- reads

ReadResult KvStore::Impl::Lookup(absl::string_view key) const {
  return MultiLookup({key});
}

ReadResult KvStore::Impl::MultiLookup(
    const std::vector<absl::string_view>& keys) const {
  ReadResult r;
  r.values.reserve(keys.size());
  ReaderMutexLock l(&mu_);
  for (absl::string_view k : keys) {
    auto e = map_.find(k);
    if (e == map_.end()) {
      r.values.emplace_back(std::nullopt);
      r.depends_on_lsn = std::max(r.depends_on_lsn, last_removal_lsn_);
    } else {
      r.values.emplace_back(*e->second.value);
      r.depends_on_lsn = std::max(r.depends_on_lsn, e->second.lsn);
    }
  }
  return r;
}

ReadResult KvStore::Impl::Exists(
    const std::vector<absl::string_view>& keys) const {
  ReadResult r;
  ReaderMutexLock l(&mu_);
  for (absl::string_view k : keys) {
    auto e = map_.find(k);
    if (e == map_.end()) {
      r.depends_on_lsn = std::max(r.depends_on_lsn, last_removal_lsn_);
    } else {
      ++r.integer;
      r.depends_on_lsn = std::max(r.depends_on_lsn, e->second.lsn);
    }
  }
  return r;
}

ReadResult KvStore::Impl::DbSize() const {
  ReadResult r;
  ReaderMutexLock l(&mu_);
  r.integer = static_cast<int64_t>(map_.size());
  r.depends_on_lsn = last_applied_lsn_;  // any write may have changed it
  return r;
}

ReadResult KvStore::Impl::Keys(absl::string_view pattern) const {
  ReadResult r;
  ReaderMutexLock l(&mu_);
  for (const auto& [key, entry] : map_) {
    if (GlobMatch(pattern, key)) r.keys.push_back(key);
  }
  r.depends_on_lsn = last_applied_lsn_;
  return r;
}

// ---------------------------------------------------------------- checkpoints

void KvStore::Impl::AcquireCheckpointSlot() {
  MutexLock l(&ckpt_mu_);
  while (checkpoint_running_) ckpt_cv_.Wait(&ckpt_mu_);
  checkpoint_running_ = true;
}

void KvStore::Impl::ReleaseCheckpointSlot(
    const absl::StatusOr<CheckpointInfo>& result, bool background) {
  MutexLock l(&ckpt_mu_);
  checkpoint_running_ = false;
  if (result.ok()) {
    last_checkpoint_ = *result;
  }
  if (background) last_checkpoint_status_ = result.status();
  ckpt_cv_.SignalAll();
}

absl::StatusOr<CheckpointInfo> KvStore::Impl::Checkpoint() {
  AcquireCheckpointSlot();
  absl::StatusOr<CheckpointInfo> r = DoCheckpoint();
  ReleaseCheckpointSlot(r, /*background=*/false);
  return r;
}

absl::Status KvStore::Impl::StartBackgroundCheckpoint() {
  MutexLock l(&ckpt_mu_);
  if (checkpoint_running_) {
    return absl::FailedPreconditionError("a checkpoint is already in progress");
  }
  checkpoint_running_ = true;
  if (background_.joinable()) background_.join();  // finished: it released the slot
  background_ = std::thread([this] {
    absl::StatusOr<CheckpointInfo> r = DoCheckpoint();
    ReleaseCheckpointSlot(r, /*background=*/true);
  });
  return absl::OkStatus();
}

void KvStore::Impl::MaybeStartAutoCheckpoint() {
  // A checkpoint already running resets nothing: ask again after it.
  if (!StartBackgroundCheckpoint().ok()) auto_checkpoint_wanted_.store(false);
}

void KvStore::Impl::WaitForBackgroundCheckpoint() {
  std::thread t;
  {
    MutexLock l(&ckpt_mu_);
    while (checkpoint_running_) ckpt_cv_.Wait(&ckpt_mu_);
    t = std::move(background_);
  }
  if (t.joinable()) t.join();
}

absl::StatusOr<CheckpointInfo> KvStore::Impl::DoCheckpoint() {
  CheckpointInfo info;
  const uint64_t t0 = NowMicros();
  // Copy the map's handles (keys and value pointers, no value bytes) in
  // chunks, holding the lock for one chunk at a time; changes made between
  // chunks are recorded and replayed onto the copy under the lock at the end,
  // so the copy is the state at one LSN. Writers wait at most one chunk (or
  // the replay of the changes made meanwhile): info.pause_micros.
  constexpr size_t kCopyChunk = 4096;
  KvMap snapshot;
  {
    WriterMutexLock l(&mu_);
    copying_ = true;
    deltas_.clear();
  }
  std::string last_key;
  for (bool first = true, done = false; !done; first = false) {
    ReaderMutexLock l(&mu_);
    const uint64_t c0 = NowMicros();
    auto it = first ? map_.begin() : map_.upper_bound(last_key);
    for (size_t n = 0; n < kCopyChunk && it != map_.end(); ++n, ++it) {
      snapshot.insert(snapshot.end(), *it);
    }
    done = it == map_.end();
    if (!snapshot.empty()) last_key = snapshot.rbegin()->first;
    info.pause_micros = std::max(info.pause_micros, NowMicros() - c0);
  }
  // Replay the recorded changes onto the copy without the lock while many
  // remain, then the last few under it.
  auto replay = [&snapshot](std::vector<Delta>* deltas) {
    for (Delta& d : *deltas) {
      switch (d.kind) {
        case Delta::kPut:
          snapshot[d.key] = KvEntry{std::move(d.value), 0};
          break;
        case Delta::kErase:
          snapshot.erase(d.key);
          break;
        case Delta::kClear:
          snapshot.clear();
          break;
      }
    }
    deltas->clear();
  };
  constexpr size_t kReplayUnderLock = 1024;
  std::vector<Delta> pending;
  for (int round = 0; round < 16; ++round) {  // bounded, should writers outrun it
    {
      WriterMutexLock l(&mu_);
      if (deltas_.size() > kReplayUnderLock) {
        pending.swap(deltas_);
      }
    }
    if (pending.empty()) break;
    replay(&pending);
  }
  {
    WriterMutexLock l(&mu_);
    const uint64_t c0 = NowMicros();
    replay(&deltas_);
    deltas_.shrink_to_fit();
    copying_ = false;
    info.lsn = last_applied_lsn_;
    bytes_since_checkpoint_ = 0;
    auto_checkpoint_wanted_.store(false);
    info.pause_micros = std::max(info.pause_micros, NowMicros() - c0);
  }
  info.keys = snapshot.size();
  info.path = ckpt_dir_ + "/" + CheckpointFileName(info.lsn);
  {
    MutexLock l(&ckpt_mu_);
    if (!checkpoints_.empty() && checkpoints_.back() == info.lsn) {
      // Nothing was written since the newest checkpoint: it is this one.
      info.bytes = last_checkpoint_ ? last_checkpoint_->bytes : 0;
      info.total_micros = NowMicros() - t0;
      return info;
    }
  }
  // The checkpoint must never hold a record the log could still lose.
  absl::Status s = WaitDurable(info.lsn);
  if (!s.ok()) return s;
  absl::StatusOr<uint64_t> bytes =
      WriteCheckpoint(env_, ckpt_dir_, info.lsn, snapshot);
  if (!bytes.ok()) return bytes.status();
  info.bytes = *bytes;
  snapshot.clear();

  // Keep the two newest; the log stays from the older of them.
  std::vector<uint64_t> drop;
  uint64_t keep_log_from = 0;
  {
    MutexLock l(&ckpt_mu_);
    checkpoints_.push_back(info.lsn);
    while (checkpoints_.size() > 2) {
      drop.push_back(checkpoints_.front());
      checkpoints_.erase(checkpoints_.begin());
    }
    if (checkpoints_.size() == 2) keep_log_from = checkpoints_.front() + 1;
    ++checkpoints_taken_;
  }
  for (uint64_t lsn : drop) {
    s = env_->DeleteFile(ckpt_dir_ + "/" + CheckpointFileName(lsn));
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  if (keep_log_from > 1) {
    absl::StatusOr<TruncateResult> t = wal_->TruncateBefore(keep_log_from);
    if (!t.ok()) return t.status();
    info.log_segments_deleted = t->segments_deleted;
  }
  info.total_micros = NowMicros() - t0;
  return info;
}

KvStats KvStore::Impl::GetStats() const {
  KvStats st;
  {
    MutexLock l(&ckpt_mu_);
    st.checkpoints = checkpoints_taken_;
    st.checkpoint_in_progress = checkpoint_running_;
    st.last_checkpoint = last_checkpoint_;
    st.last_checkpoint_status = last_checkpoint_status_;
  }
  {
    ReaderMutexLock l(&mu_);
    st.keys = map_.size();
    st.last_applied_lsn = last_applied_lsn_;
    st.writes = writes_;
    st.bytes_since_checkpoint = bytes_since_checkpoint_;
  }
  st.durable_lsn = wal_->durable_lsn();
  st.poisoned = wal_->poisoned_status();
  return st;
}

// ---------------------------------------------------------------- KvStore

KvStore::KvStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvStore::~KvStore() = default;

absl::StatusOr<std::unique_ptr<KvStore>> KvStore::Open(
    const KvStoreOptions& options) {
  Env* env = options.env != nullptr ? options.env : Env::Default();
  auto impl = std::make_unique<Impl>(options, env);
  absl::Status s = impl->Open();
  if (!s.ok()) return s;
  return std::unique_ptr<KvStore>(new KvStore(std::move(impl)));
}

absl::StatusOr<WriteResult> KvStore::Submit(const Mutation& m) {
  return impl_->Submit(m);
}
absl::Status KvStore::WaitDurable(uint64_t lsn) {
  return impl_->WaitDurable(lsn);
}
absl::StatusOr<WriteResult> KvStore::Write(const Mutation& m) {
  absl::StatusOr<WriteResult> r = impl_->Submit(m);
  if (!r.ok()) return r;
  absl::Status s = impl_->WaitDurable(r->lsn);
  if (!s.ok()) return s;
  return r;
}
absl::Status KvStore::Set(absl::string_view key, absl::string_view value) {
  Mutation m;
  m.op = KvOp::kSet;
  m.keys = {key};
  m.values = {value};
  return Write(m).status();
}
absl::StatusOr<int64_t> KvStore::Del(const std::vector<absl::string_view>& keys) {
  Mutation m;
  m.op = KvOp::kDel;
  m.keys = keys;
  absl::StatusOr<WriteResult> r = Write(m);
  if (!r.ok()) return r.status();
  return r->integer;
}
absl::StatusOr<int64_t> KvStore::IncrBy(absl::string_view key, int64_t delta) {
  Mutation m;
  m.op = KvOp::kIncrBy;
  m.keys = {key};
  m.delta = delta;
  absl::StatusOr<WriteResult> r = Write(m);
  if (!r.ok()) return r.status();
  return r->integer;
}

ReadResult KvStore::Lookup(absl::string_view key) const {
  return impl_->Lookup(key);
}
ReadResult KvStore::MultiLookup(const std::vector<absl::string_view>& keys) const {
  return impl_->MultiLookup(keys);
}
ReadResult KvStore::Exists(const std::vector<absl::string_view>& keys) const {
  return impl_->Exists(keys);
}
ReadResult KvStore::DbSize() const { return impl_->DbSize(); }
ReadResult KvStore::Keys(absl::string_view pattern) const {
  return impl_->Keys(pattern);
}
absl::StatusOr<std::optional<std::string>> KvStore::Get(absl::string_view key) {
  ReadResult r = impl_->Lookup(key);
  absl::Status s = impl_->WaitDurable(r.depends_on_lsn);
  if (!s.ok()) return s;
  return std::move(r.values[0]);
}

absl::StatusOr<CheckpointInfo> KvStore::Checkpoint() {
  return impl_->Checkpoint();
}
absl::Status KvStore::StartBackgroundCheckpoint() {
  return impl_->StartBackgroundCheckpoint();
}
void KvStore::WaitForBackgroundCheckpoint() {
  impl_->WaitForBackgroundCheckpoint();
}
uint64_t KvStore::durable_lsn() const { return impl_->durable_lsn(); }
uint64_t KvStore::last_applied_lsn() const { return impl_->last_applied_lsn(); }
KvStats KvStore::GetStats() const { return impl_->GetStats(); }
const KvRecoveryReport& KvStore::recovery_report() const {
  return impl_->recovery_report();
}
const SegmentedWal& KvStore::wal() const { return impl_->wal(); }

}  // namespace kv
}  // namespace segwal
