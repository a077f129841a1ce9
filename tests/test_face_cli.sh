#!/usr/bin/env bash
# The face commands end to end: `facekit detect|analyze|embed|compare|bench pipeline` print the documented
# JSON forms (keys checked with node's JSON.parse) and exit 0; compare accepts images and .fkt files; a
# corrupt image, a non-image, a missing file, an image without a face and a template of another model fail
# with a message on stderr and a non-zero exit.
set -u
bin=${FK_BIN:?} data=${FK_DATA:?}
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1" >&2; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

[ -d "$data/faces" ] || { echo "FAIL: test data $data missing (FK_DATA)"; echo "0 passed, 1 failed"; exit 1; }
command -v node >/dev/null || { echo "FAIL: node missing (scripts/setup)"; echo "0 passed, 1 failed"; exit 1; }
# js EXPR over the JSON in $out, bound to `d`; prints the value
js() { printf '%s' "$out" | node -e "let s='';process.stdin.on('data',c=>s+=c).on('end',()=>{const d=JSON.parse(s);console.log($1)})" 2>&1; }

obama=$data/faces/face_recognition/examples/obama-480p.jpg
obama2=$data/faces/face_recognition/examples/obama2.jpg
biden=$data/faces/face_recognition/examples/biden.jpg
group=$data/detection/dlib/2008_002470.jpg

# --- detect
out=$("$bin" detect "$group" --draw "$tmp/drawn.png" 2>"$tmp/err"); rc=$?
check "detect rc=0 ($(cat "$tmp/err"))" '[ $rc = 0 ]'
check "detect width/height" '[ "$(js "d.width+\"x\"+d.height")" = 500x332 ]'
check "detect finds the 6 faces" '[ "$(js "d.faces.length")" = 6 ]'
check "detect face keys" '[ "$(js "Object.keys(d.faces[0]).join(\",\")")" = "box,score,landmarks,landmarks68" ]'
check "detect box has 4 numbers" '[ "$(js "d.faces.every(f=>f.box.length==4&&f.box.every(Number.isFinite))")" = true ]'
check "detect 5 landmarks, 68 points" '[ "$(js "d.faces.every(f=>f.landmarks.length==5&&f.landmarks68.length==68)")" = true ]'
check "detect scores in 0..1" '[ "$(js "d.faces.every(f=>f.score>0&&f.score<=1)")" = true ]'
check "detect --draw wrote a PNG" '[ "$(head -c 4 "$tmp/drawn.png" | od -An -tx1 | tr -d " ")" = 89504e47 ]'
out=$("$bin" detect "$group" --size 640x480 --min-face 40 --threshold 0.95 --no-landmarks68 2>&1); rc=$?
check "detect with options rc=0 ($out)" '[ $rc = 0 ]'
check "detect --min-face 40 drops small faces" '[ "$(js "d.faces.every(f=>Math.min(f.box[2],f.box[3])>=40)")" = true ]'
check "detect --no-landmarks68" '[ "$(js "d.faces.every(f=>!(\"landmarks68\" in f))")" = true ]'
out=$("$bin" detect "$data/detection/dlib/dogs.jpg" 2>&1); rc=$?
check "detect dogs: rc=0, no face ($out)" '[ $rc = 0 ] && [ "$(js "d.faces.length")" = 0 ]'
# a big photo decoded with DCT scaling still reports boxes in the file's pixels
out=$("$bin" detect "$data/detection/compreface/001_A.jpg" 2>&1); rc=$?
check "detect big photo rc=0" '[ $rc = 0 ]'
check "detect big photo: file size and nose (2109,2261) inside the box" \
  '[ "$(js "d.width>3000&&d.faces.length==1&&d.faces[0].box[0]<2109&&d.faces[0].box[0]+d.faces[0].box[2]>2109&&d.faces[0].box[1]<2261&&d.faces[0].box[1]+d.faces[0].box[3]>2261")" = true ]'

# --- analyze
out=$("$bin" analyze "$obama" 2>"$tmp/err"); rc=$?
check "analyze rc=0 ($(cat "$tmp/err"))" '[ $rc = 0 ]'
check "analyze one face" '[ "$(js "d.faces.length")" = 1 ]'
check "analyze keys" '[ "$(js "[\"box\",\"quality\",\"liveness\",\"attributes\"].every(k=>k in d.faces[0])")" = true ]'
check "analyze quality keys" '[ "$(js "[\"face_size\",\"sharpness\",\"brightness\",\"contrast\",\"yaw\",\"pitch\",\"roll\",\"left_eye_open\",\"right_eye_open\",\"cut\",\"pass\",\"reasons\"].every(k=>k in d.faces[0].quality)")" = true ]'
check "analyze quality passes" '[ "$(js "d.faces[0].quality.pass&&d.faces[0].quality.reasons.length==0")" = true ]'
check "analyze liveness live" '[ "$(js "d.faces[0].liveness.live===true&&d.faces[0].liveness.score>0.5")" = true ]'
check "analyze attributes" '[ "$(js "d.faces[0].attributes.gender+\",\"+(d.faces[0].attributes.age>20)+\",\"+typeof d.faces[0].attributes.expression")" = "male,true,string" ]'
out=$("$bin" analyze "$data/attributes/inspireface/reaction/close_eyes.jpeg" 2>&1); rc=$?
check "analyze closed eyes: reason eyes_closed" '[ $rc = 0 ] && [ "$(js "d.faces[0].quality.reasons.includes(\"eyes_closed\")")" = true ]'
out=$("$bin" analyze "$data/antispoof/samples/image_F1.jpg" 2>&1); rc=$?
check "analyze spoof: live false" '[ $rc = 0 ] && [ "$(js "d.faces[0].liveness.live")" = false ]'

# --- embed
out=$("$bin" embed "$obama" --out "$tmp/a.fkt" 2>"$tmp/err"); rc=$?
check "embed rc=0 ($(cat "$tmp/err"))" '[ $rc = 0 ]'
check "embed JSON" '[ "$(js "d.dim+\",\"+d.model_id.startsWith(\"fr_feature:\")+\",\"+d.flip+\",\"+(d.face.box.length)")" = "512,true,false,4" ]'
check "embed file size 68+4*512" '[ "$(wc -c <"$tmp/a.fkt")" = 2116 ]'
check "embed file magic" '[ "$(head -c 4 "$tmp/a.fkt")" = FKT1 ]'
out=$("$bin" embed "$obama2" --out "$tmp/b.fkt" --flip 2>&1); rc=$?
check "embed --flip rc=0" '[ $rc = 0 ] && [ "$(js "d.flip")" = true ]'

# --- compare
out=$("$bin" compare "$obama" "$obama2" 2>"$tmp/err"); rc=$?
check "compare images rc=0 ($(cat "$tmp/err"))" '[ $rc = 0 ]'
check "compare keys" '[ "$(js "Object.keys(d).join(\",\")")" = "score,cosine,threshold,same" ]'
check "compare obama/obama2 same" '[ "$(js "d.same")" = true ]'
out=$("$bin" compare "$obama" "$biden" 2>&1); rc=$?
check "compare obama/biden different" '[ $rc = 0 ] && [ "$(js "d.same")" = false ]'
out=$("$bin" compare "$tmp/a.fkt" "$obama2" 2>&1); rc=$?
check "compare .fkt with image" '[ $rc = 0 ] && [ "$(js "d.same")" = true ]'
out=$("$bin" compare "$tmp/a.fkt" "$tmp/a.fkt" --threshold 0.999 2>&1); rc=$?
check "compare .fkt with itself, --threshold" '[ $rc = 0 ] && [ "$(js "d.cosine>0.9999&&d.threshold==0.999&&d.same")" = true ]'
out=$("$bin" compare "$obama" "$biden" --threshold 0 2>&1); rc=$?
check "compare --threshold 0 accepts anything" '[ $rc = 0 ] && [ "$(js "d.same")" = true ]'

# --- bench pipeline
out=$("$bin" bench pipeline "$obama" --runs 2 2>&1); rc=$?
check "bench rc=0 ($out)" '[ $rc = 0 ]'
check "bench stage keys" '[ "$(js "[\"decode_ms\",\"detect_ms\",\"landmarks_ms\",\"align_ms\",\"embed_ms\",\"liveness_ms\",\"total_ms\"].every(k=>d[k]>0)")" = true ]'

# --- errors: message on stderr, non-zero exit, nothing on stdout
err_case() { # NAME EXPECTED-STDERR-REGEX CMD...
  local name=$1 re=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  check "$name: non-zero exit" '[ $rc != 0 ]'
  check "$name: message ($(head -c 200 "$tmp/err"))" 'grep -Eqi "$re" "$tmp/err"'
  check "$name: no JSON on stdout" '[ ! -s "$tmp/out" ]'
}
head -c 3000 "$obama" >"$tmp/trunc.jpg"
printf 'this is not an image\n' >"$tmp/text.jpg"
dd if=/dev/urandom of="$tmp/noise.bin" bs=1k count=4 2>/dev/null
err_case "detect truncated JPEG" "malformed|corrupt|premature" "$bin" detect "$tmp/trunc.jpg"
err_case "detect non-image" "malformed|unsupported|format" "$bin" detect "$tmp/text.jpg"
err_case "analyze random bytes" "malformed|unsupported|format" "$bin" analyze "$tmp/noise.bin"
err_case "detect missing file" "input/output|cannot|no such" "$bin" detect "$tmp/nope.jpg"
err_case "embed no face" "no face" "$bin" embed "$data/detection/dlib/dogs.jpg" --out "$tmp/x.fkt"
check "embed no face: no file written" '[ ! -e "$tmp/x.fkt" ]'
err_case "compare no face" "no face" "$bin" compare "$obama" "$data/attributes/inspireface/crop/no_face.png"
err_case "compare corrupt image" "malformed|corrupt|premature" "$bin" compare "$tmp/trunc.jpg" "$obama"
# a template of another model: same bytes, other id, valid CRC (rewritten with node)
node -e '
  const fs=require("fs"); const b=fs.readFileSync(process.argv[1]);
  b.fill(0,16,64); b.write("fr_feature:0000000000000000",16);
  let c=~0; for (let i=0;i<b.length-4;i++){c^=b[i];for(let k=0;k<8;k++)c=(c>>>1)^(0xedb88320&-(c&1));}
  b.writeUInt32LE((~c)>>>0,b.length-4); fs.writeFileSync(process.argv[2],b);' "$tmp/a.fkt" "$tmp/other.fkt"
err_case "compare other model's template" "incompatible|other model" "$bin" compare "$tmp/other.fkt" "$tmp/a.fkt"
cp "$tmp/a.fkt" "$tmp/flip.fkt"; printf '\x55' | dd of="$tmp/flip.fkt" bs=1 seek=1000 conv=notrunc 2>/dev/null
err_case "compare bit-flipped template" "checksum" "$bin" compare "$tmp/flip.fkt" "$tmp/a.fkt"
head -c 1000 "$tmp/a.fkt" >"$tmp/short.fkt"
err_case "compare truncated template" "checksum|malformed" "$bin" compare "$tmp/short.fkt" "$tmp/a.fkt"
"$bin" detect >/dev/null 2>&1; rc=$?
check "detect without args: usage exit 2" '[ $rc = 2 ]'
"$bin" compare "$obama" >/dev/null 2>&1; rc=$?
check "compare with one arg: usage exit 2" '[ $rc = 2 ]'
"$bin" embed "$obama" >/dev/null 2>&1; rc=$?
check "embed without --out: usage exit 2" '[ $rc = 2 ]'

echo "$pass passed, $fail failed"
[ $fail = 0 ]
