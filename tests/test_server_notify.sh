#!/usr/bin/env bash
# test_server_notify.sh — the notification outbox of `facekit serve`: events (match, stranger) made while
# the receiver is down are kept, survive a server restart, are delivered once the receiver is up, and are
# never delivered twice (the receiver, a tiny node server on loopback, counts deliveries by event id).
set -u
B=${FK_BIN:?FK_BIN must point to the facekit binary}
SB=$B
SRC=${FK_SOURCE_DIR:?}
D=${FK_DATA:-../shared/data}/faces/deepface
T=$(mktemp -d /tmp/fk_server_notify.XXXXXX)
. "$SRC/tests/server_lib.sh"
for f in img5.jpg img1.jpg img12.jpg; do
  [ -f "$D/$f" ] || { echo "FAIL: test data missing: $D/$f (../shared/data)"; echo "0 passed, 1 failed"; exit 1; }
done
RPID=0
cleanup() { kill -TERM ${SPID:-0} 2>/dev/null; [ $RPID != 0 ] && kill $RPID 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
unset FK_DATA_KEY FK_DB
G=$T/data
RPORT=$(free_port)
: > "$T/deliveries"

start_receiver() { # appends one line per delivery "event_id type" to $T/deliveries
  node -e '
    const fs = require("fs");
    require("http").createServer((q, s) => {
      let b = ""; q.on("data", c => b += c); q.on("end", () => {
        if (q.url !== "/hook") { s.end("ready"); return; }
        try { const e = JSON.parse(b); fs.appendFileSync(process.argv[2], e.event_id + " " + e.type + " " + q.headers["x-facekit-event-id"] + "\n"); }
        catch (x) { s.statusCode = 400; }
        s.end("ok");
      });
    }).listen(+process.argv[1], "127.0.0.1");' "$RPORT" "$T/deliveries" &
  RPID=$!
  for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$RPORT/ready" && break; sleep 0.1; done
}

start_server "$G" FK_SERVE_NOTIFY_INTERVAL_MS=200 FK_SERVE_NOTIFY_MAX_BACKOFF=1 || { echo "0 passed, 1 failed"; exit 1; }
KA=$("$B" apikey create --data "$G" --role admin --name admin-key | tail -1)
KD=$("$B" apikey create --data "$G" --role device --name gate | tail -1)
A=(-H "X-API-Key: $KA")
req PUT /api/v1/settings "${A[@]}" -H 'Content-Type: application/json' -d "{\"notify_url\":\"http://127.0.0.1:$RPORT/hook\"}"
check '[ $CODE = 200 ]'
req POST /api/v1/persons "${A[@]}" -F name=Alice -F consent_by=Alice -F consent_purpose=access -F image=@"$D/img5.jpg"
check '[ $CODE = 201 ]'
# receiver down: three events
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img1.jpg"; check '[ "$(jget j.decision)" = match ]'
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img12.jpg"; check '[ "$(jget j.decision)" = stranger ]'
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img5.jpg"; check '[ "$(jget j.decision)" = match ]'
sleep 1.5   # a few failed attempts
req GET /api/v1/notifications "${A[@]}"
check '[ $CODE = 200 ] && [ "$(jget j.total)" = 3 ] && [ "$(jget "j.items.filter(e=>e.delivered_at===0).length")" = 3 ] && [ "$(jget "j.items.some(e=>e.attempts>0)")" = true ]'
req GET /api/v1/metrics "${A[@]}"; check 'grep -q "^facekit_notify_pending 3" "$T/body"'
stop_server; check '[ $SRC = 0 ]'

# restart with the receiver still down, then bring it up: all three arrive, once each
start_server "$G" FK_SERVE_NOTIFY_INTERVAL_MS=200 FK_SERVE_NOTIFY_MAX_BACKOFF=1
start_receiver
for _ in $(seq 1 600); do [ "$(sort -u "$T/deliveries" | wc -l)" -ge 3 ] && break; sleep 0.2; done
check '[ "$(cut -d" " -f1 "$T/deliveries" | sort -u | wc -l)" = 3 ]'
check '[ "$(grep -c " match " "$T/deliveries")" = 2 ] && [ "$(grep -c " stranger " "$T/deliveries")" = 1 ]'
check 'awk "\$1 != \$3 { exit 1 }" "$T/deliveries"'   # X-Facekit-Event-Id header = body event_id
# one more event while everything is up
req POST /api/v1/identify -H "X-API-Key: $KD" -F image=@"$D/img1.jpg"; check '[ $CODE = 200 ]'
for _ in $(seq 1 300); do [ "$(wc -l < "$T/deliveries")" -ge 4 ] && break; sleep 0.2; done
stop_server
# a restart must not resend anything delivered
start_server "$G" FK_SERVE_NOTIFY_INTERVAL_MS=200 FK_SERVE_NOTIFY_MAX_BACKOFF=1
sleep 1.5
req GET /api/v1/notifications "${A[@]}"
check '[ "$(jget j.total)" = 4 ] && [ "$(jget "j.items.every(e=>e.delivered_at>0)")" = true ]'
stop_server
check '[ "$(wc -l < "$T/deliveries")" = 4 ] && [ "$(cut -d" " -f1 "$T/deliveries" | sort | uniq -d | wc -l)" = 0 ]'
finish
