#!/usr/bin/env python3
"""tests/dp/st_close.py — are two checkpoints the same training result within
float summation tolerance? Every tensor of A is in B with the same dtype and
shape, and max |a - b| <= atol + rtol * max |a| per tensor. With --exact,
byte for byte (the deterministic reduction). Metadata is not compared (it
holds wall-clock seconds and the config's origin).

usage: st_close.py A B [--rtol R] [--atol A] [--exact]   exit 0 when close,
1 naming the worst tensor otherwise. Standard library only.
"""
import array
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    return {k: (t["dtype"], tuple(t["shape"]), data[t["data_offsets"][0]:t["data_offsets"][1]]) for k, t in header.items()}


def main():
    argv = sys.argv[1:]
    exact = "--exact" in argv
    rtol = float(argv[argv.index("--rtol") + 1]) if "--rtol" in argv else 1e-4
    atol = float(argv[argv.index("--atol") + 1]) if "--atol" in argv else 1e-6
    a, b = read(argv[0]), read(argv[1])
    if sorted(a) != sorted(b):
        print("tensor names differ:", sorted(set(a) ^ set(b))[:5])
        return 1
    worst = (0.0, None)
    for name in sorted(a):
        (da, sa, xa), (db, sb, xb) = a[name], b[name]
        if (da, sa) != (db, sb):
            print("tensor %s: %s%s vs %s%s" % (name, da, sa, db, sb))
            return 1
        if exact:
            if xa != xb:
                va, vb = array.array("f", xa), array.array("f", xb)
                i = next(i for i in range(len(va)) if va[i] != vb[i])
                print("tensor %s differs at element %d: %r vs %r" % (name, i, va[i], vb[i]))
                return 1
            continue
        if da != "F32":
            if xa != xb:
                print("tensor %s (%s) differs" % (name, da))
                return 1
            continue
        va, vb = array.array("f", xa), array.array("f", xb)
        scale = max((abs(v) for v in va), default=0.0)
        diff = max((abs(p - q) for p, q in zip(va, vb)), default=0.0)
        if diff > atol + rtol * scale:
            print("tensor %s: max |a-b| = %.3g > %.3g (max |a| = %.3g)" % (name, diff, atol + rtol * scale, scale))
            return 1
        rel = diff / scale if scale > 0 else diff
        if rel > worst[0]:
            worst = (rel, name)
    if exact:
        print("identical: %d tensors" % len(a))
    else:
        print("same within rtol %g: %d tensors, worst %s at %.2g relative" % (rtol, len(a), worst[1], worst[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
