#include "wal/kill_point.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace segwal {
namespace kill_point {
namespace {

struct Config {
  uint64_t odds = 0;  // 0: never fire
  uint64_t seed = 0;
  std::string only;  // "" = any kill point
};

uint64_t EnvU64(const char* name) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  return strtoull(v, nullptr, 10);
}

const Config& GetConfig() {
  // Read once; a function-local static is initialised thread-safely.
  static const Config* config = [] {
    auto* c = new Config;
    c->odds = EnvU64("SEGWAL_KILL_ODDS");
    c->seed = EnvU64("SEGWAL_KILL_SEED");
    const char* only = getenv("SEGWAL_KILL_POINT");
    if (only != nullptr) c->only = only;
    return c;
  }();
  return *config;
}

uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::atomic<uint64_t> g_reached{0};

}  // namespace

void MaybeKill(const char* name) {
  const Config& c = GetConfig();
  if (c.odds == 0) return;
  if (!c.only.empty() && c.only != name) return;
  // The n-th kill point reached (in this process) fires iff a hash of
  // (seed, n) falls in 1/odds: deterministic for a deterministic schedule.
  const uint64_t n = g_reached.fetch_add(1, std::memory_order_relaxed);
  if (Mix(c.seed ^ Mix(n)) % c.odds != 0) return;
  // write(2), not stdio: nothing buffered may be flushed on the way out.
  static const char kPrefix[] = "SEGWAL_KILL_POINT fired: ";
  ssize_t ignored = write(2, kPrefix, sizeof(kPrefix) - 1);
  ignored = write(2, name, strlen(name));
  ignored = write(2, "\n", 1);
  (void)ignored;
  _exit(kKillExitCode);
}

}  // namespace kill_point
}  // namespace segwal
