#include "crypto/crc32c.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#ifdef SEGWAL_CRC32C_HAVE_ISAL
#include <isa-l/crc.h>
#endif

#include "util/coding.h"

// The build compiles with -msse4.2 (.bazelrc); the CPU is still checked at run
// time before this code is used.
#if defined(__x86_64__) && defined(__SSE4_2__)
#define SEGWAL_CRC32C_HAVE_SSE42 1
#include <nmmintrin.h>
#endif

namespace segwal {
namespace crc32c {
namespace {

// The reflected Castagnoli polynomial.
constexpr uint32_t kPolynomial = 0x82F63B78u;

// Slicing-by-8 tables: kTables[0] is the classic byte-at-a-time table;
// kTables[k][b] is the CRC contribution of byte b followed by k zero bytes, so
// eight bytes can be folded in with eight independent lookups.
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
    }
    t[0][i] = crc;
  }
  for (size_t k = 1; k < t.size(); ++k) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t prev = t[k - 1][i];
      t[k][i] = (prev >> 8) ^ t[0][prev & 0xff];
    }
  }
  return t;
}

constexpr Tables kTables = MakeTables();
static_assert(kTables[0][1] == 0xF26B8303u, "CRC32C table is wrong");

#ifdef SEGWAL_CRC32C_HAVE_SSE42
// One crc32 instruction per 8 bytes: latency-bound, but with no set-up cost, so
// it beats ISA-L's folding code on short inputs.
uint32_t ExtendSse42(uint32_t init_crc, const char* data, size_t n) {
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  uint64_t crc = ~init_crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof(word));
    crc = _mm_crc32_u64(crc, word);
    p += 8;
    n -= 8;
  }
  uint32_t crc32 = static_cast<uint32_t>(crc);
  while (n > 0) {
    crc32 = _mm_crc32_u8(crc32, *p);
    ++p;
    --n;
  }
  return ~crc32;
}
#endif

#ifdef SEGWAL_CRC32C_HAVE_ISAL
// ISA-L's crc32_iscsi neither inverts its input CRC nor its result (LevelDB's
// Extend does both), and takes an int length, so long inputs go in chunks.
uint32_t ExtendIsal(uint32_t init_crc, const char* data, size_t n) {
  constexpr size_t kMaxChunk = size_t{1} << 30;  // < INT_MAX
  static_assert(kMaxChunk <= static_cast<size_t>(INT_MAX));
  // crc32_iscsi takes a non-const pointer but does not write through it.
  auto* p = reinterpret_cast<unsigned char*>(const_cast<char*>(data));
  uint32_t crc = ~init_crc;
  while (n > 0) {
    size_t chunk = std::min(n, kMaxChunk);
    crc = crc32_iscsi(p, static_cast<int>(chunk), crc);
    p += chunk;
    n -= chunk;
  }
  return ~crc;
}

#ifdef SEGWAL_CRC32C_HAVE_SSE42
// ISA-L costs 12-30 ns per call below a few hundred bytes (measured on x86-64:
// 20 ns for 64 B, where the plain instruction loop takes 6 ns) and wins from
// about 256 B on. WAL record headers and small records live below that line.
constexpr size_t kSmallInput = 256;

uint32_t ExtendIsalSse42(uint32_t init_crc, const char* data, size_t n) {
  if (n < kSmallInput) return ExtendSse42(init_crc, data, n);
  return ExtendIsal(init_crc, data, n);
}
#endif
#endif  // SEGWAL_CRC32C_HAVE_ISAL

using ExtendFunction = uint32_t (*)(uint32_t, const char*, size_t);

struct Implementation {
  ExtendFunction extend;
  const char* name;
};

#if defined(SEGWAL_CRC32C_HAVE_ISAL) || defined(SEGWAL_CRC32C_HAVE_SSE42)
// An accelerated implementation is trusted only if it agrees with the portable
// code on the check value and on inputs long enough to reach every code path
// (guards against a broken or mismatched libisal).
bool AgreesWithPortable(ExtendFunction extend) {
  if (extend(0, "123456789", 9) != 0xE3069283u) return false;
  char buf[1024];
  for (size_t i = 0; i < sizeof(buf); ++i) {
    buf[i] = static_cast<char>(i * 131 + 7);
  }
  for (size_t n :
       {size_t{1}, size_t{63}, size_t{255}, size_t{256}, size_t{1000}}) {
    if (extend(0x1234567u, buf + 3, n) !=
        ExtendPortable(0x1234567u, buf + 3, n)) {
      return false;
    }
  }
  return true;
}
#endif

Implementation Choose() {
#ifdef SEGWAL_CRC32C_HAVE_SSE42
  // Needed if we run before libgcc's own constructor (from another static
  // initializer); harmless otherwise.
  __builtin_cpu_init();
#endif
#ifdef SEGWAL_CRC32C_HAVE_ISAL
#ifdef SEGWAL_CRC32C_HAVE_SSE42
  if (__builtin_cpu_supports("sse4.2") &&
      AgreesWithPortable(&ExtendIsalSse42)) {
    return {&ExtendIsalSse42, "isa-l+sse4.2"};
  }
#endif
  if (AgreesWithPortable(&ExtendIsal)) return {&ExtendIsal, "isa-l"};
#elif defined(SEGWAL_CRC32C_HAVE_SSE42)
  if (__builtin_cpu_supports("sse4.2") && AgreesWithPortable(&ExtendSse42)) {
    return {&ExtendSse42, "sse4.2"};
  }
#endif
  return {&ExtendPortable, "portable"};
}

// Chosen on first use (a function-local static, so it is safe to call from
// other translation units' static initializers and from several threads).
const Implementation& Chosen() {
  static const Implementation impl = Choose();
  return impl;
}

}  // namespace

uint32_t ExtendPortable(uint32_t init_crc, const char* data, size_t n) {
  uint32_t crc = ~init_crc;
  // Slicing-by-8 takes its input as little-endian words, on any host.
  while (n >= 8) {
    uint32_t lo = DecodeFixed32(data) ^ crc;
    uint32_t hi = DecodeFixed32(data + 4);
    crc = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^
          kTables[5][(lo >> 16) & 0xff] ^ kTables[4][lo >> 24] ^
          kTables[3][hi & 0xff] ^ kTables[2][(hi >> 8) & 0xff] ^
          kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
    data += 8;
    n -= 8;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  while (n > 0) {
    crc = kTables[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
    ++p;
    --n;
  }
  return ~crc;
}

uint32_t Extend(uint32_t init_crc, const char* data, size_t n) {
  return Chosen().extend(init_crc, data, n);
}

const char* ImplementationName() { return Chosen().name; }

}  // namespace crc32c
}  // namespace segwal
