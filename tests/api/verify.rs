//! Verifying keys for an organization's other services, at the domain level on DynamoDB
//! Local: the codes, isolation by construction, no read for a malformed secret, the result
//! cache and its bound, and the recording of a valid key's use.

use std::time::Duration as StdDuration;

use apikeys::App;
use apikeys::key::{KeyState, OrgId, Permission};
use apikeys::store::KeyReader;
use apikeys::store::dynamo::DynamoStore;
use apikeys::verify::{Moment, Verdict, VerifyCache, VerifyCode, VerifyRequest, verify};
use apikeys_tests::*;
use chrono::{Duration, Utc};

/// The app on a store that counts its read units.
async fn metered_app() -> App<DynamoStore> {
    let app = app().await;
    App {
        store: app.store.metered(),
        callers: apikeys::cache::CallerCache::off(),
        cursors: app.cursors,
        usage: patient_recorder(),
    }
}

async fn check(
    app: &App<DynamoStore>,
    cache: &VerifyCache,
    org: &OrgId,
    secret: &str,
    permissions: &[Permission],
    now: Moment,
) -> Verdict {
    let request = VerifyRequest::new(secret, permissions.to_vec());
    verify(&app.store, cache, &app.usage, org, &request, now)
        .await
        .expect("verify")
}

/// A cache that holds nothing: every verification reads the table.
fn no_cache() -> VerifyCache {
    VerifyCache::new(StdDuration::ZERO)
}

#[tokio::test]
async fn the_code_follows_the_keys_status_then_the_requested_permissions() {
    use Permission::{ApiKeysDelete, CallsView, ToolsView};
    let app = app().await;
    let org = org();
    let mut new = new_key(&org, "service");
    new.access = restricted(&[CallsView, ToolsView]);
    let (key, secret) = create(&app, new).await;
    let mut soon = new_key(&org, "soon expired");
    soon.expires = Some(Utc::now() + Duration::seconds(2));
    let (expiring, expiring_secret) = create(&app, soon).await;
    let (disabled, disabled_secret) = create(&app, new_key(&org, "off")).await;
    assert!(set_state(&app, &org, disabled.id, KeyState::Disabled).await);
    let (c, now) = (no_cache(), Moment::now());

    let v = check(
        &app,
        &c,
        &org,
        secret.expose(),
        &[CallsView, ToolsView],
        now,
    )
    .await;
    assert_eq!((v.valid, v.code), (true, VerifyCode::Valid));
    assert_eq!(v.key.as_ref().map(|k| k.id), Some(key.id));
    let v = check(
        &app,
        &c,
        &org,
        secret.expose(),
        &[CallsView, ApiKeysDelete],
        now,
    )
    .await;
    assert_eq!(
        (v.valid, v.code, v.key.map(|k| k.id)),
        (false, VerifyCode::InsufficientPermissions, Some(key.id))
    );
    let v = check(&app, &c, &org, disabled_secret.expose(), &[], now).await;
    assert_eq!((v.valid, v.code), (false, VerifyCode::Disabled));
    let later = now.plus(StdDuration::from_secs(3));
    let v = check(
        &app,
        &c,
        &org,
        expiring_secret.expose(),
        &[CallsView],
        later,
    )
    .await;
    assert_eq!(
        (v.code, v.key.as_ref().map(|k| k.id)),
        (VerifyCode::Expired, Some(expiring.id))
    );
    // The body: the key object as GET shows it, never the secret or its hash.
    let body = serde_json::to_value(v.body(later.wall)).unwrap();
    assert_eq!(body["code"], "EXPIRED");
    assert_eq!(body["valid"], false);
    assert_eq!(body["key"]["status"], "expired");
    let text = body.to_string();
    assert!(!text.contains(expiring_secret.expose()));
    assert!(!text.contains(expiring_secret.hash().as_str()));
}

#[tokio::test]
async fn a_malformed_secret_is_not_found_without_a_read() {
    let app = metered_app().await;
    let org = org();
    let (_, secret) = create(&app, new_key(&org, "k")).await;
    app.store.read_units();
    let mut tampered = secret.expose().to_owned();
    let last = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., last);
    for token in ["", "apk_", "Bearer x", &tampered, "ghp_notours"] {
        let v = check(&app, &no_cache(), &org, token, &[], Moment::now()).await;
        assert_eq!(
            (v.valid, v.code, v.key),
            (false, VerifyCode::NotFound, None)
        );
    }
    assert_eq!(
        app.store.read_units(),
        0.0,
        "no read for a malformed secret"
    );
}

#[tokio::test]
async fn another_organizations_key_is_not_found_like_a_missing_one_at_the_same_cost() {
    let app = metered_app().await;
    let (mine, theirs) = (org(), org());
    let (_, foreign) = create(&app, new_key(&theirs, "theirs")).await;
    let missing = apikeys::secret::Secret::from_random([42; 24]);
    let cache = VerifyCache::new(StdDuration::from_secs(30));
    // Their owner verified it a moment ago, so it sits in the cache for them.
    let own = check(&app, &cache, &theirs, foreign.expose(), &[], Moment::now()).await;
    assert_eq!(own.code, VerifyCode::Valid);
    app.store.read_units();
    let mut seen = Vec::new();
    for secret in [&foreign, &missing, &foreign, &missing] {
        let v = check(&app, &cache, &mine, secret.expose(), &[], Moment::now()).await;
        let body = serde_json::to_string(&v.body(Utc::now())).unwrap();
        seen.push((body, app.store.read_units()));
    }
    assert!(seen.iter().all(|s| s == &seen[0]), "{seen:?}");
    assert_eq!(
        seen[0].0,
        r#"{"valid":false,"code":"NOT_FOUND","key":null}"#
    );
    assert_eq!(
        seen[0].1, 1.5,
        "an eventually consistent GetItem and a consistent one, as for a miss; no key read"
    );
}

#[tokio::test]
async fn a_cached_verification_reads_nothing_and_a_change_shows_after_the_ttl() {
    let app = metered_app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "k")).await;
    let cache = VerifyCache::new(StdDuration::from_secs(5));
    let t0 = Moment::now();
    let first = check(&app, &cache, &org, secret.expose(), &[], t0).await;
    assert_eq!(first.code, VerifyCode::Valid);
    assert!(app.store.read_units() > 0.0);
    assert!(set_state(&app, &org, key.id, KeyState::Disabled).await);
    app.store.read_units();
    let within = t0.plus(StdDuration::from_millis(4_900));
    let cached = check(&app, &cache, &org, secret.expose(), &[], within).await;
    assert_eq!(cached.code, VerifyCode::Valid, "the documented window");
    assert_eq!(app.store.read_units(), 0.0, "served from the cache");
    let after = t0.plus(StdDuration::from_secs(5));
    let fresh = check(&app, &cache, &org, secret.expose(), &[], after).await;
    assert_eq!(fresh.code, VerifyCode::Disabled);
    assert!(app.store.read_units() > 0.0);
}

#[tokio::test]
async fn a_valid_verification_records_the_keys_use_and_others_do_not() {
    let app = app().await;
    let org = org();
    let (valid, valid_secret) = create(&app, new_key(&org, "valid")).await;
    let mut narrow = new_key(&org, "narrow");
    narrow.access = restricted(&[Permission::CallsView]);
    let (short, short_secret) = create(&app, narrow).await;
    let now = Moment::now();
    let v = check(&app, &no_cache(), &org, valid_secret.expose(), &[], now).await;
    assert_eq!(v.code, VerifyCode::Valid);
    let v = check(
        &app,
        &no_cache(),
        &org,
        short_secret.expose(),
        &[Permission::BillingView],
        now,
    )
    .await;
    assert_eq!(v.code, VerifyCode::InsufficientPermissions);
    let stored = |id| app.store.get_key(&org, id);
    let used = stored(valid.id).await.unwrap().unwrap().last_used;
    assert_eq!(
        used.map(|t| t.timestamp_millis()),
        Some(now.wall.timestamp_millis())
    );
    assert_eq!(stored(short.id).await.unwrap().unwrap().last_used, None);
}
