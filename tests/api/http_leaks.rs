//! `POST /v1/secret_scanning/github` over HTTP, on both API Gateway payloads against
//! DynamoDB Local, with reports signed in the test by a throwaway key pair that the handler
//! is given as the parameter would give it: the signature decided before any token is
//! looked at, a mixed batch, a replay, oversize bodies, what the key's owner then sees, and
//! no token in a response or a log line.

use apikeys::key::{KeyState, OrgId};
use apikeys::leak::assess::token_hash;
use apikeys::secret::Secret;
use apikeys_tests::github::{Signer, github};
use apikeys_tests::*;
use serde_json::{Value, json};

fn entry(token: &str, url: &str, source: &str) -> Value {
    json!({"token": token, "type": "apikeys_api_key", "url": url, "source": source})
}

fn report(p: Payload, entries: &[Value]) -> Call {
    Call::report(p, Value::from(entries.to_vec()).to_string())
}

fn labels(reply: &Reply) -> Vec<String> {
    reply
        .body
        .as_array()
        .unwrap_or_else(|| panic!("an array: {}", reply.body))
        .iter()
        .map(|f| f["label"].as_str().unwrap().to_owned())
        .collect()
}

/// The key's audit events, as its organization's admin reads them.
async fn key_events(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    p: Payload,
    admin: &Secret,
    id: impl ToString,
) -> Vec<Value> {
    let reply = Call::key_events(p, id).bearer(admin).send(app).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_missing_or_bad_signature_is_a_401_before_any_token_is_looked_at() {
    // Every store call fails here: a 401 proves the report went no further.
    let app = unreachable_store().await;
    let stranger = Signer::generate("unknown-key-id");
    let forger = Signer::generate(&github().key_id);
    let secret = Secret::generate().unwrap();
    for p in PAYLOADS {
        let good = || report(p, &[entry(secret.expose(), "", "content")]);
        let garbage = || Call::report(p, "not json at all");
        let cases = [
            (good(), "no signature"),
            (good().signed(&forger), "a signature by another key"),
            (good().signed(&stranger), "an unknown key identifier"),
            (garbage(), "garbage, unsigned"),
            (garbage().signed(&forger), "garbage, forged"),
            (
                good()
                    .header("Github-Public-Key-Identifier", &github().key_id)
                    .header("Github-Public-Key-Signature", "bm90IGEgc2lnbmF0dXJl"),
                "a malformed signature",
            ),
        ];
        for (call, what) in cases {
            let reply = call.send(&app).await;
            reply.problem(401);
            assert!(reply.header("www-authenticate").is_none(), "{what}");
        }
        // Signed by GitHub, the same report reaches the store (here: unavailable).
        let reply = good().signed(github()).send(&app).await;
        reply.problem(503);
        assert_eq!(reply.header("retry-after"), Some("1"));
    }
}

#[tokio::test]
async fn a_mixed_batch_revokes_every_secret_of_ours_and_their_owners_see_why() {
    let app = app().await;
    let (acme, globex) = (org(), org());
    let (acme_admin, globex_admin) = (admin(&app, &acme).await, admin(&app, &globex).await);
    for p in PAYLOADS {
        let (live, live_secret) = create(&app, new_key(&acme, "live")).await;
        let (off, off_secret) = create(&app, new_key(&acme, "off")).await;
        assert!(set_state(&app, &acme, off.id, KeyState::Disabled).await);
        let (gone, gone_secret) = create(&app, new_key(&acme, "gone")).await;
        assert!(delete(&app, &acme, gone.id).await);
        let (theirs, their_secret) = create(&app, new_key(&globex, "theirs")).await;
        let mut tampered = live_secret.expose().to_owned();
        let last = if tampered.ends_with('A') { "B" } else { "A" };
        tampered.replace_range(tampered.len() - 1.., last);
        let url = "https://github.com/octo-org/octo-repo/blob/0123abc/.env";
        let entries = [
            entry(live_secret.expose(), url, "content"),
            entry(off_secret.expose(), "", "commit"),
            entry(gone_secret.expose(), "", "commit"),
            entry(their_secret.expose(), "https://gist.github.com/x", "gist"),
            entry(&tampered, "", "content"),
            entry("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "", "content"),
        ];
        let reply = report(p, &entries).signed(github()).send(&app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            labels(&reply),
            [
                "true_positive",
                "true_positive",
                "false_positive",
                "true_positive",
                "false_positive",
                "false_positive"
            ]
        );
        for (f, e) in reply.body.as_array().unwrap().iter().zip(&entries) {
            assert_eq!(f["token_hash"], token_hash(e["token"].as_str().unwrap()));
            assert_eq!(f["token_type"], "apikeys_api_key");
        }

        // Each key of ours is disabled, not deleted, and says why; the key.leaked event says
        // where, by whom. That includes the key someone had disabled already, so that
        // enabling it cannot revive the secret.
        for (org_admin, key, found) in [
            (&acme_admin, live.id, url),
            (&acme_admin, off.id, ""),
            (&globex_admin, theirs.id, "https://gist.github.com/x"),
        ] {
            let got = Call::get(p, key).bearer(org_admin).send(&app).await;
            assert_eq!(got.status, 200, "{}", got.body);
            assert_eq!(
                (
                    got.body["status"].as_str(),
                    got.body["disabled_reason"].as_str()
                ),
                (Some("disabled"), Some("leaked"))
            );
            let listed = Call::list(p).bearer(org_admin).send(&app).await;
            let entry = listed.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["id"] == key.to_string())
                .cloned()
                .unwrap();
            assert_eq!(entry["disabled_reason"], "leaked");
            let events = key_events(&app, p, org_admin, key).await;
            let leaked: Vec<&Value> = events
                .iter()
                .filter(|e| e["action"] == "key.leaked")
                .collect();
            assert_eq!(leaked.len(), 1, "{events:?}");
            assert_eq!(
                leaked[0]["actor"],
                json!({"type": "github", "id": "secret_scanning"})
            );
            assert_eq!(leaked[0]["leak"]["url"], found);
        }
        // The revoked secret no longer authenticates.
        Call::list(p)
            .bearer(&live_secret)
            .send(&app)
            .await
            .problem(401);
    }
}

#[tokio::test]
async fn the_same_report_replayed_changes_nothing_more() {
    let app = app().await;
    let org: OrgId = org();
    let owner = admin(&app, &org).await;
    for p in PAYLOADS {
        let (key, secret) = create(&app, new_key(&org, "leaky")).await;
        let call = report(
            p,
            &[entry(secret.expose(), "https://github.com/o/r", "content")],
        )
        .signed(github());
        let first = call.send(&app).await;
        let events = key_events(&app, p, &owner, key.id).await;
        let got = Call::get(p, key.id).bearer(&owner).send(&app).await;
        for _ in 0..2 {
            let again = call.send(&app).await;
            assert_eq!((again.status, &again.body), (first.status, &first.body));
        }
        assert_eq!(labels(&first), ["true_positive"]);
        assert_eq!(
            key_events(&app, p, &owner, key.id).await,
            events,
            "no new event"
        );
        let after = Call::get(p, key.id).bearer(&owner).send(&app).await;
        assert_eq!(
            after.body, got.body,
            "the key is as the first report left it"
        );
    }
}

#[tokio::test]
async fn oversize_reports_are_a_413() {
    let app = app().await;
    for p in PAYLOADS {
        let many =
            vec![entry("ghp_x", "", "content"); apikeys::leak::report::MAX_REPORT_ENTRIES + 1];
        let reply = report(p, &many).signed(github()).send(&app).await;
        assert!(reply.problem(413).contains("1001"), "{}", reply.body);
        let exactly =
            vec![entry("ghp_x", "", "content"); apikeys::leak::report::MAX_REPORT_ENTRIES];
        let reply = report(p, &exactly).signed(github()).send(&app).await;
        assert_eq!(reply.status, 200, "1,000 entries are taken");
        let url = "u".repeat(apikeys::leak::report::MAX_REPORT_BYTES);
        let reply = report(p, &[entry("ghp_x", &url, "content")])
            .signed(github())
            .send(&app)
            .await;
        reply.problem(413);
    }
}

#[tokio::test]
async fn no_token_reaches_a_response_or_a_log_line() {
    let app = app().await;
    let org = org();
    let (_, live) = create(&app, new_key(&org, "live")).await;
    let (_, other) = create(&app, new_key(&org, "other")).await;
    let logs = LogCapture::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber("trace"));
    let mut replies = String::new();
    for p in PAYLOADS {
        for call in [
            report(
                p,
                &[
                    entry(live.expose(), "", "content"),
                    entry(other.expose(), "", "commit"),
                ],
            )
            .signed(github()),
            report(p, &[entry(other.expose(), "", "content")]),
            Call::report(
                p,
                format!("[{{\"token\": \"{}\", \"type\": 1}}]", other.expose()),
            )
            .signed(github()),
        ] {
            let reply = call.send(&app).await;
            replies.push_str(&String::from_utf8_lossy(&reply.raw));
            replies.push_str(&format!("{:?}", reply.headers));
        }
    }
    drop(_guard);
    for s in [&live, &other] {
        assert!(!replies.contains(s.expose()), "a token in a response");
    }
    let text = logs.text();
    assert!(text.contains("report handled"), "{text}");
    // The log holds neither the tokens nor their hashes (GitHub's answer holds the hashes,
    // as its protocol asks).
    assert_no_leak("the logs", &text, &[live, other], false);
}

/// GitHub's key list as a fetching revoke-leaked sees it, counting the fetches.
struct CountedKeyList {
    list: String,
    fetches: std::sync::atomic::AtomicUsize,
}

impl apikeys::leak::keys::FetchKeys for &CountedKeyList {
    async fn fetch(&self) -> Result<Vec<u8>, apikeys::leak::keys::FetchError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.list.clone().into_bytes())
    }
}

#[tokio::test]
async fn a_malformed_key_identifier_or_signature_is_a_401_without_fetching_githubs_keys() {
    use apikeys::leak::keys::KeySource;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    // Every store call fails here, so none may be needed.
    let app = unreachable_store().await;
    let rotated = Signer::generate(&"0123456789abcdef".repeat(4));
    let github_list = CountedKeyList {
        list: apikeys_tests::github::key_list(&[&rotated]),
        fetches: Default::default(),
    };
    let keys = KeySource::fetched(&github_list);
    let (app, keys) = (&app, &keys);
    let send = move |call: Call| async move {
        let req = call.request();
        Reply::from(apikeys::http::revoke_leaked(app, keys, &policy(), req).await)
    };
    let body = Value::from(vec![entry("ghp_x", "", "content")]).to_string();
    let der = STANDARD.decode(rotated.sign(body.as_bytes())).unwrap();
    for p in PAYLOADS {
        let report = || Call::report(p, body.clone());
        let headers = |key_id: &str, signature: &str| {
            report()
                .header("Github-Public-Key-Identifier", key_id)
                .header("Github-Public-Key-Signature", signature)
        };
        let cases = [
            // The tests' own key is named "test-github-key": not GitHub's shape.
            (report().signed(github()), "an identifier that is not hex"),
            (
                headers(&rotated.key_id[..63], &rotated.sign(body.as_bytes())),
                "63 hex digits",
            ),
            (
                headers(&rotated.key_id, "bm90IGEgc2lnbmF0dXJl"),
                "base64 that is not DER",
            ),
            (
                headers(&rotated.key_id, &STANDARD.encode(&der[..der.len() - 2])),
                "a signature cut short",
            ),
        ];
        for (call, what) in cases {
            let reply = send(call).await;
            let detail = reply.problem(401).to_owned();
            assert!(reply.header("www-authenticate").is_none(), "{what}");
            if what.contains("DER") || what.contains("cut short") {
                assert!(detail.contains("DER"), "{what}: {detail}");
            }
        }
    }
    assert_eq!(
        github_list
            .fetches
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no fetch for a malformed report"
    );
    // A well-formed report by the rotated key fetches the list once and is taken (its one
    // token is not ours: no store call).
    for p in PAYLOADS {
        let reply = send(Call::report(p, body.clone()).signed(&rotated)).await;
        assert_eq!(labels(&reply), ["false_positive"]);
    }
    assert_eq!(
        github_list
            .fetches
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

/// Creates `n` keys in `org`, eight at a time: each with its secret.
async fn keys_with_secrets(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    org: &OrgId,
    n: usize,
) -> Vec<(apikeys::key::ApiKey, Secret)> {
    let mut made = Vec::with_capacity(n);
    let names: Vec<usize> = (0..n).collect();
    for chunk in names.chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let (store, new) = (app.store.clone(), new_key(org, &format!("leaky {i:04}")));
            set.spawn(async move { apikeys::write::create_key(&store, new).await.unwrap() });
        }
        made.extend(set.join_all().await);
    }
    made
}

/// A report of many live keys, on a day every DynamoDB call takes 50 ms: one key after
/// another, its 2 × 200 calls would take 20 s, past the function's timeout. Revoked a few
/// at a time, the report is answered within revoke-leaked's deadline, every key is
/// disabled, and each has exactly one key.leaked event.
#[tokio::test]
async fn a_report_of_many_keys_revokes_every_one_before_the_functions_timeout() {
    use apikeys::deadline::REPORT_TIMEOUT;
    use apikeys::store::{AuditReader, EventRange, KeyWriter};
    use apikeys_tests::fault::{Fault, FaultProxy};
    use std::time::Duration;
    const KEYS: usize = 200;
    let real = app().await;
    let org: OrgId = org();
    let keys = keys_with_secrets(&real, &org, KEYS).await;
    let proxy = FaultProxy::in_front_of_dynamodb_local().await;
    // Only the deadline may cut a call short: DynamoDB Local on a loaded machine is slow.
    let slow = patient_app_via(&real, &proxy.url(), Duration::from_secs(15)).await;
    proxy.set(Fault::Latency(Duration::from_millis(50)));
    let entries: Vec<Value> = keys
        .iter()
        .map(|(_, s)| entry(s.expose(), "https://github.com/o/r", "content"))
        .collect();
    let reply = report(Payload::Http, &entries)
        .signed(github())
        .send_with_time_left(&slow, REPORT_TIMEOUT)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(labels(&reply), vec!["true_positive"; KEYS]);
    proxy.set(Fault::None);

    for (key, _) in &keys {
        let stored = real.store.key_for_write(&org, key.id).await.unwrap();
        let stored = stored.expect("the key is still there");
        assert_eq!(stored.key.state, KeyState::Disabled, "{}", key.id);
    }
    let events = real
        .store
        .read_events(&org, None, EventRange::ALL, true, 10 * KEYS)
        .await
        .unwrap();
    let mut leaked: Vec<_> = events
        .iter()
        .filter(|e| e.action == apikeys::audit::Action::Leaked)
        .filter_map(|e| e.key_id)
        .collect();
    leaked.sort();
    let mut expected: Vec<_> = keys.iter().map(|(k, _)| k.id).collect();
    expected.sort();
    assert_eq!(leaked, expected, "one key.leaked event per key");
}
