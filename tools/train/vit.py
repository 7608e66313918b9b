"""A plain-PyTorch ViT whose parameter names and shapes are timm's VisionTransformer.

`vit_tiny_patch16_224` (dim 192, depth 12, 3 heads) with num_classes=0 has exactly these keys:
cls_token, pos_embed, patch_embed.proj.*, blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,
mlp.fc2}.*, norm.*. Written here rather than imported from timm so that training does not depend
on timm's version and the same file runs on the CPU here. The embedding is timm's default
(global_pool='token'): the class token after the final LayerNorm.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "vit_tiny": dict(dim=192, depth=12, heads=3),
    "vit_small": dict(dim=384, depth=12, heads=6),
    "vit_test": dict(dim=48, depth=2, heads=2),  # CPU smoke tests only
}


def _sdpa_reference(q, k, v):
    """softmax(q k^T / sqrt(d)) v, for torch < 2.0 (Debian's CPU torch in smoke tests)."""
    a = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    return a.softmax(-1) @ v


sdpa = getattr(F, "scaled_dot_product_attention", _sdpa_reference)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        x = sdpa(qkv[0], qkv[1], qkv[2])
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * 4)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    def __init__(self, dim, depth, heads, img_size=224, patch=16):
        super().__init__()
        self.patch = patch
        self.embed_dim = dim
        self.grid = img_size // patch
        self.patch_embed = PatchEmbed(dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.reset_parameters()

    def reset_parameters(self):
        """timm-like init: trunc-normal 0.02 for Linear and pos_embed, LayerNorm 1/0, LeCun
        normal for the patch projection."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        nn.init.trunc_normal_(w.view(w.shape[0], -1), std=math.sqrt(1.0 / fan_in))
        nn.init.zeros_(self.patch_embed.proj.bias)

    def pos_for(self, h, w):
        """Position embeddings for an h x w patch grid (bicubic, as DINO does for local crops)."""
        if h == self.grid and w == self.grid:
            return self.pos_embed
        cls_pos, grid_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        g = grid_pos.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        g = F.interpolate(g.float(), size=(h, w), mode="bicubic", align_corners=False)
        g = g.to(grid_pos.dtype).permute(0, 2, 3, 1).reshape(1, h * w, -1)
        return torch.cat([cls_pos, g], dim=1)

    def forward(self, x):
        """x: (B, 3, H, W) normalised -> (B, dim) class-token embedding after the final norm."""
        return self.forward_features(x)[:, 0]

    def forward_features(self, x, mask=None, mask_token=None, last=0):
        """All tokens after the final norm: (B, 1 + h*w, dim), class token first.

        mask (B, h*w) bool with mask_token (1, 1, dim): masked patch embeddings are replaced by
        the token before position embeddings are added (iBOT); the token lives in the training
        wrapper, so exported weights keep timm's keys. last=n also returns the final norm applied
        to the outputs of the last n blocks (a read-out for evaluation only).
        """
        h, w = x.shape[2] // self.patch, x.shape[3] // self.patch
        x = self.patch_embed(x)
        if mask is not None:
            x = torch.where(mask[:, :, None], mask_token.to(x.dtype), x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_for(h, w)
        outs = []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if last and i >= len(self.blocks) - last:
                outs.append(self.norm(x))
        return (self.norm(x), outs) if last else self.norm(x)


def build(name):
    return VisionTransformer(**CONFIGS[name])
