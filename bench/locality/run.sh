#!/usr/bin/env bash
# The locality trade-off (bench/RESULTS.md): tunes a bank with default options on a model and
# facts made here, then evaluates it at several gate thresholds (the saved, calibrated one among
# them): exact recall, interference KL and top-1 on unrelated prompts, false recall and KL on
# unseen questions, and generality on paraphrases.
# Usage: bench/locality/run.sh [--preset tiny|mini] [--init-std S] [--seed N] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
preset=tiny; std=0.25; seed=77; out=$(mktemp -d /tmp/mome-locality.XXXXXX)
while [ $# -gt 0 ]; do
  case $1 in
    --preset) preset=$2; shift 2 ;; --init-std) std=$2; shift 2 ;; --seed) seed=$2; shift 2 ;; --out) out=$2; shift 2 ;;
    *) echo "unknown option $1"; exit 2 ;;
  esac
done
mome() { dotnet run --project managed/Mome.Cli -c Release --no-build -- "$@"; }
dotnet build managed/Mome.Cli -c Release -v q > /dev/null
python3 bench/locality/make_sets.py "$out" --seed "$seed"
mome model create --preset "$preset" --init-std "$std" --seed "$seed" --out "$out/model.gguf"
start=$(date +%s)
mome tune --model "$out/model.gguf" --facts "$out/facts.jsonl" --out "$out/bank.mome" --epochs 60 | grep -E "^(Recall|Locality)"
echo "tuning wall time: $(( $(date +%s) - start )) s"
echo "| gate threshold | exact_recall | interference_kl | interference_kl_max | locality_top1 | unseen_false_recall | unseen_kl | generality |"
echo "|---|---|---|---|---|---|---|---|"
for gate in off 0.3 0.5 0.7 saved 0.95 0.99; do
  args=(); [ "$gate" = saved ] || args=(--gate "$gate")
  mome eval --model "$out/model.gguf" --memory "$out/bank.mome" --facts "$out/facts.jsonl" --unrelated "$out/unrelated.txt" \
    --unseen "$out/unseen.jsonl" --paraphrases "$out/paraphrases.jsonl" "${args[@]}" --json |
    python3 -c "import json,sys; d=json.load(sys.stdin); t=d['gate_threshold']; print('| ' + ('off' if t is None else f'{t:.4f}') + ('' if '$gate' != 'saved' else ' (calibrated)') + ' | ' + ' | '.join(f'{d[k]:.4g}' for k in ['exact_recall','interference_kl','interference_kl_max','locality_top1','unseen_false_recall','unseen_kl','generality']) + ' |')"
done
echo "sets and bank: $out"
