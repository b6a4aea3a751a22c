//! Credits and rate limits are exact across processes: verifiers in three or more processes
//! of their own (each its own application, caches and leases) against one key, on DynamoDB
//! Local. N credits give exactly N `VALID` answers; a limit never admits more than its
//! count in a window, an `exact` one admits exactly its count when more ask, and a `leased`
//! one under-admits by at most (processes x lease size).
//!
//! The parent test re-executes this binary, running [`child_verifiers`] in each child
//! (see `apikeys_tests::quota`); run alone, without its task, that test does nothing.

use std::collections::{BTreeMap, BTreeSet};

use apikeys_tests::quota::*;
use apikeys_tests::*;
use serde_json::{Value, json};

/// The full name of the child test, which the parent asks each child to run.
const CHILD: &str = "quota::child_verifiers";

/// The processes each test spreads its verifiers over.
const PROCESSES: usize = 3;

/// A child process's work: nothing unless its parent gave it a task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_verifiers() {
    let Some(task) = child_spec() else {
        return;
    };
    let answers = run_child(&task).await;
    println!("{TALLY}{}", Value::Array(answers));
}

/// How many of `answers` have each code, or (not a 200) each status and detail.
fn codes(answers: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for a in answers {
        *out.entry(code_of(a)).or_default() += 1;
    }
    out
}

/// An answer's code, or its status and problem detail when it is not a 200.
fn code_of(a: &Value) -> String {
    match a["code"].as_str() {
        Some(code) if a["status"] == 200 => code.to_owned(),
        _ => format!("{} {}", a["status"], a["detail"]),
    }
}

#[tokio::test]
async fn two_hundred_credits_give_exactly_two_hundred_valid_answers_across_processes() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let body = json!({"credits": {"remaining": 200}});
    let (key, secret) = create_json(&app, Payload::Rest, &admin, body).await;
    assert_eq!(key["credits"], json!({"remaining": 200, "refill": null}));

    // 50 verifiers (17 + 17 + 16) of 5 verifications each: 250 asks for 200 credits.
    let start = now_ms() + 3_000;
    let window = (start, start + 100_000);
    let tasks: Vec<Value> = [17, 17, 16]
        .iter()
        .map(|&n| child_task(&app, &admin, &secret, n, 5, window))
        .collect();
    assert_eq!(tasks.len(), PROCESSES);
    let answers = in_children(CHILD, tasks).await;

    assert_eq!(answers.len(), 250);
    let counts = codes(&answers);
    assert_eq!(
        counts,
        BTreeMap::from([("USAGE_EXCEEDED".into(), 50), ("VALID".into(), 200)]),
        "exactly 200 VALID, the rest USAGE_EXCEEDED"
    );
    // Each VALID answer tells what it left: every count from 199 down to 0, once.
    let left: BTreeSet<u64> = answers
        .iter()
        .filter(|a| a["code"] == "VALID")
        .map(|a| a["credits"].as_u64().expect("credits in a VALID answer"))
        .collect();
    assert_eq!(left, (0..200).collect::<BTreeSet<u64>>());
    for refused in answers.iter().filter(|a| a["code"] == "USAGE_EXCEEDED") {
        assert_eq!(refused["credits"], 0, "{refused}");
    }
    let now = get_json(&app, Payload::Http, &admin, &id_of(&key)).await;
    assert_eq!(remaining(&now), Some(0), "{now}");
}

/// One window's answers: how many asked, and how many were admitted.
#[derive(Debug, Default)]
struct Window {
    asked: usize,
    admitted: usize,
    /// `remaining` of each admitted answer.
    left: Vec<u64>,
}

/// The answers grouped by their window (the first limit's `reset`).
fn windows(answers: &[Value], duration_ms: u64) -> BTreeMap<u64, Window> {
    let failed = answers.iter().filter(|a| a["status"] != 200).count();
    assert_eq!(
        failed,
        0,
        "verifications that were not a 200, of {}: {:?}",
        answers.len(),
        codes(answers)
    );
    let mut out: BTreeMap<u64, Window> = BTreeMap::new();
    for a in answers {
        let code = a["code"].as_str().unwrap();
        assert!(["VALID", "RATE_LIMITED"].contains(&code), "{a}");
        let reset = a["reset"]
            .as_u64()
            .expect("the limit's reset in every answer");
        assert_eq!(reset % duration_ms, 0, "windows align to the duration: {a}");
        let w = out.entry(reset).or_default();
        w.asked += 1;
        if code == "VALID" {
            w.admitted += 1;
            w.left.push(a["remaining"].as_u64().expect("tokens left"));
        }
    }
    out
}

/// Verifies a key limited to 100 per 10 s in `mode` from [`PROCESSES`] processes of six
/// verifiers each for about 25 s, and returns the answers by window.
async fn hammer(mode: &str) -> BTreeMap<u64, Window> {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let limit = json!({"name": "burst", "limit": 100, "duration_ms": 10_000, "mode": mode});
    let body = json!({ "ratelimits": [limit] });
    let (key, secret) = create_json(&app, Payload::Http, &admin, body).await;
    assert_eq!(key["ratelimits"], json!([limit]));
    let start = now_ms() + 3_000;
    let tasks: Vec<Value> = (0..PROCESSES)
        .map(|_| child_task(&app, &admin, &secret, 6, 400, (start, start + 25_000)))
        .collect();
    let answers = in_children(CHILD, tasks).await;
    let by_window = windows(&answers, 10_000);
    let summary: Vec<(u64, usize, usize)> = by_window
        .iter()
        .map(|(reset, w)| (*reset, w.asked, w.admitted))
        .collect();
    eprintln!("{mode}: (window end, asked, admitted) {summary:?}");
    let busy = by_window.values().filter(|w| w.asked > 100).count();
    assert!(
        busy >= 2,
        "at least two windows got more than 100 asks, or this proves nothing: {by_window:?}"
    );
    by_window
}

#[tokio::test]
async fn an_exact_limit_admits_exactly_its_count_in_every_window_across_processes() {
    for (reset, w) in hammer("exact").await {
        assert!(
            w.admitted <= 100,
            "window {reset}: {} over-admitted",
            w.admitted - 100
        );
        if w.asked > 100 {
            assert_eq!(w.admitted, 100, "window {reset}: {w:?}");
        }
        // Each admission tells what it left, and no two tell the same.
        let left: BTreeSet<u64> = w.left.iter().copied().collect();
        assert_eq!(left.len(), w.left.len(), "window {reset}: {w:?}");
        assert!(left.iter().all(|n| *n < 100), "window {reset}: {w:?}");
    }
}

#[tokio::test]
async fn a_leased_limit_never_over_admits_and_under_admits_at_most_a_lease_per_process() {
    let lease = 100usize.div_ceil(10);
    for (reset, w) in hammer("leased").await {
        assert!(
            w.admitted <= 100,
            "window {reset}: {} over-admitted",
            w.admitted - 100
        );
        if w.asked > 100 {
            assert!(
                w.admitted >= 100 - PROCESSES * lease,
                "window {reset}: {} admitted of {} asks, more than {PROCESSES} leases of \
                 {lease} under",
                w.admitted,
                w.asked
            );
        }
    }
}
