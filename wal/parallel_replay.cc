#include "wal/parallel_replay.h"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <system_error>
#include <thread>

namespace segwal {

using wal_format::kSegmentHeaderSize;

namespace {
// Parallel replay (SegmentedWalOptions::replay_threads). SegmentIterator
// carries no state from one segment to the next and each SegmentView is
// self-contained, so a contiguous run of the views yields exactly the records
// a walk over all of them yields for those segments: decoding runs on
// separate threads and joining them in order gives the sequential result.

// How much of view `v` a read from `from_lsn` decodes.
struct ViewWork {
  uint64_t records = 0;  // LSNs in range: an upper bound of the records
  uint64_t bytes = 0;    // estimated bytes to decode
};

ViewWork WorkOf(const SegmentView& v, uint64_t from_lsn) {
  const uint64_t first = std::max(v.first_lsn, from_lsn);
  if (v.last_lsn < first) return {};  // empty, or wholly before from_lsn
  ViewWork w;
  w.records = v.last_lsn - first + 1;
  const uint64_t body =
      v.size > kSegmentHeaderSize ? v.size - kSegmentHeaderSize : 0;
  const uint64_t all = v.last_lsn - v.first_lsn + 1;
  // A read that starts inside the segment decodes about its share of it.
  w.bytes = w.records == all
                ? body
                : static_cast<uint64_t>(static_cast<double>(body) *
                                        static_cast<double>(w.records) /
                                        static_cast<double>(all));
  // Never 0 for a view with records: every run must get one (see Partition).
  w.bytes = std::max<uint64_t>(w.bytes, 1);
  return w;
}

// Splits views [0, work.size()) into at most `runs` contiguous runs, each
// holding at least one view with work, balanced by bytes. Returns the index
// of the first view of each run (the first is 0). REQUIRES: runs >= 1, and at
// least `runs` views have work.
std::vector<size_t> Partition(const std::vector<ViewWork>& work, size_t runs) {
  // busy_after[i]: how many of the views [i, n) have work.
  std::vector<size_t> busy_after(work.size() + 1, 0);
  for (size_t i = work.size(); i-- > 0;) {
    busy_after[i] = busy_after[i + 1] + (work[i].bytes > 0 ? 1 : 0);
  }
  uint64_t left = 0;
  for (const ViewWork& w : work) left += w.bytes;
  std::vector<size_t> starts;
  size_t i = 0;
  for (size_t run = 0; run < runs; ++run) {
    starts.push_back(i);
    if (run + 1 == runs) break;
    const size_t later_runs = runs - run - 1;
    const uint64_t target = left / (runs - run);
    uint64_t taken = 0;
    while (i < work.size()) {
      // Leave one view with work for each later run.
      if (taken > 0 && busy_after[i] <= later_runs) break;
      // Stop where the run is nearest its share of what is left.
      if (taken > 0 && taken + work[i].bytes > target &&
          taken + work[i].bytes - target > target - std::min(taken, target)) {
        break;
      }
      taken += work[i].bytes;
      ++i;
    }
    left -= taken;
  }
  return starts;
}

// One run of a parallel replay.
struct ReplayRun {
  std::vector<SegmentView> views;
  uint64_t reserve = 0;  // records to reserve room for
  std::vector<WalRecord> records;
  absl::Status status;
};

// Decodes the runs, the calling thread taking the first, and joins their
// records in order; on failure returns the earliest failing run's error.
absl::StatusOr<std::vector<WalRecord>> ReplayRunsInParallel(
    Env* env, std::vector<ReplayRun> runs, uint64_t from_lsn,
    uint64_t max_record_size, const std::shared_ptr<const KeyRing>& ring) {
  // The lowest index of a failed run: later runs stop early (their records
  // would be dropped anyway).
  std::atomic<size_t> first_failed{SIZE_MAX};
  auto decode = [&](size_t index) {
    ReplayRun& run = runs[index];
    run.records.reserve(run.reserve);
    SegmentIterator it(env, std::move(run.views), from_lsn, max_record_size,
                       ring);
    for (; it.Valid(); it.Next()) {
      if (first_failed.load(std::memory_order_relaxed) < index) return;
      run.records.push_back(std::move(*it.mutable_record()));
    }
    run.status = it.status();
    if (!run.status.ok()) {
      size_t seen = first_failed.load(std::memory_order_relaxed);
      while (index < seen && !first_failed.compare_exchange_weak(
                                 seen, index, std::memory_order_relaxed)) {
      }
    }
  };
  std::vector<std::thread> threads;
  std::vector<size_t> inline_runs;  // runs no thread could be started for
  threads.reserve(runs.size() - 1);
  for (size_t i = 1; i < runs.size(); ++i) {
    try {
      threads.emplace_back(decode, i);
    } catch (const std::system_error&) {
      inline_runs.push_back(i);  // out of threads: still correct, just slower
    }
  }
  decode(0);
  for (size_t i : inline_runs) decode(i);
  for (std::thread& t : threads) t.join();
  for (const ReplayRun& run : runs) {
    if (!run.status.ok()) return run.status;
  }
  // The first run reserved room for every run's records.
  std::vector<WalRecord> records = std::move(runs[0].records);
  for (size_t i = 1; i < runs.size(); ++i) {
    std::move(runs[i].records.begin(), runs[i].records.end(),
              std::back_inserter(records));
    std::vector<WalRecord>().swap(runs[i].records);
  }
  return records;
}

}  // namespace

absl::StatusOr<ReplayPage> ReadViews(Env* env, std::vector<SegmentView> views_in,
                                     uint64_t from_lsn, size_t max_records,
                                     const ReplayOptions& options,
                                     std::shared_ptr<const KeyRing> ring) {
  std::vector<SegmentView>* views = &views_in;
  std::vector<ViewWork> work;
  work.reserve(views->size());
  uint64_t records = 0, bytes = 0;
  size_t busy_views = 0;
  for (const SegmentView& v : *views) {
    work.push_back(WorkOf(v, from_lsn));
    records += work.back().records;
    bytes += work.back().bytes;
    if (work.back().bytes > 0) ++busy_views;
  }
  ReplayPage page;
  // When every LSN of the range fits in the page, has_more is false whatever
  // the read finds, so the range may be split.
  if (max_records >= records) {
    size_t threads = std::min(options.threads, busy_views);
    if (options.min_bytes_per_thread > 0) {
      threads = static_cast<size_t>(std::min<uint64_t>(
          threads, bytes / options.min_bytes_per_thread));
    }
    if (threads >= 2) {
      const std::vector<size_t> starts = Partition(work, threads);
      std::vector<ReplayRun> runs(starts.size());
      for (size_t r = 0; r < starts.size(); ++r) {
        const size_t end =
            r + 1 < starts.size() ? starts[r + 1] : views->size();
        for (size_t i = starts[r]; i < end; ++i) {
          runs[r].views.push_back(std::move((*views)[i]));
          runs[r].reserve += work[i].records;
        }
      }
      runs[0].reserve = records;  // the joined result is built in run 0's
      auto all = ReplayRunsInParallel(env, std::move(runs), from_lsn,
                                      options.max_record_size, ring);
      if (!all.ok()) return all.status();
      page.records = std::move(*all);
      return page;
    }
  }
  // Whether a record beyond the page exists is known from the snapshot, so
  // the page does not read past its last record: damage there is the next
  // page's error, not this one's.
  uint64_t last_lsn = 0;  // of the snapshot (0: no record at all)
  for (const SegmentView& v : *views) {
    if (v.last_lsn >= v.first_lsn) last_lsn = std::max(last_lsn, v.last_lsn);
  }
  if (max_records == 0) {
    page.has_more = last_lsn >= from_lsn;
    return page;
  }
  page.records.reserve(std::min<uint64_t>(max_records, records));
  SegmentIterator it(env, std::move(*views), from_lsn,
                     options.max_record_size, std::move(ring));
  for (; it.Valid(); it.Next()) {
    page.records.push_back(std::move(*it.mutable_record()));
    if (page.records.size() == max_records) break;
  }
  if (!it.status().ok()) return it.status();
  page.has_more = page.records.size() == max_records &&
                  last_lsn > page.records.back().lsn;
  return page;
}

}  // namespace segwal
