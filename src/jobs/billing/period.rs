//! The billing period: whole local days in the configured time zone.

use super::*;

// ---------------------------------------------------------------------------
// Period
// ---------------------------------------------------------------------------

/// One local day of the period, as unix seconds `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    /// The local date.
    pub date: NaiveDate,
    /// Its first second.
    pub start: i64,
    /// The next day's first second.
    pub end: i64,
}

/// The run's days, in order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// First day.
    pub first: NaiveDate,
    /// Last day (inclusive).
    pub last: NaiveDate,
    /// Every day.
    pub days: Vec<Day>,
}

impl Period {
    /// The period in `tz`.
    pub fn new(tz: Tz, first: NaiveDate, last: NaiveDate) -> Result<Period, PeriodError> {
        Ok(Period {
            first,
            last,
            days: split_days(tz, first, last)?,
        })
    }

    /// First second (unix).
    pub fn start(&self) -> i64 {
        self.days.first().map_or(0, |d| d.start)
    }

    /// First second after the period (unix).
    pub fn end(&self) -> i64 {
        self.days.last().map_or(0, |d| d.end)
    }

    /// Index of the day `unix` falls in.
    pub fn day_of(&self, unix: i64) -> Option<usize> {
        if unix < self.start() || unix >= self.end() {
            return None;
        }
        Some(self.days.partition_point(|d| d.end <= unix))
    }

    /// `<first>-<last>` for file names.
    pub fn slug(&self) -> String {
        format!(
            "{}-{}",
            self.first.format("%Y-%m-%d"),
            self.last.format("%Y-%m-%d")
        )
    }
}

/// The period's first and last day: `--from/--to` when given, else the last
/// `window_days` complete days before `today` (a lone `--from` runs to
/// yesterday, a lone `--to` covers `window_days` days ending there).
pub fn resolve_period(
    today: NaiveDate,
    window_days: i64,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(NaiveDate, NaiveDate), PeriodError> {
    let back = |day: NaiveDate, n: i64| {
        day.checked_sub_days(chrono::Days::new(n.max(0).unsigned_abs()))
            .ok_or(PeriodError::Unplaceable {
                day,
                tz: chrono_tz::UTC,
            })
    };
    let yesterday = back(today, 1)?;
    let (first, last) = match (from, to) {
        (Some(f), Some(t)) => (f, t),
        (Some(f), None) => (f, yesterday.max(f)),
        (None, Some(t)) => (back(t, window_days - 1)?, t),
        (None, None) => (back(today, window_days)?, yesterday),
    };
    if first > last {
        return Err(PeriodError::Reversed {
            from: first,
            to: last,
        });
    }
    let days = (last - first).num_days() + 1;
    if days > MAX_BILLING_DAYS {
        return Err(PeriodError::TooLong {
            from: first,
            to: last,
            days,
            max: MAX_BILLING_DAYS,
        });
    }
    Ok((first, last))
}

/// The first second of `day` in `tz` (unix): local midnight, or the first
/// local minute that exists when a DST change skips midnight.
pub fn day_start(tz: Tz, day: NaiveDate) -> Result<i64, PeriodError> {
    let unplaceable = PeriodError::Unplaceable { day, tz };
    let midnight = day.and_hms_opt(0, 0, 0).ok_or(unplaceable.clone())?;
    (0..=180)
        .map(|m| midnight + chrono::Duration::minutes(m))
        .find_map(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.timestamp())
        .ok_or(unplaceable)
}

/// Every day from `first` to `last` (inclusive) with its bounds in `tz`.
pub fn split_days(tz: Tz, first: NaiveDate, last: NaiveDate) -> Result<Vec<Day>, PeriodError> {
    let mut out = Vec::new();
    let mut date = first;
    let mut start = day_start(tz, first)?;
    while date <= last {
        let next = date
            .succ_opt()
            .ok_or(PeriodError::Unplaceable { day: date, tz })?;
        let end = day_start(tz, next)?;
        out.push(Day { date, start, end });
        date = next;
        start = end;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Merging the answers
