//! Every example request and answer of the four seed documents and of the EGON
//! documentation pages sverka uses, stored verbatim under
//! `tests/fixtures/vendors/<vendor>/` with its source section in the folder's
//! `MANIFEST.tsv` (the sandbox reads its samples from the same files), and
//! each parsed, answered or sent here. Examples that are broken in the
//! documents stay broken: seed 003's history answer is not JSON and is read by
//! the lenient reader; its `sucсess` (Cyrillic "с") is read as `success`.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::response::IntoResponse;
use sverka::connectors::egon::{EgonClient, EgonConfig, OrderRef};
use sverka::connectors::imshop::{HistoryAnswer, ScanAnswer};
use sverka::connectors::imsklad::{Billing, Good};
use sverka::lenient;
use sverka::listener::ListenerSettings;
use sverka::sandbox::common::any_local_port;
use sverka::secret::Secret;
use sverka::server::{spawn, RunningServer};

use crate::support;

fn vendor_dir(vendor: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vendors")
        .join(vendor)
}

/// file → source section, from the folder's MANIFEST.tsv; every file of the
/// folder is listed and every listed file exists.
fn manifest(vendor: &str) -> BTreeMap<String, String> {
    let dir = vendor_dir(vendor);
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut cols = line.split('\t');
        let (file, section) = (cols.next().unwrap(), cols.next().unwrap_or(""));
        assert!(
            !section.trim().is_empty(),
            "{vendor}/{file}: no source section"
        );
        assert!(
            dir.join(file).exists(),
            "{vendor}/{file} is listed but missing"
        );
        out.insert(file.to_owned(), section.to_owned());
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name != "MANIFEST.tsv" {
            assert!(
                out.contains_key(&name),
                "{vendor}/{name} has no source section"
            );
        }
    }
    out
}

fn read(vendor: &str, file: &str) -> String {
    std::fs::read_to_string(vendor_dir(vendor).join(file)).unwrap()
}

/// A listener-only [`support::TestWorld`] whose keys are the documents'
/// placeholders, with the rows the examples name in the shop.
async fn listener_for_examples() -> (RunningServer, support::TestWorld, support::TestDb) {
    let settings = ListenerSettings {
        bind: any_local_port(),
        imsklad_callback_key: Secret::new("YOUR_ENDPOINT_KEY"),
        egon_auth_id: "AUTH_ID".into(),
        egon_auth_key: Secret::new("AUTH_KEY"),
        imshop_hook_key: Secret::new("hook"),
        ..ListenerSettings::default()
    };
    let support::ListenerWorld {
        server,
        world,
        shop_db,
    } = support::ListenerWorld::spawn(None, settings).await;
    for sql in [
        "INSERT INTO products (sku, name, description, price_kop, cost_kop, weight_g) \
         VALUES ('124323', 'Тестовый товар', 'Очень тестовый товар', 10000, 10000, 100)",
        "INSERT INTO marking_codes (code, sku) VALUES ('asdasd jakds lakdsaa', '124323')",
    ] {
        world.shop.db().execute(sql, &[], "seeding").await.unwrap();
    }
    (server, world, shop_db)
}

async fn post(url: &str, body: &str, bearer: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A server answering every request with `body` (an answer example verbatim).
async fn canned(body: String) -> RunningServer {
    let router = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { ([("content-type", "application/json")], body).into_response() }
    });
    spawn(router, any_local_port()).await.unwrap()
}

/// Seed 002 (IMSKLAD): client requests are accepted by the sandbox as sent
/// (placeholder key replaced), callbacks are answered by the listener, answers
/// are parsed by the client's types.
#[tokio::test]
async fn imsklad_examples_of_seed_002() {
    let m = manifest("imsklad");
    assert_eq!(m.len(), 33);
    let sandbox = sverka::sandbox::imsklad::ImskladSandbox::new("YOUR_API_KEY", 1, 1);
    for id in ["123123", "342343"] {
        sandbox.lock().add_good(id, "Тестовый товар", 10_000);
    }
    let wms = sandbox.start(any_local_port()).await.unwrap();
    let (shop_listener, _d, _t) = listener_for_examples().await;
    for (file, section) in &m {
        let text = read("imsklad", file);
        let v: Value = lenient::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let callback = section.starts_with("Callback") || section == "Авторизация";
        if file.ends_with("-request.json") {
            let url = if callback {
                format!("{}/imsklad", shop_listener.url)
            } else {
                format!("{}/", wms.url)
            };
            let (status, body) = post(&url, &text, None).await;
            assert_eq!(status, 200, "{file} ({section}): {body}");
            let a: Value = lenient::from_str(&body).unwrap();
            if section == "Callback Создание документа" {
                // The document's example is `order/set_status` with empty data.
                assert_eq!(a["code"], 3, "{file}: {a}");
            } else {
                assert!(
                    a.get("code") != Some(&json!(3)),
                    "{file} ({section}) refused as bad data: {a}"
                );
            }
            if section == "Авторизация" {
                assert_eq!(
                    a["name"], "Тестовый товар",
                    "{file}: get_good by the example id"
                );
            }
        } else if file.contains("ostatkov") {
            let answer = sverka::connectors::imsklad::parse_stock(&v).unwrap();
            assert_eq!(answer.rows.len(), 2, "{file}");
            assert!(answer.unreadable.is_empty(), "{file}");
        } else if file.contains("balansa") {
            let b: Billing = serde_json::from_value(v).unwrap();
            assert_eq!(b.lines.len(), 2, "{file}");
            assert_eq!(b.lines[1].kind, 9, "{file}: \"Забор товара\" is type 9");
        } else if file.starts_with("25-") {
            let g: Good = serde_json::from_value(v).unwrap();
            assert_eq!((g.width, g.size.as_deref()), (Some(10), Some("Большой")));
        } else if file.ends_with("error-answer.json") {
            assert_eq!(v["code"], 3, "{file}");
        } else if file.starts_with("13-") {
            assert_eq!(v["result"], "warning", "{file}");
        } else {
            assert_eq!(v["result"], "ok", "{file} ({section})");
        }
    }
    wms.stop().await;
    shop_listener.stop().await;
}

/// Seed 000 and egon-api-documentation (InventoryDetail, GetOrderStatus,
/// StornoOrder, CreateNewOrder): requests are answered by the sandbox as
/// sent, answers are read by the client, the callback by the listener.
#[tokio::test]
async fn egon_examples_of_seed_000_and_the_documentation() {
    let m = manifest("egon");
    assert_eq!(m.len(), 14);
    let sandbox = sverka::sandbox::egon::EgonSandbox::new("AUTH_ID", "AUTH_KEY", "AUTH_TOKEN", 1);
    sandbox
        .lock()
        .add_item("1", sverka::connectors::egon::CountTypes::default());
    let egon = sandbox.start(any_local_port()).await.unwrap();
    let (shop_listener, _d, _t) = listener_for_examples().await;
    for (file, section) in &m {
        let text = read("egon", file);
        let v: Value = lenient::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        if file.starts_with("01-") {
            // The callback envelope: auth accepted, the placeholder method refused.
            let resp = reqwest::Client::new()
                .post(format!("{}/egon", shop_listener.url))
                .form(&[("req", text.as_str())])
                .send()
                .await
                .unwrap();
            let a: Value = resp.json().await.unwrap();
            assert_eq!(a["auth_status"], 1, "{file}: {a}");
        } else if file.starts_with("02-") {
            assert_eq!(
                (
                    v["auth_status"].clone(),
                    v["response"]["resp_status"].clone()
                ),
                (json!(1), json!(1))
            );
        } else if section.contains("Sample request") {
            let (status, body) = post(&format!("{}/rest/v1", egon.url), &text, None).await;
            assert_eq!(status, 200, "{file}: {body}");
            let a: Value = lenient::from_str(&body).unwrap();
            assert_eq!(a["auth_status"], 201, "{file}: {a}");
            let code = a["resp_code"].as_i64().unwrap_or_default();
            assert!(
                ![301, 302].contains(&code),
                "{file} ({section}) refused: {a}"
            );
        } else {
            // A documented answer, read by the client from a server that sends it verbatim.
            let server = canned(text.clone()).await;
            let client = EgonClient::new(EgonConfig::new(
                server.url.clone(),
                "AUTH_ID",
                Secret::new("AUTH_KEY"),
                Secret::new("AUTH_TOKEN"),
            ))
            .unwrap();
            if file.contains("inventorydetail") {
                let items = client.inventory_detail(&[], false).await.unwrap();
                assert_eq!(items[0].item_id, "1");
                assert_eq!(
                    items[0].changed_at,
                    sverka::connectors::egon::parse_datetime("2022-09-12 11:07:51"),
                    "{file}: changed_at is read inside count_types"
                );
            } else if file.contains("getorderstatus") {
                let s = client
                    .get_order_status(OrderRef::Original("1".into()))
                    .await
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
                assert!(s.status_id >= 0);
            } else if file.contains("stornoorder") {
                client
                    .storno_order(OrderRef::Original("1".into()))
                    .await
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
            } else {
                assert!(file.contains("createneworder"), "{file}");
                assert!(v["response"].is_object(), "{file}");
            }
            server.stop().await;
        }
    }
    egon.stop().await;
    shop_listener.stop().await;
}

/// Seed 003 (IMSHOP): the hooks' requests are answered by the listener, the
/// answers are read (the broken history example too), the status update is
/// accepted by the sandbox.
#[tokio::test]
async fn imshop_examples_of_seed_003() {
    let m = manifest("imshop");
    assert_eq!(m.len(), 5);
    let (shop_listener, _d, _t) = listener_for_examples().await;
    let sandbox = sverka::sandbox::imshop::ImshopSandbox::new("k", 1);
    let imshop = sandbox.start(any_local_port()).await.unwrap();
    for (file, section) in &m {
        let text = read("imshop", file);
        match file.as_str() {
            f if f.starts_with("01-") => {
                let (s, body) = post(
                    &format!("{}/imshop/scan", shop_listener.url),
                    &text,
                    Some("hook"),
                )
                .await;
                let a: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(
                    (s, a["status"].clone()),
                    (200, json!("approved")),
                    "{section}: {a}"
                );
                assert!(a.get("sucсess").is_none() && a["success"] == true);
            }
            f if f.starts_with("02-") => {
                let a: ScanAnswer = serde_json::from_str(&text).unwrap();
                assert!(!a.success, "the Cyrillic sucсess is read");
            }
            f if f.starts_with("03-") => {
                let (s, body) = post(
                    &format!("{}/imshop/history", shop_listener.url),
                    &text,
                    Some("hook"),
                )
                .await;
                let a: Value = serde_json::from_str(&body).expect("sverka answers the valid form");
                assert_eq!(s, 200);
                assert_eq!(a["scans"][0]["code"], "YXNkYXNkIGpha2RzIGxha2RzYWE=");
            }
            f if f.starts_with("04-") => {
                assert!(
                    serde_json::from_str::<Value>(&text).is_err(),
                    "the example is broken"
                );
                let h = HistoryAnswer::parse_lenient(&text).unwrap();
                assert_eq!(h.scans.len(), 1);
                assert_eq!(h.scans[0].code, "YXNkYXNkIGpha2RzIGxha2RzYWE=");
            }
            _ => {
                let (s, body) =
                    post(&format!("{}/scans/update", imshop.url), &text, Some("k")).await;
                assert!([204, 404].contains(&s), "{section}: {s} {body}");
            }
        }
    }
    imshop.stop().await;
    shop_listener.stop().await;
}

/// Seed 001 (RetailCRM) has no examples; the folder says so.
#[test]
fn retailcrm_seed_001_has_no_examples() {
    let m = manifest("retailcrm");
    assert_eq!(m.keys().collect::<Vec<_>>(), ["README.md"]);
}
