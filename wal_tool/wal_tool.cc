#include "wal_tool/wal_tool.h"

#include <gflags/gflags.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "crypto/key_ring.h"
#include "wal/format.h"
#include "wal/wal_inspector.h"
#include "wal_tool/wal_repair.h"

DEFINE_string(wal_dir, "", "The WAL directory (every command).");
DEFINE_uint64(from_lsn, 0, "dump: the first LSN to print.");
DEFINE_uint64(limit, 0, "dump: print at most this many records (0: no limit).");
DEFINE_string(format, "text",
              "dump: text, or json (one JSON object per line).");
DEFINE_string(
    payload, "escaped",
    "dump: how to print payloads: hex, escaped (C escapes), or none.");
DEFINE_string(
    key_file, "",
    "dump, verify, stats: a file holding a 32-byte encryption key. Repeat the "
    "flag or separate paths with commas for several keys.");
DEFINE_uint64(top, 20, "stats: how many tenants to list (0: all).");
DEFINE_bool(dry_run, false, "repair: say what would be done; change nothing.");
DEFINE_uint64(max_record_size, 64 << 20,
              "The max_record_size the WAL was written with: larger stored "
              "lengths are damage.");

namespace segwal {
namespace wal_tool {

namespace {

constexpr char kUsage[] =
    "usage: wal_tool <command> --wal_dir=DIR [flags]\n"
    "\n"
    "commands:\n"
    "  dump    print records, one per line\n"
    "          [--from_lsn=N] [--limit=K] [--format=text|json]\n"
    "          [--payload=hex|escaped|none] [--key_file=F ...]\n"
    "  verify  check every checksum, the segment chain and the footers\n"
    "          (with the keys, every AEAD tag too); print a report\n"
    "          [--key_file=F ...]\n"
    "  stats   segments, records per type and tenant, compression, key ids\n"
    "          [--top=N] [--key_file=F ...]\n"
    "  repair  cut a torn tail, quarantine unreadable segments, so that the\n"
    "          WAL opens in kTolerateCorruptedTail [--dry_run]\n"
    "\n"
    "every command: --wal_dir=DIR [--max_record_size=BYTES]\n"
    "dump, verify and stats only read (no lock, no writes); repair takes the\n"
    "WAL's LOCK and refuses to run while the WAL is open.\n"
    "\n"
    "exit codes: 0 clean/done, 1 damage found (or left), 2 bad command\n"
    "line or input (unknown flag, missing or non-WAL directory, wrong key\n"
    "file), 3 failed (the WAL is locked by another process, I/O error)\n";

// Which flags each command takes (besides wal_dir and max_record_size).
const std::map<std::string, std::set<std::string>>& CommandFlags() {
  static const auto* commands =
      new std::map<std::string, std::set<std::string>>{
          {"dump", {"from_lsn", "limit", "format", "payload", "key_file"}},
          {"verify", {"key_file"}},
          {"stats", {"top", "key_file"}},
          {"repair", {"dry_run"}},
      };
  return *commands;
}

const std::set<std::string>& KnownFlags() {
  static const auto* flags = new std::set<std::string>{
      "wal_dir",  "from_lsn", "limit",   "format",         "payload",
      "key_file", "top",      "dry_run", "max_record_size"};
  return *flags;
}

struct CommandLine {
  std::string command;
  std::vector<std::string> key_files;
  bool help = false;
};

absl::Status UsageError(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::StatusOr<CommandLine> ParseArgs(const std::vector<std::string>& args) {
  CommandLine cl;
  std::set<std::string> given;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-help" || arg == "-h" || arg == "help") {
      cl.help = true;
      continue;
    }
    if (arg.empty() || arg[0] != '-' || arg == "-" || arg == "--") {
      if (!cl.command.empty()) {
        return UsageError(absl::StrCat("unexpected argument '", arg, "'"));
      }
      cl.command = arg;
      continue;
    }
    absl::string_view body(arg);
    body.remove_prefix(absl::StartsWith(body, "--") ? 2 : 1);
    std::string name(body.substr(0, body.find('=')));
    std::optional<std::string> value;
    if (body.find('=') != absl::string_view::npos) {
      value = std::string(body.substr(body.find('=') + 1));
    }
    gflags::CommandLineFlagInfo info;
    if (KnownFlags().count(name) == 0 && absl::StartsWith(name, "no") &&
        KnownFlags().count(name.substr(2)) != 0 && !value.has_value() &&
        gflags::GetCommandLineFlagInfo(name.substr(2).c_str(), &info) &&
        info.type == "bool") {
      name = name.substr(2);
      value = "false";
    }
    if (KnownFlags().count(name) == 0 ||
        !gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      return UsageError(absl::StrCat("unknown flag --", name));
    }
    if (!value.has_value()) {
      if (info.type == "bool") {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return UsageError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (name == "key_file") {
      for (absl::string_view path : absl::StrSplit(*value, ',')) {
        if (path.empty()) return UsageError("--key_file needs a path");
        cl.key_files.emplace_back(path);
      }
    } else if (gflags::SetCommandLineOption(name.c_str(), value->c_str())
                   .empty()) {
      return UsageError(absl::StrCat("invalid value '", *value, "' for --",
                                     name, " (", info.type, ")"));
    }
    given.insert(name);
  }
  if (cl.help) return cl;
  if (cl.command.empty()) return UsageError("no command given");
  auto command = CommandFlags().find(cl.command);
  if (command == CommandFlags().end()) {
    return UsageError(absl::StrCat("unknown command '", cl.command, "'"));
  }
  for (const std::string& flag : given) {
    if (flag != "wal_dir" && flag != "max_record_size" &&
        command->second.count(flag) == 0) {
      return UsageError(
          absl::StrCat("flag --", flag, " does not apply to ", cl.command));
    }
  }
  if (FLAGS_wal_dir.empty()) return UsageError("--wal_dir is required");
  if (FLAGS_format != "text" && FLAGS_format != "json") {
    return UsageError(absl::StrCat("--format must be text or json, not '",
                                   FLAGS_format, "'"));
  }
  if (FLAGS_payload != "hex" && FLAGS_payload != "escaped" &&
      FLAGS_payload != "none") {
    return UsageError(absl::StrCat(
        "--payload must be hex, escaped or none, not '", FLAGS_payload, "'"));
  }
  if (FLAGS_max_record_size == 0) {
    return UsageError("--max_record_size must be > 0");
  }
  return cl;
}

std::string KeyId(uint64_t id) { return absl::StrFormat("0x%016x", id); }

bool Encrypted(const wal_format::SegmentHeader& h) {
  return (h.flags & wal_format::kSegmentEncrypted) != 0;
}

std::string EncryptionOf(const InspectedSegment& seg) {
  if (!seg.header_ok) return "?";
  if (!Encrypted(seg.header)) return "none";
  const std::string cipher = seg.header.cipher == 1
                                 ? std::string("aes-256-gcm")
                                 : absl::StrCat("cipher ", seg.header.cipher);
  return absl::StrCat(cipher, " key ", KeyId(seg.header.key_id));
}

std::string StateOf(const InspectedSegment& seg) {
  if (seg.problem.has_value()) {
    switch (seg.problem->kind) {
      case WalProblem::Kind::kTornTail:
        return "torn tail";
      case WalProblem::Kind::kChain:
        return "chain break";
      case WalProblem::Kind::kUnsupported:
        return "unsupported";
      case WalProblem::Kind::kIo:
        return "read error";
      case WalProblem::Kind::kCorruption:
        return seg.header_ok ? "corrupt" : "unreadable";
    }
  }
  if (!seg.read) return "not read";
  if (seg.sealed) return "sealed";
  if (seg.is_last) return "active";
  return "closed";  // a non-last segment without footer that ends cleanly
}

std::string FlagNames(uint16_t flags) {
  std::vector<std::string> names;
  if (flags & wal_format::kFlagSnappy) names.push_back("snappy");
  if (flags & wal_format::kFlagEncrypted) names.push_back("encrypted");
  return names.empty() ? "none" : absl::StrJoin(names, ",");
}

// A JSON string literal: quotes, backslashes and control characters escaped.
// The input is ASCII here (hex or C-escaped payloads, paths, messages); bytes
// >= 0x80 are escaped as \u00XX so the output is always valid JSON.
std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return out;
}

// The keys from --key_file, and what a record's payload looks like with them.
class Keys {
 public:
  absl::Status Load(const std::vector<std::string>& files) {
    for (const std::string& file : files) {
      auto key = WalEncryptionKey::FromFile(file);
      if (!key.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("key file ", file, ": ", key.status().message()));
      }
      files_.push_back(file);
      keys_.push_back(*std::move(key));
    }
    return absl::OkStatus();
  }

  // Every key given must be one the WAL uses: a key that matches no segment
  // is the wrong key file.
  absl::Status CheckAgainst(const WalInspection& headers) const {
    std::set<uint64_t> in_use;
    for (const InspectedSegment& seg : headers.segments) {
      if (seg.header_ok && Encrypted(seg.header))
        in_use.insert(seg.header.key_id);
    }
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (in_use.count(keys_[i].key_id()) != 0) continue;
      std::vector<std::string> ids;
      for (uint64_t id : in_use) ids.push_back(KeyId(id));
      return absl::InvalidArgumentError(absl::StrCat(
          "wrong key: key file ", files_[i], " has key id ",
          KeyId(keys_[i].key_id()), ", which no segment of ", headers.wal_dir,
          " uses (",
          ids.empty()
              ? std::string("the WAL is not encrypted")
              : absl::StrCat("key ids in use: ", absl::StrJoin(ids, ", ")),
          ")"));
    }
    return absl::OkStatus();
  }

  const std::vector<WalEncryptionKey>& keys() const { return keys_; }

 private:
  std::vector<std::string> files_;
  std::vector<WalEncryptionKey> keys_;
};

// A record's payload as the user wants to see it: the logical bytes, or why
// they cannot be shown.
struct Payload {
  bool available = false;
  absl::string_view bytes;  // when available
  std::string note;         // when not
};

Payload DecodedPayload(const InspectedRecord& r) {
  Payload p;
  if (r.payload == nullptr) {
    p.note = absl::StrCat("encrypted; needs --key_file (key id ",
                          KeyId(r.segment->header.key_id), ")");
    return p;
  }
  p.available = true;
  p.bytes = *r.payload;
  return p;
}

class Tool {
 public:
  Tool(std::ostream& out, std::ostream& err, Env* env)
      : out_(out), err_(err), env_(env != nullptr ? env : Env::Default()) {}

  int Run(const std::vector<std::string>& args) {
    auto cl = ParseArgs(args);
    if (!cl.ok()) {
      err_ << "wal_tool: " << cl.status().message()
           << " (wal_tool --help for usage)\n";
      return kExitUsage;
    }
    if (cl->help) {
      out_ << kUsage;
      return kExitOk;
    }
    dir_ = FLAGS_wal_dir;
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
    absl::Status s = keys_.Load(cl->key_files);
    if (!s.ok()) return Fail(kExitUsage, s.message());
    if (cl->command == "dump") return Dump();
    if (cl->command == "verify") return Verify();
    if (cl->command == "stats") return Stats();
    return Repair();
  }

 private:
  int Fail(int code, absl::string_view message) {
    err_ << "wal_tool: " << message << "\n";
    return code;
  }

  InspectOptions Options() const {
    InspectOptions o;
    o.env = env_;
    o.max_record_size = FLAGS_max_record_size;
    o.keys = &keys_.keys();
    return o;
  }

  // The inspection, or an exit code after printing why there is none.
  absl::StatusOr<WalInspection> Inspect(InspectOptions options,
                                        const RecordVisitor& visit = nullptr) {
    auto in = InspectWal(dir_, options, visit);
    if (!in.ok()) {
      const absl::Status& s = in.status();
      const bool bad_input = absl::IsNotFound(s) ||
                             absl::IsFailedPrecondition(s) ||
                             absl::IsInvalidArgument(s);
      exit_ = Fail(bad_input ? kExitUsage : kExitFailed, s.message());
    }
    return in;
  }

  // Reads the segment headers, and checks --key_file against them.
  bool CheckInputs() {
    InspectOptions o = Options();
    o.headers_only = true;
    auto headers = Inspect(o);
    if (!headers.ok()) return false;
    absl::Status s = keys_.CheckAgainst(*headers);
    if (!s.ok()) {
      exit_ = Fail(kExitUsage, s.message());
      return false;
    }
    return true;
  }

  std::string LockNote() {
    switch (ProbeWalLock(env_, dir_)) {
      case WalLockState::kHeld:
        return "the WAL is open (its LOCK is held): the active segment may "
               "still be growing, so a torn tail there can be an append in "
               "progress";
      case WalLockState::kUnknown:
        return "could not tell whether the WAL is open (LOCK not lockable)";
      case WalLockState::kFree:
        break;
    }
    return "";
  }

  static std::string SegmentRange(const InspectedSegment& seg) {
    if (!seg.read) return "-";
    if (seg.last_lsn < seg.name_lsn) return "empty";
    return absl::StrCat(seg.name_lsn, "..", seg.last_lsn);
  }

  // ---- dump ----

  int Dump() {
    if (!CheckInputs()) return exit_;
    const std::string note = LockNote();
    if (!note.empty()) err_ << "wal_tool: note: " << note << "\n";
    const bool json = FLAGS_format == "json";
    uint64_t printed = 0;
    InspectOptions o = Options();
    o.from_lsn = FLAGS_from_lsn;
    auto in = Inspect(o, [&](const InspectedRecord& r) {
      if (FLAGS_limit != 0 && printed == FLAGS_limit) return false;
      out_ << (json ? JsonLine(r) : TextLine(r)) << "\n";
      printed++;
      return true;
    });
    if (!in.ok()) return exit_;
    if (in->clean()) return kExitOk;
    err_ << "wal_tool: " << in->problems.front().ToString();
    if (in->problems.size() > 1) {
      err_ << " (and " << in->problems.size() - 1 << " more problems";
      err_ << "; wal_tool verify lists them)";
    }
    err_ << "\n";
    return kExitDamage;
  }

  std::string TextLine(const InspectedRecord& r) {
    const Payload p = DecodedPayload(r);
    const WalRecord& rec = *r.record;
    std::string line = absl::StrCat(
        "lsn=", rec.lsn, " type=", rec.record_type, " tenant=", rec.tenant_id,
        " vshard=", rec.vshard_id, " database=", rec.database_id,
        " size=", p.available ? absl::StrCat(p.bytes.size()) : "?",
        " stored=", r.header.payload_length,
        " flags=", FlagNames(r.header.flags),
        " durable_lsn=", r.header.durable_lsn, " segment=", r.segment->name,
        " offset=", r.offset);
    if (FLAGS_payload == "none") return line;
    if (!p.available) {
      absl::StrAppend(&line, " payload=<", p.note, ">");
    } else if (FLAGS_payload == "hex") {
      absl::StrAppend(&line, " payload=", absl::BytesToHexString(p.bytes));
    } else {
      absl::StrAppend(&line, " payload=\"", absl::CHexEscape(p.bytes), "\"");
    }
    return line;
  }

  std::string JsonLine(const InspectedRecord& r) {
    const Payload p = DecodedPayload(r);
    const WalRecord& rec = *r.record;
    std::vector<std::string> names;
    if (r.header.flags & wal_format::kFlagSnappy) names.push_back("\"snappy\"");
    if (r.header.flags & wal_format::kFlagEncrypted) {
      names.push_back("\"encrypted\"");
    }
    std::string line = absl::StrCat(
        "{\"lsn\":", rec.lsn, ",\"type\":", rec.record_type,
        ",\"tenant\":", rec.tenant_id, ",\"vshard\":", rec.vshard_id,
        ",\"database\":", rec.database_id,
        ",\"size\":", p.available ? absl::StrCat(p.bytes.size()) : "null",
        ",\"stored_size\":", r.header.payload_length,
        ",\"flags\":", r.header.flags, ",\"flag_names\":[",
        absl::StrJoin(names, ","), "],\"durable_lsn\":", r.header.durable_lsn,
        ",\"segment\":", JsonString(r.segment->name), ",\"offset\":", r.offset);
    if (FLAGS_payload != "none") {
      if (!p.available) {
        absl::StrAppend(
            &line, ",\"payload\":null,\"payload_note\":", JsonString(p.note));
      } else if (FLAGS_payload == "hex") {
        absl::StrAppend(&line, ",\"payload_encoding\":\"hex\",\"payload\":",
                        JsonString(absl::BytesToHexString(p.bytes)));
      } else {
        absl::StrAppend(&line, ",\"payload_encoding\":\"escaped\",\"payload\":",
                        JsonString(absl::CHexEscape(p.bytes)));
      }
    }
    absl::StrAppend(&line, "}");
    return line;
  }

  // ---- verify ----

  void PrintSegments(const WalInspection& in) {
    out_ << absl::StrFormat("  %-24s %-22s %9s %11s  %-11s %s\n", "segment",
                            "LSNs", "records", "bytes", "state", "encryption");
    for (const InspectedSegment& seg : in.segments) {
      out_ << absl::StrFormat("  %-24s %-22s %9s %11d  %-11s %s\n", seg.name,
                              SegmentRange(seg),
                              seg.read ? absl::StrCat(seg.records) : "-",
                              seg.file_size, StateOf(seg), EncryptionOf(seg));
    }
  }

  static uint64_t TotalBytes(const WalInspection& in) {
    uint64_t total = 0;
    for (const InspectedSegment& seg : in.segments) total += seg.file_size;
    return total;
  }

  void PrintSummary(const WalInspection& in) {
    out_ << "WAL " << in.wal_dir << "\n";
    out_ << "segments: " << in.segments.size() << ", " << TotalBytes(in)
         << " bytes\n";
    out_ << "records: " << in.records;
    if (in.records != 0)
      out_ << ", LSNs " << in.first_lsn << ".." << in.last_lsn;
    out_ << "\n";
  }

  void PrintNotes(const WalInspection& in, const std::string& lock_note) {
    std::vector<std::string> notes;
    if (!lock_note.empty()) notes.push_back(lock_note);
    for (const InspectedSegment& seg : in.segments) {
      if (seg.zero_tail && !seg.problem.has_value()) {
        notes.push_back(
            absl::StrCat(seg.name, ": zero bytes after offset ", seg.end_offset,
                         " (preallocated or zero-filled space: a clean end)"));
      }
      if (seg.padding_frames > 0) {
        notes.push_back(absl::StrCat(
            seg.name, ": ", seg.padding_frames, " padding frame",
            seg.padding_frames == 1 ? "" : "s", ", ", seg.padding_bytes,
            " bytes (written with use_direct_io: block alignment)"));
      }
      if (seg.read && !seg.sealed && !seg.is_last && !seg.problem.has_value()) {
        notes.push_back(absl::StrCat(
            seg.name,
            ": closed without a footer (ends cleanly; Open accepts it)"));
      }
    }
    if (in.has_quarantine) {
      notes.push_back(
          "quarantine/ holds data moved aside by recovery or repair");
    }
    if (!in.other_files.empty()) {
      notes.push_back(
          absl::StrCat("ignored files: ", absl::StrJoin(in.other_files, ", ")));
    }
    for (const std::string& n : notes) out_ << "note: " << n << "\n";
  }

  static bool OnlyTornTail(const WalInspection& in) {
    for (const WalProblem& p : in.problems) {
      if (p.kind != WalProblem::Kind::kTornTail) return false;
    }
    return true;
  }

  int Verify() {
    if (!CheckInputs()) return exit_;
    const std::string lock_note = LockNote();
    auto in = Inspect(Options());
    if (!in.ok()) return exit_;
    PrintSummary(*in);
    PrintSegments(*in);
    PrintNotes(*in, lock_note);
    if (in->clean()) {
      out_ << "result: OK (every checksum, footer and the segment chain "
              "verified)\n";
      return kExitOk;
    }
    out_ << "problems: " << in->problems.size() << "\n";
    for (const WalProblem& p : in->problems)
      out_ << "  " << p.ToString() << "\n";
    out_ << "first problem: " << in->problems.front().file << " offset "
         << in->problems.front().offset << "\n";
    if (OnlyTornTail(*in)) {
      out_ << "result: DAMAGED (torn tail: bytes never acknowledged durable; "
              "Open in kTolerateCorruptedTail drops them, wal_tool repair cuts "
              "them)\n";
    } else {
      out_ << "result: DAMAGED (durable data is damaged: Open or replay fails "
              "with DataLoss; wal_tool repair --dry_run shows what a repair "
              "would cut and move aside)\n";
    }
    return kExitDamage;
  }

  // ---- stats ----

  struct Counts {
    uint64_t records = 0;
    uint64_t stored_bytes = 0;
  };

  int Stats() {
    if (!CheckInputs()) return exit_;
    const std::string lock_note = LockNote();
    std::map<uint32_t, Counts> by_type;
    std::map<uint64_t, Counts> by_tenant;
    uint64_t compressed = 0, encrypted = 0;
    uint64_t stored_total = 0, logical_known = 0, stored_of_known = 0;
    uint64_t unknown = 0, max_payload = 0;
    auto in = Inspect(Options(), [&](const InspectedRecord& r) {
      const uint64_t stored = r.header.payload_length;
      Counts& t = by_type[r.record->record_type];
      t.records++;
      t.stored_bytes += stored;
      Counts& n = by_tenant[r.record->tenant_id];
      n.records++;
      n.stored_bytes += stored;
      stored_total += stored;
      if (r.header.flags & wal_format::kFlagSnappy) compressed++;
      if (r.header.flags & wal_format::kFlagEncrypted) encrypted++;
      const Payload p = DecodedPayload(r);
      if (p.available) {
        logical_known += p.bytes.size();
        stored_of_known += stored;
        max_payload = std::max<uint64_t>(max_payload, p.bytes.size());
      } else {
        unknown++;
      }
      return true;
    });
    if (!in.ok()) return exit_;
    PrintSummary(*in);
    PrintSegments(*in);

    out_ << "records by type:\n";
    out_ << absl::StrFormat("  %-12s %12s %16s\n", "type", "records",
                            "stored bytes");
    for (const auto& [type, c] : by_type) {
      out_ << absl::StrFormat("  %-12d %12d %16d\n", type, c.records,
                              c.stored_bytes);
    }
    std::vector<std::pair<uint64_t, Counts>> tenants(by_tenant.begin(),
                                                     by_tenant.end());
    std::stable_sort(tenants.begin(), tenants.end(),
                     [](const auto& a, const auto& b) {
                       return a.second.records > b.second.records;
                     });
    const size_t shown = FLAGS_top == 0
                             ? tenants.size()
                             : std::min<size_t>(tenants.size(), FLAGS_top);
    out_ << "records by tenant (" << tenants.size()
         << (tenants.size() == 1 ? " tenant" : " tenants");
    if (shown < tenants.size()) out_ << ", top " << shown << " by records";
    out_ << "):\n";
    out_ << absl::StrFormat("  %-20s %12s %16s\n", "tenant", "records",
                            "stored bytes");
    for (size_t i = 0; i < shown; ++i) {
      out_ << absl::StrFormat("  %-20d %12d %16d\n", tenants[i].first,
                              tenants[i].second.records,
                              tenants[i].second.stored_bytes);
    }

    out_ << "payload bytes: " << stored_total << " stored, " << logical_known
         << " logical";
    if (unknown != 0)
      out_ << " (" << unknown << " records could not be decoded)";
    if (in->records != unknown) {
      out_ << ", largest payload " << max_payload;
    }
    out_ << "\n";
    out_ << "compression: " << compressed << " of " << in->records
         << " records snappy-compressed; ";
    if (stored_of_known == 0) {
      out_ << "ratio n/a";
    } else {
      out_ << absl::StrFormat("ratio %.2f (logical/stored)",
                              static_cast<double>(logical_known) /
                                  static_cast<double>(stored_of_known));
    }
    if (unknown != 0 && stored_of_known != 0) {
      out_ << " (of the records that could be decoded)";
    }
    out_ << "\n";
    std::map<uint64_t, uint64_t> key_segments;
    for (const InspectedSegment& seg : in->segments) {
      if (seg.header_ok && Encrypted(seg.header))
        key_segments[seg.header.key_id]++;
    }
    out_ << "encryption: " << encrypted << " of " << in->records
         << " records encrypted; key ids in use: ";
    if (key_segments.empty()) out_ << "none";
    bool first = true;
    for (const auto& [id, n] : key_segments) {
      out_ << (first ? "" : ", ") << KeyId(id) << " (" << n
           << (n == 1 ? " segment)" : " segments)");
      first = false;
    }
    out_ << "\n";
    PrintNotes(*in, lock_note);
    if (in->clean()) return kExitOk;
    out_ << "problems: " << in->problems.size() << " (counts cover the records "
         << "before each damage)\n";
    for (const WalProblem& p : in->problems)
      out_ << "  " << p.ToString() << "\n";
    return kExitDamage;
  }

  // ---- repair ----

  int Repair() {
    const bool dry_run = FLAGS_dry_run;
    // Read-only checks first: a missing directory must not get a LOCK file.
    if (!CheckInputs()) return exit_;
    std::unique_ptr<FileLock> lock;
    if (dry_run) {
      if (ProbeWalLock(env_, dir_) == WalLockState::kHeld) {
        return Fail(kExitFailed,
                    absl::StrCat("refusing to repair ", dir_,
                                 ": the WAL is open (its LOCK is held)"));
      }
    } else {
      auto l = env_->LockFile(dir_ + "/LOCK");
      if (!l.ok()) {
        return Fail(kExitFailed, absl::StrCat("refusing to repair ", dir_,
                                              ": the WAL is open (",
                                              l.status().message(), ")"));
      }
      lock = std::move(*l);
    }
    int code = RepairLocked(dry_run);
    if (lock != nullptr) (void)env_->UnlockFile(std::move(lock));
    return code;
  }

  int RepairLocked(bool dry_run) {
    auto in = Inspect(Options());
    if (!in.ok()) return exit_;
    out_ << "repair " << in->wal_dir
         << (dry_run ? " (dry run: nothing is changed)" : "") << "\n";
    if (in->clean()) {
      out_ << "nothing to do: the WAL is clean";
      if (in->records != 0) {
        out_ << " (LSNs " << in->first_lsn << ".." << in->last_lsn << ")";
      }
      out_ << "\n";
      return kExitOk;
    }
    auto plan = PlanRepair(env_, *in);
    if (!plan.ok()) return Fail(kExitDamage, plan.status().message());
    bool changes = false;
    for (const RepairAction& a : plan->actions) {
      out_ << (dry_run && a.kind != RepairAction::Kind::kLeave ? "would " : "")
           << DescribeAction(a) << "\n";
      if (a.kind != RepairAction::Kind::kLeave) changes = true;
    }
    for (const std::string& w : plan->warnings)
      out_ << "warning: " << w << "\n";
    for (const std::string& n : plan->notes) out_ << "note: " << n << "\n";
    if (plan->last_lsn != 0) {
      out_ << "the log " << (dry_run ? "would hold" : "holds") << " LSNs "
           << plan->first_lsn << ".." << plan->last_lsn
           << "; Open continues at LSN " << plan->last_lsn + 1 << "\n";
    }
    if (dry_run) return changes ? kExitDamage : kExitOk;
    absl::Status s = ApplyRepair(env_, in->wal_dir, *plan);
    if (!s.ok()) {
      return Fail(kExitFailed, absl::StrCat("repair failed: ", s.message()));
    }
    if (plan->no_segment_left) {
      out_ << "after repair: no segment left (Open creates the first one)\n";
      return kExitOk;
    }
    auto after = Inspect(Options());
    if (!after.ok()) return exit_;
    if (after->clean()) {
      out_ << "after repair: clean\n";
      return kExitOk;
    }
    bool openable = true;
    for (const WalProblem& p : after->problems) {
      out_ << "after repair: " << p.ToString() << "\n";
      if (p.kind != WalProblem::Kind::kTornTail) openable = false;
    }
    if (openable) {
      out_ << "after repair: Open in kTolerateCorruptedTail handles what is "
              "left\n";
      return kExitOk;
    }
    return kExitDamage;
  }

  std::ostream& out_;
  std::ostream& err_;
  Env* env_;
  std::string dir_;
  Keys keys_;
  int exit_ = kExitOk;  // set by helpers that fail
};

}  // namespace

int Run(const std::vector<std::string>& args, std::ostream& out,
        std::ostream& err, Env* env) {
  gflags::FlagSaver restore_flags_on_return;
  return Tool(out, err, env).Run(args);
}

}  // namespace wal_tool
}  // namespace segwal
