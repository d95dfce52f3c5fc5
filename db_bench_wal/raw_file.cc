#include "db_bench_wal/raw_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace segwal {
namespace bench {

namespace {

constexpr size_t kAlignment = 4096;
constexpr size_t kZeroChunk = 1 << 20;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

absl::Status Errno(absl::string_view op, const std::string& path, int err) {
  return absl::InternalError(absl::StrCat(op, " ", path, ": ", strerror(err)));
}

char* AlignedAlloc(size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, kAlignment,
                     RoundUp(std::max<size_t>(n, 1), kAlignment)) != 0) {
    return nullptr;
  }
  memset(p, 0, RoundUp(std::max<size_t>(n, 1), kAlignment));
  return static_cast<char*>(p);
}

absl::StatusOr<int> OpenForWrite(const std::string& path, bool direct_io) {
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  if (direct_io) flags |= O_DIRECT;
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (direct_io && errno == EINVAL) {
      return absl::InvalidArgumentError(absl::StrCat(
          "open ", path, " with O_DIRECT: the file system refuses direct I/O"));
    }
    return Errno("open", path, errno);
  }
  return fd;
}

// Writes all of [data, data + n) at `offset` (offset < 0: at the file
// position).
absl::Status WriteFully(int fd, const std::string& path, const char* data,
                        size_t n, int64_t offset) {
  while (n > 0) {
    const ssize_t w =
        offset < 0 ? ::write(fd, data, n) : ::pwrite(fd, data, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno(offset < 0 ? "write" : "pwrite", path, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
    if (offset >= 0) offset += w;
  }
  return absl::OkStatus();
}

absl::Status DataSync(int fd, const std::string& path) {
  if (::fdatasync(fd) != 0) return Errno("fdatasync", path, errno);
  return absl::OkStatus();
}

}  // namespace

bool ParsePrealloc(absl::string_view name, Prealloc* out) {
  if (name == "none") {
    *out = Prealloc::kNone;
  } else if (name == "zero") {
    *out = Prealloc::kZeroFill;
  } else if (name == "fallocate") {
    *out = Prealloc::kFallocate;
  } else {
    return false;
  }
  return true;
}

const char* PreallocName(Prealloc p) {
  switch (p) {
    case Prealloc::kNone:
      return "none";
    case Prealloc::kZeroFill:
      return "zero";
    case Prealloc::kFallocate:
      return "fallocate";
  }
  return "?";
}

void RemoveFileQuietly(const std::string& path) {
  (void)::unlink(path.c_str());
}

// ---------------------------------------------------------------------------
// RawSyncWriter.

absl::StatusOr<std::unique_ptr<RawSyncWriter>> RawSyncWriter::Create(
    const std::string& path, Prealloc prealloc, uint64_t prealloc_bytes,
    bool direct_io, size_t max_record) {
  absl::StatusOr<int> fd = OpenForWrite(path, direct_io);
  if (!fd.ok()) return fd.status();
  uint64_t capacity = 0;
  if (prealloc != Prealloc::kNone) {
    capacity =
        RoundUp(std::max<uint64_t>(prealloc_bytes, max_record + kAlignment),
                kAlignment);
  }
  std::unique_ptr<RawSyncWriter> w(new RawSyncWriter(
      path, *fd, direct_io, capacity,
      direct_io ? RoundUp(max_record + 2 * kAlignment, kAlignment) : 0));
  if (direct_io && w->staging_ == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate the staging buffer");
  }
  if (prealloc == Prealloc::kFallocate) {
    if (::fallocate(*fd, 0, 0, static_cast<off_t>(capacity)) != 0) {
      return Errno("fallocate", path, errno);
    }
  } else if (prealloc == Prealloc::kZeroFill) {
    char* zeros = AlignedAlloc(kZeroChunk);
    if (zeros == nullptr) return absl::ResourceExhaustedError("out of memory");
    absl::Status s;
    for (uint64_t off = 0; s.ok() && off < capacity; off += kZeroChunk) {
      const size_t n =
          static_cast<size_t>(std::min<uint64_t>(kZeroChunk, capacity - off));
      s = WriteFully(*fd, path, zeros, n, static_cast<int64_t>(off));
    }
    free(zeros);
    if (!s.ok()) return s;
  }
  if (prealloc != Prealloc::kNone) {
    absl::Status s = DataSync(*fd, path);
    if (!s.ok()) return s;
  }
  return w;
}

RawSyncWriter::RawSyncWriter(std::string path, int fd, bool direct_io,
                             uint64_t capacity, size_t staging_size)
    : path_(std::move(path)),
      fd_(fd),
      direct_io_(direct_io),
      capacity_(capacity),
      staging_size_(staging_size),
      staging_(staging_size > 0 ? AlignedAlloc(staging_size) : nullptr) {}

RawSyncWriter::~RawSyncWriter() {
  ::close(fd_);
  free(staging_);
}

absl::Status RawSyncWriter::WriteAndSync(absl::string_view record) {
  if (!direct_io_) {
    if (capacity_ != 0 && offset_ + record.size() > capacity_) offset_ = 0;
    absl::Status s = WriteFully(fd_, path_, record.data(), record.size(),
                                static_cast<int64_t>(offset_));
    if (!s.ok()) return s;
    offset_ += record.size();
    return DataSync(fd_, path_);
  }
  // Direct I/O: stage the record after the partial block, write every block it
  // touches (the last one zero-padded), then keep only the new partial block.
  if (staged_ + record.size() > staging_size_) {
    return absl::InvalidArgumentError("record larger than max_record");
  }
  size_t write_len = RoundUp(staged_ + record.size(), kAlignment);
  if (capacity_ != 0 && offset_ + write_len > capacity_) {
    offset_ = 0;  // wrap: start a fresh block at the beginning
    staged_ = 0;
    write_len = RoundUp(record.size(), kAlignment);
  }
  memcpy(staging_ + staged_, record.data(), record.size());
  staged_ += record.size();
  memset(staging_ + staged_, 0, write_len - staged_);
  absl::Status s = WriteFully(fd_, path_, staging_, write_len,
                              static_cast<int64_t>(offset_));
  if (!s.ok()) return s;
  s = DataSync(fd_, path_);
  const size_t full = staged_ / kAlignment * kAlignment;
  if (full > 0) {
    memmove(staging_, staging_ + full, staged_ - full);
    staged_ -= full;
    offset_ += full;
  }
  return s;
}

// ---------------------------------------------------------------------------
// RawBufferedWriter.

absl::StatusOr<std::unique_ptr<RawBufferedWriter>> RawBufferedWriter::Create(
    const std::string& path, size_t buffer_size, bool direct_io) {
  absl::StatusOr<int> fd = OpenForWrite(path, direct_io);
  if (!fd.ok()) return fd.status();
  const size_t capacity = RoundUp(std::max<size_t>(buffer_size, 1), kAlignment);
  std::unique_ptr<RawBufferedWriter> w(
      new RawBufferedWriter(path, *fd, direct_io, capacity));
  if (w->buffer_ == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate the write buffer");
  }
  return w;
}

RawBufferedWriter::RawBufferedWriter(std::string path, int fd, bool direct_io,
                                     size_t capacity)
    : path_(std::move(path)),
      fd_(fd),
      direct_io_(direct_io),
      capacity_(capacity),
      buffer_(AlignedAlloc(capacity)) {}

RawBufferedWriter::~RawBufferedWriter() {
  ::close(fd_);
  free(buffer_);
}

absl::Status RawBufferedWriter::WriteBuffer(size_t n) {
  absl::Status s = WriteFully(fd_, path_, buffer_, n, /*offset=*/-1);
  if (s.ok()) written_ += n;
  return s;
}

absl::Status RawBufferedWriter::Append(absl::string_view record) {
  while (!record.empty()) {
    const size_t n = std::min(record.size(), capacity_ - used_);
    memcpy(buffer_ + used_, record.data(), n);
    used_ += n;
    record.remove_prefix(n);
    if (used_ == capacity_) {
      absl::Status s = WriteBuffer(used_);
      if (!s.ok()) return s;
      used_ = 0;
    }
  }
  return absl::OkStatus();
}

absl::Status RawBufferedWriter::Finish() {
  if (used_ == 0) return absl::OkStatus();
  if (!direct_io_) {
    absl::Status s = WriteBuffer(used_);
    used_ = 0;
    return s;
  }
  const uint64_t real_size = written_ + used_;
  const size_t padded = RoundUp(used_, kAlignment);
  memset(buffer_ + used_, 0, padded - used_);
  absl::Status s = WriteBuffer(padded);
  used_ = 0;
  if (s.ok() && ::ftruncate(fd_, static_cast<off_t>(real_size)) != 0) {
    s = Errno("ftruncate", path_, errno);
  }
  return s;
}

}  // namespace bench
}  // namespace segwal
