# server_lib.sh — helpers shared by tests/test_server_*.sh: start the real `facekit serve` on a free
# loopback port with a temporary data directory, speak HTTP to it with curl, stop it with SIGTERM.
# Sourced, not run. Needs: B (binary), T (temp dir).
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$1"; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; }

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_server DATA [env assignments...]: sets PORT, URL, SPID; output in $T/serve.N.out/.err
SERVE_N=0
start_server() {
  local data=$1; shift
  PORT=$(free_port); URL="http://127.0.0.1:$PORT"
  SERVE_N=$((SERVE_N + 1))
  SOUT=$T/serve.$SERVE_N.out; SERR=$T/serve.$SERVE_N.err
  env "$@" "$SB" serve --data "$data" --listen "127.0.0.1:$PORT" >"$SOUT" 2>"$SERR" &
  SPID=$!
  for _ in $(seq 1 600); do
    grep -q "listening on" "$SOUT" 2>/dev/null && return 0
    kill -0 $SPID 2>/dev/null || { echo "server exited early:" >&2; cat "$SERR" >&2; return 1; }
    sleep 0.1
  done
  echo "server did not start" >&2; return 1
}

stop_server() { # SIGTERM, wait; sets SRC to the exit code
  kill -TERM $SPID 2>/dev/null; wait $SPID; SRC=$?
}

# req METHOD PATH [curl args...]: sets CODE; body in $T/body, headers in $T/hdr
req() {
  local m=$1 p=$2; shift 2
  CODE=$(curl -s -o "$T/body" -D "$T/hdr" -w '%{http_code}' -X "$m" "$@" "$URL$p")
}
body() { cat "$T/body"; }
# jget EXPR: evaluates a JS expression on the JSON body bound to `j`
jget() { node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));const v=('"$1"');console.log(typeof v==="object"?JSON.stringify(v):v)' "$T/body"; }
