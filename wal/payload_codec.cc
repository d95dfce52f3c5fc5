#include "wal/payload_codec.h"

#include <cstring>
#include <utility>

#include <snappy.h>

#include "absl/strings/str_cat.h"

namespace segwal {

using wal_format::kFlagEncrypted;
using wal_format::kFlagSnappy;
using wal_format::kSegmentEncrypted;
using wal_format::kSegmentHeaderSize;
using wal_format::RecordHeader;
using wal_format::SegmentHeader;

bool CompressPayload(Compression compression, absl::string_view payload,
                     std::string* out) {
  if (compression != Compression::kSnappy || payload.empty()) return false;
  snappy::Compress(payload.data(), payload.size(), out);
  return out->size() < payload.size();
}

PayloadCodec::PayloadCodec(absl::string_view segment_header,
                           std::unique_ptr<SegmentCipher> cipher)
    : segment_header_(segment_header), cipher_(std::move(cipher)) {}

absl::StatusOr<std::unique_ptr<PayloadCodec>> PayloadCodec::ForNewSegment(
    const SegmentHeader& header, absl::string_view encoded_header,
    const KeyRing* ring) {
  if (ring == nullptr) return std::make_unique<PayloadCodec>();
  auto cipher = SegmentCipher::Create(
      ring->current(), absl::string_view(header.salt, sizeof(header.salt)),
      header.first_lsn);
  if (!cipher.ok()) return cipher.status();
  return std::make_unique<PayloadCodec>(encoded_header, std::move(*cipher));
}

absl::Status PayloadCodec::CheckSegmentHeader(const std::string& path,
                                              const SegmentHeader& h) {
  if ((h.flags & ~wal_format::kKnownSegmentFlags) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " offset 40: unknown segment flags 0x", absl::Hex(h.flags),
        " (written by a newer segwal?)"));
  }
  if ((h.flags & kSegmentEncrypted) != 0) {
    if (h.cipher != SegmentCipher::kAes256Gcm) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " offset 44: unknown cipher ", h.cipher,
          " (this segwal knows 1 = AES-256-GCM)"));
    }
  } else if (h.cipher != 0 || h.key_id != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": segment is not marked encrypted but names cipher ",
                     h.cipher, " and key id ", KeyIdToString(h.key_id)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PayloadCodec>> PayloadCodec::ForExistingSegment(
    const std::string& path, const SegmentHeader& header,
    absl::string_view encoded_header, const KeyRing* ring) {
  absl::Status s = CheckSegmentHeader(path, header);
  if (!s.ok()) return s;
  if ((header.flags & kSegmentEncrypted) == 0) {
    return std::make_unique<PayloadCodec>();
  }
  if (ring == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is encrypted with key id ", KeyIdToString(header.key_id),
        " but no encryption ring was given (SegmentedWalOptions::"
        "encryption_ring must hold that key)"));
  }
  const WalEncryptionKey* key = ring->Find(header.key_id);
  if (key == nullptr) {
    std::string have = KeyIdToString(ring->current().key_id());
    if (ring->has_previous()) {
      absl::StrAppend(&have, ", ", KeyIdToString(ring->previous().key_id()));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is encrypted with key id ", KeyIdToString(header.key_id),
        ", which is not in the encryption ring (it holds ", have, ")"));
  }
  auto cipher = SegmentCipher::Create(
      *key, absl::string_view(header.salt, sizeof(header.salt)),
      header.first_lsn);
  if (!cipher.ok()) return cipher.status();
  return std::make_unique<PayloadCodec>(encoded_header, std::move(*cipher));
}

void PayloadCodec::AssociatedData(const RecordHeader& h,
                                  char out[kAssociatedDataSize]) const {
  memcpy(out, segment_header_.data(), kSegmentHeaderSize);
  wal_format::EncodeRecordHeaderFields(h, out + kSegmentHeaderSize);
}

absl::Status PayloadCodec::AppendRecord(uint32_t seed, bool compressed,
                                        absl::string_view body,
                                        RecordHeader* h,
                                        std::string* dst) const {
  h->flags = compressed ? kFlagSnappy : 0;
  if (cipher_ == nullptr) {
    h->payload_length = static_cast<uint32_t>(body.size());
    wal_format::AppendRecord(seed, *h, body, dst);
    return absl::OkStatus();
  }
  h->flags |= kFlagEncrypted;
  h->payload_length =
      static_cast<uint32_t>(body.size() + SegmentCipher::kTagSize);
  // Sealed straight into the frame: header, then ciphertext || tag.
  char ad[kAssociatedDataSize];
  AssociatedData(*h, ad);
  const size_t start = dst->size();
  dst->append(8, '\0');  // CRCs, filled in by FinishRecordFrame
  dst->append(ad + kSegmentHeaderSize, wal_format::kRecordHeaderFieldsSize);
  absl::Status s = cipher_->Seal(h->lsn, absl::string_view(ad, sizeof(ad)),
                                 body, dst);
  if (!s.ok()) {
    dst->resize(start);
    return s;
  }
  wal_format::FinishRecordFrame(seed, start, dst);
  return absl::OkStatus();
}

absl::Status PayloadCodec::Decode(const RecordHeader& h,
                                  absl::string_view stored,
                                  uint64_t max_record_size, std::string* out,
                                  std::string* scratch) const {
  const bool record_encrypted = (h.flags & kFlagEncrypted) != 0;
  if (record_encrypted != encrypted()) {
    return absl::DataLossError(
        record_encrypted ? "encrypted record in an unencrypted segment"
                         : "unencrypted record in an encrypted segment");
  }
  absl::string_view body = stored;
  if (record_encrypted) {
    char ad[kAssociatedDataSize];
    AssociatedData(h, ad);
    std::string* plain = (h.flags & kFlagSnappy) ? scratch : out;
    if (!cipher_->Open(h.lsn, absl::string_view(ad, sizeof(ad)), stored,
                       plain)) {
      return absl::DataLossError(absl::StrCat(
          "decryption failed (AES-256-GCM tag mismatch under key id ",
          KeyIdToString(cipher_->key_id()),
          "): the record, its header or the segment header was modified"));
    }
    if (!(h.flags & kFlagSnappy)) return absl::OkStatus();
    body = *scratch;
  }
  if (!(h.flags & kFlagSnappy)) {
    out->assign(body.data(), body.size());
    return absl::OkStatus();
  }
  size_t length = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &length)) {
    return absl::DataLossError("corrupt Snappy data (bad length preamble)");
  }
  if (length > max_record_size) {
    return absl::DataLossError(
        absl::StrCat("Snappy data claims ", length,
                     " uncompressed bytes, above max_record_size ",
                     max_record_size));
  }
  out->resize(length);
  if (!snappy::RawUncompress(body.data(), body.size(), out->data())) {
    out->clear();
    return absl::DataLossError("corrupt Snappy data");
  }
  return absl::OkStatus();
}

}  // namespace segwal
