//! Black-box tests of the pure reconciliation core through its public API.

use std::collections::BTreeMap;

use polars::prelude::*;
use sverka::bench::synthetic::synthetic_stock;
use sverka::reconcile::billing::{self, BillingContext};
use sverka::reconcile::orders::{self, OrdersOptions, Stage};
use sverka::reconcile::stock::{self, class};

#[test]
fn stock_pipeline_on_synthetic_data() {
    let (wms, crm, shop) = synthetic_stock(10_000, 42).expect("synthetic frames");
    let classified = stock::classify_stock(&wms, &crm, &shop).expect("classified");
    let counts = stock::count_by_class(&classified).expect("counts");
    assert_eq!(counts.values().sum::<u64>(), classified.height() as u64);
    assert!(counts[class::OK] > 8_000);

    let plan = stock::plan_stock(&classified).expect("plan");
    assert_eq!(
        plan.crm_updates.len() as u64,
        counts[class::QTY_MISMATCH_CRM]
    );
    let share = stock::change_share(&plan, shop.height());
    assert!(share > 0.0 && share < 0.2, "share {share}");
    assert!(stock::total_sellable(&wms).expect("sum") > 0);
    let coverage = stock::wms_coverage(&wms).expect("coverage");
    assert!(coverage > 0.95 && coverage < 1.0, "coverage {coverage}");

    // Same frames in any row order → the same frame out.
    let again = stock::classify_stock(&wms.reverse(), &crm.reverse(), &shop.reverse())
        .expect("classified again");
    assert!(classified.equals_missing(&again));
}

#[test]
fn orders_pipeline_plans_each_correction_once() {
    let now = 1_700_000_000_000i64;
    let shop = df!(
        "order_id" => ["1", "2", "3"],
        "shop_status" => ["paid", "paid", "cancelled"],
        "cancelled" => [false, false, true],
        "needs_fulfilment" => [true, true, true],
        "created_at" => [now, now, now],
        "total_kop" => [1_000i64, 2_000, 3_000],
    )
    .expect("shop");
    let items = df!(
        "order_id" => Vec::<String>::new(),
        "sku" => Vec::<String>::new(),
        "quantity" => Vec::<i64>::new(),
    )
    .expect("items");
    let wms = df!(
        "order_id" => ["2", "3"],
        "wms_order_id" => [Some("77"), None],
        "wms_status" => ["SENT", "NEW"],
        "wms_stage" => ["shipped", "new"],
        "track" => [Some("RA123"), None],
        "last_change_at" => [now, now],
        "total_kop" => [None::<i64>, None],
    )
    .expect("wms");
    let crm = df!(
        "order_id" => ["1", "2", "3"],
        "crm_status" => ["new", "assembling", "cancel"],
        "crm_shipped" => [false, false, false],
        "track" => [None::<&str>, None, None],
        "total_kop" => [1_000i64, 2_000, 3_000],
    )
    .expect("crm");
    let options = OrdersOptions {
        now_ms: now,
        stuck_hours: 24,
        amount_tolerance_kop: 0,
        stage_status: BTreeMap::from([(Stage::Shipped, "send".to_owned())]),
    };
    let classified =
        orders::classify_orders(&shop, &items, &wms, &items, &crm, &options).expect("classified");
    let plan = orders::plan_orders(&classified, &options).expect("plan");
    assert_eq!(plan.wms_adds, ["1"]);
    assert_eq!(plan.wms_cancels, ["3"]);
    assert_eq!(plan.crm_ship_marks.len(), 1);
    assert_eq!(plan.crm_ship_marks[0].track.as_deref(), Some("RA123"));
    assert_eq!(plan.crm_ship_marks[0].status.as_deref(), Some("send"));
    assert!(
        plan.crm_tracks.is_empty(),
        "the track rides with the shipped mark"
    );
}

#[test]
fn billing_totals_agree_with_the_balance() {
    let lines = df!(
        "id" => [3i64, 1, 2],
        "wms_order_id" => [Some(10i64), None, Some(11)],
        "foreign_order_id" => [Some("A"), None, Some("B")],
        "kind" => [0i64, 1, 0],
        "date" => [1_500i64, 1_200, 1_300],
        "amount_kop" => [-5_010i64, 20_000, -4_990],
        "comment" => ["assembly", "top-up", "assembly"],
    )
    .expect("lines");
    let shop = df!(
        "order_id" => ["A", "B"],
        "status" => ["shipped", "shipped"],
        "cancelled" => [false, false],
        "cancelled_before_picking" => [false, false],
        "shipped_at" => [Some(1_400i64), Some(1_300)],
        "delivery_type" => [None::<i64>, None],
    )
    .expect("orders");
    let tariffs = df!(
        "kind" => [0i64],
        "delivery_type" => [None::<i64>],
        "expected_kop" => [5_000i64],
        "tolerance_kop" => [10i64],
    )
    .expect("tariffs");
    let context = BillingContext {
        from: 1_000,
        to: 2_000,
        current_balance_kop: 110_000,
        change_of_balance_kop: 10_000,
        previous_closing_kop: Some(100_000),
    };
    let result = billing::classify_billing(&lines, &shop, &tariffs, &context).expect("billing");
    assert!(result.balance.ok, "{:?}", result.balance);
    let by_kind: i64 = result.totals_by_kind.iter().map(|(_, kop)| kop).sum();
    assert_eq!(by_kind, result.balance.sum_kop);
    assert_eq!(result.missing_charges.height(), 0);
    assert_eq!(
        result.totals_by_class,
        [(billing::class::OK.to_owned(), 3, 10_000)]
    );
}
