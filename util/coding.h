// Fixed-width integers as bytes: the codec every segwal file format uses for
// its integer fields (wal/FORMAT.md, kv/FORMAT.md, raft/FORMAT.md) and that
// crypto/ uses for the integers it feeds to HKDF and AES-GCM.
//
// Promises:
//   - Little-endian: the least significant byte first, whatever the host's byte
//     order. EncodeFixed32(p, 0x04030201) writes the bytes 01 02 03 04.
//   - No alignment: any address will do.
//   - No bounds checks. EncodeFixedN writes exactly N/8 bytes at `dst`,
//     DecodeFixedN reads exactly N/8 bytes at `p`, PutFixedN appends exactly
//     N/8 bytes; the caller guarantees the bytes exist (see REQUIRES). Callers
//     decoding untrusted input check the length first.
//   - Decode inverts Encode for every value; bytes are read as unsigned (no
//     sign extension).
//
// Thread safety: pure functions.

#ifndef SEGWAL_UTIL_CODING_H_
#define SEGWAL_UTIL_CODING_H_

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

namespace segwal {

namespace coding_internal {

// Little-endian hosts copy the bytes as they are (one unaligned load or
// store); others shift them into place.
template <typename T>
inline void EncodeLittleEndian(char* dst, T v) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(dst, &v, sizeof(T));
  } else {
    for (size_t i = 0; i < sizeof(T); ++i) {
      dst[i] = static_cast<char>(v >> (8 * i));
    }
  }
}

template <typename T>
inline T DecodeLittleEndian(const char* p) {
  if constexpr (std::endian::native == std::endian::little) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  } else {
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      v |= static_cast<T>(static_cast<unsigned char>(p[i])) << (8 * i);
    }
    return v;
  }
}

}  // namespace coding_internal

// REQUIRES: dst points at 2, 4 or 8 writable bytes.
inline void EncodeFixed16(char* dst, uint16_t v) {
  coding_internal::EncodeLittleEndian(dst, v);
}
inline void EncodeFixed32(char* dst, uint32_t v) {
  coding_internal::EncodeLittleEndian(dst, v);
}
inline void EncodeFixed64(char* dst, uint64_t v) {
  coding_internal::EncodeLittleEndian(dst, v);
}

// Appends the 4 or 8 bytes of `v` to *dst.
inline void PutFixed32(std::string* dst, uint32_t v) {
  char buf[sizeof(v)];
  EncodeFixed32(buf, v);
  dst->append(buf, sizeof(buf));
}
inline void PutFixed64(std::string* dst, uint64_t v) {
  char buf[sizeof(v)];
  EncodeFixed64(buf, v);
  dst->append(buf, sizeof(buf));
}

// REQUIRES: p points at 2, 4 or 8 readable bytes.
inline uint16_t DecodeFixed16(const char* p) {
  return coding_internal::DecodeLittleEndian<uint16_t>(p);
}
inline uint32_t DecodeFixed32(const char* p) {
  return coding_internal::DecodeLittleEndian<uint32_t>(p);
}
inline uint64_t DecodeFixed64(const char* p) {
  return coding_internal::DecodeLittleEndian<uint64_t>(p);
}

}  // namespace segwal

#endif  // SEGWAL_UTIL_CODING_H_
