// wal/format.{h,cc}: the encodings FORMAT.md specifies, byte for byte. Only
// what the readers' and the WAL's tests do not already pin down: padding
// frames ("Padding frames") and the segment flag that allows them.

#include "wal/format.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"

namespace segwal {
namespace wal_format {
namespace {

using ::segwal::testutil::StatusIs;
using ::testing::HasSubstr;

constexpr uint32_t kSeed = 0x5eed1234;

// Decodes the frame at the start of `frame`, checking both CRCs.
bool DecodeFrame(uint32_t seed, absl::string_view frame, RecordHeader* h,
                 absl::string_view* payload) {
  if (frame.size() < kRecordHeaderSize) return false;
  uint32_t payload_seed, payload_crc;
  if (!DecodeRecordHeader(seed, frame.data(), h, &payload_seed, &payload_crc)) {
    return false;
  }
  if (frame.size() < kRecordHeaderSize + h->payload_length) return false;
  *payload = frame.substr(kRecordHeaderSize, h->payload_length);
  return PayloadMatches(payload_seed, payload_crc, *payload);
}

TEST(PaddingFrameTest, SizeReachesTheNextBlockBoundary) {
  // After the segment header: the rest of the first block.
  EXPECT_EQ(PaddingFrameSize(kSegmentHeaderSize), 4096u - 64);
  EXPECT_EQ(PaddingFrameSize(100), 3996u);
  // Exactly a header's worth left: a frame with an empty payload.
  EXPECT_EQ(PaddingFrameSize(4096 - 56), 56u);
  // Fewer than 56 bytes left: it runs to the end of the following block.
  EXPECT_EQ(PaddingFrameSize(4096 - 55), 55u + 4096);
  EXPECT_EQ(PaddingFrameSize(4095), 1u + 4096);
  // On a boundary already (the writer never pads there): a whole block.
  EXPECT_EQ(PaddingFrameSize(8192), 4096u);
  for (uint64_t off = 64; off < 3 * 4096; off += 7) {
    const uint64_t size = PaddingFrameSize(off);
    EXPECT_EQ((off + size) % kPaddingBlockSize, 0u) << off;
    EXPECT_GE(size, kRecordHeaderSize) << off;
    EXPECT_LT(size, kPaddingBlockSize + kRecordHeaderSize) << off;
  }
}

TEST(PaddingFrameTest, RoundTrips) {
  for (uint64_t offset : {uint64_t{64}, uint64_t{4040}, uint64_t{4041},
                          uint64_t{5000}, uint64_t{1} << 33}) {
    SCOPED_TRACE(offset);
    std::string frame;
    AppendPaddingFrame(kSeed, offset, /*lsn=*/41, /*durable_lsn=*/17, &frame);
    ASSERT_EQ(frame.size(), PaddingFrameSize(offset));
    RecordHeader h;
    absl::string_view payload;
    ASSERT_TRUE(DecodeFrame(kSeed, frame, &h, &payload));
    EXPECT_EQ(h.flags, kFlagPadding);
    EXPECT_EQ(h.lsn, 41u);
    EXPECT_EQ(h.durable_lsn, 17u);
    EXPECT_EQ(h.tenant_id, 0u);
    EXPECT_EQ(h.database_id, 0u);
    EXPECT_EQ(h.record_type, 0u);
    EXPECT_EQ(h.vshard_id, 0u);
    EXPECT_EQ(payload, std::string(h.payload_length, '\0'));
    EXPECT_OK(CheckPaddingFrame(h, offset, payload));
    // Chained from the segment seed: another segment's seed rejects it.
    EXPECT_FALSE(DecodeFrame(kSeed + 1, frame, &h, &payload));
  }
}

TEST(PaddingFrameTest, FlagIsKnownToReaders) {
  EXPECT_NE(kKnownRecordFlags & kFlagPadding, 0);
  EXPECT_EQ(kFlagPadding & (kFlagSnappy | kFlagEncrypted | kFlagFooter), 0);
}

// A frame of the right kind whose shape is wrong, with fresh CRCs.
struct Malformed {
  RecordHeader header;
  std::string payload;
};

Malformed WellFormedAt(uint64_t offset) {
  Malformed m;
  m.header.flags = kFlagPadding;
  m.header.lsn = 9;
  m.header.payload_length =
      static_cast<uint32_t>(PaddingFrameSize(offset) - kRecordHeaderSize);
  m.payload.assign(m.header.payload_length, '\0');
  return m;
}

TEST(PaddingFrameTest, OtherFlagsAreDataLoss) {
  for (uint16_t extra : {kFlagSnappy, kFlagEncrypted, kFlagFooter}) {
    Malformed m = WellFormedAt(100);
    m.header.flags |= extra;
    EXPECT_THAT(CheckPaddingFrame(m.header, 100, m.payload),
                StatusIs(absl::StatusCode::kDataLoss,
                         HasSubstr("padding frame with other record flags")));
  }
}

TEST(PaddingFrameTest, LengthNotEndingOnTheBoundaryIsDataLoss) {
  Malformed m = WellFormedAt(100);
  m.header.payload_length -= 1;
  m.payload.pop_back();
  EXPECT_THAT(CheckPaddingFrame(m.header, 100, m.payload),
              StatusIs(absl::StatusCode::kDataLoss,
                       "padding frame of 3995 bytes ends at offset 4095, not "
                       "at the block boundary 4096"));
  // A whole block too long also ends on a boundary, but not the next one.
  m = WellFormedAt(100);
  m.header.payload_length += 4096;
  m.payload.append(4096, '\0');
  EXPECT_THAT(CheckPaddingFrame(m.header, 100, m.payload),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("not at the block boundary 4096")));
  // Fewer than 56 bytes left: stopping at the near boundary is impossible
  // (the header does not fit), the frame must reach the far one.
  m = WellFormedAt(4050);
  EXPECT_OK(CheckPaddingFrame(m.header, 4050, m.payload));
  EXPECT_EQ(4050 + kRecordHeaderSize + m.header.payload_length, 8192u);
}

TEST(PaddingFrameTest, NonZeroPayloadIsDataLoss) {
  Malformed m = WellFormedAt(64);
  m.payload[1000] = 'x';
  EXPECT_THAT(CheckPaddingFrame(m.header, 64, m.payload),
              StatusIs(absl::StatusCode::kDataLoss,
                       "padding frame payload is not zeros"));
}

TEST(SegmentHeaderTest, PaddedFlagRoundTrips) {
  SegmentHeader h;
  h.first_lsn = 77;
  h.flags = kSegmentPadded;
  const std::string encoded = EncodeSegmentHeader(h);
  ASSERT_EQ(encoded.size(), kSegmentHeaderSize);
  EXPECT_EQ(DecodeFixed32(encoded.data() + 40), 2u);  // bit 1 at offset 40
  SegmentHeader back;
  ASSERT_OK(DecodeSegmentHeader(encoded, &back));
  EXPECT_EQ(back.flags, kSegmentPadded);
  EXPECT_EQ(back.first_lsn, 77u);
  EXPECT_EQ(kKnownSegmentFlags, kSegmentEncrypted | kSegmentPadded);
}

}  // namespace
}  // namespace wal_format
}  // namespace segwal
