// Parallel replay (SegmentedWalOptions::replay_threads): reads a snapshot of
// segments (SegmentView) into a ReplayPage, splitting a range of several
// segments into contiguous runs balanced by bytes and decoding each run on its
// own thread (the calling thread takes the first), then joining the runs in
// LSN order. SegmentIterator carries no state from one segment to the next
// and each SegmentView is self-contained, so the result is exactly that of a
// sequential read: the same records in the same order, or the error of the
// earliest failing run and no records.
//
// Thread safety: ReadViews is a free function; the threads it starts share
// only an atomic (the first failed run) and join before it returns. No lock.

#ifndef SEGWAL_WAL_PARALLEL_REPLAY_H_
#define SEGWAL_WAL_PARALLEL_REPLAY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/key_ring.h"
#include "env/env.h"
#include "wal/segment_iterator.h"
#include "wal/segmented_wal.h"

namespace segwal {

struct ReplayOptions {
  size_t threads = 1;                 // at most this many (>= 1)
  uint64_t min_bytes_per_thread = 0;  // 0: one thread per segment allowed
  uint64_t max_record_size = 0;
};

// Reads the records with LSN >= from_lsn of `views` (at most max_records;
// has_more as ReplayFromLimit promises). A range is split over threads only
// when every LSN of it fits in the page.
absl::StatusOr<ReplayPage> ReadViews(Env* env, std::vector<SegmentView> views,
                                     uint64_t from_lsn, size_t max_records,
                                     const ReplayOptions& options,
                                     std::shared_ptr<const KeyRing> ring);

}  // namespace segwal

#endif  // SEGWAL_WAL_PARALLEL_REPLAY_H_
