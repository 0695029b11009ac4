#!/usr/bin/env bash
# scripts/quickstart.sh — the README's main job: installs what is missing,
# builds, and runs experiments/quickstart.lua (all divergences side by side
# on a 2-D mixture; a few minutes on 2 cores). Extra key=value arguments go
# to the experiment, e.g. scripts/quickstart.sh steps=3000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --build-only
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
exec build/workbench run experiments/quickstart.lua "$@"
