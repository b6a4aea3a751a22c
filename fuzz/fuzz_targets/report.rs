//! GitHub's secret scanning report body: raw bytes, or arrays of matches built from fuzzed
//! parts with the world's secrets (live, disabled, expired, of either organization) and
//! near misses. Parsing never panics: it gives the matches, within the bounds, or a 400,
//! 413 or 422 naming the field. Every parsed report is then assessed against the world:
//! one answer per match, only secrets of the world's active keys revoked, each once.
#![no_main]

use apikeys::http::body::report::FIELDS;
use apikeys::http::body::report::parse_report;
use apikeys::leak::assess::{Label, Verdict, assess};
use apikeys::leak::report::{MAX_REPORT_ENTRIES, MAX_SOURCE_BYTES, MAX_TYPE_BYTES, MAX_URL_BYTES};
use apikeys::secret::Secret;
use apikeys_fuzz::{Json, Member, Token, json_headers, world};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

#[derive(Arbitrary, Debug)]
struct Entry {
    token: Option<Token>,
    token_json: Option<Json>,
    kind: Option<Json>,
    url: Option<Json>,
    source: Option<Json>,
    extra: Option<(Member, Json)>,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<u8>),
    Entries(Vec<Entry>),
    /// Many copies of one entry, around the entry limit.
    Repeated {
        entry: Entry,
        count: u16,
    },
    Other(Json),
}

fn entry_value(e: &Entry) -> Value {
    let mut m = Map::new();
    match (&e.token, &e.token_json) {
        (Some(t), _) => {
            m.insert("token".into(), Value::String(t.text()));
        }
        (None, Some(j)) => {
            m.insert("token".into(), j.to_value());
        }
        (None, None) => {}
    }
    let kind = e
        .kind
        .as_ref()
        .map_or(Value::String("apikeys_api_key".into()), Json::to_value);
    m.insert("type".into(), kind);
    if let Some(u) = &e.url {
        m.insert("url".into(), u.to_value());
    }
    if let Some(s) = &e.source {
        m.insert("source".into(), s.to_value());
    }
    if let Some((k, v)) = &e.extra {
        m.insert(k.name(FIELDS), v.to_value());
    }
    Value::Object(m)
}

fuzz_target!(|input: Input| {
    let body: Vec<u8> = match &input {
        Input::Raw(bytes) => bytes.clone(),
        Input::Entries(list) => Value::Array(list.iter().map(entry_value).collect())
            .to_string()
            .into_bytes(),
        Input::Repeated { entry, count } => {
            let n = MAX_REPORT_ENTRIES - 2 + (*count as usize % 5);
            Value::Array(vec![entry_value(entry); n])
                .to_string()
                .into_bytes()
        }
        Input::Other(j) => j.to_value().to_string().into_bytes(),
    };
    let report = match parse_report(&json_headers(), &body) {
        Ok(report) => report,
        Err(e) => {
            let status = e.status().as_u16();
            assert!(matches!(status, 400 | 413 | 422), "status {status}: {e}");
            if status == 422 {
                let problem = e.problem("fuzz");
                let field = problem.parameter.expect("a 422 names its field");
                assert!(field == "body" || field.starts_with('['), "{field}");
            }
            return;
        }
    };
    assert!(report.len() <= MAX_REPORT_ENTRIES);
    for r in &report {
        assert!(r.url.len() <= MAX_URL_BYTES && r.source.len() <= MAX_SOURCE_BYTES);
        assert!(r.token_type.len() <= MAX_TYPE_BYTES);
    }

    let w = world();
    let a =
        w.rt.block_on(assess(&w.app.store, &report))
            .expect("the memory store does not fail");
    assert_eq!(a.feedback.len(), report.len());
    assert_eq!(a.verdicts.len(), report.len());
    for ((r, f), v) in report.iter().zip(&a.feedback).zip(&a.verdicts) {
        assert_eq!(f.token_hash.len(), 64);
        assert_eq!(f.token_type, r.token_type);
        let ours = w.secrets.iter().any(|s| s.expose() == r.token);
        match v {
            Verdict::NotOurs => assert!(Secret::parse(&r.token).is_err()),
            Verdict::Ours(_) => assert!(ours, "a verdict on a foreign token"),
            Verdict::Unknown => assert!(!ours),
            Verdict::AlreadyRevoked(_) => panic!("the world marks no leak"),
        }
        assert_eq!(
            f.label == Label::TruePositive,
            matches!(v, Verdict::Ours(_))
        );
    }
    let mut secrets: Vec<_> = a.to_revoke.iter().map(|l| l.hash.as_str()).collect();
    let n = secrets.len();
    secrets.sort();
    secrets.dedup();
    assert_eq!(secrets.len(), n, "a secret revoked twice");
    for leak in &a.to_revoke {
        assert!(
            report
                .iter()
                .any(|r| Secret::parse(&r.token).is_ok_and(|s| s.hash() == leak.hash))
        );
    }
});
