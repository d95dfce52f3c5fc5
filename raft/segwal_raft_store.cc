// SegwalRaftStore: records go to the WAL under mu_ and are applied to state_
// by the same rules replay uses (raft/raft_log_state.h); snapshot files are
// written and read here (raft/FORMAT.md, "Snapshot files").

#include "raft/segwal_raft_store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "crypto/crc32c.h"
#include "env/env.h"
#include "util/coding.h"

namespace segwal {
namespace raftstore {
namespace {

constexpr char kSnapshotMagic[8] = {'S', 'E', 'G', 'R', 'S', 'N', 'P', '1'};
constexpr uint32_t kSnapshotVersion = 1;
constexpr char kSnapshotPrefix[] = "snapshot-";
constexpr char kSnapshotSuffix[] = ".snap";
constexpr char kTmpSuffix[] = ".tmp";

// Reads little-endian fields from a buffer, remembering the first overrun.
class Cursor {
 public:
  explicit Cursor(absl::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  size_t offset() const { return pos_; }
  // Each read returns 0 (or an empty view) and moves nothing once a read has
  // overrun the buffer.
  uint32_t Fixed32() {
    if (!Has(4)) return 0;
    const uint32_t v = DecodeFixed32(in_.data() + pos_);
    pos_ += 4;
    return v;
  }
  uint64_t Fixed64() {
    if (!Has(8)) return 0;
    const uint64_t v = DecodeFixed64(in_.data() + pos_);
    pos_ += 8;
    return v;
  }
  absl::string_view Bytes(uint64_t n) {
    if (!Has(n)) return {};
    absl::string_view out = in_.substr(pos_, n);
    pos_ += n;
    return out;
  }

 private:
  bool Has(uint64_t n) {
    if (ok_ && in_.size() - pos_ >= n) return true;
    ok_ = false;
    return false;
  }
  absl::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

std::string EncodeSnapshotFile(const RaftSnapshot& s) {
  std::string out;
  out.append(kSnapshotMagic, sizeof(kSnapshotMagic));
  PutFixed32(&out, kSnapshotVersion);
  PutFixed32(&out, 0);  // flags
  PutFixed64(&out, s.index);
  PutFixed64(&out, s.term);
  PutFixed64(&out, s.configuration_index);
  PutFixed32(&out, static_cast<uint32_t>(s.configuration.size()));
  for (const RaftServerInfo& server : s.configuration) {
    PutFixed64(&out, server.id);
    PutFixed32(&out, static_cast<uint32_t>(server.role));
    PutFixed32(&out, static_cast<uint32_t>(server.address.size()));
    out.append(server.address);
  }
  PutFixed64(&out, s.data.size());
  out.append(s.data);
  PutFixed32(&out, crc32c::Mask(crc32c::Value(out)));
  return out;
}

absl::StatusOr<RaftSnapshot> DecodeSnapshotFile(const std::string& path,
                                                absl::string_view file) {
  auto corrupt = [&](size_t offset, absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat(path, ": offset ", offset, ": ", why));
  };
  if (file.size() < sizeof(kSnapshotMagic) + 4) {
    return corrupt(0, absl::StrCat("file of ", file.size(),
                                   " bytes is too short for a snapshot"));
  }
  const absl::string_view body = file.substr(0, file.size() - 4);
  Cursor crc_cursor(file.substr(file.size() - 4));
  const uint32_t stored_crc = crc_cursor.Fixed32();
  if (crc32c::Unmask(stored_crc) != crc32c::Value(body)) {
    return corrupt(body.size(), "checksum mismatch");
  }
  Cursor c(body);
  if (c.Bytes(sizeof(kSnapshotMagic)) !=
      absl::string_view(kSnapshotMagic, sizeof(kSnapshotMagic))) {
    return corrupt(0, "bad magic");
  }
  const uint64_t version = c.Fixed32();
  if (version != kSnapshotVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": unknown snapshot file version ", version));
  }
  c.Fixed32();  // flags
  RaftSnapshot s;
  s.index = c.Fixed64();
  s.term = c.Fixed64();
  s.configuration_index = c.Fixed64();
  const uint64_t servers = c.Fixed32();
  for (uint64_t i = 0; c.ok() && i < servers; ++i) {
    RaftServerInfo server;
    server.id = c.Fixed64();
    server.role = static_cast<int32_t>(c.Fixed32());
    server.address = std::string(c.Bytes(c.Fixed32()));
    s.configuration.push_back(std::move(server));
  }
  s.data = std::string(c.Bytes(c.Fixed64()));
  if (!c.ok() || c.offset() != body.size()) {
    return corrupt(c.offset(), "fields do not fill the file exactly");
  }
  return s;
}

absl::StatusOr<std::string> ReadWholeFile(Env* env, const std::string& path) {
  absl::StatusOr<uint64_t> size = env->GetFileSize(path);
  if (!size.ok()) return size.status();
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  std::string out(*size, '\0');
  size_t have = 0;
  while (have < out.size()) {
    absl::string_view got;
    absl::Status s = (*file)->Read(out.size() - have, &got, out.data() + have);
    if (!s.ok()) return s;
    if (got.empty()) break;
    if (got.data() != out.data() + have) {
      std::memmove(out.data() + have, got.data(), got.size());
    }
    have += got.size();
  }
  out.resize(have);
  return out;
}

bool ParseSnapshotFileName(absl::string_view name, uint64_t* file_id) {
  if (!absl::ConsumePrefix(&name, kSnapshotPrefix) ||
      !absl::ConsumeSuffix(&name, kSnapshotSuffix)) {
    return false;
  }
  return name.size() == 20 && absl::SimpleAtoi(name, file_id);
}

absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

}  // namespace

std::string SegwalRaftStore::SnapshotFileName(uint64_t file_id) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%020llu%s", kSnapshotPrefix,
                static_cast<unsigned long long>(file_id), kSnapshotSuffix);
  return buf;
}

SegwalRaftStore::SegwalRaftStore(const SegwalRaftStoreOptions& options,
                                 Env* env, std::unique_ptr<SegmentedWal> wal)
    : options_(options),
      env_(env),
      snapshot_dir_(SnapshotDir(options.dir)),
      wal_(std::move(wal)) {}

SegwalRaftStore::~SegwalRaftStore() = default;

absl::StatusOr<std::unique_ptr<SegwalRaftStore>> SegwalRaftStore::Open(
    const SegwalRaftStoreOptions& options) {
  if (options.wal.recovery_mode == RecoveryMode::kPointInTimeRecovery ||
      options.wal.recovery_mode == RecoveryMode::kSkipAnyCorruptedRecords) {
    return absl::InvalidArgumentError(
        "raft store: kPointInTimeRecovery and kSkipAnyCorruptedRecords may "
        "drop acknowledged votes or entries; use kTolerateCorruptedTail or "
        "kAbsoluteConsistency");
  }
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("raft store: options.dir is empty");
  }
  Env* env = options.env != nullptr ? options.env : Env::Default();
  // Each directory created here is durable in its parent before anything is
  // written in it: a store directory whose own entry a power cut can take
  // would take acknowledged terms, votes and entries with it
  // (docs/DURABILITY.md, section 1, `Open`; section 6).
  for (const std::string& d : {options.dir, SnapshotDir(options.dir)}) {
    absl::Status s = CreateDirsDurably(env, d);
    if (!s.ok()) return Annotate(s, "raft store: creating " + d);
  }
  SegmentedWalOptions wal_options = options.wal;
  wal_options.env = env;
  wal_options.wal_dir = WalDir(options.dir);
  absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
      SegmentedWal::Open(wal_options);
  if (!wal.ok()) return wal.status();
  std::unique_ptr<SegwalRaftStore> store(
      new SegwalRaftStore(options, env, std::move(*wal)));
  absl::StatusOr<RaftLogState> state = store->Replay(/*keep_data=*/false);
  if (!state.ok()) return state.status();
  uint64_t keep_file_id = 0;
  if (state->has_snapshot()) {
    keep_file_id = state->snapshot().file_id;
    const std::string path =
        store->snapshot_dir_ + "/" + SnapshotFileName(keep_file_id);
    if (!env->FileExists(path)) {
      return absl::DataLossError(absl::StrCat(
          "raft store: snapshot file ", path, " named by the record at LSN ",
          state->snapshot_ref_lsn(), " is missing"));
    }
  }
  {
    port::MutexLock l(&store->mu_);
    store->state_ = std::move(*state);
  }
  // A read-only WAL (full disk) cannot be appended to; leave the files be.
  if (store->wal_->recovery_report().read_only_reason.empty()) {
    absl::Status s = store->RemoveUnreferencedSnapshotFiles(keep_file_id);
    if (!s.ok()) return s;
  }
  return store;
}

absl::StatusOr<RaftLogState> SegwalRaftStore::Replay(bool keep_data) const {
  RaftLogState state(keep_data);
  absl::StatusOr<std::vector<SegmentMeta>> segments = wal_->ListSegments();
  if (!segments.ok()) return segments.status();
  const uint64_t from = segments->empty() ? wal_->next_lsn()
                                          : segments->front().first_lsn;
  // First pass: the latest log-start record, if segments were removed.
  {
    absl::StatusOr<std::unique_ptr<WalIterator>> it = wal_->NewIterator(from);
    if (!it.ok()) return it.status();
    for (; (*it)->Valid(); (*it)->Next()) {
      const WalRecord& r = (*it)->record();
      if (r.record_type != static_cast<uint32_t>(RaftRecordType::kLogStart)) continue;
      absl::StatusOr<LogStartRecord> floor = DecodeLogStartRecord(r.lsn, r.payload);
      if (!floor.ok()) return floor.status();
      state.SetFloor(*floor);
    }
    if (!(*it)->status().ok()) return (*it)->status();
  }
  absl::StatusOr<std::unique_ptr<WalIterator>> it = wal_->NewIterator(from);
  if (!it.ok()) return it.status();
  for (; (*it)->Valid(); (*it)->Next()) {
    const WalRecord& r = (*it)->record();
    absl::Status s = state.ApplyRecord(r.lsn, r.record_type, r.payload);
    if (!s.ok()) return s;
  }
  if (!(*it)->status().ok()) return (*it)->status();
  absl::Status s = state.Finish();
  if (!s.ok()) return s;
  return state;
}

absl::StatusOr<RaftSnapshot> SegwalRaftStore::ReadSnapshotFile(
    uint64_t file_id) const {
  const std::string path = snapshot_dir_ + "/" + SnapshotFileName(file_id);
  absl::StatusOr<std::string> bytes = ReadWholeFile(env_, path);
  if (!bytes.ok()) return Annotate(bytes.status(), "raft store: reading " + path);
  return DecodeSnapshotFile(path, *bytes);
}

absl::StatusOr<LoadedRaftLog> SegwalRaftStore::Load() const {
  // Replaying under mu_ keeps a concurrent append from landing half in.
  port::MutexLock l(&mu_);
  absl::StatusOr<RaftLogState> state = Replay(/*keep_data=*/true);
  if (!state.ok()) return state.status();
  LoadedRaftLog out;
  out.term = state->term();
  out.voted_for = state->vote();
  out.start_index = state->start_index();
  if (state->has_snapshot()) {
    absl::StatusOr<RaftSnapshot> snapshot =
        ReadSnapshotFile(state->snapshot().file_id);
    if (!snapshot.ok()) return snapshot.status();
    if (snapshot->index != state->snapshot().index ||
        snapshot->term != state->snapshot().term) {
      return absl::DataLossError(absl::StrCat(
          "raft store: snapshot file ", SnapshotFileName(state->snapshot().file_id),
          " holds index ", snapshot->index, " term ", snapshot->term,
          ", its record at LSN ", state->snapshot_ref_lsn(), " says index ",
          state->snapshot().index, " term ", state->snapshot().term));
    }
    out.snapshot = std::move(*snapshot);
  }
  uint64_t index = state->start_index();
  out.entries.reserve(state->log().size());
  for (const RaftLogState::LiveEntry& e : state->log()) {
    out.entries.push_back(RaftEntry{index++, e.term, e.type, e.data});
  }
  return out;
}

absl::StatusOr<uint64_t> SegwalRaftStore::AppendRecordLocked(
    RaftRecordType type, absl::string_view payload) {
  absl::StatusOr<uint64_t> lsn =
      wal_->Append(static_cast<uint32_t>(type), 0, 0, 0, payload);
  if (!lsn.ok()) return lsn.status();
  // A failed buffer write still assigned the LSN (segmented_wal.h, Append):
  // the instance is poisoned and the caller must not count on the record.
  absl::Status poisoned = wal_->poisoned_status();
  if (!poisoned.ok()) return poisoned;
  return *lsn;
}

absl::Status SegwalRaftStore::WriteTermVoteLocked(uint64_t term,
                                                  uint64_t vote) {
  const TermVoteRecord r{term, vote};
  absl::StatusOr<uint64_t> lsn =
      AppendRecordLocked(RaftRecordType::kTermVote, EncodeTermVoteRecord(r));
  if (!lsn.ok()) return lsn.status();
  // Raft answers RPCs on the strength of this: durable before returning
  // (raft paper, persistent state; see docs/DURABILITY.md, raft section).
  absl::Status s = wal_->Sync();
  if (!s.ok()) return s;
  state_.ApplyTermVote(*lsn, r);
  return absl::OkStatus();
}

bool SegwalRaftStore::pristine() const {
  return state_.term() == 0 && state_.vote() == 0 && !state_.has_snapshot() &&
         state_.next_index() == 1;
}

absl::Status SegwalRaftStore::Bootstrap(uint16_t entry_type,
                                        absl::string_view configuration) {
  port::MutexLock l(&mu_);
  if (!pristine()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "raft store: cannot bootstrap: term ", state_.term(), ", next index ",
        state_.next_index(), state_.has_snapshot() ? ", has a snapshot" : ""));
  }
  const TermVoteRecord tv{1, 0};
  absl::StatusOr<uint64_t> tv_lsn =
      AppendRecordLocked(RaftRecordType::kTermVote, EncodeTermVoteRecord(tv));
  if (!tv_lsn.ok()) return tv_lsn.status();
  const EntryRecord e{1, 1, entry_type, configuration};
  absl::StatusOr<uint64_t> e_lsn = AppendRecordLocked(
      RaftRecordType::kEntry, EncodeEntryRecord(1, 1, entry_type, configuration));
  if (!e_lsn.ok()) return e_lsn.status();
  absl::Status s = wal_->Sync();
  if (!s.ok()) return s;
  state_.ApplyTermVote(*tv_lsn, tv);
  return state_.ApplyEntry(*e_lsn, e);
}

absl::Status SegwalRaftStore::Recover(uint16_t entry_type,
                                      absl::string_view configuration) {
  port::MutexLock l(&mu_);
  const uint64_t index = state_.next_index();
  absl::StatusOr<uint64_t> lsn = AppendRecordLocked(
      RaftRecordType::kEntry, EncodeEntryRecord(index, 1, entry_type, configuration));
  if (!lsn.ok()) return lsn.status();
  absl::Status s = state_.ApplyEntry(*lsn, EntryRecord{index, 1, entry_type, {}});
  if (!s.ok()) return s;
  return wal_->Sync();
}

absl::Status SegwalRaftStore::SetTerm(uint64_t term) {
  port::MutexLock l(&mu_);
  return WriteTermVoteLocked(term, 0);
}

absl::Status SegwalRaftStore::SetVote(uint64_t server_id) {
  port::MutexLock l(&mu_);
  return WriteTermVoteLocked(state_.term(), server_id);
}

absl::StatusOr<uint64_t> SegwalRaftStore::Append(
    absl::Span<const RaftEntryView> entries) {
  port::MutexLock l(&mu_);
  for (const RaftEntryView& view : entries) {
    const uint64_t index = state_.next_index();
    absl::StatusOr<uint64_t> lsn = AppendRecordLocked(
        RaftRecordType::kEntry,
        EncodeEntryRecord(index, view.term, view.type, view.data));
    if (!lsn.ok()) return lsn.status();
    absl::Status s =
        state_.ApplyEntry(*lsn, EntryRecord{index, view.term, view.type, {}});
    if (!s.ok()) return s;
  }
  return wal_->next_lsn() - 1;
}

absl::Status SegwalRaftStore::Truncate(uint64_t index) {
  port::MutexLock l(&mu_);
  if (index == 0) {
    return absl::InvalidArgumentError("raft store: truncate at index 0");
  }
  absl::StatusOr<uint64_t> lsn =
      AppendRecordLocked(RaftRecordType::kTruncate, EncodeTruncateRecord(index));
  if (!lsn.ok()) return lsn.status();
  return state_.ApplyTruncate(*lsn, index);
}

absl::Status SegwalRaftStore::PutSnapshot(const RaftSnapshot& snapshot,
                                          uint64_t trailing) {
  port::MutexLock l(&mu_);
  absl::Status poisoned = wal_->poisoned_status();
  if (!poisoned.ok()) return poisoned;
  // The file is named after the LSN its reference record will get: unique,
  // since mu_ keeps every other append out until that record is written. A
  // crash may lose the record and a later snapshot reuse the LSN and the
  // name; the rename then replaces the orphan atomically.
  const uint64_t file_id = wal_->next_lsn();
  const std::string final_path = snapshot_dir_ + "/" + SnapshotFileName(file_id);
  const std::string tmp_path = final_path + kTmpSuffix;
  {
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        env_->NewWritableFile(tmp_path);
    if (!file.ok()) return Annotate(file.status(), "raft store: " + tmp_path);
    absl::Status s = (*file)->Append(EncodeSnapshotFile(snapshot));
    if (s.ok()) s = (*file)->Sync();
    absl::Status close = (*file)->Close();
    if (s.ok()) s = close;
    if (s.ok()) s = env_->RenameFile(tmp_path, final_path);
    if (s.ok()) s = env_->SyncDir(snapshot_dir_);
    if (!s.ok()) {
      env_->DeleteFile(tmp_path).IgnoreError();  // best effort; Open removes it
      return Annotate(s, "raft store: writing snapshot " + final_path);
    }
  }
  // Only a durable file may be named by a record (the order LevelDB uses for
  // MANIFEST and CURRENT).
  const SnapshotRefRecord ref{snapshot.index, snapshot.term, trailing, file_id};
  absl::StatusOr<uint64_t> lsn =
      AppendRecordLocked(RaftRecordType::kSnapshotRef, EncodeSnapshotRefRecord(ref));
  if (!lsn.ok()) return lsn.status();
  absl::Status s = wal_->Sync();
  if (!s.ok()) return s;
  state_.ApplySnapshotRef(*lsn, ref);
  s = ReleaseLogBehindSnapshotLocked();
  if (!s.ok()) return s;
  return RemoveUnreferencedSnapshotFiles(file_id);
}

absl::Status SegwalRaftStore::ReleaseLogBehindSnapshotLocked() {
  // The live log now starts at state_.start_index(), whose record is the
  // oldest one replay needs for the log (the snapshot reference when no entry
  // is kept). Segments wholly before it may go once a durable log-start
  // record says where replay must begin (raft/FORMAT.md, "Removing the log
  // behind a snapshot"): the records left in front of it in the first kept
  // segment describe a log that is gone.
  const LogStartRecord floor{
      state_.log().empty() ? state_.snapshot_ref_lsn() : state_.log().front().lsn,
      state_.start_index()};
  if (state_.term_vote_lsn() != 0 && state_.term_vote_lsn() < floor.floor_lsn) {
    // Write term and vote again so that their record is not the one holding
    // the old segments back (synced below).
    const TermVoteRecord tv{state_.term(), state_.vote()};
    absl::StatusOr<uint64_t> lsn =
        AppendRecordLocked(RaftRecordType::kTermVote, EncodeTermVoteRecord(tv));
    if (!lsn.ok()) return lsn.status();
    state_.ApplyTermVote(*lsn, tv);
  }
  absl::StatusOr<uint64_t> lsn =
      AppendRecordLocked(RaftRecordType::kLogStart, EncodeLogStartRecord(floor));
  if (!lsn.ok()) return lsn.status();
  absl::Status s = wal_->Sync();
  if (!s.ok()) return s;
  absl::StatusOr<TruncateResult> r = wal_->TruncateBefore(floor.floor_lsn);
  return r.status();
}

absl::Status SegwalRaftStore::RemoveUnreferencedSnapshotFiles(
    uint64_t keep_file_id) {
  absl::StatusOr<std::vector<std::string>> names =
      env_->GetChildren(snapshot_dir_);
  if (!names.ok()) return names.status();
  bool removed = false;
  for (const std::string& name : *names) {
    uint64_t id = 0;
    const bool stale_snapshot =
        ParseSnapshotFileName(name, &id) && id != keep_file_id;
    if (stale_snapshot || absl::EndsWith(name, kTmpSuffix)) {
      absl::Status s = env_->DeleteFile(snapshot_dir_ + "/" + name);
      if (!s.ok()) return Annotate(s, "raft store: removing " + name);
      removed = true;
    }
  }
  return removed ? env_->SyncDir(snapshot_dir_) : absl::OkStatus();
}

absl::StatusOr<std::optional<RaftSnapshot>> SegwalRaftStore::GetSnapshot()
    const {
  port::MutexLock l(&mu_);
  if (!state_.has_snapshot()) return std::optional<RaftSnapshot>();
  absl::StatusOr<RaftSnapshot> s = ReadSnapshotFile(state_.snapshot().file_id);
  if (!s.ok()) return s.status();
  return std::optional<RaftSnapshot>(std::move(*s));
}

absl::Status SegwalRaftStore::Sync() { return wal_->Sync(); }

uint64_t SegwalRaftStore::durable_lsn() const { return wal_->durable_lsn(); }

absl::Status SegwalRaftStore::poisoned_status() const {
  return wal_->poisoned_status();
}

uint64_t SegwalRaftStore::next_index() const {
  port::MutexLock l(&mu_);
  return state_.next_index();
}

uint64_t SegwalRaftStore::term() const {
  port::MutexLock l(&mu_);
  return state_.term();
}

uint64_t SegwalRaftStore::voted_for() const {
  port::MutexLock l(&mu_);
  return state_.vote();
}

uint64_t SegwalRaftStore::TermOf(uint64_t index) const {
  port::MutexLock l(&mu_);
  if (index >= state_.start_index() && index < state_.next_index()) {
    return state_.log()[index - state_.start_index()].term;
  }
  if (state_.has_snapshot() && index == state_.snapshot().index) {
    return state_.snapshot().term;
  }
  return 0;
}

SegwalRaftStore::LogPosition SegwalRaftStore::Position() const {
  // Read before the state: an LSN durable then is durable at the answer.
  const uint64_t durable = durable_lsn();
  port::MutexLock l(&mu_);
  LogPosition out;
  out.snapshot_index = state_.has_snapshot() ? state_.snapshot().index : 0;
  out.last_index = state_.next_index() - 1;
  // Live entries are in LSN order: the durable ones are a prefix.
  const auto& log = state_.log();
  auto first_not_durable = std::partition_point(
      log.begin(), log.end(),
      [durable](const RaftLogState::LiveEntry& e) { return e.lsn <= durable; });
  out.durable_index =
      state_.start_index() + static_cast<uint64_t>(first_not_durable - log.begin()) - 1;
  return out;
}

}  // namespace raftstore
}  // namespace segwal
