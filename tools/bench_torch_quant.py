#!/usr/bin/env python3
"""PyTorch eager baseline for the GPU quantize kernels: the golden generator's implementation
(tools/gen_golden.py, the same math ModelOpt's export writes in torch) timed on the same GPU and
the same bf16 tensor that microscale_gpu_bench saved, with CUDA events, medians after warm-up.

Usage (GPU machine):
  microscale_gpu_bench --save-weights /tmp/w.bin > ours.txt
  python3 tools/bench_torch_quant.py --weights /tmp/w.bin --rows 14336 --cols 4096 --ours ours.txt
With --ours it prints the side-by-side table: PyTorch ms, microscale ms (kernel + amax pass, the
same work), and the speed-up.
"""

import argparse
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_golden as gg  # noqa: E402

# microscale_gpu_bench row name -> how to run the same work in torch
MODES = [
    ("nvfp4 max (dynamic)", lambda ctx, w: gg.nvfp4_quantize(ctx, w, "nvfp4_dynamic")),
    ("nvfp4 max (static)", lambda ctx, w: gg.nvfp4_quantize(ctx, w, "nvfp4_static_max")),
    ("nvfp4 four-over-six", lambda ctx, w: gg.nvfp4_quantize(ctx, w, "nvfp4_four_over_six")),
    ("nvfp4 fp8 sweep (126)", lambda ctx, w: gg.nvfp4_quantize(ctx, w, "nvfp4_fp8_sweep")),
    ("nvfp4 mse (39)", lambda ctx, w: gg.nvfp4_quantize(ctx, w, "nvfp4_mse")),
    ("fp8 per-tensor", lambda ctx, w: gg.fp8_quantize(w)),
    ("mxfp4", lambda ctx, w: gg.mxfp4_quantize(ctx, w)),
    ("mxfp8", lambda ctx, w: gg.mxfp8_quantize(w)),
]


def time_ms(fn, iters, warmup=2):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def parse_ours(path):
    """kernel name -> ms including the amax pass (column 5 of microscale_gpu_bench)."""
    ours = {}
    for line in open(path):
        for name, _ in MODES:
            if line.startswith(name):
                nums = re.findall(r"[-+]?\d+\.\d+|\d+", line[len(name):])
                ours[name] = float(nums[3])  # ms, GB/s, %copy, ms(+amax), ...
    return ours


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--rows", type=int, default=14336)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--ours", help="microscale_gpu_bench output, for the side-by-side table")
    args = ap.parse_args()
    dev = torch.device("cuda")
    raw = np.fromfile(args.weights, dtype=np.uint16)
    assert raw.size == args.rows * args.cols, f"{args.weights}: {raw.size} elements, expected {args.rows * args.cols}"
    w = torch.from_numpy(raw.view(np.int16)).to(dev).view(torch.bfloat16).view(args.rows, args.cols)
    ctx = gg.Ctx(dev)
    ours = parse_ours(args.ours) if args.ours else {}
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}; weight [{args.rows}, {args.cols}] bf16; "
          f"medians of {args.iters} runs")
    print(f"{'kernel':24s} {'torch ms':>10s} {'microscale ms':>14s} {'speed-up':>9s}")
    for name, fn in MODES:
        iters = args.iters if "sweep" not in name and "mse" not in name else max(3, args.iters // 2)
        t = time_ms(lambda: fn(ctx, w), iters)
        o = ours.get(name)
        if o:
            print(f"{name:24s} {t:10.3f} {o:14.3f} {t / o:8.1f}x")
        else:
            print(f"{name:24s} {t:10.3f}")
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
