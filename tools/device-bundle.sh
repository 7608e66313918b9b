#!/bin/bash
# Packs node, the production node_modules and the Vulkan loader into .device/ for the `device` tool
# (../shared/tools/device-bundle.sh), then drops what cannot fit: one call carries at most 64 MiB,
# bundle and working tree together (the tree is ~14 MiB, the full bundle ~57 MiB). Always dropped:
# TypeScript (a peer of valibot; tsx runs our sources through esbuild), protobufjs's CLI, type
# declarations, and the browser side of the service (queue dashboard, viewer): no device run serves HTTP.
#   tools/device-bundle.sh          our WebGPU engine, kernels and analyses (no ONNX Runtime)
#   tools/device-bundle.sh --peer   ONNX Runtime peer runs and our kernels (no sharp/libvips)
# Sources travel as the working tree itself, so no build output is bundled (an extracted copy of
# src/ would shadow later edits). Use: carry [".device"], command `source .device/enter.sh && …`.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
drop=('node_modules/typescript*' 'node_modules/protobufjs/cli*' 'node_modules/@types*' 'node_modules/bintrees/test*'
  'node_modules/@bull-board*' 'node_modules/openseadragon*')
if [ "${1:-}" = --peer ]; then drop+=('node_modules/@img*' 'node_modules/sharp*')
else drop+=('node_modules/onnxruntime-node/bin*'); fi
BUILD_DIRS="no-build-output" bash ../shared/tools/device-bundle.sh >/dev/null
xz -dc .device/bundle.tar.xz > .device/bundle.tar
tar --delete -f .device/bundle.tar --wildcards "${drop[@]}"
xz -T0 -6 -c .device/bundle.tar > .device/bundle.tar.xz
rm .device/bundle.tar
du -sh --apparent-size .device
