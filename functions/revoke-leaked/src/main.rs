//! The revoke-leaked Lambda function: GitHub's secret scanning reports of our secrets found
//! in public code. Configuration, the write policy, GitHub's public keys (supplied in
//! `GITHUB_SECRET_SCANNING_KEYS`, else fetched and cached; see `apikeys::leak::fetch`) and
//! the DynamoDB client are built once per cold start; each request goes to
//! `apikeys::http::revoke_leaked`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    apikeys::telemetry::init();
    let policy = apikeys::write::WritePolicy::from_env()?;
    let keys = apikeys::leak::fetch::key_source_from_env()?;
    let app = apikeys::App::from_env().await?;
    let (app, keys, policy) = (&app, &keys, &policy);
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(apikeys::http::revoke_leaked(app, keys, policy, req).await)
    }))
    .await
}
