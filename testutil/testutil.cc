#include "testutil/testutil.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/numbers.h"

namespace segwal {
namespace testutil {
namespace {

uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Random::Random(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : s_) s = SplitMix64(&x);
}

uint64_t Random::Next64() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

uint64_t Random::Uniform(uint64_t n) { return Next64() % n; }

uint64_t Random::Skewed(int max_log) {
  return Uniform(uint64_t{1} << Uniform(max_log + 1));
}

std::string Random::RandomBytes(size_t len) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>(Next64() & 0xff);
  return s;
}

std::string Random::RandomString(size_t len) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>(' ' + Uniform(95));
  return s;
}

int64_t EnvInt(const char* name, int64_t default_value) {
  const char* v = getenv(name);
  int64_t out;
  if (v == nullptr || !absl::SimpleAtoi(v, &out)) return default_value;
  return out;
}

uint64_t TestSeed(uint64_t default_seed) {
  const char* v = getenv("SEGWAL_TEST_SEED");
  uint64_t out;
  if (v == nullptr || !absl::SimpleAtoi(v, &out)) return default_seed;
  return out;
}

TempDir::TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base ? base : "/tmp") +
                     "/segwal_test_XXXXXX";
  char* made = mkdtemp(tmpl.data());
  if (made == nullptr) {
    fprintf(stderr, "TempDir: mkdtemp(%s): %s\n", tmpl.c_str(), strerror(errno));
    abort();
  }
  path_ = made;
}

TempDir::~TempDir() { RemoveTree(path_); }

void RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = opendir(path.c_str())) {
      while (struct dirent* e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        RemoveTree(path + "/" + e->d_name);
      }
      closedir(d);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

}  // namespace testutil
}  // namespace segwal
