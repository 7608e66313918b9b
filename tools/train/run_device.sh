#!/usr/bin/env bash
# The device call: train one or more arms side by side on the one GPU for $BUDGET seconds each,
# export each teacher, evaluate them all in one eval.py run; results in $OUT.
# Device command (from the repository root; carry .traindata):
#   set -o pipefail; BUDGET=300 ARMS=ibot INIT=models/lamina-vit-tiny-dino/model.onnx \
#     EVAL_ARGS="--tasks pcam --variants" bash tools/train/run_device.sh 2>&1 | tee $OUT/log.txt
# $OUT gets, per arm, <arm>/{model.safetensors,manifest.json,loss.csv}, plus eval.json and the
# tee log: at most two arms fit the 8 files a call brings back (checkpoints stay in /tmp; with
# both heads they exceed the 16 MiB a file may have). Arms (ARMS="a b", ARGS_b="--ibot 0")
# time-share the GPU, so each gets about its share of the steps: one arm gets the most epochs.
# INIT=<safetensors or Lamina ONNX, path from the repository root>: every arm starts its backbone from those
# weights, and eval.py scores them too (as "init"), so the run shows what the training added.
# Smoke test here: PY=python3 TRAIN_ARGS="--arch vit_test ..." EVAL_ARGS=... OUT=... (see README)
set -euo pipefail
: "${OUT:?OUT must name the output folder}"
BUDGET=${BUDGET:-330}
PY=${PY:-python3}
ARMS=${ARMS:-trained}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${DATA:-$ROOT/.traindata}
WORK=${WORK:-$(mktemp -d)}
INIT_ARG=()
[ -n "${INIT:-}" ] && INIT_ARG=(--init "$ROOT/$INIT")
export PYTHONUNBUFFERED=1
cd "$ROOT/tools/train"
date -u +"start %FT%TZ"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
T0=$(date +%s)
pids=()
for arm in $ARMS; do
  v="ARGS_$arm"
  mkdir -p "$WORK/$arm" "$OUT/$arm"
  # shellcheck disable=SC2086
  $PY train.py --data "$DATA" --out "$WORK/$arm" --budget-s "$BUDGET" "${INIT_ARG[@]}" ${TRAIN_ARGS:-} ${!v:-} \
    2>&1 | sed -u "s/^/[$arm] /" &
  pids+=($!)
done
# One arm failing must not cost the others their results.
i=0; done_arms=()
for arm in $ARMS; do
  if wait "${pids[$i]}"; then done_arms+=("$arm"); else echo "arm $arm failed" >&2; fi
  i=$((i + 1))
done
[ ${#done_arms[@]} -gt 0 ] || exit 1
weights=()
for arm in "${done_arms[@]}"; do
  cp "$WORK/$arm/loss.csv" "$OUT/$arm/"
  $PY export.py --ckpt "$WORK/$arm/ckpt.pt" --out "$OUT/$arm" --name "lamina-vit-tiny-$arm" \
    --device-s "$(( $(date +%s) - T0 ))"
  weights+=("$OUT/$arm/model.safetensors")
done
names=("${done_arms[@]}")
[ -n "${INIT:-}" ] && { weights+=("$ROOT/$INIT"); names+=(init); }
# shellcheck disable=SC2086
$PY eval.py --data "$DATA" --weights "${weights[@]}" --names "${names[@]}" --out "$WORK" ${EVAL_ARGS:-}
cp "$WORK/eval.json" "$OUT/"
date -u +"end %FT%TZ"
ls -la "$OUT" "$OUT"/*/
