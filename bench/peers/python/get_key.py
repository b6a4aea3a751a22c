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
request and an expired key is refused exactly. So it makes the DynamoDB calls get-key makes:
on a caller's first request (and once the TTL has passed) 2 GetItems, on the warm requests
after it 1 (the key). Unlike get-key it does not warm its connection with a GetItem during
init.
"""
import hashlib
import json
import os
import re
import time
from datetime import datetime, timezone

import boto3

TABLE = os.environ["TABLE_NAME"]
DYNAMODB = boto3.client("dynamodb")


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


def handler(event, context):
    secret = secret_of(event.get("headers"))
    if not secret:
        return problem(401, "no API key")
    digest = hashlib.sha256(secret.encode()).hexdigest()
    cred = credential(digest)
    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    if not cred or status_of(cred, now_ms) != "active":
        return problem(401, "unknown API key")
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
