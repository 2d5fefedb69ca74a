#!/usr/bin/env bash
# The one prepared GPU check (nvcc, CMake, PyTorch; no dotnet, no internet needed):
# builds the CUDA library, backend_ops and the kernel labs for sm_90, runs backend_ops,
# measures copy bandwidth and a BF16 GEMM, times Mome's router and grouped LoRA against
# PyTorch and a CUDA session's decode on the small synthetic preset, and prints one table last. Full logs go under $OUT (default ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
step() { echo "== $(date +%T) $*"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv || true
nvcc --version | tail -n 2
git rev-parse --short HEAD 2>/dev/null || echo "(no git)"

step "build (sm_90)"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > "$OUT/cmake.log" 2>&1 || { tail -n 30 "$OUT/cmake.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target mome_cuda mome_backend_ops mome_router_lab mome_lora_lab > "$OUT/build.log" 2>&1 \
  || { grep -E "error" "$OUT/build.log" | head -n 30; exit 1; }
BIN=build-gpu

step "backend_ops test"
timeout 180 "$BIN/tests/native/backend_ops/mome_backend_ops" test > "$OUT/backend_ops.log" 2>&1
BACKEND_RC=$?
tail -n 40 "$OUT/backend_ops.log"

step "backend_ops perf (every op on cuda; router; whole-model prefill and decode: small preset, Llama-3-8B shape made on the device)"
timeout 200 "$BIN/tests/native/backend_ops/mome_backend_ops" perf --backend cuda > "$OUT/backend_ops_perf.log" 2>&1 || true
grep -E "^perf" "$OUT/backend_ops_perf.log" | tail -n 20

step "PyTorch baselines"
timeout 150 python3 bench/gpu/baselines.py --out "$OUT" > "$OUT/baselines.log" 2>&1 || tail -n 20 "$OUT/baselines.log"

step "transformers baselines (small preset and Llama-3-8B shapes)"
timeout 200 python3 bench/gpu/baselines_model.py --out "$OUT" > "$OUT/baselines_model.log" 2>&1 || tail -n 20 "$OUT/baselines_model.log"

step "router lab"
for d in 128 256; do
  timeout 60 "$BIN/native/dev/cuda/mome_router_lab" 1048576 "$d" 1 16 64 256 1024 > "$OUT/router_$d.jsonl" 2> "$OUT/router_$d.err" \
    || tail -n 5 "$OUT/router_$d.err"
done
step "grouped LoRA lab"
timeout 60 "$BIN/native/dev/cuda/mome_lora_lab" 256 4096 1 2 4 8 > "$OUT/lora.jsonl" 2> "$OUT/lora.err" || tail -n 5 "$OUT/lora.err"

step "ILGPU engine on the CUDA accelerator (optional: build/gpu-cli.tar.xz from bench/gpu/publish-cli.sh, carried)"
if [ -f build/gpu-cli.tar.xz ]; then
  rm -rf "$OUT/gpu-cli" && tar -xJf build/gpu-cli.tar.xz -C "$OUT" \
    && DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 timeout 300 python3 bench/gpu/ilgpu_check.py "$OUT/gpu-cli/Mome.Cli" "$OUT" | tee "$OUT/ilgpu.jsonl"
  rm -rf "$OUT/gpu-cli" "$OUT"/ilgpu-*.gguf
else
  echo "skipped: no build/gpu-cli.tar.xz"
fi

step "summary"
echo "backend_ops exit code: $BACKEND_RC (0 passed, 1 failed)"
python3 bench/gpu/summary.py "$OUT" | tee "$OUT/summary.md"
