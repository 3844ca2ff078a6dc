# Benchmarks side by side (the seed's Python, OpenSSL's MD5, the pool's overhead).
#   make bench                  full run (~10 min on a quiet 2-CPU machine): prints the table,
#                               writes BENCHMARKS.md, bench/results.json, bench/bench.svg
#   make bench BENCH_QUICK=1    small sizes, for debugging: writes build/bench/ only
#   make bench BENCH_RUNS=N     N rounds per section instead of each section's default
# Timings are reported, never asserted (not part of `make test`).

PYTHON      ?= python3
BENCH_QUICK ?=
BENCH_RUNS  ?=

.PHONY: bench

bench: lib
	$(PYTHON) bench/run.py $(if $(filter-out 0,$(BENCH_QUICK)),--quick) $(if $(BENCH_RUNS),--runs $(BENCH_RUNS))
