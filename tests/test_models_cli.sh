#!/usr/bin/env bash
# `facekit models` passes on the fetched models and fails, naming the file, when one byte of a model differs.
set -u
bin=${FK_BIN:?} models=${FK_MODELS_DIR:?}
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1" >&2; fi; }

out=$("$bin" models 2>&1); rc=$?
check "models ok on fetched files (rc=$rc): $out" '[ $rc = 0 ]'
check "every line says ok" '[ "$(echo "$out" | grep -vc " ok$")" = 0 ]'
check "lists fr_feature" 'echo "$out" | grep -q "faceplugin/fr_feature.onnx"'

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -rL "$models"/. "$tmp"/   # -L: a models dir made of symlinks must not let the test delete the real files
# flip one byte in the middle of fr_landmark.onnx
f="$tmp/faceplugin/fr_landmark.onnx"
size=$(stat -c %s "$f"); off=$((size / 2))
orig=$(dd if="$f" bs=1 skip=$off count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
printf "\\$(printf %o $(( (orig + 1) % 256 )))" | dd of="$f" bs=1 seek=$off count=1 conv=notrunc 2>/dev/null
out=$(FK_MODELS_DIR=$tmp "$bin" models 2>&1); rc=$?
check "corrupted byte fails (rc=$rc)" '[ $rc != 0 ]'
check "names the corrupted file" 'echo "$out" | grep "fr_landmark.onnx" | grep -q "sha256 differs"'
rm "$tmp/human/iris.bin"
out=$(FK_MODELS_DIR=$tmp "$bin" models 2>&1); rc=$?
check "missing file named" 'echo "$out" | grep "human/iris.bin" | grep -q missing'
check "version prints" '"$bin" version | grep -q "^facekit [0-9]"'
echo "$pass passed, $fail failed"
[ $fail = 0 ]
