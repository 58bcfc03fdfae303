#!/usr/bin/env python3
"""Golden test vectors for microscale's weight formats, from an independent PyTorch implementation.

This script re-implements, in plain torch on a CUDA device, the export arithmetic that NVIDIA
ModelOpt 0.46 uses (spec/nvfp4-modelopt.md §1, §3, §5.2-5.3, §10) and that docs/FORMATS.md fixes
where the spec leaves a choice. It does not import microscale or ModelOpt. Everything is written
the way ModelOpt's Python writes it, so that torch's CUDA kernels make the same rounding choices:

* `x / 2688.0` with a Python-scalar divisor on a CUDA tensor (torch multiplies by the fp32
  reciprocal, which is what GPU-exported checkpoints contain);
* `tensor / zero_dim_cuda_tensor` for true divisions (block scales, FP8 weights);
* `.to(torch.float8_e4m3fn)` casts, `torch.searchsorted` for E2M1, `torch.linspace` on CUDA for the
  MSE multipliers.

The per-block search losses are the export-exact sequential fp32 sums of docs/FORMATS.md
(`loss = loss + err[..., j]` for j = 0..15) with a strict `<` running argmin over candidates in
ascending order. For information the script also counts how many blocks a tree-summed loss
(`err.sum(-1)` + `torch.argmin`, as ModelOpt's reference path writes it) would choose differently.

Usage (GPU machine):  PYTHONUNBUFFERED=1 python3 tools/gen_golden.py --out $OUT/golden
                      then copy the files into tests/golden/ (tests/golden/README.md)
Debugging only:       --cpu (CPU torch divides by scalars exactly, so the results differ).
"""

import argparse
import datetime
import json
import math
import os
import sys
import time

import torch
from safetensors.torch import save_file

GENERATED = "2026-12-01"
SEED = 20261201

E2M1_BOUNDS_LIST = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0]
# ModelOpt's signed decode table (nvfp4_tensor.py): nibble 8 decodes to +0.0.
E2M1_SIGNED_LIST = [0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6]

NVFP4_MODES = {
    "nvfp4_dynamic": {"search": "dynamic_max", "m": 448.0},
    "nvfp4_static_max": {"search": "static_max", "m": 448.0},
    "nvfp4_mse": {"search": "mse", "m": 448.0, "start": 0.25, "stop": 4.0, "step": 0.1},
    "nvfp4_mse_custom": {"search": "mse", "m": 448.0, "start": 0.5, "stop": 2.0, "step": 0.25},
    "nvfp4_fp8_sweep": {"search": "fp8_sweep", "m": 448.0},
    "nvfp4_four_over_six": {"search": "mse", "m": 256.0, "start": 1.0, "stop": 1.5, "step": 0.5,
                            "four_over_six": True},
    "nvfp4_static_max_m256": {"search": "static_max", "m": 256.0, "four_over_six": True},
}
OTHER_MODES = {
    "fp8": {"format": "fp8"},
    "mxfp8": {"format": "mxfp8", "block": 32},
    "mxfp4": {"format": "mxfp4", "block": 32},
}

LINSPACE_PARAMS = [
    (0.25, 4.0, 0.1),   # MseCalibConfig defaults: 39 candidates
    (1.0, 1.5, 0.5),    # four-over-six: [1.0, 1.5]
    (0.5, 2.0, 0.25),   # nvfp4_mse_custom: 7 candidates
    (0.0, 1.0, 0.01),
    (0.25, 4.0, 0.01),
    (0.3, 2.7, 0.07),
    (0.1, 3.0, 0.05),
    (0.2, 5.0, 0.3),
    (0.9, 1.1, 0.001),
    (0.125, 8.0, 0.125),
]


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# Deterministic inputs (generated on the CPU with a seeded generator, then moved to the device)
# --------------------------------------------------------------------------------------------

class Gen:
    def __init__(self, seed):
        self.g = torch.Generator(device="cpu")
        self.g.manual_seed(seed)

    def randn(self, *shape):
        return torch.randn(*shape, generator=self.g, dtype=torch.float64)

    def rand(self, *shape):
        return torch.rand(*shape, generator=self.g, dtype=torch.float64)

    def randint(self, lo, hi, shape):
        return torch.randint(lo, hi, shape, generator=self.g)

    def student_t(self, df, *shape):
        z = self.randn(*shape)
        chi2 = torch.zeros(*shape, dtype=torch.float64)
        for _ in range(df):
            chi2 += self.randn(*shape) ** 2
        return z / torch.sqrt(chi2 / df)

    def perm(self, n):
        return torch.randperm(n, generator=self.g)


def heavy_tailed(g, rows, cols, scale=0.02, outlier_cols=3, outlier_rows=1):
    w = g.student_t(3, rows, cols) * scale
    if outlier_cols:
        cols_idx = g.randint(0, cols, (outlier_cols,))
        for c in cols_idx.tolist():
            w[:, c] *= 25.0
    if outlier_rows and rows > 1:
        rows_idx = g.randint(0, rows, (outlier_rows,))
        for r in rows_idx.tolist():
            w[r, :] *= 8.0
    return w


def case_zero_blocks(g):
    rows, cols = 8, 128
    w = g.randn(rows, cols) * 0.05
    nb = cols // 16
    for r in range(rows):
        for b in range(nb):
            kind = (r * nb + b) % 5
            blk = slice(16 * b, 16 * b + 16)
            if kind == 0:
                w[r, blk] = 0.0                       # all +0
            elif kind == 1:
                w[r, blk] = -0.0                      # all -0
            elif kind == 2:
                signs = torch.where(g.rand(16) < 0.5, -1.0, 1.0).double()
                w[r, blk] = signs * 0.0               # mixed +-0
            elif kind == 3:
                w[r, blk] = 0.0
                w[r, 16 * b + int(g.randint(0, 16, (1,)))] = -1e-30   # tiny negative among zeros
    return w


def case_outlier(g):
    rows, cols = 16, 128
    w = g.randn(rows, cols) * 0.01
    for r in range(rows):
        for b in range(cols // 16):
            j = 16 * b + int(g.randint(0, 16, (1,)))
            sign = 1.0 if g.rand(1).item() < 0.5 else -1.0
            w[r, j] = sign * (0.5 + 4.0 * g.rand(1).item())
    return w


def case_subnormal_scales(g):
    # A large tensor max next to blocks whose amax is 1e-8 .. 1e-2 of it: the block scales land in
    # the E4M3 subnormal range (below 2^-6) and below 2^-9 (clamped).
    rows, cols = 16, 128
    nb = cols // 16
    w = torch.zeros(rows, cols, dtype=torch.float64)
    for r in range(rows):
        for b in range(nb):
            expo = -8.0 + 6.0 * g.rand(1).item()         # block amax 1e-8 .. 1e-2 (relative)
            amax = 10.0 ** expo
            vals = (g.rand(16) * 2 - 1) * amax
            vals[int(g.randint(0, 16, (1,)))] = amax * (1 if g.rand(1).item() < 0.5 else -1)
            w[r, 16 * b:16 * b + 16] = vals
    w[0, 5] = 1.0                                         # the tensor max
    return w


def e4m3_positive_values():
    codes = torch.arange(0, 127, dtype=torch.int32).to(torch.uint8)       # 0x00..0x7E
    return codes.view(torch.float8_e4m3fn).float().double()


def case_ties(g):
    """Blocks whose scaled values w/d land exactly on the E2M1 tie points in the dynamic path,
    plus rows whose FP8 quotient lands exactly on E4M3 midpoints (bf16 / fp16 rule).

    Tensor max A = 10.5 gives wsf2 = RN(10.5 * RN(1/2688)) = 2^-8 exactly, so 6*wsf2 = 6*2^-8 and
    a block with amax 6*c*2^-8 (c an E4M3 value) gets code c exactly and d = c*2^-8; elements
    t*d with t a tie point are exact in bf16. For FP8, RN(10.5 * RN(1/448)) rounds to 3*2^-7 in
    bf16/fp16, so w = mid * 3*2^-7 divides exactly onto the E4M3 midpoint `mid`.
    """
    rows, cols = 6, 128
    nb = cols // 16
    w = torch.zeros(rows, cols, dtype=torch.float64)
    cvals = [448.0, 1.0, 0.5, 1.125, 13.0, 96.0, 240.0, 2.0 ** -6,
             3 * 2.0 ** -9, 2.0 ** -9, 7 * 2.0 ** -9, 9 * 2.0 ** -7, 208.0, 2.25, 5.0, 44.0,
             0.875, 1.75, 3.5, 320.0, 0.015625 * 1.5, 2.0 ** -8, 5 * 2.0 ** -9, 6.5,
             0.1875, 0.3125, 24.0, 56.0, 112.0, 144.0, 416.0, 1.0]
    ties = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0]
    k = 0
    for r in range(4):
        for b in range(nb):
            c = cvals[k % len(cvals)]
            k += 1
            d = c * 2.0 ** -8
            vals = [6.0 * d] + [t * d for t in ties] + [-t * d for t in ties] + [-6.0 * d if b % 2 else 0.0]
            vals = torch.tensor(vals, dtype=torch.float64)[g.perm(16)]
            w[r, 16 * b:16 * b + 16] = vals
    # rows 4, 5: E4M3 midpoints (positive and negative) times 3*2^-7
    pos = e4m3_positive_values()
    mids = (pos[:-1] + pos[1:]) / 2                       # 126 midpoints
    allm = torch.cat([mids, -mids, torch.tensor([448.0, -448.0, 0.0, -0.0], dtype=torch.float64)])
    allm = allm[g.perm(allm.numel())]
    w[4:6, :] = (allm * 3 * 2.0 ** -7).view(2, 128)
    return w


def case_zero_tensor():
    w = torch.zeros(4, 64, dtype=torch.float64)
    w[1, 3] = -0.0
    w[2, 40:48] = -0.0
    return w


def nearest_bf16_neighbours(x):
    """x and its bf16 neighbours (as float64), x representable in bf16."""
    b = torch.tensor([x], dtype=torch.bfloat16)
    u = b.view(torch.int16).to(torch.int32)
    out = []
    for du in (-1, 0, 1):
        v = (u + du).to(torch.int16).view(torch.bfloat16).to(torch.float64)
        out.append(float(v))
    return out


def case_mx_edges(g):
    """Block amaxes at and next to 448*2^k (MXFP8) and 6*2^k (MXFP4), so that ceil(log2(x)) sits on
    its edge; elements fill the rest of each 32-block."""
    rows, cols = 8, 256
    nbm = cols // 32
    amaxes = []
    for k in (-12, -3, -1, 0, 1, 4, 9):
        amaxes += nearest_bf16_neighbours(448.0 * 2.0 ** k)
        amaxes += nearest_bf16_neighbours(6.0 * 2.0 ** k)
    # a few arbitrary ones
    while len(amaxes) < rows * nbm:
        amaxes.append(float(torch.tensor([10.0 ** (-3 + 5 * g.rand(1).item())]).to(torch.bfloat16).double()))
    w = torch.zeros(rows, cols, dtype=torch.float64)
    i = 0
    for r in range(rows):
        for b in range(nbm):
            a = amaxes[i]
            i += 1
            vals = (g.rand(32) * 2 - 1) * a
            vals[int(g.randint(0, 32, (1,)))] = a * (1 if g.rand(1).item() < 0.5 else -1)
            w[r, 32 * b:32 * b + 32] = vals
    return w


def case_extreme(g):
    """Huge tensor max (2^60) next to tiny and bf16-subnormal blocks: block-scale quotients that
    underflow to zero (-> scale 1.0), the 2^-9 clamp, and MX exponents at -127."""
    rows, cols = 4, 128
    # (2^60 keeps the squared errors of the searches finite in fp32)
    w = (g.randn(rows, cols) * 2.0 ** 50)
    w[0, 0] = 2.0 ** 60
    w[1, 0:32] = g.randn(32) * 2.0 ** -128               # near/below the fp32 normal range
    w[1, 32:64] = g.randn(32) * 2.0 ** -132              # bf16 subnormals
    w[2, 0:16] = g.randn(16) * 2.0 ** -60
    w[2, 16:32] = g.randn(16) * 1.0
    w[3, 0:32] = 0.0
    w[3, 5] = 2.0 ** -133                                 # smallest bf16 subnormal
    return w


def build_cases(g):
    cases = []

    def add(name, w64, dtype, global_amax_factor=None, mx=True):
        cases.append({"name": name, "w64": w64, "dtype": dtype, "gaf": global_amax_factor, "mx": mx})

    add("t1x16", heavy_tailed(g, 1, 16, outlier_cols=1, outlier_rows=0), torch.bfloat16, mx=False)
    add("t3x48", heavy_tailed(g, 3, 48, outlier_cols=2, outlier_rows=1), torch.bfloat16, mx=False)
    add("heavy64x256", heavy_tailed(g, 64, 256, outlier_cols=4, outlier_rows=2), torch.bfloat16)
    add("zeroblocks", case_zero_blocks(g), torch.bfloat16)
    add("outlier", case_outlier(g), torch.bfloat16)
    add("subnormal", case_subnormal_scales(g), torch.bfloat16)
    ties = case_ties(g)
    add("ties", ties, torch.bfloat16)
    add("ties_f16", ties.clone(), torch.float16)
    add("ties_f32", ties.clone(), torch.float32)
    add("zero", case_zero_tensor(), torch.bfloat16)
    add("mx_edges", case_mx_edges(g), torch.bfloat16)
    add("extreme", case_extreme(g), torch.bfloat16)
    add("heavy_f16", heavy_tailed(g, 32, 128, scale=0.05, outlier_cols=2, outlier_rows=1), torch.float16)
    add("heavy_f32", heavy_tailed(g, 32, 128, scale=0.05, outlier_cols=2, outlier_rows=1), torch.float32)
    add("search128x512", heavy_tailed(g, 128, 512, scale=0.02, outlier_cols=5, outlier_rows=2), torch.bfloat16)
    add("fused", heavy_tailed(g, 32, 128, scale=0.03, outlier_cols=2, outlier_rows=1), torch.bfloat16,
        global_amax_factor=1.37)
    return cases


# --------------------------------------------------------------------------------------------
# The formats, written the way ModelOpt writes them
# --------------------------------------------------------------------------------------------

class Ctx:
    def __init__(self, device):
        self.device = device
        self.bounds = torch.tensor(E2M1_BOUNDS_LIST, dtype=torch.float32, device=device)
        self.odd_bounds = self.bounds[[1, 3, 5]]          # 0.75, 1.75, 3.5: ties round up
        self.signed = torch.tensor(E2M1_SIGNED_LIST, dtype=torch.float32, device=device)


def cast_fp4(ctx, y):
    """NVFP4QTensor._cast_fp4: searchsorted lower bound + odd-bound ties up, sign from y < 0."""
    sign_bit = (y < 0).to(torch.uint8)
    mag = y.abs()
    ordv = torch.searchsorted(ctx.bounds, mag.contiguous(), out_int32=True).to(torch.uint8)
    eq_odd = torch.any(mag.unsqueeze(-1) == ctx.odd_bounds, dim=-1).to(torch.uint8)
    return (sign_bit << 3) + ordv + eq_odd


def cast_fp4_mx(ctx, x):
    """MXFP4QTensor.quantize's cast_fp4: ties round down, zero gets the sign bit."""
    sign = torch.sign(x)
    sign_bit = (2 - sign) // 2
    ord_ = torch.sum((x.abs().unsqueeze(-1) - ctx.bounds) > 0, dim=-1)
    return (sign_bit * 0b1000 + ord_).to(torch.uint8)


def pack_nibbles(q):
    return (q[..., 1::2] << 4) | q[..., 0::2]


def nvfp4_elements(ctx, w_blocks, codes_e4m3, wsf2):
    """NVFP4QTensor.quantize: w / (float(code) * wsf2), cast to E2M1. Returns nibbles and d."""
    d = codes_e4m3.to(torch.float32) * wsf2
    y = w_blocks / d.unsqueeze(-1)                    # bf16 / fp32 tensor -> fp32 true division
    return cast_fp4(ctx, y), d


def static_codes(p, A, m):
    """get_weights_scaling_factor_from_quantizer, static path."""
    s = p / 6.0
    s = torch.where(s == 0, torch.ones_like(s), s)
    s_max = A / 6.0
    return (s * m / s_max).clamp(min=2 ** -9, max=448.0).to(torch.float8_e4m3fn)


def dynamic_codes(a_b, wsf2):
    """get_weights_scaling_factor, dynamic path (with the 448 clamp of docs/FORMATS.md)."""
    s = a_b / (6.0 * wsf2)
    s = torch.where(s == 0, torch.ones_like(s), s)
    return s.clamp(min=2 ** -9, max=448.0).to(torch.float8_e4m3fn)


def mse_multipliers(start, stop, step, device):
    n = math.ceil((stop - start) / step) + 1
    return torch.linspace(start, stop, n, device=device)   # fp32


def seq_sum16(err):
    loss = torch.zeros(err.shape[:-1], dtype=torch.float32, device=err.device)
    for j in range(err.shape[-1]):
        loss = loss + err[..., j]
    return loss


def block_loss(ctx, w_blocks, wf, codes, wsf2):
    q, d = nvfp4_elements(ctx, w_blocks, codes, wsf2)
    w_hat = ctx.signed[q.long()] * d.unsqueeze(-1)
    diff = wf - w_hat
    err = diff * diff
    return seq_sum16(err), err.sum(dim=-1)


def nvfp4_quantize(ctx, w, mode, global_amax=None, info=None):
    """Returns packed [rows, cols/2] u8, scales [rows, cols/16] u8, wsf2 (0-dim fp32), dequant fp32."""
    rows, cols = w.shape
    nb = cols // 16
    p = NVFP4_MODES[mode]
    m = p["m"]
    w_blocks = w.view(rows, nb, 16)
    wf = w_blocks.float()
    a_b = wf.abs().amax(dim=-1)                                     # exact
    A = global_amax if global_amax is not None else w.abs().amax().float()

    if float(A) == 0.0:
        # docs/FORMATS.md: an all-zero tensor gets wsf2 = 1, codes 0x38, nibbles 0 in every mode.
        packed = torch.zeros(rows, cols // 2, dtype=torch.uint8, device=w.device)
        scales = torch.full((rows, nb), 0x38, dtype=torch.uint8, device=w.device)
        wsf2 = torch.tensor(1.0, dtype=torch.float32, device=w.device)
        deq = torch.zeros(rows, cols, dtype=torch.float32, device=w.device)
        return packed, scales, wsf2, deq

    wsf2 = A / (6.0 * m)                                            # RN(A * RN(1/(6m))) on CUDA
    search = p["search"]
    if search == "dynamic_max":
        codes = dynamic_codes(a_b, wsf2)
    elif search == "static_max":
        codes = static_codes(a_b, A, m)
    elif search in ("mse", "fp8_sweep"):
        if search == "mse":
            mults = mse_multipliers(p["start"], p["stop"], p["step"], w.device)
            cand = [static_codes(a_b * mults[i], A, m) for i in range(mults.numel())]
        else:
            cand = [torch.full((rows, nb), v, dtype=torch.uint8, device=w.device).view(torch.float8_e4m3fn)
                    for v in range(1, 127)]
            if info is not None:
                # ModelOpt writes the sweep as per-block amax = A * v/448 through the static export
                # formula; docs/FORMATS.md says this reproduces code v exactly. Count exceptions.
                exp = torch.arange(1, 127, dtype=torch.int32, device=w.device).to(torch.uint8)
                vals = exp.view(torch.float8_e4m3fn).float()
                cand_amax = A * (vals / 448.0)
                back = static_codes(cand_amax, A, m).view(torch.uint8)
                info["fp8_sweep_amax_path_code_mismatches"] = int((back != exp).sum())
        best_seq = None
        best_code = None
        tree_losses = []
        cand_u8 = []
        loss_pairs_differ = 0                   # (block, candidate) pairs whose two sums differ
        for c in cand:
            ls, lt = block_loss(ctx, w_blocks, wf, c, wsf2)
            cu = c.view(torch.uint8)
            if best_seq is None:                # the first candidate is taken as it is
                best_seq, best_code = ls, cu.clone()
            else:                               # strict <: ties keep the earlier candidate
                better = ls < best_seq
                best_seq = torch.where(better, ls, best_seq)
                best_code = torch.where(better, cu, best_code)
            tree_losses.append(lt)
            cand_u8.append(cu)
            loss_pairs_differ += int((ls != lt).sum())
        tl = torch.stack(tree_losses, dim=0)
        ti = torch.argmin(tl, dim=0)
        tree_code = torch.gather(torch.stack(cand_u8, dim=0), 0, ti.unsqueeze(0)).squeeze(0)
        if info is not None:
            info["tree_sum_code_disagreements"] = int((tree_code != best_code).sum())
            info["tree_vs_sequential_loss_bits_differ"] = loss_pairs_differ
            info["blocks"] = rows * nb
            info["candidates"] = len(cand)
        codes = best_code.view(torch.float8_e4m3fn)
    else:
        raise ValueError(search)

    q, d = nvfp4_elements(ctx, w_blocks, codes, wsf2)
    packed = pack_nibbles(q.view(rows, cols))
    deq = (ctx.signed[q.long()] * d.unsqueeze(-1)).view(rows, cols)
    return packed.contiguous(), codes.view(torch.uint8).contiguous(), wsf2.reshape(()), deq.contiguous()


def fp8_quantize(w):
    """FP8 per-tensor: weight_scale = amax/448 (Python scalar), code = (w / scale).to(e4m3)."""
    A = w.abs().amax().float()
    if float(A) == 0.0:
        scale = torch.tensor(1.0, dtype=torch.float32, device=w.device)   # docs/FORMATS.md
    else:
        scale = A / 448.0
    codes = (w / scale).to(torch.float8_e4m3fn)                           # quant_utils.to_quantized_weight
    return codes.view(torch.uint8).contiguous(), scale.reshape(())


def mxfp8_quantize(w):
    """MXFP8QTensor: e = clamp(ceil(log2(amax/448)), -127, 127), code = e4m3(clamp(w*2^-e, +-448))."""
    rows, cols = w.shape
    nb = cols // 32
    wb = w.view(rows, nb, 32)
    amax = wb.abs().amax(dim=-1)
    descale = amax.float() / 448.0
    min_value = torch.tensor(-127.0, device=w.device)
    log2d = torch.where(descale > 0, torch.log2(descale), min_value)
    e = torch.clamp(torch.ceil(log2d), min=-127, max=127)
    scales = (e + 127).to(torch.uint8)
    scale_factor = torch.exp2(127 - scales.float())
    scaled = wb * scale_factor.unsqueeze(-1)
    scaled = torch.clamp(scaled, min=-448.0, max=448.0)
    codes = scaled.to(torch.float8_e4m3fn).view(rows, cols)
    return codes.view(torch.uint8).contiguous(), scales.contiguous()


def mxfp4_quantize(ctx, w):
    """MXFP4QTensor.quantize."""
    rows, cols = w.shape
    inp = w.reshape(-1, 32)
    input_amax = inp.float().abs().max(dim=-1, keepdim=True).values
    descale = input_amax / 6.0
    min_value = torch.tensor(-127.0, device=w.device)
    e8m0 = torch.ceil(torch.maximum(torch.log2(descale), min_value))
    y = (inp / torch.exp2(e8m0)).view(rows, cols)
    q = cast_fp4_mx(ctx, y)
    packed = (q[..., 1::2] << 4) + q[..., 0::2]
    scales = (e8m0 + 127).to(torch.uint8).view(rows, cols // 32)
    return packed.contiguous(), scales.contiguous()


# --------------------------------------------------------------------------------------------
# Codec tables
# --------------------------------------------------------------------------------------------

def next_up_down(x32):
    """fp32 tensor -> (nextafter down, nextafter up) for finite values."""
    inf = torch.full_like(x32, float("inf"))
    return torch.nextafter(x32, -inf), torch.nextafter(x32, inf)


def build_codec_tensors(ctx, dev, meta):
    out = {}
    # all bf16 bit patterns as fp32
    allbf = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(torch.bfloat16).float()
    # E4M3 midpoints, values and their fp32 neighbours, plus named overflow/underflow points
    pos = e4m3_positive_values().float()
    mids = ((pos[:-1].double() + pos[1:].double()) / 2).float()   # exact in fp32
    named = torch.tensor([448.0, 464.0, 480.0, 2.0 ** -10, 3 * 2.0 ** -10, 2.0 ** -9, 2.0 ** -6,
                          15 * 2.0 ** -10, 2.0 ** -11, 1e-30, 1e30, 500.0, 1000.0, 65504.0, 1e-45],
                         dtype=torch.float32)
    base = torch.cat([pos, mids, named])
    dn, up = next_up_down(base)
    special = torch.cat([base, dn, up, torch.tensor([float("inf"), float("nan")], dtype=torch.float32)])
    sweep = torch.cat([allbf, special, -special])
    out["e4m3_cast.input"] = sweep.contiguous()
    out["e4m3_cast.output"] = sweep.to(dev).to(torch.float8_e4m3fn).view(torch.uint8).cpu().contiguous()
    out["e4m3_decode.output"] = torch.arange(0, 256, dtype=torch.int32).to(torch.uint8).view(
        torch.float8_e4m3fn).to(dev).float().cpu().contiguous()

    # E2M1 casts (NVFP4 export rule and the MXFP4 rule) on finite values
    tiesf = torch.tensor(E2M1_BOUNDS_LIST + [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 7.0, 100.0],
                         dtype=torch.float32)
    tdn, tup = next_up_down(tiesf)
    e2 = torch.cat([allbf, tiesf, tdn, tup, -tiesf, -tdn, -tup])
    e2 = e2[torch.isfinite(e2)].contiguous()
    out["e2m1_cast.input"] = e2
    e2d = e2.to(dev)
    out["e2m1_cast.nvfp4"] = cast_fp4(ctx, e2d).cpu().contiguous()
    out["e2m1_cast.mxfp4"] = cast_fp4_mx(ctx, e2d).cpu().contiguous()

    # torch.linspace on the device for the MSE multipliers
    lin_meta = []
    for i, (start, stop, step) in enumerate(LINSPACE_PARAMS):
        vals = mse_multipliers(start, stop, step, dev).cpu().contiguous()
        out[f"linspace.{i}.params"] = torch.tensor([start, stop, step], dtype=torch.float64)
        out[f"linspace.{i}.values"] = vals
        lin_meta.append({"index": i, "start": start, "stop": stop, "step": step, "n": vals.numel()})
    meta["linspace"] = json.dumps(lin_meta)
    return out


# --------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--cpu", action="store_true", help="debug on the CPU (results differ from CUDA)")
    args = ap.parse_args()

    if args.cpu:
        dev = torch.device("cpu")
    else:
        if not torch.cuda.is_available():
            sys.exit("gen_golden.py: CUDA is not available (the golden vectors must come from a GPU); "
                     "use --cpu only to debug")
        dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()

    common_meta = {
        "generator": "tools/gen_golden.py",
        "generated": GENERATED,
        "generated_at_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seed": str(SEED),
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda),
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
    }
    log(f"torch {torch.__version__} cuda {torch.version.cuda} device {common_meta['device']}")

    ctx = Ctx(dev)
    g = Gen(SEED)
    cases = build_cases(g)

    nv = {}
    fm = {}
    case_meta = []
    search_info = {}
    errors = []
    for c in cases:
        name = c["name"]
        w_cpu = c["w64"].to(c["dtype"]).contiguous()
        rows, cols = w_cpu.shape
        w = w_cpu.to(dev)
        gam = None
        entry = {"name": name, "dtype": str(c["dtype"]).replace("torch.", ""), "rows": rows, "cols": cols,
                 "amax": float(w.abs().amax().float())}
        if c["gaf"] is not None:
            gam = (w.abs().amax().float() * c["gaf"]).reshape(())   # fp32 on the device
            nv[f"{name}.global_amax"] = gam.cpu().contiguous()
            entry["global_amax"] = float(gam)
            entry["global_amax_factor"] = c["gaf"]
        nv[f"{name}.input"] = w_cpu
        fm[f"{name}.input"] = w_cpu
        modes = []
        for mode in NVFP4_MODES:
            try:
                info = {}
                packed, scales, wsf2, deq = nvfp4_quantize(ctx, w, mode, gam, info)
                nv[f"{name}.{mode}.weight"] = packed.cpu()
                nv[f"{name}.{mode}.weight_scale"] = scales.cpu()
                nv[f"{name}.{mode}.weight_scale_2"] = wsf2.cpu().contiguous()
                if mode == "nvfp4_dynamic":
                    nv[f"{name}.{mode}.dequant"] = deq.cpu()
                if info:
                    search_info[f"{name}.{mode}"] = info
                    log(f"  {name}.{mode}: {info}")
                modes.append(mode)
            except Exception as e:  # keep going so one run shows every problem
                errors.append(f"{name}.{mode}: {type(e).__name__}: {e}")
                log(f"ERROR {errors[-1]}")
        try:
            codes, scale = fp8_quantize(w)
            fm[f"{name}.fp8.weight"] = codes.cpu()
            fm[f"{name}.fp8.weight_scale"] = scale.cpu().contiguous()
            modes.append("fp8")
        except Exception as e:
            errors.append(f"{name}.fp8: {type(e).__name__}: {e}")
            log(f"ERROR {errors[-1]}")
        if c["mx"]:
            try:
                codes, scales = mxfp8_quantize(w)
                fm[f"{name}.mxfp8.weight"] = codes.cpu()
                fm[f"{name}.mxfp8.weight_scale"] = scales.cpu()
                modes.append("mxfp8")
            except Exception as e:
                errors.append(f"{name}.mxfp8: {type(e).__name__}: {e}")
                log(f"ERROR {errors[-1]}")
            try:
                packed, scales = mxfp4_quantize(ctx, w)
                fm[f"{name}.mxfp4.weight"] = packed.cpu()
                fm[f"{name}.mxfp4.weight_scale"] = scales.cpu()
                modes.append("mxfp4")
            except Exception as e:
                errors.append(f"{name}.mxfp4: {type(e).__name__}: {e}")
                log(f"ERROR {errors[-1]}")
        entry["modes"] = modes
        case_meta.append(entry)
        log(f"case {name} [{rows}x{cols}] {entry['dtype']}: {len(modes)} modes")

    # Statistics only (not stored): the tree-sum vs sequential-loss disagreement on a larger weight.
    big_stats = {}
    try:
        gs = Gen(SEED + 1)
        big = heavy_tailed(gs, 1024, 4096, scale=0.02, outlier_cols=8, outlier_rows=4).to(torch.bfloat16).to(dev)
        for mode in ("nvfp4_mse", "nvfp4_fp8_sweep", "nvfp4_four_over_six"):
            info = {}
            nvfp4_quantize(ctx, big, mode, None, info)
            big_stats[mode] = info
            log(f"  stats 1024x4096 {mode}: {info}")
    except Exception as e:
        errors.append(f"stats: {type(e).__name__}: {e}")
        log(f"ERROR {errors[-1]}")

    codec_meta = dict(common_meta)
    try:
        codecs = build_codec_tensors(ctx, dev, codec_meta)
    except Exception as e:
        errors.append(f"codecs: {type(e).__name__}: {e}")
        log(f"ERROR {errors[-1]}")
        codecs = {}

    tree_total = {}
    for k, v in search_info.items():
        mode = k.split(".", 1)[1]
        t = tree_total.setdefault(mode, {"disagreements": 0, "blocks": 0, "loss_pairs_differ": 0,
                                         "loss_pairs": 0})
        t["disagreements"] += v.get("tree_sum_code_disagreements", 0)
        t["blocks"] += v.get("blocks", 0)
        t["loss_pairs_differ"] += v.get("tree_vs_sequential_loss_bits_differ", 0)
        t["loss_pairs"] += v.get("blocks", 0) * v.get("candidates", 0)
    log(f"tree-sum (torch.sum + argmin) vs sequential loss, blocks choosing a different code: {tree_total}")

    meta = dict(common_meta)
    meta["cases"] = json.dumps(case_meta)
    meta["nvfp4_modes"] = json.dumps(NVFP4_MODES)
    meta["other_modes"] = json.dumps(OTHER_MODES)
    meta["search_info"] = json.dumps(search_info)
    meta["tree_sum_disagreements"] = json.dumps(tree_total)
    meta["tree_sum_stats_1024x4096"] = json.dumps(big_stats)
    meta["e2m1_decode"] = "ModelOpt table: nibble 8 decodes to +0.0"
    fmeta = dict(common_meta)
    fmeta["cases"] = json.dumps(case_meta)
    fmeta["other_modes"] = json.dumps(OTHER_MODES)

    save_file(nv, os.path.join(args.out, "golden_nvfp4.safetensors"), metadata=meta)
    save_file(fm, os.path.join(args.out, "golden_fp8_mx.safetensors"), metadata=fmeta)
    if codecs:
        save_file(codecs, os.path.join(args.out, "golden_codecs.safetensors"), metadata=codec_meta)
    with open(os.path.join(args.out, "gen_golden.log.json"), "w") as f:
        json.dump({"meta": common_meta, "cases": case_meta, "search_info": search_info,
                   "tree_sum_disagreements": tree_total, "tree_sum_stats_1024x4096": big_stats,
                   "errors": errors,
                   "seconds": time.time() - t0}, f, indent=1)
    for fn in sorted(os.listdir(args.out)):
        log(f"  {fn}: {os.path.getsize(os.path.join(args.out, fn))} bytes")
    log(f"done in {time.time() - t0:.1f}s, {len(errors)} errors")
    if errors:
        for e in errors:
            log("  " + e)
        sys.exit(1)


if __name__ == "__main__":
    main()
