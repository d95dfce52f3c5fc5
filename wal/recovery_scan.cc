#include "wal/recovery_scan.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace segwal {

using wal_format::kRecordHeaderSize;
using wal_format::kSegmentHeaderSize;
using wal_format::RecordHeader;

namespace {

// Looks at the valid frames after the damage at d->offset: the first record
// frame that continues the log (resume_offset), and any durable LSN that
// proves the damaged bytes were acknowledged (proof). Stops once both are
// known unless `whole_tail`.
void SearchAfterDamage(SegmentReader* reader, bool whole_tail,
                       ScannedDamage* d) {
  RecordHeader later;
  uint64_t search_from = d->offset;
  while (auto off = reader->FindNextValidFrame(search_from, 0, &later)) {
    const bool is_record = (later.flags & (wal_format::kFlagFooter |
                                           wal_format::kFlagPadding)) == 0;
    if (is_record) {
      if (!d->resume_offset.has_value() && later.lsn >= d->lsn) {
        d->resume_offset = *off;
        d->resume_lsn = later.lsn;
      }
      d->max_lsn_after = std::max(d->max_lsn_after, later.lsn);
    }
    if (later.durable_lsn >= d->lsn) d->proof = true;
    if (!whole_tail && d->resume_offset.has_value() && d->proof) break;
    // Valid frames do not overlap: go on after this one's end. A frame found
    // inside its payload is payload (a record may hold any bytes), never
    // proof that the damaged bytes were durable.
    search_from = *off + kRecordHeaderSize + later.payload_length - 1;
  }
}

// The footer frame at `offset` (CRCs matched, it ends the file) against the
// records the scan kept: *why says what disagrees ("" if nothing). The count
// and index are checked only for a scan from the first record. Not OK only
// for a read error.
absl::Status CheckFooter(SegmentReader* reader, uint64_t offset,
                         bool from_start, const SegmentScan& scan,
                         std::string* why) {
  auto footer = reader->ReadFooter();
  if (IsReadError(footer.status())) return footer.status();
  if (!footer.ok()) {
    // SegmentReader's messages start with "<path>...: ".
    absl::string_view m = footer.status().message();
    if (absl::StartsWith(m, reader->path())) {
      const size_t colon = m.find(": ", reader->path().size());
      if (colon != absl::string_view::npos) m.remove_prefix(colon + 2);
    }
    *why = std::string(m);
  } else if (footer->footer_offset != offset) {
    *why = absl::StrCat("footer trailer points to offset ",
                        footer->footer_offset);
  } else if (from_start && footer->record_count != scan.count) {
    *why = absl::StrCat("footer counts ", footer->record_count,
                        " records, the segment holds ", scan.count);
  } else if (footer->record_count != 0 && footer->last_lsn != scan.last_lsn) {
    *why = absl::StrCat("footer says last LSN ", footer->last_lsn,
                        ", the last record has LSN ", scan.last_lsn);
  } else if (from_start &&
             (footer->index.size() != scan.index.size() ||
              !std::equal(scan.index.begin(), scan.index.end(),
                          footer->index.begin(),
                          [](const wal_format::IndexEntry& a,
                             const wal_format::IndexEntry& b) {
                            return a.lsn == b.lsn && a.offset == b.offset;
                          }))) {
    *why = "footer index does not match the records";
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<SkipRange> SegmentScan::SkipRanges() const {
  std::vector<SkipRange> out;
  out.reserve(skipped.size());
  for (const ScannedDamage& d : skipped) {
    out.push_back({d.offset, *d.resume_offset, d.resume_lsn});
  }
  return out;
}

absl::Status ScanSegment(SegmentReader* reader, const ScanOptions& options,
                         SegmentScan* scan) {
  scan->end_offset = reader->position();
  scan->last_lsn = reader->expected_lsn() - 1;
  // From the first record: the footer's count and index can be checked.
  const bool from_start = reader->position() == kSegmentHeaderSize;
  uint64_t next_index_offset = kSegmentHeaderSize;
  // After a skip, LSNs are no longer checked against the expected one (the
  // skipped records are missing), only kept increasing.
  bool resynced = false;
  WalRecord rec;
  RecordHeader h;
  while (true) {
    const uint64_t offset = reader->position();
    SegmentReader::Outcome o = reader->Next(&rec, &h, /*check_lsn=*/!resynced);
    if (o == SegmentReader::Outcome::kRecord && rec.lsn <= scan->last_lsn) {
      o = SegmentReader::Outcome::kBad;  // out of order after a resync
    }
    std::string check_reason;
    bool check_undecodable = false;
    bool stop = false;
    if (o == SegmentReader::Outcome::kRecord && options.check_record) {
      RecordCheck c = options.check_record(offset, h, &rec);
      if (c.verdict == RecordCheck::kUndecodable) {
        reader->Seek(offset, rec.lsn);
        check_reason = std::move(c.reason);
        check_undecodable = true;
        o = SegmentReader::Outcome::kBad;
      } else {
        stop = c.verdict == RecordCheck::kStop;
      }
    }
    switch (o) {
      case SegmentReader::Outcome::kPadding:
        // Kept with the records before it: appends continue after it, on the
        // block boundary it reaches (FORMAT.md, "Padding frames").
        scan->end_offset = reader->position();
        scan->padding_frames++;
        scan->padding_bytes += reader->position() - offset;
        continue;
      case SegmentReader::Outcome::kRecord:
        scan->count++;
        scan->last_lsn = rec.lsn;
        scan->end_offset = reader->position();
        scan->stored_payload_bytes += h.payload_length;
        if (offset >= next_index_offset) {
          scan->index.push_back({rec.lsn, offset});
          next_index_offset = offset + wal_format::kIndexInterval;
        }
        if (stop) {
          scan->stopped = true;
          return absl::OkStatus();
        }
        continue;
      case SegmentReader::Outcome::kEnd:
        if (offset < reader->limit()) {
          scan->zero_tail = true;
          if (!options.is_last) {
            // A non-last segment is sealed, or was closed cleanly by an
            // earlier recovery (FORMAT.md): anything after its last record
            // is damage.
            ScannedDamage d;
            d.offset = offset;
            d.lsn = scan->last_lsn + 1;
            d.reason = "zero bytes after the last record of a non-last segment";
            d.corruption = true;
            scan->damage = std::move(d);
          }
        }
        return absl::OkStatus();
      case SegmentReader::Outcome::kFooter: {
        // Its CRCs matched; what it says must match the records too (after
        // a skip it cannot: the skipped records are missing).
        std::string why;
        if (scan->skipped.empty()) {
          absl::Status s = CheckFooter(reader, offset, from_start, *scan, &why);
          if (!s.ok()) return s;
        }
        if (why.empty()) {
          scan->sealed = true;
          scan->footer_offset = offset;
          return absl::OkStatus();
        }
        ScannedDamage d;
        d.offset = offset;
        d.lsn = scan->last_lsn + 1;
        d.reason = std::move(why);
        d.undecodable = true;  // no torn write makes a frame whose CRCs match
        d.corruption = true;
        scan->damage = std::move(d);
        return absl::OkStatus();
      }
      case SegmentReader::Outcome::kBad:
        break;
    }
    if (!check_undecodable && !reader->io_status().ok()) {
      return reader->io_status();
    }

    // Damage at `offset`.
    ScannedDamage d;
    d.offset = offset;
    d.lsn = scan->last_lsn + 1;
    if (check_undecodable) {
      d.reason = std::move(check_reason);
      d.undecodable = true;
    } else {
      d.reason = reader->bad_reason().empty() ? "record out of LSN order"
                                              : reader->bad_reason();
      d.undecodable = reader->bad_after_checksums();
    }
    SearchAfterDamage(reader, options.search_whole_tail, &d);
    if (!reader->io_status().ok()) return reader->io_status();
    d.corruption = !options.is_last || d.proof || d.undecodable;
    if (options.skip_damage && d.resume_offset.has_value() &&
        (d.proof || !options.is_last)) {
      reader->Seek(*d.resume_offset, d.resume_lsn);
      resynced = true;
      scan->skipped.push_back(std::move(d));
      continue;
    }
    scan->damage = std::move(d);
    return absl::OkStatus();
  }
}

DamageAction DecideDamage(RecoveryMode mode, bool is_last,
                          const ScannedDamage& damage) {
  switch (mode) {
    case RecoveryMode::kAbsoluteConsistency:
      return DamageAction::kFailOpen;
    case RecoveryMode::kTolerateCorruptedTail:
      return damage.corruption ? DamageAction::kFailOpen : DamageAction::kCut;
    case RecoveryMode::kPointInTimeRecovery:
      return DamageAction::kCut;
    case RecoveryMode::kSkipAnyCorruptedRecords:
      return is_last ? DamageAction::kCut : DamageAction::kKeep;
  }
  return DamageAction::kFailOpen;
}

const char* DamageKindName(const ScannedDamage& damage) {
  return damage.corruption ? "corruption" : "torn tail";
}

}  // namespace segwal
