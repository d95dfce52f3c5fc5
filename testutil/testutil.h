// What segwal's tests share: seeded random data, temporary directories that clean
// up after themselves, and gtest matchers/macros for absl::Status and StatusOr.
//
// Thread safety: Random is not thread-safe (give each thread its own); TempDir is
// owned by one test.

#ifndef SEGWAL_TESTUTIL_TESTUTIL_H_
#define SEGWAL_TESTUTIL_TESTUTIL_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace segwal {
namespace testutil {

// A deterministic pseudo-random generator (splitmix64 seeding xoshiro256**): the
// same seed gives the same sequence on every machine.
class Random {
 public:
  explicit Random(uint64_t seed);
  uint64_t Next64();
  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t Uniform(uint64_t n);
  // True with probability 1/n. REQUIRES: n > 0.
  bool OneIn(uint64_t n) { return Uniform(n) == 0; }
  // Picks a length skewed toward small values: uniform in [0, 2^Uniform(max_log+1)).
  uint64_t Skewed(int max_log);
  // `len` random bytes (all 256 values occur).
  std::string RandomBytes(size_t len);
  // `len` random printable characters.
  std::string RandomString(size_t len);

 private:
  uint64_t s_[4];
};

// The seed a test should use: $SEGWAL_TEST_SEED when set, else `default_seed`.
// Tests print it on failure so a run can be replayed.
uint64_t TestSeed(uint64_t default_seed);

// An integer from the environment (e.g. SEGWAL_CRASH_CYCLES), or `default_value`.
int64_t EnvInt(const char* name, int64_t default_value);

// A fresh, empty directory on the real file system (under $TEST_TMPDIR when Bazel
// sets it, else /tmp), removed with everything in it when the TempDir is destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Removes `path` and everything below it (POSIX). Missing is fine.
void RemoveTree(const std::string& path);

// ---- Crash checks against a model. ----

// The durability rule of a crash test that models what it wrote as a state
// and a list of changes: after a power cut, the recovered state must be
// `before` with the first `acked` of `submitted` applied (acknowledged changes
// survive) and possibly more of them, in the order submitted (an
// unacknowledged change may survive, but only with every change before it;
// nothing is invented). `apply(change, &state)` applies one change. True if
// `recovered` is one of those states.
// REQUIRES: acked <= submitted.size().
template <typename State, typename Change, typename Apply>
bool RecoveredStateKeepsAcknowledgedPrefix(const State& before,
                                           const std::vector<Change>& submitted,
                                           size_t acked, const State& recovered,
                                           Apply apply) {
  State expect = before;
  for (size_t k = 0; k < acked; ++k) apply(submitted[k], &expect);
  bool matched = recovered == expect;
  for (size_t k = acked; !matched && k < submitted.size(); ++k) {
    apply(submitted[k], &expect);
    matched = recovered == expect;
  }
  return matched;
}

// ---- absl::Status matchers and macros. ----

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::segwal::testutil::GetStatus(arg);
  if (!s.ok()) *result_listener << "status: " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code,
          std::string("has code ") + absl::StatusCodeToString(code)) {
  const absl::Status& s = ::segwal::testutil::GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code;
}

// Code and a matcher (e.g. testing::HasSubstr("offset 12")) for the message.
MATCHER_P2(StatusIs, code, message_matcher,
           std::string("has code ") + absl::StatusCodeToString(code)) {
  const absl::Status& s = ::segwal::testutil::GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code &&
         ::testing::Matches(message_matcher)(std::string(s.message()));
}

MATCHER_P(IsOkAndHolds, value_matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status: " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace testutil
}  // namespace segwal

#define SEGWAL_TESTUTIL_CONCAT_INNER(a, b) a##b
#define SEGWAL_TESTUTIL_CONCAT(a, b) SEGWAL_TESTUTIL_CONCAT_INNER(a, b)

#define ASSERT_OK(expr) \
  ASSERT_THAT((expr), ::segwal::testutil::IsOk())
#define EXPECT_OK(expr) \
  EXPECT_THAT((expr), ::segwal::testutil::IsOk())

// ASSERT_OK_AND_ASSIGN(auto file, env->NewWritableFile(path));
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                   \
  auto SEGWAL_TESTUTIL_CONCAT(_statusor_, __LINE__) = (rexpr);             \
  ASSERT_TRUE(SEGWAL_TESTUTIL_CONCAT(_statusor_, __LINE__).ok())           \
      << SEGWAL_TESTUTIL_CONCAT(_statusor_, __LINE__).status();            \
  lhs = std::move(SEGWAL_TESTUTIL_CONCAT(_statusor_, __LINE__)).value()

#endif  // SEGWAL_TESTUTIL_TESTUTIL_H_
