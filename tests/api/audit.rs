//! The audit trail on DynamoDB Local: events listed newest first with the key list's paging
//! rules (limit, order, after, before, sealed cursors), filtered by action, key and time,
//! one key's events listed after it is deleted, and organizations kept apart.

use apikeys::App;
use apikeys::audit::Action;
use apikeys::key::{KeyId, KeyState, OrgId};
use apikeys::page::{EventCursors, EventListRequest, EventPage, RawEventParams, list_events};
use apikeys::store::dynamo::DynamoStore;
use apikeys::write::{self, WriteContext};
use apikeys_tests::*;
use chrono::{DateTime, Duration, TimeZone, Utc};

fn cursors() -> EventCursors {
    EventCursors::parse(CURSOR_SECRET).unwrap()
}

async fn page(
    app: &App<DynamoStore>,
    org: &OrgId,
    path_key: Option<KeyId>,
    raw: RawEventParams<'_>,
) -> EventPage {
    let request = EventListRequest::parse(raw, org, path_key, &cursors()).expect("valid");
    list_events(&app.store, org, &request, &cursors(), Utc::now())
        .await
        .expect("a page")
}

fn ids(p: &EventPage) -> Vec<String> {
    p.events.iter().map(|e| e.id.to_string()).collect()
}

/// Two keys in `org`, written at known times a second apart from `t0`: a created, b
/// created, a disabled, b rolled, a enabled, a deleted. Returns (a, b).
async fn history(app: &App<DynamoStore>, org: &OrgId, t0: DateTime<Utc>) -> (KeyId, KeyId) {
    let p = policy();
    let at = |s: i64| WriteContext::cli().at(t0 + Duration::seconds(s));
    let a = write::create(&app.store, &p, &at(0), new_key(org, "a"), None)
        .await
        .unwrap()
        .key
        .id;
    let b = write::create(&app.store, &p, &at(1), new_key(org, "b"), None)
        .await
        .unwrap()
        .key
        .id;
    write::set_state(&app.store, &p, &at(2), org, a, KeyState::Disabled)
        .await
        .unwrap();
    write::roll_key(&app.store, &p, &at(3), org, b, 0, None, None)
        .await
        .unwrap();
    write::set_state(&app.store, &p, &at(4), org, a, KeyState::Active)
        .await
        .unwrap();
    write::delete_key(&app.store, &p, &at(5), org, a, None)
        .await
        .unwrap();
    (a, b)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

#[tokio::test]
async fn events_come_newest_first_and_cursors_walk_them_in_both_orders() {
    let app = app().await;
    let org = org();
    history(&app, &org, t0()).await;
    let all = page(&app, &org, None, RawEventParams::default()).await;
    let actions: Vec<Action> = all.events.iter().map(|e| e.action).collect();
    use Action::*;
    assert_eq!(
        actions,
        [Deleted, Enabled, Rolled, Disabled, Created, Created]
    );
    assert!(!all.has_more && all.next_cursor.is_none());
    assert_eq!(all.budget_exhausted, None);

    for order in ["asc", "desc"] {
        let mut walked = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let p = page(
                &app,
                &org,
                None,
                RawEventParams {
                    limit: Some("4"),
                    order: Some(order),
                    cursor: cursor.as_deref(),
                    ..Default::default()
                },
            )
            .await;
            walked.extend(ids(&p));
            assert_eq!(p.has_more, p.next_cursor.is_some());
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut want = ids(&all);
        if order == "asc" {
            want.reverse();
        }
        assert_eq!(walked, want, "{order}");
    }

    // after and before name positions, as on the key list.
    let newest = ids(&all);
    let after = page(
        &app,
        &org,
        None,
        RawEventParams {
            after: Some(&newest[1]),
            limit: Some("2"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&after), newest[2..4]);
    assert!(after.has_more);
    let before = page(
        &app,
        &org,
        None,
        RawEventParams {
            before: Some(&newest[4]),
            limit: Some("2"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&before),
        newest[2..4],
        "the page just before, newest first"
    );
    assert!(before.has_more);
}

#[tokio::test]
async fn filters_by_action_key_and_time_combine_and_a_deleted_keys_events_stay_listed() {
    let app = app().await;
    let org = org();
    let (a, b) = history(&app, &org, t0()).await;
    let of = |p: &EventPage| -> Vec<(Action, KeyId)> {
        p.events
            .iter()
            .map(|e| (e.action, e.key_id.unwrap()))
            .collect()
    };
    use Action::*;

    let a_route = page(&app, &org, Some(a), RawEventParams::default()).await;
    assert_eq!(
        of(&a_route),
        [(Deleted, a), (Enabled, a), (Disabled, a), (Created, a)],
        "the deleted key's events are all there"
    );
    let a_str = a.to_string();
    let by_param = page(
        &app,
        &org,
        None,
        RawEventParams {
            key_id: Some(&a_str),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&by_param), ids(&a_route));

    let created = page(
        &app,
        &org,
        None,
        RawEventParams {
            action: Some("key.created"),
            order: Some("asc"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(of(&created), [(Created, a), (Created, b)]);
    assert_eq!(created.budget_exhausted, Some(false));

    // since is inclusive, until exclusive.
    let since = (t0() + Duration::seconds(2)).to_rfc3339();
    let until = (t0() + Duration::seconds(4)).to_rfc3339();
    let window = page(
        &app,
        &org,
        None,
        RawEventParams {
            since: Some(&since),
            until: Some(&until),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(of(&window), [(Rolled, b), (Disabled, a)]);
    let b_str = b.to_string();
    let combined = page(
        &app,
        &org,
        None,
        RawEventParams {
            since: Some(&since),
            key_id: Some(&b_str),
            action: Some("key.rolled"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(of(&combined), [(Rolled, b)]);

    // A cursor holds its filters: following it under others is refused.
    let first = page(
        &app,
        &org,
        Some(a),
        RawEventParams {
            limit: Some("1"),
            ..Default::default()
        },
    )
    .await;
    let cursor = first.next_cursor.unwrap();
    let err = EventListRequest::parse(
        RawEventParams {
            cursor: Some(&cursor),
            ..Default::default()
        },
        &org,
        None,
        &cursors(),
    )
    .unwrap_err();
    assert_eq!(err.param, "cursor");
    let next = page(
        &app,
        &org,
        Some(a),
        RawEventParams {
            limit: Some("1"),
            cursor: Some(&cursor),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(of(&next), [(Enabled, a)]);
}

#[tokio::test]
async fn an_organization_sees_none_of_another_organizations_events_and_cannot_use_its_cursors() {
    let app = app().await;
    let (mine, theirs) = (org(), org());
    let (a, _) = history(&app, &theirs, t0()).await;
    let theirs_page = page(
        &app,
        &theirs,
        None,
        RawEventParams {
            limit: Some("1"),
            ..Default::default()
        },
    )
    .await;
    assert!(
        page(&app, &mine, None, RawEventParams::default())
            .await
            .events
            .is_empty()
    );
    assert!(
        page(&app, &mine, Some(a), RawEventParams::default())
            .await
            .events
            .is_empty()
    );
    let a_str = a.to_string();
    let by_param = page(
        &app,
        &mine,
        None,
        RawEventParams {
            key_id: Some(&a_str),
            ..Default::default()
        },
    )
    .await;
    assert!(by_param.events.is_empty());
    let err = EventListRequest::parse(
        RawEventParams {
            cursor: theirs_page.next_cursor.as_deref(),
            ..Default::default()
        },
        &mine,
        None,
        &cursors(),
    )
    .unwrap_err();
    assert_eq!(err.param, "cursor");
}

#[tokio::test]
async fn events_carry_the_tables_ttl_attribute_at_the_end_of_their_retention() {
    let app = app().await;
    let org = org();
    let policy = apikeys::write::WritePolicy {
        event_retention: Duration::days(30),
        ..policy()
    };
    let ctx = WriteContext::cli().at(t0());
    write::create(&app.store, &policy, &ctx, new_key(&org, "k"), None)
        .await
        .unwrap();
    let items = scan(&app).await;
    let event = items
        .iter()
        .find(|i| i.contains_key("action"))
        .expect("the event item");
    let purge_at = event[apikeys::store::dynamo::PURGE_AT].as_n().unwrap();
    assert_eq!(
        purge_at.parse::<i64>().unwrap(),
        (t0() + Duration::days(30)).timestamp()
    );
    assert_eq!(event["actor_type"].as_s().unwrap(), "cli");
}

/// A client tailing the organization's events as docs/api.md says ("Tailing the audit
/// trail"): oldest first, after the last event it has, `settled=true`, every page followed;
/// the page read at `now`. Returns the ids it gets, and moves `position` to the last.
async fn tail(
    app: &App<DynamoStore>,
    org: &OrgId,
    position: &mut Option<String>,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let raw = RawEventParams {
            order: Some("asc"),
            settled: Some("true"),
            after: cursor.is_none().then_some(position.as_deref()).flatten(),
            cursor: cursor.as_deref(),
            ..Default::default()
        };
        let request = EventListRequest::parse(raw, org, None, &cursors()).expect("valid");
        let p = list_events(&app.store, org, &request, &cursors(), now)
            .await
            .expect("a page");
        got.extend(ids(&p));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    if let Some(last) = got.last() {
        *position = Some(last.clone());
    }
    got
}

/// An event's id carries the time its request started, but the event commits with its
/// change, later: a write that started first can commit after one that started after it.
/// A tail that reads only settled events never lists the later one first, so following it
/// with `after=<last id>` does not skip the late one.
#[tokio::test]
async fn a_settled_tail_never_skips_an_event_that_commits_late() {
    use apikeys::page::SETTLE;
    use apikeys_tests::late::LateCommit;
    let app = app().await;
    let org = org();
    let p = policy();
    let long_ago = WriteContext::cli().at(Utc::now() - Duration::hours(1));
    let mut keys = Vec::new();
    for name in ["late", "on time"] {
        let made = write::create(&app.store, &p, &long_ago, new_key(&org, name), None);
        keys.push(made.await.unwrap().key.id);
    }
    let mut position = None;
    let mut listed = tail(&app, &org, &mut position, Utc::now()).await;
    assert_eq!(listed.len(), 2, "the creates, an hour old");

    // The first write gets its event id, then commits only after the second has committed
    // and the client has tailed.
    let started = Utc::now();
    let late = LateCommit::new(app.store.clone());
    let first = WriteContext::cli().at(started);
    let second = WriteContext::cli().at(started + Duration::milliseconds(1));
    let disable_late = write::set_state(&late, &p, &first, &org, keys[0], KeyState::Disabled);
    let meanwhile = async {
        late.holding().await;
        write::set_state(&app.store, &p, &second, &org, keys[1], KeyState::Disabled)
            .await
            .unwrap();
        let seen = tail(&app, &org, &mut position, Utc::now()).await;
        late.release();
        seen
    };
    let (committed, seen) = tokio::join!(disable_late, meanwhile);
    committed.unwrap();
    listed.extend(seen);
    // Later, once both have settled.
    let settled = started + Duration::from_std(SETTLE).unwrap() + Duration::seconds(1);
    listed.extend(tail(&app, &org, &mut position, settled).await);

    let all = page(&app, &org, None, RawEventParams::default()).await;
    let mut every = ids(&all);
    every.reverse();
    assert_eq!(every.len(), 4);
    assert_eq!(listed, every, "each event once, in id order, none skipped");
}
