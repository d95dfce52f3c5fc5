// Writes the seed corpora of the fuzz targets from real segments:
//
//   bazel run //fuzz:make_seed_corpus -- $PWD/fuzz/corpus
//
// Small logs (plain, Snappy, encrypted with FuzzKeyRing(), empty, with a torn
// tail, with a sealed last segment) are written on a MemEnv with tiny
// segments, then cut into inputs for each target (fuzz/fuzz_targets.h). The
// workload is seeded, but every segment gets a fresh random salt, so running
// it again writes different bytes (and file names): regenerate only when the
// format changes, and commit the result (it is small).

#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "crypto/crc32c.h"
#include "env/mem_env.h"
#include "fuzz/fuzz_targets.h"
#include "wal/format.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace fuzz {
namespace {

struct Log {
  std::string name;
  std::vector<std::string> files;  // segment files in LSN order
};

uint64_t g_rng = 12345;
uint64_t Rand(uint64_t n) {
  g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
  return (g_rng >> 33) % n;
}

std::string ReadAll(Env* env, const std::string& path) {
  auto size = env->GetFileSize(path);
  auto f = env->NewRandomAccessFile(path);
  std::string buf(*size, '\0');
  absl::string_view got;
  if (!(*f)->Read(0, *size, &got, buf.data()).ok()) return "";
  return std::string(got);
}

// Writes a log with `records` records and returns its segment files.
Log MakeLog(const std::string& name, int records, Compression compression,
            bool encrypted, bool truncate, bool direct = false) {
  std::unique_ptr<Env> env = NewMemEnv();
  SegmentedWalOptions o;
  o.wal_dir = "/w";
  o.env = env.get();
  // Padded segments start with a 4 KiB block: a few records past it.
  o.segment_target_size = direct ? 4600 : 700;
  o.use_direct_io = direct;
  o.write_buffer_size = 128;
  o.compression = compression;
  if (encrypted) o.encryption_ring = FuzzKeyRing();
  {
    auto wal = SegmentedWal::Open(o);
    if (!wal.ok()) {
      fprintf(stderr, "%s: %s\n", name.c_str(), wal.status().ToString().c_str());
      exit(1);
    }
    for (int i = 0; i < records; ++i) {
      std::string payload;
      const uint64_t len = Rand(4) == 0 ? 300 : Rand(60);
      for (uint64_t j = 0; j < len; ++j) {
        payload += compression == Compression::kSnappy
                       ? "abcd"[Rand(2)]
                       : static_cast<char>(Rand(256));
      }
      auto lsn = (*wal)->Append(static_cast<uint32_t>(1 + Rand(3)), Rand(5),
                                static_cast<uint32_t>(Rand(4)), Rand(2), payload);
      if (!lsn.ok()) exit(1);
      if (Rand(3) == 0 && !(*wal)->Sync().ok()) exit(1);
    }
    if (!(*wal)->Sync().ok()) exit(1);
    if (truncate && !(*wal)->TruncateBefore(records / 2).ok()) exit(1);
  }
  Log log{name, {}};
  auto names = env->GetChildren("/w");
  for (const std::string& n : *names) {
    if (absl::EndsWith(n, ".wal")) log.files.push_back(ReadAll(env.get(), "/w/" + n));
  }
  return log;
}

void Write(const std::string& dir, const std::string& prefix,
           const std::string& bytes) {
  mkdir(dir.c_str(), 0755);
  const std::string path = absl::StrFormat("%s/%s-%08x", dir, prefix,
                                           crc32c::Value(bytes));
  FILE* f = fopen(path.c_str(), "wb");
  if (f == nullptr || fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    fprintf(stderr, "cannot write %s\n", path.c_str());
    exit(1);
  }
  fclose(f);
}

bool Sealed(const std::string& file) {
  wal_format::Trailer t;
  return file.size() >= wal_format::kTrailerSize &&
         wal_format::DecodeTrailer(file, &t);
}

}  // namespace
}  // namespace fuzz
}  // namespace segwal

int main(int argc, char** argv) {
  using namespace segwal;
  using namespace segwal::fuzz;
  if (argc != 2) {
    fprintf(stderr, "usage: make_seed_corpus OUTPUT_DIR (e.g. $PWD/fuzz/corpus)\n");
    return 2;
  }
  const std::string out = argv[1];
  mkdir(out.c_str(), 0755);
  std::vector<Log> logs = {
      MakeLog("plain", 30, Compression::kNone, false, false),
      MakeLog("snappy", 30, Compression::kSnappy, false, false),
      MakeLog("encrypted", 20, Compression::kNone, true, false),
      MakeLog("both", 16, Compression::kSnappy, true, false),
      MakeLog("truncated", 30, Compression::kNone, false, true),
      MakeLog("empty", 0, Compression::kNone, false, false),
      MakeLog("direct", 8, Compression::kNone, false, false, true),
  };
  // A torn tail: half a record after the last one.
  Log torn = logs[0];
  torn.name = "torn";
  torn.files.back() += torn.files[0].substr(64, 40);
  logs.push_back(torn);
  // A zero-filled tail (preallocated space).
  Log zeros = logs[0];
  zeros.name = "zerofill";
  zeros.files.back() += std::string(100, '\0');
  logs.push_back(zeros);
  // Crash between sealing a segment and creating the next: the last is sealed.
  Log sealed = logs[0];
  sealed.name = "sealedlast";
  while (!sealed.files.empty() && !Sealed(sealed.files.back())) {
    sealed.files.pop_back();
  }
  logs.push_back(sealed);

  size_t inputs = 0;
  for (const Log& log : logs) {
    const bool enc = absl::StrContains(log.name, "encrypted") || log.name == "both";
    for (size_t i = 0; i < log.files.size(); ++i) {
      const std::string& f = log.files[i];
      const std::string p = absl::StrCat(log.name, i);
      Write(out + "/segment_reader", p,
            std::string(1, static_cast<char>(enc ? kUseKeyRing : 0)) + f);
      Write(out + "/segment_reader", p + "raw",
            std::string(1, static_cast<char>(kRawRecords)) + f);
      inputs += 2;
      if (Sealed(f)) {
        wal_format::Trailer t;
        wal_format::DecodeTrailer(f, &t);
        std::string in(1, '\0');
        in.append(f.data() + f.size() - wal_format::kTrailerSize, 8);
        in += f.substr(t.footer_offset + wal_format::kRecordHeaderSize);
        Write(out + "/footer_decoder", p, in);
        ++inputs;
      }
    }
    for (uint8_t mode = 0; mode < 4; ++mode) {
      uint8_t options = mode;
      if (enc) options |= 8;
      if (log.name == "snappy" && mode == 0) options |= 16;
      if (log.name == "direct") options |= 32;
      Write(out + "/open_directory", absl::StrCat(log.name, "-mode", int{mode}),
            EncodeDirectoryInput(options, log.files));
      ++inputs;
    }
  }
  std::string key(32, '\0');
  for (char& c : key) c = static_cast<char>(Rand(256));
  Write(out + "/key_file", "private", std::string(1, '\0') + key);
  Write(out + "/key_file", "group", std::string(1, '\2') + key);
  Write(out + "/key_file", "short", std::string(1, '\0') + key.substr(1));
  Write(out + "/key_file", "long", std::string(1, '\0') + key + "x");
  Write(out + "/key_file", "empty", std::string(1, '\0'));
  inputs += 5;
  printf("make_seed_corpus: %zu inputs written under %s\n", inputs, out.c_str());
  return 0;
}
