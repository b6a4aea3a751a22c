#!/usr/bin/env bash
# Times what a new user waits for: from `git clone` of this repository into an empty
# directory to the first 200 of `GET /v1/api_key/` (the demo admin's key) through
# `make run MEMORY=1`, with an empty APIKEYS_CACHE and no CARGO_TARGET_DIR. The download
# caches of cargo's registry, pip and npm are the machine's own, as a user's would be.
#
#   tools/time-first-200.sh [OUT_FILE]    (default: .ci/results/first-200.txt)
#
# The API and DynamoDB Local listen on free loopback ports; everything `make run` started is
# stopped by its process group at the end. Fails if no 200 comes within LIMIT seconds (1800).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/.ci/results/first-200.txt}")
limit=${LIMIT:-1800}
# The demo admin's secret (apikeys_demo; events/get-key.http.json uses it too).
secret=apk_YXBpa2V5cy1sb2NhbC1kZW1vLWFkbWlu8Z1JSQ

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
work=$(mktemp -d)
pid=
stop() {
  if [ -n "$pid" ]; then
    kill -- "-$pid" 2>/dev/null || true
    for _ in 1 2 3 4 5; do kill -0 -- "-$pid" 2>/dev/null || break; sleep 1; done
    kill -9 -- "-$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT

port=$(free_port) ddb_port=$(free_port)
load=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
git clone -q "$root" "$work/apikeys"
commit=$(git -C "$work/apikeys" rev-parse --short HEAD)
cd "$work/apikeys"
set -m
env -u CARGO_TARGET_DIR APIKEYS_CACHE="$work/cache" PORT="$port" DDB_PORT="$ddb_port" \
  make run MEMORY=1 >"$work/run.log" 2>&1 &
pid=$!
set +m
while :; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $secret" \
    "http://127.0.0.1:$port/v1/api_key/" || true)
  [ "$code" = 200 ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -30 "$work/run.log" >&2
    echo "first-200: make run ended before answering 200" >&2
    exit 1
  fi
  if [ $(( $(date +%s) - start )) -gt "$limit" ]; then
    tail -30 "$work/run.log" >&2
    echo "first-200: no 200 within $limit s (last status $code)" >&2
    exit 1
  fi
  sleep 1
done
secs=$(( $(date +%s) - start ))
mkdir -p "$(dirname "$out")"
{
  echo "first-200: commit $commit, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $load at the start"
  echo "first-200: $secs s from git clone to the first 200 of GET /v1/api_key/ (make run MEMORY=1, empty APIKEYS_CACHE)"
} | tee "$out"
