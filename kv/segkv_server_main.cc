// segkv_server: serves a KvStore over RESP2 (kv/README.md).
//
//   segkv_server --dir=DIR [--port=6380] [--bind=127.0.0.1]
//                [--checkpoint_every_mb=64] [WAL flags: see --help]
//
// Cluster mode (kv/cluster.h, kv/README.md "Cluster mode"), with --raft_id:
//   segkv_server --dir=DIR --port=P --raft_id=N --raft_addr=HOST:RAFTPORT
//                --raft_peers=ID:HOST:RAFTPORT:CLIENTPORT,... (every member)
//                [--raft_snapshot_threshold=8192] [--raft_snapshot_trailing]
//
// Exit codes: 0 after a clean shutdown (SHUTDOWN, SIGTERM, SIGINT); 1 if the
// store cannot be opened or the port not bound; 2 for bad flags (one line on
// stderr).

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "env/env.h"
#include "gflags/gflags.h"
#include "kv/cluster.h"
#include "kv/cluster_config.h"
#include "kv/kv_store.h"
#include "kv/server.h"

DEFINE_string(dir, "", "Data directory (created if missing): wal/ and checkpoints/");
DEFINE_int32(port, 6380, "TCP port (0: any free port; the log line names it)");
DEFINE_string(bind, "127.0.0.1", "Address to listen on");
DEFINE_uint64(checkpoint_every_mb, 64,
              "Checkpoint in the background after this many MiB of log (0: only "
              "on SAVE/BGSAVE)");
DEFINE_uint64(max_value_size_mb, 16, "Largest value accepted (MiB)");
DEFINE_uint64(segment_size_mb, 64, "WAL segment target size (MiB)");
DEFINE_uint64(group_commit_wait_micros, 100,
              "After a sync, how long the WAL (and the server's syncer) waits for the "
              "writers it released to come back and share the next fsync");
DEFINE_bool(use_direct_io, false, "Write WAL segments with O_DIRECT");
DEFINE_bool(background_sealing, true, "Seal full WAL segments on a background thread");
DEFINE_string(compression, "none", "WAL record compression: none or snappy");
DEFINE_uint64(write_buffer_size_kb, 1024, "WAL write buffer (KiB)");
DEFINE_bool(preallocate_segments, true, "Preallocate WAL segment files");
// Cluster mode.
DEFINE_int64(raft_id, 0, "Cluster mode: this member's raft ID (0: single node)");
DEFINE_string(raft_addr, "",
              "Cluster mode: HOST:RAFTPORT this member's raft transport binds to "
              "(unauthenticated, no TLS: a private address); default: its "
              "--raft_peers entry");
DEFINE_string(raft_peers, "",
              "Cluster mode: every member, this one included, as "
              "ID:HOST:RAFTPORT:CLIENTPORT,...");
DEFINE_uint32(raft_snapshot_threshold, 8192,
              "Cluster mode: raft snapshots the state after this many entries");
DEFINE_uint32(raft_snapshot_trailing, 4096,
              "Cluster mode: entries kept in the log behind a snapshot (followers "
              "further behind get the snapshot)");
DEFINE_uint32(raft_election_timeout_ms, 1000, "Cluster mode: raft election timeout");
DEFINE_uint32(raft_heartbeat_ms, 100, "Cluster mode: raft heartbeat interval");

namespace {

[[noreturn]] void Die(int code, absl::string_view message) {
  fprintf(stderr, "segkv_server: %.*s\n", static_cast<int>(message.size()),
          message.data());
  exit(code);
}

// gflags exits 1 on a bad flag; segkv_server promises 2 and one line, so the
// command line is applied here, flag by flag, with SetCommandLineOption.
void ParseFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') {
      Die(2, absl::StrCat("unexpected argument '", arg, "' (flags are --name=value)"));
    }
    arg = arg.substr(arg[1] == '-' ? 2 : 1);
    if (arg == "help" || arg == "helpfull") {
      gflags::ShowUsageWithFlagsRestrict(argv[0], "segkv_server");
      exit(0);
    }
    std::string name = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      // --nofoo for a bool flag foo.
      if (!has_value && name.rfind("no", 0) == 0 &&
          gflags::GetCommandLineFlagInfo(name.substr(2).c_str(), &info) &&
          info.type == "bool") {
        name = name.substr(2);
        value = "false";
        has_value = true;
      } else {
        Die(2, absl::StrCat("unknown flag --", name, " (see --help)"));
      }
    }
    if (!has_value) {
      if (info.type == "bool") {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        Die(2, absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty()) {
      Die(2, absl::StrCat("bad value '", value, "' for --", name, " (", info.type, ")"));
    }
  }
}

// Cluster mode: no KvStore; the raft log (segwal) under <dir>/raft is the
// only log, the state is rebuilt from raft's snapshot and entries.
int RunCluster(const segwal::kv::KvStoreOptions& store_options,
               const segwal::kv::ServerOptions& server_options) {
  absl::StatusOr<segwal::kv::ClusterConfig> config = segwal::kv::ParseClusterConfig(
      FLAGS_raft_id, FLAGS_raft_addr, FLAGS_raft_peers);
  if (!config.ok()) Die(2, config.status().message());
  if (const segwal::kv::ClusterPeer* self = config->Find(config->self_id);
      self->client_port != FLAGS_port) {
    Die(2, absl::StrCat("--port: ", FLAGS_port, " is not ", self->client_port,
                        ", member ", self->id, "'s CLIENTPORT in --raft_peers"));
  }
  if (FLAGS_raft_snapshot_threshold == 0) Die(2, "--raft_snapshot_threshold must be positive");
  segwal::kv::ClusterOptions options;
  options.config = *std::move(config);
  options.dir = FLAGS_dir;
  options.wal = store_options.wal;
  options.snapshot_threshold = FLAGS_raft_snapshot_threshold;
  options.snapshot_trailing = FLAGS_raft_snapshot_trailing;
  options.election_timeout_ms = FLAGS_raft_election_timeout_ms;
  options.heartbeat_timeout_ms = FLAGS_raft_heartbeat_ms;
  options.max_value_size = store_options.max_value_size;
  // Durable in its parent before the raft store writes under it
  // (docs/DURABILITY.md, section 1, `Open`).
  if (absl::Status s = segwal::CreateDirsDurably(segwal::Env::Default(), FLAGS_dir); !s.ok()) {
    Die(1, absl::StrCat("cannot create ", FLAGS_dir, ": ", s.ToString()));
  }
  segwal::kv::ClusterNode node(options);
  int code = 0;
  {
    segwal::kv::Server server(&node, server_options);
    if (absl::Status s = node.Start(server.loop(), &server.counters()); !s.ok()) {
      Die(1, absl::StrCat("cannot start raft in ", FLAGS_dir, ": ", s.ToString()));
    }
    fprintf(stderr, "segkv_server: raft member %llu at %s, %s\n",
            static_cast<unsigned long long>(options.config.self_id),
            options.config.raft_address.c_str(),
            node.bootstrapped() ? "bootstrapped the configuration"
                                : "recovering from its directory");
    if (absl::Status s = server.Listen(); !s.ok()) Die(1, s.message());
    fprintf(stderr, "segkv_server: listening on %s:%d\n", FLAGS_bind.c_str(), server.port());
    if (absl::Status s = server.Run(); !s.ok()) {
      fprintf(stderr, "segkv_server: %s\n", s.ToString().c_str());
      code = 1;
    }
  }
  fprintf(stderr, "segkv_server: shut down cleanly\n");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using segwal::kv::KvStore;
  using segwal::kv::KvStoreOptions;
  gflags::SetUsageMessage(
      "segkv_server --dir=DIR [--port=6380] [--bind=127.0.0.1] "
      "[--checkpoint_every_mb=64] [WAL flags]\nServes a segkv store over the "
      "Redis protocol (RESP2).");
  ParseFlags(argc, argv);
  if (FLAGS_dir.empty()) Die(2, "--dir is required");
  if (FLAGS_port < 0 || FLAGS_port > 65535) Die(2, "--port must be in [0, 65535]");
  if (FLAGS_segment_size_mb == 0) Die(2, "--segment_size_mb must be positive");

  KvStoreOptions options;
  options.dir = FLAGS_dir;
  options.checkpoint_every_bytes = FLAGS_checkpoint_every_mb << 20;
  options.max_value_size = FLAGS_max_value_size_mb << 20;
  options.wal.segment_target_size = FLAGS_segment_size_mb << 20;
  options.wal.group_commit_wait_micros = FLAGS_group_commit_wait_micros;
  options.wal.use_direct_io = FLAGS_use_direct_io;
  options.wal.background_sealing = FLAGS_background_sealing;
  options.wal.write_buffer_size = FLAGS_write_buffer_size_kb << 10;
  options.wal.preallocate_segments = FLAGS_preallocate_segments;
  if (FLAGS_compression == "snappy") {
    options.wal.compression = segwal::Compression::kSnappy;
  } else if (FLAGS_compression != "none") {
    Die(2, absl::StrCat("--compression must be none or snappy, not '",
                        FLAGS_compression, "'"));
  }
  // A request may carry a value of max_value_size, plus its key and slack.
  segwal::kv::ServerOptions server_options;
  server_options.bind = FLAGS_bind;
  server_options.port = FLAGS_port;
  server_options.group_commit_wait_micros = FLAGS_group_commit_wait_micros;
  server_options.limits.max_bulk_bytes = options.max_value_size + 4096;
  server_options.limits.max_command_bytes =
      std::max<uint64_t>(64 << 20, 4 * options.max_value_size);

  signal(SIGPIPE, SIG_IGN);
  if (FLAGS_raft_id != 0 || !FLAGS_raft_peers.empty() || !FLAGS_raft_addr.empty()) {
    return RunCluster(options, server_options);
  }
  auto store = KvStore::Open(options);
  if (!store.ok()) {
    Die(1, absl::StrCat("cannot open ", FLAGS_dir, ": ", store.status().ToString()));
  }
  {
    const segwal::kv::KvRecoveryReport& r = (*store)->recovery_report();
    fprintf(stderr,
            "segkv_server: opened %s: checkpoint lsn %llu (%llu keys), %llu log "
            "records replayed, last lsn %llu\n",
            FLAGS_dir.c_str(), static_cast<unsigned long long>(r.checkpoint_lsn),
            static_cast<unsigned long long>(r.checkpoint_keys),
            static_cast<unsigned long long>(r.log_records_replayed),
            static_cast<unsigned long long>(r.last_lsn));
  }
  int code = 0;
  {
    segwal::kv::Server server(store->get(), server_options);
    if (absl::Status s = server.Listen(); !s.ok()) Die(1, s.message());
    fprintf(stderr, "segkv_server: listening on %s:%d\n", FLAGS_bind.c_str(),
            server.port());
    if (absl::Status s = server.Run(); !s.ok()) {
      fprintf(stderr, "segkv_server: %s\n", s.ToString().c_str());
      code = 1;
    }
  }
  store->reset();  // closes the WAL; every acknowledged write is durable already
  fprintf(stderr, "segkv_server: shut down cleanly\n");
  return code;
}
