// The harness of SegmentedWal's behaviour tests (segmented_wal_test.cc and
// the theme files beside it: recovery_test, group_commit_test,
// spare_files_test, parallel_replay_test, direct_io_test): the format facts
// the damage tests need (re-derived from wal/FORMAT.md, never from the
// implementation's format code), Envs that gate syncs and note threads, and
// the fixtures. Testonly.
//
// A test file that has TEST_P(SegmentedWalEnvTest, ...) says
// SEGWAL_INSTANTIATE_ENV_TESTS() once (inside namespace segwal).

#ifndef SEGWAL_WAL_SEGMENTED_WAL_TEST_HARNESS_H_
#define SEGWAL_WAL_SEGMENTED_WAL_TEST_HARNESS_H_

#include "wal/segmented_wal.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "crypto/crc32c.h"
#include "env/env.h"
#include "env/env_wrapper.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "env/posix_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"

namespace segwal {

// Short gtest printers: a failing comparison of multi-megabyte records should
// print what differs, not the payload.
inline void PrintTo(const WalRecord& r, std::ostream* os) {
  *os << "{lsn " << r.lsn << ", type " << r.record_type << ", tenant "
      << r.tenant_id << ", vshard " << r.vshard_id << ", db " << r.database_id
      << ", payload " << r.payload.size() << " bytes crc32c "
      << crc32c::Value(r.payload) << "}";
}
inline void PrintTo(const RecoveryDrop& d, std::ostream* os) {
  *os << "{file " << d.file << ", offset " << d.offset << ", bytes " << d.bytes
      << ", reason \"" << d.reason << "\"}";
}
inline void PrintTo(const SegmentMeta& m, std::ostream* os) {
  *os << "{" << m.path << ", first_lsn " << m.first_lsn << ", size "
      << m.file_size << "}";
}
inline void PrintTo(const TruncateResult& t, std::ostream* os) {
  *os << "{segments_deleted " << t.segments_deleted << ", bytes_reclaimed "
      << t.bytes_reclaimed << "}";
}

namespace {

using ::segwal::testutil::IsOk;
using ::segwal::testutil::IsOkAndHolds;
using ::segwal::testutil::StatusIs;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// ---- The few format facts the damage tests need (wal/FORMAT.md, version 1).
// ---- "Segment header (64 bytes, at offset 0)".
constexpr uint64_t kSegmentHeaderSize = 64;
constexpr uint64_t kSegmentVersionOffset = 8;     // u32 format version
constexpr uint64_t kSegmentFirstLsnOffset = 16;   // u64 first LSN
constexpr uint64_t kSegmentSaltOffset = 24;       // 16 random bytes
constexpr uint64_t kSegmentHeaderCrcOffset = 60;  // masked CRC32C of [0, 60)
constexpr char kSegmentMagic[8] = {'s', 'e', 'g', 'w', 'a', 'l', '\x1a', '\n'};
// "Record (56-byte header, then the payload)".
constexpr uint64_t kRecordHeaderSize = 56;
constexpr uint64_t kRecordLengthOffset = 8;       // u32 payload length
constexpr uint64_t kRecordFlagsOffset = 12;       // u16 record flags
constexpr uint64_t kRecordLsnOffset = 16;         // u64 LSN
constexpr uint64_t kRecordDurableLsnOffset = 24;  // u64 writer's durable LSN
constexpr uint16_t kRecordFlagFooter = 1u << 15;  // the frame is a footer
// "Directory": segments are named by their first LSN, 20 digits, ".wal".
constexpr size_t kSegmentNameDigits = 20;

// Payload size of the fixed-size records most damage tests use: each framed
// record is then kFrameSize bytes and offsets are easy to reason about.
constexpr size_t kPayload = 100;
constexpr uint64_t kFrameSize = kRecordHeaderSize + kPayload;

// ---- Little-endian access to file bytes. ----
inline uint64_t GetLE(const std::string& bytes, uint64_t offset, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(bytes[offset + i]);
  }
  return v;
}
inline void PutLE(std::string* bytes, uint64_t offset, int width, uint64_t v) {
  for (int i = 0; i < width; ++i) {
    (*bytes)[offset + i] = static_cast<char>(v >> (8 * i));
  }
}

inline std::string SegmentName(uint64_t first_lsn) {
  std::string digits = std::to_string(first_lsn);
  return std::string(kSegmentNameDigits - digits.size(), '0') + digits + ".wal";
}

// Recomputes the header CRC of the record frame at `offset` after a test
// edited its header fields, so the frame checks out as written by this
// segment (FORMAT.md: seed = crc32c(salt ++ first LSN); header CRC = masked
// Extend(seed, bytes [8, 56))).
inline void ResealRecordHeader(std::string* bytes, uint64_t offset) {
  const std::string seed_input = bytes->substr(kSegmentSaltOffset, 16) +
                                 bytes->substr(kSegmentFirstLsnOffset, 8);
  const uint32_t seed = crc32c::Value(seed_input);
  const uint32_t header_crc =
      crc32c::Extend(seed, bytes->data() + offset + 8, kRecordHeaderSize - 8);
  PutLE(bytes, offset, 4, crc32c::Mask(header_crc));
}

// One framed record (or footer) found by walking a segment's bytes. Trusts the
// stored lengths: use on undamaged files only.
struct Frame {
  uint64_t offset = 0;
  uint64_t size = 0;  // header + payload
  uint64_t lsn = 0;
  uint64_t durable_lsn = 0;
  bool footer = false;
};

inline std::vector<Frame> ScanFrames(const std::string& bytes) {
  std::vector<Frame> frames;
  uint64_t off = kSegmentHeaderSize;
  while (off + kRecordHeaderSize <= bytes.size()) {
    if (GetLE(bytes, off, 4) == 0 && GetLE(bytes, off + 4, 4) == 0) break;
    Frame f;
    f.offset = off;
    f.size = kRecordHeaderSize + GetLE(bytes, off + kRecordLengthOffset, 4);
    f.lsn = GetLE(bytes, off + kRecordLsnOffset, 8);
    f.durable_lsn = GetLE(bytes, off + kRecordDurableLsnOffset, 8);
    f.footer =
        (GetLE(bytes, off + kRecordFlagsOffset, 2) & kRecordFlagFooter) != 0;
    if (off + f.size > bytes.size()) break;
    frames.push_back(f);
    off += f.size;
    if (f.footer) break;
  }
  return frames;
}

// The record frames (not the footer) of a segment's bytes.
inline std::vector<Frame> RecordFrames(const std::string& bytes) {
  std::vector<Frame> frames = ScanFrames(bytes);
  if (!frames.empty() && frames.back().footer) frames.pop_back();
  return frames;
}

// Compares record lists and says where they first differ.
::testing::AssertionResult SameRecords(const std::vector<WalRecord>& got,
                                       const std::vector<WalRecord>& want) {
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (!(got[i] == want[i])) {
      std::ostringstream os;
      os << "record " << i << " differs: got ";
      PrintTo(got[i], &os);
      os << ", want ";
      PrintTo(want[i], &os);
      return ::testing::AssertionFailure() << os.str();
    }
  }
  if (got.size() != want.size()) {
    std::ostringstream os;
    os << "got " << got.size() << " records, want " << want.size();
    if (!got.empty())
      os << "; got LSNs " << got.front().lsn << ".." << got.back().lsn;
    if (!want.empty()) {
      os << "; want LSNs " << want.front().lsn << ".." << want.back().lsn;
    }
    return ::testing::AssertionFailure() << os.str();
  }
  return ::testing::AssertionSuccess();
}

// Records of `all` with from <= LSN < to.
inline std::vector<WalRecord> Slice(const std::vector<WalRecord>& all, uint64_t from,
                             uint64_t to = UINT64_MAX) {
  std::vector<WalRecord> out;
  for (const WalRecord& r : all) {
    if (r.lsn >= from && r.lsn < to) out.push_back(r);
  }
  return out;
}

MATCHER_P3(DropAt, file, offset, bytes,
           absl::StrCat("a drop in ", file, " at offset ", offset, " of ",
                        bytes, " bytes, with a reason")) {
  return arg.file == file && arg.offset == static_cast<uint64_t>(offset) &&
         arg.bytes == static_cast<uint64_t>(bytes) && !arg.reason.empty();
}
MATCHER_P2(DropStartingAt, file, offset,
           absl::StrCat("a drop in ", file, " at offset ", offset,
                        ", with a reason")) {
  return arg.file == file && arg.offset == static_cast<uint64_t>(offset) &&
         !arg.reason.empty();
}
MATCHER_P2(Truncated, segments, bytes,
           absl::StrCat(segments, " segments deleted, ", bytes,
                        " bytes reclaimed")) {
  return arg.segments_deleted == static_cast<uint64_t>(segments) &&
         arg.bytes_reclaimed == static_cast<uint64_t>(bytes);
}

// ---- An Env that can hold one WritableFile::Sync until the test lets it go,
// so a test can line callers up behind a sync in flight (group commit). ----
class SyncGateEnv : public EnvWrapper {
 public:
  explicit SyncGateEnv(Env* base) : EnvWrapper(base), base_(base) {}

  // The next WritableFile::Sync (of a file whose path contains
  // `path_substring`) blocks (before reaching base) until Release().
  void Arm(std::string path_substring = "") {
    std::lock_guard<std::mutex> l(mu_);
    armed_ = true;
    filter_ = std::move(path_substring);
  }
  void WaitUntilHolding() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return holding_; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    released_ = true;
    cv_.notify_all();
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    return Wrap(path, base_->NewWritableFile(path));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return Wrap(path, base_->NewAppendableFile(path));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFileWithOptions(
      const std::string& path, const FileOptions& options) override {
    return Wrap(path, base_->NewWritableFileWithOptions(path, options));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path, uint64_t offset) override {
    return Wrap(path, base_->ReopenWritableFile(path, offset));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFileWithOptions(
      const std::string& path, uint64_t offset,
      const FileOptions& options) override {
    return Wrap(path,
                base_->ReopenWritableFileWithOptions(path, offset, options));
  }

 private:
  class GatedFile : public WritableFile {
   public:
    GatedFile(SyncGateEnv* env, std::string path,
              std::unique_ptr<WritableFile> base)
        : env_(env), path_(std::move(path)), base_(std::move(base)) {}
    absl::Status Append(absl::string_view data) override {
      return base_->Append(data);
    }
    absl::Status Flush() override { return base_->Flush(); }
    absl::Status Sync() override {
      env_->MaybeHold(path_);
      return base_->Sync();
    }
    absl::Status Close() override { return base_->Close(); }
    uint64_t Size() const override { return base_->Size(); }
    absl::Status Allocate(uint64_t offset, uint64_t len) override {
      return base_->Allocate(offset, len);
    }

   private:
    SyncGateEnv* env_;
    const std::string path_;
    std::unique_ptr<WritableFile> base_;
  };

  absl::StatusOr<std::unique_ptr<WritableFile>> Wrap(
      const std::string& path,
      absl::StatusOr<std::unique_ptr<WritableFile>> file) {
    if (!file.ok()) return file.status();
    return std::unique_ptr<WritableFile>(
        new GatedFile(this, path, std::move(*file)));
  }

  void MaybeHold(const std::string& path) {
    std::unique_lock<std::mutex> l(mu_);
    if (!armed_ || path.find(filter_) == std::string::npos) return;
    armed_ = false;
    holding_ = true;
    cv_.notify_all();
    cv_.wait(l, [this] { return released_; });
  }

  Env* const base_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  std::string filter_;
  bool holding_ = false;
  bool released_ = false;
};

// ---- SyncGateEnv's forwarding, noting which threads open segment files for
// reading: shows whether a replay was decoded on one thread or several. ----
class ReadThreadsEnv : public SyncGateEnv {
 public:
  using SyncGateEnv::SyncGateEnv;

  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    if (absl::EndsWith(path, ".wal")) {
      std::lock_guard<std::mutex> l(mu_);
      readers_.insert(std::this_thread::get_id());
    }
    return SyncGateEnv::NewRandomAccessFile(path);
  }
  // Threads that opened a segment for reading since the last call.
  size_t TakeReaderThreadCount() {
    std::lock_guard<std::mutex> l(mu_);
    const size_t n = readers_.size();
    readers_.clear();
    return n;
  }

 private:
  std::mutex mu_;
  std::set<std::thread::id> readers_;
};

// ---- Fixtures. ----

enum class EnvKind { kMem, kPosix };

class WalTestBase : public ::testing::Test {
 protected:
  WalTestBase() : rnd_(testutil::TestSeed(0x5e6a1)) {}

  // Called from the derived constructor: picks the Env and directories.
  void UseEnv(EnvKind kind) {
    if (kind == EnvKind::kPosix) {
      temp_dir_ = std::make_unique<testutil::TempDir>();
      env_ = Env::Default();
      dir_ = temp_dir_->Join("wal");
      other_dir_ = temp_dir_->Join("other_wal");
    } else {
      mem_env_ = NewMemEnv();
      env_ = mem_env_.get();
      dir_ = "/wal";
      other_dir_ = "/other_wal";
    }
  }

  SegmentedWalOptions Options() const {
    SegmentedWalOptions options;
    options.wal_dir = dir_;
    options.env = env_;
    return options;
  }
  // Segments of about `target` bytes: several rollovers with a few dozen
  // records.
  SegmentedWalOptions SmallSegments(uint64_t target = 1024) const {
    SegmentedWalOptions options = Options();
    options.segment_target_size = target;
    return options;
  }

  std::string SegmentPath(uint64_t first_lsn) const {
    return dir_ + "/" + SegmentName(first_lsn);
  }
  std::string QuarantinePath(uint64_t first_lsn) const {
    return dir_ + "/quarantine/" + SegmentName(first_lsn);
  }

  WalRecord RandomRecord(uint64_t lsn, size_t payload_size) {
    WalRecord r;
    r.lsn = lsn;
    r.record_type = static_cast<uint32_t>(rnd_.Next64());
    r.tenant_id = rnd_.Next64();
    r.vshard_id = static_cast<uint32_t>(rnd_.Next64());
    r.database_id = rnd_.OneIn(4) ? 0 : rnd_.Next64();
    r.payload = rnd_.RandomBytes(payload_size);
    return r;
  }

  // Appends `r` and checks it got the LSN r.lsn.
  void AppendRecord(SegmentedWal* wal, const WalRecord& r) {
    ASSERT_THAT(wal->Append(r.record_type, r.tenant_id, r.vshard_id,
                            r.database_id, r.payload),
                IsOkAndHolds(r.lsn));
  }

  // Appends `n` random records of `payload_size` bytes (random sizes below
  // 512 if payload_size is kRandomSize) and adds them to *expected.
  static constexpr size_t kRandomSize = SIZE_MAX;
  void AppendRandom(SegmentedWal* wal, int n, size_t payload_size,
                    std::vector<WalRecord>* expected) {
    for (int i = 0; i < n; ++i) {
      const size_t size =
          payload_size == kRandomSize ? rnd_.Skewed(9) : payload_size;
      WalRecord r = RandomRecord(wal->next_lsn(), size);
      ASSERT_NO_FATAL_FAILURE(AppendRecord(wal, r));
      expected->push_back(std::move(r));
    }
  }

  // Appends 300-byte records to `wal` until it has `segments` segments;
  // `firsts` gets the first LSN of each.
  void AppendUntilSegments(SegmentedWal* wal, size_t segments,
                           std::vector<WalRecord>* expected,
                           std::vector<uint64_t>* firsts) {
    firsts->assign(1, wal->active_segment_first_lsn());
    while (firsts->size() < segments) {
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal, 1, 300, expected));
      if (wal->active_segment_first_lsn() != firsts->back()) {
        firsts->push_back(wal->active_segment_first_lsn());
      }
    }
  }

  // Opens a WAL, appends n records with a Sync after each (so each record's
  // durable LSN vouches for those before it), closes it, and returns the
  // record frames of its one segment.
  void BuildLogSyncingEach(int n, std::vector<WalRecord>* expected,
                           std::vector<Frame>* frames) {
    {
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                           SegmentedWal::Open(Options()));
      for (int i = 0; i < n; ++i) {
        ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 1, kPayload, expected));
        ASSERT_OK(wal->Sync());
      }
    }
    *frames = RecordFrames(ReadAll(SegmentPath(1)));
    ASSERT_THAT(*frames, SizeIs(static_cast<size_t>(n)));
  }

  // Opens a WAL, appends n records of payload_size bytes, Syncs, records the
  // segment list, and closes it.
  void BuildLog(const SegmentedWalOptions& options, int n, size_t payload_size,
                std::vector<WalRecord>* expected,
                std::vector<SegmentMeta>* segments = nullptr) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), n, payload_size, expected));
    ASSERT_OK(wal->Sync());
    if (segments != nullptr) {
      ASSERT_OK_AND_ASSIGN(*segments, wal->ListSegments());
    }
  }

  void ExpectReplay(const SegmentedWal& wal,
                    const std::vector<WalRecord>& want) {
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal.Replay());
    EXPECT_TRUE(SameRecords(got, want));
  }
  void ExpectReplayFrom(const SegmentedWal& wal, uint64_t from,
                        const std::vector<WalRecord>& all) {
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal.ReplayFrom(from));
    EXPECT_TRUE(SameRecords(got, Slice(all, from)))
        << "ReplayFrom(" << from << ")";
  }
  void ExpectIterator(const SegmentedWal& wal, uint64_t from,
                      const std::vector<WalRecord>& all) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<WalIterator> it,
                         wal.NewIterator(from));
    std::vector<WalRecord> got;
    for (; it->Valid(); it->Next()) got.push_back(it->record());
    EXPECT_OK(it->status());
    EXPECT_TRUE(SameRecords(got, Slice(all, from)))
        << "NewIterator(" << from << ")";
  }

  // ---- Byte-level access through the Env. ----
  std::string ReadAll(const std::string& path) {
    auto file = env_->NewSequentialFile(path);
    EXPECT_OK(file.status()) << path;
    if (!file.ok()) return "";
    std::string out;
    std::string scratch(1 << 16, '\0');
    while (true) {
      absl::string_view piece;
      absl::Status s = (*file)->Read(scratch.size(), &piece, scratch.data());
      EXPECT_OK(s) << path;
      if (!s.ok() || piece.empty()) break;
      out.append(piece.data(), piece.size());
    }
    return out;
  }
  void WriteAll(const std::string& path, const std::string& bytes) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> f,
                         env_->NewWritableFile(path));
    ASSERT_OK(f->Append(bytes));
    ASSERT_OK(f->Sync());
    ASSERT_OK(f->Close());
  }
  void AppendToFile(const std::string& path, const std::string& bytes) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<WritableFile> f,
                         env_->NewAppendableFile(path));
    ASSERT_OK(f->Append(bytes));
    ASSERT_OK(f->Sync());
    ASSERT_OK(f->Close());
  }
  void CorruptByte(const std::string& path, uint64_t offset) {
    std::string bytes = ReadAll(path);
    ASSERT_LT(offset, bytes.size()) << path;
    bytes[offset] ^= 0x5a;
    ASSERT_NO_FATAL_FAILURE(WriteAll(path, bytes));
  }
  uint64_t FileSize(const std::string& path) {
    auto size = env_->GetFileSize(path);
    EXPECT_OK(size.status()) << path;
    return size.ok() ? *size : 0;
  }

  // Every file below `dir` (relative path -> bytes), recursively. The LOCK
  // file is left out: taking the lock may create it, which is not a change to
  // the log.
  std::map<std::string, std::string> Snapshot(const std::string& dir,
                                              const std::string& prefix = "") {
    std::map<std::string, std::string> out;
    auto children = env_->GetChildren(dir);
    EXPECT_OK(children.status()) << dir;
    if (!children.ok()) return out;
    for (const std::string& name : *children) {
      if (name == "LOCK") continue;
      const std::string path = dir + "/" + name;
      if (env_->GetChildren(path).ok() && name.find('.') == std::string::npos) {
        for (auto& [k, v] : Snapshot(path, prefix + name + "/")) out[k] = v;
        continue;
      }
      out[prefix + name] = ReadAll(path);
    }
    return out;
  }

  // Opens with `options`, expecting failure, and checks that the failing Open
  // left every file of the directory byte for byte as it was. Returns the
  // status for the caller to check its code and message.
  absl::Status OpenExpectingFailure(const SegmentedWalOptions& options) {
    const std::map<std::string, std::string> before = Snapshot(options.wal_dir);
    absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
        SegmentedWal::Open(options);
    EXPECT_FALSE(wal.ok()) << "Open succeeded on a log it should refuse";
    if (wal.ok()) return absl::OkStatus();
    const std::map<std::string, std::string> after = Snapshot(options.wal_dir);
    for (const auto& [name, bytes] : before) {
      auto it = after.find(name);
      if (it == after.end()) {
        ADD_FAILURE() << "failing Open removed " << name;
      } else if (it->second != bytes) {
        ADD_FAILURE() << "failing Open changed " << name << " (" << bytes.size()
                      << " -> " << it->second.size() << " bytes)";
      }
    }
    for (const auto& [name, bytes] : after) {
      if (before.count(name) == 0) {
        ADD_FAILURE() << "failing Open created " << name;
      }
    }
    return wal.status();
  }

  // Checks an Open that must cut a torn tail: the bytes [offset, offset+bytes)
  // of `path` are dropped and reported, the file is cut at `offset`, exactly
  // `kept` remain, appends continue at the next LSN, and a reopen sees them.
  void ExpectTornTailCut(const SegmentedWalOptions& options,
                         const std::string& path, uint64_t offset,
                         uint64_t bytes, const std::vector<WalRecord>& kept) {
    const uint64_t next = kept.empty() ? 1 : kept.back().lsn + 1;
    {
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                           SegmentedWal::Open(options));
      const RecoveryReport& report = wal->recovery_report();
      EXPECT_THAT(report.drops, Contains(DropAt(path, offset, bytes)));
      EXPECT_TRUE(report.truncated_tail);
      EXPECT_EQ(report.last_lsn, next - 1);
      EXPECT_EQ(FileSize(path), offset) << "the torn tail was not cut off";
      ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, kept));
      EXPECT_EQ(wal->next_lsn(), next);
      EXPECT_EQ(wal->durable_lsn(), next - 1);
      WalRecord after = RandomRecord(next, 33);
      ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), after));
      ASSERT_OK(wal->Sync());
    }
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
    ASSERT_EQ(got.size(), kept.size() + 1);
    got.pop_back();
    EXPECT_TRUE(SameRecords(got, kept));
    EXPECT_EQ(wal->next_lsn(), next + 1);
  }

  std::unique_ptr<Env> mem_env_;
  std::unique_ptr<testutil::TempDir> temp_dir_;
  Env* env_ = nullptr;
  std::string dir_;
  std::string other_dir_;
  testutil::Random rnd_;
};

// MemEnv.
class SegmentedWalTest : public WalTestBase {
 protected:
  SegmentedWalTest() { UseEnv(EnvKind::kMem); }
};

// The representative subset: MemEnv and the POSIX Env in a TempDir.
class SegmentedWalEnvTest : public WalTestBase,
                            public ::testing::WithParamInterface<EnvKind> {
 protected:
  SegmentedWalEnvTest() { UseEnv(GetParam()); }
};

// Spares prepared in line (a fixed order of file operations) and segments of
// `target` bytes (spare_files_test, direct_io_test).
inline SegmentedWalOptions InlineSpares(SegmentedWalOptions o, uint64_t target) {
  o.segment_target_size = target;
  o.preallocate_segments = true;
  o.background_preallocation = false;
  o.background_sealing = false;
  return o;
}

}  // namespace

// The representative subset runs on MemEnv and on the POSIX Env.
#define SEGWAL_INSTANTIATE_ENV_TESTS() \
INSTANTIATE_TEST_SUITE_P(Envs, SegmentedWalEnvTest, \
                         ::testing::Values(EnvKind::kMem, EnvKind::kPosix), \
                         [](const ::testing::TestParamInfo<EnvKind>& info) { \
                           return info.param == EnvKind::kMem ? "MemEnv" \
                                                              : "PosixEnv"; \
                         });

}  // namespace segwal

#endif  // SEGWAL_WAL_SEGMENTED_WAL_TEST_HARNESS_H_
