#include "crypto/segment_cipher.h"

#include <openssl/aead.h>
#include <openssl/digest.h>
#include <openssl/hkdf.h>

#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "port/mutex.h"
#include "crypto/key_ring.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"

namespace segwal {
namespace {

using ::segwal::testutil::Random;
using ::segwal::testutil::StatusIs;
using ::testing::HasSubstr;

WalEncryptionKey KeyFromSeed(uint64_t seed) {
  Random rnd(seed);
  return *WalEncryptionKey::FromBytes(rnd.RandomBytes(32));
}

std::string Salt(uint64_t seed) {
  Random rnd(seed);
  return rnd.RandomBytes(SegmentCipher::kSaltSize);
}

std::unique_ptr<SegmentCipher> MakeCipher(const WalEncryptionKey& key,
                                          const std::string& salt,
                                          uint64_t first_lsn) {
  auto c = SegmentCipher::Create(key, salt, first_lsn);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

std::string SealOrDie(const SegmentCipher& c, uint64_t lsn,
                      absl::string_view ad, absl::string_view plaintext) {
  std::string out;
  absl::Status s = c.Seal(lsn, ad, plaintext, &out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

TEST(SegmentCipherTest, RoundTrip) {
  const WalEncryptionKey key = KeyFromSeed(1);
  auto c = MakeCipher(key, Salt(2), 100);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->key_id(), key.key_id());
  Random rnd(3);
  for (size_t len : {0, 1, 15, 16, 17, 4096, 100000}) {
    const std::string plain = rnd.RandomBytes(len);
    const std::string sealed = SealOrDie(*c, 100 + len, "ad", plain);
    ASSERT_EQ(sealed.size(), len + SegmentCipher::kTagSize);
    if (len >= 16) {
      EXPECT_EQ(sealed.find(plain), std::string::npos);
    }
    std::string back;
    ASSERT_TRUE(c->Open(100 + len, "ad", sealed, &back)) << len;
    EXPECT_EQ(back, plain);
  }
}

TEST(SegmentCipherTest, SealAppendsToOutput) {
  auto c = MakeCipher(KeyFromSeed(1), Salt(2), 1);
  std::string out = "prefix";
  ASSERT_OK(c->Seal(7, "", "hello", &out));
  EXPECT_EQ(out.substr(0, 6), "prefix");
  std::string back;
  ASSERT_TRUE(c->Open(7, "", absl::string_view(out).substr(6), &back));
  EXPECT_EQ(back, "hello");
}

// The derivation FORMAT.md specifies, recomputed here with BoringSSL directly:
// subkey = HKDF-SHA256(master, salt, "segwal-segment-v1" || first_lsn LE64),
// nonce = LSN LE64 || 00000000, AES-256-GCM with a 16-byte tag.
TEST(SegmentCipherTest, MatchesTheDocumentedConstruction) {
  const WalEncryptionKey key = KeyFromSeed(11);
  const std::string salt = Salt(12);
  const uint64_t first_lsn = 0x0102030405060708ull;
  const uint64_t lsn = 0x1122334455667788ull;
  auto c = MakeCipher(key, salt, first_lsn);

  std::string info = "segwal-segment-v1";
  for (int i = 0; i < 8; ++i) info.push_back(static_cast<char>(first_lsn >> (8 * i)));
  uint8_t subkey[32];
  const absl::string_view master = key.bytes();
  ASSERT_EQ(HKDF(subkey, sizeof(subkey), EVP_sha256(),
                 reinterpret_cast<const uint8_t*>(master.data()), master.size(),
                 reinterpret_cast<const uint8_t*>(salt.data()), salt.size(),
                 reinterpret_cast<const uint8_t*>(info.data()), info.size()),
            1);
  uint8_t nonce[12] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0, 0, 0, 0};
  const std::string plain = "the documented construction";
  const std::string ad = "associated";
  EVP_AEAD_CTX ctx;
  ASSERT_EQ(EVP_AEAD_CTX_init(&ctx, EVP_aead_aes_256_gcm(), subkey, 32, 16,
                              nullptr),
            1);
  std::string expected(plain.size() + 16, '\0');
  size_t len = 0;
  ASSERT_EQ(EVP_AEAD_CTX_seal(
                &ctx, reinterpret_cast<uint8_t*>(expected.data()), &len,
                expected.size(), nonce, sizeof(nonce),
                reinterpret_cast<const uint8_t*>(plain.data()), plain.size(),
                reinterpret_cast<const uint8_t*>(ad.data()), ad.size()),
            1);
  EVP_AEAD_CTX_cleanup(&ctx);
  EXPECT_EQ(SealOrDie(*c, lsn, ad, plain), expected);
}

TEST(SegmentCipherTest, OpenRejectsAnyChange) {
  auto c = MakeCipher(KeyFromSeed(1), Salt(2), 10);
  const std::string plain = "payload of record 12";
  const std::string sealed = SealOrDie(*c, 12, "header", plain);
  std::string back = "stale";
  // Every single-bit flip of ciphertext or tag.
  for (size_t bit = 0; bit < sealed.size() * 8; ++bit) {
    std::string bad = sealed;
    bad[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    ASSERT_FALSE(c->Open(12, "header", bad, &back)) << "bit " << bit;
    EXPECT_TRUE(back.empty());
  }
  EXPECT_FALSE(c->Open(13, "header", sealed, &back)) << "other LSN (nonce)";
  EXPECT_FALSE(c->Open(12, "headex", sealed, &back)) << "other AD";
  EXPECT_FALSE(c->Open(12, "", sealed, &back)) << "no AD";
  EXPECT_FALSE(c->Open(12, "header", sealed.substr(1), &back)) << "truncated";
  EXPECT_FALSE(c->Open(12, "header", sealed.substr(0, 15), &back))
      << "shorter than a tag";
  EXPECT_FALSE(c->Open(12, "header", "", &back));
  ASSERT_TRUE(c->Open(12, "header", sealed, &back));
  EXPECT_EQ(back, plain);
}

TEST(SegmentCipherTest, SubkeyDependsOnKeySaltAndFirstLsn) {
  const WalEncryptionKey key = KeyFromSeed(1), other_key = KeyFromSeed(5);
  auto base = MakeCipher(key, Salt(2), 10);
  auto same = MakeCipher(key, Salt(2), 10);
  auto other_salt = MakeCipher(key, Salt(3), 10);
  auto other_lsn = MakeCipher(key, Salt(2), 11);
  auto other_master = MakeCipher(other_key, Salt(2), 10);
  EXPECT_EQ(base->subkey_fingerprint(), same->subkey_fingerprint());
  const std::string sealed = SealOrDie(*base, 12, "", "payload");
  EXPECT_EQ(SealOrDie(*same, 12, "", "payload"), sealed);
  std::string back;
  EXPECT_TRUE(same->Open(12, "", sealed, &back));
  for (const SegmentCipher* c :
       {other_salt.get(), other_lsn.get(), other_master.get()}) {
    EXPECT_NE(c->subkey_fingerprint(), base->subkey_fingerprint());
    EXPECT_NE(SealOrDie(*c, 12, "", "payload"), sealed);
    EXPECT_FALSE(c->Open(12, "", sealed, &back));
  }
}

TEST(SegmentCipherTest, BadSaltSizeIsInvalidArgument) {
  const WalEncryptionKey key = KeyFromSeed(1);
  EXPECT_THAT(SegmentCipher::Create(key, "short", 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16")));
  EXPECT_THAT(SegmentCipher::Create(key, std::string(17, 'x'), 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SegmentCipherTest, KeyIdToStringIsFixedWidthHex) {
  EXPECT_EQ(KeyIdToString(0), "0x0000000000000000");
  EXPECT_EQ(KeyIdToString(0xdeadbeef), "0x00000000deadbeef");
  EXPECT_EQ(KeyIdToString(~uint64_t{0}), "0xffffffffffffffff");
}

TEST(SegmentCipherTest, ObserverSeesEveryNonceFromSeveralThreads) {
  auto c = MakeCipher(KeyFromSeed(1), Salt(2), 1);
  port::Mutex mu;
  std::vector<std::pair<SegmentCipher::SubkeyFingerprint, std::string>> seen;
  SegmentCipher::SetSealObserverForTesting(
      [&](const SegmentCipher::SubkeyFingerprint& fp, absl::string_view nonce) {
        port::MutexLock l(&mu);
        seen.emplace_back(fp, std::string(nonce));
      });
  constexpr int kThreads = 4, kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string out;
        ASSERT_OK(c->Seal(uint64_t(t) * kPerThread + i + 1, "", "x", &out));
      }
    });
  }
  for (auto& th : threads) th.join();
  SegmentCipher::SetSealObserverForTesting(nullptr);
  std::string out;
  ASSERT_OK(c->Seal(1u << 20, "", "not observed", &out));

  port::MutexLock l(&mu);
  ASSERT_EQ(seen.size(), size_t{kThreads * kPerThread});
  std::set<std::string> nonces;
  for (const auto& [fp, nonce] : seen) {
    EXPECT_EQ(fp, c->subkey_fingerprint());
    ASSERT_EQ(nonce.size(), SegmentCipher::kNonceSize);
    EXPECT_EQ(nonce.substr(8), std::string(4, '\0'));
    nonces.insert(nonce);
  }
  EXPECT_EQ(nonces.size(), seen.size());
  // LSN 1 is 01 00 .. 00.
  std::string lsn1(12, '\0');
  lsn1[0] = 1;
  EXPECT_EQ(nonces.count(lsn1), 1u);
}

TEST(SegmentCipherTest, ConcurrentSealAndOpenOnOneCipher) {
  auto c = MakeCipher(KeyFromSeed(1), Salt(2), 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Random rnd(t);
      for (int i = 0; i < 300; ++i) {
        const uint64_t lsn = uint64_t(t) * 1000 + i;
        const std::string plain = rnd.RandomBytes(rnd.Uniform(5000));
        std::string sealed, back;
        ASSERT_OK(c->Seal(lsn, "ad", plain, &sealed));
        ASSERT_TRUE(c->Open(lsn, "ad", sealed, &back));
        ASSERT_EQ(back, plain);
      }
    });
  }
  for (auto& th : threads) th.join();
}

}  // namespace
}  // namespace segwal
