#!/usr/bin/env bash
# One command on the GPU machine: the `gpu` tests, the GPU kernel benchmark, the PyTorch baseline
# on the same tensor, GPU GPTQ against a PyTorch GPTQ, and short tables. GPU time is scarce, so
# everything runs in one go.
#
#   tools/gpu-check.sh [BIN_DIR]
#
# BIN_DIR holds microscale_gpu_tests, microscale_gpu_bench, microscale_gpu_bench_forward,
# microscale_gpu_bench_gptq and microscale (a build made elsewhere and carried along, with its
# shared libraries in BIN_DIR/../lib, see tools/pack-device.sh).
# Without it the script builds in build-gpu with cmake + ninja. Results go to $OUT (or
# /tmp/gpu-check) as text files.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
if [ -n "${1:-}" ]; then
    BIN=$(cd "$1" && pwd)
    export LD_LIBRARY_PATH="$BIN/../lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
    TESTS=$BIN/microscale_gpu_tests BENCH=$BIN/microscale_gpu_bench FWD_BENCH=$BIN/microscale_gpu_bench_forward
    GPTQ_BENCH=$BIN/microscale_gpu_bench_gptq
else
    cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DMICROSCALE_CUDA=ON >"$OUT/build.txt" 2>&1 &&
        cmake --build build-gpu -j "$(nproc)" >>"$OUT/build.txt" 2>&1 || { tail -30 "$OUT/build.txt"; exit 1; }
    TESTS=build-gpu/tests/microscale_gpu_tests BENCH=build-gpu/bench/microscale_gpu_bench
    FWD_BENCH=build-gpu/bench/microscale_gpu_bench_forward GPTQ_BENCH=build-gpu/bench/microscale_gpu_bench_gptq
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"

echo "== gpu tests"
"$TESTS" 2>&1 | tee "$OUT/gpu_tests.txt" | grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|Failure|differ|FAILED" | head -40
tests_rc=${PIPESTATUS[0]}

echo "== kernels (microscale_gpu_bench)"
ROWS=${ROWS:-14336} COLS=${COLS:-4096}
"$BENCH" --rows "$ROWS" --cols "$COLS" --save-weights /tmp/gpu-check-w.bin | tee "$OUT/gpu_bench.txt"

echo "== PyTorch eager on the same tensor"
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    python3 tools/bench_torch_quant.py --weights /tmp/gpu-check-w.bin --rows "$ROWS" --cols "$COLS" \
        --ours "$OUT/gpu_bench.txt" | tee "$OUT/torch_bench.txt"
else
    echo "(no torch with CUDA here: skipped)"
fi
rm -f /tmp/gpu-check-w.bin

echo "== calibration forward (microscale_gpu_bench_forward, synthetic 1B llama) vs transformers bf16 sdpa"
FWD_ARGS=${FWD_ARGS:-"--seqs 16 --seq-len 2048 --batch 8"}
if [ -x "$FWD_BENCH" ]; then
    # shellcheck disable=SC2086
    "$FWD_BENCH" --workdir /tmp/microscale-bench-1b $FWD_ARGS | tee "$OUT/forward_bench.txt"
    if python3 -c "import torch, transformers; assert torch.cuda.is_available()" 2>/dev/null; then
        # shellcheck disable=SC2086
        python3 tools/bench_hf_forward.py --model /tmp/microscale-bench-1b $FWD_ARGS | tee -a "$OUT/forward_bench.txt"
    else
        echo "(no torch/transformers with CUDA here: HF baseline skipped)"
    fi
else
    echo "(no $FWD_BENCH: skipped)"
fi
echo "== GPTQ (microscale_gpu_bench_gptq, NVFP4 fixed grid, block 128) vs a PyTorch GPTQ"
GPTQ_SHAPES=${GPTQ_SHAPES:-4096x4096,4096x14336,14336x4096}
if [ -x "$GPTQ_BENCH" ]; then
    "$GPTQ_BENCH" --shapes "$GPTQ_SHAPES" | tee "$OUT/gptq_bench.txt"
    if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
        python3 tools/bench_torch_gptq.py --shapes "$GPTQ_SHAPES" --ours "$OUT/gptq_bench.txt" | tee "$OUT/torch_gptq.txt"
    else
        echo "(no torch with CUDA here: PyTorch GPTQ skipped)"
    fi
else
    echo "(no $GPTQ_BENCH: skipped)"
fi
echo "== gpu tests exit code: $tests_rc"
exit "$tests_rc"
