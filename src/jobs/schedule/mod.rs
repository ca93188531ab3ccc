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

mod clock;
mod cron_expr;
mod def;
mod heartbeat;
mod scheduler;

pub use clock::*;
pub use cron_expr::*;
pub use def::*;
use heartbeat::*;
pub use scheduler::*;

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
    #[error("cannot read {}", path.display())]
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

// CLI helpers

/// Resolves on SIGTERM or Ctrl-C (SIGINT). If a handler cannot be installed
/// that source is ignored (with a warning) rather than firing at once.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %crate::errors::Chain(&e), "cannot listen for Ctrl-C");
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
                tracing::warn!(error = %crate::errors::Chain(&e), "cannot listen for SIGTERM");
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
