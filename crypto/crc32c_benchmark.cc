// CRC32C throughput: the implementation Extend/Value use (ISA-L when
// available) against the portable slicing-by-8 code, at record-sized (64 B),
// block-sized (4 KiB) and segment-chunk-sized (1 MiB) inputs.
//
//   bazel run -c opt //crypto:crc32c_benchmark

#include <cstddef>
#include <cstdint>
#include <string>

#include "benchmark/benchmark.h"
#include "crypto/crc32c.h"

namespace segwal {
namespace {

std::string MakeData(size_t n) {
  std::string data(n, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    data[i] = static_cast<char>(x);
  }
  return data;
}

void BM_Crc32cFast(benchmark::State& state) {
  const std::string data = MakeData(static_cast<size_t>(state.range(0)));
  uint32_t crc = 0;
  for (auto _ : state) {
    crc = crc32c::Extend(crc, data.data(), data.size());
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          state.range(0));
  state.SetLabel(crc32c::ImplementationName());
}

void BM_Crc32cPortable(benchmark::State& state) {
  const std::string data = MakeData(static_cast<size_t>(state.range(0)));
  uint32_t crc = 0;
  for (auto _ : state) {
    crc = crc32c::ExtendPortable(crc, data.data(), data.size());
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          state.range(0));
  state.SetLabel("portable");
}

BENCHMARK(BM_Crc32cFast)->Arg(64)->Arg(4 << 10)->Arg(1 << 20);
BENCHMARK(BM_Crc32cPortable)->Arg(64)->Arg(4 << 10)->Arg(1 << 20);

}  // namespace
}  // namespace segwal
