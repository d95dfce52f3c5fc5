// Record payload encoding; the layout is specified in kv/FORMAT.md.

#include "kv/record_codec.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace segwal {
namespace kv {

void PutVarint64(std::string* dst, uint64_t v) {
  while (v >= 0x80) {
    dst->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  dst->push_back(static_cast<char>(v));
}

bool GetVarint64(absl::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0, i = 0; shift <= 63 && i < static_cast<int>(in->size());
       shift += 7, ++i) {
    const uint64_t byte = static_cast<unsigned char>((*in)[i]);
    if (shift == 63 && byte > 1) return false;  // more than 64 bits
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      in->remove_prefix(i + 1);
      *v = result;
      return true;
    }
  }
  return false;
}

void PutLengthPrefixed(std::string* dst, absl::string_view s) {
  PutVarint64(dst, s.size());
  dst->append(s.data(), s.size());
}

bool GetLengthPrefixed(absl::string_view* in, absl::string_view* s) {
  uint64_t len;
  if (!GetVarint64(in, &len) || len > in->size()) return false;
  *s = in->substr(0, len);
  in->remove_prefix(len);
  return true;
}

std::string EncodeRecord(const Mutation& m, int64_t incr_result) {
  std::string out;
  switch (m.op) {
    case KvOp::kSet:
      PutLengthPrefixed(&out, m.keys[0]);
      out.append(m.values[0].data(), m.values[0].size());
      break;
    case KvOp::kDel:
      PutVarint64(&out, m.keys.size());
      for (absl::string_view k : m.keys) PutLengthPrefixed(&out, k);
      break;
    case KvOp::kMSet:
      PutVarint64(&out, m.keys.size());
      for (size_t i = 0; i < m.keys.size(); ++i) {
        PutLengthPrefixed(&out, m.keys[i]);
        PutLengthPrefixed(&out, m.values[i]);
      }
      break;
    case KvOp::kIncrBy:
      PutLengthPrefixed(&out, m.keys[0]);
      PutVarint64(&out, ZigZag(m.delta));
      PutVarint64(&out, ZigZag(incr_result));
      break;
    case KvOp::kFlushAll:
      break;
  }
  return out;
}

namespace {

absl::Status Malformed(uint32_t type, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("segkv record of type ", type, ": ", what));
}

}  // namespace

absl::StatusOr<DecodedRecord> DecodeRecord(uint32_t record_type,
                                           absl::string_view payload) {
  DecodedRecord r;
  absl::string_view in = payload;
  uint64_t n = 0;
  switch (record_type) {
    case static_cast<uint32_t>(KvOp::kSet): {
      r.op = KvOp::kSet;
      absl::string_view key;
      if (!GetLengthPrefixed(&in, &key)) {
        return Malformed(record_type, "bad key length");
      }
      r.keys.push_back(key);
      r.values.push_back(in);
      return r;
    }
    case static_cast<uint32_t>(KvOp::kDel):
    case static_cast<uint32_t>(KvOp::kMSet): {
      const bool mset = record_type == static_cast<uint32_t>(KvOp::kMSet);
      r.op = mset ? KvOp::kMSet : KvOp::kDel;
      // Each key takes at least one byte: a count above the payload's size
      // cannot be honest (and must not size an allocation).
      if (!GetVarint64(&in, &n) || n == 0 || n > in.size()) {
        return Malformed(record_type, "bad key count");
      }
      r.keys.reserve(n);
      if (mset) r.values.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        absl::string_view key, value;
        if (!GetLengthPrefixed(&in, &key)) {
          return Malformed(record_type, absl::StrCat("bad key ", i));
        }
        r.keys.push_back(key);
        if (mset) {
          if (!GetLengthPrefixed(&in, &value)) {
            return Malformed(record_type, absl::StrCat("bad value ", i));
          }
          r.values.push_back(value);
        }
      }
      break;
    }
    case static_cast<uint32_t>(KvOp::kIncrBy): {
      r.op = KvOp::kIncrBy;
      absl::string_view key;
      uint64_t delta, result;
      if (!GetLengthPrefixed(&in, &key) || !GetVarint64(&in, &delta) ||
          !GetVarint64(&in, &result)) {
        return Malformed(record_type, "bad INCRBY payload");
      }
      r.keys.push_back(key);
      r.delta = UnZigZag(delta);
      r.result = UnZigZag(result);
      break;
    }
    case static_cast<uint32_t>(KvOp::kFlushAll):
      r.op = KvOp::kFlushAll;
      break;
    default:
      return absl::DataLossError(absl::StrCat(
          "unknown segkv record type ", record_type,
          " (segkv writes types 1 to 5; see kv/FORMAT.md)"));
  }
  if (!in.empty()) {
    return Malformed(record_type,
                     absl::StrCat(in.size(), " unexpected trailing bytes"));
  }
  return r;
}

}  // namespace kv
}  // namespace segwal
