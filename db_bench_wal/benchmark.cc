// Benchmark: running each kind of benchmark (benchmark.h).

#include "db_bench_wal/benchmark.h"

#include <gflags/gflags.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "db_bench_wal/histogram.h"
#include "db_bench_wal/raw_file.h"
#include "env/env.h"
#include "env/posix_env.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace bench {

std::atomic<bool> g_interrupted{false};

uint64_t NowNanos() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

[[noreturn]] void Die(int code, absl::string_view message) {
  fprintf(stderr, "db_bench_wal: %.*s\n", static_cast<int>(message.size()),
          message.data());
  fflush(stdout);
  exit(code);
}

std::string Plural(uint64_t n, absl::string_view noun) {
  return absl::StrCat(n, " ", noun, n == 1 ? "" : "s");
}

absl::Status Benchmark::ResetWal() {
  if (!owns_wal_) return absl::OkStatus();
  std::error_code ec;
  const std::filesystem::path scratch(scratch_dir_);
  for (const auto& entry : std::filesystem::directory_iterator(wal_dir_, ec)) {
    if (entry.path() == scratch) continue;
    std::filesystem::remove_all(entry.path(), ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("removing ", entry.path().string(), ": ", ec.message()));
    }
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("listing ", wal_dir_, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status Benchmark::WarmUpPageCache(uint64_t bytes) {
  bytes = std::min<uint64_t>(bytes, uint64_t{4} << 30);
  const std::string path = scratch_dir_ + "/warmup";
  absl::StatusOr<std::unique_ptr<RawBufferedWriter>> w =
      RawBufferedWriter::Create(path, 1 << 20, /*direct_io=*/false);
  if (!w.ok()) return w.status();
  const std::string chunk(1 << 20, 'w');
  absl::Status s;
  for (uint64_t done = 0; s.ok() && done < bytes; done += chunk.size()) {
    s = (*w)->Append(chunk);
  }
  if (s.ok()) s = (*w)->Finish();
  w->reset();
  RemoveFileQuietly(path);
  return s;
}

absl::StatusOr<std::string> Benchmark::FreshScratch(const std::string& name) {
  const std::string dir = scratch_dir_ + "/" + name;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("creating ", dir, ": ", ec.message()));
  }
  return dir;
}

absl::Status Benchmark::FillUntimed(SegmentedWal* wal, const BenchSpec& spec) {
  const uint64_t n = spec.num.value_or(FLAGS_num > 0 ? FLAGS_num : 1000000);
  fprintf(stderr,
          "%s: the log is empty; filling it with %" PRIu64
          " records of %" PRIu64 " bytes first (not timed)\n",
          spec.label.c_str(), n, spec.value_size);
  ValueGenerator values(static_cast<uint64_t>(FLAGS_seed),
                        FLAGS_compression_ratio, spec.value_size);
  for (uint64_t i = 0; i < n && !g_interrupted.load(); ++i) {
    absl::StatusOr<uint64_t> lsn =
        wal->Append(/*record_type=*/1, /*tenant_id=*/0,
                    /*vshard_id=*/static_cast<uint32_t>(i % 16),
                    /*database_id=*/0, values.Next(spec.value_size));
    if (!lsn.ok()) return lsn.status();
  }
  return wal->Sync();
}

absl::StatusOr<Result> Benchmark::RunThreads(const BenchSpec& spec,
                                             const Worker& worker) {
  stop_.store(false);
  std::vector<std::unique_ptr<ThreadState>> states;
  for (int i = 0; i < spec.threads; ++i) {
    states.push_back(std::make_unique<ThreadState>(
        i, static_cast<uint64_t>(FLAGS_seed) + 1000 * (i + 1),
        spec.value_size));
  }
  // Threads start together (the slowest-starting one does not skew the
  // rate). std::mutex rather than absl::Mutex: ThreadSanitizer sees it (the
  // system Abseil is not TSan-instrumented).
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0, finished = 0;
  bool go = false;
  std::vector<std::thread> threads;
  for (auto& st : states) {
    ThreadState* t = st.get();
    threads.emplace_back([&, t] {
      {
        std::unique_lock<std::mutex> l(mu);
        ready++;
        cv.notify_all();
        cv.wait(l, [&] { return go; });
      }
      t->start_ns = NowNanos();
      worker(t);
      t->finish_ns = NowNanos();
      std::lock_guard<std::mutex> l(mu);
      finished++;
      cv.notify_all();
    });
  }
  const int n = spec.threads;
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return ready == n; });
    go = true;
    cv.notify_all();
  }
  const uint64_t start = NowNanos();
  uint64_t last_report = start, last_done = 0;
  const double interval = FLAGS_stats_interval_seconds;
  while (true) {
    std::unique_lock<std::mutex> l(mu);
    if (cv.wait_for(l, std::chrono::milliseconds(50),
                    [&] { return finished == n; })) {
      break;
    }
    const uint64_t now = NowNanos();
    if (g_interrupted.load() ||
        (spec.duration > 0 && (now - start) * 1e-9 >= spec.duration)) {
      stop_.store(true);
    }
    if (interval > 0 && (now - last_report) * 1e-9 >= interval) {
      uint64_t done = 0;
      for (auto& st : states) done += st->done.load(std::memory_order_relaxed);
      const double secs = (now - start) * 1e-9;
      fprintf(stderr,
              "%s: %" PRIu64
              " ops in %.1f s, %.0f ops/sec (last %.1f s: %.0f "
              "ops/sec)\n",
              spec.label.c_str(), done, secs, done / secs,
              (now - last_report) * 1e-9,
              (done - last_done) / ((now - last_report) * 1e-9));
      last_report = now;
      last_done = done;
    }
  }
  for (std::thread& t : threads) t.join();

  Result r;
  r.spec = spec;
  uint64_t first_start = UINT64_MAX, last_finish = 0;
  Histogram hist;
  for (auto& st : states) {
    if (!st->status.ok()) return st->status;
    r.ops += st->done.load();
    r.bytes += st->bytes;
    r.passes += st->passes;
    r.thread_seconds += (st->finish_ns - st->start_ns - st->excluded_ns) * 1e-9;
    first_start = std::min(first_start, st->start_ns);
    last_finish = std::max(last_finish, st->finish_ns);
    hist.Merge(st->hist);
  }
  r.elapsed = n == 1 ? r.thread_seconds : (last_finish - first_start) * 1e-9;
  if (g_interrupted.load()) return absl::CancelledError("interrupted");
  if (FLAGS_histogram) {
    printf("Nanoseconds per %s (%s, %d thread%s):\n%s\n",
           spec.kind == Kind::kFillBatch ? "batch"
           : spec.kind == Kind::kReplay || spec.kind == Kind::kIterate ||
                   spec.kind == Kind::kFirstTouch
               ? "pass over the log"
               : "op",
           spec.label.c_str(), n, n == 1 ? "" : "s", hist.ToString().c_str());
  }
  return r;
}

void Benchmark::Report(const Result& r, const std::string& suffix) {
  std::string extra;
  if (r.bytes > 0) extra = absl::StrFormat("%6.1f MB/s", r.MBPerSec());
  if (!r.extra.empty()) {
    if (!extra.empty()) extra += " ";
    extra += r.extra;
  }
  printf("%-12s : %11.3f micros/op %ld ops/sec %.3f seconds %" PRIu64
         " operations;%s%s\n",
         (r.spec.label + suffix).c_str(), r.MicrosPerOp(),
         static_cast<long>(r.OpsPerSec()), r.elapsed, r.ops,
         extra.empty() ? "" : " ", extra.c_str());
  fflush(stdout);
}

// fillseq, fillsync, fillbatch.
absl::StatusOr<Result> Benchmark::Fill(const BenchSpec& spec) {
  absl::Status s = ResetWal();
  if (!s.ok()) return s;
  absl::StatusOr<std::unique_ptr<SegmentedWal>> wal_or =
      OpenWal(wal_dir_, spec.segment_size);
  if (!wal_or.ok()) return wal_or.status();
  SegmentedWal* wal = wal_or->get();
  const bool sync_each = spec.kind == Kind::kFillSync ||
                         (spec.kind == Kind::kFillSeq && FLAGS_sync);
  const uint64_t batch = spec.kind == Kind::kFillBatch ? spec.batch_size : 1;
  absl::StatusOr<Result> r = RunThreads(spec, [&](ThreadState* t) {
    const uint32_t vshard = static_cast<uint32_t>(t->tid);
    uint64_t i = 0;
    while (KeepGoing(spec, i)) {
      const uint64_t op_start = OpStart();
      uint64_t n = 0;
      for (; n < batch && KeepGoing(spec, i + n); ++n) {
        absl::StatusOr<uint64_t> lsn =
            wal->Append(/*record_type=*/1, /*tenant_id=*/t->tid + 1, vshard,
                        /*database_id=*/0, t->values.Next(spec.value_size));
        if (!lsn.ok()) {
          t->status = lsn.status();
          return;
        }
        if (sync_each) {
          absl::Status st = wal->Sync();
          if (!st.ok()) {
            t->status = st;
            return;
          }
        }
      }
      if (spec.kind == Kind::kFillBatch) {
        absl::Status st = wal->Sync();
        if (!st.ok()) {
          t->status = st;
          return;
        }
      }
      i += n;
      t->bytes += n * spec.value_size;
      FinishedOps(t, n, op_start);
    }
    // Unsynced fills end with the records handed to the OS, as rawwrite does.
    if (!sync_each && spec.kind != Kind::kFillBatch) t->status = wal->Flush();
  });
  if (!r.ok()) return r;
  absl::StatusOr<std::vector<SegmentMeta>> segs = wal->ListSegments();
  if (segs.ok()) {
    r->extra = absl::StrCat("(", Plural(segs->size(), "segment"), ")");
    const WalStats st = wal->GetStats();
    if (FLAGS_use_direct_io && st.bytes_written > 0) {
      // The space block alignment costs: padding frames in what was written.
      r->extra = absl::StrFormat(
          "(%s, %s, %.0f%% padding)", Plural(segs->size(), "segment"),
          st.direct_io ? "O_DIRECT" : "buffered: direct I/O refused",
          100.0 * static_cast<double>(st.padding_bytes) /
              static_cast<double>(st.bytes_written));
    }
  }
  if (FLAGS_statistics) {
    printf("WAL statistics (%s):\n%s\n", spec.label.c_str(),
           wal->GetStats().ToString().c_str());
  }
  return r;
}

// replay, iterate.
absl::StatusOr<Result> Benchmark::Read(const BenchSpec& spec) {
  absl::StatusOr<std::unique_ptr<SegmentedWal>> wal_or =
      OpenWal(wal_dir_, spec.segment_size);
  if (!wal_or.ok()) return wal_or.status();
  SegmentedWal* wal = wal_or->get();
  if (wal->next_lsn() == 1) {
    absl::Status s = FillUntimed(wal, spec);
    if (!s.ok()) return s;
  }
  absl::StatusOr<std::vector<SegmentMeta>> segs = wal->ListSegments();
  if (!segs.ok()) return segs.status();
  const uint64_t first_lsn = segs->empty() ? 1 : segs->front().first_lsn;
  const uint64_t expected = wal->next_lsn() - first_lsn;
  absl::StatusOr<Result> r = RunThreads(spec, [&](ThreadState* t) {
    uint64_t pass = 0;
    while (!stop_.load(std::memory_order_relaxed) &&
           (pass == 0 || spec.duration > 0)) {
      const uint64_t op_start = OpStart();
      uint64_t records = 0, bytes = 0;
      if (spec.kind == Kind::kReplay) {
        absl::StatusOr<std::vector<WalRecord>> all = wal->Replay();
        if (!all.ok()) {
          t->status = all.status();
          return;
        }
        records = all->size();
        for (const WalRecord& rec : *all) bytes += rec.payload.size();
      } else {
        absl::StatusOr<std::unique_ptr<WalIterator>> it =
            wal->NewIterator(first_lsn);
        if (!it.ok()) {
          t->status = it.status();
          return;
        }
        for (; (*it)->Valid(); (*it)->Next()) {
          records++;
          bytes += (*it)->record().payload.size();
        }
        if (!(*it)->status().ok()) {
          t->status = (*it)->status();
          return;
        }
      }
      if (records != expected) {
        t->status = absl::DataLossError(
            absl::StrCat(spec.label, " read ", records,
                         " records, the log holds ", expected));
        return;
      }
      t->bytes += bytes;
      pass++;
      t->passes++;
      // One histogram sample per pass.
      FinishedOps(t, records, op_start);
    }
  });
  if (!r.ok()) return r;
  r->extra =
      absl::StrCat("(", expected, " records, ", Plural(segs->size(), "segment"),
                   ", ", r->passes, r->passes == 1 ? " pass)" : " passes)");
  return r;
}

absl::StatusOr<Result> Benchmark::OpenRecover(const BenchSpec& spec) {
  uint64_t log_bytes = 0, segments = 0;
  {
    absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
        OpenWal(wal_dir_, spec.segment_size);
    if (!wal.ok()) return wal.status();
    if ((*wal)->next_lsn() == 1) {
      absl::Status s = FillUntimed(wal->get(), spec);
      if (!s.ok()) return s;
    }
    // A synced tail, so Open measures recovery, not writeback of dirty pages.
    absl::Status s = (*wal)->Sync();
    if (!s.ok()) return s;
    absl::StatusOr<uint64_t> size = (*wal)->TotalSizeBytes();
    absl::StatusOr<std::vector<SegmentMeta>> segs = (*wal)->ListSegments();
    if (!size.ok()) return size.status();
    if (!segs.ok()) return segs.status();
    log_bytes = *size;
    segments = segs->size();
  }
  uint64_t records = 0;
  absl::StatusOr<Result> r = RunThreads(spec, [&](ThreadState* t) {
    for (uint64_t i = 0; KeepGoing(spec, i); ++i) {
      const uint64_t op_start = NowNanos();
      absl::StatusOr<std::unique_ptr<SegmentedWal>> wal =
          OpenWal(wal_dir_, spec.segment_size);
      const uint64_t opened = NowNanos();
      if (!wal.ok()) {
        t->status = wal.status();
        return;
      }
      records = (*wal)->recovery_report().records_recovered;
      t->bytes += log_bytes;
      t->done.store(i + 1, std::memory_order_relaxed);
      if (FLAGS_histogram) t->hist.Add(opened - op_start);
      wal->reset();  // closing is not part of Open
      t->excluded_ns += NowNanos() - opened;
    }
  });
  if (!r.ok()) return r;
  r->extra = absl::StrFormat("(%" PRIu64 " segments, %.1f MB log, %" PRIu64
                             " records recovered)",
                             segments, log_bytes / 1048576.0, records);
  return r;
}

absl::StatusOr<Result> Benchmark::Rollover(const BenchSpec& spec) {
  absl::StatusOr<std::string> dir = FreshScratch("rollover");
  if (!dir.ok()) return dir.status();
  const uint64_t segment_size = spec.segment_size_given ? spec.segment_size : 1;
  absl::StatusOr<Result> r;
  {
    absl::StatusOr<std::unique_ptr<SegmentedWal>> wal_or =
        OpenWal(*dir, segment_size);
    if (!wal_or.ok()) return wal_or.status();
    SegmentedWal* wal = wal_or->get();
    r = RunThreads(spec, [&](ThreadState* t) {
      for (uint64_t i = 0; KeepGoing(spec, i); ++i) {
        const uint64_t op_start = OpStart();
        absl::StatusOr<uint64_t> lsn =
            wal->Append(1, t->tid + 1, 0, 0, t->values.Next(spec.value_size));
        if (!lsn.ok()) {
          t->status = lsn.status();
          return;
        }
        t->bytes += spec.value_size;
        FinishedOps(t, 1, op_start);
      }
    });
    if (r.ok()) {
      absl::StatusOr<std::vector<SegmentMeta>> segs = wal->ListSegments();
      if (segs.ok()) {
        r->extra =
            absl::StrCat("(", Plural(segs->size() - 1, "segment roll"), ")");
      }
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(*dir, ec);
  return r;
}

absl::StatusOr<Result> Benchmark::Truncate(const BenchSpec& spec) {
  absl::StatusOr<std::string> dir = FreshScratch("truncate");
  if (!dir.ok()) return dir.status();
  const uint64_t segment_size = spec.segment_size_given ? spec.segment_size : 1;
  // Each call deletes one segment, so the run needs that many sealed ones.
  const uint64_t want = spec.duration > 0 && !spec.num.has_value()
                            ? std::max<uint64_t>(1, FLAGS_num / 1000)
                            : spec.OpsPerThread();
  absl::StatusOr<Result> r;
  {
    absl::StatusOr<std::unique_ptr<SegmentedWal>> wal_or =
        OpenWal(*dir, segment_size);
    if (!wal_or.ok()) return wal_or.status();
    SegmentedWal* wal = wal_or->get();
    ValueGenerator values(static_cast<uint64_t>(FLAGS_seed),
                          FLAGS_compression_ratio, spec.value_size);
    fprintf(stderr, "%s: creating %" PRIu64 " segments first (not timed)\n",
            spec.label.c_str(), want);
    uint64_t rolls = 0, active = wal->active_segment_first_lsn();
    while (rolls < want && !g_interrupted.load()) {
      absl::StatusOr<uint64_t> lsn =
          wal->Append(1, 1, 0, 0, values.Next(spec.value_size));
      if (!lsn.ok()) return lsn.status();
      if (wal->active_segment_first_lsn() != active) {
        active = wal->active_segment_first_lsn();
        rolls++;
      }
    }
    absl::StatusOr<std::vector<SegmentMeta>> segs = wal->ListSegments();
    if (!segs.ok()) return segs.status();
    BenchSpec timed = spec;
    timed.num = static_cast<int64_t>(segs->size() - 1);
    timed.duration = 0;
    r = RunThreads(timed, [&](ThreadState* t) {
      for (uint64_t i = 0; KeepGoing(timed, i); ++i) {
        const uint64_t op_start = OpStart();
        absl::StatusOr<TruncateResult> tr =
            wal->TruncateBefore((*segs)[i + 1].first_lsn);
        if (!tr.ok()) {
          t->status = tr.status();
          return;
        }
        if (tr->segments_deleted != 1) {
          t->status = absl::InternalError(absl::StrCat(
              "TruncateBefore(", (*segs)[i + 1].first_lsn, ") deleted ",
              tr->segments_deleted, " segments, expected 1"));
          return;
        }
        t->bytes += tr->bytes_reclaimed;
        FinishedOps(t, 1, op_start);
      }
    });
    if (r.ok()) {
      r->spec = spec;
      r->extra = "(one segment deleted per call)";
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(*dir, ec);
  return r;
}

// rawsync, rawwrite.
absl::StatusOr<Result> Benchmark::Raw(const BenchSpec& spec) {
  absl::StatusOr<std::string> dir = FreshScratch("raw");
  if (!dir.ok()) return dir.status();
  const size_t record_size = kRecordHeaderBytes + spec.value_size;
  const Prealloc prealloc = spec.prealloc;
  // Preallocate what the run writes (when known), at most 256 MiB per thread;
  // writes wrap around inside the preallocated range.
  const uint64_t prealloc_bytes =
      spec.duration > 0 ? uint64_t{64} << 20
                        : std::min<uint64_t>(spec.OpsPerThread() * record_size,
                                             uint64_t{256} << 20);
  std::vector<std::unique_ptr<RawSyncWriter>> syncers;
  std::vector<std::unique_ptr<RawBufferedWriter>> writers;
  for (int i = 0; i < spec.threads; ++i) {
    const std::string path = absl::StrCat(
        *dir, "/", spec.kind == Kind::kRawSync ? "rawsync." : "rawwrite.", i);
    if (spec.kind == Kind::kRawSync) {
      auto w = RawSyncWriter::Create(path, prealloc, prealloc_bytes,
                                     FLAGS_use_direct_io, record_size);
      if (!w.ok()) return w.status();
      syncers.push_back(std::move(*w));
    } else {
      auto w = RawBufferedWriter::Create(
          path, static_cast<size_t>(FLAGS_write_buffer_size),
          FLAGS_use_direct_io);
      if (!w.ok()) return w.status();
      writers.push_back(std::move(*w));
    }
  }
  absl::StatusOr<Result> r = RunThreads(spec, [&](ThreadState* t) {
    // The record: 56 header-like bytes, then the value, as the WAL frames
    // it. rawwrite copies both straight into its buffer (one copy, as the WAL
    // frames into its staging buffer); rawsync needs them contiguous.
    std::string record(record_size, '\0');
    for (uint64_t i = 0; KeepGoing(spec, i); ++i) {
      const uint64_t op_start = OpStart();
      const absl::string_view head = t->values.Next(kRecordHeaderBytes);
      const absl::string_view value = t->values.Next(spec.value_size);
      absl::Status s;
      if (spec.kind == Kind::kRawSync) {
        memcpy(record.data(), head.data(), head.size());
        memcpy(record.data() + kRecordHeaderBytes, value.data(), value.size());
        s = syncers[t->tid]->WriteAndSync(record);
      } else {
        s = writers[t->tid]->Append(head);
        if (s.ok()) s = writers[t->tid]->Append(value);
      }
      if (!s.ok()) {
        t->status = s;
        return;
      }
      t->bytes += spec.value_size;
      FinishedOps(t, 1, op_start);
    }
    if (spec.kind == Kind::kRawWrite) t->status = writers[t->tid]->Finish();
  });
  syncers.clear();
  writers.clear();
  std::error_code ec;
  std::filesystem::remove_all(*dir, ec);
  if (r.ok() && spec.kind == Kind::kRawSync) {
    r->extra = absl::StrCat("(prealloc ", PreallocName(prealloc),
                            FLAGS_use_direct_io ? ", O_DIRECT)" : ")");
  } else if (r.ok() && FLAGS_use_direct_io) {
    r->extra = "(O_DIRECT)";
  }
  return r;
}

// firsttouch: what Replay() of a log of num records costs in memory alone.
// Replay() decodes on up to replay_threads threads (fewer when the log holds
// less than SegmentedWalOptions::replay_min_bytes_per_thread per thread),
// each into its own vector, the first reserving room for every record; the
// others are moved into it. Each record's payload is its own std::string, so
// a malloc and a copy of value_size bytes. This does the same with the bytes
// of a value pool instead of segment files, and frees the result inside the
// timed pass as the replay benchmark does. Where fresh memory is slow to
// back (a VM whose host maps guest pages on first touch), this is the
// ceiling replay cannot beat.
absl::StatusOr<Result> Benchmark::FirstTouch(const BenchSpec& spec) {
  const uint64_t records = spec.OpsPerThread();
  const uint64_t payload_bytes = records * spec.value_size;
  size_t threads = FLAGS_replay_threads != 0
                       ? static_cast<size_t>(FLAGS_replay_threads)
                       : std::clamp<size_t>(std::thread::hardware_concurrency(),
                                            1, 8);
  const uint64_t min_bytes = SegmentedWalOptions().replay_min_bytes_per_thread;
  if (min_bytes > 0) {
    threads = static_cast<size_t>(std::clamp<uint64_t>(
        (payload_bytes + records * kRecordHeaderBytes) / min_bytes, 1,
        threads));
  }
  threads = static_cast<size_t>(std::min<uint64_t>(threads, records));
  absl::StatusOr<Result> r = RunThreads(spec, [&](ThreadState* t) {
    // Every share copies from the same pool slice (values are not what is
    // measured); one slice of value_size bytes per record.
    const absl::string_view value = t->values.Next(spec.value_size);
    uint64_t pass = 0;
    while (!stop_.load(std::memory_order_relaxed) &&
           (pass == 0 || spec.duration > 0)) {
      const uint64_t op_start = OpStart();
      std::vector<std::vector<WalRecord>> shares(threads);
      auto build = [&](size_t share) {
        const uint64_t begin = records * share / threads;
        const uint64_t end = records * (share + 1) / threads;
        std::vector<WalRecord>& out = shares[share];
        out.reserve(share == 0 ? records : end - begin);
        for (uint64_t i = begin; i < end; ++i) {
          WalRecord rec;
          rec.lsn = i + 1;
          rec.record_type = 1;
          rec.vshard_id = static_cast<uint32_t>(i % 16);
          rec.payload.assign(value.data(), value.size());
          out.push_back(std::move(rec));
        }
      };
      std::vector<std::thread> helpers;
      for (size_t i = 1; i < threads; ++i) helpers.emplace_back(build, i);
      build(0);
      for (std::thread& h : helpers) h.join();
      std::vector<WalRecord> all = std::move(shares[0]);
      for (size_t i = 1; i < threads; ++i) {
        std::move(shares[i].begin(), shares[i].end(), std::back_inserter(all));
        std::vector<WalRecord>().swap(shares[i]);
      }
      uint64_t bytes = 0;
      for (const WalRecord& rec : all) bytes += rec.payload.size();
      std::vector<WalRecord>().swap(all);
      t->bytes += bytes;
      pass++;
      t->passes++;
      FinishedOps(t, records, op_start);
    }
  });
  if (!r.ok()) return r;
  r->extra = absl::StrCat("(", records, " records, ",
                          Plural(threads, "thread"), ", ",
                          r->passes, r->passes == 1 ? " pass)" : " passes)");
  return r;
}

absl::Status Benchmark::Run(const BenchSpec& spec) {
  std::vector<Result> runs;
  for (int i = 0; i < spec.repeats; ++i) {
    absl::StatusOr<Result> r = RunOnce(spec);
    if (!r.ok()) return r.status();
    Report(*r);
    runs.push_back(*std::move(r));
  }
  if (runs.size() == 1) {
    results_.push_back(runs[0]);
    return absl::OkStatus();
  }
  // The median run by ops/sec (of an even count, the faster middle one)
  // stands for the benchmark in --compare.
  std::sort(runs.begin(), runs.end(), [](const Result& a, const Result& b) {
    return a.OpsPerSec() > b.OpsPerSec();
  });
  const Result& median = runs[(runs.size() - 1) / 2];
  Report(median, absl::StrCat(" [MEDIAN ", runs.size(), " runs]"));
  results_.push_back(median);
  return absl::OkStatus();
}

absl::StatusOr<Result> Benchmark::RunOnce(const BenchSpec& spec) {
  if (FLAGS_warmup_page_cache && spec.duration == 0 &&
      (spec.kind == Kind::kFillSeq || spec.kind == Kind::kFillBatch ||
       spec.kind == Kind::kRawWrite)) {
    absl::Status s = WarmUpPageCache(spec.OpsPerThread() * spec.threads *
                                     (spec.value_size + kRecordHeaderBytes));
    if (!s.ok()) return s;
  }
  absl::StatusOr<Result> r;
  switch (spec.kind) {
    case Kind::kFillSeq:
    case Kind::kFillSync:
    case Kind::kFillBatch:
      r = Fill(spec);
      break;
    case Kind::kReplay:
    case Kind::kIterate:
      r = Read(spec);
      break;
    case Kind::kOpenRecover:
      r = OpenRecover(spec);
      break;
    case Kind::kRollover:
      r = Rollover(spec);
      break;
    case Kind::kTruncate:
      r = Truncate(spec);
      break;
    case Kind::kRawSync:
    case Kind::kRawWrite:
      r = Raw(spec);
      break;
    case Kind::kFirstTouch:
      r = FirstTouch(spec);
      break;
  }
  return r;
}

}  // namespace bench
}  // namespace segwal
