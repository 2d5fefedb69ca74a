#!/usr/bin/env python3
"""PyTorch baselines for bench/gpu/run.sh, on the same GPU and sizes as Mome's kernel labs.

Measures once: the device's copy bandwidth (bytes read + written) and a large BF16 GEMM's
rate. Then, per size: the router as `q @ K.T` + `torch.topk` (BF16 keys), and grouped LoRA
as an index gather of each sequence's experts + `torch.bmm` (BF16). Times are CUDA-event
medians with L2 flushed before each run. Writes baselines.json under --out.
Arguments are parsed before torch is imported, so `--help` and `--dry-run` work anywhere.
"""
import argparse
import json
import os
import sys


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for baselines.json")
    p.add_argument("--n", type=int, default=1 << 20, help="experts (keys) of the router")
    p.add_argument("--dims", default="128,256", help="key dimensions")
    p.add_argument("--batches", default="1,16,64,256,1024", help="query batch sizes")
    p.add_argument("--k", type=int, default=32, help="experts per query")
    p.add_argument("--lora-d", type=int, default=4096, help="hidden size of grouped LoRA")
    p.add_argument("--ranks", default="1,2,4,8", help="LoRA ranks")
    p.add_argument("--sequences", type=int, default=256, help="decode sequences (one token each) for grouped LoRA")
    p.add_argument("--lora-experts", type=int, default=1 << 14, help="experts in the LoRA table (as the lab)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit (no torch needed)")
    a = p.parse_args(argv)
    a.dims = [int(x) for x in a.dims.split(",")]
    a.batches = [int(x) for x in a.batches.split(",")]
    a.ranks = [int(x) for x in a.ranks.split(",")]
    return a


def main(argv):
    a = parse(argv)
    plan = {"router": [(d, b) for d in a.dims for b in a.batches], "lora": a.ranks}
    if a.dry_run:
        print(json.dumps({"plan": plan, "n": a.n, "k": a.k, "lora_d": a.lora_d, "sequences": a.sequences}))
        return 0

    import torch  # noqa: E402  (only on the GPU machine)

    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    flush = torch.empty(2 * getattr(props, "L2_cache_size", 64 << 20), dtype=torch.uint8, device=dev)

    def median_ms(fn, repeats):
        fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            flush.zero_()
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
        times.sort()
        return times[len(times) // 2]

    out = {"device": props.name, "torch": torch.__version__}
    src = torch.randn(1 << 29, device=dev, dtype=torch.float32)  # 2 GiB
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), 10)
    out["copy_gbps"] = 2 * src.numel() * 4 / ms / 1e6
    del src, dst
    m = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    ms = median_ms(lambda: m @ m, 10)
    out["gemm_tflops"] = 2 * 8192 ** 3 / ms / 1e9
    del m

    out["router"] = []
    for d in a.dims:
        keys = torch.randn(a.n, d, device=dev, dtype=torch.bfloat16)
        for b in a.batches:
            q = torch.randn(b, d, device=dev, dtype=torch.float32)

            def route():
                scores = (q.to(torch.bfloat16) @ keys.T).float() / d ** 0.5
                top = torch.topk(scores, a.k, dim=1)
                return top.indices, torch.softmax(top.values, dim=1)

            out["router"].append({"d": d, "B": b, "ms": median_ms(route, a.repeats)})
            print(json.dumps({"router": out["router"][-1]}), flush=True)
        del keys

    out["lora"] = []
    s, d, k = a.sequences, a.lora_d, a.k
    u = torch.randn(s, d, device=dev, dtype=torch.float32)
    for r in a.ranks:
        A = torch.randn(a.lora_experts, r, d, device=dev, dtype=torch.bfloat16) * 0.3
        B = torch.randn(a.lora_experts, r, d, device=dev, dtype=torch.bfloat16) * 0.3
        idx = torch.randint(0, a.lora_experts, (s, k), device=dev)
        w = torch.full((s, k), 1.0 / k, device=dev)

        def lora():
            ag = A[idx].reshape(s, k * r, d)                      # each sequence's experts, gathered
            z = torch.bmm(ag, u.to(torch.bfloat16).unsqueeze(2))  # (s, k*r, 1)
            z = (z.reshape(s, k, r) * w.unsqueeze(2).to(z.dtype)).reshape(s, 1, k * r)
            bg = B[idx].reshape(s, k * r, d)
            return u + 2.0 * torch.bmm(z, bg).squeeze(1).float()

        out["lora"].append({"r": r, "ms": median_ms(lora, a.repeats), "bytes": s * k * r * d * 2 * 2})
        print(json.dumps({"lora": out["lora"][-1]}), flush=True)
        del A, B
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "baselines.json"), "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
