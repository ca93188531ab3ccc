//! `sverka reconcile billing`: finance's view of the warehouse (IMSKLAD only;
//! nothing is pushed anywhere).
//!
//! 1. The period is whole days in the configured time zone: by default the
//!    last `[billing] window_days` complete days (1 = yesterday), or
//!    `--from/--to` (inclusive). At most [`MAX_BILLING_DAYS`] days.
//! 2. Read everything: one IMSKLAD `get_billing` call per day (from local
//!    midnight to the last second before the next one), then one call from the
//!    period's end to now; the shop's orders (`billing_orders_select.sql`, and
//!    `billing_order_by_id.sql` for a charge naming an older order); the
//!    closing balance a previous run stored for the period's start.
//! 3. Merge the answers: a line is kept once by its `id`, and belongs to the
//!    day of its `date`; every answer's `change_of_balance` is corrected for
//!    the lines it listed outside its own day (so a line two answers share
//!    counts once, and a line dated outside the period not at all). The
//!    period's change is the sum of the corrected daily changes.
//! 4. The closing balance: IMSKLAD documents `current_balance` as the
//!    partner's balance *now*, so the last call (period end → now) rolls it
//!    back to the end of the period: closing = current − change since the end.
//!    This holds whether the service answers the balance now or at `to`.
//! 5. Classify with [`crate::reconcile::billing`]: charges for unknown orders,
//!    orders shipped in the period without an assembly charge, duplicate
//!    assembly charges, charges for orders cancelled before picking, amounts
//!    off the tariff, and balance gaps (Σ lines ≠ change, or the previous
//!    closing + change ≠ this closing).
//! 6. Store the closing balance of every complete day of the period in
//!    `balances` (not in `--dry-run`), so the next run — whatever its period —
//!    finds the balance its first day starts from.
//! 7. Write `billing-<from>-<to>.csv` (every line, and every order without a
//!    charge), `billing-summary-<from>-<to>.csv` (totals and the balance check)
//!    and `billing-<from>-<to>.html`; a re-run of the period replaces them.
//!
//! Exit: 0 clean, 1 discrepancies (all of them are for a person), 2 failure.
//! EGON has no billing API: with `[wms] kind = "egon"` the job fails saying so.

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use polars::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

use super::{run_job, Context, Outcome};
use crate::config::{BillingSection, WmsKind, MAX_BILLING_DAYS};
use crate::connectors::imsklad::{Billing, BillingLine, ImskladClient, ImskladError};
use crate::db::runs::RunStatus;
use crate::db::{bind_args, now_ms, Arg, Db, DbError};
use crate::progress::Progress;
use crate::reconcile::billing::{self as rb, class, kind, BillingContext, BillingResult};
use crate::reconcile::input::{Input, ReconcileError};
use crate::report::csv::{Cell, ReportError};
use crate::report::html::{self, BalanceRow, BillingPage, DayBar, DiscrepancyRow, Total};
use crate::report::summary::JobSummary;
use crate::shop::{BillingOrder, ShopError};

mod merge;
mod period;
mod report;
pub use merge::*;
pub use period::*;
pub use report::*;

/// The job's name in runs, locks and reports.
pub const JOB: &str = super::Job::Billing.name();

/// Columns of `billing-<from>-<to>.csv`.
pub const LINE_REPORT_COLUMNS: [&str; 13] = [
    "id",
    "date",
    "type",
    "type_name",
    "amount",
    "wms_order_id",
    "order_id",
    "doc_request_id",
    "comment",
    "order_status",
    "expected",
    "difference",
    "class",
];

/// Columns of `billing-summary-<from>-<to>.csv`.
pub const SUMMARY_REPORT_COLUMNS: [&str; 5] = ["section", "item", "value", "count", "amount"];

const DAY_MS: i64 = 86_400_000;

/// Why a period cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// `--from` after `--to`.
    #[error("the period is reversed: --from {from} is after --to {to}")]
    Reversed {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
    /// More days than one run covers.
    #[error("the period {from} – {to} spans {days} days; one run covers at most {max} (one get_billing call per day)")]
    TooLong {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
        /// Days asked for.
        days: i64,
        /// The limit.
        max: i64,
    },
    /// A day that cannot be placed in the time zone (out of range).
    #[error("cannot place {day} in the time zone {tz}")]
    Unplaceable {
        /// The day.
        day: NaiveDate,
        /// The time zone.
        tz: Tz,
    },
}

/// Why a billing run failed.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The configured WMS is EGON.
    #[error("billing reconciliation is an IMSKLAD-only feature: EGON offers no billing report to read (`[wms] kind = \"egon\"`); nothing was done — disable the billing job for this shop")]
    EgonUnsupported,
    /// The period is unusable.
    #[error(transparent)]
    Period(#[from] PeriodError),
    /// The IMSKLAD client could not be configured.
    #[error("configuring the IMSKLAD client: {0}")]
    Client(String),
    /// IMSKLAD failed or was unreachable.
    #[error("IMSKLAD get_billing {what}")]
    Wms {
        /// Which call.
        what: String,
        /// The client's error.
        #[source]
        source: ImskladError,
    },
    /// Summing amounts overflowed.
    #[error("billing amounts overflow: {0}")]
    Overflow(&'static str),
    /// The shop database failed.
    #[error("reading the shop's orders")]
    Shop(#[from] ShopError),
    /// The state database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Building a frame failed.
    #[error("building the billing frames")]
    Frame(#[from] PolarsError),
    /// The classification refused its input.
    #[error("classifying billing")]
    Reconcile(#[from] ReconcileError),
    /// A report could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A stop was requested before everything was read.
    #[error("stopped before every day was read; nothing was stored")]
    Stopped,
    /// The run lost its job lock before storing balances.
    #[error(transparent)]
    LockLost(#[from] crate::db::lock::LockLost),
}

// Reading
// ---------------------------------------------------------------------------

async fn fetch_days(
    ctx: &Context,
    client: &ImskladClient,
    period: &Period,
) -> Result<Vec<Billing>, BillingError> {
    let bar = Progress::counter("IMSKLAD get_billing", period.days.len() as u64, "days");
    let mut answers = Vec::with_capacity(period.days.len());
    for day in &period.days {
        if ctx.stop.is_stopped() {
            return Err(BillingError::Stopped);
        }
        let answer = client
            .get_billing(day.start, day.end - 1)
            .await
            .map_err(|source| BillingError::Wms {
                what: format!("for {}", day.date),
                source,
            })?;
        answers.push(answer);
        bar.inc(1);
    }
    drop(bar);
    Ok(answers)
}

/// The trimmed order id a line names, if any.
fn line_order(line: &BillingLine) -> Option<&str> {
    line.foreign_order_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Shop orders shipped in the period or created within the look-back, plus
/// any other order a line names (looked up one by one).
async fn read_orders(
    ctx: &Context,
    period: &Period,
    lines: &[BillingLine],
) -> Result<Vec<BillingOrder>, BillingError> {
    let (start_ms, end_ms) = (period.start() * 1000, period.end() * 1000);
    let lookback = ctx
        .config
        .billing
        .order_lookback_days
        .saturating_mul(DAY_MS);
    let mut orders = ctx
        .shop
        .billing_orders(start_ms, end_ms, start_ms.saturating_sub(lookback))
        .await?;
    let known: BTreeSet<String> = orders.iter().map(|o| o.id.clone()).collect();
    let missing: BTreeSet<&str> = lines
        .iter()
        .filter_map(line_order)
        .filter(|id| !known.contains(*id))
        .collect();
    if !missing.is_empty() {
        tracing::debug!(
            count = missing.len(),
            "looking up orders named by billing lines one by one"
        );
    }
    for id in missing {
        if let Some(order) = ctx.shop.billing_order(id).await? {
            orders.push(order);
        }
    }
    orders.sort_by(|a, b| a.id.cmp(&b.id));
    orders.dedup_by(|a, b| a.id == b.id);
    Ok(orders)
}

fn read_i64(row: &sqlx::any::AnyRow, name: &str) -> Result<i64, DbError> {
    use sqlx::Row;
    row.try_get::<i64, _>(name)
        .or_else(|_| row.try_get::<i32, _>(name).map(i64::from))
        .map_err(|e| DbError::Corrupt(format!("balances row: {e}")))
}

/// The closing balance stored for the instant `at_ms` (the latest, if several).
pub async fn previous_closing(db: &Db, at_ms: i64) -> Result<Option<i64>, DbError> {
    let row = db
        .fetch_optional(
            "SELECT closing_kop FROM balances WHERE period_to = ? ORDER BY id DESC LIMIT 1",
            &[at_ms.into()],
            "reading the previous closing balance",
        )
        .await?;
    row.map(|r| read_i64(&r, "closing_kop")).transpose()
}

/// Stores `(day start ms, day end ms, closing kop)` rows in one transaction.
async fn store_closings(db: &Db, run_id: i64, rows: &[(i64, i64, i64)]) -> Result<(), DbError> {
    let sql = db
        .sql("INSERT INTO balances (run_id, period_from, period_to, closing_kop, recorded_at) VALUES (?, ?, ?, ?, ?)")
        .into_owned();
    let mut tx = db
        .pool()
        .begin()
        .await
        .map_err(DbError::query("starting the balances transaction"))?;
    let now = now_ms();
    for (from, to, kop) in rows {
        let args = [
            Arg::I64(run_id),
            Arg::I64(*from),
            Arg::I64(*to),
            Arg::I64(*kop),
            Arg::I64(now),
        ];
        bind_args(sqlx::query(&sql), &args)
            .execute(&mut *tx)
            .await
            .map_err(DbError::query("storing a closing balance"))?;
    }
    tx.commit()
        .await
        .map_err(DbError::query("committing the closing balances"))
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// Runs the billing job over `[from, to]` (local dates; by default the last
/// `[billing] window_days` complete days) and returns its summary (never
/// panics on bad data).
pub async fn run(ctx: &Context, from: Option<NaiveDate>, to: Option<NaiveDate>) -> JobSummary {
    let tz = ctx.config.tz();
    let period = resolve_period(ctx.today(), ctx.config.billing.window_days, from, to)
        .and_then(|(first, last)| Period::new(tz, first, last));
    let window = match &period {
        Ok(p) => (Some(p.start() * 1000), Some(p.end() * 1000)),
        Err(_) => (None, None),
    };
    run_job(ctx, JOB, window, move |ctx, run_id| async move {
        let result = match period {
            Ok(p) => execute(&ctx, run_id, &p).await,
            Err(e) => Err(e.into()),
        };
        result
            .map(|(status, outcome)| (status, outcome, None))
            .map_err(|e| crate::errors::chain(&e))
    })
    .await
}

/// What a billing run read: the merged IMSKLAD answers (and how many calls
/// they took), the shop's orders they name, and the previous closing balance.
struct BillingReads {
    merged: Merged,
    calls: usize,
    orders: Vec<BillingOrder>,
    previous: Option<i64>,
    /// When the daily answers were in, Unix s: days ended by then are complete.
    now: i64,
}

/// Reads every source: IMSKLAD's billing of each day (and from the period's
/// end to now, for the balance), the orders, the stored previous closing.
async fn read_all(
    ctx: &Context,
    client: &ImskladClient,
    period: &Period,
) -> Result<BillingReads, BillingError> {
    let answers = fetch_days(ctx, client, period).await?;
    let now = now_ms() / 1000;
    let after = if period.end() <= now {
        let answer = client
            .get_billing(period.end(), now)
            .await
            .map_err(|source| BillingError::Wms {
                what: "from the period's end to now".into(),
                source,
            })?;
        Some(answer)
    } else {
        None
    };
    let calls = answers.len() + usize::from(after.is_some());
    let merged = merge_answers(period, &answers, after.as_ref())?;
    let orders = read_orders(ctx, period, &merged.lines).await?;
    let previous = previous_closing(&ctx.state, period.start() * 1000).await?;
    Ok(BillingReads {
        merged,
        calls,
        orders,
        previous,
        now,
    })
}

/// Classifies the period's lines against the orders and the tariffs.
fn classify(
    ctx: &Context,
    period: &Period,
    reads: &BillingReads,
) -> Result<BillingResult, BillingError> {
    let merged = &reads.merged;
    let context = BillingContext {
        from: period.start(),
        to: period.end(),
        current_balance_kop: merged.closing_kop,
        change_of_balance_kop: merged.change_kop,
        previous_closing_kop: reads.previous,
    };
    Ok(rb::classify_billing(
        &lines_frame(&merged.lines)?,
        &orders_frame(&reads.orders, &merged.lines)?,
        &tariffs_frame(&ctx.config.billing)?,
        &context,
    )?)
}

/// Stores the closing balance of every complete day (not in a dry run);
/// returns every day's closing and how many were complete.
async fn record_closings(
    ctx: &Context,
    run_id: i64,
    period: &Period,
    reads: &BillingReads,
) -> Result<(Vec<i64>, usize), BillingError> {
    let (merged, now) = (&reads.merged, reads.now);
    let closings = daily_closings(merged.closing_kop, &merged.day_change_kop)?;
    let rows: Vec<(i64, i64, i64)> = period
        .days
        .iter()
        .zip(&closings)
        .filter(|(d, _)| d.end <= now)
        .map(|(d, kop)| (d.start * 1000, d.end * 1000, *kop))
        .collect();
    if !ctx.dry_run && !rows.is_empty() {
        ctx.check_lock().await?;
        store_closings(&ctx.state, run_id, &rows).await?;
    }
    Ok((closings, rows.len()))
}

/// Read → classify → store the closings → report.
async fn execute(
    ctx: &Context,
    run_id: i64,
    period: &Period,
) -> Result<(RunStatus, Outcome), BillingError> {
    if ctx.config.wms.kind == WmsKind::Egon {
        return Err(BillingError::EgonUnsupported);
    }
    let client = ctx
        .imsklad()
        .map_err(|e| BillingError::Client(format!("{e:#}")))?;
    let reads = read_all(ctx, &client, period).await?;
    let result = classify(ctx, period, &reads)?;
    let (closings, stored) = record_closings(ctx, run_id, period, &reads).await?;
    let merged = &reads.merged;
    let data = ReportData {
        ctx,
        run_id,
        period,
        merged,
        result: &result,
        rows: line_rows(&result.lines)?,
        missing: missing_rows(&result.missing_charges, &ctx.config.billing)?,
        doc_requests: merged
            .lines
            .iter()
            .filter_map(|l| l.doc_request_id.map(|d| (l.id, d)))
            .collect(),
        previous: reads.previous,
        calls: reads.calls,
    };
    let reports = vec![
        data.write_lines_csv()?,
        data.write_summary_csv()?,
        data.write_html()?,
    ];
    let counts: BTreeMap<String, u64> = result
        .totals_by_class
        .iter()
        .map(|(name, count, _)| (name.clone(), count.unsigned_abs()))
        .collect();
    let discrepancies = counts.iter().any(|(name, n)| name != class::OK && *n > 0);
    let status = if discrepancies {
        RunStatus::Discrepancies
    } else {
        RunStatus::Clean
    };
    Ok((
        status,
        Outcome {
            counts,
            reports,
            extra: data.extra(closings.len(), stored),
            ..Outcome::default()
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn the_default_period_is_the_previous_days() {
        let today = d(2026, 3, 1);
        assert_eq!(
            resolve_period(today, 1, None, None),
            Ok((d(2026, 2, 28), d(2026, 2, 28)))
        );
        assert_eq!(
            resolve_period(today, 7, None, None),
            Ok((d(2026, 2, 22), d(2026, 2, 28)))
        );
        assert_eq!(
            resolve_period(today, 7, Some(d(2026, 1, 1)), Some(d(2026, 1, 31))),
            Ok((d(2026, 1, 1), d(2026, 1, 31)))
        );
        assert_eq!(
            resolve_period(today, 1, Some(d(2026, 2, 10)), None),
            Ok((d(2026, 2, 10), d(2026, 2, 28))),
            "a lone --from runs to yesterday"
        );
        assert_eq!(
            resolve_period(today, 1, Some(today), None),
            Ok((today, today)),
            "today (incomplete) only when asked"
        );
        assert_eq!(
            resolve_period(today, 3, None, Some(d(2026, 2, 10))),
            Ok((d(2026, 2, 8), d(2026, 2, 10))),
            "a lone --to covers window_days days ending there"
        );
        assert!(matches!(
            resolve_period(today, 1, Some(d(2026, 2, 2)), Some(d(2026, 2, 1))),
            Err(PeriodError::Reversed { .. })
        ));
        let err = resolve_period(today, 1, Some(d(2024, 1, 1)), Some(d(2026, 1, 1))).unwrap_err();
        assert!(err.to_string().contains("732 days"), "{err}");
    }

    #[test]
    fn days_split_at_local_midnight() {
        let moscow: Tz = "Europe/Moscow".parse().unwrap();
        let days = split_days(moscow, d(2026, 1, 30), d(2026, 2, 2)).unwrap();
        assert_eq!(days.len(), 4);
        // 2026-01-30 00:00 MSK = 2026-01-29 21:00 UTC.
        assert_eq!(days[0].start, 1_769_720_400);
        for w in days.windows(2) {
            assert_eq!(w[0].end, w[1].start, "contiguous");
        }
        assert!(days.iter().all(|x| x.end - x.start == 86_400));
        assert_eq!(days[1].date, d(2026, 1, 31));
    }

    #[test]
    fn dst_days_are_23_or_25_hours_and_a_lost_midnight_starts_later() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let spring = split_days(berlin, d(2026, 3, 29), d(2026, 3, 29)).unwrap();
        assert_eq!(spring[0].end - spring[0].start, 23 * 3_600);
        let autumn = split_days(berlin, d(2026, 10, 25), d(2026, 10, 25)).unwrap();
        assert_eq!(autumn[0].end - autumn[0].start, 25 * 3_600);
        // Brazil skipped 00:00 → 01:00 on 2018-11-04: the day starts at 01:00 local.
        let sao_paulo: Tz = "America/Sao_Paulo".parse().unwrap();
        let start = day_start(sao_paulo, d(2018, 11, 4)).unwrap();
        let local = chrono::DateTime::from_timestamp(start, 0)
            .unwrap()
            .with_timezone(&sao_paulo);
        assert_eq!(local.format("%H:%M").to_string(), "01:00");
        let days = split_days(sao_paulo, d(2018, 11, 3), d(2018, 11, 4)).unwrap();
        assert_eq!(days[0].end, start);
        assert_eq!(days[0].end - days[0].start, 24 * 3_600);
        assert_eq!(days[1].end - days[1].start, 23 * 3_600);
    }

    fn line(id: i64, date: i64, amount_kop: i64) -> BillingLine {
        BillingLine {
            id,
            order_id: None,
            foreign_order_id: None,
            doc_request_id: None,
            kind: kind::OTHER,
            date,
            amount_kop,
            comment: String::new(),
        }
    }

    fn answer(current: i64, change: i64, lines: Vec<BillingLine>) -> Billing {
        Billing {
            current_balance_kop: current,
            change_of_balance_kop: change,
            lines,
        }
    }

    fn utc_period() -> Period {
        // Three UTC days starting at 86 400 × 10.
        Period::new(chrono_tz::UTC, d(1970, 1, 11), d(1970, 1, 13)).unwrap()
    }

    #[test]
    fn period_day_lookup() {
        let p = utc_period();
        assert_eq!((p.start(), p.end()), (864_000, 864_000 + 3 * 86_400));
        assert_eq!(p.day_of(864_000), Some(0));
        assert_eq!(p.day_of(864_000 + 86_399), Some(0));
        assert_eq!(p.day_of(864_000 + 86_400), Some(1));
        assert_eq!(p.day_of(p.end() - 1), Some(2));
        assert_eq!(p.day_of(p.end()), None);
        assert_eq!(p.day_of(863_999), None);
        assert_eq!(p.slug(), "1970-01-11-1970-01-13");
    }

    #[test]
    fn a_line_in_two_answers_counts_once() {
        let p = utc_period();
        let (d0, d1, d2) = (864_000, 864_000 + 86_400, 864_000 + 2 * 86_400);
        // Line 2 (day 1, first second) is also listed in day 0's answer, whose
        // change includes it; line 5 is dated before the period.
        let answers = vec![
            answer(
                0,
                -100 - 200 - 7,
                vec![
                    line(1, d0 + 5, -100),
                    line(2, d1, -200),
                    line(5, d0 - 1, -7),
                ],
            ),
            answer(
                0,
                -200 - 300,
                vec![line(2, d1, -200), line(3, d1 + 10, -300)],
            ),
            answer(0, 5_000, vec![line(4, d2 + 1, 5_000)]),
        ];
        // 1 000 after the period: the current balance 10 000 means 9 000 at its end.
        let after = answer(10_000, 1_000, vec![line(6, p.end() + 3, 1_000)]);
        let m = merge_answers(&p, &answers, Some(&after)).unwrap();
        assert_eq!(
            m.lines.iter().map(|l| l.id).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(m.day_change_kop, [-100, -500, 5_000]);
        assert_eq!(m.change_kop, 4_400);
        assert_eq!(
            m.lines.iter().map(|l| l.amount_kop).sum::<i64>(),
            m.change_kop
        );
        assert_eq!((m.repeated, m.outside), (1, 1));
        assert_eq!(m.after_change_kop, Some(1_000));
        assert_eq!(m.closing_kop, 9_000);
        assert_eq!(
            daily_closings(m.closing_kop, &m.day_change_kop).unwrap(),
            [4_500, 4_000, 9_000]
        );
    }

    #[test]
    fn a_line_only_another_day_listed_moves_to_its_own_day() {
        let p = utc_period();
        let d1 = 864_000 + 86_400;
        let answers = vec![
            answer(0, -200, vec![line(2, d1 + 1, -200)]),
            answer(0, 0, vec![]),
            answer(0, 0, vec![]),
        ];
        let m = merge_answers(&p, &answers, None).unwrap();
        assert_eq!(m.day_change_kop, [0, -200, 0]);
        assert_eq!(m.change_kop, -200);
        assert_eq!(m.after_change_kop, None);
    }

    #[test]
    fn the_roll_forward_answer_may_overlap_the_period() {
        let p = utc_period();
        let last = p.end() - 10;
        let answers = vec![
            answer(0, 0, vec![]),
            answer(0, 0, vec![]),
            answer(0, -50, vec![line(9, last, -50)]),
        ];
        // The answer from the end to now repeats line 9 and counts it in its change.
        let after = answer(
            1_000,
            -50 + 70,
            vec![line(9, last, -50), line(10, p.end(), 70)],
        );
        let m = merge_answers(&p, &answers, Some(&after)).unwrap();
        assert_eq!(m.after_change_kop, Some(70));
        assert_eq!(m.closing_kop, 930);
        assert_eq!(m.repeated, 1);
        assert_eq!(m.lines.len(), 1);
    }

    #[test]
    fn without_a_roll_forward_the_last_answer_gives_the_closing() {
        let p = utc_period();
        let answers = vec![
            answer(1, 0, vec![]),
            answer(2, 0, vec![]),
            answer(3, 0, vec![]),
        ];
        assert_eq!(merge_answers(&p, &answers, None).unwrap().closing_kop, 3);
        let overflow = vec![
            answer(0, i64::MAX, vec![]),
            answer(0, 1, vec![]),
            answer(0, 0, vec![]),
        ];
        assert!(matches!(
            merge_answers(&p, &overflow, None),
            Err(BillingError::Overflow(_))
        ));
    }

    #[test]
    fn cancellation_before_the_first_assembly_charge() {
        let order = BillingOrder {
            id: "A".into(),
            status: "cancelled".into(),
            cancelled: true,
            cancelled_at: Some(5_000_000),
            shipped_at: None,
            delivery_type: None,
        };
        assert!(cancelled_before_picking(&order, Some(6_000)));
        assert!(cancelled_before_picking(&order, Some(5_000)), "same second");
        assert!(
            !cancelled_before_picking(&order, Some(4_000)),
            "picked, then cancelled"
        );
        assert!(cancelled_before_picking(&order, None));
        let unknown_time = BillingOrder {
            cancelled_at: None,
            ..order.clone()
        };
        assert!(cancelled_before_picking(&unknown_time, Some(1)));
        let shipped = BillingOrder {
            shipped_at: Some(1),
            ..order.clone()
        };
        assert!(!cancelled_before_picking(&shipped, Some(6_000)));
        let active = BillingOrder {
            cancelled: false,
            ..order
        };
        assert!(!cancelled_before_picking(&active, Some(6_000)));
    }

    #[test]
    fn type_names() {
        assert_eq!(kind_name(0), "assembly");
        assert_eq!(kind_name(1), "top_up");
        assert_eq!(kind_name(2), "delivery");
        assert_eq!(kind_name(9), "other");
        assert_eq!(kind_name(7), "type 7");
    }
}
