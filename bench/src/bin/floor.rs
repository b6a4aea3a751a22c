//! The fair cold-start floor: the least any function that reads DynamoDB must do. It builds
//! an SDK client the way the functions do (`apikeys::client::from_lambda_env`: the same TLS
//! stack and trust store) and, on its first invocation, makes one GetItem over TLS (the
//! connection and handshake included). Same profile as the real functions.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let table = std::env::var("TABLE_NAME")?;
    let client =
        apikeys::client::from_lambda_env(apikeys::config::timeouts(), apikeys::config::retries())?;
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
