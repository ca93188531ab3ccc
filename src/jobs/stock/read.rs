//! Phase 1 of the stock run: every source, read before anything is written.

use anyhow::{Context as _, Result};
use std::collections::{BTreeMap, HashMap, HashSet};

use super::super::phases::Phases;
use super::super::stock_delta::{self, CrmRow, DeltaOutcome};
use super::super::stock_upload::shop_costs;
use super::super::Context;
use super::JOB;
use crate::config::WmsKind;
use crate::connectors::egon::InventoryItem;
use crate::connectors::retailcrm::RetailCrmClient;
use crate::db::events::{self, StockSnapshot};
use crate::db::known_stock::KnownStock;
use crate::db::mapping::{self, MapKind};
use crate::db::runs;
use crate::reconcile::stock as rs;
use crate::shop::{Product, ShopStock};

/// Everything the run read. Nothing is read after it: the plan, the guards,
/// the writes and the report take what they need from here.
pub(in crate::jobs) struct Sources {
    /// The shop's stock (and cost price) per SKU.
    pub(super) shop_stock: Vec<ShopStock>,
    /// The RetailCRM client the CRM was read with (and is written with).
    pub(super) crm: RetailCrmClient,
    /// What the WMS said.
    pub(super) snap: WmsSnapshot,
    /// The CRM store's offers read (all of them, or in delta mode the moved ones).
    pub(super) crm_rows: Vec<CrmRow>,
    /// How the CRM was read.
    pub(super) crm_read: CrmRead,
    /// Σ sellable of the baseline run, if there is one.
    pub(super) sellable_before: Option<i64>,
    /// What a WMS registration of a SKU missing in the WMS needs.
    pub(super) lookup: WmsLookup,
}

/// How the CRM store was read.
pub(super) enum CrmRead {
    /// Every page; the stored known state, and why a delta run fell back to
    /// a full one (if it did).
    Full {
        /// What the CRM was known to hold before this read.
        stored: Option<KnownStock>,
        /// Why the run is not a delta run though delta mode is on.
        fallback: Option<String>,
    },
    /// Only the offers whose WMS figure or cost moved.
    Delta(DeltaOutcome),
}

impl CrmRead {
    /// `full` or `delta`, as the run summary says.
    pub(super) fn mode(&self) -> &'static str {
        match self {
            CrmRead::Full { .. } => "full",
            CrmRead::Delta(_) => "delta",
        }
    }
}

/// What the WMS registration of unmapped SKUs works from (empty when no
/// shop SKU lacks WMS stock, or the WMS is EGON, which registers nothing).
#[derive(Debug, Default)]
pub(super) struct WmsLookup {
    /// The shop catalogue (`products_select.sql`), by SKU: the record
    /// `update_good` / `add_good` send.
    pub(super) catalogue: BTreeMap<String, Product>,
    /// SKUs found unknown to the WMS, with when (Unix ms, as stored).
    pub(super) absent: BTreeMap<String, String>,
}

/// What the WMS said, per SKU.
#[derive(Debug, Default)]
pub(in crate::jobs) struct WmsSnapshot {
    skus: Vec<String>,
    wms_ids: Vec<Option<i64>>,
    stock: Vec<Option<i64>>,
    reserved: Vec<Option<i64>>,
    /// SKUs the WMS was expected to report.
    pub(super) expected: usize,
    /// SKUs it did report with readable figures.
    pub(super) reported: usize,
    /// SKUs whose WMS figures sverka cannot read (`wms_unreadable`): left
    /// out of the classification, so nothing is corrected for them anywhere.
    pub(in crate::jobs) unreadable: Vec<Unreadable>,
    /// When the WMS read began, Unix ms: the snapshot's time (a callback
    /// acknowledged after it is newer and survives the job's save).
    pub(super) read_at: i64,
}

/// A SKU whose WMS figures cannot be read (missing is not zero).
#[derive(Debug, Clone)]
pub(in crate::jobs) struct Unreadable {
    pub(in crate::jobs) sku: String,
    pub(super) wms_id: Option<i64>,
    pub(super) reason: String,
}

impl WmsSnapshot {
    /// Each SKU's WMS row.
    pub(super) fn rows(&self) -> impl Iterator<Item = (&str, rs::WmsStock)> + '_ {
        (0..self.skus.len()).map(|i| {
            let row = rs::WmsStock {
                wms_id: self.wms_ids[i],
                stock: self.stock[i],
                reserved: self.reserved[i],
            };
            (self.skus[i].as_str(), row)
        })
    }

    /// The WMS frame the classification takes.
    pub(super) fn frame(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::*;
        let skus: Vec<&str> = self.skus.iter().map(String::as_str).collect();
        Ok(df!(
            "sku" => skus,
            "wms_id" => self.wms_ids.clone(),
            "stock" => self.stock.clone(),
            "reserved" => self.reserved.clone(),
        )?)
    }

    /// The share of the expected SKUs the WMS reported (1 when none was expected).
    pub(super) fn coverage(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.reported as f64 / self.expected as f64
        }
    }

    fn push(&mut self, sku: String, wms_id: Option<i64>, figures: Option<(i64, i64)>) {
        self.skus.push(sku);
        self.wms_ids.push(wms_id);
        self.stock.push(figures.map(|f| f.0));
        self.reserved.push(figures.map(|f| f.1));
    }
}

/// Reads every source, timing the laps `shop_read` and `wms_crm_read` (with
/// `wms_crm_read_cpu`); the baseline and the WMS look-up data come after them.
pub(in crate::jobs) async fn read(ctx: &Context, phases: &mut Phases) -> Result<Sources> {
    let shop_stock = ctx.shop.stock().await.context("reading the shop's stock")?;
    phases.lap("shop_read");
    phases.mark_cpu();
    let shop_skus: Vec<String> = shop_stock.iter().map(|s| s.sku.clone()).collect();
    tracing::info!(
        skus = shop_skus.len(),
        "read the shop's stock; reading the WMS and RetailCRM"
    );
    let crm = ctx.retailcrm()?;
    let (snap, crm_rows, crm_read) = read_wms_and_crm(ctx, &crm, &shop_stock, &shop_skus).await?;
    phases.lap("wms_crm_read");
    phases.cpu_lap("wms_crm_read_cpu");
    tracing::info!(
        mode = crm_read.mode(),
        wms_reported = snap.reported,
        wms_expected = snap.expected,
        crm_offers = crm_rows.len(),
        "read the WMS and RetailCRM"
    );
    let lookup = read_lookup(ctx, &shop_skus, &snap).await?;
    let previous = runs::last_baseline(&ctx.state, JOB, "total_sellable").await?;
    let sellable_before = previous
        .as_ref()
        .and_then(|r| r.summary.get("total_sellable"))
        .and_then(|v| v.as_i64());
    Ok(Sources {
        shop_stock,
        crm,
        snap,
        crm_rows,
        crm_read,
        sellable_before,
        lookup,
    })
}

/// The WMS and the CRM: both at once in a full run; in a delta run the WMS
/// first, since the offers read are those whose WMS figure moved.
async fn read_wms_and_crm(
    ctx: &Context,
    crm: &RetailCrmClient,
    shop_stock: &[ShopStock],
    shop_skus: &[String],
) -> Result<(WmsSnapshot, Vec<CrmRow>, CrmRead)> {
    match stock_delta::plan(ctx, crm).await? {
        stock_delta::Plan::Full { fallback } => {
            // The WMS and the CRM are independent: read both at once, so the run
            // takes as long as the slower of them (RetailCRM's rate limit), not the sum.
            // The stored known state is read meanwhile: only what differs
            // from it is written back.
            let (snap, offers, stored) = tokio::try_join!(
                read_wms(ctx, shop_skus),
                async {
                    crm.inventories()
                        .await
                        .context("reading store inventories from RetailCRM")
                },
                stock_delta::stored(ctx, crm)
            )?;
            let rows = stock_delta::full_rows(&offers, crm);
            Ok((snap, rows, CrmRead::Full { stored, fallback }))
        }
        stock_delta::Plan::Delta(known) => {
            let snap = read_wms(ctx, shop_skus).await?;
            let sellable: Vec<(&str, i64)> = snap
                .rows()
                .filter_map(|(sku, w)| Some((sku, w.sellable()?)))
                .collect();
            let costs = shop_costs(ctx, shop_stock, &snap);
            let moved = stock_delta::moved(&known, &sellable, costs.as_ref());
            drop(costs);
            drop(sellable);
            let mut outcome = stock_delta::read(ctx, crm, known, moved).await?;
            let rows = std::mem::take(&mut outcome.rows);
            Ok((snap, rows, CrmRead::Delta(outcome)))
        }
    }
}

/// The shop catalogue and the SKUs found unknown to the WMS, read when an
/// IMSKLAD registration may follow: some shop SKU has no WMS stock figure
/// (the only way a SKU is `missing_in_wms`).
async fn read_lookup(ctx: &Context, shop_skus: &[String], snap: &WmsSnapshot) -> Result<WmsLookup> {
    let stocked: HashSet<&str> = snap
        .rows()
        .filter(|(_, w)| w.stock.is_some())
        .map(|(sku, _)| sku)
        .collect();
    let needed = ctx.config.wms.kind == WmsKind::Imsklad
        && shop_skus.iter().any(|s| !stocked.contains(s.as_str()));
    if !needed {
        return Ok(WmsLookup::default());
    }
    let catalogue = ctx
        .shop
        .products()
        .await
        .context("reading the shop catalogue")?
        .into_iter()
        .map(|p| (p.sku.clone(), p))
        .collect();
    let absent = mapping::all(&ctx.state, MapKind::AbsentGood).await?;
    Ok(WmsLookup { catalogue, absent })
}

async fn read_wms(ctx: &Context, shop_skus: &[String]) -> Result<WmsSnapshot> {
    let read_at = crate::db::now_ms();
    let mut snap = match ctx.config.wms.kind {
        WmsKind::Imsklad => read_imsklad(ctx).await?,
        WmsKind::Egon => read_egon(ctx, shop_skus).await?,
    };
    snap.read_at = read_at;
    Ok(snap)
}

/// The mapped SKUs with their numeric IMSKLAD goods id (others are logged and left out).
async fn mapped_goods(ctx: &Context) -> Result<Vec<(String, i64)>> {
    let mapping = mapping::all(&ctx.state, MapKind::Good).await?;
    let mut mapped = Vec::with_capacity(mapping.len());
    for (sku, wms_id) in &mapping {
        match wms_id.trim().parse::<i64>() {
            Ok(id) => mapped.push((sku.clone(), id)),
            Err(_) => tracing::warn!(
                sku,
                wms_id,
                "ignoring a non-numeric IMSKLAD goods id in the mapping"
            ),
        }
    }
    Ok(mapped)
}

/// IMSKLAD `get_stock` of every mapped SKU.
async fn read_imsklad(ctx: &Context) -> Result<WmsSnapshot> {
    let client = ctx.imsklad()?;
    let mapped = mapped_goods(ctx).await?;
    let ids: Vec<i64> = mapped.iter().map(|(_, id)| *id).collect();
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
    let n = mapped.len();
    let mut snap = WmsSnapshot {
        skus: Vec::with_capacity(n),
        wms_ids: Vec::with_capacity(n),
        stock: Vec::with_capacity(n),
        reserved: Vec::with_capacity(n),
        expected: n,
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
        let found = by_id.get(&id).copied();
        snap.reported += usize::from(found.is_some());
        snap.push(sku, Some(id), found);
    }
    Ok(snap)
}

/// EGON `InventoryDetail`, with the `InventoryStatusUpdate` callbacks
/// journaled by `sverka serve`.
async fn read_egon(ctx: &Context, shop_skus: &[String]) -> Result<WmsSnapshot> {
    let client = ctx.egon()?;
    let items = client
        .inventory_detail(&[], false)
        .await
        .context("reading stock from EGON (InventoryDetail)")?;
    let pushed: HashMap<String, StockSnapshot> = events::stock_snapshot(&ctx.state)
        .await?
        .into_iter()
        .filter(|s| s.source == events::SOURCE_EGON)
        .map(|s| (s.sku.clone(), s))
        .collect();
    let shop_set: HashSet<&str> = shop_skus.iter().map(String::as_str).collect();
    let mut snap = WmsSnapshot::default();
    let mut seen = HashSet::new();
    let egon_tz = ctx.config.egon.tz();
    for item in items {
        if !seen.insert(item.item_id.clone()) {
            continue;
        }
        match egon_figures(&item, pushed.get(&item.item_id), egon_tz) {
            Ok(figures) => {
                snap.reported += usize::from(shop_set.contains(item.item_id.as_str()));
                snap.push(item.item_id, item.egon_id, Some(figures));
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
            if let Ok(figures) = pushed_figures(p) {
                snap.push(sku.clone(), None, Some(figures));
            }
        }
    }
    // EGON needs no mapping: the shop SKU is the card's ITEM_ID, so the
    // SKUs it is expected to report are the shop's.
    snap.expected = shop_skus.len();
    Ok(snap)
}

/// (stock, reserved) of an EGON card: a callback journaled after the card's
/// `changed_at` wins over the detail's counts.
fn egon_figures(
    item: &InventoryItem,
    push: Option<&StockSnapshot>,
    egon_tz: chrono_tz::Tz,
) -> std::result::Result<(i64, i64), String> {
    let detail_at = item.changed_at.and_then(|t| {
        use chrono::TimeZone;
        egon_tz
            .from_local_datetime(&t)
            .earliest()
            .map(|t| t.timestamp_millis())
    });
    let newer_push = push.filter(|p| detail_at.is_some_and(|at| p.taken_at > at));
    match newer_push {
        Some(p) => pushed_figures(p),
        None => item.counts.clone().and_then(|c| {
            // Usable units and units promised to orders; sellable = usable − promised.
            c.usable_and_promised()
                .ok_or_else(|| "the counts overflow".to_string())
        }),
    }
}

/// (stock, reserved) of a journaled `InventoryStatusUpdate` snapshot, in checked arithmetic.
fn pushed_figures(p: &StockSnapshot) -> std::result::Result<(i64, i64), String> {
    p.sellable
        .checked_add(p.wms_reserved)
        .map(|stock| (stock, p.wms_reserved))
        .ok_or_else(|| "the callback's counts overflow".to_string())
}
