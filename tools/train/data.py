"""Read the shard written by pack_data.py: index.json + pack.bin -> uint8 arrays."""
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image


def load_index(data_dir):
    with open(os.path.join(data_dir, "index.json")) as f:
        return json.load(f)["records"]


def decode(data_dir, records, threads=16):
    """Decode records to one uint8 array (N, H, W, 3); all records must share one size."""
    with open(os.path.join(data_dir, "pack.bin"), "rb") as f:
        blob = f.read()

    def one(r):
        b = blob[r["offset"]:r["offset"] + r["length"]]
        return np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))

    with ThreadPoolExecutor(threads) as ex:
        arrs = list(ex.map(one, records))
    if not arrs:
        return np.zeros((0, 1, 1, 3), np.uint8)
    return np.stack(arrs)


def select(records, **where):
    return [r for r in records if all(r.get(k) == v for k, v in where.items())]
