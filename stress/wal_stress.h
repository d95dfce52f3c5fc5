// wal_stress: a randomized, multi-threaded workload over SegmentedWal's public
// API, in the style of RocksDB's db_stress, and the verification of a log
// recovered after it crashed.
//
// A *generation* is one stretch of workload on one open WAL (one wal_stress
// process, or one in-process cycle). Before it appends anything, the generation
// number is saved in the expected state; then `threads` writer threads each
//   - append stress records (stress/stress_record.h) of skewed sizes,
//   - Sync at random; when Sync returns OK the record they appended last (and
//     durable_lsn()) is acknowledged durable and saved in the expected state,
//   - Flush, read back their own last record through ReplayFromLimit, stream
//     part of the log through an iterator and check it record by record,
//   - TruncateBefore a checkpoint lagging behind the acknowledged LSN (saved as
//     the truncation floor before the call),
// with small segments so rollovers happen constantly. Any error from the WAL
// (there are no faults in this workload) or any bad record read back fails the
// generation.
//
// VerifyWal streams the whole recovered log through LogVerifier
// (stress/expected_state.h): a prefix of what was appended, contiguous, every
// payload intact, everything acknowledged durable present.
//
// Everything random derives from (seed, generation, thread), printed on
// failure; thread interleavings are the only non-replayable part.
//
// Thread safety: RunGeneration starts and joins its own threads.

#ifndef SEGWAL_STRESS_WAL_STRESS_H_
#define SEGWAL_STRESS_WAL_STRESS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "env/env.h"
#include "env/fault_injection_env.h"
#include "stress/expected_state.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace stress {

struct StressOptions {
  std::string wal_dir;
  Env* env = nullptr;  // nullptr: the POSIX Env
  int threads = 4;
  // The generation ends after duration_ms, or once every thread has done
  // max_ops operations (0: no limit), whichever comes first.
  uint64_t duration_ms = 50;
  uint64_t max_ops = 0;
  // 0: chosen per generation from the seed (small, so segments roll often).
  uint64_t segment_target_size = 0;
  size_t write_buffer_size = 0;
  // Largest record body; bodies are skewed towards small sizes.
  uint32_t max_body = 48 << 10;
};

// The WAL options a generation uses.
SegmentedWalOptions WalOptionsFor(const StressOptions& options, uint64_t seed,
                                  uint32_t generation);

struct GenerationStats {
  uint64_t appended = 0;
  uint64_t syncs = 0;
  uint64_t flushes = 0;
  uint64_t acknowledged = 0;  // syncs whose acknowledgment was saved
  uint64_t read_backs = 0;
  uint64_t iterations = 0;
  uint64_t records_iterated = 0;
  uint64_t truncations = 0;
  uint64_t segments_deleted = 0;
  std::string ToString() const;
};

// Streams every record of `wal` (from its first retained LSN) through a
// LogVerifier for `state`. `check_durable`: the log must also hold what
// `state` says was acknowledged (use right after Open).
VerifyResult VerifyWal(const SegmentedWal& wal, const ExpectedState& state,
                       bool check_durable);

// Starts generation state->generation + 1 on `wal`: saves the new generation
// to `store`, runs the workload, and keeps *state and `store` up to date with
// every acknowledgment and truncation floor. `stop` (may be null) ends the
// generation early when set. Returns the first error or failed check.
absl::Status RunGeneration(const StressOptions& options, SegmentedWal* wal,
                           StateStore* store, ExpectedState* state,
                           GenerationStats* stats,
                           const std::atomic<bool>* stop = nullptr);

// In-process crash cycles (no files, no processes): `cycles` times, open the WAL
// on options.env, verify it, run a generation (options.max_ops per thread),
// then end it — with a power loss (`fault` non-null: SimulateCrash in a seeded
// CrashMode, with the WAL still open or just after closing it) or a clean
// close — and finally verify once more. REQUIRES: `fault`, when set, is
// options.env or wraps it.
struct CycleReport {
  uint64_t cycles = 0;
  uint64_t crashes = 0;  // simulated power losses
  uint64_t records_verified = 0;
  uint64_t acked_lost = 0;
  uint64_t phantom = 0;
  uint64_t dropped_bytes = 0;  // reported by recovery
  GenerationStats workload;
  std::string failure;  // "" if every verification passed; else seed,
                        // generation, first bad LSN and what was wrong
};
CycleReport RunCycles(const StressOptions& options, FaultInjectionEnv* fault,
                      uint64_t seed, int cycles);

// One line describing a verification, for logs:
//   "records N, LSNs a..b, acknowledged LSN x, truncation floor f"
std::string DescribeVerify(const VerifyResult& v, const ExpectedState& state);

}  // namespace stress
}  // namespace segwal

#endif  // SEGWAL_STRESS_WAL_STRESS_H_
