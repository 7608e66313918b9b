#!/bin/bash
# Issue 7 on the H200 (device tool): a synthetic slide of >= 1 gigapixel made on the device, then
# `lamina analyze --engine webgpu` end to end twice — 224-px tiles, then native REGION² regions
# scored per 16-px token — each with its wall time split by stage (result.json timings: open =
# checksum + model, tissue, plan, encode = read + embed, score, aggregate), and both heatmaps'
# localisation against the true mask (patch AUROC at 16-px cells, anomalies found, smallest).
# In-slide scoring (no reference bank), the trained default model.
#   device: source .device/enter.sh && bash bench/analyze-h200.sh        (default bundle: our engine + sharp; ORT not needed)
#   here:   WIDTH=448 HEIGHT=448 REGION=224 ANOMALIES=1 T_TILES=1200 T_REGIONS=1200 bash bench/analyze-h200.sh
#           (lavapipe: ~5 min on the loaded 2-core machine; 1 tile, 4 regions)
#   tiles only (the per-batch host path, issue 7): MODES=tiles OUT=$OUT bash bench/analyze-h200.sh
#           (also writes tiles-batches.txt: per batch read / preprocess / upload / gpu wait / readback / score ms)
# Step timeouts (120 + 150 + 290 s) keep the whole run inside one 600-s device call.
set -uo pipefail
cd "$(dirname "$0")/.."
export LAMINA_MODEL_DIR=${LAMINA_MODEL_DIR:-/tmp/lamina-models} XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
out=${OUT:-/tmp/lamina-analyze-h200}
work=${WORK:-/tmp/lamina-analyze-h200-work}
W=${WIDTH:-32768} H=${HEIGHT:-32768} REGION=${REGION:-1024} BATCH=${BATCH:-256} ANOMALIES=${ANOMALIES:-24}
MODES=${MODES:-tiles,regions}   # which analyses to run: tiles, regions or both
has() { [[ ",$MODES," == *",$1,"* ]]; }
mkdir -p "$out" "$work"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
stages() { # wall time by stage from a result folder
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1] + "/result.json", "utf8"));
    const t = r.timings, s = (k) => ((t[k] ?? 0) / 1000).toFixed(1);
    const unit = r.mode === "regions" ? `${r.encoding.regions} regions of ${r.encoding.regionSize}px, ${r.encoding.cells} cells` : `${r.tiles.analysed} tiles`;
    console.log(`${process.argv[2]}: ${unit}; stages s: open+checksum ${s("open")}, tissue ${s("tissue")}, plan ${s("plan")}, encode ${s("encode")} (read ${s("read")}, embed ${s("embed")}), score ${s("score")}, aggregate ${s("aggregate")}; total ${s("total")}`);
  ' "$1" "$2" | tee -a "$out/stages.txt"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | tee "$out/device.txt"
echo "cores: $(nproc); slide ${W}x${H} ($(awk -v w="$W" -v h="$H" 'BEGIN { printf "%.2f", w * h / 1e9 }') Gpx), regions ${REGION}, batch ${BATCH}" | tee -a "$out/device.txt"

t=$(now)
timeout "${T_SYNTH:-120}" node bin/lamina.js synth --width "$W" --height "$H" --anomalies "$ANOMALIES" --seed 7 --workers "$(nproc)" \
  --out "$work/slide.tiff" --json > "$out/synth.json" 2> >(grep -v Warning >&2) || { echo "synth failed"; exit 1; }
echo "synth: $(since "$t") s wall, $(du -m "$work/slide.tiff" | cut -f1) MiB" | tee -a "$out/stages.txt"

if has tiles; then
  t=$(now)
  LAMINA_BATCH_TIMINGS=1 timeout "${T_TILES:-150}" node bin/lamina.js analyze "$work/slide.tiff" --out "$work/tiles" --engine webgpu --batch-size "$BATCH" 2>&1 \
    | grep -v Warning | tr '\r' '\n' | grep -v '^encode \|^score \|^tissue ' | tee "$out/tiles.log" | grep -v '^batch ' | tail -n 8
  echo "tiles: $(since "$t") s wall (process)" | tee -a "$out/stages.txt"
  grep '^batch ' "$out/tiles.log" > "$out/tiles-batches.txt"
  # Mean ms per batch by stage; the first batch also fits the slide's token model, so it is listed apart.
  node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").filter(Boolean)
      .map((l) => Object.fromEntries([...l.matchAll(/(read|embed|preprocess|upload|gpu wait|readback|score) ([0-9.]+)/g)].map((m) => [m[1], +m[2]])));
    if (!rows.length) process.exit(0);
    const fmt = (o) => Object.entries(o).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ");
    console.log(`tiles, first batch ms: ${fmt(rows[0])}`);
    const rest = rows.slice(1), mean = {};
    for (const r of rest) for (const [k, v] of Object.entries(r)) mean[k] = (mean[k] ?? 0) + v / rest.length;
    if (rest.length) console.log(`tiles, mean of the other ${rest.length} batches ms: ${fmt(mean)}`);
  ' "$out/tiles-batches.txt" | tee -a "$out/stages.txt"
  [ -f "$work/tiles/result.json" ] && stages "$work/tiles" tiles
fi

if has regions; then
  t=$(now)
  timeout "${T_REGIONS:-290}" node bin/lamina.js analyze "$work/slide.tiff" --out "$work/regions" --engine webgpu --batch-size "$BATCH" --region-size "$REGION" 2>&1 \
    | grep -v Warning | tr '\r' '\n' | grep -v '^encode \|^score \|^tissue ' | tee "$out/regions.log" | tail -n 8
  echo "regions: $(since "$t") s wall (process)" | tee -a "$out/stages.txt"
  [ -f "$work/regions/result.json" ] && stages "$work/regions" "regions ${REGION}"
fi

if [ -f "$work/tiles/result.json" ] && [ -f "$work/regions/result.json" ]; then
  node --import tsx --input-type=module -e '
    const { readTruth } = await import("./src/synth/index.ts");
    const { readCellScores, localisation } = await import("./src/heatmap/localisation.ts");
    const [sidecarPath, tiles, regions] = process.argv.slice(1);
    const { sidecar, mask } = await readTruth(sidecarPath);
    const truth = { mask, anomalies: sidecar.anomalies };
    const gt = await readCellScores(tiles, 16), gr = await readCellScores(regions, 16);
    for (const [name, g, other] of [["regions", gr, gt], ["tiles", gt, gr]]) {
      const l = localisation(g, 16, truth, other);
      console.log(`${name}: patch AUROC ${l.auroc.toFixed(4)} on ${l.cells} cells (${l.anomalousCells} anomalous); found ${l.found} of ${l.planted}; smallest found ${l.smallestFound === null ? "none" : l.smallestFound + " px"}`);
    }
  ' "$work/slide.anomalies.json" "$work/tiles" "$work/regions" 2>&1 | grep -v Warning | tee -a "$out/stages.txt"
fi
rm -rf "$work"
