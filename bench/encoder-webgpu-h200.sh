#!/bin/bash
# The H200 run of issue 7 (device tool), one call of ~200 s: (1) the GEMM tilings of the
# subgroup-matrix kernel on the ViT-B/16 block shapes, each checked against the CPU twin, timed by
# GPU timestamps after warm-up, the sweep run twice (second pass reversed) for repeatability
# (bench/encoder-gemm.ts); (2) our WebGPU engine with --check and flash attention on the per-role
# default tilings (kernels/matmul/matmul.ts GEMM_SHAPE_DEFAULTS), on the sweep's per-role best, and
# on the defaults again with Dawn's robustness and workgroup zero-init off (A/B of the bounds
# checks); (3) with PEER=1, ONNX Runtime's WebGPU EP on the same model in a separate process (needs
# the --peer bundle). Run from the repo root after sourcing the bundle's enter.sh; logs go to $OUT.
export LAMINA_MODEL_DIR=/tmp/lamina-models XDG_RUNTIME_DIR=/tmp
out=${OUT:-/tmp}
clocks() { nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu,driver_version --format=csv,noheader; }
run() { local t=$1 name=$2; shift 2; echo "== $name: $*"; timeout "$t" "$@" 2>&1 | grep -v Warning | tee "$out/$name.log"; echo "rc ${PIPESTATUS[0]}"; }
clocks
run "${T_GEMM:-110}" gemm node --import tsx bench/encoder-gemm.ts --passes 2 --reps 20 --samples 5 --no-attention ${GEMM_SPECS:+--specs "$GEMM_SPECS"} --out "$out/best-gemm.txt" --json "$out/gemm.json"
clocks
enc=(node bin/lamina.js bench encoder --engine webgpu --model untrained-vit-b16 --batch 64 --reps 5 --check --attention flash)
run "${T_ENC:-45}" webgpu-default "${enc[@]}" --json "$out/webgpu-default.json"
best=$(cat "$out/best-gemm.txt" 2>/dev/null)
[ -n "$best" ] && run "${T_ENC:-45}" webgpu-best "${enc[@]}" --gemm "$best" --json "$out/webgpu-best.json"
LAMINA_DAWN_TOGGLES=disable_robustness,disable_workgroup_init run "${T_ENC:-45}" webgpu-norobust "${enc[@]}" --json "$out/webgpu-norobust.json"
[ "${PEER:-0}" = 1 ] && run 35 ort node bin/lamina.js bench encoder --engine ort --ep webgpu --model untrained-vit-b16 --batch 64 --reps 5 --json "$out/ort-webgpu.json"
clocks
exit 0
