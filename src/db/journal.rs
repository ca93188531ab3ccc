//! The corrections journal: every correction is recorded as `planned` before it
//! is sent, and as `applied`, `partial` or `failed` with the target's answer after.

use serde::Serialize;
use sqlx::Row;

use super::{now_ms, Arg, Db, DbError};

/// Where a correction goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// RetailCRM.
    Crm,
    /// The shop database.
    Shop,
    /// The warehouse (IMSKLAD / EGON).
    Wms,
    /// IMSHOP.
    Imshop,
}

impl Target {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Crm => "crm",
            Target::Shop => "shop",
            Target::Wms => "wms",
            Target::Imshop => "imshop",
        }
    }
}

/// State of a journaled correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionStatus {
    /// Recorded, not yet sent (or the process died while sending).
    Planned,
    /// The target accepted it.
    Applied,
    /// The target accepted part of it (e.g. an IMSKLAD `warning`).
    Partial,
    /// The target refused or could not be reached.
    Failed,
    /// A write that is not idempotent failed ambiguously (a timeout, a reset,
    /// an unreadable answer): it may or may not have taken effect, so it is
    /// not sent again within the run; a person or the next run's read tells.
    Unknown,
}

impl CorrectionStatus {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            CorrectionStatus::Planned => "planned",
            CorrectionStatus::Applied => "applied",
            CorrectionStatus::Partial => "partial",
            CorrectionStatus::Failed => "failed",
            CorrectionStatus::Unknown => "unknown",
        }
    }
}

/// What happened to one item of a correction, as the reports' `result`
/// column says it (the journal keeps the batch's [`CorrectionStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemOutcome {
    /// The target took it.
    Applied,
    /// The target refused it or could not be reached.
    Failed,
    /// A compare-and-set write found the target changed since sverka read
    /// it: nothing was overwritten; the next run re-reads and re-plans.
    ChangedDuringRun,
    /// An ambiguous failure of a write that is not idempotent (see
    /// [`CorrectionStatus::Unknown`]).
    Unknown,
}

impl ItemOutcome {
    /// The report text.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemOutcome::Applied => "applied",
            ItemOutcome::Failed => "failed",
            ItemOutcome::ChangedDuringRun => "changed_during_run",
            ItemOutcome::Unknown => "unknown",
        }
    }
}

/// A correction to record.
#[derive(Debug, Clone)]
pub struct Planned<'a> {
    /// Run it belongs to.
    pub run_id: i64,
    /// Job name.
    pub job: &'a str,
    /// Target system.
    pub target: Target,
    /// Action (`inventories_upload`, `update_stock`, `order_edit`, …).
    pub action: &'a str,
    /// What it is about (a SKU, an order id, a chunk's first..last SKU).
    pub item_key: &'a str,
    /// What will be sent (JSON, no secrets).
    pub payload: &'a serde_json::Value,
}

/// Length of the `item_key` column, characters.
pub const MAX_ITEM_KEY_CHARS: usize = 255;

/// `key` cut to [`MAX_ITEM_KEY_CHARS`] characters (ending in `…` when cut), so
/// that a chunk named by two long SKUs never aborts a run at the journal.
pub fn fit_item_key(key: &str) -> std::borrow::Cow<'_, str> {
    if key.chars().count() <= MAX_ITEM_KEY_CHARS {
        return std::borrow::Cow::Borrowed(key);
    }
    let mut out: String = key.chars().take(MAX_ITEM_KEY_CHARS - 1).collect();
    out.push('…');
    std::borrow::Cow::Owned(out)
}

/// Records a planned correction; returns its id. An `item_key` longer than
/// its column is cut ([`fit_item_key`]); the payload keeps the full data.
pub async fn plan(db: &Db, p: &Planned<'_>) -> Result<i64, DbError> {
    let now = now_ms();
    db.insert_id(
        "INSERT INTO corrections (run_id, job, target, action, item_key, payload, status, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, 'planned', ?, ?)",
        &[
            p.run_id.into(),
            p.job.into(),
            p.target.as_str().into(),
            p.action.into(),
            fit_item_key(p.item_key).as_ref().into(),
            p.payload.to_string().into(),
            now.into(),
            now.into(),
        ],
        "journaling a planned correction",
    )
    .await
}

/// Records the outcome of a correction with the target's answer.
pub async fn settle(
    db: &Db,
    id: i64,
    status: CorrectionStatus,
    answer: &str,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE corrections SET status = ?, answer = ?, updated_at = ? WHERE id = ?",
        &[
            status.as_str().into(),
            answer.into(),
            now_ms().into(),
            id.into(),
        ],
        "journaling a correction's outcome",
    )
    .await?;
    Ok(())
}

/// A journal row as read back.
#[derive(Debug, Clone, Serialize)]
pub struct CorrectionRecord {
    /// Id.
    pub id: i64,
    /// Run.
    pub run_id: i64,
    /// Target (`crm`, `shop`, `wms`, `imshop`).
    pub target: String,
    /// Action.
    pub action: String,
    /// Item key.
    pub item_key: String,
    /// Payload JSON.
    pub payload: String,
    /// Status text.
    pub status: String,
    /// The target's answer.
    pub answer: Option<String>,
}

fn record(r: &sqlx::any::AnyRow) -> Result<CorrectionRecord, DbError> {
    let e = |e: sqlx::Error| DbError::Corrupt(format!("corrections row: {e}"));
    Ok(CorrectionRecord {
        id: r.try_get("id").map_err(e)?,
        run_id: r.try_get("run_id").map_err(e)?,
        target: r.try_get("target").map_err(e)?,
        action: r.try_get("action").map_err(e)?,
        item_key: r.try_get("item_key").map_err(e)?,
        payload: super::text(r, "payload").map_err(e)?,
        status: r.try_get("status").map_err(e)?,
        answer: super::opt_text(r, "answer").map_err(e)?,
    })
}

/// All corrections of a run, in the order they were planned.
pub async fn of_run(db: &Db, run_id: i64) -> Result<Vec<CorrectionRecord>, DbError> {
    let rows = db
        .fetch_all(
            "SELECT id, run_id, target, action, item_key, payload, status, answer FROM corrections WHERE run_id = ? ORDER BY id",
            &[Arg::I64(run_id)],
            "reading the corrections journal",
        )
        .await?;
    rows.iter().map(record).collect()
}

/// Corrections of `job` left `planned` by a run that died before settling them.
pub async fn unsettled(db: &Db, job: &str) -> Result<Vec<CorrectionRecord>, DbError> {
    let rows = db
        .fetch_all(
            "SELECT id, run_id, target, action, item_key, payload, status, answer FROM corrections WHERE job = ? AND status = 'planned' ORDER BY id",
            &[job.into()],
            "reading unsettled corrections",
        )
        .await?;
    rows.iter().map(record).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_item_keys_are_cut_to_the_column() {
        assert_eq!(fit_item_key("A..B (2 offers)"), "A..B (2 offers)");
        let long = format!("{}..{} (250 offers)", "Я".repeat(200), "Z".repeat(200));
        let cut = fit_item_key(&long);
        assert_eq!(cut.chars().count(), MAX_ITEM_KEY_CHARS);
        assert!(cut.ends_with('…') && cut.starts_with("ЯЯ"));
    }
}
