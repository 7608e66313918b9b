#!/bin/bash
# The H200 run of issue 7 (device tool), one call of ≤ 200 s, in order of priority (each step has
# its own timeout, so a short slot loses the last ones): (1) our WebGPU engine, --check, flash
# attention, per-role default GEMM tilings (kernels/matmul/matmul.ts GEMM_SHAPE_DEFAULTS);
# (2) with GEMM_AB=SPEC, the same on that tiling (before/after in one call); (3) the defaults with
# Dawn's robustness on (LAMINA_GPU_ROBUST=1; off by default); (4) the GEMM tiling sweep
# (bench/encoder-gemm.ts: each tiling checked vs the CPU twin, timed by GPU timestamps after
# warm-up, PASSES passes, the second reversed; GEMM_SPECS=a,b,… to pick tilings); (5) with BEST=1,
# the engine on the sweep's per-role best; (6) with PEER=1, ONNX Runtime's WebGPU EP (--peer bundle).
# Run from the repo root after sourcing the bundle's enter.sh. Two files come back (the device
# tool returns at most 8): $OUT/gemm-all.log (every step's output) and $OUT/gemm-json.tgz.
export LAMINA_MODEL_DIR=/tmp/lamina-models XDG_RUNTIME_DIR=/tmp
out=${OUT:-/tmp}
tmp=$(mktemp -d)
log="$out/gemm-all.log"
clocks() { nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu,driver_version --format=csv,noheader | tee -a "$log"; }
run() { local t=$1 name=$2; shift 2; echo "== $name: $* ($(date -u +%T))" | tee -a "$log"; timeout "$t" "$@" 2>&1 | grep -v Warning | tee -a "$log"; echo "rc ${PIPESTATUS[0]}" | tee -a "$log"; }
clocks
enc=(node bin/lamina.js bench encoder --engine webgpu --model untrained-vit-b16 --batch 64 --reps 5 --check --attention flash)
run "${T_FIRST:-${T_ENC:-40}}" webgpu-default "${enc[@]}" --json "$tmp/webgpu-default.json"
[ -n "${GEMM_AB:-}" ] && run "${T_ENC:-40}" webgpu-ab "${enc[@]}" --gemm "$GEMM_AB" --json "$tmp/webgpu-ab.json"
LAMINA_GPU_ROBUST=1 run "${T_ENC:-40}" webgpu-robust "${enc[@]}" --json "$tmp/webgpu-robust.json"
if [ "${SWEEP:-1}" = 1 ]; then
  run "${T_GEMM:-120}" gemm node --import tsx bench/encoder-gemm.ts --passes "${PASSES:-2}" --reps 20 --samples 5 --no-attention ${GEMM_SPECS:+--specs "$GEMM_SPECS"} --out "$tmp/best-gemm.txt" --json "$tmp/gemm.json"
  clocks
fi
best=$(cat "$tmp/best-gemm.txt" 2>/dev/null)
[ "${BEST:-0}" = 1 ] && [ -n "$best" ] && run "${T_ENC:-40}" webgpu-best "${enc[@]}" --gemm "$best" --json "$tmp/webgpu-best.json"
[ "${PEER:-0}" = 1 ] && run 35 ort node bin/lamina.js bench encoder --engine ort --ep webgpu --model untrained-vit-b16 --batch 64 --reps 5 --json "$tmp/ort-webgpu.json"
clocks
tar czf "$out/gemm-json.tgz" -C "$tmp" .
exit 0
