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
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crypto/key_ring.h"
#include "env/env.h"
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
  return os << "exit " << r.code << "\nstdout:\n" << r.out << "stderr:\n" << r.err;
}

// An error is exactly one line starting with "wal_tool: ".
void ExpectOneLineError(const ToolResult& r, int code, const std::string& needle) {
  EXPECT_EQ(r.code, code) << r;
  EXPECT_THAT(r.err, StartsWith("wal_tool: ")) << r;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r;
  EXPECT_THAT(r.err, HasSubstr(needle)) << r;
  EXPECT_EQ(r.out, "") << r;
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

// Opens the log in the default mode (kTolerateCorruptedTail) and replays it.
std::vector<WalRecord> OpenAndReplay(Env* env, uint64_t segment_target_size = 1 << 20) {
  auto wal = SegmentedWal::Open(Options(env, segment_target_size));
  EXPECT_TRUE(wal.ok()) << wal.status();
  if (!wal.ok()) return {};
  auto records = (*wal)->Replay();
  EXPECT_TRUE(records.ok()) << records.status();
  return records.ok() ? *records : std::vector<WalRecord>();
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
    if (ok && text != nullptr) *text = std::string(s_.substr(start, pos_ - start));
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
      if (c < 0x20) return false;  // control characters must be escaped
      if (c >= 0x80) return false;  // wal_tool emits ASCII only
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        continue;
      }
      if (pos_ >= s_.size()) return false;
      const char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return false;
          unsigned v = 0;
          for (int i = 0; i < 4; ++i) {
            const char h = s_[pos_++];
            if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
            v = v * 16 + static_cast<unsigned>(std::isdigit(h) ? h - '0'
                                                              : std::tolower(h) - 'a' + 10);
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
    if (pos_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      return false;
    }
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    }
    if (Eat('.')) {
      if (pos_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_]))) return false;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (!Eat('+')) Eat('-');
      if (pos_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_]))) return false;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
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
  for (const char* bad : {R"({"a":1,})", R"({"a":01})", "{\"a\":\"\x01\"}",
                          R"({"a":"\x41"})", R"({'a':1})", R"({"a":1}x)",
                          R"({"a":1,"a":2})", R"({"a":tru})"}) {
    std::map<std::string, std::string> m2;
    EXPECT_FALSE(JsonChecker(bad).ParseObjectLine(&m2)) << bad;
  }
}

TEST_F(WalToolTest, ShowOutputs) {
  MakeWal(env(), 6, 300);
  for (auto args : std::vector<std::vector<std::string>>{
           {"dump", "--wal_dir=/wal"},
           {"dump", "--wal_dir=/wal", "--format=json", "--payload=hex"},
           {"verify", "--wal_dir=/wal"},
           {"stats", "--wal_dir=/wal"},
           {"repair", "--wal_dir=/wal", "--dry_run"}}) {
    std::cout << RunTool(env(), args) << "\n-----\n";
  }
}

}  // namespace
}  // namespace wal_tool
}  // namespace segwal
