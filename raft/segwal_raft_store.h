// SegwalRaftStore: the persistent state of one raft server (term, vote, log,
// snapshot) kept in a SegmentedWal plus snapshot files, so that segwal can be
// the log store of canonical raft (libraft; the raft_io adapter is in
// raft/segwal_raft_io.h). This class knows nothing of libraft or libuv: it
// speaks in raft indexes, terms and bytes.
//
// Layout of `dir`: `wal/` (a SegmentedWal) and `snapshots/` (snapshot files).
// Every change is a WAL record (raft/FORMAT.md): an entry carries its raft
// index and term; a suffix truncation is a tombstone record; term and vote are
// records; a snapshot is a file plus a reference record. Nothing is rewritten
// in place: raft indexes repeat after a truncation while LSNs never do, and
// Load rebuilds the log by replaying the records in LSN order.
//
// Durability (raft/FORMAT.md, "Durability"):
//   - SetTerm, SetVote, Bootstrap, Recover, PutSnapshot: durable on return.
//   - Append: buffered; durable once durable_lsn() >= the LSN it returned
//     (Sync, or a sync by any of the calls above). Tell raft only then.
//   - Truncate: buffered. A crash may lose it, but then every record after it
//     is lost too (a WAL keeps a prefix), which is the state before the call.
//   - A failed write or sync poisons the WAL: every later call returns that
//     error (raft sees RAFT_IOERR). Reopen to recover.
//   - Open refuses RecoveryMode::kPointInTimeRecovery and
//     kSkipAnyCorruptedRecords: both may drop records a sync acknowledged
//     (a vote, an entry), which raft's safety argument cannot tolerate.
//
// Thread safety: every method may be called from several threads at once
// (raft calls come from one loop thread; Sync typically from another).

#ifndef SEGWAL_RAFT_SEGWAL_RAFT_STORE_H_
#define SEGWAL_RAFT_SEGWAL_RAFT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "env/env.h"
#include "port/mutex.h"
#include "raft/raft_log_state.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace raftstore {

// WAL record types of the raft store (WalRecord::record_type); payloads are
// in raft/FORMAT.md.
enum class RaftRecordType : uint32_t {
  kEntry = 1,        // one log entry: raft index, term, entry type, data
  kTruncate = 2,     // tombstone: every entry with index >= i is dropped
  kTermVote = 3,     // current term and vote
  kSnapshotRef = 4,  // the snapshot file now in force, and its trailing count
  kLogStart = 5,     // replay may skip the log records before this LSN
};

// A log entry to append: its index is the store's next_index().
struct RaftEntryView {
  uint64_t term = 0;
  uint16_t type = 0;  // RAFT_COMMAND, RAFT_BARRIER, RAFT_CHANGE (opaque here)
  absl::string_view data;
};

struct RaftEntry {
  uint64_t index = 0;
  uint64_t term = 0;
  uint16_t type = 0;
  std::string data;

  friend bool operator==(const RaftEntry& a, const RaftEntry& b) {
    return a.index == b.index && a.term == b.term && a.type == b.type &&
           a.data == b.data;
  }
};

struct RaftServerInfo {
  uint64_t id = 0;
  std::string address;
  int32_t role = 0;

  friend bool operator==(const RaftServerInfo& a, const RaftServerInfo& b) {
    return a.id == b.id && a.address == b.address && a.role == b.role;
  }
};

struct RaftSnapshot {
  uint64_t index = 0;  // last index the snapshot covers
  uint64_t term = 0;   // term of that entry
  std::vector<RaftServerInfo> configuration;
  uint64_t configuration_index = 0;
  std::string data;
};

// What Load returns: raft_io->load's outputs.
struct LoadedRaftLog {
  uint64_t term = 0;
  uint64_t voted_for = 0;
  std::optional<RaftSnapshot> snapshot;
  // Index of entries[0] (or of the next entry, when there are none).
  uint64_t start_index = 1;
  std::vector<RaftEntry> entries;
};

struct SegwalRaftStoreOptions {
  // Holds wal/ and snapshots/; created if missing.
  std::string dir;
  Env* env = nullptr;  // nullptr => Env::Default()
  // wal_dir and env are set by Open. recovery_mode must be
  // kTolerateCorruptedTail (default) or kAbsoluteConsistency.
  SegmentedWalOptions wal;
};

class SegwalRaftStore {
 public:
  SegwalRaftStore(const SegwalRaftStore&) = delete;
  SegwalRaftStore& operator=(const SegwalRaftStore&) = delete;
  // Flushes buffered records to the OS; does not sync (SegmentedWal's rule).
  ~SegwalRaftStore();

  // Opens the WAL, replays it to learn term, vote, snapshot and the index of
  // every live entry, and removes snapshot files no record refers to.
  // InvalidArgument for a refused recovery mode; DataLoss if the records do
  // not form a raft log (a gap in indexes, a missing snapshot file).
  static absl::StatusOr<std::unique_ptr<SegwalRaftStore>> Open(
      const SegwalRaftStoreOptions& options);

  // Everything raft_io->load returns, read back from the WAL and the snapshot
  // file (entries whose index the snapshot's trailing count lets go are left
  // out).
  absl::StatusOr<LoadedRaftLog> Load() const ABSL_LOCKS_EXCLUDED(mu_);

  // Writes term 1 and entry 1 (term 1, type `entry_type`, the encoded
  // configuration), synced. FailedPrecondition if the store is not pristine
  // (a term, an entry or a snapshot exists): raft's RAFT_CANTBOOTSTRAP.
  absl::Status Bootstrap(uint16_t entry_type, absl::string_view configuration)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Appends a configuration entry (term 1, as libraft's own backend does) at
  // next_index(), synced (raft_recover).
  absl::Status Recover(uint16_t entry_type, absl::string_view configuration)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Durable on return. SetTerm resets the vote to 0 (raft_io's contract).
  absl::Status SetTerm(uint64_t term) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status SetVote(uint64_t server_id) ABSL_LOCKS_EXCLUDED(mu_);

  // Appends entries at next_index(), next_index()+1, ...; returns the LSN of
  // the last record (durable once durable_lsn() reaches it). An empty span
  // returns the LSN of the last record written (maybe 0).
  absl::StatusOr<uint64_t> Append(absl::Span<const RaftEntryView> entries)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Drops every entry with index >= `index` (a tombstone record; buffered).
  // An index at or below the snapshot's drops every entry and the next index
  // becomes snapshot index + 1.
  absl::Status Truncate(uint64_t index) ABSL_LOCKS_EXCLUDED(mu_);

  // Makes `snapshot` the store's snapshot, durably: the file is written under
  // a temporary name, synced, renamed and its directory synced before the
  // reference record is appended and synced. trailing == 0 (an installed
  // snapshot): the snapshot replaces the whole log and the next index is
  // snapshot.index + 1. trailing > 0: entries after snapshot.index - trailing
  // are kept. Then the WAL segments holding only records the log no longer
  // needs are removed (TruncateBefore; term and vote are first written again
  // if their record is that old), and older snapshot files deleted.
  absl::Status PutSnapshot(const RaftSnapshot& snapshot, uint64_t trailing)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The snapshot in force, read from its file; nullopt if there is none.
  absl::StatusOr<std::optional<RaftSnapshot>> GetSnapshot() const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Makes every record appended so far durable (SegmentedWal::Sync; group
  // commit with concurrent callers). Holds no store lock while syncing.
  absl::Status Sync();
  uint64_t durable_lsn() const;
  // The first write/sync error, or OK.
  absl::Status poisoned_status() const;

  uint64_t next_index() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t term() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t voted_for() const ABSL_LOCKS_EXCLUDED(mu_);

  // The log as raft/commit_guard.h sees it (SegwalRaftIo's receive path).
  // TermOf: the term of the live entry `index`, the snapshot's term at the
  // snapshot's index, else 0.
  uint64_t TermOf(uint64_t index) const ABSL_LOCKS_EXCLUDED(mu_);
  struct LogPosition {
    uint64_t snapshot_index = 0;  // 0 without a snapshot
    uint64_t last_index = 0;      // next_index() - 1
    // Every entry <= durable_index is durable (entries behind the log start
    // are covered by the snapshot): the last live entry whose record's LSN
    // is <= durable_lsn(), or the log start - 1 when none is.
    uint64_t durable_index = 0;
  };
  LogPosition Position() const ABSL_LOCKS_EXCLUDED(mu_);
  SegmentedWal* wal() { return wal_.get(); }

  // Where the WAL and the snapshots live, and a snapshot file's name
  // ("snapshot-<file id, 20 digits>.snap"; the file id is the LSN of the
  // record that refers to it).
  static std::string WalDir(const std::string& dir) { return dir + "/wal"; }
  static std::string SnapshotDir(const std::string& dir) {
    return dir + "/snapshots";
  }
  static std::string SnapshotFileName(uint64_t file_id);

 private:
  SegwalRaftStore(const SegwalRaftStoreOptions& options, Env* env,
                  std::unique_ptr<SegmentedWal> wal);

  // Replays every retained WAL record into a fresh state.
  absl::StatusOr<RaftLogState> Replay(bool keep_data) const;
  absl::StatusOr<RaftSnapshot> ReadSnapshotFile(uint64_t file_id) const;

  absl::StatusOr<uint64_t> AppendRecordLocked(RaftRecordType type,
                                              absl::string_view payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteTermVoteLocked(uint64_t term, uint64_t vote)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReleaseLogBehindSnapshotLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RemoveUnreferencedSnapshotFiles(uint64_t keep_file_id);
  bool pristine() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SegwalRaftStoreOptions options_;
  Env* const env_;
  const std::string snapshot_dir_;
  const std::unique_ptr<SegmentedWal> wal_;

  // Guards the replayed state (which LSN holds each live entry, term, vote,
  // the snapshot in force). Held across WAL appends, so LSN order is the
  // order in which the state changed; held across the syncs of SetTerm,
  // SetVote, Bootstrap, Recover and PutSnapshot (raft's loop thread waits for
  // those anyway); not held by Sync.
  mutable port::Mutex mu_;
  RaftLogState state_ ABSL_GUARDED_BY(mu_){/*keep_data=*/false};
};

}  // namespace raftstore
}  // namespace segwal

#endif  // SEGWAL_RAFT_SEGWAL_RAFT_STORE_H_
