// The record and compression types shared by the public API (segmented_wal.h)
// and the layers below it (payload_codec, segment_reader, recovery_scan), so
// that no lower layer includes the public header. Part of the public API:
// segmented_wal.h includes this file, and users may include either.

#ifndef SEGWAL_WAL_WAL_RECORD_H_
#define SEGWAL_WAL_WAL_RECORD_H_

#include <cstdint>
#include <string>

namespace segwal {

enum class Compression { kNone, kSnappy };

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
