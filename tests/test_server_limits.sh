#!/usr/bin/env bash
# test_server_limits.sh — `facekit serve` under hostile clients and with debug logging, end to end on
# loopback: (1) secrets never reach the log — a login / password change / API key flow with log_level
# debug, then the captured log is searched for every secret (passwords, API keys, session token, CSRF
# token, captcha answer, data key); (2) oversized head -> 431 JSON; (3) oversized body -> 413 JSON, with
# nothing stored (persons count and gallery files' bytes unchanged); (4) max_uploads bodies in flight ->
# 503 busy with Retry-After; (5) a client stalling mid-request (raw socket: half a head, half a body, or a
# body trickled a byte at a time) is disconnected after request_timeout, its upload slot is freed and the
# server keeps serving; libmicrohttpd closes such connections without an answer (it cannot send 408
# there); (6) max_connections_per_ip refuses a third connection from one address.
set -u
SB=${FK_BIN_TESTHOOKS:?FK_BIN_TESTHOOKS must point to facekit-testhooks}
B=${FK_BIN:?}
SRC=${FK_SOURCE_DIR:?}
D=${FK_DATA:-../shared/data}/faces/deepface
T=$(mktemp -d /tmp/fk_server_limits.XXXXXX)
. "$SRC/tests/server_lib.sh"
for f in img50.jpg img51.jpg img1.jpg; do
  [ -f "$D/$f" ] || { echo "FAIL: test data missing: $D/$f (../shared/data)"; echo "0 passed, 1 failed"; exit 1; }
done
cleanup() { kill -TERM ${SPID:-0} 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
unset FK_DATA_KEY FK_DB
G=$T/data

# raw-socket client: node stall.js MODE PORT [KEY] -> prints "closed SECONDS BYTES_RECEIVED"
cat > "$T/stall.js" <<'EOF'
const net = require("net");
const [mode, port, key] = process.argv.slice(2);
const t0 = Date.now();
let got = 0, timer = null;
const s = net.connect(+port, "127.0.0.1", () => {
  if (mode === "head") s.write("GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Half: ");
  else if (mode === "chunked")  // no Content-Length: still an upload that holds a slot
    s.write("POST /api/v1/compare HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key +
      "\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n--b\r\n\r\n");
  else {
    s.write("POST /api/v1/compare HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key +
      "\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n");
    if (mode === "trickle") timer = setInterval(() => s.write("x"), 400);
  }
  console.error("sent");
});
s.on("data", d => { got += d.length; console.error("answer: " + d.toString().split("\r\n")[0]); });
s.on("error", () => {});
s.on("close", () => { clearInterval(timer); console.log("closed " + ((Date.now() - t0) / 1000).toFixed(1) + " " + got); process.exit(0); });
setTimeout(() => { console.log("open " + ((Date.now() - t0) / 1000).toFixed(1) + " " + got); process.exit(0); }, 20000);
EOF

start_server "$G" FK_TEST_CAPTCHA_ANSWER=K7P2Q FK_SERVE_LOG_LEVEL=debug FK_SERVE_MAX_BODY=1000000 \
  FK_SERVE_MAX_HEADER=4096 FK_SERVE_REQUEST_TIMEOUT=2 FK_SERVE_MAX_UPLOADS=2 FK_SERVE_THREADS=2 \
  || { echo "0 passed, 1 failed"; exit 1; }
ADMIN_PW=$(sed -n 's/.*one-time password: \([A-Za-z0-9]*\).*/\1/p' "$SOUT")
check '[ ${#ADMIN_PW} -ge 12 ]'

# ---- (1) secrets with debug logging ----
captcha() { req GET /api/v1/captcha; CID=$(jget j.captcha_id); }
login() { captcha; req POST /api/v1/auth/login -H 'Content-Type: application/json' \
  -d "{\"username\":\"$1\",\"password\":\"$2\",\"captcha_id\":\"$CID\",\"captcha\":\"$3\"}"; }
login admin "Wrong-Secret-987" K7P2Q; check '[ $CODE = 401 ]'
login admin "$ADMIN_PW" K7P2Q; check '[ $CODE = 200 ]'
CSRF=$(jget j.csrf_token)
COOKIE=$(sed -n 's/^Set-Cookie: fk_session=\([0-9a-f]*\);.*/\1/ip' "$T/hdr" | tr -d '\r')
C=(-H "Cookie: fk_session=$COOKIE" -H "X-CSRF-Token: $CSRF")
req POST /api/v1/auth/password "${C[@]}" -H 'Content-Type: application/json' \
  -d "{\"old_password\":\"$ADMIN_PW\",\"new_password\":\"New-Admin-Secret-456\"}"
check '[ $CODE = 200 ]'
req POST /api/v1/apikeys "${C[@]}" -H 'Content-Type: application/json' -d '{"name":"door-9","role":"device"}'
KW=$(jget j.key); check '[ $CODE = 201 ] && [ ${#KW} -ge 32 ]'
KO=$("$B" apikey create --data "$G" --role operator --name op | tail -1)
req GET /api/v1/settings -H "X-API-Key: $KW"; check '[ $CODE = 200 ]'
req GET /api/v1/persons -H "X-API-Key: $KO"; check '[ $CODE = 200 ]'
req POST /api/v1/auth/logout "${C[@]}"; check '[ $CODE = 200 ]'

# ---- (2) head over max_header (4096): 431 with a JSON error ----
req GET /api/v1/health -H "X-Big: $(head -c 6000 /dev/zero | tr '\0' a)"
check '[ $CODE = 431 ] && [ "$(jget j.error.code)" = headers_too_large ]'
req GET "/api/v1/health?pad=$(head -c 5000 /dev/zero | tr '\0' a)"   # the query string is part of the head
check '[ $CODE = 431 ] && [ "$(jget j.error.code)" = headers_too_large ]'
# far beyond the connection's memory: libmicrohttpd's own 431 (its HTML body), still not a crash
{ printf 'X-Huge: '; head -c 200000 /dev/zero | tr '\0' a; echo; } > "$T/huge.hdr"
code=$(curl -s -o /dev/null -w '%{http_code}' -H @"$T/huge.hdr" "$URL/api/v1/health")
check '[ "$code" = 431 ]'
req GET /api/v1/health; check '[ $CODE = 200 ]'

# ---- (3) body over max_body (1 MB): 413 JSON, nothing stored ----
gallery_bytes() { cat "$G"/facekit.db* 2>/dev/null | wc -c; find "$G" -type f ! -name 'server.db*' | sort | xargs -r ls -l | awk '{print $5, $9}' | md5sum; }
req GET /api/v1/persons -H "X-API-Key: $KO"; P0=$(jget j.total)
GB0=$(gallery_bytes)
head -c 1200000 /dev/urandom > "$T/pad"
cat "$D/img1.jpg" "$T/pad" > "$T/big.jpg"
req POST /api/v1/persons -H "X-API-Key: $KO" -F name=Huge -F consent_by=H -F consent_purpose=p -F image=@"$T/big.jpg"
check '[ $CODE = 413 ] && [ "$(jget j.error.code)" = too_large ]'
head -c 1500000 /dev/zero | curl -s -o "$T/body" -w '%{http_code}' -H "X-API-Key: $KO" -H 'Content-Type: application/json' \
  -H 'Transfer-Encoding: chunked' --data-binary @- "$URL/api/v1/persons" > "$T/code"
check '[ "$(cat "$T/code")" = 413 ] && [ "$(jget j.error.code)" = too_large ]'
req GET /api/v1/persons -H "X-API-Key: $KO"; check '[ "$(jget j.total)" = "$P0" ]'
check '[ "$(gallery_bytes)" = "$GB0" ]'

# ---- (4) + (5) two stalled uploads (Content-Length, chunked) fill max_uploads (2): the next gets 503 ----
node "$T/stall.js" body "$PORT" "$KW" > "$T/s1" 2> "$T/s1.err" &
S1=$!
node "$T/stall.js" chunked "$PORT" "$KW" > "$T/s2" 2> "$T/s2.err" &
S2=$!
node "$T/stall.js" head "$PORT" > "$T/s3" 2> "$T/s3.err" &
S3=$!
for _ in $(seq 1 100); do grep -q sent "$T/s1.err" && grep -q sent "$T/s2.err" && grep -q sent "$T/s3.err" && break; sleep 0.1; done
sleep 0.3   # the server has read both heads (loopback)
req POST /api/v1/compare -H "X-API-Key: $KW" -F a=@"$D/img50.jpg" -F b=@"$D/img51.jpg"
check '[ $CODE = 503 ] && [ "$(jget j.error.code)" = busy ] && grep -qi "^Retry-After: 1" "$T/hdr"'
req GET /api/v1/health; check '[ $CODE = 200 ]'   # requests without a body still served meanwhile
wait $S1 $S2 $S3
# closed by the server after the 2 s request timeout, without any answer
check 'read w s n < "$T/s1" && [ $w = closed ] && [ $n = 0 ]'
check 'read w s n < "$T/s2" && [ $w = closed ] && [ $n = 0 ]'
check 'read w s n < "$T/s3" && [ $w = closed ] && [ $n = 0 ]'
echo "stalled clients: $(cat "$T/s1") / $(cat "$T/s2") / $(cat "$T/s3") (closed SECONDS BYTES)"
# a body trickled one byte every 0.4 s never trips the idle timeout; the total-time check closes it
node "$T/stall.js" trickle "$PORT" "$KW" > "$T/s4" 2> "$T/s4.err"
check 'read w s n < "$T/s4" && [ $w = closed ] && [ $n = 0 ]'
echo "trickling client: $(cat "$T/s4")"
# the slots are free again: an upload is served
req POST /api/v1/compare -H "X-API-Key: $KW" -F a=@"$D/img50.jpg" -F b=@"$D/img51.jpg"
check '[ $CODE = 200 ] && [ "$(jget "typeof j.score")" = number ]'
req GET /api/v1/metrics -H "X-API-Key: $KO"; check '[ $CODE = 403 ]'   # metrics: admin and auditor only
stop_server
check '[ $SRC = 0 ]'

# ---- max_connections_per_ip (2): slow clients from one address hold at most two connections ----
start_server "$G" FK_SERVE_MAX_CONNECTIONS_PER_IP=2 FK_SERVE_REQUEST_TIMEOUT=2
node "$T/stall.js" head "$PORT" > "$T/s5" 2> "$T/s5.err" &
S5=$!
node "$T/stall.js" head "$PORT" > "$T/s6" 2> "$T/s6.err" &
S6=$!
for _ in $(seq 1 100); do grep -q sent "$T/s5.err" && grep -q sent "$T/s6.err" && break; sleep 0.1; done
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/health")
check '[ "$code" = 000 ]'   # refused: the connection is closed before any answer
wait $S5 $S6
req GET /api/v1/health; check '[ $CODE = 200 ]'   # the stalled two timed out: served again
stop_server
check '[ $SRC = 0 ]'

# ---- the captured log: debug lines present, no secret in it ----
cat "$T"/serve.*.err > "$T/all.err"
check 'grep -q "debug: .*POST /api/v1/auth/login -> 200" "$T/all.err"'
check 'grep -q "debug: .*POST /api/v1/apikeys -> 201" "$T/all.err"'
check 'grep -q "warn: login failed for \"admin\"" "$T/all.err"'
KEYHEX=$(od -An -tx1 -v "$G/facekit.key" | tr -d ' \n')
KEYB64=$(base64 -w0 < "$G/facekit.key")
leaks=0
for secret in "$ADMIN_PW" New-Admin-Secret-456 Wrong-Secret-987 "$KW" "$KO" "$COOKIE" "$CSRF" K7P2Q k7p2q "$KEYHEX" "$KEYB64" "$(head -c 64 "$G/facekit.key")"; do
  [ -n "$secret" ] || continue
  if grep -qiF -- "$secret" "$T/all.err"; then leaks=$((leaks + 1)); echo "secret in the log: ${secret:0:6}..." >&2; fi
done
check '[ $leaks = 0 ]'
check '[ -s "$T/all.err" ] && [ "$(wc -l < "$T/all.err")" -ge 10 ]'
finish
