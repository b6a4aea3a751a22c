//! The fault proxy's realistic mode: DynamoDB Local made to answer as real DynamoDB may.
//!
//! DynamoDB Local reads every item consistently, never cancels a transaction for capacity,
//! and never loses an answer. On the wire between the SDK and DynamoDB Local, this mode:
//! - serves eventually consistent reads (a GetItem or Query without `ConsistentRead`, every
//!   index Query) the items a transaction wrote as they were before it, for [`Realism::lag`]
//!   after it committed (a new item is not there yet; a deleted one is not gone from a
//!   GetItem);
//! - cancels the first [`Realism::cancel`] transactions with a `TransactionCanceledException`
//!   whose first reason is the given code (`ThrottlingError`, `TransactionConflict`…);
//! - answers the first [`Realism::lose_commits`] transactions that committed with a
//!   `TransactionInProgressException`, as DynamoDB does to a retry of a transaction still
//!   settling, so the client cannot tell that it committed;
//! - answers the first [`Realism::lose_spends`] verify spends (UpdateItems that set
//!   `last_spend`) that DynamoDB Local applied with a 500 `InternalServerError`, as when an
//!   answer is lost, so the SDK sends the same write again;
//! - keeps every transaction's `ClientRequestToken`, in order.
//!
//! Items written other than by TransactWriteItems are not tracked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::fault::read_request;

/// What the realistic mode does (see the module's note).
#[derive(Clone, Debug, Default)]
pub struct Realism {
    /// How long after a transaction commits eventually consistent reads still miss it.
    pub lag: Duration,
    /// Cancels this many transactions, from now, with this reason on their first item.
    pub cancel: Option<(&'static str, u32)>,
    /// Answers this many committed transactions, from now, with TransactionInProgress.
    pub lose_commits: u32,
    /// Answers this many applied spends, from now, with a 500.
    pub lose_spends: u32,
}

/// An item's table and primary key.
type ItemKey = (String, String, String);

/// The state one proxy's connections share.
#[derive(Default)]
pub(crate) struct State {
    realism: Realism,
    /// Items as they were before a transaction wrote them (`None`: absent), until when.
    before: HashMap<ItemKey, (Option<Value>, Instant)>,
    tokens: Vec<String>,
}

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn reset(state: &Shared, realism: Realism) {
    let mut s = state.lock().unwrap();
    *s = State {
        realism,
        ..State::default()
    };
}

pub(crate) fn tokens(state: &Shared) -> Vec<String> {
    state.lock().unwrap().tokens.clone()
}

fn key_of(table: &Value, item: &Value) -> Option<ItemKey> {
    Some((
        table.as_str()?.to_owned(),
        item.get("pk")?.get("S")?.as_str()?.to_owned(),
        item.get("sk")?.get("S")?.as_str()?.to_owned(),
    ))
}

/// The table and key of each item a TransactWriteItems request writes.
fn written(request: &Value) -> Vec<(ItemKey, Value)> {
    let items = request["TransactItems"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|i| {
            let (op, item) = match (i.get("Put"), i.get("Update").or(i.get("Delete"))) {
                (Some(put), _) => (put, &put["Item"]),
                (None, Some(op)) => (op, &op["Key"]),
                _ => return None,
            };
            let key = key_of(&op["TableName"], item)?;
            let primary = json!({"pk": item["pk"], "sk": item["sk"]});
            Some((key, primary))
        })
        .collect()
}

/// An HTTP/1.1 response from DynamoDB with this status line and JSON body.
fn response(status: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.0\r\n\
         x-amzn-RequestId: REALISTIC{:043}\r\nContent-Length: {}\r\n\r\n{body}",
        0,
        body.len()
    )
    .into_bytes()
}

fn error(kind: &str, message: &str, extra: Value) -> Vec<u8> {
    let mut body = json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
        "message": message,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    response("400 Bad Request", &body)
}

/// `head` with its target operation and body length replaced.
fn retarget(head: &[u8], operation: &str, length: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("x-amz-target:") {
            out.push_str(&format!("X-Amz-Target: DynamoDB_20120810.{operation}"));
        } else if lower.starts_with("content-length:") {
            out.push_str(&format!("Content-Length: {length}"));
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// One request to DynamoDB Local on a connection of its own: the response body's JSON.
async fn call(
    upstream: std::net::SocketAddr,
    head: &[u8],
    operation: &str,
    body: &Value,
) -> std::io::Result<Value> {
    let body = body.to_string();
    let mut server = TcpStream::connect(upstream).await?;
    server
        .write_all(&retarget(head, operation, body.len()))
        .await?;
    server.write_all(body.as_bytes()).await?;
    let (_, answer) = read_request(&mut server).await?.unwrap_or_default();
    Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

/// Serves one connection in the realistic mode.
pub(crate) async fn serve(
    mut client: TcpStream,
    upstream: std::net::SocketAddr,
    state: Shared,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    while let Some((head, body)) = read_request(&mut client).await? {
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let operation = text
            .lines()
            .find_map(|l| l.strip_prefix("x-amz-target: dynamodb_20120810."))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answer = match operation.as_str() {
            "transactwriteitems" => {
                transact(&mut server, upstream, &state, (&head, &body), &request).await?
            }
            "updateitem"
                if request["UpdateExpression"]
                    .as_str()
                    .is_some_and(|e| e.contains("last_spend")) =>
            {
                let (head, answer) = forward(&mut server, &head, &body).await?;
                lose_spend(&state, head, answer)
            }
            "getitem" | "query" if request["ConsistentRead"] != json!(true) => {
                let (head, answer) = forward(&mut server, &head, &body).await?;
                stale(&state, &operation, &request, head, answer)
            }
            _ => {
                let (head, answer) = forward(&mut server, &head, &body).await?;
                [head, answer].concat()
            }
        };
        client.write_all(&answer).await?;
    }
    Ok(())
}

async fn forward(
    server: &mut TcpStream,
    head: &[u8],
    body: &[u8],
) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    server.write_all(head).await?;
    server.write_all(body).await?;
    read_request(server)
        .await?
        .ok_or_else(|| std::io::Error::other("DynamoDB Local closed the connection"))
}

/// A transaction: cancelled, or passed on with the items' former states kept, and its
/// success perhaps hidden.
async fn transact(
    server: &mut TcpStream,
    upstream: std::net::SocketAddr,
    state: &Shared,
    (head, body): (&[u8], &[u8]),
    request: &Value,
) -> std::io::Result<Vec<u8>> {
    let writes = written(request);
    let cancel = {
        let mut s = state.lock().unwrap();
        if let Some(token) = request["ClientRequestToken"].as_str() {
            s.tokens.push(token.to_owned());
        }
        match &mut s.realism.cancel {
            Some((code, left)) if *left > 0 => {
                *left -= 1;
                Some(*code)
            }
            _ => None,
        }
    };
    if let Some(code) = cancel {
        return Ok(cancelled(code, writes.len().max(1)));
    }
    let mut former = Vec::new();
    for (key, primary) in &writes {
        let read = json!({"TableName": key.0, "Key": primary, "ConsistentRead": true});
        let got = call(upstream, head, "GetItem", &read).await?;
        former.push((key.clone(), got.get("Item").cloned()));
    }
    let (answer_head, answer) = forward(server, head, body).await?;
    if !String::from_utf8_lossy(&answer_head).starts_with("HTTP/1.1 200") {
        return Ok([answer_head, answer].concat());
    }
    let mut s = state.lock().unwrap();
    let until = Instant::now() + s.realism.lag;
    for (key, item) in former {
        // An earlier write still settling keeps the oldest state.
        let entry = s.before.entry(key).or_insert((item, until));
        entry.1 = until;
    }
    if s.realism.lose_commits > 0 {
        s.realism.lose_commits -= 1;
        return Ok(error(
            "TransactionInProgressException",
            "Transaction is ongoing for the transaction",
            json!({}),
        ));
    }
    Ok([answer_head, answer].concat())
}

/// A spend's answer, or, while spends are to be lost and this one applied, a 500.
fn lose_spend(state: &Shared, head: Vec<u8>, answer: Vec<u8>) -> Vec<u8> {
    let mut s = state.lock().unwrap();
    let applied = String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200");
    if applied && s.realism.lose_spends > 0 {
        s.realism.lose_spends -= 1;
        let body = json!({
            "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "message": "Internal server error (fault proxy: the spend applied)",
        });
        return response("500 Internal Server Error", &body);
    }
    [head, answer].concat()
}

fn cancelled(code: &str, items: usize) -> Vec<u8> {
    let mut reasons = vec![json!({"Code": "None"}); items];
    reasons[0] = json!({"Code": code, "Message": format!("{code} (fault proxy)")});
    let listed: Vec<&str> = std::iter::once(code)
        .chain(std::iter::repeat_n("None", items - 1))
        .collect();
    error(
        "TransactionCanceledException",
        &format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            listed.join(", ")
        ),
        json!({"CancellationReasons": reasons}),
    )
}

/// An eventually consistent read's answer, with the items that changed within the lag as
/// they were before.
fn stale(
    state: &Shared,
    operation: &str,
    request: &Value,
    head: Vec<u8>,
    answer: Vec<u8>,
) -> Vec<u8> {
    let Ok(mut body) = serde_json::from_slice::<Value>(&answer) else {
        return [head, answer].concat();
    };
    if !String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200") {
        return [head, answer].concat();
    }
    let now = Instant::now();
    let s = state.lock().unwrap();
    let former = |key: Option<ItemKey>| {
        key.and_then(|k| s.before.get(&k))
            .filter(|(_, until)| *until > now)
            .map(|(item, _)| item.clone())
    };
    let table = &request["TableName"];
    if operation == "getitem" {
        match former(key_of(table, &request["Key"])) {
            Some(Some(item)) => body = json!({"Item": item}),
            Some(None) => body = json!({}),
            None => {}
        }
    } else if let Some(items) = body["Items"].as_array().cloned() {
        let items: Vec<Value> = items
            .into_iter()
            .filter_map(|i| match former(key_of(table, &i)) {
                Some(earlier) => earlier,
                None => Some(i),
            })
            .collect();
        body["Count"] = json!(items.len());
        body["Items"] = Value::Array(items);
    }
    response("200 OK", &body)
}
