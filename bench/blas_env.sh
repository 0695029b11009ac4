# bench/blas_env.sh — sourced by bench/run.sh and bench/ddpmpp_cpu.sh: one
# BLAS kernel family for both sides of a comparison. Unset, OPENBLAS_CORETYPE
# becomes the family the workbench runs with (`workbench version`; it may
# override OpenBLAS's own pick, host/cli/process_tuning.h), so torch's BLAS
# calls get the same kernels. Needs $build (the build folder).
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -x "$build/workbench" ]; then
    core="$("$build/workbench" version 2>/dev/null | sed -n 's/^blas *OpenBLAS, \([A-Za-z0-9]*\) kernels.*/\1/p')"
    [ -n "$core" ] && export OPENBLAS_CORETYPE="$core"
fi
echo "== OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset, OpenBLAS decides} for both sides" >&2
