// KvFsm: segkv's state machine in cluster mode (kv/cluster.h). The KV map
// lives in memory; the raft log (segwal, through SegwalRaftIo) is the only
// log. Each committed entry (kv/cluster_command.h) is applied in raft index
// order; snapshots serialize the map with the single node's checkpoint
// encoding (kv/checkpoint_file.h, kv/FORMAT.md "Checkpoints"), written to and
// read from an in-memory Env, so raft's snapshot bytes ARE a segkv
// checkpoint file. A restart rebuilds the map from raft's snapshot plus the
// entries after it.
//
// Applying is deterministic on every member: INCRBY's result and its errors
// (not an integer, overflow) are decided here, from the state, never by the
// leader beforehand; an entry that does not decode (a bug, never a client
// error) changes nothing and reports the decode error.
//
// Thread safety: none; the loop thread owns it (libraft calls apply,
// snapshot and restore there; the server reads there).

#ifndef SEGWAL_KV_KV_FSM_H_
#define SEGWAL_KV_KV_FSM_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kv/checkpoint_file.h"
#include "raft/libraft.h"

namespace segwal {
namespace kv {

class KvFsm {
 public:
  // What applying one entry did, for the reply on the leader.
  struct Result {
    std::string error;  // "" if applied; else Redis's error text, nothing changed
    int64_t integer = 0;  // DEL: keys removed; INCRBY: the new value
  };

  KvFsm();
  KvFsm(const KvFsm&) = delete;
  KvFsm& operator=(const KvFsm&) = delete;

  // Applies one entry (kv/cluster_command.h) at raft index `index`.
  Result Apply(absl::string_view entry, uint64_t index);
  // The map in the checkpoint encoding, covering everything applied (its
  // LSN field holds the last applied index).
  absl::StatusOr<std::string> Snapshot() const;
  // Replaces the map with a Snapshot()'s. DataLoss (the map unchanged) if a
  // byte fails the checkpoint's checks.
  absl::Status Restore(absl::string_view snapshot);

  // Reads of the current state.
  std::optional<std::string> Get(absl::string_view key) const;
  int64_t Exists(const std::vector<absl::string_view>& keys) const;
  size_t size() const { return map_.size(); }
  std::vector<std::string> Keys(absl::string_view pattern) const;
  // A digest of the state: FNV-1a 64 over every key and value, in key order
  // (lengths included), as 16 hex digits. Equal states, equal digests;
  // indexes and LSNs are not part of it.
  std::string Digest() const;
  uint64_t last_applied() const { return last_applied_; }
  // Snapshots taken and restored through the libraft FSM (INFO replication).
  uint64_t snapshots_taken() const { return snapshots_taken_; }
  uint64_t snapshots_restored() const { return snapshots_restored_; }

  // The libraft FSM (version 1) over this object: apply hands back a
  // pointer to a Result owned here, valid until the next apply (libraft
  // calls the raft_apply callback right after apply, on the same thread).
  raft_fsm* fsm() { return &fsm_; }
  // The raft instance applying entries (for their indexes); may be unset in
  // tests, then entries count from the last applied index.
  void set_raft(const raft* r) { raft_ = r; }

 private:
  static int FsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result);
  static int FsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs);
  static int FsmRestore(raft_fsm* fsm, raft_buffer* buf);

  KvMap map_;
  uint64_t last_applied_ = 0;  // raft index of the last entry applied
  Result last_result_;
  uint64_t snapshots_taken_ = 0;
  uint64_t snapshots_restored_ = 0;
  raft_fsm fsm_{};
  const raft* raft_ = nullptr;
};

}  // namespace kv
}  // namespace segwal

#endif  // SEGWAL_KV_KV_FSM_H_
