#include "crypto/crc32c.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "testutil/testutil.h"

namespace segwal {
namespace crc32c {
namespace {

// The check value and the iSCSI test vectors (RFC 3720, B.4).
TEST(Crc32cTest, StandardVectors) {
  EXPECT_EQ(0xE3069283u, Value("123456789", 9));

  char buf[32];
  std::memset(buf, 0, sizeof(buf));
  EXPECT_EQ(0x8A9136AAu, Value(buf, sizeof(buf)));

  std::memset(buf, 0xff, sizeof(buf));
  EXPECT_EQ(0x62A8AB43u, Value(buf, sizeof(buf)));

  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(i);
  EXPECT_EQ(0x46DD794Eu, Value(buf, sizeof(buf)));

  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(31 - i);
  EXPECT_EQ(0x113FDB5Cu, Value(buf, sizeof(buf)));
}

TEST(Crc32cTest, PortableMatchesStandardVectors) {
  EXPECT_EQ(0xE3069283u, ExtendPortable(0, "123456789", 9));
  char buf[32];
  std::memset(buf, 0, sizeof(buf));
  EXPECT_EQ(0x8A9136AAu, ExtendPortable(0, buf, sizeof(buf)));
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(31 - i);
  EXPECT_EQ(0x113FDB5Cu, ExtendPortable(0, buf, sizeof(buf)));
}

TEST(Crc32cTest, EmptyInputLeavesCrcUnchanged) {
  EXPECT_EQ(0u, Value("", 0));
  EXPECT_EQ(0u, Value(nullptr, 0));
  EXPECT_EQ(0x12345678u, Extend(0x12345678u, nullptr, 0));
  EXPECT_EQ(0x12345678u, ExtendPortable(0x12345678u, nullptr, 0));
}

TEST(Crc32cTest, DifferentDataGivesDifferentValues) {
  EXPECT_NE(Value("a", 1), Value("foo", 3));
  EXPECT_NE(Value("foo", 3), Value("bar", 3));
}

TEST(Crc32cTest, StringViewOverloadsAgree) {
  std::string s = "hello world";
  EXPECT_EQ(Value(s.data(), s.size()), Value(s));
  EXPECT_EQ(Extend(Value("hello "), "world"), Value(s));
}

TEST(Crc32cTest, ExtendOfValueIsValueOfConcatenation) {
  EXPECT_EQ(Value("hello world", 11), Extend(Value("hello ", 6), "world", 5));

  testutil::Random rnd(testutil::TestSeed(301));
  for (int i = 0; i < 200; ++i) {
    std::string a = rnd.RandomBytes(rnd.Skewed(12));
    std::string b = rnd.RandomBytes(rnd.Skewed(12));
    SCOPED_TRACE(testing::Message()
                 << "|a|=" << a.size() << " |b|=" << b.size());
    EXPECT_EQ(Value(a + b), Extend(Value(a), b));
    EXPECT_EQ(ExtendPortable(0, (a + b).data(), a.size() + b.size()),
              ExtendPortable(ExtendPortable(0, a.data(), a.size()), b.data(),
                             b.size()));
  }
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  uint32_t crc = Value("foo", 3);
  EXPECT_NE(crc, Mask(crc));
  EXPECT_NE(crc, Mask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Unmask(Mask(Mask(crc)))));

  testutil::Random rnd(testutil::TestSeed(302));
  for (uint32_t x : {0u, 1u, 0xffffffffu, 0x80000000u, kMaskDelta}) {
    EXPECT_NE(x, Mask(x)) << x;
    EXPECT_EQ(x, Unmask(Mask(x))) << x;
  }
  for (int i = 0; i < 10000; ++i) {
    uint32_t x = static_cast<uint32_t>(rnd.Next64());
    EXPECT_NE(x, Mask(x)) << x;
    EXPECT_EQ(x, Unmask(Mask(x))) << x;
  }
}

// The degenerate case masking exists for: the CRC of data followed by its own
// (little-endian) CRC is the same constant for every input. With the masked CRC
// appended instead, it depends on the data again.
TEST(Crc32cTest, MaskBreaksCrcOfDataWithItsOwnCrc) {
  auto with_crc = [](const std::string& data, uint32_t crc) {
    std::string s = data;
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(crc >> (8 * i)));
    return Value(s);
  };
  testutil::Random rnd(testutil::TestSeed(303));
  std::string a = rnd.RandomBytes(100);
  std::string b = rnd.RandomBytes(37);
  EXPECT_EQ(with_crc(a, Value(a)), with_crc(b, Value(b)));
  EXPECT_NE(with_crc(a, Mask(Value(a))), with_crc(b, Mask(Value(b))));
}

// The chosen implementation and the portable one agree on every length up to
// 4 KiB at every alignment within 16 bytes, both from scratch and extending a
// non-zero CRC.
TEST(Crc32cTest, FastMatchesPortableAtEveryLengthAndAlignment) {
  constexpr size_t kMaxLen = 4096;
  constexpr size_t kMaxAlign = 16;
  testutil::Random rnd(testutil::TestSeed(304));
  const std::string data = rnd.RandomBytes(kMaxLen);
  // 16-byte aligned storage with room to shift the data by up to 15 bytes.
  std::vector<uint64_t> storage((kMaxLen + kMaxAlign) / sizeof(uint64_t) + 2);
  char* base = reinterpret_cast<char*>(storage.data());
  base += (16 - reinterpret_cast<uintptr_t>(base) % 16) % 16;

  SCOPED_TRACE(testing::Message() << "implementation: " << ImplementationName()
                                  << " seed: " << testutil::TestSeed(304));
  for (size_t align = 0; align < kMaxAlign; ++align) {
    char* buf = base + align;
    std::memcpy(buf, data.data(), kMaxLen);
    const uint32_t init = static_cast<uint32_t>(rnd.Next64());
    for (size_t len = 0; len <= kMaxLen; ++len) {
      ASSERT_EQ(ExtendPortable(0, buf, len), Value(buf, len))
          << "len=" << len << " align=" << align;
      ASSERT_EQ(ExtendPortable(init, buf, len), Extend(init, buf, len))
          << "len=" << len << " align=" << align;
    }
  }
}

TEST(Crc32cTest, ReportsItsImplementation) {
  std::string name = ImplementationName();
  EXPECT_TRUE(name == "isa-l+sse4.2" || name == "isa-l" || name == "sse4.2" ||
              name == "portable")
      << name;
}

}  // namespace
}  // namespace crc32c
}  // namespace segwal
