// Parsing and checking the cluster flags (kv/cluster_config.h).

#include "kv/cluster_config.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace segwal {
namespace kv {

namespace {

bool ParsePort(absl::string_view s, int* port) {
  int v = 0;
  if (s.empty() || s.size() > 5 || !absl::SimpleAtoi(s, &v) || v < 1 || v > 65535 ||
      s[0] == '+' || s[0] == '-') {
    return false;
  }
  *port = v;
  return true;
}

bool ParseId(absl::string_view s, uint64_t* id) {
  uint64_t v = 0;
  if (s.empty() || s[0] == '+' || s[0] == '-' || !absl::SimpleAtoi(s, &v) || v == 0) {
    return false;
  }
  *id = v;
  return true;
}

absl::Status Bad(absl::string_view flag, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", what));
}

}  // namespace

std::string ClusterPeer::raft_address() const { return absl::StrCat(host, ":", raft_port); }
std::string ClusterPeer::client_address() const {
  return absl::StrCat(host, ":", client_port);
}

const ClusterPeer* ClusterConfig::Find(uint64_t id) const {
  for (const ClusterPeer& p : peers) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

absl::StatusOr<ClusterConfig> ParseClusterConfig(int64_t raft_id, absl::string_view raft_addr,
                                                 absl::string_view raft_peers) {
  ClusterConfig config;
  if (raft_id <= 0) {
    return Bad("--raft_id", absl::StrCat("must be a positive integer, not ", raft_id));
  }
  config.self_id = static_cast<uint64_t>(raft_id);
  if (raft_peers.empty()) {
    return Bad("--raft_peers", "is required with --raft_id (ID:HOST:RAFTPORT:CLIENTPORT,...)");
  }
  int n = 0;
  for (absl::string_view entry : absl::StrSplit(raft_peers, ',')) {
    ++n;
    const std::vector<absl::string_view> parts = absl::StrSplit(entry, ':');
    const std::string where = absl::StrCat("entry ", n, " '", entry, "'");
    if (parts.size() != 4) {
      return Bad("--raft_peers", absl::StrCat(where, " is not ID:HOST:RAFTPORT:CLIENTPORT"));
    }
    ClusterPeer p;
    if (!ParseId(parts[0], &p.id)) {
      return Bad("--raft_peers", absl::StrCat(where, ": ID '", parts[0],
                                              "' is not a positive integer"));
    }
    if (parts[1].empty()) return Bad("--raft_peers", absl::StrCat(where, ": empty HOST"));
    p.host = std::string(parts[1]);
    if (!ParsePort(parts[2], &p.raft_port)) {
      return Bad("--raft_peers", absl::StrCat(where, ": RAFTPORT '", parts[2],
                                              "' is not in [1, 65535]"));
    }
    if (!ParsePort(parts[3], &p.client_port)) {
      return Bad("--raft_peers", absl::StrCat(where, ": CLIENTPORT '", parts[3],
                                              "' is not in [1, 65535]"));
    }
    for (const ClusterPeer& q : config.peers) {
      if (q.id == p.id) {
        return Bad("--raft_peers", absl::StrCat(where, ": ID ", p.id, " appears twice"));
      }
      if (q.raft_address() == p.raft_address()) {
        return Bad("--raft_peers", absl::StrCat(where, ": raft address ", p.raft_address(),
                                                " appears twice"));
      }
    }
    config.peers.push_back(std::move(p));
  }
  const ClusterPeer* self = config.Find(config.self_id);
  if (self == nullptr) {
    return Bad("--raft_peers", absl::StrCat("does not list --raft_id ", config.self_id,
                                            " (list every member, this one included)"));
  }
  const std::string own = self->raft_address();
  if (!raft_addr.empty() && raft_addr != own) {
    return Bad("--raft_addr", absl::StrCat("'", raft_addr, "' is not ", own, ", member ",
                                           self->id, "'s in --raft_peers"));
  }
  config.raft_address = own;
  return config;
}

std::string MovedError(const ClusterPeer& leader) {
  return absl::StrCat("MOVED 0 ", leader.client_address());
}

}  // namespace kv
}  // namespace segwal
