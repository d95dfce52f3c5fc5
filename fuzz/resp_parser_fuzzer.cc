// libFuzzer entry point for RespParserTarget (fuzz/fuzz_targets.h). Built by
// fuzz/build_fuzzers.sh; `make fuzz` runs it.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return segwal::fuzz::RespParserTarget(data, size);
}
