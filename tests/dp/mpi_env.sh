# tests/dp/mpi_env.sh — sourced by the data-parallel tests: Open MPI's mpirun
# as these machines need it. Root (CI, containers) must be allowed
# explicitly; two cores carry up to four ranks (--oversubscribe); the
# shared-memory transport's single-copy mode needs ptrace rights containers
# lack; one thread per rank, so ranks do not fight for the cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1
MPIRUN="mpirun --oversubscribe --bind-to none"
if ! command -v mpirun >/dev/null; then
  echo "SKIP: mpirun not found (Debian: openmpi-bin)"
  exit 77
fi
