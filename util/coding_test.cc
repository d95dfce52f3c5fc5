#include "util/coding.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace segwal {
namespace {

TEST(CodingTest, EncodeWritesLeastSignificantByteFirst) {
  char b[8];
  EncodeFixed16(b, 0x0201);
  EXPECT_EQ(std::string(b, 2), std::string("\x01\x02", 2));
  EncodeFixed32(b, 0x04030201u);
  EXPECT_EQ(std::string(b, 4), std::string("\x01\x02\x03\x04", 4));
  EncodeFixed64(b, 0x0807060504030201ull);
  EXPECT_EQ(std::string(b, 8), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
}

TEST(CodingTest, EncodeWritesExactlyItsWidth) {
  std::string buf(10, '*');
  EncodeFixed16(&buf[1], 0xffff);
  EXPECT_EQ(buf, "*\xff\xff*******");
  buf.assign(10, '*');
  EncodeFixed32(&buf[1], 0xffffffffu);
  EXPECT_EQ(buf, "*\xff\xff\xff\xff*****");
  buf.assign(10, '*');
  EncodeFixed64(&buf[1], ~uint64_t{0});
  EXPECT_EQ(buf, "*\xff\xff\xff\xff\xff\xff\xff\xff*");
}

TEST(CodingTest, PutAppendsToWhatIsThere) {
  std::string s = "ab";
  PutFixed32(&s, 0x04030201u);
  PutFixed64(&s, 0x0807060504030201ull);
  EXPECT_EQ(s, std::string("ab\x01\x02\x03\x04\x01\x02\x03\x04\x05\x06\x07\x08",
                           14));
}

TEST(CodingTest, DecodeReadsHighBytesAsUnsigned) {
  const std::string ff(8, '\xff');
  EXPECT_EQ(DecodeFixed16(ff.data()), 0xffffu);
  EXPECT_EQ(DecodeFixed32(ff.data()), 0xffffffffu);
  EXPECT_EQ(DecodeFixed64(ff.data()), ~uint64_t{0});
  const std::string mixed("\x80\x01\xfe\x7f\x00\x90\x00\xa0", 8);
  EXPECT_EQ(DecodeFixed16(mixed.data()), 0x0180u);
  EXPECT_EQ(DecodeFixed32(mixed.data()), 0x7ffe0180u);
  EXPECT_EQ(DecodeFixed64(mixed.data()), 0xa00090007ffe0180ull);
}

TEST(CodingTest, RoundTripsAtEveryAlignment) {
  const uint64_t values[] = {0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000,
                             0x7fffffff, 0x80000000, 0xffffffff, 0x100000000,
                             0x0123456789abcdefull, ~uint64_t{0} >> 1,
                             ~uint64_t{0}};
  char buf[16];
  for (size_t at = 0; at < 8; ++at) {
    for (uint64_t v : values) {
      EncodeFixed16(buf + at, static_cast<uint16_t>(v));
      EXPECT_EQ(DecodeFixed16(buf + at), static_cast<uint16_t>(v));
      EncodeFixed32(buf + at, static_cast<uint32_t>(v));
      EXPECT_EQ(DecodeFixed32(buf + at), static_cast<uint32_t>(v));
      EncodeFixed64(buf + at, v);
      EXPECT_EQ(DecodeFixed64(buf + at), v);
    }
  }
}

}  // namespace
}  // namespace segwal
