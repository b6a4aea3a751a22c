//! The credential lookup: one GetItem by the secret's hash (a second, consistent one when
//! the first misses), and the stamps of a key's last use on its key and credential items.

use chrono::{DateTime, Utc};

use super::items::CredentialItem;
use super::{
    CREDENTIAL_SK, DynamoStore, LAST_USED, PK, classify, corrupt, credential_pk, key_sk, millis,
    org_pk, primary_key,
};
use crate::key::{KeyId, OrgId};
use crate::secret::SecretHash;
use crate::store::{Credential, CredentialStore, StoreError};

impl DynamoStore {
    /// The credential item of `hash`, read `consistent`ly or not.
    async fn credential(
        &self,
        hash: &SecretHash,
        consistent: bool,
    ) -> Result<Option<Credential>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(
                credential_pk(hash),
                CREDENTIAL_SK.to_owned(),
            )))
            .consistent_read(consistent)
            .set_return_consumed_capacity(self.capacity_mode())
            .send()
            .await
            .map_err(classify)?;
        self.charge(out.consumed_capacity());
        let item: Option<CredentialItem> = out
            .item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(corrupt)?;
        item.map(CredentialItem::into_credential).transpose()
    }
}

impl CredentialStore for DynamoStore {
    #[tracing::instrument(skip_all, err(Display))]
    async fn find_credential(&self, hash: &SecretHash) -> Result<Option<Credential>, StoreError> {
        // Eventually consistent first (0.5 read units): almost every secret presented is
        // an old one. A miss may be a key created a moment ago that this replica has not
        // seen yet, so it is asked again, consistently (1 more unit): a new key works at
        // once. An unknown secret costs 1.5 units.
        match self.credential(hash, false).await? {
            Some(found) => Ok(Some(found)),
            None => self.credential(hash, true).await,
        }
    }

    #[tracing::instrument(skip_all, err(Display))]
    async fn spend_as_a_miss(&self, hash: &SecretHash) -> Result<(), StoreError> {
        self.credential(hash, true).await.map(|_| ())
    }

    #[tracing::instrument(skip(self, hash), err(Display))]
    async fn record_use(
        &self,
        org: &OrgId,
        id: KeyId,
        hash: &SecretHash,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // Two independent conditional writes, not a transaction: each item is stamped at
        // most once a minute, and a lost race only means the other request stamped it. No
        // retries: a throttled stamp fails at once (the caller backs off, see `usage`)
        // instead of sleeping, and spends none of the client's retry quota that reads need.
        let stamp = |key| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("SET #used = :at")
                .condition_expression(
                    "attribute_exists(#pk) AND (attribute_not_exists(#used) OR #used < :stale)",
                )
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#used", LAST_USED)
                .expression_attribute_values(":at", millis(at))
                .expression_attribute_values(":stale", millis(stale_before))
                .customize()
                .config_override(
                    aws_sdk_dynamodb::config::Builder::new()
                        .retry_config(aws_config::retry::RetryConfig::disabled()),
                )
                .send()
        };
        let (on_key, on_credential) = tokio::join!(
            stamp(primary_key(org_pk(org), key_sk(id))),
            stamp(primary_key(credential_pk(hash), CREDENTIAL_SK.to_owned())),
        );
        let mut wrote = false;
        for outcome in [on_key.map(|_| ()), on_credential.map(|_| ())] {
            match outcome {
                Ok(()) => wrote = true,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(wrote)
    }
}
