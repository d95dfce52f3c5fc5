#include "wal/format.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "crypto/crc32c.h"
#include "util/coding.h"

namespace segwal {
namespace wal_format {

std::string EncodeSegmentHeader(const SegmentHeader& h) {
  std::string out;
  out.reserve(kSegmentHeaderSize);
  out.append(kSegmentMagic, sizeof(kSegmentMagic));
  PutFixed32(&out, h.version);
  PutFixed32(&out, kSegmentHeaderSize);
  PutFixed64(&out, h.first_lsn);
  out.append(h.salt, kSaltSize);
  PutFixed32(&out, h.flags);
  PutFixed32(&out, h.cipher);
  PutFixed64(&out, h.key_id);
  PutFixed32(&out, 0);
  PutFixed32(&out, crc32c::Mask(crc32c::Value(out.data(), out.size())));
  return out;
}

absl::Status DecodeSegmentHeader(absl::string_view in, SegmentHeader* h) {
  if (in.size() < kSegmentHeaderSize) {
    return absl::DataLossError(absl::StrCat("segment header truncated: ",
                                            in.size(), " of ",
                                            kSegmentHeaderSize, " bytes"));
  }
  const char* p = in.data();
  if (memcmp(p, kSegmentMagic, sizeof(kSegmentMagic)) != 0) {
    return absl::DataLossError("bad segment magic (not a segwal segment)");
  }
  const uint32_t stored = crc32c::Unmask(DecodeFixed32(p + 60));
  if (stored != crc32c::Value(p, 60)) {
    return absl::DataLossError("segment header checksum mismatch");
  }
  h->version = DecodeFixed32(p + 8);
  if (h->version != kFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("unsupported segment format version ", h->version,
                     " (this segwal reads version ", kFormatVersion, ")"));
  }
  if (DecodeFixed32(p + 12) != kSegmentHeaderSize) {
    return absl::DataLossError("segment header size field is not 64");
  }
  h->first_lsn = DecodeFixed64(p + 16);
  memcpy(h->salt, p + 24, kSaltSize);
  h->flags = DecodeFixed32(p + 40);
  h->cipher = DecodeFixed32(p + 44);
  h->key_id = DecodeFixed64(p + 48);
  return absl::OkStatus();
}

uint32_t SegmentSeed(const SegmentHeader& h) {
  std::string buf(h.salt, kSaltSize);
  PutFixed64(&buf, h.first_lsn);
  return crc32c::Value(buf.data(), buf.size());
}

void EncodeRecordHeaderFields(const RecordHeader& h,
                              char out[kRecordHeaderFieldsSize]) {
  EncodeFixed32(out, h.payload_length);
  EncodeFixed16(out + 4, h.flags);
  EncodeFixed16(out + 6, 0);
  EncodeFixed64(out + 8, h.lsn);
  EncodeFixed64(out + 16, h.durable_lsn);
  EncodeFixed64(out + 24, h.tenant_id);
  EncodeFixed64(out + 32, h.database_id);
  EncodeFixed32(out + 40, h.record_type);
  EncodeFixed32(out + 44, h.vshard_id);
}

void AppendRecord(uint32_t seed, const RecordHeader& h,
                  absl::string_view payload, std::string* dst) {
  const size_t start = dst->size();
  char fields[kRecordHeaderFieldsSize];
  EncodeRecordHeaderFields(h, fields);
  dst->append(8, '\0');  // the two CRCs, filled in below
  dst->append(fields, kRecordHeaderFieldsSize);
  dst->append(payload.data(), payload.size());
  FinishRecordFrame(seed, start, dst);
}

void FinishRecordFrame(uint32_t seed, size_t start, std::string* dst) {
  const char* frame = dst->data() + start;
  const uint32_t header_crc =
      crc32c::Extend(seed, frame + 8, kRecordHeaderSize - 8);
  const uint32_t payload_crc =
      crc32c::Extend(header_crc, frame + kRecordHeaderSize,
                     dst->size() - start - kRecordHeaderSize);
  EncodeFixed32(dst->data() + start, crc32c::Mask(header_crc));
  EncodeFixed32(dst->data() + start + 4, crc32c::Mask(payload_crc));
}

bool DecodeRecordHeader(uint32_t seed, const char* p, RecordHeader* h,
                        uint32_t* payload_seed, uint32_t* payload_crc) {
  const uint32_t header_crc = crc32c::Extend(seed, p + 8, kRecordHeaderSize - 8);
  if (crc32c::Unmask(DecodeFixed32(p)) != header_crc) return false;
  h->payload_length = DecodeFixed32(p + 8);
  h->flags = DecodeFixed16(p + 12);
  h->lsn = DecodeFixed64(p + 16);
  h->durable_lsn = DecodeFixed64(p + 24);
  h->tenant_id = DecodeFixed64(p + 32);
  h->database_id = DecodeFixed64(p + 40);
  h->record_type = DecodeFixed32(p + 48);
  h->vshard_id = DecodeFixed32(p + 52);
  *payload_seed = header_crc;
  *payload_crc = crc32c::Unmask(DecodeFixed32(p + 4));
  return true;
}

bool PayloadMatches(uint32_t payload_seed, uint32_t payload_crc,
                    absl::string_view payload) {
  return crc32c::Extend(payload_seed, payload.data(), payload.size()) ==
         payload_crc;
}

uint64_t PaddingFrameSize(uint64_t offset) {
  const uint64_t min_end = offset + kRecordHeaderSize;
  return (min_end + kPaddingBlockSize - 1) / kPaddingBlockSize *
             kPaddingBlockSize -
         offset;
}

void AppendPaddingFrame(uint32_t seed, uint64_t offset, uint64_t lsn,
                        uint64_t durable_lsn, std::string* dst) {
  RecordHeader h;
  h.payload_length =
      static_cast<uint32_t>(PaddingFrameSize(offset) - kRecordHeaderSize);
  h.flags = kFlagPadding;
  h.lsn = lsn;
  h.durable_lsn = durable_lsn;
  const size_t start = dst->size();
  char fields[kRecordHeaderFieldsSize];
  EncodeRecordHeaderFields(h, fields);
  dst->append(8, '\0');
  dst->append(fields, kRecordHeaderFieldsSize);
  dst->append(h.payload_length, '\0');
  FinishRecordFrame(seed, start, dst);
}

absl::Status CheckPaddingFrame(const RecordHeader& h, uint64_t offset,
                               absl::string_view payload) {
  if (h.flags != kFlagPadding) {
    return absl::DataLossError(absl::StrCat(
        "padding frame with other record flags (0x", absl::Hex(h.flags), ")"));
  }
  const uint64_t size = kRecordHeaderSize + uint64_t{h.payload_length};
  if (size != PaddingFrameSize(offset)) {
    return absl::DataLossError(absl::StrCat(
        "padding frame of ", size, " bytes ends at offset ", offset + size,
        ", not at the block boundary ", offset + PaddingFrameSize(offset)));
  }
  for (const char c : payload) {
    if (c != 0) return absl::DataLossError("padding frame payload is not zeros");
  }
  return absl::OkStatus();
}

uint64_t FooterFrameSize(size_t index_entries) {
  return kRecordHeaderSize + index_entries * kIndexEntrySize + kTrailerSize;
}

void AppendFooter(uint32_t seed, uint64_t durable_lsn, const Footer& f,
                  std::string* dst) {
  std::string payload;
  payload.reserve(f.index.size() * kIndexEntrySize + kTrailerSize);
  for (const IndexEntry& e : f.index) {
    PutFixed64(&payload, e.lsn);
    PutFixed64(&payload, e.offset);
  }
  PutFixed64(&payload, f.footer_offset);
  PutFixed64(&payload, f.last_lsn);
  PutFixed64(&payload, f.record_count);
  PutFixed32(&payload, static_cast<uint32_t>(f.index.size()));
  PutFixed32(&payload, kTrailerMagic);
  RecordHeader h;
  h.payload_length = static_cast<uint32_t>(payload.size());
  h.flags = kFlagFooter;
  h.lsn = f.last_lsn;
  h.durable_lsn = durable_lsn;
  AppendRecord(seed, h, payload, dst);
}

bool DecodeTrailer(absl::string_view in, Trailer* t) {
  if (in.size() < kTrailerSize) return false;
  const char* p = in.data() + in.size() - kTrailerSize;
  if (DecodeFixed32(p + 28) != kTrailerMagic) return false;
  t->footer_offset = DecodeFixed64(p);
  t->last_lsn = DecodeFixed64(p + 8);
  t->record_count = DecodeFixed64(p + 16);
  t->index_count = DecodeFixed32(p + 24);
  return true;
}

absl::Status DecodeFooterPayload(absl::string_view payload,
                                 uint64_t footer_offset, Footer* f) {
  Trailer t;
  if (!DecodeTrailer(payload, &t)) {
    return absl::DataLossError("footer trailer magic mismatch");
  }
  if (payload.size() !=
      uint64_t{t.index_count} * kIndexEntrySize + kTrailerSize) {
    return absl::DataLossError("footer index size does not match its count");
  }
  if (t.footer_offset != footer_offset) {
    return absl::DataLossError(absl::StrCat(
        "footer claims offset ", t.footer_offset, " but sits at ", footer_offset));
  }
  f->footer_offset = t.footer_offset;
  f->last_lsn = t.last_lsn;
  f->record_count = t.record_count;
  f->index.clear();
  f->index.reserve(t.index_count);
  const char* p = payload.data();
  for (uint32_t i = 0; i < t.index_count; ++i, p += kIndexEntrySize) {
    f->index.push_back({DecodeFixed64(p), DecodeFixed64(p + 8)});
    if (f->index.back().offset < kSegmentHeaderSize ||
        f->index.back().offset >= footer_offset ||
        (i > 0 && f->index[i - 1].lsn >= f->index[i].lsn)) {
      return absl::DataLossError(
          absl::StrCat("footer index entry ", i, " is out of order or range"));
    }
  }
  return absl::OkStatus();
}

std::string SegmentFileName(uint64_t first_lsn) {
  return absl::StrFormat("%020u.wal", first_lsn);
}

namespace {

// Parses exactly 20 decimal digits without overflow.
bool ParseDigits20(absl::string_view digits, uint64_t* out) {
  if (digits.size() != 20) return false;
  uint64_t v = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

}  // namespace

bool ParseSegmentFileName(absl::string_view name, uint64_t* first_lsn) {
  if (name.size() != 24 || name.substr(20) != ".wal") return false;
  return ParseDigits20(name.substr(0, 20), first_lsn);
}

std::string SpareFileName(uint64_t id) {
  return absl::StrFormat("spare-%020u.tmp", id);
}

bool ParseSpareFileName(absl::string_view name, uint64_t* id) {
  if (name.size() != 30 || name.substr(0, 6) != "spare-" ||
      name.substr(26) != ".tmp") {
    return false;
  }
  return ParseDigits20(name.substr(6, 20), id);
}

}  // namespace wal_format
}  // namespace segwal
