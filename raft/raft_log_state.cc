// The replay rules of the raft store (raft/FORMAT.md, "Load") and the record
// payload codecs (raft/FORMAT.md, "Records").

#include "raft/raft_log_state.h"

#include "absl/strings/str_cat.h"
#include "raft/segwal_raft_store.h"
#include "util/coding.h"

namespace segwal {
namespace raftstore {
namespace {

constexpr size_t kEntryHeaderSize = 20;  // index, term, type (fixed32)

absl::Status BadSize(uint64_t lsn, const char* what, size_t got, size_t want) {
  return absl::DataLossError(absl::StrCat("raft store: ", what, " record at LSN ",
                                          lsn, " has ", got, " bytes, expected ",
                                          want));
}

}  // namespace

std::string EncodeEntryRecord(uint64_t index, uint64_t term, uint16_t type,
                              absl::string_view data) {
  std::string out;
  out.reserve(kEntryHeaderSize + data.size());
  PutFixed64(&out, index);
  PutFixed64(&out, term);
  PutFixed32(&out, type);
  out.append(data.data(), data.size());
  return out;
}

std::string EncodeTruncateRecord(uint64_t index) {
  std::string out;
  PutFixed64(&out, index);
  return out;
}

std::string EncodeTermVoteRecord(const TermVoteRecord& r) {
  std::string out;
  PutFixed64(&out, r.term);
  PutFixed64(&out, r.vote);
  return out;
}

std::string EncodeSnapshotRefRecord(const SnapshotRefRecord& r) {
  std::string out;
  PutFixed64(&out, r.index);
  PutFixed64(&out, r.term);
  PutFixed64(&out, r.trailing);
  PutFixed64(&out, r.file_id);
  return out;
}

std::string EncodeLogStartRecord(const LogStartRecord& r) {
  std::string out;
  PutFixed64(&out, r.floor_lsn);
  PutFixed64(&out, r.start_index);
  return out;
}

absl::StatusOr<LogStartRecord> DecodeLogStartRecord(uint64_t lsn,
                                                    absl::string_view payload) {
  if (payload.size() != 16) return BadSize(lsn, "log start", payload.size(), 16);
  return LogStartRecord{DecodeFixed64(payload.data()),
                        DecodeFixed64(payload.data() + 8)};
}

absl::StatusOr<EntryRecord> DecodeEntryRecord(uint64_t lsn,
                                              absl::string_view payload) {
  if (payload.size() < kEntryHeaderSize) {
    return absl::DataLossError(absl::StrCat(
        "raft store: entry record at LSN ", lsn, " has ", payload.size(),
        " bytes, shorter than its 20-byte header"));
  }
  EntryRecord e;
  e.index = DecodeFixed64(payload.data());
  e.term = DecodeFixed64(payload.data() + 8);
  const uint32_t type = DecodeFixed32(payload.data() + 16);
  if (type > 0xffff) {
    return absl::DataLossError(absl::StrCat("raft store: entry record at LSN ",
                                            lsn, " has entry type ", type));
  }
  e.type = static_cast<uint16_t>(type);
  e.data = payload.substr(kEntryHeaderSize);
  return e;
}

absl::StatusOr<uint64_t> DecodeTruncateRecord(uint64_t lsn,
                                              absl::string_view payload) {
  if (payload.size() != 8) return BadSize(lsn, "truncate", payload.size(), 8);
  return DecodeFixed64(payload.data());
}

absl::StatusOr<TermVoteRecord> DecodeTermVoteRecord(uint64_t lsn,
                                                    absl::string_view payload) {
  if (payload.size() != 16) return BadSize(lsn, "term/vote", payload.size(), 16);
  return TermVoteRecord{DecodeFixed64(payload.data()),
                        DecodeFixed64(payload.data() + 8)};
}

absl::StatusOr<SnapshotRefRecord> DecodeSnapshotRefRecord(
    uint64_t lsn, absl::string_view payload) {
  if (payload.size() != 32) {
    return BadSize(lsn, "snapshot reference", payload.size(), 32);
  }
  return SnapshotRefRecord{DecodeFixed64(payload.data()),
                           DecodeFixed64(payload.data() + 8),
                           DecodeFixed64(payload.data() + 16),
                           DecodeFixed64(payload.data() + 24)};
}

void RaftLogState::ResetLog(uint64_t start) {
  log_.clear();
  start_ = start;
  started_ = true;
}

absl::Status RaftLogState::ApplyEntry(uint64_t lsn, const EntryRecord& e) {
  if (!started_) ResetLog(e.index);
  if (e.index != next_index()) {
    return absl::DataLossError(absl::StrCat(
        "raft store: entry record at LSN ", lsn, " has raft index ", e.index,
        ", expected ", next_index(), " (log starts at ", start_, ")"));
  }
  LiveEntry live;
  live.lsn = lsn;
  live.term = e.term;
  live.type = e.type;
  if (keep_data_) live.data.assign(e.data.data(), e.data.size());
  log_.push_back(std::move(live));
  return absl::OkStatus();
}

absl::Status RaftLogState::ApplyTruncate(uint64_t lsn, uint64_t index) {
  (void)lsn;
  if (index == 0) {
    return absl::DataLossError(
        absl::StrCat("raft store: truncate record at LSN ", lsn, " names index 0"));
  }
  if (has_snapshot_ && index <= snapshot_.index) {
    // Below the snapshot nothing can be cut that the snapshot does not cover:
    // drop the entries, the log resumes after the snapshot.
    ResetLog(snapshot_.index + 1);
  } else if (!started_ || index <= start_) {
    ResetLog(index);
  } else if (index < next_index()) {
    log_.resize(index - start_);
  }
  return absl::OkStatus();
}

void RaftLogState::ApplyTermVote(uint64_t lsn, const TermVoteRecord& r) {
  term_ = r.term;
  vote_ = r.vote;
  term_vote_lsn_ = lsn;
}

void RaftLogState::ApplySnapshotRef(uint64_t lsn, const SnapshotRefRecord& r) {
  has_snapshot_ = true;
  snapshot_ = r;
  snapshot_ref_lsn_ = lsn;
  // An installed snapshot (trailing 0) replaces the log; so does one the log
  // does not reach (raft never takes one past its last entry: defensive).
  // Entries below start_ are not "missing" here: a replay that begins in the
  // middle of the log (segments behind an older snapshot were removed) knows
  // only the entries whose records it has seen, and those are all the ones
  // this snapshot keeps (raft/FORMAT.md, "Removing the log behind a
  // snapshot").
  if (r.trailing == 0 || !started_ || next_index() <= r.index) {
    ResetLog(r.index + 1);
    return;
  }
  // Keep the `trailing` entries up to the snapshot index and all after it.
  while (!log_.empty() && r.index >= r.trailing && start_ <= r.index - r.trailing) {
    log_.pop_front();
    ++start_;
  }
}

absl::Status RaftLogState::ApplyRecord(uint64_t lsn, uint32_t record_type,
                                       absl::string_view payload) {
  const bool below_floor = lsn < floor_.floor_lsn;
  if (floor_.floor_lsn != 0 && !below_floor && !started_) {
    ResetLog(floor_.start_index);
  }
  const auto type = static_cast<RaftRecordType>(record_type);
  // Term and vote are values: they count wherever the record is.
  if (type == RaftRecordType::kTermVote) {
    absl::StatusOr<TermVoteRecord> r = DecodeTermVoteRecord(lsn, payload);
    if (!r.ok()) return r.status();
    ApplyTermVote(lsn, *r);
    return absl::OkStatus();
  }
  if (below_floor) {
    // Only values survive from below the floor: term/vote (above), and which
    // snapshot is in force (a later reference, at or past the floor, decides
    // what the log keeps).
    if (type == RaftRecordType::kSnapshotRef) {
      absl::StatusOr<SnapshotRefRecord> r = DecodeSnapshotRefRecord(lsn, payload);
      if (!r.ok()) return r.status();
      has_snapshot_ = true;
      snapshot_ = *r;
      snapshot_ref_lsn_ = lsn;
    }
    return absl::OkStatus();
  }
  switch (type) {
    case RaftRecordType::kEntry: {
      absl::StatusOr<EntryRecord> e = DecodeEntryRecord(lsn, payload);
      if (!e.ok()) return e.status();
      return ApplyEntry(lsn, *e);
    }
    case RaftRecordType::kTruncate: {
      absl::StatusOr<uint64_t> index = DecodeTruncateRecord(lsn, payload);
      if (!index.ok()) return index.status();
      return ApplyTruncate(lsn, *index);
    }
    case RaftRecordType::kTermVote:  // handled above
      return absl::OkStatus();
    case RaftRecordType::kSnapshotRef: {
      absl::StatusOr<SnapshotRefRecord> r = DecodeSnapshotRefRecord(lsn, payload);
      if (!r.ok()) return r.status();
      ApplySnapshotRef(lsn, *r);
      return absl::OkStatus();
    }
    case RaftRecordType::kLogStart: {
      absl::StatusOr<LogStartRecord> r = DecodeLogStartRecord(lsn, payload);
      return r.status();  // used by the first pass of a replay (SetFloor)
    }
  }
  return absl::DataLossError(absl::StrCat("raft store: record at LSN ", lsn,
                                          " has unknown type ", record_type));
}

absl::Status RaftLogState::Finish() {
  if (!started_) ResetLog(has_snapshot_ ? snapshot_.index + 1 : 1);
  if (!has_snapshot_ && start_ != 1) {
    return absl::DataLossError(absl::StrCat(
        "raft store: the log starts at index ", start_,
        " and no snapshot covers the entries before it"));
  }
  if (has_snapshot_ && start_ > snapshot_.index + 1) {
    return absl::DataLossError(absl::StrCat(
        "raft store: the log starts at index ", start_, ", after snapshot index ",
        snapshot_.index, " + 1"));
  }
  return absl::OkStatus();
}

uint64_t RaftLogState::LsnOf(uint64_t index) const {
  if (index < start_ || index >= next_index()) return 0;
  return log_[index - start_].lsn;
}

}  // namespace raftstore
}  // namespace segwal
