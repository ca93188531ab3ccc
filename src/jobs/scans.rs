//! `sverka reconcile scans`: IMSHOP marking scans (IMSHOP's marking-scan documentation).
//!
//! The listener answers every scan at once and stores it in `scans`, so IMSHOP
//! learns the answered status in the same request. This job settles the rest:
//!
//! 1. **Read**: the scans left `processing` (the shop database could not be
//!    asked when they were registered), the scans whose current status IMSHOP
//!    has not acknowledged, and what the shop knows of each processing scan's
//!    code ([`Shop::marking_code`](crate::shop::Shop::marking_code)). Once the
//!    shop fails to answer, the remaining codes are not asked in this run.
//! 2. **Re-check** each processing scan the shop answered for with the
//!    listener's own decision ([`crate::shop::scans::decide`]: approved
//!    when the code is known and free or already the user's, which marks it
//!    used; denied with the listener's Russian texts when unknown or used by
//!    someone else). The scan's new status becomes due for a push. Each
//!    re-check is journaled (target `shop`, action `recheck_scan`).
//! 3. **Push** every due status to `[imshop] update_url`, each push journaled
//!    (target `imshop`, action `push_status`, planned → applied / failed with
//!    IMSHOP's answer):
//!    - 204 (any 2xx): IMSHOP knows the status; never re-sent;
//!    - 400 / 404: final, reported as `push_rejected`, and not re-sent by later
//!      runs unless the scan's status changes again (the rejection is kept in
//!      the scan's `push_error`, see [`rejection_note`]);
//!    - 401 / 403: the key or URL is wrong: pushing stops at once, the rest is
//!      reported as skipped, and the run fails (exit 2) with an alert message
//!      (so does an unusable `[imshop]` configuration when something is due);
//!    - 5xx, 408, 429 and timeouts: retried by the client within the run, then
//!      `push_failed` and left due for the next run.
//! 4. **Report** scans still `processing` whose last change is at least
//!    `[imshop] stuck_minutes` (default 60) old as `stuck_processing`.
//! 5. Write `scans-<date>-<run>.csv` ([`REPORT_COLUMNS`], classes in [`ScanClass`]).
//!
//! `--dry-run` previews the re-checks read-only ([`crate::shop::scans::judge`]),
//! marks no code used, changes no scan, journals and pushes nothing; its
//! report rows carry the result `dry_run`.
//!
//! A stop request (SIGTERM) skips the remaining re-checks and pushes, which
//! stay due for the next run.
//!
//! The run is `clean` when every due status was pushed and nothing is stuck,
//! `discrepancies` otherwise (a dry run with anything to push, or a stopped run
//! that skipped something, included), and
//! `failed` when IMSHOP refused the key (or `[imshop]` cannot be used).

use serde_json::json;
use std::collections::{BTreeMap, HashSet};

use super::{run_job, Context, Outcome};
use crate::connectors::imshop::{self as wire, ImshopClient, ImshopError, PushOutcome, ScanUpdate};
use crate::db::events::{self, Scan, ScanStatus};
use crate::db::journal::{CorrectionStatus, Target};
use crate::db::runs::RunStatus;
use crate::db::{now_ms, DbError};
use crate::report::csv::{Cell, ReportError};
use crate::report::summary::{CorrectionCounts, JobSummary};
use crate::shop::scans::{decide, judge, Verdict};

/// The job's name in runs, locks, the journal and reports.
pub const JOB: &str = super::Job::Scans.name();

/// The report's columns.
///
/// `status` is the scan's status after the run; `pushed_status` the status
/// IMSHOP knows after the run (empty when it never learned one).
pub const REPORT_COLUMNS: [&str; 9] = [
    "scan_id",
    "user_id",
    "code",
    "status",
    "pushed_status",
    "class",
    "action",
    "result",
    "note",
];

/// The report's classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanClass {
    /// A status IMSHOP acknowledged with 204 (or, in a dry run, would be pushed).
    Pushed,
    /// IMSHOP refused the update for good (400 malformed, 404 scan or user unknown).
    PushRejected,
    /// The update did not get through (IMSHOP unavailable, key refused, or skipped
    /// after a refusal); it stays due.
    PushFailed,
    /// Still `processing` longer than `[imshop] stuck_minutes`.
    StuckProcessing,
    /// A `processing` scan checked again against the shop.
    Rechecked,
}

impl ScanClass {
    /// The report's word.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanClass::Pushed => "pushed",
            ScanClass::PushRejected => "push_rejected",
            ScanClass::PushFailed => "push_failed",
            ScanClass::StuckProcessing => "stuck_processing",
            ScanClass::Rechecked => "rechecked",
        }
    }
}

/// The report's `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanAction {
    /// Pushing the scan's status to IMSHOP.
    Push,
    /// Checking a `processing` scan again against the shop.
    Recheck,
    /// Nothing: left for people.
    Report,
}

impl ScanAction {
    /// The report's word.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanAction::Push => "push",
            ScanAction::Recheck => "recheck",
            ScanAction::Report => "report",
        }
    }
}

/// The report's `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanResult {
    /// Nothing done (a line for people): the column is empty.
    Nothing,
    /// IMSHOP acknowledged the update.
    Applied,
    /// A re-check stored the scan's new status (the result is that status).
    Status(ScanStatus),
    /// IMSHOP refused the update for good (400/404).
    Rejected,
    /// The update did not get through.
    Failed,
    /// Not attempted: pushing stopped (key refused, stop requested, no client).
    Skipped,
    /// A dry run: what would be done.
    DryRun,
    /// The shop database could not be asked; the scan stays `processing`.
    Unavailable,
}

impl ScanResult {
    /// The report's word.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanResult::Nothing => "",
            ScanResult::Applied => "applied",
            ScanResult::Status(status) => status.as_str(),
            ScanResult::Rejected => "rejected",
            ScanResult::Failed => "failed",
            ScanResult::Skipped => "skipped",
            ScanResult::DryRun => "dry_run",
            ScanResult::Unavailable => "unavailable",
        }
    }
}

/// The start of a scan's `push_error` when IMSHOP rejected its status for good.
pub const REJECTED_PREFIX: &str = "rejected ";

/// Why a scans run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum ScansError {
    /// The state database failed.
    #[error("{what}")]
    Db {
        /// What was being done.
        what: &'static str,
        /// The database error.
        #[source]
        source: DbError,
    },
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The run lost its job lock before a write.
    #[error(transparent)]
    LockLost(#[from] crate::db::lock::LockLost),
}

fn write_err(what: &'static str) -> impl FnOnce(super::WriteError) -> ScansError {
    move |e| match e {
        super::WriteError::LockLost(lost) => ScansError::LockLost(lost),
        super::WriteError::Db(source) => ScansError::Db { what, source },
    }
}

fn db(what: &'static str) -> impl FnOnce(DbError) -> ScansError {
    move |source| ScansError::Db { what, source }
}

/// Runs the scans job and returns its summary (never panics on bad data).
pub async fn run(ctx: &Context) -> JobSummary {
    run_job(ctx, JOB, (None, None), |ctx, run_id| async move {
        execute(&ctx, run_id)
            .await
            .map(|done| (done.status, done.outcome, done.error))
            .map_err(|e| crate::errors::chain(&e))
    })
    .await
}

/// The update IMSHOP is sent for `scan`: its id, user, own timestamp, code,
/// current status and status message (the push replaces `code` with the
/// barcode as IMSHOP sent it, when sverka has it).
pub fn update_for(scan: &Scan) -> ScanUpdate {
    ScanUpdate {
        id: scan.id.clone(),
        user_id: scan.user_id.clone(),
        timestamp: scan.scanned_at,
        code: scan.code.clone(),
        status: wire_status(scan.status),
        status_message: scan.status_message.clone(),
    }
}

/// The stored status as the connector's wire type.
pub fn wire_status(status: ScanStatus) -> wire::ScanStatus {
    match status {
        ScanStatus::Processing => wire::ScanStatus::Processing,
        ScanStatus::Approved => wire::ScanStatus::Approved,
        ScanStatus::Denied => wire::ScanStatus::Denied,
    }
}

/// The `push_error` recorded when IMSHOP rejects `status` for good:
/// `rejected <status> (HTTP <code>): <body>`.
pub fn rejection_note(status: ScanStatus, http: u16, body: &str) -> String {
    format!("{REJECTED_PREFIX}{} (HTTP {http}): {body}", status.as_str())
}

/// The status a `push_error` says IMSHOP rejected for good (see [`rejection_note`]).
pub fn rejected_status(push_error: &str) -> Option<ScanStatus> {
    let rest = push_error.strip_prefix(REJECTED_PREFIX)?;
    let (status, _) = rest.split_once(' ')?;
    ScanStatus::parse(status)
}

/// Whether IMSHOP rejected the scan's current status for good since its last
/// change (then it is not sent again until the status changes).
pub fn rejected_for_good(scan: &Scan) -> bool {
    let rejected = scan.push_error.as_deref().and_then(rejected_status);
    rejected == Some(scan.status) && scan.pushed_at.is_some_and(|at| at >= scan.updated_at)
}

/// What the run decided, for [`RunGuard::finish`](super::RunGuard::finish).
struct Done {
    status: RunStatus,
    outcome: Outcome,
    error: Option<String>,
}

/// What the read phase learnt about a `processing` scan's code.
#[derive(Debug, Clone)]
enum Finding {
    /// The shop answered: the verdict it implies (previewed, nothing marked used).
    Verdict(Verdict),
    /// The shop could not be asked.
    Unavailable(String),
}

/// One report line.
#[derive(Debug, Clone)]
struct Row {
    scan_id: String,
    user_id: String,
    code: String,
    status: ScanStatus,
    pushed_status: Option<ScanStatus>,
    class: ScanClass,
    action: ScanAction,
    result: ScanResult,
    note: String,
}

impl Row {
    fn new(scan: &Scan, class: ScanClass, action: ScanAction) -> Row {
        Row {
            scan_id: scan.id.clone(),
            user_id: scan.user_id.clone(),
            code: scan.code.clone(),
            status: scan.status,
            pushed_status: scan.pushed_status,
            class,
            action,
            result: ScanResult::Nothing,
            note: String::new(),
        }
    }

    fn result(mut self, result: ScanResult, note: impl Into<String>) -> Row {
        self.result = result;
        self.note = note.into();
        self
    }

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::Text(self.scan_id.clone()),
            Cell::Text(self.user_id.clone()),
            Cell::Text(self.code.clone()),
            Cell::Text(self.status.as_str().into()),
            self.pushed_status.map(|s| s.as_str()).into(),
            Cell::Text(self.class.as_str().into()),
            Cell::Text(self.action.as_str().into()),
            Cell::Text(self.result.as_str().into()),
            Cell::Text(self.note.clone()),
        ]
    }
}

/// Everything read before the first write.
struct Snapshot {
    /// Scans in `processing`, with what the shop said of their codes.
    processing: Vec<(Scan, Finding)>,
    /// Scans whose status IMSHOP has not acknowledged.
    due: Vec<Scan>,
}

/// The run's running tally.
#[derive(Default)]
struct Tally {
    rows: Vec<Row>,
    corrections: CorrectionCounts,
    /// Why pushing stopped (key refused, stop requested).
    stopped: Option<String>,
    /// The alert that fails the run (key refused, client not configured).
    auth_error: Option<String>,
}

async fn execute(ctx: &Context, run_id: i64) -> Result<Done, ScansError> {
    let snapshot = read(ctx).await?;
    let mut tally = Tally::default();
    let (mut to_push, rejected_earlier) = due_pushes(&snapshot);
    let mut still_processing: Vec<Scan> = Vec::new();
    for (scan, finding) in &snapshot.processing {
        let after = recheck(ctx, run_id, scan, finding, &mut tally).await?;
        if after.status != ScanStatus::Processing {
            to_push.push(after);
            continue;
        }
        if after.pushed_status != Some(ScanStatus::Processing) && !rejected_for_good(&after) {
            to_push.push(after.clone());
        }
        still_processing.push(after);
    }
    let pushed = push_all(ctx, run_id, &to_push, &mut tally).await?;
    report_stuck(ctx, &still_processing, &mut tally);

    let report = write_report(ctx, run_id, &tally.rows)?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for row in &tally.rows {
        *counts.entry(row.class.as_str().to_string()).or_insert(0) += 1;
    }
    let status = run_status(&tally, ctx.dry_run && !to_push.is_empty());
    let extra = json!({
        "processing": snapshot.processing.len(),
        "due": to_push.len(),
        "pushed": pushed,
        "rejected_earlier": rejected_earlier,
        "stuck_minutes": ctx.config.imshop.stuck_minutes,
    });
    Ok(Done {
        status,
        error: tally.auth_error.clone(),
        outcome: Outcome {
            counts,
            corrections: tally.corrections,
            reports: vec![report],
            guard: None,
            extra,
        },
    })
}

/// The scans due for a push that are not `processing` (those are re-checked
/// first), and how many were left out because IMSHOP rejected them for good.
fn due_pushes(snapshot: &Snapshot) -> (Vec<Scan>, u64) {
    let processing: HashSet<&str> = snapshot
        .processing
        .iter()
        .map(|(s, _)| s.id.as_str())
        .collect();
    let mut to_push = Vec::new();
    let mut rejected_earlier = 0u64;
    for scan in snapshot
        .due
        .iter()
        .filter(|s| !processing.contains(s.id.as_str()))
    {
        if rejected_for_good(scan) {
            rejected_earlier += 1;
        } else {
            to_push.push(scan.clone());
        }
    }
    (to_push, rejected_earlier)
}

/// Reports the scans still `processing` after the re-check whose last change
/// is at least `[imshop] stuck_minutes` old.
fn report_stuck(ctx: &Context, still_processing: &[Scan], tally: &mut Tally) {
    let stuck_ms =
        i64::try_from(ctx.config.imshop.stuck_minutes.saturating_mul(60_000)).unwrap_or(i64::MAX);
    let now = now_ms();
    for scan in still_processing
        .iter()
        .filter(|s| now - s.updated_at >= stuck_ms)
    {
        let minutes = (now - scan.updated_at) / 60_000;
        let note = format!(
            "processing for {minutes} min since the last change; the shop database could not decide it"
        );
        let row = Row::new(scan, ScanClass::StuckProcessing, ScanAction::Report)
            .result(ScanResult::Nothing, note);
        tally.rows.push(row);
    }
}

/// Failed on an alert, discrepancies when anything is left for a person (or a
/// dry run had something to push), clean otherwise.
fn run_status(tally: &Tally, dry_run_had_work: bool) -> RunStatus {
    let left = tally.rows.iter().any(|r| {
        r.result == ScanResult::Skipped
            || matches!(
                r.class,
                ScanClass::PushRejected | ScanClass::PushFailed | ScanClass::StuckProcessing
            )
    });
    match (&tally.auth_error, left || dry_run_had_work) {
        (Some(_), _) => RunStatus::Failed,
        (None, true) => RunStatus::Discrepancies,
        (None, false) => RunStatus::Clean,
    }
}

/// The read phase: processing scans, due scans, and the shop's view of each
/// processing scan's code.
async fn read(ctx: &Context) -> Result<Snapshot, ScansError> {
    let processing = events::scans_stuck_processing(&ctx.state, 0)
        .await
        .map_err(db("reading scans in processing"))?;
    let due = events::scans_to_push(&ctx.state)
        .await
        .map_err(db("reading scans to push"))?;
    let mut shop_down: Option<String> = None;
    let mut checked = Vec::with_capacity(processing.len());
    for scan in processing {
        let finding = match &shop_down {
            Some(e) => Finding::Unavailable(format!("not asked: {e}")),
            None => match ctx.shop.marking_code(&scan.code).await {
                Ok(code) => Finding::Verdict(judge(code.as_ref(), &scan.user_id)),
                Err(e) => {
                    let text = format!(
                        "the shop database did not answer: {}",
                        crate::errors::Chain(&e)
                    );
                    tracing::warn!(scan = %scan.id, "{text}");
                    shop_down = Some(text.clone());
                    Finding::Unavailable(text)
                }
            },
        };
        checked.push((scan, finding));
    }
    Ok(Snapshot {
        processing: checked,
        due,
    })
}

/// Re-checks one processing scan; returns the scan as it stands afterwards.
async fn recheck(
    ctx: &Context,
    run_id: i64,
    scan: &Scan,
    finding: &Finding,
    tally: &mut Tally,
) -> Result<Scan, ScansError> {
    let row = |s: &Scan| Row::new(s, ScanClass::Rechecked, ScanAction::Recheck);
    let preview = match finding {
        _ if ctx.stop.is_stopped() => {
            tally
                .rows
                .push(row(scan).result(ScanResult::Skipped, "stop requested"));
            return Ok(scan.clone());
        }
        Finding::Unavailable(e) => {
            tally
                .rows
                .push(row(scan).result(ScanResult::Unavailable, e.clone()));
            return Ok(scan.clone());
        }
        Finding::Verdict(v) => v,
    };
    tally.corrections.planned += 1;
    if ctx.dry_run {
        let after = with_verdict(scan, preview);
        tally.rows.push(row(&after).result(
            ScanResult::DryRun,
            format!(
                "would be {}: {}",
                preview.status.as_str(),
                preview.status_message
            ),
        ));
        return Ok(after);
    }
    apply_recheck(ctx, run_id, scan, preview, tally).await
}

/// Journals the re-check, asks the shop again, stores and settles the
/// verdict; returns the scan as it stands afterwards.
async fn apply_recheck(
    ctx: &Context,
    run_id: i64,
    scan: &Scan,
    preview: &Verdict,
    tally: &mut Tally,
) -> Result<Scan, ScansError> {
    let row = |s: &Scan| Row::new(s, ScanClass::Rechecked, ScanAction::Recheck);
    let payload =
        json!({"code": scan.code, "userId": scan.user_id, "expected": preview.status.as_str()});
    let id = ctx
        .journal(run_id, JOB)
        .plan(Target::Shop, "recheck_scan", &scan.id, &payload)
        .await
        .map_err(write_err("journaling a re-check"))?;
    match decide(&ctx.shop, std::slice::from_ref(&scan.code), &scan.user_id).await {
        Ok((_, verdict)) => {
            events::set_scan_status(
                &ctx.state,
                &scan.id,
                verdict.status,
                Some(verdict.status_message),
            )
            .await
            .map_err(db("storing a re-checked scan"))?;
            let answer =
                json!({"status": verdict.status.as_str(), "statusMessage": verdict.status_message});
            ctx.writer()
                .settle(id, CorrectionStatus::Applied, &answer.to_string())
                .await
                .map_err(db("journaling a re-check's outcome"))?;
            tally.corrections.applied += 1;
            let mut after = with_verdict(scan, &verdict);
            after.updated_at = now_ms();
            tally.rows.push(row(&after).result(
                ScanResult::Status(verdict.status),
                verdict.status_message.to_string(),
            ));
            Ok(after)
        }
        Err(e) => {
            let text = format!(
                "the shop database did not answer: {}",
                crate::errors::Chain(&e)
            );
            ctx.writer()
                .settle(id, CorrectionStatus::Failed, &text)
                .await
                .map_err(db("journaling a re-check's outcome"))?;
            tally.corrections.failed += 1;
            tally
                .rows
                .push(row(scan).result(ScanResult::Unavailable, text));
            Ok(scan.clone())
        }
    }
}

fn with_verdict(scan: &Scan, verdict: &Verdict) -> Scan {
    let mut after = scan.clone();
    after.status = verdict.status;
    after.status_message = Some(verdict.status_message.to_string());
    after
}

/// Pushes every due scan in order; returns how many IMSHOP acknowledged.
async fn push_all(
    ctx: &Context,
    run_id: i64,
    scans: &[Scan],
    tally: &mut Tally,
) -> Result<u64, ScansError> {
    if scans.is_empty() {
        return Ok(0);
    }
    tally.corrections.planned += scans.len() as u64;
    if ctx.dry_run {
        for scan in scans {
            tally
                .rows
                .push(Row::new(scan, ScanClass::Pushed, ScanAction::Push).result(
                    ScanResult::DryRun,
                    format!("would push {}", scan.status.as_str()),
                ));
        }
        return Ok(0);
    }
    let client = match ctx.imshop() {
        Ok(c) => Some(c),
        Err(e) => {
            let alert = format!("{e:#}: nothing was pushed; set [imshop] update_url and key");
            tracing::error!(run = run_id, "{alert}");
            tally.stopped = Some(format!("not sent: {e:#}"));
            tally.auth_error = Some(alert);
            None
        }
    };
    let ids: Vec<&str> = scans.iter().map(|s| s.id.as_str()).collect();
    let barcodes = crate::db::protocol::scan_barcodes(&ctx.state, &ids)
        .await
        .map_err(db("reading scan barcodes"))?;
    let mut pushed = 0;
    for scan in scans {
        if tally.stopped.is_none() && ctx.stop.is_stopped() {
            tally.stopped = Some("not sent: stop requested".into());
        }
        if let Some(reason) = &tally.stopped {
            let row = Row::new(scan, ScanClass::PushFailed, ScanAction::Push)
                .result(ScanResult::Skipped, reason.clone());
            tally.rows.push(row);
            continue;
        }
        let Some(client) = &client else { continue };
        let barcode = barcodes.get(&scan.id).map(String::as_str);
        if push_one(ctx, client, run_id, scan, barcode, tally).await? {
            pushed += 1;
        }
    }
    Ok(pushed)
}

/// Pushes one scan's status, journaled; true when IMSHOP acknowledged it.
async fn push_one(
    ctx: &Context,
    client: &ImshopClient,
    run_id: i64,
    scan: &Scan,
    barcode: Option<&str>,
    tally: &mut Tally,
) -> Result<bool, ScansError> {
    let mut update = update_for(scan);
    if let Some(b) = barcode {
        // `code` is the barcode exactly as IMSHOP sent it in the scan.
        update.code = b.to_owned();
    }
    let payload = serde_json::to_value(&update).unwrap_or_else(|_| json!({"id": scan.id}));
    let id = ctx
        .journal(run_id, JOB)
        .plan(Target::Imshop, "push_status", &scan.id, &payload)
        .await
        .map_err(write_err("journaling a push"))?;
    let row = Row::new(scan, ScanClass::Pushed, ScanAction::Push);
    let (status, answer, row, acknowledged) = match client.push_status(&update).await {
        Ok(PushOutcome::Accepted) => {
            events::mark_scan_pushed(&ctx.state, &scan.id, scan.status, None)
                .await
                .map_err(db("marking a scan pushed"))?;
            let mut row = row.result(
                ScanResult::Applied,
                format!("IMSHOP knows {}", scan.status.as_str()),
            );
            row.pushed_status = Some(scan.status);
            (CorrectionStatus::Applied, "accepted".to_string(), row, true)
        }
        Ok(PushOutcome::Rejected { status: http, body }) => {
            let note = rejection_note(scan.status, http, &body);
            events::mark_scan_pushed(&ctx.state, &scan.id, scan.status, Some(&note))
                .await
                .map_err(db("recording a rejected push"))?;
            let mut row = row.result(
                ScanResult::Rejected,
                format!("HTTP {http}: {body}; final, not re-sent unless the status changes"),
            );
            row.class = ScanClass::PushRejected;
            (CorrectionStatus::Failed, note, row, false)
        }
        Err(e) => {
            let text = crate::errors::chain(&e);
            events::mark_scan_pushed(&ctx.state, &scan.id, scan.status, Some(&text))
                .await
                .map_err(db("recording a failed push"))?;
            if let ImshopError::Auth { .. } = e {
                let alert = format!("{text}: pushing stopped; the updates not sent stay due");
                tracing::error!(run = run_id, "{alert}");
                tally.auth_error = Some(alert);
                tally.stopped = Some(format!("not sent: {text}"));
            }
            let mut row = row.result(ScanResult::Failed, text.clone());
            row.class = ScanClass::PushFailed;
            (CorrectionStatus::Failed, text, row, false)
        }
    };
    ctx.writer()
        .settle(id, status, &answer)
        .await
        .map_err(db("journaling a push's outcome"))?;
    match status {
        CorrectionStatus::Applied => tally.corrections.applied += 1,
        _ => tally.corrections.failed += 1,
    }
    tally.rows.push(row);
    Ok(acknowledged)
}

fn write_report(ctx: &Context, run_id: i64, rows: &[Row]) -> Result<String, ScansError> {
    let mut report = ctx.run_report(JOB, run_id, &REPORT_COLUMNS)?;
    for row in rows {
        report.row(&row.cells())?;
    }
    Ok(report.finish()?.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(status: ScanStatus, push_error: Option<&str>, pushed_at: Option<i64>) -> Scan {
        Scan {
            id: "s1".into(),
            user_id: "79991234567".into(),
            code: "C\u{1d}93X".into(),
            status,
            status_message: Some("Код маркировки зарегистрирован".into()),
            scanned_at: 1_662_660_581,
            created_at: 100,
            updated_at: 200,
            pushed_status: Some(ScanStatus::Processing),
            pushed_at,
            push_error: push_error.map(str::to_string),
        }
    }

    #[test]
    fn rejection_notes_round_trip() {
        let note = rejection_note(ScanStatus::Approved, 404, "scan unknown");
        assert_eq!(note, "rejected approved (HTTP 404): scan unknown");
        assert_eq!(rejected_status(&note), Some(ScanStatus::Approved));
        assert_eq!(rejected_status("HTTP 503: busy"), None);
        assert_eq!(rejected_status("rejected nonsense (HTTP 400): x"), None);
        assert_eq!(rejected_status("rejected"), None);
    }

    #[test]
    fn a_rejection_is_final_until_the_status_changes() {
        let note = rejection_note(ScanStatus::Approved, 400, "bad");
        assert!(rejected_for_good(&scan(
            ScanStatus::Approved,
            Some(&note),
            Some(200)
        )));
        assert!(rejected_for_good(&scan(
            ScanStatus::Approved,
            Some(&note),
            Some(300)
        )));
        // Changed after the rejection, or to another status: due again.
        assert!(!rejected_for_good(&scan(
            ScanStatus::Approved,
            Some(&note),
            Some(150)
        )));
        assert!(!rejected_for_good(&scan(
            ScanStatus::Denied,
            Some(&note),
            Some(300)
        )));
        // A transient failure is never final.
        assert!(!rejected_for_good(&scan(
            ScanStatus::Approved,
            Some("HTTP 503"),
            Some(300)
        )));
        assert!(!rejected_for_good(&scan(
            ScanStatus::Approved,
            None,
            Some(300)
        )));
    }

    #[test]
    fn the_update_carries_the_scan_exactly() {
        let u = update_for(&scan(ScanStatus::Denied, None, None));
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "s1",
                "userId": "79991234567",
                "timestamp": 1_662_660_581,
                "code": "C\u{1d}93X",
                "status": "denied",
                "statusMessage": "Код маркировки зарегистрирован",
            })
        );
        let mut bare = scan(ScanStatus::Approved, None, None);
        bare.status_message = None;
        let v = serde_json::to_value(update_for(&bare)).unwrap();
        assert!(v.get("statusMessage").is_none(), "optional field omitted");
    }

    #[test]
    fn rows_render_every_column() {
        let s = scan(ScanStatus::Approved, None, None);
        let row =
            Row::new(&s, ScanClass::Pushed, ScanAction::Push).result(ScanResult::Applied, "ok");
        let cells = row.cells();
        assert_eq!(cells.len(), REPORT_COLUMNS.len());
        assert_eq!(cells[3], Cell::Text("approved".into()));
        assert_eq!(cells[4], Cell::Text("processing".into()));
        let mut none = s.clone();
        none.pushed_status = None;
        assert_eq!(
            Row::new(&none, ScanClass::Pushed, ScanAction::Push).cells()[4],
            Cell::Empty
        );
    }

    #[test]
    fn stored_and_wire_statuses_match() {
        for s in [
            ScanStatus::Processing,
            ScanStatus::Approved,
            ScanStatus::Denied,
        ] {
            assert_eq!(wire_status(s).as_str(), s.as_str());
        }
    }
}
