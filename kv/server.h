// Server: segkv_server's network side. Serves RESP2 (kv/resp.h) on TCP with a
// libuv event loop, runs each command through a CommandExecutor
// (kv/commands.h) and sends a reply only once everything it depends on is
// durable. It owns the connections and one syncer thread; the KvStore is the
// caller's.
//
// Threads:
//   - The loop thread (the one calling Run) accepts, reads, parses, executes
//     (KvStore::Submit only appends to the WAL's buffer; reads never block on
//     I/O) and queues each reply on its connection tagged with the LSN it
//     needs. Replies leave a connection in command order: the head of the
//     queue goes out once durable, and everything behind it waits for it.
//   - The syncer thread calls KvStore::WaitDurable(highest LSN any queued
//     reply needs) in a loop while one is waiting. Each call is one group
//     commit: it covers every record appended before it, from every
//     connection (and it waits briefly for the clients it just answered to
//     come back: ServerOptions::group_commit_wait_micros). It hands the new durable LSN to the loop (uv_async_send),
//     which then sends what became sendable. So a client waiting for an fsync
//     never delays another client's reply to durable data.
//
// Durability promise: no reply reveals a write (its own "+OK", or a read that
// saw it) before the write is durable. If WaitDurable fails (the WAL is
// poisoned), every queued reply that needs more than the durable LSN becomes
// "-ERR" naming the cause, so do later writes (Submit refuses them) and reads
// of data that was never made durable; reads of durable data go on working.
//
// Shutdown (SHUTDOWN, SIGTERM, SIGINT): stop accepting and reading, wait until
// every queued reply is durable and sent (at most shutdown_grace), close the
// connections, stop the syncer; Run then returns and the caller closes the
// store.
//
// Cluster mode (kv/cluster.h): the server runs commands through a
// CommandHandler instead, with no KvStore and no syncer; replies it defers
// (CommandReply::deferred) go out, in command order, once complete. The
// handler shares the loop (loop()) and is shut down after the last
// connection closed (CommandHandler::Shutdown).
//
// Locking: mu_ guards the hand-over between the loop and the syncer
// (sync_target_, synced_lsn_, sync_failure_, stop_syncer_, syncer_wake_at_);
// everything else is the loop thread's alone.

#ifndef SEGWAL_KV_SERVER_H_
#define SEGWAL_KV_SERVER_H_

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "kv/commands.h"
#include "kv/kv_store.h"
#include "kv/resp.h"
#include "port/mutex.h"

namespace segwal {
namespace kv {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  int port = 6380;  // 0: any free port (see Server::port)
  RespLimits limits;
  // A connection stops being read while this many replies or bytes of
  // replies wait for it (durability or a slow reader), and resumes below.
  size_t max_pending_replies = 100000;
  size_t max_pending_bytes = 64 << 20;
  // Group commit across clients: after a sync that released K > 1 writes,
  // the syncer waits up to this long (never longer than that sync took) for
  // K more writes than were already waiting, so that the clients it just
  // answered, coming back with their next write, share the next fsync with
  // those that wrote during the last one, instead of the two groups
  // alternating. (segwal's own group_commit_wait_micros does this for
  // concurrent Sync callers; the server has a single syncer.) 0: no wait.
  uint64_t group_commit_wait_micros = 100;
  // How long shutdown waits for queued replies before closing anyway.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Print one line per connection closed for a protocol error (stderr).
  bool log_protocol_errors = true;
};

class Server {
 public:
  // REQUIRES: store outlives the server.
  Server(KvStore* store, const ServerOptions& options);
  // Cluster mode: every command goes to `handler` (not owned; outlives the
  // server); no store, no syncer.
  Server(CommandHandler* handler, const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens. Call once, before Run.
  absl::Status Listen();
  // The port listened on (the chosen one if options.port was 0).
  int port() const { return counters_.port; }
  // Serves until shutdown (SHUTDOWN, SIGTERM, SIGINT); returns once every
  // connection is closed and the syncer stopped.
  absl::Status Run();

  // The loop every callback runs on (a handler puts its own handles there).
  uv_loop_t* loop() { return &loop_; }
  const ServerCounters& counters() const { return counters_; }

  struct Connection;

 private:
  Server(KvStore* store, CommandHandler* handler, const ServerOptions& options);

  static void OnConnection(uv_stream_t* listener, int status);
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  static void OnConnectionClosed(uv_handle_t* handle);
  static void OnDurable(uv_async_t* async);
  static void OnSignal(uv_signal_t* handle, int signum);
  static void OnShutdownTimer(uv_timer_t* timer);

  // Parses and executes what conn's parser holds, then flushes.
  void ProcessInput(Connection* conn);
  // Sends conn's sendable replies (in order) in one write; closes it when it
  // asked to be and nothing is left; pauses or resumes its reads.
  void Flush(Connection* conn);
  void MaybeClose(Connection* conn);
  void CloseConnection(Connection* conn);
  // Asks the syncer to make `lsn` durable.
  void RequestSync(uint64_t lsn);
  void BeginShutdown();
  void MaybeFinishShutdown();
  void SyncerLoop();

  KvStore* const store_;          // null in cluster mode
  CommandHandler* const handler_;  // null in single-node mode
  const ServerOptions options_;
  ServerCounters counters_;
  CommandExecutor executor_;
  bool handler_shut_down_ = false;

  uv_loop_t loop_;
  uv_tcp_t listener_;
  uv_async_t durable_async_;
  uv_signal_t sigterm_, sigint_;
  uv_timer_t shutdown_timer_;
  bool listening_ = false;
  bool shutting_down_ = false;
  bool finished_ = false;
  char read_buffer_[64 << 10];
  Connection* connections_ = nullptr;  // intrusive list of open connections

  // The loop's view: replies needing <= durable_lsn_ may be sent.
  uint64_t durable_lsn_ = 0;
  uint64_t requested_lsn_ = 0;  // highest LSN handed to the syncer
  std::string failure_;         // the syncer's error, once it failed

  port::Mutex mu_;
  port::CondVar syncer_cv_;
  uint64_t sync_target_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t synced_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  std::string sync_failure_ ABSL_GUARDED_BY(mu_);
  bool stop_syncer_ ABSL_GUARDED_BY(mu_) = false;
  // RequestSync signals the syncer once sync_target_ reaches this (the syncer
  // sets it to what it waits for; UINT64_MAX while it syncs).
  uint64_t syncer_wake_at_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread syncer_;
};

}  // namespace kv
}  // namespace segwal

#endif  // SEGWAL_KV_SERVER_H_
