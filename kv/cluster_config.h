// The cluster's members as segkv_server's flags give them (--raft_id,
// --raft_addr, --raft_peers), parsed and checked; and the redirect replies
// that name a member's client address. Stateless; safe from any thread.
//
//   --raft_peers=ID:HOST:RAFTPORT:CLIENTPORT,...   every member, self included
//
// IDs are positive integers, unique; HOST is an IPv4 address or a name
// without ':' (IPv6 is not accepted here); ports are in [1, 65535]; no two
// members share a raft address. --raft_addr must be HOST:RAFTPORT of the
// member whose ID is --raft_id.

#ifndef SEGWAL_KV_CLUSTER_CONFIG_H_
#define SEGWAL_KV_CLUSTER_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace segwal {
namespace kv {

struct ClusterPeer {
  uint64_t id = 0;
  std::string host;
  int raft_port = 0;
  int client_port = 0;
  std::string raft_address() const;    // HOST:RAFTPORT
  std::string client_address() const;  // HOST:CLIENTPORT
};

struct ClusterConfig {
  uint64_t self_id = 0;
  std::string raft_address;        // this member's, as given by --raft_addr
  std::vector<ClusterPeer> peers;  // in --raft_peers order, self included
  // The member with `id`; nullptr if none.
  const ClusterPeer* Find(uint64_t id) const;
};

// Parses and checks the three flags. InvalidArgument whose message starts
// with the flag at fault ("--raft_peers: ...", "--raft_addr: ...",
// "--raft_id: ...") and names the offending entry.
absl::StatusOr<ClusterConfig> ParseClusterConfig(int64_t raft_id,
                                                 absl::string_view raft_addr,
                                                 absl::string_view raft_peers);

// The error text (without the leading '-') of a redirect to `leader`:
// "MOVED 0 HOST:CLIENTPORT", as Redis Cluster words it (slot 0: segkv has
// one), so `redis-cli -c` and cluster clients follow it.
std::string MovedError(const ClusterPeer& leader);

}  // namespace kv
}  // namespace segwal

#endif  // SEGWAL_KV_CLUSTER_CONFIG_H_
