#!/bin/bash
# The H200 run of issue 6 (device tool, one call of < 600 s): flash-attention kernel shapes
# (--sweep, narrowed by ONLY / ONLY128: comma-separated substrings of variant names) checked against the CPU
# reference and timed by GPU timestamps at H = 12, D = 64 and D = 128, the subgroup-matrix ceiling
# probes (PROBE=1), ONNX Runtime's WebGPU EP (MultiHeadAttention f16) in the same call (T_ORT=0
# skips it), an A/B pass of D = 64 under Dawn toggles (AB_TOGGLES, e.g. disable_robustness), then
# the GEMM tilings of issue 7 (bench/encoder-gemm.ts). Needs the --peer bundle (ONNX Runtime) for
# the ORT step. Run from the repo root after `source .device/enter.sh`; logs go to $OUT.
export LAMINA_MODEL_DIR=/tmp/lamina-models XDG_RUNTIME_DIR=/tmp
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader
run() { local t=$1 name=$2; shift 2; echo "== $name: $*"; timeout "$t" "$@" 2>&1 | grep -v Warning | tee "$out/$name.log"; echo "rc ${PIPESTATUS[0]}"; }
only=(); [ -n "${ONLY:-}" ] && only=(--only "$ONLY")
only128=(); [ -n "${ONLY128:-${ONLY:-}}" ] && only128=(--only "${ONLY128:-$ONLY}")
probe=(); [ "${PROBE:-0}" = 1 ] && probe=(--probe)
run "${T_D64:-240}" attn-d64 node bin/lamina.js bench attention --seq "${SEQS:-1024,4096,16384,65536}" --heads 12 --dim 64 --check --sweep "${only[@]}" "${probe[@]}" --reps 10 --json "$out/attn-d64.json"
[ "${T_D128:-100}" != 0 ] && run "${T_D128:-100}" attn-d128 node bin/lamina.js bench attention --seq "${SEQS128:-4096,16384}" --heads 12 --dim 128 --check --sweep "${only128[@]}" --reps 10 --json "$out/attn-d128.json"
[ "${T_ORT:-60}" != 0 ] && run "${T_ORT:-60}" attn-ort node bin/lamina.js bench attention --engine ort --seq 1024,4096,16384 --heads 12 --dim 64 --reps 5 --json "$out/attn-ort.json"
[ -n "${AB_TOGGLES:-}" ] && LAMINA_DAWN_TOGGLES="$AB_TOGGLES" run "${T_AB:-60}" attn-d64-ab node bin/lamina.js bench attention --seq 16384 --heads 12 --dim 64 --check --sweep --only "${AB_ONLY:-${ONLY:-sgmat2}}" "${probe[@]}" --reps 5
[ -n "${GEMM_SPECS:-}" ] && run "${T_GEMM:-100}" gemm node --import tsx bench/encoder-gemm.ts --specs "$GEMM_SPECS" --out "$out/best-gemm.txt"
exit 0
