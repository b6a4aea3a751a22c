#!/usr/bin/env bash
# schemathesis against openapi.yaml, on the API that `make run` serves: it starts `make run`
# on free ports with the data in memory, generates requests for every operation of
# openapi.yaml (valid ones, and invalid ones that must be refused), runs every check of
# schemathesis on every answer, and stops `make run` (its process group) however it ends.
#
#   tests/schemathesis.sh                 bounded, as CI runs it (make schemathesis-ci)
#   ST_MAX_EXAMPLES=200 ST_MAX_TIME=900 tests/schemathesis.sh    the long form (make schemathesis)
#
# Two passes, one per security scheme of openapi.yaml (Bearer, then X-API-KEY), each with the
# admin secret that `make run` prints; the configuration (tests/schemathesis.toml) is written
# out for each pass with its scheme.
#
#   ST_MAX_EXAMPLES  cases generated per operation and phase (default 25)
#   ST_MAX_TIME      seconds each of the two passes may run before it is stopped and fails
#                    (default 120)
#   ST_FILL          seconds: fuzz and stateful phases repeat until each pass has run this long
#                    (schemathesis --max-time; default: unset, the cases above and no more)
#   ST_SEED          the random seed (default: a new one, printed); repeats a run's cases
#   ST_WORKERS       concurrent requests (default 1: with 2, hypothesis's lambda descriptions
#                    sometimes fail with "AST constructor recursion depth mismatch")
#
# Checks: all of them (schemathesis's default, as `--checks all`), set in tests/schemathesis.toml
# rather than on the command line: `--checks all` there would override the one per-operation
# exception that file makes, with its reason.
#
# Unauthenticated requests: the `ignored_auth` check resends requests without credentials and
# with wrong ones and expects them refused; generated cases also carry generated credentials.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export APIKEYS_CACHE=${APIKEYS_CACHE:-$ROOT/.cache}
ST=${SCHEMATHESIS:-$APIKEYS_CACHE/venv-schemathesis/bin/schemathesis}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-25}
MAX_TIME=${ST_MAX_TIME:-120}
SEED=${ST_SEED:-$(python3 -c 'import random; print(random.getrandbits(32))')}
WORKERS=${ST_WORKERS:-1}
FILL=${ST_FILL:-}
start=$(date +%s)
set -m # `make run` gets its own process group, which a SIGINT stops as Ctrl-C does

[ -x "$ST" ] || { echo "schemathesis: $ST is missing; run: make schemathesis-tools" >&2; exit 1; }

# Everything this run writes (make run's log, schemathesis's reports) goes outside the clone,
# to leave the clone as it was. (make run no longer restarts the functions when a file in the
# clone changes, unless WATCH=1; tests/run.sh checks it.)
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
  echo "schemathesis: FAILED: $*" >&2
  [ ! -f "$WORK/run.log" ] || { echo "--- make run output (last lines, log lines left out)" >&2; grep -v "^{" "$WORK/run.log" | tail -n 20 >&2; }
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
PORT=$(free_port)
DDB_PORT=$(free_port)

# SIGINT at its default, even if this script was started with it ignored (see tests/run.sh).
MEMORY=1 PORT=$PORT DDB_PORT=$DDB_PORT python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
  make --no-print-directory run >"$WORK/run.log" 2>&1 &
RUN_PID=$!
for _ in $(seq 1 1200); do
  grep -qs "apikeys is running" "$WORK/run.log" && break
  kill -0 "$RUN_PID" 2>/dev/null || fail "make run exited before it was ready"
  sleep 0.5
done
grep -q "apikeys is running" "$WORK/run.log" || fail "make run was not ready within 10 minutes"
APIKEYS_SECRET=$(sed -n 's/^  Admin key  \(apk_[A-Za-z0-9_-]*\).*/\1/p' "$WORK/run.log")
[ -n "$APIKEYS_SECRET" ] || fail "make run printed no admin secret"
export APIKEYS_SECRET

# Bodies the local router cannot carry are left out (tests/schemathesis_hooks.py says why).
export PYTHONPATH="$ROOT/tests${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks

echo "schemathesis: make run on port $PORT; up to $MAX_EXAMPLES cases per operation and phase, $MAX_TIME s a pass, seed $SEED"

# run_pass NAME SCHEME KEY: one schemathesis run, authenticated with the security scheme SCHEME of
# openapi.yaml only (schemathesis uses the first configured scheme an operation allows, so
# each scheme gets a pass of its own), KEY naming its field; or, with SCHEME wfc, with the
# identities of the auth file KEY. Sets failed=1 if it fails.
failed=0
run_pass() {
  local name=$1 scheme=$2 key=$3 start status=0
  {
    cat tests/schemathesis.toml
    if [ "$scheme" = wfc ]; then
      printf '\n[auth.wfc]\npath = "%s"\npeers = ["demo", "peer"]\n' "$key"
    else
      printf '\n[auth.openapi.%s]\n%s = "${APIKEYS_SECRET}"\n' "$scheme" "$key"
    fi
  } >"$WORK/$name.toml"
  start=$(date +%s)
  (
    cd "$WORK"
    exec timeout --kill-after=10 "$MAX_TIME" "$ST" --no-color --config-file "$WORK/$name.toml" \
      run "$ROOT/openapi.yaml" --url "http://127.0.0.1:$PORT" \
      --max-examples "$MAX_EXAMPLES" ${FILL:+--max-time "$FILL"} --seed "$SEED" \
      --workers "$WORKERS" --request-timeout 30 \
      --generation-database none \
      --report har --report-dir "$WORK/report-$name"
  ) 2>&1 | tee "$WORK/$name.log" || status=$?
  echo "schemathesis: pass $name ($scheme): exit $status after $(($(date +%s) - start)) s," \
    "$(grep -o '[0-9]* generated, .*' "$WORK/$name.log" | tail -n 1)"
  [ "$status" = 0 ] || failed=1
}
run_pass bearer bearer bearer
run_pass x-api-key apiKeyHeader api_key

# A third pass for the `object_level_authorization` check, which needs two identities that must
# not see each other's objects: the demo admin, and an admin of a second organization made
# with the admin CLI. Each reads its own keys; the check replays every such read as the other
# and fails if the other gets the object. The two secrets go to a file in $WORK only.
other=$(DDB_PORT=$DDB_PORT timeout 300 tools/run.sh cli --json create-key --org schemathesis-peer \
  --name "peer organization admin" --unrestricted) || fail "the admin CLI could not create the peer's key"
APIKEYS_PEER_SECRET=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])' <<<"$other")
export APIKEYS_PEER_SECRET
python3 - "$WORK/peers.json" <<'PY'
import json, os, sys
json.dump({"auth": [
    {"name": "demo", "fixedHeaders": [{"name": "Authorization", "value": "Bearer " + os.environ["APIKEYS_SECRET"]}]},
    {"name": "peer", "fixedHeaders": [{"name": "X-API-KEY", "value": os.environ["APIKEYS_PEER_SECRET"]}]},
]}, open(sys.argv[1], "w"))
PY
run_pass peers wfc "$WORK/peers.json"
# The requests made as the peer (the check's replays among them), from make run's log lines.
python3 - "$WORK/run.log" <<'PY' || true
import collections, json, sys
counts = collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if rec.get("span", {}).get("org") == "schemathesis-peer" and "status" in rec.get("fields", {}):
        counts[rec["fields"]["status"]] += 1
print(f"schemathesis: {sum(counts.values())} requests as the peer organization, by status: "
      + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
PY

# What was sent, from the HAR report: requests by method, credentials and status.
python3 - "$WORK"/report-*/har-*.json <<'PY' || true
import collections, json, sys
entries = [e for f in sys.argv[1:] for e in json.load(open(f))["log"]["entries"]]
def creds(req):
    names = {h["name"].lower() for h in req["headers"]}
    return "+".join(n for n, h in (("Bearer", "authorization"), ("X-API-KEY", "x-api-key")) if h in names) or "none"
for title, key in (("method", lambda e: e["request"]["method"]),
                   ("credentials", lambda e: creds(e["request"])),
                   ("status", lambda e: e["response"]["status"])):
    counts = collections.Counter(key(e) for e in entries)
    print(f"schemathesis: {len(entries)} requests by {title}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=str)))
PY
[ "$failed" = 0 ] || fail "schemathesis found failures (repeat with ST_SEED=$SEED)"
echo "schemathesis: ok in $(($(date +%s) - start)) s (make run started), seed $SEED"
