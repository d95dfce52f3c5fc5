// SegmentIterator: streams the records of a snapshot of segments
// (SegmentView, copied under the WAL's lock by SegmentedWal::Impl::Snapshot),
// reading each segment with a SegmentReader. It owns nothing shared and takes
// no lock: a snapshot is self-contained, which is what lets parallel replay
// (parallel_replay.h) run one iterator per run of segments.
//
// kSkipAnyCorruptedRecords: it replays exactly the jumps recovery made
// (SegmentView::skips), so it returns exactly the records recovery counted.
//
// Thread safety: one thread at a time per iterator.

#ifndef SEGWAL_WAL_SEGMENT_ITERATOR_H_
#define SEGWAL_WAL_SEGMENT_ITERATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "crypto/key_ring.h"
#include "env/env.h"
#include "wal/format.h"
#include "wal/recovery_scan.h"
#include "wal/segment_reader.h"
#include "wal/segmented_wal.h"

namespace segwal {

// What a reader needs of one segment, copied under the lock.
struct SegmentView {
  std::string path;
  uint64_t first_lsn;
  uint64_t last_lsn;  // first_lsn - 1 when empty
  uint64_t size;      // readable bytes
  bool skip_damage;
  std::vector<SkipRange> skips;   // recovery's jumps in this segment
  std::vector<wal_format::IndexEntry> index;  // only for the segment a read starts in
  // Encrypted when Open read it or this instance created it: a reader that
  // finds otherwise is reading a replaced file.
  bool encrypted = false;
};

// Streams records from a snapshot of segments.
class SegmentIterator : public WalIterator {
 public:
  SegmentIterator(Env* env, std::vector<SegmentView> views, uint64_t from_lsn,
                  uint64_t max_record_size,
                  std::shared_ptr<const KeyRing> ring)
      : env_(env),
        views_(std::move(views)),
        from_lsn_(from_lsn),
        max_record_size_(max_record_size),
        ring_(std::move(ring)) {
    Advance();
  }

  bool Valid() const override { return valid_; }
  void Next() override { Advance(); }
  const WalRecord& record() const override { return record_; }
  absl::Status status() const override { return status_; }
  // For ReadPage: the record may be moved from; Next() refills it.
  WalRecord* mutable_record() { return &record_; }

 private:
  // Opens views_[next_view_] positioned at the first record >= from_lsn_.
  bool OpenNextSegment();

  void Advance();

  Env* env_;
  std::vector<SegmentView> views_;
  const uint64_t from_lsn_;
  const uint64_t max_record_size_;
  const std::shared_ptr<const KeyRing> ring_;  // keys of encrypted segments
  size_t next_view_ = 0;
  // In a segment with skipped damage, LSNs are checked up to the first
  // resync, as recovery's scan does: a valid frame at an unexpected LSN is
  // damage to skip, not a record to return (found by fuzz/open_directory).
  bool resynced_ = false;
  size_t next_skip_ = 0;  // the first of view_->skips not yet passed
  // The last good record of the current segment (the LSN before the first
  // one read when there is none yet), as recovery's scan tracks it.
  uint64_t seg_last_lsn_ = 0;
  const SegmentView* view_ = nullptr;
  std::unique_ptr<SegmentReader> reader_;
  WalRecord record_;
  uint64_t last_lsn_ = 0;
  bool valid_ = false;
  absl::Status status_;
};

}  // namespace segwal

#endif  // SEGWAL_WAL_SEGMENT_ITERATOR_H_
