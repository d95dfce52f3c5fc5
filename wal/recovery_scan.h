// Recovery's reading of one segment, and what each recovery mode does with the
// damage it finds: the one implementation of FORMAT.md's rule "Recovery:
// telling a torn tail from corruption". SegmentedWal::Open applies it; the
// WAL inspector (wal_inspector.h, wal_tool verify) reports it, so the two give
// the same verdict for the same bytes (fuzz/recovery_verdict checks that).
//
// The rule, for damage found at `offset` where LSN `lsn` was expected:
//   - corruption: the segment is not the last one (it was sealed and synced),
//     or a valid frame after the damage carries a durable LSN >= `lsn` (the
//     damaged bytes had been acknowledged durable), or the damaged frame's
//     CRCs matched but its payload does not decode (AEAD tag, Snappy, a
//     padding frame of the wrong shape): a torn write cannot do that;
//   - torn tail: otherwise (last segment, bytes never acknowledged durable).
// A footer frame (CRCs matched) must agree with the records before it: its
// trailer, record count, last LSN and index (count and index when the scan
// started at the first record, and only before any skip); if it does not,
// that is corruption at the footer.
// Valid frames never overlap: the search for later frames continues after the
// end of each valid frame it finds, so a frame-shaped byte string inside a
// valid frame's payload (a record may hold anything) is payload, never proof.
//
// Thread safety: free functions over a SegmentReader the caller owns (one
// thread at a time, as SegmentReader requires). No lock, no shared state.

#ifndef SEGWAL_WAL_RECOVERY_SCAN_H_
#define SEGWAL_WAL_RECOVERY_SCAN_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "wal/format.h"
#include "wal/segment_reader.h"
#include "wal/wal_record.h"

namespace segwal {

// Damage a scan found in a segment, classified by the rule above.
struct ScannedDamage {
  uint64_t offset = 0;  // where the damaged frame starts
  uint64_t lsn = 0;     // the LSN expected there
  std::string reason;   // what is wrong, without file or offset
  // A later valid frame's durable LSN is >= lsn.
  bool proof = false;
  // The frame's CRCs matched but it does not decode (see above).
  bool undecodable = false;
  // Damage of durable bytes (the rule above); else a torn tail.
  bool corruption = false;
  // The first valid record frame after the damage whose LSN continues the log
  // (LSN >= lsn): where kSkipAnyCorruptedRecords resumes. nullopt: none.
  std::optional<uint64_t> resume_offset;
  uint64_t resume_lsn = 0;
  // The highest LSN of the valid record frames after the damage (what a cut
  // there loses), or 0. Exact only with ScanOptions::search_whole_tail.
  uint64_t max_lsn_after = 0;
};

// A span kSkipAnyCorruptedRecords recovery skipped: damage at `offset`,
// resumed at the record frame at `resume_offset` (LSN `resume_lsn`). Readers
// replay exactly these jumps, so they return exactly the records recovery
// counted.
struct SkipRange {
  uint64_t offset;
  uint64_t resume_offset;
  uint64_t resume_lsn;
};

// What a scan of one segment found.
struct SegmentScan {
  uint64_t end_offset = 0;  // after the last kept frame (record or padding)
  uint64_t last_lsn = 0;    // of the last kept record (first LSN - 1: none)
  uint64_t count = 0;       // records kept
  // The sparse LSN index a writer would have built (FORMAT.md, "Footer").
  std::vector<wal_format::IndexEntry> index;
  bool sealed = false;          // ended with a valid footer that agrees
  uint64_t footer_offset = 0;   // where that footer starts
  bool zero_tail = false;       // a clean end: zeros after the last frame
  bool stopped = false;         // the record check asked to stop
  uint64_t padding_frames = 0;  // padding frames kept, and their bytes
  uint64_t padding_bytes = 0;
  uint64_t stored_payload_bytes = 0;  // stored lengths of the records kept
  // Damage that kSkipAnyCorruptedRecords skipped (the scan went on), in
  // offset order; each has a resume_offset.
  std::vector<ScannedDamage> skipped;
  // The damage the scan ended at (after any it skipped), or nullopt.
  std::optional<ScannedDamage> damage;

  std::vector<SkipRange> SkipRanges() const;
};

// What a ScanOptions::check_record callback says of a valid record frame.
struct RecordCheck {
  enum Verdict {
    kKeep,         // count it and go on
    kUndecodable,  // damage: its CRCs matched but it does not decode (reason)
    kStop,         // count it and end the scan here (scan.stopped)
  };
  Verdict verdict = kKeep;
  std::string reason;
};

struct ScanOptions {
  // The last segment of the log: damage no later frame proves durable is a
  // torn tail. Else any damage is corruption, and so are zero bytes after the
  // last record (a non-last segment ends with its footer or its last record).
  bool is_last = false;
  // kSkipAnyCorruptedRecords: damage that is corruption and has a later
  // record frame to resume at is skipped (scan.skipped) and the scan goes on,
  // checking LSNs no further (a torn tail is never skipped: records after it
  // in the unsynced window were never acknowledged).
  bool skip_damage = false;
  // Look at every valid frame after the final damage (for max_lsn_after),
  // not only until the verdict is known. The verdict is the same either way.
  bool search_whole_tail = false;
  // Called for every valid record frame before it is kept (offset of its
  // header, header, record as the reader returned it). Optional.
  std::function<RecordCheck(uint64_t offset, const wal_format::RecordHeader&,
                            WalRecord*)>
      check_record;
};

// Scans from the reader's position (where expected_lsn() is expected) to the
// end of the segment or the damage that ends the scan. The result describes
// what was found; the returned status is not OK only when a read failed (an
// I/O error or a missing key: never mistaken for damage).
absl::Status ScanSegment(SegmentReader* reader, const ScanOptions& options,
                         SegmentScan* scan);

// What recovery does with damage a scan ended at.
enum class DamageAction {
  kFailOpen,  // Open fails with DataLoss naming file, offset and LSN
  kCut,       // the segment is cut at the damage, the rest dropped (and, in
              // kPointInTimeRecovery, later segments moved to quarantine/)
  kKeep,      // kSkipAnyCorruptedRecords, non-last segment: the bytes stay,
              // readers skip them
};
DamageAction DecideDamage(RecoveryMode mode, bool is_last,
                          const ScannedDamage& damage);

// "torn tail" or "corruption".
const char* DamageKindName(const ScannedDamage& damage);

}  // namespace segwal

#endif  // SEGWAL_WAL_RECOVERY_SCAN_H_
