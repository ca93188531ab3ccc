//! The implementation before the merge-based rewrite (BTreeMaps, owned
//! strings), kept verbatim as the oracle that the rewrite must equal.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::{class, clean_track, OrdersOptions, Stage, OUTPUT_COLUMNS};
use crate::reconcile::input::{frame, Input, ReconcileError, Result};

#[derive(Debug, Clone, Copy)]
struct ShopOrder<'a> {
    status: &'a str,
    cancelled: bool,
    needs_fulfilment: bool,
    total_kop: i64,
}

#[derive(Debug, Clone, Copy)]
struct WmsOrder<'a> {
    wms_order_id: Option<&'a str>,
    status: &'a str,
    stage: Stage,
    track: Option<&'a str>,
    last_change_at: i64,
    total_kop: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct CrmOrder<'a> {
    status: &'a str,
    shipped: bool,
    track: Option<&'a str>,
    total_kop: i64,
}

/// Goods per order: order_id → sku → quantity (repeated lines summed).
type Goods<'a> = BTreeMap<&'a str, BTreeMap<&'a str, i64>>;

/// Collects keyed rows, rejecting a repeated key.
fn keyed<'a, T>(
    frame_name: &'static str,
    ids: Vec<&'a str>,
    rows: impl Iterator<Item = T>,
) -> Result<BTreeMap<&'a str, T>> {
    let mut map = BTreeMap::new();
    for (id, row) in ids.into_iter().zip(rows) {
        if map.insert(id, row).is_some() {
            return Err(ReconcileError::DuplicateKey {
                frame: frame_name,
                column: "order_id",
                key: id.to_owned(),
            });
        }
    }
    Ok(map)
}

fn read_shop(df: &DataFrame) -> Result<BTreeMap<&str, ShopOrder<'_>>> {
    let input = Input::new(df, "shop_orders");
    let ids = input.strings("order_id")?;
    let status = input.strings("shop_status")?;
    let cancelled = input.bools("cancelled")?;
    let needs = input.bools("needs_fulfilment")?;
    // Validated for the documented schema; the window is applied by the caller.
    input.ints("created_at")?;
    let total = input.ints("total_kop")?;
    let rows = (0..ids.len()).map(|i| ShopOrder {
        status: status[i],
        cancelled: cancelled[i],
        needs_fulfilment: needs[i],
        total_kop: total[i],
    });
    keyed("shop_orders", ids, rows)
}

fn read_wms(df: &DataFrame) -> Result<BTreeMap<&str, WmsOrder<'_>>> {
    let input = Input::new(df, "wms_orders");
    let ids = input.strings("order_id")?;
    let wms_ids = input.opt_strings("wms_order_id")?;
    let status = input.strings("wms_status")?;
    let stage_names = input.strings("wms_stage")?;
    let track = input.opt_strings("track")?;
    let changed = input.ints("last_change_at")?;
    let total = input.opt_ints("total_kop")?;
    let stages = stage_names
        .iter()
        .map(|name| {
            Stage::parse(name).ok_or_else(|| ReconcileError::InvalidValue {
                frame: "wms_orders",
                column: "wms_stage",
                value: (*name).to_owned(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = (0..ids.len()).map(|i| WmsOrder {
        wms_order_id: wms_ids[i],
        status: status[i],
        stage: stages[i],
        track: track[i],
        last_change_at: changed[i],
        total_kop: total[i],
    });
    keyed("wms_orders", ids, rows)
}

fn read_crm(df: &DataFrame) -> Result<BTreeMap<&str, CrmOrder<'_>>> {
    let input = Input::new(df, "crm_orders");
    let ids = input.strings("order_id")?;
    let status = input.strings("crm_status")?;
    let shipped = input.bools("crm_shipped")?;
    let track = input.opt_strings("track")?;
    let total = input.ints("total_kop")?;
    let rows = (0..ids.len()).map(|i| CrmOrder {
        status: status[i],
        shipped: shipped[i],
        track: track[i],
        total_kop: total[i],
    });
    keyed("crm_orders", ids, rows)
}

fn read_goods<'a>(df: &'a DataFrame, frame_name: &'static str) -> Result<Goods<'a>> {
    let input = Input::new(df, frame_name);
    let ids = input.strings("order_id")?;
    let skus = input.strings("sku")?;
    let qty = input.ints("quantity")?;
    let mut goods = Goods::new();
    for ((id, sku), q) in ids.into_iter().zip(skus).zip(qty) {
        let slot = goods.entry(id).or_default().entry(sku).or_insert(0);
        *slot = slot.checked_add(q).ok_or(ReconcileError::Overflow {
            frame: frame_name,
            column: "quantity",
        })?;
    }
    Ok(goods)
}

/// Describes how two goods lists differ, e.g. `A: shop 2, wms 1; B: shop 0, wms 3`.
fn goods_difference(shop: &BTreeMap<&str, i64>, wms: &BTreeMap<&str, i64>) -> Option<String> {
    let skus: BTreeSet<&str> = shop.keys().chain(wms.keys()).copied().collect();
    let diffs: Vec<String> = skus
        .into_iter()
        .filter_map(|sku| {
            let s = shop.get(sku).copied().unwrap_or(0);
            let w = wms.get(sku).copied().unwrap_or(0);
            (s != w).then(|| format!("{sku}: shop {s}, wms {w}"))
        })
        .collect();
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

/// Everything known about one order.
struct OrderView<'a, 'o> {
    shop: Option<ShopOrder<'a>>,
    wms: Option<WmsOrder<'a>>,
    crm: Option<CrmOrder<'a>>,
    shop_goods: Option<&'o BTreeMap<&'a str, i64>>,
    wms_goods: Option<&'o BTreeMap<&'a str, i64>>,
}

/// The classes of one order with an optional explanatory note, sorted by class.
fn classify_one(
    view: &OrderView<'_, '_>,
    options: &OrdersOptions,
) -> Vec<(&'static str, Option<String>)> {
    let mut found: Vec<(&'static str, Option<String>)> = Vec::new();
    let OrderView { shop, wms, crm, .. } = *view;
    let stage = wms.map(|w| w.stage);

    if let Some(s) = shop {
        if s.needs_fulfilment && !s.cancelled && wms.is_none() {
            found.push((class::MISSING_IN_WMS, None));
        }
        if s.cancelled && stage.is_some_and(Stage::is_active) {
            found.push((class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS, None));
        }
        if s.cancelled && stage.is_some_and(Stage::is_shipped) {
            let note = "cancelled in the shop after the WMS shipped it; not cancelled in the WMS";
            found.push((class::CANCELLED_AFTER_SHIPMENT, Some(note.to_owned())));
        }
        if !s.cancelled && stage == Some(Stage::Cancelled) {
            found.push((class::CANCELLED_IN_WMS_ACTIVE_IN_SHOP, None));
        }
    }
    if let (Some(w), Some(c)) = (wms, crm) {
        if w.stage.is_shipped() && !c.shipped {
            found.push((class::SHIPPED_NOT_MARKED_IN_CRM, None));
        }
        if let Some(track) = clean_track(w.track) {
            match clean_track(c.track) {
                None => found.push((class::TRACK_MISSING_IN_CRM, None)),
                Some(other) if other != track => {
                    let note = format!("crm has {other}");
                    found.push((class::TRACK_MISSING_IN_CRM, Some(note)));
                }
                Some(_) => {}
            }
        }
        if let Some(expected) = options.stage_status.get(&w.stage) {
            if c.status != expected {
                let note = format!("expected {expected} for stage {}", w.stage.as_str());
                found.push((class::STATUS_MISMATCH, Some(note)));
            }
        }
    }
    if crm.is_none() && (shop.is_some() || wms.is_some()) {
        found.push((class::MISSING_IN_CRM, None));
    }
    if wms.is_some() && shop.is_none() {
        found.push((class::MISSING_IN_SHOP, None));
    }
    if let (Some(_), Some(wms_goods)) = (shop, view.wms_goods) {
        let empty = BTreeMap::new();
        if let Some(note) = goods_difference(view.shop_goods.unwrap_or(&empty), wms_goods) {
            found.push((class::GOODS_MISMATCH, Some(note)));
        }
    }
    if let Some(note) = amount_difference(view, options.amount_tolerance_kop) {
        found.push((class::AMOUNT_MISMATCH, Some(note)));
    }
    if let Some(w) = wms {
        let idle_ms = options.now_ms.saturating_sub(w.last_change_at);
        if w.stage.is_active() && idle_ms > options.stuck_hours.saturating_mul(3_600_000) {
            let note = format!("no WMS progress for {} h", idle_ms / 3_600_000);
            found.push((class::STUCK, Some(note)));
        }
    }
    if found.is_empty() {
        found.push((class::OK, None));
    }
    found.sort_by(|a, b| a.0.cmp(b.0));
    found
}

/// Compares the shop total with the CRM's and (when reported) the WMS's.
fn amount_difference(view: &OrderView<'_, '_>, tolerance_kop: i64) -> Option<String> {
    let shop_total = view.shop?.total_kop;
    let others = [
        ("crm", view.crm.map(|c| c.total_kop)),
        ("wms", view.wms.and_then(|w| w.total_kop)),
    ];
    let parts: Vec<String> = others
        .into_iter()
        .filter_map(|(name, total)| {
            let total = total?;
            let off = shop_total.abs_diff(total) > tolerance_kop.unsigned_abs();
            off.then(|| format!("shop {shop_total} kop, {name} {total} kop"))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Output columns under construction.
#[derive(Default)]
struct OrderColumns {
    order_id: Vec<String>,
    wms_order_id: Vec<Option<String>>,
    shop_status: Vec<Option<String>>,
    wms_status: Vec<Option<String>>,
    wms_stage: Vec<Option<String>>,
    crm_status: Vec<Option<String>>,
    crm_shipped: Vec<Option<bool>>,
    track_wms: Vec<Option<String>>,
    track_crm: Vec<Option<String>>,
    class: Vec<String>,
    note: Vec<Option<String>>,
}

impl OrderColumns {
    fn push(
        &mut self,
        order_id: &str,
        view: &OrderView<'_, '_>,
        class_name: &str,
        note: Option<String>,
    ) {
        let owned = |s: Option<&str>| s.map(str::to_owned);
        self.order_id.push(order_id.to_owned());
        self.wms_order_id
            .push(owned(view.wms.and_then(|w| w.wms_order_id)));
        self.shop_status.push(owned(view.shop.map(|s| s.status)));
        self.wms_status.push(owned(view.wms.map(|w| w.status)));
        self.wms_stage
            .push(owned(view.wms.map(|w| w.stage.as_str())));
        self.crm_status.push(owned(view.crm.map(|c| c.status)));
        self.crm_shipped.push(view.crm.map(|c| c.shipped));
        self.track_wms.push(owned(view.wms.and_then(|w| w.track)));
        self.track_crm.push(owned(view.crm.and_then(|c| c.track)));
        self.class.push(class_name.to_owned());
        self.note.push(note);
    }

    fn finish(self) -> Result<DataFrame> {
        let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10] = OUTPUT_COLUMNS;
        let height = self.order_id.len();
        let columns = vec![
            Series::new(c0.into(), &self.order_id).into(),
            Series::new(c1.into(), &self.wms_order_id).into(),
            Series::new(c2.into(), &self.shop_status).into(),
            Series::new(c3.into(), &self.wms_status).into(),
            Series::new(c4.into(), &self.wms_stage).into(),
            Series::new(c5.into(), &self.crm_status).into(),
            Series::new(c6.into(), &self.crm_shipped).into(),
            Series::new(c7.into(), &self.track_wms).into(),
            Series::new(c8.into(), &self.track_crm).into(),
            Series::new(c9.into(), &self.class).into(),
            Series::new(c10.into(), &self.note).into(),
        ];
        frame(height, columns, "building the classified orders frame")
    }
}

/// Classifies every order known to the shop, the WMS or the CRM.
///
/// Inputs (order ids unique per order frame; stages pre-mapped):
/// - `shop_orders`: `order_id, shop_status: String, cancelled, needs_fulfilment:
///   Boolean, created_at, total_kop: Int64`
/// - `shop_items`, `wms_items`: `order_id, sku: String, quantity: Int64`
///   (`wms_items` may be empty: goods are compared only for orders it lists)
/// - `wms_orders`: `order_id, wms_order_id?, wms_status, wms_stage: String,
///   track: String?, last_change_at: Int64, total_kop: Int64?`
/// - `crm_orders`: `order_id, crm_status: String, crm_shipped: Boolean,
///   track: String?, total_kop: Int64`
///
/// Output: one row per (order_id, class), sorted, with [`OUTPUT_COLUMNS`];
/// `note` explains a class where a value helps (expected status, goods and
/// amount differences, idle hours) and is null otherwise.
pub fn classify_orders(
    shop_orders: &DataFrame,
    shop_items: &DataFrame,
    wms_orders: &DataFrame,
    wms_items: &DataFrame,
    crm_orders: &DataFrame,
    options: &OrdersOptions,
) -> Result<DataFrame> {
    let shop = read_shop(shop_orders)?;
    let shop_goods = read_goods(shop_items, "shop_items")?;
    let wms = read_wms(wms_orders)?;
    let wms_goods = read_goods(wms_items, "wms_items")?;
    let crm = read_crm(crm_orders)?;
    let ids: BTreeSet<&str> = shop
        .keys()
        .chain(wms.keys())
        .chain(crm.keys())
        .copied()
        .collect();
    let mut out = OrderColumns::default();
    for id in ids {
        let view = OrderView {
            shop: shop.get(id).copied(),
            wms: wms.get(id).copied(),
            crm: crm.get(id).copied(),
            shop_goods: shop_goods.get(id),
            wms_goods: wms_goods.get(id),
        };
        for (class_name, note) in classify_one(&view, options) {
            out.push(id, &view, class_name, note);
        }
    }
    out.finish()
}
