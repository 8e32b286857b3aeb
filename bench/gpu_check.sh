#!/usr/bin/env bash
# The GPU machine's side of bench/gpu_check.py (issue 13). Its image has torch with CUDA but
# not llmkit's pinned libraries and no package registry: `make device-wheels` puts them in
# .device/wheels here, the device tool carries that folder, and they are installed into a
# folder that PYTHONPATH puts before the image's own packages (a venv would not see the
# image's torch, itself installed in a venv). Run through the device tool:
#   run(command="bash bench/gpu_check.sh", carry=[".device"], timeout_s=540)
set -uo pipefail
OUT=${OUT:-$PWD/runs/gpu-check}
mkdir -p "$OUT"
SITE=/tmp/llmkit-site
python3 -m pip install -q --no-index --no-deps --target "$SITE" .device/wheels/*.whl
export PYTHONPATH="$SITE:$PWD:$PWD/bench" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, accelerate, datasets, pyarrow; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__)"
python3 bench/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
