// SegmentCipher: AES-256-GCM (BoringSSL EVP_AEAD) for the records of one
// segment of an encrypted log.
//
// Keys. Each segment has its own subkey,
//   subkey = HKDF-SHA256(ikm  = master key (WalEncryptionKey),
//                        salt = the segment's 16 random salt bytes,
//                        info = "segwal-segment-v1" || first LSN (LE64)),
// so two segments never share a subkey: not across rotation, reopen, or a
// segment file that is rewritten under the same name (it gets a fresh salt).
//
// Nonces. The record with LSN n is sealed with the 12-byte nonce
//   n (LE64) || 00 00 00 00.
// A (subkey, nonce) pair is therefore unique as long as the caller seals each
// LSN at most once per SegmentCipher. The WAL guarantees this by never
// appending to a segment it did not create in this process (wal/FORMAT.md,
// "Encryption and compression").
//
// The associated data (what the tag authenticates besides the plaintext) is
// the caller's: the WAL binds the segment header and the record header.
//
// Thread safety: Seal and Open may be called from several threads at once on
// one SegmentCipher (BoringSSL allows concurrent use of an EVP_AEAD_CTX). The
// subkey is wiped when the SegmentCipher is destroyed.

#ifndef SEGWAL_CRYPTO_SEGMENT_CIPHER_H_
#define SEGWAL_CRYPTO_SEGMENT_CIPHER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/key_ring.h"

struct evp_aead_ctx_st;

namespace segwal {

// "0x" and 16 lowercase hex digits: how messages name a key id.
std::string KeyIdToString(uint64_t key_id);

class SegmentCipher {
 public:
  // The cipher id stored in an encrypted segment's header.
  static constexpr uint32_t kAes256Gcm = 1;
  static constexpr size_t kSaltSize = 16;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  // A non-secret fingerprint of a subkey (for tests and diagnostics):
  // the first 16 bytes of SHA-256("segwal-subkey-fp-v1" || subkey).
  using SubkeyFingerprint = std::array<uint8_t, 16>;

  // Derives the subkey of the segment with this salt and first LSN.
  // InvalidArgument if salt is not kSaltSize bytes; Internal if BoringSSL fails.
  static absl::StatusOr<std::unique_ptr<SegmentCipher>> Create(
      const WalEncryptionKey& master, absl::string_view salt,
      uint64_t first_lsn);

  SegmentCipher(const SegmentCipher&) = delete;
  SegmentCipher& operator=(const SegmentCipher&) = delete;
  ~SegmentCipher();

  uint64_t key_id() const { return key_id_; }
  const SubkeyFingerprint& subkey_fingerprint() const { return fingerprint_; }

  // Appends ciphertext || tag (plaintext.size() + kTagSize bytes) to *out.
  // REQUIRES: `lsn` was never sealed before with this SegmentCipher (nor with
  // any other SegmentCipher of the same master key, salt and first LSN).
  // Internal if BoringSSL fails (it does not for valid arguments).
  absl::Status Seal(uint64_t lsn, absl::string_view associated_data,
                    absl::string_view plaintext, std::string* out) const;

  // Verifies and decrypts `sealed` (ciphertext || tag); replaces *out with the
  // plaintext. False if the tag does not match: wrong key, or the ciphertext,
  // LSN or associated data differ from what was sealed. *out is then empty.
  bool Open(uint64_t lsn, absl::string_view associated_data,
            absl::string_view sealed, std::string* out) const;

  // ---- Test hook. ----
  // Called, for every Seal by any SegmentCipher of the process, with the
  // subkey's fingerprint and the nonce (kNonceSize bytes), before Seal
  // returns. Several threads may call it at once. Pass nullptr to remove it.
  using SealObserver = std::function<void(const SubkeyFingerprint& subkey,
                                          absl::string_view nonce)>;
  static void SetSealObserverForTesting(SealObserver observer);

 private:
  SegmentCipher();

  evp_aead_ctx_st* ctx_;  // owned; holds the subkey
  uint64_t key_id_ = 0;
  SubkeyFingerprint fingerprint_{};
};

}  // namespace segwal

#endif  // SEGWAL_CRYPTO_SEGMENT_CIPHER_H_
