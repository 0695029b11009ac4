"""tests/test_convert_edm.py — scripts/convert_edm.py reads EDM-style network
pickles without executing them, and refuses any other callable.

The fixture is built the way EDM's torch_utils.persistence builds its
snapshots — every network a call of torch_utils.persistence.
_reconstruct_persistent_obj(meta) carrying its module's source code, the
constructor arguments and the state (parameters, buffers, a ModuleDict of
submodules) — but with our own classes: the embedded "source" writes a
marker file when it runs. A plain pickle.load (with such a module
importable) runs it, which the control case shows; the converter must not.

Run: /usr/bin/python3 tests/test_convert_edm.py   (prints "N passed, M failed";
"SKIP: ..." without torch)
"""

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import types

try:
    import torch
except ImportError:
    print("SKIP: torch not installed for %s" % sys.executable)
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(os.path.dirname(HERE), "scripts")
sys.path.insert(0, SCRIPTS)
import edm_pickle  # noqa: E402

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what)


# ---- a stand-in for EDM's persistence module, importable while pickling --------------
from edm_twin import install_fake_persistence, remove_fake_persistence  # noqa: E402


class PersistentLike(torch.nn.Module):
    """Pickles like an EDM persistent class: its source, class name, init
    kwargs and state, through _reconstruct_persistent_obj."""

    source = ""

    def __init__(self, class_name, **init_kwargs):
        super().__init__()
        self._class_name = class_name
        self._init_kwargs = init_kwargs

    def __reduce_ex__(self, protocol):
        state = dict(self.__dict__)
        state["_init_args"] = ()
        meta = dict(type="class", version=6, module_src=self.source, class_name=self._class_name, state=state)
        return (sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (meta,))


def make_fixture(path, marker):
    PersistentLike.source = ("open(%r, 'w').write('the pickled module ran')\n"
                             "class SongUNet: pass\nclass EDMPrecond: pass\n" % marker)
    torch.manual_seed(0)
    unet = PersistentLike("SongUNet", img_resolution=8, in_channels=3, out_channels=3, model_channels=16,
                          channel_mult=[1, 2], attn_resolutions=[4], embedding_type="positional")
    unet.map_noise = PersistentLike("PositionalEmbedding", num_channels=16, endpoint=True)
    unet.map_noise.register_buffer("freqs", torch.randn(8))
    unet.map_noise.register_buffer("scratch", torch.zeros(3), persistent=False)
    unet.map_layer0 = torch.nn.Linear(16, 64)
    unet.enc = torch.nn.ModuleDict()
    conv = PersistentLike("Conv2d", in_channels=3, out_channels=16, kernel=3)
    conv.weight = torch.nn.Parameter(torch.randn(16, 3, 3, 3))
    conv.bias = torch.nn.Parameter(torch.randn(16))
    conv.register_buffer("resample_filter", torch.tensor([[1.0, 3.0, 3.0, 1.0]]))
    unet.enc["8x8_conv"] = conv
    net = PersistentLike("EDMPrecond", img_resolution=8, img_channels=3, sigma_data=0.5)
    net.model = unet
    snapshot = dict(ema=net, loss_fn=PersistentLike("EDMLoss", P_mean=-1.2), augment_pipe=None,
                    dataset_kwargs={"path": "cifar10-32x32.zip", "xflip": False})
    install_fake_persistence()
    try:
        with open(path, "wb") as f:
            pickle.dump(snapshot, f)
    finally:
        remove_fake_persistence()
    expected = {
        "model.map_noise.freqs": unet.map_noise.freqs,
        "model.map_layer0.weight": unet.map_layer0.weight,
        "model.map_layer0.bias": unet.map_layer0.bias,
        "model.enc.8x8_conv.weight": conv.weight,
        "model.enc.8x8_conv.bias": conv.bias,
        "model.enc.8x8_conv.resample_filter": conv.resample_filter,
    }
    return {k: v.detach().clone() for k, v in expected.items()}


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(v["shape"])
    return out, header.get("__metadata__", {})


def run_cli(*args):
    p = subprocess.run([sys.executable, os.path.join(SCRIPTS, "convert_edm.py")] + list(args),
                       capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def main():
    d = tempfile.mkdtemp(prefix="wb_edm_")
    pkl, marker = os.path.join(d, "network-snapshot.pkl"), os.path.join(d, "EXECUTED")
    expected = make_fixture(pkl, marker)

    # control: an ordinary unpickler, with the persistence module importable, runs the source
    install_fake_persistence()
    try:
        with open(pkl, "rb") as f:
            pickle.load(f)
    finally:
        remove_fake_persistence()
    check(os.path.exists(marker), "control: plain pickle.load runs the embedded module source")
    os.remove(marker)

    # the reader: plain data, nothing run
    top = edm_pickle.load(pkl)
    check(not os.path.exists(marker), "edm_pickle.load ran the pickled module source")
    check(isinstance(top, dict) and set(top) == {"ema", "loss_fn", "augment_pipe", "dataset_kwargs"},
          "top-level keys: %r" % (list(top) if isinstance(top, dict) else top))
    ema = top["ema"]
    check(isinstance(ema, edm_pickle.Persistent) and ema.class_name == "EDMPrecond", "ema is EDMPrecond, as data")
    check(ema.init_kwargs == {"img_resolution": 8, "img_channels": 3, "sigma_data": 0.5},
          "init kwargs: %r" % ema.init_kwargs)
    check("SongUNet" in ema.module_src and len(ema.module_sha256) == 64, "module source kept as text, hashed")
    sd = edm_pickle.state_dict(ema)
    check(list(sd) == list(expected) or set(sd) == set(expected), "state-dict names: %s" % list(sd))
    for k, v in expected.items():
        check(k in sd and torch.equal(sd[k], v), "tensor %s round-trips" % k)
    check("model.map_noise.scratch" not in sd, "non-persistent buffers are not in the state dict")
    classes = [m.class_name for _, m in edm_pickle.modules(ema) if isinstance(m, edm_pickle.Persistent)]
    check(classes == ["EDMPrecond", "SongUNet", "PositionalEmbedding", "Conv2d"], "class tree: %s" % classes)

    # malicious pickles: refused, naming the global, nothing run
    for name, payload in [("os.system", Evil(os.system, "touch " + marker)),
                          ("builtins.eval", Evil(eval, "open(%r, 'w')" % marker)),
                          ("builtins.exec", Evil(exec, "open(%r, 'w')" % marker))]:
        bad = os.path.join(d, "evil.pkl")
        with open(bad, "wb") as f:
            pickle.dump({"ema": payload}, f)
        try:
            edm_pickle.load(bad)
            check(False, "%s pickle was accepted" % name)
        except edm_pickle.RefusedPickle as e:
            msg = str(e)
            check("refused" in msg and bad in msg and name.split(".")[1] in msg, "%s refusal names it: %s" % (name, msg))
        check(not os.path.exists(marker), "%s ran" % name)
        rc, out, err = run_cli("dump", bad, os.path.join(d, "evil.safetensors"))
        check(rc == 1 and "refused" in err and not os.path.exists(os.path.join(d, "evil.safetensors")),
              "convert_edm dump of a %s pickle: rc %d, %s" % (name, rc, err.strip()))
    # another function of EDM's persistence module is just as refused
    class Other:
        def __reduce__(self):
            return (sys.modules["torch_utils.persistence"]._src_to_module, ("print(1)",))
    pers = install_fake_persistence()

    def _src_to_module(src):
        return None

    _src_to_module.__module__ = "torch_utils.persistence"
    _src_to_module.__qualname__ = "_src_to_module"
    pers._src_to_module = _src_to_module
    try:
        raw = pickle.dumps(Other())
    finally:
        remove_fake_persistence()
    try:
        edm_pickle.SafeUnpickler(io.BytesIO(raw)).load()
        check(False, "_src_to_module accepted")
    except edm_pickle.RefusedPickle as e:
        check("_src_to_module" in str(e), "refusal names _src_to_module: %s" % e)

    # truncated file: a clean error naming it
    trunc = os.path.join(d, "truncated.pkl")
    with open(pkl, "rb") as f, open(trunc, "wb") as g:
        g.write(f.read()[:300])
    rc, out, err = run_cli("inspect", trunc)
    check(rc == 1 and trunc in err, "truncated pickle: rc %d, %s" % (rc, err.strip()))

    # the CLI: inspect lists classes and names; dump writes a safetensors file of EDM's names
    rc, out, err = run_cli("inspect", pkl)
    check(rc == 0 and "SongUNet" in out and "model.enc.8x8_conv.weight" in out, "inspect output:\n" + out + err)
    st = os.path.join(d, "ema.safetensors")
    rc, out, err = run_cli("dump", pkl, st)
    check(rc == 0 and os.path.exists(st), "dump: rc %d %s" % (rc, err))
    check(not os.path.exists(marker), "the CLI ran the pickled source")
    if rc == 0:
        tensors, meta = read_safetensors(st)
        check(set(tensors) == set(expected), "dumped names: %s" % sorted(tensors))
        for k, v in expected.items():
            check(k in tensors and torch.equal(tensors[k], v.float()), "dumped %s" % k)
        check(meta.get("source_sha256") == edm_pickle.file_sha256(pkl) and meta.get("names") == "edm",
              "metadata: %r" % meta)
        check("EDMPrecond" in meta.get("classes", ""), "metadata names the classes")
    # pytorch-fid's Inception weights: a torchvision-layout state dict (fc of 1008
    # classes, as pytorch-fid's) saved with torch.save -> safetensors, same tensors
    try:
        import torchvision
        net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, num_classes=1008)
    except Exception as e:  # an older torchvision spells it pretrained=False
        try:
            net = torchvision.models.inception_v3(pretrained=False, aux_logits=True, init_weights=False,
                                                  num_classes=1008)
        except Exception:
            net = None
            print("SKIP: Inception conversion (torchvision: %s)" % e)
    if net is not None:
        pth = os.path.join(d, "pt_inception.pth")
        torch.save(net.state_dict(), pth)
        out = os.path.join(d, "pt_inception.safetensors")
        p = subprocess.run([sys.executable, os.path.join(SCRIPTS, "convert_inception.py"), pth, out],
                           capture_output=True, text=True)
        check(p.returncode == 0, "convert_inception: %s" % p.stderr)
        if p.returncode == 0:
            tensors, meta = read_safetensors(out)
            want = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
            check(set(tensors) == set(want), "inception names: %d vs %d" % (len(tensors), len(want)))
            check(all(torch.equal(tensors[k], v.float()) for k, v in want.items() if k in tensors), "inception values")
            check(meta.get("source_sha256") == edm_pickle.file_sha256(pth), "inception metadata: %r" % meta)
        bad = os.path.join(d, "not_inception.pth")
        torch.save({"w": torch.zeros(3)}, bad)
        p = subprocess.run([sys.executable, os.path.join(SCRIPTS, "convert_inception.py"), bad,
                            os.path.join(d, "bad.safetensors")], capture_output=True, text=True)
        check(p.returncode == 1 and "not pytorch-fid's Inception" in p.stderr and bad in p.stderr,
              "a non-Inception .pth is refused: %s" % p.stderr)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
