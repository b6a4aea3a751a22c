#!/usr/bin/env bash
# `make run`: the whole service on this machine, with no Docker and no AWS account.
#
#   DynamoDB Local on 127.0.0.1:$DDB_PORT (default 8000), its data kept in $APIKEYS_DATA
#   (default $APIKEYS_CACHE/dynamodb-data; in memory with MEMORY=1); the table, created if absent;
#   the demo organization, seeded once; every function (get-key, list-keys, create-key,
#   update-key, roll-key, delete-key, list-events, verify-key, revoke-leaked, owner, expiry-notices) behind `cargo lambda watch` and the router
#   in Cargo.toml at http://localhost:$PORT (default 3000). Ctrl-C stops all of it.
#   The functions are not restarted when files change, unless WATCH=1 (see below).
#
#   tools/run.sh                 serve, as above
#   tools/run.sh cli ARG...      the admin CLI against that DynamoDB Local (make cli ARGS=...)
#   tools/run.sh invoke EVENT    `cargo lambda invoke` of the event's function (make invoke)
#
# It expects the tools that `make run-tools` installs (DynamoDB Local, the venv with cargo-lambda).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export APIKEYS_CACHE=${APIKEYS_CACHE:-$ROOT/.cache}
# shellcheck source=tools/dynamodb-local.sh
source tools/dynamodb-local.sh

PORT=${PORT:-3000}
DDB_PORT=${DDB_PORT:-8000}
MEMORY=${MEMORY:-0}
WATCH=${WATCH:-0}
DATA=${APIKEYS_DATA:-$APIKEYS_CACHE/dynamodb-data}
export TABLE_NAME=${TABLE_NAME:-apikeys-local}
# Local only: deployed stacks get theirs from Secrets Manager (template.yaml).
export CURSOR_SECRET=${CURSOR_SECRET:-local-cursor-secret-for-make-run-only-0001}
# Derives the secrets of idempotent creates and rolls (Idempotency-Key); local only, like
# CURSOR_SECRET. The write functions keep each audit event EVENT_RETENTION_DAYS days.
export IDEMPOTENCY_SECRET=${IDEMPOTENCY_SECRET:-local-idempotency-secret-for-make-run-only-01}
export EVENT_RETENTION_DAYS=${EVENT_RETENTION_DAYS:-365}
# publish-events' bus, for `make invoke` of its sample batch (which publishes nothing): make
# run's own publisher is `apikeys follow-events`, which prints each event instead.
export EVENT_BUS_NAME=${EVENT_BUS_NAME:-apikeys-local}
# revoke-leaked trusts this GitHub key list instead of fetching GitHub's: the public half of
# the throwaway pair in tools/github-test-signing-key.pem (local only; the same list as
# tools/sam-local-env.json), so that a report signed with that file is GitHub's here.
GITHUB_TEST_KEY_ID=apikeys-local-test-key
GITHUB_TEST_SIGNING_KEY=$ROOT/tools/github-test-signing-key.pem
if [ -z "${GITHUB_SECRET_SCANNING_KEYS:-}" ]; then
  GITHUB_SECRET_SCANNING_KEYS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["RevokeLeakedFunction"]["GITHUB_SECRET_SCANNING_KEYS"])' "$ROOT/tools/sam-local-env.json")
fi
export GITHUB_SECRET_SCANNING_KEYS
export PATH="$APIKEYS_CACHE/venv-run/bin:$PATH"

fail() { echo "make run: $*" >&2; exit 1; }

case "${1:-serve}" in
  cli)
    shift
    point_sdk_at "$DDB_PORT"
    # By binary name, as `make run` builds it (below): the same features, so no rebuild.
    exec cargo run --quiet --locked --bin apikeys -- "$@" ;;
  invoke)
    [ $# -eq 2 ] && [ -f "$2" ] || fail "usage: make invoke EVENT=events/<file>.json"
    fn=$(basename "$2"); fn=${fn%%.*}
    exec cargo lambda invoke "$fn" --invoke-address 127.0.0.1 --invoke-port "$PORT" --data-file "$2" ;;
  serve) ;;
  *) fail "unknown mode '$1' (serve, cli or invoke)" ;;
esac

for p in PORT DDB_PORT; do
  [[ ${!p} =~ ^[0-9]+$ ]] && (( ${!p} > 0 && ${!p} < 65536 )) || fail "$p must be a port number, not '${!p}'"
done
[ "$PORT" != "$DDB_PORT" ] || fail "PORT and DDB_PORT must differ"
command -v cargo-lambda >/dev/null || fail "cargo-lambda is missing; run: make run-tools"

# One `make run` per data folder; the lock goes when this script and its children end.
if [ "$MEMORY" != 1 ]; then
  mkdir -p "$DATA"
  exec 9>"$DATA/run.lock"
  flock -n 9 || fail "already running with the data in $DATA (another 'make run'); stop that one with Ctrl-C, or use MEMORY=1"
fi

taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
taken "$PORT" && fail "port $PORT is in use (another 'make run'?); free it or choose another: make run PORT=3001"
taken "$DDB_PORT" && fail "port $DDB_PORT for DynamoDB Local is in use (another 'make run'?); free it or choose another: make run DDB_PORT=8001"

DDB_PID= WATCH_PID= WATCH_DIR= PUBLISH_PID=
stop() {
  trap - EXIT INT TERM
  [ -z "$PUBLISH_PID" ] || kill "$PUBLISH_PID" 2>/dev/null || true
  # The router's process group holds the functions it started.
  [ -z "$WATCH_PID" ] || kill -TERM -- "-$WATCH_PID" 2>/dev/null || true
  [ -z "$DDB_PID" ] || kill "$DDB_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -z "$WATCH_DIR" ] || rm -rf "$WATCH_DIR"
  echo "make run: stopped" >&2
}
trap stop EXIT
trap 'exit 130' INT TERM

echo "make run: building the functions and the CLI" >&2
# By binary name, not by package: `cargo lambda watch` builds each function with
# `cargo build --bin <function>` at the workspace root, that is with the default members'
# features, and so does this; with `-p` the dependencies' features differ and the router
# rebuilds the SDK and everything under it on the first request (minutes on a fresh clone).
cargo build --quiet --locked $(sed -n 's/^ *Binary: *//p' "$ROOT/template.yaml" | sed 's/^/--bin /') --bin apikeys
BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug

if [ "$MEMORY" = 1 ]; then
  where="in memory"
  start "$DDB_PORT" -inMemory -sharedDb
else
  where="data in $DATA"
  start "$DDB_PORT" -sharedDb -dbPath "$DATA"
fi
point_sdk_at "$DDB_PORT"

"$BIN/apikeys" create-table --if-absent >&2
seeded=$("$BIN/apikeys" --json seed-demo)
read -r created secret < <(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["created"]), d["admin_secret"])' <<<"$seeded")
echo "make run: demo organization: $created keys created (it is seeded once)" >&2
# The audit events from now on, from the table's stream, printed as EventBridge would get
# them (docs/local.md, "Audit events on the console").
"$BIN/apikeys" follow-events &
PUBLISH_PID=$!

# `cargo lambda watch` (1.9.2) watches the folder it runs in and, on any change there that its
# ignore files do not exclude, kills the function's process group (SIGKILL, no SIGTERM first:
# cargo-lambda/cargo-lambda#850) and starts it again. The router keeps no deadline for an
# invocation a dead function had taken, so a request in flight at that moment is lost: the
# client waits until its own timeout, or, when the kill lands while the function hands its
# response over, gets the router's own 500 (its ServerError: `{"type":
# "https://httpstatuses.com/500",...}`, not our problem format) although the function logged
# it as served. A build, an editor or git in the clone is enough. So by default the router
# runs in an empty folder of its own, with the project given by --manifest-path: nothing it
# watches ever changes (tests/run.sh checks it). WATCH=1 runs it in the clone instead, to
# rebuild and restart a function when its code changes, at that price.
if [ "$WATCH" = 1 ]; then
  watch_in=$ROOT
else
  WATCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/apikeys-run.XXXXXX")
  watch_in=$WATCH_DIR
fi
# Its own process group, so that stopping it stops the function processes too.
(cd "$watch_in" && exec setsid cargo lambda watch --quiet --manifest-path "$ROOT/Cargo.toml" \
  --invoke-address 127.0.0.1 --invoke-port "$PORT") &
WATCH_PID=$!

for _ in $(seq 1 600); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/api_key/" || true)
  [ "$code" = 401 ] && break
  kill -0 "$WATCH_PID" 2>/dev/null || fail "cargo lambda watch stopped at start"
  sleep 0.5
done
[ "$code" = 401 ] || fail "the API did not answer on port $PORT within 5 minutes"

cat <<EOF

apikeys is running. Ctrl-C stops it.
  API        http://localhost:$PORT/v1/api_key/
  DynamoDB   http://127.0.0.1:$DDB_PORT, table $TABLE_NAME ($where)
  Admin key  $secret   (organization "demo", every permission)

Try:
  curl -H "Authorization: Bearer $secret" http://localhost:$PORT/v1/api_key/
  curl -H "X-API-KEY: $secret" "http://localhost:$PORT/v1/api_key/?limit=2&order=asc"
  curl -H "Authorization: Bearer $secret" http://localhost:$PORT/v1/api_key/01900000-0001-7000-8000-000000000002

A key's lifecycle (docs/local.md, "Manage a key"; <id> and <etag> come from the answers):
  curl -i -X POST -H "Authorization: Bearer $secret" -H "Content-Type: application/json" \
    -d '{"name": "my key", "permissions": ["api_keys.view"]}' http://localhost:$PORT/v1/api_key/
  curl -i -H "Authorization: Bearer $secret" http://localhost:$PORT/v1/api_key/<id>
  curl -X PATCH -H "Authorization: Bearer $secret" -H 'If-Match: <etag>' \
    -H "Content-Type: application/merge-patch+json" -d '{"status": "disabled"}' http://localhost:$PORT/v1/api_key/<id>
  curl -X POST -H "Authorization: Bearer $secret" -H "Content-Type: application/json" \
    -d '{"grace_period_seconds": 3600}' http://localhost:$PORT/v1/api_key/<id>/roll
  curl -H "Authorization: Bearer $secret" http://localhost:$PORT/v1/api_key/<id>/events
  curl -X DELETE -H "Authorization: Bearer $secret" http://localhost:$PORT/v1/api_key/<id>
  curl -H "Authorization: Bearer $secret" http://localhost:$PORT/v1/api_key_events/

Verify a key for another service (docs/api.md, "Verify a key"):
  curl -X POST -H "Authorization: Bearer $secret" -H "Content-Type: application/json" \
    -d '{"key": "<a secret>", "permissions": ["api_keys.view"]}' http://localhost:$PORT/v1/api_key/verify

Report a leaked secret as GitHub would, signed with the local test key (docs/api.md, "Keys leaked in public code"):
  body='[{"token": "<a secret>", "type": "apikeys_api_key", "url": "https://github.com/o/r", "source": "content"}]'
  curl -X POST -H "Content-Type: application/json" -H "Github-Public-Key-Identifier: $GITHUB_TEST_KEY_ID" \
    -H "Github-Public-Key-Signature: \$(printf %s "\$body" | openssl dgst -sha256 -sign $GITHUB_TEST_SIGNING_KEY | base64 -w0)" \
    -d "\$body" http://localhost:$PORT/v1/secret_scanning/github

In another terminal:
  make cli ARGS='create-key --org demo --name "my key" --permission api_keys.view'
  make invoke EVENT=events/list-keys.rest.json PORT=$PORT

EOF

wait "$WATCH_PID"
