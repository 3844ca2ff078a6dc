# md5pool: the C user's entry point.
#   make            build the library (build/lib), the header (include/md5pool.h)
#                   and the example daemon (build/bin/hashd); needs cargo (rustup)
#   make demo       run the seed's experiment through the library
#   make test       every test: Rust, C, ABI, lint, and those of mk/*.mk
# More targets live in mk/*.mk (install, centos7, rpm, bench, stress, ...).

CARGO   ?= cargo
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c99 -Wall -Wextra -Wpedantic -Werror
OBJCOPY ?= objcopy
# Optional: a folder with the API contract beside this checkout. `make test`
# also compiles its conformance check when it is there.
SHARED  ?= ../shared

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

# cargo embeds LLVM bitcode (.llvmbc) in the crate's object of the staticlib
# because the crate is also an rlib for LTO; binutils' nm and ar then read that
# object as LTO input, fail, and see no pool_ symbol. C linkers need neither
# the bitcode nor the debug info (37 MB -> 5 MB; the .so keeps its line tables).
STRIP_ARCHIVE := $(OBJCOPY) --remove-section=.llvmbc --remove-section=.llvmcmd --strip-debug

# Link a C program against the built shared library, found at run time too.
LINK_POOL := -L$(LIBDIR) -lmd5pool -Wl,-rpath,$(abspath $(LIBDIR))

.PHONY: all lib demo test test-rust test-c test-engines conformance abi-check header-check lint clean
all: lib hashd

# cargo decides what to rebuild; build.rs regenerates the header when it changed.
lib:
	$(if $(shell command -v $(CARGO)),,$(error $(CARGO) not found: install Rust with rustup, then run make again))
	$(CARGO) build --release --quiet
	@mkdir -p $(LIBDIR)
	@# Replace by rename, never in place: running programs may have the old one mapped.
	@# The temporary names are per make process, so concurrent builds do not collide.
	cp -f $(RUST_SO) $(SO_REAL).$$$$.tmp && mv -f $(SO_REAL).$$$$.tmp $(SO_REAL)
	ln -sf libmd5pool.so.$(VERSION) $(SO_NAME)
	ln -sf libmd5pool.so.$(SOMAJOR) $(SO_DEV)
	$(STRIP_ARCHIVE) $(RUST_A) $(STATIC).$$$$.tmp && mv -f $(STATIC).$$$$.tmp $(STATIC)

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

test: lint header-check abi-check $(if $(wildcard $(SHARED)/api/conformance.c),conformance) \
      test-rust test-c test-engines

# Every kernel engine this CPU runs, through the pool (MD5POOL_KERNEL forces one;
# the kernel's own tests in tests/kernel_engines.rs cover each in-process), and
# an AVX2 engine free of AVX-512 instructions (they would fault on AVX2-only CPUs).
ENGINE_TESTS := $(TESTBIN)/test_api_results $(TESTBIN)/test_api_cancel
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

# The generated header keeps the ABI of every released version (names,
# values, signatures, field offsets), in C99 and in gcc 4.8's default GNU89.
abi-check: lib
	@mkdir -p $(TESTBIN)
	$(CC) -std=gnu89 -Wall -Wextra -Werror -fsyntax-only -Iinclude tests/c/abi_check.c
	$(CC) $(CFLAGS) $(WARN) -Iinclude tests/c/abi_check.c -o $(TESTBIN)/abi_check $(LINK_POOL)
	./$(TESTBIN)/abi_check

# The generated header must match the team's contract, when it is beside the
# checkout (an extra: `make test` runs it only then).
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
