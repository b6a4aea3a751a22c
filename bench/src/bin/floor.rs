//! The fair cold-start floor: the least any function that reads DynamoDB must do. It builds
//! an SDK client the way the functions do (`apikeys::client::from_lambda_env`: the same TLS
//! stack and trust store) and, on its first invocation, makes one GetItem over TLS (the
//! connection and handshake included). Same profile as the real functions.
//!
//! With `FLOOR_CONNECT_IN_INIT=1` it connects during init instead, as the functions do
//! (`apikeys::config::warm_up`), and its first invocation's GetItem finds the connection
//! open: the least a function must do when init has more CPU than its invocations.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let table = std::env::var("TABLE_NAME")?;
    let client =
        apikeys::client::from_lambda_env(apikeys::config::timeouts(), apikeys::config::retries())?;
    if std::env::var("FLOOR_CONNECT_IN_INIT").is_ok_and(|v| v == "1") {
        apikeys::config::warm_up(&client, &table).await;
    }
    let (client, table) = (&client, &table);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
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
