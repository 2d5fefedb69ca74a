#!/usr/bin/env bash
# The fuzz harnesses need clang-14 and its sanitizer/libFuzzer runtimes (tests/fuzz/run.sh);
# CI installs them when absent.
set -euo pipefail
if command -v clang++-14 >/dev/null && [ -f "$(clang-14 -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a" ]; then
  echo "clang-14 and libFuzzer already present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null
echo "installed: clang-14 libclang-rt-14-dev"
