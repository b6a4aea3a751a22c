#!/usr/bin/env bash
# Typed clients generated from openapi.yaml, as a user would make them (docs/clients.md),
# driven against `make run`: the Python clients of openapi-python-client and of
# openapi-generator's python generator, and the TypeScript one of openapi-typescript (with
# openapi-fetch), each create a key, list it and verify its secret (tests/clients/drive.py,
# tests/clients/drive_openapi_generator.py, tests/clients/drive.ts). Everything generated
# goes to a temporary folder, never into the clone.
#
#   tests/clients.sh     (make test-clients; the generators come from make clients-tools)
#
# `make run` starts on free ports with its data in memory, as tests/schemathesis.sh starts it,
# and is stopped (its process group) however this ends.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export APIKEYS_CACHE=${APIKEYS_CACHE:-$ROOT/.cache}
VENV=$APIKEYS_CACHE/venv-clients
NODE=$APIKEYS_CACHE/node-clients/node_modules
start=$(date +%s)
set -m # `make run` gets its own process group, which a SIGINT stops as Ctrl-C does

for tool in "$VENV/bin/openapi-python-client" "$VENV/bin/openapi-generator-cli" "$NODE/.bin/openapi-typescript" "$NODE/.bin/tsc"; do
  [ -x "$tool" ] || { echo "test-clients: $tool is missing; run: make clients-tools" >&2; exit 1; }
done

WORK=$(mktemp -d)
RUN_PID=
cleanup() {
  if [ -n "$RUN_PID" ]; then
    kill -INT -- "-$RUN_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.2; done
    kill -TERM -- "-$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "test-clients: FAILED: $*" >&2
  [ ! -f "$WORK/run.log" ] || { echo "--- make run output (last lines, log lines left out)" >&2; grep -v "^{" "$WORK/run.log" | tail -n 20 >&2; }
  exit 1
}
passed=0
ok() { passed=$((passed + 1)); echo "test-clients: ok: $*"; }
# quietly WHAT CMD...: runs CMD, showing its output only if it fails.
quietly() {
  local what=$1 out; shift
  out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; fail "$what"; }
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
PORT=$(free_port)
DDB_PORT=$(free_port)

# `make run` builds and starts while the clients are generated.
# SIGINT at its default, even if this script was started with it ignored (see tests/run.sh).
MEMORY=1 PORT=$PORT DDB_PORT=$DDB_PORT python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
  make --no-print-directory run >"$WORK/run.log" 2>&1 &
RUN_PID=$!

# Python: openapi-python-client, failing on any warning (a schema or an operation it would
# leave out); openapi-generator's python generator.
# It formats what it generates with ruff, which comes with it in the venv.
quietly "openapi-python-client generate" env PATH="$VENV/bin:$PATH" openapi-python-client generate --path openapi.yaml \
  --output-path "$WORK/python/apikeys_client" --meta none --fail-on-warning
quietly "openapi-generator-cli generate -g python" "$VENV/bin/openapi-generator-cli" generate -i openapi.yaml \
  -g python -o "$WORK/openapi-generator-python" --package-name apikeys_client --global-property apiTests=false,modelTests=false
ok "openapi-python-client and openapi-generator's python generator generate a client from openapi.yaml"

# TypeScript: openapi-typescript's types, and the driver type-checked against them (strict).
mkdir -p "$WORK/ts"
ln -s "$NODE" "$WORK/ts/node_modules"
echo '{"type": "module"}' >"$WORK/ts/package.json"
cat >"$WORK/ts/tsconfig.json" <<'JSON'
{"compilerOptions": {"strict": true, "noEmitOnError": true, "target": "es2022", "module": "nodenext",
  "moduleResolution": "nodenext", "types": ["node"]}, "files": ["drive.ts"]}
JSON
cp tests/clients/drive.ts "$WORK/ts/"
quietly "openapi-typescript" "$NODE/.bin/openapi-typescript" openapi.yaml --default-non-nullable false -o "$WORK/ts/schema.d.ts"
quietly "tsc: drive.ts against the generated types" "$NODE/.bin/tsc" -p "$WORK/ts"
ok "openapi-typescript generates the types, and drive.ts type-checks against them (tsc --strict)"

for _ in $(seq 1 1200); do
  grep -qs "apikeys is running" "$WORK/run.log" && break
  kill -0 "$RUN_PID" 2>/dev/null || fail "make run exited before it was ready"
  sleep 0.5
done
grep -q "apikeys is running" "$WORK/run.log" || fail "make run was not ready within 10 minutes"
SECRET=$(sed -n 's/^  Admin key  \(apk_[A-Za-z0-9_-]*\).*/\1/p' "$WORK/run.log")
[ -n "$SECRET" ] || fail "make run printed no admin secret"
URL=http://127.0.0.1:$PORT

PYTHONPATH="$WORK/python" "$VENV/bin/python" tests/clients/drive.py "$URL" "$SECRET" || fail "the Python client (tests/clients/drive.py)"
ok "the Python client of openapi-python-client creates a key, lists it and verifies its secret"
PYTHONPATH="$WORK/openapi-generator-python" "$VENV/bin/python" tests/clients/drive_openapi_generator.py "$URL" "$SECRET" \
  || fail "the Python client of openapi-generator (tests/clients/drive_openapi_generator.py)"
ok "the Python client of openapi-generator creates a key, lists it and verifies its secret"
node "$WORK/ts/drive.js" "$URL" "$SECRET" || fail "the TypeScript client (tests/clients/drive.ts)"
ok "the TypeScript client creates a key, lists it and verifies its secret"

echo "test-clients: done in $(($(date +%s) - start)) s (make run started)"
echo "test-clients: $passed passed, 0 failed"
