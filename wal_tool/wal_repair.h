// Repair of a damaged WAL directory (what `wal_tool repair` does).
//
// From a WalInspection, PlanRepair works out the smallest change that leaves a
// log SegmentedWal::Open accepts in kTolerateCorruptedTail with every readable
// record before the first damage kept:
//   - a damaged segment is cut back to the end of its last valid record (the
//     bytes cut are first copied to quarantine/<name>.cut-at-<offset>);
//   - segments that cannot be read at all (bad header), or that would no longer
//     continue the LSN chain after a cut or a gap, are renamed into quarantine/
//     (later ones too: the log must stay a contiguous prefix);
//   - a torn creation of the only segment is left for Open, which re-creates it
//     at the same LSN (quarantining it would restart the log at LSN 1).
// Nothing is ever deleted. Quarantine names never overwrite: an existing name
// gets a ".1", ".2", ... suffix.
//
// ApplyRepair performs a plan. REQUIRES: the caller holds the WAL's LOCK.
// Crash safety: quarantines go first, last segment first, so at every moment
// the directory holds a prefix of the original chain; a cut saves its bytes
// (synced) before truncating. Re-running repair after a crash finishes the job.

#ifndef SEGWAL_WAL_TOOL_WAL_REPAIR_H_
#define SEGWAL_WAL_TOOL_WAL_REPAIR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "env/env.h"
#include "wal/wal_inspector.h"

namespace segwal {
namespace wal_tool {

struct RepairAction {
  enum class Kind {
    kCut,         // truncate the segment to `offset`, saving the rest
    kQuarantine,  // rename the whole segment into quarantine/
    kLeave,       // a known problem Open handles itself: nothing to do
  };
  Kind kind = Kind::kCut;
  std::string name;     // segment file name
  uint64_t offset = 0;  // kCut: the new size
  uint64_t bytes = 0;   // bytes taken out of the log
  std::string reason;
  // Where the bytes go (relative to wal_dir), decided when the plan is made.
  std::string quarantine_name;
};

struct RepairPlan {
  std::vector<RepairAction> actions;  // in the order ApplyRepair performs them
  // The log after the repair: LSNs first_lsn..last_lsn (0..0: empty).
  uint64_t first_lsn = 0;
  uint64_t last_lsn = 0;
  // Valid records that leave the log (they stay in quarantine/): after
  // corruption or in quarantined segments (durable data), and after a torn tail
  // (never acknowledged durable, so nothing a caller was promised).
  uint64_t lost_durable_records = 0;
  uint64_t dropped_unacknowledged_records = 0;
  bool no_segment_left = false;       // every segment goes to quarantine/
  std::vector<std::string> warnings;  // durable data leaves the log
  std::vector<std::string> notes;
  bool empty() const { return actions.empty(); }
};

// FailedPrecondition if the inspection holds a problem repair must not touch:
// an I/O error, or a segment written by a newer format version.
absl::StatusOr<RepairPlan> PlanRepair(Env* env,
                                      const WalInspection& inspection);

// One line per action, "cut ...", "quarantine ...", "leave ...".
std::string DescribeAction(const RepairAction& action);

absl::Status ApplyRepair(Env* env, const std::string& wal_dir,
                         const RepairPlan& plan);

}  // namespace wal_tool
}  // namespace segwal

#endif  // SEGWAL_WAL_TOOL_WAL_REPAIR_H_
