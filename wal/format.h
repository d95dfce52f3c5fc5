// Encoding and decoding of segwal's on-disk structures. The format is specified
// in wal/FORMAT.md (version 1); this file is its only implementation.
//
// Thread safety: pure functions.

#ifndef SEGWAL_WAL_FORMAT_H_
#define SEGWAL_WAL_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "util/coding.h"

namespace segwal {
namespace wal_format {

inline constexpr char kSegmentMagic[8] = {'s', 'e', 'g', 'w', 'a', 'l', '\x1a', '\n'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 64;
// A segment's first LSN is in [1, kMaxFirstLsn]: LSNs start at 1, and a log
// cannot append 2^63 records, so no LSN it assigns wraps around.
inline constexpr uint64_t kMaxFirstLsn = uint64_t{1} << 63;
inline constexpr size_t kSaltSize = 16;
inline constexpr size_t kRecordHeaderSize = 56;
inline constexpr size_t kTrailerSize = 32;
inline constexpr size_t kIndexEntrySize = 16;
inline constexpr uint32_t kTrailerMagic = 0x54465753;  // "SWFT" little-endian
// The footer index has an entry for the first record at or after every
// kIndexInterval bytes of record data.
inline constexpr uint64_t kIndexInterval = 16 << 10;

// Record flags.
inline constexpr uint16_t kFlagSnappy = 1 << 0;
inline constexpr uint16_t kFlagEncrypted = 1 << 1;
// A padding frame (FORMAT.md, "Padding frames"): no record, no LSN of its own.
inline constexpr uint16_t kFlagPadding = 1 << 14;
inline constexpr uint16_t kFlagFooter = 1 << 15;
inline constexpr uint16_t kKnownRecordFlags =
    kFlagSnappy | kFlagEncrypted | kFlagPadding | kFlagFooter;

// Segment flags.
inline constexpr uint32_t kSegmentEncrypted = 1 << 0;
// The segment may hold padding frames (written with use_direct_io).
inline constexpr uint32_t kSegmentPadded = 1 << 1;
inline constexpr uint32_t kKnownSegmentFlags = kSegmentEncrypted | kSegmentPadded;

// Padding frames end exactly on a multiple of this (the direct-I/O block).
inline constexpr uint64_t kPaddingBlockSize = 4096;

struct SegmentHeader {
  uint32_t version = kFormatVersion;
  uint64_t first_lsn = 0;
  char salt[kSaltSize] = {};
  uint32_t flags = 0;
  uint32_t cipher = 0;
  uint64_t key_id = 0;
};

std::string EncodeSegmentHeader(const SegmentHeader& header);
// `in` must hold kSegmentHeaderSize bytes. DataLoss for a bad magic or CRC,
// FailedPrecondition for an unknown format version. Messages name no file:
// callers add it.
absl::Status DecodeSegmentHeader(absl::string_view in, SegmentHeader* header);
// The seed every record CRC of the segment extends (FORMAT.md).
uint32_t SegmentSeed(const SegmentHeader& header);

struct RecordHeader {
  uint32_t payload_length = 0;
  uint16_t flags = 0;
  uint64_t lsn = 0;
  uint64_t durable_lsn = 0;
  uint64_t tenant_id = 0;
  uint64_t database_id = 0;
  uint32_t record_type = 0;
  uint32_t vshard_id = 0;
};

// The bytes [8, 56) of the record header (everything but the two CRCs), as
// AppendRecord writes them. Encrypted records bind them as associated data.
inline constexpr size_t kRecordHeaderFieldsSize = kRecordHeaderSize - 8;
void EncodeRecordHeaderFields(const RecordHeader& header,
                              char out[kRecordHeaderFieldsSize]);

// Appends the framed record (header + payload) to *dst.
// REQUIRES: payload.size() == header.payload_length.
void AppendRecord(uint32_t seed, const RecordHeader& header,
                  absl::string_view payload, std::string* dst);
// For a frame built in place: *dst holds, from `start` to its end, 8 bytes
// for the CRCs, the header fields (EncodeRecordHeaderFields) and the payload.
// Computes and stores the two CRCs.
void FinishRecordFrame(uint32_t seed, size_t start, std::string* dst);

// Decodes the 56 bytes at `p` and checks the header CRC. Returns false if the
// CRC does not match (nothing in *header can be trusted then). On success
// *payload_seed is what the payload CRC must extend, *payload_crc the stored one.
bool DecodeRecordHeader(uint32_t seed, const char* p, RecordHeader* header,
                        uint32_t* payload_seed, uint32_t* payload_crc);
bool PayloadMatches(uint32_t payload_seed, uint32_t payload_crc,
                    absl::string_view payload);

// Padding frames (FORMAT.md, "Padding frames"). A padding frame starting at
// `offset` ends at the first multiple of kPaddingBlockSize at or after
// offset + kRecordHeaderSize: its size is in [kRecordHeaderSize,
// kPaddingBlockSize + kRecordHeaderSize).
uint64_t PaddingFrameSize(uint64_t offset);
// Appends the padding frame for `offset` to *dst: flags kFlagPadding, LSN
// `lsn` (the last LSN before it; first LSN - 1 if none), durable LSN as for a
// record, every other field 0, payload zeros.
void AppendPaddingFrame(uint32_t seed, uint64_t offset, uint64_t lsn,
                        uint64_t durable_lsn, std::string* dst);
// Checks the shape of a frame with kFlagPadding whose CRCs matched, found at
// `offset`: DataLoss naming what is wrong (no location: callers add file and
// offset) if other flags are set, it does not end at its block boundary, or
// its payload is not zeros. (Its LSN depends on the records before it: the
// reader checks that.)
absl::Status CheckPaddingFrame(const RecordHeader& header, uint64_t offset,
                               absl::string_view payload);

struct IndexEntry {
  uint64_t lsn;
  uint64_t offset;
};

struct Footer {
  uint64_t footer_offset = 0;
  uint64_t last_lsn = 0;
  uint64_t record_count = 0;
  std::vector<IndexEntry> index;
};

// Appends the footer frame for a footer starting at footer.footer_offset.
void AppendFooter(uint32_t seed, uint64_t durable_lsn, const Footer& footer,
                  std::string* dst);
// The size of the frame AppendFooter writes.
uint64_t FooterFrameSize(size_t index_entries);

struct Trailer {
  uint64_t footer_offset = 0;
  uint64_t last_lsn = 0;
  uint64_t record_count = 0;
  uint32_t index_count = 0;
};
// `in` must hold kTrailerSize bytes. False if the magic does not match.
bool DecodeTrailer(absl::string_view in, Trailer* trailer);
// Decodes a footer frame's payload (index entries + trailer). DataLoss if it is
// inconsistent with itself.
absl::Status DecodeFooterPayload(absl::string_view payload,
                                 uint64_t footer_offset, Footer* footer);

// "00000000000000000001.wal" for first_lsn 1.
std::string SegmentFileName(uint64_t first_lsn);
// True for names of exactly the form SegmentFileName produces.
bool ParseSegmentFileName(absl::string_view name, uint64_t* first_lsn);
// "spare-<20 digits>.tmp": a spare file (FORMAT.md, "Spare files").
std::string SpareFileName(uint64_t id);
bool ParseSpareFileName(absl::string_view name, uint64_t* id);

// Every integer field of the format is little-endian, in util/coding.h's
// codec; it is also reachable under these names.
using ::segwal::DecodeFixed16;
using ::segwal::DecodeFixed32;
using ::segwal::DecodeFixed64;
using ::segwal::PutFixed32;
using ::segwal::PutFixed64;

}  // namespace wal_format
}  // namespace segwal

#endif  // SEGWAL_WAL_FORMAT_H_
