// A minimal Lambda Runtime API client: stands for the loop of AWS's managed Node.js runtime
// (see README.md for why it is not aws-lambda-ric). It loads the handler, then forever takes
// the next invocation, calls the handler, and posts its answer or its error.
//
//   node bootstrap.mjs [module.function]    (default get_key.handler, or _HANDLER if set)
//
// The module is looked up beside this file, as the managed runtime looks in /var/task.
import http from "node:http";

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const BASE = "/2018-06-01/runtime";
// One connection to the Runtime API, kept open between calls.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, path, body, headers = {}) {
  const [host, port] = API.split(":");
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, method, path: BASE + path, agent, headers: body === undefined ? headers : { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers } },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const errorBody = (e) =>
  JSON.stringify({
    errorType: e?.name ?? "Error",
    errorMessage: e?.message ?? String(e),
    trace: typeof e?.stack === "string" ? e.stack.split("\n") : [],
  });

async function load() {
  const spec = process.argv[2] ?? process.env._HANDLER ?? "get_key.handler";
  const dot = spec.lastIndexOf(".");
  const module = await import(new URL(`./${spec.slice(0, dot)}.mjs`, import.meta.url));
  const handler = module[spec.slice(dot + 1)];
  if (typeof handler !== "function") throw new TypeError(`${spec} is not a function`);
  return handler;
}

let handler;
try {
  handler = await load();
} catch (e) {
  console.error(e);
  await call("POST", "/init/error", errorBody(e), { "lambda-runtime-function-error-type": "Runtime.ImportModuleError" });
  process.exit(1);
}

for (;;) {
  const next = await call("GET", "/invocation/next");
  if (next.status !== 200) throw new Error(`runtime API: next answered ${next.status}`);
  const id = next.headers["lambda-runtime-aws-request-id"];
  const deadline = Number(next.headers["lambda-runtime-deadline-ms"]);
  if (next.headers["lambda-runtime-trace-id"]) process.env._X_AMZN_TRACE_ID = next.headers["lambda-runtime-trace-id"];
  const context = {
    awsRequestId: id,
    invokedFunctionArn: next.headers["lambda-runtime-invoked-function-arn"],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
  let result, failed;
  try {
    result = await handler(JSON.parse(next.body), context);
  } catch (e) {
    console.error(e);
    failed = e;
  }
  if (failed === undefined) {
    await call("POST", `/invocation/${id}/response`, JSON.stringify(result ?? null));
  } else {
    await call("POST", `/invocation/${id}/error`, errorBody(failed), { "lambda-runtime-function-error-type": "Runtime.UnhandledError" });
  }
}
