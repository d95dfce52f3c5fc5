// SegmentedWal: a write-ahead log split into segment files, in the RocksDB style.
//
// Records carry an LSN (contiguous from 1), a record type, and tenant / vshard /
// database ids. Appends are buffered and group-committed: Sync() makes everything
// appended before it durable and concurrent callers share fsyncs. Once the active
// segment passes `segment_target_size` it is sealed (footer with a sparse LSN index,
// synced) and a new segment is started. Old segments are removed with
// TruncateBefore(). The on-disk format is documented in wal/FORMAT.md.
//
// Durability (see FORMAT.md, "Durability"):
//   - Append: the record is in memory. Lost by any crash.
//   - Sync:   every record appended before the call is durable (its bytes and the
//             directory entry of its segment are synced); durable_lsn() moves.
//   - Rollover: the sealed segment is synced; records in it become durable.
//   - Destruction (close): buffered records are written to the OS (they survive a
//             process crash) but NOT synced. Call Sync() first if you need them.
//   - After a failed write or sync the instance is poisoned: every later Append,
//     Sync, TruncateBefore and read returns that first error. Reopen to recover.
//   - If Open can read the log but cannot prepare it for appending (a full or
//     failing disk), the instance opens read-only: reads work, Append and Sync
//     return the error (RecoveryReport::read_only_reason says why).
//
// Thread safety: every method may be called from several threads at once.
// Replay, iterators and listings see every record whose Append returned before
// they began. REQUIRES: the SegmentedWal outlives its iterators.

#ifndef SEGWAL_WAL_SEGMENTED_WAL_H_
#define SEGWAL_WAL_SEGMENTED_WAL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/key_ring.h"
#include "env/env.h"
#include "wal/wal_record.h"  // WalRecord, Compression, RecoveryMode

namespace segwal {

struct SegmentedWalOptions {
  std::string wal_dir;
  Env* env = nullptr;                       // nullptr => Env::Default()
  uint64_t segment_target_size = 64 << 20;  // soft limit: roll once exceeded
  // kSnappy: each payload is stored Snappy-compressed when that is shorter
  // (then encrypted, if encryption is on). Readers decode either way.
  Compression compression = Compression::kNone;
  RecoveryMode recovery_mode = RecoveryMode::kTolerateCorruptedTail;
  // Keys for encryption at rest. Required to open a WAL that holds encrypted
  // segments (else Open fails with FailedPrecondition naming the key id it needs);
  // when set, new segments are encrypted under its current key and older ones are
  // read with whichever key they name.
  std::optional<KeyRing> encryption_ring;

  // ---- Beyond the seed API. ----
  // Largest payload Append accepts (InvalidArgument above it). Readers treat a
  // stored length above this (plus framing overhead) as corruption, so a
  // corrupt length never causes a huge allocation.
  uint64_t max_record_size = 64 << 20;
  // Framed records are staged in memory and written in chunks of about this
  // size (no syscall per record). Sync writes whatever is staged. Costs up to
  // this much memory (and four times it queued behind a slow write before
  // Append waits).
  size_t write_buffer_size = 1 << 20;

  // Start segments in spare files: files of about segment_target_size whose
  // blocks already exist, so a segment's fdatasyncs commit no size change
  // (FORMAT.md, "Spare files"). Same durability either way; a spare that
  // cannot be prepared is counted in WalStats and ends preallocation for this
  // instance, never fails a write. Costs one spare file on disk (zero-filled,
  // segment_target_size rounded up to 4 KiB, at most 256 MiB). Needs an Env
  // with ReopenWritableFile (POSIX, MemEnv, FaultInjectionEnv).
  bool preallocate_segments = true;
  // Prepare spares on a background thread (true), or on the thread that
  // rolls, just before it creates the segment (false: no spare thread, and
  // each roll pays for its spare, up to a segment of zeros written; file
  // operations then happen in program order, which seeded crash tests rely
  // on).
  bool background_preallocation = true;
  // Keep up to this many segments freed by TruncateBefore as spares instead
  // of deleting them; 0 deletes them. Off in kAbsoluteConsistency (a recycled
  // file's stale bytes read as a torn tail, which that mode refuses).
  size_t recycle_segments = 2;
  // Write and fdatasync segment files through io_uring when the Env can (the
  // POSIX Env probes the kernel once and otherwise falls back to
  // write()/fdatasync(), logging one line; env/posix_env.h). Same durability
  // either way. Off by default: no faster on the machines benchmarked
  // (README, "Benchmarks").
  bool use_io_uring = false;
  // Group commit: concurrent Sync() calls share fsyncs; an uncontended Sync
  // syncs on its own thread. After each shared sync, a group-commit thread
  // waits up to this long (never longer than that sync took) for the callers
  // it released to come back, so that one fsync carries their next records
  // too (wal/README.md). Costs up to this much latency for a contended Sync;
  // 0: no wait.
  uint64_t group_commit_wait_micros = 100;
  // Seal full segments on a sealer thread: a roll does not wait for the full
  // segment's fdatasync (FORMAT.md, "Background sealing"). Same durability:
  // no segment's name is durable before its predecessor is sealed, and Sync,
  // reads and listings wait for the seals in flight. false: the rolling
  // thread seals in line (no sealer thread; each roll waits for the full
  // segment's fdatasync, ~20 ms per 64 MiB on the benchmark VM; file
  // operations in program order, which seeded crash tests rely on).
  bool background_sealing = true;
  // With background_sealing: how many full segments may wait for their seal
  // (queued or being sealed) before a roll waits: how far unsynced appends may
  // run ahead of the device, in segments. Costs two open files per queued
  // seal; their records are no less safe than any unsynced record (a Sync
  // waits for the whole queue). 1 to 64 (Open rejects other values with
  // InvalidArgument).
  size_t max_seals_in_flight = 4;
  // Start write-back (WritableFile::RangeSync: sync_file_range on POSIX) of
  // the active segment after every this many bytes written, as RocksDB's
  // wal_bytes_per_sync does, so that a Sync after a long run of unsynced
  // appends has less to write. Same durability. Costs appending-thread stalls
  // whenever the device queue is full (README, "Benchmarks"). 0 (default, as
  // in RocksDB): never.
  uint64_t bytes_per_sync = 0;

  // Parallel replay. Replay and ReplayFrom (and ReplayFromLimit when
  // max_records covers the range) decode a range of several segments on
  // several threads, in contiguous runs balanced by bytes (wal/README.md).
  // The result is exactly that of a sequential read: the same records in the
  // same order, or the error of the earliest failing run and no records.
  // Iterators are always sequential.
  //
  // Threads a replay may use: 0 = min(hardware threads, 8); 1 = always on
  // the calling thread. At most 64 (Open rejects more with InvalidArgument).
  size_t replay_threads = 0;
  // A replay uses at most one thread per this many bytes of segments, so
  // small replays stay on the calling thread (where a second thread is no
  // faster: README, "Benchmarks"). 0: up to one thread per segment.
  uint64_t replay_min_bytes_per_thread = 8 << 20;

  // Write segment files with O_DIRECT, never rewriting a block that held a
  // record a Sync acknowledged (FORMAT.md, "Padding frames" and "Direct
  // I/O"). Same durability. Costs up to 4 KiB of padding per Sync
  // (WalStats::padding_bytes; group commit shares it) plus 4 KiB per
  // segment, and no page cache for the log (reads go to the device).
  // Segments written with it cannot be read by a segwal that predates it
  // (FailedPrecondition: unknown segment flags). If the Env or file system
  // refuses direct I/O (tmpfs; InvalidArgument or Unimplemented), segments
  // are written through the page cache, with the same padding, and stderr
  // gets one line per process; WalStats::direct_io says which path is active.
  // With use_io_uring: direct I/O wins where it is granted.
  bool use_direct_io = false;
};

struct TruncateResult {
  uint64_t segments_deleted = 0;
  uint64_t bytes_reclaimed = 0;
};

struct SegmentMeta {
  std::string path;
  uint64_t first_lsn = 0;
  uint64_t file_size = 0;
};

struct ReplayPage {
  std::vector<WalRecord> records;
  bool has_more = false;
};

// One piece of data that Open dropped, skipped or moved aside.
struct RecoveryDrop {
  std::string file;     // path of the segment
  uint64_t offset = 0;  // where the dropped bytes start
  uint64_t bytes = 0;   // how many bytes were dropped / skipped / moved
  std::string reason;   // e.g. "torn tail: bad record checksum"
};

// What Open found and did.
struct RecoveryReport {
  uint64_t segments_found = 0;
  uint64_t records_recovered = 0;  // records Open scanned and kept
  uint64_t last_lsn = 0;           // last LSN in the log after recovery (0: empty)
  uint64_t first_lsn = 0;          // first LSN still in the log (the truncation floor)
  std::vector<RecoveryDrop> drops;
  // True if Open cut a torn tail (the file was truncated and synced).
  bool truncated_tail = false;
  // Non-empty if Open could read the log but not prepare it for appending (a
  // full or failing disk): the instance is then read-only — Append and Sync
  // return that error (see poisoned_status()) — and this says why.
  std::string read_only_reason;
};

// Counts of values in power-of-two buckets: bucket 0 holds the value 0, bucket
// i >= 1 holds [2^(i-1), 2^i). Plain data: copy it, print it.
struct WalHistogram {
  static constexpr int kBuckets = 65;
  uint64_t buckets[kBuckets] = {};
  uint64_t count = 0;
  uint64_t sum = 0;
  uint64_t min = 0;  // 0 when count == 0
  uint64_t max = 0;

  void Add(uint64_t value);
  double Average() const;
  // The largest value the bucket holding the p-th percentile (0 < p <= 100) can
  // hold, capped at max: an upper bound of the percentile. 0 when empty.
  uint64_t Percentile(double p) const;
  // "count=3 avg=2.3 min=1 max=4 p50<=2 p99<=4 | [1,2):1 [2,4):1 [4,8):1"
  std::string ToString() const;
};

// Counters of a SegmentedWal since Open (see SegmentedWal::GetStats). Cheap to
// keep: updated under the lock the operation holds anyway.
struct WalStats {
  uint64_t appends = 0;          // successful Append calls
  uint64_t bytes_appended = 0;   // payload bytes passed to Append
  uint64_t bytes_framed = 0;     // their on-disk frames (header + stored payload)
  uint64_t bytes_written = 0;    // handed to segment files (frames, headers, footers)
  uint64_t sync_requests = 0;    // Sync() calls by users
  uint64_t syncs = 0;            // file Sync (fdatasync) calls actually made
  // Records made durable by each Sync() round that wrote and synced (the group
  // commit size: one fsync covers this many records).
  WalHistogram records_per_sync;
  WalHistogram sync_latency_micros;  // duration of each file Sync
  uint64_t rollovers = 0;            // segments sealed because they were full
  uint64_t segments_deleted = 0;     // by TruncateBefore (recycled ones included)
  uint64_t spares_zero_filled = 0;   // spare files prepared with zeros
  uint64_t spares_recycled = 0;      // segments TruncateBefore kept as spares
  uint64_t segments_from_spares = 0; // segments started in a spare file
  uint64_t spare_failures = 0;       // spare preparations that failed
  // Bytes of padding frames framed (use_direct_io): the space block alignment
  // costs, on top of bytes_framed.
  uint64_t padding_bytes = 0;
  // The active segment file was opened with O_DIRECT (use_direct_io, and the
  // Env granted it; MemEnv grants and ignores it).
  bool direct_io = false;
  // Why use_direct_io fell back to buffered writes ("" if it did not).
  std::string direct_io_fallback;
  // Sizes of the segment files now in the log (TotalSizeBytes): the active
  // segment's whole spare file when it was started in one.
  uint64_t bytes_on_disk = 0;
  uint64_t segments_on_disk = 0;
  uint64_t durable_lsn = 0;
  bool poisoned = false;
  std::string poisoned_reason;  // the first write/sync error, when poisoned

  // One "name: value" line per field, histograms included.
  std::string ToString() const;
};

class WalIterator {
 public:
  WalIterator() = default;
  WalIterator(const WalIterator&) = delete;
  WalIterator& operator=(const WalIterator&) = delete;
  virtual ~WalIterator();
  virtual bool Valid() const = 0;
  virtual void Next() = 0;                      // REQUIRES: Valid()
  virtual const WalRecord& record() const = 0;  // REQUIRES: Valid()
  // Non-OK if iteration stopped on an error (Valid() is then false).
  virtual absl::Status status() const = 0;
};

class SegmentedWal {
 public:
  SegmentedWal(const SegmentedWal&) = delete;
  SegmentedWal& operator=(const SegmentedWal&) = delete;
  // Writes buffered records to the OS (no sync) and releases the directory lock.
  ~SegmentedWal();

  // Creates the directory and first segment, or discovers existing segments,
  // recovers according to options.recovery_mode, and continues appending after the
  // last record. A second Open of a directory that is open (in this or another
  // process) fails with FailedPrecondition.
  static absl::StatusOr<std::unique_ptr<SegmentedWal>> Open(
      const SegmentedWalOptions& options);

  // Encryption at rest (wal/FORMAT.md, "Encryption and compression").
  // SetEncryptionRing: all later records are encrypted under ring.current().
  // Fails (FailedPrecondition) once records have been written to the active
  // segment: records are never re-encrypted (to encrypt an existing WAL, pass
  // the ring in options or call RotateEncryptionRing). Rotate seals the active
  // segment and starts a new one under the new ring; older segments stay
  // readable while their key is in the ring (reading one whose key is not fails
  // with FailedPrecondition naming its key id). The ring is kept across rolls;
  // when reopening, pass it in options (the old key as previous while segments
  // written under it remain). Both sync what they write.
  absl::Status SetEncryptionRing(KeyRing ring);
  absl::Status RotateEncryptionRing(KeyRing ring);
  // The ring new segments are encrypted under; nullptr when not encrypted.
  // Valid until the SegmentedWal is destroyed (a later rotation frees nothing).
  const KeyRing* encryption_ring() const;

  // Appends one record; returns its LSN. LSNs start at 1 and are contiguous.
  // InvalidArgument if payload is larger than max_record_size (no LSN is used).
  // Append only buffers; when the buffer is full it also writes staged records.
  // If that write fails, the record still has its LSN (its bytes may be in the
  // file) and this Append returns it, but the instance is poisoned: every later
  // call, Sync in particular, returns the write error. An Append that returns an
  // error assigned no LSN.
  absl::StatusOr<uint64_t> Append(uint32_t record_type, uint64_t tenant_id,
                                  uint32_t vshard_id, uint64_t database_id,
                                  absl::string_view payload);
  // Makes every record appended before the call durable (group commit: concurrent
  // callers share fsyncs). After a failed write or sync the WAL refuses further
  // appends and syncs with that error.
  absl::Status Sync();

  uint64_t next_lsn() const;
  uint64_t active_segment_first_lsn() const;
  const std::string& wal_dir() const;

  // Deletes, oldest first, sealed segments whose records all have
  // LSN < checkpoint_lsn; never the active one. The directory is synced.
  absl::StatusOr<TruncateResult> TruncateBefore(uint64_t checkpoint_lsn);

  // All records, LSN order. Replay and ReplayFrom materialise the range in one
  // vector (use NewIterator to stream a large log); a range of several
  // segments is decoded on several threads (replay_threads) with the same
  // result as a sequential read.
  absl::StatusOr<std::vector<WalRecord>> Replay() const;
  // Records with LSN >= from_lsn. OutOfRange if from_lsn is below the first LSN
  // still retained (after TruncateBefore): never silently fewer records.
  absl::StatusOr<std::vector<WalRecord>> ReplayFrom(uint64_t from_lsn) const;
  // At most max_records records with LSN >= from_lsn; has_more is true iff a
  // record with a larger LSN exists. Continue with from_lsn = last.lsn + 1.
  absl::StatusOr<ReplayPage> ReplayFromLimit(uint64_t from_lsn,
                                             size_t max_records) const;

  absl::StatusOr<std::vector<SegmentMeta>> ListSegments() const;  // ascending
  absl::StatusOr<uint64_t> TotalSizeBytes() const;

  // Every record with LSN <= this is durable; 0 if none.
  uint64_t durable_lsn() const;
  // Streams records with LSN >= from_lsn (same OutOfRange rule as ReplayFrom)
  // without materialising the log: O(log segments) to position, memory
  // independent of log size. Sees records appended before the call.
  absl::StatusOr<std::unique_ptr<WalIterator>> NewIterator(
      uint64_t from_lsn) const;
  // What Open found and did.
  const RecoveryReport& recovery_report() const;

  // ---- Beyond the seed API. ----
  // Writes staged records to the OS (survives a process crash, not power loss).
  absl::Status Flush();
  // The first write/sync error, or OK while the instance is healthy.
  absl::Status poisoned_status() const;
  // Counters since Open: appends, bytes, syncs and group sizes, sync latency,
  // rollovers, truncation, bytes on disk. Consistent snapshot; cheap.
  WalStats GetStats() const;

  class Impl;

 private:
  explicit SegmentedWal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace segwal

#endif  // SEGWAL_WAL_SEGMENTED_WAL_H_
