#!/usr/bin/env python3
"""Golden fixtures for microscale's tokenizer (src/calib/tokenizer*), from HF `tokenizers`.

The GPU machine has `tokenizers` and `transformers` but no network, so this script builds every
tokenizer it needs itself:

* byte-level BPEs trained here on the repository's own text (plus a few multilingual lines), with
  a GPT-2 pipeline (ByteLevel pre-tokenizer with its regex), a Llama-3 pipeline (Split on the
  Llama-3 regex + ByteLevel without regex, ignore_merges, BOS template) and a Qwen2 pipeline
  (NFC + Split on the Qwen2 regex + ByteLevel); one copy stores merges as "a b" strings;
* the stories260K SentencePiece-style BPE (byte fallback, Prepend/Replace normalizer) as shipped,
  and variants of it with the Metaspace pre-tokenizer (prepend_scheme first / always, split) and
  without byte fallback (unknown tokens).

For every tokenizer and text it records `encode(text, add_special_tokens=True/False).ids`, the
tokens, and `decode(ids, skip_special_tokens=False/True)`. It also checks which splitting of
tinystories_val_first1000.eot.txt reproduces tinystories_val_first1000.tok512.ids.txt, compares
transformers' AutoTokenizer with `tokenizers` on stories260K, and times `tokenizers` on
wiki.test.raw (one thread) for the speed comparison.

Usage (GPU machine, from the repo root; inputs copied to .device/tok/ and carried):
    PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false python3 tools/gen_tokenizer_golden.py \
        --assets .device/tok --out $OUT/tokenizer_golden.json
Then, here:  python3 tools/gen_tokenizer_golden.py --unpack FILE --dest tests/golden/tokenizer

The NFC tables of src/calib/tokenizer_nfc_data.inc come from this script too (Python's unicodedata):
    python3 tools/gen_tokenizer_golden.py --nfc-tables src/calib/tokenizer_nfc_data.inc
"""

import argparse
import glob
import json
import os
import sys
import time

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

MULTILINGUAL = [
    "中文测试：你好，世界！我们今天去公园散步。", "日本語のテキスト、カタカナとひらがな。",
    "한국어 텍스트입니다. 안녕하세요.", "Ωμέγα Ελληνικά γράμματα", "Привет, мир! Как дела?",
    "שלום עולם, מה שלומך", "مرحبا بالعالم، كيف حالك", "café naïve façade résumé über Straße",
    "emoji 😀👍🏽 🇫🇷 👨‍👩‍👧 ❤️ 🎉", "Numbers 0 1 12 123 1234 12345 3.14159 1,000,000",
]

TEXTS = [
    "", " ", "  ", "   ", "\n", "\n\n", "\r\n", "\r", "\t", " \t \n ", "\n\n\nx\n\n",
    "Hello world", " Hello world", "Hello world ", "Hello   world", "  leading and trailing  ",
    "line1\nline2\r\nline3\n", "tabs\tand\t\tmore\t", "trailing newline\n", " \n leading",
    "Numbers: 0 1 12 123 1234 12345 123456789 3.14159 1,000,000 -42 +7 1e-3",
    "I'm sure it's what they're doing; we've, I'll, he'd, DON'T, IT'S, You'RE, o'clock",
    "'s 't 're 've 'm 'll 'd ' s",
    "中文测试：你好，世界！", "日本語のテキスト、カタカナ", "한국어 텍스트", "Ωμέγα Ελληνικά",
    "emoji 😀👍🏽 🇫🇷 👨‍👩‍👧 ❤️", "combining: e\u0301 a\u0308 n\u0303 and precomposed é ä ñ",
    "RTL: שלום עולם مرحبا بالعالم \u200fmark\u200e",
    "\u00a0nbsp\u00a0 zero\u200bwidth \u3000ideographic\u3000space \u2028sep",
    "control \x01\x02 chars \x7f and NUL \x00 inside",
    "ASCII punctuation !@#$%^&*()_+-=[]{}|;':\",./<>?`~ \\ done",
    "URLs https://example.com/a?b=c&d=e#frag and emails a.b@c.org",
    "code: for (int i = 0; i < n; ++i) { x[i] += y[i] * 2; }",
    "special <|endoftext|> inside", "<|endoftext|>", "<|endoftext|><|endoftext|>",
    "<s>starts with bos", "ends with eos</s>", "mixed <s> and </s> and <unk> here",
    "<|begin_of_text|>Hi<|eot_id|> <|im_start|>user\nhello<|im_end|>\n",
    "the <mask> token   <mask>  with spaces", "microscale quantizes microscale models",
    "a" * 300, "supercalifragilisticexpialidocious" * 8,
    "x" * 40 + "y" * 40 + "z" * 40 + "0123456789" * 10,
    "The quick brown fox jumps over the lazy dog. " * 4,
    "Once upon a time, there was a little girl named Lily. She loved to play outside.\n\n"
    "One day, she saw a big, red ball in the park. \"Can I play?\" she asked.",
    "One day, a clever fox found a shiny key under the old oak tree.",
    "▁already▁has▁metaspace ▁ ▁▁",
    "<0x41> looks like a byte token",
    "Ġ Ċ ĉ byte-level chars typed by hand",
] + MULTILINGUAL


def corpus(repo):
    lines = []
    for pattern in ("docs/*.md", "README.md", "src/**/*.cpp", "src/**/*.h", "tools/*.py", ".device/tok/spec/*.md"):
        for path in sorted(glob.glob(os.path.join(repo, pattern), recursive=True)):
            with open(path, encoding="utf-8", errors="replace") as f:
                lines.extend(f.read().splitlines())
    lines.extend(MULTILINGUAL * 20)
    lines.extend(TEXTS * 5)
    return lines


def build(repo, assets):
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors, trainers)
    lines = corpus(repo)
    print(f"corpus: {len(lines)} lines, {sum(len(l) for l in lines)} chars")
    out = {}

    def train(tok, vocab, specials):
        trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, min_frequency=2,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(lines, trainer)
        return tok

    # GPT-2: ByteLevel with its own regex, no prefix space, ByteLevel post-processor (ids untouched).
    gpt2 = Tokenizer(models.BPE())
    gpt2.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    gpt2.decoder = decoders.ByteLevel()
    gpt2.post_processor = processors.ByteLevel(trim_offsets=False)
    train(gpt2, 2000, ["<|endoftext|>"])
    out["gpt2"] = (gpt2, {"add_bos_token": False, "eos_token": "<|endoftext|>",
                          "bos_token": "<|endoftext|>"})

    # GPT-2 with add_prefix_space and "a b" string merges (the pre-0.20 format).
    d = json.loads(gpt2.to_str())
    d["pre_tokenizer"]["add_prefix_space"] = True
    d["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in d["model"]["merges"]]
    gpt2s = Tokenizer.from_str(json.dumps(d))
    gpt2s.add_tokens([AddedToken("microscale", normalized=True, special=False)])
    gpt2s.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, special=True,
                                         normalized=False)])
    out["gpt2_prefix_strmerges"] = (gpt2s, {})

    # Llama 3: Split(regex, isolated) + ByteLevel(no regex), ignore_merges, BOS via template.
    l3 = Tokenizer(models.BPE(ignore_merges=True))
    l3.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    l3.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    train(l3, 2500, specials)
    bos = l3.token_to_id("<|begin_of_text|>")
    l3.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    out["llama3"] = (l3, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})

    # Qwen2: NFC, Split(Qwen2 regex: single digits), ByteLevel; no BOS.
    q2 = Tokenizer(models.BPE())
    q2.normalizer = normalizers.NFC()
    q2.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    q2.decoder = decoders.ByteLevel()
    q2.post_processor = processors.ByteLevel(trim_offsets=False)
    train(q2, 2200, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    out["qwen2"] = (q2, {"eos_token": "<|im_end|>", "bos_token": None, "add_bos_token": False})

    # stories260K as shipped (SentencePiece BPE, byte fallback, Prepend + Replace normalizer).
    with open(os.path.join(assets, "tokenizer.json"), encoding="utf-8") as f:
        stories_json = f.read()
    with open(os.path.join(assets, "tokenizer_config.json"), encoding="utf-8") as f:
        stories_cfg = json.load(f)
    st = Tokenizer.from_str(stories_json)
    out["stories260k"] = (st, stories_cfg)

    # Metaspace pre-tokenizer, prepend_scheme first, no split (Llama 2 / Mistral, legacy=False).
    d = json.loads(stories_json)
    d["normalizer"] = None
    d["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                          "split": False}
    d["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                    "split": False}
    out["metaspace_first"] = (Tokenizer.from_str(json.dumps(d)), stories_cfg)

    # Metaspace always + split, BOS and EOS template.
    d["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                          "split": True}
    d["decoder"] = json.loads(stories_json)["decoder"]
    d["post_processor"] = {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                                              "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}
    cfg = dict(stories_cfg, add_eos_token=True)
    out["metaspace_always_split"] = (Tokenizer.from_str(json.dumps(d)), cfg)

    # No byte fallback: unknown characters become <unk> (fused).
    d = json.loads(stories_json)
    d["model"]["byte_fallback"] = False
    d["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    out["stories_unk"] = (Tokenizer.from_str(json.dumps(d)), stories_cfg)
    return out


def record(tok):
    cases = []
    for text in TEXTS:
        with_sp = tok.encode(text, add_special_tokens=True)
        plain = tok.encode(text, add_special_tokens=False)
        cases.append({
            "text": text,
            "ids": with_sp.ids,
            "ids_plain": plain.ids,
            "tokens_plain": plain.tokens,
            "decode": tok.decode(with_sp.ids, skip_special_tokens=False),
            "decode_skip": tok.decode(with_sp.ids, skip_special_tokens=True),
        })
    return cases


def check_tinystories(assets, st, report):
    eot = os.path.join(assets, "tinystories_val_first1000.eot.txt")
    ids_path = os.path.join(assets, "tinystories_val_first1000.tok512.ids.txt")
    if not (os.path.exists(eot) and os.path.exists(ids_path)):
        return
    with open(eot, encoding="utf-8") as f:
        stories = f.read().split("<|endoftext|>")
    with open(ids_path) as f:
        want = [[int(x) for x in line.split()] for line in f.read().splitlines()]
    variants = {
        "strip_nobos": lambda s: st.encode(s.strip(), add_special_tokens=False).ids,
        "strip_bos": lambda s: st.encode(s.strip(), add_special_tokens=True).ids,
        "raw_nobos": lambda s: st.encode(s, add_special_tokens=False).ids,
        "lstripnl_nobos": lambda s: st.encode(s.lstrip("\n").rstrip("\n"), add_special_tokens=False).ids,
    }
    res = {}
    for name, fn in variants.items():
        n = min(len(want), len(stories), 1000)
        res[name] = sum(fn(stories[i]) == want[i] for i in range(n))
    report["tinystories_ids_match"] = {"lines": len(want), "stories": len(stories), "matches": res}
    print("tinystories:", report["tinystories_ids_match"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", default=".device/tok")
    ap.add_argument("--out")
    ap.add_argument("--unpack")
    ap.add_argument("--dest", default="tests/golden/tokenizer")
    ap.add_argument("--nfc-tables")
    args = ap.parse_args()
    if args.nfc_tables:
        return nfc_tables(args.nfc_tables)
    if args.unpack:
        return unpack(args.unpack, args.dest)

    import tokenizers
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    report = {"tokenizers": tokenizers.__version__}
    try:
        import transformers
        report["transformers"] = transformers.__version__
    except Exception as e:  # noqa: BLE001 - informational only
        report["transformers"] = f"unavailable: {e}"
    t0 = time.time()
    toks = build(repo, args.assets)
    golden = {"generator": "tools/gen_tokenizer_golden.py", "report": report, "tokenizers": {}}
    for name, (tok, cfg) in toks.items():
        tok_json = json.loads(tok.to_str())
        if name.endswith("_strmerges"):  # keep the pre-0.20 "a b" merge strings on disk
            tok_json["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m
                                           for m in tok_json["model"]["merges"]]
        # Round trip: what we store must load back and encode the same.
        again = tokenizers.Tokenizer.from_str(json.dumps(tok_json))
        assert all(again.encode(t).ids == tok.encode(t).ids for t in TEXTS), name
        golden["tokenizers"][name] = {"tokenizer_json": tok_json, "tokenizer_config": cfg,
                                      "cases": record(tok)}
        print(f"{name}: vocab {tok.get_vocab_size()}, merges format "
              f"{type(tok_json['model'].get('merges', [[]])[0]).__name__}")

    st = toks["stories260k"][0]
    check_tinystories(args.assets, st, report)
    sentence = "One day, a clever fox found a shiny key under the old oak tree."
    report["stories_sentence_len_with_bos"] = len(st.encode(sentence).ids)
    try:  # transformers' view of the shipped stories260K dir
        from transformers import AutoTokenizer
        at = AutoTokenizer.from_pretrained(args.assets)
        diffs = [t for t in TEXTS if at(t)["input_ids"] != st.encode(t).ids]
        report["transformers_vs_tokenizers_stories_diffs"] = diffs
        report["transformers_sentence_ids"] = at(sentence)["input_ids"]
    except Exception as e:  # noqa: BLE001
        report["transformers_error"] = repr(e)

    wiki = os.path.join(args.assets, "wiki.test.raw")
    if os.path.exists(wiki):
        with open(wiki, encoding="utf-8") as f:
            wlines = f.read().splitlines(keepends=True)
        nbytes = sum(len(l.encode()) for l in wlines)
        for name in ("gpt2", "llama3", "stories260k"):
            tok = toks[name][0]
            tok.encode("warm up")
            t = time.perf_counter()
            for line in wlines:
                tok.encode(line, add_special_tokens=False)
            dt = time.perf_counter() - t
            report[f"speed_{name}_MBps"] = nbytes / dt / 1e6
        report["speed_text"] = f"wiki.test.raw {nbytes} bytes, Tokenizer.encode per line, 1 thread"
    report["seconds"] = time.time() - t0
    print(json.dumps(report, indent=1, ensure_ascii=False))
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False)


def nfc_tables(path):
    """Canonical combining classes, full canonical decompositions and primary compositions."""
    import unicodedata as ud
    ccc, decomp, comp = [], [], []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000 or 0xAC00 <= cp <= 0xD7A3:  # surrogates; Hangul is algorithmic
            continue
        ch = chr(cp)
        if ud.combining(ch):
            ccc.append((cp, ud.combining(ch)))
        d = ud.decomposition(ch)
        if d and not d.startswith("<"):
            decomp.append((cp, [ord(c) for c in ud.normalize("NFD", ch)]))
            parts = [int(x, 16) for x in d.split()]
            if len(parts) == 2 and ud.normalize("NFC", chr(parts[0]) + chr(parts[1])) == ch:
                comp.append((parts[0], parts[1], cp))
    comp.sort()
    # Below this code point NFC is the identity whatever the neighbours are.
    changing = [cp for cp, _ in ccc] + [b for _, b, _ in comp] + \
        [cp for cp, _ in decomp if ud.normalize("NFC", chr(cp)) != chr(cp)]
    safe_below = min(changing + [0x1100])
    lines = [f"// Generated by tools/gen_tokenizer_golden.py --nfc-tables from Python {sys.version.split()[0]}",
             f"// unicodedata (Unicode {ud.unidata_version}). Do not edit.",
             f"constexpr char32_t kNfcSafeBelow = 0x{safe_below:X};",
             "constexpr NfcCcc kNfcCcc[] = {"]
    def rows(items, fmt, per):
        for i in range(0, len(items), per):
            lines.append("    " + " ".join(fmt(x) for x in items[i:i + per]))
    rows(ccc, lambda x: f"{{0x{x[0]:X}, {x[1]}}},", 8)
    lines.append("};")
    pool, entries = [], []
    for cp, seq in decomp:
        entries.append((cp, len(pool), len(seq)))
        pool.extend(seq)
    lines.append("constexpr char32_t kNfcDecompPool[] = {")
    rows(pool, lambda x: f"0x{x:X},", 12)
    lines.append("};")
    lines.append("constexpr NfcDecomp kNfcDecomp[] = {")
    rows(entries, lambda x: f"{{0x{x[0]:X}, {x[1]}, {x[2]}}},", 6)
    lines.append("};")
    lines.append("constexpr NfcComp kNfcComp[] = {")
    rows(comp, lambda x: f"{{0x{x[0]:X}, 0x{x[1]:X}, 0x{x[2]:X}}},", 5)
    lines.append("};")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{path}: {len(ccc)} ccc, {len(decomp)} decompositions, {len(comp)} compositions, "
          f"safe below U+{safe_below:04X}")


def unpack(path, dest):
    with open(path, encoding="utf-8") as f:
        golden = json.load(f)
    os.makedirs(dest, exist_ok=True)
    expected = {"generator": golden["generator"], "report": golden["report"], "tokenizers": {}}
    for name, g in golden["tokenizers"].items():
        d = os.path.join(dest, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(g["tokenizer_json"], f, ensure_ascii=False, indent=1)
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(g["tokenizer_config"], f, ensure_ascii=False, indent=1)
        expected["tokenizers"][name] = g["cases"]
    with open(os.path.join(dest, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=0)
    print(f"unpacked {len(golden['tokenizers'])} tokenizers into {dest}")


if __name__ == "__main__":
    sys.exit(main())
