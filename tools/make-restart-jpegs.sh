#!/bin/sh
# Small restart-marked JPEGs for the NDPI restart-interval tests (test/readers/ndpi-restart.test.ts),
# cut from a real H&E tile and written by libvips (libjpeg-turbo) with 4:2:0 chroma (16 × 16 MCUs):
# 600 px wide = 38 MCUs per row; intervals of 19 MCUs (two per row), 5 MCUs (straddling row ends)
# and 76 MCUs (two whole rows).
set -e
cd "$(dirname "$0")/.."
src=../shared/slides/tcga-lung-rgb.png
out=test/fixtures/ndpi
vips crop "$src" /tmp/lamina-crop.v 0 0 500 300
vips resize /tmp/lamina-crop.v /tmp/lamina-big.v 1.2
for r in 19 5 76; do
  vips jpegsave /tmp/lamina-big.v "$out/restart-$r.jpg" --Q 85 --restart-interval "$r" --strip
done
rm -f /tmp/lamina-crop.v /tmp/lamina-big.v
