# The two commands a newcomer needs (see README.md):
#   make bench   runs the benchmark tool's default suite
#   make test    runs every test
# Each first installs whatever Debian packages are missing (tools/install_deps.sh).

BAZEL ?= bazel

.PHONY: test bench deps asan tsan

deps:
	@./tools/install_deps.sh

test: deps
	@./tools/test_summary.sh //...

bench: deps
	@$(BAZEL) run -c opt //db_bench_wal:bench_suite

asan: deps
	@./tools/test_summary.sh --config=asan //...

tsan: deps
	@./tools/test_summary.sh --config=tsan //...
