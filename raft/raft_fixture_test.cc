// libraft's raft_fixture (an in-process 3-server cluster with an in-memory
// raft_io and a deterministic clock) with every storage call of every server
// teed into a SegwalRaftStore on MemEnv: the fixture's io keeps driving time
// and callbacks, the store records what raft asked to persist, and an append
// callback reaches raft only once the store has synced that append. Through
// elections, partitions, heals (suffix truncations on the old leader),
// snapshots with trailing entries and snapshot installs on a lagging
// follower, a freshly reopened store's Load() must equal the raft log that
// server holds in memory, with its term and vote.

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "env/mem_env.h"
#include "gtest/gtest.h"
#include "raft/commit_guard.h"
#include "raft/libraft.h"
#include "raft/segwal_raft_store.h"
#include "testutil/testutil.h"

namespace segwal {
namespace raftstore {
namespace {

constexpr unsigned kServers = 3;

// An FSM whose state is the concatenation of the commands it applied.
struct ConcatFsm {
  raft_fsm fsm{};
  std::string state;
  ConcatFsm() {
    fsm.version = 1;
    fsm.data = this;
    fsm.apply = [](raft_fsm* f, const raft_buffer* buf, void** result) {
      static_cast<ConcatFsm*>(f->data)->state.append(
          static_cast<const char*>(buf->base), buf->len);
      *result = nullptr;
      return 0;
    };
    fsm.snapshot = [](raft_fsm* f, raft_buffer* bufs[], unsigned* n) {
      const std::string& s = static_cast<ConcatFsm*>(f->data)->state;
      *bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
      (*bufs)[0].base = raft_malloc(s.size() + 1);
      std::memcpy((*bufs)[0].base, s.data(), s.size());
      (*bufs)[0].len = s.size();
      *n = 1;
      return 0;
    };
    fsm.restore = [](raft_fsm* f, raft_buffer* buf) {
      static_cast<ConcatFsm*>(f->data)->state.assign(
          static_cast<const char*>(buf->base), buf->len);
      raft_free(buf->base);
      return 0;
    };
  }
};

// One server's tee: the fixture's own io methods, and the store.
struct Tee {
  raft_io original;  // copy of the fixture's function pointers
  std::unique_ptr<SegwalRaftStore> store;
  SegwalRaftStoreOptions options;
  int pending_puts = 0;
  // Entries the fixture's io holds (its appends complete at their callback).
  uint64_t fixture_entries = 0;
  // What reached the store, so tests can say their scenario happened.
  int truncations = 0;
  int snapshots_taken = 0;     // trailing > 0
  int snapshots_installed = 0;  // trailing == 0
  // The commit guard (raft/commit_guard.h), as SegwalRaftIo installs it:
  // the wrapped start hands the fixture TeeRecv, which rewrites results
  // over this server's store when `guard` is set.
  bool guard = false;
  raft_io_recv_cb recv_cb = nullptr;
  uint64_t committed_floor = 0;  // highest leader_commit this server sent
  int guarded_results = 0;       // results the guard lowered
};

std::map<raft_io*, Tee*>* tees = nullptr;
struct PendingAppend {
  Tee* tee;
  raft_io_append_cb cb;
  uint64_t lsn;
  unsigned n;
};
std::map<raft_io_append*, PendingAppend>* pending_appends = nullptr;
struct PendingPut {
  Tee* tee;
  raft_io_snapshot_put_cb cb;
};
std::map<raft_io_snapshot_put*, PendingPut>* pending_puts = nullptr;

Tee* TeeOf(raft_io* io) { return tees->at(io); }

RaftSnapshot FromRaft(const raft_snapshot& s) {
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

int TeeSetTerm(raft_io* io, raft_term term) {
  int rv = TeeOf(io)->original.set_term(io, term);
  if (rv == 0) {
    EXPECT_OK(TeeOf(io)->store->SetTerm(term));
  }
  return rv;
}

int TeeSetVote(raft_io* io, raft_id id) {
  int rv = TeeOf(io)->original.set_vote(io, id);
  if (rv == 0) {
    EXPECT_OK(TeeOf(io)->store->SetVote(id));
  }
  return rv;
}

int TeeBootstrap(raft_io* io, const raft_configuration* conf) {
  int rv = TeeOf(io)->original.bootstrap(io, conf);
  if (rv != 0) return rv;
  raft_buffer buf;
  EXPECT_EQ(raft_configuration_encode(conf, &buf), 0);
  EXPECT_OK(TeeOf(io)->store->Bootstrap(
      RAFT_CHANGE, absl::string_view(static_cast<char*>(buf.base), buf.len)));
  raft_free(buf.base);
  TeeOf(io)->fixture_entries = 1;
  return 0;
}

void TeeAppendCb(raft_io_append* req, int status) {
  PendingAppend p = pending_appends->at(req);
  pending_appends->erase(req);
  // The callback reaches raft only once the entries are durable in the store.
  EXPECT_OK(p.tee->store->Sync());
  EXPECT_GE(p.tee->store->durable_lsn(), p.lsn);
  p.tee->fixture_entries += p.n;
  p.cb(req, status);
}

int TeeAppend(raft_io* io, raft_io_append* req, const raft_entry entries[],
              unsigned n, raft_io_append_cb cb) {
  Tee* tee = TeeOf(io);
  std::vector<RaftEntryView> views;
  for (unsigned i = 0; i < n; ++i) {
    views.push_back({entries[i].term, entries[i].type,
                     absl::string_view(static_cast<const char*>(entries[i].buf.base),
                                       entries[i].buf.len)});
  }
  absl::StatusOr<uint64_t> lsn = tee->store->Append(views);
  EXPECT_OK(lsn.status());
  (*pending_appends)[req] = {tee, cb, lsn.ok() ? *lsn : 0, n};
  int rv = tee->original.append(io, req, entries, n, &TeeAppendCb);
  if (rv != 0) pending_appends->erase(req);
  return rv;
}

int TeeTruncate(raft_io* io, raft_index index) {
  Tee* tee = TeeOf(io);
  // The fixture's in-memory io cannot cut past the entries it has completed
  // (it would copy, and later free, memory it never had); raft may cut
  // entries whose append is still in flight. Only the fixture's copy skips
  // such a cut; the store always records it.
  int rv = 0;
  if (index - 1 <= tee->fixture_entries) {
    rv = tee->original.truncate(io, index);
    if (rv == 0) tee->fixture_entries = index - 1;
  }
  // The fixture's io truncates its own copy to index 1 when it completes an
  // installed snapshot (its bookkeeping, not raft's): raft itself never cuts
  // at or below its snapshot, so such a call is not teed.
  absl::StatusOr<std::optional<RaftSnapshot>> snapshot = tee->store->GetSnapshot();
  EXPECT_OK(snapshot.status());
  const bool below_snapshot =
      snapshot.ok() && snapshot->has_value() && index <= (*snapshot)->index;
  if (rv == 0 && !below_snapshot) {
    EXPECT_OK(tee->store->Truncate(index));
    ++tee->truncations;
  }
  return rv;
}

void TeeSnapshotPutCb(raft_io_snapshot_put* req, int status) {
  PendingPut p = pending_puts->at(req);
  pending_puts->erase(req);
  --p.tee->pending_puts;
  p.cb(req, status);
}

int TeeSnapshotPut(raft_io* io, unsigned trailing, raft_io_snapshot_put* req,
                   const raft_snapshot* snapshot, raft_io_snapshot_put_cb cb) {
  Tee* tee = TeeOf(io);
  // As SegwalRaftIo does: durable at the call, in call order with appends.
  EXPECT_OK(tee->store->PutSnapshot(FromRaft(*snapshot), trailing));
  ++(trailing == 0 ? tee->snapshots_installed : tee->snapshots_taken);
  (*pending_puts)[req] = {tee, cb};
  ++tee->pending_puts;
  return tee->original.snapshot_put(io, trailing, req, snapshot, &TeeSnapshotPutCb);
}

void TeeRecv(raft_io* io, raft_message* message) {
  Tee* tee = TeeOf(io);
  if (tee->guard && message->type == RAFT_IO_APPEND_ENTRIES_RESULT) {
    const SegwalRaftStore::LogPosition pos = tee->store->Position();
    CommitGuardView view;
    view.current_term = tee->store->term();
    view.committed_floor = std::max(pos.snapshot_index, tee->committed_floor);
    view.last_index = pos.last_index;
    view.durable_index = pos.durable_index;
    SegwalRaftStore* store = tee->store.get();
    if (GuardAppendEntriesResult(message, view,
                                 [store](uint64_t i) { return store->TermOf(i); })) {
      ++tee->guarded_results;
    }
  }
  tee->recv_cb(io, message);
}

int TeeStart(raft_io* io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv) {
  TeeOf(io)->recv_cb = recv;
  return TeeOf(io)->original.start(io, msecs, tick, &TeeRecv);
}

int TeeSend(raft_io* io, raft_io_send* req, const raft_message* message,
            raft_io_send_cb cb) {
  Tee* tee = TeeOf(io);
  if (message->type == RAFT_IO_APPEND_ENTRIES) {
    tee->committed_floor =
        std::max(tee->committed_floor, uint64_t{message->append_entries.leader_commit});
  }
  return tee->original.send(io, req, message, cb);
}

// Bytes of libraft's configuration encoding before its padding: a version
// byte, a count (8 bytes), then per server an id (8), a NUL-terminated
// address and a role byte.
size_t EncodedConfigurationSize(const std::string& enc) {
  if (enc.size() < 9) return enc.size();
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{static_cast<unsigned char>(enc[1 + i])} << (8 * i);
  size_t pos = 9;
  for (uint64_t k = 0; k < n && pos < enc.size(); ++k) {
    pos += 8;
    const size_t nul = enc.find('\0', pos);
    if (nul == std::string::npos) return enc.size();
    pos = nul + 2;
  }
  return std::min(pos, enc.size());
}

// CheckCommitted reports through this unless the test expects violations.
#define ADD_FAILURE_IF_WATCHED(...) \
  do {                              \
    if (watch_safety_) ADD_FAILURE() << absl::StrCat(__VA_ARGS__); \
  } while (0)

class RaftFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tees = new std::map<raft_io*, Tee*>;
    pending_appends = new std::map<raft_io_append*, PendingAppend>;
    pending_puts = new std::map<raft_io_snapshot_put*, PendingPut>;
    // raft_fixture_initialize leaves parts of the struct (tracers, fault
    // counters) as it finds them: start from zeros.
    std::memset(&f_, 0, sizeof(f_));
    ASSERT_EQ(raft_fixture_initialize(&f_), 0);
    for (unsigned i = 0; i < kServers; ++i) {
      ASSERT_EQ(raft_fixture_grow(&f_, &fsms_[i].fsm), 0);
      raft_io* io = &f_.servers[i].io;
      Tee* tee = &tees_[i];
      tee->original = *io;
      tee->options.dir = absl::StrCat("/server", i);
      tee->options.env = env_.get();
      tee->options.wal.segment_target_size = 2048;  // truncation has segments
      tee->options.wal.background_sealing = false;
      tee->options.wal.background_preallocation = false;
      auto store = SegwalRaftStore::Open(tee->options);
      ASSERT_OK(store.status());
      tee->store = std::move(*store);
      (*tees)[io] = tee;
      io->set_term = &TeeSetTerm;
      io->set_vote = &TeeSetVote;
      io->bootstrap = &TeeBootstrap;
      io->append = &TeeAppend;
      io->truncate = &TeeTruncate;
      io->snapshot_put = &TeeSnapshotPut;
      io->start = &TeeStart;
      io->send = &TeeSend;
      // SEGWAL_RAFT_TRACE=1: libraft's trace of every server on stderr.
      f_.servers[i].tracer.enabled = std::getenv("SEGWAL_RAFT_TRACE") != nullptr;
      raft* r = raft_fixture_get(&f_, i);
      raft_set_snapshot_threshold(r, 16);
      raft_set_snapshot_trailing(r, 6);
    }
    raft_configuration conf;
    ASSERT_EQ(raft_fixture_configuration(&f_, kServers, &conf), 0);
    ASSERT_EQ(raft_fixture_bootstrap(&f_, &conf), 0);
    raft_configuration_close(&conf);
    ASSERT_EQ(raft_fixture_start(&f_), 0);
  }
  void TearDown() override {
    raft_fixture_close(&f_);
    delete tees;
    delete pending_appends;
    delete pending_puts;
  }

  // Submits `n` commands of odd sizes on server i (which must lead).
  void Apply(unsigned i, int n) {
    raft* r = raft_fixture_get(&f_, i);
    ASSERT_EQ(raft_state(r), RAFT_LEADER) << "server " << i;
    for (int k = 0; k < n; ++k) {
      const std::string cmd = absl::StrCat("s", i, "c", next_command_++, std::string(k % 7, '.'));
      raft_buffer buf;
      buf.len = cmd.size();
      buf.base = raft_malloc(cmd.size());
      std::memcpy(buf.base, cmd.data(), cmd.size());
      auto* req = new struct raft_apply;
      ASSERT_EQ(raft_apply(r, req, &buf, 1,
                           [](struct raft_apply* a, int, void*) { delete a; }),
                0);
    }
  }

  void Partition(unsigned i) {
    for (unsigned j = 0; j < kServers; ++j) {
      if (j == i) continue;
      raft_fixture_disconnect(&f_, i, j);
      raft_fixture_disconnect(&f_, j, i);
    }
  }
  void Heal() {
    for (unsigned i = 0; i < kServers; ++i) {
      for (unsigned j = 0; j < kServers; ++j) {
        if (i != j) raft_fixture_reconnect(&f_, i, j);
      }
    }
  }

  // Steps until `stop` or `max_msecs` of fixture time.
  template <typename F>
  bool StepUntil(F stop, unsigned max_msecs) {
    const raft_time deadline = raft_fixture_time(&f_) + max_msecs;
    while (!stop()) {
      if (raft_fixture_time(&f_) > deadline) return false;
      raft_fixture_step(&f_);
      CheckCommitted();
    }
    return true;
  }
  // raft_fixture_step_until_elapsed (the same steps), checking commits
  // after each.
  void StepFor(unsigned msecs) {
    raft_fixture_step_until(
        &f_,
        [](raft_fixture*, void* self) {
          static_cast<RaftFixtureTest*>(self)->CheckCommitted();
          return false;
        },
        this, msecs);
  }

  // The term of `index` in server r's in-memory log, 0 if not there.
  static uint64_t TermAt(const raft* r, uint64_t index) {
    const raft_log& log = r->log;
    const size_t n = log.back >= log.front ? log.back - log.front
                                           : log.size - log.front + log.back;
    if (index <= log.offset || index > log.offset + n) return 0;
    return log.entries[(log.front + (index - log.offset - 1)) % log.size].term;
  }
  // Raft's safety properties, watched from outside: an index committed
  // anywhere has one term everywhere it is committed (State Machine
  // Safety), and a server that becomes leader holds every entry committed
  // so far that its log still covers (Leader Completeness).
  void CheckCommitted() {
    for (unsigned i = 0; i < kServers; ++i) {
      raft* r = raft_fixture_get(&f_, i);
      for (uint64_t index = checked_[i] + 1; index <= r->commit_index; ++index) {
        const uint64_t term = TermAt(r, index);
        if (term == 0) continue;  // behind its snapshot
        auto inserted = committed_.emplace(index, term);
        if (!inserted.second && inserted.first->second != term) {
          ++commit_conflicts_;
          ADD_FAILURE_IF_WATCHED("server ", i, " committed ", index, " of term ", term,
                                 ", committed elsewhere with term ",
                                 inserted.first->second);
        }
      }
      checked_[i] = std::max<uint64_t>(checked_[i], r->commit_index);
      if (raft_state(r) == RAFT_LEADER && r->current_term > leader_checked_term_[i]) {
        leader_checked_term_[i] = r->current_term;
        for (const auto& [index, term] : committed_) {
          if (index <= r->log.offset) continue;  // in its snapshot
          if (TermAt(r, index) != term) {
            ++leaders_missing_committed_;
            ADD_FAILURE_IF_WATCHED("server ", i, " leads term ", r->current_term,
                                   " without committed entry ", index, " of term ", term,
                                   " (has term ", TermAt(r, index), ")");
          }
        }
      }
    }
  }
  bool NoSnapshotInFlight() {
    for (const Tee& t : tees_) {
      if (t.pending_puts > 0) return false;
    }
    return true;
  }
  int LeaderAmong(std::vector<unsigned> servers) {
    for (unsigned i : servers) {
      if (raft_state(raft_fixture_get(&f_, i)) == RAFT_LEADER) return static_cast<int>(i);
    }
    return -1;
  }

  std::string Describe() {
    std::string out;
    for (unsigned i = 0; i < kServers; ++i) {
      raft* r = raft_fixture_get(&f_, i);
      absl::StrAppend(&out, "server ", i, ": state ", raft_state(r), " term ",
                      r->current_term, " vote ", r->voted_for, " last ",
                      raft_last_index(r), " applied ", raft_last_applied(r),
                      " commit ", r->commit_index, "\n");
    }
    return out;
  }

  struct PartitionRounds {
    int rounds = 0;  // completed
    bool libraft_shut_down = false;
    int commit_conflicts = 0;           // see CheckCommitted
    int leaders_missing_committed = 0;
    int guarded_results = 0;  // results the commit guard lowered
    int truncations = 0, snapshots_taken = 0, snapshots_installed = 0;
  };
  bool AnyUnavailable() {
    for (unsigned i = 0; i < kServers; ++i) {
      if (raft_state(raft_fixture_get(&f_, i)) == RAFT_UNAVAILABLE) return true;
    }
    return false;
  }
  // Seeded rounds: apply on the leader, cut one server off (often the
  // leader, which then appends entries that never commit), heal; the stores
  // must equal the raft logs after every phase. Stops early when libraft
  // shuts a server down (Libraft015CommitsOldTermEntriesByCountingSeed14).
  PartitionRounds RunPartitionRounds(uint64_t seed, int rounds) {
    testutil::Random rnd(seed);
    PartitionRounds out;
    raft_fixture_elect(&f_, 0);
    for (int round = 0; round < rounds; ++round) {
      SCOPED_TRACE(absl::StrCat("round ", round));
      int leader = -1;
      const bool elected =
          StepUntil([&] { return (leader = LeaderAmong({0, 1, 2})) >= 0; }, 30000);
      ExpectAllStoresEqualRaftLogs();
      if (!elected && AnyUnavailable()) {
        out.libraft_shut_down = true;
        break;
      }
      EXPECT_TRUE(elected) << Describe();
      if (!elected) break;
      Apply(static_cast<unsigned>(leader), 1 + static_cast<int>(rnd.Uniform(8)));
      const unsigned victim = rnd.OneIn(2) ? static_cast<unsigned>(leader)
                                           : static_cast<unsigned>(rnd.Uniform(kServers));
      Partition(victim);
      StepFor(500 + static_cast<unsigned>(rnd.Uniform(3000)));
      if (raft_state(raft_fixture_get(&f_, victim)) == RAFT_LEADER) {
        Apply(victim, 1 + static_cast<int>(rnd.Uniform(4)));  // never commits
      }
      StepFor(200 + static_cast<unsigned>(rnd.Uniform(2000)));
      ExpectAllStoresEqualRaftLogs();
      Heal();
      StepFor(3000);
      ExpectAllStoresEqualRaftLogs();
      out.rounds = round + 1;
    }
    for (const Tee& t : tees_) {
      out.truncations += t.truncations;
      out.snapshots_taken += t.snapshots_taken;
      out.snapshots_installed += t.snapshots_installed;
      out.guarded_results += t.guarded_results;
    }
    out.commit_conflicts = commit_conflicts_;
    out.leaders_missing_committed = leaders_missing_committed_;
    return out;
  }

  // Reopens server i's store and compares its Load() with the raft log.
  void ExpectStoreEqualsRaftLog(unsigned i) {
    SCOPED_TRACE(absl::StrCat("server ", i));
    Tee& tee = tees_[i];
    tee.store.reset();
    auto reopened = SegwalRaftStore::Open(tee.options);
    ASSERT_OK(reopened.status());
    tee.store = std::move(*reopened);
    absl::StatusOr<LoadedRaftLog> loaded = tee.store->Load();
    ASSERT_OK(loaded.status());
    raft* r = raft_fixture_get(&f_, i);
    EXPECT_EQ(loaded->term, r->current_term);
    EXPECT_EQ(loaded->voted_for, r->voted_for);
    const raft_log& log = r->log;
    if (log.snapshot.last_index == 0) {
      EXPECT_FALSE(loaded->snapshot.has_value());
    } else {
      ASSERT_TRUE(loaded->snapshot.has_value());
      EXPECT_EQ(loaded->snapshot->index, log.snapshot.last_index);
      EXPECT_EQ(loaded->snapshot->term, log.snapshot.last_term);
    }
    const size_t n = log.back >= log.front ? log.back - log.front
                                           : log.size - log.front + log.back;
    EXPECT_EQ(loaded->start_index, log.offset + 1);
    ASSERT_EQ(loaded->entries.size(), n);
    for (size_t k = 0; k < n; ++k) {
      const raft_entry& e = log.entries[(log.front + k) % log.size];
      const RaftEntry& got = loaded->entries[k];
      EXPECT_EQ(got.index, log.offset + 1 + k);
      EXPECT_EQ(got.term, e.term) << "index " << got.index;
      EXPECT_EQ(got.type, e.type) << "index " << got.index;
      std::string want(static_cast<const char*>(e.buf.base), e.buf.len);
      if (e.type == RAFT_CHANGE) {
        // raft_configuration_encode leaves its 8-byte padding uninitialized:
        // the tee's encoding and the fixture's differ only there.
        ASSERT_EQ(got.data.size(), want.size()) << "index " << got.index;
        const size_t used = EncodedConfigurationSize(want);
        EXPECT_EQ(got.data.substr(0, used), want.substr(0, used)) << "index " << got.index;
      } else {
        EXPECT_EQ(got.data, want) << "index " << got.index;
      }
    }
  }
  void ExpectAllStoresEqualRaftLogs() {
    ASSERT_TRUE(StepUntil([&] { return NoSnapshotInFlight(); }, 60000));
    for (unsigned i = 0; i < kServers; ++i) ExpectStoreEqualsRaftLog(i);
  }

  void EnableCommitGuard() {
    for (Tee& t : tees_) t.guard = true;
  }
  // After the rounds: heal, commit one more entry of the current term, and
  // every server must have applied the same commands in the same order.
  void ExpectFsmsConverge() {
    Heal();
    int leader = -1;
    ASSERT_TRUE(StepUntil([&] { return (leader = LeaderAmong({0, 1, 2})) >= 0; }, 30000))
        << Describe();
    Apply(static_cast<unsigned>(leader), 1);
    const raft_index last = raft_last_index(raft_fixture_get(&f_, leader));
    ASSERT_TRUE(StepUntil(
        [&] {
          for (unsigned i = 0; i < kServers; ++i) {
            if (raft_last_applied(raft_fixture_get(&f_, i)) < last) return false;
          }
          return true;
        },
        30000))
        << Describe();
    for (unsigned i = 1; i < kServers; ++i) {
      EXPECT_EQ(fsms_[i].state, fsms_[0].state) << "server " << i;
    }
    EXPECT_FALSE(fsms_[0].state.empty());
  }

  std::unique_ptr<Env> env_ = NewMemEnv();  // outlives the stores
  raft_fixture f_;
  ConcatFsm fsms_[kServers];
  Tee tees_[kServers];
  int next_command_ = 0;
  // CheckCommitted's record: index -> term of every entry seen committed.
  std::map<uint64_t, uint64_t> committed_;
  uint64_t checked_[kServers] = {};             // per server: commit seen
  uint64_t leader_checked_term_[kServers] = {};  // per server: term checked
  int commit_conflicts_ = 0;
  int leaders_missing_committed_ = 0;
  // Whether CheckCommitted's findings are test failures (the pin of
  // libraft's own behaviour expects them).
  bool watch_safety_ = true;
};

TEST_F(RaftFixtureTest, StoresMatchRaftLogsAfterElectionAndReplication) {
  raft_fixture_elect(&f_, 0);
  Apply(0, 10);
  ASSERT_TRUE(raft_fixture_step_until_applied(&f_, kServers, 11, 10000));
  ExpectAllStoresEqualRaftLogs();
}

TEST_F(RaftFixtureTest, OldLeadersUncommittedSuffixIsTruncatedAfterAHeal) {
  raft_fixture_elect(&f_, 0);
  Apply(0, 5);
  ASSERT_TRUE(raft_fixture_step_until_applied(&f_, kServers, 6, 10000));
  // The leader is cut off and keeps appending entries that never commit.
  Partition(0);
  Apply(0, 4);
  int leader = -1;
  ASSERT_TRUE(StepUntil([&] { return (leader = LeaderAmong({1, 2})) >= 0; }, 20000));
  Apply(static_cast<unsigned>(leader), 3);
  const raft_index committed = raft_last_index(raft_fixture_get(&f_, leader));
  ASSERT_TRUE(StepUntil(
      [&] {
        return raft_last_applied(raft_fixture_get(&f_, 1)) >= committed &&
               raft_last_applied(raft_fixture_get(&f_, 2)) >= committed;
      },
      20000));
  ExpectAllStoresEqualRaftLogs();
  // Heal: server 0 steps down, its four entries are cut (a tombstone) and
  // replaced by the new leader's.
  Heal();
  ASSERT_TRUE(raft_fixture_step_until_applied(&f_, 0, committed, 20000));
  ExpectAllStoresEqualRaftLogs();
  raft* r0 = raft_fixture_get(&f_, 0);
  EXPECT_EQ(raft_last_index(r0), committed);
  EXPECT_GT(tees_[0].truncations, 0);
}

TEST_F(RaftFixtureTest, SnapshotsAndAnInstallOnALaggingFollowerMatch) {
  raft_fixture_elect(&f_, 0);
  Partition(2);
  // Enough entries for several snapshots (threshold 16, trailing 6): server
  // 2 falls behind the leader's log and needs the snapshot.
  for (int round = 0; round < 5; ++round) {
    Apply(0, 10);
    const raft_index last = raft_last_index(raft_fixture_get(&f_, 0));
    ASSERT_TRUE(raft_fixture_step_until_applied(&f_, 1, last, 20000));
  }
  ExpectAllStoresEqualRaftLogs();
  ASSERT_GT(raft_fixture_get(&f_, 0)->log.snapshot.last_index, 0u);
  Heal();
  const raft_index last = raft_last_index(raft_fixture_get(&f_, 0));
  ASSERT_TRUE(raft_fixture_step_until_applied(&f_, 2, last, 30000));
  EXPECT_EQ(fsms_[2].state, fsms_[0].state);
  EXPECT_GT(tees_[2].snapshots_installed, 0);
  EXPECT_GT(tees_[0].snapshots_taken, 0);
  ExpectAllStoresEqualRaftLogs();
  Apply(0, 7);
  const raft_index after = raft_last_index(raft_fixture_get(&f_, 0));
  ASSERT_TRUE(raft_fixture_step_until_applied(&f_, kServers, after, 20000));
  ExpectAllStoresEqualRaftLogs();
}

TEST_F(RaftFixtureTest, RepeatedPartitionsAndHealsKeepStoresEqualToRaftLogs) {
  const uint64_t seed = testutil::TestSeed(5);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  // libraft's own behaviour (no commit guard): a seed may reach its bug
  // (Libraft015CommitsOldTermEntriesByCountingSeed14); this test is about
  // the stores.
  watch_safety_ = false;
  const PartitionRounds r = RunPartitionRounds(seed, 40);
  std::printf("seed %llu: %d rounds, %d truncations, %d snapshots taken, %d "
              "installed, libraft shut a server down: %s\n",
              static_cast<unsigned long long>(seed), r.rounds, r.truncations,
              r.snapshots_taken, r.snapshots_installed,
              r.libraft_shut_down ? "yes (see Libraft015...)" : "no");
  EXPECT_GT(r.truncations, 0);
  EXPECT_GT(r.snapshots_taken, 0);
}

// libraft 0.15 (Debian bookworm's) commits entries of earlier terms by
// counting replicas, which the raft paper forbids (its Figure 8): fixed
// upstream by canonical/raft PR #336 ("replication: Don't commit entries
// from old terms by counting", in 0.17.1). With seed 14 a leader of term 111
// commits index 121 of term 107 on two servers; a server holding 121 of term
// 109 then wins an election (its last term is higher), and the two servers
// that had committed 121 find the conflict and shut down ("conflicting
// terms 107 and 109 for entry 121 (commit index 121) -> shutdown"). Not a
// store bug: the stores match the in-memory logs throughout. This pins the
// library's behaviour: when Debian ships a fixed libraft, this test fails,
// and docs/DURABILITY.md's raft section can drop its warning.
//
// Without segwal's commit guard (the fixture's io here is libraft's own): the
// check from outside sees the violation itself, a leader elected without an
// entry committed before.
TEST_F(RaftFixtureTest, Libraft015CommitsOldTermEntriesByCountingSeed14) {
  watch_safety_ = false;
  const PartitionRounds r = RunPartitionRounds(14, 40);
  EXPECT_TRUE(r.libraft_shut_down)
      << "libraft no longer commits old-term entries by counting?";
  EXPECT_EQ(r.rounds, 36);
  EXPECT_GT(r.leaders_missing_committed, 0);
  EXPECT_EQ(r.guarded_results, 0);
}

// The same seed with the commit guard SegwalRaftIo installs by default
// (raft/commit_guard.h): results confirming only old-term entries are
// lowered, libraft commits index 121 only once an entry of the leader's own
// term is on a majority, and all 40 rounds run with no server shut down, no
// committed entry conflicting, and every leader holding what was committed.
TEST_F(RaftFixtureTest, CommitGuardKeepsSeed14SafeThroughFortyRounds) {
  EnableCommitGuard();
  const PartitionRounds r = RunPartitionRounds(14, 40);
  EXPECT_FALSE(r.libraft_shut_down) << Describe();
  EXPECT_EQ(r.rounds, 40);
  EXPECT_EQ(r.commit_conflicts, 0);
  EXPECT_EQ(r.leaders_missing_committed, 0);
  EXPECT_GT(r.guarded_results, 0);  // the guard had work to do
  EXPECT_GT(r.truncations, 0);
  ExpectFsmsConverge();
  ExpectAllStoresEqualRaftLogs();
}

// More seeds with the guard: the same promises each time.
class CommitGuardSeedsTest : public RaftFixtureTest,
                             public ::testing::WithParamInterface<uint64_t> {
 protected:
  // RaftFixtureTest's SetUp/TearDown, reachable from the parameterized class.
};

TEST_P(CommitGuardSeedsTest, PartitionRoundsKeepCommittedEntries) {
  const uint64_t seed = GetParam();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  EnableCommitGuard();
  const PartitionRounds r = RunPartitionRounds(seed, 40);
  EXPECT_FALSE(r.libraft_shut_down) << Describe();
  EXPECT_EQ(r.rounds, 40);
  EXPECT_EQ(r.commit_conflicts, 0);
  EXPECT_EQ(r.leaders_missing_committed, 0);
  ExpectFsmsConverge();
  ExpectAllStoresEqualRaftLogs();
}

// Seeds 0..19 (SEGWAL_TEST_SEED moves the range: seeds S..S+19).
INSTANTIATE_TEST_SUITE_P(Seeds, CommitGuardSeedsTest,
                         ::testing::Range(testutil::TestSeed(0), testutil::TestSeed(0) + 20));

}  // namespace
}  // namespace raftstore
}  // namespace segwal
