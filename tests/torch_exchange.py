"""tests/torch_exchange.py — the Python side of the tensor exchange shared by
the torch reference scripts (tests/torch_ops.py, torch_ops_conv.py,
torch_ops_pool.py, torch_ops_norm.py); the C side is tests/wb_test_util.h
(and tests/image_op_cases.h for run_image_cases).

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


def run_image_cases(argv, ops, float32_ops=()):
    """The torch side of tests/image_op_cases.h's img_check_torch: DIR =
    argv[1] holds manifest.txt (lines "case NAME OP N_IN P0 P1 P2 P3") and
    tensors.bin (NAME/in<k>, NAME/w, NAME/out, NAME/grad<k>). Each case is
    recomputed as ops[OP](inputs, [P0..P3]) in float64 (float32 for the ops in
    float32_ops) from the same float32 inputs, sum(w * out) is
    back-propagated, and one line per compared quantity is printed:
    RESULT NAME WHAT ERR (WHAT = out, grad<k>; ERR as rel_err), then DONE.
    An unknown op, a missing tensor, a differing shape or an op of `ops`
    that no case exercised is a FAIL (exit 1)."""
    d = argv[1]
    ts = read_tensors(d + "/tensors.bin")
    seen = set()

    def get(key):
        if key not in ts:
            die("missing tensor " + key)
        return ts[key]

    with open(d + "/manifest.txt") as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0] != "case":
                continue
            name, op, n_in, p = parts[1], parts[2], int(parts[3]), [int(v) for v in parts[4:8]]
            if op not in ops:
                die("unknown op " + op)
            seen.add(op)
            dt = torch.float32 if op in float32_ops else torch.float64
            xs = [get("%s/in%d" % (name, k)).to(dt).requires_grad_(True) for k in range(n_in)]
            out = ops[op](xs, p)
            print("RESULT %s out %.6g" % (name, rel_err(get(name + "/out"), out.detach(), True)))
            (out * get(name + "/w").to(dt)).sum().backward()
            for k in range(n_in):
                print("RESULT %s grad%d %.6g" % (name, k, rel_err(get("%s/grad%d" % (name, k)), xs[k].grad, True)))
    missing = set(ops) - seen
    if missing:
        die("ops never exercised: " + ", ".join(sorted(missing)))
    print("DONE")
