//! Credits refill at their period's start (UTC), once and only once, with the clock
//! injected into the verify use case, against DynamoDB Local: a daily refill at midnight, and
//! a monthly one on day 31, which in a shorter month is its last day (February's 28th, not
//! March's 1st). Two verifications at the start of a new period refill once and both spend.

use apikeys::App;
use apikeys::cache::Moment;
use apikeys::key::OrgId;
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys::verify::{VerifyCache, verify};
use apikeys_tests::quota::*;
use apikeys_tests::*;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};

/// The verify use case at wall time `at`, for `cost`: the answer as the endpoint renders it.
async fn verify_at(
    app: &App<DynamoStore>,
    org: &OrgId,
    secret: &Secret,
    cost: u64,
    at: DateTime<Utc>,
) -> Value {
    let mut headers = lambda_http::http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    let body = json!({"key": secret.expose(), "cost": cost}).to_string();
    let request = apikeys::http::body::verify::parse_verify_body(&headers, body.as_bytes())
        .expect("a verify body");
    let now = Moment {
        wall: at,
        mono: tokio::time::Instant::now(),
    };
    let cache = VerifyCache::new(std::time::Duration::ZERO);
    let verdict = verify(&app.store, &cache, &app.usage, org, &request, now)
        .await
        .expect("verify");
    serde_json::to_value(verdict.body(now.wall)).expect("an answer")
}

/// Credits left after a verification at `at` that must be VALID.
async fn spend_at(
    app: &App<DynamoStore>,
    org: &OrgId,
    secret: &Secret,
    cost: u64,
    at: DateTime<Utc>,
) -> u64 {
    let answer = verify_at(app, org, secret, cost, at).await;
    assert_eq!(answer["code"], "VALID", "at {at}: {answer}");
    remaining(&answer).unwrap_or_else(|| panic!("credits in {answer}"))
}

/// Two verifications of cost 1 at once, at `at`: both VALID; their credits left, sorted.
async fn two_at_once(
    app: &App<DynamoStore>,
    org: &OrgId,
    secret: &Secret,
    at: DateTime<Utc>,
) -> [u64; 2] {
    let (a, b) = tokio::join!(
        spend_at(app, org, secret, 1, at),
        spend_at(app, org, secret, 1, at + Duration::milliseconds(1)),
    );
    let mut both = [a, b];
    both.sort();
    both
}

fn seconds(n: i64) -> Duration {
    Duration::seconds(n)
}

#[tokio::test]
async fn a_daily_refill_happens_once_at_utc_midnight() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let refill = json!({"interval": "daily", "amount": 10});
    let body = json!({"credits": {"remaining": 3, "refill": refill}});
    let (key, secret) = create_json(&app, Payload::Rest, &admin, body).await;
    let made = key["created_date"].as_str().expect("a creation time");
    let today = DateTime::parse_from_rfc3339(made)
        .unwrap()
        .to_utc()
        .date_naive();
    let midnight =
        Utc.from_utc_datetime(&(today + Duration::days(1)).and_hms_opt(0, 0, 0).unwrap());

    // Still the day it was made: no refill.
    assert_eq!(
        spend_at(&app, &org, &secret, 1, midnight - seconds(1)).await,
        2
    );
    // The new day: refilled to 10 once, and both verifications spend.
    assert_eq!(
        two_at_once(&app, &org, &secret, midnight + seconds(1)).await,
        [8, 9]
    );
    assert_eq!(
        spend_at(&app, &org, &secret, 1, midnight + seconds(2)).await,
        7
    );
    let tomorrow = midnight + Duration::days(1);
    assert_eq!(
        spend_at(&app, &org, &secret, 1, tomorrow - seconds(1)).await,
        6
    );
    assert_eq!(
        spend_at(&app, &org, &secret, 1, tomorrow + seconds(1)).await,
        9
    );
    // What the key shows is the store's count.
    let read = get_json(&app, Payload::Http, &admin, &id_of(&key)).await;
    assert_eq!(read["credits"], json!({"remaining": 9, "refill": refill}));
}

#[tokio::test]
async fn a_refill_on_day_31_comes_on_the_last_day_of_a_shorter_month() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let refill = json!({"interval": "monthly", "amount": 100, "day": 31});
    let body = json!({"credits": {"remaining": 5, "refill": refill}});
    let (key, secret) = create_json(&app, Payload::Rest, &admin, body).await;
    // The next February's last day (the 28th, or the 29th in a leap year), at 00:00 UTC.
    let now = Utc::now();
    let year = if now.month() < 2 {
        now.year()
    } else {
        now.year() + 1
    };
    let march = NaiveDate::from_ymd_opt(year, 3, 1).unwrap();
    let last_of_february = march.pred_opt().unwrap();
    let boundary = Utc.from_utc_datetime(&last_of_february.and_hms_opt(0, 0, 0).unwrap());

    // The day before: a period (from January 31st) after the one the key was made in.
    assert_eq!(
        spend_at(&app, &org, &secret, 30, boundary - seconds(2)).await,
        70
    );
    assert_eq!(
        spend_at(&app, &org, &secret, 1, boundary - seconds(1)).await,
        69
    );
    // February's last day starts the next period: one refill, both spend.
    assert_eq!(
        two_at_once(&app, &org, &secret, boundary + seconds(1)).await,
        [98, 99]
    );
    // March 1st is within that period: no refill.
    let march = Utc.from_utc_datetime(&march.and_hms_opt(0, 0, 0).unwrap());
    assert_eq!(
        spend_at(&app, &org, &secret, 1, march + seconds(1)).await,
        97
    );
    // March 31st starts the next.
    let march_31 = march + Duration::days(30);
    assert_eq!(
        spend_at(&app, &org, &secret, 1, march_31 - seconds(1)).await,
        96
    );
    assert_eq!(
        spend_at(&app, &org, &secret, 1, march_31 + seconds(1)).await,
        99
    );
    let read = get_json(&app, Payload::Http, &admin, &id_of(&key)).await;
    assert_eq!(read["credits"], json!({"remaining": 99, "refill": refill}));
}
