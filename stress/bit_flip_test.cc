// Bit flips, systematically: every bit of every file of a small multi-segment
// log is flipped, one at a time, and the log is opened and replayed
// in every recovery mode. The promise (wal/FORMAT.md, "Recovery"):
//   - never a crash, never a record that differs from what was written;
//   - a failure is DataLoss (or Internal) and names the file and the offset
//     (FailedPrecondition only for the format-version field of a header);
//   - kTolerateCorruptedTail never returns a silently shorter log: Open or the
//     read fails, or the only records missing are the last ones no later
//     record proves durable (a torn-tail look-alike), and recovery_report()
//     names the file;
//   - kAbsoluteConsistency refuses every flip (every byte is checksummed);
//   - kPointInTimeRecovery returns a prefix, kSkipAnyCorruptedRecords a
//     subsequence, and either reports what it dropped.
// A second test flips bits under an open WAL, between Open and a read: the
// read fails with DataLoss naming file and offset, or returns the right
// records.
//
// The log is written with a Sync after every record, so every record but the
// last is proven durable by the durable LSN of the one after it.

#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "env/mem_env.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"
#include "wal/segmented_wal.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SEGWAL_FLIP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SEGWAL_FLIP_SANITIZED 1
#endif
#endif
#ifndef SEGWAL_FLIP_SANITIZED
#define SEGWAL_FLIP_SANITIZED 0
#endif

namespace segwal {
namespace {

constexpr char kDir[] = "/wal";

std::string ReadAll(Env* env, const std::string& path) {
  auto size = env->GetFileSize(path);
  EXPECT_TRUE(size.ok());
  auto f = env->NewRandomAccessFile(path);
  EXPECT_TRUE(f.ok());
  std::string buf(*size, '\0');
  absl::string_view got;
  EXPECT_TRUE((*f)->Read(0, *size, &got, buf.data()).ok());
  return std::string(got);
}

void WriteAll(Env* env, const std::string& path, const std::string& data) {
  auto f = env->NewWritableFile(path);  // MemEnv: truncates the same inode
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append(data).ok());
  ASSERT_TRUE((*f)->Close().ok());
}

struct Log {
  std::unique_ptr<Env> env = NewMemEnv();
  std::vector<WalRecord> records;             // what was written
  std::map<std::string, std::string> files;  // path -> bytes
  std::string last_segment;
};

SegmentedWalOptions Options(Env* env, RecoveryMode mode) {
  SegmentedWalOptions o;
  o.wal_dir = kDir;
  o.env = env;
  o.segment_target_size = 1500;
  o.write_buffer_size = 256;
  o.recovery_mode = mode;
  return o;
}

void BuildLog(Log* log, uint64_t seed) {
  testutil::Random rnd(seed);
  auto wal = SegmentedWal::Open(
      Options(log->env.get(), RecoveryMode::kTolerateCorruptedTail));
  ASSERT_TRUE(wal.ok()) << wal.status();
  for (int i = 0; i < 36; ++i) {
    WalRecord r;
    r.record_type = 1 + rnd.Uniform(5);
    r.tenant_id = rnd.Uniform(100);
    r.vshard_id = static_cast<uint32_t>(rnd.Uniform(8));
    r.database_id = rnd.Uniform(3);
    r.payload = rnd.RandomBytes(rnd.Uniform(160));
    auto lsn = (*wal)->Append(r.record_type, r.tenant_id, r.vshard_id,
                              r.database_id, r.payload);
    ASSERT_TRUE(lsn.ok());
    r.lsn = *lsn;
    log->records.push_back(r);
    ASSERT_TRUE((*wal)->Sync().ok());
  }
  wal->reset();
  auto names = log->env->GetChildren(kDir);
  ASSERT_TRUE(names.ok());
  for (const std::string& n : *names) {
    if (!absl::EndsWith(n, ".wal")) continue;
    const std::string path = absl::StrCat(kDir, "/", n);
    log->files[path] = ReadAll(log->env.get(), path);
    log->last_segment = path;  // names sort in LSN order
  }
  ASSERT_GE(log->files.size(), 4u) << "want several sealed segments";
}

void Restore(const Log& log) {
  for (const auto& [path, bytes] : log.files) WriteAll(log.env.get(), path, bytes);
  // Open may create a new segment or quarantine: remove anything else.
  auto names = log.env->GetChildren(kDir);
  for (const std::string& n : *names) {
    const std::string path = absl::StrCat(kDir, "/", n);
    if (absl::EndsWith(n, ".wal") && !log.files.count(path)) {
      (void)log.env->DeleteFile(path);
    }
  }
  auto q = log.env->GetChildren(absl::StrCat(kDir, "/quarantine"));
  if (q.ok()) {
    for (const std::string& n : *q) {
      const std::string moved = absl::StrCat(kDir, "/quarantine/", n);
      (void)log.env->DeleteFile(moved);
    }
  }
}

const char* ModeName(RecoveryMode m) {
  switch (m) {
    case RecoveryMode::kTolerateCorruptedTail: return "kTolerateCorruptedTail";
    case RecoveryMode::kAbsoluteConsistency: return "kAbsoluteConsistency";
    case RecoveryMode::kPointInTimeRecovery: return "kPointInTimeRecovery";
    case RecoveryMode::kSkipAnyCorruptedRecords: return "kSkipAnyCorruptedRecords";
  }
  return "?";
}

// "" if `s` is an acceptable report of damage in `path`.
std::string CheckError(const absl::Status& s, const std::string& path,
                       uint64_t offset) {
  const std::string msg(s.message());
  const bool version_field = offset >= 8 && offset < 12;
  if (!absl::IsDataLoss(s) && !absl::IsInternal(s) &&
      !(version_field && absl::IsFailedPrecondition(s))) {
    return "unexpected code: " + s.ToString();
  }
  const std::string name = path.substr(path.rfind('/') + 1);
  if (!absl::StrContains(msg, name)) return "does not name the file: " + msg;
  if (!absl::StrContains(msg, "offset") && !absl::StrContains(msg, "missing") &&
      !version_field) {
    return "does not give an offset: " + msg;
  }
  return "";
}

struct FlipStats {
  uint64_t flips = 0;
  uint64_t open_failed = 0;
  uint64_t read_failed = 0;
  uint64_t intact = 0;
  uint64_t shorter_reported = 0;
};

TEST(BitFlipTest, EveryByteOfEveryFileInEveryRecoveryMode) {
  const uint64_t seed = testutil::TestSeed(0xb17f);
  Log log;
  BuildLog(&log, seed);
  if (HasFatalFailure()) return;
  const uint64_t kBitsPerByte = SEGWAL_FLIP_SANITIZED ? 1 : 8;
  const uint64_t stride = SEGWAL_FLIP_SANITIZED ? 2 : 1;
  const RecoveryMode modes[] = {
      RecoveryMode::kTolerateCorruptedTail, RecoveryMode::kAbsoluteConsistency,
      RecoveryMode::kPointInTimeRecovery,
      RecoveryMode::kSkipAnyCorruptedRecords};
  const size_t n = log.records.size();
  uint64_t total_flips = 0;
  int failures = 0;
  for (RecoveryMode mode : modes) {
    FlipStats st;
    for (const auto& [path, bytes] : log.files) {
      for (uint64_t at = 0; at < bytes.size() * kBitsPerByte && failures < 20;
           at += stride) {
        // Every bit of every byte (one bit per byte, varying, when sanitized).
        const uint64_t off = at / kBitsPerByte;
        const int bit = kBitsPerByte == 8 ? static_cast<int>(at % 8)
                                          : static_cast<int>((off * 5 + 3) % 8);
        Restore(log);
        std::string flipped = bytes;
        flipped[off] ^= static_cast<char>(1 << bit);
        WriteAll(log.env.get(), path, flipped);
        ++st.flips;
        const std::string where =
            absl::StrCat(ModeName(mode), ": flip of bit ", bit, " in ", path,
                         " at offset ", off, " (seed ", seed, "): ");
        auto wal = SegmentedWal::Open(Options(log.env.get(), mode));
        if (!wal.ok()) {
          ++st.open_failed;
          const std::string bad = CheckError(wal.status(), path, off);
          if (!bad.empty()) {
            ADD_FAILURE() << where << "Open: " << bad;
            ++failures;
          }
          continue;
        }
        if (mode == RecoveryMode::kAbsoluteConsistency) {
          ADD_FAILURE() << where << "Open succeeded in kAbsoluteConsistency";
          ++failures;
          continue;
        }
        auto got = (*wal)->Replay();
        if (!got.ok()) {
          ++st.read_failed;
          const std::string bad = CheckError(got.status(), path, off);
          if (!bad.empty()) {
            ADD_FAILURE() << where << "Replay: " << bad;
            ++failures;
          }
          continue;
        }
        // Every record returned is the one written at its LSN.
        bool wrong = false;
        uint64_t prev = 0;
        for (const WalRecord& r : *got) {
          if (r.lsn == 0 || r.lsn > n || !(r == log.records[r.lsn - 1]) ||
              r.lsn <= prev) {
            ADD_FAILURE() << where << "LSN " << r.lsn
                          << " is not the record written there";
            wrong = true;
            break;
          }
          prev = r.lsn;
        }
        if (wrong) {
          ++failures;
          continue;
        }
        const bool contiguous_prefix =
            got->empty() ? true
                         : (got->front().lsn == 1 &&
                            got->back().lsn == got->size());
        if (got->size() == n) {
          ++st.intact;
          continue;
        }
        const auto& drops = (*wal)->recovery_report().drops;
        bool named = false;
        for (const RecoveryDrop& d : drops) named |= d.file == path;
        if (!named) {
          ADD_FAILURE() << where << got->size() << " of " << n
                        << " records, and recovery_report() names no drop in "
                           "the damaged file";
          ++failures;
          continue;
        }
        if (mode == RecoveryMode::kTolerateCorruptedTail ||
            mode == RecoveryMode::kPointInTimeRecovery) {
          if (!contiguous_prefix) {
            ADD_FAILURE() << where << "not a prefix of the log";
            ++failures;
            continue;
          }
        }
        if (mode == RecoveryMode::kTolerateCorruptedTail &&
            (path != log.last_segment || got->size() + 1 < n)) {
          ADD_FAILURE() << where << "kTolerateCorruptedTail returned "
                        << got->size() << " of " << n
                        << " records: only the unproven last record may go";
          ++failures;
          continue;
        }
        ++st.shorter_reported;
      }
    }
    printf("%s: %" PRIu64 " flips: Open failed %" PRIu64 ", read failed %" PRIu64
           ", intact %" PRIu64 ", shorter and reported %" PRIu64 "\n",
           ModeName(mode), st.flips, st.open_failed, st.read_failed, st.intact,
           st.shorter_reported);
    total_flips += st.flips;
  }
  printf("SEGWAL_STATS bit_flips=%" PRIu64 "\n", total_flips);
}

TEST(BitFlipTest, FlipsUnderAnOpenWalFailReadsNamingFileAndOffset) {
  const uint64_t seed = testutil::TestSeed(0xf11b);
  Log log;
  BuildLog(&log, seed);
  if (HasFatalFailure()) return;
  auto wal = SegmentedWal::Open(
      Options(log.env.get(), RecoveryMode::kTolerateCorruptedTail));
  ASSERT_TRUE(wal.ok()) << wal.status();
  const size_t n = log.records.size();
  testutil::Random rnd(seed);
  uint64_t flips = 0, failed = 0;
  int failures = 0;
  for (const auto& [path, bytes] : log.files) {
    if (path == log.last_segment) continue;  // the WAL appends there
    for (uint64_t off = 0; off < bytes.size() && failures < 20;
         off += SEGWAL_FLIP_SANITIZED ? 3 : 1) {
      std::string flipped = bytes;
      flipped[off] ^= static_cast<char>(1 << (off % 8));
      WriteAll(log.env.get(), path, flipped);
      ++flips;
      const uint64_t from = 1 + rnd.Uniform(n);
      const std::string where = absl::StrCat("flip in ", path, " at offset ",
                                             off, ", reading from LSN ", from,
                                             " (seed ", seed, "): ");
      auto got = (*wal)->ReplayFrom(from);
      if (!got.ok()) {
        ++failed;
        const std::string bad = CheckError(got.status(), path, off);
        if (!bad.empty()) {
          ADD_FAILURE() << where << bad;
          ++failures;
        }
      } else if (got->size() != n - from + 1) {
        ADD_FAILURE() << where << "returned " << got->size() << " records, not "
                      << n - from + 1 << ", with an OK status";
        ++failures;
      } else {
        for (const WalRecord& r : *got) {
          if (!(r == log.records[r.lsn - 1])) {
            ADD_FAILURE() << where << "LSN " << r.lsn << " differs";
            ++failures;
            break;
          }
        }
      }
      WriteAll(log.env.get(), path, bytes);
    }
  }
  printf("flips under an open WAL: %" PRIu64 " flips, %" PRIu64
         " reads failed (the rest hit bytes the read does not need)\n",
         flips, failed);
  printf("SEGWAL_STATS bit_flips=%" PRIu64 "\n", flips);
}

// A misdirected write: the frame of a later record of the same segment lands
// on an earlier record's place (valid checksums, wrong LSN). Recovery and every
// reader must agree: never the copy at the wrong place, never a silently
// shorter log. Frames all have the same size here, so the layout stays intact.
TEST(MisdirectedWriteTest, LaterFrameOverAnEarlierOneOfTheSameSegment) {
  for (RecoveryMode mode :
       {RecoveryMode::kTolerateCorruptedTail, RecoveryMode::kAbsoluteConsistency,
        RecoveryMode::kPointInTimeRecovery,
        RecoveryMode::kSkipAnyCorruptedRecords}) {
    for (bool last_segment : {false, true}) {
      SCOPED_TRACE(absl::StrCat(ModeName(mode), last_segment ? ", last segment"
                                                             : ", sealed segment"));
      std::unique_ptr<Env> env = NewMemEnv();
      SegmentedWalOptions o = Options(env.get(), mode);
      o.segment_target_size = 1000;
      std::vector<std::string> payloads;
      {
        auto wal = SegmentedWal::Open(o);
        ASSERT_TRUE(wal.ok()) << wal.status();
        // At least three sealed segments, and six records in the active one.
        for (int i = 0; i < 30 || (*wal)->next_lsn() -
                                          (*wal)->active_segment_first_lsn() <
                                      6;
             ++i) {
          payloads.push_back(std::string(44, static_cast<char>('a' + i % 26)));
          ASSERT_TRUE((*wal)->Append(1, 2, 3, 4, payloads.back()).ok());
          ASSERT_TRUE((*wal)->Sync().ok());
        }
      }
      auto names = env->GetChildren(kDir);
      ASSERT_TRUE(names.ok());
      std::vector<std::string> segs;
      for (const std::string& n : *names) {
        if (absl::EndsWith(n, ".wal")) segs.push_back(absl::StrCat(kDir, "/", n));
      }
      ASSERT_GE(segs.size(), 3u);
      const std::string path = last_segment ? segs.back() : segs[1];
      std::string bytes = ReadAll(env.get(), path);
      const size_t frame = 56 + 44;
      ASSERT_GE(bytes.size(), 64 + 4 * frame);
      // Record 1 of the segment replaced by a copy of record 4.
      bytes.replace(64 + frame, frame, bytes.substr(64 + 4 * frame, frame));
      WriteAll(env.get(), path, bytes);

      auto wal = SegmentedWal::Open(o);
      if (!wal.ok()) {
        EXPECT_EQ(CheckError(wal.status(), path, 64 + frame), "");
        continue;
      }
      EXPECT_NE(mode, RecoveryMode::kAbsoluteConsistency);
      auto got = (*wal)->Replay();
      if (!got.ok()) {
        EXPECT_EQ(CheckError(got.status(), path, 64 + frame), "");
        continue;
      }
      EXPECT_EQ(got->size(), (*wal)->recovery_report().records_recovered)
          << "readers and recovery disagree";
      uint64_t prev = 0;
      for (const WalRecord& r : *got) {
        ASSERT_GT(r.lsn, prev) << "LSNs out of order: the misplaced copy came back";
        ASSERT_EQ(r.payload, payloads[r.lsn - 1]) << "LSN " << r.lsn;
        prev = r.lsn;
      }
      if (got->size() < payloads.size()) {
        EXPECT_FALSE((*wal)->recovery_report().drops.empty())
            << "records missing without a report";
      }
      if (mode == RecoveryMode::kSkipAnyCorruptedRecords) {
        EXPECT_EQ(got->size() + 1, payloads.size())
            << "exactly the overwritten record is missing";
      }
    }
  }
}

}  // namespace
}  // namespace segwal
