//! Run bookkeeping: one row per job run with its window, status, counts per
//! class, report paths and error.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeMap;

use super::{now_ms, Db, DbError};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going (or crashed while going).
    Running,
    /// Nothing left to correct.
    Clean,
    /// Discrepancies left for a person.
    Discrepancies,
    /// Stopped by a safety guard before writing anything.
    Guarded,
    /// Failed with an error.
    Failed,
    /// Skipped (e.g. the job was already running).
    Skipped,
}

impl RunStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Clean => "clean",
            RunStatus::Discrepancies => "discrepancies",
            RunStatus::Guarded => "guarded",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "clean" => RunStatus::Clean,
            "discrepancies" => RunStatus::Discrepancies,
            "guarded" => RunStatus::Guarded,
            "failed" => RunStatus::Failed,
            "skipped" => RunStatus::Skipped,
            _ => RunStatus::Running,
        }
    }
}

/// A stored run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Run id (also in report file names).
    pub id: i64,
    /// Job name (`stock`, `orders`, …).
    pub job: String,
    /// Window start (Unix ms), if the job has a window.
    pub window_from: Option<i64>,
    /// Window end (Unix ms).
    pub window_to: Option<i64>,
    /// Start (Unix ms).
    pub started_at: i64,
    /// End (Unix ms).
    pub finished_at: Option<i64>,
    /// Outcome.
    pub status: RunStatus,
    /// Whether the run was a dry run.
    pub dry_run: bool,
    /// Whether `--force` overrode a guard.
    pub forced: bool,
    /// Discrepancies per class.
    pub counts: BTreeMap<String, u64>,
    /// Reports written.
    pub report_paths: Vec<String>,
    /// Job-specific summary (JSON).
    pub summary: serde_json::Value,
    /// Error text for failed/guarded runs.
    pub error: Option<String>,
}

/// What a finished run records.
#[derive(Debug, Clone, Default)]
pub struct RunEnd {
    /// Discrepancies per class.
    pub counts: BTreeMap<String, u64>,
    /// Reports written.
    pub report_paths: Vec<String>,
    /// Job-specific summary (JSON).
    pub summary: serde_json::Value,
    /// Error or guard reason.
    pub error: Option<String>,
}

/// Records the start of a run and returns its id.
pub async fn start(
    db: &Db,
    job: &str,
    window: (Option<i64>, Option<i64>),
    dry_run: bool,
    forced: bool,
) -> Result<i64, DbError> {
    db.insert_id(
        "INSERT INTO runs (job, window_from, window_to, started_at, status, dry_run, forced, counts, report_paths, summary) \
         VALUES (?, ?, ?, ?, ?, ?, ?, '{}', '[]', '{}')",
        &[
            job.into(),
            window.0.into(),
            window.1.into(),
            now_ms().into(),
            RunStatus::Running.as_str().into(),
            (dry_run as i64).into(),
            (forced as i64).into(),
        ],
        "recording the run start",
    )
    .await
}

/// Records the end of a run.
pub async fn finish(db: &Db, id: i64, status: RunStatus, end: &RunEnd) -> Result<(), DbError> {
    let counts = serde_json::to_string(&end.counts).unwrap_or_else(|_| "{}".into());
    let paths = serde_json::to_string(&end.report_paths).unwrap_or_else(|_| "[]".into());
    let summary = if end.summary.is_null() {
        "{}".to_string()
    } else {
        end.summary.to_string()
    };
    db.execute(
        "UPDATE runs SET finished_at = ?, status = ?, counts = ?, report_paths = ?, summary = ?, error = ? WHERE id = ?",
        &[
            now_ms().into(),
            status.as_str().into(),
            counts.into(),
            paths.into(),
            summary.into(),
            end.error.clone().into(),
            id.into(),
        ],
        "recording the run end",
    )
    .await?;
    Ok(())
}

const COLUMNS: &str = "id, job, window_from, window_to, started_at, finished_at, status, dry_run, forced, counts, report_paths, summary, error";

fn from_row(row: &sqlx::any::AnyRow) -> Result<RunRecord, DbError> {
    let get = |e: sqlx::Error| DbError::Corrupt(format!("runs row: {e}"));
    let counts = super::text(row, "counts").map_err(get)?;
    let paths = super::text(row, "report_paths").map_err(get)?;
    let summary = super::text(row, "summary").map_err(get)?;
    let status: String = row.try_get("status").map_err(get)?;
    Ok(RunRecord {
        id: row.try_get("id").map_err(get)?,
        job: row.try_get("job").map_err(get)?,
        window_from: row.try_get("window_from").map_err(get)?,
        window_to: row.try_get("window_to").map_err(get)?,
        started_at: row.try_get("started_at").map_err(get)?,
        finished_at: row.try_get("finished_at").map_err(get)?,
        status: RunStatus::parse(&status),
        dry_run: row.try_get::<i64, _>("dry_run").map_err(get)? != 0,
        forced: row.try_get::<i64, _>("forced").map_err(get)? != 0,
        counts: serde_json::from_str(&counts).unwrap_or_default(),
        report_paths: serde_json::from_str(&paths).unwrap_or_default(),
        summary: serde_json::from_str(&summary).unwrap_or(serde_json::Value::Null),
        error: super::opt_text(row, "error").map_err(get)?,
    })
}

/// The most recent runs, newest first, optionally of one job.
pub async fn recent(db: &Db, job: Option<&str>, limit: i64) -> Result<Vec<RunRecord>, DbError> {
    let rows = match job {
        Some(job) => {
            db.fetch_all(
                &format!("SELECT {COLUMNS} FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?"),
                &[job.into(), limit.into()],
                "listing runs",
            )
            .await?
        }
        None => {
            db.fetch_all(
                &format!("SELECT {COLUMNS} FROM runs ORDER BY id DESC LIMIT ?"),
                &[limit.into()],
                "listing runs",
            )
            .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// The latest run of `job` that finished without failing and was not a dry run.
pub async fn last_successful(db: &Db, job: &str) -> Result<Option<RunRecord>, DbError> {
    let row = db
        .fetch_optional(
            &format!(
                "SELECT {COLUMNS} FROM runs WHERE job = ? AND status IN ('clean', 'discrepancies') AND dry_run = 0 ORDER BY id DESC LIMIT 1"
            ),
            &[job.into()],
            "reading the last successful run",
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The baseline of a "fell by more than X" guard: the latest run of `job`
/// that finished without failing, was neither a dry run nor forced, and
/// whose summary's `key` is a number above zero. A forced run (which may
/// have zeroed everything) or a run that found nothing never becomes the
/// baseline, so the guard is not switched off by one bad run.
pub async fn last_baseline(db: &Db, job: &str, key: &str) -> Result<Option<RunRecord>, DbError> {
    const LOOK_BACK: i64 = 200;
    let rows = db
        .fetch_all(
            &format!(
                "SELECT {COLUMNS} FROM runs WHERE job = ? AND status IN ('clean', 'discrepancies') AND dry_run = 0 AND forced = 0 ORDER BY id DESC LIMIT ?"
            ),
            &[job.into(), LOOK_BACK.into()],
            "reading the guard's baseline run",
        )
        .await?;
    for row in &rows {
        let run = from_row(row)?;
        if run
            .summary
            .get(key)
            .and_then(|v| v.as_i64())
            .is_some_and(|v| v > 0)
        {
            return Ok(Some(run));
        }
    }
    Ok(None)
}

/// One run by id.
pub async fn get(db: &Db, id: i64) -> Result<Option<RunRecord>, DbError> {
    let row = db
        .fetch_optional(
            &format!("SELECT {COLUMNS} FROM runs WHERE id = ?"),
            &[id.into()],
            "reading a run",
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Marks runs still `running` whose lock is gone as failed (a crashed process).
pub async fn mark_abandoned(db: &Db, job: &str, except: i64) -> Result<u64, DbError> {
    db.execute(
        "UPDATE runs SET status = 'failed', finished_at = ?, error = 'abandoned: the process stopped before finishing' \
         WHERE job = ? AND status = 'running' AND id <> ?",
        &[now_ms().into(), job.into(), except.into()],
        "closing abandoned runs",
    )
    .await
}
