#include "fuzz/fuzz_targets.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "crypto/crc32c.h"
#include "env/mem_env.h"
#include "wal/format.h"
#include "wal/segment_reader.h"
#include "wal/segmented_wal.h"
#include "wal/wal_inspector.h"

namespace segwal {
namespace fuzz {
namespace {

using wal_format::kRecordHeaderSize;
using wal_format::kSegmentHeaderSize;

// Bounds what a fuzzed length can make the reader allocate.
constexpr uint64_t kMaxRecordSize = 1 << 16;

void Put32At(std::string* s, size_t at, uint32_t v) { memcpy(&(*s)[at], &v, 4); }

std::string DescribeStatus(const absl::Status& s) { return s.ToString(); }

// Codes a reader or Open may return for bad input (never, say, OK with garbage,
// or Unknown).
bool IsDamageCode(const absl::Status& s) {
  return absl::IsDataLoss(s) || absl::IsFailedPrecondition(s) ||
         absl::IsInternal(s) || absl::IsNotFound(s) || absl::IsOutOfRange(s) ||
         absl::IsInvalidArgument(s);
}

std::map<std::string, std::string> Snapshot(Env* env, const std::string& dir) {
  std::map<std::string, std::string> out;
  auto names = env->GetChildren(dir);
  if (!names.ok()) return out;
  for (const std::string& n : *names) {
    const std::string path = dir + "/" + n;
    auto size = env->GetFileSize(path);
    auto f = env->NewRandomAccessFile(path);
    if (!size.ok() || !f.ok()) {
      out[n] = "<dir or unreadable>";
      continue;
    }
    std::string buf(*size, '\0');
    absl::string_view got;
    if ((*f)->Read(0, *size, &got, buf.data()).ok()) out[n] = std::string(got);
  }
  return out;
}

void WriteFile(Env* env, const std::string& path, const std::string& bytes) {
  auto f = env->NewWritableFile(path);
  FUZZ_CHECK(f.ok(), f.status().ToString());
  FUZZ_CHECK((*f)->Append(bytes).ok(), "MemEnv append");
  FUZZ_CHECK((*f)->Close().ok(), "MemEnv close");
}

// Writes the segment files of an OpenDirectoryTarget input into dir.
void WriteDirectoryInput(Env* env, const std::string& dir, const uint8_t* data,
                         size_t size) {
  const uint8_t options = data[0];
  FUZZ_CHECK(env->CreateDirIfMissing(dir).ok(), "mkdir");
  size_t pos = 1;
  for (int i = 0; i < 8 && pos + 2 <= size; ++i) {
    uint16_t n;
    memcpy(&n, data + pos, 2);
    pos += 2;
    n = static_cast<uint16_t>(std::min<size_t>(n, size - pos));
    std::string file(reinterpret_cast<const char*>(data + pos), n);
    pos += n;
    if (options & 4) FixChecksums(&file, true, true);
    uint64_t lsn = static_cast<uint64_t>(i) * 1000 + 1;
    if (file.size() >= 24) lsn = wal_format::DecodeFixed64(file.data() + 16);
    WriteFile(env, dir + "/" + wal_format::SegmentFileName(lsn), file);
  }
}

// The options an OpenDirectoryTarget input's options byte asks for.
SegmentedWalOptions DirectoryOptions(Env* env, const std::string& dir,
                                     uint8_t options, RecoveryMode mode) {
  SegmentedWalOptions o;
  o.wal_dir = dir;
  o.env = env;
  o.recovery_mode = mode;
  o.segment_target_size = 2048;
  o.write_buffer_size = 512;
  o.background_preallocation = false;  // no thread per input
  o.background_sealing = false;
  o.max_record_size = kMaxRecordSize;
  if (options & 8) o.encryption_ring = FuzzKeyRing();
  if (options & 16) o.compression = Compression::kSnappy;
  if (options & 32) o.use_direct_io = true;
  return o;
}

}  // namespace

KeyRing FuzzKeyRing() {
  static const char kKey[] = "segwal fuzz key, not a secret!!!";
  static_assert(sizeof(kKey) == WalEncryptionKey::kKeySize + 1);
  return KeyRing(*WalEncryptionKey::FromBytes(
      absl::string_view(kKey, WalEncryptionKey::kKeySize)));
}

void FixChecksums(std::string* file, bool header, bool frames) {
  if (file->size() < kSegmentHeaderSize) return;
  if (header) {
    Put32At(file, 60, crc32c::Mask(crc32c::Value(file->data(), 60)));
  }
  if (!frames) return;
  wal_format::SegmentHeader h;
  if (!wal_format::DecodeSegmentHeader(*file, &h).ok()) return;
  const uint32_t seed = wal_format::SegmentSeed(h);
  size_t pos = kSegmentHeaderSize;
  while (pos + kRecordHeaderSize <= file->size()) {
    const uint32_t len = wal_format::DecodeFixed32(file->data() + pos + 8);
    if (len > file->size() - pos - kRecordHeaderSize) break;
    const uint32_t hcrc = crc32c::Extend(seed, file->data() + pos + 8,
                                         kRecordHeaderSize - 8);
    const uint32_t pcrc =
        crc32c::Extend(hcrc, file->data() + pos + kRecordHeaderSize, len);
    Put32At(file, pos, crc32c::Mask(hcrc));
    Put32At(file, pos + 4, crc32c::Mask(pcrc));
    pos += kRecordHeaderSize + len;
  }
}

std::string EncodeDirectoryInput(uint8_t options,
                                 const std::vector<std::string>& files) {
  std::string out(1, static_cast<char>(options));
  for (const std::string& f : files) {
    const uint16_t n = static_cast<uint16_t>(std::min<size_t>(f.size(), 0xffff));
    out.append(reinterpret_cast<const char*>(&n), 2);
    out.append(f.data(), n);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Options byte: kFixHeaderCrc, kFixFrameCrcs, kUseKeyRing, kRawRecords.
int SegmentReaderTarget(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t options = data[0];
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  FixChecksums(&file, options & kFixHeaderCrc, options & kFixFrameCrcs);
  std::unique_ptr<Env> env = NewMemEnv();
  FUZZ_CHECK(env->CreateDirIfMissing("/w").ok(), "mkdir");
  const std::string path = "/w/00000000000000000001.wal";
  WriteFile(env.get(), path, file);
  const KeyRing ring = FuzzKeyRing();
  auto reader = SegmentReader::Open(env.get(), path, file.size(), kMaxRecordSize,
                                    (options & kUseKeyRing) ? &ring : nullptr);
  if (!reader.ok()) {
    FUZZ_CHECK(IsDamageCode(reader.status()), DescribeStatus(reader.status()));
    return 0;
  }
  SegmentReader* r = reader->get();
  r->set_raw(options & kRawRecords);
  FUZZ_CHECK(r->limit() == file.size(), "limit");

  auto footer = r->ReadFooter();
  if (footer.ok()) {
    FUZZ_CHECK(footer->footer_offset >= kSegmentHeaderSize &&
                   footer->footer_offset < file.size(),
               absl::StrCat("footer offset ", footer->footer_offset));
    for (size_t i = 0; i < footer->index.size(); ++i) {
      FUZZ_CHECK(footer->index[i].offset < footer->footer_offset, "index offset");
      FUZZ_CHECK(i == 0 || footer->index[i - 1].lsn < footer->index[i].lsn,
                 "index order");
    }
  } else {
    FUZZ_CHECK(IsDamageCode(footer.status()), DescribeStatus(footer.status()));
  }

  // Scan from the header, as recovery does.
  const uint64_t first = r->header().first_lsn;
  r->Seek(kSegmentHeaderSize, first);
  WalRecord rec;
  wal_format::RecordHeader h;
  uint64_t expected = first;
  uint64_t last_pos = r->position();
  SegmentReader::Outcome o = SegmentReader::Outcome::kEnd;
  for (int i = 0; i < 100000; ++i) {
    o = r->Next(&rec, &h);
    if (o == SegmentReader::Outcome::kPadding) {
      // Skipped, ending on a block boundary, consuming no LSN.
      FUZZ_CHECK(r->padded() && r->position() > last_pos &&
                     r->position() <= file.size() &&
                     r->position() % wal_format::kPaddingBlockSize == 0 &&
                     h.lsn + 1 == expected && r->expected_lsn() == expected,
                 absl::StrCat("padding frame at ", last_pos, " to ",
                              r->position()));
      last_pos = r->position();
      continue;
    }
    if (o != SegmentReader::Outcome::kRecord) break;
    FUZZ_CHECK(rec.lsn == expected,
               absl::StrCat("LSN ", rec.lsn, " where ", expected, " expected"));
    FUZZ_CHECK(r->position() > last_pos && r->position() <= file.size(),
               absl::StrCat("position ", r->position(), " after ", last_pos));
    FUZZ_CHECK(rec.payload.size() <= kMaxRecordSize + 4096, "payload size");
    last_pos = r->position();
    ++expected;
  }
  if (o == SegmentReader::Outcome::kBad) {
    FUZZ_CHECK(!r->bad_reason().empty() || !r->io_status().ok(),
               "kBad without a reason");
  }
  // Resynchronisation, as kSkipAnyCorruptedRecords and the torn-tail proof do.
  uint64_t from = kSegmentHeaderSize - 1;
  for (int i = 0; i < 64; ++i) {
    auto off = r->FindNextValidFrame(from, 0, &h);
    if (!off) break;
    FUZZ_CHECK(*off > from && *off + kRecordHeaderSize <= file.size(),
               absl::StrCat("frame at ", *off, " after ", from));
    from = *off;
  }
  // Seeks through the footer index, as ReplayFrom does.
  if (footer.ok()) {
    for (const wal_format::IndexEntry& e : footer->index) {
      r->Seek(e.offset, e.lsn);
      if (r->Next(&rec, &h) == SegmentReader::Outcome::kRecord) {
        FUZZ_CHECK(rec.lsn == e.lsn, "index entry points at another LSN");
      }
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Options byte: bit 0 makes the trailer magic valid, bit 1 makes the index
// count match the payload size (so decoding gets past the first checks).
int FooterDecoderTarget(const uint8_t* data, size_t size) {
  if (size < 9) return 0;
  const uint8_t options = data[0];
  uint64_t footer_offset;
  memcpy(&footer_offset, data + 1, 8);
  std::string payload(reinterpret_cast<const char*>(data + 9), size - 9);
  if (payload.size() >= wal_format::kTrailerSize) {
    const size_t t = payload.size() - wal_format::kTrailerSize;
    if (options & 1) Put32At(&payload, t + 28, wal_format::kTrailerMagic);
    if (options & 2) {
      Put32At(&payload, t + 24,
              static_cast<uint32_t>(t / wal_format::kIndexEntrySize));
    }
    if (options & 4) {  // the offset the trailer claims
      memcpy(&footer_offset, payload.data() + t, 8);
    }
  }
  wal_format::Trailer trailer;
  const bool has_trailer = wal_format::DecodeTrailer(payload, &trailer);
  wal_format::Footer f;
  absl::Status s = wal_format::DecodeFooterPayload(payload, footer_offset, &f);
  if (!s.ok()) {
    FUZZ_CHECK(absl::IsDataLoss(s), DescribeStatus(s));
    return 0;
  }
  FUZZ_CHECK(has_trailer, "decoded without a trailer");
  FUZZ_CHECK(f.index.size() == trailer.index_count, "index count");
  FUZZ_CHECK(f.footer_offset == footer_offset, "footer offset");
  for (size_t i = 0; i < f.index.size(); ++i) {
    FUZZ_CHECK(f.index[i].offset >= kSegmentHeaderSize &&
                   f.index[i].offset < footer_offset,
               "index offset out of range");
    FUZZ_CHECK(i == 0 || f.index[i - 1].lsn < f.index[i].lsn, "index order");
  }
  // What decodes re-encodes to the same bytes, and its frame validates.
  const uint32_t seed = 0x5eed;
  std::string frame;
  wal_format::AppendFooter(seed, /*durable_lsn=*/7, f, &frame);
  FUZZ_CHECK(frame.size() == wal_format::FooterFrameSize(f.index.size()),
             "FooterFrameSize");
  FUZZ_CHECK(frame.substr(kRecordHeaderSize) == payload,
             "footer does not re-encode to the same bytes");
  wal_format::RecordHeader h;
  uint32_t payload_seed, payload_crc;
  FUZZ_CHECK(wal_format::DecodeRecordHeader(seed, frame.data(), &h,
                                            &payload_seed, &payload_crc),
             "footer frame header CRC");
  FUZZ_CHECK(wal_format::PayloadMatches(payload_seed, payload_crc,
                                        absl::string_view(frame).substr(
                                            kRecordHeaderSize)),
             "footer frame payload CRC");
  FUZZ_CHECK((h.flags & wal_format::kFlagFooter) && h.lsn == f.last_lsn &&
                 h.payload_length == payload.size(),
             "footer frame fields");
  return 0;
}

// ---------------------------------------------------------------------------
// Options byte: bits 0-1 recovery mode, bit 2 fix checksums in every file,
// bit 3 supply FuzzKeyRing(), bit 4 snappy for what is appended after Open,
// bit 5 use_direct_io (padding frames; MemEnv ignores O_DIRECT itself).
// File names come from each file's header (first LSN at offset 16) when it has
// one, so files keep naming themselves consistently under mutation.
int OpenDirectoryTarget(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t options = data[0];
  static constexpr RecoveryMode kModes[] = {
      RecoveryMode::kTolerateCorruptedTail, RecoveryMode::kAbsoluteConsistency,
      RecoveryMode::kPointInTimeRecovery,
      RecoveryMode::kSkipAnyCorruptedRecords};
  const RecoveryMode mode = kModes[options & 3];
  // SEGWAL_FUZZ_SKIP_MODE=0 leaves kSkipAnyCorruptedRecords out, to hunt in
  // the other modes alone (a debugging aid; CI fuzzes every mode).
  static const bool skip_mode_off = [] {
    const char* v = getenv("SEGWAL_FUZZ_SKIP_MODE");
    return v != nullptr && v[0] == '0';
  }();
  if (skip_mode_off && mode == RecoveryMode::kSkipAnyCorruptedRecords) {
    return 0;
  }
  std::unique_ptr<Env> env = NewMemEnv();
  const std::string dir = "/w";
  WriteDirectoryInput(env.get(), dir, data, size);
  SegmentedWalOptions o = DirectoryOptions(env.get(), dir, options, mode);

  const auto before = Snapshot(env.get(), dir);
  auto wal = SegmentedWal::Open(o);
  if (!wal.ok()) {
    FUZZ_CHECK(IsDamageCode(wal.status()), DescribeStatus(wal.status()));
    // "A mode that fails changes nothing on disk" (FORMAT.md). The LOCK file
    // is the one thing Open may leave.
    auto after = Snapshot(env.get(), dir);
    after.erase("LOCK");
    auto expect = before;
    expect.erase("LOCK");
    FUZZ_CHECK(after == expect,
               absl::StrCat("failed Open (", wal.status().ToString(),
                            ") changed the directory"));
    return 0;
  }
  SegmentedWal* w = wal->get();
  const bool skipping = mode == RecoveryMode::kSkipAnyCorruptedRecords;
  auto replay = w->Replay();
  std::vector<WalRecord> got;
  if (replay.ok()) {
    got = std::move(*replay);
    for (size_t i = 0; i < got.size(); ++i) {
      FUZZ_CHECK(got[i].lsn < w->next_lsn(),
                 absl::StrCat("LSN ", got[i].lsn, " >= next LSN ", w->next_lsn()));
      if (i > 0) {
        FUZZ_CHECK(skipping ? got[i].lsn > got[i - 1].lsn
                            : got[i].lsn == got[i - 1].lsn + 1,
                   absl::StrCat("LSN ", got[i].lsn, " after ", got[i - 1].lsn));
      }
    }
    // Readers and recovery agree on what the log holds.
    FUZZ_CHECK(got.size() == w->recovery_report().records_recovered,
               absl::StrCat("Replay returned ", got.size(),
                            " records, recovery kept ",
                            w->recovery_report().records_recovered));
    if (!got.empty() && !skipping) {
      FUZZ_CHECK(got.back().lsn + 1 == w->next_lsn(),
                 absl::StrCat("log ends at ", got.back().lsn, ", next LSN ",
                              w->next_lsn()));
    }
    // An iterator from the first record agrees with Replay.
    if (!got.empty()) {
      auto it = w->NewIterator(got.front().lsn);
      FUZZ_CHECK(it.ok(), it.status().ToString());
      size_t i = 0;
      for (; (*it)->Valid(); (*it)->Next(), ++i) {
        FUZZ_CHECK(i < got.size() && (*it)->record() == got[i],
                   absl::StrCat("iterator differs from Replay at ", i));
      }
      FUZZ_CHECK((*it)->status().ok() && i == got.size(),
                 "iterator ended early");
    }
  } else {
    FUZZ_CHECK(IsDamageCode(replay.status()), DescribeStatus(replay.status()));
  }

  // A record appended and synced now survives a reopen in the same mode.
  auto lsn = w->Append(7, 8, 9, 10, "after recovery");
  if (!lsn.ok()) return 0;  // read-only (a write failed) or poisoned
  FUZZ_CHECK(*lsn + 1 == w->next_lsn(), "next LSN after Append");
  if (!w->Sync().ok()) return 0;
  wal->reset();
  auto again = SegmentedWal::Open(o);
  FUZZ_CHECK(again.ok(), absl::StrCat("reopen after a synced append failed: ",
                                      again.status().ToString()));
  auto tail = (*again)->ReplayFrom(*lsn);
  if (!tail.ok() && skipping) return 0;
  FUZZ_CHECK(tail.ok(), tail.status().ToString());
  FUZZ_CHECK(!tail->empty() && tail->front().lsn == *lsn &&
                 tail->front().payload == "after recovery",
             absl::StrCat("the record synced at LSN ", *lsn, " is gone"));
  return 0;
}

// ---------------------------------------------------------------------------
// Options byte: its low 3 bits pick the key file's permission bits (private
// or group/other-accessible). The key file parser must accept exactly the
// private 32-byte files, and agree with FromBytes.
int KeyFileTarget(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static constexpr mode_t kModes[] = {0600, 0400, 0640, 0604,
                                      0644, 0660, 0700, 0666};
  const mode_t mode = kModes[data[0] & 7];
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  auto from_bytes = WalEncryptionKey::FromBytes(bytes);
  FUZZ_CHECK(from_bytes.ok() == (bytes.size() == WalEncryptionKey::kKeySize),
             from_bytes.status().ToString());
  if (!from_bytes.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(from_bytes.status()),
               from_bytes.status().ToString());
  } else {
    FUZZ_CHECK(from_bytes->bytes() == bytes, "key bytes");
    FUZZ_CHECK(WalEncryptionKey::FromBytes(bytes)->key_id() ==
                   from_bytes->key_id(),
               "key id is not stable");
  }

  static const std::string path = [] {
    const char* tmp = getenv("TEST_TMPDIR");
    return absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/segwal_fuzz_key_",
                        getpid());
  }();
  unlink(path.c_str());
  FILE* f = fopen(path.c_str(), "wb");
  FUZZ_CHECK(f != nullptr, "create key file");
  FUZZ_CHECK(fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size(), "write");
  fclose(f);
  FUZZ_CHECK(chmod(path.c_str(), mode) == 0, "chmod");
  auto from_file = WalEncryptionKey::FromFile(path);
  unlink(path.c_str());
  const bool private_file = (mode & 077) == 0;
  if (from_file.ok()) {
    FUZZ_CHECK(private_file, "accepted a group/other-accessible key file");
    FUZZ_CHECK(from_bytes.ok() && from_file->key_id() == from_bytes->key_id(),
               "file and bytes give different keys");
  } else {
    FUZZ_CHECK(!private_file || !from_bytes.ok(),
               absl::StrCat("refused a private 32-byte key file: ",
                            from_file.status().ToString()));
  }
  return 0;
}


// ---------------------------------------------------------------------------
// The differential check of recovery's rule (wal/recovery_scan.h): the
// inspector's first problem and Open's verdict in each mode agree.

namespace {

// The first damage one side found.
struct Verdict {
  enum Kind {
    kClean,
    kTornTail,
    kCorruption,
    // Damage outside the records (segment header, name, chain, footer read
    // ahead): both sides must see *something*; where and what is theirs.
    kOther,
  };
  Kind kind = kClean;
  std::string file;
  uint64_t offset = 0;

  std::string ToString() const {
    static const char* const kNames[] = {"clean", "torn tail", "corruption",
                                         "other damage"};
    if (kind == kClean) return kNames[kind];
    return absl::StrCat(kNames[kind], " at ", file, " offset ", offset);
  }
};

// A verdict on the records of a segment: a kind at an offset past the
// header. Header-level findings are kOther on both sides.
Verdict RecordVerdict(Verdict::Kind kind, std::string file, uint64_t offset) {
  Verdict v;
  v.kind = offset < kSegmentHeaderSize ? Verdict::kOther : kind;
  v.file = std::move(file);
  v.offset = offset;
  return v;
}

// Parses "<kind> at <file> offset <n> (LSN ...": Open's DataLoss for damage
// it will not repair (wal/recovery.cc, Recover). nullopt for other errors.
std::optional<Verdict> ParseOpenError(absl::string_view msg) {
  Verdict::Kind kind;
  if (absl::ConsumePrefix(&msg, "torn tail at ")) {
    kind = Verdict::kTornTail;
  } else if (absl::ConsumePrefix(&msg, "corruption at ")) {
    kind = Verdict::kCorruption;
  } else {
    return std::nullopt;
  }
  const size_t at = msg.find(" offset ");
  if (at == absl::string_view::npos) return std::nullopt;
  const std::string file(msg.substr(0, at));
  msg.remove_prefix(at + 8);
  uint64_t offset = 0;
  size_t digits = 0;
  while (digits < msg.size() && msg[digits] >= '0' && msg[digits] <= '9') {
    offset = offset * 10 + static_cast<uint64_t>(msg[digits] - '0');
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  return RecordVerdict(kind, file, offset);
}

// Open's verdict from what it reported (its first damage drop).
Verdict OpenVerdict(const RecoveryReport& report) {
  for (const RecoveryDrop& d : report.drops) {
    const absl::string_view r = d.reason;
    if (absl::StartsWith(r, "zero fill")) continue;  // a clean end
    if (absl::StartsWith(r, "torn tail: ")) {
      return RecordVerdict(Verdict::kTornTail, d.file, d.offset);
    }
    if (absl::StartsWith(r, "corruption: ") ||
        absl::StartsWith(r, "skipped damaged bytes") ||
        absl::StartsWith(r, "skipped corruption: ")) {
      return RecordVerdict(Verdict::kCorruption, d.file, d.offset);
    }
    if (absl::StartsWith(r, "skipped torn tail: ")) {
      return RecordVerdict(Verdict::kTornTail, d.file, d.offset);
    }
    Verdict v;  // torn creation, quarantined segments
    v.kind = Verdict::kOther;
    v.file = d.file;
    v.offset = d.offset;
    return v;
  }
  return Verdict();
}

Verdict InspectorVerdict(const WalProblem& p) {
  switch (p.kind) {
    case WalProblem::Kind::kTornTail:
      return RecordVerdict(Verdict::kTornTail, p.file, p.offset);
    case WalProblem::Kind::kCorruption:
      return RecordVerdict(Verdict::kCorruption, p.file, p.offset);
    default: {
      Verdict v;
      v.kind = Verdict::kOther;
      v.file = p.file;
      v.offset = p.offset;
      return v;
    }
  }
}

bool Agree(const Verdict& a, const Verdict& b) {
  if (a.kind == Verdict::kOther || b.kind == Verdict::kOther) {
    return (a.kind == Verdict::kClean) == (b.kind == Verdict::kClean);
  }
  if (a.kind != b.kind) return false;
  return a.kind == Verdict::kClean || (a.file == b.file && a.offset == b.offset);
}

}  // namespace

int RecoveryVerdictTarget(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t options = data[0];
  const std::string dir = "/w";

  std::unique_ptr<Env> pristine = NewMemEnv();
  WriteDirectoryInput(pristine.get(), dir, data, size);
  InspectOptions io;
  io.env = pristine.get();
  io.max_record_size = kMaxRecordSize;
  std::vector<WalEncryptionKey> keys;
  if (options & 8) keys.push_back(FuzzKeyRing().current());
  io.keys = &keys;
  auto inspection = InspectWal(dir, io);
  if (!inspection.ok()) return 0;  // no segment file: nothing to compare
  const WalInspection& in = *inspection;
  const Verdict inspected = in.problems.empty()
                                ? Verdict()
                                : InspectorVerdict(in.problems.front());
  // kTolerateCorruptedTail reads only the footers of the segments before the
  // last: compare there only when the inspector found nothing before it.
  bool only_in_last = true;
  for (const WalProblem& p : in.problems) {
    if (p.file != in.segments.back().path) only_in_last = false;
  }

  static constexpr RecoveryMode kModes[] = {
      RecoveryMode::kTolerateCorruptedTail, RecoveryMode::kAbsoluteConsistency,
      RecoveryMode::kPointInTimeRecovery,
      RecoveryMode::kSkipAnyCorruptedRecords};
  for (RecoveryMode mode : kModes) {
    if (mode == RecoveryMode::kTolerateCorruptedTail && !only_in_last) {
      continue;
    }
    std::unique_ptr<Env> env = NewMemEnv();
    WriteDirectoryInput(env.get(), dir, data, size);
    auto wal = SegmentedWal::Open(DirectoryOptions(env.get(), dir, options, mode));
    Verdict opened;
    if (wal.ok()) {
      opened = OpenVerdict((*wal)->recovery_report());
    } else if (!absl::IsDataLoss(wal.status())) {
      continue;  // a missing key, an unsupported version: not a verdict
    } else if (auto v = ParseOpenError(wal.status().message())) {
      opened = *v;
    } else {
      opened.kind = Verdict::kOther;
    }
    FUZZ_CHECK(Agree(inspected, opened),
               absl::StrCat("recovery mode ", static_cast<int>(mode),
                            ": the inspector says ", inspected.ToString(),
                            ", Open says ", opened.ToString(),
                            wal.ok() ? "" : absl::StrCat(" (", wal.status().ToString(), ")")));
  }
  return 0;
}

}  // namespace fuzz
}  // namespace segwal
