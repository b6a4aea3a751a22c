//! The demo organization: keys with secrets known in advance, for local runs, the sample
//! events in `events/`, tests and the benchmark. Its secrets are public; they exist only where
//! someone seeds them, which production never does.
//!
//! This is a crate of its own so that no build of a function can contain it: the functions do
//! not depend on it, and a cargo feature of `apikeys` would not do, since cargo unifies
//! features across the workspace members it builds together (`cargo build --bin get-key` from
//! the workspace root, as `sam build` runs it, builds with every member's features).

use chrono::{TimeZone, Utc};
use uuid::Uuid;

use apikeys::key::{Access, ApiKey, KeyId, KeyState, OrgId, Permission};
use apikeys::secret::Secret;
use apikeys::store::{KeyReader, KeyWriter};
use apikeys::write::{
    CreateKeyError, NewKey, WriteContext, WritePolicy, create_key_with_secret, set_state,
};

pub const ORG: &str = "demo";
/// The demo organization's unrestricted key.
pub const ADMIN_SECRET: &str = "apk_YXBpa2V5cy1sb2NhbC1kZW1vLWFkbWlu8Z1JSQ";
pub const ADMIN_ID: &str = "01900000-0000-7000-8000-000000000001";
/// A restricted key with only `api_keys.view`.
pub const VIEWER_ID: &str = "01900000-0001-7000-8000-000000000002";
/// A restricted key without `api_keys.view`.
pub const CALLS_ID: &str = "01900000-0002-7000-8000-000000000003";
pub const DISABLED_ID: &str = "01900000-0003-7000-8000-000000000004";
pub const EXPIRED_ID: &str = "01900000-0004-7000-8000-000000000005";
pub const CREATOR_ID: &str = "5b1f6a52-7e3c-4d1a-9f0e-2c8b7a6d5e40";

/// One demo key: its id, name, access, state, expiry, and the bytes its secret is made of.
struct DemoKey {
    id: &'static str,
    name: &'static str,
    access: Access,
    disabled: bool,
    expired: bool,
    secret: &'static [u8; 24],
}

fn keys() -> Vec<DemoKey> {
    use Permission::*;
    vec![
        DemoKey {
            id: ADMIN_ID,
            name: "Demo admin",
            access: Access::Unrestricted,
            disabled: false,
            expired: false,
            secret: b"apikeys-local-demo-admin",
        },
        DemoKey {
            id: VIEWER_ID,
            name: "Dashboard (read-only)",
            access: Access::new(true, vec![ApiKeysView]),
            disabled: false,
            expired: false,
            secret: b"apikeys-local-demo-viewr",
        },
        DemoKey {
            id: CALLS_ID,
            name: "Call center",
            access: Access::new(true, vec![CallsView, CallsCreate, CallsUpdate]),
            disabled: false,
            expired: false,
            secret: b"apikeys-local-demo-calls",
        },
        DemoKey {
            id: DISABLED_ID,
            name: "Old integration",
            access: Access::new(true, vec![IntegrationsView]),
            disabled: true,
            expired: false,
            secret: b"apikeys-local-demo-disab",
        },
        DemoKey {
            id: EXPIRED_ID,
            name: "Trial",
            access: Access::Unrestricted,
            disabled: false,
            expired: true,
            secret: b"apikeys-local-demo-expir",
        },
    ]
}

/// The secret of the demo key with this id.
pub fn secret_of(id: &str) -> Option<Secret> {
    keys()
        .into_iter()
        .find(|k| k.id == id)
        .map(|k| Secret::from_random(*k.secret))
}

fn parse<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("demo constants are valid")
}

/// Creates the demo organization's keys, unless they exist already. Returns the keys it
/// created.
pub async fn seed<S: KeyReader + KeyWriter>(store: &S) -> Result<Vec<ApiKey>, CreateKeyError> {
    let org: OrgId = parse(ORG);
    if store.get_key(&org, parse(ADMIN_ID)).await?.is_some() {
        return Ok(Vec::new());
    }
    let mut created = Vec::new();
    for k in keys() {
        let id: KeyId = parse(k.id);
        let expires = k
            .expired
            .then(|| Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
        let new = NewKey {
            org: org.clone(),
            name: k.name.to_owned(),
            creator_id: parse::<Uuid>(CREATOR_ID),
            access: k.access,
            expires,
            id: Some(id),
            quota: Default::default(),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        };
        let mut key = create_key_with_secret(store, new, &Secret::from_random(*k.secret)).await?;
        if k.disabled {
            // Disabled at its creation time, so the demo's documents never change.
            let ctx = WriteContext::cli().at(key.created);
            key = set_state(
                store,
                &WritePolicy::default(),
                &ctx,
                &org,
                id,
                KeyState::Disabled,
            )
            .await?;
        }
        created.push(key);
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_constant_is_the_secret_its_bytes_make() {
        assert_eq!(secret_of(ADMIN_ID).unwrap().expose(), ADMIN_SECRET);
        assert_eq!(
            Secret::parse(ADMIN_SECRET),
            Ok(secret_of(ADMIN_ID).unwrap())
        );
    }

    #[test]
    fn demo_ids_are_v7_in_creation_order() {
        let ids: Vec<KeyId> = keys().iter().map(|k| parse(k.id)).collect();
        assert!(ids.iter().all(|id| id.created_at().is_some()));
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
