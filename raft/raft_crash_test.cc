// Seeded power cuts under SegwalRaftIo, in every CrashMode.
//
// Each cycle opens the io over FaultInjectionEnv(MemEnv) (with a stub
// transport: only the storage methods are exercised, on a libuv loop, with
// the sync thread and the uv_async completions of the real io) and calls its
// raft_io methods the way libraft does: set_term, set_vote, append batches,
// truncate above the snapshot, snapshot_put with and without trailing
// entries. At a seeded file operation the file system freezes (every later
// call fails: the process is as good as dead); the io is closed and
// destroyed, SimulateCrash applies the power loss, and the store reopens.
//
// The model: the records the cycle submitted, in order (one per entry,
// truncation, term/vote, snapshot reference), and how many of them were
// acknowledged (an append callback said 0, or set_term / set_vote /
// snapshot_put returned 0). The reopened store's Load() must equal the log
// that the first k records produce, for some k between the acknowledged
// count and the submitted count: every entry whose append callback fired is
// there, term and vote never go back, nothing is invented.

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <thread>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gtest/gtest.h"
#include "raft/segwal_raft_io.h"
#include "testutil/testutil.h"

namespace segwal {
namespace raftstore {
namespace {

// The log as raft/FORMAT.md ("Load") defines it, written independently of
// RaftLogState.
struct ModelLog {
  uint64_t term = 0, vote = 0;
  bool has_snapshot = false;
  uint64_t snapshot_index = 0, snapshot_term = 0;
  uint64_t start = 1;
  std::deque<std::pair<uint64_t, std::string>> entries;  // term, data

  uint64_t next() const { return start + entries.size(); }

  static ModelLog From(const LoadedRaftLog& l) {
    ModelLog m;
    m.term = l.term;
    m.vote = l.voted_for;
    if (l.snapshot.has_value()) {
      m.has_snapshot = true;
      m.snapshot_index = l.snapshot->index;
      m.snapshot_term = l.snapshot->term;
    }
    m.start = l.start_index;
    for (const RaftEntry& e : l.entries) m.entries.push_back({e.term, e.data});
    return m;
  }
  friend bool operator==(const ModelLog& a, const ModelLog& b) {
    return a.term == b.term && a.vote == b.vote && a.has_snapshot == b.has_snapshot &&
           a.snapshot_index == b.snapshot_index && a.snapshot_term == b.snapshot_term &&
           a.start == b.start && a.entries == b.entries;
  }
  std::string Describe() const {
    std::string out = absl::StrCat("term ", term, " vote ", vote);
    if (has_snapshot) absl::StrAppend(&out, " snapshot ", snapshot_index, "@", snapshot_term);
    absl::StrAppend(&out, " entries [", start, ", ", next(), ") terms:");
    for (const auto& e : entries) absl::StrAppend(&out, " ", e.first);
    return out;
  }
};

struct Record {
  enum Kind { kEntry, kTruncate, kTermVote, kSnapshot } kind;
  uint64_t a = 0, b = 0, c = 0;  // entry: term; truncate: index;
                                 // term/vote: term, vote; snapshot: index, term, trailing
  std::string data;

  void ApplyTo(ModelLog* m) const {
    switch (kind) {
      case kEntry:
        m->entries.push_back({a, data});
        break;
      case kTruncate:
        if (m->has_snapshot && a <= m->snapshot_index) {
          m->entries.clear();
          m->start = m->snapshot_index + 1;
        } else if (a <= m->start) {
          m->entries.clear();
          m->start = a;
        } else if (a < m->next()) {
          m->entries.resize(a - m->start);
        }
        break;
      case kTermVote:
        m->term = a;
        m->vote = b;
        break;
      case kSnapshot: {
        const bool covers = m->next() > a;
        m->has_snapshot = true;
        m->snapshot_index = a;
        m->snapshot_term = b;
        if (c == 0 || !covers) {
          m->entries.clear();
          m->start = a + 1;
        } else {
          while (!m->entries.empty() && a >= c && m->start <= a - c) {
            m->entries.pop_front();
            ++m->start;
          }
        }
        break;
      }
    }
  }
};

// A transport that is never used beyond init and close.
raft_io* NewStubTransport() {
  auto* io = new raft_io{};
  io->version = 1;
  io->init = [](raft_io*, raft_id, const char*) { return 0; };
  io->close = [](raft_io* self, raft_io_close_cb cb) {
    if (cb != nullptr) cb(self);
  };
  io->time = [](raft_io*) -> raft_time { return 0; };
  io->random = [](raft_io*, int min, int) { return min; };
  return io;
}

struct AppendReq {
  raft_io_append req{};
  size_t records_end = 0;  // acknowledged prefix once the callback says 0
  int status = -1;
};

// SEGWAL_RAFT_DUMP=1: when a reopen fails, print every record of the WAL
// and its segments (a failing seed's history, for debugging).
void DumpWal(Env* env, const SegwalRaftStoreOptions& so) {
  SegmentedWalOptions wo = so.wal;
  wo.env = env;
  wo.wal_dir = SegwalRaftStore::WalDir(so.dir);
  auto wal = SegmentedWal::Open(wo);
  if (!wal.ok()) return;
  auto records = (*wal)->Replay();
  if (!records.ok()) return;
  for (const WalRecord& r : *records) {
    const std::string& p = r.payload;
    auto f64 = [&](size_t off) {
      uint64_t v = 0;
      for (int i = 0; i < 8 && off + i < p.size(); ++i) {
        v |= uint64_t{static_cast<unsigned char>(p[off + i])} << (8 * i);
      }
      return v;
    };
    std::string desc;
    switch (static_cast<RaftRecordType>(r.record_type)) {
      case RaftRecordType::kEntry: desc = absl::StrCat("entry ", f64(0), "@", f64(8)); break;
      case RaftRecordType::kTruncate: desc = absl::StrCat("truncate ", f64(0)); break;
      case RaftRecordType::kTermVote: desc = absl::StrCat("term/vote ", f64(0), " ", f64(8)); break;
      case RaftRecordType::kSnapshotRef:
        desc = absl::StrCat("snapshot ", f64(0), "@", f64(8), " trailing ", f64(16));
        break;
      case RaftRecordType::kLogStart:
        desc = absl::StrCat("log start: floor LSN ", f64(0), " index ", f64(8));
        break;
    }
    std::printf("lsn %llu %s\n", static_cast<unsigned long long>(r.lsn), desc.c_str());
  }
  auto segments = (*wal)->ListSegments();
  if (!segments.ok()) return;
  for (const SegmentMeta& seg : *segments) {
    std::printf("segment %s first LSN %llu\n", seg.path.c_str(),
                static_cast<unsigned long long>(seg.first_lsn));
  }
}

class RaftCrashTest : public ::testing::TestWithParam<CrashMode> {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    uv_run(&loop_, UV_RUN_NOWAIT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  void RunLoop() {
    for (int i = 0; i < 3; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  }
  void CloseIo(SegwalRaftIo* io) {
    bool closed = false;
    io->io()->data = &closed;
    io->io()->close(io->io(), [](raft_io* r) { *static_cast<bool*>(r->data) = true; });
    while (!closed) uv_run(&loop_, UV_RUN_ONCE);
  }

  uv_loop_t loop_;
};

TEST_P(RaftCrashTest, AcknowledgedEntriesTermAndVoteSurviveEveryPowerCut) {
  const CrashMode mode = GetParam();
  const uint64_t seed = testutil::TestSeed(20261214) + static_cast<int>(mode) * 7919;
  testutil::Random rnd(seed);
  const int cycles = static_cast<int>(testutil::EnvInt("SEGWAL_RAFT_CRASH_CYCLES", 300));
  std::unique_ptr<Env> mem = NewMemEnv();
  FaultInjectionEnv fi(mem.get());
  std::unique_ptr<raft_io> transport(NewStubTransport());
  ModelLog state;  // what the last recovery produced (checked)
  uint64_t acked_entries = 0, acked_term = 0, snapshots = 0, truncations = 0;

  for (int cycle = 0; cycle < cycles; ++cycle) {
    SCOPED_TRACE(absl::StrCat("seed ", seed, " cycle ", cycle));
    SegwalRaftIoOptions o;
    o.store.dir = "/raft";
    o.store.env = &fi;
    o.store.wal.segment_target_size = 512 + rnd.Uniform(2048);
    o.store.wal.background_sealing = rnd.OneIn(2);
    o.store.wal.background_preallocation = false;
    o.store.wal.preallocate_segments = rnd.OneIn(2);
    o.loop = &loop_;
    o.transport = transport.get();
    auto created = NewSegwalRaftIo(o);
    ASSERT_OK(created.status());
    std::unique_ptr<SegwalRaftIo> io = std::move(*created);
    raft_io* rio = io->io();
    ASSERT_EQ(rio->init(rio, 1, "1"), 0);
    {
      absl::StatusOr<LoadedRaftLog> loaded = io->store()->Load();
      ASSERT_OK(loaded.status());
      ASSERT_EQ(ModelLog::From(*loaded), state) << ModelLog::From(*loaded).Describe()
                                                << "\nexpected " << state.Describe();
    }

    // The records of this cycle, and how many are acknowledged durable.
    std::vector<Record> records;
    size_t acked = 0;
    ModelLog submitted = state;  // the log after every submitted record
    auto submit = [&](const Record& r) {
      records.push_back(r);
      r.ApplyTo(&submitted);
    };
    std::vector<std::unique_ptr<AppendReq>> appends;

    if (cycle == 0) {
      raft_configuration conf;
      raft_configuration_init(&conf);
      raft_configuration_add(&conf, 1, "1", RAFT_VOTER);
      ASSERT_EQ(rio->bootstrap(rio, &conf), 0) << rio->errmsg;
      raft_configuration_close(&conf);
      submit({Record::kTermVote, 1, 0, 0, ""});
      // The encoded configuration, as the store holds it.
      submit({Record::kEntry, 1, 0, 0, io->store()->Load()->entries[0].data});
      acked = records.size();
    }

    fi.InjectError(kOpAll, absl::UnavailableError("power cut"), "",
                   static_cast<int64_t>(rnd.Uniform(300)), -1);
    bool failed = false;
    const int ops = 1 + static_cast<int>(rnd.Uniform(40));
    for (int i = 0; i < ops && !failed; ++i) {
      const uint64_t kind = rnd.Uniform(100);
      if (kind < 10) {
        const uint64_t term = submitted.term + 1;
        submit({Record::kTermVote, term, 0, 0, ""});
        if (rio->set_term(rio, term) != 0) { failed = true; break; }
        acked = records.size();
        acked_term = std::max(acked_term, term);
      } else if (kind < 15) {
        const uint64_t vote = 1 + rnd.Uniform(3);
        submit({Record::kTermVote, submitted.term, vote, 0, ""});
        if (rio->set_vote(rio, vote) != 0) { failed = true; break; }
        acked = records.size();
      } else if (kind < 75) {
        const int n = 1 + static_cast<int>(rnd.Uniform(4));
        std::vector<std::string> data;
        data.reserve(n);  // entries point into these strings
        std::vector<raft_entry> entries(n);
        for (int k = 0; k < n; ++k) {
          data.push_back(rnd.RandomBytes(rnd.Uniform(41)));  // odd sizes too
          submit({Record::kEntry, std::max<uint64_t>(submitted.term, 1), 0, 0, data.back()});
          entries[k].term = std::max<uint64_t>(submitted.term, 1);
          entries[k].type = RAFT_COMMAND;
          entries[k].buf.base = data[k].data();
          entries[k].buf.len = data[k].size();
        }
        auto req = std::make_unique<AppendReq>();
        req->req.data = req.get();
        req->records_end = records.size();
        if (rio->append(rio, &req->req, entries.data(), n,
                        [](raft_io_append* r, int status) {
                          static_cast<AppendReq*>(r->data)->status = status;
                        }) != 0) {
          failed = true;
          break;
        }
        appends.push_back(std::move(req));
      } else if (kind < 87) {
        // raft cuts only above its commit index, never into the snapshot.
        const uint64_t low = std::max(submitted.start, submitted.snapshot_index + 1);
        if (submitted.next() <= low) continue;
        const uint64_t index = low + rnd.Uniform(submitted.next() - low);
        submit({Record::kTruncate, index, 0, 0, ""});
        if (rio->truncate(rio, index) != 0) { failed = true; break; }
        ++truncations;
      } else if (kind < 95) {
        // A snapshot raft took (trailing > 0, at an index in the log) or one
        // it installs from a leader (trailing 0, anywhere past the snapshot).
        const bool install = rnd.OneIn(3);
        raft_snapshot s{};
        uint64_t trailing = 0;
        if (install) {
          s.index = std::max(submitted.snapshot_index, submitted.next()) + rnd.Uniform(5);
          s.term = std::max<uint64_t>(submitted.term, 1);
        } else {
          const uint64_t low = std::max(submitted.start, submitted.snapshot_index + 1);
          if (submitted.next() <= low) continue;
          s.index = low + rnd.Uniform(submitted.next() - low);
          s.term = submitted.entries[s.index - submitted.start].first;
          trailing = 1 + rnd.Uniform(6);
        }
        raft_configuration_init(&s.configuration);
        raft_configuration_add(&s.configuration, 1, "1", RAFT_VOTER);
        s.configuration_index = 1;
        std::string bytes = absl::StrCat("snap@", s.index);
        raft_buffer buf{bytes.data(), bytes.size()};
        s.bufs = &buf;
        s.n_bufs = 1;
        raft_io_snapshot_put put{};
        bool put_done = false;
        put.data = &put_done;
        submit({Record::kSnapshot, s.index, s.term, trailing, ""});
        const int rv = rio->snapshot_put(
            rio, static_cast<unsigned>(trailing), &put, &s,
            [](raft_io_snapshot_put* p, int) { *static_cast<bool*>(p->data) = true; });
        if (rv == 0) {
          acked = records.size();
          ++snapshots;
          while (!put_done) uv_run(&loop_, UV_RUN_ONCE);
        }
        raft_configuration_close(&s.configuration);
        if (rv != 0) { failed = true; break; }
      }
      if (rnd.OneIn(4)) RunLoop();
      for (const auto& a : appends) {
        if (a->status == 0) acked = std::max(acked, a->records_end);
        if (a->status > 0) failed = true;
      }
    }
    // Let the sync thread catch up (or fail) before the power goes.
    auto all_done = [&] {
      for (const auto& a : appends) {
        if (a->status == -1) return false;
      }
      return true;
    };
    for (int spins = 0; spins < 20000 && !all_done(); ++spins) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::yield();
    }
    for (const auto& a : appends) {
      if (a->status == 0) acked = std::max(acked, a->records_end);
    }
    for (size_t k = 0; k < acked; ++k) {
      if (records[k].kind == Record::kEntry) ++acked_entries;
    }
    // The process dies: nothing it does from now on reaches the disk.
    fi.SetFilesystemActive(false, absl::UnavailableError("power cut"));
    CloseIo(io.get());
    io.reset();
    fi.ClearInjectedErrors();
    ASSERT_OK(fi.SimulateCrash(mode, rnd.Next64()));
    fi.SetFilesystemActive(true);

    SegwalRaftStoreOptions so = o.store;
    auto reopened = SegwalRaftStore::Open(so);
    if (!reopened.ok() && std::getenv("SEGWAL_RAFT_DUMP") != nullptr) DumpWal(&fi, so);
    ASSERT_OK(reopened.status());
    absl::StatusOr<LoadedRaftLog> loaded = (*reopened)->Load();
    ASSERT_OK(loaded.status());
    const ModelLog recovered = ModelLog::From(*loaded);
    reopened->reset();
    EXPECT_GE(recovered.term, acked_term) << "term went back";
    ASSERT_TRUE(testutil::RecoveredStateKeepsAcknowledgedPrefix(
        state, records, acked, recovered,
        [](const Record& r, ModelLog* m) { r.ApplyTo(m); }))
        << "recovered " << recovered.Describe() << "\nall submitted "
        << submitted.Describe() << "\nbefore the cycle " << state.Describe()
        << "\n" << acked << " of " << records.size() << " records acknowledged";
    state = recovered;
  }
  EXPECT_GT(acked_entries, 0u);
  EXPECT_GT(snapshots, 0u);
  EXPECT_GT(truncations, 0u);
  std::printf("raft crash test: mode %d, %d cycles, %llu acknowledged entries, "
              "%llu snapshots, %llu truncations\n",
              static_cast<int>(mode), cycles,
              static_cast<unsigned long long>(acked_entries),
              static_cast<unsigned long long>(snapshots),
              static_cast<unsigned long long>(truncations));
}

INSTANTIATE_TEST_SUITE_P(AllModes, RaftCrashTest,
                         ::testing::ValuesIn(kAllCrashModes),
                         [](const auto& info) {
                           return std::string(CrashModeName(info.param)).substr(1);
                         });

}  // namespace
}  // namespace raftstore
}  // namespace segwal
