//! IMSHOP marking scans end to end: scans registered through a real listener
//! by the IMSHOP sandbox, then `reconcile scans` re-checking and pushing their
//! statuses to the sandbox's receiver over real HTTP.

use serde_json::Value;
use std::time::Duration;

use base64::Engine;
use sverka::config::Config;
use sverka::db::events::{self, ScanStatus};
use sverka::db::journal;
use sverka::db::runs::RunStatus;
use sverka::db::Db;
use sverka::jobs::{scans, Context, StopSignal};
use sverka::listener::{self, ListenerSettings};
use sverka::report::summary::JobSummary;
use sverka::sandbox::common::any_local_port;
use sverka::sandbox::imshop::{send_history, send_scan, ImshopSandbox, SAMPLE_SCAN_REQUEST};
use sverka::secret::Secret;
use sverka::server::RunningServer;
use sverka::shop::{Queries, Shop};

use crate::support::{self, TestWorld, WorldOptions};

const HOOK_KEY: &str = "scans-hook-key";
const USER: &str = "79991234567";
/// The seed's sample barcode and what it decodes to.
const SAMPLE_BARCODE: &str = "YXNkYXNkIGpha2RzIGxha2RzYWE=";
const SAMPLE_CODE: &str = "asdasd jakds lakdsaa";
/// GS1 DataMatrix codes with group separators (ASCII 29).
const GS1_RAW: &str = "0104601234567890215Nt7r+\u{1d}93dGVz";
const GS1_B64: &str = "0104601234567890215Abc12\u{1d}93QwEr";

/// The IMSHOP push key: the world's IMSHOP sandbox's.
fn push_key() -> String {
    sverka::sandbox::SandboxKeys::default().imshop_key
}

struct Fixture {
    world: TestWorld,
    shop_db: support::TestDb,
    state: Db,
    listener: RunningServer,
    listener_shop: Shop,
    imshop: ImshopSandbox,
    imshop_url: String,
    config: Config,
}

async fn open_shop(url: &str) -> Shop {
    Shop::new(Db::connect(url).await.expect("shop db"), Queries::builtin())
}

/// The product and marking codes the scans name.
async fn seed_shop(shop: &Shop) {
    shop.db()
        .execute(
            "INSERT INTO products (sku, name, description, price_kop, cost_kop, weight_g, ean, supplier_id) \
             VALUES ('124323', 'Тестовый товар', NULL, 10000, 5000, 100, NULL, NULL)",
            &[],
            "seeding a product",
        )
        .await
        .expect("product");
    for (code, used_by) in [
        (SAMPLE_CODE, None),
        ("TAKEN-CODE", Some("someone")),
        (GS1_RAW, None),
        (GS1_B64, None),
        ("LATE-1", None),
        ("LATE-2", None),
        ("LATE-3", None),
        ("LATE-TAKEN", Some("someone")),
    ] {
        shop.db()
            .execute(
                "INSERT INTO marking_codes (code, sku, used_by, used_at) VALUES (?, '124323', ?, ?)",
                &[
                    code.into(),
                    used_by.map(str::to_string).into(),
                    used_by.map(|_| 1i64).into(),
                ],
                "seeding a marking code",
            )
            .await
            .expect("marking code");
    }
}

impl Fixture {
    /// A [`TestWorld`] with the listener (IMSHOP hook key [`HOOK_KEY`]), the
    /// scanned product in the shop, and a configuration that pushes to the
    /// world's IMSHOP sandbox.
    async fn new() -> Fixture {
        let settings = ListenerSettings {
            bind: any_local_port(),
            max_body_bytes: listener::DEFAULT_MAX_BODY_BYTES,
            imsklad_callback_key: Secret::new("unused-imsklad"),
            egon_auth_id: "unused".into(),
            egon_auth_key: Secret::new("unused-egon"),
            imshop_hook_key: Secret::new(HOOK_KEY),
            retailcrm_client_id: Secret::new("unused-crm"),
            retailcrm_store: "main".into(),
            crm_offer_key_is_xml_id: false,
            ..ListenerSettings::default()
        };
        let shop_db = support::sqlite();
        let mut opts = WorldOptions::listener_only(settings);
        opts.sandbox.seed = 7;
        let mut world = TestWorld::spawn(&shop_db, opts).await;
        seed_shop(&world.shop).await;
        let listener = world.listener.take().expect("the world's listener");
        let imshop_url = world.set.urls.imshop.clone();
        let mut config = Config::default();
        config.imshop.update_url = Secret::new(format!("{imshop_url}?token=t0k"));
        config.imshop.key = Secret::new(push_key());
        config.imshop.hook_key = Secret::new(HOOK_KEY);
        Fixture {
            state: world.state.clone(),
            listener_shop: world.shop.clone(),
            imshop: world.set.imshop.clone(),
            imshop_url,
            listener,
            config,
            shop_db,
            world,
        }
    }

    async fn scan(&self, barcode: &str, user: &str, timestamp: i64) -> Value {
        let url = format!("{}/imshop/scan", self.listener.url);
        let (status, body) = send_scan(&url, HOOK_KEY, barcode, user, timestamp, None)
            .await
            .expect("scan request");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON answer")
    }

    async fn history(&self, user: &str) -> Vec<Value> {
        let url = format!("{}/imshop/history", self.listener.url);
        let (status, body) = send_history(&url, HOOK_KEY, user)
            .await
            .expect("history request");
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("JSON answer");
        v["scans"].as_array().cloned().expect("scans")
    }

    /// Registers scans of `codes` while the listener's shop database is down:
    /// each is answered `processing`. Returns their ids.
    async fn processing_scans(&self, codes: &[&str]) -> Vec<String> {
        self.listener_shop.db().close().await;
        let mut ids = Vec::new();
        for (i, code) in codes.iter().enumerate() {
            let a = self.scan(code, USER, 1_700_000_000 + i as i64).await;
            assert_eq!(a["status"], "processing", "{a}");
            assert_eq!(a["success"], true);
            ids.push(a["id"].as_str().expect("id").to_string());
        }
        ids
    }

    async fn context(&self, dry_run: bool) -> Context {
        let http = sverka::connectors::http::HttpPolicy {
            max_attempts: 2,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
            ..Default::default()
        };
        Context {
            config: self.config.clone(),
            state: self.state.clone(),
            shop: open_shop(&self.shop_db.url).await,
            report_dir: self.world.dir.path().join("reports"),
            dry_run,
            force: false,
            http,
            stop: StopSignal::new(),
            run_lock: None,
        }
    }

    async fn run(&self, dry_run: bool) -> JobSummary {
        scans::run(&self.context(dry_run).await).await
    }

    /// Statuses the receiver answered, per scan id, in order.
    fn answered(&self, id: &str) -> Vec<u16> {
        self.imshop
            .lock()
            .pushes()
            .iter()
            .filter(|p| p.update.as_ref().is_some_and(|u| u.id == id))
            .map(|p| p.status)
            .collect()
    }

    fn push_count(&self) -> usize {
        self.imshop.lock().pushes().len()
    }

    async fn scan_row(&self, id: &str) -> events::Scan {
        events::user_scans(&self.state, USER)
            .await
            .expect("scans")
            .into_iter()
            .find(|s| s.id == id)
            .expect("scan stored")
    }
}

/// The report's rows (header checked), each as its nine cells.
fn report(summary: &JobSummary) -> Vec<Vec<String>> {
    let path = summary.reports.first().expect("a report");
    let name = std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("file name");
    assert!(
        name.starts_with("scans-") && name.ends_with(&format!("-{}.csv", summary.run_id)),
        "{name}"
    );
    let mut rdr = csv::Reader::from_path(path).expect("report readable");
    let headers = rdr.headers().expect("header").clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        scans::REPORT_COLUMNS.to_vec()
    );
    rdr.records()
        .map(|r| r.expect("row").iter().map(str::to_string).collect())
        .collect()
}

/// (class, action, result) of the report rows about scan `id`.
fn rows_of(rows: &[Vec<String>], id: &str) -> Vec<(String, String, String)> {
    rows.iter()
        .filter(|r| r[0] == id)
        .map(|r| (r[5].clone(), r[6].clone(), r[7].clone()))
        .collect()
}

fn triple(class: &str, action: &str, result: &str) -> (String, String, String) {
    (class.into(), action.into(), result.into())
}

#[tokio::test]
async fn registration_answers_every_case_and_history_is_newest_first() {
    let f = Fixture::new().await;
    // The seed's own request, base64 barcode: approved and marked used.
    let url = format!("{}/imshop/scan", f.listener.url);
    let (status, body) = sverka::sandbox::imshop::send_raw(&url, HOOK_KEY, SAMPLE_SCAN_REQUEST)
        .await
        .expect("scan");
    assert_eq!(status, 200);
    let a: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        (a["success"].clone(), a["status"].clone()),
        (true.into(), "approved".into())
    );
    assert!(
        body.contains("\"success\"") && !body.contains("sucсess"),
        "Latin key only"
    );
    let id = a["id"].as_str().expect("id").to_string();
    let used = f
        .listener_shop
        .marking_code(SAMPLE_CODE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.used_by.as_deref(), Some(USER));

    // The same user again: idempotent, same id.
    let again = f.scan(SAMPLE_BARCODE, USER, 1_662_660_581).await;
    assert_eq!(
        (again["id"].as_str(), again["status"].as_str()),
        (Some(id.as_str()), Some("approved"))
    );

    // Another user, as a number: denied, used by someone else.
    let other = f.scan(SAMPLE_BARCODE, "700", 1_662_660_600).await;
    assert_eq!(
        (other["success"].clone(), other["status"].clone()),
        (false.into(), "denied".into())
    );
    assert_eq!(
        other["alertMessage"],
        "Этот код маркировки уже зарегистрирован другим пользователем"
    );
    assert_eq!(other["statusMessage"], "Код уже использован");
    let taken = f.scan("TAKEN-CODE", USER, 1_662_660_650).await;
    assert_eq!(taken["status"], "denied");

    // Unknown: denied, in Russian.
    let unknown = f.scan("NOT-A-CODE-123", USER, 1_662_660_700).await;
    assert_eq!(unknown["status"], "denied");
    assert_eq!(unknown["alertTitle"], "Ошибка");
    assert_eq!(unknown["alertMessage"], "Код маркировки не найден");

    // GS1 with raw group separators, and another as base64 of its bytes.
    let raw = f.scan(GS1_RAW, USER, 1_662_660_800).await;
    assert_eq!(raw["status"], "approved");
    let b64 = base64::engine::general_purpose::STANDARD.encode(GS1_B64);
    let enc = f.scan(&b64, USER, 1_662_660_900).await;
    assert_eq!(enc["status"], "approved");
    let gs1 = f
        .listener_shop
        .marking_code(GS1_B64)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gs1.used_by.as_deref(), Some(USER));

    // History: newest first, each code as IMSHOP sent it, documented fields.
    let history = f.history(USER).await;
    let codes: Vec<&str> = history
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            b64.as_str(),
            GS1_RAW,
            "NOT-A-CODE-123",
            "TAKEN-CODE",
            "YXNkYXNkIGpha2RzIGxha2RzYWE="
        ]
    );
    assert_eq!(history[4]["id"], id.as_str());
    assert_eq!(history[4]["timestamp"], 1_662_660_581);
    assert_eq!(history[4]["status"], "approved");
    assert_eq!(f.history("700").await.len(), 1);

    // Every status was answered in the request: nothing to push, clean.
    let summary = f.run(false).await;
    assert_eq!(summary.status, RunStatus::Clean, "{summary:?}");
    assert_eq!(summary.exit_code(), 0);
    assert!(report(&summary).is_empty());
    assert_eq!(f.push_count(), 0);
}

#[tokio::test]
async fn processing_scans_are_rechecked_and_pushed_once() {
    let f = Fixture::new().await;
    let ids = f
        .processing_scans(&["LATE-1", "LATE-TAKEN", "NEVER-SEEN"])
        .await;
    let (free, taken, unknown) = (&ids[0], &ids[1], &ids[2]);

    let summary = f.run(false).await;
    assert_eq!(summary.status, RunStatus::Clean, "{summary:?}");
    let rows = report(&summary);
    assert_eq!(
        rows_of(&rows, free),
        [
            triple("rechecked", "recheck", "approved"),
            triple("pushed", "push", "applied")
        ]
    );
    assert_eq!(
        rows_of(&rows, taken),
        [
            triple("rechecked", "recheck", "denied"),
            triple("pushed", "push", "applied")
        ]
    );
    assert_eq!(
        rows_of(&rows, unknown)[0],
        triple("rechecked", "recheck", "denied")
    );
    let free_row = rows
        .iter()
        .find(|r| &r[0] == free && r[5] == "pushed")
        .unwrap();
    assert_eq!(&free_row[1..5], [USER, "LATE-1", "approved", "approved"]);
    assert_eq!(summary.corrections.applied, 6);

    // The code is now the user's; the scan's new status is in the history.
    let shop = open_shop(&f.shop_db.url).await;
    let code = shop.marking_code("LATE-1").await.unwrap().unwrap();
    assert_eq!(code.used_by.as_deref(), Some(USER));
    let history = f.history(USER).await;
    let late1 = history.iter().find(|s| s["id"] == free.as_str()).unwrap();
    assert_eq!(late1["status"], "approved");

    // What IMSHOP received: the documented fields, the Bearer key, once each.
    {
        let st = f.imshop.lock();
        assert_eq!(st.pushes().len(), 3);
        for p in st.pushes() {
            assert!(p.authorized);
            assert_eq!(p.status, 204);
            assert!(p.body.get("key").is_none(), "key only in the header");
        }
        let u = st.pushes()[0].update.clone().unwrap();
        assert_eq!(
            (u.id.as_str(), u.user_id.as_str(), u.code.as_str()),
            (free.as_str(), USER, "LATE-1")
        );
        assert_eq!(u.timestamp, 1_700_000_000);
        assert_eq!(
            u.status_message.as_deref(),
            Some("Код маркировки зарегистрирован")
        );
        let denied = st.pushes()[1].update.clone().unwrap();
        assert_eq!(
            denied.status_message.as_deref(),
            Some("Код уже использован")
        );
    }
    let journal = journal::of_run(&f.state, summary.run_id).await.unwrap();
    let pushes: Vec<_> = journal
        .iter()
        .filter(|c| c.action == "push_status")
        .collect();
    assert_eq!(pushes.len(), 3);
    assert!(pushes
        .iter()
        .all(|c| c.target == "imshop" && c.status == "applied"));
    assert!(journal.iter().all(|c| !c.payload.contains(&push_key())));

    // Acknowledged: a second run sends nothing.
    let second = f.run(false).await;
    assert_eq!(second.status, RunStatus::Clean);
    assert!(report(&second).is_empty());
    assert_eq!(f.push_count(), 3);
}

#[tokio::test]
async fn rejected_updates_are_reported_once_and_not_retried() {
    let f = Fixture::new().await;
    let ids = f.processing_scans(&["LATE-1", "LATE-2", "LATE-3"]).await;
    {
        let mut st = f.imshop.lock();
        st.set_scan_status(&ids[1], 400);
        st.set_scan_status(&ids[2], 404);
    }
    let first = f.run(false).await;
    assert_eq!(first.status, RunStatus::Discrepancies);
    assert_eq!(first.exit_code(), 1);
    let rows = report(&first);
    assert_eq!(
        rows_of(&rows, &ids[0])[1],
        triple("pushed", "push", "applied")
    );
    for (id, http) in [(&ids[1], "400"), (&ids[2], "404")] {
        assert_eq!(
            rows_of(&rows, id)[1],
            triple("push_rejected", "push", "rejected")
        );
        let row = rows
            .iter()
            .find(|r| &r[0] == id && r[5] == "push_rejected")
            .unwrap();
        assert!(row[8].contains(&format!("HTTP {http}")), "{row:?}");
        assert_eq!(row[4], "processing", "IMSHOP still knows the old status");
        assert_eq!(
            f.answered(id),
            [http.parse::<u16>().unwrap()],
            "not retried"
        );
    }
    assert_eq!(first.counts.get("push_rejected"), Some(&2));
    assert_eq!(first.corrections.failed, 2);

    // Final: the next run does not send them again.
    let second = f.run(false).await;
    assert_eq!(second.status, RunStatus::Clean, "{second:?}");
    assert_eq!(second.extra["rejected_earlier"], 2);
    assert_eq!(f.push_count(), 3);

    // The status changes again: due again, and now accepted.
    events::set_scan_status(
        &f.state,
        &ids[1],
        ScanStatus::Denied,
        Some("Бонусы отменены"),
    )
    .await
    .unwrap();
    f.imshop.lock().set_scan_status(&ids[1], 204);
    let third = f.run(false).await;
    assert_eq!(third.status, RunStatus::Clean);
    assert_eq!(f.answered(&ids[1]), [400, 204]);
    assert_eq!(f.answered(&ids[2]), [404]);
    assert_eq!(
        f.scan_row(&ids[1]).await.pushed_status,
        Some(ScanStatus::Denied)
    );
}

#[tokio::test]
async fn a_refused_key_fails_the_run_and_stops_at_the_first_push() {
    for refusal in [401u16, 403] {
        let f = Fixture::new().await;
        let ids = f.processing_scans(&["LATE-1", "LATE-2", "LATE-3"]).await;
        f.imshop.lock().set_default_status(refusal);
        let failed = f.run(false).await;
        assert_eq!(failed.status, RunStatus::Failed, "{refusal}");
        assert_eq!(failed.exit_code(), 2);
        let error = failed.error.clone().expect("an alert");
        assert!(
            error.contains(&format!("HTTP {refusal}")) && error.contains("check the key"),
            "{error}"
        );
        assert!(
            !error.contains(&push_key()) && !error.contains("t0k"),
            "no secrets: {error}"
        );
        assert_eq!(f.push_count(), 1, "stopped after the first refusal");
        let rows = report(&failed);
        assert_eq!(
            rows_of(&rows, &ids[0])[1],
            triple("push_failed", "push", "failed")
        );
        assert_eq!(
            rows_of(&rows, &ids[1])[1],
            triple("push_failed", "push", "skipped")
        );
        assert_eq!(
            rows_of(&rows, &ids[2])[1],
            triple("push_failed", "push", "skipped")
        );

        // Fixed key: the next run delivers all three.
        f.imshop.lock().set_default_status(204);
        let next = f.run(false).await;
        assert_eq!(next.status, RunStatus::Clean, "{next:?}");
        assert_eq!(f.push_count(), 4);
        for id in &ids {
            assert_eq!(*f.answered(id).last().unwrap(), 204);
        }
    }
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_stops_the_run() {
    let mut f = Fixture::new().await;
    f.processing_scans(&["LATE-1", "LATE-2"]).await;
    f.config.imshop.key = Secret::new("not-the-key");
    let failed = f.run(false).await;
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(f.push_count(), 1);
    assert!(!f.imshop.lock().pushes()[0].authorized);
}

#[tokio::test]
async fn server_errors_are_retried_then_left_for_the_next_run() {
    let f = Fixture::new().await;
    let ids = f.processing_scans(&["LATE-1", "LATE-2"]).await;
    f.imshop.lock().set_scan_status(&ids[0], 500);
    let first = f.run(false).await;
    assert_eq!(first.status, RunStatus::Discrepancies);
    assert_eq!(f.answered(&ids[0]), [500, 500], "retried within the run");
    assert_eq!(f.answered(&ids[1]), [204], "the others go on");
    let rows = report(&first);
    assert_eq!(
        rows_of(&rows, &ids[0])[1],
        triple("push_failed", "push", "failed")
    );
    let stored = f.scan_row(&ids[0]).await;
    assert_eq!(stored.pushed_status, Some(ScanStatus::Processing));
    assert!(stored
        .push_error
        .as_deref()
        .unwrap_or("")
        .contains("HTTP 500"));

    f.imshop.lock().set_scan_status(&ids[0], 204);
    let second = f.run(false).await;
    assert_eq!(second.status, RunStatus::Clean, "{second:?}");
    assert_eq!(f.answered(&ids[0]), [500, 500, 204]);
    assert_eq!(f.answered(&ids[1]), [204], "not sent twice");
    let rows = report(&second);
    assert_eq!(
        rows_of(&rows, &ids[0]),
        [triple("pushed", "push", "applied")]
    );
}

#[tokio::test]
async fn scans_stuck_in_processing_are_reported() {
    let mut f = Fixture::new().await;
    let ids = f.processing_scans(&["LATE-1"]).await;
    // The shop is still down for the job.
    let ctx = f.context(false).await;
    ctx.shop.db().close().await;
    let young = scans::run(&ctx).await;
    assert_eq!(
        young.status,
        RunStatus::Clean,
        "younger than an hour: {young:?}"
    );
    assert_eq!(
        rows_of(&report(&young), &ids[0]),
        [triple("rechecked", "recheck", "unavailable")]
    );

    f.config.imshop.stuck_minutes = 0;
    let mut ctx = f.context(false).await;
    ctx.shop.db().close().await;
    ctx.config.imshop.stuck_minutes = 0;
    let stuck = scans::run(&ctx).await;
    assert_eq!(stuck.status, RunStatus::Discrepancies);
    let rows = report(&stuck);
    assert_eq!(
        rows_of(&rows, &ids[0]),
        [
            triple("rechecked", "recheck", "unavailable"),
            triple("stuck_processing", "report", "")
        ]
    );
    assert_eq!(&rows[1][2..5], ["LATE-1", "processing", "processing"]);
    assert_eq!(f.push_count(), 0);
    assert_eq!(f.scan_row(&ids[0]).await.status, ScanStatus::Processing);
}

#[tokio::test]
async fn a_dry_run_changes_and_pushes_nothing() {
    let f = Fixture::new().await;
    let ids = f.processing_scans(&["LATE-1"]).await;
    let dry = f.run(true).await;
    assert!(dry.dry_run);
    assert_eq!(dry.status, RunStatus::Discrepancies);
    assert_eq!(
        rows_of(&report(&dry), &ids[0]),
        [
            triple("rechecked", "recheck", "dry_run"),
            triple("pushed", "push", "dry_run")
        ]
    );
    assert_eq!(f.push_count(), 0);
    assert_eq!(f.scan_row(&ids[0]).await.status, ScanStatus::Processing);
    let shop = open_shop(&f.shop_db.url).await;
    assert_eq!(
        shop.marking_code("LATE-1").await.unwrap().unwrap().used_by,
        None
    );
    assert!(journal::of_run(&f.state, dry.run_id)
        .await
        .unwrap()
        .is_empty());

    let real = f.run(false).await;
    assert_eq!(real.status, RunStatus::Clean);
    assert_eq!(f.answered(&ids[0]), [204]);
}

#[tokio::test]
async fn an_unconfigured_update_url_fails_the_run_with_a_report() {
    let mut f = Fixture::new().await;
    let ids = f.processing_scans(&["LATE-1"]).await;
    f.config.imshop.update_url = Secret::default();
    let failed = f.run(false).await;
    assert_eq!(failed.status, RunStatus::Failed);
    assert!(
        failed.error.as_deref().unwrap_or("").contains("update_url"),
        "{failed:?}"
    );
    assert_eq!(
        rows_of(&report(&failed), &ids[0]),
        [
            triple("rechecked", "recheck", "approved"),
            triple("push_failed", "push", "skipped")
        ]
    );
    // The re-check stands; the push stays due for a configured run.
    assert_eq!(f.scan_row(&ids[0]).await.status, ScanStatus::Approved);
    f.config.imshop.update_url = Secret::new(f.imshop_url.clone());
    assert_eq!(f.run(false).await.status, RunStatus::Clean);
    assert_eq!(f.answered(&ids[0]), [204]);
}

#[tokio::test]
async fn a_stop_request_leaves_everything_due() {
    let f = Fixture::new().await;
    let ids = f.processing_scans(&["LATE-1"]).await;
    let ctx = f.context(false).await;
    ctx.stop.stop();
    let stopped = scans::run(&ctx).await;
    assert_eq!(stopped.status, RunStatus::Discrepancies);
    assert_eq!(
        rows_of(&report(&stopped), &ids[0]),
        [triple("rechecked", "recheck", "skipped")]
    );
    assert_eq!(f.scan_row(&ids[0]).await.status, ScanStatus::Processing);
    assert_eq!(f.push_count(), 0);
}

#[tokio::test]
async fn a_push_in_flight_when_the_process_dies_is_sent_again_with_the_same_scan_id() {
    let f = Fixture::new().await;
    let ids = f.processing_scans(&["LATE-1"]).await;
    // IMSHOP answers slowly; the process dies while the push is in flight.
    f.imshop.control.set_latency(Duration::from_secs(5));
    let ctx = f.context(false).await;
    let job = tokio::spawn(async move { scans::run(&ctx).await });
    let started = std::time::Instant::now();
    while f.imshop.control.arrived() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no push arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    job.abort();
    let _ = job.await;
    let planned = journal::unsettled(&f.state, "scans").await.unwrap();
    let in_flight = planned
        .iter()
        .find(|c| c.action == "push_status" && c.item_key == ids[0])
        .expect("the push was journaled before it was sent");
    // The dead process's lease runs out.
    f.state
        .execute(
            "UPDATE job_locks SET expires_at = 0 WHERE job = 'scans'",
            &[],
            "expiring the lease",
        )
        .await
        .unwrap();
    f.imshop.control.set_latency(Duration::ZERO);
    let second = f.run(false).await;
    assert!(second.error.is_none(), "{:?}", second.error);
    // The in-flight push is recorded as unknown (it may have arrived), not failed…
    let first_run = journal::of_run(&f.state, in_flight.run_id).await.unwrap();
    let old = first_run.iter().find(|c| c.id == in_flight.id).unwrap();
    assert_eq!(old.status, "unknown", "{old:?}");
    // …and sent again with the same scan id and payload, so IMSHOP can de-duplicate.
    let resent = journal::of_run(&f.state, second.run_id).await.unwrap();
    let again = resent
        .iter()
        .find(|c| c.action == "push_status" && c.item_key == ids[0])
        .expect("pushed again");
    assert_eq!(again.payload, in_flight.payload);
    assert_eq!(again.status, "applied");
    let pushes = f.imshop.lock().pushes().to_vec();
    let last = pushes
        .last()
        .and_then(|p| p.update.clone())
        .expect("a push");
    assert_eq!(last.id, ids[0]);
}

/// Issue 15 item 14: a status push repeats the barcode exactly as IMSHOP sent
/// it in the scan (here base64), not the decoded code.
#[tokio::test]
async fn pushes_carry_the_barcode_as_imshop_sent_it() {
    use base64::Engine;
    let f = Fixture::new().await;
    let b64 = base64::engine::general_purpose::STANDARD.encode("LATE-1");
    let ids = f.processing_scans(&[b64.as_str()]).await;
    let summary = f.run(false).await;
    assert_eq!(summary.status, RunStatus::Clean, "{summary:?}");
    let st = f.imshop.lock();
    let u = st.pushes()[0].update.clone().unwrap();
    assert_eq!(
        (u.id.as_str(), u.code.as_str(), u.status),
        (
            ids[0].as_str(),
            b64.as_str(),
            sverka::connectors::imshop::ScanStatus::Approved
        )
    );
}

/// Issue 15, item 13: where the push key goes is UNVERIFIED, so `[imshop]
/// push_key` places it and the sandbox's `KeyPlacement` switch plays each
/// reading of IMSHOP: a receiver that reads only the header (or only the body)
/// accepts the push whose key is there and refuses the other; `both` passes
/// either.
#[tokio::test]
async fn the_push_key_goes_where_push_key_says_under_each_receiver_reading() {
    use sverka::config::PushKey;
    use sverka::sandbox::imshop::KeyPlacement;
    for (receiver, push_key, accepted) in [
        (KeyPlacement::Bearer, PushKey::Bearer, true),
        (KeyPlacement::Bearer, PushKey::Body, false),
        (KeyPlacement::Bearer, PushKey::Both, true),
        (KeyPlacement::Body, PushKey::Bearer, false),
        (KeyPlacement::Body, PushKey::Body, true),
        (KeyPlacement::Body, PushKey::Both, true),
    ] {
        let mut f = Fixture::new().await;
        f.config.imshop.push_key = push_key;
        f.imshop.lock().key_placement = receiver;
        let ids = f.processing_scans(&["LATE-1"]).await;
        let summary = f.run(false).await;
        let case = format!("receiver {receiver:?}, push_key {push_key:?}");
        {
            let st = f.imshop.lock();
            let push = st
                .pushes()
                .first()
                .unwrap_or_else(|| panic!("{case}: a push"));
            assert_eq!(
                (push.bearer_sent, push.body_key_sent),
                (push_key.in_header(), push_key.in_body()),
                "{case}: where the key went"
            );
            assert_eq!(push.authorized, accepted, "{case}");
            assert_eq!(push.status, if accepted { 204 } else { 401 }, "{case}");
        }
        let rows = report(&summary);
        let pushed = rows_of(&rows, &ids[0]);
        let last = pushed.last().unwrap_or_else(|| panic!("{case}: a row"));
        if accepted {
            assert_eq!(*last, triple("pushed", "push", "applied"), "{case}");
            assert_eq!(summary.corrections.failed, 0, "{case}");
        } else {
            assert_eq!(last.0, "push_failed", "{case}: {last:?}");
            assert_eq!(last.2, "failed", "{case}: {last:?}");
            assert!(
                summary.exit_code() != 0,
                "{case}: a refused key fails the run"
            );
        }
    }
}
