# Runs on CentOS/RHEL 7 (glibc 2.17, kernel 3.10, gcc 4.8); both checks below
# are part of `make test`.
#   make centos7        cross-build against glibc 2.17 symbol versions
#                       (cargo-zigbuild, own target dir target/centos7; pip
#                       installs ziglang + cargo-zigbuild when missing), check
#                       it and the header with tools/check-centos7.sh, and
#                       assemble the kit in build/centos7 (see tests/centos7.sh):
#                         lib/libmd5pool.so.$(VERSION) + soname links, lib/libmd5pool.a,
#                         lib/pkgconfig/md5pool.pc, include/md5pool.h, bin/hashd
#                       then build and run C programs against it under enosys-run.
#                       The .pc is relocatable (${pcfiledir}): copy the kit
#                       anywhere and point PKG_CONFIG_PATH at its lib/pkgconfig.
#   make test-enosys    the Rust tests (enosys-run as cargo's target runner)
#                       and the C tests (as TEST_WRAPPER) with every system
#                       call newer than Linux 3.10 failing with ENOSYS
#   make centos7-deps   only install ziglang + cargo-zigbuild (for .ci/run)

PYTHON       ?= python3
# versions proven here; any recent pair works
ZIGBUILD_PIP ?= ziglang==0.17.1 cargo-zigbuild==0.24.1
ENOSYS_RUN   := $(BUILD)/enosys-run
CENTOS7      := $(BUILD)/centos7
CENTOS7_PC   := $(CENTOS7)/lib/pkgconfig/md5pool.pc

.PHONY: centos7 centos7-deps test-enosys test-enosys-tool $(CENTOS7_PC)
test: centos7 test-enosys

$(ENOSYS_RUN): tools/enosys-run.c
	@mkdir -p $(BUILD)
	$(CC) -O2 $(WARN) -o $@ $<

# The filter itself: getrandom (number 318, Linux 3.17) fails with ENOSYS
# under it, and works without it.
GETRANDOM_IS_ENOSYS := import ctypes, errno; libc = ctypes.CDLL(None, use_errno=True); \
  raise SystemExit(0 if libc.syscall(318, 0, 0, 0) == -1 and ctypes.get_errno() == errno.ENOSYS else 1)
test-enosys-tool: $(ENOSYS_RUN)
	$(ENOSYS_RUN) $(PYTHON) -c '$(GETRANDOM_IS_ENOSYS)'
	! $(PYTHON) -c '$(GETRANDOM_IS_ENOSYS)'

$(CENTOS7_PC): md5pool.pc.in
	$(call write_pc,$${pcfiledir}/../..,$${prefix}/lib,$${prefix}/include)

centos7: lib $(ENOSYS_RUN) test-enosys-tool $(CENTOS7_PC)
	CARGO="$(CARGO)" PYTHON="$(PYTHON)" ZIGBUILD_PIP="$(ZIGBUILD_PIP)" STRIP_ARCHIVE="$(STRIP_ARCHIVE)" \
	  ENOSYS_RUN="$(abspath $(ENOSYS_RUN))" bash tests/centos7.sh

centos7-deps:
	PYTHON="$(PYTHON)" ZIGBUILD_PIP="$(ZIGBUILD_PIP)" bash tests/centos7.sh --deps-only

# Same tests, same binaries as test-rust / test-c: they must pass here exactly
# as they do there (the library falls back from close_range to /proc/self/fd,
# Rust std and glibc from statx, getrandom, clone3, rseq).
test-enosys: $(ENOSYS_RUN) lib $(C_TESTS)
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$(abspath $(ENOSYS_RUN))" $(CARGO) test --release --quiet
	TEST_WRAPPER="$(abspath $(ENOSYS_RUN))" tests/run_c_tests.sh $(C_TESTS)
