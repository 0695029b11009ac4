#!/usr/bin/env bash
# scripts/deps.sh — installs the Debian packages the workbench builds and
# tests with, when any is missing (needs root or sudo; apt only).
#   build:  cmake, a C compiler, pkg-config, Lua 5.4, cJSON, libpng, OpenBLAS
#           (libopenblas-dev, and libopenblas0-openmp: the OpenMP-threaded
#           build, so BLAS, oneDNN and our kernels share one thread pool),
#           oneDNN (libdnnl-dev: the CPU convolutions; optional for CMake), CMocka
#   tests:  python3-torch, python3-torchvision, python3-scipy (reference numerics),
#           dataset-fashion-mnist (real images); clang + libclang-rt-14-dev
#           (libFuzzer, scripts/fuzz.sh); slurm-wlm + munge (the one-node Slurm
#           cluster the tests start on localhost, scripts/slurm_local.sh),
#           openmpi-bin + libopenmpi-dev
# The CUDA toolkit is optional: when nvcc is found the CUDA backend is built too.
set -euo pipefail
packages=(build-essential cmake pkg-config git liblua5.4-dev libcjson-dev libpng-dev zlib1g-dev
          libopenblas-dev libopenblas0-openmp libdnnl-dev libcmocka-dev python3-torch python3-torchvision python3-scipy dataset-fashion-mnist
          clang libclang-rt-14-dev slurm-wlm munge openmpi-bin libopenmpi-dev)
[ "${1:-}" = "--build-only" ] && packages=("${packages[@]:0:12}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
