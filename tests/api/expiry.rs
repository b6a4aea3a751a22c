//! The expiry notices on DynamoDB Local, with the run's clock injected: `key.expiring` the
//! lead time before a key's expiry and `key.expired` at it, each once per key and date
//! however many runs see it (concurrent ones included); a PATCH of the date arms the notices
//! for the new date; keys without an expiry, disabled or deleted get none; each notice lands
//! in its own key's organization.

use apikeys::App;
use apikeys::audit::{Action, ActorKind, Event};
use apikeys::expiry::{NoticePolicy, Summary, run};
use apikeys::key::{KeyId, KeyState, OrgId};
use apikeys::store::dynamo::DynamoStore;
use apikeys::store::{AuditReader, EventRange, KeyWriter};
use apikeys::write::{self, KeyChange, WriteContext};
use apikeys_tests::*;
use chrono::{DateTime, Duration, TimeZone, Utc};

/// The lead time of these tests: the template's default.
fn notices() -> NoticePolicy {
    NoticePolicy::new(7, policy()).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 1, 9, 30, 0).unwrap()
}

/// A key of `org` created at `at`, expiring at `expires`.
async fn key_expiring(
    app: &App<DynamoStore>,
    org: &OrgId,
    at: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
) -> KeyId {
    let new = write::NewKey {
        expires,
        ..new_key(org, "expiring")
    };
    write::create(
        &app.store,
        &policy(),
        &WriteContext::cli().at(at),
        new,
        None,
    )
    .await
    .expect("create a key")
    .key
    .id
}

async fn run_at(app: &App<DynamoStore>, now: DateTime<Utc>) -> Summary {
    let summary = run(&app.store, &notices(), now, "test-run").await.unwrap();
    assert!(summary.complete, "{summary:?}");
    summary
}

/// The expiry notices of `org`, oldest first.
async fn notices_of(app: &App<DynamoStore>, org: &OrgId) -> Vec<Event> {
    let events = app
        .store
        .read_events(org, None, EventRange::ALL, true, 1000)
        .await
        .unwrap();
    events
        .into_iter()
        .filter(|e| matches!(e.action, Action::Expiring | Action::Expired))
        .collect()
}

fn counts(s: &Summary) -> (usize, usize) {
    (s.expiring, s.expired)
}

#[tokio::test]
async fn the_scheduler_yields_key_expiring_once_and_never_twice_for_the_same_key_and_date() {
    let app = app().await;
    let org = org();
    let expires = t0() + Duration::days(10);
    let id = key_expiring(&app, &org, t0(), Some(expires)).await;

    // Not yet: the notice is due 7 days before.
    assert_eq!(counts(&run_at(&app, t0()).await), (0, 0));
    let due = expires - Duration::days(7);
    assert_eq!(
        counts(&run_at(&app, due - Duration::seconds(1)).await),
        (0, 0)
    );
    // Two runs at once: one writes it.
    let policy = notices();
    let (a, b) = tokio::join!(
        run(&app.store, &policy, due, "a"),
        run(&app.store, &policy, due, "b")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.expiring + b.expiring, a.expired + b.expired), (1, 0));
    // Every later run finds it noticed.
    for later in [due, due + Duration::minutes(5), due + Duration::days(2)] {
        assert_eq!(counts(&run_at(&app, later).await), (0, 0));
    }

    let seen = notices_of(&app, &org).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let notice = &seen[0];
    assert_eq!((notice.action, notice.key_id), (Action::Expiring, Some(id)));
    assert_eq!(notice.expires, Some(expires));
    assert_eq!(notice.time, due);
    assert_eq!(notice.actor.kind, ActorKind::Service);
    let view = serde_json::to_value(notice.view()).unwrap();
    assert_eq!(view["action"], "key.expiring");
    assert_eq!(
        view["actor"],
        serde_json::json!({"type": "service", "id": "expiry_notices"})
    );
    assert_eq!(view["expires_date"], "2031-05-11T09:30:00Z");
    assert_eq!(view["changes"], serde_json::json!({}));
}

#[tokio::test]
async fn key_expired_comes_at_the_date_once_and_the_key_leaves_the_index() {
    let app = app().await;
    let org = org();
    let expires = t0() + Duration::days(10);
    let id = key_expiring(&app, &org, t0(), Some(expires)).await;
    assert_eq!(
        counts(&run_at(&app, expires - Duration::days(6)).await),
        (1, 0)
    );
    assert_eq!(
        counts(&run_at(&app, expires - Duration::milliseconds(1)).await),
        (0, 0)
    );
    assert_eq!(counts(&run_at(&app, expires).await), (0, 1));
    for later in [
        expires,
        expires + Duration::hours(1),
        expires + Duration::days(1),
    ] {
        assert_eq!(counts(&run_at(&app, later).await), (0, 0));
    }
    let seen: Vec<(Action, KeyId)> = notices_of(&app, &org)
        .await
        .iter()
        .map(|e| (e.action, e.key_id.unwrap()))
        .collect();
    assert_eq!(seen, [(Action::Expiring, id), (Action::Expired, id)]);
    // A key already expired when a run first sees it gets key.expired only.
    let late = key_expiring(&app, &org, t0(), Some(t0() + Duration::days(1))).await;
    assert_eq!(
        counts(&run_at(&app, t0() + Duration::days(2)).await),
        (0, 1)
    );
    let of_late: Vec<Action> = notices_of(&app, &org)
        .await
        .iter()
        .filter(|e| e.key_id == Some(late))
        .map(|e| e.action)
        .collect();
    assert_eq!(of_late, [Action::Expired]);
}

#[tokio::test]
async fn a_patch_of_the_date_arms_the_notices_for_the_new_date_and_other_patches_do_not() {
    let app = app().await;
    let org = org();
    let first = t0() + Duration::days(10);
    let id = key_expiring(&app, &org, t0(), Some(first)).await;
    let due = first - Duration::days(7);
    assert_eq!(counts(&run_at(&app, due).await), (1, 0));

    // A rename keeps the notices as they are.
    let at = |t| WriteContext::cli().at(t);
    let rename = KeyChange {
        name: Some("renamed".into()),
        ..Default::default()
    };
    write::update_key(&app.store, &policy(), &at(due), &org, id, &rename, None)
        .await
        .unwrap();
    assert_eq!(
        counts(&run_at(&app, due + Duration::hours(1)).await),
        (0, 0)
    );

    // A new date: key.expiring again, for it, 7 days before it; none for the old date.
    let second = first + Duration::days(20);
    let later = KeyChange {
        expires: Some(Some(second)),
        ..Default::default()
    };
    write::update_key(&app.store, &policy(), &at(due), &org, id, &later, None)
        .await
        .unwrap();
    assert_eq!(counts(&run_at(&app, first).await), (0, 0));
    assert_eq!(
        counts(&run_at(&app, second - Duration::days(7)).await),
        (1, 0)
    );
    assert_eq!(counts(&run_at(&app, second).await), (0, 1));
    let seen: Vec<(Action, Option<DateTime<Utc>>)> = notices_of(&app, &org)
        .await
        .iter()
        .map(|e| (e.action, e.expires))
        .collect();
    assert_eq!(
        seen,
        [
            (Action::Expiring, Some(first)),
            (Action::Expiring, Some(second)),
            (Action::Expired, Some(second)),
        ]
    );

    // Removing the expiry takes the key off the index.
    let third = second + Duration::days(30);
    let id2 = key_expiring(&app, &org, second, Some(third)).await;
    let never = KeyChange {
        expires: Some(None),
        ..Default::default()
    };
    write::update_key(&app.store, &policy(), &at(second), &org, id2, &never, None)
        .await
        .unwrap();
    assert_eq!(counts(&run_at(&app, third).await), (0, 0));
}

#[tokio::test]
async fn keys_without_expiry_disabled_or_deleted_get_no_notice_and_an_enabled_one_does() {
    let app = app().await;
    let org = org();
    let expires = t0() + Duration::days(3);
    key_expiring(&app, &org, t0(), None).await;
    let disabled = key_expiring(&app, &org, t0(), Some(expires)).await;
    let deleted = key_expiring(&app, &org, t0(), Some(expires)).await;
    let p = policy();
    let at = WriteContext::cli().at(t0());
    write::set_state(&app.store, &p, &at, &org, disabled, KeyState::Disabled)
        .await
        .unwrap();
    write::delete_key(&app.store, &p, &at, &org, deleted, None)
        .await
        .unwrap();
    assert_eq!(counts(&run_at(&app, t0()).await), (0, 0));
    assert_eq!(counts(&run_at(&app, expires).await), (0, 0));
    assert!(notices_of(&app, &org).await.is_empty());

    // Enabled again before its expiry, the key is noticed as any other.
    let before = expires - Duration::days(1);
    let at = WriteContext::cli().at(before);
    write::set_state(&app.store, &p, &at, &org, disabled, KeyState::Active)
        .await
        .unwrap();
    let later = expires + Duration::days(1);
    let deleted_later = key_expiring(&app, &org, before, Some(later)).await;
    write::delete_key(&app.store, &p, &at, &org, deleted_later, None)
        .await
        .unwrap();
    assert_eq!(counts(&run_at(&app, before).await), (1, 0));
    assert_eq!(counts(&run_at(&app, later).await), (0, 1));
}

#[tokio::test]
async fn each_notice_lands_in_its_own_keys_organization() {
    let app = app().await;
    let (a, b) = (org(), org());
    let expires = t0() + Duration::days(1);
    let mut ids = Vec::new();
    for (i, org) in [&a, &b, &a, &b, &b].into_iter().enumerate() {
        let at = t0() + Duration::seconds(i as i64);
        ids.push((
            org.clone(),
            key_expiring(&app, org, at, Some(expires)).await,
        ));
    }
    assert_eq!(
        counts(&run_at(&app, t0() + Duration::hours(1)).await),
        (5, 0)
    );
    for org in [&a, &b] {
        let mut mine: Vec<KeyId> = ids
            .iter()
            .filter(|(o, _)| o == org)
            .map(|(_, id)| *id)
            .collect();
        let mut noticed: Vec<KeyId> = notices_of(&app, org)
            .await
            .iter()
            .filter_map(|e| e.key_id)
            .collect();
        mine.sort();
        noticed.sort();
        assert_eq!(noticed, mine, "{org}");
    }
}

/// A key written before the index existed carries no `expiry_pk`; the upgrade's backfill
/// (`apikeys backfill-expiry`) lists it, and it then gets its notices.
#[tokio::test]
async fn a_key_written_before_the_index_is_listed_by_the_backfill() {
    let app = app().await;
    let org = org();
    let expires = t0() + Duration::days(10);
    let id = key_expiring(&app, &org, t0(), Some(expires)).await;
    let other = key_expiring(&app, &org, t0(), None).await;
    // As an earlier release wrote it: no listing.
    app.store
        .client()
        .update_item()
        .table_name(app.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ORG#{org}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("KEY#{id}")),
        )
        .update_expression("REMOVE expiry_pk")
        .send()
        .await
        .unwrap();
    assert_eq!(counts(&run_at(&app, expires).await), (0, 0));

    let unlisted = app.store.unlisted_expiring().await.unwrap();
    assert_eq!(unlisted, [(org.clone(), id)], "not {other}");
    let stored = app.store.key_for_write(&org, id).await.unwrap().unwrap();
    assert!(app.store.relist(&stored).await.unwrap());
    assert!(app.store.unlisted_expiring().await.unwrap().is_empty());
    // Relisting a key that changed since it was read does nothing.
    let rename = KeyChange {
        name: Some("renamed".into()),
        ..Default::default()
    };
    let at = WriteContext::cli().at(t0());
    write::update_key(&app.store, &policy(), &at, &org, id, &rename, None)
        .await
        .unwrap();
    assert!(!app.store.relist(&stored).await.unwrap());
    assert_eq!(counts(&run_at(&app, expires).await), (0, 1));
    // A key with both notices is off the index, and not the backfill's either.
    assert!(app.store.unlisted_expiring().await.unwrap().is_empty());
}

/// A write that read the key before a notice was written fails its condition (the notice
/// moved the key's listing, not its version) and the write reads again: the key is never
/// listed back under a notice it already had.
#[tokio::test]
async fn a_write_that_read_the_key_before_a_notice_reads_it_again() {
    let app = app().await;
    let org = org();
    let expires = t0() + Duration::days(3);
    let id = key_expiring(&app, &org, t0(), Some(expires)).await;
    let before = app.store.key_for_write(&org, id).await.unwrap().unwrap();
    assert_eq!(counts(&run_at(&app, t0()).await), (1, 0));

    let mut after = before.clone();
    after.key.name = "renamed".into();
    after.key.version += 1;
    let event = Event {
        id: apikeys::audit::EventId::new_at(t0()),
        time: t0(),
        org: org.clone(),
        action: Action::Updated,
        key_id: Some(id),
        owner_id: None,
        actor: apikeys::audit::Actor::cli("test"),
        changes: Default::default(),
        request_id: "stale".into(),
        source_ip: None,
        leak: None,
        credits: None,
        expires: None,
        retain_until: t0() + Duration::days(1),
    };
    let stale = app.store.replace(&before, &after, &event, None).await;
    assert!(
        matches!(stale, Err(apikeys::store::WriteFailure::Key)),
        "{stale:?}"
    );
    // Through the use case, the write reads again and lands; the key keeps its place.
    let rename = KeyChange {
        name: Some("renamed".into()),
        ..Default::default()
    };
    let at = WriteContext::cli().at(t0());
    write::update_key(&app.store, &policy(), &at, &org, id, &rename, None)
        .await
        .unwrap();
    assert_eq!(counts(&run_at(&app, t0()).await), (0, 0));
    assert_eq!(counts(&run_at(&app, expires).await), (0, 1));
}
