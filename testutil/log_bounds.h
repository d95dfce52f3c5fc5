// The durability rule every crash check applies to a log read back after a
// crash, whatever wrote it and however it knows its records: the in-process
// crash tests (wal/wal_crash_test_harness.h, WalModel: a copy of every record)
// and wal_stress across real kills (stress/expected_state.h: self-describing
// payloads and a crash-safe expected-state file). What differs between them is
// how a record's identity is checked, so that stays theirs; the bounds a
// recovered log must keep are this one function.
//
// A recovered log [first, last] (LSNs contiguous; next_lsn its next LSN) is a
// valid outcome when:
//   - it starts in [first_min, first_max]: no lower than a truncation known to
//     be durable, no higher than the highest checkpoint ever passed to
//     TruncateBefore (a truncation cut short may or may not have taken effect);
//   - it reaches every acknowledged LSN: last >= acked (acknowledged LSNs
//     below the log's start were truncated, not lost);
//   - next_lsn == last + 1; an empty log's next_lsn is in [first_min,
//     first_max] (when the caller knows first_min) and above acked.
//
// Thread safety: a pure function.

#ifndef SEGWAL_TESTUTIL_LOG_BOUNDS_H_
#define SEGWAL_TESTUTIL_LOG_BOUNDS_H_

#include <cstdint>
#include <string>

namespace segwal {
namespace testutil {

struct ExpectedLogBounds {
  // The log cannot start below this (a durable truncation, or 1). 0: not
  // known (wal_stress records only the checkpoints it asked for).
  uint64_t first_min = 1;
  // The highest checkpoint passed to TruncateBefore (1 if none).
  uint64_t first_max = 1;
  // Every LSN in [first_max, acked] was acknowledged durable.
  uint64_t acked = 0;
};

struct RecoveredLogBounds {
  bool empty = true;
  uint64_t first = 0;  // valid unless empty
  uint64_t last = 0;   // valid unless empty
  uint64_t next_lsn = 0;  // 0: not known (a log read without its WAL)
};

struct LogBoundsVerdict {
  bool ok = true;
  uint64_t first_bad_lsn = 0;  // valid when !ok
  uint64_t acked_lost = 0;     // acknowledged LSNs the log does not hold
  std::string error;           // names the first bad LSN
};

LogBoundsVerdict CheckLogBounds(const RecoveredLogBounds& got,
                                const ExpectedLogBounds& want);

}  // namespace testutil
}  // namespace segwal

#endif  // SEGWAL_TESTUTIL_LOG_BOUNDS_H_
