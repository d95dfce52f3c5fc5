#include "wal/payload_codec.h"

#include <snappy.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "crypto/key_ring.h"
#include "crypto/segment_cipher.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"
#include "wal/format.h"

namespace segwal {
namespace {

using ::segwal::testutil::Random;
using ::segwal::testutil::StatusIs;
using ::testing::HasSubstr;
using wal_format::kFlagEncrypted;
using wal_format::kFlagSnappy;
using wal_format::kRecordHeaderSize;
using wal_format::RecordHeader;
using wal_format::SegmentHeader;

constexpr uint64_t kMaxRecord = 1 << 20;

WalEncryptionKey Key(uint64_t seed) {
  Random rnd(seed);
  return *WalEncryptionKey::FromBytes(rnd.RandomBytes(32));
}

// Half random, half repeated: Snappy roughly halves it.
std::string Compressible(Random* rnd, size_t n) {
  std::string s = rnd->RandomBytes(n / 2);
  while (s.size() < n) s.push_back('z');
  return s;
}

struct TestSegment {
  SegmentHeader header;
  std::string encoded;
  std::unique_ptr<PayloadCodec> codec;
};

TestSegment MakeSegment(const KeyRing* ring, uint64_t first_lsn,
                        uint64_t salt_seed = 1) {
  TestSegment t;
  t.header.first_lsn = first_lsn;
  Random rnd(salt_seed);
  const std::string salt = rnd.RandomBytes(wal_format::kSaltSize);
  memcpy(t.header.salt, salt.data(), salt.size());
  if (ring != nullptr) {
    t.header.flags = wal_format::kSegmentEncrypted;
    t.header.cipher = SegmentCipher::kAes256Gcm;
    t.header.key_id = ring->current().key_id();
  }
  t.encoded = wal_format::EncodeSegmentHeader(t.header);
  auto codec = PayloadCodec::ForNewSegment(t.header, t.encoded, ring);
  EXPECT_TRUE(codec.ok()) << codec.status();
  if (codec.ok()) t.codec = std::move(*codec);
  return t;
}

RecordHeader HeaderFor(uint64_t lsn) {
  RecordHeader h;
  h.lsn = lsn;
  h.durable_lsn = lsn - 1;
  h.tenant_id = 7;
  h.database_id = 9;
  h.record_type = 3;
  h.vshard_id = 5;
  return h;
}

// Frames `payload` as the WAL does; returns the stored bytes and the header.
std::string Frame(const TestSegment& seg, Compression compression,
                  absl::string_view payload, RecordHeader* h) {
  std::string compressed, framed;
  const bool is_compressed = CompressPayload(compression, payload, &compressed);
  const absl::string_view body = is_compressed ? compressed : payload;
  absl::Status s = seg.codec->AppendRecord(wal_format::SegmentSeed(seg.header),
                                           is_compressed, body, h, &framed);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(framed.size(), kRecordHeaderSize + h->payload_length);
  // The frame is valid for the segment's CRC seed.
  RecordHeader decoded;
  uint32_t payload_seed, payload_crc;
  EXPECT_TRUE(wal_format::DecodeRecordHeader(
      wal_format::SegmentSeed(seg.header), framed.data(), &decoded,
      &payload_seed, &payload_crc));
  EXPECT_EQ(decoded.flags, h->flags);
  EXPECT_EQ(decoded.payload_length, h->payload_length);
  const std::string stored = framed.substr(kRecordHeaderSize);
  EXPECT_TRUE(wal_format::PayloadMatches(payload_seed, payload_crc, stored));
  return stored;
}

absl::Status DecodeTo(const TestSegment& seg, const RecordHeader& h,
                      absl::string_view stored, std::string* out,
                      uint64_t max_record = kMaxRecord) {
  std::string scratch;
  return seg.codec->Decode(h, stored, max_record, out, &scratch);
}

TEST(CompressPayloadTest, OnlyWhenSnappyAndSmaller) {
  Random rnd(1);
  std::string out;
  const std::string compressible = Compressible(&rnd, 4096);
  EXPECT_FALSE(CompressPayload(Compression::kNone, compressible, &out));
  ASSERT_TRUE(CompressPayload(Compression::kSnappy, compressible, &out));
  EXPECT_LT(out.size(), compressible.size());
  std::string back;
  ASSERT_TRUE(snappy::Uncompress(out.data(), out.size(), &back));
  EXPECT_EQ(back, compressible);
  EXPECT_FALSE(CompressPayload(Compression::kSnappy, rnd.RandomBytes(4096), &out))
      << "random bytes do not shrink";
  EXPECT_FALSE(CompressPayload(Compression::kSnappy, "", &out));
  EXPECT_FALSE(CompressPayload(Compression::kSnappy, "ab", &out));
}

TEST(PayloadCodecTest, PlaintextRoundTrips) {
  TestSegment seg = MakeSegment(nullptr, 10);
  EXPECT_FALSE(seg.codec->encrypted());
  Random rnd(2);
  for (Compression c : {Compression::kNone, Compression::kSnappy}) {
    for (size_t n : {0, 1, 100, 4096, 70000}) {
      for (bool compressible : {false, true}) {
        const std::string payload =
            compressible ? Compressible(&rnd, n) : rnd.RandomBytes(n);
        RecordHeader h = HeaderFor(10);
        const std::string stored = Frame(seg, c, payload, &h);
        EXPECT_EQ(h.flags & kFlagEncrypted, 0);
        const bool snappy = (h.flags & kFlagSnappy) != 0;
        EXPECT_EQ(snappy, c == Compression::kSnappy && compressible && n >= 100)
            << n;
        if (!snappy) {
          EXPECT_EQ(stored, payload);
        }
        std::string out;
        ASSERT_OK(DecodeTo(seg, h, stored, &out));
        EXPECT_EQ(out, payload);
      }
    }
  }
}

TEST(PayloadCodecTest, EncryptedRoundTrips) {
  KeyRing ring(Key(1));
  TestSegment seg = MakeSegment(&ring, 10);
  EXPECT_TRUE(seg.codec->encrypted());
  Random rnd(3);
  uint64_t lsn = 10;
  for (Compression c : {Compression::kNone, Compression::kSnappy}) {
    for (size_t n : {0, 1, 100, 4096, 70000}) {
      const std::string payload = Compressible(&rnd, n);
      RecordHeader h = HeaderFor(lsn++);
      const std::string stored = Frame(seg, c, payload, &h);
      EXPECT_NE(h.flags & kFlagEncrypted, 0);
      EXPECT_EQ((h.flags & kFlagSnappy) != 0,
                c == Compression::kSnappy && n >= 100);
      if (!(h.flags & kFlagSnappy)) {
        EXPECT_EQ(stored.size(), n + SegmentCipher::kTagSize);
      }
      if (n >= 16) {
        EXPECT_EQ(stored.find(payload.substr(0, 16)), std::string::npos)
            << "plaintext on disk";
      }
      std::string out;
      ASSERT_OK(DecodeTo(seg, h, stored, &out));
      EXPECT_EQ(out, payload);
    }
  }
}

// The associated data binds every record header field and the segment
// header: changing any of them (CRCs aside) fails the tag.
TEST(PayloadCodecTest, TagBindsRecordAndSegmentHeaders) {
  KeyRing ring(Key(1));
  TestSegment seg = MakeSegment(&ring, 10);
  RecordHeader h = HeaderFor(12);
  const std::string stored = Frame(seg, Compression::kSnappy,
                                   std::string(300, 'q'), &h);
  std::string out;
  ASSERT_OK(DecodeTo(seg, h, stored, &out));
  const std::vector<std::pair<const char*, void (*)(RecordHeader*)>> edits = {
      {"lsn", [](RecordHeader* r) { r->lsn++; }},
      {"durable lsn", [](RecordHeader* r) { r->durable_lsn++; }},
      {"tenant", [](RecordHeader* r) { r->tenant_id ^= 1; }},
      {"database", [](RecordHeader* r) { r->database_id ^= 1; }},
      {"type", [](RecordHeader* r) { r->record_type ^= 1; }},
      {"vshard", [](RecordHeader* r) { r->vshard_id ^= 1; }},
      {"length", [](RecordHeader* r) { r->payload_length ^= 1; }},
      {"flags (snappy bit)", [](RecordHeader* r) { r->flags ^= kFlagSnappy; }},
  };
  for (const auto& [what, change] : edits) {
    RecordHeader bad = h;
    change(&bad);
    EXPECT_THAT(DecodeTo(seg, bad, stored, &out),
                StatusIs(absl::StatusCode::kDataLoss,
                         HasSubstr("decryption failed")))
        << what;
  }
  // Same subkey (salt, first LSN, key) but another header byte (the reserved
  // field stands in for any byte the subkey does not cover).
  std::string other_header = seg.encoded;
  other_header[56] ^= 1;
  auto cipher = SegmentCipher::Create(
      ring.current(), absl::string_view(seg.header.salt, 16), 10);
  ASSERT_OK(cipher.status());
  PayloadCodec other(other_header, std::move(*cipher));
  std::string scratch;
  EXPECT_THAT(other.Decode(h, stored, kMaxRecord, &out, &scratch),
              StatusIs(absl::StatusCode::kDataLoss));
  // Another segment (fresh salt) of the same key.
  TestSegment sibling = MakeSegment(&ring, 10, /*salt_seed=*/2);
  EXPECT_THAT(DecodeTo(sibling, h, stored, &out),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(PayloadCodecTest, RecordFlagsMustFitTheSegment) {
  KeyRing ring(Key(1));
  TestSegment encrypted = MakeSegment(&ring, 10);
  TestSegment plain = MakeSegment(nullptr, 10);
  RecordHeader h = HeaderFor(10);
  const std::string sealed = Frame(encrypted, Compression::kNone, "secret", &h);
  std::string out;
  EXPECT_THAT(DecodeTo(plain, h, sealed, &out),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("encrypted record in an unencrypted segment")));
  RecordHeader p = HeaderFor(10);
  const std::string clear = Frame(plain, Compression::kNone, "injected", &p);
  EXPECT_THAT(DecodeTo(encrypted, p, clear, &out),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("unencrypted record in an encrypted segment")));
}

TEST(PayloadCodecTest, CorruptSnappyIsDataLossNeverACrash) {
  TestSegment seg = MakeSegment(nullptr, 1);
  RecordHeader h = HeaderFor(1);
  h.flags = kFlagSnappy;
  std::string out;
  Random rnd(4);
  for (int i = 0; i < 2000; ++i) {
    const std::string junk = rnd.RandomBytes(rnd.Uniform(200));
    std::string fresh;  // its capacity shows what this call allocated
    absl::Status s = DecodeTo(seg, h, junk, &fresh);
    if (!s.ok()) {
      EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
      EXPECT_LE(fresh.capacity(), kMaxRecord + 64);
    }
  }
  // A valid stream, truncated or bit-flipped.
  std::string good;
  snappy::Compress(std::string(5000, 'a').data(), 5000, &good);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_THAT(DecodeTo(seg, h, good.substr(0, cut), &out),
                StatusIs(absl::StatusCode::kDataLoss))
        << cut;
  }
}

TEST(PayloadCodecTest, SnappyLengthAboveMaxRecordSizeIsRefusedBeforeAllocating) {
  TestSegment seg = MakeSegment(nullptr, 1);
  RecordHeader h = HeaderFor(1);
  h.flags = kFlagSnappy;
  // A varint preamble claiming 2^31 bytes, then nothing.
  const std::string huge = std::string("\x80\x80\x80\x80\x08", 5);
  std::string out;
  EXPECT_THAT(DecodeTo(seg, h, huge, &out, /*max_record=*/4096),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("above max_record_size 4096")));
  EXPECT_LT(out.capacity(), 1u << 20);
  // Exactly at the limit is fine.
  std::string at_limit;
  snappy::Compress(std::string(4096, 'b').data(), 4096, &at_limit);
  ASSERT_OK(DecodeTo(seg, h, at_limit, &out, 4096));
  EXPECT_EQ(out, std::string(4096, 'b'));
  EXPECT_THAT(DecodeTo(seg, h, at_limit, &out, 4095),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(PayloadCodecTest, ExistingSegmentNeedsItsKey) {
  const WalEncryptionKey a = Key(1), b = Key(2), c = Key(3);
  KeyRing ring_a(a);
  TestSegment seg = MakeSegment(&ring_a, 10);
  const std::string id_a = KeyIdToString(a.key_id());
  EXPECT_THAT(
      PayloadCodec::ForExistingSegment("seg.wal", seg.header, seg.encoded,
                                       nullptr),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               testing::AllOf(HasSubstr("seg.wal"), HasSubstr(id_a),
                              HasSubstr("no encryption ring"))));
  KeyRing ring_bc(b, c);
  EXPECT_THAT(
      PayloadCodec::ForExistingSegment("seg.wal", seg.header, seg.encoded,
                                       &ring_bc),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               testing::AllOf(HasSubstr(id_a), HasSubstr("not in the"),
                              HasSubstr(KeyIdToString(b.key_id())),
                              HasSubstr(KeyIdToString(c.key_id())))));
  // Found as current or as previous; it decodes what the writer sealed.
  RecordHeader h = HeaderFor(10);
  const std::string stored = Frame(seg, Compression::kNone, "hello", &h);
  for (const KeyRing& ring : {KeyRing(a), KeyRing(b, a), KeyRing(a, b)}) {
    auto codec = PayloadCodec::ForExistingSegment("seg.wal", seg.header,
                                                  seg.encoded, &ring);
    ASSERT_OK(codec.status());
    std::string out, scratch;
    ASSERT_OK((*codec)->Decode(h, stored, kMaxRecord, &out, &scratch));
    EXPECT_EQ(out, "hello");
  }
  // A plaintext segment needs no ring.
  TestSegment plain = MakeSegment(nullptr, 10);
  auto codec = PayloadCodec::ForExistingSegment("p.wal", plain.header,
                                                plain.encoded, nullptr);
  ASSERT_OK(codec.status());
  EXPECT_FALSE((*codec)->encrypted());
}

TEST(PayloadCodecTest, UnknownSegmentCryptoFieldsAreFailedPrecondition) {
  SegmentHeader h;
  h.first_lsn = 1;
  EXPECT_OK(PayloadCodec::CheckSegmentHeader("s", h));
  h.flags = wal_format::kSegmentPadded;  // padding frames: known
  EXPECT_OK(PayloadCodec::CheckSegmentHeader("s", h));
  h.flags = 4;
  EXPECT_THAT(PayloadCodec::CheckSegmentHeader("s", h),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("unknown segment flags 0x4")));
  h.flags = wal_format::kSegmentEncrypted;
  h.cipher = 2;
  EXPECT_THAT(PayloadCodec::CheckSegmentHeader("s", h),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("unknown cipher 2")));
  h.cipher = SegmentCipher::kAes256Gcm;
  EXPECT_OK(PayloadCodec::CheckSegmentHeader("s", h));
  h.flags = 0;
  EXPECT_THAT(PayloadCodec::CheckSegmentHeader("s", h),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not marked encrypted")));
}

TEST(PayloadCodecTest, HeaderFieldsMatchTheFramedHeader) {
  RecordHeader h = HeaderFor(0x0102030405060708ull);
  h.payload_length = 0xabcdef;
  h.flags = kFlagSnappy | kFlagEncrypted;
  std::string framed;
  wal_format::AppendRecord(0, h, std::string(0xabcdef, 'x'), &framed);
  char fields[wal_format::kRecordHeaderFieldsSize];
  wal_format::EncodeRecordHeaderFields(h, fields);
  EXPECT_EQ(framed.substr(8, wal_format::kRecordHeaderFieldsSize),
            std::string(fields, sizeof(fields)));
}

}  // namespace
}  // namespace segwal
