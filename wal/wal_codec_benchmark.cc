// What compression and encryption cost: SegmentedWal append and replay
// throughput with payloads stored plain, Snappy-compressed, AES-256-GCM
// encrypted, and both (wal/FORMAT.md, "Encryption and compression"), each as
// a ratio to plain measured in the same run.
//
//   bazel run -c opt //wal:wal_codec_benchmark
//
// Appends are not synced (a sync costs the same whatever the codec and would
// hide it). `mem` runs over the in-memory Env, which isolates segwal's own
// cost (the strictest ratio); `posix` writes real files under
// $SEGWAL_BENCH_DIR, else $TEST_TMPDIR, else $TMPDIR, else /tmp.
//
// Payloads are half random, half a repeated byte (what db_bench calls a
// compression ratio of 0.5), the same bytes for every codec. Bytes/s count
// payload bytes (what the caller hands over), not bytes on disk.
//
// After the usual Google Benchmark output the binary prints a table of
// codec/plain throughput ratios for each operation, Env and record size.

#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "crypto/key_ring.h"
#include "env/env.h"
#include "env/mem_env.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace {

enum class Codec { kPlain, kSnappy, kEncrypted, kBoth };
enum class EnvKind { kMem, kPosix };

std::string BaseTempDir() {
  for (const char* var : {"SEGWAL_BENCH_DIR", "TEST_TMPDIR", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && v[0] != '\0') return v;
  }
  return "/tmp";
}

// Removes a directory tree made of plain files and subdirectories one level
// deep (a WAL directory: segments, LOCK, quarantine/).
void RemoveWalDir(Env* env, const std::string& dir) {
  auto children = env->GetChildren(dir);
  if (!children.ok()) return;
  for (const std::string& name : *children) {
    const std::string path = dir + "/" + name;
    if (!env->DeleteFile(path).ok()) RemoveWalDir(env, path);
  }
  env->DeleteDir(dir).IgnoreError();
}

// An Env and a fresh WAL directory in it, removed on destruction.
class Place {
 public:
  explicit Place(EnvKind kind) {
    if (kind == EnvKind::kMem) {
      mem_ = NewMemEnv();
      env_ = mem_.get();
      dir_ = "/wal";
    } else {
      env_ = Env::Default();
      std::string templ = BaseTempDir() + "/segwal_codec_benchmark.XXXXXX";
      if (::mkdtemp(templ.data()) != nullptr) dir_ = templ + "/wal";
    }
  }
  ~Place() {
    if (mem_ == nullptr && !dir_.empty()) {
      RemoveWalDir(env_, dir_);
      env_->DeleteDir(dir_.substr(0, dir_.rfind('/'))).IgnoreError();
    }
  }
  Env* env() const { return env_; }
  const std::string& dir() const { return dir_; }

 private:
  std::unique_ptr<Env> mem_;
  Env* env_ = nullptr;
  std::string dir_;
};

SegmentedWalOptions Options(const Place& place, Codec codec) {
  SegmentedWalOptions o;
  o.wal_dir = place.dir();
  o.env = place.env();
  o.segment_target_size = 8 << 20;
  if (codec == Codec::kSnappy || codec == Codec::kBoth) {
    o.compression = Compression::kSnappy;
  }
  if (codec == Codec::kEncrypted || codec == Codec::kBoth) {
    o.encryption_ring =
        KeyRing(*WalEncryptionKey::FromBytes(std::string(32, 'k')));
  }
  return o;
}

// 64 distinct payloads of `size` bytes, half random and half repeated.
std::vector<std::string> Payloads(size_t size) {
  std::vector<std::string> out;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 64; ++i) {
    std::string p(size, static_cast<char>('a' + i % 26));
    for (size_t j = 0; j < size / 2; ++j) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      p[j] = static_cast<char>(x);
    }
    out.push_back(std::move(p));
  }
  return out;
}

void BM_Append(benchmark::State& state, Codec codec, EnvKind kind) {
  const size_t size = static_cast<size_t>(state.range(0));
  Place place(kind);
  if (place.dir().empty()) {
    state.SkipWithError("cannot create a temporary directory");
    return;
  }
  auto wal = SegmentedWal::Open(Options(place, codec));
  if (!wal.ok()) {
    state.SkipWithError(wal.status().ToString().c_str());
    return;
  }
  const std::vector<std::string> payloads = Payloads(size);
  uint64_t i = 0;
  for (auto _ : state) {
    auto lsn = (*wal)->Append(1, 7, 3, 0, payloads[i % payloads.size()]);
    if (!lsn.ok()) {
      state.SkipWithError(lsn.status().ToString().c_str());
      break;
    }
    // Keep the log (and MemEnv's memory) bounded: drop sealed segments now
    // and then, the same work for every codec.
    if (++i % 4096 == 0) {
      auto t = (*wal)->TruncateBefore(*lsn);
      if (!t.ok()) {
        state.SkipWithError(t.status().ToString().c_str());
        break;
      }
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_Replay(benchmark::State& state, Codec codec, EnvKind kind) {
  const size_t size = static_cast<size_t>(state.range(0));
  Place place(kind);
  if (place.dir().empty()) {
    state.SkipWithError("cannot create a temporary directory");
    return;
  }
  auto wal = SegmentedWal::Open(Options(place, codec));
  if (!wal.ok()) {
    state.SkipWithError(wal.status().ToString().c_str());
    return;
  }
  // A log of about 32 MiB of payload.
  const std::vector<std::string> payloads = Payloads(size);
  const uint64_t records = std::max<uint64_t>(1, (32 << 20) / size);
  for (uint64_t i = 0; i < records; ++i) {
    if (!(*wal)->Append(1, 7, 3, 0, payloads[i % payloads.size()]).ok()) {
      state.SkipWithError("append failed");
      return;
    }
  }
  if (!(*wal)->Sync().ok()) {
    state.SkipWithError("sync failed");
    return;
  }
  uint64_t bytes = 0;
  for (auto _ : state) {
    auto it = (*wal)->NewIterator(1);
    if (!it.ok()) {
      state.SkipWithError(it.status().ToString().c_str());
      break;
    }
    uint64_t n = 0;
    for (; (*it)->Valid(); (*it)->Next()) {
      bytes += (*it)->record().payload.size();
      ++n;
    }
    if (!(*it)->status().ok() || n != records) {
      state.SkipWithError("replay failed or came back short");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

#define SEGWAL_CODEC_BENCHMARKS(op, env_name, env_kind)                       \
  BENCHMARK_CAPTURE(op, env_name##_plain, Codec::kPlain, env_kind)            \
      ->Arg(128)                                                              \
      ->Arg(4096);                                                            \
  BENCHMARK_CAPTURE(op, env_name##_snappy, Codec::kSnappy, env_kind)          \
      ->Arg(128)                                                              \
      ->Arg(4096);                                                            \
  BENCHMARK_CAPTURE(op, env_name##_encrypted, Codec::kEncrypted, env_kind)    \
      ->Arg(128)                                                              \
      ->Arg(4096);                                                            \
  BENCHMARK_CAPTURE(op, env_name##_both, Codec::kBoth, env_kind)              \
      ->Arg(128)                                                              \
      ->Arg(4096)

SEGWAL_CODEC_BENCHMARKS(BM_Append, mem, EnvKind::kMem);
SEGWAL_CODEC_BENCHMARKS(BM_Append, posix, EnvKind::kPosix);
SEGWAL_CODEC_BENCHMARKS(BM_Replay, mem, EnvKind::kMem);
SEGWAL_CODEC_BENCHMARKS(BM_Replay, posix, EnvKind::kPosix);

// Shows the usual output and remembers each benchmark's bytes/s.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      auto it = run.counters.find("bytes_per_second");
      if (it != run.counters.end()) {
        bytes_per_second_[run.benchmark_name()] = it->second.value;
      }
    }
  }

  // "BM_Append/mem_encrypted/4096" and the like, as codec/plain ratios.
  void PrintRatios() const {
    printf("\n%-28s %10s %10s %10s\n", "codec / plain throughput", "snappy",
           "encrypted", "both");
    for (const char* op : {"BM_Append", "BM_Replay"}) {
      for (const char* env : {"mem", "posix"}) {
        for (const char* size : {"128", "4096"}) {
          auto bps = [&](const char* codec) -> std::optional<double> {
            auto it = bytes_per_second_.find(
                absl::StrCat(op, "/", env, "_", codec, "/", size));
            if (it == bytes_per_second_.end() || it->second <= 0) {
              return std::nullopt;
            }
            return it->second;
          };
          const std::optional<double> plain = bps("plain");
          if (!plain) continue;
          auto cell = [&](const char* codec) {
            const std::optional<double> v = bps(codec);
            char buf[32] = "n/a";
            if (v) snprintf(buf, sizeof(buf), "%.2fx", *v / *plain);
            return std::string(buf);
          };
          printf("%-28s %10s %10s %10s\n",
                 absl::StrCat(op + 3, " ", env, " ", size, " B").c_str(),
                 cell("snappy").c_str(), cell("encrypted").c_str(),
                 cell("both").c_str());
        }
      }
    }
    printf("(target: encrypted 4096 B appends >= 0.6x plain)\n");
  }

 private:
  std::map<std::string, double> bytes_per_second_;
};

}  // namespace
}  // namespace segwal

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  segwal::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
