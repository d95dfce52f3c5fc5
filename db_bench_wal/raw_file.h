// The baselines db_bench_wal measures the WAL against: the same bytes written
// straight through POSIX calls, with none of segwal's framing, checksums,
// locking or segment management. They run on the same file system, in the same
// process, so a WAL/baseline ratio says how close the WAL gets to what the disk
// and kernel allow.
//
// Thread safety: one thread per object.

#ifndef SEGWAL_DB_BENCH_WAL_RAW_FILE_H_
#define SEGWAL_DB_BENCH_WAL_RAW_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace segwal {
namespace bench {

// How RawSyncWriter prepares its file before the timed loop.
enum class Prealloc {
  kNone,       // empty file; every write extends it (size change in each sync)
  kZeroFill,   // written with zeros and synced: overwrites change no metadata
  kFallocate,  // fallocate(2): blocks reserved, extents still "unwritten"
};
// "none", "zero", "fallocate".
bool ParsePrealloc(absl::string_view name, Prealloc* out);
const char* PreallocName(Prealloc p);

// rawsync: each record is written with pwrite(2) and made durable with
// fdatasync(2). With a preallocated file the writes wrap around to offset 0
// once they reach the end of the preallocated range, so the file never grows.
// With direct I/O (O_DIRECT) the block holding the record tail is rewritten,
// zero-padded, by each write, as a direct-I/O log must.
class RawSyncWriter {
 public:
  // Creates (truncates) `path`. prealloc_bytes is ignored for Prealloc::kNone.
  // max_record: the largest record WriteAndSync will be given.
  static absl::StatusOr<std::unique_ptr<RawSyncWriter>> Create(
      const std::string& path, Prealloc prealloc, uint64_t prealloc_bytes,
      bool direct_io, size_t max_record);
  ~RawSyncWriter();
  RawSyncWriter(const RawSyncWriter&) = delete;
  RawSyncWriter& operator=(const RawSyncWriter&) = delete;

  absl::Status WriteAndSync(absl::string_view record);

 private:
  RawSyncWriter(std::string path, int fd, bool direct_io, uint64_t capacity,
                size_t staging_size);

  const std::string path_;
  const int fd_;
  const bool direct_io_;
  const uint64_t capacity_;  // 0: no preallocation, the file grows
  uint64_t offset_ = 0;      // buffered: next write; direct: staged block start
  // Direct I/O only: bytes of the partial block being rewritten.
  size_t staged_ = 0;
  size_t staging_size_ = 0;
  char* staging_ = nullptr;  // aligned
};

// rawwrite: records are copied into a user-space buffer of buffer_size bytes
// that is written with write(2) whenever it fills; Finish writes the rest. No
// sync. With direct I/O the buffer is aligned, the final partial block is
// zero-padded and the file cut back to its real size.
class RawBufferedWriter {
 public:
  static absl::StatusOr<std::unique_ptr<RawBufferedWriter>> Create(
      const std::string& path, size_t buffer_size, bool direct_io);
  ~RawBufferedWriter();
  RawBufferedWriter(const RawBufferedWriter&) = delete;
  RawBufferedWriter& operator=(const RawBufferedWriter&) = delete;

  absl::Status Append(absl::string_view record);
  // Writes what is buffered (not a sync).
  absl::Status Finish();

 private:
  RawBufferedWriter(std::string path, int fd, bool direct_io, size_t capacity);
  absl::Status WriteBuffer(size_t n);

  const std::string path_;
  const int fd_;
  const bool direct_io_;
  const size_t capacity_;
  char* buffer_ = nullptr;  // aligned
  size_t used_ = 0;
  uint64_t written_ = 0;
};

// Removes a file; errors are ignored (used for cleanup).
void RemoveFileQuietly(const std::string& path);

}  // namespace bench
}  // namespace segwal

#endif  // SEGWAL_DB_BENCH_WAL_RAW_FILE_H_
