// Real process crashes, in the style of RocksDB's db_crashtest.py: runs
// wal_stress (stress/wal_stress.h) on the POSIX Env in a temporary directory,
// kills it, starts it again in verify mode, and repeats, on the same directory
// and expected-state file throughout.
//
// Each cycle kills the workload in one of three ways:
//   - SIGKILL at a random moment after the workload started;
//   - SIGKILL at a random moment after the process started (often inside Open,
//     recovery or verification);
//   - a kill point (wal/kill_point.h) in wal_stress_kill_points: _exit at a
//     seeded random kill point, or at a named one (Seal:BeforeFooter,
//     Truncate:AfterDelete, ...), with SIGKILL as a fallback;
// and now and then lets a short run end on its own. Then `wal_stress
// --verify_only` must find a log that holds everything acknowledged durable,
// nothing that was not appended, contiguous LSNs and intact payloads; and the
// next run verifies the same again before it appends.
//
// A SIGKILL loses nothing the OS already has: this is the process-crash path.
// Power loss is FaultInjectionEnv's job (wal/wal_crash_test.cc, and
// `wal_stress --env=fault`).
//
// Scale: SEGWAL_REAL_KILLS kills (default 220; 40 under sanitizers), or, when
// SEGWAL_CRASH_SECONDS is set (`make crash-test`), as many as fit in that time.
// SEGWAL_TEST_SEED replays the driver's choices (kill moments and kill points
// still race with the workload's threads). A failing cycle prints the driver
// seed, the cycle, the wal_stress seed and first bad LSN, and the directory
// is copied to $TEST_UNDECLARED_OUTPUTS_DIR.
//
// Prints one machine-readable line for CI (tools/durability_summary.sh):
//   SEGWAL_STATS real_kills=N ... acked_lost=0 phantom=0

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"
#include "wal/kill_point.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SEGWAL_DRIVER_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SEGWAL_DRIVER_SANITIZED 1
#endif
#endif
#ifndef SEGWAL_DRIVER_SANITIZED
#define SEGWAL_DRIVER_SANITIZED 0
#endif

namespace segwal {
namespace {

using Clock = std::chrono::steady_clock;

constexpr bool kSanitized = SEGWAL_DRIVER_SANITIZED != 0;

// The kill points of the WAL (SEGWAL_KILL_POINT in wal/*.cc), for runs
// restricted to one.
const char* const kKillPoints[] = {
    "Create:BeforeSyncDir", "Create:AfterSyncDir",   "Write:AfterAppend",
    "Seal:BeforeFooter",    "Seal:AfterFooterWrite", "Roll:BetweenSealAndCreate",
    "Sync:BeforeFsync",     "Truncate:AfterDelete",  "Truncate:AfterSyncDir",
    "Recover:AfterTruncateTail",
};

std::string Runfile(const char* env_override, const std::string& rel) {
  if (const char* p = getenv(env_override); p != nullptr && *p) return p;
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* ws = getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", ws ? ws : "segwal", "/", rel);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A wal_stress process: stdout through a pipe (to see "running"), stderr to
// a file.
class Child {
 public:
  Child(const std::string& binary, const std::vector<std::string>& args,
        const std::vector<std::string>& env, const std::string& err_path) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) dup2(err, 2);
      for (const std::string& kv : env) putenv(const_cast<char*>(kv.c_str()));
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(binary.c_str()));
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      Wait();
    }
    if (out_fd_ >= 0) close(out_fd_);
  }
  bool started() const { return pid_ > 0; }

  // Reads output until a line containing `marker` arrived (true), the
  // process closed stdout, or the deadline passed.
  bool WaitForLine(const std::string& marker, Clock::time_point deadline) {
    while (true) {
      if (out_.find(marker) != std::string::npos) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - Clock::now());
      if (left.count() <= 0) return false;
      if (!ReadSome(static_cast<int>(left.count()))) return false;
    }
  }
  // SIGKILL (if still running), then reap. Returns the wait status.
  int Kill() {
    kill(pid_, SIGKILL);
    return Wait();
  }
  // Waits up to `ms` for the process to end on its own; -1 if it did not.
  int WaitFor(int ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < deadline) {
      int status;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        Drain();
        return status;
      }
      ReadSome(2);
    }
    return -1;
  }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    Drain();
    return status;
  }
  const std::string& out() const { return out_; }

 private:
  bool ReadSome(int timeout_ms) {
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return true;  // timeout: keep waiting
    char buf[4096];
    const ssize_t n = read(out_fd_, buf, sizeof(buf));
    if (n <= 0) return false;
    out_.append(buf, static_cast<size_t>(n));
    return true;
  }
  void Drain() {
    while (true) {
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, 0) <= 0) return;
      char buf[4096];
      const ssize_t n = read(out_fd_, buf, sizeof(buf));
      if (n <= 0) return;
      out_.append(buf, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  bool reaped_ = false;
  std::string out_;
};

std::string DescribeStatus(int status) {
  if (status == -1) return "still running";
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  return absl::StrCat("status ", status);
}

// Sums "key=value" fields of the line starting with `tag`.
std::map<std::string, uint64_t> ParseTagged(const std::string& out,
                                            const std::string& tag) {
  std::map<std::string, uint64_t> m;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (!absl::StartsWith(line, tag)) continue;
    for (absl::string_view kv : absl::StrSplit(line, ' ')) {
      const size_t eq = kv.find('=');
      uint64_t v;
      if (eq != absl::string_view::npos &&
          absl::SimpleAtoi(kv.substr(eq + 1), &v)) {
        m[std::string(kv.substr(0, eq))] += v;
      }
    }
  }
  return m;
}

// Appends garbage to the newest segment: a torn write, which the next Open
// must cut (and where the kill point Recover:AfterTruncateTail sits).
void TearNewestSegment(const std::string& wal_dir, testutil::Random* rnd) {
  std::string newest;
  if (DIR* d = opendir(wal_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() == 24 && name.substr(20) == ".wal" && name > newest) {
        newest = name;
      }
    }
    closedir(d);
  }
  if (newest.empty()) return;
  std::string junk = rnd->RandomBytes(1 + rnd->Uniform(200));
  junk[0] = static_cast<char>(0x80 | junk[0]);  // not a zero fill
  const int fd = open((wal_dir + "/" + newest).c_str(), O_WRONLY | O_APPEND);
  if (fd < 0) return;
  ssize_t ignored = write(fd, junk.data(), junk.size());
  (void)ignored;
  close(fd);
}

struct DriverStats {
  uint64_t cycles = 0;
  uint64_t sigkills = 0;           // SIGKILL ended a running workload
  uint64_t early_sigkills = 0;     // ... of which soon after exec
  uint64_t kill_point_exits = 0;   // a kill point ended it
  uint64_t clean_exits = 0;
  uint64_t verify_runs = 0;
  uint64_t records_verified = 0;
  uint64_t acked_lost = 0;
  uint64_t phantom = 0;
  uint64_t dropped_bytes = 0;
  std::map<std::string, uint64_t> fired;  // kill point name -> exits
};

TEST(CrashDriverTest, KilledProcessesNeverLoseAcknowledgedRecords) {
  const std::string stress = Runfile("SEGWAL_WAL_STRESS", "stress/wal_stress");
  const std::string stress_kp =
      Runfile("SEGWAL_WAL_STRESS_KILL_POINTS", "stress/wal_stress_kill_points");
  ASSERT_EQ(access(stress.c_str(), X_OK), 0) << stress;
  const bool have_kp = access(stress_kp.c_str(), X_OK) == 0;

  const uint64_t seed = testutil::TestSeed(0xc4a5);
  const int64_t seconds = testutil::EnvInt("SEGWAL_CRASH_SECONDS", 0);
  const uint64_t target_kills = static_cast<uint64_t>(
      testutil::EnvInt("SEGWAL_REAL_KILLS", kSanitized ? 40 : 220));
  const auto end_time = Clock::now() + std::chrono::seconds(seconds);
  // Under a sanitizer every process start costs more; give runs more room.
  const int slow = kSanitized ? 4 : 1;

  testutil::TempDir tmp;
  const std::string dir = tmp.Join("stress");
  const std::string err_path = tmp.Join("stderr.txt");
  printf("crash driver: seed %" PRIu64 " (SEGWAL_TEST_SEED), dir %s, %s\n",
         seed, dir.c_str(),
         seconds > 0 ? absl::StrCat(seconds, " s").c_str()
                     : absl::StrCat(target_kills, " kills").c_str());
  testutil::Random rnd(seed);
  DriverStats st;
  const auto start = Clock::now();

  auto fail = [&](uint64_t cycle, const std::string& what,
                  const std::string& out) {
    std::string err = ReadFile(err_path);
    if (const char* outdir = getenv("TEST_UNDECLARED_OUTPUTS_DIR")) {
      const std::string cmd = absl::StrCat("cp -a '", dir, "' '", outdir,
                                           "/crash_driver_failed_dir'");
      if (system(cmd.c_str()) != 0) err += "\n(copying the directory failed)";
    }
    ADD_FAILURE() << "crash driver seed " << seed << ", cycle " << cycle
                  << ": " << what << "\n--- stdout ---\n"
                  << out << "--- stderr ---\n"
                  << err << "--- FAILED file ---\n"
                  << ReadFile(dir + "/FAILED");
  };

  auto next_progress = start + std::chrono::seconds(60);
  for (uint64_t cycle = 0;; ++cycle) {
    const uint64_t kills = st.sigkills + st.kill_point_exits;
    if (Clock::now() >= next_progress) {  // long runs (make crash-test)
      next_progress += std::chrono::seconds(60);
      printf("crash driver: %" PRIu64 " cycles, %" PRIu64 " kills, %" PRIu64
             " records verified so far\n",
             st.cycles, kills, st.records_verified);
      fflush(stdout);
    }
    if (seconds > 0 ? Clock::now() >= end_time : kills >= target_kills) break;
    st.cycles++;

    // ---- The run that gets killed. ----
    const uint64_t how = rnd.Uniform(100);
    const bool use_kp = have_kp && how < 40;
    const bool early = !use_kp && how >= 85;
    const bool short_clean = !use_kp && !early && how >= 80;
    std::vector<std::string> args = {
        "--dir=" + dir, absl::StrCat("--seed=", seed),
        absl::StrCat("--threads=", 1 + rnd.Uniform(6)),
        absl::StrCat("--duration_ms=", short_clean ? 5 + rnd.Uniform(20) : 5000)};
    std::vector<std::string> env;
    std::string kp_desc;
    if (use_kp) {
      const bool named = rnd.OneIn(2);
      const uint64_t odds = named ? 1 + rnd.Uniform(3)
                                  : std::vector<uint64_t>{20, 100, 500}[rnd.Uniform(3)];
      env.push_back(absl::StrCat("SEGWAL_KILL_ODDS=", odds));
      env.push_back(absl::StrCat("SEGWAL_KILL_SEED=", rnd.Next64()));
      if (named) {
        const char* point = kKillPoints[rnd.Uniform(std::size(kKillPoints))];
        env.push_back(absl::StrCat("SEGWAL_KILL_POINT=", point));
        if (std::string(point) == "Recover:AfterTruncateTail") {
          TearNewestSegment(dir + "/wal", &rnd);
        }
        kp_desc = absl::StrCat(point, " 1/", odds);
      } else {
        kp_desc = absl::StrCat("any 1/", odds);
      }
    }
    Child run(use_kp ? stress_kp : stress, args, env, err_path);
    ASSERT_TRUE(run.started());
    int status;
    if (early) {
      usleep(static_cast<useconds_t>(rnd.Uniform(30000 * slow)));
      status = run.Kill();
    } else {
      const bool running = run.WaitForLine(
          "wal_stress: running", Clock::now() + std::chrono::seconds(30 * slow));
      if (!running) {
        // It may have ended before starting (a kill point in recovery): its
        // stdout closes a moment before it can be reaped, so give that time
        // (10 ms was too short on a loaded machine); a hung one is killed.
        status = run.WaitFor(10000 * slow);
        if (status == -1) {
          status = run.Kill();
          fail(cycle, "wal_stress did not start its workload within 30 s",
               run.out());
          return;
        }
      } else if (use_kp) {
        status = run.WaitFor((100 + static_cast<int>(rnd.Uniform(200))) * slow);
        if (status == -1) status = run.Kill();
      } else if (short_clean) {
        status = run.WaitFor(30000 * slow);
        if (status == -1) status = run.Kill();
      } else {
        usleep(static_cast<useconds_t>(rnd.Uniform(40000)));
        status = run.Kill();
      }
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      st.sigkills++;
      if (early) st.early_sigkills++;
    } else if (WIFEXITED(status) &&
               WEXITSTATUS(status) == kill_point::kKillExitCode) {
      st.kill_point_exits++;
      const std::string err = ReadFile(err_path);
      const std::string tag = "SEGWAL_KILL_POINT fired: ";
      const size_t at = err.find(tag);
      st.fired[at == std::string::npos
                   ? "?"
                   : err.substr(at + tag.size(),
                                err.find('\n', at) - at - tag.size())]++;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      st.clean_exits++;
    } else {
      fail(cycle,
           absl::StrCat("wal_stress ", DescribeStatus(status),
                        use_kp ? " (kill points " + kp_desc + ")" : ""),
           run.out());
      return;
    }
    if (access((dir + "/FAILED").c_str(), F_OK) == 0) {
      fail(cycle, "wal_stress wrote a FAILED file", run.out());
      return;
    }

    // ---- Restart in verify mode. ----
    Child verify(stress, {"--dir=" + dir, "--verify_only"}, {}, err_path);
    ASSERT_TRUE(verify.started());
    const int vstatus = verify.WaitFor(60000 * slow);
    st.verify_runs++;
    const auto v = ParseTagged(verify.out(), "WAL_STRESS_VERIFY");
    if (v.count("acked_lost")) st.acked_lost += v.at("acked_lost");
    if (v.count("phantom")) st.phantom += v.at("phantom");
    if (v.count("records")) st.records_verified += v.at("records");
    if (v.count("dropped_bytes")) st.dropped_bytes += v.at("dropped_bytes");
    if (vstatus == -1 || !WIFEXITED(vstatus) || WEXITSTATUS(vstatus) != 0) {
      fail(cycle,
           absl::StrCat("verification after ",
                        use_kp ? "kill points " + kp_desc
                        : early ? "an early SIGKILL"
                                : "a SIGKILL",
                        " failed (", DescribeStatus(vstatus), ")"),
           verify.out());
      return;
    }
  }

  const double secs =
      std::chrono::duration<double>(Clock::now() - start).count();
  std::string fired;
  for (const auto& [name, n] : st.fired) absl::StrAppend(&fired, name, " ", n, ", ");
  printf("crash driver: %" PRIu64 " cycles in %.1f s: %" PRIu64
         " SIGKILLs (%" PRIu64 " soon after exec), %" PRIu64
         " kill-point exits, %" PRIu64 " clean exits; %" PRIu64
         " verifications, %" PRIu64 " records verified, %" PRIu64
         " bytes dropped by recovery\n",
         st.cycles, secs, st.sigkills, st.early_sigkills, st.kill_point_exits,
         st.clean_exits, st.verify_runs, st.records_verified, st.dropped_bytes);
  printf("crash driver: kill points fired: %s\n",
         have_kp ? fired.c_str() : "(no kill-point binary)");
  printf("SEGWAL_STATS real_kills=%" PRIu64 " kill_point_exits=%" PRIu64
         " verify_runs=%" PRIu64 " records_verified=%" PRIu64
         " acked_lost=%" PRIu64 " phantom=%" PRIu64 "\n",
         st.sigkills + st.kill_point_exits, st.kill_point_exits,
         st.verify_runs, st.records_verified, st.acked_lost, st.phantom);
  fflush(stdout);
  EXPECT_EQ(st.acked_lost, 0u);
  EXPECT_EQ(st.phantom, 0u);
  if (seconds == 0) {
    EXPECT_GE(st.sigkills + st.kill_point_exits, target_kills);
  }
  if (have_kp) {
    EXPECT_GT(st.kill_point_exits, 0u);
  }
}

}  // namespace
}  // namespace segwal
