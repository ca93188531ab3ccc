//! Order reconciliation: the WMS is right about fulfilment, the shop is right
//! about cancellation.
//!
//! Shop, WMS and CRM order frames (plus the shop's and the WMS's goods) go
//! in; one row per (order_id, class) comes out, sorted by (order_id, class),
//! and [`plan_orders`] turns it into the corrections to push. Each order is
//! classified by plain Rust over validated columns, which keeps every rule
//! readable in one place.
//!
//! Speed: like the stock reconciliation, the order frames are put in id
//! order once (free when already sorted, otherwise one Polars `arg_sort`)
//! and walked together like a merge; the goods lines are grouped by order
//! and aggregated per SKU into one flat sorted table; the output columns are
//! written straight into Polars builders. Everything is O(n log n) at worst.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::input::{frame, polars_ctx, Input, ReconcileError, Result};

mod sources;

use sources::{CrmOrder, GoodsLines, Ranges, ShopOrder, Sources, WmsOrder};

/// An order class; `as_str()` is the name in the `class` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderClass {
    /// Paid/approved in the shop, never accepted by the WMS → add the order.
    MissingInWms,
    /// WMS shipped (or delivered), CRM `shipped` false → mark shipped in the CRM.
    ShippedNotMarkedInCrm,
    /// The WMS has a track number the CRM lacks or holds differently → edit the CRM.
    TrackMissingInCrm,
    /// Cancelled in the shop, still new/picking/packed in the WMS → cancel in the WMS.
    CancelledInShopActiveInWms,
    /// Cancelled in the shop after the WMS shipped it (report only: never cancelled in the WMS).
    CancelledAfterShipment,
    /// Cancelled in the WMS, active in the shop (report).
    CancelledInWmsActiveInShop,
    /// The CRM status differs from the status mapped for the WMS stage (report).
    StatusMismatch,
    /// Known to the shop or the WMS, absent from the CRM (report).
    MissingInCrm,
    /// A WMS order unknown to the shop (report).
    MissingInShop,
    /// The WMS goods differ from the shop's (report; only when the WMS reports goods).
    GoodsMismatch,
    /// Shop total differs from the CRM's or the WMS's beyond the tolerance (report).
    AmountMismatch,
    /// No WMS progress for longer than the configured hours (report).
    Stuck,
    /// No discrepancy.
    Ok,
}

impl OrderClass {
    /// Every class, in declaration order.
    pub const ALL: [OrderClass; 13] = [
        OrderClass::MissingInWms,
        OrderClass::ShippedNotMarkedInCrm,
        OrderClass::TrackMissingInCrm,
        OrderClass::CancelledInShopActiveInWms,
        OrderClass::CancelledAfterShipment,
        OrderClass::CancelledInWmsActiveInShop,
        OrderClass::StatusMismatch,
        OrderClass::MissingInCrm,
        OrderClass::MissingInShop,
        OrderClass::GoodsMismatch,
        OrderClass::AmountMismatch,
        OrderClass::Stuck,
        OrderClass::Ok,
    ];

    /// The class name as written in the `class` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderClass::MissingInWms => "missing_in_wms",
            OrderClass::ShippedNotMarkedInCrm => "shipped_not_marked_in_crm",
            OrderClass::TrackMissingInCrm => "track_missing_in_crm",
            OrderClass::CancelledInShopActiveInWms => "cancelled_in_shop_active_in_wms",
            OrderClass::CancelledAfterShipment => "cancelled_after_shipment",
            OrderClass::CancelledInWmsActiveInShop => "cancelled_in_wms_active_in_shop",
            OrderClass::StatusMismatch => "status_mismatch",
            OrderClass::MissingInCrm => "missing_in_crm",
            OrderClass::MissingInShop => "missing_in_shop",
            OrderClass::GoodsMismatch => "goods_mismatch",
            OrderClass::AmountMismatch => "amount_mismatch",
            OrderClass::Stuck => "stuck",
            OrderClass::Ok => "ok",
        }
    }
}

/// Order class names (the `class` column).
pub mod class {
    use super::OrderClass;

    /// See [`OrderClass::MissingInWms`].
    pub const MISSING_IN_WMS: &str = OrderClass::MissingInWms.as_str();
    /// See [`OrderClass::ShippedNotMarkedInCrm`].
    pub const SHIPPED_NOT_MARKED_IN_CRM: &str = OrderClass::ShippedNotMarkedInCrm.as_str();
    /// See [`OrderClass::TrackMissingInCrm`].
    pub const TRACK_MISSING_IN_CRM: &str = OrderClass::TrackMissingInCrm.as_str();
    /// See [`OrderClass::CancelledInShopActiveInWms`].
    pub const CANCELLED_IN_SHOP_ACTIVE_IN_WMS: &str =
        OrderClass::CancelledInShopActiveInWms.as_str();
    /// See [`OrderClass::CancelledAfterShipment`].
    pub const CANCELLED_AFTER_SHIPMENT: &str = OrderClass::CancelledAfterShipment.as_str();
    /// See [`OrderClass::CancelledInWmsActiveInShop`].
    pub const CANCELLED_IN_WMS_ACTIVE_IN_SHOP: &str =
        OrderClass::CancelledInWmsActiveInShop.as_str();
    /// See [`OrderClass::StatusMismatch`].
    pub const STATUS_MISMATCH: &str = OrderClass::StatusMismatch.as_str();
    /// See [`OrderClass::MissingInCrm`].
    pub const MISSING_IN_CRM: &str = OrderClass::MissingInCrm.as_str();
    /// See [`OrderClass::MissingInShop`].
    pub const MISSING_IN_SHOP: &str = OrderClass::MissingInShop.as_str();
    /// See [`OrderClass::GoodsMismatch`].
    pub const GOODS_MISMATCH: &str = OrderClass::GoodsMismatch.as_str();
    /// See [`OrderClass::AmountMismatch`].
    pub const AMOUNT_MISMATCH: &str = OrderClass::AmountMismatch.as_str();
    /// See [`OrderClass::Stuck`].
    pub const STUCK: &str = OrderClass::Stuck.as_str();
    /// See [`OrderClass::Ok`].
    pub const OK: &str = OrderClass::Ok.as_str();
}

/// Output column names of [`classify_orders`].
pub const OUTPUT_COLUMNS: [&str; 11] = [
    "order_id",
    "wms_order_id",
    "shop_status",
    "wms_status",
    "wms_stage",
    "crm_status",
    "crm_shipped",
    "track_wms",
    "track_crm",
    "class",
    "note",
];

/// The common fulfilment stage WMS statuses are mapped to by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Accepted, not yet picked.
    New,
    /// Being picked.
    Picking,
    /// Packed, waiting for the carrier.
    Packed,
    /// Handed to the carrier.
    Shipped,
    /// Delivered to the customer.
    Delivered,
    /// Cancelled in the WMS.
    Cancelled,
}

impl Stage {
    /// Every stage, in fulfilment order.
    pub const ALL: [Stage; 6] = [
        Stage::New,
        Stage::Picking,
        Stage::Packed,
        Stage::Shipped,
        Stage::Delivered,
        Stage::Cancelled,
    ];

    /// The stage's name as it appears in the `wms_stage` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Picking => "picking",
            Stage::Packed => "packed",
            Stage::Shipped => "shipped",
            Stage::Delivered => "delivered",
            Stage::Cancelled => "cancelled",
        }
    }

    /// Parses a stage name (exact, lower case); None for anything else.
    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Still in the warehouse: new, picking or packed.
    pub fn is_active(self) -> bool {
        matches!(self, Stage::New | Stage::Picking | Stage::Packed)
    }

    /// Handed over: shipped or delivered.
    pub fn is_shipped(self) -> bool {
        matches!(self, Stage::Shipped | Stage::Delivered)
    }
}

/// Parameters of an order reconciliation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrdersOptions {
    /// "Now" in unix milliseconds (passed in to keep the function pure).
    pub now_ms: i64,
    /// An active order with no WMS change for longer than this is `stuck`.
    pub stuck_hours: i64,
    /// Largest tolerated difference between totals, in kopecks.
    pub amount_tolerance_kop: i64,
    /// The CRM status code each stage should show; stages not listed are not checked.
    pub stage_status: BTreeMap<Stage, String>,
}

/// A track number with surrounding blanks removed; blank means none.
fn clean_track(track: Option<&str>) -> Option<&str> {
    track.map(str::trim).filter(|t| !t.is_empty())
}

/// Describes how two goods lists differ, e.g. `A: shop 2, wms 1; B: shop 0, wms 3`
/// (SKUs in ascending order; a SKU absent from one side counts 0 there).
fn goods_difference(shop: &GoodsLines<'_>, wms: &GoodsLines<'_>) -> Option<String> {
    let mut diffs: Vec<String> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < shop.len() || j < wms.len() {
        let (sku, s, w) = match (shop.get(i), wms.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                i += 1;
                j += 1;
                (a.0, a.1, b.1)
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                i += 1;
                (a.0, a.1, 0)
            }
            (Some(_), Some(b)) | (None, Some(b)) => {
                j += 1;
                (b.0, 0, b.1)
            }
            (Some(a), None) => {
                i += 1;
                (a.0, a.1, 0)
            }
            (None, None) => break,
        };
        if s != w {
            diffs.push(format!("{sku}: shop {s}, wms {w}"));
        }
    }
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

/// Everything known about one order.
struct OrderView<'a, 'o> {
    shop: Option<ShopOrder>,
    wms: Option<WmsOrder<'a>>,
    crm: Option<CrmOrder<'a>>,
    shop_goods: Option<&'o GoodsLines<'a>>,
    wms_goods: Option<&'o GoodsLines<'a>>,
}

/// The classes of one order with an optional explanatory note, sorted by
/// class, into `found` (cleared first).
fn classify_one(
    view: &OrderView<'_, '_>,
    options: &OrdersOptions,
    found: &mut Vec<(&'static str, Option<String>)>,
) {
    found.clear();
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
        if let Some(note) = goods_difference(view.shop_goods.unwrap_or(&[]), wms_goods) {
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

/// Every class name, sorted; the class column is gathered from these.
const CLASS_NAMES: [&str; 13] = [
    class::AMOUNT_MISMATCH,
    class::CANCELLED_AFTER_SHIPMENT,
    class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS,
    class::CANCELLED_IN_WMS_ACTIVE_IN_SHOP,
    class::GOODS_MISMATCH,
    class::MISSING_IN_CRM,
    class::MISSING_IN_SHOP,
    class::MISSING_IN_WMS,
    class::OK,
    class::SHIPPED_NOT_MARKED_IN_CRM,
    class::STATUS_MISMATCH,
    class::STUCK,
    class::TRACK_MISSING_IN_CRM,
];

/// Orders (in the largest order frame) from which the work is split across
/// threads; below it one thread is faster than starting another.
const PARALLEL_MIN_ORDERS: usize = 50_000;

/// An input row that is absent (a null in the gathered columns).
const NO_ROW: IdxSize = IdxSize::MAX;

/// The classified rows of one range of ids: per output row the order id,
/// the row of each order frame it came from (shop, WMS, CRM; [`NO_ROW`]
/// when absent) and the class (into [`CLASS_NAMES`]); the notes by output row.
#[derive(Default)]
struct Part<'a> {
    ids: Vec<&'a str>,
    rows: [Vec<IdxSize>; 3],
    class: Vec<IdxSize>,
    notes: Vec<(usize, String)>,
}

fn class_index(name: &str) -> IdxSize {
    // Every name `classify_one` pushes is listed (see the tests).
    CLASS_NAMES.iter().position(|c| *c == name).unwrap_or(0) as IdxSize
}

/// Walks one range of ids of every source together like a merge.
fn classify_range<'a>(src: &Sources<'a>, range: Ranges, options: &OrdersOptions) -> Part<'a> {
    let mut shop = src.shop.cursor(range.shop);
    let mut wms = src.wms.cursor(range.wms);
    let mut crm = src.crm.cursor(range.crm);
    let mut shop_goods = src.shop_goods.cursor(range.shop_goods);
    let mut wms_goods = src.wms_goods.cursor(range.wms_goods);
    let spans = [range.shop, range.wms, range.crm];
    let widest = spans.iter().map(|(a, b)| b - a).max().unwrap_or(0);
    let capacity = widest + widest / 4;
    let mut part = Part {
        ids: Vec::with_capacity(capacity),
        rows: std::array::from_fn(|_| Vec::with_capacity(capacity)),
        class: Vec::with_capacity(capacity),
        notes: Vec::new(),
    };
    let mut found = Vec::with_capacity(4);
    loop {
        let id = match (shop.head(), wms.head(), crm.head()) {
            (None, None, None) => break,
            (a, b, c) => [a, b, c].into_iter().flatten().min().unwrap_or_default(),
        };
        let (s, w, c) = (shop.take(id), wms.take(id), crm.take(id));
        let view = OrderView {
            shop: s.map(|r| r.1),
            wms: w.map(|r| r.1),
            crm: c.map(|r| r.1),
            shop_goods: shop_goods.take(id),
            wms_goods: wms_goods.take(id),
        };
        classify_one(&view, options, &mut found);
        let rows = [
            s.map_or(NO_ROW, |r| r.0),
            w.map_or(NO_ROW, |r| r.0),
            c.map_or(NO_ROW, |r| r.0),
        ];
        for (class_name, note) in found.drain(..) {
            if let Some(note) = note {
                part.notes.push((part.ids.len(), note));
            }
            part.ids.push(id);
            for (column, row) in part.rows.iter_mut().zip(rows) {
                column.push(row);
            }
            part.class.push(class_index(class_name));
        }
    }
    part
}

/// The gather indices of one order frame over every part (nulls where absent).
fn row_index(parts: &[Part<'_>], frame: usize) -> IdxCa {
    let rows = parts.iter().flat_map(|p| p.rows[frame].iter().copied());
    IdxCa::from_iter_options("row".into(), rows.map(|r| (r != NO_ROW).then_some(r)))
}

/// `column` of `df` at `rows`, named `name` (an all-null `Null` input column
/// gives nulls of `dtype`).
fn gather(
    df: &DataFrame,
    column: &'static str,
    rows: &IdxCa,
    name: &'static str,
    dtype: &DataType,
) -> Result<Column> {
    let ctx = polars_ctx("gathering an output column");
    let input = df.column(column).map_err(ctx)?;
    if input.dtype() == &DataType::Null {
        return Ok(Column::full_null(name.into(), rows.len(), dtype));
    }
    let ctx = polars_ctx("gathering an output column");
    Ok(input.take(rows).map_err(ctx)?.with_name(name.into()))
}

/// Builds the output frame from the parts (in id order), its columns
/// gathered from the inputs on two threads when `parallel`.
fn finish(frames: [&DataFrame; 5], parts: &[Part<'_>], parallel: bool) -> Result<DataFrame> {
    let [shop_orders, _, wms_orders, _, crm_orders] = frames;
    let height: usize = parts.iter().map(|p| p.ids.len()).sum();
    let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10] = OUTPUT_COLUMNS;
    let text = DataType::String;
    let wms_side = || -> Result<[Column; 5]> {
        let rows = row_index(parts, 1);
        let mut notes = StringChunkedBuilder::new(c10.into(), height);
        for part in parts {
            let mut next = 0;
            for (row, note) in &part.notes {
                for _ in next..*row {
                    notes.append_null();
                }
                notes.append_value(note);
                next = row + 1;
            }
            for _ in next..part.ids.len() {
                notes.append_null();
            }
        }
        Ok([
            gather(wms_orders, "wms_order_id", &rows, c1, &text)?,
            gather(wms_orders, "wms_status", &rows, c3, &text)?,
            gather(wms_orders, "wms_stage", &rows, c4, &text)?,
            gather(wms_orders, "track", &rows, c7, &text)?,
            notes.finish().into_column(),
        ])
    };
    let other_side = || -> Result<[Column; 6]> {
        let mut ids = StringChunkedBuilder::new(c0.into(), height);
        for id in parts.iter().flat_map(|p| p.ids.iter()) {
            ids.append_value(id);
        }
        let shop_rows = row_index(parts, 0);
        let crm_rows = row_index(parts, 2);
        let classes = parts.iter().flat_map(|p| p.class.iter().copied()).collect();
        let names = StringChunked::from_slice(c9.into(), &CLASS_NAMES);
        let class = names
            .take(&IdxCa::from_vec("class".into(), classes))
            .map_err(polars_ctx("building the class column"))?;
        Ok([
            ids.finish().into_column(),
            gather(shop_orders, "shop_status", &shop_rows, c2, &text)?,
            gather(crm_orders, "crm_status", &crm_rows, c5, &text)?,
            gather(crm_orders, "crm_shipped", &crm_rows, c6, &DataType::Boolean)?,
            gather(crm_orders, "track", &crm_rows, c8, &text)?,
            class.into_column(),
        ])
    };
    let (wms_cols, other_cols) = crate::reconcile::input::both(parallel, wms_side, other_side);
    let [wms_order_id, wms_status, wms_stage, track_wms, note] = wms_cols?;
    let [order_id, shop_status, crm_status, crm_shipped, track_crm, class] = other_cols?;
    let columns = vec![
        order_id,
        wms_order_id,
        shop_status,
        wms_status,
        wms_stage,
        crm_status,
        crm_shipped,
        track_wms,
        track_crm,
        class,
        note,
    ];
    frame(height, columns, "building the classified orders frame")
}

/// How many threads to classify `orders` orders on: one below
/// [`PARALLEL_MIN_ORDERS`], otherwise up to the available cores (at most 4).
fn threads_for(orders: usize) -> usize {
    if orders < PARALLEL_MIN_ORDERS {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
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
/// amount differences, idle hours) and is null otherwise. From
/// [`PARALLEL_MIN_ORDERS`] orders on, the id range is split across the
/// available cores; the result does not depend on how it was split.
pub fn classify_orders(
    shop_orders: &DataFrame,
    shop_items: &DataFrame,
    wms_orders: &DataFrame,
    wms_items: &DataFrame,
    crm_orders: &DataFrame,
    options: &OrdersOptions,
) -> Result<DataFrame> {
    let frames = [shop_orders, shop_items, wms_orders, wms_items, crm_orders];
    let largest = [shop_orders, wms_orders, crm_orders]
        .iter()
        .map(|df| df.height())
        .max()
        .unwrap_or(0);
    classify_orders_on(frames, options, threads_for(largest))
}

/// [`classify_orders`] on `threads` threads (1: all on the calling thread).
fn classify_orders_on(
    frames: [&DataFrame; 5],
    options: &OrdersOptions,
    threads: usize,
) -> Result<DataFrame> {
    let parallel = threads > 1;
    let src = Sources::read(frames, parallel)?;
    let ranges = src.ranges(threads);
    let parts: Vec<Part<'_>> = if ranges.len() > 1 {
        std::thread::scope(|s| {
            let src = &src;
            let handles: Vec<_> = ranges[1..]
                .iter()
                .map(|&r| s.spawn(move || classify_range(src, r, options)))
                .collect();
            let mut parts = vec![classify_range(src, ranges[0], options)];
            for handle in handles {
                parts.push(
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                );
            }
            parts
        })
    } else {
        ranges
            .iter()
            .map(|&r| classify_range(&src, r, options))
            .collect()
    };
    // The sources' tables are not needed for the output (it is gathered from
    // the frames): freed before the output columns are allocated.
    drop(src);
    finish(frames, &parts, parallel)
}

/// Mark an order shipped in the CRM (and set its track in the same edit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmShipMark {
    /// The shop order id (CRM `externalId`).
    pub order_id: String,
    /// The CRM status mapped for the WMS stage; None leaves the status as is.
    pub status: Option<String>,
    /// The WMS track number when the CRM lacks it.
    pub track: Option<String>,
}

/// Set an order's track number in the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmTrack {
    /// The shop order id (CRM `externalId`).
    pub order_id: String,
    /// The WMS track number.
    pub track: String,
}

/// The order corrections, each list sorted by order id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrdersPlan {
    /// Orders to send to the WMS (`missing_in_wms`).
    pub wms_adds: Vec<String>,
    /// Shipped marks for the CRM (`shipped_not_marked_in_crm`).
    pub crm_ship_marks: Vec<CrmShipMark>,
    /// Track edits for orders not already covered by a shipped mark.
    pub crm_tracks: Vec<CrmTrack>,
    /// Orders to cancel in the WMS (`cancelled_in_shop_active_in_wms`).
    pub wms_cancels: Vec<String>,
}

/// What the plan needs to know about one order.
#[derive(Default)]
struct PlanFlags<'a> {
    classes: BTreeSet<&'a str>,
    stage: Option<Stage>,
    track: Option<&'a str>,
}

/// Derives the corrections from the output of [`classify_orders`].
/// `cancelled_after_shipment` and the report-only classes plan nothing.
pub fn plan_orders(classified: &DataFrame, options: &OrdersOptions) -> Result<OrdersPlan> {
    let input = Input::new(classified, "classified_orders");
    let ids = input.strings("order_id")?;
    let classes = input.strings("class")?;
    let stages = input.opt_strings("wms_stage")?;
    let tracks = input.opt_strings("track_wms")?;
    let mut orders: BTreeMap<&str, PlanFlags<'_>> = BTreeMap::new();
    for (row, id) in ids.into_iter().enumerate() {
        let flags = orders.entry(id).or_default();
        flags.classes.insert(classes[row]);
        flags.track = clean_track(tracks[row]);
        if let Some(name) = stages[row] {
            flags.stage = Some(
                Stage::parse(name).ok_or_else(|| ReconcileError::InvalidValue {
                    frame: "classified_orders",
                    column: "wms_stage",
                    value: name.to_owned(),
                })?,
            );
        }
    }
    let mut plan = OrdersPlan::default();
    for (id, flags) in orders {
        plan_one(&mut plan, id, &flags, options);
    }
    Ok(plan)
}

fn plan_one(plan: &mut OrdersPlan, id: &str, flags: &PlanFlags<'_>, options: &OrdersOptions) {
    let has = |name: &str| flags.classes.contains(name);
    let missing_track = flags.track.filter(|_| has(class::TRACK_MISSING_IN_CRM));
    if has(class::MISSING_IN_WMS) {
        plan.wms_adds.push(id.to_owned());
    }
    if has(class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS) {
        plan.wms_cancels.push(id.to_owned());
    }
    if has(class::SHIPPED_NOT_MARKED_IN_CRM) {
        plan.crm_ship_marks.push(CrmShipMark {
            order_id: id.to_owned(),
            status: flags
                .stage
                .and_then(|s| options.stage_status.get(&s).cloned()),
            track: missing_track.map(str::to_owned),
        });
    } else if let Some(track) = missing_track {
        plan.crm_tracks.push(CrmTrack {
            order_id: id.to_owned(),
            track: track.to_owned(),
        });
    }
}

/// The implementation before the merge-based rewrite (BTreeMaps, owned
/// strings), kept verbatim as the oracle that the rewrite must equal.
#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;
    const HOUR: i64 = 3_600_000;

    struct Shop(&'static str, &'static str, bool, bool, i64);
    struct Wms(
        &'static str,
        &'static str,
        Option<&'static str>,
        i64,
        Option<i64>,
    );
    struct Crm(&'static str, &'static str, bool, Option<&'static str>, i64);

    fn options() -> OrdersOptions {
        let stage_status = [
            (Stage::New, "new"),
            (Stage::Picking, "assembling"),
            (Stage::Packed, "assembling"),
            (Stage::Shipped, "send"),
            (Stage::Delivered, "complete"),
            (Stage::Cancelled, "cancel"),
        ]
        .into_iter()
        .map(|(s, c)| (s, c.to_owned()))
        .collect();
        OrdersOptions {
            now_ms: NOW,
            stuck_hours: 48,
            amount_tolerance_kop: 100,
            stage_status,
        }
    }

    fn shop_frame(rows: &[Shop]) -> DataFrame {
        df!(
            "order_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "shop_status" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "cancelled" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "needs_fulfilment" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "created_at" => rows.iter().map(|_| NOW - 100 * HOUR).collect::<Vec<_>>(),
            "total_kop" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn wms_frame(rows: &[Wms]) -> DataFrame {
        df!(
            "order_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "wms_order_id" => rows.iter().map(|r| Some(format!("W-{}", r.0))).collect::<Vec<_>>(),
            "wms_status" => rows.iter().map(|r| format!("st_{}", r.1)).collect::<Vec<_>>(),
            "wms_stage" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "track" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "last_change_at" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "total_kop" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn crm_frame(rows: &[Crm]) -> DataFrame {
        df!(
            "order_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "crm_status" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "crm_shipped" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "track" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "total_kop" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn items(rows: &[(&str, &str, i64)]) -> DataFrame {
        df!(
            "order_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "sku" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "quantity" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn world() -> [DataFrame; 5] {
        let recent = NOW - HOUR;
        let shop = shop_frame(&[
            Shop("O01", "paid", false, true, 1000),
            Shop("O02", "paid", false, true, 1000),
            Shop("O03", "paid", false, true, 1000),
            Shop("O04", "paid", false, true, 1000),
            Shop("O05", "cancelled", true, true, 1000),
            Shop("O06", "cancelled", true, true, 1000),
            Shop("O07", "paid", false, true, 1000),
            Shop("O08", "paid", false, true, 1000),
            Shop("O10", "paid", false, true, 1000),
            Shop("O11", "paid", false, true, 1000),
            Shop("O12", "paid", false, true, 1000),
            Shop("O13", "new", false, false, 1000),
        ]);
        let wms = wms_frame(&[
            Wms("O01", "shipped", Some("TRK1"), recent, Some(1000)),
            Wms("O03", "shipped", Some("TRK3"), recent, None),
            Wms("O04", "delivered", Some("TRK4"), recent, None),
            Wms("O05", "picking", None, recent, None),
            Wms("O06", "shipped", Some("TRK6"), recent, None),
            Wms("O07", "cancelled", None, recent, None),
            Wms("O08", "new", None, recent, None),
            Wms("O09", "new", None, recent, None),
            Wms("O10", "packed", None, recent, None),
            Wms("O11", "new", None, recent, Some(1300)),
            Wms("O12", "packed", None, NOW - 49 * HOUR, None),
        ]);
        let crm = crm_frame(&[
            Crm("O01", "send", true, Some(" TRK1 "), 1050),
            Crm("O02", "new", false, None, 1000),
            Crm("O03", "assembling", false, None, 1000),
            Crm("O04", "complete", true, Some("OLD"), 1000),
            Crm("O05", "assembling", false, None, 1000),
            Crm("O06", "send", true, Some("TRK6"), 1000),
            Crm("O07", "cancel", false, None, 1000),
            Crm("O09", "new", false, None, 1000),
            Crm("O10", "assembling", false, None, 1000),
            Crm("O11", "new", false, None, 500),
            Crm("O12", "assembling", false, None, 1000),
            Crm("O13", "new", false, None, 1000),
        ]);
        let shop_items = items(&[("O01", "A", 1), ("O01", "B", 2), ("O10", "A", 2)]);
        let wms_items = items(&[
            ("O01", "B", 1),
            ("O01", "A", 1),
            ("O01", "B", 1),
            ("O10", "A", 1),
            ("O10", "C", 1),
        ]);
        [shop, shop_items, wms, wms_items, crm]
    }

    fn classify(w: &[DataFrame; 5]) -> Result<DataFrame> {
        classify_orders(&w[0], &w[1], &w[2], &w[3], &w[4], &options())
    }

    fn strings(df: &DataFrame, column: &'static str) -> Vec<Option<String>> {
        let input = Input::new(df, "out");
        input
            .opt_strings(column)
            .unwrap()
            .into_iter()
            .map(|s| s.map(str::to_owned))
            .collect()
    }

    fn pairs(df: &DataFrame) -> Vec<(String, String)> {
        strings(df, "order_id")
            .into_iter()
            .zip(strings(df, "class"))
            .map(|(o, c)| (o.unwrap(), c.unwrap()))
            .collect()
    }

    fn note(df: &DataFrame, order: &str, class_name: &str) -> Option<String> {
        let notes = strings(df, "note");
        let i = pairs(df)
            .iter()
            .position(|(o, c)| o == order && c == class_name)
            .unwrap();
        notes[i].clone()
    }

    /// Shuffles the rows of a frame.
    fn shuffled(df: &DataFrame, rng: &mut rand::rngs::StdRng) -> DataFrame {
        use rand::seq::SliceRandom;
        let mut idx: Vec<IdxSize> = (0..df.height() as IdxSize).collect();
        idx.shuffle(rng);
        df.take(&IdxCa::from_vec("idx".into(), idx)).unwrap()
    }

    /// Random small frames with overlapping ids, blank and differing tracks,
    /// repeated goods lines and orphan items.
    fn random_world(rng: &mut rand::rngs::StdRng) -> [DataFrame; 5] {
        use rand::Rng;
        let stages = [
            "new",
            "picking",
            "packed",
            "shipped",
            "delivered",
            "cancelled",
        ];
        let tracks = [
            None,
            Some(""),
            Some("  "),
            Some("T1"),
            Some(" T1 "),
            Some("T2"),
        ];
        let id = |rng: &mut rand::rngs::StdRng| format!("O{:03}", rng.random_range(0..60));
        let ids = |rng: &mut rand::rngs::StdRng| {
            let mut v: Vec<String> = (0..rng.random_range(0..40)).map(|_| id(rng)).collect();
            v.sort();
            v.dedup();
            v
        };
        let shop_ids = ids(rng);
        let wms_ids = ids(rng);
        let crm_ids = ids(rng);
        let n = shop_ids.len();
        let shop = df!(
            "order_id" => shop_ids,
            "shop_status" => vec!["paid"; n],
            "cancelled" => (0..n).map(|_| rng.random_bool(0.3)).collect::<Vec<_>>(),
            "needs_fulfilment" => (0..n).map(|_| rng.random_bool(0.7)).collect::<Vec<_>>(),
            "created_at" => vec![NOW; n],
            "total_kop" => (0..n).map(|_| rng.random_range(900..1100i64)).collect::<Vec<_>>(),
        )
        .unwrap();
        let n = wms_ids.len();
        let wms = df!(
            "order_id" => wms_ids,
            "wms_order_id" => (0..n).map(|i| (i % 3 != 0).then(|| format!("W{i}"))).collect::<Vec<_>>(),
            "wms_status" => vec!["s"; n],
            "wms_stage" => (0..n).map(|_| stages[rng.random_range(0..6)]).collect::<Vec<_>>(),
            "track" => (0..n).map(|_| tracks[rng.random_range(0..6)]).collect::<Vec<_>>(),
            "last_change_at" => (0..n).map(|_| NOW - rng.random_range(0..100) * HOUR).collect::<Vec<_>>(),
            "total_kop" => (0..n).map(|_| rng.random_bool(0.8).then(|| rng.random_range(900..1100i64))).collect::<Vec<_>>(),
        )
        .unwrap();
        let n = crm_ids.len();
        let statuses = ["new", "assembling", "send", "complete", "cancel"];
        let crm = df!(
            "order_id" => crm_ids,
            "crm_status" => (0..n).map(|_| statuses[rng.random_range(0..5)]).collect::<Vec<_>>(),
            "crm_shipped" => (0..n).map(|_| rng.random_bool(0.5)).collect::<Vec<_>>(),
            "track" => (0..n).map(|_| tracks[rng.random_range(0..6)]).collect::<Vec<_>>(),
            "total_kop" => (0..n).map(|_| rng.random_range(900..1100i64)).collect::<Vec<_>>(),
        )
        .unwrap();
        let lines = |rng: &mut rand::rngs::StdRng| {
            let n = rng.random_range(0..80);
            let ids: Vec<String> = (0..n).map(|_| id(rng)).collect();
            let skus: Vec<String> = (0..n)
                .map(|_| format!("S{}", rng.random_range(0..4)))
                .collect();
            let qty: Vec<i64> = (0..n).map(|_| rng.random_range(-1..3)).collect();
            df!("order_id" => ids, "sku" => skus, "quantity" => qty).unwrap()
        };
        let shop_items = lines(rng);
        let wms_items = lines(rng);
        [shop, shop_items, wms, wms_items, crm]
    }

    #[test]
    fn rewrite_equals_the_reference_implementation() {
        use rand::SeedableRng;
        let opts = options();
        let check = |w: &[DataFrame; 5]| {
            let fast = classify(w).unwrap();
            let slow =
                reference::classify_orders([&w[0], &w[1], &w[2], &w[3], &w[4]], &opts).unwrap();
            assert!(fast.equals_missing(&slow), "{fast}\n{slow}");
            // Split across threads: the same frame whatever the split.
            for threads in [2, 3, 7] {
                let frames = [&w[0], &w[1], &w[2], &w[3], &w[4]];
                let split = classify_orders_on(frames, &opts, threads).unwrap();
                assert!(split.equals_missing(&slow), "{threads}: {split}\n{slow}");
            }
        };
        check(&world());
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..300 {
            let w = random_world(&mut rng);
            check(&w);
            let s = w.clone().map(|df| shuffled(&df, &mut rng));
            check(&s);
        }
        let g = crate::bench::orders::generate(5_000).unwrap();
        let w = [
            g.shop_orders,
            g.shop_items,
            g.wms_orders,
            g.wms_items,
            g.crm_orders,
        ];
        let opts = crate::bench::orders::options();
        let fast = classify_orders(&w[0], &w[1], &w[2], &w[3], &w[4], &opts).unwrap();
        let slow = reference::classify_orders([&w[0], &w[1], &w[2], &w[3], &w[4]], &opts).unwrap();
        assert!(fast.equals_missing(&slow));
        let s = w.clone().map(|df| shuffled(&df, &mut rng));
        let fast = classify_orders(&s[0], &s[1], &s[2], &s[3], &s[4], &opts).unwrap();
        assert!(fast.equals_missing(&slow));
        for threads in [2, 4] {
            let frames = [&s[0], &s[1], &s[2], &s[3], &s[4]];
            let split = classify_orders_on(frames, &opts, threads).unwrap();
            assert!(split.equals_missing(&slow));
        }
    }

    #[test]
    fn every_class_name_is_gathered_from_the_sorted_list() {
        let mut sorted = CLASS_NAMES;
        sorted.sort_unstable();
        assert_eq!(sorted, CLASS_NAMES);
        for name in [
            class::MISSING_IN_WMS,
            class::SHIPPED_NOT_MARKED_IN_CRM,
            class::TRACK_MISSING_IN_CRM,
            class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS,
            class::CANCELLED_AFTER_SHIPMENT,
            class::CANCELLED_IN_WMS_ACTIVE_IN_SHOP,
            class::STATUS_MISMATCH,
            class::MISSING_IN_CRM,
            class::MISSING_IN_SHOP,
            class::GOODS_MISMATCH,
            class::AMOUNT_MISMATCH,
            class::STUCK,
            class::OK,
        ] {
            assert_eq!(CLASS_NAMES[class_index(name) as usize], name);
        }
        assert_eq!(threads_for(PARALLEL_MIN_ORDERS - 1), 1);
    }

    #[test]
    fn errors_match_the_reference_implementation() {
        let opts = options();
        let both = |w: &[DataFrame; 5]| {
            let fast = classify(w).unwrap_err().to_string();
            let slow = reference::classify_orders([&w[0], &w[1], &w[2], &w[3], &w[4]], &opts)
                .unwrap_err()
                .to_string();
            assert_eq!(fast, slow);
        };
        let mut w = world();
        w[4] = crm_frame(&[
            Crm("O09", "new", false, None, 1),
            Crm("O01", "new", false, None, 1),
            Crm("O09", "new", false, None, 1),
            Crm("O01", "new", false, None, 1),
        ]);
        both(&w);
        let mut w = world();
        w[1] = items(&[("O01", "A", i64::MAX), ("O02", "B", 1), ("O01", "A", 1)]);
        both(&w);
    }

    #[test]
    fn every_class_on_a_small_world() {
        let out = classify(&world()).unwrap();
        let got: Vec<(String, String)> = pairs(&out);
        let expected = [
            ("O01", class::OK),
            ("O02", class::MISSING_IN_WMS),
            ("O03", class::SHIPPED_NOT_MARKED_IN_CRM),
            ("O03", class::STATUS_MISMATCH),
            ("O03", class::TRACK_MISSING_IN_CRM),
            ("O04", class::TRACK_MISSING_IN_CRM),
            ("O05", class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS),
            ("O06", class::CANCELLED_AFTER_SHIPMENT),
            ("O07", class::CANCELLED_IN_WMS_ACTIVE_IN_SHOP),
            ("O08", class::MISSING_IN_CRM),
            ("O09", class::MISSING_IN_SHOP),
            ("O10", class::GOODS_MISMATCH),
            ("O11", class::AMOUNT_MISMATCH),
            ("O12", class::STUCK),
            ("O13", class::OK),
        ]
        .map(|(o, c)| (o.to_owned(), c.to_owned()));
        assert_eq!(got, expected);
        let names: Vec<String> = out
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, OUTPUT_COLUMNS);
        assert_eq!(
            note(&out, "O03", class::STATUS_MISMATCH).as_deref(),
            Some("expected send for stage shipped")
        );
        assert_eq!(
            note(&out, "O04", class::TRACK_MISSING_IN_CRM).as_deref(),
            Some("crm has OLD")
        );
        assert_eq!(
            note(&out, "O10", class::GOODS_MISMATCH).as_deref(),
            Some("A: shop 2, wms 1; C: shop 0, wms 1")
        );
        assert_eq!(
            note(&out, "O11", class::AMOUNT_MISMATCH).as_deref(),
            Some("shop 1000 kop, crm 500 kop; shop 1000 kop, wms 1300 kop")
        );
        assert_eq!(
            note(&out, "O12", class::STUCK).as_deref(),
            Some("no WMS progress for 49 h")
        );
        assert_eq!(note(&out, "O01", class::OK), None);
        let wms_ids = strings(&out, "wms_order_id");
        assert_eq!(wms_ids[0].as_deref(), Some("W-O01"));
        assert_eq!(wms_ids[1], None);
    }

    #[test]
    fn plan_marks_tracks_adds_and_cancels() {
        let out = classify(&world()).unwrap();
        let plan = plan_orders(&out, &options()).unwrap();
        assert_eq!(plan.wms_adds, ["O02"]);
        assert_eq!(plan.wms_cancels, ["O05"]);
        assert_eq!(
            plan.crm_ship_marks,
            [CrmShipMark {
                order_id: "O03".into(),
                status: Some("send".into()),
                track: Some("TRK3".into())
            }]
        );
        assert_eq!(
            plan.crm_tracks,
            [CrmTrack {
                order_id: "O04".into(),
                track: "TRK4".into()
            }]
        );
    }

    #[test]
    fn shipped_mark_without_mapped_status_keeps_crm_status() {
        let out = classify(&world()).unwrap();
        let mut opts = options();
        opts.stage_status.remove(&Stage::Shipped);
        let plan = plan_orders(&out, &opts).unwrap();
        assert_eq!(plan.crm_ship_marks[0].status, None);
    }

    #[test]
    fn output_is_deterministic_and_independent_of_row_order() {
        let w = world();
        let first = classify(&w).unwrap();
        let reversed = w.clone().map(|df| df.reverse());
        let second = classify(&reversed).unwrap();
        assert!(first.equals_missing(&second));
    }

    #[test]
    fn schema_and_value_errors_name_frame_and_column() {
        let mut w = world();
        w[4] = w[4].drop("crm_shipped").unwrap();
        let err = classify(&w).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame `crm_orders`: missing column `crm_shipped`"
        );

        let mut w = world();
        w[0] = w[0]
            .clone()
            .with_column(Column::new("cancelled".into(), vec![1i64; 12]))
            .unwrap()
            .clone();
        assert!(matches!(
            classify(&w).unwrap_err(),
            ReconcileError::WrongDtype {
                frame: "shop_orders",
                column: "cancelled",
                ..
            }
        ));

        let mut w = world();
        w[2] = wms_frame(&[Wms("O01", "lost", None, NOW, None)]);
        assert!(matches!(
            classify(&w).unwrap_err(),
            ReconcileError::InvalidValue { value, .. } if value == "lost"
        ));

        let mut w = world();
        w[4] = crm_frame(&[
            Crm("O01", "new", false, None, 1),
            Crm("O01", "new", false, None, 1),
        ]);
        assert!(matches!(
            classify(&w).unwrap_err(),
            ReconcileError::DuplicateKey {
                frame: "crm_orders",
                ..
            }
        ));
    }

    #[test]
    fn goods_are_compared_only_when_the_wms_reports_them() {
        let mut w = world();
        w[3] = items(&[]);
        let out = classify(&w).unwrap();
        assert!(!pairs(&out).iter().any(|(_, c)| c == class::GOODS_MISMATCH));
    }

    #[test]
    fn amounts_within_tolerance_and_stuck_boundary() {
        let recent = NOW - 48 * HOUR;
        let w = [
            shop_frame(&[Shop("A", "paid", false, true, 1000)]),
            items(&[]),
            wms_frame(&[Wms("A", "new", None, recent, Some(1100))]),
            items(&[]),
            crm_frame(&[Crm("A", "new", false, None, 900)]),
        ];
        let out = classify(&w).unwrap();
        assert_eq!(pairs(&out), [("A".to_owned(), class::OK.to_owned())]);
    }
}
