# The two commands a newcomer needs (see README.md):
#   make bench   runs the benchmark tool's default suite
#   make test    runs every test, then builds and runs the example projects that
#                use segwal through Bazel, CMake and pkg-config (tools/consumers_test.sh)
# Each first installs whatever Debian packages are missing (tools/install_deps.sh;
# `make bench` also RocksDB's db_bench, rocksdb-tools, which it runs beside segwal).

BAZEL ?= bazel

# Durability evidence (docs/DURABILITY.md):
#   make crash-test   the real-kill crash driver for CRASH_SECONDS (default an hour)
#   make fuzz         every libFuzzer target for FUZZ_SECONDS each (default 60)
CRASH_SECONDS ?= 3600
FUZZ_SECONDS ?= 60

.PHONY: test bench deps bench-deps asan tsan crash-test fuzz

deps:
	@./tools/install_deps.sh

bench-deps:
	@./tools/install_deps.sh --bench

# Both steps run even if the first fails; each prints its own "tests:" line.
test: deps
	@rc=0; ./tools/test_summary.sh //... || rc=1; ./tools/consumers_test.sh || rc=1; exit $$rc

bench: bench-deps
	@$(BAZEL) run -c opt //db_bench_wal:bench_suite

asan: deps
	@./tools/test_summary.sh --config=asan //...

tsan: deps
	@./tools/test_summary.sh --config=tsan //...

crash-test: deps
	@$(BAZEL) test //stress:crash_driver_test --test_env=SEGWAL_CRASH_SECONDS=$(CRASH_SECONDS) \
	  --test_timeout=$$(( $(CRASH_SECONDS) + 900 )) --test_output=streamed --cache_test_results=no

fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) ./fuzz/run_fuzzers.sh
