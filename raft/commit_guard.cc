// CommitGuard's rewrite of AppendEntries results (raft/commit_guard.h holds
// the argument). Pure functions; no state, no locks.

#include "raft/commit_guard.h"

#include <algorithm>

namespace segwal {
namespace raftstore {

uint64_t GuardedLastLogIndex(uint64_t reported, const CommitGuardView& view,
                             CommitGuardTermOf term_of) {
  const uint64_t floor = view.committed_floor;
  if (reported <= floor) return reported;
  // A leader's log holds no term above its current one and terms never go
  // down along a log: the highest term-T index <= k is k itself or none.
  const uint64_t k = std::min(reported, view.last_index);
  const bool k_is_current = k > floor && term_of(k) == view.current_term;
  const bool leader_holds_current =
      view.durable_index > 0 && term_of(view.durable_index) == view.current_term;
  if (k_is_current && leader_holds_current) return k;
  return std::min(floor, reported);
}

bool GuardAppendEntriesResult(raft_message* message, const CommitGuardView& view,
                              CommitGuardTermOf term_of) {
  if (message->type != RAFT_IO_APPEND_ENTRIES_RESULT) return false;
  raft_append_entries_result& result = message->append_entries_result;
  if (result.rejected != 0 || result.term != view.current_term) return false;
  const uint64_t guarded = GuardedLastLogIndex(result.last_log_index, view, term_of);
  if (guarded >= result.last_log_index) return false;
  result.last_log_index = guarded;
  return true;
}

}  // namespace raftstore
}  // namespace segwal
