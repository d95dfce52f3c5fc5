// The payloads of segkv's WAL records (kv/FORMAT.md, "Records"): encoding a
// Mutation, and decoding a record back into views of its payload. Stateless;
// safe from any thread.

#ifndef SEGWAL_KV_RECORD_CODEC_H_
#define SEGWAL_KV_RECORD_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kv/kv_store.h"

namespace segwal {
namespace kv {

// A decoded record. The views point into the payload it was decoded from.
struct DecodedRecord {
  KvOp op = KvOp::kSet;
  std::vector<absl::string_view> keys;
  std::vector<absl::string_view> values;
  int64_t delta = 0;   // kIncrBy
  int64_t result = 0;  // kIncrBy: the value after the increment
};

// The payload of m's record. REQUIRES: m is well formed (KvStore validates).
// incr_result is the value a kIncrBy leaves (ignored for other ops).
std::string EncodeRecord(const Mutation& m, int64_t incr_result);

// Decodes a record written by EncodeRecord. DataLoss naming what is wrong for
// an unknown record type or a payload that does not parse exactly.
absl::StatusOr<DecodedRecord> DecodeRecord(uint32_t record_type,
                                           absl::string_view payload);

// Varints (LEB128, as LevelDB's) and ZigZag for signed values.
void PutVarint64(std::string* dst, uint64_t v);
bool GetVarint64(absl::string_view* in, uint64_t* v);
void PutLengthPrefixed(std::string* dst, absl::string_view s);
bool GetLengthPrefixed(absl::string_view* in, absl::string_view* s);
inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
}

}  // namespace kv
}  // namespace segwal

#endif  // SEGWAL_KV_RECORD_CODEC_H_
