//! The bare floors of get-key and list-keys: the same reads the functions make, straight
//! from the SDK, in the benchmark's process.

use std::time::Duration;

use apikeys::key::KeyId;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use tokio::time::Instant;

use crate::BoxError;

/// The bare floors: the same reads the functions make, straight from the SDK.
pub struct Floors {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub key_sk: String,
    pub list_limit: i32,
}

impl Floors {
    pub fn get(&self) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                AttributeValue::S(format!("ORG#{}", apikeys_demo::ORG)),
            )
            .key("sk", AttributeValue::S(self.key_sk.clone()))
    }

    pub fn query(&self) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("ORG#{}", apikeys_demo::ORG)),
            )
            .expression_attribute_values(":prefix", AttributeValue::S("KEY#".into()))
            .scan_index_forward(false)
            .limit(self.list_limit)
    }

    /// The Query a list page at a position makes: `limit` + 1 items after `from`, newest
    /// first.
    pub async fn query_from_loop(
        &self,
        from: Option<KeyId>,
        limit: usize,
        n: usize,
    ) -> Result<Vec<Duration>, BoxError> {
        let start = from.map(|id| {
            std::collections::HashMap::from([
                (
                    "pk".to_owned(),
                    AttributeValue::S(format!("ORG#{}", apikeys_demo::ORG)),
                ),
                ("sk".to_owned(), AttributeValue::S(format!("KEY#{id}"))),
            ])
        });
        let page = i32::try_from(limit + 1)?;
        let call = || {
            self.query()
                .limit(page)
                .set_exclusive_start_key(start.clone())
                .send()
        };
        let full = |r: QueryOutput| r.items.unwrap_or_default().len() == limit + 1;
        timed(n, call, full, "the floor's Query read a short page").await
    }

    pub async fn get_loop(&self, n: usize) -> Result<Vec<Duration>, BoxError> {
        let found = |r: GetItemOutput| r.item.is_some();
        let call = || self.get().send();
        timed(n, call, found, "the floor's GetItem found no item").await
    }

    pub async fn query_loop(&self, n: usize) -> Result<Vec<Duration>, BoxError> {
        let found = |r: QueryOutput| !r.items.unwrap_or_default().is_empty();
        let call = || self.query().send();
        timed(n, call, found, "the floor's Query found no item").await
    }

    /// The capacity of one GetItem and one Query, and the items the Query read.
    pub async fn units(&self) -> Result<(f64, f64, usize), BoxError> {
        let gi = self
            .get()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        let q = self
            .query()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        Ok((
            gi.consumed_capacity
                .and_then(|c| c.capacity_units)
                .unwrap_or(0.0),
            q.consumed_capacity
                .and_then(|c| c.capacity_units)
                .unwrap_or(0.0),
            q.count as usize,
        ))
    }
}

/// The durations of `n` calls, each of whose answers must pass `ok` (else fails with `what`).
async fn timed<T, E, F>(
    n: usize,
    call: impl Fn() -> F,
    ok: impl Fn(T) -> bool,
    what: &str,
) -> Result<Vec<Duration>, BoxError>
where
    F: Future<Output = Result<T, E>>,
    BoxError: From<E>,
{
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = call().await?;
        out.push(t.elapsed());
        if !ok(r) {
            return Err(what.into());
        }
    }
    Ok(out)
}
