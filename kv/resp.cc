// RespParser and the RESP2 reply encoders (kv/resp.h).

#include "kv/resp.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace segwal {
namespace kv {

namespace {

// Redis's string2ll, strictly: an optional '-', then digits without leading
// zeros ("0" alone is fine), no '+', no spaces, no overflow.
bool ParseStrictInt64(absl::string_view s, int64_t* value) {
  if (s.empty() || s.size() > 20) return false;
  bool negative = false;
  size_t i = 0;
  if (s[0] == '-') {
    negative = true;
    i = 1;
    if (s.size() == 1) return false;
  }
  if (s[i] == '0' && s.size() > i + 1) return false;
  if (negative && s[i] == '0') return false;  // "-0"
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > static_cast<uint64_t>(INT64_MAX) + 1) return false;
    *value = static_cast<int64_t>(0 - v);
  } else {
    if (v > static_cast<uint64_t>(INT64_MAX)) return false;
    *value = static_cast<int64_t>(v);
  }
  return true;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

RespParser::RespParser(const RespLimits& limits) : limits_(limits) {}

void RespParser::Feed(absl::string_view bytes) {
  buf_.append(bytes.data(), bytes.size());
}

RespParser::Result RespParser::Fail(std::string message) {
  error_ = absl::StrCat("Protocol error: ", message);
  return Result::kError;
}

size_t RespParser::FindNewline() {
  const size_t from = std::max(pos_, scanned_);
  const void* nl = memchr(buf_.data() + from, '\n', buf_.size() - from);
  if (nl == nullptr) {
    scanned_ = buf_.size();
    return std::string::npos;
  }
  return static_cast<const char*>(nl) - buf_.data();
}

void RespParser::Compact() {
  // Erasing costs what is left, so do it only once at least as much was
  // consumed: every byte is moved O(1) times on average.
  if (pos_ == 0 || pos_ < buf_.size() - pos_) return;
  buf_.erase(0, pos_);
  scanned_ = scanned_ > pos_ ? scanned_ - pos_ : 0;
  pos_ = 0;
}

RespParser::Result RespParser::ParseLengthLine(const char* what,
                                               int64_t* value) {
  const size_t nl = FindNewline();
  if (nl == std::string::npos) {
    if (buffered_bytes() > limits_.max_inline_bytes) {
      return Fail(absl::StrCat("too big ", what, " count string"));
    }
    return Result::kNeedMore;
  }
  // The same verdict whether the line arrived whole or byte by byte.
  if (nl - pos_ > limits_.max_inline_bytes) {
    return Fail(absl::StrCat("too big ", what, " count string"));
  }
  // buf_[pos_] is the prefix; the number runs to "\r\n".
  absl::string_view line(buf_.data() + pos_ + 1, nl - pos_ - 1);
  const bool has_cr = !line.empty() && line.back() == '\r';
  if (has_cr) line.remove_suffix(1);
  if (!has_cr || !ParseStrictInt64(line, value)) {
    return Fail(absl::StrCat("invalid ", what, " length"));
  }
  pos_ = nl + 1;
  return Result::kCommand;
}

RespParser::Result RespParser::ParseInline(std::vector<std::string>* command) {
  const size_t nl = FindNewline();
  if (nl == std::string::npos) {
    if (buffered_bytes() > limits_.max_inline_bytes) {
      return Fail("too big inline request");
    }
    return Result::kNeedMore;
  }
  if (nl - pos_ > limits_.max_inline_bytes) {
    return Fail("too big inline request");
  }
  absl::string_view line(buf_.data() + pos_, nl - pos_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string> args;
  std::string error;
  if (!SplitInlineArgs(line, &args, &error)) return Fail(error);
  pos_ = nl + 1;
  if (args.empty()) return Result::kNeedMore;  // caller skips empty lines
  *command = std::move(args);
  return Result::kCommand;
}

RespParser::Result RespParser::Next(std::vector<std::string>* command) {
  if (!error_.empty()) return Result::kError;
  while (!in_multibulk_) {
    if (pos_ == buf_.size()) {
      Compact();
      return Result::kNeedMore;
    }
    if (buf_[pos_] != '*') {
      const size_t before = pos_;
      Result r = ParseInline(command);
      if (r == Result::kNeedMore && pos_ != before) continue;  // empty line
      if (r == Result::kNeedMore) Compact();
      return r;
    }
    int64_t n = 0;
    Result r = ParseLengthLine("multibulk", &n);
    if (r != Result::kCommand) {
      if (r == Result::kNeedMore) Compact();
      return r;
    }
    if (n <= 0) continue;  // "*0" and "*-1": nothing to do, no reply
    if (static_cast<uint64_t>(n) > limits_.max_array_len) {
      return Fail("invalid multibulk length");
    }
    in_multibulk_ = true;
    args_expected_ = static_cast<uint64_t>(n);
    command_bytes_ = 0;
    bulk_len_ = -1;
    args_.clear();
    // A count is a claim, not a promise: grow with what actually arrives.
    args_.reserve(std::min<uint64_t>(args_expected_, 64));
  }
  while (args_.size() < args_expected_) {
    if (bulk_len_ < 0) {
      if (pos_ == buf_.size()) {
        Compact();
        return Result::kNeedMore;
      }
      if (buf_[pos_] != '$') {
        return Fail(absl::StrCat("expected '$', got '",
                                 absl::string_view(&buf_[pos_], 1), "'"));
      }
      int64_t len = 0;
      Result r = ParseLengthLine("bulk", &len);
      if (r != Result::kCommand) {
        if (r == Result::kNeedMore) Compact();
        return r;
      }
      if (len < 0 || static_cast<uint64_t>(len) > limits_.max_bulk_bytes) {
        return Fail("invalid bulk length");
      }
      command_bytes_ += static_cast<uint64_t>(len);
      if (command_bytes_ > limits_.max_command_bytes) {
        return Fail(absl::StrCat("request larger than ",
                                 limits_.max_command_bytes, " bytes"));
      }
      bulk_len_ = len;
    }
    const size_t need = static_cast<size_t>(bulk_len_) + 2;
    if (buf_.size() - pos_ < need) {
      Compact();
      // The length is within limits: make room once rather than regrowing.
      if (buf_.capacity() < pos_ + need) buf_.reserve(pos_ + need);
      return Result::kNeedMore;
    }
    const size_t end = pos_ + static_cast<size_t>(bulk_len_);
    if (buf_[end] != '\r' || buf_[end + 1] != '\n') {
      return Fail("expected CRLF after bulk data");
    }
    args_.emplace_back(buf_.data() + pos_, static_cast<size_t>(bulk_len_));
    pos_ = end + 2;
    bulk_len_ = -1;
  }
  in_multibulk_ = false;
  *command = std::move(args_);
  args_.clear();
  return Result::kCommand;
}

bool SplitInlineArgs(absl::string_view line, std::vector<std::string>* args,
                     std::string* error) {
  args->clear();
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    while (i < n && IsSpace(line[i])) ++i;
    if (i == n) return true;
    std::string word;
    bool in_double = false, in_single = false, done = false;
    while (!done) {
      if (in_double) {
        if (i == n) break;  // unterminated
        if (line[i] == '\\' && i + 3 < n && line[i + 1] == 'x' &&
            HexDigit(line[i + 2]) >= 0 && HexDigit(line[i + 3]) >= 0) {
          word.push_back(
              static_cast<char>(HexDigit(line[i + 2]) * 16 + HexDigit(line[i + 3])));
          i += 4;
        } else if (line[i] == '\\' && i + 1 < n) {
          char c = line[i + 1];
          switch (c) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'b': c = '\b'; break;
            case 'a': c = '\a'; break;
            default: break;
          }
          word.push_back(c);
          i += 2;
        } else if (line[i] == '"') {
          // The closing quote must end the word.
          if (i + 1 < n && !IsSpace(line[i + 1])) break;
          ++i;
          done = true;
        } else {
          word.push_back(line[i++]);
        }
      } else if (in_single) {
        if (i == n) break;
        if (line[i] == '\\' && i + 1 < n && line[i + 1] == '\'') {
          word.push_back('\'');
          i += 2;
        } else if (line[i] == '\'') {
          if (i + 1 < n && !IsSpace(line[i + 1])) break;
          ++i;
          done = true;
        } else {
          word.push_back(line[i++]);
        }
      } else {
        if (i == n || IsSpace(line[i])) {
          done = true;
        } else if (line[i] == '"') {
          in_double = true;
          ++i;
        } else if (line[i] == '\'') {
          in_single = true;
          ++i;
        } else {
          word.push_back(line[i++]);
        }
      }
    }
    if (!done) {
      args->clear();
      *error = "unbalanced quotes in request";
      return false;
    }
    args->push_back(std::move(word));
  }
}

void AppendSimpleString(std::string* out, absl::string_view s) {
  absl::StrAppend(out, "+", s, "\r\n");
}

void AppendError(std::string* out, absl::string_view message) {
  const size_t start = out->size();
  if (message.empty() || message[0] != '-') out->append("-ERR ");
  out->append(message.data(), message.size());
  for (size_t i = start; i < out->size(); ++i) {
    if ((*out)[i] == '\r' || (*out)[i] == '\n') (*out)[i] = ' ';
  }
  out->append("\r\n");
}

void AppendInteger(std::string* out, int64_t value) {
  absl::StrAppend(out, ":", value, "\r\n");
}

void AppendBulk(std::string* out, absl::string_view s) {
  absl::StrAppend(out, "$", s.size(), "\r\n");
  out->append(s.data(), s.size());
  out->append("\r\n");
}

void AppendNullBulk(std::string* out) { out->append("$-1\r\n"); }

void AppendArrayHeader(std::string* out, size_t n) {
  absl::StrAppend(out, "*", n, "\r\n");
}

std::string EncodeCommand(const std::vector<std::string>& args) {
  std::string out;
  AppendArrayHeader(&out, args.size());
  for (const std::string& a : args) AppendBulk(&out, a);
  return out;
}

}  // namespace kv
}  // namespace segwal
