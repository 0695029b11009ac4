"""tests/torch_exchange.py — the Python side of the tensor exchange shared by
the torch reference scripts (tests/torch_ops.py, torch_ops_conv.py,
torch_ops_norm.py); the C side is tests/wb_test_util.h.

Importing it imports torch (printing NO_TORCH and exiting 77 when torch is
missing, which the C tests report as skipped) and makes torch
single-threaded (deterministic, and faster than a pool for tiny tensors).

tensors.bin records: u32 name length, name (utf-8), u32 ndim,
i64 shape[ndim], float32 data[numel], little-endian.
"""
import math
import struct
import sys

try:
    import torch
except ImportError:
    print("NO_TORCH")
    sys.exit(77)

torch.set_num_threads(1)


def die(msg):
    print("FAIL " + msg)
    sys.exit(1)


def read_tensors(path):
    out = {}
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0
    while pos < len(buf):
        (nlen,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        name = buf[pos:pos + nlen].decode()
        pos += nlen
        (ndim,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        shape = struct.unpack_from("<%dq" % ndim, buf, pos)
        pos += 8 * ndim
        numel = math.prod(shape)
        data = torch.frombuffer(bytearray(buf[pos:pos + 4 * numel]), dtype=torch.float32)
        pos += 4 * numel
        out[name] = data.reshape(shape) if numel else torch.zeros(shape)
    return out


def rel_err(c, t, strict_shape=False):
    """max |c - t| / max(|t|, 1e-3 max|t|): relative error, entries far below
    the tensor's scale held to that scale. A shape mismatch is inf, or with
    strict_shape a FAIL."""
    c = c.double()
    t = t.double()
    if c.shape != t.shape:
        if strict_shape:
            die("shape %s vs torch %s" % (tuple(c.shape), tuple(t.shape)))
        return float("inf")
    if t.numel() == 0:
        return 0.0
    scale = t.abs().max().item()
    denom = torch.clamp(t.abs(), min=max(1e-3 * scale, 1e-30))
    return ((c - t).abs() / denom).max().item()
