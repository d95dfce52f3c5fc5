// The commit guard's rewrite (raft/commit_guard.h) on hand-built logs: which
// AppendEntries results reach libraft unchanged and which are lowered, and
// to what.

#include "raft/commit_guard.h"

#include <map>

#include "gtest/gtest.h"

namespace segwal {
namespace raftstore {
namespace {

// A leader's log: index -> term, plus what the view says about it.
struct Log {
  std::map<uint64_t, uint64_t> terms;
  CommitGuardView view;
  uint64_t TermOf(uint64_t index) const {
    auto it = terms.find(index);
    return it == terms.end() ? 0 : it->second;
  }
  uint64_t Guard(uint64_t reported) const {
    return GuardedLastLogIndex(reported, view,
                               [this](uint64_t i) { return TermOf(i); });
  }
};

// The seed-14 shape: the leader of term 111 holds 118..121 of term 107
// (uncommitted; 117 committed) and 122..123 of its own term.
Log Term111Leader(uint64_t durable_index) {
  Log log;
  for (uint64_t i = 110; i <= 121; ++i) log.terms[i] = 107;
  log.terms[122] = 111;
  log.terms[123] = 111;
  log.view.current_term = 111;
  log.view.committed_floor = 117;
  log.view.last_index = 123;
  log.view.durable_index = durable_index;
  return log;
}

raft_message Result(uint64_t term, uint64_t rejected, uint64_t last_log_index) {
  raft_message m{};
  m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
  m.append_entries_result.term = term;
  m.append_entries_result.rejected = rejected;
  m.append_entries_result.last_log_index = last_log_index;
  return m;
}

TEST(CommitGuardTest, OldTermIndexIsLoweredToTheCommittedFloor) {
  const Log log = Term111Leader(/*durable_index=*/123);
  EXPECT_EQ(log.Guard(121), 117u);
  EXPECT_EQ(log.Guard(119), 117u);
}

TEST(CommitGuardTest, CurrentTermIndexIsUntouched) {
  const Log log = Term111Leader(/*durable_index=*/123);
  EXPECT_EQ(log.Guard(122), 122u);
  EXPECT_EQ(log.Guard(123), 123u);
}

TEST(CommitGuardTest, IndexAtOrBelowTheCommittedFloorIsUntouched) {
  const Log log = Term111Leader(/*durable_index=*/123);
  EXPECT_EQ(log.Guard(117), 117u);
  EXPECT_EQ(log.Guard(112), 112u);
  EXPECT_EQ(log.Guard(0), 0u);
}

TEST(CommitGuardTest, IndexBeyondTheLeadersLogIsCappedAtItsLastIndex) {
  Log log = Term111Leader(/*durable_index=*/123);
  EXPECT_EQ(log.Guard(130), 123u);
  // A leader whose last entry is of an older term: nothing above the floor.
  log.terms.erase(122);
  log.terms.erase(123);
  log.view.last_index = 121;
  log.view.durable_index = 121;
  EXPECT_EQ(log.Guard(130), 117u);
}

TEST(CommitGuardTest, NothingAboveTheFloorCountsUntilTheLeaderHoldsItsTermDurably) {
  // 122 and 123 (term 111) are in the leader's log but not durable yet: a
  // follower holding them must not make 121 (term 107) committed, since the
  // leader and that follower would not both hold a term-111 entry.
  const Log log = Term111Leader(/*durable_index=*/121);
  EXPECT_EQ(log.Guard(123), 117u);
  EXPECT_EQ(log.Guard(122), 117u);
  const Log durable = Term111Leader(/*durable_index=*/122);
  EXPECT_EQ(durable.Guard(123), 123u);
}

TEST(CommitGuardTest, AfterASnapshotIndexesBelowItAreUntouchedAndAboveAreChecked) {
  // Snapshot at 140 (term 107) with nothing after it but 141 of term 111;
  // the log before 141 is gone (term 0 to the lookup), the floor is 140.
  Log log;
  log.terms[140] = 107;  // the snapshot's own index
  log.terms[141] = 111;
  log.view.current_term = 111;
  log.view.committed_floor = 140;
  log.view.last_index = 141;
  log.view.durable_index = 141;
  EXPECT_EQ(log.Guard(140), 140u);  // a snapshot install's result
  EXPECT_EQ(log.Guard(100), 100u);
  EXPECT_EQ(log.Guard(141), 141u);
  log.terms[141] = 110;  // no term-111 entry at all
  log.view.durable_index = 141;
  EXPECT_EQ(log.Guard(141), 140u);
}

TEST(CommitGuardTest, MessageRewriteTouchesOnlySuccessfulResultsOfTheCurrentTerm) {
  const Log log = Term111Leader(/*durable_index=*/123);
  auto term_of = [&log](uint64_t i) { return log.TermOf(i); };

  raft_message ok = Result(111, 0, 121);
  EXPECT_TRUE(GuardAppendEntriesResult(&ok, log.view, term_of));
  EXPECT_EQ(ok.append_entries_result.last_log_index, 117u);
  EXPECT_EQ(ok.append_entries_result.term, 111u);
  EXPECT_EQ(ok.append_entries_result.rejected, 0u);

  raft_message current = Result(111, 0, 123);
  EXPECT_FALSE(GuardAppendEntriesResult(&current, log.view, term_of));
  EXPECT_EQ(current.append_entries_result.last_log_index, 123u);

  // A rejection's last_log_index is the follower's hint for next_index.
  raft_message rejected = Result(111, 119, 121);
  EXPECT_FALSE(GuardAppendEntriesResult(&rejected, log.view, term_of));
  EXPECT_EQ(rejected.append_entries_result.last_log_index, 121u);

  // Other terms: libraft ignores them or steps down.
  raft_message older = Result(110, 0, 121);
  EXPECT_FALSE(GuardAppendEntriesResult(&older, log.view, term_of));
  EXPECT_EQ(older.append_entries_result.last_log_index, 121u);
  raft_message newer = Result(112, 0, 121);
  EXPECT_FALSE(GuardAppendEntriesResult(&newer, log.view, term_of));
  EXPECT_EQ(newer.append_entries_result.last_log_index, 121u);

  raft_message other{};
  other.type = RAFT_IO_APPEND_ENTRIES;
  other.append_entries.term = 111;
  other.append_entries.prev_log_index = 121;
  EXPECT_FALSE(GuardAppendEntriesResult(&other, log.view, term_of));
  EXPECT_EQ(other.append_entries.prev_log_index, 121u);
}

}  // namespace
}  // namespace raftstore
}  // namespace segwal
