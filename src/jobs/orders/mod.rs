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

use super::gate::{self, Gate};
use super::orders_protocol as op;
use super::{run_job, Context, Outcome};
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
use crate::reconcile::input::Input;
use crate::reconcile::orders::{self as ro, class, OrdersOptions, OrdersPlan, Stage};
use crate::report::csv::{file_name, Cell, CsvReport};
use crate::report::summary::{CorrectionCounts, JobSummary};
use crate::shop::{ShopOrder, ShopOrderItem};

mod apply_crm;
mod apply_wms;
mod frames;
mod report;
mod status_map;
mod wms_view;
pub use apply_crm::*;
use apply_wms::*;
use frames::*;
use report::*;
pub use status_map::*;
use wms_view::*;

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
pub const BUILTIN_STATUS_MAP: &str = include_str!("../../../jobs/maps/status_map.toml");

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
    let bounds = window
        .as_ref()
        .map_or((None, None), |w| (Some(w.0), Some(w.1)));
    run_job(ctx, JOB, bounds, move |ctx, run_id| async move {
        let result = match window {
            Ok(w) => execute(&ctx, run_id, w).await,
            Err(e) => Err(e.into()),
        };
        result
            .map(|(status, outcome)| (status, outcome, None))
            .map_err(|e| format!("{e:#}"))
    })
    .await
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
    let gate = Gate::decide(ctx, run_id, guard, &mut extra);

    // 4. Apply.
    if let Some(unsent) = gate.unsent() {
        mark_unsent(&plan, unsent.as_str(), &mut fates);
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
    Ok(gate::finish(
        &gate,
        left_for_people,
        counts,
        corrections,
        &path,
        extra,
    ))
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
