//! Refill periods, in UTC: a daily refill's period starts at midnight, a monthly one's at
//! midnight of its day of the month, or of the month's last day when the month is shorter.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::{Interval, Refill};

impl Refill {
    /// The start of the period `now` falls in (epoch milliseconds).
    pub fn period_start(&self, now: DateTime<Utc>) -> i64 {
        let today = now.date_naive();
        let start = match self.interval {
            Interval::Daily => today,
            Interval::Monthly => monthly_start(today, self.day.unwrap_or(1)),
        };
        start
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis())
    }
}

/// The latest day on or before `today` that is day `day` of its month (or the month's last
/// day, when the month has fewer).
fn monthly_start(today: NaiveDate, day: u8) -> NaiveDate {
    let this = on_day(today.year(), today.month(), day);
    if this <= today {
        return this;
    }
    let (y, m) = if today.month() == 1 {
        (today.year() - 1, 12)
    } else {
        (today.year(), today.month() - 1)
    };
    on_day(y, m, day)
}

/// Day `day` of the month, or its last day.
fn on_day(year: i32, month: u32, day: u8) -> NaiveDate {
    let mut d = u32::from(day.clamp(1, 31));
    loop {
        if let Some(date) = NaiveDate::from_ymd_opt(year, month, d) {
            return date;
        }
        d -= 1;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn ms(y: i32, m: u32, d: u32) -> i64 {
        at(y, m, d, 0).timestamp_millis()
    }

    fn monthly(day: u8) -> Refill {
        Refill {
            interval: Interval::Monthly,
            amount: 1,
            day: Some(day),
        }
    }

    #[test]
    fn a_daily_period_starts_at_utc_midnight() {
        let r = Refill {
            interval: Interval::Daily,
            amount: 1,
            day: None,
        };
        assert_eq!(r.period_start(at(2026, 3, 1, 23)), ms(2026, 3, 1));
        assert_eq!(r.period_start(at(2026, 3, 2, 0)), ms(2026, 3, 2));
    }

    #[test]
    fn day_31_is_the_last_day_of_a_shorter_month() {
        let r = monthly(31);
        assert_eq!(r.period_start(at(2026, 2, 27, 12)), ms(2026, 1, 31));
        assert_eq!(r.period_start(at(2026, 2, 28, 0)), ms(2026, 2, 28));
        assert_eq!(r.period_start(at(2026, 3, 30, 0)), ms(2026, 2, 28));
        assert_eq!(r.period_start(at(2026, 3, 31, 1)), ms(2026, 3, 31));
        assert_eq!(r.period_start(at(2026, 4, 30, 1)), ms(2026, 4, 30));
        assert_eq!(r.period_start(at(2024, 2, 29, 1)), ms(2024, 2, 29));
    }

    #[test]
    fn a_monthly_period_before_its_day_began_last_month() {
        assert_eq!(
            monthly(15).period_start(at(2026, 1, 14, 0)),
            ms(2025, 12, 15)
        );
        assert_eq!(monthly(1).period_start(at(2026, 1, 1, 0)), ms(2026, 1, 1));
        assert_eq!(
            monthly(1).period_start(at(2025, 12, 31, 23)),
            ms(2025, 12, 1)
        );
    }
}
