#!/usr/bin/env bash
# bench/accuracy.sh — the long accuracy runs behind docs/accuracy.md (minutes, not part of `make test`):
#   LFW View 1 DevTest with the threshold from DevTrain, without and with flip fusion;
#   detection recall / false positives per image on detection/dlib and detection/compreface at the
#   automatic working size and at 640x480.
# Usage: bench/accuracy.sh [BUILD_DIR] [OUT_DIR]   (defaults: build, $TMPDIR/facekit-accuracy-<date>)
# Env: FK_DATA (default ../shared/data), THREADS (default: nproc).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
bin=$build/facekit
data=${FK_DATA:-$here/../shared/data}
threads=${THREADS:-$(nproc)}
out=${2:-${TMPDIR:-/tmp}/facekit-accuracy-$(date -u +%Y%m%d-%H%M)}
[ -x "$bin" ] || { echo "no $bin: build first (make build)" >&2; exit 1; }
[ -f "$data/lfw-view1/pairsDevTest.txt" ] || { echo "no LFW View 1 under $data (set FK_DATA)" >&2; exit 1; }
mkdir -p "$out"
lfw=$data/lfw-view1
run() { # NAME COMMAND...: prints the command, keeps the full output, shows the summary lines
    local name=$1; shift
    echo "\$ $*" | sed "s|$data|\$FK_DATA|g; s|$build/||"
    "$@" > "$out/$name.txt" 2> "$out/$name.err" || { echo "FAILED: see $out/$name.err" >&2; exit 1; }
    grep -v "^  " "$out/$name.txt" | tail -n 4
    echo
}
echo "# facekit accuracy, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$here" rev-parse --short HEAD), $threads thread(s)"
run lfw_devtest "$bin" eval lfw --pairs "$lfw/pairsDevTest.txt" --train "$lfw/pairsDevTrain.txt" \
    --root "$lfw/images" --threads "$threads" --scores "$out/lfw_devtest_scores.tsv"
run lfw_devtest_flip "$bin" eval lfw --pairs "$lfw/pairsDevTest.txt" --train "$lfw/pairsDevTrain.txt" \
    --root "$lfw/images" --threads "$threads" --flip --scores "$out/lfw_devtest_flip_scores.tsv"
for ds in dlib compreface; do
    run "detect_${ds}" "$bin" eval detect --dataset "$ds" --root "$data/detection/$ds"
    run "detect_${ds}_640x480" "$bin" eval detect --dataset "$ds" --root "$data/detection/$ds" --size 640x480
done
echo "full outputs in $out"
