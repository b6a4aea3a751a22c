//! A recording proxy in front of DynamoDB Local, for measuring capacity: it adds
//! `"ReturnConsumedCapacity": "TOTAL"` to every request a function makes, forwards it, and
//! records the operation, the items it read and the capacity units DynamoDB reports. The
//! tests hold the per-request bounds with it, and the benchmark reports its figures; timings
//! are never taken through it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One DynamoDB call: the operation (`GetItem`, `Query`, ...), the items it read (a
/// Query's `ScannedCount`, 1 for an item a GetItem found), its capacity units, and for a
/// Query the sort key prefix it asked for (its `:prefix` value: `KEY#` for keys, `COUNT`
/// for the key count's items); and, for the benchmark's floors that replay a function's
/// calls, its request as the function sent it and when it started and ended.
#[derive(Clone, Debug)]
pub struct Call {
    pub op: String,
    pub items: u64,
    pub units: f64,
    pub prefix: Option<String>,
    pub request: Value,
    pub started: std::time::Instant,
    pub ended: std::time::Instant,
}

pub struct Proxy {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    server: tokio::task::JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The capacity units a DynamoDB response reports (one object, or a list of them).
pub fn consumed_units(body: &Value) -> f64 {
    match body.get("ConsumedCapacity") {
        Some(Value::Array(all)) => all
            .iter()
            .filter_map(|c| c.get("CapacityUnits")?.as_f64())
            .sum(),
        Some(one) => one
            .get("CapacityUnits")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        None => 0.0,
    }
}

async fn forward(
    upstream: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let started = std::time::Instant::now();
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let op = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("?")
        .to_owned();
    let request: Value = serde_json::from_slice(&body)?;
    let mut json = request.clone();
    let prefix = json["ExpressionAttributeValues"][":prefix"]["S"]
        .as_str()
        .map(str::to_owned);
    if let Value::Object(map) = &mut json {
        map.insert("ReturnConsumedCapacity".into(), Value::from("TOTAL"));
    }
    let body = Bytes::from(serde_json::to_vec(&json)?);
    parts.headers.remove("content-length");
    parts
        .headers
        .insert("content-length", body.len().to_string().parse()?);
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    let answer = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let units = consumed_units(&answer);
    let items = answer
        .get("ScannedCount")
        .and_then(Value::as_u64)
        .unwrap_or(u64::from(answer.get("Item").is_some()));
    lock(&calls).push(Call {
        op,
        items,
        units,
        prefix,
        request,
        started,
        ended: std::time::Instant::now(),
    });
    parts.headers.remove("transfer-encoding");
    parts
        .headers
        .insert("content-length", body.len().to_string().parse()?);
    Ok(Response::from_parts(parts, Full::new(body)))
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Proxy, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let calls = recorded.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let calls = calls.clone();
                        async move {
                            Ok::<_, Infallible>(match forward(upstream, calls, req).await {
                                Ok(r) => r,
                                Err(e) => {
                                    eprintln!("capacity proxy: {e}");
                                    let mut r = Response::new(Full::new(Bytes::new()));
                                    *r.status_mut() = StatusCode::BAD_GATEWAY;
                                    r
                                }
                            })
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Proxy {
            addr,
            calls,
            server,
        })
    }

    /// A proxy in front of DynamoDB Local (`AWS_ENDPOINT_URL_DYNAMODB`).
    pub async fn in_front_of_dynamodb_local() -> Proxy {
        Proxy::start(crate::dynamodb_local_addr().await)
            .await
            .expect("start the capacity proxy")
    }

    /// `http://127.0.0.1:<port>`, for the SDK's endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The calls recorded since the last take.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *lock(&self.calls))
    }

    pub fn stop(self) {
        self.server.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_read_from_one_or_many_entries() {
        let one = serde_json::json!({"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}});
        assert_eq!(consumed_units(&one), 0.5);
        let many = serde_json::json!({"ConsumedCapacity": [{"CapacityUnits": 1.0}, {"CapacityUnits": 2.5}]});
        assert_eq!(consumed_units(&many), 3.5);
        assert_eq!(consumed_units(&serde_json::json!({})), 0.0);
    }
}
