//! The list-keys Lambda function: configuration and the DynamoDB client are built once per
//! cold start (the connection warmed, authenticated callers cached for a few seconds; see
//! `apikeys::cache`); each request goes to `apikeys::http::list_keys`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    apikeys::telemetry::init();
    let ttl = apikeys::config::caller_cache_ttl()?;
    let app = apikeys::App::from_env().await?.with_caller_cache(ttl);
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(apikeys::http::list_keys(app, req).await)
    }))
    .await
}
