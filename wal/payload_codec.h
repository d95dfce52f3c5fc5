// PayloadCodec: the one place where a record's payload becomes its stored
// bytes and back (wal/FORMAT.md, "Encryption and compression").
//
//   write:  payload --Snappy, if smaller--> body --AES-256-GCM, if the segment
//           is encrypted--> stored bytes (ciphertext || 16-byte tag)
//   read:   the reverse, refusing anything that does not verify.
//
// Compression does not depend on the segment, so the WAL compresses before it
// takes its lock (CompressPayload); sealing needs the record's LSN and header,
// so it happens while framing (PayloadCodec::AppendRecord). Readers decode
// with PayloadCodec::Decode after the frame's CRCs matched.
//
// Thread safety: a PayloadCodec is immutable after construction; Decode may be
// called from several threads at once (each with its own scratch).

#ifndef SEGWAL_WAL_PAYLOAD_CODEC_H_
#define SEGWAL_WAL_PAYLOAD_CODEC_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/key_ring.h"
#include "crypto/segment_cipher.h"
#include "wal/format.h"
#include "wal/wal_record.h"

namespace segwal {

// Fills *out with the Snappy encoding of `payload` and returns true if
// `compression` is kSnappy and that encoding is shorter; else returns false
// (the payload is stored as is).
bool CompressPayload(Compression compression, absl::string_view payload,
                     std::string* out);

class PayloadCodec {
 public:
  // Size of the associated data an encrypted record binds: the segment header
  // and the record header fields (everything but the CRCs).
  static constexpr size_t kAssociatedDataSize =
      wal_format::kSegmentHeaderSize + wal_format::kRecordHeaderFieldsSize;

  // A plaintext segment: records may be compressed, never encrypted.
  PayloadCodec() = default;
  // An encrypted segment whose encoded header (kSegmentHeaderSize bytes) is
  // `segment_header` and whose subkey is in `cipher`.
  PayloadCodec(absl::string_view segment_header,
               std::unique_ptr<SegmentCipher> cipher);
  PayloadCodec(const PayloadCodec&) = delete;
  PayloadCodec& operator=(const PayloadCodec&) = delete;

  // The codec for writing a new segment with header `header` (already
  // encoded as `encoded_header`): encrypted under ring->current() when `ring`
  // is not null. Internal if BoringSSL fails.
  static absl::StatusOr<std::unique_ptr<PayloadCodec>> ForNewSegment(
      const wal_format::SegmentHeader& header,
      absl::string_view encoded_header, const KeyRing* ring);

  // Checks the crypto fields of a decoded segment header (segment flags,
  // cipher, key id): FailedPrecondition for a flag or cipher this segwal does
  // not know (a newer writer). `path` is for the message.
  static absl::Status CheckSegmentHeader(const std::string& path,
                                         const wal_format::SegmentHeader& h);

  // The codec for reading an existing segment. An encrypted segment needs its
  // key: FailedPrecondition naming the key id (and `path`) if `ring` is null
  // or does not hold it.
  static absl::StatusOr<std::unique_ptr<PayloadCodec>> ForExistingSegment(
      const std::string& path, const wal_format::SegmentHeader& header,
      absl::string_view encoded_header, const KeyRing* ring);

  bool encrypted() const { return cipher_ != nullptr; }

  // Frames one record into *dst: sets header->flags (kFlagSnappy if
  // `compressed`, kFlagEncrypted if the segment is encrypted) and
  // header->payload_length, and appends header + stored bytes: `body` (the
  // payload, or its Snappy encoding if `compressed`), sealed in place if the
  // segment is encrypted. Internal if sealing fails (nothing is appended).
  // REQUIRES: body does not point into *dst.
  absl::Status AppendRecord(uint32_t seed, bool compressed,
                            absl::string_view body,
                            wal_format::RecordHeader* header,
                            std::string* dst) const;

  // Turns the stored bytes of a record whose frame CRCs matched back into its
  // payload (*out). DataLoss, with a reason but no location (the reader adds
  // file, offset and LSN), if the record's flags do not fit this segment
  // (an unencrypted record in an encrypted segment or the reverse), the tag
  // does not verify, or the Snappy data is corrupt or would decompress to
  // more than max_record_size bytes (checked before allocating).
  absl::Status Decode(const wal_format::RecordHeader& header,
                      absl::string_view stored, uint64_t max_record_size,
                      std::string* out, std::string* scratch) const;

 private:
  // AD = segment header || record header fields.
  void AssociatedData(const wal_format::RecordHeader& header,
                      char out[kAssociatedDataSize]) const;

  std::string segment_header_;  // encrypted segments only
  std::unique_ptr<SegmentCipher> cipher_;
};

}  // namespace segwal

#endif  // SEGWAL_WAL_PAYLOAD_CODEC_H_
