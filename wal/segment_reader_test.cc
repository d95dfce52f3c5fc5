// SegmentReader over hand-built segment files: what each frame kind yields,
// where the position ends up, and why a bad frame is bad. (Damage through the
// public API, with file and offset in the message, is tested in
// segmented_wal_test.cc.) Here: padding frames (FORMAT.md, "Padding frames").

#include "wal/segment_reader.h"

#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"
#include "wal/format.h"

namespace segwal {
namespace {

using ::testing::HasSubstr;
using wal_format::kFlagFooter;
using wal_format::kFlagPadding;
using wal_format::kFlagSnappy;
using wal_format::kRecordHeaderSize;
using wal_format::kSegmentHeaderSize;
using wal_format::RecordHeader;
using Outcome = SegmentReader::Outcome;

constexpr uint64_t kMaxRecord = 1 << 20;
constexpr char kPath[] = "/w/00000000000000000010.wal";

// Builds the bytes of one segment, frame by frame, as the writer would (or,
// with Frame, as it never would).
class SegmentBuilder {
 public:
  SegmentBuilder(uint64_t first_lsn, bool padded) {
    h_.first_lsn = first_lsn;
    for (size_t i = 0; i < wal_format::kSaltSize; ++i) {
      h_.salt[i] = static_cast<char>(i * 7 + 1);
    }
    if (padded) h_.flags = wal_format::kSegmentPadded;
    bytes_ = wal_format::EncodeSegmentHeader(h_);
    seed_ = wal_format::SegmentSeed(h_);
  }

  uint64_t Record(uint64_t lsn, const std::string& payload,
                  uint64_t durable_lsn = 0) {
    RecordHeader r;
    r.payload_length = static_cast<uint32_t>(payload.size());
    r.lsn = lsn;
    r.durable_lsn = durable_lsn;
    r.tenant_id = 3;
    return Frame(r, payload);
  }
  uint64_t Pad(uint64_t lsn, uint64_t durable_lsn = 0) {
    const uint64_t at = bytes_.size();
    wal_format::AppendPaddingFrame(seed_, at, lsn, durable_lsn, &bytes_);
    return at;
  }
  // Any frame, with CRCs that match it.
  uint64_t Frame(const RecordHeader& r, const std::string& payload) {
    const uint64_t at = bytes_.size();
    wal_format::AppendRecord(seed_, r, payload, &bytes_);
    return at;
  }
  // The header a padding frame at the current end would have.
  RecordHeader PaddingHeader(uint64_t lsn) const {
    RecordHeader r;
    r.flags = kFlagPadding;
    r.lsn = lsn;
    r.payload_length = static_cast<uint32_t>(
        wal_format::PaddingFrameSize(bytes_.size()) - kRecordHeaderSize);
    return r;
  }

  std::string& bytes() { return bytes_; }

 private:
  wal_format::SegmentHeader h_;
  uint32_t seed_ = 0;
  std::string bytes_;
};

class SegmentReaderTest : public testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(env_->CreateDirIfMissing("/w")); }

  std::unique_ptr<SegmentReader> OpenReader(const std::string& bytes) {
    auto f = env_->NewWritableFile(kPath);
    EXPECT_OK(f.status());
    if (!f.ok()) return nullptr;
    EXPECT_OK((*f)->Append(bytes));
    EXPECT_OK((*f)->Close());
    auto r = SegmentReader::Open(env_.get(), kPath, bytes.size(), kMaxRecord);
    EXPECT_OK(r.status());
    return r.ok() ? *std::move(r) : nullptr;
  }

  std::unique_ptr<Env> env_ = NewMemEnv();
  WalRecord rec_;
  RecordHeader h_;
};

TEST_F(SegmentReaderTest, PaddingFramesAreSkippedAndEndOnBlocks) {
  SegmentBuilder b(10, /*padded=*/true);
  b.Pad(9);  // right after the header, as a direct-I/O writer starts
  b.Record(10, "a");
  b.Record(11, std::string(5000, 'b'));  // crosses a block
  const uint64_t pad = b.Pad(11, /*durable_lsn=*/9);
  b.Record(12, "c");
  b.bytes().append(300, '\0');  // a clean (zero) end
  std::unique_ptr<SegmentReader> r = OpenReader(b.bytes());
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->padded());

  ASSERT_EQ(r->Next(&rec_, &h_), Outcome::kPadding);
  EXPECT_EQ(h_.flags, kFlagPadding);
  EXPECT_EQ(r->position(), 4096u);
  EXPECT_EQ(r->expected_lsn(), 10u);  // a padding frame consumes no LSN
  ASSERT_EQ(r->Next(&rec_, &h_), Outcome::kRecord);
  EXPECT_EQ(rec_.lsn, 10u);
  ASSERT_EQ(r->Next(&rec_, &h_), Outcome::kRecord);
  EXPECT_EQ(rec_.lsn, 11u);
  EXPECT_EQ(r->position(), pad);
  ASSERT_EQ(r->Next(&rec_, &h_), Outcome::kPadding);
  EXPECT_EQ(h_.lsn, 11u);
  EXPECT_EQ(h_.durable_lsn, 9u);
  EXPECT_EQ(r->position() % 4096, 0u);
  EXPECT_GT(r->position(), pad);
  ASSERT_EQ(r->Next(&rec_, &h_), Outcome::kRecord);
  EXPECT_EQ(rec_.lsn, 12u);
  EXPECT_EQ(rec_.payload, "c");
  EXPECT_EQ(r->Next(&rec_, &h_), Outcome::kEnd);
}

TEST_F(SegmentReaderTest, PaddingLsnIsCheckedEvenWithoutCheckLsn) {
  SegmentBuilder b(10, /*padded=*/true);
  b.Record(10, "a");
  const uint64_t pad = b.Pad(12);  // the record before it is 10
  std::unique_ptr<SegmentReader> r = OpenReader(b.bytes());
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->Next(&rec_, &h_, /*check_lsn=*/false), Outcome::kRecord);
  ASSERT_EQ(r->Next(&rec_, &h_, /*check_lsn=*/false), Outcome::kBad);
  EXPECT_EQ(r->position(), pad);
  EXPECT_EQ(r->bad_reason(),
            "padding frame has LSN 12, expected 10 (the record before it)");
  EXPECT_FALSE(r->bad_after_checksums());
}

// One malformed padding frame after record 10, and what the reader says.
struct MalformedCase {
  std::string name;
  bool padded_segment;
  // Appends the bad frame (returns its offset) to a segment holding record 10.
  std::function<uint64_t(SegmentBuilder&)> make;
  std::string reason;
  // Its CRCs match: no torn write makes it (FORMAT.md).
  bool after_checksums;
};

class MalformedPaddingTest : public SegmentReaderTest,
                             public testing::WithParamInterface<MalformedCase> {};

TEST_P(MalformedPaddingTest, IsBadAtItsOffset) {
  const MalformedCase& c = GetParam();
  SegmentBuilder b(10, c.padded_segment);
  b.Record(10, "first");
  const uint64_t at = c.make(b);
  std::unique_ptr<SegmentReader> r = OpenReader(b.bytes());
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->Next(&rec_, &h_), Outcome::kRecord);
  ASSERT_EQ(r->Next(&rec_, &h_), Outcome::kBad);
  EXPECT_EQ(r->position(), at);
  EXPECT_EQ(r->expected_lsn(), 11u);
  EXPECT_THAT(r->bad_reason(), HasSubstr(c.reason));
  EXPECT_EQ(r->bad_after_checksums(), c.after_checksums);
  EXPECT_OK(r->io_status());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedPaddingTest,
    testing::Values(
        MalformedCase{"HeaderChecksum", true,
                      [](SegmentBuilder& b) {
                        const uint64_t at = b.Pad(10);
                        b.bytes()[at + 24] ^= 1;  // its durable LSN field
                        return at;
                      },
                      "record header checksum mismatch", false},
        MalformedCase{"PayloadChecksum", true,
                      [](SegmentBuilder& b) {
                        const uint64_t at = b.Pad(10);
                        b.bytes()[at + kRecordHeaderSize + 7] = 1;
                        return at;
                      },
                      "record payload checksum mismatch", false},
        MalformedCase{"Truncated", true,
                      [](SegmentBuilder& b) {
                        const uint64_t at = b.Pad(10);
                        b.bytes().resize(b.bytes().size() - 100);
                        return at;
                      },
                      "truncated record", false},
        MalformedCase{"ShortOfTheBoundary", true,
                      [](SegmentBuilder& b) {
                        RecordHeader r = b.PaddingHeader(10);
                        r.payload_length -= 8;
                        return b.Frame(r, std::string(r.payload_length, '\0'));
                      },
                      "not at the block boundary 4096", true},
        MalformedCase{"PastTheBoundary", true,
                      [](SegmentBuilder& b) {
                        RecordHeader r = b.PaddingHeader(10);
                        r.payload_length += 4096;
                        return b.Frame(r, std::string(r.payload_length, '\0'));
                      },
                      "not at the block boundary 4096", true},
        MalformedCase{"WrongLsn", true,
                      [](SegmentBuilder& b) { return b.Pad(11); },
                      "padding frame has LSN 11, expected 10", false},
        MalformedCase{"NonZeroPayload", true,
                      [](SegmentBuilder& b) {
                        RecordHeader r = b.PaddingHeader(10);
                        std::string payload(r.payload_length, '\0');
                        payload[3] = 'x';
                        return b.Frame(r, payload);
                      },
                      "padding frame payload is not zeros", true},
        MalformedCase{"OtherFlags", true,
                      [](SegmentBuilder& b) {
                        RecordHeader r = b.PaddingHeader(10);
                        r.flags |= kFlagSnappy;
                        return b.Frame(r, std::string(r.payload_length, '\0'));
                      },
                      "padding frame with other record flags (0x4001)", true},
        MalformedCase{"InUnpaddedSegment", false,
                      [](SegmentBuilder& b) { return b.Pad(10); },
                      "padding frame in a segment not marked padded", true}),
    [](const testing::TestParamInfo<MalformedCase>& info) {
      return info.param.name;
    });

TEST_F(SegmentReaderTest, PaddingAndFooterFlagsTogetherAreNoFooter) {
  SegmentBuilder b(10, /*padded=*/true);
  b.Record(10, "a");
  RecordHeader r = b.PaddingHeader(10);
  r.flags |= kFlagFooter;
  const uint64_t at = b.Frame(r, std::string(r.payload_length, '\0'));
  b.Record(11, "b");
  std::unique_ptr<SegmentReader> reader = OpenReader(b.bytes());
  ASSERT_NE(reader, nullptr);
  ASSERT_EQ(reader->Next(&rec_, &h_), Outcome::kRecord);
  ASSERT_EQ(reader->Next(&rec_, &h_), Outcome::kBad);
  EXPECT_EQ(reader->position(), at);
  EXPECT_EQ(reader->bad_reason(), "footer does not end the segment");
}

// A valid padding frame after damage is a valid frame of the segment: its
// durable LSN can prove the damaged bytes were durable (FORMAT.md).
TEST_F(SegmentReaderTest, PaddingFrameAfterDamageIsFoundByResync) {
  SegmentBuilder b(10, /*padded=*/true);
  b.Record(10, "a");
  const uint64_t bad = b.Record(11, "b");
  b.Record(12, "c");
  const uint64_t pad = b.Pad(12, /*durable_lsn=*/12);
  b.bytes()[bad + kRecordHeaderSize] ^= 0x40;  // record 11's payload
  std::unique_ptr<SegmentReader> r = OpenReader(b.bytes());
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->Next(&rec_, &h_), Outcome::kRecord);
  ASSERT_EQ(r->Next(&rec_, &h_), Outcome::kBad);
  RecordHeader later;
  auto off = r->FindNextValidFrame(bad, 0, &later);
  ASSERT_TRUE(off.has_value());
  EXPECT_EQ(later.lsn, 12u);  // record 12
  off = r->FindNextValidFrame(*off, 0, &later);
  ASSERT_TRUE(off.has_value());
  EXPECT_EQ(*off, pad);
  EXPECT_EQ(later.flags, kFlagPadding);
  EXPECT_EQ(later.durable_lsn, 12u);
}

}  // namespace
}  // namespace segwal
