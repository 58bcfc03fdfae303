#!/usr/bin/env bash
# End-to-end `microscale quantize` benchmark (docs/BENCHMARKS.md): a synthetic bf16 Llama-style
# checkpoint of the given size, read once with cat (the I/O baseline), then quantized with each
# recipe; wall time and peak RSS from /usr/bin/time. The kernel-only throughput of the same
# recipe at the same thread count (microscale_bench, 4096x4096) runs in the same invocation, so
# the e2e / kernel ratio compares numbers measured side by side; a direct-I/O write of as many
# bytes as the output gives the disk's ceiling. REPEAT runs per row; the median is reported (and
# the best), the ratio is the median's.
#   tools/bench_e2e.sh [SIZE=2GiB] [BUILD=build] [DIR=/tmp/ms-bench] [THREADS=0] [REPEAT=3] [EXTRA...]
# THREADS 0 = all cores; the kernel-only rows exist for 1, 2 and all cores. EXTRA arguments go
# to every quantize run (e.g. --write-mode buffered). BUILD is a build directory or a flat folder
# of binaries (tools/pack-device.sh's .device/bin: microscale_bench beside microscale).
set -euo pipefail
size=${1:-2GiB}
build=${2:-build}
dir=${3:-/tmp/ms-bench}
threads=${4:-0}
repeat=${5:-3}
shift $(( $# < 5 ? $# : 5 ))
extra=("$@")
ms="$build/microscale"
bench="$build/bench/microscale_bench"
[ -x "$bench" ] || bench="$build/microscale_bench"
model="$dir/model-$size"
mkdir -p "$dir"
if [ ! -f "$model/config.json" ]; then
    "$ms" synth --output "$model" --target-size "$size" --vocab 32000 --seed 7 >/dev/null
fi
ncpu=$(nproc)
bytes=$(du -cb "$model"/*.safetensors | tail -1 | cut -f1)
echo "model: $model  $(awk -v b="$bytes" 'BEGIN{printf "%.2f GiB", b/2^30}') of bf16 tensors; threads $threads (0 = all $ncpu); $(date -u +%FT%TZ)"
cat "$model"/*.safetensors >/dev/null  # warm the page cache the same way for every row
t0=$(date +%s.%N); cat "$model"/*.safetensors >/dev/null; t1=$(date +%s.%N)
awk -v b="$bytes" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%-48s %8.2f s  %8.0f MB/s\n", "cat > /dev/null (page cache warm)", t1-t0, b/1e6/(t1-t0)}'

# Kernel-only GB/s of bf16 input for microscale_bench mode M (0 NVFP4 max, 3 four-over-six).
kernel_gbs() {
    local t=$threads
    [ "$t" = "$ncpu" ] && t=0
    if [ ! -x "$bench" ] || { [ "$t" != 0 ] && [ "$t" != 1 ] && [ "$t" != 2 ]; }; then echo 0; return; fi
    "$bench" --benchmark_filter="BM_Quantize/mode:$1/simd:1/threads:$t/rows:4096/cols:4096/" --benchmark_format=csv \
        2>/dev/null | awk -F, '/^"BM_Quantize/{printf "%.3f", $6/1e9; found=1} END{if(!found) printf "0"}'
}

out_bytes=0
run() {
    local name=$1 mode=$2; shift 2
    local out="$dir/out" best="" kib=0 all=""
    for ((i = 0; i < repeat; i++)); do
        rm -rf "$out"
        /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$ms" quantize --model "$model" --output "$out" --threads "$threads" \
            --progress lines "$@" "${extra[@]}" >"$dir/summary.txt" 2>"$dir/log.txt"
        read -r secs k <"$dir/time.txt"
        printf "    run %d: %6.2f s, peak RSS %4.0f MiB | %s\n" $((i + 1)) "$secs" "$(awk -v k="$k" 'BEGIN{print k/1024}')" \
            "$(grep -o 'tensors .*verify [0-9.]* s' "$dir/summary.txt")"
        if [ -z "$best" ] || awk -v a="$secs" -v b="$best" 'BEGIN{exit !(a < b)}'; then best=$secs; kib=$k; fi
        all="$all $secs"
    done
    local med
    med=$(echo "$all" | tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END{print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
    out_bytes=$(du -cb "$out"/*.safetensors | tail -1 | cut -f1)
    local kernel
    kernel=$(kernel_gbs "$mode")
    awk -v b="$bytes" -v s="$med" -v best="$best" -v k="$kib" -v n="$name" -v g="$kernel" 'BEGIN{
        e = b / 1e9 / s
        printf "%-48s %8.2f s  %8.0f MB/s (median; best %.2f s)  peak RSS %6.0f MiB", n, s, e * 1000, best, k / 1024
        if (g > 0) printf "  | kernel-only %.2f GB/s  e2e/kernel %3.0f%%", g, 100 * e / g
        printf "\n"}'
}
run "quantize W4A16_NVFP4_CFG" 0 --recipe W4A16_NVFP4_CFG
run "quantize NVFP4_FOUR_OVER_SIX_CFG --weights-only" 3 --recipe NVFP4_FOUR_OVER_SIX_CFG --weights-only
rm -rf "$dir/out"
# The disk's ceiling: writing as many bytes as the last output with O_DIRECT (8 MiB blocks, as the
# writer does), then fsync.
blocks=$(( (out_bytes + (8 << 20) - 1) / (8 << 20) ))
mib=$(( blocks * 8 ))
t0=$(date +%s.%N); dd if=/dev/zero of="$dir/dd.bin" bs=8M count="$blocks" oflag=direct conv=fsync status=none; t1=$(date +%s.%N)
rm -f "$dir/dd.bin"
awk -v m="$mib" -v b="$bytes" -v o="$out_bytes" -v t0="$t0" -v t1="$t1" 'BEGIN{
    w = m * 1048576 / 1e6 / (t1 - t0)
    printf "%-48s %8.2f s  %8.0f MB/s  (e2e ceiling if disk-bound: %.0f MB/s of input)\n",
        sprintf("dd %d MiB oflag=direct conv=fsync", m), t1 - t0, w, w * b / o}'
