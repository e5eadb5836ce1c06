//! Five-field cron expressions (`minute hour day-of-month month day-of-week`, as crontab(5)
//! reads them: `*`, values, ranges, steps, lists, month and weekday names; day of month and day of
//! week both restricted means either matches) and their next time in a time zone.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_any: bool,
    weekdays_any: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, lo: u32, hi: u32, names: &[&str], base: u32, field: &str) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + base);
    }
    let v: u32 = s
        .parse()
        .map_err(|_| format!("{field}: {s:?} is not a number"))?;
    if v < lo || v > hi {
        return Err(format!("{field}: {v} is outside {lo}-{hi}"));
    }
    Ok(v)
}

fn field(
    spec: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
    base: u32,
    name: &str,
) -> Result<Vec<bool>, String> {
    let mut set = vec![false; hi as usize + 1];
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let s: u32 = s
                    .parse()
                    .map_err(|_| format!("{name}: step {s:?} is not a number"))?;
                if s == 0 {
                    return Err(format!("{name}: a step of 0"));
                }
                (r, s)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(a, lo, hi, names, base, name)?,
                value(b, lo, hi, names, base, name)?,
            )
        } else {
            let v = value(range, lo, hi, names, base, name)?;
            (v, if part.contains('/') { hi } else { v })
        };
        if a > b {
            return Err(format!("{name}: the range {range} runs backwards"));
        }
        let mut v = a;
        while v <= b {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

impl Cron {
    pub fn parse(s: &str) -> Result<Cron, String> {
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "{s:?} has {} fields; a cron expression has five: minute hour day-of-month month day-of-week",
                f.len()
            ));
        }
        let mut weekdays = field(f[4], 0, 7, &DAYS, 0, "day of week")?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        Ok(Cron {
            minutes: field(f[0], 0, 59, &[], 0, "minute")?,
            hours: field(f[1], 0, 23, &[], 0, "hour")?,
            days: field(f[2], 1, 31, &[], 0, "day of month")?,
            months: field(f[3], 1, 12, &MONTHS, 1, "month")?,
            weekdays,
            days_any: f[2] == "*",
            weekdays_any: f[4] == "*",
        })
    }

    fn matches(&self, t: &DateTime<Tz>) -> bool {
        let day = self.days[t.day() as usize];
        let weekday = self.weekdays[t.weekday().num_days_from_sunday() as usize];
        let day_ok = match (self.days_any, self.weekdays_any) {
            (false, false) => day || weekday,
            _ => day && weekday,
        };
        self.minutes[t.minute() as usize]
            && self.hours[t.hour() as usize]
            && self.months[t.month() as usize]
            && day_ok
    }

    /// The first matching minute strictly after `after`, in `tz` (a local time skipped by a
    /// daylight-saving change never matches). `None` if nothing matches within five years.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut t = start;
        let end = start + Duration::days(366 * 5);
        while t < end {
            let local = tz.from_utc_datetime(&t.naive_utc());
            if self.matches(&local) {
                return Some(t);
            }
            // Whole hours or days that cannot match are skipped at once.
            if !self.months[local.month() as usize] || !self.hours[local.hour() as usize] {
                t += Duration::minutes(60 - i64::from(local.minute()));
            } else {
                t += Duration::minutes(1);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_times() {
        let utc: Tz = "UTC".parse().unwrap();
        let c = Cron::parse("0 3 * * *").unwrap();
        assert_eq!(
            c.next_after(at("2026-01-01T02:59:58Z"), utc),
            Some(at("2026-01-01T03:00:00Z"))
        );
        assert_eq!(
            c.next_after(at("2026-01-01T03:00:00Z"), utc),
            Some(at("2026-01-02T03:00:00Z"))
        );
        let lisbon: Tz = "Europe/Lisbon".parse().unwrap();
        // 03:00 in Lisbon is 02:00 UTC in summer.
        assert_eq!(
            c.next_after(at("2026-07-01T00:00:00Z"), lisbon),
            Some(at("2026-07-01T02:00:00Z"))
        );
        let every15 = Cron::parse("*/15 9-17 * * mon-fri").unwrap();
        // 2026-01-03 is a Saturday: the next is Monday 09:00.
        assert_eq!(
            every15.next_after(at("2026-01-03T10:00:00Z"), utc),
            Some(at("2026-01-05T09:00:00Z"))
        );
        let either = Cron::parse("0 0 13 * fri").unwrap();
        // The 13th or a Friday: 2026-01-02 is a Friday.
        assert_eq!(
            either.next_after(at("2026-01-01T00:00:00Z"), utc),
            Some(at("2026-01-02T00:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_name_the_field() {
        for (s, needle) in [
            ("every day", "five"),
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "step"),
            ("5-1 * * * *", "backwards"),
        ] {
            let e = Cron::parse(s).unwrap_err();
            assert!(e.contains(needle), "{s}: {e}");
        }
        assert!(Cron::parse("0 3 * jan-mar sun,sat").is_ok());
    }
}
