// WalHistogram and WalStats (declared in wal/segmented_wal.h).

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "wal/segmented_wal.h"

namespace segwal {

namespace {

int BucketOf(uint64_t value) {
  if (value == 0) return 0;
  return 64 - __builtin_clzll(value);  // [2^(i-1), 2^i) -> i
}

// Inclusive lower and exclusive upper bound of bucket i, as text.
std::string BucketRange(int i) {
  if (i == 0) return "[0,1)";
  const uint64_t lo = uint64_t{1} << (i - 1);
  if (i == 64) return absl::StrCat("[", lo, ",inf)");
  return absl::StrCat("[", lo, ",", uint64_t{1} << i, ")");
}

}  // namespace

void WalHistogram::Add(uint64_t value) {
  buckets[BucketOf(value)]++;
  if (count == 0 || value < min) min = value;
  if (value > max) max = value;
  count++;
  sum += value;
}

double WalHistogram::Average() const {
  return count == 0 ? 0.0
                    : static_cast<double>(sum) / static_cast<double>(count);
}

uint64_t WalHistogram::Percentile(double p) const {
  if (count == 0) return 0;
  const double want =
      static_cast<double>(count) * std::clamp(p, 0.0, 100.0) / 100.0;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (buckets[i] != 0 && static_cast<double>(seen) >= want) {
      const uint64_t upper = i == 0    ? 0
                             : i == 64 ? max
                                       : (uint64_t{1} << i) - 1;
      return std::min(upper, max);
    }
  }
  return max;
}

std::string WalHistogram::ToString() const {
  std::string out =
      absl::StrFormat("count=%d avg=%.1f min=%d max=%d p50<=%d p99<=%d", count,
                      Average(), min, max, Percentile(50), Percentile(99));
  if (count == 0) return out;
  absl::StrAppend(&out, " |");
  for (int i = 0; i < kBuckets; ++i) {
    if (buckets[i] != 0)
      absl::StrAppend(&out, " ", BucketRange(i), ":", buckets[i]);
  }
  return out;
}

std::string WalStats::ToString() const {
  std::string out;
  auto line = [&out](absl::string_view name, const auto& value) {
    absl::StrAppend(&out, name, ": ", value, "\n");
  };
  line("appends", appends);
  line("bytes_appended", bytes_appended);
  line("bytes_framed", bytes_framed);
  line("bytes_written", bytes_written);
  line("sync_requests", sync_requests);
  line("syncs", syncs);
  line("records_per_sync", records_per_sync.ToString());
  line("sync_latency_micros", sync_latency_micros.ToString());
  line("rollovers", rollovers);
  line("segments_deleted", segments_deleted);
  line("spares_zero_filled", spares_zero_filled);
  line("spares_recycled", spares_recycled);
  line("segments_from_spares", segments_from_spares);
  line("spare_failures", spare_failures);
  line("padding_bytes", padding_bytes);
  line("direct_io",
       direct_io ? std::string("on")
                 : direct_io_fallback.empty()
                       ? std::string("off")
                       : absl::StrCat("off (", direct_io_fallback, ")"));
  line("segments_on_disk", segments_on_disk);
  line("bytes_on_disk", bytes_on_disk);
  line("durable_lsn", durable_lsn);
  line("poisoned", poisoned ? absl::StrCat("yes (", poisoned_reason, ")")
                            : std::string("no"));
  return out;
}

}  // namespace segwal
