#!/usr/bin/env bash
# Fallback for .ci/run where the workplace's shared/tools/fresh-machine.sh is not present
# (same usage: fresh-clone.sh [repo] [command ...]):
# clone the repository's committed state into a temporary folder and run the README's
# `dotnet ...` commands there with a new HOME (no cached demo data) and with FAISS and the
# CUDA toolkit made invisible in a private mount namespace (needs root and `unshare -m`).
# Prints "clone: DIR" last; exits non-zero when any command fails.
set -u
repo=$(cd "${1:-.}" && git rev-parse --show-toplevel) || exit 2
scratch=$(mktemp -d /tmp/mome-fresh.XXXXXX)
git clone -q "$repo" "$scratch/clone" || exit 2
mkdir -p "$scratch/home" "$scratch/nothing"

# The command given after the repository, or else the lines starting with `dotnet` inside the
# README's ```bash blocks.
shift || true
if [ $# -gt 0 ]; then printf '%s\n' "$*" > "$scratch/commands"
else awk '/^```bash/{inside=1; next} /^```/{inside=0} inside && /^dotnet /' "$scratch/clone/README.md" > "$scratch/commands"; fi

masks=""
for dir in /usr/include/faiss /usr/lib/nvidia-cuda-toolkit /usr/lib/cuda /usr/local/cuda; do
  [ -e "$dir" ] && masks+="mount --bind '$scratch/nothing' '$dir' && "
done
for file in /usr/bin/nvcc /usr/lib/x86_64-linux-gnu/libfaiss.so /usr/lib/x86_64-linux-gnu/libfaiss.a; do
  [ -e "$file" ] && masks+="mount --bind /dev/null '$file' && "
done
isolate() { unshare -m sh -c "$masks $1"; }
unshare -m true 2>/dev/null || { echo "warning: cannot unshare mounts here; optional packages stay visible"; isolate() { sh -c "$1"; }; }

result=0
n=0
while IFS= read -r line; do
  n=$((n + 1))
  echo "=== [$n] $line"
  began=$(date +%s)
  isolate "cd '$scratch/clone' && HOME='$scratch/home' DOTNET_CLI_HOME='$scratch/home' NUGET_PACKAGES='${NUGET_PACKAGES:-$HOME/.nuget/packages}' $line" \
    > "$scratch/log$n" 2>&1 < /dev/null
  code=$?
  [ "$code" -eq 0 ] || result=1
  echo "exit $code after $(( $(date +%s) - began )) s; last lines of $scratch/log$n:"
  tail -n 6 "$scratch/log$n"
done < "$scratch/commands"
echo "clone: $scratch/clone"
exit $result
