#!/bin/bash
# The H200 run of issue 6 (device tool, one call of < 600 s): every flash-attention kernel shape
# (--sweep) checked against the CPU reference and timed by GPU timestamps at H = 12, D = 64 and
# D = 128, ONNX Runtime's WebGPU EP (MultiHeadAttention f16) in the same call, then the GEMM
# tilings of issue 7 (bench/encoder-gemm.ts). Needs the --peer bundle (ONNX Runtime). Run from the
# repo root after `source .device/enter.sh`; logs go to $OUT.
export LAMINA_MODEL_DIR=/tmp/lamina-models XDG_RUNTIME_DIR=/tmp
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader
run() { local t=$1 name=$2; shift 2; echo "== $name: $*"; timeout "$t" "$@" 2>&1 | grep -v Warning | tee "$out/$name.log"; echo "rc ${PIPESTATUS[0]}"; }
run "${T_D64:-240}" attn-d64 node bin/lamina.js bench attention --seq "${SEQS:-1024,4096,16384,65536}" --heads 12 --dim 64 --check --sweep --reps 10 --json "$out/attn-d64.json"
run "${T_D128:-100}" attn-d128 node bin/lamina.js bench attention --seq 4096,16384 --heads 12 --dim 128 --check --sweep --reps 10 --json "$out/attn-d128.json"
run "${T_ORT:-60}" attn-ort node bin/lamina.js bench attention --engine ort --seq 1024,4096,16384 --heads 12 --dim 64 --reps 5 --json "$out/attn-ort.json"
[ -n "${GEMM_SPECS:-}" ] && run "${T_GEMM:-100}" gemm node --import tsx bench/encoder-gemm.ts --specs "$GEMM_SPECS" --out "$out/best-gemm.txt"
exit 0
