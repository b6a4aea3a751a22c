//! The expiry-notices Lambda function, on an EventBridge schedule: each run writes the
//! `key.expiring` and `key.expired` notices that are due (`apikeys::expiry`). The policy
//! (`EXPIRY_NOTICE_LEAD_DAYS`, `EVENT_RETENTION_DAYS`) and the DynamoDB client are built
//! once per cold start; the scheduled event's content is not read, only its context (the
//! invocation's id and deadline). It answers with what the run did.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    apikeys::telemetry::init();
    let policy = apikeys::expiry::NoticePolicy::from_env()?;
    let store = apikeys::config::store_from_env().await?;
    let (store, policy) = (&store, &policy);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let summary = apikeys::expiry::scheduled(store, policy, &event.context).await?;
        Ok::<_, Error>(summary)
    }))
    .await
}
