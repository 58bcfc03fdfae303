#!/usr/bin/env bash
# e2e quantize of an 8 GiB synthetic bf16 checkpoint, --device cpu vs --device cuda, against
# reading the input once (docs/BENCHMARKS.md):  tools/bench_e2e_gpu.sh [BIN_DIR with microscale]
set -uo pipefail
B=${1:-build}; B=$(cd "$B" && pwd); export LD_LIBRARY_PATH=$B/../lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
M=/tmp/m8; O=/tmp/o8
[ -d $M ] || $B/microscale synth --output $M --target-size 8GiB --threads 16 2>&1 | tail -1
cat $M/*.safetensors > /dev/null  # warm
s=$(date +%s%N); cat $M/*.safetensors > /dev/null; e=$(date +%s%N)
echo "read once (cat, warm page cache): $(( (e - s) / 1000000 )) ms for $(du -cb $M/*.safetensors | tail -1 | cut -f1) bytes"
for recipe in W4A16_NVFP4_CFG NVFP4_FOUR_OVER_SIX_CFG; do
  for dev in cpu cuda; do
    rm -rf $O
    /usr/bin/time -f "peak_rss_kb %M" $B/microscale quantize --model $M --recipe $recipe --weights-only --output $O --device $dev --threads 16 --json --progress none > /tmp/j.json 2> /tmp/err.txt
    rc=$?
    python3 -c "import json;j=json.load(open('/tmp/j.json'));print('$recipe $dev', 'seconds %.2f'%j['seconds'], 'GB/s %.2f'%(j['input_bytes']/j['seconds']/1e9), j['seconds_breakdown'])" 2>/dev/null || tail -3 /tmp/err.txt
    grep peak_rss /tmp/err.txt; echo "rc $rc"
  done
done
# NVFP4 W4A4 with calibration: the forward pass on the GPU too (32 x 512 random token ids).
python3 -c "
import random; random.seed(0)
print('\n'.join(' '.join(str(random.randrange(1000)) for _ in range(600)) for _ in range(32)))" > /tmp/calib8.ids
rm -rf $O
/usr/bin/time -f "peak_rss_kb %M" $B/microscale quantize --model $M --recipe NVFP4_DEFAULT_CFG+FP8_KV_CFG --calib /tmp/calib8.ids \
    --calib-size 32 --calib-seq-len 512 --output $O --device cuda --threads 16 --json --progress none > /tmp/j.json 2> /tmp/err.txt
rc=$?
python3 -c "import json;j=json.load(open('/tmp/j.json'));print('NVFP4_DEFAULT_CFG+FP8_KV_CFG (calibrated, 32x512) cuda', 'seconds %.2f'%j['seconds'], 'GB/s %.2f'%(j['input_bytes']/j['seconds']/1e9), j['seconds_breakdown'])" 2>/dev/null || tail -5 /tmp/err.txt
python3 -c "import json;[print(n) for n in json.load(open('/tmp/j.json'))['notes'] if 'calibration' in n]" 2>/dev/null; grep peak_rss /tmp/err.txt; echo "rc $rc"
