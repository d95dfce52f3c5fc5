// Open's recovery (FORMAT.md, "Recovery"): lists and chains the segments,
// scans them with recovery_scan (the one torn-tail/corruption rule), applies
// what the recovery mode decides (cut, quarantine, keep, fail), then prepares
// the tail for appending (cut and sync it, retire it, or create the next
// segment). Runs before any other thread exists; file work on a segment
// holds the I/O token like everywhere else.
#include "wal/segmented_wal_impl.h"

#include "absl/strings/str_cat.h"
#include "wal/kill_point.h"

namespace segwal {

// ---------------------------------------------------------------------------
// Recovery (FORMAT.md, "Recovery").

absl::Status SegmentedWal::Impl::Quarantine(
    const std::vector<std::string>& names) {
  if (names.empty()) return absl::OkStatus();
  const std::string qdir = options_.wal_dir + "/" + kQuarantineDir;
  absl::Status s = env_->CreateDirIfMissing(qdir);
  // The directory's own entry must be durable before anything moves into it.
  if (s.ok()) s = env_->SyncDir(options_.wal_dir);
  if (!s.ok()) return s;
  for (const std::string& name : names) {
    // Never replace what an earlier recovery quarantined.
    std::string target = qdir + "/" + name;
    for (int n = 1; env_->FileExists(target); ++n) {
      target = absl::StrCat(qdir, "/", name, ".", n);
    }
    s = env_->RenameFile(options_.wal_dir + "/" + name, target);
    if (!s.ok()) return s;
  }
  s = env_->SyncDir(qdir);
  if (s.ok()) s = env_->SyncDir(options_.wal_dir);
  return s;
}

absl::Status SegmentedWal::Impl::CreateSegmentFileNow(uint64_t first_lsn) {
  port::MutexLock l(&mu_);
  next_lsn_ = first_lsn;
  StartSegmentLocked();
  return RunQueuedLocked(/*sync=*/true);
}

absl::Status SegmentedWal::Impl::OpenTailForAppend(std::shared_ptr<Segment> seg) {
  Segment::FileState& io = seg->io(io_token_);
  auto file = env_->NewAppendableFile(seg->path);
  if (!file.ok()) return Annotate(file.status(), "reopening " + seg->path);
  // use_direct_io: O_DIRECT appends start on a block boundary. A padded
  // writer's syncs end on boundaries, so records in the last partial block
  // were never acknowledged: padding that block now (this one buffered
  // write, made durable by the sync below) rewrites no acknowledged block.
  const bool direct = options_.use_direct_io && seg->padded;
  uint64_t end;
  {
    port::MutexLock l(&mu_);
    end = seg->framed_size;
  }
  absl::Status s;
  if (direct && end % wal_format::kPaddingBlockSize != 0) {
    std::string pad;
    wal_format::AppendPaddingFrame(seg->seed, end, seg->framed_last_lsn,
                                   /*durable_lsn=*/0, &pad);
    s = (*file)->Append(pad);
    if (!s.ok()) return Annotate(s, "padding recovered tail " + seg->path);
    end += pad.size();
    port::MutexLock l(&mu_);
    seg->framed_size = seg->readable_size = end;
    stats_.padding_bytes += pad.size();
  }
  // The recovered bytes may be only in the OS cache (a process crash): make
  // them durable before durable_lsn() claims them and before records framed
  // with that durable LSN can follow them.
  s = (*file)->Sync();
  if (!s.ok()) return Annotate(s, "syncing recovered tail " + seg->path);
  if (direct) {
    auto reopened = OpenDirect(seg->path, end);
    if (!reopened.ok()) {
      return Annotate(reopened.status(), "reopening recovered tail " + seg->path);
    }
    if (*reopened != nullptr) {  // else: refused, keep appending through the cache
      s = (*file)->Close();
      if (!s.ok()) return Annotate(s, "reopening recovered tail " + seg->path);
      *file = *std::move(reopened);
      io.direct = true;
    }
  }
  io.file = std::move(*file);
  return absl::OkStatus();
}

absl::Status SegmentedWal::Impl::RetireRecoveredTail() {
  std::shared_ptr<Segment> tail;
  {
    port::MutexLock l(&mu_);
    tail = segments_.back();
    if (tail->record_count == 0) segments_.pop_back();
  }
  if (tail->record_count == 0) {
    // No record of it survived, but some may have been sealed under its
    // subkey before the crash: rewrite the file with a fresh salt.
    return CreateSegmentFileNow(tail->first_lsn);
  }
  absl::Status s;
  {
    IoTokenHold token(this);
    s = OpenTailForAppend(tail);  // makes the recovered bytes durable
  }
  if (!s.ok()) return s;
  port::MutexLock l(&mu_);
  durable_lsn_ = tail->framed_last_lsn;  // the footer frame carries it
  if (tail->has_skipped_damage) {
    // Its footer could not describe the LSNs it lacks: leave it unsealed
    // (recovery reads such a segment in the middle of the log).
    tail->sealed = true;  // closed and durable: TruncateBefore may delete it
    // Nothing is queued: this only closes the file, as the token holder.
    s = RunQueuedLocked(/*sync=*/false, [this, &tail] {
      io_token_.AssertHeld();
      Segment::FileState& io = tail->io(io_token_);
      absl::Status st = io.file->Close();
      io.file.reset();
      return Annotate(st, "closing recovered tail " + tail->path);
    });
    if (!s.ok()) return s;
    StartSegmentLocked();
  } else {
    RollLocked();  // footer (with the index from the scan), sync, next segment
  }
  return RunQueuedLocked(/*sync=*/true);
}

absl::Status SegmentedWal::Impl::Recover() {
  const std::string& dir = options_.wal_dir;
  auto children = env_->GetChildren(dir);
  if (!children.ok()) return children.status();
  std::vector<std::pair<uint64_t, std::string>> found;
  for (const std::string& name : *children) {
    uint64_t lsn;
    if (wal_format::ParseSegmentFileName(name, &lsn)) found.push_back({lsn, name});
  }
  std::sort(found.begin(), found.end());
  report_.segments_found = found.size();
  // No segwal wrote a name outside [1, 2^63] (FORMAT.md, "Directory"); taking
  // one at its word would wrap LSNs around (found by fuzz/open_directory).
  for (const auto& [lsn, name] : found) {
    if (lsn == 0 || lsn > wal_format::kMaxFirstLsn) {
      return absl::DataLossError(absl::StrCat(
          dir, "/", name, " offset 0: a segment cannot start at LSN ", lsn,
          " (first LSNs are in [1, 2^63])"));
    }
  }

  const RecoveryMode mode = options_.recovery_mode;
  const bool pit = mode == RecoveryMode::kPointInTimeRecovery;
  const bool skip_bad = mode == RecoveryMode::kSkipAnyCorruptedRecords;
  const bool read_footers_only = mode == RecoveryMode::kTolerateCorruptedTail;

  // Moves found[from..] to quarantine/ (kPointInTimeRecovery) and reports it.
  auto quarantine_rest = [&](size_t from, const std::string& why) {
    std::vector<std::string> names;
    for (size_t j = from; j < found.size(); ++j) {
      const std::string path = dir + "/" + found[j].second;
      auto size = env_->GetFileSize(path);
      report_.drops.push_back({path, 0, size.ok() ? *size : 0,
                               "moved to " + std::string(kQuarantineDir) +
                                   "/: " + why});
      names.push_back(found[j].second);
    }
    found.resize(from);
    return Quarantine(names);
  };

  std::vector<std::shared_ptr<Segment>> segs;
  // What to do with the end of the log once the segments are known.
  std::optional<uint64_t> recreate_lsn;  // torn creation: rewrite this segment
  // A torn tail to cut off the last segment before appending.
  std::string cut_path;
  uint64_t cut_offset = 0;
  // Encryption is never turned off (FORMAT.md, "Encryption and compression"):
  // a plaintext segment after an encrypted one is a forgery or a replaced
  // file, whatever its CRCs say.
  std::string first_encrypted;
  for (size_t i = 0; i < found.size(); ++i) {
    const bool is_last = i + 1 == found.size();
    const std::string path = dir + "/" + found[i].second;
    if (!segs.empty() && found[i].first != segs.back()->framed_last_lsn + 1) {
      const uint64_t prev_last = segs.back()->framed_last_lsn;
      const bool gap = found[i].first > prev_last + 1;
      const std::string msg =
          gap ? absl::StrCat("missing records: LSNs ", prev_last + 1, "..",
                             found[i].first - 1, " are absent between ",
                             segs.back()->path, " and ", path)
              : absl::StrCat("overlapping segments: LSNs ", found[i].first,
                             "..", prev_last, " appear in both ",
                             segs.back()->path, " and ", path);
      if (!pit) return absl::DataLossError(msg);
      absl::Status s = quarantine_rest(i, msg);
      if (!s.ok()) return s;
      break;
    }
    auto size = env_->GetFileSize(path);
    if (!size.ok()) return size.status();
    auto reader_or = SegmentReader::Open(
        env_, path, *size, options_.max_record_size,
        options_.encryption_ring ? &*options_.encryption_ring : nullptr);
    if (!reader_or.ok()) {
      const absl::Status& s = reader_or.status();
      if (IsReadError(s)) return s;  // never mistaken for damage
      // A last segment no longer than a header whose header is invalid is a
      // torn creation: no record of it can have been acknowledged.
      if (absl::IsDataLoss(s) && is_last && *size <= kSegmentHeaderSize &&
          mode != RecoveryMode::kAbsoluteConsistency) {
        report_.drops.push_back({path, 0, *size,
                                 "torn segment creation: " +
                                     std::string(s.message())});
        report_.truncated_tail = true;
        recreate_lsn = found[i].first;
        break;
      }
      if (pit && absl::IsDataLoss(s) && !segs.empty()) {
        absl::Status qs = quarantine_rest(i, std::string(s.message()));
        if (!qs.ok()) return qs;
        break;
      }
      return s;
    }
    SegmentReader* reader = reader_or->get();
    if (reader->encrypted() && !options_.encryption_ring.has_value()) {
      // FailedPrecondition naming the key id the WAL needs.
      return reader->key_status();
    }
    if (reader->header().first_lsn != found[i].first) {
      return absl::DataLossError(absl::StrCat(
          path, " offset 16: header says first LSN ",
          reader->header().first_lsn, " but the file name says ",
          found[i].first));
    }
    if (reader->encrypted()) {
      if (first_encrypted.empty()) first_encrypted = path;
    } else if (!first_encrypted.empty()) {
      const std::string msg = absl::StrCat(
          path, " offset 0: a plaintext segment after the encrypted segment ",
          first_encrypted,
          " (encryption is never turned off: the file was replaced or "
          "forged)");
      if (!pit) return absl::DataLossError(msg);
      absl::Status qs = quarantine_rest(i, msg);
      if (!qs.ok()) return qs;
      break;
    }

    SegmentScan scan;
    scan.end_offset = kSegmentHeaderSize;
    absl::StatusOr<Footer> footer = absl::NotFoundError("not read");
    if (!is_last && read_footers_only) {
      footer = reader->ReadFooter();
      if (IsReadError(footer.status())) return footer.status();
      if (!footer.ok() && !absl::IsNotFound(footer.status())) {
        return absl::DataLossError(
            absl::StrCat("sealed segment ", path, " has a damaged footer: ",
                         footer.status().message()));
      }
    }
    if (footer.ok()) {
      scan.sealed = true;
      scan.count = footer->record_count;
      scan.last_lsn = found[i].first + footer->record_count - 1;
      scan.index = std::move(footer->index);
      scan.end_offset = footer->footer_offset;
    } else {
      ScanOptions scan_options;
      scan_options.is_last = is_last;
      scan_options.skip_damage = skip_bad;
      absl::Status s = ScanSegment(reader, scan_options, &scan);
      if (!s.ok()) return s;
      for (const ScannedDamage& d : scan.skipped) {
        report_.drops.push_back(
            {path, d.offset, *d.resume_offset - d.offset,
             absl::StrCat("skipped damaged bytes (", d.reason, "), ",
                          d.resume_lsn == d.lsn
                              ? std::string("no LSN missing")
                              : absl::StrCat("LSNs ", d.lsn, "..",
                                             d.resume_lsn - 1, " missing"))});
      }
    }

    // What the damage (if any) means in this mode (recovery_scan.h).
    bool cut = false;
    bool keeps_damage = !scan.skipped.empty();  // readers must resynchronise
    if (scan.damage.has_value()) {
      const ScannedDamage& d = *scan.damage;
      const std::string kind = DamageKindName(d);
      const std::string where =
          absl::StrCat(path, " offset ", d.offset, " (LSN ", d.lsn, ")");
      switch (DecideDamage(mode, is_last, d)) {
        case DamageAction::kFailOpen:
          return absl::DataLossError(absl::StrCat(
              kind, " at ", where, ": ", d.reason,
              !d.corruption   ? ""
              : !is_last      ? " (the segment was sealed)"
              : d.undecodable ? " (its checksums match: not a torn write)"
                              : " (a later record proves these bytes were "
                                "durable)"));
        case DamageAction::kKeep:
          // Damage at the end of a non-last segment: kept, readers skip it.
          if (d.offset < *size) {
            report_.drops.push_back(
                {path, d.offset, *size - d.offset,
                 absl::StrCat("skipped ", kind, ": ", d.reason)});
          }
          keeps_damage = true;
          break;
        case DamageAction::kCut:
          report_.drops.push_back({path, d.offset, *size - d.offset,
                                   absl::StrCat(kind, ": ", d.reason)});
          cut = true;
          if (pit && !is_last) {
            absl::Status s = quarantine_rest(
                i + 1, absl::StrCat("after the first bad record at ", where));
            if (!s.ok()) return s;
          }
          break;
      }
    } else if (!scan.sealed && scan.end_offset < *size) {
      // Zero fill after the last record: nothing lost, but cut it before
      // appending so the log has no hole.
      report_.drops.push_back({path, scan.end_offset, *size - scan.end_offset,
                               "zero fill after the last record"});
      cut = true;
    }
    if (cut) {
      // Done below, with the other steps that prepare for appending.
      cut_path = path;
      cut_offset = scan.end_offset;
      scan.sealed = false;
    }

    auto seg = std::make_shared<Segment>();
    seg->path = path;
    seg->first_lsn = found[i].first;
    seg->seed = reader->seed();
    seg->framed_size = scan.sealed ? *size : scan.end_offset;
    seg->framed_last_lsn = scan.last_lsn;
    seg->record_count = scan.count;
    seg->index = std::move(scan.index);
    seg->next_index_offset =
        seg->index.empty()
            ? kSegmentHeaderSize
            : seg->index.back().offset + wal_format::kIndexInterval;
    seg->readable_size = seg->framed_size;
    seg->readable_last_lsn = scan.last_lsn;
    // A non-last segment is closed and durable even without a footer (an
    // earlier recovery ended it cleanly): TruncateBefore may delete it.
    seg->sealed = scan.sealed || (!cut && i + 1 < found.size());
    seg->has_skipped_damage = keeps_damage;
    seg->skips = scan.SkipRanges();
    seg->encrypted = reader->encrypted();
    seg->padded = reader->padded();
    if (!seg->encrypted) seg->codec = std::make_unique<PayloadCodec>();
    report_.records_recovered += scan.count;
    segs.push_back(std::move(seg));
    if (cut || i + 1 == found.size()) break;
  }

  const uint64_t last_lsn =
      segs.empty() ? (recreate_lsn ? *recreate_lsn - 1 : 0)
                   : segs.back()->framed_last_lsn;
  {
    port::MutexLock l(&mu_);
    segments_ = segs;
    next_lsn_ = last_lsn + 1;
  }
  // Reading is done. What follows prepares for appending and needs writes: a
  // torn tail is cut (and synced) before anything is appended after it, and
  // the last segment is synced or a new one created.
  spares_.SetUp(*children);
  absl::Status s;
  if (!cut_path.empty()) {
    s = Annotate(env_->TruncateFile(cut_path, cut_offset),
                 "cutting the torn tail of " + cut_path);
    if (s.ok()) {
      SEGWAL_KILL_POINT("Recover:AfterTruncateTail");
      report_.truncated_tail = true;
    }
  }
  if (!s.ok()) {
  } else if (segs.empty() || recreate_lsn || segs.back()->sealed) {
    // A fresh directory, a torn creation, or a sealed last segment: start the
    // next segment now (created, synced, directory synced), in a spare.
    if (spares_.NeedsOne()) s = spares_.PrepareOrGiveUp();
    if (s.ok()) s = CreateSegmentFileNow(last_lsn + 1);
  } else if (segs.back()->encrypted || options_.encryption_ring.has_value() ||
             (options_.use_direct_io && !segs.back()->padded)) {
    // Never append to an encrypted segment this process did not create: a
    // crash may have lost records whose LSNs (nonces) were already sealed
    // under its subkey (FORMAT.md, "Encryption and compression"). Nor, with
    // direct I/O, to one that cannot hold padding frames.
    s = RetireRecoveredTail();
  } else {
    IoTokenHold token(this);
    s = OpenTailForAppend(segs.back());
  }
  port::MutexLock l(&mu_);
  report_.first_lsn = segments_.front()->first_lsn;
  report_.last_lsn = last_lsn;
  flushed_lsn_ = last_lsn;
  if (!s.ok()) {
    if (segs.empty()) return s;  // nothing to read either
    // A full or failing disk must not stop a restart (docs/DURABILITY.md,
    // section 3; tikv/raft-engine#344): the log opens read-only. Readers see what recovery found (never a
    // torn tail: they stop at the last good record); Append and Sync return
    // this error. durable_lsn() stays 0: this instance confirmed nothing.
    PoisonLocked(s);
    read_only_ = true;
    report_.read_only_reason = std::string(s.message());
    return absl::OkStatus();
  }
  durable_lsn_ = last_lsn;
  return absl::OkStatus();
}

}  // namespace segwal
