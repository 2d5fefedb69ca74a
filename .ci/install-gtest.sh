#!/usr/bin/env bash
# The native test suite needs GoogleTest; without it the test command fails on purpose
# (tests/native/CMakeLists.txt), so CI installs it when absent.
set -euo pipefail
if [ -f /usr/include/gtest/gtest.h ]; then
  echo "GoogleTest already present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends libgtest-dev >/dev/null
echo "installed: libgtest-dev"
