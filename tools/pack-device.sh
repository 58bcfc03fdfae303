#!/usr/bin/env bash
# Copy a local build's binaries and the shared libraries they need (other than glibc and the
# CUDA driver; cuBLAS, cuSOLVER and its cuSPARSE / nvJitLink (hundreds of MiB) are taken from the
# GPU machine's CUDA 13 in /usr/local/cuda/lib64) into .device/{bin,lib}, so a GPU machine without our Debian packages runs them:
#   tools/pack-device.sh build-cu   then carry .device with the device tool
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
mkdir -p .device/bin .device/lib
for f in "$B/microscale" "$B/tests/microscale_gpu_tests" "$B/bench/microscale_gpu_bench" "$B/bench/microscale_gpu_bench_forward" "$B/bench/microscale_gpu_bench_gptq" "$@"; do
    [ -f "$f" ] && [ -x "$f" ] || continue
    cp "$f" .device/bin/
    (ldd "$f" | awk '/=> \//{print $3}' | grep -vE '/(libc|libm|libpthread|libdl|librt|libgcc_s|libstdc\+\+|ld-linux|libcuda|libcublas|libcublasLt|libcusolver|libcusparse|libnvJitLink)\.so' || true) |
        while read -r lib; do cp -L "$lib" .device/lib/; done
done
du -sh .device/bin .device/lib
