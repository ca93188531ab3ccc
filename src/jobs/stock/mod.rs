//! `sverka reconcile stock`: the WMS is right about physical stock.
//!
//! The run follows the job skeleton, one function a phase:
//!
//! 1. [`read()`](read::read) everything: the shop's stock and cost prices, the
//!    id mapping, the WMS's stock and reserve for every mapped SKU, the CRM's
//!    quantities and purchase prices for the configured store (every page, or
//!    in delta mode only the offers that moved: [`super::stock_delta`]), the
//!    baseline run, and what a WMS registration needs (the shop catalogue and
//!    the SKUs found unknown to the WMS before). No source is read after it.
//! 2. [`plan()`](plan::plan), pure: classify in Polars ([`crate::reconcile::stock`]),
//!    compare cost prices ([`crate::reconcile::cost`]) and plan every
//!    correction, the WMS registrations of unmapped SKUs included.
//! 3. Guards ([`guard`]): WMS coverage, share of SKUs the plan would change,
//!    drop of total sellable stock since the last successful run, WMS
//!    registrations. A tripped guard writes nothing (unless `--force`, which
//!    the run records).
//! 4. Apply, journaling each correction before it is sent and its answer after:
//!    CRM uploads in chunks of ≤ 250 changed offers (quantity and cost of a SKU
//!    in one offer, [`super::stock_upload`]), the shop's quantities in one
//!    transaction, and WMS registration of unmapped SKUs.
//! 5. Write `stock-<date>-<run>.csv` ([`report`]) and return the summary.
//!
//! With EGON the shop SKU is the card's `ITEM_ID`, so no mapping is needed.
//! An `InventoryStatusUpdate` callback journaled after the card's `changed_at`
//! (as `InventoryDetail` reports it) wins over the detail's figures, and a card
//! only a callback reported is taken from the callback.
//!
//! Unmapped shop SKUs are looked up in IMSKLAD with `update_good` (which answers
//! the WMS goods id of a known partner id and refreshes its catalogue data from
//! the shop, the catalogue's master: the full product record is sent, since
//! the WMS copy is replaced); unknown ones (code 2 or 4, UNVERIFIED) are
//! created with `add_good` only when `[stock] create_missing_in_wms = true`.
//! `[stock] lookup_unmapped = "report"` writes nothing to the WMS catalogue
//! for the look-up (map such SKUs with `sverka map import`). Both happen after
//! the reads, so the next run compares them.

use anyhow::{Context as _, Result};

use super::gate::{self, Gate, Unsent};
use super::phases::Phases;
use super::stock_upload::{apply_crm, fix_notes, UploadInput};
use super::{run_job, Context, Outcome};
use crate::db::known_stock;
use crate::db::runs::RunStatus;
use crate::reconcile::stock::{self as rs, class};
use crate::report::summary::JobSummary;

mod apply_shop;
mod apply_wms;
mod guard;
mod plan;
mod read;
mod report;
use apply_shop::apply_shop;
use apply_wms::apply_wms;
use plan::{plan, Plan};
pub(super) use read::WmsSnapshot;
use read::{read, CrmRead, Sources};
pub(super) use report::{Action, ClassifiedRows, Fate, FateResult, Ledger};

/// The job's name in runs, locks and reports.
pub const JOB: &str = super::Job::Stock.name();

/// The report's columns: the classified frame's ([`rs::col`]), then what
/// became of each line and the two cost prices.
pub const REPORT_COLUMNS: [&str; 14] = [
    rs::col::SKU,
    rs::col::WMS_ID,
    rs::col::CRM_OFFER_ID,
    rs::col::WMS_STOCK,
    rs::col::WMS_RESERVED,
    rs::col::WMS_SELLABLE,
    rs::col::CRM_QUANTITY,
    rs::col::SHOP_QUANTITY,
    rs::col::CLASS,
    "action",
    "result",
    "note",
    "shop_cost",
    "crm_cost",
];

/// Runs the stock job and returns its summary (never panics on bad data).
pub async fn run(ctx: &Context) -> JobSummary {
    run_job(ctx, JOB, (None, None), |ctx, run_id| async move {
        execute(&ctx, run_id)
            .await
            .map(|(status, outcome)| (status, outcome, None))
            .map_err(|e| format!("{e:#}"))
    })
    .await
}

/// The job skeleton: read → plan → guard → apply (or not) → report.
async fn execute(ctx: &Context, run_id: i64) -> Result<(RunStatus, Outcome)> {
    let mut phases = Phases::new();
    let sources = read(ctx, &mut phases).await?;
    let plan = plan(ctx, &sources)?;
    phases.lap("classify");
    let mut extra = plan.summary(&sources);
    let guard = guard::check_guards(ctx, &sources.snap, &plan.guard);
    phases.lap("guards");
    let gate = Gate::decide(ctx, run_id, guard, &mut extra);
    let ledger = match gate.unsent() {
        Some(unsent) => unsent_ledger(&plan, unsent),
        None => apply(ctx, run_id, &sources, &plan, &mut phases).await?,
    };
    let (path, left_for_people) = report::write(ctx, run_id, &sources, &plan, &ledger)?;
    phases.lap("report");
    let counts = report::counts(&plan, &ledger);
    extra["phases_s"] = phases.to_json();
    Ok(gate::finish(
        &gate,
        left_for_people,
        counts,
        ledger.corrections,
        &path,
        extra,
    ))
}

/// The fates of a plan that is not sent (guarded, or a dry run): every
/// planned correction reported with `unsent`'s word.
fn unsent_ledger(plan: &Plan<'_>, unsent: Unsent) -> Ledger {
    let mut ledger = Ledger::new(plan.planned());
    let result = FateResult::from(unsent);
    for f in &plan.fixes {
        for (class_name, note) in fix_notes(f) {
            ledger.set(
                &f.sku,
                class_name,
                Fate::new(Action::CrmUpload, result, note),
            );
        }
    }
    for u in &plan.stock.shop_updates {
        let note = format!("{} → {}", u.from, u.to);
        let fate = Fate::new(Action::ShopUpdate, result, note);
        ledger.set(&u.sku, class::QTY_MISMATCH_SHOP, fate);
    }
    for sku in &plan.stock.wms_missing {
        let fate = Fate::new(Action::WmsRegister, result, String::new());
        ledger.set(sku, class::MISSING_IN_WMS, fate);
    }
    ledger
}

/// Phase 4: records what was read, then sends the plan: CRM uploads, the
/// shop's quantities, the WMS registrations (the last two not after a stop
/// request).
async fn apply(
    ctx: &Context,
    run_id: i64,
    sources: &Sources,
    plan: &Plan<'_>,
    phases: &mut Phases,
) -> Result<Ledger> {
    let mut ledger = Ledger::new(plan.planned());
    ctx.check_lock().await?;
    record_reads(ctx, sources).await?;
    phases.lap("snapshot");
    let upload = UploadInput {
        fixes: &plan.fixes,
        rows: &plan.rows,
        crm_costs: &plan.crm_costs,
    };
    apply_crm(ctx, &sources.crm, run_id, &upload, &mut ledger).await?;
    phases.lap("crm_uploads");
    if !ctx.stop.is_stopped() {
        apply_shop(ctx, run_id, &plan.stock.shop_updates, &mut ledger).await?;
    }
    phases.lap("shop_writes");
    if !ctx.stop.is_stopped() {
        apply_wms(ctx, run_id, &plan.registrations, &mut ledger).await?;
    }
    phases.lap("wms_writes");
    Ok(ledger)
}

/// The first writes: the snapshot the `inventoriesUpload` callback answers
/// from, then what the CRM is known to hold: this full read, or the moved
/// offers a delta run read (every acknowledged upload adds to it).
async fn record_reads(ctx: &Context, sources: &Sources) -> Result<()> {
    save_snapshot(ctx, &sources.snap).await?;
    match &sources.crm_read {
        CrmRead::Full { stored, .. } => known_stock::replace(
            &ctx.state,
            sources.crm.store(),
            sources.crm.offer_key().field(),
            sources.snap.read_at,
            &sources
                .crm_rows
                .iter()
                .map(super::stock_delta::CrmRow::known)
                .collect::<Vec<_>>(),
            stored.as_ref(),
        )
        .await
        .context("recording the full CRM read"),
        CrmRead::Delta(d) => known_stock::confirm(&ctx.state, &d.confirmed)
            .await
            .context("recording the moved offers read"),
    }
}

/// Replaces the stock snapshot the listener answers RetailCRM's
/// `inventoriesUpload` callback from, with this run's WMS figures, keeping
/// the callbacks acknowledged since the WMS read began.
async fn save_snapshot(ctx: &Context, snap: &WmsSnapshot) -> Result<()> {
    let rows: Vec<crate::db::events::StockSnapshot> = snap
        .rows()
        .filter_map(|(sku, w)| {
            Some(crate::db::events::StockSnapshot {
                sku: sku.to_string(),
                wms_stock: w.stock?,
                wms_reserved: w.reserved.unwrap_or(0),
                sellable: w.sellable()?,
                source: crate::db::events::SOURCE_STOCK_JOB.to_string(),
                taken_at: snap.read_at,
            })
        })
        .collect();
    crate::db::events::put_stock_snapshot(&ctx.state, &rows)
        .await
        .context("saving the stock snapshot")?;
    Ok(())
}
