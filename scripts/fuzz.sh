#!/usr/bin/env bash
# Runs every fuzz target of flotilla-fuzz (built by `make fuzz-build` with libFuzzer) for SECONDS
# each, starting from its corpus under Fuzz/corpus/TARGET. A crash, trap or broken property stops
# that target, keeps the input under Fuzz/crashes/TARGET/ and makes this script fail; copy it to
# Fuzz/regressions/TARGET/ with the fix, where `swift test` replays it forever.
#
#   scripts/fuzz.sh SECONDS [TARGET...]      (default: every target)
#   FUZZ_GROW=1 scripts/fuzz.sh 600          also add the new inputs to Fuzz/corpus (make fuzz)
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(peer-frames raft-batch wal-segment node-snapshot manifest-command cluster-config requests)
binary=.build-fuzz/debug/flotilla-fuzz
[ -x "$binary" ] || { echo "error: $binary is missing: run 'make fuzz-build' first" >&2; exit 2; }

failed=()
for t in "${targets[@]}"; do
  mkdir -p "Fuzz/corpus/$t" "Fuzz/crashes/$t"
  work=$(mktemp -d)
  # New inputs go to a scratch folder; with FUZZ_GROW=1 they are merged into the corpus after.
  log=$(mktemp)
  # The Swift runtime's own backtracer would catch the trap before libFuzzer could keep the input.
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 FLOTILLA_FUZZ_TARGET=$t \
    timeout $((seconds + 120)) "$binary" -max_total_time="$seconds" -seed=1 -rss_limit_mb=4096 -timeout=30 \
    -artifact_prefix="Fuzz/crashes/$t/" -print_final_stats=1 "$work" "Fuzz/corpus/$t" >"$log" 2>&1
  status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  added=$(grep -o 'stat::new_units_added: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if grep -q 'no interesting inputs were found' "$log"; then
    # Coverage counters missing: the fuzzer would mutate blind. A build problem, not a finding.
    failed+=("$t")
    echo "fuzz $t: FAILED: the binary reports no coverage (was it built by 'make fuzz-build'?)"
  elif [ $status -ne 0 ]; then
    failed+=("$t")
    echo "fuzz $t: FAILED (exit $status) after ${runs:-?} inputs; input kept in Fuzz/crashes/$t/"
    grep -E 'Fatal error|ERROR: |SUMMARY|Test unit written' "$log" | head -5
  else
    echo "fuzz $t: ${seconds} s, ${runs:-?} inputs, ${cov:-cov: ?} edges, ${added:-0} new inputs, no finding"
  fi
  if [ "${FUZZ_GROW:-0}" = 1 ]; then
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 FLOTILLA_FUZZ_TARGET=$t "$binary" -merge=1 "Fuzz/corpus/$t" "$work" >/dev/null 2>&1
  fi
  rm -rf "$work" "$log"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no finding"
