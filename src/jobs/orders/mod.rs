//! `sverka reconcile orders`: the WMS is right about fulfilment, the shop is
//! right about cancellation.
//!
//! The run follows the job skeleton; no source is read after its first write.
//!
//! 1. Read everything (`read::read_sources`): the shop's orders and items in
//!    the window, the WMS state (IMSKLAD: the callback journal's order states
//!    plus what sverka itself sent, from the id mapping and the corrections
//!    journal; EGON: the `WriteOrderStatus` journal, refreshed with
//!    `GetOrderStatus` when stale or missing), the CRM's orders by
//!    `externalIds`, the goods id mapping and the stored copies of the
//!    orders a cancellation may re-send.
//! 2. Plan (`plan::plan_run`, pure): map WMS statuses to stages with the
//!    status map ([`StatusMap`]), classify with
//!    [`crate::reconcile::orders::classify_orders`], and plan every write
//!    completely: the CRM edits with their patches, the warehouse module to
//!    register, the WMS orders and cancellations as they go out.
//! 3. Guard: a plan touching more than `[safety] max_change_share` of the
//!    window's orders (more than `small_max_changes` orders in a window of
//!    fewer than `small_below`) writes nothing (unless `--force`, which the
//!    run records).
//! 4. Apply, journaling each correction before it is sent and its answer
//!    after: CRM shipped marks and tracks (`orders/{externalId}/edit`, after
//!    registering sverka's warehouse module, whose copy in the CRM is read
//!    first), WMS cancellations (`update_order is_canceled=1` /
//!    `StornoOrder`) and, when `[orders] create_missing_in_wms = true`, WMS
//!    orders (`add_order` / `CreateNewOrder`). An IMSKLAD `warning` is
//!    `partial`.
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
use crate::connectors::imsklad::{Order, WriteOutcome};
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
use crate::reconcile::orders::{
    self as ro, class, OrderClass, OrdersOptions, OrdersPlan, Stage, OUTPUT_COLUMNS,
};
use crate::report::csv::{file_name, Cell, CsvReport};
use crate::report::summary::{CorrectionCounts, JobSummary};
use crate::shop::{ShopOrder, ShopOrderItem};

mod apply_crm;
mod apply_wms;
mod frames;
mod plan;
mod read;
mod report;
mod status_map;
mod wms_view;
pub use apply_crm::*;
use apply_wms::*;
use frames::*;
use plan::*;
use read::*;
use report::*;
pub use status_map::*;
use wms_view::*;

/// The job's name in runs, locks and reports.
pub const JOB: &str = "orders";

/// The report's columns: the classifier's ([`OUTPUT_COLUMNS`]) with the
/// fate's `action` and `result` before the closing `note`.
pub const REPORT_COLUMNS: [&str; 13] = report_columns();

const fn report_columns() -> [&'static str; 13] {
    let mut out = [""; 13];
    let last = OUTPUT_COLUMNS.len() - 1;
    let mut i = 0;
    while i < last {
        out[i] = OUTPUT_COLUMNS[i];
        i += 1;
    }
    out[last] = "action";
    out[last + 1] = "result";
    out[last + 2] = OUTPUT_COLUMNS[last];
    out
}

/// Report-only class of an order whose WMS status the status map does not know.
pub const CLASS_UNMAPPED_STATUS: &str = "unmapped_wms_status";
/// Report-only class of an order whose WMS state could not be read this run.
pub const CLASS_WMS_STATE_UNKNOWN: &str = "wms_state_unknown";

/// The status map shipped with sverka (`jobs/maps/status_map.toml`).
pub const BUILTIN_STATUS_MAP: &str = include_str!("../../../jobs/maps/status_map.toml");

/// The journal actions of the orders job's corrections (the WMS ones are
/// also read back to know what was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalAction {
    /// IMSKLAD `add_order`.
    ImskladAdd,
    /// IMSKLAD `update_order` with `is_canceled = 1`.
    ImskladCancel,
    /// EGON `CreateNewOrder`.
    EgonAdd,
    /// EGON `StornoOrder`.
    EgonCancel,
    /// RetailCRM order edit marking an order shipped.
    CrmShipMark,
    /// RetailCRM order edit setting the track number.
    CrmTrack,
    /// RetailCRM warehouse module registration.
    CrmModule,
}

impl JournalAction {
    /// The action's name in the journal.
    pub const fn as_str(self) -> &'static str {
        match self {
            JournalAction::ImskladAdd => "add_order",
            JournalAction::ImskladCancel => "update_order_cancel",
            JournalAction::EgonAdd => "create_new_order",
            JournalAction::EgonCancel => "storno_order",
            JournalAction::CrmShipMark => "order_edit_shipped",
            JournalAction::CrmTrack => "order_edit_track",
            JournalAction::CrmModule => "integration_module_edit",
        }
    }
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

/// What the apply phase changes: the rows' fates, the correction counts and
/// the notes beside the classified rows.
struct Applied {
    fates: Fates,
    corrections: CorrectionCounts,
    notes: Vec<op::Note>,
}

/// One run: read → plan → gate → apply → report.
async fn execute(ctx: &Context, run_id: i64, window: (i64, i64)) -> Result<(RunStatus, Outcome)> {
    let map = StatusMap::load(ctx.config.orders.status_map.as_deref())?;
    let now = crate::db::now_ms();
    let src = read_sources(ctx, &map, window, now).await?;
    let plan = plan_run(&ctx.config, ctx.today(), &map, &src, window, now)?;
    let mut extra = run_extra(window, &src, &plan);
    let guard = ctx.config.safety.change_guard(
        touched(&plan.orders).len(),
        src.shop_orders.len(),
        "orders in the window",
    );
    let gate = Gate::decide(ctx, run_id, guard, &mut extra);
    let mut applied = Applied {
        fates: plan.fates.clone(),
        corrections: CorrectionCounts {
            planned: plan.planned_count(),
            ..CorrectionCounts::default()
        },
        notes: src.carrier_notes.clone(),
    };
    match gate.unsent() {
        Some(unsent) => mark_unsent(&plan.orders, unsent, &mut applied.fates),
        None => apply(ctx, run_id, &src, &plan, &mut applied, &mut extra).await?,
    }
    let report = write_report(ctx, run_id, &src, &plan, &applied.fates, &applied.notes)?;
    Ok(gate::finish(
        &gate,
        report.left_for_people,
        report.counts,
        applied.corrections,
        &report.path,
        extra,
    ))
}

/// The run's `extra`: the window and what was read and planned.
fn run_extra(window: (i64, i64), src: &Sources, plan: &RunPlan) -> Value {
    json!({
        "window_from_ms": window.0,
        "window_to_ms": window.1,
        "shop_orders": src.shop_orders.len(),
        "wms_orders": plan.wms_orders,
        "crm_orders": plan.crm_orders,
        "egon_polled": src.wms.polled,
        "change_share": change_share(&plan.orders, src.shop_orders.len()),
    })
}

/// Sends the planned corrections: the warehouse module's copy in the CRM is
/// read first (the run's last read, before its first write), then the CRM
/// edits and the WMS writes go out.
async fn apply(
    ctx: &Context,
    run_id: i64,
    src: &Sources,
    plan: &RunPlan,
    applied: &mut Applied,
    extra: &mut Value,
) -> Result<()> {
    let module = read_module(ctx, run_id, &src.crm, plan.module.as_ref()).await?;
    if let Some(note) = apply_crm(ctx, run_id, &src.crm, plan, module, applied).await? {
        extra["crm_module"] = json!(note);
    }
    apply_wms(ctx, run_id, plan, applied).await
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
                action: JournalAction::ImskladAdd.as_str().into(),
                at: NOW - 5,
            },
            Sent {
                order_id: "C".into(),
                action: JournalAction::ImskladCancel.as_str().into(),
                at: NOW - 4,
            },
            Sent {
                order_id: "S".into(),
                action: JournalAction::ImskladCancel.as_str().into(),
                at: NOW - 3,
            },
            Sent {
                order_id: "Z".into(),
                action: JournalAction::ImskladAdd.as_str().into(),
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
        let mut c = crate::config::Config::default();
        c.retailcrm.client_id = Secret::new("x");
        c.orders.listener_url = Some("http://127.0.0.1:8088".into());
        let (wanted, _) = desired_module(&c).unwrap();
        let mut echoed = wanted.clone();
        echoed.client_id = Secret::default();
        echoed.base_url = format!("{}/", wanted.base_url);
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
        let c = cells(&row, &Fate::report("x"));
        assert_eq!(c.len(), REPORT_COLUMNS.len());
        assert_eq!(c[10], Cell::Text("report".into()));
        assert_eq!(c[11], Cell::Text("".into()));
        assert_eq!(c[12], Cell::Text("expected send; x".into()));
        assert_eq!(order_class("stuck"), Some(OrderClass::Stuck));
        assert_eq!(order_class(class::OK), Some(OrderClass::Ok));
        assert_eq!(
            order_class("whatever"),
            None,
            "an unknown class is no class"
        );
    }

    #[test]
    fn the_report_columns_are_the_classifiers_with_the_fate_before_the_note() {
        assert_eq!(
            REPORT_COLUMNS.join(","),
            "order_id,wms_order_id,shop_status,wms_status,wms_stage,crm_status,crm_shipped,\
             track_wms,track_crm,class,action,result,note"
        );
    }

    #[test]
    fn fates_and_actions_keep_their_report_words() {
        let actions = [
            (ReportAction::Report, "report"),
            (ReportAction::WmsAdd, "wms_add"),
            (ReportAction::WmsCancel, "wms_cancel"),
            (ReportAction::Crm(CrmEdit::ShipMark), "order_edit_shipped"),
            (ReportAction::Crm(CrmEdit::Track), "order_edit_track"),
        ];
        for (action, word) in actions {
            assert_eq!(action.as_str(), word);
        }
        let results = [
            (FateResult::Blank, ""),
            (FateResult::Applied, "applied"),
            (FateResult::Partial, "partial"),
            (FateResult::Failed, "failed"),
            (FateResult::Unknown, "unknown"),
            (FateResult::Skipped, "skipped"),
            (FateResult::Unsent(gate::Unsent::Guarded), "guarded"),
            (FateResult::Unsent(gate::Unsent::DryRun), "dry-run"),
        ];
        for (result, word) in results {
            assert_eq!(result.as_str(), word);
        }
        assert_eq!(
            FateResult::of_failure(CorrectionStatus::Unknown),
            FateResult::Unknown
        );
        assert_eq!(
            FateResult::of_failure(CorrectionStatus::Failed),
            FateResult::Failed
        );
        assert_eq!(JournalAction::CrmModule.as_str(), "integration_module_edit");
    }
}
