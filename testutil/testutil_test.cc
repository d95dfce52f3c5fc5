#include "testutil/testutil.h"

#include <sys/stat.h>

#include <set>

namespace segwal {
namespace testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RandomTest, SameSeedSameSequence) {
  Random a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.Next64();
    EXPECT_EQ(x, b.Next64());
    differs |= (x != c.Next64());
  }
  EXPECT_TRUE(differs);
}

TEST(RandomTest, UniformStaysInRangeAndCoversIt) {
  Random r(7);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    uint64_t v = r.Uniform(10);
    ASSERT_LT(v, 10u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 10u);
}

TEST(RandomTest, RandomStringIsPrintable) {
  Random r(1);
  std::string s = r.RandomString(500);
  ASSERT_EQ(s.size(), 500u);
  for (char ch : s) EXPECT_TRUE(ch >= ' ' && ch <= '~');
}

TEST(TempDirTest, CreatedAndRemovedWithContents) {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    ASSERT_TRUE(S_ISDIR(st.st_mode));
    ASSERT_EQ(mkdir(dir.Join("sub").c_str(), 0755), 0);
    FILE* f = fopen((dir.Join("sub") + "/f").c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("x", f);
    fclose(f);
  }
  struct stat st;
  EXPECT_NE(stat(path.c_str(), &st), 0);
}

TEST(MatchersTest, StatusMatchers) {
  EXPECT_THAT(absl::OkStatus(), IsOk());
  EXPECT_THAT(absl::NotFoundError("x"), Not(IsOk()));
  EXPECT_THAT(absl::DataLossError("file a offset 12"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("offset 12")));
  EXPECT_THAT(absl::DataLossError("x"),
              Not(StatusIs(absl::StatusCode::kNotFound)));
  absl::StatusOr<int> v = 5;
  EXPECT_THAT(v, IsOkAndHolds(5));
  EXPECT_THAT(v, Not(IsOkAndHolds(6)));
  ASSERT_OK_AND_ASSIGN(int got, v);
  EXPECT_EQ(got, 5);
}

}  // namespace
}  // namespace testutil
}  // namespace segwal
