// Raw AES-256-GCM throughput of SegmentCipher (BoringSSL EVP_AEAD), the floor
// under what encryption costs the WAL (//wal:wal_codec_benchmark).
//
//   bazel run -c opt //crypto:segment_cipher_benchmark

#include <openssl/aead.h>

#include <cstdint>
#include <string>

#include "benchmark/benchmark.h"
#include "crypto/key_ring.h"
#include "crypto/segment_cipher.h"

namespace segwal {
namespace {

std::unique_ptr<SegmentCipher> Cipher() {
  return std::move(*SegmentCipher::Create(
      *WalEncryptionKey::FromBytes(std::string(32, 'k')), std::string(16, 's'),
      1));
}

void BM_Seal(benchmark::State& state) {
  auto cipher = Cipher();
  const std::string plain(static_cast<size_t>(state.range(0)), 'p');
  const std::string ad(112, 'a');  // the WAL's associated data size
  std::string out;
  uint64_t lsn = 1;
  for (auto _ : state) {
    out.clear();
    if (!cipher->Seal(lsn++, ad, plain, &out).ok()) {
      state.SkipWithError("seal failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          state.range(0));
  state.SetLabel(EVP_has_aes_hardware() ? "AES hardware" : "no AES hardware");
}
BENCHMARK(BM_Seal)->Arg(128)->Arg(4096)->Arg(65536);

void BM_Open(benchmark::State& state) {
  auto cipher = Cipher();
  const std::string ad(112, 'a');
  std::string sealed, out;
  if (!cipher->Seal(1, ad, std::string(static_cast<size_t>(state.range(0)), 'p'),
                    &sealed)
           .ok()) {
    state.SkipWithError("seal failed");
    return;
  }
  for (auto _ : state) {
    if (!cipher->Open(1, ad, sealed, &out)) {
      state.SkipWithError("open failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          state.range(0));
}
BENCHMARK(BM_Open)->Arg(128)->Arg(4096)->Arg(65536);

void BM_CreateSegmentCipher(benchmark::State& state) {
  const WalEncryptionKey key = *WalEncryptionKey::FromBytes(std::string(32, 'k'));
  uint64_t lsn = 1;
  for (auto _ : state) {
    auto c = SegmentCipher::Create(key, std::string(16, 's'), lsn++);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_CreateSegmentCipher);

}  // namespace
}  // namespace segwal
