// Behaviour of SegmentedWal through its public API (wal/segmented_wal.h), and
// recovery from damaged segments, one test per situation in the LevelDB
// log_test.cc style.
//
// Damage is done through the Env, at offsets computed from wal/FORMAT.md (the
// constants below), never through the implementation's own format code: these
// tests check the code against the written format. Most tests run on a MemEnv;
// SegmentedWalEnvTest runs a representative subset on the POSIX Env too.

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
void PrintTo(const WalRecord& r, std::ostream* os) {
  *os << "{lsn " << r.lsn << ", type " << r.record_type << ", tenant "
      << r.tenant_id << ", vshard " << r.vshard_id << ", db " << r.database_id
      << ", payload " << r.payload.size() << " bytes crc32c "
      << crc32c::Value(r.payload) << "}";
}
void PrintTo(const RecoveryDrop& d, std::ostream* os) {
  *os << "{file " << d.file << ", offset " << d.offset << ", bytes " << d.bytes
      << ", reason \"" << d.reason << "\"}";
}
void PrintTo(const SegmentMeta& m, std::ostream* os) {
  *os << "{" << m.path << ", first_lsn " << m.first_lsn << ", size "
      << m.file_size << "}";
}
void PrintTo(const TruncateResult& t, std::ostream* os) {
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
uint64_t GetLE(const std::string& bytes, uint64_t offset, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(bytes[offset + i]);
  }
  return v;
}
void PutLE(std::string* bytes, uint64_t offset, int width, uint64_t v) {
  for (int i = 0; i < width; ++i) {
    (*bytes)[offset + i] = static_cast<char>(v >> (8 * i));
  }
}

std::string SegmentName(uint64_t first_lsn) {
  std::string digits = std::to_string(first_lsn);
  return std::string(kSegmentNameDigits - digits.size(), '0') + digits + ".wal";
}

// Recomputes the header CRC of the record frame at `offset` after a test
// edited its header fields, so the frame checks out as written by this
// segment (FORMAT.md: seed = crc32c(salt ++ first LSN); header CRC = masked
// Extend(seed, bytes [8, 56))).
void ResealRecordHeader(std::string* bytes, uint64_t offset) {
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

std::vector<Frame> ScanFrames(const std::string& bytes) {
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
std::vector<Frame> RecordFrames(const std::string& bytes) {
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
std::vector<WalRecord> Slice(const std::vector<WalRecord>& all, uint64_t from,
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

INSTANTIATE_TEST_SUITE_P(Envs, SegmentedWalEnvTest,
                         ::testing::Values(EnvKind::kMem, EnvKind::kPosix),
                         [](const ::testing::TestParamInfo<EnvKind>& info) {
                           return info.param == EnvKind::kMem ? "MemEnv"
                                                              : "PosixEnv";
                         });

// ===================== Basics =====================

TEST_P(SegmentedWalEnvTest, LsnsStartAtOneAndAreContiguous) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_EQ(wal->next_lsn(), 1u);
  EXPECT_EQ(wal->wal_dir(), dir_);
  for (uint64_t lsn = 1; lsn <= 100; ++lsn) {
    EXPECT_THAT(wal->Append(1, 2, 3, 4, "x"), IsOkAndHolds(lsn));
    EXPECT_EQ(wal->next_lsn(), lsn + 1);
  }
}

TEST_P(SegmentedWalEnvTest, ReplayReturnsEveryFieldByteIdentical) {
  std::vector<WalRecord> expected;
  auto add = [&](uint32_t type, uint64_t tenant, uint32_t vshard, uint64_t db,
                 std::string payload) {
    WalRecord r;
    r.lsn = expected.size() + 1;
    r.record_type = type;
    r.tenant_id = tenant;
    r.vshard_id = vshard;
    r.database_id = db;
    r.payload = std::move(payload);
    expected.push_back(std::move(r));
  };
  add(0, 0, 0, 0, "");  // every field zero, empty payload
  add(UINT32_MAX, UINT64_MAX, UINT32_MAX, UINT64_MAX, "");
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  add(7, 1, 2, 0, all_bytes);                      // binary, default database
  add(8, 2, 3, 4, std::string(5, '\0'));           // only NULs
  add(9, 3, 4, 5, std::string(kSegmentMagic, 8));  // looks like a header
  add(10, 4, 5, 6, std::string(kRecordHeaderSize, '\xff'));
  add(11, 5, 6, 7, "");
  for (int i = 0; i < 50; ++i) {
    expected.push_back(RandomRecord(expected.size() + 1, rnd_.Skewed(11)));
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    for (const WalRecord& r : expected) {
      ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), r));
    }
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    ASSERT_OK(wal->Sync());
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_P(SegmentedWalEnvTest, ReopenContinuesAtLastLsnPlusOne) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 17, kRandomSize, &expected));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    EXPECT_EQ(wal->next_lsn(), 18u);
    const RecoveryReport& report = wal->recovery_report();
    EXPECT_EQ(report.last_lsn, 17u);
    EXPECT_EQ(report.first_lsn, 1u);
    EXPECT_EQ(report.records_recovered, 17u);
    EXPECT_THAT(report.drops, IsEmpty());
    EXPECT_FALSE(report.truncated_tail);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 5, kRandomSize, &expected));
    EXPECT_EQ(expected.back().lsn, 22u);
    ASSERT_OK(wal->Sync());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_EQ(wal->next_lsn(), 23u);
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, EmptyLogReopensEmpty) {
  { ASSERT_OK(SegmentedWal::Open(Options()).status()); }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_EQ(wal->next_lsn(), 1u);
  EXPECT_THAT(wal->Replay(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "first"), IsOkAndHolds(1u));
}

TEST_F(SegmentedWalTest, DurableLsnIsZeroBeforeSyncAndMovesWithSync) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    EXPECT_EQ(wal->durable_lsn(), 0u);
    std::vector<WalRecord> expected;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &expected));
    EXPECT_EQ(wal->durable_lsn(), 0u);
    ASSERT_OK(wal->Sync());
    EXPECT_EQ(wal->durable_lsn(), 3u);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, kPayload, &expected));
    EXPECT_EQ(wal->durable_lsn(), 3u);
    ASSERT_OK(wal->Flush());
    EXPECT_EQ(wal->durable_lsn(), 3u) << "Flush is not a sync";
    ASSERT_OK(wal->Sync());
    EXPECT_EQ(wal->durable_lsn(), 5u);
  }
  // FORMAT.md: after recovery Open syncs the last segment.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_EQ(wal->durable_lsn(), 5u);
}

TEST_F(SegmentedWalTest, SyncWithNothingAppendedIsOk) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_OK(wal->Sync());
  EXPECT_EQ(wal->durable_lsn(), 0u);
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "a"), IsOkAndHolds(1u));
  EXPECT_OK(wal->Sync());
  EXPECT_OK(wal->Sync());
  EXPECT_EQ(wal->durable_lsn(), 1u);
  EXPECT_OK(wal->poisoned_status());
}

TEST_P(SegmentedWalEnvTest, RecordsOfManySizesIncludingLargerThanBuffers) {
  constexpr uint64_t kMaxRecord = 4 << 20;
  const std::vector<size_t> sizes = {
      0,     1,     55,      56,         57, 4095, 4096, 65535,
      65536, 65537, 3 << 20, kMaxRecord, 0,  1,    1000, (1 << 16) * 3 + 7,
      17};
  // Once into one big segment, once into segments smaller than the records.
  for (uint64_t target : {uint64_t{64} << 20, uint64_t{64} << 10}) {
    SCOPED_TRACE(absl::StrCat("segment_target_size ", target));
    SegmentedWalOptions options = Options();
    options.wal_dir = absl::StrCat(dir_, "_", target);
    options.segment_target_size = target;
    options.write_buffer_size = 64 << 10;
    options.max_record_size = kMaxRecord;
    std::vector<WalRecord> expected;
    {
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                           SegmentedWal::Open(options));
      for (size_t size : sizes) {
        WalRecord r = RandomRecord(wal->next_lsn(), size);
        ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), r));
        expected.push_back(std::move(r));
      }
      ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
      ASSERT_OK(wal->Sync());
    }
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, 11, expected));
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, 12, expected));
    ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 10, expected));
  }
}

TEST_F(SegmentedWalTest,
       AppendAboveMaxRecordSizeIsInvalidArgumentAndUsesNoLsn) {
  SegmentedWalOptions options = Options();
  options.max_record_size = 1024;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, std::string(1025, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(wal->next_lsn(), 1u);
  std::vector<WalRecord> expected;
  expected.push_back(RandomRecord(1, 1024));  // exactly max_record_size
  ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), expected.back()));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, std::string(5000, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(wal->next_lsn(), 2u);
  expected.push_back(RandomRecord(2, 10));
  ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), expected.back()));
  // A refused record is the caller's mistake, not an I/O failure: no poison.
  EXPECT_OK(wal->poisoned_status());
  EXPECT_OK(wal->Sync());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, ReadsSeeRecordsAppendedButNotYetFlushed) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));  // 1 MiB write buffer
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, 20, &expected));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, 2, expected));
  ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(1, 10));
  EXPECT_TRUE(SameRecords(page.records, expected));
  EXPECT_FALSE(page.has_more);
  ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 1, expected));
}

TEST_F(SegmentedWalTest, OpenRejectsEmptyWalDir) {
  SegmentedWalOptions options = Options();
  options.wal_dir = "";
  EXPECT_THAT(SegmentedWal::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SegmentedWalTest, OpenRejectsZeroSegmentTargetSize) {
  SegmentedWalOptions options = Options();
  options.segment_target_size = 0;
  EXPECT_THAT(SegmentedWal::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ===================== Rollover =====================

TEST_P(SegmentedWalEnvTest,
       SmallSegmentTargetRollsOverIntoSegmentsNamedByFirstLsn) {
  SegmentedWalOptions options = SmallSegments(4096);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 200, kRandomSize, &expected));
  ASSERT_OK(wal->Flush());
  ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> segs, wal->ListSegments());
  ASSERT_GE(segs.size(), 4u);
  EXPECT_EQ(segs.front().first_lsn, 1u);
  EXPECT_EQ(wal->active_segment_first_lsn(), segs.back().first_lsn);
  for (size_t i = 0; i < segs.size(); ++i) {
    SCOPED_TRACE(segs[i].path);
    EXPECT_THAT(segs[i].path, EndsWith("/" + SegmentName(segs[i].first_lsn)));
    if (i > 0) {
      EXPECT_LT(segs[i - 1].first_lsn, segs[i].first_lsn);
    }
    const std::string bytes = ReadAll(segs[i].path);
    ASSERT_GE(bytes.size(), kSegmentHeaderSize);
    EXPECT_EQ(bytes.substr(0, 8), std::string(kSegmentMagic, 8));
    EXPECT_EQ(GetLE(bytes, kSegmentFirstLsnOffset, 8), segs[i].first_lsn);
    if (i + 1 == segs.size()) continue;
    // A sealed segment: contiguous records from its first LSN to the one
    // before its successor's, then a footer that ends the file.
    EXPECT_EQ(segs[i].file_size, bytes.size());
    const std::vector<Frame> frames = ScanFrames(bytes);
    ASSERT_GE(frames.size(), 2u);
    EXPECT_TRUE(frames.back().footer);
    EXPECT_EQ(frames.back().offset + frames.back().size, bytes.size());
    EXPECT_EQ(frames.back().lsn, segs[i + 1].first_lsn - 1);
    ASSERT_EQ(frames.size() - 1, segs[i + 1].first_lsn - segs[i].first_lsn);
    for (size_t j = 0; j + 1 < frames.size(); ++j) {
      EXPECT_EQ(frames[j].lsn, segs[i].first_lsn + j);
      EXPECT_FALSE(frames[j].footer);
    }
  }
  // The directory holds exactly these segments, and sorting the names sorts
  // by LSN.
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> children,
                       env_->GetChildren(dir_));
  std::vector<std::string> names;
  for (const std::string& c : children) {
    if (c.size() > 4 && c.substr(c.size() - 4) == ".wal") names.push_back(c);
  }
  std::sort(names.begin(), names.end());
  ASSERT_EQ(names.size(), segs.size());
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ(names[i], SegmentName(segs[i].first_lsn));
    EXPECT_EQ(names[i].size(), kSegmentNameDigits + 4);
  }
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_P(SegmentedWalEnvTest,
       TotalSizeBytesIsTheSumOfSegmentFileSizesAfterFlush) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(4096)));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 150, kRandomSize, &expected));
  ASSERT_OK(wal->Flush());
  ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> segs, wal->ListSegments());
  ASSERT_GE(segs.size(), 3u);
  uint64_t on_disk = 0, listed = 0;
  for (const SegmentMeta& s : segs) {
    on_disk += FileSize(s.path);
    listed += s.file_size;
  }
  EXPECT_THAT(wal->TotalSizeBytes(), IsOkAndHolds(on_disk));
  EXPECT_EQ(listed, on_disk);
}

TEST_P(SegmentedWalEnvTest,
       ReplaySpansSegmentsAndReopenAfterRolloverContinues) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> before;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(4096), 180, kRandomSize, &expected, &before));
  ASSERT_GE(before.size(), 3u);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(SmallSegments(4096)));
    EXPECT_EQ(wal->recovery_report().segments_found, before.size());
    EXPECT_EQ(wal->recovery_report().last_lsn, 180u);
    ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> after, wal->ListSegments());
    ASSERT_GE(after.size(), before.size());
    for (size_t i = 0; i < before.size(); ++i) {
      EXPECT_EQ(after[i].first_lsn, before[i].first_lsn);
    }
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    EXPECT_EQ(wal->next_lsn(), 181u);
    ASSERT_NO_FATAL_FAILURE(
        AppendRandom(wal.get(), 120, kRandomSize, &expected));
    ASSERT_OK(wal->Sync());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(4096)));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  EXPECT_EQ(wal->next_lsn(), 301u);
}

// ===================== ReplayFrom / ReplayFromLimit =====================

TEST_P(SegmentedWalEnvTest, ReplayFromEveryLsnOfAMultiSegmentLog) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(2048), 120, kRandomSize, &expected, &segs));
  ASSERT_GE(segs.size(), 4u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(2048)));
  for (uint64_t lsn = 1; lsn <= 121; ++lsn) {
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, lsn, expected));
  }
}

TEST_F(SegmentedWalTest, ReplayFromSeeksThroughTheFooterIndexOfLargeSegments) {
  // 256 KiB segments of 1 KiB records: each footer index has ~16 entries
  // (FORMAT.md: one per 16 KiB), so a seek lands between index entries.
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(256 << 10), 700, 1000, &expected, &segs));
  ASSERT_GE(segs.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(256 << 10)));
  std::vector<uint64_t> starts;
  for (uint64_t lsn = 1; lsn <= 701; lsn += 13) starts.push_back(lsn);
  for (const SegmentMeta& s : segs) {
    for (uint64_t d : {0, 1, 2}) {
      starts.push_back(s.first_lsn + d);
      if (s.first_lsn > d) starts.push_back(s.first_lsn - d);
    }
  }
  for (uint64_t lsn : starts) {
    if (lsn == 0) continue;
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, lsn, expected));
  }
}

TEST_P(SegmentedWalEnvTest, ReplayFromBeyondTheEndIsEmpty) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(2048), 40, kPayload, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(2048)));
  EXPECT_THAT(wal->ReplayFrom(41), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(wal->ReplayFrom(1000000), IsOkAndHolds(IsEmpty()));
  ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(41, 10));
  EXPECT_THAT(page.records, IsEmpty());
  EXPECT_FALSE(page.has_more);
}

TEST_P(SegmentedWalEnvTest, ReplayFromLimitHasMoreOnlyWhenALaterRecordExists) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 10, kRandomSize, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  struct Case {
    uint64_t from;
    size_t max;
    uint64_t want_last;  // 0: no records
    bool want_more;
  };
  const Case cases[] = {
      {1, 10, 10, false},   // exact fit: the page ends at the last record
      {1, 9, 9, true},      //
      {1, 100, 10, false},  //
      {4, 7, 10, false},    // exact fit from the middle
      {4, 6, 9, true},      //
      {10, 1, 10, false},   // exact fit, last record alone
      {9, 1, 9, true},      //
      {11, 5, 0, false},    // beyond the end
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("ReplayFromLimit(", c.from, ", ", c.max, ")"));
    ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(c.from, c.max));
    EXPECT_TRUE(SameRecords(page.records,
                            c.want_last == 0
                                ? std::vector<WalRecord>{}
                                : Slice(expected, c.from, c.want_last + 1)));
    EXPECT_EQ(page.has_more, c.want_more);
  }
}

TEST_F(SegmentedWalTest, ReplayFromLimitWithZeroMaxRecordsReturnsNothing) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(1, 0));
  EXPECT_THAT(page.records, IsEmpty());
  EXPECT_TRUE(page.has_more) << "records 1..5 are still to be read";
  ASSERT_OK_AND_ASSIGN(page, wal->ReplayFromLimit(6, 0));
  EXPECT_THAT(page.records, IsEmpty());
  EXPECT_FALSE(page.has_more);
}

// A page ends at its last record: damage to the record after it (here bit
// rot after Open) is reported by the page that would hold it, naming the file
// and offset, and the pages before it read as usual.
TEST_F(SegmentedWalTest, ReplayFromLimitLeavesDamageAfterThePageToTheNextPage) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(2048), 40, kPayload, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(2048)));
  ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> segs, wal->ListSegments());
  ASSERT_GE(segs.size(), 3u);
  const std::string path = segs[1].path;  // sealed, neither first nor last
  std::vector<Frame> frames = RecordFrames(ReadAll(path));
  ASSERT_GE(frames.size(), 3u);
  const Frame bad = frames[1];
  ASSERT_NO_FATAL_FAILURE(CorruptByte(path, bad.offset + kRecordHeaderSize + 2));
  const size_t before = bad.lsn - 1;  // records 1..bad.lsn-1 are intact
  ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(1, before));
  EXPECT_TRUE(SameRecords(page.records, Slice(expected, 1, bad.lsn)));
  EXPECT_TRUE(page.has_more);
  ASSERT_OK_AND_ASSIGN(page, wal->ReplayFromLimit(bad.lsn - 1, 1));
  EXPECT_TRUE(SameRecords(page.records, Slice(expected, bad.lsn - 1, bad.lsn)));
  EXPECT_TRUE(page.has_more);
  EXPECT_THAT(wal->ReplayFromLimit(bad.lsn, 5),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(path),
                             HasSubstr(absl::StrCat("offset ", bad.offset)))));
  EXPECT_THAT(wal->ReplayFromLimit(1, before + 1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(path)));
}

TEST_P(SegmentedWalEnvTest,
       PagingThroughAMultiSegmentLogCollectsEveryRecordOnce) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(2048), 150, kRandomSize, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(2048)));
  for (size_t page_size :
       {size_t{1}, size_t{7}, size_t{50}, size_t{150}, size_t{151}}) {
    SCOPED_TRACE(absl::StrCat("page size ", page_size));
    std::vector<WalRecord> collected;
    uint64_t from = 1;
    size_t pages = 0;
    while (true) {
      ASSERT_OK_AND_ASSIGN(ReplayPage page,
                           wal->ReplayFromLimit(from, page_size));
      ++pages;
      ASSERT_LE(pages, 200u) << "paging does not terminate";
      ASSERT_LE(page.records.size(), page_size);
      if (page.has_more) {
        ASSERT_EQ(page.records.size(), page_size);
      }
      for (WalRecord& r : page.records) collected.push_back(std::move(r));
      if (!page.has_more) break;
      from = collected.back().lsn + 1;
    }
    EXPECT_EQ(pages, (150 + page_size - 1) / page_size)
        << "an exact-fit page must say has_more = false";
    EXPECT_TRUE(SameRecords(collected, expected));
  }
}

// ===================== Iterators =====================

TEST_F(SegmentedWalTest, IteratorMatchesReplayFromForManyStartPoints) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(2048), 100, kRandomSize, &expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(2048)));
  // Records still in the write buffer of the active segment as well.
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 10, kRandomSize, &expected));
  for (uint64_t lsn = 1; lsn <= 112; ++lsn) {
    ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, lsn, expected));
  }
}

TEST_F(SegmentedWalTest, IteratorSeesRecordsAppendedBeforeItWasCreated) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(4096)));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 60, kPayload, &expected));
  // Neither flushed nor synced: the last ones are only in the write buffer.
  ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 1, expected));
  ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 60, expected));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WalIterator> it, wal->NewIterator(61));
  EXPECT_FALSE(it->Valid());
  EXPECT_OK(it->status());
}

TEST_F(SegmentedWalTest, IteratorWalksALogOfManySegments) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(4096), 3000, 64, &expected, &segs));
  ASSERT_GE(segs.size(), 50u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(4096)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WalIterator> it, wal->NewIterator(1));
  uint64_t lsn = 1;
  for (; it->Valid(); it->Next(), ++lsn) {
    ASSERT_LE(lsn, expected.size());
    ASSERT_TRUE(it->record() == expected[lsn - 1]) << "at LSN " << lsn;
  }
  EXPECT_OK(it->status());
  EXPECT_EQ(lsn, 3001u);
  ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 2500, expected));
}

// ===================== TruncateBefore =====================

TEST_P(SegmentedWalEnvTest,
       TruncateBeforeDeletesOnlySealedSegmentsBelowTheCheckpoint) {
  const SegmentedWalOptions options = SmallSegments(1024);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 60, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 5u);
  uint64_t active_first = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    // Segment 0's last record is segs[1].first_lsn - 1: not below that.
    EXPECT_THAT(wal->TruncateBefore(segs[1].first_lsn - 1),
                IsOkAndHolds(Truncated(0, 0)));
    EXPECT_TRUE(env_->FileExists(segs[0].path));
    // Every record of segments 0 and 1 is below segs[2].first_lsn.
    EXPECT_THAT(
        wal->TruncateBefore(segs[2].first_lsn),
        IsOkAndHolds(Truncated(2, segs[0].file_size + segs[1].file_size)));
    EXPECT_FALSE(env_->FileExists(segs[0].path));
    EXPECT_FALSE(env_->FileExists(segs[1].path));
    EXPECT_TRUE(env_->FileExists(segs[2].path));
    const uint64_t floor = segs[2].first_lsn;
    ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> left, wal->ListSegments());
    ASSERT_FALSE(left.empty());
    EXPECT_EQ(left.front().first_lsn, floor);
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, Slice(expected, floor)));
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, floor, expected));
    ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, floor, expected));
    // Below the floor: never silently fewer records.
    EXPECT_THAT(wal->ReplayFrom(floor - 1),
                StatusIs(absl::StatusCode::kOutOfRange));
    EXPECT_THAT(wal->ReplayFrom(1), StatusIs(absl::StatusCode::kOutOfRange));
    EXPECT_THAT(wal->NewIterator(floor - 1),
                StatusIs(absl::StatusCode::kOutOfRange));
    EXPECT_THAT(wal->ReplayFromLimit(1, 10),
                StatusIs(absl::StatusCode::kOutOfRange));

    // A checkpoint past the end deletes every sealed segment, never the active.
    active_first = wal->active_segment_first_lsn();
    uint64_t sealed_bytes = 0;
    size_t sealed = 0;
    for (const SegmentMeta& s : left) {
      if (s.first_lsn < active_first) {
        sealed_bytes += s.file_size;
        ++sealed;
      }
    }
    EXPECT_THAT(wal->TruncateBefore(wal->next_lsn() + 1000),
                IsOkAndHolds(Truncated(sealed, sealed_bytes)));
    ASSERT_OK_AND_ASSIGN(left, wal->ListSegments());
    ASSERT_THAT(left, SizeIs(1));
    EXPECT_EQ(left[0].first_lsn, active_first);
    EXPECT_TRUE(env_->FileExists(SegmentPath(active_first)));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, Slice(expected, active_first)));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &expected));
    ASSERT_OK(wal->Sync());
  }
  // Reopen: the log starts at the floor and continues where it was.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  EXPECT_EQ(wal->recovery_report().first_lsn, active_first);
  EXPECT_EQ(wal->next_lsn(), 64u);
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, Slice(expected, active_first)));
  EXPECT_THAT(wal->ReplayFrom(active_first - 1),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(SegmentedWalTest, TruncateBeforeZeroOrOneDeletesNothing) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(1024), 30, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 3u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(1024)));
  EXPECT_THAT(wal->TruncateBefore(0), IsOkAndHolds(Truncated(0, 0)));
  EXPECT_THAT(wal->TruncateBefore(1), IsOkAndHolds(Truncated(0, 0)));
  EXPECT_THAT(wal->ListSegments(), IsOkAndHolds(SizeIs(segs.size())));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest,
       ReopenAfterTruncatingEverySealedSegmentKeepsLsnsGoing) {
  const SegmentedWalOptions options = SmallSegments(1024);
  uint64_t next = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    std::vector<WalRecord> expected;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 50, kPayload, &expected));
    ASSERT_OK(wal->Sync());
    ASSERT_OK(wal->TruncateBefore(UINT64_MAX).status());
    next = wal->next_lsn();
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  EXPECT_EQ(wal->next_lsn(), next) << "LSNs must never rewind";
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "after"), IsOkAndHolds(next));
}

// ===================== Lock =====================

TEST_P(SegmentedWalEnvTest,
       SecondOpenOfAnOpenDirectoryFailsUntilTheFirstIsClosed) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> first,
                       SegmentedWal::Open(Options()));
  EXPECT_THAT(first->Append(1, 1, 1, 1, "one"), IsOkAndHolds(1u));
  EXPECT_THAT(SegmentedWal::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // The refused Open did not disturb the first instance.
  EXPECT_THAT(first->Append(1, 1, 1, 1, "two"), IsOkAndHolds(2u));
  EXPECT_OK(first->Sync());
  EXPECT_THAT(first->Replay(), IsOkAndHolds(SizeIs(2)));
  first.reset();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> second,
                       SegmentedWal::Open(Options()));
  EXPECT_THAT(second->Replay(), IsOkAndHolds(SizeIs(2)));
}

// ===================== Close, crashes and poisoning =====================

TEST_F(SegmentedWalTest, DestructorFlushesBufferedRecordsToTheOs) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SegmentedWalOptions options = Options();
  options.env = &fault_env;
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 5, kPayload, &expected));
  }
  // A process crash keeps what reached the OS: reopen without a power loss.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, DestructorDoesNotSync) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SegmentedWalOptions options = Options();
  options.env = &fault_env;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    std::vector<WalRecord> unsynced;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 5, kPayload, &unsynced));
  }
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 1));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  EXPECT_THAT(wal->Replay(), IsOkAndHolds(IsEmpty()));
  EXPECT_EQ(wal->next_lsn(), 1u);
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "again"), IsOkAndHolds(1u));
  EXPECT_OK(wal->Sync());
}

TEST_F(SegmentedWalTest, RecordsSyncedBeforeCloseSurviveAPowerLoss) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SegmentedWalOptions options = SmallSegments(2048);
  options.env = &fault_env;
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 48, kPayload, &expected));
    ASSERT_OK(wal->Sync());
    const uint64_t active = wal->active_segment_first_lsn();
    ASSERT_GT(active, 1u) << "the synced records span several segments";
    std::vector<WalRecord> unsynced;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, kPayload, &unsynced));
    // A rollover would seal (and so sync) them: this test needs none.
    ASSERT_EQ(wal->active_segment_first_lsn(), active);
  }
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 2));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "next"), IsOkAndHolds(49u));
}

TEST_F(SegmentedWalTest, FailedSyncPoisonsTheInstanceForever) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SegmentedWalOptions options = Options();
  options.env = &fault_env;
  std::vector<WalRecord> durable;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &durable));
    ASSERT_OK(wal->Sync());
    std::vector<WalRecord> lost;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, kPayload, &lost));
    // Fails the next sync only: afterwards the disk is healthy again, and a
    // WAL that retried the fsync would get OK (fsyncgate).
    fault_env.InjectError(kOpSync,
                          absl::InternalError("injected fsync failure"));
    const auto is_injected = StatusIs(absl::StatusCode::kInternal,
                                      HasSubstr("injected fsync failure"));
    EXPECT_THAT(wal->Sync(), is_injected);
    EXPECT_EQ(wal->durable_lsn(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_THAT(wal->Sync(), is_injected);
    EXPECT_THAT(wal->Append(1, 1, 1, 1, "refused"), is_injected);
    EXPECT_EQ(wal->next_lsn(), 6u) << "a refused append used an LSN";
    EXPECT_THAT(wal->Flush(), is_injected);
    EXPECT_THAT(wal->TruncateBefore(2), is_injected);
    EXPECT_THAT(wal->Replay(), is_injected);
    EXPECT_THAT(wal->poisoned_status(), is_injected);
    EXPECT_EQ(wal->durable_lsn(), 3u);
  }
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 3));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, durable));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "recovered"), IsOkAndHolds(4u));
  EXPECT_OK(wal->Sync());
}

TEST_F(SegmentedWalTest, FailedWritePoisonsTheInstance) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SegmentedWalOptions options = Options();
  options.env = &fault_env;
  std::vector<WalRecord> durable;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 4, kPayload, &durable));
    ASSERT_OK(wal->Sync());
    std::vector<WalRecord> lost;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, kPayload, &lost));
    fault_env.InjectError(kOpAppend,
                          absl::ResourceExhaustedError("injected disk full"));
    const auto is_injected = StatusIs(absl::StatusCode::kResourceExhausted,
                                      HasSubstr("injected disk full"));
    EXPECT_THAT(wal->Sync(), is_injected);  // writes the staged records first
    EXPECT_THAT(wal->Sync(), is_injected);
    EXPECT_THAT(wal->Append(1, 1, 1, 1, "refused"), is_injected);
    EXPECT_EQ(wal->durable_lsn(), 4u);
  }
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 4));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, durable));
}

// RocksDB #3096: followers of a failed group commit were told OK.
TEST_F(SegmentedWalTest, GroupCommitFollowersAllGetTheLeadersSyncError) {
  FaultInjectionEnv fault_env(mem_env_.get());
  SyncGateEnv gate_env(&fault_env);
  SegmentedWalOptions options = Options();
  options.env = &gate_env;
  std::vector<WalRecord> durable;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 5, kPayload, &durable));
    ASSERT_OK(wal->Sync());
    std::vector<WalRecord> lost;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &lost));

    // The leader's fsync is held in flight, then fails; only that one call
    // fails, so a follower that ran its own fsync afterwards would get OK.
    fault_env.InjectError(kOpSync,
                          absl::InternalError("injected leader fsync failure"));
    gate_env.Arm();
    absl::Status leader_status;
    std::thread leader([&] { leader_status = wal->Sync(); });
    gate_env.WaitUntilHolding();
    constexpr int kFollowers = 8;
    std::vector<absl::Status> follower_status(kFollowers);
    std::vector<std::thread> followers;
    for (int i = 0; i < kFollowers; ++i) {
      followers.emplace_back([&, i] {
        absl::StatusOr<uint64_t> lsn =
            wal->Append(1, static_cast<uint64_t>(i), 0, 0, "follower");
        follower_status[i] = lsn.ok() ? wal->Sync() : lsn.status();
      });
    }
    // Let the followers queue up behind the sync in flight.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    gate_env.Release();
    leader.join();
    for (std::thread& t : followers) t.join();

    const auto is_injected =
        StatusIs(absl::StatusCode::kInternal,
                 HasSubstr("injected leader fsync failure"));
    EXPECT_THAT(leader_status, is_injected);
    for (int i = 0; i < kFollowers; ++i) {
      EXPECT_THAT(follower_status[i], is_injected) << "follower " << i;
    }
    EXPECT_THAT(wal->Sync(), is_injected);
    EXPECT_EQ(wal->durable_lsn(), 5u);
  }
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 5));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, durable));
}

// While one fsync is in flight, Sync callers queue; the group-commit thread
// then covers all of them with one more fsync, not one each.
TEST_F(SegmentedWalTest, QueuedSyncCallersShareOneFsync) {
  SyncGateEnv gate_env(env_);
  SegmentedWalOptions options = Options();
  options.env = &gate_env;
  options.background_preallocation = false;
  options.background_sealing = false;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_OK(wal->Append(1, 1, 0, 0, "first").status());
  ASSERT_OK(wal->Sync());
  const WalStats before = wal->GetStats();

  ASSERT_OK(wal->Append(1, 1, 0, 0, "leader").status());
  gate_env.Arm();
  absl::Status leader_status;
  std::thread leader([&] { leader_status = wal->Sync(); });
  gate_env.WaitUntilHolding();
  constexpr int kFollowers = 8;
  std::vector<absl::Status> follower_status(kFollowers);
  std::vector<uint64_t> follower_lsn(kFollowers);
  std::vector<uint64_t> durable_on_return(kFollowers);
  std::vector<std::thread> followers;
  for (int i = 0; i < kFollowers; ++i) {
    followers.emplace_back([&, i] {
      absl::StatusOr<uint64_t> lsn =
          wal->Append(2, static_cast<uint64_t>(i), 0, 0, "follower");
      if (!lsn.ok()) {
        follower_status[i] = lsn.status();
        return;
      }
      follower_lsn[i] = *lsn;
      follower_status[i] = wal->Sync();
      durable_on_return[i] = wal->durable_lsn();
    });
  }
  // Every follower has appended and called Sync (they queue behind the held
  // fsync) before it is let go.
  while (wal->GetStats().sync_requests < before.sync_requests + 1 + kFollowers) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  gate_env.Release();
  leader.join();
  for (std::thread& t : followers) t.join();

  ASSERT_OK(leader_status);
  for (int i = 0; i < kFollowers; ++i) {
    ASSERT_OK(follower_status[i]) << "follower " << i;
    EXPECT_GE(durable_on_return[i], follower_lsn[i]) << "follower " << i;
  }
  const WalStats after = wal->GetStats();
  EXPECT_EQ(after.syncs, before.syncs + 2)
      << "the leader's fsync, then one for all " << kFollowers << " followers";
  EXPECT_EQ(after.durable_lsn, 2u + kFollowers);
  EXPECT_EQ(after.records_per_sync.max, static_cast<uint64_t>(kFollowers));
}

// Many threads appending and syncing at once, through the group-commit
// thread (with and without its wait for returning callers): every Sync that
// returned OK covers its record, and a power loss right after keeps them all.
TEST_F(SegmentedWalTest, ContendedSyncsAreDurableWhenTheyReturn) {
  for (uint64_t wait_micros : {uint64_t{0}, uint64_t{100}}) {
    SCOPED_TRACE(absl::StrCat("group_commit_wait_micros=", wait_micros));
    std::unique_ptr<Env> mem = NewMemEnv();
    FaultInjectionEnv fault_env(mem.get());
    SegmentedWalOptions options = Options();
    options.env = &fault_env;
    options.segment_target_size = 16 << 10;  // rolls under contention too
    options.group_commit_wait_micros = wait_micros;
    constexpr int kThreads = 8, kPerThread = 150;
    std::vector<std::vector<std::pair<uint64_t, std::string>>> acked(kThreads);
    {
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                           SegmentedWal::Open(options));
      std::vector<std::thread> threads;
      std::atomic<int> failures{0};
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
          for (int i = 0; i < kPerThread; ++i) {
            std::string payload = absl::StrCat("t", t, "-", i);
            absl::StatusOr<uint64_t> lsn =
                wal->Append(1, static_cast<uint64_t>(t), 0, 0, payload);
            if (!lsn.ok() || !wal->Sync().ok() || wal->durable_lsn() < *lsn) {
              failures++;
              return;
            }
            acked[t].emplace_back(*lsn, std::move(payload));
          }
        });
      }
      for (std::thread& t : threads) t.join();
      ASSERT_EQ(failures.load(), 0);
      fault_env.SetFilesystemActive(false);  // the crash comes before Close
    }
    ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 7));
    fault_env.SetFilesystemActive(true);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> records, wal->Replay());
    std::map<uint64_t, std::string> by_lsn;
    for (WalRecord& r : records) by_lsn[r.lsn] = std::move(r.payload);
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_EQ(acked[t].size(), static_cast<size_t>(kPerThread));
      for (const auto& [lsn, payload] : acked[t]) {
        auto it = by_lsn.find(lsn);
        ASSERT_NE(it, by_lsn.end()) << "acknowledged LSN " << lsn << " lost";
        EXPECT_EQ(it->second, payload);
      }
    }
  }
}

// A roll hands the full segment's fsync to the sealer: appends go on into the
// next segment, which keeps a spare's name until that seal is durable.
TEST_F(SegmentedWalTest, BackgroundSealDoesNotBlockAppendsAndNamesTheNextSegmentAfterIt) {
  SyncGateEnv gate_env(env_);
  SegmentedWalOptions options = SmallSegments(4096);
  options.env = &gate_env;
  options.max_seals_in_flight = 1;  // each roll's seal starts at once
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  std::vector<WalRecord> expected;
  // Hold the first segment's next fsync: its seal (nothing synced it since
  // Open wrote its header).
  gate_env.Arm(SegmentPath(1));
  while (wal->active_segment_first_lsn() == 1) {
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 1, 300, &expected));
  }
  gate_env.WaitUntilHolding();
  const uint64_t second = wal->active_segment_first_lsn();
  // Appends are not blocked by the seal in flight, and nothing is durable.
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 5, 300, &expected));
  EXPECT_EQ(wal->durable_lsn(), 0u);
  EXPECT_FALSE(env_->FileExists(SegmentPath(second)))
      << "the next segment's name exists before its predecessor is sealed";
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> children,
                       env_->GetChildren(dir_));
  EXPECT_THAT(children, Contains(HasSubstr(".tmp")))
      << "the next segment is written under a spare's name";

  absl::Status sync_status;
  std::thread syncer([&] { sync_status = wal->Sync(); });  // waits for the seal
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(wal->durable_lsn(), 0u);
  gate_env.Release();
  syncer.join();
  ASSERT_OK(sync_status);
  EXPECT_EQ(wal->durable_lsn(), expected.back().lsn);
  EXPECT_TRUE(env_->FileExists(SegmentPath(second)));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  wal.reset();
  ASSERT_OK_AND_ASSIGN(wal, SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

// With max_seals_in_flight = 3, two rolls queue their seals and start none:
// nothing is synced, the segments after the first keep spare names, and
// appends go on. A Sync seals the queue in order and names every segment, and
// a power loss after it loses nothing.
TEST_F(SegmentedWalTest, SealsQueueUntilTheQueueIsFullOrSomeoneNeedsThem) {
  FaultInjectionEnv fault_env(mem_env_ ? mem_env_.get() : env_);
  SegmentedWalOptions options = SmallSegments(4096);
  options.env = &fault_env;
  options.max_seals_in_flight = 3;
  options.preallocate_segments = false;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  const uint64_t syncs_at_open = fault_env.OpCount(kOpSync);
  std::vector<WalRecord> expected;
  std::vector<uint64_t> firsts;
  ASSERT_NO_FATAL_FAILURE(
      AppendUntilSegments(wal.get(), 3, &expected, &firsts));
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, 300, &expected));
  EXPECT_EQ(wal->durable_lsn(), 0u);
  EXPECT_EQ(fault_env.OpCount(kOpSync), syncs_at_open)
      << "a seal ran (or a header was synced) before the queue was full";
  EXPECT_FALSE(fault_env.FileExists(SegmentPath(firsts[1])));
  EXPECT_FALSE(fault_env.FileExists(SegmentPath(firsts[2])));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> children,
                       fault_env.GetChildren(dir_));
  EXPECT_EQ(std::count_if(children.begin(), children.end(),
                          [](const std::string& c) {
                            return absl::EndsWith(c, ".tmp");
                          }),
            2)
      << "each segment after the first is written under a spare's name";

  ASSERT_OK(wal->Sync());
  EXPECT_EQ(wal->durable_lsn(), expected.back().lsn);
  for (uint64_t first : firsts) {
    EXPECT_TRUE(fault_env.FileExists(SegmentPath(first))) << first;
  }
  EXPECT_THAT(fault_env.FilesWithUnsyncedData(), IsEmpty());
  wal.reset();
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kDropUnsynced, 7));
  ASSERT_OK_AND_ASSIGN(wal, SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

// A full queue starts the sealer: the roll that finds it full waits for the
// oldest seal, and seals go on until the queue is empty.
TEST_F(SegmentedWalTest, AFullSealQueueSealsInOrderWhileAppendsGoOn) {
  FaultInjectionEnv fault_env(mem_env_ ? mem_env_.get() : env_);
  SegmentedWalOptions options = SmallSegments(4096);
  options.env = &fault_env;
  options.max_seals_in_flight = 2;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 300, 300, &expected));
  // 300 records of ~350 framed bytes: about 25 rolls, through a queue of 2.
  ASSERT_GE(wal->GetStats().rollovers, 20u);
  // Two small records: the second cannot end a segment (the record that
  // fills one is its last), so it is in the active segment, unsealed.
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, 10, &expected));
  // Unsynced, but the oldest segments were sealed to make room: durable.
  EXPECT_GT(wal->durable_lsn(), 0u);
  EXPECT_LT(wal->durable_lsn(), expected.back().lsn);
  ASSERT_OK(wal->Sync());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  wal.reset();
  ASSERT_OK(fault_env.SimulateCrash(CrashMode::kTornSectors, 11));
  ASSERT_OK_AND_ASSIGN(wal, SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

// Readers, listings and TruncateBefore start queued seals (they need every
// segment under its own name, and a truncation victim sealed) and never wait
// for a queue that is not full to fill.
TEST_F(SegmentedWalTest, ReadersListingsAndTruncationStartQueuedSeals) {
  SegmentedWalOptions options = SmallSegments(4096);
  options.max_seals_in_flight = 8;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  std::vector<WalRecord> expected;
  std::vector<uint64_t> firsts;
  ASSERT_NO_FATAL_FAILURE(
      AppendUntilSegments(wal.get(), 4, &expected, &firsts));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 40, 300, &expected));
  ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> segs, wal->ListSegments());
  ASSERT_GE(segs.size(), 5u);
  for (const SegmentMeta& seg : segs) {
    EXPECT_TRUE(env_->FileExists(seg.path)) << seg.path;
  }
  // Full segments whose seals are queued are truncated all the same.
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 40, 300, &expected));
  const uint64_t active = wal->active_segment_first_lsn();
  ASSERT_OK_AND_ASSIGN(TruncateResult t, wal->TruncateBefore(active));
  EXPECT_GE(t.segments_deleted, segs.size() - 1);
  ASSERT_OK_AND_ASSIGN(segs, wal->ListSegments());
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs.front().first_lsn, active);
}

// Bad values of max_seals_in_flight fail Open, naming the option.
TEST_F(SegmentedWalTest, OpenRejectsAnOutOfRangeSealQueue) {
  for (size_t bad : {size_t{0}, size_t{65}}) {
    SegmentedWalOptions options = Options();
    options.max_seals_in_flight = bad;
    EXPECT_THAT(SegmentedWal::Open(options).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("max_seals_in_flight")));
  }
}

// A seal that fails in the middle of a queue poisons the instance, and none
// of the segments queued behind it is ever named.
TEST_F(SegmentedWalTest, AFailedSealInTheQueueNamesNoLaterSegment) {
  FaultInjectionEnv fault_env(mem_env_ ? mem_env_.get() : env_);
  SegmentedWalOptions options = SmallSegments(4096);
  options.env = &fault_env;
  options.max_seals_in_flight = 4;
  options.preallocate_segments = false;  // (no other syncs meanwhile)
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  std::vector<WalRecord> expected;
  std::vector<uint64_t> firsts;
  ASSERT_NO_FATAL_FAILURE(
      AppendUntilSegments(wal.get(), 4, &expected, &firsts));
  // The sealer's syncs, in order: the first segment, the second one's header
  // (then it is named), the second segment (its seal: this one fails), ...
  fault_env.InjectError(kOpSync, absl::InternalError("injected seal failure"),
                        "", /*skip=*/2);
  EXPECT_THAT(wal->Sync(), StatusIs(absl::StatusCode::kInternal,
                                    HasSubstr("injected seal failure")));
  EXPECT_THAT(wal->Append(1, 1, 0, 0, "after").status(),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_TRUE(fault_env.FileExists(SegmentPath(firsts[1])));
  EXPECT_FALSE(fault_env.FileExists(SegmentPath(firsts[2])));
  EXPECT_FALSE(fault_env.FileExists(SegmentPath(firsts[3])));
  EXPECT_LT(wal->durable_lsn(), firsts[2]);
}

// A background seal's failed fsync poisons the instance; the next segment
// never gets its name, and Sync reports the seal's error.
TEST_F(SegmentedWalTest, FailedBackgroundSealPoisonsAndTheNextSegmentIsNeverNamed) {
  FaultInjectionEnv fault_env(mem_env_ ? mem_env_.get() : env_);
  SegmentedWalOptions options = SmallSegments(4096);
  options.env = &fault_env;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  fault_env.InjectError(kOpSync, absl::InternalError("injected seal failure"),
                        SegmentPath(1));
  std::vector<WalRecord> unsynced;
  while (wal->active_segment_first_lsn() == 1) {
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 1, 300, &unsynced));
  }
  const uint64_t second = wal->active_segment_first_lsn();
  EXPECT_THAT(wal->Sync(),
              StatusIs(absl::StatusCode::kInternal,
                       AllOf(HasSubstr("injected seal failure"),
                             HasSubstr("sealing segment"))));
  EXPECT_THAT(wal->Append(1, 1, 0, 0, "after").status(),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_EQ(wal->durable_lsn(), 0u);
  EXPECT_FALSE(fault_env.FileExists(SegmentPath(second)));
}

// Power losses at whatever point the sealer (and the spare preparer) have
// reached: every acknowledged record survives, and what survives is a prefix
// of what was appended. Timing decides the crash points, so this is checked
// for its invariant over many cycles, not replayed from a seed (the seeded
// crash loops in wal_crash_test seal in line).
TEST_F(SegmentedWalTest, PowerLossDuringBackgroundSealsLosesNoAcknowledgedRecord) {
  const CrashMode kModes[] = {CrashMode::kDropUnsynced, CrashMode::kTornTail,
                              CrashMode::kTornSectors};
  for (int cycle = 0; cycle < 40; ++cycle) {
    SCOPED_TRACE(absl::StrCat("cycle ", cycle));
    std::unique_ptr<Env> mem = NewMemEnv();
    FaultInjectionEnv fault_env(mem.get());
    SegmentedWalOptions options = Options();
    options.env = &fault_env;
    options.segment_target_size = 1024 + rnd_.Uniform(4096);
    options.background_preallocation = rnd_.OneIn(2);
    options.recycle_segments = rnd_.Uniform(3);
    std::vector<WalRecord> appended;
    size_t acked = 0;
    {
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                           SegmentedWal::Open(options));
      const int n = 20 + static_cast<int>(rnd_.Uniform(200));
      for (int i = 0; i < n; ++i) {
        ASSERT_NO_FATAL_FAILURE(
            AppendRandom(wal.get(), 1, 50 + rnd_.Uniform(500), &appended));
        if (rnd_.OneIn(8)) {
          ASSERT_OK(wal->Sync());
          acked = appended.size();
        }
        if (rnd_.OneIn(40)) {
          ASSERT_OK(wal->TruncateBefore(appended[appended.size() / 2].lsn)
                        .status());
        }
      }
      // The crash: whatever the sealer is doing stops here.
      fault_env.SetFilesystemActive(false);
    }
    ASSERT_OK(fault_env.SimulateCrash(kModes[cycle % 3], rnd_.Uniform(1 << 30)));
    fault_env.SetFilesystemActive(true);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
    // Truncation may have removed a prefix: compare from the first LSN kept.
    ASSERT_FALSE(got.empty() && acked > 0 &&
                 appended[acked - 1].lsn >= wal->next_lsn())
        << "acknowledged LSN " << appended[acked - 1].lsn << " lost";
    if (got.empty()) continue;
    const uint64_t first = got.front().lsn;
    ASSERT_GE(first, 1u);
    ASSERT_LE(first - 1 + got.size(), appended.size());
    std::vector<WalRecord> want(appended.begin() + (first - 1),
                                appended.begin() + (first - 1) + got.size());
    EXPECT_TRUE(SameRecords(got, want));
    if (acked > 0) {
      EXPECT_GE(got.back().lsn, appended[acked - 1].lsn)
          << "acknowledged records lost";
    }
  }
}

// ===================== Reader error paths (one test per situation) ==========

TEST_F(SegmentedWalTest, EmptyLogInAFreshDirectory) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_THAT(wal->Replay(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(wal->ReplayFrom(1), IsOkAndHolds(IsEmpty()));
  ASSERT_OK_AND_ASSIGN(ReplayPage page, wal->ReplayFromLimit(1, 5));
  EXPECT_THAT(page.records, IsEmpty());
  EXPECT_FALSE(page.has_more);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WalIterator> it, wal->NewIterator(1));
  EXPECT_FALSE(it->Valid());
  EXPECT_OK(it->status());
  EXPECT_EQ(wal->next_lsn(), 1u);
  EXPECT_EQ(wal->durable_lsn(), 0u);
  EXPECT_EQ(wal->active_segment_first_lsn(), 1u);
  ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> segs, wal->ListSegments());
  ASSERT_THAT(segs, SizeIs(1));
  EXPECT_EQ(segs[0].first_lsn, 1u);
  EXPECT_TRUE(env_->FileExists(SegmentPath(1)));
  const RecoveryReport& report = wal->recovery_report();
  EXPECT_EQ(report.records_recovered, 0u);
  EXPECT_EQ(report.last_lsn, 0u);
  EXPECT_THAT(report.drops, IsEmpty());
  EXPECT_FALSE(report.truncated_tail);
}

TEST_F(SegmentedWalTest, TruncatedRecordHeaderAtTheTailIsDroppedAndCut) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  const std::string path = SegmentPath(1);
  const std::vector<Frame> frames = RecordFrames(ReadAll(path));
  ASSERT_THAT(frames, SizeIs(5));
  const uint64_t p = frames[4].offset;
  ASSERT_OK(env_->TruncateFile(path, p + 20));  // 20 of 56 header bytes
  ExpectTornTailCut(Options(), path, p, 20, Slice(expected, 1, 5));
}

TEST_F(SegmentedWalTest, TruncatedPayloadAtTheTailIsDroppedAndCut) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  const std::string path = SegmentPath(1);
  const std::vector<Frame> frames = RecordFrames(ReadAll(path));
  ASSERT_THAT(frames, SizeIs(5));
  const uint64_t p = frames[4].offset;
  ASSERT_OK(env_->TruncateFile(path, p + kRecordHeaderSize + 10));
  ExpectTornTailCut(Options(), path, p, kRecordHeaderSize + 10,
                    Slice(expected, 1, 5));
}

TEST_P(SegmentedWalEnvTest, TruncatedPayloadOfALargeRecordAtTheTailIsDropped) {
  SegmentedWalOptions options = Options();
  options.write_buffer_size = 64 << 10;
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &expected));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 1, 1 << 20, &expected));
    ASSERT_OK(wal->Sync());
  }
  const std::string path = SegmentPath(1);
  const std::vector<Frame> frames = RecordFrames(ReadAll(path));
  ASSERT_THAT(frames, SizeIs(4));
  const uint64_t p = frames[3].offset;
  ASSERT_OK(env_->TruncateFile(path, p + kRecordHeaderSize + 300000));
  ExpectTornTailCut(options, path, p, kRecordHeaderSize + 300000,
                    Slice(expected, 1, 4));
}

TEST_F(SegmentedWalTest, BadChecksumInTheLastRecordIsATornTail) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  const std::string path = SegmentPath(1);
  const std::vector<Frame> frames = RecordFrames(ReadAll(path));
  ASSERT_THAT(frames, SizeIs(5));
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(path, frames[4].offset + kRecordHeaderSize + 10));
  // Nothing after it proves it was durable (FORMAT.md "Limitation"): dropped,
  // but reported.
  ExpectTornTailCut(Options(), path, frames[4].offset, kFrameSize,
                    Slice(expected, 1, 5));
}

TEST_F(SegmentedWalTest, BadHeaderChecksumInTheLastRecordIsATornTail) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  const std::string path = SegmentPath(1);
  const std::vector<Frame> frames = RecordFrames(ReadAll(path));
  ASSERT_THAT(frames, SizeIs(5));
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(path, frames[4].offset + kRecordLsnOffset));
  ExpectTornTailCut(Options(), path, frames[4].offset, kFrameSize,
                    Slice(expected, 1, 5));
}

// Append A, Sync, append B, Sync, corrupt A: B's records say A was durable.
TEST_P(SegmentedWalEnvTest,
       CorruptRecordFollowedByLaterDurableRecordsFailsOpen) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    std::vector<WalRecord> records;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &records));
    ASSERT_OK(wal->Sync());
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &records));
    ASSERT_OK(wal->Sync());
  }
  const std::string path = SegmentPath(1);
  const std::vector<Frame> frames = RecordFrames(ReadAll(path));
  ASSERT_THAT(frames, SizeIs(6));
  ASSERT_EQ(frames[3].durable_lsn, 3u) << "FORMAT.md: a record carries the "
                                          "durable LSN its writer knew";
  const uint64_t bad = frames[1].offset;
  ASSERT_NO_FATAL_FAILURE(CorruptByte(path, bad + kRecordHeaderSize + 50));
  EXPECT_THAT(OpenExpectingFailure(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(SegmentName(1)),
                             HasSubstr(std::to_string(bad)))));
}

TEST_F(SegmentedWalTest,
       CorruptLastDurableRecordFollowedByLaterDurableRecordsFailsOpen) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    std::vector<WalRecord> records;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &records));
    ASSERT_OK(wal->Sync());
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &records));
    ASSERT_OK(wal->Sync());
  }
  const std::string path = SegmentPath(1);
  const std::vector<Frame> frames = RecordFrames(ReadAll(path));
  ASSERT_THAT(frames, SizeIs(6));
  // LSN 3 is exactly the durable LSN the later records carry.
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(path, frames[2].offset + kRecordLsnOffset));
  EXPECT_THAT(OpenExpectingFailure(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(SegmentName(1)),
                             HasSubstr(std::to_string(frames[2].offset)))));
}

TEST_F(SegmentedWalTest,
       ValidRecordAfterATornOneInTheUnsyncedWindowIsATornTail) {
  std::vector<WalRecord> records;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &records));
    ASSERT_OK(wal->Sync());
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &records));
    // No Sync: records 4..6 reach the file at close, never acknowledged.
  }
  const std::string path = SegmentPath(1);
  const std::string bytes = ReadAll(path);
  const std::vector<Frame> frames = RecordFrames(bytes);
  ASSERT_THAT(frames, SizeIs(6));
  ASSERT_EQ(frames[5].durable_lsn, 3u);
  // Record 4 is torn; records 5 and 6 survived (a reordering device), but
  // they only claim LSN 3 durable.
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(path, frames[3].offset + kRecordHeaderSize + 1));
  ExpectTornTailCut(Options(), path, frames[3].offset,
                    bytes.size() - frames[3].offset, Slice(records, 1, 4));
}

TEST_F(SegmentedWalTest, CorruptRecordInASealedSegmentIsDataLoss) {
  const SegmentedWalOptions options = SmallSegments(1024);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 40, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 3u);
  // The last record of the first (sealed) segment: nothing after it in its
  // segment, but sealing made it durable.
  const std::vector<Frame> frames = RecordFrames(ReadAll(segs[0].path));
  ASSERT_GE(frames.size(), 2u);
  const uint64_t bad = frames.back().offset;
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(segs[0].path, bad + kRecordHeaderSize + 3));
  // The default mode reads only footers of sealed segments at Open
  // (FORMAT.md), so the damage may surface at Open or at the first read of
  // that record; either way it is DataLoss naming file and offset, never a
  // shorter log.
  const auto is_data_loss =
      StatusIs(absl::StatusCode::kDataLoss,
               AllOf(HasSubstr(SegmentName(segs[0].first_lsn)),
                     HasSubstr(std::to_string(bad))));
  const std::map<std::string, std::string> before = Snapshot(dir_);
  absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
      SegmentedWal::Open(options);
  if (!wal.ok()) {
    EXPECT_THAT(wal.status(), is_data_loss);
    EXPECT_EQ(Snapshot(dir_), before) << "a failing Open changed the disk";
    return;
  }
  EXPECT_THAT((*wal)->Replay(), is_data_loss);
  EXPECT_THAT((*wal)->ReplayFrom(1), is_data_loss);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WalIterator> it, (*wal)->NewIterator(1));
  while (it->Valid()) it->Next();
  EXPECT_THAT(it->status(), is_data_loss);
  // Reads that start after the damage do not touch it.
  ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(**wal, segs[1].first_lsn, expected));
}

TEST_F(SegmentedWalTest, CorruptFooterOfASealedSegmentFailsOpen) {
  const SegmentedWalOptions options = SmallSegments(1024);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 40, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 3u);
  const std::vector<Frame> frames = ScanFrames(ReadAll(segs[1].path));
  ASSERT_FALSE(frames.empty());
  ASSERT_TRUE(frames.back().footer);
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(segs[1].path, frames.back().offset + kRecordHeaderSize + 1));
  EXPECT_THAT(OpenExpectingFailure(options),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr(SegmentName(segs[1].first_lsn))));
}

TEST_F(SegmentedWalTest, ZeroedTailIsACleanEnd) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  const std::string path = SegmentPath(1);
  // Preallocated (zero-filled) space after the last record.
  ASSERT_NO_FATAL_FAILURE(AppendToFile(path, std::string(8192, '\0')));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    EXPECT_EQ(wal->next_lsn(), 6u);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &expected));
    ASSERT_OK(wal->Sync());
  }
  // The records appended after the zeros are found again.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  EXPECT_EQ(wal->next_lsn(), 9u);
}

TEST_F(SegmentedWalTest, ZeroedTailIsCleanEvenInAbsoluteConsistencyMode) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  ASSERT_NO_FATAL_FAILURE(AppendToFile(SegmentPath(1), std::string(700, '\0')));
  SegmentedWalOptions options = Options();
  options.recovery_mode = RecoveryMode::kAbsoluteConsistency;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, GarbageTailIsDroppedAndCut) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  const std::string path = SegmentPath(1);
  const uint64_t end = FileSize(path);
  std::string garbage = rnd_.RandomBytes(300);
  garbage[0] = '\x7f';  // not a zero run
  ASSERT_NO_FATAL_FAILURE(AppendToFile(path, garbage));
  ExpectTornTailCut(Options(), path, end, garbage.size(), expected);
}

// A recycled or preallocated file: the tail holds real record frames, with
// exactly the LSNs the reader expects next, from another segment of the same
// first LSN (so only the salt differs). They must not be taken as records.
TEST_F(SegmentedWalTest, StaleRecordsFromAnOlderSaltAreNotAccepted) {
  std::vector<WalRecord> older;
  SegmentedWalOptions other = Options();
  other.wal_dir = other_dir_;
  ASSERT_NO_FATAL_FAILURE(BuildLog(other, 6, kPayload, &older));
  const std::string older_bytes = ReadAll(other_dir_ + "/" + SegmentName(1));
  ASSERT_THAT(RecordFrames(older_bytes), SizeIs(6));

  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 2, kPayload, &expected));
  const std::string path = SegmentPath(1);
  const std::string bytes = ReadAll(path);
  ASSERT_EQ(bytes.size(), kSegmentHeaderSize + 2 * kFrameSize);
  // Frames of LSNs 3..6 of the older segment, right where LSN 3 belongs.
  const std::string stale = older_bytes.substr(bytes.size());
  ASSERT_EQ(stale.size(), 4 * kFrameSize);
  ASSERT_NO_FATAL_FAILURE(AppendToFile(path, stale));
  ExpectTornTailCut(Options(), path, bytes.size(), stale.size(), expected);
}

TEST_F(SegmentedWalTest, StaleRecordInZeroFilledSpaceIsNotAccepted) {
  std::vector<WalRecord> older;
  SegmentedWalOptions other = Options();
  other.wal_dir = other_dir_;
  ASSERT_NO_FATAL_FAILURE(BuildLog(other, 6, kPayload, &older));
  const std::string older_bytes = ReadAll(other_dir_ + "/" + SegmentName(1));
  const std::vector<Frame> older_frames = RecordFrames(older_bytes);
  ASSERT_THAT(older_frames, SizeIs(6));

  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 2, kPayload, &expected));
  const std::string path = SegmentPath(1);
  const uint64_t end = FileSize(path);
  // Preallocated space: zeros, a valid frame of another segment (LSN 3), zeros.
  const std::string tail =
      std::string(512, '\0') +
      older_bytes.substr(older_frames[2].offset, kFrameSize) +
      std::string(512, '\0');
  ASSERT_NO_FATAL_FAILURE(AppendToFile(path, tail));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    EXPECT_EQ(wal->next_lsn(), 3u);
    EXPECT_EQ(FileSize(path), end) << "the stale bytes were not cut off";
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, kPayload, &expected));
    ASSERT_OK(wal->Sync());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, MissingMiddleSegmentIsDataLossNamingTheGap) {
  const SegmentedWalOptions options = SmallSegments(1024);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 40, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 4u);  // 3+ sealed and the active one
  ASSERT_OK(env_->DeleteFile(segs[1].path));
  EXPECT_THAT(OpenExpectingFailure(options),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(SegmentName(segs[0].first_lsn)),
                             HasSubstr(SegmentName(segs[2].first_lsn)))));
}

TEST_F(SegmentedWalTest, SegmentCopiedUnderAnotherLsnIsDataLoss) {
  const SegmentedWalOptions options = SmallSegments(1024);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 40, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 4u);
  ASSERT_GE(segs[2].first_lsn - segs[1].first_lsn, 3u);
  // A copy of segment 1 named as if it started two LSNs later: it overlaps
  // segment 1 and its header disagrees with its name.
  const uint64_t fake = segs[1].first_lsn + 2;
  ASSERT_NO_FATAL_FAILURE(WriteAll(SegmentPath(fake), ReadAll(segs[1].path)));
  EXPECT_THAT(
      OpenExpectingFailure(options),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr(SegmentName(fake))));
}

TEST_F(SegmentedWalTest, OverlappingSegmentsAreDataLoss) {
  // Two logs of the same LSNs cut into segments at different places; a
  // genuine sealed segment of one (valid header, name and footer) dropped into
  // the other overlaps its neighbours.
  const SegmentedWalOptions options = SmallSegments(1024);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 60, kPayload, &expected, &segs));
  SegmentedWalOptions other = SmallSegments(2500);
  other.wal_dir = other_dir_;
  std::vector<WalRecord> other_records;
  std::vector<SegmentMeta> other_segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(other, 60, kPayload, &other_records, &other_segs));
  const SegmentMeta* intruder = nullptr;
  for (size_t i = 1; i + 1 < other_segs.size() && intruder == nullptr; ++i) {
    const uint64_t lsn = other_segs[i].first_lsn;
    bool taken = false;
    for (const SegmentMeta& s : segs) taken |= s.first_lsn == lsn;
    if (!taken && lsn < segs.back().first_lsn) intruder = &other_segs[i];
  }
  ASSERT_NE(intruder, nullptr) << "pick other segment sizes";
  ASSERT_NO_FATAL_FAILURE(
      WriteAll(SegmentPath(intruder->first_lsn), ReadAll(intruder->path)));
  EXPECT_THAT(OpenExpectingFailure(options),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(SegmentedWalTest, UnknownFormatVersionIsFailedPrecondition) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  const std::string path = SegmentPath(1);
  std::string bytes = ReadAll(path);
  ASSERT_EQ(GetLE(bytes, kSegmentVersionOffset, 4), 1u);
  PutLE(&bytes, kSegmentVersionOffset, 4, 2);  // written by a newer segwal
  PutLE(&bytes, kSegmentHeaderCrcOffset, 4,
        crc32c::Mask(crc32c::Value(bytes.data(), kSegmentHeaderCrcOffset)));
  ASSERT_NO_FATAL_FAILURE(WriteAll(path, bytes));
  EXPECT_THAT(
      OpenExpectingFailure(Options()),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("version")));
}

TEST_F(SegmentedWalTest, CorruptHeaderOfALastSegmentWithRecordsIsDataLoss) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  // Longer than a header: records were written after a durable header, so a
  // bad header is corruption, not a torn creation.
  ASSERT_NO_FATAL_FAILURE(CorruptByte(SegmentPath(1), kSegmentSaltOffset + 3));
  EXPECT_THAT(OpenExpectingFailure(Options()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(SegmentName(1))));
}

TEST_F(SegmentedWalTest, TornHeaderOfABrandNewLastSegmentIsRecreated) {
  const SegmentedWalOptions options = SmallSegments(1024);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 40, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 3u);
  // A crash right after creating the last segment: its header is torn, no
  // record of it can have been acknowledged (FORMAT.md, Durability step 1).
  const uint64_t last_first = segs.back().first_lsn;
  const std::string last_path = segs.back().path;
  const std::string header = ReadAll(last_path).substr(0, kSegmentHeaderSize);
  std::string garbled = header;
  garbled[kSegmentSaltOffset] ^= 1;
  const std::vector<WalRecord> kept = Slice(expected, 1, last_first);
  for (const std::string& torn : {std::string(), header.substr(0, 30), garbled,
                                  std::string(kSegmentHeaderSize, '\0')}) {
    SCOPED_TRACE(absl::StrCat("torn header of ", torn.size(), " bytes"));
    ASSERT_NO_FATAL_FAILURE(WriteAll(last_path, torn));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, kept));
    EXPECT_EQ(wal->next_lsn(), last_first);
    EXPECT_THAT(wal->Append(1, 1, 1, 1, "after"), IsOkAndHolds(last_first));
    ASSERT_OK(wal->Sync());
    wal.reset();
    ASSERT_OK_AND_ASSIGN(wal, SegmentedWal::Open(options));
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
    ASSERT_EQ(got.size(), kept.size() + 1);
    EXPECT_EQ(got.back().lsn, last_first);
    EXPECT_EQ(got.back().payload, "after");
    wal.reset();
    // Back to the torn state for the next case, removing whatever came after.
    ASSERT_OK_AND_ASSIGN(std::vector<std::string> children,
                         env_->GetChildren(dir_));
    for (const std::string& name : children) {
      if (name.size() == kSegmentNameDigits + 4 &&
          name > SegmentName(last_first)) {
        ASSERT_OK(env_->DeleteFile(dir_ + "/" + name));
      }
    }
  }
}

TEST_F(SegmentedWalTest, TornHeaderOfTheOnlySegmentIsRecreated) {
  { ASSERT_OK(SegmentedWal::Open(Options()).status()); }
  ASSERT_OK(env_->TruncateFile(SegmentPath(1), 30));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(Options()));
  EXPECT_THAT(wal->Replay(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "first"), IsOkAndHolds(1u));
  ASSERT_OK(wal->Sync());
  wal.reset();
  ASSERT_OK_AND_ASSIGN(wal, SegmentedWal::Open(Options()));
  EXPECT_THAT(wal->Replay(), IsOkAndHolds(SizeIs(1)));
}

TEST_F(SegmentedWalTest, DuplicatedLastRecordAtTheTailIsATornTail) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  const std::string path = SegmentPath(1);
  const std::string bytes = ReadAll(path);
  const std::vector<Frame> frames = RecordFrames(bytes);
  ASSERT_THAT(frames, SizeIs(5));
  // A valid frame of this very segment, but LSN 5 where 6 is expected.
  ASSERT_NO_FATAL_FAILURE(
      AppendToFile(path, bytes.substr(frames[4].offset, kFrameSize)));
  ExpectTornTailCut(Options(), path, bytes.size(), kFrameSize, expected);
}

TEST_F(SegmentedWalTest,
       RecordReplacedByAnEarlierOneOfTheSameSegmentIsDataLoss) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    std::vector<WalRecord> records;
    for (int i = 0; i < 6; ++i) {
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 1, kPayload, &records));
      ASSERT_OK(wal->Sync());
    }
  }
  const std::string path = SegmentPath(1);
  std::string bytes = ReadAll(path);
  const std::vector<Frame> frames = RecordFrames(bytes);
  ASSERT_THAT(frames, SizeIs(6));
  // Record 4's place holds a valid copy of record 2: LSN out of sequence,
  // and records 5 and 6 say LSN 4 was durable.
  bytes.replace(frames[3].offset, kFrameSize,
                bytes.substr(frames[1].offset, kFrameSize));
  ASSERT_NO_FATAL_FAILURE(WriteAll(path, bytes));
  EXPECT_THAT(OpenExpectingFailure(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(SegmentName(1)),
                             HasSubstr(std::to_string(frames[3].offset)))));
}

// The header CRC is checked before the length is trusted; here the CRC is
// valid too, so the length itself must be judged (FORMAT.md: above
// max_record_size plus overhead, or past the end of the file, is damage).
TEST_F(SegmentedWalTest,
       ImpossibleLengthBehindAValidHeaderChecksumIsATornTail) {
  for (uint64_t length : {uint64_t{0xfffffff0}, uint64_t{60} << 20}) {
    SCOPED_TRACE(absl::StrCat("stored length ", length));
    dir_ = absl::StrCat("/wal_len_", length);
    std::vector<WalRecord> expected;
    ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
    const std::string path = SegmentPath(1);
    std::string bytes = ReadAll(path);
    const std::vector<Frame> frames = RecordFrames(bytes);
    ASSERT_THAT(frames, SizeIs(5));
    PutLE(&bytes, frames[4].offset + kRecordLengthOffset, 4, length);
    ResealRecordHeader(&bytes, frames[4].offset);
    ASSERT_NO_FATAL_FAILURE(WriteAll(path, bytes));
    ExpectTornTailCut(Options(), path, frames[4].offset, kFrameSize,
                      Slice(expected, 1, 5));
  }
}

TEST_F(SegmentedWalTest, SkipAnyCorruptedRecordsResyncsAfterACorruptHeader) {
  std::vector<WalRecord> expected;
  std::vector<Frame> frames;
  ASSERT_NO_FATAL_FAILURE(BuildLogSyncingEach(8, &expected, &frames));
  const std::string path = SegmentPath(1);
  // The length field of record 3: its frame cannot be stepped over.
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(path, frames[2].offset + kRecordLengthOffset));
  SegmentedWalOptions options = Options();
  options.recovery_mode = RecoveryMode::kSkipAnyCorruptedRecords;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  std::vector<WalRecord> kept = expected;
  kept.erase(kept.begin() + 2);
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, kept));
  // One entry: the frame skipped, nothing more (the records after it are kept).
  EXPECT_THAT(wal->recovery_report().drops,
              ElementsAre(DropAt(path, frames[2].offset, kFrameSize)));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "after"), IsOkAndHolds(9u));
}

// kSkipAnyCorruptedRecords in the last segment: damage proven durable is
// skipped, and a torn tail after it is still cut. Each gets one report entry
// covering exactly its bytes.
TEST_F(SegmentedWalTest, SkipAnyCorruptedRecordsReportsASkipAndALaterTornTail) {
  std::vector<WalRecord> expected;
  std::vector<Frame> frames;
  ASSERT_NO_FATAL_FAILURE(BuildLogSyncingEach(8, &expected, &frames));
  const std::string path = SegmentPath(1);
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(path, frames[2].offset + kRecordHeaderSize + 7));
  // Record 8 torn: half of it is on disk, and no later record vouches for it.
  const uint64_t torn_size = frames[7].offset + frames[7].size / 2;
  ASSERT_OK(env_->TruncateFile(path, torn_size));
  SegmentedWalOptions options = Options();
  options.recovery_mode = RecoveryMode::kSkipAnyCorruptedRecords;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(
      *wal, {expected[0], expected[1], expected[3], expected[4], expected[5],
             expected[6]}));
  const RecoveryReport& report = wal->recovery_report();
  ASSERT_THAT(report.drops,
              ElementsAre(DropAt(path, frames[2].offset, frames[2].size),
                          DropAt(path, frames[7].offset,
                                 torn_size - frames[7].offset)));
  EXPECT_THAT(report.drops[0].reason, HasSubstr("LSNs 3..3 missing"));
  EXPECT_THAT(report.drops[1].reason, HasSubstr("torn tail"));
  EXPECT_TRUE(report.truncated_tail);
  EXPECT_EQ(FileSize(path), frames[7].offset);
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "after"), IsOkAndHolds(8u));
}

// A crash after sealing a segment and before creating the next one.
TEST_F(SegmentedWalTest, SealedLastSegmentIsKeptAndANewOneStarted) {
  const SegmentedWalOptions options = SmallSegments(1024);
  std::vector<WalRecord> expected;
  uint64_t empty_segment = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    // Append until a rollover leaves an empty active segment.
    for (int i = 0; i < 100 && empty_segment == 0; ++i) {
      const uint64_t active = wal->active_segment_first_lsn();
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 1, kPayload, &expected));
      if (wal->active_segment_first_lsn() != active &&
          wal->active_segment_first_lsn() == wal->next_lsn()) {
        empty_segment = wal->active_segment_first_lsn();
      }
    }
    ASSERT_OK(wal->Sync());
  }
  ASSERT_NE(empty_segment, 0u) << "expected an eager rollover";
  ASSERT_EQ(FileSize(SegmentPath(empty_segment)), kSegmentHeaderSize);
  ASSERT_OK(env_->DeleteFile(SegmentPath(empty_segment)));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    EXPECT_EQ(wal->next_lsn(), empty_segment);
    EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &expected));
    ASSERT_OK(wal->Sync());
    EXPECT_TRUE(env_->FileExists(SegmentPath(empty_segment)));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, FilesNotNamedLikeSegmentsAreIgnoredAndKept) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(SmallSegments(1024), 30, kPayload, &expected));
  const std::vector<std::string> foreign = {
      "notes.txt", "1.wal", SegmentName(1) + ".bak", "0000000000000000000a.wal",
      "000000000000000000001.wal"};
  for (const std::string& name : foreign) {
    ASSERT_NO_FATAL_FAILURE(
        WriteAll(dir_ + "/" + name, "not a segment " + name));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(SmallSegments(1024)));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  ASSERT_OK(wal->TruncateBefore(UINT64_MAX).status());
  for (const std::string& name : foreign) {
    EXPECT_EQ(ReadAll(dir_ + "/" + name), "not a segment " + name);
  }
}

// ===================== Recovery modes on the same damage =====================

// A torn tail: the last record of the only segment lost its end.
class TornTailTest : public SegmentedWalTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 10, kPayload, &expected_));
    path_ = SegmentPath(1);
    const std::vector<Frame> frames = RecordFrames(ReadAll(path_));
    ASSERT_THAT(frames, SizeIs(10));
    torn_at_ = frames[9].offset;
    ASSERT_OK(env_->TruncateFile(path_, torn_at_ + kRecordHeaderSize + 40));
  }
  SegmentedWalOptions Mode(RecoveryMode mode) const {
    SegmentedWalOptions options = Options();
    options.recovery_mode = mode;
    return options;
  }
  std::vector<WalRecord> expected_;
  std::string path_;
  uint64_t torn_at_ = 0;
};

TEST_F(TornTailTest, AbsoluteConsistencyFailsOpen) {
  EXPECT_THAT(OpenExpectingFailure(Mode(RecoveryMode::kAbsoluteConsistency)),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(SegmentName(1)),
                             HasSubstr(std::to_string(torn_at_)))));
}

TEST_F(TornTailTest, TolerateCorruptedTailCutsIt) {
  ExpectTornTailCut(Mode(RecoveryMode::kTolerateCorruptedTail), path_, torn_at_,
                    kRecordHeaderSize + 40, Slice(expected_, 1, 10));
}

TEST_F(TornTailTest, PointInTimeRecoveryCutsIt) {
  ExpectTornTailCut(Mode(RecoveryMode::kPointInTimeRecovery), path_, torn_at_,
                    kRecordHeaderSize + 40, Slice(expected_, 1, 10));
}

TEST_F(TornTailTest, SkipAnyCorruptedRecordsCutsIt) {
  ExpectTornTailCut(Mode(RecoveryMode::kSkipAnyCorruptedRecords), path_,
                    torn_at_, kRecordHeaderSize + 40, Slice(expected_, 1, 10));
}

// Corruption: one record in a sealed middle segment has a bad payload.
class CorruptSealedRecordTest : public SegmentedWalTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(
        BuildLog(SmallSegments(1024), 40, kPayload, &expected_, &segs_));
    ASSERT_GE(segs_.size(), 4u);
    const std::vector<Frame> frames = RecordFrames(ReadAll(segs_[1].path));
    ASSERT_GE(frames.size(), 4u);
    bad_lsn_ = frames[2].lsn;
    bad_offset_ = frames[2].offset;
    ASSERT_EQ(bad_lsn_, segs_[1].first_lsn + 2);
    ASSERT_NO_FATAL_FAILURE(
        CorruptByte(segs_[1].path, bad_offset_ + kRecordHeaderSize + 7));
  }
  SegmentedWalOptions Mode(RecoveryMode mode) const {
    SegmentedWalOptions options = SmallSegments(1024);
    options.recovery_mode = mode;
    return options;
  }
  std::vector<WalRecord> expected_;
  std::vector<SegmentMeta> segs_;
  uint64_t bad_lsn_ = 0;
  uint64_t bad_offset_ = 0;
};

TEST_F(CorruptSealedRecordTest,
       AbsoluteConsistencyFailsOpenNamingFileAndOffset) {
  EXPECT_THAT(OpenExpectingFailure(Mode(RecoveryMode::kAbsoluteConsistency)),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(SegmentName(segs_[1].first_lsn)),
                             HasSubstr(std::to_string(bad_offset_)))));
}

TEST_F(CorruptSealedRecordTest, TolerateCorruptedTailNeverReturnsAShorterLog) {
  const auto is_data_loss =
      StatusIs(absl::StatusCode::kDataLoss,
               AllOf(HasSubstr(SegmentName(segs_[1].first_lsn)),
                     HasSubstr(std::to_string(bad_offset_))));
  const std::map<std::string, std::string> before = Snapshot(dir_);
  absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
      SegmentedWal::Open(Mode(RecoveryMode::kTolerateCorruptedTail));
  if (!wal.ok()) {
    EXPECT_THAT(wal.status(), is_data_loss);
    EXPECT_EQ(Snapshot(dir_), before);
    return;
  }
  EXPECT_THAT((*wal)->Replay(), is_data_loss);
  EXPECT_THAT((*wal)->ReplayFrom(bad_lsn_), is_data_loss);
  // Reads that start after the damaged segment do not touch it.
  ASSERT_NO_FATAL_FAILURE(
      ExpectReplayFrom(**wal, segs_[2].first_lsn, expected_));
}

TEST_F(CorruptSealedRecordTest,
       PointInTimeRecoveryCutsThereAndQuarantinesLaterSegments) {
  const SegmentedWalOptions options = Mode(RecoveryMode::kPointInTimeRecovery);
  const std::vector<WalRecord> kept = Slice(expected_, 1, bad_lsn_);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, kept));
    EXPECT_EQ(wal->next_lsn(), bad_lsn_);
    EXPECT_EQ(wal->recovery_report().last_lsn, bad_lsn_ - 1);
    const std::vector<RecoveryDrop>& drops = wal->recovery_report().drops;
    EXPECT_THAT(drops, Contains(DropStartingAt(segs_[1].path, bad_offset_)));
    EXPECT_EQ(FileSize(segs_[1].path), bad_offset_)
        << "the bad segment is cut at the bad record";
    EXPECT_TRUE(env_->FileExists(segs_[0].path));
    for (size_t i = 2; i < segs_.size(); ++i) {
      SCOPED_TRACE(segs_[i].path);
      EXPECT_FALSE(env_->FileExists(segs_[i].path));
      EXPECT_TRUE(env_->FileExists(QuarantinePath(segs_[i].first_lsn)))
          << "later segments are moved to quarantine/, never deleted";
      EXPECT_THAT(drops,
                  Contains(Field(&RecoveryDrop::file,
                                 HasSubstr(SegmentName(segs_[i].first_lsn)))));
    }
    ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 1, kept));
    EXPECT_THAT(wal->Append(1, 1, 1, 1, "after"), IsOkAndHolds(bad_lsn_));
    ASSERT_OK(wal->Sync());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
  ASSERT_EQ(got.size(), kept.size() + 1);
  EXPECT_EQ(got.back().payload, "after");
  got.pop_back();
  EXPECT_TRUE(SameRecords(got, kept));
}

TEST_F(CorruptSealedRecordTest, SkipAnyCorruptedRecordsSkipsOnlyTheBadRecord) {
  const SegmentedWalOptions options =
      Mode(RecoveryMode::kSkipAnyCorruptedRecords);
  std::vector<WalRecord> kept = expected_;
  kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(bad_lsn_ - 1));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    EXPECT_THAT(wal->recovery_report().drops,
                Contains(DropAt(segs_[1].path, bad_offset_, kFrameSize)));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, kept));
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> from_bad,
                         wal->ReplayFrom(bad_lsn_));
    EXPECT_TRUE(SameRecords(from_bad, Slice(kept, bad_lsn_)));
    EXPECT_EQ(wal->next_lsn(), 41u);
    EXPECT_THAT(wal->Append(1, 1, 1, 1, "after"), IsOkAndHolds(41u));
    ASSERT_OK(wal->Sync());
  }
  // Left on disk and skipped again.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
  ASSERT_EQ(got.size(), kept.size() + 1);
  EXPECT_EQ(got.back().lsn, 41u);
  got.pop_back();
  EXPECT_TRUE(SameRecords(got, kept));
}

// Two point-in-time recoveries that each quarantine a segment of the same
// name (the log reuses LSNs after a cut): the first one's copy must survive.
TEST_F(SegmentedWalTest,
       PointInTimeRecoveryNeverOverwritesEarlierQuarantinedSegments) {
  SegmentedWalOptions options = SmallSegments(1024);
  options.recovery_mode = RecoveryMode::kPointInTimeRecovery;
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 40, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 4u);
  // First damage: a record in segment 1; segments 2.. go to quarantine/.
  std::vector<Frame> frames = RecordFrames(ReadAll(segs[1].path));
  ASSERT_GE(frames.size(), 3u);
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(segs[1].path, frames[1].offset + kRecordHeaderSize + 5));
  const std::string first_quarantined = ReadAll(segs[3].path);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    ASSERT_EQ(wal->next_lsn(), frames[1].lsn);
    ASSERT_TRUE(env_->FileExists(QuarantinePath(segs[3].first_lsn)));
    // Refill: the same record sizes give the same segment boundaries.
    std::vector<WalRecord> more;
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 40, kPayload, &more));
    ASSERT_OK(wal->Sync());
    ASSERT_OK_AND_ASSIGN(std::vector<SegmentMeta> now, wal->ListSegments());
    bool reused = false;
    for (const SegmentMeta& m : now) reused |= m.first_lsn == segs[3].first_lsn;
    ASSERT_TRUE(reused) << "test setup: expected a new segment named like the "
                           "quarantined one";
  }
  // Second damage: a record in segment 2 (new); the new segment 3 must be
  // quarantined without replacing the old one.
  frames = RecordFrames(ReadAll(segs[2].path));
  ASSERT_GE(frames.size(), 3u);
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(segs[2].path, frames[1].offset + kRecordHeaderSize + 5));
  ASSERT_OK(SegmentedWal::Open(options).status());
  bool kept = false;
  std::map<std::string, std::string> quarantine =
      Snapshot(dir_ + "/quarantine");
  for (const auto& [name, bytes] : quarantine)
    kept |= bytes == first_quarantined;
  EXPECT_TRUE(kept) << "the segment quarantined by the first recovery was "
                       "overwritten by the second (quarantined segments must "
                       "never be deleted)";
}

// RocksDB #7701: point-in-time recovery replayed across a hole in the log.
TEST_F(SegmentedWalTest, PointInTimeRecoveryNeverReplaysAcrossAMissingSegment) {
  SegmentedWalOptions options = SmallSegments(1024);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 40, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 4u);
  ASSERT_OK(env_->DeleteFile(segs[1].path));
  options.recovery_mode = RecoveryMode::kPointInTimeRecovery;
  const std::map<std::string, std::string> before = Snapshot(dir_);
  absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
      SegmentedWal::Open(options);
  if (!wal.ok()) {
    EXPECT_THAT(wal.status(), StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_EQ(Snapshot(dir_), before) << "a failing Open changed the disk";
    return;
  }
  // Recovered to the point in time before the hole, never past it.
  ASSERT_NO_FATAL_FAILURE(
      ExpectReplay(**wal, Slice(expected, 1, segs[1].first_lsn)));
  EXPECT_EQ((*wal)->next_lsn(), segs[1].first_lsn);
  EXPECT_THAT((*wal)->recovery_report().drops, Not(IsEmpty()));
  for (size_t i = 2; i < segs.size(); ++i) {
    EXPECT_TRUE(env_->FileExists(QuarantinePath(segs[i].first_lsn)))
        << segs[i].path << " must be kept in quarantine/";
  }
}

// Corruption in the tail segment, proved by later durable records.
class CorruptDurableTailRecordTest : public SegmentedWalTest {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Options()));
    for (int group = 0; group < 4; ++group) {
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, kPayload, &expected_));
      ASSERT_OK(wal->Sync());
    }
    wal.reset();
    path_ = SegmentPath(1);
    const std::vector<Frame> frames = RecordFrames(ReadAll(path_));
    ASSERT_THAT(frames, SizeIs(12));
    bad_lsn_ = 5;
    bad_offset_ = frames[4].offset;
    ASSERT_NO_FATAL_FAILURE(
        CorruptByte(path_, bad_offset_ + kRecordHeaderSize + 9));
  }
  SegmentedWalOptions Mode(RecoveryMode mode) const {
    SegmentedWalOptions options = Options();
    options.recovery_mode = mode;
    return options;
  }
  std::vector<WalRecord> expected_;
  std::string path_;
  uint64_t bad_lsn_ = 0;
  uint64_t bad_offset_ = 0;
};

TEST_F(CorruptDurableTailRecordTest, TolerateCorruptedTailFailsOpen) {
  EXPECT_THAT(OpenExpectingFailure(Mode(RecoveryMode::kTolerateCorruptedTail)),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(SegmentName(1)),
                             HasSubstr(std::to_string(bad_offset_)))));
}

TEST_F(CorruptDurableTailRecordTest, AbsoluteConsistencyFailsOpen) {
  EXPECT_THAT(OpenExpectingFailure(Mode(RecoveryMode::kAbsoluteConsistency)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(SegmentName(1))));
}

TEST_F(CorruptDurableTailRecordTest,
       PointInTimeRecoveryKeepsTheRecordsBeforeIt) {
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<SegmentedWal> wal,
      SegmentedWal::Open(Mode(RecoveryMode::kPointInTimeRecovery)));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, Slice(expected_, 1, bad_lsn_)));
  EXPECT_EQ(wal->next_lsn(), bad_lsn_);
  EXPECT_THAT(wal->recovery_report().drops,
              Contains(DropStartingAt(path_, bad_offset_)));
  EXPECT_EQ(FileSize(path_), bad_offset_);
}

TEST_F(CorruptDurableTailRecordTest,
       SkipAnyCorruptedRecordsKeepsTheRecordsAfterIt) {
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<SegmentedWal> wal,
      SegmentedWal::Open(Mode(RecoveryMode::kSkipAnyCorruptedRecords)));
  std::vector<WalRecord> kept = expected_;
  kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(bad_lsn_ - 1));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, kept));
  EXPECT_THAT(wal->recovery_report().drops,
              ElementsAre(DropAt(path_, bad_offset_, kFrameSize)));
  EXPECT_THAT(wal->Append(1, 1, 1, 1, "after"), IsOkAndHolds(13u));
}

// ===================== Spare files (preallocation, recycling) ===============

// Copies a Snapshot into `dir` (as a crash would leave the files, with
// everything the WAL had written so far).
void RestoreSnapshot(Env* env, const std::string& dir,
                     const std::map<std::string, std::string>& files) {
  ASSERT_OK(env->CreateDirIfMissing(dir));
  for (const auto& [name, bytes] : files) {
    ASSERT_OK_AND_ASSIGN(auto f, env->NewWritableFile(dir + "/" + name));
    ASSERT_OK(f->Append(bytes));
    ASSERT_OK(f->Close());
  }
}

size_t CountSpares(Env* env, const std::string& dir) {
  size_t n = 0;
  auto children = env->GetChildren(dir);
  if (!children.ok()) return 0;
  for (const std::string& c : *children) {
    if (c.rfind("spare-", 0) == 0) n++;
  }
  return n;
}

SegmentedWalOptions InlineSpares(SegmentedWalOptions o, uint64_t target) {
  o.segment_target_size = target;
  o.preallocate_segments = true;
  o.background_preallocation = false;
  o.background_sealing = false;
  return o;
}

TEST_P(SegmentedWalEnvTest, SegmentsStartInSparesAndCloseLeavesNoSpareBytes) {
  const SegmentedWalOptions o = InlineSpares(Options(), 8192);
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    // The first segment is written in place into an 8 KiB zero-filled file.
    EXPECT_EQ(FileSize(SegmentPath(1)), 8192u);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 200, 100, &expected));
    ASSERT_OK(wal->Sync());
    EXPECT_GE(wal->GetStats().segments_from_spares, 3u);
    ASSERT_OK_AND_ASSIGN(segs, wal->ListSegments());
    ASSERT_GE(segs.size(), 3u);
    // Sealed segments end at their footer; the active one is a whole spare.
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      EXPECT_EQ(FileSize(segs[i].path), segs[i].file_size) << segs[i].path;
      EXPECT_LT(segs[i].file_size, 8192u + 1024);
    }
    EXPECT_EQ(FileSize(segs.back().path), 8192u);
    EXPECT_EQ(CountSpares(env_, dir_), 0u);  // in line: made at the roll
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
  // A clean close cuts the active segment after its last record.
  EXPECT_LT(FileSize(segs.back().path), 8192u);
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 100, 100, &expected));
  ASSERT_OK(wal->Sync());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_P(SegmentedWalEnvTest, NoSparesWhenPreallocationIsOff) {
  SegmentedWalOptions o = SmallSegments(4096);
  o.preallocate_segments = false;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 200, 100, &expected));
  ASSERT_OK(wal->Sync());
  ASSERT_OK(wal->TruncateBefore(100).status());
  EXPECT_EQ(CountSpares(env_, dir_), 0u);
  const WalStats s = wal->GetStats();
  EXPECT_EQ(s.segments_from_spares, 0u);
  EXPECT_EQ(s.spares_zero_filled + s.spares_recycled, 0u);
  ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
  for (const SegmentMeta& m : segs) {
    EXPECT_EQ(FileSize(m.path), m.file_size);
  }
}

// A crash while the active segment sits in a zero-filled spare: the zeros
// after the last record are a clean end, in every mode.
TEST_F(SegmentedWalTest, CrashInAZeroFilledSpareLosesNothingInAnyMode) {
  std::vector<WalRecord> expected;
  std::map<std::string, std::string> crashed;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(InlineSpares(Options(), 8192)));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 70, 100, &expected));
    ASSERT_OK(wal->Sync());
    crashed = Snapshot(dir_);
  }
  for (RecoveryMode mode :
       {RecoveryMode::kTolerateCorruptedTail, RecoveryMode::kAbsoluteConsistency,
        RecoveryMode::kPointInTimeRecovery,
        RecoveryMode::kSkipAnyCorruptedRecords}) {
    SCOPED_TRACE(static_cast<int>(mode));
    const std::string dir = other_dir_ + std::to_string(static_cast<int>(mode));
    ASSERT_NO_FATAL_FAILURE(RestoreSnapshot(env_, dir, crashed));
    SegmentedWalOptions o = InlineSpares(Options(), 8192);
    o.wal_dir = dir;
    o.recovery_mode = mode;
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    EXPECT_EQ(wal->recovery_report().records_recovered, expected.size());
    for (const RecoveryDrop& d : wal->recovery_report().drops) {
      EXPECT_THAT(d.reason, HasSubstr("zero fill")) << d.file;
    }
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
}

// A recycled segment keeps its old records after the new ones: under the new
// salt they are stale bytes, which recovery cuts as a torn tail and never
// returns.
TEST_F(SegmentedWalTest, RecycledSegmentsStaleBytesAreNeverReplayed) {
  SegmentedWalOptions o = InlineSpares(Options(), 4096);
  o.recycle_segments = 2;
  std::vector<WalRecord> all, expected;
  std::map<std::string, std::string> crashed;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 100, 100, &all));
    ASSERT_OK(wal->Sync());
    ASSERT_OK_AND_ASSIGN(TruncateResult t, wal->TruncateBefore(wal->next_lsn()));
    ASSERT_GE(t.segments_deleted, 2u);
    EXPECT_EQ(wal->GetStats().spares_recycled, 2u);  // the pool is empty
    EXPECT_EQ(CountSpares(env_, dir_), 2u);
    // Roll until both recycled spares were used, then "crash" with a few
    // records in the second.
    const uint64_t used_before = wal->GetStats().segments_from_spares;
    const uint64_t zero_filled = wal->GetStats().spares_zero_filled;
    while (wal->GetStats().segments_from_spares < used_before + 2) {
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 1, 100, &all));
    }
    EXPECT_EQ(wal->GetStats().spares_zero_filled, zero_filled);  // recycled
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, 100, &all));
    ASSERT_OK(wal->Sync());
    ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
    // The active file is longer than its records: old records follow them.
    EXPECT_GT(FileSize(segs.back().path), segs.back().file_size / 2);
    for (const WalRecord& r : all) {
      if (r.lsn >= segs.front().first_lsn) expected.push_back(r);
    }
    crashed = Snapshot(dir_);
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
  ASSERT_NO_FATAL_FAILURE(RestoreSnapshot(env_, other_dir_, crashed));
  o.wal_dir = other_dir_;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 50, 100, &expected));
  ASSERT_OK(wal->Sync());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

TEST_F(SegmentedWalTest, AbsoluteConsistencyNeverRecycles) {
  SegmentedWalOptions o = InlineSpares(Options(), 4096);
  o.recovery_mode = RecoveryMode::kAbsoluteConsistency;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 100, 100, &expected));
  ASSERT_OK(wal->Sync());
  ASSERT_OK_AND_ASSIGN(TruncateResult t, wal->TruncateBefore(wal->next_lsn()));
  EXPECT_GE(t.segments_deleted, 2u);
  EXPECT_EQ(wal->GetStats().spares_recycled, 0u);
  EXPECT_LE(CountSpares(env_, dir_), 1u);  // at most the zero-filled one
}

TEST_F(SegmentedWalTest, LeftoverSparesAreReusedOrDeleted) {
  ASSERT_OK(env_->CreateDirIfMissing(dir_));
  // Garbage, as a crash may leave a half-written or recycled spare.
  for (int i = 1; i <= 4; ++i) {
    WriteAll(dir_ + "/spare-0000000000000000000" + std::to_string(i) + ".tmp",
             rnd_.RandomBytes(6000));
  }
  SegmentedWalOptions o = InlineSpares(Options(), 4096);
  o.recycle_segments = 1;
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    // One kept (and used for the first segment), the rest deleted.
    EXPECT_EQ(wal->GetStats().spares_zero_filled, 0u);
    EXPECT_EQ(wal->GetStats().segments_from_spares, 1u);
    EXPECT_EQ(CountSpares(env_, dir_), 0u);
    EXPECT_EQ(FileSize(SegmentPath(1)), 6000u);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 10, 100, &expected));
    ASSERT_OK(wal->Sync());
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  // New spares do not reuse the names of the deleted ones' ids.
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 60, 100, &expected));
  ASSERT_OK(wal->Sync());
  auto children = env_->GetChildren(dir_);
  ASSERT_OK(children.status());
  for (const std::string& c : *children) {
    if (c.rfind("spare-", 0) == 0) {
      EXPECT_GT(c, "spare-00000000000000000004.tmp");
    }
  }
}

// io_uring writes (POSIX): the same log, byte for byte readable, across rolls,
// spares and a reopen; when the kernel allows io_uring, it was used.
TEST_P(SegmentedWalEnvTest, IoUringWritesTheSameLog) {
  SegmentedWalOptions o = InlineSpares(Options(), 8 << 10);
  o.use_io_uring = true;
  const uint64_t submits_before = PosixIoUringSubmitsForTesting();
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    for (int i = 0; i < 20; ++i) {
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 10, kRandomSize, &expected));
      ASSERT_OK(wal->Sync());
    }
    EXPECT_GE(wal->GetStats().rollovers, 2u);
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
  std::string why;
  if (GetParam() == EnvKind::kPosix && PosixIoUringAvailable(&why)) {
    EXPECT_GT(PosixIoUringSubmitsForTesting(), submits_before + 20);
  } else {
    EXPECT_EQ(PosixIoUringSubmitsForTesting(), submits_before) << why;
  }
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

// The background preparer keeps up with a writer that rolls often.
TEST_P(SegmentedWalEnvTest, BackgroundSparesServeRolls) {
  SegmentedWalOptions o = SmallSegments(64 << 10);
  o.background_preallocation = true;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  std::vector<WalRecord> expected;
  for (int round = 0; round < 400 && wal->GetStats().segments_from_spares < 4;
       ++round) {
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 50, 200, &expected));
    ASSERT_OK(wal->Sync());
  }
  EXPECT_GE(wal->GetStats().segments_from_spares, 4u);
  EXPECT_EQ(wal->GetStats().spare_failures, 0u);
  ASSERT_OK(wal->TruncateBefore(wal->next_lsn() / 2).status());
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 200, 200, &expected));
  ASSERT_OK(wal->Sync());
  ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
  std::vector<WalRecord> tail;
  for (const WalRecord& r : expected) {
    if (r.lsn >= segs.front().first_lsn) tail.push_back(r);
  }
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, tail));
}

// ===================== Parallel replay =====================
// SegmentedWalOptions::replay_threads: a replay of several segments decoded
// by several threads returns what the sequential read returns, errors
// included. replay_min_bytes_per_thread = 0 makes these small logs split.

class ParallelReplayTest : public SegmentedWalTest {
 protected:
  ParallelReplayTest() : read_env_(mem_env_.get()) {}

  // Segments of about 2 KiB, read with `threads` threads; no spare files
  // (ReadThreadsEnv cannot write in place: spares would stop at the first
  // roll anyway).
  SegmentedWalOptions Threads(size_t threads, SegmentedWalOptions base = {}) {
    SegmentedWalOptions o = base;
    o.wal_dir = dir_;
    o.env = &read_env_;
    o.segment_target_size = 2048;
    o.preallocate_segments = false;
    o.replay_threads = threads;
    o.replay_min_bytes_per_thread = 0;
    return o;
  }

  // Every read of a log, replayed with one thread and with four: both return
  // `want`, and the second really used more than one thread.
  void ExpectParallelMatchesSequential(const SegmentedWalOptions& base,
                                       const std::vector<WalRecord>& want,
                                       const std::vector<SegmentMeta>& segs) {
    ASSERT_GE(segs.size(), 6u);
    // An LSN in the middle of a segment, not its first.
    const uint64_t mid = segs[2].first_lsn + 2;
    ASSERT_LT(mid, segs[3].first_lsn);
    const std::vector<WalRecord> from_mid = Slice(want, mid);
    for (size_t threads : {size_t{1}, size_t{4}}) {
      SCOPED_TRACE(absl::StrCat("replay_threads=", threads));
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                           SegmentedWal::Open(Threads(threads, base)));
      read_env_.TakeReaderThreadCount();
      ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> all, wal->Replay());
      EXPECT_TRUE(SameRecords(all, want));
      const size_t readers = read_env_.TakeReaderThreadCount();
      if (threads == 1) {
        EXPECT_EQ(readers, 1u);
      } else {
        EXPECT_GE(readers, 2u) << "the replay was not split";
        EXPECT_LE(readers, 4u);
      }
      ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->ReplayFrom(mid));
      EXPECT_TRUE(SameRecords(got, from_mid));
      EXPECT_EQ(read_env_.TakeReaderThreadCount() >= 2, threads > 1);
      // A page that holds the whole range may be split; has_more is exact.
      ASSERT_OK_AND_ASSIGN(ReplayPage page,
                           wal->ReplayFromLimit(mid, from_mid.size()));
      EXPECT_TRUE(SameRecords(page.records, from_mid));
      EXPECT_FALSE(page.has_more);
      ASSERT_OK_AND_ASSIGN(page, wal->ReplayFromLimit(mid, SIZE_MAX));
      EXPECT_TRUE(SameRecords(page.records, from_mid));
      EXPECT_FALSE(page.has_more);
      ASSERT_OK_AND_ASSIGN(page,
                           wal->ReplayFromLimit(mid, from_mid.size() - 1));
      EXPECT_TRUE(SameRecords(
          page.records,
          std::vector<WalRecord>(from_mid.begin(), from_mid.end() - 1)));
      EXPECT_TRUE(page.has_more);
      // From the first LSN of a later segment, and past the end.
      ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, segs[4].first_lsn, want));
      ASSERT_OK_AND_ASSIGN(got, wal->ReplayFrom(wal->next_lsn()));
      EXPECT_THAT(got, IsEmpty());
    }
  }

  ReadThreadsEnv read_env_;
};

TEST_F(ParallelReplayTest, ParallelReplayMatchesSequentialReplay) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(Threads(1), 200, kRandomSize, &expected, &segs));
  ASSERT_NO_FATAL_FAILURE(ExpectParallelMatchesSequential({}, expected, segs));
}

TEST_F(ParallelReplayTest, ParallelReplayMatchesSequentialReplayWithSnappy) {
  SegmentedWalOptions base;
  base.compression = Compression::kSnappy;
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  {
    // Compressible payloads, so records really are stored compressed.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Threads(1, base)));
    for (int i = 0; i < 300; ++i) {
      WalRecord r = RandomRecord(wal->next_lsn(), 0);
      r.payload = std::string(100 + rnd_.Uniform(300), 'a' + i % 26) +
                  rnd_.RandomBytes(8);
      ASSERT_NO_FATAL_FAILURE(AppendRecord(wal.get(), r));
      expected.push_back(std::move(r));
    }
    ASSERT_OK(wal->Sync());
    ASSERT_OK_AND_ASSIGN(segs, wal->ListSegments());
  }
  uint64_t stored = 0, logical = 0;
  for (const SegmentMeta& m : segs) stored += m.file_size;
  for (const WalRecord& r : expected) logical += r.payload.size();
  ASSERT_LT(stored, logical) << "payloads were not stored compressed";
  ASSERT_NO_FATAL_FAILURE(
      ExpectParallelMatchesSequential(base, expected, segs));
}

TEST_F(ParallelReplayTest, ParallelReplayMatchesSequentialReplayEncrypted) {
  SegmentedWalOptions base;
  base.compression = Compression::kSnappy;
  base.encryption_ring.emplace(WalEncryptionKey::Generate());
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(Threads(1, base), 200, kRandomSize, &expected, &segs));
  // The records are not readable without the key: every run needs the ring.
  SegmentedWalOptions no_key = Threads(4);
  EXPECT_THAT(SegmentedWal::Open(no_key),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_NO_FATAL_FAILURE(
      ExpectParallelMatchesSequential(base, expected, segs));
}

// Damage in a middle segment: the parallel read fails with the status the
// sequential read fails with (file and offset of the first damage), even when
// a later run finds damage of its own.
TEST_F(ParallelReplayTest, CorruptMiddleSegmentFailsAsSequentialReplayDoes) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(Threads(1), 120, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 8u);
  const std::vector<Frame> frames = RecordFrames(ReadAll(segs[2].path));
  ASSERT_GE(frames.size(), 3u);
  const uint64_t bad = frames[1].offset;
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(segs[2].path, bad + kRecordHeaderSize + 5));
  // Damage in a later sealed segment too, found by another run.
  const std::vector<Frame> later = RecordFrames(ReadAll(segs[6].path));
  ASSERT_GE(later.size(), 1u);
  ASSERT_NO_FATAL_FAILURE(
      CorruptByte(segs[6].path, later[0].offset + kRecordHeaderSize + 5));
  const auto names_first_damage =
      StatusIs(absl::StatusCode::kDataLoss,
               AllOf(HasSubstr(SegmentName(segs[2].first_lsn)),
                     HasSubstr(absl::StrCat("offset ", bad))));
  absl::Status sequential, sequential_from;
  for (size_t threads : {size_t{1}, size_t{4}}) {
    SCOPED_TRACE(absl::StrCat("replay_threads=", threads));
    // The default mode reads only the footers of sealed segments at Open.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Threads(threads)));
    read_env_.TakeReaderThreadCount();
    absl::Status s = wal->Replay().status();
    EXPECT_THAT(s, names_first_damage);
    EXPECT_EQ(read_env_.TakeReaderThreadCount() >= 2, threads > 1);
    absl::Status from = wal->ReplayFrom(segs[1].first_lsn + 1).status();
    EXPECT_THAT(from, names_first_damage);
    if (threads == 1) {
      sequential = s;
      sequential_from = from;
    } else {
      EXPECT_EQ(s, sequential);
      EXPECT_EQ(from, sequential_from);
    }
    // Reads that start after the first damage stop at the second.
    EXPECT_THAT(wal->ReplayFrom(segs[3].first_lsn),
                StatusIs(absl::StatusCode::kDataLoss,
                         HasSubstr(SegmentName(segs[6].first_lsn))));
    // And reads that end before any damage still work.
    ASSERT_OK_AND_ASSIGN(ReplayPage page,
                         wal->ReplayFromLimit(1, segs[2].first_lsn - 1));
    EXPECT_TRUE(
        SameRecords(page.records, Slice(expected, 1, segs[2].first_lsn)));
    EXPECT_TRUE(page.has_more);
  }
}

// A read error (the Env failed, not damage) in a middle segment.
TEST_F(ParallelReplayTest,
       ReadErrorInAMiddleSegmentFailsAsSequentialReplayDoes) {
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(Threads(1), 120, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 8u);
  FaultInjectionEnv fault_env(&read_env_);
  absl::Status sequential;
  for (size_t threads : {size_t{1}, size_t{4}}) {
    SCOPED_TRACE(absl::StrCat("replay_threads=", threads));
    SegmentedWalOptions options = Threads(threads);
    options.env = &fault_env;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(options));
    fault_env.InjectError(kOpRead, absl::InternalError("injected read error"),
                          SegmentName(segs[3].first_lsn), 0, -1);
    read_env_.TakeReaderThreadCount();
    absl::Status s = wal->Replay().status();
    fault_env.ClearInjectedErrors();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInternal,
                            HasSubstr("injected read error")));
    if (threads == 1) {
      sequential = s;
    } else {
      EXPECT_GE(read_env_.TakeReaderThreadCount(), 2u);
      EXPECT_EQ(s, sequential);
    }
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  }
}

// kSkipAnyCorruptedRecords: every run replays recovery's jumps, and resyncs
// past damage that appeared after Open, as the sequential read does.
TEST_F(ParallelReplayTest, SkipAnyCorruptedRecordsSkipsTheSameRecords) {
  SegmentedWalOptions base;
  base.recovery_mode = RecoveryMode::kSkipAnyCorruptedRecords;
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(
      BuildLog(Threads(1, base), 120, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 8u);
  // Damage recovery finds and skips: the second record of segments 1 and 4.
  std::vector<uint64_t> bad_lsns;
  for (size_t seg : {size_t{1}, size_t{4}}) {
    const std::vector<Frame> frames = RecordFrames(ReadAll(segs[seg].path));
    ASSERT_GE(frames.size(), 5u);
    ASSERT_NO_FATAL_FAILURE(
        CorruptByte(segs[seg].path, frames[1].offset + kRecordHeaderSize + 9));
    bad_lsns.push_back(frames[1].lsn);
  }
  // Damage that appears after Open, further into segment 4: a segment with
  // skipped damage resyncs past it.
  const std::string late_path = segs[4].path;
  const std::string before_late = ReadAll(late_path);
  const std::vector<Frame> late = RecordFrames(before_late);
  ASSERT_GE(late.size(), 5u);
  bad_lsns.push_back(late[3].lsn);
  std::vector<WalRecord> kept;
  for (const WalRecord& r : expected) {
    if (std::find(bad_lsns.begin(), bad_lsns.end(), r.lsn) == bad_lsns.end()) {
      kept.push_back(r);
    }
  }
  ASSERT_EQ(kept.size(), expected.size() - 3);
  const std::vector<WalRecord> from_mid = Slice(kept, segs[1].first_lsn + 3);
  for (size_t threads : {size_t{1}, size_t{4}}) {
    SCOPED_TRACE(absl::StrCat("replay_threads=", threads));
    ASSERT_NO_FATAL_FAILURE(WriteAll(late_path, before_late));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                         SegmentedWal::Open(Threads(threads, base)));
    ASSERT_THAT(wal->recovery_report().drops, SizeIs(2));
    ASSERT_NO_FATAL_FAILURE(
        CorruptByte(late_path, late[3].offset + kRecordHeaderSize + 9));
    read_env_.TakeReaderThreadCount();
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
    EXPECT_TRUE(SameRecords(got, kept));
    EXPECT_EQ(read_env_.TakeReaderThreadCount() >= 2, threads > 1);
    ASSERT_OK_AND_ASSIGN(got, wal->ReplayFrom(segs[1].first_lsn + 3));
    EXPECT_TRUE(SameRecords(got, from_mid));
  }
}

// Replays split across threads while TruncateBefore deletes (and recycles)
// the segments they read: each replay returns a whole suffix of the log or
// OutOfRange, never a crash, a hole or a race (TSan).
TEST_F(SegmentedWalTest, TruncateBeforeDuringParallelReplays) {
  SegmentedWalOptions options = SmallSegments(1024);
  options.replay_threads = 4;
  options.replay_min_bytes_per_thread = 0;
  std::vector<WalRecord> expected;
  std::vector<SegmentMeta> segs;
  ASSERT_NO_FATAL_FAILURE(BuildLog(options, 400, kPayload, &expected, &segs));
  ASSERT_GE(segs.size(), 40u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                       SegmentedWal::Open(options));
  std::atomic<bool> done{false};
  std::thread truncator([&] {
    for (size_t i = 1; i < segs.size(); ++i) {
      EXPECT_OK(wal->TruncateBefore(segs[i].first_lsn).status());
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    done = true;
  });
  int replays = 0;
  while (!done || replays < 5) {
    absl::StatusOr<std::vector<WalRecord>> got = wal->Replay();
    ++replays;
    if (absl::IsOutOfRange(got.status())) continue;
    ASSERT_OK(got.status());
    ASSERT_FALSE(got->empty());
    EXPECT_EQ(got->back().lsn, expected.back().lsn);
    EXPECT_TRUE(SameRecords(*got, Slice(expected, got->front().lsn)))
        << "replay " << replays;
  }
  truncator.join();
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
  EXPECT_TRUE(SameRecords(got, Slice(expected, segs.back().first_lsn)));
}

TEST_F(SegmentedWalTest, OpenRejectsMoreThan64ReplayThreads) {
  SegmentedWalOptions options = Options();
  options.replay_threads = 65;
  EXPECT_THAT(SegmentedWal::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("replay_threads")));
  options.replay_threads = 64;
  EXPECT_OK(SegmentedWal::Open(options).status());
}

// ===================== Direct I/O (use_direct_io) =====================
// FORMAT.md, "Padding frames": flag bit 14, segment flag bit 1, 4 KiB blocks.

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kSegmentFlagsOffset = 40;    // u32 segment flags
constexpr uint32_t kSegmentFlagPadded = 1u << 1;
constexpr uint16_t kRecordFlagPadding = 1u << 14;

// Recomputes both CRCs of the frame at `offset` (its stored length trusted)
// after a test edited it, so it checks out as written by this segment.
void ResealFrame(std::string* bytes, uint64_t offset) {
  ResealRecordHeader(bytes, offset);
  const uint32_t header_crc = crc32c::Unmask(
      static_cast<uint32_t>(GetLE(*bytes, offset, 4)));
  const uint64_t len = GetLE(*bytes, offset + kRecordLengthOffset, 4);
  const uint32_t payload_crc = crc32c::Extend(
      header_crc, bytes->data() + offset + kRecordHeaderSize, len);
  PutLE(bytes, offset + 4, 4, crc32c::Mask(payload_crc));
}

bool IsPadding(const std::string& bytes, const Frame& f) {
  return (GetLE(bytes, f.offset + kRecordFlagsOffset, 2) &
          kRecordFlagPadding) != 0;
}

// Models how a device sees writes: every Flush, Sync or Close of a handle
// writes the whole blocks its new bytes touch (the first one again if it was
// written partially before), as O_DIRECT and the page cache both do. A
// successful Sync acknowledges every block the handle has written. Writing an
// acknowledged block again is recorded as a violation, per segment file
// (*.wal), across handles and WAL instances: the promise of use_direct_io.
class BlockWriteTrackingEnv : public EnvWrapper {
 public:
  explicit BlockWriteTrackingEnv(Env* base) : EnvWrapper(base), base_(base) {}

  std::vector<std::string> violations() const {
    std::lock_guard<std::mutex> l(mu_);
    return violations_;
  }
  uint64_t syncs() const {
    std::lock_guard<std::mutex> l(mu_);
    return syncs_;
  }
  // File sizes of segment files at each successful Sync, in order.
  std::vector<std::pair<std::string, uint64_t>> synced_sizes() const {
    std::lock_guard<std::mutex> l(mu_);
    return synced_sizes_;
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    Forget(path);
    return Wrap(path, 0, base_->NewWritableFile(path));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFileWithOptions(
      const std::string& path, const FileOptions& options) override {
    absl::StatusOr<std::unique_ptr<WritableFile>> f =
        base_->NewWritableFileWithOptions(path, options);
    if (f.ok()) Forget(path);
    return Wrap(path, 0, std::move(f));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    absl::StatusOr<std::unique_ptr<WritableFile>> f =
        base_->NewAppendableFile(path);
    const uint64_t start = f.ok() ? (*f)->Size() : 0;
    return Wrap(path, start, std::move(f));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path, uint64_t offset) override {
    return Wrap(path, offset, base_->ReopenWritableFile(path, offset));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFileWithOptions(
      const std::string& path, uint64_t offset,
      const FileOptions& options) override {
    return Wrap(path, offset,
                base_->ReopenWritableFileWithOptions(path, offset, options));
  }
  absl::Status DeleteFile(const std::string& path) override {
    Forget(path);
    return base_->DeleteFile(path);
  }
  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    Forget(from);
    Forget(to);
    return base_->RenameFile(from, to);
  }
  absl::Status TruncateFile(const std::string& path, uint64_t size) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      std::set<uint64_t>& acked = acked_[path];
      acked.erase(acked.lower_bound((size + kBlock - 1) / kBlock), acked.end());
    }
    return base_->TruncateFile(path, size);
  }

 private:
  class TrackedFile : public WritableFile {
   public:
    TrackedFile(BlockWriteTrackingEnv* env, std::string path, uint64_t start,
                std::unique_ptr<WritableFile> base)
        : env_(env),
          path_(std::move(path)),
          start_(start),
          written_(start),
          size_(start),
          base_(std::move(base)) {}
    absl::Status Append(absl::string_view data) override {
      absl::Status s = base_->Append(data);
      if (s.ok()) size_ += data.size();
      return s;
    }
    absl::Status Flush() override {
      WriteBlocks();
      return base_->Flush();
    }
    absl::Status Sync() override {
      WriteBlocks();
      absl::Status s = base_->Sync();
      if (s.ok()) env_->Acknowledge(path_, start_, size_);
      return s;
    }
    absl::Status Close() override {
      WriteBlocks();
      return base_->Close();
    }
    uint64_t Size() const override { return base_->Size(); }

   private:
    void WriteBlocks() {
      if (size_ > written_) env_->WriteBlocks(path_, written_, size_);
      written_ = size_;
    }
    BlockWriteTrackingEnv* const env_;
    const std::string path_;
    const uint64_t start_;
    uint64_t written_;  // bytes handed to the device
    uint64_t size_;
    std::unique_ptr<WritableFile> base_;
  };

  static bool Tracked(const std::string& path) {
    return path.size() > 4 && path.compare(path.size() - 4, 4, ".wal") == 0;
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> Wrap(
      const std::string& path, uint64_t start,
      absl::StatusOr<std::unique_ptr<WritableFile>> file) {
    if (!file.ok() || !Tracked(path)) return file;
    return std::unique_ptr<WritableFile>(
        new TrackedFile(this, path, start, *std::move(file)));
  }
  void Forget(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    acked_.erase(path);
  }
  void WriteBlocks(const std::string& path, uint64_t from, uint64_t to) {
    std::lock_guard<std::mutex> l(mu_);
    const std::set<uint64_t>& acked = acked_[path];
    for (uint64_t b = from / kBlock; b * kBlock < to; ++b) {
      if (acked.count(b) != 0) {
        violations_.push_back(absl::StrCat(
            path, ": block ", b, " (bytes ", b * kBlock, "..",
            (b + 1) * kBlock, ") written again after a sync acknowledged it"));
      }
    }
  }
  void Acknowledge(const std::string& path, uint64_t start, uint64_t size) {
    std::lock_guard<std::mutex> l(mu_);
    for (uint64_t b = start / kBlock; b * kBlock < size; ++b) {
      acked_[path].insert(b);
    }
    syncs_++;
    synced_sizes_.push_back({path, size});
  }

  Env* const base_;
  mutable std::mutex mu_;
  std::map<std::string, std::set<uint64_t>> acked_;
  std::vector<std::string> violations_;
  uint64_t syncs_ = 0;
  std::vector<std::pair<std::string, uint64_t>> synced_sizes_;
};

SegmentedWalOptions DirectIo(SegmentedWalOptions o, uint64_t target) {
  o.use_direct_io = true;
  o.segment_target_size = target;
  o.background_preallocation = false;  // a fixed order of file operations
  return o;
}

// Every segment of a direct-I/O WAL is marked padded, and its records,
// padding frames and footer tile the file exactly.
void ExpectPaddedSegments(
    const std::vector<SegmentMeta>& segs,
    const std::function<std::string(const std::string&)>& read) {
  for (const SegmentMeta& m : segs) {
    const std::string bytes = read(m.path);
    ASSERT_GE(bytes.size(), kBlock) << m.path;
    EXPECT_EQ(GetLE(bytes, kSegmentFlagsOffset, 4) & kSegmentFlagPadded,
              kSegmentFlagPadded)
        << m.path;
    const std::vector<Frame> frames = ScanFrames(bytes);
    ASSERT_FALSE(frames.empty()) << m.path;
    // The header's block is whole: a padding frame right after the header.
    EXPECT_EQ(frames[0].offset, kSegmentHeaderSize);
    EXPECT_TRUE(IsPadding(bytes, frames[0])) << m.path;
    for (const Frame& f : frames) {
      if (IsPadding(bytes, f)) {
        EXPECT_EQ((f.offset + f.size) % kBlock, 0u)
            << m.path << " padding frame at " << f.offset;
      }
    }
  }
}

TEST_F(SegmentedWalTest, DirectIoSyncsEndOnBlocksAndTheLogReplays) {
  BlockWriteTrackingEnv tracking(env_);
  SegmentedWalOptions o = DirectIo(Options(), 24 << 10);
  o.env = &tracking;
  o.preallocate_segments = false;  // file size = bytes written
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    for (int round = 0; round < 60; ++round) {
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 1 + rnd_.Uniform(6),
                                           kRandomSize, &expected));
      ASSERT_OK(wal->Sync());
      const uint64_t active = wal->active_segment_first_lsn();
      EXPECT_EQ(FileSize(SegmentPath(active)) % kBlock, 0u)
          << "round " << round << ": synced bytes end mid-block";
      EXPECT_EQ(wal->durable_lsn(), expected.back().lsn);
    }
    const WalStats stats = wal->GetStats();
    EXPECT_GE(stats.rollovers, 2u);
    EXPECT_GT(stats.padding_bytes, 0u);
    EXPECT_TRUE(stats.direct_io);  // MemEnv grants (and ignores) it
    EXPECT_EQ(stats.direct_io_fallback, "");
    EXPECT_THAT(stats.ToString(), HasSubstr("direct_io: on\n"));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
    ASSERT_NO_FATAL_FAILURE(ExpectPaddedSegments(
        segs, [this](const std::string& p) { return ReadAll(p); }));
    // Sealed segments end with their footer: the file is exactly that long.
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      EXPECT_EQ(FileSize(segs[i].path), segs[i].file_size);
      EXPECT_TRUE(ScanFrames(ReadAll(segs[i].path)).back().footer);
    }
  }
  // Every file sync of a segment ended on a block, but for the seals (the
  // footer ends the file, which is never written again).
  for (const auto& [path, size] : tracking.synced_sizes()) {
    if (size % kBlock == 0) continue;
    EXPECT_TRUE(ScanFrames(ReadAll(path)).back().footer)
        << path << " synced at " << size;
  }
  EXPECT_THAT(tracking.violations(), IsEmpty());
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
  for (uint64_t from = 1; from <= expected.size(); from += 7) {
    ASSERT_NO_FATAL_FAILURE(ExpectReplayFrom(*wal, from, expected));
    ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, from, expected));
  }
}

// The promise of use_direct_io: no block that held a record a Sync
// acknowledged is ever written again, through group commits, flushes, reads,
// rolls, spares (zero-filled and recycled), clean closes and reopens. The
// same history without the option does rewrite such blocks, so the model
// sees the difference.
TEST_F(SegmentedWalTest, DirectIoNeverRewritesAnAcknowledgedBlock) {
  for (const bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "use_direct_io" : "buffered");
    dir_ = direct ? "/direct" : "/buffered";
    BlockWriteTrackingEnv tracking(env_);
    SegmentedWalOptions o = InlineSpares(Options(), 32 << 10);
    o.env = &tracking;
    o.use_direct_io = direct;
    o.write_buffer_size = 3000;  // appends write partial blocks on their own
    std::vector<WalRecord> expected;
    testutil::Random rnd(testutil::TestSeed(77));
    uint64_t from_spares = 0, recycled = 0;
    for (int life = 0; life < 4; ++life) {
      ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
      for (int op = 0; op < 150; ++op) {
        ASSERT_NO_FATAL_FAILURE(AppendRandom(
            wal.get(), 1 + rnd.Uniform(4), rnd.Skewed(11), &expected));
        switch (rnd.Uniform(5)) {
          case 0:
          case 1:
            ASSERT_OK(wal->Sync());
            break;
          case 2:
            ASSERT_OK(wal->Flush());
            break;
          case 3:
            ASSERT_OK(wal->ReplayFromLimit(wal->next_lsn() - 1, 1).status());
            break;
          default:
            break;
        }
      }
      ASSERT_OK(wal->Sync());
      if (life == 1) {
        const uint64_t floor = wal->active_segment_first_lsn();
        ASSERT_OK(wal->TruncateBefore(floor).status());  // recycles
        std::vector<WalRecord> rest;
        for (WalRecord& r : expected) {
          if (r.lsn >= floor) rest.push_back(std::move(r));
        }
        expected = std::move(rest);
      }
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, 50, &expected));
      from_spares += wal->GetStats().segments_from_spares;
      recycled += wal->GetStats().spares_recycled;
      // Closed with unsynced records in a partial block.
    }
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    EXPECT_GT(tracking.syncs(), 100u);
    EXPECT_GE(from_spares, 3u);
    EXPECT_GT(recycled, 0u);
    if (direct) {
      EXPECT_THAT(tracking.violations(), IsEmpty());
    } else {
      EXPECT_THAT(tracking.violations(), Not(IsEmpty()));
    }
  }
}

// Group commit: concurrent syncers share padded syncs; whichever thread
// leads, the block model sees no acknowledged block written again.
TEST_F(SegmentedWalTest, DirectIoGroupCommitPadsEverySharedSync) {
  BlockWriteTrackingEnv tracking(env_);
  SegmentedWalOptions o = InlineSpares(Options(), 64 << 10);
  o.env = &tracking;
  o.use_direct_io = true;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 150;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&wal, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const std::string payload(50 + (i * 37 + t) % 300, 'a' + t);
          auto lsn = wal->Append(1, static_cast<uint64_t>(t), 0, 0, payload);
          EXPECT_OK(lsn.status());
          if (!lsn.ok()) return;
          EXPECT_OK(wal->Sync());
          EXPECT_GE(wal->durable_lsn(), *lsn);
        }
      });
    }
    for (std::thread& th : threads) th.join();
    const WalStats stats = wal->GetStats();
    EXPECT_GT(stats.padding_bytes, 0u);
    EXPECT_GE(stats.rollovers, 1u);
    ASSERT_OK_AND_ASSIGN(auto all, wal->Replay());
    EXPECT_EQ(all.size(), size_t{kThreads * kPerThread});
  }
  EXPECT_THAT(tracking.violations(), IsEmpty());
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
  EXPECT_EQ(wal->next_lsn(), uint64_t{kThreads * kPerThread + 1});
}

// On the POSIX Env in a temporary directory: O_DIRECT writes, syncs, rolls
// into spares, reopens and replays (on MemEnv the same history runs with the
// option granted and ignored).
TEST_P(SegmentedWalEnvTest, DirectIoWritesSyncsRollsReopensAndReplays) {
  SegmentedWalOptions o = InlineSpares(Options(), 48 << 10);
  o.use_direct_io = true;
  std::vector<WalRecord> expected;
  for (int life = 0; life < 3; ++life) {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    const WalStats stats = wal->GetStats();
    if (!stats.direct_io) {
      GTEST_SKIP() << "the file system refuses O_DIRECT: "
                   << stats.direct_io_fallback;
    }
    for (int i = 0; i < 40; ++i) {
      ASSERT_NO_FATAL_FAILURE(
          AppendRandom(wal.get(), 1 + rnd_.Uniform(8), kRandomSize, &expected));
      if (i == 20) {
        // Large records cross blocks and buffers.
        ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, 70000, &expected));
      }
      ASSERT_OK(wal->Sync());
    }
    EXPECT_TRUE(wal->GetStats().direct_io);
    EXPECT_GE(wal->GetStats().rollovers, 1u);
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
    // Unsynced records at close: a zero-tailed partial block on disk, cut by
    // Close; the next Open pads after them.
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, 100, &expected));
  }
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
  ASSERT_GE(segs.size(), 3u);
  ASSERT_NO_FATAL_FAILURE(ExpectPaddedSegments(
      segs, [this](const std::string& p) { return ReadAll(p); }));
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    EXPECT_EQ(FileSize(segs[i].path), segs[i].file_size) << segs[i].path;
  }
  // The recovered tail was padded to a block and is appended to with
  // O_DIRECT.
  ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 5, 300, &expected));
  ASSERT_OK(wal->Sync());
  EXPECT_TRUE(wal->GetStats().direct_io);
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

// An Env that refuses direct I/O, as tmpfs does: the WAL writes through the
// page cache, says why, tries no second time, and still pads every sync.
class RefuseDirectIoEnv : public BlockWriteTrackingEnv {
 public:
  using BlockWriteTrackingEnv::BlockWriteTrackingEnv;
  int refusals = 0;
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFileWithOptions(
      const std::string& path, const FileOptions& options) override {
    if (options.use_direct_io) return Refuse(path);
    return BlockWriteTrackingEnv::NewWritableFileWithOptions(path, options);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFileWithOptions(
      const std::string& path, uint64_t offset,
      const FileOptions& options) override {
    if (options.use_direct_io) return Refuse(path);
    return BlockWriteTrackingEnv::ReopenWritableFileWithOptions(path, offset,
                                                                options);
  }

 private:
  absl::Status Refuse(const std::string& path) {
    refusals++;
    return absl::InvalidArgumentError(absl::StrCat(
        "open ", path, " with O_DIRECT: the file system refuses direct I/O"));
  }
};

TEST_F(SegmentedWalTest, DirectIoFallsBackToBufferedWritesWithPadding) {
  RefuseDirectIoEnv refusing(env_);
  SegmentedWalOptions o = InlineSpares(Options(), 16 << 10);
  o.env = &refusing;
  o.use_direct_io = true;
  std::vector<WalRecord> expected;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    for (int i = 0; i < 40; ++i) {
      ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 3, 200, &expected));
      ASSERT_OK(wal->Sync());
    }
    const WalStats stats = wal->GetStats();
    EXPECT_FALSE(stats.direct_io);
    EXPECT_THAT(stats.direct_io_fallback, HasSubstr("refuses direct I/O"));
    EXPECT_THAT(stats.ToString(), HasSubstr("direct_io: off (open "));
    EXPECT_GT(stats.padding_bytes, 0u);
    EXPECT_GE(stats.rollovers, 2u);
    ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
    ASSERT_NO_FATAL_FAILURE(ExpectPaddedSegments(
        segs, [this](const std::string& p) { return ReadAll(p); }));
  }
  EXPECT_EQ(refusing.refusals, 1);  // refused once, not asked again
  EXPECT_THAT(refusing.violations(), IsEmpty());
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
}

// A direct-I/O log with three syncs in one segment:
//   [header+pad] 1 2 3 [pad] 4 5 6 [pad] 7 8 [pad]
class DirectIoDamageTest : public SegmentedWalTest {
 protected:
  void SetUp() override {
    o_ = DirectIo(Options(), 1 << 20);
    {
      ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o_));
      for (int n : {3, 3, 2}) {
        ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), n, kPayload, &all_));
        ASSERT_OK(wal->Sync());
      }
    }
    path_ = SegmentPath(1);
    bytes_ = ReadAll(path_);
    for (const Frame& f : ScanFrames(bytes_)) {
      if (IsPadding(bytes_, f)) pads_.push_back(f);
    }
    ASSERT_EQ(pads_.size(), 4u);  // after the header and after each sync
    ASSERT_EQ(pads_[1].lsn, 3u);
    ASSERT_EQ(bytes_.size() % kBlock, 0u);
  }

  SegmentedWalOptions o_;
  std::vector<WalRecord> all_;
  std::string path_;
  std::string bytes_;
  std::vector<Frame> pads_;
};

// Each malformed padding frame (the one after LSN 3, followed by records that
// prove it durable) is DataLoss naming the file, the frame's offset and what
// is wrong, in every mode that fails; kSkipAnyCorruptedRecords skips it and
// loses no record.
TEST_F(DirectIoDamageTest, MalformedPaddingIsDataLossAtItsOffset) {
  struct Case {
    std::string name;
    std::function<void(std::string*, const Frame&)> damage;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"checksum",
       [](std::string* b, const Frame& f) {
         (*b)[f.offset + kRecordHeaderSize + 9] ^= 1;
       },
       "record payload checksum mismatch"},
      {"length",
       [](std::string* b, const Frame& f) {
         PutLE(b, f.offset + kRecordLengthOffset, 4, f.size - 8 - kRecordHeaderSize);
         ResealFrame(b, f.offset);
       },
       ""},  // depends on the frame: below
      {"lsn",
       [](std::string* b, const Frame& f) {
         PutLE(b, f.offset + kRecordLsnOffset, 8, 4);
         ResealFrame(b, f.offset);
       },
       "padding frame has LSN 4, expected 3 (the record before it)"},
      {"payload",
       [](std::string* b, const Frame& f) {
         (*b)[f.offset + kRecordHeaderSize + 9] = 7;
         ResealFrame(b, f.offset);
       },
       "padding frame payload is not zeros"},
      {"flags",
       [](std::string* b, const Frame& f) {
         PutLE(b, f.offset + kRecordFlagsOffset, 2, kRecordFlagPadding | 1);
         ResealFrame(b, f.offset);
       },
       "padding frame with other record flags (0x4001)"},
  };
  const Frame& pad = pads_[1];
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string reason = c.reason;
    if (c.name == "length") {
      reason = absl::StrCat("padding frame of ", pad.size - 8,
                            " bytes ends at offset ", pad.offset + pad.size - 8,
                            ", not at the block boundary ",
                            pad.offset + pad.size);
    }
    std::string damaged = bytes_;
    c.damage(&damaged, pad);
    ASSERT_NO_FATAL_FAILURE(WriteAll(path_, damaged));
    const std::string where = absl::StrCat(path_, " offset ", pad.offset);
    for (RecoveryMode mode : {RecoveryMode::kAbsoluteConsistency,
                              RecoveryMode::kTolerateCorruptedTail}) {
      SegmentedWalOptions o = o_;
      o.recovery_mode = mode;
      EXPECT_THAT(OpenExpectingFailure(o),
                  StatusIs(absl::StatusCode::kDataLoss,
                           AllOf(HasSubstr("corruption at " + where),
                                 HasSubstr(reason))));
    }
    SegmentedWalOptions o = o_;
    o.recovery_mode = RecoveryMode::kSkipAnyCorruptedRecords;
    {
      ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
      EXPECT_THAT(wal->recovery_report().drops,
                  Contains(AllOf(DropAt(path_, pad.offset, pad.size),
                                 Field(&RecoveryDrop::reason,
                                       HasSubstr("no LSN missing")))));
      ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, all_));
      ASSERT_NO_FATAL_FAILURE(ExpectIterator(*wal, 2, all_));
    }
    ASSERT_NO_FATAL_FAILURE(WriteAll(path_, bytes_));
  }
}

// A crash that tears the padding frame of the last sync: no record is lost
// (the records before it were synced whole), the frame is cut as a torn tail,
// and the reopened log pads again before appending on a fresh block.
TEST_F(DirectIoDamageTest, TornPaddingAtTheTailIsCutAndPaddedAgain) {
  const Frame& last = pads_.back();
  ASSERT_OK(env_->TruncateFile(path_, last.offset + 100));
  SegmentedWalOptions strict = o_;
  strict.recovery_mode = RecoveryMode::kAbsoluteConsistency;
  EXPECT_THAT(OpenExpectingFailure(strict),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("torn tail at " + path_ + " offset " +
                                       std::to_string(last.offset)),
                             HasSubstr("truncated record"))));
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o_));
    EXPECT_THAT(wal->recovery_report().drops,
                ElementsAre(DropAt(path_, last.offset, 100)));
    EXPECT_EQ(wal->durable_lsn(), 8u);
    ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, all_));
    // Cut at the frame, then padded to the block again.
    EXPECT_EQ(FileSize(path_), last.offset + last.size);
    EXPECT_EQ(wal->GetStats().padding_bytes, last.size);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 2, kPayload, &all_));
    ASSERT_OK(wal->Sync());
  }
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(strict));
  EXPECT_THAT(wal->recovery_report().drops, IsEmpty());
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, all_));
  const std::vector<Frame> frames = ScanFrames(ReadAll(path_));
  EXPECT_EQ(frames[frames.size() - 3].offset, last.offset + last.size)
      << "appends after recovery start on the block boundary";
}

// A padded segment's creation writes a whole 4 KiB block, which a crash can
// tear into far more than a header's length of damaged bytes (and Open would
// call that corruption, not a torn creation). So no segment name may ever
// reach a block that is not durable. Rewriting the empty active segment
// under a new key (SetEncryptionRing) reuses its name: a power cut at each
// file-system call of it, then torn sectors, then Open must succeed.
TEST_F(SegmentedWalTest, DirectIoSegmentCreationIsNeverTorn) {
  const KeyRing ring(WalEncryptionKey::Generate());
  int cuts_that_hit = 0;
  for (int cut = 0; cut < 14; ++cut) {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      SCOPED_TRACE(absl::StrCat("power cut at call ", cut, ", crash seed ",
                                seed));
      std::unique_ptr<Env> mem = NewMemEnv();
      FaultInjectionEnv fi(mem.get());
      SegmentedWalOptions o = DirectIo(Options(), 1 << 20);
      o.env = &fi;
      o.preallocate_segments = false;
      {
        ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
        fi.InjectError(kOpAll, absl::UnavailableError("power cut"), "", cut,
                       -1);
        if (!wal->SetEncryptionRing(ring).ok()) cuts_that_hit++;
      }
      ASSERT_OK(fi.SimulateCrash(CrashMode::kTornSectors, seed));
      o.encryption_ring = ring;
      ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
      ASSERT_OK(wal->Append(1, 2, 3, 4, "after").status());
      ASSERT_OK(wal->Sync());
    }
  }
  EXPECT_GT(cuts_that_hit, 0);
}

// Turning use_direct_io on for an existing log: its last (unpadded) segment
// is sealed and records go to a new, padded one; turning it off again
// appends to the padded segment.
TEST_F(SegmentedWalTest, DirectIoSealsAnUnpaddedTailAndContinuesPadded) {
  std::vector<WalRecord> expected;
  ASSERT_NO_FATAL_FAILURE(BuildLog(Options(), 5, kPayload, &expected));
  EXPECT_EQ(GetLE(ReadAll(SegmentPath(1)), kSegmentFlagsOffset, 4), 0u);
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(DirectIo(Options(), 1 << 20)));
    EXPECT_EQ(wal->active_segment_first_lsn(), 6u);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 4, kPayload, &expected));
    ASSERT_OK(wal->Sync());
  }
  EXPECT_TRUE(ScanFrames(ReadAll(SegmentPath(1))).back().footer);
  EXPECT_EQ(GetLE(ReadAll(SegmentPath(6)), kSegmentFlagsOffset, 4),
            kSegmentFlagPadded);
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options()));
    EXPECT_EQ(wal->active_segment_first_lsn(), 6u);
    ASSERT_NO_FATAL_FAILURE(AppendRandom(wal.get(), 4, kPayload, &expected));
    ASSERT_OK(wal->Sync());
    EXPECT_EQ(wal->GetStats().padding_bytes, 0u);
  }
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(DirectIo(Options(), 1 << 20)));
  ASSERT_NO_FATAL_FAILURE(ExpectReplay(*wal, expected));
  EXPECT_EQ(wal->active_segment_first_lsn(), 6u);  // padded: appended to
}

// ===================== A failing Open changes nothing =====================

TEST_F(SegmentedWalTest, FailingOpenLeavesEveryFileByteForByte) {
  // Several kinds of refused logs, each in its own directory; the checks on
  // the directory's files are in OpenExpectingFailure.
  struct Case {
    std::string name;
    RecoveryMode mode;
    int damage;  // 0 torn tail, 1 mid-log corruption, 2 missing segment, 3
                 // version
  };
  const Case cases[] = {
      {"torn_tail_absolute", RecoveryMode::kAbsoluteConsistency, 0},
      {"mid_log_corruption", RecoveryMode::kTolerateCorruptedTail, 1},
      {"mid_log_corruption_absolute", RecoveryMode::kAbsoluteConsistency, 1},
      {"missing_segment", RecoveryMode::kTolerateCorruptedTail, 2},
      {"missing_segment_absolute", RecoveryMode::kAbsoluteConsistency, 2},
      {"unknown_version", RecoveryMode::kSkipAnyCorruptedRecords, 3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    dir_ = "/fail_" + c.name;
    SegmentedWalOptions options = SmallSegments(1024);
    std::vector<WalRecord> expected;
    std::vector<SegmentMeta> segs;
    {
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<SegmentedWal> wal,
                           SegmentedWal::Open(options));
      // Synced every two records, so any record with two after it in its
      // segment is proved durable by a later one.
      for (int group = 0; group < 20; ++group) {
        ASSERT_NO_FATAL_FAILURE(
            AppendRandom(wal.get(), 2, kPayload, &expected));
        ASSERT_OK(wal->Sync());
      }
      ASSERT_OK_AND_ASSIGN(segs, wal->ListSegments());
    }
    ASSERT_GE(segs.size(), 4u);
    const std::string last = segs.back().path;
    const std::vector<Frame> last_frames = RecordFrames(ReadAll(last));
    ASSERT_GE(last_frames.size(), 3u);
    switch (c.damage) {
      case 0:
        ASSERT_OK(env_->TruncateFile(last, last_frames.back().offset + 60));
        break;
      case 1:
        ASSERT_GE(last_frames.back().durable_lsn, last_frames[0].lsn);
        ASSERT_NO_FATAL_FAILURE(
            CorruptByte(last, last_frames[0].offset + kRecordHeaderSize + 1));
        break;
      case 2:
        ASSERT_OK(env_->DeleteFile(segs[1].path));
        break;
      case 3: {
        std::string bytes = ReadAll(segs[0].path);
        PutLE(&bytes, kSegmentVersionOffset, 4, 77);
        PutLE(
            &bytes, kSegmentHeaderCrcOffset, 4,
            crc32c::Mask(crc32c::Value(bytes.data(), kSegmentHeaderCrcOffset)));
        ASSERT_NO_FATAL_FAILURE(WriteAll(segs[0].path, bytes));
        break;
      }
    }
    options.recovery_mode = c.mode;
    EXPECT_THAT(OpenExpectingFailure(options), Not(IsOk()));
  }
}

}  // namespace
}  // namespace segwal
