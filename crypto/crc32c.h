// CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the checksum
// segwal stores with every record and header. Same API and same values as
// LevelDB's crc32c: Value("123456789") == 0xE3069283.
//
// Implementation, chosen once on first use (a function-local static):
//   - "isa-l+sse4.2" on x86-64 with SSE4.2: inputs of 256 bytes and more go to
//     Intel ISA-L's crc32_iscsi (PCLMULQDQ folding, tens of GB/s; ISA-L picks
//     its own best variant for the CPU at run time); shorter ones to a plain
//     crc32-instruction loop, because ISA-L's per-call set-up dominates there.
//   - "isa-l" elsewhere when ISA-L is built in (SEGWAL_CRC32C_HAVE_ISAL).
//   - "sse4.2" on x86-64 without ISA-L: the instruction loop for every length.
//   - "portable" otherwise: ExtendPortable, table-driven slicing-by-8.
// Each accelerated candidate must first agree with ExtendPortable on the check
// value and a few longer inputs, else the next one is tried. ExtendPortable is
// always compiled so tests and benchmarks can compare against it.
//
// Thread safety: every function is pure and safe to call from any thread.

#ifndef SEGWAL_CRYPTO_CRC32C_H_
#define SEGWAL_CRYPTO_CRC32C_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace segwal {
namespace crc32c {

// Returns the CRC32C of concat(A, data[0,n-1]) where init_crc is the CRC32C of
// some string A. Extend() is often used to maintain the CRC32C of a stream.
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);

// The CRC32C of data[0,n-1].
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }

inline uint32_t Extend(uint32_t init_crc, absl::string_view data) {
  return Extend(init_crc, data.data(), data.size());
}
inline uint32_t Value(absl::string_view data) {
  return Extend(0, data.data(), data.size());
}

// Same contract as Extend, computed by portable table-driven code
// (slicing-by-8) that works on any CPU and either byte order. Slower; used as
// the fallback and as the reference in tests.
uint32_t ExtendPortable(uint32_t init_crc, const char* data, size_t n);

// Which code Extend/Value run on this machine: "isa-l+sse4.2", "isa-l",
// "sse4.2" or "portable".
const char* ImplementationName();

// Why masking: the CRC of a string that itself contains CRCs (a record whose
// payload embeds checksummed data, a segment file copied into a record, a CRC
// stored next to the bytes it covers) is prone to degenerate cases, e.g. the
// CRC of (data + CRC(data)) is a constant for every data. LevelDB therefore
// stores a "masked" CRC: rotated right by 15 bits plus a constant. Store
// Mask(crc) on disk; Unmask what you read before comparing it with a freshly
// computed CRC.
inline constexpr uint32_t kMaskDelta = 0xa282ead8u;

inline uint32_t Mask(uint32_t crc) {
  // Rotate right by 15 bits and add a constant.
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}

// The inverse of Mask: Unmask(Mask(crc)) == crc.
inline uint32_t Unmask(uint32_t masked_crc) {
  uint32_t rot = masked_crc - kMaskDelta;
  return ((rot >> 17) | (rot << 15));
}

}  // namespace crc32c
}  // namespace segwal

#endif  // SEGWAL_CRYPTO_CRC32C_H_
