// RESP2, the Redis protocol, as segkv_server speaks it: an incremental parser
// of client requests and the encoders of replies.
//
// Requests come in two forms (https://redis.io/docs/reference/protocol-spec/):
//   - a multibulk: "*<n>\r\n" then n bulk strings "$<len>\r\n<len bytes>\r\n";
//   - an inline command: one line of words separated by spaces or tabs, ended
//     by "\n" (or "\r\n"), as telnet and redis-cli's --pipe of text send it.
//     Words may be double-quoted ("a b", with \" \\ \n \r \t \xHH escapes) or
//     single-quoted ('a b', with \' only).
// Empty requests ("*0\r\n", "*-1\r\n", an empty line) are skipped, as Redis
// does: they produce no command and no reply.
//
// The parser owns no socket: the caller feeds it whatever bytes arrived
// (Feed) and takes complete commands out (Next) until it says kNeedMore. Bytes
// of a request are scanned once however they are split across Feed calls.
// Every length is checked against RespLimits before anything is allocated for
// it, so a client cannot make the parser hold more than about
// max_command_bytes (plus one read's worth) per connection.
//
// An error is final: the stream cannot be resynchronised (Redis closes the
// connection too), and every later Next returns kError with the same message.
// Messages start with "Protocol error: " and match Redis's where Redis has one.
//
// Thread safety: none; one parser per connection, used by one thread.

#ifndef SEGWAL_KV_RESP_H_
#define SEGWAL_KV_RESP_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace segwal {
namespace kv {

struct RespLimits {
  // Largest bulk string ("$<len>"): segkv's largest value plus slack.
  uint64_t max_bulk_bytes = (16 << 20) + 4096;
  // Most elements of a multibulk ("*<n>").
  uint64_t max_array_len = 1 << 20;
  // Longest inline command, and longest "*<n>" / "$<len>" line (a line that
  // does not end within this many bytes is an error, not a wait).
  uint64_t max_inline_bytes = 64 << 10;
  // Sum of the bulk lengths of one multibulk.
  uint64_t max_command_bytes = 64 << 20;
};

class RespParser {
 public:
  enum class Result {
    kCommand,   // *command holds the next command's arguments (>= 1)
    kNeedMore,  // no complete command buffered: Feed more bytes
    kError,     // protocol error (error()); final
  };

  explicit RespParser(const RespLimits& limits = RespLimits());
  RespParser(const RespParser&) = delete;
  RespParser& operator=(const RespParser&) = delete;

  // Appends bytes received from the client.
  void Feed(absl::string_view bytes);
  // Takes the next complete command out of the buffered bytes.
  Result Next(std::vector<std::string>* command);

  // The protocol error, "" until Next returned kError.
  const std::string& error() const { return error_; }
  // Bytes fed and not yet consumed by a returned command (the part of a
  // command in progress that was already copied out is not counted).
  size_t buffered_bytes() const { return buf_.size() - pos_; }
  // True if no part of a command is buffered or in progress: what a clean end
  // of the stream looks like.
  bool idle() const { return buffered_bytes() == 0 && !in_multibulk_; }

 private:
  Result Fail(std::string message);
  // Index of the "\n" ending the line at pos_; npos if it has not arrived.
  // Remembers how far it looked, so a line fed byte by byte is scanned once.
  size_t FindNewline();
  Result ParseInline(std::vector<std::string>* command);
  // Reads the "*<n>\r\n" or "$<len>\r\n" line at pos_ into *value: kCommand
  // when done, else kNeedMore or kError. `what` names it in errors.
  Result ParseLengthLine(const char* what, int64_t* value);
  void Compact();

  const RespLimits limits_;
  std::string buf_;
  size_t pos_ = 0;      // first byte of buf_ not consumed yet
  size_t scanned_ = 0;  // no "\n" in buf_[pos_, scanned_)
  std::string error_;

  // A multibulk in progress: its elements read so far.
  bool in_multibulk_ = false;
  uint64_t args_expected_ = 0;
  uint64_t command_bytes_ = 0;
  int64_t bulk_len_ = -1;  // length of the bulk being read; -1: read "$" line
  std::vector<std::string> args_;
};

// Splits an inline command line into words (see above). False, with *error
// set to Redis's message, on unbalanced quotes.
bool SplitInlineArgs(absl::string_view line, std::vector<std::string>* args,
                     std::string* error);

// ---- Reply encoders: each appends one RESP2 value to *out.
void AppendSimpleString(std::string* out, absl::string_view s);  // +s
// -ERR message; a message starting with "-" carries its own code ("-WRONGTYPE
// ...") and is written as is, as Redis's addReplyError does. CR and LF in it
// become spaces (an error is one line).
void AppendError(std::string* out, absl::string_view message);
void AppendInteger(std::string* out, int64_t value);  // :n
void AppendBulk(std::string* out, absl::string_view s);  // $len s
void AppendNullBulk(std::string* out);                // $-1
void AppendArrayHeader(std::string* out, size_t n);   // *n, then n values
// A command in request form ("*n" of bulks): what clients send.
std::string EncodeCommand(const std::vector<std::string>& args);

}  // namespace kv
}  // namespace segwal

#endif  // SEGWAL_KV_RESP_H_
