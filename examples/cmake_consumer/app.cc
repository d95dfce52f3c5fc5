// A program that uses segwal: opens a WAL in a fresh temporary directory,
// appends records (Snappy-compressed and encrypted, so every library segwal links
// is exercised), syncs, reopens the WAL and checks that replay returns exactly
// what was appended. Exits 0 when it does, 1 otherwise.

#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/key_ring.h"
#include "wal/segmented_wal.h"

namespace {

constexpr int kRecords = 1000;

int Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "FAIL: %s: %s\n", what.c_str(), status.ToString().c_str());
  return 1;
}

int Run(const std::string& dir) {
  const segwal::WalEncryptionKey key = segwal::WalEncryptionKey::Generate();
  segwal::SegmentedWalOptions options;
  options.wal_dir = dir + "/wal";
  options.segment_target_size = 64 << 10;  // small, so the log rolls
  options.compression = segwal::Compression::kSnappy;
  options.encryption_ring = segwal::KeyRing(key);

  std::vector<segwal::WalRecord> appended;
  {
    auto wal = segwal::SegmentedWal::Open(options);
    if (!wal.ok()) return Fail("open", wal.status());
    for (int i = 0; i < kRecords; ++i) {
      segwal::WalRecord r;
      r.record_type = 1;
      r.tenant_id = 7;
      r.vshard_id = static_cast<uint32_t>(i % 4);
      r.payload = absl::StrCat("record ", i, " ", std::string(100 + i % 50, 'x'));
      auto lsn = (*wal)->Append(r.record_type, r.tenant_id, r.vshard_id,
                                r.database_id, r.payload);
      if (!lsn.ok()) return Fail("append", lsn.status());
      r.lsn = *lsn;
      appended.push_back(r);
    }
    absl::Status s = (*wal)->Sync();
    if (!s.ok()) return Fail("sync", s);
  }

  auto wal = segwal::SegmentedWal::Open(options);  // recovers what was synced
  if (!wal.ok()) return Fail("reopen", wal.status());
  auto replayed = (*wal)->Replay();
  if (!replayed.ok()) return Fail("replay", replayed.status());
  if (*replayed != appended) {
    std::fprintf(stderr, "FAIL: appended %zu records, replay returned %zu (or different ones)\n",
                 appended.size(), replayed->size());
    return 1;
  }
  auto segments = (*wal)->ListSegments();
  if (!segments.ok()) return Fail("list segments", segments.status());
  std::printf("ok: %zu records appended, synced and replayed from %zu segments\n",
              replayed->size(), segments->size());
  return 0;
}

}  // namespace

int main() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "segwal_app.XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const int rc = Run(tmpl);
  std::filesystem::remove_all(tmpl);
  return rc;
}
