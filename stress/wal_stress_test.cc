// Tests of wal_stress's own machinery (a verifier that misses a lost or
// phantom record would make every crash test pass), and in-process stress
// cycles over MemEnv and FaultInjectionEnv.

#include "stress/wal_stress.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gtest/gtest.h"
#include "stress/expected_state.h"
#include "stress/stress_record.h"
#include "testutil/testutil.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SEGWAL_STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SEGWAL_STRESS_SANITIZED 1
#endif
#endif
#ifndef SEGWAL_STRESS_SANITIZED
#define SEGWAL_STRESS_SANITIZED 0
#endif

namespace segwal {
namespace stress {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kSeed = 77;

// A log as wal_stress would write it: `per_thread` records from each of
// `threads` threads of generation 1, interleaved round-robin from LSN `first`.
std::vector<WalRecord> MakeLog(int threads, int per_thread, uint64_t first = 1) {
  std::vector<WalRecord> log;
  std::vector<uint64_t> prev(threads, 0);
  uint64_t lsn = first;
  for (int i = 0; i < per_thread; ++i) {
    for (int t = 0; t < threads; ++t) {
      const RecordId id{1, static_cast<uint32_t>(t), static_cast<uint64_t>(i)};
      StressRecord r = MakeRecord(kSeed, id, prev[t], 10 + 7 * i);
      log.push_back({lsn, r.record_type, r.tenant_id, r.vshard_id,
                     r.database_id, r.payload});
      prev[t] = lsn++;
    }
  }
  return log;
}

Pin PinOf(const WalRecord& r) {
  DecodedRecord d;
  EXPECT_EQ(DecodeRecord(r, &d), "");
  return Pin{r.lsn, d.id, d.crc};
}

ExpectedState StateFor(const std::vector<WalRecord>& log, size_t acked_index) {
  ExpectedState st;
  st.seed = kSeed;
  st.generation = 1;
  st.Acknowledge(PinOf(log[acked_index]), 0);
  return st;
}

VerifyResult Verify(const ExpectedState& st, const std::vector<WalRecord>& log,
                    uint64_t next_lsn = 0) {
  LogVerifier v(st, st.generation);
  for (const WalRecord& r : log) v.Add(r);
  if (next_lsn == 0 && !log.empty()) next_lsn = log.back().lsn + 1;
  return v.Finish(next_lsn, /*check_durable=*/true);
}

TEST(StressRecordTest, RoundTripsAndRejectsAnyChange) {
  const RecordId id{3, 2, 41};
  StressRecord r = MakeRecord(kSeed, id, 17, 100);
  WalRecord w{20, r.record_type, r.tenant_id, r.vshard_id, r.database_id,
              r.payload};
  DecodedRecord d;
  ASSERT_EQ(DecodeRecord(w, &d), "");
  EXPECT_TRUE(d.id == id);
  EXPECT_EQ(d.prev_lsn, 17u);
  for (size_t i = 0; i < w.payload.size(); ++i) {
    WalRecord bad = w;
    bad.payload[i] ^= 0x10;
    EXPECT_NE(DecodeRecord(bad, &d), "") << "flip at byte " << i;
  }
  WalRecord bad = w;
  bad.tenant_id ^= 1;
  EXPECT_THAT(DecodeRecord(bad, &d), HasSubstr("header fields"));
  bad = w;
  bad.lsn = 17;  // cannot follow its own predecessor's LSN
  EXPECT_THAT(DecodeRecord(bad, &d), HasSubstr("impossible"));
}

TEST(LogVerifierTest, AcceptsACompleteLogAndAnUnacknowledgedTailCut) {
  std::vector<WalRecord> log = MakeLog(3, 20);
  EXPECT_TRUE(Verify(StateFor(log, 59), log).ok);
  const ExpectedState st = StateFor(log, 40);
  log.resize(45);  // records after the acknowledged one may be gone
  VerifyResult v = Verify(st, log);
  EXPECT_TRUE(v.ok) << v.error;
  EXPECT_EQ(v.records, 45u);
}

TEST(LogVerifierTest, CatchesALostAcknowledgedTail) {
  std::vector<WalRecord> log = MakeLog(3, 20);
  const ExpectedState st = StateFor(log, 40);
  log.resize(39);
  VerifyResult v = Verify(st, log);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_lsn, 40u);
  EXPECT_EQ(v.acked_lost, 2u);
}

TEST(LogVerifierTest, CatchesAHole) {
  std::vector<WalRecord> log = MakeLog(3, 20);
  const ExpectedState st = StateFor(log, 59);
  log.erase(log.begin() + 10);
  VerifyResult v = Verify(st, log);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_lsn, 11u);
  EXPECT_GT(v.phantom, 0u);
}

TEST(LogVerifierTest, CatchesARenumberedLog) {
  // Record 11 dropped and the rest renumbered: LSNs contiguous, chains broken.
  std::vector<WalRecord> log = MakeLog(3, 20);
  const ExpectedState st = StateFor(log, 30);
  log.erase(log.begin() + 10);
  for (size_t i = 10; i < log.size(); ++i) log[i].lsn = i + 1;
  VerifyResult v = Verify(st, log);
  EXPECT_FALSE(v.ok);
  // Found at the next record of the thread that lost one (its chain breaks).
  EXPECT_EQ(v.first_bad_lsn, 13u) << v.error;
}

TEST(LogVerifierTest, CatchesSwappedRecordsOfDifferentThreads) {
  std::vector<WalRecord> log = MakeLog(3, 20);
  const ExpectedState st = StateFor(log, 2);
  std::swap(log[20].payload, log[21].payload);
  std::swap(log[20].tenant_id, log[21].tenant_id);
  std::swap(log[20].vshard_id, log[21].vshard_id);
  std::swap(log[20].database_id, log[21].database_id);
  VerifyResult v = Verify(st, log);
  EXPECT_FALSE(v.ok);
  // Both records still follow their own thread's predecessor; the swap shows
  // at the next record of the thread whose record moved later (LSN 21 -> 22).
  EXPECT_EQ(v.first_bad_lsn, 24u) << v.error;
}

TEST(LogVerifierTest, CatchesADuplicatedRecord) {
  std::vector<WalRecord> log = MakeLog(2, 10);
  const ExpectedState st = StateFor(log, 3);
  WalRecord dup = log[7];
  log.insert(log.begin() + 8, dup);
  for (size_t i = 8; i < log.size(); ++i) log[i].lsn = i + 1;
  VerifyResult v = Verify(st, log);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_lsn, 9u) << v.error;
}

TEST(LogVerifierTest, CatchesAnAlteredPayloadAndAForeignSeed) {
  std::vector<WalRecord> log = MakeLog(2, 10);
  ExpectedState st = StateFor(log, 3);
  std::vector<WalRecord> bad = log;
  bad[5].payload[50] ^= 1;
  EXPECT_EQ(Verify(st, bad).first_bad_lsn, 6u);
  st.seed = kSeed + 1;
  VerifyResult v = Verify(st, log);
  EXPECT_FALSE(v.ok);
  EXPECT_THAT(v.error, HasSubstr("seed"));
}

TEST(LogVerifierTest, CatchesAGenerationFromTheFuture) {
  std::vector<WalRecord> log = MakeLog(2, 10);
  ExpectedState st = StateFor(log, 3);
  st.generation = 0;  // generation 1 never started
  LogVerifier v(st, 0);
  for (const WalRecord& r : log) v.Add(r);
  EXPECT_FALSE(v.Finish(0, true).ok);
}

TEST(LogVerifierTest, TruncationFloorAllowsAMissingFrontOnlyBelowIt) {
  std::vector<WalRecord> log = MakeLog(2, 30);
  ExpectedState st = StateFor(log, 59);
  st.truncate_floor = 21;
  std::vector<WalRecord> tail(log.begin() + 15, log.end());  // from LSN 16
  EXPECT_TRUE(Verify(st, tail).ok);
  std::vector<WalRecord> short_tail(log.begin() + 25, log.end());  // LSN 26
  VerifyResult v = Verify(st, short_tail);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_lsn, 21u);
  EXPECT_EQ(v.acked_lost, 5u);
}

TEST(LogVerifierTest, CatchesAPinnedRecordReplacedByAnother) {
  std::vector<WalRecord> log = MakeLog(2, 10);
  ExpectedState st = StateFor(log, 10);
  // Same LSNs and a valid chain, but LSN 11 holds a different record than
  // the one acknowledged there: pins catch it.
  st.pins[0].crc ^= 1;
  VerifyResult v = Verify(st, log);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_lsn, 11u);
  EXPECT_EQ(v.acked_lost, 1u);
}

TEST(LogVerifierTest, EmptyLogWithAcknowledgedRecordsIsLoss) {
  std::vector<WalRecord> log = MakeLog(1, 5);
  ExpectedState st = StateFor(log, 4);
  VerifyResult v = Verify(st, {}, 1);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.acked_lost, 5u);
}

TEST(ExpectedStateTest, PinsKeepTheHighestLsns) {
  ExpectedState st;
  for (uint64_t lsn = 100; lsn > 0; --lsn) st.Acknowledge(Pin{lsn, {}, 0}, 0);
  ASSERT_EQ(st.pins.size(), ExpectedState::kMaxPins);
  EXPECT_EQ(st.pins.front().lsn, 100 - ExpectedState::kMaxPins + 1);
  EXPECT_EQ(st.pins.back().lsn, 100u);
  EXPECT_EQ(st.acked_lsn, 100u);
  EXPECT_FALSE(st.Acknowledge(Pin{1, {}, 0}, 0));  // nothing new
  EXPECT_TRUE(st.Acknowledge(Pin{50, {}, 0}, 200));
  EXPECT_EQ(st.acked_lsn, 200u);
}

TEST(ExpectedStateFileTest, SavesAndReloadsAndSurvivesATornSlot) {
  testutil::TempDir tmp;
  const std::string path = tmp.Join("expected_state");
  ExpectedState st;
  st.seed = 9;
  bool created = false;
  {
    ASSERT_OK_AND_ASSIGN(auto f, ExpectedStateFile::Open(path, st, &created));
    EXPECT_TRUE(created);
    for (uint64_t i = 1; i <= 5; ++i) {
      st.generation = static_cast<uint32_t>(i);
      st.Acknowledge(Pin{i * 10, RecordId{1, 2, i}, 7}, 0);
      st.truncate_floor = i;
      ASSERT_OK(f->Save(st));
    }
  }
  ASSERT_OK_AND_ASSIGN(auto f, ExpectedStateFile::Open(path, {}, &created));
  EXPECT_FALSE(created);
  ASSERT_OK_AND_ASSIGN(ExpectedState got, f->Load());
  EXPECT_EQ(got.seed, 9u);
  EXPECT_EQ(got.generation, 5u);
  EXPECT_EQ(got.acked_lsn, 50u);
  EXPECT_EQ(got.truncate_floor, 5u);
  ASSERT_EQ(got.pins.size(), 5u);
  EXPECT_TRUE(got.pins.back().id == (RecordId{1, 2, 5}));

  // A save torn by a crash leaves the slot it was writing garbage; the other
  // slot still holds the state before it. Tear each slot in turn (in copies):
  // one copy must give generation 6 back, the other generation 5.
  st.generation = 6;
  ASSERT_OK(f->Save(st));
  std::vector<uint32_t> seen;
  for (int slot = 0; slot < 2; ++slot) {
    const std::string copy = tmp.Join(absl::StrCat("copy", slot));
    ASSERT_EQ(system(absl::StrCat("cp ", path, " ", copy).c_str()), 0);
    const int fd = open(copy.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const std::string junk(100, 'x');
    ASSERT_EQ(pwrite(fd, junk.data(), junk.size(), slot * 4096 + 200), 100);
    close(fd);
    ASSERT_OK_AND_ASSIGN(auto torn, ExpectedStateFile::Open(copy, {}, &created));
    ASSERT_OK_AND_ASSIGN(ExpectedState back, torn->Load());
    seen.push_back(back.generation);
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<uint32_t>{5, 6}));
}

// In-process cycles: the same workload and verification as the crash driver,
// with power losses simulated by FaultInjectionEnv (every CrashMode) instead
// of SIGKILL, or with clean closes over MemEnv.
class StressCyclesTest : public ::testing::TestWithParam<bool> {};

TEST_P(StressCyclesTest, EveryCycleVerifies) {
  const bool fault = GetParam();
  const uint64_t seed = testutil::TestSeed(fault ? 0xfa17 : 0x3e3);
  const int cycles = static_cast<int>(testutil::EnvInt(
      "SEGWAL_STRESS_CYCLES", SEGWAL_STRESS_SANITIZED ? 15 : 60));
  std::unique_ptr<Env> mem = NewMemEnv();
  FaultInjectionEnv fi(mem.get());
  StressOptions o;
  o.wal_dir = "/wal";
  o.env = fault ? static_cast<Env*>(&fi) : mem.get();
  o.threads = 4;
  o.max_ops = SEGWAL_STRESS_SANITIZED ? 150 : 400;
  o.duration_ms = 600000;
  CycleReport r = RunCycles(o, fault ? &fi : nullptr, seed, cycles);
  EXPECT_EQ(r.failure, "") << "replay with SEGWAL_TEST_SEED=" << seed;
  printf("wal_stress cycles (%s, seed %" PRIu64 "): %" PRIu64 " cycles, %" PRIu64
         " simulated power losses, %s; %" PRIu64 " records verified, %" PRIu64
         " bytes dropped by recovery\n",
         fault ? "FaultInjectionEnv" : "MemEnv", seed, r.cycles, r.crashes,
         r.workload.ToString().c_str(), r.records_verified, r.dropped_bytes);
  printf("SEGWAL_STATS crash_cycles=%" PRIu64 " records_verified=%" PRIu64
         " acked_lost=%" PRIu64 " phantom=%" PRIu64 "\n",
         r.crashes, r.records_verified, r.acked_lost, r.phantom);
  EXPECT_EQ(r.cycles, static_cast<uint64_t>(cycles));
  EXPECT_EQ(r.acked_lost, 0u);
  EXPECT_EQ(r.phantom, 0u);
  EXPECT_GT(r.workload.truncations, 0u);
}

INSTANTIATE_TEST_SUITE_P(Envs, StressCyclesTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "FaultInjection" : "Mem";
                         });

}  // namespace
}  // namespace stress
}  // namespace segwal
