#!/usr/bin/env bash
# One short GPU check: Q1 throughput at batch 16 and 256, a Q2 epoch slice at 224 px, PGD-10 throughput.
# Usage (from the repository root, on a CUDA machine): bash bench/gpu.sh [python]
set -euo pipefail
PY=${1:-python}
OUT=results/bench/$(hostname)-gpu.json
"$PY" bench/gpu.py --out "$OUT"
echo "wrote $OUT"
