// segkv_load_client: the crash test's client (kv/segkv_server_test.sh).
//
//   load:   SET <prefix><i> <value of i> for i = 0, 1, ... with up to --window
//           requests in flight, until --count or until the connection dies (the
//           server was killed). Prints each index whose "+OK" arrived, one a
//           line, to --acked_file: exactly the writes the server acknowledged.
//   verify: reads --acked_file and checks with MGET that every acknowledged key
//           holds its value. Prints "verified N acknowledged keys" or the first
//           mismatches; exit 1 if any.
//
// Blocking sockets, one connection; replies are read in order, as RESP2.

#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"
#include "kv/resp.h"

DEFINE_int32(port, 6380, "Server port");
DEFINE_string(mode, "load", "load or verify");
DEFINE_string(prefix, "crash:", "Key prefix");
DEFINE_int64(count, 1 << 30, "load: most SETs to send");
DEFINE_int32(window, 16, "load: most requests in flight");
DEFINE_int32(value_size, 100, "load: value bytes");
DEFINE_string(acked_file, "", "Indexes of acknowledged SETs (one a line)");

namespace {

class Connection {
 public:
  bool Connect(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return true;
  }
  bool Send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = write(fd_, bytes.data() + off, bytes.size() - off);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // One line without its "\r\n"; nullopt when the connection ended.
  std::optional<std::string> ReadLine() {
    while (true) {
      size_t nl = buf_.find("\r\n", pos_);
      if (nl != std::string::npos) {
        std::string line = buf_.substr(pos_, nl - pos_);
        pos_ = nl + 2;
        return line;
      }
      if (!Fill()) return std::nullopt;
    }
  }
  std::optional<std::string> ReadBytes(size_t n) {
    while (buf_.size() - pos_ < n + 2) {
      if (!Fill()) return std::nullopt;
    }
    std::string out = buf_.substr(pos_, n);
    pos_ += n + 2;
    return out;
  }

 private:
  bool Fill() {
    if (pos_ > 0) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    char tmp[65536];
    ssize_t n = read(fd_, tmp, sizeof(tmp));
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
};

std::string ValueOf(int64_t i) {
  std::string v = absl::StrCat("v", i, ":");
  while (v.size() < static_cast<size_t>(FLAGS_value_size)) v.push_back('x');
  return v;
}

int Load() {
  Connection c;
  if (!c.Connect(FLAGS_port)) {
    fprintf(stderr, "segkv_load_client: cannot connect to port %d\n", FLAGS_port);
    return 1;
  }
  FILE* acked = fopen(FLAGS_acked_file.c_str(), "w");
  if (acked == nullptr) return 1;
  setvbuf(acked, nullptr, _IOLBF, 0);  // the test watches the file grow
  int64_t sent = 0, answered = 0, errors = 0;
  while (answered < FLAGS_count) {
    std::string batch;
    while (sent < FLAGS_count && sent - answered < FLAGS_window) {
      batch += segwal::kv::EncodeCommand(
          {"SET", absl::StrCat(FLAGS_prefix, sent), ValueOf(sent)});
      ++sent;
    }
    if (!batch.empty() && !c.Send(batch)) break;
    std::optional<std::string> line = c.ReadLine();
    if (!line.has_value()) break;
    if (*line == "+OK") {
      fprintf(acked, "%lld\n", static_cast<long long>(answered));
    } else if (++errors <= 3) {
      fprintf(stderr, "segkv_load_client: SET %lld: %s\n",
              static_cast<long long>(answered), line->c_str());
    }
    ++answered;
  }
  fclose(acked);
  printf("load: sent %lld, answered %lld (%lld errors)\n", static_cast<long long>(sent),
         static_cast<long long>(answered), static_cast<long long>(errors));
  return 0;
}

int Verify() {
  std::ifstream in(FLAGS_acked_file);
  std::vector<int64_t> keys;
  std::string line;
  while (std::getline(in, line)) {
    int64_t i;
    if (absl::SimpleAtoi(line, &i)) keys.push_back(i);
  }
  Connection c;
  if (!c.Connect(FLAGS_port)) {
    fprintf(stderr, "segkv_load_client: cannot connect to port %d\n", FLAGS_port);
    return 1;
  }
  int64_t bad = 0;
  for (size_t from = 0; from < keys.size(); from += 100) {
    const size_t to = std::min(keys.size(), from + 100);
    std::vector<std::string> cmd{"MGET"};
    for (size_t k = from; k < to; ++k) cmd.push_back(absl::StrCat(FLAGS_prefix, keys[k]));
    if (!c.Send(segwal::kv::EncodeCommand(cmd))) return 1;
    std::optional<std::string> header = c.ReadLine();
    if (!header.has_value() || header->empty() || (*header)[0] != '*') {
      fprintf(stderr, "verify: bad MGET reply: %s\n", header.value_or("<eof>").c_str());
      return 1;
    }
    for (size_t k = from; k < to; ++k) {
      std::optional<std::string> bulk = c.ReadLine();
      int64_t len = -1;
      if (!bulk.has_value() || bulk->empty() || (*bulk)[0] != '$' ||
          !absl::SimpleAtoi(bulk->substr(1), &len)) {
        fprintf(stderr, "verify: bad bulk header\n");
        return 1;
      }
      std::optional<std::string> value;
      if (len >= 0) value = c.ReadBytes(static_cast<size_t>(len));
      if (!value.has_value() || *value != ValueOf(keys[k])) {
        if (++bad <= 5) {
          fprintf(stderr, "verify: acknowledged key %s%lld is %s\n", FLAGS_prefix.c_str(),
                  static_cast<long long>(keys[k]),
                  value.has_value() ? "wrong" : "missing");
        }
      }
    }
  }
  printf("verified %zu acknowledged keys: %lld missing or wrong\n", keys.size(),
         static_cast<long long>(bad));
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  signal(SIGPIPE, SIG_IGN);  // a killed server is a write error, not our death
  if (FLAGS_mode == "load") return Load();
  if (FLAGS_mode == "verify") return Verify();
  fprintf(stderr, "segkv_load_client: --mode must be load or verify\n");
  return 2;
}
