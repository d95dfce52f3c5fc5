// SegmentedWal: the facade, Open, and the parts of SegmentedWal::Impl that
// own the log's shape: LSNs and the segment list, framing and staging
// (Append, rolls), truncation, stats and listings, snapshots for readers, key
// rotation, Close. The other jobs of Impl live beside it
// (segmented_wal_impl.h lists them). Everything here runs under mu_ except
// where it takes the I/O token (RunQueuedLocked, io_token.cc).
#include "wal/segmented_wal.h"

#include <sys/random.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "wal/kill_point.h"
#include "wal/parallel_replay.h"
#include "wal/segmented_wal_impl.h"

namespace segwal {

WalIterator::~WalIterator() = default;

absl::Status TimedSync(WritableFile* f, std::vector<uint64_t>* micros) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = f->Sync();
  micros->push_back(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - start)
          .count()));
  return s;
}

absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

void LogDirectIoFallback(const std::string& why) {
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    std::fprintf(stderr,
                 "segwal: direct I/O unavailable (%s); writing WAL segments "
                 "through the page cache (padding frames still end every sync "
                 "on a 4 KiB boundary)\n",
                 why.c_str());
  }
}

void FillSalt(char* salt) {
  size_t got = 0;
  while (got < wal_format::kSaltSize) {
    const ssize_t r = getrandom(salt + got, wal_format::kSaltSize - got, 0);
    if (r > 0) got += static_cast<size_t>(r);
  }
}

// Writing.

void SegmentedWal::Impl::StartSegmentLocked() {
  auto seg = std::make_shared<Segment>();
  SegmentHeader h;
  h.first_lsn = next_lsn_;
  FillSalt(h.salt);
  if (ring_ != nullptr) {
    h.flags = wal_format::kSegmentEncrypted;
    h.cipher = SegmentCipher::kAes256Gcm;
    h.key_id = ring_->current().key_id();
  }
  if (options_.use_direct_io) h.flags |= wal_format::kSegmentPadded;
  std::string encoded_header = wal_format::EncodeSegmentHeader(h);
  seg->first_lsn = next_lsn_;
  seg->path = PathOf(next_lsn_);
  seg->seed = wal_format::SegmentSeed(h);
  seg->encrypted = ring_ != nullptr;
  seg->padded = options_.use_direct_io;
  // The header's block is written whole (header + padding frame): records
  // never share it, so no record write rewrites the header.
  std::string data = encoded_header;
  if (seg->padded) {
    wal_format::AppendPaddingFrame(seg->seed, kSegmentHeaderSize,
                                   next_lsn_ - 1, durable_lsn_, &data);
    stats_.padding_bytes += data.size() - kSegmentHeaderSize;
  }
  auto codec = PayloadCodec::ForNewSegment(h, encoded_header, ring_.get());
  if (codec.ok()) {
    seg->codec = std::move(*codec);
  } else {
    // No record can be framed into it: Append checks poisoned_ first.
    PoisonLocked(Annotate(codec.status(), "starting segment " + seg->path));
  }
  seg->framed_size = data.size();
  seg->framed_last_lsn = next_lsn_ - 1;
  seg->next_index_offset = kSegmentHeaderSize;
  seg->readable_size = 0;  // not even the header yet
  seg->readable_last_lsn = next_lsn_ - 1;
  IoOp op{IoOp::kCreate, seg, std::move(data), seg->framed_size,
          next_lsn_ - 1};
  queued_bytes_ += op.data.size();
  ops_.push_back(std::move(op));
  segments_.push_back(std::move(seg));
}

void SegmentedWal::Impl::QueueStagedLocked() {
  if (staged_.empty()) return;
  const std::shared_ptr<Segment>& seg = segments_.back();
  IoOp op{IoOp::kWrite, seg, std::move(staged_), seg->framed_size,
          staged_last_lsn_};
  staged_.clear();
  queued_bytes_ += op.data.size();
  ops_.push_back(std::move(op));
}

void SegmentedWal::Impl::PadActiveSegmentLocked() {
  Segment* seg = segments_.back().get();
  if (!options_.use_direct_io || !seg->padded ||
      seg->framed_size % wal_format::kPaddingBlockSize == 0) {
    return;
  }
  const size_t before = staged_.size();
  wal_format::AppendPaddingFrame(seg->seed, seg->framed_size,
                                 seg->framed_last_lsn, durable_lsn_, &staged_);
  seg->framed_size += staged_.size() - before;
  staged_last_lsn_ = seg->framed_last_lsn;
  stats_.padding_bytes += staged_.size() - before;
}

void SegmentedWal::Impl::RollLocked() {
  QueueStagedLocked();
  const std::shared_ptr<Segment>& seg = segments_.back();
  Footer f;
  f.footer_offset = seg->framed_size;
  f.last_lsn = seg->framed_last_lsn;
  f.record_count = seg->record_count;
  f.index = seg->index;
  std::string footer;
  wal_format::AppendFooter(seg->seed, durable_lsn_, f, &footer);
  seg->framed_size += footer.size();
  IoOp op{IoOp::kSeal, seg, std::move(footer), seg->framed_size,
          seg->framed_last_lsn};
  queued_bytes_ += op.data.size();
  ops_.push_back(std::move(op));
  StartSegmentLocked();
}

absl::StatusOr<uint64_t> SegmentedWal::Impl::Append(
    uint32_t record_type, uint64_t tenant_id, uint32_t vshard_id,
    uint64_t database_id, absl::string_view payload) {
  if (payload.size() > options_.max_record_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("record payload of ", payload.size(),
                     " bytes exceeds max_record_size ",
                     options_.max_record_size));
  }
  // Compression does not depend on the segment: done before taking the lock,
  // into a per-thread buffer (no allocation per append once it has grown;
  // one that grew past 1 MiB is given back).
  thread_local std::string compressed;
  struct Trim {
    ~Trim() {
      if (compressed.capacity() > (1u << 20)) std::string().swap(compressed);
    }
  } trim;
  const bool is_compressed =
      CompressPayload(options_.compression, payload, &compressed);
  const absl::string_view body =
      is_compressed ? absl::string_view(compressed) : payload;
  port::MutexLock l(&mu_);
  // Back-pressure: do not let queued I/O grow without bound while another
  // thread holds the I/O token.
  while (poisoned_.ok() && io_busy_ &&
         queued_bytes_ + staged_.size() >
             4 * options_.write_buffer_size + payload.size()) {
    cv_.Wait(&mu_);
  }
  if (!poisoned_.ok()) return poisoned_;
  const uint64_t lsn = next_lsn_++;
  Segment* seg = segments_.back().get();
  const uint64_t offset = seg->framed_size;
  RecordHeader h;
  h.lsn = lsn;
  h.durable_lsn = durable_lsn_;
  h.tenant_id = tenant_id;
  h.database_id = database_id;
  h.record_type = record_type;
  h.vshard_id = vshard_id;
  const size_t before = staged_.size();
  // Sets the flags and stored length, seals the body if the segment is
  // encrypted (nonce from the LSN), and frames it.
  absl::Status framed =
      seg->codec == nullptr
          ? absl::InternalError("appending to a segment without a codec " +
                                seg->path)
          : seg->codec->AppendRecord(seg->seed, is_compressed, body, &h,
                                     &staged_);
  if (!framed.ok()) {
    // Nothing was staged and no reader saw the LSN: give it back.
    staged_.resize(before);
    next_lsn_--;
    PoisonLocked(framed);
    return framed;
  }
  seg->framed_size += staged_.size() - before;
  stats_.appends++;
  stats_.bytes_appended += payload.size();
  stats_.bytes_framed += staged_.size() - before;
  seg->framed_last_lsn = lsn;
  seg->record_count++;
  staged_last_lsn_ = lsn;
  if (offset >= seg->next_index_offset) {
    seg->index.push_back({lsn, offset});
    seg->next_index_offset = offset + wal_format::kIndexInterval;
  }
  spares_.NoteActiveSize(seg->framed_size);  // a spare ready for the roll
  if (seg->framed_size >= options_.segment_target_size) {
    stats_.rollovers++;  // (not the seals of key rotation or recovery)
    RollLocked();
  } else if (staged_.size() >= options_.write_buffer_size) {
    QueueStagedLocked();
  }
  if (!ops_.empty() && !io_busy_) {
    // Become the I/O token holder and write the queued chunks (no sync). The
    // record is framed and its LSN assigned, and its bytes may already be in
    // the file: this Append succeeded as a buffered append always does. A
    // write failure here poisons the instance and is reported by every later
    // call (Sync in particular), never by an LSN that readers could see twice.
    (void)RunQueuedLocked(/*sync=*/false);
  }
  return lsn;
}

// ---------------------------------------------------------------------------
// Truncation.

absl::StatusOr<TruncateResult> SegmentedWal::Impl::TruncateBefore(
    uint64_t checkpoint_lsn) {
  port::MutexLock tl(&truncate_mu_);
  TruncateResult result;
  while (true) {
    std::shared_ptr<Segment> victim;
    std::string spare_path;  // recycle the victim under this name
    {
      port::MutexLock l(&mu_);
      if (!poisoned_.ok()) return poisoned_;
      if (segments_.size() < 2) break;
      const std::shared_ptr<Segment>& oldest = segments_.front();
      if (!oldest->sealed && oldest->framed_last_lsn < checkpoint_lsn &&
          seals_in_flight_ > 0) {
        // Full, but its seal is queued (or running): have it done first.
        absl::Status s = WaitForSealLocked();
        if (!s.ok()) return s;
        continue;
      }
      if (!oldest->sealed || oldest->framed_last_lsn >= checkpoint_lsn) break;
      victim = oldest;
      // Readers that start now no longer see it.
      segments_.erase(segments_.begin());
      spare_path = spares_.RecycleName();
    }
    // Either way the segment's name is gone once the directory is synced;
    // a recycled file's records become stale bytes (its salt is replaced).
    absl::Status s = spare_path.empty()
                         ? env_->DeleteFile(victim->path)
                         : env_->RenameFile(victim->path, spare_path);
    if (s.ok()) SEGWAL_KILL_POINT("Truncate:AfterDelete");
    if (s.ok()) s = env_->SyncDir(options_.wal_dir);
    if (s.ok()) SEGWAL_KILL_POINT("Truncate:AfterSyncDir");
    if (!s.ok()) {
      port::MutexLock l(&mu_);
      s = Annotate(s, "truncating (deleting " + victim->path + ")");
      PoisonLocked(s);
      return s;
    }
    result.segments_deleted++;
    result.bytes_reclaimed += victim->readable_size;
    port::MutexLock l(&mu_);
    stats_.segments_deleted++;
    if (!spare_path.empty()) {
      spares_.AddRecycled(spare_path, victim->readable_size);
    }
  }
  return result;
}

WalStats SegmentedWal::Impl::GetStats() const {
  port::MutexLock l(&mu_);
  WalStats stats = stats_;
  const SparePool::Counters spare = spares_.counters();
  stats.spares_zero_filled = spare.zero_filled;
  stats.spares_recycled = spare.recycled;
  stats.spare_failures = spare.failures;
  for (const auto& seg : segments_) {
    if (seg->readable_size == 0) continue;  // creation not written yet
    stats.segments_on_disk++;
    stats.bytes_on_disk += seg->sealed
                               ? seg->readable_size
                               : std::max(seg->readable_size, seg->spare_size);
  }
  stats.durable_lsn = durable_lsn_;
  stats.direct_io = direct_io_active_;
  stats.direct_io_fallback = direct_io_fallback_;
  stats.poisoned = !poisoned_.ok();
  if (stats.poisoned) stats.poisoned_reason = poisoned_.ToString();
  return stats;
}

// ---------------------------------------------------------------------------
// Reading.

absl::StatusOr<std::vector<SegmentView>> SegmentedWal::Impl::Snapshot(
    uint64_t* from_lsn_ptr, std::shared_ptr<const KeyRing>* ring) {
  absl::Status s = Drain(/*sync=*/false);
  if (!s.ok()) return s;
  port::MutexLock l(&mu_);
  // Every segment under its own name (a background seal renames the next).
  (void)WaitForSealLocked();  // (a poisoned log still reads)
  if (ring != nullptr) *ring = ring_;
  const uint64_t floor = segments_.front()->first_lsn;
  if (*from_lsn_ptr == 0) *from_lsn_ptr = floor;  // "from the start"
  const uint64_t from_lsn = *from_lsn_ptr;
  if (from_lsn < floor) {
    return absl::OutOfRangeError(absl::StrCat(
        "LSN ", from_lsn, " was truncated: the log starts at LSN ", floor));
  }
  std::vector<SegmentView> views;
  // The last segment whose first LSN is <= from_lsn holds it.
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), from_lsn,
      [](uint64_t lsn, const std::shared_ptr<Segment>& seg) {
        return lsn < seg->first_lsn;
      });
  if (it != segments_.begin()) --it;
  bool first = true;
  for (; it != segments_.end(); ++it) {
    const Segment& seg = **it;
    if (seg.readable_size < kSegmentHeaderSize) break;  // not created yet
    SegmentView v{seg.path,          seg.first_lsn,          seg.readable_last_lsn,
                  seg.readable_size, seg.has_skipped_damage, seg.skips, {}};
    v.encrypted = seg.encrypted;
    if (first) {
      for (const IndexEntry& e : seg.index) {
        if (e.offset >= seg.readable_size) break;
        v.index.push_back(e);
      }
      first = false;
    }
    views.push_back(std::move(v));
  }
  return views;
}

absl::StatusOr<std::vector<SegmentMeta>> SegmentedWal::Impl::ListSegments() {
  absl::Status s = Drain(/*sync=*/false);
  if (!s.ok()) return s;
  port::MutexLock l(&mu_);
  (void)WaitForSealLocked();  // as in Snapshot
  std::vector<SegmentMeta> out;
  for (const auto& seg : segments_) {
    if (seg->readable_size == 0) continue;
    out.push_back({seg->path, seg->first_lsn,
                   seg->sealed ? seg->readable_size
                               : std::max(seg->readable_size, seg->spare_size)});
  }
  return out;
}


// ---------------------------------------------------------------------------
// Key rotation.

absl::Status SegmentedWal::Impl::InstallRing(KeyRing ring, bool rotate) {
  auto shared = std::make_shared<const KeyRing>(std::move(ring));
  port::MutexLock l(&mu_);
  // Become the I/O token holder with nothing queued, so the active segment's
  // file exists and no op on it is pending.
  while (true) {
    if (!poisoned_.ok()) return poisoned_;
    if (io_busy_) {
      cv_.Wait(&mu_);
      continue;
    }
    if (ops_.empty()) break;
    absl::Status s = RunQueuedLocked(/*sync=*/false);
    if (!s.ok()) return s;
  }
  std::shared_ptr<Segment> active = segments_.back();
  std::shared_ptr<Segment> replaced;
  if (active->record_count == 0) {
    // Nothing was sealed under the active segment's key: replace it (same
    // name, fresh salt, the new key) instead of sealing an empty segment.
    replaced = active;
    segments_.pop_back();
  } else if (!rotate) {
    return absl::FailedPreconditionError(absl::StrCat(
        "SetEncryptionRing: the active segment ", active->path, " already holds ",
        active->record_count, " records (LSNs ", active->first_lsn, "..",
        active->framed_last_lsn,
        "), which are never re-encrypted; use RotateEncryptionRing to encrypt "
        "from a new segment on"));
  }
  ring_ = shared;
  rings_.push_back(shared);
  if (replaced != nullptr) {
    StartSegmentLocked();
  } else {
    RollLocked();  // seal the active segment; the next one uses the new key
  }
  absl::Status s = RunQueuedLocked(/*sync=*/true, [this, &replaced] {
    io_token_.AssertHeld();
    absl::Status st;
    if (replaced != nullptr) {
      Segment::FileState& io = replaced->io(io_token_);
      if (io.file != nullptr) {
        st = Annotate(io.file->Close(), "closing " + replaced->path);
        io.file.reset();
      }
    }
    return st;
  });
  if (!s.ok()) PoisonLocked(s);
  return poisoned_;
}

void SegmentedWal::Impl::StartSpareThread() {
  spares_.Start([this](const absl::Status& s) {
    port::MutexLock l(&mu_);
    PoisonLocked(s);
  });
}

SegmentedWal::Impl::~Impl() {
  {
    port::MutexLock l(&mu_);
    closing_ = true;
  }
  spares_.Stop();
  syncer_cv_.SignalAll();  // it serves whoever is still queued, then ends
  std::thread syncer;
  {
    port::MutexLock l(&mu_);
    syncer.swap(syncer_thread_);
  }
  if (syncer.joinable()) syncer.join();
  absl::Status s = Drain(/*sync=*/false);
  (void)s;  // Close does not promise durability; errors were already reported
  std::thread sealer;
  {
    port::MutexLock l(&mu_);
    sealer_stop_ = true;  // after the last seal Drain may have handed over
    sealer.swap(sealer_thread_);
  }
  sealer_cv_.SignalAll();
  if (sealer.joinable()) sealer.join();
  IoTokenHold token(this);  // every thread that could hold it has ended
  port::MutexLock l(&mu_);
  for (auto& seg : segments_) {
    Segment::FileState& io = seg->io(io_token_);
    if (io.file != nullptr && io.in_spare && poisoned_.ok() &&
        io.file->Flush().ok()) {
      // Leave no spare bytes after the last record of a cleanly closed log
      // (not synced: Close is not a sync, and a crash leaves zeros or stale
      // bytes that recovery cuts as it always does).
      (void)env_->TruncateFile(seg->path, seg->readable_size);
    }
    if (io.file != nullptr) {
      (void)io.file->Close();
      io.file.reset();
    }
  }
  if (lock_ != nullptr) (void)env_->UnlockFile(std::move(lock_));
}

// ---------------------------------------------------------------------------
// SegmentedWal.

SegmentedWal::SegmentedWal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SegmentedWal::~SegmentedWal() = default;

absl::StatusOr<std::unique_ptr<SegmentedWal>> SegmentedWal::Open(
    const SegmentedWalOptions& options) {
  if (options.wal_dir.empty()) {
    return absl::InvalidArgumentError("SegmentedWalOptions.wal_dir is empty");
  }
  if (options.segment_target_size == 0) {
    return absl::InvalidArgumentError(
        "SegmentedWalOptions.segment_target_size must be > 0");
  }
  if (options.max_record_size == 0 || options.max_record_size > (1u << 31)) {
    return absl::InvalidArgumentError(
        "SegmentedWalOptions.max_record_size must be in (0, 2 GiB]");
  }
  if (options.write_buffer_size == 0) {
    return absl::InvalidArgumentError(
        "SegmentedWalOptions.write_buffer_size must be > 0");
  }
  if (options.replay_threads > kMaxReplayThreads) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SegmentedWalOptions.replay_threads must be <= ", kMaxReplayThreads,
        " (0: min(hardware threads, 8))"));
  }
  if (options.max_seals_in_flight == 0 ||
      options.max_seals_in_flight > kMaxSealsInFlight) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SegmentedWalOptions.max_seals_in_flight must be in [1, ",
        kMaxSealsInFlight, "], got ", options.max_seals_in_flight));
  }
  if (options.compression != Compression::kNone &&
      options.compression != Compression::kSnappy) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SegmentedWalOptions.compression has an unknown value ",
        static_cast<int>(options.compression)));
  }
  Env* env = options.env != nullptr ? options.env : Env::Default();
  std::string dir = options.wal_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  SegmentedWalOptions opts = options;
  opts.wal_dir = dir;
  // Each level Open creates is durable in its parent before any segment is
  // written in it (docs/DURABILITY.md, section 1, `Open`).
  absl::Status s = CreateDirsDurably(env, dir);
  if (!s.ok()) return Annotate(s, "creating WAL directory " + dir);
  auto lock = env->LockFile(dir + "/" + kLockFileName);
  if (!lock.ok()) {
    if (absl::IsFailedPrecondition(lock.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "WAL directory ", dir, " is already open (", lock.status().message(),
          ")"));
    }
    return Annotate(lock.status(), "locking WAL directory " + dir);
  }
  auto impl = std::make_unique<Impl>(opts, env);
  impl->lock_ = std::move(*lock);
  s = impl->Recover();
  if (!s.ok()) {
    // Nothing was written; release the lock without the destructor's flush.
    {
      port::MutexLock l(&impl->mu_);
      impl->PoisonLocked(s);
    }
    return s;
  }
  bool writable;
  {
    port::MutexLock l(&impl->mu_);
    writable = impl->poisoned_.ok();
  }
  if (writable) impl->StartSpareThread();
  return std::unique_ptr<SegmentedWal>(new SegmentedWal(std::move(impl)));
}

absl::Status SegmentedWal::SetEncryptionRing(KeyRing ring) {
  return impl_->InstallRing(std::move(ring), /*rotate=*/false);
}

absl::Status SegmentedWal::RotateEncryptionRing(KeyRing ring) {
  return impl_->InstallRing(std::move(ring), /*rotate=*/true);
}

const KeyRing* SegmentedWal::encryption_ring() const { return impl_->ring(); }

absl::StatusOr<uint64_t> SegmentedWal::Append(uint32_t record_type,
                                              uint64_t tenant_id,
                                              uint32_t vshard_id,
                                              uint64_t database_id,
                                              absl::string_view payload) {
  return impl_->Append(record_type, tenant_id, vshard_id, database_id, payload);
}

absl::Status SegmentedWal::Sync() { return impl_->Sync(); }
absl::Status SegmentedWal::Flush() { return impl_->Flush(); }
uint64_t SegmentedWal::next_lsn() const { return impl_->next_lsn(); }
uint64_t SegmentedWal::active_segment_first_lsn() const {
  return impl_->active_segment_first_lsn();
}
const std::string& SegmentedWal::wal_dir() const {
  return impl_->options().wal_dir;
}
uint64_t SegmentedWal::durable_lsn() const { return impl_->durable_lsn(); }
absl::Status SegmentedWal::poisoned_status() const {
  return impl_->poisoned_status();
}
WalStats SegmentedWal::GetStats() const { return impl_->GetStats(); }
const RecoveryReport& SegmentedWal::recovery_report() const {
  return impl_->report();
}

absl::StatusOr<TruncateResult> SegmentedWal::TruncateBefore(
    uint64_t checkpoint_lsn) {
  return impl_->TruncateBefore(checkpoint_lsn);
}

absl::StatusOr<std::unique_ptr<WalIterator>> SegmentedWal::NewIterator(
    uint64_t from_lsn) const {
  // LSNs start at 1: from_lsn 0 asks for no record that 1 would not.
  return impl_->NewIterator(std::max<uint64_t>(from_lsn, 1));
}

absl::StatusOr<std::unique_ptr<WalIterator>> SegmentedWal::Impl::NewIterator(
    uint64_t from_lsn) {
  std::shared_ptr<const KeyRing> ring;
  auto views = Snapshot(&from_lsn, &ring);
  if (!views.ok()) return views.status();
  return std::unique_ptr<WalIterator>(
      new SegmentIterator(env_, std::move(*views), from_lsn,
                          options_.max_record_size, std::move(ring)));
}

size_t SegmentedWal::Impl::ReplayThreads() const {
  if (options_.replay_threads != 0) return options_.replay_threads;
  const size_t hardware = std::thread::hardware_concurrency();
  return std::clamp<size_t>(hardware, 1, 8);
}

absl::StatusOr<ReplayPage> SegmentedWal::Impl::ReadPage(
    uint64_t from_lsn, size_t max_records) {
  std::shared_ptr<const KeyRing> ring;
  auto views = Snapshot(&from_lsn, &ring);
  if (!views.ok()) return views.status();
  ReplayOptions replay;
  replay.threads = ReplayThreads();
  replay.min_bytes_per_thread = options_.replay_min_bytes_per_thread;
  replay.max_record_size = options_.max_record_size;
  return ReadViews(env_, std::move(*views), from_lsn, max_records, replay,
                   std::move(ring));
}

absl::StatusOr<ReplayPage> SegmentedWal::ReplayFromLimit(
    uint64_t from_lsn, size_t max_records) const {
  return impl_->ReadPage(std::max<uint64_t>(from_lsn, 1), max_records);
}

absl::StatusOr<std::vector<WalRecord>> SegmentedWal::ReplayFrom(
    uint64_t from_lsn) const {
  auto page = impl_->ReadPage(std::max<uint64_t>(from_lsn, 1), SIZE_MAX);
  if (!page.ok()) return page.status();
  return std::move(page->records);
}

absl::StatusOr<std::vector<WalRecord>> SegmentedWal::Replay() const {
  auto page = impl_->ReadPage(/*from the start*/ 0, SIZE_MAX);
  if (!page.ok()) return page.status();
  return std::move(page->records);
}

absl::StatusOr<std::vector<SegmentMeta>> SegmentedWal::ListSegments() const {
  return impl_->ListSegments();
}

absl::StatusOr<uint64_t> SegmentedWal::TotalSizeBytes() const {
  auto segs = ListSegments();
  if (!segs.ok()) return segs.status();
  uint64_t total = 0;
  for (const SegmentMeta& m : *segs) total += m.file_size;
  return total;
}

}  // namespace segwal
