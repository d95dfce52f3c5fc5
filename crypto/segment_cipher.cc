#include "crypto/segment_cipher.h"

#include <atomic>
#include <cstring>
#include <utility>

#include <openssl/aead.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/hkdf.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include "absl/base/const_init.h"
#include "absl/strings/str_format.h"
#include "port/mutex.h"
#include "util/coding.h"

namespace segwal {

namespace {

constexpr char kSubkeyInfoLabel[] = "segwal-segment-v1";
constexpr char kFingerprintLabel[] = "segwal-subkey-fp-v1";
constexpr size_t kSubkeySize = 32;

// The test observer. The flag keeps Seal's fast path to one relaxed load.
std::atomic<bool> g_has_observer{false};
port::Mutex g_observer_mu;
std::shared_ptr<SegmentCipher::SealObserver>* g_observer
    ABSL_GUARDED_BY(g_observer_mu) = nullptr;

void MakeNonce(uint64_t lsn, uint8_t nonce[SegmentCipher::kNonceSize]) {
  EncodeFixed64(reinterpret_cast<char*>(nonce), lsn);
  memset(nonce + 8, 0, SegmentCipher::kNonceSize - 8);
}

const uint8_t* Bytes(absl::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

}  // namespace

std::string KeyIdToString(uint64_t key_id) {
  return absl::StrFormat("0x%016x", key_id);
}

SegmentCipher::SegmentCipher() : ctx_(new EVP_AEAD_CTX) {
  EVP_AEAD_CTX_zero(ctx_);
}

SegmentCipher::~SegmentCipher() {
  EVP_AEAD_CTX_cleanup(ctx_);
  // The AES-GCM cleanup leaves the key schedule in the context: wipe it.
  OPENSSL_cleanse(ctx_, sizeof(*ctx_));
  delete ctx_;
}

absl::StatusOr<std::unique_ptr<SegmentCipher>> SegmentCipher::Create(
    const WalEncryptionKey& master, absl::string_view salt,
    uint64_t first_lsn) {
  if (salt.size() != kSaltSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "segment salt must be %d bytes, got %d", kSaltSize, salt.size()));
  }
  uint8_t info[sizeof(kSubkeyInfoLabel) - 1 + 8];
  memcpy(info, kSubkeyInfoLabel, sizeof(kSubkeyInfoLabel) - 1);
  EncodeFixed64(reinterpret_cast<char*>(info) + sizeof(kSubkeyInfoLabel) - 1,
                first_lsn);
  uint8_t subkey[kSubkeySize];
  const absl::string_view ikm = master.bytes();
  if (!HKDF(subkey, sizeof(subkey), EVP_sha256(), Bytes(ikm), ikm.size(),
            Bytes(salt), salt.size(), info, sizeof(info))) {
    OPENSSL_cleanse(subkey, sizeof(subkey));
    return absl::InternalError("HKDF-SHA256 failed deriving a segment subkey");
  }
  std::unique_ptr<SegmentCipher> cipher(new SegmentCipher());
  cipher->key_id_ = master.key_id();
  if (!EVP_AEAD_CTX_init(cipher->ctx_, EVP_aead_aes_256_gcm(), subkey,
                         sizeof(subkey), kTagSize, nullptr)) {
    OPENSSL_cleanse(subkey, sizeof(subkey));
    return absl::InternalError("EVP_AEAD_CTX_init (AES-256-GCM) failed");
  }
  SHA256_CTX sha;
  SHA256_Init(&sha);
  SHA256_Update(&sha, kFingerprintLabel, sizeof(kFingerprintLabel) - 1);
  SHA256_Update(&sha, subkey, sizeof(subkey));
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &sha);
  memcpy(cipher->fingerprint_.data(), digest, cipher->fingerprint_.size());
  OPENSSL_cleanse(digest, sizeof(digest));
  OPENSSL_cleanse(&sha, sizeof(sha));
  OPENSSL_cleanse(subkey, sizeof(subkey));
  return cipher;
}

absl::Status SegmentCipher::Seal(uint64_t lsn,
                                 absl::string_view associated_data,
                                 absl::string_view plaintext,
                                 std::string* out) const {
  uint8_t nonce[kNonceSize];
  MakeNonce(lsn, nonce);
  if (g_has_observer.load(std::memory_order_acquire)) {
    std::shared_ptr<SealObserver> observer;
    {
      port::MutexLock l(&g_observer_mu);
      if (g_observer != nullptr) observer = *g_observer;
    }
    if (observer != nullptr && *observer) {
      (*observer)(fingerprint_,
                  absl::string_view(reinterpret_cast<char*>(nonce), kNonceSize));
    }
  }
  const size_t start = out->size();
  const size_t max_len = plaintext.size() + kTagSize;
  out->resize(start + max_len);
  size_t len = 0;
  if (!EVP_AEAD_CTX_seal(ctx_, reinterpret_cast<uint8_t*>(out->data()) + start,
                         &len, max_len, nonce, kNonceSize, Bytes(plaintext),
                         plaintext.size(), Bytes(associated_data),
                         associated_data.size()) ||
      len != max_len) {
    ERR_clear_error();
    out->resize(start);
    return absl::InternalError("AES-256-GCM seal failed");
  }
  return absl::OkStatus();
}

bool SegmentCipher::Open(uint64_t lsn, absl::string_view associated_data,
                         absl::string_view sealed, std::string* out) const {
  out->clear();
  if (sealed.size() < kTagSize) return false;
  uint8_t nonce[kNonceSize];
  MakeNonce(lsn, nonce);
  const size_t max_len = sealed.size() - kTagSize;
  out->resize(max_len);
  size_t len = 0;
  if (!EVP_AEAD_CTX_open(ctx_, reinterpret_cast<uint8_t*>(out->data()), &len,
                         max_len, nonce, kNonceSize, Bytes(sealed),
                         sealed.size(), Bytes(associated_data),
                         associated_data.size()) ||
      len != max_len) {
    ERR_clear_error();  // a tag mismatch is an answer, not an error to keep
    out->clear();
    return false;
  }
  return true;
}

void SegmentCipher::SetSealObserverForTesting(SealObserver observer) {
  port::MutexLock l(&g_observer_mu);
  delete g_observer;
  g_observer = nullptr;
  if (observer) {
    g_observer = new std::shared_ptr<SealObserver>(
        std::make_shared<SealObserver>(std::move(observer)));
  }
  g_has_observer.store(g_observer != nullptr, std::memory_order_release);
}

}  // namespace segwal
