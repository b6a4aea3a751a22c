//! The quota flags of `create-key` (`--credits`, `--refill`, `--ratelimit`), parsed into the
//! model's values ([`apikeys::quota`]) with the API's bounds and a precise message for each
//! part, and a key's credits and rate limits as one line of text for `get-key` and
//! `list-keys`.

use apikeys::quota::{
    Credits, Interval, MAX_CREDITS, MAX_DURATION_MS, MAX_LIMIT, MAX_LIMITS, MIN_DURATION_MS, Mode,
    Quota, RateLimit, Refill,
};
use clap::Args;
use serde_json::Value;

/// The longest name of a rate limit.
const MAX_NAME_CHARS: usize = 32;

#[derive(Args, Debug, Default)]
pub struct QuotaArgs {
    /// Give the key N credits: each verify spends its cost, and a key without credits left
    /// verifies USAGE_EXCEEDED. Without it the key is unlimited.
    #[arg(long, value_name = "N", value_parser = parse_credits, allow_hyphen_values = true)]
    pub credits: Option<u64>,
    /// Set the credits back to AMOUNT each UTC day, or each month on DAY (1 to 31, default 1;
    /// 31 is a shorter month's last day).
    #[arg(long, value_name = "daily:AMOUNT|monthly:AMOUNT[:DAY]", value_parser = parse_refill,
          requires = "credits")]
    pub refill: Option<Refill>,
    /// Publish `key.credits_low` when the credits left first drop below N (1 to
    /// 9007199254740991), once per crossing.
    #[arg(long, value_name = "N", value_parser = parse_low_at, requires = "credits")]
    pub credits_low_at: Option<u64>,
    /// A rate limit on verify: at most LIMIT in each window of DURATION_MS (1000 to
    /// 86400000), counted exactly, or `leased` for a hot key. Repeat it for up to 5.
    #[arg(long = "ratelimit", value_name = "NAME:LIMIT:DURATION_MS[:leased]",
          value_parser = parse_ratelimit)]
    pub ratelimits: Vec<RateLimit>,
}

impl QuotaArgs {
    /// What clap cannot see value by value: how many limits, and that their names differ.
    pub fn check(&self) -> Result<(), String> {
        if self.ratelimits.len() > MAX_LIMITS {
            return Err(format!(
                "--ratelimit may be given at most {MAX_LIMITS} times, got {}",
                self.ratelimits.len()
            ));
        }
        for (i, r) in self.ratelimits.iter().enumerate() {
            if self.ratelimits[..i].iter().any(|o| o.name == r.name) {
                return Err(format!(
                    "--ratelimit names must differ: {:?} is given twice",
                    r.name
                ));
            }
        }
        Ok(())
    }

    /// The new key's credits and rate limits (none: an unmetered key).
    pub fn quota(&self) -> Quota {
        Quota {
            credits: self.credits.map(|remaining| Credits {
                remaining,
                refill: self.refill,
                low_at: self.credits_low_at,
            }),
            ratelimits: self.ratelimits.clone(),
        }
    }
}

/// An integer from `min` to `max`, or a message naming `what` and the bounds.
fn bounded(what: &str, s: &str, min: u64, max: u64) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{what} must be an integer from {min} to {max}, got {s:?}"))
}

pub fn parse_credits(s: &str) -> Result<u64, String> {
    bounded("credits", s, 0, MAX_CREDITS)
}

pub fn parse_low_at(s: &str) -> Result<u64, String> {
    bounded("credits-low-at", s, 1, MAX_CREDITS)
}

pub fn parse_refill(s: &str) -> Result<Refill, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let amount = |a: &str| bounded("the refill amount", a, 1, MAX_CREDITS);
    match parts.as_slice() {
        ["daily", a] => Ok(Refill {
            interval: Interval::Daily,
            amount: amount(a)?,
            day: None,
        }),
        ["daily", _, _] => Err(format!(
            "a daily refill takes no day (daily:AMOUNT), got {s:?}"
        )),
        ["monthly", a, rest @ ..] if rest.len() <= 1 => {
            let amount = amount(a)?;
            let day = match rest.first() {
                Some(d) => bounded("the refill day", d, 1, 31)?,
                None => 1,
            };
            Ok(Refill {
                interval: Interval::Monthly,
                amount,
                day: u8::try_from(day).ok(),
            })
        }
        _ => Err(format!(
            "expected daily:AMOUNT or monthly:AMOUNT[:DAY] (e.g. monthly:1000:15), got {s:?}"
        )),
    }
}

pub fn parse_ratelimit(s: &str) -> Result<RateLimit, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (name, limit, duration, mode) = match parts.as_slice() {
        [n, l, d] => (*n, *l, *d, None),
        [n, l, d, m] => (*n, *l, *d, Some(*m)),
        _ => {
            return Err(format!(
                "expected NAME:LIMIT:DURATION_MS[:leased] (e.g. per_second:10:1000), got {s:?}"
            ));
        }
    };
    let name_ok = (1..=MAX_NAME_CHARS).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !name_ok {
        return Err(format!(
            "the limit's name must be 1 to {MAX_NAME_CHARS} characters of a-z A-Z 0-9 _ - ., got {name:?}"
        ));
    }
    let mode = match mode {
        None | Some("exact") => Mode::Exact,
        Some("leased") => Mode::Leased,
        Some(m) => return Err(format!("the mode must be exact or leased, got {m:?}")),
    };
    Ok(RateLimit {
        name: name.to_owned(),
        limit: bounded("the limit", limit, 1, MAX_LIMIT)?,
        duration_ms: bounded("the duration", duration, MIN_DURATION_MS, MAX_DURATION_MS)?,
        mode,
    })
}

/// A key's credits and rate limits as text, from its JSON view (`credits`, `ratelimits`);
/// empty when it has neither.
pub fn describe(view: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(c) = view.get("credits").filter(|c| c.is_object()) {
        let mut text = format!("credits {}", c["remaining"]);
        let refill = &c["refill"];
        match refill["interval"].as_str() {
            Some("monthly") => {
                text += &format!(" (monthly {} on day {})", refill["amount"], refill["day"]);
            }
            Some(interval) => text += &format!(" ({interval} {})", refill["amount"]),
            None => {}
        }
        if let Some(low) = c.get("low_at").filter(|l| l.is_u64()) {
            text += &format!(" low at {low}");
        }
        parts.push(text);
    }
    for r in view["ratelimits"].as_array().into_iter().flatten() {
        let mut text = format!(
            "limit {} {}/{}ms",
            r["name"].as_str().unwrap_or_default(),
            r["limit"],
            r["duration_ms"]
        );
        if r["mode"] == "leased" {
            text += " leased";
        }
        parts.push(text);
    }
    parts.join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        quota: QuotaArgs,
    }

    fn parse(args: &[&str]) -> Result<QuotaArgs, String> {
        let flags = Flags::try_parse_from(std::iter::once("apikeys").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        flags.quota.check()?;
        Ok(flags.quota)
    }

    fn error(args: &[&str]) -> String {
        match parse(args) {
            Ok(q) => panic!("{args:?} parsed: {q:?}"),
            Err(e) => e,
        }
    }

    fn limit(name: &str, limit: u64, duration_ms: u64, mode: Mode) -> RateLimit {
        RateLimit {
            name: name.into(),
            limit,
            duration_ms,
            mode,
        }
    }

    #[test]
    fn no_flag_is_an_unlimited_key() {
        let q = parse(&[]).unwrap();
        assert_eq!((q.credits, q.refill, q.ratelimits), (None, None, vec![]));
    }

    #[test]
    fn credits_refills_and_limits_parse_into_their_values() {
        let q = parse(&[
            "--credits",
            "100",
            "--refill",
            "monthly:1000:31",
            "--ratelimit",
            "per_second:10:1000",
            "--ratelimit",
            "per.day-1:1000000000:86400000:leased",
            "--ratelimit",
            "x:1:1000:exact",
        ])
        .unwrap();
        assert_eq!(q.credits, Some(100));
        assert_eq!(
            q.refill,
            Some(Refill {
                interval: Interval::Monthly,
                amount: 1000,
                day: Some(31)
            })
        );
        assert_eq!(
            q.ratelimits,
            vec![
                limit("per_second", 10, 1000, Mode::Exact),
                limit("per.day-1", MAX_LIMIT, MAX_DURATION_MS, Mode::Leased),
                limit("x", 1, 1000, Mode::Exact),
            ]
        );
        let daily = parse(&["--credits", "0", "--refill", "daily:5"]).unwrap();
        assert_eq!(daily.credits, Some(0));
        assert_eq!(
            daily.refill.map(|r| (r.interval, r.amount, r.day)),
            Some((Interval::Daily, 5, None))
        );
        let monthly = parse(&["--credits", "9007199254740991", "--refill", "monthly:7"]).unwrap();
        assert_eq!(monthly.credits, Some(MAX_CREDITS));
        assert_eq!(monthly.refill.and_then(|r| r.day), Some(1));
    }

    #[test]
    fn a_credit_count_out_of_range_names_the_bounds() {
        for bad in ["-1", "9007199254740992", "ten", "1.5", ""] {
            let e = error(&["--credits", bad]);
            assert!(
                e.contains(&format!(
                    "credits must be an integer from 0 to 9007199254740991, got {bad:?}"
                )),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_refill_needs_credits_and_its_own_shape() {
        let e = error(&["--refill", "daily:5"]);
        assert!(e.contains("--credits <N>"), "{e}");
        for (bad, says) in [
            ("weekly:5", "expected daily:AMOUNT or monthly:AMOUNT[:DAY]"),
            ("daily", "expected daily:AMOUNT or monthly:AMOUNT[:DAY]"),
            (
                "monthly:5:1:2",
                "expected daily:AMOUNT or monthly:AMOUNT[:DAY]",
            ),
            ("daily:5:1", "a daily refill takes no day (daily:AMOUNT)"),
            (
                "daily:0",
                "the refill amount must be an integer from 1 to 9007199254740991, got \"0\"",
            ),
            (
                "monthly:10:0",
                "the refill day must be an integer from 1 to 31, got \"0\"",
            ),
            (
                "monthly:10:32",
                "the refill day must be an integer from 1 to 31, got \"32\"",
            ),
        ] {
            let e = error(&["--credits", "1", "--refill", bad]);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bad_rate_limit_says_which_part_is_wrong() {
        for (bad, says) in [
            ("per_second:10", "expected NAME:LIMIT:DURATION_MS[:leased]"),
            (
                "a:1:1000:leased:x",
                "expected NAME:LIMIT:DURATION_MS[:leased]",
            ),
            ("", "expected NAME:LIMIT:DURATION_MS[:leased]"),
            (
                ":10:1000",
                "the limit's name must be 1 to 32 characters of a-z A-Z 0-9 _ - ., got \"\"",
            ),
            ("per second:10:1000", "got \"per second\""),
            ("é:10:1000", "got \"é\""),
            (&"n".repeat(33), "expected NAME"),
            (
                "a:0:1000",
                "the limit must be an integer from 1 to 1000000000, got \"0\"",
            ),
            ("a:1000000001:1000", "got \"1000000001\""),
            (
                "a:10:999",
                "the duration must be an integer from 1000 to 86400000, got \"999\"",
            ),
            ("a:10:86400001", "got \"86400001\""),
            ("a:10:1s", "got \"1s\""),
            (
                "a:10:1000:fast",
                "the mode must be exact or leased, got \"fast\"",
            ),
        ] {
            let e = error(&["--ratelimit", bad]);
            assert!(e.contains(says), "{bad}: {e}");
        }
        let long = format!("{}:10:1000", "n".repeat(33));
        assert!(error(&["--ratelimit", &long]).contains("1 to 32 characters"));
        let longest = format!("{}:10:1000", "n".repeat(32));
        assert_eq!(
            parse(&["--ratelimit", &longest]).unwrap().ratelimits.len(),
            1
        );
    }

    #[test]
    fn at_most_five_limits_with_different_names() {
        let six: Vec<String> = (0..6).map(|i| format!("l{i}:1:1000")).collect();
        let mut args = Vec::new();
        for l in &six {
            args.extend(["--ratelimit", l.as_str()]);
        }
        assert_eq!(parse(&args[..10]).unwrap().ratelimits.len(), 5);
        assert_eq!(
            error(&args),
            "--ratelimit may be given at most 5 times, got 6"
        );
        assert_eq!(
            error(&["--ratelimit", "a:1:1000", "--ratelimit", "a:5:60000:leased"]),
            "--ratelimit names must differ: \"a\" is given twice"
        );
    }

    #[test]
    fn the_flags_make_the_keys_quota() {
        assert!(!parse(&[]).unwrap().quota().is_metered());
        let q = parse(&[
            "--credits",
            "50",
            "--refill",
            "daily:50",
            "--ratelimit",
            "per_minute:600:60000:leased",
        ])
        .unwrap()
        .quota();
        let credits = q.credits.clone().unwrap();
        assert_eq!(credits.remaining, 50);
        assert_eq!(
            credits.refill,
            Some(Refill {
                interval: Interval::Daily,
                amount: 50,
                day: None
            })
        );
        assert_eq!(
            q.ratelimits,
            vec![limit("per_minute", 600, 60_000, Mode::Leased)]
        );
        // What the flags accept, the model accepts.
        assert_eq!(apikeys::quota::check_credits(&credits), Ok(()));
        assert_eq!(apikeys::quota::check_limits(&q.ratelimits), Ok(()));
        let only_limits = parse(&["--ratelimit", "s:1:1000"]).unwrap().quota();
        assert_eq!(only_limits.credits, None);
        assert!(only_limits.is_metered());
    }

    #[test]
    fn a_keys_quota_reads_as_one_line() {
        assert_eq!(describe(&json!({"name": "k"})), "");
        let key = json!({
            "credits": {"remaining": 95, "refill": {"interval": "monthly", "amount": 100, "day": 31}},
            "ratelimits": [
                {"name": "per_second", "limit": 10, "duration_ms": 1000, "mode": "exact"},
                {"name": "per_day", "limit": 5000, "duration_ms": 86400000, "mode": "leased"}
            ]
        });
        assert_eq!(
            describe(&key),
            "credits 95 (monthly 100 on day 31)  limit per_second 10/1000ms  limit per_day 5000/86400000ms leased"
        );
        let daily =
            json!({"credits": {"remaining": 0, "refill": {"interval": "daily", "amount": 7}}});
        assert_eq!(describe(&daily), "credits 0 (daily 7)");
        let plain = json!({"credits": {"remaining": 3, "refill": null}});
        assert_eq!(describe(&plain), "credits 3");
        let low = json!({"credits": {"remaining": 3, "refill": null, "low_at": 10}});
        assert_eq!(describe(&low), "credits 3 low at 10");
        let q = parse(&["--credits", "50", "--credits-low-at", "10"]).unwrap();
        assert_eq!(q.quota().credits.unwrap().low_at, Some(10));
        assert!(error(&["--credits", "5", "--credits-low-at", "0"]).contains("credits-low-at"));
        assert!(error(&["--credits-low-at", "3"]).contains("--credits <N>"));
    }
}
