#!/usr/bin/env bash
# The device call: train for $BUDGET seconds, export the teacher, evaluate; all results in $OUT.
# Device command (from the repository root; carry .traindata):
#   set -o pipefail; BUDGET=330 bash tools/train/run_device.sh 2>&1 | tee $OUT/log.txt
# Resume: put a returned ckpt.pt under a carried folder and set RESUME=<path from repo root>.
# Smoke test here: PY=/path/to/venv/python TRAIN_ARGS="--arch vit_test ..." EVAL_ARGS=... OUT=...
set -euo pipefail
: "${OUT:?OUT must name the output folder}"
BUDGET=${BUDGET:-330}
PY=${PY:-python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${DATA:-$ROOT/.traindata}
RESUME_ARG=()
[ -n "${RESUME:-}" ] && RESUME_ARG=(--resume "$ROOT/$RESUME")
export PYTHONUNBUFFERED=1
cd "$ROOT/tools/train"
date -u +"start %FT%TZ"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
T0=$(date +%s)
# shellcheck disable=SC2086
$PY train.py --data "$DATA" --out "$OUT" --budget-s "$BUDGET" "${RESUME_ARG[@]}" ${TRAIN_ARGS:-}
$PY export.py --ckpt "$OUT/ckpt.pt" --out "$OUT" --device-s "$(( $(date +%s) - T0 ))"
# shellcheck disable=SC2086
$PY eval.py --data "$DATA" --weights "$OUT/model.safetensors" --out "$OUT" ${EVAL_ARGS:-}
date -u +"end %FT%TZ"
ls -la "$OUT"
