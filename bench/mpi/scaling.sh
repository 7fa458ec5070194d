#!/usr/bin/env bash
# Data-parallel scaling on one machine: `quill train --preset tiny` for STEPS steps as 1 rank x 2 threads and as
# 2 ranks x 1 thread (mpirun), alternated ROUNDS times so that both see the same background load. Prints each run's
# tokens/s (from the "done:" line) and rank 0's communication figures. Usage: bench/mpi/scaling.sh DATA [STEPS] [ROUNDS]
# (DATA: a folder `quill prepare` wrote). Needs Open MPI's mpirun; as root, export OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
data="${1:?usage: bench/mpi/scaling.sh DATA [STEPS] [ROUNDS]}"
steps="${2:-40}"
rounds="${3:-3}"
"$root/quill" version >/dev/null # build once before timing
cli="$root/.build/cli/Quill.Cli.dll"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rate() { sed -n 's/^done: .* \([0-9,]*\) tokens in \([0-9.]*\)s.*/\1 \2/p' "$1" | tr -d , | awk '{ printf "%.0f", $1 / $2 }'; }
for ((i = 1; i <= rounds; i++)); do
  dotnet "$cli" train --preset tiny --data "$data" --out "$work/one-$i" --max-steps "$steps" --threads 2 2> "$work/one-$i.log" > /dev/null
  echo "round $i: 1 rank x 2 threads: $(rate "$work/one-$i.log") tok/s"
  mpirun -np 2 dotnet "$cli" train --preset tiny --data "$data" --out "$work/two-$i" --max-steps "$steps" 2> "$work/two-$i.log" > /dev/null
  echo "round $i: 2 ranks x 1 thread: $(rate "$work/two-$i.log") tok/s; $(grep '^communication' "$work/two-$i.log")"
done
