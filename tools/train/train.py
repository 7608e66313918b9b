#!/usr/bin/env python3
"""DINO + iBOT self-distillation of a ViT-Tiny/16 on the packed real H&E (tools/train/pack_data.py).

Student and EMA teacher, multi-crop (2 global 224 px + N local 96 px views), teacher centring
and sharpening, a KoLeo term on the student's class tokens (DINOv2) to spread the features.
iBOT (--ibot > 0): on about half the images the student sees its global views with blob-shaped
groups of patch tokens replaced by a learned mask token, and a separate patch head must predict
the teacher's distribution for each hidden token from its context (masked image modelling in
the teacher's feature space); that asks every token, not only the class token, to describe its
tissue, a denser signal per image than DINO's one target per view.
All augmentation runs batched on the GPU (augment.py). bf16 autocast on CUDA, fixed seed.
Training runs for a wall-clock budget: after a short warm-up the step time is measured and the
cosine schedules are laid over the number of steps that fit. Writes <out>/loss.csv every
--log-every steps and <out>/ckpt.pt (teacher backbone + head in f16, centre, step; small enough
to come back through $OUT) at the end; --resume continues from such a checkpoint (the student
restarts as a copy of the teacher and AdamW restarts with a short warm-up).
"""
import argparse
import copy
import csv
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import augment
import data
import vit
import weights


class DINOHead(nn.Module):
    """3-layer MLP -> L2-normalised bottleneck -> weight-normalised prototypes (g fixed to 1)."""

    def __init__(self, dim, out_dim, hidden=1024, bottleneck=256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                 nn.GELU(), nn.Linear(hidden, bottleneck))
        self.last = nn.Parameter(torch.empty(out_dim, bottleneck))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.last, std=0.02)

    def forward(self, x):
        x = F.normalize(self.mlp(x), dim=-1)
        return F.linear(x, F.normalize(self.last, dim=1))


class Net(nn.Module):
    def __init__(self, arch, out_dim, patch_out_dim=0):
        super().__init__()
        self.backbone = vit.build(arch)
        dim = self.backbone.embed_dim
        self.head = DINOHead(dim, out_dim)
        # Outside the backbone, so that the exported weights keep exactly timm's keys.
        self.patch_head = DINOHead(dim, patch_out_dim) if patch_out_dim else None
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim)) if patch_out_dim else None

    def forward(self, g_views, l_views=None, mask=None):
        """-> (class tokens of all views, patch tokens of the global views, class-head logits).
        mask (n_global, tokens) hides global-view tokens (student only)."""
        t = self.backbone.forward_features(g_views, mask, self.mask_token)
        cls = t[:, 0] if l_views is None else torch.cat([t[:, 0], self.backbone(l_views)])
        return cls, t[:, 1:], self.head(cls)


def dino_loss(s_out, t_out, center, n_views, tau_s, tau_t):
    s = (s_out.float() / tau_s).chunk(n_views)
    t = F.softmax((t_out.float() - center) / tau_t, dim=-1).detach().chunk(2)
    total, n = 0.0, 0
    for iq, q in enumerate(t):
        for v in range(n_views):
            if v == iq:
                continue
            total = total + torch.sum(-q * F.log_softmax(s[v], dim=-1), dim=-1).mean()
            n += 1
    return total / n


def ibot_loss(s_out, t_out, center, mask, tau_s, tau_t):
    """Cross-entropy teacher -> student over the masked tokens; each image's tokens average to
    one term, and the terms average over the images that have a mask (DINOv2's weighting)."""
    t = F.softmax((t_out.float() - center) / tau_t, dim=-1)
    per_token = torch.sum(-t * F.log_softmax(s_out.float() / tau_s, dim=-1), dim=-1)
    n_img = mask.sum(1, keepdim=True).expand_as(mask)[mask].float()
    n_masked_images = (mask.sum(1) > 0).sum().clamp_min(1)
    return (per_token / n_img).sum() / n_masked_images


def block_masks(n, grid, ratio, prob, g, device):
    """(n, grid*grid) bool: on a fraction prob of the images, the tokens where a low-frequency
    noise field is lowest, a share drawn uniformly from ratio; blobs rather than scattered
    tokens, because neighbouring tokens of an upsampled patch are nearly copies of each other."""
    noise = torch.randn(n, 1, 4, 4, generator=g, device=device)
    noise = F.interpolate(noise, size=(grid, grid), mode="bicubic", align_corners=False).flatten(1)
    rank = noise.argsort(1).argsort(1)
    share = torch.rand(n, generator=g, device=device) * (ratio[1] - ratio[0]) + ratio[0]
    k = (share * grid * grid).round()
    k = torch.where(torch.rand(n, generator=g, device=device) < prob, k, torch.zeros_like(k))
    return rank < k[:, None]


def koleo(x):
    """Kozachenko-Leonenko entropy estimator on L2-normalised vectors (DINOv2)."""
    x = F.normalize(x.float(), dim=-1)
    with torch.no_grad():
        sim = x @ x.T
        sim.fill_diagonal_(-2.0)
        nn_idx = sim.argmax(dim=1)
    return -torch.log(F.pairwise_distance(x, x[nn_idx]) + 1e-8).mean()


def cosine(step, total, start, end, warmup=0, warm_start=0.0):
    if step < warmup:
        return warm_start + (start - warm_start) * step / max(1, warmup)
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * t))


def param_groups(model):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(("pos_embed", "cls_token")) else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def load_pools(data_dir, device, limit=None):
    recs = data.load_index(data_dir)
    pools = {}
    for group in ("pcam96", "tile224"):
        sel = data.select(recs, group=group, role="ssl")[:limit]
        arr = data.decode(data_dir, sel)
        pools[group] = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous().to(device)
    return pools


def sample_views(pools, args, g):
    """2 global + args.local_crops local views per image; PCam and tile sources mixed."""
    dev = pools["pcam96"].device
    n_tile = int(round(args.batch * args.tile_frac))
    parts = [("pcam96", args.batch - n_tile, (0.35, 1.0), (0.08, 0.35)),
             ("tile224", n_tile, (0.25, 1.0), (0.05, 0.25))]
    globals_, locals_ = [[], []], [[] for _ in range(args.local_crops)]
    for group, n, gscale, lscale in parts:
        pool = pools[group]
        if n == 0 or pool.shape[0] == 0:
            continue
        idx = torch.randint(0, pool.shape[0], (n,), generator=g, device=dev)
        src = pool[idx].float() / 255.0
        centre = args.centre if group == "pcam96" else 0.0
        if group == "pcam96" and args.pcam_global_scale:
            gscale = tuple(args.pcam_global_scale)
        for i, p_blur in enumerate((0.8, 0.2)):
            globals_[i].append(augment.view(src, args.global_size, gscale, g, p_blur, args.colour, centre))
        for i in range(args.local_crops):
            locals_[i].append(augment.view(src, args.local_size, lscale, g, 0.4, args.colour))
    g_views = torch.cat([torch.cat(v) for v in globals_])
    l_views = torch.cat([torch.cat(v) for v in locals_]) if args.local_crops else None
    return g_views, l_views


def save_ckpt(path, teacher, center, center_p, step, args, extra):
    state = {k: v.detach().to(torch.float16).cpu() for k, v in teacher.state_dict().items()}
    torch.save({"teacher": state, "center": center.cpu(), "center_p": center_p.cpu(), "step": step,
                "args": vars(args), "extra": extra}, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=".traindata")
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", default="vit_tiny", choices=sorted(vit.CONFIGS))
    ap.add_argument("--budget-s", type=float, default=360.0, help="wall-clock training budget")
    ap.add_argument("--max-steps", type=int, default=0, help="cap on steps (0: budget only)")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--tile-frac", type=float, default=0.25)
    ap.add_argument("--local-crops", type=int, default=6)
    ap.add_argument("--global-size", type=int, default=224)
    ap.add_argument("--local-size", type=int, default=96)
    ap.add_argument("--colour", default="default", choices=sorted(augment.COLOUR),
                    help="colour augmentation strength (augment.COLOUR)")
    ap.add_argument("--centre", type=float, default=0.0,
                    help="PCam global views cover the central square of this side (1/3: the "
                         "labelled 32 px); 0: anywhere")
    ap.add_argument("--pcam-global-scale", type=float, nargs=2, default=None,
                    help="area range of PCam global crops (default 0.35 1.0)")
    ap.add_argument("--out-dim", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=5e-4, help="per 256 images")
    ap.add_argument("--min-lr", type=float, default=1e-6)
    ap.add_argument("--wd", type=float, nargs=2, default=(0.04, 0.4))
    ap.add_argument("--momentum", type=float, default=0.994,
                    help="teacher EMA at the start (cosine to 1); lower than DINO's 0.996 for "
                         "schedules of about a thousand steps")
    ap.add_argument("--tau-s", type=float, default=0.1)
    ap.add_argument("--tau-t", type=float, default=0.04)
    ap.add_argument("--koleo", type=float, default=0.1)
    ap.add_argument("--ibot", type=float, default=1.0, help="weight of the masked-token loss (0: DINO only)")
    ap.add_argument("--patch-out-dim", type=int, default=4096)
    ap.add_argument("--mask-prob", type=float, default=0.5, help="share of images masked")
    ap.add_argument("--mask-ratio", type=float, nargs=2, default=(0.1, 0.5))
    ap.add_argument("--clip", type=float, default=3.0)
    ap.add_argument("--warmup-frac", type=float, default=0.1)
    ap.add_argument("--freeze-last-frac", type=float, default=0.05)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", default="")
    ap.add_argument("--init", default="",
                    help="timm-named safetensors (export.py's output) or a Lamina ViT ONNX to "
                         "start the backbone from; heads start fresh")
    ap.add_argument("--limit", type=int, default=None, help="images per pool (smoke tests)")
    args = ap.parse_args()

    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    g = torch.Generator(device=device).manual_seed(args.seed)

    pools = load_pools(args.data, device, args.limit)
    n_images = sum(p.shape[0] for p in pools.values())
    print(f"pools: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in pools.items())
          + f"; load {time.time() - t_start:.1f}s", flush=True)

    student = Net(args.arch, args.out_dim, args.patch_out_dim if args.ibot > 0 else 0).to(device)
    start_step, center = 0, torch.zeros(1, args.out_dim, device=device)
    center_p = torch.zeros(1, args.patch_out_dim, device=device)
    if args.resume:
        ck = torch.load(args.resume, map_location="cpu")
        student.load_state_dict({k: v.float() for k, v in ck["teacher"].items()})
        center = ck["center"].to(device)
        if "center_p" in ck:
            center_p = ck["center_p"].to(device)
        start_step = ck["step"]
        print(f"resumed from {args.resume} at step {start_step}", flush=True)
    if args.init:
        student.backbone.load_state_dict(weights.load_backbone_state(args.init, student.backbone),
                                         strict=True)
        print(f"backbone initialised from {args.init}", flush=True)
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(param_groups(student), lr=0.0, betas=(0.9, 0.999))
    base_lr = args.lr * args.batch / 256
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
    n_views = 2 + args.local_crops

    log_f = open(os.path.join(args.out, "loss.csv"), "a" if args.resume else "w", newline="")
    log = csv.writer(log_f)
    if not args.resume:
        log.writerow(["step", "wall_s", "loss", "dino", "koleo", "ibot", "lr", "wd", "momentum",
                      "teacher_entropy", "teacher_sample_entropy", "patch_teacher_entropy",
                      "grad_norm"])
    total = args.max_steps or 10**9
    calibrate_at = 20
    t_loop = time.time()
    step = 0
    while step < total:
        # The step count is re-fitted to the budget every 100 steps from the mean step time so
        # far (another process on the GPU, or a slow start, would otherwise overrun the call),
        # and the budget is a hard stop besides.
        if not args.max_steps and step >= calibrate_at and (step - calibrate_at) % 100 == 0:
            if cuda:
                torch.cuda.synchronize()
            per_step = (time.time() - t_cal) / (step - 5)
            left = args.budget_s - (time.time() - t_loop)
            total = max(step + 1, step + int(left / per_step))
            print(f"step {step}: {per_step * 1000:.1f} ms a step -> {total} steps in the budget",
                  flush=True)
        if not args.max_steps and step > calibrate_at and time.time() - t_loop > args.budget_s:
            print(f"budget reached at step {step} of {total}", flush=True)
            break
        if step == 5:
            if cuda:
                torch.cuda.synchronize()
            t_cal = time.time()
        sched_total = total if total < 10**9 else 2000
        lr = cosine(step, sched_total, base_lr, args.min_lr, int(args.warmup_frac * sched_total))
        wd = cosine(step, sched_total, args.wd[1], args.wd[0])
        wd = args.wd[0] + args.wd[1] - wd  # rises from wd[0] to wd[1]
        mom = 1.0 - (1.0 - args.momentum) * (math.cos(math.pi * min(1.0, step / sched_total)) + 1) / 2
        opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = lr, lr
        opt.param_groups[0]["weight_decay"] = wd

        g_views, l_views = sample_views(pools, args, g)
        grid = args.global_size // student.backbone.patch
        mask = (block_masks(g_views.shape[0], grid, args.mask_ratio, args.mask_prob, g, device)
                if args.ibot > 0 else None)
        with amp:
            with torch.no_grad():
                _, t_tok, t_out = teacher(g_views)
            s_cls, s_tok, s_out = student(g_views, l_views, mask)
            dino = dino_loss(s_out, t_out, center, n_views, args.tau_s, args.tau_t)
            ko = sum(koleo(c) for c in s_cls[: g_views.shape[0]].chunk(2)) / 2
            loss = dino + args.koleo * ko
            ibot = torch.zeros((), device=device)
            if mask is not None and mask.any():
                with torch.no_grad():
                    tp_out = teacher.patch_head(t_tok[mask])
                sp_out = student.patch_head(s_tok[mask])
                ibot = ibot_loss(sp_out, tp_out, center_p, mask, args.tau_s, args.tau_t)
                loss = loss + args.ibot * ibot
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(student.parameters(), args.clip)
        if step < int(args.freeze_last_frac * sched_total):
            student.head.last.grad = None
            if student.patch_head is not None:
                student.patch_head.last.grad = None
        opt.step()
        with torch.no_grad():
            for ps, pt in zip(student.parameters(), teacher.parameters()):
                pt.mul_(mom).add_(ps.detach(), alpha=1 - mom)
            batch_center = t_out.float().mean(0, keepdim=True)
            center.mul_(0.9).add_(batch_center, alpha=0.1)
            if mask is not None and mask.any():
                center_p.mul_(0.9).add_(tp_out.float().mean(0, keepdim=True), alpha=0.1)
        if step % args.log_every == 0 or step == total - 1:
            with torch.no_grad():
                # Collapse shows as a low entropy of the mean (one prototype wins) or a high
                # per-sample entropy (uniform outputs); healthy is high mean, low per-sample.
                p = F.softmax((t_out.float() - center) / args.tau_t, dim=-1)
                q = p.mean(0)
                ent = float(-(q * torch.log(q + 1e-12)).sum())
                ent_s = float(-(p * torch.log(p + 1e-12)).sum(1).mean())
                ent_p = float("nan")
                if mask is not None and mask.any():
                    qp = F.softmax((tp_out.float() - center_p) / args.tau_t, dim=-1).mean(0)
                    ent_p = float(-(qp * torch.log(qp + 1e-12)).sum())
            row = [start_step + step, round(time.time() - t_start, 2), loss.item(), dino.item(),
                   ko.item(), ibot.item(), lr, wd, mom, ent, ent_s, ent_p, gn.item()]
            log.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
            log_f.flush()
            if step % (args.log_every * 10) == 0 or step == total - 1:
                print(f"step {start_step + step}/{start_step + total} loss {row[2]:.4f} "
                      f"dino {row[3]:.4f} koleo {row[4]:.3f} ibot {row[5]:.4f} lr {lr:.2e} "
                      f"H(teacher mean) {ent:.2f} H(teacher sample) {ent_s:.2f} "
                      f"H(patch mean) {ent_p:.2f} t={time.time() - t_start:.0f}s", flush=True)
            if not math.isfinite(row[2]):
                raise SystemExit("loss is not finite")
        step += 1
    log_f.close()
    train_s = time.time() - t_loop
    images_seen = step * args.batch
    extra = {"steps": step, "train_s": round(train_s, 1), "images_seen": images_seen,
             "epochs": round(images_seen / n_images, 1), "ssl_images": n_images,
             "device": torch.cuda.get_device_name() if cuda else "cpu",
             "torch": str(torch.__version__)}
    save_ckpt(os.path.join(args.out, "ckpt.pt"), teacher, center, center_p, start_step + step,
              args, extra)
    with open(os.path.join(args.out, "train.json"), "w") as f:
        json.dump({"args": vars(args), **extra}, f, indent=1)
    print(json.dumps(extra), flush=True)


if __name__ == "__main__":
    main()
