// Checkpoint files of segkv (kv/FORMAT.md, "Checkpoints"): the map at an LSN,
// written through Env under a temporary name, synced, renamed and its
// directory synced; read back with every byte checked by a CRC32C. Also the
// map type the store and the checkpoints share. Stateless functions; a KvMap
// is externally synchronized (KvStore's lock).

#ifndef SEGWAL_KV_CHECKPOINT_FILE_H_
#define SEGWAL_KV_CHECKPOINT_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "env/env.h"

namespace segwal {
namespace kv {

// A value and the LSN of the record that wrote it. The value is shared so that
// a checkpoint copies handles, not bytes, while writers wait.
struct KvEntry {
  std::shared_ptr<const std::string> value;
  uint64_t lsn = 0;
};
using KvMap = absl::btree_map<std::string, KvEntry>;

// "checkpoint-<lsn, 20 digits>.ckpt"; its temporary name adds ".tmp".
std::string CheckpointFileName(uint64_t lsn);
// True (and *lsn) for a final checkpoint name.
bool ParseCheckpointFileName(absl::string_view name, uint64_t* lsn);
bool IsTemporaryCheckpointName(absl::string_view name);

// Writes `map` as the checkpoint covering every record with LSN <= lsn into
// `dir` and makes it durable (temporary name, Sync, Close, Rename, SyncDir).
// Returns the file's size. On error the temporary file is removed (best
// effort) and no file under the final name was created.
absl::StatusOr<uint64_t> WriteCheckpoint(Env* env, const std::string& dir,
                                         uint64_t lsn, const KvMap& map);

struct LoadedCheckpoint {
  uint64_t lsn = 0;
  uint64_t keys = 0;
};
// Reads the checkpoint at `path` into *map (cleared first; entries get the
// checkpoint's LSN). DataLoss naming the file and offset if any byte fails its
// check (magic, version, lengths, key order, count, CRC32C); *map is then
// unspecified. Memory: the map plus one read buffer of 1 MiB (or the largest
// entry).
absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(Env* env,
                                                const std::string& path,
                                                KvMap* map);

}  // namespace kv
}  // namespace segwal

#endif  // SEGWAL_KV_CHECKPOINT_FILE_H_
