// SegwalRaftIo under real libraft: clusters over 127.0.0.1 TCP in one process,
// one libuv loop, stores on the POSIX file system.
//
// This pins undocumented libraft 0.15 behaviour the io depends on: raft_uv
// hands its own raft_io to the tick and receive callbacks, and libraft reads
// the raft instance from that io's `data` (SegwalRaftIo copies it before
// starting the inner io). If that changed, no tick would reach raft: no
// election, and these tests fail (or crash on a null raft).

#include "raft/segwal_raft_io.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"

namespace segwal {
namespace raftstore {
namespace {

// A free TCP port on 127.0.0.1 (the kernel's pick; released before use).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// An FSM that records the commands it applies.
struct RecordingFsm {
  raft_fsm fsm{};
  std::vector<std::string> applied;

  RecordingFsm() {
    fsm.version = 1;
    fsm.data = this;
    fsm.apply = &Apply;
    fsm.snapshot = &Snapshot;
    fsm.restore = &Restore;
  }
  static int Apply(raft_fsm* f, const raft_buffer* buf, void** result) {
    static_cast<RecordingFsm*>(f->data)->applied.emplace_back(
        static_cast<const char*>(buf->base), buf->len);
    *result = nullptr;
    return 0;
  }
  static int Snapshot(raft_fsm* f, raft_buffer* bufs[], unsigned* n) {
    auto* self = static_cast<RecordingFsm*>(f->data);
    std::string all;
    for (const std::string& a : self->applied) absl::StrAppend(&all, a, "\n");
    *bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
    (*bufs)[0].base = raft_malloc(all.size() + 1);
    std::memcpy((*bufs)[0].base, all.data(), all.size());
    (*bufs)[0].len = all.size();
    *n = 1;
    return 0;
  }
  static int Restore(raft_fsm* f, raft_buffer* buf) {
    auto* self = static_cast<RecordingFsm*>(f->data);
    self->applied.clear();
    std::string all(static_cast<const char*>(buf->base), buf->len);
    size_t pos = 0;
    while (pos < all.size()) {
      size_t nl = all.find('\n', pos);
      self->applied.push_back(all.substr(pos, nl - pos));
      pos = nl + 1;
    }
    raft_free(buf->base);
    return 0;
  }
};

struct Node {
  raft_id id = 0;
  std::string address;
  std::string dir;
  std::unique_ptr<SegwalRaftIo> io;
  raft r{};
  RecordingFsm fsm;
  bool closed = false;
};

class SegwalRaftIoTcpTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    for (auto& n : nodes_) {
      if (n->io != nullptr) CloseNode(n.get());
    }
    RunUntil([&] { return AllClosed(); }, 10000);
    nodes_.clear();
    // Every handle (timers, sockets, async) is closed: the loop closes.
    uv_run(&loop_, UV_RUN_NOWAIT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  void MakeNodes(int n) {
    for (int i = 0; i < n; ++i) {
      auto node = std::make_unique<Node>();
      node->id = i + 1;
      node->address = absl::StrCat("127.0.0.1:", FreePort());
      node->dir = tmp_.Join(absl::StrCat("node", i + 1));
      nodes_.push_back(std::move(node));
    }
  }

  // Creates the io and the raft instance of a node (its store reopens).
  void StartIo(Node* n) {
    SegwalRaftIoOptions o;
    o.store.dir = n->dir;
    o.loop = &loop_;
    auto io = NewSegwalRaftIo(o);
    ASSERT_OK(io.status());
    n->io = std::move(*io);
    n->closed = false;
    n->r = raft{};
    n->fsm.applied.clear();
    ASSERT_EQ(raft_init(&n->r, n->io->io(), &n->fsm.fsm, n->id, n->address.c_str()), 0);
    n->r.data = n;
    raft_set_election_timeout(&n->r, 300);
    raft_set_heartbeat_timeout(&n->r, 50);
    raft_set_snapshot_threshold(&n->r, 1000000);
  }

  raft_configuration Configuration() {
    raft_configuration conf;
    raft_configuration_init(&conf);
    for (auto& n : nodes_) {
      EXPECT_EQ(raft_configuration_add(&conf, n->id, n->address.c_str(), RAFT_VOTER), 0);
    }
    return conf;
  }

  void CloseNode(Node* n) {
    raft_close(&n->r, [](raft* r) { static_cast<Node*>(r->data)->closed = true; });
  }
  bool AllClosed() {
    for (auto& n : nodes_) {
      if (n->io != nullptr && !n->closed) return false;
    }
    return true;
  }

  // Runs the loop until `done` or the deadline; false on timeout.
  bool RunUntil(const std::function<bool()>& done, int max_ms) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
  }

  Node* Leader() {
    for (auto& n : nodes_) {
      if (n->io != nullptr && raft_state(&n->r) == RAFT_LEADER) return n.get();
    }
    return nullptr;
  }

  // Applies `commands` through the leader; true once every callback said 0.
  bool ApplyAll(const std::vector<std::string>& commands) {
    struct Req {
      struct raft_apply apply{};
      int status = -1;
    };
    Node* leader = nullptr;
    if (!RunUntil([&] { return (leader = Leader()) != nullptr; }, 30000)) return false;
    std::vector<std::unique_ptr<Req>> reqs;
    for (const std::string& c : commands) {
      auto req = std::make_unique<Req>();
      req->apply.data = req.get();
      raft_buffer buf;
      buf.len = c.size();
      buf.base = raft_malloc(c.size() + 1);
      std::memcpy(buf.base, c.data(), c.size());
      int rv = raft_apply(&leader->r, &req->apply, &buf, 1,
                          [](struct raft_apply* a, int status, void*) {
                            static_cast<Req*>(a->data)->status = status;
                          });
      EXPECT_EQ(rv, 0) << raft_errmsg(&leader->r);
      if (rv != 0) return false;
      reqs.push_back(std::move(req));
    }
    bool done = RunUntil(
        [&] {
          for (auto& r : reqs) {
            if (r->status == -1) return false;
          }
          return true;
        },
        30000);
    for (auto& r : reqs) EXPECT_EQ(r->status, 0);
    return done;
  }

  bool AllApplied(const std::vector<std::string>& commands) {
    for (auto& n : nodes_) {
      if (n->fsm.applied.size() < commands.size()) return false;
    }
    return true;
  }

  testutil::TempDir tmp_;
  uv_loop_t loop_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(SegwalRaftIoTcpTest, ThreeNodesElectApplyAndRestartFromTheSameDirs) {
  MakeNodes(3);
  raft_configuration conf = Configuration();
  for (auto& n : nodes_) {
    StartIo(n.get());
    ASSERT_EQ(raft_bootstrap(&n->r, &conf), 0) << raft_errmsg(&n->r);
  }
  for (auto& n : nodes_) ASSERT_EQ(raft_start(&n->r), 0) << raft_errmsg(&n->r);
  // Sizes are multiples of 8: libraft 0.15's TCP transport sends entry data
  // unpadded while its decoder skips padding to 8 bytes, so a batch of
  // odd-sized entries reaches followers garbled (the same rule #305 later
  // enforced in raft_uv's append). That is the transport's limit, not the
  // store's: SingleNodeSelfElectsAndKeepsEntriesAcrossRestart and
  // SegwalRaftStoreTest.OddSizedEntriesSurviveReopen use odd sizes.
  const std::vector<std::string> first = {"aaaaaaaa", "0123456789abcdef",
                                          std::string(24, 'x'), "zzzzzzzz"};
  ASSERT_TRUE(ApplyAll(first));
  ASSERT_TRUE(RunUntil([&] { return AllApplied(first); }, 30000));
  for (auto& n : nodes_) EXPECT_EQ(n->fsm.applied, first);

  for (auto& n : nodes_) CloseNode(n.get());
  ASSERT_TRUE(RunUntil([&] { return AllClosed(); }, 10000));
  for (auto& n : nodes_) n->io.reset();

  // Restart from the same directories: no bootstrap, the log is loaded.
  for (auto& n : nodes_) {
    StartIo(n.get());
    EXPECT_EQ(raft_bootstrap(&n->r, &conf), RAFT_CANTBOOTSTRAP);
    absl::StatusOr<LoadedRaftLog> log = n->io->store()->Load();
    ASSERT_OK(log.status());
    std::vector<std::string> commands;
    for (const RaftEntry& e : log->entries) {
      if (e.type == RAFT_COMMAND) commands.push_back(e.data);
    }
    EXPECT_EQ(commands, first) << "node " << n->id;
    EXPECT_GE(log->term, 2u);
  }
  raft_configuration_close(&conf);
  for (auto& n : nodes_) ASSERT_EQ(raft_start(&n->r), 0) << raft_errmsg(&n->r);
  const std::vector<std::string> second = {"restart!"};
  ASSERT_TRUE(ApplyAll(second));
  std::vector<std::string> all = first;
  all.push_back(second[0]);
  ASSERT_TRUE(RunUntil([&] { return AllApplied(all); }, 30000));
  for (auto& n : nodes_) EXPECT_EQ(n->fsm.applied, all) << "node " << n->id;
}

TEST_F(SegwalRaftIoTcpTest, SingleNodeSelfElectsAndKeepsEntriesAcrossRestart) {
  MakeNodes(1);
  raft_configuration conf = Configuration();
  StartIo(nodes_[0].get());
  ASSERT_EQ(raft_bootstrap(&nodes_[0]->r, &conf), 0);
  raft_configuration_close(&conf);
  ASSERT_EQ(raft_start(&nodes_[0]->r), 0);
  std::vector<std::string> commands;
  // Odd sizes: no transport is involved with one node, and the store keeps
  // any size (canonical/raft #304 lost such entries in raft_uv at restart).
  for (int i = 0; i < 50; ++i) commands.push_back(std::string(i % 13 + 1, 'a' + i % 26));
  ASSERT_TRUE(ApplyAll(commands));
  CloseNode(nodes_[0].get());
  ASSERT_TRUE(RunUntil([&] { return AllClosed(); }, 10000));
  nodes_[0]->io.reset();

  StartIo(nodes_[0].get());
  ASSERT_EQ(raft_start(&nodes_[0]->r), 0);
  ASSERT_TRUE(RunUntil([&] { return AllApplied(commands); }, 30000));
  EXPECT_EQ(nodes_[0]->fsm.applied, commands);
}


// ---- The storage methods alone, over FaultInjectionEnv, with a transport
// that does nothing (no network): errors, order of callbacks, load. ----

std::map<raft_io*, raft_io_recv_cb>& StubStarted() {
  static auto* started = new std::map<raft_io*, raft_io_recv_cb>;
  return *started;
}

raft_io* NewStubTransport() {
  auto* io = new raft_io{};
  io->version = 1;
  io->init = [](raft_io*, raft_id, const char*) { return 0; };
  io->close = [](raft_io* self, raft_io_close_cb cb) {
    if (cb != nullptr) cb(self);
  };
  io->time = [](raft_io*) -> raft_time { return 0; };
  io->random = [](raft_io*, int min, int) { return min; };
  // start keeps the receive callback it is given (the io's own, with the
  // commit guard on), so a test can deliver messages; send drops them.
  io->start = [](raft_io* self, unsigned, raft_io_tick_cb, raft_io_recv_cb recv) {
    StubStarted()[self] = recv;
    return 0;
  };
  io->send = [](raft_io*, raft_io_send*, const raft_message*, raft_io_send_cb) {
    return 0;
  };
  return io;
}

class SegwalRaftIoStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    SegwalRaftIoOptions o;
    o.store.dir = "/raft";
    o.store.env = &fi_;
    o.store.wal.segment_target_size = 4096;  // no 64 MiB spare to zero-fill
    o.store.wal.background_sealing = false;
    o.store.wal.background_preallocation = false;
    o.loop = &loop_;
    o.transport = transport_.get();
    auto io = NewSegwalRaftIo(o);
    ASSERT_OK(io.status());
    io_ = std::move(*io);
    rio_ = io_->io();
    ASSERT_EQ(rio_->init(rio_, 1, "1"), 0);
  }
  void TearDown() override {
    bool closed = false;
    rio_->data = &closed;
    rio_->close(rio_, [](raft_io* r) { *static_cast<bool*>(r->data) = true; });
    while (!closed) uv_run(&loop_, UV_RUN_ONCE);
    io_.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  struct Append {
    raft_io_append req{};
    std::string data;
    raft_entry entry{};
    int status = -1;
    int order = -1;
  };
  // Submits one entry of `data`; `order` records when its callback ran.
  std::unique_ptr<Append> SubmitAppend(std::string data, int* fired,
                                       raft_term term = 1) {
    auto a = std::make_unique<Append>();
    a->data = std::move(data);
    a->entry.term = term;
    a->entry.type = RAFT_COMMAND;
    a->entry.buf.base = a->data.data();
    a->entry.buf.len = a->data.size();
    a->req.data = a.get();
    fired_ = fired;
    int rv = rio_->append(rio_, &a->req, &a->entry, 1, [](raft_io_append* r, int status) {
      auto* self = static_cast<Append*>(r->data);
      self->status = status;
      self->order = (*fired_)++;
    });
    EXPECT_EQ(rv, 0) << rio_->errmsg;
    return a;
  }
  void Bootstrap() {
    raft_configuration conf;
    raft_configuration_init(&conf);
    raft_configuration_add(&conf, 1, "1", RAFT_VOTER);
    ASSERT_EQ(rio_->bootstrap(rio_, &conf), 0) << rio_->errmsg;
    EXPECT_EQ(rio_->bootstrap(rio_, &conf), RAFT_CANTBOOTSTRAP);
    raft_configuration_close(&conf);
  }

  static int* fired_;
  std::unique_ptr<Env> mem_ = NewMemEnv();
  FaultInjectionEnv fi_{mem_.get()};
  std::unique_ptr<raft_io> transport_{NewStubTransport()};
  uv_loop_t loop_;
  std::unique_ptr<SegwalRaftIo> io_;
  raft_io* rio_ = nullptr;
};
int* SegwalRaftIoStorageTest::fired_ = nullptr;

TEST_F(SegwalRaftIoStorageTest, AppendCallbacksFireInOrderOnceDurable) {
  Bootstrap();
  int fired = 0;
  std::vector<std::unique_ptr<Append>> appends;
  for (int i = 0; i < 20; ++i) appends.push_back(SubmitAppend(std::string(i, 'x'), &fired));
  EXPECT_EQ(fired, 0);  // never inside the call
  while (fired < 20) uv_run(&loop_, UV_RUN_ONCE);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(appends[i]->status, 0);
    EXPECT_EQ(appends[i]->order, i);
  }
  EXPECT_GE(io_->store()->durable_lsn(), io_->store()->wal()->next_lsn() - 1);
}

// Appends made while the loop handles one batch of messages share a sync:
// nothing is handed to the sync thread before the loop next polls, however
// long the caller waits, and then one fsync covers them all.
TEST_F(SegwalRaftIoStorageTest, AppendsOfOneLoopIterationShareOneSync) {
  Bootstrap();
  int fired = 0;
  const uint64_t syncs_before = io_->store()->wal()->GetStats().syncs;
  const uint64_t durable_before = io_->store()->durable_lsn();
  std::vector<std::unique_ptr<Append>> appends;
  for (int i = 0; i < 5; ++i) appends.push_back(SubmitAppend("batched", &fired));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(io_->store()->durable_lsn(), durable_before);  // not handed over yet
  while (fired < 5) uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(io_->store()->wal()->GetStats().syncs - syncs_before, 1u);
  for (const auto& a : appends) EXPECT_EQ(a->status, 0);
}

TEST_F(SegwalRaftIoStorageTest, SnapshotPutCallbackComesAfterEarlierAppends) {
  Bootstrap();
  int fired = 0;
  auto a = SubmitAppend("abc", &fired);
  raft_snapshot s{};
  s.index = 2;
  s.term = 1;
  raft_configuration_init(&s.configuration);
  raft_configuration_add(&s.configuration, 1, "1", RAFT_VOTER);
  s.configuration_index = 1;
  std::string bytes = "fsm state";
  raft_buffer buf{bytes.data(), bytes.size()};
  s.bufs = &buf;
  s.n_bufs = 1;
  raft_io_snapshot_put put{};
  put.data = &fired;
  int put_order = -1;
  static int* put_order_ptr;
  put_order_ptr = &put_order;
  ASSERT_EQ(rio_->snapshot_put(rio_, 1, &put, &s,
                               [](raft_io_snapshot_put* p, int status) {
                                 EXPECT_EQ(status, 0);
                                 *put_order_ptr = (*static_cast<int*>(p->data))++;
                               }),
            0);
  raft_configuration_close(&s.configuration);
  while (put_order == -1) uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(a->order, 0);
  EXPECT_EQ(put_order, 1);

  // snapshot_get hands back what was put, in raft's memory.
  raft_io_snapshot_get get{};
  static raft_snapshot* got;
  got = nullptr;
  ASSERT_EQ(rio_->snapshot_get(rio_, &get,
                               [](raft_io_snapshot_get*, raft_snapshot* snap, int status) {
                                 EXPECT_EQ(status, 0);
                                 got = snap;
                               }),
            0);
  while (got == nullptr) uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(got->index, 2u);
  ASSERT_EQ(got->n_bufs, 1u);
  EXPECT_EQ(std::string(static_cast<char*>(got->bufs[0].base), got->bufs[0].len), "fsm state");
  ASSERT_EQ(got->configuration.n, 1u);
  EXPECT_EQ(got->configuration.servers[0].id, 1u);
  raft_configuration_close(&got->configuration);
  raft_free(got->bufs[0].base);
  raft_free(got->bufs);
  raft_free(got);
}

TEST_F(SegwalRaftIoStorageTest, LoadReturnsTermVoteSnapshotAndEntriesInRaftMemory) {
  Bootstrap();
  ASSERT_EQ(rio_->set_term(rio_, 3), 0);
  ASSERT_EQ(rio_->set_vote(rio_, 1), 0);
  int fired = 0;
  auto a = SubmitAppend("a", &fired);
  auto b = SubmitAppend("", &fired);
  auto c = SubmitAppend("0123456789abc", &fired);
  while (fired < 3) uv_run(&loop_, UV_RUN_ONCE);
  raft_term term;
  raft_id vote;
  raft_snapshot* snapshot;
  raft_index start;
  raft_entry* entries;
  size_t n;
  ASSERT_EQ(rio_->load(rio_, &term, &vote, &snapshot, &start, &entries, &n), 0);
  EXPECT_EQ(term, 3u);
  EXPECT_EQ(vote, 1u);
  EXPECT_EQ(snapshot, nullptr);
  EXPECT_EQ(start, 1u);
  ASSERT_EQ(n, 4u);
  EXPECT_EQ(entries[0].type, RAFT_CHANGE);
  EXPECT_EQ(std::string(static_cast<char*>(entries[1].buf.base), entries[1].buf.len), "a");
  EXPECT_EQ(entries[2].buf.len, 0u);
  EXPECT_EQ(std::string(static_cast<char*>(entries[3].buf.base), entries[3].buf.len),
            "0123456789abc");
  raft_free(entries[0].batch);  // one batch for all: raft frees it so
  raft_free(entries);
}

TEST_F(SegwalRaftIoStorageTest, PoisonedWalIsRaftIoErrWithErrmsg) {
  Bootstrap();
  int fired = 0;
  fi_.InjectError(kOpSync, absl::DataLossError("injected sync failure"), "", 0, -1);
  auto a = SubmitAppend("lost", &fired);
  while (fired < 1) uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(a->status, RAFT_IOERR);
  EXPECT_THAT(std::string(rio_->errmsg), ::testing::HasSubstr("injected sync failure"));
  rio_->errmsg[0] = '\0';
  EXPECT_EQ(rio_->set_term(rio_, 9), RAFT_IOERR);
  EXPECT_THAT(std::string(rio_->errmsg), ::testing::HasSubstr("injected sync failure"));
  raft_entry e{};
  e.term = 1;
  e.type = RAFT_COMMAND;
  raft_io_append req{};
  EXPECT_EQ(rio_->append(rio_, &req, &e, 1, nullptr), RAFT_IOERR);
  EXPECT_EQ(rio_->truncate(rio_, 2), RAFT_IOERR);
}

// What libraft's receive callback is handed, through the io's start.
uint64_t delivered_last_log_index = 0;
void RecordResult(raft_io*, raft_message* m) {
  delivered_last_log_index = m->append_entries_result.last_log_index;
}

raft_message AppendEntriesResult(raft_term term, raft_index last_log_index) {
  raft_message m{};
  m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
  m.server_id = 2;
  m.server_address = "2";
  m.append_entries_result.term = term;
  m.append_entries_result.last_log_index = last_log_index;
  return m;
}

// The commit guard (raft/commit_guard.h) sits between the transport and
// libraft: with the log 1 (term 1), 2 (term 2) and the current term 3, a
// follower's success at 2 reaches libraft as 0 until an entry of term 3 is
// durable here, and then as itself only for term-3 indexes; a leader_commit
// this io sent is the floor results are lowered to.
TEST_F(SegwalRaftIoStorageTest, CommitGuardLowersOldTermResultsBeforeLibraft) {
  Bootstrap();
  ASSERT_EQ(rio_->set_term(rio_, 3), 0);
  ASSERT_EQ(rio_->start(rio_, 100, [](raft_io*) {}, &RecordResult), 0);
  raft_io_recv_cb transport_recv = StubStarted().at(transport_.get());
  ASSERT_NE(transport_recv, &RecordResult);  // the io's own callback

  int fired = 0;
  auto old_term = SubmitAppend("old", &fired, /*term=*/2);
  while (fired < 1) uv_run(&loop_, UV_RUN_ONCE);
  raft_message m = AppendEntriesResult(3, 2);
  transport_recv(transport_.get(), &m);
  EXPECT_EQ(delivered_last_log_index, 0u);

  auto current = SubmitAppend("new", &fired, /*term=*/3);
  while (fired < 2) uv_run(&loop_, UV_RUN_ONCE);
  m = AppendEntriesResult(3, 3);
  transport_recv(transport_.get(), &m);
  EXPECT_EQ(delivered_last_log_index, 3u);
  m = AppendEntriesResult(3, 9);  // beyond the log: capped at its end
  transport_recv(transport_.get(), &m);
  EXPECT_EQ(delivered_last_log_index, 3u);
  m = AppendEntriesResult(3, 2);
  transport_recv(transport_.get(), &m);
  EXPECT_EQ(delivered_last_log_index, 0u);

  // An AppendEntries this io sends with leader_commit 1 makes 1 the floor.
  raft_message ae{};
  ae.type = RAFT_IO_APPEND_ENTRIES;
  ae.server_id = 2;
  ae.server_address = "2";
  ae.append_entries.term = 3;
  ae.append_entries.leader_commit = 1;
  raft_io_send send_req{};
  ASSERT_EQ(rio_->send(rio_, &send_req, &ae, nullptr), 0);
  m = AppendEntriesResult(3, 2);
  transport_recv(transport_.get(), &m);
  EXPECT_EQ(delivered_last_log_index, 1u);

  // Rejections pass untouched (their last_log_index is a hint).
  m = AppendEntriesResult(3, 2);
  m.append_entries_result.rejected = 2;
  transport_recv(transport_.get(), &m);
  EXPECT_EQ(delivered_last_log_index, 2u);
}

// commit_guard = false: libraft 0.15's own behaviour, the transport hands
// libraft's callback every message as it came.
TEST(SegwalRaftIoCommitGuardOffTest, ResultsReachLibraftUnchanged) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::unique_ptr<Env> mem = NewMemEnv();
  std::unique_ptr<raft_io> transport(NewStubTransport());
  SegwalRaftIoOptions o;
  o.store.dir = "/raft";
  o.store.env = mem.get();
  o.store.wal.segment_target_size = 4096;
  o.store.wal.background_sealing = false;
  o.store.wal.background_preallocation = false;
  o.loop = &loop;
  o.transport = transport.get();
  o.commit_guard = false;
  auto io = NewSegwalRaftIo(o);
  ASSERT_OK(io.status());
  raft_io* rio = (*io)->io();
  ASSERT_EQ(rio->init(rio, 1, "1"), 0);
  ASSERT_EQ(rio->set_term(rio, 3), 0);
  ASSERT_EQ(rio->start(rio, 100, [](raft_io*) {}, &RecordResult), 0);
  EXPECT_EQ(StubStarted().at(transport.get()), &RecordResult);
  bool closed = false;
  rio->data = &closed;
  rio->close(rio, [](raft_io* r) { *static_cast<bool*>(r->data) = true; });
  while (!closed) uv_run(&loop, UV_RUN_ONCE);
  io->reset();
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace raftstore
}  // namespace segwal
