// CommandExecutor (kv/commands.h): the command table, one handler per command,
// and INFO.

#include "kv/commands.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "kv/resp.h"

namespace segwal {
namespace kv {

namespace {

using Args = std::vector<std::string>;

struct Context {
  const char* name;  // the command's, lower case
  KvStore* store;
  const ServerCounters* counters;
  const CommandExecutor* executor;
};

using Handler = CommandReply (*)(const Context& ctx, const Args& args);

// One row of the command table, in the shape COMMAND reports (Redis 7).
struct CommandSpec {
  const char* name;  // lower case
  int arity;         // > 0: exactly; < 0: at least -arity (name included)
  const char* flags;  // space-separated, as COMMAND lists them
  int first_key, last_key, key_step;
  Handler handler;
  const char* group;    // COMMAND DOCS, which redis-cli's "help" prints
  const char* summary;
};

CommandReply Reply(std::string bytes, uint64_t lsn = 0) {
  CommandReply r;
  r.bytes = std::move(bytes);
  r.lsn = lsn;
  return r;
}

CommandReply Error(absl::string_view message) {
  std::string out;
  AppendError(&out, message);
  return Reply(std::move(out));
}

CommandReply Ok(uint64_t lsn = 0) { return Reply("+OK\r\n", lsn); }

CommandReply Integer(int64_t v, uint64_t lsn = 0) {
  std::string out;
  AppendInteger(&out, v);
  return Reply(std::move(out), lsn);
}

std::vector<absl::string_view> Views(const Args& args, size_t from) {
  return std::vector<absl::string_view>(args.begin() + from, args.end());
}

// A failed Submit as Redis would word it.
CommandReply SubmitError(const absl::Status& s) {
  if (absl::IsFailedPrecondition(s) || absl::IsOutOfRange(s) ||
      absl::IsInvalidArgument(s)) {
    return Error(s.message());
  }
  return Error(WalFailureError(s.ToString()));
}

CommandReply Write(const Context& ctx, const Mutation& m, bool integer_reply) {
  absl::StatusOr<WriteResult> w = ctx.store->Submit(m);
  if (!w.ok()) return SubmitError(w.status());
  return integer_reply ? Integer(w->integer, w->lsn) : Ok(w->lsn);
}

// ---- Handlers.

CommandReply Ping(const Context&, const Args& args) {
  if (args.size() > 2) return Error("wrong number of arguments for 'ping' command");
  if (args.size() == 1) return Reply("+PONG\r\n");
  std::string out;
  AppendBulk(&out, args[1]);
  return Reply(std::move(out));
}

CommandReply Echo(const Context&, const Args& args) {
  std::string out;
  AppendBulk(&out, args[1]);
  return Reply(std::move(out));
}

// SET, DEL, MSET, INCR, INCRBY, FLUSHALL.
CommandReply WriteCommand(const Context& ctx, const Args& args) {
  absl::StatusOr<Mutation> m = ParseWriteCommand(ctx.name, args);
  if (!m.ok()) return Error(m.status().message());
  return Write(ctx, *m, RepliesWithInteger(m->op));
}

CommandReply Get(const Context& ctx, const Args& args) {
  ReadResult r = ctx.store->Lookup(args[1]);
  std::string out;
  if (r.values.empty() || !r.values[0].has_value()) {
    AppendNullBulk(&out);
  } else {
    AppendBulk(&out, *r.values[0]);
  }
  return Reply(std::move(out), r.depends_on_lsn);
}

CommandReply MGet(const Context& ctx, const Args& args) {
  ReadResult r = ctx.store->MultiLookup(Views(args, 1));
  std::string out;
  AppendArrayHeader(&out, r.values.size());
  for (const auto& v : r.values) {
    if (v.has_value()) {
      AppendBulk(&out, *v);
    } else {
      AppendNullBulk(&out);
    }
  }
  return Reply(std::move(out), r.depends_on_lsn);
}

CommandReply Exists(const Context& ctx, const Args& args) {
  ReadResult r = ctx.store->Exists(Views(args, 1));
  return Integer(r.integer, r.depends_on_lsn);
}

CommandReply DbSize(const Context& ctx, const Args&) {
  ReadResult r = ctx.store->DbSize();
  return Integer(r.integer, r.depends_on_lsn);
}

CommandReply Keys(const Context& ctx, const Args& args) {
  ReadResult r = ctx.store->Keys(args[1]);
  std::string out;
  AppendArrayHeader(&out, r.keys.size());
  for (const std::string& k : r.keys) AppendBulk(&out, k);
  return Reply(std::move(out), r.depends_on_lsn);
}

CommandReply Save(const Context& ctx, const Args&) {
  absl::StatusOr<CheckpointInfo> c = ctx.store->Checkpoint();
  if (!c.ok()) return Error(absl::StrCat("checkpoint failed: ", c.status().ToString()));
  return Ok();
}

CommandReply BgSave(const Context& ctx, const Args& args) {
  if (args.size() > 2 || (args.size() == 2 &&
                          absl::AsciiStrToLower(args[1]) != "schedule")) {
    return Error("syntax error");
  }
  absl::Status s = ctx.store->StartBackgroundCheckpoint();
  if (absl::IsFailedPrecondition(s)) {
    return Error("Background save already in progress");
  }
  if (!s.ok()) return Error(absl::StrCat("checkpoint failed: ", s.ToString()));
  return Reply("+Background saving started\r\n");
}

CommandReply InfoCommand(const Context& ctx, const Args& args) {
  if (args.size() > 2) return Error("syntax error");
  std::string out;
  AppendBulk(&out, ctx.executor->Info(args.size() == 2 ? args[1] : ""));
  return Reply(std::move(out));
}

CommandReply Select(const Context&, const Args& args) {
  if (args[1] == "0") return Ok();
  return Error("DB index is out of range (segkv has one database)");
}

CommandReply Config(const Context&, const Args& args);
CommandReply Command(const Context& ctx, const Args& args);

CommandReply Quit(const Context&, const Args&) {
  CommandReply r = Ok();
  r.after = AfterReply::kClose;
  return r;
}

CommandReply Shutdown(const Context&, const Args&) {
  CommandReply r;
  r.after = AfterReply::kShutdown;
  return r;
}

const CommandSpec kCommands[] = {
    {"ping", -1, "fast stale", 0, 0, 0, Ping, "connection",
     "Ping the server"},
    {"echo", 2, "fast stale", 0, 0, 0, Echo, "connection",
     "Echo the given string"},
    {"set", -3, "write denyoom", 1, 1, 1, WriteCommand, "string",
     "Set the string value of a key (durable before the reply)"},
    {"get", 2, "readonly fast", 1, 1, 1, Get, "string",
     "Get the value of a key"},
    {"del", -2, "write", 1, -1, 1, WriteCommand, "generic",
     "Delete keys"},
    {"exists", -2, "readonly fast", 1, -1, 1, Exists, "generic",
     "Determine how many of the keys exist"},
    {"mset", -3, "write denyoom", 1, -1, 2, WriteCommand, "string",
     "Set several keys atomically"},
    {"mget", -2, "readonly fast", 1, -1, 1, MGet, "string",
     "Get the values of all the given keys"},
    {"incr", 2, "write denyoom fast", 1, 1, 1, WriteCommand, "string",
     "Increment the integer value of a key by one"},
    {"incrby", 3, "write denyoom fast", 1, 1, 1, WriteCommand, "string",
     "Increment the integer value of a key by the given amount"},
    {"dbsize", 1, "readonly fast", 0, 0, 0, DbSize, "server",
     "Return the number of keys"},
    {"keys", 2, "readonly", 0, 0, 0, Keys, "generic",
     "Find all keys matching the given pattern"},
    {"flushall", -1, "write", 0, 0, 0, WriteCommand, "server",
     "Remove all keys"},
    {"save", 1, "admin noscript", 0, 0, 0, Save, "server",
     "Take a checkpoint now and truncate the log behind the previous one"},
    {"bgsave", -1, "admin noscript", 0, 0, 0, BgSave, "server",
     "Take a checkpoint in the background"},
    {"info", -1, "loading stale", 0, 0, 0, InfoCommand, "server",
     "Information and statistics about the server, the store and its WAL"},
    {"select", 2, "loading stale fast", 0, 0, 0, Select, "connection",
     "Select database 0 (the only one)"},
    {"config", -2, "admin loading stale", 0, 0, 0, Config, "server",
     "CONFIG GET of a few parameters"},
    {"command", -1, "loading stale", 0, 0, 0, Command, "server",
     "Details about the commands"},
    {"quit", -1, "allow_busy fast", 0, 0, 0, Quit, "connection",
     "Close the connection"},
    {"shutdown", -1, "admin loading stale", 0, 0, 0, Shutdown, "server",
     "Finish in-flight writes, then stop the server"},
};

const CommandSpec* FindCommand(const std::string& lower_name) {
  for (const CommandSpec& c : kCommands) {
    if (lower_name == c.name) return &c;
  }
  return nullptr;
}

// One COMMAND entry: name, arity, flags, first key, last key, step, ACL
// categories, tips, key specs, subcommands (the last four empty).
void AppendCommandEntry(std::string* out, const CommandSpec& c) {
  AppendArrayHeader(out, 10);
  AppendBulk(out, c.name);
  AppendInteger(out, c.arity);
  std::vector<absl::string_view> flags = absl::StrSplit(c.flags, ' ');
  AppendArrayHeader(out, flags.size());
  for (absl::string_view f : flags) AppendSimpleString(out, f);
  AppendInteger(out, c.first_key);
  AppendInteger(out, c.last_key);
  AppendInteger(out, c.key_step);
  for (int i = 0; i < 4; ++i) AppendArrayHeader(out, 0);
}

CommandReply Command(const Context&, const Args& args) {
  std::string out;
  const size_t n = sizeof(kCommands) / sizeof(kCommands[0]);
  if (args.size() == 1) {
    AppendArrayHeader(&out, n);
    for (const CommandSpec& c : kCommands) AppendCommandEntry(&out, c);
    return Reply(std::move(out));
  }
  const std::string sub = absl::AsciiStrToLower(args[1]);
  if (sub == "count" && args.size() == 2) return Integer(static_cast<int64_t>(n));
  if (sub == "info" || sub == "docs") {
    // INFO: one entry (or nil) per name asked, all without names. DOCS: a map
    // (flattened in RESP2) from name to its doc: summary, group, no arguments.
    std::vector<const CommandSpec*> specs;
    if (args.size() == 2) {
      for (const CommandSpec& c : kCommands) specs.push_back(&c);
    } else {
      for (size_t i = 2; i < args.size(); ++i) {
        specs.push_back(FindCommand(absl::AsciiStrToLower(args[i])));
      }
    }
    if (sub == "info") {
      AppendArrayHeader(&out, specs.size());
      for (const CommandSpec* c : specs) {
        if (c == nullptr) {
          out.append("*-1\r\n");
        } else {
          AppendCommandEntry(&out, *c);
        }
      }
    } else {
      size_t found = 0;
      for (const CommandSpec* c : specs) found += c != nullptr;
      AppendArrayHeader(&out, 2 * found);
      for (const CommandSpec* c : specs) {
        if (c == nullptr) continue;
        AppendBulk(&out, c->name);
        AppendArrayHeader(&out, 10);
        AppendBulk(&out, "summary");
        AppendBulk(&out, c->summary);
        AppendBulk(&out, "since");
        AppendBulk(&out, "1.0.0");
        AppendBulk(&out, "group");
        AppendBulk(&out, c->group);
        AppendBulk(&out, "complexity");
        AppendBulk(&out, "O(N)");
        AppendBulk(&out, "arguments");
        AppendArrayHeader(&out, 0);
      }
    }
    return Reply(std::move(out));
  }
  return Error(absl::StrCat("unknown subcommand '", args[1].substr(0, 128),
                            "'. Try COMMAND HELP."));
}

// CONFIG GET: the few parameters clients ask about (redis-benchmark reads
// "save" and "appendonly"); CONFIG SET and RESETSTAT are refused.
CommandReply Config(const Context&, const Args& args) {
  const std::string sub = absl::AsciiStrToLower(args[1]);
  if (sub != "get" || args.size() < 3) {
    return Error(absl::StrCat("unknown subcommand or wrong number of arguments for '",
                              args[1].substr(0, 128), "'. segkv supports CONFIG GET only"));
  }
  static const std::pair<const char*, const char*> kParams[] = {
      {"save", ""}, {"appendonly", "yes"}, {"appendfsync", "always"},
      {"databases", "1"}};
  std::vector<std::pair<std::string, std::string>> found;
  for (size_t i = 2; i < args.size(); ++i) {
    for (const auto& param : kParams) {
      const char* name = param.first;  // (clang 14 cannot capture a structured binding)
      if (GlobMatch(absl::AsciiStrToLower(args[i]), name) &&
          std::none_of(found.begin(), found.end(),
                       [&](const auto& f) { return f.first == name; })) {
        found.emplace_back(name, param.second);
      }
    }
  }
  std::string out;
  AppendArrayHeader(&out, 2 * found.size());
  for (const auto& [name, value] : found) {
    AppendBulk(&out, name);
    AppendBulk(&out, value);
  }
  return Reply(std::move(out));
}

}  // namespace

absl::Status CheckArity(absl::string_view name, int arity, size_t argc) {
  const int n = static_cast<int>(argc);
  if ((arity > 0 && n != arity) || (arity < 0 && n < -arity)) {
    return absl::InvalidArgumentError(
        absl::StrCat("wrong number of arguments for '", name, "' command"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Mutation> ParseWriteCommand(
    absl::string_view name, const std::vector<std::string>& args) {
  Mutation m;
  if (name == "set") {
    if (args.size() > 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("SET option '", args[3],
                       "' is not supported by segkv (plain SET only)"));
    }
    m.op = KvOp::kSet;
    m.keys = {args[1]};
    m.values = {args[2]};
  } else if (name == "del") {
    m.op = KvOp::kDel;
    m.keys = Views(args, 1);
  } else if (name == "mset") {
    if (args.size() % 2 != 1) {
      return absl::InvalidArgumentError(
          "wrong number of arguments for 'mset' command");
    }
    m.op = KvOp::kMSet;
    for (size_t i = 1; i < args.size(); i += 2) {
      m.keys.push_back(args[i]);
      m.values.push_back(args[i + 1]);
    }
  } else if (name == "incr" || name == "incrby") {
    m.op = KvOp::kIncrBy;
    m.keys = {args[1]};
    m.delta = 1;
    // The delta follows the same rule as the stored value (Redis's
    // string2ll): "5 ", " 5", "+5", "05" and "-0" are not integers.
    if (name == "incrby" && !ParseRedisInt64(args[2], &m.delta)) {
      return absl::InvalidArgumentError(
          "value is not an integer or out of range");
    }
  } else if (name == "flushall") {
    for (size_t i = 1; i < args.size(); ++i) {
      const std::string mode = absl::AsciiStrToLower(args[i]);
      if (mode != "async" && mode != "sync") {
        return absl::InvalidArgumentError("syntax error");
      }
    }
    m.op = KvOp::kFlushAll;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("'", name, "' is not a write command"));
  }
  return m;
}

bool RepliesWithInteger(KvOp op) {
  return op == KvOp::kDel || op == KvOp::kIncrBy;
}

std::string WalFailureError(const std::string& cause) {
  return absl::StrCat("segkv: the WAL failed, writes are refused until restart: ",
                      cause);
}

CommandExecutor::CommandExecutor(KvStore* store, const ServerCounters* counters)
    : store_(store), counters_(counters) {}

CommandReply CommandExecutor::Execute(const std::vector<std::string>& args) {
  const std::string name = absl::AsciiStrToLower(args[0]);
  const CommandSpec* spec = FindCommand(name);
  if (spec == nullptr) {
    // Redis: the name and the first arguments, quoted, within 128 bytes.
    std::string with;
    for (size_t i = 1; i < args.size() && with.size() < 128; ++i) {
      absl::StrAppend(&with, "'", args[i].substr(0, 128 - with.size()), "' ");
    }
    return Error(absl::StrCat("unknown command '", args[0].substr(0, 128),
                              "', with args beginning with: ", with));
  }
  if (absl::Status s = CheckArity(spec->name, spec->arity, args.size());
      !s.ok()) {
    return Error(s.message());
  }
  Context ctx{spec->name, store_, counters_, this};
  return spec->handler(ctx, args);
}

std::string CommonInfoSections(const ServerCounters& c,
                               absl::string_view redis_mode,
                               const std::string& section, bool all) {
  std::string out;
  auto line = [&out](absl::string_view key, const auto& value) {
    absl::StrAppend(&out, key, ":", value, "\r\n");
  };
  if (all || section == "server") {
    out.append("# Server\r\n");
    line("redis_version", "7.0.0");
    line("segkv_version", "0.1");
    line("redis_mode", redis_mode);
    line("process_id", static_cast<int64_t>(getpid()));
    line("tcp_port", c.port);
    line("bind", c.bind);
    line("uptime_in_seconds",
         (absl::ToUnixMicros(absl::Now()) - c.start_unix_micros) / 1000000);
    out.append("\r\n");
  }
  if (all || section == "clients") {
    out.append("# Clients\r\n");
    line("connected_clients", c.connected_clients);
    line("replies_queued", c.replies_queued);
    out.append("\r\n");
  }
  if (all || section == "stats") {
    out.append("# Stats\r\n");
    line("total_connections_received", c.total_connections_received);
    line("total_commands_processed", c.total_commands_processed);
    line("protocol_errors", c.rejected_protocol_errors);
    out.append("\r\n");
  }
  return out;
}

std::string SegwalInfoSection(const WalStats& w) {
  std::string out;
  auto line = [&out](absl::string_view key, const auto& value) {
    absl::StrAppend(&out, key, ":", value, "\r\n");
  };
  out.append("# Segwal\r\n");
  line("wal_appends", w.appends);
  line("wal_bytes_appended", w.bytes_appended);
  line("wal_bytes_framed", w.bytes_framed);
  line("wal_bytes_written", w.bytes_written);
  line("wal_sync_requests", w.sync_requests);
  line("wal_syncs", w.syncs);
  line("wal_records_per_sync_avg", absl::StrFormat("%.2f", w.records_per_sync.Average()));
  line("wal_records_per_sync_max", w.records_per_sync.max);
  line("wal_sync_latency_micros_avg",
       absl::StrFormat("%.1f", w.sync_latency_micros.Average()));
  line("wal_sync_latency_micros_p99", w.sync_latency_micros.Percentile(99));
  line("wal_sync_latency_micros_max", w.sync_latency_micros.max);
  line("wal_rollovers", w.rollovers);
  line("wal_segments_deleted", w.segments_deleted);
  line("wal_spares_zero_filled", w.spares_zero_filled);
  line("wal_spares_recycled", w.spares_recycled);
  line("wal_segments_from_spares", w.segments_from_spares);
  line("wal_spare_failures", w.spare_failures);
  line("wal_padding_bytes", w.padding_bytes);
  line("wal_direct_io", w.direct_io ? std::string("on")
                        : w.direct_io_fallback.empty()
                            ? std::string("off")
                            : absl::StrCat("off (", w.direct_io_fallback, ")"));
  line("wal_segments_on_disk", w.segments_on_disk);
  line("wal_bytes_on_disk", w.bytes_on_disk);
  line("wal_durable_lsn", w.durable_lsn);
  line("wal_poisoned", w.poisoned ? absl::StrCat("yes (", w.poisoned_reason, ")")
                                  : std::string("no"));
  out.append("\r\n");
  return out;
}

std::string KeyspaceInfoSection(uint64_t keys) {
  std::string out = "# Keyspace\r\n";
  if (keys > 0) absl::StrAppend(&out, "db0:keys=", keys, ",expires=0,avg_ttl=0\r\n");
  out.append("\r\n");
  return out;
}

std::string CommandExecutor::Info(const std::string& section_arg) const {
  const std::string section = absl::AsciiStrToLower(section_arg);
  const bool all = section.empty() || section == "all" ||
                   section == "default" || section == "everything";
  std::string out;
  auto want = [&](const char* name) { return all || section == name; };
  auto line = [&out](absl::string_view key, const auto& value) {
    absl::StrAppend(&out, key, ":", value, "\r\n");
  };
  const ServerCounters& c = *counters_;
  out.append(CommonInfoSections(c, "standalone", section, all));
  const KvStats st = store_->GetStats();
  if (want("persistence")) {
    const KvRecoveryReport& rr = store_->recovery_report();
    out.append("# Persistence\r\n");
    line("loading", 0);
    line("aof_enabled", 1);  // every write is logged and synced before its reply
    line("rdb_bgsave_in_progress", st.checkpoint_in_progress ? 1 : 0);
    line("writes", st.writes);
    line("last_applied_lsn", st.last_applied_lsn);
    line("durable_lsn", st.durable_lsn);
    line("server_durable_lsn", c.durable_lsn_seen);
    line("checkpoints", st.checkpoints);
    line("checkpoint_in_progress", st.checkpoint_in_progress ? 1 : 0);
    line("bytes_since_checkpoint", st.bytes_since_checkpoint);
    if (st.last_checkpoint.has_value()) {
      const CheckpointInfo& ck = *st.last_checkpoint;
      line("last_checkpoint_lsn", ck.lsn);
      line("last_checkpoint_keys", ck.keys);
      line("last_checkpoint_bytes", ck.bytes);
      line("last_checkpoint_pause_micros", ck.pause_micros);
      line("last_checkpoint_total_micros", ck.total_micros);
      line("last_checkpoint_log_segments_deleted", ck.log_segments_deleted);
    }
    line("last_bgsave_status", st.last_checkpoint_status.ok()
                                   ? std::string("ok")
                                   : st.last_checkpoint_status.ToString());
    line("poisoned", st.poisoned.ok() ? std::string("no") : st.poisoned.ToString());
    line("sync_failure", c.sync_failure.empty() ? std::string("none") : c.sync_failure);
    line("recovery_checkpoint", rr.checkpoint_path.empty() ? std::string("none")
                                                           : rr.checkpoint_path);
    line("recovery_checkpoint_lsn", rr.checkpoint_lsn);
    line("recovery_checkpoint_keys", rr.checkpoint_keys);
    line("recovery_rejected_checkpoints", rr.rejected_checkpoints.size());
    line("recovery_log_records_replayed", rr.log_records_replayed);
    line("recovery_last_lsn", rr.last_lsn);
    line("recovery_checkpoint_load_micros", rr.checkpoint_load_micros);
    line("recovery_log_replay_micros", rr.log_replay_micros);
    out.append("\r\n");
  }
  if (want("segwal")) {
    out.append(SegwalInfoSection(store_->wal().GetStats()));
  }
  if (want("keyspace")) out.append(KeyspaceInfoSection(st.keys));
  // Redis ends the text without the last blank line.
  if (out.size() >= 2) out.resize(out.size() - 2);
  return out;
}

}  // namespace kv
}  // namespace segwal
