//! The list-events Lambda function: pages of an organization's audit trail, or of one key's.
//! Configuration and the DynamoDB client are built once per cold start; each request goes to
//! `apikeys::http::list_events`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    apikeys::telemetry::init();
    let app = apikeys::App::from_env().await?;
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(apikeys::http::list_events(app, req).await)
    }))
    .await
}
