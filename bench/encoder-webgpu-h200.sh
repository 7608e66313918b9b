#!/bin/bash
# The H200 run of issue 7 (device tool), one call of ~200 s: (1) the GEMM tilings of the
# subgroup-matrix kernel on the ViT-B/16 block shapes, each checked against the CPU twin, timed by
# GPU timestamps after warm-up, the sweep run twice (second pass reversed) for repeatability
# (bench/encoder-gemm.ts); (2) our WebGPU engine with --check and flash attention on the per-role
# default tilings (kernels/matmul/matmul.ts GEMM_SHAPE_DEFAULTS), on the sweep's per-role best, and
# on the defaults again with Dawn's robustness on (LAMINA_GPU_ROBUST=1; off by default); (3) with
# PEER=1, ONNX Runtime's WebGPU EP in a separate process (needs the --peer bundle). Run from the repo
# root after sourcing the bundle's enter.sh. Only two files come back, to stay under the device
# tool's file count: $OUT/gemm-all.log (every step's output) and $OUT/gemm-json.tgz (JSON results).
export LAMINA_MODEL_DIR=/tmp/lamina-models XDG_RUNTIME_DIR=/tmp
out=${OUT:-/tmp}
tmp=$(mktemp -d)
log="$out/gemm-all.log"
clocks() { nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu,driver_version --format=csv,noheader | tee -a "$log"; }
run() { local t=$1 name=$2; shift 2; echo "== $name: $* ($(date -u +%T))" | tee -a "$log"; timeout "$t" "$@" 2>&1 | grep -v Warning | tee -a "$log"; echo "rc ${PIPESTATUS[0]}" | tee -a "$log"; }
clocks
run "${T_GEMM:-120}" gemm node --import tsx bench/encoder-gemm.ts --passes 2 --reps 20 --samples 5 --no-attention ${GEMM_SPECS:+--specs "$GEMM_SPECS"} --out "$tmp/best-gemm.txt" --json "$tmp/gemm.json"
clocks
enc=(node bin/lamina.js bench encoder --engine webgpu --model untrained-vit-b16 --batch 64 --reps 5 --check --attention flash)
run "${T_ENC:-40}" webgpu-default "${enc[@]}" --json "$tmp/webgpu-default.json"
best=$(cat "$tmp/best-gemm.txt" 2>/dev/null)
[ -n "$best" ] && run "${T_ENC:-40}" webgpu-best "${enc[@]}" --gemm "$best" --json "$tmp/webgpu-best.json"
LAMINA_GPU_ROBUST=1 run "${T_ENC:-40}" webgpu-robust "${enc[@]}" --json "$tmp/webgpu-robust.json"
[ "${PEER:-0}" = 1 ] && run 35 ort node bin/lamina.js bench encoder --engine ort --ep webgpu --model untrained-vit-b16 --batch 64 --reps 5 --json "$tmp/ort-webgpu.json"
clocks
tar czf "$out/gemm-json.tgz" -C "$tmp" .
exit 0
