#!/usr/bin/env bash
# End-to-end test of the web console (issue 7): a real `facekit serve` (the test-hooks binary, whose captcha
# answer is forced through FK_TEST_CAPTCHA_ANSWER — that hook is compiled only into test builds) on loopback
# with a temporary data directory, driven by Debian's chromium through playwright-core
# (tests/e2e/console.e2e.mjs). Screenshots of every page go to <build>/e2e-screenshots/.
# Env (from ctest): FK_BIN, FK_DATA, FK_SOURCE_DIR, FK_MODELS_DIR. Prints "N passed, N failed".
set -uo pipefail
src=${FK_SOURCE_DIR:?}
bin=${FK_BIN:?}
build=$(cd "$(dirname "$bin")" && pwd)
data=${FK_DATA:-$src/../shared/data}
faces=$data/faces/face_recognition

fail() { echo "test_console_e2e: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

# Test data must be there: fail loudly, never skip.
[ -f "$faces/examples/knn_examples/train/obama/obama.jpg" ] || fail "missing test photos under $faces (../shared/data, see its README)"
[ -x /usr/bin/chromium ] || [ -n "${FK_CHROMIUM:-}" ] || fail "/usr/bin/chromium not installed (scripts/setup installs the Debian package chromium)"
command -v node >/dev/null || fail "node not installed"

# The test-hooks build of the command (forced captcha; tests/CMakeLists.txt builds facekit-testhooks and
# passes FK_BIN_TESTHOOKS); a release binary has no such hook.
# A build configured with -DFK_TEST_HOOKS=ON (make asan) has the hook in facekit itself: the hook's
# environment variable name is then in the binary.
serve_bin=${FK_TESTHOOKS_BIN:-${FK_BIN_TESTHOOKS:-$build/tests/facekit-testhooks}}
if [ ! -x "$serve_bin" ] && grep -q FK_TEST_CAPTCHA_ANSWER "$bin" 2>/dev/null; then serve_bin=$bin; fi
[ -x "$serve_bin" ] || fail "$serve_bin not found: the service's test-hooks binary (built with FK_TEST_HOOKS) is needed to log in"
grep -q FK_TEST_CAPTCHA_ANSWER "$serve_bin" || fail "$serve_bin has no test captcha hook (not built with FK_TEST_HOOKS)"

# The built console: <build>/web (CMake target facekit_web); built here if missing.
web=$build/web
if [ ! -f "$web/index.html" ]; then
  (cd "$src/web" && { [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null; } && npm run build --silent -- --outDir "$web" --emptyOutDir >/dev/null) \
    || fail "cannot build the console (web/: npm ci && npm run build)"
fi
# playwright-core, pinned by tests/e2e/package-lock.json
if [ ! -d "$src/tests/e2e/node_modules/playwright-core" ]; then
  (cd "$src/tests/e2e" && npm ci --no-audit --no-fund >/dev/null) || fail "npm ci in tests/e2e failed"
fi

tmp=$(mktemp -d /tmp/fk-console-e2e.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data"
admin_pw=Adm1n-$RANDOM$RANDOM
auditor_pw=Aud1t-$RANDOM$RANDOM
victim_pw=V1ctim-$RANDOM$RANDOM
oper_pw=0per-$RANDOM$RANDOM
for u in "admin admin $admin_pw" "auditor auditor $auditor_pw" "victim operator $victim_pw" "oper operator $oper_pw"; do
  set -- $u
  echo "$3" | "$bin" user add --data "$tmp/data" --name "$1" --role "$2" --password-stdin >"$tmp/useradd.log" 2>&1 \
    || { cat "$tmp/useradd.log" >&2; fail "facekit user add $1 failed"; }
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
# The service serves the console itself (`serve --web DIR`); the test fails if it cannot.
"$serve_bin" serve --help 2>&1 | grep -q -- '--web' || fail "$serve_bin serve has no --web option: the service must serve the console"
serve_args="--web $web"

FK_SERVE_BIN=$serve_bin FK_E2E_DATA=$tmp/data FK_E2E_PORT=$port FK_E2E_CAPTCHA=K7M2P \
FK_E2E_SHOTS=$build/e2e-screenshots FK_E2E_FACES=$faces FK_E2E_WEB=$web FK_E2E_SERVE_ARGS="$serve_args" \
FK_E2E_ADMIN_PW=$admin_pw FK_E2E_AUDITOR_PW=$auditor_pw FK_E2E_VICTIM_PW=$victim_pw FK_E2E_OPER_PW=$oper_pw \
  node "$src/tests/e2e/console.e2e.mjs"
rc=$?
[ $rc = 0 ] || { echo "--- facekit serve log (tail) ---"; tail -40 "$tmp/serve.log" 2>/dev/null; }
exit $rc
