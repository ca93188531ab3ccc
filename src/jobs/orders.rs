//! `sverka reconcile orders`: the WMS is right about fulfilment, the shop is
//! right about cancellation.
//!
//! 1. Read everything: the shop's orders and items in the window, the WMS
//!    state (IMSKLAD: the callback journal's order states plus what sverka
//!    itself sent, from the id mapping and the corrections journal; EGON: the
//!    `WriteOrderStatus` journal, refreshed with `GetOrderStatus` when stale or
//!    missing), and the CRM's orders by `externalIds`.
//! 2. Map WMS statuses to stages with the status map ([`StatusMap`]), classify
//!    with [`crate::reconcile::orders::classify_orders`] and plan.
//! 3. Guard: a plan touching more than `[safety] max_change_share` of the
//!    window's orders (more than `small_max_changes` orders in a window of
//!    fewer than `small_below`) writes nothing (unless `--force`, which the
//!    run records).
//! 4. Apply, journaling each correction before it is sent and its answer
//!    after: CRM shipped marks and tracks (`orders/{externalId}/edit`, after
//!    registering sverka's warehouse module), WMS cancellations
//!    (`update_order is_canceled=1` / `StornoOrder`) and, when
//!    `[orders] create_missing_in_wms = true`, WMS orders
//!    (`add_order` / `CreateNewOrder`). An IMSKLAD `warning` is `partial`.
//! 5. Write `orders-<date>-<run>.csv` and return the summary.

use anyhow::{Context as _, Result};
use chrono::{NaiveDate, TimeZone};
use polars::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::orders_protocol as op;
use super::{begin, Context, Outcome};
use crate::config::WmsKind;
use crate::connectors::egon::{self, EgonClient, EgonConfig, EgonError, NewOrder, OrderRef};
use crate::connectors::imsklad::WriteOutcome;
use crate::connectors::retailcrm::{
    CrmOrder, IntegrationModule, Integrations, OrderPatch, RetailCrmClient, StoreAction,
    StoreIntegration,
};
use crate::db::events::{self, OrderState, EGON_FINAL, SOURCE_EGON, SOURCE_IMSKLAD};
use crate::db::journal::{CorrectionStatus, Planned, Target};
use crate::db::mapping::{self, MapKind};
use crate::db::runs::RunStatus;
use crate::db::{Db, DbError};
use crate::lenient;
use crate::progress::Progress;
use crate::reconcile::orders::{self as ro, class, OrdersOptions, OrdersPlan, Stage};
use crate::reconcile::stock::Input;
use crate::report::csv::{file_name, Cell, CsvReport};
use crate::report::summary::{CorrectionCounts, JobSummary};
use crate::shop::{ShopOrder, ShopOrderItem};

/// The job's name in runs, locks and reports.
pub const JOB: &str = "orders";

/// The report's columns.
pub const REPORT_COLUMNS: [&str; 13] = [
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
    "action",
    "result",
    "note",
];

/// Report-only class of an order whose WMS status the status map does not know.
pub const CLASS_UNMAPPED_STATUS: &str = "unmapped_wms_status";
/// Report-only class of an order whose WMS state could not be read this run.
pub const CLASS_WMS_STATE_UNKNOWN: &str = "wms_state_unknown";

/// The status map shipped with sverka (`jobs/maps/status_map.toml`).
pub const BUILTIN_STATUS_MAP: &str = include_str!("../../jobs/maps/status_map.toml");

/// Journal action names of the WMS corrections (also read back to know what was sent).
pub mod action {
    /// IMSKLAD `add_order`.
    pub const IMSKLAD_ADD: &str = "add_order";
    /// IMSKLAD `update_order` with `is_canceled = 1`.
    pub const IMSKLAD_CANCEL: &str = "update_order_cancel";
    /// EGON `CreateNewOrder`.
    pub const EGON_ADD: &str = "create_new_order";
    /// EGON `StornoOrder`.
    pub const EGON_CANCEL: &str = "storno_order";
    /// RetailCRM order edit marking an order shipped.
    pub const CRM_SHIP_MARK: &str = "order_edit_shipped";
    /// RetailCRM order edit setting the track number.
    pub const CRM_TRACK: &str = "order_edit_track";
    /// RetailCRM warehouse module registration.
    pub const CRM_MODULE: &str = "integration_module_edit";
}

/// IMSKLAD's "cancelled" status.
const IMSKLAD_CANCELLED: i64 = 10;
/// EGON's "cancelled" status (what `StornoOrder` leads to).
const EGON_CANCELLED: i64 = 9;
const HOUR_MS: i64 = 3_600_000;

// ---------------------------------------------------------------------------
// Status map
// ---------------------------------------------------------------------------

/// Why a status map could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StatusMapError {
    /// The file could not be read.
    #[error("cannot read the status map {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("the status map {origin} is not valid TOML: {message}")]
    Syntax {
        /// Which map.
        origin: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// An entry is wrong or missing.
    #[error("the status map {origin}: `{key}`: {message}")]
    Entry {
        /// Which map.
        origin: String,
        /// Dotted key, e.g. `imsklad.9`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// WMS status → common stage, and stage → the CRM status code it should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMap {
    /// IMSKLAD statuses 0–11.
    pub imsklad: BTreeMap<i64, Stage>,
    /// EGON's documented statuses.
    pub egon: BTreeMap<i64, Stage>,
    /// The CRM status per stage (stages left out are not compared).
    pub crm: BTreeMap<Stage, String>,
}

impl StatusMap {
    /// The built-in map ([`BUILTIN_STATUS_MAP`]).
    pub fn builtin() -> Result<StatusMap, StatusMapError> {
        StatusMap::parse(BUILTIN_STATUS_MAP, "built-in jobs/maps/status_map.toml")
    }

    /// The map at `path`, or the built-in one when `None`.
    pub fn load(path: Option<&Path>) -> Result<StatusMap, StatusMapError> {
        let Some(path) = path else {
            return StatusMap::builtin();
        };
        let text = std::fs::read_to_string(path).map_err(|source| StatusMapError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        StatusMap::parse(&text, &path.display().to_string())
    }

    /// Parses a map; `origin` names it in errors. Every documented status of
    /// both warehouses must have a stage.
    pub fn parse(text: &str, origin: &str) -> Result<StatusMap, StatusMapError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| StatusMapError::Syntax {
                    origin: origin.to_owned(),
                    message: e.to_string(),
                })?;
        let entry = |key: String, message: &str| StatusMapError::Entry {
            origin: origin.to_owned(),
            key,
            message: message.to_owned(),
        };
        let mut map = StatusMap {
            imsklad: BTreeMap::new(),
            egon: BTreeMap::new(),
            crm: BTreeMap::new(),
        };
        for (section, value) in &table {
            let toml::Value::Table(entries) = value else {
                return Err(entry(section.clone(), "must be a table"));
            };
            match section.as_str() {
                "crm" => {
                    for (stage, code) in entries {
                        let key = format!("crm.{stage}");
                        let stage = Stage::parse(stage).ok_or_else(|| {
                            entry(key.clone(), "unknown stage (new, picking, packed, shipped, delivered, cancelled)")
                        })?;
                        let code = code
                            .as_str()
                            .map(str::trim)
                            .filter(|c| !c.is_empty())
                            .ok_or_else(|| {
                                entry(key, "must be a CRM status code (a non-empty string)")
                            })?;
                        map.crm.insert(stage, code.to_owned());
                    }
                }
                "imsklad" | "egon" => {
                    for (status, stage) in entries {
                        let key = format!("{section}.{status}");
                        let status: i64 = status
                            .trim()
                            .parse()
                            .map_err(|_| entry(key.clone(), "the key must be a status number"))?;
                        let stage = stage.as_str().and_then(Stage::parse).ok_or_else(|| {
                            entry(key, "must be a stage (new, picking, packed, shipped, delivered, cancelled)")
                        })?;
                        let target = if section == "imsklad" {
                            &mut map.imsklad
                        } else {
                            &mut map.egon
                        };
                        target.insert(status, stage);
                    }
                }
                other => {
                    return Err(entry(
                        other.to_owned(),
                        "unknown section (expected crm, imsklad, egon)",
                    ))
                }
            }
        }
        for status in 0..=11 {
            if !map.imsklad.contains_key(&status) {
                return Err(entry(
                    format!("imsklad.{status}"),
                    "missing: every documented IMSKLAD status (0–11) needs a stage",
                ));
            }
        }
        for (status, _) in egon::ORDER_STATUSES {
            if !map.egon.contains_key(status) {
                return Err(entry(
                    format!("egon.{status}"),
                    "missing: every documented EGON status needs a stage",
                ));
            }
        }
        Ok(map)
    }

    /// The stage of a WMS status, if mapped.
    pub fn stage(&self, kind: WmsKind, status: i64) -> Option<Stage> {
        match kind {
            WmsKind::Imsklad => self.imsklad.get(&status).copied(),
            WmsKind::Egon => self.egon.get(&status).copied(),
        }
    }
}

// ---------------------------------------------------------------------------
// Window
// ---------------------------------------------------------------------------

/// Why a window could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// `--from` is after `--to`.
    #[error("the window starts ({from}) after it ends ({to})")]
    Reversed {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
    /// A day has no local midnight in the time zone, or is out of range.
    #[error("cannot place {day} in the time zone {tz}")]
    Unplaceable {
        /// The day.
        day: NaiveDate,
        /// The time zone.
        tz: chrono_tz::Tz,
    },
}

/// The run's window in Unix ms, `[start of from, start of the day after to)`
/// in `tz`; `from` defaults to `window_days` before `today`, `to` to `today`.
pub fn window_ms(
    tz: chrono_tz::Tz,
    today: NaiveDate,
    window_days: i64,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(i64, i64), WindowError> {
    let to = to.unwrap_or(today);
    let from = match from {
        Some(d) => d,
        None => today
            .checked_sub_days(chrono::Days::new(window_days.unsigned_abs()))
            .ok_or(WindowError::Unplaceable { day: today, tz })?,
    };
    if from > to {
        return Err(WindowError::Reversed { from, to });
    }
    let end = to
        .succ_opt()
        .ok_or(WindowError::Unplaceable { day: to, tz })?;
    Ok((midnight_ms(tz, from)?, midnight_ms(tz, end)?))
}

fn midnight_ms(tz: chrono_tz::Tz, day: NaiveDate) -> Result<i64, WindowError> {
    day.and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.timestamp_millis())
        .ok_or(WindowError::Unplaceable { day, tz })
}

// ---------------------------------------------------------------------------
// WMS state
// ---------------------------------------------------------------------------

/// What the WMS is known to hold for one order.
#[derive(Debug, Clone, PartialEq)]
struct WmsView {
    wms_order_id: Option<String>,
    status: i64,
    track: Option<String>,
    /// When the status last changed (Unix ms).
    last_change_at: i64,
    /// When sverka last heard of the order (Unix ms).
    seen_at: i64,
    goods: Option<Vec<(String, i64)>>,
}

/// A WMS correction sverka sent and the WMS accepted (fully or partly).
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    order_id: String,
    action: String,
    at: i64,
}

/// The WMS's view of the window's orders.
#[derive(Debug, Default)]
struct WmsSide {
    views: BTreeMap<String, WmsView>,
    /// Orders whose state could not be read this run: order id → why.
    unknown: BTreeMap<String, String>,
    polled: usize,
}

/// Goods lines of a journaled `goods` JSON: IMSKLAD `[{id, quantity}]` or
/// EGON `[{ITEM_ID, COUNT}]`, as a list or a PHP map, quantities as numbers,
/// floats or strings. `None` when the text is not such a list.
fn parse_goods(text: &str) -> Option<Vec<(String, i64)>> {
    let value: Value = lenient::from_str(text).ok()?;
    let lines: Vec<&Value> = match &value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map.values().collect(),
        _ => return None,
    };
    lines
        .into_iter()
        .map(|line| {
            let sku = ["id", "ITEM_ID", "item_id"]
                .iter()
                .find_map(|k| line.get(*k).and_then(lenient::value_to_id))?;
            let qty = ["quantity", "COUNT", "count"]
                .iter()
                .find_map(|k| line.get(*k).and_then(lenient::value_to_f64))?;
            Some((sku, qty.round() as i64))
        })
        .collect()
}

/// The view a journaled order state gives.
fn view_from_state(state: &OrderState, kind: WmsKind) -> WmsView {
    let cancelled = match kind {
        WmsKind::Imsklad => IMSKLAD_CANCELLED,
        WmsKind::Egon => EGON_CANCELLED,
    };
    // IMSKLAD reports a cancellation by `update_order is_canceled=1` as well as
    // by status 10; it only counts while the order is still in the warehouse.
    let left_warehouse = state.wms_status.is_some_and(|s| s >= 9);
    let status = match state.wms_status {
        _ if state.is_canceled && kind == WmsKind::Imsklad && !left_warehouse => cancelled,
        Some(s) => s,
        None if state.is_canceled => cancelled,
        None => 0,
    };
    WmsView {
        wms_order_id: state.wms_order_id.clone(),
        status,
        track: state.track.clone(),
        last_change_at: state.status_at.unwrap_or(state.updated_at),
        seen_at: state.updated_at,
        goods: state.goods.as_deref().and_then(parse_goods),
    }
}

/// Adds what sverka itself sent: orders it created (mapping and journal) the
/// callbacks have not reported yet, and cancellations the WMS accepted.
/// `created` gives the shop's creation time of the window's orders; orders
/// outside the window are left alone.
fn overlay_sent(
    views: &mut BTreeMap<String, WmsView>,
    sent: &[Sent],
    mapped: &BTreeMap<String, String>,
    created: &BTreeMap<&str, i64>,
    kind: WmsKind,
    map: &StatusMap,
) {
    let (add, cancel, cancelled) = match kind {
        WmsKind::Imsklad => (
            action::IMSKLAD_ADD,
            action::IMSKLAD_CANCEL,
            IMSKLAD_CANCELLED,
        ),
        WmsKind::Egon => (action::EGON_ADD, action::EGON_CANCEL, EGON_CANCELLED),
    };
    let added_at: BTreeMap<&str, i64> = sent
        .iter()
        .filter(|s| s.action == add)
        .map(|s| (s.order_id.as_str(), s.at))
        .collect();
    let known: BTreeSet<&str> = mapped
        .keys()
        .map(String::as_str)
        .chain(added_at.keys().copied())
        .collect();
    for id in known {
        let Some(created_at) = created.get(id) else {
            continue;
        };
        if views.contains_key(id) {
            continue;
        }
        let at = added_at.get(id).copied().unwrap_or(*created_at);
        views.insert(
            id.to_owned(),
            WmsView {
                wms_order_id: mapped.get(id).cloned(),
                status: 0,
                track: None,
                last_change_at: at,
                seen_at: at,
                goods: None,
            },
        );
    }
    for s in sent.iter().filter(|s| s.action == cancel) {
        let Some(view) = views.get_mut(&s.order_id) else {
            continue;
        };
        let active = map.stage(kind, view.status).is_some_and(Stage::is_active);
        if active && s.at >= view.last_change_at {
            view.status = cancelled;
            view.last_change_at = s.at;
        }
    }
}

/// Reads an integer column some engines type as 32-bit.
fn row_int(row: &sqlx::any::AnyRow, name: &str) -> Result<i64, sqlx::Error> {
    use sqlx::Row;
    match row.try_get::<i64, _>(name) {
        Ok(v) => Ok(v),
        Err(first) => row
            .try_get::<i32, _>(name)
            .map(i64::from)
            .map_err(|_| first),
    }
}

/// The WMS corrections of this job the WMS accepted (applied or partial), oldest first.
async fn sent_to_wms(db: &Db) -> Result<Vec<Sent>, DbError> {
    let rows = db
        .fetch_all(
            "SELECT item_key, action, updated_at FROM corrections \
             WHERE job = ? AND target = ? AND status IN ('applied', 'partial') ORDER BY id",
            &[JOB.into(), Target::Wms.as_str().into()],
            "reading the orders job's WMS corrections",
        )
        .await?;
    rows.iter()
        .map(|r| {
            let corrupt = |e: sqlx::Error| DbError::Corrupt(format!("corrections row: {e}"));
            Ok(Sent {
                order_id: crate::db::text(r, "item_key").map_err(corrupt)?,
                action: crate::db::text(r, "action").map_err(corrupt)?,
                at: row_int(r, "updated_at").map_err(corrupt)?,
            })
        })
        .collect()
}

/// An EGON client with `[orders] egon_shop_setting_id` for `StornoOrder`.
fn egon_client(ctx: &Context) -> Result<EgonClient> {
    let c = &ctx.config.egon;
    let mut cfg = EgonConfig::new(
        c.url.clone(),
        c.auth_id.clone(),
        c.auth_key.clone(),
        c.auth_token.clone(),
    );
    cfg.shop_setting_id = ctx.config.orders.egon_shop_setting_id;
    cfg.policy = ctx.http.clone();
    EgonClient::new(cfg)
        .map(|client| ctx.share_egon_limit(client))
        .context("configuring the EGON client")
}

/// The view a `GetOrderStatus` answer gives.
fn view_from_poll(status: &egon::OrderStatus, now: i64, tz: chrono_tz::Tz) -> WmsView {
    let changed = status
        .change_timestamp
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.timestamp_millis())
        .unwrap_or(now);
    WmsView {
        wms_order_id: status.order_id.map(|id| id.to_string()),
        status: status.status_id,
        track: status.tracks().first().map(|t| (*t).to_owned()),
        last_change_at: changed,
        seen_at: now,
        goods: Some(
            status
                .order_items
                .iter()
                .map(|i| (i.item_id.clone(), i.count))
                .collect(),
        ),
    }
}

/// Whether an EGON order's journal state needs a `GetOrderStatus`.
fn needs_poll(state: Option<&OrderState>, shop: &ShopOrder, now: i64, stale_hours: i64) -> bool {
    match state {
        None => shop.paid || shop.cancelled,
        Some(s) => {
            let is_final = s.wms_status.is_some_and(|st| EGON_FINAL.contains(&st));
            !is_final && now.saturating_sub(s.updated_at) > stale_hours.saturating_mul(HOUR_MS)
        }
    }
}

async fn read_wms(
    ctx: &Context,
    map: &StatusMap,
    shop_orders: &[ShopOrder],
    now: i64,
) -> Result<WmsSide> {
    let kind = ctx.config.wms.kind;
    let source = match kind {
        WmsKind::Imsklad => SOURCE_IMSKLAD,
        WmsKind::Egon => SOURCE_EGON,
    };
    let states: BTreeMap<String, OrderState> = events::order_states(&ctx.state)
        .await
        .context("reading the order states of the callback journal")?
        .into_iter()
        .filter(|s| s.source == source)
        .map(|s| (s.order_id.clone(), s))
        .collect();
    let mut side = WmsSide::default();
    for (id, state) in &states {
        side.views.insert(id.clone(), view_from_state(state, kind));
    }
    if kind == WmsKind::Egon {
        let client = egon_client(ctx)?;
        let bar = Progress::counter("EGON GetOrderStatus", shop_orders.len() as u64, "orders");
        for order in shop_orders {
            bar.inc(1);
            if ctx.stop.is_stopped() {
                break;
            }
            let state = states.get(&order.id);
            if !needs_poll(state, order, now, ctx.config.orders.stale_hours) {
                continue;
            }
            side.polled += 1;
            match client
                .get_order_status(OrderRef::Original(order.id.clone()))
                .await
            {
                Ok(status) => {
                    side.views.insert(
                        order.id.clone(),
                        view_from_poll(&status, now, ctx.config.egon.tz()),
                    );
                }
                Err(EgonError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(order = %order.id, "EGON GetOrderStatus failed: {e}");
                    if state.is_none() {
                        side.unknown
                            .insert(order.id.clone(), format!("GetOrderStatus failed: {e}"));
                    }
                }
            }
        }
    }
    let sent = sent_to_wms(&ctx.state).await?;
    let mapped = mapping::all(&ctx.state, MapKind::Order).await?;
    let created: BTreeMap<&str, i64> = shop_orders
        .iter()
        .map(|o| (o.id.as_str(), o.created_at))
        .collect();
    overlay_sent(&mut side.views, &sent, &mapped, &created, kind, map);
    Ok(side)
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/// The WMS orders that belong in this run: the window's, plus active orders
/// the shop does not list that the WMS touched within the window.
fn wms_in_scope<'a>(
    side: &'a WmsSide,
    shop_ids: &BTreeSet<&str>,
    map: &StatusMap,
    kind: WmsKind,
    window: (i64, i64),
) -> Vec<(&'a str, &'a WmsView, Stage)> {
    side.views
        .iter()
        .filter_map(|(id, v)| {
            let stage = map.stage(kind, v.status)?;
            let in_shop = shop_ids.contains(id.as_str());
            let recent_active = stage.is_active() && v.seen_at >= window.0 && v.seen_at < window.1;
            (in_shop || recent_active).then_some((id.as_str(), v, stage))
        })
        .collect()
}

fn shop_frame(orders: &[ShopOrder]) -> PolarsResult<DataFrame> {
    df!(
        "order_id" => orders.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        "shop_status" => orders.iter().map(|o| o.status.as_str()).collect::<Vec<_>>(),
        "cancelled" => orders.iter().map(|o| o.cancelled).collect::<Vec<_>>(),
        "needs_fulfilment" => orders.iter().map(|o| o.paid).collect::<Vec<_>>(),
        "created_at" => orders.iter().map(|o| o.created_at).collect::<Vec<_>>(),
        "total_kop" => orders.iter().map(|o| o.total_kop).collect::<Vec<_>>(),
    )
}

fn items_frame<'a>(
    lines: impl Iterator<Item = (&'a str, &'a str, i64)>,
) -> PolarsResult<DataFrame> {
    let (mut ids, mut skus, mut qty) = (Vec::new(), Vec::new(), Vec::new());
    for (id, sku, q) in lines {
        ids.push(id);
        skus.push(sku);
        qty.push(q);
    }
    df!("order_id" => ids, "sku" => skus, "quantity" => qty)
}

fn wms_frame(scope: &[(&str, &WmsView, Stage)]) -> PolarsResult<DataFrame> {
    df!(
        "order_id" => scope.iter().map(|s| s.0).collect::<Vec<_>>(),
        "wms_order_id" => scope.iter().map(|s| s.1.wms_order_id.as_deref()).collect::<Vec<_>>(),
        "wms_status" => scope.iter().map(|s| s.1.status.to_string()).collect::<Vec<_>>(),
        "wms_stage" => scope.iter().map(|s| s.2.as_str()).collect::<Vec<_>>(),
        "track" => scope.iter().map(|s| s.1.track.as_deref()).collect::<Vec<_>>(),
        "last_change_at" => scope.iter().map(|s| s.1.last_change_at).collect::<Vec<_>>(),
        "total_kop" => scope.iter().map(|_| None::<i64>).collect::<Vec<_>>(),
    )
}

fn crm_frame(orders: &[&CrmOrder]) -> PolarsResult<DataFrame> {
    df!(
        "order_id" => orders.iter().map(|o| o.external_id.as_deref().unwrap_or_default()).collect::<Vec<_>>(),
        "crm_status" => orders.iter().map(|o| o.status.as_deref().unwrap_or_default()).collect::<Vec<_>>(),
        "crm_shipped" => orders.iter().map(|o| o.shipped).collect::<Vec<_>>(),
        "track" => orders.iter().map(|o| o.track_number.as_deref()).collect::<Vec<_>>(),
        "total_kop" => orders.iter().map(|o| o.total_summ_kop).collect::<Vec<_>>(),
    )
}

/// CRM orders by external id; a repeated external id keeps the first order.
fn crm_by_external_id(orders: &[CrmOrder]) -> BTreeMap<&str, &CrmOrder> {
    let mut out = BTreeMap::new();
    for o in orders {
        let Some(id) = o.external_id.as_deref() else {
            continue;
        };
        if out.contains_key(id) {
            tracing::warn!(
                order = id,
                crm_id = o.id,
                "the CRM holds this external id twice; comparing the first"
            );
            continue;
        }
        out.insert(id, o);
    }
    out
}

/// One classified row, for the report.
#[derive(Debug, Clone)]
struct Row {
    order_id: String,
    wms_order_id: Option<String>,
    shop_status: Option<String>,
    wms_status: Option<String>,
    wms_stage: Option<String>,
    crm_status: Option<String>,
    crm_shipped: Option<bool>,
    track_wms: Option<String>,
    track_crm: Option<String>,
    class: String,
    note: Option<String>,
}

fn read_rows(df: &DataFrame) -> Result<Vec<Row>> {
    let input = Input::new(df, "classified_orders");
    let owned = |v: Vec<Option<&str>>| {
        v.into_iter()
            .map(|s| s.map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let ids = input.strings("order_id")?;
    let wms_ids = owned(input.opt_strings("wms_order_id")?);
    let shop_status = owned(input.opt_strings("shop_status")?);
    let wms_status = owned(input.opt_strings("wms_status")?);
    let wms_stage = owned(input.opt_strings("wms_stage")?);
    let crm_status = owned(input.opt_strings("crm_status")?);
    let crm_shipped = input.opt_bools("crm_shipped")?;
    let track_wms = owned(input.opt_strings("track_wms")?);
    let track_crm = owned(input.opt_strings("track_crm")?);
    let classes = input.strings("class")?;
    let notes = owned(input.opt_strings("note")?);
    Ok((0..ids.len())
        .map(|i| Row {
            order_id: ids[i].to_owned(),
            wms_order_id: wms_ids[i].clone(),
            shop_status: shop_status[i].clone(),
            wms_status: wms_status[i].clone(),
            wms_stage: wms_stage[i].clone(),
            crm_status: crm_status[i].clone(),
            crm_shipped: crm_shipped[i],
            track_wms: track_wms[i].clone(),
            track_crm: track_crm[i].clone(),
            class: classes[i].to_owned(),
            note: notes[i].clone(),
        })
        .collect())
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// What happened to one (order, class) row.
#[derive(Debug, Clone, PartialEq)]
struct Fate {
    action: &'static str,
    result: String,
    note: String,
}

impl Fate {
    fn new(action: &'static str, result: &str, note: impl Into<String>) -> Fate {
        Fate {
            action,
            result: result.to_owned(),
            note: note.into(),
        }
    }
}

type Fates = BTreeMap<(String, &'static str), Fate>;

/// Runs the orders job over `[from, to]` (local dates; defaults from
/// `[orders] window_days`) and returns its summary (never panics on bad data).
pub async fn run(ctx: &Context, from: Option<NaiveDate>, to: Option<NaiveDate>) -> JobSummary {
    let window = window_ms(
        ctx.config.tz(),
        ctx.today(),
        ctx.config.orders.window_days,
        from,
        to,
    );
    let guard = match begin(
        ctx,
        JOB,
        window
            .as_ref()
            .map_or((None, None), |w| (Some(w.0), Some(w.1))),
    )
    .await
    {
        Ok(g) => g,
        Err(summary) => return *summary,
    };
    let run_id = guard.run_id;
    let result = match window {
        Ok(w) => execute(&guard.scope(ctx), run_id, w).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok((status, outcome)) => guard.finish(ctx, status, outcome, None).await,
        Err(e) => {
            tracing::error!(run = run_id, "orders run failed: {e:#}");
            guard
                .finish(
                    ctx,
                    RunStatus::Failed,
                    Outcome::default(),
                    Some(format!("{e:#}")),
                )
                .await
        }
    }
}

/// Orders the plan touches, for the change-share guard.
fn touched(plan: &OrdersPlan) -> BTreeSet<&str> {
    plan.wms_adds
        .iter()
        .chain(&plan.wms_cancels)
        .map(String::as_str)
        .chain(plan.crm_ship_marks.iter().map(|m| m.order_id.as_str()))
        .chain(plan.crm_tracks.iter().map(|t| t.order_id.as_str()))
        .collect()
}

fn change_share(plan: &OrdersPlan, window_orders: usize) -> f64 {
    let n = touched(plan).len();
    match (n, window_orders) {
        (0, _) => 0.0,
        (_, 0) => 1.0,
        (n, total) => n as f64 / total as f64,
    }
}

async fn execute(ctx: &Context, run_id: i64, window: (i64, i64)) -> Result<(RunStatus, Outcome)> {
    let kind = ctx.config.wms.kind;
    let map = StatusMap::load(ctx.config.orders.status_map.as_deref())?;
    let now = crate::db::now_ms();

    // 1. Read everything.
    let shop_orders = ctx
        .shop
        .orders(window.0, window.1)
        .await
        .context("reading shop orders")?;
    let shop_items = ctx
        .shop
        .order_items(window.0, window.1)
        .await
        .context("reading shop order items")?;
    let wms = read_wms(ctx, &map, &shop_orders, now).await?;
    // Carrier exports IMSKLAD asked for (sverka does none) and export failures.
    let mut notes: Vec<op::Note> = if kind == WmsKind::Imsklad {
        op::carrier_notes(
            &ctx.state,
            window.0,
            ctx.config.imsklad.carrier_export != crate::config::CarrierExport::Elsewhere,
            ctx.config.tz(),
            |id| wms.views.get(id).is_some_and(|v| v.track.is_some()),
        )
        .await
        .context("reading carrier export callbacks from the journal")?
    } else {
        Vec::new()
    };
    let shop_ids: BTreeSet<&str> = shop_orders.iter().map(|o| o.id.as_str()).collect();
    let scope = wms_in_scope(&wms, &shop_ids, &map, kind, window);
    let unmapped: Vec<(&str, i64)> = wms
        .views
        .iter()
        .filter(|(id, v)| shop_ids.contains(id.as_str()) && map.stage(kind, v.status).is_none())
        .map(|(id, v)| (id.as_str(), v.status))
        .collect();
    let ids: Vec<String> = shop_ids
        .iter()
        .copied()
        .chain(scope.iter().map(|s| s.0))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let crm = ctx.retailcrm()?;
    let crm_orders = crm
        .orders_by_external_ids(&ids)
        .await
        .context("reading CRM orders by externalIds")?;
    let crm_by_id = crm_by_external_id(&crm_orders);

    // 2. Classify and plan.
    let crm_list: Vec<&CrmOrder> = crm_by_id.values().copied().collect();
    let shop_lines = shop_items
        .iter()
        .filter(|i| shop_ids.contains(i.order_id.as_str()))
        .map(|i| (i.order_id.as_str(), i.sku.as_str(), i.quantity));
    let wms_lines = scope.iter().flat_map(|(id, v, _)| {
        v.goods
            .iter()
            .flatten()
            .map(move |(sku, q)| (*id, sku.as_str(), *q))
    });
    let options = OrdersOptions {
        now_ms: now,
        stuck_hours: ctx.config.orders.stuck_hours,
        amount_tolerance_kop: ctx.config.orders.amount_tolerance_kop,
        stage_status: map.crm.clone(),
    };
    let classified = ro::classify_orders(
        &shop_frame(&shop_orders)?,
        &items_frame(shop_lines)?,
        &wms_frame(&scope)?,
        &items_frame(wms_lines)?,
        &crm_frame(&crm_list)?,
        &options,
    )?;
    let mut plan = ro::plan_orders(&classified, &options)?;
    // Orders whose WMS state is unknown or unmapped this run, and orders sverka
    // may not create, are reported instead of sent.
    let unsure: BTreeSet<&str> = unmapped
        .iter()
        .map(|(id, _)| *id)
        .chain(wms.unknown.keys().map(String::as_str))
        .collect();
    let (held, adds): (Vec<String>, Vec<String>) = std::mem::take(&mut plan.wms_adds)
        .into_iter()
        .partition(|id| unsure.contains(id.as_str()));
    let create = ctx.config.orders.create_missing_in_wms;
    let (adds, not_created) = if create {
        (adds, Vec::new())
    } else {
        (Vec::new(), adds)
    };
    plan.wms_adds = adds;
    let mut fates = Fates::new();
    for id in held {
        let note = "the WMS state of this order could not be read or mapped this run; not sent";
        fates.insert((id, class::MISSING_IN_WMS), Fate::new("report", "", note));
    }
    for id in not_created {
        let note = "set [orders] create_missing_in_wms = true to send it";
        fates.insert((id, class::MISSING_IN_WMS), Fate::new("report", "", note));
    }
    let rows = read_rows(&classified)?;
    let share = change_share(&plan, shop_orders.len());
    let mut extra = json!({
        "window_from_ms": window.0,
        "window_to_ms": window.1,
        "shop_orders": shop_orders.len(),
        "wms_orders": scope.len(),
        "crm_orders": crm_by_id.len(),
        "egon_polled": wms.polled,
        "change_share": share,
    });

    // 3. Guard.
    let mut corrections = CorrectionCounts {
        planned: (plan.wms_adds.len()
            + plan.wms_cancels.len()
            + plan.crm_ship_marks.len()
            + plan.crm_tracks.len()) as u64,
        ..CorrectionCounts::default()
    };
    let guard = ctx.config.safety.change_guard(
        touched(&plan).len(),
        shop_orders.len(),
        "orders in the window",
    );
    let blocked = match (&guard, ctx.force) {
        (Some(reason), true) => {
            tracing::warn!(
                run = run_id,
                "safety guard overridden with --force: {reason}"
            );
            extra["forced_past"] = json!(reason);
            false
        }
        (Some(_), false) => true,
        (None, _) => false,
    };

    // 4. Apply.
    if blocked || ctx.dry_run {
        mark_unsent(
            &plan,
            if blocked { "guarded" } else { "dry-run" },
            &mut fates,
        );
    } else {
        let shipped_at: BTreeMap<&str, i64> = scope
            .iter()
            .map(|(id, v, _)| (*id, v.last_change_at))
            .collect();
        if let Some(note) = apply_crm(
            ctx,
            run_id,
            &crm,
            &plan,
            &shipped_at,
            &mut fates,
            &mut corrections,
        )
        .await?
        {
            extra["crm_module"] = json!(note);
        }
        let shop_by_id: BTreeMap<&str, &ShopOrder> =
            shop_orders.iter().map(|o| (o.id.as_str(), o)).collect();
        let mut items_by_id: BTreeMap<&str, Vec<&ShopOrderItem>> = BTreeMap::new();
        for item in &shop_items {
            items_by_id
                .entry(item.order_id.as_str())
                .or_default()
                .push(item);
        }
        let shop = ShopData {
            orders: &shop_by_id,
            items: &items_by_id,
        };
        apply_wms(
            ctx,
            run_id,
            &plan,
            &shop,
            &mut fates,
            &mut corrections,
            &mut notes,
        )
        .await?;
    }

    // 5. Report.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut report = CsvReport::create(
        &ctx.report_dir,
        &file_name(JOB, ctx.today(), run_id),
        ctx.config.reports.dialect,
        &REPORT_COLUMNS,
    )?;
    let mut left_for_people = false;
    for row in &rows {
        *counts.entry(row.class.clone()).or_insert(0) += 1;
        if row.class == class::OK {
            continue;
        }
        let fate = fates
            .get(&(row.order_id.clone(), class_static(&row.class)))
            .cloned()
            .unwrap_or_else(|| Fate::new("report", "", ""));
        if fate.action == "report" || (fate.result != "applied") {
            left_for_people = true;
        }
        report.row(&cells(row, &fate))?;
    }
    for (id, status) in &unmapped {
        left_for_people = true;
        *counts.entry(CLASS_UNMAPPED_STATUS.into()).or_insert(0) += 1;
        let row = extra_row(id, CLASS_UNMAPPED_STATUS, Some(status.to_string()));
        let note =
            format!("WMS status {status} is not in the status map; the order was not compared");
        report.row(&cells(&row, &Fate::new("report", "", note)))?;
    }
    for (id, why) in &wms.unknown {
        left_for_people = true;
        *counts.entry(CLASS_WMS_STATE_UNKNOWN.into()).or_insert(0) += 1;
        let row = extra_row(id, CLASS_WMS_STATE_UNKNOWN, None);
        report.row(&cells(&row, &Fate::new("report", "", why.clone())))?;
    }
    for n in &notes {
        left_for_people = true;
        *counts.entry(n.class.into()).or_insert(0) += 1;
        let wms_status = wms.views.get(&n.order_id).map(|v| v.status.to_string());
        let row = extra_row(&n.order_id, n.class, wms_status);
        report.row(&cells(&row, &Fate::new("report", "", n.note.clone())))?;
    }
    let path = report.finish()?;
    let status = if blocked {
        RunStatus::Guarded
    } else if left_for_people
        || corrections.failed > 0
        || corrections.partial > 0
        || corrections.unknown > 0
    {
        RunStatus::Discrepancies
    } else {
        RunStatus::Clean
    };
    Ok((
        status,
        Outcome {
            counts,
            corrections,
            reports: vec![path.display().to_string()],
            guard: if blocked { guard } else { None },
            extra,
        },
    ))
}

fn class_static(name: &str) -> &'static str {
    [
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
    ]
    .into_iter()
    .find(|c| *c == name)
    .unwrap_or(class::OK)
}

fn extra_row(order_id: &str, class_name: &str, wms_status: Option<String>) -> Row {
    Row {
        order_id: order_id.to_owned(),
        wms_order_id: None,
        shop_status: None,
        wms_status,
        wms_stage: None,
        crm_status: None,
        crm_shipped: None,
        track_wms: None,
        track_crm: None,
        class: class_name.to_owned(),
        note: None,
    }
}

fn cells(row: &Row, fate: &Fate) -> Vec<Cell> {
    let note = match (row.note.as_deref(), fate.note.as_str()) {
        (Some(n), "") => n.to_owned(),
        (Some(n), f) => format!("{n}; {f}"),
        (None, f) => f.to_owned(),
    };
    vec![
        Cell::Text(row.order_id.clone()),
        row.wms_order_id.clone().into(),
        row.shop_status.clone().into(),
        row.wms_status.clone().into(),
        row.wms_stage.clone().into(),
        row.crm_status.clone().into(),
        row.crm_shipped.map(|b| b.to_string()).into(),
        row.track_wms.clone().into(),
        row.track_crm.clone().into(),
        Cell::Text(row.class.clone()),
        Cell::Text(fate.action.into()),
        Cell::Text(fate.result.clone()),
        Cell::Text(note),
    ]
}

/// Records every planned correction as not sent (`guarded` or `dry-run`).
fn mark_unsent(plan: &OrdersPlan, result: &str, fates: &mut Fates) {
    for m in &plan.crm_ship_marks {
        let fate = Fate::new(action::CRM_SHIP_MARK, result, "");
        for_ship_mark(
            fates,
            &m.order_id,
            m.track.is_some(),
            m.status.is_some(),
            &fate,
        );
    }
    for t in &plan.crm_tracks {
        fates.insert(
            (t.order_id.clone(), class::TRACK_MISSING_IN_CRM),
            Fate::new(action::CRM_TRACK, result, format!("track {}", t.track)),
        );
    }
    for id in &plan.wms_adds {
        fates.insert(
            (id.clone(), class::MISSING_IN_WMS),
            Fate::new("wms_add", result, ""),
        );
    }
    for id in &plan.wms_cancels {
        fates.insert(
            (id.clone(), class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS),
            Fate::new("wms_cancel", result, ""),
        );
    }
}

/// A shipped mark also settles the order's track and status rows when it carries them.
fn for_ship_mark(fates: &mut Fates, id: &str, track: bool, status: bool, fate: &Fate) {
    fates.insert(
        (id.to_owned(), class::SHIPPED_NOT_MARKED_IN_CRM),
        fate.clone(),
    );
    if track {
        fates.insert((id.to_owned(), class::TRACK_MISSING_IN_CRM), fate.clone());
    }
    if status {
        fates.insert((id.to_owned(), class::STATUS_MISMATCH), fate.clone());
    }
}

// ---------------------------------------------------------------------------
// CRM corrections
// ---------------------------------------------------------------------------

/// The `url` of the `inventoriesUpload` action, appended to `baseUrl`.
pub const INVENTORIES_CALLBACK_PATH: &str = "/retailcrm/inventories";

/// The warehouse module sverka registers so that `order[shipped]` is writable,
/// and a note when it goes without the `inventoriesUpload` callback.
///
/// `baseUrl` is `[orders] listener_url` (absolute, https unless loopback);
/// without a usable one the module carries no action (nothing to call back)
/// and `baseUrl` is the CRM account's own URL. An empty `clientId` is an
/// error: the CRM needs it to identify the account in callbacks.
pub fn desired_module(
    config: &crate::config::Config,
) -> Result<(IntegrationModule, Option<String>), String> {
    let crm = &config.retailcrm;
    if crm.client_id.is_empty() {
        return Err(
            "[retailcrm] client_id is empty: RetailCRM needs it to register the warehouse module; the module was not registered"
                .into(),
        );
    }
    let (base_url, actions, note) = match config.orders.module_base_url() {
        Ok(Some(url)) => (
            url,
            vec![StoreAction {
                code: "inventoriesUpload".into(),
                url: INVENTORIES_CALLBACK_PATH.into(),
                call_points: crm.call_points.clone(),
            }],
            None,
        ),
        Ok(None) => (
            crm.url.trim_end_matches('/').to_owned(),
            Vec::new(),
            Some("the warehouse module was registered without the inventoriesUpload callback: [orders] listener_url is not set".to_owned()),
        ),
        Err(why) => (
            crm.url.trim_end_matches('/').to_owned(),
            Vec::new(),
            Some(format!("the warehouse module was registered without the inventoriesUpload callback: [orders] listener_url {why}")),
        ),
    };
    let module = IntegrationModule {
        code: crm.module_code.clone(),
        integration_code: Some(crm.integration_code()),
        name: "sverka".into(),
        active: true,
        base_url,
        client_id: crm.client_id.clone(),
        logo: crm.logo.clone().filter(|l| !l.trim().is_empty()),
        account_url: None,
        integrations: Some(Integrations {
            store: Some(StoreIntegration { actions }),
        }),
    };
    Ok((module, note))
}

/// A fingerprint (SHA-256, hex) of everything sverka registers, `clientId`
/// included: a change of any of it means registering again.
pub fn module_fingerprint(m: &IntegrationModule) -> String {
    use sha2::{Digest, Sha256};
    let mut value = serde_json::to_value(m).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("clientId".into(), json!(m.client_id.expose()));
    }
    let text = crate::json_canon::canonical_json(&value);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `existing` already is the module sverka wants: active, same
/// `baseUrl`, and every wanted action with its `url` and `callPoints` (the
/// client id is not compared: the CRM may not echo it; the stored
/// fingerprint covers it).
fn module_matches(existing: &IntegrationModule, wanted: &IntegrationModule) -> bool {
    let actions = |m: &IntegrationModule| {
        m.integrations
            .as_ref()
            .and_then(|i| i.store.as_ref())
            .map(|s| {
                s.actions
                    .iter()
                    .map(|a| {
                        let points: BTreeSet<String> = a.call_points.iter().cloned().collect();
                        (a.code.clone(), a.url.clone(), points)
                    })
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default()
    };
    existing.active
        && existing.base_url.trim_end_matches('/') == wanted.base_url
        && actions(wanted).is_subset(&actions(existing))
}

/// Registers sverka's warehouse module unless it already is (journaled):
/// the CRM's copy must match and the stored fingerprint must equal what
/// sverka would register now. The inner error says why shipped marks cannot
/// be sent this run; the inner `Ok` carries a note for the report (a module
/// without callback); the outer error is a journal failure that ends the run.
async fn ensure_module(
    ctx: &Context,
    run_id: i64,
    crm: &RetailCrmClient,
) -> Result<Result<Option<String>, String>> {
    let (wanted, note) = match desired_module(&ctx.config) {
        Ok(w) => w,
        Err(why) => return Ok(Err(why)),
    };
    if let Some(n) = &note {
        tracing::warn!(run = run_id, "{n}");
    }
    let fingerprint = module_fingerprint(&wanted);
    let stored = crate::db::protocol::module_fingerprint(&ctx.state, &wanted.code).await?;
    match crm.integration_module_get(&wanted.code).await {
        Ok(Some(existing))
            if module_matches(&existing, &wanted)
                && stored.as_deref() == Some(fingerprint.as_str()) =>
        {
            return Ok(Ok(note))
        }
        Ok(_) => {}
        Err(e) => return Ok(Err(format!("reading the warehouse module failed: {e}"))),
    }
    let actions: Vec<&str> = wanted
        .integrations
        .iter()
        .flat_map(|i| i.store.iter())
        .flat_map(|s| s.actions.iter().map(|a| a.code.as_str()))
        .collect();
    let payload = json!({"code": wanted.code, "baseUrl": wanted.base_url, "actions": actions,
                         "fingerprint": fingerprint});
    let id = ctx
        .writer()
        .plan(&Planned {
            run_id,
            job: JOB,
            target: Target::Crm,
            action: action::CRM_MODULE,
            item_key: &wanted.code,
            payload: &payload,
        })
        .await?;
    match crm.integration_module_edit(&wanted).await {
        Ok(()) => {
            ctx.writer()
                .settle(id, CorrectionStatus::Applied, "{}")
                .await?;
            crate::db::protocol::put_module_fingerprint(&ctx.state, &wanted.code, &fingerprint)
                .await?;
            Ok(Ok(note))
        }
        Err(e) => {
            let text = e.to_string();
            ctx.writer()
                .settle(id, CorrectionStatus::Failed, &text)
                .await?;
            Ok(Err(format!(
                "registering the warehouse module failed: {text}"
            )))
        }
    }
}

/// Sends one journaled order edit; answers the fate result and note.
async fn send_edit(
    ctx: &Context,
    run_id: i64,
    crm: &RetailCrmClient,
    order_id: &str,
    action_name: &'static str,
    patch: &OrderPatch,
    corrections: &mut CorrectionCounts,
) -> Result<Fate> {
    let payload = patch.to_json();
    let id = ctx
        .writer()
        .plan(&Planned {
            run_id,
            job: JOB,
            target: Target::Crm,
            action: action_name,
            item_key: order_id,
            payload: &payload,
        })
        .await?;
    match crm.order_edit(order_id, patch).await {
        Ok(()) => {
            ctx.writer()
                .settle(id, CorrectionStatus::Applied, "{}")
                .await?;
            corrections.applied += 1;
            Ok(Fate::new(action_name, "applied", payload.to_string()))
        }
        Err(e) => {
            let text = e.to_string();
            tracing::error!(
                run = run_id,
                order = order_id,
                "RetailCRM order edit failed: {text}"
            );
            ctx.writer()
                .settle(id, CorrectionStatus::Failed, &text)
                .await?;
            corrections.failed += 1;
            Ok(Fate::new(action_name, "failed", text))
        }
    }
}

async fn apply_crm(
    ctx: &Context,
    run_id: i64,
    crm: &RetailCrmClient,
    plan: &OrdersPlan,
    shipped_at: &BTreeMap<&str, i64>,
    fates: &mut Fates,
    corrections: &mut CorrectionCounts,
) -> Result<Option<String>> {
    let module = if plan.crm_ship_marks.is_empty() {
        Ok(None)
    } else {
        ensure_module(ctx, run_id, crm).await?
    };
    let module_note = module.as_ref().ok().cloned().flatten();
    let tz = ctx.config.tz();
    let bar = Progress::counter(
        "RetailCRM order edits",
        (plan.crm_ship_marks.len() + plan.crm_tracks.len()) as u64,
        "edits",
    );
    for mark in &plan.crm_ship_marks {
        bar.inc(1);
        let (track, status) = (mark.track.is_some(), mark.status.is_some());
        let fate = if ctx.stop.is_stopped() {
            Fate::new(
                action::CRM_SHIP_MARK,
                "skipped",
                "stop requested; the next run retries",
            )
        } else if let Err(why) = &module {
            corrections.failed += 1;
            Fate::new(action::CRM_SHIP_MARK, "failed", why.clone())
        } else {
            let date = shipped_at
                .get(mark.order_id.as_str())
                .and_then(|ms| chrono::DateTime::from_timestamp_millis(*ms))
                .map(|t| t.with_timezone(&tz).date_naive())
                .unwrap_or_else(|| ctx.today());
            let patch = OrderPatch {
                shipped: Some(true),
                shipment_store: Some(ctx.config.retailcrm.store.clone()),
                shipment_date: Some(date),
                status: mark.status.clone(),
                track_number: mark.track.clone(),
            };
            send_edit(
                ctx,
                run_id,
                crm,
                &mark.order_id,
                action::CRM_SHIP_MARK,
                &patch,
                corrections,
            )
            .await?
        };
        for_ship_mark(fates, &mark.order_id, track, status, &fate);
    }
    for t in &plan.crm_tracks {
        bar.inc(1);
        let fate = if ctx.stop.is_stopped() {
            Fate::new(
                action::CRM_TRACK,
                "skipped",
                "stop requested; the next run retries",
            )
        } else {
            let patch = OrderPatch {
                track_number: Some(t.track.clone()),
                ..OrderPatch::default()
            };
            send_edit(
                ctx,
                run_id,
                crm,
                &t.order_id,
                action::CRM_TRACK,
                &patch,
                corrections,
            )
            .await?
        };
        fates.insert((t.order_id.clone(), class::TRACK_MISSING_IN_CRM), fate);
    }
    Ok(module_note)
}

// ---------------------------------------------------------------------------
// WMS corrections
// ---------------------------------------------------------------------------

/// The shop's orders and items by order id.
struct ShopData<'a> {
    orders: &'a BTreeMap<&'a str, &'a ShopOrder>,
    items: &'a BTreeMap<&'a str, Vec<&'a ShopOrderItem>>,
}

/// EGON's address fields, split from the shop's one-line address.
#[derive(Debug, Default, PartialEq, Eq)]
struct AddressParts {
    postal_code: String,
    city: String,
    street: String,
    number: String,
}

/// Splits a one-line address `postal code, city, street, house` (each part
/// optional, in that order; `д.`/`дом` before the house number is dropped).
/// Parts that cannot be found stay empty, and EGON refuses the order naming them.
fn split_address(address: &str) -> AddressParts {
    let mut parts: Vec<&str> = address
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let mut out = AddressParts::default();
    if parts
        .first()
        .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
    {
        out.postal_code = parts.remove(0).to_owned();
    }
    let house = |p: &str| {
        let p = p.trim();
        let p = p
            .strip_prefix("д.")
            .or_else(|| p.strip_prefix("дом"))
            .unwrap_or(p);
        p.trim().to_owned()
    };
    match parts.as_slice() {
        [] => {}
        [street] => out.street = (*street).to_owned(),
        [city, street] => {
            out.city = (*city).to_owned();
            match street.rsplit_once(' ') {
                Some((name, number)) if number.chars().any(|c| c.is_ascii_digit()) => {
                    out.street = name.trim().to_owned();
                    out.number = house(number);
                }
                _ => out.street = (*street).to_owned(),
            }
        }
        [city, middle @ .., last] => {
            out.city = (*city).to_owned();
            if last.chars().any(|c| c.is_ascii_digit()) {
                out.street = middle.join(", ");
                out.number = house(last);
            } else {
                out.street = middle
                    .iter()
                    .chain([last])
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
            }
        }
    }
    out
}

/// The EGON order for a shop order and its lines.
fn egon_order(
    order: &ShopOrder,
    items: &[&ShopOrderItem],
    shop_setting_id: i64,
    delivery_id: i64,
) -> NewOrder {
    let name = order.customer_name.trim();
    let (first, last) = name.split_once(' ').unwrap_or((name, ""));
    let phone = order.phone.clone().unwrap_or_default();
    let email = order.email.clone().unwrap_or_default();
    let address = split_address(order.address.as_deref().unwrap_or_default());
    NewOrder {
        original_order_id: order.id.clone(),
        shop_setting_id,
        reference_number: Some(order.id.clone()),
        customer_name: first.to_owned(),
        customer_surname: last.trim().to_owned(),
        customer_phone: phone.clone(),
        customer_email: email.clone(),
        name: first.to_owned(),
        surname: last.trim().to_owned(),
        phone,
        email,
        street: address.street,
        street_number: address.number,
        city: address.city,
        country: "RU".into(),
        postal_code: address.postal_code,
        id_delivery: delivery_id,
        delivery_branch_id: None,
        payment_cod: !order.paid,
        cod_price_kop: (!order.paid).then_some(order.total_kop),
        currency: Some("RUB".into()),
        note: None,
        items: items
            .iter()
            .map(|i| egon::NewOrderItem {
                item_id: i.sku.clone(),
                name: i.name.clone().unwrap_or_else(|| i.sku.clone()),
                count: i.quantity,
                catalog_id: None,
                price_with_tax_kop: Some(i.price_kop),
            })
            .collect(),
    }
}

/// The SKU → WMS goods id mapping when order lines carry WMS ids
/// (`[imsklad] order_goods_id = "wms"`), else nothing.
async fn line_id_map(ctx: &Context) -> Result<Option<BTreeMap<String, String>>> {
    Ok(match ctx.config.imsklad.order_goods_id {
        crate::config::OrderGoodsId::Partner => None,
        crate::config::OrderGoodsId::Wms => Some(mapping::all(&ctx.state, MapKind::Good).await?),
    })
}

fn line_ids(map: &Option<BTreeMap<String, String>>) -> op::LineIds<'_> {
    match map {
        Some(m) => op::LineIds::Wms(m),
        None => op::LineIds::Partner,
    }
}

/// Journals a WMS correction as planned.
async fn plan_wms(
    ctx: &Context,
    run_id: i64,
    action_name: &str,
    id: &str,
    payload: &Value,
) -> Result<i64> {
    Ok(ctx
        .writer()
        .plan(&Planned {
            run_id,
            job: JOB,
            target: Target::Wms,
            action: action_name,
            item_key: id,
            payload,
        })
        .await?)
}

/// Settles an IMSKLAD write: `ok` applied, `warning` partial, error failed.
async fn settle_imsklad(
    ctx: &Context,
    journal_id: i64,
    answer: &Result<WriteOutcome, crate::connectors::imsklad::ImskladError>,
    corrections: &mut CorrectionCounts,
) -> Result<(&'static str, String)> {
    Ok(match answer {
        Ok(WriteOutcome::Ok { id }) => {
            ctx.writer()
                .settle(
                    journal_id,
                    CorrectionStatus::Applied,
                    &json!({"result": "ok", "id": id}).to_string(),
                )
                .await?;
            corrections.applied += 1;
            (
                "applied",
                id.map(|i| format!("WMS order id {i}")).unwrap_or_default(),
            )
        }
        Ok(WriteOutcome::Warning { id, warning }) => {
            let answer = json!({"result": "warning", "warning": warning, "id": id}).to_string();
            ctx.writer()
                .settle(journal_id, CorrectionStatus::Partial, &answer)
                .await?;
            corrections.partial += 1;
            ("partial", format!("IMSKLAD warning: {warning}"))
        }
        Err(e) => {
            let idempotent = e
                .action()
                .is_none_or(crate::connectors::imsklad::is_idempotent);
            let (status, outcome) = super::failed_write(idempotent, e.is_ambiguous());
            let mut text = e.to_string();
            if status == CorrectionStatus::Unknown {
                text.push_str(
                    "; it may have been applied: not re-sent in this run, the next run's read tells",
                );
            }
            ctx.writer().settle(journal_id, status, &text).await?;
            super::count_failure(corrections, status);
            (outcome.as_str(), text)
        }
    })
}

/// The warehouse sverka writes to this run.
enum WmsClient {
    /// IMSKLAD.
    Imsklad(crate::connectors::imsklad::ImskladClient),
    /// EGON.
    Egon(EgonClient),
}

async fn apply_wms(
    ctx: &Context,
    run_id: i64,
    plan: &OrdersPlan,
    shop: &ShopData<'_>,
    fates: &mut Fates,
    corrections: &mut CorrectionCounts,
    notes: &mut Vec<op::Note>,
) -> Result<()> {
    if plan.wms_adds.is_empty() && plan.wms_cancels.is_empty() {
        return Ok(());
    }
    let client = match ctx.config.wms.kind {
        WmsKind::Imsklad => WmsClient::Imsklad(ctx.imsklad()?),
        WmsKind::Egon => WmsClient::Egon(egon_client(ctx)?),
    };
    let bar = Progress::counter(
        "WMS order writes",
        (plan.wms_adds.len() + plan.wms_cancels.len()) as u64,
        "orders",
    );
    for id in &plan.wms_adds {
        bar.inc(1);
        let fate = add_one(ctx, &client, run_id, id, shop, corrections).await?;
        fates.insert((id.clone(), class::MISSING_IN_WMS), fate);
    }
    for id in &plan.wms_cancels {
        bar.inc(1);
        let fate = cancel_one(ctx, &client, run_id, id, shop, corrections, notes).await?;
        fates.insert((id.clone(), class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS), fate);
    }
    Ok(())
}

async fn add_one(
    ctx: &Context,
    client: &WmsClient,
    run_id: i64,
    id: &str,
    shop: &ShopData<'_>,
    corrections: &mut CorrectionCounts,
) -> Result<Fate> {
    const ACT: &str = "wms_add";
    if ctx.stop.is_stopped() {
        return Ok(Fate::new(
            ACT,
            "skipped",
            "stop requested; the next run retries",
        ));
    }
    let (Some(order), Some(items)) = (shop.orders.get(id), shop.items.get(id)) else {
        return Ok(Fate::new(
            "report",
            "",
            "the shop lists no items for this order; not sent",
        ));
    };
    match client {
        WmsClient::Imsklad(imsklad) => {
            let goods_ids = line_id_map(ctx).await?;
            let o = match op::imsklad_order(order, items, line_ids(&goods_ids)) {
                Ok(o) => o,
                Err(why) => return Ok(Fate::new("report", "", format!("not sent: {why}"))),
            };
            let payload = serde_json::to_value(&o).unwrap_or_default();
            let jid = plan_wms(ctx, run_id, action::IMSKLAD_ADD, id, &payload).await?;
            let answer = imsklad.add_order(&o).await;
            if let Some(wms_id) = answer.as_ref().ok().and_then(WriteOutcome::id) {
                mapping::put(&ctx.state, MapKind::Order, id, &wms_id.to_string()).await?;
            }
            if answer.is_ok() {
                op::remember_sent(&ctx.state, &o).await?;
            }
            let (result, note) = settle_imsklad(ctx, jid, &answer, corrections).await?;
            Ok(Fate::new(ACT, result, note))
        }
        WmsClient::Egon(egon_api) => {
            let (Some(setting), Some(delivery)) = (
                ctx.config.orders.egon_shop_setting_id,
                ctx.config.orders.egon_delivery_id,
            ) else {
                return Ok(Fate::new(
                    "report",
                    "",
                    "set [orders] egon_shop_setting_id and egon_delivery_id to send it to EGON",
                ));
            };
            let o = egon_order(order, items, setting, delivery);
            let problems = op::create_order_problems(&o);
            if !problems.is_empty() {
                return Ok(Fate::new(
                    "report",
                    "",
                    format!(
                        "not sent: EGON would refuse CreateNewOrder with 301: {}",
                        problems.join("; ")
                    ),
                ));
            }
            let payload = serde_json::to_value(&o).unwrap_or_default();
            let jid = plan_wms(ctx, run_id, action::EGON_ADD, id, &payload).await?;
            match egon_api.create_new_order(&o).await {
                Ok(created) => {
                    mapping::put(
                        &ctx.state,
                        MapKind::Order,
                        id,
                        &created.order_id.to_string(),
                    )
                    .await?;
                    let answer = json!({"order_id": created.order_id, "created": created.created});
                    ctx.writer()
                        .settle(jid, CorrectionStatus::Applied, &answer.to_string())
                        .await?;
                    corrections.applied += 1;
                    Ok(Fate::new(
                        ACT,
                        "applied",
                        format!("EGON order id {}", created.order_id),
                    ))
                }
                Err(e) => {
                    let text = e.to_string();
                    ctx.writer()
                        .settle(jid, CorrectionStatus::Failed, &text)
                        .await?;
                    corrections.failed += 1;
                    Ok(Fate::new(ACT, "failed", text))
                }
            }
        }
    }
}

async fn cancel_one(
    ctx: &Context,
    client: &WmsClient,
    run_id: i64,
    id: &str,
    shop: &ShopData<'_>,
    corrections: &mut CorrectionCounts,
    notes: &mut Vec<op::Note>,
) -> Result<Fate> {
    const ACT: &str = "wms_cancel";
    if ctx.stop.is_stopped() {
        return Ok(Fate::new(
            ACT,
            "skipped",
            "stop requested; the next run retries",
        ));
    }
    match client {
        WmsClient::Imsklad(imsklad) => {
            let goods_ids = line_id_map(ctx).await?;
            let from_shop = || {
                let order = shop
                    .orders
                    .get(id)
                    .ok_or_else(|| "not in the shop's window; not cancelled".to_owned())?;
                let items = shop.items.get(id).map(Vec::as_slice).unwrap_or_default();
                op::imsklad_order(order, items, line_ids(&goods_ids))
            };
            let (o, full) = match op::cancellation(&ctx.state, id, from_shop).await? {
                Ok(found) => found,
                Err(why) => return Ok(Fate::new("report", "", why)),
            };
            if !full {
                notes.push(op::Note {
                    order_id: id.to_owned(),
                    class: op::CLASS_PARTIAL_ORDER_DATA,
                    note: format!(
                        "sverka holds no full copy of the order as the WMS has it; the cancellation went out with the shop's data (discount {}, {} goods lines)",
                        o.discount_kop as f64 / 100.0,
                        o.goods.len()
                    ),
                });
            }
            let payload = serde_json::to_value(&o).unwrap_or_default();
            let jid = plan_wms(ctx, run_id, action::IMSKLAD_CANCEL, id, &payload).await?;
            let answer = imsklad.update_order(&o).await;
            if answer.is_ok() {
                op::remember_sent(&ctx.state, &o).await?;
            }
            let (result, note) = settle_imsklad(ctx, jid, &answer, corrections).await?;
            Ok(Fate::new(ACT, result, note))
        }
        WmsClient::Egon(egon_api) => {
            let payload = json!({"original_order_id": id});
            let jid = plan_wms(ctx, run_id, action::EGON_CANCEL, id, &payload).await?;
            match egon_api
                .storno_order(OrderRef::Original(id.to_owned()))
                .await
            {
                Ok(()) => {
                    ctx.writer()
                        .settle(jid, CorrectionStatus::Applied, "{}")
                        .await?;
                    corrections.applied += 1;
                    Ok(Fate::new(ACT, "applied", ""))
                }
                Err(e) => {
                    let text = e.to_string();
                    ctx.writer()
                        .settle(jid, CorrectionStatus::Failed, &text)
                        .await?;
                    corrections.failed += 1;
                    Ok(Fate::new(ACT, "failed", text))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::imsklad::OrderGood;
    use crate::secret::Secret;

    const NOW: i64 = 1_800_000_000_000;

    fn state(status: Option<i64>, canceled: bool, source: &str) -> OrderState {
        OrderState {
            order_id: "A".into(),
            wms_order_id: Some("7".into()),
            wms_status: status,
            status_at: status.map(|_| NOW - HOUR_MS),
            track: None,
            goods: None,
            is_canceled: canceled,
            source: source.into(),
            updated_at: NOW - HOUR_MS,
        }
    }

    fn shop_order(id: &str, paid: bool, cancelled: bool) -> ShopOrder {
        ShopOrder {
            id: id.into(),
            status: "paid".into(),
            paid,
            cancelled,
            cancelled_at: None,
            created_at: NOW - 10 * HOUR_MS,
            shipped_at: None,
            total_kop: 150_000,
            delivery_kop: 30_000,
            delivery_type: Some(16),
            customer_name: "Иван Петров".into(),
            email: Some("i@example.ru".into()),
            phone: Some("+7 900".into()),
            address: Some("101000, Москва, ул. Тверская, д. 7".into()),
            discount_kop: 0,
            courier: None,
            pickup_point: None,
            post_code: None,
            address_parts: Default::default(),
        }
    }

    #[test]
    fn the_built_in_map_covers_every_documented_status() {
        let map = StatusMap::builtin().unwrap();
        assert_eq!(map.stage(WmsKind::Imsklad, 0), Some(Stage::New));
        assert_eq!(map.stage(WmsKind::Imsklad, 9), Some(Stage::Shipped));
        assert_eq!(map.stage(WmsKind::Imsklad, 10), Some(Stage::Cancelled));
        assert_eq!(map.stage(WmsKind::Imsklad, 11), Some(Stage::Delivered));
        assert_eq!(map.stage(WmsKind::Imsklad, 12), None);
        assert_eq!(map.stage(WmsKind::Egon, 5), Some(Stage::Shipped));
        assert_eq!(map.stage(WmsKind::Egon, 56), Some(Stage::Cancelled));
        for s in events::EGON_CANCELLED {
            assert_eq!(map.stage(WmsKind::Egon, s), Some(Stage::Cancelled));
        }
        assert_eq!(map.crm.len(), Stage::ALL.len());
        assert_eq!(map.crm[&Stage::Shipped], "send-to-delivery");
    }

    #[test]
    fn status_map_errors_name_the_map_and_key() {
        let cases = [
            ("[crm]\nlost = \"x\"\n", "crm.lost"),
            ("[crm]\nnew = \"\"\n", "crm.new"),
            ("[imsklad]\nnine = \"shipped\"\n", "imsklad.nine"),
            ("[imsklad]\n0 = \"gone\"\n", "imsklad.0"),
            ("[other]\nx = 1\n", "other"),
            ("crm = 1\n", "crm"),
            ("[imsklad]\n0 = \"new\"\n", "imsklad.1"),
        ];
        for (text, key) in cases {
            let msg = StatusMap::parse(text, "my-map.toml")
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains(key) && msg.contains("my-map.toml"),
                "{text:?}: {msg}"
            );
        }
        let syntax = StatusMap::parse("[crm", "m.toml").unwrap_err();
        assert!(matches!(syntax, StatusMapError::Syntax { .. }), "{syntax}");
        let read = StatusMap::load(Some(Path::new("/nonexistent/map.toml"))).unwrap_err();
        assert!(read.to_string().contains("/nonexistent/map.toml"));
    }

    #[test]
    fn a_status_map_file_overrides_the_built_in_one() {
        let mut text = BUILTIN_STATUS_MAP
            .replace("shipped = \"send-to-delivery\"", "shipped = \"delivering\"");
        text.push('\n');
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.toml");
        std::fs::write(&path, text).unwrap();
        let map = StatusMap::load(Some(&path)).unwrap();
        assert_eq!(map.crm[&Stage::Shipped], "delivering");
        assert_eq!(
            StatusMap::load(None).unwrap(),
            StatusMap::builtin().unwrap()
        );
    }

    #[test]
    fn window_is_local_days_end_exclusive() {
        let tz = chrono_tz::Europe::Moscow;
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let (from, to) = window_ms(tz, today, 30, None, None).unwrap();
        // 2026-10-23 00:00 MSK = 2026-10-22 21:00 UTC; end 2026-11-23 00:00 MSK.
        assert_eq!(from, 1_792_702_800_000);
        assert_eq!(to - from, 31 * 24 * HOUR_MS);
        let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let (a, b) = window_ms(tz, today, 30, Some(day), Some(day)).unwrap();
        assert_eq!(b - a, 24 * HOUR_MS);
        let err = window_ms(tz, today, 30, Some(today), Some(day)).unwrap_err();
        assert!(matches!(err, WindowError::Reversed { .. }));
    }

    #[test]
    fn goods_are_read_from_either_warehouse_leniently() {
        let imsklad =
            r#"[{"id": 101, "quantity": "2", "price": 10,}, {"id": "B", "quantity": 1.0}]"#;
        assert_eq!(
            parse_goods(imsklad),
            Some(vec![("101".into(), 2), ("B".into(), 1)])
        );
        let egon = r#"{"0": {"ITEM_ID": 7, "COUNT": 3}, "1": {"ITEM_ID": "X", "COUNT": "1"}}"#;
        assert_eq!(
            parse_goods(egon),
            Some(vec![("7".into(), 3), ("X".into(), 1)])
        );
        assert_eq!(parse_goods("[]"), Some(vec![]));
        assert_eq!(parse_goods("{}"), Some(vec![]));
        assert_eq!(parse_goods("[{\"quantity\": 1}]"), None);
        assert_eq!(parse_goods("\"x\""), None);
    }

    #[test]
    fn an_imsklad_cancel_flag_counts_only_inside_the_warehouse() {
        let cancelled = view_from_state(&state(Some(3), true, SOURCE_IMSKLAD), WmsKind::Imsklad);
        assert_eq!(cancelled.status, IMSKLAD_CANCELLED);
        let shipped = view_from_state(&state(Some(9), true, SOURCE_IMSKLAD), WmsKind::Imsklad);
        assert_eq!(shipped.status, 9);
        let only_update = view_from_state(&state(None, false, SOURCE_IMSKLAD), WmsKind::Imsklad);
        assert_eq!(
            (only_update.status, only_update.last_change_at),
            (0, NOW - HOUR_MS)
        );
        let egon = view_from_state(&state(Some(5), true, SOURCE_EGON), WmsKind::Egon);
        assert_eq!(egon.status, 5);
    }

    #[test]
    fn what_sverka_sent_fills_the_gaps_of_the_journal() {
        let map = StatusMap::builtin().unwrap();
        let mut views = BTreeMap::new();
        views.insert(
            "C".to_owned(),
            view_from_state(&state(Some(2), false, SOURCE_IMSKLAD), WmsKind::Imsklad),
        );
        views.insert(
            "S".to_owned(),
            view_from_state(&state(Some(9), false, SOURCE_IMSKLAD), WmsKind::Imsklad),
        );
        let sent = vec![
            Sent {
                order_id: "A".into(),
                action: action::IMSKLAD_ADD.into(),
                at: NOW - 5,
            },
            Sent {
                order_id: "C".into(),
                action: action::IMSKLAD_CANCEL.into(),
                at: NOW - 4,
            },
            Sent {
                order_id: "S".into(),
                action: action::IMSKLAD_CANCEL.into(),
                at: NOW - 3,
            },
            Sent {
                order_id: "Z".into(),
                action: action::IMSKLAD_ADD.into(),
                at: NOW - 2,
            },
        ];
        let mapped: BTreeMap<String, String> =
            [("A".into(), "55".into()), ("M".into(), "56".into())].into();
        let created: BTreeMap<&str, i64> = [
            ("A", NOW - 100),
            ("C", NOW - 100),
            ("M", NOW - 99 * HOUR_MS),
            ("S", 0),
        ]
        .into();
        overlay_sent(&mut views, &sent, &mapped, &created, WmsKind::Imsklad, &map);
        assert_eq!(views["A"].status, 0);
        assert_eq!(views["A"].wms_order_id.as_deref(), Some("55"));
        assert_eq!(views["A"].last_change_at, NOW - 5);
        assert_eq!(
            views["M"].last_change_at,
            NOW - 99 * HOUR_MS,
            "mapped only: stuck since creation"
        );
        assert_eq!(views["C"].status, IMSKLAD_CANCELLED);
        assert_eq!(
            views["S"].status, 9,
            "a shipped order is never taken as cancelled"
        );
        assert!(
            !views.contains_key("Z"),
            "orders outside the window are left alone"
        );
    }

    #[test]
    fn egon_orders_are_polled_when_missing_or_stale_and_not_final() {
        let paid = shop_order("A", true, false);
        let unpaid = shop_order("B", false, false);
        assert!(needs_poll(None, &paid, NOW, 6));
        assert!(!needs_poll(None, &unpaid, NOW, 6));
        let mut s = state(Some(2), false, SOURCE_EGON);
        assert!(!needs_poll(Some(&s), &paid, NOW, 6));
        s.updated_at = NOW - 7 * HOUR_MS;
        assert!(needs_poll(Some(&s), &paid, NOW, 6));
        s.wms_status = Some(6);
        assert!(!needs_poll(Some(&s), &paid, NOW, 6));
    }

    #[test]
    fn addresses_split_into_egon_fields() {
        let full = split_address("101000, Москва, ул. Тверская, д. 7");
        assert_eq!(
            full,
            AddressParts {
                postal_code: "101000".into(),
                city: "Москва".into(),
                street: "ул. Тверская".into(),
                number: "7".into(),
            }
        );
        let short = split_address("Казань, Баумана 12");
        assert_eq!(
            (
                short.city.as_str(),
                short.street.as_str(),
                short.number.as_str()
            ),
            ("Казань", "Баумана", "12")
        );
        assert_eq!(split_address("").street, "");
        assert_eq!(split_address("до востребования").street, "до востребования");
    }

    #[test]
    fn orders_for_the_wms_come_from_the_shop() {
        let order = shop_order("A", true, false);
        let items = [ShopOrderItem {
            order_id: "A".into(),
            sku: "101".into(),
            quantity: 2,
            price_kop: 60_000,
            name: None,
        }];
        let refs: Vec<&ShopOrderItem> = items.iter().collect();
        let o = op::imsklad_order(&order, &refs, op::LineIds::Partner).unwrap();
        assert_eq!(o.goods, vec![OrderGood::new("101", 2, 60_000)]);
        assert_eq!(
            (o.total_paid_kop, o.delivery_kop, o.is_canceled),
            (150_000, 30_000, None)
        );
        let e = egon_order(&order, &refs, 3, 291);
        assert_eq!(
            (e.customer_name.as_str(), e.customer_surname.as_str()),
            ("Иван", "Петров")
        );
        assert_eq!(
            (e.shop_setting_id, e.id_delivery, e.payment_cod),
            (3, 291, false)
        );
        assert_eq!(e.items[0].count, 2);
        // Without a product name the SKU stands in; with one, the item is named by it.
        assert_eq!(e.items[0].name, "101");
        let named = [ShopOrderItem {
            name: Some("Тестовый товар".into()),
            ..items[0].clone()
        }];
        let refs: Vec<&ShopOrderItem> = named.iter().collect();
        assert_eq!(
            egon_order(&order, &refs, 3, 291).items[0].name,
            "Тестовый товар"
        );
        // Everything the shop has of the order goes to add_order.
        let mut rich = order.clone();
        rich.discount_kop = 5_000;
        rich.courier = Some(42);
        rich.pickup_point = Some("MSK-17".into());
        rich.post_code = Some("123321".into());
        rich.address_parts.city = Some("Москва".into());
        let o = op::imsklad_order(&rich, &refs, op::LineIds::Partner).unwrap();
        assert_eq!(
            (
                o.discount_kop,
                o.courier,
                o.pickup_point.as_deref(),
                o.post_code.as_deref()
            ),
            (5_000, Some(42), Some("MSK-17"), Some("123321"))
        );
        assert_eq!(o.address_obj.unwrap().city.as_deref(), Some("Москва"));
        let wms_ids = BTreeMap::from([("101".to_string(), "124323".to_string())]);
        let o = op::imsklad_order(&rich, &refs, op::LineIds::Wms(&wms_ids)).unwrap();
        assert_eq!(o.goods[0].id, "124323");
        assert!(
            op::imsklad_order(&rich, &refs, op::LineIds::Wms(&BTreeMap::new()))
                .unwrap_err()
                .contains("101")
        );
    }

    #[test]
    fn the_module_check_ignores_the_client_id_but_not_the_action() {
        let wanted = IntegrationModule {
            code: "sverka".into(),
            integration_code: None,
            name: "sverka".into(),
            active: true,
            base_url: "http://h".into(),
            client_id: Secret::new("x"),
            logo: None,
            account_url: None,
            integrations: Some(Integrations {
                store: Some(StoreIntegration {
                    actions: vec![StoreAction {
                        code: "inventoriesUpload".into(),
                        url: "/retailcrm/inventories".into(),
                        call_points: Vec::new(),
                    }],
                }),
            }),
        };
        let mut echoed = wanted.clone();
        echoed.client_id = Secret::default();
        echoed.base_url = "http://h/".into();
        assert!(module_matches(&echoed, &wanted));
        let mut inactive = echoed.clone();
        inactive.active = false;
        assert!(!module_matches(&inactive, &wanted));
        let mut bare = echoed;
        bare.integrations = None;
        assert!(!module_matches(&bare, &wanted));
    }

    #[test]
    fn the_module_needs_a_client_id_and_carries_call_points_only_with_a_listener_url() {
        let mut c = crate::config::Config::default();
        c.retailcrm.url = "https://shop.retailcrm.ru/".into();
        assert!(desired_module(&c).unwrap_err().contains("client_id"));
        c.retailcrm.client_id = Secret::new("client-1");
        let actions =
            |m: &IntegrationModule| m.integrations.clone().unwrap().store.unwrap().actions;
        // No listener_url: no fallback to the bind address, no callback.
        let (m, note) = desired_module(&c).unwrap();
        assert!(actions(&m).is_empty());
        assert_eq!(m.base_url, "https://shop.retailcrm.ru");
        assert!(note.unwrap().contains("listener_url is not set"));
        // Plain http on a routable host is not registered as a callback.
        c.orders.listener_url = Some("http://10.0.0.5:8088".into());
        let (m, note) = desired_module(&c).unwrap();
        assert!(actions(&m).is_empty());
        assert!(note.unwrap().contains("https"));
        // https (or loopback http): the action with the configured callPoints.
        c.orders.listener_url = Some("https://sverka.example.ru/".into());
        let (m, note) = desired_module(&c).unwrap();
        assert!(note.is_none());
        assert_eq!(m.base_url, "https://sverka.example.ru");
        assert_eq!(m.integration_code.as_deref(), Some("sverka"));
        let a = actions(&m);
        assert_eq!(a[0].code, "inventoriesUpload");
        assert_eq!(
            a[0].call_points,
            crate::config::DEFAULT_CALL_POINTS.map(String::from)
        );
        c.orders.listener_url = Some("http://127.0.0.1:8088".into());
        assert_eq!(actions(&desired_module(&c).unwrap().0).len(), 1);
        // The fingerprint covers the client id, which the CRM may not echo.
        let fp = module_fingerprint(&m);
        assert_eq!(fp.len(), 64);
        let mut other = m.clone();
        other.client_id = Secret::new("client-2");
        assert_ne!(fp, module_fingerprint(&other));
        // Changed callPoints are a mismatch.
        let mut echoed = m.clone();
        echoed.integrations = Some(Integrations {
            store: Some(StoreIntegration {
                actions: vec![StoreAction {
                    call_points: Vec::new(),
                    ..a[0].clone()
                }],
            }),
        });
        assert!(!module_matches(&echoed, &m));
        assert!(module_matches(&m, &m));
    }

    #[test]
    fn change_share_counts_each_order_once() {
        let plan = OrdersPlan {
            wms_adds: vec!["A".into()],
            crm_ship_marks: vec![ro::CrmShipMark {
                order_id: "B".into(),
                status: None,
                track: None,
            }],
            crm_tracks: vec![ro::CrmTrack {
                order_id: "B".into(),
                track: "T".into(),
            }],
            wms_cancels: vec!["C".into()],
        };
        assert_eq!(change_share(&plan, 6), 0.5);
        assert_eq!(change_share(&OrdersPlan::default(), 0), 0.0);
        assert_eq!(change_share(&plan, 0), 1.0);
    }

    #[test]
    fn a_fate_note_joins_the_classifier_note() {
        let mut row = extra_row("A", class::STATUS_MISMATCH, Some("9".into()));
        row.note = Some("expected send".into());
        let c = cells(&row, &Fate::new("report", "", "x"));
        assert_eq!(c.len(), REPORT_COLUMNS.len());
        assert_eq!(c[12], Cell::Text("expected send; x".into()));
        assert_eq!(class_static("stuck"), class::STUCK);
        assert_eq!(class_static("whatever"), class::OK);
    }
}
