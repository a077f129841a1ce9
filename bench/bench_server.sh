#!/usr/bin/env bash
# bench_server.sh — load on `facekit serve`: wrk, 32 connections for 20 s, posting two small JPEGs
# (multipart a, b) to /api/v1/compare with a device API key. Starts its own server on a free loopback
# port with a temporary data dir; prints wrk's report and a RESULT line (rps, p50/p90/p99, non-2xx,
# socket errors), the server's CPU per request and the face pipeline's CPU for the same two images (the
# floor); exits 1 when any request failed or answered non-2xx. Numbers go to docs/performance.md.
#   bench/bench_server.sh [FACEKIT_BIN]     env: FK_DATA, CONNS (32), SECS (20), WRK_THREADS (2), FK_SERVE_THREADS
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$top/build/facekit}
DATA=${FK_DATA:-$top/../shared/data}
# two small JPEGs of the same person (38 KB, 20 KB)
A=$DATA/faces/deepface/img50.jpg
B=$DATA/faces/deepface/img51.jpg
for f in "$A" "$B"; do [ -f "$f" ] || { echo "bench_server: missing $f (../shared/data)" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "bench_server: wrk is not installed (scripts/setup)" >&2; exit 1; }
T=$(mktemp -d /tmp/fk_bench_server.XXXXXX)
PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$BIN" serve --data "$T/data" --listen "127.0.0.1:$PORT" >"$T/out" 2>"$T/err" &
SPID=$!
trap 'kill -TERM $SPID 2>/dev/null; wait $SPID 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 1 300); do grep -q "listening on" "$T/out" && break; sleep 0.1; done
KEY=$("$BIN" apikey create --data "$T/data" --role device --name bench | tail -1)
# warm-up (each worker thread creates its context on first use)
for _ in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null -H "X-API-Key: $KEY" -F a=@"$A" -F b=@"$B" "http://127.0.0.1:$PORT/api/v1/compare"; done
cpu_ticks() { awk '{print $14 + $15}' /proc/$SPID/stat; }
c0=$(cpu_ticks)
echo "bench_server: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run; $(basename "$A") $(stat -c %s "$A") B + $(basename "$B") $(stat -c %s "$B") B"
FK_BENCH_A=$A FK_BENCH_B=$B FK_BENCH_KEY=$KEY wrk -t"${WRK_THREADS:-2}" -c"${CONNS:-32}" -d"${SECS:-20}s" --timeout 10s --latency \
  -s "$top/bench/bench_server.lua" "http://127.0.0.1:$PORT" | tee "$T/wrk"
c1=$(cpu_ticks)
n=$(sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p' "$T/wrk")
echo "bench_server: server CPU $(( (c1 - c0) * 1000 / $(getconf CLK_TCK) )) ms for $n requests: $(awk -v c=$((c1 - c0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", c * 1000 / hz / n }') ms CPU per request"
echo "bench_server: load average $(cut -d' ' -f1-3 /proc/loadavg) after the run"
# the floor: the face pipeline's own CPU for the two images (thread CPU time per stage, no liveness), so the
# service's share of "CPU per request" is the difference
floor() { "$BIN" bench pipeline "$1" --runs "${PIPE_RUNS:-20}" 2>/dev/null | tail -1 | node -e '
  let s = ""; process.stdin.on("data", c => s += c).on("end", () => { const j = JSON.parse(s);
  console.log((j.decode_cpu_ms + j.detect_cpu_ms + j.landmarks_cpu_ms + j.align_cpu_ms + j.embed_cpu_ms).toFixed(1)); });'; }
fa=$(floor "$A"); fb=$(floor "$B")
echo "bench_server: face pipeline CPU (facekit bench pipeline, decode+detect+landmarks+align+embed): $(basename "$A") $fa ms + $(basename "$B") $fb ms = $(awk -v a="$fa" -v b="$fb" 'BEGIN { printf "%.1f", a + b }') ms per compare"
grep -q "non2xx=0 errors=0" "$T/wrk" || { echo "bench_server: FAILED requests (see RESULT)" >&2; exit 1; }
