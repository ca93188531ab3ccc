//! The scheduler daemon behind `sverka schedule`: job definitions from
//! `jobs/*.toml`, cron expressions evaluated in each job's time zone, and a loop
//! that fires the jobs, never overlaps a job with itself, records what it did in
//! the `runs` table and pings healthchecks-style heartbeats.
//!
//! # Cron expressions
//!
//! Two forms are accepted (see [`parse_cron`]):
//!
//! * the standard crontab form with 5 fields (`minute hour day-of-month month
//!   day-of-week`, day-of-week `0`–`7` with `0` and `7` = Sunday, names like
//!   `mon-fri` allowed); the seconds field `0` is prepended;
//! * the `cron` crate's form with 6 or 7 fields (seconds first, optional year
//!   last, day-of-week `1`–`7` with `1` = Sunday), taken as is;
//! * the crate's shorthands (`@hourly`, `@daily`, …).
//!
//! Crontab ORs a restricted day-of-month with a restricted day-of-week while the
//! `cron` crate ANDs them; a 5-field expression restricting both is therefore
//! refused rather than silently run on other days than its author meant.
//!
//! # Time zones and daylight saving time
//!
//! Expressions are matched against the wall clock of the job's time zone
//! ([`next_fire`]):
//!
//! * a wall-clock time that does not exist (the hour skipped when clocks move
//!   forward) is moved forward to the first minute after the jump, so a nightly
//!   job at 02:30 Europe/Berlin runs at 03:00 CEST on the last Sunday of March;
//!   ticks landing on the same instant fire once;
//! * a wall-clock time that happens twice (the hour repeated when clocks move
//!   back) fires once, at its first occurrence. An every-15-minutes job in such
//!   a zone therefore pauses during the repeated hour.
//!
//! # Overlaps, missed ticks and catch-up
//!
//! A job never overlaps itself: two definitions of the same job kind (say
//! `stock-nightly` and `stock-hourly`) never run at once either, since the real
//! jobs share one lock per kind. A tick that comes while the job is running is
//! recorded as a `skipped` run with the reason. When that run ends, the job runs
//! once more right away: one catch-up run, however many ticks were skipped.
//! When the scheduler itself wakes late (the machine slept, the clock jumped),
//! all the ticks that passed collapse into one run as well; ticks are never
//! replayed in a burst.
//!
//! # Shutdown
//!
//! When the shutdown future resolves the scheduler fires nothing new, raises the
//! [`StopSignal`] of the running jobs and waits up to the grace period for them
//! to finish their current step. Jobs still running after that are cancelled and
//! recorded as failed.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio::task::{JoinError, JoinSet};

use super::StopSignal;
use crate::connectors::http::HttpPolicy;
use crate::db::runs::{self, RunEnd, RunStatus};
use crate::db::Db;
use crate::jobs::Job;
use crate::report::summary::JobSummary;
use crate::secret::Secret;

/// The time zone of a job definition without a `timezone` key.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::Europe::Moscow;

/// How long the scheduler waits on shutdown for running jobs, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// Timeout of one heartbeat ping, by default.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// The keys a job definition file may contain.
pub const KEYS: [&str; 9] = [
    "name",
    "job",
    "cron",
    "timezone",
    "dry_run",
    "window_days",
    "mode",
    "heartbeat_url",
    "enabled",
];

/// Upper bound of cron candidates looked at for one [`next_fire`]: the only
/// candidates passed over are those of a repeated (ambiguous) hour, at most
/// 3,600 for an every-second schedule.
const MAX_CANDIDATES: usize = 10_000;

/// Upper bound of a daylight-saving gap, in minutes (real gaps are 30–60).
const MAX_GAP_MINUTES: u32 = 24 * 60;

/// A boxed, sendable future (the return type of the object-safe traits here).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Errors of job definitions and cron expressions.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// A cron expression that cannot be parsed.
    #[error("bad cron expression `{expr}`: {reason}")]
    Cron {
        /// The expression as written.
        expr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The jobs folder or a definition file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A definition file is not valid TOML.
    #[error("{}: not valid TOML: {reason}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// A key sverka does not know (a typo, most likely).
    #[error("{}: unknown key `{key}` (known keys: {})", path.display(), KEYS.join(", "))]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A required key is missing.
    #[error("{}: missing key `{key}`", path.display())]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
    },
    /// A key with a value of the wrong type or out of range.
    #[error("{}: key `{key}`: {reason}", path.display())]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Two files define a job of the same name.
    #[error("job `{name}` is defined twice: in {} and in {}", first.display(), second.display())]
    DuplicateName {
        /// The name.
        name: String,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
}

// ---------------------------------------------------------------------------
// Cron expressions
// ---------------------------------------------------------------------------

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
fn from_crontab(fields: &[&str]) -> Result<String, String> {
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
fn crontab_days_of_week(field: &str) -> Result<String, String> {
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
fn crontab_day(text: &str) -> Result<u32, String> {
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
fn place(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
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

// ---------------------------------------------------------------------------
// Job definitions
// ---------------------------------------------------------------------------

/// One scheduled job, from one `jobs/*.toml` file.
#[derive(Clone)]
pub struct JobDef {
    /// Unique name (`stock-nightly`).
    pub name: String,
    /// Which reconciliation it runs.
    pub job: Job,
    /// The cron expression as written.
    pub cron: String,
    /// The parsed expression.
    pub schedule: cron::Schedule,
    /// The zone the expression is read in.
    pub timezone: Tz,
    /// Plan and report only.
    pub dry_run: bool,
    /// How many days back the job looks, if it has a window.
    pub window_days: Option<u32>,
    /// A stock job's mode (`full` | `delta`), over `[stock] mode`.
    pub mode: Option<crate::config::StockMode>,
    /// Healthchecks-style ping URL (it carries a token: kept secret).
    pub heartbeat_url: Option<Secret>,
    /// Whether the scheduler fires it.
    pub enabled: bool,
    /// The file it came from.
    pub source: PathBuf,
}

impl std::fmt::Debug for JobDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobDef")
            .field("name", &self.name)
            .field("job", &self.job)
            .field("cron", &self.cron)
            .field("timezone", &self.timezone)
            .field("dry_run", &self.dry_run)
            .field("window_days", &self.window_days)
            .field("mode", &self.mode)
            .field("heartbeat_url", &self.heartbeat_url)
            .field("enabled", &self.enabled)
            .field("source", &self.source)
            .finish()
    }
}

impl JobDef {
    /// Parses one definition file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<JobDef, ScheduleError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ScheduleError::Toml {
            path: path.to_path_buf(),
            reason: e.message().to_string(),
        })?;
        let file = DefFile {
            path,
            table: &table,
        };
        file.reject_unknown_keys()?;
        let name = file.required_str("name")?;
        if !valid_name(&name) {
            return Err(file.bad(
                "name",
                "use letters, digits, `-`, `_` and `.` only (it names runs and logs)".into(),
            ));
        }
        let cron = file.required_str("cron")?;
        let schedule = parse_cron(&cron).map_err(|e| file.bad("cron", e.to_string()))?;
        Ok(JobDef {
            name,
            job: file.job_kind()?,
            cron,
            schedule,
            timezone: file.timezone()?,
            dry_run: file.optional_bool("dry_run")?.unwrap_or(false),
            window_days: file.window_days()?,
            mode: file.mode()?,
            heartbeat_url: file.heartbeat_url()?,
            enabled: file.optional_bool("enabled")?.unwrap_or(true),
            source: path.to_path_buf(),
        })
    }

    /// Reads and parses one definition file.
    pub fn load(path: &Path) -> Result<JobDef, ScheduleError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        JobDef::parse(&text, path)
    }
}

/// Loads every `*.toml` file of `dir`, sorted by file name; names must be unique.
pub fn load_dir(dir: &Path) -> Result<Vec<JobDef>, ScheduleError> {
    let read_err = |source| ScheduleError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut defs: Vec<JobDef> = Vec::with_capacity(paths.len());
    for path in paths {
        let def = JobDef::load(&path)?;
        if let Some(first) = defs.iter().find(|d| d.name == def.name) {
            return Err(ScheduleError::DuplicateName {
                name: def.name,
                first: first.source.clone(),
                second: path,
            });
        }
        defs.push(def);
    }
    Ok(defs)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A parsed definition file with typed accessors naming the file and key in errors.
struct DefFile<'a> {
    path: &'a Path,
    table: &'a toml::Table,
}

impl DefFile<'_> {
    fn bad(&self, key: &'static str, reason: String) -> ScheduleError {
        ScheduleError::BadValue {
            path: self.path.to_path_buf(),
            key,
            reason,
        }
    }

    fn reject_unknown_keys(&self) -> Result<(), ScheduleError> {
        match self.table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            Some(key) => Err(ScheduleError::UnknownKey {
                path: self.path.to_path_buf(),
                key: key.clone(),
            }),
            None => Ok(()),
        }
    }

    fn optional_str(&self, key: &'static str) -> Result<Option<String>, ScheduleError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(toml::Value::String(_)) => Err(self.bad(key, "must not be empty".into())),
            Some(other) => Err(self.bad(
                key,
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    fn required_str(&self, key: &'static str) -> Result<String, ScheduleError> {
        self.optional_str(key)?
            .ok_or_else(|| ScheduleError::MissingKey {
                path: self.path.to_path_buf(),
                key,
            })
    }

    fn optional_bool(&self, key: &'static str) -> Result<Option<bool>, ScheduleError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.bad(
                key,
                format!("expected true or false, found {}", other.type_str()),
            )),
        }
    }

    fn job_kind(&self) -> Result<Job, ScheduleError> {
        let text = self.required_str("job")?;
        Job::from_name(&text).ok_or_else(|| {
            self.bad(
                "job",
                format!("`{text}` is not a job: use stock, orders, billing or scans"),
            )
        })
    }

    fn timezone(&self) -> Result<Tz, ScheduleError> {
        match self.optional_str("timezone")? {
            None => Ok(DEFAULT_TIMEZONE),
            Some(name) => name.parse::<Tz>().map_err(|_| {
                self.bad(
                    "timezone",
                    format!("`{name}` is not an IANA time zone (like Europe/Moscow)"),
                )
            }),
        }
    }

    fn mode(&self) -> Result<Option<crate::config::StockMode>, ScheduleError> {
        use crate::config::StockMode;
        match self.optional_str("mode")?.as_deref() {
            None => Ok(None),
            Some("full") => Ok(Some(StockMode::Full)),
            Some("delta") => Ok(Some(StockMode::Delta)),
            Some(other) => Err(self.bad(
                "mode",
                format!("`{other}` is not a stock mode: use \"full\" or \"delta\""),
            )),
        }
    }

    fn window_days(&self) -> Result<Option<u32>, ScheduleError> {
        match self.table.get("window_days") {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => match u32::try_from(*n) {
                Ok(days) if (1..=3660).contains(&days) => Ok(Some(days)),
                _ => Err(self.bad("window_days", format!("{n} is not between 1 and 3660"))),
            },
            Some(other) => Err(self.bad(
                "window_days",
                format!(
                    "expected a whole number of days, found {}",
                    other.type_str()
                ),
            )),
        }
    }

    fn heartbeat_url(&self) -> Result<Option<Secret>, ScheduleError> {
        let Some(url) = self.optional_str("heartbeat_url")? else {
            return Ok(None);
        };
        // The URL carries the check's token: errors describe it, never repeat it.
        match reqwest::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(Some(Secret::new(url))),
            Ok(_) => Err(self.bad("heartbeat_url", "must be an http:// or https:// URL".into())),
            Err(e) => Err(self.bad("heartbeat_url", format!("not a URL ({e})"))),
        }
    }
}

// ---------------------------------------------------------------------------
// Clocks
// ---------------------------------------------------------------------------

/// The scheduler's notion of time, injectable so tests never wait for real ticks.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `t` has passed (at once when it already has).
    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'_, ()>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Longest single sleep of [`SystemClock`]: the wall clock is re-read at least
/// this often, so a suspended machine or a clock step is noticed in time.
const SYSTEM_SLEEP_SLICE: Duration = Duration::from_secs(30);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let left = match (t - Utc::now()).to_std() {
                    Ok(left) if !left.is_zero() => left,
                    _ => return,
                };
                tokio::time::sleep(left.min(SYSTEM_SLEEP_SLICE)).await;
            }
        })
    }
}

/// A clock moved by hand, for tests: sleepers wake when it passes their time.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug)]
struct ManualState {
    now: DateTime<Utc>,
    sleepers: Vec<(DateTime<Utc>, oneshot::Sender<()>)>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            state: Mutex::new(ManualState {
                now: start,
                sleepers: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ManualState> {
        // The state stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the clock to `t` (never backwards) and wakes the sleepers whose time has come.
    pub fn set(&self, t: DateTime<Utc>) {
        let mut state = self.lock();
        if t > state.now {
            state.now = t;
        }
        let now = state.now;
        let (due, waiting): (Vec<_>, Vec<_>) =
            state.sleepers.drain(..).partition(|(at, _)| *at <= now);
        state.sleepers = waiting;
        drop(state);
        for (_, waker) in due {
            // A sleeper that was dropped meanwhile does not mind.
            let _ = waker.send(());
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let target = self.now() + by;
        self.set(target);
    }

    /// How many sleepers are waiting (dropped sleeps are not counted).
    pub fn sleepers(&self) -> usize {
        let mut state = self.lock();
        state.sleepers.retain(|(_, waker)| !waker.is_closed());
        state.sleepers.len()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'_, ()> {
        let mut state = self.lock();
        if t <= state.now {
            return Box::pin(std::future::ready(()));
        }
        let (waker, woken) = oneshot::channel();
        state.sleepers.retain(|(_, w)| !w.is_closed());
        state.sleepers.push((t, waker));
        Box::pin(async move {
            // An error means the clock went away: nothing will ever wake us.
            if woken.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

// ---------------------------------------------------------------------------
// The scheduler
// ---------------------------------------------------------------------------

/// Runs one job definition; the real implementation wires the jobs, tests use fakes.
///
/// A runner records its own run in the `runs` table and returns its id in the
/// summary; the scheduler records the run itself when the id is 0, finishes a
/// run left `running`, and records a failed run when the runner panics.
pub trait JobRunner: Send + Sync {
    /// Runs `def` once. `stop` is raised on shutdown: the job finishes its
    /// current step, journals it and returns.
    fn run<'a>(
        &'a self,
        def: &'a JobDef,
        stop: StopSignal,
    ) -> Pin<Box<dyn Future<Output = JobSummary> + Send + 'a>>;
}

/// The cron daemon: fires job definitions on their ticks (see the module documentation).
pub struct Scheduler {
    defs: Vec<Arc<JobDef>>,
    runner: Arc<dyn JobRunner>,
    clock: Arc<dyn Clock>,
    state: Db,
    grace: Duration,
    heartbeat: Heartbeat,
    status: SchedulerStatus,
}

/// What a scheduler is running right now, readable from outside while it runs
/// (for logs, health checks and tests).
#[derive(Debug, Clone, Default)]
pub struct SchedulerStatus(Arc<Mutex<BTreeMap<String, DateTime<Utc>>>>);

impl SchedulerStatus {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, DateTime<Utc>>> {
        // A plain map: consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The definitions running now, by name, with the time their run started.
    pub fn running(&self) -> Vec<(String, DateTime<Utc>)> {
        self.lock().iter().map(|(n, t)| (n.clone(), *t)).collect()
    }

    /// Whether no job is running (finished runs are recorded by then).
    pub fn is_idle(&self) -> bool {
        self.lock().is_empty()
    }
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("defs", &self.defs)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

/// A run in progress.
struct Running {
    def: usize,
    started: DateTime<Utc>,
    cancel: Arc<Notify>,
}

/// The scheduler loop's bookkeeping.
struct LoopState {
    next: Vec<Option<DateTime<Utc>>>,
    catch_up: Vec<bool>,
    running: HashMap<&'static str, Running>,
    tasks: JoinSet<usize>,
    task_defs: HashMap<tokio::task::Id, usize>,
    stop: StopSignal,
}

impl Scheduler {
    /// A scheduler over `defs` (disabled ones are kept for listing, never fired).
    pub fn new(
        defs: Vec<JobDef>,
        runner: Arc<dyn JobRunner>,
        clock: Arc<dyn Clock>,
        state: Db,
    ) -> Self {
        Scheduler {
            defs: defs.into_iter().map(Arc::new).collect(),
            runner,
            clock,
            state,
            grace: DEFAULT_GRACE,
            heartbeat: Heartbeat::new(DEFAULT_HEARTBEAT_TIMEOUT),
            status: SchedulerStatus::default(),
        }
    }

    /// A handle on what this scheduler is running.
    pub fn status(&self) -> SchedulerStatus {
        self.status.clone()
    }

    /// How long shutdown waits for running jobs before cancelling them. The
    /// grace period is measured on the runtime's monotonic clock, not on the
    /// injected [`Clock`]: it bounds a real wait.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The timeout of one heartbeat ping.
    pub fn with_heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat = Heartbeat::new(timeout);
        self
    }

    /// The definitions.
    pub fn defs(&self) -> impl Iterator<Item = &JobDef> {
        self.defs.iter().map(|d| d.as_ref())
    }

    /// Fires the jobs until `shutdown` resolves, then stops them (see the module
    /// documentation) and returns.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let now = self.clock.now();
        let mut st = LoopState {
            next: self
                .defs
                .iter()
                .map(|d| d.enabled.then(|| next_fire(d, now)).flatten())
                .collect(),
            catch_up: vec![false; self.defs.len()],
            running: HashMap::new(),
            tasks: JoinSet::new(),
            task_defs: HashMap::new(),
            stop: StopSignal::new(),
        };
        for (def, next) in self.defs.iter().zip(&st.next) {
            match next {
                Some(at) => tracing::info!(job = %def.name, next = %at, "scheduled"),
                None => tracing::info!(job = %def.name, "not scheduled (disabled or never due)"),
            }
        }
        loop {
            let sleep = match st.next.iter().flatten().min() {
                Some(due) => self.clock.sleep_until(*due),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(done) = st.tasks.join_next_with_id(), if !st.tasks.is_empty() => {
                    if let Some(kind) = self.settle(&mut st, done).await {
                        self.catch_up(&mut st, kind);
                    }
                }
                _ = sleep => {
                    let now = self.clock.now();
                    self.fire_due(&mut st, now).await;
                }
            }
        }
        self.drain(&mut st).await;
    }

    /// Fires every definition whose tick has come; all its ticks up to `now`
    /// collapse into this one firing.
    async fn fire_due(&self, st: &mut LoopState, now: DateTime<Utc>) {
        for index in 0..self.defs.len() {
            let Some(tick) = st.next[index].filter(|t| *t <= now) else {
                continue;
            };
            let def = &self.defs[index];
            st.next[index] = next_fire(def, now);
            let kind = def.job.name();
            match st.running.get(kind) {
                Some(busy) => {
                    let reason = format!(
                        "skipped the {tick} tick of `{}`: `{}` (started {}) is still running; \
                         one catch-up run follows when it ends",
                        def.name, self.defs[busy.def].name, busy.started
                    );
                    tracing::warn!(job = %def.name, "{reason}");
                    st.catch_up[index] = true;
                    self.record_skip(def, tick, &reason).await;
                }
                None => self.start(st, index, now),
            }
        }
    }

    /// Starts a run of definition `index`.
    fn start(&self, st: &mut LoopState, index: usize, now: DateTime<Utc>) {
        let def = Arc::clone(&self.defs[index]);
        tracing::info!(job = %def.name, kind = def.job.name(), "starting");
        let cancel = Arc::new(Notify::new());
        let attempt = Attempt {
            def: Arc::clone(&def),
            runner: Arc::clone(&self.runner),
            state: self.state.clone(),
            heartbeat: self.heartbeat.clone(),
            stop: st.stop.clone(),
            cancel: Arc::clone(&cancel),
        };
        let handle = st.tasks.spawn(async move {
            attempt.run().await;
            index
        });
        st.task_defs.insert(handle.id(), index);
        self.status.lock().insert(def.name.clone(), now);
        st.running.insert(
            def.job.name(),
            Running {
                def: index,
                started: now,
                cancel,
            },
        );
    }

    /// Books a finished attempt; returns the job kind that became free.
    async fn settle(
        &self,
        st: &mut LoopState,
        done: Result<(tokio::task::Id, usize), JoinError>,
    ) -> Option<&'static str> {
        let index = match done {
            Ok((id, index)) => {
                st.task_defs.remove(&id);
                index
            }
            Err(e) => {
                let index = st.task_defs.remove(&e.id())?;
                // The attempt wrapper itself died (it handles every error of
                // the job): make sure the run does not go unrecorded.
                let def = &self.defs[index];
                let reason = format!("the scheduler lost the run: {}", join_reason(e));
                tracing::error!(job = %def.name, "{reason}");
                record_failed(&self.state, def, &reason).await;
                index
            }
        };
        let kind = self.defs[index].job.name();
        st.running.remove(kind);
        self.status.lock().remove(&self.defs[index].name);
        Some(kind)
    }

    /// Starts the one catch-up run owed to a definition of `kind`, if any.
    fn catch_up(&self, st: &mut LoopState, kind: &'static str) {
        let owed =
            (0..self.defs.len()).find(|&i| st.catch_up[i] && self.defs[i].job.name() == kind);
        if let Some(index) = owed {
            st.catch_up[index] = false;
            tracing::info!(job = %self.defs[index].name, "catch-up run for skipped ticks");
            let now = self.clock.now();
            self.start(st, index, now);
        }
    }

    /// Stops the running jobs: stop signal, grace period, then cancellation.
    async fn drain(&self, st: &mut LoopState) {
        st.stop.stop();
        if st.tasks.is_empty() {
            return;
        }
        tracing::info!(
            running = st.tasks.len(),
            grace_s = self.grace.as_secs_f64(),
            "shutting down: waiting for running jobs to finish their current step"
        );
        self.wait_all(st, self.grace).await;
        if st.tasks.is_empty() {
            return;
        }
        for running in st.running.values() {
            tracing::warn!(
                job = %self.defs[running.def].name,
                "still running after the grace period: cancelling it"
            );
            running.cancel.notify_one();
        }
        // Cancelled attempts record their failure and ping their heartbeat.
        self.wait_all(st, self.grace + self.heartbeat.timeout).await;
        if !st.tasks.is_empty() {
            tracing::error!(left = st.tasks.len(), "abandoning jobs that would not stop");
            st.tasks.abort_all();
        }
    }

    /// Settles attempts as they end, for at most `limit`.
    async fn wait_all(&self, st: &mut LoopState, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !st.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, st.tasks.join_next_with_id()).await {
                Ok(Some(done)) => {
                    self.settle(st, done).await;
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Records a skipped tick in the `runs` table.
    async fn record_skip(&self, def: &JobDef, tick: DateTime<Utc>, reason: &str) {
        let end = RunEnd {
            summary: serde_json::json!({
                "schedule": def.name,
                "tick": tick.to_rfc3339(),
            }),
            error: Some(reason.to_string()),
            ..RunEnd::default()
        };
        record(&self.state, def, RunStatus::Skipped, &end).await;
    }
}

/// One firing of a definition: heartbeat, the job in its own task (so a panic
/// is caught), bookkeeping, heartbeat.
struct Attempt {
    def: Arc<JobDef>,
    runner: Arc<dyn JobRunner>,
    state: Db,
    heartbeat: Heartbeat,
    stop: StopSignal,
    cancel: Arc<Notify>,
}

impl Attempt {
    async fn run(self) {
        self.heartbeat.ping(&self.def, Ping::Start).await;
        let (runner, def, stop) = (
            Arc::clone(&self.runner),
            Arc::clone(&self.def),
            self.stop.clone(),
        );
        let mut job = tokio::spawn(async move { runner.run(&def, stop).await });
        let outcome = tokio::select! {
            outcome = &mut job => outcome,
            _ = self.cancel.notified() => {
                job.abort();
                (&mut job).await
            }
        };
        let succeeded = match outcome {
            Ok(summary) => ensure_recorded(&self.state, &self.def, summary).await,
            Err(e) => {
                let reason = join_reason(e);
                tracing::error!(job = %self.def.name, "{reason}");
                record_failed(&self.state, &self.def, &reason).await;
                false
            }
        };
        let ping = if succeeded { Ping::Success } else { Ping::Fail };
        self.heartbeat.ping(&self.def, ping).await;
    }
}

/// Why a job task ended without a summary.
fn join_reason(e: JoinError) -> String {
    if e.is_panic() {
        let payload = e.into_panic();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        format!("the job panicked: {message}")
    } else {
        "the job was cancelled: it did not stop within the shutdown grace period".into()
    }
}

/// Makes sure the run a job returned is recorded and finished; returns whether
/// it succeeded (exit code 0 or 1).
async fn ensure_recorded(state: &Db, def: &JobDef, summary: JobSummary) -> bool {
    let status = match summary.status {
        RunStatus::Running => RunStatus::Failed,
        other => other,
    };
    let mut error = summary.error.clone().or_else(|| summary.guard.clone());
    if summary.status == RunStatus::Running {
        error.get_or_insert_with(|| "the job returned without finishing its run".into());
    }
    tracing::info!(job = %def.name, run = summary.run_id, status = status.as_str(), "finished");
    let end = RunEnd {
        counts: summary.counts.clone(),
        report_paths: summary.reports.clone(),
        summary: serde_json::to_value(&summary).unwrap_or_default(),
        error,
    };
    let stored = match summary.run_id {
        0 => None,
        id => match runs::get(state, id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(job = %def.name, run = id, error = %e, "cannot read the run back");
                None
            }
        },
    };
    match stored {
        Some(run) if run.status != RunStatus::Running => {}
        Some(run) => {
            if let Err(e) = runs::finish(state, run.id, status, &end).await {
                tracing::error!(job = %def.name, run = run.id, error = %e, "cannot record the run end");
            }
        }
        None => record(state, def, status, &end).await,
    }
    status != RunStatus::Failed && status != RunStatus::Guarded
}

/// Records a failed run with `reason`.
async fn record_failed(state: &Db, def: &JobDef, reason: &str) {
    let end = RunEnd {
        summary: serde_json::json!({ "schedule": def.name }),
        error: Some(reason.to_string()),
        ..RunEnd::default()
    };
    record(state, def, RunStatus::Failed, &end).await;
}

/// Inserts a finished run of `def`'s job kind.
async fn record(state: &Db, def: &JobDef, status: RunStatus, end: &RunEnd) {
    let kind = def.job.name();
    let recorded = async {
        let id = runs::start(state, kind, (None, None), def.dry_run, false).await?;
        runs::finish(state, id, status, end).await
    };
    if let Err(e) = recorded.await {
        tracing::error!(job = %def.name, status = status.as_str(), error = %e, "cannot record the run");
    }
}

// ---------------------------------------------------------------------------
// Heartbeats
// ---------------------------------------------------------------------------

/// The stage a heartbeat reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ping {
    Start,
    Success,
    Fail,
}

impl Ping {
    fn suffix(self) -> &'static str {
        match self {
            Ping::Start => "/start",
            Ping::Success => "",
            Ping::Fail => "/fail",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ping::Start => "start",
            Ping::Success => "success",
            Ping::Fail => "fail",
        }
    }
}

/// Healthchecks.io-style pings; a failing ping is a warning, never a failure.
#[derive(Clone)]
struct Heartbeat {
    client: Option<reqwest::Client>,
    timeout: Duration,
}

impl Heartbeat {
    fn new(timeout: Duration) -> Self {
        let policy = HttpPolicy {
            timeout,
            connect_timeout: timeout,
            max_attempts: 1,
            ..HttpPolicy::default()
        };
        let client = match policy.client() {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the heartbeat HTTP client: heartbeats are off");
                None
            }
        };
        Heartbeat { client, timeout }
    }

    async fn ping(&self, def: &JobDef, ping: Ping) {
        let (Some(base), Some(client)) = (&def.heartbeat_url, &self.client) else {
            return;
        };
        let url = format!("{}{}", base.expose().trim_end_matches('/'), ping.suffix());
        // Neither the URL nor errors that contain it are logged: it carries a token.
        match client.get(&url).send().await {
            Ok(answer) if answer.status().is_success() => {
                tracing::debug!(job = %def.name, ping = ping.name(), "heartbeat sent");
            }
            Ok(answer) => tracing::warn!(
                job = %def.name,
                ping = ping.name(),
                status = %answer.status(),
                "the heartbeat was refused"
            ),
            Err(e) => tracing::warn!(
                job = %def.name,
                ping = ping.name(),
                error = %e.without_url(),
                "the heartbeat failed"
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// CLI helpers
// ---------------------------------------------------------------------------

/// Resolves on SIGTERM or Ctrl-C (SIGINT). If a handler cannot be installed
/// that source is ignored (with a warning) rather than firing at once.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        _ = term => tracing::info!("SIGTERM: shutting down"),
    }
}

/// Each definition's name with its next fire time after the clock's now
/// (`None` when disabled or never due), for `sverka schedule --list`.
pub async fn list(defs: &[JobDef], clock: &dyn Clock) -> Vec<(String, Option<DateTime<Utc>>)> {
    let now = clock.now();
    defs.iter()
        .map(|d| {
            (
                d.name.clone(),
                d.enabled.then(|| next_fire(d, now)).flatten(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test timestamp")
            .with_timezone(&Utc)
    }

    fn def(cron: &str, tz: &str) -> JobDef {
        let text =
            format!("name = \"t\"\njob = \"stock\"\ncron = \"{cron}\"\ntimezone = \"{tz}\"\n");
        JobDef::parse(&text, Path::new("t.toml")).expect("test definition")
    }

    /// The next `n` fire times after `from`.
    fn fires(def: &JobDef, from: &str, n: usize) -> Vec<DateTime<Utc>> {
        let mut at = utc(from);
        let mut out = Vec::new();
        for _ in 0..n {
            at = next_fire(def, at).expect("a next fire");
            out.push(at);
        }
        out
    }

    #[test]
    fn five_fields_get_a_zero_seconds_field() {
        let s = parse_cron("*/15 * * * *").unwrap();
        assert_eq!(s.source(), "0 */15 * * * *");
        let six = parse_cron("0 */15 * * * *").unwrap();
        assert_eq!(s, six);
    }

    #[test]
    fn six_and_seven_fields_pass_through() {
        assert_eq!(parse_cron("30 0 3 * * *").unwrap().source(), "30 0 3 * * *");
        let seven = parse_cron("0 0 6 * * * 2026").unwrap();
        let d = def("0 0 6 * * * 2026", "UTC");
        assert_eq!(seven.source(), "0 0 6 * * * 2026");
        assert_eq!(
            next_fire(&d, utc("2026-12-31T07:00:00Z")),
            None,
            "a year-bound schedule ends"
        );
    }

    #[test]
    fn shorthands_are_accepted() {
        let d = def("@daily", "UTC");
        assert_eq!(
            next_fire(&d, utc("2026-05-01T10:00:00Z")),
            Some(utc("2026-05-02T00:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_are_refused() {
        for expr in [
            "",
            "* * *",
            "61 * * * *",
            "* * * * 8",
            "* * * * 5-1",
            "* * * * */0",
            "* * * * xyz",
        ] {
            assert!(parse_cron(expr).is_err(), "{expr:?} must be refused");
        }
    }

    #[test]
    fn crontab_day_of_week_numbers_are_translated() {
        let cases = [
            ("0", "1"),
            ("7", "1"),
            ("1", "2"),
            ("6", "7"),
            ("1-5", "2,3,4,5,6"),
            ("5-7", "1,6,7"),
            ("0,7", "1"),
            ("*/2", "1,3,5,7"),
            ("1-5/2", "2,4,6"),
            ("sat,sun", "1,7"),
            ("MON-fri", "2,3,4,5,6"),
            ("6/1", "7"),
        ];
        for (crontab, crate_form) in cases {
            assert_eq!(
                crontab_days_of_week(crontab).as_deref(),
                Ok(crate_form),
                "{crontab}"
            );
        }
    }

    #[test]
    fn crontab_sunday_fires_on_sunday() {
        // 2026-11-22 is a Sunday; 2026-11-23 a Monday.
        for sunday in ["0 12 * * 0", "0 12 * * 7", "0 12 * * sun"] {
            let d = def(sunday, "UTC");
            assert_eq!(
                next_fire(&d, utc("2026-11-20T00:00:00Z")),
                Some(utc("2026-11-22T12:00:00Z")),
                "{sunday}"
            );
        }
        let monday = def("0 12 * * 1", "UTC");
        assert_eq!(
            next_fire(&monday, utc("2026-11-20T00:00:00Z")),
            Some(utc("2026-11-23T12:00:00Z"))
        );
        // The crate's own numbering in the 6-field form: 1 = Sunday.
        let crate_sunday = def("0 0 12 * * 1", "UTC");
        assert_eq!(
            next_fire(&crate_sunday, utc("2026-11-20T00:00:00Z")),
            Some(utc("2026-11-22T12:00:00Z"))
        );
    }

    #[test]
    fn restricting_both_day_fields_in_crontab_form_is_refused() {
        let err = parse_cron("0 12 1 * 1").unwrap_err().to_string();
        assert!(err.contains("day-of-month and day-of-week"), "{err}");
        assert!(parse_cron("0 12 1 * *").is_ok());
        assert!(
            parse_cron("0 0 12 1 * 2").is_ok(),
            "the 6-field form ANDs them"
        );
    }

    #[test]
    fn moscow_has_no_dst() {
        let d = def("30 3 * * *", "Europe/Moscow");
        assert_eq!(
            fires(&d, "2026-03-28T12:00:00Z", 3),
            [
                utc("2026-03-29T00:30:00Z"),
                utc("2026-03-30T00:30:00Z"),
                utc("2026-03-31T00:30:00Z")
            ]
        );
    }

    #[test]
    fn berlin_spring_forward_moves_a_missing_time_to_the_jump() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let d = def("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            fires(&d, "2026-03-28T00:00:00Z", 3),
            [
                utc("2026-03-28T01:30:00Z"),
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-30T00:30:00Z")
            ]
        );
        // Every 15 minutes: the four missing ticks and 03:00 fire once, at the jump.
        let q = def("*/15 * * * *", "Europe/Berlin");
        assert_eq!(
            fires(&q, "2026-03-29T00:30:00Z", 3),
            [
                utc("2026-03-29T00:45:00Z"),
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-29T01:15:00Z")
            ]
        );
    }

    #[test]
    fn berlin_fall_back_fires_a_repeated_time_once() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 happens twice.
        let d = def("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            fires(&d, "2026-10-24T12:00:00Z", 2),
            [utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]
        );
        // Asked from inside the repeated hour, the second 02:30 is not a tick.
        assert_eq!(
            next_fire(&d, utc("2026-10-25T01:10:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
        let hourly = def("0 * * * *", "Europe/Berlin");
        assert_eq!(
            fires(&hourly, "2026-10-24T23:30:00Z", 3),
            [
                utc("2026-10-25T00:00:00Z"),
                utc("2026-10-25T02:00:00Z"),
                utc("2026-10-25T03:00:00Z")
            ]
        );
    }

    #[test]
    fn definitions_parse_with_defaults() {
        let text = "name = \"orders\"\njob = \"orders\"\ncron = \"*/15 * * * *\"\n";
        let d = JobDef::parse(text, Path::new("jobs/orders.toml")).unwrap();
        assert_eq!(d.job, Job::Orders);
        assert_eq!(d.timezone, chrono_tz::Europe::Moscow);
        assert!(!d.dry_run);
        assert!(d.enabled);
        assert_eq!(d.window_days, None);
        assert!(d.heartbeat_url.is_none());
    }

    #[test]
    fn the_shipped_stock_jobs_are_nightly_full_and_hourly_delta() {
        use crate::config::StockMode;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
        let nightly = JobDef::load(&dir.join("stock-nightly.toml")).unwrap();
        let hourly = JobDef::load(&dir.join("stock-hourly.toml")).unwrap();
        assert_eq!(nightly.mode, Some(StockMode::Full));
        assert_eq!(hourly.mode, Some(StockMode::Delta));
        let err = parse_err("mode = \"partial\"");
        assert!(err.contains("mode") && err.contains("partial"), "{err}");
    }

    fn parse_err(body: &str) -> String {
        let text = format!("name = \"x\"\njob = \"stock\"\ncron = \"* * * * *\"\n{body}");
        JobDef::parse(&text, Path::new("jobs/x.toml"))
            .expect_err("the definition must be refused")
            .to_string()
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_and_key() {
        let cases = [
            ("timezon = \"UTC\"", "timezon"),
            ("timezone = \"Mars/Olympus\"", "timezone"),
            ("dry_run = \"yes\"", "dry_run"),
            ("window_days = 0", "window_days"),
            ("window_days = 1.5", "window_days"),
            ("enabled = 1", "enabled"),
            ("heartbeat_url = \"ftp://example.com/x\"", "heartbeat_url"),
        ];
        for (body, key) in cases {
            let err = parse_err(body);
            assert!(err.contains("jobs/x.toml"), "{err}");
            assert!(err.contains(&format!("`{key}`")), "{err}");
        }
        let err = JobDef::parse(
            "name = \"x\"\njob = \"all\"\ncron = \"* * * * *\"",
            Path::new("j.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`job`"), "{err}");
        let err = JobDef::parse(
            "name = \"x\"\njob = \"stock\"\ncron = \"* * *\"",
            Path::new("j.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`cron`") && err.contains("j.toml"), "{err}");
        let err = JobDef::parse("name = \"x\"\njob = \"stock\"", Path::new("j.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing key `cron`"), "{err}");
        let err = JobDef::parse("name = \"x\"\njob = ", Path::new("j.toml")).unwrap_err();
        assert!(matches!(err, ScheduleError::Toml { .. }), "{err}");
    }

    #[test]
    fn heartbeat_urls_stay_secret() {
        let token = "0f3c2a3e-secret-token";
        let text = format!(
            "name = \"x\"\njob = \"stock\"\ncron = \"* * * * *\"\nheartbeat_url = \"https://hc-ping.com/{token}\"\n"
        );
        let d = JobDef::parse(&text, Path::new("x.toml")).unwrap();
        assert!(!format!("{d:?}").contains(token));
        let bad = format!(
            "name = \"x\"\njob = \"stock\"\ncron = \"* * * * *\"\nheartbeat_url = \"mailto:{token}\"\n"
        );
        let err = JobDef::parse(&bad, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains(token), "{err}");
    }

    #[test]
    fn an_interval_job_pauses_during_a_repeated_hour() {
        // 2026-10-25 in Berlin: 02:00–02:59 happens twice; each wall time fires once.
        let d = def("*/30 * * * *", "Europe/Berlin");
        assert_eq!(
            fires(&d, "2026-10-24T23:45:00Z", 4),
            [
                utc("2026-10-25T00:00:00Z"),
                utc("2026-10-25T00:30:00Z"),
                utc("2026-10-25T02:00:00Z"),
                utc("2026-10-25T02:30:00Z")
            ]
        );
    }

    #[tokio::test]
    async fn system_clock_does_not_sleep_for_a_past_time() {
        let clock = SystemClock;
        clock
            .sleep_until(clock.now() - chrono::Duration::hours(1))
            .await;
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_time_passes() {
        let clock = Arc::new(ManualClock::new(utc("2026-01-01T00:00:00Z")));
        let c = Arc::clone(&clock);
        let sleeper = tokio::spawn(async move {
            c.sleep_until(utc("2026-01-01T00:10:00Z")).await;
            c.now()
        });
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(chrono::Duration::minutes(5));
        assert_eq!(clock.sleepers(), 1, "not yet");
        clock.advance(chrono::Duration::minutes(5));
        assert_eq!(sleeper.await.unwrap(), utc("2026-01-01T00:10:00Z"));
        // A time already passed resolves at once.
        clock.sleep_until(utc("2025-01-01T00:00:00Z")).await;
        // The clock never goes back.
        clock.set(utc("2025-01-01T00:00:00Z"));
        assert_eq!(clock.now(), utc("2026-01-01T00:10:00Z"));
    }
}
