//! `reconcile stock` end to end on the sandbox world: real HTTP, real databases.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sverka::config::{Config, WmsKind};
use sverka::db::journal;
use sverka::db::runs::RunStatus;
use sverka::jobs::{stock, Context};
use sverka::options::RunOptions;
use sverka::report::summary::JobSummary;
use sverka::sandbox::common::{FaultKind, ScriptedFault};
use sverka::sandbox::world::{StockDrift, World, WorldSpec};
use sverka::sandbox::SandboxSet;
use sverka::shop::{Queries, Shop};

use crate::support;

/// A sandbox world loaded into the servers and a shop database.
pub struct Fixture {
    pub set: SandboxSet,
    pub world: World,
    pub config: Config,
    pub _dir: tempfile::TempDir,
    pub shop_db: support::TestDb,
}

pub async fn fixture(shop_db: support::TestDb, spec: WorldSpec, wms: WmsKind) -> Fixture {
    let mut opts = support::WorldOptions::new(spec, wms);
    opts.sandbox.rate_limits = true;
    let w = support::TestWorld::spawn(&shop_db, opts).await;
    Fixture {
        set: w.set,
        world: w.world,
        config: w.config,
        _dir: w.dir,
        shop_db,
    }
}

pub(crate) async fn open_shop(config: &Config) -> Shop {
    let db = sverka::db::Db::connect(config.shop.database_url.expose())
        .await
        .expect("shop db");
    Shop::new(db, Queries::builtin())
}

pub fn global(dry_run: bool) -> RunOptions {
    RunOptions {
        config: None,
        dry_run,
        report_dir: None,
        json: true,
        log_format: sverka::options::LogFormat::Human,
    }
}

pub async fn run_stock(config: &Config, dry_run: bool, force: bool) -> JobSummary {
    let mut ctx = Context::open(config, &global(dry_run), force)
        .await
        .expect("context");
    ctx.http.max_attempts = 2;
    ctx.http.base_backoff = Duration::from_millis(20);
    ctx.http.timeout = Duration::from_secs(5);
    stock::run(&ctx).await
}

/// The report's rows as (sku, class) → (action, result).
pub(crate) fn report(summary: &JobSummary) -> BTreeMap<(String, String), (String, String)> {
    let path = summary.reports.first().expect("a report");
    let mut rdr = csv::Reader::from_path(path).expect("report readable");
    let headers = rdr.headers().expect("header").clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        stock::REPORT_COLUMNS.to_vec()
    );
    rdr.records()
        .map(|r| {
            let r = r.expect("row");
            (
                (r[0].to_string(), r[8].to_string()),
                (r[9].to_string(), r[10].to_string()),
            )
        })
        .collect()
}

fn upload_requests(set: &SandboxSet) -> usize {
    set.retailcrm
        .control
        .requests_to("/store/inventories/upload")
        .len()
}

fn classes(rows: &BTreeMap<(String, String), (String, String)>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, class) in rows.keys() {
        *out.entry(class.clone()).or_insert(0) += 1;
    }
    out
}

/// After a run, the CRM and the shop equal the WMS's sellable stock for every SKU all three know.
async fn assert_in_sync(f: &Fixture) {
    let shop = open_shop(&f.config).await;
    let shop_stock: BTreeMap<String, i64> = shop
        .stock()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.sku, s.quantity))
        .collect();
    let wms = f.set.imsklad.lock();
    let crm = f.set.retailcrm.lock();
    let store = &f.set.keys.retailcrm_store;
    let mut checked = 0;
    for s in &f.world.skus {
        let Some(good) = wms.good_by_partner(&s.sku) else {
            continue;
        };
        let (stock, reserved) = wms.stock_of(good.wms_id).unwrap_or((0, 0));
        let sellable = (stock - reserved).max(0);
        if let Some(q) = crm.quantity(&s.sku, store) {
            assert_eq!(
                q as i64, sellable,
                "CRM quantity of {} ({:?})",
                s.sku, s.drift
            );
        }
        if let Some(q) = shop_stock.get(&s.sku) {
            assert_eq!(*q, sellable, "shop quantity of {} ({:?})", s.sku, s.drift);
        }
        checked += 1;
    }
    assert!(checked > 0);
}

#[tokio::test]
async fn stock_end_to_end_on_every_shop_engine() {
    for shop_db in support::engines("stock_end_to_end").await {
        let engine = shop_db.engine();
        let f = fixture(
            shop_db,
            WorldSpec {
                skus: 700,
                ..WorldSpec::default()
            },
            WmsKind::Imsklad,
        )
        .await;
        // Push the CRM out of line for a block of SKUs so uploads need several chunks.
        {
            let mut crm = f.set.retailcrm.lock();
            // Only SKUs without other drift: an unmapped SKU is mapped by the first run and
            // compared from the next one, so its quantities are left as the world made them.
            for s in f
                .world
                .skus
                .iter()
                .skip(100)
                .take(350)
                .filter(|s| s.drift == StockDrift::None)
            {
                if let Some(q) = s.crm_quantity {
                    crm.set_quantity(&s.sku, &f.set.keys.retailcrm_store, (q + 1) as f64)
                        .unwrap();
                }
            }
        }

        let first = run_stock(&f.config, false, false).await;
        assert!(first.error.is_none(), "{engine}: {:?}", first.error);
        assert_eq!(
            first.status,
            RunStatus::Discrepancies,
            "{engine}: report-only classes remain"
        );
        let rows = report(&first);
        let by_class = classes(&rows);
        for class in [
            "qty_mismatch_crm",
            "qty_mismatch_shop",
            "missing_in_wms",
            "missing_in_crm",
            "missing_in_shop",
            "reserved_exceeds_stock",
        ] {
            assert!(
                by_class.get(class).copied().unwrap_or(0) >= 1,
                "{engine}: no {class} in {by_class:?}"
            );
        }
        assert!(
            !by_class.contains_key("ok"),
            "ok rows are counted, not reported"
        );
        assert_eq!(
            first.counts.get("qty_mismatch_crm").copied().unwrap_or(0) as usize,
            by_class["qty_mismatch_crm"]
        );

        // Every CRM correction applied, in ceil(changed / 250) requests.
        let changed = by_class["qty_mismatch_crm"];
        assert!(
            changed > 250,
            "the test needs more than one chunk, got {changed}"
        );
        assert_eq!(upload_requests(&f.set), changed.div_ceil(250), "{engine}");
        for ((_, class), (action, result)) in &rows {
            if class == "qty_mismatch_crm" {
                assert_eq!(
                    (action.as_str(), result.as_str()),
                    ("crm_upload", "applied")
                );
            }
            if class == "qty_mismatch_shop" {
                assert_eq!(
                    (action.as_str(), result.as_str()),
                    ("shop_update", "applied")
                );
            }
        }
        // Unmapped but known SKUs get mapped; unknown ones are reported.
        for s in &f.world.skus {
            let key = (s.sku.clone(), "missing_in_wms".to_string());
            match s.drift {
                StockDrift::Unmapped if s.shop_quantity.is_some() => {
                    assert_eq!(
                        rows[&key],
                        ("wms_register".to_string(), "applied".to_string()),
                        "{}",
                        s.sku
                    )
                }
                StockDrift::MissingInWms => assert_eq!(rows[&key].0, "report", "{}", s.sku),
                _ => {}
            }
        }
        assert_in_sync(&f).await;

        // A second run finds nothing to correct and sends nothing.
        let uploads_before = upload_requests(&f.set);
        let wms_writes_before = f.set.imsklad.control.requests().len();
        let second = run_stock(&f.config, false, false).await;
        assert!(second.error.is_none(), "{engine}: {:?}", second.error);
        assert_eq!(
            second.counts.get("qty_mismatch_crm"),
            None,
            "{engine}: {:?}",
            second.counts
        );
        assert_eq!(second.counts.get("qty_mismatch_shop"), None, "{engine}");
        assert_eq!(
            second.corrections.planned as usize,
            second.counts.get("missing_in_wms").copied().unwrap_or(0) as usize
        );
        assert_eq!(second.corrections.applied, 0);
        assert_eq!(
            upload_requests(&f.set),
            uploads_before,
            "{engine}: second run uploaded"
        );
        let wms_requests = f.set.imsklad.control.requests();
        assert!(
            wms_requests[wms_writes_before..]
                .iter()
                .all(|r| r.body_text().contains("\"get_stock\"")),
            "{engine}: the second run only reads the WMS"
        );
        f.set.stop().await;
        f.shop_db.drop_db().await;
    }
}

#[tokio::test]
async fn dry_run_sends_nothing_and_reports_the_same_classes() {
    let f = fixture(
        support::sqlite(),
        WorldSpec {
            skus: 300,
            seed: 9,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let dry = run_stock(&f.config, true, false).await;
    assert!(dry.error.is_none(), "{:?}", dry.error);
    assert!(dry.dry_run);
    assert_eq!(upload_requests(&f.set), 0, "dry run uploaded");
    assert!(f
        .set
        .imsklad
        .control
        .requests()
        .iter()
        .all(|r| r.body_text().contains("\"get_stock\"")));
    let dry_rows = report(&dry);
    assert!(dry_rows
        .values()
        .filter(|(a, _)| a != "report")
        .all(|(_, r)| r == "dry-run"));
    let shop = open_shop(&f.config).await;
    let before: Vec<_> = shop.stock().await.unwrap();
    for s in &f.world.skus {
        if let Some(q) = s.shop_quantity {
            let got = before.iter().find(|x| x.sku == s.sku).map(|x| x.quantity);
            assert_eq!(got, Some(q), "dry run changed the shop");
        }
    }
    let real = run_stock(&f.config, false, false).await;
    let real_rows = report(&real);
    assert_eq!(classes(&dry_rows), classes(&real_rows));
    assert_eq!(dry.counts, real.counts);
    f.set.stop().await;
}

#[tokio::test]
async fn guards_stop_the_run_when_the_wms_answers_nothing_or_half() {
    for hide_half in [false, true] {
        let f = fixture(
            support::sqlite(),
            WorldSpec {
                skus: 200,
                seed: 5,
                ..WorldSpec::default()
            },
            WmsKind::Imsklad,
        )
        .await;
        {
            let mut wms = f.set.imsklad.lock();
            if hide_half {
                let ids: Vec<i64> = wms.goods().map(|g| g.wms_id).collect();
                wms.hidden_stock = ids.iter().step_by(2).copied().collect();
            } else {
                wms.empty_stock = true;
            }
        }
        let shop = open_shop(&f.config).await;
        let before = shop.stock().await.unwrap();
        let s = run_stock(&f.config, false, false).await;
        assert_eq!(s.status, RunStatus::Guarded, "hide_half={hide_half}: {s:?}");
        assert_eq!(s.exit_code(), 2);
        let reason = s.guard.clone().expect("a reason");
        assert!(reason.contains("WMS"), "{reason}");
        assert_eq!(upload_requests(&f.set), 0, "nothing uploaded");
        assert_eq!(shop.stock().await.unwrap(), before, "shop untouched");
        let rows = report(&s);
        assert!(rows
            .values()
            .filter(|(a, _)| a != "report")
            .all(|(_, r)| r == "guarded"));

        // --force overrides and is recorded.
        if hide_half {
            let forced = run_stock(&f.config, false, true).await;
            assert!(forced.forced);
            assert_ne!(forced.status, RunStatus::Guarded);
            let state = sverka::db::Db::connect_state(f.config.state.database_url.expose())
                .await
                .unwrap();
            let run = sverka::db::runs::get(&state, forced.run_id)
                .await
                .unwrap()
                .unwrap();
            assert!(run.forced);
            assert!(run.summary["forced_past"]
                .as_str()
                .unwrap_or("")
                .contains("WMS"));
        }
        f.set.stop().await;
    }
}

#[tokio::test]
async fn a_failed_upload_chunk_is_journaled_and_completed_by_the_next_run() {
    let mut f = fixture(
        support::sqlite(),
        WorldSpec {
            skus: 600,
            seed: 11,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    {
        let mut crm = f.set.retailcrm.lock();
        for s in f
            .world
            .skus
            .iter()
            .take(560)
            .filter(|s| s.drift == StockDrift::None)
        {
            if let Some(q) = s.crm_quantity {
                crm.set_quantity(&s.sku, &f.set.keys.retailcrm_store, (q + 2) as f64)
                    .unwrap();
            }
        }
    }
    // Nearly every mapped SKU changes: the share guard is not what this test is about.
    f.config.safety.max_change_share = 1.0;
    // The first chunk goes through; every later upload attempt fails.
    f.set.retailcrm.control.push_fault(ScriptedFault {
        path_contains: "/store/inventories/upload".into(),
        skip: 1,
        times: 1000,
        kind: FaultKind::Status(500),
    });
    let first = run_stock(&f.config, false, false).await;
    assert_eq!(first.status, RunStatus::Discrepancies);
    assert!(first.corrections.failed >= 1);
    let state = sverka::db::Db::connect_state(f.config.state.database_url.expose())
        .await
        .unwrap();
    let journal_rows = journal::of_run(&state, first.run_id).await.unwrap();
    let uploads: Vec<_> = journal_rows
        .iter()
        .filter(|c| c.action == "inventories_upload")
        .collect();
    // The first chunk goes alone; the other two are then in flight together.
    assert_eq!(uploads.len(), 3, "{uploads:?}");
    assert_eq!(uploads[0].status, "applied");
    assert_eq!(uploads[1].status, "failed");
    assert_eq!(uploads[2].status, "failed");
    let applied: Vec<String> = offers_of(&uploads[0].payload);
    assert_eq!(applied.len(), 250);

    // The CRM recovers; the next run sends only what is still needed.
    f.set.retailcrm.control.set_faults(Default::default());
    f.set.retailcrm.control.clear_requests();
    let second = run_stock(&f.config, false, false).await;
    assert!(second.error.is_none(), "{:?}", second.error);
    let sent: Vec<String> = f
        .set
        .retailcrm
        .control
        .requests_to("/store/inventories/upload")
        .iter()
        .flat_map(|r| {
            let offers: serde_json::Value =
                serde_json::from_str(&r.form_field("offers").unwrap()).unwrap();
            offers
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["externalId"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!sent.is_empty());
    for sku in &sent {
        assert!(
            !applied.contains(sku),
            "{sku} was re-sent although its chunk was applied"
        );
    }
    assert_in_sync(&f).await;
    f.set.stop().await;
}

/// The most `requests` that arrived within any window of `per`.
fn max_within(requests: &[sverka::sandbox::common::RecordedRequest], per: Duration) -> usize {
    let mut stamps: Vec<std::time::Instant> = requests.iter().map(|r| r.instant).collect();
    stamps.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..stamps.len() {
        while stamps[hi].duration_since(stamps[lo]) >= per {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[tokio::test]
async fn uploads_overlap_within_the_rate_limit_and_a_failed_first_chunk_stops_the_rest() {
    let mut f = fixture(
        support::sqlite(),
        WorldSpec {
            skus: 3000,
            drift: false,
            seed: 5,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let push_out = |f: &Fixture, by: i64| {
        let mut crm = f.set.retailcrm.lock();
        for s in &f.world.skus {
            if let Some(q) = s.crm_quantity {
                crm.set_quantity(&s.sku, &f.set.keys.retailcrm_store, (q + by) as f64)
                    .unwrap();
            }
        }
    };
    push_out(&f, 2);
    f.config.safety.max_change_share = 1.0;
    let latency = Duration::from_millis(150);
    f.set.retailcrm.control.set_latency(latency);
    let first = run_stock(&f.config, false, false).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    let rows = report(&first);
    let fixed: Vec<_> = rows
        .iter()
        .filter(|((_, class), _)| class == "qty_mismatch_crm")
        .collect();
    assert!(
        fixed.len() > 250 * 10,
        "more chunks than the limit allows a second: {}",
        fixed.len()
    );
    for (key, fate) in &fixed {
        assert_eq!(
            (fate.0.as_str(), fate.1.as_str()),
            ("crm_upload", "applied"),
            "{key:?}"
        );
    }
    let crm = &f.set.retailcrm.control;
    let uploads = crm.requests_to("/store/inventories/upload");
    assert_eq!(uploads.len(), fixed.len().div_ceil(250));
    // Nothing over the limit: the sandbox enforces 10 a second (503 beyond).
    let all = crm.requests();
    assert!(
        all.iter().all(|r| r.status == 200),
        "{:?}",
        all.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(crm.max_requests_per(Duration::from_secs(1)) <= 10);
    assert!(max_within(&uploads, Duration::from_secs(1)) <= 10);
    // Uploads overlap: one after another, each would wait for the answer
    // (150 ms) of the one before.
    assert!(
        max_within(&uploads, latency / 2) >= 2,
        "uploads went one after another"
    );
    // Journaled in batch order, each settled applied.
    let state = sverka::db::Db::connect_state(f.config.state.database_url.expose())
        .await
        .unwrap();
    let journaled: Vec<_> = journal::of_run(&state, first.run_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.action == "inventories_upload")
        .collect();
    assert_eq!(journaled.len(), uploads.len());
    assert!(journaled.iter().all(|c| c.status == "applied"));
    let skus: Vec<String> = journaled
        .iter()
        .flat_map(|c| offers_of(&c.payload))
        .collect();
    let mut sorted = skus.clone();
    sorted.sort();
    assert_eq!(skus, sorted, "batches journaled in order");
    assert_in_sync(&f).await;

    // A CRM that fails the first chunk is sent nothing else.
    push_out(&f, 3);
    f.set.retailcrm.control.clear_requests();
    f.set.retailcrm.control.push_fault(ScriptedFault {
        path_contains: "/store/inventories/upload".into(),
        skip: 0,
        times: 1000,
        kind: FaultKind::Status(500),
    });
    let second = run_stock(&f.config, false, false).await;
    let journaled: Vec<_> = journal::of_run(&state, second.run_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.action == "inventories_upload")
        .collect();
    assert_eq!(journaled.len(), 1, "{journaled:?}");
    assert_eq!(journaled[0].status, "failed");
    // Two attempts of the one chunk (`run_stock` allows two).
    assert_eq!(upload_requests(&f.set), 2);
    let results = classes_by_result(&report(&second), "qty_mismatch_crm");
    assert_eq!(results.get("failed"), Some(&250), "{results:?}");
    assert_eq!(
        results.get("skipped").copied().unwrap_or(0) + 250,
        fixed.len(),
        "{results:?}"
    );
    f.set.stop().await;
}

/// How many rows of `class` have each result.
fn classes_by_result(
    rows: &BTreeMap<(String, String), (String, String)>,
    class: &str,
) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for ((_, c), (_, result)) in rows {
        if c == class {
            *out.entry(result.clone()).or_insert(0) += 1;
        }
    }
    out
}

fn offers_of(payload: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap();
    v["offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["sku"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_second_concurrent_run_is_refused() {
    let f = fixture(
        support::sqlite(),
        WorldSpec {
            skus: 50,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let state = sverka::db::Db::connect_state(f.config.state.database_url.expose())
        .await
        .unwrap();
    let held = sverka::db::lock::JobLock::acquire(&state, "stock", Duration::from_secs(30))
        .await
        .unwrap();
    let s = run_stock(&f.config, false, false).await;
    assert_eq!(s.status, RunStatus::Skipped);
    assert_eq!(s.exit_code(), 2);
    assert!(s.error.unwrap().contains("already running"));
    held.release().await.unwrap();
    let ok = run_stock(&f.config, false, false).await;
    assert_ne!(ok.status, RunStatus::Skipped);
    f.set.stop().await;
}

#[allow(dead_code)]
fn exists(p: &Path) -> bool {
    p.exists()
}

#[tokio::test]
async fn stock_with_egon_and_its_inventory_callbacks() {
    use sverka::sandbox::egon::{send_callback, Transport};
    let f = fixture(
        support::sqlite(),
        WorldSpec {
            skus: 300,
            seed: 21,
            ..WorldSpec::default()
        },
        WmsKind::Egon,
    )
    .await;
    // A listener on the same state DB receives EGON's InventoryStatusUpdate for one SKU,
    // newer than the card's changed_at: its figures win.
    let state = sverka::db::Db::connect_state(f.config.state.database_url.expose())
        .await
        .unwrap();
    let shop = open_shop(&f.config).await;
    let listener =
        support::spawn_listener_with(sverka::demo::listener_settings(&f.config), &state, &shop)
            .await;
    let pushed_sku = f
        .world
        .skus
        .iter()
        .find(|s| s.drift == StockDrift::None && s.in_wms)
        .unwrap()
        .sku
        .clone();
    let payload = {
        let mut egon = f.set.egon.lock();
        // EGON's card changes after the detail would be read: the callback carries ALL = 77.
        let counts = sverka::connectors::egon::CountTypes {
            all: 77,
            reserved: 7,
            ..Default::default()
        };
        egon.add_item(&pushed_sku, counts);
        let p = egon.inventory_status_update_payload(&[pushed_sku.as_str()]);
        // ...but the detail still shows the old figures (EGON's detail lags behind).
        let old = f.world.skus.iter().find(|s| s.sku == pushed_sku).unwrap();
        egon.add_item(
            &pushed_sku,
            sverka::connectors::egon::CountTypes {
                all: old.stock,
                reserved: old.reserved,
                ..Default::default()
            },
        );
        p
    };
    let (status, body) = send_callback(
        &format!("{}/egon", listener.url),
        &f.set.keys.egon_auth_id,
        &f.set.keys.egon_auth_key,
        "InventoryStatusUpdate",
        &payload,
        Transport::FormReq,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"resp_status\":1"), "{body}");

    let s = run_stock(&f.config, false, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    let rows = report(&s);
    let by_class = classes(&rows);
    for class in [
        "qty_mismatch_crm",
        "qty_mismatch_shop",
        "missing_in_wms",
        "missing_in_crm",
        "reserved_exceeds_stock",
    ] {
        assert!(by_class.contains_key(class), "no {class}: {by_class:?}");
    }
    // The CRM and the shop now equal EGON's sellable stock; the pushed SKU took the callback's 70.
    let shop_stock: BTreeMap<String, i64> = shop
        .stock()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.sku, s.quantity))
        .collect();
    {
        let crm = f.set.retailcrm.lock();
        let egon = f.set.egon.lock();
        for w in &f.world.skus {
            let Some(card) = egon.item(&w.sku) else {
                continue;
            };
            let expected = if w.sku == pushed_sku {
                70
            } else {
                card.counts.sellable()
            };
            if let Some(q) = crm.quantity(&w.sku, &f.set.keys.retailcrm_store) {
                assert_eq!(q as i64, expected, "CRM {}", w.sku);
            }
            if let Some(q) = shop_stock.get(&w.sku) {
                assert_eq!(*q, expected, "shop {}", w.sku);
            }
        }
    }

    // RetailCRM's inventoriesUpload callback answers the same sellable figures.
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/retailcrm/inventories", listener.url))
        .form(&[("clientId", f.set.keys.retailcrm_client_id.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
    let offers = answer["offers"].as_array().unwrap();
    let pushed = offers
        .iter()
        .find(|o| o["externalId"] == pushed_sku.as_str())
        .expect("pushed SKU offered");
    assert_eq!(pushed["stores"][0]["available"], 70);
    listener.stop().await;
    f.set.stop().await;
}

#[tokio::test]
async fn offers_the_crm_no_longer_knows_become_missing_in_crm() {
    let f = fixture(
        support::sqlite(),
        WorldSpec {
            skus: 100,
            seed: 3,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let victim = f
        .world
        .skus
        .iter()
        .find(|s| s.drift == StockDrift::CrmQuantity)
        .unwrap()
        .sku
        .clone();
    f.set
        .retailcrm
        .lock()
        .vanish_on_upload
        .insert(victim.clone());
    let s = run_stock(&f.config, false, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    let rows = report(&s);
    assert_eq!(
        rows[&(victim.clone(), "qty_mismatch_crm".to_string())].1,
        "not_found"
    );
    assert!(
        rows.contains_key(&(victim.clone(), "missing_in_crm".to_string())),
        "{victim} not reported missing_in_crm"
    );
    assert!(s.counts["missing_in_crm"] >= 1);
    f.set.stop().await;
}
