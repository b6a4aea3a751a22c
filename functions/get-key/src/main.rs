//! The get-key Lambda function: configuration and the DynamoDB client are built once per
//! cold start (the connection warmed, authenticated callers cached for a few seconds; see
//! `apikeys::cache`); each request goes to `apikeys::http::get_key`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    apikeys::telemetry::init();
    let ttl = apikeys::config::caller_cache_ttl()?;
    let app = apikeys::App::from_env().await?.with_caller_cache(ttl);
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(apikeys::http::get_key(app, req).await)
    }))
    .await
}
