#!/usr/bin/env bash
# `facekit eval lfw` and `facekit eval detect` end to end on ../shared/data: the first 50 same + 50 different
# pairs of LFW View 1 DevTest (threshold from the first 10 + 10 of DevTrain) must reach accuracy >= 0.97
# with no faceless image; dlib detection recall >= 0.95 at <= 1 false positive per image (dogs.jpg
# included); CompreFace recall >= 0.95; argument and data errors fail with a message. Missing data FAILS.
# The full 1,000-pair run is bench/accuracy.sh (too slow for `make test`).
set -u
bin=${FK_BIN:?} data=${FK_DATA:?}
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1" >&2; fi; }
# value of KEY in a one-line JSON object
jget() { echo "$1" | sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p" | tr -d '"'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 <= b + 0) }'; }

lfw=$data/lfw-view1
check "LFW View 1 data present at $lfw (set FK_DATA)" '[ -f "$lfw/pairsDevTest.txt" ] && [ -d "$lfw/images" ]'
check "dlib detection data present" '[ -f "$data/detection/dlib/training.xml" ]'
check "compreface detection data present" '[ -f "$data/detection/compreface/nose_points.txt" ]'

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
{ echo 50; sed -n 2,51p "$lfw/pairsDevTest.txt"; sed -n 502,551p "$lfw/pairsDevTest.txt"; } > "$tmp/test100.txt"
{ echo 10; sed -n 2,11p "$lfw/pairsDevTrain.txt"; sed -n 1102,1111p "$lfw/pairsDevTrain.txt"; } > "$tmp/train20.txt"
{ echo 5; sed -n 2,6p "$lfw/pairsDevTest.txt"; sed -n 502,506p "$lfw/pairsDevTest.txt"; } > "$tmp/test10.txt"

out=$("$bin" eval lfw --pairs "$tmp/test100.txt" --train "$tmp/train20.txt" --root "$lfw/images" --threads 2 \
      --scores "$tmp/scores.tsv" 2>&1); rc=$?
json=$(echo "$out" | tail -n 1)
check "eval lfw runs (rc=$rc): $out" '[ $rc = 0 ]'
check "last line is the JSON summary: $json" 'echo "$json" | grep -q "^{\"accuracy\":.*\"no_face\":.*\"pairs\":100.*}$"'
check "accuracy >= 0.97: $(jget "$json" accuracy)" 'ge "$(jget "$json" accuracy)" 0.97'
check "no image without a face: $(jget "$json" no_face)" '[ "$(jget "$json" no_face)" = 0 ]'
check "threshold from the training list" '[ "$(jget "$json" protocol)" = train-threshold ]'
check "AUC >= 0.99: $(jget "$json" auc)" 'ge "$(jget "$json" auc)" 0.99'
check "scores file has 100 pairs" '[ "$(grep -vc "^#" "$tmp/scores.tsv")" = 100 ]'

# a faceless image makes its pairs errors (never skipped): point one pair at a picture with no face
first=$(sed -n 2p "$tmp/test10.txt" | cut -f1)
mkdir -p "$tmp/root"
for name in $(sed 1d "$tmp/test10.txt" | awk -F'\t' '{ print $1; if (NF == 4) print $3 }' | sort -u); do
    if [ "$name" = "$first" ]; then cp -r "$lfw/images/$name" "$tmp/root/"; else ln -s "$lfw/images/$name" "$tmp/root/$name"; fi
done
idx=$(sed -n 2p "$tmp/test10.txt" | cut -f2)
noface=$(printf "%s/root/%s/%s_%04d.jpg" "$tmp" "$first" "$first" "$idx")
cp "$data/detection/compreface/017_0.jpg" "$noface"
out=$("$bin" eval lfw --pairs "$tmp/test10.txt" --root "$tmp/root" --threads 2 2>&1); rc=$?
json=$(echo "$out" | tail -n 1)
check "runs with a faceless image (rc=$rc)" '[ $rc = 0 ]'
check "no_face counts it: $json" '[ "$(jget "$json" no_face)" = 1 ]'
check "its pairs count as errors and are not skipped" '[ "$(jget "$json" pairs)" = 10 ] && echo "$out" | grep -q "no face: .*${first}_"'
check "self-threshold is announced" 'echo "$out" | grep -q "threshold chosen on this same list"'

# errors: a missing image, a malformed pairs file, bad usage
rm "$noface"
out=$("$bin" eval lfw --pairs "$tmp/test10.txt" --root "$tmp/root" 2>&1); rc=$?
check "missing image fails (rc=$rc)" '[ $rc = 1 ] && echo "$out" | grep -q "${first}_"'
printf '1\nA\t1\t2\nA\t1\tB\n' > "$tmp/bad.txt"
out=$("$bin" eval lfw --pairs "$tmp/bad.txt" --root "$tmp/root" 2>&1); rc=$?
check "malformed pairs file fails with line number (rc=$rc): $out" '[ $rc = 1 ] && echo "$out" | grep -q "bad.txt:3: expected a different-person pair"'
"$bin" eval lfw --root "$tmp/root" >/dev/null 2>&1; rc=$?
check "missing --pairs is a usage error (rc=$rc)" '[ $rc = 2 ]'
"$bin" eval detect --dataset nope >/dev/null 2>&1; rc=$?
check "unknown dataset is a usage error (rc=$rc)" '[ $rc = 2 ]'

# calibrate lfw: the same pairs parser and embedding pool as eval lfw; the manifest it writes opens an engine
out=$("$bin" calibrate lfw --pairs "$tmp/train20.txt" --root "$lfw/images" --out "$tmp/manifest.json" --threads 2 2>&1); rc=$?
check "calibrate lfw runs (rc=$rc): $out" '[ $rc = 0 ] && [ "$(jget "$out" pairs)" = 20 ] && [ "$(jget "$out" images_without_face)" = 0 ]'
check "manifest names its fit" 'grep -q "\"format\": \"facekit-model-manifest\"" "$tmp/manifest.json" && grep -q "\"pairs\": 20" "$tmp/manifest.json"'
a=$(sed -n 2p "$tmp/train20.txt" | awk -F'\t' '{ printf "%s/%s/%s_%04d.jpg", "'"$lfw/images"'", $1, $1, $2 }')
b=$(sed -n 2p "$tmp/train20.txt" | awk -F'\t' '{ printf "%s/%s/%s_%04d.jpg", "'"$lfw/images"'", $1, $1, $3 }')
out=$(FK_MANIFEST="$tmp/manifest.json" "$bin" compare "$a" "$b" 2>&1); rc=$?
check "an engine opens with the fitted manifest and calls a same pair same (rc=$rc): $out" '[ $rc = 0 ] && [ "$(jget "$out" same)" = true ]'
out=$("$bin" calibrate lfw --pairs "$tmp/bad.txt" --root "$lfw/images" --out "$tmp/m2.json" 2>&1); rc=$?
check "calibrate: malformed pairs file fails with line number (rc=$rc): $out" '[ $rc = 1 ] && echo "$out" | grep -q "bad.txt:3:"'
"$bin" calibrate lfw --pairs "$tmp/train20.txt" >/dev/null 2>&1; rc=$?
check "calibrate without --root/--out is a usage error (rc=$rc)" '[ $rc = 2 ]'

# detection
out=$("$bin" eval detect --dataset dlib 2>&1); rc=$?
json=$(echo "$out" | tail -n 1)
check "eval detect dlib runs (rc=$rc): $out" '[ $rc = 0 ]'
check "dlib: 10 images incl. dogs.jpg, 43 faces: $json" '[ "$(jget "$json" images)" = 10 ] && [ "$(jget "$json" faces)" = 43 ]'
check "dlib recall >= 0.95: $(jget "$json" recall)" 'ge "$(jget "$json" recall)" 0.95'
check "dlib false positives per image <= 1: $(jget "$json" fp_per_image)" 'le "$(jget "$json" fp_per_image)" 1'
check "per-image lines" 'echo "$out" | grep -q "dogs.jpg .* faces  0"'
out=$("$bin" eval detect --dataset compreface 2>&1); rc=$?
json=$(echo "$out" | tail -n 1)
check "eval detect compreface runs (rc=$rc): $out" '[ $rc = 0 ]'
check "compreface: 18 images, 46 faces: $json" '[ "$(jget "$json" images)" = 18 ] && [ "$(jget "$json" faces)" = 46 ]'
check "compreface recall >= 0.95: $(jget "$json" recall)" 'ge "$(jget "$json" recall)" 0.95'
check "compreface false positives per image <= 1: $(jget "$json" fp_per_image)" 'le "$(jget "$json" fp_per_image)" 1'
out=$("$bin" eval detect --dataset dlib --root "$tmp/nowhere" 2>&1); rc=$?
check "missing ground truth fails (rc=$rc): $out" '[ $rc = 1 ] && echo "$out" | grep -q "training.xml"'

echo "$pass passed, $fail failed"
[ $fail = 0 ]
