#!/usr/bin/env bash
# test_server_api.sh — `facekit serve` end to end on loopback: first admin with a one-time password,
# captcha login (test hook binary), cookie flags, forced password change, CSRF, lockout after 5
# failures with the exact message, the whole role matrix read from docs/openapi.yaml (every endpoint x
# admin / operator / auditor / device / anonymous), upload limits, bad input, persons CRUD with consent,
# enrolment (multipart and base64 JSON), identify, records with filters and sealed snapshots, settings
# that persist across a restart, audit chain verify + tamper, SIGTERM during a request, no secrets in
# logs, and no test hook in the release binary. Also: the web console served at / (content types, cache
# and security headers, SPA fallback, path traversal refused, no credentials needed), PUT person, DELETE
# one face (gone from store, image and index), records.csv (RFC 4180, formula guard), stats, models.
set -u
B=${FK_BIN:?FK_BIN must point to the facekit binary}
SB=${FK_BIN_TESTHOOKS:?FK_BIN_TESTHOOKS must point to facekit-testhooks}
SRC=${FK_SOURCE_DIR:?}
D=${FK_DATA:-../shared/data}/faces/deepface
T=$(mktemp -d /tmp/fk_server_api.XXXXXX)
. "$SRC/tests/server_lib.sh"
for f in img5.jpg img1.jpg img12.jpg img2.jpg; do
  [ -f "$D/$f" ] || { echo "FAIL: test data missing: $D/$f (../shared/data)"; echo "0 passed, 1 failed"; exit 1; }
done
cleanup() { kill -TERM ${SPID:-0} 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
unset FK_DATA_KEY FK_DB
G=$T/data

# ---- release binary carries no test hook; the hook binary does ----
if [ "${FK_TEST_HOOKS_OPTION:-OFF}" != ON ]; then
  check '! strings "$B" | grep -q FK_TEST_CAPTCHA_ANSWER'
fi
check 'strings "$SB" | grep -q FK_TEST_CAPTCHA_ANSWER'

# a web console directory (the real build's is tested by test_console_e2e.sh): files of every served type,
# a secret outside it, symlinks pointing out, a dot-file
W=$T/web
mkdir -p "$W/assets"
printf '<!doctype html><title>facekit</title><div id="app"></div>\n' > "$W/index.html"
echo 'console.log("app")' > "$W/assets/app-AbCd12_9.js"
echo 'body{margin:0}' > "$W/assets/app-Zx9-8yQw.css"
echo '<svg xmlns="http://www.w3.org/2000/svg"/>' > "$W/logo.svg"
printf '\211PNG\r\n\032\n' > "$W/icon.png"; printf 'wOF2' > "$W/assets/font-0123abcd.woff2"
echo '{"a":1}' > "$W/data.json"; printf '\0\0\1\0' > "$W/favicon.ico"
echo secret-outside > "$T/secret.txt"; echo hidden-dotfile > "$W/.env"
ln -s "$T/secret.txt" "$W/leak.txt"; ln -s "$T" "$W/up"
check '"$SB" serve --help | grep -q -- "--web DIR"'

# ---- first start: admin with a one-time password printed once ----
start_server "$G" FK_TEST_CAPTCHA_ANSWER=K7P2Q FK_SERVE_WEB_DIR="$W" || { echo "0 passed, 1 failed"; exit 1; }
ADMIN_PW=$(sed -n 's/.*one-time password: \([A-Za-z0-9]*\).*/\1/p' "$SOUT")
check '[ ${#ADMIN_PW} -ge 12 ]'
req GET /api/v1/health; check '[ $CODE = 200 ] && [ "$(jget j.status)" = ok ]'
req GET /api/v1/users; check '[ $CODE = 401 ] && [ "$(jget j.error.code)" = unauthenticated ]'

# ---- the web console at /: no credentials, types, caching, security headers, SPA fallback, traversal ----
hdr() { tr -d '\r' < "$T/hdr" | sed -n "s/^$1: //Ip" | head -1; }
req GET /; check '[ $CODE = 200 ] && cmp -s "$T/body" "$W/index.html" && [ "$(hdr Content-Type)" = "text/html; charset=utf-8" ]'
check '[ "$(hdr Cache-Control)" = no-cache ] && [ "$(hdr X-Content-Type-Options)" = nosniff ] && [ "$(hdr X-Frame-Options)" = DENY ]'
CSP=$(hdr Content-Security-Policy)
check '[[ "$CSP" == *"frame-ancestors '"'"'none'"'"'"* ]] && [[ "$CSP" == *"script-src '"'"'self'"'"';"* ]] && [[ "$CSP" != *unsafe-inline* ]]'
ETAG=$(hdr ETag)
rm -f "$T/body"; req GET / -H "If-None-Match: $ETAG"; check '[ -n "$ETAG" ] && [ $CODE = 304 ] && [ ! -s "$T/body" ]'
req HEAD /index.html; check '[ $CODE = 200 ]'
req GET /assets/app-AbCd12_9.js
check '[ $CODE = 200 ] && cmp -s "$T/body" "$W/assets/app-AbCd12_9.js" && [ "$(hdr Content-Type)" = "text/javascript; charset=utf-8" ] && [ "$(hdr Cache-Control)" = "public, max-age=31536000, immutable" ]'
for tf in "assets/app-Zx9-8yQw.css text/css; charset=utf-8" "logo.svg image/svg+xml" "icon.png image/png" \
          "assets/font-0123abcd.woff2 font/woff2" "data.json application/json" "favicon.ico image/x-icon"; do
  f=${tf%% *}; want=${tf#* }
  req GET "/$f"; check '[ $CODE = 200 ] && cmp -s "$T/body" "$W/$f" && [ "$(hdr Content-Type)" = "$want" ]'
done
req GET /logo.svg; check '[ "$(hdr Cache-Control)" = no-cache ]'   # not content-hashed: revalidated
req GET /assets/app-Zx9-8yQw.css; check '[ "$(hdr Cache-Control)" = "public, max-age=31536000, immutable" ]'   # a hash with "-"
echo 'x' > "$W/assets/plain.js"
req GET /assets/plain.js; check '[ $CODE = 200 ] && [ "$(hdr Cache-Control)" = no-cache ]'
req GET /persons/12; check '[ $CODE = 200 ] && cmp -s "$T/body" "$W/index.html"'   # SPA fallback
req GET /assets/gone-12345678.js; check '[ $CODE = 404 ]'              # a missing file is not HTML
for p in '/../secret.txt' '/%2e%2e/secret.txt' '/assets/..%2f..%2fsecret.txt' '/assets/%2e%2e/%2e%2e/secret.txt' \
         '/leak.txt' '/up/secret.txt' '/.env' '/%2e%65nv' "/$T/secret.txt" "/%2F${T#/}/secret.txt" '/assets/..\..\secret.txt'; do
  req GET "$p" --path-as-is
  if [ $CODE = 404 ] && ! grep -q -e secret-outside -e hidden-dotfile "$T/body"; then ok; else bad "console path $p -> $CODE"; fi
done
req POST / -H 'Content-Type: application/json' -d '{}'; check '[ $CODE = 404 ]'   # files are GET/HEAD only
req GET /api/v1/persons; check '[ $CODE = 401 ]'   # the API keeps its credentials
req GET /api/nothing; check '[ $CODE = 404 ] && [ "$(jget j.error.code)" = not_found ]'

captcha() { req GET /api/v1/captcha; CID=$(jget j.captcha_id); }
captcha
check '[ $CODE = 200 ] && [ ${#CID} = 32 ]'
jget 'j.image.replace(/^data:image\/png;base64,/,"")' | base64 -d > "$T/captcha.png"
check '[ "$(head -c 4 "$T/captcha.png" | od -An -c | tr -d " ")" = "211PNG" ]'
login() { # user pass captcha_answer
  captcha
  req POST /api/v1/auth/login -H 'Content-Type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$2\",\"captcha_id\":\"$CID\",\"captcha\":\"$3\"}"
}
MSG_EN="Login failed, please log in again."
MSG_ZH="登录失败，请重新登录！"
# wrong captcha, then a reused captcha id: both fail with the exact message
login admin "$ADMIN_PW" WRONG
check '[ $CODE = 401 ] && [ "$(jget j.error.message)" = "$MSG_EN" ] && [ "$(jget j.error.message_zh)" = "$MSG_ZH" ]'
req POST /api/v1/auth/login -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$ADMIN_PW\",\"captcha_id\":\"$CID\",\"captcha\":\"K7P2Q\"}"
check '[ $CODE = 401 ]'  # the picture was consumed by the first attempt
login admin "$ADMIN_PW" k7p2q
check '[ $CODE = 200 ] && [ "$(jget j.must_change_password)" = true ]'
CSRF=$(jget j.csrf_token)
COOKIE=$(sed -n 's/^Set-Cookie: fk_session=\([0-9a-f]*\);.*/\1/ip' "$T/hdr" | tr -d '\r')
check 'grep -qi "^Set-Cookie: fk_session=.*HttpOnly" "$T/hdr" && grep -qi "^Set-Cookie:.*SameSite=Strict" "$T/hdr"'
C=(-H "Cookie: fk_session=$COOKIE")
req GET /api/v1/users "${C[@]}"; check '[ $CODE = 403 ] && [ "$(jget j.error.code)" = password_change_required ]'
req POST /api/v1/auth/password "${C[@]}" -H 'Content-Type: application/json' -d "{\"old_password\":\"$ADMIN_PW\",\"new_password\":\"Admin-Pass-123\"}"
check '[ $CODE = 403 ] && [ "$(jget j.error.code)" = csrf ]'
req POST /api/v1/auth/password "${C[@]}" -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' -d "{\"old_password\":\"$ADMIN_PW\",\"new_password\":\"Admin-Pass-123\"}"
check '[ $CODE = 200 ]'
req GET /api/v1/users "${C[@]}"; check '[ $CODE = 200 ] && [ "$(jget j.items[0].username)" = admin ]'
CS=("${C[@]}" -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json')
# create an operator through the API; CSRF required for a cookie session
req POST /api/v1/users "${C[@]}" -H 'Content-Type: application/json' -d '{"username":"olga","role":"operator","password":"Olga-Pass-123"}'
check '[ $CODE = 403 ]'
req POST /api/v1/users "${CS[@]}" -d '{"username":"olga","role":"operator","password":"Olga-Pass-123"}'
check '[ $CODE = 201 ] && [ "$(jget j.role)" = operator ]'
OLGA=$(jget j.id)
req POST /api/v1/users "${CS[@]}" -d '{"username":"olga","role":"operator","password":"Olga-Pass-123"}'; check '[ $CODE = 409 ]'
# lockout: 5 wrong passwords, then the right one is refused too; failures are recorded
for i in 1 2 3 4 5; do login olga wrong-password K7P2Q; check '[ $CODE = 401 ] && [ "$(jget j.error.message)" = "$MSG_EN" ]'; done
login olga Olga-Pass-123 K7P2Q; check '[ $CODE = 401 ] && [ "$(jget j.error.message_zh)" = "$MSG_ZH" ]'
req GET "/api/v1/login-failures?limit=20" "${C[@]}"
check '[ $CODE = 200 ] && [ "$(jget "j.items.filter(x=>x.username===\"olga\").length")" = 6 ] && [ "$(jget j.items[0].reason)" = "account locked" ] && [ "$(jget j.items[0].address)" = 127.0.0.1 ]'
req GET /api/v1/users/$OLGA "${C[@]}"; check '[ "$(jget "j.locked_until>0")" = true ]'
req PUT /api/v1/users/$OLGA "${CS[@]}" -d '{"unlock":true}'; check '[ $CODE = 200 ] && [ "$(jget j.locked_until)" = 0 ]'
login olga Olga-Pass-123 K7P2Q; check '[ $CODE = 200 ]'
# disable -> login refused; enable again
req PUT /api/v1/users/$OLGA "${CS[@]}" -d '{"disabled":true}'; check '[ $CODE = 200 ] && [ "$(jget j.disabled)" = true ]'
login olga Olga-Pass-123 K7P2Q; check '[ $CODE = 401 ]'
req PUT /api/v1/users/$OLGA "${CS[@]}" -d '{"disabled":false}'; check '[ $CODE = 200 ]'
# admin reset -> one-time password that must be changed
req POST /api/v1/users/$OLGA/password "${CS[@]}"; check '[ $CODE = 200 ]'; OTP=$(jget j.one_time_password)
login olga "$OTP" K7P2Q; check '[ $CODE = 200 ] && [ "$(jget j.must_change_password)" = true ]'

# ---- API keys: CLI and API; the role matrix from docs/openapi.yaml ----
KA=$("$B" apikey create --data "$G" --role admin --name k-admin | tail -1)
KO=$("$B" apikey create --data "$G" --role operator --name k-operator | tail -1)
KU=$("$B" apikey create --data "$G" --role auditor --name k-auditor | tail -1)
req POST /api/v1/apikeys "${CS[@]}" -d '{"name":"door-1","role":"device"}'
check '[ $CODE = 201 ] && [ "$(jget j.key.length)" = 67 ]'
KD=$(jget j.key); KDID=$(jget j.id)
req GET /api/v1/apikeys -H "X-API-Key: $KA"; check '[ $CODE = 200 ] && ! grep -q "$KD" "$T/body"'
awk '
  /^  \/[^ ]*:$/ { path=$1; sub(/:$/, "", path); next }
  /^    (get|post|put|delete|patch):/ { m=$1; sub(/:$/, "", m); next }
  /^      x-roles:/ { r=$0; sub(/.*\[/, "", r); sub(/\].*/, "", r); gsub(/ /, "", r); print toupper(m), path, r }
' "$SRC/docs/openapi.yaml" > "$T/matrix"
check '[ $(wc -l < "$T/matrix") -ge 40 ]'
mfail=0
while read -r m p roles; do
  pp=$(echo "$p" | sed 's/{[a-z_]*}/999999/g')
  for who in anonymous admin operator auditor device; do
    case $who in
      anonymous) H=(); ;; admin) H=(-H "X-API-Key: $KA");; operator) H=(-H "X-API-Key: $KO");;
      auditor) H=(-H "X-API-Key: $KU");; device) H=(-H "X-API-Key: $KD");;
    esac
    code=$(curl -s -o /dev/null -w '%{http_code}' -X "$m" "${H[@]}" "$URL$pp")
    if [[ ",$roles," == *",anonymous,"* ]]; then  # open endpoints (login answers 401 to a bad login)
      [ "$code" != 403 ] && [ "$code" != 405 ] || { mfail=1; echo "matrix: $m $p as $who -> $code (open)" >&2; }
    elif [[ ",$roles," == *",$who,"* ]]; then
      [ "$code" != 401 ] && [ "$code" != 403 ] && [ "$code" != 404 -o "$pp" != "$p" ] && [ "$code" != 405 ] || { mfail=1; echo "matrix: $m $p as $who -> $code (allowed)" >&2; }
    elif [ $who = anonymous ]; then
      [ "$code" = 401 ] || { mfail=1; echo "matrix: $m $p anonymous -> $code (want 401)" >&2; }
    else
      [ "$code" = 403 ] || { mfail=1; echo "matrix: $m $p as $who -> $code (want 403)" >&2; }
    fi
  done
done < "$T/matrix"
check '[ $mfail = 0 ]'
req DELETE /api/v1/apikeys/$KDID -H "X-API-Key: $KA"; check '[ $CODE = 200 ]'
req GET /api/v1/settings -H "X-API-Key: $KD"; check '[ $CODE = 401 ]'   # revoked
KD=$("$B" apikey create --data "$G" --role device --name door-2 | tail -1)
req GET /api/v1/apikeys -H "X-API-Key: $KA"; check '[ "$(jget "j.items.find(k=>k.name===\"k-admin\").last_used_at>0")" = true ]'

# ---- bad input: nothing stored ----
A=(-H "X-API-Key: $KA")
req POST /api/v1/compare "${A[@]}" -H 'Content-Type: application/json' -d '{"a": "xx", '
check '[ $CODE = 400 ] && [ "$(jget j.error.code)" = bad_json ]'
head -c 3000 "$D/img5.jpg" > "$T/trunc.jpg"
req POST /api/v1/compare "${A[@]}" -F a=@"$T/trunc.jpg" -F b=@"$D/img1.jpg"
check '[ $CODE = 400 ] && [ "$(jget j.error.code)" = bad_image ] && grep -q "not a readable image" "$T/body"'
req POST /api/v1/compare "${A[@]}" -F a=@"$T/captcha.png" -F b=@"$D/img1.jpg"
check '[ $CODE = 422 ] && [ "$(jget j.error.code)" = no_face ]'
req POST /api/v1/compare "${A[@]}" -F a=@"$D/img5.jpg" -F b=@"$D/img1.jpg" -F threshold=1.5
check '[ $CODE = 400 ]'
req POST /api/v1/compare "${A[@]}" -F a=@"$D/img5.jpg"; check '[ $CODE = 400 ]'
req POST /api/v1/persons "${A[@]}" -F name=X -F consent_by=X -F consent_purpose=test -F image=@"$T/captcha.png"
check '[ $CODE = 422 ]'
req POST /api/v1/persons "${A[@]}" -F name=X -F image=@"$D/img5.jpg"; check '[ $CODE = 400 ]'  # no consent
head -c 5000 /dev/urandom > "$T/junk"
req POST /api/v1/compare "${A[@]}" -H 'Content-Type: multipart/form-data; boundary=xyz' --data-binary @"$T/junk"
check '[ $CODE = 400 ] && [ "$(jget j.error.code)" = bad_request ]'
req POST /api/v1/compare "${A[@]}" -H 'Content-Type: multipart/form-data' --data-binary @"$T/junk"; check '[ $CODE = 400 ]'
printf -- '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nunterminated' > "$T/trunc.mp"
req POST /api/v1/compare "${A[@]}" -H 'Content-Type: multipart/form-data; boundary=xyz' --data-binary @"$T/trunc.mp"; check '[ $CODE = 400 ]'
req POST /api/v1/compare "${A[@]}" -H 'Content-Type: text/plain' --data-binary @"$T/junk"; check '[ $CODE = 415 ]'
req POST /api/v1/compare "${A[@]}" -H 'Content-Type: application/json' -d '[1,2]'; check '[ $CODE = 400 ] && [ "$(jget j.error.code)" = bad_json ]'
req POST /api/v1/compare "${A[@]}" -H 'Content-Type: application/json' -d '{"a":"@@@not-base64","b":"x"}'; check '[ $CODE = 400 ]'
req GET /api/v1/health; check '[ $CODE = 200 ]'
req GET /api/v1/nope "${A[@]}"; check '[ $CODE = 404 ] && [ "$(jget j.error.code)" = not_found ]'
req PATCH /api/v1/health; check '[ $CODE = 405 ]'
req GET /api/v1/persons "${A[@]}"; check '[ $CODE = 200 ] && [ "$(jget j.total)" = 0 ]'

# ---- compare: multipart and base64 JSON, templates ----
req POST /api/v1/compare "${A[@]}" -F a=@"$D/img5.jpg" -F b=@"$D/img1.jpg"
check '[ $CODE = 200 ] && [ "$(jget j.same)" = true ] && [ "$(jget "j.score>j.threshold && j.cosine>0.3")" = true ]'
B5=$(base64 -w0 "$D/img5.jpg"); B12=$(base64 -w0 "$D/img12.jpg")
printf '{"a":"data:image/jpeg;base64,%s","b":"%s","threshold":0.5}' "$B5" "$B12" > "$T/cmp.json"
req POST /api/v1/compare "${A[@]}" -H 'Content-Type: application/json' --data-binary @"$T/cmp.json"
check '[ $CODE = 200 ] && [ "$(jget j.same)" = false ] && [ "$(jget j.threshold)" = 0.5 ]'
"$B" embed "$D/img5.jpg" --out "$T/a.fkt" >/dev/null 2>&1
req POST /api/v1/compare -H "X-API-Key: $KD" -F a=@"$T/a.fkt" -F b=@"$D/img1.jpg"
check '[ $CODE = 200 ] && [ "$(jget j.same)" = true ]'
req POST /api/v1/detect -H "X-API-Key: $KD" -F image=@"$D/img5.jpg"; check '[ $CODE = 200 ] && [ "$(jget j.faces.length)" -ge 1 ]'
req POST /api/v1/analyze -H "X-API-Key: $KD" -F image=@"$D/img5.jpg"; check '[ $CODE = 200 ] && [ "$(jget "typeof j.faces[0].quality.pass")" = boolean ]'

# ---- persons, consent, faces, identify, records ----
O=(-H "X-API-Key: $KO")
req POST /api/v1/persons "${O[@]}" -F name=Alice -F group=A -F external_id=110101 -F consent_by=Alice -F consent_purpose="building access" -F image=@"$D/img5.jpg"
check '[ $CODE = 201 ] && [ "$(jget j.faces)" = 1 ] && [ "$(jget j.consent.purpose)" = "building access" ] && [ "$(jget j.consent.recorded_by)" = apikey:k-operator ]'
ALICE=$(jget j.id)
printf '{"name":"Bob","group":"B","metadata":{"unit":"3-201"},"consent":{"by":"Bob","purpose":"access"},"images":["%s"]}' "$B12" > "$T/bob.json"
req POST /api/v1/persons "${O[@]}" -H 'Content-Type: application/json' --data-binary @"$T/bob.json"
check '[ $CODE = 201 ] && [ "$(jget j.metadata.unit)" = 3-201 ]'
BOB=$(jget j.id)
req POST /api/v1/persons "${O[@]}" -F name=Alice2 -F group=A -F external_id=110101 -F consent_by=A -F consent_purpose=p -F image=@"$D/img5.jpg"
check '[ $CODE = 409 ]'
req POST /api/v1/persons/$ALICE/faces "${O[@]}" -F image=@"$D/img2.jpg"; check '[ $CODE = 201 ]'
req GET /api/v1/persons/$ALICE/faces "${O[@]}"; check '[ $CODE = 200 ] && [ "$(jget j.items.length)" = 2 ]'
FID=$(jget j.items[0].id)
req GET /api/v1/persons/$ALICE/faces/$FID/image "${O[@]}"; check '[ $CODE = 200 ] && cmp -s "$T/body" "$D/img5.jpg"'
req GET "/api/v1/persons?name=ali" "${O[@]}"; check '[ $CODE = 200 ] && [ "$(jget j.total)" = 1 ] && [ "$(jget j.items[0].name)" = Alice ]'
req GET "/api/v1/persons?group=B" "${O[@]}"; check '[ "$(jget j.items[0].name)" = Bob ]'
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img1.jpg" -F source=door-7
check '[ $CODE = 200 ] && [ "$(jget j.decision)" = match ] && [ "$(jget j.matches[0].name)" = Alice ]'
REC=$(jget j.record_id)
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img1.jpg" -F group=B
check '[ $CODE = 200 ] && [ "$(jget j.decision)" = stranger ] && [ "$(jget j.unknown)" = true ]'
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$T/captcha.png"; check '[ $CODE = 422 ]'
req GET "/api/v1/records?matched=true" -H "X-API-Key: $KU"; check '[ $CODE = 200 ] && [ "$(jget j.total)" = 1 ] && [ "$(jget j.items[0].source)" = door-7 ]'
req GET "/api/v1/records?matched=false" "${O[@]}"; check '[ "$(jget j.total)" = 1 ] && [ "$(jget j.items[0].decision)" = stranger ]'
req GET "/api/v1/records?name=Alice&min_score=0.5&source=door-7" "${O[@]}"; check '[ "$(jget j.total)" = 1 ]'
req GET "/api/v1/records?source=nowhere" "${O[@]}"; check '[ "$(jget j.total)" = 0 ]'
req GET "/api/v1/records?from=1&to=2" "${O[@]}"; check '[ "$(jget j.total)" = 0 ]'
req GET "/api/v1/records?limit=1&offset=1" "${O[@]}"; check '[ "$(jget j.items.length)" = 1 ] && [ "$(jget j.total)" = 2 ]'
req GET /api/v1/records/$REC/snapshot "${O[@]}"; check '[ $CODE = 200 ] && cmp -s "$T/body" "$D/img1.jpg"'
check '! grep -qa "JFIF" "$G/server.db"'  # snapshots are sealed at rest
req GET /api/v1/records/$REC "${O[@]}"; check '[ "$(jget j.enrolment_image_url)" != null ]'

# ---- PUT person: only what is sent changes; the answer is GET's; 400 / 404 / 409 ----
OJ=("${O[@]}" -H 'Content-Type: application/json')
req PUT /api/v1/persons/$BOB "${OJ[@]}" -d '{"name":"Bob Li","metadata":{"unit":"5-102"},"consent":{"by":"Bob Li","purpose":"access and visitors"}}'
check '[ $CODE = 200 ] && [ "$(jget j.name)" = "Bob Li" ] && [ "$(jget j.metadata.unit)" = 5-102 ] && [ "$(jget j.group)" = B ] && [ "$(jget j.faces)" = 1 ] && [ "$(jget j.consent.purpose)" = "access and visitors" ] && [ "$(jget j.consent.recorded_by)" = apikey:k-operator ]'
cp "$T/body" "$T/put.json"
req GET /api/v1/persons/$BOB "${O[@]}"; check '[ $CODE = 200 ] && cmp -s "$T/body" "$T/put.json"'
req PUT /api/v1/persons/$BOB "${OJ[@]}" -d '{"external_id":"110101","group":"A"}'; check '[ $CODE = 409 ] && [ "$(jget j.error.code)" = conflict ]'
req GET /api/v1/persons/$BOB "${O[@]}"; check '[ "$(jget j.group)" = B ] && [ "$(jget j.external_id)" = "" ]'   # nothing changed
for b in '{"name":""}' '{"name":7}' '{"group":[1]}' '{"external_id":{}}' '{"metadata":[1]}' '{"metadata":"x"}' '{"nickname":"b"}' '{}' '{"consent":{"by":"x"}}'; do
  req PUT /api/v1/persons/$BOB "${OJ[@]}" -d "$b"
  if [ $CODE = 400 ] && [ "$(jget j.error.code)" = bad_request ]; then ok; else bad "PUT person $b -> $CODE"; fi
done
req PUT /api/v1/persons/$BOB "${OJ[@]}" -d '{"name":'; check '[ $CODE = 400 ] && [ "$(jget j.error.code)" = bad_json ]'
req PUT /api/v1/persons/$BOB "${O[@]}" -F name=x; check '[ $CODE = 400 ]'   # JSON only
req PUT /api/v1/persons/999999 "${OJ[@]}" -d '{"name":"x"}'; check '[ $CODE = 404 ]'
req PUT /api/v1/persons/$BOB -H "X-API-Key: $KU" -H 'Content-Type: application/json' -d '{"name":"x"}'; check '[ $CODE = 403 ]'
# a new group reaches identification: Bob is found in C, no longer in B
req PUT /api/v1/persons/$BOB "${OJ[@]}" -d '{"group":"C","external_id":"B-1"}'; check '[ $CODE = 200 ] && [ "$(jget j.group)" = C ] && [ "$(jget j.external_id)" = B-1 ]'
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img12.jpg" -F group=C -F source=put-test
check '[ $CODE = 200 ] && [ "$(jget j.decision)" = match ] && [ "$(jget j.matches[0].person_id)" = $BOB ]'
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img12.jpg" -F group=B -F source=put-test
check '[ $CODE = 200 ] && [ "$(jget j.matches.length)" = 0 ]'
req PUT /api/v1/persons/$BOB "${OJ[@]}" -d '{"group":"B","external_id":null}'; check '[ $CODE = 200 ] && [ "$(jget j.group)" = B ] && [ "$(jget j.external_id)" = "" ]'
req GET "/api/v1/audit?action=PUT%20/api/v1/persons" -H "X-API-Key: $KU"
check '[ "$(jget j.items[0].target)" = person:$BOB ] && [ "$(jget j.items[0].status)" = 200 ] && [[ "$(jget j.items[0].detail)" == *group* ]]'

# ---- DELETE one face: template, sealed image and index entry go; only the person's own faces ----
req POST /api/v1/persons "${O[@]}" -F name=Carol -F group=D -F consent_by=Carol -F consent_purpose=test -F image=@"$D/img12.jpg"
check '[ $CODE = 201 ]'; CAROL=$(jget j.id); CF=$(jget j.face_ids[0])
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img12.jpg" -F group=D -F source=face-test
check '[ "$(jget j.decision)" = match ] && [ "$(jget j.matches[0].person_id)" = $CAROL ]'
req DELETE /api/v1/persons/$BOB/faces/$CF "${O[@]}"; check '[ $CODE = 404 ]'   # not Bob's face
req DELETE /api/v1/persons/$CAROL/faces/$CF -H "X-API-Key: $KU"; check '[ $CODE = 403 ]'
req DELETE /api/v1/persons/$CAROL/faces/$CF "${O[@]}"; check '[ $CODE = 200 ] && [ "$(body)" = "{\"ok\":true}" ]'
req DELETE /api/v1/persons/$CAROL/faces/$CF "${O[@]}"; check '[ $CODE = 404 ]'
req GET /api/v1/persons/$CAROL/faces/$CF/image "${O[@]}"; check '[ $CODE = 404 ]'
req GET /api/v1/persons/$CAROL "${O[@]}"; check '[ $CODE = 200 ] && [ "$(jget j.faces)" = 0 ]'
check '[ "$(sqlite3 "$G/facekit.db" "SELECT count(*) FROM fk_faces WHERE id=$CF")" = 0 ]'
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img12.jpg" -F group=D -F source=face-test
check '[ $CODE = 200 ] && [ "$(jget j.decision)" = stranger ] && [ "$(jget "j.matches.filter(m=>m.person_id===$CAROL).length")" = 0 ]'
req GET "/api/v1/audit?action=DELETE" -H "X-API-Key: $KU"; check '[ "$(jget j.items[0].target)" = "person:$CAROL/face:$CF" ]'
req DELETE /api/v1/persons/$CAROL "${O[@]}"; check '[ $CODE = 200 ]'

# ---- records.csv: the records query as RFC 4180 CSV, formula cells defused ----
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img1.jpg" -F 'source==HYPERLINK("http://x","a,b")'
check '[ $CODE = 200 ]'
req GET "/api/v1/records.csv?source=door-7" -H "X-API-Key: $KU"
check '[ $CODE = 200 ] && [ "$(hdr Content-Type)" = "text/csv; charset=utf-8; header=present" ] && [[ "$(hdr Content-Disposition)" == attachment* ]]'
check '[ "$(head -1 "$T/body")" = "$(printf "id,time,source,decision,matched,person_id,person_name,face_id,score,cosine,liveness\r")" ] && [ "$(wc -l < "$T/body")" = 2 ] && [ "$(grep -c $'"'"'\r$'"'"' "$T/body")" = 2 ]'
check 'sed -n 2p "$T/body" | grep -q "^$REC,20[0-9-]*T[0-9:]*Z,door-7,match,true,$ALICE,Alice,[0-9]*,[01]\.[0-9]*,"'
req GET "/api/v1/records.csv?source=%3DHYPERLINK(%22http%3A%2F%2Fx%22%2C%22a%2Cb%22)" "${O[@]}"
check '[ $CODE = 200 ] && [ "$(wc -l < "$T/body")" = 2 ] && sed -n 2p "$T/body" | grep -qF ",\"'"'"'=HYPERLINK(\"\"http://x\"\",\"\"a,b\"\")\","'
req GET "/api/v1/records?matched=false&limit=1" "${O[@]}"; NREC=$(jget j.total)
req GET "/api/v1/records.csv?matched=false" "${O[@]}"; check '[ $CODE = 200 ] && [ "$(( $(wc -l < "$T/body") - 1 ))" = "$NREC" ] && ! grep -q ",true," "$T/body"'
req GET "/api/v1/records.csv?limit=0" "${O[@]}"; check '[ $CODE = 400 ]'
req GET /api/v1/records.csv -H "X-API-Key: $KD"; check '[ $CODE = 403 ]'

# ---- stats: today's decisions in a stated time zone, per source ----
req GET "/api/v1/records?limit=1" "${O[@]}"; NALL=$(jget j.total)
req GET "/api/v1/stats?from=0&to=4000000000" -H "X-API-Key: $KU"
check '[ $CODE = 200 ] && [ "$(jget j.totals.total)" = "$NALL" ] && [ "$(jget "j.totals.match+j.totals.stranger+j.totals.spoof")" = "$NALL" ]'
check '[ "$(jget "JSON.stringify(j.by_source.find(x=>x.source===\"door-7\"))")" = "{\"source\":\"door-7\",\"match\":1,\"stranger\":0,\"spoof\":0,\"total\":1}" ]'
check '[ "$(jget "j.by_source.find(x=>x.source===\"face-test\").stranger")" = 1 ] && [ "$(jget j.gallery.persons)" = 2 ]'
req GET "/api/v1/stats?tz_offset=480" "${O[@]}"
check '[ $CODE = 200 ] && [ "$(jget j.timezone)" = UTC+08:00 ] && [ "$(jget "j.to-j.from")" = 86400 ] && [ "$(jget "(j.from+8*3600)%86400")" = 0 ] && [ "$(jget "j.from<=j.generated_at && j.generated_at<j.to")" = true ]'
req GET /api/v1/stats "${A[@]}"; check '[ $CODE = 200 ] && [[ "$(jget j.timezone)" =~ ^UTC[+-][0-9][0-9]:[0-9][0-9]$ ]] && [ "$(jget "j.to-j.from")" = 86400 ]'
req GET "/api/v1/stats?tz_offset=900" "${O[@]}"; check '[ $CODE = 400 ]'
req GET /api/v1/stats -H "X-API-Key: $KD"; check '[ $CODE = 403 ]'

# ---- models: the template model, calibration, thresholds ----
req GET /api/v1/models -H "X-API-Key: $KD"
check '[ $CODE = 200 ] && [[ "$(jget j.model_id)" == fr_feature:* ]] && [ "$(jget j.dim)" = 512 ] && [ "$(jget j.calibration.calibrated)" = true ] && [ "$(jget "j.models.includes(\"feature\")")" = true ]'
MTHR=$(jget j.in_effect.compare_threshold)
req GET /api/v1/settings -H "X-API-Key: $KD"; check '[ "$(jget j.compare_threshold)" = "$MTHR" ]'
# delete: every face goes, an audit entry stays
req DELETE /api/v1/persons/$ALICE "${O[@]}"; check '[ $CODE = 200 ] && [ "$(jget j.deleted_faces)" = 2 ]'
req GET /api/v1/persons/$ALICE "${O[@]}"; check '[ $CODE = 404 ]'
req GET /api/v1/persons/$ALICE/faces/$FID/image "${O[@]}"; check '[ $CODE = 404 ]'
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img1.jpg"; check '[ "$(jget j.decision)" = stranger ]'
req GET "/api/v1/audit?action=DELETE" -H "X-API-Key: $KU"
check '[ $CODE = 200 ] && [ "$(jget j.items[0].target)" = person:$ALICE ] && [ "$(jget j.items[0].actor)" = apikey:k-operator ] && [ "$(jget j.items[0].status)" = 200 ]'
req GET "/api/v1/audit?action=GET%20/api/v1/persons" -H "X-API-Key: $KU"; check '[ "$(jget "j.total>=3")" = true ]'  # personal-data reads
req GET /api/v1/audit.csv -H "X-API-Key: $KU"; check '[ $CODE = 200 ] && head -1 "$T/body" | grep -q "^id,time,actor,role,address,action,target,status,detail,hash"'
check '[ "$(grep -vc $'"'"'\r$'"'"' "$T/body")" = 0 ] && grep -q "^[0-9]*,[0-9]*,apikey:k-operator,operator,127.0.0.1,DELETE /api/v1/persons/$ALICE,person:$ALICE,200," "$T/body"'

# ---- support messages, settings ----
req POST /api/v1/support -H "X-API-Key: $KD" -H 'Content-Type: application/json' -d '{"message":"camera offline","contact":"+86 138"}'
check '[ $CODE = 201 ]'; SUP=$(jget j.id)
req POST /api/v1/support/$SUP/reply "${A[@]}" -H 'Content-Type: application/json' -d '{"reply":"fixed"}'
check '[ $CODE = 200 ] && [ "$(jget j.reply)" = fixed ]'
req GET /api/v1/support -H "X-API-Key: $KD"; check '[ "$(jget j.items[0].reply)" = fixed ]'
req PUT /api/v1/settings "${A[@]}" -H 'Content-Type: application/json' -d '{"compare_threshold":0.8,"retention_days":30,"compare_url":"http://10.0.0.2/api/v1/compare","camera":{"led":"blink","power_line_hz":60,"mirror":true,"exposure":"manual","shutter":"fixed","shutter_us":2000}}'
check '[ $CODE = 200 ] && [ "$(jget j.camera.led)" = blink ] && [ "$(jget j.camera.white_balance)" = auto ]'
req PUT /api/v1/settings "${A[@]}" -H 'Content-Type: application/json' -d '{"camera":{"led":"dim"}}'; check '[ $CODE = 400 ]'
req PUT /api/v1/settings "${A[@]}" -H 'Content-Type: application/json' -d '{"bogus":1}'; check '[ $CODE = 400 ]'
req PUT /api/v1/settings "${A[@]}" -H 'Content-Type: application/json' -d '{"compare_threshold":2}'; check '[ $CODE = 400 ]'
req GET /api/v1/metrics "${A[@]}"; check '[ $CODE = 200 ] && grep -q "^facekit_compare_total [1-9]" "$T/body"'
# spoof: liveness required with an unreachable threshold -> decision spoof, kept in records
req PUT /api/v1/settings "${A[@]}" -H 'Content-Type: application/json' -d '{"liveness_required":true,"liveness_threshold":1}'
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img12.jpg"; check '[ $CODE = 200 ] && [ "$(jget j.decision)" = spoof ]'
req GET "/api/v1/records?decision=spoof" "${O[@]}"; check '[ "$(jget j.total)" = 1 ] && [ "$(jget "j.items[0].liveness!==null")" = true ]'
req PUT /api/v1/settings "${A[@]}" -H 'Content-Type: application/json' -d '{"liveness_required":false}'
# logout ends the session
req POST /api/v1/auth/logout "${CS[@]}"; check '[ $CODE = 200 ] && grep -qi "^Set-Cookie: fk_session=;" "$T/hdr"'
req GET /api/v1/auth/me "${C[@]}"; check '[ $CODE = 401 ]'
req GET /metrics -H "X-API-Key: $KU"; check '[ $CODE = 200 ]'

# ---- SIGTERM during a request: the request completes, the server exits 0 ----
curl -s -o "$T/late" -w '%{http_code}' -H "X-API-Key: $KA" -F a=@"$D/img1.jpg" -F b=@"$D/img2.jpg" "$URL/api/v1/compare" > "$T/late.code" &
CPID=$!
sleep 0.5
stop_server
wait $CPID
check '[ $SRC = 0 ] && [ "$(cat "$T/late.code")" = 200 ] && grep -q stopped "$SERR"'
sqlite3 "$G/server.db" "UPDATE records SET time=1000 WHERE id=$REC"   # older than retention_days (30)

# ---- restart: settings persist; limits ----
start_server "$G" FK_SERVE_MAX_BODY=1000000 FK_SERVE_MAX_HEADER=4096 FK_SERVE_WEB_DIR="$T/nowhere"
# no console directory: a clear log line and 404 at /, the API unaffected
req GET /; check '[ $CODE = 404 ] && [ "$(jget j.error.code)" = not_found ] && grep -q "web console: $T/nowhere has no index.html" "$SERR"'
req GET /api/v1/health; check '[ $CODE = 200 ]'
req GET /api/v1/settings -H "X-API-Key: $KD"
check '[ $CODE = 200 ] && [ "$(jget j.camera.led)" = blink ] && [ "$(jget j.camera.power_line_hz)" = 60 ] && [ "$(jget j.compare_threshold)" = 0.8 ] && [ "$(jget j.compare_url)" = http://10.0.0.2/api/v1/compare ]'
check '! grep -q "one-time password" "$SOUT"'   # printed on the first start only
req GET /api/v1/records/$REC "${O[@]}"; check '[ $CODE = 404 ]'   # removed by retention at start
req POST /api/v1/persons "${O[@]}" -F name=Huge -F consent_by=H -F consent_purpose=p -F image=@"$D/img1.jpg"
check '[ $CODE = 413 ]'
head -c 1500000 /dev/zero | curl -s -o "$T/body" -w '%{http_code}' -H "X-API-Key: $KO" -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @- "$URL/api/v1/persons" > "$T/code"
check '[ "$(cat "$T/code")" = 413 ] && [ "$(jget j.error.code)" = too_large ]'
req GET /api/v1/persons "${O[@]}"; check '[ "$(jget j.total)" = 1 ]'   # only Bob
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 30000 /dev/zero | tr '\0' a)" "$URL/api/v1/health")
check '[ "$code" = 431 ] || [ "$code" = 413 ]'
stop_server

# ---- HTTPS through libmicrohttpd's GnuTLS support: a self-signed certificate ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 -subj /CN=127.0.0.1 >/dev/null 2>&1
start_server "$G" FK_SERVE_TLS_CERT="$T/cert.pem" FK_SERVE_TLS_KEY="$T/key.pem"
check 'grep -q "listening on https://" "$SOUT"'
code=$(curl -s -k -o "$T/body" -w '%{http_code}' "https://127.0.0.1:$PORT/api/v1/health"); check '[ "$code" = 200 ] && [ "$(jget j.status)" = ok ]'
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/health"); check '[ "$code" != 200 ]'
captcha_tls=$(curl -s -k "https://127.0.0.1:$PORT/api/v1/captcha" | node -e 'let b="";process.stdin.on("data",c=>b+=c).on("end",()=>console.log(JSON.parse(b).captcha_id))')
curl -s -k -D "$T/hdr" -o /dev/null -H 'Content-Type: application/json' -d "{\"username\":\"olga\",\"password\":\"wrong-password\",\"captcha_id\":\"$captcha_tls\",\"captcha\":\"x\"}" "https://127.0.0.1:$PORT/api/v1/auth/login"
check 'grep -q "^HTTP/1.1 401" "$T/hdr"'
stop_server

# ---- the console directory from the config file (web_dir) ----
printf '{"web_dir": "%s"}\n' "$W" > "$T/web.json"
PORT=$(free_port); URL="http://127.0.0.1:$PORT"
"$SB" serve --data "$G" --listen "127.0.0.1:$PORT" --config "$T/web.json" > "$T/web.out" 2> "$T/serve.web.err" &
SPID=$!
for _ in $(seq 1 600); do grep -q "listening on" "$T/web.out" 2>/dev/null && break; kill -0 $SPID 2>/dev/null || break; sleep 0.1; done
req GET /; check '[ $CODE = 200 ] && cmp -s "$T/body" "$W/index.html" && grep -q "web console: serving $W at /" "$T/serve.web.err"'
stop_server

# ---- audit chain: verify, tamper, verify names the entry ----
"$B" audit verify --data "$G" > "$T/v.out" 2>&1; rc=$?
check '[ $rc = 0 ] && grep -q "intact" "$T/v.out"'
sqlite3 "$G/server.db" "UPDATE audit SET detail='edited' WHERE id=5"
"$B" audit verify --data "$G" > "$T/v.out" 2>&1; rc=$?
check '[ $rc = 1 ] && grep -q "entry 5" "$T/v.out"'
check '! sqlite3 "$G/server.db" "DELETE FROM audit WHERE id=6" 2>/dev/null'

# ---- user add from the CLI ----
echo "Audit-Pass-123" | "$B" user add --data "$G" --name aud --role auditor --password-stdin >/dev/null; rc=$?
check '[ $rc = 0 ]'
echo "short" | "$B" user add --data "$G" --name aud2 --role auditor --password-stdin 2>/dev/null; rc=$?
check '[ $rc != 0 ]'

# ---- secrets never logged ----
cat "$T"/serve.*.err > "$T/all.err"
check '! grep -q "$ADMIN_PW" "$T/all.err" && ! grep -q "Olga-Pass-123" "$T/all.err" && ! grep -q "$KA" "$T/all.err" && ! grep -q "$COOKIE" "$T/all.err" && ! grep -q K7P2Q "$T/all.err"'
check '! sqlite3 "$G/server.db" "SELECT * FROM audit" | grep -q -e "$ADMIN_PW" -e Olga-Pass-123 -e "$KA"'

finish
