//! What one mode of the quota simulation (`sim`) showed: the attempts of every verifier,
//! counted per window, against the limit or the credits the key had.
//!
//! - **Over-admission**: `VALID` answers beyond the limit in any window (every window, the
//!   partial first and last ones too), or beyond the credits. It must be 0.
//! - **Under-admission**: how far below the limit a window stayed although every task was
//!   asking throughout it (only windows wholly inside that time are judged), or how many
//!   credits were left unspent although verifies were refused for want of them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::child::Output;
use crate::report::Stats;

/// What the key allowed.
#[derive(Clone, Copy, Debug)]
pub enum Allowance {
    Credits(u64),
    Limit { limit: u64, duration_ms: u64 },
}

/// One mode's figures.
#[derive(Debug, Default)]
pub struct Tally {
    pub attempts: usize,
    pub valid: usize,
    pub rate_limited: usize,
    pub usage_exceeded: usize,
    /// Any other answer (a 503 after a timeout, say): never counted as admitted.
    pub other: BTreeMap<String, usize>,
    pub over: u64,
    /// The worst judged window's shortfall (or the credits left); `None` when nothing could
    /// be judged.
    pub under: Option<u64>,
    pub judged_windows: usize,
    /// The fewest and most admitted in a judged window.
    pub admitted_range: Option<(u64, u64)>,
    pub latency: Stats,
}

/// Counts the verifiers' outputs; demand ran from `go_ms` until the earliest task stopped.
pub fn tally(outputs: &[Output], allowance: Allowance, go_ms: i64) -> Tally {
    let mut t = Tally::default();
    let mut windows: BTreeMap<i64, u64> = BTreeMap::new();
    let mut durations = Vec::new();
    let demand_until = outputs
        .iter()
        .map(|o| o.demand_until_ms)
        .min()
        .unwrap_or(go_ms);
    for a in outputs.iter().flat_map(|o| &o.attempts) {
        t.attempts += 1;
        durations.push(Duration::from_micros(a.micros));
        match a.code.as_str() {
            "VALID" => {
                t.valid += 1;
                *windows.entry(a.reset.unwrap_or(0)).or_default() += 1;
            }
            "RATE_LIMITED" => t.rate_limited += 1,
            "USAGE_EXCEEDED" => t.usage_exceeded += 1,
            other => *t.other.entry(other.to_owned()).or_default() += 1,
        }
    }
    t.latency = Stats::of(&durations);
    match allowance {
        Allowance::Credits(credits) => {
            let valid = t.valid as u64;
            t.over = valid.saturating_sub(credits);
            // Judged only when demand outran the credits.
            if t.usage_exceeded > 0 {
                t.under = Some(credits.saturating_sub(valid));
            }
        }
        Allowance::Limit { limit, duration_ms } => {
            let d = i64::try_from(duration_ms).unwrap_or(i64::MAX);
            t.over = windows
                .values()
                .map(|n| n.saturating_sub(limit))
                .max()
                .unwrap_or(0);
            let judged: Vec<u64> = windows_between(go_ms, demand_until, d)
                .map(|reset| windows.get(&reset).copied().unwrap_or(0))
                .collect();
            t.judged_windows = judged.len();
            t.admitted_range = judged
                .iter()
                .min()
                .copied()
                .zip(judged.iter().max().copied());
            t.under = judged.iter().map(|n| limit.saturating_sub(*n)).max();
        }
    }
    t
}

/// The ends (`reset`s) of the windows of `d` ms that lie wholly within `from..=until`.
fn windows_between(from: i64, until: i64, d: i64) -> impl Iterator<Item = i64> {
    let first_start = from + (d - from.rem_euclid(d)) % d;
    (0..)
        .map(move |i| first_start + (i + 1) * d)
        .take_while(move |reset| *reset <= until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::child::Attempt;

    fn out(codes: &[(&str, Option<i64>)], until: i64) -> Output {
        Output {
            attempts: codes
                .iter()
                .map(|(c, r)| Attempt {
                    code: (*c).to_owned(),
                    micros: 1000,
                    reset: *r,
                })
                .collect(),
            demand_until_ms: until,
        }
    }

    #[test]
    fn only_windows_wholly_under_demand_are_judged_and_every_window_is_checked_for_excess() {
        let limit = Allowance::Limit {
            limit: 2,
            duration_ms: 1000,
        };
        // Demand from 500 to 3200: windows ending 2000 and 3000 are judged.
        let a = out(
            &[
                ("VALID", Some(1000)),
                ("VALID", Some(1000)),
                ("VALID", Some(1000)), // the partial first window over-admits
                ("VALID", Some(2000)),
                ("VALID", Some(2000)),
                ("VALID", Some(3000)), // one short
                ("RATE_LIMITED", None),
            ],
            3200,
        );
        let b = out(&[("HTTP 503", None)], 3900);
        let t = tally(&[a, b], limit, 500);
        assert_eq!((t.attempts, t.valid, t.rate_limited), (8, 6, 1));
        assert_eq!(t.other.get("HTTP 503"), Some(&1));
        assert_eq!(t.over, 1);
        assert_eq!(t.judged_windows, 2);
        assert_eq!(t.under, Some(1));
        assert_eq!(t.admitted_range, Some((1, 2)));
    }

    #[test]
    fn credits_are_judged_short_only_when_demand_outran_them() {
        let a = out(&[("VALID", None), ("VALID", None)], 10);
        let t = tally(std::slice::from_ref(&a), Allowance::Credits(3), 0);
        assert_eq!((t.over, t.under), (0, None));
        let b = out(&[("USAGE_EXCEEDED", None)], 10);
        let t = tally(&[a, b], Allowance::Credits(3), 0);
        assert_eq!((t.over, t.under), (0, Some(1)));
    }

    #[test]
    fn windows_start_on_multiples_of_the_duration() {
        let w: Vec<i64> = windows_between(0, 2500, 1000).collect();
        assert_eq!(w, [1000, 2000]);
        let w: Vec<i64> = windows_between(1, 2000, 1000).collect();
        assert_eq!(w, [2000]);
    }
}
