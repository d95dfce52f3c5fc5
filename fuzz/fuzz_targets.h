// The fuzz targets' entry points, shared by the libFuzzer binaries
// (fuzz/*_fuzzer.cc, built by fuzz/build_fuzzers.sh with clang) and the
// regression test that replays every committed input under Bazel
// (fuzz/fuzz_regression_test.cc).
//
// Each target feeds arbitrary bytes to a decoder of untrusted input and checks
// what it promises beyond "no crash": errors have the documented codes, what
// decodes re-encodes to the same bytes, a failed Open changes nothing on disk,
// a record appended and synced after Open survives a reopen. A broken promise
// aborts (FUZZ_CHECK), which libFuzzer reports as a crash.
//
// Input formats (byte 0 is an options byte; see each target):
//   SegmentReaderTarget  options, then one segment file.
//   FooterDecoderTarget  options, footer offset (u64), then a footer payload.
//   OpenDirectoryTarget  options, then files: (u16 length, bytes) each.
//   KeyFileTarget        options (file mode), then the key file's bytes.
//   RespParserTarget     options (limits, chunking), then a client's byte
//                        stream to segkv_server (fuzz/resp_parser_target.cc).
//   RecoveryVerdictTarget  as OpenDirectoryTarget (its mode bits unused: every
//                        recovery mode is run).
//
// Thread safety: each call is independent.

#ifndef SEGWAL_FUZZ_FUZZ_TARGETS_H_
#define SEGWAL_FUZZ_FUZZ_TARGETS_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "crypto/key_ring.h"

// A broken promise (every target checks its promises with this): abort, so libFuzzer (and the regression test) report it.
#define FUZZ_CHECK(cond, what)                                          \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  %s\n", __FILE__, \
              __LINE__, #cond, std::string(what).c_str());              \
      abort();                                                          \
    }                                                                   \
  } while (false)

namespace segwal {
namespace fuzz {

// Options bits shared by the segment targets.
inline constexpr uint8_t kFixHeaderCrc = 1 << 0;  // recompute the header CRC
inline constexpr uint8_t kFixFrameCrcs = 1 << 1;  // recompute frame CRCs
inline constexpr uint8_t kUseKeyRing = 1 << 2;    // supply FuzzKeyRing()
inline constexpr uint8_t kRawRecords = 1 << 3;    // SegmentReader raw mode

int SegmentReaderTarget(const uint8_t* data, size_t size);
int FooterDecoderTarget(const uint8_t* data, size_t size);
int OpenDirectoryTarget(const uint8_t* data, size_t size);
int KeyFileTarget(const uint8_t* data, size_t size);
int RespParserTarget(const uint8_t* data, size_t size);
// The differential check of the torn-tail/corruption rule: the inspector
// (wal_inspector.h) and Open in each of the four recovery modes, each over a
// fresh copy of the same directory, must name the same first damage (clean,
// torn tail or corruption; same file and offset) where both look at it.
int RecoveryVerdictTarget(const uint8_t* data, size_t size);

// The fixed key the seed corpora's encrypted segments are written with.
KeyRing FuzzKeyRing();

// Makes a segment file's checksums valid again after a mutation: the header
// CRC, and then (if the header decodes) each frame's header and payload CRCs,
// walking frames by their stored lengths.
void FixChecksums(std::string* file, bool header, bool frames);

// Inputs in the formats above, for seed corpora.
std::string EncodeDirectoryInput(uint8_t options,
                                 const std::vector<std::string>& files);

}  // namespace fuzz
}  // namespace segwal

#endif  // SEGWAL_FUZZ_FUZZ_TARGETS_H_
