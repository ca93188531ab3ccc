//! Issue 13: the listener loses nothing acknowledged and drops only
//! redeliveries. Concurrent callbacks for the same orders, SKUs and scans on
//! every engine; repeated states that are real changes.

use serde_json::{json, Value};
use sverka::db::events::{self, OrderState};
use sverka::db::Db;
use sverka::listener::ListenerSettings;
use sverka::sandbox::common::any_local_port;
use sverka::secret::Secret;
use sverka::server::RunningServer;
use sverka::shop::Shop;

use crate::support::{self, ListenerWorld, TestWorld};

pub const IMSKLAD_KEY: &str = "atomic-imsklad-key";
pub const EGON_ID: &str = "atomic-egon";
pub const EGON_KEY: &str = "atomic-egon-key";
pub const CRM_CLIENT: &str = "atomic-crm-client";
pub const IMSHOP_KEY: &str = "atomic-imshop-key";

/// A listener on a state database of one engine, with an SQLite shop.
pub struct Listener {
    pub server: RunningServer,
    pub state_db: Db,
    pub shop: Shop,
    pub http: reqwest::Client,
    _world: (TestWorld, support::TestDb),
}

pub fn settings() -> ListenerSettings {
    ListenerSettings {
        bind: any_local_port(),
        imsklad_callback_key: Secret::new(IMSKLAD_KEY),
        egon_auth_id: EGON_ID.into(),
        egon_auth_key: Secret::new(EGON_KEY),
        imshop_hook_key: Secret::new(IMSHOP_KEY),
        retailcrm_client_id: Secret::new(CRM_CLIENT),
        retailcrm_store: "main".into(),
        ..ListenerSettings::default()
    }
}

impl Listener {
    pub async fn start(state_url: &str) -> Listener {
        Self::start_with(state_url, settings()).await
    }

    /// The listener of a [`TestWorld`] on `state_url` and a fresh SQLite shop.
    pub async fn start_with(state_url: &str, settings: ListenerSettings) -> Listener {
        let lw = ListenerWorld::spawn(Some(state_url), settings).await;
        Listener {
            server: lw.server,
            state_db: lw.world.state.clone(),
            shop: lw.world.shop.clone(),
            http: reqwest::Client::new(),
            _world: (lw.world, lw.shop_db),
        }
    }

    pub async fn post(&self, path: &str, body: String) -> (u16, Value) {
        post(&self.http, &format!("{}{path}", self.server.url), body).await
    }

    pub async fn egon(&self, req: &Value) -> (u16, Value) {
        egon(&self.http, &self.server.url, req).await
    }

    pub async fn stop(self) {
        self.server.stop().await;
        self.state_db.close().await;
        self.shop.db().close().await;
    }
}

pub async fn post(http: &reqwest::Client, url: &str, body: String) -> (u16, Value) {
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON answer"))
}

pub async fn egon(http: &reqwest::Client, base: &str, req: &Value) -> (u16, Value) {
    let resp = http
        .post(format!("{base}/egon"))
        .form(&[("req", req.to_string())])
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON answer"))
}

pub fn imsklad(action: &str, data: Value) -> String {
    json!({"key": IMSKLAD_KEY, "type": "order", "action": action, "data": data}).to_string()
}

pub fn set_status(id: &str, old: i64, new: i64) -> String {
    imsklad(
        "set_status",
        json!({"id": id, "old_status": old, "new_status": new, "system_id": "77"}),
    )
}

pub fn tracks(lines: Value) -> String {
    imsklad("update_tracks", lines)
}

pub fn inventory(cards: Value) -> Value {
    json!({"auth": {"auth_id": EGON_ID, "auth_key": EGON_KEY},
           "request": {"req_method": "InventoryStatusUpdate", "req_data": cards}})
}

pub async fn orders(db: &Db) -> std::collections::HashMap<String, OrderState> {
    events::order_states(db)
        .await
        .expect("order states")
        .into_iter()
        .map(|o| (o.order_id.clone(), o))
        .collect()
}

fn ok(answer: &(u16, Value)) -> bool {
    answer.0 == 200 && answer.1 == json!({"result": "ok"})
}

/// Sends every body at once to `urls` (round robin) and asserts each answer is ok.
pub async fn send_all(http: &reqwest::Client, urls: &[String], bodies: Vec<String>, what: &str) {
    let mut sends = tokio::task::JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let (http, url) = (http.clone(), urls[i % urls.len()].clone());
        sends.spawn(async move { post(&http, &url, body).await });
    }
    while let Some(done) = sends.join_next().await {
        let answer = done.expect("task");
        assert!(ok(&answer), "{what}: {answer:?}");
    }
}

/// `n` orders: each gets `set_status` 8→9 and a track at the same moment.
/// With `existing`, every order is at status 8 first; otherwise the pair
/// races to create the order's row.
pub async fn status_and_track_pairs(
    http: &reqwest::Client,
    urls: &[String],
    prefix: &str,
    n: usize,
    existing: bool,
) {
    if existing {
        let first: Vec<String> = (0..n)
            .map(|i| set_status(&format!("{prefix}-{i}"), 7, 8))
            .collect();
        send_all(http, urls, first, "status 8").await;
    }
    let mut pairs = Vec::with_capacity(2 * n);
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        pairs.push(set_status(&id, 8, 9));
        pairs.push(tracks(
            json!([{"id": id, "track": format!("TRK-{prefix}-{i}")}]),
        ));
    }
    send_all(http, urls, pairs, "pair").await;
}

/// Asserts every order of `status_and_track_pairs` kept both its status and its track.
pub fn assert_pairs(
    states: &std::collections::HashMap<String, OrderState>,
    prefix: &str,
    n: usize,
    engine: &str,
) {
    let mut lost_status = Vec::new();
    let mut lost_track = Vec::new();
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        let Some(o) = states.get(&id) else {
            lost_status.push(id.clone());
            lost_track.push(id);
            continue;
        };
        if o.wms_status != Some(9) {
            lost_status.push(id.clone());
        }
        if o.track.as_deref() != Some(format!("TRK-{prefix}-{i}").as_str()) {
            lost_track.push(id);
        }
    }
    assert!(
        lost_status.is_empty() && lost_track.is_empty(),
        "{engine}: {} of {n} orders lost their status ({:?}…), {} their track ({:?}…)",
        lost_status.len(),
        lost_status.first(),
        lost_track.len(),
        lost_track.first()
    );
}

#[tokio::test]
async fn concurrent_status_and_track_pairs_lose_nothing_on_every_engine() {
    for t in support::engines("atomic status/track pairs").await {
        let f = Listener::start(&t.url).await;
        let urls = vec![format!("{}/imsklad", f.server.url)];
        status_and_track_pairs(&f.http, &urls, "P", 150, true).await;
        status_and_track_pairs(&f.http, &urls, "N", 100, false).await;
        let states = orders(&f.state_db).await;
        assert_pairs(&states, "P", 150, t.engine());
        assert_pairs(&states, "N", 100, t.engine());
        f.stop().await;
        t.drop_db().await;
    }
}

#[tokio::test]
async fn concurrent_stock_and_scans_lose_nothing_on_every_engine() {
    for t in support::engines("atomic stock and scans").await {
        let f = Listener::start(&t.url).await;
        // 60 SKUs, each reported by three cards at once in different callbacks
        // (first inserts race); every callback is acknowledged and every SKU has a snapshot.
        let mut sends = tokio::task::JoinSet::new();
        for round in 0..3 {
            for i in 0..60 {
                let (http, base) = (f.http.clone(), f.server.url.clone());
                let req = inventory(json!({format!("SKU-{i}"): {"ITEM_ID": format!("SKU-{i}"),
                    "COUNT_TYPES": {"ALL": 10 + round, "EXPIRED": 0, "EXPIRATION_BLOCKED": 0,
                        "DAMAGED": 0, "ORDERED": 0, "RESERVED": 0}}}));
                sends.spawn(async move { egon(&http, &base, &req).await });
            }
        }
        while let Some(done) = sends.join_next().await {
            let (status, a) = done.expect("task");
            assert_eq!(
                (status, a["response"]["resp_status"].clone()),
                (200, json!(1)),
                "{}: {a}",
                t.engine()
            );
        }
        let snap = events::stock_snapshot(&f.state_db).await.unwrap();
        assert_eq!(snap.len(), 60, "{}", t.engine());

        // The same scan delivered 8 times at once: one row, every answer ok.
        let scan =
            json!({"barcode": "UNKNOWN-CODE", "userId": "u1", "timestamp": 1700000000}).to_string();
        let mut sends = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (http, url, body) = (
                f.http.clone(),
                format!("{}/imshop/scan", f.server.url),
                scan.clone(),
            );
            sends.spawn(async move {
                let resp = http
                    .post(url)
                    .bearer_auth(IMSHOP_KEY)
                    .body(body)
                    .send()
                    .await
                    .expect("send");
                (
                    resp.status().as_u16(),
                    resp.json::<Value>().await.expect("json"),
                )
            });
        }
        while let Some(done) = sends.join_next().await {
            let (status, a) = done.expect("task");
            assert_eq!(
                (status, a["status"].clone()),
                (200, json!("denied")),
                "{}: {a}",
                t.engine()
            );
        }
        assert_eq!(
            events::user_scans(&f.state_db, "u1").await.unwrap().len(),
            1
        );
        f.stop().await;
        t.drop_db().await;
    }
}

async fn inventories(f: &Listener) -> Value {
    f.http
        .get(format!("{}/retailcrm/inventories", f.server.url))
        .query(&[("clientId", CRM_CLIENT)])
        .send()
        .await
        .expect("inventories")
        .json()
        .await
        .expect("json")
}

fn available(answer: &Value, sku: &str) -> Option<i64> {
    answer["offers"]
        .as_array()?
        .iter()
        .find(|o| o["externalId"] == sku)
        .and_then(|o| o["stores"][0]["available"].as_i64())
}

async fn journal_len(db: &Db, source: &str, method: &str) -> usize {
    events::events(db, source, 0)
        .await
        .expect("journal")
        .iter()
        .filter(|e| e.method == method && e.status == events::STATUS_ACCEPTED)
        .count()
}

#[tokio::test]
async fn a_stock_level_coming_back_is_applied_and_redeliveries_are_not_on_every_engine() {
    for t in support::engines("stock 5 -> 9 -> 5").await {
        let f = Listener::start(&t.url).await;
        let card = |n: i64| inventory(json!({"SKU-R": {"ITEM_ID": "SKU-R", "COUNT": n}}));
        for n in [5, 9, 5] {
            let (status, a) = f.egon(&card(n)).await;
            assert_eq!(
                (status, a["response"]["resp_status"].clone()),
                (200, json!(1))
            );
        }
        assert_eq!(
            available(&inventories(&f).await, "SKU-R"),
            Some(5),
            "{}",
            t.engine()
        );
        // The last one delivered again is a redelivery: not journaled twice.
        f.egon(&card(5)).await;
        assert_eq!(
            journal_len(&f.state_db, "egon", "InventoryStatusUpdate").await,
            3,
            "{}",
            t.engine()
        );
        // Tracks T1 -> T2 -> T1, and a status stepping back and forth.
        for track in ["T1", "T2", "T1"] {
            let (_, a) = f
                .post("/imsklad", tracks(json!([{"id": "R-1", "track": track}])))
                .await;
            assert_eq!(a, json!({"result": "ok"}));
        }
        for (old, new) in [(4, 5), (5, 4), (4, 5)] {
            f.post("/imsklad", set_status("R-2", old, new)).await;
        }
        let states = orders(&f.state_db).await;
        assert_eq!(states["R-1"].track.as_deref(), Some("T1"), "{}", t.engine());
        assert_eq!(states["R-2"].wms_status, Some(5), "{}", t.engine());
        assert_eq!(
            journal_len(&f.state_db, "imsklad", "order.update_tracks").await,
            3
        );
        assert_eq!(
            journal_len(&f.state_db, "imsklad", "order.set_status").await,
            3
        );
        f.stop().await;
        t.drop_db().await;
    }
}

#[tokio::test]
async fn an_egon_event_older_than_the_latest_is_journaled_not_applied() {
    let t = support::sqlite();
    let f = Listener::start(&t.url).await;
    let write = |status: i64, at: &str, track: &str| {
        json!({"auth": {"auth_id": EGON_ID, "auth_key": EGON_KEY},
               "request": {"req_method": "WriteOrderStatus", "req_data": {
                   "order_original_id": "E-9", "order_id": 9, "status_id": status,
                   "change_timestamp": at, "packages": [{"package_nr": track}]}}})
    };
    f.egon(&write(5, "2026-11-20 10:00:00", "NEW")).await;
    let (_, a) = f.egon(&write(3, "2026-11-19 10:00:00", "OLD")).await;
    assert_eq!(a["response"]["resp_status"], 1);
    let e = &orders(&f.state_db).await["E-9"];
    assert_eq!((e.wms_status, e.track.as_deref()), (Some(5), Some("NEW")));
    let journal = events::events(&f.state_db, "egon", 0).await.unwrap();
    let statuses: Vec<&str> = journal.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, [events::STATUS_ACCEPTED, events::STATUS_STALE]);
    f.stop().await;
}

#[tokio::test]
async fn secrets_are_redacted_by_path_so_bodies_never_collide() {
    let t = support::sqlite();
    let f = Listener::start(&t.url).await;
    // Two update_order bodies that differ only in a nested `key`.
    for k in ["a", "b"] {
        let body = imsklad(
            "update_order",
            json!({"id": "K-1", "goods": [{"id": 1, "key": k}]}),
        );
        let (_, a) = f.post("/imsklad", body).await;
        assert_eq!(a["result"], "ok");
    }
    let journal = events::events(&f.state_db, "imsklad", 0).await.unwrap();
    assert_eq!(journal.len(), 2);
    assert_ne!(journal[0].idem_key, journal[1].idem_key);
    assert!(journal.iter().all(|e| !e.body.contains(IMSKLAD_KEY)));
    assert!(
        journal[1].body.contains("\"key\":\"b\""),
        "{}",
        journal[1].body
    );
    let goods = orders(&f.state_db).await["K-1"]
        .goods
        .clone()
        .unwrap_or_default();
    assert!(goods.contains("\"b\""), "{goods}");
    f.stop().await;
}

#[tokio::test]
async fn the_stock_job_save_keeps_newer_callback_snapshots_on_every_engine() {
    let row = |sku: &str, n: i64, at: i64, source: &str| events::StockSnapshot {
        sku: sku.into(),
        wms_stock: n,
        wms_reserved: 0,
        sellable: n,
        source: source.into(),
        taken_at: at,
    };
    for t in support::engines("stock job keeps newer snapshots").await {
        let db = Db::connect_state(&t.url).await.unwrap();
        events::put_stock_snapshot(
            &db,
            &[row("A", 1, 100, "stock_job"), row("B", 1, 100, "stock_job")],
        )
        .await
        .unwrap();
        // While the next run (reading the WMS from t=200) works, callbacks arrive at 250.
        let f = Listener::start(&t.url).await;
        f.egon(&inventory(json!({"B": {"COUNT": 7}, "C": {"COUNT": 3}})))
            .await;
        let cb_at = events::stock_snapshot(&db).await.unwrap()[1].taken_at;
        events::put_stock_snapshot(
            &db,
            &[
                row("A", 2, cb_at - 50, "stock_job"),
                row("B", 2, cb_at - 50, "stock_job"),
            ],
        )
        .await
        .unwrap();
        let snap: Vec<(String, i64, String)> = events::stock_snapshot(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.sku, s.sellable, s.source))
            .collect();
        assert_eq!(
            snap,
            [
                ("A".to_string(), 2, "stock_job".to_string()),
                ("B".to_string(), 7, "egon".to_string()),
                ("C".to_string(), 3, "egon".to_string()),
            ],
            "{}",
            t.engine()
        );
        // A run newer than every callback replaces them and removes what it did not report.
        events::put_stock_snapshot(&db, &[row("A", 4, cb_at + 10, "stock_job")])
            .await
            .unwrap();
        let snap = events::stock_snapshot(&db).await.unwrap();
        assert_eq!(snap.len(), 1, "{}", t.engine());
        // ... and supersedes their heads: the same callback again is applied.
        f.egon(&inventory(json!({"B": {"COUNT": 7}, "C": {"COUNT": 3}})))
            .await;
        assert_eq!(
            events::stock_snapshot(&db).await.unwrap().len(),
            3,
            "{}",
            t.engine()
        );
        f.stop().await;
        db.close().await;
        t.drop_db().await;
    }
}

#[tokio::test]
async fn sqlite_state_is_full_sync_and_the_shop_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let shop_url = format!("sqlite://{}", dir.path().join("shop.db").display());
    let state_url = format!("sqlite://{}", dir.path().join("state.db").display());
    let mut config = sverka::config::Config::default();
    config.state.database_url = Secret::new(state_url.as_str());
    config.shop.database_url = Secret::new(shop_url.as_str());
    let global = crate::stock::global(false);
    let ctx = sverka::jobs::Context::open(&config, &global, false)
        .await
        .expect("context");
    ctx.shop.create_reference_schema().await.expect("schema");
    let pragma = |db: Db, sql: &'static str| async move {
        use sqlx::Row;
        let row = sqlx::query(sql).fetch_one(db.pool()).await.expect(sql);
        row.try_get::<String, _>(0)
            .or_else(|_| row.try_get::<i64, _>(0).map(|v| v.to_string()))
            .or_else(|_| row.try_get::<i32, _>(0).map(|v| v.to_string()))
            .expect("pragma value")
    };
    // Every pooled state connection: WAL and synchronous = FULL (2).
    for _ in 0..4 {
        assert_eq!(
            pragma(ctx.state.clone(), "PRAGMA journal_mode").await,
            "wal"
        );
        assert_eq!(pragma(ctx.state.clone(), "PRAGMA synchronous").await, "2");
    }
    // The shop's file keeps its own journal mode.
    for _ in 0..4 {
        assert_eq!(
            pragma(ctx.shop.db().clone(), "PRAGMA journal_mode").await,
            "delete"
        );
    }
    assert!(!dir.path().join("shop.db-wal").exists());
}

#[tokio::test]
async fn bad_lines_are_rejected_alone_and_listed_by_sverka_events() {
    for t in support::engines("bad lines").await {
        let f = Listener::start(&t.url).await;
        let long = "x".repeat(300);
        let (_, a) = f
            .post(
                "/imsklad",
                tracks(json!([{"track": "NO-ID"}, {"id": "G-1", "track": "GOOD"}, {"id": long, "track": "T"}])),
            )
            .await;
        assert_eq!(a, json!({"result": "ok"}), "{}", t.engine());
        let (_, a) = f
            .egon(&inventory(json!({"S-OK": {"COUNT": 4}, "S-BAD": {"COUNT_TYPES": {"ALL": "lots"}}, "S-NONE": {}})))
            .await;
        assert_eq!(a["response"]["resp_status"], 1);
        // A status that is no integer in 0..=999 is rejected and blocks nothing.
        let (_, a) = f
            .post(
                "/imsklad",
                imsklad("set_status", json!({"id": "G-2", "new_status": 1e20})),
            )
            .await;
        assert_eq!(a["code"], 3, "{a}");
        let (_, a) = f.post("/imsklad", set_status("G-2", 99, 99)).await;
        assert_eq!(a["result"], "ok");
        f.post("/imsklad", set_status("G-2", 8, 9)).await;
        // An id longer than its column: a clear answer, never a 503.
        let (status, a) = f.post("/imsklad", set_status(&long, 1, 2)).await;
        assert_eq!(
            (status, a["code"].clone()),
            (200, json!(3)),
            "{}: {a}",
            t.engine()
        );
        assert!(
            a["error"]
                .as_str()
                .unwrap_or("")
                .contains("longer than 255"),
            "{a}"
        );
        // A wrong key is not journaled.
        let wrong = set_status("G-3", 1, 2).replace(IMSKLAD_KEY, "nope");
        f.post("/imsklad", wrong).await;

        let states = orders(&f.state_db).await;
        assert_eq!(states["G-1"].track.as_deref(), Some("GOOD"));
        assert_eq!(states["G-2"].wms_status, Some(9), "{}", t.engine());
        assert!(!states.contains_key("G-3"));
        let snap = events::stock_snapshot(&f.state_db).await.unwrap();
        assert_eq!(
            snap.iter().map(|s| s.sku.as_str()).collect::<Vec<_>>(),
            ["S-OK"]
        );
        let rejected = events::list(
            &f.state_db,
            &events::EventFilter {
                rejected_only: true,
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let reasons: Vec<&str> = rejected.iter().filter_map(|e| e.error.as_deref()).collect();
        assert_eq!(rejected.len(), 6, "{}: {reasons:?}", t.engine());
        assert!(rejected
            .iter()
            .all(|e| !e.body.contains(IMSKLAD_KEY) && !e.body.contains(EGON_KEY)));
        assert!(reasons.iter().any(|r| r.contains("0..=999")), "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains("longer than 255")),
            "{reasons:?}"
        );
        assert!(rejected.iter().any(|e| e.body.contains("NO-ID")));
        f.stop().await;
        t.drop_db().await;
    }
}

#[tokio::test]
async fn keys_compare_byte_exactly_on_every_engine() {
    for t in support::engines("binary keys").await {
        let f = Listener::start(&t.url).await;
        f.egon(&inventory(
            json!({"SKU-a": {"COUNT": 1}, "SKU-A": {"COUNT": 2}}),
        ))
        .await;
        f.post(
            "/imsklad",
            tracks(json!([{"id": "o-1", "track": "lower"}, {"id": "O-1", "track": "UPPER"}])),
        )
        .await;
        let snap: Vec<(String, i64)> = events::stock_snapshot(&f.state_db)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.sku, s.sellable))
            .collect();
        assert_eq!(snap.len(), 2, "{}: {snap:?}", t.engine());
        let states = orders(&f.state_db).await;
        assert_eq!(
            states["o-1"].track.as_deref(),
            Some("lower"),
            "{}",
            t.engine()
        );
        assert_eq!(
            states["O-1"].track.as_deref(),
            Some("UPPER"),
            "{}",
            t.engine()
        );
        sverka::db::mapping::put(
            &f.state_db,
            sverka::db::mapping::MapKind::Good,
            "SKU-a",
            "1",
        )
        .await
        .unwrap();
        sverka::db::mapping::put(
            &f.state_db,
            sverka::db::mapping::MapKind::Good,
            "SKU-A",
            "2",
        )
        .await
        .unwrap();
        let all = sverka::db::mapping::all(&f.state_db, sverka::db::mapping::MapKind::Good)
            .await
            .unwrap();
        assert_eq!(all.len(), 2, "{}: {all:?}", t.engine());
        f.stop().await;
        t.drop_db().await;
    }
}

#[tokio::test]
async fn sverka_events_lists_rejected_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    let state_url = format!("sqlite://{}", dir.path().join("state.db").display());
    let f = Listener::start(&state_url).await;
    f.post(
        "/imsklad",
        tracks(json!([{"track": "NO-ID"}, {"id": "V-1", "track": "T"}])),
    )
    .await;
    f.post(
        "/imsklad",
        imsklad("set_status", json!({"id": "V-2", "new_status": "soon"})),
    )
    .await;
    f.stop().await;
    std::fs::write(
        dir.path().join("sverka.toml"),
        format!("[state]\ndatabase_url = \"{state_url}\"\n"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sverka"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .output()
            .expect("run sverka")
    };
    let out = run(&["events", "--rejected", "--source", "imsklad", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().all(|e| e["status"] == "rejected"));
    assert!(
        list[0]["error"].as_str().unwrap_or("").contains("0..=999"),
        "{list:?}"
    );
    assert!(list[1]["body"].as_str().unwrap_or("").contains("NO-ID"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(IMSKLAD_KEY));
    let text = run(&["events"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("order.update_tracks") && text.contains("accepted"),
        "{text}"
    );
    let later = run(&["events", "--since", "2999-01-01T00:00", "--json"]);
    assert_eq!(String::from_utf8_lossy(&later.stdout).trim(), "[]");
    assert_eq!(
        run(&["events", "--since", "yesterday"]).status.code(),
        Some(2)
    );
}

/// Item 3: on a SQLite state database concurrent callbacks are committed in
/// groups (one fsync for many), and an event that fails inside a group is
/// rolled back alone: the others are journaled, applied and answered ok, the
/// failed one is answered as a temporary failure and not journaled.
#[tokio::test]
async fn sqlite_commits_concurrent_callbacks_in_groups_and_a_failure_stays_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let f = Listener::start(&url).await;
    f.state_db
        .execute(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON order_states WHEN NEW.order_id = 'BOOM' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            &[],
            "creating the test trigger",
        )
        .await
        .expect("trigger");
    let group = f
        .state_db
        .group_commit()
        .expect("SQLite state groups commits");
    let before = group.stats();
    let url = format!("{}/imsklad", f.server.url);
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..120 {
        let id = if i == 60 {
            "BOOM".to_string()
        } else {
            format!("G-{i}")
        };
        let (http, url) = (f.http.clone(), url.clone());
        sends.spawn(async move { (id.clone(), post(&http, &url, set_status(&id, 0, 3)).await) });
    }
    let mut refused = Vec::new();
    while let Some(done) = sends.join_next().await {
        let (id, answer) = done.expect("task");
        if id == "BOOM" {
            refused.push(answer);
        } else {
            assert!(ok(&answer), "{id}: {answer:?}");
        }
    }
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0].0, 503,
        "a failed journal write is temporary: {refused:?}"
    );
    let stats = group.stats();
    let (groups, carried) = (stats.groups - before.groups, stats.events - before.events);
    assert_eq!(carried, 120, "every callback went through a group");
    assert!(
        groups < carried,
        "{groups} groups for {carried} callbacks: nothing was grouped"
    );
    let states = orders(&f.state_db).await;
    for i in (0..120).filter(|i| *i != 60) {
        let o = states.get(&format!("G-{i}")).expect("applied");
        assert_eq!(o.wms_status, Some(3));
    }
    assert!(!states.contains_key("BOOM"));
    assert_eq!(
        journal_len(&f.state_db, "imsklad", "order.set_status").await,
        119
    );
    f.stop().await;
}
