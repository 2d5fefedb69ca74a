#!/usr/bin/env python3
"""Whole-model baselines for bench/gpu/run.sh: Hugging Face transformers' LlamaForCausalLM
built from the same configs as `mome_backend_ops perf` uses (the `small` synthetic preset:
16384 vocab, 768 wide, 12 layers, 12/4 heads of 64, FFN 2048; and the Llama-3-8B shape),
random BF16 weights made on the GPU, eager. For each (batch, prompt) it times the prefill and
then 30 greedy decode steps with the KV cache (after 2 warm-up steps), as Mome's perf mode
does. Writes baselines_model.json under --out. Arguments are parsed before torch is
imported, so `--help` and `--dry-run` work anywhere."""
import argparse
import json
import os
import sys
import time


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--shapes", default="small,llama3-8b", help="comma-separated: small, llama3-8b")
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args(argv)
    a.shapes = a.shapes.split(",")
    for shape in a.shapes:
        if shape not in SHAPES:
            p.error(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    return a


SHAPES = {
    "small": dict(config=dict(vocab_size=16384, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                              head_dim=64, intermediate_size=2048, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
                              tie_word_embeddings=False),
                  runs=[(1, 128), (16, 128), (64, 128)]),
    "llama3-8b": dict(config=dict(vocab_size=128256, hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                  head_dim=128, intermediate_size=14336, max_position_embeddings=8192, rms_norm_eps=1e-5,
                                  rope_theta=500000.0, tie_word_embeddings=False,
                                  rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                                    original_max_position_embeddings=8192)),
                      runs=[(1, 2048), (16, 128), (64, 128)]),
}


def main(argv):
    a = parse(argv)
    if a.dry_run:
        print(json.dumps({"shapes": {k: SHAPES[k] for k in a.shapes}, "steps": a.steps}))
        return 0
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    result = {}
    for shape in a.shapes:
        config = LlamaConfig(**SHAPES[shape]["config"])
        torch.set_default_dtype(torch.bfloat16)
        with torch.device("cuda"):
            model = LlamaForCausalLM(config).eval()
        torch.set_default_dtype(torch.float32)
        rows = []
        for b, prompt in SHAPES[shape]["runs"]:
            ids = torch.randint(0, config.vocab_size, (b, prompt), device="cuda")
            with torch.no_grad():
                model(ids[:, :8])  # warm-up
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                out = model(ids, use_cache=True)
                torch.cuda.synchronize()
                prefill = time.perf_counter() - t0
                cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
                decode = 0.0
                for step in range(a.steps):
                    t1 = time.perf_counter()
                    out = model(token, past_key_values=cache, use_cache=True)
                    cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
                    torch.cuda.synchronize()
                    if step >= 2:
                        decode += time.perf_counter() - t1
            rows.append({"batch": b, "prompt": prompt, "prefill_tokens_per_s": b * prompt / prefill,
                         "decode_tokens_per_s": b * (a.steps - 2) / decode})
            print(json.dumps({shape: rows[-1]}), flush=True)
        result[shape] = rows
        del model
        torch.cuda.empty_cache()
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "baselines_model.json"), "w") as f:
        json.dump({"transformers_eager": result}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
