#!/bin/sh
# The .NET build's native step (native/Mome.Native.targets): configure the CMake build folder
# when it has no cache yet, then build it. Several projects of one solution import the
# targets and MSBuild may run them at once, so the folder is locked while this runs.
#   native/build-native.sh BUILD_DIR SOURCE_DIR BUILD_TYPE JOBS
set -e
dir=$1 src=$2 type=$3 jobs=$4
mkdir -p "$dir"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dir.lock"
  flock 9
fi
[ -f "$dir/CMakeCache.txt" ] || cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE="$type"
cmake --build "$dir" --parallel "$jobs"
