#!/usr/bin/env python3
"""Whole-model baseline for bench/gpu/run.sh: Hugging Face transformers' LlamaForCausalLM built
from the same config as Mome's `small` synthetic preset (16384 vocab, 768 wide, 12 layers,
12/4 heads of 64, FFN 2048), random BF16 weights, eager. Times prefill (128 tokens per
sequence) and 32 greedy decode steps with the KV cache at batch 1, 16 and 64, as
`mome_backend_ops perf` does for a CUDA session. Writes baselines_model.json under --out.
Arguments are parsed before torch is imported, so `--help` and `--dry-run` work anywhere."""
import argparse
import json
import os
import sys
import time


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args(argv)
    a.batches = [int(x) for x in a.batches.split(",")]
    return a


SMALL = dict(vocab_size=16384, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
             head_dim=64, intermediate_size=2048, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
             tie_word_embeddings=False)


def main(argv):
    a = parse(argv)
    if a.dry_run:
        print(json.dumps({"config": SMALL, "batches": a.batches, "prompt": a.prompt, "steps": a.steps}))
        return 0
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**SMALL)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    rows = []
    for b in a.batches:
        ids = torch.randint(0, SMALL["vocab_size"], (b, a.prompt), device="cuda")
        with torch.no_grad():
            model(ids)  # warm-up
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = model(ids, use_cache=True)
            torch.cuda.synchronize()
            prefill = time.perf_counter() - t0
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            t1 = time.perf_counter()
            for _ in range(a.steps):
                out = model(token, past_key_values=cache, use_cache=True)
                cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            decode = time.perf_counter() - t1
        rows.append({"batch": b, "prefill_tokens_per_s": b * a.prompt / prefill, "decode_tokens_per_s": b * a.steps / decode})
        print(json.dumps(rows[-1]), flush=True)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "baselines_model.json"), "w") as f:
        json.dump({"transformers_eager_small": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
