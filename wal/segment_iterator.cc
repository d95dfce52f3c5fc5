#include "wal/segment_iterator.h"

#include "absl/strings/str_cat.h"

namespace segwal {

using wal_format::IndexEntry;
using wal_format::kSegmentHeaderSize;
using wal_format::RecordHeader;

bool SegmentIterator::OpenNextSegment() {
  while (next_view_ < views_.size()) {
    const SegmentView& v = views_[next_view_++];
    if (v.last_lsn < v.first_lsn) continue;  // empty segment
    if (v.last_lsn < from_lsn_) continue;
    auto r = SegmentReader::Open(env_, v.path, v.size, max_record_size_,
                                 ring_.get());
    if (!r.ok()) {
      status_ = r.status();
      if (absl::IsNotFound(status_)) {
        status_ = absl::OutOfRangeError(absl::StrCat(
            "segment ", v.path, " was truncated while it was being read"));
      }
      return false;
    }
    if ((*r)->encrypted() != v.encrypted) {
      status_ = absl::DataLossError(absl::StrCat(
          v.path, " offset 0: the segment was ",
          v.encrypted ? "encrypted" : "plaintext",
          " when the log opened or created it, but its header now says ",
          v.encrypted ? "plaintext" : "encrypted",
          ": the file was replaced"));
      return false;
    }
    reader_ = std::move(*r);
    view_ = &v;
    resynced_ = false;
    uint64_t offset = kSegmentHeaderSize, lsn = v.first_lsn;
    for (const IndexEntry& e : v.index) {  // sparse index: last entry <= from
      if (e.lsn > from_lsn_) break;
      offset = e.offset;
      lsn = e.lsn;
    }
    reader_->Seek(offset, lsn);
    seg_last_lsn_ = lsn - 1;
    // Recovery's scan checked LSNs until its first skip: so do we, from
    // wherever on its path this read starts.
    next_skip_ = 0;
    while (next_skip_ < v.skips.size() && v.skips[next_skip_].offset < offset) {
      ++next_skip_;
    }
    resynced_ = next_skip_ > 0;
    return true;
  }
  return false;
}

void SegmentIterator::Advance() {
  valid_ = false;
  if (!status_.ok()) return;
  while (true) {
    if (reader_ == nullptr && !OpenNextSegment()) return;
    // Done once the segment's last LSN was read (not merely sought: a
    // resync may land on a frame that recovery did not keep).
    if (seg_last_lsn_ >= view_->last_lsn) {
      reader_.reset();
      continue;
    }
    RecordHeader h;
    const uint64_t at = reader_->position();
    if (view_->skip_damage) {
      // Jump where recovery jumped: the same bytes, the same records.
      while (next_skip_ < view_->skips.size() &&
             view_->skips[next_skip_].offset < at) {
        ++next_skip_;  // passed by a fallback resync (below)
      }
      if (next_skip_ < view_->skips.size() &&
          view_->skips[next_skip_].offset == at) {
        const SkipRange& k = view_->skips[next_skip_++];
        reader_->Seek(k.resume_offset, k.resume_lsn);
        resynced_ = true;
        continue;
      }
    }
    SegmentReader::Outcome o =
        reader_->Next(&record_, &h,
                      /*check_lsn=*/!view_->skip_damage || !resynced_);
    if (o == SegmentReader::Outcome::kPadding) continue;
    if (o == SegmentReader::Outcome::kRecord && view_->skip_damage &&
        record_.lsn <= seg_last_lsn_) {
      o = SegmentReader::Outcome::kBad;  // out of order after a resync
    }
    if (o == SegmentReader::Outcome::kRecord &&
        record_.lsn > view_->last_lsn) {
      reader_.reset();  // beyond what recovery kept (or was written)
      continue;
    }
    if (o == SegmentReader::Outcome::kRecord) {
      seg_last_lsn_ = record_.lsn;
      if (record_.lsn < from_lsn_) continue;
      last_lsn_ = record_.lsn;
      valid_ = true;
      if (record_.lsn >= view_->last_lsn) reader_.reset();
      return;
    }
    if (o == SegmentReader::Outcome::kBad) {
      if (!reader_->io_status().ok()) {
        status_ = reader_->io_status();
        return;
      }
      if (view_->skip_damage) {
        // Damage recovery did not see (it appeared after Open): resume at
        // the first valid record frame after it (never a stray footer)
        // whose LSN is above the last good one of this segment.
        RecordHeader next;
        auto off = reader_->FindNextValidFrame(at, seg_last_lsn_ + 1, &next);
        while (off.has_value() && (next.flags & (wal_format::kFlagFooter |
                                                 wal_format::kFlagPadding))) {
          off = reader_->FindNextValidFrame(*off, seg_last_lsn_ + 1, &next);
        }
        if (off.has_value()) {
          reader_->Seek(*off, next.lsn);
          resynced_ = true;
          continue;
        }
        reader_.reset();
        continue;
      }
      if (!env_->FileExists(view_->path)) {
        // TruncateBefore removed (or recycled and reused) it meanwhile.
        status_ = absl::OutOfRangeError(absl::StrCat(
            "segment ", view_->path, " was truncated while it was being read"));
        return;
      }
      status_ = absl::DataLossError(absl::StrCat(
          reader_->path(), " offset ", reader_->position(), " (LSN ",
          reader_->expected_lsn(), "): ", reader_->bad_reason()));
      return;
    }
    // kEnd or kFooter: this segment is done.
    if (!view_->skip_damage && reader_->expected_lsn() <= view_->last_lsn) {
      status_ = absl::DataLossError(absl::StrCat(
          reader_->path(), " offset ", reader_->position(),
          ": segment ends before LSN ", view_->last_lsn));
      return;
    }
    reader_.reset();
  }
}

}  // namespace segwal
