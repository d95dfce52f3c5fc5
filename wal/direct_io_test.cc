// Direct I/O (use_direct_io): syncs end on block boundaries, no acknowledged
// block is written again, group commit pads shared syncs, refusals fall back
// to buffered writes with padding, and damage to padding is classified.

#include "wal/segmented_wal_test_harness.h"

namespace segwal {
namespace {

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

}  // namespace

SEGWAL_INSTANTIATE_ENV_TESTS()

}  // namespace segwal
