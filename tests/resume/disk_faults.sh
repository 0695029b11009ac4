#!/usr/bin/env bash
# tests/resume/disk_faults.sh — disk and environment faults (issue 10): each
# gives a clear error, never a truncated file a later run trusts.
#   disk full     a tmpfs with room for one checkpoint of the run but not two
#                 (the new one is written beside the old): the second
#                 periodic checkpoint fails naming the file and "No space";
#                 the first stays whole and, copied elsewhere, resumes to
#                 the uninterrupted result
#   read-only     the run directory on a read-only mount: the run fails at
#                 its start naming the file and the read-only file system
#   vanished      the run directory deleted while training: the next log
#                 line or checkpoint fails naming the directory
# Needs mount (root); prints SKIP with the reason otherwise.
#
# usage: disk_faults.sh WORKBENCH OUT_DIR
set -uo pipefail
wb=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3
rm -rf "$out"
mkdir -p "$out/mnt"
if ! mount -t tmpfs -o size=1700k tmpfs "$out/mnt" 2>"$out/mount.err"; then
  echo "SKIP: cannot mount a tmpfs ($(cat "$out/mount.err")): disk-fault tests need root"
  exit 0
fi
trap 'umount "$out/mnt" 2>/dev/null; umount "$out/ro" 2>/dev/null' EXIT
wide=("$here/arms.lua" part=wide steps=20)

# reference, uninterrupted
"$wb" run "${wide[@]}" out="$out/ref" >"$out/ref.log" 2>&1 || { cat "$out/ref.log"; exit 1; }
size=$(stat -c %s "$out/ref/teacher/checkpoint.safetensors")

# -- disk full ---------------------------------------------------------------------
"$wb" run "${wide[@]}" out="$out/mnt/full" checkpoint_every=5 >"$out/full.log" 2>&1
rc=$?
[ $rc -ne 0 ] || { echo "FAIL: disk full: the run succeeded on a $(df -h "$out/mnt" | tail -1)"; exit 1; }
grep -q "checkpoint.*No space left on device" "$out/full.log" ||
  { echo "FAIL: disk full: the error does not name the checkpoint and the full disk:"; cat "$out/full.log"; exit 1; }
ls "$out/mnt/full/teacher" | grep -q '\.tmp' && { echo "FAIL: disk full left a temporary file"; ls -l "$out/mnt/full/teacher"; exit 1; }
step=$("$py" - "$out/mnt/full/teacher/checkpoint.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
end = max(t["data_offsets"][1] for k, t in h.items() if k != "__metadata__")
assert len(b) == 8 + n + end, "truncated"
print(h["__metadata__"]["step"])
PY
) || { echo "FAIL: disk full: the checkpoint left behind is not whole"; exit 1; }
cp -r "$out/mnt/full" "$out/full_copy"
"$wb" run "${wide[@]}" out="$out/full_copy" checkpoint_every=5 resume="$out/full_copy" >"$out/full_resume.log" 2>&1 ||
  { echo "FAIL: disk full: resume from the surviving checkpoint:"; cat "$out/full_resume.log"; exit 1; }
"$py" "$here/st_same.py" "$out/ref/teacher/checkpoint.safetensors" "$out/full_copy/teacher/checkpoint.safetensors" ||
  { echo "FAIL: disk full: resumed result differs"; exit 1; }
echo "ok: disk full at the second checkpoint (${size}-byte files on a 1700k tmpfs): clear error, step-$step checkpoint whole, resumed to the uninterrupted result"

# -- read-only run directory ---------------------------------------------------------
mkdir -p "$out/ro"
mount -t tmpfs -o size=1m tmpfs "$out/ro" && mkdir -p "$out/ro/run/teacher" && mount -o remount,ro "$out/ro" ||
  { echo "FAIL: could not make a read-only mount"; exit 1; }
"$wb" run "${wide[@]}" out="$out/ro/run" >"$out/ro.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "Read-only file system" "$out/ro.log" && grep -q "$out/ro/run/teacher" "$out/ro.log" ||
  { echo "FAIL: read-only run directory: rc $rc:"; cat "$out/ro.log"; exit 1; }
echo "ok: read-only run directory: $(grep -o 'wb.teacher: .*' "$out/ro.log" | head -1 | cut -c1-150)"

# -- vanished run directory -----------------------------------------------------------
"$wb" run "$here/arms.lua" part=wide steps=100000 out="$out/gone" checkpoint_every=200 >"$out/gone.log" 2>&1 &
pid=$!
for _ in $(seq 300); do [ -s "$out/gone/teacher/metrics.jsonl" ] && break; sleep 0.1; done
rm -rf "$out/gone"
wait $pid
rc=$?
[ $rc -ne 0 ] && grep -Eq "removed while the run wrote it|run directory .* is gone" "$out/gone.log" ||
  { echo "FAIL: vanished run directory: rc $rc:"; cat "$out/gone.log"; exit 1; }
echo "ok: vanished run directory: $(grep -Eo '(metrics.jsonl was removed|the run directory [^ ]+ is gone)[^;]*' "$out/gone.log" | head -1 | cut -c1-120)"
exit 0
