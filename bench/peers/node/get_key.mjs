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
// every request and an expired key is refused exactly. So it makes the DynamoDB calls
// get-key makes: on a caller's first request (and once the TTL has passed) 2 GetItems, on
// the warm requests after it 1 (the key). Unlike get-key it does not warm its connection
// with a GetItem during init.
//
// The client is built the default way: region from AWS_REGION, endpoint from
// AWS_ENDPOINT_URL_DYNAMODB when set, credentials from the environment. TLS trusts Node's
// roots plus NODE_EXTRA_CA_CERTS (read by Node at process start; the SDK for JavaScript does
// not read AWS_CA_BUNDLE).
import { createHash } from "node:crypto";
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";

const TABLE = process.env.TABLE_NAME;
if (!TABLE) throw new Error("the environment variable TABLE_NAME must be set");
const DYNAMODB = new DynamoDBClient({});

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

export async function handler(event, context) {
  const secret = secretOf(event.headers);
  if (!secret) return problem(401, "no API key");
  const digest = createHash("sha256").update(secret, "utf8").digest("hex");
  const cred = await credential(digest);
  const nowMs = Date.now();
  if (!cred || statusOf(cred, nowMs) !== "active") return problem(401, "unknown API key");
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
