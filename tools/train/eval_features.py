#!/usr/bin/env python3
"""EBHI-Seg k-NN (eval.py's protocol: k=20 cosine, 5 case-disjoint folds) on features written by
ort-features.ts, against colour histograms of the same images.

  python3 tools/train/eval_features.py --data SHARD --features DIR --out eval-ebhi.json NAME...
"""
import argparse
import json

import numpy as np
import torch

import data
import eval as ev


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="shard of pack_data.py --eval-only")
    ap.add_argument("--features", required=True, help="ort-features.ts output folder")
    ap.add_argument("--out", required=True, help="JSON to write")
    ap.add_argument("names", nargs="+")
    args = ap.parse_args()
    recs = data.select(data.load_index(args.data), collection="ebhi-seg")
    with open(f"{args.features}/names.json") as f:
        if json.load(f) != [r["name"] for r in recs]:
            raise SystemExit("features were written from another shard (image names differ)")
    classes = sorted({r["label"] for r in recs})
    n = len(recs)
    none = torch.arange(0)
    sets = {"pcam_train": none, "pcam_valid": none, "pcam_test": none,
            "pcam_y": torch.zeros(n, dtype=torch.long), "ebhi": torch.arange(n),
            "ebhi_y": torch.tensor([classes.index(r["label"]) for r in recs]),
            "ebhi_folds": ev.case_folds([r["case"] for r in recs])}
    feats = {}
    for name in args.names:
        for k in ("cls", "patchmean", "centre4"):
            f = np.fromfile(f"{args.features}/{name}_{k}.f32", dtype=np.float32).reshape(n, -1)
            feats[name if k == "cls" else f"{name}_{k}"] = torch.from_numpy(f)
        feats[f"{name}_cls+patchmean"] = torch.cat([feats[name], feats[f"{name}_patchmean"]], 1)
    feats["colour_hist"] = ev.colour_hist(data.decode(args.data, recs), "cpu")
    results = ev.evaluate(feats, sets, "cpu", linear=set())
    with open(args.out, "w") as f:
        json.dump({"results": results, "classes": classes,
                   "n": {"ebhi": n, "ebhi_cases": len({r["case"] for r in recs})}}, f, indent=1)
    print(f"{'features':24s} {'EBHI kNN':>9s} {'EBHI bal':>9s}")
    for name, r in results.items():
        print(f"{name:24s} {r['ebhi_knn_acc'] * 100:8.1f}% {r['ebhi_knn_balanced_acc'] * 100:8.1f}%")


if __name__ == "__main__":
    main()
