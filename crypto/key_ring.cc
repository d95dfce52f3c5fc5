#include "crypto/key_ring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "absl/strings/str_cat.h"

namespace segwal {

WalEncryptionKey::WalEncryptionKey(absl::string_view key) {
  memcpy(key_.data(), key.data(), kKeySize);
  // key_id: the first 8 bytes of SHA-256("segwal-key-id-v1" || key).
  static constexpr char kLabel[] = "segwal-key-id-v1";
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, kLabel, sizeof(kLabel) - 1);
  SHA256_Update(&ctx, key_.data(), key_.size());
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &ctx);
  uint64_t id = 0;
  for (int i = 0; i < 8; ++i) id = (id << 8) | digest[i];
  key_id_ = id;
  OPENSSL_cleanse(digest, sizeof(digest));
  OPENSSL_cleanse(&ctx, sizeof(ctx));
}

WalEncryptionKey::WalEncryptionKey(const WalEncryptionKey& other)
    : key_(other.key_), key_id_(other.key_id_) {}

WalEncryptionKey& WalEncryptionKey::operator=(const WalEncryptionKey& other) {
  key_ = other.key_;
  key_id_ = other.key_id_;
  return *this;
}

WalEncryptionKey::~WalEncryptionKey() {
  OPENSSL_cleanse(key_.data(), key_.size());
}

absl::StatusOr<WalEncryptionKey> WalEncryptionKey::FromBytes(
    absl::string_view key) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("encryption key must be exactly ", kKeySize,
                     " bytes, got ", key.size()));
  }
  return WalEncryptionKey(key);
}

absl::StatusOr<WalEncryptionKey> WalEncryptionKey::FromFile(
    const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    const int err = errno;
    std::string msg = absl::StrCat("key file ", path, ": ", strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg)
                         : absl::PermissionDeniedError(msg);
  }
  if (S_ISLNK(st.st_mode)) {
    return absl::PermissionDeniedError(
        absl::StrCat("key file ", path, " is a symlink; refusing to follow it"));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::PermissionDeniedError(
        absl::StrCat("key file ", path, " is not a regular file"));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "key file ", path, " is accessible by group or others (mode ",
        absl::Hex(st.st_mode & 0777), "); chmod 600 it"));
  }
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("key file ", path, ": ", strerror(errno)));
  }
  uint8_t buf[kKeySize + 1];
  size_t got = 0;
  while (got < sizeof(buf)) {
    ssize_t r = read(fd, buf + got, sizeof(buf) - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  close(fd);
  if (got != kKeySize) {
    OPENSSL_cleanse(buf, sizeof(buf));
    return absl::InvalidArgumentError(absl::StrCat(
        "key file ", path, " must hold exactly ", kKeySize, " raw bytes, has ",
        got > kKeySize ? "more" : absl::StrCat(got)));
  }
  WalEncryptionKey key(
      absl::string_view(reinterpret_cast<const char*>(buf), kKeySize));
  OPENSSL_cleanse(buf, sizeof(buf));
  return key;
}

WalEncryptionKey WalEncryptionKey::Generate() {
  uint8_t buf[kKeySize];
  RAND_bytes(buf, sizeof(buf));
  WalEncryptionKey key(
      absl::string_view(reinterpret_cast<const char*>(buf), kKeySize));
  OPENSSL_cleanse(buf, sizeof(buf));
  return key;
}

KeyRing::KeyRing(WalEncryptionKey current) : current_(std::move(current)) {}

KeyRing::KeyRing(WalEncryptionKey current, WalEncryptionKey previous)
    : current_(std::move(current)), previous_(std::move(previous)) {}

const WalEncryptionKey* KeyRing::Find(uint64_t key_id) const {
  if (current_.key_id() == key_id) return &current_;
  if (previous_.has_value() && previous_->key_id() == key_id) return &*previous_;
  return nullptr;
}

}  // namespace segwal
