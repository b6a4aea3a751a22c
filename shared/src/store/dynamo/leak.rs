//! The batched lookup of a secret scanning report: the credentials of every reported secret
//! by BatchGetItem, then, for the few that are disabled, their key items (again batched) to
//! learn whether a report marked that secret leaked before.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::items::{CredentialItem, KeyItem};
use super::{CREDENTIAL_SK, DynamoStore, built, classify, corrupt, credential_pk, key_sk, org_pk};
use super::{PK, SK, primary_key};
use crate::key::KeyState;
use crate::secret::SecretHash;
use crate::store::{Candidate, LeakLookup, StoreError};

/// The most keys one BatchGetItem request may name.
const BATCH: usize = 100;
/// How many times keys DynamoDB left unprocessed (throttling) are asked for again.
const UNPROCESSED_RETRIES: u32 = 5;

type Item = HashMap<String, AttributeValue>;

impl DynamoStore {
    /// Every item of `keys` that exists, in any order, by BatchGetItem requests of at most
    /// [`BATCH`] keys; unprocessed keys are asked for again with a short back-off. With
    /// `attributes`, only those attributes of each item (the read units are the same: they
    /// follow the items' size).
    pub(super) async fn batch_get(
        &self,
        keys: Vec<Item>,
        attributes: &[&str],
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt > UNPROCESSED_RETRIES {
                    return Err(StoreError::Unavailable(
                        "BatchGetItem left keys unprocessed after retries".into(),
                    ));
                }
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                let request = built(
                    projected(
                        KeysAndAttributes::builder().set_keys(Some(pending)),
                        attributes,
                    )
                    .build(),
                )?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .set_return_consumed_capacity(self.capacity_mode())
                    .send()
                    .await
                    .map_err(classify)?;
                for consumed in out.consumed_capacity() {
                    self.charge(Some(consumed));
                }
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.table).unwrap_or_default());
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(found)
    }
}

/// `request` asking for only `attributes` (all of them when empty).
fn projected(
    request: aws_sdk_dynamodb::types::builders::KeysAndAttributesBuilder,
    attributes: &[&str],
) -> aws_sdk_dynamodb::types::builders::KeysAndAttributesBuilder {
    if attributes.is_empty() {
        return request;
    }
    let names: Vec<String> = (0..attributes.len()).map(|i| format!("#a{i}")).collect();
    let request = request.projection_expression(names.join(", "));
    names
        .into_iter()
        .zip(attributes)
        .fold(request, |r, (n, a)| r.expression_attribute_names(n, *a))
}

fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

impl LeakLookup for DynamoStore {
    #[tracing::instrument(skip_all, fields(hashes = hashes.len()), err(Display))]
    async fn find_candidates(
        &self,
        hashes: &[SecretHash],
    ) -> Result<HashMap<SecretHash, Candidate>, StoreError> {
        let keys = hashes
            .iter()
            .map(|h| primary_key(credential_pk(h), CREDENTIAL_SK.to_owned()))
            .collect();
        let mut found = HashMap::new();
        for item in self.batch_get(keys, &[]).await? {
            let pk = text(&item, PK).unwrap_or_default();
            let Some(hash) = hashes.iter().find(|h| credential_pk(h) == pk) else {
                continue;
            };
            let credential = serde_dynamo::from_item::<_, CredentialItem>(item)
                .map_err(corrupt)?
                .into_credential()?;
            let candidate = Candidate {
                credential,
                marked: false,
            };
            found.insert(hash.clone(), candidate);
        }
        // Which secrets a report marked is on the key items, read only for disabled keys.
        // Once per key: two reported secrets of one key (its current and previous) are one
        // key item, and BatchGetItem refuses a request that names an item twice.
        let mut disabled: Vec<Item> = Vec::new();
        for c in found
            .values()
            .filter(|c| c.credential.state == KeyState::Disabled)
        {
            let at = primary_key(org_pk(&c.credential.org), key_sk(c.credential.key_id));
            if !disabled.contains(&at) {
                disabled.push(at);
            }
        }
        if disabled.is_empty() {
            return Ok(found);
        }
        let mut marks = Vec::new();
        for item in self.batch_get(disabled, &[]).await? {
            let (pk, sk) = (text(&item, PK), text(&item, SK));
            let key: KeyItem = serde_dynamo::from_item(item).map_err(corrupt)?;
            marks.push(((pk, sk), key.leaked_hash_list()));
        }
        for (hash, c) in found.iter_mut() {
            let at = (
                Some(org_pk(&c.credential.org)),
                Some(key_sk(c.credential.key_id)),
            );
            c.marked = marks
                .iter()
                .any(|(k, leaked)| *k == at && leaked.contains(hash));
        }
        Ok(found)
    }
}
