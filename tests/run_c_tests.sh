#!/usr/bin/env bash
# Runs each C test program given as an argument, each under a time limit, and
# prints one summary line. $TEST_WRAPPER (e.g. "valgrind -q --error-exitcode=99")
# runs in front of each program when set.
set -u
limit=${TEST_TIMEOUT:-300}
passed=0 failed=0 failures=()
for t in "$@"; do
  name=$(basename "$t")
  start=$(date +%s%N)
  timeout -k 5 "$limit" ${TEST_WRAPPER:-} "$t" >"$t.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1)); verdict=ok
  else
    failed=$((failed + 1)); verdict="FAILED (exit $rc)"; failures+=("$name")
  fi
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf '%-40s %s  %d.%03ds\n' "$name" "$verdict" $((ms / 1000)) $((ms % 1000))
  if [ "$verdict" != ok ]; then sed 's/^/    /' "$t.log" | tail -n 30; fi
done
echo "C tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
