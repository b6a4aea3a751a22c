//! Keys leaked in public code: GitHub's secret scanning partner program.
//!
//! When GitHub finds text matching our secrets' pattern ([`pattern`]) in public code, it
//! posts a signed report. A report is taken in this order, each step with its own status:
//! 1. the signature ([`signature`], with GitHub's keys from [`keys`], fetched by [`fetch`]):
//!    `401` when missing, malformed, by an unknown key or not matching; `503` when the
//!    key is unknown and GitHub's list cannot be fetched. A key identifier not of GitHub's
//!    shape or a signature that is not base64 DER is a `401` without any fetch. No token is
//!    looked at before this.
//! 2. the body (read by the HTTP edge as every body is, into [`report`]'s matches): `415`,
//!    `413`, `400`, `422`;
//! 3. the verdicts ([`assess`]): one batched lookup ([`LeakLookup`]) for the whole report,
//!    then the keys to revoke and GitHub's `[{token_hash, token_type, label}]` response;
//! 4. the revocations ([`revoke`]): each live key disabled, with its `key.leaked` audit
//!    event, in one transaction per key.
//!
//! The HTTP edge (`http::leaks`) runs steps 1 and 2, [`handle_report`] steps 3 and 4; the handler
//! answers `200` with the feedback. Should a revocation fail, it answers `503`: GitHub sends
//! the report again, and a replay is idempotent.

pub mod assess;
pub mod fetch;
pub mod keys;
pub mod pattern;
pub mod report;
pub mod signature;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};

use crate::audit::Leak;
use crate::store::{KeyWriter, LeakLookup};
use crate::write::{Revocation, WriteContext, WriteError, WritePolicy, revoke_leaked};
pub use assess::{Assessment, Feedback, Label, LeakedKey, Verdict};
use report::ReportedToken;

/// What handling a report did: GitHub's response, in report order, and each live key's
/// revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    pub feedback: Vec<Feedback>,
    pub revocations: Vec<(LeakedKey, Revocation)>,
}

/// How many keys are revoked at once. One revocation is a read and a transaction, about
/// 30 ms on DynamoDB: one after another, a report of 1000 keys (`report::MAX_REPORT_ENTRIES`)
/// would take 30 s, past any deadline; 16 at a time, about 2 s. The bound keeps a report's
/// burst on the organization's event partition (each revocation writes one event there)
/// below that partition's 1000 write units a second.
pub const REVOKE_CONCURRENCY: usize = 16;

/// Decides every token of an authenticated report at `now` and revokes each reported secret
/// of ours, one transaction per secret ([`revoke_leaked`], each event with the request id
/// `request_id`), [`REVOKE_CONCURRENCY`] keys at a time; two secrets of one key are revoked
/// one after the other, so that they do not race for it. One failed revocation does not
/// stop the others: every one is tried, and then the first failure (in report order) is
/// returned, so that GitHub sends the report again; a replay finishes the job and changes
/// nothing more. The revocations are returned in report order.
pub async fn handle_report<S: LeakLookup + KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    request_id: &str,
    report: &[ReportedToken],
    now: DateTime<Utc>,
) -> Result<Handled, WriteError> {
    let assessment = assess::assess(store, report).await?;
    let ctx = WriteContext::github(request_id).at(now);
    let mut outcomes: Vec<(usize, LeakedKey, Result<Revocation, WriteError>)> =
        stream::iter(by_key(assessment.to_revoke))
            .map(|secrets| revoke_each(store, policy, &ctx, secrets))
            .buffer_unordered(REVOKE_CONCURRENCY)
            .flat_map(stream::iter)
            .collect()
            .await;
    outcomes.sort_by_key(|(at, _, _)| *at);
    let mut revocations = Vec::with_capacity(outcomes.len());
    for (_, leaked, outcome) in outcomes {
        revocations.push((leaked, outcome?));
    }
    Ok(Handled {
        feedback: assessment.feedback,
        revocations,
    })
}

/// The secrets to revoke, numbered in report order and grouped by key.
fn by_key(to_revoke: Vec<LeakedKey>) -> Vec<Vec<(usize, LeakedKey)>> {
    let mut groups: Vec<Vec<(usize, LeakedKey)>> = Vec::new();
    let mut group_of = std::collections::HashMap::new();
    for (at, leaked) in to_revoke.into_iter().enumerate() {
        let group = *group_of.entry(leaked.key_id).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push((at, leaked));
    }
    groups
}

/// Revokes the secrets of one key, one after the other, each with its outcome.
async fn revoke_each<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    secrets: Vec<(usize, LeakedKey)>,
) -> Vec<(usize, LeakedKey, Result<Revocation, WriteError>)> {
    let mut outcomes = Vec::with_capacity(secrets.len());
    for (at, leaked) in secrets {
        let found = Leak {
            url: leaked.url.clone(),
            source: leaked.source.clone(),
        };
        let (org, id, hash) = (&leaked.org, leaked.key_id, &leaked.hash);
        let outcome = revoke_leaked(store, policy, ctx, org, id, hash, &found).await;
        outcomes.push((at, leaked, outcome));
    }
    outcomes
}
