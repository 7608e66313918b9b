#!/usr/bin/python3
"""Reference pixels from OpenSlide for the TIFF-family readers' tests.

Run from the repository root with Debian's python3-openslide (not a pyenv python):
    /usr/bin/python3 tools/make-openslide-fixtures.py
Reads ../shared/slides, writes test/fixtures/openslide/<slide>/<region>.png and manifest.json.
OpenSlide's read_region gives RGBA that is transparent outside the slide; it is composited over
white here, the colour Lamina gives pixels outside the slide.
"""
import json
import os
import sys

import openslide
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLIDES = os.path.join(ROOT, '..', 'shared', 'slides')
OUT = os.path.join(ROOT, 'test', 'fixtures', 'openslide')

# (name, level0 x, level0 y, level, width, height): aligned tiles, tile-crossing reads, edges,
# reads that start outside the slide and reads entirely outside it. Above level 0, OpenSlide places
# x / downsample at a fractional position and lets cairo interpolate; Lamina takes the nearest level
# pixel instead (crisp, grid-aligned tiles). Level > 0 references therefore use level-0 positions
# whose level position is within ~0.02 px of an integer (tcga: 3957 / 2.0005 = 1977.9999), except at
# edges that are mostly outside the slide.
REGIONS = {
    'CMU-1-Small-Region.svs': [
        ('l0-origin', 0, 0, 0, 256, 256),
        ('l0-tile-aligned', 480, 720, 0, 240, 240),
        ('l0-interior', 1000, 1500, 0, 320, 256),
        ('l0-bottom-right-edge', 1980, 2760, 0, 384, 320),
        ('l0-negative', -100, -50, 0, 256, 256),
        ('l0-outside', 5000, 5000, 0, 64, 64),
    ],
    'tcga-cr-7395-01a-01-ts1.svs': [
        ('l0-origin', 0, 0, 0, 256, 256),
        ('l0-tile-aligned', 2048, 1024, 0, 256, 256),
        ('l0-interior', 1500, 1700, 0, 300, 200),
        ('l0-bottom-right-edge', 4200, 3400, 0, 384, 256),
        ('l1-origin', 0, 0, 1, 384, 384),
        ('l1-grid-crossing', 3957, 40, 1, 243, 256),
        ('l1-edge', 4000, 3200, 1, 300, 300),
    ],
    'boxes.tiff': [
        ('l0-whole', 0, 0, 0, 300, 250),
        ('l1-whole', 0, 0, 1, 150, 125),
        ('l2-whole', 0, 0, 2, 75, 62),
        ('l3-whole', 0, 0, 3, 37, 31),
        ('l0-negative', -20, -20, 0, 100, 100),
        ('l0-edge', 250, 200, 0, 100, 100),
        ('l1-interior', 100, 60, 1, 64, 64),
    ],
}

# Associated images are compared on a crop (x, y, w, h) to keep the fixtures small.
ASSOCIATED_CROP = (0, 0, 256, 256)


def over_white(rgba):
    white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba.convert('RGBA')).convert('RGB')


def main():
    manifest = {}
    for slide_name, regions in REGIONS.items():
        path = os.path.join(SLIDES, slide_name)
        slide = openslide.OpenSlide(path)
        out_dir = os.path.join(OUT, slide_name)
        os.makedirs(out_dir, exist_ok=True)
        props = slide.properties
        entry = {
            'vendor': props.get(openslide.PROPERTY_NAME_VENDOR),
            'levels': [list(d) for d in slide.level_dimensions],
            'downsamples': list(slide.level_downsamples),
            'mpp': [float(props[k]) if k in props else None for k in (openslide.PROPERTY_NAME_MPP_X, openslide.PROPERTY_NAME_MPP_Y)],
            'objectivePower': float(props[openslide.PROPERTY_NAME_OBJECTIVE_POWER]) if openslide.PROPERTY_NAME_OBJECTIVE_POWER in props else None,
            'associated': {},
            'regions': [],
        }
        for name, x, y, level, w, h in regions:
            over_white(slide.read_region((x, y), level, (w, h))).save(os.path.join(out_dir, f'{name}.png'), optimize=True)
            entry['regions'].append({'name': name, 'x': x, 'y': y, 'level': level, 'width': w, 'height': h})
        for name, image in slide.associated_images.items():
            cx, cy, cw, ch = ASSOCIATED_CROP
            crop = over_white(image).crop((cx, cy, min(cx + cw, image.width), min(cy + ch, image.height)))
            crop.save(os.path.join(out_dir, f'associated-{name}.png'), optimize=True)
            entry['associated'][name] = {'width': image.width, 'height': image.height, 'crop': [cx, cy, crop.width, crop.height]}
        manifest[slide_name] = entry
        slide.close()
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        json.dump({'openslide': openslide.__library_version__, 'slides': manifest}, f, indent=1)
        f.write('\n')
    print(f'wrote fixtures for {len(manifest)} slides to {OUT}', file=sys.stderr)


if __name__ == '__main__':
    main()
