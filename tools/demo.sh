#!/usr/bin/env bash
# `make demo`: the embedded default job. Generates a small deterministic synthetic Llama-style
# checkpoint (heavy-tailed weights, per-channel outliers), quantizes its linear weights with
# NVFP4_FOUR_OVER_SIX_CFG (weight-only: no calibration data needed), verifies and inspects it.
set -euo pipefail
build=${1:-build}
ms="$build/microscale"
work=${MICROSCALE_DEMO_DIR:-$build/demo}
rm -rf "$work"
mkdir -p "$work"
echo "== 1. synthetic checkpoint"
"$ms" synth --output "$work/llama-synthetic" --hidden 512 --layers 4 --heads 8 --kv-heads 4 --ffn 1408 --vocab 4096 --seed 1
echo
echo "== 2. quantize: NVFP4 four-over-six weights (W4A16 export)"
"$ms" quantize --model "$work/llama-synthetic" --recipe NVFP4_FOUR_OVER_SIX_CFG --weights-only \
    --output "$work/llama-synthetic-nvfp4-4o6"
echo
echo "== 3. inspect the exported checkpoint"
"$ms" inspect "$work/llama-synthetic-nvfp4-4o6"
