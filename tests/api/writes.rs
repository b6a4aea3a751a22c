//! The write side on DynamoDB Local, at the domain level: each write is one transaction
//! with exactly one audit event, conditional on the version read; rolls keep the previous
//! secret for its grace period; idempotent creates and rolls replay; the key count stays
//! exact under concurrency; another organization's key is missing.

use std::collections::HashSet;

use apikeys::App;
use apikeys::audit::{Action, ActorKind, Event};
use apikeys::auth::authenticate;
use apikeys::error::AuthFailure;
use apikeys::http::problem::ApiError;
use apikeys::key::{ApiKey, KeyId, KeyState, OrgId, Permission};
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys::store::{AuditReader, CredentialStore, EventRange, KeyReader, StoredKey};
use apikeys::write::{
    self, Idempotency, InvalidWrite, KeyChange, MAX_GRACE_SECS, WriteContext, WriteError,
};
use apikeys_tests::hooked::{Hooked, WriteHook};
use apikeys_tests::*;
use chrono::{DateTime, Duration, Utc};
use lambda_http::http::{HeaderMap, HeaderValue};

/// Every event of the organization, oldest first.
async fn events(app: &App<DynamoStore>, org: &OrgId) -> Vec<Event> {
    app.store
        .read_events(org, None, EventRange::ALL, true, 1000)
        .await
        .expect("read the events")
}

fn actions(events: &[Event]) -> Vec<Action> {
    events.iter().map(|e| e.action).collect()
}

/// A write by an unrestricted, never-expiring HTTP caller at `now`.
fn caller_ctx(caller: KeyId, now: DateTime<Utc>) -> WriteContext {
    WriteContext {
        actor: apikeys::audit::Actor::api_key(caller),
        authority: apikeys::authority::Authority::operator(),
        request_id: "req-1".into(),
        source_ip: Some("203.0.113.9".into()),
        now,
    }
    .at(now)
}

/// How authentication answers this secret at `now` (straight from the table).
async fn auth_at(
    app: &App<DynamoStore>,
    secret: &Secret,
    now: DateTime<Utc>,
) -> Result<KeyId, ApiError> {
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_str(secret.expose()).unwrap());
    authenticate(&app.store, &headers, now)
        .await
        .map(|c| c.key_id)
        .map_err(ApiError::from)
}

#[tokio::test]
async fn every_write_records_exactly_one_event_and_a_failed_write_none() {
    let app = app().await;
    let (org, other) = (org(), org());
    let policy = policy();
    let caller = KeyId::generate();
    let t0 = Utc::now();
    let ctx = |s: i64| caller_ctx(caller, t0 + Duration::seconds(s));

    let created = write::create(&app.store, &policy, &ctx(0), new_key(&org, "ci"), None)
        .await
        .unwrap();
    let key = created.key;
    let change = KeyChange {
        restricted: Some(true),
        permissions: Some(Some(vec![Permission::CallsView])),
        ..KeyChange::name("ci deploy")
    };
    let key = write::update_key(
        &app.store,
        &policy,
        &ctx(1),
        &org,
        key.id,
        &change,
        Some(&[1]),
    )
    .await
    .unwrap();
    assert_eq!((key.version, key.name.as_str()), (2, "ci deploy"));
    let disabled = KeyChange::state(KeyState::Disabled);
    let key = write::update_key(&app.store, &policy, &ctx(2), &org, key.id, &disabled, None)
        .await
        .unwrap();
    let key = write::set_state(&app.store, &policy, &ctx(3), &org, key.id, KeyState::Active)
        .await
        .unwrap();
    let rolled = write::roll_key(&app.store, &policy, &ctx(4), &org, key.id, 60, None, None)
        .await
        .unwrap();
    assert_eq!(rolled.key.id, key.id);

    // Failed writes: each is refused and leaves no event.
    let x = KeyChange::name("x");
    let stale = write::update_key(&app.store, &policy, &ctx(5), &org, key.id, &x, Some(&[1])).await;
    assert!(
        matches!(stale, Err(WriteError::VersionMismatch)),
        "{stale:?}"
    );
    let newline = KeyChange::name("\n");
    let bad_name =
        write::update_key(&app.store, &policy, &ctx(5), &org, key.id, &newline, None).await;
    assert!(matches!(
        bad_name,
        Err(WriteError::Invalid(InvalidWrite::Name))
    ));
    let long = write::roll_key(
        &app.store,
        &policy,
        &ctx(5),
        &org,
        key.id,
        MAX_GRACE_SECS + 1,
        None,
        None,
    )
    .await;
    assert!(matches!(
        long,
        Err(WriteError::Invalid(InvalidWrite::Grace(_)))
    ));
    let missing =
        write::delete_key(&app.store, &policy, &ctx(5), &org, KeyId::generate(), None).await;
    assert!(matches!(missing, Err(WriteError::NotFound)));
    let foreign = write::delete_key(&app.store, &policy, &ctx(5), &other, key.id, None).await;
    assert!(matches!(foreign, Err(WriteError::NotFound)));
    let wrong_version =
        write::delete_key(&app.store, &policy, &ctx(5), &org, key.id, Some(&[1])).await;
    assert!(matches!(wrong_version, Err(WriteError::VersionMismatch)));
    let bad_create = write::create(&app.store, &policy, &ctx(5), new_key(&org, ""), None).await;
    assert!(matches!(
        bad_create,
        Err(WriteError::Invalid(InvalidWrite::Name))
    ));
    // Nothing to change: no write, no event.
    let same = KeyChange::name(rolled.key.name.clone());
    let same = write::update_key(&app.store, &policy, &ctx(5), &org, key.id, &same, None)
        .await
        .unwrap();
    assert_eq!(same, rolled.key);

    let deleted = write::delete_key(
        &app.store,
        &policy,
        &ctx(6),
        &org,
        key.id,
        Some(&[rolled.key.version]),
    )
    .await
    .unwrap();
    assert_eq!(deleted.id, key.id);

    let got = events(&app, &org).await;
    assert_eq!(
        actions(&got),
        [
            Action::Created,
            Action::Updated,
            Action::Disabled,
            Action::Enabled,
            Action::Rolled,
            Action::Deleted
        ]
    );
    assert!(events(&app, &other).await.is_empty());
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.key_id, Some(key.id));
        assert_eq!(e.org, org);
        let at = t0 + Duration::seconds([0, 1, 2, 3, 4, 6][i]);
        assert_eq!(e.time.timestamp_millis(), at.timestamp_millis());
        assert_eq!(e.id.time(), Some(e.time));
        assert_eq!(e.actor.kind, ActorKind::ApiKey);
        assert_eq!(e.actor.id, caller.to_string());
        assert_eq!(e.request_id, "req-1");
        assert_eq!(e.source_ip.as_deref(), Some("203.0.113.9"));
        // DynamoDB's TTL counts in seconds.
        assert_eq!(
            e.retain_until.timestamp(),
            (e.time + Duration::days(365)).timestamp()
        );
    }
    let update = serde_json::to_value(&got[1].changes).unwrap();
    assert_eq!(
        update,
        serde_json::json!({
            "name": {"from": "ci", "to": "ci deploy"},
            "restricted": {"from": false, "to": true},
            "permissions": {"from": null, "to": ["calls.view"]},
        })
    );
    assert_eq!(got[2].changes["status"].to, "disabled");
    assert_eq!(got[5].changes["name"].from, "ci deploy");
    assert_eq!(got[5].changes["name"].to, serde_json::Value::Null);

    // No event holds a secret or a hash.
    let dump = format!(
        "{:?}",
        scan(&app)
            .await
            .iter()
            .filter(|i| i.contains_key("action"))
            .collect::<Vec<_>>()
    );
    assert_no_leak("the events", &dump, &[created.secret, rolled.secret], false);
}

#[tokio::test]
async fn an_update_reaches_every_credential_and_keeps_the_key_as_read_otherwise() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "k")).await;
    let rolled = write::roll_key(&app.store, &policy(), &ctx(), &org, key.id, 600, None, None)
        .await
        .unwrap();
    let expires = Utc::now() + Duration::days(30);
    let change = KeyChange {
        restricted: Some(true),
        permissions: Some(Some(vec![Permission::ApiKeysView])),
        expires: Some(Some(expires)),
        status: Some(KeyState::Disabled),
        ..KeyChange::default()
    };
    let at = rolled.key.updated + Duration::seconds(7);
    let ctx = ctx().at(at);
    let updated = write::update_key(&app.store, &policy(), &ctx, &org, key.id, &change, None)
        .await
        .unwrap();
    assert_eq!(
        (updated.updated.timestamp_millis(), updated.version),
        (at.timestamp_millis(), rolled.key.version + 1),
        "an update stamps its time and moves the version"
    );
    assert_eq!(updated.last_four, rolled.key.last_four);
    assert_eq!(updated.creator_id, key.creator_id);
    assert_eq!(
        app.store.get_key(&org, key.id).await.unwrap(),
        Some(updated.clone())
    );

    let current = app
        .store
        .find_credential(&rolled.secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.state, KeyState::Disabled);
    assert_eq!(current.access, updated.access);
    assert_eq!(
        current.expires.map(|t| t.timestamp_millis()),
        Some(expires.timestamp_millis())
    );
    let previous = app
        .store
        .find_credential(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        previous.state,
        KeyState::Disabled,
        "the previous secret too"
    );
    assert_eq!(previous.access, updated.access);
    assert!(
        previous.expires.unwrap() < expires,
        "it still ends with its grace period"
    );
}

#[tokio::test]
async fn of_two_concurrent_updates_one_wins_and_the_other_gets_the_typed_conflict() {
    let app = app().await;
    let org = org();
    let (key, _) = create(&app, new_key(&org, "k")).await;
    for round in 0..3 {
        let before = app.store.get_key(&org, key.id).await.unwrap().unwrap();
        // Both writers have read the key before either commits: the race is forced, not
        // left to the scheduler.
        let store = std::sync::Arc::new(Hooked::with(app.store.clone(), BothRead::default()));
        let mut set = tokio::task::JoinSet::new();
        for (i, expected) in [(0, None), (1, Some(vec![before.version]))] {
            let (store, org) = (store.clone(), org.clone());
            set.spawn(async move {
                let store = &*store;
                let change = KeyChange::name(format!("round {round} writer {i}"));
                let expected = expected.as_deref();
                write::update_key(store, &policy(), &ctx(), &org, key.id, &change, expected).await
            });
        }
        let outcomes = set.join_all().await;
        let won: Vec<&ApiKey> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "{outcomes:?}");
        let lost = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
        assert!(
            matches!(lost, WriteError::Conflict | WriteError::VersionMismatch),
            "{lost:?}"
        );
        let now = app.store.get_key(&org, key.id).await.unwrap().unwrap();
        assert_eq!(&now, won[0], "the winner's change is the one stored");
        assert_eq!(now.version, before.version + 1);
    }
    let got = events(&app, &org).await;
    assert_eq!(
        actions(&got),
        [
            Action::Created,
            Action::Updated,
            Action::Updated,
            Action::Updated
        ]
    );
}

#[tokio::test]
async fn a_rolled_out_secret_works_until_its_grace_ends_and_a_second_roll_ends_it_at_once() {
    let app = app().await;
    let org = org();
    let (key, first) = create(&app, new_key(&org, "k")).await;
    let t0 = Utc::now();
    let roll = |at: DateTime<Utc>, grace| {
        let store = app.store.clone();
        let org = org.clone();
        async move {
            write::roll_key(
                &store,
                &policy(),
                &ctx().at(at),
                &org,
                key.id,
                grace,
                None,
                None,
            )
            .await
            .unwrap()
        }
    };
    let second = roll(t0, 60).await;
    assert_eq!(second.key.id, key.id);
    assert_eq!(second.key.last_four, second.secret.last_four());
    assert_ne!(second.secret, first);
    assert_eq!(auth_at(&app, &second.secret, t0).await.unwrap(), key.id);
    assert_eq!(
        auth_at(&app, &first, t0 + Duration::seconds(59))
            .await
            .unwrap(),
        key.id
    );
    assert!(matches!(
        auth_at(&app, &first, t0 + Duration::seconds(60)).await,
        Err(ApiError::Unauthenticated(AuthFailure::Expired))
    ));

    // A second roll within the grace: the first secret stops at once; the second keeps its
    // own grace.
    let third = roll(t0 + Duration::seconds(10), 30).await;
    assert!(
        app.store
            .find_credential(&first.hash())
            .await
            .unwrap()
            .is_none()
    );
    let at = t0 + Duration::seconds(11);
    assert!(matches!(
        auth_at(&app, &first, at).await,
        Err(ApiError::Unauthenticated(AuthFailure::Invalid))
    ));
    assert_eq!(auth_at(&app, &second.secret, at).await.unwrap(), key.id);
    assert_eq!(auth_at(&app, &third.secret, at).await.unwrap(), key.id);
    assert!(
        auth_at(&app, &second.secret, t0 + Duration::seconds(40))
            .await
            .is_err()
    );

    // A grace of 0 ends the previous secret at once.
    let fourth = roll(t0 + Duration::seconds(20), 0).await;
    assert!(
        app.store
            .find_credential(&third.secret.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        app.store
            .find_credential(&second.secret.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        auth_at(&app, &fourth.secret, t0 + Duration::seconds(20))
            .await
            .unwrap(),
        key.id
    );

    let got = events(&app, &org).await;
    let rolls: Vec<&Event> = got.iter().filter(|e| e.action == Action::Rolled).collect();
    assert_eq!(rolls.len(), 3);
    let ends: Vec<(serde_json::Value, serde_json::Value)> = rolls
        .iter()
        .map(|e| {
            let c = &e.changes["previous_secret_expires_date"];
            (c.from.clone(), c.to.clone())
        })
        .collect();
    let t = |s: i64| apikeys::audit::time_value(t0 + Duration::seconds(s));
    assert_eq!(
        ends,
        [
            (serde_json::Value::Null, t(60)),
            (t(60), t(40)),
            (t(40), t(20)),
        ]
    );
    assert_eq!(
        rolls[0].changes["last_four_digits"].to,
        second.secret.last_four()
    );

    // Deleting the key removes every credential, the previous one in its grace included.
    let fifth = roll(t0 + Duration::seconds(21), 600).await;
    assert!(delete(&app, &org, key.id).await);
    for s in [&fourth.secret, &fifth.secret] {
        assert!(
            app.store
                .find_credential(&s.hash())
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(app.store.key_count(&org).await.unwrap(), 0);
}

#[tokio::test]
async fn an_idempotent_create_replays_its_key_and_secret_and_refuses_another_body() {
    let app = app().await;
    let org = org();
    let caller = KeyId::generate();
    let idem = Idempotency::new("create-1", br#"{"name":"ci"}"#).unwrap();
    let ctx = || caller_ctx(caller, Utc::now());
    let first = write::create(
        &app.store,
        &policy(),
        &ctx(),
        new_key(&org, "ci"),
        Some(&idem),
    )
    .await
    .unwrap();
    assert!(!first.replayed);
    let again = write::create(
        &app.store,
        &policy(),
        &ctx(),
        new_key(&org, "ci"),
        Some(&idem),
    )
    .await
    .unwrap();
    assert!(again.replayed);
    assert_eq!((&again.key, &again.secret), (&first.key, &first.secret));
    assert_eq!(
        auth_at(&app, &again.secret, Utc::now()).await.unwrap(),
        first.key.id
    );

    let other_body = Idempotency::new("create-1", br#"{"name":"cd"}"#).unwrap();
    let refused = write::create(
        &app.store,
        &policy(),
        &ctx(),
        new_key(&org, "cd"),
        Some(&other_body),
    )
    .await;
    assert!(
        matches!(refused, Err(WriteError::IdempotencyMismatch)),
        "{refused:?}"
    );
    // The same key used for a roll is another request too.
    let as_roll = write::roll_key(
        &app.store,
        &policy(),
        &ctx(),
        &org,
        first.key.id,
        0,
        None,
        Some(&idem),
    )
    .await;
    assert!(
        matches!(as_roll, Err(WriteError::IdempotencyMismatch)),
        "{as_roll:?}"
    );

    // Another caller's key of the same name is its own.
    let other_caller = caller_ctx(KeyId::generate(), Utc::now());
    let theirs = write::create(
        &app.store,
        &policy(),
        &other_caller,
        new_key(&org, "ci"),
        Some(&idem),
    )
    .await
    .unwrap();
    assert_ne!(theirs.key.id, first.key.id);

    // After the window, the key names a new request.
    let later = caller_ctx(
        caller,
        Utc::now() + write::IDEMPOTENCY_WINDOW + Duration::seconds(1),
    );
    let fresh = write::create(
        &app.store,
        &policy(),
        &later,
        new_key(&org, "cd"),
        Some(&other_body),
    )
    .await
    .unwrap();
    assert!(!fresh.replayed);

    assert_eq!(app.store.key_count(&org).await.unwrap(), 3);
    assert_eq!(actions(&events(&app, &org).await), [Action::Created; 3]);
    // No secret in the table: the records hold a nonce and a hash.
    let dump = format!("{:?}", scan(&app).await);
    for s in [&first.secret, &theirs.secret, &fresh.secret] {
        assert!(!dump.contains(s.expose()));
    }
}

#[tokio::test]
async fn concurrent_idempotent_creates_and_rolls_make_one_key_one_roll_and_one_answer() {
    let app = app().await;
    let org = org();
    let caller = KeyId::generate();
    let idem = Idempotency::new("burst", br#"{"name":"burst"}"#).unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, org, idem) = (app.store.clone(), org.clone(), idem.clone());
        set.spawn(async move {
            let ctx = caller_ctx(caller, Utc::now());
            write::create(&store, &policy(), &ctx, new_key(&org, "burst"), Some(&idem)).await
        });
    }
    let answers: Vec<_> = set
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("every retry is answered"))
        .collect();
    let ids: HashSet<KeyId> = answers.iter().map(|a| a.key.id).collect();
    let secrets: HashSet<String> = answers
        .iter()
        .map(|a| a.secret.expose().to_owned())
        .collect();
    assert_eq!((ids.len(), secrets.len()), (1, 1));
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    let key = answers[0].key.clone();
    assert_eq!(app.store.key_count(&org).await.unwrap(), 1);

    let roll = Idempotency::new("roll-burst", br#"{"grace_period_seconds":60}"#).unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, org, roll) = (app.store.clone(), org.clone(), roll.clone());
        set.spawn(async move {
            let ctx = caller_ctx(caller, Utc::now());
            write::roll_key(&store, &policy(), &ctx, &org, key.id, 60, None, Some(&roll)).await
        });
    }
    let rolled: Vec<_> = set
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("every retry is answered"))
        .collect();
    let secrets: HashSet<String> = rolled
        .iter()
        .map(|r| r.secret.expose().to_owned())
        .collect();
    assert_eq!(secrets.len(), 1, "one secret for all");
    assert_eq!(rolled.iter().filter(|r| !r.replayed).count(), 1);
    let stored = app.store.get_key(&org, key.id).await.unwrap().unwrap();
    assert_eq!(stored.version, key.version + 1, "rolled once");
    assert_eq!(stored.last_four, rolled[0].secret.last_four());
    // A sequential retry too.
    let again = write::roll_key(
        &app.store,
        &policy(),
        &caller_ctx(caller, Utc::now()),
        &org,
        key.id,
        60,
        None,
        Some(&roll),
    )
    .await
    .unwrap();
    assert!(again.replayed);
    assert_eq!(again.secret, rolled[0].secret);
    assert_eq!(
        actions(&events(&app, &org).await),
        [Action::Created, Action::Rolled]
    );
}

#[tokio::test]
async fn the_key_count_stays_exact_under_concurrent_creates_and_deletes() {
    let app = app().await;
    let org = org();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..60 {
        let (store, org) = (app.store.clone(), org.clone());
        set.spawn(async move { write::create_key(&store, new_key(&org, &format!("k{i}"))).await });
    }
    let keys: Vec<ApiKey> = set
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("create").0)
        .collect();
    assert_eq!(app.store.key_count(&org).await.unwrap(), 60);

    // 30 deletes (each twice at once) and 30 creates, all at the same time.
    let mut set = tokio::task::JoinSet::new();
    for key in &keys[..30] {
        for _ in 0..2 {
            let (store, org, id) = (app.store.clone(), org.clone(), key.id);
            set.spawn(async move { delete_in(&store, &org, id).await });
        }
    }
    for i in 0..30 {
        let (store, org) = (app.store.clone(), org.clone());
        set.spawn(async move {
            write::create_key(&store, new_key(&org, &format!("n{i}")))
                .await
                .is_ok()
        });
    }
    let outcomes = set.join_all().await;
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        60,
        "30 deletes and 30 creates"
    );
    let listed = app
        .store
        .read_run(&org, None, true, 1000)
        .await
        .unwrap()
        .len() as u64;
    assert_eq!(listed, 60);
    assert_eq!(app.store.key_count(&org).await.unwrap(), listed);
    let got = events(&app, &org).await;
    assert_eq!(
        got.iter().filter(|e| e.action == Action::Deleted).count(),
        30
    );
    assert_eq!(
        got.iter().filter(|e| e.action == Action::Created).count(),
        90
    );
}

#[tokio::test]
async fn another_organizations_key_is_not_found_by_any_write_and_stays_unchanged() {
    let app = app().await;
    let (mine, theirs) = (org(), org());
    let (key, secret) = create(&app, new_key(&theirs, "theirs")).await;
    let before_items = scan(&app).await.len();
    let policy = policy();
    let ctx = ctx();
    let outcomes = [
        write::update_key(
            &app.store,
            &policy,
            &ctx,
            &mine,
            key.id,
            &KeyChange::name("mine"),
            None,
        )
        .await
        .map(|_| ()),
        write::set_state(&app.store, &policy, &ctx, &mine, key.id, KeyState::Disabled)
            .await
            .map(|_| ()),
        write::roll_key(&app.store, &policy, &ctx, &mine, key.id, 0, None, None)
            .await
            .map(|_| ()),
        write::delete_key(&app.store, &policy, &ctx, &mine, key.id, None)
            .await
            .map(|_| ()),
    ];
    for o in outcomes {
        assert!(matches!(o, Err(WriteError::NotFound)), "{o:?}");
    }
    assert_eq!(
        app.store.get_key(&theirs, key.id).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(auth_at(&app, &secret, Utc::now()).await.unwrap(), key.id);
    assert_eq!(scan(&app).await.len(), before_items, "nothing written");
    assert!(events(&app, &mine).await.is_empty());
    assert_eq!(events(&app, &theirs).await.len(), 1);
}

/// Holds each of the first two reads of a key until both have been made.
struct BothRead {
    reads: std::sync::atomic::AtomicUsize,
    barrier: tokio::sync::Barrier,
}

impl Default for BothRead {
    fn default() -> Self {
        BothRead {
            reads: std::sync::atomic::AtomicUsize::new(0),
            barrier: tokio::sync::Barrier::new(2),
        }
    }
}

impl WriteHook for BothRead {
    async fn after_read(&self, _store: &DynamoStore, _read: Option<&StoredKey>) {
        if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            self.barrier.wait().await;
        }
    }
}
