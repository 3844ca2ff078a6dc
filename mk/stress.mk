# Life inside someone else's daemon: memory checks, the Python host,
# and the long soak. Included by the Makefile.
#   make test-valgrind   create/destroy cycles and the short stress test under valgrind
#   make test-python     tests/python/ctypes_host.py (a real foreign host, via ctypes)
#   make stress          minutes-long soak: 1,000,000-job rounds with a worker killer,
#                        a long proptest run of the FFI state machine, the full Python run
# test-valgrind and test-python are part of `make test`.

PYTHON   ?= python3
VALGRIND ?= valgrind --leak-check=full --error-exitcode=99 --errors-for-leak-kinds=definite \
            --trace-children=no --child-silent-after-fork=yes -q
STRESS_SOAK_SECONDS ?= 300

.PHONY: test-valgrind test-python stress

test: test-valgrind test-python

test-valgrind: lib $(TESTBIN)/test_host_cycles $(TESTBIN)/test_host_stress
	$(VALGRIND) $(TESTBIN)/test_host_cycles 50
	STRESS_JOBS=2000 STRESS_SECONDS=0 STRESS_KILL_MS=200 STRESS_STATS_MS=1 STRESS_TIMEOUT=300 \
	  $(VALGRIND) $(TESTBIN)/test_host_stress

test-python: lib
	$(PYTHON) tests/python/ctypes_host.py

stress: lib $(TESTBIN)/test_host_stress
	STRESS_JOBS=1000000 STRESS_SECONDS=$(STRESS_SOAK_SECONDS) \
	  STRESS_TIMEOUT=$$(( $(STRESS_SOAK_SECONDS) + 900 )) $(TESTBIN)/test_host_stress
	PROPTEST_CASES=2000 FFI_MAX_CALLS=200 $(CARGO) test --release --quiet --test ffi_state_machine
	$(PYTHON) tests/python/ctypes_host.py --full
