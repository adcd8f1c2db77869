#!/usr/bin/env bash
# Runs cgrad's libFuzzer targets (fuzz/fuzz_<target>.c) for a bounded time.
#
#   bash fuzz/run.sh TARGET SECONDS [libFuzzer flags...]
#   bash fuzz/run.sh all 600          # the long run: every target, 10 min each
#
# TARGET is npy, safetensors, print, conv, autograd or all. The fuzzers are
# taken from $FUZZ_BUILD/fuzz (default build-fuzz; configure it with
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCGRAD_FUZZ=ON
#         -DCGRAD_BUILD_TESTS=OFF -DCGRAD_BUILD_EXAMPLES=OFF
#         -DCGRAD_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build build-fuzz -j
# ; CMAKE_BUILD_TYPE=Debug builds in seconds instead of minutes, the
# instrumented AVX-512 conv kernels being slow to optimise).
# FUZZ_PARALLEL=2 runs two targets at a time (one core each). Each
# target runs on a scratch copy of its committed corpus fuzz/corpus/TARGET,
# so the committed seeds never change; set FUZZ_KEEP=DIR to keep the grown
# corpora in DIR/TARGET. A crash, sanitizer report, leak, timeout or
# out-of-memory saves the input as $FUZZ_BUILD/fuzz-findings/TARGET/... and
# makes the script exit non-zero (reproduce: $FUZZ_BUILD/fuzz/fuzz_TARGET
# FILE). The last lines of each run give executions, coverage (cov: edges,
# ft: features) and corpus size.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FUZZ_BUILD:-build-fuzz}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac

if [ $# -lt 2 ]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
target="$1"; seconds="$2"; shift 2
all_targets="npy safetensors print conv autograd"
if [ "$target" = all ]; then targets="$all_targets"; else targets="$target"; fi

# One fuzzer run; its report goes to $build/fuzz-findings/$1.summary.
run_one() {
  local t="$1" bin="$build/fuzz/fuzz_$1" seeds="$root/fuzz/corpus/$1"
  local findings="$build/fuzz-findings/$1" log="$build/fuzz-findings/$1.log"
  local out="$build/fuzz-findings/$1.summary" scratch rc
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/cgrad-fuzz-$t.XXXXXX")"
  cp "$seeds"/* "$scratch"/
  mkdir -p "$findings"
  {
    echo "=== fuzz_$t for ${seconds} s ($(ls "$scratch" | wc -l) seeds)"
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
      "$bin" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$findings/" "${flags[@]}" \
        "$scratch" >"$log" 2>&1
    rc=$?
    # the last status line and the final statistics
    grep -aE '^#[0-9]+' "$log" | tail -1
    grep -aE '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
    echo "corpus: $(ls "$scratch" | wc -l) files"
    if [ $rc -ne 0 ]; then
      echo "fuzz_$t: FINDING (exit $rc); log $log, inputs in $findings"
      grep -aE 'ERROR|FUZZ FINDING|SUMMARY|runtime error' "$log" | head -5
    fi
  } >"$out" 2>&1
  if [ -n "${FUZZ_KEEP:-}" ]; then
    mkdir -p "$FUZZ_KEEP/$t" && cp "$scratch"/* "$FUZZ_KEEP/$t"/
  fi
  rm -rf "$scratch"
  return $rc
}

flags=("$@")
for t in $targets; do
  if [ ! -x "$build/fuzz/fuzz_$t" ] || [ ! -d "$root/fuzz/corpus/$t" ]; then
    echo "fuzz/run.sh: no fuzzer '$t' in $build/fuzz or corpus fuzz/corpus/$t" >&2
    exit 2
  fi
done
mkdir -p "$build/fuzz-findings"

# FUZZ_PARALLEL fuzzers at a time (default 1).
status=0
pids=() names=()
reap() {

  if ! wait "${pids[0]}"; then status=1; fi
  cat "$build/fuzz-findings/${names[0]}.summary"
  pids=("${pids[@]:1}") names=("${names[@]:1}")
}
for t in $targets; do
  run_one "$t" &
  pids+=("$!") names+=("$t")
  if [ "${#pids[@]}" -ge "${FUZZ_PARALLEL:-1}" ]; then reap; fi
done
while [ "${#pids[@]}" -gt 0 ]; do reap; done
[ $status -eq 0 ] || echo "fuzz/run.sh: FINDINGS (see above)" >&2
exit $status
