# tests/dp/mpi_env.sh — sourced by the data-parallel tests: Open MPI's mpirun
# as these machines need it. Root (CI, containers) must be allowed
# explicitly; two cores carry up to four ranks (--oversubscribe); the
# shared-memory transport's single-copy mode needs ptrace rights containers
# lack; one thread per rank, so ranks do not fight for the cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1
# two cores carry up to four ranks: a rank waiting in a collective yields
# its core instead of spinning (bench/README.md, "Data-parallel scaling")
export OMPI_MCA_mpi_yield_when_idle=1
# Under scripts/sanitize.sh: ranks keep AddressSanitizer and UBSan, but not
# LeakSanitizer. Open MPI 4.1 leaves what MPI_Init allocated (libmpi,
# libopen-pal, hwloc, PMIx, its dlopen'ed components) unfreed at
# MPI_Finalize, and unloads the components first, so the reports' stacks
# end in "<unknown module>" and no suppression can name the library. The
# engine's data-parallel code is leak-checked in every single-rank test.
if [ -n "${ASAN_OPTIONS:-}" ]; then export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"; fi
MPIRUN="mpirun --oversubscribe --bind-to none"
if ! command -v mpirun >/dev/null; then
  echo "SKIP: mpirun not found (Debian: openmpi-bin)"
  exit 77
fi
