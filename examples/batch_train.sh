#!/usr/bin/env bash
# Train one model per corpus in a directory, a few at a time, then compare them.
#
#   examples/batch_train.sh [CORPUS_DIR [charrnn train options...]]
#   OUT=runs JOBS=2 TIME_LIMIT=30s examples/batch_train.sh ../shared/corpora --hidden-size 128 --layers 1
#
# Environment: OUT (default checkpoints/batch), JOBS parallel runs (default 2),
# TIME_LIMIT per run (default 10m), CHARRNN (default charrnn), USE_PARALLEL=1 to
# use GNU parallel instead of xargs. Each run writes its own OUT/<name>/
# (checkpoints, metrics.jsonl), its log to OUT/<name>.log and its JSON summary to
# OUT/<name>.json. Progress bars turn themselves off since stderr is a file.
# Exits 1 if any run failed; the others are still compared. Running it again over
# the same OUT: add --resume to continue the runs, or --overwrite to start over.
set -uo pipefail

CORPORA=${1:-corpora}
shift $(( $# > 0 ? 1 : 0 ))
export OUT=${OUT:-checkpoints/batch} TIME_LIMIT=${TIME_LIMIT:-10m} CHARRNN=${CHARRNN:-charrnn}
JOBS=${JOBS:-2}
mkdir -p "$OUT"

train_one() {  # CORPUS [options...]: one run, in a child shell of xargs or parallel
    local corpus=$1 name
    shift
    name=$(basename "$corpus")
    name=${name%.*}
    if $CHARRNN train "$corpus" --checkpoint-dir "$OUT/$name" --time-limit "$TIME_LIMIT" --json "$@" \
            >"$OUT/$name.json" 2>"$OUT/$name.log"; then
        echo "done    $name"
    else
        echo "FAILED  $name: $(tail -n 1 "$OUT/$name.log")"
        return 1
    fi
}
export -f train_one

shopt -s nullglob
files=("$CORPORA"/*.txt)
(( ${#files[@]} )) || { echo "no .txt files in $CORPORA" >&2; exit 2; }
echo "training ${#files[@]} corpora, $JOBS at a time, $TIME_LIMIT each, into $OUT/"
start=$SECONDS
status=0
if [[ ${USE_PARALLEL:-0} == 1 ]]; then
    parallel --line-buffer -j "$JOBS" train_one {} "$@" ::: "${files[@]}" || status=1
else
    # -0: file names may hold spaces; xargs exits 123 if any run failed
    printf '%s\0' "${files[@]}" | xargs -0 -P "$JOBS" -I{} bash -c 'train_one "$@"' _ {} "$@" || status=1
fi
echo "all runs finished in $(( SECONDS - start )) s"

# Compare: each model on the held-out validation part of its own corpus.
runs=() ckpts=()
for dir in "$OUT"/*/; do
    [[ -e $dir/best.npz ]] && runs+=("${dir%/}") && ckpts+=(-c "${dir%/}")
done
if (( ${#runs[@]} )); then
    echo
    $CHARRNN eval "${ckpts[@]}" || status=1
    $CHARRNN plot "${runs[@]}" -o "$OUT/loss.png" 2>&1 || echo "(no plot: see above)"
fi
exit $status
