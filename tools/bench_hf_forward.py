#!/usr/bin/env python3
"""transformers bf16 sdpa forward tokens/s on the checkpoint bench_forward used, same batch shape.

The baseline of the GPU calibration forward bar (calibration tokens/s >= 1.0x transformers):
runs the decoder stack (`model.model`, no lm_head, as calibration) over --seqs sequences of
--seq-len random ids in batches of --batch, after one warm-up pass, and prints one line:

    hf_forward: model=DIR tokens=N batch=BxT seconds=S tokens_per_s=X transformers=V torch=V

    python3 tools/bench_hf_forward.py --model /tmp/microscale-bench-1b [--seqs 16 --seq-len 2048 --batch 8]

--attention-only: torch's bf16 sdpa alone (causal, GQA through enable_gqa) on --batch sequences of
--seq-len tokens with the model's heads, median of CUDA-event timings, the line
microscale_gpu_bench_forward --attention-only prints.
"""
import argparse
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def bench_attention(args):
    cfg = transformers.AutoConfig.from_pretrained(args.model)
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    d = args.head_dim or getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    b, t = args.batch, args.seq_len
    q = torch.randn(b, heads, t, d, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(b, kv, t, d, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(b, kv, t, d, device="cuda", dtype=torch.bfloat16)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    times = []
    for it in range(13):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        sdpa(q, k, v, is_causal=True, enable_gqa=True)
        e1.record()
        torch.cuda.synchronize()
        if it >= 3:
            times.append(e0.elapsed_time(e1))
    times.sort()
    ms = times[len(times) // 2]
    flops = 4.0 * b * heads * d * t * (t + 1) / 2
    print(f"torch_sdpa: batch={b}x{t} heads={heads}/{kv} head_dim={d} ms={ms:.3f} causal_tflops={flops / ms * 1e-9:.1f} "
          f"torch={torch.__version__}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="/tmp/microscale-bench-1b")
    ap.add_argument("--seqs", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--attention-only", action="store_true")
    ap.add_argument("--head-dim", type=int, default=0, help="--attention-only: override the model's head size")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("hf_forward: skipped (no CUDA in torch)")
        return
    if args.attention_only:
        bench_attention(args)
        return
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16, attn_implementation=args.attn)
    model = model.to("cuda").eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(0, vocab, (args.seqs, args.seq_len), generator=g).to("cuda")

    def one_pass():
        with torch.inference_mode():
            for s0 in range(0, args.seqs, args.batch):
                model.model(input_ids=ids[s0:s0 + args.batch], use_cache=False)
        torch.cuda.synchronize()

    one_pass()  # warm-up
    t0 = time.perf_counter()
    one_pass()
    s = time.perf_counter() - t0
    tokens = args.seqs * args.seq_len
    print(f"hf_forward: model={args.model} tokens={tokens} batch={args.batch}x{args.seq_len} seconds={s:.4f} "
          f"tokens_per_s={tokens / s:.0f} attn={args.attn} transformers={transformers.__version__} torch={torch.__version__}")


if __name__ == "__main__":
    main()
