// Seeded power cuts under a KvStore, with checkpoints (foreground and
// background), automatic checkpoints and log truncation in the mix, in every
// CrashMode.
//
// Each cycle opens the store over FaultInjectionEnv(MemEnv), runs a seeded
// mix of mutations over a small key space (so keys are rewritten, deleted and
// incremented many times), and at a seeded I/O operation the file system
// freezes (every later call fails: the process is as good as dead). The store
// is destroyed, SimulateCrash applies the power loss, and the store reopens.
//
// The model: the mutations submitted this cycle, in LSN order, and how many of
// them were acknowledged (WaitDurable returned OK for the last one's LSN). The
// recovered state must equal the state after the first k of them for some k
// between the acknowledged count and the submitted count: every acknowledged
// write is there with its value, nothing is invented, and an INCR is applied
// exactly once or not at all.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gtest/gtest.h"
#include "kv/kv_store.h"
#include "testutil/testutil.h"

namespace segwal {
namespace kv {
namespace {

using State = std::map<std::string, std::string>;

struct Op {
  KvOp op;
  std::vector<std::string> keys;
  std::vector<std::string> values;
  int64_t delta = 0;
};

void ApplyToModel(const Op& op, State* state) {
  switch (op.op) {
    case KvOp::kSet:
    case KvOp::kMSet:
      for (size_t i = 0; i < op.keys.size(); ++i) (*state)[op.keys[i]] = op.values[i];
      break;
    case KvOp::kDel:
      for (const std::string& k : op.keys) state->erase(k);
      break;
    case KvOp::kIncrBy: {
      auto it = state->find(op.keys[0]);
      const int64_t before = it == state->end() ? 0 : std::stoll(it->second);
      (*state)[op.keys[0]] = std::to_string(before + op.delta);
      break;
    }
    case KvOp::kFlushAll:
      state->clear();
      break;
  }
}

State ReadAll(KvStore* store) {
  State out;
  ReadResult keys = store->Keys("*");
  std::vector<absl::string_view> views(keys.keys.begin(), keys.keys.end());
  ReadResult values = store->MultiLookup(views);
  for (size_t i = 0; i < keys.keys.size(); ++i) out[keys.keys[i]] = *values.values[i];
  return out;
}

std::string Describe(const State& s) {
  std::string out;
  for (const auto& [k, v] : s) absl::StrAppend(&out, k, "=", v, " ");
  return out;
}

class KvCrashTest : public ::testing::TestWithParam<CrashMode> {};

TEST_P(KvCrashTest, AcknowledgedWritesSurviveEveryPowerCut) {
  const CrashMode mode = GetParam();
  const uint64_t seed = testutil::TestSeed(20261204) + static_cast<int>(mode) * 7919;
  testutil::Random rnd(seed);
  const int cycles = static_cast<int>(testutil::EnvInt("SEGWAL_KV_CRASH_CYCLES", 700));
  std::unique_ptr<Env> mem = NewMemEnv();
  FaultInjectionEnv fi(mem.get());
  State state;  // the state the last recovery produced (checked)
  uint64_t acked_total = 0, checkpoints = 0, recovered_from_checkpoint = 0;

  for (int cycle = 0; cycle < cycles; ++cycle) {
    SCOPED_TRACE(absl::StrCat("seed ", seed, " cycle ", cycle));
    KvStoreOptions o;
    o.dir = "/db";
    o.env = &fi;
    o.wal.segment_target_size = 1024 + rnd.Uniform(4096);
    o.wal.background_sealing = rnd.OneIn(2);
    o.wal.background_preallocation = false;
    o.wal.preallocate_segments = rnd.OneIn(2);
    o.checkpoint_every_bytes = rnd.OneIn(2) ? 0 : 500 + rnd.Uniform(3000);
    absl::StatusOr<std::unique_ptr<KvStore>> opened = KvStore::Open(o);
    ASSERT_OK(opened.status());
    std::unique_ptr<KvStore> store = std::move(*opened);
    if (store->recovery_report().checkpoint_lsn > 0) ++recovered_from_checkpoint;
    ASSERT_EQ(ReadAll(store.get()), state);

    // The power cut comes at a seeded I/O operation of this cycle.
    fi.InjectError(kOpAll, absl::UnavailableError("power cut"), "",
                   static_cast<int64_t>(rnd.Uniform(400)), -1);
    std::vector<Op> submitted;
    size_t acked = 0;
    const int ops = 1 + static_cast<int>(rnd.Uniform(60));
    for (int i = 0; i < ops; ++i) {
      const uint64_t kind = rnd.Uniform(100);
      if (kind < 4) {
        if (!store->Checkpoint().ok()) break;
        ++checkpoints;
        continue;
      }
      if (kind < 7) {
        store->StartBackgroundCheckpoint().IgnoreError();
        continue;
      }
      Op op;
      auto key = [&] { return absl::StrCat("k", rnd.Uniform(12)); };
      if (kind < 50) {
        op = {KvOp::kSet, {key()}, {absl::StrCat(cycle, ".", i, ".", rnd.RandomString(rnd.Uniform(40)))}};
      } else if (kind < 62) {
        op = {KvOp::kDel, {key(), key()}, {}};
      } else if (kind < 72) {
        op = {KvOp::kMSet, {key(), key()}, {absl::StrCat("m", i), absl::StrCat("n", i)}};
        if (op.keys[0] == op.keys[1]) op.keys.pop_back(), op.values.pop_back();
      } else if (kind < 99) {
        op = {KvOp::kIncrBy, {absl::StrCat("n", rnd.Uniform(3))}, {}, static_cast<int64_t>(rnd.Uniform(9)) - 4};
      } else {
        op = {KvOp::kFlushAll, {}, {}};
      }
      Mutation m{op.op, {op.keys.begin(), op.keys.end()},
                 {op.values.begin(), op.values.end()}, op.delta};
      absl::StatusOr<WriteResult> w = store->Submit(m);
      if (!w.ok()) break;  // no LSN was assigned: not part of the log
      submitted.push_back(op);
      if (rnd.OneIn(3)) {
        if (!store->WaitDurable(w->lsn).ok()) break;
        acked = submitted.size();
      }
    }
    if (store->WaitDurable(store->last_applied_lsn()).ok()) acked = submitted.size();
    // The process dies: nothing it does from now on reaches the disk.
    fi.SetFilesystemActive(false, absl::UnavailableError("power cut"));
    store.reset();
    fi.ClearInjectedErrors();
    ASSERT_OK(fi.SimulateCrash(mode, rnd.Next64()));
    fi.SetFilesystemActive(true);
    acked_total += acked;

    opened = KvStore::Open(o);
    ASSERT_OK(opened.status());
    const State recovered = ReadAll(opened->get());
    opened->reset();
    ASSERT_TRUE(testutil::RecoveredStateKeepsAcknowledgedPrefix(
        state, submitted, acked, recovered, ApplyToModel))
        << "recovered " << Describe(recovered) << "\nbefore the cycle "
        << Describe(state) << "\n" << acked << " of " << submitted.size()
        << " acknowledged";
    state = recovered;
  }
  EXPECT_GT(acked_total, 0u);
  EXPECT_GT(recovered_from_checkpoint, 0u);
  std::printf("SEGWAL_STATS crash_cycles=%d acked_lost=0 phantom=0\n", cycles);
  std::printf("kv crash test: mode %d, %d cycles, %llu acknowledged writes, "
              "%llu checkpoints, %llu recoveries from a checkpoint\n",
              static_cast<int>(mode), cycles,
              static_cast<unsigned long long>(acked_total),
              static_cast<unsigned long long>(checkpoints),
              static_cast<unsigned long long>(recovered_from_checkpoint));
}

INSTANTIATE_TEST_SUITE_P(AllModes, KvCrashTest,
                         ::testing::ValuesIn(kAllCrashModes),
                         [](const auto& info) {
                           return std::string(CrashModeName(info.param)).substr(1);
                         });

}  // namespace
}  // namespace kv
}  // namespace segwal
