// Encryption at rest and compression, through SegmentedWal's public API
// (wal/FORMAT.md, "Encryption and compression"):
//   - round trips across plain/encrypted x none/snappy x rollover x rotate x
//     reopen, with the on-disk result checked (headers, flags, no plaintext);
//   - rotation: older segments stay readable across rolls and reopen;
//   - key errors: no ring, wrong key, a key dropped from the ring;
//   - tampering with recomputed CRCs (only the AEAD can see it), and every
//     single-bit flip of small encrypted segments;
//   - the (subkey, nonce) pair of every seal, across thousands of crash and
//     reopen cycles, never repeats; and every Sync-acknowledged record
//     survives with encryption and compression on.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/key_ring.h"
#include "crypto/segment_cipher.h"
#include "env/env.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "port/mutex.h"
#include "testutil/testutil.h"
#include "wal/format.h"
#include "wal/segmented_wal.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SEGWAL_ENCRYPTION_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SEGWAL_ENCRYPTION_TEST_SANITIZED 1
#endif
#endif
#ifndef SEGWAL_ENCRYPTION_TEST_SANITIZED
#define SEGWAL_ENCRYPTION_TEST_SANITIZED 0
#endif

namespace segwal {
namespace {

using ::segwal::testutil::Random;
using ::segwal::testutil::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using wal_format::kFlagEncrypted;
using wal_format::kFlagFooter;
using wal_format::kFlagSnappy;
using wal_format::kRecordHeaderSize;
using wal_format::kSegmentHeaderSize;
using wal_format::RecordHeader;
using wal_format::SegmentHeader;

constexpr char kDir[] = "/wal";
constexpr bool kSanitized = SEGWAL_ENCRYPTION_TEST_SANITIZED != 0;

WalEncryptionKey KeyA() {
  return *WalEncryptionKey::FromBytes(std::string(32, 'A'));
}
WalEncryptionKey KeyB() {
  return *WalEncryptionKey::FromBytes(std::string(32, 'B'));
}
WalEncryptionKey KeyC() {
  return *WalEncryptionKey::FromBytes(std::string(32, 'C'));
}

SegmentedWalOptions Options(Env* env, std::optional<KeyRing> ring,
                            Compression compression = Compression::kNone,
                            uint64_t segment_target_size = 64 << 20) {
  SegmentedWalOptions o;
  o.wal_dir = kDir;
  o.env = env;
  o.encryption_ring = std::move(ring);
  o.compression = compression;
  o.segment_target_size = segment_target_size;
  return o;
}

// A payload that names its LSN with a marker no ciphertext will contain by
// chance; compressible ones are mostly a repeated pattern.
std::string Payload(Random* rnd, uint64_t lsn, bool compressible) {
  std::string p = absl::StrCat("SECRET-", lsn, "-");
  const size_t n = rnd->Skewed(11);
  if (compressible) {
    while (p.size() < n) p += "the quick brown fox ";
  } else {
    p += rnd->RandomBytes(n);
  }
  return p;
}

// The records a test appended, by LSN.
struct Model {
  std::vector<WalRecord> records;  // records[i].lsn == floor + i
  uint64_t floor = 1;
  uint64_t next_lsn() const { return floor + records.size(); }
};

absl::Status AppendRandom(SegmentedWal* wal, Random* rnd, Model* model,
                          int count) {
  for (int i = 0; i < count; ++i) {
    WalRecord r;
    r.lsn = wal->next_lsn();
    r.record_type = static_cast<uint32_t>(rnd->Uniform(5));
    r.tenant_id = rnd->Uniform(1000);
    r.vshard_id = static_cast<uint32_t>(rnd->Uniform(64));
    r.database_id = rnd->Uniform(3);
    r.payload = Payload(rnd, r.lsn, rnd->OneIn(2));
    auto lsn = wal->Append(r.record_type, r.tenant_id, r.vshard_id,
                           r.database_id, r.payload);
    if (!lsn.ok()) return lsn.status();
    if (*lsn != r.lsn) {
      return absl::InternalError(absl::StrCat("LSN ", *lsn, " want ", r.lsn));
    }
    model->records.push_back(std::move(r));
  }
  return absl::OkStatus();
}

// Empty if `got` is exactly the model's records from `from` on.
std::string Compare(const std::vector<WalRecord>& got, const Model& m,
                    uint64_t from) {
  const size_t start = from - m.floor;
  if (got.size() != m.records.size() - start) {
    return absl::StrCat("got ", got.size(), " records from LSN ", from,
                        ", want ", m.records.size() - start);
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(got[i] == m.records[start + i])) {
      return absl::StrCat("record with LSN ", from + i, " differs (got LSN ",
                          got[i].lsn, ", ", got[i].payload.size(),
                          " payload bytes)");
    }
  }
  return "";
}

void ExpectReadersAgree(const SegmentedWal& wal, const Model& m) {
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> all, wal.Replay());
  EXPECT_EQ(Compare(all, m, m.floor), "");
  if (m.records.empty()) return;
  const uint64_t mid = m.floor + m.records.size() / 2;
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> from, wal.ReplayFrom(mid));
  EXPECT_EQ(Compare(from, m, mid), "");
  std::vector<WalRecord> paged;
  for (uint64_t next = mid;;) {
    ASSERT_OK_AND_ASSIGN(ReplayPage page, wal.ReplayFromLimit(next, 7));
    for (auto& r : page.records) paged.push_back(std::move(r));
    if (!page.has_more) break;
    next = paged.back().lsn + 1;
  }
  EXPECT_EQ(Compare(paged, m, mid), "");
  ASSERT_OK_AND_ASSIGN(auto it, wal.NewIterator(mid));
  std::vector<WalRecord> iterated;
  for (; it->Valid(); it->Next()) iterated.push_back(it->record());
  EXPECT_OK(it->status());
  EXPECT_EQ(Compare(iterated, m, mid), "");
}

// ---- Reading and editing segment files directly. ----

std::string ReadAll(Env* env, const std::string& path) {
  auto size = env->GetFileSize(path);
  EXPECT_TRUE(size.ok()) << size.status();
  auto f = env->NewRandomAccessFile(path);
  EXPECT_TRUE(f.ok()) << f.status();
  if (!size.ok() || !f.ok()) return "";
  std::string out(*size, '\0');
  size_t got = 0;
  while (got < out.size()) {
    absl::string_view piece;
    absl::Status s = (*f)->Read(got, out.size() - got, &piece, out.data() + got);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok() || piece.empty()) break;
    if (piece.data() != out.data() + got) {
      memmove(out.data() + got, piece.data(), piece.size());
    }
    got += piece.size();
  }
  out.resize(got);
  return out;
}

void WriteAll(Env* env, const std::string& path, absl::string_view data) {
  ASSERT_OK_AND_ASSIGN(auto f, env->NewWritableFile(path));
  ASSERT_OK(f->Append(data));
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Close());
}

// Segment paths in LSN order.
std::vector<std::string> SegmentPaths(Env* env) {
  std::vector<std::string> out;
  auto names = env->GetChildren(kDir);
  EXPECT_TRUE(names.ok()) << names.status();
  if (!names.ok()) return out;
  std::vector<std::pair<uint64_t, std::string>> found;
  for (const std::string& n : *names) {
    uint64_t lsn;
    if (wal_format::ParseSegmentFileName(n, &lsn)) {
      found.push_back({lsn, absl::StrCat(kDir, "/", n)});
    }
  }
  std::sort(found.begin(), found.end());
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

struct Frame {
  uint64_t offset;
  RecordHeader header;
  std::string stored;  // payload bytes as on disk
};

struct ParsedSegment {
  SegmentHeader header;
  uint32_t seed = 0;
  std::vector<Frame> frames;  // records, then the footer if sealed
};

ParsedSegment Parse(const std::string& file) {
  ParsedSegment p;
  EXPECT_OK(wal_format::DecodeSegmentHeader(file, &p.header));
  p.seed = wal_format::SegmentSeed(p.header);
  uint64_t off = kSegmentHeaderSize;
  while (off + kRecordHeaderSize <= file.size()) {
    Frame f;
    f.offset = off;
    uint32_t payload_seed, payload_crc;
    if (!wal_format::DecodeRecordHeader(p.seed, file.data() + off, &f.header,
                                        &payload_seed, &payload_crc)) {
      break;
    }
    f.stored = file.substr(off + kRecordHeaderSize, f.header.payload_length);
    off += kRecordHeaderSize + f.header.payload_length;
    const bool footer = (f.header.flags & kFlagFooter) != 0;
    p.frames.push_back(std::move(f));
    if (footer) break;
  }
  return p;
}

// `file` with the frame at f.offset replaced by `h` + `stored`, CRCs
// recomputed: what an attacker who knows the format (not the key) can do.
std::string Reframe(const std::string& file, uint32_t seed, const Frame& f,
                    RecordHeader h, const std::string& stored) {
  h.payload_length = static_cast<uint32_t>(stored.size());
  std::string frame;
  wal_format::AppendRecord(seed, h, stored, &frame);
  return file.substr(0, f.offset) + frame +
         file.substr(f.offset + kRecordHeaderSize + f.stored.size());
}

// ---------------------------------------------------------------------------
// Round trips.

// encrypted, snappy, rollover, rotate, reopen
using Combo = std::tuple<bool, bool, bool, bool, bool>;

class RoundTripTest : public ::testing::TestWithParam<Combo> {};

TEST_P(RoundTripTest, EveryRecordComesBackAndDiskHoldsNoPlaintext) {
  const auto [encrypted, snappy, rollover, rotate, reopen] = GetParam();
  auto env = NewMemEnv();
  Random rnd(testutil::TestSeed(42));
  const Compression compression =
      snappy ? Compression::kSnappy : Compression::kNone;
  std::optional<KeyRing> ring;
  if (encrypted) ring.emplace(KeyA());
  const uint64_t target = rollover ? 3000 : (64 << 20);
  Model m;
  // first_encrypted_lsn: segments starting at or after it must be encrypted
  // under `expect_key` (0 = never encrypted).
  uint64_t first_encrypted_lsn = encrypted ? 1 : 0;
  auto wal_or = SegmentedWal::Open(Options(env.get(), ring, compression, target));
  ASSERT_OK(wal_or.status());
  std::unique_ptr<SegmentedWal> wal = std::move(*wal_or);
  EXPECT_EQ(wal->encryption_ring() != nullptr, encrypted);
  ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 60));
  std::map<uint64_t, uint64_t> key_from_lsn;  // first LSN -> key id in use
  if (encrypted) key_from_lsn[1] = KeyA().key_id();
  if (rotate) {
    // Encrypted: a new key, the old one kept as previous. Plain: rotating is
    // how an existing log starts encrypting.
    ring = encrypted ? KeyRing(KeyB(), KeyA()) : KeyRing(KeyB());
    ASSERT_OK(wal->RotateEncryptionRing(*ring));
    ASSERT_NE(wal->encryption_ring(), nullptr);
    EXPECT_EQ(wal->encryption_ring()->current().key_id(), KeyB().key_id());
    EXPECT_EQ(wal->active_segment_first_lsn(), wal->next_lsn());
    key_from_lsn[wal->next_lsn()] = KeyB().key_id();
    if (first_encrypted_lsn == 0) first_encrypted_lsn = wal->next_lsn();
    ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 60));
  }
  ExpectReadersAgree(*wal, m);
  if (reopen) {
    ASSERT_OK(wal->Sync());
    wal.reset();
    ASSERT_OK_AND_ASSIGN(wal, SegmentedWal::Open(Options(env.get(), ring,
                                                         compression, target)));
    EXPECT_EQ(wal->recovery_report().records_recovered, m.records.size());
    EXPECT_TRUE(wal->recovery_report().drops.empty());
    ExpectReadersAgree(*wal, m);
    ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 20));
  }
  ExpectReadersAgree(*wal, m);
  ASSERT_OK(wal->Sync());

  // On disk: segment headers, record flags, and no plaintext where encrypted.
  const std::vector<std::string> paths = SegmentPaths(env.get());
  if (rollover) {
    EXPECT_GE(paths.size(), 3u);
  }
  int encrypted_segments = 0, snappy_records = 0, records = 0;
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    const std::string file = ReadAll(env.get(), path);
    const ParsedSegment seg = Parse(file);
    const bool want_encrypted =
        first_encrypted_lsn != 0 && seg.header.first_lsn >= first_encrypted_lsn;
    const bool is_encrypted =
        (seg.header.flags & wal_format::kSegmentEncrypted) != 0;
    EXPECT_EQ(is_encrypted, want_encrypted);
    if (is_encrypted) {
      ++encrypted_segments;
      EXPECT_EQ(seg.header.cipher, SegmentCipher::kAes256Gcm);
      auto key = key_from_lsn.upper_bound(seg.header.first_lsn);
      ASSERT_NE(key, key_from_lsn.begin());
      EXPECT_EQ(seg.header.key_id, std::prev(key)->second);
      EXPECT_EQ(file.find("SECRET-"), std::string::npos)
          << "plaintext in an encrypted segment";
      EXPECT_EQ(file.find("quick brown"), std::string::npos);
    } else {
      EXPECT_EQ(seg.header.cipher, 0u);
      EXPECT_EQ(seg.header.key_id, 0u);
    }
    for (const Frame& f : seg.frames) {
      if (f.header.flags & kFlagFooter) continue;
      ++records;
      EXPECT_EQ((f.header.flags & kFlagEncrypted) != 0, is_encrypted);
      if (f.header.flags & kFlagSnappy) ++snappy_records;
    }
  }
  EXPECT_EQ(static_cast<size_t>(records), m.records.size());
  if (snappy) {
    EXPECT_GT(snappy_records, records / 8) << "compressible payloads";
  } else {
    EXPECT_EQ(snappy_records, 0);
  }
  if (first_encrypted_lsn != 0) {
    EXPECT_GT(encrypted_segments, 0);
  }
}

std::string ComboName(const ::testing::TestParamInfo<Combo>& info) {
  const auto [enc, snappy, roll, rotate, reopen] = info.param;
  return absl::StrCat(enc ? "Encrypted" : "Plain",
                      snappy ? "Snappy" : "Uncompressed",
                      roll ? "Rollover" : "OneSegment", rotate ? "Rotate" : "",
                      reopen ? "Reopen" : "");
}

INSTANTIATE_TEST_SUITE_P(
    AllCombinations, RoundTripTest,
    ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Bool(),
                       ::testing::Bool(), ::testing::Bool()),
    ComboName);

TEST(CompressionTest, SnappyShrinksTheLogAndAnyOptionReadsIt) {
  auto plain_env = NewMemEnv(), snappy_env = NewMemEnv();
  Random rnd_a(7), rnd_b(7);
  Model a, b;
  {
    ASSERT_OK_AND_ASSIGN(auto wal,
                         SegmentedWal::Open(Options(plain_env.get(), {})));
    ASSERT_OK(AppendRandom(wal.get(), &rnd_a, &a, 200));
    ASSERT_OK(wal->Sync());
  }
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                       snappy_env.get(), {}, Compression::kSnappy)));
    ASSERT_OK(AppendRandom(wal.get(), &rnd_b, &b, 200));
    ASSERT_OK(wal->Sync());
  }
  {
    // Both reopened after a clean close: file sizes are the logs' bytes (an
    // open WAL's active segment may sit in a longer preallocated file).
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                       snappy_env.get(), {}, Compression::kSnappy)));
    ASSERT_OK_AND_ASSIGN(uint64_t snappy_size, wal->TotalSizeBytes());
    ASSERT_OK_AND_ASSIGN(auto plain, SegmentedWal::Open(Options(plain_env.get(), {})));
    ASSERT_OK_AND_ASSIGN(uint64_t plain_size, plain->TotalSizeBytes());
    EXPECT_LT(snappy_size * 10, plain_size * 8) << "at least 20% smaller";
  }
  // Written with Snappy, read by a WAL opened without compression.
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(snappy_env.get(), {})));
  ExpectReadersAgree(*wal, b);
}

TEST(CompressionTest, UnknownCompressionValueIsInvalidArgument) {
  auto env = NewMemEnv();
  SegmentedWalOptions o = Options(env.get(), {});
  o.compression = static_cast<Compression>(7);
  EXPECT_THAT(SegmentedWal::Open(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("compression")));
}

// ---------------------------------------------------------------------------
// Rings: set, rotate, keep across rolls and reopen.

// The ring (and its previous key) is kept across size-triggered rolls and
// passed again at reopen (wal/FORMAT.md, "Keys: the ring, rotation, missing
// keys"): every record stays readable.
TEST(RotationTest, RotateRollTwiceReopenReplaysAll) {
  auto env = NewMemEnv();
  Random rnd(3);
  Model m;
  const uint64_t target = 4096;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                     env.get(), KeyRing(KeyA()),
                                     Compression::kSnappy, target)));
  ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 10));
  const uint64_t rotated_at = wal->next_lsn();
  ASSERT_OK(wal->RotateEncryptionRing(KeyRing(KeyB(), KeyA())));
  // Roll at least twice by size.
  const uint64_t first_after_rotate = wal->active_segment_first_lsn();
  while (true) {
    ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 1));
    ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
    int after = 0;
    for (const SegmentMeta& s : segs) after += s.first_lsn > first_after_rotate;
    if (after >= 2) break;
  }
  ExpectReadersAgree(*wal, m);
  ASSERT_OK(wal->Sync());
  wal.reset();
  ASSERT_OK_AND_ASSIGN(wal, SegmentedWal::Open(Options(
                                env.get(), KeyRing(KeyB(), KeyA()),
                                Compression::kSnappy, target)));
  ExpectReadersAgree(*wal, m);
  ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 30));
  ExpectReadersAgree(*wal, m);
  // The segments name the key they were written with.
  for (const std::string& path : SegmentPaths(env.get())) {
    const ParsedSegment seg = Parse(ReadAll(env.get(), path));
    EXPECT_EQ(seg.header.key_id, seg.header.first_lsn < rotated_at
                                     ? KeyA().key_id()
                                     : KeyB().key_id())
        << path;
  }
  // Dropping the old key: Open still works (the old segments are sealed and
  // only their footers are read), but reading them says which key is missing.
  ASSERT_OK(wal->Sync());
  wal.reset();
  ASSERT_OK_AND_ASSIGN(wal, SegmentedWal::Open(Options(env.get(),
                                                       KeyRing(KeyB()))));
  EXPECT_THAT(wal->Replay(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(KeyIdToString(KeyA().key_id())),
                             HasSubstr("not in the encryption ring"))));
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> tail,
                       wal->ReplayFrom(rotated_at));
  EXPECT_EQ(Compare(tail, m, rotated_at), "");
  // Truncating the old segments retires the old key for good.
  ASSERT_OK(wal->TruncateBefore(rotated_at).status());
  m.records.erase(m.records.begin(),
                  m.records.begin() + static_cast<long>(rotated_at - m.floor));
  m.floor = rotated_at;
  ExpectReadersAgree(*wal, m);
}

// A roll leaves the next segment empty, under a spare's name until its
// predecessor's queued seal renames it. Rotating then replaces that empty
// segment (same name, the new key): the replacement must not be created
// before the queued seal has named the file it replaces, or the seal's rename
// lands on the replacement and the records synced into it are lost.
TEST(RotationTest, ReplacingAnEmptySegmentWaitsForItsQueuedName) {
  for (const bool set : {false, true}) {
    SCOPED_TRACE(set ? "SetEncryptionRing" : "RotateEncryptionRing");
    auto mem = NewMemEnv();
    FaultInjectionEnv env(mem.get());
    Random rnd(6);
    Model m;
    SegmentedWalOptions o =
        Options(&env, KeyRing(KeyA(), KeyB()), Compression::kNone, 4096);
    o.max_seals_in_flight = 4;
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
    const uint64_t first = wal->active_segment_first_lsn();
    while (wal->active_segment_first_lsn() == first) {
      ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 1));
    }
    // The roll's seal is queued and the new segment holds no record yet.
    const uint64_t replaced = wal->active_segment_first_lsn();
    ASSERT_EQ(replaced, wal->next_lsn());
    ASSERT_EQ(wal->durable_lsn(), 0u);
    if (set) {
      ASSERT_OK(wal->SetEncryptionRing(KeyRing(KeyB(), KeyA())));
    } else {
      ASSERT_OK(wal->RotateEncryptionRing(KeyRing(KeyB(), KeyA())));
    }
    ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 5));
    ASSERT_OK(wal->Sync());
    ExpectReadersAgree(*wal, m);
    ASSERT_OK(env.SimulateCrash(CrashMode::kDropUnsynced, 1));
    wal.reset();
    ASSERT_OK_AND_ASSIGN(wal, SegmentedWal::Open(o));
    ExpectReadersAgree(*wal, m);
    // The replacement segment is on disk, written under the new key.
    int found = 0;
    for (const std::string& path : SegmentPaths(&env)) {
      const ParsedSegment seg = Parse(ReadAll(&env, path));
      if (seg.header.first_lsn != replaced) continue;
      found++;
      EXPECT_EQ(seg.header.key_id, KeyB().key_id()) << path;
    }
    EXPECT_EQ(found, 1);
  }
}

TEST(RotationTest, RotatingToARingWithoutTheOldKeyLosesOnlyReads) {
  auto env = NewMemEnv();
  Random rnd(4);
  Model m;
  ASSERT_OK_AND_ASSIGN(auto wal,
                       SegmentedWal::Open(Options(env.get(), KeyRing(KeyA()))));
  ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 5));
  ASSERT_OK(wal->RotateEncryptionRing(KeyRing(KeyB())));
  ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 5));
  EXPECT_THAT(wal->Replay(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(KeyIdToString(KeyA().key_id()))));
  // Rotating back to a ring that holds both makes everything readable.
  ASSERT_OK(wal->RotateEncryptionRing(KeyRing(KeyB(), KeyA())));
  ExpectReadersAgree(*wal, m);
}

TEST(SetEncryptionRingTest, OnlyBeforeTheActiveSegmentHasRecords) {
  auto env = NewMemEnv();
  Random rnd(5);
  Model m;
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(env.get(), {})));
  EXPECT_EQ(wal->encryption_ring(), nullptr);
  ASSERT_OK(wal->SetEncryptionRing(KeyRing(KeyA())));
  const KeyRing* ring = wal->encryption_ring();
  ASSERT_NE(ring, nullptr);
  EXPECT_EQ(ring->current().key_id(), KeyA().key_id());
  EXPECT_EQ(wal->active_segment_first_lsn(), 1u);
  ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 3));
  EXPECT_THAT(wal->SetEncryptionRing(KeyRing(KeyB())),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("already holds 3 records"),
                             HasSubstr("RotateEncryptionRing"))));
  // The failed call changed nothing; the WAL is healthy.
  EXPECT_EQ(wal->encryption_ring(), ring);
  ASSERT_OK(wal->poisoned_status());
  ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 3));
  ASSERT_OK(wal->Sync());
  ExpectReadersAgree(*wal, m);
  // The first segment was replaced, not sealed empty: one segment, encrypted.
  const std::vector<std::string> paths = SegmentPaths(env.get());
  ASSERT_EQ(paths.size(), 1u);
  const std::string file = ReadAll(env.get(), paths[0]);
  EXPECT_EQ(Parse(file).header.key_id, KeyA().key_id());
  EXPECT_EQ(file.find("SECRET-"), std::string::npos);
  // encryption_ring() pointers stay valid across rotations.
  ASSERT_OK(wal->RotateEncryptionRing(KeyRing(KeyB(), KeyA())));
  EXPECT_EQ(ring->current().key_id(), KeyA().key_id());
  EXPECT_EQ(wal->encryption_ring()->current().key_id(), KeyB().key_id());
}

TEST(SetEncryptionRingTest, ExistingPlaintextLogNeedsRotateOrOptions) {
  auto env = NewMemEnv();
  Random rnd(6);
  Model m;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(env.get(), {})));
    ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 10));
    ASSERT_OK(wal->Sync());
  }
  {
    // Reopened without a ring, the plaintext tail is appended to: Set fails.
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(env.get(), {})));
    EXPECT_EQ(wal->active_segment_first_lsn(), 1u);
    EXPECT_THAT(wal->SetEncryptionRing(KeyRing(KeyA())),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(wal->encryption_ring(), nullptr);
  }
  {
    // With the ring in the options, the plaintext tail is closed and new
    // records go to a new, encrypted segment.
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                       env.get(), KeyRing(KeyA()))));
    EXPECT_EQ(wal->active_segment_first_lsn(), 11u);
    ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 10));
    ExpectReadersAgree(*wal, m);
    ASSERT_OK(wal->Sync());
  }
  const std::vector<std::string> paths = SegmentPaths(env.get());
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(Parse(ReadAll(env.get(), paths[0])).header.flags, 0u);
  EXPECT_EQ(Parse(ReadAll(env.get(), paths[1])).header.key_id, KeyA().key_id());
  // The plaintext segment was sealed with a footer.
  const ParsedSegment first = Parse(ReadAll(env.get(), paths[0]));
  ASSERT_FALSE(first.frames.empty());
  EXPECT_NE(first.frames.back().header.flags & kFlagFooter, 0);
  // Reopen once more with the ring: everything readable.
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                     env.get(), KeyRing(KeyA()))));
  ExpectReadersAgree(*wal, m);
}

// ---------------------------------------------------------------------------
// Key errors.

TEST(KeyErrorTest, OpenWithoutRingNamesTheKeyId) {
  auto env = NewMemEnv();
  Random rnd(8);
  Model m;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                       env.get(), KeyRing(KeyA()))));
    ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 5));
    ASSERT_OK(wal->Sync());
  }
  const std::vector<std::string> before = SegmentPaths(env.get());
  for (RecoveryMode mode :
       {RecoveryMode::kTolerateCorruptedTail, RecoveryMode::kAbsoluteConsistency,
        RecoveryMode::kPointInTimeRecovery,
        RecoveryMode::kSkipAnyCorruptedRecords}) {
    SegmentedWalOptions o = Options(env.get(), {});
    o.recovery_mode = mode;
    EXPECT_THAT(SegmentedWal::Open(o),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         AllOf(HasSubstr(KeyIdToString(KeyA().key_id())),
                               HasSubstr("no encryption ring"))));
    // The wrong key (not in the ring) is named too.
    o.encryption_ring = KeyRing(KeyB(), KeyC());
    EXPECT_THAT(SegmentedWal::Open(o),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         AllOf(HasSubstr(KeyIdToString(KeyA().key_id())),
                               HasSubstr("not in the encryption ring"))));
  }
  // Failed Opens changed nothing on disk.
  EXPECT_EQ(SegmentPaths(env.get()), before);
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                     env.get(), KeyRing(KeyC(), KeyA()))));
  ExpectReadersAgree(*wal, m);
}

// The key id is a fingerprint of the key: a different key can only be
// confused with the right one by editing the header, and then the AEAD tag
// fails (DataLoss), never garbage.
TEST(KeyErrorTest, HeaderNamingAnotherKeyFailsTheTag) {
  auto env = NewMemEnv();
  Random rnd(9);
  Model m;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                       env.get(), KeyRing(KeyA()))));
    ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 5));
    ASSERT_OK(wal->RotateEncryptionRing(KeyRing(KeyA())));
  }
  const std::string path = SegmentPaths(env.get())[0];
  std::string file = ReadAll(env.get(), path);
  SegmentHeader h;
  ASSERT_OK(wal_format::DecodeSegmentHeader(file, &h));
  h.key_id = KeyB().key_id();
  file.replace(0, kSegmentHeaderSize, wal_format::EncodeSegmentHeader(h));
  WriteAll(env.get(), path, file);
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                     env.get(), KeyRing(KeyA(), KeyB()))));
  EXPECT_THAT(wal->Replay(),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(path), HasSubstr("offset 64"),
                             HasSubstr("LSN 1"),
                             HasSubstr("decryption failed"))));
}

// ---------------------------------------------------------------------------
// Tampering that keeps every CRC valid: only the AEAD can tell.

class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = NewMemEnv();
    Random rnd(10);
    ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                       env_.get(), KeyRing(KeyA()))));
    // Segment 1: LSNs 1-4, sealed. Segment 5: LSNs 5-8, active.
    for (int i = 0; i < 8; ++i) {
      if (i == 4) {
        ASSERT_OK(wal->RotateEncryptionRing(KeyRing(KeyA())));
      }
      const std::string payload = absl::StrCat("payload-", i, "-xxxxxxxx");
      ASSERT_OK(wal->Append(1, 100 + i, 2, 3, payload).status());
    }
    ASSERT_OK(wal->Sync());
    paths_ = SegmentPaths(env_.get());
    ASSERT_EQ(paths_.size(), 2u);
  }

  std::string File(int i) { return ReadAll(env_.get(), paths_[i]); }
  void Put(int i, const std::string& data) {
    WriteAll(env_.get(), paths_[i], data);
  }
  absl::StatusOr<std::unique_ptr<SegmentedWal>> OpenWal(
      RecoveryMode mode = RecoveryMode::kTolerateCorruptedTail) {
    SegmentedWalOptions o = Options(env_.get(), KeyRing(KeyA()));
    o.recovery_mode = mode;
    return SegmentedWal::Open(o);
  }
  // In the sealed segment: Open reads only its footer, Replay finds it.
  void ExpectReplayDataLoss(const std::string& what, uint64_t lsn) {
    SCOPED_TRACE(what);
    {
      ASSERT_OK_AND_ASSIGN(auto wal, OpenWal());
      EXPECT_THAT(wal->Replay(),
                  StatusIs(absl::StatusCode::kDataLoss,
                           AllOf(HasSubstr(paths_[0]),
                                 HasSubstr(absl::StrCat("(LSN ", lsn, ")")))));
    }
    // Every mode that verifies at Open refuses or sets it aside.
    EXPECT_THAT(OpenWal(RecoveryMode::kAbsoluteConsistency),
                StatusIs(absl::StatusCode::kDataLoss));
  }

  std::unique_ptr<Env> env_;
  std::vector<std::string> paths_;
};

TEST_F(TamperTest, EditedHeaderField) {
  const std::string file = File(0);
  const ParsedSegment seg = Parse(file);
  const Frame& f = seg.frames[1];  // LSN 2
  RecordHeader h = f.header;
  h.tenant_id = 999;
  Put(0, Reframe(file, seg.seed, f, h, f.stored));
  ExpectReplayDataLoss("tenant id changed", 2);
  ASSERT_OK_AND_ASSIGN(auto wal, OpenWal());
  EXPECT_THAT(wal->Replay(), StatusIs(absl::StatusCode::kDataLoss,
                                      AllOf(HasSubstr("decryption failed"),
                                            HasSubstr(absl::StrCat(
                                                "offset ", f.offset)))));
}

TEST_F(TamperTest, PayloadMovedUnderAnotherHeader) {
  const std::string file = File(0);
  const ParsedSegment seg = Parse(file);
  // Record 3's ciphertext under record 2's header (same length).
  ASSERT_EQ(seg.frames[1].stored.size(), seg.frames[2].stored.size());
  Put(0, Reframe(file, seg.seed, seg.frames[1], seg.frames[1].header,
                 seg.frames[2].stored));
  ExpectReplayDataLoss("ciphertext swapped", 2);
}

TEST_F(TamperTest, RecordsReordered) {
  const std::string file = File(0);
  const ParsedSegment seg = Parse(file);
  // Swap records 2 and 3 wholesale, renumbering their LSNs so the LSN
  // sequence still looks right.
  RecordHeader h2 = seg.frames[2].header, h3 = seg.frames[1].header;
  h2.lsn = 2;
  h3.lsn = 3;
  std::string out = Reframe(file, seg.seed, seg.frames[1], h2,
                            seg.frames[2].stored);
  out = Reframe(out, seg.seed, seg.frames[2], h3, seg.frames[1].stored);
  Put(0, out);
  ExpectReplayDataLoss("records reordered", 2);
}

TEST_F(TamperTest, RecordCopiedFromAnotherSegment) {
  const std::string file0 = File(0), file1 = File(1);
  const ParsedSegment seg0 = Parse(file0), seg1 = Parse(file1);
  // Segment 5's first record, renumbered as LSN 2 and re-checksummed for
  // segment 1.
  RecordHeader h = seg1.frames[0].header;
  h.lsn = 2;
  Put(0, Reframe(file0, seg0.seed, seg0.frames[1], h, seg1.frames[0].stored));
  ExpectReplayDataLoss("record from another segment", 2);
}

TEST_F(TamperTest, SegmentHeaderEdited) {
  std::string file = File(0);
  SegmentHeader h;
  ASSERT_OK(wal_format::DecodeSegmentHeader(file, &h));
  h.salt[0] ^= 1;  // another subkey; the CRC seed changes too: re-frame all
  std::string out = wal_format::EncodeSegmentHeader(h);
  const uint32_t seed = wal_format::SegmentSeed(h);
  for (const Frame& f : Parse(file).frames) {
    wal_format::AppendRecord(seed, f.header, f.stored, &out);
  }
  Put(0, out);
  ExpectReplayDataLoss("segment salt changed", 1);
}

TEST_F(TamperTest, PlaintextRecordInjected) {
  const std::string file = File(0);
  const ParsedSegment seg = Parse(file);
  const Frame& f = seg.frames[1];
  RecordHeader h = f.header;
  h.flags = 0;  // "not encrypted"
  std::string fake = "attacker-chosen";
  fake.resize(f.stored.size(), '!');
  Put(0, Reframe(file, seg.seed, f, h, fake));
  ExpectReplayDataLoss("plaintext injected", 2);
  ASSERT_OK_AND_ASSIGN(auto wal, OpenWal());
  EXPECT_THAT(wal->Replay(),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("unencrypted record in an encrypted segment")));
}

TEST_F(TamperTest, EncryptionFlagClearedInSegmentHeader) {
  std::string file = File(0);
  SegmentHeader h;
  ASSERT_OK(wal_format::DecodeSegmentHeader(file, &h));
  h.flags = 0;
  h.cipher = 0;
  h.key_id = 0;
  file.replace(0, kSegmentHeaderSize, wal_format::EncodeSegmentHeader(h));
  Put(0, file);
  ExpectReplayDataLoss("segment marked plaintext", 1);
}

// A segment rewritten as plaintext (header and records, CRCs recomputed):
// what anyone with write access to the directory can make without the key.
std::string ForgePlaintext(const std::string& file) {
  const ParsedSegment seg = Parse(file);
  SegmentHeader h = seg.header;
  h.flags &= ~wal_format::kSegmentEncrypted;
  h.cipher = 0;
  h.key_id = 0;
  std::string out = wal_format::EncodeSegmentHeader(h);
  const uint32_t seed = wal_format::SegmentSeed(h);
  for (const Frame& f : seg.frames) {
    if (f.header.flags & kFlagFooter) {  // never encrypted: re-framed as is
      wal_format::AppendRecord(seed, f.header, f.stored, &out);
      continue;
    }
    RecordHeader rh = f.header;
    rh.flags = 0;
    const std::string payload = absl::StrCat("forged-", rh.lsn);
    rh.payload_length = static_cast<uint32_t>(payload.size());
    wal_format::AppendRecord(seed, rh, payload, &out);
  }
  return out;
}

TEST_F(TamperTest, PlaintextSegmentAfterAnEncryptedOneIsRefused) {
  Put(1, ForgePlaintext(File(1)));  // the active segment, LSNs 5-8
  for (RecoveryMode mode :
       {RecoveryMode::kTolerateCorruptedTail, RecoveryMode::kAbsoluteConsistency,
        RecoveryMode::kSkipAnyCorruptedRecords}) {
    EXPECT_THAT(OpenWal(mode),
                StatusIs(absl::StatusCode::kDataLoss,
                         AllOf(HasSubstr(paths_[1] + " offset 0"),
                               HasSubstr(paths_[0]),
                               HasSubstr("plaintext segment after the "
                                         "encrypted segment"))));
  }
  // Point-in-time recovery sets it aside and keeps what came before.
  ASSERT_OK_AND_ASSIGN(auto wal, OpenWal(RecoveryMode::kPointInTimeRecovery));
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got.back().lsn, 4u);
  for (const WalRecord& r : got) {
    EXPECT_THAT(r.payload, ::testing::Not(HasSubstr("forged")));
  }
  EXPECT_FALSE(wal->recovery_report().drops.empty());
}

TEST_F(TamperTest, SegmentReplacedByPlaintextAfterOpenFailsTheRead) {
  ASSERT_OK_AND_ASSIGN(auto wal, OpenWal());
  // Before Open this would pass for plaintext history; after it, the WAL
  // knows the segment was encrypted.
  Put(0, ForgePlaintext(File(0)));
  EXPECT_THAT(wal->Replay(),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(paths_[0] + " offset 0"),
                             HasSubstr("the file was replaced"))));
  ASSERT_OK_AND_ASSIGN(auto it, wal->NewIterator(1));
  EXPECT_FALSE(it->Valid());
  EXPECT_THAT(it->status(), StatusIs(absl::StatusCode::kDataLoss));
  // Starting after it, the encrypted segment still reads.
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> tail, wal->ReplayFrom(5));
  EXPECT_EQ(tail.size(), 4u);
}

// In the last segment, a record that fails its tag is corruption (a torn
// write cannot produce valid CRCs): Open refuses it instead of cutting it
// off as a torn tail, even when it is the very last record.
TEST_F(TamperTest, LastRecordOfActiveSegmentIsCorruptionNotTornTail) {
  const std::string file = File(1);
  const ParsedSegment seg = Parse(file);
  ASSERT_EQ(seg.frames.size(), 4u);
  const Frame& f = seg.frames.back();
  RecordHeader h = f.header;
  h.vshard_id ^= 1;
  Put(1, Reframe(file, seg.seed, f, h, f.stored));
  EXPECT_THAT(OpenWal(), StatusIs(absl::StatusCode::kDataLoss,
                                  AllOf(HasSubstr("corruption"),
                                        HasSubstr(paths_[1]),
                                        HasSubstr("(LSN 8)"),
                                        HasSubstr("decryption failed"))));
  ASSERT_OK_AND_ASSIGN(auto pit, OpenWal(RecoveryMode::kPointInTimeRecovery));
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, pit->Replay());
  EXPECT_EQ(got.size(), 7u);
  EXPECT_FALSE(pit->recovery_report().drops.empty());
}

TEST_F(TamperTest, SkipAnyCorruptedRecordsSkipsARecordThatFailsItsTag) {
  const std::string file = File(0);
  const ParsedSegment seg = Parse(file);
  RecordHeader h = seg.frames[2].header;  // LSN 3
  h.record_type ^= 1;
  Put(0, Reframe(file, seg.seed, seg.frames[2], h, seg.frames[2].stored));
  ASSERT_OK_AND_ASSIGN(auto wal, OpenWal(RecoveryMode::kSkipAnyCorruptedRecords));
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
  std::vector<uint64_t> lsns;
  for (const WalRecord& r : got) lsns.push_back(r.lsn);
  EXPECT_THAT(lsns, ::testing::ElementsAre(1, 2, 4, 5, 6, 7, 8));
}

// ---------------------------------------------------------------------------
// Every single-bit flip of a small encrypted segment is detected.

struct Image {
  std::vector<std::pair<std::string, std::string>> files;  // path, bytes
};

Image Snapshot(Env* env) {
  Image img;
  for (const std::string& p : SegmentPaths(env)) {
    img.files.push_back({p, ReadAll(env, p)});
  }
  return img;
}

std::unique_ptr<Env> Restore(const Image& img) {
  auto env = NewMemEnv();
  EXPECT_OK(env->CreateDirIfMissing(kDir));
  for (const auto& [path, bytes] : img.files) WriteAll(env.get(), path, bytes);
  return env;
}

// Builds a log of `sealed` (3 records, sealed) + an active segment of 3
// records, or only the active segment.
Image SmallEncryptedLog(bool with_sealed_segment, std::vector<WalRecord>* out) {
  auto env = NewMemEnv();
  auto wal = SegmentedWal::Open(
      Options(env.get(), KeyRing(KeyA()), Compression::kSnappy));
  EXPECT_OK(wal.status());
  for (int i = 0; i < 6; ++i) {
    if (i == 3 && with_sealed_segment) {
      EXPECT_OK((*wal)->RotateEncryptionRing(KeyRing(KeyA())));
    }
    WalRecord r;
    r.lsn = static_cast<uint64_t>(i) + 1;
    r.record_type = 1;
    r.tenant_id = 7;
    r.payload = i % 2 ? std::string(40, 'z') : absl::StrCat("rec", i);
    EXPECT_OK((*wal)->Append(1, 7, 0, 0, r.payload).status());
    out->push_back(r);
  }
  EXPECT_OK((*wal)->Sync());
  wal->reset();
  return Snapshot(env.get());
}

TEST(BitFlipTest, EveryFlipOfASealedEncryptedSegmentIsDetected) {
  std::vector<WalRecord> want;
  const Image clean = SmallEncryptedLog(/*with_sealed_segment=*/true, &want);
  ASSERT_EQ(clean.files.size(), 2u);
  const std::string& original = clean.files[0].second;
  uint64_t at_open = 0, at_replay = 0;
  for (size_t bit = 0; bit < original.size() * 8; ++bit) {
    SCOPED_TRACE(absl::StrCat("flipped bit ", bit % 8, " of byte ", bit / 8,
                              " of ", clean.files[0].first));
    Image img = clean;
    img.files[0].second[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    auto env = Restore(img);
    auto wal = SegmentedWal::Open(Options(env.get(), KeyRing(KeyA())));
    if (!wal.ok()) {
      EXPECT_THAT(wal, StatusIs(absl::StatusCode::kDataLoss));
      ++at_open;
      continue;
    }
    auto got = (*wal)->Replay();
    ASSERT_FALSE(got.ok()) << "undetected: Replay returned " << got->size()
                           << " records";
    EXPECT_THAT(got, StatusIs(absl::StatusCode::kDataLoss,
                              HasSubstr(clean.files[0].first)));
    ++at_replay;
  }
  printf("[encryption_test] sealed segment of %zu bytes: %" PRIu64
         " flips refused at Open, %" PRIu64 " at Replay\n",
         original.size(), at_open, at_replay);
  EXPECT_GT(at_open, 0u);
  EXPECT_GT(at_replay, 0u);
}

TEST(BitFlipTest, EveryFlipOfTheActiveEncryptedSegmentIsDetected) {
  std::vector<WalRecord> want;
  const Image clean = SmallEncryptedLog(/*with_sealed_segment=*/false, &want);
  ASSERT_EQ(clean.files.size(), 1u);
  const std::string& original = clean.files[0].second;
  uint64_t refused = 0, dropped = 0;
  for (size_t bit = 0; bit < original.size() * 8; ++bit) {
    SCOPED_TRACE(absl::StrCat("flipped bit ", bit % 8, " of byte ", bit / 8));
    Image img = clean;
    img.files[0].second[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    {
      // kAbsoluteConsistency: every flip fails Open.
      auto env = Restore(img);
      SegmentedWalOptions o = Options(env.get(), KeyRing(KeyA()));
      o.recovery_mode = RecoveryMode::kAbsoluteConsistency;
      EXPECT_THAT(SegmentedWal::Open(o), StatusIs(absl::StatusCode::kDataLoss));
    }
    // The default mode: refused, or the damage is reported (a flip in the
    // last records looks like a torn tail) and what replays is a prefix of
    // the original records: never garbage.
    auto env = Restore(img);
    auto wal = SegmentedWal::Open(Options(env.get(), KeyRing(KeyA())));
    if (!wal.ok()) {
      EXPECT_THAT(wal, StatusIs(absl::StatusCode::kDataLoss));
      ++refused;
      continue;
    }
    ASSERT_FALSE((*wal)->recovery_report().drops.empty())
        << "a flipped bit went unreported";
    ++dropped;
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, (*wal)->Replay());
    ASSERT_LT(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]);
  }
  printf("[encryption_test] active segment of %zu bytes: %" PRIu64
         " flips refused, %" PRIu64 " cut as a torn tail and reported\n",
         original.size(), refused, dropped);
}

// ---------------------------------------------------------------------------
// Nonce uniqueness and acknowledged records across crash cycles.

// Records every (subkey, nonce) pair sealed in the process.
class NonceRecorder {
 public:
  NonceRecorder() {
    SegmentCipher::SetSealObserverForTesting(
        [this](const SegmentCipher::SubkeyFingerprint& fp,
               absl::string_view nonce) {
          std::string key(reinterpret_cast<const char*>(fp.data()), fp.size());
          key.append(nonce.data(), nonce.size());
          port::MutexLock l(&mu_);
          ++seals_;
          if (!pairs_.insert(std::move(key)).second) ++repeats_;
          ++lsn_seals_[std::string(nonce)];
        });
  }
  ~NonceRecorder() { SegmentCipher::SetSealObserverForTesting(nullptr); }

  uint64_t seals() {
    port::MutexLock l(&mu_);
    return seals_;
  }
  uint64_t repeats() {
    port::MutexLock l(&mu_);
    return repeats_;
  }
  // Nonces (LSNs) sealed more than once, under different subkeys: the
  // rewinds a crash causes, which must not have reused a subkey.
  uint64_t resealed_lsns() {
    port::MutexLock l(&mu_);
    uint64_t n = 0;
    for (const auto& [nonce, count] : lsn_seals_) n += count > 1;
    return n;
  }
  void ClearLsns() {
    port::MutexLock l(&mu_);
    lsn_seals_.clear();
  }
  void Reset() {
    port::MutexLock l(&mu_);
    pairs_.clear();
    lsn_seals_.clear();
    seals_ = 0;
    repeats_ = 0;
  }

 private:
  port::Mutex mu_;
  std::set<std::string> pairs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> lsn_seals_ ABSL_GUARDED_BY(mu_);
  uint64_t seals_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t repeats_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(CrashCycleTest, NoNonceRepeatsAndAcknowledgedRecordsSurvive) {
  const int64_t cycles = testutil::EnvInt("SEGWAL_ENCRYPTION_CRASH_CYCLES",
                                          kSanitized ? 3000 : 10000);
  const uint64_t seed = testutil::TestSeed(0x5eed);
  SCOPED_TRACE(absl::StrCat("SEGWAL_TEST_SEED=", seed));
  Random rnd(seed);
  NonceRecorder recorder;
  {
    // The recorder sees a reuse: the same LSN sealed twice under the subkey
    // of one (key, salt, first LSN), as appending into a reopened segment
    // after a crash would do.
    auto c1 = SegmentCipher::Create(KeyA(), std::string(16, 's'), 1);
    auto c2 = SegmentCipher::Create(KeyA(), std::string(16, 's'), 1);
    ASSERT_OK(c1.status());
    ASSERT_OK(c2.status());
    std::string out;
    ASSERT_OK((*c1)->Seal(5, "", "before the crash", &out));
    ASSERT_OK((*c2)->Seal(5, "", "after the crash", &out));
    ASSERT_EQ(recorder.repeats(), 1u);
    recorder.Reset();
  }
  uint64_t resealed = 0, rotations = 0, records_lost = 0, appended = 0;

  std::unique_ptr<Env> mem;
  std::unique_ptr<FaultInjectionEnv> fi;
  std::unique_ptr<SegmentedWal> wal;
  Model m;
  uint64_t acked = 0;      // every LSN <= acked was acknowledged durable
  bool a_is_current = true;
  auto ring = [&] {
    return a_is_current ? KeyRing(KeyA(), KeyB()) : KeyRing(KeyB(), KeyA());
  };
  uint64_t absolute_refusals = 0;
  auto open = [&](RecoveryMode mode) {
    SegmentedWalOptions o = Options(fi.get(), ring(), Compression::kSnappy,
                                    1024 + rnd.Uniform(8192));
    o.write_buffer_size = size_t{64} << rnd.Uniform(8);
    o.recovery_mode = mode;
    o.background_preallocation = false;  // a fixed order of file operations
    o.background_sealing = false;
    auto w = SegmentedWal::Open(o);
    if (!w.ok() && mode == RecoveryMode::kAbsoluteConsistency) {
      // Refusing a torn tail is its job (DataLoss, nothing changed).
      ASSERT_THAT(w, StatusIs(absl::StatusCode::kDataLoss));
      ++absolute_refusals;
      o.recovery_mode = RecoveryMode::kTolerateCorruptedTail;
      w = SegmentedWal::Open(o);
    }
    ASSERT_OK(w.status());
    wal = std::move(*w);
  };
  int64_t cycles_left_in_env = 0;
  for (int64_t cycle = 0; cycle < cycles; ++cycle) {
    SCOPED_TRACE(absl::StrCat("cycle ", cycle));
    if (cycles_left_in_env-- == 0) {
      cycles_left_in_env = 1 + static_cast<int64_t>(rnd.Uniform(30));
      wal.reset();
      fi.reset();
      mem = NewMemEnv();
      fi = std::make_unique<FaultInjectionEnv>(mem.get());
      m = Model();
      acked = 0;
      resealed += recorder.resealed_lsns();  // LSNs restart in a new log
      recorder.ClearLsns();
      open(RecoveryMode::kTolerateCorruptedTail);
      if (HasFatalFailure()) return;
    }
    // Workload.
    const uint64_t ops = 1 + rnd.Uniform(40);
    for (uint64_t i = 0; i < ops; ++i) {
      const uint64_t dice = rnd.Uniform(100);
      if (dice < 75) {
        ASSERT_OK(AppendRandom(wal.get(), &rnd, &m, 1));
        ++appended;
      } else if (dice < 88) {
        ASSERT_OK(wal->Sync());
      } else if (dice < 91) {
        a_is_current = !a_is_current;
        ASSERT_OK(wal->RotateEncryptionRing(ring()));
        ++rotations;
      } else if (dice < 95) {
        const uint64_t d = wal->durable_lsn();
        if (d >= m.floor) {
          ASSERT_OK(wal->TruncateBefore(m.floor + rnd.Uniform(d - m.floor + 1))
                        .status());
          ASSERT_OK_AND_ASSIGN(auto segs, wal->ListSegments());
          const uint64_t first = segs.front().first_lsn;
          m.records.erase(m.records.begin(),
                          m.records.begin() + static_cast<long>(first - m.floor));
          m.floor = first;
        }
      } else {
        ASSERT_OK(wal->Flush());
      }
      acked = std::max(acked, wal->durable_lsn());
    }
    // Crash.
    const auto mode = static_cast<CrashMode>(rnd.Uniform(3));
    const uint64_t crash_seed = rnd.Next64();
    SCOPED_TRACE(absl::StrCat("crash ", CrashModeName(mode), " seed ",
                              crash_seed, ", acked ", acked, ", appended up to ",
                              m.next_lsn() - 1));
    if (rnd.OneIn(2)) {
      ASSERT_OK(fi->SimulateCrash(mode, crash_seed));
      wal.reset();
    } else {
      wal.reset();
      ASSERT_OK(fi->SimulateCrash(mode, crash_seed));
    }
    // Mostly the default recovery mode; the others must agree on what a
    // crash does (kAbsoluteConsistency may refuse a torn tail).
    const RecoveryMode modes[] = {RecoveryMode::kTolerateCorruptedTail,
                                  RecoveryMode::kAbsoluteConsistency,
                                  RecoveryMode::kPointInTimeRecovery,
                                  RecoveryMode::kSkipAnyCorruptedRecords};
    open(rnd.OneIn(2) ? modes[0] : modes[rnd.Uniform(4)]);
    if (HasFatalFailure()) return;
    // Every acknowledged record survived; nothing else appeared.
    ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
    const uint64_t next = wal->next_lsn();
    ASSERT_GT(next, acked) << "acknowledged records lost";
    ASSERT_LE(next, m.next_lsn()) << "records that were never appended";
    if (!got.empty()) {
      ASSERT_EQ(got.front().lsn, m.floor);
    }
    records_lost += m.next_lsn() - next;
    m.records.resize(next - m.floor);
    ASSERT_EQ(Compare(got, m, m.floor), "");
    acked = next - 1;  // Open made the recovered records durable
    if (!got.empty()) {
      ASSERT_EQ(wal->durable_lsn(), acked);
    }
    ASSERT_EQ(recorder.repeats(), 0u) << "a (subkey, nonce) pair was reused";
  }
  resealed += recorder.resealed_lsns();
  printf("[encryption_test] %" PRId64 " crash cycles: %" PRIu64
         " records appended, %" PRIu64 " lost to crashes and re-appended, %"
         PRIu64 " rotations, %" PRIu64 " seals, %" PRIu64
         " LSNs sealed more than once (each under a fresh subkey), %" PRIu64
         " repeated (subkey, nonce) pairs; %" PRIu64
         " torn tails refused by kAbsoluteConsistency\n",
         cycles, appended, records_lost, rotations, recorder.seals(), resealed,
         recorder.repeats(), absolute_refusals);
  EXPECT_EQ(recorder.repeats(), 0u);
  // The test is only meaningful if crashes made the WAL seal some LSNs again.
  EXPECT_GT(resealed, 0u);
  wal.reset();
}

// ---------------------------------------------------------------------------
// Concurrency: appenders, a rotator and a reader.

TEST(ConcurrencyTest, AppendersRotatorAndReaderAgree) {
  auto env = NewMemEnv();
  ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(Options(
                                     env.get(), KeyRing(KeyA(), KeyB()),
                                     Compression::kSnappy, 16 << 10)));
  constexpr int kThreads = 4;
  const int per_thread = kSanitized ? 300 : 2000;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Random rnd(t);
      for (int i = 0; i < per_thread; ++i) {
        const std::string payload =
            absl::StrCat(t, ":", i, ":", std::string(rnd.Skewed(10), 'p'));
        ASSERT_OK(wal->Append(1, t, i, 0, payload).status());
        if (rnd.OneIn(50)) {
          ASSERT_OK(wal->Sync());
        }
      }
      done.fetch_add(1);
    });
  }
  threads.emplace_back([&] {
    bool a = true;
    while (done.load() < kThreads) {
      a = !a;
      ASSERT_OK(wal->RotateEncryptionRing(a ? KeyRing(KeyA(), KeyB())
                                            : KeyRing(KeyB(), KeyA())));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  threads.emplace_back([&] {
    while (done.load() < kThreads) {
      ASSERT_OK_AND_ASSIGN(auto it, wal->NewIterator(1));
      uint64_t expect = 1;
      for (; it->Valid(); it->Next()) ASSERT_EQ(it->record().lsn, expect++);
      ASSERT_OK(it->status());
    }
  });
  for (auto& th : threads) th.join();
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> all, wal->Replay());
  ASSERT_EQ(all.size(), size_t{kThreads} * per_thread);
  std::vector<int> next(kThreads, 0);
  for (const WalRecord& r : all) {
    const int t = static_cast<int>(r.tenant_id);
    ASSERT_EQ(static_cast<int>(r.vshard_id), next[t]++);
    ASSERT_EQ(r.payload.substr(0, r.payload.find(':', 2) + 1),
              absl::StrCat(t, ":", r.vshard_id, ":"));
  }
}

}  // namespace
}  // namespace segwal
