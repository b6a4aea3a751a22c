//! Bounded work per request: whatever its parameters, a list request reads at most
//! `MAX_ITEMS_READ` keys in at most `MAX_QUERIES` Queries, plus the credential and the key
//! count, and so at most [`WORST_READ_UNITS`]. Measured with the capacity DynamoDB
//! reports, through the recording proxy, on an organization of the largest keys (64-character
//! organization, longest names, every permission).

use apikeys::page::{DEFAULT_LIMIT, MAX_ITEMS_READ, MAX_LIMIT, MAX_PAGE_END, MAX_QUERIES};
use apikeys_tests::capacity::{Call as DynamoCall, Proxy};
use apikeys_tests::*;

/// The most read units one list request consumes, as bench/README.md states ("Work per
/// request"): a Query is charged for the bytes it reads, rounded up to 4 KB, at 0.5 a unit
/// (eventually consistent); the budget's keys are at most 1 MB (256 units of 4 KB, so 128),
/// each of up to four Queries rounds up once (+2), and the credential and the key count cost
/// 0.5 each.
const WORST_READ_UNITS: f64 = 131.0;

const PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// What one request read: DynamoDB reads (GetItem, Query), the Queries of keys and the
/// keys they read, and the units of all of them (the key count's Query included).
#[derive(Debug)]
struct Cost {
    reads: usize,
    queries: usize,
    items: u64,
    units: f64,
}

fn cost(calls: &[DynamoCall]) -> Cost {
    let reads: Vec<&DynamoCall> = calls
        .iter()
        .filter(|c| c.op == "GetItem" || c.op == "Query")
        .collect();
    let of_keys = || {
        reads
            .iter()
            .filter(|c| c.op == "Query" && c.prefix.as_deref() == Some("KEY#"))
    };
    Cost {
        reads: reads.len(),
        queries: of_keys().count(),
        items: of_keys().map(|c| c.items).sum(),
        units: reads.iter().map(|c| c.units).sum(),
    }
}

#[tokio::test]
async fn no_list_request_reads_more_than_the_budget_whatever_its_parameters() {
    let real = app().await;
    let org = longest_org();
    let secret = admin(&real, &org).await;
    // More keys than the old bounds would read (2,000 for a filtered page, 11,001 for a
    // numbered one), so that reading past the budget shows.
    seed_largest(&real, &org, 2 * MAX_ITEMS_READ + 100).await;
    let url = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap();
    let upstream = tokio::net::lookup_host(url.trim_start_matches("http://").trim_end_matches('/'))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(upstream).await.unwrap();
    // Patient timeouts and a distant deadline: this measures reads, not speed, and a 1 MB
    // Query through the proxy can take seconds on a loaded machine.
    let app = patient_app_via(&real, &format!("http://{}", proxy.addr), PATIENCE).await;

    let list = || Call::list(Payload::Http).bearer(&secret);
    let cases = [
        ("the default page", list(), DEFAULT_LIMIT as u64 + 1),
        (
            "the deepest numbered page at the default limit",
            list().query("page", MAX_PAGE_END / DEFAULT_LIMIT),
            MAX_ITEMS_READ as u64,
        ),
        (
            "the deepest numbered page at the largest limit",
            list()
                .query("limit", MAX_LIMIT)
                .query("page", MAX_PAGE_END / MAX_LIMIT),
            MAX_ITEMS_READ as u64,
        ),
        (
            "the deepest filtered page, small",
            list().query("limit", 5).query("name", "no such key"),
            MAX_ITEMS_READ as u64,
        ),
        (
            "the deepest filtered page, large",
            list().query("limit", MAX_LIMIT).query("status", "disabled"),
            MAX_ITEMS_READ as u64,
        ),
        (
            "the largest plain page",
            list().query("limit", MAX_LIMIT),
            MAX_ITEMS_READ as u64,
        ),
    ];
    let mut figures = Vec::new();
    for (what, call, items) in cases {
        proxy.take();
        let reply = call.send_with_time_left(&app, PATIENCE).await;
        assert_eq!(reply.status, 200, "{what}: {}", reply.body);
        let cost = cost(&proxy.take());
        assert_eq!(cost.items, items, "{what}: keys read, {cost:?}");
        assert!(cost.queries <= MAX_QUERIES, "{what}: {cost:?}");
        assert!(cost.reads <= MAX_QUERIES + 2, "{what}: {cost:?}");
        assert!(cost.units <= WORST_READ_UNITS, "{what}: {cost:?}");
        figures.push(format!("{what}: {cost:?}"));
    }
    // Deeper pages than the budget allows are refused before any read.
    for (limit, page) in [
        (DEFAULT_LIMIT, MAX_PAGE_END / DEFAULT_LIMIT + 1),
        (MAX_LIMIT, 2),
        (MAX_LIMIT, 11),
        (DEFAULT_LIMIT, 201),
    ] {
        proxy.take();
        let reply = list()
            .query("limit", limit)
            .query("page", page)
            .send_with_time_left(&app, PATIENCE)
            .await;
        reply.problem(422);
        assert_eq!(reply.body["parameter"], "page", "{}", reply.body);
        let cost = cost(&proxy.take());
        assert_eq!(cost.queries, 0, "page {page} at limit {limit}: {cost:?}");
    }
    proxy.stop();
    println!("{}", figures.join("\n"));
}
