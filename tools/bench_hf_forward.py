#!/usr/bin/env python3
"""transformers bf16 sdpa forward tokens/s on the checkpoint bench_forward used, same batch shape.

The baseline of the GPU calibration forward bar (calibration tokens/s >= 1.0x transformers):
runs the decoder stack (`model.model`, no lm_head, as calibration) over --seqs sequences of
--seq-len random ids in batches of --batch, after one warm-up pass, and prints one line:

    hf_forward: model=DIR tokens=N batch=BxT seconds=S tokens_per_s=X transformers=V torch=V

    python3 tools/bench_hf_forward.py --model /tmp/microscale-bench-1b [--seqs 16 --seq-len 2048 --batch 8]
"""
import argparse
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="/tmp/microscale-bench-1b")
    ap.add_argument("--seqs", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--attn", default="sdpa")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("hf_forward: skipped (no CUDA in torch)")
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
