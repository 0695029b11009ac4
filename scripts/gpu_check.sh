#!/usr/bin/env bash
# scripts/gpu_check.sh — the CUDA backend on a real NVIDIA GPU, in one go:
# conformance tables, compute-sanitizer, cpu-vs-cuda training agreement and
# the benchmarks against PyTorch, written into ONE summary file.
#
# The GPU machine has a driver but may lack this project's dependencies
# (Lua, OpenBLAS, oneDNN, cJSON, cuBLAS, cuDNN ...), so there are three modes:
#
#   scripts/gpu_check.sh bundle OUT_DIR [--slim] [--build-dir DIR]
#       On the dev machine (needs nvcc): configure + build Release in DIR
#       (default <repo>/build-gpu), then make OUT_DIR, a self-contained
#       folder laid out like a build folder:
#         workbench  tests/test_backend_ops  tests/test_cuda_backend
#         bench/bench_mlp  bench/bench_unet  bench/*.py  plugins/
#         scripts/lua/  tests/lua/  gpu_check.sh  run.sh  BUNDLE_INFO
#         lib/   libwb*.so* and every library `ldd` names for those binaries,
#                except glibc's (libc, libm, libpthread, libdl, librt,
#                ld-linux) and the driver's (libcuda.so*, libnvidia-*)
#       cuDNN 9 loads its engine libraries (libcudnn_*.so.9) with dlopen, so
#       they are copied too. The device tool carries at most 64 MiB and
#       cuBLAS + cuDNN alone are ~1 GiB: the size is printed, with a warning
#       above 64 MiB. --slim leaves out libcublas*, libcublasLt*, libcudnn*;
#       `run` then finds them on the GPU machine (below). Still over 64 MiB
#       (OpenBLAS and oneDNN are ~70 MiB): OUT_DIR.tar.gz is written beside
#       it (--slim: ~25 MiB); carry that and run
#       `tar -xzf OUT_DIR.tar.gz && OUT_DIR/run.sh` on the GPU machine.
#   scripts/gpu_check.sh build [BUILD_DIR]
#       On the GPU machine, in a source checkout with cmake + nvcc: configure
#       + build Release (default <repo>/build-gpu); then `run BUILD_DIR`.
#   scripts/gpu_check.sh run [BUNDLE_OR_BUILD_DIR]
#       On the GPU machine (default: the bundle this script sits in, else
#       <repo>/build-gpu, else <repo>/build). Library search path: the
#       bundle's lib/ (or the build folder), then whichever of these exist:
#       /usr/local/cuda/lib64, /usr/local/cuda/lib,
#       /usr/local/cuda/targets/x86_64-linux/lib, and the lib/ folders of the
#       pip nvidia-* wheels of an installed torch (site-packages/nvidia/*/lib).
#       The sonames must match the ones the build linked (e.g. libcublas.so.13):
#       the "libs" step lists any that stay unresolved.
#       Steps, each under its own `timeout`, all together under 7 minutes
#       (GPU_CHECK_BUDGET seconds, default 420), WB_REQUIRE_DEVICE=1:
#         a  nvidia-smi summary (skipped when nvidia-smi is absent)      required
#         b  conformance: test_backend_ops cuda, test_cuda_backend cuda;
#            no device is a FAILURE, never a skip                         required
#         c  compute-sanitizer memcheck on test_cuda_backend cuda
#            (skipped without compute-sanitizer)
#         d  20 training steps cpu vs cuda: workbench run
#            tests/lua/backend_agreement.lua backend=cuda (images=false when
#            /usr/share/datasets/fashion-mnist is missing, and it says so) required
#         e  benchmarks, --backend cuda: bench_mlp; bench_unet with the cpu
#            and tiny presets (WB_CONV=cudnn: all three; WB_CONV=im2col: the
#            teacher) and cifar10-ddpmpp (teacher, batch 64, both conv
#            paths); the torch twins with --device cuda when torch sees a GPU
#       A failing step never stops the later ones. Summary: $GPU_CHECK_SUMMARY,
#       else $OUT/gpu_check_summary.md when $OUT is set, else
#       ./gpu_check_summary.md; full logs in gpu_check_logs/ beside it.
#       Exit status: non-zero when a required step (a, b, d) failed.
#
# Example (device tool): scripts/gpu_check.sh bundle build-gpu/bundle --slim
#   then carry build-gpu/bundle and run: build-gpu/bundle/run.sh
set -u -o pipefail

self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
here="$(dirname "$self")"
repo="$(cd "$here/.." && pwd)"
mib=$((1024 * 1024))
carry_limit=$((64 * mib))

die() { echo "gpu_check.sh: $*" >&2; exit 2; }

usage() {
    sed -n '2,/^set -u/p' "$self" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# ---- build ------------------------------------------------------------------------------
# configure_build SRC BUILD_DIR: Release, incremental.
configure_build() {
    local src="$1" build="$2"
    command -v cmake >/dev/null || die "cmake not found"
    if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
        die "nvcc not found (PATH, /usr/local/cuda/bin): the CUDA backend would not be built"
    fi
    echo "== configure $build (Release)" >&2
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null || die "cmake configure failed"
    echo "== build $build" >&2
    cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null || die "build failed (rerun: cmake --build $build)"
    [ -f "$build/libwb_cuda.a" ] || die "$build has no libwb_cuda.a: the CUDA backend was not built (nvcc?)"
    for b in workbench tests/test_backend_ops tests/test_cuda_backend bench/bench_mlp bench/bench_unet; do
        [ -x "$build/$b" ] || die "$build/$b missing after the build"
    done
}

mode_build() {
    local build="${1:-$repo/build-gpu}"
    configure_build "$repo" "$build"
    echo "built $build; now: $self run $build" >&2
}

# ---- bundle -----------------------------------------------------------------------------
# excluded_lib NAME SLIM: 0 (true) when NAME stays out of the bundle.
excluded_lib() {
    case "$1" in
    linux-vdso.so* | libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux*.so* | \
        libcuda.so* | libnvidia-*) return 0 ;;
    libwb*) return 0 ;; # copied from the build folder with its symlinks
    libcublas* | libcudnn*) [ "$2" = 1 ] && return 0 ;;
    esac
    return 1
}

mode_bundle() {
    local out="" slim=0 build="$repo/build-gpu"
    while [ "$#" -gt 0 ]; do
        case "$1" in
        --slim) slim=1 ;;
        --build-dir) build="${2:?--build-dir DIR}"; shift ;;
        -*) die "bundle: unknown option $1" ;;
        *) [ -z "$out" ] || die "bundle: one OUT_DIR"; out="$1" ;;
        esac
        shift
    done
    [ -n "$out" ] || die "usage: gpu_check.sh bundle OUT_DIR [--slim] [--build-dir DIR]"
    configure_build "$repo" "$build"
    build="$(cd "$build" && pwd)"

    rm -rf "$out"
    mkdir -p "$out/lib" "$out/tests" "$out/bench" "$out/scripts" || die "cannot create $out"
    out="$(cd "$out" && pwd)"
    cp "$build/workbench" "$out/"
    cp "$build/tests/test_backend_ops" "$build/tests/test_cuda_backend" "$out/tests/"
    cp "$build/bench/bench_mlp" "$build/bench/bench_unet" "$out/bench/"
    cp "$repo"/bench/*.py "$out/bench/"
    cp -a "$build"/libwb*.so* "$out/lib/"
    cp -a "$build/plugins" "$out/plugins"
    find "$out/plugins" -type f ! -name '*.so' -delete
    find "$out/plugins" -type d -empty -delete
    cp -a "$repo/scripts/lua" "$out/scripts/lua"
    cp -a "$repo/tests/lua" "$out/tests/lua"
    cp "$self" "$out/gpu_check.sh"

    # every library ldd resolves for the binaries, libwb and the plugins
    local bins=("$out/workbench" "$out/tests/test_backend_ops" "$out/tests/test_cuda_backend"
        "$out/bench/bench_mlp" "$out/bench/bench_unet" "$build"/libwb*.so.[0-9]*.*)
    while IFS= read -r -d '' p; do bins+=("$p"); done < <(find "$out/plugins" -name '*.so' -print0)
    local name path missing=() cudnn_dir=""
    while read -r name path; do
        [ -n "$name" ] || continue
        excluded_lib "$name" "$slim" && continue
        if [ "$path" = "not" ] || [ ! -e "$path" ]; then missing+=("$name"); continue; fi
        cp -L "$path" "$out/lib/$name"
        case "$name" in libcudnn.so*) cudnn_dir="$(dirname "$path")" ;; esac
    done < <(LD_LIBRARY_PATH="$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "${bins[@]}" 2>/dev/null |
        awk '$2 == "=>" { print $1, $3 }' | sort -u)
    # cuDNN 9's libcudnn.so is a shim that dlopens its engines
    if [ -n "$cudnn_dir" ]; then
        for path in "$cudnn_dir"/libcudnn_*.so.[0-9]; do
            [ -e "$path" ] && cp -L "$path" "$out/lib/"
        done
    fi
    [ "${#missing[@]}" -eq 0 ] || echo "gpu_check.sh: WARNING: unresolved on this machine: ${missing[*]}" >&2

    cat >"$out/run.sh" <<'EOF'
#!/usr/bin/env bash
# The device check of this bundle: scripts/gpu_check.sh run <this folder>.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/gpu_check.sh" run "$here" "$@"
EOF
    chmod +x "$out/run.sh" "$out/gpu_check.sh"
    local bytes
    bytes="$(du -sb "$out" | awk '{ print $1 }')"
    {
        echo "bundle of $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown) made $(date -u +%FT%TZ)"
        echo "build: $build"
        echo "slim: $slim (1: no libcublas*/libcudnn*; run.sh looks for them under /usr/local/cuda and torch's nvidia-* wheels)"
        echo "bytes: $bytes"
    } >"$out/BUNDLE_INFO"
    echo "bundle: $out"
    echo "size: $((bytes / mib)) MiB ($bytes bytes); largest libraries:"
    (cd "$out/lib" && ls -S1 | head -6 | while read -r f; do printf '  %6s MiB  %s\n' "$(($(stat -c %s "$f") / mib))" "$f"; done)
    if [ "$bytes" -gt "$carry_limit" ]; then
        echo "WARNING: the bundle is $((bytes / mib)) MiB, over the 64 MiB the device tool carries." >&2
        [ "$slim" = 1 ] || echo "         Make it with --slim: run.sh then takes cuBLAS/cuDNN from /usr/local/cuda or torch's nvidia-* wheels on the GPU machine." >&2
        local tgz="$out.tar.gz" tbytes
        tar -C "$(dirname "$out")" -czf "$tgz" "$(basename "$out")" || die "tar failed"
        tbytes="$(stat -c %s "$tgz")"
        echo "packed: $tgz, $((tbytes / mib)) MiB ($tbytes bytes)"
        if [ "$tbytes" -le "$carry_limit" ]; then
            echo "  carry that one; on the GPU machine: tar -xzf $(basename "$tgz") && $(basename "$out")/run.sh"
        else
            echo "WARNING: even packed it is over 64 MiB${slim:+ }$([ "$slim" = 1 ] || echo '(try --slim)')" >&2
        fi
    else
        echo "fits the 64 MiB the device tool carries"
    fi
}

# ---- run: environment ------------------------------------------------------------------
# Library folders of the GPU machine's CUDA toolkit and torch's nvidia-* wheels.
fallback_lib_dirs() {
    local d py sp
    for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
        [ -d "$d" ] && echo "$d"
    done
    for py in python3 /usr/bin/python3; do
        command -v "$py" >/dev/null || continue
        while IFS= read -r sp; do
            [ -d "$sp/nvidia" ] || continue
            for d in "$sp"/nvidia/*/lib; do [ -d "$d" ] && echo "$d"; done
        done < <("$py" -c 'import site, sys
for p in site.getsitepackages() + [site.getusersitepackages()] + sys.path: print(p)' 2>/dev/null)
    done
}

# run_env ROOT: globals bin_*, py_dir, lua_dir, tests_lua, kind; LD_LIBRARY_PATH etc.
setup_run_env() {
    root="$1"
    local libdirs=()
    if [ -f "$root/BUNDLE_INFO" ]; then
        kind=bundle
        py_dir="$root/bench" lua_dir="$root/scripts/lua" tests_lua="$root/tests/lua"
        libdirs+=("$root/lib")
        export WB_PLUGIN_PATH="$root/plugins"
    else
        kind=build
        local src
        src="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$root/CMakeCache.txt" 2>/dev/null)"
        [ -n "$src" ] && [ -d "$src" ] || src="$repo"
        py_dir="$src/bench" lua_dir="$src/scripts/lua" tests_lua="$src/tests/lua"
        libdirs+=("$root")
    fi
    local d
    while IFS= read -r d; do libdirs+=("$d"); done < <(fallback_lib_dirs | awk '!seen[$0]++')
    LD_LIBRARY_PATH="$(IFS=:; echo "${libdirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LD_LIBRARY_PATH
    export WB_LUA_PATH="$lua_dir${WB_LUA_PATH:+:$WB_LUA_PATH}"
    export WB_REQUIRE_DEVICE=1
    export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
    bin_wb="$root/workbench"
    bin_ops="$root/tests/test_backend_ops"
    bin_cuda="$root/tests/test_cuda_backend"
    bin_mlp="$root/bench/bench_mlp"
    bin_unet="$root/bench/bench_unet"
}

# ---- run: step bookkeeping --------------------------------------------------------------
steps=()        # "id|name|status|seconds|note"
bench_rows=()   # "bench|preset|conv|wb_ms|torch_ms"
required_failed=0
budget="${GPU_CHECK_BUDGET:-420}"

remaining() { echo $((budget - SECONDS)); }

# record ID NAME STATUS SECONDS NOTE [required]
record() {
    steps+=("$1|$2|$3|$4|$5")
    printf '%-4s %-44s %-7s %4ss  %s\n' "$1" "$2" "$3" "$4" "$5" >&2
    [ "${6:-0}" = 1 ] && [ "$3" = FAIL ] && required_failed=1
    return 0
}

# timed LOG LIMIT CMD...: run under timeout (capped by what is left of the
# budget), stdout+stderr to LOG; sets t_rc and t_secs.
timed() {
    local log="$1" limit="$2" left
    shift 2
    left="$(remaining)"
    [ "$left" -lt "$limit" ] && limit="$left"
    if [ "$limit" -lt 5 ]; then
        echo "not run: the ${budget}s budget is spent" >"$log"
        t_rc=125 t_secs=0
        return
    fi
    local t0=$SECONDS
    echo "\$ $*  (timeout ${limit}s)" >"$log"
    timeout -k 5 "$limit" "$@" >>"$log" 2>&1
    t_rc=$?
    t_secs=$((SECONDS - t0))
    [ "$t_rc" = 124 ] || [ "$t_rc" = 137 ] && echo "TIMED OUT after ${limit}s" >>"$log"
}

# a one-line reason out of a log: "no device" first, then the last error-looking line
reason() {
    local r
    r="$(grep -m1 -E 'unavailable|no CUDA device|insufficient|NVIDIA-SMI has failed|not found|cannot open shared' "$1" | cut -c1-220)"
    [ -n "$r" ] || r="$(grep -E -i 'error|fail|mismatch|timed out' "$1" | tail -1 | cut -c1-220)"
    [ -n "$r" ] || r="$(tail -1 "$1" | cut -c1-220)"
    printf '%s' "${r//|//}"
}

no_device_note() { # LOG: "NO DEVICE: ..." when the log says there is none
    if grep -q -E 'no CUDA device|CUDA backend unavailable|insufficient for CUDA runtime|cudaErrorNoDevice' "$1"; then
        printf 'NO DEVICE: %s' "$(grep -m1 -o -E '(no CUDA device|CUDA driver version is insufficient|cudaErrorNoDevice)[^"]*' "$1" | cut -c1-160)"
    fi
}

# ---- run: the steps ----------------------------------------------------------------------
step_libs() {
    local log="$logs/libs.log" b unresolved=""
    : >"$log"
    for b in "$bin_wb" "$bin_ops" "$bin_cuda" "$bin_mlp" "$bin_unet"; do
        [ -x "$b" ] || { unresolved+=" $(basename "$b")(missing)"; continue; }
        echo "== $b" >>"$log"
        ldd "$b" >>"$log" 2>&1
    done
    unresolved+="$(grep 'not found' "$log" | awk '{ printf " %s", $1 }' | tr ' ' '\n' | sort -u | tr '\n' ' ')"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >>"$log"
    if [ -n "${unresolved// /}" ]; then
        record libs "shared libraries resolve" FAIL 0 "unresolved:${unresolved}"
    else
        record libs "shared libraries resolve" ok 0 "$kind at $root"
    fi
}

step_a_smi() {
    local log="$logs/a_nvidia_smi.log"
    if ! command -v nvidia-smi >/dev/null; then
        echo "nvidia-smi not found" >"$log"
        record a "nvidia-smi" skip 0 "nvidia-smi not found"
        return
    fi
    timed "$log" 15 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader
    if [ "$t_rc" = 0 ]; then
        record a "nvidia-smi" ok "$t_secs" "$(sed -n 2p "$log" | cut -c1-160)"
        timeout 10 nvidia-smi >>"$log" 2>&1
    else
        record a "nvidia-smi" FAIL "$t_secs" "$(reason "$log")" 1
    fi
}

# conformance TEST LIMIT: a skip (no device) is a failure
conformance() {
    local t="$1" limit="$2" name log nd
    name="$(basename "$t")"
    log="$logs/b_$name.log"
    timed "$log" "$limit" "$t" cuda
    nd="$(no_device_note "$log")"
    if [ -n "$nd" ]; then
        record b "$name cuda" FAIL "$t_secs" "$nd" 1
    elif [ "$t_rc" != 0 ]; then
        record b "$name cuda" FAIL "$t_secs" "exit $t_rc: $(reason "$log")" 1
    elif grep -q -E 'SKIPPED|SKIP:' "$log"; then
        record b "$name cuda" FAIL "$t_secs" "cases skipped: $(grep -m1 -E 'SKIP' "$log" | cut -c1-160)" 1
    else
        record b "$name cuda" ok "$t_secs" "$(grep -E 'PASSED' "$log" | tail -1 | tr -s ' ')"
    fi
}

step_b_conformance() {
    conformance "$bin_ops" 50
    conformance "$bin_cuda" 35
}

step_c_sanitizer() {
    local log="$logs/c_compute_sanitizer.log" cs=""
    cs="$(command -v compute-sanitizer || true)"
    [ -n "$cs" ] || { [ -x /usr/local/cuda/bin/compute-sanitizer ] && cs=/usr/local/cuda/bin/compute-sanitizer; }
    if [ -z "$cs" ]; then
        record c "compute-sanitizer memcheck" skip 0 "compute-sanitizer not found"
        return
    fi
    timed "$log" 45 "$cs" --tool memcheck --leak-check full --error-exitcode 3 "$bin_cuda" cuda
    local nd
    nd="$(no_device_note "$log")"
    if [ -n "$nd" ]; then
        record c "compute-sanitizer memcheck" FAIL "$t_secs" "$nd"
    elif [ "$t_rc" = 0 ]; then
        record c "compute-sanitizer memcheck" ok "$t_secs" "$(grep -m1 'ERROR SUMMARY' "$log")"
    else
        record c "compute-sanitizer memcheck" FAIL "$t_secs" "exit $t_rc: $(grep -m1 'ERROR SUMMARY' "$log" || reason "$log")"
    fi
}

step_d_agreement() {
    local log="$logs/d_backend_agreement.log" images=true note=""
    if [ ! -d /usr/share/datasets/fashion-mnist ]; then
        images=false
        note="Fashion-MNIST missing (/usr/share/datasets/fashion-mnist): images=false, MLP half only; "
    fi
    timed "$log" 60 "$bin_wb" run "$tests_lua/backend_agreement.lua" backend=cuda images=$images
    local nd
    nd="$(no_device_note "$log")"
    if [ -n "$nd" ]; then
        record d "cpu vs cuda, 20 steps (backend_agreement)" FAIL "$t_secs" "$note$nd" 1
    elif [ "$t_rc" = 0 ]; then
        record d "cpu vs cuda, 20 steps (backend_agreement)" ok "$t_secs" "$note$(tail -1 "$log" | cut -c1-160)"
    else
        record d "cpu vs cuda, 20 steps (backend_agreement)" FAIL "$t_secs" "${note}exit $t_rc: $(reason "$log")" 1
    fi
}

# JSON lines -> "bench ms" pairs
extract() { sed -n 's/.*"bench": "\([^"]*\)".*"ms_per_iter": \([0-9.eE+-]*\).*/\1 \2/p' "$@"; }

# bench_step ID NAME LOG LIMIT CMD...: a benchmark run, recorded (never required)
bench_step() {
    local id="$1" name="$2" log="$3" limit="$4"
    shift 4
    timed "$log" "$limit" "$@"
    local nd n
    nd="$(no_device_note "$log")"
    n="$(extract "$log" | wc -l)"
    if [ -n "$nd" ]; then
        record "$id" "$name" FAIL "$t_secs" "$nd"
    elif [ "$t_rc" = 0 ]; then
        record "$id" "$name" ok "$t_secs" "$n result(s)"
    else
        record "$id" "$name" FAIL "$t_secs" "exit $t_rc, $n result(s): $(reason "$log")"
    fi
}

# add_rows PRESET CONV WB_LOG TORCH_LOG
add_rows() {
    local preset="$1" conv="$2" wb_log="$3" th_log="$4" name ms tms
    while read -r name ms; do
        [ -n "$name" ] || continue
        tms=""
        [ -f "$th_log" ] && tms="$(extract "$th_log" | awk -v n="$name" '$1 == n { print $2; exit }')"
        bench_rows+=("$name|$preset|$conv|$ms|${tms:-n/a}")
    done < <(extract "$wb_log")
}

step_e_benches() {
    local torch_ok=0 py="${PYTHON:-python3}" th=""
    if command -v "$py" >/dev/null && timeout 60 "$py" -c "import torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then
        torch_ok=1
        th="$("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
        record e0 "torch sees a GPU" ok 0 "torch $th"
    else
        record e0 "torch sees a GPU" skip 0 "no torch with CUDA for $py: workbench side only"
    fi

    # MLP
    bench_step e1 "bench_mlp --backend cuda" "$logs/e_mlp_wb.log" 20 \
        "$bin_mlp" --backend cuda --repeats 1 --teacher-steps 50,250 --distill-steps 20,80
    if [ "$torch_ok" = 1 ]; then
        bench_step e1t "torch_mlp.py --device cuda" "$logs/e_mlp_torch.log" 20 \
            "$py" "$py_dir/torch_mlp.py" --device cuda --repeats 1 --warmup 20 --teacher-iters 200 --distill-iters 60
    fi
    add_rows mlp - "$logs/e_mlp_wb.log" "$logs/e_mlp_torch.log"

    # UNet, cpu and tiny presets: everything with cuDNN convolutions, the teacher with im2col
    local preset
    for preset in cpu tiny; do
        local common=(--preset "$preset" --warmup 3 --iters 10)
        bench_step e2 "bench_unet $preset, WB_CONV=cudnn" "$logs/e_unet_${preset}_cudnn.log" 20 \
            env WB_CONV=cudnn "$bin_unet" --backend cuda --bench all "${common[@]}"
        bench_step e2 "bench_unet $preset teacher, WB_CONV=im2col" "$logs/e_unet_${preset}_im2col.log" 15 \
            env WB_CONV=im2col "$bin_unet" --backend cuda --bench teacher "${common[@]}"
        if [ "$torch_ok" = 1 ]; then
            bench_step e2t "torch_unet.py $preset --device cuda" "$logs/e_unet_${preset}_torch.log" 20 \
                "$py" "$py_dir/torch_unet.py" --device cuda --bench all "${common[@]}"
        fi
        add_rows "$preset" cudnn "$logs/e_unet_${preset}_cudnn.log" "$logs/e_unet_${preset}_torch.log"
        add_rows "$preset" im2col "$logs/e_unet_${preset}_im2col.log" "$logs/e_unet_${preset}_torch.log"
    done

    # UNet, EDM's DDPM++ CIFAR-10 (55.7 M parameters): the teacher step at batch 64
    local common=(--preset cifar10-ddpmpp --bench teacher --teacher-batch 64 --warmup 2 --iters 5)
    local conv
    for conv in cudnn im2col; do
        bench_step e3 "bench_unet cifar10-ddpmpp B64, WB_CONV=$conv" "$logs/e_unet_ddpmpp_$conv.log" 25 \
            env WB_CONV=$conv "$bin_unet" --backend cuda "${common[@]}"
    done
    if [ "$torch_ok" = 1 ]; then
        bench_step e3t "torch_unet.py cifar10-ddpmpp B64 --device cuda" "$logs/e_unet_ddpmpp_torch.log" 25 \
            "$py" "$py_dir/torch_unet.py" --device cuda "${common[@]}"
    fi
    for conv in cudnn im2col; do
        add_rows cifar10-ddpmpp "$conv" "$logs/e_unet_ddpmpp_$conv.log" "$logs/e_unet_ddpmpp_torch.log"
    done
}

write_summary() {
    local f="$1" s id name status secs note r
    {
        echo "# gpu_check summary"
        echo
        echo "- when: $(date -u +%FT%TZ), host $(hostname 2>/dev/null || echo '?')"
        echo "- checked: $kind at \`$root\`"
        [ -f "$root/BUNDLE_INFO" ] && echo "- bundle: $(head -1 "$root/BUNDLE_INFO")"
        echo "- GPU: $(command -v nvidia-smi >/dev/null && timeout 10 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 || echo 'nvidia-smi not found')"
        echo "- WB_REQUIRE_DEVICE=1, WB_CUDA_TF32=${WB_CUDA_TF32:-0 (off)}, total ${SECONDS}s of a ${budget}s budget"
        echo "- logs: \`$logs\`"
        echo
        echo "| step | what | status | s | note |"
        echo "|---|---|---|---|---|"
        for s in "${steps[@]}"; do
            IFS='|' read -r id name status secs note <<<"$s"
            echo "| $id | $name | $status | $secs | $note |"
        done
        echo
        if [ "$required_failed" = 1 ]; then
            echo "**Result: FAILED** (a required step — a nvidia-smi, b conformance, d agreement — failed)"
        else
            echo "**Result: passed** (required steps a, b, d)"
        fi
        echo
        echo "## Benchmarks (--backend cuda vs torch --device cuda; ms per iteration, median)"
        echo
        if [ "${#bench_rows[@]}" -eq 0 ]; then
            echo "(no benchmark produced a result)"
        else
            echo "| benchmark | preset | conv | workbench ms | torch ms | torch/workbench |"
            echo "|---|---|---|---|---|---|"
            for r in "${bench_rows[@]}"; do
                IFS='|' read -r name preset conv wms tms <<<"$r"
                local ratio=n/a
                [ "$tms" != n/a ] && ratio="$(awk -v a="$tms" -v b="$wms" 'BEGIN { printf "%.2f", a / b }')"
                echo "| $name | $preset | $conv | $wms | $tms | $ratio |"
            done
            echo
            echo "(> 1: the workbench is faster. TF32 off on both sides.)"
        fi
    } >"$f"
}

mode_run() {
    local dir="${1:-}"
    if [ -z "$dir" ]; then
        if [ -f "$here/BUNDLE_INFO" ]; then dir="$here"
        elif [ -d "$repo/build-gpu" ]; then dir="$repo/build-gpu"
        else dir="$repo/build"; fi
    fi
    [ -d "$dir" ] || die "run: no folder $dir (a bundle or a build folder)"
    setup_run_env "$(cd "$dir" && pwd)"

    local summary="${GPU_CHECK_SUMMARY:-}"
    if [ -z "$summary" ]; then
        if [ -n "${OUT:-}" ]; then summary="$OUT/gpu_check_summary.md"; else summary="$PWD/gpu_check_summary.md"; fi
    fi
    mkdir -p "$(dirname "$summary")" || die "cannot create $(dirname "$summary")"
    summary="$(cd "$(dirname "$summary")" && pwd)/$(basename "$summary")"
    logs="$(dirname "$summary")/gpu_check_logs"
    rm -rf "$logs"
    mkdir -p "$logs"
    # the workbench and the benches write run folders into the current one
    local work
    work="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")" || die "mktemp failed"
    cd "$work" || die "cd $work"

    echo "gpu_check: $kind $root; summary $summary" >&2
    step_libs
    step_a_smi
    step_b_conformance
    step_c_sanitizer
    step_d_agreement
    step_e_benches
    write_summary "$summary"
    cd / && rm -rf "$work"
    echo "summary: $summary" >&2
    [ "$required_failed" = 0 ]
}

case "${1:-}" in
bundle) shift; mode_bundle "$@" ;;
build) shift; mode_build "$@" ;;
run) shift; mode_run "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
