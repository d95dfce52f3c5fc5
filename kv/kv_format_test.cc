// Tests of segkv's on-disk encodings (kv/FORMAT.md): record payloads,
// checkpoint files (every damaged byte is caught), and KEYS globs.

#include <string>

#include "env/mem_env.h"
#include "gtest/gtest.h"
#include "kv/checkpoint_file.h"
#include "kv/kv_store.h"
#include "kv/record_codec.h"
#include "testutil/testutil.h"

namespace segwal {
namespace kv {
namespace {

using ::segwal::testutil::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(RecordCodecTest, EveryOpRoundTrips) {
  const std::string value_with_nul("v\0w", 3);
  Mutation set{KvOp::kSet, {"k"}, {value_with_nul}, 0};
  Mutation del{KvOp::kDel, {"a", "", "c"}, {}, 0};
  Mutation mset{KvOp::kMSet, {"a", "b"}, {"1", ""}, 0};
  Mutation incr{KvOp::kIncrBy, {"n"}, {}, -5};
  Mutation flush{KvOp::kFlushAll, {}, {}, 0};

  std::string p = EncodeRecord(set, 0);
  ASSERT_OK_AND_ASSIGN(DecodedRecord r, DecodeRecord(1, p));
  EXPECT_EQ(r.op, KvOp::kSet);
  EXPECT_THAT(r.keys, ElementsAre("k"));
  EXPECT_THAT(r.values, ElementsAre(std::string("v\0w", 3)));

  p = EncodeRecord(del, 0);
  ASSERT_OK_AND_ASSIGN(r, DecodeRecord(2, p));
  EXPECT_THAT(r.keys, ElementsAre("a", "", "c"));

  p = EncodeRecord(mset, 0);
  ASSERT_OK_AND_ASSIGN(r, DecodeRecord(3, p));
  EXPECT_THAT(r.keys, ElementsAre("a", "b"));
  EXPECT_THAT(r.values, ElementsAre("1", ""));

  p = EncodeRecord(incr, INT64_MIN);
  ASSERT_OK_AND_ASSIGN(r, DecodeRecord(4, p));
  EXPECT_EQ(r.delta, -5);
  EXPECT_EQ(r.result, INT64_MIN);

  p = EncodeRecord(flush, 0);
  EXPECT_TRUE(p.empty());
  ASSERT_OK_AND_ASSIGN(r, DecodeRecord(5, p));
  EXPECT_EQ(r.op, KvOp::kFlushAll);
}

TEST(RecordCodecTest, UnknownTypeIsDataLossNamingTheType) {
  EXPECT_THAT(DecodeRecord(99, "x").status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("type 99")));
}

TEST(RecordCodecTest, TruncatedOrPaddedPayloadsAreDataLoss) {
  Mutation mset{KvOp::kMSet, {"key1", "key2"}, {"value1", "value2"}, 0};
  const std::string p = EncodeRecord(mset, 0);
  for (size_t n = 0; n < p.size(); ++n) {
    EXPECT_THAT(DecodeRecord(3, p.substr(0, n)).status(),
                StatusIs(absl::StatusCode::kDataLoss))
        << "prefix of " << n << " bytes";
  }
  EXPECT_THAT(DecodeRecord(3, p + "x").status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("trailing")));
  Mutation incr{KvOp::kIncrBy, {"n"}, {}, 1};
  EXPECT_THAT(DecodeRecord(4, EncodeRecord(incr, 2) + "?").status(),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeRecord(5, "?").status(),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(RecordCodecTest, HugeCountDoesNotAllocate) {
  std::string p;
  PutVarint64(&p, uint64_t{1} << 60);
  EXPECT_THAT(DecodeRecord(2, p).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("count")));
}

TEST(RecordCodecTest, ZigZagCoversTheExtremes) {
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1}, INT64_MAX, INT64_MIN}) {
    EXPECT_EQ(UnZigZag(ZigZag(v)), v);
  }
}

class CheckpointFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(env_->CreateDirIfMissing("/ck"));
    for (int i = 0; i < 300; ++i) {
      map_[absl::StrCat("key", 1000 + i)] =
          KvEntry{std::make_shared<const std::string>(std::string(i % 7, 'v')), 9};
    }
  }
  std::string Contents(const std::string& path) {
    auto f = env_->NewSequentialFile(path);
    std::string out, scratch(1 << 16, '\0');
    absl::string_view got;
    do {
      EXPECT_OK((*f)->Read(scratch.size(), &got, scratch.data()));
      out.append(got.data(), got.size());
    } while (!got.empty());
    return out;
  }
  void Rewrite(const std::string& path, const std::string& data) {
    auto f = env_->NewWritableFile(path);
    ASSERT_OK((*f)->Append(data));
    ASSERT_OK((*f)->Close());
  }
  std::unique_ptr<Env> env_ = NewMemEnv();
  KvMap map_;
};

TEST_F(CheckpointFileTest, WrittenCheckpointReadsBackEqual) {
  ASSERT_OK_AND_ASSIGN(uint64_t bytes, WriteCheckpoint(env_.get(), "/ck", 42, map_));
  const std::string path = "/ck/" + CheckpointFileName(42);
  EXPECT_EQ(*env_->GetFileSize(path), bytes);
  EXPECT_FALSE(env_->FileExists(path + ".tmp"));
  KvMap back;
  ASSERT_OK_AND_ASSIGN(LoadedCheckpoint loaded, LoadCheckpoint(env_.get(), path, &back));
  EXPECT_EQ(loaded.lsn, 42u);
  EXPECT_EQ(loaded.keys, map_.size());
  ASSERT_EQ(back.size(), map_.size());
  for (const auto& [k, e] : map_) {
    ASSERT_TRUE(back.contains(k));
    EXPECT_EQ(*back[k].value, *e.value);
    EXPECT_EQ(back[k].lsn, 42u);
  }
}

TEST_F(CheckpointFileTest, EntriesAcrossReadChunksAndLargerThanAChunkReadBack) {
  // The reader works in 1 MiB chunks: 40,000 entries straddle many chunk
  // boundaries, and one value is larger than a chunk.
  KvMap big;
  for (int i = 0; i < 40000; ++i) {
    big[absl::StrCat("key:", 100000 + i)] =
        KvEntry{std::make_shared<const std::string>(std::string(97 + i % 13, 'a' + i % 26)), 1};
  }
  big["key:5"] = KvEntry{std::make_shared<const std::string>(std::string(3 << 20, 'z')), 1};
  ASSERT_OK(WriteCheckpoint(env_.get(), "/ck", 3, big).status());
  KvMap back;
  ASSERT_OK_AND_ASSIGN(LoadedCheckpoint loaded,
                       LoadCheckpoint(env_.get(), "/ck/" + CheckpointFileName(3), &back));
  EXPECT_EQ(loaded.keys, big.size());
  ASSERT_EQ(back.size(), big.size());
  for (const auto& [k, e] : big) {
    ASSERT_TRUE(back.contains(k)) << k;
    ASSERT_EQ(*back[k].value, *e.value) << k;
  }
}

TEST_F(CheckpointFileTest, EveryFlippedByteIsDataLossNamingTheFile) {
  ASSERT_OK(WriteCheckpoint(env_.get(), "/ck", 7, map_).status());
  const std::string path = "/ck/" + CheckpointFileName(7);
  const std::string good = Contents(path);
  for (size_t i = 0; i < good.size(); i += 1 + good.size() / 400) {
    std::string bad = good;
    bad[i] ^= 0x20;
    Rewrite(path, bad);
    KvMap back;
    EXPECT_THAT(LoadCheckpoint(env_.get(), path, &back).status(),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(path)))
        << "byte " << i;
  }
}

TEST_F(CheckpointFileTest, EveryTruncationIsDataLoss) {
  ASSERT_OK(WriteCheckpoint(env_.get(), "/ck", 7, map_).status());
  const std::string path = "/ck/" + CheckpointFileName(7);
  const std::string good = Contents(path);
  for (size_t n = 0; n < good.size(); n += 1 + good.size() / 300) {
    Rewrite(path, good.substr(0, n));
    KvMap back;
    EXPECT_THAT(LoadCheckpoint(env_.get(), path, &back).status(),
                StatusIs(absl::StatusCode::kDataLoss))
        << n << " bytes";
  }
}

TEST_F(CheckpointFileTest, NamesParseOnlyInTheirExactForm) {
  uint64_t lsn = 0;
  EXPECT_TRUE(ParseCheckpointFileName(CheckpointFileName(123), &lsn));
  EXPECT_EQ(lsn, 123u);
  EXPECT_FALSE(ParseCheckpointFileName(CheckpointFileName(1) + ".tmp", &lsn));
  EXPECT_TRUE(IsTemporaryCheckpointName(CheckpointFileName(1) + ".tmp"));
  EXPECT_FALSE(ParseCheckpointFileName("checkpoint-12.ckpt", &lsn));
  EXPECT_FALSE(ParseCheckpointFileName("LOCK", &lsn));
}

TEST(GlobTest, RedisPatterns) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*", "anything"));
  EXPECT_TRUE(GlobMatch("h?llo", "hello"));
  EXPECT_FALSE(GlobMatch("h?llo", "hllo"));
  EXPECT_TRUE(GlobMatch("h*llo", "heeeello"));
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[^e]llo", "hello"));
  EXPECT_TRUE(GlobMatch("h[a-b]llo", "hbllo"));
  EXPECT_FALSE(GlobMatch("h[a-b]llo", "hcllo"));
  EXPECT_TRUE(GlobMatch("a\\*b", "a*b"));
  EXPECT_FALSE(GlobMatch("a\\*b", "axb"));
  EXPECT_TRUE(GlobMatch("user:*:name", "user:42:name"));
  EXPECT_FALSE(GlobMatch("user:*:name", "user:42:names"));
  EXPECT_FALSE(GlobMatch("abc", "abcd"));
}

TEST(GlobTest, HostilePatternIsNotExponential) {
  const std::string key(5000, 'a');
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*a*a*a*a*b", key));
}

}  // namespace
}  // namespace kv
}  // namespace segwal
