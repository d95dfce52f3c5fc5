// The small types shared by the public API (segmented_wal.h) and the layers
// below it (payload_codec, segment_reader, recovery_scan): records, the
// compression and recovery-mode enums. Here so
// that no lower layer includes the public header. Part of the public API:
// segmented_wal.h includes this file, and users may include either.

#ifndef SEGWAL_WAL_WAL_RECORD_H_
#define SEGWAL_WAL_WAL_RECORD_H_

#include <cstdint>
#include <string>

namespace segwal {

enum class Compression { kNone, kSnappy };

enum class RecoveryMode {
  // Default. A torn or partial tail after the last good record of the last segment
  // (bytes never acknowledged durable) is dropped, reported, and cut off the file.
  // Damage anywhere else (a sealed segment, or bytes a later record proves were
  // durable) fails Open with DataLoss naming file and offset. Open reads only the
  // last segment and the footers of the others.
  kTolerateCorruptedTail,
  // Any torn or corrupt byte fails Open. Open verifies every record of every segment.
  kAbsoluteConsistency,
  // Recovery stops at the first bad record; everything after it is discarded and
  // reported (the bad segment is cut there; later segments are moved to
  // `<wal_dir>/quarantine/`, never deleted). Open verifies every segment.
  kPointInTimeRecovery,
  // Bad records are skipped and reported; the log continues after them (LSNs of
  // skipped records are missing from replay). Open verifies every segment.
  kSkipAnyCorruptedRecords,
};

struct WalRecord {
  uint64_t lsn = 0;
  uint32_t record_type = 0;
  uint64_t tenant_id = 0;
  uint32_t vshard_id = 0;
  uint64_t database_id = 0;  // 0 = default database
  std::string payload;

  friend bool operator==(const WalRecord& a, const WalRecord& b) {
    return a.lsn == b.lsn && a.record_type == b.record_type &&
           a.tenant_id == b.tenant_id && a.vshard_id == b.vshard_id &&
           a.database_id == b.database_id && a.payload == b.payload;
  }
};

}  // namespace segwal

#endif  // SEGWAL_WAL_WAL_RECORD_H_
