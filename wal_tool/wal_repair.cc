#include "wal_tool/wal_repair.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace segwal {
namespace wal_tool {

namespace {

constexpr char kQuarantineDir[] = "quarantine";

// quarantine/<base>, or quarantine/<base>.N for the first free N: an earlier
// repair's (or Open's) quarantined file is never overwritten.
std::string FreeQuarantineName(Env* env, const std::string& wal_dir,
                               const std::string& base) {
  const std::string first = std::string(kQuarantineDir) + "/" + base;
  if (!env->FileExists(wal_dir + "/" + first)) return first;
  for (int n = 1;; ++n) {
    const std::string candidate = absl::StrCat(first, ".", n);
    if (!env->FileExists(wal_dir + "/" + candidate)) return candidate;
  }
}

// Copies bytes [offset, end) of `from` into a new file `to` and syncs it.
absl::Status CopyTail(Env* env, const std::string& from, uint64_t offset,
                      uint64_t end, const std::string& to) {
  auto in = env->NewRandomAccessFile(from);
  if (!in.ok()) return in.status();
  auto out = env->NewWritableFile(to);
  if (!out.ok()) return out.status();
  constexpr size_t kChunk = 1 << 20;
  std::unique_ptr<char[]> scratch(new char[kChunk]);
  for (uint64_t pos = offset; pos < end;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, end - pos));
    absl::string_view piece;
    absl::Status s = (*in)->Read(pos, n, &piece, scratch.get());
    if (!s.ok()) return s;
    if (piece.empty()) {
      return absl::DataLossError(
          absl::StrCat(from, " ended at offset ", pos, " while copying it"));
    }
    s = (*out)->Append(piece);
    if (!s.ok()) return s;
    pos += piece.size();
  }
  absl::Status s = (*out)->Sync();
  if (s.ok()) s = (*out)->Close();
  return s;
}

absl::Status Annotate(const absl::Status& s, const std::string& what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

}  // namespace

absl::StatusOr<RepairPlan> PlanRepair(Env* env, const WalInspection& in) {
  const std::vector<InspectedSegment>& segs = in.segments;
  for (const WalProblem& p : in.problems) {
    if (p.kind == WalProblem::Kind::kIo ||
        p.kind == WalProblem::Kind::kUnsupported) {
      return absl::FailedPreconditionError(
          absl::StrCat("not repairing: ", p.ToString(),
                       p.kind == WalProblem::Kind::kIo
                           ? " (fix the I/O error first)"
                           : " (use the segwal version that wrote it)"));
    }
  }
  RepairPlan plan;
  std::vector<RepairAction> cuts;
  size_t keep = segs.size();  // segments [keep, end) go to quarantine
  std::string quarantine_reason;
  for (size_t i = 0; i < segs.size() && keep == segs.size(); ++i) {
    const InspectedSegment& seg = segs[i];
    if (!seg.problem.has_value()) continue;
    const WalProblem& p = *seg.problem;
    if (p.kind == WalProblem::Kind::kChain) {
      keep = i;
      quarantine_reason = p.reason;
      break;
    }
    if (!seg.header_ok || p.offset < wal_format::kSegmentHeaderSize) {
      // Unreadable: no record of it can be kept.
      if (i == 0 && seg.is_last && p.kind == WalProblem::Kind::kTornTail &&
          seg.name_lsn > 1) {
        RepairAction leave;
        leave.kind = RepairAction::Kind::kLeave;
        leave.name = seg.name;
        leave.bytes = seg.file_size;
        leave.reason = absl::StrCat(
            p.reason, ": left for Open, which re-creates it at LSN ",
            seg.name_lsn, " (quarantining it would restart the log at LSN 1)");
        plan.actions.push_back(std::move(leave));
        break;
      }
      keep = i;
      quarantine_reason = absl::StrCat("unreadable: ", p.reason);
      break;
    }
    RepairAction cut;
    cut.kind = RepairAction::Kind::kCut;
    cut.name = seg.name;
    cut.offset = seg.end_offset;
    cut.bytes = seg.file_size - seg.end_offset;
    cut.reason = absl::StrCat(WalProblem::KindName(p.kind), " at offset ",
                              p.offset, " (LSN ", p.lsn, "): ", p.reason);
    cut.quarantine_name = FreeQuarantineName(
        env, in.wal_dir, absl::StrCat(seg.name, ".cut-at-", seg.end_offset));
    if (seg.max_lsn_after_damage > seg.last_lsn) {
      (p.kind == WalProblem::Kind::kTornTail
           ? plan.dropped_unacknowledged_records
           : plan.lost_durable_records) +=
          seg.max_lsn_after_damage - seg.last_lsn;
    }
    cuts.push_back(std::move(cut));
    if (seg.is_last) break;
    // A cut non-last segment stays in the log (closed, without a footer: Open
    // accepts it) only if the next segment still continues it and no record
    // of it is lost; otherwise the log ends here.
    const InspectedSegment& next = segs[i + 1];
    if (next.name_lsn != seg.last_lsn + 1 ||
        seg.max_lsn_after_damage > seg.last_lsn) {
      keep = i + 1;
      quarantine_reason =
          absl::StrCat("the log now ends at LSN ", seg.last_lsn, " in ",
                       seg.name, " (cut at its first damage)");
    }
  }

  // Quarantines, last segment first: the directory always holds a prefix.
  for (size_t j = segs.size(); j-- > keep;) {
    RepairAction q;
    q.kind = RepairAction::Kind::kQuarantine;
    q.name = segs[j].name;
    q.bytes = segs[j].file_size;
    q.reason = j == keep ? quarantine_reason
                         : absl::StrCat("follows ", segs[keep].name,
                                        ", which is quarantined");
    q.quarantine_name = FreeQuarantineName(env, in.wal_dir, segs[j].name);
    if (segs[j].header_ok && segs[j].read) {
      plan.lost_durable_records += segs[j].records;
    }
    plan.actions.push_back(std::move(q));
  }
  for (RepairAction& c : cuts) plan.actions.push_back(std::move(c));

  // What the log holds afterwards.
  for (size_t i = 0; i < keep; ++i) {
    const InspectedSegment& seg = segs[i];
    if (!seg.header_ok) continue;
    if (plan.first_lsn == 0 && seg.last_lsn >= seg.name_lsn) {
      plan.first_lsn = seg.name_lsn;
    }
    if (seg.last_lsn >= seg.name_lsn) plan.last_lsn = seg.last_lsn;
  }
  if (keep == 0 && !segs.empty()) {
    plan.no_segment_left = true;
    if (segs.front().name_lsn > 1) {
      plan.warnings.push_back(absl::StrCat(
          "no segment is left: the next Open starts a new log at LSN 1 (this "
          "log started at LSN ",
          segs.front().name_lsn, ")"));
    } else {
      plan.notes.push_back(
          "no segment is left: the next Open starts a new, empty log");
    }
  }
  if (plan.lost_durable_records > 0) {
    plan.warnings.push_back(absl::StrCat(
        "about ", plan.lost_durable_records,
        " records beyond the damage leave the log (kept in quarantine/)"));
  }
  if (plan.dropped_unacknowledged_records > 0) {
    plan.notes.push_back(absl::StrCat(
        plan.dropped_unacknowledged_records,
        " valid records after the torn tail were never acknowledged durable "
        "(a later sync never covered them); they leave the log (kept in "
        "quarantine/)"));
  }
  return plan;
}

std::string DescribeAction(const RepairAction& a) {
  switch (a.kind) {
    case RepairAction::Kind::kCut:
      return absl::StrCat("cut ", a.name, " at offset ", a.offset, " (",
                          a.bytes, " bytes saved to ", a.quarantine_name,
                          "): ", a.reason);
    case RepairAction::Kind::kQuarantine:
      return absl::StrCat("quarantine ", a.name, " -> ", a.quarantine_name,
                          " (", a.bytes, " bytes): ", a.reason);
    case RepairAction::Kind::kLeave:
      return absl::StrCat("leave ", a.name, ": ", a.reason);
  }
  return "";
}

absl::Status ApplyRepair(Env* env, const std::string& wal_dir,
                         const RepairPlan& plan) {
  const std::string qdir = wal_dir + "/" + kQuarantineDir;
  bool need_qdir = false;
  for (const RepairAction& a : plan.actions) {
    if (a.kind != RepairAction::Kind::kLeave) need_qdir = true;
  }
  if (!need_qdir) return absl::OkStatus();
  absl::Status s = env->CreateDirIfMissing(qdir);
  if (s.ok()) s = env->SyncDir(wal_dir);
  if (!s.ok()) return Annotate(s, "creating " + qdir);
  for (const RepairAction& a : plan.actions) {
    const std::string path = wal_dir + "/" + a.name;
    const std::string target = wal_dir + "/" + a.quarantine_name;
    switch (a.kind) {
      case RepairAction::Kind::kQuarantine:
        s = env->RenameFile(path, target);
        if (s.ok()) s = env->SyncDir(qdir);
        if (s.ok()) s = env->SyncDir(wal_dir);
        if (!s.ok()) return Annotate(s, "moving " + path + " to " + target);
        break;
      case RepairAction::Kind::kCut: {
        s = CopyTail(env, path, a.offset, a.offset + a.bytes, target);
        if (s.ok()) s = env->SyncDir(qdir);
        if (!s.ok()) {
          return Annotate(
              s, "saving the bytes cut from " + path + " to " + target);
        }
        s = env->TruncateFile(path, a.offset);
        if (s.ok()) {
          // TruncateFile is durable after a Sync of the file (env.h).
          auto f = env->NewAppendableFile(path);
          s = f.ok() ? (*f)->Sync() : f.status();
          if (s.ok()) s = (*f)->Close();
        }
        if (!s.ok()) return Annotate(s, "cutting " + path);
        break;
      }
      case RepairAction::Kind::kLeave:
        break;
    }
  }
  return absl::OkStatus();
}

}  // namespace wal_tool
}  // namespace segwal
