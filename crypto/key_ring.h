// Keys for encryption at rest.
//
// A WalEncryptionKey is a 256-bit AES key. Its key_id() is a stable, non-secret
// fingerprint (derived with SHA-256 from the key, so it reveals nothing useful
// about it) that segwal stores in each encrypted segment's header to pick the
// right key on replay. Key bytes are wiped when a key is destroyed.
//
// A KeyRing holds the current key (new segments are encrypted with it) and
// optionally a previous one (older segments stay readable with it).
//
// Thread safety: immutable after construction, except ClearPrevious(); a const
// KeyRing may be shared between threads.

#ifndef SEGWAL_CRYPTO_KEY_RING_H_
#define SEGWAL_CRYPTO_KEY_RING_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace segwal {

class WalEncryptionKey {
 public:
  static constexpr size_t kKeySize = 32;

  // Exactly 32 bytes, else InvalidArgument.
  static absl::StatusOr<WalEncryptionKey> FromBytes(absl::string_view key);
  // 32 raw bytes from a regular file that is not group- or other-accessible.
  static absl::StatusOr<WalEncryptionKey> FromFile(const std::string& path);
  // A fresh random key from BoringSSL's RNG.
  static WalEncryptionKey Generate();

  WalEncryptionKey(const WalEncryptionKey& other);
  WalEncryptionKey& operator=(const WalEncryptionKey& other);
  ~WalEncryptionKey();  // wipes the key bytes

  // Stable, non-secret fingerprint stored on disk to pick the key.
  uint64_t key_id() const { return key_id_; }
  // The raw key. Internal to segwal's encryption code.
  absl::string_view bytes() const {
    return absl::string_view(reinterpret_cast<const char*>(key_.data()),
                             key_.size());
  }

 private:
  explicit WalEncryptionKey(absl::string_view key);
  std::array<uint8_t, kKeySize> key_;
  uint64_t key_id_;
};

class KeyRing {
 public:
  explicit KeyRing(WalEncryptionKey current);
  KeyRing(WalEncryptionKey current, WalEncryptionKey previous);
  const WalEncryptionKey& current() const { return current_; }
  bool has_previous() const { return previous_.has_value(); }
  // REQUIRES: has_previous().
  const WalEncryptionKey& previous() const { return *previous_; }
  void ClearPrevious() { previous_.reset(); }
  // The key with this id, or nullptr.
  const WalEncryptionKey* Find(uint64_t key_id) const;

 private:
  WalEncryptionKey current_;
  std::optional<WalEncryptionKey> previous_;
};

}  // namespace segwal

#endif  // SEGWAL_CRYPTO_KEY_RING_H_
