"""tests/test_edm_parity.py — an EDM network, converted, computes in the
workbench what it computes in EDM's layout: our PyTorch twin of EDM's
EDMPrecond(SongUNet) (tests/edm_twin.py) with random weights is saved as an
EDM-style snapshot, converted by scripts/convert_edm.py, loaded by
`wb.teacher{init = ..., steps = 0}` and D(x; σ) compared at σ from 0.002 to
80 (max |workbench − twin| / max |twin| per σ ≤ 1e-5; the twin in float64).
Cases: DDPM++ (positional embedding, attention, augment_dim 9, dropout
0.13) and the same UNet with Fourier embedding and channel_mult_noise 2.
Also: a converted file refuses to load into a net of another shape, and
a VPPrecond network is refused by the converter, saying why.

The comparison is scripts/convert_edm.py check itself (the snapshot's
weights rebuilt in the twin from the pickle as data), so the user's parity
report is what is tested.

Run: /usr/bin/python3 tests/test_edm_parity.py WORKBENCH   ("N passed, M failed";
"SKIP: ..." without torch)
"""

import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("SKIP: torch not installed for %s" % sys.executable)
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
import edm_twin  # noqa: E402
import convert_edm  # noqa: E402

CONVERT = os.path.join(os.path.dirname(HERE), "scripts", "convert_edm.py")
TOL = 1e-5
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what)


def run_case(workbench, d, name, levels=2, precond="edm", adm=False, **kw):
    torch.manual_seed(1234)
    cls = {"edm": edm_twin.EDMPrecond, "vp": edm_twin.VPPrecond, "ve": edm_twin.VEPrecond}[precond]
    if adm:  # attention at 16 and 8 (64 and 128 channels: 1 and 2 heads)
        net = cls(img_resolution=16, img_channels=3, model_channels=64, channel_mult=[1, 2], num_blocks=1,
                  attn_resolutions=[16, 8], dropout=0.1, **kw)
    else:
        net = cls(img_resolution=16, img_channels=3, model_channels=16, channel_mult=[1, 2, 2][:levels],
                  num_blocks=1, attn_resolutions=[8], dropout=0.13, **kw)
    pkl = os.path.join(d, name + ".pkl")
    st = os.path.join(d, name + ".safetensors")
    edm_twin.save_snapshot(pkl, net)
    p = subprocess.run([sys.executable, CONVERT, "convert", pkl, st], capture_output=True, text=True)
    check(p.returncode == 0, "%s: convert failed: %s" % (name, p.stderr))
    if p.returncode:
        return
    spec_line = [l for l in p.stdout.splitlines() if l.startswith("net = ")]
    check(len(spec_line) == 1, "%s: convert prints the net spec:\n%s" % (name, p.stdout))
    spec = spec_line[0][len("net = "):]
    check(("precond = %s" % precond) in p.stdout, "%s: convert names the preconditioning:\n%s" % (name, p.stdout))
    # the parity report: the snapshot's weights in the twin (float64) against the workbench, per sigma
    p = subprocess.run([sys.executable, CONVERT, "check", pkl, st, "--workbench", workbench, "--tol", str(TOL)],
                       capture_output=True, text=True)
    check(p.returncode == 0, "%s: convert_edm.py check:\n%s%s" % (name, p.stdout, p.stderr))
    worst = [l for l in p.stdout.splitlines() if "worst" in l]
    print("%s: %s" % (name, worst[0] if worst else "no verdict"))
    return spec, st


def main():
    if len(sys.argv) < 2:
        print("usage: test_edm_parity.py WORKBENCH")
        return 2
    workbench = sys.argv[1]
    d = tempfile.mkdtemp(prefix="wb_edm_parity_")
    # the workbench side of `check`, for loads into other nets than the file records
    x, sig = convert_edm.check_inputs(16, 3)
    convert_edm.prepare_check_dir(d, x, sig)
    r = run_case(workbench, d, "ddpmpp", augment_dim=9)
    run_case(workbench, d, "fourier", embedding_type="fourier", channel_mult_noise=2)
    # NCSN++: Fourier embedding, residual encoder, the [1, 3, 3, 1] filter (3 levels: two FIR downs and ups)
    run_case(workbench, d, "ncsnpp", embedding_type="fourier", channel_mult_noise=2, encoder_type="residual",
             resample_filter=[1, 3, 3, 1], levels=3)
    # EDM's ADM (DhariwalUNet): 64 and 128 channels, so one- and two-head attention; unconditional and
    # class-conditional (its ImageNet-64 model has 1000 classes; 10 here)
    run_case(workbench, d, "adm", model_type="DhariwalUNet", adm=True)
    run_case(workbench, d, "adm_cond", model_type="DhariwalUNet", adm=True, label_dim=10)
    # a class-conditional SongUNet (EDM's conditional CIFAR-10 DDPM++: label_dim 10, √label_dim scaling)
    run_case(workbench, d, "ddpmpp_cond", label_dim=10)
    # EDM's VP and VE preconditioning (its DDPM++ VP and NCSN++ VE configurations)
    run_case(workbench, d, "vp", precond="vp")
    run_case(workbench, d, "ve", precond="ve", embedding_type="fourier", channel_mult_noise=2, encoder_type="residual",
             resample_filter=[1, 3, 3, 1])

    # a conditional file without label_dim (its label layer would be dropped): refused, saying which to give;
    # an unconditional one with label_dim: refused, naming the missing tensor
    cond = os.path.join(d, "adm_cond.safetensors")
    if os.path.exists(cond):
        p = convert_edm.run_check_lua(workbench, d, cond, 3)
        check(p.returncode != 0 and "class-conditional" in p.stderr and "label_dim = 10" in p.stderr,
              "a conditional checkpoint without label_dim is refused: %s" % p.stderr)
    if r:
        p = convert_edm.run_check_lua(workbench, d, r[1], 3, label_dim=10)
        check(p.returncode != 0 and "map_label.weight" in p.stderr,
              "an unconditional checkpoint with label_dim is refused, naming the tensor: %s" % p.stderr)

    # the converted file in a net of another shape: refused, naming the tensor
    if r:
        spec, st = r
        wrong = spec.replace("channels = 16", "channels = 8")
        p = convert_edm.run_check_lua(workbench, d, st, 3, spec=wrong)
        check(p.returncode != 0 and st in p.stderr, "a net of another shape refuses the file, naming it: %s" % p.stderr)
        # the same shapes with the other embedding: refused, naming the key
        other = spec.replace('embedding_convention = "edm"', 'embedding_convention = "workbench-1.0"')
        p = convert_edm.run_check_lua(workbench, d, st, 3, spec=other)
        check(p.returncode != 0 and "embedding_convention" in p.stderr and '"edm"' in p.stderr,
              "a workbench-1.0 net refuses an edm checkpoint: %s" % p.stderr)
        # a checkpoint from before nets recorded their layout (no net_resolved): unet 1.0's embedding
        legacy = os.path.join(d, "legacy.safetensors")
        with open(st, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            data = f.read()
        header["__metadata__"].pop("net_resolved")
        text = json.dumps(header).encode()
        with open(legacy, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + data)
        p = convert_edm.run_check_lua(workbench, d, legacy, 3, spec=spec)
        check(p.returncode != 0 and "unet 1.0" in p.stderr and "workbench-1.0" in p.stderr,
              "an edm net refuses a pre-1.1 checkpoint, saying why: %s" % p.stderr)
        p = convert_edm.run_check_lua(workbench, d, legacy, 3, spec=other)
        check(p.returncode == 0, "a workbench-1.0 net loads a pre-1.1 checkpoint: %s" % p.stderr)

    # another preconditioning class: refused, saying what converts
    net = edm_twin.EDMPrecond(img_resolution=16, img_channels=3, model_channels=16, channel_mult=[1, 2], num_blocks=1,
                              attn_resolutions=[8])
    net.edm_class = "iDDPMPrecond"
    pkl = os.path.join(d, "vp.pkl")
    edm_twin.save_snapshot(pkl, net)
    p = subprocess.run([sys.executable, CONVERT, "convert", pkl, os.path.join(d, "vp.safetensors")],
                       capture_output=True, text=True)
    check(p.returncode == 1 and "iDDPMPrecond" in p.stderr and "only EDMPrecond, VPPrecond and VEPrecond" in p.stderr,
          "iDDPMPrecond refused: %s" % p.stderr)
    readme_path(workbench, d)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def readme_path(workbench, d):
    """The README's "Distil EDM's teacher" commands, as written, on a
    converted random-weight snapshot and CIFAR-10-format files we make."""
    repo = os.path.dirname(HERE)
    cifar = os.path.join(d, "cifar")
    os.makedirs(cifar)
    g = torch.Generator().manual_seed(3)
    for name in ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]:
        with open(os.path.join(cifar, name), "wb") as f:
            for r in range(16):
                f.write(bytes([r % 10]) + bytes(torch.randint(0, 256, (3072,), generator=g).tolist()))
    torch.manual_seed(5)
    net = edm_twin.EDMPrecond(img_resolution=16, img_channels=3, model_channels=16, channel_mult=[1, 2],
                              num_blocks=1, attn_resolutions=[8], dropout=0.13)
    snap = os.path.join(d, "network-snapshot.pkl")
    edm_twin.save_snapshot(snap, net)
    st = os.path.join(d, "edm.safetensors")
    for cmd in (["convert", snap, st], ["check", snap, st, "--workbench", workbench]):
        p = subprocess.run([sys.executable, CONVERT] + cmd, capture_output=True, text=True)
        check(p.returncode == 0, "README path: convert_edm.py %s: %s%s" % (cmd[0], p.stdout, p.stderr))
    check("ok: worst" in p.stdout, "check prints its verdict:\n" + p.stdout)
    out = os.path.join(d, "edm_run")
    p = subprocess.run([workbench, "run", os.path.join(repo, "experiments", "edm_teacher.lua"), "teacher=" + st,
                        "data=" + cifar, "resize=16", "divergence=kl", "steps=2", "batch=4", "n=16",
                        "classifier_steps=5", "grid=4", "quiet=true", "out=" + out], capture_output=True, text=True)
    check(p.returncode == 0, "README path: experiments/edm_teacher.lua: %s%s" % (p.stdout, p.stderr))
    csv = os.path.join(out, "table.csv")
    rows = open(csv).read().splitlines() if os.path.exists(csv) else []
    check(len(rows) == 3 and rows[1].lstrip('"').startswith("teacher (Heun, edm)") and rows[2].startswith("kl student"),
          "README path: the table: %r" % rows)
    check(os.path.exists(os.path.join(out, "teacher", "samples.png")) and
          os.path.exists(os.path.join(out, "kl", "checkpoint.safetensors")), "README path: the run directories")


if __name__ == "__main__":
    sys.exit(main())
