//! Cron expressions: crontab and the `cron` crate's forms, and where a tick
//! falls on the wall clock of a time zone (daylight saving time included).

use super::*;

/// Parses a cron expression: crontab's 5 fields (seconds `0` prepended,
/// day-of-week translated from crontab's `0`–`7`, Sunday `0` or `7`, to the
/// `cron` crate's `1`–`7`, Sunday `1`), the crate's own 6/7-field form, or a
/// shorthand such as `@daily`.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, ScheduleError> {
    let bad = |reason: String| ScheduleError::Cron {
        expr: expr.to_string(),
        reason,
    };
    let trimmed = expr.trim();
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    let translated = match fields.len() {
        _ if trimmed.starts_with('@') => trimmed.to_string(),
        5 => from_crontab(&fields).map_err(bad)?,
        6 | 7 => fields.join(" "),
        0 => return Err(bad("the expression is empty".into())),
        n => {
            return Err(bad(format!(
                "{n} fields: use 5 (crontab) or 6–7 (seconds first, optional year)"
            )))
        }
    };
    translated
        .parse::<cron::Schedule>()
        .map_err(|e| bad(e.to_string()))
}

/// Turns crontab's 5 fields into the `cron` crate's 6-field form.
pub(super) fn from_crontab(fields: &[&str]) -> Result<String, String> {
    let [minute, hour, dom, month, dow] = fields else {
        return Err(format!("expected 5 fields, got {}", fields.len()));
    };
    let unrestricted = |f: &str| f == "*" || f == "?";
    if !unrestricted(dom) && !unrestricted(dow) {
        return Err(
            "both day-of-month and day-of-week are restricted: crontab would run on either, \
             sverka's cron engine only on days matching both; restrict one of them, or use the \
             6-field form if both must match"
                .into(),
        );
    }
    let dom = if *dom == "?" { "*" } else { dom };
    Ok(format!(
        "0 {minute} {hour} {dom} {month} {}",
        crontab_days_of_week(dow)?
    ))
}

/// Translates a crontab day-of-week field (`0`–`7`, Sunday `0` or `7`, names,
/// lists, ranges, steps) into an explicit list in the `cron` crate's numbering
/// (`1`–`7`, Sunday `1`). Expanding to a list keeps ranges like `5-7`
/// (Friday–Sunday) and steps like `1-5/2` exact.
pub(super) fn crontab_days_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".into());
    }
    let mut days = BTreeSet::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("day-of-week step `{step}` is not a number"))?;
                if step == 0 {
                    return Err("day-of-week step cannot be 0".into());
                }
                (range, Some(step))
            }
            None => (item, None),
        };
        let (first, last) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (crontab_day(a)?, crontab_day(b)?);
            if a > b {
                return Err(format!(
                    "day-of-week range `{range}` runs backwards (write it as a list)"
                ));
            }
            (a, b)
        } else {
            let a = crontab_day(range)?;
            match step {
                Some(_) => (a, a.max(6)),
                None => (a, a),
            }
        };
        let step = step.unwrap_or(1) as usize;
        for day in (first..=last).step_by(step) {
            days.insert(day % 7);
        }
    }
    if days.is_empty() {
        return Err(format!("day-of-week field `{field}` names no day"));
    }
    Ok(days
        .iter()
        .map(|d| (d + 1).to_string())
        .collect::<Vec<_>>()
        .join(","))
}

/// One crontab day of week: `0`–`7` (0 and 7 = Sunday) or an English name.
pub(super) fn crontab_day(text: &str) -> Result<u32, String> {
    if let Ok(n) = text.parse::<u32>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("day of week {n} is out of range 0–7"))
        };
    }
    let day = match text.to_ascii_lowercase().as_str() {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        _ => return Err(format!("`{text}` is not a day of the week")),
    };
    Ok(day)
}

/// The first instant strictly after `after` at which `schedule` fires on the
/// wall clock of `tz` (see the module documentation for the DST rule).
pub fn next_fire_in(
    schedule: &cron::Schedule,
    tz: Tz,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // The schedule runs over naive wall-clock times (UTC stands in for a zone
    // without transitions); each candidate is then placed in the real zone.
    // That placement never goes backwards, so the first candidate landing after
    // `after` is the answer.
    let local_after = after.with_timezone(&tz).naive_local().and_utc();
    schedule
        .after(&local_after)
        .take(MAX_CANDIDATES)
        .filter_map(|wall| place(tz, wall.naive_utc()))
        .find(|at| *at > after)
}

/// The instant of a wall-clock time in `tz`: the first occurrence of a repeated
/// time, the end of the gap for a skipped one.
pub(super) fn place(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => {
            let mut probe = wall.with_second(0)?.with_nanosecond(0)?;
            for _ in 0..MAX_GAP_MINUTES {
                probe += chrono::Duration::minutes(1);
                if let Some(at) = tz.from_local_datetime(&probe).earliest() {
                    return Some(at.with_timezone(&Utc));
                }
            }
            None
        }
    }
}

/// The next time `def` fires after `after`, evaluated in its time zone;
/// `None` when the expression never fires again.
pub fn next_fire(def: &JobDef, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    next_fire_in(&def.schedule, def.timezone, after)
}
