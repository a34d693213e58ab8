#!/usr/bin/env bash
# One model on several machines without a scheduler: mpirun starts the ranks listed in a
# host file (one line per machine, "name:slots" for MPICH, "name slots=N" for Open MPI).
# Every machine needs the same charrnn (pip install 'charrnn[fast,mpi]'), the corpus at
# the same path, and the checkpoint directory on a shared file system (rank 0 writes it,
# every rank reads it on --resume); ssh from this machine to the others without a
# password, as MPI launchers need.
#
#   examples/mpirun_hosts.sh hosts.txt corpora/big.txt --time-limit 1h
#   NP=8 examples/mpirun_hosts.sh hosts.txt corpora/big.txt --time-limit +30m --resume   # resume, any NP
#
# Ctrl-C here stops every rank at the same step; rank 0 saves it (exit 130).
set -euo pipefail

HOSTS=${1:?usage: examples/mpirun_hosts.sh HOSTFILE CORPUS [charrnn train options...]}
CORPUS=${2:?usage: examples/mpirun_hosts.sh HOSTFILE CORPUS [charrnn train options...]}
shift 2
NP=${NP:-$(awk -F'[: =]+' 'NF && $1 !~ /^#/ {n += ($NF ~ /^[0-9]+$/ && NF > 1) ? $NF : 1} END {print n}' "$HOSTS")}
RUN_DIR=${RUN_DIR:-checkpoints/$(basename "${CORPUS%.*}")}

exec mpiexec -f "$HOSTS" -n "$NP" charrnn train "$CORPUS" --checkpoint-dir "$RUN_DIR" "$@"
