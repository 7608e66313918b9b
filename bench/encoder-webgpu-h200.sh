#!/bin/bash
# The H200 run of issue 7 (device tool): our WebGPU ViT engine with --check, ViT-B/16 at 224 px
# batch 64 and native-resolution regions, then ONNX Runtime's WebGPU EP on the same model in a
# separate process (it links its own Dawn), then our portable kernels for comparison.
# Run from the repo root after `source .device/enter.sh`; logs go to $OUT.
export LAMINA_MODEL_DIR=/tmp/lamina-models XDG_RUNTIME_DIR=/tmp
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
timeout 200 node bin/lamina.js bench encoder --engine webgpu --model untrained-vit-b16 --batch 64 --reps 10 --regions 1024,2048 --knn 1000000 --knn-queries 10000 --check --json "$out/webgpu.json" 2>&1 | grep -v Warning | tee "$out/webgpu.log"
timeout 70 node bin/lamina.js bench encoder --engine ort --ep webgpu --model untrained-vit-b16 --batch 64 --reps 5 --json "$out/ort-webgpu.json" 2>&1 | grep -v Warning | tee "$out/ort.log"
timeout 45 node bin/lamina.js bench encoder --engine webgpu --path portable --model untrained-vit-b16 --batch 64 --reps 3 --json "$out/webgpu-portable.json" 2>&1 | grep -v Warning | tee "$out/portable.log"
