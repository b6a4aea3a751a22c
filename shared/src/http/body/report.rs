//! Reading GitHub's report body into [`ReportedToken`]s (the rules are
//! [`crate::leak::report`]'s).

use lambda_http::http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::fields::{Text, kind};
use super::read::{WHOLE_BODY, body_error, field_error, read_value};
use crate::http::problem::ApiError;
use crate::leak::report::{
    MAX_REPORT_BYTES, MAX_REPORT_ENTRIES, MAX_SOURCE_BYTES, MAX_TYPE_BYTES, MAX_URL_BYTES,
    ReportedToken,
};

/// The members of a match that the report reads (others are ignored: GitHub may add some).
pub const FIELDS: &[&str] = &["token", "type", "url", "source"];

/// One match as sent. Members other than [`FIELDS`] are ignored; null is absent.
#[derive(Deserialize)]
struct Entry {
    token: Option<Text>,
    #[serde(rename = "type")]
    token_type: Option<Text>,
    url: Option<Text>,
    source: Option<Text>,
}

/// Reads a report body (the request's headers for its Content-Type, and its bytes). Call
/// it only after the signature was checked.
pub fn parse_report(headers: &HeaderMap, body: &[u8]) -> Result<Vec<ReportedToken>, ApiError> {
    let value = read_value(headers, body, MAX_REPORT_BYTES)?;
    let Value::Array(entries) = &value else {
        return Err(field_error(
            WHOLE_BODY,
            format!("must be a JSON array of matches, not {}", kind(&value)),
        ));
    };
    if entries.len() > MAX_REPORT_ENTRIES {
        return Err(ApiError::TooManyEntries {
            count: entries.len(),
            limit: MAX_REPORT_ENTRIES,
        });
    }
    // Each match must be an object (serde would also read a struct from an array).
    if let Some((i, entry)) = entries.iter().enumerate().find(|(_, e)| !e.is_object()) {
        return Err(field_error(
            &format!("[{i}]"),
            format!("must be a JSON object, not {}", kind(entry)),
        ));
    }
    let parsed: Vec<Entry> =
        serde_path_to_error::deserialize(&value).map_err(|e| body_error(e, FIELDS, &[]))?;
    parsed
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let required = |member: Option<Text>, name: &str| {
                member.ok_or_else(|| field_error(&format!("[{i}].{name}"), "is required"))
            };
            let text = |member: Option<Text>| member.map(|t| t.0).unwrap_or_default();
            Ok(ReportedToken {
                token: required(entry.token, "token")?.0,
                token_type: cut(&required(entry.token_type, "type")?.0, MAX_TYPE_BYTES),
                url: cut(&text(entry.url), MAX_URL_BYTES),
                source: cut(&text(entry.source), MAX_SOURCE_BYTES),
            })
        })
        .collect()
}

/// `text`, cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::{HeaderValue, header};

    #[test]
    fn fields_lists_what_serde_reads() {
        assert_eq!(crate::http::body::read::serde_fields::<Entry>(), FIELDS);
    }

    fn json() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    }

    fn parse(body: &[u8]) -> Result<Vec<ReportedToken>, ApiError> {
        parse_report(&json(), body)
    }

    #[test]
    fn githubs_documented_body_parses() {
        let body = br#"[{"token":"NMIfyYncKcRALEXAMPLE","type":"mycompany_api_token","url":"https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/foo/bar.txt","source":"content"}]"#;
        let report = parse(body).unwrap();
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].token, "NMIfyYncKcRALEXAMPLE");
        assert_eq!(report[0].token_type, "mycompany_api_token");
        assert_eq!(report[0].source, "content");
        assert!(report[0].url.ends_with("/foo/bar.txt"));
        assert!(!format!("{report:?}").contains("NMIfyYncKcRAL"));
    }

    #[test]
    fn url_and_source_are_optional_and_unknown_members_ignored() {
        let body = br#"[{"token":"t","type":"x"},{"token":"u","type":"x","url":null,"source":"npm","later":1}]"#;
        let report = parse(body).unwrap();
        assert_eq!(
            (report[0].url.as_str(), report[0].source.as_str()),
            ("", "")
        );
        assert_eq!(report[1].source, "npm");
        assert_eq!(parse(b"[]").unwrap(), vec![]);
    }

    #[test]
    fn long_urls_are_cut_on_a_character_boundary() {
        let url = format!("https://github.com/{}", "é".repeat(MAX_URL_BYTES));
        let body = serde_json::json!([{"token": "t", "type": "x", "url": url}]).to_string();
        let report = parse(body.as_bytes()).unwrap();
        assert!(report[0].url.len() <= MAX_URL_BYTES);
        assert!(url.starts_with(&report[0].url));
    }

    #[test]
    fn more_than_1000_entries_or_1_mib_is_a_413() {
        let entry = serde_json::json!({"token": "t", "type": "x"});
        let ok = serde_json::Value::Array(vec![entry.clone(); MAX_REPORT_ENTRIES]).to_string();
        assert_eq!(parse(ok.as_bytes()).unwrap().len(), MAX_REPORT_ENTRIES);
        let many = serde_json::Value::Array(vec![entry; MAX_REPORT_ENTRIES + 1]).to_string();
        let err = parse(many.as_bytes()).unwrap_err();
        assert!(matches!(
            err,
            ApiError::TooManyEntries {
                count: 1001,
                limit: 1000
            }
        ));
        assert_eq!(err.status().as_u16(), 413);

        // Just over 1 MiB, in few entries: refused on size before parsing.
        let big = format!(
            r#"[{{"token":"{}","type":"x"}}]"#,
            "a".repeat(MAX_REPORT_BYTES)
        );
        let err = parse(big.as_bytes()).unwrap_err();
        assert_eq!(err.status().as_u16(), 413);
        // Exactly 1 MiB is accepted.
        let pad = MAX_REPORT_BYTES - r#"[{"token":"","type":"x"}]"#.len();
        let exact = format!(r#"[{{"token":"{}","type":"x"}}]"#, "a".repeat(pad));
        assert_eq!(exact.len(), MAX_REPORT_BYTES);
        assert!(parse(exact.as_bytes()).is_ok());
    }

    #[test]
    fn malformed_bodies_are_400_and_wrong_shapes_422_naming_the_field() {
        let cases: &[(&[u8], u16, Option<&str>)] = &[
            (b"", 400, None),
            (b"[{\"token\":", 400, None),
            (b"[] []", 400, None),
            (b"{\"token\":\"t\"}", 422, Some("body")),
            (b"[1]", 422, Some("[0]")),
            (b"[{\"type\":\"x\"}]", 422, Some("[0].token")),
            (
                b"[{\"token\":\"t\",\"type\":\"x\"},{\"token\":7,\"type\":\"x\"}]",
                422,
                Some("[1].token"),
            ),
            (b"[{\"token\":\"t\"}]", 422, Some("[0].type")),
            (
                b"[{\"token\":\"t\",\"type\":\"x\",\"url\":[]}]",
                422,
                Some("[0].url"),
            ),
            (
                b"[{\"token\":\"t\",\"type\":\"x\",\"source\":false}]",
                422,
                Some("[0].source"),
            ),
        ];
        for (body, status, field) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(
                err.status().as_u16(),
                *status,
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(err.problem("r").parameter.as_deref(), *field, "{err}");
        }
    }
}
