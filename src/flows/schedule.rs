//! When a schedule trigger fires next: a cron pattern read in an IANA time zone.
//!
//! croner does the calendar work, on jiff's zoned times, with the rules of Vixie cron and the
//! OCPS spec for daylight saving: a job at a fixed time that falls in the hour skipped in
//! spring runs right after the gap, the same day; one in the hour repeated in autumn runs
//! once, at the first occurrence. Interval jobs (`*/15 * * * *`) skip what the gap removes.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The first firing strictly after `after`.
pub fn next_fire(cron: &str, time_zone: &str, after: Timestamp) -> Result<Timestamp, String> {
    let pattern: croner::Cron = cron
        .parse()
        .map_err(|e| format!("`cron` = '{cron}' is not valid: {e}"))?;
    let zone = TimeZone::get(time_zone)
        .map_err(|_| format!("`time_zone` = '{time_zone}' is not an IANA time zone"))?;
    pattern
        .find_next_occurrence(&after.to_zoned(zone), false)
        .map(|z| z.timestamp())
        .map_err(|e| format!("`cron` = '{cron}' never fires after {after}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn berlin(t: Timestamp) -> String {
        t.to_zoned(TimeZone::get("Europe/Berlin").unwrap())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    #[test]
    fn a_daily_time_in_the_spring_gap_runs_right_after_it_the_same_day() {
        // 2026-03-29: Berlin goes from 02:00 CET straight to 03:00 CEST.
        let next = next_fire("30 2 * * *", "Europe/Berlin", at("2026-03-27T12:00:00Z")).unwrap();
        assert_eq!(berlin(next), "2026-03-28 02:30 CET");
        let next = next_fire("30 2 * * *", "Europe/Berlin", next).unwrap();
        assert_eq!(berlin(next), "2026-03-29 03:00 CEST");
        let next = next_fire("30 2 * * *", "Europe/Berlin", next).unwrap();
        assert_eq!(berlin(next), "2026-03-30 02:30 CEST");
    }

    #[test]
    fn a_daily_time_in_the_repeated_autumn_hour_runs_once() {
        // 2026-10-25: Berlin's 02:00-03:00 happens twice (CEST, then CET).
        let first = next_fire("30 2 * * *", "Europe/Berlin", at("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(berlin(first), "2026-10-25 02:30 CEST");
        let second = next_fire("30 2 * * *", "Europe/Berlin", first).unwrap();
        assert_eq!(berlin(second), "2026-10-26 02:30 CET");
    }

    #[test]
    fn six_in_the_evening_stays_six_across_the_change() {
        let before = next_fire("0 18 * * *", "Europe/Berlin", at("2026-10-24T12:00:00Z")).unwrap();
        let after = next_fire("0 18 * * *", "Europe/Berlin", before).unwrap();
        assert_eq!(berlin(before), "2026-10-24 18:00 CEST");
        assert_eq!(berlin(after), "2026-10-25 18:00 CET");
        // 25 hours apart in real time: the day of the change is an hour longer.
        assert_eq!((after.as_second() - before.as_second()) / 3600, 25);
    }

    #[test]
    fn bad_patterns_and_zones_are_named() {
        let e = next_fire("61 * * * *", "UTC", at("2026-01-01T00:00:00Z")).unwrap_err();
        assert!(e.contains("'61 * * * *'"), "{e}");
        let e = next_fire("0 9 * * *", "Moon/Base", at("2026-01-01T00:00:00Z")).unwrap_err();
        assert!(e.contains("Moon/Base"), "{e}");
    }
}
