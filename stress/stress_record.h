// The records wal_stress appends: each one says who wrote it and proves it is
// intact, so a log read back after a crash can be checked record by record
// without a copy of what was written.
//
// Payload (little-endian):
//   0   4  magic "STRS"
//   4   4  generation  (one per wal_stress process / in-process cycle)
//   8   4  thread      (writer thread within the generation)
//   12  4  body length
//   16  8  seq         (0, 1, 2, ... per (generation, thread))
//   24  8  prev_lsn    (LSN the same thread's previous record got; 0 for seq 0)
//   32  8  seed        (the run's base seed)
//   40  n  body        (bytes derived from (seed, generation, thread, seq))
//   40+n 4 CRC32C of bytes [0, 40+n)
// The WAL header fields are derived too: record_type = generation, tenant_id =
// thread, vshard_id = low 32 bits of seq, database_id = a hash of the identity.
// prev_lsn chains each thread's records to LSNs, so a record moved to another
// LSN, duplicated or dropped from the middle breaks the chain.
//
// Thread safety: pure functions.

#ifndef SEGWAL_STRESS_STRESS_RECORD_H_
#define SEGWAL_STRESS_STRESS_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace stress {

struct RecordId {
  uint32_t generation = 0;
  uint32_t thread = 0;
  uint64_t seq = 0;
  friend bool operator==(const RecordId& a, const RecordId& b) {
    return a.generation == b.generation && a.thread == b.thread &&
           a.seq == b.seq;
  }
};

// What Append is called with for one stress record.
struct StressRecord {
  uint32_t record_type = 0;
  uint64_t tenant_id = 0;
  uint32_t vshard_id = 0;
  uint64_t database_id = 0;
  std::string payload;
};

// A seeded splitmix64 step: the hash every derived value uses.
uint64_t Mix64(uint64_t x);

// Builds the record (id, prev_lsn) with a body of `body_len` bytes.
StressRecord MakeRecord(uint64_t seed, const RecordId& id, uint64_t prev_lsn,
                        uint32_t body_len);

// What a record read back encodes, once every check passed.
struct DecodedRecord {
  RecordId id;
  uint64_t prev_lsn = 0;
  uint64_t seed = 0;
  uint32_t crc = 0;  // the payload's stored CRC (identifies the content)
};

// Checks a record read back: payload framing and CRC, the body against its
// derivation, and the WAL header fields against the payload. Returns "" and
// fills *out, or says what is wrong.
std::string DecodeRecord(const WalRecord& record, DecodedRecord* out);

}  // namespace stress
}  // namespace segwal

#endif  // SEGWAL_STRESS_STRESS_RECORD_H_
