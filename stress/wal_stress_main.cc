// wal_stress: see stress/wal_stress.h. Usage:
//
//   wal_stress --dir=D [--seed=S] [--threads=4] [--duration_ms=50]
//       Real files (POSIX Env). Opens D/wal, verifies it against
//       D/expected_state, then runs one generation of workload and exits 0.
//       Meant to be killed at any moment (stress/crash_driver_test.cc) and
//       started again: every start verifies what the last one left.
//   wal_stress --dir=D --verify_only
//       Opens, verifies, exits: 0 if the log is right, 1 if not.
//   wal_stress --env=mem|fault [--cycles=20] [--seed=S] [--max_ops=N]
//       In-process: cycles of workload, then (fault) a simulated power loss in
//       a seeded CrashMode through FaultInjectionEnv over MemEnv, or (mem) a
//       clean close; each reopen is verified.
//
// Other flags: --max_ops=N (per thread and generation), --segment_size=B,
// --write_buffer=B, --max_body=B.
//
// Output: "wal_stress: ..." lines for people; one machine-readable line per
// verification,
//   WAL_STRESS_VERIFY ok=1 records=N acked_lost=0 phantom=0 dropped_bytes=B
// and "wal_stress: running generation G" once the workload starts.
// A failure prints the seed, the generation and the first bad LSN, writes the
// same line to D/FAILED, and exits 1. Exit 2: bad usage or setup.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "stress/expected_state.h"
#include "stress/wal_stress.h"

namespace segwal {
namespace stress {
namespace {

struct Flags {
  std::string dir;
  std::string env = "posix";
  uint64_t seed = 1;
  bool seed_given = false;
  bool verify_only = false;
  int64_t cycles = 20;
  StressOptions options;
};

void Say(const std::string& line) {
  // One write(2) per line, unbuffered: a SIGKILL never leaves half a line
  // or loses one that was "printed".
  const std::string l = line + "\n";
  ssize_t ignored = write(1, l.data(), l.size());
  (void)ignored;
}

[[noreturn]] void Usage(const std::string& why) {
  fprintf(stderr, "wal_stress: %s\n", why.c_str());
  fprintf(stderr,
          "usage: wal_stress --dir=D [--verify_only] [--seed=S] [--threads=N]\n"
          "                  [--duration_ms=N] [--max_ops=N]\n"
          "       wal_stress --env=mem|fault [--cycles=N] [--seed=S] ...\n");
  exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--verify_only") {
      f.verify_only = true;
      continue;
    }
    const size_t eq = a.find('=');
    if (!absl::StartsWith(a, "--") || eq == absl::string_view::npos) {
      Usage(absl::StrCat("bad argument ", a));
    }
    const absl::string_view name = a.substr(2, eq - 2);
    const absl::string_view value = a.substr(eq + 1);
    uint64_t n = 0;
    const bool numeric = absl::SimpleAtoi(value, &n);
    auto need_number = [&] {
      if (!numeric) Usage(absl::StrCat("--", name, " needs a number"));
    };
    if (name == "dir") {
      f.dir = std::string(value);
    } else if (name == "env") {
      f.env = std::string(value);
    } else if (name == "seed") {
      need_number();
      f.seed = n;
      f.seed_given = true;
    } else if (name == "threads") {
      need_number();
      f.options.threads = static_cast<int>(n);
    } else if (name == "duration_ms") {
      need_number();
      f.options.duration_ms = n;
    } else if (name == "max_ops") {
      need_number();
      f.options.max_ops = n;
    } else if (name == "cycles") {
      need_number();
      f.cycles = static_cast<int64_t>(n);
    } else if (name == "segment_size") {
      need_number();
      f.options.segment_target_size = n;
    } else if (name == "write_buffer") {
      need_number();
      f.options.write_buffer_size = n;
    } else if (name == "max_body") {
      need_number();
      f.options.max_body = static_cast<uint32_t>(n);
    } else {
      Usage(absl::StrCat("unknown flag --", name));
    }
  }
  if (f.options.threads < 1) Usage("--threads must be at least 1");
  if (f.env != "posix" && f.env != "mem" && f.env != "fault") {
    Usage("--env must be posix, mem or fault");
  }
  if (f.env == "posix" && f.dir.empty()) Usage("--dir is required");
  return f;
}

// Prints the failure, leaves it in dir/FAILED (synced) for a driver that may
// not see this process's exit status, and exits 1.
[[noreturn]] void Failed(const Flags& f, const ExpectedState& state,
                         uint64_t first_bad_lsn, const std::string& what) {
  const std::string line = absl::StrCat(
      "wal_stress: FAILED: seed ", state.seed, " generation ", state.generation,
      first_bad_lsn != 0 ? absl::StrCat(" first bad LSN ", first_bad_lsn) : "",
      ": ", what);
  Say(line);
  fprintf(stderr, "%s\n", line.c_str());
  if (!f.dir.empty()) {
    const std::string path = f.dir + "/FAILED";
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      const std::string l = line + "\n";
      ssize_t ignored = write(fd, l.data(), l.size());
      (void)ignored;
      fsync(fd);
      close(fd);
    }
  }
  exit(1);
}

void SayVerify(const VerifyResult& v, const ExpectedState& state,
               const RecoveryReport& report) {
  uint64_t dropped = 0;
  for (const RecoveryDrop& d : report.drops) dropped += d.bytes;
  Say(absl::StrCat("wal_stress: verified ", DescribeVerify(v, state),
                   "; recovery dropped ", dropped, " bytes in ",
                   report.drops.size(), " pieces"));
  Say(absl::StrCat("WAL_STRESS_VERIFY ok=", v.ok ? 1 : 0,
                   " records=", v.records, " acked_lost=", v.acked_lost,
                   " phantom=", v.phantom, " dropped_bytes=", dropped));
}

int RunPosix(Flags& f) {
  if (mkdir(f.dir.c_str(), 0755) != 0 && errno != EEXIST) {
    Usage(absl::StrCat("cannot create ", f.dir, ": ", strerror(errno)));
  }
  ExpectedState initial;
  initial.seed = f.seed;
  bool created = false;
  auto store = ExpectedStateFile::Open(f.dir + "/expected_state", initial,
                                       &created);
  if (!store.ok()) {
    fprintf(stderr, "wal_stress: %s\n", store.status().ToString().c_str());
    return 2;
  }
  auto loaded = (*store)->Load();
  if (!loaded.ok()) Failed(f, initial, 0, loaded.status().ToString());
  ExpectedState state = *loaded;
  if (f.seed_given && state.seed != f.seed) {
    Say(absl::StrCat("wal_stress: ", f.dir, " belongs to seed ", state.seed,
                     "; continuing it (--seed=", f.seed, " ignored)"));
  }
  f.options.wal_dir = f.dir + "/wal";
  SegmentedWalOptions wo =
      WalOptionsFor(f.options, state.seed, state.generation + 1);
  auto wal = SegmentedWal::Open(wo);
  if (!wal.ok()) {
    Failed(f, state, 0,
           absl::StrCat("Open after a crash failed: ", wal.status().ToString()));
  }
  const VerifyResult v = VerifyWal(**wal, state, /*check_durable=*/true);
  SayVerify(v, state, (*wal)->recovery_report());
  if (!v.ok) Failed(f, state, v.first_bad_lsn, v.error);
  if (f.verify_only) return 0;

  Say(absl::StrCat("wal_stress: running generation ", state.generation + 1,
                   " (seed ", state.seed, ", segment_target_size ",
                   wo.segment_target_size, ", write_buffer_size ",
                   wo.write_buffer_size, ", ", f.options.threads,
                   " threads)"));
  GenerationStats stats;
  absl::Status s = RunGeneration(f.options, wal->get(), store->get(), &state,
                                 &stats);
  if (!s.ok()) Failed(f, state, 0, s.ToString());
  wal->reset();
  Say(absl::StrCat("wal_stress: generation ", state.generation,
                   " done: ", stats.ToString()));
  return 0;
}

int RunInProcess(Flags& f) {
  std::unique_ptr<Env> mem = NewMemEnv();
  std::unique_ptr<FaultInjectionEnv> fault;
  f.options.env = mem.get();
  if (f.env == "fault") {
    fault = std::make_unique<FaultInjectionEnv>(mem.get());
    f.options.env = fault.get();
  }
  f.options.wal_dir = "/wal";
  if (f.options.max_ops == 0) f.options.max_ops = 400;
  f.options.duration_ms = 600000;  // generations end after max_ops
  const CycleReport r =
      RunCycles(f.options, fault.get(), f.seed, static_cast<int>(f.cycles));
  Say(absl::StrCat("WAL_STRESS_VERIFY ok=", r.failure.empty() ? 1 : 0,
                   " records=", r.records_verified, " acked_lost=",
                   r.acked_lost, " phantom=", r.phantom,
                   " dropped_bytes=", r.dropped_bytes));
  if (!r.failure.empty()) {
    Say("wal_stress: FAILED: " + r.failure);
    return 1;
  }
  Say(absl::StrCat("wal_stress: ", r.cycles, " ", f.env, " cycles (",
                   r.crashes, " simulated power losses) passed, seed ",
                   f.seed, ": ", r.workload.ToString(), "; ",
                   r.records_verified, " records verified"));
  return 0;
}

}  // namespace
}  // namespace stress
}  // namespace segwal

int main(int argc, char** argv) {
  segwal::stress::Flags f = segwal::stress::ParseFlags(argc, argv);
  if (f.env == "posix") return segwal::stress::RunPosix(f);
  return segwal::stress::RunInProcess(f);
}
