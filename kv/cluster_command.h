// The bytes of one segkv command in the raft log (cluster mode, kv/cluster.h):
// a Mutation encoded as segkv's WAL record payload (kv/record_codec.h,
// kv/FORMAT.md "Records") behind an 8-byte header, padded with zeros to a
// multiple of 8 bytes:
//
//   u32 little-endian   payload length L
//   u32 little-endian   record type (KvOp)
//   L bytes             EncodeRecord(m, 0) (kIncrBy's result field is 0: the
//                       state machine computes the result when it applies)
//   0..7 zero bytes     padding: the whole entry is a multiple of 8 bytes
//
// Why the padding: libraft 0.15's TCP transport sends entry data unpadded
// while its decoder skips padding to 8 bytes, so entries whose size is not a
// multiple of 8 reach followers garbled (the canonical/raft #304 family, fixed
// in 0.16; raft/segwal_raft_io_test.cc pins it). SegwalRaftStore itself keeps
// any size. Stateless; safe from any thread.

#ifndef SEGWAL_KV_CLUSTER_COMMAND_H_
#define SEGWAL_KV_CLUSTER_COMMAND_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kv/kv_store.h"
#include "kv/record_codec.h"

namespace segwal {
namespace kv {

// The entry for m. REQUIRES: m is well formed (ValidateMutation).
std::string EncodeClusterCommand(const Mutation& m);

// Decodes an entry written by EncodeClusterCommand; the views point into
// `entry`. DataLoss naming what is wrong: a size that is not a multiple of 8,
// a length beyond the entry, non-zero padding, or a payload DecodeRecord
// refuses.
absl::StatusOr<DecodedRecord> DecodeClusterCommand(absl::string_view entry);

// The checks KvStore::Submit makes before logging m (counts of keys and
// values, key and value sizes): InvalidArgument naming what is wrong.
absl::Status ValidateMutation(const Mutation& m, size_t max_key_size,
                              size_t max_value_size);

// The error text (without the leading '-') for a write of kind `op` that raft
// accepted but this leader did not commit (it lost leadership or shut down;
// `why` is raft's reason). The next leader may still commit and apply it.
// Writes whose repetition leaves the same state (SET, DEL, MSET, FLUSHALL)
// get "TRYAGAIN ...", which cluster clients retry on their own; INCR and
// INCRBY, which would then count twice, get "UNCERTAIN ...", which no client
// retries by itself: read the key before deciding to write again.
std::string UncommittedWriteError(KvOp op, absl::string_view why);

}  // namespace kv
}  // namespace segwal

#endif  // SEGWAL_KV_CLUSTER_COMMAND_H_
