//! A verify's spend: one UpdateItem of the key item that takes its cost from the credits
//! and every rate limit at once, on condition that each is as the spend was planned from
//! (`crate::quota::plan`). It returns the key item as it is after (ALL_NEW), so a metered
//! verify needs no key read; a failed condition returns the item as it is (ALL_OLD, or one
//! consistent read where the endpoint does not), to plan the next attempt from.
//!
//! The SDK retries a throttled or unanswered write. Each spend sets `last_spend` to its own
//! id, on condition that it is not there already, so a retry of a write that was applied
//! fails its condition, finds its id, and counts as applied: a retry never spends twice,
//! unless another verify of the same key wrote between the two attempts.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, Update,
};

use super::items::KeyItem;
use super::{DynamoStore, PK, classify, corrupt, key_sk, org_pk, primary_key, s};
use crate::key::{KeyId, OrgId};
use crate::owner::OwnerId;
use crate::quota::plan::{CreditOp, LimitOp, Slot, Spend};
use crate::store::StoreError;
use crate::store::quota::{Joint, OwnerSpent, Part, QuotaStore, Spending};

type Item = HashMap<String, AttributeValue>;

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An update expression and its condition, being built: a key's spend, or an owner's
/// (`super::owner`), whose items hold their counters in the same attributes.
#[derive(Default)]
pub(super) struct Expr {
    set: Vec<String>,
    conditions: Vec<String>,
    names: HashMap<String, String>,
    values: Item,
}

impl Expr {
    /// The write of `spend` on an item at `version`, by the verify `op`.
    pub(super) fn of(version: u64, op: &str, spend: &Spend) -> Self {
        let mut e = Expr::new(version, op);
        if let Some(c) = &spend.credits {
            e.credits(c);
        }
        for (i, l) in &spend.limits {
            e.limit(*i, l);
        }
        e
    }

    /// This write as one item of a transaction; a failed condition returns the item.
    pub(super) fn update(self, table: &str, key: Item) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(format!("SET {}", self.set.join(", ")))
            .condition_expression(self.conditions.join(" AND "))
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| StoreError::Internal(Box::new(e)))
    }

    fn new(version: u64, op: &str) -> Self {
        let mut e = Expr::default();
        e.names.insert("#pk".into(), PK.into());
        e.names.insert("#version".into(), "version".into());
        e.conditions.push("attribute_exists(#pk)".into());
        e.conditions.push(if version == 0 {
            "(attribute_not_exists(#version) OR #version = :version)".into()
        } else {
            "#version = :version".into()
        });
        e.conditions
            .push("(attribute_not_exists(last_spend) OR last_spend <> :op)".into());
        e.set.push("last_spend = :op".into());
        e.values.insert(":version".into(), n(version));
        e.values.insert(":op".into(), s(op));
        e
    }

    fn credits(&mut self, op: &CreditOp) {
        match *op {
            CreditOp::Take { cost, need, period } => {
                self.conditions.push("credits_remaining >= :need".into());
                self.values.insert(":need".into(), n(need));
                if let Some(p) = period {
                    self.conditions.push("credits_period_ms = :period".into());
                    self.values.insert(":period".into(), n(p));
                }
                self.set
                    .push("credits_remaining = credits_remaining - :cost".into());
                self.values.insert(":cost".into(), n(cost));
            }
            CreditOp::Refill {
                from,
                to,
                amount,
                cost,
            } => {
                self.conditions
                    .push("attribute_exists(credits_remaining)".into());
                match from {
                    None => self
                        .conditions
                        .push("attribute_not_exists(credits_period_ms)".into()),
                    Some(p) => {
                        self.conditions.push("credits_period_ms = :from".into());
                        self.values.insert(":from".into(), n(p));
                    }
                }
                self.set.push("credits_remaining = :refilled".into());
                self.set.push("credits_period_ms = :to".into());
                self.values
                    .insert(":refilled".into(), n(amount.saturating_sub(cost)));
                self.values.insert(":to".into(), n(to));
            }
        }
    }

    fn limit(&mut self, i: usize, op: &LimitOp) {
        let name = format!("#l{i}");
        self.names.insert(name.clone(), op.name.clone());
        let path = format!("rl.{name}");
        match op.slot {
            Slot::Current { max } => {
                self.conditions
                    .push(format!("{path}.w = :w{i} AND {path}.n <= :m{i}"));
                self.values.insert(format!(":w{i}"), n(op.window));
                self.values.insert(format!(":m{i}"), n(max));
                self.set.push(format!("{path}.n = {path}.n + :t{i}"));
                self.values.insert(format!(":t{i}"), n(op.take));
            }
            Slot::Fresh { from } => {
                match from {
                    None => self
                        .conditions
                        .push(format!("attribute_not_exists({path})")),
                    Some(w) => {
                        self.conditions.push(format!("{path}.w = :o{i}"));
                        self.values.insert(format!(":o{i}"), n(w));
                    }
                }
                let fresh =
                    HashMap::from([("w".to_owned(), n(op.window)), ("n".into(), n(op.take))]);
                self.set.push(format!("{path} = :f{i}"));
                self.values
                    .insert(format!(":f{i}"), AttributeValue::M(fresh));
            }
        }
    }
}

impl DynamoStore {
    /// The key item, read consistently: what a failed spend's condition found, where the
    /// endpoint does not return it.
    pub(super) async fn key_item(
        &self,
        org: &OrgId,
        id: KeyId,
    ) -> Result<Option<Item>, StoreError> {
        self.consistent_item(org_pk(org), key_sk(id)).await
    }
}

pub(super) fn spent(item: Item) -> Result<crate::store::quota::Spent, StoreError> {
    let item: KeyItem = serde_dynamo::from_item(item).map_err(corrupt)?;
    item.into_spent()
}

impl QuotaStore for DynamoStore {
    #[tracing::instrument(skip_all, fields(org = %org, key = %id), err(Display))]
    async fn spend(
        &self,
        org: &OrgId,
        id: KeyId,
        version: u64,
        op: &str,
        spend: &Spend,
    ) -> Result<Spending, StoreError> {
        let e = Expr::of(version, op, spend);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(org_pk(org), key_sk(id))))
            .update_expression(format!("SET {}", e.set.join(", ")))
            .condition_expression(e.conditions.join(" AND "))
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let found = match out {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                return Ok(Spending::Applied(spent(item)?));
            }
            Err(SdkError::ServiceError(err))
                if err.err().is_conditional_check_failed_exception() =>
            {
                match err.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(f) => f.item,
                    _ => None,
                }
            }
            Err(other) => return Err(classify(other)),
        };
        let found = match found {
            Some(item) => Some(item),
            None => self.key_item(org, id).await?,
        };
        let Some(item) = found else {
            return Ok(Spending::Gone);
        };
        let now = spent(item)?;
        if now.last_spend.as_deref() == Some(op) {
            return Ok(Spending::Applied(now));
        }
        Ok(Spending::Refused(now))
    }

    #[tracing::instrument(skip_all, fields(org = %org, key = %id), err(Display))]
    async fn spent(
        &self,
        org: &OrgId,
        id: KeyId,
    ) -> Result<Option<crate::store::quota::Spent>, StoreError> {
        self.key_item(org, id).await?.map(spent).transpose()
    }

    #[tracing::instrument(skip_all, fields(org = %org), err(Display))]
    async fn owner_spent(
        &self,
        org: &OrgId,
        owner: &OwnerId,
    ) -> Result<Option<OwnerSpent>, StoreError> {
        self.owner_item(org, owner).await
    }

    #[tracing::instrument(skip_all, fields(org = %org), err(Display))]
    async fn spend_jointly(
        &self,
        org: &OrgId,
        key: Option<Part<'_, KeyId>>,
        owner: Part<'_, &OwnerId>,
        op: &str,
    ) -> Result<Joint, StoreError> {
        self.transact_spend(org, key, owner, op).await
    }
}
