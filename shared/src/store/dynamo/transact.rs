//! Running one write's transaction as real DynamoDB answers it.
//!
//! - One `ClientRequestToken` per write, kept across its retries: DynamoDB applies a token
//!   at most once in its 10-minute window, so a retry never applies the write twice.
//! - A cancellation other than a failed condition (`TransactionConflict`, `ThrottlingError`,
//!   `ProvisionedThroughputExceeded`, `RequestLimitExceeded`…) is retried with a random
//!   backoff while the request's deadline (`crate::deadline`) leaves room, then reported
//!   unavailable (503); so is a throttled call.
//! - An unclear outcome (`TransactionInProgressException`, a timeout, a broken connection,
//!   a 5xx) may have committed: the write's witness, its audit event item, which commits in
//!   the same transaction, is read consistently. Present, the write is done; absent, it is
//!   tried again with the same token. A failed condition after an unclear outcome is checked
//!   the same way, since it may be the write's own earlier attempt that changed the item.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use super::{DynamoStore, PK, classify};
use crate::store::StoreError;

/// How many times a cancelled transaction is tried again, at most; the deadline usually
/// stops it first.
const RETRIES: u32 = 12;
const BACKOFF_MS: u64 = 10;
const BACKOFF_MAX_MS: u64 = 500;
/// What one more attempt needs after its backoff, to be worth starting before the deadline.
const ATTEMPT_ROOM: Duration = Duration::from_millis(300);

/// The primary key of an item the transaction writes and nothing else does: its audit event.
pub(super) type Witness = HashMap<String, AttributeValue>;

/// Why a transaction did not apply.
pub(super) enum TransactFailure {
    /// The conditions of these items (by their index in the transaction) failed.
    Condition(Vec<usize>),
    Store(StoreError),
}

/// What one attempt came to, short of success.
enum Outcome {
    /// These items' conditions failed: the transaction cannot apply as it is.
    Condition(Vec<usize>),
    /// Cancelled or throttled, and nothing applied: worth a retry.
    Retry,
    /// It may or may not have applied.
    Unclear,
    /// Cancelled for a reason a retry would meet again.
    Refused,
    /// Any other error (a bad request, a missing table): nothing applied.
    Failed,
}

fn sort(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> Outcome {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            return Outcome::Unclear;
        }
        SdkError::ServiceError(e) if e.raw().status().is_server_error() => return Outcome::Unclear,
        _ => {}
    }
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            let failed: Vec<usize> = e
                .cancellation_reasons()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                .map(|(i, _)| i)
                .collect();
            let passing = e
                .cancellation_reasons()
                .iter()
                .filter_map(|r| r.code())
                .all(|c| c == "None" || PASSING.contains(&c));
            match (failed.is_empty(), passing) {
                (false, _) => Outcome::Condition(failed),
                (true, true) => Outcome::Retry,
                // ValidationError, ItemCollectionSizeLimitExceeded…: nothing applied, and a
                // retry would meet the same; still the store's fault, not the client's.
                (true, false) => Outcome::Refused,
            }
        }
        Some(TransactWriteItemsError::TransactionInProgressException(_)) => Outcome::Unclear,
        Some(e) if e.code().is_some_and(|c| THROTTLES.contains(&c)) => Outcome::Retry,
        _ => Outcome::Failed,
    }
}

/// Throttles, as a call's error code.
const THROTTLES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
];

/// Cancellation reasons that pass: a retry may apply.
const PASSING: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// The reasons DynamoDB gave for cancelling, for the log and the 503's cause.
fn reasons(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> String {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect::<Vec<_>>()
            .join(", "),
        Some(e) => e.code().unwrap_or("unknown").to_owned(),
        None => err.to_string(),
    }
}

/// A random backoff before retry `attempt` (from 1), doubling each time: full jitter, so
/// that the racers spread out instead of meeting again.
pub(super) fn backoff(attempt: u32) -> Duration {
    let ceiling = (BACKOFF_MS << attempt.min(10)).min(BACKOFF_MAX_MS);
    Duration::from_millis(u64::from(getrandom::u32().unwrap_or(0)) % ceiling + 1)
}

/// A write that could not be done, or known done, before the deadline.
#[derive(Debug, thiserror::Error)]
#[error("the transaction did not apply ({reasons})")]
struct NotApplied {
    reasons: String,
    #[source]
    cause: SdkError<TransactWriteItemsError, HttpResponse>,
}

/// The 503 of a write that did not apply in time; logged with DynamoDB's reasons.
fn not_applied(
    cause: SdkError<TransactWriteItemsError, HttpResponse>,
    attempts: u32,
) -> TransactFailure {
    let reasons = reasons(&cause);
    tracing::warn!(attempts, %reasons, "transaction not applied");
    TransactFailure::Store(StoreError::Unavailable(Box::new(NotApplied {
        reasons,
        cause,
    })))
}

impl DynamoStore {
    /// Runs a write's transaction until it applies, its conditions fail, or the deadline
    /// leaves no room for another attempt (see the module's note).
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        witness: &Witness,
    ) -> Result<(), TransactFailure> {
        let token = uuid::Uuid::now_v7().to_string();
        let mut unclear = false;
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .send()
                .await;
            let Err(err) = result else { return Ok(()) };
            match sort(&err) {
                Outcome::Condition(failed) => {
                    if unclear && self.committed(witness).await? {
                        return Ok(());
                    }
                    return Err(TransactFailure::Condition(failed));
                }
                Outcome::Unclear => {
                    unclear = true;
                    if self.committed(witness).await? {
                        return Ok(());
                    }
                }
                Outcome::Retry => {}
                Outcome::Refused => return Err(not_applied(err, attempt + 1)),
                Outcome::Failed => return Err(TransactFailure::Store(classify(err))),
            }
            attempt += 1;
            let wait = backoff(attempt);
            if attempt > RETRIES || !crate::deadline::allows(wait, ATTEMPT_ROOM) {
                return Err(not_applied(err, attempt));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Whether the write whose witness this is has committed: a consistent read of it.
    async fn committed(&self, witness: &Witness) -> Result<bool, TransactFailure> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(witness.clone()))
            .consistent_read(true)
            .projection_expression("#pk")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
            .map_err(|e| TransactFailure::Store(classify(e)))?;
        Ok(out.item.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::{
        TransactionCanceledException, TransactionInProgressException,
    };
    use aws_smithy_types::body::SdkBody;

    type Failure = SdkError<TransactWriteItemsError, HttpResponse>;

    fn answered(err: TransactWriteItemsError, status: u16) -> Failure {
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    fn cancelled(codes: &[&str]) -> Failure {
        let reasons = codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect();
        let e = TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons))
            .build();
        answered(
            TransactWriteItemsError::TransactionCanceledException(e),
            400,
        )
    }

    fn outcome(err: &Failure) -> &'static str {
        match sort(err) {
            Outcome::Condition(_) => "condition",
            Outcome::Retry => "retry",
            Outcome::Unclear => "unclear",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    #[test]
    fn a_failed_condition_wins_and_names_its_items() {
        let err = cancelled(&["None", "ConditionalCheckFailed", "TransactionConflict"]);
        assert!(matches!(sort(&err), Outcome::Condition(items) if items == [1]));
    }

    #[test]
    fn conflicts_and_throttles_are_retried_and_other_reasons_refused() {
        for code in PASSING {
            assert_eq!(outcome(&cancelled(&["None", code])), "retry", "{code}");
        }
        for code in ["ValidationError", "ItemCollectionSizeLimitExceeded"] {
            assert_eq!(outcome(&cancelled(&[code, "None"])), "refused", "{code}");
        }
        for code in THROTTLES {
            let e = TransactWriteItemsError::generic(ErrorMetadata::builder().code(*code).build());
            assert_eq!(outcome(&answered(e, 400)), "retry", "{code}");
        }
        let e = TransactWriteItemsError::generic(
            ErrorMetadata::builder().code("ValidationException").build(),
        );
        assert_eq!(outcome(&answered(e, 400)), "failed");
    }

    #[test]
    fn in_progress_timeouts_and_server_errors_are_unclear() {
        let e = TransactWriteItemsError::TransactionInProgressException(
            TransactionInProgressException::builder().build(),
        );
        assert_eq!(outcome(&answered(e, 400)), "unclear");
        let e = TransactWriteItemsError::generic(
            ErrorMetadata::builder().code("InternalServerError").build(),
        );
        assert_eq!(outcome(&answered(e, 500)), "unclear");
        assert_eq!(outcome(&SdkError::timeout_error("slow")), "unclear");
    }

    #[test]
    fn the_backoff_doubles_to_its_ceiling_and_is_never_zero() {
        for attempt in 1..20 {
            let wait = backoff(attempt);
            let ceiling = (BACKOFF_MS << attempt.min(10)).min(BACKOFF_MAX_MS);
            assert!(wait >= Duration::from_millis(1), "{attempt}");
            assert!(
                wait <= Duration::from_millis(ceiling),
                "{attempt}: {wait:?}"
            );
        }
    }
}
