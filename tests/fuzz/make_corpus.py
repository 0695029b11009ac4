#!/usr/bin/python3
"""tests/fuzz/make_corpus.py — writes the seed corpus of every fuzz target
(tests/fuzz/corpus/<target>/): small valid inputs and corrupt ones, in the
input layout each target's header comment describes. Deterministic; only the
Python standard library.

    /usr/bin/python3 tests/fuzz/make_corpus.py            # (re)write the seeds
    /usr/bin/python3 tests/fuzz/make_corpus.py --check    # fail if a seed differs

Seeds are named valid-* and corrupt-*; inputs a fuzzer found that crashed a
reader are named regress-* and are written here too, so a fixed finding
stays a regression test (each replayed by the CTest fuzz_replay_<target>).
Files in a corpus folder that this script does not write (say, ones a
local fuzzing run added) are left alone; --check reports them.
"""
import base64
import gzip
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# ---- safetensors: byte 0 flags (bit 0 allow_extra, bit 1 two stores) + file --------


def st_file(entries, meta=None, data=b"", pad=True, raw_header=None, hlen=None):
    """entries: list of (name, dict) in order; data: the byte buffer."""
    if raw_header is None:
        parts = []
        if meta is not None:
            parts.append('"__metadata__":' + json.dumps(meta))
        for name, e in entries:
            parts.append(json.dumps(name) + ":" + json.dumps(e, separators=(",", ":")))
        header = ("{" + ",".join(parts) + "}").encode("utf-8", "surrogateescape")
    else:
        header = raw_header
    if pad:
        header += b" " * (-len(header) % 8)
    n = len(header) if hlen is None else hlen
    return struct.pack("<Q", n) + header + data


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def f64(*values):
    return struct.pack("<%dd" % len(values), *values)


def safetensors_seeds():
    w = f32(1, 2, 3, 4, 5, 6)
    b = f32(0.5, -0.5, 0.25)
    x = f32(9, 8, 7, 6)
    good_pb = st_file([("p.w", {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}),
                       ("p.b", {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]})],
                      meta={"format": "pt"}, data=w + b)
    two = st_file([("w", {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}),
                   ("b", {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}),
                   ("q.x", {"dtype": "F32", "shape": [4], "data_offsets": [36, 52]})], data=w + b + x)
    stats = st_file([("mean", {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}),
                     ("cov", {"dtype": "F64", "shape": [2, 2], "data_offsets": [16, 48]})],
                    meta={"format": "wb_feature_stats", "n": "10"}, data=f64(0.5, -1) + f64(2, 0.1, 0.1, 1))
    extra = st_file([("p.w", {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}),
                     ("p.b", {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}),
                     ("other", {"dtype": "I64", "shape": [1], "data_offsets": [36, 44]}),
                     ("empty", {"dtype": "F32", "shape": [0, 5], "data_offsets": [44, 44]})],
                    data=w + b + b"\0" * 8)
    seeds = {
        "valid-one-store": b"\x00" + good_pb,
        "valid-two-stores": b"\x02" + two,
        "valid-feature-stats": b"\x00" + stats,
        "valid-extra-keys": b"\x01" + extra,
        "valid-scalar-and-unicode": b"\x01" + st_file(
            [("s", {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}),
             ("\u03c3.weight", {"dtype": "F64", "shape": [1], "data_offsets": [4, 12]})], data=f32(1) + f64(2)),
        "corrupt-empty": b"\x00",
        "corrupt-short-length": b"\x00" + b"\x10\x00\x00",
        "corrupt-huge-header-length": b"\x00" + struct.pack("<Q", 1 << 60) + b"{}      ",
        "corrupt-header-past-end": b"\x00" + struct.pack("<Q", 4096) + b'{"a":1}',
        "corrupt-not-json": b"\x00" + st_file([], raw_header=b"{not json"),
        "corrupt-not-object": b"\x00" + st_file([], raw_header=b"[1,2,3]"),
        "corrupt-nul-in-header": b"\x00" + st_file([], raw_header=b"{}\x00garbage"),
        "corrupt-trailing-garbage": b"\x00" + st_file([], raw_header=b"{} xx"),
        "corrupt-meta-not-string": b"\x00" + st_file([], meta={"n": 3}),
        "corrupt-meta-not-object": b"\x00" + st_file([], raw_header=b'{"__metadata__":[1]}'),
        "corrupt-duplicate-key": b"\x01" + st_file([], raw_header=(
            b'{"p.w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            b'"p.w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'), data=f32(1, 2)),
        "corrupt-overlap": b"\x01" + st_file([("a", {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}),
                                              ("b", {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]})],
                                             data=f32(1, 2, 3)),
        "corrupt-truncated-data": b"\x00" + good_pb[:-5],
        "corrupt-offsets-past-end": b"\x00" + st_file(
            [("p.w", {"dtype": "F32", "shape": [2, 3], "data_offsets": [100, 124]})], data=w),
        "corrupt-wrong-span": b"\x00" + st_file(
            [("p.w", {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]})], data=w),
        "corrupt-wrong-shape": b"\x00" + st_file(
            [("p.w", {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]})], data=w),
        "corrupt-wrong-dtype": b"\x00" + st_file(
            [("p.w", {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]})], data=w),
        "corrupt-negative-dim": b"\x00" + st_file(
            [("p.w", {"dtype": "F32", "shape": [-2, 3], "data_offsets": [0, 24]})], data=w),
        "corrupt-fractional-dim": b"\x00" + st_file(
            [("p.w", {"dtype": "F32", "shape": [1.5, 3], "data_offsets": [0, 24]})], data=w),
        "corrupt-nine-dims": b"\x00" + st_file(
            [("p.w", {"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]})], data=f32(1)),
        "corrupt-shape-product-overflow": b"\x00" + st_file(
            [("mean", {"dtype": "F64", "shape": [1 << 40, 1 << 40, 1 << 40], "data_offsets": [0, 8]})],
            data=f64(1)),
        "corrupt-huge-shape-claim": b"\x00" + st_file(
            [("cov", {"dtype": "F64", "shape": [65536, 65536], "data_offsets": [0, 34359738368]}),
             ("mean", {"dtype": "F64", "shape": [65536], "data_offsets": [0, 524288]})],
            meta={"format": "wb_feature_stats", "n": "10"}, data=f64(1)),
        "corrupt-offsets-not-integers": b"\x00" + st_file(
            [("p.b", {"dtype": "F32", "shape": [3], "data_offsets": [0.5, 12.5]})], data=b),
        "corrupt-stats-bad-n": b"\x00" + st_file(
            [("mean", {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}),
             ("cov", {"dtype": "F64", "shape": [1, 1], "data_offsets": [8, 16]})],
            meta={"format": "wb_feature_stats", "n": "1x"}, data=f64(1, 1)),
        "corrupt-stats-nan": b"\x00" + st_file(
            [("mean", {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}),
             ("cov", {"dtype": "F64", "shape": [1, 1], "data_offsets": [8, 16]})],
            meta={"format": "wb_feature_stats", "n": "5"}, data=f64(float("nan"), 1)),
        # a key that is not UTF-8 and holds terminal controls: echoed escaped (\xNN)
        "regress-nonutf8-key": b"\x00" + st_file([], raw_header=(
            b'{"p.w\xff\xfe\x1b[31m":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'), data=w),
    }
    return seeds


# ---- IDX: byte 0 flags, u32 LE images length, images file, labels file -------------------


def idx_images(n, rows, cols, seed=0, magic=0x803, count=None):
    hdr = struct.pack(">IIII", magic, n if count is None else count, rows, cols)
    return hdr + bytes((seed + i * 7) % 256 for i in range(n * rows * cols))


def idx_labels(labels, magic=0x801, count=None):
    return struct.pack(">II", magic, len(labels) if count is None else count) + bytes(labels)


def idx_input(flags, images, labels):
    return bytes([flags]) + struct.pack("<I", len(images)) + images + labels


def idx_seeds():
    imgs, labs = idx_images(3, 4, 4), idx_labels([1, 3, 9])
    gz = lambda b: gzip.compress(b, 6, mtime=0)
    s = {
        "valid-gzip-here": idx_input(0x06, imgs, labs),             # compressed by the target
        "valid-plain-names": idx_input(0x08, imgs, labs),
        "valid-pregzipped": idx_input(0x00, gz(imgs), gz(labs)),     # gzip bytes in the input
        "valid-test-split-mnist": idx_input(0x17, imgs, labs),
        "corrupt-empty-files": idx_input(0x00, b"", b""),
        "corrupt-bad-magic": idx_input(0x06, idx_images(3, 4, 4, magic=0x804), labs),
        "corrupt-bad-label-magic": idx_input(0x06, imgs, idx_labels([1, 3, 9], magic=0x803)),
        "corrupt-label-out-of-range": idx_input(0x06, imgs, idx_labels([1, 10, 2])),
        "corrupt-label-count": idx_input(0x06, imgs, idx_labels([1, 2])),
        "corrupt-trailing-bytes": idx_input(0x06, imgs + b"\0", labs),
        "corrupt-short-header": idx_input(0x06, imgs[:10], labs),
        # cut inside its CRC trailer: zlib returned the data and only gzerror said so
        "regress-gzip-cut-in-trailer": idx_input(0x00, gz(imgs)[:-6], gz(labs)),
        "corrupt-gzip-crc": idx_input(0x00, gz(imgs)[:-8] + b"\0\0\0\0" + gz(imgs)[-4:], gz(labs)),
        "corrupt-zero-rows": idx_input(0x06, struct.pack(">IIII", 0x803, 1, 0, 4), idx_labels([1])),
        # a header that claims far more than the file holds: 2^26 images of 4096x4096
        # (2^50 bytes) used to be malloc'd before a pixel was read
        "regress-idx-dims-product": idx_input(0x06, struct.pack(">IIII", 0x803, 1 << 26, 4096, 4096) + b"\1" * 64,
                                              idx_labels([1])),
        # 60000 images of 28x28 claimed, 3 present: memory must follow the data
        "regress-idx-claims-more": idx_input(0x06, idx_images(3, 28, 28, count=60000), labs),
    }
    for v in range(1, 8):  # every option set once on a good folder
        s["valid-options-%d" % v] = idx_input(0x06 | (v << 5), idx_images(4, 8, 8, seed=v), idx_labels([0, 1, 3, 5]))
    return s


# ---- CIFAR: byte 0 flags (bits 0..1 set, bit 2 alt, bits 5..7 options) + one file ----------


def cifar_records(labels, n_label_bytes):
    out = b""
    for i, lab in enumerate(labels):
        lb = bytes(lab) if isinstance(lab, tuple) else bytes([lab])
        assert len(lb) == n_label_bytes
        out += lb + bytes((i * 11 + k) % 256 for k in range(3072))
    return out


def cifar_seeds():
    c10 = cifar_records([3, 7], 1)
    c100 = cifar_records([(4, 55), (19, 99)], 2)
    s = {
        "valid-cifar10-test": b"\x00" + c10,
        "valid-cifar10-train": b"\x01" + c10,
        "valid-cifar100-fine": b"\x02" + c100,
        "valid-cifar100-coarse-test": b"\x07" + c100,
        "valid-cifar10-resize": bytes([0x00 | (1 << 5)]) + c10,
        "valid-cifar10-gray-include": bytes([0x00 | (4 << 5)]) + cifar_records([1, 3, 3], 1),
        "corrupt-empty": b"\x00",
        "corrupt-not-multiple": b"\x00" + c10[:-1],
        "corrupt-cifar10-label": b"\x00" + cifar_records([10], 1),
        "corrupt-cifar100-fine-label": b"\x02" + cifar_records([(1, 100)], 2),
        "corrupt-cifar100-coarse-label": b"\x03" + cifar_records([(20, 1)], 2),
        "corrupt-missing-batch": b"\x05" + c10,
        "corrupt-pad-too-small": bytes([0x00 | (6 << 5)]) + c10,
    }
    return s


# ---- PNG folder: byte 0 options (bit 3: *.PNG names) + files cut at "WBNEXT" --------------


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)


def png(w, h, color_type=0, depth=8, rows=None, extra=b"", interlace=0, ihdr_wh=None):
    """A minimal PNG; rows: raw scanlines without filter bytes (default: a ramp)."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row_bytes = (w * channels * depth + 7) // 8
    if rows is None:
        rows = [bytes((x * 17 + y * 5) % 256 for x in range(row_bytes)) for y in range(h)]
    raw = b"".join(b"\0" + r for r in rows)
    iw, ih = ihdr_wh if ihdr_wh else (w, h)
    ihdr = struct.pack(">IIBBBBB", iw, ih, depth, color_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(raw, 9))
            + png_chunk(b"IEND", b""))


def png_seeds():
    sep = b"WBNEXT"
    gray = png(4, 4)
    rgb = png(4, 4, color_type=2)
    s = {
        "valid-gray": b"\x00" + gray,
        "valid-rgb-and-gray": b"\x00" + gray + sep + rgb,
        "valid-gray-alpha-16bit": b"\x00" + png(3, 2, color_type=4, depth=16),
        "valid-palette-trns": b"\x00" + png(4, 3, color_type=3, extra=png_chunk(b"PLTE", bytes(range(12)))
                                            + png_chunk(b"tRNS", b"\x80\xff")),
        "valid-rgba": b"\x03" + png(2, 2, color_type=6),
        "valid-1bit": b"\x00" + png(9, 3, depth=1),
        "valid-mixed-sizes-resized": b"\x01" + gray + sep + png(6, 3, color_type=2) + sep + png(2, 5),
        "valid-upper-case-names": b"\x08" + gray,
        "corrupt-mixed-sizes-no-resize": b"\x00" + gray + sep + png(6, 3),
        "corrupt-not-png": b"\x00" + b"this is not a PNG file",
        "corrupt-empty-file": b"\x00" + gray + sep,
        "corrupt-bad-crc": b"\x00" + gray[:30] + bytes([gray[30] ^ 1]) + gray[31:],
        "corrupt-truncated-idat": b"\x00" + gray[:-20],
        "corrupt-zero-width": b"\x00" + png(4, 4, ihdr_wh=(0, 4)),
        # size claims far beyond what the file can hold
        "regress-png-huge-claim": b"\x00" + png(4, 4, ihdr_wh=(100000, 100000)),
        "regress-png-16k-claim": b"\x00" + png(4, 4, ihdr_wh=(16384, 16384)),
    }
    return s


# ---- run JSON: NUL-separated config.json / results.json of up to three runs --------------


def run_json_seeds():
    cfg = {"kind": "distill", "seed": 1, "dataset": "gmm-ring8",
           "divergence": {"name": "sba", "version": "1.0.0", "params": {"lambda": 2.5}},
           "ratio": {"name": "classifier"}, "teacher": "exact", "init": "teacher"}
    cfg2 = dict(cfg, seed=2)
    cfg3 = dict(cfg, divergence={"name": "kl", "version": "1.0.0", "params": {}})
    res = {"fid": 1.25, "tv": 0.5, "modes": 8}
    res2 = {"fid": 1.5, "tv": 0.25, "modes": 7, "note": "x"}
    j = lambda o: json.dumps(o).encode()
    nul = b"\0"
    teacher = {"kind": "teacher", "net": {"name": "mlp", "params": {"widths": [64, 64]}}, "dataset": "fmnist"}
    s = {
        "valid-one-run": j(cfg) + nul + j(res),
        "valid-two-seeds": j(cfg) + nul + j(res) + nul + j(cfg2) + nul + j(res2),
        "valid-three-runs": j(cfg) + nul + j(res) + nul + j(cfg2) + nul + j(res) + nul + j(cfg3) + nul + j(res2),
        "valid-teacher": j(teacher) + nul + j({"fid": 3}),
        "corrupt-empty": b"",
        "corrupt-no-results": j(cfg),
        "corrupt-results-not-object": j(cfg) + nul + b"[1,2]",
        "corrupt-config-truncated": j(cfg)[:-3] + nul + j(res),
        "corrupt-no-shared-metric": j(cfg) + nul + j({"a": 1}) + nul + j(cfg2) + nul + j({"b": 2}),
        "corrupt-metric-string": j(cfg) + nul + j({"fid": "low", "kl": 1}),
        "corrupt-deep-nesting": b"[" * 5000 + nul + j(res),
        "corrupt-huge-numbers": j(cfg) + nul + b'{"fid": 1e308, "kl": -1e308}' + nul + j(cfg2) + nul
        + b'{"fid": 1e308, "kl": 1e308}',
        "corrupt-non-utf8": b'{"kind": "distill", "dataset": "\xff\xfe\x1b[2J"}' + nul + b'{"fid\xff": 1}',
        "corrupt-kinds-wrong-types": j({"kind": 3, "divergence": "sba", "ratio": [1], "net": 5}) + nul + j(res),
        # plugin params as an array: its members have no names (printed NULL)
        "regress-params-array": j(dict(cfg, divergence={"name": "sba", "params": [1, 2]})) + nul + j(res),
    }
    return s


# ---- run arguments: NUL-separated argv --------------------------------------------------


def run_args_seeds():
    return {
        "valid-pairs": b"steps=10\0out=runs/a\0divergences=kl,sba",
        "valid-empty-value": b"k=\0a.b-c_d=1=2",
        "corrupt-not-a-pair": b"steps=10\0notapair",
        "corrupt-empty-key": b"=x",
        "corrupt-duplicate": b"a=1\0b=2\0a=3",
        "corrupt-bad-key-char": b"st eps=1",
        "corrupt-control-bytes": b"key\x1b[31m=1\0\xff\xfe",
        "corrupt-long": b"k" * 600 + b"\xff",
    }


# ---- plugin descriptors: the byte stream fuzz_plugin_desc.c decodes -------------------------
# A tiny encoder mirroring its decoder: each helper returns the bytes that
# decode to the named value.
STOCK = ["kl", "alpha", "mlp", "classifier", "widths", "preset", "lambda", "x", "a-b_c9", "UPPER", "",
         "way-too-long-name-for-a-plugin-which-the-host-refuses-at-forty-nine"]
SPECIAL = [0.0, 1.0, -1.0, 1.5, 2.0, 64.0, 16384.0, -10.0, 1e300, -1e300, 9.2233720368547758e18, 0.001]


def e_str(v):
    if v is None:
        return b"\x00"
    if isinstance(v, str) and v in STOCK:
        return bytes([STOCK.index(v) or len(STOCK)])  # 0 means NULL: index 0 is reached as len(STOCK)
    b = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v
    assert len(b) < 256
    return b"\x80" + bytes([len(b)]) + b


def e_num(v):
    if isinstance(v, float) and v != v:
        return b"\xf0"
    if v == float("inf"):
        return b"\xf1"
    if v == float("-inf"):
        return b"\xf2"
    if v in SPECIAL:
        return bytes([SPECIAL.index(v)])
    return b"\xff" + struct.pack("<d", v)


def e_param(name, ptype, d=0.0, lo=0.0, hi=0.0, def_str=None, choices=None, doc=None):
    return e_str(name) + bytes([ptype - 1]) + e_num(d) + e_num(lo) + e_num(hi) + e_str(def_str) + e_str(choices) \
        + e_str(doc)


NUMBER, INT, BOOL, STRING, INTS = 1, 2, 3, 4, 5
DIV, RATIO, NET = 1, 2, 3


def e_desc(kind, name, params=(), version="1.0.0", family=None, tables=None, null_params=False, abi_bad=False,
           small=False):
    out = bytes([1 if null_params else 0])
    out += b"\xf8" + struct.pack("<I", 999) if abi_bad else b"\x00"
    out += b"\xf3" if small else b"\x00"                  # struct size: far too small / the host's
    out += bytes([kind - 1])
    out += e_str(name) + e_str(version) + e_str("one line") + e_str(family)
    out += bytes([len(params)])
    if not null_params:
        out += b"".join(params)
    own = {DIV: 1, RATIO: 2, NET: 4}[kind]
    want = own if tables is None else tables
    out += b"\x00" if tables is None else bytes([0xc0 | tables])
    if want & 1:
        out += b"\x00\x00\x00\x00"                        # size, score_free, weights, value
    if want & 4:
        out += b"\x00\x00\x00\x00"                        # size, create, destroy, forward
    if want & 2:
        out += b"\x00\x00\x00\x00\x00"                    # size, wants_backbone, create, destroy, logit
    return out


def e_lib(descs, null_plugins=False, n=None):
    head = b"\x01" if null_plugins else b"\x00"
    count = len(descs) if n is None else n
    nb = bytes([count - 1]) if 1 <= count <= 4 else {0: b"\xf0", 65: b"\xf1", -3: b"\xf2", 3: b"\xf3"}[count]
    return head + b"\x00" + nb + b"".join(descs)


def plugin_desc_seeds():
    good_net = e_desc(NET, "mlp", [e_param("widths", INTS, lo=1.0, hi=16384.0, def_str="64,64"),
                                   e_param("preset", STRING, def_str="x", choices="x|mlp"),
                                   e_param("lambda", INT, d=2.0, lo=1.0, hi=64.0),
                                   e_param("x", BOOL, d=1.0, lo=0.0, hi=1.0)])
    tail = b"\x01" * 64  # values for the setters use_plugin tries
    s = {
        "valid-divergence": e_lib([e_desc(DIV, "alpha", [e_param("lambda", NUMBER, 1.5, -10.0, 64.0)],
                                          family="Amari alpha")]) + tail,
        "valid-net": e_lib([good_net]) + tail,
        "valid-ratio-and-divergence": e_lib([e_desc(RATIO, "classifier"), e_desc(DIV, "kl")]) + tail,
        "corrupt-all-zero": b"\x00" * 32,
        "corrupt-bad-abi": e_lib([e_desc(DIV, "kl", abi_bad=True)]),
        "corrupt-small-desc": e_lib([e_desc(DIV, "kl", small=True)]),
        "corrupt-null-member": e_lib([b"\xff"], n=1),
        "corrupt-params-null": e_lib([e_desc(DIV, "kl", [e_param("x", NUMBER)], null_params=True)]),
        "corrupt-duplicate-param": e_lib([e_desc(DIV, "kl", [e_param("x", NUMBER), e_param("x", NUMBER)])]),
        "corrupt-duplicate-member": e_lib([e_desc(DIV, "kl"), e_desc(DIV, "kl")]),
        "corrupt-bad-name": e_lib([e_desc(DIV, "UPPER")]),
        "corrupt-nan-bounds-ints": e_lib([e_desc(NET, "mlp", [e_param("widths", INTS, lo=float("nan"),
                                                                      hi=64.0, def_str="1")])]),
        "corrupt-empty-choices": e_lib([e_desc(DIV, "kl", [e_param("x", STRING, def_str="a", choices="")])]),
        # issue 10, defect 9: defaults a user could not pass, refused at load
        "regress-int-default-fraction": e_lib([e_desc(DIV, "kl", [e_param("x", INT, 1.5, 0.0, 2.0)])]),
        "regress-int-default-huge": e_lib([e_desc(DIV, "kl", [e_param("x", INT, 1e300, -1e300, 1e300)])]) + tail,
        "regress-bool-default-half": e_lib([e_desc(DIV, "kl", [e_param("x", BOOL, 0.5, 0.0, 1.0)])]),
        "regress-ints-junk": e_lib([e_desc(NET, "mlp", [e_param("widths", INTS, lo=1.0, hi=64.0,
                                                                def_str="1,x,3")])]),
        "regress-ints-twenty": e_lib([e_desc(NET, "mlp", [e_param("widths", INTS, lo=1.0, hi=64.0,
                                                                  def_str=",".join(["2"] * 20))])]),
        "regress-ints-outside": e_lib([e_desc(NET, "mlp", [e_param("widths", INTS, lo=1.0, hi=64.0,
                                                                   def_str="1,2,99")])]),
        "corrupt-number-outside": e_lib([e_desc(DIV, "kl", [e_param("x", NUMBER, 64.0, -1.0, 1.0)])]),
        "regress-string-not-a-choice": e_lib([e_desc(DIV, "kl", [e_param("x", STRING, def_str="gelu",
                                                                         choices="silu|relu")])]),
        "regress-string-too-long": e_lib([e_desc(DIV, "kl", [e_param("x", STRING, def_str="s" * 70)])]),
        "regress-second-table": e_lib([e_desc(DIV, "kl", tables=1 | 4)]),
        "regress-null-plugins": e_lib([], null_plugins=True, n=3),
        # five lists of sixteen 20-digit integers outgrew wb_config_to_json's
        # fixed buffer (256 + 256 bytes a parameter)
        "regress-config-json-long-ints": e_lib([e_desc(NET, "mlp", [
            e_param(name, INTS, lo=-1e300, hi=1e300, def_str="1") for name in ("widths", "preset", "lambda", "x",
                                                                                "alpha")])])
        + (e_num(0.0) + e_str(None) + bytes([16]) + struct.pack("<q", -2**63 + 1) * 16) * 5,
        # a string value with a quote and a backslash must stay valid JSON
        "regress-config-json-quote": e_lib([e_desc(DIV, "kl", [e_param("x", STRING, def_str='a"b\\c')])]) + tail,
    }
    return s


# Inputs libFuzzer found (scripts/fuzz.sh) that crashed, leaked or hit UB
# before the fix named beside them: kept byte for byte (base64).
FOUND = {
    "fuzz_plugin_desc": {
        # wb_config_int of a NUMBER parameter holding 1e300: (int64_t) of an
        # out-of-range double (UBSan, host/core/config.c); now saturates
        "regress-config-int-of-huge-number":
            "AAAAAAAAAgKAJwUxLjAuMIAIb25lIGxpbmUAAQQEAAEFgCcyLDIsMiwyLDIsMiwyLDIsMiwyLDIsMiwyKDIAAAAAAAAA",
        # a NUMBER set to inf (bounds of ±inf) made wb_config_to_json write
        # "inf", not JSON: the run's config.json lost the plugin's params;
        # now non-finite values and defaults are refused
        "regress-config-json-infinity": "ABQUFBQUFBQUFBQZFBS7sfHxAQAAFwkAAAAB8fHx8fHxMPHx8QEAf/0zwLjlZQAAAAAA",
        # choices "silu|" (a trailing empty choice) and the default "": the
        # load check saw the empty choice, the setter did not — the default
        # could not be given back; empty choices are now refused at load and
        # both use one test
        "regress-choices-trailing-bar":
            "AAAAAAAAAAyABYAFMS4wgAjx8QEAbGluogABBwjx8QDKBAAubHWACXNpbHV8ABQvLy8vLy8vLy8vLy8vMS8vLy8vLy8vLy8vLy8vLy8vLy8v"
            "Ly8vLycvbm8tc3VjaC18cGEAAAA=",
    },
}

TARGETS = {
    "fuzz_safetensors": safetensors_seeds,
    "fuzz_idx": idx_seeds,
    "fuzz_cifar": cifar_seeds,
    "fuzz_png": png_seeds,
    "fuzz_run_json": run_json_seeds,
    "fuzz_run_args": run_args_seeds,
    "fuzz_plugin_desc": plugin_desc_seeds,
}


def main():
    check = "--check" in sys.argv[1:]
    bad = 0
    total = 0
    for target, make in TARGETS.items():
        folder = os.path.join(CORPUS, target)
        os.makedirs(folder, exist_ok=True)
        seeds = make()
        for name, b64 in FOUND.get(target, {}).items():
            seeds[name] = base64.b64decode(b64)
        for name, data in sorted(seeds.items()):
            path = os.path.join(folder, name)
            total += len(data)
            if check:
                try:
                    with open(path, "rb") as f:
                        same = f.read() == data
                except FileNotFoundError:
                    same = False
                if not same:
                    print("differs or missing: %s" % os.path.relpath(path, HERE))
                    bad += 1
            else:
                with open(path, "wb") as f:
                    f.write(data)
        if check:
            for name in sorted(os.listdir(folder)):
                if name not in seeds:
                    print("not written by make_corpus.py: %s" % os.path.relpath(os.path.join(folder, name), HERE))
                    bad += 1
    print("%d targets, %d bytes of seeds%s" % (len(TARGETS), total, ", %d problems" % bad if check else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
