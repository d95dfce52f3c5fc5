// Checkpoint file writing and loading; the layout is in kv/FORMAT.md.

#include "kv/checkpoint_file.h"

#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "crypto/crc32c.h"
#include "kv/record_codec.h"
#include "util/coding.h"

namespace segwal {
namespace kv {
namespace {

constexpr char kMagic[8] = {'S', 'E', 'G', 'K', 'V', 'C', 'K', '1'};
constexpr char kEndMagic[4] = {'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = 32;   // magic, version, flags, lsn, key count
constexpr size_t kTrailerSize = 16;  // body size, masked CRC32C, end magic
constexpr size_t kChunk = 1 << 20;
constexpr char kPrefix[] = "checkpoint-";
constexpr char kSuffix[] = ".ckpt";
constexpr char kTmpSuffix[] = ".ckpt.tmp";

// Reads a file front to back, extending a CRC32C over the body bytes it
// returns, and keeps a window of bytes so an entry can be parsed whole.
class BodyReader {
 public:
  BodyReader(SequentialFile* file, const std::string& path, uint64_t body_end)
      : file_(file), path_(path), body_end_(body_end) {}

  uint64_t offset() const { return consumed_; }
  uint32_t crc() const { return crc_; }

  // Makes at least n bytes available at the front of window(), or fewer if
  // the body ends first.
  absl::Status Ensure(size_t n) {
    if (buf_.size() - pos_ >= n) return absl::OkStatus();
    buf_.erase(0, pos_);
    pos_ = 0;
    while (buf_.size() < n && read_ < body_end_) {
      const size_t want = static_cast<size_t>(
          std::min<uint64_t>(std::max(kChunk, n - buf_.size()), body_end_ - read_));
      scratch_.resize(want);
      absl::string_view got;
      absl::Status s = file_->Read(want, &got, scratch_.data());
      if (!s.ok()) {
        return absl::Status(s.code(), absl::StrCat(path_, ": read at offset ",
                                                   read_, ": ", s.message()));
      }
      if (got.empty()) {
        return absl::DataLossError(absl::StrCat(
            path_, ": file ended at offset ", read_, ", before its trailer"));
      }
      crc_ = crc32c::Extend(crc_, got);
      buf_.append(got.data(), got.size());
      read_ += got.size();
    }
    return absl::OkStatus();
  }
  absl::string_view window() const {
    return absl::string_view(buf_).substr(pos_);
  }
  void Consume(size_t n) {
    pos_ += n;
    consumed_ += n;
  }

 private:
  SequentialFile* const file_;
  const std::string& path_;
  const uint64_t body_end_;
  std::string buf_;
  std::string scratch_;
  size_t pos_ = 0;
  uint64_t read_ = 0;      // body bytes read from the file
  uint64_t consumed_ = 0;  // body bytes parsed
  uint32_t crc_ = 0;
};

}  // namespace

std::string CheckpointFileName(uint64_t lsn) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%020llu%s", kPrefix,
                static_cast<unsigned long long>(lsn), kSuffix);
  return buf;
}

bool ParseCheckpointFileName(absl::string_view name, uint64_t* lsn) {
  if (!absl::StartsWith(name, kPrefix) || !absl::EndsWith(name, kSuffix)) {
    return false;
  }
  name.remove_prefix(sizeof(kPrefix) - 1);
  name.remove_suffix(sizeof(kSuffix) - 1);
  return name.size() == 20 && absl::SimpleAtoi(name, lsn);
}

bool IsTemporaryCheckpointName(absl::string_view name) {
  return absl::StartsWith(name, kPrefix) && absl::EndsWith(name, kTmpSuffix);
}

absl::StatusOr<uint64_t> WriteCheckpoint(Env* env, const std::string& dir,
                                         uint64_t lsn, const KvMap& map) {
  const std::string final_path = dir + "/" + CheckpointFileName(lsn);
  const std::string tmp_path = final_path + ".tmp";
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env->NewWritableFile(tmp_path);
  if (!file.ok()) return file.status();
  uint32_t crc = 0;
  uint64_t size = 0;
  std::string buf;
  buf.reserve(kChunk + 4096);
  auto flush = [&]() -> absl::Status {
    crc = crc32c::Extend(crc, buf);
    size += buf.size();
    absl::Status s = (*file)->Append(buf);
    buf.clear();
    return s;
  };
  buf.append(kMagic, sizeof(kMagic));
  PutFixed32(&buf, kVersion);
  PutFixed32(&buf, 0);  // flags
  PutFixed64(&buf, lsn);
  PutFixed64(&buf, map.size());
  absl::Status s;
  for (const auto& [key, entry] : map) {
    PutLengthPrefixed(&buf, key);
    PutLengthPrefixed(&buf, *entry.value);
    if (buf.size() >= kChunk) {
      s = flush();
      if (!s.ok()) break;
    }
  }
  if (s.ok()) s = flush();
  if (s.ok()) {
    PutFixed64(&buf, size);
    PutFixed32(&buf, crc32c::Mask(crc));
    buf.append(kEndMagic, sizeof(kEndMagic));
    s = (*file)->Append(buf);
    size += buf.size();
  }
  if (s.ok()) s = (*file)->Sync();
  absl::Status close = (*file)->Close();
  if (s.ok()) s = close;
  if (s.ok()) s = env->RenameFile(tmp_path, final_path);
  if (!s.ok()) {
    env->DeleteFile(tmp_path).IgnoreError();  // best effort; Open ignores .tmp
    return absl::Status(s.code(), absl::StrCat("writing checkpoint ", tmp_path,
                                               ": ", s.message()));
  }
  s = env->SyncDir(dir);
  if (!s.ok()) {
    // The rename happened but may not be durable: the caller must not rely on
    // this checkpoint (it does not truncate the log behind it).
    return absl::Status(s.code(), absl::StrCat("syncing directory ", dir,
                                               " after writing ", final_path,
                                               ": ", s.message()));
  }
  return size;
}

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(Env* env,
                                                const std::string& path,
                                                KvMap* map) {
  map->clear();
  absl::StatusOr<uint64_t> file_size = env->GetFileSize(path);
  if (!file_size.ok()) return file_size.status();
  if (*file_size < kHeaderSize + kTrailerSize) {
    return absl::DataLossError(absl::StrCat(
        path, ": ", *file_size, " bytes, shorter than a checkpoint's header and trailer"));
  }
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  const uint64_t body_end = *file_size - kTrailerSize;
  BodyReader in(file->get(), path, body_end);
  auto bad = [&](uint64_t offset, absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat(path, ": offset ", offset, ": ", what));
  };
  absl::Status s = in.Ensure(kHeaderSize);
  if (!s.ok()) return s;
  const char* h = in.window().data();
  if (std::memcmp(h, kMagic, sizeof(kMagic)) != 0) {
    return bad(0, "not a segkv checkpoint (bad magic)");
  }
  const uint32_t version = DecodeFixed32(h + 8);
  if (version != kVersion) {
    return bad(8, absl::StrCat("unsupported checkpoint version ", version));
  }
  if (DecodeFixed32(h + 12) != 0) return bad(12, "unknown checkpoint flags");
  LoadedCheckpoint out;
  out.lsn = DecodeFixed64(h + 16);
  const uint64_t count = DecodeFixed64(h + 24);
  in.Consume(kHeaderSize);
  std::string prev_key;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t at = in.offset();
    // Two length-prefixed strings: key, value. Each varint is at most 10
    // bytes. Ensure may move the window's bytes, so positions are kept as
    // offsets into the window and turned into views only at the end.
    uint64_t lengths[2];
    size_t starts[2];
    size_t need = 0;
    for (int part = 0; part < 2; ++part) {
      s = in.Ensure(need + 10);
      if (!s.ok()) return s;
      absl::string_view w = in.window().substr(need);
      const size_t before = w.size();
      if (!GetVarint64(&w, &lengths[part]) ||
          lengths[part] > body_end - at) {
        return bad(at, absl::StrCat("entry ", i, ": bad length"));
      }
      need += before - w.size();
      s = in.Ensure(need + lengths[part]);
      if (!s.ok()) return s;
      if (in.window().size() < need + lengths[part]) {
        return bad(at, absl::StrCat("entry ", i, " runs past the body"));
      }
      starts[part] = need;
      need += lengths[part];
    }
    const absl::string_view key = in.window().substr(starts[0], lengths[0]);
    const absl::string_view value = in.window().substr(starts[1], lengths[1]);
    if (i > 0 && key <= prev_key) {
      return bad(at, absl::StrCat("entry ", i, ": keys out of order"));
    }
    prev_key.assign(key.data(), key.size());
    map->emplace_hint(map->end(), prev_key,
                      KvEntry{std::make_shared<const std::string>(value),
                              out.lsn});
    in.Consume(need);
  }
  if (in.offset() != body_end) {
    return bad(in.offset(), absl::StrCat("the ", count,
                                         " entries end before the trailer at ",
                                         body_end));
  }
  char trailer[kTrailerSize];
  absl::string_view got;
  s = (*file)->Read(kTrailerSize, &got, trailer);
  if (!s.ok()) return s;
  if (got.size() != kTrailerSize ||
      std::memcmp(got.data() + 12, kEndMagic, sizeof(kEndMagic)) != 0) {
    return bad(body_end, "bad trailer (torn or truncated file)");
  }
  if (DecodeFixed64(got.data()) != body_end) {
    return bad(body_end, "trailer's body size does not match the file");
  }
  if (crc32c::Unmask(DecodeFixed32(got.data() + 8)) != in.crc()) {
    return bad(body_end, "checksum mismatch");
  }
  out.keys = count;
  return out;
}

}  // namespace kv
}  // namespace segwal
