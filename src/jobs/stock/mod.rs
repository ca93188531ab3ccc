//! `sverka reconcile stock`: the WMS is right about physical stock.
//!
//! 1. Read everything: the shop's stock and cost prices, the id mapping, the
//!    WMS's stock and reserve for every mapped SKU, the CRM's quantities and
//!    purchase prices for the configured store (every page, or in delta mode
//!    only the offers that moved: [`super::stock_delta`]).
//! 2. Classify in Polars ([`crate::reconcile::stock`]), compare cost prices
//!    ([`crate::reconcile::cost`]) and plan the corrections.
//! 3. Guards: WMS coverage, share of SKUs the plan would change, drop of total
//!    sellable stock since the last successful run. A tripped guard writes
//!    nothing (unless `--force`, which the run records).
//! 4. Apply, journaling each correction before it is sent and its answer after:
//!    CRM uploads in chunks of ≤ 250 changed offers (quantity and cost of a SKU
//!    in one offer, [`super::stock_upload`]), the shop's quantities in one
//!    transaction, and WMS registration of unmapped SKUs.
//! 5. Write `stock-<date>-<run>.csv` and return the summary.
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
use polars::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

use super::gate::{self, Gate};
use super::stock_upload::{apply_crm, fix_notes, shop_costs, UploadInput};
use super::{run_job, stock_delta, Context, Outcome};
use crate::config::{LookupUnmapped, WmsKind};
use crate::connectors::imsklad::Good;
use crate::db::journal::{CorrectionStatus, ItemOutcome, Planned, Target};
use crate::db::known_stock;
use crate::db::mapping::{self, MapKind};
use crate::db::runs::{self, RunStatus};
use crate::progress::Progress;
use crate::reconcile::cost::{self as rcost, COST_MISMATCH_CRM};
use crate::reconcile::input::Input;
use crate::reconcile::stock::{self as rs, class, col};
use crate::report::csv::{file_name, Cell, CsvReport};
use crate::report::summary::{CorrectionCounts, JobSummary};

mod apply_shop;
mod apply_wms;
mod guard;
mod report;
use apply_shop::*;
use apply_wms::*;
use guard::*;
pub(super) use report::ClassifiedRows;
use report::*;

/// The job's name in runs, locks and reports.
pub const JOB: &str = "stock";

/// The report's columns.
pub const REPORT_COLUMNS: [&str; 14] = [
    "sku",
    "wms_id",
    "crm_offer_id",
    "wms_stock",
    "wms_reserved",
    "wms_sellable",
    "crm_quantity",
    "shop_quantity",
    "class",
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

/// What the WMS said, per SKU.
#[derive(Debug, Default)]
pub(super) struct WmsSnapshot {
    skus: Vec<String>,
    wms_ids: Vec<Option<i64>>,
    stock: Vec<Option<i64>>,
    reserved: Vec<Option<i64>>,
    /// SKUs the WMS was expected to report.
    expected: usize,
    /// SKUs it did report with readable figures.
    reported: usize,
    /// SKUs whose WMS figures sverka cannot read (`wms_unreadable`): left
    /// out of the classification, so nothing is corrected for them anywhere.
    pub(super) unreadable: Vec<Unreadable>,
    /// When the WMS read began, Unix ms: the snapshot's time (a callback
    /// acknowledged after it is newer and survives the job's save).
    read_at: i64,
}

/// A SKU whose WMS figures cannot be read (missing is not zero).
#[derive(Debug, Clone)]
pub(super) struct Unreadable {
    pub(super) sku: String,
    wms_id: Option<i64>,
    reason: String,
}

/// One report line's correction state.
#[derive(Debug, Clone)]
pub(super) struct Fate {
    pub(super) action: &'static str,
    pub(super) result: String,
    pub(super) note: String,
}

async fn read_wms(ctx: &Context, shop_skus: &[String]) -> Result<WmsSnapshot> {
    let read_at = crate::db::now_ms();
    let mut snap = read_wms_from(ctx, shop_skus).await?;
    snap.read_at = read_at;
    Ok(snap)
}

async fn read_wms_from(ctx: &Context, shop_skus: &[String]) -> Result<WmsSnapshot> {
    match ctx.config.wms.kind {
        WmsKind::Imsklad => {
            let client = ctx.imsklad()?;
            let mapping = mapping::all(&ctx.state, MapKind::Good).await?;
            let mut ids = Vec::with_capacity(mapping.len());
            let mut mapped: Vec<(String, i64)> = Vec::with_capacity(mapping.len());
            for (sku, wms_id) in &mapping {
                match wms_id.trim().parse::<i64>() {
                    Ok(id) => {
                        ids.push(id);
                        mapped.push((sku.clone(), id));
                    }
                    Err(_) => tracing::warn!(
                        sku,
                        wms_id,
                        "ignoring a non-numeric IMSKLAD goods id in the mapping"
                    ),
                }
            }
            let answer = client
                .get_stock(&ids)
                .await
                .context("reading stock from IMSKLAD (get_stock)")?;
            let by_id: HashMap<i64, (i64, i64)> = answer
                .rows
                .iter()
                .map(|r| (r.id, (r.stock, r.reserved)))
                .collect();
            let unreadable: HashMap<i64, &str> = answer
                .unreadable
                .iter()
                .map(|u| (u.id, u.reason.as_str()))
                .collect();
            let mut snap = WmsSnapshot {
                expected: mapped.len(),
                ..WmsSnapshot::default()
            };
            for (sku, id) in mapped {
                if let Some(reason) = unreadable.get(&id) {
                    snap.unreadable.push(Unreadable {
                        sku,
                        wms_id: Some(id),
                        reason: format!("IMSKLAD get_stock: {reason}"),
                    });
                    continue;
                }
                let found = by_id.get(&id);
                if found.is_some() {
                    snap.reported += 1;
                }
                snap.skus.push(sku);
                snap.wms_ids.push(Some(id));
                snap.stock.push(found.map(|f| f.0));
                snap.reserved.push(found.map(|f| f.1));
            }
            Ok(snap)
        }
        WmsKind::Egon => {
            let client = ctx.egon()?;
            let items = client
                .inventory_detail(&[], false)
                .await
                .context("reading stock from EGON (InventoryDetail)")?;
            // InventoryStatusUpdate callbacks journaled by `sverka serve`.
            let pushed: HashMap<String, crate::db::events::StockSnapshot> =
                crate::db::events::stock_snapshot(&ctx.state)
                    .await?
                    .into_iter()
                    .filter(|s| s.source == crate::db::events::SOURCE_EGON)
                    .map(|s| (s.sku.clone(), s))
                    .collect();
            let shop_set: std::collections::HashSet<&str> =
                shop_skus.iter().map(String::as_str).collect();
            let mut snap = WmsSnapshot::default();
            let mut seen = std::collections::HashSet::new();
            let egon_tz = ctx.config.egon.tz();
            for item in items {
                if !seen.insert(item.item_id.clone()) {
                    continue;
                }
                let detail_at = item.changed_at.and_then(|t| {
                    use chrono::TimeZone;
                    egon_tz
                        .from_local_datetime(&t)
                        .earliest()
                        .map(|t| t.timestamp_millis())
                });
                // A callback journaled after the card's changed_at wins.
                let newer_push = pushed
                    .get(&item.item_id)
                    .filter(|p| detail_at.is_some_and(|at| p.taken_at > at));
                let figures = match newer_push {
                    Some(p) => pushed_figures(p),
                    None => item.counts.clone().and_then(|c| {
                        // Usable units and units promised to orders; sellable = usable − promised.
                        c.usable_and_promised()
                            .ok_or_else(|| "the counts overflow".to_string())
                    }),
                };
                match figures {
                    Ok((stock, reserved)) => {
                        if shop_set.contains(item.item_id.as_str()) {
                            snap.reported += 1;
                        }
                        snap.skus.push(item.item_id);
                        snap.wms_ids.push(item.egon_id);
                        snap.stock.push(Some(stock));
                        snap.reserved.push(Some(reserved));
                    }
                    Err(reason) => snap.unreadable.push(Unreadable {
                        sku: item.item_id,
                        wms_id: item.egon_id,
                        reason: format!("EGON InventoryDetail: {reason}"),
                    }),
                }
            }
            // Cards the detail did not list but a callback reported.
            for (sku, p) in &pushed {
                if !seen.contains(sku) {
                    if let Ok((stock, reserved)) = pushed_figures(p) {
                        snap.skus.push(sku.clone());
                        snap.wms_ids.push(None);
                        snap.stock.push(Some(stock));
                        snap.reserved.push(Some(reserved));
                    }
                }
            }
            // EGON needs no mapping: the shop SKU is the card's ITEM_ID, so the
            // SKUs it is expected to report are the shop's.
            snap.expected = shop_skus.len();
            Ok(snap)
        }
    }
}

/// (stock, reserved) of a journaled `InventoryStatusUpdate` snapshot, in checked arithmetic.
fn pushed_figures(p: &crate::db::events::StockSnapshot) -> std::result::Result<(i64, i64), String> {
    p.sellable
        .checked_add(p.wms_reserved)
        .map(|stock| (stock, p.wms_reserved))
        .ok_or_else(|| "the callback's counts overflow".to_string())
}

fn wms_frame(s: &WmsSnapshot) -> Result<DataFrame> {
    Ok(df!(
        "sku" => s.skus.clone(),
        "wms_id" => s.wms_ids.clone(),
        "stock" => s.stock.clone(),
        "reserved" => s.reserved.clone(),
    )?)
}

async fn execute(ctx: &Context, run_id: i64) -> Result<(RunStatus, Outcome)> {
    // 1. Read everything.
    let mut phases = super::phases::Phases::new();
    let shop_stock = ctx.shop.stock().await.context("reading the shop's stock")?;
    phases.lap("shop_read");
    phases.mark_cpu();
    let shop_skus: Vec<String> = shop_stock.iter().map(|s| s.sku.clone()).collect();
    tracing::info!(
        skus = shop_skus.len(),
        "read the shop's stock; reading the WMS and RetailCRM"
    );
    let crm = ctx.retailcrm()?;
    let plan_mode = stock_delta::plan(ctx, &crm).await?;
    let (snap, crm_rows, delta, fallback) = match plan_mode {
        stock_delta::Plan::Full { fallback } => {
            // The WMS and the CRM are independent: read both at once, so the run
            // takes as long as the slower of them (RetailCRM's rate limit), not the sum.
            // The stored known state is read meanwhile: only what differs
            // from it is written back.
            let (snap, offers, stored) = tokio::try_join!(
                read_wms(ctx, &shop_skus),
                async {
                    crm.inventories()
                        .await
                        .context("reading store inventories from RetailCRM")
                },
                stock_delta::stored(ctx, &crm)
            )?;
            let rows = stock_delta::full_rows(&offers, &crm);
            (snap, rows, Err(stored), fallback)
        }
        stock_delta::Plan::Delta(known) => {
            // The moved offers are those whose WMS figure moved: the WMS first.
            let snap = read_wms(ctx, &shop_skus).await?;
            let sellable: Vec<(&str, i64)> = snap
                .skus
                .iter()
                .enumerate()
                .filter_map(|(i, sku)| {
                    let stock = snap.stock[i]?;
                    let reserved = snap.reserved[i].unwrap_or(0);
                    Some((sku.as_str(), stock.saturating_sub(reserved).max(0)))
                })
                .collect();
            let costs = shop_costs(ctx, &shop_stock, &snap);
            let moved = stock_delta::moved(&known, &sellable, costs.as_ref());
            drop(costs);
            drop(sellable);
            let mut outcome = stock_delta::read(ctx, &crm, known, moved).await?;
            let rows = std::mem::take(&mut outcome.rows);
            (snap, rows, Ok(outcome), None)
        }
    };
    // The delta read's outcome, or (full run) the stored known state.
    let (delta, stored) = match delta {
        Ok(outcome) => (Some(outcome), None),
        Err(stored) => (None, stored),
    };
    let mode = if delta.is_some() { "delta" } else { "full" };
    phases.lap("wms_crm_read");
    phases.cpu_lap("wms_crm_read_cpu");
    tracing::info!(
        mode,
        wms_reported = snap.reported,
        wms_expected = snap.expected,
        crm_offers = crm_rows.len(),
        "read the WMS and RetailCRM"
    );
    // SKUs whose WMS figures cannot be read are left out of every frame: no
    // correction for them anywhere; they are reported `wms_unreadable`.
    let unreadable: HashMap<&str, &Unreadable> = snap
        .unreadable
        .iter()
        .map(|u| (u.sku.as_str(), u))
        .collect();
    let mut unreadable_crm: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut crm_cols: (Vec<String>, Vec<i64>, Vec<i64>) = Default::default();
    let mut crm_costs: HashMap<&str, rcost::CrmCost> = HashMap::with_capacity(crm_rows.len());
    for row in &crm_rows {
        let sku = row.sku.as_str();
        if unreadable.contains_key(sku) {
            unreadable_crm.insert(sku, (row.offer_id, row.quantity));
            continue;
        }
        crm_cols.0.push(row.sku.clone());
        crm_cols.1.push(row.offer_id);
        crm_cols.2.push(row.quantity);
        crm_costs.insert(
            sku,
            rcost::CrmCost {
                offer_id: row.offer_id,
                cost_kop: row.cost_kop,
            },
        );
    }
    let shop_cost_map = shop_costs(ctx, &shop_stock, &snap);
    let cost_plan = shop_cost_map
        .as_ref()
        .map(|shop| rcost::plan_costs(shop, &crm_costs))
        .unwrap_or_default();
    let (shop_skus, shop_quantities, unreadable_shop) = {
        let mut skus = Vec::with_capacity(shop_stock.len());
        let mut quantities = Vec::with_capacity(shop_stock.len());
        let mut left_out: HashMap<&str, i64> = HashMap::new();
        for s in &shop_stock {
            if unreadable.contains_key(s.sku.as_str()) {
                left_out.insert(s.sku.as_str(), s.quantity);
            } else {
                skus.push(s.sku.clone());
                quantities.push(s.quantity);
            }
        }
        (skus, quantities, left_out)
    };
    let previous = runs::last_baseline(&ctx.state, JOB, "total_sellable").await?;
    let sellable_before = previous
        .as_ref()
        .and_then(|r| r.summary.get("total_sellable"))
        .and_then(|v| v.as_i64());

    // 2. Classify and plan (pure).
    let wms_df = wms_frame(&snap)?;
    let crm_df = df!("sku" => crm_cols.0, "crm_offer_id" => crm_cols.1, "quantity" => crm_cols.2)?;
    let shop_df = df!(
        "sku" => shop_skus.clone(),
        "quantity" => shop_quantities,
    )?;
    let classified = rs::classify_stock(&wms_df, &crm_df, &shop_df)?;
    let mut counts = rs::count_by_class(&classified)?;
    let plan = rs::plan_stock(&classified)?;
    let rows = ClassifiedRows::read(&classified)?;
    let n_skus = rows.distinct_skus();
    let fixes = rcost::merge(&plan.crm_updates, &cost_plan);
    if !cost_plan.is_empty() {
        counts.insert(COST_MISMATCH_CRM.into(), cost_plan.len() as u64);
    }
    // SKUs whose CRM quantity or cost, or shop quantity, the plan would change.
    let changed = fixes
        .iter()
        .map(|f| f.sku.as_str())
        .chain(plan.shop_updates.iter().map(|u| u.sku.as_str()))
        .collect::<std::collections::BTreeSet<&str>>()
        .len();
    let share = if snap.expected == 0 {
        0.0
    } else {
        changed as f64 / snap.expected as f64
    };
    phases.lap("classify");
    let registrations = registrations(ctx, &plan).await?;
    let sellable_now = rs::total_sellable(&wms_df)?;
    let coverage = if snap.expected == 0 {
        1.0
    } else {
        snap.reported as f64 / snap.expected as f64
    };
    let mut extra = json!({
        "skus": n_skus,
        "wms_expected": snap.expected,
        "wms_reported": snap.reported,
        "wms_coverage": coverage,
        "change_share": share,
        "changed_skus": changed,
        "wms_registrations": registrations,
        "total_sellable": sellable_now,
        "crm_offers": crm_rows.len(),
        "shop_skus": shop_stock.len(),
        "wms_unreadable": snap.unreadable.len(),
        "mode": mode,
        "cost_synced": shop_cost_map.is_some(),
    });
    if let Some(reason) = &fallback {
        extra["mode_fallback"] = json!(reason);
    }
    if let Some(d) = &delta {
        extra["delta"] = d.summary();
    }

    // 3. Guards.
    let guard = check_guards(
        ctx,
        &snap,
        coverage,
        &GuardInput {
            changed,
            registrations,
            sellable_now,
            sellable_before,
        },
    );
    phases.lap("guards");
    let mut fates: HashMap<(String, &'static str), Fate> = HashMap::new();
    let mut corrections = CorrectionCounts {
        planned: (fixes.len() + plan.shop_updates.len() + plan.wms_missing.len()) as u64,
        ..CorrectionCounts::default()
    };
    let mut extra_rows: Vec<(String, &'static str, Fate)> = Vec::new();
    let gate = Gate::decide(ctx, run_id, guard, &mut extra);

    if let Some(unsent) = gate.unsent() {
        let result = unsent.as_str();
        for f in &fixes {
            for (class_name, note) in fix_notes(f) {
                fates.insert(
                    (f.sku.clone(), class_name),
                    Fate {
                        action: "crm_upload",
                        result: result.into(),
                        note,
                    },
                );
            }
        }
        for u in &plan.shop_updates {
            fates.insert(
                (u.sku.clone(), class::QTY_MISMATCH_SHOP),
                Fate {
                    action: "shop_update",
                    result: result.into(),
                    note: format!("{} → {}", u.from, u.to),
                },
            );
        }
        for sku in &plan.wms_missing {
            fates.insert(
                (sku.clone(), class::MISSING_IN_WMS),
                Fate {
                    action: "wms_register",
                    result: result.into(),
                    note: String::new(),
                },
            );
        }
    } else {
        // 4. Apply. First the snapshot the `inventoriesUpload` callback answers from.
        ctx.check_lock().await?;
        save_snapshot(ctx, &snap).await?;
        // Then what the CRM is known to hold: this full read, or the moved
        // offers a delta run read; every acknowledged upload adds to it.
        match &delta {
            None => known_stock::replace(
                &ctx.state,
                crm.store(),
                crm.offer_key().field(),
                snap.read_at,
                &crm_rows
                    .iter()
                    .map(stock_delta::CrmRow::known)
                    .collect::<Vec<_>>(),
                stored.as_ref(),
            )
            .await
            .context("recording the full CRM read")?,
            Some(d) => known_stock::confirm(&ctx.state, &d.confirmed)
                .await
                .context("recording the moved offers read")?,
        }
        phases.lap("snapshot");
        apply_crm(
            ctx,
            &crm,
            run_id,
            &UploadInput {
                fixes: &fixes,
                rows: &rows,
                crm_costs: &crm_costs,
            },
            &mut fates,
            &mut corrections,
            &mut extra_rows,
        )
        .await?;
        phases.lap("crm_uploads");
        if !ctx.stop.is_stopped() {
            apply_shop(ctx, run_id, &plan, &mut fates, &mut corrections).await?;
        }
        phases.lap("shop_writes");
        if !ctx.stop.is_stopped() {
            apply_wms(ctx, run_id, &plan, &mut fates, &mut corrections).await?;
        }
        phases.lap("wms_writes");
    }
    for (_, class_name, _) in &extra_rows {
        *counts.entry(class_name.to_string()).or_insert(0) += 1;
    }
    if !snap.unreadable.is_empty() {
        tracing::warn!(
            run = run_id,
            skus = snap.unreadable.len(),
            "the WMS answered figures sverka cannot read; those SKUs are reported wms_unreadable and not corrected"
        );
        counts.insert(class::WMS_UNREADABLE.into(), snap.unreadable.len() as u64);
    }

    // 5. Report.
    let shop_cost_all: HashMap<&str, i64> = shop_stock
        .iter()
        .filter_map(|s| Some((s.sku.as_str(), s.cost_kop?)))
        .collect();
    let shop_cost_of = |sku: &str| {
        shop_cost_all
            .get(sku)
            .map_or(Cell::Empty, |c| Cell::Money(*c))
    };
    let cost_cells = |sku: &str| {
        [
            shop_cost_of(sku),
            crm_costs
                .get(sku)
                .and_then(|c| c.cost_kop)
                .map_or(Cell::Empty, Cell::Money),
        ]
    };
    let mut report = CsvReport::create(
        &ctx.report_dir,
        &file_name(JOB, ctx.today(), run_id),
        ctx.config.reports.dialect,
        &REPORT_COLUMNS,
    )?;
    let mut left_for_people = false;
    for i in 0..rows.len() {
        let class_name = rows.class[i].as_str();
        if class_name == class::OK {
            continue;
        }
        let fate = fates
            .get(&(rows.sku[i].clone(), class_static(class_name)))
            .cloned()
            .unwrap_or_else(|| Fate {
                action: "report",
                result: String::new(),
                note: note_for(class_name),
            });
        if fate.action == "report" || fate.result != "applied" {
            left_for_people = true;
        }
        let mut cells = rows.cells(i, &fate);
        cells.extend(cost_cells(&rows.sku[i]));
        report.row(&cells)?;
    }
    for c in &cost_plan {
        let fate = fates
            .get(&(c.sku.clone(), COST_MISMATCH_CRM))
            .cloned()
            .unwrap_or_else(|| Fate {
                action: "report",
                result: String::new(),
                note: String::new(),
            });
        if fate.result != "applied" {
            left_for_people = true;
        }
        let mut cells = match rows.find(&c.sku) {
            Some(i) => rows.cells(i, &fate),
            None => empty_cells(&c.sku),
        };
        cells[8] = Cell::Text(COST_MISMATCH_CRM.into());
        cells[9] = Cell::Text(fate.action.into());
        cells[10] = Cell::Text(fate.result.clone());
        cells[11] = Cell::Text(fate.note.clone());
        cells.extend(cost_cells(&c.sku));
        report.row(&cells)?;
    }
    for (sku, class_name, fate) in &extra_rows {
        left_for_people = true;
        let base = rows.find(sku);
        let mut cells = match base {
            Some(i) => rows.cells(i, fate),
            None => empty_cells(sku),
        };
        cells[8] = Cell::Text(class_name.to_string());
        cells[9] = Cell::Text(fate.action.into());
        cells[10] = Cell::Text(fate.result.clone());
        cells[11] = Cell::Text(fate.note.clone());
        cells.extend(cost_cells(sku));
        report.row(&cells)?;
    }
    for u in &snap.unreadable {
        left_for_people = true;
        let crm = unreadable_crm.get(u.sku.as_str());
        report.row(&[
            Cell::Text(u.sku.clone()),
            u.wms_id.into(),
            crm.map(|c| c.0).into(),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            crm.map(|c| c.1).into(),
            unreadable_shop.get(u.sku.as_str()).copied().into(),
            Cell::Text(class::WMS_UNREADABLE.into()),
            Cell::Text("report".into()),
            Cell::Text(String::new()),
            Cell::Text(format!("{}; nothing corrected for this SKU", u.reason)),
            shop_cost_of(u.sku.as_str()),
            Cell::Empty,
        ])?;
    }
    let path = report.finish()?;
    phases.lap("report");
    extra["phases_s"] = phases.to_json();

    Ok(gate::finish(
        &gate,
        left_for_people,
        counts,
        corrections,
        &path,
        extra,
    ))
}

/// Replaces the stock snapshot the listener answers RetailCRM's
/// `inventoriesUpload` callback from, with this run's WMS figures, keeping
/// the callbacks acknowledged since the WMS read began.
async fn save_snapshot(ctx: &Context, snap: &WmsSnapshot) -> Result<()> {
    let now = snap.read_at;
    let rows: Vec<crate::db::events::StockSnapshot> = snap
        .skus
        .iter()
        .enumerate()
        .filter_map(|(i, sku)| {
            let stock = snap.stock[i]?;
            let reserved = snap.reserved[i].unwrap_or(0);
            Some(crate::db::events::StockSnapshot {
                sku: sku.clone(),
                wms_stock: stock,
                wms_reserved: reserved,
                sellable: stock.saturating_sub(reserved).max(0),
                source: crate::db::events::SOURCE_STOCK_JOB.to_string(),
                taken_at: now,
            })
        })
        .collect();
    crate::db::events::put_stock_snapshot(&ctx.state, &rows)
        .await
        .context("saving the stock snapshot")?;
    Ok(())
}
