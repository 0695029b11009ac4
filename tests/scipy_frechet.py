"""tests/scipy_frechet.py — reference Fréchet distances for tests/test_metrics.c.

Usage: scipy_frechet.py DIR. DIR/manifest.txt has one case a line:
  raw NAME FILE        FILE: int32 dim, then mu1 [dim], cov1 [dim*dim],
                       mu2 [dim], cov2 [dim*dim], float64 little-endian
  st NAME FILE1 FILE2  two wb_feature_stats safetensors files (parsed here
                       by hand, so the cache format is checked too)
For each case it prints "RESULT NAME <distance>" computed the way
pytorch-fid does (scipy.linalg.sqrtm of cov1 @ cov2, eps*I offset when the
result is not finite, real part), then "DONE". Exit 77 and "NO_SCIPY" when
numpy/scipy are missing, so the C test reports itself skipped.
"""
import json
import os
import struct
import sys

try:
    import numpy as np
    from scipy import linalg
except ImportError:
    print("NO_SCIPY")
    sys.exit(77)


def frechet(mu1, s1, mu2, s2, eps=1e-6):
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def read_raw(path):
    with open(path, "rb") as f:
        (d,) = struct.unpack("<i", f.read(4))
        a = np.frombuffer(f.read(), dtype="<f8")
    k = 0
    out = []
    for size in (d, d * d, d, d * d):
        out.append(a[k:k + size].copy())
        k += size
    return out[0], out[1].reshape(d, d), out[2], out[3].reshape(d, d)


def read_stats(path):
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        hdr = json.loads(f.read(hlen))
        data = f.read()
    assert hdr["__metadata__"]["format"] == "wb_feature_stats"
    assert int(hdr["__metadata__"]["n"]) >= 2
    t = {}
    for name in ("mean", "cov"):
        e = hdr[name]
        assert e["dtype"] == "F64"
        b, en = e["data_offsets"]
        t[name] = np.frombuffer(data[b:en], dtype="<f8").reshape(e["shape"])
    return t["mean"], t["cov"]


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "manifest.txt")) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            if p[0] == "raw":
                mu1, s1, mu2, s2 = read_raw(os.path.join(d, p[2]))
            else:
                mu1, s1 = read_stats(os.path.join(d, p[2]))
                mu2, s2 = read_stats(os.path.join(d, p[3]))
            print("RESULT %s %.17g" % (p[1], frechet(mu1, s1, mu2, s2)), flush=True)
    print("DONE")


if __name__ == "__main__":
    main()
