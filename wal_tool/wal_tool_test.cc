// wal_tool, run in-process through wal_tool::Run: golden output of dump, verify
// and stats on small logs the tests write, repair of every damage kind (then
// SegmentedWal::Open succeeds and keeps what was durable), exit codes and
// one-line errors for every bad input, JSON lines that parse, and that the
// read-only commands never write.
//
// Most tests use a MemEnv (paths like "/wal" make the golden output stable);
// locking, key files and the read-only checks use the POSIX Env.

#include "wal_tool/wal_tool.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "crypto/key_ring.h"
#include "env/env.h"
#include "env/fault_injection_env.h"
#include "env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"
#include "wal/format.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace wal_tool {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kDir[] = "/wal";

struct ToolResult {
  int code = -1;
  std::string out;
  std::string err;
};

ToolResult RunTool(Env* env, const std::vector<std::string>& args) {
  std::ostringstream out, err;
  ToolResult r;
  r.code = Run(args, out, err, env);
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::ostream& operator<<(std::ostream& os, const ToolResult& r) {
  return os << "exit " << r.code << "\nstdout:\n"
            << r.out << "stderr:\n"
            << r.err;
}

// An error is exactly one line starting with "wal_tool: ".
void ExpectOneLineError(const ToolResult& r, int code,
                        const std::string& needle) {
  EXPECT_EQ(r.code, code) << r;
  EXPECT_THAT(r.err, StartsWith("wal_tool: ")) << r;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r;
  EXPECT_THAT(r.err, HasSubstr(needle)) << r;
  EXPECT_EQ(r.out, "") << r;
}

// dump printed records (stdout) and then one error line.
void ExpectOneLineErrorKeepingOutput(const ToolResult& r) {
  EXPECT_THAT(r.err, StartsWith("wal_tool: ")) << r;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r;
}

std::string ReadAll(Env* env, const std::string& path) {
  auto size = env->GetFileSize(path);
  EXPECT_TRUE(size.ok()) << size.status();
  auto file = env->NewRandomAccessFile(path);
  EXPECT_TRUE(file.ok()) << file.status();
  std::string data(*size, '\0');
  std::string scratch(*size, '\0');
  absl::string_view got;
  EXPECT_OK((*file)->Read(0, *size, &got, scratch.data()));
  data.assign(got.data(), got.size());
  return data;
}

void WriteAll(Env* env, const std::string& path, const std::string& data) {
  auto file = env->NewWritableFile(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_OK((*file)->Append(data));
  ASSERT_OK((*file)->Sync());
  ASSERT_OK((*file)->Close());
}

std::string SegmentPath(uint64_t first_lsn) {
  return std::string(kDir) + "/" + wal_format::SegmentFileName(first_lsn);
}

// The records every test log holds: deterministic fields and payloads.
WalRecord Expected(uint64_t lsn) {
  WalRecord r;
  r.lsn = lsn;
  r.record_type = 1 + lsn % 3;
  r.tenant_id = 100 + lsn % 2;
  r.vshard_id = static_cast<uint32_t>(lsn % 4);
  r.database_id = lsn % 5 == 0 ? 7 : 0;
  r.payload = absl::StrCat("value-", lsn);
  return r;
}

SegmentedWalOptions Options(Env* env, uint64_t segment_target_size = 1 << 20) {
  SegmentedWalOptions o;
  o.wal_dir = kDir;
  o.env = env;
  o.segment_target_size = segment_target_size;
  // Spares prepared in line at each roll and used at once: the directory's
  // contents do not depend on a background thread's timing.
  o.background_preallocation = false;
  o.background_sealing = false;
  return o;
}

// Appends records first..last (Expected) and syncs.
void AppendRecords(SegmentedWal* wal, uint64_t first, uint64_t last,
                   bool sync = true) {
  for (uint64_t lsn = first; lsn <= last; ++lsn) {
    const WalRecord r = Expected(lsn);
    auto got = wal->Append(r.record_type, r.tenant_id, r.vshard_id,
                           r.database_id, r.payload);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(*got, lsn);
  }
  if (sync) {
    ASSERT_OK(wal->Sync());
  }
}

// A log of `n` records (synced, closed), rolling past segment_target_size.
void MakeWal(Env* env, uint64_t n, uint64_t segment_target_size = 1 << 20) {
  auto wal = SegmentedWal::Open(Options(env, segment_target_size));
  ASSERT_TRUE(wal.ok()) << wal.status();
  AppendRecords(wal->get(), 1, n);
}

std::vector<WalRecord> ExpectedRange(uint64_t first, uint64_t last) {
  std::vector<WalRecord> out;
  for (uint64_t lsn = first; lsn <= last; ++lsn) out.push_back(Expected(lsn));
  return out;
}

std::vector<std::string> Children(Env* env, const std::string& dir) {
  auto names = env->GetChildren(dir);
  if (!names.ok()) return {};
  std::vector<std::string> out = *names;
  std::sort(out.begin(), out.end());
  return out;
}

// Segment sizes of the standard small log (Expected payloads are "value-N"):
// header 64, record 56 + payload, footer 56 + 16 * index entries + 32.
constexpr uint64_t kHeader = wal_format::kSegmentHeaderSize;
uint64_t FrameSize(uint64_t lsn) {
  return wal_format::kRecordHeaderSize + Expected(lsn).payload.size();
}
uint64_t OffsetOf(uint64_t first_lsn, uint64_t lsn) {
  uint64_t off = kHeader;
  for (uint64_t l = first_lsn; l < lsn; ++l) off += FrameSize(l);
  return off;
}

class WalToolTest : public ::testing::Test {
 protected:
  std::unique_ptr<Env> env_ = NewMemEnv();
  Env* env() { return env_.get(); }
  ToolResult Tool(std::vector<std::string> args) {
    return RunTool(env(), args);
  }
};

// ---------------------------------------------------------------------------
// A tiny JSON parser (RFC 8259 syntax only), to prove dump's lines parse.

class JsonChecker {
 public:
  explicit JsonChecker(absl::string_view s) : s_(s) {}
  // True if s is exactly one JSON object (surrounding whitespace allowed);
  // fills the object's top-level string and number members.
  bool ParseObjectLine(std::map<std::string, std::string>* members) {
    members_ = members;
    SkipWs();
    if (!Object(/*top=*/true)) return false;
    SkipWs();
    return pos_ == s_.size();
  }

 private:
  bool Value(std::string* text) {
    SkipWs();
    if (pos_ >= s_.size()) return false;
    const char c = s_[pos_];
    const size_t start = pos_;
    bool ok;
    if (c == '{') {
      ok = Object(false);
    } else if (c == '[') {
      ok = Array();
    } else if (c == '"') {
      std::string str;
      ok = String(&str);
      if (ok && text != nullptr) *text = str;
      return ok;
    } else if (c == 't') {
      ok = Literal("true");
    } else if (c == 'f') {
      ok = Literal("false");
    } else if (c == 'n') {
      ok = Literal("null");
    } else {
      ok = Number();
    }
    if (ok && text != nullptr)
      *text = std::string(s_.substr(start, pos_ - start));
    return ok;
  }
  bool Object(bool top) {
    if (!Eat('{')) return false;
    SkipWs();
    if (Eat('}')) return true;
    while (true) {
      SkipWs();
      std::string key;
      if (!String(&key)) return false;
      SkipWs();
      if (!Eat(':')) return false;
      std::string value;
      if (!Value(&value)) return false;
      if (top && members_ != nullptr) {
        if (members_->count(key) != 0) return false;  // duplicate key
        (*members_)[key] = value;
      }
      SkipWs();
      if (Eat('}')) return true;
      if (!Eat(',')) return false;
    }
  }
  bool Array() {
    if (!Eat('[')) return false;
    SkipWs();
    if (Eat(']')) return true;
    while (true) {
      if (!Value(nullptr)) return false;
      SkipWs();
      if (Eat(']')) return true;
      if (!Eat(',')) return false;
    }
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    while (pos_ < s_.size()) {
      const unsigned char c = s_[pos_++];
      if (c == '"') return true;
      if (c < 0x20) return false;   // control characters must be escaped
      if (c >= 0x80) return false;  // wal_tool emits ASCII only
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        continue;
      }
      if (pos_ >= s_.size()) return false;
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return false;
          unsigned v = 0;
          for (int i = 0; i < 4; ++i) {
            const char h = s_[pos_++];
            if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
            v = v * 16 +
                static_cast<unsigned>(
                    std::isdigit(h) ? h - '0' : std::tolower(h) - 'a' + 10);
          }
          out->push_back(static_cast<char>(v));  // tests only use v < 0x100
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool Number() {
    const size_t start = pos_;
    Eat('-');
    if (pos_ >= s_.size() ||
        !std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      return false;
    }
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < s_.size() &&
             std::isdigit(static_cast<unsigned char>(s_[pos_])))
        ++pos_;
    }
    if (Eat('.')) {
      if (pos_ >= s_.size() ||
          !std::isdigit(static_cast<unsigned char>(s_[pos_])))
        return false;
      while (pos_ < s_.size() &&
             std::isdigit(static_cast<unsigned char>(s_[pos_])))
        ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (!Eat('+')) Eat('-');
      if (pos_ >= s_.size() ||
          !std::isdigit(static_cast<unsigned char>(s_[pos_])))
        return false;
      while (pos_ < s_.size() &&
             std::isdigit(static_cast<unsigned char>(s_[pos_])))
        ++pos_;
    }
    return pos_ > start;
  }
  bool Literal(absl::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void SkipWs() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' ||
                                s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  absl::string_view s_;
  size_t pos_ = 0;
  std::map<std::string, std::string>* members_ = nullptr;
};

TEST(JsonCheckerTest, AcceptsValidAndRejectsInvalidJson) {
  std::map<std::string, std::string> m;
  EXPECT_TRUE(JsonChecker(R"({"a":1,"b":"x\"y","c":[1,{"d":null}],"e":-0.5e3})")
                  .ParseObjectLine(&m));
  EXPECT_EQ(m["b"], "x\"y");
  for (const char* bad :
       {R"({"a":1,})", R"({"a":01})", "{\"a\":\"\x01\"}", R"({"a":"\x41"})",
        R"({'a':1})", R"({"a":1}x)", R"({"a":1,"a":2})", R"({"a":tru})"}) {
    std::map<std::string, std::string> m2;
    EXPECT_FALSE(JsonChecker(bad).ParseObjectLine(&m2)) << bad;
  }
}

// ---------------------------------------------------------------------------
// Compressed and encrypted logs.

// A fixed key, so key ids (and the golden output) are stable.
WalEncryptionKey FixedKey(char fill) {
  auto key = WalEncryptionKey::FromBytes(std::string(32, fill));
  EXPECT_TRUE(key.ok()) << key.status();
  return *key;
}

// Writes the key's bytes to a real file only its owner can read.
std::string WriteKeyFile(const testutil::TempDir& tmp, const std::string& name,
                         const std::string& bytes, mode_t mode = 0600) {
  const std::string path = tmp.Join(name);
  Env* posix = Env::Default();
  auto file = posix->NewWritableFile(path);
  EXPECT_TRUE(file.ok()) << file.status();
  EXPECT_OK((*file)->Append(bytes));
  EXPECT_OK((*file)->Close());
  EXPECT_EQ(::chmod(path.c_str(), mode), 0);
  return path;
}

// Records whose payloads Snappy shrinks (100 repeated letters), and one it
// does not ("x").
void MakeCompressedWal(Env* env, std::optional<KeyRing> ring = std::nullopt) {
  SegmentedWalOptions o = Options(env);
  o.compression = Compression::kSnappy;
  o.encryption_ring = std::move(ring);
  auto wal = SegmentedWal::Open(o);
  ASSERT_TRUE(wal.ok()) << wal.status();
  ASSERT_OK((*wal)->Append(1, 7, 0, 0, std::string(100, 'a')).status());
  ASSERT_OK((*wal)->Append(2, 7, 1, 0, "x").status());
  ASSERT_OK((*wal)->Append(1, 8, 2, 0, std::string(100, 'b')).status());
  ASSERT_OK((*wal)->Sync());
}

// ---------------------------------------------------------------------------
// Golden output: the standard small log (6 records, two segments: the first
// sealed at 4 records by a 300-byte target).

TEST_F(WalToolTest, DumpTextGolden) {
  MakeWal(env(), 6, 300);
  const ToolResult r = Tool({"dump", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "lsn=1 type=2 tenant=101 vshard=1 database=0 size=7 stored=7 "
            "flags=none durable_lsn=0 segment=00000000000000000001.wal "
            "offset=64 payload=\"value-1\"\n"
            "lsn=2 type=3 tenant=100 vshard=2 database=0 size=7 stored=7 "
            "flags=none durable_lsn=0 segment=00000000000000000001.wal "
            "offset=127 payload=\"value-2\"\n"
            "lsn=3 type=1 tenant=101 vshard=3 database=0 size=7 stored=7 "
            "flags=none durable_lsn=0 segment=00000000000000000001.wal "
            "offset=190 payload=\"value-3\"\n"
            "lsn=4 type=2 tenant=100 vshard=0 database=0 size=7 stored=7 "
            "flags=none durable_lsn=0 segment=00000000000000000001.wal "
            "offset=253 payload=\"value-4\"\n"
            "lsn=5 type=3 tenant=101 vshard=1 database=7 size=7 stored=7 "
            "flags=none durable_lsn=4 segment=00000000000000000005.wal "
            "offset=64 payload=\"value-5\"\n"
            "lsn=6 type=1 tenant=100 vshard=2 database=0 size=7 stored=7 "
            "flags=none durable_lsn=4 segment=00000000000000000005.wal "
            "offset=127 payload=\"value-6\"\n");
}

TEST_F(WalToolTest, DumpJsonGolden) {
  MakeWal(env(), 6, 300);
  const ToolResult r = Tool({"dump", "--wal_dir=/wal", "--format=json",
                             "--payload=hex", "--from_lsn=4", "--limit=2"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(
      r.out,
      "{\"lsn\":4,\"type\":2,\"tenant\":100,\"vshard\":0,\"database\":0,"
      "\"size\":7,\"stored_size\":7,\"flags\":0,\"flag_names\":[],\"durable_"
      "lsn\":0,\"segment\":\"00000000000000000001.wal\",\"offset\":253,"
      "\"payload_encoding\":\"hex\",\"payload\":\"76616c75652d34\"}\n"
      "{\"lsn\":5,\"type\":3,\"tenant\":101,\"vshard\":1,\"database\":7,"
      "\"size\":7,\"stored_size\":7,\"flags\":0,\"flag_names\":[],\"durable_"
      "lsn\":4,\"segment\":\"00000000000000000005.wal\",\"offset\":64,"
      "\"payload_encoding\":\"hex\",\"payload\":\"76616c75652d35\"}\n");
}

TEST_F(WalToolTest, SpareFilesArePartOfTheWalNotIgnoredFiles) {
  MakeWal(env(), 6, 300);
  ASSERT_OK_AND_ASSIGN(auto f,
                       env()->NewWritableFile("/wal/spare-00000000000000000009.tmp"));
  ASSERT_OK(f->Append(std::string(4096, '\0')));
  ASSERT_OK(f->Close());
  ASSERT_OK_AND_ASSIGN(auto g, env()->NewWritableFile("/wal/stray.txt"));
  ASSERT_OK(g->Close());
  const ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr("note: ignored files: stray.txt\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("spare-")));
}

TEST_F(WalToolTest, VerifyGoldenClean) {
  MakeWal(env(), 6, 300);
  const ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(
      r.out,
      "WAL /wal\n"
      "segments: 2, 610 bytes\n"
      "records: 6, LSNs 1..6\n"
      "  segment                  LSNs                     records       bytes "
      " state       encryption\n"
      "  00000000000000000001.wal 1..4                           4         420 "
      " sealed      none\n"
      "  00000000000000000005.wal 5..6                           2         190 "
      " active      none\n"
      "result: OK (every checksum, footer and the segment chain verified)\n");
}

TEST_F(WalToolTest, StatsGolden) {
  MakeWal(env(), 6, 300);
  const ToolResult r = Tool({"stats", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(r.out,
            "WAL /wal\n"
            "segments: 2, 610 bytes\n"
            "records: 6, LSNs 1..6\n"
            "  segment                  LSNs                     records       "
            "bytes  state       encryption\n"
            "  00000000000000000001.wal 1..4                           4       "
            "  420  sealed      none\n"
            "  00000000000000000005.wal 5..6                           2       "
            "  190  active      none\n"
            "records by type:\n"
            "  type              records     stored bytes\n"
            "  1                       2               14\n"
            "  2                       2               14\n"
            "  3                       2               14\n"
            "records by tenant (2 tenants):\n"
            "  tenant                    records     stored bytes\n"
            "  100                             3               21\n"
            "  101                             3               21\n"
            "payload bytes: 42 stored, 42 logical, largest payload 7\n"
            "compression: 0 of 6 records snappy-compressed; ratio 1.00 "
            "(logical/stored)\n"
            "encryption: 0 of 6 records encrypted; key ids in use: none\n");
}

TEST_F(WalToolTest, StatsListsTopTenantsByRecords) {
  auto wal = SegmentedWal::Open(Options(env()));
  ASSERT_TRUE(wal.ok()) << wal.status();
  for (uint64_t tenant = 1; tenant <= 5; ++tenant) {
    for (uint64_t i = 0; i < tenant; ++i) {
      ASSERT_OK((*wal)->Append(1, tenant, 0, 0, "p").status());
    }
  }
  ASSERT_OK((*wal)->Sync());
  const ToolResult r = Tool({"stats", "--wal_dir=/wal", "--top=2"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out,
              HasSubstr("records by tenant (5 tenants, top 2 by records):\n"
                        "  tenant                    records     stored bytes\n"
                        "  5                               5                5\n"
                        "  4                               4                4\n"
                        "payload bytes:"));
}

TEST_F(WalToolTest, CompressedLogGolden) {
  MakeCompressedWal(env());
  // 64 + (56 + 9) + (56 + 1) + (56 + 9): Snappy stores 100 equal bytes in 9.
  ToolResult r = Tool({"dump", "--wal_dir=/wal", "--payload=none"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(
      r.out,
      "lsn=1 type=1 tenant=7 vshard=0 database=0 size=100 stored=9 "
      "flags=snappy durable_lsn=0 segment=00000000000000000001.wal offset=64\n"
      "lsn=2 type=2 tenant=7 vshard=1 database=0 size=1 stored=1 flags=none "
      "durable_lsn=0 segment=00000000000000000001.wal offset=129\n"
      "lsn=3 type=1 tenant=8 vshard=2 database=0 size=100 stored=9 "
      "flags=snappy durable_lsn=0 segment=00000000000000000001.wal "
      "offset=186\n");
  r = Tool({"dump", "--wal_dir=/wal", "--from_lsn=3"});
  EXPECT_THAT(r.out, HasSubstr("payload=\"" + std::string(100, 'b') + "\"\n"));
  r = Tool({"stats", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(r.out,
            "WAL /wal\n"
            "segments: 1, 251 bytes\n"
            "records: 3, LSNs 1..3\n"
            "  segment                  LSNs                     records       "
            "bytes  state       encryption\n"
            "  00000000000000000001.wal 1..3                           3       "
            "  251  active      none\n"
            "records by type:\n"
            "  type              records     stored bytes\n"
            "  1                       2               18\n"
            "  2                       1                1\n"
            "records by tenant (2 tenants):\n"
            "  tenant                    records     stored bytes\n"
            "  7                               2               10\n"
            "  8                               1                9\n"
            "payload bytes: 19 stored, 201 logical, largest payload 100\n"
            "compression: 2 of 3 records snappy-compressed; ratio 10.58 "
            "(logical/stored)\n"
            "encryption: 0 of 3 records encrypted; key ids in use: none\n");
  r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
}

class WalToolKeyTest : public WalToolTest {
 protected:
  testutil::TempDir tmp_;
  const WalEncryptionKey key_ = FixedKey('k');
  const std::string key_file_ = WriteKeyFile(tmp_, "key", std::string(32, 'k'));
  const std::string other_key_file_ =
      WriteKeyFile(tmp_, "other", std::string(32, 'o'));
  std::string KeyIdText() const {
    return absl::StrFormat("0x%016x", key_.key_id());
  }
};

TEST_F(WalToolKeyTest, EncryptedLogGolden) {
  MakeCompressedWal(env(), KeyRing(key_));
  // Stored = Snappy body + 16-byte AEAD tag.
  ToolResult r = Tool({"dump", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  const std::string needs =
      "payload=<encrypted; needs --key_file (key id " + KeyIdText() + ")>";
  EXPECT_EQ(r.out,
            "lsn=1 type=1 tenant=7 vshard=0 database=0 size=? stored=25 "
            "flags=snappy,encrypted durable_lsn=0 "
            "segment=00000000000000000001.wal offset=64 " +
                needs +
                "\n"
                "lsn=2 type=2 tenant=7 vshard=1 database=0 size=? stored=17 "
                "flags=encrypted durable_lsn=0 "
                "segment=00000000000000000001.wal offset=145 " +
                needs +
                "\n"
                "lsn=3 type=1 tenant=8 vshard=2 database=0 size=? stored=25 "
                "flags=snappy,encrypted durable_lsn=0 "
                "segment=00000000000000000001.wal offset=218 " +
                needs + "\n");
  r = Tool({"dump", "--wal_dir=/wal", "--key_file=" + key_file_,
            "--payload=hex", "--from_lsn=2", "--limit=1"});
  EXPECT_EQ(r.out,
            "lsn=2 type=2 tenant=7 vshard=1 database=0 size=1 stored=17 "
            "flags=encrypted durable_lsn=0 segment=00000000000000000001.wal "
            "offset=145 payload=78\n");
}

TEST_F(WalToolKeyTest, EncryptedLogWithoutKeyListsRecordsAndSaysWhatItNeeds) {
  MakeCompressedWal(env(), KeyRing(key_));
  ToolResult r = Tool({"dump", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(lines.size(), 4u) << r;
  EXPECT_THAT(lines[0], HasSubstr(" size=? "));
  EXPECT_THAT(lines[0], HasSubstr(" flags=snappy,encrypted "));
  EXPECT_THAT(
      lines[1],
      HasSubstr(" size=? stored=17 flags=encrypted "));  // 1 + 16-byte tag
  EXPECT_THAT(lines[1],
              HasSubstr(" payload=<encrypted; needs --key_file (key id " +
                        KeyIdText() + ")>"));
  r = Tool({"dump", "--wal_dir=/wal", "--format=json"});
  for (absl::string_view line :
       absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    std::map<std::string, std::string> m;
    EXPECT_TRUE(JsonChecker(line).ParseObjectLine(&m)) << line;
    EXPECT_EQ(m["payload"], "null");
    EXPECT_EQ(m["size"], "null");
    EXPECT_THAT(m["payload_note"], HasSubstr("needs --key_file"));
  }
  r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr("active      aes-256-gcm key " + KeyIdText()));
  r = Tool({"stats", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr("payload bytes: "));
  EXPECT_THAT(r.out,
              HasSubstr(" 0 logical (3 records could not be decoded)\n"));
  EXPECT_THAT(
      r.out,
      HasSubstr("compression: 2 of 3 records snappy-compressed; ratio n/a\n"));
  EXPECT_THAT(
      r.out,
      HasSubstr("encryption: 3 of 3 records encrypted; key ids in use: " +
                KeyIdText() + " (1 segment)\n"));
}

TEST_F(WalToolKeyTest, EncryptedLogWithKeyFileDecodesPayloads) {
  MakeCompressedWal(env(), KeyRing(key_));
  ToolResult r = Tool({"dump", "--wal_dir=/wal", "--key_file=" + key_file_});
  EXPECT_EQ(r.code, kExitOk) << r;
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(lines.size(), 4u) << r;
  EXPECT_THAT(lines[0], HasSubstr(" size=100 "));
  EXPECT_THAT(lines[0], HasSubstr("payload=\"" + std::string(100, 'a') + "\""));
  EXPECT_THAT(lines[1], HasSubstr(" size=1 stored=17 flags=encrypted "));
  EXPECT_THAT(lines[1], HasSubstr("payload=\"x\""));
  r = Tool({"stats", "--wal_dir=/wal", "--key_file", key_file_});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr(", 201 logical, largest payload 100\n"));
}

TEST_F(WalToolKeyTest, VerifyWithTheKeyChecksEveryTag) {
  MakeCompressedWal(env(), KeyRing(key_));
  const ToolResult r =
      Tool({"verify", "--wal_dir=/wal", "--key_file=" + key_file_});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr("records: 3, LSNs 1..3\n"));
}

TEST_F(WalToolKeyTest, TamperedEncryptedRecordIsCorruptionWithTheKey) {
  MakeCompressedWal(env(), KeyRing(key_));
  // Rewrite record 2's stored bytes with valid CRCs: only the AEAD tag can
  // tell (FORMAT.md: the tag binds payload and headers).
  const std::string path = SegmentPath(1);
  std::string bytes = ReadAll(env(), path);
  WalRecord rec;
  wal_format::RecordHeader h;
  wal_format::SegmentHeader sh;
  ASSERT_OK(wal_format::DecodeSegmentHeader(bytes, &sh));
  const uint32_t seed = wal_format::SegmentSeed(sh);
  uint64_t off = kHeader;
  uint32_t ps, pc;
  ASSERT_TRUE(
      wal_format::DecodeRecordHeader(seed, bytes.data() + off, &h, &ps, &pc));
  off += wal_format::kRecordHeaderSize + h.payload_length;  // record 2
  ASSERT_TRUE(
      wal_format::DecodeRecordHeader(seed, bytes.data() + off, &h, &ps, &pc));
  std::string stored =
      bytes.substr(off + wal_format::kRecordHeaderSize, h.payload_length);
  stored[0] ^= 1;
  std::string reframed;
  wal_format::AppendRecord(seed, h, stored, &reframed);
  bytes.replace(off, reframed.size(), reframed);
  WriteAll(env(), path, bytes);

  ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << "without the key only CRCs are checked\n" << r;
  EXPECT_EQ(Tool({"dump", "--wal_dir=/wal", "--payload=none"}).code, kExitOk);
  r = Tool({"verify", "--wal_dir=/wal", "--key_file=" + key_file_});
  EXPECT_EQ(r.code, kExitDamage) << r;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(
                         "corruption at /wal/00000000000000000001.wal offset ",
                         off, " (LSN 2): record payload does not decode")));
}

TEST_F(WalToolKeyTest, WrongKeyIsAUsageError) {
  MakeCompressedWal(env(), KeyRing(key_));
  ExpectOneLineError(
      Tool({"dump", "--wal_dir=/wal", "--key_file=" + other_key_file_}),
      kExitUsage, "wrong key: key file " + other_key_file_ + " has key id ");
  ExpectOneLineError(
      Tool({"stats", "--wal_dir=/wal", "--key_file=" + other_key_file_}),
      kExitUsage, "key ids in use: " + KeyIdText());
}

TEST_F(WalToolKeyTest, KeyFileForAPlainLogIsAWrongKey) {
  MakeWal(env(), 3);
  ExpectOneLineError(
      Tool({"dump", "--wal_dir=/wal", "--key_file=" + key_file_}), kExitUsage,
      "the WAL is not encrypted");
}

TEST_F(WalToolKeyTest, UnusableKeyFilesAreUsageErrors) {
  MakeCompressedWal(env(), KeyRing(key_));
  ExpectOneLineError(
      Tool({"dump", "--wal_dir=/wal", "--key_file=" + tmp_.Join("missing")}),
      kExitUsage, "key file " + tmp_.Join("missing"));
  const std::string short_key = WriteKeyFile(tmp_, "short", "0123456789");
  ExpectOneLineError(
      Tool({"dump", "--wal_dir=/wal", "--key_file=" + short_key}), kExitUsage,
      "key file " + short_key);
  const std::string open_key =
      WriteKeyFile(tmp_, "open", std::string(32, 'k'), 0644);
  ExpectOneLineError(Tool({"dump", "--wal_dir=/wal", "--key_file=" + open_key}),
                     kExitUsage, "key file " + open_key);
}

TEST_F(WalToolKeyTest, SeveralKeyFilesCoverRotatedSegments) {
  const WalEncryptionKey other = FixedKey('o');
  {
    SegmentedWalOptions o = Options(env());
    o.encryption_ring = KeyRing(key_);
    auto wal = SegmentedWal::Open(o);
    ASSERT_TRUE(wal.ok()) << wal.status();
    ASSERT_OK((*wal)->Append(1, 1, 0, 0, "old key").status());
    ASSERT_OK((*wal)->RotateEncryptionRing(KeyRing(other, key_)));
    ASSERT_OK((*wal)->Append(1, 1, 0, 0, "new key").status());
    ASSERT_OK((*wal)->Sync());
  }
  ToolResult r = Tool({"dump", "--wal_dir=/wal",
                       "--key_file=" + key_file_ + "," + other_key_file_});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr("payload=\"old key\""));
  EXPECT_THAT(r.out, HasSubstr("payload=\"new key\""));
  // One key: the other segment's records say what they need.
  r = Tool({"dump", "--wal_dir=/wal", "--key_file=" + other_key_file_});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr("payload=<encrypted; needs --key_file (key id " +
                               KeyIdText() + ")>"));
  EXPECT_THAT(r.out, HasSubstr("payload=\"new key\""));
  r = Tool({"stats", "--wal_dir=/wal"});
  EXPECT_THAT(r.out, HasSubstr(" (1 segment), "));
}

// A segment rewritten as plaintext with valid CRCs after an encrypted one:
// Open refuses it, so verify calls it corruption (no key needed).
TEST_F(WalToolKeyTest, PlaintextSegmentAfterAnEncryptedOneIsCorruption) {
  {
    SegmentedWalOptions o = Options(env());
    o.encryption_ring = KeyRing(key_);
    auto wal = SegmentedWal::Open(o);
    ASSERT_TRUE(wal.ok()) << wal.status();
    ASSERT_OK((*wal)->Append(1, 1, 0, 0, "first").status());
    ASSERT_OK((*wal)->RotateEncryptionRing(KeyRing(key_)));
    ASSERT_OK((*wal)->Append(1, 1, 0, 0, "second").status());
    ASSERT_OK((*wal)->Sync());
  }
  const std::string path = SegmentPath(2);
  const std::string bytes = ReadAll(env(), path);
  wal_format::SegmentHeader sh;
  ASSERT_OK(wal_format::DecodeSegmentHeader(bytes, &sh));
  wal_format::RecordHeader h;
  uint32_t ps, pc;
  ASSERT_TRUE(wal_format::DecodeRecordHeader(wal_format::SegmentSeed(sh),
                                             bytes.data() + kHeader, &h, &ps,
                                             &pc));
  sh.flags &= ~wal_format::kSegmentEncrypted;
  sh.cipher = 0;
  sh.key_id = 0;
  std::string forged = wal_format::EncodeSegmentHeader(sh);
  h.flags = 0;
  h.payload_length = 6;
  wal_format::AppendRecord(wal_format::SegmentSeed(sh), h, "forged", &forged);
  WriteAll(env(), path, forged);

  const ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitDamage) << r;
  EXPECT_THAT(r.out,
              HasSubstr("corruption at " + path +
                        " offset 0 (LSN 2): a plaintext segment after the "
                        "encrypted segment " +
                        SegmentPath(1)));
}

// ---------------------------------------------------------------------------
// dump: selection, payload encodings, JSON.

TEST_F(WalToolTest, DumpFromLsnSeeksAndLimitStops) {
  MakeWal(env(), 40, 600);  // several sealed segments
  ToolResult r = Tool({"dump", "--wal_dir=/wal", "--from_lsn=17", "--limit=3",
                       "--payload=none"});
  EXPECT_EQ(r.code, kExitOk) << r;
  const std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << r;
  EXPECT_THAT(lines[0], StartsWith("lsn=17 "));
  EXPECT_THAT(lines[2], StartsWith("lsn=19 "));
  r = Tool({"dump", "--wal_dir=/wal", "--from_lsn=1000"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(r.out, "");
  // Flags do not leak into the next run.
  r = Tool({"dump", "--wal_dir=/wal", "--payload=none"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 40) << r;
}

TEST_F(WalToolTest, DumpFromLsnEntersLargeSealedSegmentsThroughTheirIndex) {
  {
    auto wal = SegmentedWal::Open(Options(env(), 256 << 10));
    ASSERT_TRUE(wal.ok()) << wal.status();
    for (int i = 0; i < 300; ++i) {  // 4 KiB records: index entries every ~4
      ASSERT_OK(
          (*wal)->Append(1, 1, 0, 0, std::string(4000, 'a' + i % 26)).status());
    }
    ASSERT_OK((*wal)->Sync());
  }
  const ToolResult all = Tool({"dump", "--wal_dir=/wal", "--payload=none"});
  ASSERT_EQ(all.code, kExitOk) << all;
  const std::vector<std::string> lines =
      absl::StrSplit(all.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 300u);
  for (uint64_t from : {1, 2, 5, 63, 64, 65, 150, 299, 300}) {
    const ToolResult r = Tool({"dump", "--wal_dir=/wal", "--payload=none",
                               absl::StrCat("--from_lsn=", from)});
    ASSERT_EQ(r.code, kExitOk) << r;
    std::string expected;
    for (size_t i = from - 1; i < lines.size(); ++i)
      expected += lines[i] + "\n";
    EXPECT_EQ(r.out, expected) << "from " << from;
  }
}

TEST_F(WalToolTest, DumpJsonLinesParseForEveryByteValue) {
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  const std::vector<std::string> payloads = {all_bytes, "",
                                             "\"quoted\" \\back\\slash\n\ttab",
                                             "\x7f\x80\xff", "{}[],:"};
  {
    auto wal = SegmentedWal::Open(Options(env()));
    ASSERT_TRUE(wal.ok()) << wal.status();
    for (const std::string& p : payloads) {
      ASSERT_OK((*wal)
                    ->Append(9, ~uint64_t{0}, ~uint32_t{0}, ~uint64_t{0}, p)
                    .status());
    }
  }
  for (const char* encoding : {"escaped", "hex", "none"}) {
    const ToolResult r = Tool({"dump", "--wal_dir=/wal", "--format=json",
                               std::string("--payload=") + encoding});
    ASSERT_EQ(r.code, kExitOk) << r;
    const std::vector<std::string> lines =
        absl::StrSplit(r.out, '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), payloads.size());
    for (size_t i = 0; i < lines.size(); ++i) {
      std::map<std::string, std::string> m;
      ASSERT_TRUE(JsonChecker(lines[i]).ParseObjectLine(&m)) << lines[i];
      EXPECT_EQ(m["lsn"], std::to_string(i + 1));
      EXPECT_EQ(m["tenant"], "18446744073709551615");
      EXPECT_EQ(m["vshard"], "4294967295");
      EXPECT_EQ(m["size"], std::to_string(payloads[i].size()));
      if (std::string(encoding) == "escaped") {
        std::string unescaped;
        ASSERT_TRUE(absl::CUnescape(m["payload"], &unescaped)) << m["payload"];
        EXPECT_EQ(unescaped, payloads[i]);
      } else if (std::string(encoding) == "hex") {
        EXPECT_EQ(absl::HexStringToBytes(m["payload"]), payloads[i]);
      } else {
        EXPECT_EQ(m.count("payload"), 0u);
      }
    }
  }
  // Text lines: one per record, whatever the payload holds.
  const ToolResult r = Tool({"dump", "--wal_dir=/wal"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 5) << r;
}

// ---------------------------------------------------------------------------
// verify and dump on damaged logs.

TEST_F(WalToolTest, VerifyReportsATornTailWithFileAndOffset) {
  MakeWal(env(), 6, 300);
  const std::string path = SegmentPath(5);
  const std::string bytes = ReadAll(env(), path);
  WriteAll(env(), path, bytes.substr(0, bytes.size() - 3));  // LSN 6 torn
  ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitDamage) << r;
  EXPECT_THAT(r.out, HasSubstr("  00000000000000000005.wal 5..5                "
                               "           1         187  torn tail   none\n"));
  EXPECT_THAT(
      r.out,
      HasSubstr(
          "problems: 1\n"
          "  torn tail at /wal/00000000000000000005.wal offset 127 (LSN 6): "
          "truncated record: needs 7 payload bytes, file has 4\n"
          "first problem: /wal/00000000000000000005.wal offset 127\n"
          "result: DAMAGED (torn tail"));
  r = Tool({"dump", "--wal_dir=/wal", "--payload=none"});
  EXPECT_EQ(r.code, kExitDamage) << r;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 5) << r;
  ExpectOneLineErrorKeepingOutput(r);
}

TEST_F(WalToolTest, VerifyReportsCorruptionInASealedSegmentAndReadsOn) {
  MakeWal(env(), 12, 300);  // segments at 1, 5, 9
  const std::string path = SegmentPath(1);
  std::string bytes = ReadAll(env(), path);
  bytes[OffsetOf(1, 2) + wal_format::kRecordHeaderSize + 1] ^=
      0x20;  // LSN 2's payload
  WriteAll(env(), path, bytes);
  const ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitDamage) << r;
  EXPECT_THAT(r.out, HasSubstr("records: 9, LSNs 1..12\n"));
  EXPECT_THAT(r.out, HasSubstr("  00000000000000000001.wal 1..1                "
                               "           1         420  corrupt     none\n"
                               "  00000000000000000005.wal 5..8                "
                               "           4         420  sealed      none\n"));
  EXPECT_THAT(
      r.out,
      HasSubstr(
          "corruption at /wal/00000000000000000001.wal offset 127 (LSN 2): "
          "record payload checksum mismatch (in a non-last segment"));
  EXPECT_THAT(r.out, HasSubstr("result: DAMAGED (durable data is damaged"));
  // The WAL agrees: Open (which reads only footers of sealed segments in the
  // default mode) succeeds, replay fails there.
  auto wal = SegmentedWal::Open(Options(env(), 300));
  ASSERT_TRUE(wal.ok()) << wal.status();
  EXPECT_THAT((*wal)->Replay(), testutil::StatusIs(absl::StatusCode::kDataLoss,
                                                   HasSubstr("offset 127")));
}

TEST_F(WalToolTest, VerifyReportsAMissingMiddleSegment) {
  MakeWal(env(), 12, 300);
  ASSERT_OK(env()->DeleteFile(SegmentPath(5)));
  const ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitDamage) << r;
  EXPECT_THAT(
      r.out,
      HasSubstr(
          "broken segment chain at /wal/00000000000000000009.wal offset 0 (LSN "
          "5): "
          "missing records: LSNs 5..8 are absent between "
          "/wal/00000000000000000001.wal and /wal/00000000000000000009.wal\n"));
}

TEST_F(WalToolTest, VerifyTellsProvenCorruptionInTheLastSegmentFromATornTail) {
  {
    auto wal = SegmentedWal::Open(Options(env()));
    ASSERT_TRUE(wal.ok()) << wal.status();
    AppendRecords(wal->get(), 1, 4);  // durable 4
    AppendRecords(wal->get(), 5, 8);  // framed with durable LSN 4
  }
  const std::string path = SegmentPath(1);
  std::string bytes = ReadAll(env(), path);
  bytes[OffsetOf(1, 3) + wal_format::kRecordHeaderSize] ^= 1;  // LSN 3
  WriteAll(env(), path, bytes);
  const ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitDamage) << r;
  EXPECT_THAT(
      r.out,
      HasSubstr(
          "corruption at /wal/00000000000000000001.wal offset 190 (LSN 3): "
          "record payload checksum mismatch (a later record proves these "
          "bytes were durable)"));
}

TEST_F(WalToolTest, ZeroFilledTailIsACleanEndWithANote) {
  MakeWal(env(), 3);
  const std::string path = SegmentPath(1);
  WriteAll(env(), path, ReadAll(env(), path) + std::string(4096, '\0'));
  const ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(
      r.out,
      HasSubstr("note: 00000000000000000001.wal: zero bytes after offset 253"));
}

// A log written with use_direct_io: its padding frames are no records, are
// counted in a note, and verify agrees with Open about malformed ones.
void MakePaddedWal(Env* env) {
  SegmentedWalOptions o = Options(env);
  o.use_direct_io = true;
  auto wal = SegmentedWal::Open(o);
  ASSERT_TRUE(wal.ok()) << wal.status();
  AppendRecords(wal->get(), 1, 3);  // a padding frame after LSN 3
  AppendRecords(wal->get(), 4, 5);  // and after LSN 5
}

TEST_F(WalToolTest, PaddedLogVerifiesCleanWithANote) {
  MakePaddedWal(env());
  ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  // After the header, after LSN 3 and after LSN 5: three blocks of 4 KiB,
  // all padding but the header and the records (OffsetOf(1, 6) bytes).
  EXPECT_THAT(r.out,
              HasSubstr("note: 00000000000000000001.wal: 3 padding frames, " +
                        std::to_string(3 * 4096 - OffsetOf(1, 6)) +
                        " bytes (written with use_direct_io: block "
                        "alignment)\n"));
  r = Tool({"dump", "--wal_dir=/wal", "--payload=none"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 5) << r;
}

TEST_F(WalToolTest, MalformedPaddingAtTheTailIsCorruptionAsForOpen) {
  MakePaddedWal(env());
  const std::string path = SegmentPath(1);
  std::string bytes = ReadAll(env(), path);
  ASSERT_EQ(bytes.size(), 3 * 4096u);
  // Replace the last padding frame (from the end of LSN 5 to 12288) by one
  // with the same header but a non-zero payload, checksummed as the writer
  // would: its CRCs match, so no torn write made it.
  wal_format::SegmentHeader h;
  ASSERT_OK(wal_format::DecodeSegmentHeader(bytes, &h));
  const uint64_t at = 2 * 4096 + FrameSize(4) + FrameSize(5);
  wal_format::RecordHeader pad;
  pad.flags = wal_format::kFlagPadding;
  pad.lsn = 5;
  pad.durable_lsn = 3;
  pad.payload_length = static_cast<uint32_t>(bytes.size() - at -
                                             wal_format::kRecordHeaderSize);
  std::string payload(pad.payload_length, '\0');
  payload[10] = 'x';
  bytes.resize(at);
  wal_format::AppendRecord(wal_format::SegmentSeed(h), pad, payload, &bytes);
  WriteAll(env(), path, bytes);
  const ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitDamage) << r;
  const std::string where =
      absl::StrCat("/wal/00000000000000000001.wal offset ", at, " (LSN 6): ");
  EXPECT_THAT(r.out, HasSubstr("corruption at " + where +
                               "padding frame payload is not zeros\n"));
  auto wal = SegmentedWal::Open(Options(env()));
  EXPECT_THAT(wal, testutil::StatusIs(absl::StatusCode::kDataLoss,
                                      HasSubstr("corruption at " + where)));
}

// ---------------------------------------------------------------------------
// repair: every damage kind, then Open succeeds and keeps what was durable.

class WalToolRepairTest : public WalToolTest {
 protected:
  ToolResult Repair(bool dry_run = false) {
    std::vector<std::string> args = {"repair", "--wal_dir=/wal"};
    if (dry_run) args.push_back("--dry_run");
    return Tool(args);
  }
  // After a repair: verify is clean, a second repair has nothing to do, and
  // Open (default mode) replays `expected`, then appends after it.
  void ExpectRepaired(const std::vector<WalRecord>& expected,
                      uint64_t segment_target_size = 300) {
    const ToolResult v = Tool({"verify", "--wal_dir=/wal"});
    EXPECT_EQ(v.code, kExitOk) << v;
    const ToolResult again = Repair();
    EXPECT_EQ(again.code, kExitOk) << again;
    EXPECT_THAT(again.out, HasSubstr("nothing to do"));
    auto wal = SegmentedWal::Open(Options(env(), segment_target_size));
    ASSERT_TRUE(wal.ok()) << wal.status();
    EXPECT_TRUE((*wal)->recovery_report().drops.empty());
    auto records = (*wal)->Replay();
    ASSERT_TRUE(records.ok()) << records.status();
    EXPECT_EQ(*records, expected);
    const uint64_t next = expected.empty() ? 1 : expected.back().lsn + 1;
    auto lsn = (*wal)->Append(1, 1, 1, 1, "after repair");
    ASSERT_TRUE(lsn.ok()) << lsn.status();
    EXPECT_EQ(*lsn, next);
  }
};

TEST_F(WalToolRepairTest, TornTailIsCutAndSavedAndNothingDurableIsLost) {
  {
    auto wal = SegmentedWal::Open(Options(env()));
    ASSERT_TRUE(wal.ok()) << wal.status();
    AppendRecords(wal->get(), 1, 10);                   // durable
    AppendRecords(wal->get(), 11, 12, /*sync=*/false);  // written, never synced
  }
  const std::string path = SegmentPath(1);
  const std::string bytes = ReadAll(env(), path);
  const uint64_t cut = OffsetOf(1, 12);
  WriteAll(env(), path,
           bytes.substr(0, cut + 30));  // LSN 12 torn in its header
  const std::string before = ReadAll(env(), path);

  const ToolResult dry = Repair(/*dry_run=*/true);
  EXPECT_EQ(dry.code, kExitDamage) << dry;
  EXPECT_EQ(dry.out,
            absl::StrCat(
                "repair /wal (dry run: nothing is changed)\n"
                "would cut 00000000000000000001.wal at offset ",
                cut,
                " (30 bytes saved to "
                "quarantine/00000000000000000001.wal.cut-at-",
                cut, "): torn tail at offset ", cut,
                " (LSN 12): truncated record header (30 of 56 bytes)\n"
                "the log would hold LSNs 1..11; Open continues at LSN 12\n"));
  EXPECT_EQ(ReadAll(env(), path), before);
  EXPECT_THAT(Children(env(), kDir),
              ElementsAre("00000000000000000001.wal", "LOCK"));

  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(
                         "cut 00000000000000000001.wal at offset ", cut)));
  EXPECT_THAT(r.out, HasSubstr("after repair: clean\n"));
  EXPECT_EQ(ReadAll(env(), std::string(kDir) +
                               "/quarantine/00000000000000000001.wal.cut-at-" +
                               std::to_string(cut)),
            before.substr(cut));
  ExpectRepaired(ExpectedRange(1, 11), 1 << 20);
}

TEST_F(WalToolRepairTest, GarbageTailIsCut) {
  MakeWal(env(), 6, 300);
  const std::string path = SegmentPath(5);
  testutil::Random rnd(testutil::TestSeed(7));
  WriteAll(env(), path, ReadAll(env(), path) + rnd.RandomBytes(333));
  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(
      r.out,
      HasSubstr("cut 00000000000000000005.wal at offset 190 (333 bytes"));
  ExpectRepaired(ExpectedRange(1, 6));
}

TEST_F(WalToolRepairTest,
       CorruptSealedSegmentIsCutAndLaterSegmentsQuarantined) {
  MakeWal(env(), 11, 300);  // segments at 1, 5 (sealed) and 9
  const std::string seg5 = ReadAll(env(), SegmentPath(5));
  const std::string seg9 = ReadAll(env(), SegmentPath(9));
  const std::string path = SegmentPath(1);
  std::string bytes = ReadAll(env(), path);
  bytes[OffsetOf(1, 3) + wal_format::kRecordHeaderSize + 2] ^= 0x01;  // LSN 3
  WriteAll(env(), path, bytes);

  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(r.out,
            "repair /wal\n"
            "quarantine 00000000000000000009.wal -> "
            "quarantine/00000000000000000009.wal (255 bytes): "
            "follows 00000000000000000005.wal, which is quarantined\n"
            "quarantine 00000000000000000005.wal -> "
            "quarantine/00000000000000000005.wal (420 bytes): "
            "the log now ends at LSN 2 in 00000000000000000001.wal (cut at its "
            "first damage)\n"
            "cut 00000000000000000001.wal at offset 190 (230 bytes saved to "
            "quarantine/00000000000000000001.wal.cut-at-190): corruption at "
            "offset 190 (LSN 3): "
            "record payload checksum mismatch (in a non-last segment: it was "
            "sealed and synced)\n"
            "warning: about 9 records beyond the damage leave the log (kept in "
            "quarantine/)\n"
            "the log holds LSNs 1..2; Open continues at LSN 3\n"
            "after repair: clean\n");
  // Nothing is deleted: quarantine holds the moved segments byte for byte and
  // the bytes cut.
  EXPECT_EQ(ReadAll(env(), "/wal/quarantine/00000000000000000005.wal"), seg5);
  EXPECT_EQ(ReadAll(env(), "/wal/quarantine/00000000000000000009.wal"), seg9);
  EXPECT_EQ(
      ReadAll(env(), "/wal/quarantine/00000000000000000001.wal.cut-at-190"),
      bytes.substr(190));
  ExpectRepaired(ExpectedRange(1, 2));
}

TEST_F(WalToolRepairTest,
       DamagedFooterOfASealedSegmentIsCutWithoutLosingRecords) {
  MakeWal(env(), 12, 300);
  const std::string path = SegmentPath(5);
  std::string bytes = ReadAll(env(), path);
  bytes[bytes.size() - 40] ^= 0x10;  // inside the footer's index/trailer area
  WriteAll(env(), path, bytes);
  EXPECT_FALSE(SegmentedWal::Open(Options(env(), 300)).ok());
  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(
      r.out,
      HasSubstr("cut 00000000000000000005.wal at offset 316 (104 bytes"));
  EXPECT_THAT(r.out, Not(HasSubstr("quarantine 0")));
  ExpectRepaired(ExpectedRange(1, 12));
}

TEST_F(WalToolRepairTest, TornHeaderOfTheLastSegmentIsQuarantined) {
  MakeWal(env(), 8, 300);  // segments at 1 and 5 (5 sealed at 8), and 9 empty
  const std::string path = SegmentPath(9);
  WriteAll(env(), path, ReadAll(env(), path).substr(0, 30));
  const ToolResult v = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(v.code, kExitDamage) << v;
  EXPECT_THAT(
      v.out,
      HasSubstr(
          "torn tail at /wal/00000000000000000009.wal offset 0 (LSN 9): "
          "torn segment creation: segment header truncated: 30 of 64 bytes\n"));
  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(
      r.out,
      HasSubstr("quarantine 00000000000000000009.wal -> "
                "quarantine/00000000000000000009.wal (30 bytes): unreadable: "
                "torn segment creation"));
  EXPECT_THAT(r.out, Not(HasSubstr("warning")));
  ExpectRepaired(ExpectedRange(1, 8));
}

TEST_F(WalToolRepairTest, TornHeaderOfTheOnlySegmentAboveLsnOneIsLeftForOpen) {
  ASSERT_OK(env()->CreateDirIfMissing(kDir));
  WriteAll(env(), SegmentPath(42), "segwal\x1a\n short");
  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(
      r.out,
      HasSubstr("leave 00000000000000000042.wal: torn segment creation"));
  EXPECT_THAT(r.out,
              HasSubstr("Open in kTolerateCorruptedTail handles what is left"));
  auto wal = SegmentedWal::Open(Options(env()));
  ASSERT_TRUE(wal.ok()) << wal.status();
  EXPECT_EQ((*wal)->next_lsn(), 42u);
}

TEST_F(WalToolRepairTest, CorruptHeaderOfALastSegmentWithRecordsIsQuarantined) {
  MakeWal(env(), 6, 300);
  const std::string path = SegmentPath(5);
  std::string bytes = ReadAll(env(), path);
  bytes[3] = 'X';  // magic
  WriteAll(env(), path, bytes);
  EXPECT_FALSE(SegmentedWal::Open(Options(env(), 300)).ok());
  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(
      r.out,
      HasSubstr("quarantine 00000000000000000005.wal -> "
                "quarantine/00000000000000000005.wal (190 bytes): unreadable: "
                "bad segment magic"));
  EXPECT_EQ(ReadAll(env(), "/wal/quarantine/00000000000000000005.wal"), bytes);
  ExpectRepaired(ExpectedRange(1, 4));
}

TEST_F(WalToolRepairTest, UnreadableFirstSegmentQuarantinesTheWholeLog) {
  MakeWal(env(), 6, 300);
  std::string bytes = ReadAll(env(), SegmentPath(1));
  bytes[0] ^= 1;  // magic
  WriteAll(env(), SegmentPath(1), bytes);
  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr("note: no segment is left: the next Open starts "
                               "a new, empty log\n"));
  EXPECT_THAT(r.out, HasSubstr("after repair: no segment left"));
  EXPECT_THAT(
      Children(env(), "/wal/quarantine"),
      ElementsAre("00000000000000000001.wal", "00000000000000000005.wal"));
  // Until Open creates a segment, the directory is no WAL to the tool.
  ExpectOneLineError(Tool({"verify", "--wal_dir=/wal"}), kExitUsage,
                     "not a WAL");
  auto wal = SegmentedWal::Open(Options(env(), 300));
  ASSERT_TRUE(wal.ok()) << wal.status();
  EXPECT_THAT((*wal)->Replay(), testutil::IsOkAndHolds(::testing::IsEmpty()));
  EXPECT_THAT((*wal)->Append(1, 1, 1, 1, "x"), testutil::IsOkAndHolds(1u));
}

TEST_F(WalToolRepairTest, MissingMiddleSegmentQuarantinesWhatFollowsTheGap) {
  MakeWal(env(), 11, 300);
  ASSERT_OK(env()->DeleteFile(SegmentPath(5)));
  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(
      r.out,
      HasSubstr(
          "quarantine 00000000000000000009.wal -> "
          "quarantine/00000000000000000009.wal (255 bytes): missing records: "
          "LSNs 5..8"));
  ExpectRepaired(ExpectedRange(1, 4));
}

TEST_F(WalToolRepairTest, ProvenCorruptionInTheLastSegmentIsCut) {
  {
    auto wal = SegmentedWal::Open(Options(env()));
    ASSERT_TRUE(wal.ok()) << wal.status();
    AppendRecords(wal->get(), 1, 4);
    AppendRecords(wal->get(), 5, 8);
  }
  const std::string path = SegmentPath(1);
  std::string bytes = ReadAll(env(), path);
  bytes[OffsetOf(1, 3) + wal_format::kRecordHeaderSize] ^= 1;
  WriteAll(env(), path, bytes);
  EXPECT_FALSE(SegmentedWal::Open(Options(env())).ok());
  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(
      r.out,
      HasSubstr("warning: about 6 records beyond the damage leave the log"));
  ExpectRepaired(ExpectedRange(1, 2), 1 << 20);
}

TEST_F(WalToolRepairTest, CleanLogNeedsNothing) {
  MakeWal(env(), 6, 300);
  const ToolResult dry = Repair(/*dry_run=*/true);
  EXPECT_EQ(dry.code, kExitOk) << dry;
  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(r.out,
            "repair /wal\nnothing to do: the WAL is clean (LSNs 1..6)\n");
  EXPECT_THAT(Children(env(), kDir),
              ElementsAre("00000000000000000001.wal",
                          "00000000000000000005.wal", "LOCK"));
}

TEST_F(WalToolRepairTest, QuarantineNeverOverwrites) {
  MakeWal(env(), 6, 300);
  ASSERT_OK(env()->CreateDirIfMissing("/wal/quarantine"));
  WriteAll(env(), "/wal/quarantine/00000000000000000005.wal", "earlier");
  std::string bytes = ReadAll(env(), SegmentPath(5));
  bytes[0] = 'X';
  WriteAll(env(), SegmentPath(5), bytes);
  const ToolResult r = Repair();
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr("-> quarantine/00000000000000000005.wal.1 "));
  EXPECT_EQ(ReadAll(env(), "/wal/quarantine/00000000000000000005.wal"),
            "earlier");
  EXPECT_EQ(ReadAll(env(), "/wal/quarantine/00000000000000000005.wal.1"),
            bytes);
}

TEST_F(WalToolRepairTest, RefusesWhileTheWalIsOpen) {
  MakeWal(env(), 6, 300);
  std::string bytes = ReadAll(env(), SegmentPath(5));
  WriteAll(env(), SegmentPath(5), bytes + "garbage");
  auto wal = SegmentedWal::Open(Options(env(), 300));  // cuts the tail itself
  ASSERT_TRUE(wal.ok()) << wal.status();
  WriteAll(env(), SegmentPath(5), bytes + "garbage");
  for (bool dry_run : {false, true}) {
    const ToolResult r = Repair(dry_run);
    ExpectOneLineError(r, kExitFailed,
                       "refusing to repair /wal: the WAL is open");
  }
  EXPECT_EQ(ReadAll(env(), SegmentPath(5)), bytes + "garbage");
  EXPECT_FALSE(env()->FileExists("/wal/quarantine"));
}

// Power cuts: whatever a crash leaves, verify finds no corruption (a crash only
// loses bytes never acknowledged durable), and repair leaves a log that opens
// and holds every acknowledged record, byte for byte.
TEST(WalToolCrashTest,
     AfterAnyCrashOnlyTornTailsAndRepairKeepsWhatWasAcknowledged) {
  const uint64_t seed = testutil::TestSeed(20261123);
  const int cycles =
      static_cast<int>(testutil::EnvInt("SEGWAL_TOOL_CRASH_CYCLES", 300));
  for (int cycle = 0; cycle < cycles; ++cycle) {
    SCOPED_TRACE(absl::StrCat("seed ", seed, " cycle ", cycle));
    testutil::Random rnd(seed + cycle);
    auto base = NewMemEnv();
    FaultInjectionEnv fault(base.get());
    SegmentedWalOptions o;
    o.wal_dir = kDir;
    o.env = &fault;
    o.segment_target_size = 512 + rnd.Uniform(4096);
    o.write_buffer_size = 64 + rnd.Uniform(2048);
    o.background_preallocation = false;  // a fixed order of file operations
    o.background_sealing = false;
    std::vector<std::string> appended;
    uint64_t acked = 0;
    auto wal = SegmentedWal::Open(o);
    ASSERT_TRUE(wal.ok()) << wal.status();
    const uint64_t n = rnd.Uniform(120);
    for (uint64_t i = 0; i < n; ++i) {
      appended.push_back(rnd.RandomBytes(rnd.Skewed(9)));
      ASSERT_OK((*wal)->Append(1, i % 3, 0, 0, appended.back()).status());
      if (rnd.OneIn(10)) {
        ASSERT_OK((*wal)->Sync());
        acked = appended.size();
      } else if (rnd.OneIn(10)) {
        ASSERT_OK((*wal)->Flush());
      }
    }
    const CrashMode mode = kAllCrashModes[rnd.Uniform(std::size(kAllCrashModes))];
    ASSERT_OK(fault.SimulateCrash(mode, seed + cycle));
    wal->reset();

    const ToolResult v = RunTool(&fault, {"verify", "--wal_dir=/wal"});
    ASSERT_TRUE(v.code == kExitOk || v.code == kExitDamage) << v;
    EXPECT_THAT(v.out, Not(HasSubstr("corruption at"))) << v;
    EXPECT_THAT(v.out, Not(HasSubstr("broken segment chain"))) << v;
    const ToolResult r = RunTool(&fault, {"repair", "--wal_dir=/wal"});
    ASSERT_EQ(r.code, kExitOk) << r;
    EXPECT_THAT(r.out, Not(HasSubstr("warning"))) << r;

    auto reopened = SegmentedWal::Open(o);
    ASSERT_TRUE(reopened.ok()) << reopened.status() << "\n" << r;
    // Only zero fill (preallocated-looking space a torn sector left) remains
    // for Open to cut: no damage.
    for (const RecoveryDrop& d : (*reopened)->recovery_report().drops) {
      EXPECT_EQ(d.reason, "zero fill after the last record") << r;
    }
    auto records = (*reopened)->Replay();
    ASSERT_TRUE(records.ok()) << records.status();
    ASSERT_GE(records->size(), acked) << r;
    for (size_t i = 0; i < records->size(); ++i) {
      ASSERT_EQ((*records)[i].lsn, i + 1);
      ASSERT_EQ((*records)[i].payload, appended[i]) << "LSN " << i + 1;
    }
  }
}

// Bit flips: verify's verdict agrees with the WAL's own recovery for every
// flipped bit of a small multi-segment log — damage is always found (as
// kAbsoluteConsistency finds it), "torn tail only" exactly when the default
// mode opens and replays, and after repair the log opens and replays a prefix
// of the original records, never a wrong one.
TEST(WalToolBitFlipTest, VerdictMatchesRecoveryAndRepairKeepsAPrefix) {
  auto env = NewMemEnv();
  MakeWal(env.get(), 11, 300);  // segments at 1, 5 (sealed) and 9 (active)
  const std::vector<std::string> names = Children(env.get(), kDir);
  std::map<std::string, std::string> original;
  for (const std::string& name : names) {
    if (name != "LOCK")
      original[name] = ReadAll(env.get(), std::string(kDir) + "/" + name);
  }
  auto restore = [&] {
    for (const std::string& name : Children(env.get(), kDir)) {
      if (name != "LOCK" && name != "quarantine" && original.count(name) == 0) {
        ASSERT_OK(env->DeleteFile(std::string(kDir) + "/" + name));
      }
    }
    for (const auto& [name, bytes] : original) {
      WriteAll(env.get(), std::string(kDir) + "/" + name, bytes);
    }
  };
  const int stride =
      static_cast<int>(testutil::EnvInt("SEGWAL_TOOL_FLIP_STRIDE", 5));
  int flips = 0;
  for (const auto& [name, bytes] : original) {
    const std::string path = std::string(kDir) + "/" + name;
    for (size_t bit = 0; bit < bytes.size() * 8; bit += stride) {
      SCOPED_TRACE(absl::StrCat(name, " bit ", bit));
      restore();
      std::string damaged = bytes;
      damaged[bit / 8] ^= static_cast<char>(1 << (bit % 8));
      WriteAll(env.get(), path, damaged);
      ++flips;

      const ToolResult v = RunTool(env.get(), {"verify", "--wal_dir=/wal"});
      ASSERT_EQ(v.code, kExitDamage) << v;
      const bool torn_only =
          v.out.find("result: DAMAGED (torn tail") != std::string::npos;
      {
        SegmentedWalOptions o = Options(env.get(), 300);
        o.recovery_mode = RecoveryMode::kAbsoluteConsistency;
        EXPECT_FALSE(SegmentedWal::Open(o).ok());
      }
      bool default_ok = false;
      {
        auto wal = SegmentedWal::Open(Options(env.get(), 300));
        default_ok = wal.ok() && (*wal)->Replay().ok();
      }
      EXPECT_EQ(torn_only, default_ok) << v;

      restore();
      WriteAll(env.get(), path, damaged);
      const ToolResult r = RunTool(env.get(), {"repair", "--wal_dir=/wal"});
      ASSERT_EQ(r.code, kExitOk) << r;
      auto wal = SegmentedWal::Open(Options(env.get(), 300));
      ASSERT_TRUE(wal.ok()) << wal.status() << "\n" << r;
      auto records = (*wal)->Replay();
      ASSERT_TRUE(records.ok()) << records.status();
      ASSERT_LE(records->size(), 11u);
      for (size_t i = 0; i < records->size(); ++i) {
        ASSERT_EQ((*records)[i], Expected(i + 1));
      }
      wal->reset();
      // Leave no quarantine behind for the next flip.
      for (const std::string& q : Children(env.get(), "/wal/quarantine")) {
        ASSERT_OK(env->DeleteFile("/wal/quarantine/" + q));
      }
    }
  }
  EXPECT_GT(flips, 1000);
}

// ---------------------------------------------------------------------------
// Read-only commands.

TEST_F(WalToolTest, ReadOnlyCommandsNoteAWalThatIsOpen) {
  MakeWal(env(), 6, 300);
  auto wal = SegmentedWal::Open(Options(env(), 300));
  ASSERT_TRUE(wal.ok()) << wal.status();
  ToolResult r = Tool({"verify", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.out, HasSubstr("note: the WAL is open (its LOCK is held)"));
  r = Tool({"dump", "--wal_dir=/wal"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_THAT(r.err, StartsWith("wal_tool: note: the WAL is open"));
  r = Tool({"stats", "--wal_dir=/wal"});
  EXPECT_THAT(r.out, HasSubstr("note: the WAL is open"));
  // The probe let go of the lock: the WAL still works and can be reopened.
  ASSERT_OK((*wal)->Append(1, 1, 1, 1, "x").status());
  ASSERT_OK((*wal)->Sync());
  wal->reset();
  EXPECT_TRUE(SegmentedWal::Open(Options(env(), 300)).ok());
}

// Every file's name, size and bytes, below dir (POSIX).
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  Env* env = Env::Default();
  auto names = env->GetChildren(dir);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    const std::string path = dir + "/" + name;
    if (env->GetChildren(path).ok()) {
      for (auto& [k, v] : Snapshot(path)) out[name + "/" + k] = v;
    } else {
      out[name] = ReadAll(env, path);
    }
  }
  return out;
}

TEST(WalToolPosixTest, ReadOnlyCommandsNeverWriteNorCreateTheLock) {
  testutil::TempDir tmp;
  const std::string dir = tmp.Join("wal");
  {
    SegmentedWalOptions o;
    o.wal_dir = dir;
    o.segment_target_size = 300;
    o.background_preallocation = false;
    o.background_sealing = false;
    auto wal = SegmentedWal::Open(o);
    ASSERT_TRUE(wal.ok()) << wal.status();
    AppendRecords(wal->get(), 1, 10);
  }
  // A torn tail, so repair --dry_run has something to plan.
  const std::string last = dir + "/" + wal_format::SegmentFileName(9);
  std::string bytes = ReadAll(Env::Default(), last);
  WriteAll(Env::Default(), last, bytes.substr(0, bytes.size() - 2));
  ASSERT_OK(Env::Default()->DeleteFile(dir + "/LOCK"));
  const auto before = Snapshot(dir);
  for (std::vector<std::string> args :
       {std::vector<std::string>{"dump", "--format=json"},
        std::vector<std::string>{"verify"}, std::vector<std::string>{"stats"},
        std::vector<std::string>{"repair", "--dry_run"}}) {
    args.push_back("--wal_dir=" + dir);
    const ToolResult r = RunTool(nullptr, args);
    EXPECT_EQ(r.code, kExitDamage) << args[0] << "\n" << r;
    EXPECT_EQ(Snapshot(dir), before) << args[0];
  }
  EXPECT_FALSE(Env::Default()->FileExists(dir + "/LOCK"));
}

TEST(WalToolPosixTest, RepairTakesTheLockOfTheRealDirectory) {
  testutil::TempDir tmp;
  const std::string dir = tmp.Join("wal");
  SegmentedWalOptions o;
  o.wal_dir = dir;
  auto wal = SegmentedWal::Open(o);
  ASSERT_TRUE(wal.ok()) << wal.status();
  AppendRecords(wal->get(), 1, 3);
  ExpectOneLineError(RunTool(nullptr, {"repair", "--wal_dir=" + dir}),
                     kExitFailed,
                     "refusing to repair " + dir + ": the WAL is open (lock ");
  wal->reset();
  const ToolResult r = RunTool(nullptr, {"repair", "--wal_dir=" + dir});
  EXPECT_EQ(r.code, kExitOk) << r;
  // repair let go of the lock.
  EXPECT_TRUE(SegmentedWal::Open(o).ok());
}

// ---------------------------------------------------------------------------
// Usage errors and bad input: one line on stderr, a non-zero exit.

TEST_F(WalToolTest, HelpPrintsUsage) {
  for (const char* flag : {"--help", "-h", "help"}) {
    const ToolResult r = Tool({flag});
    EXPECT_EQ(r.code, kExitOk) << r;
    EXPECT_THAT(r.out, StartsWith("usage: wal_tool <command> --wal_dir=DIR"));
  }
}

TEST_F(WalToolTest, BadCommandLinesAreUsageErrors) {
  MakeWal(env(), 2);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "no command given"},
      {{"--wal_dir=/wal"}, "no command given"},
      {{"frobnicate", "--wal_dir=/wal"}, "unknown command 'frobnicate'"},
      {{"dump", "--wal_dir=/wal", "--bogus=1"}, "unknown flag --bogus"},
      {{"dump", "--wal_dir=/wal", "--flagfile=/etc/passwd"},
       "unknown flag --flagfile"},
      {{"dump", "--wal_dir=/wal", "--dry_run"},
       "flag --dry_run does not apply to dump"},
      {{"verify", "--wal_dir=/wal", "--limit=3"},
       "flag --limit does not apply to verify"},
      {{"repair", "--wal_dir=/wal", "--key_file=/k"},
       "flag --key_file does not apply to repair"},
      {{"verify"}, "--wal_dir is required"},
      {{"dump", "--wal_dir=/wal", "--format=xml"},
       "--format must be text or json"},
      {{"dump", "--wal_dir=/wal", "--payload=base64"},
       "--payload must be hex, escaped or none"},
      {{"dump", "--wal_dir=/wal", "--limit=ten"},
       "invalid value 'ten' for --limit"},
      {{"dump", "--wal_dir=/wal", "--from_lsn=-1"},
       "invalid value '-1' for --from_lsn"},
      {{"dump", "--wal_dir=/wal", "--limit"}, "flag --limit needs a value"},
      {{"dump", "/wal"}, "unexpected argument '/wal'"},
      {{"verify", "--wal_dir=/wal", "--max_record_size=0"},
       "--max_record_size must be > 0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    const ToolResult r = Tool(c.args);
    ExpectOneLineError(r, kExitUsage, c.message);
    EXPECT_THAT(r.err, HasSubstr("(wal_tool --help for usage)"));
  }
}

TEST_F(WalToolTest, FlagValuesMayFollowAsTheNextArgument) {
  MakeWal(env(), 2);
  const ToolResult r = Tool({"dump", "--wal_dir", "/wal", "--limit", "1"});
  EXPECT_EQ(r.code, kExitOk) << r;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r;
}

TEST_F(WalToolTest, MissingDirectoryOrNotAWalIsBadInputForEveryCommand) {
  ASSERT_OK(env()->CreateDirIfMissing("/empty"));
  WriteAll(env(), "/empty/notes.txt", "hello");
  for (const char* command : {"dump", "verify", "stats", "repair"}) {
    SCOPED_TRACE(command);
    ExpectOneLineError(Tool({command, "--wal_dir=/nowhere"}), kExitUsage,
                       "WAL directory /nowhere does not exist");
    ExpectOneLineError(Tool({command, "--wal_dir=/empty"}), kExitUsage,
                       "not a WAL: /empty holds no segment files");
  }
  // repair did not create a LOCK file in either.
  EXPECT_FALSE(env()->FileExists("/nowhere"));
  EXPECT_FALSE(env()->FileExists("/empty/LOCK"));
}

TEST(WalToolPosixTest, AFileIsNotAWalDirectory) {
  testutil::TempDir tmp;
  const std::string file = tmp.Join("file");
  WriteAll(Env::Default(), file, "x");
  const ToolResult r = RunTool(nullptr, {"verify", "--wal_dir=" + file});
  ExpectOneLineError(r, kExitUsage, "cannot list WAL directory " + file);
}

}  // namespace
}  // namespace wal_tool
}  // namespace segwal
