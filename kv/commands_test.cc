// What both segkv modes share (kv/commands.h): the arity check, the reading
// of write commands into Mutations with Redis's error texts, and the INFO
// sections about the log and the keyspace.

#include "kv/commands.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace segwal {
namespace kv {
namespace {

using Args = std::vector<std::string>;

std::vector<std::string> Strings(const std::vector<absl::string_view>& views) {
  return std::vector<std::string>(views.begin(), views.end());
}

TEST(CheckArityTest, PositiveIsExactNegativeIsAtLeast) {
  EXPECT_TRUE(CheckArity("get", 2, 2).ok());
  EXPECT_TRUE(CheckArity("del", -2, 2).ok());
  EXPECT_TRUE(CheckArity("del", -2, 5).ok());
  const absl::Status too_few = CheckArity("get", 2, 1);
  EXPECT_EQ(too_few.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(too_few.message(), "wrong number of arguments for 'get' command");
  EXPECT_EQ(CheckArity("get", 2, 3).message(),
            "wrong number of arguments for 'get' command");
  EXPECT_EQ(CheckArity("mset", -3, 2).message(),
            "wrong number of arguments for 'mset' command");
}

TEST(ParseWriteCommandTest, EachWriteBecomesItsMutation) {
  const Args set = {"SET", "k", "v"};
  absl::StatusOr<Mutation> m = ParseWriteCommand("set", set);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->op, KvOp::kSet);
  EXPECT_EQ(Strings(m->keys), Args({"k"}));
  EXPECT_EQ(Strings(m->values), Args({"v"}));
  EXPECT_FALSE(RepliesWithInteger(m->op));

  const Args del = {"del", "a", "b"};
  m = ParseWriteCommand("del", del);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->op, KvOp::kDel);
  EXPECT_EQ(Strings(m->keys), Args({"a", "b"}));
  EXPECT_TRUE(RepliesWithInteger(m->op));

  const Args mset = {"mset", "a", "1", "b", "2"};
  m = ParseWriteCommand("mset", mset);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->op, KvOp::kMSet);
  EXPECT_EQ(Strings(m->keys), Args({"a", "b"}));
  EXPECT_EQ(Strings(m->values), Args({"1", "2"}));
  EXPECT_FALSE(RepliesWithInteger(m->op));

  const Args incr = {"incr", "n"};
  m = ParseWriteCommand("incr", incr);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->op, KvOp::kIncrBy);
  EXPECT_EQ(Strings(m->keys), Args({"n"}));
  EXPECT_EQ(m->delta, 1);
  EXPECT_TRUE(RepliesWithInteger(m->op));

  const Args incrby = {"incrby", "n", "-42"};
  m = ParseWriteCommand("incrby", incrby);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->op, KvOp::kIncrBy);
  EXPECT_EQ(m->delta, -42);

  for (const Args& flushall : {Args{"flushall"}, Args{"flushall", "ASYNC"},
                               Args{"flushall", "sync"}}) {
    m = ParseWriteCommand("flushall", flushall);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->op, KvOp::kFlushAll);
    EXPECT_TRUE(m->keys.empty());
    EXPECT_FALSE(RepliesWithInteger(m->op));
  }
}

TEST(ParseWriteCommandTest, RefusedArgumentsGetRedisErrorTexts) {
  auto error = [](absl::string_view name, const Args& args) {
    absl::StatusOr<Mutation> m = ParseWriteCommand(name, args);
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(m.status().message());
  };
  EXPECT_EQ(error("set", {"set", "k", "v", "EX", "10"}),
            "SET option 'EX' is not supported by segkv (plain SET only)");
  EXPECT_EQ(error("mset", {"mset", "a", "1", "b"}),
            "wrong number of arguments for 'mset' command");
  for (const char* delta : {"x", "", " 5", "5 ", "+5", "05", "-0", "99999999999999999999"}) {
    EXPECT_EQ(error("incrby", {"incrby", "n", delta}),
              "value is not an integer or out of range")
        << "delta '" << delta << "'";
  }
  EXPECT_EQ(error("flushall", {"flushall", "now"}), "syntax error");
  EXPECT_EQ(error("get", {"get", "k"}), "'get' is not a write command");
}

TEST(InfoSectionTest, SegwalSectionShowsTheLogsStateAndPoisoning) {
  WalStats w;
  w.appends = 7;
  w.syncs = 3;
  w.durable_lsn = 6;
  w.poisoned = true;
  w.poisoned_reason = "fdatasync /wal/x: Input/output error";
  const std::string info = SegwalInfoSection(w);
  EXPECT_EQ(info.rfind("# Segwal\r\n", 0), 0u) << info;
  EXPECT_NE(info.find("\r\nwal_appends:7\r\n"), std::string::npos) << info;
  EXPECT_NE(info.find("\r\nwal_syncs:3\r\n"), std::string::npos) << info;
  EXPECT_NE(info.find("\r\nwal_durable_lsn:6\r\n"), std::string::npos) << info;
  EXPECT_NE(info.find("\r\nwal_poisoned:yes (fdatasync /wal/x: Input/output error)\r\n"),
            std::string::npos)
      << info;
  EXPECT_NE(info.find("\r\nwal_direct_io:off\r\n"), std::string::npos) << info;
  ASSERT_GE(info.size(), 4u);
  EXPECT_EQ(info.substr(info.size() - 4), "\r\n\r\n");  // ends in a blank line

  w.poisoned = false;
  EXPECT_NE(SegwalInfoSection(w).find("\r\nwal_poisoned:no\r\n"), std::string::npos);
}

TEST(InfoSectionTest, KeyspaceListsDb0OnlyWhenItHasKeys) {
  EXPECT_EQ(KeyspaceInfoSection(0), "# Keyspace\r\n\r\n");
  EXPECT_EQ(KeyspaceInfoSection(12),
            "# Keyspace\r\ndb0:keys=12,expires=0,avg_ttl=0\r\n\r\n");
}

}  // namespace
}  // namespace kv
}  // namespace segwal
