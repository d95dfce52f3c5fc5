// CheckLogBounds: see log_bounds.h.

#include "testutil/log_bounds.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace segwal {
namespace testutil {
namespace {

LogBoundsVerdict Bad(uint64_t lsn, uint64_t lost, std::string error) {
  LogBoundsVerdict v;
  v.ok = false;
  v.first_bad_lsn = lsn;
  v.acked_lost = lost;
  v.error = absl::StrCat("first bad LSN ", lsn, ": ", error);
  return v;
}

}  // namespace

LogBoundsVerdict CheckLogBounds(const RecoveredLogBounds& got,
                                const ExpectedLogBounds& want) {
  const uint64_t first_max = std::max<uint64_t>({want.first_max, want.first_min, 1});
  if (got.empty) {
    if (want.acked >= first_max) {
      return Bad(first_max, want.acked - first_max + 1,
                 absl::StrCat("the log is empty (next LSN ", got.next_lsn,
                              ") but LSNs ", first_max, "..", want.acked,
                              " were acknowledged durable"));
    }
    if (got.next_lsn != 0 && want.first_min != 0 &&
        (got.next_lsn < want.first_min || got.next_lsn > first_max)) {
      return Bad(std::min(got.next_lsn, want.first_min), 0,
                 absl::StrCat("the log is empty with next LSN ", got.next_lsn,
                              "; expected the truncation floor, in [",
                              want.first_min, ", ", first_max, "]"));
    }
    return LogBoundsVerdict();
  }
  if (want.first_min != 0 && got.first < want.first_min) {
    return Bad(got.first, 0,
               absl::StrCat("the log starts at LSN ", got.first,
                            " but a durable truncation removed everything below ",
                            want.first_min));
  }
  // Without first_min (wal_stress), a start above first_max is checked only
  // where acknowledged LSNs are at stake, as wal_stress always did.
  if (got.first > first_max && (want.first_min != 0 || want.acked >= first_max)) {
    const uint64_t lost =
        want.acked >= first_max
            ? std::min(got.first - 1, want.acked) - first_max + 1
            : 0;
    return Bad(first_max, lost,
               absl::StrCat("the log starts at LSN ", got.first,
                            " but nothing at or above ", first_max,
                            " was truncated; LSNs ", first_max, "..",
                            got.first - 1, " are missing"));
  }
  if (got.last < want.acked) {
    return Bad(got.last + 1, want.acked - got.last,
               absl::StrCat("the log ends at LSN ", got.last, " but LSNs up to ",
                            want.acked, " were acknowledged durable"));
  }
  if (got.next_lsn != 0 && got.next_lsn != got.last + 1) {
    return Bad(got.last + 1, 0,
               absl::StrCat("the WAL's next LSN is ", got.next_lsn,
                            " but the log ends at LSN ", got.last));
  }
  return LogBoundsVerdict();
}

}  // namespace testutil
}  // namespace segwal
