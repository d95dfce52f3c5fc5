// segkv_load_client: the crash test's client (kv/segkv_server_test.sh).
//
//   load:   SET <prefix><i> <value of i> for i = 0, 1, ... with up to --window
//           requests in flight, until --count or until the connection dies (the
//           server was killed). Prints each index whose "+OK" arrived, one a
//           line, to --acked_file: exactly the writes the server acknowledged.
//   verify: reads --acked_file and checks with MGET that every acknowledged key
//           holds its value. Prints "verified N acknowledged keys" or the first
//           mismatches; exit 1 if any.
//   cluster_load: the cluster kill test's writer (kv/segkv_cluster_test.sh).
//           SET <prefix><i> with up to --window in flight to whichever member
//           of --ports it is connected to, following "-MOVED 0 HOST:PORT" to
//           the leader, retrying (same key, same value: SET is idempotent)
//           every SET answered "-TRYAGAIN" or any other error, or left without
//           an answer when a connection died, on the next member. Records every
//           acknowledged index in --acked_file. Once --stop_file exists it
//           sends no new keys and retries the unacknowledged ones until none
//           is left (or --drain_seconds).
//
// Blocking sockets, one connection; replies are read in order, as RESP2.

#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gflags/gflags.h"
#include "kv/resp.h"

DEFINE_int32(port, 6380, "Server port");
DEFINE_string(mode, "load", "load or verify");
DEFINE_string(prefix, "crash:", "Key prefix");
DEFINE_int64(count, 1 << 30, "load: most SETs to send");
DEFINE_int32(window, 16, "load: most requests in flight");
DEFINE_int32(value_size, 100, "load: value bytes");
DEFINE_string(acked_file, "", "Indexes of acknowledged SETs (one a line)");
DEFINE_string(ports, "", "cluster_load: every member's client port, comma-separated");
DEFINE_string(stop_file, "", "cluster_load: stop sending new keys once this file exists");
DEFINE_int32(drain_seconds, 60, "cluster_load: most time to retry the last unacknowledged SETs");

namespace {

class Connection {
 public:
  ~Connection() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    buf_.clear();
    pos_ = 0;
  }
  // With a receive timeout, so that a member that stops answering is left.
  bool ConnectWithTimeout(int port, int seconds) {
    Close();
    if (!Connect(port)) {
      Close();
      return false;
    }
    timeval tv{};
    tv.tv_sec = seconds;
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return true;
  }
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

bool FileExists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

int ClusterLoad() {
  std::vector<int> ports;
  for (absl::string_view p : absl::StrSplit(FLAGS_ports, ',', absl::SkipEmpty())) {
    int v;
    if (!absl::SimpleAtoi(p, &v)) {
      fprintf(stderr, "segkv_load_client: bad --ports entry '%s'\n", std::string(p).c_str());
      return 2;
    }
    ports.push_back(v);
  }
  if (ports.empty()) {
    fprintf(stderr, "segkv_load_client: --ports is required\n");
    return 2;
  }
  FILE* acked = fopen(FLAGS_acked_file.c_str(), "w");
  if (acked == nullptr) return 1;
  setvbuf(acked, nullptr, _IOLBF, 0);
  std::deque<int64_t> retry;  // unacknowledged, to send again
  int64_t next = 0, acks = 0, moved = 0, tryagain = 0, other_errors = 0, reconnects = 0;
  size_t member = 0;
  int port = ports[0];
  Connection c;
  bool connected = false;
  bool stopping = false;
  auto drain_deadline = std::chrono::steady_clock::now();
  while (true) {
    if (!stopping && !FLAGS_stop_file.empty() && FileExists(FLAGS_stop_file)) {
      stopping = true;
      drain_deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(FLAGS_drain_seconds);
    }
    if (stopping && (retry.empty() || std::chrono::steady_clock::now() > drain_deadline)) break;
    if (!stopping && next >= FLAGS_count && retry.empty()) break;
    if (!connected) {
      connected = c.ConnectWithTimeout(port, 5);
      if (!connected) {
        member = (member + 1) % ports.size();
        port = ports[member];
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
    }
    std::vector<int64_t> batch;
    std::string bytes;
    while (static_cast<int>(batch.size()) < FLAGS_window) {
      int64_t i;
      if (!retry.empty()) {
        i = retry.front();
        retry.pop_front();
      } else if (!stopping && next < FLAGS_count) {
        i = next++;
      } else {
        break;
      }
      batch.push_back(i);
      bytes += segwal::kv::EncodeCommand({"SET", absl::StrCat(FLAGS_prefix, i), ValueOf(i)});
    }
    bool broken = !c.Send(bytes);
    int redirect_port = -1;
    bool backoff = false;
    size_t k = 0;
    for (; k < batch.size() && !broken; ++k) {
      std::optional<std::string> line = c.ReadLine();
      if (!line.has_value()) {
        broken = true;
        break;
      }
      if (*line == "+OK") {
        fprintf(acked, "%lld\n", static_cast<long long>(batch[k]));
        ++acks;
        continue;
      }
      retry.push_back(batch[k]);
      if (line->rfind("-MOVED ", 0) == 0) {
        ++moved;
        const size_t colon = line->rfind(':');
        int p;
        if (colon != std::string::npos && absl::SimpleAtoi(line->substr(colon + 1), &p)) {
          redirect_port = p;
        }
      } else if (line->rfind("-TRYAGAIN", 0) == 0) {
        ++tryagain;
        backoff = true;
      } else {
        if (++other_errors <= 5) {
          fprintf(stderr, "segkv_load_client: SET %lld: %s\n",
                  static_cast<long long>(batch[k]), line->c_str());
        }
        backoff = true;
      }
    }
    if (broken) {
      // Unanswered: they may or may not be applied; send them again.
      for (; k < batch.size(); ++k) retry.push_back(batch[k]);
      c.Close();
      connected = false;
      ++reconnects;
      member = (member + 1) % ports.size();
      port = ports[member];
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (redirect_port > 0 && redirect_port != port) {
      c.Close();
      connected = false;
      port = redirect_port;
      for (size_t m = 0; m < ports.size(); ++m) {
        if (ports[m] == port) member = m;
      }
      continue;
    }
    if (backoff) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  fclose(acked);
  printf("cluster_load: %lld keys, %lld acknowledged, %zu never acknowledged; %lld MOVED, "
         "%lld TRYAGAIN, %lld other errors, %lld reconnects\n",
         static_cast<long long>(next), static_cast<long long>(acks), retry.size(),
         static_cast<long long>(moved), static_cast<long long>(tryagain),
         static_cast<long long>(other_errors), static_cast<long long>(reconnects));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  signal(SIGPIPE, SIG_IGN);  // a killed server is a write error, not our death
  if (FLAGS_mode == "load") return Load();
  if (FLAGS_mode == "verify") return Verify();
  if (FLAGS_mode == "cluster_load") return ClusterLoad();
  fprintf(stderr, "segkv_load_client: --mode must be load, verify or cluster_load\n");
  return 2;
}
