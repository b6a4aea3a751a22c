//! The regular expression of our secrets, as given to GitHub's secret scanning partner
//! program (docs/deploy.md quotes these constants; a test checks that it does).
//!
//! A secret is `apk_` and the unpadded base64url of 28 bytes (24 random, then 4 of checksum):
//! 38 characters, the last of which carries only 2 bits and so is one of `A`, `Q`, `g`, `w`.
//! The checksum (the first 4 bytes of the SHA-256 of the 24 random bytes) is beyond a regular
//! expression; our endpoint checks it before any read.

/// The secret type name agreed with GitHub: the `type` of each reported match.
pub const SECRET_TYPE: &str = "apikeys_api_key";
/// One secret.
pub const SECRET_PATTERN: &str = "apk_[A-Za-z0-9_-]{37}[AQgw]";
/// What may come before a secret: the start of the text or a character outside its alphabet.
pub const BEFORE_PATTERN: &str = r"\A|[^A-Za-z0-9_-]";
/// What may come after a secret: the end of the text or a character outside its alphabet.
pub const AFTER_PATTERN: &str = r"\z|[^A-Za-z0-9_-]";

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;
    use crate::secret::Secret;

    fn whole() -> Regex {
        Regex::new(&format!("^(?:{SECRET_PATTERN})$")).unwrap()
    }

    /// The pattern as a scanner applies it to a file: secret between its boundaries.
    fn in_text() -> Regex {
        Regex::new(&format!(
            "(?:{BEFORE_PATTERN})({SECRET_PATTERN})(?:{AFTER_PATTERN})"
        ))
        .unwrap()
    }

    #[test]
    fn the_documented_pattern_is_the_one_tested_here() {
        // Read as the test runs (cargo sets CARGO_MANIFEST_DIR): see tools/ci-mtimes.py.
        let shared = std::env::var_os("CARGO_MANIFEST_DIR").expect("run through cargo test");
        let doc = std::fs::read_to_string(std::path::Path::new(&shared).join("../docs/deploy.md"))
            .expect("docs/deploy.md");
        for quoted in [SECRET_TYPE, SECRET_PATTERN, BEFORE_PATTERN, AFTER_PATTERN] {
            assert!(
                doc.contains(&format!("`{quoted}`")),
                "docs/deploy.md does not quote `{quoted}`"
            );
        }
    }

    #[test]
    fn every_issued_secret_matches() {
        let re = whole();
        let mut last = std::collections::BTreeSet::new();
        for i in 0..2000u32 {
            let secret = if i < 256 {
                Secret::from_random([i as u8; 24])
            } else {
                Secret::generate().unwrap()
            };
            assert!(re.is_match(secret.expose()), "{secret:?}");
            last.insert(secret.expose().chars().last().unwrap());
        }
        assert_eq!(
            last.into_iter().collect::<String>(),
            "AQgw",
            "all four endings occur"
        );
    }

    #[test]
    fn near_misses_do_not_match() {
        let re = whole();
        let s = Secret::from_random(*b"a secret for near misses")
            .expose()
            .to_owned();
        let body = &s[4..];
        let mut misses = vec![
            format!("apk-{body}"),
            format!("APK_{body}"),
            format!("ap_{body}"),
            format!("apk_{}", &body[1..]),
            format!("apk_{body}A"),
            format!("apk_{}B", &body[..37]),
            format!("apk_{}=", &body[..37]),
        ];
        // Each character of the body replaced by one outside the alphabet.
        for i in 4..s.len() {
            for bad in ['+', '/', '=', '.', ' '] {
                let mut t = s.clone();
                t.replace_range(i..i + 1, &bad.to_string());
                misses.push(t);
            }
        }
        for m in &misses {
            assert!(!re.is_match(m), "{m:?}");
            assert!(Secret::parse(m).is_err(), "the service refuses {m:?} too");
        }
    }

    #[test]
    fn secrets_are_found_in_text_only_between_boundaries() {
        let re = in_text();
        let s = Secret::from_random([42; 24]);
        let secret = s.expose();
        for text in [
            secret.to_owned(),
            format!("APIKEYS_KEY={secret}\n"),
            format!("{{\"key\": \"{secret}\"}}"),
            format!("Authorization: Bearer {secret}"),
            format!("https://x.test/?key={secret}&y=1"),
        ] {
            let found = re.captures(&text).map(|c| c[1].to_owned());
            assert_eq!(found.as_deref(), Some(secret), "{text:?}");
        }
        for text in [
            format!("x{secret}"),
            format!("_{secret}"),
            format!("{secret}A"),
            format!("{secret}-more"),
        ] {
            assert!(!re.is_match(&text), "{text:?}");
        }
    }
}
