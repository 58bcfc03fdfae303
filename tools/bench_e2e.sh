#!/usr/bin/env bash
# End-to-end `microscale quantize` benchmark (docs/BENCHMARKS.md): a synthetic bf16 Llama-style
# checkpoint of the given size, read once with cat (the I/O baseline), then quantized with each
# recipe; wall time and peak RSS from /usr/bin/time.
#   tools/bench_e2e.sh [SIZE=2GiB] [BUILD=build] [DIR=/tmp/ms-bench] [THREADS=0]
set -euo pipefail
size=${1:-2GiB}
build=${2:-build}
dir=${3:-/tmp/ms-bench}
threads=${4:-0}
ms="$build/microscale"
model="$dir/model-$size"
mkdir -p "$dir"
if [ ! -f "$model/config.json" ]; then
    "$ms" synth --output "$model" --target-size "$size" --vocab 32000 --seed 7 >/dev/null
fi
bytes=$(du -cb "$model"/*.safetensors | tail -1 | cut -f1)
echo "model: $model  $(awk -v b="$bytes" 'BEGIN{printf "%.2f GiB", b/2^30}') of bf16 tensors"
cat "$model"/*.safetensors >/dev/null  # warm the page cache the same way for every row
t0=$(date +%s.%N); cat "$model"/*.safetensors >/dev/null; t1=$(date +%s.%N)
awk -v b="$bytes" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%-44s %8.2f s  %8.0f MB/s\n", "cat > /dev/null (page cache warm)", t1-t0, b/1e6/(t1-t0)}'
run() {
    local name=$1; shift
    local out="$dir/out"
    rm -rf "$out"
    /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$ms" quantize --model "$model" --output "$out" --threads "$threads" "$@" \
        >/dev/null 2>"$dir/log.txt"
    read -r secs kib <"$dir/time.txt"
    awk -v b="$bytes" -v s="$secs" -v k="$kib" -v n="$name" \
        'BEGIN{printf "%-44s %8.2f s  %8.0f MB/s  peak RSS %6.0f MiB\n", n, s, b/1e6/s, k/1024}'
}
run "quantize W4A16_NVFP4_CFG" --recipe W4A16_NVFP4_CFG
run "quantize NVFP4_FOUR_OVER_SIX_CFG --weights-only" --recipe NVFP4_FOUR_OVER_SIX_CFG --weights-only
rm -rf "$dir/out"
