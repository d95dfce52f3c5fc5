// ClusterNode (kv/cluster.h): raft start-up, the command table of the
// cluster mode, deferred writes and barrier-confirmed reads.

#include "kv/cluster.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kv/cluster_command.h"
#include "kv/resp.h"

namespace segwal {
namespace kv {

struct ClusterNode::ApplyRequest {
  struct raft_apply req{};
  ClusterNode* node = nullptr;
  std::shared_ptr<DeferredReply> reply;
  KvOp op = KvOp::kSet;  // what the reply says (RepliesWithInteger)
};

struct ClusterNode::ReadRequest {
  std::vector<std::string> args;
  std::shared_ptr<DeferredReply> reply;
};

struct ClusterNode::BarrierRequest {
  struct raft_barrier req{};
  ClusterNode* node = nullptr;
  bool leader_barrier = false;  // the first of a term (else: for reads)
  uint64_t term = 0;
  std::vector<ReadRequest> reads;
};

namespace {

std::string ErrorBytes(absl::string_view message) {
  std::string out;
  AppendError(&out, message);
  return out;
}

// An error with its own code (MOVED, TRYAGAIN) instead of ERR.
std::string CodedError(absl::string_view code_and_text) {
  std::string out;
  AppendError(&out, absl::StrCat("-", code_and_text));
  return out;
}

CommandReply ReplyOf(std::string bytes) {
  CommandReply r;
  r.bytes = std::move(bytes);
  return r;
}

const char* StateName(int state) {
  switch (state) {
    case RAFT_LEADER:
      return "leader";
    case RAFT_FOLLOWER:
      return "follower";
    case RAFT_CANDIDATE:
      return "candidate";
    default:
      return "unavailable";
  }
}

// The commands this file answers, with Redis's arity (> 0: exactly; < 0: at
// least). Everything else goes to the storeless CommandExecutor.
struct ClusterCommand {
  const char* name;
  int arity;
};
constexpr ClusterCommand kClusterCommands[] = {
    {"set", -3},    {"del", -2},    {"mset", -3},     {"incr", 2},   {"incrby", 3},
    {"flushall", -1}, {"get", 2},   {"mget", -2},     {"exists", -2}, {"dbsize", 1},
    {"keys", 2},    {"role", 1},    {"info", -1},     {"debug", -2}, {"save", 1},
    {"bgsave", -1},
};

}  // namespace

ClusterNode::ClusterNode(const ClusterOptions& options) : options_(options) {
  fsm_.set_raft(&raft_);
}

ClusterNode::~ClusterNode() = default;

absl::Status ClusterNode::Start(uv_loop_t* loop, const ServerCounters* counters) {
  counters_ = counters;
  executor_ = std::make_unique<CommandExecutor>(nullptr, counters);
  raftstore::SegwalRaftIoOptions o;
  o.store.dir = options_.dir + "/raft";
  o.store.wal = options_.wal;
  o.loop = loop;
  absl::StatusOr<std::unique_ptr<raftstore::SegwalRaftIo>> io = raftstore::NewSegwalRaftIo(o);
  if (!io.ok()) return io.status();
  io_ = std::move(*io);
  const ClusterConfig& c = options_.config;
  int rv = raft_init(&raft_, io_->io(), fsm_.fsm(), c.self_id, c.raft_address.c_str());
  if (rv != 0) {
    return absl::InternalError(absl::StrCat("raft_init: ", raft_strerror(rv)));
  }
  raft_.data = this;
  raft_set_election_timeout(&raft_, options_.election_timeout_ms);
  raft_set_heartbeat_timeout(&raft_, options_.heartbeat_timeout_ms);
  raft_set_snapshot_threshold(&raft_, options_.snapshot_threshold);
  raft_set_snapshot_trailing(&raft_, options_.snapshot_trailing);

  // The first start (an empty store) writes the configuration; later starts
  // find it (RAFT_CANTBOOTSTRAP) and recover from their own directory.
  raft_configuration conf;
  raft_configuration_init(&conf);
  for (const ClusterPeer& p : c.peers) {
    rv = raft_configuration_add(&conf, p.id, p.raft_address().c_str(), RAFT_VOTER);
    if (rv != 0) break;
  }
  if (rv == 0) rv = raft_bootstrap(&raft_, &conf);
  raft_configuration_close(&conf);
  if (rv == 0) {
    bootstrapped_ = true;
  } else if (rv != RAFT_CANTBOOTSTRAP) {
    return absl::InternalError(absl::StrCat("raft_bootstrap: ", raft_strerror(rv), ": ",
                                            raft_errmsg(&raft_)));
  }
  rv = raft_start(&raft_);
  if (rv != 0) {
    return absl::InternalError(
        absl::StrCat("raft_start: ", raft_strerror(rv), ": ", raft_errmsg(&raft_)));
  }
  started_ = true;
  uv_timer_init(loop, &tick_);
  tick_.data = this;
  uv_timer_start(&tick_, OnTick, 10, 10);
  return absl::OkStatus();
}

void ClusterNode::Shutdown() {
  if (!started_ || shutting_down_) return;
  shutting_down_ = true;
  uv_timer_stop(&tick_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  // Requests still pending get their callbacks (an error status) from
  // raft_close; their replies have no connection left to go to.
  raft_close(&raft_, OnClosed);
}

void ClusterNode::OnClosed(raft* r) {
  (void)r;  // nothing more to free: io_ goes with the node
}

void ClusterNode::OnTick(uv_timer_t* timer) {
  static_cast<ClusterNode*>(timer->data)->CheckLeadership();
}

// ---------------------------------------------------------------- leadership

bool ClusterNode::LeaderReady() {
  return raft_state(&raft_) == RAFT_LEADER && ready_term_ == raft_.current_term;
}

void ClusterNode::CheckLeadership() {
  if (shutting_down_) return;
  const int state = raft_state(&raft_);
  if (state != static_cast<int>(last_logged_state_) || raft_.current_term != last_logged_term_) {
    raft_id id = 0;
    const char* address = nullptr;
    raft_leader(&raft_, &id, &address);
    fprintf(stderr, "segkv_server: raft: %s in term %llu (leader %llu)\n", StateName(state),
            static_cast<unsigned long long>(raft_.current_term),
            static_cast<unsigned long long>(id));
    last_logged_state_ = static_cast<unsigned>(state);
    last_logged_term_ = raft_.current_term;
  }
  if (state != RAFT_LEADER) return;
  const uint64_t term = raft_.current_term;
  if (ready_term_ == term || leader_barrier_term_ == term) return;
  // A barrier of the new term, before serving: it commits every earlier
  // entry with it, so the state is current once it is applied (and
  // SegwalRaftIo's commit guard against libraft 0.15's Figure-8 bug,
  // raft/commit_guard.h, needs a current-term entry for commit to advance).
  auto* b = new BarrierRequest;
  b->req.data = b;
  b->node = this;
  b->leader_barrier = true;
  b->term = term;
  if (raft_barrier(&raft_, &b->req, OnBarrier) != 0) {
    delete b;  // retried at the next tick while still leader
    return;
  }
  leader_barrier_term_ = term;
}

std::string ClusterNode::Redirect() {
  if (raft_state(&raft_) == RAFT_LEADER) {
    return CodedError(absl::StrCat("TRYAGAIN the leader of term ", raft_.current_term,
                                   " is not serving yet (its first barrier is not applied)"));
  }
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&raft_, &id, &address);
  const ClusterPeer* leader = id == 0 ? nullptr : options_.config.Find(id);
  if (leader == nullptr || id == options_.config.self_id) {
    return CodedError("TRYAGAIN no leader is known (an election is in progress)");
  }
  return CodedError(MovedError(*leader));
}

// ---------------------------------------------------------------- writes

CommandReply ClusterNode::SubmitWrite(const Mutation& m) {
  CheckLeadership();
  if (!LeaderReady()) return ReplyOf(Redirect());
  if (absl::Status s = ValidateMutation(m, options_.max_key_size, options_.max_value_size);
      !s.ok()) {
    return ReplyOf(ErrorBytes(s.message()));
  }
  const std::string entry = EncodeClusterCommand(m);  // a multiple of 8 bytes
  raft_buffer buf;
  buf.len = entry.size();
  buf.base = raft_malloc(entry.size());
  if (buf.base == nullptr) return ReplyOf(ErrorBytes("out of memory"));
  std::memcpy(buf.base, entry.data(), entry.size());
  auto* req = new ApplyRequest;
  req->req.data = req;
  req->node = this;
  req->reply = std::make_shared<DeferredReply>();
  req->op = m.op;
  const int rv = raft_apply(&raft_, &req->req, &buf, 1, OnApplied);
  if (rv != 0) {
    raft_free(buf.base);  // not transferred when raft_apply fails
    delete req;
    if (rv == RAFT_NOTLEADER) return ReplyOf(Redirect());
    return ReplyOf(ErrorBytes(absl::StrCat("raft_apply: ", raft_strerror(rv))));
  }
  CommandReply r;
  r.deferred = req->reply;
  return r;
}

void ClusterNode::OnApplied(struct raft_apply* raw, int status, void* result) {
  std::unique_ptr<ApplyRequest> req(static_cast<ApplyRequest*>(raw->data));
  std::string out;
  if (status != 0) {
    out = CodedError(UncommittedWriteError(req->op, raft_strerror(status)));
  } else {
    const auto* r = static_cast<const KvFsm::Result*>(result);
    if (!r->error.empty()) {
      out = ErrorBytes(r->error);
    } else if (RepliesWithInteger(req->op)) {
      AppendInteger(&out, r->integer);
    } else {
      out = "+OK\r\n";
    }
  }
  req->reply->Complete(std::move(out));
}

// ---------------------------------------------------------------- reads

CommandReply ClusterNode::QueueRead(const std::vector<std::string>& args) {
  CheckLeadership();
  if (!LeaderReady()) return ReplyOf(Redirect());
  ReadRequest r;
  r.args = args;
  r.reply = std::make_shared<DeferredReply>();
  CommandReply out;
  out.deferred = r.reply;
  pending_reads_.push_back(std::move(r));
  KickReads();
  return out;
}

void ClusterNode::KickReads() {
  if (read_barrier_in_flight_ || pending_reads_.empty()) return;
  auto fail_all = [this](const std::string& bytes) {
    std::vector<ReadRequest> reads = std::move(pending_reads_);
    pending_reads_.clear();
    for (ReadRequest& r : reads) r.reply->Complete(bytes);
  };
  if (!LeaderReady()) {
    fail_all(Redirect());
    return;
  }
  auto* b = new BarrierRequest;
  b->req.data = b;
  b->node = this;
  b->term = raft_.current_term;
  b->reads = std::move(pending_reads_);
  pending_reads_.clear();
  const int rv = raft_barrier(&raft_, &b->req, OnBarrier);
  if (rv != 0) {
    pending_reads_ = std::move(b->reads);
    delete b;
    fail_all(rv == RAFT_NOTLEADER ? Redirect()
                                  : ErrorBytes(absl::StrCat("raft_barrier: ", raft_strerror(rv))));
    return;
  }
  read_barrier_in_flight_ = true;
}

void ClusterNode::OnBarrier(struct raft_barrier* raw, int status) {
  std::unique_ptr<BarrierRequest> b(static_cast<BarrierRequest*>(raw->data));
  ClusterNode* self = b->node;
  if (b->leader_barrier) {
    if (self->leader_barrier_term_ == b->term) self->leader_barrier_term_ = 0;
    if (status == 0 && raft_state(&self->raft_) == RAFT_LEADER &&
        self->raft_.current_term == b->term) {
      self->ready_term_ = b->term;
      fprintf(stderr, "segkv_server: raft: leader of term %llu serves (barrier applied)\n",
              static_cast<unsigned long long>(b->term));
    }
    return;
  }
  self->read_barrier_in_flight_ = false;
  // Committed and applied: a majority accepted an entry of this leader's
  // term after every read of the batch arrived, so no other leader had
  // acknowledged anything the state lacks (kv/README.md, "Cluster mode").
  for (ReadRequest& r : b->reads) {
    r.reply->Complete(
        status == 0 ? self->EvaluateRead(r.args)
                    : CodedError(absl::StrCat("TRYAGAIN the read could not be confirmed by a "
                                              "majority (",
                                              raft_strerror(status), ")")));
  }
  if (!self->shutting_down_) self->KickReads();
}

std::string ClusterNode::EvaluateRead(const std::vector<std::string>& args) const {
  const std::string name = absl::AsciiStrToLower(args[0]);
  std::string out;
  if (name == "get") {
    std::optional<std::string> v = fsm_.Get(args[1]);
    if (v.has_value()) {
      AppendBulk(&out, *v);
    } else {
      AppendNullBulk(&out);
    }
  } else if (name == "mget") {
    AppendArrayHeader(&out, args.size() - 1);
    for (size_t i = 1; i < args.size(); ++i) {
      std::optional<std::string> v = fsm_.Get(args[i]);
      if (v.has_value()) {
        AppendBulk(&out, *v);
      } else {
        AppendNullBulk(&out);
      }
    }
  } else if (name == "exists") {
    AppendInteger(&out, fsm_.Exists(std::vector<absl::string_view>(args.begin() + 1, args.end())));
  } else if (name == "dbsize") {
    AppendInteger(&out, static_cast<int64_t>(fsm_.size()));
  } else if (name == "keys") {
    std::vector<std::string> keys = fsm_.Keys(args[1]);
    AppendArrayHeader(&out, keys.size());
    for (const std::string& k : keys) AppendBulk(&out, k);
  }
  return out;
}

// ---------------------------------------------------------------- commands

CommandReply ClusterNode::Execute(const std::vector<std::string>& args) {
  const std::string name = absl::AsciiStrToLower(args[0]);
  const ClusterCommand* spec = nullptr;
  for (const ClusterCommand& c : kClusterCommands) {
    if (name == c.name) spec = &c;
  }
  if (spec == nullptr) return executor_->Execute(args);
  if (absl::Status s = CheckArity(name, spec->arity, args.size()); !s.ok()) {
    return ReplyOf(ErrorBytes(s.message()));
  }
  if (name == "set" || name == "del" || name == "mset" || name == "incr" ||
      name == "incrby" || name == "flushall") {
    absl::StatusOr<Mutation> m = ParseWriteCommand(name, args);
    if (!m.ok()) return ReplyOf(ErrorBytes(m.status().message()));
    return SubmitWrite(*m);
  }
  if (name == "get" || name == "mget" || name == "exists" || name == "dbsize" ||
      name == "keys") {
    return QueueRead(args);
  }
  if (name == "role") return ReplyOf(Role());
  if (name == "info") {
    if (args.size() > 2) return ReplyOf(ErrorBytes("syntax error"));
    std::string out;
    AppendBulk(&out, Info(args.size() == 2 ? args[1] : ""));
    return ReplyOf(std::move(out));
  }
  if (name == "debug") {
    // DEBUG DIGEST: this member's state, whatever its role (not
    // linearizable: a follower may lag). "<digest> <keys> <last applied>".
    if (absl::AsciiStrToLower(args[1]) != "digest" || args.size() != 2) {
      return ReplyOf(ErrorBytes("segkv supports DEBUG DIGEST only"));
    }
    std::string out;
    AppendBulk(&out, absl::StrCat(fsm_.Digest(), " ", fsm_.size(), " ", raft_.last_applied));
    return ReplyOf(std::move(out));
  }
  // save, bgsave
  return ReplyOf(ErrorBytes(absl::StrCat(
      absl::AsciiStrToUpper(name),
      " is not available in cluster mode: raft snapshots the state every "
      "--raft_snapshot_threshold entries")));
}

std::string ClusterNode::Role() {
  std::string out;
  const ClusterConfig& c = options_.config;
  if (raft_state(&raft_) == RAFT_LEADER) {
    // Redis: "master", replication offset, then [host, port, offset] per
    // replica. The offset is the raft index applied.
    AppendArrayHeader(&out, 3);
    AppendBulk(&out, "master");
    AppendInteger(&out, static_cast<int64_t>(raft_.last_applied));
    AppendArrayHeader(&out, c.peers.size() - 1);
    for (const ClusterPeer& p : c.peers) {
      if (p.id == c.self_id) continue;
      AppendArrayHeader(&out, 3);
      AppendBulk(&out, p.host);
      AppendBulk(&out, std::to_string(p.client_port));
      AppendBulk(&out, "0");
    }
    return out;
  }
  // Redis: "slave", master host, master port, link state, offset.
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&raft_, &id, &address);
  const ClusterPeer* leader = id == 0 ? nullptr : c.Find(id);
  AppendArrayHeader(&out, 5);
  AppendBulk(&out, "slave");
  AppendBulk(&out, leader != nullptr ? leader->host : "");
  AppendInteger(&out, leader != nullptr ? leader->client_port : 0);
  AppendBulk(&out, leader != nullptr ? "connected" : "connect");
  AppendInteger(&out, static_cast<int64_t>(raft_.last_applied));
  return out;
}

std::string ClusterNode::ReplicationInfo() {
  std::string out;
  auto line = [&out](absl::string_view key, const auto& value) {
    absl::StrAppend(&out, key, ":", value, "\r\n");
  };
  const int state = raft_state(&raft_);
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&raft_, &id, &address);
  const ClusterPeer* leader = id == 0 ? nullptr : options_.config.Find(id);
  out.append("# Replication\r\n");
  line("role", state == RAFT_LEADER ? "master" : "slave");
  line("raft_state", StateName(state));
  line("raft_id", options_.config.self_id);
  line("raft_address", options_.config.raft_address);
  line("raft_term", raft_.current_term);
  line("raft_leader_id", id);
  line("raft_leader_client_address", leader != nullptr ? leader->client_address() : "");
  line("raft_leader_serving", LeaderReady() ? 1 : 0);
  line("raft_commit_index", raft_.commit_index);
  line("raft_last_applied", raft_.last_applied);
  line("raft_last_index", raft_last_index(&raft_));
  line("raft_members", options_.config.peers.size());
  line("raft_snapshot_threshold", options_.snapshot_threshold);
  line("raft_snapshot_trailing", options_.snapshot_trailing);
  line("raft_bootstrapped_this_start", bootstrapped_ ? 1 : 0);
  line("fsm_snapshots_taken", fsm_.snapshots_taken());
  line("fsm_snapshots_restored", fsm_.snapshots_restored());
  line("raft_pending_reads", pending_reads_.size());
  return out;
}

std::string ClusterNode::Info(const std::string& section_arg) {
  const std::string section = absl::AsciiStrToLower(section_arg);
  const bool all = section.empty() || section == "all" || section == "default" ||
                   section == "everything";
  std::string out;
  out.append(CommonInfoSections(*counters_, "cluster", section, all));
  if (all || section == "replication") {
    out.append(ReplicationInfo());
    out.append("\r\n");
  }
  if (all || section == "segwal") {
    out.append(SegwalInfoSection(io_->store()->wal()->GetStats()));
  }
  if (all || section == "keyspace") out.append(KeyspaceInfoSection(fsm_.size()));
  if (out.size() >= 2) out.resize(out.size() - 2);
  return out;
}

}  // namespace kv
}  // namespace segwal
