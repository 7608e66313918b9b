#!/usr/bin/env python3
"""Frozen-feature evaluation of an exported encoder against two baselines.

Feature sets: the trained encoder (weights read back from the exported f16 safetensors, so the
numbers are those of the shipped weights), the same architecture at random init (fixed seed),
and a colour histogram (8x8x8 joint RGB bins, square-rooted).
Tasks:
  PCam  - tumour vs normal; fit on train_* (6,154), test on test_* (922; never used in
          training). k-NN: k=20, cosine, votes weighted by exp(sim/0.07) (DINO's k-NN).
          Linear probe: L2 logistic regression on standardised features, L2 strength picked
          on valid_*.
  EBHI  - six-class k-NN (same k-NN) with 5 case-disjoint folds (case = file-name prefix);
          accuracy and balanced accuracy over all 532 out-of-fold predictions.
PCam patches (96 px at ~0.97 um/px) are resized to 224 px (~0.42 um/px) for the encoders.
Several encoders can be scored in one run (--weights a b --names x y); baselines once.
--variants adds read-outs of the same frozen models (k-NN only; the linear probe is fitted for
the main read-out): mean of patch tokens, mean of the central 4 x 4 tokens (PCam's label is
decided by the centre 32 px, which those tokens cover), the class tokens of the last 4 blocks
concatenated, and PCam's centre 48 px resized to 224 px (a crop around the labelled region).
Also writes 4 reference inputs and their embeddings (f32, TF32 off) for ONNX parity checks,
unless --no-ref.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import augment
import data
import vit
import weights


def to_input(imgs_u8, size=224):
    """uint8 (N, H, W, 3) -> normalised (N, 3, size, size), bilinear resize when needed."""
    x = imgs_u8.permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return augment.normalize(x)


def colour_standardise(u8, ref):
    """Per image and channel: pixel values moved to the reference mean and standard deviation
    (a Reinhard-style normalisation in RGB); ref = (mean, std), each (3,) in 0..255."""
    x = u8.float()
    m = x.mean((1, 2), keepdim=True)
    s = x.std((1, 2), keepdim=True).clamp_min(1.0)
    return ((x - m) / s * ref[1] + ref[0]).clamp(0, 255)


def d4(x, k):
    """The k-th element (0..7) of the dihedral group on (N, 3, H, W)."""
    x = torch.rot90(x, k % 4, dims=(2, 3))
    return x.flip(3) if k >= 4 else x


@torch.no_grad()
def encode_cls(model, imgs, device, batch=256, size=224, tta=False, ref=None):
    """Class tokens, optionally averaged over the 8 D4 transforms of the input and/or after a
    per-image colour standardisation (read-outs that --variants scores)."""
    out = []
    for i in range(0, imgs.shape[0], batch):
        u8 = torch.from_numpy(imgs[i:i + batch]).to(device)
        x = to_input(colour_standardise(u8, ref) if ref is not None else u8, size)
        ks = range(8) if tta else (0,)
        out.append(sum(F.normalize(model(d4(x, k)).float(), dim=1) for k in ks) / len(ks))
    return torch.cat(out) if out else torch.zeros(0, model.embed_dim, device=device)


@torch.no_grad()
def encode(model, imgs, device, batch=256, size=224, crop=None):
    """-> read-out name -> (N, features): the class token ("cls", the ONNX embedding), the mean
    of the patch tokens, the mean of the central 4 x 4 tokens, and the class tokens of the last
    4 blocks (each through the final norm) concatenated. crop: centre square of that many
    source pixels, cut before resizing."""
    d = model.embed_dim
    out = {"cls": [torch.zeros(0, d, device=device)], "patchmean": [torch.zeros(0, d, device=device)],
           "centre4": [torch.zeros(0, d, device=device)], "last4": [torch.zeros(0, min(4, len(model.blocks)) * d, device=device)]}
    for i in range(0, imgs.shape[0], batch):
        u8 = torch.from_numpy(imgs[i:i + batch]).to(device)
        if crop:
            o = (u8.shape[1] - crop) // 2
            u8 = u8[:, o:o + crop, o:o + crop]
        t, lasts = model.forward_features(to_input(u8, size), last=4)
        t = t.float()
        g = size // model.patch
        lo = (g - 4) // 2
        grid = t[:, 1:].reshape(t.shape[0], g, g, -1)
        out["cls"].append(t[:, 0])
        out["patchmean"].append(t[:, 1:].mean(1))
        out["centre4"].append(grid[:, lo:lo + 4, lo:lo + 4].mean((1, 2)))
        out["last4"].append(torch.cat([x[:, 0].float() for x in lasts], 1))
    return {k: torch.cat(v) for k, v in out.items()}


def colour_hist(imgs, device, bins=8):
    if imgs.shape[0] == 0:
        return torch.zeros(0, bins ** 3, device=device)
    x = torch.from_numpy(imgs).to(device).long() // (256 // bins)
    idx = (x[..., 0] * bins + x[..., 1]) * bins + x[..., 2]
    h = torch.zeros(imgs.shape[0], bins ** 3, device=device)
    h.scatter_add_(1, idx.reshape(imgs.shape[0], -1),
                   torch.ones(idx.reshape(imgs.shape[0], -1).shape, device=device))
    return torch.sqrt(h / h.sum(1, keepdim=True))


def knn_predict(train_f, train_y, test_f, n_classes, k=20, temp=0.07):
    a = F.normalize(train_f, dim=1)
    b = F.normalize(test_f, dim=1)
    sim = b @ a.T
    k = min(k, a.shape[0])
    top, idx = sim.topk(k, dim=1)
    votes = torch.zeros(b.shape[0], n_classes, device=b.device)
    votes.scatter_add_(1, train_y[idx], torch.exp(top / temp))
    return votes.argmax(1)


def logistic(train_f, train_y, n_classes, l2, iters=200):
    w = torch.zeros(train_f.shape[1], n_classes, device=train_f.device, dtype=torch.float64,
                    requires_grad=True)
    b = torch.zeros(n_classes, device=train_f.device, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")
    x = train_f.double()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, train_y) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def linear_probe(tr_f, tr_y, va_f, va_y, te_f, n_classes):
    mu, sd = tr_f.mean(0), tr_f.std(0) + 1e-6
    z = lambda f: ((f - mu) / sd).double()
    best = None
    for l2 in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1):
        w, b = logistic(z(tr_f), tr_y, n_classes, l2)
        acc = ((z(va_f) @ w + b).argmax(1) == va_y).float().mean().item()
        if best is None or acc > best[0]:
            best = (acc, l2, w, b)
    _, l2, w, b = best
    return (z(te_f) @ w + b).argmax(1), l2


def case_folds(cases, n_folds=5, seed=0):
    uniq = sorted(set(cases))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    fold_of = {uniq[i]: j % n_folds for j, i in enumerate(order)}
    return np.array([fold_of[c] for c in cases])


def balanced_acc(pred, y, n_classes):
    recalls = [(pred[y == c] == c).float().mean().item() for c in range(n_classes) if (y == c).any()]
    return float(np.mean(recalls))


def evaluate(feats, sets, device, linear):
    """feats: name -> feature tensor over the concatenated eval images; sets: index arrays;
    linear: the names that also get a linear probe."""
    out = {}
    tr, va, te, y = sets["pcam_train"], sets["pcam_valid"], sets["pcam_test"], sets["pcam_y"]
    eb, ey, folds = sets["ebhi"], sets["ebhi_y"], sets["ebhi_folds"]
    for name, f in feats.items():
        r = out[name] = {}
        if len(te):
            pred = knn_predict(f[tr], y[tr], f[te], 2)
            r["pcam_knn_acc"] = (pred == y[te]).float().mean().item()
            pred = knn_predict(f[tr], y[tr], f[va], 2)  # valid_*: other slides, same centres
            r["pcam_valid_knn_acc"] = (pred == y[va]).float().mean().item()
            if name in linear:
                pred, l2 = linear_probe(f[tr], y[tr], f[va], y[va], f[te], 2)
                r["pcam_linear_acc"] = (pred == y[te]).float().mean().item()
                r["pcam_linear_l2"] = l2
        if len(eb):
            preds = torch.empty_like(ey)
            for k in range(int(folds.max()) + 1):
                test_m = torch.from_numpy(folds == k).to(device)
                preds[test_m] = knn_predict(f[eb][~test_m], ey[~test_m], f[eb][test_m], 6)
            r["ebhi_knn_acc"] = (preds == ey).float().mean().item()
            r["ebhi_knn_balanced_acc"] = balanced_acc(preds, ey, 6)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=".traindata")
    ap.add_argument("--weights", required=True, nargs="+", help="exported model.safetensors")
    ap.add_argument("--names", nargs="+", default=None,
                    help="one per --weights (default: trained, trained2, ...)")
    ap.add_argument("--no-ref", action="store_true", help="skip the parity reference files")
    ap.add_argument("--tasks", default="pcam,ebhi",
                    help="pcam, ebhi or both: a shard without EBHI-Seg (device calls short of room) "
                         "is scored on PCam there and on EBHI-Seg here")
    ap.add_argument("--arch", default="vit_tiny", choices=sorted(vit.CONFIGS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="images per split (smoke tests)")
    ap.add_argument("--variants", action="store_true",
                    help="also the other read-outs (k-NN only)")
    args = ap.parse_args()
    t0 = time.time()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    recs = data.load_index(args.data)
    def subset(sel):  # evenly spaced, so a smoke test still sees every class
        return sel if not args.limit else sel[::max(1, len(sel) // args.limit)][:args.limit]

    tasks = set(args.tasks.split(","))
    pcam = {s: subset(data.select(recs, collection="pcam", split=s)) if "pcam" in tasks else []
            for s in ("train", "valid", "test")}
    ebhi = subset(data.select(recs, collection="ebhi-seg")) if "ebhi" in tasks else []
    if ("pcam" in tasks and not pcam["test"]) or ("ebhi" in tasks and not ebhi):
        raise SystemExit(f"{args.data} lacks images for --tasks {args.tasks}")
    pcam_recs = pcam["train"] + pcam["valid"] + pcam["test"]
    pcam_imgs = data.decode(args.data, pcam_recs)
    ebhi_imgs = data.decode(args.data, ebhi)
    n_tr, n_va = len(pcam["train"]), len(pcam["valid"])
    n_p = len(pcam_recs)
    classes = sorted({r["label"] for r in ebhi})
    sets = {
        "pcam_train": torch.arange(0, n_tr, device=device),
        "pcam_valid": torch.arange(n_tr, n_tr + n_va, device=device),
        "pcam_test": torch.arange(n_tr + n_va, n_p, device=device),
        "pcam_y": torch.tensor([r["label"] for r in pcam_recs] + [0] * len(ebhi), device=device),
        "ebhi": torch.arange(n_p, n_p + len(ebhi), device=device),
        "ebhi_y": torch.tensor([classes.index(r["label"]) for r in ebhi], device=device),
        "ebhi_folds": case_folds([r["case"] for r in ebhi]) if ebhi else None,
    }

    names = args.names or ["trained"] + [f"trained{i + 2}" for i in range(len(args.weights) - 1)]
    if len(names) != len(args.weights):
        raise SystemExit("--names needs one name per --weights")
    models = []
    for name, path in zip(names, args.weights):
        m = vit.build(args.arch)
        m.load_state_dict(weights.load_backbone_state(path, m), strict=True)
        m = m.to(device).eval()
        models.append((name, m, path))
    torch.manual_seed(args.seed)
    models.append(("untrained", vit.build(args.arch).to(device).eval(), None))

    # Reference colour for the colour-standardised read-out: PCam train_* per-image statistics.
    tr_u8 = torch.from_numpy(pcam_imgs[:n_tr]).to(device).float()
    ref = (tr_u8.mean((1, 2)).mean(0), tr_u8.std((1, 2)).mean(0)) if n_tr else None
    del tr_u8
    feats = {}
    for name, model, _ in models:
        p, e = encode(model, pcam_imgs, device), encode(model, ebhi_imgs, device)
        feats[name] = torch.cat([p["cls"], e["cls"]])
        if args.variants:  # other read-outs of the same frozen model (not the ONNX embedding)
            for k in ("patchmean", "centre4", "last4"):
                feats[f"{name}_{k}"] = torch.cat([p[k], e[k]])
            pc = encode(model, pcam_imgs, device, crop=48)["cls"]  # EBHI as is
            feats[f"{name}_pcam-crop48"] = torch.cat([pc, e["cls"]])
            feats[f"{name}_d4"] = torch.cat([encode_cls(model, pcam_imgs, device, tta=True),
                                             encode_cls(model, ebhi_imgs, device, tta=True)])
            feats[f"{name}_colournorm"] = torch.cat([encode_cls(model, pcam_imgs, device, ref=ref),
                                                     encode_cls(model, ebhi_imgs, device, ref=ref)])
            feats[f"{name}_cls+centre4"] = torch.cat([
                F.normalize(torch.cat([p["cls"], e["cls"]]), dim=1),
                F.normalize(torch.cat([p["centre4"], e["centre4"]]), dim=1)], 1)
    feats["colour_hist"] = torch.cat([colour_hist(pcam_imgs, device), colour_hist(ebhi_imgs, device)])
    if args.variants and ref is not None:
        def hist_norm(imgs):
            return torch.cat([colour_hist(colour_standardise(torch.from_numpy(imgs[i:i + 512]).to(device), ref)
                                          .round().to(torch.uint8).cpu().numpy(), device)
                              for i in range(0, imgs.shape[0], 512)] or [colour_hist(imgs, device)])
        feats["colour_hist_colournorm"] = torch.cat([hist_norm(pcam_imgs), hist_norm(ebhi_imgs)])
    results = evaluate(feats, sets, device, linear={n for n, _, _ in models} | {"colour_hist"})

    # Reference inputs for parity checks: 4 EBHI images spread over the list (PCam test patches
    # when EBHI-Seg is not in this run).
    ref_recs, ref_src = (ebhi, ebhi_imgs) if ebhi else (pcam["test"], pcam_imgs[n_tr + n_va:])
    pick = [0, len(ref_recs) // 4, len(ref_recs) // 2, 3 * len(ref_recs) // 4]
    ref_imgs = ref_src[pick]
    timm_check = {}
    for name, model, path in models[:-1]:
        with torch.no_grad():
            ref_emb = model(to_input(torch.from_numpy(ref_imgs).to(device))).float().cpu().numpy()
        if not args.no_ref:
            np.savez(os.path.join(args.out, "ref.npz" if len(models) == 2 else f"ref-{name}.npz"),
                     images=ref_imgs, embeddings=ref_emb,
                     names=np.array([ref_recs[i]["name"] for i in pick]))
        try:
            import timm
            m = timm.create_model("vit_tiny_patch16_224" if args.arch == "vit_tiny" else
                                  "vit_small_patch16_224", pretrained=False, num_classes=0)
            m.load_state_dict(weights.load_backbone_state(path, vit.build(args.arch)), strict=True)
            m = m.to(device).eval()
            with torch.no_grad():
                e = m(to_input(torch.from_numpy(ref_imgs).to(device))).float().cpu().numpy()
            timm_check[name] = {"timm": timm.__version__,
                                "max_abs_diff": float(np.abs(e - ref_emb).max()),
                                "max_abs_ref": float(np.abs(ref_emb).max())}
        except Exception as exc:  # timm missing or incompatible: record, don't fail the run
            timm_check[name] = {"error": repr(exc)[:300]}

    summary = {"results": results, "timm_check": timm_check, "classes": classes,
               "n": {"pcam_train": n_tr, "pcam_valid": n_va, "pcam_test": n_p - n_tr - n_va,
                     "ebhi": len(ebhi), "ebhi_cases": len(set(r["case"] for r in ebhi))},
               "eval_s": round(time.time() - t0, 1)}
    with open(os.path.join(args.out, "eval.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"{'features':24s} {'PCam kNN':>9s} {'PCam lin':>9s} {'valid kNN':>9s} {'EBHI kNN':>9s} "
          f"{'EBHI bal':>9s}")
    keys = ("pcam_knn_acc", "pcam_linear_acc", "pcam_valid_knn_acc", "ebhi_knn_acc",
            "ebhi_knn_balanced_acc")
    for name, r in results.items():
        print(f"{name:24s} " + " ".join(f"{r[k] * 100:8.1f}%" if k in r else f"{'-':>9s}"
                                        for k in keys))
    print(json.dumps({"timm_check": timm_check, "eval_s": summary["eval_s"]}))


if __name__ == "__main__":
    main()
