#!/usr/bin/env bash
# The native test suite (CTest) under sanitizers, in a build folder of its own.
#   tests/sanitize/run.sh                       # ASan + UBSan in build/sanitize
#   tests/sanitize/run.sh --sanitize thread     # TSan in build/sanitize-thread
# Exits non-zero when the build fails or any test fails or reports a finding (UBSan does not
# recover, ASan and TSan stop the process), printing the failing tests' output.
set -euo pipefail
cd "$(dirname "$0")/../.."

sanitize=address,undefined
jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "usage: $0 [--sanitize address,undefined|thread] [--jobs N]" >&2; exit 2 ;;
  esac
done
case "$sanitize" in
  thread) dir=build/sanitize-thread ;;
  *) dir=build/sanitize ;;
esac

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

start=$(date +%s)
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOME_SANITIZE="$sanitize" -DMOME_TESTS=ON >/dev/null
cmake --build "$dir" --parallel "$jobs" --target mome_native_tests mome_backend_ops
built=$(date +%s)
ctest --test-dir "$dir" --output-on-failure --parallel "$jobs"
echo "sanitizers $sanitize: build $((built - start)) s, tests $(( $(date +%s) - built )) s"
