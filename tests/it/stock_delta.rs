//! The stock job's delta mode: after a full run, only the offers whose WMS
//! figure (or shop cost) moved are read from RetailCRM and corrected.

use sverka::config::{Config, DeltaRead, StockMode, WmsKind};
use sverka::db::Db;
use sverka::report::summary::JobSummary;
use sverka::sandbox::retailcrm::SkuFilter;
use sverka::sandbox::world::{StockDrift, WorldSku, WorldSpec};

use crate::stock::{fixture, open_shop, run_stock, Fixture};
use crate::support;

const SKUS: usize = 1000;

/// Filtered and unfiltered inventory reads since the last clear.
fn reads(f: &Fixture) -> Vec<String> {
    f.set
        .retailcrm
        .control
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/store/inventories"))
        .map(|r| r.query.clone())
        .collect()
}

fn uploads(f: &Fixture) -> usize {
    f.set
        .retailcrm
        .control
        .requests_to("/store/inventories/upload")
        .len()
}

async fn run(config: &Config, mode: StockMode) -> JobSummary {
    let mut config = config.clone();
    config.stock.mode = mode;
    let summary = run_stock(&config, false, false).await;
    assert!(summary.error.is_none(), "{:?}", summary.error);
    summary
}

/// A world brought in line by two full runs (the second compares the SKUs
/// the first one mapped).
async fn settled(seed: u64) -> Fixture {
    let f = fixture(
        support::sqlite(),
        WorldSpec {
            skus: SKUS,
            seed,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    run(&f.config, StockMode::Full).await;
    let second = run(&f.config, StockMode::Full).await;
    assert_eq!(second.counts.get("qty_mismatch_crm"), None);
    f
}

/// SKUs known to all three sources without drift.
fn plain(f: &Fixture) -> Vec<WorldSku> {
    f.world
        .skus
        .iter()
        .filter(|s| s.drift == StockDrift::None && s.crm_quantity.is_some())
        .cloned()
        .collect()
}

/// Moves the WMS stock of `skus` by +3 and returns their new sellable.
fn drift_wms(f: &Fixture, skus: &[WorldSku]) -> Vec<(String, i64)> {
    let mut wms = f.set.imsklad.lock();
    skus.iter()
        .map(|s| {
            let id = wms.good_by_partner(&s.sku).expect("mapped").wms_id;
            let (stock, reserved) = wms.stock_of(id).expect("stock");
            wms.set_stock(id, stock + 3, reserved).expect("set");
            (s.sku.clone(), (stock + 3 - reserved).max(0))
        })
        .collect()
}

fn crm_quantity(f: &Fixture, sku: &str) -> i64 {
    f.set
        .retailcrm
        .lock()
        .quantity(sku, &f.set.keys.retailcrm_store)
        .expect("CRM quantity") as i64
}

#[tokio::test]
async fn a_delta_run_corrects_the_drifted_offers_and_leaves_crm_edits_to_the_full_run() {
    let f = settled(21).await;
    let plain = plain(&f);
    // 1% of the SKUs drift in the WMS; one unchanged offer is edited in the CRM by hand.
    let drifted = drift_wms(&f, &plain[..SKUS / 100]);
    let hand = &plain[SKUS / 100 + 5];
    let hand_before = crm_quantity(&f, &hand.sku);
    f.set
        .retailcrm
        .lock()
        .set_quantity(
            &hand.sku,
            &f.set.keys.retailcrm_store,
            (hand_before + 7) as f64,
        )
        .unwrap();
    f.set.retailcrm.control.clear_requests();

    let delta = run(&f.config, StockMode::Delta).await;
    assert_eq!(delta.extra["mode"], "delta", "{}", delta.extra);
    let moved = drifted.len();
    assert_eq!(delta.extra["delta"]["moved"], moved as u64);
    assert_eq!(delta.extra["delta"]["filter"], "ids");
    // At most ceil(moved / batch) reads + ceil(changed / 250) uploads.
    let r = reads(&f);
    assert_eq!(r.len(), moved.div_ceil(250), "{r:?}");
    assert!(r[0].contains("filter%5Bids%5D"), "{}", r[0]);
    assert_eq!(uploads(&f), moved.div_ceil(250));
    assert_eq!(delta.counts["qty_mismatch_crm"] as usize, moved);
    for (sku, sellable) in &drifted {
        assert_eq!(crm_quantity(&f, sku), *sellable, "{sku}");
    }
    // The shop follows the WMS as in a full run.
    let shop = open_shop(&f.config).await;
    let shop_stock: std::collections::HashMap<String, i64> = shop
        .stock()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.sku, s.quantity))
        .collect();
    for (sku, sellable) in &drifted {
        assert_eq!(shop_stock[sku], *sellable, "{sku}");
    }
    // The hand-made change is not seen by the delta run…
    assert_eq!(crm_quantity(&f, &hand.sku), hand_before + 7);
    // …a second delta run finds nothing…
    f.set.retailcrm.control.clear_requests();
    let again = run(&f.config, StockMode::Delta).await;
    assert_eq!(again.extra["delta"]["moved"], 0);
    assert!(reads(&f).is_empty());
    assert_eq!(uploads(&f), 0);
    // …and the next full run fixes it.
    let full = run(&f.config, StockMode::Full).await;
    assert_eq!(full.counts["qty_mismatch_crm"], 1, "{:?}", full.counts);
    assert_eq!(crm_quantity(&f, &hand.sku), hand_before);
    f.set.stop().await;
}

#[tokio::test]
async fn a_delta_run_without_a_recent_full_run_runs_as_full() {
    let f = fixture(
        support::sqlite(),
        WorldSpec {
            skus: 300,
            seed: 22,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    // No known state yet.
    let first = run(&f.config, StockMode::Delta).await;
    assert_eq!(first.extra["mode"], "full");
    assert!(first.extra["mode_fallback"]
        .as_str()
        .is_some_and(|r| r.contains("no known CRM state")));
    // A known state older than [stock] full_every_hours.
    let state = Db::connect_state(f.config.state.database_url.expose())
        .await
        .unwrap();
    let old = sverka::db::now_ms() - 25 * 3_600_000;
    state
        .execute(
            "UPDATE stock_known_meta SET full_at = ?",
            &[old.into()],
            "aging",
        )
        .await
        .unwrap();
    state.close().await;
    f.set.retailcrm.control.clear_requests();
    let aged = run(&f.config, StockMode::Delta).await;
    assert_eq!(aged.extra["mode"], "full");
    assert!(aged.extra["mode_fallback"]
        .as_str()
        .is_some_and(|r| r.contains("full_every_hours")));
    let pages = f.set.retailcrm.lock().offer_count().div_ceil(250);
    assert_eq!(reads(&f).len(), pages);
    // That full run renewed the known state: the next delta run is one.
    let delta = run(&f.config, StockMode::Delta).await;
    assert_eq!(delta.extra["mode"], "delta");
    f.set.stop().await;
}

/// One delta run with the given reading; answers the run and the reads.
async fn delta_with(
    seed: u64,
    first: DeltaRead,
    sku_filter: SkuFilter,
    ids_filter: bool,
) -> (JobSummary, Vec<String>, Vec<(String, i64)>, Fixture) {
    let mut f = settled(seed).await;
    f.config.stock.delta_read = first;
    {
        let mut crm = f.set.retailcrm.lock();
        crm.strict.inventory_sku_filter = sku_filter;
        crm.strict.inventory_ids_filter = ids_filter;
    }
    let plain = plain(&f);
    let drifted = drift_wms(&f, &plain[..12]);
    f.set.retailcrm.control.clear_requests();
    let summary = run(&f.config, StockMode::Delta).await;
    assert_eq!(summary.extra["mode"], "delta");
    for (sku, sellable) in &drifted {
        assert_eq!(crm_quantity(&f, sku), *sellable, "{sku}");
    }
    assert_eq!(uploads(&f), 1);
    let r = reads(&f);
    (summary, r, drifted, f)
}

#[tokio::test]
async fn each_filter_reading_through_its_sandbox_switch() {
    // The offer key as a list (the PHP client's reading).
    let (s, r, _, f) = delta_with(31, DeltaRead::OfferKey, SkuFilter::List, true).await;
    assert_eq!(s.extra["delta"]["filter"], "offer_key");
    assert_eq!(r.len(), 1);
    assert!(
        r[0].contains("filter%5BofferExternalId%5D%5B%5D="),
        "{}",
        r[0]
    );
    f.set.stop().await;

    // One string only (the Go client's reading): the list is refused, ids follow.
    let (s, r, _, f) = delta_with(32, DeltaRead::OfferKey, SkuFilter::OneString, true).await;
    assert_eq!(s.extra["delta"]["filter"], "ids");
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[1].contains("filter%5Bids%5D%5B%5D="));
    assert_eq!(
        s.extra["delta"]["filters_refused"].as_array().map(Vec::len),
        Some(1)
    );
    f.set.stop().await;

    // Ids refused: the offer key list follows.
    let (s, r, _, f) = delta_with(33, DeltaRead::Ids, SkuFilter::List, false).await;
    assert_eq!(s.extra["delta"]["filter"], "offer_key");
    assert_eq!(r.len(), 2, "{r:?}");
    f.set.stop().await;

    // No filtered read accepted: the moved offers are uploaded without reading.
    let (s, r, drifted, f) = delta_with(34, DeltaRead::Ids, SkuFilter::OneString, false).await;
    assert_eq!(s.extra["delta"]["filter"], serde_json::Value::Null);
    assert_eq!(s.extra["delta"]["uploaded_unread"], drifted.len() as u64);
    assert_eq!(r.len(), 2, "two refused reads, no page read: {r:?}");
    f.set.stop().await;
}

#[tokio::test]
async fn batches_stay_under_the_page_size_and_8_kb() {
    let f = settled(41).await;
    let plain = plain(&f);
    let n = 600.min(plain.len());
    let drifted = drift_wms(&f, &plain[..n]);
    let mut config = f.config.clone();
    config.safety.max_change_share = 1.0;
    config.stock.delta_read = DeltaRead::OfferKey;
    f.set.retailcrm.control.clear_requests();
    let summary = run(&config, StockMode::Delta).await;
    let r = reads(&f);
    for q in &r {
        assert!(q.len() < 8 * 1024, "{} bytes", q.len());
        assert!(q.matches("filter%5BofferExternalId%5D").count() <= 250);
    }
    assert_eq!(summary.extra["delta"]["filtered_reads"], r.len() as u64);
    // SKU-000001 takes 45 bytes a value: about 179 a request, so more than ceil(n / 250).
    assert!(r.len() > n.div_ceil(250), "{}", r.len());
    for (sku, sellable) in &drifted {
        assert_eq!(crm_quantity(&f, sku), *sellable, "{sku}");
    }
    f.set.stop().await;
}

#[tokio::test]
async fn the_known_state_round_trips_on_every_engine() {
    use sverka::db::known_stock::{self, KnownOffer};
    for t in support::engines("known_stock").await {
        let engine = t.engine();
        let db = Db::connect_state(&t.url).await.expect("state db");
        let offer = |sku: String, quantity: i64, cost: Option<i64>| KnownOffer {
            sku,
            offer_id: quantity + 1,
            quantity,
            cost_kop: cost,
        };
        // More than one multi-row INSERT, and keys that differ only in case.
        let mut offers: Vec<KnownOffer> = (0..1_200)
            .map(|i| offer(format!("SKU-{i:05}"), i, (i % 3 == 0).then_some(i * 10)))
            .collect();
        offers.push(offer("SKU-a".into(), 1, None));
        offers.push(offer("SKU-A".into(), 2, Some(5)));
        known_stock::replace(&db, "main", "externalId", 42, &offers, None)
            .await
            .expect("replace");
        known_stock::confirm(
            &db,
            &[
                offer("SKU-00007".into(), 99, Some(1)),
                offer("NEW".into(), 3, None),
            ],
        )
        .await
        .expect("confirm");
        let known = known_stock::load(&db, "main", "externalId")
            .await
            .expect("load")
            .expect("known");
        assert_eq!(known.full_at, 42, "{engine}");
        assert_eq!(known.offers.len(), 1_203, "{engine}");
        assert_eq!(known.offers["SKU-00007"].quantity, 99, "{engine}");
        assert_eq!(known.offers["SKU-00007"].cost_kop, Some(1), "{engine}");
        assert_eq!(known.offers["SKU-a"].quantity, 1, "{engine}");
        assert_eq!(known.offers["SKU-A"].cost_kop, Some(5), "{engine}");
        assert_eq!(known.offers["SKU-00003"].cost_kop, Some(30), "{engine}");
        assert!(known_stock::load(&db, "other", "externalId")
            .await
            .expect("load")
            .is_none());
        // A later full read written as the differences from the stored state.
        let mut next: Vec<KnownOffer> = known.offers.values().cloned().collect();
        next.retain(|o| o.sku != "SKU-a");
        next.push(offer("LATER".into(), 8, Some(80)));
        known_stock::replace(&db, "main", "externalId", 43, &next, Some(&known))
            .await
            .expect("replace by difference");
        let again = known_stock::load(&db, "main", "externalId")
            .await
            .expect("load")
            .expect("known");
        assert_eq!(again.full_at, 43, "{engine}");
        assert_eq!(again.offers.len(), 1_203, "{engine}");
        assert!(!again.offers.contains_key("SKU-a"), "{engine}");
        assert_eq!(again.offers["SKU-A"].quantity, 2, "{engine}");
        assert_eq!(again.offers["LATER"].cost_kop, Some(80), "{engine}");
        db.close().await;
        t.drop_db().await;
    }
}

#[tokio::test]
async fn a_shop_cost_change_moves_its_offer_in_a_delta_run() {
    let f = settled(51).await;
    let s = plain(&f)[3].clone();
    let shop = open_shop(&f.config).await;
    shop.db()
        .execute(
            "UPDATE products SET cost_kop = ? WHERE sku = ?",
            &[(s.cost_kop + 150).into(), s.sku.as_str().into()],
            "changing a cost",
        )
        .await
        .unwrap();
    shop.db().close().await;
    f.set.retailcrm.control.clear_requests();
    let delta = run(&f.config, StockMode::Delta).await;
    assert_eq!(delta.extra["mode"], "delta");
    assert_eq!(delta.extra["delta"]["moved"], 1);
    assert_eq!(delta.counts.get("cost_mismatch_crm").copied(), Some(1));
    assert_eq!(delta.counts.get("qty_mismatch_crm"), None);
    assert_eq!((reads(&f).len(), uploads(&f)), (1, 1));
    assert_eq!(
        f.set
            .retailcrm
            .lock()
            .purchase_price(&s.sku, &f.set.keys.retailcrm_store),
        Some(s.cost_kop + 150)
    );
    f.set.stop().await;
}
