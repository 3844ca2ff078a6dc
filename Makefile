# md5pool: the C user's entry point.
#   make            build the library (build/lib) and the header (include/md5pool.h)
#   make demo       run the seed's experiment through the library
#   make test       every test: Rust, C, header conformance, lint
# Issue-specific targets live in mk/*.mk (install, bench, centos7, stress, ...).

CARGO   ?= cargo
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c99 -Wall -Wextra -Wpedantic -Werror
# The team's shared folder (API contract, CentOS 7 tools): beside this checkout,
# else beside the repository it was cloned from (a CI clone in a temporary dir).
SHARED  ?= $(firstword $(wildcard ../shared) \
             $(wildcard $(shell git config --get remote.origin.url 2>/dev/null)/../shared) \
             ../shared)

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))

BUILD   := build
LIBDIR  := $(BUILD)/lib
BINDIR  := $(BUILD)/bin
TESTBIN := $(BUILD)/tests
RUST_SO := target/release/libmd5pool.so
RUST_A  := target/release/libmd5pool.a
SO_REAL := $(LIBDIR)/libmd5pool.so.$(VERSION)
SO_NAME := $(LIBDIR)/libmd5pool.so.$(SOMAJOR)
SO_DEV  := $(LIBDIR)/libmd5pool.so
STATIC  := $(LIBDIR)/libmd5pool.a
HEADER  := include/md5pool.h

# Link a C program against the built shared library, found at run time too.
LINK_POOL := -L$(LIBDIR) -lmd5pool -Wl,-rpath,$(abspath $(LIBDIR))

.PHONY: all lib demo test test-rust test-c test-engines conformance header-check lint clean
all: lib

# cargo decides what to rebuild; build.rs regenerates the header when it changed.
lib:
	$(CARGO) build --release --quiet
	@mkdir -p $(LIBDIR)
	@# Replace by rename, never in place: running programs may have the old one mapped.
	@# The temporary names are per make process, so concurrent builds do not collide.
	cp -f $(RUST_SO) $(SO_REAL).$$$$.tmp && mv -f $(SO_REAL).$$$$.tmp $(SO_REAL)
	ln -sf libmd5pool.so.$(VERSION) $(SO_NAME)
	ln -sf libmd5pool.so.$(SOMAJOR) $(SO_DEV)
	cp -f $(RUST_A) $(STATIC).$$$$.tmp && mv -f $(STATIC).$$$$.tmp $(STATIC)

$(HEADER) $(SO_REAL): lib

$(BINDIR)/demo: c_examples/demo.c $(HEADER) | lib
	@mkdir -p $(BINDIR)
	$(CC) $(CFLAGS) $(WARN) -D_GNU_SOURCE -Iinclude $< -o $@ $(LINK_POOL)

demo: lib $(BINDIR)/demo
	./$(BINDIR)/demo $(DEMO_ARGS)

# ---------------------------------------------------------------- tests
C_TEST_SRC := $(wildcard tests/c/test_*.c)
C_TESTS    := $(patsubst tests/c/%.c,$(TESTBIN)/%,$(C_TEST_SRC))

$(TESTBIN)/%: tests/c/%.c tests/c/check.h $(HEADER) | lib
	@mkdir -p $(TESTBIN)
	$(CC) $(CFLAGS) $(WARN) -D_GNU_SOURCE -Iinclude -Itests/c $< -o $@ $(LINK_POOL) -lpthread

test: lint header-check conformance test-rust test-c test-engines

# Every kernel engine this CPU runs, through the pool (MD5POOL_KERNEL forces one;
# the kernel's own tests in tests/kernel_engines.rs cover each in-process), and
# an AVX2 engine free of AVX-512 instructions (they would fault on AVX2-only CPUs).
ENGINE_TESTS := $(TESTBIN)/test_api_results $(TESTBIN)/test_api_cancel $(TESTBIN)/test_api_lanes
test-engines: lib $(ENGINE_TESTS)
	for engine in scalar avx2 avx512; do \
	  echo "MD5POOL_KERNEL=$$engine"; \
	  MD5POOL_KERNEL=$$engine tests/run_c_tests.sh $(ENGINE_TESTS) || exit 1; \
	done
	tests/check_avx2_no_avx512.sh $(SO_REAL)

test-rust:
	$(CARGO) test --release --quiet

test-c: lib $(C_TESTS)
	tests/run_c_tests.sh $(C_TESTS)

# The generated header must match the contract (../shared/api/conformance.c).
conformance: lib
	$(CC) -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only -Iinclude $(SHARED)/api/conformance.c

# build.rs rewrites include/md5pool.h when the Rust side changed: a committed
# header that differs from the generated one is stale.
header-check: lib
	@git diff --exit-code --stat -- $(HEADER) || { echo "include/md5pool.h is stale: commit the regenerated header"; exit 1; }

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --quiet --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(BUILD)

-include mk/*.mk
