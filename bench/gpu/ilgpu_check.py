#!/usr/bin/env python3
"""The ILGPU step of bench/gpu/run.sh: `mome logits` of one token sequence from the native
engine (CPU) and from the ILGPU engine on an accelerator (default cuda; cpu to try it here), for F32 and F16 synthetic models;
prints one JSON line per model with the largest |difference| and each engine's wall time."""
import json
import os
import subprocess
import sys
import time


def logits(cli, model, tokens, engine, accelerator):
    cmd = [cli, "logits", "--model", model, "--tokens", tokens, "--json", "--engine", engine, "--accelerator", accelerator]
    start = time.time()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {run.returncode}: {run.stderr.strip()[-400:]}")
    return json.loads(run.stdout)["logits"], time.time() - start


def main(cli, out, accelerator="cuda"):
    tokens = ",".join(str(3 + (i * 37) % 250) for i in range(64))
    for weight_type, bound in (("f32", 1e-4), ("f16", 2e-2)):
        model = os.path.join(out, f"ilgpu-{weight_type}.gguf")
        subprocess.run([cli, "model", "create", "--preset", "mini", "--init-std", "0.1", "--weight-type", weight_type, "--seed", "7",
                        "--out", model], check=True, capture_output=True)
        native, native_s = logits(cli, model, tokens, "native", "cpu")
        ilgpu, ilgpu_s = logits(cli, model, tokens, "ilgpu", accelerator)
        worst = max(abs(a - b) for ra, rb in zip(native, ilgpu) for a, b in zip(ra, rb))
        print(json.dumps({"weights": weight_type, "accelerator": accelerator, "positions": len(native), "max_abs_diff": worst, "bound": bound,
                          "ok": worst <= bound, "native_s": round(native_s, 2), "ilgpu_s": round(ilgpu_s, 2)}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
