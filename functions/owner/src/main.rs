//! The owner Lambda function: an owner's own credits and rate limits, read (GET, HEAD) and
//! set (PUT) at `/v1/owner/{owner_id}`. Configuration, the write policy and the DynamoDB
//! client are built once per cold start; each request goes to `apikeys::http::owner`. Callers
//! are not cached here: a write authenticates against the table itself.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    apikeys::telemetry::init();
    let policy = apikeys::write::WritePolicy::from_env()?;
    let app = apikeys::App::from_env().await?;
    let (app, policy) = (&app, &policy);
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(apikeys::http::owner(app, policy, req).await)
    }))
    .await
}
