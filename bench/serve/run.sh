#!/usr/bin/env bash
# Bounded load test of `mome serve` on loopback: tokens/s and p50/p99 request latency at 1, 4
# and 16 concurrent clients, each sending non-streamed /v1/completions of 32 tokens.
# Usage: bench/serve/run.sh [--preset tiny|mini] [--requests-per-client N]
set -euo pipefail
preset=tiny
per_client=8
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) preset=$2; shift 2 ;;
    --requests-per-client) per_client=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
repo=$(cd "$(dirname "$0")/../.." && pwd)
cli="$repo/managed/Mome.Cli/bin/Release/net10.0/Mome.Cli.dll"
[[ -f $cli ]] || { echo "build the CLI first: cd $repo && dotnet build managed/Mome.Cli -c Release" >&2; exit 1; }
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
dotnet "$cli" model create --preset "$preset" --out "$work/m.gguf" >/dev/null
dotnet "$cli" serve --model "$work/m.gguf" --port "$port" --parallel 16 --queue 64 --ctx 256 >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

one_request() {
  # prints: seconds completion_tokens
  curl -s -o "$1" -w '%{time_total}' "http://127.0.0.1:$port/v1/completions" \
    -d '{"prompt": "Once upon a time", "max_tokens": 32, "temperature": 0.8, "seed": '"$2"'}' >"$1.time"
  echo "$(cat "$1.time") $(grep -o '"completion_tokens":[0-9]*' "$1" | cut -d: -f2)"
}
export -f one_request
export port

echo "mome serve load test: preset $preset, $per_client requests per client, 32 tokens each, $(date -u +%F)"
printf '%-8s %10s %10s %10s %10s\n' clients requests tokens/s p50_ms p99_ms
for clients in 1 4 16; do
  n=$((clients * per_client))
  start=$(date +%s.%N)
  seq "$n" | xargs -P "$clients" -I{} bash -c 'one_request "'"$work"'/r{}" {}' >"$work/results"
  wall=$(echo "$(date +%s.%N) - $start" | bc -l)
  tokens=$(awk '{s += $2} END {print s}' "$work/results")
  sort -n "$work/results" | awk -v n="$n" -v tokens="$tokens" -v wall="$wall" -v clients="$clients" '
    { t[NR] = $1 }
    END {
      p50 = t[int((n - 1) * 0.50) + 1]; p99 = t[int((n - 1) * 0.99) + 1]
      printf "%-8d %10d %10.1f %10.1f %10.1f\n", clients, n, tokens / wall, p50 * 1000, p99 * 1000
    }'
done
