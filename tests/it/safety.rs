//! Runs that cannot do harm (issue 14): figures sverka cannot read are not
//! zero, guards measure the right thing, shop writes are compare-and-set, the
//! run lock is checked before writing, and non-idempotent writes are not
//! blindly retried.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sverka::config::{Config, WmsKind};
use sverka::db::runs::RunStatus;
use sverka::jobs::{stock, Context};
use sverka::report::summary::JobSummary;
use sverka::sandbox::egon::BrokenCounts;
use sverka::sandbox::world::{World, WorldSpec};
use sverka::sandbox::SandboxSet;
use sverka::shop::{Queries, Shop};

use crate::stock::global;
use crate::support;

/// A sandbox world in the servers, a shop database and a state database.
pub struct Fixture {
    pub set: SandboxSet,
    pub world: World,
    pub config: Config,
    pub _dir: tempfile::TempDir,
}

/// Like `stock::fixture`, with the state database at `state_url` (a temp
/// SQLite file when None) and `max_change_share` 0.9.
pub async fn fixture(
    shop_url: &str,
    state_url: Option<&str>,
    spec: WorldSpec,
    wms: WmsKind,
) -> Fixture {
    let shop_db = support::TestDb::at(shop_url);
    let mut opts = support::WorldOptions::new(spec, wms);
    opts.state_url = state_url.map(str::to_string);
    let w = support::TestWorld::spawn(&shop_db, opts).await;
    Fixture {
        set: w.set,
        world: w.world,
        config: w.config,
        _dir: w.dir,
    }
}

pub async fn open_shop(config: &Config) -> Shop {
    let db = sverka::db::Db::connect(config.shop.database_url.expose())
        .await
        .expect("shop db");
    Shop::new(db, Queries::builtin())
}

pub async fn context(config: &Config, force: bool) -> Context {
    let mut ctx = Context::open(config, &global(false), force)
        .await
        .expect("context");
    ctx.http.max_attempts = 2;
    ctx.http.base_backoff = Duration::from_millis(20);
    ctx.http.timeout = Duration::from_secs(5);
    ctx
}

pub async fn run_stock(config: &Config, force: bool) -> JobSummary {
    stock::run(&context(config, force).await).await
}

/// The report's rows as sku → [(class, action, result, note)].
pub fn report_rows(
    summary: &JobSummary,
) -> BTreeMap<String, Vec<(String, String, String, String)>> {
    let path = summary.reports.first().expect("a report");
    let mut rdr = csv::Reader::from_path(path).expect("report readable");
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for r in rdr.records() {
        let r = r.expect("row");
        out.entry(r[0].to_string()).or_default().push((
            r[8].to_string(),
            r[9].to_string(),
            r[10].to_string(),
            r[11].to_string(),
        ));
    }
    out
}

fn crm_quantities(f: &Fixture) -> BTreeMap<String, Option<f64>> {
    let crm = f.set.retailcrm.lock();
    f.world
        .skus
        .iter()
        .map(|s| {
            (
                s.sku.clone(),
                crm.quantity(&s.sku, &f.set.keys.retailcrm_store),
            )
        })
        .collect()
}

async fn shop_quantities(config: &Config) -> BTreeMap<String, i64> {
    open_shop(config)
        .await
        .stock()
        .await
        .expect("shop stock")
        .into_iter()
        .map(|s| (s.sku, s.quantity))
        .collect()
}

/// Every SKU uploaded to RetailCRM by the run.
fn uploaded_skus(set: &SandboxSet) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in set
        .retailcrm
        .control
        .requests_to("/store/inventories/upload")
    {
        for (k, v) in r.form() {
            if k == "offers" {
                let offers: serde_json::Value = serde_json::from_str(&v).expect("offers json");
                for o in offers.as_array().into_iter().flatten() {
                    if let Some(id) = o["externalId"].as_str() {
                        out.insert(id.to_string());
                    }
                }
            }
        }
    }
    out
}

/// SKUs the shop sells, the CRM offers with a non-zero quantity, and the WMS
/// holds with non-zero sellable stock that differs from both: a zero pushed
/// for them would show in both targets.
fn victims(f: &Fixture, n: usize) -> Vec<String> {
    let out: Vec<String> = f
        .world
        .skus
        .iter()
        .filter(|s| {
            s.in_wms
                && s.mapped
                && s.shop_quantity.is_some_and(|q| q > 0)
                && s.crm_quantity.is_some_and(|q| q > 0)
                && s.sellable() > 0
        })
        .take(n)
        .map(|s| s.sku.clone())
        .collect();
    assert_eq!(out.len(), n, "the world has too few candidates");
    out
}

#[tokio::test]
async fn egon_cards_without_counters_are_wms_unreadable_and_nothing_is_pushed_for_them() {
    for shop_db in support::engines("egon_cards_without_counters").await {
        let engine = shop_db.engine();
        let mut f = fixture(
            &shop_db.url,
            None,
            WorldSpec {
                skus: 60,
                seed: 14,
                ..WorldSpec::default()
            },
            WmsKind::Egon,
        )
        .await;
        f.config.safety.min_wms_coverage = 0.5;
        let victims = victims(&f, 6);
        let broken = [
            BrokenCounts::Missing,
            BrokenCounts::Null,
            BrokenCounts::EmptyArray,
            BrokenCounts::EmptyObject,
            BrokenCounts::WithoutAll,
        ];
        // The sixth card spells its counters in upper case, as the callbacks do: readable.
        let upper = victims[5].clone();
        {
            let mut egon = f.set.egon.lock();
            for (sku, how) in victims.iter().zip(broken) {
                egon.broken_counts.insert(sku.clone(), how);
            }
            egon.broken_counts
                .insert(upper.clone(), BrokenCounts::UpperCase);
            // Make the upper-case card differ from the CRM and the shop.
            let card = egon.item(&upper).expect("card").counts;
            egon.add_item(
                &upper,
                sverka::connectors::egon::CountTypes {
                    all: card.all + 5,
                    ..card
                },
            );
        }
        let crm_before = crm_quantities(&f);
        let shop_before = shop_quantities(&f.config).await;

        let s = run_stock(&f.config, false).await;
        assert!(s.error.is_none(), "{engine}: {:?}", s.error);
        assert_eq!(s.status, RunStatus::Discrepancies, "{engine}: not clean");
        assert_eq!(s.counts.get("wms_unreadable"), Some(&5), "{engine}");
        let rows = report_rows(&s);
        let uploaded = uploaded_skus(&f.set);
        let crm_after = crm_quantities(&f);
        let shop_after = shop_quantities(&f.config).await;
        for sku in &victims[..5] {
            let classes: Vec<&str> = rows[sku].iter().map(|r| r.0.as_str()).collect();
            assert_eq!(classes, ["wms_unreadable"], "{engine} {sku}");
            assert_eq!(rows[sku][0].1, "report");
            assert!(rows[sku][0].3.contains("count_types"), "{:?}", rows[sku]);
            assert!(!uploaded.contains(sku), "{engine}: {sku} uploaded");
            assert_eq!(crm_after[sku], crm_before[sku], "{engine}: CRM {sku}");
            assert_eq!(shop_after[sku], shop_before[sku], "{engine}: shop {sku}");
        }
        // The readable upper-case card is corrected like any other.
        let sellable = f
            .set
            .egon
            .lock()
            .item(&upper)
            .expect("card")
            .counts
            .sellable();
        assert_eq!(shop_after[&upper], sellable, "{engine}");
        assert!(uploaded.contains(&upper), "{engine}");
        // Unreadable cards do not count as reported.
        let state = sverka::db::Db::connect_state(f.config.state.database_url.expose())
            .await
            .unwrap();
        let run = sverka::db::runs::get(&state, s.run_id)
            .await
            .unwrap()
            .unwrap();
        let expected = run.summary["wms_expected"].as_u64().unwrap();
        let reported = run.summary["wms_reported"].as_u64().unwrap();
        let with_card = {
            let egon = f.set.egon.lock();
            shop_before
                .keys()
                .filter(|sku| egon.item(sku).is_some())
                .count() as u64
        };
        assert_eq!(reported, with_card - 5, "{engine}");
        assert!(reported < expected);
        // The same answer with the default coverage: 5 of 60 unreadable trips the guard.
        let mut strict = f.config.clone();
        strict.safety.min_wms_coverage = reported as f64 / expected as f64 + 0.01;
        let guarded = run_stock(&strict, false).await;
        assert_eq!(guarded.status, RunStatus::Guarded, "{engine}");
        assert!(guarded
            .guard
            .unwrap_or_default()
            .contains("min_wms_coverage"));
        f.set.stop().await;
        shop_db.drop_db().await;
    }
}

#[tokio::test]
async fn imsklad_rows_without_stock_are_wms_unreadable() {
    for shop_db in support::engines("imsklad_rows_without_stock").await {
        let engine = shop_db.engine();
        let mut f = fixture(
            &shop_db.url,
            None,
            WorldSpec {
                skus: 60,
                seed: 15,
                ..WorldSpec::default()
            },
            WmsKind::Imsklad,
        )
        .await;
        f.config.safety.min_wms_coverage = 0.5;
        let victims = victims(&f, 3);
        {
            let mut wms = f.set.imsklad.lock();
            let ids: Vec<i64> = victims
                .iter()
                .map(|sku| wms.good_by_partner(sku).expect("good").wms_id)
                .collect();
            wms.stockless_rows = ids.into_iter().collect();
        }
        let crm_before = crm_quantities(&f);
        let shop_before = shop_quantities(&f.config).await;
        let s = run_stock(&f.config, false).await;
        assert!(s.error.is_none(), "{engine}: {:?}", s.error);
        assert_ne!(s.status, RunStatus::Clean);
        assert_eq!(s.counts.get("wms_unreadable"), Some(&3), "{engine}");
        let rows = report_rows(&s);
        let uploaded = uploaded_skus(&f.set);
        let crm_after = crm_quantities(&f);
        let shop_after = shop_quantities(&f.config).await;
        for sku in &victims {
            let classes: Vec<&str> = rows[sku].iter().map(|r| r.0.as_str()).collect();
            assert_eq!(classes, ["wms_unreadable"], "{engine} {sku}");
            assert!(rows[sku][0].3.contains("stock"), "{:?}", rows[sku]);
            assert!(!uploaded.contains(sku));
            assert_eq!(crm_after[sku], crm_before[sku]);
            assert_eq!(shop_after[sku], shop_before[sku]);
        }
        // No IMSKLAD look-up either: the SKU is mapped, only its figures are unreadable.
        for r in f.set.imsklad.control.requests() {
            let body = r.body_text();
            if body.contains("update_good") || body.contains("add_good") {
                for sku in &victims {
                    assert!(!body.contains(&format!("\"{sku}\"")), "{sku}: {body}");
                }
            }
        }
        f.set.stop().await;
        shop_db.drop_db().await;
    }
}

/// Waits until `cond` holds (polling), panicking after 30 s.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_shop_row_changed_between_read_and_write_is_not_overwritten() {
    use sverka::sandbox::world::StockDrift;
    for shop_db in support::engines("shop_compare_and_set").await {
        let engine = shop_db.engine();
        let f = fixture(
            &shop_db.url,
            None,
            WorldSpec {
                skus: 80,
                seed: 16,
                ..WorldSpec::default()
            },
            WmsKind::Imsklad,
        )
        .await;
        let shop_drift: Vec<&sverka::sandbox::world::WorldSku> = f
            .world
            .skus
            .iter()
            .filter(|s| s.mapped && matches!(s.drift, StockDrift::ShopQuantity | StockDrift::Both))
            .collect();
        assert!(
            shop_drift.len() >= 2,
            "the world needs two shop corrections"
        );
        let victim = shop_drift[0].sku.clone();
        let other = shop_drift[1].clone();
        // A slow CRM: the run reads the shop, then waits on RetailCRM's pages.
        f.set
            .retailcrm
            .control
            .set_latency(Duration::from_millis(700));
        let config = f.config.clone();
        let job = tokio::spawn(async move { run_stock(&config, false).await });
        let crm = f.set.retailcrm.control.clone();
        wait_until("the run to read RetailCRM", || crm.arrived() >= 1).await;
        // Meanwhile somebody sells from the shop: the row changes under the run.
        let shop = open_shop(&f.config).await;
        let n = shop
            .db()
            .execute(
                "UPDATE stock SET quantity = ? WHERE sku = ?",
                &[4242i64.into(), victim.as_str().into()],
                "changing a shop row",
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
        let s = job.await.unwrap();
        assert!(s.error.is_none(), "{engine}: {:?}", s.error);
        assert_ne!(s.status, RunStatus::Clean);
        let after = shop_quantities(&f.config).await;
        assert_eq!(after[&victim], 4242, "{engine}: the row was overwritten");
        assert_eq!(
            after[&other.sku],
            other.sellable(),
            "{engine}: others applied"
        );
        let rows = report_rows(&s);
        let row = rows[&victim]
            .iter()
            .find(|r| r.0 == "qty_mismatch_shop")
            .expect("shop row reported");
        assert_eq!(
            (row.1.as_str(), row.2.as_str()),
            ("shop_update", "changed_during_run"),
            "{engine}"
        );
        let state = sverka::db::Db::connect_state(f.config.state.database_url.expose())
            .await
            .unwrap();
        let journal = sverka::db::journal::of_run(&state, s.run_id).await.unwrap();
        let shop_write = journal
            .iter()
            .find(|c| c.action == "update_stock")
            .expect("journaled");
        assert_eq!(shop_write.status, "partial", "{engine}");
        assert!(shop_write.answer.as_deref().unwrap_or("").contains(&victim));
        // The next run re-reads and corrects it.
        f.set.retailcrm.control.set_latency(Duration::ZERO);
        let again = run_stock(&f.config, false).await;
        assert!(again.error.is_none(), "{engine}: {:?}", again.error);
        let after = shop_quantities(&f.config).await;
        assert_eq!(after[&victim], shop_drift[0].sellable(), "{engine}");
        f.set.stop().await;
        shop_db.drop_db().await;
    }
}

#[tokio::test]
async fn a_sku_without_a_stock_row_still_gets_one() {
    for shop_db in support::engines("shop_stock_insert").await {
        let engine = shop_db.engine();
        let f = fixture(
            &shop_db.url,
            None,
            WorldSpec {
                skus: 40,
                seed: 17,
                ..WorldSpec::default()
            },
            WmsKind::Imsklad,
        )
        .await;
        let target = f
            .world
            .skus
            .iter()
            .find(|s| s.mapped && s.in_wms && s.shop_quantity.is_some() && s.sellable() > 0)
            .expect("a candidate")
            .clone();
        let shop = open_shop(&f.config).await;
        shop.db()
            .execute(
                "DELETE FROM stock WHERE sku = ?",
                &[target.sku.as_str().into()],
                "dropping a stock row",
            )
            .await
            .unwrap();
        let s = run_stock(&f.config, false).await;
        assert!(s.error.is_none(), "{engine}: {:?}", s.error);
        let after = shop_quantities(&f.config).await;
        assert_eq!(after[&target.sku], target.sellable(), "{engine}");
        let rows = report_rows(&s);
        let row = rows[&target.sku]
            .iter()
            .find(|r| r.0 == "qty_mismatch_shop")
            .expect("reported");
        assert_eq!(row.2, "applied", "{engine}");
        f.set.stop().await;
        shop_db.drop_db().await;
    }
}

#[tokio::test]
async fn an_old_adapted_stock_update_is_refused_with_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stock_update.sql"),
        "-- my shop\nUPDATE goods_stock SET qty = ?, changed = ? WHERE article = ?\n",
    )
    .unwrap();
    let err = Queries::load(Some(dir.path())).unwrap_err().to_string();
    for needle in [
        "stock_update.sql",
        "takes 3 parameters",
        "sverka binds 4",
        "compare-and-set",
        "AND quantity = ?",
    ] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    // The job refuses to start with it.
    let shop_db = support::sqlite();
    let f = fixture(
        &shop_db.url,
        None,
        WorldSpec {
            skus: 10,
            seed: 1,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let mut config = f.config.clone();
    config.shop.queries_dir = Some(dir.path().to_path_buf());
    let err = Context::open(&config, &global(false), false)
        .await
        .expect_err("refused")
        .to_string();
    assert!(err.contains("stock_update"), "{err}");
    // An adapted copy with the new parameter is accepted.
    std::fs::write(
        dir.path().join("stock_update.sql"),
        "UPDATE goods_stock SET qty = ?, changed = ? WHERE article = ? AND qty = ?\n",
    )
    .unwrap();
    assert!(Queries::load(Some(dir.path())).is_ok());
    f.set.stop().await;
}

/// Zeroes the IMSKLAD stock of `share` of the mapped SKUs (a WMS glitch).
fn zero_wms_stock(f: &Fixture, share: f64) -> Vec<String> {
    let mapped: Vec<&sverka::sandbox::world::WorldSku> = f
        .world
        .skus
        .iter()
        .filter(|s| s.mapped && s.in_wms && s.sellable() > 0)
        .collect();
    let n = (mapped.len() as f64 * share).ceil() as usize;
    let mut wms = f.set.imsklad.lock();
    mapped
        .iter()
        .take(n)
        .map(|s| {
            let id = wms.good_by_partner(&s.sku).expect("good").wms_id;
            wms.set_stock(id, 0, 0).unwrap();
            s.sku.clone()
        })
        .collect()
}

#[tokio::test]
async fn the_change_share_is_over_the_skus_the_wms_should_report() {
    let shop_db = support::sqlite();
    let f = fixture(
        &shop_db.url,
        None,
        WorldSpec {
            skus: 60,
            seed: 18,
            drift: false,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let mut config = f.config.clone();
    config.safety.max_change_share = 0.5;
    // The CRM holds many offers the shop and the WMS do not know (class `ok`).
    {
        let mut crm = f.set.retailcrm.lock();
        let store = f.set.keys.retailcrm_store.clone();
        for i in 0..400 {
            let id = format!("CRM-ONLY-{i:04}");
            crm.add_offer(Some(&id), None, "crm only", 100, &[(store.as_str(), 3.0)]);
        }
    }
    // A WMS glitch zeroes 60% of the mapped SKUs: 60% of what the WMS should report.
    let zeroed = zero_wms_stock(&f, 0.6);
    let shop_before = shop_quantities(&config).await;
    let s = run_stock(&config, false).await;
    assert_eq!(s.status, RunStatus::Guarded, "{s:?}");
    let reason = s.guard.clone().unwrap_or_default();
    assert!(reason.contains("max_change_share"), "{reason}");
    assert!(reason.contains("SKUs the WMS should report"), "{reason}");
    assert_eq!(
        shop_quantities(&config).await,
        shop_before,
        "nothing written"
    );
    assert!(uploaded_skus(&f.set).is_empty());
    assert!(!zeroed.is_empty());
    f.set.stop().await;
}

#[tokio::test]
async fn small_catalogues_are_guarded_by_a_count_not_a_share() {
    let shop_db = support::sqlite();
    let f = fixture(
        &shop_db.url,
        None,
        WorldSpec {
            skus: 12,
            seed: 19,
            drift: false,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let mut config = f.config.clone();
    config.safety.max_change_share = 0.5;
    config.safety.max_stock_drop_share = 1.0;
    // Ordinary changes of a small catalogue: more than half of it, fewer than small_max_changes.
    let changed: Vec<String> = {
        let mut wms = f.set.imsklad.lock();
        f.world
            .skus
            .iter()
            .filter(|s| s.mapped && s.in_wms && s.shop_quantity.is_some())
            .take(8)
            .map(|s| {
                let id = wms.good_by_partner(&s.sku).expect("good").wms_id;
                wms.set_stock(id, s.stock + 3, s.reserved).unwrap();
                s.sku.clone()
            })
            .collect()
    };
    assert_eq!(changed.len(), 8);
    let s = run_stock(&config, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    assert_ne!(s.status, RunStatus::Guarded, "{:?}", s.guard);
    assert_eq!(s.extra["changed_skus"], 8);
    // Below small_below, more than small_max_changes is still stopped.
    config.safety.small_max_changes = 3;
    {
        let mut wms = f.set.imsklad.lock();
        for sku in &changed {
            let id = wms.good_by_partner(sku).expect("good").wms_id;
            let (stock, reserved) = wms.stock_of(id).unwrap();
            wms.set_stock(id, stock + 2, reserved).unwrap();
        }
    }
    let s = run_stock(&config, false).await;
    assert_eq!(s.status, RunStatus::Guarded);
    let reason = s.guard.unwrap_or_default();
    assert!(reason.contains("small_max_changes = 3"), "{reason}");
    f.set.stop().await;
}

#[tokio::test]
async fn the_drop_guard_compares_with_the_last_unforced_run_with_stock() {
    for state in support::engines("drop_guard_baseline").await {
        let engine = state.engine();
        let shop_db = support::sqlite();
        let f = fixture(
            &shop_db.url,
            Some(&state.url),
            WorldSpec {
                skus: 60,
                seed: 20,
                drift: false,
                ..WorldSpec::default()
            },
            WmsKind::Imsklad,
        )
        .await;
        let mut config = f.config.clone();
        config.safety.max_change_share = 1.0;
        let first = run_stock(&config, false).await;
        assert!(first.error.is_none(), "{engine}: {:?}", first.error);
        assert_ne!(first.status, RunStatus::Guarded, "{engine}");
        // The WMS answers zero for everything: guarded; an operator forces it through.
        zero_wms_stock(&f, 1.0);
        let guarded = run_stock(&config, false).await;
        assert_eq!(guarded.status, RunStatus::Guarded, "{engine}");
        assert!(guarded
            .guard
            .unwrap_or_default()
            .contains("max_stock_drop_share"));
        let forced = run_stock(&config, true).await;
        assert!(forced.forced);
        assert_ne!(forced.status, RunStatus::Guarded, "{engine}");
        // The forced zero run is not the baseline: the next run is still compared with the first.
        let next = run_stock(&config, false).await;
        assert_eq!(next.status, RunStatus::Guarded, "{engine}: {next:?}");
        let reason = next.guard.unwrap_or_default();
        assert!(
            reason.contains("max_stock_drop_share"),
            "{engine}: {reason}"
        );
        f.set.stop().await;
        state.drop_db().await;
    }
}

#[tokio::test]
async fn a_lost_mapping_stops_before_registering_every_sku() {
    for state in support::engines("max_registrations").await {
        let engine = state.engine();
        let shop_db = support::sqlite();
        let f = fixture(
            &shop_db.url,
            Some(&state.url),
            WorldSpec {
                skus: 60,
                seed: 21,
                drift: false,
                ..WorldSpec::default()
            },
            WmsKind::Imsklad,
        )
        .await;
        let mut config = f.config.clone();
        config.safety.max_registrations = 10;
        // The id mapping is lost (a new state database, a bad restore).
        let db = sverka::db::Db::connect_state(&state.url).await.unwrap();
        db.execute("DELETE FROM id_map", &[], "losing the mapping")
            .await
            .unwrap();
        let s = run_stock(&config, false).await;
        assert_eq!(s.status, RunStatus::Guarded, "{engine}: {s:?}");
        let reason = s.guard.clone().unwrap_or_default();
        assert!(
            reason.contains("max_registrations = 10"),
            "{engine}: {reason}"
        );
        assert!(reason.contains("--force"), "{reason}");
        let looked_up = f
            .set
            .imsklad
            .control
            .requests()
            .iter()
            .filter(|r| r.body_text().contains("update_good"))
            .count();
        assert_eq!(looked_up, 0, "{engine}: nothing sent to the WMS");
        let forced = run_stock(&config, true).await;
        assert!(forced.error.is_none(), "{engine}: {:?}", forced.error);
        let looked_up = f
            .set
            .imsklad
            .control
            .requests()
            .iter()
            .filter(|r| r.body_text().contains("update_good"))
            .count();
        assert!(
            looked_up > 10,
            "{engine}: forced run looks them up ({looked_up})"
        );
        f.set.stop().await;
        state.drop_db().await;
    }
}

/// Takes the run lock of `job` away from whoever holds it in `state_url`'s
/// database: the SQLite lease expires and another holder takes it (returned,
/// to keep it held); the PostgreSQL / MySQL lock connection is killed.
async fn take_the_lock_away(state_url: &str, job: &str) -> Option<sverka::db::lock::JobLock> {
    use sverka::db::Dialect;
    let db = sverka::db::Db::connect(state_url).await.unwrap();
    match db.dialect() {
        Dialect::Sqlite => {
            let n = db
                .execute(
                    "UPDATE job_locks SET expires_at = 0 WHERE job = ?",
                    &[job.into()],
                    "expiring the lease",
                )
                .await
                .unwrap();
            assert_eq!(n, 1, "a lease to expire");
            let other = sverka::db::lock::JobLock::acquire(&db, job, Duration::from_secs(60))
                .await
                .expect("another process takes the expired lease");
            Some(other)
        }
        Dialect::Postgres => {
            let killed: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND pid <> pg_backend_pid()",
            )
            .fetch_all(db.pool())
            .await
            .unwrap();
            assert_eq!(killed, [true], "one lock connection terminated");
            None
        }
        Dialect::MySql => {
            let id: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT CAST(IS_USED_LOCK(CONCAT('sverka:', DATABASE(), ':{job}')) AS SIGNED)"
            ))
            .fetch_one(db.pool())
            .await
            .unwrap();
            let id = id.expect("the named lock is held");
            sqlx::query(&format!("KILL {id}"))
                .execute(db.pool())
                .await
                .unwrap();
            None
        }
    }
}

#[tokio::test]
async fn a_run_that_loses_its_lock_stops_before_its_next_write() {
    for state in support::engines("lock_lost_mid_run").await {
        let engine = state.engine();
        let shop_db = support::sqlite();
        let f = fixture(
            &shop_db.url,
            Some(&state.url),
            WorldSpec {
                skus: 60,
                seed: 22,
                ..WorldSpec::default()
            },
            WmsKind::Imsklad,
        )
        .await;
        let shop_before = shop_quantities(&f.config).await;
        // A slow CRM keeps the run reading while its lock is taken away.
        f.set
            .retailcrm
            .control
            .set_latency(Duration::from_millis(700));
        let config = f.config.clone();
        let job = tokio::spawn(async move { run_stock(&config, false).await });
        let crm = f.set.retailcrm.control.clone();
        wait_until("the run to read RetailCRM", || crm.arrived() >= 1).await;
        let other = take_the_lock_away(&state.url, "stock").await;
        let s = job.await.unwrap();
        assert_eq!(s.status, RunStatus::Failed, "{engine}: {s:?}");
        let error = s.error.clone().unwrap_or_default();
        assert!(
            error.contains("no longer holds the `stock` job lock"),
            "{engine}: {error}"
        );
        // Nothing was written: no upload, no shop change, no correction journaled.
        assert!(uploaded_skus(&f.set).is_empty(), "{engine}");
        assert_eq!(shop_quantities(&f.config).await, shop_before, "{engine}");
        let db = sverka::db::Db::connect_state(&state.url).await.unwrap();
        let journal = sverka::db::journal::of_run(&db, s.run_id).await.unwrap();
        assert!(journal.is_empty(), "{engine}: {journal:?}");
        // The run that holds the lock now is not disturbed by the lost run's end.
        if let Some(mut other) = other {
            other.check().await.expect("the new holder still holds it");
            other.release().await.unwrap();
        }
        f.set.stop().await;
        state.drop_db().await;
    }
}

#[tokio::test]
async fn job_locks_are_per_state_database() {
    // Two deployments on one server: each takes its own `stock` lock.
    let first = support::engines("job_locks_per_database").await;
    let second = support::engines("job_locks_per_database").await;
    for (a, b) in first.into_iter().zip(second).skip(1) {
        let engine = a.engine();
        let da = sverka::db::Db::connect_state(&a.url).await.unwrap();
        let db = sverka::db::Db::connect_state(&b.url).await.unwrap();
        let lease = Duration::from_secs(30);
        let mut la = sverka::db::lock::JobLock::acquire(&da, "stock", lease)
            .await
            .unwrap_or_else(|e| panic!("{engine}: {e}"));
        let mut lb = sverka::db::lock::JobLock::acquire(&db, "stock", lease)
            .await
            .unwrap_or_else(|e| panic!("{engine}: the other deployment's lock blocked: {e}"));
        la.check().await.unwrap();
        lb.check().await.unwrap();
        // Within one database the lock is still exclusive.
        assert!(sverka::db::lock::JobLock::acquire(&da, "stock", lease)
            .await
            .is_err());
        la.release().await.unwrap();
        lb.release().await.unwrap();
        da.close().await;
        db.close().await;
        a.drop_db().await;
        b.drop_db().await;
    }
}

#[tokio::test]
async fn an_ambiguous_add_good_is_journaled_unknown_and_not_resent() {
    use sverka::sandbox::common::{FaultKind, ScriptedFault};
    use sverka::sandbox::world::StockDrift;
    let shop_db = support::sqlite();
    let mut f = fixture(
        &shop_db.url,
        None,
        WorldSpec {
            skus: 80,
            seed: 23,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    f.config.stock.create_missing_in_wms = true;
    assert!(f
        .world
        .skus
        .iter()
        .any(|s| s.drift == StockDrift::MissingInWms && s.shop_quantity.is_some()));
    // IMSKLAD creates the first good sverka adds, but its answer is cut off.
    f.set.imsklad.control.push_fault(ScriptedFault {
        path_contains: "\"add_good\"".into(),
        skip: 0,
        times: 1,
        kind: FaultKind::Truncate,
    });
    let s = run_stock(&f.config, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    assert_eq!(s.corrections.unknown, 1, "{s:?}");
    assert_ne!(s.status, RunStatus::Clean);
    let state = sverka::db::Db::connect_state(f.config.state.database_url.expose())
        .await
        .unwrap();
    let journal = sverka::db::journal::of_run(&state, s.run_id).await.unwrap();
    let unknown = journal
        .iter()
        .find(|c| c.action == "add_good" && c.status == "unknown")
        .expect("an add_good journaled unknown");
    let sku = unknown.item_key.clone();
    assert!(
        f.set.imsklad.lock().good_by_partner(&sku).is_some(),
        "created"
    );
    let adds = f
        .set
        .imsklad
        .control
        .requests()
        .iter()
        .filter(|r| {
            let b = r.body_text();
            b.contains("\"add_good\"") && b.contains(&format!("\"{sku}\""))
        })
        .count();
    assert_eq!(adds, 1, "not re-sent after an ambiguous failure");
    let rows = report_rows(&s);
    let row = rows[&sku]
        .iter()
        .find(|r| r.0 == "missing_in_wms")
        .expect("reported");
    assert_eq!((row.1.as_str(), row.2.as_str()), ("wms_add", "unknown"));
    // The next run looks it up with update_good and maps it: nothing created twice.
    let again = run_stock(&f.config, false).await;
    assert!(again.error.is_none(), "{:?}", again.error);
    let mapped = sverka::db::mapping::get(&state, sverka::db::mapping::MapKind::Good, &sku)
        .await
        .unwrap();
    let wms_id = f.set.imsklad.lock().good_by_partner(&sku).unwrap().wms_id;
    assert_eq!(mapped, Some(wms_id.to_string()));
    f.set.stop().await;
}

/// `sverka reconcile stock` as a process: SIGTERM while it reads stops the
/// run after its current step (nothing half-written, the run recorded), as
/// the daemon does, instead of killing it mid-write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_reconcile_stops_after_the_current_step() {
    let shop_db = support::sqlite();
    let f = fixture(
        &shop_db.url,
        None,
        WorldSpec {
            skus: 60,
            seed: 24,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let k = &f.set.keys;
    let dir = f._dir.path();
    std::fs::write(
        dir.join("sverka.toml"),
        format!(
            "[state]\ndatabase_url = \"{}\"\n[shop]\ndatabase_url = \"{}\"\n\
             [imsklad]\nurl = \"{}\"\nkey = \"{}\"\nstorage_id = {}\n\
             [retailcrm]\nurl = \"{}\"\napi_key = \"{}\"\nsite = \"{}\"\nstore = \"{}\"\n\
             [safety]\nmax_change_share = 0.9\n[reports]\ndir = \"reports\"\n",
            f.config.state.database_url.expose(),
            f.config.shop.database_url.expose(),
            f.set.urls.imsklad,
            k.imsklad_key,
            k.imsklad_storage_id,
            f.set.urls.retailcrm,
            k.retailcrm_key,
            k.retailcrm_site,
            k.retailcrm_store,
        ),
    )
    .unwrap();
    let shop_before = shop_quantities(&f.config).await;
    f.set
        .retailcrm
        .control
        .set_latency(Duration::from_millis(1500));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sverka"))
        .args(["reconcile", "stock", "--json"])
        .current_dir(dir)
        .env("RUST_LOG", "sverka=info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sverka reconcile starts");
    let pid = child.id().expect("pid");
    let crm = f.set.retailcrm.control.clone();
    wait_until("the run to read RetailCRM", || crm.arrived() >= 1).await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("reconcile exits after SIGTERM")
        .expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exited by itself with a report, not killed by the signal.
    assert!(
        out.status.code().is_some(),
        "killed by the signal: {stderr}"
    );
    assert!(stderr.contains("stop requested"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!(summary["job"], "stock");
    assert_ne!(summary["status"], "running");
    assert!(
        uploaded_skus(&f.set).is_empty(),
        "nothing uploaded after the stop"
    );
    assert_eq!(
        shop_quantities(&f.config).await,
        shop_before,
        "shop untouched"
    );
    f.set.stop().await;
}

// ---------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------

/// A server that counts the requests it gets.
async fn counting_server(
    answer: impl Fn(u32) -> axum::response::Response + Clone + Send + Sync + 'static,
) -> (
    sverka::server::RunningServer,
    std::sync::Arc<std::sync::atomic::AtomicU32>,
) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let hits = std::sync::Arc::new(AtomicU32::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        let answer = answer.clone();
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            answer(n)
        }
    });
    let server = sverka::server::spawn(router, sverka::sandbox::common::any_local_port())
        .await
        .expect("server");
    (server, hits)
}

#[tokio::test]
async fn vendor_clients_follow_no_redirect_and_so_never_forward_keys() {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    let (thief, stolen) = counting_server(|_| "got it".into_response()).await;
    let target = format!("{}/steal", thief.url);
    for status in [301u16, 302, 307, 308] {
        let target = target.clone();
        let (redirector, _) = counting_server(move |_| {
            axum::response::Response::builder()
                .status(status)
                .header("Location", target.clone())
                .body(axum::body::Body::empty())
                .unwrap()
        })
        .await;
        let mut policy = sverka::connectors::http::HttpPolicy {
            max_attempts: 1,
            ..Default::default()
        };
        policy.timeout = Duration::from_secs(5);
        let mut cfg = sverka::connectors::imsklad::ImskladConfig::new(
            redirector.url.clone(),
            sverka::secret::Secret::new("the-imsklad-key"),
            1,
        );
        cfg.policy = policy.clone();
        let imsklad = sverka::connectors::imsklad::ImskladClient::new(cfg).unwrap();
        assert!(imsklad.get_stock(&[1, 2]).await.is_err(), "HTTP {status}");
        let crm = sverka::connectors::retailcrm::RetailCrmClient::new(
            sverka::connectors::retailcrm::RetailCrmConfig {
                url: redirector.url.clone(),
                api_key: sverka::secret::Secret::new("the-crm-key"),
                site: None,
                store: "main".into(),
                offer_key: sverka::connectors::retailcrm::OfferKey::ExternalId,
                rate_per_sec: 0,
                policy,
            },
        )
        .unwrap();
        assert!(crm.inventories().await.is_err(), "HTTP {status}");
        redirector.stop().await;
    }
    assert_eq!(stolen.load(Ordering::SeqCst), 0, "a redirect was followed");
    thief.stop().await;
}

#[tokio::test]
async fn paging_stops_at_total_count_even_if_the_server_repeats_pages() {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    // Every page is the same 250 offers and announces a million pages, but
    // only 300 offers in all: two pages hold them.
    let (server, hits) = counting_server(|_| {
        let offers: Vec<serde_json::Value> = (0..250)
            .map(|i| serde_json::json!({"id": i, "externalId": format!("S{i}"), "stores": []}))
            .collect();
        axum::Json(serde_json::json!({
            "success": true,
            "pagination": {"limit": 250, "totalCount": 300, "currentPage": 1, "totalPageCount": 1_000_000},
            "offers": offers,
        }))
        .into_response()
    })
    .await;
    let crm = sverka::connectors::retailcrm::RetailCrmClient::new(
        sverka::connectors::retailcrm::RetailCrmConfig {
            url: server.url.clone(),
            api_key: sverka::secret::Secret::new("k"),
            site: None,
            store: "main".into(),
            offer_key: sverka::connectors::retailcrm::OfferKey::ExternalId,
            rate_per_sec: 0,
            policy: Default::default(),
        },
    )
    .unwrap();
    let offers = tokio::time::timeout(Duration::from_secs(30), crm.inventories())
        .await
        .expect("paging ends")
        .expect("pages");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "pages read");
    assert_eq!(offers.len(), 500);
    server.stop().await;
}

#[tokio::test]
async fn answers_are_read_up_to_a_cap() {
    use axum::response::IntoResponse;
    let (server, _) = counting_server(|_| "x".repeat(5000).into_response()).await;
    let client = sverka::connectors::http::HttpPolicy::default()
        .client()
        .unwrap();
    let small = client.get(&server.url).send().await.unwrap();
    let read = sverka::connectors::http::read_capped(small, 1000)
        .await
        .unwrap();
    assert_eq!(read.unwrap_err().cap, 1000);
    let big = client.get(&server.url).send().await.unwrap();
    let read = sverka::connectors::http::read_capped(big, 10_000)
        .await
        .unwrap();
    assert_eq!(read.unwrap().len(), 5000);
    // The EGON catalogue cap holds a million cards of about 400 bytes.
    const { assert!(sverka::connectors::http::body_caps::EGON_INVENTORY >= 1_000_000 * 400) };
    server.stop().await;
}

#[tokio::test]
async fn a_stuck_shop_row_lock_fails_the_write_instead_of_hanging_the_job() {
    for shop_db in support::engines("shop_lock_timeout").await {
        let engine = shop_db.engine();
        let mut f = fixture(
            &shop_db.url,
            None,
            WorldSpec {
                skus: 60,
                seed: 25,
                ..WorldSpec::default()
            },
            WmsKind::Imsklad,
        )
        .await;
        f.config.shop.lock_timeout_secs = 2;
        let victim = f
            .world
            .skus
            .iter()
            .find(|s| {
                s.mapped
                    && matches!(
                        s.drift,
                        sverka::sandbox::world::StockDrift::ShopQuantity
                            | sverka::sandbox::world::StockDrift::Both
                    )
            })
            .expect("a shop correction")
            .sku
            .clone();
        // Somebody holds the row (or, on SQLite, the database) locked and never lets go.
        let blocker = open_shop(&f.config).await;
        let mut tx = blocker.db().pool().begin().await.unwrap();
        let sql = blocker
            .db()
            .sql("UPDATE stock SET updated_at = updated_at + 1 WHERE sku = ?")
            .into_owned();
        sqlx::query(&sql)
            .bind(victim.clone())
            .execute(&mut *tx)
            .await
            .unwrap();
        let s = tokio::time::timeout(Duration::from_secs(90), run_stock(&f.config, false))
            .await
            .unwrap_or_else(|_| panic!("{engine}: the job hung on a row lock"));
        let rows = report_rows(&s);
        let row = rows[&victim]
            .iter()
            .find(|r| r.0 == "qty_mismatch_shop")
            .expect("reported");
        assert_eq!(row.2, "failed", "{engine}: {row:?}");
        assert_ne!(s.status, RunStatus::Clean);
        tx.rollback().await.unwrap();
        f.set.stop().await;
        shop_db.drop_db().await;
    }
}

// ---------------------------------------------------------------------------
// Shared rate limits
// ---------------------------------------------------------------------------

/// Two sverka processes of one state database (`reconcile stock` and
/// `reconcile orders`) talk to one RetailCRM account at once. Each alone keeps
/// RetailCRM's 10 requests a second; together they still do, through the
/// slots they share in the state database: no 503, never more than 10
/// requests in any second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_retailcrm_s_rate_limit_through_the_state_database() {
    use sverka::sandbox::world_orders as wo;
    for state in support::engines("shared_rate_limit").await {
        let engine = state.engine();
        let shop_db = support::sqlite();
        let spec = WorldSpec {
            skus: 2500,
            orders: 1000,
            seed: 26,
            ..WorldSpec::default()
        };
        let f = fixture(&shop_db.url, Some(&state.url), spec, WmsKind::Imsklad).await;
        let orders = wo::generate_orders(&f.world, sverka::db::now_ms());
        wo::seed_orders(&f.set, &orders).await.expect("seed orders");
        let shop = open_shop(&f.config).await;
        wo::write_shop_orders(&shop, &orders)
            .await
            .expect("write orders");
        let k = &f.set.keys;
        let dir = f._dir.path();
        std::fs::write(
            dir.join("sverka.toml"),
            format!(
                "[state]\ndatabase_url = \"{}\"\n[shop]\ndatabase_url = \"{}\"\n\
                 [imsklad]\nurl = \"{}\"\nkey = \"{}\"\nstorage_id = {}\n\
                 [retailcrm]\nurl = \"{}\"\napi_key = \"{}\"\nsite = \"{}\"\nstore = \"{}\"\n\
                 [safety]\nmax_change_share = 0.9\n[reports]\ndir = \"reports\"\n",
                state.url,
                f.config.shop.database_url.expose(),
                f.set.urls.imsklad,
                k.imsklad_key,
                k.imsklad_storage_id,
                f.set.urls.retailcrm,
                k.retailcrm_key,
                k.retailcrm_site,
                k.retailcrm_store,
            ),
        )
        .unwrap();
        // A network latency keeps both processes talking to RetailCRM for a while.
        f.set
            .retailcrm
            .control
            .set_latency(Duration::from_millis(100));
        let spawn = |job: &str| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_sverka"))
                .args(["reconcile", job, "--json"])
                .current_dir(dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("sverka reconcile starts")
        };
        let mut attempt = 0;
        let (requests, max, rejected, sn, on) = loop {
            attempt += 1;
            f.set.retailcrm.control.clear_requests();
            let (stock, orders_job) = (spawn("stock"), spawn("orders"));
            let (a, b) = tokio::join!(stock.wait_with_output(), orders_job.wait_with_output());
            let (a, b) = (a.expect("stock output"), b.expect("orders output"));
            for (job, out) in [("stock", &a), ("orders", &b)] {
                let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| {
                        panic!(
                            "{engine} {job}: {e}: {}",
                            String::from_utf8_lossy(&out.stderr)
                        )
                    });
                assert!(
                    summary["error"].is_null(),
                    "{engine} {job}: {}",
                    summary["error"]
                );
            }
            let requests = f.set.retailcrm.control.requests();
            let rejected = requests
                .iter()
                .filter(|r| r.status == 503 || r.status == 429)
                .count();
            assert_eq!(rejected, 0, "{engine}: requests refused by the rate limit");
            let max = f
                .set
                .retailcrm
                .control
                .max_requests_per(Duration::from_secs(1));
            assert!(max <= 10, "{engine}: {max} requests in one second");
            // The two really ran at once.
            let span = |needle: &str| {
                let at: Vec<std::time::Instant> = requests
                    .iter()
                    .filter(|r| r.path.ends_with(needle))
                    .map(|r| r.instant)
                    .collect();
                (at.iter().min().copied(), at.iter().max().copied(), at.len())
            };
            let (s0, s1, sn) = span("/store/inventories");
            let (o0, o1, on) = span("/orders");
            assert!(
                sn >= 5 && on >= 5,
                "{engine}: {sn} inventory and {on} order requests"
            );
            if s0 < o1 && o0 < s1 {
                break (requests, max, rejected, sn, on);
            }
            // On a loaded machine one process may start after the other ended:
            // that run proved nothing about sharing, so it runs again.
            assert!(
                attempt < 3,
                "{engine}: the processes did not overlap in 3 attempts"
            );
            eprintln!("{engine}: attempt {attempt}: the processes did not overlap; again");
        };
        eprintln!(
            "{engine}: {} RetailCRM requests ({sn} inventory pages, {on} order pages), at most {max} in one second, {rejected} refused",
            requests.len()
        );
        f.set.stop().await;
        state.drop_db().await;
    }
}

/// Whether a recorded vendor request writes: RetailCRM writes are POSTs, an
/// IMSKLAD action writes unless it is a `get_…`, an EGON `req_method` writes
/// unless it is `InventoryDetail` or `GetOrderStatus`.
fn is_write(r: &sverka::sandbox::common::RecordedRequest) -> bool {
    match r.vendor {
        "imsklad" => {
            let action = serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| v["action"].as_str().map(str::to_string))
                .unwrap_or_default();
            !action.starts_with("get_")
        }
        "egon" => {
            let body = r.body_text();
            !(body.contains("InventoryDetail") || body.contains("GetOrderStatus"))
        }
        _ => r.method != "GET",
    }
}

/// Every vendor request since the last clear, in arrival order, as
/// `(vendor, method path, writes)`.
fn requests_in_order(set: &SandboxSet) -> Vec<(String, String, bool)> {
    let mut all: Vec<_> = [
        set.imsklad.control.requests(),
        set.retailcrm.control.requests(),
        set.egon.control.requests(),
    ]
    .concat();
    all.sort_by_key(|r| r.instant);
    all.iter()
        .map(|r| {
            (
                r.vendor.to_string(),
                format!("{} {}", r.method, r.path),
                is_write(r),
            )
        })
        .collect()
}

fn clear_requests(set: &SandboxSet) {
    set.imsklad.control.clear_requests();
    set.retailcrm.control.clear_requests();
    set.egon.control.clear_requests();
}

/// "No source is read after the first write", for sverka's own state too:
/// the stored copy of an order that the listener replaces while the orders
/// job is already writing is not what the job's cancellation re-sends (it
/// read the copies with everything else, before its first write).
#[tokio::test]
async fn the_orders_job_sends_the_order_copies_it_read_before_its_first_write() {
    use sverka::db::protocol::{self, origin};
    use sverka::sandbox::world_orders::OrderDrift;
    let shop_db = support::sqlite();
    let f = crate::orders::fixture(&shop_db, WmsKind::Imsklad, 60).await;
    let mut stored = None;
    for o in f
        .orders
        .iter()
        .filter(|o| o.drift == OrderDrift::CancelledInShopActiveInWms)
    {
        if let Some(doc) = protocol::order_document(&f.state, &o.id).await.unwrap() {
            stored = Some(doc);
            break;
        }
    }
    let stored = stored.expect("the world keeps a copy of an order to cancel");
    let mut late: serde_json::Value = sverka::lenient::from_str(&stored.body).unwrap();
    late["name"] = "a copy stored after the run's first write".into();
    // The CRM's edits go out first and slowly: the copy changes meanwhile.
    f.set
        .retailcrm
        .control
        .set_latency(Duration::from_millis(150));
    let config = f.config.clone();
    let run = tokio::spawn(async move { crate::orders::run_orders(&config, false, false).await });
    let crm = f.set.retailcrm.control.clone();
    wait_until("the run's first CRM write", || {
        crm.requests().iter().any(|r| r.method != "GET")
    })
    .await;
    let body = late.to_string();
    protocol::put_order_document(&f.state, &stored.order_id, origin::RECEIVED, &body)
        .await
        .unwrap();
    let summary = run.await.expect("the run ends");
    assert!(summary.error.is_none(), "{:?}", summary.error);
    let cancels: Vec<serde_json::Value> = f
        .set
        .imsklad
        .control
        .requests()
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter(|v| v["action"] == "update_order" && v["data"]["id"] == stored.order_id.as_str())
        .collect();
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    let first: serde_json::Value = sverka::lenient::from_str(&stored.body).unwrap();
    assert_eq!(
        cancels[0]["data"]["name"], first["name"],
        "{:?}",
        cancels[0]
    );
    f.listener.stop().await;
    f.set.stop().await;
}

/// "Read, plan, guard, then write": the stock and orders jobs read every
/// vendor source before their first write; no read reaches a vendor after it.
#[tokio::test]
async fn a_job_reads_every_source_before_its_first_write() {
    for wms in [WmsKind::Imsklad, WmsKind::Egon] {
        let shop_db = support::sqlite();
        let f = crate::orders::fixture(&shop_db, wms, 60).await;
        let mut config = f.config.clone();
        config.stock.create_missing_in_wms = true;
        for job in ["stock", "orders"] {
            clear_requests(&f.set);
            let summary = match job {
                "stock" => crate::stock::run_stock(&config, false, false).await,
                _ => crate::orders::run_orders(&config, false, false).await,
            };
            assert!(
                summary.error.is_none(),
                "{wms:?} {job}: {:?}",
                summary.error
            );
            let log = requests_in_order(&f.set);
            let first_write = log.iter().position(|(_, _, w)| *w);
            assert!(
                first_write.is_some(),
                "{wms:?} {job}: the drifted world needs corrections: {log:?}"
            );
            let late_reads: Vec<&(String, String, bool)> = log[first_write.unwrap_or(0)..]
                .iter()
                .filter(|(_, _, w)| !*w)
                .collect();
            assert!(
                late_reads.is_empty(),
                "{wms:?} {job}: read after the first write ({:?}): {late_reads:?}",
                log[first_write.unwrap_or(0)]
            );
        }
    }
}

/// "No source is read after the first write", for the shop: the records a
/// WMS registration sends are the catalogue as the run read it with the
/// other sources, not as it stands once the run has written the shop's
/// quantities. The products query here reports in each record's description
/// the shop's total quantity, which the run's own shop write changes.
#[tokio::test]
async fn a_wms_registration_sends_the_catalogue_read_before_the_first_write() {
    let shop_db = support::sqlite();
    let f = fixture(
        &shop_db.url,
        None,
        WorldSpec {
            skus: 60,
            seed: 7,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let queries = tempfile::tempdir().unwrap();
    std::fs::write(
        queries.path().join("products_select.sql"),
        "SELECT p.sku, p.name, \
           (SELECT 'shop total ' || COALESCE(SUM(s.quantity), 0) FROM stock s) AS description, \
           p.price_kop, p.cost_kop, p.weight_g, p.ean, p.supplier_id \
         FROM products p WHERE p.active = 1 ORDER BY p.sku\n",
    )
    .unwrap();
    let mut config = f.config.clone();
    config.shop.queries_dir = Some(queries.path().to_path_buf());
    config.stock.create_missing_in_wms = true;
    config.safety.max_change_share = 1.0;
    let shop = Shop::new(
        sverka::db::Db::connect(config.shop.database_url.expose())
            .await
            .expect("shop db"),
        Queries::load(Some(queries.path())).expect("queries"),
    );
    let total = || async {
        let products = shop.products().await.expect("catalogue");
        products[0].description.clone().expect("a description")
    };
    let before = total().await;
    f.set.imsklad.control.clear_requests();
    let s = run_stock(&config, false).await;
    assert!(s.error.is_none(), "{s:?}");
    let after = total().await;
    assert_ne!(before, after, "the run writes the shop's quantities: {s:?}");
    let sent: Vec<serde_json::Value> = f
        .set
        .imsklad
        .control
        .requests()
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter(|v| matches!(v["action"].as_str(), Some("update_good" | "add_good")))
        .collect();
    assert!(
        !sent.is_empty(),
        "the drifted world has SKUs unknown to the WMS"
    );
    for body in &sent {
        let text = body.to_string();
        assert!(text.contains(&before), "{before:?} not in {text}");
        assert!(!text.contains(&after), "{after:?} in {text}");
    }
    f.set.stop().await;
}
