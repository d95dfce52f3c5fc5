// KvFsm (kv/kv_fsm.h): applying segkv commands to the in-memory map, and raft
// snapshots in the checkpoint encoding.

#include "kv/kv_fsm.h"

#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "env/mem_env.h"
#include "kv/cluster_command.h"
#include "kv/kv_store.h"

namespace segwal {
namespace kv {

namespace {

constexpr char kSnapshotDir[] = "/snapshot";

}  // namespace

KvFsm::KvFsm() {
  fsm_.version = 1;
  fsm_.data = this;
  fsm_.apply = &FsmApply;
  fsm_.snapshot = &FsmSnapshot;
  fsm_.restore = &FsmRestore;
}

KvFsm::Result KvFsm::Apply(absl::string_view entry, uint64_t index) {
  Result result;
  last_applied_ = index;
  absl::StatusOr<DecodedRecord> r = DecodeClusterCommand(entry);
  if (!r.ok()) {
    result.error = absl::StrCat("segkv: undecodable raft entry ", index, ": ",
                                r.status().ToString());
    return result;
  }
  auto put = [&](absl::string_view key, std::string value) {
    KvEntry& e = map_[key];
    e.value = std::make_shared<const std::string>(std::move(value));
    e.lsn = index;
  };
  switch (r->op) {
    case KvOp::kSet:
    case KvOp::kMSet:
      for (size_t i = 0; i < r->keys.size(); ++i) put(r->keys[i], std::string(r->values[i]));
      break;
    case KvOp::kIncrBy: {
      int64_t before = 0;
      auto it = map_.find(r->keys[0]);
      if (it != map_.end() && !ParseRedisInt64(*it->second.value, &before)) {
        result.error = "value is not an integer or out of range";
        break;
      }
      if (__builtin_add_overflow(before, r->delta, &result.integer)) {
        result.error = "increment or decrement would overflow";
        result.integer = 0;
        break;
      }
      put(r->keys[0], std::to_string(result.integer));
      break;
    }
    case KvOp::kDel:
      for (absl::string_view k : r->keys) result.integer += map_.erase(k);
      break;
    case KvOp::kFlushAll:
      result.integer = static_cast<int64_t>(map_.size());
      map_.clear();
      break;
  }
  return result;
}

absl::StatusOr<std::string> KvFsm::Snapshot() const {
  std::unique_ptr<Env> env = NewMemEnv();
  absl::Status s = env->CreateDirIfMissing(kSnapshotDir);
  if (!s.ok()) return s;
  absl::StatusOr<uint64_t> size = WriteCheckpoint(env.get(), kSnapshotDir, last_applied_, map_);
  if (!size.ok()) return size.status();
  const std::string path = absl::StrCat(kSnapshotDir, "/", CheckpointFileName(last_applied_));
  absl::StatusOr<std::unique_ptr<SequentialFile>> f = env->NewSequentialFile(path);
  if (!f.ok()) return f.status();
  std::string out(*size, '\0');
  size_t got = 0;
  while (got < out.size()) {
    absl::string_view chunk;
    s = (*f)->Read(out.size() - got, &chunk, &out[got]);
    if (!s.ok()) return s;
    if (chunk.empty()) break;
    if (chunk.data() != &out[got]) std::memmove(&out[got], chunk.data(), chunk.size());
    got += chunk.size();
  }
  if (got != out.size()) {
    return absl::InternalError(absl::StrCat("snapshot: read ", got, " of ", out.size(), " bytes"));
  }
  return out;
}

absl::Status KvFsm::Restore(absl::string_view snapshot) {
  std::unique_ptr<Env> env = NewMemEnv();
  absl::Status s = env->CreateDirIfMissing(kSnapshotDir);
  const std::string path = absl::StrCat(kSnapshotDir, "/restore.ckpt");
  if (s.ok()) {
    absl::StatusOr<std::unique_ptr<WritableFile>> f = env->NewWritableFile(path);
    if (!f.ok()) return f.status();
    s = (*f)->Append(snapshot);
    if (s.ok()) s = (*f)->Close();
  }
  if (!s.ok()) return s;
  KvMap map;
  absl::StatusOr<LoadedCheckpoint> loaded = LoadCheckpoint(env.get(), path, &map);
  if (!loaded.ok()) return loaded.status();
  map_ = std::move(map);
  last_applied_ = loaded->lsn;
  return absl::OkStatus();
}

std::optional<std::string> KvFsm::Get(absl::string_view key) const {
  auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  return *it->second.value;
}

int64_t KvFsm::Exists(const std::vector<absl::string_view>& keys) const {
  int64_t n = 0;
  for (absl::string_view k : keys) n += map_.contains(k) ? 1 : 0;
  return n;
}

std::vector<std::string> KvFsm::Keys(absl::string_view pattern) const {
  std::vector<std::string> out;
  for (const auto& [key, entry] : map_) {
    if (GlobMatch(pattern, key)) out.push_back(key);
  }
  return out;
}

std::string KvFsm::Digest() const {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](absl::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  for (const auto& [key, entry] : map_) {
    mix(absl::StrCat(key.size(), ":"));
    mix(key);
    mix(absl::StrCat(entry.value->size(), ":"));
    mix(*entry.value);
  }
  return absl::StrFormat("%016x", h);
}

// ---- libraft glue. Returning non-zero from apply would stop raft; every
// outcome, decode errors included, is a Result instead.

int KvFsm::FsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result) {
  KvFsm* self = static_cast<KvFsm*>(fsm->data);
  // libraft 0.15 does not pass the index: it applies entries in index order
  // and sets raft's last_applied right after each, so this entry's index is
  // last_applied + 1 (barriers and configurations take indexes too).
  const uint64_t index =
      self->raft_ != nullptr ? self->raft_->last_applied + 1 : self->last_applied_ + 1;
  self->last_result_ =
      self->Apply(absl::string_view(static_cast<const char*>(buf->base), buf->len), index);
  if (!self->last_result_.error.empty() &&
      self->last_result_.error.rfind("segkv: undecodable", 0) == 0) {
    fprintf(stderr, "segkv_server: %s\n", self->last_result_.error.c_str());
  }
  *result = &self->last_result_;
  return 0;
}

int KvFsm::FsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
  KvFsm* self = static_cast<KvFsm*>(fsm->data);
  absl::StatusOr<std::string> bytes = self->Snapshot();
  if (!bytes.ok()) {
    fprintf(stderr, "segkv_server: snapshot failed: %s\n", bytes.status().ToString().c_str());
    return RAFT_NOMEM;
  }
  *bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  if (*bufs == nullptr) return RAFT_NOMEM;
  (*bufs)[0].base = raft_malloc(bytes->size() == 0 ? 1 : bytes->size());
  if ((*bufs)[0].base == nullptr) {
    raft_free(*bufs);
    return RAFT_NOMEM;
  }
  std::memcpy((*bufs)[0].base, bytes->data(), bytes->size());
  (*bufs)[0].len = bytes->size();
  *n_bufs = 1;
  ++self->snapshots_taken_;
  return 0;
}

int KvFsm::FsmRestore(raft_fsm* fsm, raft_buffer* buf) {
  KvFsm* self = static_cast<KvFsm*>(fsm->data);
  absl::Status s =
      self->Restore(absl::string_view(static_cast<const char*>(buf->base), buf->len));
  if (!s.ok()) {
    fprintf(stderr, "segkv_server: snapshot restore failed: %s\n", s.ToString().c_str());
    return RAFT_CORRUPT;
  }
  raft_free(buf->base);  // restore owns the buffer on success (libraft 0.15)
  ++self->snapshots_restored_;
  return 0;
}

}  // namespace kv
}  // namespace segwal
