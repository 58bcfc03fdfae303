#!/usr/bin/env bash
# `make demo`: the embedded default job. Until `microscale quantize` lands it prints the format
# table and says so.
set -euo pipefail
build=${1:-build}
"$build/microscale" formats
echo "microscale demo: the quantize pipeline is not yet built (issue: microscale quantize)."
