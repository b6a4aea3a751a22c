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
use crate::audit::Event;
use crate::key::{KeyId, OrgId};
use crate::secret::SecretHash;
use crate::store::{IdempotencyRecord, KeyWriter, StoreError, StoredKey, WriteFailure};

/// What each item of a transaction is, to tell which condition failed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Credential,
    Other,
    Idempotency,
}

/// A transaction being built: its items and their roles, and the key of its audit event,
/// which tells whether it committed.
#[derive(Default)]
struct Plan {
    items: Vec<TransactWriteItem>,
    roles: Vec<Role>,
    witness: Witness,
}

impl Plan {
    fn push(&mut self, role: Role, item: TransactWriteItem) {
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
];

impl DynamoStore {
    async fn run(&self, plan: Plan) -> Result<(), WriteFailure> {
        match self.transact(plan.items.clone(), &plan.witness).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Condition(failed)) => Err(plan.failure(&failed)),
            Err(TransactFailure::Store(e)) => Err(WriteFailure::Store(e)),
        }
    }

    /// A Put, on condition that no item has its primary key.
    fn put_new(
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

    /// The update of the key item from `before` to `after`: every field a write may change,
    /// set or removed, on condition of `before`'s version. Its last use is left alone.
    fn update_key_item(
        &self,
        before: &StoredKey,
        after: &StoredKey,
    ) -> Result<TransactWriteItem, StoreError> {
        let next = KeyItem::stored(after);
        let mut set = vec![
            "#name = :name",
            "restricted = :restricted",
            "#state = :state",
            "last_four = :last_four",
            "secret_hash = :secret_hash",
            "updated_ms = :updated",
            "#version = :next",
        ];
        let mut remove = vec![];
        let mut values = vec![
            (":name", AttributeValue::S(next.name.clone())),
            (":restricted", AttributeValue::Bool(next.restricted)),
            (
                ":state",
                serde_dynamo::to_attribute_value(next.state).map_err(corrupt)?,
            ),
            (":last_four", AttributeValue::S(next.last_four.clone())),
            (":secret_hash", AttributeValue::S(next.secret_hash.clone())),
            (":updated", millis(next.updated_ms)),
            (":next", AttributeValue::N(next.version.to_string())),
            (
                ":version",
                AttributeValue::N(before.key.version.to_string()),
            ),
        ];
        let mut optional =
            |name: &'static str, placeholder: &'static str, value: Option<AttributeValue>| {
                match value {
                    Some(v) => {
                        set.push(match name {
                            "permissions" => "#permissions = :permissions",
                            "expires_ms" => "expires_ms = :expires",
                            "previous_hash" => "previous_hash = :previous_hash",
                            "disabled_reason" => "disabled_reason = :disabled_reason",
                            "leaked_hashes" => "leaked_hashes = :leaked_hashes",
                            _ => "previous_until_ms = :previous_until",
                        });
                        values.push((placeholder, v));
                    }
                    None => remove.push(if name == "permissions" {
                        "#permissions"
                    } else {
                        name
                    }),
                }
            };
        optional(
            "permissions",
            ":permissions",
            next.permissions.map(|b| AttributeValue::N(b.to_string())),
        );
        optional("expires_ms", ":expires", next.expires_ms.map(millis));
        optional(
            "previous_hash",
            ":previous_hash",
            next.previous_hash.clone().map(AttributeValue::S),
        );
        optional(
            "previous_until_ms",
            ":previous_until",
            next.previous_until_ms.map(millis),
        );
        optional(
            "disabled_reason",
            ":disabled_reason",
            next.disabled_reason
                .map(serde_dynamo::to_attribute_value)
                .transpose()
                .map_err(corrupt)?,
        );
        optional(
            "leaked_hashes",
            ":leaked_hashes",
            next.leaked_hashes.as_ref().map(|marks| {
                AttributeValue::L(marks.iter().cloned().map(AttributeValue::S).collect())
            }),
        );
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let condition = Self::at_version(before.key.version);
        let u = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(primary_key(
                    org_pk(&before.key.org),
                    key_sk(before.key.id),
                )))
                .set_expression_attribute_names(names(&[&expression, condition], NAMES))
                .update_expression(expression)
                .condition_expression(condition)
                .set_expression_attribute_values(Some(
                    values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                ))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    /// The update of an existing credential of `after` to what it copies of the key.
    fn update_credential(
        &self,
        after: &StoredKey,
        hash: &SecretHash,
    ) -> Result<TransactWriteItem, StoreError> {
        let c = CredentialItem::of(after, hash);
        let mut set = vec!["restricted = :restricted", "#state = :state"];
        let mut remove = vec![];
        let mut values = vec![
            (":restricted", AttributeValue::Bool(c.restricted)),
            (
                ":state",
                serde_dynamo::to_attribute_value(c.state).map_err(corrupt)?,
            ),
        ];
        match bits_of(&after.key.access) {
            Some(b) => {
                set.push("#permissions = :permissions");
                values.push((":permissions", AttributeValue::N(b.to_string())));
            }
            None => remove.push("#permissions"),
        }
        match c.expires_ms {
            Some(t) => {
                set.push("expires_ms = :expires");
                values.push((":expires", millis(t)));
            }
            None => remove.push("expires_ms"),
        }
        match c.purge_at {
            Some(t) => {
                set.push("purge_at = :purge");
                values.push((":purge", AttributeValue::N(t.to_string())));
            }
            None => remove.push("purge_at"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let u = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(primary_key(
                    credential_pk(hash),
                    CREDENTIAL_SK.to_owned(),
                )))
                .set_expression_attribute_names(names(
                    &[&expression, "attribute_exists(#pk)"],
                    NAMES,
                ))
                .update_expression(expression)
                .condition_expression("attribute_exists(#pk)")
                .set_expression_attribute_values(Some(
                    values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                ))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    fn finish(
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

impl KeyWriter for DynamoStore {
    #[tracing::instrument(skip(self), err(Display))]
    async fn key_for_write(&self, org: &OrgId, id: KeyId) -> Result<Option<StoredKey>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(org_pk(org), key_sk(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let item: Option<KeyItem> = out
            .item
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
