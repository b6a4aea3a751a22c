//! `apikeys get-owner` and `apikeys set-owner`: an owner's own credits and rate limits,
//! shared by all of its keys, as `GET`/`PUT /v1/owner/{owner_id}` read and set them
//! (`apikeys::write::set_owner`: one transaction with its `owner.updated` event).

use apikeys::key::OrgId;
use apikeys::owner::{Owner, OwnerId};
use apikeys::store::OwnerStore;
use apikeys::store::dynamo::DynamoStore;
use apikeys::write::{self, WriteContext, WritePolicy};
use serde_json::{Value, json};

use crate::quota::QuotaArgs;
use crate::{CliError, Output};

#[derive(clap::Args)]
pub struct OwnerRef {
    #[arg(long)]
    org: OrgId,
    /// The owner id, as its keys' `owner_id`.
    #[arg(long, value_parser = crate::parse_owner)]
    owner: OwnerId,
}

#[derive(clap::Args)]
pub struct SetOwner {
    #[command(flatten)]
    of: OwnerRef,
    /// The owner's credits and limits, whole: a flag left out is none (so no flag at all
    /// removes them). Rate limits are counted exactly (`leased` is refused), and
    /// --credits-low-at is a key's only.
    #[command(flatten)]
    quota: QuotaArgs,
}

impl SetOwner {
    /// What clap cannot see value by value (as create-key's).
    pub fn check(&self) -> Result<(), String> {
        self.quota.check()
    }
}

pub async fn get(store: &DynamoStore, args: OwnerRef, out: Output) -> Result<(), CliError> {
    let owner = store.owner(&args.org, &args.owner).await?.ok_or_else(|| {
        CliError::Input(format!(
            "owner {} of organization {} has no credits or rate limits set",
            args.owner, args.org
        ))
    })?;
    print(&owner, out);
    Ok(())
}

pub async fn set(
    store: &DynamoStore,
    policy: &WritePolicy,
    ctx: &WriteContext,
    args: SetOwner,
    out: Output,
) -> Result<(), CliError> {
    let quota = args.quota.quota();
    let at = (&args.of.org, &args.of.owner);
    let set = write::set_owner(store, policy, ctx, at, &quota, None).await?;
    print(&set.owner, out);
    Ok(())
}

fn print(owner: &Owner, out: Output) {
    let mut value: Value = serde_json::to_value(owner.view()).unwrap_or_default();
    value["org"] = json!(owner.org);
    out.print(value.clone(), || {
        let limits = crate::quota::describe(&value);
        let limits = if limits.is_empty() {
            "no limits".to_owned()
        } else {
            limits
        };
        format!("owner {} of {}: {limits}", owner.id, owner.org)
    });
}
