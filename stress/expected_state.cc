#include "stress/expected_state.h"

#include "testutil/log_bounds.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "crypto/crc32c.h"
#include "testutil/log_bounds.h"
#include "util/coding.h"

namespace segwal {
namespace stress {
namespace {

constexpr size_t kSlotSize = 4096;
constexpr char kSlotMagic[8] = {'S', 'W', 'S', 'T', 'A', 'T', 'E', '1'};
constexpr size_t kPinSize = 28;
constexpr size_t kFixedSize = 48;
static_assert(kFixedSize + ExpectedState::kMaxPins * kPinSize + 4 <= kSlotSize);

absl::Status Errno(const std::string& what, const std::string& path) {
  const int err = errno;
  const std::string msg = absl::StrCat(what, " ", path, ": ", strerror(err));
  return err == ENOSPC ? absl::ResourceExhaustedError(msg)
                       : absl::InternalError(msg);
}

std::string EncodeSlot(const ExpectedState& st, uint64_t counter) {
  std::string s(kSlotMagic, 8);
  PutFixed64(&s, counter);
  PutFixed64(&s, st.seed);
  PutFixed32(&s, st.generation);
  PutFixed32(&s, static_cast<uint32_t>(st.pins.size()));
  PutFixed64(&s, st.acked_lsn);
  PutFixed64(&s, st.truncate_floor);
  for (const Pin& p : st.pins) {
    PutFixed64(&s, p.lsn);
    PutFixed32(&s, p.id.generation);
    PutFixed32(&s, p.id.thread);
    PutFixed64(&s, p.id.seq);
    PutFixed32(&s, p.crc);
  }
  s.resize(kSlotSize - 4, '\0');
  PutFixed32(&s, crc32c::Value(s));
  return s;
}

bool DecodeSlot(const char* p, ExpectedState* st, uint64_t* counter) {
  if (memcmp(p, kSlotMagic, 8) != 0) return false;
  if (DecodeFixed32(p + kSlotSize - 4) != crc32c::Value(p, kSlotSize - 4)) return false;
  // Layout: magic 0, counter 8, seed 16, generation 24, pin count 28,
  // acked 32, floor 40, pins from 48 (28 bytes each), CRC in the last 4.
  const uint32_t pins = DecodeFixed32(p + 28);
  if (pins > ExpectedState::kMaxPins) return false;
  *counter = DecodeFixed64(p + 8);
  st->seed = DecodeFixed64(p + 16);
  st->generation = DecodeFixed32(p + 24);
  st->pins.clear();
  st->acked_lsn = DecodeFixed64(p + 32);
  st->truncate_floor = DecodeFixed64(p + 40);
  const char* q = p + kFixedSize;
  for (uint32_t i = 0; i < pins; ++i, q += kPinSize) {
    Pin pin;
    pin.lsn = DecodeFixed64(q);
    pin.id.generation = DecodeFixed32(q + 8);
    pin.id.thread = DecodeFixed32(q + 12);
    pin.id.seq = DecodeFixed64(q + 16);
    pin.crc = DecodeFixed32(q + 24);
    st->pins.push_back(pin);
  }
  return true;
}

}  // namespace

bool ExpectedState::Acknowledge(const Pin& pin, uint64_t durable_lsn) {
  const uint64_t acked = std::max({acked_lsn, pin.lsn, durable_lsn});
  bool changed = acked != acked_lsn;
  acked_lsn = acked;
  auto it = std::lower_bound(
      pins.begin(), pins.end(), pin.lsn,
      [](const Pin& p, uint64_t lsn) { return p.lsn < lsn; });
  if (it == pins.end() || it->lsn != pin.lsn) {
    if (pins.size() < kMaxPins || it != pins.begin()) {
      pins.insert(it, pin);
      if (pins.size() > kMaxPins) pins.erase(pins.begin());
      changed = true;
    }
  }
  return changed;
}

ExpectedStateFile::~ExpectedStateFile() { close(fd_); }

absl::StatusOr<std::unique_ptr<ExpectedStateFile>> ExpectedStateFile::Open(
    const std::string& path, const ExpectedState& initial, bool* created) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  *created = false;
  if (fd < 0 && errno == ENOENT) {
    // Create under a temporary name, fill both slots, sync, then rename and
    // sync the directory: the state file never exists half-written.
    const std::string tmp = path + ".tmp";
    fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("create", tmp);
    // Slot i holds the states whose counter is i modulo 2.
    const std::string both = EncodeSlot(initial, 0) + EncodeSlot(initial, 1);
    if (pwrite(fd, both.data(), both.size(), 0) !=
            static_cast<ssize_t>(both.size()) ||
        fdatasync(fd) != 0) {
      absl::Status s = Errno("write", tmp);
      close(fd);
      return s;
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) {
      absl::Status s = Errno("rename", tmp);
      close(fd);
      return s;
    }
    const std::string dir =
        path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
    const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
      absl::Status s = Errno("sync directory", dir);
      if (dfd >= 0) close(dfd);
      close(fd);
      return s;
    }
    close(dfd);
    *created = true;
  } else if (fd < 0) {
    return Errno("open", path);
  }
  auto file = std::unique_ptr<ExpectedStateFile>(new ExpectedStateFile(path, fd));
  auto loaded = file->Load();  // also picks up the slot counter
  if (!loaded.ok()) return loaded.status();
  return file;
}

absl::StatusOr<ExpectedState> ExpectedStateFile::Load() {
  std::string buf(2 * kSlotSize, '\0');
  const ssize_t n = pread(fd_, buf.data(), buf.size(), 0);
  if (n < 0) return Errno("read", path_);
  buf.resize(static_cast<size_t>(n));
  ExpectedState best;
  bool found = false;
  for (size_t slot = 0; slot < 2; ++slot) {
    if (buf.size() < (slot + 1) * kSlotSize) break;
    ExpectedState st;
    uint64_t counter;
    if (!DecodeSlot(buf.data() + slot * kSlotSize, &st, &counter)) continue;
    if (!found || counter > counter_) {
      best = st;
      counter_ = counter;
      found = true;
    }
  }
  if (!found) {
    return absl::DataLossError(
        absl::StrCat("expected-state file ", path_, " has no valid slot"));
  }
  return best;
}

absl::Status ExpectedStateFile::Save(const ExpectedState& state) {
  const uint64_t counter = counter_ + 1;
  const std::string slot = EncodeSlot(state, counter);
  // Slot (counter % 2): never the one holding the latest good state.
  const off_t offset = static_cast<off_t>((counter % 2) * kSlotSize);
  if (pwrite(fd_, slot.data(), slot.size(), offset) !=
      static_cast<ssize_t>(slot.size())) {
    return Errno("write", path_);
  }
  if (fdatasync(fd_) != 0) return Errno("fdatasync", path_);
  counter_ = counter;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------

LogVerifier::LogVerifier(const ExpectedState& state, uint32_t max_generation)
    : state_(state), max_generation_(max_generation) {
  for (const Pin& p : state.pins) pins_[p.lsn] = p;
}

void LogVerifier::Fail(uint64_t lsn, std::string error) {
  if (!result_.ok) return;
  result_.ok = false;
  result_.first_bad_lsn = lsn;
  result_.error = std::move(error);
}

void LogVerifier::Add(const WalRecord& r) {
  if (!result_.ok) return;
  if (result_.records > 0 && r.lsn != result_.last_lsn + 1) {
    ++result_.phantom;
    Fail(result_.last_lsn + 1,
         absl::StrCat("LSN ", r.lsn, " follows LSN ", result_.last_lsn,
                      ": LSNs are not contiguous"));
    return;
  }
  if (result_.records == 0) result_.first_lsn = r.lsn;
  result_.records++;
  result_.last_lsn = r.lsn;

  DecodedRecord d;
  const std::string bad = DecodeRecord(r, &d);
  if (!bad.empty()) {
    ++result_.phantom;
    Fail(r.lsn, absl::StrCat("LSN ", r.lsn, ": ", bad));
    return;
  }
  const std::string who = absl::StrCat("LSN ", r.lsn, " (generation ",
                                       d.id.generation, " thread ",
                                       d.id.thread, " seq ", d.id.seq, ")");
  if (d.seed != state_.seed) {
    ++result_.phantom;
    Fail(r.lsn, absl::StrCat(who, ": written with seed ", d.seed,
                             ", this run's seed is ", state_.seed));
    return;
  }
  if (d.id.generation > max_generation_ ||
      d.id.generation < last_generation_) {
    ++result_.phantom;
    Fail(r.lsn, absl::StrCat(who, ": generation out of order (previous ",
                             last_generation_, ", newest possible ",
                             max_generation_, ")"));
    return;
  }
  last_generation_ = d.id.generation;
  auto key = std::make_pair(d.id.generation, d.id.thread);
  auto chain = chains_.find(key);
  if (chain != chains_.end()) {
    const auto [last_seq, last_lsn] = chain->second;
    if (d.id.seq != last_seq + 1 || d.prev_lsn != last_lsn) {
      ++result_.phantom;
      Fail(r.lsn, absl::StrCat(who, ": previous record of this thread was seq ",
                               last_seq, " at LSN ", last_lsn,
                               ", this one says seq ", d.id.seq - 1,
                               " at LSN ", d.prev_lsn));
      return;
    }
  } else if (d.id.seq != 0 && d.prev_lsn >= result_.first_lsn) {
    // The thread's previous record should be in the part of the log read.
    ++result_.phantom;
    Fail(r.lsn, absl::StrCat(who, ": its predecessor at LSN ", d.prev_lsn,
                             " is not in the log"));
    return;
  }
  chains_[key] = {d.id.seq, r.lsn};

  auto pin = pins_.find(r.lsn);
  if (pin != pins_.end()) {
    if (!(pin->second.id == d.id) || pin->second.crc != d.crc) {
      ++result_.phantom;
      ++result_.acked_lost;
      Fail(r.lsn, absl::StrCat(who, ": acknowledged record (generation ",
                               pin->second.id.generation, " thread ",
                               pin->second.id.thread, " seq ",
                               pin->second.id.seq, ") is not there"));
      return;
    }
    pins_.erase(pin);
  }
}

VerifyResult LogVerifier::Finish(uint64_t next_lsn, bool check_durable) {
  VerifyResult& r = result_;
  if (!r.ok) return r;
  // The bounds: the rule the in-process crash tests apply too
  // (testutil/log_bounds.h). wal_stress knows the checkpoints it asked for,
  // not which truncations completed: first_min is unknown.
  testutil::RecoveredLogBounds got;
  got.empty = r.records == 0;
  got.first = r.first_lsn;
  got.last = r.last_lsn;
  got.next_lsn = next_lsn;
  testutil::ExpectedLogBounds want;
  want.first_min = 0;
  want.first_max = std::max<uint64_t>(1, state_.truncate_floor);
  want.acked = check_durable ? state_.acked_lsn : 0;
  testutil::LogBoundsVerdict v = testutil::CheckLogBounds(got, want);
  if (!v.ok) {
    r.acked_lost = v.acked_lost;
    Fail(v.first_bad_lsn, std::move(v.error));
    return r;
  }
  if (!check_durable) return r;
  const uint64_t required_from = want.first_max;
  for (const auto& [lsn, pin] : pins_) {
    if (lsn < required_from) continue;
    ++r.acked_lost;
    Fail(lsn, absl::StrCat("acknowledged record (generation ", pin.id.generation,
                           " thread ", pin.id.thread, " seq ", pin.id.seq,
                           ") at LSN ", lsn, " was not read back"));
    return r;
  }
  return r;
}

}  // namespace stress
}  // namespace segwal
