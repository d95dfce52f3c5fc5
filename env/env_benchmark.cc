// Append throughput through WritableFile::Append, POSIX Env against the
// in-memory Env, for WAL-like record sizes, with and without a Sync every
// `sync_every` records. The gap between the two is what the file system (page
// cache copies, write syscalls, fdatasync) costs on top of segwal's own code.
//
//   bazel run -c opt //env:env_benchmark
//
// BM_PosixSyncEach and BM_UringSyncEach compare, in one run, the two POSIX
// write paths with a Sync after every append (the WAL's sync-per-commit case):
// write(2) + fdatasync(2) against one io_uring submission of a write linked to
// an fsync (FileOptions::use_io_uring):
//
//   bazel run -c opt //env:env_benchmark -- --benchmark_filter=SyncEach
//       --benchmark_repetitions=10 --benchmark_enable_random_interleaving=true
//   (one command line)
//
// Interleave the repetitions: the device's flush latency drifts over a run, and
// running one path after the other mistakes that drift for a difference. CPU
// time is only the calling thread's: io_uring moves the fsync (and often the
// write) to kernel worker threads, so compare real time.
//
// POSIX files go to a fresh directory under $SEGWAL_BENCH_DIR, else
// $TEST_TMPDIR, else $TMPDIR, else /tmp; it is removed afterwards. Sync figures
// depend entirely on the device and file system behind that directory.

#include <stdlib.h>  // mkdtemp

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "env/env.h"
#include "env/mem_env.h"
#include "env/posix_env.h"

namespace segwal {
namespace {

// Files are rolled (closed, deleted, recreated) once they reach this size, as
// WAL segments are (64 MiB is segwal's default segment_target_size), so memory
// (MemEnv) and disk use stay bounded however many iterations the benchmark
// library picks.
constexpr uint64_t kRollBytes = 64 << 20;

std::string BaseTempDir() {
  for (const char* var : {"SEGWAL_BENCH_DIR", "TEST_TMPDIR", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && v[0] != '\0') return v;
  }
  return "/tmp";
}

// A fresh directory for the POSIX benchmarks, removed (with the files the
// benchmark left in it) on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = BaseTempDir() + "/segwal_env_benchmark.XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~ScratchDir() {
    if (path_.empty()) return;
    Env* env = Env::Default();
    auto children = env->GetChildren(path_);
    if (children.ok()) {
      for (const std::string& name : *children) {
        env->DeleteFile(path_ + "/" + name).IgnoreError();
      }
    }
    env->DeleteDir(path_).IgnoreError();
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // Empty if the directory could not be created.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Appends state.range(0)-byte records, calling Sync after every
// state.range(1) records (0: never), to files in `dir` on `env` opened with
// `options`.
void RunAppends(benchmark::State& state, Env* env, const std::string& dir,
                const FileOptions& options = FileOptions()) {
  const size_t record_bytes = static_cast<size_t>(state.range(0));
  const int64_t sync_every = state.range(1);
  const std::string record(record_bytes, 'x');
  const std::string path = dir + "/append.log";

  auto open = [&]() -> absl::StatusOr<std::unique_ptr<WritableFile>> {
    return env->NewWritableFileWithOptions(path, options);
  };
  auto file_or = open();
  if (!file_or.ok()) {
    state.SkipWithError(file_or.status().ToString().c_str());
    return;
  }
  std::unique_ptr<WritableFile> file = std::move(*file_or);

  absl::Status s;
  int64_t since_sync = 0;
  for (auto _ : state) {
    s = file->Append(record);
    if (s.ok() && sync_every > 0 && ++since_sync == sync_every) {
      since_sync = 0;
      s = file->Sync();
    }
    if (s.ok() && file->Size() >= kRollBytes) {
      s = file->Close();  // timed: handing the tail to the OS is part of the
                          // cost
      state.PauseTiming();
      file.reset();
      if (s.ok()) s = env->DeleteFile(path);
      if (s.ok()) {
        file_or = open();
        s = file_or.status();
        if (s.ok()) file = std::move(*file_or);
      }
      state.ResumeTiming();
    }
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  if (file != nullptr) file->Close().IgnoreError();
  env->DeleteFile(path).IgnoreError();

  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(record_bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_PosixAppend(benchmark::State& state) {
  ScratchDir dir;
  if (dir.path().empty()) {
    state.SkipWithError(
        ("cannot create a directory under " + BaseTempDir()).c_str());
    return;
  }
  RunAppends(state, Env::Default(), dir.path());
}

void BM_MemAppend(benchmark::State& state) {
  std::unique_ptr<Env> env = NewMemEnv();
  const std::string dir = "/segwal_env_benchmark";
  absl::Status s = env->CreateDirIfMissing(dir);
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  RunAppends(state, env.get(), dir);
}

// {record_bytes, sync_every}: WAL-sized small records and page-sized ones,
// buffered only and with a Sync every 100 records. Throughput is per wall-clock
// second: fdatasync waits for the device without using CPU, and CPU time (the
// library's default) would hide exactly that.
void AppendArgs(benchmark::internal::Benchmark* b) {
  b->UseRealTime();
  b->ArgNames({"record_bytes", "sync_every"});
  for (int64_t record_bytes : {100, 4096}) {
    for (int64_t sync_every : {0, 100}) b->Args({record_bytes, sync_every});
  }
}

// A Sync after every append, on the plain path or on io_uring.
void RunSyncEach(benchmark::State& state, bool use_io_uring) {
  std::string why;
  if (use_io_uring && !PosixIoUringAvailable(&why)) {
    state.SkipWithError(("io_uring unavailable: " + why).c_str());
    return;
  }
  ScratchDir dir;
  if (dir.path().empty()) {
    state.SkipWithError(
        ("cannot create a directory under " + BaseTempDir()).c_str());
    return;
  }
  FileOptions options;
  options.use_io_uring = use_io_uring;
  RunAppends(state, Env::Default(), dir.path(), options);
}

void BM_PosixSyncEach(benchmark::State& state) { RunSyncEach(state, false); }
void BM_UringSyncEach(benchmark::State& state) { RunSyncEach(state, true); }

// {record_bytes, sync_every = 1}, in wall-clock time like AppendArgs.
void SyncEachArgs(benchmark::internal::Benchmark* b) {
  b->UseRealTime();
  b->ArgNames({"record_bytes", "sync_every"});
  for (int64_t record_bytes : {100, 4096}) b->Args({record_bytes, 1});
}

BENCHMARK(BM_PosixAppend)->Apply(AppendArgs);
BENCHMARK(BM_MemAppend)->Apply(AppendArgs);
BENCHMARK(BM_PosixSyncEach)->Apply(SyncEachArgs);
BENCHMARK(BM_UringSyncEach)->Apply(SyncEachArgs);

}  // namespace
}  // namespace segwal
