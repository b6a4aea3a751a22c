//! The sample events the functions are invoked with (`events/`), and the checks of their
//! answers.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::BoxError;
use crate::emulator::{self, Function};

pub fn event(dir: &Path, name: &str) -> Result<Value, BoxError> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

pub fn bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// The HTTP API v2 list event with these query parameters.
pub fn list_event(base: &Value, params: &[(&str, String)]) -> Value {
    let mut e = base.clone();
    let raw: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    e["rawQueryString"] = Value::from(raw.join("&"));
    let map: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(v.clone())))
        .collect();
    e["queryStringParameters"] = Value::Object(map);
    e
}

/// verify-key's sample event, verifying `secret` for `api_keys.view`.
pub fn verify_event(base: &Value, secret: &str) -> Value {
    let mut e = base.clone();
    e["body"] = Value::String(
        serde_json::json!({"key": secret, "permissions": ["api_keys.view"]}).to_string(),
    );
    e
}

/// The sample events of the warm and scaling runs.
pub struct Samples {
    pub list_http: Value,
    pub verify_http: Value,
    pub get: Bytes,
    pub list: Bytes,
    pub verify: Bytes,
    /// The key get-key's sample event reads.
    pub key_id: String,
}

impl Samples {
    pub fn read(dir: &Path) -> Result<Samples, BoxError> {
        let get_http = event(dir, "get-key.http.json")?;
        let list_http = event(dir, "list-keys.http.json")?;
        // verify-key's sample event, verifying the demo admin's secret for a permission it
        // holds: the VALID path, the one that records a use. Not the viewer's: the cold
        // starts ran roll-key's sample, which rolls the viewer's key.
        let admin = apikeys_demo::secret_of(apikeys_demo::ADMIN_ID).ok_or("the demo admin")?;
        let verify_http = verify_event(&event(dir, "verify-key.http.json")?, admin.expose());
        let key_id = get_http["pathParameters"]["id"]
            .as_str()
            .ok_or("get-key.http.json has no pathParameters.id")?
            .to_owned();
        Ok(Samples {
            get: bytes(&get_http),
            list: bytes(&list_http),
            verify: bytes(&verify_http),
            list_http,
            verify_http,
            key_id,
        })
    }
}

/// Fails unless the function answered 200.
pub fn check_ok(f: &str, a: &emulator::Answer) -> Result<(), BoxError> {
    let v: Value = serde_json::from_slice(&a.body)?;
    if a.error || v["statusCode"] != 200 {
        return Err(format!(
            "{f} answered {}: {}",
            v["statusCode"],
            String::from_utf8_lossy(&a.body)
        )
        .into());
    }
    Ok(())
}

/// Fails unless verify-key answered 200 with `VALID`.
pub fn check_valid(a: &emulator::Answer) -> Result<(), BoxError> {
    check_ok("verify-key", a)?;
    let v: Value = serde_json::from_slice(&a.body)?;
    if !v["body"].as_str().is_some_and(|b| b.contains("\"VALID\"")) {
        return Err(format!("verify-key did not answer VALID: {v}").into());
    }
    Ok(())
}

/// Invokes `n` times and returns the durations.
pub async fn run(f: &mut Function, ev: &Bytes, n: usize) -> Result<Vec<Duration>, BoxError> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let a = f.invoke(ev.clone()).await?;
        check_ok(&f.name, &a)?;
        out.push(a.duration);
    }
    Ok(out)
}
