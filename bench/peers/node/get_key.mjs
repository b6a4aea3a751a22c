// get-key written the usual way: Node.js, the AWS SDK for JavaScript v3 (DynamoDBClient,
// GetItemCommand).
//
// The benchmark's Node.js peer (bench/README.md, bench/peers/node/README.md): the same work
// and the same answers as the Python peer (bench/peers/python/get_key.py), line for line.
// Authenticate with one GetItem of the credential item on the secret's SHA-256, then one
// GetItem of the key in the caller's organization. Errors are answered briefly; the benchmark
// only sends requests that succeed.
//
// Like get-key, it keeps an authenticated caller for CALLER_CACHE_TTL_SECS seconds (5 unless
// set; 0 to 60; 0 turns the cache off), keyed by the secret's SHA-256, at most 4,096 callers
// at once (when full, expired callers go first, and all of them if none has expired). Only
// credentials that exist are cached; an entry's age counts from before its read and is read
// on the monotonic and the wall clock, and it expires when either says the TTL has passed.
// The cached item carries the key's state and expiry date, so the status is computed at
// every request and an expired key is refused exactly.
//
// It records the caller's last use as get-key does (usage::Recorder, record_use in
// store/dynamo/credential.rs): when the credential (cached or just read) has no last_used_ms
// at or after a minute before the request, two conditional UpdateItems, one on the caller's
// key item (ORG#<org>/KEY#<id>) and one on its credential item (SECRET#<sha256>/SECRET),
// `SET #used = :at` if `attribute_exists(#pk) AND (attribute_not_exists(#used) OR #used <
// :stale)`, in milliseconds, with no retries (a client of their own with one attempt, on
// the same connections), sent together (Promise.allSettled) alongside the key read. The
// request waits for them at most 50 ms from their start, then aborts them (as get-key drops
// them). A failed condition is no error. When both answer in time, the cached caller notes
// the use, so the warm requests of the next minute write nothing; a write that fails or is
// late is one log line (the metric LastUseFailures) and that key's uses go unrecorded for a
// minute. During init it opens its connection with one GetItem of an item that never exists
// (WARMUP/WARMUP), aborted after 1 s, errors ignored, as get-key's config::warm_up.
//
// So it makes the DynamoDB calls get-key makes: during init 1 GetItem; on a caller's first
// request (and once the TTL has passed) the GetItem of the credential, then the GetItem of
// the key alongside the 2 UpdateItems if the last use is a minute old; on the warm requests
// after it the GetItem of the key alone. One difference remains: a secret that is not well
// formed is looked up (one GetItem) where get-key refuses it without a read; the benchmark
// sends only valid secrets.
//
// The client is built the default way: region from AWS_REGION, endpoint from
// AWS_ENDPOINT_URL_DYNAMODB when set, credentials from the environment. TLS trusts Node's
// roots plus NODE_EXTRA_CA_CERTS (read by Node at process start; the SDK for JavaScript does
// not read AWS_CA_BUNDLE).
import { createHash } from "node:crypto";
import { DynamoDBClient, GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";

const TABLE = process.env.TABLE_NAME;
if (!TABLE) throw new Error("the environment variable TABLE_NAME must be set");
const DYNAMODB = new DynamoDBClient({});
// The last-use stamps are never retried: a client of their own, one attempt per call, on the
// same connections.
const STAMPS = new DynamoDBClient({ maxAttempts: 1, requestHandler: DYNAMODB.config.requestHandler });

const WARM_UP_TIMEOUT_MS = 1000;
const LAST_USED_RESOLUTION_MS = 60_000;
const STAMP_WAIT_MS = 50;
const BACKOFF_MS = LAST_USED_RESOLUTION_MS;
const MAX_BACKING_OFF = 4096;
// Key id -> until when (wall clock, ms) its uses go unrecorded, after a failed stamp.
const BACKING_OFF = new Map();

/** Opens the client's connection with one GetItem of an item that never exists, aborted after
 * WARM_UP_TIMEOUT_MS; a failure is no error (the first request connects itself). */
async function warmUp() {
  try {
    await DYNAMODB.send(
      new GetItemCommand({ TableName: TABLE, Key: { pk: { S: "WARMUP" }, sk: { S: "WARMUP" } } }),
      { abortSignal: AbortSignal.timeout(WARM_UP_TIMEOUT_MS) },
    );
  } catch (e) {
    console.error(`connection warm-up failed: ${e?.name}: ${e?.message}`);
  }
}

await warmUp();

/** CALLER_CACHE_TTL_SECS as get-key reads it: unset or empty is 5 s, else 0 to 60. */
function callerCacheTtl() {
  const value = process.env.CALLER_CACHE_TTL_SECS ?? "";
  if (value === "") return 5;
  if (!/^\+?[0-9]+$/.test(value) || Number(value) > 60) {
    throw new Error("CALLER_CACHE_TTL_SECS must be a whole number of seconds from 0 to 60");
  }
  return Number(value);
}

const CACHE_TTL_MS = callerCacheTtl() * 1000;
const CACHE_MAX_ENTRIES = 4096;
// The secret's SHA-256 (hex) -> { mono, wall, cred }: when it was read (ms), and the item.
const CALLERS = new Map();

// Permission names by bit, in the order of the Rust service's `Permission::ALL`.
const PERMISSIONS = ["companies.delete","companies.update","calls.create","calls.delete","calls.update","calls.view","messages.view","agents.view","agents.create","agents.update","agents.delete","phones.view","phones.purchase","phones.delete","phones.update","phones.import","tools.view","tools.create","tools.delete","tools.update","contacts.view","contacts.delete","conversational_paths.view","conversational_paths.create","conversational_paths.delete","conversational_paths.update","knowledge_bases.view","knowledge_bases.create","knowledge_bases.delete","knowledge_bases.update","webhooks.view","webhooks.create","webhooks.delete","webhooks.update","members.view","members.create","members.delete","members.update","billing.view","billing.update","api_keys.view","api_keys.create","api_keys.delete","api_keys.update","voices.view","transcriptions.view","recordings.view","stats.view","verifications.create","verifications.view","notifications.view","notifications.update","integrations.view","integrations.create","integrations.update","integrations.delete"];

/** Whole seconds, UTC, as `2026-11-22T16:00:00Z`. */
const rfc3339 = (ms) => new Date(Math.floor(Number(ms) / 1000) * 1000).toISOString().slice(0, 19) + "Z";

const answer = (status, body, contentType = "application/json") => ({
  statusCode: status,
  headers: { "content-type": contentType },
  body: JSON.stringify(body),
});

const problem = (status, detail) =>
  answer(status, { title: detail, status, detail }, "application/problem+json");

function secretOf(headers) {
  const lower = {};
  for (const [k, v] of Object.entries(headers ?? {})) lower[k.toLowerCase()] = v;
  if ("x-api-key" in lower) return lower["x-api-key"];
  const auth = lower.authorization ?? "";
  return auth.toLowerCase().startsWith("bearer ") ? auth.slice(7) : null;
}

function statusOf(item, nowMs) {
  if (item.state.S !== "active") return "disabled";
  if ("expires_ms" in item && Number(item.expires_ms.N) <= nowMs) return "expired";
  return "active";
}

function permissionsOf(item) {
  if (!("permissions" in item)) return null;
  // Up to 56 bits: more than a Number holds exactly.
  const bits = BigInt(item.permissions.N);
  return PERMISSIONS.filter((_, i) => (bits >> BigInt(i)) & 1n);
}

/** Whether something read at `then` is younger than the TTL at `now`, on both clocks (a
 * wall clock set back counts as no time passed). */
const fresh = (then, now) =>
  now.mono - then.mono < CACHE_TTL_MS && Math.max(now.wall - then.wall, 0) < CACHE_TTL_MS;

const clocks = () => ({ mono: performance.now(), wall: Date.now() });

/** The credential item of the secret whose SHA-256 is `digest`, from the cache if it was read
 * less than the TTL ago, else with one GetItem (and then cached if it exists). */
async function credential(digest) {
  const entry = CALLERS.get(digest);
  if (entry !== undefined) {
    if (fresh(entry, clocks())) return entry.cred;
    CALLERS.delete(digest);
  }
  const readAt = clocks();
  const { Item: cred } = await DYNAMODB.send(
    new GetItemCommand({ TableName: TABLE, Key: { pk: { S: `SECRET#${digest}` }, sk: { S: "SECRET" } } }),
  );
  if (cred && CACHE_TTL_MS > 0) {
    if (CALLERS.size >= CACHE_MAX_ENTRIES && !CALLERS.has(digest)) {
      for (const [d, e] of CALLERS) if (!fresh(e, readAt)) CALLERS.delete(d);
      if (CALLERS.size >= CACHE_MAX_ENTRIES) CALLERS.clear();
    }
    CALLERS.set(digest, { ...readAt, cred });
  }
  return cred;
}

/** Stamps last_used_ms on one item if it exists and its stamp is older than `staleMs`: true
 * if written, false if the condition failed; any other error rejects. */
async function stamp(key, atMs, staleMs, abortSignal) {
  try {
    await STAMPS.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: key,
        UpdateExpression: "SET #used = :at",
        ConditionExpression: "attribute_exists(#pk) AND (attribute_not_exists(#used) OR #used < :stale)",
        ExpressionAttributeNames: { "#pk": "pk", "#used": "last_used_ms" },
        ExpressionAttributeValues: { ":at": { N: String(atMs) }, ":stale": { N: String(staleMs) } },
      }),
      { abortSignal },
    );
    return true;
  } catch (e) {
    if (e?.name === "ConditionalCheckFailedException") return false;
    throw e;
  }
}

/** Whether the key's last stamp failed less than BACKOFF_MS before `nowMs` (a wall clock that
 * stepped back never stretches it). */
function backingOff(keyId, nowMs) {
  const until = BACKING_OFF.get(keyId);
  if (until === undefined) return false;
  if (nowMs < until && until - nowMs <= BACKOFF_MS) return true;
  BACKING_OFF.delete(keyId);
  return false;
}

function backOff(keyId, nowMs) {
  if (BACKING_OFF.size >= MAX_BACKING_OFF && !BACKING_OFF.has(keyId)) {
    for (const [k, until] of BACKING_OFF) if (nowMs >= until) BACKING_OFF.delete(k);
    if (BACKING_OFF.size >= MAX_BACKING_OFF) BACKING_OFF.clear();
  }
  BACKING_OFF.set(keyId, nowMs + BACKOFF_MS);
}

/** Records the caller's last use at `nowMs` unless its credential says it was used less than
 * a minute ago or it is backing off: both writes at once, waited for at most STAMP_WAIT_MS.
 * Never rejects: a failure is one log line (the metric LastUseFailures) and a back-off. */
async function recordUse(cred, digest, nowMs) {
  const staleMs = nowMs - LAST_USED_RESOLUTION_MS;
  if ("last_used_ms" in cred && Number(cred.last_used_ms.N) >= staleMs) return;
  const keyId = cred.key_id.S;
  if (backingOff(keyId, nowMs)) return;
  const onKey = { pk: { S: `ORG#${cred.org.S}` }, sk: { S: `KEY#${keyId}` } };
  const onCredential = { pk: { S: `SECRET#${digest}` }, sk: { S: "SECRET" } };
  const abortSignal = AbortSignal.timeout(STAMP_WAIT_MS);
  // Both are waited for, as get-key's join, even when one fails at once.
  const outcomes = await Promise.allSettled([
    stamp(onKey, nowMs, staleMs, abortSignal),
    stamp(onCredential, nowMs, staleMs, abortSignal),
  ]);
  const failed = outcomes.find((o) => o.status === "rejected")?.reason;
  if (failed === undefined) {
    // The cached caller notes the use, so the next requests of the minute write nothing.
    const entry = CALLERS.get(digest);
    if (entry !== undefined) entry.cred.last_used_ms = { N: String(nowMs) };
    return;
  }
  const [reason, error] =
    failed?.name === "AbortError" || failed?.name === "TimeoutError"
      ? ["timeout", `no answer within ${STAMP_WAIT_MS} ms`]
      : ["error", `${failed?.name}: ${failed?.message}`];
  backOff(keyId, nowMs);
  const line = {
    message: "could not record the key's last use",
    reason,
    error,
    org: cred.org.S,
    caller: keyId,
    level: "WARN",
    _aws: {
      Timestamp: nowMs,
      CloudWatchMetrics: [
        { Namespace: "apikeys", Dimensions: [["FunctionName"]], Metrics: [{ Name: "LastUseFailures", Unit: "Count" }] },
      ],
    },
    FunctionName: process.env.AWS_LAMBDA_FUNCTION_NAME ?? "local",
    LastUseFailures: 1,
  };
  process.stdout.write(JSON.stringify(line) + "\n");
}

export async function handler(event, context) {
  const secret = secretOf(event.headers);
  if (!secret) return problem(401, "no API key");
  const digest = createHash("sha256").update(secret, "utf8").digest("hex");
  const nowMs = Date.now();
  const cred = await credential(digest);
  if (!cred || statusOf(cred, nowMs) !== "active") return problem(401, "unknown API key");
  // As get-key: the stamps run alongside the request's own work, whatever its answer.
  const [answered] = await Promise.allSettled([
    respond(event, cred, nowMs),
    recordUse(cred, digest, nowMs),
  ]);
  if (answered.status === "rejected") throw answered.reason;
  return answered.value;
}

/** The answer to an authenticated caller: its permission, then the key read. */
async function respond(event, cred, nowMs) {
  const allowed = permissionsOf(cred);
  if (allowed !== null && !allowed.includes("api_keys.view")) {
    return problem(403, "the key lacks api_keys.view");
  }
  const keyId = (event.pathParameters ?? {}).id;
  const org = cred.org.S;
  const { Item: item } = await DYNAMODB.send(
    new GetItemCommand({ TableName: TABLE, Key: { pk: { S: `ORG#${org}` }, sk: { S: `KEY#${keyId}` } } }),
  );
  if (!item) return problem(404, "no such key");
  const view = {
    id: item.id.S,
    name: item.name.S,
    created_date: rfc3339(item.created_ms.N),
    last_four_digits: item.last_four.S,
    creator_id: item.creator_id.S,
    restricted: item.restricted.BOOL,
    permissions: permissionsOf(item),
    status: statusOf(item, nowMs),
    updated_date: rfc3339(item.updated_ms.N),
    last_used_date: "last_used_ms" in item ? rfc3339(item.last_used_ms.N) : null,
    expires_date: "expires_ms" in item ? rfc3339(item.expires_ms.N) : null,
  };
  return answer(200, view);
}
