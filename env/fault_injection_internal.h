// Private to FaultInjectionEnv: the path rules and base-file reads that both of
// its source files use. fault_injection_env.cc records what calls do
// (handles, Env methods); fault_injection_crash.cc applies a crash. Not part
// of any public header; nothing here takes a lock.

#ifndef SEGWAL_ENV_FAULT_INJECTION_INTERNAL_H_
#define SEGWAL_ENV_FAULT_INJECTION_INTERNAL_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "env/env.h"

namespace segwal {
namespace fault_injection_internal {

inline constexpr size_t kCopyChunk = 64 << 10;

// Collapses repeated slashes, drops a trailing slash and leading "./", so that
// "dir//f", "./dir/f" and "dir/f" name the same directory entry.
inline std::string NormalizePath(absl::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  while (out.size() > 2 && out.compare(0, 2, "./") == 0) out.erase(0, 2);
  if (out.empty()) return std::string(".");
  return out;
}

// The directory holding the normalized path `norm` ("/" and "." hold
// themselves).
inline std::string DirOf(const std::string& norm) {
  const size_t slash = norm.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return norm.substr(0, slash);
}

// Reads bytes [offset, offset + n) of `file` (fewer at end of file).
inline absl::StatusOr<std::string> ReadAt(const RandomAccessFile& file,
                                          uint64_t offset, uint64_t n) {
  std::string out;
  std::string scratch(kCopyChunk, '\0');
  while (out.size() < n) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(kCopyChunk, n - out.size()));
    absl::string_view chunk;
    absl::Status s =
        file.Read(offset + out.size(), want, &chunk, scratch.data());
    if (!s.ok()) return s;
    if (chunk.empty()) break;
    out.append(chunk.data(), chunk.size());
  }
  return out;
}

// Reads up to `limit` bytes from the start of `path` on `env`.
inline absl::StatusOr<std::string> ReadPrefix(Env* env, const std::string& path,
                                              uint64_t limit) {
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  std::string out;
  std::string scratch(kCopyChunk, '\0');
  while (out.size() < limit) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(kCopyChunk, limit - out.size()));
    absl::string_view chunk;
    absl::Status s = (*file)->Read(want, &chunk, scratch.data());
    if (!s.ok()) return s;
    if (chunk.empty()) break;
    out.append(chunk.data(), chunk.size());
  }
  return out;
}

}  // namespace fault_injection_internal
}  // namespace segwal

#endif  // SEGWAL_ENV_FAULT_INJECTION_INTERNAL_H_
