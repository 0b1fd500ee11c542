//! Business hours in the business's own time zone: when an outbound call may be made, and
//! when the next opening is. Pure: the caller passes "now", so tests drive the clock.
//!
//! Format: `mon-fri 09:00-18:00; sat 10:00-14:00` — entries separated by `;`, each a day
//! or a day range (wrapping ranges like `fri-mon` work) and one or more `HH:MM-HH:MM`
//! windows separated by spaces. An empty text means always open.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Opening windows per weekday (Monday = 0), in minutes after local midnight, end exclusive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BusinessHours {
    windows: [Vec<(u32, u32)>; 7],
    always: bool,
}

fn day_index(s: &str) -> Result<usize, String> {
    let s = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| s.starts_with(d) && s.len() >= 3)
        .ok_or_else(|| format!("{s:?} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"))
}

fn minutes(s: &str) -> Result<u32, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not a time HH:MM"))?;
    let (h, m): (u32, u32) = (
        h.trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a time HH:MM"))?,
        m.trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a time HH:MM"))?,
    );
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("{s:?} is not a time of day (00:00 to 24:00)"));
    }
    Ok(h * 60 + m)
}

impl BusinessHours {
    pub fn always_open() -> BusinessHours {
        BusinessHours {
            always: true,
            ..Default::default()
        }
    }

    pub fn parse(text: &str) -> Result<BusinessHours, String> {
        if text.trim().is_empty() {
            return Ok(BusinessHours::always_open());
        }
        let mut h = BusinessHours::default();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.split_whitespace();
            let days = parts.next().unwrap_or_default();
            let (from, to) = match days.split_once('-') {
                Some((a, b)) => (day_index(a)?, day_index(b)?),
                None => (day_index(days)?, day_index(days)?),
            };
            let mut windows = Vec::new();
            for w in parts {
                let (a, b) = w
                    .split_once('-')
                    .ok_or_else(|| format!("{w:?} in {entry:?} is not a window HH:MM-HH:MM"))?;
                let (a, b) = (minutes(a)?, minutes(b)?);
                if b <= a {
                    return Err(format!(
                        "window {w:?} in {entry:?} ends before it starts (split a window over midnight into two days)"
                    ));
                }
                windows.push((a, b));
            }
            if windows.is_empty() {
                return Err(format!(
                    "{entry:?} has days but no window: write e.g. \"mon-fri 09:00-18:00\""
                ));
            }
            let mut d = from;
            loop {
                h.windows[d].extend(windows.iter().copied());
                h.windows[d].sort_unstable();
                if d == to {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        Ok(h)
    }

    /// Open at `now`?
    pub fn is_open(&self, tz: Tz, now: DateTime<Utc>) -> bool {
        self.next_opening(tz, now) == Some(now)
    }

    /// `now` when open now, else the start of the next window (within the next 8 days);
    /// `None` when no window is ever open.
    pub fn next_opening(&self, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.always {
            return Some(now);
        }
        let local = now.with_timezone(&tz);
        let today = local.date_naive();
        for offset in 0..9i64 {
            let date = today + Duration::days(offset);
            let wd = date.weekday().num_days_from_monday() as usize;
            for &(start, end) in &self.windows[wd] {
                let (s, e) = (at(tz, date, start), at(tz, date, end));
                if now >= s && now < e {
                    return Some(now);
                }
                if s > now {
                    return Some(s);
                }
            }
        }
        None
    }
}

/// Local `date` + `minute` in `tz` as UTC. A time skipped by a DST change counts from the
/// moment after the gap; an ambiguous one (clocks back) is its first occurrence.
fn at(tz: Tz, date: NaiveDate, minute: u32) -> DateTime<Utc> {
    let (date, minute) = if minute >= 24 * 60 {
        (date + Duration::days(1), minute - 24 * 60)
    } else {
        (date, minute)
    };
    let t = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).expect("minute < 1440");
    let mut ndt = date.and_time(t);
    for _ in 0..4 {
        if let Some(dt) = tz.from_local_datetime(&ndt).earliest() {
            return dt.with_timezone(&Utc);
        }
        ndt += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&ndt)
}

/// An IANA time zone name ("Europe/Berlin", "Asia/Kolkata", "UTC").
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("{name:?} is not an IANA time zone name (e.g. Europe/Berlin, Asia/Kolkata, UTC)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn empty_hours_are_always_open() {
        let h = BusinessHours::parse("").unwrap();
        let now = utc("2026-12-05T03:00:00Z");
        assert!(h.is_open(chrono_tz::UTC, now));
    }

    #[test]
    fn weekday_window_in_the_business_time_zone() {
        let h = BusinessHours::parse("mon-fri 09:00-18:00").unwrap();
        let tz = parse_tz("Europe/Berlin").unwrap();
        // Thursday 2026-12-03 07:30 UTC = 08:30 in Berlin (CET, UTC+1): closed until 09:00.
        let now = utc("2026-12-03T07:30:00Z");
        assert!(!h.is_open(tz, now));
        assert_eq!(h.next_opening(tz, now), Some(utc("2026-12-03T08:00:00Z")));
        // 17:59 Berlin is open, 18:00 is not.
        assert!(h.is_open(tz, utc("2026-12-03T16:59:00Z")));
        assert!(!h.is_open(tz, utc("2026-12-03T17:00:00Z")));
        // Friday evening → Monday 09:00 Berlin.
        assert_eq!(
            h.next_opening(tz, utc("2026-12-04T18:00:00Z")),
            Some(utc("2026-12-07T08:00:00Z"))
        );
    }

    #[test]
    fn several_windows_and_wrapping_ranges() {
        let h = BusinessHours::parse("sat-sun 10:00-12:00 14:00-16:00; wed 08:00-09:00").unwrap();
        let tz = chrono_tz::UTC;
        // Saturday 2026-12-05 12:30 → 14:00 the same day.
        assert_eq!(
            h.next_opening(tz, utc("2026-12-05T12:30:00Z")),
            Some(utc("2026-12-05T14:00:00Z"))
        );
        // Sunday 16:00 → Wednesday 08:00.
        assert_eq!(
            h.next_opening(tz, utc("2026-12-06T16:00:00Z")),
            Some(utc("2026-12-09T08:00:00Z"))
        );
    }

    #[test]
    fn dst_gap_opens_after_the_gap() {
        // 2027-03-28: Berlin jumps from 02:00 to 03:00.
        let h = BusinessHours::parse("sun 02:30-04:00").unwrap();
        let tz = parse_tz("Europe/Berlin").unwrap();
        let open = h.next_opening(tz, utc("2027-03-27T12:00:00Z")).unwrap();
        assert_eq!(open, utc("2027-03-28T01:00:00Z"), "03:00 CEST");
    }

    #[test]
    fn bad_hours_and_zones_say_what_is_wrong() {
        for (text, want) in [
            ("mon-fri", "no window"),
            ("mon-fri 18:00-09:00", "ends before it starts"),
            ("funday 09:00-10:00", "not a weekday"),
            ("mon 9-10", "not a time"),
            ("mon 09:00-25:00", "not a time of day"),
        ] {
            let e = BusinessHours::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert!(parse_tz("Mars/Olympus").unwrap_err().contains("IANA"));
    }
}
