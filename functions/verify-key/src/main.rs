//! The verify-key Lambda function: an organization's other services check their clients'
//! keys. Configuration, the DynamoDB client, the caller cache and the verification cache
//! (same TTL; see `apikeys::verify::cache`) are built once per cold start; each request goes
//! to `apikeys::http::verify_key`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    apikeys::telemetry::init();
    let ttl = apikeys::config::caller_cache_ttl()?;
    let app = apikeys::App::from_env().await?.with_caller_cache(ttl);
    let cache = apikeys::verify::VerifyCache::matching(&app.callers);
    let (app, cache) = (&app, &cache);
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(apikeys::http::verify_key(app, cache, req).await)
    }))
    .await
}
