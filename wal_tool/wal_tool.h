// wal_tool: inspect, verify and repair a segwal WAL directory (README.md,
// "wal_tool"). The command-line logic lives here as a function so tests can run
// it in-process and check its output and exit code; main.cc only forwards argv.
//
//   wal_tool dump   --wal_dir=D [--from_lsn=N] [--limit=K] [--format=text|json]
//                   [--payload=hex|escaped|none] [--key_file=F ...]
//   wal_tool verify --wal_dir=D [--key_file=F ...]
//   wal_tool stats  --wal_dir=D [--top=N] [--key_file=F ...]
//   wal_tool repair --wal_dir=D [--dry_run]
//
// dump, verify and stats never write to the WAL and take no lock. repair takes
// the WAL's LOCK (Env::LockFile) and refuses to run while it is held.
//
// Flags are gflags flags (DEFINE_* in wal_tool.cc), set through gflags'
// SetCommandLineOption so that a bad flag is a usage error (exit 2) instead of
// gflags' exit(1), and restored to their defaults when Run returns.
//
// Thread safety: Run uses process-wide flags: one call at a time.

#ifndef SEGWAL_WAL_TOOL_WAL_TOOL_H_
#define SEGWAL_WAL_TOOL_WAL_TOOL_H_

#include <ostream>
#include <string>
#include <vector>

#include "env/env.h"

namespace segwal {
namespace wal_tool {

// Exit codes.
inline constexpr int kExitOk = 0;      // clean / done
inline constexpr int kExitDamage = 1;  // damage found (or left after repair)
inline constexpr int kExitUsage = 2;   // bad command line or input: unknown
                                       // command or flag, missing or non-WAL
                                       // directory, unusable or wrong key file
inline constexpr int kExitFailed =
    3;  // could not do the job: the WAL is locked
        // by another process, an I/O error

// Runs one command. `args` excludes the program name ("dump", "--wal_dir=..."
// ...). Results go to `out`; errors and notes go to `err` (an error is one
// line starting with "wal_tool: "). `env` nullptr => Env::Default().
int Run(const std::vector<std::string>& args, std::ostream& out,
        std::ostream& err, Env* env = nullptr);

}  // namespace wal_tool
}  // namespace segwal

#endif  // SEGWAL_WAL_TOOL_WAL_TOOL_H_
