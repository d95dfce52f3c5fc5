// segkv_recovery_bench: how long KvStore::Open takes on a store of --keys keys
// rebuilt from a checkpoint plus the log after it, and the share of that time
// spent replaying the log (KvStore::recovery_report()).
//
// Fills --keys keys (SET, --value_size bytes) in a temporary directory under
// --dir, checkpoints once --checkpoint_at of them are written, writes the
// rest, closes, then times Open (--opens times; the median is reported) and
// prints one line:
//   segkv recovery: 1000000 keys, open 812.3 ms (checkpoint 401.2 ms, 500000
//   keys; log replay 380.1 ms, 500000 records = 46.8% of the open)

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gflags/gflags.h"
#include "kv/kv_store.h"

DEFINE_string(dir, "", "Parent of the temporary store (default $TMPDIR or /tmp)");
DEFINE_int64(keys, 1000000, "Keys in the store");
DEFINE_double(checkpoint_at, 0.5, "Checkpoint after this share of the keys");
DEFINE_int32(value_size, 100, "Value bytes");
DEFINE_int32(opens, 3, "Opens timed (median reported)");

namespace {

[[noreturn]] void Die(const std::string& message) {
  fprintf(stderr, "segkv_recovery_bench: %s\n", message.c_str());
  exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  using segwal::kv::KvStore;
  std::string parent = FLAGS_dir;
  if (parent.empty()) parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  std::string root = parent + "/segkv_recovery_bench.XXXXXX";
  if (mkdtemp(root.data()) == nullptr) Die("mkdtemp in " + parent);

  segwal::kv::KvStoreOptions options;
  options.dir = root + "/store";
  options.checkpoint_every_bytes = 0;  // one checkpoint, where we say
  const int64_t checkpoint_at =
      static_cast<int64_t>(FLAGS_checkpoint_at * static_cast<double>(FLAGS_keys));
  {
    auto store = KvStore::Open(options);
    if (!store.ok()) Die(store.status().ToString());
    std::string value(static_cast<size_t>(FLAGS_value_size), 'v');
    uint64_t last = 0;
    for (int64_t i = 0; i < FLAGS_keys; ++i) {
      if (i == checkpoint_at) {
        if (auto c = (*store)->Checkpoint(); !c.ok()) Die(c.status().ToString());
      }
      const std::string key = absl::StrFormat("key%010d", i);
      memcpy(value.data(), key.data(), std::min(key.size(), value.size()));
      segwal::kv::Mutation m;
      m.keys = {key};
      m.values = {value};
      auto w = (*store)->Submit(m);
      if (!w.ok()) Die(w.status().ToString());
      last = w->lsn;
      if (i % 10000 == 9999) {
        if (auto s = (*store)->WaitDurable(last); !s.ok()) Die(s.ToString());
      }
    }
    if (auto s = (*store)->WaitDurable(last); !s.ok()) Die(s.ToString());
  }
  std::vector<double> open_ms;
  segwal::kv::KvRecoveryReport report;
  for (int i = 0; i < std::max(1, FLAGS_opens); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto store = KvStore::Open(options);
    const auto t1 = std::chrono::steady_clock::now();
    if (!store.ok()) Die(store.status().ToString());
    if ((*store)->DbSize().integer != FLAGS_keys) {
      Die(absl::StrCat("reopened store has ", (*store)->DbSize().integer, " keys, not ",
                       FLAGS_keys));
    }
    open_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    report = (*store)->recovery_report();
  }
  std::sort(open_ms.begin(), open_ms.end());
  const double open = open_ms[open_ms.size() / 2];
  const double ckpt = report.checkpoint_load_micros / 1e3;
  const double replay = report.log_replay_micros / 1e3;
  if (!report.rejected_checkpoints.empty()) {
    fprintf(stderr, "segkv_recovery_bench: rejected checkpoint: %s\n",
            report.rejected_checkpoints[0].c_str());
  }
  printf("segkv recovery: %lld keys, open %.1f ms (median of %zu; checkpoint %.1f ms, "
         "%llu keys; log replay %.1f ms, %llu records = %.1f%% of the open)\n",
         static_cast<long long>(FLAGS_keys), open, open_ms.size(), ckpt,
         static_cast<unsigned long long>(report.checkpoint_keys), replay,
         static_cast<unsigned long long>(report.log_records_replayed),
         open > 0 ? 100.0 * replay / open : 0.0);
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  return 0;
}
