//! The plant's shift calendar: which time is planned for production (ISO 22400-2's
//! planned busy time), in the plant's time zone, with breaks and holidays.
//!
//! A [`Shift`] runs on some weekdays from a local start time to a local end time (an end
//! at or before the start ends the next day: a night shift); its breaks are local times
//! within it. Local times are turned into UTC with the time zone's rules of that date, so
//! a daylight-saving change makes that night's shift an hour shorter or longer, as it is
//! on the shop floor: a local time that does not exist (skipped forward) starts at the
//! first minute that does; one that exists twice (the hour repeated) is taken the first
//! time.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::Serialize;

use crate::summary::MinuteRange;

/// The most shifts a calendar holds.
pub const MAX_SHIFTS: usize = 32;
/// The most breaks a shift holds.
pub const MAX_BREAKS: usize = 16;
/// The most holidays a calendar holds.
pub const MAX_HOLIDAYS: usize = 2_000;
/// The longest window a calendar is asked about: 400 days.
pub const MAX_WINDOW: Duration = Duration::days(400);

/// A calendar that cannot be used, saying why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// More than [`MAX_SHIFTS`] shifts, [`MAX_BREAKS`] breaks or [`MAX_HOLIDAYS`] holidays.
    #[error("too many {what}: {count} (at most {max})")]
    TooMany {
        /// Shifts, breaks or holidays.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// A shift with no weekday, an empty name, or a break outside its shift.
    #[error("shift '{shift}': {reason}")]
    Shift {
        /// The shift's name.
        shift: String,
        /// What is wrong.
        reason: String,
    },
}

/// One shift of the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shift {
    /// Its name (`Early`, `Night`, …).
    pub name: String,
    /// The weekdays it starts on.
    #[serde(serialize_with = "weekdays")]
    pub days: Vec<Weekday>,
    /// Local start time.
    pub start: NaiveTime,
    /// Local end time; at or before `start`, the next day.
    pub end: NaiveTime,
    /// Breaks, local `(start, end)`, within the shift.
    pub breaks: Vec<(NaiveTime, NaiveTime)>,
}

fn weekdays<S: serde::Serializer>(days: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(days.iter().map(|d| d.to_string()))
}

/// One occurrence of a shift: its name, the local date it starts on, its span (UTC) and
/// its planned time (the span without its breaks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShiftInstance {
    /// The shift's name.
    pub name: String,
    /// The local date it starts on.
    pub date: NaiveDate,
    /// Start (UTC).
    pub from: DateTime<Utc>,
    /// End (UTC, exclusive).
    pub to: DateTime<Utc>,
    /// The planned time: the span without breaks, in whole minutes.
    #[serde(skip)]
    pub planned: Vec<MinuteRange>,
}

/// The plant's shifts and holidays in its time zone; with no shift, every minute is
/// planned ([`ShiftCalendar::always`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftCalendar {
    tz: Tz,
    shifts: Vec<Shift>,
    holidays: BTreeSet<NaiveDate>,
}

/// The UTC time of a local date and time: the first of two (the repeated hour), or the
/// first minute after a time the clocks skipped.
fn resolve(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let mut local = date.and_time(time);
    for _ in 0..=24 * 60 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => local += Duration::minutes(1),
        }
    }
    // No zone skips a whole day of minutes; read the time as UTC rather than loop.
    Utc.from_utc_datetime(&date.and_time(time))
}

impl ShiftCalendar {
    /// A calendar of `shifts` and `holidays` (local dates without production) in `tz`.
    ///
    /// # Errors
    /// [`CalendarError`]: too many shifts, breaks or holidays; a shift without a name or a
    /// weekday; a break that is not within its shift. A shift whose start equals its end
    /// lasts 24 hours.
    pub fn new(
        tz: Tz,
        shifts: Vec<Shift>,
        holidays: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Self, CalendarError> {
        let holidays: BTreeSet<NaiveDate> = holidays.into_iter().collect();
        for (what, count, max) in [
            ("shifts", shifts.len(), MAX_SHIFTS),
            ("holidays", holidays.len(), MAX_HOLIDAYS),
        ] {
            if count > max {
                return Err(CalendarError::TooMany { what, count, max });
            }
        }
        for s in &shifts {
            let fail = |reason: String| CalendarError::Shift {
                shift: s.name.clone(),
                reason,
            };
            if s.name.trim().is_empty() {
                return Err(fail("a shift needs a name".into()));
            }
            if s.days.is_empty() {
                return Err(fail("no weekday".into()));
            }
            if s.breaks.len() > MAX_BREAKS {
                return Err(CalendarError::TooMany {
                    what: "breaks",
                    count: s.breaks.len(),
                    max: MAX_BREAKS,
                });
            }
            let length = Self::offset(s.start, s.end);
            for (a, b) in &s.breaks {
                let from = (*a - s.start).num_seconds().rem_euclid(86_400);
                let to = Self::offset(s.start, *b);
                if !(from < to && to <= length) {
                    return Err(fail(format!(
                        "the break {a}–{b} is not within {}–{}",
                        s.start, s.end
                    )));
                }
            }
        }
        Ok(ShiftCalendar {
            tz,
            shifts,
            holidays,
        })
    }

    /// No shifts: every minute is planned.
    pub fn always(tz: Tz) -> Self {
        ShiftCalendar {
            tz,
            shifts: Vec::new(),
            holidays: BTreeSet::new(),
        }
    }

    /// Whether shifts are set (otherwise every minute is planned).
    pub fn has_shifts(&self) -> bool {
        !self.shifts.is_empty()
    }

    /// The shifts.
    pub fn shifts(&self) -> &[Shift] {
        &self.shifts
    }

    /// The holidays (local dates).
    pub fn holidays(&self) -> impl Iterator<Item = &NaiveDate> {
        self.holidays.iter()
    }

    /// The time zone.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Seconds from `start` to `t` on a clock face, `(0, 86400]` for an end: a time at or
    /// before the start is the next day's.
    fn offset(start: NaiveTime, t: NaiveTime) -> i64 {
        let d = (t - start).num_seconds();
        if d <= 0 {
            d + 86_400
        } else {
            d
        }
    }

    /// The shift occurrences that overlap `[from, to)` (UTC), in start order (at most
    /// [`MAX_WINDOW`] of it is looked at).
    pub fn instances(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<ShiftInstance> {
        let to = to.min(from + MAX_WINDOW);
        let mut out = Vec::new();
        if to <= from {
            return out;
        }
        let first = from.with_timezone(&self.tz).date_naive() - Duration::days(1);
        let last = to.with_timezone(&self.tz).date_naive();
        let mut date = first;
        while date <= last {
            if !self.holidays.contains(&date) {
                for s in &self.shifts {
                    if !s.days.contains(&date.weekday()) {
                        continue;
                    }
                    let end_date = if s.end <= s.start {
                        date + Duration::days(1)
                    } else {
                        date
                    };
                    let (a, b) = (
                        resolve(self.tz, date, s.start),
                        resolve(self.tz, end_date, s.end),
                    );
                    if b <= from || a >= to || b <= a {
                        continue;
                    }
                    let mut planned = vec![(a, b)];
                    for (ba, bb) in &s.breaks {
                        // A break's start at or after the shift's start is that day's; its
                        // end at or before the start is the next day's (a 24-hour shift).
                        let day_of = |t: NaiveTime, end: bool| {
                            if t < s.start || (end && t == s.start) {
                                date + Duration::days(1)
                            } else {
                                date
                            }
                        };
                        let (x, y) = (
                            resolve(self.tz, day_of(*ba, false), *ba),
                            resolve(self.tz, day_of(*bb, true), *bb),
                        );
                        planned = planned
                            .into_iter()
                            .flat_map(|(p, q)| {
                                let mut keep = Vec::with_capacity(2);
                                if p < x.min(q) {
                                    keep.push((p, x.min(q)));
                                }
                                if y.max(p) < q {
                                    keep.push((y.max(p), q));
                                }
                                keep
                            })
                            .collect();
                    }
                    let planned = planned
                        .into_iter()
                        .map(|(p, q)| MinuteRange::new(p.max(from), q.min(to)))
                        .filter(|r| r.seconds() > 0)
                        .collect();
                    out.push(ShiftInstance {
                        name: s.name.clone(),
                        date,
                        from: a,
                        to: b,
                        planned,
                    });
                }
            }
            date += Duration::days(1);
        }
        out.sort_by_key(|i| i.from);
        out
    }

    /// The planned time within `[from, to)` (UTC) as sorted, disjoint ranges of whole
    /// minutes: the union of the shifts' planned time, or the whole window without shifts.
    pub fn planned(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<MinuteRange> {
        let to = to.min(from + MAX_WINDOW);
        if !self.has_shifts() {
            let r = MinuteRange::new(from, to);
            return if r.seconds() > 0 { vec![r] } else { Vec::new() };
        }
        let mut ranges: Vec<MinuteRange> = self
            .instances(from, to)
            .into_iter()
            .flat_map(|i| i.planned)
            .collect();
        ranges.sort();
        let mut merged: Vec<MinuteRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.from <= last.to => last.to = last.to.max(r.to),
                _ => merged.push(r),
            }
        }
        merged
    }

    /// The shift occurrence running at `t`, if any (the one that began last).
    pub fn shift_at(&self, t: DateTime<Utc>) -> Option<ShiftInstance> {
        self.instances(t, t + Duration::seconds(1))
            .into_iter()
            .rev()
            .find(|i| i.from <= t && t < i.to)
    }

    /// The span of a report `period` holding `t`: `shift` (the shift running at `t`, or
    /// the local day without shifts), `day`, `week` (from Monday) or `month`, in the
    /// calendar's time zone, as UTC `(from, to)`. `None` for another period name.
    pub fn period(&self, period: &str, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let day = t.with_timezone(&self.tz).date_naive();
        let midnight = NaiveTime::MIN;
        let (a, b) = match period {
            "shift" => {
                if let Some(i) = self.shift_at(t) {
                    return Some((i.from, i.to));
                }
                (day, day + Duration::days(1))
            }
            "day" => (day, day + Duration::days(1)),
            "week" => {
                let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
                (monday, monday + Duration::days(7))
            }
            "month" => {
                let first = day.with_day(1)?;
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
                };
                (first, next)
            }
            _ => return None,
        };
        Some((resolve(self.tz, a, midnight), resolve(self.tz, b, midnight)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn berlin() -> ShiftCalendar {
        use Weekday::*;
        ShiftCalendar::new(
            chrono_tz::Europe::Berlin,
            vec![
                Shift {
                    name: "Early".into(),
                    days: vec![Mon, Tue, Wed, Thu, Fri],
                    start: hm("06:00"),
                    end: hm("14:00"),
                    breaks: vec![(hm("10:00"), hm("10:30"))],
                },
                Shift {
                    name: "Night".into(),
                    days: vec![Sat],
                    start: hm("22:00"),
                    end: hm("06:00"),
                    breaks: vec![(hm("02:00"), hm("02:30"))],
                },
            ],
            [NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()],
        )
        .unwrap()
    }

    #[test]
    fn a_day_shift_with_a_break_in_winter_time() {
        let c = berlin();
        // Monday 2026-12-07, CET = UTC+1.
        let p = c.planned(at("2026-12-07T00:00:00Z"), at("2026-12-08T00:00:00Z"));
        assert_eq!(
            p,
            vec![
                MinuteRange::new(at("2026-12-07T05:00:00Z"), at("2026-12-07T09:00:00Z")),
                MinuteRange::new(at("2026-12-07T09:30:00Z"), at("2026-12-07T13:00:00Z")),
            ]
        );
        assert_eq!(
            c.shift_at(at("2026-12-07T12:00:00Z")).unwrap().name,
            "Early"
        );
        assert!(c.shift_at(at("2026-12-07T14:00:00Z")).is_none());
        // A holiday has no shift.
        assert!(c
            .planned(at("2026-12-25T00:00:00Z"), at("2026-12-26T00:00:00Z"))
            .is_empty());
    }

    #[test]
    fn a_night_shift_over_the_autumn_change_is_an_hour_longer() {
        let c = berlin();
        // Saturday 2026-10-24 22:00 CEST (20:00Z) to Sunday 06:00 CET (05:00Z): the clocks
        // went back at 03:00 CEST, so the shift is 9 hours, less a 30-minute break.
        let i = c.instances(at("2026-10-24T12:00:00Z"), at("2026-10-25T12:00:00Z"));
        assert_eq!(i.len(), 1);
        assert_eq!(
            (i[0].from, i[0].to),
            (at("2026-10-24T20:00:00Z"), at("2026-10-25T05:00:00Z"))
        );
        let planned: i64 = i[0].planned.iter().map(MinuteRange::seconds).sum();
        assert_eq!(planned, 8 * 3600 + 1800);
    }

    #[test]
    fn a_night_shift_over_the_spring_change_is_an_hour_shorter() {
        let c = berlin();
        // 2026-03-28 22:00 CET (21:00Z) to 03-29 06:00 CEST (04:00Z); the break at 02:00
        // local does not exist and starts at 03:00 CEST (01:00Z).
        let i = c.instances(at("2026-03-28T12:00:00Z"), at("2026-03-29T12:00:00Z"));
        assert_eq!(
            (i[0].from, i[0].to),
            (at("2026-03-28T21:00:00Z"), at("2026-03-29T04:00:00Z"))
        );
        let planned: i64 = i[0].planned.iter().map(MinuteRange::seconds).sum();
        assert_eq!(planned, 7 * 3600);
    }

    #[test]
    fn a_24_hour_shift_keeps_a_break_that_ends_at_its_start() {
        let c = ShiftCalendar::new(
            chrono_tz::UTC,
            vec![Shift {
                name: "All".into(),
                days: vec![Weekday::Mon],
                start: hm("06:00"),
                end: hm("06:00"),
                breaks: vec![(hm("05:30"), hm("06:00"))],
            }],
            [],
        )
        .unwrap();
        let p = c.planned(at("2026-12-07T00:00:00Z"), at("2026-12-09T00:00:00Z"));
        let planned: i64 = p.iter().map(MinuteRange::seconds).sum();
        assert_eq!(planned, 24 * 3600 - 1800);
    }

    #[test]
    fn periods_are_local() {
        let c = berlin();
        let (a, b) = c.period("week", at("2026-12-09T12:00:00Z")).unwrap();
        assert_eq!(
            (a, b),
            (at("2026-12-06T23:00:00Z"), at("2026-12-13T23:00:00Z"))
        );
        let (a, b) = c.period("month", at("2026-12-31T23:30:00Z")).unwrap();
        assert_eq!(
            (a, b),
            (at("2026-12-31T23:00:00Z"), at("2027-01-31T23:00:00Z"))
        );
        assert!(c.period("year", at("2026-12-09T12:00:00Z")).is_none());
    }

    #[test]
    fn bad_calendars_are_refused() {
        let bad = Shift {
            name: "Early".into(),
            days: vec![Weekday::Mon],
            start: hm("06:00"),
            end: hm("14:00"),
            breaks: vec![(hm("15:00"), hm("15:30"))],
        };
        assert!(ShiftCalendar::new(chrono_tz::UTC, vec![bad], []).is_err());
        assert!(ShiftCalendar::always(chrono_tz::UTC)
            .planned(at("2026-01-01T00:00:30Z"), at("2026-01-01T01:00:00Z"))
            .iter()
            .map(MinuteRange::seconds)
            .eq([3600]));
    }
}
