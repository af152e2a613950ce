#!/usr/bin/env bash
# The GPU check (issue 16): on a machine with one CUDA device, in under 5 minutes, the CUDA tests
# (fp32, bf16 and fp16 encoders against ours in fp32 on the CPU, batched and compiled embedding,
# a full training step) and the GPU figures (embedding ms/image for vit_b and vit_h at batch 1
# and 8, click ms, automatic pass images/hour). Run from the repository root after
# `make install` (or with any Python that has the project's requirements): bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PY:-.venv/bin/python}"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device: this check needs a GPU")'
export SADE_DATA_DIR="${SADE_DATA_DIR:-$(mktemp -d)}"
echo "== CUDA tests"
"$PY" -m pytest -q -p no:cacheprovider -m gpu tests/gpu
echo "== GPU figures"
"$PY" benchmarks/bench_gpu.py --device cuda --models vit_b vit_h --batches 1 8 \
    --precisions fp32 bf16 fp16 --compile "$@"
