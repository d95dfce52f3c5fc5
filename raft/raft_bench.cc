// raft_bench: commits per second of a libraft 0.15 cluster whose log store is
// segwal (SegwalRaftIo), against the same cluster on libraft's own disk
// backend (raft_uv: raft_uv_init + raft_uv_tcp_init), same process, same disk,
// same run (issue 14, "Benchmark: raft_bench"; part of `make bench`).
//
// What one run measures: --nodes voters (default 3) in this process on one
// libuv loop, talking TCP over 127.0.0.1, each in a fresh directory under
// --dir. Once a leader is elected, the leader keeps --window raft_apply calls
// of --entry_size bytes in flight (a new one as soon as one's callback fires).
// After --warmup seconds it counts, for --seconds, the apply callbacks with
// status 0: a commit is an entry durable on a majority (libraft calls
// io->append's callback only once durable) and applied on the leader.
// Snapshots are off (threshold 2^30) in both stores, so only the log is
// measured. Both stores use the same transport code (raft_uv_tcp), election
// timeout (1 s) and heartbeat (100 ms).
//
// The comparison: for each window of --windows, --pairs pairs of runs,
// interleaved (segwal, raft_uv, segwal, raft_uv, ...: the disk's fsync
// latency on a shared VM drifts within minutes). Each run prints one line
//   run 2/3 window 64 segwal: 20512 commits/s (41030 in 2.000 s, ...)
// and the bench ends with one line per window:
//   window 64: segwal 21000 commits/s, raft_uv 19000 commits/s, ratio 1.11x
// where the commits/s are the medians of the runs, and the ratio is the
// median of the per-pair ratios (segwal run k over raft_uv run k: robust to a
// drifting machine; the same rule as db_bench_wal/bench_suite.sh's rows).
//
// raft_uv on tmpfs: with --tmpfs_dir on tmpfs (default /dev/shm), each pair
// gets a third run, raft_uv with its files in memory, printed as store
// "tmpfs", and the bench prints one "raft_uv on tmpfs, ..." line before its
// summary. A write and an fsync then cost almost nothing, so that rate is the
// cluster's with storage taken out: libraft's own work, the TCP transport and
// this bench, all on the one loop thread. It is a yardstick, not a strict
// upper bound (a store with some latency batches more entries per message and
// per fsync, which at large windows can beat one that completes at once). On
// the 2-vCPU bench VM (2026-12-04) it was 0.96-1.09x raft_uv on disk at
// window 64 in quiet runs: there the loop thread, not the disk, sets the rate
// of both stores.
//
// Entries default to 104 B, a multiple of 8: libraft 0.15's raft_uv loses
// entries of other sizes at restart (canonical/raft #304), and its TCP
// transport garbles batches of them (segwal_raft_io_test.cc says why), so
// raft_uv is measured where it is safe.
//
//   bazel run -c opt //raft:raft_bench                # the default comparison
//   bazel run -c opt //raft:raft_bench -- --windows=64 --pairs=5 --seconds=3
//
// --dir: where the run directories go (default: $TMPDIR, /var/tmp or /tmp,
// the first that is not tmpfs, as db_bench_wal picks); a raft_bench.XXXXXX
// directory is made there and removed at exit. Other flags: --nodes,
// --windows, --entry_size, --seconds, --warmup, --pairs, --wal_stats, and
// --segwal_direct_io / --segwal_io_uring (the segwal store's WAL options;
// neither helped here, 2026-12-04: direct I/O 0.74-0.85x at window 1,
// io_uring 0.71x).
// In `make bench`, db_bench_wal/bench_suite.sh runs it with no flags (plus
// $SEGWAL_RAFT_BENCH_ARGS; SEGWAL_RAFT_BENCH=0 skips it) and turns each
// complete pair into the rows "raft commits segwal/raft_uv, window N".
//
// Reading a run line. After the rate: when the leader was elected, leader
// changes and failed applies during the run (both should be 0), and per
// measured second: the loop thread's CPU, how long the loop thread was
// runnable but waiting for a CPU (/proc/thread-self/schedstat), and the
// process's CPU (segwal's sync threads, raft_uv's kernel AIO or thread pool).
// With --wal_stats, each segwal node's WAL counters since Open: records,
// fsyncs, records per fsync (the group commit: 1 at window 1; at 64 and 256
// the leader syncs about a whole window per fsync, followers tens), fsync
// latency. On a 2-vCPU VM shared with other builds the
// loop thread waited for a CPU 0.4-0.7 s of every second (2026-12-04): the
// rates are then bound by the scheduler's share for the one loop thread that
// runs all three nodes, not by the disk, and swing 2x from run to run; only
// the interleaved ratios mean much. Each segwal commit also crosses threads
// three times (loop -> sync thread, fdatasync's return, sync thread -> loop
// via uv_async) where raft_uv's kernel AIO (in use here: one aio ring per
// node in /proc/PID/maps during its runs) wakes only the loop, through an
// eventfd; that costs segwal most when CPUs are scarce.
//
// Threads: everything here runs on the main thread (the loop); SegwalRaftIo
// has one sync thread per node, raft_uv its own libuv thread pool or kernel
// AIO. No state of this file is shared with them.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gflags/gflags.h"
#include "raft/libraft.h"
#include "raft/segwal_raft_io.h"

DEFINE_string(dir, "",
              "parent of the bench's temporary directory (default: $TMPDIR, "
              "/var/tmp or /tmp, the first not on tmpfs)");
DEFINE_int32(nodes, 3, "voters in the cluster");
DEFINE_string(windows, "1,64,256", "raft_apply calls kept in flight, comma-separated");
DEFINE_int32(entry_size, 104, "bytes per entry");
DEFINE_double(seconds, 2.0, "measured seconds per run");
DEFINE_double(warmup, 0.5, "seconds after the election before measuring");
DEFINE_int32(pairs, 3, "segwal/raft_uv pairs of runs per window");
DEFINE_double(election_wait, 30.0, "seconds to wait for a leader before a run fails");
DEFINE_string(tmpfs_dir, "/dev/shm",
              "a tmpfs directory for the tmpfs runs (raft_uv with its files in "
              "memory: storage costs almost nothing); \"\" or a directory not "
              "on tmpfs skips them");
DEFINE_bool(segwal_direct_io, false, "segwal store: SegmentedWalOptions::use_direct_io");
DEFINE_bool(segwal_io_uring, false, "segwal store: SegmentedWalOptions::use_io_uring");
DEFINE_bool(wal_stats, true,
            "print each segwal node's WAL counters after its run (fsyncs, "
            "records per fsync, fsync latency)");

namespace segwal {
namespace raftstore {
namespace {

using Clock = std::chrono::steady_clock;

// CPU seconds (user + system) of the calling thread, or of the process.
double CpuSeconds(int who) {
  struct rusage ru;
  if (getrusage(who, &ru) != 0) return 0;
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

// Seconds the calling thread has waited on a run queue (runnable, not
// running): the second field of /proc/thread-self/schedstat; 0 if unknown.
double RunQueueWaitSeconds() {
  FILE* f = std::fopen("/proc/thread-self/schedstat", "r");
  if (f == nullptr) return 0;
  unsigned long long run_ns = 0, wait_ns = 0;
  const int n = std::fscanf(f, "%llu %llu", &run_ns, &wait_ns);
  std::fclose(f);
  return n == 2 ? wait_ns / 1e9 : 0;
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool IsTmpfs(const std::string& dir) {
  struct statfs st;
  if (statfs(dir.c_str(), &st) != 0) return false;
  return st.f_type == 0x01021994;  // TMPFS_MAGIC
}

// The parent directory: --dir, else db_bench_wal's rule.
std::string BenchParent() {
  if (!FLAGS_dir.empty()) return FLAGS_dir;
  std::vector<std::string> bases;
  if (const char* t = getenv("TMPDIR"); t != nullptr && t[0] != '\0') bases.push_back(t);
  bases.push_back("/var/tmp");
  bases.push_back("/tmp");
  for (const std::string& b : bases) {
    std::error_code ec;
    if (std::filesystem::is_directory(b, ec) && access(b.c_str(), W_OK) == 0 &&
        !IsTmpfs(b)) {
      return b;
    }
  }
  return "/tmp";
}

// A free TCP port on 127.0.0.1 (the kernel's pick; released before use).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// kTmpfs: raft_uv with its directory on tmpfs, where a write and an fsync
// cost almost nothing: what the cluster does in this process and on this
// machine with storage taken out (libraft, the transport, this bench's loop).
enum class Store { kSegwal, kRaftUv, kTmpfs };
const char* StoreName(Store s) {
  switch (s) {
    case Store::kSegwal: return "segwal";
    case Store::kRaftUv: return "raft_uv";
    case Store::kTmpfs: return "tmpfs";
  }
  return "?";
}

struct Run;

struct Node {
  Run* run = nullptr;
  raft_id id = 0;
  std::string address;
  std::string dir;
  std::unique_ptr<SegwalRaftIo> segwal_io;  // Store::kSegwal
  std::unique_ptr<raft_io> uv_io;           // Store::kRaftUv, kTmpfs
  std::unique_ptr<raft_uv_transport> uv_tcp;
  bool uv_io_initialized = false;
  raft r{};
  raft_fsm fsm{};
  bool started = false;
  bool closed = false;
};

struct RunResult {
  bool ok = false;
  std::string error;
  double commits_per_sec = 0;
  uint64_t commits = 0;
  double seconds = 0;
  double election_seconds = 0;
  uint64_t failed_applies = 0;  // status != 0 before shutdown
  int leader_changes = 0;
  // CPU seconds per measured second: the loop thread (all nodes' raft work
  // and this bench's), and the whole process (sync threads, libuv's pool).
  double loop_cpu = 0;
  double process_cpu = 0;
  // Seconds per measured second the loop thread was runnable but waiting for
  // a CPU (a shared machine's other work).
  double loop_wait = 0;
  std::string wal_stats;
};

// One cluster, from fresh directories to closed handles.
struct Run {
  enum Phase { kElecting, kWarmup, kMeasuring, kDraining, kDone };

  Store store;
  int window = 0;
  uv_loop_t loop;
  uv_timer_t timer;  // every 5 ms: phases, leader changes, refill
  uv_check_t check;  // every loop iteration: refill the window
  std::vector<std::unique_ptr<Node>> nodes;
  Phase phase = kElecting;
  Clock::time_point started_at, phase_at;
  Node* leader = nullptr;
  int inflight = 0;
  uint64_t committed = 0;
  uint64_t committed_at_start = 0;
  double loop_cpu_at_start = 0, process_cpu_at_start = 0, loop_wait_at_start = 0;
  uint64_t failed = 0;
  int leader_changes = 0;
  RunResult result;
  std::string entry_bytes;

  struct Req {
    struct raft_apply apply;
    Run* run;
  };

  static int FsmApply(raft_fsm*, const raft_buffer*, void** result) {
    *result = nullptr;
    return 0;
  }

  static void ApplyDone(struct raft_apply* a, int status, void*) {
    auto* req = static_cast<Req*>(a->data);
    Run* run = req->run;
    delete req;
    run->inflight--;
    if (status == 0) {
      run->committed++;
    } else if (run->phase != kDone && run->phase != kDraining) {
      run->failed++;
    }
  }

  Node* FindLeader() {
    for (auto& n : nodes) {
      if (n->started && raft_state(&n->r) == RAFT_LEADER) return n.get();
    }
    return nullptr;
  }

  // Keeps `window` applies in flight on the current leader.
  void Refill() {
    if (phase == kDraining || phase == kDone || leader == nullptr) return;
    if (raft_state(&leader->r) != RAFT_LEADER) return;
    while (inflight < window) {
      auto* req = new Req;
      std::memset(&req->apply, 0, sizeof(req->apply));
      req->apply.data = req;
      req->run = this;
      raft_buffer buf;
      buf.len = entry_bytes.size();
      buf.base = raft_malloc(buf.len == 0 ? 1 : buf.len);
      std::memcpy(buf.base, entry_bytes.data(), entry_bytes.size());
      int rv = raft_apply(&leader->r, &req->apply, &buf, 1, &Run::ApplyDone);
      if (rv != 0) {
        raft_free(buf.base);
        delete req;
        failed++;
        return;  // the next tick tries again (a new leader, or room)
      }
      inflight++;
    }
  }

  void Tick() {
    const Clock::time_point now = Clock::now();
    Node* l = FindLeader();
    if (l != nullptr && l != leader) {
      if (leader != nullptr) leader_changes++;
      leader = l;
    }
    switch (phase) {
      case kElecting:
        if (leader != nullptr) {
          result.election_seconds = SecondsSince(started_at);
          phase = kWarmup;
          phase_at = now;
        } else if (SecondsSince(started_at) > FLAGS_election_wait) {
          result.error = "no leader elected";
          Finish();
          return;
        }
        break;
      case kWarmup:
        if (std::chrono::duration<double>(now - phase_at).count() >= FLAGS_warmup) {
          phase = kMeasuring;
          phase_at = now;
          committed_at_start = committed;
          loop_cpu_at_start = CpuSeconds(RUSAGE_THREAD);
          process_cpu_at_start = CpuSeconds(RUSAGE_SELF);
          loop_wait_at_start = RunQueueWaitSeconds();
        }
        break;
      case kMeasuring: {
        const double elapsed = std::chrono::duration<double>(now - phase_at).count();
        if (elapsed >= FLAGS_seconds) {
          result.commits = committed - committed_at_start;
          result.seconds = elapsed;
          result.commits_per_sec = result.commits / elapsed;
          result.loop_cpu = (CpuSeconds(RUSAGE_THREAD) - loop_cpu_at_start) / elapsed;
          result.process_cpu = (CpuSeconds(RUSAGE_SELF) - process_cpu_at_start) / elapsed;
          result.loop_wait = (RunQueueWaitSeconds() - loop_wait_at_start) / elapsed;
          result.ok = true;
          // Let the applies in flight finish before raft_close: closing a
          // raft_uv leader with appends in flight crashed libraft 0.15 inside
          // raft_close here (once in ~20 runs).
          phase = kDraining;
          phase_at = now;
        }
        break;
      }
      case kDraining:
        if (inflight == 0 ||
            std::chrono::duration<double>(now - phase_at).count() > 10) {
          Finish();
        }
        return;
      case kDone:
        return;
    }
    Refill();
  }

  void Finish() {
    phase = kDone;
    uv_stop(&loop);
  }

  bool SetUpNode(Node* n, std::string* error) {
    n->fsm.version = 1;
    n->fsm.data = n;
    n->fsm.apply = &Run::FsmApply;
    raft_io* io = nullptr;
    std::error_code ec;
    std::filesystem::create_directories(n->dir, ec);
    if (ec) {
      *error = absl::StrCat("mkdir ", n->dir, ": ", ec.message());
      return false;
    }
    if (store == Store::kSegwal) {
      SegwalRaftIoOptions o;
      o.store.dir = n->dir;
      o.store.wal.use_direct_io = FLAGS_segwal_direct_io;
      o.store.wal.use_io_uring = FLAGS_segwal_io_uring;
      o.loop = &loop;
      absl::StatusOr<std::unique_ptr<SegwalRaftIo>> sio = NewSegwalRaftIo(o);
      if (!sio.ok()) {
        *error = sio.status().ToString();
        return false;
      }
      n->segwal_io = std::move(*sio);
      io = n->segwal_io->io();
    } else {
      n->uv_tcp = std::make_unique<raft_uv_transport>();
      std::memset(n->uv_tcp.get(), 0, sizeof(raft_uv_transport));
      int rv = raft_uv_tcp_init(n->uv_tcp.get(), &loop);
      if (rv != 0) {
        *error = absl::StrCat("raft_uv_tcp_init: ", raft_strerror(rv));
        n->uv_tcp.reset();
        return false;
      }
      n->uv_io = std::make_unique<raft_io>();
      std::memset(n->uv_io.get(), 0, sizeof(raft_io));
      rv = raft_uv_init(n->uv_io.get(), &loop, n->dir.c_str(), n->uv_tcp.get());
      if (rv != 0) {
        *error = absl::StrCat("raft_uv_init: ", n->uv_io->errmsg);
        n->uv_io.reset();
        return false;
      }
      n->uv_io_initialized = true;
      io = n->uv_io.get();
    }
    if (raft_init(&n->r, io, &n->fsm, n->id, n->address.c_str()) != 0) {
      *error = absl::StrCat("raft_init: ", raft_errmsg(&n->r));
      return false;
    }
    n->r.data = n;
    raft_set_election_timeout(&n->r, 1000);
    raft_set_heartbeat_timeout(&n->r, 100);
    raft_set_snapshot_threshold(&n->r, 1u << 30);
    return true;
  }

  static void NodeClosed(raft* r) { static_cast<Node*>(r->data)->closed = true; }

  // Closes every raft instance, drains the loop, frees the ios.
  void TearDown() {
    phase = kDone;
    for (auto& n : nodes) {
      if (n->started) {
        raft_close(&n->r, &Run::NodeClosed);
      } else {
        n->closed = true;
      }
    }
    uv_timer_stop(&timer);
    uv_check_stop(&check);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
    // raft_close's callbacks, the requests it cancels, the handles closing.
    for (int i = 0; i < 100000; ++i) {
      bool all = true;
      for (auto& n : nodes) all = all && n->closed;
      if (all) break;
      uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (auto& n : nodes) {
      n->segwal_io.reset();
      if (n->uv_io_initialized) raft_uv_close(n->uv_io.get());
      if (n->uv_tcp != nullptr) raft_uv_tcp_close(n->uv_tcp.get());
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0 && result.error.empty()) {
      std::fprintf(stderr, "raft_bench: warning: loop has open handles at exit\n");
    }
  }

  RunResult Go(const std::string& dir) {
    entry_bytes.resize(static_cast<size_t>(FLAGS_entry_size));
    for (size_t i = 0; i < entry_bytes.size(); ++i) entry_bytes[i] = 'a' + i % 26;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &timer);
    timer.data = this;
    uv_check_init(&loop, &check);
    check.data = this;
    raft_configuration conf;
    raft_configuration_init(&conf);
    for (int i = 0; i < FLAGS_nodes; ++i) {
      auto n = std::make_unique<Node>();
      n->run = this;
      n->id = i + 1;
      n->address = absl::StrCat("127.0.0.1:", FreePort());
      n->dir = absl::StrCat(dir, "/node", i + 1);
      raft_configuration_add(&conf, n->id, n->address.c_str(), RAFT_VOTER);
      nodes.push_back(std::move(n));
    }
    bool ok = true;
    for (auto& n : nodes) {
      if (!SetUpNode(n.get(), &result.error)) {
        ok = false;
        break;
      }
      n->started = true;  // raft_init ran: raft_close is owed
      if (raft_bootstrap(&n->r, &conf) != 0) {
        result.error = absl::StrCat("raft_bootstrap: ", raft_errmsg(&n->r));
        ok = false;
        break;
      }
    }
    raft_configuration_close(&conf);
    if (ok) {
      for (auto& n : nodes) {
        if (raft_start(&n->r) != 0) {
          result.error = absl::StrCat("raft_start: ", raft_errmsg(&n->r));
          ok = false;
          break;
        }
      }
    }
    if (ok) {
      started_at = Clock::now();
      uv_timer_start(&timer, [](uv_timer_t* t) { static_cast<Run*>(t->data)->Tick(); }, 5, 5);
      uv_check_start(&check, [](uv_check_t* c) { static_cast<Run*>(c->data)->Refill(); });
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    result.failed_applies = failed;
    result.leader_changes = leader_changes;
    if (store == Store::kSegwal && FLAGS_wal_stats) {
      for (auto& n : nodes) {
        if (n->segwal_io == nullptr) continue;
        WalStats s = n->segwal_io->store()->wal()->GetStats();
        absl::StrAppend(&result.wal_stats, "    node ", n->id,
                        n.get() == leader ? " (leader)" : "", ": ", s.appends,
                        " records, ", s.syncs, " fsyncs, records/fsync avg ",
                        absl::StrFormat("%.1f", s.records_per_sync.Average()), " p50<=",
                        s.records_per_sync.Percentile(50),
                        ", fsync us avg ",
                        absl::StrFormat("%.0f", s.sync_latency_micros.Average()),
                        " p99<=", s.sync_latency_micros.Percentile(99), "\n");
      }
    }
    TearDown();
    return result;
  }
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int Main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "raft_bench [--windows=1,64,256] [--pairs=3] [--seconds=2] [--entry_size=104] "
      "[--nodes=3] [--dir=D]\nCommits/s of a libraft cluster on segwal vs on raft_uv.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  std::vector<int> windows;
  for (absl::string_view w : absl::StrSplit(FLAGS_windows, ',', absl::SkipEmpty())) {
    int v;
    if (!absl::SimpleAtoi(w, &v) || v < 1) {
      std::fprintf(stderr, "raft_bench: bad --windows entry '%s'\n", std::string(w).c_str());
      return 2;
    }
    windows.push_back(v);
  }
  if (windows.empty() || FLAGS_nodes < 1 || FLAGS_pairs < 1 || FLAGS_entry_size < 0 ||
      FLAGS_seconds <= 0 || FLAGS_warmup < 0) {
    std::fprintf(stderr,
                 "raft_bench: need --windows, --nodes >= 1, --pairs >= 1, "
                 "--entry_size >= 0, --seconds > 0, --warmup >= 0\n");
    return 2;
  }
  const std::string parent = BenchParent();
  std::string tmpfs_root;
  if (!FLAGS_tmpfs_dir.empty()) {
    if (!IsTmpfs(FLAGS_tmpfs_dir)) {
      std::printf("raft_bench: no tmpfs runs: --tmpfs_dir=%s is not on tmpfs\n",
                  FLAGS_tmpfs_dir.c_str());
    } else {
      tmpfs_root = FLAGS_tmpfs_dir + "/raft_bench_tmpfs.XXXXXX";
      if (mkdtemp(tmpfs_root.data()) == nullptr) {
        std::printf("raft_bench: no tmpfs runs: mkdtemp %s: %s\n", tmpfs_root.c_str(),
                    strerror(errno));
        tmpfs_root.clear();
      }
    }
  }
  std::string root = parent + "/raft_bench.XXXXXX";
  if (mkdtemp(root.data()) == nullptr) {
    std::fprintf(stderr, "raft_bench: mkdtemp %s: %s\n", root.c_str(), strerror(errno));
    return 1;
  }
  std::printf("raft_bench: %d nodes on 127.0.0.1, entries of %d B, %.2f s measured after "
              "%.2f s warm-up, %d pairs per window, in %s\n",
              FLAGS_nodes, FLAGS_entry_size, FLAGS_seconds, FLAGS_warmup, FLAGS_pairs,
              root.c_str());
  std::fflush(stdout);
  int failures = 0;
  int run_number = 0;
  std::vector<std::string> summary;
  std::vector<std::string> tmpfs_rates;
  for (int window : windows) {
    std::vector<double> rates[3];
    std::vector<double> ratios;
    for (int pair = 1; pair <= FLAGS_pairs; ++pair) {
      double pair_rate[3] = {0, 0, 0};
      for (Store store : {Store::kSegwal, Store::kRaftUv, Store::kTmpfs}) {
        if (store == Store::kTmpfs && tmpfs_root.empty()) continue;
        const std::string dir = absl::StrCat(
            store == Store::kTmpfs ? tmpfs_root : root, "/run", ++run_number);
        Run run;
        run.store = store;
        run.window = window;
        RunResult r = run.Go(dir);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        if (!r.ok) {
          std::printf("run %d/%d window %d %s: FAILED: %s\n", pair, FLAGS_pairs, window,
                      StoreName(store), r.error.c_str());
          failures++;
        } else {
          std::printf("run %d/%d window %d %s: %.0f commits/s (%llu in %.3f s; leader after "
                      "%.2f s, %d leader changes, %llu failed applies; per second: loop CPU %.2f, "
                      "loop waiting for a CPU %.2f, process CPU %.2f)\n",
                      pair, FLAGS_pairs, window, StoreName(store), r.commits_per_sec,
                      static_cast<unsigned long long>(r.commits), r.seconds,
                      r.election_seconds, r.leader_changes,
                      static_cast<unsigned long long>(r.failed_applies), r.loop_cpu,
                      r.loop_wait, r.process_cpu);
          std::fputs(r.wal_stats.c_str(), stdout);
          rates[static_cast<int>(store)].push_back(r.commits_per_sec);
          pair_rate[static_cast<int>(store)] = r.commits_per_sec;
        }
        std::fflush(stdout);
      }
      if (pair_rate[0] > 0 && pair_rate[1] > 0) ratios.push_back(pair_rate[0] / pair_rate[1]);
    }
    if (!rates[2].empty()) {
      tmpfs_rates.push_back(absl::StrFormat("window %d %.0f (%.2fx raft_uv on disk)", window,
                                         Median(rates[2]),
                                         Median(rates[1]) > 0
                                             ? Median(rates[2]) / Median(rates[1])
                                             : 0.0));
    }
    summary.push_back(absl::StrFormat(
        "window %d: segwal %.0f commits/s, raft_uv %.0f commits/s, ratio %.2fx", window,
        Median(rates[0]), Median(rates[1]), Median(ratios)));
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  if (!tmpfs_root.empty()) std::filesystem::remove_all(tmpfs_root, ec);
  if (!tmpfs_rates.empty()) {
    std::printf("raft_uv on tmpfs (storage costs almost nothing), commits/s: %s\n",
                absl::StrJoin(tmpfs_rates, ", ").c_str());
  }
  std::printf("commits/s: medians of the runs; ratio: median of the per-pair ratios "
              "(segwal run k / raft_uv run k)\n");
  for (const std::string& line : summary) std::printf("%s\n", line.c_str());
  if (failures > 0) {
    std::fprintf(stderr, "raft_bench: %d runs failed\n", failures);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace raftstore
}  // namespace segwal

int main(int argc, char** argv) { return segwal::raftstore::Main(argc, argv); }
