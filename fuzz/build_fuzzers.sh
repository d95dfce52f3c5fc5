#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzzer.cc) with clang and
# -fsanitize=fuzzer,address,undefined into $FUZZ_OUT (default fuzz/out).
#
# Bazel here builds with gcc, which has no libFuzzer, so this script compiles the
# library sources the targets need directly (the list below mirrors the srcs of
# //wal:{wal,segment_format,recovery_scan,wal_inspector}, //crypto:{crc32c,key_ring,segment_cipher}, //env:{env,mem_env},
# //kv:resp: add a
# file here when one is added there) and links the system libraries the
# third_party/system BUILD files name. Objects are rebuilt only when a source or
# a header it includes changed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${FUZZ_OUT:-fuzz/out}
CXX=${FUZZ_CXX:-clang++}
mkdir -p "$OUT/obj"

if ! command -v "$CXX" >/dev/null; then
  echo "build_fuzzers: $CXX not found (tools/install_deps.sh installs clang)" >&2
  exit 1
fi
probe="$OUT/obj/probe.cc"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe"
if ! "$CXX" -fsanitize=fuzzer,address,undefined "$probe" -o "$OUT/obj/probe" 2>"$OUT/obj/probe.log"; then
  echo "build_fuzzers: $CXX cannot link libFuzzer (install libclang-rt-14-dev: tools/install_deps.sh):" >&2
  cat "$OUT/obj/probe.log" >&2
  exit 1
fi

# The library's own sources are CMakeLists.txt's SEGWAL_SOURCES, which
# tools/check_cmake_sources.sh (run by make test) keeps equal to what Bazel
# compiles, so a file the library gains or loses is never missed here; then
# what the fuzz targets use beyond the library.
mapfile -t LIB_SRCS < <(sed -n '/^set(SEGWAL_SOURCES/,/^)/p' CMakeLists.txt |
  sed -nE 's/^[[:space:]]+([^[:space:]]+\.cc)$/\1/p')
if [ ${#LIB_SRCS[@]} -eq 0 ]; then
  echo "build_fuzzers: no .cc files in CMakeLists.txt's SEGWAL_SOURCES" >&2
  exit 1
fi
LIB_SRCS+=(
  wal/wal_inspector.cc env/mem_env.cc
  kv/resp.cc
  fuzz/fuzz_targets.cc fuzz/resp_parser_target.cc
)
TARGETS=(segment_reader footer_decoder open_directory key_file recovery_verdict resp_parser)

CXXFLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -I. -I/usr/include/android
  -msse4.2 -mpclmul -DSEGWAL_CRC32C_HAVE_ISAL
  -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wno-unused-parameter -Wno-unused-private-field)
# The same system libraries as the Bazel build (third_party/system/*.BUILD).
ABSL_LIBS=$(grep -o '"-labsl_[a-z0-9_]*"' third_party/system/absl.BUILD | tr -d '"' | sort -u)
LIBS=(-L/usr/lib/x86_64-linux-gnu $ABSL_LIBS -lisal -lsnappy -luring
  /usr/lib/x86_64-linux-gnu/android/libcrypto.so
  -Wl,-rpath,/usr/lib/x86_64-linux-gnu/android -pthread)

# Compile (in parallel) every object whose source or included headers changed.
stale=()
for src in "${LIB_SRCS[@]}"; do
  obj="$OUT/obj/${src//\//_}.o"
  dep="${obj%.o}.d"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then stale+=("$src"); continue; fi
  if [ -f "$dep" ]; then
    for h in $(sed -e 's/\\$//' -e 's/^[^:]*://' "$dep"); do
      if [ -f "$h" ] && [ "$h" -nt "$obj" ]; then stale+=("$src"); break; fi
    done
  fi
done
if [ ${#stale[@]} -gt 0 ]; then
  echo "build_fuzzers: compiling ${#stale[@]} file(s) with $CXX" >&2
  printf '%s\n' "${stale[@]}" | xargs -P "$(nproc)" -I{} sh -c \
    'src={}; obj="'"$OUT"'/obj/$(echo "$src" | tr / _).o"; '"$CXX"' '"${CXXFLAGS[*]}"' -fsanitize=fuzzer-no-link -MMD -MF "${obj%.o}.d" -c "$src" -o "$obj"'
fi
objs=()
for src in "${LIB_SRCS[@]}"; do objs+=("$OUT/obj/${src//\//_}.o"); done
for t in "${TARGETS[@]}"; do
  bin="$OUT/${t}_fuzzer"
  newest=$(ls -t "${objs[@]}" "fuzz/${t}_fuzzer.cc" | head -n1)
  if [ ! -f "$bin" ] || [ "$newest" -nt "$bin" ]; then
    "$CXX" "${CXXFLAGS[@]}" -fsanitize=fuzzer "fuzz/${t}_fuzzer.cc" "${objs[@]}" "${LIBS[@]}" -o "$bin"
  fi
done
echo "build_fuzzers: ${TARGETS[*]} built in $OUT" >&2
