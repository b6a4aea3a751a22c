//! The publish-events Lambda function: the table's stream of inserted audit events, put on
//! the EventBridge bus `EVENT_BUS_NAME`. The bus client is built once per cold start; each
//! batch of stream records goes to `apikeys::publish::publish`, and its first unpublished
//! record is reported back (`ReportBatchItemFailures`) for Lambda to retry from.

use apikeys::publish::EventBridgeBus;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    apikeys::telemetry::init();
    let bus = EventBridgeBus::from_env()?;
    let bus = &bus;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let outcome = apikeys::publish::publish(bus, &event.payload.records).await;
        Ok::<DynamoDbEventResponse, Error>(outcome.response())
    }))
    .await
}
