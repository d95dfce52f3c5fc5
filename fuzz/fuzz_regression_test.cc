// Replays every committed fuzz input — the seed corpora (fuzz/corpus/<target>)
// and the inputs that once crashed a target (fuzz/regressions/<target>) —
// through the same entry points the libFuzzer binaries use, so `make test`
// (and its ASan/TSan runs) keep every crash fixed without clang or libFuzzer.
// A target aborts on a broken promise (FUZZ_CHECK), which fails this test.

#include <dirent.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/fuzz_targets.h"
#include "gtest/gtest.h"

namespace segwal {
namespace fuzz {
namespace {

struct Target {
  const char* name;
  int (*fn)(const uint8_t*, size_t);
};

const Target kTargets[] = {
    {"segment_reader", SegmentReaderTarget},
    {"footer_decoder", FooterDecoderTarget},
    {"open_directory", OpenDirectoryTarget},
    {"key_file", KeyFileTarget},
    {"recovery_verdict", RecoveryVerdictTarget},
    {"resp_parser", RespParserTarget},
};

std::string FuzzDir() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* ws = getenv("TEST_WORKSPACE");
  if (srcdir == nullptr) return "fuzz";
  return std::string(srcdir) + "/" + (ws ? ws : "segwal") + "/fuzz";
}

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    out.push_back(dir + "/" + e->d_name);
  }
  closedir(d);
  return out;
}

class FuzzRegressionTest : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzRegressionTest, EveryCommittedInputPasses) {
  const Target& t = GetParam();
  uint64_t corpus = 0, regressions = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    for (const std::string& path :
         Files(FuzzDir() + "/" + kind + "/" + t.name)) {
      std::ifstream in(path, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string bytes = ss.str();
      SCOPED_TRACE(path);
      // Crashes and FUZZ_CHECK aborts end the test binary, naming the input
      // on stderr first.
      fprintf(stderr, "replaying %s\n", path.c_str());
      EXPECT_EQ(t.fn(reinterpret_cast<const uint8_t*>(bytes.data()),
                     bytes.size()),
                0);
      (std::string(kind) == "corpus" ? corpus : regressions)++;
    }
  }
  printf("%s: %" PRIu64 " corpus inputs, %" PRIu64 " regression inputs\n",
         t.name, corpus, regressions);
  printf("SEGWAL_STATS fuzz_inputs_replayed=%" PRIu64 "\n", corpus + regressions);
  EXPECT_GT(corpus, 0u) << "no seed corpus for " << t.name;
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzRegressionTest,
                         ::testing::ValuesIn(kTargets),
                         [](const auto& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace fuzz
}  // namespace segwal
