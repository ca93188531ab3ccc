//! What sverka sends is what the real services accept (issue 15): each test
//! switches the sandbox to the strict (or the other) reading of a point the
//! vendors' documents leave open, and checks sverka copes with both.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

use sverka::config::WmsKind;
use sverka::db::mapping::{self, MapKind};
use sverka::db::{events, Db};
use sverka::listener::ListenerSettings;
use sverka::sandbox::common::any_local_port;
use sverka::sandbox::imsklad::{IdSpace, ImskladStrictness};
use sverka::sandbox::world::WorldSpec;
use sverka::secret::Secret;
use sverka::server::RunningServer;
use sverka::shop::Shop;

use crate::support;

// ---------------------------------------------------------------------------
// RetailCRM
// ---------------------------------------------------------------------------

/// Item 1: a CRM that accepts 20/50/100 only (as the official PHP client
/// validates) refuses sverka's first page of 250; sverka falls back to 100
/// once and the stock job finishes with everything in sync.
#[tokio::test]
async fn the_stock_job_finishes_against_a_crm_that_refuses_page_size_250() {
    let f = crate::stock::fixture(
        support::sqlite(),
        WorldSpec {
            skus: 600,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    f.set.retailcrm.lock().strict.inventory_limit_250 = false;
    let s = crate::stock::run_stock(&f.config, false, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    assert!(s.corrections.applied > 0);
    let inventory_reads = |f: &crate::stock::Fixture| {
        f.set
            .retailcrm
            .control
            .requests_to("/store/inventories")
            .into_iter()
            .filter(|r| !r.path.ends_with("/upload"))
            .collect::<Vec<_>>()
    };
    let reads = inventory_reads(&f);
    assert!(reads[0].query.contains("limit=250"), "{}", reads[0].query);
    assert_eq!(reads[0].status, 400);
    assert!(reads[1..].iter().all(|r| r.query.contains("limit=100")));
    assert!(reads[1..].iter().all(|r| r.status == 200));
    assert_eq!(
        reads
            .iter()
            .filter(|r| r.query.contains("limit=250"))
            .count(),
        1,
        "250 is asked for once per run"
    );
    // Every offer was read: a second run finds the CRM in sync.
    let again = crate::stock::run_stock(&f.config, false, false).await;
    assert!(again.error.is_none(), "{:?}", again.error);
    assert_eq!(
        again.counts.get("qty_mismatch_crm"),
        None,
        "{:?}",
        again.counts
    );
    // The lenient reading (the default) still reads 250 a page.
    f.set.retailcrm.lock().strict.inventory_limit_250 = true;
    f.set.retailcrm.control.clear_requests();
    let third = crate::stock::run_stock(&f.config, true, false).await;
    assert!(third.error.is_none(), "{:?}", third.error);
    let reads = f.set.retailcrm.control.requests_to("/store/inventories?");
    assert!(reads
        .iter()
        .all(|r| r.query.contains("limit=250") && r.status == 200));
}

/// Item 2: the strict CRM refuses a module without `integrationCode` and
/// `callPoints`; sverka's registration carries both, `baseUrl` is
/// `[orders] listener_url`, and a changed `client_id` registers again even
/// though the CRM does not echo it.
#[tokio::test]
async fn the_module_sverka_registers_passes_the_strict_crm_and_follows_the_client_id() {
    let shop_db = support::sqlite();
    let mut f = crate::orders::fixture(&shop_db, WmsKind::Imsklad, 120).await;
    f.set.retailcrm.lock().strict.strict_modules = true;
    f.config.orders.listener_url = Some(f.listener.url.clone());
    let s = crate::orders::run_orders(&f.config, false, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    let edits = |f: &crate::orders::Fixture| {
        f.set
            .retailcrm
            .control
            .requests_to("/integration-modules/sverka/edit")
            .into_iter()
            .filter(|r| r.status == 200)
            .count()
    };
    assert_eq!(edits(&f), 1);
    let module = f.set.retailcrm.lock().module("sverka").cloned().unwrap();
    assert_eq!(module["baseUrl"], f.listener.url.as_str());
    assert_eq!(module["integrationCode"], "sverka");
    let action = &module["integrations"]["store"]["actions"][0];
    assert_eq!(action["code"], "inventoriesUpload");
    assert_eq!(action["url"], "/retailcrm/inventories");
    assert!(!action["callPoints"].as_array().unwrap().is_empty());
    // The old registration (no callPoints, no integrationCode) is refused.
    let mut old = module.clone();
    old["integrations"]["store"]["actions"][0]["callPoints"] = json!([]);
    old.as_object_mut().unwrap().remove("integrationCode");
    let refused = reqwest::Client::new()
        .post(format!(
            "{}/api/v5/integration-modules/sverka/edit",
            f.set.urls.retailcrm
        ))
        .header("X-API-KEY", f.set.keys.retailcrm_key.as_str())
        .form(&[("integrationModule", old.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("callPoints") && text.contains("integrationCode"),
        "{text}"
    );

    // Unship two orders in the CRM so the next runs have marks to send.
    let shipped: Vec<String> = f
        .orders
        .iter()
        .filter(|o| {
            f.set
                .retailcrm
                .lock()
                .order(&o.id)
                .is_some_and(|c| c.shipped)
        })
        .map(|o| o.id.clone())
        .take(2)
        .collect();
    assert_eq!(shipped.len(), 2);
    let unship = |f: &crate::orders::Fixture, id: &str| {
        f.set
            .retailcrm
            .lock()
            .set_order_fulfilment(id, false, None)
            .unwrap();
    };
    unship(&f, &shipped[0]);
    let s = crate::orders::run_orders(&f.config, false, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    assert_eq!(
        edits(&f),
        1,
        "same module, same fingerprint: not registered again"
    );
    unship(&f, &shipped[1]);
    f.config.retailcrm.client_id = Secret::new("a-new-client-id");
    let s = crate::orders::run_orders(&f.config, false, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    assert_eq!(edits(&f), 2, "a new clientId registers again");
    let module = f.set.retailcrm.lock().module("sverka").cloned().unwrap();
    assert_eq!(module["clientId"], "a-new-client-id");
}

fn sverka_bin(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sverka"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run sverka")
}

fn check_lines(out: &std::process::Output) -> Vec<(String, bool, String)> {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON from check: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_owned(),
                c["ok"].as_bool().unwrap(),
                c["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn failing<'a>(lines: &'a [(String, bool, String)], name: &str) -> &'a str {
    let (_, ok, detail) = lines
        .iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {lines:?}"));
    assert!(!ok, "`{name}` passed: {detail}");
    detail
}

/// Item 3 (and 2, 9): `sverka check` against the sandbox names a wrong store,
/// an unknown CRM status code of the status map, an http `listener_url` on a
/// routable host and an empty `client_id`, and exits 2; a clean configuration
/// passes; an IMSKLAD host that does not resolve is named too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sverka_check_names_each_problem_against_the_sandbox() {
    let shop_db = support::sqlite();
    let world = support::TestWorld::spawn(&shop_db, support::WorldOptions::empty()).await;
    let (set, dir) = (&world.set, &world.dir);
    let map =
        sverka::jobs::orders::BUILTIN_STATUS_MAP.replace("\"complete\"", "\"no-such-status\"");
    assert_ne!(map, sverka::jobs::orders::BUILTIN_STATUS_MAP);
    std::fs::write(dir.path().join("status_map.toml"), map).unwrap();
    let k = &set.keys;
    let write =
        |name: &str, store: &str, status_map: bool, listener: &str, client: &str, imsklad: &str| {
            let text = format!(
                r#"[state]
database_url = "sqlite://{dir}/state.db"
[shop]
database_url = "{shop}"
[imsklad]
url = "{imsklad}"
key = "{ikey}"
[retailcrm]
url = "{crm}"
api_key = "{ckey}"
store = "{store}"
client_id = "{client}"
[orders]
{map}
{listener}
"#,
                dir = dir.path().display(),
                shop = shop_db.url,
                ikey = k.imsklad_key,
                crm = set.urls.retailcrm,
                ckey = k.retailcrm_key,
                map = if status_map {
                    "status_map = \"status_map.toml\""
                } else {
                    ""
                },
            );
            std::fs::write(dir.path().join(name), text).unwrap();
        };
    write(
        "bad.toml",
        "nope",
        true,
        "listener_url = \"http://sverka.example.ru\"",
        "",
        &set.urls.imsklad,
    );
    let out = sverka_bin(dir.path(), &["check", "--json", "--config", "bad.toml"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = check_lines(&out);
    assert!(
        failing(&lines, "retailcrm.store").contains("`nope`"),
        "{lines:?}"
    );
    let status = failing(&lines, "status map");
    assert!(status.contains("no-such-status"), "{status}");
    assert!(!status.contains("`new`"), "{status}");
    assert!(failing(&lines, "orders.listener_url").contains("https"));
    assert!(failing(&lines, "retailcrm.client_id").contains("empty"));
    assert!(
        lines.iter().any(|(n, ok, _)| n == "imsklad.url" && *ok),
        "{lines:?}"
    );

    write(
        "good.toml",
        "main",
        false,
        "listener_url = \"http://127.0.0.1:8088\"",
        &k.retailcrm_client_id,
        &set.urls.imsklad,
    );
    let out = sverka_bin(dir.path(), &["check", "--json", "--config", "good.toml"]);
    let lines = check_lines(&out);
    assert_eq!(out.status.code(), Some(0), "{lines:?}");

    // Seed 002 names both clients. and client.imsklad.ru: a host that does not
    // resolve is named (a .invalid name never does).
    write(
        "host.toml",
        "main",
        false,
        "",
        &k.retailcrm_client_id,
        "http://clients.imsklad.invalid:7000/",
    );
    let out = sverka_bin(dir.path(), &["check", "--json", "--config", "host.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let lines = check_lines(&out);
    assert!(failing(&lines, "imsklad.url").contains("does not resolve"));
    // ... and a closed port does not answer.
    let closed = any_local_port_closed();
    write(
        "port.toml",
        "main",
        false,
        "",
        &k.retailcrm_client_id,
        &format!("http://127.0.0.1:{closed}/"),
    );
    let out = sverka_bin(dir.path(), &["check", "--json", "--config", "port.toml"]);
    let lines = check_lines(&out);
    assert!(failing(&lines, "imsklad.url").contains("does not answer"));
    world.set.stop().await;
}

/// A loopback port nothing listens on.
fn any_local_port_closed() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

// ---------------------------------------------------------------------------
// IMSKLAD callbacks and IMSHOP hooks on a bare listener
// ---------------------------------------------------------------------------

struct Bare {
    server: RunningServer,
    state: Db,
    shop: Shop,
    _world: (support::TestWorld, support::TestDb),
}

/// A listener-only [`support::TestWorld`] with the listener settings `edit`
/// makes and the rows the examples name in the shop.
async fn bare(edit: impl FnOnce(&mut ListenerSettings)) -> Bare {
    let mut settings = ListenerSettings {
        bind: any_local_port(),
        imsklad_callback_key: Secret::new("YOUR_ENDPOINT_KEY"),
        imshop_hook_key: Secret::new("hook-key"),
        ..ListenerSettings::default()
    };
    edit(&mut settings);
    let support::ListenerWorld {
        server,
        world,
        shop_db,
    } = support::ListenerWorld::spawn(None, settings).await;
    for sql in [
        "INSERT INTO products (sku, name, description, price_kop, cost_kop, weight_g, width_mm, height_mm, length_mm, color_id, size) \
         VALUES ('A-1', 'Тестовый товар', 'Очень тестовый товар', 10000, 10000, 100, 10, 20, 30, 13, 'Большой')",
        "INSERT INTO products (sku, name, description, price_kop, cost_kop) VALUES ('555', 'Другой товар', NULL, 5000, 4000)",
        "INSERT INTO marking_codes (code, sku) VALUES ('asdasd jakds lakdsaa', 'A-1')",
    ] {
        world.shop.db().execute(sql, &[], "seeding").await.unwrap();
    }
    Bare {
        server,
        state: world.state.clone(),
        shop: world.shop.clone(),
        _world: (world, shop_db),
    }
}

impl Bare {
    async fn post(&self, path: &str, body: &str, bearer: Option<&str>) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}{path}", self.server.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    async fn imsklad(&self, kind: &str, action: &str, data: Value) -> Value {
        let body =
            json!({"key": "YOUR_ENDPOINT_KEY", "type": kind, "action": action, "data": data});
        let (status, v) = self.post("/imsklad", &body.to_string(), None).await;
        assert_eq!(status, 200, "{v}");
        v
    }
}

/// Item 4: `get_good` names the product by the WMS goods id (seed 002's
/// example id is the one add_good returned) or by the SKU; the WMS id wins
/// when it is both; every documented goods field the shop has is answered;
/// `goods` is accepted as the type too.
#[tokio::test]
async fn get_good_answers_by_wms_id_or_sku_with_every_documented_field() {
    let b = bare(|_| {}).await;
    mapping::put(&b.state, MapKind::Good, "A-1", "124323")
        .await
        .unwrap();
    let by_wms = b.imsklad("good", "get_good", json!({"id": 124323})).await;
    assert_eq!(
        by_wms,
        json!({"id": 124323, "name": "Тестовый товар", "description": "Очень тестовый товар",
               "price": 100, "cost": 100, "weight": 100, "width": 10, "height": 20,
               "length": 30, "color": 13, "size": "Большой"})
    );
    let by_sku = b.imsklad("goods", "get_good", json!({"id": "A-1"})).await;
    assert_eq!(by_sku["name"], "Тестовый товар");
    assert_eq!(by_sku["id"], "A-1");
    let plain = b.imsklad("good", "get_good", json!({"id": "555"})).await;
    assert_eq!(plain["name"], "Другой товар");
    mapping::put(&b.state, MapKind::Good, "A-1", "555")
        .await
        .unwrap();
    let both = b.imsklad("good", "get_good", json!({"id": 555})).await;
    assert_eq!(both["name"], "Тестовый товар", "a mapped WMS id wins");

    // Both readings of the sandbox's get_good callback are answered.
    let mut sb = sverka::sandbox::imsklad::ImskladState::new("k", 1);
    let mut good = sverka::connectors::imsklad::Good::new("A-1", "x", 1);
    good.weight = Some(1);
    let wms = sb.put_good(good);
    mapping::put(&b.state, MapKind::Good, "A-1", &wms.to_string())
        .await
        .unwrap();
    for space in [IdSpace::Wms, IdSpace::Partner] {
        sb.strict.get_good_id = space;
        let data = sb.get_good_callback_data("A-1").unwrap();
        let answer = b.imsklad("good", "get_good", data.clone()).await;
        assert_eq!(answer["name"], "Тестовый товар", "{space:?}: {answer}");
        assert_eq!(answer["id"], data["id"]);
    }
}

/// Item 5: carrier export requests are journaled and answered IMSKLAD's error
/// code 4 (sverka does not export), or ok with `carrier_export = "elsewhere"`.
#[tokio::test]
async fn carrier_export_requests_are_not_answered_ok_for_work_not_done() {
    let b = bare(|_| {}).await;
    for action in ["send_to_cdek", "send_to_boxberry", "send_act_to_boxberry"] {
        let a = b.imsklad("order", action, json!(["AZ-1234"])).await;
        assert_eq!(a["code"], 4, "{action}: {a}");
        assert!(a.get("result").is_none());
    }
    let journal = events::events(&b.state, "imsklad", 0).await.unwrap();
    assert_eq!(journal.len(), 3);
    let elsewhere = bare(|s| s.imsklad_carrier_export_elsewhere = true).await;
    let a = elsewhere
        .imsklad("order", "send_to_cdek", json!(["AZ-1234"]))
        .await;
    assert_eq!(a, json!({"result": "ok"}));
}

/// Items 5 and 7 through the orders job: carrier export requests and
/// `update_tracks` errors are reported; a cancellation re-sends the last full
/// order IMSKLAD sent (its `update_order` callback), and one without a full
/// copy is reported as `partial_order_data`.
#[tokio::test]
async fn the_orders_report_lists_carrier_exports_and_cancels_carry_the_full_order() {
    use sverka::sandbox::imsklad::send_callback;
    let shop_db = support::sqlite();
    let f = crate::orders::fixture(&shop_db, WmsKind::Imsklad, 120).await;
    let key = f.set.keys.imsklad_callback_key.clone();
    let url = format!("{}/imsklad", f.listener.url);
    let first = f.orders[0].id.clone();
    // An order with no track from the WMS (the world's orders may have one).
    let second = "AZ-2324".to_string();
    let (_, answer) = send_callback(&url, &key, "order", "send_to_cdek", &json!([first]))
        .await
        .unwrap();
    assert!(answer.contains("\"code\":4"), "{answer}");
    let (_, answer) = send_callback(
        &url,
        &key,
        "order",
        "update_tracks",
        &json!([{"id": second, "guid": null, "err": "Incorrect pvz"}]),
    )
    .await
    .unwrap();
    assert!(answer.contains("ok"), "{answer}");
    // What the listener kept of each update_order callback, before the run.
    let mut kept = std::collections::BTreeMap::new();
    for o in &f.orders {
        if let Some(doc) = sverka::db::protocol::order_document(&f.state, &o.id)
            .await
            .unwrap()
        {
            kept.insert(o.id.clone(), doc);
        }
    }
    assert!(
        !kept.is_empty(),
        "the world's update_order callbacks are kept"
    );
    let s = crate::orders::run_orders(&f.config, false, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    let rows = crate::orders::report(&s);
    let row = &rows[&(first.clone(), "carrier_export_requested".to_string())];
    assert!(row["note"].contains("CDEK"), "{row:?}");
    let row = rows
        .get(&(second.clone(), "carrier_export_failed".to_string()))
        .unwrap_or_else(|| panic!("{:?}", rows.keys().collect::<Vec<_>>()));
    assert!(row["note"].contains("Incorrect pvz"), "{row:?}");
    // Cancellations: the full copy when sverka has one, else reported.
    let cancels: Vec<Value> = f
        .set
        .imsklad
        .control
        .requests()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|v| v["action"] == "update_order" && v["data"]["is_canceled"] == 1)
        .collect();
    assert!(!cancels.is_empty(), "the world has cancellations");
    for c in &cancels {
        let id = c["data"]["id"].as_str().unwrap().to_owned();
        let sent: sverka::connectors::imsklad::Order =
            serde_json::from_value(c["data"].clone()).unwrap();
        match kept.get(&id) {
            Some(doc) => {
                let mut full: sverka::connectors::imsklad::Order =
                    sverka::lenient::from_str(&doc.body).unwrap();
                full.is_canceled = Some(1);
                assert_eq!(
                    sent, full,
                    "{id}: the cancellation re-sends the WMS's order"
                );
            }
            None => assert!(
                rows.contains_key(&(id.clone(), "partial_order_data".to_string())),
                "{id}: sent from shop data but not reported"
            ),
        }
    }
}

/// Item 13: the hooks take the key as a bearer token, a body `key` or a `key`
/// query parameter; without a configured key they are closed unless
/// `hook_auth = "none"`; refusals keep HTTP 200 with `success: false`.
#[tokio::test]
async fn imshop_hooks_take_the_key_anywhere_or_none_when_told() {
    let scan = r#"{"barcode": "YXNkYXNkIGpha2RzIGxha2RzYWE=", "userId": "79991234567", "timestamp": 1662660581}"#;
    let b = bare(|_| {}).await;
    let (s, a) = b.post("/imshop/scan?key=hook-key", scan, None).await;
    assert_eq!((s, a["status"].clone()), (200, json!("approved")), "{a}");
    let (s, a) = b.post("/imshop/scan?key=wrong", scan, None).await;
    assert_eq!(
        (s, a["success"].clone(), a["status"].clone()),
        (200, json!(false), json!("denied"))
    );
    let (s, h) = b
        .post(
            "/imshop/history?key=hook-key",
            r#"{"userId": "79991234567"}"#,
            None,
        )
        .await;
    assert_eq!(s, 200);
    // Item 14: the code is the barcode as IMSHOP sent it.
    assert_eq!(h["scans"][0]["code"], "YXNkYXNkIGpha2RzIGxha2RzYWE=");

    let closed = bare(|s| s.imshop_hook_key = Secret::default()).await;
    let (s, a) = closed.post("/imshop/scan", scan, None).await;
    assert_eq!((s, a["success"].clone()), (200, json!(false)));
    let open = bare(|s| {
        s.imshop_hook_key = Secret::default();
        s.imshop_hook_auth_none = true;
    })
    .await;
    let (s, a) = open.post("/imshop/scan", scan, None).await;
    assert_eq!((s, a["status"].clone()), (200, json!("approved")), "{a}");
    assert!(open
        .shop
        .marking_code("asdasd jakds lakdsaa")
        .await
        .unwrap()
        .unwrap()
        .used_by
        .is_some());
}

// ---------------------------------------------------------------------------
// IMSKLAD goods and stock
// ---------------------------------------------------------------------------

/// Item 6: the look-up sends the full product record (nothing wiped in the
/// WMS copy); an unknown id answered code 4 (the other reading) still leads
/// to add_good; `lookup_unmapped = "report"` writes nothing to the WMS.
#[tokio::test]
async fn unmapped_skus_are_looked_up_with_the_full_record_or_only_reported() {
    let f = crate::stock::fixture(
        support::sqlite(),
        WorldSpec {
            skus: 200,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let shop = crate::stock::open_shop(&f.config).await;
    shop.db()
        .execute(
            "UPDATE products SET width_mm = 11, height_mm = 22, length_mm = 33, color_id = 5, size = 'XL', image_url = 'http://img.invalid/1.png'",
            &[],
            "dimensions",
        )
        .await
        .unwrap();
    // Report only: no goods call at all.
    let mut config = f.config.clone();
    config.stock.lookup_unmapped = sverka::config::LookupUnmapped::Report;
    let s = crate::stock::run_stock(&config, false, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    let goods_calls = |f: &crate::stock::Fixture| {
        f.set
            .imsklad
            .control
            .requests()
            .into_iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter(|v| v["type"] == "goods" && v["action"] != "get_stock")
            .collect::<Vec<_>>()
    };
    assert!(goods_calls(&f).is_empty());
    assert!(s.counts.get("missing_in_wms").copied().unwrap_or(0) > 0);

    // The other reading of update_good for an unknown id: code 4.
    f.set.imsklad.lock().strict = ImskladStrictness {
        update_good_unknown_code: 4,
        ..ImskladStrictness::default()
    };
    let mut config = f.config.clone();
    config.stock.create_missing_in_wms = true;
    let s = crate::stock::run_stock(&config, false, false).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    let calls = goods_calls(&f);
    let updates: Vec<&Value> = calls
        .iter()
        .filter(|v| v["action"] == "update_good")
        .collect();
    assert!(!updates.is_empty());
    for u in &updates {
        let d = &u["data"];
        for (field, want) in [
            ("width", json!(11)),
            ("height", json!(22)),
            ("length", json!(33)),
            ("color", json!(5)),
            ("size", json!("XL")),
        ] {
            assert_eq!(d[field], want, "{field} in {d}");
        }
        assert_eq!(d["image"], "http://img.invalid/1.png");
    }
    let adds = calls.iter().filter(|v| v["action"] == "add_good").count();
    assert!(adds > 0, "code 4 still reaches add_good");
    // The WMS copy keeps the dimensions.
    let st = f.set.imsklad.lock();
    let sku = updates[0]["data"]["id"].as_str().unwrap();
    if let Some(g) = st.good_by_partner(sku) {
        assert_eq!(
            (g.good.width, g.good.size.as_deref()),
            (Some(11), Some("XL"))
        );
    }
}

/// Item 6: `sverka map import FILE.csv` maps a shop that already runs on
/// IMSKLAD; a bad line is named and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_import_loads_sku_wms_pairs_and_refuses_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let state_url = format!("sqlite://{}/state.db", dir.path().display());
    std::fs::write(
        dir.path().join("sverka.toml"),
        format!("[state]\ndatabase_url = \"{state_url}\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("map.csv"),
        "sku,wms_id\nA-1,124323\n007;55\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.csv"), "B,1\nC,x\n").unwrap();
    let out = sverka_bin(dir.path(), &["map", "import", "bad.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    let out = sverka_bin(dir.path(), &["map", "import", "map.csv"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = Db::connect_state(&state_url).await.unwrap();
    let all = mapping::all(&db, MapKind::Good).await.unwrap();
    assert_eq!(all.get("A-1").map(String::as_str), Some("124323"));
    assert_eq!(all.get("007").map(String::as_str), Some("55"));
    assert!(!all.contains_key("B"), "the bad file wrote nothing");
}

// ---------------------------------------------------------------------------
// EGON
// ---------------------------------------------------------------------------

/// Item 11: a callback posted as `multipart/form-data` with a `req` part is
/// accepted; the deprecated UpdatePackageTracking and OrderReturnLabelTracking
/// are journaled, not refused.
#[tokio::test]
async fn egon_multipart_callbacks_and_deprecated_methods_are_accepted() {
    use sverka::sandbox::egon::{send_callback, Transport};
    let b = bare(|s| {
        s.egon_auth_id = "AUTH_ID".into();
        s.egon_auth_key = Secret::new("AUTH_KEY");
    })
    .await;
    let url = format!("{}/egon", b.server.url);
    let status_update = json!({"order_original_id": "E-1", "status_id": 2, "order_id": 7,
                               "change_timestamp": "2024-01-15 12:00:00"});
    let (s, body) = send_callback(
        &url,
        "AUTH_ID",
        "AUTH_KEY",
        "WriteOrderStatus",
        &status_update,
        Transport::MultipartReq,
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    assert!(
        body.contains("\"auth_status\":1") && body.contains("\"resp_status\":1"),
        "{body}"
    );
    for method in ["UpdatePackageTracking", "OrderReturnLabelTracking"] {
        let (_, body) = send_callback(
            &url,
            "AUTH_ID",
            "AUTH_KEY",
            method,
            &json!({"order_original_id": "E-1"}),
            Transport::FormReq,
        )
        .await
        .unwrap();
        assert!(body.contains("\"resp_status\":1"), "{method}: {body}");
    }
    let methods: Vec<String> = events::events(&b.state, "egon", 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.method)
        .collect();
    assert_eq!(
        methods,
        [
            "WriteOrderStatus",
            "UpdatePackageTracking",
            "OrderReturnLabelTracking"
        ]
    );
    let state = events::order_states(&b.state).await.unwrap();
    assert_eq!(state[0].wms_status, Some(2));
}

// ---------------------------------------------------------------------------
// Both readings of the remaining switches, at the client
// ---------------------------------------------------------------------------

fn imsklad_client(url: &str, key: &str) -> sverka::connectors::imsklad::ImskladClient {
    let mut cfg = sverka::connectors::imsklad::ImskladConfig::new(url, Secret::new(key), 1);
    cfg.policy = sverka::connectors::imsklad::quick_policy(std::time::Duration::from_secs(5), 1);
    sverka::connectors::imsklad::ImskladClient::new(cfg).unwrap()
}

/// Items 7 and 8: billing lines with and without `type` (seed 002's example
/// has none) read the same; order lines as Int partner ids, as strings, or as
/// WMS ids, each accepted or refused as the switch says.
#[tokio::test]
async fn imsklad_billing_types_and_order_line_ids_under_both_readings() {
    use sverka::connectors::imsklad::{Order, OrderGood};
    use sverka::sandbox::imsklad::{ImskladSandbox, NewBillingLine};
    let sb = ImskladSandbox::new("k", 1, 1);
    for (kind, comment) in [
        (0, "Сборка заказа 17"),
        (2, "Доставка СДЭК: 17"),
        (9, "Хранение товара"),
    ] {
        sb.lock().add_billing_line(NewBillingLine {
            order_id: Some(1),
            foreign_order_id: Some("17".into()),
            doc_request_id: None,
            kind,
            date: 1_000,
            amount_kop: -4_500,
            comment: comment.into(),
        });
    }
    let num = sb.lock().add_good("101", "numeric", 100);
    let alpha = sb.lock().add_good("A-1", "alphanumeric", 100);
    let server = sb.start(any_local_port()).await.unwrap();
    let client = imsklad_client(&format!("{}/", server.url), "k");
    let kinds = |b: &sverka::connectors::imsklad::Billing| {
        b.lines.iter().map(|l| l.kind).collect::<Vec<_>>()
    };
    let typed = client.get_billing(0, 2_000).await.unwrap();
    assert_eq!(kinds(&typed), [0, 2, 9]);
    sb.lock().strict.billing_type = false;
    let untyped = client.get_billing(0, 2_000).await.unwrap();
    assert_eq!(
        kinds(&untyped),
        [0, 2, sverka::connectors::imsklad::BILLING_KIND_UNTYPED]
    );

    let order = |id: &str, sku: &str| Order::new(id, "Иван", vec![OrderGood::new(sku, 1, 100)]);
    // Lenient (default): partner or WMS ids, strings or Int.
    assert!(client.add_order(&order("O-1", "A-1")).await.is_ok());
    // Strict: partner ids only, typed Int.
    sb.lock().strict = ImskladStrictness {
        line_ids: IdSpace::Partner,
        integer_line_ids: true,
        ..ImskladStrictness::default()
    };
    assert!(client.add_order(&order("O-2", "101")).await.is_ok());
    let e = client.add_order(&order("O-3", "A-1")).await.unwrap_err();
    assert!(e.is_bad_request(), "{e}");
    // The other reading: lines carry WMS ids ([imsklad] order_goods_id = "wms").
    sb.lock().strict.line_ids = IdSpace::Wms;
    assert!(client
        .add_order(&order("O-4", &alpha.to_string()))
        .await
        .is_ok());
    let e = client.add_order(&order("O-5", "101")).await.unwrap_err();
    assert!(e.is_not_found(), "a partner id is not a WMS id: {e}");
    assert!(client
        .add_order(&order("O-6", &num.to_string()))
        .await
        .is_ok());
    server.stop().await;
}

/// Item 15: EGON answering a refused credential with HTTP 401 (as
/// response-codes.md says) is still read as "unauthorized".
#[tokio::test]
async fn egon_auth_refusals_are_unauthorized_with_http_200_or_401() {
    use sverka::connectors::egon::EgonError;
    let sb = sverka::sandbox::egon::EgonSandbox::new("id", "key", "token", 1);
    let server = sb.start(any_local_port()).await.unwrap();
    let client = EgonClient::new(EgonConfig::new(
        format!("{}/rest/v1", server.url),
        "id",
        Secret::new("wrong"),
        Secret::new("token"),
    ))
    .unwrap();
    for http_401 in [false, true] {
        sb.lock().strict.auth_refusal_http_401 = http_401;
        let e = client.inventory_detail(&[], false).await.unwrap_err();
        assert!(
            matches!(e, EgonError::Unauthorized { .. }),
            "401 = {http_401}: {e}"
        );
    }
    let last = sb.control.requests().last().unwrap().status;
    assert_eq!(last, 401);
    server.stop().await;
}

use sverka::connectors::egon::{EgonClient, EgonConfig};

/// Item 15: EGON types `CreateNewOrder`'s `item_id` Integer. Under the strict
/// switch the sandbox answers an alphanumeric id with 301 naming the field
/// (the documentation's own example, `"item_id": "1"`, still passes); under
/// the lenient default it takes any id.
#[tokio::test]
async fn egon_create_new_order_item_ids_under_both_readings() {
    let sb = sverka::sandbox::egon::EgonSandbox::new("AUTH_ID", "AUTH_KEY", "AUTH_TOKEN", 1);
    let server = sb.start(any_local_port()).await.unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vendors/egon/12-createneworder-input-parameters-sample-request-minimal.json"
    ))
    .unwrap();
    let with_item = |order: i64, item: Value| {
        let mut v: Value = serde_json::from_str(&example).unwrap();
        v["request"]["req_data"]["original_order_id"] = json!(order);
        v["request"]["req_data"]["items"][0]["item_id"] = item;
        v.to_string()
    };
    let send = |body: String| {
        let url = format!("{}/rest/v1", server.url);
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let v: Value = resp.json().await.unwrap();
            v
        }
    };
    for (strict, item, refused) in [
        (true, json!("1"), false),
        (true, json!(7), false),
        (true, json!("SKU-A"), true),
        (false, json!("SKU-A"), false),
        (false, json!("1"), false),
    ] {
        sb.lock().strict.integer_item_ids = strict;
        let order = 20_220_000 + i64::from(strict) * 100 + sb.control.requests().len() as i64;
        let answer = send(with_item(order, item.clone())).await;
        let case = format!("strict {strict}, item_id {item}: {answer}");
        assert_eq!(answer["auth_status"], 201, "{case}");
        let code = answer["resp_code"].as_i64().unwrap_or_default();
        let created = sb.lock().order(&order.to_string()).is_some();
        if refused {
            assert_eq!(code, 301, "{case}");
            let message = answer["response"]["resp_message"].as_str().unwrap_or("");
            assert!(message.contains("item_id"), "{case}");
            assert!(!created, "{case}");
        } else {
            assert!(![301, 302].contains(&code), "{case}");
            assert!(created, "{case}");
        }
    }
    server.stop().await;
}
