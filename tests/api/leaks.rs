//! Revoking keys leaked in public code, at the domain level on DynamoDB Local: the batched
//! lookup, the labels GitHub gets, one transaction per reported secret of ours that
//! disables its key, marks the secret and writes `key.leaked` with the reported url and
//! source, whatever the key's status; idempotent replays; a marked key that cannot be
//! enabled until a roll drops the secret; and the key view's `disabled_reason`.

use apikeys::App;
use apikeys::audit::{Action, ActorKind, Event, Leak};
use apikeys::key::{ApiKey, KeyId, KeyState, OrgId};
use apikeys::leak::report::ReportedToken;
use apikeys::leak::{Handled, Label, handle_report};
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys::store::{AuditReader, EventRange, KeyReader};
use apikeys::write::{Revocation, WriteContext, revoke_leaked};
use apikeys_tests::*;
use chrono::Utc;

fn reported(token: &str, url: &str, source: &str) -> ReportedToken {
    ReportedToken {
        token: token.into(),
        token_type: "apikeys_api_key".into(),
        url: url.into(),
        source: source.into(),
    }
}

async fn handle(app: &App<DynamoStore>, report: &[ReportedToken]) -> Handled {
    handle_report(&app.store, &policy(), "gh-req-1", report, Utc::now())
        .await
        .expect("handle the report")
}

async fn events(app: &App<DynamoStore>, org: &OrgId) -> Vec<Event> {
    app.store
        .read_events(org, None, EventRange::ALL, true, 1000)
        .await
        .expect("read the events")
}

async fn stored(app: &App<DynamoStore>, org: &OrgId, id: KeyId) -> Option<ApiKey> {
    app.store.get_key(org, id).await.expect("read the key")
}

fn labels(h: &Handled) -> Vec<Label> {
    h.feedback.iter().map(|f| f.label).collect()
}

#[tokio::test]
async fn a_mixed_batch_disables_every_key_of_ours_each_with_one_leak_event() {
    let app = app().await;
    let (acme, globex) = (org(), org());
    let (live, live_secret) = create(&app, new_key(&acme, "live")).await;
    let (disabled, disabled_secret) = create(&app, new_key(&acme, "disabled")).await;
    assert!(set_state(&app, &acme, disabled.id, KeyState::Disabled).await);
    let (deleted, deleted_secret) = create(&app, new_key(&acme, "deleted")).await;
    assert!(delete(&app, &acme, deleted.id).await);
    let (theirs, their_secret) = create(&app, new_key(&globex, "theirs")).await;
    let mut tampered = live_secret.expose().to_owned();
    let c = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., c);
    let before = (
        events(&app, &acme).await.len(),
        events(&app, &globex).await.len(),
    );

    let url = "https://github.com/octo/repo/blob/0123abc/.env";
    let report = vec![
        reported(live_secret.expose(), url, "content"),
        reported(disabled_secret.expose(), "", "content"),
        reported(deleted_secret.expose(), "", "commit"),
        reported(their_secret.expose(), "https://gist.github.com/x", "gist"),
        reported("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "", "content"),
        reported(&tampered, "", "content"),
        reported(
            live_secret.expose(),
            "https://github.com/octo/other",
            "commit",
        ),
    ];
    let handled = handle(&app, &report).await;
    use Label::{FalsePositive as F, TruePositive as T};
    assert_eq!(labels(&handled), [T, T, F, T, F, F, T]);
    for (f, r) in handled.feedback.iter().zip(&report) {
        assert_eq!(
            f.token_hash,
            apikeys::digest::sha256_hex(r.token.as_bytes(), 32)
        );
        assert_eq!(f.token_type, "apikeys_api_key");
    }

    // The keys of ours, of either organization, are disabled for the leak, once each: the
    // one its owner had disabled too, so that enabling it cannot revive the secret.
    for (org, id) in [(&acme, live.id), (&acme, disabled.id), (&globex, theirs.id)] {
        let key = stored(&app, org, id).await.expect("disabled, not deleted");
        assert_eq!(key.state, KeyState::Disabled);
        let view = serde_json::to_value(key.view(Utc::now())).unwrap();
        assert_eq!(view["status"], "disabled");
        assert_eq!(view["disabled_reason"], "leaked");
    }
    assert_eq!(handled.revocations.len(), 3);
    assert!(
        handled
            .revocations
            .iter()
            .all(|(_, r)| matches!(r, Revocation::Revoked(_)))
    );
    // Disabled by its owner (one version), then marked (one more).
    let admin_disabled = stored(&app, &acme, disabled.id).await.unwrap();
    assert_eq!(admin_disabled.version, disabled.version + 2);
    assert!(stored(&app, &acme, deleted.id).await.is_none());

    // One key.leaked event per revoked key, in its own organization's trail, with where
    // the secret was first reported found, by GitHub.
    let acme_trail = events(&app, &acme).await;
    assert_eq!(acme_trail.len(), before.0 + 2, "one event per key of ours");
    let marked = acme_trail
        .iter()
        .find(|e| e.key_id == Some(disabled.id) && e.action == Action::Leaked)
        .expect("the disabled key's key.leaked event");
    assert_eq!(
        marked.changes["disabled_reason"].to.as_str(),
        Some("leaked")
    );
    assert!(
        !marked.changes.contains_key("status"),
        "it was disabled already"
    );
    for (org, id, had, where_) in [
        (&acme, live.id, before.0, (url, "content")),
        (
            &globex,
            theirs.id,
            before.1,
            ("https://gist.github.com/x", "gist"),
        ),
    ] {
        let trail = events(&app, org).await;
        assert!(trail.len() > had);
        let e = trail
            .iter()
            .find(|e| e.key_id == Some(id) && e.action == Action::Leaked)
            .expect("its key.leaked event");
        assert_eq!((e.action, e.key_id), (Action::Leaked, Some(id)));
        assert_eq!(e.actor.kind, ActorKind::Github);
        assert_eq!(e.request_id, "gh-req-1");
        let leak = Leak {
            url: where_.0.into(),
            source: where_.1.into(),
        };
        assert_eq!(e.leak.as_ref(), Some(&leak));
        assert_eq!(e.changes["status"].to.as_str(), Some("disabled"));
        assert_eq!(e.changes["disabled_reason"].to.as_str(), Some("leaked"));
        let shown = serde_json::to_value(e.view()).unwrap();
        assert_eq!(shown["action"], "key.leaked");
        assert_eq!(shown["leak"]["url"], where_.0);
    }
}

#[tokio::test]
async fn a_replayed_report_gets_the_same_answer_and_changes_nothing_more() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "leaky")).await;
    let report = vec![
        reported(secret.expose(), "https://github.com/a/b", "content"),
        reported("apk_nope", "", "content"),
    ];
    let first = handle(&app, &report).await;
    let after_first = stored(&app, &org, key.id).await.unwrap();
    let trail = events(&app, &org).await;
    let replay = handle(&app, &report).await;
    assert_eq!(replay.feedback, first.feedback);
    assert_eq!(labels(&replay), [Label::TruePositive, Label::FalsePositive]);
    assert!(replay.revocations.is_empty(), "{:?}", replay.revocations);
    assert_eq!(stored(&app, &org, key.id).await.unwrap(), after_first);
    assert_eq!(events(&app, &org).await, trail, "no second event");

    // Not even the operator may enable it while the leaked secret is its secret.
    let enable = apikeys::write::set_state(
        &app.store,
        &policy(),
        &ctx(),
        &org,
        key.id,
        KeyState::Active,
    )
    .await;
    assert!(
        matches!(enable, Err(apikeys::write::WriteError::LeakedSecret)),
        "{enable:?}"
    );
    // A roll drops the leaked secret at once, though it asks for an hour of grace; then
    // the key may be enabled, the reason goes, and the leaked secret is nobody's.
    apikeys::write::roll_key(
        &app.store,
        &policy(),
        &ctx(),
        &org,
        key.id,
        3600,
        None,
        None,
    )
    .await
    .unwrap();
    assert!(set_state(&app, &org, key.id, KeyState::Active).await);
    let enabled = stored(&app, &org, key.id).await.unwrap();
    assert_eq!(enabled.disabled_reason, None);
    let view = serde_json::to_value(enabled.view(Utc::now())).unwrap();
    assert!(view.get("disabled_reason").is_none(), "{view}");
    let again = handle(&app, &report).await;
    assert_eq!(labels(&again), [Label::FalsePositive, Label::FalsePositive]);
    assert!(again.revocations.is_empty());
    let actions: Vec<Action> = events(&app, &org).await.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            Action::Created,
            Action::Leaked,
            Action::Rolled,
            Action::Enabled
        ]
    );
}

#[tokio::test]
async fn a_secret_dropped_before_its_revocation_is_left_alone_and_a_disabled_key_is_marked() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "k")).await;
    let leak = Leak {
        url: "u".into(),
        source: "content".into(),
    };
    let github = WriteContext::github("gh-req-2");
    // Disabled by its owner between the lookup and the revocation: marked all the same.
    assert!(set_state(&app, &org, key.id, KeyState::Disabled).await);
    let r = revoke_leaked(
        &app.store,
        &policy(),
        &github,
        &org,
        key.id,
        &secret.hash(),
        &leak,
    )
    .await
    .unwrap();
    assert!(matches!(r, Revocation::Revoked(_)), "{r:?}");
    let trail = events(&app, &org).await;
    // Rolled with no grace: the leaked secret is no longer the key's.
    let (other, old) = create(&app, new_key(&org, "rolled")).await;
    apikeys::write::roll_key(&app.store, &policy(), &ctx(), &org, other.id, 0, None, None)
        .await
        .unwrap();
    let r = revoke_leaked(
        &app.store,
        &policy(),
        &github,
        &org,
        other.id,
        &old.hash(),
        &leak,
    )
    .await
    .unwrap();
    assert_eq!(r, Revocation::NotLive);
    assert_eq!(
        stored(&app, &org, other.id).await.unwrap().state,
        KeyState::Active
    );
    let leaked = events(&app, &org)
        .await
        .iter()
        .filter(|e| e.action == Action::Leaked)
        .count();
    assert_eq!(leaked, 1, "the disabled key's only");
    assert_eq!(
        events(&app, &org).await.len(),
        trail.len() + 2,
        "create and roll only"
    );
    // A previous secret still in its grace period is live: its key is revoked.
    let (third, before_roll) = create(&app, new_key(&org, "in grace")).await;
    apikeys::write::roll_key(
        &app.store,
        &policy(),
        &ctx(),
        &org,
        third.id,
        3600,
        None,
        None,
    )
    .await
    .unwrap();
    let h = handle(&app, &[reported(before_roll.expose(), "u", "content")]).await;
    assert_eq!(labels(&h), [Label::TruePositive]);
    assert_eq!(
        stored(&app, &org, third.id).await.unwrap().state,
        KeyState::Disabled
    );
}

#[tokio::test]
async fn a_previous_secret_past_its_grace_changes_nothing_when_reported() {
    let app = app().await;
    let org = org();
    let (key, old) = create(&app, new_key(&org, "rolled")).await;
    apikeys::write::roll_key(&app.store, &policy(), &ctx(), &org, key.id, 1, None, None)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let trail = events(&app, &org).await;
    // Its credential is still there (DynamoDB's TTL is late), but it can never work again:
    // the live key is not disabled for it.
    let h = handle(&app, &[reported(old.expose(), "u", "content")]).await;
    assert_eq!(labels(&h), [Label::TruePositive]);
    assert!(
        matches!(h.revocations[..], [(_, Revocation::NotLive)]),
        "{:?}",
        h.revocations
    );
    assert_eq!(
        stored(&app, &org, key.id).await.unwrap().state,
        KeyState::Active
    );
    assert_eq!(events(&app, &org).await, trail);
}

#[tokio::test]
async fn a_key_revoked_before_leaks_were_marked_cannot_be_enabled_unrolled() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "revoked long ago")).await;
    handle(&app, &[reported(secret.expose(), "u", "content")]).await;
    // As an item revoked by a version that kept no marks: disabled for a leak, no hashes.
    app.store
        .client()
        .update_item()
        .table_name(app.store.table())
        .key("pk", AttributeValue::S(format!("ORG#{org}")))
        .key("sk", AttributeValue::S(format!("KEY#{}", key.id)))
        .update_expression("REMOVE leaked_hashes")
        .send()
        .await
        .expect("remove the marks");
    let enable = apikeys::write::set_state(
        &app.store,
        &policy(),
        &ctx(),
        &org,
        key.id,
        KeyState::Active,
    )
    .await;
    assert!(
        matches!(enable, Err(apikeys::write::WriteError::LeakedSecret)),
        "{enable:?}"
    );
    // A replayed report records nothing twice.
    let trail = events(&app, &org).await;
    let h = handle(&app, &[reported(secret.expose(), "u", "content")]).await;
    assert!(h.revocations.is_empty(), "{:?}", h.revocations);
    assert_eq!(events(&app, &org).await, trail);
}

#[tokio::test]
async fn a_report_larger_than_one_batch_is_looked_up_whole() {
    let app = app().await;
    let org = org();
    let mut report: Vec<ReportedToken> = (0..150u8)
        .map(|i| {
            let s = Secret::from_random([i; 24]);
            reported(s.expose(), "", "content")
        })
        .collect();
    let mut live = Vec::new();
    for name in ["first", "last"] {
        let (key, secret) = create(&app, new_key(&org, name)).await;
        live.push(key.id);
        report.push(reported(secret.expose(), "u", "content"));
    }
    let h = handle(&app, &report).await;
    let true_positives = labels(&h)
        .iter()
        .filter(|l| **l == Label::TruePositive)
        .count();
    assert_eq!(true_positives, 2);
    assert_eq!(h.feedback.len(), 152);
    for id in live {
        assert_eq!(
            stored(&app, &org, id).await.unwrap().state,
            KeyState::Disabled
        );
    }
}
