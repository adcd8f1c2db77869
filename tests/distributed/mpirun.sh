#!/usr/bin/env bash
# Runs a program under MPI with N ranks on this machine, for the ctest
# tests of cgrad_distributed. Open MPI needs --oversubscribe for more ranks
# than cores and, run as root (CI containers), OMPI_ALLOW_RUN_AS_ROOT*.
# A job that hangs is killed after 300 s.
# Usage: mpirun.sh <mpiexec> <np> <program> [args...]
set -euo pipefail
mpiexec=$1 np=$2
shift 2
flags=()
if "$mpiexec" --version 2>&1 | grep -qE "Open MPI|OpenRTE"; then
  flags+=(--oversubscribe)
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
exec timeout 300 "$mpiexec" "${flags[@]}" -np "$np" "$@"
