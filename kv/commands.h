// CommandExecutor: what segkv_server does with one parsed Redis command. It
// runs the command against a KvStore and returns the RESP reply together with
// the LSN the reply depends on; it never waits for durability itself: the
// server (kv/server.h) holds each reply until durable_lsn() >= its lsn.
//
//   - Writes (SET, DEL, MSET, INCR, INCRBY, FLUSHALL) call KvStore::Submit:
//     lsn is the record's, so "+OK" goes out only once the record is durable.
//   - Reads (GET, MGET, EXISTS, DBSIZE, KEYS) take lsn from the ReadResult's
//     depends_on_lsn: an answer built on a record not yet durable waits for it.
//   - Everything else (PING, INFO, errors, ...) has lsn 0: it goes out at once,
//     after the earlier replies of its connection.
//
// Command names are case-insensitive; arity and unknown-command errors read as
// Redis 7's. The command table (COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND
// DOCS) is what redis-cli and client libraries ask for when they connect.
//
// Thread safety: one executor per server, used by the loop thread only.

#ifndef SEGWAL_KV_COMMANDS_H_
#define SEGWAL_KV_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kv/kv_store.h"
#include "wal/segmented_wal.h"  // WalStats

namespace segwal {
namespace kv {

// What the command asks of the connection once its reply is sent.
enum class AfterReply {
  kNothing,
  kClose,     // QUIT
  kShutdown,  // SHUTDOWN: no reply; the server shuts down cleanly
};

// A reply that is known later (segkv's cluster mode, kv/cluster.h: once raft
// committed and applied the write, or a barrier confirmed the leader). The
// handler calls Complete once, on the loop thread; the server sends the
// reply, in command order, once it is complete.
struct DeferredReply {
  void Complete(std::string reply_bytes) {
    bytes = std::move(reply_bytes);
    done = true;
    if (on_done) on_done();
  }
  bool done = false;
  std::string bytes;
  // Set by the server while a connection waits for it (cleared when the
  // connection closes); loop thread only.
  std::function<void()> on_done;
};

struct CommandReply {
  std::string bytes;  // one RESP value ("" for SHUTDOWN)
  uint64_t lsn = 0;   // send once durable_lsn() >= lsn
  AfterReply after = AfterReply::kNothing;
  // Non-null: `bytes` is ignored, the reply is deferred->bytes once done.
  std::shared_ptr<DeferredReply> deferred;
};

// What runs commands when it is not the single node's CommandExecutor over a
// KvStore (the cluster mode, kv/cluster.h). Loop thread only.
class CommandHandler {
 public:
  virtual ~CommandHandler() = default;
  // REQUIRES: !args.empty().
  virtual CommandReply Execute(const std::vector<std::string>& args) = 0;
  // The server closed its last connection while shutting down: close every
  // handle the handler has on the server's loop (Server::Run returns once
  // they are closed). Called once.
  virtual void Shutdown() = 0;
};

// The server's own figures, for INFO. Owned by the server; read by INFO.
struct ServerCounters {
  std::string bind;
  int port = 0;
  int64_t start_unix_micros = 0;
  uint64_t connected_clients = 0;
  uint64_t total_connections_received = 0;
  uint64_t total_commands_processed = 0;
  uint64_t rejected_protocol_errors = 0;
  uint64_t replies_queued = 0;  // not sent yet (most wait for durability)
  uint64_t durable_lsn_seen = 0;  // the loop's view (replies sent up to it)
  std::string sync_failure;       // "" while the syncer is healthy
};

// The INFO sections every segkv mode shares (server, clients, stats), each
// only if `all` or `section` names it, each ending in a blank line.
// redis_mode: "standalone" or "cluster".
std::string CommonInfoSections(const ServerCounters& c,
                               absl::string_view redis_mode,
                               const std::string& section, bool all);
// INFO's "# Segwal" section (the log's WalStats) and "# Keyspace" section,
// each ending in a blank line; the single node and the cluster print both.
std::string SegwalInfoSection(const WalStats& w);
std::string KeyspaceInfoSection(uint64_t keys);

// Redis's arity rule, as the command tables write it: arity > 0 means exactly
// `arity` arguments, arity < 0 at least -arity (the name counts as one).
// InvalidArgument with the text of Redis's reply, "wrong number of arguments
// for '<name>' command", when `argc` breaks it.
absl::Status CheckArity(absl::string_view name, int arity, size_t argc);

// The Mutation a write command asks for, the one reading of write arguments
// for both segkv modes. `name` is the command's name in lower case: "set",
// "del", "mset", "incr", "incrby" or "flushall"; `args` is the whole command
// (name first), of an arity CheckArity accepted. InvalidArgument, with the
// text of Redis's error reply, for arguments segkv refuses: a SET option, an
// odd number of MSET arguments, an INCRBY delta that is not an integer, a
// FLUSHALL mode other than ASYNC or SYNC. The mutation's keys and values view
// `args`.
absl::StatusOr<Mutation> ParseWriteCommand(absl::string_view name,
                                           const std::vector<std::string>& args);

// True if the reply to a write of `op` is the WriteResult's integer (DEL,
// INCR, INCRBY), false if it is +OK.
bool RepliesWithInteger(KvOp op);

class CommandExecutor {
 public:
  // REQUIRES: store and counters outlive the executor. store may be null
  // when only the commands that do not touch it are executed (PING, ECHO,
  // SELECT, CONFIG, COMMAND, QUIT, SHUTDOWN, and errors): the cluster mode
  // runs those through an executor without a store.
  CommandExecutor(KvStore* store, const ServerCounters* counters);
  CommandExecutor(const CommandExecutor&) = delete;
  CommandExecutor& operator=(const CommandExecutor&) = delete;

  // REQUIRES: !args.empty().
  CommandReply Execute(const std::vector<std::string>& args);

  // The INFO text for `section` ("" or "all": every section).
  std::string Info(const std::string& section) const;

 private:
  KvStore* const store_;
  const ServerCounters* const counters_;
};

// The reply to a write refused because the WAL failed: names the cause.
std::string WalFailureError(const std::string& cause);

}  // namespace kv
}  // namespace segwal

#endif  // SEGWAL_KV_COMMANDS_H_
