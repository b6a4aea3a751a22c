//! Writes: each one TransactWriteItems over the key item, its credentials, the
//! organization's key count, the audit event and the idempotency record. The key item comes
//! first, so a failed condition at index 0 means the key is not as read.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::items::{CredentialItem, EventItem, IdempotencyItem, KeyItem, bits_of, item};
use super::transact::{TransactFailure, Witness};
use super::{
    CREDENTIAL_SK, DynamoStore, IDEMPOTENCY_SK, PK, built, classify, corrupt, credential_pk,
    event_pk, event_sk, idempotency_pk, key_sk, millis, org_pk, primary_key,
};
use crate::audit::{Adjustment, Event};
use crate::key::{ApiKey, KeyId, OrgId};
use crate::quota::Credits;
use crate::secret::SecretHash;
use crate::store::{IdempotencyRecord, KeyWriter, Notified, StoreError, StoredKey, WriteFailure};

/// What each item of a transaction is, to tell which condition failed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Key,
    Credential,
    Other,
    Idempotency,
}

/// A transaction being built: its items and their roles, and the key of its audit event,
/// which tells whether it committed.
#[derive(Default)]
pub(super) struct Plan {
    items: Vec<TransactWriteItem>,
    roles: Vec<Role>,
    witness: Witness,
}

impl Plan {
    pub(super) fn push(&mut self, role: Role, item: TransactWriteItem) {
        self.items.push(item);
        self.roles.push(role);
    }

    /// The failure a set of failed conditions means: a taken idempotency record first (the
    /// request is then answered from it), then a changed key, then a credential.
    fn failure(&self, failed: &[usize]) -> WriteFailure {
        let roles: Vec<Role> = failed
            .iter()
            .filter_map(|i| self.roles.get(*i))
            .copied()
            .collect();
        for role in [Role::Idempotency, Role::Key, Role::Credential] {
            if roles.contains(&role) {
                return match role {
                    Role::Idempotency => WriteFailure::Idempotency,
                    Role::Key => WriteFailure::Key,
                    _ => WriteFailure::Credential,
                };
            }
        }
        WriteFailure::Store(StoreError::Internal(
            "a transaction's condition failed on an unconditional item".into(),
        ))
    }
}

/// The attribute names the expressions use, of these: DynamoDB refuses unused ones.
fn names(
    expressions: &[&str],
    candidates: &[(&str, &str)],
) -> Option<std::collections::HashMap<String, String>> {
    Some(
        candidates
            .iter()
            .filter(|(n, _)| expressions.iter().any(|e| e.contains(n)))
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// Names of attributes that are reserved words, or shared by several expressions.
const NAMES: &[(&str, &str)] = &[
    ("#pk", PK),
    ("#version", "version"),
    ("#name", "name"),
    ("#state", "state"),
    ("#permissions", "permissions"),
    ("#meta", "meta"),
];

/// An attribute an update sets when it has a value and removes when not: its `SET` clause,
/// its name in `REMOVE`, and its value's placeholder.
type Optional = (&'static str, &'static str, &'static str);

const PERMISSIONS: Optional = (
    "#permissions = :permissions",
    "#permissions",
    ":permissions",
);
const EXPIRES: Optional = ("expires_ms = :expires", "expires_ms", ":expires");
const PREVIOUS_HASH: Optional = (
    "previous_hash = :previous_hash",
    "previous_hash",
    ":previous_hash",
);
const PREVIOUS_UNTIL: Optional = (
    "previous_until_ms = :previous_until",
    "previous_until_ms",
    ":previous_until",
);
const DISABLED_REASON: Optional = (
    "disabled_reason = :disabled_reason",
    "disabled_reason",
    ":disabled_reason",
);
const LEAKED: Optional = (
    "leaked_hashes = :leaked_hashes",
    "leaked_hashes",
    ":leaked_hashes",
);
const PURGE_AT: Optional = ("purge_at = :purge", "purge_at", ":purge");
const CREDITS_REFILL: Optional = (
    "credits_refill = :credits_refill",
    "credits_refill",
    ":credits_refill",
);
const CREDITS_PERIOD: Optional = (
    "credits_period_ms = :credits_period",
    "credits_period_ms",
    ":credits_period",
);
const CREDITS_LOW_AT: Optional = (
    "credits_low_at = :credits_low_at",
    "credits_low_at",
    ":credits_low_at",
);
const QUOTA: Optional = ("quota = :quota", "quota", ":quota");
const EXPIRY: Optional = ("expiry_pk = :expiry_pk", "expiry_pk", ":expiry_pk");

/// The condition that the key's expiry notices are still those the write read: the write
/// lists the key under the notice those leave (`expiry_pk`), so a notice written in between
/// makes it read again (its version is the same: see `write::retry`).
fn notices_as_read(a: &mut Assignments, condition: &mut String, notified: &Notified) {
    let marks = [
        ("expiring_notice_ms", ":expiring_noticed", notified.expiring),
        ("expired_notice_ms", ":expired_noticed", notified.expired),
    ];
    for (name, placeholder, mark) in marks {
        match mark {
            Some(at) => {
                condition.push_str(&format!(" AND {name} = {placeholder}"));
                a.values.push((placeholder, millis(at)));
            }
            None => condition.push_str(&format!(" AND attribute_not_exists({name})")),
        }
    }
}
const OWNER_ID: Optional = ("owner_id = :owner_id", "owner_id", ":owner_id");
const OWNER_PK: Optional = ("owner_pk = :owner_pk", "owner_pk", ":owner_pk");
const META: Optional = ("#meta = :meta", "#meta", ":meta");
const ALLOWED_CIDRS: Optional = (
    "allowed_cidrs = :allowed_cidrs",
    "allowed_cidrs",
    ":allowed_cidrs",
);

/// The key's metadata and allow-list, set or removed: the same on its item and credentials.
fn field_assignments(
    a: &mut Assignments,
    meta: Option<&String>,
    allowed_cidrs: Option<&Vec<String>>,
) {
    a.set_or_remove(META, meta.cloned().map(AttributeValue::S));
    let list = allowed_cidrs
        .map(|l| AttributeValue::L(l.iter().cloned().map(AttributeValue::S).collect()));
    a.set_or_remove(ALLOWED_CIDRS, list);
}

/// The key's owner and its `by-owner` partition, set or removed only when the owner
/// `changed`: the index is written only then.
fn owner_assignments(a: &mut Assignments, changed: bool, next: &KeyItem) {
    if changed {
        let owner = next.owner_id.clone().map(|o| AttributeValue::S(o.into()));
        a.set_or_remove(OWNER_ID, owner);
        a.set_or_remove(OWNER_PK, next.owner_pk.clone().map(AttributeValue::S));
    }
}

/// An update expression being built: what it sets, what it removes, and the values.
#[derive(Default)]
pub(super) struct Assignments {
    set: Vec<&'static str>,
    remove: Vec<&'static str>,
    pub(super) values: Vec<(&'static str, AttributeValue)>,
}

impl Assignments {
    pub(super) fn set(
        &mut self,
        clause: &'static str,
        placeholder: &'static str,
        value: AttributeValue,
    ) {
        self.set.push(clause);
        self.values.push((placeholder, value));
    }

    fn set_or_remove(
        &mut self,
        (clause, name, placeholder): Optional,
        value: Option<AttributeValue>,
    ) {
        match value {
            Some(v) => self.set(clause, placeholder, v),
            None => self.remove.push(name),
        }
    }

    /// `SET …` and, if anything goes, ` REMOVE …`.
    fn expression(&self) -> String {
        let mut expression = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        expression
    }

    fn values(self) -> std::collections::HashMap<String, AttributeValue> {
        self.values
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }
}

/// What a write changes of the key's credits and rate limits. The counters a verify spends
/// from are left alone unless the write changes them: credits set or changed are written on
/// condition that `credits_remaining` is still what the write read (a verify may have spent
/// since; the write then reads again), so the event's `from` is exact. Credits set count as
/// the current refill period's, so its refill is not due until the next period.
pub(super) fn quota_assignments(
    a: &mut Assignments,
    condition: &mut String,
    (b, q): (&crate::quota::Quota, &crate::quota::Quota),
    updated: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    // The threshold alone changing leaves the counters alone.
    let counts = |c: &Option<Credits>| c.as_ref().map(|c| (c.remaining, c.refill));
    let low_at = |c: &Option<Credits>| c.as_ref().and_then(|c| c.low_at);
    if low_at(&b.credits) != low_at(&q.credits) {
        let value = low_at(&q.credits).map(|l| AttributeValue::N(l.to_string()));
        a.set_or_remove(CREDITS_LOW_AT, value);
    }
    if counts(&b.credits) != counts(&q.credits) {
        if let Some(was) = &b.credits {
            condition.push_str(" AND credits_remaining = :credits_before");
            a.values.push((
                ":credits_before",
                AttributeValue::N(was.remaining.to_string()),
            ));
        }
        let remaining = q
            .credits
            .as_ref()
            .map(|c| AttributeValue::N(c.remaining.to_string()));
        a.set_or_remove(CREDITS_REMAINING, remaining);
        // Credits set now count as this period's: its refill is not due until the next.
        let refill = q.credits.as_ref().and_then(|c| c.refill);
        let value = refill.map(serde_dynamo::to_attribute_value).transpose();
        a.set_or_remove(CREDITS_REFILL, value.map_err(corrupt)?);
        let period = refill.map(|r| r.period_start(updated));
        a.set_or_remove(
            CREDITS_PERIOD,
            period.map(|p| AttributeValue::N(p.to_string())),
        );
    }
    if b.ratelimits != q.ratelimits {
        if q.ratelimits.is_empty() {
            a.remove.push("ratelimits");
            a.remove.push("rl");
        } else {
            let list = serde_dynamo::to_attribute_value(&q.ratelimits).map_err(corrupt)?;
            a.set("ratelimits = :ratelimits", ":ratelimits", list);
            a.set(
                "rl = if_not_exists(rl, :no_windows)",
                ":no_windows",
                AttributeValue::M(Default::default()),
            );
        }
    }
    Ok(())
}

const CREDITS_REMAINING: Optional = (
    "credits_remaining = :credits_remaining",
    "credits_remaining",
    ":credits_remaining",
);

/// A key's or credential's state as stored.
fn state_value(state: impl serde::Serialize) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(state).map_err(corrupt)
}

impl DynamoStore {
    pub(super) async fn run(&self, plan: Plan) -> Result<(), WriteFailure> {
        match self.transact(plan.items.clone(), &plan.witness).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Condition(failed)) => Err(plan.failure(&failed)),
            Err(TransactFailure::Store(e)) => Err(WriteFailure::Store(e)),
        }
    }

    /// A Put, on condition that no item has its primary key.
    pub(super) fn put_new(
        &self,
        item: std::collections::HashMap<String, AttributeValue>,
    ) -> Result<TransactWriteItem, StoreError> {
        let p = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(p).build())
    }

    /// The idempotency record's Put: where none is, or where the one there has expired.
    fn put_record(&self, record: &IdempotencyRecord) -> Result<TransactWriteItem, StoreError> {
        let p = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item(IdempotencyItem::new(record))?))
                .condition_expression("attribute_not_exists(#pk) OR #expires < :now")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#expires", "expires_ms")
                .expression_attribute_values(":now", millis(record.created))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(p).build())
    }

    fn delete_credential(&self, hash: &SecretHash) -> Result<TransactWriteItem, StoreError> {
        let d = built(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(primary_key(
                    credential_pk(hash),
                    CREDENTIAL_SK.to_owned(),
                )))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().delete(d).build())
    }

    /// The condition that the key item is at `version` (items from before versions have
    /// none, which counts as 0).
    fn at_version(version: u64) -> &'static str {
        if version == 0 {
            "attribute_exists(#pk) AND (attribute_not_exists(#version) OR #version = :version)"
        } else {
            "#version = :version"
        }
    }

    /// An Update of the item at `key`: `assignments`, on `condition`.
    pub(super) fn update_item(
        &self,
        key: std::collections::HashMap<String, AttributeValue>,
        assignments: Assignments,
        condition: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let expression = assignments.expression();
        let u = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .set_expression_attribute_names(names(&[&expression, condition], NAMES))
                .update_expression(expression)
                .condition_expression(condition)
                .set_expression_attribute_values(Some(assignments.values()))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    /// The update of the key item from `before` to `after`: every field a write may change,
    /// set or removed, on condition of `before`'s version. Its last use is left alone.
    fn update_key_item(
        &self,
        before: &StoredKey,
        after: &StoredKey,
    ) -> Result<TransactWriteItem, StoreError> {
        let next = KeyItem::stored(after);
        let mut a = Assignments::default();
        a.set(
            "#name = :name",
            ":name",
            AttributeValue::S(next.name.clone()),
        );
        a.set(
            "restricted = :restricted",
            ":restricted",
            AttributeValue::Bool(next.restricted),
        );
        a.set("#state = :state", ":state", state_value(next.state)?);
        a.set(
            "last_four = :last_four",
            ":last_four",
            AttributeValue::S(next.last_four.clone()),
        );
        let hash = AttributeValue::S(next.secret_hash.clone());
        a.set("secret_hash = :secret_hash", ":secret_hash", hash);
        a.set("updated_ms = :updated", ":updated", millis(next.updated_ms));
        a.set(
            "#version = :next",
            ":next",
            AttributeValue::N(next.version.to_string()),
        );
        let version = AttributeValue::N(before.key.version.to_string());
        a.values.push((":version", version));
        let permissions = next.permissions.map(|b| AttributeValue::N(b.to_string()));
        a.set_or_remove(PERMISSIONS, permissions);
        a.set_or_remove(EXPIRES, next.expires_ms.map(millis));
        a.set_or_remove(
            PREVIOUS_HASH,
            next.previous_hash.clone().map(AttributeValue::S),
        );
        a.set_or_remove(PREVIOUS_UNTIL, next.previous_until_ms.map(millis));
        let reason = next.disabled_reason.map(serde_dynamo::to_attribute_value);
        a.set_or_remove(DISABLED_REASON, reason.transpose().map_err(corrupt)?);
        let leaked = next
            .leaked_hashes
            .as_ref()
            .map(|marks| AttributeValue::L(marks.iter().cloned().map(AttributeValue::S).collect()));
        a.set_or_remove(LEAKED, leaked);
        a.set_or_remove(EXPIRY, next.expiry_pk.clone().map(AttributeValue::S));
        owner_assignments(&mut a, before.key.owner_id != after.key.owner_id, &next);
        field_assignments(&mut a, next.meta.as_ref(), next.allowed_cidrs.as_ref());
        let mut condition = Self::at_version(before.key.version).to_owned();
        notices_as_read(&mut a, &mut condition, &before.notified);
        let quotas = (&before.key.quota, &after.key.quota);
        quota_assignments(&mut a, &mut condition, quotas, after.key.updated)?;
        let key = primary_key(org_pk(&before.key.org), key_sk(before.key.id));
        self.update_item(key, a, &condition)
    }

    /// The update of an existing credential of `after` to what it copies of the key.
    fn update_credential(
        &self,
        after: &StoredKey,
        hash: &SecretHash,
    ) -> Result<TransactWriteItem, StoreError> {
        let c = CredentialItem::of(after, hash);
        let mut a = Assignments::default();
        a.set(
            "restricted = :restricted",
            ":restricted",
            AttributeValue::Bool(c.restricted),
        );
        a.set("#state = :state", ":state", state_value(c.state)?);
        let permissions = bits_of(&after.key.access).map(|b| AttributeValue::N(b.to_string()));
        a.set_or_remove(PERMISSIONS, permissions);
        a.set_or_remove(EXPIRES, c.expires_ms.map(millis));
        a.set_or_remove(
            PURGE_AT,
            c.purge_at.map(|t| AttributeValue::N(t.to_string())),
        );
        let quota = c
            .quota
            .is_metered()
            .then(|| serde_dynamo::to_attribute_value(&c.quota));
        a.set_or_remove(QUOTA, quota.transpose().map_err(corrupt)?);
        a.set_or_remove(OWNER_ID, c.owner_id.map(|o| AttributeValue::S(o.into())));
        field_assignments(&mut a, c.meta.as_ref(), c.allowed_cidrs.as_ref());
        a.set(
            "key_version = :key_version",
            ":key_version",
            AttributeValue::N(c.key_version.to_string()),
        );
        let key = primary_key(credential_pk(hash), CREDENTIAL_SK.to_owned());
        self.update_item(key, a, "attribute_exists(#pk)")
    }

    pub(super) fn finish(
        &self,
        plan: &mut Plan,
        event: &Event,
        record: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        // Never over an existing event: IAM cannot refuse an overwriting Put (template.yaml).
        plan.push(Role::Other, self.put_new(item(EventItem::new(event)?)?)?);
        plan.witness = primary_key(event_pk(&event.org), event_sk(event.id));
        if let Some(r) = record {
            plan.push(Role::Idempotency, self.put_record(r)?);
        }
        Ok(())
    }
}

impl DynamoStore {
    /// Lists `stored` in the `by-expiry` index where its expiry and notices put it, on
    /// condition that it is still as read: for `apikeys backfill-expiry`, which lists the
    /// keys written before the index existed. `Ok(false)` when the key changed meanwhile
    /// (its write listed it) or is gone. Nothing else of the key changes, and no event.
    pub async fn relist(&self, stored: &StoredKey) -> Result<bool, StoreError> {
        let next = KeyItem::stored(stored);
        let mut a = Assignments::default();
        a.set(
            "#version = :version",
            ":version",
            AttributeValue::N(stored.key.version.to_string()),
        );
        a.set_or_remove(EXPIRY, next.expiry_pk.map(AttributeValue::S));
        let mut condition = Self::at_version(stored.key.version).to_owned();
        notices_as_read(&mut a, &mut condition, &stored.notified);
        let key = primary_key(org_pk(&stored.key.org), key_sk(stored.key.id));
        let expression = a.expression();
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_expression_attribute_names(names(&[&expression, &condition], NAMES))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(a.values()));
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify(e)),
        }
    }
}

impl KeyWriter for DynamoStore {
    #[tracing::instrument(skip(self), err(Display))]
    async fn key_for_write(&self, org: &OrgId, id: KeyId) -> Result<Option<StoredKey>, StoreError> {
        let item: Option<KeyItem> = self
            .consistent_item(org_pk(org), key_sk(id))
            .await?
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(corrupt)?;
        item.map(KeyItem::into_stored).transpose()
    }

    #[tracing::instrument(skip_all, fields(org = %key.key.org, key = %key.key.id), err(Display))]
    async fn insert(
        &self,
        key: &StoredKey,
        event: &Event,
        record: Option<&IdempotencyRecord>,
    ) -> Result<(), WriteFailure> {
        let mut plan = Plan::default();
        plan.push(Role::Key, self.put_new(item(KeyItem::stored(key))?)?);
        plan.push(
            Role::Credential,
            self.put_new(item(CredentialItem::of(key, &key.hash))?)?,
        );
        plan.push(Role::Other, self.count_update(&key.key.org, 1)?);
        self.finish(&mut plan, event, record)?;
        self.run(plan).await
    }

    #[tracing::instrument(skip_all, fields(org = %before.key.org, key = %before.key.id), err(Display))]
    async fn replace(
        &self,
        before: &StoredKey,
        after: &StoredKey,
        event: &Event,
        record: Option<&IdempotencyRecord>,
    ) -> Result<(), WriteFailure> {
        let mut plan = Plan::default();
        plan.push(Role::Key, self.update_key_item(before, after)?);
        for hash in before.hashes() {
            if !after.hashes().any(|h| h == hash) {
                plan.push(Role::Other, self.delete_credential(hash)?);
            }
        }
        for hash in after.hashes() {
            if before.hashes().any(|h| h == hash) {
                plan.push(Role::Credential, self.update_credential(after, hash)?);
            } else {
                plan.push(
                    Role::Credential,
                    self.put_new(item(CredentialItem::of(after, hash))?)?,
                );
            }
        }
        self.finish(&mut plan, event, record)?;
        self.run(plan).await
    }

    #[tracing::instrument(skip_all, fields(org = %before.key.org, key = %before.key.id), err(Display))]
    async fn remove(&self, before: &StoredKey, event: &Event) -> Result<(), WriteFailure> {
        let mut plan = Plan::default();
        let condition = Self::at_version(before.key.version);
        let d = built(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(primary_key(
                    org_pk(&before.key.org),
                    key_sk(before.key.id),
                )))
                .condition_expression(condition)
                .set_expression_attribute_names(names(&[condition], NAMES))
                .expression_attribute_values(
                    ":version",
                    AttributeValue::N(before.key.version.to_string()),
                )
                .build(),
        )?;
        plan.push(Role::Key, TransactWriteItem::builder().delete(d).build());
        for hash in before.hashes() {
            plan.push(Role::Other, self.delete_credential(hash)?);
        }
        plan.push(Role::Other, self.count_update(&before.key.org, -1)?);
        self.finish(&mut plan, event, None)?;
        self.run(plan).await
    }

    #[tracing::instrument(skip_all, fields(org = %key.org, key = %key.id), err(Display))]
    async fn adjust_credits(&self, key: &ApiKey, event: &Event) -> Result<(), WriteFailure> {
        let mut a = Assignments::default();
        let mut condition =
            "attribute_exists(#pk) AND attribute_exists(credits_remaining)".to_owned();
        match event.credits {
            Some(Adjustment::Increment(n)) => {
                a.set(
                    "credits_remaining = credits_remaining + :delta",
                    ":delta",
                    AttributeValue::N(n.to_string()),
                );
                let ceiling = crate::quota::MAX_CREDITS.saturating_sub(n);
                a.values
                    .push((":ceiling", AttributeValue::N(ceiling.to_string())));
                condition.push_str(" AND credits_remaining <= :ceiling");
            }
            Some(Adjustment::Decrement(n)) => {
                a.set(
                    "credits_remaining = credits_remaining - :delta",
                    ":delta",
                    AttributeValue::N(n.to_string()),
                );
                condition.push_str(" AND credits_remaining >= :delta");
            }
            None => return Err(WriteFailure::Key),
        }
        let mut plan = Plan::default();
        let at = primary_key(org_pk(&key.org), key_sk(key.id));
        plan.push(Role::Key, self.update_item(at, a, &condition)?);
        self.finish(&mut plan, event, None)?;
        self.run(plan).await
    }

    #[tracing::instrument(skip_all, err(Display))]
    async fn idempotency_record(&self, id: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(
                idempotency_pk(id),
                IDEMPOTENCY_SK.to_owned(),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let item: Option<IdempotencyItem> = out
            .item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(corrupt)?;
        item.map(|i| i.into_record(id)).transpose()
    }
}
