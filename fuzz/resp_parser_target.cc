// RespParserTarget (fuzz/fuzz_targets.h): kv::RespParser on arbitrary bytes.
//
// Options byte: bit 0 picks tiny RespLimits (so every limit is reached by
// short inputs); bits 1-7 seed the chunk sizes of the second parse. Checks,
// beyond "no crash":
//   - the same stream parses to the same commands and the same final outcome
//     (error message, or waiting for more) whole, byte by byte, and in
//     pseudo-random chunks;
//   - every command has at least one argument, no argument exceeds the limits;
//   - an error says "Protocol error: ..." and is final;
//   - each command, re-encoded as a multibulk, parses back to itself alone.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz/fuzz_targets.h"
#include "kv/resp.h"

namespace segwal {
namespace fuzz {
namespace {

using Command = std::vector<std::string>;

struct Outcome {
  std::vector<Command> commands;
  std::string error;  // "" : ended waiting for more
};

// Feeds `input` in chunks of the sizes `next_chunk` returns.
template <typename ChunkFn>
Outcome ParseInChunks(const std::string& input, const kv::RespLimits& limits,
                      ChunkFn next_chunk) {
  kv::RespParser parser(limits);
  Outcome out;
  size_t pos = 0;
  while (true) {
    Command cmd;
    kv::RespParser::Result r;
    while ((r = parser.Next(&cmd)) == kv::RespParser::Result::kCommand) {
      out.commands.push_back(cmd);
    }
    if (r == kv::RespParser::Result::kError) {
      out.error = parser.error();
      // Final: more bytes change nothing.
      parser.Feed("*1\r\n$4\r\nPING\r\n");
      FUZZ_CHECK(parser.Next(&cmd) == kv::RespParser::Result::kError &&
                          parser.error() == out.error,
                      "an error was not final");
      return out;
    }
    if (pos == input.size()) return out;
    const size_t n = std::min(input.size() - pos, next_chunk());
    parser.Feed(absl::string_view(input.data() + pos, n));
    pos += n;
  }
}

std::string Describe(const Outcome& o) {
  std::string s = std::to_string(o.commands.size()) + " commands, error '" +
                  o.error + "'";
  return s;
}

}  // namespace

int RespParserTarget(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t options = data[0];
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  kv::RespLimits limits;
  if (options & 1) {
    limits.max_bulk_bytes = 64;
    limits.max_array_len = 16;
    limits.max_inline_bytes = 128;
    limits.max_command_bytes = 256;
  }
  const Outcome whole =
      ParseInChunks(input, limits, [&] { return input.size() + 1; });
  const Outcome bytes = ParseInChunks(input, limits, [] { return size_t{1}; });
  uint32_t state = options | 0x100u;
  const Outcome chunks = ParseInChunks(input, limits, [&] {
    state = state * 1103515245u + 12345u;
    return size_t{1} + (state >> 16) % 97;
  });
  FUZZ_CHECK(bytes.commands == whole.commands && bytes.error == whole.error,
                  "byte by byte: " + Describe(bytes) + " vs whole: " + Describe(whole));
  FUZZ_CHECK(chunks.commands == whole.commands && chunks.error == whole.error,
                  "chunks: " + Describe(chunks) + " vs whole: " + Describe(whole));
  if (!whole.error.empty()) {
    FUZZ_CHECK(whole.error.rfind("Protocol error: ", 0) == 0, whole.error);
  }
  for (const Command& c : whole.commands) {
    FUZZ_CHECK(!c.empty(), "a command without arguments");
    uint64_t total = 0;
    for (const std::string& a : c) {
      FUZZ_CHECK(a.size() <= std::max(limits.max_bulk_bytes, limits.max_inline_bytes),
                      "argument of " + std::to_string(a.size()) + " bytes");
      total += a.size();
    }
    FUZZ_CHECK(
        c.size() <= std::max<uint64_t>(limits.max_array_len, limits.max_inline_bytes),
        "too many arguments");
    (void)total;
    // Re-encoded (under default limits, which every parsed command fits),
    // the command parses back to itself.
    kv::RespParser again;
    again.Feed(kv::EncodeCommand(c));
    Command back;
    FUZZ_CHECK(again.Next(&back) == kv::RespParser::Result::kCommand && back == c,
                    "re-encoded command did not parse back");
    FUZZ_CHECK(again.Next(&back) == kv::RespParser::Result::kNeedMore && again.idle(),
                    "re-encoded command left bytes behind");
  }
  return 0;
}

}  // namespace fuzz
}  // namespace segwal
