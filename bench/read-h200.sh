#!/bin/bash
# Tile reading before/after on the H200 host (device tool): one 32768² synthetic slide made on the
# device, then (1) bench/read-tiles.ts — every batch of 256 tiles read alone, the old checkout at its
# defaults beside this one at 4, 8 and all cores' read units in flight — and (2) `lamina analyze
# --engine webgpu` old/new/old/new with per-batch timings (read / embed / score ms).
#   before the call, here: rm -rf ab-old && mkdir ab-old && git archive REV src pipelines kernels bin package.json | tar -x -C ab-old
#                          bash tools/device-bundle.sh      (ab-old/ is untracked, so it travels; remove it after)
#   device:  source .device/enter.sh && OUT=$OUT bash bench/read-h200.sh
# Both analyses use the committed default model by path (the old checkout has no models/ of its own).
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f ab-old/src/tiling/tile-reader.ts ] || { echo "ab-old/ (the old checkout) is missing"; exit 1; }
export LAMINA_MODEL_DIR=${LAMINA_MODEL_DIR:-/tmp/lamina-models} XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
out=${OUT:-/tmp/lamina-read-h200}
work=${WORK:-/tmp/lamina-read-h200-work}
W=${WIDTH:-32768}
mkdir -p "$out" "$work"
cores=$(nproc)
echo "cores: $cores; slide ${W}x${W}" | tee "$out/device.txt"
t=$(date +%s)
timeout "${T_SYNTH:-120}" node bin/lamina.js synth --width "$W" --height "$W" --anomalies 24 --seed 7 --workers "$cores" \
  --out "$work/slide.tiff" > /dev/null 2>&1 || { echo "synth failed"; exit 1; }
echo "synth: $(( $(date +%s) - t )) s" | tee -a "$out/device.txt"

timeout "${T_READ:-100}" node --import tsx bench/read-tiles.ts --slide "$work/slide.tiff" --old ab-old --parts "${PARTS:-4,8,$cores}" --repeat "${REPEAT:-2}" 2>&1 \
  | grep -v Warning | tee "$out/read-tiles.txt"

for v in old new old new; do
  bin=bin/lamina.js; [ "$v" = old ] && bin=ab-old/bin/lamina.js
  rm -rf "$work/$v"
  LAMINA_BATCH_TIMINGS=1 timeout "${T_ANALYZE:-60}" node "$bin" analyze "$work/slide.tiff" --out "$work/$v" --engine webgpu --batch-size 256 \
    --model models/lamina-vit-tiny-dino > /dev/null 2> "$out/analyze-$v.log.tmp"
  grep '^batch ' "$out/analyze-$v.log.tmp" >> "$out/analyze-$v-batches.txt"; rm -f "$out/analyze-$v.log.tmp"
  node -e '
    const [dir, v] = process.argv.slice(1);
    const r = JSON.parse(require("fs").readFileSync(dir + "/result.json", "utf8")), t = r.timings, s = (k) => ((t[k] ?? 0) / 1000).toFixed(1);
    console.log(`${v}: ${r.tiles.analysed} tiles; encode ${s("encode")} s (read ${s("read")}, embed ${s("embed")}), score ${s("score")}, total ${s("total")}`);
  ' "$work/$v" "$v" | tee -a "$out/analyze.txt"
done
# Mean ms per batch by stage (batches after the first, which also fits the token model).
for v in old new; do
  node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").filter((l) => !l.startsWith("batch 0-"))
      .map((l) => Object.fromEntries([...l.matchAll(/(read|embed|score) ([0-9.]+) ms/g)].map((m) => [m[1], +m[2]])));
    const mean = {};
    for (const r of rows) for (const [k, x] of Object.entries(r)) mean[k] = (mean[k] ?? 0) + x / rows.length;
    console.log(`${process.argv[2]}, mean of ${rows.length} batches (2 runs) ms: ` + Object.entries(mean).map(([k, x]) => `${k} ${x.toFixed(0)}`).join(", "));
  ' "$out/analyze-$v-batches.txt" "$v" | tee -a "$out/analyze.txt"
done
cmp -s "$work/old/tiles.csv" "$work/new/tiles.csv" && same=identical || same=different
echo "tiles.csv of the last old and new runs: $same" | tee -a "$out/analyze.txt"
rm -rf "$work"
