#!/usr/bin/env bash
# `make run`, end to end, as a user meets it: start it on free ports with its data in a
# temporary folder; real HTTP requests with the printed secret; a key made by the CLI and
# then served by the API; a key's whole lifecycle over HTTP (create, get, update, roll,
# events, delete); verify; credits; owners and their own credits; a leaked key reported with GitHub's signature; every sample event through `cargo lambda invoke`; a second
# `make run` refused in one line; Ctrl-C; a restart that finds the data kept; a clean stop.
set -euo pipefail
cd "$(dirname "$0")/.."
export APIKEYS_CACHE=${APIKEYS_CACHE:-$PWD/.cache}
set -m # background jobs get their own process group, and Ctrl-C (SIGINT) as a terminal sends

WORK=$(mktemp -d)
RUN_PID=
PROBE=
passed=0
cleanup() {
  [ -z "$RUN_PID" ] || kill -TERM -- "-$RUN_PID" 2>/dev/null || true
  rm -rf "$WORK"
  [ -z "$PROBE" ] || rm -f "$PROBE"
}
trap cleanup EXIT

fail() {
  echo "test-run: FAILED: $*" >&2
  [ ! -f "$WORK/run.log" ] || { echo "--- make run output (last 40 lines)" >&2; tail -n 40 "$WORK/run.log" >&2; }
  exit 1
}
ok() { passed=$((passed + 1)); echo "test-run: ok: $*"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
PORT=$(free_port)
DDB_PORT=$(free_port)
export PORT DDB_PORT APIKEYS_DATA=$WORK/data
API=http://127.0.0.1:$PORT/v1/api_key

# with_sigint CMD...: runs CMD with SIGINT at its default. A shell started in the background
# without job control (a CI runner may start this script so) passes SIGINT on as ignored,
# and bash cannot trap a signal it was started ignoring: Ctrl-C would then reach nothing.
with_sigint() {
  python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

# start: `make run` in the background; waits for its banner (a cold build takes minutes).
start() {
  with_sigint make --no-print-directory run >"$WORK/run.log" 2>&1 &
  RUN_PID=$!
  for _ in $(seq 1 1200); do
    grep -q "apikeys is running" "$WORK/run.log" && return 0
    kill -0 "$RUN_PID" 2>/dev/null || fail "make run exited before it was ready"
    sleep 0.5
  done
  fail "make run was not ready within 10 minutes"
}

# The function processes of this run: their Runtime API is this run's port.
function_pids() {
  grep -lsa "AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:$PORT/" /proc/[0-9]*/environ \
    | cut -d/ -f3 | sort -n | tr '\n' ' ' || true
}

# stop: Ctrl-C, then everything it started must be gone and both ports free.
stop() {
  kill -INT -- "-$RUN_PID"
  for _ in $(seq 1 100); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$RUN_PID" 2>/dev/null && fail "make run still running 20 s after Ctrl-C"
  wait "$RUN_PID" 2>/dev/null || true
  RUN_PID=
  for p in "$PORT" "$DDB_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then fail "port $p still open after Ctrl-C"; fi
  done
  # No function process still bound to this run's runtime API.
  [ -z "$(function_pids)" ] || fail "a function process outlived make run: $(function_pids)"
}

# call URL [curl args]: sets STATUS and BODY, and the response's headers in $WORK/headers.
call() {
  local url=$1; shift
  BODY=$(curl -sS --max-time 60 -D "$WORK/headers" -o - -w '\n%{http_code}' "$@" "$url") || fail "curl $url"
  STATUS=${BODY##*$'\n'}
  BODY=${BODY%$'\n'*}
}
# header NAME: that header of the last call's response.
header() { sed -n "s/^$1: *\(.*\)\r\$/\1/Ip" "$WORK/headers" | head -n 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" <<<"$BODY"; }
cli() { timeout 120 make --no-print-directory -s cli ARGS="--json $*"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# The read functions cache a caller for CALLER_CACHE_TTL_SECS (5 s by default): the longest
# time a disabled or deleted key may still work there, counted from the read that cached it.
TTL_MS=5000
# cache_window URL SECRET FROM TO CACHED: the secret's key changed (disabled, deleted) after
# URL's function cached its caller, reading it in a request made between FROM and TO (ms).
# A request that ends before FROM + TTL is still answered from the cache (status CACHED); one
# that starts at TO + TTL or later must be refused (401). Polls until that point; sets
# CACHED_SEEN to how many requests the cache answered.
cache_window() {
  local url=$1 secret=$2 from=$3 to=$4 cached=$5 started ended
  CACHED_SEEN=0
  while :; do
    started=$(now_ms)
    call "$url" -H "X-API-KEY: $secret"
    ended=$(now_ms)
    if (( ended < from + TTL_MS )); then
      [ "$STATUS" = "$cached" ] || fail "$url within the cache TTL: $STATUS, expected $cached from the cache: $BODY"
      CACHED_SEEN=$((CACHED_SEEN + 1))
    elif (( started >= to + TTL_MS )); then
      [ "$STATUS" = 401 ] || fail "$url still works $((started - to)) ms after the read it was cached by: $STATUS $BODY"
      return
    else
      [ "$STATUS" = "$cached" ] || [ "$STATUS" = 401 ] || fail "$url at the cache TTL: $STATUS $BODY"
      [ "$STATUS" = 401 ] || CACHED_SEEN=$((CACHED_SEEN + 1))
    fi
    sleep 0.2
  done
}

start
SECRET=$(sed -n 's/^  Admin key  \(apk_[A-Za-z0-9_-]*\).*/\1/p' "$WORK/run.log")
[ -n "$SECRET" ] || fail "the banner printed no admin secret"
grep -q "curl -H \"Authorization: Bearer $SECRET\" http://localhost:$PORT/v1/api_key/" "$WORK/run.log" \
  || fail "the banner printed no ready-to-paste curl command"
ok "make run started on ports $PORT and $DDB_PORT and printed the admin secret"

call "$API/" -H "Authorization: Bearer $SECRET"
[ "$STATUS" = 200 ] || fail "list with the admin secret: $STATUS $BODY"
[ "$(json 'len(d["data"])')" = 5 ] || fail "the demo organization should have 5 keys: $BODY"
ok "the printed secret lists the 5 seeded keys"

call "http://127.0.0.1:$PORT/v1/api_keys/01900000-0001-7000-8000-000000000002" -H "X-API-KEY: $SECRET"
[ "$STATUS" = 200 ] && [ "$(json 'd["api_key"]["status"]')" = enabled ] || fail "the discue view: $STATUS $BODY"
ok "the router serves the discue view at /v1/api_keys/{api_key_id}"

# A file that changes in the clone (a build, an editor, git) must not restart the functions:
# cargo lambda watch restarts one by killing it, and a request in flight is then lost (no
# answer, or the router's own 500). Both functions run now; they must be the same processes
# after the clone changed, past the watcher's 3 s debounce, and every request meanwhile 200.
before=$(function_pids)
[ "$(wc -w <<<"$before")" = 2 ] || fail "expected the two function processes, found: '$before'"
PROBE=$PWD/.make-run-probe-$$
for _ in 1 2 3; do
  date +%s%N >"$PROBE"
  call "$API/" -H "Authorization: Bearer $SECRET"
  [ "$STATUS" = 200 ] || fail "a list while the clone changed: $STATUS $BODY"
  sleep 1
done
rm -f "$PROBE"; PROBE=
sleep 4
call "$API/" -H "Authorization: Bearer $SECRET"
[ "$STATUS" = 200 ] || fail "a list after the clone changed: $STATUS $BODY"
[ "$(function_pids)" = "$before" ] || fail "a change in the clone restarted the functions: $before -> $(function_pids)"
ok "a file changing in the clone restarts no function (pids $before), and every request is answered"

call "$API/" -H "Authorization: Bearer apk_not-a-real-key"
[ "$STATUS" = 401 ] && [ "$(json 'd["status"]')" = 401 ] || fail "a bad secret: $STATUS $BODY"
ok "a bad secret is a 401 problem"

if make --no-print-directory run >"$WORK/second.log" 2>&1; then fail "a second make run started"; fi
[ "$(grep -c '^make run:' "$WORK/second.log")" = 1 ] && grep -q "already running" "$WORK/second.log" \
  || fail "a second make run should say so in one line: $(cat "$WORK/second.log")"
ok "a second make run is refused: $(grep '^make run:' "$WORK/second.log")"
if MEMORY=1 make --no-print-directory run >"$WORK/third.log" 2>&1; then fail "make run started on a taken port"; fi
grep -q "port $PORT is in use" "$WORK/third.log" || fail "a taken port: $(cat "$WORK/third.log")"
ok "a taken port is refused in one line"

created=$(cli create-key --org demo --name "'made by the CLI'" --permission api_keys.view)
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$created")
key_secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])' <<<"$created")
call "$API/$id" -H "Authorization: Bearer $SECRET"
[ "$STATUS" = 200 ] && [ "$(json 'd["name"]')" = "made by the CLI" ] || fail "the CLI's key: $STATUS $BODY"
warm_from=$(now_ms)
call "$API/?limit=1" -H "X-API-KEY: $key_secret"
warm_to=$(now_ms)
[ "$STATUS" = 200 ] && [ "$(json 'd["data"][0]["id"]')" = "$id" ] || fail "the CLI key's own secret: $STATUS $BODY"
ok "a key created by the CLI is served by the API, and its secret works"

# Disabled by the CLI, the key may work from the list function's cache until the TTL since
# its caller was read, and must be refused from then on, however long the CLI took.
cli disable-key --org demo --id "$id" >/dev/null
cache_window "$API/?limit=1" "$key_secret" "$warm_from" "$warm_to" 200
ok "a key disabled by the CLI is refused from the cache TTL on ($CACHED_SEEN requests answered from the cache before)"

# A key's lifecycle over HTTP, as docs/local.md shows it: the write functions and list-events.
admin=(-H "Authorization: Bearer $SECRET")
call "$API/" -X POST "${admin[@]}" -H "Content-Type: application/json" \
  -d '{"name": "lifecycle", "permissions": ["api_keys.view"]}'
[ "$STATUS" = 201 ] || fail "create: $STATUS $BODY"
lid=$(json 'd["id"]'); first=$(json 'd["secret"]'); location=$(header Location)
[[ $location == */v1/api_key/$lid ]] || fail "create: Location '$location' for $lid"
call "$API/$lid" "${admin[@]}"
etag=$(header ETag)
[ "$STATUS" = 200 ] && [ -n "$etag" ] && [ "$(json 'd["name"]')" = lifecycle ] || fail "get the new key: $STATUS $BODY"
ok "create: 201 with Location and the secret; get: 200 with an ETag"

call "$API/$lid" -X PATCH "${admin[@]}" -H "If-Match: $etag" -H "Content-Type: application/merge-patch+json" \
  -d '{"name": "lifecycle (renamed)"}'
[ "$STATUS" = 200 ] && [ "$(json 'd["name"]')" = "lifecycle (renamed)" ] || fail "update with If-Match: $STATUS $BODY"
call "$API/$lid" -X PATCH "${admin[@]}" -H "If-Match: $etag" -H "Content-Type: application/json" \
  -d '{"name": "lost update"}'
[ "$STATUS" = 412 ] || fail "update with a stale If-Match: $STATUS $BODY"
ok "update: 200 with the ETag of the GET, 412 with it once the key has changed"

call "$API/$lid/roll" -X POST "${admin[@]}" -H "Content-Type: application/json" -d '{"grace_period_seconds": 600}'
[ "$STATUS" = 200 ] || fail "roll: $STATUS $BODY"
second=$(json 'd["secret"]')
[ "$second" != "$first" ] && [ "$(json 'd["id"]')" = "$lid" ] && [ "$(json 'd["last_four_digits"]')" = "${second: -4}" ] \
  || fail "roll: a new secret for the same key: $BODY"
# These are the secrets' first requests to the get function: it caches both callers now.
warm_from=$(now_ms)
for s in "$second" "$first"; do
  call "$API/$lid" -H "X-API-KEY: $s"
  [ "$STATUS" = 200 ] || fail "after the roll, a secret in use should work: $STATUS $BODY"
done
warm_to=$(now_ms)
ok "roll: 200 with a new secret; the new one and, in its grace period, the old one work"

call "$API/$lid/events" "${admin[@]}"
[ "$STATUS" = 200 ] && [ "$(json '",".join(e["action"] for e in d["data"])')" = key.rolled,key.updated,key.created ] \
  || fail "the key's events, newest first: $STATUS $BODY"
ok "the key's events: rolled, updated, created (newest first)"

call "$API/$lid" -X DELETE "${admin[@]}"
[ "$STATUS" = 204 ] && [ -z "$BODY" ] || fail "delete: $STATUS $BODY"
call "$API/$lid" "${admin[@]}"
[ "$STATUS" = 404 ] || fail "get after delete: $STATUS $BODY"
# make run's publisher prints each audit event from the table's stream, as EventBridge gets it.
for _ in $(seq 100); do
  grep -q "^make run: published apikeys key.deleted: .*\"key_id\":\"$lid\"" "$WORK/run.log" && break
  sleep 0.1
done
grep -q "^make run: published apikeys key.deleted: .*\"key_id\":\"$lid\"" "$WORK/run.log" \
  || fail "the delete's event was not published to the console within 10 s"
ok "the key's events are published to the console, the delete's too"
# The write and audit functions cache no caller: both secrets are refused at once there.
for s in "$second" "$first"; do
  call "http://127.0.0.1:$PORT/v1/api_key_events/" -H "X-API-KEY: $s"
  [ "$STATUS" = 401 ] || fail "a deleted key's secret on list-events: $STATUS $BODY"
done
# The get function still knows both callers until the TTL since it read them: the key is
# then 404 to them, as to anyone in the organization; from the TTL on, they are refused.
cached_seen=0
for s in "$second" "$first"; do
  cache_window "$API/$lid" "$s" "$warm_from" "$warm_to" 404
  cached_seen=$((cached_seen + CACHED_SEEN))
done
[ "$cached_seen" -gt 0 ] || fail "no request reached the get function's cache within the TTL after the delete"
call "$API/$lid/events" "${admin[@]}"
[ "$STATUS" = 200 ] && [ "$(json 'd["data"][0]["action"]')" = key.deleted ] || fail "events after delete: $STATUS $BODY"
ok "delete: 204; then 404, both secrets 401 (the get function's cache answered $cached_seen requests within the TTL, none after), the events kept"

# Verify, as docs/api.md shows it: the admin's own secret, then one that is no key.
verify() { call "$API/verify" -X POST "${admin[@]}" -H "Content-Type: application/json" -d "$1"; }
verify "{\"key\": \"$SECRET\", \"permissions\": [\"api_keys.view\"]}"
[ "$STATUS" = 200 ] && [ "$(json 'd["code"]')" = VALID ] && [ "$(json 'd["key"]["id"]')" = 01900000-0000-7000-8000-000000000001 ] \
  || fail "verify the admin's secret: $STATUS $BODY"
verify '{"key": "apk_not-a-real-key"}'
[ "$STATUS" = 200 ] && [ "$(json 'd["code"]')" = NOT_FOUND ] && [ "$(json 'd["key"]')" = None ] || fail "verify no key: $STATUS $BODY"
ok "verify: 200 VALID with the key, 200 NOT_FOUND without"

# Credits and a rate limit, as docs/local.md shows them (a limit of 5 a day: no window ends
# between these requests but at UTC midnight).
call "$API/" -X POST "${admin[@]}" -H "Content-Type: application/json" \
  -d '{"name": "metered", "restricted": false, "credits": {"remaining": 100, "refill": {"interval": "daily", "amount": 100}}, "ratelimits": [{"name": "per_day", "limit": 5, "duration_ms": 86400000}]}'
[ "$STATUS" = 201 ] || fail "create a metered key: $STATUS $BODY"
mid=$(json 'd["id"]'); msecret=$(json 'd["secret"]')
call "$API/verify" -X POST "${admin[@]}" -H "Content-Type: application/json" -d "{\"key\": \"$msecret\", \"cost\": 5}"
[ "$STATUS" = 200 ] && [ "$(json 'd["code"], d["credits"]["remaining"], d["ratelimits"][0]["remaining"]')" = "VALID 95 0" ] \
  || fail "verify with cost 5: $STATUS $BODY"
call "$API/verify" -X POST "${admin[@]}" -H "Content-Type: application/json" -d "{\"key\": \"$msecret\"}"
[ "$STATUS" = 200 ] && [ "$(json 'd["code"], d["credits"]["remaining"]')" = "RATE_LIMITED 95" ] \
  || fail "verify past the limit: $STATUS $BODY"
call "$API/$mid/credits" -X POST "${admin[@]}" -H "Content-Type: application/json" -d '{"increment": 50}'
[ "$STATUS" = 200 ] && [ "$(json 'd["credits"]["remaining"]')" = 145 ] || fail "increment: $STATUS $BODY"
call "$API/$mid/credits" -X POST "${admin[@]}" -H "Content-Type: application/json" -d '{"decrement": 1000}'
[ "$STATUS" = 409 ] || fail "a decrement past what is left: $STATUS $BODY"
ok "credits and a rate limit: spent by verify, RATE_LIMITED past the limit with nothing spent, adjusted through /credits"

# Owners, as docs/api.md shows them: a key names its owner, verify answers it, the list
# filter owner_id finds it (from its index), and null removes it.
call "$API/" -X POST "${admin[@]}" -H "Content-Type: application/json" -d '{"name": "owned", "permissions": [], "owner_id": "cus_42"}'
[ "$STATUS" = 201 ] && [ "$(json 'd["owner_id"]')" = cus_42 ] || fail "create an owned key: $STATUS $BODY"
oid=$(json 'd["id"]'); osecret=$(json 'd["secret"]')
verify "{\"key\": \"$osecret\"}"
[ "$STATUS" = 200 ] && [ "$(json 'd["code"], d["owner_id"]')" = "VALID cus_42" ] || fail "verify an owned key: $STATUS $BODY"
call "$API/?owner_id=cus_42" "${admin[@]}"
[ "$STATUS" = 200 ] && [ "$(json '[k["id"] for k in d["data"]]')" = "['$oid']" ] || fail "list by owner: $STATUS $BODY"
call "$API/$oid" -X PATCH "${admin[@]}" -H "Content-Type: application/merge-patch+json" -d '{"owner_id": null}'
[ "$STATUS" = 200 ] && [ "$(json 'd["owner_id"]')" = None ] || fail "remove the owner: $STATUS $BODY"
call "$API/?owner_id=cus_42" "${admin[@]}"
[ "$STATUS" = 200 ] && [ "$(json 'len(d["data"])')" = 0 ] || fail "list by owner after removal: $STATUS $BODY"
ok "owners: owner_id on create, in verify's answer, listed by owner_id, removed by PATCH null"

# An owner's own credits, shared by all of its keys (docs/api.md): PUT sets them, a verify
# of the owner's key spends from them, and the change is one owner.updated event. A new
# owner and a new key: verify keeps what it found of cus_42 and of the key above (no
# limits) for its cache TTL (docs/api.md, "An owner's own credits and rate limits").
OWNER="http://127.0.0.1:$PORT/v1/owner/cus_7"
call "$OWNER" -X PUT "${admin[@]}" -H "Content-Type: application/json" -d '{"credits": {"remaining": 1}}'
[ "$STATUS" = 201 ] && [ "$(json 'd["owner_id"], d["credits"]["remaining"]')" = "cus_7 1" ] \
  || fail "set an owner's credits: $STATUS $BODY"
call "$API/" -X POST "${admin[@]}" -H "Content-Type: application/json" -d '{"name": "owned by cus_7", "permissions": [], "owner_id": "cus_7"}'
[ "$STATUS" = 201 ] || fail "create a key of the owner: $STATUS $BODY"
osecret=$(json 'd["secret"]')
verify "{\"key\": \"$osecret\"}"
[ "$STATUS" = 200 ] && [ "$(json 'd["code"], d["owner"]["credits"]["remaining"]')" = "VALID 0" ] \
  || fail "verify spends from the owner: $STATUS $BODY"
verify "{\"key\": \"$osecret\"}"
[ "$STATUS" = 200 ] && [ "$(json 'd["code"]')" = USAGE_EXCEEDED ] || fail "the owner's credits are spent: $STATUS $BODY"
call "$OWNER" "${admin[@]}"
[ "$STATUS" = 200 ] && [ "$(json 'd["credits"]["remaining"]')" = 0 ] || fail "get the owner: $STATUS $BODY"
call "http://127.0.0.1:$PORT/v1/api_key_events/?action=owner.updated" "${admin[@]}"
[ "$STATUS" = 200 ] && [ "$(json '[(e["owner_id"], "key_id" in e) for e in d["data"]]')" = "[('cus_7', False)]" ] \
  || fail "owner.updated in the trail: $STATUS $BODY"
ok "an owner's own credits: set by PUT /v1/owner/cus_7, spent by its key's verify, recorded as owner.updated"

# The CLI sets and reads the same owner (docs/local.md, "Admin CLI"): the API sees the
# change, recorded as the API's is.
owner_of() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["owner_id"], d["credits"]["remaining"], d["ratelimits"][0]["limit"])' <<<"$1"; }
owner_set=$(cli set-owner --org demo --owner cus_7 --credits 5 --ratelimit per_second:10:1000)
[ "$(owner_of "$owner_set")" = "cus_7 5 10" ] || fail "apikeys set-owner: $owner_set"
owner_got=$(cli get-owner --org demo --owner cus_7)
[ "$(owner_of "$owner_got")" = "cus_7 5 10" ] || fail "apikeys get-owner: $owner_got"
call "$OWNER" "${admin[@]}"
[ "$STATUS" = 200 ] && [ "$(json 'd["credits"]["remaining"], d["ratelimits"][0]["limit"]')" = "5 10" ] \
  || fail "the API sees the CLI's owner: $STATUS $BODY"
call "http://127.0.0.1:$PORT/v1/api_key_events/?action=owner.updated" "${admin[@]}"
[ "$STATUS" = 200 ] && [ "$(json '[(e["owner_id"], e["actor"]["type"]) for e in d["data"]]')" = "[('cus_7', 'cli'), ('cus_7', 'api_key')]" ] \
  || fail "the CLI's owner.updated in the trail: $STATUS $BODY"
ok "apikeys set-owner and get-owner: the API sees the change, recorded as owner.updated by the CLI"

# Metadata and an IP allow-list, as docs/api.md shows them: meta merge-patched and handed
# back by verify; a client_ip outside the list, or none, is FORBIDDEN; and the key's own use
# of the API, from this machine's address (outside its list), is a 403.
call "$API/" -X POST "${admin[@]}" -H "Content-Type: application/json" \
  -d '{"name": "fenced", "restricted": false, "meta": {"tenant": "t-42", "plan": "trial"}, "allowed_cidrs": ["203.0.113.0/24", "2001:db8::1"]}'
[ "$STATUS" = 201 ] && [ "$(json '",".join(d["allowed_cidrs"])')" = "203.0.113.0/24,2001:db8::1/128" ] \
  || fail "create a key with meta and allowed_cidrs: $STATUS $BODY"
fid=$(json 'd["id"]'); fsecret=$(json 'd["secret"]')
call "$API/$fid" -X PATCH "${admin[@]}" -H "Content-Type: application/merge-patch+json" -d '{"meta": {"plan": null, "seats": 3}}'
[ "$STATUS" = 200 ] && [ "$(json 'd["meta"]["tenant"], d["meta"].get("plan"), d["meta"]["seats"]')" = "t-42 None 3" ] \
  || fail "merge-patch meta: $STATUS $BODY"
verify "{\"key\": \"$fsecret\", \"client_ip\": \"203.0.113.7\"}"
[ "$STATUS" = 200 ] && [ "$(json 'd["code"], d["meta"]["tenant"]')" = "VALID t-42" ] || fail "verify inside the list: $STATUS $BODY"
verify "{\"key\": \"$fsecret\", \"client_ip\": \"198.51.100.7\"}"
[ "$STATUS" = 200 ] && [ "$(json 'd["code"], d["valid"]')" = "FORBIDDEN False" ] || fail "verify outside the list: $STATUS $BODY"
verify "{\"key\": \"$fsecret\"}"
[ "$STATUS" = 200 ] && [ "$(json 'd["code"]')" = FORBIDDEN ] || fail "verify without client_ip: $STATUS $BODY"
call "$API/$fid" -H "Authorization: Bearer $fsecret" -H "X-Forwarded-For: 203.0.113.7"
[ "$STATUS" = 403 ] && [ "$(header content-type)" = application/problem+json ] \
  || fail "the fenced key's own use from outside its list: $STATUS $BODY"
ok "meta merge-patched and returned by verify; allowed_cidrs: FORBIDDEN outside the list or without client_ip, 403 for the key's own use (X-Forwarded-For ignored)"

# A leaked key reported as GitHub would, signed with the local test key (tools/run.sh).
call "$API/" -X POST "${admin[@]}" -H "Content-Type: application/json" -d '{"name": "leaked", "permissions": ["api_keys.view"]}'
[ "$STATUS" = 201 ] || fail "create the key to leak: $STATUS $BODY"
leak_id=$(json 'd["id"]'); leak_secret=$(json 'd["secret"]')
body='[{"token": "'$leak_secret'", "type": "apikeys_api_key", "url": "https://github.com/octo-org/octo-repo/blob/main/.env", "source": "content"}]'
sign() { printf %s "$1" | openssl dgst -sha256 -sign tools/github-test-signing-key.pem | base64 -w0; }
report() {
  call "http://127.0.0.1:$PORT/v1/secret_scanning/github" -X POST -H "Content-Type: application/json" \
    -H "Github-Public-Key-Identifier: apikeys-local-test-key" -H "Github-Public-Key-Signature: $1" -d "$body"
}
report "$(sign "$body ")"
[ "$STATUS" = 401 ] || fail "a report signed over another body: $STATUS $BODY"
report "$(sign "$body")"
[ "$STATUS" = 200 ] && [ "$(json 'd[0]["label"]')" = true_positive ] || fail "a signed report: $STATUS $BODY"
call "$API/$leak_id" "${admin[@]}"
[ "$(json 'd["status"]')" = disabled ] && [ "$(json 'd["disabled_reason"]')" = leaked ] || fail "the leaked key: $BODY"
call "$API/$leak_id/events" "${admin[@]}"
[ "$(json 'd["data"][0]["action"]')" = key.leaked ] && [ "$(json 'd["data"][0]["actor"]["type"]')" = github ] \
  || fail "the leaked key's events: $BODY"
verify "{\"key\": \"$leak_secret\"}"
[ "$(json 'd["code"]')" = DISABLED ] || fail "verify the leaked key: $BODY"
ok "a signed report disables the leaked key (disabled_reason leaked, key.leaked by github); a bad signature is 401"

# The CLI's bad input: a precise message and a non-zero exit.
expect_cli_error() {
  local want=$1; shift
  if out=$(timeout 120 make --no-print-directory -s cli ARGS="$*" 2>&1); then fail "apikeys $* succeeded"; fi
  grep -q -- "$want" <<<"$out" || fail "apikeys $*: expected '$want' in: $out"
}
expect_cli_error "possible values: companies.delete" create-key --org demo --name x --permission calls.fly
expect_cli_error "organization nobody has no keys" get-key --org nobody --id "$id"
expect_cli_error "no key 01900000-0000-7000-8000-0000000000ff in organization demo" \
  delete-key --org demo --id 01900000-0000-7000-8000-0000000000ff
expect_cli_error "its network is 10.0.0.0/8" create-key --org demo --name x --unrestricted --allowed-cidr 10.0.0.1/8
expect_cli_error "owner cus_none of organization demo has no credits or rate limits set" get-owner --org demo --owner cus_none
expect_cli_error "mode must be exact" set-owner --org demo --owner cus_7 --ratelimit per_second:10:1000:leased
ok "the CLI names a bad permission, an unknown organization, an unknown key, a CIDR with host bits set, an owner with nothing set and an owner's leased limit"

# Every sample event, with the status tests/api/events.rs documents for it.
n=0
while read -r file status; do
  out=$(timeout 120 make --no-print-directory -s invoke EVENT="events/$file") || fail "cargo lambda invoke $file"
  # A scheduled run (expiry-notices) answers what it did: complete counts as 200; a stream
  # batch (publish-events) answers its failed records: none counts as 200.
  got=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(200 if d.get("complete") is True or d.get("batchItemFailures") == [] else d["statusCode"])' <<<"$out")
  [ "$got" = "$status" ] || fail "events/$file gave $got, expected $status: $out"
  n=$((n + 1))
done < <(sed -n 's/^ *("\([^"]*\.json\)", \([0-9]*\)),$/\1 \2/p' tests/api/events.rs)
[ "$n" = "$(ls events/*.json | wc -l)" ] || fail "invoked $n events of $(ls events/*.json | wc -l)"
ok "cargo lambda invoke gives the documented status for all $n sample events"

stop
ok "Ctrl-C stopped DynamoDB Local, the router and the functions"

start
grep -q "0 keys created" "$WORK/run.log" || fail "the restart seeded the demo organization again"
call "$API/$id" -H "Authorization: Bearer $SECRET"
[ "$STATUS" = 200 ] && [ "$(json 'd["status"]')" = disabled ] || fail "after a restart: $STATUS $BODY"
ok "after a restart the data is kept and the demo is not seeded twice"
stop

echo "test-run: $passed checks passed"
