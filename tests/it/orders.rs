//! `reconcile orders` end to end on the sandbox world: the WMS reports through
//! a real listener, sverka reads the journal, the CRM and the shop over real
//! HTTP and databases.

use std::collections::BTreeMap;
use std::time::Duration;

use sverka::config::{Config, WmsKind};
use sverka::db::runs::RunStatus;
use sverka::db::{journal, Db};
use sverka::jobs::{orders, Context};
use sverka::reconcile::orders::class;
use sverka::report::summary::JobSummary;
use sverka::sandbox::world::WorldSpec;
use sverka::sandbox::world_orders::{self as wo, OrderDrift, WorldOrder};
use sverka::sandbox::SandboxSet;
use sverka::server::RunningServer;
use sverka::shop::Shop;

use crate::stock::global;
use crate::support;

/// The world's orders loaded everywhere, with the WMS's callbacks delivered.
pub(crate) struct Fixture {
    pub(crate) set: SandboxSet,
    pub(crate) orders: Vec<WorldOrder>,
    pub(crate) config: Config,
    pub(crate) state: Db,
    pub(crate) shop: Shop,
    pub(crate) listener: RunningServer,
    _dir: tempfile::TempDir,
}

pub(crate) async fn fixture(shop_db: &support::TestDb, wms: WmsKind, n_orders: usize) -> Fixture {
    let mut opts = support::WorldOptions::new(
        WorldSpec {
            skus: 40,
            orders: n_orders,
            ..WorldSpec::default()
        },
        wms,
    );
    opts.sandbox.rate_limits = false;
    opts.sku_mapping = false;
    opts.orders = true;
    opts.listener = true;
    let mut w = support::TestWorld::spawn(shop_db, opts).await;
    w.config.orders.create_missing_in_wms = true;
    w.config.orders.egon_shop_setting_id = Some(1);
    w.config.orders.egon_delivery_id = Some(291);
    w.config.retailcrm.rate_per_sec = 1000;
    let sent = wo::deliver_callbacks(&w.set, &w.orders, w.listener_url(), wms)
        .await
        .expect("callbacks");
    assert!(sent > 0);
    w.clear_requests();
    Fixture {
        set: w.set,
        orders: w.orders,
        config: w.config,
        state: w.state,
        shop: w.shop,
        listener: w.listener.expect("listener"),
        _dir: w.dir,
    }
}

pub(crate) async fn run_orders(config: &Config, dry_run: bool, force: bool) -> JobSummary {
    let mut ctx = Context::open(config, &global(dry_run), force)
        .await
        .expect("context");
    ctx.http.max_attempts = 2;
    ctx.http.base_backoff = Duration::from_millis(20);
    ctx.http.timeout = Duration::from_secs(5);
    orders::run(&ctx, None, None).await
}

/// A report line: (order_id, class) → the other columns by name.
pub(crate) type Report = BTreeMap<(String, String), BTreeMap<String, String>>;

pub(crate) fn report(summary: &JobSummary) -> Report {
    let path = summary.reports.first().expect("a report");
    let mut rdr = csv::Reader::from_path(path).expect("report readable");
    let headers = rdr.headers().expect("header").clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        orders::REPORT_COLUMNS.to_vec()
    );
    rdr.records()
        .map(|r| {
            let r = r.expect("row");
            let cols: BTreeMap<String, String> = headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect();
            ((r[0].to_string(), r[9].to_string()), cols)
        })
        .collect()
}

fn row<'a>(rep: &'a Report, order: &str, class_name: &str) -> &'a BTreeMap<String, String> {
    rep.get(&(order.to_string(), class_name.to_string()))
        .unwrap_or_else(|| panic!("no row ({order}, {class_name}) in {:#?}", rep.keys()))
}

fn first(orders: &[WorldOrder], drift: OrderDrift) -> &WorldOrder {
    orders
        .iter()
        .find(|o| o.drift == drift)
        .expect("the world carries every drift")
}

/// Order edits sent to the CRM (module registrations not counted).
fn crm_edits(set: &SandboxSet) -> usize {
    set.retailcrm
        .control
        .requests_to("/api/v5/orders/")
        .iter()
        .filter(|r| r.path.ends_with("/edit"))
        .count()
}

/// After a run the CRM shows shipped and the track for every order the WMS shipped.
fn assert_crm_shows_shipments(f: &Fixture) {
    let crm = f.set.retailcrm.lock();
    let mut checked = 0;
    for o in f.orders.iter().filter(|o| o.crm.is_some()) {
        if !o.stage.is_some_and(|s| s.is_shipped()) {
            continue;
        }
        let c = crm.order(&o.id).expect("crm order");
        assert!(c.shipped, "{} not marked shipped", o.id);
        assert_eq!(c.track_number, o.track, "{} track", o.id);
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} shipped orders checked");
}

const EVERY_CLASS: [&str; 9] = [
    class::MISSING_IN_WMS,
    class::SHIPPED_NOT_MARKED_IN_CRM,
    class::TRACK_MISSING_IN_CRM,
    class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS,
    class::CANCELLED_AFTER_SHIPMENT,
    class::MISSING_IN_CRM,
    class::GOODS_MISMATCH,
    class::AMOUNT_MISMATCH,
    class::STUCK,
];

#[tokio::test]
async fn imsklad_world_end_to_end_on_every_engine() {
    for db in support::engines("imsklad_world_end_to_end").await {
        let engine = db.engine();
        let f = fixture(&db, WmsKind::Imsklad, 30).await;
        let shipped = first(&f.orders, OrderDrift::ShippedNotMarkedInCrm);
        let after = first(&f.orders, OrderDrift::CancelledAfterShipment);
        let cancel = first(&f.orders, OrderDrift::CancelledInShopActiveInWms);
        let missing = first(&f.orders, OrderDrift::MissingInWms);
        // A late, older set_status (2 → 3) arrives after the order shipped (9).
        let wms_id = f
            .set
            .imsklad
            .lock()
            .order(&shipped.id)
            .expect("order")
            .wms_id;
        let late = sverka::sandbox::imsklad::set_status_data(&shipped.id, 2, 3, wms_id, None);
        sverka::sandbox::imsklad::send_callback(
            &format!("{}/imsklad", f.listener.url),
            &f.set.keys.imsklad_callback_key,
            "order",
            "set_status",
            &late,
        )
        .await
        .expect("late callback");

        let first_run = run_orders(&f.config, false, false).await;
        assert_eq!(
            first_run.status,
            RunStatus::Discrepancies,
            "{engine}: {first_run:?}"
        );
        let rep = report(&first_run);
        for c in EVERY_CLASS {
            assert!(
                rep.keys().any(|(_, k)| k == c),
                "{engine}: class {c} missing"
            );
            assert!(
                first_run.counts.get(c).copied().unwrap_or(0) >= 1,
                "{engine}: {c}"
            );
        }
        let mark = row(&rep, &shipped.id, class::SHIPPED_NOT_MARKED_IN_CRM);
        assert_eq!(
            mark["wms_stage"], "shipped",
            "{engine}: the late callback moved the state back"
        );
        assert_eq!(mark["wms_status"], "9");
        assert_eq!(
            (mark["action"].as_str(), mark["result"].as_str()),
            ("order_edit_shipped", "applied")
        );
        let after_row = row(&rep, &after.id, class::CANCELLED_AFTER_SHIPMENT);
        assert_eq!(after_row["action"], "report");
        let cancel_row = row(&rep, &cancel.id, class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS);
        assert_eq!(
            (cancel_row["action"].as_str(), cancel_row["result"].as_str()),
            ("wms_cancel", "applied")
        );
        let add_row = row(&rep, &missing.id, class::MISSING_IN_WMS);
        assert_eq!(
            (add_row["action"].as_str(), add_row["result"].as_str()),
            ("wms_add", "applied")
        );
        {
            let wms = f.set.imsklad.lock();
            assert_eq!(
                wms.order(&after.id).map(|o| o.status),
                Some(9),
                "shipped order cancelled"
            );
            assert_eq!(wms.order(&cancel.id).map(|o| o.status), Some(10));
            assert_eq!(wms.order(&missing.id).map(|o| o.status), Some(0));
        }
        assert_crm_shows_shipments(&f);
        {
            let crm = f.set.retailcrm.lock();
            let c = crm.order(&shipped.id).expect("crm order");
            assert_eq!(c.status, "send-to-delivery");
            assert_eq!(
                c.shipment_store.as_deref(),
                Some(f.set.keys.retailcrm_store.as_str())
            );
            assert!(c.shipment_date.is_some());
            assert!(
                crm.module(&f.config.retailcrm.module_code).is_some(),
                "module registered"
            );
        }
        let corrections = journal::of_run(&f.state, first_run.run_id)
            .await
            .expect("journal");
        assert!(
            corrections.iter().all(|c| c.status == "applied"),
            "{corrections:?}"
        );
        assert!(corrections
            .iter()
            .any(|c| c.action == "update_order_cancel"));

        let edits = crm_edits(&f.set);
        let wms_calls = f.set.imsklad.control.requests().len();
        assert!(edits >= 2);
        let second = run_orders(&f.config, false, false).await;
        assert_ne!(second.status, RunStatus::Failed, "{second:?}");
        assert_eq!(
            crm_edits(&f.set),
            edits,
            "{engine}: the second run edited the CRM"
        );
        assert_eq!(
            f.set.imsklad.control.requests().len(),
            wms_calls,
            "{engine}: the second run wrote to the WMS"
        );
        assert_eq!(second.corrections.planned, 0, "{engine}: {second:?}");
        let rep2 = report(&second);
        assert!(rep2
            .keys()
            .any(|(_, c)| c == class::CANCELLED_AFTER_SHIPMENT));
        assert!(!rep2
            .keys()
            .any(|(_, c)| c == class::SHIPPED_NOT_MARKED_IN_CRM));
        f.listener.stop().await;
        f.set.stop().await;
        db.drop_db().await;
    }
}

#[tokio::test]
async fn egon_world_end_to_end() {
    let db = support::sqlite();
    let f = fixture(&db, WmsKind::Egon, 30).await;
    let shipped = first(&f.orders, OrderDrift::ShippedNotMarkedInCrm);
    let after = first(&f.orders, OrderDrift::CancelledAfterShipment);
    let cancel = first(&f.orders, OrderDrift::CancelledInShopActiveInWms);
    let missing = first(&f.orders, OrderDrift::MissingInWms);
    let stuck = first(&f.orders, OrderDrift::Stuck);

    let first_run = run_orders(&f.config, false, false).await;
    assert_eq!(first_run.status, RunStatus::Discrepancies, "{first_run:?}");
    let rep = report(&first_run);
    for c in EVERY_CLASS {
        assert!(rep.keys().any(|(_, k)| k == c), "class {c} missing");
    }
    assert_eq!(
        row(&rep, &shipped.id, class::SHIPPED_NOT_MARKED_IN_CRM)["result"],
        "applied"
    );
    assert_eq!(
        row(&rep, &after.id, class::CANCELLED_AFTER_SHIPMENT)["action"],
        "report"
    );
    assert_eq!(
        row(&rep, &cancel.id, class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS)["result"],
        "applied"
    );
    // CreateNewOrder documents `item_id` as Integer: the world's alphanumeric
    // SKUs would get a 301, so sverka refuses locally, naming the field.
    let add = row(&rep, &missing.id, class::MISSING_IN_WMS);
    assert_eq!(add["action"], "report", "{add:?}");
    assert!(add["note"].contains("`items[0].item_id`"), "{add:?}");
    // The stuck order never called back: its state came from GetOrderStatus.
    assert_eq!(row(&rep, &stuck.id, class::STUCK)["wms_stage"], "new");
    assert!(!f.set.egon.control.requests().is_empty());
    {
        let egon = f.set.egon.lock();
        assert_eq!(egon.order(&after.id).map(|o| o.status_id), Some(5));
        assert_eq!(egon.order(&cancel.id).map(|o| o.status_id), Some(9));
        assert!(egon.order(&missing.id).is_none());
    }
    assert_crm_shows_shipments(&f);

    let edits = crm_edits(&f.set);
    let second = run_orders(&f.config, false, false).await;
    assert_ne!(second.status, RunStatus::Failed, "{second:?}");
    assert_eq!(crm_edits(&f.set), edits, "the second run edited the CRM");
    // Only the order EGON would refuse is planned again, and again not sent.
    assert_eq!(second.corrections.planned, 1, "{second:?}");
    assert_eq!(
        (second.corrections.applied, second.corrections.failed),
        (0, 0),
        "{second:?}"
    );
    f.listener.stop().await;
    f.set.stop().await;
}

#[tokio::test]
async fn an_imsklad_warning_on_cancel_is_recorded_as_partial() {
    let db = support::sqlite();
    let f = fixture(&db, WmsKind::Imsklad, 12).await;
    let cancel = first(&f.orders, OrderDrift::CancelledInShopActiveInWms);
    // The shop's lines now differ from the goods the warehouse is picking:
    // update_order keeps the goods and answers the documented warning.
    let sql = f
        .shop
        .db()
        .sql("UPDATE order_items SET quantity = quantity + 1 WHERE order_id = ?")
        .into_owned();
    sqlx::query(&sql)
        .bind(cancel.id.clone())
        .execute(f.shop.db().pool())
        .await
        .expect("shop update");
    // ... and sverka holds no full copy of the order (no update_order callback
    // kept): the cancellation goes out with the shop's data, which is reported.
    f.state
        .execute(
            "DELETE FROM order_documents WHERE order_id = ?",
            &[cancel.id.as_str().into()],
            "forgetting the order's full copy",
        )
        .await
        .expect("delete");

    let summary = run_orders(&f.config, false, false).await;
    assert_eq!(summary.status, RunStatus::Discrepancies, "{summary:?}");
    assert_eq!(summary.corrections.partial, 1, "{summary:?}");
    let rep = report(&summary);
    let r = row(&rep, &cancel.id, class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS);
    assert_eq!(
        (r["action"].as_str(), r["result"].as_str()),
        ("wms_cancel", "partial")
    );
    assert!(
        rep.contains_key(&(cancel.id.clone(), "partial_order_data".to_string())),
        "{:?}",
        rep.keys()
    );
    assert!(r["note"].contains("goods not saved"), "{}", r["note"]);
    let corrections = journal::of_run(&f.state, summary.run_id)
        .await
        .expect("journal");
    let c = corrections
        .iter()
        .find(|c| c.item_key == cancel.id && c.action == "update_order_cancel")
        .expect("journaled");
    assert_eq!(c.status, "partial");
    assert!(c.answer.as_deref().unwrap_or("").contains("warning"));
    assert_eq!(
        f.set.imsklad.lock().order(&cancel.id).map(|o| o.status),
        Some(10)
    );
    f.listener.stop().await;
    f.set.stop().await;
}

#[tokio::test]
async fn the_change_share_guard_writes_nothing_unless_forced() {
    let db = support::sqlite();
    let mut f = fixture(&db, WmsKind::Imsklad, 12).await;
    f.config.safety.max_change_share = 0.05;
    // The share guard at any size (below `small_below` the guard counts instead).
    f.config.safety.small_below = 0;
    let guarded = run_orders(&f.config, false, false).await;
    assert_eq!(guarded.status, RunStatus::Guarded, "{guarded:?}");
    assert_eq!(guarded.exit_code(), 2);
    assert!(guarded
        .guard
        .as_deref()
        .unwrap_or("")
        .contains("max_change_share"));
    assert_eq!(crm_edits(&f.set), 0);
    assert!(f.set.imsklad.control.requests().is_empty());
    let rep = report(&guarded);
    let shipped = first(&f.orders, OrderDrift::ShippedNotMarkedInCrm);
    assert_eq!(
        row(&rep, &shipped.id, class::SHIPPED_NOT_MARKED_IN_CRM)["result"],
        "guarded"
    );

    let forced = run_orders(&f.config, false, true).await;
    assert!(forced.forced);
    assert_eq!(forced.status, RunStatus::Discrepancies, "{forced:?}");
    assert!(crm_edits(&f.set) > 0);
    f.listener.stop().await;
    f.set.stop().await;
}

#[tokio::test]
async fn a_small_window_is_guarded_by_a_count_not_a_share() {
    let db = support::sqlite();
    let mut f = fixture(&db, WmsKind::Imsklad, 12).await;
    // A third of 12 orders is an ordinary day: far below small_max_changes = 20.
    f.config.safety.max_change_share = 0.05;
    let s = run_orders(&f.config, false, false).await;
    assert_ne!(s.status, RunStatus::Guarded, "{s:?}");
    assert!(s.corrections.applied > 1, "{s:?}");
    f.listener.stop().await;
    f.set.stop().await;
    // Below small_below, more changes than small_max_changes still stop the run.
    let db = support::sqlite();
    let mut f = fixture(&db, WmsKind::Imsklad, 12).await;
    f.config.safety.small_max_changes = 1;
    let s = run_orders(&f.config, false, false).await;
    assert_eq!(s.status, RunStatus::Guarded, "{s:?}");
    let reason = s.guard.unwrap_or_default();
    assert!(reason.contains("small_max_changes = 1"), "{reason}");
    assert_eq!(crm_edits(&f.set), 0);
    f.listener.stop().await;
    f.set.stop().await;
}

#[tokio::test]
async fn a_dry_run_plans_and_reports_but_sends_nothing() {
    let db = support::sqlite();
    let f = fixture(&db, WmsKind::Imsklad, 12).await;
    let summary = run_orders(&f.config, true, false).await;
    assert_eq!(summary.status, RunStatus::Discrepancies, "{summary:?}");
    assert!(summary.corrections.planned > 0);
    assert_eq!(crm_edits(&f.set), 0);
    assert!(f
        .set
        .retailcrm
        .control
        .requests_to("integration-modules")
        .is_empty());
    assert!(f.set.imsklad.control.requests().is_empty());
    let rep = report(&summary);
    let cancel = first(&f.orders, OrderDrift::CancelledInShopActiveInWms);
    assert_eq!(
        row(&rep, &cancel.id, class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS)["result"],
        "dry-run"
    );
    f.listener.stop().await;
    f.set.stop().await;
}

#[tokio::test]
async fn missing_orders_are_only_reported_unless_creation_is_enabled() {
    let db = support::sqlite();
    let mut f = fixture(&db, WmsKind::Imsklad, 12).await;
    f.config.orders.create_missing_in_wms = false;
    let missing = first(&f.orders, OrderDrift::MissingInWms);
    let summary = run_orders(&f.config, false, false).await;
    assert_eq!(summary.status, RunStatus::Discrepancies, "{summary:?}");
    let rep = report(&summary);
    let r = row(&rep, &missing.id, class::MISSING_IN_WMS);
    assert_eq!(r["action"], "report");
    assert!(r["note"].contains("create_missing_in_wms"), "{}", r["note"]);
    assert!(f.set.imsklad.lock().order(&missing.id).is_none());
    let corrections = journal::of_run(&f.state, summary.run_id)
        .await
        .expect("journal");
    assert!(!corrections.iter().any(|c| c.action == "add_order"));
    f.listener.stop().await;
    f.set.stop().await;
}

#[tokio::test]
async fn an_ambiguous_add_order_is_journaled_unknown_and_not_resent() {
    use sverka::sandbox::common::{FaultKind, ScriptedFault};
    // Both readings of IMSKLAD's undocumented answer to a duplicate add.
    for carries_id in [false, true] {
        let db = support::sqlite();
        let f = fixture(&db, WmsKind::Imsklad, 12).await;
        f.set.imsklad.lock().duplicate_add_carries_id = carries_id;
        // IMSKLAD creates the first order sverka adds, but its answer is cut off.
        f.set.imsklad.control.push_fault(ScriptedFault {
            path_contains: "\"add_order\"".into(),
            skip: 0,
            times: 1,
            kind: FaultKind::Truncate,
        });
        let s = run_orders(&f.config, false, false).await;
        assert!(s.error.is_none(), "{:?}", s.error);
        assert_ne!(s.status, RunStatus::Clean);
        assert_eq!(s.corrections.unknown, 1, "{s:?}");
        let corrections = journal::of_run(&f.state, s.run_id).await.unwrap();
        let unknown = corrections
            .iter()
            .find(|c| c.action == "add_order" && c.status == "unknown")
            .expect("an add_order journaled unknown");
        let id = unknown.item_key.clone();
        assert!(
            f.set.imsklad.lock().order(&id).is_some(),
            "IMSKLAD created it"
        );
        let sent = |set: &SandboxSet| {
            set.imsklad
                .control
                .requests()
                .iter()
                .filter(|r| {
                    let b = r.body_text();
                    b.contains("\"add_order\"") && b.contains(&format!("\"{id}\""))
                })
                .count()
        };
        assert_eq!(sent(&f.set), 1, "not re-sent after an ambiguous failure");
        let rep = report(&s);
        let r = row(&rep, &id, class::MISSING_IN_WMS);
        assert_eq!(r["result"], "unknown", "{r:?}");
        assert!(r["note"].contains("may have been applied"), "{r:?}");

        // The next run sends it once more; IMSKLAD refuses the duplicate with code 4.
        let again = run_orders(&f.config, false, false).await;
        assert_eq!(sent(&f.set), 2);
        let rep = report(&again);
        let r = row(&rep, &id, class::MISSING_IN_WMS);
        let mapped = sverka::db::mapping::get(&f.state, sverka::db::mapping::MapKind::Order, &id)
            .await
            .unwrap();
        if carries_id {
            // Code 4 with an id: taken as already created and mapped (UNVERIFIED).
            assert_eq!(r["result"], "partial", "{r:?}");
            assert!(r["note"].contains("UNVERIFIED"), "{r:?}");
            let wms_id = f.set.imsklad.lock().order(&id).unwrap().wms_id;
            assert_eq!(mapped, Some(wms_id.to_string()));
        } else {
            // Code 4 alone: nothing says the order is there; it stays a failure.
            assert_eq!(r["result"], "failed", "{r:?}");
            assert!(r["note"].contains("already exists"), "{r:?}");
        }
        f.listener.stop().await;
        f.set.stop().await;
    }
}

/// Issue 13: a track set T1 → T2 → T1 is a real change, not a redelivery: the
/// orders job sees T1 and pushes it to the CRM.
#[tokio::test]
async fn a_track_set_back_to_an_earlier_value_reaches_the_crm() {
    let db = support::sqlite();
    let f = fixture(&db, WmsKind::Imsklad, 12).await;
    let o = first(&f.orders, OrderDrift::TrackMissingInCrm);
    let http = reqwest::Client::new();
    let send = |track: &str| {
        let body = serde_json::json!({
            "key": f.set.keys.imsklad_callback_key.as_str(),
            "type": "order", "action": "update_tracks",
            "data": [{"id": o.id, "track": track}],
        })
        .to_string();
        let (http, url) = (http.clone(), format!("{}/imsklad", f.listener.url));
        async move {
            let resp = http.post(url).body(body).send().await.expect("send");
            resp.json::<serde_json::Value>().await.expect("json")
        }
    };
    for track in ["TRK-ONE", "TRK-TWO", "TRK-ONE"] {
        assert_eq!(send(track).await, serde_json::json!({"result": "ok"}));
    }
    let summary = run_orders(&f.config, false, false).await;
    let rep = report(&summary);
    let r = row(&rep, &o.id, class::TRACK_MISSING_IN_CRM);
    assert_eq!(r["track_wms"], "TRK-ONE", "{r:?}");
    assert_eq!(
        f.set
            .retailcrm
            .lock()
            .order(&o.id)
            .and_then(|c| c.track_number.clone())
            .as_deref(),
        Some("TRK-ONE")
    );
    f.listener.stop().await;
    f.set.stop().await;
}
