// Create, list and verify a key through the TypeScript client of openapi.yaml: the types
// openapi-typescript generated (schema.d.ts, beside this file once tests/clients.sh has
// copied it) and openapi-fetch. tsc --strict checks this file against them first.
//
//   node drive.js BASE_URL ADMIN_SECRET
//
// Any surprise throws, so a nonzero exit.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Permission = components["schemas"]["Permission"];
type Code = components["schemas"]["VerifyResult"]["code"];

function check(ok: boolean, what: string, got: unknown): asserts ok {
  if (!ok) throw new Error(`clients: typescript: ${what}: ${JSON.stringify(got)}`);
}

const [baseUrl, secret] = process.argv.slice(2);
check(Boolean(baseUrl && secret), "usage: node drive.js BASE_URL ADMIN_SECRET", process.argv);
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${secret}` } });

const name = `typescript client ${crypto.randomUUID()}`;
const view: Permission[] = ["api_keys.view"];
const created = await client.POST("/v1/api_key/", { body: { name, permissions: view } });
check(created.response.status === 201 && created.data !== undefined, "create", created.error);
const key = created.data;
check(key.name === name && key.restricted && key.status === "active", "the created key", key);
check(JSON.stringify(key.permissions) === JSON.stringify(view), "its permissions", key.permissions);
check(key.secret.startsWith("apk_") && key.last_four_digits === key.secret.slice(-4), "its secret", key);
console.log(`clients: typescript: created ${key.id} (${key.name})`);

// By name: exactly the new key. Unfiltered, newest first: it leads the page.
const byName = await client.GET("/v1/api_key/", { params: { query: { name } } });
check(byName.response.status === 200 && byName.data !== undefined, "list by name", byName.error);
check(JSON.stringify(byName.data.data.map((k) => k.id)) === JSON.stringify([key.id]), "list by name", byName.data);
const newest = await client.GET("/v1/api_key/", { params: { query: { limit: 5 } } });
check(newest.data !== undefined && newest.data.data[0]?.id === key.id, "list, newest first", newest.data);
console.log("clients: typescript: listed it");

async function verify(key: string, permissions: Permission[] | null, code: Code) {
  const reply = await client.POST("/v1/api_key/verify", { body: { key, permissions } });
  check(reply.response.status === 200 && reply.data !== undefined, "verify", reply.error);
  check(reply.data.code === code && reply.data.valid === (code === "VALID"), `verify, expected ${code}`, reply.data);
  return reply.data;
}
const valid = await verify(key.secret, view, "VALID");
check(valid.key?.id === key.id, "the verified key", valid.key);
await verify(key.secret, ["calls.view"], "INSUFFICIENT_PERMISSIONS");
const none = await verify("apk_not-a-real-key", null, "NOT_FOUND");
check(none.key === null, "no key", none.key);
console.log("clients: typescript: verify: VALID, INSUFFICIENT_PERMISSIONS without calls.view, NOT_FOUND for no key");
