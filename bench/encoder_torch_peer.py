"""PyTorch peer for `npm run bench:encoder`: the same ViT (timm semantics, written out plainly so
timm/torchvision versions do not matter) from the timm-named safetensors that `lamina model export`
writes, attention via F.scaled_dot_product_attention. Checks its embedding of the given tiles
against ONNX Runtime's, then times CPU inference. Prints one JSON line.

usage: python encoder_torch_peer.py weights.safetensors config.json pixels.f32 ort.f32 batches threads repeats
"""
import json
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def forward(w, c, x):
    d, p, heads = c["dim"], c["patchSize"], c["numHeads"]
    eps = c["layerNormEps"]
    b = x.shape[0]
    t = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=p).flatten(2).transpose(1, 2)
    prefix = [w["cls_token"].expand(b, -1, -1)]
    if c["numRegisterTokens"]:
        prefix.append(w["reg_token"].expand(b, -1, -1))
    if not c["posEmbedIncludesPrefix"]:
        t = t + w["pos_embed"]
    t = torch.cat(prefix + [t], dim=1)
    if c["posEmbedIncludesPrefix"]:
        t = t + w["pos_embed"]
    s = t.shape[1]
    for i in range(c["depth"]):
        k = f"blocks.{i}."
        h = F.layer_norm(t, (d,), w[k + "norm1.weight"], w[k + "norm1.bias"], eps)
        qkv = F.linear(h, w[k + "attn.qkv.weight"], w.get(k + "attn.qkv.bias"))
        qkv = qkv.reshape(b, s, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(b, s, d)
        a = F.linear(a, w[k + "attn.proj.weight"], w[k + "attn.proj.bias"])
        t = t + (a * w[k + "ls1.gamma"] if c["layerScale"] else a)
        h = F.layer_norm(t, (d,), w[k + "norm2.weight"], w[k + "norm2.bias"], eps)
        m = F.linear(F.gelu(F.linear(h, w[k + "mlp.fc1.weight"], w[k + "mlp.fc1.bias"])), w[k + "mlp.fc2.weight"], w[k + "mlp.fc2.bias"])
        t = t + (m * w[k + "ls2.gamma"] if c["layerScale"] else m)
    return F.layer_norm(t, (d,), w["norm.weight"], w["norm.bias"], eps)[:, 0]


def main():
    weights_path, config_path, pixels_path, ort_path, batches, threads, repeats = sys.argv[1:8]
    torch.set_num_threads(int(threads))
    c = json.load(open(config_path))
    w = {k: v.float() for k, v in load_file(weights_path).items()}
    size = c["inputSize"]
    x = torch.frombuffer(bytearray(open(pixels_path, "rb").read()), dtype=torch.float32).reshape(-1, 3, size, size)
    ref = torch.frombuffer(bytearray(open(ort_path, "rb").read()), dtype=torch.float32).reshape(x.shape[0], -1)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "runs": []}
    with torch.inference_mode():
        e = forward(w, c, x)
        out["min_cosine_vs_ort"] = F.cosine_similarity(e, ref, dim=1).min().item()
        for batch in [int(v) for v in batches.split(",")]:
            xb = x[:1].expand(batch, -1, -1, -1).contiguous()
            forward(w, c, xb[: min(batch, 8)])  # warm-up, as the ORT runs
            start = time.perf_counter()
            for _ in range(int(repeats)):
                forward(w, c, xb)
            sec = time.perf_counter() - start
            out["runs"].append({"batch": batch, "seconds": sec, "tiles_per_s": batch * int(repeats) / sec})
    print(json.dumps(out))


main()
