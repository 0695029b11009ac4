#!/usr/bin/env bash
# scripts/test.sh — the README's test command: installs what is missing,
# configures and builds into build/ (warnings are errors), runs every test.
# Tests that need a GPU or PyTorch print "SKIP: ..." when those are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DWB_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
