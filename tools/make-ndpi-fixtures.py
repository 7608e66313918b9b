#!/usr/bin/python3
"""Reference regions for the NDPI and DICOM reader tests, made by independent readers.

NDPI: OpenSlide (python3-openslide 1.2 / libopenslide 3.4.1) read_region, composited on white.
DICOM: Debian's OpenSlide 3.4 has no DICOM support, so every frame is decoded on its own by DCMTK
(`dcmj2pnm +ca`: always convert the JPEG's YCbCr to RGB, whatever PhotometricInterpretation says)
and placed by its TILED_FULL position (frames in row-major tile order); pixels outside are white.

Writes test/fixtures/{ndpi,dicom}/*.png and cases.json. Run with the system Python:
    /usr/bin/python3 tools/make-ndpi-fixtures.py
"""
import json
import os
import re
import subprocess
import tempfile

import openslide
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLIDES = os.path.join(ROOT, '..', 'shared', 'slides')
NDPI = os.path.join(SLIDES, 'test3-DAPI-2-387.ndpi')
DICOM = os.path.join(SLIDES, 'CMU-1-Small-Region-dicom')

# (level, level-0 x, level-0 y, width, height): interior, corners, edges, negative origins, and
# every synthesised level (4-6). Level-0 coordinates are multiples of the level's downsample.
NDPI_CASES = [
    (0, 1000, 2000, 256, 256),
    (0, 0, 0, 200, 120),
    (0, 3840, 4736, 256, 256),
    (0, -64, -32, 200, 100),
    (0, 1500, 37, 96, 300),
    (1, 1024, 1536, 256, 200),
    (2, 2048, 800, 200, 200),
    (3, 2400, 3200, 200, 200),
    (4, 1024, 2048, 100, 80),
    (4, 3200, 4000, 80, 100),
    (5, 0, 0, 124, 152),
    (6, 0, 0, 62, 76),
]

MACRO_BOX = (400, 100, 600, 250)  # left, top, right, bottom

DICOM_CASES = [
    (0, 400, 300, 256, 256),
    (0, 0, 0, 300, 200),
    (0, 1900, 2700, 400, 400),
    (0, 990, 1480, 64, 64),
    (1, 300, 600, 300, 300),
    (1, -100, 2800, 200, 200),
    (2, 1600, 2400, 300, 300),
    (3, 800, 800, 200, 200),
    (5, 0, 0, 70, 93),
    (11, 0, 0, 1, 1),
]


def on_white(img):
    if img.mode == 'RGBA':
        bg = Image.new('RGB', img.size, (255, 255, 255))
        bg.paste(img, mask=img.split()[3])
        return bg
    return img.convert('RGB')


def ndpi_fixtures():
    slide = openslide.OpenSlide(NDPI)
    out = os.path.join(ROOT, 'test', 'fixtures', 'ndpi')
    cases = []
    for (level, x, y, w, h) in NDPI_CASES:
        name = f'L{level}-x{x}-y{y}-{w}x{h}.png'
        on_white(slide.read_region((x, y), level, (w, h))).save(os.path.join(out, name), optimize=True)
        cases.append({'level': level, 'x': x, 'y': y, 'width': w, 'height': h, 'png': name})
    # a crop of the macro keeps the fixture small; the test crops the same box
    on_white(slide.associated_images['macro']).crop(MACRO_BOX).save(os.path.join(out, 'macro-crop.png'), optimize=True)
    meta = {
        'reader': f'OpenSlide {openslide.__library_version__} (python3-openslide {openslide.__version__})',
        'levels': [list(d) for d in slide.level_dimensions],
        'downsamples': list(slide.level_downsamples),
        'mpp': [float(slide.properties['openslide.mpp-x']), float(slide.properties['openslide.mpp-y'])],
        'objectivePower': float(slide.properties['openslide.objective-power']),
        'associated': sorted(slide.associated_images.keys()),
        'macroSize': list(slide.associated_images['macro'].size),
        'macroCrop': {'box': list(MACRO_BOX), 'png': 'macro-crop.png'},
        'cases': cases,
    }
    with open(os.path.join(out, 'cases.json'), 'w') as f:
        json.dump(meta, f, indent=1)


def dcm_attr(dump, name):
    m = re.search(r'\) \w\w (?:\[)?([^\]\s]+)\]?\s+#.*\b' + name + r'$', dump, re.M)
    return m.group(1) if m else None


def dicom_level_images():
    """Each level file assembled from its frames, decoded one by one by DCMTK."""
    levels = []
    for fn in os.listdir(DICOM):
        path = os.path.join(DICOM, fn)
        dump = subprocess.run(['dcmdump', path], capture_output=True, text=True, check=True).stdout
        assert dcm_attr(dump, 'DimensionOrganizationType') == 'TILED_FULL', fn
        cols, rows = int(dcm_attr(dump, 'Columns')), int(dcm_attr(dump, 'Rows'))
        tw, th = int(dcm_attr(dump, 'TotalPixelMatrixColumns')), int(dcm_attr(dump, 'TotalPixelMatrixRows'))
        frames = int(dcm_attr(dump, 'NumberOfFrames'))
        across = -(-tw // cols)
        img = Image.new('RGB', (tw, th), (255, 255, 255))
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(['dcmj2pnm', '+ca', '+Fa', '+on', path, os.path.join(tmp, 'f')], check=True)
            for i in range(frames):
                tile = Image.open(os.path.join(tmp, f'f.{i}.png')).convert('RGB')
                img.paste(tile, ((i % across) * cols, (i // across) * rows))
        levels.append(img)
    levels.sort(key=lambda im: -im.size[0])
    return levels


def dicom_fixtures():
    levels = dicom_level_images()
    base_w, base_h = levels[0].size
    out = os.path.join(ROOT, 'test', 'fixtures', 'dicom')
    cases = []
    for (level, x, y, w, h) in DICOM_CASES:
        img = levels[level]
        ds = (base_w / img.size[0] + base_h / img.size[1]) / 2
        lx, ly = round(x / ds), round(y / ds)
        region = Image.new('RGB', (w, h), (255, 255, 255))
        region.paste(img.crop((max(0, lx), max(0, ly), min(img.size[0], lx + w), min(img.size[1], ly + h))), (max(0, -lx), max(0, -ly)))
        name = f'L{level}-x{x}-y{y}-{w}x{h}.png'
        region.save(os.path.join(out, name), optimize=True)
        cases.append({'level': level, 'x': x, 'y': y, 'width': w, 'height': h, 'png': name})
    meta = {
        'reader': 'DCMTK dcmj2pnm +ca, frames placed by TILED_FULL order',
        'levels': [list(im.size) for im in levels],
        'cases': cases,
    }
    with open(os.path.join(out, 'cases.json'), 'w') as f:
        json.dump(meta, f, indent=1)


if __name__ == '__main__':
    ndpi_fixtures()
    dicom_fixtures()
