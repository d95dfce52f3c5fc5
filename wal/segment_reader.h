// SegmentReader: reads the records of one segment file (wal/FORMAT.md).
//
// It never trusts a length before the header CRC matched, never reads past
// `limit` (the readable size of the file) and never allocates more than the
// record's bounded length, so a corrupt or hostile file yields a precise error
// (file, offset, reason), never a crash or a huge allocation.
//
// Thread safety: one thread at a time.

#ifndef SEGWAL_WAL_SEGMENT_READER_H_
#define SEGWAL_WAL_SEGMENT_READER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "crypto/key_ring.h"
#include "env/env.h"
#include "wal/format.h"
#include "wal/payload_codec.h"
#include "wal/wal_record.h"

namespace segwal {

// True for errors that come from reading the file (the Env failed), as
// opposed to damage found in its bytes, whatever the status code: an Env may
// report a read error as DataLoss. Recovery must never act on an I/O error as
// if it were damage.
bool IsReadError(const absl::Status& s);

class SegmentReader {
 public:
  // What the scan found at the current position.
  enum class Outcome {
    kRecord,  // a valid record (returned, position advanced)
    kEnd,     // clean end: end of the readable bytes, or zeros to the end
    kFooter,  // a valid footer frame that ends the file (segment is sealed)
    kPadding, // a valid padding frame (position advanced past it; no record)
    kBad,     // damage at the current position (bad_reason() says what)
  };

  // Opens `path` and reads its header. `limit` is how many bytes of the file may
  // be read (the file size, or for the active segment the bytes written so far).
  // DataLoss (bad header), FailedPrecondition (unknown version, segment flags
  // or cipher), NotFound. `ring` (may be null; must outlive the reader) holds
  // the keys of encrypted segments. A missing key does not fail Open (footers
  // are not encrypted): see key_status().
  static absl::StatusOr<std::unique_ptr<SegmentReader>> Open(
      Env* env, const std::string& path, uint64_t limit,
      uint64_t max_record_size, const KeyRing* ring = nullptr);

  const wal_format::SegmentHeader& header() const { return header_; }
  uint32_t seed() const { return seed_; }
  const std::string& path() const { return path_; }
  uint64_t limit() const { return limit_; }
  bool encrypted() const {
    return (header_.flags & wal_format::kSegmentEncrypted) != 0;
  }
  // The segment may hold padding frames (FORMAT.md, "Padding frames").
  bool padded() const {
    return (header_.flags & wal_format::kSegmentPadded) != 0;
  }
  // OK if the records of this segment can be decoded; for an encrypted
  // segment whose key is not available, FailedPrecondition naming the key id.
  // Next() returns that error (as io_status()) at the first record.
  const absl::Status& key_status() const { return key_status_; }

  // Reads the footer of a sealed segment via the trailer in the last bytes.
  // NotFound if there is no trailer (not sealed); DataLoss if the trailer is
  // there but the footer is damaged.
  absl::StatusOr<wal_format::Footer> ReadFooter();

  // Positions the scan at `offset`, where the record with `lsn` is expected.
  void Seek(uint64_t offset, uint64_t lsn);
  uint64_t position() const { return pos_; }
  uint64_t expected_lsn() const { return expected_lsn_; }

  // Reads the frame at the current position. For kRecord fills *record (the
  // payload decoded: decrypted and decompressed, see PayloadCodec) and *header
  // (as stored); for kFooter and kPadding fills *header. `check_lsn`: a record
  // whose LSN is not expected_lsn() is kBad. A padding frame is kBad unless the
  // segment is padded(), it is well formed (wal_format::CheckPaddingFrame)
  // and its LSN is expected_lsn() - 1 (the record before it), whatever
  // check_lsn says; it leaves expected_lsn() as it is.
  Outcome Next(WalRecord* record, wal_format::RecordHeader* header,
               bool check_lsn = true);
  // Why the last Next returned kBad, and errors that are not damage (I/O
  // errors, a missing key), which also yield kBad.
  const std::string& bad_reason() const { return bad_reason_; }
  const absl::Status& io_status() const { return io_status_; }
  // True if the last kBad was a frame whose CRCs matched but whose payload
  // did not decode (AEAD tag mismatch, corrupt Snappy data, flags that do not
  // fit the segment), or a padding frame whose CRCs matched but whose shape
  // is wrong (see Next). A torn write does not produce that: it is
  // corruption.
  bool bad_after_checksums() const { return bad_after_checksums_; }
  // Raw mode, for inspection tools (wal_tool): kRecord hands out the payload as
  // stored, not decoded, so records of an encrypted segment can be listed and
  // their CRCs checked without its key. Decoding is then the caller's job.
  void set_raw(bool raw) { raw_ = raw; }

  // Looks for the first offset > `from` holding a valid frame of this segment
  // (both CRCs match, length in bounds) whose LSN is >= min_lsn. Returns the
  // offset and fills *header, or nullopt.
  std::optional<uint64_t> FindNextValidFrame(uint64_t from, uint64_t min_lsn,
                                             wal_format::RecordHeader* header);

 private:
  SegmentReader(std::string path, std::unique_ptr<RandomAccessFile> f,
                uint64_t limit, uint64_t max_record_size);
  // Returns up to n bytes at offset (fewer only at `limit`); the view stays
  // valid until the next Fetch.
  absl::Status Fetch(uint64_t offset, size_t n, absl::string_view* out);
  bool ZerosToEnd(uint64_t from);
  Outcome Bad(std::string reason);
  // Validates a whole frame at `offset` (header + payload CRCs, bounds).
  bool ValidFrameAt(uint64_t offset, wal_format::RecordHeader* header,
                    absl::string_view* payload);

  std::string path_;
  std::unique_ptr<RandomAccessFile> file_;
  uint64_t limit_;
  uint64_t max_record_size_;
  uint64_t max_frame_payload_;
  wal_format::SegmentHeader header_;
  uint32_t seed_ = 0;
  // Decodes payloads; null (and key_status_ says why) if the key is missing.
  std::unique_ptr<PayloadCodec> codec_;
  absl::Status key_status_;
  std::string decode_scratch_;

  uint64_t pos_ = wal_format::kSegmentHeaderSize;
  uint64_t expected_lsn_ = 0;
  std::string bad_reason_;
  absl::Status io_status_;
  bool bad_after_checksums_ = false;
  bool raw_ = false;

  // Read buffer: bytes [buf_offset_, buf_offset_ + buf_len_) of the file.
  size_t buf_cap_;
  std::unique_ptr<char[]> buf_;
  uint64_t buf_offset_ = 0;
  size_t buf_len_ = 0;
  std::string big_;  // for reads larger than buf_
};

}  // namespace segwal

#endif  // SEGWAL_WAL_SEGMENT_READER_H_
