#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang-14, -fsanitize=fuzzer,address,undefined) in
# build/fuzz and runs each for S seconds on its seed corpus (tests/fuzz/corpus/<harness>/).
#   tests/fuzz/run.sh --seconds 60                 # every harness, 60 s each
#   tests/fuzz/run.sh --seconds 10 --harness bank  # one harness
#   tests/fuzz/run.sh --make-corpus                # rewrite the seed corpora, run nothing
#   --seed N makes a run repeatable (0, the default, picks a new seed each time).
# Prints the executions of each harness; exits non-zero when a harness crashes, leaks, runs
# out of memory (a hostile header must not allocate more than --rss-mb) or times out on one
# input. Each crashing input is kept in build/fuzz/crashes/<harness>/ and its path printed;
# replay it with build/fuzz/tests/fuzz/mome_fuzz_<harness> <file>, and once fixed keep it in
# the corpus as tests/fuzz/corpus/<harness>/regression-<what>.
# Needs clang-14 and its runtimes: apt-get install clang-14 libclang-rt-14-dev
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=60
rss_mb=1024
seed=0
harnesses=()
make_corpus=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --harness) harnesses+=("$2"); shift 2 ;;
    --rss-mb) rss_mb=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --make-corpus) make_corpus=1; shift ;;
    *) echo "usage: $0 [--seconds S] [--harness gguf|bank|json]... [--rss-mb MB] [--seed N] [--make-corpus]" >&2; exit 2 ;;
  esac
done
[ ${#harnesses[@]} -gt 0 ] || harnesses=(gguf bank json)

cxx=$(command -v clang++-14 || true)
if [ -z "$cxx" ] || [ ! -f "$(clang-14 -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a" ]; then
  echo "libFuzzer is missing: apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 1
fi

dir=build/fuzz
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER="$cxx" \
  -DMOME_SANITIZE=address,undefined -DMOME_FUZZ=ON -DMOME_TESTS=OFF >/dev/null

if [ "$make_corpus" = 1 ]; then
  cmake --build "$dir" --parallel 2 --target mome_fuzz_make_corpus
  # Inputs that once crashed a harness (regression-*) stay; the writers' seeds are made anew.
  find tests/fuzz/corpus -type f ! -name 'regression-*' -delete 2>/dev/null || true
  mkdir -p tests/fuzz/corpus/gguf tests/fuzz/corpus/bank tests/fuzz/corpus/json
  "$dir/tests/fuzz/mome_fuzz_make_corpus" tests/fuzz/corpus
  ls -l tests/fuzz/corpus/*
  exit 0
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
# The parsers read paths, so each input is written to a file (fuzz_support.h): on tmpfs that
# costs a few microseconds, on a journaling disk it was half of the bank harness's time.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
summary=()
for h in "${harnesses[@]}"; do
  cmake --build "$dir" --parallel 2 --target "mome_fuzz_$h"
  work="$dir/work/$h"
  crashes="$dir/crashes/$h"
  mkdir -p "$work" "$crashes"
  log="$dir/$h.log"
  echo "=== fuzzing $h for $seconds s (log: $log)"
  set +e
  # New inputs go to the work folder; the committed seeds are only read.
  "$dir/tests/fuzz/mome_fuzz_$h" "$work" "tests/fuzz/corpus/$h" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" -seed="$seed" -print_final_stats=1 -artifact_prefix="$crashes/" >"$log" 2>&1
  status=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$status" -ne 0 ]; then
    failed=1
    grep -E '^==[0-9]+==ERROR|runtime error|^SUMMARY|ERROR: libFuzzer|Test unit written' "$log" | head -n 20 || true
    summary+=("$h: FAILED (exit $status) after ${execs:-?} executions; inputs kept in $crashes/")
  else
    summary+=("$h: ok, ${execs:-?} executions in $seconds s, corpus $(ls "$work" | wc -l) new inputs")
  fi
done
echo "=== fuzz summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
