// CommitGuard: keeps libraft 0.15 from committing entries of earlier terms by
// counting replicas (the raft paper's Figure 8; canonical/raft PR #336, fixed
// in 0.17.1, not in Debian bookworm's 0.15). Owns only pure functions: the
// caller (SegwalRaftIo's receive path, or a test's) supplies a view of the
// local log and applies the rewrite to a successful AppendEntries result
// before libraft sees it. No state, no locks.
//
// What libraft 0.15 does with such a result (src/replication.c,
// replicationUpdate): it caps `last_log_index` at its own last index, raises
// the follower's match_index to it (progressMaybeUpdate never lowers a
// match_index), then calls replicationQuorum(r, r->last_stored), which sets
// commit_index = last_stored once a majority of voters have match_index >=
// last_stored, whatever the term of that entry. appendLeaderCb does the same
// check when the leader's own write completes. Those are the only places a
// leader's commit_index moves, and match_index is raised only there (and set
// to last_stored for the leader itself).
//
// The rewrite (GuardedLastLogIndex), with T the local current term and C an
// index known to be committed on this server (its snapshot index, or a
// leader_commit it sent):
//   - reported <= C: unchanged (a match at or below C cannot help commit
//     anything new, since replicationQuorum ignores indexes <= commit_index);
//     this keeps snapshot installs (reported = snapshot index) and probes of
//     committed prefixes working.
//   - otherwise, with k = min(reported, last local index): unchanged (k) if
//     the local entry at k has term T AND the local server has durably
//     stored an entry of term T; else lowered to C.
// So every follower match_index above C is an index of a term-T entry that
// the follower has (a term-T entry comes only from T's leader, so the
// follower's log equals the leader's up to it), recorded while the leader
// itself durably held a term-T entry. Then when replicationQuorum commits
// index I (> C) on a majority: if I has term T, the majority holds I (raft's
// rule); if I has an earlier term, every counted follower and the leader hold
// the first term-T entry f > I durably, so f is on a majority, which commits
// f and with it I (raft's rule again). A leader with no term-T entry never
// counts a follower above C, so nothing above C commits until the leader
// appends an entry of its term (libraft 0.15 appends none at election: an
// application must, e.g. raft_barrier; 0.17.1 does that itself).
//
// Limits (raft/FORMAT.md, "Commit guard", and docs/DURABILITY.md section 6):
// it relies on undocumented libraft 0.15 behaviour (above), pinned by
// raft_fixture_test; with a single voter libraft commits at election without
// any result (convertToLeader), which is safe; it does not address that
// libraft takes the follower's last stored index as a match even when the
// follower keeps a stale suffix beyond what the leader sent.

#ifndef SEGWAL_RAFT_COMMIT_GUARD_H_
#define SEGWAL_RAFT_COMMIT_GUARD_H_

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "raft/libraft.h"

namespace segwal {
namespace raftstore {

struct CommitGuardView {
  uint64_t current_term = 0;
  // An index known committed here: >= the snapshot index (a snapshot holds
  // only applied entries) and any leader_commit this server sent. 0 if none.
  uint64_t committed_floor = 0;
  uint64_t last_index = 0;     // the local log's last index
  uint64_t durable_index = 0;  // every local entry <= it is durable
};

// The local term of `index` (an entry's term, the snapshot's term at its
// index), or 0 when the local log does not know it.
using CommitGuardTermOf = absl::FunctionRef<uint64_t(uint64_t index)>;

// The last_log_index to hand to libraft for a successful AppendEntries
// result reporting `reported` (see the rules above). Never above `reported`.
uint64_t GuardedLastLogIndex(uint64_t reported, const CommitGuardView& view,
                             CommitGuardTermOf term_of);

// Rewrites `message` in place when it is a RAFT_IO_APPEND_ENTRIES_RESULT with
// rejected == 0 and the local current term (libraft ignores results of other
// terms or steps down on them). Returns true when last_log_index was lowered.
bool GuardAppendEntriesResult(raft_message* message, const CommitGuardView& view,
                              CommitGuardTermOf term_of);

}  // namespace raftstore
}  // namespace segwal

#endif  // SEGWAL_RAFT_COMMIT_GUARD_H_
