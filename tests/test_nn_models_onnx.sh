#!/bin/bash
# test_nn_models_onnx.sh — every faceplugin ONNX model run by `facekit nn run` (fast kernels, and the plain
# C reference kernels with --reference) against ONNX Runtime (tests/ref/ort_ref.js, 1 thread) on a seeded
# random input and on a real face (an LFW photo, cropped and resized in JS): per output,
# max |ours - ref| / max(1, |ref|) <= 1e-4. Also fr_detect at 480x640: the boxes branch adds priors exported
# for 240x320, so the whole model must be refused cleanly, and outputs scores,462 must match ORT.
# Then small synthetic models (tests/ref/onnx_synth.js) for the ops and opsets the faceplugin models lack.
# Env: FK_BIN, FK_MODELS_DIR, FK_DATA, FK_SOURCE_DIR. Needs tests/ref/node_modules (npm ci --ignore-scripts).
set -u
FK_SOURCE_DIR=${FK_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
FK_MODELS_DIR=${FK_MODELS_DIR:-$FK_SOURCE_DIR/models}
FK_DATA=${FK_DATA:-$FK_SOURCE_DIR/../shared/data}
FK_BIN=${FK_BIN:-$FK_SOURCE_DIR/build/facekit}
REF=$FK_SOURCE_DIR/tests/ref
TOL=${FK_ONNX_TOL:-1e-4}
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

[ -x "$FK_BIN" ] || { bad "no facekit binary at $FK_BIN"; finish; }
[ -d "$REF/node_modules/onnxruntime-node" ] || { bad "no ONNX Runtime in $REF/node_modules (cd tests/ref && npm ci --ignore-scripts)"; finish; }
[ -d "$REF/node_modules/jpeg-js" ] || { bad "no jpeg-js in $REF/node_modules (cd tests/ref && npm ci --ignore-scripts)"; finish; }
FACE=$FK_DATA/lfw-view1/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg
[ -f "$FACE" ] || { bad "test data missing: $FACE (../shared/data)"; finish; }

T=$(mktemp -d "${TMPDIR:-/tmp}/fk_nn_onnx.XXXXXX")
trap 'rm -rf "$T"' EXIT

# LFW deep-funneled photos are 250x250 with the face in the middle: a face crop and an eye crop.
face_crop() {
    case $1 in
        fr_detect) echo "" ;;
        fr_eye) echo "--crop 88,100,34,34" ;;
        *) echo "--crop 62,62,126,126" ;;
    esac
}

# run_case MODEL CASE [ort_ref args...]: ORT reference, then ours (fast and reference kernels), compare.
run_case() {
    local m=$1 case=$2
    shift 2
    local model=$FK_MODELS_DIR/faceplugin/$m.onnx d=$T/$m.$case
    if ! node "$REF/ort_ref.js" "$model" "$d/ort" "$@" 2>"$d.err"; then
        bad "$m $case: ORT failed: $(cat "$d.err")"
        return
    fi
    local size=() ; for a in "$@"; do [ "${prev:-}" = "--size" ] && size=(--size "$a"); prev=$a; done; prev=
    for kind in fast reference; do
        local flag=() ; [ $kind = reference ] && flag=(--reference)
        mkdir -p "$d/$kind"
        if ! "$FK_BIN" nn run "$model" --input "input=$d/ort/in_input.npy" --output-dir "$d/$kind" \
            "${size[@]}" "${flag[@]}" >"$d.$kind.log" 2>&1; then
            bad "$m $case $kind: facekit nn run failed: $(cat "$d.$kind.log")"
            continue
        fi
        if node "$REF/ort_compare.js" "$d/ort" "$d/$kind" --tol "$TOL" --label "$m $case $kind"; then ok; else bad "$m $case $kind: outputs differ from ONNX Runtime"; fi
    done
}

for m in fr_detect fr_landmark fr_feature fr_liveness fr_pose fr_age fr_gender fr_eye fr_expression; do
    if [ ! -f "$FK_MODELS_DIR/faceplugin/$m.onnx" ]; then bad "model missing: $m (scripts/setup fetches it)"; continue; fi
    mkdir -p "$T/$m.random" "$T/$m.face"
    run_case "$m" random --random 7
    # shellcheck disable=SC2046
    run_case "$m" face --face "$FACE" $(face_crop "$m")
done

# Synthetic models (tests/ref/onnx_synth.js) for ops, attribute forms and opsets the faceplugin models do
# not use: each on a seeded random input, fast and reference kernels against ORT.
mkdir -p "$T/synth"
if node "$REF/onnx_synth.js" "$T/synth" >"$T/synth.list" 2>"$T/synth.err"; then
    while read -r c; do
        model=$T/synth/$c.onnx
        d=$T/synth/$c
        mkdir -p "$d"
        if ! node "$REF/ort_ref.js" "$model" "$d/ort" --random 3 2>"$d.err"; then
            bad "synth $c: ORT failed: $(cat "$d.err")"
            continue
        fi
        ins=()
        for f in "$d"/ort/in_*.npy; do n=${f##*/in_}; ins+=(--input "${n%.npy}=$f"); done
        for kind in fast reference; do
            flag=() ; [ $kind = reference ] && flag=(--reference)
            mkdir -p "$d/$kind"
            if ! "$FK_BIN" nn run "$model" "${ins[@]}" --output-dir "$d/$kind" "${flag[@]}" >"$d.$kind.log" 2>&1; then
                bad "synth $c $kind: facekit nn run failed: $(cat "$d.$kind.log")"
                continue
            fi
            if node "$REF/ort_compare.js" "$d/ort" "$d/$kind" --tol "$TOL" --label "synth $c $kind"; then ok; else bad "synth $c $kind: outputs differ from ONNX Runtime"; fi
        done
    done <"$T/synth.list"
else
    bad "onnx_synth.js failed: $(cat "$T/synth.err")"
fi

# fr_detect at 480x640 (the size a camera gives). The boxes branch adds priors exported for 240x320, so the
# model as a whole cannot run at this size: ours must refuse cleanly, and with --outputs scores,462 (462 =
# raw box regressions, which the face layer decodes with its own priors) must match ORT run on the same
# pruned graph.
m=fr_detect
d=$T/$m.vga
mkdir -p "$d/fast" "$d/reference" "$d/full"
if node "$REF/ort_ref.js" "$FK_MODELS_DIR/faceplugin/$m.onnx" "$d/ort" --size 480x640 --outputs scores,462 \
    --face "$FACE" 2>"$d.err"; then
    for kind in fast reference; do
        flag=() ; [ $kind = reference ] && flag=(--reference)
        if "$FK_BIN" nn run "$FK_MODELS_DIR/faceplugin/$m.onnx" --size 480x640 --outputs scores,462 "${flag[@]}" \
            --input "input=$d/ort/in_input.npy" --output-dir "$d/$kind" >"$d.log" 2>&1; then
            if node "$REF/ort_compare.js" "$d/ort" "$d/$kind" --tol "$TOL" --label "$m 480x640 $kind"; then ok; else bad "$m 480x640 $kind: outputs differ"; fi
        else
            bad "$m 480x640 $kind: facekit nn run --outputs scores,462 failed: $(cat "$d.log")"
        fi
    done
    if "$FK_BIN" nn run "$FK_MODELS_DIR/faceplugin/$m.onnx" --size 480x640 --input "input=$d/ort/in_input.npy" \
        --output-dir "$d/full" >"$d.log" 2>&1; then
        bad "$m 480x640: ours ran the whole model although its priors are for 240x320"
    else
        status=$?
        if [ $status -lt 128 ] && grep -q "node '" "$d.log"; then ok; else bad "$m 480x640: exit $status: $(cat "$d.log")"; fi
        echo "$m 480x640 full model: ours refuses: $(tr '\n' ' ' <"$d.log")"
    fi
else
    bad "$m 480x640: ORT failed: $(cat "$d.err")"
fi
finish
