// What wal_stress knows the log must contain, kept where a crash cannot take
// it, and the check of a log read back against it.
//
// ExpectedState records only what the WAL acknowledged: the highest LSN covered
// by a Sync that returned OK (or by durable_lsn() read after it), the identity
// of the last acknowledged records at their LSNs ("pins"), the highest
// checkpoint ever passed to TruncateBefore (recorded BEFORE the call, so a
// crash in the middle of a truncation never makes the floor look lower than it
// may be), and the generation (recorded before the generation appends anything).
//
// ExpectedStateFile keeps it in a file of its own, written with pwrite and
// fdatasync into one of two checksummed slots in turn, so a crash during a save
// leaves the previous state readable: a save is atomic and durable when it
// returns.
//
// LogVerifier checks records streamed in LSN order (stress/stress_record.h):
//   - LSNs are contiguous;
//   - every payload checks out and matches its header fields (no phantom or
//     altered record);
//   - generations never go back, and none is newer than the state knows;
//   - each writer thread's records form an unbroken chain (seq + 1, and the
//     previous-record LSN points at the previous record);
// and, for a whole log after recovery (Finish with check_durable):
//   - it starts at or below the truncation floor and reaches the acknowledged
//     LSN, and each pin's record is at its LSN.
//
// Thread safety: ExpectedStateFile and LogVerifier are used by one thread at a
// time (wal_stress serialises saves under its own lock).

#ifndef SEGWAL_STRESS_EXPECTED_STATE_H_
#define SEGWAL_STRESS_EXPECTED_STATE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "stress/stress_record.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace stress {

// An acknowledged record: the record `id`, with payload CRC `crc`, is at `lsn`.
struct Pin {
  uint64_t lsn = 0;
  RecordId id;
  uint32_t crc = 0;
};

struct ExpectedState {
  static constexpr size_t kMaxPins = 32;

  uint64_t seed = 0;            // base seed of the whole run
  uint32_t generation = 0;      // last generation started
  uint64_t acked_lsn = 0;       // every LSN <= this was acknowledged durable
  uint64_t truncate_floor = 0;  // highest checkpoint passed to TruncateBefore
  std::vector<Pin> pins;        // the latest acknowledged records, ascending

  // Raises acked_lsn to max(pin.lsn, durable_lsn) and pins `pin`, keeping the
  // kMaxPins highest. False if that changed nothing.
  bool Acknowledge(const Pin& pin, uint64_t durable_lsn);
};

// Where an ExpectedState lives between crashes.
class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual absl::StatusOr<ExpectedState> Load() = 0;
  // Durable (as far as the store can be) when it returns OK.
  virtual absl::Status Save(const ExpectedState& state) = 0;
};

// In memory, for in-process crash cycles (the crash is simulated below it).
class MemoryStateStore : public StateStore {
 public:
  explicit MemoryStateStore(ExpectedState initial) : state_(std::move(initial)) {}
  absl::StatusOr<ExpectedState> Load() override { return state_; }
  absl::Status Save(const ExpectedState& state) override {
    state_ = state;
    return absl::OkStatus();
  }

 private:
  ExpectedState state_;
};

// The two-slot state file described above.
class ExpectedStateFile : public StateStore {
 public:
  ~ExpectedStateFile() override;
  ExpectedStateFile(const ExpectedStateFile&) = delete;
  ExpectedStateFile& operator=(const ExpectedStateFile&) = delete;

  // Opens `path`; if it does not exist, creates it holding `initial` (synced,
  // its directory synced). *created says which happened.
  static absl::StatusOr<std::unique_ptr<ExpectedStateFile>> Open(
      const std::string& path, const ExpectedState& initial, bool* created);
  // The latest state saved (the valid slot with the higher counter).
  absl::StatusOr<ExpectedState> Load() override;
  // Durable when it returns OK.
  absl::Status Save(const ExpectedState& state) override;

 private:
  ExpectedStateFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
  uint64_t counter_ = 0;
};

struct VerifyResult {
  bool ok = true;
  uint64_t first_bad_lsn = 0;  // valid when !ok
  std::string error;           // what is wrong, naming the LSN
  uint64_t records = 0;
  uint64_t first_lsn = 0;  // first record seen (0: none)
  uint64_t last_lsn = 0;   // last record seen (0: none)
  // Acknowledged records missing from the log, and records that are not any
  // record wal_stress appended (or sit where it did not append them).
  uint64_t acked_lost = 0;
  uint64_t phantom = 0;
};

class LogVerifier {
 public:
  // `max_generation`: records of a later generation are phantoms.
  LogVerifier(const ExpectedState& state, uint32_t max_generation);

  // Checks the next record of the stream. After the first failure, further
  // records are ignored.
  void Add(const WalRecord& record);
  // `next_lsn`: the LSN the WAL says comes next (0: unknown). With
  // `check_durable`, the log must also hold everything acknowledged.
  VerifyResult Finish(uint64_t next_lsn, bool check_durable);

 private:
  void Fail(uint64_t lsn, std::string error);

  ExpectedState state_;
  uint32_t max_generation_;
  std::map<uint64_t, Pin> pins_;  // by LSN
  // (generation, thread) -> (last seq, its LSN)
  std::map<std::pair<uint32_t, uint32_t>, std::pair<uint64_t, uint64_t>> chains_;
  uint32_t last_generation_ = 0;
  VerifyResult result_;
};

}  // namespace stress
}  // namespace segwal

#endif  // SEGWAL_STRESS_EXPECTED_STATE_H_
