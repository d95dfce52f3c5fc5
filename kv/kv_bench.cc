// segkv_recovery_bench: what checkpoints and recovery cost a KvStore.
//
//   1. Fills --keys keys of --value_size bytes (Submit, one WaitDurable at the
//      end of each half), taking a foreground checkpoint at --checkpoint_at.
//   2. Starts a background checkpoint while one thread keeps writing, and
//      reports the longest a single write waited: the promise is that writers
//      stop only while the map's handles are copied (CheckpointInfo::pause).
//   3. Closes the store and times Open: checkpoint load and log replay, with
//      the log's share.
// Prints one line per measurement, prefixed "segkv:" (bench_suite parses them).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"
#include "kv/kv_store.h"

DEFINE_string(dir, "", "data directory (default: a new one under $TMPDIR)");
DEFINE_uint64(keys, 1000000, "keys in the store at the end");
DEFINE_uint64(value_size, 100, "bytes per value");
DEFINE_double(checkpoint_at, 0.5, "share of the keys written before the checkpoint Open starts from");

namespace segwal {
namespace kv {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int Fail(const absl::Status& s, const char* what) {
  std::fprintf(stderr, "segkv_recovery_bench: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

int Run() {
  std::string dir = FLAGS_dir;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/segkv_bench.XXXXXX");
    if (mkdtemp(templ.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = templ;
  }
  if (FLAGS_checkpoint_at < 0 || FLAGS_checkpoint_at > 1) {
    std::fprintf(stderr, "segkv_recovery_bench: --checkpoint_at must be in [0, 1]\n");
    return 2;
  }
  KvStoreOptions options;
  options.dir = dir;
  options.checkpoint_every_bytes = 0;
  const std::string value(FLAGS_value_size, 'v');
  const uint64_t half = static_cast<uint64_t>(FLAGS_keys * FLAGS_checkpoint_at);
  {
    absl::StatusOr<std::unique_ptr<KvStore>> store = KvStore::Open(options);
    if (!store.ok()) return Fail(store.status(), "open");
    auto fill = [&](uint64_t from, uint64_t to) -> absl::Status {
      uint64_t last = 0;
      char key[32];
      for (uint64_t i = from; i < to; ++i) {
        std::snprintf(key, sizeof(key), "key:%012llu", static_cast<unsigned long long>(i));
        absl::StatusOr<WriteResult> w = (*store)->Submit({KvOp::kSet, {key}, {value}, 0});
        if (!w.ok()) return w.status();
        last = w->lsn;
      }
      return (*store)->WaitDurable(last);
    };
    absl::Status s = fill(0, half);
    if (!s.ok()) return Fail(s, "fill");
    absl::StatusOr<CheckpointInfo> c = (*store)->Checkpoint();
    if (!c.ok()) return Fail(c.status(), "checkpoint");
    std::printf("segkv: checkpoint of %llu keys: writers paused %.1f ms (copying handles), "
                "%.0f ms in all, %.1f MB\n",
                static_cast<unsigned long long>(c->keys), c->pause_micros / 1e3,
                c->total_micros / 1e3, c->bytes / 1e6);

    // A background checkpoint while one thread writes: the longest write.
    std::atomic<bool> stop{false};
    double max_write_ms = 0;
    uint64_t writes = 0;
    absl::Status writer_status;
    std::thread writer([&] {
      uint64_t i = 0;
      while (!stop.load(std::memory_order_acquire)) {
        const auto t0 = std::chrono::steady_clock::now();
        absl::StatusOr<WriteResult> w = (*store)->Submit(
            {KvOp::kSet, {absl::StrCat("bg:", i++ % 1000)}, {value}, 0});
        if (!w.ok()) {
          writer_status = w.status();
          return;
        }
        max_write_ms = std::max(max_write_ms, Seconds(t0) * 1e3);
        ++writes;
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s = (*store)->StartBackgroundCheckpoint();
    if (s.ok()) (*store)->WaitForBackgroundCheckpoint();
    stop.store(true, std::memory_order_release);
    writer.join();
    if (!s.ok()) return Fail(s, "background checkpoint");
    if (!writer_status.ok()) return Fail(writer_status, "writes during the checkpoint");
    KvStats st = (*store)->GetStats();
    if (!st.last_checkpoint_status.ok()) return Fail(st.last_checkpoint_status, "background checkpoint");
    std::printf("segkv: background checkpoint of %llu keys: writers paused %.1f ms; "
                "longest of %llu writes meanwhile %.1f ms; %.0f ms in all\n",
                static_cast<unsigned long long>(st.last_checkpoint->keys),
                st.last_checkpoint->pause_micros / 1e3,
                static_cast<unsigned long long>(writes), max_write_ms,
                st.last_checkpoint->total_micros / 1e3);

    s = fill(half, FLAGS_keys);
    if (!s.ok()) return Fail(s, "fill");
  }
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<KvStore>> store = KvStore::Open(options);
  const double open_s = Seconds(t0);
  if (!store.ok()) return Fail(store.status(), "reopen");
  const KvRecoveryReport& r = (*store)->recovery_report();
  const double replay_s = r.log_replay_micros / 1e6;
  std::printf("segkv: recovery of %lld keys: %.2f s (checkpoint %.2f s, %llu keys; "
              "log %.2f s, %llu records: %.0f%% of the time)\n",
              static_cast<long long>((*store)->DbSize().integer), open_s,
              r.checkpoint_load_micros / 1e6,
              static_cast<unsigned long long>(r.checkpoint_keys), replay_s,
              static_cast<unsigned long long>(r.log_records_replayed),
              open_s > 0 ? 100.0 * replay_s / open_s : 0.0);
  store->reset();
  if (FLAGS_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}

}  // namespace
}  // namespace kv
}  // namespace segwal

int main(int argc, char** argv) {
  gflags::SetUsageMessage("segkv_recovery_bench [--keys=N] [--value_size=B] [--dir=D]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc > 1) {
    std::fprintf(stderr, "segkv_recovery_bench: unexpected argument %s\n", argv[1]);
    return 2;
  }
  return segwal::kv::Run();
}
