//! An owner's item (pk `ORG#<org>`, sk `OWNER#<owner id>`): its credits and rate limits,
//! with their counters in the key item's attributes (`credits_remaining`, `rl`, …), so one
//! spend expression (`super::spend`) writes either, and one set of assignments
//! (`super::write::quota_assignments`) changes either's limits.
//!
//! A verify of a key whose owner has credits or limits spends from both in one
//! TransactWriteItems, each item on the conditions of a key's own spend. A failed condition
//! cancels both; the reasons return each failed item as it was (ALL_OLD), or, where an
//! endpoint does not, it is read consistently. Each attempt has its own
//! `ClientRequestToken`, so the SDK's retry of an attempt never applies it twice.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::spend::{Expr, spent};
use super::write::{Assignments, Plan, Role, quota_assignments};
use super::{DynamoStore, classify, corrupt, key_sk, org_pk, primary_key};
use crate::audit::Event;
use crate::key::{KeyId, OrgId};
use crate::owner::{Owner, OwnerId};
use crate::quota::plan::{Counters, Window};
use crate::quota::{Credits, Quota, RateLimit, Refill};
use crate::store::quota::{Joint, OwnerSpent, Part, Spent};
use crate::store::{OwnerStore, StoreError, WriteFailure};

type Item = HashMap<String, AttributeValue>;

pub(super) fn owner_sk(owner: &OwnerId) -> String {
    format!("OWNER#{owner}")
}

/// The owner item as stored.
#[derive(Serialize, Deserialize)]
pub(super) struct OwnerItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) org: OrgId,
    pub(super) owner_id: OwnerId,
    #[serde(default)]
    pub(super) version: u64,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub(super) updated_ms: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) credits_remaining: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) credits_refill: Option<Refill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) credits_period_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) ratelimits: Option<Vec<RateLimit>>,
    /// Present whenever limits are, so that a window can be set in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rl: Option<BTreeMap<String, Window>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_spend: Option<String>,
}

impl OwnerItem {
    /// The item of an owner whose rules are new: counters from nothing, credits in the
    /// period `period_ms` when they refill.
    pub(super) fn new(owner: &Owner, period_ms: Option<i64>) -> Self {
        let credits = owner.quota.credits.as_ref();
        OwnerItem {
            pk: org_pk(&owner.org),
            sk: owner_sk(&owner.id),
            org: owner.org.clone(),
            owner_id: owner.id.clone(),
            version: owner.version,
            updated_ms: owner.updated,
            credits_remaining: credits.map(|c| c.remaining),
            credits_refill: credits.and_then(|c| c.refill),
            credits_period_ms: credits.and_then(|c| c.refill).and(period_ms),
            ratelimits: Some(owner.quota.ratelimits.clone()).filter(|l| !l.is_empty()),
            rl: (!owner.quota.ratelimits.is_empty()).then(BTreeMap::new),
            last_spend: None,
        }
    }

    pub(super) fn into_spent(self) -> OwnerSpent {
        let quota = Quota {
            credits: self.credits_remaining.map(|remaining| Credits {
                remaining,
                refill: self.credits_refill,
                low_at: None,
            }),
            ratelimits: self.ratelimits.unwrap_or_default(),
        };
        OwnerSpent {
            owner: Owner {
                org: self.org,
                id: self.owner_id,
                quota,
                version: self.version,
                updated: self.updated_ms,
            },
            counters: Counters {
                period_ms: self.credits_period_ms,
                windows: self.rl.unwrap_or_default(),
            },
        }
    }
}

fn owner_spent(item: Item) -> Result<OwnerSpent, StoreError> {
    let item: OwnerItem = serde_dynamo::from_item(item).map_err(corrupt)?;
    Ok(item.into_spent())
}

/// What a cancelled joint spend found.
enum Cancelled {
    /// These items' conditions failed (by index), with the item where it was returned.
    Condition(Vec<(usize, Option<Item>)>),
    /// Another transaction on one of the items was in flight, or a throttle: nothing
    /// applied, and another attempt may.
    Conflict,
}

/// Cancellation reasons after which another attempt may apply (as `super::transact`'s).
const PASSING: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

fn cancelled(
    err: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Cancelled> {
    let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error()
    else {
        return None;
    };
    let reasons: &[CancellationReason] = e.cancellation_reasons();
    let failed: Vec<(usize, Option<Item>)> = reasons
        .iter()
        .enumerate()
        .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
        .map(|(i, r)| (i, r.item().cloned()))
        .collect();
    if !failed.is_empty() {
        return Some(Cancelled::Condition(failed));
    }
    reasons
        .iter()
        .any(|r| r.code().is_some_and(|c| PASSING.contains(&c)))
        .then_some(Cancelled::Conflict)
}

impl DynamoStore {
    /// The owner item, read consistently.
    pub(super) async fn owner_item(
        &self,
        org: &OrgId,
        owner: &OwnerId,
    ) -> Result<Option<OwnerSpent>, StoreError> {
        let item = self.consistent_item(org_pk(org), owner_sk(owner)).await?;
        item.map(owner_spent).transpose()
    }

    /// The joint spend's transaction (see the module header).
    pub(super) async fn transact_spend(
        &self,
        org: &OrgId,
        key: Option<Part<'_, KeyId>>,
        owner: Part<'_, &OwnerId>,
        op: &str,
    ) -> Result<Joint, StoreError> {
        let mut items = Vec::with_capacity(2);
        if let Some(k) = &key {
            let e = Expr::of(k.version, op, k.spend);
            let update = e.update(&self.table, primary_key(org_pk(org), key_sk(k.id)))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let e = Expr::of(owner.version, op, owner.spend);
        let update = e.update(&self.table, primary_key(org_pk(org), owner_sk(owner.id)))?;
        items.push(TransactWriteItem::builder().update(update).build());
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(uuid::Uuid::now_v7().to_string())
            .send()
            .await;
        let err = match out {
            Ok(_) => return Ok(Joint::Applied),
            Err(err) => err,
        };
        match cancelled(&err) {
            Some(Cancelled::Condition(failed)) => {
                let owner_at = usize::from(key.is_some());
                self.found(org, key.map(|k| k.id), owner.id, owner_at, failed)
                    .await
            }
            Some(Cancelled::Conflict) => {
                tokio::time::sleep(super::transact::backoff(1)).await;
                Ok(Joint::Refused {
                    key: None,
                    owner: None,
                })
            }
            None => Err(classify(err)),
        }
    }

    /// The items whose conditions failed, as they are: as returned, or read.
    async fn found(
        &self,
        org: &OrgId,
        key: Option<KeyId>,
        owner: &OwnerId,
        owner_at: usize,
        failed: Vec<(usize, Option<Item>)>,
    ) -> Result<Joint, StoreError> {
        let (mut key_now, mut owner_now): (Option<Spent>, Option<OwnerSpent>) = (None, None);
        for (i, item) in failed {
            if i == owner_at {
                let found = match item {
                    Some(item) => Some(owner_spent(item)?),
                    None => self.owner_item(org, owner).await?,
                };
                let Some(found) = found else {
                    return Ok(Joint::OwnerGone);
                };
                owner_now = Some(found);
            } else if let Some(id) = key {
                let found = match item {
                    Some(item) => Some(item),
                    None => self.key_item(org, id).await?,
                };
                let Some(found) = found else {
                    return Ok(Joint::KeyGone);
                };
                key_now = Some(spent(found)?);
            }
        }
        Ok(Joint::Refused {
            key: key_now.map(Box::new),
            owner: owner_now.map(Box::new),
        })
    }
}

impl OwnerStore for DynamoStore {
    #[tracing::instrument(skip(self), err(Display))]
    async fn owner(&self, org: &OrgId, id: &OwnerId) -> Result<Option<Owner>, StoreError> {
        Ok(self.owner_item(org, id).await?.map(|o| o.owner))
    }

    #[tracing::instrument(skip_all, fields(org = %after.org, owner = %after.id), err(Display))]
    async fn set_owner(
        &self,
        before: Option<&Owner>,
        after: &Owner,
        event: &Event,
    ) -> Result<(), WriteFailure> {
        let mut a = Assignments::default();
        let text = |v: &str| AttributeValue::S(v.to_owned());
        a.set("org = :org", ":org", text(after.org.as_str()));
        a.set("owner_id = :owner_id", ":owner_id", text(after.id.as_str()));
        a.set("#version = :version", ":version", number(after.version));
        let updated = after.updated.timestamp_millis();
        a.set(
            "updated_ms = :updated",
            ":updated",
            AttributeValue::N(updated.to_string()),
        );
        let mut condition = match before {
            Some(b) => {
                a.values.push((":before_version", number(b.version)));
                "#version = :before_version".to_owned()
            }
            None => "attribute_not_exists(#pk)".to_owned(),
        };
        let none = Quota::default();
        let was = before.map_or(&none, |b| &b.quota);
        quota_assignments(&mut a, &mut condition, (was, &after.quota), after.updated)?;
        let mut plan = Plan::default();
        let at = primary_key(org_pk(&after.org), owner_sk(&after.id));
        plan.push(Role::Key, self.update_item(at, a, &condition)?);
        self.finish(&mut plan, event, None)?;
        self.run(plan).await
    }
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}
