// The in-memory Env. See env/mem_env.h.
//
// Layout: one map from normalized path to Node, guarded by MemEnv::mu_. A Node is
// a directory or a reference to a MemFile (the "inode"), whose bytes have their
// own mutex so reads and appends do not hold the namespace lock. Lock order:
// MemEnv::mu_ before MemFile::mu_.
//
// Errors are built with PosixError from the errno POSIX would report, so both
// Envs agree on codes and messages.

#include "env/mem_env.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "port/mutex.h"
#include "env/env.h"
#include "env/posix_env.h"

namespace segwal {
namespace {

// The bytes of one file, shared by the namespace and every open handle.
class MemFile {
 public:
  uint64_t Size() const ABSL_LOCKS_EXCLUDED(mu_) {
    port::ReaderMutexLock l(&mu_);
    return data_.size();
  }
  void Append(absl::string_view bytes) ABSL_LOCKS_EXCLUDED(mu_) {
    port::WriterMutexLock l(&mu_);
    data_.append(bytes.data(), bytes.size());
  }
  // Writes bytes at offset (<= Size()), over what is there and past the end.
  void WriteAt(uint64_t offset, absl::string_view bytes)
      ABSL_LOCKS_EXCLUDED(mu_) {
    port::WriterMutexLock l(&mu_);
    if (offset + bytes.size() > data_.size()) {
      data_.resize(offset + bytes.size());
    }
    std::memcpy(data_.data() + offset, bytes.data(), bytes.size());
  }
  // Shrinks, or extends with zeros.
  void Resize(uint64_t size) ABSL_LOCKS_EXCLUDED(mu_) {
    port::WriterMutexLock l(&mu_);
    data_.resize(size, '\0');
  }
  // Copies up to n bytes at offset into dst; returns how many.
  size_t Read(uint64_t offset, size_t n, char* dst) const
      ABSL_LOCKS_EXCLUDED(mu_) {
    port::ReaderMutexLock l(&mu_);
    if (offset >= data_.size()) return 0;
    const size_t got =
        static_cast<size_t>(std::min<uint64_t>(n, data_.size() - offset));
    std::memcpy(dst, data_.data() + offset, got);
    return got;
  }

 private:
  mutable port::SharedMutex mu_;
  std::string data_ ABSL_GUARDED_BY(mu_);
};

absl::Status ClosedError(absl::string_view op, const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat(op, " ", path, ": file is closed"));
}

class MemWritableFile final : public WritableFile {
 public:
  // Writes go to the end of the file, or, with `overwrite`, at the handle's
  // own position (ReopenWritableFile).
  MemWritableFile(std::string path, std::shared_ptr<MemFile> file,
                  uint64_t initial_size, bool overwrite = false)
      : path_(std::move(path)),
        file_(std::move(file)),
        size_(initial_size),
        overwrite_(overwrite) {}

  absl::Status Append(absl::string_view data) override {
    if (closed_) return ClosedError("write", path_);
    if (overwrite_) {
      file_->WriteAt(size_, data);
    } else {
      file_->Append(data);
    }
    size_ += data.size();
    return absl::OkStatus();
  }
  absl::Status Flush() override {
    return closed_ ? ClosedError("write", path_) : absl::OkStatus();
  }
  absl::Status Sync() override {
    return closed_ ? ClosedError("fdatasync", path_) : absl::OkStatus();
  }
  absl::Status Close() override {
    if (closed_) return ClosedError("close", path_);
    closed_ = true;
    return absl::OkStatus();
  }
  uint64_t Size() const override { return size_; }
  absl::Status Allocate(uint64_t offset, uint64_t len) override {
    return closed_ ? ClosedError("fallocate", path_) : absl::OkStatus();
  }

 private:
  const std::string path_;
  const std::shared_ptr<MemFile> file_;
  uint64_t size_;
  const bool overwrite_;
  bool closed_ = false;
};

class MemSequentialFile final : public SequentialFile {
 public:
  explicit MemSequentialFile(std::shared_ptr<MemFile> file)
      : file_(std::move(file)) {}

  absl::Status Read(size_t n, absl::string_view* result,
                    char* scratch) override {
    const size_t got = file_->Read(pos_, n, scratch);
    pos_ += got;
    *result = absl::string_view(scratch, got);
    return absl::OkStatus();
  }
  absl::Status Skip(uint64_t n) override {
    const uint64_t size = file_->Size();
    if (pos_ < size) pos_ += std::min(n, size - pos_);
    return absl::OkStatus();
  }

 private:
  const std::shared_ptr<MemFile> file_;
  uint64_t pos_ = 0;
};

class MemRandomAccessFile final : public RandomAccessFile {
 public:
  explicit MemRandomAccessFile(std::shared_ptr<MemFile> file)
      : file_(std::move(file)) {}

  absl::Status Read(uint64_t offset, size_t n, absl::string_view* result,
                    char* scratch) const override {
    *result = absl::string_view(scratch, file_->Read(offset, n, scratch));
    return absl::OkStatus();
  }

 private:
  const std::shared_ptr<MemFile> file_;
};

// Held lock paths of one MemEnv. Shared with its locks, which may outlive it.
struct MemLockTable {
  port::Mutex mu;
  std::set<std::string> held ABSL_GUARDED_BY(mu);
};

class MemFileLock final : public FileLock {
 public:
  MemFileLock(std::shared_ptr<MemLockTable> table, std::string path)
      : table_(std::move(table)), path_(std::move(path)) {}
  ~MemFileLock() override {
    port::MutexLock l(&table_->mu);
    table_->held.erase(path_);
  }

 private:
  const std::shared_ptr<MemLockTable> table_;
  const std::string path_;  // normalized
};

// "/" followed by the path's components, with "", "." and ".." resolved
// lexically; "/" for the root.
std::string Normalize(absl::string_view path) {
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (absl::string_view part : parts) absl::StrAppend(&out, "/", part);
  return out.empty() ? "/" : out;
}

// True if `path` is `dir` or lies below it (both normalized).
bool IsUnder(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

class MemEnv final : public Env {
 public:
  MemEnv() : locks_(std::make_shared<MemLockTable>()) {
    nodes_["/"] = Node{true, nullptr};
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    return OpenWritable(path, /*truncate=*/true);
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return OpenWritable(path, /*truncate=*/false);
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path, uint64_t offset) override {
    absl::StatusOr<std::shared_ptr<MemFile>> file = OpenExisting(path);
    if (!file.ok()) return file.status();
    const uint64_t size = (*file)->Size();
    if (offset > size) {
      return absl::InvalidArgumentError(
          absl::StrCat("reopen ", path, " for writing at offset ", offset,
                       ": beyond its end (", size, " bytes)"));
    }
    return std::unique_ptr<WritableFile>(std::make_unique<MemWritableFile>(
        path, *std::move(file), offset, /*overwrite=*/true));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFileWithOptions(
      const std::string& path, const FileOptions& options) override {
    return OpenWritable(path, /*truncate=*/true);  // see mem_env.h: no O_DIRECT
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFileWithOptions(
      const std::string& path, uint64_t offset,
      const FileOptions& options) override {
    return ReopenWritableFile(path, offset);  // options ignored: see mem_env.h
  }

  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    absl::StatusOr<std::shared_ptr<MemFile>> file = OpenExisting(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<SequentialFile>(
        std::make_unique<MemSequentialFile>(*std::move(file)));
  }

  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    absl::StatusOr<std::shared_ptr<MemFile>> file = OpenExisting(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<RandomAccessFile>(
        std::make_unique<MemRandomAccessFile>(*std::move(file)));
  }

  bool FileExists(const std::string& path) override {
    port::ReaderMutexLock l(&mu_);
    return nodes_.count(Normalize(path)) > 0;
  }

  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override {
    const std::string norm = Normalize(dir);
    port::ReaderMutexLock l(&mu_);
    if (absl::Status s = CheckDir(norm, "opendir", dir); !s.ok()) return s;
    const std::string prefix = ChildPrefix(norm);
    std::vector<std::string> names;
    for (auto it = nodes_.upper_bound(prefix);
         it != nodes_.end() && IsUnder(it->first, norm); ++it) {
      absl::string_view rest = absl::string_view(it->first).substr(prefix.size());
      if (!rest.empty() && rest.find('/') == absl::string_view::npos) {
        names.emplace_back(rest);
      }
    }
    return names;  // map order: sorted
  }

  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override {
    absl::StatusOr<std::shared_ptr<MemFile>> file = Lookup(path, "stat");
    if (!file.ok()) return file.status();
    return (*file)->Size();
  }

  absl::Status DeleteFile(const std::string& path) override {
    const std::string norm = Normalize(path);
    port::WriterMutexLock l(&mu_);
    if (absl::Status s = CheckAncestors(norm, "unlink", path); !s.ok()) return s;
    auto it = nodes_.find(norm);
    if (it == nodes_.end()) return PosixError("unlink", path, ENOENT);
    if (it->second.is_dir) return PosixError("unlink", path, EISDIR);
    nodes_.erase(it);
    return absl::OkStatus();
  }

  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    const std::string nfrom = Normalize(from);
    const std::string nto = Normalize(to);
    const std::string both = absl::StrCat(from, " -> ", to);
    port::WriterMutexLock l(&mu_);
    if (absl::Status s = CheckAncestors(nfrom, "rename", both); !s.ok()) return s;
    auto src = nodes_.find(nfrom);
    if (src == nodes_.end()) return PosixError("rename", both, ENOENT);
    if (absl::Status s = CheckAncestors(nto, "rename", both); !s.ok()) return s;
    if (nfrom == nto) return absl::OkStatus();  // POSIX: same file, no-op
    if (nfrom == "/" || nto == "/") return PosixError("rename", both, EBUSY);
    const bool src_is_dir = src->second.is_dir;
    if (src_is_dir && IsUnder(nto, nfrom)) {
      return PosixError("rename", both, EINVAL);  // into its own subtree
    }
    auto dst = nodes_.find(nto);
    if (dst != nodes_.end()) {
      if (!src_is_dir && dst->second.is_dir) {
        return PosixError("rename", both, EISDIR);
      }
      if (src_is_dir && !dst->second.is_dir) {
        return PosixError("rename", both, ENOTDIR);
      }
      if (src_is_dir && HasChildren(nto)) {
        return PosixError("rename", both, ENOTEMPTY);
      }
      nodes_.erase(dst);
    }
    // Move the node and, for a directory, everything below it.
    std::vector<std::pair<std::string, Node>> moved;
    moved.emplace_back(nto, std::move(src->second));
    nodes_.erase(src);
    if (src_is_dir) {
      for (auto it = nodes_.upper_bound(ChildPrefix(nfrom));
           it != nodes_.end() && IsUnder(it->first, nfrom);) {
        moved.emplace_back(nto + it->first.substr(nfrom.size()),
                           std::move(it->second));
        it = nodes_.erase(it);
      }
    }
    for (auto& [path, node] : moved) nodes_[path] = std::move(node);
    return absl::OkStatus();
  }

  absl::Status TruncateFile(const std::string& path, uint64_t size) override {
    absl::StatusOr<std::shared_ptr<MemFile>> file = Lookup(path, "truncate");
    if (!file.ok()) return file.status();
    (*file)->Resize(size);
    return absl::OkStatus();
  }

  absl::Status CreateDirIfMissing(const std::string& dir) override {
    const std::string norm = Normalize(dir);
    port::WriterMutexLock l(&mu_);
    if (absl::Status s = CheckAncestors(norm, "mkdir", dir); !s.ok()) return s;
    auto it = nodes_.find(norm);
    if (it == nodes_.end()) {
      nodes_[norm] = Node{true, nullptr};
      return absl::OkStatus();
    }
    if (it->second.is_dir) return absl::OkStatus();
    return PosixError("mkdir", dir, EEXIST);
  }

  absl::Status SyncDir(const std::string& dir) override {
    port::ReaderMutexLock l(&mu_);
    return CheckDir(Normalize(dir), "open", dir);
  }

  absl::Status DeleteDir(const std::string& dir) override {
    const std::string norm = Normalize(dir);
    port::WriterMutexLock l(&mu_);
    if (absl::Status s = CheckDir(norm, "rmdir", dir); !s.ok()) return s;
    if (norm == "/") return PosixError("rmdir", dir, EBUSY);
    if (HasChildren(norm)) return PosixError("rmdir", dir, ENOTEMPTY);
    nodes_.erase(norm);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override {
    // Like POSIX: the lock file is created (not truncated) first.
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        OpenWritable(path, /*truncate=*/false);
    if (!file.ok()) return file.status();
    const std::string norm = Normalize(path);
    port::MutexLock l(&locks_->mu);
    if (!locks_->held.insert(norm).second) {
      return absl::FailedPreconditionError(
          absl::StrCat("lock ", path, ": already held by this process"));
    }
    return std::unique_ptr<FileLock>(
        std::make_unique<MemFileLock>(locks_, norm));
  }

 private:
  struct Node {
    bool is_dir = false;
    std::shared_ptr<MemFile> file;  // null for a directory
  };

  // OK if every proper ancestor of `norm` is a directory; else the error POSIX
  // gives: ENOENT for a missing one, ENOTDIR for a regular file.
  absl::Status CheckAncestors(const std::string& norm, absl::string_view op,
                              absl::string_view path) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    for (size_t pos = norm.find('/', 1); pos != std::string::npos;
         pos = norm.find('/', pos + 1)) {
      auto it = nodes_.find(norm.substr(0, pos));
      if (it == nodes_.end()) return PosixError(op, path, ENOENT);
      if (!it->second.is_dir) return PosixError(op, path, ENOTDIR);
    }
    return absl::OkStatus();
  }

  // OK if `norm` is an existing directory.
  absl::Status CheckDir(const std::string& norm, absl::string_view op,
                        absl::string_view path) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    if (absl::Status s = CheckAncestors(norm, op, path); !s.ok()) return s;
    auto it = nodes_.find(norm);
    if (it == nodes_.end()) return PosixError(op, path, ENOENT);
    if (!it->second.is_dir) return PosixError(op, path, ENOTDIR);
    return absl::OkStatus();
  }

  // Keys below a directory are contiguous in the map, starting at "<dir>/"
  // (not right after "<dir>": "/a-b" sorts between "/a" and "/a/x").
  static std::string ChildPrefix(const std::string& dir) {
    return dir == "/" ? dir : dir + "/";
  }

  bool HasChildren(const std::string& dir) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    auto it = nodes_.upper_bound(ChildPrefix(dir));
    return it != nodes_.end() && IsUnder(it->first, dir);
  }

  // The existing regular file at `path`.
  absl::StatusOr<std::shared_ptr<MemFile>> Lookup(const std::string& path,
                                                  absl::string_view op)
      ABSL_LOCKS_EXCLUDED(mu_) {
    const std::string norm = Normalize(path);
    port::ReaderMutexLock l(&mu_);
    if (absl::Status s = CheckAncestors(norm, op, path); !s.ok()) return s;
    auto it = nodes_.find(norm);
    if (it == nodes_.end()) return PosixError(op, path, ENOENT);
    if (it->second.is_dir) return PosixError(op, path, EISDIR);
    return it->second.file;
  }

  absl::StatusOr<std::shared_ptr<MemFile>> OpenExisting(
      const std::string& path) ABSL_LOCKS_EXCLUDED(mu_) {
    return Lookup(path, "open");
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path, bool truncate) ABSL_LOCKS_EXCLUDED(mu_) {
    const std::string norm = Normalize(path);
    port::WriterMutexLock l(&mu_);
    if (absl::Status s = CheckAncestors(norm, "open", path); !s.ok()) return s;
    auto it = nodes_.find(norm);
    std::shared_ptr<MemFile> file;
    if (it == nodes_.end()) {
      file = std::make_shared<MemFile>();
      nodes_[norm] = Node{false, file};
    } else if (it->second.is_dir) {
      return PosixError("open", path, EISDIR);
    } else {
      file = it->second.file;
      if (truncate) file->Resize(0);  // in place, like O_TRUNC
    }
    const uint64_t initial_size = truncate ? 0 : file->Size();
    return std::unique_ptr<WritableFile>(
        std::make_unique<MemWritableFile>(path, std::move(file), initial_size));
  }

  mutable port::SharedMutex mu_;
  // Normalized path -> node. "/" is always a directory; every other node's
  // parent is a directory in the map.
  std::map<std::string, Node> nodes_ ABSL_GUARDED_BY(mu_);
  const std::shared_ptr<MemLockTable> locks_;
};

}  // namespace

std::unique_ptr<Env> NewMemEnv() { return std::make_unique<MemEnv>(); }

}  // namespace segwal
