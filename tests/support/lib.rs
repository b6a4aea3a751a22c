//! Helpers for the integration tests: a fresh table on DynamoDB Local per test, key
//! fixtures, and real API Gateway payloads (REST v1 and HTTP API v2) built into
//! `lambda_http` requests the way the runtime builds them.

use apikeys::App;
use apikeys::key::{Access, ApiKey, KeyId, KeyState, OrgId, Permission};
use apikeys::page::CursorKeys;
use apikeys::secret::Secret;
use apikeys::store::KeyReader;
use apikeys::store::dynamo::DynamoStore;
use apikeys::telemetry::MetricSink;
use apikeys::usage::Recorder;
use apikeys::write::{NewKey, SecretKeys, WriteContext, WriteError, WritePolicy, create_key};
use chrono::{DateTime, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

pub const CURSOR_SECRET: &str = "integration-tests-cursor-secret-0123456789";

/// The SDK configuration the functions use, pointed at DynamoDB Local by
/// `AWS_ENDPOINT_URL_DYNAMODB` (set by `tools/dynamodb-local.sh run`), with timeouts
/// widened: DynamoDB Local on a loaded two-core machine can take seconds to answer, and
/// these tests check behaviour, not speed.
pub async fn client() -> aws_sdk_dynamodb::Client {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some(),
        "these tests run against DynamoDB Local: use `make test`, or \
         `tools/dynamodb-local.sh run cargo test`"
    );
    let config = apikeys::config::sdk_config().await;
    let config = apikeys::config::patient(config, std::time::Duration::from_secs(60));
    aws_sdk_dynamodb::Client::new(&config)
}

/// An application on a new, empty table of its own. Like its client, it waits for last-use
/// writes as long as DynamoDB Local takes, so that a test can read the stamp a request wrote.
pub async fn app() -> App<DynamoStore> {
    keep_callsites_open();
    wait_for_dynamodb().await;
    let table = format!("apikeys-test-{}", uuid::Uuid::now_v7().simple());
    let store = DynamoStore::new(client().await, table);
    if let Err(e) = store.create_table().await {
        // The name is new, so "preexisting" means the SDK retried a CreateTable whose first
        // attempt timed out on a busy machine after DynamoDB Local had created the table.
        assert!(
            format!("{e:?}").contains("ResourceInUseException"),
            "create the test table: {e:?}"
        );
    }
    App {
        store,
        callers: apikeys::cache::CallerCache::off(),
        cursors: CursorKeys::parse(CURSOR_SECRET).unwrap(),
        usage: patient_recorder(),
    }
}

/// A last-use recorder that waits for a write as long as DynamoDB Local takes, and keeps its
/// failure metric lines in memory.
pub fn patient_recorder() -> Recorder {
    Recorder::new(std::time::Duration::from_secs(60), MetricSink::memory())
}

/// A new organization id, unique to the test.
pub fn org() -> OrgId {
    format!("org-{}", uuid::Uuid::now_v7().simple())
        .parse()
        .unwrap()
}

/// A key to create in `org`: unrestricted, named `name`, by a fixed creator.
pub fn new_key(org: &OrgId, name: &str) -> NewKey {
    NewKey {
        org: org.clone(),
        name: name.to_owned(),
        creator_id: uuid::Uuid::from_u128(0x3c90c3cc_0d44_4b50_8888_8dd25736052a),
        access: Access::Unrestricted,
        expires: None,
        id: None,
        quota: Default::default(),
        owner_id: None,
        meta: None,
        allowed_cidrs: None,
    }
}

pub fn restricted(permissions: &[Permission]) -> Access {
    Access::new(true, permissions.to_vec())
}

/// Creates a key and returns it with its secret.
pub async fn create(app: &App<DynamoStore>, new: NewKey) -> (ApiKey, Secret) {
    create_key(&app.store, new).await.expect("create a key")
}

pub const IDEMPOTENCY_SECRET: &str = "integration-tests-idempotency-secret-0123456789";

/// The write policy of the tests: the default retention, and idempotency.
pub fn policy() -> WritePolicy {
    WritePolicy::default().with_secret_keys(SecretKeys::parse(IDEMPOTENCY_SECRET).unwrap())
}

/// A write by the tests' operator, now.
pub fn ctx() -> WriteContext {
    WriteContext::cli()
}

/// Sets a key's state now, through the domain's write; `false` if there is no such key.
pub async fn set_state(app: &App<DynamoStore>, org: &OrgId, id: KeyId, state: KeyState) -> bool {
    match apikeys::write::set_state(&app.store, &policy(), &ctx(), org, id, state).await {
        Ok(_) => true,
        Err(WriteError::NotFound) => false,
        Err(e) => panic!("set a key's state: {e:?}"),
    }
}

/// Deletes a key now, through the domain's write; `false` if there is no such key.
pub async fn delete(app: &App<DynamoStore>, org: &OrgId, id: KeyId) -> bool {
    delete_in(&app.store, org, id).await
}

/// Like [`delete`], on any DynamoDB store (a clone moved into a task, say).
pub async fn delete_in(store: &DynamoStore, org: &OrgId, id: KeyId) -> bool {
    match apikeys::write::delete_key(store, &policy(), &ctx(), org, id, None).await {
        Ok(_) => true,
        Err(WriteError::NotFound) => false,
        Err(e) => panic!("delete a key: {e:?}"),
    }
}

/// Every item in the app's table, as DynamoDB returns them.
pub async fn scan(
    app: &App<DynamoStore>,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let out = app
        .store
        .client()
        .scan()
        .table_name(app.store.table())
        .send()
        .await
        .expect("scan");
    out.items.unwrap_or_default()
}

/// An unrestricted caller in `org`.
pub async fn admin(app: &App<DynamoStore>, org: &OrgId) -> Secret {
    create(app, new_key(org, "admin")).await.1
}

/// Creates `n` keys in `org`, with creation times one millisecond apart from `start`
/// and distinct names, `concurrency` at a time. Returns them in creation order.
pub async fn create_many(
    app: &App<DynamoStore>,
    org: &OrgId,
    n: usize,
    start: DateTime<Utc>,
) -> Vec<ApiKey> {
    // Creates in one organization contend for its key count item; a few at a time keeps
    // the retries on transaction conflicts rare.
    const CONCURRENCY: usize = 8;
    let mut keys = Vec::with_capacity(n);
    let ids: Vec<usize> = (0..n).collect();
    for chunk in ids.chunks(CONCURRENCY) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let store = app.store.clone();
            let mut new = new_key(org, &format!("key {i:05}"));
            new.id = Some(KeyId::new_at(
                start + chrono::Duration::milliseconds(i as i64),
            ));
            set.spawn(async move { create_key(&store, new).await.expect("create a key").0 });
        }
        keys.extend(set.join_all().await);
    }
    keys.sort_by_key(|k| k.id);
    keys
}

/// Which API Gateway payload a request arrives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// REST API, payload format 1.0.
    Rest,
    /// HTTP API, payload format 2.0.
    Http,
}

pub const PAYLOADS: [Payload; 2] = [Payload::Rest, Payload::Http];

/// A request to the API, built into a real API Gateway event.
#[derive(Clone, Debug)]
pub struct Call {
    payload: Payload,
    method: String,
    path: String,
    id: Option<String>,
    /// The route's template and the name of its id parameter.
    route: (&'static str, &'static str),
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// The client's address in the request context; `None`: 127.0.0.1.
    source_ip: Option<String>,
}

/// The function API Gateway routes a request to (template.yaml's routes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    GetKey,
    ListKeys,
    CreateKey,
    UpdateKey,
    RollKey,
    DeleteKey,
    ListEvents,
    VerifyKey,
    RevokeLeaked,
    Owner,
}

/// The routes of one function: its resource templates, and the methods it has a route of
/// its own for (`None`: the resource's catch-all, `ANY`).
impl Function {
    /// The function that serves `method` on the route template `resource`, and the route key
    /// API Gateway names: a method route wins over the resource's `ANY`.
    pub fn route(resource: &str, method: &str) -> (Function, String) {
        let (function, own) = match (resource, method) {
            ("/v1/api_key/verify", _) => (Function::VerifyKey, false),
            ("/v1/secret_scanning/github", _) => (Function::RevokeLeaked, false),
            ("/v1/owner/{owner_id}", _) => (Function::Owner, false),
            ("/v1/api_key/{id}", "PATCH") => (Function::UpdateKey, true),
            ("/v1/api_key/{id}", "DELETE") => (Function::DeleteKey, true),
            ("/v1/api_key/{id}", _) | ("/v1/api_keys/{api_key_id}", _) => (Function::GetKey, false),
            ("/v1/api_key", "POST") => (Function::CreateKey, true),
            ("/v1/api_key", _) => (Function::ListKeys, false),
            ("/v1/api_key/{id}/roll", _) => (Function::RollKey, false),
            ("/v1/api_key/{id}/credits", _) => (Function::UpdateKey, false),
            ("/v1/api_key/{id}/events", _) | ("/v1/api_key_events", _) => {
                (Function::ListEvents, false)
            }
            other => panic!("no route for {other:?}"),
        };
        let key = if own {
            format!("{method} {resource}")
        } else {
            format!("ANY {resource}")
        };
        (function, key)
    }
}

impl Call {
    /// `GET /v1/api_key/{id}`.
    pub fn get(payload: Payload, id: impl ToString) -> Self {
        let id = id.to_string();
        Call {
            payload,
            method: "GET".into(),
            path: format!("/v1/api_key/{id}"),
            id: Some(id),
            route: ("/v1/api_key/{id}", "id"),
            query: vec![],
            headers: vec![],
            body: None,
            source_ip: None,
        }
    }

    /// `GET /v1/api_keys/{api_key_id}`: the discue view, served by the get-key function.
    pub fn discue(payload: Payload, id: impl ToString) -> Self {
        let id = id.to_string();
        Call {
            payload,
            method: "GET".into(),
            path: format!("/v1/api_keys/{id}"),
            id: Some(id),
            route: ("/v1/api_keys/{api_key_id}", "api_key_id"),
            query: vec![],
            headers: vec![],
            body: None,
            source_ip: None,
        }
    }

    /// `GET /v1/api_key/`.
    pub fn list(payload: Payload) -> Self {
        Call {
            payload,
            method: "GET".into(),
            path: "/v1/api_key/".into(),
            id: None,
            route: ("/v1/api_key", ""),
            query: vec![],
            headers: vec![],
            body: None,
            source_ip: None,
        }
    }

    /// `POST /v1/api_key/`: create a key.
    pub fn create(payload: Payload, body: Value) -> Self {
        Call::list(payload).method("POST").json(&body)
    }

    /// `PATCH /v1/api_key/{id}`: a merge patch of the key.
    pub fn update(payload: Payload, id: impl ToString, patch: Value) -> Self {
        Call::get(payload, id)
            .method("PATCH")
            .body("application/merge-patch+json", patch.to_string())
    }

    /// `POST /v1/api_key/{id}/roll`, with this body (`None`: no body).
    pub fn roll(payload: Payload, id: impl ToString, body: Option<Value>) -> Self {
        let id = id.to_string();
        let call = Call {
            path: format!("/v1/api_key/{id}/roll"),
            route: ("/v1/api_key/{id}/roll", "id"),
            ..Call::get(payload, &id).method("POST")
        };
        match body {
            Some(b) => call.json(&b),
            None => call,
        }
    }

    /// `POST /v1/api_key/{id}/credits`, with this body.
    pub fn adjust(payload: Payload, id: impl ToString, body: &Value) -> Self {
        let id = id.to_string();
        Call {
            path: format!("/v1/api_key/{id}/credits"),
            route: ("/v1/api_key/{id}/credits", "id"),
            ..Call::get(payload, &id).method("POST")
        }
        .json(body)
    }

    /// `DELETE /v1/api_key/{id}`.
    pub fn delete(payload: Payload, id: impl ToString) -> Self {
        Call::get(payload, id).method("DELETE")
    }

    /// `GET /v1/api_key_events/`: the organization's events.
    pub fn events(payload: Payload) -> Self {
        Call {
            path: "/v1/api_key_events/".into(),
            route: ("/v1/api_key_events", ""),
            ..Call::list(payload)
        }
    }

    /// `GET /v1/api_key/{id}/events`: one key's events.
    pub fn key_events(payload: Payload, id: impl ToString) -> Self {
        let id = id.to_string();
        Call {
            path: format!("/v1/api_key/{id}/events"),
            route: ("/v1/api_key/{id}/events", "id"),
            ..Call::get(payload, &id)
        }
    }

    /// `GET /v1/owner/{owner_id}`.
    pub fn owner(payload: Payload, id: &str) -> Self {
        Call {
            path: format!("/v1/owner/{}", encode(id)),
            id: Some(id.to_owned()),
            route: ("/v1/owner/{owner_id}", "owner_id"),
            ..Call::list(payload)
        }
    }

    /// `PUT /v1/owner/{owner_id}` with this body.
    pub fn put_owner(payload: Payload, id: &str, body: &Value) -> Self {
        Call::owner(payload, id).method("PUT").json(body)
    }

    /// `POST /v1/api_key/verify` with this body.
    pub fn verify(payload: Payload, body: &Value) -> Self {
        Call {
            path: "/v1/api_key/verify".into(),
            route: ("/v1/api_key/verify", ""),
            ..Call::list(payload).method("POST")
        }
        .json(body)
    }

    /// `POST /v1/secret_scanning/github` with this body as `application/json`, unsigned
    /// (see [`Call::signed`]).
    pub fn report(payload: Payload, body: impl Into<String>) -> Self {
        Call {
            path: "/v1/secret_scanning/github".into(),
            route: ("/v1/secret_scanning/github", ""),
            ..Call::list(payload).method("POST")
        }
        .body("application/json", body)
    }

    /// GitHub's signature headers for the body as it is now, by `signer`.
    pub fn signed(self, signer: &github::Signer) -> Self {
        let body = self.body.as_deref().unwrap_or_default().as_bytes();
        let [(id_name, key_id), (signature_name, signature)] = signer.headers(body);
        self.header(id_name, key_id)
            .header(signature_name, signature)
    }

    /// A JSON body, sent as `application/json`.
    pub fn json(self, body: &Value) -> Self {
        self.body("application/json", body.to_string())
    }

    /// A body of this media type (an empty type sends no Content-Type).
    pub fn body(mut self, content_type: &str, body: impl Into<String>) -> Self {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        if !content_type.is_empty() {
            self.headers
                .push(("Content-Type".into(), content_type.to_owned()));
        }
        self.body = Some(body.into());
        self
    }

    /// The function this request is routed to, and its route key.
    pub fn function(&self) -> (Function, String) {
        Function::route(self.route.0, &self.method)
    }

    pub fn path(mut self, path: &str) -> Self {
        self.path = path.into();
        self
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = method.into();
        self
    }

    pub fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.query.push((name.into(), value.to_string()));
        self
    }

    pub fn header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.push((name.into(), value.to_string()));
        self
    }

    pub fn bearer(self, secret: &Secret) -> Self {
        self.header("Authorization", format!("Bearer {}", secret.expose()))
    }

    /// The request as from `ip`: the address API Gateway puts in the request context (REST
    /// `requestContext.identity.sourceIp`, HTTP API `requestContext.http.sourceIp`).
    pub fn from_ip(mut self, ip: &str) -> Self {
        self.source_ip = Some(ip.to_owned());
        self
    }

    pub fn api_key(self, secret: &Secret) -> Self {
        self.header("X-API-KEY", secret.expose())
    }

    /// The API Gateway event for this request, as JSON.
    pub fn event(&self) -> Value {
        let request_id = uuid::Uuid::now_v7().to_string();
        let mut headers = serde_json::Map::new();
        let mut multi_headers = serde_json::Map::new();
        headers.insert(
            "host".into(),
            json!("abc123.execute-api.us-east-1.amazonaws.com"),
        );
        for (k, v) in &self.headers {
            headers.insert(k.clone(), json!(v));
            append(&mut multi_headers, k, v);
        }
        let (resource, param) = self.route;
        let path_params = self.id.as_ref().map(|id| json!({ param: id }));
        let source_ip = self.source_ip.as_deref().unwrap_or("127.0.0.1");
        match self.payload {
            Payload::Rest => {
                let mut single = serde_json::Map::new();
                let mut multi = serde_json::Map::new();
                for (k, v) in &self.query {
                    single.insert(k.clone(), json!(v));
                    append(&mut multi, k, v);
                }
                let q = |m: serde_json::Map<String, Value>| {
                    if m.is_empty() {
                        Value::Null
                    } else {
                        Value::Object(m)
                    }
                };
                json!({
                    "resource": resource,
                    "path": self.path,
                    "httpMethod": self.method,
                    "headers": headers,
                    "multiValueHeaders": multi_headers,
                    "queryStringParameters": q(single),
                    "multiValueQueryStringParameters": q(multi),
                    "pathParameters": path_params,
                    "stageVariables": null,
                    "requestContext": {
                        "accountId": "123456789012",
                        "apiId": "abc123",
                        "resourceId": "r1",
                        "resourcePath": resource,
                        "httpMethod": self.method,
                        "path": format!("/Prod{}", self.path),
                        "stage": "Prod",
                        "protocol": "HTTP/1.1",
                        "requestId": request_id,
                        "requestTimeEpoch": 1_700_000_000_000u64,
                        "identity": { "sourceIp": source_ip, "userAgent": "tests" }
                    },
                    "body": self.body,
                    "isBase64Encoded": false
                })
            }
            Payload::Http => {
                let raw_query = self
                    .query
                    .iter()
                    .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                // HTTP API joins repeated parameters and headers with commas, and
                // lower-cases header names.
                let mut single = serde_json::Map::new();
                for (k, v) in &self.query {
                    join(&mut single, k, v);
                }
                let mut lower = serde_json::Map::new();
                join(
                    &mut lower,
                    "host",
                    "abc123.execute-api.us-east-1.amazonaws.com",
                );
                for (k, v) in &self.headers {
                    join(&mut lower, &k.to_ascii_lowercase(), v);
                }
                let (_, route) = self.function();
                json!({
                    "version": "2.0",
                    "routeKey": route,
                    "rawPath": self.path,
                    "rawQueryString": raw_query,
                    "headers": lower,
                    "queryStringParameters": if single.is_empty() { Value::Null } else { Value::Object(single) },
                    "pathParameters": path_params,
                    "requestContext": {
                        "accountId": "123456789012",
                        "apiId": "abc123",
                        "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                        "domainPrefix": "abc123",
                        "http": {
                            "method": self.method,
                            "path": self.path,
                            "protocol": "HTTP/1.1",
                            "sourceIp": source_ip,
                            "userAgent": "tests"
                        },
                        "requestId": request_id,
                        "routeKey": route,
                        "stage": "$default",
                        "time": "14/Nov/2023:22:13:20 +0000",
                        "timeEpoch": 1_700_000_000_000u64
                    },
                    "body": self.body,
                    "isBase64Encoded": false
                })
            }
        }
    }

    pub fn request(&self) -> lambda_http::Request {
        lambda_http::request::from_str(&self.event().to_string())
            .expect("a valid API Gateway event")
    }

    /// Runs the request through the handler of its path.
    pub async fn send<S: Store>(&self, app: &App<S>) -> Reply {
        self.send_request(app, self.request()).await
    }

    /// Runs the request as an invocation with `left` until its deadline, as the Lambda
    /// runtime passes it in the context.
    pub async fn send_with_time_left(
        &self,
        app: &App<DynamoStore>,
        left: std::time::Duration,
    ) -> Reply {
        use lambda_http::RequestExt;
        let deadline = std::time::SystemTime::now() + left;
        let mut context = lambda_http::Context::default();
        context.deadline = deadline
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        self.send_request(app, self.request().with_lambda_context(context))
            .await
    }

    async fn send_request<S: Store>(&self, app: &App<S>, req: lambda_http::Request) -> Reply {
        Reply::from(dispatch(app, self.function().0, req).await)
    }
}

/// Every role of the store the functions use together: what [`dispatch`] needs.
pub trait Store:
    apikeys::store::KeyReader
    + apikeys::store::CredentialStore
    + apikeys::store::KeyWriter
    + apikeys::store::AuditReader
    + apikeys::store::LeakLookup
    + apikeys::store::QuotaStore
    + apikeys::store::OwnerStore
{
}

impl<S> Store for S where
    S: apikeys::store::KeyReader
        + apikeys::store::CredentialStore
        + apikeys::store::KeyWriter
        + apikeys::store::AuditReader
        + apikeys::store::LeakLookup
        + apikeys::store::QuotaStore
        + apikeys::store::OwnerStore
{
}

/// Runs a request through the handler of `function`, the write functions with the tests'
/// [`policy`].
pub async fn dispatch<S: Store>(
    app: &App<S>,
    function: Function,
    req: lambda_http::Request,
) -> Response<Body> {
    let policy = policy();
    match function {
        Function::GetKey => apikeys::http::get_key(app, req).await,
        Function::ListKeys => apikeys::http::list_keys(app, req).await,
        Function::CreateKey => apikeys::http::create_key(app, &policy, req).await,
        Function::UpdateKey => apikeys::http::update_key(app, &policy, req).await,
        Function::RollKey => apikeys::http::roll_key(app, &policy, req).await,
        Function::DeleteKey => apikeys::http::delete_key(app, &policy, req).await,
        Function::ListEvents => apikeys::http::list_events(app, req).await,
        // No verification cache across requests: each one reads the table.
        Function::VerifyKey => {
            let cache = apikeys::verify::VerifyCache::new(std::time::Duration::ZERO);
            apikeys::http::verify_key(app, &cache, req).await
        }
        Function::RevokeLeaked => {
            apikeys::http::revoke_leaked(app, &github::key_source(), &policy, req).await
        }
        Function::Owner => apikeys::http::owner(app, &policy, req).await,
    }
}

/// Adds `v` to the list of values under `k` (payload 1.0's multi-value maps).
fn append(map: &mut serde_json::Map<String, Value>, k: &str, v: &str) {
    if let Value::Array(values) = map.entry(k).or_insert_with(|| json!([])) {
        values.push(json!(v));
    }
}

/// Adds `v` to the comma-joined value under `k` (payload 2.0's maps).
fn join(map: &mut serde_json::Map<String, Value>, k: &str, v: &str) {
    let joined = match map.get(k) {
        Some(Value::String(prev)) => format!("{prev},{v}"),
        _ => v.to_owned(),
    };
    map.insert(k.to_owned(), json!(joined));
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A handler's response, with its body parsed.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub raw: Vec<u8>,
    pub body: Value,
}

impl From<Response<Body>> for Reply {
    fn from(response: Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let raw = body.to_vec();
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw).expect("the body is JSON")
        };
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            raw,
            body,
        }
    }
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The ids of a list page's `data`.
    pub fn ids(&self) -> Vec<String> {
        self.body["data"]
            .as_array()
            .expect("a page has data")
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Asserts this is a problem+json with this status, and returns its detail.
    #[track_caller]
    pub fn problem(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["type"], "about:blank");
        let title = lambda_http::http::StatusCode::from_u16(status)
            .unwrap()
            .canonical_reason()
            .unwrap();
        assert_eq!(self.body["title"], title);
        assert!(!self.body["request_id"].as_str().unwrap().is_empty());
        self.body["detail"].as_str().expect("a detail")
    }
}

pub mod capacity;
pub mod fault;
pub mod github;
pub mod hooked;
pub mod late;
pub mod moto;
pub mod quota;
pub mod realistic;
pub mod rival;

/// A global subscriber that records nothing but keeps every callsite open (interest
/// "sometimes"), so that a test capturing logs with a scoped subscriber ([`LogCapture`]) sees
/// every event. Without it, tracing may cache a callsite as "never": when a test thread with
/// no subscriber of its own first reaches it while another test installs its capture, the
/// stale answer can outlive the capture's rebuild of the cache. That race once lost the
/// leak report's "report handled" line from a capture.
struct KeepCallsitesOpen;

impl tracing::Subscriber for KeepCallsitesOpen {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Installs [`KeepCallsitesOpen`] as the global subscriber, once per test binary.
pub fn keep_callsites_open() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // A binary that set its own global subscriber keeps it.
        let _ = tracing::subscriber::set_global_default(KeepCallsitesOpen);
    });
}

/// A log sink for tests: collects everything a tracing subscriber writes.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// The service's own subscriber (JSON lines, production caps) at `level`, writing here.
    pub fn subscriber(&self, level: &str) -> impl tracing::Subscriber + Send + Sync + use<> {
        keep_callsites_open();
        apikeys::telemetry::subscriber(apikeys::telemetry::filter(level), self.clone())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Text that must never reach a client: how the store failed, and where it lives.
pub const INTERNAL_TEXT: &[&str] = &[
    "Exception",
    "dynamodb",
    "DynamoDB",
    "amazonaws",
    "127.0.0.1",
    "localhost",
    "dispatch failure",
    "timed out",
    "timeout",
    "apikeys-test-",
    "panicked",
    "SdkError",
    "ORG#",
    "SECRET#",
    "KEY#",
];

/// Fails if `text` holds any of `secrets`, their hashes, the cursor secret, or (when
/// `response` is true) any [`INTERNAL_TEXT`]. `what` names the text in the message.
#[track_caller]
pub fn assert_no_leak(what: &str, text: &str, secrets: &[Secret], response: bool) {
    for s in secrets {
        assert!(!text.contains(s.expose()), "a secret in {what}");
        assert!(
            !text.contains(s.hash().as_str()),
            "a secret's hash in {what}"
        );
    }
    assert!(!text.contains(CURSOR_SECRET), "the cursor secret in {what}");
    if response {
        for needle in INTERNAL_TEXT {
            assert!(!text.contains(needle), "{needle:?} in {what}: {text}");
        }
    }
}

/// An application whose store reaches the table of `app` through `endpoint` (a proxy), with
/// the functions' own timeouts and last-use wait; its failed last-use writes are counted in
/// `usage.metrics()`.
pub async fn app_via(app: &App<DynamoStore>, endpoint: &str) -> App<DynamoStore> {
    let config = apikeys::config::sdk_config().await;
    app_via_with(app, endpoint, (&config).into())
}

/// Like [`app_via`], with every DynamoDB operation allowed `patience`: only the request's
/// deadline can cut it short.
pub async fn patient_app_via(
    app: &App<DynamoStore>,
    endpoint: &str,
    patience: std::time::Duration,
) -> App<DynamoStore> {
    let config = apikeys::config::patient(apikeys::config::sdk_config().await, patience);
    app_via_with(app, endpoint, (&config).into())
}

fn app_via_with(
    app: &App<DynamoStore>,
    endpoint: &str,
    dynamo: aws_sdk_dynamodb::config::Builder,
) -> App<DynamoStore> {
    let dynamo = dynamo.endpoint_url(endpoint).build();
    App {
        store: DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(dynamo),
            app.store.table(),
        ),
        callers: apikeys::cache::CallerCache::off(),
        cursors: app.cursors.clone(),
        usage: Recorder::new(apikeys::usage::WAIT, MetricSink::memory()),
    }
}

/// The address of DynamoDB Local (`AWS_ENDPOINT_URL_DYNAMODB`), for a proxy in front of it.
pub async fn dynamodb_local_addr() -> std::net::SocketAddr {
    let url = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .expect("AWS_ENDPOINT_URL_DYNAMODB: run under tools/dynamodb-local.sh");
    let host_port = url.trim_start_matches("http://").trim_end_matches('/');
    tokio::net::lookup_host(host_port)
        .await
        .expect("resolve DynamoDB Local")
        .next()
        .expect("an address")
}

/// Waits (at most 60 s) until DynamoDB Local creates a table, and writes and reads keys, within the SDK's timeouts: a
/// JVM that has just started can take longer than that for its first requests on a busy
/// machine, and a timed-out CreateTable that went through fails its retry.
/// Done once per test binary; every caller waits for that one warm-up.
pub async fn wait_for_dynamodb() {
    static READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    READY.get_or_init(warm_up).await;
}

async fn warm_up() {
    let client = client().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let table = format!("apikeys-warmup-{}", uuid::Uuid::now_v7().simple());
        let store = DynamoStore::new(client.clone(), table);
        let org = org();
        let warm = async {
            store.create_table().await.ok()?;
            for _ in 0..3 {
                let (key, _) = create_key(&store, new_key(&org, "warm-up")).await.ok()?;
                store.get_key(&org, key.id).await.ok()?;
                store.read_run(&org, None, true, 2).await.ok()?;
            }
            Some(())
        };
        if warm.await.is_some() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DynamoDB Local did not answer within 60 s"
        );
    }
}

/// An application whose store points at a loopback port nobody listens on: every store
/// call fails as DynamoDB being unreachable does.
pub async fn unreachable_store() -> App<DynamoStore> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    let config = apikeys::config::sdk_config().await;
    let dynamo = aws_sdk_dynamodb::config::Builder::from(&config)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    App {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(dynamo), "t"),
        callers: apikeys::cache::CallerCache::off(),
        cursors: CursorKeys::parse(CURSOR_SECRET).unwrap(),
        usage: Recorder::new(apikeys::usage::WAIT, MetricSink::memory()),
    }
}

/// A new organization id of 64 characters, the longest there is: its keys are the largest.
pub fn longest_org() -> OrgId {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("org-{id}-{}", "x".repeat(64 - 5 - id.len()))
        .parse()
        .unwrap()
}

/// A key as large as a key can be, in `org`: the longest name, every permission, an expiry.
pub fn largest_key(org: &OrgId, i: usize) -> NewKey {
    let mut new = new_key(
        org,
        &format!("{i:05}{}", "n".repeat(apikeys::store::MAX_NAME_BYTES - 5)),
    );
    new.access = restricted(Permission::ALL);
    new.expires = Some(Utc::now() + chrono::Duration::days(365));
    new
}

/// Writes `n` of the largest keys into `org` (key items only, no credentials, with
/// BatchWriteItem: much faster than `n` creates) one millisecond apart, and sets the
/// organization's key count to match. Returns their ids in order.
pub async fn seed_largest(app: &App<DynamoStore>, org: &OrgId, n: usize) -> Vec<KeyId> {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    let start = Utc::now() - chrono::Duration::days(1);
    let mut ids = Vec::with_capacity(n);
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let secret = Secret::generate().unwrap();
        let mut new = largest_key(org, i);
        new.id = Some(KeyId::new_at(
            start + chrono::Duration::milliseconds(i as i64),
        ));
        let key = new.into_record(&secret, start).unwrap();
        ids.push(key.id);
        items.push(apikeys::store::dynamo::key_item(&key, &secret.hash()).unwrap());
    }
    let client = app.store.client();
    for batch in items.chunks(25) {
        let mut writes: Vec<WriteRequest> = batch
            .iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item.clone())).build();
                WriteRequest::builder().put_request(put.unwrap()).build()
            })
            .collect();
        for _ in 0..20 {
            if writes.is_empty() {
                break;
            }
            let out = client
                .batch_write_item()
                .request_items(app.store.table(), writes)
                .send()
                .await
                .expect("BatchWriteItem");
            writes = out
                .unprocessed_items
                .and_then(|mut u| u.remove(app.store.table()))
                .unwrap_or_default();
        }
        assert!(writes.is_empty(), "BatchWriteItem left items unprocessed");
    }
    client
        .put_item()
        .table_name(app.store.table())
        .item(
            apikeys::store::dynamo::PK,
            AttributeValue::S(format!("ORG#{org}")),
        )
        .item(
            apikeys::store::dynamo::SK,
            AttributeValue::S(apikeys::store::dynamo::COUNT_SK.into()),
        )
        .item(
            apikeys::store::dynamo::KEY_COUNT,
            AttributeValue::N(n.to_string()),
        )
        .send()
        .await
        .expect("set the key count");
    ids
}
