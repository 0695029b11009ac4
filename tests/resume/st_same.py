#!/usr/bin/env python3
"""tests/resume/st_same.py — are two safetensors files the same training
result? Every tensor byte for byte (names, dtypes, shapes, data) and every
metadata value except the ones that say when and how a run was started:
config (its origin: script arguments), num.seconds (wall time) and
metrics_bytes (the log holds wall-clock seconds, whose text varies in width).

usage: st_same.py A B   exit 0 when the same, 1 (naming the first
difference) otherwise. Standard library only.
"""
import json
import struct
import sys

VOLATILE = {"config", "num.seconds", "metrics_bytes"}  # metrics_bytes: the seconds columns are text of varying width


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        tensors[name] = (t["dtype"], tuple(t["shape"]), data[a:b])
    return meta, tensors


def main():
    (ma, ta), (mb, tb) = read(sys.argv[1]), read(sys.argv[2])
    if sorted(ta) != sorted(tb):
        print("tensor names differ:", sorted(set(ta) ^ set(tb))[:5])
        return 1
    for name in sorted(ta):
        if ta[name] != tb[name]:
            print("tensor %s differs" % name)
            return 1
    for key in sorted(set(ma) | set(mb)):
        if key in VOLATILE:
            continue
        if ma.get(key) != mb.get(key):
            print("metadata %s differs: %r vs %r" % (key, ma.get(key), mb.get(key)))
            return 1
    print("same: %d tensors, %d metadata keys" % (len(ta), len(ma)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
