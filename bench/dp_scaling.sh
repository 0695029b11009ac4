#!/usr/bin/env bash
# bench/dp_scaling.sh — data-parallel scaling of the workbench's own training
# loops: bench/dp_step.lua (a teacher DSM run and a kl distillation, timed
# from their metrics.jsonl) on
#   1r1t   1 rank, no launcher, OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = 1
#   1r2t   1 rank, 2 threads (reference: the other way to use both cores)
#   2r     mpirun -np 2, one thread per rank, reduction = fast (MPI_Allreduce)
#   2rdet  mpirun -np 2, one thread per rank, reduction = deterministic
#          (shards = 2: gradients gathered and summed in shard order)
#   2ry    as 2r with Open MPI's mpi_yield_when_idle = 1 (a rank waiting in a
#          collective yields its core instead of spinning; diagnostic)
# all at the SAME global batch (each rank computes half of it on 2 ranks),
# then prints Markdown tables: per-step milliseconds (the median over every
# timed log interval of every repeat; the first interval of each run is the
# warm-up and is left out), the speedup 1r1t → 2r, and the share of the step
# spent inside collectives (comm_seconds of metrics.jsonl, logged by rank 0:
# wall time inside MPI calls, which includes waiting for the other rank).
# With mpicc, bench/mpi_allreduce.c also times the bare collectives at the
# sizes of the nets' parameter stores (barrier first: no waiting counted),
# summed per step as the engine makes them (fast: one all-reduce per store;
# deterministic: one all-gather per update) — the "bare" columns.
#
#   bench/dp_scaling.sh [BUILD_DIR]        default BUILD_DIR: <repo>/build
#   env: NETS="mlp unet-smoke unet-cpu"   which nets (bench/dp_step.lua)
#        REPEATS=2                        runs of each (net, configuration),
#                                         interleaved: 1r1t 1r2t 2r 2rdet 2ry, 1r1t …
#        UNET_CPU_REPEATS=1               unet-cpu's (≈ 12 s a run)
#        CONFIGS="1r1t 1r2t 2r 2rdet 2ry"
#        MPIRUN_EXTRA=...                 more mpirun arguments (e.g.
#                                         "--mca mpi_yield_when_idle 1")
#        KEEP=DIR                         keep the runs and the raw lines in DIR
# mpirun as tests/dp/mpi_env.sh invokes it (root allowed, no single-copy
# shared memory, --oversubscribe --bind-to none). Without mpirun, or in a
# build without MPI, the 2-rank columns say so. A benchmark, never a test:
# exits non-zero only when something fails to build or run. 172-209 s
# with the defaults on the 2-core VM at load 3-4 (bench/README.md).
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${1:-$repo/build}"
nets="${NETS:-mlp unet-smoke unet-cpu}"
repeats="${REPEATS:-2}"
configs="${CONFIGS:-1r1t 1r2t 2r 2rdet 2ry}"
cpu_repeats="${UNET_CPU_REPEATS:-1}"
extra="${MPIRUN_EXTRA:-}"

if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "configuring $build" >&2
    cmake -S "$repo" -B "$build" >/dev/null || { echo "dp_scaling.sh: cmake configure failed" >&2; exit 1; }
fi
if ! log="$(cmake --build "$build" --target workbench -j2 2>&1)"; then
    printf '%s\n' "$log" | tail -40 >&2
    echo "dp_scaling.sh: build failed" >&2
    exit 1
fi
wb="$build/workbench"
[ -x "$wb" ] || { echo "dp_scaling.sh: $wb missing after the build" >&2; exit 1; }

have_mpi=1
if ! command -v mpirun >/dev/null; then
    echo "dp_scaling.sh: no mpirun (Debian: openmpi-bin): 1-rank columns only" >&2
    have_mpi=0
elif ! case "$(ldd "$wb" "$build"/libwb*.so* 2>/dev/null)" in *libmpi*) true ;; *) false ;; esac; then
    echo "dp_scaling.sh: this build has no MPI (WB_MPI): 1-rank columns only" >&2
    have_mpi=0
fi

if [ -n "${KEEP:-}" ]; then work="$KEEP"; mkdir -p "$work"; else work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi
raw="$work/raw.txt"
: >"$raw"

. "$here/blas_env.sh"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" # as the workbench sets it itself (no re-exec)
# mpirun as the data-parallel tests invoke it (tests/dp/mpi_env.sh)
mpi_env=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
         OMPI_MCA_rmaps_base_oversubscribe=1)

status=0
t_start=$(date +%s)
run_one() { # NET CONFIG REPEAT
    local net=$1 cfg=$2 r=$3 out="$work/$1-$2-$3" cmd=() log
    rm -rf "$out"
    mkdir -p "$out"
    case "$cfg" in
    1r1t) cmd=(env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$wb" run "$here/dp_step.lua" net="$net" out="$out") ;;
    1r2t) cmd=(env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$wb" run "$here/dp_step.lua" net="$net" out="$out") ;;
    2r | 2rdet | 2ry)
        [ "$have_mpi" = 1 ] || return 0
        local red=fast yield=()
        [ "$cfg" = 2rdet ] && red=deterministic
        [ "$cfg" = 2ry ] && yield=(--mca mpi_yield_when_idle 1)
        # shellcheck disable=SC2206  # MPIRUN_EXTRA: split into words on purpose
        cmd=(env "${mpi_env[@]}" OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
             mpirun -np 2 --oversubscribe --bind-to none "${yield[@]}" $extra
             "$wb" run "$here/dp_step.lua" net="$net" out="$out" reduction="$red" shards=2) ;;
    *) echo "dp_scaling.sh: unknown configuration '$cfg' (1r1t 1r2t 2r 2rdet 2ry)" >&2; status=1; return 0 ;;
    esac
    local t0 t1
    t0=$(date +%s.%N)
    if ! log="$("${cmd[@]}" 2>&1)"; then
        printf '%s\n' "$log" | tail -20 >&2
        echo "dp_scaling.sh: $net $cfg (repeat $r) failed" >&2
        status=1
        return 0
    fi
    t1=$(date +%s.%N)
    printf '%s\n' "$log" | sed -n -e "s/^DP_STEP /cfg=$cfg /p" -e "s/^DP_PARAMS /params /p" >>"$raw"
    echo "== $net $cfg repeat $r: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s, load $(cut -d' ' -f1 /proc/loadavg)" >&2
}

for r in $(seq 1 "$repeats"); do
    for net in $nets; do
        [ "$net" = unet-cpu ] && [ "$r" -gt "$cpu_repeats" ] && continue
        for cfg in $configs; do run_one "$net" "$cfg" "$r"; done
    done
done

# ---- the bare collectives at the stores' sizes (bench/mpi_allreduce.c) --------
# floats of store S of phase P of net N, from the DP_PARAMS lines (0: none)
floats() { # NET PHASE STORE
    sed -n "s/^params net=$1 .*$2=\([^ ]*\).*/\1/p" "$raw" | head -1 | tr ',' '\n' |
        awk -F: -v k="$3" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }'
}
# the all-reduces (fast) or all-gathers (deterministic) of one step, in floats:
# teacher: its net; distillation: generator, fake score, ratio estimator's
# head and backbone (fast: one each; deterministic: one per update, so head
# and backbone together)
step_sizes() { # NET PHASE fast|det
    if [ "$2" = teacher ]; then
        floats "$1" teacher teacher
        return
    fi
    local q b
    floats "$1" distill gen
    floats "$1" distill fake
    q=$(floats "$1" distill ratio) b=$(floats "$1" distill ratio_net)
    if [ "$3" = fast ]; then echo "$q"; echo "$b"; else echo $((q + b)); fi
}
coll_spin="$work/coll_spin.txt" coll_yield="$work/coll_yield.txt"
: >"$coll_spin"
: >"$coll_yield"
if [ "$have_mpi" = 1 ] && command -v mpicc >/dev/null &&
        mpicc -O2 "$here/mpi_allreduce.c" -o "$work/mpi_allreduce" 2>"$work/mpicc.log"; then
    sizes="$(for net in $nets; do for ph in teacher distill; do step_sizes "$net" $ph fast; step_sizes "$net" $ph det; done; done |
             awk '$1 > 0' | sort -nu | tr '\n' ' ')"
    # shellcheck disable=SC2086
    env "${mpi_env[@]}" OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe --bind-to none "$work/mpi_allreduce" $sizes \
        >"$coll_spin" 2>"$work/coll.log" || echo "dp_scaling.sh: mpi_allreduce failed" >&2
    # shellcheck disable=SC2086
    env "${mpi_env[@]}" OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 \
        "$work/mpi_allreduce" $sizes >"$coll_yield" 2>>"$work/coll.log" || echo "dp_scaling.sh: mpi_allreduce failed" >&2
else
    [ "$have_mpi" = 1 ] && echo "dp_scaling.sh: no mpicc (or it failed): no bare-collective columns" >&2
fi
# bare milliseconds per step: the sum over step_sizes of the median call
bare() { # NET PHASE fast|det FILE
    [ -s "$4" ] || { echo n/a; return; }
    local key
    key=$([ "$3" = fast ] && echo allreduce_ms || echo allgather_ms)
    step_sizes "$1" "$2" "$3" | awk -v k="$key" -v file="$4" '
        BEGIN { while ((getline line < file) > 0) { delete v; n = split(line, f, " ")
                    for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
                    ms[v["floats"]] = v[k] } }
        $1 > 0 { if (!($1 in ms)) { bad = 1 } else sum += ms[$1] }
        END { if (bad) print "n/a"; else print sum + 0 }'
}
t_end=$(date +%s)

# ---- table -----------------------------------------------------------------------
# median over every interval of every repeat of (net, phase, cfg); field f:
# ms, comm_ms, or share (comm_ms / ms of the same interval)
stat() { # NET PHASE CFG FIELD
    awk -v net="$1" -v phase="$2" -v cfg="$3" -v f="$4" '
        { delete v; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
          if (v["net"] != net || v["phase"] != phase || v["cfg"] != cfg) next
          n1 = split(v["ms"], ms, ","); n2 = split(v["comm_ms"], cm, ",")
          for (i = 1; i <= n1; i++) {
              if (f == "ms") print ms[i]
              else if (cm[i] == "-") continue
              else if (f == "comm_ms") print cm[i]
              else print cm[i] / ms[i] } }' "$raw" |
        sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a";
                           else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
fmt() { awk -v x="$1" 'BEGIN { if (x == "n/a") print "n/a"; else if (x < 1) printf "%.3f", x; else printf "%.2f", x }'; }
pct() { awk -v x="$1" 'BEGIN { if (x == "n/a") print "n/a"; else printf "%.0f %%", 100 * x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f×", a / b }'; }
batch_of() { sed -n "s/.*net=$1 phase=$2 .* batch=\([0-9]*\).*/\1/p" "$raw" | head -1; }
label_of() {
    if [ "$2" = teacher ]; then echo "teacher DSM"
    elif [ "$1" = mlp ]; then echo "distill kl + classifier"
    else echo "distill kl + gan-head"; fi
}

echo
echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), load at the end $(cut -d' ' -f1-3 /proc/loadavg);" \
     "$repeats repeat(s) (unet-cpu: $cpu_repeats); $(( t_end - t_start )) s in all"
echo "ms: per step, median over the timed log intervals of every repeat (warm-up interval left out)"
echo
echo "| net | step | global batch | 1 rank, 1 thr (ms) | 1 rank, 2 thr (ms) | 2 ranks fast (ms) | speedup 1→2 ranks | 2 ranks deterministic (ms) | det. / fast | 2 ranks fast, yield (ms) | speedup, yield |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for net in $nets; do
    for phase in teacher distill; do
        b="$(batch_of "$net" "$phase")"
        [ -n "$b" ] || continue
        a11="$(stat "$net" "$phase" 1r1t ms)" a12="$(stat "$net" "$phase" 1r2t ms)" a2="$(stat "$net" "$phase" 2r ms)"
        ad="$(stat "$net" "$phase" 2rdet ms)" ay="$(stat "$net" "$phase" 2ry ms)"
        echo "| $net | $(label_of "$net" "$phase") | $b | $(fmt "$a11") | $(fmt "$a12") | $(fmt "$a2") | $(ratio "$a11" "$a2") | $(fmt "$ad") | $(ratio "$ad" "$a2") | $(fmt "$ay") | $(ratio "$a11" "$ay") |"
    done
done
echo
echo "communication at 2 ranks: share = comm_seconds / seconds of metrics.jsonl (rank 0's wall time inside"
echo "collectives, waiting for the other rank included), median over the intervals; bare = bench/mpi_allreduce.c"
echo "at the step's store sizes, barrier first (no waiting for a slower rank), spinning (Open MPI's default) or"
echo "with mpi_yield_when_idle = 1, summed over the step's collectives"
echo
echo "| net | step | floats reduced / step | comm share (fast) | comm ms/step (fast) | bare all-reduce ms/step (spin) | comm share (det.) | bare all-gather ms/step (spin) | comm share (fast, yield) | comm ms/step (yield) | bare all-reduce ms/step (yield) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for net in $nets; do
    for phase in teacher distill; do
        [ -n "$(batch_of "$net" "$phase")" ] || continue
        n="$(step_sizes "$net" "$phase" fast | awk '{ s += $1 } END { print s + 0 }')"
        echo "| $net | $(label_of "$net" "$phase") | $n | $(pct "$(stat "$net" "$phase" 2r share)") | $(fmt "$(stat "$net" "$phase" 2r comm_ms)") |" \
             "$(fmt "$(bare "$net" "$phase" fast "$coll_spin")") | $(pct "$(stat "$net" "$phase" 2rdet share)") |" \
             "$(fmt "$(bare "$net" "$phase" det "$coll_spin")") | $(pct "$(stat "$net" "$phase" 2ry share)") |" \
             "$(fmt "$(stat "$net" "$phase" 2ry comm_ms)") | $(fmt "$(bare "$net" "$phase" fast "$coll_yield")") |"
    done
done
if [ -s "$coll_spin" ]; then
    echo
    echo "bare collectives, 2 ranks (ms, median of 50 calls each):"
    echo
    echo "| floats | MB | MPI_Allreduce (spin) | MPI_Allgather (spin) | MPI_Allreduce (yield) | MPI_Allgather (yield) |"
    echo "|---|---|---|---|---|---|"
    awk 'FNR == 1 { file++ } { delete v; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
         n = v["floats"]; if (file == 1) { order[++k] = n; ar[n] = v["allreduce_ms"]; ag[n] = v["allgather_ms"] }
         else { yr[n] = v["allreduce_ms"]; yg[n] = v["allgather_ms"] } }
         END { for (i = 1; i <= k; i++) { n = order[i]
               printf "| %d | %.3f | %.3f | %.3f | %s | %s |\n", n, 4e-6 * n, ar[n], ag[n],
                      (n in yr) ? sprintf("%.3f", yr[n]) : "n/a", (n in yg) ? sprintf("%.3f", yg[n]) : "n/a" } }' \
        "$coll_spin" "$coll_yield"
fi
[ -n "${KEEP:-}" ] && echo && echo "raw lines: $raw"
exit "$status"
