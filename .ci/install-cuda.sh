#!/usr/bin/env bash
# Installs Debian's non-free CUDA toolkit (nvcc 11.8) so that every landing compile-checks
# the CUDA sources. Nothing here runs CUDA code: these machines have no GPU.
set -euo pipefail

if command -v nvcc >/dev/null 2>&1; then
  echo "nvcc already present: $(nvcc --version | tail -n 1)"
  exit 0
fi

main_sources=/etc/apt/sources.list.d/debian.sources
extra=/etc/apt/sources.list.d/mome-cuda-nonfree.sources
if [ ! -f "$extra" ]; then
  # The same mirror and suites as the machine's main Debian stanza, with contrib and non-free.
  uris=$(awk '/^URIs:/ {print $2; exit}' "$main_sources")
  suites=$(awk '/^Suites:/ {sub(/^Suites: */, ""); print; exit}' "$main_sources")
  keyring=$(awk '/^Signed-By:/ {print $2; exit}' "$main_sources")
  cat > "$extra" <<SRC
Types: deb
URIs: $uris
Suites: $suites
Components: contrib non-free
Signed-By: $keyring
SRC
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit clang-14 >/dev/null
echo "installed: $(nvcc --version | tail -n 1)"
