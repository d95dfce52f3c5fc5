// Kill points: named places inside the WAL where a crash-test build may end the
// process on the spot, so a driver (stress/crash_driver_test.cc) can test
// recovery from a crash at exactly that place. Modelled on RocksDB's
// TEST_KILL_RANDOM.
//
// SEGWAL_KILL_POINT("Seal:BeforeFooter") compiles to nothing unless the file is
// built with SEGWAL_KILL_POINTS defined (`bazel build --define=kill_points=1`,
// see wal/BUILD.bazel). Normal builds carry no code, no branch, no string.
//
// In a kill-point build, the process is configured from its environment, read
// once (at the first kill point reached):
//   SEGWAL_KILL_ODDS=N      each kill point reached fires with probability 1/N
//                           (unset or 0: never; 1: the first one reached)
//   SEGWAL_KILL_SEED=S      seeds the choice: the same seed and the same order of
//                           kill points reached give the same decisions
//   SEGWAL_KILL_POINT=name  only the kill point of that exact name may fire
// A kill point that fires writes "SEGWAL_KILL_POINT fired: <name>" to stderr
// and calls _exit(kKillExitCode): no destructors, no atexit handlers, no flush
// of user-space buffers (stdio or the Env's) — what the OS already has stays,
// like after SIGKILL.
//
// Thread safety: kill points may be reached from several threads at once.

#ifndef SEGWAL_WAL_KILL_POINT_H_
#define SEGWAL_WAL_KILL_POINT_H_

namespace segwal {
namespace kill_point {

// The exit status of a process ended by a kill point.
inline constexpr int kKillExitCode = 97;

// Decides (seeded) whether the kill point `name` fires; if so, never returns.
void MaybeKill(const char* name);

}  // namespace kill_point
}  // namespace segwal

#ifdef SEGWAL_KILL_POINTS
#define SEGWAL_KILL_POINT(name) ::segwal::kill_point::MaybeKill(name)
#else
#define SEGWAL_KILL_POINT(name) \
  do {                          \
  } while (false)
#endif

#endif  // SEGWAL_WAL_KILL_POINT_H_
