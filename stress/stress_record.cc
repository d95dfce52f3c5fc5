#include "stress/stress_record.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "crypto/crc32c.h"
#include "util/coding.h"

namespace segwal {
namespace stress {
namespace {

constexpr uint32_t kMagic = 0x53525453;  // "STRS"
constexpr size_t kFixedSize = 40;
constexpr size_t kCrcSize = 4;

uint64_t IdHash(uint64_t seed, const RecordId& id) {
  return Mix64(Mix64(seed ^ (uint64_t{id.generation} << 32 | id.thread)) ^
               id.seq);
}

void FillBody(uint64_t seed, const RecordId& id, char* p, size_t n) {
  uint64_t x = IdHash(seed, id);
  for (size_t i = 0; i < n; i += 8) {
    x = Mix64(x);
    memcpy(p + i, &x, std::min<size_t>(8, n - i));
  }
}

}  // namespace

uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

StressRecord MakeRecord(uint64_t seed, const RecordId& id, uint64_t prev_lsn,
                        uint32_t body_len) {
  StressRecord r;
  r.record_type = id.generation;
  r.tenant_id = id.thread;
  r.vshard_id = static_cast<uint32_t>(id.seq);
  r.database_id = IdHash(seed, id);
  r.payload.resize(kFixedSize + body_len + kCrcSize);
  char* p = r.payload.data();
  EncodeFixed32(p, kMagic);
  EncodeFixed32(p + 4, id.generation);
  EncodeFixed32(p + 8, id.thread);
  EncodeFixed32(p + 12, body_len);
  EncodeFixed64(p + 16, id.seq);
  EncodeFixed64(p + 24, prev_lsn);
  EncodeFixed64(p + 32, seed);
  FillBody(seed, id, p + kFixedSize, body_len);
  EncodeFixed32(p + kFixedSize + body_len,
                crc32c::Value(p, kFixedSize + body_len));
  return r;
}

std::string DecodeRecord(const WalRecord& record, DecodedRecord* out) {
  const std::string& s = record.payload;
  if (s.size() < kFixedSize + kCrcSize) {
    return absl::StrCat("payload of ", s.size(), " bytes is too short");
  }
  const char* p = s.data();
  if (DecodeFixed32(p) != kMagic) return "payload magic mismatch";
  const uint32_t body_len = DecodeFixed32(p + 12);
  if (s.size() != kFixedSize + uint64_t{body_len} + kCrcSize) {
    return absl::StrCat("payload of ", s.size(), " bytes, body length says ",
                        body_len);
  }
  const uint32_t crc = DecodeFixed32(p + kFixedSize + body_len);
  if (crc != crc32c::Value(p, kFixedSize + body_len)) {
    return "payload checksum mismatch";
  }
  DecodedRecord d;
  d.id.generation = DecodeFixed32(p + 4);
  d.id.thread = DecodeFixed32(p + 8);
  d.id.seq = DecodeFixed64(p + 16);
  d.prev_lsn = DecodeFixed64(p + 24);
  d.seed = DecodeFixed64(p + 32);
  d.crc = crc;
  std::string body(body_len, '\0');
  FillBody(d.seed, d.id, body.data(), body_len);
  if (memcmp(body.data(), p + kFixedSize, body_len) != 0) {
    return "payload body does not match its derivation";
  }
  if (record.record_type != d.id.generation ||
      record.tenant_id != d.id.thread ||
      record.vshard_id != static_cast<uint32_t>(d.id.seq) ||
      record.database_id != IdHash(d.seed, d.id)) {
    return absl::StrCat("header fields (type ", record.record_type,
                        ", tenant ", record.tenant_id, ", vshard ",
                        record.vshard_id, ", database ", record.database_id,
                        ") do not match the payload");
  }
  if (d.id.seq == 0 ? d.prev_lsn != 0 : d.prev_lsn >= record.lsn) {
    return absl::StrCat("previous-record LSN ", d.prev_lsn,
                        " is impossible for seq ", d.id.seq, " at LSN ",
                        record.lsn);
  }
  *out = d;
  return "";
}

}  // namespace stress
}  // namespace segwal
