// RespParser and the reply encoders (kv/resp.h): each test is one situation a
// client (or an attacker) can put the parser in.

#include "kv/resp.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace segwal {
namespace kv {
namespace {

using Args = std::vector<std::string>;
using Result = RespParser::Result;

// Everything `input` parses to when fed at once: the commands, then the
// final error ("" if it ended waiting for more).
struct Parsed {
  std::vector<Args> commands;
  std::string error;
  bool idle = false;
};

Parsed ParseChunks(const std::vector<std::string>& chunks,
                   const RespLimits& limits = RespLimits()) {
  RespParser p(limits);
  Parsed out;
  for (const std::string& chunk : chunks) {
    p.Feed(chunk);
    Args cmd;
    Result r;
    while ((r = p.Next(&cmd)) == Result::kCommand) out.commands.push_back(cmd);
    if (r == Result::kError) {
      out.error = p.error();
      return out;
    }
  }
  out.idle = p.idle();
  return out;
}

Parsed Parse(const std::string& input, const RespLimits& limits = RespLimits()) {
  return ParseChunks({input}, limits);
}

Parsed ParseByteByByte(const std::string& input) {
  std::vector<std::string> chunks;
  for (char c : input) chunks.push_back(std::string(1, c));
  return ParseChunks(chunks);
}

TEST(RespParserTest, MultibulkCommandParses) {
  Parsed p = Parse("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n");
  ASSERT_EQ(p.error, "");
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0], (Args{"SET", "k", "hello"}));
  EXPECT_TRUE(p.idle);
}

TEST(RespParserTest, IncompleteCommandWaitsForMore) {
  RespParser p;
  p.Feed("*2\r\n$3\r\nGET\r\n$3\r\nke");
  Args cmd;
  EXPECT_EQ(p.Next(&cmd), Result::kNeedMore);
  EXPECT_FALSE(p.idle());
  p.Feed("y\r\n");
  ASSERT_EQ(p.Next(&cmd), Result::kCommand);
  EXPECT_EQ(cmd, (Args{"GET", "key"}));
  EXPECT_TRUE(p.idle());
}

TEST(RespParserTest, CommandSplitAtEveryByteParsesTheSame) {
  const std::string input =
      "*3\r\n$3\r\nSET\r\n$4\r\nk\r\nx\r\n$0\r\n\r\n"
      "PING\r\n"
      "*1\r\n$4\r\nPING\r\n";
  const Parsed whole = Parse(input);
  ASSERT_EQ(whole.error, "");
  ASSERT_EQ(whole.commands.size(), 3u);
  EXPECT_EQ(whole.commands[0], (Args{"SET", "k\r\nx", ""}));
  // Every split point into two chunks, and one byte at a time.
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    Parsed split = ParseChunks({input.substr(0, cut), input.substr(cut)});
    EXPECT_EQ(split.commands, whole.commands) << "cut at " << cut;
    EXPECT_EQ(split.error, "") << "cut at " << cut;
  }
  EXPECT_EQ(ParseByteByByte(input).commands, whole.commands);
}

TEST(RespParserTest, PipelinedCommandsComeOutInOrder) {
  std::string input;
  std::vector<Args> expected;
  for (int i = 0; i < 100; ++i) {
    Args a{"SET", "key" + std::to_string(i), std::string(i, 'v')};
    input += EncodeCommand(a);
    expected.push_back(a);
  }
  Parsed p = Parse(input);
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.commands, expected);
  EXPECT_TRUE(p.idle);
}

TEST(RespParserTest, BulkMayHoldCrlfAndNulBytes) {
  const std::string value("a\r\n\0b", 5);
  Parsed p = Parse(EncodeCommand({"SET", "k", value}));
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0][2], value);
}

TEST(RespParserTest, EmptyBulkIsAnArgument) {
  Parsed p = Parse("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0], (Args{"ECHO", ""}));
}

TEST(RespParserTest, EmptyAndNullArraysAreSkipped) {
  Parsed p = Parse("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n*0\r\n");
  EXPECT_EQ(p.error, "");
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0], (Args{"PING"}));
  EXPECT_TRUE(p.idle);
}

TEST(RespParserTest, InlineCommandSplitsOnSpaces) {
  Parsed p = Parse("SET  key\tvalue\r\nPING\n");
  EXPECT_EQ(p.error, "");
  ASSERT_EQ(p.commands.size(), 2u);
  EXPECT_EQ(p.commands[0], (Args{"SET", "key", "value"}));
  EXPECT_EQ(p.commands[1], (Args{"PING"}));
}

TEST(RespParserTest, InlineQuotesAndEscapes) {
  Parsed p = Parse("SET \"a b\" 'c d' \"\\x41\\n\\\"\" 'it\\'s'\r\n");
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0], (Args{"SET", "a b", "c d", "A\n\"", "it's"}));
}

TEST(RespParserTest, InlineUnbalancedQuotesIsAnError) {
  EXPECT_EQ(Parse("SET \"abc\r\n").error,
            "Protocol error: unbalanced quotes in request");
  EXPECT_EQ(Parse("SET \"abc\"def\r\n").error,
            "Protocol error: unbalanced quotes in request");
  EXPECT_EQ(Parse("SET 'abc\r\n").error,
            "Protocol error: unbalanced quotes in request");
}

TEST(RespParserTest, EmptyInlineLinesAreSkipped) {
  Parsed p = Parse("\r\n  \r\n\nPING\r\n");
  EXPECT_EQ(p.error, "");
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_TRUE(p.idle);
}

TEST(RespParserTest, TooBigInlineRequestIsAnError) {
  RespLimits limits;
  limits.max_inline_bytes = 16;
  EXPECT_EQ(Parse(std::string(17, 'a'), limits).error,
            "Protocol error: too big inline request");
  EXPECT_EQ(Parse(std::string(20, 'a') + "\n", limits).error,
            "Protocol error: too big inline request");
  EXPECT_EQ(Parse(std::string(16, 'a'), limits).error, "");  // may still end
}

TEST(RespParserTest, NegativeBulkLengthIsAnError) {
  EXPECT_EQ(Parse("*1\r\n$-1\r\n").error, "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("*1\r\n$-5\r\n").error, "Protocol error: invalid bulk length");
}

TEST(RespParserTest, MalformedLengthsAreErrors) {
  for (const char* bad : {"*x\r\n", "*\r\n", "*+1\r\n", "*01\r\n", "*1 \r\n",
                          "*1\n", "*99999999999999999999\r\n", "*-0\r\n"}) {
    EXPECT_EQ(Parse(bad).error, "Protocol error: invalid multibulk length")
        << bad;
  }
  for (const char* bad : {"*1\r\n$x\r\n", "*1\r\n$\r\n", "*1\r\n$+3\r\n",
                          "*1\r\n$03\r\n", "*1\r\n$3\n"}) {
    EXPECT_EQ(Parse(bad).error, "Protocol error: invalid bulk length") << bad;
  }
}

TEST(RespParserTest, ElementThatIsNotABulkIsAnError) {
  EXPECT_EQ(Parse("*2\r\n$4\r\nPING\r\n:1\r\n").error,
            "Protocol error: expected '$', got ':'");
}

TEST(RespParserTest, BulkNotFollowedByCrlfIsAnError) {
  EXPECT_EQ(Parse("*1\r\n$4\r\nPINGxx").error,
            "Protocol error: expected CRLF after bulk data");
}

TEST(RespParserTest, OversizedBulkIsRefusedBeforeItsBytesArrive) {
  RespLimits limits;
  limits.max_bulk_bytes = 100;
  EXPECT_EQ(Parse("*2\r\n$3\r\nGET\r\n$101\r\n", limits).error,
            "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("*1\r\n$9223372036854775807\r\n").error,
            "Protocol error: invalid bulk length");
  Parsed ok = Parse(EncodeCommand({"GET", std::string(100, 'k')}), limits);
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(ok.commands.size(), 1u);
}

TEST(RespParserTest, OversizedArrayIsRefused) {
  RespLimits limits;
  limits.max_array_len = 3;
  EXPECT_EQ(Parse("*4\r\n", limits).error,
            "Protocol error: invalid multibulk length");
  EXPECT_EQ(Parse("*2147483648\r\n").error,
            "Protocol error: invalid multibulk length");
  EXPECT_EQ(Parse("*3\r\n", limits).error, "");
}

TEST(RespParserTest, CommandLargerThanTheLimitIsRefused) {
  RespLimits limits;
  limits.max_command_bytes = 10;
  EXPECT_EQ(Parse("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\n", limits).error,
            "Protocol error: request larger than 10 bytes");
}

TEST(RespParserTest, LengthLineWithoutNewlineIsAnErrorOnceTooLong) {
  RespLimits limits;
  limits.max_inline_bytes = 8;
  EXPECT_EQ(Parse("*1111111111", limits).error,
            "Protocol error: too big multibulk count string");
  EXPECT_EQ(Parse("*1\r\n$1111111111", limits).error,
            "Protocol error: too big bulk count string");
  EXPECT_EQ(Parse("*11", limits).error, "");
}

TEST(RespParserTest, OverlongLengthLineIsTheSameErrorWholeOrByteByByte) {
  // Found by the fuzzer: whole, the line ended and failed as a bad number;
  // byte by byte, the limit was hit first.
  RespLimits limits;
  limits.max_inline_bytes = 8;
  const std::string input = "*" + std::string(20, '1') + "\r\n";
  EXPECT_EQ(Parse(input, limits).error,
            "Protocol error: too big multibulk count string");
  std::vector<std::string> chunks;
  for (char c : input) chunks.push_back(std::string(1, c));
  EXPECT_EQ(ParseChunks(chunks, limits).error,
            "Protocol error: too big multibulk count string");
}

TEST(RespParserTest, ErrorIsFinal) {
  RespParser p;
  p.Feed("*1\r\n$-2\r\n");
  Args cmd;
  ASSERT_EQ(p.Next(&cmd), Result::kError);
  const std::string error = p.error();
  p.Feed("*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(p.Next(&cmd), Result::kError);
  EXPECT_EQ(p.error(), error);
}

TEST(RespParserTest, CommandsBeforeAnErrorAreReturned) {
  Parsed p = Parse("PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n");
  EXPECT_EQ(p.commands.size(), 2u);
  EXPECT_EQ(p.error, "Protocol error: invalid bulk length");
}

TEST(RespParserTest, LargeBulkFedInSmallChunks) {
  const std::string value(1 << 20, 'z');
  const std::string input = EncodeCommand({"SET", "big", value});
  std::vector<std::string> chunks;
  for (size_t i = 0; i < input.size(); i += 1000) {
    chunks.push_back(input.substr(i, 1000));
  }
  Parsed p = ParseChunks(chunks);
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0][2], value);
  EXPECT_TRUE(p.idle);
}

TEST(RespParserTest, ConsumedBytesAreReleased) {
  RespParser p;
  Args cmd;
  for (int i = 0; i < 1000; ++i) {
    p.Feed(EncodeCommand({"SET", "k", std::string(1000, 'v')}));
    ASSERT_EQ(p.Next(&cmd), Result::kCommand);
    ASSERT_EQ(p.Next(&cmd), Result::kNeedMore);
    EXPECT_EQ(p.buffered_bytes(), 0u);
  }
}

TEST(RespEncodeTest, SimpleValues) {
  std::string out;
  AppendSimpleString(&out, "OK");
  AppendInteger(&out, -42);
  AppendBulk(&out, "hi");
  AppendBulk(&out, "");
  AppendNullBulk(&out);
  AppendArrayHeader(&out, 2);
  EXPECT_EQ(out, "+OK\r\n:-42\r\n$2\r\nhi\r\n$0\r\n\r\n$-1\r\n*2\r\n");
}

TEST(RespEncodeTest, ErrorGetsErrPrefixUnlessItHasACode) {
  std::string out;
  AppendError(&out, "unknown command");
  AppendError(&out, "-WRONGTYPE bad");
  AppendError(&out, "two\r\nlines");
  EXPECT_EQ(out, "-ERR unknown command\r\n-WRONGTYPE bad\r\n-ERR two  lines\r\n");
}

TEST(RespEncodeTest, EncodedCommandParsesBack) {
  const Args cmd{"MSET", "a", "", std::string("\0\r\n", 3), "b"};
  Parsed p = Parse(EncodeCommand(cmd));
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0], cmd);
}

}  // namespace
}  // namespace kv
}  // namespace segwal
