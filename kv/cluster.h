// ClusterNode: segkv_server's replicated mode (kv/README.md, "Cluster mode").
// One member of a raft cluster (canonical raft, libraft 0.15) whose log is
// segwal (raft/segwal_raft_io.h: SegwalRaftStore under <dir>/raft, libraft's
// TCP transport on --raft_addr) and whose state machine is KvFsm
// (kv/kv_fsm.h). It is the server's CommandHandler (kv/commands.h).
//
//   - Writes (SET, DEL, MSET, INCR, INCRBY, FLUSHALL) on the leader: one
//     raft_apply each (kv/cluster_command.h); the reply is deferred until raft
//     committed and applied the entry, so "+OK" means a majority has it
//     durable. A follower answers "-MOVED 0 HOST:CLIENTPORT" naming the
//     leader; with no leader known (election), "-TRYAGAIN ...". A write whose
//     leader lost leadership before it committed may or may not be applied
//     later: it answers "-TRYAGAIN ..." if repeating it is safe, and INCR or
//     INCRBY "-UNCERTAIN ..." (UncommittedWriteError, kv/cluster_command.h).
//   - Reads (GET, MGET, EXISTS, DBSIZE, KEYS) on the leader are linearizable:
//     they wait for a raft_barrier appended after they arrived (one barrier
//     serves every read that arrived before it was appended), then read the
//     state, which then holds every write acknowledged before the read
//     arrived. Followers redirect reads too.
//   - A new leader first commits a barrier of its term, and serves only once
//     it is applied: its commit index is then current (Raft paper 8: a leader
//     learns what is committed only from an entry of its own term).
//   - ROLE, INFO [replication], DEBUG DIGEST: answered locally by any member.
//
// Threads: the server's loop thread only (libraft runs on that loop; the
// SegwalRaftIo's sync thread hands progress over through uv_async).

#ifndef SEGWAL_KV_CLUSTER_H_
#define SEGWAL_KV_CLUSTER_H_

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kv/cluster_config.h"
#include "kv/commands.h"
#include "kv/kv_fsm.h"
#include "raft/segwal_raft_io.h"

namespace segwal {
namespace kv {

struct ClusterOptions {
  ClusterConfig config;
  // The raft store lives in <dir>/raft (wal/, snapshots/, uv/).
  std::string dir;
  SegmentedWalOptions wal;  // of the raft store; wal_dir and env are set by it
  unsigned snapshot_threshold = 8192;  // raft_set_snapshot_threshold
  unsigned snapshot_trailing = 4096;   // raft_set_snapshot_trailing
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_timeout_ms = 100;
  size_t max_key_size = 64 << 10;
  size_t max_value_size = 16 << 20;
};

class ClusterNode : public CommandHandler {
 public:
  explicit ClusterNode(const ClusterOptions& options);
  // REQUIRES: Start never ran, or the raft close callback fired (Server::Run
  // returned).
  ~ClusterNode() override;
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // Opens the raft store, bootstraps the configuration on the first start
  // (an empty store) and starts raft on `loop`. `counters`: the server's, for
  // INFO (outlive this object).
  absl::Status Start(uv_loop_t* loop, const ServerCounters* counters);
  bool bootstrapped() const { return bootstrapped_; }

  CommandReply Execute(const std::vector<std::string>& args) override;
  void Shutdown() override;

  // The "# Replication" INFO section.
  std::string ReplicationInfo();

 private:
  struct ApplyRequest;
  struct ReadRequest;
  struct BarrierRequest;

  static void OnTick(uv_timer_t* timer);
  static void OnApplied(struct raft_apply* req, int status, void* result);
  static void OnBarrier(struct raft_barrier* req, int status);
  static void OnClosed(raft* r);

  bool LeaderReady();
  // Issues the leader's first barrier of its term, and logs role changes.
  void CheckLeadership();
  // The error reply for a member that cannot serve (MOVED or TRYAGAIN).
  std::string Redirect();
  CommandReply SubmitWrite(const Mutation& m);
  CommandReply QueueRead(const std::vector<std::string>& args);
  void KickReads();
  std::string EvaluateRead(const std::vector<std::string>& args) const;
  std::string Role();
  std::string Info(const std::string& section);

  const ClusterOptions options_;
  KvFsm fsm_;
  const ServerCounters* counters_ = nullptr;
  // PING, ECHO, COMMAND, CONFIG, ...: an executor without a store (Start).
  std::unique_ptr<CommandExecutor> executor_;
  std::unique_ptr<raftstore::SegwalRaftIo> io_;
  raft raft_{};
  uv_timer_t tick_;
  bool started_ = false;
  bool bootstrapped_ = false;
  bool shutting_down_ = false;

  uint64_t ready_term_ = 0;           // term whose first barrier is applied
  uint64_t leader_barrier_term_ = 0;  // term of the first barrier in flight
  unsigned last_logged_state_ = 0;
  uint64_t last_logged_term_ = 0;
  std::vector<ReadRequest> pending_reads_;  // wait for the next barrier
  bool read_barrier_in_flight_ = false;
};

}  // namespace kv
}  // namespace segwal

#endif  // SEGWAL_KV_CLUSTER_H_
