"""Backbone weights by timm name, from export.py's safetensors or from a Lamina ViT ONNX.

A Lamina ONNX (src/encoder/onnx-vit-builder.ts) keeps timm's names on its initializers, with
`.f16` on float16 copies and `.T` on Linear weights stored transposed ([in, out]); undoing both
gives back the trained tensors. That lets a device call start from the shipped model
(models/*/model.onnx travels with the tree anyway) instead of carrying an 11 MB copy of it.
The ONNX is read with a few lines of protobuf wire format rather than the onnx package, which
the CPU smoke environment lacks.
"""
import numpy as np
import torch

_DTYPES = {1: np.float32, 10: np.float16}  # TensorProto.DataType FLOAT, FLOAT16


def _fields(buf, start=0, end=None):
    """Yield (field number, wire type, value) of one protobuf message; length-delimited values
    come as (offset, end) into buf."""
    i, end = start, len(buf) if end is None else end
    while i < end:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = (i, i + n), i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wt} at byte {i}")
        yield num, wt, v


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def onnx_initializers(path):
    """-> {name: float32 numpy array} of the float and float16 initializers of an ONNX file."""
    buf = memoryview(open(path, "rb").read())
    out = {}
    for num, wt, v in _fields(buf):
        if num != 7 or wt != 2:  # ModelProto.graph
            continue
        for gnum, gwt, gv in _fields(buf, *v):
            if gnum != 5 or gwt != 2:  # GraphProto.initializer
                continue
            dims, dtype, name, raw, floats = [], None, None, None, None
            for tnum, twt, tv in _fields(buf, *gv):
                if tnum == 1 and twt == 0:
                    dims.append(tv)
                elif tnum == 1 and twt == 2:  # packed dims
                    j = tv[0]
                    while j < tv[1]:
                        d, j = _varint(buf, j)
                        dims.append(d)
                elif tnum == 2:
                    dtype = tv
                elif tnum == 8:
                    name = bytes(buf[tv[0]:tv[1]]).decode()
                elif tnum == 9:
                    raw = buf[tv[0]:tv[1]]
                elif tnum == 4 and twt == 2:
                    floats = buf[tv[0]:tv[1]]
            if dtype not in _DTYPES or name is None:
                continue
            data = raw if raw is not None and len(raw) else floats
            arr = np.frombuffer(bytes(data if data is not None else b""), dtype=_DTYPES[dtype])
            out[name] = arr.astype(np.float32).reshape(dims)
    return out


def load_backbone_state(path, like):
    """-> {timm name: float32 tensor} for exactly the keys of `like` (a vit.VisionTransformer)."""
    if path.endswith(".onnx"):
        state = {}
        for name, arr in onnx_initializers(path).items():
            t = torch.from_numpy(arr)
            if name.endswith(".f16"):
                name = name[:-4]
            if name.endswith(".T"):
                name, t = name[:-2], t.T.contiguous()
            state[name] = t
    else:
        from safetensors.torch import load_file
        state = {k: v.float() for k, v in load_file(path).items()}
    want = like.state_dict()
    missing = [k for k in want if k not in state]
    if missing:
        raise SystemExit(f"{path}: no weights for {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    out = {}
    for k, ref in want.items():
        v = state[k]
        if v.shape != ref.shape:
            if v.numel() != ref.numel():
                raise SystemExit(f"{path}: {k} has shape {tuple(v.shape)}, expected {tuple(ref.shape)}")
            v = v.reshape(ref.shape)
        out[k] = v
    return out
