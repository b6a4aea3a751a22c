//! The fair cold-start floors: the least a function that reads DynamoDB must do. It builds an
//! SDK client the way the functions do (`apikeys::client::from_lambda_env`: the same TLS
//! stack and trust store). Same profile as the real functions.
//!
//! - Without `FLOOR_SPEC`, each invocation makes one GetItem over TLS (the connection and
//!   handshake included): the floor of any function.
//! - With `FLOOR_SPEC=<file>`, each invocation replays the DynamoDB calls a function made
//!   for one request (`replay`: recorded by the harness through its proxy), its writes each
//!   into a namespace of their own: one function's own floor, the same DynamoDB work minus
//!   the function's code.
//!
//! With `FLOOR_CONNECT_IN_INIT=1` it connects during init, as the functions do
//! (`apikeys::config::warm_up`), and its first invocation finds the connection open.

#[path = "../replay.rs"]
#[allow(dead_code)] // the harness uses the rest
mod replay;

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let table = std::env::var("TABLE_NAME")?;
    let calls = match std::env::var("FLOOR_SPEC") {
        Ok(path) => Some(replay::from_json(&serde_json::from_slice(
            &std::fs::read(path)?,
        )?)?),
        Err(_) => None,
    };
    let client =
        apikeys::client::from_lambda_env(apikeys::config::timeouts(), apikeys::config::retries())?;
    if std::env::var("FLOOR_CONNECT_IN_INIT").is_ok_and(|v| v == "1") {
        apikeys::config::warm_up(&client, &table).await;
    }
    // Each invocation's writes go into a namespace no other process or invocation uses.
    let process = uuid::Uuid::now_v7().simple().to_string();
    let invocation = AtomicU64::new(0);
    let (client, table, calls, process, invocation) =
        (&client, &table, &calls, &process, &invocation);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        if let Some(calls) = calls {
            let n = invocation.fetch_add(1, Ordering::Relaxed);
            let ns = format!("FLOOR#{process}-{n}#");
            replay::replay(client, calls, Some(&ns)).await?;
            return Ok::<_, Error>(json!({ "statusCode": 200, "body": calls.len().to_string() }));
        }
        let item = client
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S("FLOOR".into()))
            .key("sk", AttributeValue::S("FLOOR".into()))
            .send()
            .await?;
        Ok::<_, Error>(json!({ "statusCode": 200, "body": item.item.is_some().to_string() }))
    }))
    .await
}
