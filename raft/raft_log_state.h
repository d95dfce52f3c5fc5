// RaftLogState: the rules that turn the raft store's WAL records, in LSN
// order, into a raft log (raft/FORMAT.md, "Load"). One set of rules serves
// both replay (Open, Load) and the live store, which applies each record it
// appends, so what Load returns after a restart is what the store believed
// before it. Plain data with no locking: the owner synchronizes
// (SegwalRaftStore::mu_).

#ifndef SEGWAL_RAFT_RAFT_LOG_STATE_H_
#define SEGWAL_RAFT_RAFT_LOG_STATE_H_

#include <cstdint>
#include <deque>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace segwal {
namespace raftstore {

// Payload codecs of the WAL records (raft/FORMAT.md, "Records").
struct EntryRecord {
  uint64_t index = 0;
  uint64_t term = 0;
  uint16_t type = 0;
  absl::string_view data;  // points into the payload it was decoded from
};
struct TermVoteRecord {
  uint64_t term = 0;
  uint64_t vote = 0;
};
// Written (and synced) before segments are removed behind a snapshot: the
// live log starts at raft index `start_index`, whose record (or, with no
// entry kept, the snapshot reference) has LSN `floor_lsn`.
struct LogStartRecord {
  uint64_t floor_lsn = 0;
  uint64_t start_index = 0;
};
struct SnapshotRefRecord {
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t trailing = 0;
  uint64_t file_id = 0;
};

std::string EncodeEntryRecord(uint64_t index, uint64_t term, uint16_t type,
                              absl::string_view data);
std::string EncodeTruncateRecord(uint64_t index);
std::string EncodeTermVoteRecord(const TermVoteRecord& r);
std::string EncodeSnapshotRefRecord(const SnapshotRefRecord& r);
std::string EncodeLogStartRecord(const LogStartRecord& r);
// DataLoss naming the LSN if the payload has the wrong size or entry type.
absl::StatusOr<EntryRecord> DecodeEntryRecord(uint64_t lsn,
                                              absl::string_view payload);
absl::StatusOr<uint64_t> DecodeTruncateRecord(uint64_t lsn,
                                              absl::string_view payload);
absl::StatusOr<TermVoteRecord> DecodeTermVoteRecord(uint64_t lsn,
                                                    absl::string_view payload);
absl::StatusOr<SnapshotRefRecord> DecodeSnapshotRefRecord(
    uint64_t lsn, absl::string_view payload);
absl::StatusOr<LogStartRecord> DecodeLogStartRecord(uint64_t lsn,
                                                    absl::string_view payload);

class RaftLogState {
 public:
  struct LiveEntry {
    uint64_t lsn = 0;
    uint64_t term = 0;
    uint16_t type = 0;
    std::string data;  // empty unless the state keeps data
  };

  explicit RaftLogState(bool keep_data) : keep_data_(keep_data) {}

  // Each returns DataLoss (naming the LSN) when the record cannot follow the
  // log as it stands: an entry whose index is not the next one.
  absl::Status ApplyEntry(uint64_t lsn, const EntryRecord& e);
  absl::Status ApplyTruncate(uint64_t lsn, uint64_t index);
  void ApplyTermVote(uint64_t lsn, const TermVoteRecord& r);
  void ApplySnapshotRef(uint64_t lsn, const SnapshotRefRecord& r);
  // Before a replay: the latest LogStartRecord of the log (found by a first
  // pass). Entry and truncate records below floor_lsn are skipped (the log
  // they describe was let go), term/vote and snapshot references below it
  // count for their values only, and the log starts at start_index at the
  // first record at or after floor_lsn.
  void SetFloor(const LogStartRecord& floor) { floor_ = floor; }

  // Dispatches on the WAL record type (RaftRecordType); DataLoss for an
  // unknown type or a malformed payload.
  absl::Status ApplyRecord(uint64_t lsn, uint32_t record_type,
                           absl::string_view payload);
  // After the last record of a replay: fixes the start of a log no record
  // placed (1, or snapshot index + 1), then DataLoss if the log does not
  // start where it must (index 1 without a snapshot, at most snapshot index
  // + 1 with one): a missing piece of log.
  absl::Status Finish();

  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t term_vote_lsn() const { return term_vote_lsn_; }
  bool has_snapshot() const { return has_snapshot_; }
  const SnapshotRefRecord& snapshot() const { return snapshot_; }
  uint64_t snapshot_ref_lsn() const { return snapshot_ref_lsn_; }
  // Index of log().front(), or of the next entry when the log is empty.
  uint64_t start_index() const { return start_; }
  uint64_t next_index() const { return start_ + log_.size(); }
  const std::deque<LiveEntry>& log() const { return log_; }
  // LSN of the live entry with this index, or 0 when it is not in the log.
  uint64_t LsnOf(uint64_t index) const;

 private:
  void ResetLog(uint64_t start);

  bool keep_data_;
  uint64_t term_ = 0;
  uint64_t vote_ = 0;
  uint64_t term_vote_lsn_ = 0;
  bool has_snapshot_ = false;
  SnapshotRefRecord snapshot_;
  uint64_t snapshot_ref_lsn_ = 0;
  // False until a record fixes where the log starts: a replay may begin in
  // the middle of the log (segments behind a snapshot are removed).
  bool started_ = false;
  LogStartRecord floor_;  // floor_lsn 0: none
  uint64_t start_ = 1;
  std::deque<LiveEntry> log_;
};

}  // namespace raftstore
}  // namespace segwal

#endif  // SEGWAL_RAFT_RAFT_LOG_STATE_H_
