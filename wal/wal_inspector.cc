#include "wal/wal_inspector.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/segment_cipher.h"
#include "wal/payload_codec.h"
#include "wal/recovery_scan.h"
#include "wal/segment_reader.h"

namespace segwal {

using wal_format::kSegmentHeaderSize;
using wal_format::RecordHeader;

namespace {

constexpr char kLockFileName[] = "LOCK";
constexpr char kQuarantineDir[] = "quarantine";

// SegmentReader's messages start with "<path> offset <n>: "; problems carry the
// file and offset in their own fields.
std::string StripLocation(absl::string_view message, const std::string& path) {
  if (absl::StartsWith(message, path)) {
    const size_t colon = message.find(": ", path.size());
    if (colon != absl::string_view::npos) message.remove_prefix(colon + 2);
  }
  return std::string(message);
}

class Inspector {
 public:
  Inspector(Env* env, const InspectOptions& options, const RecordVisitor& visit,
            WalInspection* out)
      : env_(env), options_(options), visit_(visit), out_(out) {}

  void Run() {
    // The first LSN the next segment must have (when known), and the path of
    // the segment that says so.
    bool chain_known = false;
    uint64_t chain_next = 0;
    std::string chain_prev;
    for (size_t i = 0; i < out_->segments.size() && !out_->stopped; ++i) {
      InspectedSegment& seg = out_->segments[i];
      if (chain_known && seg.name_lsn != chain_next) {
        AddProblem(&seg, ChainProblem(seg, chain_next, chain_prev));
      }
      const bool skip_records =
          i + 1 < out_->segments.size() &&
          out_->segments[i + 1].name_lsn <= options_.from_lsn;
      const bool ok = InspectSegment(&seg, skip_records);
      if (ok && seg.read) {
        chain_known = true;
        chain_next = seg.last_lsn + 1;
        chain_prev = seg.path;
      } else {
        // Not read (before from_lsn): trust the names. Damaged: its problem is
        // reported, and where its records end is unknown.
        chain_known = false;
      }
    }
  }

 private:
  WalProblem ChainProblem(const InspectedSegment& seg, uint64_t expected,
                          const std::string& prev) {
    WalProblem p;
    p.kind = WalProblem::Kind::kChain;
    p.file = seg.path;
    p.offset = 0;
    p.lsn = expected;
    p.bytes = seg.file_size;
    if (seg.name_lsn > expected) {
      p.reason = absl::StrCat("missing records: LSNs ", expected, "..",
                              seg.name_lsn - 1, " are absent between ", prev,
                              " and ", seg.path);
    } else {
      p.reason = absl::StrCat("overlapping segments: LSNs ", seg.name_lsn, "..",
                              expected - 1, " appear in both ", prev, " and ",
                              seg.path);
    }
    return p;
  }

  void AddProblem(InspectedSegment* seg, WalProblem p) {
    if (!seg->problem.has_value()) seg->problem = p;
    out_->problems.push_back(std::move(p));
  }

  WalProblem Problem(const InspectedSegment& seg, WalProblem::Kind kind,
                     uint64_t offset, uint64_t lsn, std::string reason) {
    WalProblem p;
    p.kind = kind;
    p.file = seg.path;
    p.offset = offset;
    p.lsn = lsn;
    p.bytes = seg.file_size > offset ? seg.file_size - offset : 0;
    p.reason = std::move(reason);
    return p;
  }

  // Returns false if the segment is damaged (its problem is recorded).
  bool InspectSegment(InspectedSegment* seg, bool skip_records) {
    auto size = env_->GetFileSize(seg->path);
    if (!size.ok()) {
      AddProblem(seg, Problem(*seg, WalProblem::Kind::kIo, 0, 0,
                              std::string(size.status().message())));
      return false;
    }
    seg->file_size = *size;
    // As for Open: no segwal wrote a name outside [1, 2^63] (FORMAT.md,
    // "Directory").
    if (seg->name_lsn == 0 || seg->name_lsn > wal_format::kMaxFirstLsn) {
      AddProblem(seg, Problem(*seg, WalProblem::Kind::kCorruption, 0, 0,
                              absl::StrCat("a segment cannot start at LSN ",
                                           seg->name_lsn,
                                           " (first LSNs are in [1, 2^63])")));
      return false;
    }
    seg->last_lsn = seg->name_lsn - 1;
    seg->end_offset = kSegmentHeaderSize;
    auto reader_or = SegmentReader::Open(env_, seg->path, seg->file_size,
                                         options_.max_record_size);
    if (!reader_or.ok()) {
      const absl::Status& s = reader_or.status();
      const std::string why = StripLocation(s.message(), seg->path);
      seg->end_offset = 0;
      if (absl::IsFailedPrecondition(s)) {
        AddProblem(seg,
                   Problem(*seg, WalProblem::Kind::kUnsupported, 0, 0, why));
      } else if (!absl::IsDataLoss(s)) {
        AddProblem(seg, Problem(*seg, WalProblem::Kind::kIo, 0, 0, why));
      } else if (seg->is_last && seg->file_size <= kSegmentHeaderSize) {
        // FORMAT.md: no record can have been acknowledged in a segment whose
        // header was not durable.
        AddProblem(seg,
                   Problem(*seg, WalProblem::Kind::kTornTail, 0, seg->name_lsn,
                           "torn segment creation: " + why));
      } else {
        AddProblem(
            seg,
            Problem(*seg, WalProblem::Kind::kCorruption, 0, seg->name_lsn,
                    seg->is_last ? why + " (the segment holds records)" : why));
      }
      return false;
    }
    SegmentReader* reader = reader_or->get();
    reader->set_raw(true);  // stored payloads: no key needed to check CRCs
    seg->header_ok = true;
    seg->header = reader->header();
    if (seg->header.first_lsn != seg->name_lsn) {
      AddProblem(
          seg,
          Problem(*seg, WalProblem::Kind::kCorruption, 16, seg->name_lsn,
                  absl::StrCat("header says first LSN ", seg->header.first_lsn,
                               " but the file name says ", seg->name_lsn)));
      return false;
    }
    // As for Open: encryption is never turned off (FORMAT.md, "Encryption
    // and compression"), so a plaintext segment after an encrypted one was
    // replaced or forged, whatever its CRCs say.
    if ((seg->header.flags & wal_format::kSegmentEncrypted) != 0) {
      if (first_encrypted_.empty()) first_encrypted_ = seg->path;
    } else if (!first_encrypted_.empty()) {
      AddProblem(seg, Problem(*seg, WalProblem::Kind::kCorruption, 0,
                              seg->name_lsn,
                              absl::StrCat("a plaintext segment after the "
                                           "encrypted segment ",
                                           first_encrypted_,
                                           " (encryption is never turned off: "
                                           "the file was replaced or forged)")));
      return false;
    }
    if (skip_records || options_.headers_only) return true;
    seg->read = true;
    codec_.reset();
    std::string encoded_header;
    absl::Status s = ReadHeaderBytes(seg->path, &encoded_header);
    if (!s.ok()) {
      AddProblem(seg, Problem(*seg, WalProblem::Kind::kIo, 0, 0,
                              std::string(s.message())));
      return false;
    }
    std::optional<KeyRing> ring;
    if (options_.keys != nullptr) {
      for (const WalEncryptionKey& key : *options_.keys) {
        if (key.key_id() == seg->header.key_id) ring.emplace(key);
      }
    }
    auto codec = PayloadCodec::ForExistingSegment(
        seg->path, seg->header, encoded_header, ring ? &*ring : nullptr);
    if (codec.ok()) {
      codec_ = std::move(*codec);
    } else {
      seg->decode_note = ring ? std::string(codec.status().message())
                              : absl::StrCat("no key for key id ",
                                             KeyIdToString(seg->header.key_id));
    }

    // Enter a sealed segment through its footer index when from_lsn is inside.
    seg->read_from_start = true;
    if (options_.from_lsn > seg->name_lsn) {
      auto footer = reader->ReadFooter();
      if (footer.ok()) {
        for (const wal_format::IndexEntry& e : footer->index) {
          if (e.lsn > options_.from_lsn) break;
          if (e.lsn > seg->name_lsn) {
            reader->Seek(e.offset, e.lsn);
            seg->read_from_start = false;
            seg->last_lsn = e.lsn - 1;
            seg->end_offset = e.offset;
          }
        }
      }
    }
    return ReadRecords(seg, reader);
  }

  // Reads the records with recovery's own scan (recovery_scan.h), decoding
  // each payload (when the key is known) as Open would, and reports the
  // damage the scan ends at as Open classifies it.
  bool ReadRecords(InspectedSegment* seg, SegmentReader* reader) {
    ScanOptions scan_options;
    scan_options.is_last = seg->is_last;
    scan_options.search_whole_tail = true;  // for max_lsn_after_damage
    scan_options.check_record = [&](uint64_t offset, const RecordHeader& h,
                                    WalRecord* rec) {
      RecordCheck check;
      const std::string* payload = nullptr;
      if (codec_ != nullptr) {
        absl::Status s = codec_->Decode(h, rec->payload,
                                        options_.max_record_size, &decoded_,
                                        &decode_scratch_);
        if (!s.ok()) {
          // Its CRCs matched, so this is no torn write (as for Open).
          check.verdict = RecordCheck::kUndecodable;
          check.reason =
              absl::StrCat("record payload does not decode: ", s.message());
          return check;
        }
        payload = &decoded_;
      }
      seg->records++;
      seg->last_lsn = rec->lsn;
      seg->stored_payload_bytes += h.payload_length;
      out_->records++;
      if (out_->first_lsn == 0 || rec->lsn < out_->first_lsn) {
        out_->first_lsn = rec->lsn;
      }
      out_->last_lsn = std::max(out_->last_lsn, rec->lsn);
      if (visit_ && rec->lsn >= options_.from_lsn) {
        const InspectedRecord r{seg, offset, h, rec, payload};
        if (!visit_(r)) {
          out_->stopped = true;
          check.verdict = RecordCheck::kStop;
        }
      }
      return check;
    };
    SegmentScan scan;
    absl::Status s = ScanSegment(reader, scan_options, &scan);
    seg->end_offset = scan.end_offset;
    seg->padding_frames = scan.padding_frames;
    seg->padding_bytes = scan.padding_bytes;
    seg->zero_tail = scan.zero_tail;
    if (!s.ok()) {
      AddProblem(seg, Problem(*seg, WalProblem::Kind::kIo, reader->position(),
                              reader->expected_lsn(),
                              std::string(s.message())));
      return false;
    }
    if (scan.stopped) return true;
    if (scan.sealed) {
      seg->sealed = true;
      return true;
    }
    if (!scan.damage.has_value()) return true;
    const ScannedDamage& d = *scan.damage;
    if (scan.zero_tail) {
      // Open: a non-last segment ends with its footer or its last record.
      AddProblem(seg, Problem(*seg, WalProblem::Kind::kCorruption, d.offset,
                              d.lsn, d.reason));
      return false;
    }
    seg->max_lsn_after_damage = d.max_lsn_after;
    std::string why = d.reason;
    if (!seg->is_last) {
      why += " (in a non-last segment: it was sealed and synced)";
    } else if (d.proof) {
      why += " (a later record proves these bytes were durable)";
    }
    AddProblem(seg, Problem(*seg,
                            d.corruption ? WalProblem::Kind::kCorruption
                                         : WalProblem::Kind::kTornTail,
                            d.offset, d.lsn, why));
    return false;
  }

  absl::Status ReadHeaderBytes(const std::string& path, std::string* out) {
    auto file = env_->NewRandomAccessFile(path);
    if (!file.ok()) return file.status();
    out->resize(kSegmentHeaderSize);
    absl::string_view got;
    absl::Status s = (*file)->Read(0, kSegmentHeaderSize, &got, out->data());
    if (!s.ok()) return s;
    if (got.size() != kSegmentHeaderSize) {
      return absl::DataLossError(
          absl::StrCat(path, ": header changed while read"));
    }
    if (got.data() != out->data()) out->assign(got.data(), got.size());
    return absl::OkStatus();
  }

  Env* env_;
  const InspectOptions& options_;
  const RecordVisitor& visit_;
  WalInspection* out_;
  // The current segment's decoder; null when its key is missing.
  std::unique_ptr<PayloadCodec> codec_;
  std::string decoded_;
  std::string decode_scratch_;
  std::string first_encrypted_;  // path of the first encrypted segment seen
};

}  // namespace

const char* WalProblem::KindName(Kind kind) {
  switch (kind) {
    case Kind::kTornTail:
      return "torn tail";
    case Kind::kCorruption:
      return "corruption";
    case Kind::kChain:
      return "broken segment chain";
    case Kind::kUnsupported:
      return "unsupported segment";
    case Kind::kIo:
      return "I/O error";
  }
  return "problem";
}

std::string WalProblem::ToString() const {
  std::string out =
      absl::StrCat(KindName(kind), " at ", file, " offset ", offset);
  if (lsn != 0) absl::StrAppend(&out, " (LSN ", lsn, ")");
  absl::StrAppend(&out, ": ", reason);
  return out;
}

absl::StatusOr<WalInspection> InspectWal(const std::string& wal_dir,
                                         const InspectOptions& options,
                                         const RecordVisitor& visit) {
  Env* env = options.env != nullptr ? options.env : Env::Default();
  std::string dir = wal_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  auto children = env->GetChildren(dir);
  if (!children.ok()) {
    const absl::Status& s = children.status();
    if (absl::IsNotFound(s)) {
      return absl::NotFoundError(
          absl::StrCat("WAL directory ", dir, " does not exist"));
    }
    return absl::Status(s.code(), absl::StrCat("cannot list WAL directory ",
                                               dir, ": ", s.message()));
  }
  WalInspection out;
  out.wal_dir = dir;
  for (const std::string& name : *children) {
    uint64_t lsn;
    if (wal_format::ParseSegmentFileName(name, &lsn)) {
      InspectedSegment seg;
      seg.name = name;
      seg.path = dir + "/" + name;
      seg.name_lsn = lsn;
      out.segments.push_back(std::move(seg));
    } else if (name == kQuarantineDir) {
      out.has_quarantine = true;
    } else if (wal_format::ParseSpareFileName(name, &lsn)) {
      out.spare_files.push_back(name);  // holds no record (FORMAT.md)
    } else if (name != kLockFileName) {
      out.other_files.push_back(name);
    }
  }
  if (out.segments.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("not a WAL: ", dir, " holds no segment files (",
                     wal_format::SegmentFileName(1), " ...)"));
  }
  std::sort(out.segments.begin(), out.segments.end(),
            [](const InspectedSegment& a, const InspectedSegment& b) {
              return a.name_lsn < b.name_lsn;
            });
  std::sort(out.other_files.begin(), out.other_files.end());
  out.segments.back().is_last = true;
  Inspector(env, options, visit, &out).Run();
  return out;
}

WalLockState ProbeWalLock(Env* env, const std::string& wal_dir) {
  if (env == nullptr) env = Env::Default();
  const std::string path = wal_dir + "/" + kLockFileName;
  // Never create the LOCK file: a read-only tool must not write.
  if (!env->FileExists(path)) return WalLockState::kFree;
  auto lock = env->LockFile(path);
  if (lock.ok()) {
    (void)env->UnlockFile(std::move(*lock));
    return WalLockState::kFree;
  }
  if (absl::IsFailedPrecondition(lock.status())) return WalLockState::kHeld;
  return WalLockState::kUnknown;
}

}  // namespace segwal
