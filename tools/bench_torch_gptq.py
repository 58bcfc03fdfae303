#!/usr/bin/env python3
"""PyTorch baseline for microscale_gpu_bench_gptq: a straightforward GPTQ on the same GPU, the same
math as src/algo/gptq.cpp and ModelOpt's gptq (spec nvfp4-modelopt.md §5.5) written the way the
GPTQ paper's reference code and ModelOpt write it:

  dead inputs (H[i,i] == 0): H[i,i] = 1, W[:, i] = 0;  H += perc_damp * mean(diag H) * I
  U = cholesky(cholesky_inverse(cholesky(H)), upper=True)
  for each block of 128 columns: for each column i in it
      q = fake_quant(w_i) onto the FIXED NVFP4 block scales (static max, chosen before the loop)
      err = (w_i - q) / U[i, i];  W1[:, i:] -= err U[i, i:];  Err1[:, i] = err
  then W[:, end:] -= Err1 @ U[blk, end:]                       (the lazy batch update)

fp32 throughout, TF32 off. Unlike ModelOpt, which fake-quantizes the whole working matrix for each
column, only column i is quantized (the paper's way), so this baseline is the faster of the two.
Timed with torch.cuda.Event after warm-up, median of --iters, on random data of the same shapes and
construction as the C++ bench (W heavy-tailed, H = 2/n X^T X of n = 512 rows).

Usage (GPU machine):
  microscale_gpu_bench_gptq > ours.txt
  python3 tools/bench_torch_gptq.py --ours ours.txt          # also prints the side-by-side table
"""

import argparse
import re
import statistics
import sys

import torch

E2M1_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


def nvfp4_static_divisors(w):
    """Fixed NVFP4 grid from max (ModelOpt static): per 16-block divisor d = e4m3(amax_blk/6/wsf2)*wsf2."""
    out, inn = w.shape
    wsf2 = w.abs().max() / (6.0 * 448.0)
    amax_blk = w.view(out, inn // 16, 16).abs().amax(dim=-1)
    code = (amax_blk / 6.0 / wsf2).clamp(min=2.0**-9, max=448.0).to(torch.float8_e4m3fn)
    return code.float() * wsf2  # [out, in/16]


def fake_quant_col(x, d, table):
    """RN(E2M1[nibble(x/d)] * d), ties to the even code, saturating at 6 (format/codec/e2m1.h)."""
    y = x / d
    a = y.abs()
    idx = ((a > 0.25).long() + (a >= 0.75).long() + (a > 1.25).long() + (a >= 1.75).long() + (a > 2.5).long()
           + (a >= 3.5).long() + (a > 5.0).long())
    q = table[idx] * d
    return torch.where(y < 0, -q, q)


def gptq_torch(w, h, div, block=128, perc_damp=0.01):
    w = w.clone()
    h = h.clone()
    n = h.shape[0]
    table = torch.tensor(E2M1_VALUES, device=w.device)
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    damp = perc_damp * torch.mean(torch.diag(h))
    idx = torch.arange(n, device=w.device)
    h[idx, idx] += damp
    l = torch.linalg.cholesky(h)
    hinv = torch.cholesky_inverse(l)
    u = torch.linalg.cholesky(hinv, upper=True)
    for i1 in range(0, n, block):
        i2 = min(i1 + block, n)
        count = i2 - i1
        w1 = w[:, i1:i2].clone()
        err1 = torch.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        for i in range(count):
            col = w1[:, i]
            q = fake_quant_col(col, div[:, (i1 + i) // 16], table)
            e = (col - q) / u1[i, i]
            w1[:, i:] -= e.unsqueeze(1).matmul(u1[i, i:].unsqueeze(0))
            err1[:, i] = e
        w[:, i1:i2] = w1
        if i2 < n:
            w[:, i2:] -= err1.matmul(u[i1:i2, i2:])
    return w


def make_problem(out, inn, gen):
    g = torch.randn(out, inn, device="cuda", generator=gen)
    u = torch.rand(out, inn, device="cuda", generator=gen)
    w = 0.02 * g / torch.sqrt(0.3 + 2.7 * u)
    cols = torch.arange(inn, device="cuda")
    w[:, cols % 97 == 13] *= 12.0
    x = torch.randn(512, inn, device="cuda", generator=gen)
    h = (2.0 / 512) * (x.t() @ x)
    return w, h


def time_ms(fn, iters, warmup=1):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


def parse_ours(path):
    """shape -> resident ms from microscale_gpu_bench_gptq's lines."""
    ours = {}
    pat = re.compile(r"^gptq\s+(\d+)x(\d+)\s.*resident\s+([\d.]+) ms")
    with open(path) as f:
        for line in f:
            m = pat.match(line)
            if m:
                ours[(int(m.group(1)), int(m.group(2)))] = float(m.group(3))
    return ours


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="4096x4096,4096x14336,14336x4096")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--ours", help="microscale_gpu_bench_gptq output: print the side-by-side table")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device for torch", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    gen = torch.Generator(device="cuda")
    gen.manual_seed(0)
    print(f"# torch {torch.__version__} on {torch.cuda.get_device_name()}; medians of {args.iters} after warm-up")
    rows = []
    for item in args.shapes.split(","):
        out, inn = (int(v) for v in item.split("x"))
        w, h = make_problem(out, inn, gen)
        div = nvfp4_static_divisors(w)
        ms = time_ms(lambda: gptq_torch(w, h, div, args.block), args.iters)
        print(f"torch gptq {out:5d}x{inn:<5d} nvfp4 block {args.block}: {ms:9.2f} ms", flush=True)
        rows.append(((out, inn), ms))
        del w, h, div
        torch.cuda.empty_cache()
    if args.ours:
        ours = parse_ours(args.ours)
        print()
        print("| GPTQ layer (out x in) | PyTorch ms | microscale ms | speed-up |")
        print("|---|---:|---:|---:|")
        for shape, ms in rows:
            if shape in ours:
                print(f"| {shape[0]}x{shape[1]} | {ms:.1f} | {ours[shape]:.1f} | {ms / ours[shape]:.1f}x |")
            else:
                print(f"| {shape[0]}x{shape[1]} | {ms:.1f} | (not in {args.ours}) | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
