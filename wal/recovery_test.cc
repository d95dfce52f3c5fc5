// Recovery from damaged segments, one test per situation in the LevelDB
// log_test.cc style, and every recovery mode on the same damage. Damage is
// done through the Env, at offsets computed from wal/FORMAT.md (the harness's
// constants), never through the implementation's format code.

#include "wal/segmented_wal_test_harness.h"

namespace segwal {
namespace {

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

SEGWAL_INSTANTIATE_ENV_TESTS()

}  // namespace segwal
