// Server (kv/server.h) over a KvStore on a FaultInjectionEnv: what clients see
// when the WAL fails, and what shutdown promises. Clients are plain blocking
// sockets on 127.0.0.1; the server runs its loop on a thread of the test.

#include "kv/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gtest/gtest.h"
#include "kv/resp.h"

namespace segwal {
namespace kv {
namespace {

class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{30, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~Client() { close(fd_); }
  bool connected() const { return connected_; }

  void Send(const std::string& bytes) {
    ASSERT_EQ(write(fd_, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  void SendCommand(const std::vector<std::string>& args) { Send(EncodeCommand(args)); }
  // One line of the reply stream, without "\r\n"; "<eof>" when closed.
  std::string ReadLine() {
    while (true) {
      size_t nl = buf_.find("\r\n");
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        return line;
      }
      char tmp[4096];
      ssize_t n = read(fd_, tmp, sizeof(tmp));
      if (n <= 0) return "<eof>";
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  std::string Command(const std::vector<std::string>& args) {
    SendCommand(args);
    return ReadLine();
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KvStoreOptions options;
    options.dir = "/segkv";
    options.env = &fault_env_;
    options.checkpoint_every_bytes = 0;
    auto store = KvStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    ServerOptions server_options;
    server_options.port = 0;
    server_options.log_protocol_errors = false;
    server_ = std::make_unique<Server>(store_.get(), server_options);
    ASSERT_TRUE(server_->Listen().ok());
    loop_ = std::thread([this] { ASSERT_TRUE(server_->Run().ok()); });
  }
  void TearDown() override {
    if (loop_.joinable()) {
      Client c(server_->port());
      c.SendCommand({"SHUTDOWN"});
      EXPECT_EQ(c.ReadLine(), "<eof>");
      loop_.join();
    }
    server_.reset();
    fault_env_.SetFilesystemActive(true);
    fault_env_.ClearInjectedErrors();
    store_.reset();
  }

  std::unique_ptr<Env> mem_env_ = NewMemEnv();
  FaultInjectionEnv fault_env_{mem_env_.get()};
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<Server> server_;
  std::thread loop_;
};

TEST_F(ServerTest, WriteIsAcknowledgedOnceDurable) {
  Client c(server_->port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Command({"SET", "k", "v"}), "+OK");
  EXPECT_GE(store_->durable_lsn(), 1u);
  EXPECT_EQ(c.Command({"GET", "k"}), "$1");
  EXPECT_EQ(c.ReadLine(), "v");
}

TEST_F(ServerTest, FailedSyncTurnsWaitingRepliesIntoErrorsAndKeepsDurableReads) {
  Client c(server_->port());
  ASSERT_EQ(c.Command({"SET", "durable", "1"}), "+OK");
  // Every later fsync fails: the next write is appended but never durable.
  fault_env_.InjectError(kOpSync, absl::DataLossError("injected fsync failure"), "",
                         0, -1);
  const std::string set_reply = c.Command({"SET", "lost", "2"});
  EXPECT_EQ(set_reply.rfind("-ERR segkv: the WAL failed", 0), 0u) << set_reply;
  EXPECT_NE(set_reply.find("injected fsync failure"), std::string::npos) << set_reply;
  // Durable data is still served; data that was never durable is not.
  EXPECT_EQ(c.Command({"GET", "durable"}), "$1");
  EXPECT_EQ(c.ReadLine(), "1");
  const std::string get_lost = c.Command({"GET", "lost"});
  EXPECT_EQ(get_lost.rfind("-ERR segkv: the WAL failed", 0), 0u) << get_lost;
  // Later writes are refused, naming the cause; the server stays up.
  const std::string later = c.Command({"INCR", "n"});
  EXPECT_EQ(later.rfind("-ERR", 0), 0u) << later;
  EXPECT_EQ(c.Command({"PING"}), "+PONG");
  Client other(server_->port());
  EXPECT_EQ(other.Command({"EXISTS", "durable"}), ":1");
}

TEST_F(ServerTest, ShutdownSendsEveryInFlightReplyFirst) {
  Client c(server_->port());
  std::string batch;
  for (int i = 0; i < 200; ++i) {
    batch += EncodeCommand({"SET", "k" + std::to_string(i), "v"});
  }
  batch += EncodeCommand({"SHUTDOWN"});
  c.Send(batch);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(c.ReadLine(), "+OK") << i;
  EXPECT_EQ(c.ReadLine(), "<eof>");
  loop_.join();
  EXPECT_EQ(store_->DbSize().integer, 200);
  EXPECT_GE(store_->durable_lsn(), 200u);
}

TEST_F(ServerTest, ProtocolErrorClosesOnlyThatConnection) {
  Client bad(server_->port());
  Client good(server_->port());
  bad.Send("*1\r\n$4\r\nPING\r\n*1\r\n$-3\r\n");
  EXPECT_EQ(bad.ReadLine(), "+PONG");  // the reply before the error still comes
  EXPECT_EQ(bad.ReadLine(), "-ERR Protocol error: invalid bulk length");
  EXPECT_EQ(bad.ReadLine(), "<eof>");
  EXPECT_EQ(good.Command({"SET", "a", "b"}), "+OK");
}

TEST_F(ServerTest, RepliesKeepCommandOrderAcrossReadsAndWrites) {
  Client c(server_->port());
  std::string batch;
  for (int i = 0; i < 50; ++i) {
    batch += EncodeCommand({"INCR", "n"});
    batch += EncodeCommand({"PING"});
    batch += EncodeCommand({"GET", "n"});
  }
  c.Send(batch);
  for (int i = 1; i <= 50; ++i) {
    ASSERT_EQ(c.ReadLine(), ":" + std::to_string(i));
    ASSERT_EQ(c.ReadLine(), "+PONG");
    ASSERT_EQ(c.ReadLine(), "$" + std::to_string(std::to_string(i).size()));
    ASSERT_EQ(c.ReadLine(), std::to_string(i));
  }
}

// ---- Cluster mode's contract with the server: a CommandHandler whose
// replies are completed later (kv/commands.h, DeferredReply).

// DEFER x: a reply completed by a later RELEASE (as "+x"). NOW x: "+x" at
// once. RELEASE: completes every deferred reply, newest first, and answers
// "+released". SHUTDOWN: the server shuts down. Keeps a timer on the loop
// until Shutdown closes it, as the raft instance would.
class DeferringHandler : public CommandHandler {
 public:
  explicit DeferringHandler(uv_loop_t* loop) {
    uv_timer_init(loop, &timer_);
    uv_timer_start(&timer_, [](uv_timer_t*) {}, 1000000, 1000000);
  }
  CommandReply Execute(const std::vector<std::string>& args) override {
    CommandReply r;
    if (args[0] == "DEFER") {
      r.deferred = std::make_shared<DeferredReply>();
      waiting_.emplace_back(r.deferred, args[1]);
    } else if (args[0] == "NOW") {
      r.bytes = "+" + args[1] + "\r\n";
    } else if (args[0] == "RELEASE") {
      for (auto it = waiting_.rbegin(); it != waiting_.rend(); ++it) {
        it->first->Complete("+" + it->second + "\r\n");
      }
      waiting_.clear();
      r.bytes = "+released\r\n";
    } else if (args[0] == "SHUTDOWN") {
      r.after = AfterReply::kShutdown;
    } else {
      r.bytes = "-ERR unknown\r\n";
    }
    return r;
  }
  void Shutdown() override {
    ++shutdown_calls;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  }
  int shutdown_calls = 0;  // read after Run returned

 private:
  uv_timer_t timer_;
  std::vector<std::pair<std::shared_ptr<DeferredReply>, std::string>> waiting_;
};

TEST(DeferredRepliesTest, LeaveInCommandOrderWhateverOrderTheyComplete) {
  ServerOptions options;
  options.port = 0;
  // The handler needs the server's loop; the server needs the handler: the
  // handler is built on the loop before Run, as segkv_server_main does.
  struct Holder {
    std::unique_ptr<DeferringHandler> handler;
  } holder;
  class Forward : public CommandHandler {
   public:
    explicit Forward(Holder* h) : h_(h) {}
    CommandReply Execute(const std::vector<std::string>& args) override {
      return h_->handler->Execute(args);
    }
    void Shutdown() override { h_->handler->Shutdown(); }

   private:
    Holder* h_;
  } forward(&holder);
  auto server = std::make_unique<Server>(&forward, options);
  holder.handler = std::make_unique<DeferringHandler>(server->loop());
  ASSERT_TRUE(server->Listen().ok());
  std::thread loop([&] { ASSERT_TRUE(server->Run().ok()); });

  Client a(server->port());
  Client b(server->port());
  auto gone = std::make_unique<Client>(server->port());
  ASSERT_TRUE(a.connected() && b.connected() && gone->connected());
  a.Send(EncodeCommand({"DEFER", "one"}) + EncodeCommand({"NOW", "two"}) +
         EncodeCommand({"DEFER", "three"}) + EncodeCommand({"NOW", "four"}));
  gone->SendCommand({"DEFER", "never read"});
  // b's immediate reply is not held back by a's deferred ones.
  EXPECT_EQ(b.Command({"NOW", "b"}), "+b");
  // A client that goes away while its reply is deferred: the reply completes
  // later, into a connection the client closed (ASan watches).
  EXPECT_EQ(b.Command({"NOW", "sync"}), "+sync");  // the server has read gone's DEFER
  gone.reset();
  // Completed newest first; a still sees its replies in command order.
  EXPECT_EQ(b.Command({"RELEASE"}), "+released");
  EXPECT_EQ(a.ReadLine(), "+one");
  EXPECT_EQ(a.ReadLine(), "+two");
  EXPECT_EQ(a.ReadLine(), "+three");
  EXPECT_EQ(a.ReadLine(), "+four");
  // SHUTDOWN: Run returns only once the handler closed its handles.
  b.SendCommand({"SHUTDOWN"});
  loop.join();
  EXPECT_EQ(holder.handler->shutdown_calls, 1);
  server.reset();
}

}  // namespace
}  // namespace kv
}  // namespace segwal
