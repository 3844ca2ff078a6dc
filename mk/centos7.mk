# Issue 5: runs on CentOS/RHEL 7 (glibc 2.17, kernel 3.10, gcc 4.8); both
# checks below are part of `make test`.
#   make centos7        cross-build the .so against glibc 2.17 symbol versions
#                       (cargo-zigbuild, own target dir target/centos7; pip
#                       installs ziglang + cargo-zigbuild when missing), check
#                       it and the header with $(SHARED)/tools/check-centos7.sh,
#                       then run a C program against it under enosys-run.
#                       Output: build/centos7/libmd5pool.so.$(VERSION)
#   make test-enosys    the Rust tests (enosys-run as cargo's target runner)
#                       and the C tests (as TEST_WRAPPER) with every system
#                       call newer than Linux 3.10 failing with ENOSYS
#   make centos7-deps   only install ziglang + cargo-zigbuild (for .ci/run)

PYTHON       ?= python3
# versions proven here; any recent pair works
ZIGBUILD_PIP ?= ziglang==0.17.1 cargo-zigbuild==0.24.1
ENOSYS_RUN   := $(BUILD)/enosys-run

.PHONY: centos7 centos7-deps test-enosys
test: centos7 test-enosys

$(ENOSYS_RUN): $(SHARED)/tools/enosys-run.c
	@mkdir -p $(BUILD)
	gcc -O2 -Wall -Wextra -o $@ $<

centos7: lib $(ENOSYS_RUN)
	CARGO="$(CARGO)" PYTHON="$(PYTHON)" SHARED="$(SHARED)" ZIGBUILD_PIP="$(ZIGBUILD_PIP)" \
	  ENOSYS_RUN="$(abspath $(ENOSYS_RUN))" bash tests/centos7.sh

centos7-deps:
	PYTHON="$(PYTHON)" ZIGBUILD_PIP="$(ZIGBUILD_PIP)" bash tests/centos7.sh --deps-only

# Same tests, same binaries as test-rust / test-c: they must pass here exactly
# as they do there (the library falls back from close_range to /proc/self/fd,
# Rust std and glibc from statx, getrandom, clone3, rseq).
test-enosys: $(ENOSYS_RUN) lib $(C_TESTS)
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$(abspath $(ENOSYS_RUN))" $(CARGO) test --release --quiet
	TEST_WRAPPER="$(abspath $(ENOSYS_RUN))" tests/run_c_tests.sh $(C_TESTS)
