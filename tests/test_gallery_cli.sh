#!/usr/bin/env bash
# test_gallery_cli.sh — `facekit enroll|identify|gallery|bench search` end to end on real faces from
# ../shared/data (deepface identities): enrol, identify (genuine, impostor, group filter), per-file
# errors that write nothing (no face, corrupt JPEG), key-file permissions, removal, the same on a
# PostgreSQL server (tests/pg_harness.sh), and the search bench's JSON line.
set -u
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$1"; fi; }

B=${FK_BIN:?FK_BIN must point to the facekit binary}
D=${FK_DATA:-../shared/data}/faces/deepface
for f in img5.jpg img1.jpg img2.jpg img12.jpg img51.jpg img16.jpg; do
  [ -f "$D/$f" ] || { echo "FAIL: test data missing: $D/$f (../shared/data)"; echo "0 passed, 1 failed"; exit 1; }
done
T=$(mktemp -d /tmp/fk_gallery_cli.XXXXXX)
PG=""
cleanup() { [ -n "$PG" ] && bash "$FK_SOURCE_DIR/tests/pg_harness.sh" stop "$PG"; rm -rf "$T" ${PG:+"$PG"}; }
trap cleanup EXIT
unset FK_DATA_KEY FK_DB
G=$T/g

# enrol three people (Alice with two photos); the key file is announced and created 0600
"$B" enroll --data "$G" --name Alice --group A --external-id 110101 "$D/img5.jpg" "$D/img1.jpg" >"$T/e1" 2>"$T/e1.err"; rc=$?
check '[ $rc = 0 ]'
check 'grep -q "\"person\":1" "$T/e1" && grep -q "\"faces\":\[1,2\]" "$T/e1"'
check 'grep -q "created a new data key" "$T/e1.err"'
check '[ "$(stat -c %a "$G/facekit.key")" = 600 ]'
"$B" enroll --data "$G" --name Bob "$D/img12.jpg" >"$T/e2" 2>"$T/e2.err"; rc=$?; check '[ $rc = 0 ]'
check '! grep -q "created a new data key" "$T/e2.err"'
"$B" enroll --data "$G" --name Carol --group B --metadata '{"unit":"3-201"}' "$D/img51.jpg" >"$T/e3"; rc=$?; check '[ $rc = 0 ]'

# identify: genuine (another photo of Alice), impostor (an identity not enrolled), group filter
"$B" identify --data "$G" "$D/img2.jpg" --top 3 >"$T/i1"; rc=$?; check '[ $rc = 0 ]'
check 'grep -q "^{\"matches\":\[{\"person\":1,\"name\":\"Alice\"" "$T/i1"'
check 'grep -q "\"unknown\":false" "$T/i1"'
check '[ "$(grep -o "\"person\":" "$T/i1" | wc -l)" = 3 ]'
"$B" identify --data "$G" "$D/img16.jpg" >"$T/i2"; rc=$?; check '[ $rc = 0 ]'
check 'grep -q "\"unknown\":true" "$T/i2"'
"$B" identify --data "$G" "$D/img2.jpg" --group B >"$T/i3"; rc=$?; check '[ $rc = 0 ]'
check '! grep -q "Alice" "$T/i3" && grep -q "\"unknown\":true" "$T/i3"'
"$B" identify --data "$G" "$D/img2.jpg" --group nowhere >"$T/i4"; rc=$?; check '[ $rc = 0 ]'
check 'grep -q "{\"matches\":\[\],\"unknown\":true" "$T/i4"'

# per-file errors: a picture without a face and a truncated JPEG; nothing is written
w=64; h=64; size=$((54 + w * h * 3))
le32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"; }
{ printf 'BM'; le32 $size; le32 0; le32 54; le32 40; le32 $w; le32 $h; printf '\x01\x00\x18\x00'; le32 0; le32 $((w * h * 3)); le32 2835; le32 2835; le32 0; le32 0
  head -c $((w * h * 3)) /dev/zero | tr '\0' '\200'; } >"$T/gray.bmp"
head -c 6000 "$D/img16.jpg" >"$T/truncated.jpg"
"$B" enroll --data "$G" --name Dave "$D/img16.jpg" "$T/gray.bmp" >"$T/e4" 2>"$T/e4.err"; rc=$?; check '[ $rc = 1 ]'
check 'grep -q "gray.bmp: no face found" "$T/e4.err" && grep -q "nothing was enrolled" "$T/e4.err"'
"$B" enroll --data "$G" --name Dave "$T/truncated.jpg" >"$T/e5" 2>"$T/e5.err"; rc=$?; check '[ $rc = 1 ]'
check 'grep -q "truncated.jpg: not a readable image" "$T/e5.err"'
"$B" gallery list --data "$G" >"$T/l1"; rc=$?; check '[ $rc = 0 ]'
check 'grep -q "\"count\":3}" "$T/l1" && ! grep -q Dave "$T/l1"'
check 'grep -q "\"metadata\":{\"unit\":\"3-201\"}" "$T/l1"'
"$B" gallery list --data "$G" --group A >"$T/l2"; check 'grep -q "\"count\":1}" "$T/l2"'
"$B" gallery show 1 --data "$G" >"$T/s1"; rc=$?; check '[ $rc = 0 ]'
check 'grep -q "\"image_bytes\":$(stat -c %s "$D/img5.jpg")" "$T/s1"'

# the same external id twice in a group is refused
"$B" enroll --data "$G" --name Eve --group A --external-id 110101 "$D/img16.jpg" >/dev/null 2>"$T/e6.err"; rc=$?; check '[ $rc = 1 ]'
check 'grep -q "already enrolled" "$T/e6.err"'

# a key file readable by others is refused
chmod 644 "$G/facekit.key"
"$B" gallery list --data "$G" >/dev/null 2>"$T/k.err"; rc=$?; check '[ $rc = 1 ]'
check 'grep -q "0600" "$T/k.err"'
chmod 600 "$G/facekit.key"
# another key: refused, not garbage
FK_DATA_KEY=$(printf '%064d' 7) "$B" gallery list --data "$G" >/dev/null 2>"$T/k2.err"; rc=$?; check '[ $rc = 1 ]'
check 'grep -q "does not match" "$T/k2.err"'

# export (encrypted by default, --plain on request) and import into a fresh data dir with the same key
"$B" gallery export "$T/g.fkga" --data "$G" >"$T/x1"; rc=$?; check '[ $rc = 0 ]'
check 'grep -q "\"persons\":3,\"faces\":4,\"encrypted\":true" "$T/x1"'
check '[ "$(head -c 8 "$T/g.fkga")" = FKGALLRY ]'
check '! grep -q "Alice" "$T/g.fkga"'
"$B" gallery export "$T/plain.fkga" --plain --data "$G" >/dev/null 2>"$T/x2.err"; rc=$?; check '[ $rc = 0 ]'
check 'grep -q "NOT encrypted" "$T/x2.err" && grep -q "Alice" "$T/plain.fkga"'
mkdir -m 700 "$T/g2" && cp "$G/facekit.key" "$T/g2/"
"$B" gallery import "$T/g.fkga" --data "$T/g2" >"$T/x3"; rc=$?; check '[ $rc = 0 ]'
check 'grep -q "\"persons\":3,\"faces\":4" "$T/x3"'
"$B" identify --data "$T/g2" "$D/img2.jpg" >"$T/x4"; check 'grep -q "\"name\":\"Alice\"" "$T/x4" && grep -q "\"unknown\":false" "$T/x4"'
# an archive made under another data key cannot be read (another model: tests/test_store.c)
"$B" gallery import "$T/g.fkga" --data "$T/g3" >/dev/null 2>"$T/x5.err"; rc=$?; check '[ $rc = 1 ]'
check 'grep -q "cannot be decrypted" "$T/x5.err"'

# removal: gone from the store and from search
"$B" gallery remove 1 --data "$G" >"$T/r1"; rc=$?; check '[ $rc = 0 ] && grep -q "\"removed\":1" "$T/r1"'
"$B" gallery remove 1 --data "$G" >/dev/null 2>&1; rc=$?; check '[ $rc = 1 ]'
"$B" identify --data "$G" "$D/img2.jpg" >"$T/i5"; check '! grep -q Alice "$T/i5" && grep -q "\"unknown\":true" "$T/i5"'

# usage errors
"$B" enroll --data "$G" "$D/img5.jpg" >/dev/null 2>&1; rc=$?; check '[ $rc = 2 ]'
"$B" identify --data "$G" --bogus x "$D/img5.jpg" >/dev/null 2>&1; rc=$?; check '[ $rc = 2 ]'
"$B" identify "$D/img5.jpg" >/dev/null 2>&1; rc=$?; check '[ $rc = 2 ]'

# PostgreSQL through --db (the key still comes from --data)
PG=$(mktemp -d /tmp/fkpg.XXXXXX)
URL=$(bash "$FK_SOURCE_DIR/tests/pg_harness.sh" start "$PG"); check '[ -n "$URL" ]'
if [ -n "$URL" ]; then
  "$B" enroll --data "$G" --db "$URL" --name Alice --cipher sm4 "$D/img5.jpg" >"$T/p1"; rc=$?; check '[ $rc = 0 ]'
  FK_DB=$URL "$B" identify --data "$G" "$D/img2.jpg" >"$T/p2"; check 'grep -q "\"name\":\"Alice\"" "$T/p2" && grep -q "\"unknown\":false" "$T/p2"'
  "$B" gallery list --data "$G" --db "$URL" >"$T/p3"; check 'grep -q "\"count\":1}" "$T/p3"'
fi

# the search bench: one JSON line, recall 1 against exact fp32, FAISS timed in the same run
"$B" bench search --n 3000 --dim 512 --queries 20 >"$T/b1"; rc=$?; check '[ $rc = 0 ]'
check 'grep -q "^{\"n\":3000,\"dim\":512,.*\"median_us\":[0-9.]*,.*\"recall_at_1\":1.0000,\"faiss_median_us\":[0-9.]*" "$T/b1"'
cat "$T/b1"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
