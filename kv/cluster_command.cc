// The raft entry of a segkv command (kv/cluster_command.h).

#include "kv/cluster_command.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "util/coding.h"

namespace segwal {
namespace kv {

std::string EncodeClusterCommand(const Mutation& m) {
  const std::string payload = EncodeRecord(m, 0);
  std::string out;
  out.reserve(8 + payload.size() + 7);
  PutFixed32(&out, static_cast<uint32_t>(payload.size()));
  PutFixed32(&out, static_cast<uint32_t>(m.op));
  out.append(payload);
  // A multiple of 8 bytes: libraft 0.15's TCP transport garbles other sizes
  // (canonical/raft #304 family; see the header).
  out.resize((out.size() + 7) / 8 * 8, '\0');
  return out;
}

absl::StatusOr<DecodedRecord> DecodeClusterCommand(absl::string_view entry) {
  if (entry.size() < 8 || entry.size() % 8 != 0) {
    return absl::DataLossError(absl::StrCat(
        "segkv raft entry of ", entry.size(), " bytes: not a multiple of 8 of at least 8"));
  }
  const uint64_t len = DecodeFixed32(entry.data());
  const uint32_t type = DecodeFixed32(entry.data() + 4);
  if (len > entry.size() - 8 || entry.size() - 8 - len >= 8) {
    return absl::DataLossError(absl::StrCat("segkv raft entry of ", entry.size(),
                                            " bytes claims a payload of ", len));
  }
  for (size_t i = 8 + len; i < entry.size(); ++i) {
    if (entry[i] != '\0') {
      return absl::DataLossError(absl::StrCat("segkv raft entry: non-zero padding at byte ", i));
    }
  }
  return DecodeRecord(type, entry.substr(8, len));
}

absl::Status ValidateMutation(const Mutation& m, size_t max_key_size,
                              size_t max_value_size) {
  size_t keys_min = 1, keys_max = 1, values = 0;
  switch (m.op) {
    case KvOp::kSet:
      values = 1;
      break;
    case KvOp::kIncrBy:
      break;
    case KvOp::kDel:
      keys_max = SIZE_MAX;
      break;
    case KvOp::kMSet:
      keys_max = SIZE_MAX;
      values = m.keys.size();
      break;
    case KvOp::kFlushAll:
      keys_min = keys_max = 0;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown mutation op ", static_cast<uint32_t>(m.op)));
  }
  if (m.keys.size() < keys_min || m.keys.size() > keys_max || m.values.size() != values) {
    return absl::InvalidArgumentError(absl::StrCat("mutation op ", static_cast<uint32_t>(m.op),
                                                   " with ", m.keys.size(), " keys and ",
                                                   m.values.size(), " values"));
  }
  for (absl::string_view k : m.keys) {
    if (k.size() > max_key_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "key of ", k.size(), " bytes is larger than max_key_size (", max_key_size, ")"));
    }
  }
  for (absl::string_view v : m.values) {
    if (v.size() > max_value_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "value of ", v.size(), " bytes is larger than max_value_size (", max_value_size, ")"));
    }
  }
  return absl::OkStatus();
}

std::string UncommittedWriteError(KvOp op, absl::string_view why) {
  if (op == KvOp::kIncrBy) {
    return absl::StrCat("UNCERTAIN the increment was not committed by this leader (", why,
                        ") and may still be applied: read the key before retrying");
  }
  return absl::StrCat("TRYAGAIN the write was not committed by this leader (", why,
                      "); it may still be applied, and repeating it is safe");
}

}  // namespace kv
}  // namespace segwal
