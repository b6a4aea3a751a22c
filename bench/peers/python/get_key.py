"""get-key written the usual way: Python, boto3, awslambdaric as the runtime client.

The benchmark's peer (bench/README.md). Same table, same events, same JSON body as the Rust
function: authenticate with one GetItem of the credential item on the secret's SHA-256, then
one GetItem of the key in the caller's organization. Errors are answered briefly; the
benchmark only sends requests that succeed.

Like get-key, it keeps an authenticated caller for `CALLER_CACHE_TTL_SECS` seconds (5 unless
set; 0 to 60; 0 turns the cache off), keyed by the secret's SHA-256, at most 4,096 callers
at once (when full, expired callers go first, and all of them if none has expired). Only
credentials that exist are cached; an entry's age counts from before its read and is read on
the monotonic and the wall clock, and it expires when either says the TTL has passed. The
cached item carries the key's state and expiry date, so the status is computed at every
request and an expired key is refused exactly.

It records the caller's last use as get-key does (`usage::Recorder`, `record_use` in
store/dynamo/credential.rs): when the credential (cached or just read) has no `last_used_ms`
at or after a minute before the request, two conditional UpdateItems, one on the caller's
key item (`ORG#<org>`/`KEY#<id>`) and one on its credential item (`SECRET#<sha256>`/`SECRET`),
`SET #used = :at` if `attribute_exists(#pk) AND (attribute_not_exists(#used) OR #used <
:stale)`, in milliseconds, with no retries (a client of their own with one attempt). boto3
is synchronous, so the two run on a pool of two threads while this thread reads the key, and
the request waits for them at most 50 ms from their start (a write still running then goes
on in its thread; get-key's is dropped). A failed condition is no error. When both answer
in time, the cached caller notes the use, so the warm requests of the next minute write
nothing; a write that fails or is late is one log line (the metric `LastUseFailures`) and
that key's uses go unrecorded for a minute. During init it opens its connection with one
GetItem of an item that never exists (`WARMUP`/`WARMUP`), waited for at most 1 s, errors
ignored, as get-key's `config::warm_up`.

So it makes the DynamoDB calls get-key makes: during init 1 GetItem; on a caller's first
request (and once the TTL has passed) the GetItem of the credential, then the GetItem of the
key alongside the 2 UpdateItems if the last use is a minute old; on the warm requests after
it the GetItem of the key alone. One difference remains: a secret that is not well formed is
looked up (one GetItem) where get-key refuses it without a read; the benchmark sends only
valid secrets.
"""
import hashlib
import json
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from datetime import datetime, timezone

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

TABLE = os.environ["TABLE_NAME"]
DYNAMODB = boto3.client("dynamodb")
# The last-use stamps are never retried: a client of their own, one attempt per call.
STAMPS = boto3.client("dynamodb", config=Config(retries={"total_max_attempts": 1}))
STAMPERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="last-use")

WARM_UP_TIMEOUT = 1.0
LAST_USED_RESOLUTION_MS = 60_000
STAMP_WAIT = 0.050
BACKOFF_MS = LAST_USED_RESOLUTION_MS
MAX_BACKING_OFF = 4096
# Key id -> until when (wall clock, ms) its uses go unrecorded, after a failed stamp.
BACKING_OFF = {}


def warm_up():
    """Opens the client's connection with one GetItem of an item that never exists, waited for
    at most WARM_UP_TIMEOUT; a failure is no error (the first request connects itself)."""
    def read():
        try:
            DYNAMODB.get_item(TableName=TABLE, Key={"pk": {"S": "WARMUP"}, "sk": {"S": "WARMUP"}})
        except Exception as e:  # noqa: BLE001
            print(f"connection warm-up failed: {e}", file=sys.stderr)
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(WARM_UP_TIMEOUT)
    if thread.is_alive():
        print("connection warm-up timed out", file=sys.stderr)


warm_up()


def caller_cache_ttl():
    """`CALLER_CACHE_TTL_SECS` as get-key reads it: unset or empty is 5 s, else 0 to 60."""
    value = os.environ.get("CALLER_CACHE_TTL_SECS", "")
    if value == "":
        return 5
    if not re.fullmatch(r"\+?[0-9]+", value) or int(value) > 60:
        raise ValueError("CALLER_CACHE_TTL_SECS must be a whole number of seconds from 0 to 60")
    return int(value)


CACHE_TTL = caller_cache_ttl()
CACHE_MAX_ENTRIES = 4096
# The secret's SHA-256 (hex) -> (monotonic time, wall time, credential item): when it was read.
CALLERS = {}

# Permission names by bit, in the order of the Rust service's `Permission::ALL`.
PERMISSIONS = ["companies.delete","companies.update","calls.create","calls.delete","calls.update","calls.view","messages.view","agents.view","agents.create","agents.update","agents.delete","phones.view","phones.purchase","phones.delete","phones.update","phones.import","tools.view","tools.create","tools.delete","tools.update","contacts.view","contacts.delete","conversational_paths.view","conversational_paths.create","conversational_paths.delete","conversational_paths.update","knowledge_bases.view","knowledge_bases.create","knowledge_bases.delete","knowledge_bases.update","webhooks.view","webhooks.create","webhooks.delete","webhooks.update","members.view","members.create","members.delete","members.update","billing.view","billing.update","api_keys.view","api_keys.create","api_keys.delete","api_keys.update","voices.view","transcriptions.view","recordings.view","stats.view","verifications.create","verifications.view","notifications.view","notifications.update","integrations.view","integrations.create","integrations.update","integrations.delete"]


def rfc3339(ms):
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def answer(status, body, content_type="application/json"):
    return {"statusCode": status, "headers": {"content-type": content_type}, "body": json.dumps(body)}


def problem(status, detail):
    return answer(status, {"title": detail, "status": status, "detail": detail}, "application/problem+json")


def secret_of(headers):
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


def status_of(item, now_ms):
    if item["state"]["S"] != "active":
        return "disabled"
    if "expires_ms" in item and int(item["expires_ms"]["N"]) <= now_ms:
        return "expired"
    return "active"


def permissions_of(item):
    if "permissions" not in item:
        return None
    bits = int(item["permissions"]["N"])
    return [name for i, name in enumerate(PERMISSIONS) if bits & (1 << i)]


def fresh(read_at, now):
    """Whether something read at `read_at` is younger than the TTL at `now`, on both clocks
    (a wall clock set back counts as no time passed)."""
    return now[0] - read_at[0] < CACHE_TTL and max(now[1] - read_at[1], 0) < CACHE_TTL


def credential(digest):
    """The credential item of the secret whose SHA-256 is `digest`, from the cache if it was
    read less than the TTL ago, else with one GetItem (and then cached if it exists)."""
    entry = CALLERS.get(digest)
    if entry is not None:
        if fresh(entry[:2], (time.monotonic(), time.time())):
            return entry[2]
        del CALLERS[digest]
    read_at = (time.monotonic(), time.time())
    cred = DYNAMODB.get_item(
        TableName=TABLE, Key={"pk": {"S": f"SECRET#{digest}"}, "sk": {"S": "SECRET"}}
    ).get("Item")
    if cred and CACHE_TTL > 0:
        if len(CALLERS) >= CACHE_MAX_ENTRIES and digest not in CALLERS:
            for stale in [d for d, e in CALLERS.items() if not fresh(e[:2], read_at)]:
                del CALLERS[stale]
            if len(CALLERS) >= CACHE_MAX_ENTRIES:
                CALLERS.clear()
        CALLERS[digest] = (read_at[0], read_at[1], cred)
    return cred


def stamp(key, at_ms, stale_ms):
    """Stamps `last_used_ms` on one item if it exists and its stamp is older than `stale_ms`:
    True if written, False if the condition failed; any other error is raised."""
    try:
        STAMPS.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET #used = :at",
            ConditionExpression="attribute_exists(#pk) AND (attribute_not_exists(#used) OR #used < :stale)",
            ExpressionAttributeNames={"#pk": "pk", "#used": "last_used_ms"},
            ExpressionAttributeValues={":at": {"N": str(at_ms)}, ":stale": {"N": str(stale_ms)}},
        )
        return True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise


def backing_off(key_id, now_ms):
    """Whether the key's last stamp failed less than BACKOFF_MS before `now_ms` (a wall clock
    that stepped back never stretches it)."""
    until = BACKING_OFF.get(key_id)
    if until is None:
        return False
    if now_ms < until and until - now_ms <= BACKOFF_MS:
        return True
    del BACKING_OFF[key_id]
    return False


def back_off(key_id, now_ms):
    if len(BACKING_OFF) >= MAX_BACKING_OFF and key_id not in BACKING_OFF:
        for k in [k for k, until in BACKING_OFF.items() if now_ms >= until]:
            del BACKING_OFF[k]
        if len(BACKING_OFF) >= MAX_BACKING_OFF:
            BACKING_OFF.clear()
    BACKING_OFF[key_id] = now_ms + BACKOFF_MS


def start_recording(cred, digest, now_ms):
    """Starts stamping the caller's last use at `now_ms` unless its credential says it was used
    less than a minute ago or it is backing off: the two writes, running, or None."""
    stale_ms = now_ms - LAST_USED_RESOLUTION_MS
    if "last_used_ms" in cred and int(cred["last_used_ms"]["N"]) >= stale_ms:
        return None
    key_id = cred["key_id"]["S"]
    if backing_off(key_id, now_ms):
        return None
    on_key = {"pk": {"S": f"ORG#{cred['org']['S']}"}, "sk": {"S": f"KEY#{key_id}"}}
    on_credential = {"pk": {"S": f"SECRET#{digest}"}, "sk": {"S": "SECRET"}}
    writes = [STAMPERS.submit(stamp, key, now_ms, stale_ms) for key in (on_key, on_credential)]
    return (time.monotonic() + STAMP_WAIT, writes)


def finish_recording(started, cred, digest, now_ms):
    """Waits for the writes until STAMP_WAIT after their start. Both answered: the cached
    caller notes the use. Else one log line (the metric LastUseFailures), and a back-off."""
    if started is None:
        return
    deadline, writes = started
    done, _ = wait_for(writes, timeout=max(deadline - time.monotonic(), 0))
    failed = next((w.exception() for w in writes if w in done and w.exception()), None)
    if len(done) == len(writes) and failed is None:
        entry = CALLERS.get(digest)
        if entry is not None:
            entry[2]["last_used_ms"] = {"N": str(now_ms)}
        return
    key_id = cred["key_id"]["S"]
    back_off(key_id, now_ms)
    reason = "timeout" if failed is None else "error"
    line = {
        "message": "could not record the key's last use",
        "reason": reason,
        "error": str(failed) if failed else f"no answer within {int(STAMP_WAIT * 1000)} ms",
        "org": cred["org"]["S"],
        "caller": key_id,
        "level": "WARN",
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": "apikeys",
                "Dimensions": [["FunctionName"]],
                "Metrics": [{"Name": "LastUseFailures", "Unit": "Count"}],
            }],
        },
        "FunctionName": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
        "LastUseFailures": 1,
    }
    print(json.dumps(line), flush=True)


def handler(event, context):
    secret = secret_of(event.get("headers"))
    if not secret:
        return problem(401, "no API key")
    digest = hashlib.sha256(secret.encode()).hexdigest()
    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    cred = credential(digest)
    if not cred or status_of(cred, now_ms) != "active":
        return problem(401, "unknown API key")
    # As get-key: the stamps run alongside the request's own work, whatever its answer.
    started = start_recording(cred, digest, now_ms)
    try:
        return respond(event, cred, now_ms)
    finally:
        finish_recording(started, cred, digest, now_ms)


def respond(event, cred, now_ms):
    """The answer to an authenticated caller: its permission, then the key read."""
    allowed = permissions_of(cred)
    if allowed is not None and "api_keys.view" not in allowed:
        return problem(403, "the key lacks api_keys.view")
    key_id = (event.get("pathParameters") or {}).get("id")
    org = cred["org"]["S"]
    item = DYNAMODB.get_item(
        TableName=TABLE, Key={"pk": {"S": f"ORG#{org}"}, "sk": {"S": f"KEY#{key_id}"}}
    ).get("Item")
    if not item:
        return problem(404, "no such key")
    view = {
        "id": item["id"]["S"],
        "name": item["name"]["S"],
        "created_date": rfc3339(item["created_ms"]["N"]),
        "last_four_digits": item["last_four"]["S"],
        "creator_id": item["creator_id"]["S"],
        "restricted": item["restricted"]["BOOL"],
        "permissions": permissions_of(item),
        "status": status_of(item, now_ms),
        "updated_date": rfc3339(item["updated_ms"]["N"]),
        "last_used_date": rfc3339(item["last_used_ms"]["N"]) if "last_used_ms" in item else None,
        "expires_date": rfc3339(item["expires_ms"]["N"]) if "expires_ms" in item else None,
    }
    return answer(200, view)
