// SegwalRaftIo: a libraft `raft_io` (version 1) whose storage methods (load,
// bootstrap, recover, set_term, set_vote, append, truncate, snapshot_put,
// snapshot_get) use a SegwalRaftStore, and whose transport methods (init,
// start, send, time, random, close) are those of another raft_io: by default
// an inner libraft `raft_uv` instance over the `raft_uv_tcp` transport, whose
// own disk backend is never used (no load, no append).
//
// What libraft is promised:
//   - set_term, set_vote, bootstrap, recover: durable on return.
//   - append: the callback fires on the loop thread once every entry of the
//     request is durable (status 0), or with RAFT_IOERR once a sync failed,
//     or with RAFT_CANCELED for requests not durable when the io closes.
//   - snapshot_put: the file and its reference are durable before the call
//     returns; the callback fires on the loop thread after the callbacks of
//     every append submitted before it (the order raft_uv's barrier gives).
//   - truncate: recorded at once (a tombstone); durable with the next append
//     or any synced call, and a crash that loses it loses everything after it.
//   - A poisoned WAL: every storage method returns RAFT_IOERR with errmsg set.
//
// Threads and hand-offs:
//   - The loop thread (the one running `loop`) calls every raft_io method and
//     runs every callback. Loop-thread-only state has no lock.
//   - Append only records the LSN it needs synced; a uv_prepare handle hands
//     the highest such LSN to the sync thread once per loop iteration, just
//     before the loop polls (so before it can sleep: no completion waits for
//     a tick). Every append made while the loop handled one batch of
//     messages thus shares one fsync, where signalling on the first append
//     split the batch into a sync of one record and a sync of the rest.
//   - One sync thread per io waits for appended LSNs, calls
//     SegwalRaftStore::Sync() and publishes the durable LSN (or the error)
//     under mu_, then wakes the loop with uv_async_send; the loop thread reads
//     them under mu_ and fires the callbacks of the appends now durable. So
//     every hand-off goes through mu_, where TSan sees it (libuv is not built
//     with TSan).
//
// The inner transport io. libraft's raft_uv passes ITS raft_io to the tick
// and receive callbacks, and libraft's callbacks find the raft instance in
// io->data; so `start` copies the outer io's data (set by raft_init) into the
// inner io before starting it. That is undocumented libraft behaviour (0.15);
// segwal_raft_io_test pins it with a cluster over TCP.
//
// The commit guard (on by default; SegwalRaftIoOptions::commit_guard): the
// io starts the transport with its own receive callback, which lowers the
// last_log_index of successful AppendEntries results (raft/commit_guard.h)
// before handing each message to libraft, so that libraft 0.15 never
// commits an entry of an earlier term by counting replicas.

#ifndef SEGWAL_RAFT_SEGWAL_RAFT_IO_H_
#define SEGWAL_RAFT_SEGWAL_RAFT_IO_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "port/mutex.h"
#include "raft/libraft.h"
#include "raft/segwal_raft_store.h"

namespace segwal {
namespace raftstore {

struct SegwalRaftIoOptions {
  SegwalRaftStoreOptions store;
  uv_loop_t* loop = nullptr;  // required; runs on the loop thread
  // The transport. nullptr: an inner raft_uv + raft_uv_tcp instance, created
  // and owned here, over `transport_dir` (default: store.dir + "/uv"; created
  // if missing; libraft keeps only its probe and metadata files there).
  // Otherwise a raft_io that is not initialized yet (a test double): this io
  // calls its init, start, send, time, random and close, and never its
  // storage methods. Not owned; must outlive the SegwalRaftIo.
  raft_io* transport = nullptr;
  std::string transport_dir;
  // The commit guard (raft/commit_guard.h, docs/DURABILITY.md section 6):
  // successful AppendEntries results are rewritten before libraft sees them
  // so that libraft 0.15 commits no entry of an earlier term by counting
  // replicas (raft paper Figure 8; canonical/raft PR #336, fixed in 0.17.1).
  // Needs a leader to append an entry of its term before older entries
  // commit (segkv issues raft_barrier on election). false: libraft 0.15's
  // own behaviour, which can commit an entry a later leader overwrites.
  bool commit_guard = true;
};

class SegwalRaftIo {
 public:
  SegwalRaftIo(const SegwalRaftIo&) = delete;
  SegwalRaftIo& operator=(const SegwalRaftIo&) = delete;
  // REQUIRES: the io's close callback fired, or raft_init never ran on it.
  ~SegwalRaftIo();

  // The raft_io to pass to raft_init. Valid while this object lives.
  raft_io* io() { return &io_; }
  SegwalRaftStore* store() { return store_.get(); }

  // Opens the store (SegwalRaftStore::Open) and prepares the transport.
  static absl::StatusOr<std::unique_ptr<SegwalRaftIo>> Create(
      const SegwalRaftIoOptions& options);

 private:
  struct Completion;
  class Methods;  // the raft_io function pointers

  SegwalRaftIo(const SegwalRaftIoOptions& options,
               std::unique_ptr<SegwalRaftStore> store);

  void SyncThreadMain() ABSL_LOCKS_EXCLUDED(mu_);
  void RequestSync(uint64_t lsn) ABSL_LOCKS_EXCLUDED(mu_);
  // Loop thread: RequestSync(unrequested_lsn_) if an append is waiting.
  void FlushSyncRequest() ABSL_LOCKS_EXCLUDED(mu_);
  void StopSyncThread() ABSL_LOCKS_EXCLUDED(mu_);
  // Loop thread: fires the callbacks whose requests are done, in order.
  void FireCompletions() ABSL_LOCKS_EXCLUDED(mu_);
  void MaybeFinishClose();
  int Fail(const absl::Status& status, int code = RAFT_IOERR);

  const SegwalRaftIoOptions options_;
  const std::unique_ptr<SegwalRaftStore> store_;
  raft_io io_;

  // Loop-thread state.
  raft_io* transport_ = nullptr;
  // raft_uv and its TCP transport, when no transport was given.
  std::unique_ptr<raft_io> owned_uv_io_;
  std::unique_ptr<raft_uv_transport> owned_tcp_;
  uv_async_t async_;
  uv_prepare_t prepare_;  // runs FlushSyncRequest before each poll
  uint64_t unrequested_lsn_ = 0;  // appended, not yet handed to the sync thread
  bool initialized_ = false;  // async_, prepare_ and the sync thread exist
  bool closing_ = false;        // close was called
  bool close_started_ = false;  // async_ and the transport are closing
  int closes_pending_ = 0;
  raft_io_close_cb close_cb_ = nullptr;
  raft_io_recv_cb recv_cb_ = nullptr;  // libraft's, set by start
  uint64_t committed_floor_ = 0;       // highest leader_commit sent
  std::deque<Completion> completions_;
  std::thread sync_thread_;

  // Hand-off between the loop thread and the sync thread.
  port::Mutex mu_;
  port::CondVar cv_;
  uint64_t sync_target_ ABSL_GUARDED_BY(mu_) = 0;    // highest LSN to sync
  uint64_t synced_through_ ABSL_GUARDED_BY(mu_) = 0;  // target of last sync
  uint64_t published_durable_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status sync_error_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

// The io of the issue text: Create under another name.
inline absl::StatusOr<std::unique_ptr<SegwalRaftIo>> NewSegwalRaftIo(
    const SegwalRaftIoOptions& options) {
  return SegwalRaftIo::Create(options);
}

}  // namespace raftstore
}  // namespace segwal

#endif  // SEGWAL_RAFT_SEGWAL_RAFT_IO_H_
