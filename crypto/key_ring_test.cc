#include "crypto/key_ring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/sha.h>

#include <cstring>
#include <fstream>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"

namespace segwal {
namespace {

using ::segwal::testutil::Random;
using ::segwal::testutil::StatusIs;
using ::segwal::testutil::TempDir;
using ::testing::HasSubstr;

// Writes `bytes` to `path` and sets its permission bits to `mode`.
void WriteFile(const std::string& path, const std::string& bytes, mode_t mode) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  ASSERT_EQ(chmod(path.c_str(), mode), 0) << strerror(errno);
}

TEST(WalEncryptionKeyTest, FromBytesNeedsExactly32Bytes) {
  Random rnd(1);
  EXPECT_OK(WalEncryptionKey::FromBytes(rnd.RandomBytes(32)));
  for (size_t n : {0, 1, 16, 31, 33, 64}) {
    EXPECT_THAT(WalEncryptionKey::FromBytes(rnd.RandomBytes(n)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(absl::StrCat("got ", n))))
        << n;
  }
}

TEST(WalEncryptionKeyTest, KeyIdIsTheDocumentedFingerprint) {
  Random rnd(2);
  const std::string raw = rnd.RandomBytes(32);
  ASSERT_OK_AND_ASSIGN(WalEncryptionKey key, WalEncryptionKey::FromBytes(raw));
  // First 8 bytes of SHA-256("segwal-key-id-v1" || key), big-endian.
  const std::string input = "segwal-key-id-v1" + raw;
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(input.data()), input.size(), digest);
  uint64_t want = 0;
  for (int i = 0; i < 8; ++i) want = (want << 8) | digest[i];
  EXPECT_EQ(key.key_id(), want);
  EXPECT_EQ(key.bytes(), raw);
  // Stable: the same bytes give the same id; copies keep it.
  EXPECT_EQ(WalEncryptionKey::FromBytes(raw)->key_id(), want);
  WalEncryptionKey copy = key;
  EXPECT_EQ(copy.key_id(), want);
  EXPECT_EQ(copy.bytes(), raw);
  // The id is not the key.
  EXPECT_EQ(raw.find(std::string(reinterpret_cast<const char*>(&want), 8)),
            std::string::npos);
}

TEST(WalEncryptionKeyTest, DifferentKeysHaveDifferentIds) {
  Random rnd(3);
  std::string raw = rnd.RandomBytes(32);
  ASSERT_OK_AND_ASSIGN(WalEncryptionKey a, WalEncryptionKey::FromBytes(raw));
  raw[31] ^= 1;
  ASSERT_OK_AND_ASSIGN(WalEncryptionKey b, WalEncryptionKey::FromBytes(raw));
  EXPECT_NE(a.key_id(), b.key_id());
}

TEST(WalEncryptionKeyTest, GenerateGivesFreshKeys) {
  const WalEncryptionKey a = WalEncryptionKey::Generate();
  const WalEncryptionKey b = WalEncryptionKey::Generate();
  EXPECT_EQ(a.bytes().size(), 32u);
  EXPECT_NE(a.bytes(), b.bytes());
  EXPECT_NE(a.key_id(), b.key_id());
  EXPECT_NE(a.bytes(), std::string(32, '\0'));
}

TEST(WalEncryptionKeyTest, DestructorWipesTheKeyBytes) {
  Random rnd(4);
  const std::string raw = rnd.RandomBytes(32);
  alignas(WalEncryptionKey) unsigned char storage[sizeof(WalEncryptionKey)];
  auto* key = new (storage) WalEncryptionKey(*WalEncryptionKey::FromBytes(raw));
  const std::string before(reinterpret_cast<char*>(storage), sizeof(storage));
  ASSERT_NE(before.find(raw), std::string::npos);
  key->~WalEncryptionKey();
  const std::string after(reinterpret_cast<char*>(storage), sizeof(storage));
  EXPECT_EQ(after.find(raw), std::string::npos);
  EXPECT_EQ(after.find(raw.substr(0, 8)), std::string::npos);
}

TEST(WalEncryptionKeyTest, FromFileReadsExactly32RawBytes) {
  TempDir dir;
  Random rnd(5);
  const std::string raw = rnd.RandomBytes(32);
  const std::string path = dir.Join("key");
  WriteFile(path, raw, 0600);
  ASSERT_OK_AND_ASSIGN(WalEncryptionKey key, WalEncryptionKey::FromFile(path));
  EXPECT_EQ(key.bytes(), raw);
  EXPECT_EQ(key.key_id(), WalEncryptionKey::FromBytes(raw)->key_id());
  // Owner-only modes are fine, read-only included.
  for (mode_t mode : {0400, 0200 | 0400, 0700}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    EXPECT_OK(WalEncryptionKey::FromFile(path)) << std::oct << mode;
  }
}

TEST(WalEncryptionKeyTest, FromFileRefusesWrongSizes) {
  TempDir dir;
  Random rnd(6);
  for (size_t n : {0, 31, 33, 64}) {
    const std::string path = dir.Join(absl::StrCat("key", n));
    WriteFile(path, rnd.RandomBytes(n), 0600);
    EXPECT_THAT(WalEncryptionKey::FromFile(path),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("exactly 32 raw bytes")))
        << n;
  }
  // A hex or base64 text key is the usual mistake: 64 characters + newline.
  const std::string text = dir.Join("hex");
  WriteFile(text, std::string(64, 'a') + "\n", 0600);
  EXPECT_THAT(WalEncryptionKey::FromFile(text),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("more")));
}

// Tests run as root, which may read anything: the permission *bits* are what
// FromFile checks, not whether a read would be refused.
TEST(WalEncryptionKeyTest, FromFileRefusesGroupOrOtherAccess) {
  TempDir dir;
  Random rnd(7);
  const std::string path = dir.Join("key");
  WriteFile(path, rnd.RandomBytes(32), 0600);
  for (mode_t mode : {0640, 0620, 0610, 0604, 0602, 0601, 0660, 0644, 0666,
                      0777, 0040, 0004}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    EXPECT_THAT(WalEncryptionKey::FromFile(path),
                StatusIs(absl::StatusCode::kPermissionDenied,
                         HasSubstr("accessible by group or others")))
        << std::oct << mode;
  }
}

TEST(WalEncryptionKeyTest, FromFileRefusesSymlinks) {
  TempDir dir;
  Random rnd(8);
  const std::string target = dir.Join("key");
  WriteFile(target, rnd.RandomBytes(32), 0600);
  const std::string link = dir.Join("link");
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  EXPECT_THAT(WalEncryptionKey::FromFile(link),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("symlink")));
  // A dangling symlink too (lstat, not stat).
  const std::string dangling = dir.Join("dangling");
  ASSERT_EQ(symlink(dir.Join("nowhere").c_str(), dangling.c_str()), 0);
  EXPECT_THAT(WalEncryptionKey::FromFile(dangling),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("symlink")));
}

TEST(WalEncryptionKeyTest, FromFileRefusesNonRegularFiles) {
  TempDir dir;
  const std::string sub = dir.Join("dir");
  ASSERT_EQ(mkdir(sub.c_str(), 0700), 0);
  EXPECT_THAT(WalEncryptionKey::FromFile(sub),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("not a regular file")));
  const std::string fifo = dir.Join("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(WalEncryptionKey::FromFile(fifo),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("not a regular file")));
  EXPECT_THAT(WalEncryptionKey::FromFile("/dev/null"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("not a regular file")));
}

TEST(WalEncryptionKeyTest, FromFileMissingIsNotFound) {
  TempDir dir;
  EXPECT_THAT(WalEncryptionKey::FromFile(dir.Join("absent")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent")));
}

TEST(KeyRingTest, CurrentPreviousAndFind) {
  const WalEncryptionKey a = WalEncryptionKey::Generate();
  const WalEncryptionKey b = WalEncryptionKey::Generate();
  const WalEncryptionKey c = WalEncryptionKey::Generate();
  KeyRing one(a);
  EXPECT_EQ(one.current().key_id(), a.key_id());
  EXPECT_FALSE(one.has_previous());
  ASSERT_NE(one.Find(a.key_id()), nullptr);
  EXPECT_EQ(one.Find(a.key_id())->bytes(), a.bytes());
  EXPECT_EQ(one.Find(b.key_id()), nullptr);

  KeyRing two(b, a);
  EXPECT_EQ(two.current().key_id(), b.key_id());
  ASSERT_TRUE(two.has_previous());
  EXPECT_EQ(two.previous().key_id(), a.key_id());
  EXPECT_EQ(two.Find(a.key_id())->bytes(), a.bytes());
  EXPECT_EQ(two.Find(b.key_id())->bytes(), b.bytes());
  EXPECT_EQ(two.Find(c.key_id()), nullptr);

  two.ClearPrevious();
  EXPECT_FALSE(two.has_previous());
  EXPECT_EQ(two.Find(a.key_id()), nullptr);
  EXPECT_NE(two.Find(b.key_id()), nullptr);

  // Copies are independent.
  KeyRing copy(b, a);
  KeyRing other = copy;
  other.ClearPrevious();
  EXPECT_TRUE(copy.has_previous());
}

}  // namespace
}  // namespace segwal
