#include "wal/segment_reader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace segwal {

using wal_format::kRecordHeaderSize;
using wal_format::kSegmentHeaderSize;
using wal_format::kTrailerSize;
using wal_format::RecordHeader;

namespace {
constexpr size_t kReadBufferSize = 256 << 10;
constexpr char kReadErrorPayload[] = "segwal.dev/read-error";
}  // namespace

bool IsReadError(const absl::Status& s) {
  return !s.ok() && s.GetPayload(kReadErrorPayload).has_value();
}

SegmentReader::SegmentReader(std::string path,
                             std::unique_ptr<RandomAccessFile> f,
                             uint64_t limit, uint64_t max_record_size)
    : path_(std::move(path)),
      file_(std::move(f)),
      limit_(limit),
      max_record_size_(max_record_size),
      // Room for framing a payload may add later (compression, AEAD tag).
      max_frame_payload_(max_record_size + (max_record_size >> 4) + 1024),
      // Small segments get a small buffer: replay opens every segment.
      buf_cap_(static_cast<size_t>(std::min<uint64_t>(kReadBufferSize, limit))),
      buf_(new char[buf_cap_ == 0 ? 1 : buf_cap_]) {}

absl::StatusOr<std::unique_ptr<SegmentReader>> SegmentReader::Open(
    Env* env, const std::string& path, uint64_t limit,
    uint64_t max_record_size, const KeyRing* ring) {
  auto file = env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  std::unique_ptr<SegmentReader> r(new SegmentReader(
      path, std::move(*file), limit, max_record_size));
  absl::string_view head;
  absl::Status s = r->Fetch(0, kSegmentHeaderSize, &head);
  if (!s.ok()) return s;
  s = wal_format::DecodeSegmentHeader(head, &r->header_);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, " offset 0: ", s.message()));
  }
  s = PayloadCodec::CheckSegmentHeader(path, r->header_);
  if (!s.ok()) return s;
  auto codec = PayloadCodec::ForExistingSegment(path, r->header_, head, ring);
  if (codec.ok()) {
    r->codec_ = std::move(*codec);
  } else {
    r->key_status_ = codec.status();
  }
  r->seed_ = wal_format::SegmentSeed(r->header_);
  r->expected_lsn_ = r->header_.first_lsn;
  return r;
}

absl::Status SegmentReader::Fetch(uint64_t offset, size_t n,
                                  absl::string_view* out) {
  if (offset >= limit_) {
    *out = absl::string_view();
    return absl::OkStatus();
  }
  n = static_cast<size_t>(std::min<uint64_t>(n, limit_ - offset));
  if (offset >= buf_offset_ && offset + n <= buf_offset_ + buf_len_) {
    *out = absl::string_view(buf_.get() + (offset - buf_offset_), n);
    return absl::OkStatus();
  }
  char* dst;
  size_t want;
  if (n <= buf_cap_) {
    dst = buf_.get();
    want = static_cast<size_t>(std::min<uint64_t>(buf_cap_, limit_ - offset));
  } else {
    big_.resize(n);
    dst = big_.data();
    want = n;
  }
  size_t got = 0;
  while (got < want) {
    absl::string_view piece;
    absl::Status s = file_->Read(offset + got, want - got, &piece, dst + got);
    if (!s.ok()) {
      buf_len_ = 0;
      absl::Status e(s.code(), absl::StrCat("reading ", path_, " at offset ",
                                            offset + got, ": ", s.message()));
      e.SetPayload(kReadErrorPayload, absl::Cord("1"));
      return e;
    }
    if (piece.empty()) break;  // file shorter than the limit
    if (piece.data() != dst + got) memmove(dst + got, piece.data(), piece.size());
    got += piece.size();
  }
  if (dst == buf_.get()) {
    buf_offset_ = offset;
    buf_len_ = got;
  }
  *out = absl::string_view(dst, std::min(n, got));
  return absl::OkStatus();
}

void SegmentReader::Seek(uint64_t offset, uint64_t lsn) {
  pos_ = offset;
  expected_lsn_ = lsn;
}

SegmentReader::Outcome SegmentReader::Bad(std::string reason) {
  bad_reason_ = std::move(reason);
  return Outcome::kBad;
}

bool SegmentReader::ZerosToEnd(uint64_t from) {
  for (uint64_t off = from; off < limit_;) {
    absl::string_view chunk;
    absl::Status s = Fetch(off, kReadBufferSize, &chunk);
    if (!s.ok()) {
      io_status_ = s;
      return false;
    }
    if (chunk.empty()) return false;
    for (char c : chunk) {
      if (c != 0) return false;
    }
    off += chunk.size();
  }
  return true;
}

SegmentReader::Outcome SegmentReader::Next(WalRecord* record,
                                           RecordHeader* h, bool check_lsn) {
  io_status_ = absl::OkStatus();
  bad_after_checksums_ = false;
  if (pos_ >= limit_) return Outcome::kEnd;
  absl::string_view head;
  io_status_ = Fetch(pos_, kRecordHeaderSize, &head);
  if (!io_status_.ok()) return Bad(std::string(io_status_.message()));
  uint32_t payload_seed, payload_crc;
  if (head.size() < kRecordHeaderSize) {
    if (ZerosToEnd(pos_)) return Outcome::kEnd;
    return Bad(absl::StrCat("truncated record header (", head.size(), " of ",
                            kRecordHeaderSize, " bytes)"));
  }
  if (!wal_format::DecodeRecordHeader(seed_, head.data(), h, &payload_seed,
                                      &payload_crc)) {
    if (ZerosToEnd(pos_)) return Outcome::kEnd;
    return Bad("record header checksum mismatch");
  }
  if ((h->flags & ~wal_format::kKnownRecordFlags) != 0) {
    return Bad(absl::StrCat("unknown record flags 0x", absl::Hex(h->flags)));
  }
  if (h->payload_length > max_frame_payload_) {
    return Bad(absl::StrCat("record length ", h->payload_length,
                            " exceeds the maximum ", max_frame_payload_));
  }
  const uint64_t end = pos_ + kRecordHeaderSize + h->payload_length;
  if (end > limit_) {
    return Bad(absl::StrCat("truncated record: needs ", h->payload_length,
                            " payload bytes, file has ",
                            limit_ - pos_ - kRecordHeaderSize));
  }
  absl::string_view payload;
  io_status_ = Fetch(pos_ + kRecordHeaderSize, h->payload_length, &payload);
  if (!io_status_.ok()) return Bad(std::string(io_status_.message()));
  if (payload.size() != h->payload_length) {
    return Bad("short read of record payload");
  }
  if (!wal_format::PayloadMatches(payload_seed, payload_crc, payload)) {
    return Bad("record payload checksum mismatch");
  }
  if (h->flags & wal_format::kFlagFooter) {
    if (end != limit_) return Bad("footer does not end the segment");
    return Outcome::kFooter;
  }
  if (h->flags & wal_format::kFlagPadding) {
    // CRCs matched: a wrong shape is no torn write (FORMAT.md).
    if (!padded()) {
      bad_after_checksums_ = true;
      return Bad("padding frame in a segment not marked padded");
    }
    absl::Status shape = wal_format::CheckPaddingFrame(*h, pos_, payload);
    if (!shape.ok()) {
      bad_after_checksums_ = true;
      return Bad(std::string(shape.message()));
    }
    if (h->lsn + 1 != expected_lsn_) {
      return Bad(absl::StrCat("padding frame has LSN ", h->lsn, ", expected ",
                              expected_lsn_ - 1, " (the record before it)"));
    }
    pos_ = end;
    return Outcome::kPadding;
  }
  if (check_lsn && h->lsn != expected_lsn_) {
    return Bad(absl::StrCat("record has LSN ", h->lsn, ", expected ",
                            expected_lsn_));
  }
  // Unchecked (after a resync), an LSN must still be possible here: LSN
  // first + i needs i record frames before it, the bound FindNextValidFrame
  // applies (a valid frame claiming a far LSN made recovery jump LSNs; found
  // by fuzz/open_directory).
  if (!check_lsn && (h->lsn < header_.first_lsn ||
                     h->lsn - header_.first_lsn >
                         (pos_ - kSegmentHeaderSize) / kRecordHeaderSize)) {
    return Bad(absl::StrCat("record has LSN ", h->lsn,
                            ", impossible at this offset"));
  }
  if (raw_) {
    record->payload.assign(payload.data(), payload.size());
  } else if (codec_ == nullptr) {
    io_status_ = key_status_;
    return Bad(std::string(key_status_.message()));
  }
  absl::Status decoded =
      raw_ ? absl::OkStatus()
           : codec_->Decode(*h, payload, max_record_size_, &record->payload,
                            &decode_scratch_);
  if (!decoded.ok()) {
    bad_after_checksums_ = true;
    return Bad(std::string(decoded.message()));
  }
  record->lsn = h->lsn;
  record->record_type = h->record_type;
  record->tenant_id = h->tenant_id;
  record->vshard_id = h->vshard_id;
  record->database_id = h->database_id;
  pos_ = end;
  expected_lsn_ = h->lsn + 1;
  return Outcome::kRecord;
}

absl::StatusOr<wal_format::Footer> SegmentReader::ReadFooter() {
  if (limit_ < kSegmentHeaderSize + wal_format::FooterFrameSize(0)) {
    return absl::NotFoundError(absl::StrCat(path_, ": too short to be sealed"));
  }
  absl::string_view tail;
  absl::Status s = Fetch(limit_ - kTrailerSize, kTrailerSize, &tail);
  if (!s.ok()) {
    io_status_ = s;
    return s;
  }
  wal_format::Trailer t;
  if (tail.size() != kTrailerSize || !wal_format::DecodeTrailer(tail, &t)) {
    return absl::NotFoundError(absl::StrCat(path_, ": no footer trailer"));
  }
  if (t.footer_offset < kSegmentHeaderSize ||
      t.footer_offset + wal_format::FooterFrameSize(t.index_count) != limit_) {
    return absl::DataLossError(absl::StrCat(
        path_, " offset ", limit_ - kTrailerSize,
        ": footer trailer points outside the file (footer offset ",
        t.footer_offset, ")"));
  }
  RecordHeader h;
  absl::string_view payload;
  io_status_ = absl::OkStatus();
  const bool valid = ValidFrameAt(t.footer_offset, &h, &payload);
  if (!io_status_.ok()) return io_status_;
  if (!valid ||
      !(h.flags & wal_format::kFlagFooter)) {
    return absl::DataLossError(absl::StrCat(path_, " offset ", t.footer_offset,
                                            ": footer checksum mismatch"));
  }
  wal_format::Footer f;
  s = wal_format::DecodeFooterPayload(payload, t.footer_offset, &f);
  if (!s.ok()) {
    return absl::DataLossError(
        absl::StrCat(path_, " offset ", t.footer_offset, ": ", s.message()));
  }
  if (f.record_count != 0 &&
      f.last_lsn + 1 != header_.first_lsn + f.record_count) {
    return absl::DataLossError(absl::StrCat(
        path_, " offset ", t.footer_offset, ": footer last LSN ", f.last_lsn,
        " does not match first LSN ", header_.first_lsn, " and count ",
        f.record_count));
  }
  return f;
}

bool SegmentReader::ValidFrameAt(uint64_t offset, RecordHeader* h,
                                 absl::string_view* payload) {
  absl::string_view head;
  absl::Status s = Fetch(offset, kRecordHeaderSize, &head);
  if (!s.ok()) {
    io_status_ = s;
    return false;
  }
  if (head.size() < kRecordHeaderSize) return false;
  uint32_t payload_seed, payload_crc;
  if (!wal_format::DecodeRecordHeader(seed_, head.data(), h, &payload_seed,
                                      &payload_crc)) {
    return false;
  }
  if (h->payload_length > max_frame_payload_ ||
      offset + kRecordHeaderSize + h->payload_length > limit_) {
    return false;
  }
  s = Fetch(offset + kRecordHeaderSize, h->payload_length, payload);
  if (!s.ok()) {
    io_status_ = s;
    return false;
  }
  if (payload->size() != h->payload_length) return false;
  return wal_format::PayloadMatches(payload_seed, payload_crc, *payload);
}

std::optional<uint64_t> SegmentReader::FindNextValidFrame(uint64_t from,
                                                          uint64_t min_lsn,
                                                          RecordHeader* h) {
  // A cheap filter first (plausible LSN fields), then the CRCs.
  for (uint64_t off = from + 1; off + kRecordHeaderSize <= limit_; ++off) {
    absl::string_view head;
    absl::Status s = Fetch(off, kRecordHeaderSize, &head);
    if (!s.ok()) {
      io_status_ = s;
      return std::nullopt;
    }
    if (head.size() < kRecordHeaderSize) return std::nullopt;
    const uint64_t lsn = wal_format::DecodeFixed64(head.data() + 16);
    const uint64_t durable = wal_format::DecodeFixed64(head.data() + 24);
    // Every record takes at least kRecordHeaderSize bytes, so the frame of LSN
    // first + i cannot start before the header plus i record headers. (A bound
    // by offset, not by limit_: a frame accepted here must stay acceptable
    // after the file is cut behind it, or recovery and later reads disagree.
    // Found by fuzz/open_directory.)
    if (off < kSegmentHeaderSize || lsn < min_lsn || lsn < header_.first_lsn ||
        lsn - header_.first_lsn >
            (off - kSegmentHeaderSize) / kRecordHeaderSize ||
        durable > lsn) {
      continue;
    }
    absl::string_view payload;
    if (ValidFrameAt(off, h, &payload)) return off;
    if (!io_status_.ok()) return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace segwal
