#!/usr/bin/env python3
"""The table bench/gpu/run.sh prints last: Mome's kernels (lab variant 2) against the PyTorch
baselines and the floors from the measured copy bandwidth and GEMM rate.

Router floor: max(key bytes / copy bandwidth, 2 N d B / GEMM rate). LoRA: the fraction of
the copy bandwidth achieved reading each sequence's experts once. Plain Python, no torch."""
import argparse
import json
import os
import re
import sys


def load_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", help="the folder run.sh wrote")
    a = p.parse_args(argv)
    base_path = os.path.join(a.out, "baselines.json")
    base = json.load(open(base_path)) if os.path.exists(base_path) else {}
    copy = base.get("copy_gbps", float("nan"))
    gemm = base.get("gemm_tflops", float("nan"))
    torch_router = {(r["d"], r["B"]): r["ms"] for r in base.get("router", [])}
    torch_lora = {r["r"]: r["ms"] for r in base.get("lora", [])}
    rows = []
    for name in sorted(os.listdir(a.out)):
        if not name.startswith("router_") or not name.endswith(".jsonl"):
            continue
        for r in load_lines(os.path.join(a.out, name)):
            if r["variant"] != 2:
                continue
            n, d, b = r["N"], r["d"], r["B"]
            floor = max(n * d * 2 / (copy * 1e6), 2.0 * n * d * b / (gemm * 1e9))
            t = torch_router.get((d, b))
            rows.append(("router flat bf16", f"N={n} d={d} B={b} k={r['k']}", r["ms"], t, t / r["ms"] if t else None,
                         f"floor {floor:.3f} ms, {r['ms'] / floor:.2f}x it", f"{r['differ_from_cpu']}/{r['checked']} differ"))
    for r in load_lines(os.path.join(a.out, "lora.jsonl")):
        if r["variant"] != 2:
            continue
        t = torch_lora.get(r["r"])
        gbps = r["bytes"] / (r["ms"] * 1e6)
        rows.append(("grouped LoRA bf16", f"{r['sequences']} seqs d={r['d']} r={r['r']} k={r['k']}", r["ms"], t,
                     t / r["ms"] if t else None, f"{gbps:.0f} GB/s = {gbps / copy:.0%} of copy", f"rel err {r['rel_error']:.1e}"))
    model_path = os.path.join(a.out, "baselines_model.json")
    hf = (json.load(open(model_path)) if os.path.exists(model_path) else {}).get("transformers_eager", {})
    perf_path = os.path.join(a.out, "backend_ops_perf.log")
    pattern = re.compile(r"perf (session small|llama3-8b shape) BF16 batch=(\d+): prefill (\d+) tokens/s.*decode (\d+) tokens/s"
                         r"(?: \(([\d.]+) ms a step; weights ([\d.]+) GB\))?")
    for line in open(perf_path) if os.path.exists(perf_path) else []:
        m = pattern.match(line)
        if not m:
            continue
        shape = "small" if m.group(1) == "session small" else "llama3-8b"
        b, prefill, decode = int(m.group(2)), float(m.group(3)), float(m.group(4))
        t = next((r for r in hf.get(shape, []) if r["batch"] == b), None)
        floor = ""
        if m.group(5) and b == 1:
            floor_ms = float(m.group(6)) * 1e9 / (copy * 1e9) * 1e3
            floor = f", weight floor {floor_ms:.2f} ms = {floor_ms / float(m.group(5)):.0%} reached"
        for what, mine, theirs in (("decode", decode, t and t["decode_tokens_per_s"]), ("prefill", prefill, t and t["prefill_tokens_per_s"])):
            rows.append((f"{shape} {what} (BF16)", f"batch {b}", 1000.0 / mine, 1000.0 / theirs if theirs else None,
                         theirs and mine / theirs, f"{mine:.0f} tokens/s{floor if what == 'decode' else ''}", "ms per 1000 tokens; vs transformers eager"))
    print(f"\ndevice {base.get('device', '?')}: copy {copy:.0f} GB/s (read + write), bf16 GEMM {gemm:.0f} TFLOP/s")
    print("| op | size | Mome ms | PyTorch ms | speed-up | vs ceiling | check |")
    print("|---|---|---|---|---|---|---|")
    for op, size, ms, t, speed, ceiling, check in rows:
        print(f"| {op} | {size} | {ms:.3f} | {t:.3f} | {speed:.1f}x | {ceiling} | {check} |" if t else
              f"| {op} | {size} | {ms:.3f} | - | - | {ceiling} | {check} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
