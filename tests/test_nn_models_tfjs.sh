#!/usr/bin/env bash
# Every TF.js graph model in models/human runs through `facekit nn run` and matches @tensorflow/tfjs
# (tests/ref/tfjs_ref.js, pure JS CPU backend) on a seeded random input and on a real face (an LFW photo from
# ../shared/data): per output max |ours - ref| / max(1, |ref|) <= 1e-4. Prints the largest error per model.
# The random input also runs with --reference (plain C kernels) so that both kernel sets are covered.
# Then the same on small synthetic models (tests/ref/tfjs_synth.js) that use the TF ops and attribute forms
# the face models do not (explicit/dilated conv, Conv2DBackpropInput, StridedSlice masks, MirrorPad, ...).
set -u
bin=${FK_BIN:?} models=${FK_MODELS_DIR:?} data=${FK_DATA:?} src=${FK_SOURCE_DIR:?}
ref="$src/tests/ref/tfjs_ref.js"
tol=1e-4
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1" >&2; fi; }

face="$data/lfw-view1/images/Abdullah_Gul/Abdullah_Gul_0013.jpg"
check "test data present: $face (../shared/data is required)" '[ -f "$face" ]'
check "node and the reference runtime are installed (cd tests/ref && npm ci --ignore-scripts)" \
    '[ -d "$src/tests/ref/node_modules/@tensorflow/tfjs" ] && command -v node >/dev/null'

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# run_case NAME MODEL.json CASE MODE REF_ARGS... : reference, then ours on the same input files, then compare
# each output.
run_case() {
    local m=$1 json=$2 case=$3 mode=$4; shift 4
    local r="$tmp/$m-$case-ref" o="$tmp/$m-$case-$mode" worst=0 ins=() line
    if [ ! -f "$r/io.txt" ] && ! node "$ref" "$json" "$r" "$@" >"$tmp/ref.log" 2>&1; then
        check "$m $case: reference failed: $(tail -3 "$tmp/ref.log")" false
        return
    fi
    while read -r kind name file; do
        [ "$kind" = input ] && ins+=(--input "$name=$file")
    done <"$r/io.txt"
    mkdir -p "$o"
    local extra=()
    [ "$mode" = reference ] && extra=(--reference)
    [ "${3:-}" = --size ] && extra+=(--size "$4")
    if ! "$bin" nn run "$json" "${ins[@]}" --output-dir "$o" "${extra[@]}" >"$tmp/run.log" 2>&1; then
        check "$m $case $mode: facekit nn run failed: $(tail -3 "$tmp/run.log")" false
        return
    fi
    while read -r kind name file; do
        [ "$kind" = output ] || continue
        local ours="$o/$(echo "$name" | tr '/:' '__').npy" res err
        res=$(node "$ref" --compare "$ours" "$file" 2>&1)
        err=${res#max_err }
        check "$m $case $mode output $name: $res (tolerance $tol)" \
            '[ "$err" != "$res" ] && awk -v e="$err" -v t="$tol" "BEGIN { exit !(e <= t) }"'
        worst=$(awk -v a="$worst" -v b="$err" 'BEGIN { if (b + 0 > a + 0 || b == "NaN") print b; else print a }')
    done <"$r/io.txt"
    printf '%-26s %-6s %-9s max error %s\n' "$m" "$case" "$mode" "$worst"
}

for m in blazeface facemesh-detection-short facemesh-detection-full facemesh iris mobilefacenet mobileface \
         faceres antispoof liveness selfie meet emotion; do
    check "model file $m.json present" '[ -f "$models/human/$m.json" ]' || continue
    run_case "$m" "$models/human/$m.json" random default --random 7
    run_case "$m" "$models/human/$m.json" random reference --random 7
    run_case "$m" "$models/human/$m.json" face default --image "$face"
done

# A caller-chosen input size: the detector's anchors scale with the image (Shape/Pack chain re-folded).
run_case facemesh-detection-short "$models/human/facemesh-detection-short.json" size256 default --random 5 --size 256x256

synth=$(node "$src/tests/ref/tfjs_synth.js" "$tmp/synth" 2>"$tmp/synth.log")
check "synthetic models written: $(tail -3 "$tmp/synth.log")" '[ -n "$synth" ]'
for m in $synth; do
    run_case "synth-$m" "$tmp/synth/$m/model.json" random default --random 11
    run_case "synth-$m" "$tmp/synth/$m/model.json" random reference --random 11
done

echo "$pass passed, $fail failed"
[ $fail = 0 ]
