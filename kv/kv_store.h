// KvStore: segkv's storage engine, a key-value store built on segwal the way a
// storage-engine prototype would build on it. It is the project's example of
// using segwal's public API, not a Redis replacement.
//
// State is an ordered in-memory map. Every mutation (SET, DEL, MSET, INCRBY,
// FLUSHALL) is one WAL record (kv/FORMAT.md), applied to the map in LSN order.
// Checkpoints write the map at an LSN to `<dir>/checkpoints/`; the log behind
// the older of the two newest checkpoints is then freed with TruncateBefore.
// Open rebuilds the map from the newest valid checkpoint plus the log after it.
//
// Durability (docs in kv/FORMAT.md, "Durability"):
//   - Submit(m) applies m to the map and appends its record: NOT durable yet.
//     Nothing may be told to a client until durable_lsn() >= the returned lsn
//     (WaitDurable). Write(m) = Submit + WaitDurable.
//   - WaitDurable(lsn) calls SegmentedWal::Sync() unless the record is durable
//     already; concurrent callers share fsyncs through segwal's group commit.
//   - Reads (Lookup, MultiLookup, ...) see every submitted mutation and say which
//     LSN their answer depends on; answer a client only once that LSN is durable,
//     so no client ever sees a value a crash could take back. Get() waits itself.
//   - A failed WAL write or sync poisons the store: every later Submit and every
//     WaitDurable of a non-durable LSN returns that error. Reads of durable data
//     go on working. Reopen to recover.
//   - Checkpoint: the WAL is synced up to the checkpoint's LSN first, the file is
//     written under a temporary name, synced, renamed and its directory synced;
//     only then is the log truncated, and only behind the previous checkpoint, so
//     a newest checkpoint found damaged at Open falls back to the previous one.
//
// Thread safety: every method may be called from several threads at once.
// Mutations are serialized (an INCRBY reads and writes under one lock); reads
// run concurrently with each other.

#ifndef SEGWAL_KV_KV_STORE_H_
#define SEGWAL_KV_KV_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "env/env.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace kv {

// The WAL record types of segkv (WalRecord::record_type). kv/FORMAT.md gives
// each payload's encoding.
// Redis's rule for INCR/INCRBY values: the whole string is a base-10 int64,
// no spaces, no '+', no leading zeros, not "-0". The one copy of the rule,
// for the single node (KvStore) and the cluster's state machine (KvFsm).
bool ParseRedisInt64(absl::string_view s, int64_t* out);

enum class KvOp : uint32_t {
  kSet = 1,       // one key, one value
  kDel = 2,       // one or more keys
  kMSet = 3,      // one or more key/value pairs, applied atomically
  kIncrBy = 4,    // one key, the delta and the resulting value
  kFlushAll = 5,  // no keys: empties the store
};

struct KvStoreOptions {
  // The data directory: holds `wal/` (a SegmentedWal) and `checkpoints/`.
  // Created if missing.
  std::string dir;
  Env* env = nullptr;  // nullptr => Env::Default()
  // Options of the WAL; wal_dir and env are set by Open (to <dir>/wal, env).
  SegmentedWalOptions wal;
  // Take a checkpoint on a background thread once this many bytes of records
  // were appended since the last one. 0: only on demand (Checkpoint /
  // StartBackgroundCheckpoint).
  uint64_t checkpoint_every_bytes = 64 << 20;
  // Larger keys or values are refused with InvalidArgument (nothing is written).
  size_t max_key_size = 64 << 10;
  size_t max_value_size = 16 << 20;
};

// One mutation. Views must stay valid for the duration of the call only.
struct Mutation {
  KvOp op = KvOp::kSet;
  std::vector<absl::string_view> keys;    // kSet, kIncrBy: 1; kDel, kMSet: >= 1
  std::vector<absl::string_view> values;  // kSet: 1; kMSet: one per key
  int64_t delta = 0;                      // kIncrBy
};

struct WriteResult {
  uint64_t lsn = 0;  // the mutation's record; durable once durable_lsn() >= lsn
  // kDel: keys that existed and were removed; kIncrBy: the new value.
  int64_t integer = 0;
};

// A read's answer and the LSN of the newest record it depends on (0: none). The
// answer may be told to a client once durable_lsn() >= depends_on_lsn.
struct ReadResult {
  std::vector<std::optional<std::string>> values;  // Lookup: one; MultiLookup: one per key
  int64_t integer = 0;                             // Exists, DbSize
  std::vector<std::string> keys;                   // Keys
  uint64_t depends_on_lsn = 0;
};

struct CheckpointInfo {
  uint64_t lsn = 0;           // the checkpoint holds every record with LSN <= lsn
  std::string path;           // its file
  uint64_t keys = 0;
  uint64_t bytes = 0;         // file size
  // The longest writers waited for the checkpoint: copying one chunk of the
  // map's handles (4096 keys), or replaying onto the copy the changes made
  // while it was taken.
  uint64_t pause_micros = 0;
  uint64_t total_micros = 0;  // the whole checkpoint, truncation included
  uint64_t log_segments_deleted = 0;
};

// What Open found and did.
struct KvRecoveryReport {
  std::string checkpoint_path;  // the checkpoint the state started from ("" : none)
  uint64_t checkpoint_lsn = 0;
  uint64_t checkpoint_keys = 0;
  // Checkpoints found unusable (file: reason), newest first; an older one was used.
  std::vector<std::string> rejected_checkpoints;
  uint64_t log_records_replayed = 0;  // records after the checkpoint
  uint64_t log_first_lsn = 0;         // first LSN the log still holds
  uint64_t last_lsn = 0;              // state covers every record up to here
  uint64_t checkpoint_load_micros = 0;
  uint64_t log_replay_micros = 0;
};

struct KvStats {
  uint64_t keys = 0;
  uint64_t last_applied_lsn = 0;
  uint64_t durable_lsn = 0;
  uint64_t writes = 0;  // Submit calls that appended a record
  uint64_t checkpoints = 0;
  bool checkpoint_in_progress = false;
  uint64_t bytes_since_checkpoint = 0;
  std::optional<CheckpointInfo> last_checkpoint;
  absl::Status last_checkpoint_status;  // of the last background checkpoint
  absl::Status poisoned;                // OK while healthy
};

class KvStore {
 public:
  // Opens (or creates) the store in options.dir: the newest valid checkpoint,
  // then the log after it through a WalIterator (memory independent of the
  // log's length). DataLoss if no usable checkpoint reaches the log's first
  // LSN (names the files; nothing is deleted), or if the log holds a record
  // segkv cannot decode (names the LSN).
  static absl::StatusOr<std::unique_ptr<KvStore>> Open(
      const KvStoreOptions& options);
  // Waits for a background checkpoint, then closes the WAL (no sync: every
  // acknowledged write is durable already).
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // ---- Writes.
  // Validates, applies m to the map and appends its record; not durable yet.
  // InvalidArgument for a malformed mutation (wrong counts, key or value too
  // large); FailedPrecondition for INCRBY of a value that is not an integer,
  // OutOfRange on overflow. Neither writes anything. The WAL's error if the
  // store is poisoned.
  absl::StatusOr<WriteResult> Submit(const Mutation& m);
  // Returns once every record with LSN <= lsn is durable (syncing if needed).
  absl::Status WaitDurable(uint64_t lsn);
  // Submit, then WaitDurable: the write is durable when this returns OK.
  absl::StatusOr<WriteResult> Write(const Mutation& m);
  // Convenience forms of Write.
  absl::Status Set(absl::string_view key, absl::string_view value);
  absl::StatusOr<int64_t> Del(const std::vector<absl::string_view>& keys);
  absl::StatusOr<int64_t> IncrBy(absl::string_view key, int64_t delta);

  // ---- Reads (never block on I/O; see ReadResult for when to answer).
  ReadResult Lookup(absl::string_view key) const;
  ReadResult MultiLookup(const std::vector<absl::string_view>& keys) const;
  ReadResult Exists(const std::vector<absl::string_view>& keys) const;  // integer
  ReadResult DbSize() const;                                            // integer
  // Keys matching a Redis glob pattern (* ? [abc] [^a] [a-z] \x), in key order.
  ReadResult Keys(absl::string_view pattern) const;
  // Lookup, then WaitDurable(depends_on_lsn): a value no crash can take back.
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key);

  // ---- Checkpoints.
  // Takes a checkpoint now (SAVE) and returns once it is durable and the log
  // behind the previous one is truncated.
  absl::StatusOr<CheckpointInfo> Checkpoint();
  // Starts one on a background thread (BGSAVE). FailedPrecondition if one is
  // running. Its outcome is in GetStats().
  absl::Status StartBackgroundCheckpoint();
  // Waits for a background checkpoint in progress (if any) to finish.
  void WaitForBackgroundCheckpoint();

  // ---- State.
  uint64_t durable_lsn() const;
  uint64_t last_applied_lsn() const;
  KvStats GetStats() const;
  const KvRecoveryReport& recovery_report() const;
  // The store's WAL, for its statistics (GetStats) and recovery report. Do not
  // append to it: records segkv cannot decode make the next Open fail.
  const SegmentedWal& wal() const;

  class Impl;

 private:
  explicit KvStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True if `key` matches the Redis glob `pattern` (as KEYS does).
bool GlobMatch(absl::string_view pattern, absl::string_view key);

}  // namespace kv
}  // namespace segwal

#endif  // SEGWAL_KV_KV_STORE_H_
