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

use super::sources::CrmOrder;

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
    let super::sources::WmsColumns {
        ids,
        wms_ids,
        status,
        stages,
        track,
        changed,
        total,
    } = super::sources::WmsColumns::read(df)?;
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
    let c = super::sources::CrmColumns::read(df)?;
    let rows = (0..c.ids.len()).map(|i| c.order(i));
    keyed("crm_orders", c.ids.clone(), rows)
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

/// One rule: whether an order falls in its class, with the note it carries.
/// `None`: not this class; `Some(note)`: this class.
type Rule = fn(&OrderView<'_, '_>, &OrdersOptions) -> Option<Option<String>>;

const HOUR_MS: i64 = 3_600_000;

/// The rules, one per class, each stated on its own (the production code
/// states them as one pass over an order; this table is the oracle's own
/// statement of the same rules).
const RULES: &[(&str, Rule)] = &[
    (class::MISSING_IN_WMS, |v, _| {
        let s = v.shop?;
        (s.needs_fulfilment && !s.cancelled && v.wms.is_none()).then_some(None)
    }),
    (class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS, |v, _| {
        (v.shop?.cancelled && v.wms?.stage.is_active()).then_some(None)
    }),
    (class::CANCELLED_AFTER_SHIPMENT, |v, _| {
        (v.shop?.cancelled && v.wms?.stage.is_shipped()).then(|| {
            Some("cancelled in the shop after the WMS shipped it; not cancelled in the WMS".into())
        })
    }),
    (class::CANCELLED_IN_WMS_ACTIVE_IN_SHOP, |v, _| {
        (!v.shop?.cancelled && v.wms?.stage == Stage::Cancelled).then_some(None)
    }),
    (class::SHIPPED_NOT_MARKED_IN_CRM, |v, _| {
        (v.wms?.stage.is_shipped() && !v.crm?.shipped).then_some(None)
    }),
    (class::TRACK_MISSING_IN_CRM, |v, _| {
        let wms_track = clean_track(v.wms?.track)?;
        match clean_track(v.crm?.track) {
            None => Some(None),
            Some(crm_track) if crm_track == wms_track => None,
            Some(crm_track) => Some(Some(format!("crm has {crm_track}"))),
        }
    }),
    (class::STATUS_MISMATCH, |v, o| {
        let stage = v.wms?.stage;
        let expected = o.stage_status.get(&stage)?;
        (v.crm?.status != expected)
            .then(|| Some(format!("expected {expected} for stage {}", stage.as_str())))
    }),
    (class::MISSING_IN_CRM, |v, _| {
        (v.crm.is_none() && (v.shop.is_some() || v.wms.is_some())).then_some(None)
    }),
    (class::MISSING_IN_SHOP, |v, _| {
        (v.shop.is_none() && v.wms.is_some()).then_some(None)
    }),
    (class::GOODS_MISMATCH, |v, _| {
        v.shop?;
        let empty = BTreeMap::new();
        goods_difference(v.shop_goods.unwrap_or(&empty), v.wms_goods?).map(Some)
    }),
    (class::AMOUNT_MISMATCH, |v, o| {
        amount_difference(v, o.amount_tolerance_kop).map(Some)
    }),
    (class::STUCK, |v, o| {
        let w = v.wms?;
        let idle_ms = o.now_ms.saturating_sub(w.last_change_at);
        (w.stage.is_active() && idle_ms > o.stuck_hours.saturating_mul(HOUR_MS))
            .then(|| Some(format!("no WMS progress for {} h", idle_ms / HOUR_MS)))
    }),
];

/// The classes of one order with an optional explanatory note, sorted by
/// class; `ok` when no rule holds.
fn classify_one(
    view: &OrderView<'_, '_>,
    options: &OrdersOptions,
) -> Vec<(&'static str, Option<String>)> {
    let mut found: Vec<(&'static str, Option<String>)> = RULES
        .iter()
        .filter_map(|(class_name, rule)| rule(view, options).map(|note| (*class_name, note)))
        .collect();
    if found.is_empty() {
        found.push((class::OK, None));
    }
    found.sort_by(|a, b| a.0.cmp(b.0));
    found
}

/// Compares the shop total with the CRM's and (when reported) the WMS's.
fn amount_difference(view: &OrderView<'_, '_>, tolerance_kop: i64) -> Option<String> {
    let shop_total = view.shop?.total_kop;
    let mut parts = Vec::new();
    for (name, other) in [
        ("crm", view.crm.map(|c| c.total_kop)),
        ("wms", view.wms.and_then(|w| w.total_kop)),
    ] {
        let Some(other) = other else { continue };
        if (i128::from(shop_total) - i128::from(other)).abs() > i128::from(tolerance_kop).abs() {
            parts.push(format!("shop {shop_total} kop, {name} {other} kop"));
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("; "))
    }
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
pub fn classify_orders(frames: [&DataFrame; 5], options: &OrdersOptions) -> Result<DataFrame> {
    let [shop_orders, shop_items, wms_orders, wms_items, crm_orders] = frames;
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
