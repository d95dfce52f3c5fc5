// Server (kv/server.h): connections, the reply queues, the syncer thread and
// shutdown.

#include "kv/server.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace segwal {
namespace kv {

using port::MutexLock;

namespace {

// A reply waiting for durability (or for the replies before it).
struct PendingReply {
  uint64_t lsn = 0;
  std::string bytes;
  std::shared_ptr<DeferredReply> deferred;  // cluster mode: sent once done
};

}  // namespace

// One client. Loop thread only. Deleted by OnConnectionClosed, after every
// write callback of its handle has run.
struct Server::Connection {
  Connection(Server* s, const RespLimits& limits) : server(s), parser(limits) {
    tcp.data = this;
  }

  uv_tcp_t tcp;
  Server* const server;
  RespParser parser;
  std::deque<PendingReply> pending;  // in command order
  size_t pending_bytes = 0;
  size_t writes_in_flight = 0;
  size_t bytes_in_flight = 0;
  bool reading = false;    // uv_read_start is in effect
  bool read_done = false;  // read no more: EOF, protocol error, QUIT, shutdown
  bool closing = false;    // uv_close called
  Connection* prev = nullptr;
  Connection* next = nullptr;
};

namespace {

struct WriteRequest {
  uv_write_t req;
  std::string data;
  Server::Connection* conn;
};

}  // namespace

Server::Server(KvStore* store, const ServerOptions& options)
    : Server(store, nullptr, options) {}

Server::Server(CommandHandler* handler, const ServerOptions& options)
    : Server(nullptr, handler, options) {}

Server::Server(KvStore* store, CommandHandler* handler, const ServerOptions& options)
    : store_(store), handler_(handler), options_(options), executor_(store, &counters_) {
  counters_.bind = options.bind;
  counters_.port = options.port;
  counters_.start_unix_micros = absl::ToUnixMicros(absl::Now());
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &durable_async_, OnDurable);
  durable_async_.data = this;
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  sigterm_.data = sigint_.data = this;
  uv_timer_init(&loop_, &shutdown_timer_);
  shutdown_timer_.data = this;
  uv_tcp_init(&loop_, &listener_);
  listener_.data = this;
  if (store_ == nullptr) return;  // cluster mode: nothing to sync
  const uint64_t durable = store_->durable_lsn();
  durable_lsn_ = requested_lsn_ = durable;
  MutexLock l(&mu_);
  sync_target_ = synced_lsn_ = durable;
}

Server::~Server() {
  {
    MutexLock l(&mu_);
    stop_syncer_ = true;
  }
  syncer_cv_.SignalAll();
  if (syncer_.joinable()) syncer_.join();
  // Close whatever Run did not (Run never called, or it failed), then let
  // the loop run the close callbacks.
  finished_ = true;
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  for (Connection* c = connections_; c != nullptr;) {
    Connection* next = c->next;
    delete c;
    c = next;
  }
  uv_loop_close(&loop_);
}

absl::Status Server::Listen() {
  int rc;
  struct sockaddr_storage addr;
  if (options_.bind.find(':') != std::string::npos) {
    rc = uv_ip6_addr(options_.bind.c_str(), options_.port,
                     reinterpret_cast<sockaddr_in6*>(&addr));
  } else {
    rc = uv_ip4_addr(options_.bind.c_str(), options_.port,
                     reinterpret_cast<sockaddr_in*>(&addr));
  }
  if (rc == 0) rc = uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 511, OnConnection);
  }
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options_.bind, ":", options_.port, ": ",
        uv_strerror(rc)));
  }
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  if (uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    counters_.port = ntohs(bound.ss_family == AF_INET6
                               ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  listening_ = true;
  return absl::OkStatus();
}

absl::Status Server::Run() {
  if (!listening_) return absl::FailedPreconditionError("Run before Listen");
  uv_signal_start(&sigterm_, OnSignal, SIGTERM);
  uv_signal_start(&sigint_, OnSignal, SIGINT);
  if (store_ != nullptr) syncer_ = std::thread([this] { SyncerLoop(); });
  uv_run(&loop_, UV_RUN_DEFAULT);
  return absl::OkStatus();
}

// ---------------------------------------------------------------- connections

void Server::OnConnection(uv_stream_t* listener, int status) {
  Server* s = static_cast<Server*>(listener->data);
  if (status < 0 || s->shutting_down_) return;
  Connection* c = new Connection(s, s->options_.limits);
  uv_tcp_init(&s->loop_, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), [](uv_handle_t* h) {
      delete static_cast<Connection*>(h->data);
    });
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->next = s->connections_;
  if (s->connections_ != nullptr) s->connections_->prev = c;
  s->connections_ = c;
  s->counters_.connected_clients++;
  s->counters_.total_connections_received++;
  s->Flush(c);  // starts reading
}

void Server::OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  Server* s = static_cast<Connection*>(handle->data)->server;
  *buf = uv_buf_init(s->read_buffer_, sizeof(s->read_buffer_));
}

void Server::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  Connection* c = static_cast<Connection*>(stream->data);
  Server* s = c->server;
  if (nread > 0) {
    c->parser.Feed(absl::string_view(buf->base, static_cast<size_t>(nread)));
    s->ProcessInput(c);
  } else if (nread == UV_EOF) {
    // The client sent all it will; answer what it asked, then close.
    c->read_done = true;
    s->Flush(c);
  } else if (nread < 0) {
    s->CloseConnection(c);
  }
}

void Server::ProcessInput(Connection* conn) {
  std::vector<std::string> args;
  uint64_t max_lsn = 0;
  while (!conn->read_done) {
    const RespParser::Result r = conn->parser.Next(&args);
    if (r == RespParser::Result::kNeedMore) break;
    PendingReply reply;
    if (r == RespParser::Result::kError) {
      counters_.rejected_protocol_errors++;
      if (options_.log_protocol_errors) {
        fprintf(stderr, "segkv_server: closing a connection: %s\n",
                conn->parser.error().c_str());
      }
      AppendError(&reply.bytes, conn->parser.error());
      conn->read_done = true;  // closed once this error is sent
    } else {
      counters_.total_commands_processed++;
      CommandReply cr =
          handler_ != nullptr ? handler_->Execute(args) : executor_.Execute(args);
      if (cr.after == AfterReply::kShutdown) {
        conn->read_done = true;
        BeginShutdown();
        break;
      }
      if (cr.after == AfterReply::kClose) conn->read_done = true;
      reply.lsn = cr.lsn;
      reply.bytes = std::move(cr.bytes);
      if (cr.deferred != nullptr && !cr.deferred->done) {
        cr.deferred->on_done = [this, conn] { Flush(conn); };
        reply.deferred = std::move(cr.deferred);
      } else if (cr.deferred != nullptr) {
        reply.bytes = std::move(cr.deferred->bytes);
      }
    }
    max_lsn = std::max(max_lsn, reply.lsn);
    conn->pending_bytes += reply.bytes.size();
    conn->pending.push_back(std::move(reply));
    counters_.replies_queued++;
  }
  if (max_lsn > durable_lsn_ && failure_.empty()) RequestSync(max_lsn);
  Flush(conn);
}

void Server::Flush(Connection* conn) {
  if (conn->closing) return;
  std::string out;
  while (!conn->pending.empty()) {
    PendingReply& p = conn->pending.front();
    if (p.deferred != nullptr) {
      if (!p.deferred->done) break;
      p.bytes = std::move(p.deferred->bytes);
      p.deferred->on_done = nullptr;
      p.deferred.reset();
    }
    if (p.lsn > durable_lsn_) {
      if (failure_.empty()) break;
      // It will never be durable: the WAL failed before reaching it.
      p.bytes.clear();
      AppendError(&p.bytes, WalFailureError(failure_));
    }
    conn->pending_bytes -= std::min(conn->pending_bytes, p.bytes.size());
    counters_.replies_queued--;
    if (out.empty()) {
      out = std::move(p.bytes);
    } else {
      out.append(p.bytes);
    }
    conn->pending.pop_front();
  }
  if (!out.empty()) {
    WriteRequest* w = new WriteRequest;
    w->data = std::move(out);
    w->conn = conn;
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    const int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&conn->tcp),
                            &buf, 1, OnWrite);
    if (rc != 0) {
      delete w;
      CloseConnection(conn);
      return;
    }
    conn->writes_in_flight++;
    conn->bytes_in_flight += w->data.size();
  }
  const bool over =
      conn->pending.size() >= options_.max_pending_replies ||
      conn->pending_bytes + conn->bytes_in_flight >= options_.max_pending_bytes;
  if ((conn->read_done || over) && conn->reading) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&conn->tcp));
    conn->reading = false;
  } else if (!conn->read_done && !over && !conn->reading) {
    uv_read_start(reinterpret_cast<uv_stream_t*>(&conn->tcp), OnAlloc, OnRead);
    conn->reading = true;
  }
  MaybeClose(conn);
}

void Server::OnWrite(uv_write_t* req, int status) {
  WriteRequest* w = static_cast<WriteRequest*>(req->data);
  Connection* c = w->conn;
  c->writes_in_flight--;
  c->bytes_in_flight -= w->data.size();
  delete w;
  if (c->closing) return;
  if (status < 0) {
    c->server->CloseConnection(c);
    return;
  }
  c->server->Flush(c);  // may resume reading, or close a finished connection
}

void Server::MaybeClose(Connection* conn) {
  if (conn->read_done && conn->pending.empty() && conn->writes_in_flight == 0) {
    CloseConnection(conn);
  }
}

void Server::CloseConnection(Connection* conn) {
  if (conn->closing) return;
  conn->closing = true;
  if (conn->reading) uv_read_stop(reinterpret_cast<uv_stream_t*>(&conn->tcp));
  conn->reading = false;
  if (conn->prev != nullptr) conn->prev->next = conn->next;
  if (conn->next != nullptr) conn->next->prev = conn->prev;
  if (connections_ == conn) connections_ = conn->next;
  conn->prev = conn->next = nullptr;
  counters_.connected_clients--;
  counters_.replies_queued -= conn->pending.size();
  for (PendingReply& p : conn->pending) {
    if (p.deferred != nullptr) p.deferred->on_done = nullptr;  // conn goes away
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&conn->tcp), OnConnectionClosed);
}

void Server::OnConnectionClosed(uv_handle_t* handle) {
  Connection* c = static_cast<Connection*>(handle->data);
  Server* s = c->server;
  delete c;
  s->MaybeFinishShutdown();
}

// ---------------------------------------------------------------- durability

void Server::RequestSync(uint64_t lsn) {
  if (lsn <= requested_lsn_) return;
  requested_lsn_ = lsn;
  bool wake;
  {
    MutexLock l(&mu_);
    sync_target_ = std::max(sync_target_, lsn);
    // Only when the syncer waits for this much: waking it for every batch of
    // requests during its group-commit wait costs a futex call and a context
    // switch each, on a machine whose cores the clients share.
    wake = sync_target_ >= syncer_wake_at_;
  }
  if (wake) syncer_cv_.Signal();
}

void Server::SyncerLoop() {
  uint64_t released = 0;  // records the last sync made durable
  auto last_sync = std::chrono::microseconds(0);
  const auto max_wait = std::chrono::microseconds(options_.group_commit_wait_micros);
  while (true) {
    uint64_t target, before;
    {
      MutexLock l(&mu_);
      syncer_wake_at_ = synced_lsn_ + 1;
      while (!stop_syncer_ &&
             (sync_target_ <= synced_lsn_ || !sync_failure_.empty())) {
        syncer_cv_.Wait(&mu_);
      }
      if (stop_syncer_) return;
      if (released > 1 && max_wait.count() > 0) {
        const auto deadline =
            std::chrono::steady_clock::now() + std::min(max_wait, last_sync);
        // Those already waiting (they arrived during the last sync) plus the
        // ones it released: one fsync for both groups, so they merge instead
        // of alternating.
        const uint64_t want = (sync_target_ - synced_lsn_) + released;
        syncer_wake_at_ = synced_lsn_ + want;
        while (!stop_syncer_ && sync_target_ - synced_lsn_ < want) {
          const auto now = std::chrono::steady_clock::now();
          if (now >= deadline) break;
          syncer_cv_.WaitFor(&mu_, std::chrono::duration_cast<std::chrono::microseconds>(
                                       deadline - now));
        }
      }
      target = sync_target_;
      before = synced_lsn_;
      syncer_wake_at_ = UINT64_MAX;  // busy syncing: it looks again after
    }
    // One group commit: covers every record appended before it, whoever
    // appended it.
    const auto t0 = std::chrono::steady_clock::now();
    const absl::Status s = store_->WaitDurable(target);
    last_sync = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - t0);
    released = target - before;
    {
      MutexLock l(&mu_);
      if (s.ok()) {
        synced_lsn_ = std::max(synced_lsn_, target);
      } else {
        sync_failure_ = s.ToString();
      }
    }
    uv_async_send(&durable_async_);
  }
}

void Server::OnDurable(uv_async_t* async) {
  Server* s = static_cast<Server*>(async->data);
  {
    MutexLock l(&s->mu_);
    s->durable_lsn_ = std::max(s->durable_lsn_, s->synced_lsn_);
    if (s->failure_.empty() && !s->sync_failure_.empty()) {
      s->failure_ = s->sync_failure_;
    }
  }
  if (!s->failure_.empty() && s->counters_.sync_failure.empty()) {
    s->counters_.sync_failure = s->failure_;
    fprintf(stderr,
            "segkv_server: the WAL failed; refusing writes until restart: %s\n",
            s->failure_.c_str());
  }
  s->counters_.durable_lsn_seen = s->durable_lsn_;
  for (Connection* c = s->connections_; c != nullptr;) {
    Connection* next = c->next;  // Flush may close (unlink) c
    s->Flush(c);
    c = next;
  }
  s->MaybeFinishShutdown();
}

// ---------------------------------------------------------------- shutdown

void Server::OnSignal(uv_signal_t* handle, int signum) {
  Server* s = static_cast<Server*>(handle->data);
  fprintf(stderr, "segkv_server: signal %d, shutting down\n", signum);
  s->BeginShutdown();
}

void Server::BeginShutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  if (listening_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    listening_ = false;
  }
  uv_timer_start(&shutdown_timer_, OnShutdownTimer,
                 static_cast<uint64_t>(absl::ToInt64Milliseconds(options_.shutdown_grace)),
                 0);
  for (Connection* c = connections_; c != nullptr;) {
    Connection* next = c->next;
    c->read_done = true;
    Flush(c);  // stops reading; closes it if nothing is left to send
    c = next;
  }
  MaybeFinishShutdown();
}

void Server::OnShutdownTimer(uv_timer_t* timer) {
  Server* s = static_cast<Server*>(timer->data);
  fprintf(stderr,
          "segkv_server: shutdown grace period over; closing %llu connection(s) "
          "with replies not sent\n",
          static_cast<unsigned long long>(s->counters_.connected_clients));
  for (Connection* c = s->connections_; c != nullptr;) {
    Connection* next = c->next;
    s->CloseConnection(c);
    c = next;
  }
}

void Server::MaybeFinishShutdown() {
  if (!shutting_down_ || finished_ || connections_ != nullptr) return;
  finished_ = true;
  if (handler_ != nullptr && !handler_shut_down_) {
    handler_shut_down_ = true;
    handler_->Shutdown();
  }
  {
    MutexLock l(&mu_);
    stop_syncer_ = true;
  }
  syncer_cv_.SignalAll();
  if (syncer_.joinable()) syncer_.join();
  uv_timer_stop(&shutdown_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&shutdown_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&durable_async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  // uv_run returns once these close callbacks have run.
}

}  // namespace kv
}  // namespace segwal
