// libFuzzer entry point for RecoveryVerdictTarget (fuzz/fuzz_targets.h): the
// inspector and Open in every recovery mode agree on the first damage. Built
// by fuzz/build_fuzzers.sh; `make fuzz` runs it.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return segwal::fuzz::RecoveryVerdictTarget(data, size);
}
