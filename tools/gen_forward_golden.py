#!/usr/bin/env python3
"""Golden logits for microscale's CPU forward pass (src/model/forward/), from transformers 5.17.

Builds tiny random models of every supported Llama-family variant (architectures.md §7 recipe,
shrunk so the committed fixtures stay small), saves them with save_pretrained (weights rounded to
bf16 and stored as bf16, except the variants marked fp32), reloads each from disk in fp32 with
eager attention and records, per token sequence (each run alone, batch 1, a fresh model per run so
dynamic RoPE's cache cannot leak between runs):

  ids.<s>            int64 [T]      the token ids
  logits.<s>         f32  [T, V]
  hidden.<l>.<s>     f32  [T, H]    output of decoder layer l (forward hook on model.layers[l])
  attn_in.0.<s>      f32  [T, H]    input of layer 0's q_proj / qkv_proj (the normed hidden)
  inv_freq           f32  [r/2]     rotary_emb.inv_freq after the longest run
  attention_scaling  f32  [1]

and for the real models (stories260K, microstories10M; HF dirs under --assets) the same logits for
a few tokenized texts, stories260K's perplexity on the README sentence and its 200-step greedy
generation from BOS.

Usage (GPU machine, CPU torch is enough):
  PYTHONUNBUFFERED=1 python3 tools/gen_forward_golden.py --out $OUT/forward --assets .device/assets
  then unpack into tests/golden/forward/.
"""

import argparse
import json
import math
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

SEED = 20261205
LENGTHS = (24, 17)  # two sequences of different lengths: > sliding window 8 and > max_pos 16

BASE = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            initializer_range=0.1, rms_norm_eps=1e-5)

# name -> (model_type, kwargs beyond BASE, store fp32)
VARIANTS = {
    "llama_default": ("llama", dict(), True),
    "llama_tied": ("llama", dict(tie_word_embeddings=True), False),
    "llama_bias": ("llama", dict(attention_bias=True, mlp_bias=True), False),
    "llama_llama3": ("llama", dict(rope_theta=500000.0, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64}), False),
    "llama_linear": ("llama", dict(rope_scaling={"rope_type": "linear", "factor": 2.0}), False),
    # max_pos 16 < T: dynamic NTK is active (with L = T of each run).
    "llama_dynamic": ("llama", dict(max_position_embeddings=16,
                                    rope_scaling={"rope_type": "dynamic", "factor": 2.0}), False),
    # factor 4 while max_pos / O = 2: shows which one transformers uses.
    "llama_yarn": ("llama", dict(rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                               "original_max_position_embeddings": 32}), False),
    "mistral_swa": ("mistral", dict(head_dim=32, sliding_window=8), False),
    "qwen2": ("qwen2", dict(), False),
    "qwen2_yarn": ("qwen2", dict(rope_scaling={"type": "yarn", "factor": 2.0,
                                               "original_max_position_embeddings": 32}), False),
    "qwen3": ("qwen3", dict(head_dim=32), False),
    "phi3_partial": ("phi3", dict(pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                  partial_rotary_factor=0.5), False),
}

REAL_TEXTS = [
    "One day, a clever fox found a shiny key under the old oak tree.",
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park with her dog. One day, she saw a big red ball.",
]
FOX = REAL_TEXTS[0]


def load(d):
    return AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                attn_implementation="eager").eval()


def run_one(d, ids, tensors, s, capture):
    """Runs a fresh model on one sequence and records logits (+ hidden states)."""
    m = load(d)
    hooks = []
    if capture:
        layers = m.model.layers
        for li, layer in enumerate(layers):
            def out_hook(_mod, _inp, out, li=li):
                t = out[0] if isinstance(out, (tuple, list)) else out
                tensors[f"hidden.{li}.{s}"] = t[0].detach().float().contiguous().clone()
            hooks.append(layer.register_forward_hook(out_hook))
        attn = layers[0].self_attn
        proj = attn.qkv_proj if hasattr(attn, "qkv_proj") else attn.q_proj

        def in_hook(_mod, args):
            tensors[f"attn_in.0.{s}"] = args[0][0].detach().float().contiguous().clone()
        hooks.append(proj.register_forward_pre_hook(in_hook))
    with torch.no_grad():
        logits = m(torch.tensor([ids])).logits[0].float()
    for h in hooks:
        h.remove()
    tensors[f"ids.{s}"] = torch.tensor(ids, dtype=torch.int64)
    tensors[f"logits.{s}"] = logits.contiguous()
    return m, logits


def tiny(out_dir, report):
    g = torch.Generator().manual_seed(SEED)
    for vi, (name, (mt, kw, fp32)) in enumerate(VARIANTS.items()):
        torch.manual_seed(SEED + vi)
        args = dict(BASE)
        args.update(kw)
        cfg = AutoConfig.for_model(mt, **args)
        model = AutoModelForCausalLM.from_config(cfg).eval()
        d = os.path.join(out_dir, name)
        if not fp32:
            model = model.to(torch.bfloat16)
        model.save_pretrained(d)
        gc = os.path.join(d, "generation_config.json")
        if os.path.exists(gc):
            os.remove(gc)
        tensors = {}
        m = None
        for s, T in enumerate(LENGTHS):
            ids = torch.randint(0, BASE["vocab_size"], (T,), generator=g).tolist()
            m, logits = run_one(d, ids, tensors, s, capture=True)
        # rotary state of the longest run: rerun it so dynamic reflects T = LENGTHS[0]
        m, _ = run_one(d, tensors["ids.0"].tolist(), {}, 0, capture=False)
        rot = m.model.rotary_emb
        tensors["inv_freq"] = rot.inv_freq.detach().float().contiguous().clone()
        tensors["attention_scaling"] = torch.tensor([float(rot.attention_scaling)])
        save_file(tensors, os.path.join(d, "golden.safetensors"))
        report[name] = dict(model_type=mt, stored="fp32" if fp32 else "bf16",
                            max_abs_logit=float(tensors["logits.0"].abs().max()),
                            attention_scaling=float(rot.attention_scaling),
                            rope_parameters=getattr(m.config, "rope_parameters", None))
        print(name, report[name], flush=True)


def real(assets, out_dir, report):
    from tokenizers import Tokenizer
    for name, sub in (("stories260K", "stories260K/hf"), ("microstories10M", "microstories10M")):
        src = os.path.join(assets, sub)
        if not os.path.isdir(src):
            print("missing", src, flush=True)
            continue
        tok = Tokenizer.from_file(os.path.join(src, "tokenizer.json"))
        tensors = {}
        info = {}
        for s, text in enumerate(REAL_TEXTS):
            ids = tok.encode(text).ids
            if not ids or ids[0] != 1:
                ids = [1] + ids
            info[f"len.{s}"] = len(ids)
            run_one(src, ids, tensors, s, capture=False)
        # perplexity of the fox sentence: mean NLL of tokens 1..T-1 given their prefixes
        ids = tensors["ids.0"]
        logits = tensors["logits.0"]
        lp = torch.log_softmax(logits.double(), -1)
        nll = -lp[:-1].gather(1, ids[1:, None]).squeeze(1)
        info["fox_ppl"] = math.exp(nll.mean().item())
        info["fox_tokens"] = int(ids.numel())
        if name == "stories260K":
            m = load(src)
            with torch.no_grad():
                gen = m.generate(torch.tensor([[1]]), max_new_tokens=200, do_sample=False,
                                 eos_token_id=None, pad_token_id=0, min_new_tokens=200)
            gen_ids = gen[0].tolist()
            tensors["greedy"] = torch.tensor(gen_ids, dtype=torch.int64)
            text = tok.decode(gen_ids[1:], skip_special_tokens=False)
            ref = open(os.path.join(assets, "stories260K/reference_greedy_t0_200steps.txt")).read()
            info["greedy_matches_reference_prefix"] = ref.strip().startswith(text.strip()[:len(ref.strip())]) or text.strip().startswith(ref.strip())
            info["greedy_text_head"] = text[:200]
            info["ref_len"] = len(ref)
            info["gen_len"] = len(text)
            with open(os.path.join(out_dir, "stories260K_greedy.txt"), "w") as f:
                f.write(text)
        dd = os.path.join(out_dir, "real", name)
        os.makedirs(dd, exist_ok=True)
        save_file(tensors, os.path.join(dd, "golden.safetensors"))
        report[name] = info
        print(name, info, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--assets", default=".device/assets")
    a = ap.parse_args()
    torch.set_num_threads(8)
    os.makedirs(a.out, exist_ok=True)
    report = dict(transformers=transformers.__version__, torch=torch.__version__, seed=SEED,
                  lengths=list(LENGTHS))
    tiny(a.out, report)
    try:
        real(a.assets, a.out, report)
    except Exception as e:  # keep the tiny goldens even if the real part fails
        import traceback
        traceback.print_exc()
        report["real_error"] = repr(e)
    with open(os.path.join(a.out, "gen_forward_golden.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)


if __name__ == "__main__":
    main()
