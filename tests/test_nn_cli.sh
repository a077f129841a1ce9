#!/usr/bin/env bash
# `facekit nn info|run|bench` on models/faceplugin/fr_landmark.onnx (ONNX front-end) and
# models/human/iris.json (TF.js): shapes and counts printed, outputs written as .npy and equal between the
# fast and the reference kernels, one JSON line from bench; and the error paths (missing file, garbage file,
# wrong input shape, unknown input name, bad arguments) fail with a message instead of crashing.
set -u
bin=${FK_BIN:?} models=${FK_MODELS_DIR:?}
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1" >&2; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

lm=$models/faceplugin/fr_landmark.onnx
[ -f "$lm" ] || { echo "FAIL: $lm missing (run scripts/setup)"; echo "0 passed, 1 failed"; exit 1; }

# npy writer in perl (always present on Debian): float32 C order, values from a fixed formula
mknpy() { # FILE "d0, d1, ..." COUNT
  perl -e '
    my ($f, $shape, $n) = @ARGV;
    my $h = "{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: ($shape), }";
    my $pad = 64 - (10 + length($h) + 1) % 64; $pad = 0 if $pad == 64;
    $h .= " " x $pad . "\n";
    open(my $o, ">:raw", $f) or die; print $o "\x93NUMPY\x01\x00" . pack("v", length $h) . $h;
    for my $i (0 .. $n - 1) { print $o pack("f<", (($i * 37) % 255) / 128.0 - 1.0); }
    close $o;' "$1" "$2" "$3"
}
# max |a - b| of two .npy files with 128-byte headers
maxdiff() {
  paste <(od -An -v -f -w4 -j128 "$1") <(od -An -v -f -w4 -j128 "$2") |
    awk 'BEGIN{m=0} {d=$1-$2; if (d<0) d=-d; if (d>m) m=d} END{printf "%.9g\n", m}'
}

# --- info
out=$("$bin" nn info "$lm" 2>&1); rc=$?
check "info rc=0 ($out)" '[ $rc = 0 ]'
check "info shows input shape" 'echo "$out" | grep -q "input: *input \[1, 1, 64, 64\]"'
check "info shows output shape" 'echo "$out" | grep -q "output: *output \[1, 136\]"'
check "info shows conv count" 'echo "$out" | grep -Eq "Conv +40 ->"'
check "info shows parameters" 'echo "$out" | grep -Eq "parameters: [1-9][0-9]+"'
check "info shows peak bytes" 'echo "$out" | grep -Eq "peak activation bytes: [1-9][0-9]+"'
out=$("$bin" nn info "$lm" --json 2>&1); rc=$?
check "info --json" '[ $rc = 0 ] && echo "$out" | grep -q "\"outputs\":\[{\"name\":\"output\",\"shape\":\[1, 136\]}\]"'

# --- run: fast and reference kernels, same values
mknpy "$tmp/in.npy" "1, 1, 64, 64" 4096
mkdir -p "$tmp/fast" "$tmp/ref"
out=$("$bin" nn run "$lm" --input input="$tmp/in.npy" --output-dir "$tmp/fast" 2>&1); rc=$?
check "run rc=0 ($out)" '[ $rc = 0 ]'
check "run wrote output.npy" '[ -f "$tmp/fast/output.npy" ]'
check "output.npy size (128 header + 136 floats)" '[ "$(stat -c %s "$tmp/fast/output.npy" 2>/dev/null)" = 672 ]'
check "output.npy header" 'head -c 128 "$tmp/fast/output.npy" | grep -aq "'"'"'shape'"'"': (1, 136)"'
out=$("$bin" nn run "$lm" --input input="$tmp/in.npy" --output-dir "$tmp/ref" --reference --threads 2 2>&1); rc=$?
check "run --reference rc=0 ($out)" '[ $rc = 0 ]'
d=$(maxdiff "$tmp/fast/output.npy" "$tmp/ref/output.npy")
check "fast vs reference max diff $d <= 1e-4" 'awk -v d="$d" "BEGIN{exit !(d <= 1e-4)}"'
check "outputs are not all zero" '[ "$(od -An -v -f -j128 "$tmp/ref/output.npy" | tr -s " " "\n" | grep -cv "^0*$")" -gt 100 ]'

# --- TF.js model through the same command (names with '/' or ':' are sanitised)
iris=$models/human/iris.json
if [ -f "$iris" ]; then
  mknpy "$tmp/iris.npy" "1, 64, 64, 3" 12288
  mkdir -p "$tmp/iris"
  out=$("$bin" nn run "$iris" --input input_1="$tmp/iris.npy" --output-dir "$tmp/iris" 2>&1); rc=$?
  check "iris run rc=0 ($out)" '[ $rc = 0 ] && [ -f "$tmp/iris/Identity.npy" ]'
else
  check "$iris missing" false
fi

# --- bench: one JSON line
out=$("$bin" nn bench "$lm" --runs 5 --threads 1 2>&1); rc=$?
check "bench rc=0 ($out)" '[ $rc = 0 ]'
check "bench JSON fields" 'echo "$out" | grep -Eq "^\{\"model\":\".*fr_landmark.onnx\",\"threads\":1,\"runs\":5,\"median_ms\":[0-9.]+,\"p90_ms\":[0-9.]+,\"peak_bytes\":[1-9][0-9]*\}$"'
out=$("$bin" nn bench "$models/faceplugin/fr_detect.onnx" --runs 2 --size 480x640 --outputs scores,462 2>&1); rc=$?
check "bench fr_detect 480x640 ($out)" '[ $rc = 0 ] && echo "$out" | grep -q "\"median_ms\""'
out=$("$bin" nn info "$models/faceplugin/fr_detect.onnx" --size 480x640 --outputs scores,462 2>&1)
check "fr_detect 480x640 shapes" 'echo "$out" | grep -q "input: *input \[1, 3, 480, 640\]" && echo "$out" | grep -q "scores \[1, 17640, 2\]"'

# --- error paths
out=$("$bin" nn info "$tmp/missing.onnx" 2>&1); rc=$?
check "missing file fails naming it (rc=$rc)" '[ $rc = 1 ] && echo "$out" | grep -q "missing.onnx"'
head -c 3000 /dev/urandom > "$tmp/garbage.onnx"
out=$("$bin" nn info "$tmp/garbage.onnx" 2>&1); rc=$?
check "garbage file fails (rc=$rc: $out)" '[ $rc = 1 ] && echo "$out" | grep -q "garbage.onnx"'
echo '{"not": "a model"' > "$tmp/bad.json"
out=$("$bin" nn info "$tmp/bad.json" 2>&1); rc=$?
check "bad json fails (rc=$rc)" '[ $rc = 1 ]'
mknpy "$tmp/small.npy" "1, 1, 32, 32" 1024
out=$("$bin" nn run "$lm" --input input="$tmp/small.npy" --output-dir "$tmp" 2>&1); rc=$?
check "wrong input shape fails (rc=$rc)" '[ $rc = 1 ] && echo "$out" | grep -q "shape differs"'
out=$("$bin" nn run "$lm" --input nosuch="$tmp/in.npy" --output-dir "$tmp" 2>&1); rc=$?
check "unknown input name fails (rc=$rc)" '[ $rc = 1 ] && echo "$out" | grep -q "no input"'
head -c 100 "$tmp/in.npy" > "$tmp/trunc.npy"
out=$("$bin" nn run "$lm" --input input="$tmp/trunc.npy" --output-dir "$tmp" 2>&1); rc=$?
check "truncated npy fails (rc=$rc)" '[ $rc = 1 ]'
out=$("$bin" nn run "$lm" --output-dir "$tmp" 2>&1); rc=$?
check "missing --input fails (rc=$rc)" '[ $rc = 1 ] && echo "$out" | grep -q "no --input"'
"$bin" nn bench "$lm" --runs 0 >/dev/null 2>&1; rc=$?
check "bad --runs is a usage error (rc=$rc)" '[ $rc = 2 ]'
"$bin" nn >/dev/null 2>&1; rc=$?
check "nn without sub-command is a usage error" '[ $rc = 2 ]'
echo "$pass passed, $fail failed"
[ $fail = 0 ]
