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
Also writes 4 reference inputs and their embeddings (f32, TF32 off) for ONNX parity checks.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import augment
import data
import vit


def to_input(imgs_u8, size=224):
    """uint8 (N, H, W, 3) -> normalised (N, 3, size, size), bilinear resize when needed."""
    x = imgs_u8.permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return augment.normalize(x)


@torch.no_grad()
def encode(model, imgs, device, batch=256, size=224):
    """-> (class token, mean of patch tokens), both after the final norm."""
    cls, mean = [], []
    for i in range(0, imgs.shape[0], batch):
        x = to_input(torch.from_numpy(imgs[i:i + batch]).to(device), size)
        t = model.forward_features(x).float()
        cls.append(t[:, 0])
        mean.append(t[:, 1:].mean(1))
    return torch.cat(cls), torch.cat(mean)


def colour_hist(imgs, device, bins=8):
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


def evaluate(feats, sets, device):
    """feats: name -> feature tensor over the concatenated eval images; sets: index arrays."""
    out = {}
    for name, f in feats.items():
        r = {}
        tr, va, te = sets["pcam_train"], sets["pcam_valid"], sets["pcam_test"]
        y = sets["pcam_y"]
        pred = knn_predict(f[tr], y[tr], f[te], 2)
        r["pcam_knn_acc"] = (pred == y[te]).float().mean().item()
        pred = knn_predict(f[tr], y[tr], f[va], 2)  # valid_*: other slides of the same centres
        r["pcam_valid_knn_acc"] = (pred == y[va]).float().mean().item()
        pred, l2 = linear_probe(f[tr], y[tr], f[va], y[va], f[te], 2)
        r["pcam_linear_acc"] = (pred == y[te]).float().mean().item()
        r["pcam_linear_l2"] = l2
        eb, ey, folds = sets["ebhi"], sets["ebhi_y"], sets["ebhi_folds"]
        preds = torch.empty_like(ey)
        for k in range(int(folds.max()) + 1):
            test_m = torch.from_numpy(folds == k).to(device)
            preds[test_m] = knn_predict(f[eb][~test_m], ey[~test_m], f[eb][test_m], 6)
        r["ebhi_knn_acc"] = (preds == ey).float().mean().item()
        r["ebhi_knn_balanced_acc"] = balanced_acc(preds, ey, 6)
        out[name] = r
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=".traindata")
    ap.add_argument("--weights", required=True, help="exported model.safetensors")
    ap.add_argument("--arch", default="vit_tiny", choices=sorted(vit.CONFIGS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="images per split (smoke tests)")
    ap.add_argument("--variants", action="store_true",
                    help="also patch-token mean, class+mean, and PCam at 192 px")
    args = ap.parse_args()
    t0 = time.time()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    recs = data.load_index(args.data)
    def subset(sel):  # evenly spaced, so a smoke test still sees every class
        return sel if not args.limit else sel[::max(1, len(sel) // args.limit)][:args.limit]

    pcam = {s: subset(data.select(recs, collection="pcam", split=s))
            for s in ("train", "valid", "test")}
    ebhi = subset(data.select(recs, collection="ebhi-seg"))
    pcam_recs = pcam["train"] + pcam["valid"] + pcam["test"]
    pcam_imgs = data.decode(args.data, pcam_recs)
    ebhi_imgs = data.decode(args.data, ebhi)
    n_tr, n_va = len(pcam["train"]), len(pcam["valid"])
    n_p = len(pcam_recs)
    classes = sorted({r["label"] for r in data.select(recs, collection="ebhi-seg")})
    sets = {
        "pcam_train": torch.arange(0, n_tr, device=device),
        "pcam_valid": torch.arange(n_tr, n_tr + n_va, device=device),
        "pcam_test": torch.arange(n_tr + n_va, n_p, device=device),
        "pcam_y": torch.tensor([r["label"] for r in pcam_recs] + [0] * len(ebhi), device=device),
        "ebhi": torch.arange(n_p, n_p + len(ebhi), device=device),
        "ebhi_y": torch.tensor([classes.index(r["label"]) for r in ebhi], device=device),
        "ebhi_folds": case_folds([r["case"] for r in ebhi]),
    }

    trained = vit.build(args.arch).to(device).eval()
    trained.load_state_dict({k: v.float() for k, v in load_file(args.weights).items()})
    torch.manual_seed(args.seed)
    untrained = vit.build(args.arch).to(device).eval()

    feats = {}
    for name, model in (("trained", trained), ("untrained", untrained)):
        (pc, pm), (ec, em) = encode(model, pcam_imgs, device), encode(model, ebhi_imgs, device)
        feats[name] = torch.cat([pc, ec])
        if args.variants:  # other read-outs of the same frozen model (not the ONNX embedding)
            feats[name + "_patchmean"] = torch.cat([pm, em])
            feats[name + "_cls+patchmean"] = torch.cat([torch.cat([pc, pm], 1), torch.cat([ec, em], 1)])
    if args.variants:
        # PCam at ~0.5 um/px (96 px at 0.97 -> 192 px; position embeddings resized), EBHI as is.
        (pc, _), (ec, _) = encode(trained, pcam_imgs, device, size=192), encode(trained, ebhi_imgs, device)
        feats["trained_pcam192"] = torch.cat([pc, ec])
    feats["colour_hist"] = torch.cat([colour_hist(pcam_imgs, device), colour_hist(ebhi_imgs, device)])
    results = evaluate(feats, sets, device)

    # Reference inputs for parity checks: 4 EBHI images spread over the list.
    pick = [0, len(ebhi) // 4, len(ebhi) // 2, 3 * len(ebhi) // 4]
    ref_imgs = ebhi_imgs[pick]
    with torch.no_grad():
        ref_emb = trained(to_input(torch.from_numpy(ref_imgs).to(device))).float().cpu().numpy()
    np.savez(os.path.join(args.out, "ref.npz"), images=ref_imgs, embeddings=ref_emb,
             names=np.array([ebhi[i]["name"] for i in pick]))

    timm_check = None
    try:
        import timm
        m = timm.create_model("vit_tiny_patch16_224" if args.arch == "vit_tiny" else
                              "vit_small_patch16_224", pretrained=False, num_classes=0)
        m.load_state_dict({k: v.float() for k, v in load_file(args.weights).items()}, strict=True)
        m = m.to(device).eval()
        with torch.no_grad():
            e = m(to_input(torch.from_numpy(ref_imgs).to(device))).float().cpu().numpy()
        timm_check = {"timm": timm.__version__,
                      "max_abs_diff": float(np.abs(e - ref_emb).max()),
                      "max_abs_ref": float(np.abs(ref_emb).max())}
    except Exception as exc:  # timm missing or incompatible: record, don't fail the run
        timm_check = {"error": repr(exc)[:300]}

    summary = {"results": results, "timm_check": timm_check, "classes": classes,
               "n": {"pcam_train": n_tr, "pcam_valid": n_va, "pcam_test": n_p - n_tr - n_va,
                     "ebhi": len(ebhi), "ebhi_cases": len(set(r["case"] for r in ebhi))},
               "eval_s": round(time.time() - t0, 1)}
    with open(os.path.join(args.out, "eval.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"{'features':24s} {'PCam kNN':>9s} {'PCam lin':>9s} {'valid kNN':>9s} {'EBHI kNN':>9s} "
          f"{'EBHI bal':>9s}")
    for name, r in results.items():
        print(f"{name:24s} {r['pcam_knn_acc'] * 100:8.1f}% {r['pcam_linear_acc'] * 100:8.1f}% "
              f"{r['pcam_valid_knn_acc'] * 100:8.1f}% "
              f"{r['ebhi_knn_acc'] * 100:8.1f}% {r['ebhi_knn_balanced_acc'] * 100:8.1f}%")
    print(json.dumps({"timm_check": timm_check, "eval_s": summary["eval_s"]}))


if __name__ == "__main__":
    main()
