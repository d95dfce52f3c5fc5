// SegwalRaftIo: raft_io methods over SegwalRaftStore, the sync thread, and
// the loop-thread completion queue. Lock: mu_ guards only the hand-off with
// the sync thread (segwal_raft_io.h); everything else is loop-thread state.

#include "raft/segwal_raft_io.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "raft/commit_guard.h"

namespace segwal {
namespace raftstore {

struct SegwalRaftIo::Completion {
  enum Kind { kAppend, kSnapshotPut, kSnapshotGet } kind;
  void* req;
  uint64_t lsn;  // kAppend: done once durable_lsn() >= lsn
  raft_snapshot* snapshot;  // kSnapshotGet: handed to the callback
};

namespace {

// Transport io -> its SegwalRaftIo, for the transport's close callback (which
// is told only the transport io; its `data` belongs to raft).
port::Mutex registry_mu;
std::map<raft_io*, SegwalRaftIo*>& Registry() ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu) {
  static auto* registry = new std::map<raft_io*, SegwalRaftIo*>;
  return *registry;
}

void CopyErrmsg(char* dst, const char* src) {
  std::snprintf(dst, RAFT_ERRMSG_BUF_SIZE, "%s", src);
}

absl::StatusOr<raft_snapshot*> ToRaftSnapshot(const RaftSnapshot& s) {
  auto* out = static_cast<raft_snapshot*>(raft_calloc(1, sizeof(raft_snapshot)));
  if (out == nullptr) return absl::ResourceExhaustedError("raft_calloc");
  out->index = s.index;
  out->term = s.term;
  raft_configuration_init(&out->configuration);
  for (const RaftServerInfo& server : s.configuration) {
    if (raft_configuration_add(&out->configuration, server.id,
                               server.address.c_str(), server.role) != 0) {
      raft_configuration_close(&out->configuration);
      raft_free(out);
      return absl::DataLossError(absl::StrCat(
          "snapshot at index ", s.index, ": bad configuration server ", server.id));
    }
  }
  out->configuration_index = s.configuration_index;
  out->bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  out->bufs[0].base = raft_malloc(s.data.empty() ? 1 : s.data.size());
  std::memcpy(out->bufs[0].base, s.data.data(), s.data.size());
  out->bufs[0].len = s.data.size();
  out->n_bufs = 1;
  return out;
}

RaftSnapshot FromRaftSnapshot(const raft_snapshot& s) {
  RaftSnapshot out;
  out.index = s.index;
  out.term = s.term;
  for (unsigned i = 0; i < s.configuration.n; ++i) {
    const raft_server& server = s.configuration.servers[i];
    out.configuration.push_back({server.id, server.address, server.role});
  }
  out.configuration_index = s.configuration_index;
  for (unsigned i = 0; i < s.n_bufs; ++i) {
    out.data.append(static_cast<const char*>(s.bufs[i].base), s.bufs[i].len);
  }
  return out;
}

}  // namespace

// The raft_io function pointers: each finds its SegwalRaftIo in io->impl.
class SegwalRaftIo::Methods {
 public:
  static SegwalRaftIo* Self(raft_io* io) {
    return static_cast<SegwalRaftIo*>(io->impl);
  }

  static int Init(raft_io* io, raft_id id, const char* address) {
    SegwalRaftIo* self = Self(io);
    int rv = self->transport_->init(self->transport_, id, address);
    if (rv != 0) {
      CopyErrmsg(io->errmsg, self->transport_->errmsg);
      return rv;
    }
    uv_async_init(self->options_.loop, &self->async_, &Methods::AsyncCb);
    self->async_.data = self;
    uv_prepare_init(self->options_.loop, &self->prepare_);
    self->prepare_.data = self;
    uv_prepare_start(&self->prepare_, &Methods::PrepareCb);
    self->sync_thread_ = std::thread([self] { self->SyncThreadMain(); });
    self->initialized_ = true;
    return 0;
  }

  static void Close(raft_io* io, raft_io_close_cb cb) {
    SegwalRaftIo* self = Self(io);
    self->closing_ = true;
    self->close_cb_ = cb;
    if (!self->initialized_) {
      if (cb != nullptr) cb(io);
      return;
    }
    // Appends not yet handed over are synced too; the sync thread finishes
    // the sync it was asked for, then exits; the
    // callbacks and the handle closes run on the next loop iteration, not
    // inside raft_close.
    self->FlushSyncRequest();
    self->StopSyncThread();
    uv_async_send(&self->async_);
  }

  static int Load(raft_io* io, raft_term* term, raft_id* voted_for,
                  raft_snapshot** snapshot, raft_index* start_index,
                  raft_entry** entries, size_t* n_entries) {
    SegwalRaftIo* self = Self(io);
    absl::StatusOr<LoadedRaftLog> log = self->store_->Load();
    if (!log.ok()) return self->Fail(log.status());
    raft_snapshot* loaded_snapshot = nullptr;
    if (log->snapshot.has_value()) {
      absl::StatusOr<raft_snapshot*> s = ToRaftSnapshot(*log->snapshot);
      if (!s.ok()) return self->Fail(s.status(), RAFT_CORRUPT);
      loaded_snapshot = *s;
    }
    raft_entry* out = nullptr;
    if (!log->entries.empty()) {
      // One batch holds every entry's data (as raft_uv loads them): raft
      // frees it once no entry refers to it.
      size_t total = 0;
      for (const RaftEntry& e : log->entries) total += e.data.size();
      out = static_cast<raft_entry*>(
          raft_calloc(log->entries.size(), sizeof(raft_entry)));
      char* batch = static_cast<char*>(raft_malloc(total == 0 ? 1 : total));
      size_t offset = 0;
      for (size_t i = 0; i < log->entries.size(); ++i) {
        const RaftEntry& e = log->entries[i];
        std::memcpy(batch + offset, e.data.data(), e.data.size());
        out[i].term = e.term;
        out[i].type = e.type;
        out[i].buf.base = batch + offset;
        out[i].buf.len = e.data.size();
        out[i].batch = batch;
        offset += e.data.size();
      }
    }
    *term = log->term;
    *voted_for = log->voted_for;
    *snapshot = loaded_snapshot;
    *start_index = log->start_index;
    *entries = out;
    *n_entries = log->entries.size();
    return 0;
  }

  static int Start(raft_io* io, unsigned msecs, raft_io_tick_cb tick,
                   raft_io_recv_cb recv) {
    SegwalRaftIo* self = Self(io);
    // raft_uv hands its own raft_io to tick and recv; libraft's callbacks
    // read the raft instance from io->data (pinned by
    // SegwalRaftIoTcpTest.ThreeNodesElectApplyAndRestartFromTheSameDirs).
    self->transport_->data = io->data;
    // The commit guard sees every message before libraft does: the
    // transport calls Recv, which finds this io in the registry.
    self->recv_cb_ = recv;
    int rv = self->transport_->start(self->transport_, msecs, tick,
                                     self->options_.commit_guard ? &Methods::Recv : recv);
    if (rv != 0) CopyErrmsg(io->errmsg, self->transport_->errmsg);
    return rv;
  }

  static int Bootstrap(raft_io* io, const raft_configuration* conf) {
    SegwalRaftIo* self = Self(io);
    raft_buffer buf;
    int rv = raft_configuration_encode(conf, &buf);
    if (rv != 0) return rv;
    absl::Status s = self->store_->Bootstrap(
        RAFT_CHANGE, absl::string_view(static_cast<char*>(buf.base), buf.len));
    raft_free(buf.base);
    if (absl::IsFailedPrecondition(s)) return self->Fail(s, RAFT_CANTBOOTSTRAP);
    return s.ok() ? 0 : self->Fail(s);
  }

  static int Recover(raft_io* io, const raft_configuration* conf) {
    SegwalRaftIo* self = Self(io);
    raft_buffer buf;
    int rv = raft_configuration_encode(conf, &buf);
    if (rv != 0) return rv;
    absl::Status s = self->store_->Recover(
        RAFT_CHANGE, absl::string_view(static_cast<char*>(buf.base), buf.len));
    raft_free(buf.base);
    return s.ok() ? 0 : self->Fail(s);
  }

  static int SetTerm(raft_io* io, raft_term term) {
    absl::Status s = Self(io)->store_->SetTerm(term);
    return s.ok() ? 0 : Self(io)->Fail(s);
  }

  static int SetVote(raft_io* io, raft_id server_id) {
    absl::Status s = Self(io)->store_->SetVote(server_id);
    return s.ok() ? 0 : Self(io)->Fail(s);
  }

  // Loop thread (the transport's receive path), with the commit guard on.
  static void Recv(raft_io* transport, raft_message* message) {
    SegwalRaftIo* self;
    {
      port::MutexLock l(&registry_mu);
      self = Registry().at(transport);
    }
    if (message->type == RAFT_IO_APPEND_ENTRIES_RESULT) {
      const SegwalRaftStore::LogPosition pos = self->store_->Position();
      CommitGuardView view;
      view.current_term = self->store_->term();
      view.committed_floor = std::max(pos.snapshot_index, self->committed_floor_);
      view.last_index = pos.last_index;
      view.durable_index = pos.durable_index;
      SegwalRaftStore* store = self->store_.get();
      GuardAppendEntriesResult(message, view,
                               [store](uint64_t index) { return store->TermOf(index); });
    }
    self->recv_cb_(transport, message);
  }

  static int Send(raft_io* io, raft_io_send* req, const raft_message* message,
                  raft_io_send_cb cb) {
    SegwalRaftIo* self = Self(io);
    // A leader_commit this server sends is committed here: the commit
    // guard's floor (raft/commit_guard.h).
    if (message->type == RAFT_IO_APPEND_ENTRIES) {
      self->committed_floor_ =
          std::max(self->committed_floor_, uint64_t{message->append_entries.leader_commit});
    }
    int rv = self->transport_->send(self->transport_, req, message, cb);
    if (rv != 0) CopyErrmsg(io->errmsg, self->transport_->errmsg);
    return rv;
  }

  static int Append(raft_io* io, raft_io_append* req, const raft_entry entries[],
                    unsigned n, raft_io_append_cb cb) {
    SegwalRaftIo* self = Self(io);
    if (self->closing_) return RAFT_CANCELED;
    std::vector<RaftEntryView> views;
    views.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
      views.push_back({entries[i].term, entries[i].type,
                       absl::string_view(static_cast<const char*>(entries[i].buf.base),
                                         entries[i].buf.len)});
    }
    absl::StatusOr<uint64_t> lsn = self->store_->Append(views);
    if (!lsn.ok()) return self->Fail(lsn.status());
    req->cb = cb;
    self->completions_.push_back({Completion::kAppend, req, *lsn, nullptr});
    // Handed to the sync thread by PrepareCb, before the loop next polls.
    self->unrequested_lsn_ = *lsn;
    return 0;
  }

  static int Truncate(raft_io* io, raft_index index) {
    absl::Status s = Self(io)->store_->Truncate(index);
    return s.ok() ? 0 : Self(io)->Fail(s);
  }

  static int SnapshotPut(raft_io* io, unsigned trailing, raft_io_snapshot_put* req,
                         const raft_snapshot* snapshot, raft_io_snapshot_put_cb cb) {
    SegwalRaftIo* self = Self(io);
    if (self->closing_) return RAFT_CANCELED;
    absl::Status s = self->store_->PutSnapshot(FromRaftSnapshot(*snapshot), trailing);
    if (!s.ok()) return self->Fail(s);
    req->cb = cb;
    self->completions_.push_back({Completion::kSnapshotPut, req, 0, nullptr});
    uv_async_send(&self->async_);
    return 0;
  }

  static int SnapshotGet(raft_io* io, raft_io_snapshot_get* req,
                         raft_io_snapshot_get_cb cb) {
    SegwalRaftIo* self = Self(io);
    if (self->closing_) return RAFT_CANCELED;
    absl::StatusOr<std::optional<RaftSnapshot>> s = self->store_->GetSnapshot();
    if (!s.ok()) return self->Fail(s.status());
    if (!s->has_value()) {
      return self->Fail(absl::NotFoundError("no snapshot"), RAFT_NOTFOUND);
    }
    absl::StatusOr<raft_snapshot*> converted = ToRaftSnapshot(**s);
    if (!converted.ok()) return self->Fail(converted.status(), RAFT_CORRUPT);
    req->cb = cb;
    self->completions_.push_back({Completion::kSnapshotGet, req, 0, *converted});
    uv_async_send(&self->async_);
    return 0;
  }

  static raft_time Time(raft_io* io) {
    SegwalRaftIo* self = Self(io);
    return self->transport_->time(self->transport_);
  }

  static int Random(raft_io* io, int min, int max) {
    SegwalRaftIo* self = Self(io);
    return self->transport_->random(self->transport_, min, max);
  }

  static void PrepareCb(uv_prepare_t* handle) {
    static_cast<SegwalRaftIo*>(handle->data)->FlushSyncRequest();
  }

  static void AsyncCb(uv_async_t* handle) {
    auto* self = static_cast<SegwalRaftIo*>(handle->data);
    self->FireCompletions();
    if (!self->closing_ || self->close_started_) return;
    self->close_started_ = true;
    self->closes_pending_ = 3;
    uv_close(reinterpret_cast<uv_handle_t*>(&self->prepare_), &Methods::AsyncClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->async_), &Methods::AsyncClosed);
    self->transport_->close(self->transport_, &Methods::TransportClosed);
  }

  static void AsyncClosed(uv_handle_t* handle) {
    static_cast<SegwalRaftIo*>(handle->data)->MaybeFinishClose();
  }

  static void TransportClosed(raft_io* transport) {
    SegwalRaftIo* self;
    {
      port::MutexLock l(&registry_mu);
      self = Registry().at(transport);
    }
    self->MaybeFinishClose();
  }
};

SegwalRaftIo::SegwalRaftIo(const SegwalRaftIoOptions& options,
                           std::unique_ptr<SegwalRaftStore> store)
    : options_(options), store_(std::move(store)) {
  std::memset(&io_, 0, sizeof(io_));
  std::memset(&async_, 0, sizeof(async_));
  std::memset(&prepare_, 0, sizeof(prepare_));
  io_.version = 1;
  io_.impl = this;
  io_.init = &Methods::Init;
  io_.close = &Methods::Close;
  io_.load = &Methods::Load;
  io_.start = &Methods::Start;
  io_.bootstrap = &Methods::Bootstrap;
  io_.recover = &Methods::Recover;
  io_.set_term = &Methods::SetTerm;
  io_.set_vote = &Methods::SetVote;
  io_.send = &Methods::Send;
  io_.append = &Methods::Append;
  io_.truncate = &Methods::Truncate;
  io_.snapshot_put = &Methods::SnapshotPut;
  io_.snapshot_get = &Methods::SnapshotGet;
  io_.time = &Methods::Time;
  io_.random = &Methods::Random;
}

SegwalRaftIo::~SegwalRaftIo() {
  StopSyncThread();
  for (Completion& c : completions_) {
    if (c.snapshot != nullptr) {
      raft_configuration_close(&c.snapshot->configuration);
      raft_free(c.snapshot->bufs[0].base);
      raft_free(c.snapshot->bufs);
      raft_free(c.snapshot);
    }
  }
  if (transport_ != nullptr) {
    port::MutexLock l(&registry_mu);
    Registry().erase(transport_);
  }
  if (owned_uv_io_ != nullptr) raft_uv_close(owned_uv_io_.get());
  if (owned_tcp_ != nullptr) raft_uv_tcp_close(owned_tcp_.get());
}

absl::StatusOr<std::unique_ptr<SegwalRaftIo>> SegwalRaftIo::Create(
    const SegwalRaftIoOptions& options) {
  if (options.loop == nullptr) {
    return absl::InvalidArgumentError("SegwalRaftIoOptions.loop is required");
  }
  absl::StatusOr<std::unique_ptr<SegwalRaftStore>> store =
      SegwalRaftStore::Open(options.store);
  if (!store.ok()) return store.status();
  std::unique_ptr<SegwalRaftIo> self(new SegwalRaftIo(options, std::move(*store)));
  if (options.transport != nullptr) {
    self->transport_ = options.transport;
  } else {
    // raft_uv wants a real directory, whatever Env the store uses.
    const std::string dir = options.transport_dir.empty()
                                ? options.store.dir + "/uv"
                                : options.transport_dir;
    absl::Status s = Env::Default()->CreateDirIfMissing(dir);
    if (!s.ok()) return s;
    self->owned_tcp_ = std::make_unique<raft_uv_transport>();
    std::memset(self->owned_tcp_.get(), 0, sizeof(raft_uv_transport));
    int rv = raft_uv_tcp_init(self->owned_tcp_.get(), options.loop);
    if (rv != 0) {
      self->owned_tcp_.reset();
      return absl::InternalError(absl::StrCat("raft_uv_tcp_init: ", raft_strerror(rv)));
    }
    self->owned_uv_io_ = std::make_unique<raft_io>();
    std::memset(self->owned_uv_io_.get(), 0, sizeof(raft_io));
    rv = raft_uv_init(self->owned_uv_io_.get(), options.loop, dir.c_str(),
                      self->owned_tcp_.get());
    if (rv != 0) {
      const std::string msg = self->owned_uv_io_->errmsg;
      self->owned_uv_io_.reset();
      return absl::InternalError(absl::StrCat("raft_uv_init ", dir, ": ", msg));
    }
    self->transport_ = self->owned_uv_io_.get();
  }
  port::MutexLock l(&registry_mu);
  Registry()[self->transport_] = self.get();
  return self;
}

int SegwalRaftIo::Fail(const absl::Status& status, int code) {
  CopyErrmsg(io_.errmsg, std::string(status.message()).c_str());
  return code;
}

void SegwalRaftIo::RequestSync(uint64_t lsn) {
  port::MutexLock l(&mu_);
  if (lsn > sync_target_) {
    sync_target_ = lsn;
    cv_.Signal();
  }
}

void SegwalRaftIo::FlushSyncRequest() {
  if (unrequested_lsn_ == 0) return;
  const uint64_t lsn = unrequested_lsn_;
  unrequested_lsn_ = 0;
  RequestSync(lsn);
}

void SegwalRaftIo::SyncThreadMain() {
  for (;;) {
    uint64_t target;
    {
      port::MutexLock l(&mu_);
      while (!stop_ && sync_target_ <= synced_through_) cv_.Wait(&mu_);
      if (sync_target_ <= synced_through_) return;  // stopping, nothing owed
      target = sync_target_;
    }
    // Syncs everything appended so far: at least up to target.
    const absl::Status s = store_->Sync();
    const uint64_t durable = store_->durable_lsn();
    {
      port::MutexLock l(&mu_);
      if (!s.ok() && sync_error_.ok()) sync_error_ = s;
      synced_through_ = target;
      if (durable > published_durable_) published_durable_ = durable;
    }
    uv_async_send(&async_);
  }
}

void SegwalRaftIo::StopSyncThread() {
  {
    port::MutexLock l(&mu_);
    stop_ = true;
    cv_.Signal();
  }
  if (sync_thread_.joinable()) sync_thread_.join();
}

void SegwalRaftIo::FireCompletions() {
  uint64_t durable;
  absl::Status error;
  {
    port::MutexLock l(&mu_);
    durable = published_durable_;
    error = sync_error_;
  }
  // Once closing, the sync thread has exited: what is not durable now never
  // will be through this io.
  const bool final_round = closing_;
  while (!completions_.empty()) {
    Completion c = completions_.front();
    int status = 0;
    if (c.kind == Completion::kAppend && c.lsn > durable) {
      if (!error.ok()) {
        status = Fail(error);
      } else if (final_round) {
        status = RAFT_CANCELED;
      } else {
        break;  // later requests wait behind this one
      }
    }
    completions_.pop_front();
    switch (c.kind) {
      case Completion::kAppend: {
        auto* req = static_cast<raft_io_append*>(c.req);
        if (req->cb != nullptr) req->cb(req, status);
        break;
      }
      case Completion::kSnapshotPut: {
        auto* req = static_cast<raft_io_snapshot_put*>(c.req);
        if (req->cb != nullptr) req->cb(req, status);
        break;
      }
      case Completion::kSnapshotGet: {
        auto* req = static_cast<raft_io_snapshot_get*>(c.req);
        req->cb(req, c.snapshot, status);
        break;
      }
    }
  }
}

void SegwalRaftIo::MaybeFinishClose() {
  if (--closes_pending_ > 0) return;
  if (close_cb_ != nullptr) close_cb_(&io_);
}

}  // namespace raftstore
}  // namespace segwal
