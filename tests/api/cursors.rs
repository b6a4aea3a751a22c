//! Cursor integrity over HTTP: a cursor opens only unchanged, for the organization, order
//! and direction it was issued for. Every bit-flip, truncation, extension or replay is a
//! 422 naming `cursor`, never a 500 and never a page. Rotating the secret keeps cursors
//! in flight valid until the old secret is retired.

use apikeys::App;
use apikeys::page::CursorKeys;
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeZone, Utc};

async fn org_with_keys(app: &App<DynamoStore>, n: usize) -> Secret {
    let org = org();
    let start = Utc.with_ymd_and_hms(2024, 7, 1, 0, 0, 0).unwrap();
    create_many(app, &org, n, start).await;
    admin(app, &org).await
}

async fn cursor(app: &App<DynamoStore>, secret: &Secret, extra: &[(&str, &str)]) -> String {
    let mut call = Call::list(Payload::Rest).query("limit", 2).bearer(secret);
    for (k, v) in extra {
        call = call.query(k, v);
    }
    let reply = call.send(app).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["next_cursor"]
        .as_str()
        .expect("more keys, so a cursor")
        .to_owned()
}

#[track_caller]
fn refused(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 422, "{what}: {}", reply.body);
    reply.problem(422);
    assert_eq!(reply.body["parameter"], "cursor", "{what}");
}

#[tokio::test]
async fn every_bit_flip_of_a_cursor_is_422() {
    let app = app().await;
    let secret = org_with_keys(&app, 5).await;
    let token = cursor(&app, &secret, &[]).await;
    let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        let payload = if bit % 2 == 0 {
            Payload::Rest
        } else {
            Payload::Http
        };
        let reply = Call::list(payload)
            .query("cursor", URL_SAFE_NO_PAD.encode(&b))
            .bearer(&secret)
            .send(&app)
            .await;
        refused(&reply, &format!("bit {bit}"));
    }
    // The untouched cursor still opens.
    let reply = Call::list(Payload::Http)
        .query("cursor", &token)
        .bearer(&secret)
        .send(&app)
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn every_truncation_extension_and_character_change_of_a_cursor_is_422() {
    let app = app().await;
    let secret = org_with_keys(&app, 5).await;
    let token = cursor(&app, &secret, &[("order", "asc")]).await;
    let mut variants: Vec<(String, String)> = (0..token.len())
        .map(|n| (token[..n].to_owned(), format!("prefix {n}")))
        .collect();
    variants.extend((1..token.len()).map(|n| (token[n..].to_owned(), format!("suffix {n}"))));
    for extra in ["A", "=", "==", "AAAA", "%00", " "] {
        variants.push((format!("{token}{extra}"), format!("+{extra:?}")));
    }
    for (i, c) in token.char_indices().step_by(3) {
        let other = if c == 'A' { 'B' } else { 'A' };
        let mut t = token.clone();
        t.replace_range(i..i + 1, &other.to_string());
        variants.push((t, format!("char {i}")));
    }
    // Padded and standard-alphabet spellings of the same bytes are not the cursor either.
    let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    for (engine, name) in [
        (base64::engine::general_purpose::URL_SAFE, "padded"),
        (base64::engine::general_purpose::STANDARD, "standard"),
    ] {
        let t = engine.encode(&bytes);
        if t != token {
            variants.push((t, name.to_owned()));
        }
    }
    for (t, what) in &variants {
        let reply = Call::list(Payload::Rest)
            .query("cursor", t)
            .query("order", "asc")
            .bearer(&secret)
            .send(&app)
            .await;
        refused(&reply, what);
    }
}

#[tokio::test]
async fn a_cursor_replayed_by_another_organization_order_or_position_is_422() {
    let app = app().await;
    let mine = org_with_keys(&app, 5).await;
    let theirs = org_with_keys(&app, 5).await;
    let token = cursor(&app, &mine, &[("order", "asc")]).await;
    let id = apikeys::key::KeyId::generate();
    let replays: Vec<(Call, &str)> = vec![
        (
            Call::list(Payload::Rest)
                .query("cursor", &token)
                .bearer(&theirs),
            "another organization",
        ),
        (
            Call::list(Payload::Http)
                .query("cursor", &token)
                .api_key(&theirs),
            "another organization, X-API-KEY",
        ),
        (
            Call::list(Payload::Rest)
                .query("cursor", &token)
                .query("order", "desc")
                .bearer(&mine),
            "the other order",
        ),
        (
            Call::list(Payload::Rest)
                .query("cursor", &token)
                .query("after", id)
                .bearer(&mine),
            "with after",
        ),
        (
            Call::list(Payload::Http)
                .query("cursor", &token)
                .query("before", id)
                .bearer(&mine),
            "with before",
        ),
        (
            Call::list(Payload::Rest)
                .query("cursor", &token)
                .query("cursor", &token)
                .bearer(&mine),
            "given twice",
        ),
    ];
    for (call, what) in replays {
        refused(&call.send(&app).await, what);
    }
    // A cursor of a backward page keeps its direction: it is refused under the other order
    // too, and accepted under its own.
    let back = cursor(
        &app,
        &mine,
        &[("order", "asc"), ("before", &id.to_string())],
    )
    .await;
    let reply = Call::list(Payload::Rest)
        .query("cursor", &back)
        .query("order", "desc")
        .bearer(&mine)
        .send(&app)
        .await;
    refused(&reply, "backward cursor, other order");
    let reply = Call::list(Payload::Rest)
        .query("cursor", &back)
        .query("order", "asc")
        .bearer(&mine)
        .send(&app)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn rotation_keeps_cursors_in_flight_until_the_old_secret_is_retired() {
    let app = app().await;
    let secret = org_with_keys(&app, 6).await;
    let old = cursor(&app, &secret, &[]).await;
    let with = |config: &str| App {
        store: app.store.clone(),
        callers: apikeys::cache::CallerCache::off(),
        cursors: CursorKeys::parse(config).unwrap(),
        usage: patient_recorder(),
    };
    let new_secret = "rotated-cursor-secret-0000000000000000000";
    // Step 1: the new secret first (it signs), the old one second (it still verifies).
    let rotated = with(&format!("{new_secret},{CURSOR_SECRET}"));
    let reply = Call::list(Payload::Rest)
        .query("cursor", &old)
        .query("limit", 2)
        .bearer(&secret)
        .send(&rotated)
        .await;
    assert_eq!(reply.status, 200, "an old cursor in flight: {}", reply.body);
    let fresh = reply.body["next_cursor"].as_str().unwrap().to_owned();
    // Step 2, once the longest-lived cursor has expired from use: the old secret retired.
    let retired = with(new_secret);
    let reply = Call::list(Payload::Rest)
        .query("cursor", &fresh)
        .bearer(&secret)
        .send(&retired)
        .await;
    assert_eq!(reply.status, 200, "a cursor signed with the new secret");
    refused(
        &Call::list(Payload::Rest)
            .query("cursor", &old)
            .bearer(&secret)
            .send(&retired)
            .await,
        "signed with a retired secret",
    );
    // A cursor from another deployment (another secret) never opens.
    let elsewhere = with("another-deployment-secret-00000000000000");
    refused(
        &Call::list(Payload::Rest)
            .query("cursor", &old)
            .bearer(&secret)
            .send(&elsewhere)
            .await,
        "another deployment",
    );
}
