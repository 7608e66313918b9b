#!/bin/bash
# The H200 run of issue 7 (device tool), one call of < 200 s: (1) the GEMM tilings of the
# subgroup-matrix kernel on the ViT-B/16 block shapes and attention at 197 tokens as GEMMs vs flash
# (bench/encoder-gemm.ts; each tiling checked against the CPU twin first); (2) our WebGPU engine
# with --check on the fastest correct tiling, once with flash attention and once with attention as
# GEMMs; (3) ONNX Runtime's WebGPU EP on the same model in a separate process (it links its own
# Dawn). Needs ONNX Runtime in the bundle (the --peer variant). Run from the repo root after
# sourcing the bundle's enter.sh; logs go to $OUT.
export LAMINA_MODEL_DIR=/tmp/lamina-models XDG_RUNTIME_DIR=/tmp
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader
timeout 65 node --import tsx bench/encoder-gemm.ts --specs "${GEMM_SPECS:-128x128x32-sg4x2-s1,128x128x32-sg4x2-s2,128x128x32-sg4x2-s2-wd,128x128x32-sg2x2-s2,128x128x32-sg2x2-s2-wd,128x256x32-sg2x4-s2-wd,256x128x32-sg4x2-s2-wd,128x128x64-sg4x2-s2-wd}" --out "$out/best-gemm.txt" 2>&1 | grep -v Warning | tee "$out/gemm.log"
best=$(cat "$out/best-gemm.txt" 2>/dev/null || echo 128x128x32-sg4x2-s1)
timeout 80 node bin/lamina.js bench encoder --engine webgpu --model untrained-vit-b16 --batch 64 --reps 5 --check --attention flash,gemm --gemm "$best" --json "$out/webgpu.json" 2>&1 | grep -v Warning | tee "$out/webgpu.log"
timeout 35 node bin/lamina.js bench encoder --engine ort --ep webgpu --model untrained-vit-b16 --batch 64 --reps 5 --json "$out/ort-webgpu.json" 2>&1 | grep -v Warning | tee "$out/ort.log"
