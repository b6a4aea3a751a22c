//! Writes: each one transaction over the key item, its credential and the organization's
//! key count.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::items::{CredentialItem, KeyItem, bits_of};
use super::{
    CREDENTIAL_SK, DynamoStore, PK, TransactFailure, built, corrupt, credential_pk, primary_key,
};
use crate::key::{ApiKey, KeyId, KeyState, OrgId};
use crate::secret::SecretHash;
use crate::store::{KeyWriter, StoreError};

impl KeyWriter for DynamoStore {
    #[tracing::instrument(skip_all, fields(org = %key.org, key = %key.id), err(Display))]
    async fn insert_key(&self, key: &ApiKey, hash: &SecretHash) -> Result<(), StoreError> {
        let key_item = serde_dynamo::to_item(KeyItem::new(key, hash)).map_err(corrupt)?;
        let credential = serde_dynamo::to_item(CredentialItem {
            pk: credential_pk(hash),
            sk: CREDENTIAL_SK.to_owned(),
            org: key.org.clone(),
            key_id: key.id,
            restricted: key.access.is_restricted(),
            permissions: bits_of(&key.access),
            state: key.state,
            expires_ms: key.expires,
            last_used_ms: key.last_used,
        })
        .map_err(corrupt)?;
        let put = |item| {
            built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .build(),
            )
            .map(|p| TransactWriteItem::builder().put(p).build())
        };
        self.transact(vec![
            put(key_item)?,
            put(credential)?,
            self.count_update(&key.org, 1)?,
        ])
        .await
        .map_err(StoreError::from)
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn set_state(
        &self,
        org: &OrgId,
        id: KeyId,
        state: KeyState,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(item) = self.key_item(org, id).await? else {
            return Ok(false);
        };
        let state_value: AttributeValue =
            serde_dynamo::to_attribute_value(state).map_err(corrupt)?;
        let hash = SecretHash::from_stored(item.secret_hash);
        let update = |key, set: &str| {
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression(set)
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":state", state_value.clone())
        };
        let on_key = built(
            update(
                primary_key(item.pk, item.sk),
                "SET #state = :state, updated_ms = :now",
            )
            .expression_attribute_values(
                ":now",
                AttributeValue::N(now.timestamp_millis().to_string()),
            )
            .build(),
        )?;
        let on_credential = built(
            update(
                primary_key(credential_pk(&hash), CREDENTIAL_SK.to_owned()),
                "SET #state = :state",
            )
            .build(),
        )?;
        match self
            .transact(vec![
                TransactWriteItem::builder().update(on_key).build(),
                TransactWriteItem::builder().update(on_credential).build(),
            ])
            .await
        {
            Ok(()) => Ok(true),
            // Deleted since it was read.
            Err(TransactFailure::Condition) => Ok(false),
            Err(TransactFailure::Store(e)) => Err(e),
        }
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn delete_key(&self, org: &OrgId, id: KeyId) -> Result<bool, StoreError> {
        let Some(item) = self.key_item(org, id).await? else {
            return Ok(false);
        };
        let hash = SecretHash::from_stored(item.secret_hash);
        // The key must still be there, so that two deletes racing each other count once.
        let delete = |key| {
            built(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .condition_expression("attribute_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .build(),
            )
            .map(|d| TransactWriteItem::builder().delete(d).build())
        };
        match self
            .transact(vec![
                delete(primary_key(item.pk, item.sk))?,
                delete(primary_key(credential_pk(&hash), CREDENTIAL_SK.to_owned()))?,
                self.count_update(org, -1)?,
            ])
            .await
        {
            Ok(()) => Ok(true),
            Err(TransactFailure::Condition) => Ok(false),
            Err(TransactFailure::Store(e)) => Err(e),
        }
    }
}
