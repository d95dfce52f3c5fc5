// The in-process pieces of segkv's cluster mode: the raft entry of a command
// (padding, round trip, refusals), the state machine (apply, snapshot,
// restore to an equal state), the cluster flags and the MOVED reply.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kv/cluster_command.h"
#include "kv/cluster_config.h"
#include "kv/kv_fsm.h"

namespace segwal {
namespace kv {
namespace {

Mutation Set(absl::string_view k, absl::string_view v) {
  Mutation m;
  m.op = KvOp::kSet;
  m.keys = {k};
  m.values = {v};
  return m;
}

TEST(ClusterCommandTest, EveryEntryIsAMultipleOf8AndRoundTrips) {
  for (size_t klen = 0; klen < 20; ++klen) {
    for (size_t vlen = 0; vlen < 20; ++vlen) {
      const std::string k(klen + 1, 'k'), v(vlen, 'v');
      const std::string e = EncodeClusterCommand(Set(k, v));
      ASSERT_EQ(e.size() % 8, 0u) << klen << " " << vlen;
      absl::StatusOr<DecodedRecord> d = DecodeClusterCommand(e);
      ASSERT_TRUE(d.ok()) << d.status();
      EXPECT_EQ(d->op, KvOp::kSet);
      ASSERT_EQ(d->keys.size(), 1u);
      EXPECT_EQ(d->keys[0], k);
      EXPECT_EQ(d->values[0], v);
    }
  }
  Mutation incr;
  incr.op = KvOp::kIncrBy;
  incr.keys = {"n"};
  incr.delta = -42;
  absl::StatusOr<DecodedRecord> d = DecodeClusterCommand(EncodeClusterCommand(incr));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->op, KvOp::kIncrBy);
  EXPECT_EQ(d->delta, -42);
  Mutation flush;
  flush.op = KvOp::kFlushAll;
  d = DecodeClusterCommand(EncodeClusterCommand(flush));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->op, KvOp::kFlushAll);
}

TEST(ClusterCommandTest, GarbledEntriesAreDataLossNotCrashes) {
  const std::string good = EncodeClusterCommand(Set("key", "value!"));
  // Cut to a size that is not a multiple of 8 (what libraft 0.15's transport
  // could deliver), non-zero padding, a length beyond the entry.
  EXPECT_TRUE(absl::IsDataLoss(DecodeClusterCommand(good.substr(0, good.size() - 1)).status()));
  EXPECT_TRUE(absl::IsDataLoss(DecodeClusterCommand("").status()));
  std::string bad_pad = good;
  bad_pad.back() = 'x';
  ASSERT_NE(good.back(), 'x');
  EXPECT_TRUE(absl::IsDataLoss(DecodeClusterCommand(bad_pad).status()));
  std::string long_len = good;
  long_len[0] = static_cast<char>(0x7f);
  EXPECT_TRUE(absl::IsDataLoss(DecodeClusterCommand(long_len).status()));
  std::string bad_type = good;
  bad_type[4] = 99;
  EXPECT_FALSE(DecodeClusterCommand(bad_type).ok());
}

TEST(ClusterCommandTest, ValidateRefusesWhatTheSingleNodeRefuses) {
  EXPECT_TRUE(ValidateMutation(Set("k", "v"), 4, 4).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateMutation(Set("kkkkk", "v"), 4, 4)));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateMutation(Set("k", "vvvvv"), 4, 4)));
  Mutation m;
  m.op = KvOp::kMSet;
  m.keys = {"a", "b"};
  m.values = {"1"};
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateMutation(m, 4, 4)));
}

// A write raft accepted but this leader did not commit may still be applied:
// only writes that are safe to repeat may answer with the code cluster
// clients retry on (TRYAGAIN); an increment must not (it would count twice).
TEST(ClusterCommandTest, UncommittedIncrementIsNotAnswerRetryable) {
  for (KvOp op : {KvOp::kSet, KvOp::kDel, KvOp::kMSet, KvOp::kFlushAll}) {
    const std::string e = UncommittedWriteError(op, "leadership lost");
    EXPECT_EQ(e.rfind("TRYAGAIN ", 0), 0u) << e;
    EXPECT_NE(e.find("(leadership lost)"), std::string::npos) << e;
    EXPECT_NE(e.find("may still be applied"), std::string::npos) << e;
  }
  const std::string incr = UncommittedWriteError(KvOp::kIncrBy, "leadership lost");
  EXPECT_EQ(incr.rfind("UNCERTAIN ", 0), 0u) << incr;
  EXPECT_EQ(incr.find("TRYAGAIN"), std::string::npos) << incr;
  EXPECT_NE(incr.find("(leadership lost)"), std::string::npos) << incr;
  EXPECT_NE(incr.find("read the key before retrying"), std::string::npos) << incr;
  // One line: it becomes a RESP simple error.
  EXPECT_EQ(incr.find_first_of("\r\n"), std::string::npos);
}

std::string Entry(const Mutation& m) { return EncodeClusterCommand(m); }

TEST(KvFsmTest, ApplyDecidesIncrByAndDelOnEveryMember) {
  KvFsm fsm;
  EXPECT_EQ(fsm.Apply(Entry(Set("a", "1")), 1).error, "");
  Mutation incr;
  incr.op = KvOp::kIncrBy;
  incr.keys = {"a"};
  incr.delta = 41;
  KvFsm::Result r = fsm.Apply(Entry(incr), 2);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.integer, 42);
  EXPECT_EQ(fsm.Get("a"), "42");
  fsm.Apply(Entry(Set("s", "text")), 3);
  incr.keys = {"s"};
  r = fsm.Apply(Entry(incr), 4);
  EXPECT_EQ(r.error, "value is not an integer or out of range");
  EXPECT_EQ(fsm.Get("s"), "text");
  fsm.Apply(Entry(Set("big", "9223372036854775807")), 5);
  incr.keys = {"big"};
  incr.delta = 1;
  EXPECT_EQ(fsm.Apply(Entry(incr), 6).error, "increment or decrement would overflow");
  Mutation del;
  del.op = KvOp::kDel;
  del.keys = {"a", "missing", "s"};
  r = fsm.Apply(Entry(del), 7);
  EXPECT_EQ(r.integer, 2);
  EXPECT_EQ(fsm.size(), 1u);
  EXPECT_EQ(fsm.last_applied(), 7u);
  // An entry that does not decode changes nothing.
  const std::string digest = fsm.Digest();
  EXPECT_NE(fsm.Apply("garbage", 8).error, "");
  EXPECT_EQ(fsm.Digest(), digest);
}

TEST(KvFsmTest, SnapshotRestoresAnEqualStateInTheCheckpointEncoding) {
  KvFsm a;
  for (int i = 0; i < 500; ++i) {
    a.Apply(Entry(Set(absl::StrCat("key", i), std::string(i % 37, 'a' + i % 26))), i + 1);
  }
  Mutation del;
  del.op = KvOp::kDel;
  del.keys = {"key7"};
  a.Apply(Entry(del), 501);
  absl::StatusOr<std::string> snap = a.Snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status();
  // The checkpoint file's magic (kv/FORMAT.md) opens the snapshot.
  KvFsm b;
  b.Apply(Entry(Set("stale", "gone after restore")), 1);
  ASSERT_TRUE(b.Restore(*snap).ok());
  EXPECT_EQ(b.size(), a.size());
  EXPECT_EQ(b.Digest(), a.Digest());
  EXPECT_EQ(b.last_applied(), 501u);
  EXPECT_FALSE(b.Get("stale").has_value());
  EXPECT_EQ(b.Keys("key1*"), a.Keys("key1*"));
  // Both go on identically.
  a.Apply(Entry(Set("after", "x")), 502);
  b.Apply(Entry(Set("after", "x")), 502);
  EXPECT_EQ(a.Digest(), b.Digest());
  // A different state has a different digest.
  b.Apply(Entry(Set("after", "y")), 503);
  EXPECT_NE(a.Digest(), b.Digest());
}

TEST(KvFsmTest, DamagedSnapshotIsRefusedAndLeavesTheStateAlone) {
  KvFsm a;
  a.Apply(Entry(Set("k", "v")), 1);
  std::string snap = *a.Snapshot();
  snap[snap.size() / 2] ^= 0x20;
  KvFsm b;
  b.Apply(Entry(Set("mine", "1")), 1);
  const std::string before = b.Digest();
  EXPECT_FALSE(b.Restore(snap).ok());
  EXPECT_EQ(b.Digest(), before);
  EXPECT_FALSE(b.Restore("").ok());
}

TEST(KvFsmTest, EmptyStateSnapshotsToo) {
  KvFsm a, b;
  absl::StatusOr<std::string> snap = a.Snapshot();
  ASSERT_TRUE(snap.ok());
  b.Apply(Entry(Set("x", "y")), 1);
  ASSERT_TRUE(b.Restore(*snap).ok());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.Digest(), a.Digest());
}

TEST(ClusterConfigTest, ParsesThreeMembers) {
  absl::StatusOr<ClusterConfig> c = ParseClusterConfig(
      2, "127.0.0.1:7002", "1:127.0.0.1:7001:6381,2:127.0.0.1:7002:6382,3:127.0.0.1:7003:6383");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->self_id, 2u);
  ASSERT_EQ(c->peers.size(), 3u);
  EXPECT_EQ(c->Find(3)->client_address(), "127.0.0.1:6383");
  EXPECT_EQ(c->Find(1)->raft_address(), "127.0.0.1:7001");
  EXPECT_EQ(c->Find(4), nullptr);
  EXPECT_EQ(MovedError(*c->Find(3)), "MOVED 0 127.0.0.1:6383");
  // --raft_addr defaults to the member's own entry.
  c = ParseClusterConfig(1, "", "1:h:1:2");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->raft_address, "h:1");
}

void ExpectBad(int64_t id, absl::string_view addr, absl::string_view peers,
               absl::string_view flag, absl::string_view names) {
  absl::StatusOr<ClusterConfig> c = ParseClusterConfig(id, addr, peers);
  ASSERT_FALSE(c.ok()) << peers;
  EXPECT_TRUE(absl::IsInvalidArgument(c.status()));
  const std::string msg(c.status().message());
  EXPECT_EQ(msg.rfind(absl::StrCat(flag, ": "), 0), 0u) << msg;
  EXPECT_NE(msg.find(std::string(names)), std::string::npos) << msg;
}

TEST(ClusterConfigTest, BadFlagsNameTheFlagAndTheEntry) {
  const std::string ok3 = "1:127.0.0.1:7001:6381,2:127.0.0.1:7002:6382,3:127.0.0.1:7003:6383";
  ExpectBad(0, "", ok3, "--raft_id", "positive");
  ExpectBad(-3, "", ok3, "--raft_id", "-3");
  ExpectBad(1, "", "", "--raft_peers", "required");
  ExpectBad(1, "", "1:127.0.0.1:7001", "--raft_peers", "entry 1 '1:127.0.0.1:7001'");
  ExpectBad(1, "", "1:127.0.0.1:7001:6381,2:h:7002", "--raft_peers", "entry 2");
  ExpectBad(1, "", "1:127.0.0.1:7001:6381,x:h:7002:1", "--raft_peers", "ID 'x'");
  ExpectBad(1, "", "0:h:1:2", "--raft_peers", "ID '0'");
  ExpectBad(1, "", "1::1:2", "--raft_peers", "empty HOST");
  ExpectBad(1, "", "1:h:70000:2", "--raft_peers", "RAFTPORT '70000'");
  ExpectBad(1, "", "1:h:1:-2", "--raft_peers", "CLIENTPORT '-2'");
  ExpectBad(1, "", "1:h:1:", "--raft_peers", "CLIENTPORT ''");
  ExpectBad(1, "", "1:h:1:2,1:g:3:4", "--raft_peers", "ID 1 appears twice");
  ExpectBad(1, "", "1:h:1:2,2:h:1:4", "--raft_peers", "h:1 appears twice");
  ExpectBad(1, "", "1:h:1:2,,2:g:1:2", "--raft_peers", "entry 2 ''");
  ExpectBad(4, "", ok3, "--raft_peers", "--raft_id 4");
  ExpectBad(1, "127.0.0.1:7002", ok3, "--raft_addr", "127.0.0.1:7001");
}

}  // namespace
}  // namespace kv
}  // namespace segwal
