// WalInspector: reads a WAL directory the way an operator's tool must — without
// opening it for writing. It takes no lock, creates, truncates or renames
// nothing, and works while a SegmentedWal has the directory open (it then sees
// the bytes handed to the OS so far).
//
// It checks what Open in kAbsoluteConsistency checks — every segment header,
// every record's two CRCs, LSN continuity within and across segments, every
// footer (trailer, CRCs, record count, last LSN, index) — and classifies damage
// with FORMAT.md's rule ("Recovery: telling a torn tail from corruption"),
// reading each segment with recovery's own scan (wal/recovery_scan.h), so its
// verdict matches what Open would do (fuzz/recovery_verdict checks it):
//   - torn tail: in the last segment, bytes no later valid frame proves durable
//     (Open in kTolerateCorruptedTail drops them);
//   - corruption: damage in any other segment, or bytes a later frame of the
//     last segment proves were acknowledged durable (Open fails with DataLoss).
// Unlike Open it does not stop at the first problem: it reads every segment, so
// one pass lists every damaged segment.
//
// Records are read raw (SegmentReader::set_raw), so an encrypted segment's
// records are listed and their CRCs checked even without its key. With the key
// (InspectOptions::keys) payloads are also decoded (AEAD tag, Snappy) and a
// payload that does not decode is corruption, as it is for Open.
//
// Thread safety: InspectWal is a free function with no shared state.

#ifndef SEGWAL_WAL_WAL_INSPECTOR_H_
#define SEGWAL_WAL_WAL_INSPECTOR_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/key_ring.h"
#include "env/env.h"
#include "wal/format.h"
#include "wal/segmented_wal.h"

namespace segwal {

struct WalProblem {
  enum class Kind {
    kTornTail,     // last segment: bytes never acknowledged durable
    kCorruption,   // durable bytes are damaged
    kChain,        // LSNs missing or repeated between two segments
    kUnsupported,  // a segment written by a newer format version
    kIo,           // a read failed
  };
  Kind kind = Kind::kCorruption;
  std::string file;     // path of the segment
  uint64_t offset = 0;  // where the damage starts
  uint64_t lsn = 0;     // the LSN expected there (0: not applicable)
  uint64_t bytes = 0;   // from offset to the end of the file
  std::string reason;

  // "torn tail", "corruption", "broken segment chain", ...
  static const char* KindName(Kind kind);
  // "<kind> at <file> offset <offset> (LSN <lsn>): <reason>"
  std::string ToString() const;
};

// What the inspector found in one segment file.
struct InspectedSegment {
  std::string name;       // file name, e.g. 00000000000000000001.wal
  std::string path;       // wal_dir + "/" + name
  uint64_t name_lsn = 0;  // first LSN according to the file name
  uint64_t file_size = 0;
  bool is_last = false;  // the last segment of the directory (the active one)

  bool header_ok = false;
  wal_format::SegmentHeader header;  // valid when header_ok

  // False if the segment was not read at all: it lies entirely before
  // InspectOptions::from_lsn (or the visitor stopped the inspection first).
  bool read = false;
  // True if reading started at the first record (not seeked through the index):
  // then records / last_lsn / footer checks cover the whole segment.
  bool read_from_start = false;
  uint64_t records = 0;   // valid records read (before any damage)
  uint64_t last_lsn = 0;  // of those records (name_lsn - 1 when none)
  // Just after the last valid record: where a cut goes.
  uint64_t end_offset = 0;
  uint64_t stored_payload_bytes = 0;  // sum of stored payload lengths read
  // Padding frames read (FORMAT.md, "Padding frames") and their bytes.
  uint64_t padding_frames = 0;
  uint64_t padding_bytes = 0;
  // Why payloads of this segment cannot be decoded (an encrypted segment whose
  // key is not in InspectOptions::keys); empty when they can.
  std::string decode_note;

  // A valid footer ends the file and agrees with the records.
  bool sealed = false;
  bool zero_tail = false;  // zero bytes after the last record (a clean end)
  // Present when the segment is damaged; the first problem in it.
  std::optional<WalProblem> problem;
  // Valid frames of this segment found after the damage (what a cut there
  // loses), as the highest LSN among them, or 0.
  uint64_t max_lsn_after_damage = 0;
};

// One valid record, as visited.
struct InspectedRecord {
  const InspectedSegment* segment;
  uint64_t offset;                  // of the record header in the file
  wal_format::RecordHeader header;  // flags, stored length, durable LSN
  const WalRecord* record;          // payload as stored
  // The payload decoded (decrypted, decompressed), or nullptr when the
  // segment's key is missing (segment->decode_note says so).
  const std::string* payload;
};

// Return false to stop the inspection (the result is then partial).
using RecordVisitor = std::function<bool(const InspectedRecord&)>;

struct InspectOptions {
  Env* env = nullptr;  // nullptr => Env::Default()
  // As SegmentedWalOptions::max_record_size: larger stored lengths are damage.
  uint64_t max_record_size = 64 << 20;
  // Keys to decode encrypted segments with, any number (may be null); each
  // segment uses the one its header names. Must outlive the call.
  const std::vector<WalEncryptionKey>* keys = nullptr;
  // Visit records with LSN >= from_lsn only. Segments that lie entirely before
  // it are not read, and a sealed segment holding it is entered through its
  // footer index. 0 or 1: everything.
  uint64_t from_lsn = 0;
  // Read segment headers only (versions, key ids): no record is read, and only
  // header problems are found.
  bool headers_only = false;
};

struct WalInspection {
  std::string wal_dir;
  std::vector<InspectedSegment> segments;  // by first LSN
  // Problems in log order; front() is the first one. Empty: the WAL is clean.
  std::vector<WalProblem> problems;
  uint64_t records = 0;    // valid records read, in every segment
  uint64_t first_lsn = 0;  // lowest and highest LSN read (0 when none)
  uint64_t last_lsn = 0;
  bool stopped = false;         // the visitor stopped the inspection
  bool has_quarantine = false;  // a quarantine/ subfolder exists
  // Spare files (FORMAT.md, "Spare files"): part of the WAL, no records.
  std::vector<std::string> spare_files;
  // Names that are not segments (LOCK, quarantine/ and spares excluded).
  std::vector<std::string> other_files;

  bool clean() const { return problems.empty(); }
};

// Inspects wal_dir read-only, calling `visit` (if set) for every valid record
// in file order (LSN order for a healthy log). NotFound if wal_dir does not
// exist; FailedPrecondition if it holds no segment file (not a WAL). Damage is
// not an error: it is in the result's problems.
absl::StatusOr<WalInspection> InspectWal(const std::string& wal_dir,
                                         const InspectOptions& options,
                                         const RecordVisitor& visit = nullptr);

// Whether another SegmentedWal (this process or another) holds wal_dir's LOCK.
// Probes by taking and at once releasing the lock when the LOCK file exists
// (never creates it); kUnknown if that cannot be done (e.g. no write
// permission). Note: a SegmentedWal::Open racing with the probe can fail to get
// the lock.
enum class WalLockState { kFree, kHeld, kUnknown };
WalLockState ProbeWalLock(Env* env, const std::string& wal_dir);

}  // namespace segwal

#endif  // SEGWAL_WAL_WAL_INSPECTOR_H_
