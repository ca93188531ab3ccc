//! The callback listener over real HTTP: documented payloads copied verbatim
//! from the seeds, error paths, duplicates, out-of-order statuses, restarts.

use serde_json::{json, Value};
use std::sync::Arc;
use sverka::db::events::{self, ScanStatus};
use sverka::db::Db;
use sverka::listener::{self, ListenerSettings, ListenerState};
use sverka::sandbox::common::any_local_port;
use sverka::secret::Secret;
use sverka::shop::Shop;

use crate::support::{self, TestWorld, WorldOptions};

const IMSHOP_KEY: &str = "imshop-hook-key";
const CRM_CLIENT: &str = "crm-client-id";
/// GS1 DataMatrix code with group separators (ASCII 29).
const GS1_CODE: &str = "0104601234567890215Nt7r+\u{1d}93dGVz";

/// A running listener with its databases: the atomic suite's, with the
/// request helpers this suite's payloads need.
type Fixture = crate::atomic::Listener;

impl crate::atomic::Listener {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }

    async fn post_json(&self, path: &str, body: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON answer"))
    }

    async fn imshop(&self, path: &str, body: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(IMSHOP_KEY)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON answer"))
    }

    async fn egon_form(&self, req: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url("/egon"))
            .form(&[("req", req)])
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON answer"))
    }
}

fn settings(max_body_bytes: usize) -> ListenerSettings {
    ListenerSettings {
        bind: any_local_port(),
        max_body_bytes,
        imsklad_callback_key: Secret::new("YOUR_ENDPOINT_KEY"),
        egon_auth_id: "AUTH_ID".into(),
        egon_auth_key: Secret::new("AUTH_KEY"),
        imshop_hook_key: Secret::new(IMSHOP_KEY),
        retailcrm_client_id: Secret::new(CRM_CLIENT),
        retailcrm_store: "main".into(),
        crm_offer_key_is_xml_id: false,
        ..ListenerSettings::default()
    }
}

/// The shop rows the documents' examples name.
async fn seed_shop(shop: &Shop) {
    for sql in [
        "INSERT INTO products (sku, name, description, price_kop, cost_kop, weight_g, ean, supplier_id) \
         VALUES ('124323', 'Тестовый товар', 'Очень тестовый товар', 10000, 10000, 100, '4600000000001', 'S1')",
        "INSERT INTO products (sku, name, description, price_kop, cost_kop, weight_g, ean, supplier_id) \
         VALUES ('NOSUP', 'Без поставщика', NULL, 12345, 5000, NULL, NULL, NULL)",
        "INSERT INTO suppliers (id, name, inn, phone, email, address) \
         VALUES ('S1', 'ООО Поставщик', '7700000000', '+74950000000', 's@example.ru', 'Москва')",
        "INSERT INTO marking_codes (code, sku) VALUES ('asdasd jakds lakdsaa', '124323')",
        "INSERT INTO marking_codes (code, sku, used_by, used_at) VALUES ('TAKEN-CODE', '124323', 'someone', 1)",
    ] {
        shop.db().execute(sql, &[], "seeding the shop").await.expect("seed");
    }
    shop.db()
        .execute(
            "INSERT INTO marking_codes (code, sku) VALUES (?, '124323')",
            &[GS1_CODE.into()],
            "seeding a GS1 code",
        )
        .await
        .expect("seed gs1");
}

/// A [`TestWorld`](support::TestWorld) with the listener on `settings`, the
/// state database at `state_url` and the example rows in a fresh SQLite shop.
async fn start_with(state_url: &str, settings: ListenerSettings) -> Fixture {
    let f = Fixture::start_with(state_url, settings).await;
    seed_shop(&f.shop).await;
    f
}

async fn start_on(state_url: &str, max_body_bytes: usize) -> Fixture {
    start_with(state_url, settings(max_body_bytes)).await
}

async fn start() -> (Fixture, support::TestDb) {
    let t = support::sqlite();
    let f = start_on(&t.url, listener::DEFAULT_MAX_BODY_BYTES).await;
    (f, t)
}

// --- seed 002: IMSKLAD callbacks, verbatim -------------------------------

/// Verbatim from the seed (the sandbox keeps the copy).
const IMSKLAD_GET_GOOD: &str = sverka::sandbox::imsklad::CALLBACK_GET_GOOD_EXAMPLE;

/// Verbatim from the seed (the sandbox keeps the copy).
const IMSKLAD_UPDATE_ORDER: &str = sverka::sandbox::imsklad::CALLBACK_UPDATE_ORDER_EXAMPLE;

/// Verbatim from the seed (the sandbox keeps the copy).
const IMSKLAD_SET_STATUS: &str = sverka::sandbox::imsklad::CALLBACK_SET_STATUS_EXAMPLE;

/// The doc's "Создание документа" example: really `order set_status` with empty data.
/// Verbatim from the seed (the sandbox keeps the copy).
const IMSKLAD_DOC_EXAMPLE: &str = sverka::sandbox::imsklad::CALLBACK_ADD_DOC_EXAMPLE;

/// Verbatim from the seed (the sandbox keeps the copy).
const IMSKLAD_UPDATE_TRACKS: &str = sverka::sandbox::imsklad::CALLBACK_UPDATE_TRACKS_EXAMPLE;

const IMSKLAD_ADD_DOC: &str = r#"{
  "key": "YOUR_ENDPOINT_KEY",
  "type": "doc",
  "action": "add_doc",
  "data": {
    "id" : "4423",
    "storage_id" : 1,
    "code" : "TT-23432",
    "type" : 0,
    "date" : 1565397798,
    "goods" : [
      {
        "id" : 123123,
        "quantity" : 4,
        "price" : 1000
      },
      {
        "id" : 342343,
        "quantity" : 1,
        "price" : 5000
      }
    ]
  }
}"#;

fn imsklad(kind: &str, action: &str, data: Value) -> String {
    json!({"key": "YOUR_ENDPOINT_KEY", "type": kind, "action": action, "data": data}).to_string()
}

async fn order(db: &Db, id: &str) -> events::OrderState {
    events::order_states(db)
        .await
        .expect("order states")
        .into_iter()
        .find(|o| o.order_id == id)
        .unwrap_or_else(|| panic!("no state for {id}"))
}

#[tokio::test]
async fn imsklad_documented_callbacks_are_answered_and_journaled() {
    let (f, _t) = start().await;

    let (status, good) = f.post_json("/imsklad", IMSKLAD_GET_GOOD).await;
    assert_eq!(status, 200);
    assert_eq!(
        good,
        json!({"id": 124323, "name": "Тестовый товар", "description": "Очень тестовый товар",
               "price": 100, "cost": 100, "weight": 100})
    );

    let (_, a) = f.post_json("/imsklad", IMSKLAD_UPDATE_ORDER).await;
    assert_eq!(a, json!({"result": "ok", "id": "AZ-1234"}));
    let (_, a) = f.post_json("/imsklad", IMSKLAD_SET_STATUS).await;
    assert_eq!(a, json!({"result": "ok"}));
    let (_, a) = f.post_json("/imsklad", IMSKLAD_UPDATE_TRACKS).await;
    assert_eq!(a, json!({"result": "ok"}));
    let (_, a) = f.post_json("/imsklad", IMSKLAD_ADD_DOC).await;
    assert_eq!(a, json!({"result": "ok"}));
    // The doc's own add_doc example has no data at all: refused as bad data.
    let (_, a) = f.post_json("/imsklad", IMSKLAD_DOC_EXAMPLE).await;
    assert_eq!(a["code"], 3, "{a}");

    let journal = events::events(&f.state_db, "imsklad", 0).await.unwrap();
    let methods: Vec<&str> = journal.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "order.update_order",
            "order.set_status",
            "order.update_tracks",
            "doc.add_doc"
        ]
    );
    for e in &journal {
        assert!(
            !e.body.contains("YOUR_ENDPOINT_KEY"),
            "key journaled: {}",
            e.body
        );
        assert_eq!(e.idem_key.len(), 64);
    }

    let az = order(&f.state_db, "AZ-1234").await;
    assert_eq!(az.wms_status, Some(1));
    assert_eq!(az.wms_order_id.as_deref(), Some("11232"));
    assert_eq!(az.track.as_deref(), Some("345345345234"));
    assert!(!az.is_canceled);
    let goods: Value = serde_json::from_str(az.goods.as_deref().expect("goods")).unwrap();
    assert_eq!(goods[0]["id"], 123123);
    assert_eq!(
        order(&f.state_db, "AZ-2322").await.track.as_deref(),
        Some("45345344544")
    );
    assert!(events::order_states(&f.state_db)
        .await
        .unwrap()
        .iter()
        .all(|o| o.order_id != "AZ-2324"));
}

#[tokio::test]
async fn imsklad_queries_and_error_paths() {
    let t = support::sqlite();
    let f = start_on(&t.url, 2048).await;

    let (_, s) = f
        .post_json(
            "/imsklad",
            &imsklad("supplier", "get_supplier", json!({"id": "S1"})),
        )
        .await;
    assert_eq!(s["name"], "ООО Поставщик");
    let (_, s) = f
        .post_json(
            "/imsklad",
            &imsklad("supplier", "get_supplier", json!({"id": 9})),
        )
        .await;
    assert_eq!(s, json!({"error": "Supplier not found", "code": 2}));
    let (_, s) = f
        .post_json("/imsklad", &imsklad("supplier", "get_suppliers", json!({})))
        .await;
    assert_eq!(s.as_array().map(Vec::len), Some(1));
    let (_, s) = f
        .post_json(
            "/imsklad",
            &imsklad("good", "get_good_suppliers", json!({"id": "124323"})),
        )
        .await;
    assert_eq!(s[0]["id"], "S1");
    let (_, s) = f
        .post_json(
            "/imsklad",
            &imsklad("good", "get_good_suppliers", json!({"id": "NOSUP"})),
        )
        .await;
    assert_eq!(s, json!([]));
    let (_, g) = f
        .post_json(
            "/imsklad",
            &imsklad("good", "get_good", json!({"id": "NOSUP"})),
        )
        .await;
    assert_eq!(
        (g["price"].clone(), g["cost"].clone()),
        (json!(123.45), json!(50))
    );
    let (_, g) = f
        .post_json(
            "/imsklad",
            &imsklad("good", "get_good", json!({"id": "nope"})),
        )
        .await;
    assert_eq!(g["code"], 2);

    let cases = [
        ("{\"key\": ", 3),
        (
            r#"{"key":"wrong","type":"order","action":"set_pay","data":{}}"#,
            3,
        ),
        (r#"{"type":"order","action":"set_pay","data":{}}"#, 3),
        (&imsklad("order", "explode", json!({})) as &str, 3),
        (&imsklad("order", "set_status", json!({"id": "X"})), 3),
        (&imsklad("order", "update_tracks", json!("x")), 3),
        (r#"[1,2]"#, 3),
    ];
    for (body, code) in cases {
        let (status, a) = f.post_json("/imsklad", body).await;
        assert_eq!(
            (status, a["code"].clone()),
            (200, json!(code)),
            "{body}: {a}"
        );
        assert!(a["error"].is_string());
        assert!(!a.to_string().contains("YOUR_ENDPOINT_KEY"));
    }
    let big = imsklad("order", "set_pay", json!({"pad": "x".repeat(4096)}));
    let (status, a) = f.post_json("/imsklad", &big).await;
    assert_eq!(status, 413);
    assert_eq!(a["code"], 3);
    assert!(events::events(&f.state_db, "imsklad", 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn duplicates_and_late_statuses_do_not_move_state_on_every_engine() {
    for t in support::engines("listener duplicates").await {
        let f = start_on(&t.url, listener::DEFAULT_MAX_BODY_BYTES).await;
        let status = |new: i64, old: i64| {
            imsklad(
                "order",
                "set_status",
                json!({"id": "D-1", "old_status": old, "new_status": new, "system_id": "55", "guid": null}),
            )
        };
        for _ in 0..2 {
            let (_, a) = f.post_json("/imsklad", &status(3, 2)).await;
            assert_eq!(a, json!({"result": "ok"}), "{}", t.engine());
        }
        assert_eq!(
            events::events(&f.state_db, "imsklad", 0)
                .await
                .unwrap()
                .len(),
            1
        );
        f.post_json("/imsklad", &status(6, 5)).await;
        // A late, older event arrives after the newer one.
        f.post_json("/imsklad", &status(2, 1)).await;
        assert_eq!(
            order(&f.state_db, "D-1").await.wms_status,
            Some(6),
            "{}",
            t.engine()
        );
        // Final states stay final.
        f.post_json("/imsklad", &status(10, 6)).await;
        f.post_json("/imsklad", &status(7, 6)).await;
        let d = order(&f.state_db, "D-1").await;
        assert_eq!(
            (d.wms_status, d.is_canceled),
            (Some(10), true),
            "{}",
            t.engine()
        );
        assert_eq!(
            events::events(&f.state_db, "imsklad", 0)
                .await
                .unwrap()
                .len(),
            5
        );

        // EGON orders by change_timestamp.
        let egon = |status: i64, at: &str| {
            json!({"auth": {"auth_id": "AUTH_ID", "auth_key": "AUTH_KEY"},
                   "request": {"req_method": "WriteOrderStatus", "req_data": {
                       "order_original_id": "E-1", "order_id": 9001, "status_id": status,
                       "change_timestamp": at, "packages": [{"package_nr": "TRK1"}]}}})
            .to_string()
        };
        f.egon_form(&egon(5, "2026-11-20 10:00:00")).await;
        let (_, a) = f.egon_form(&egon(2, "2026-11-19 10:00:00")).await;
        assert_eq!(a, json!({"auth_status": 1, "response": {"resp_status": 1}}));
        let e = order(&f.state_db, "E-1").await;
        assert_eq!((e.wms_status, e.track.as_deref()), (Some(5), Some("TRK1")));
        assert_eq!(e.wms_order_id.as_deref(), Some("9001"));

        f.server.stop().await;
        f.state_db.close().await;
        t.drop_db().await;
    }
}

#[tokio::test]
async fn restart_loses_nothing_acknowledged() {
    let t = support::sqlite();
    let f = start_on(&t.url, listener::DEFAULT_MAX_BODY_BYTES).await;
    let (_, a) = f.post_json("/imsklad", IMSKLAD_SET_STATUS).await;
    assert_eq!(a, json!({"result": "ok"}));
    drop(f);

    let g = start_on(&t.url, listener::DEFAULT_MAX_BODY_BYTES).await;
    // Redelivery of A (still the order's latest event) after the restart is
    // still a duplicate.
    let (_, a) = g.post_json("/imsklad", IMSKLAD_SET_STATUS).await;
    assert_eq!(a, json!({"result": "ok"}));
    let (_, a) = g.post_json("/imsklad", IMSKLAD_UPDATE_TRACKS).await;
    assert_eq!(a, json!({"result": "ok"}));
    let journal = events::events(&g.state_db, "imsklad", 0).await.unwrap();
    let methods: Vec<&str> = journal.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(methods, ["order.set_status", "order.update_tracks"]);
    let az = order(&g.state_db, "AZ-1234").await;
    assert_eq!(
        (az.wms_status, az.track.as_deref()),
        (Some(1), Some("345345345234"))
    );
    let health = g
        .http
        .get(g.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));
}

// --- seed 000: EGON -------------------------------------------------------

/// Verbatim from the seed (the sandbox keeps the copy).
const EGON_SAMPLE: &str = sverka::sandbox::egon::SAMPLE_CALLBACK_REQUEST;

fn inventory_update() -> String {
    json!({"auth": {"auth_id": "AUTH_ID", "auth_key": "AUTH_KEY"},
    "request": {"req_method": "InventoryStatusUpdate", "req_data": {
        "SKU-1": {"ID": 7, "ITEM_ID": "SKU-1", "EAN": "460", "COUNT_TYPES":
            {"ALL": 10, "EXPIRED": 1, "DAMAGED": 1, "ORDERED": "2", "RESERVED": 1,
             "EXPIRATION_BLOCKED": 1}, "images": {}},
        "SKU-2": {"ID": 8, "ITEM_ID": 2, "COUNT_TYPES": {"ALL": 1, "ORDERED": 3, "RESERVED": 0,
            "EXPIRED": 0, "DAMAGED": 0, "EXPIRATION_BLOCKED": 0}},
    }}})
    .to_string()
}

#[tokio::test]
async fn egon_transports_methods_and_errors() {
    let (f, _t) = start().await;
    // The documented sample, verbatim: an unknown method, answered with resp_status 0.
    let (status, a) = f.egon_form(EGON_SAMPLE).await;
    assert_eq!(status, 200);
    assert_eq!(a["auth_status"], 1);
    assert_eq!(a["response"]["resp_status"], 0);

    // HTML-escaped form value with a trailing comma.
    let escaped =
        html_escape::encode_double_quoted_attribute(&inventory_update()).replace("}}}}", "},}}}");
    let (_, a) = f.egon_form(&escaped).await;
    assert_eq!(a, json!({"auth_status": 1, "response": {"resp_status": 1}}));
    let stock = events::stock_snapshot(&f.state_db).await.unwrap();
    assert_eq!(stock.len(), 2);
    assert_eq!(
        (stock[0].sku.as_str(), stock[0].sellable, stock[0].wms_stock),
        ("2", 0, 1)
    );
    assert_eq!(
        (
            stock[1].sku.as_str(),
            stock[1].sellable,
            stock[1].wms_reserved
        ),
        ("SKU-1", 4, 3)
    );

    // Raw JSON body and ?req= on GET.
    let claim = json!({"auth": {"auth_id": "AUTH_ID", "auth_key": "AUTH_KEY"},
                       "request": {"req_method": "MyOrderClaimUpdate", "req_data": {"claim_id": 1}}})
    .to_string();
    let raw = f
        .http
        .post(f.url("/egon"))
        .body(claim.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        raw.json::<Value>().await.unwrap()["response"]["resp_status"],
        1
    );
    let invoice = json!({"auth": {"auth_id": "AUTH_ID", "auth_key": "AUTH_KEY"},
                         "request": {"req_method": "GetInvoiceUrl", "req_data": {"order_id": 1}}})
    .to_string();
    let got: Value = f
        .http
        .get(f.url("/egon"))
        .query(&[("req", invoice.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            got["auth_status"].clone(),
            got["response"]["resp_status"].clone()
        ),
        (json!(1), json!(0))
    );

    let wrong = EGON_SAMPLE.replace("\"AUTH_KEY\"", "\"NOPE\"");
    let (_, a) = f.egon_form(&wrong).await;
    assert_eq!(a["auth_status"], 0);
    let (_, a) = f.egon_form("{not json").await;
    assert_eq!(a["auth_status"], 0);
    let missing = json!({"auth": {"auth_id": "AUTH_ID", "auth_key": "AUTH_KEY"},
                         "request": {"req_method": "WriteOrderStatus", "req_data": {"status_id": 1}}})
    .to_string();
    let (_, a) = f.egon_form(&missing).await;
    assert_eq!(
        (
            a["auth_status"].clone(),
            a["response"]["resp_status"].clone()
        ),
        (json!(1), json!(0))
    );

    let journal = events::events(&f.state_db, "egon", 0).await.unwrap();
    let methods: Vec<&str> = journal.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(methods, ["InventoryStatusUpdate", "MyOrderClaimUpdate"]);
    assert!(journal.iter().all(|e| !e.body.contains("AUTH_KEY")));

    // RetailCRM reads the snapshot the EGON callback wrote.
    let q: Value = f
        .http
        .get(f.url("/retailcrm/inventories"))
        .query(&[("clientId", CRM_CLIENT)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        q,
        json!({"success": true, "offers": [
            {"externalId": "2", "stores": [{"code": "main", "available": 0}]},
            {"externalId": "SKU-1", "stores": [{"code": "main", "available": 4}]}]})
    );
    let form = f
        .http
        .post(f.url("/retailcrm/inventories"))
        .form(&[("clientId", CRM_CLIENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        form.json::<Value>().await.unwrap()["offers"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let denied = f
        .http
        .post(f.url("/retailcrm/inventories"))
        .form(&[("clientId", "other")])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 403);
    assert_eq!(denied.json::<Value>().await.unwrap()["success"], false);
}

// --- seed 003: IMSHOP -----------------------------------------------------

/// Verbatim from the seed (the sandbox keeps the copy).
const IMSHOP_SCAN: &str = sverka::sandbox::imshop::SAMPLE_SCAN_REQUEST;

/// Verbatim from the seed (the sandbox keeps the copy).
const IMSHOP_HISTORY: &str = sverka::sandbox::imshop::SAMPLE_HISTORY_REQUEST;

#[tokio::test]
async fn imshop_scans_and_history() {
    let (f, _t) = start().await;
    let (status, a) = f.imshop("/imshop/scan", IMSHOP_SCAN).await;
    assert_eq!(status, 200);
    assert_eq!(a["success"], true);
    assert_eq!(a["status"], "approved");
    let id = a["id"].as_str().expect("id").to_string();
    let code = f
        .shop
        .marking_code("asdasd jakds lakdsaa")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code.used_by.as_deref(), Some("79991234567"));

    // Delivered again: same answer, one journal row.
    let (_, again) = f.imshop("/imshop/scan", IMSHOP_SCAN).await;
    assert_eq!(
        (again["id"].as_str(), again["status"].as_str()),
        (Some(id.as_str()), Some("approved"))
    );
    assert_eq!(
        events::events(&f.state_db, "imshop", 0)
            .await
            .unwrap()
            .len(),
        1
    );

    // Another user (as a number), key in the body: denied in Russian.
    let other = json!({"barcode": "YXNkYXNkIGpha2RzIGxha2RzYWE=", "userId": 700, "timestamp": 1662660600, "key": IMSHOP_KEY});
    let resp = f
        .http
        .post(f.url("/imshop/scan"))
        .json(&other)
        .send()
        .await
        .unwrap();
    let d: Value = resp.json().await.unwrap();
    assert_eq!(
        (d["success"].clone(), d["status"].clone()),
        (json!(false), json!("denied"))
    );
    assert!(d["alertMessage"]
        .as_str()
        .unwrap()
        .contains("другим пользователем"));
    assert!(d.get("sucсess").is_none());

    let unknown =
        json!({"barcode": "NOT-A-CODE-123", "userId": "79991234567", "timestamp": 1662660700});
    let (_, u) = f.imshop("/imshop/scan", &unknown.to_string()).await;
    assert_eq!(u["status"], "denied");
    assert!(u["statusMessage"].is_string() && u["alertTitle"].is_string());

    // A raw GS1 code with group separators.
    let gs1 = json!({"barcode": GS1_CODE, "userId": "79991234567", "timestamp": 1662660800});
    let (_, g) = f.imshop("/imshop/scan", &gs1.to_string()).await;
    assert_eq!(g["status"], "approved");

    let (_, h) = f.imshop("/imshop/history", IMSHOP_HISTORY).await;
    let scans = h["scans"].as_array().expect("scans");
    let codes: Vec<&str> = scans.iter().map(|s| s["code"].as_str().unwrap()).collect();
    // `code` is the barcode exactly as IMSHOP sent it (here base64).
    assert_eq!(
        codes,
        [GS1_CODE, "NOT-A-CODE-123", "YXNkYXNkIGpha2RzIGxha2RzYWE="]
    );
    assert_eq!(scans[2]["timestamp"], 1662660581);
    assert_eq!(scans[2]["id"], id.as_str());
    let (_, h) = f.imshop("/imshop/history", r#"{"userId": 700,}"#).await;
    assert_eq!(h["scans"].as_array().map(Vec::len), Some(1));

    // Keys and bad input.
    let no_key = f
        .http
        .post(f.url("/imshop/scan"))
        .body(IMSHOP_SCAN)
        .send()
        .await
        .unwrap();
    // Seed 003: the scan hook answers HTTP 200; a refusal says so in the body.
    assert_eq!(no_key.status().as_u16(), 200);
    let refusal: Value = no_key.json().await.unwrap();
    assert_eq!(
        (refusal["success"].clone(), refusal["status"].clone()),
        (json!(false), json!("denied"))
    );
    let wrong = f
        .http
        .post(f.url("/imshop/history"))
        .bearer_auth("nope")
        .body(IMSHOP_HISTORY)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 200);
    let refusal: Value = wrong.json().await.unwrap();
    assert_eq!(
        (refusal["success"].clone(), refusal["scans"].clone()),
        (json!(false), json!([]))
    );
    let (s, e) = f.imshop("/imshop/scan", "{oops").await;
    assert_eq!((s, e["status"].clone()), (200, json!("denied")));
    let (s, e) = f.imshop("/imshop/scan", r#"{"userId": "1"}"#).await;
    assert_eq!((s, e["success"].clone()), (200, json!(false)));

    // Shop database gone: the scan is stored as processing, to re-check.
    f.shop.db().close().await;
    let later = json!({"barcode": "LATER-CODE", "userId": "79991234567", "timestamp": 1662660900});
    let (s, p) = f.imshop("/imshop/scan", &later.to_string()).await;
    assert_eq!(
        (s, p["status"].clone(), p["success"].clone()),
        (200, json!("processing"), json!(true))
    );
    let stuck = events::scans_stuck_processing(&f.state_db, 0)
        .await
        .unwrap();
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0].code, "LATER-CODE");

    // Push bookkeeping: a re-checked scan becomes due, then pushed.
    assert!(events::scans_to_push(&f.state_db).await.unwrap().is_empty());
    events::set_scan_status(&f.state_db, &stuck[0].id, ScanStatus::Approved, Some("ok"))
        .await
        .unwrap();
    let due = events::scans_to_push(&f.state_db).await.unwrap();
    assert_eq!(due.len(), 1);
    events::mark_scan_pushed(&f.state_db, &due[0].id, ScanStatus::Approved, Some("503"))
        .await
        .unwrap();
    assert_eq!(
        events::scans_to_push(&f.state_db).await.unwrap()[0]
            .push_error
            .as_deref(),
        Some("503")
    );
    events::mark_scan_pushed(&f.state_db, &due[0].id, ScanStatus::Approved, None)
        .await
        .unwrap();
    assert!(events::scans_to_push(&f.state_db).await.unwrap().is_empty());
}

#[tokio::test]
async fn imshop_closed_without_key_and_oversized_bodies() {
    let t = support::sqlite();
    let mut s = settings(64);
    s.imshop_hook_key = Secret::default();
    s.retailcrm_client_id = Secret::default();
    let f = start_with(&t.url, s).await;
    let (server, state_db, http) = (&f.server, &f.state_db, &f.http);
    let closed = http
        .post(format!("{}/imshop/scan", server.url))
        .bearer_auth("")
        .body(IMSHOP_SCAN)
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status().as_u16(), 200);
    assert_eq!(closed.json::<Value>().await.unwrap()["success"], false);
    let crm = http
        .get(format!("{}/retailcrm/inventories?clientId=", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(crm.status().as_u16(), 403);
    let big = http
        .post(format!("{}/egon", server.url))
        .body(EGON_SAMPLE)
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
    assert_eq!(big.json::<Value>().await.unwrap()["auth_status"], 0);
    assert!(events::events(state_db, "egon", 0)
        .await
        .unwrap()
        .is_empty());
    f.server.stop().await;
}

#[tokio::test]
async fn stock_snapshot_replace_all_on_every_engine() {
    let row = |sku: &str, n: i64| events::StockSnapshot {
        sku: sku.into(),
        wms_stock: n,
        wms_reserved: 0,
        sellable: n,
        source: events::SOURCE_STOCK_JOB.into(),
        taken_at: 5,
    };
    for t in support::engines("stock snapshot").await {
        let db = Db::connect_state(&t.url).await.unwrap();
        events::put_stock_snapshot(&db, &[row("A", 1), row("B", 2)])
            .await
            .unwrap();
        events::put_stock_snapshot(&db, &[row("B", 9), row("C", -4), row("B", 3)])
            .await
            .unwrap();
        let snap = events::stock_snapshot(&db).await.unwrap();
        let got: Vec<(&str, i64)> = snap.iter().map(|s| (s.sku.as_str(), s.sellable)).collect();
        assert_eq!(got, [("B", 3), ("C", 0)], "{}", t.engine());
        db.close().await;
        t.drop_db().await;
    }
}

#[tokio::test]
async fn concurrent_duplicates_scans_and_unicode_bodies_on_every_engine() {
    for t in support::engines("listener concurrency").await {
        let f = start_on(&t.url, listener::DEFAULT_MAX_BODY_BYTES).await;
        let body = imsklad(
            "order",
            "set_status",
            json!({"id": "C-1", "old_status": 0, "new_status": 4, "system_id": 1, "guid": null}),
        );
        let mut sends = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let (http, url, body) = (f.http.clone(), f.url("/imsklad"), body.clone());
            sends.spawn(async move {
                let resp = http.post(url).body(body).send().await.expect("send");
                (
                    resp.status().as_u16(),
                    resp.json::<Value>().await.expect("json"),
                )
            });
        }
        while let Some(done) = sends.join_next().await {
            let (status, answer) = done.expect("task");
            assert_eq!(
                (status, answer),
                (200, json!({"result": "ok"})),
                "{}",
                t.engine()
            );
        }
        assert_eq!(
            events::events(&f.state_db, "imsklad", 0)
                .await
                .unwrap()
                .len(),
            1,
            "{}",
            t.engine()
        );

        f.post_json("/imsklad", IMSKLAD_UPDATE_ORDER).await;
        let journal = events::events(&f.state_db, "imsklad", 1).await.unwrap();
        assert!(
            journal[0].body.contains("Иванов Иван Иванович"),
            "{}",
            t.engine()
        );

        let (_, a) = f.imshop("/imshop/scan", IMSHOP_SCAN).await;
        assert_eq!(a["status"], "approved", "{}", t.engine());
        let gs1 = json!({"barcode": GS1_CODE, "userId": 79991234567_i64, "timestamp": 1662660800});
        let (_, g) = f.imshop("/imshop/scan", &gs1.to_string()).await;
        assert_eq!(g["status"], "approved", "{}", t.engine());
        // The shop goes away; a re-scan keeps the decision already taken.
        f.shop.db().close().await;
        let rescan = IMSHOP_SCAN.replace("1662660581", "1662661000");
        let (_, r) = f.imshop("/imshop/scan", &rescan).await;
        assert_eq!(
            (r["status"].clone(), r["id"].clone()),
            (json!("approved"), a["id"].clone())
        );
        let (_, h) = f.imshop("/imshop/history", IMSHOP_HISTORY).await;
        let codes: Vec<&str> = h["scans"]
            .as_array()
            .expect("scans")
            .iter()
            .filter_map(|s| s["code"].as_str())
            .collect();
        // A re-scan keeps the first scan's time: newest first is still the GS1 code.
        assert_eq!(
            codes,
            [GS1_CODE, "YXNkYXNkIGpha2RzIGxha2RzYWE="],
            "{}",
            t.engine()
        );

        f.server.stop().await;
        f.state_db.close().await;
        t.drop_db().await;
    }
}

#[tokio::test]
async fn serve_binds_and_stops_on_shutdown() {
    let t = support::sqlite();
    let shop_db = support::sqlite();
    let world = TestWorld::spawn(
        &shop_db,
        WorldOptions {
            state_url: Some(t.url.clone()),
            listener: false,
            ..WorldOptions::listener_only(settings(1024))
        },
    )
    .await;
    seed_shop(&world.shop).await;
    let state = ListenerState {
        settings: Arc::new(settings(1024)),
        state_db: world.state.clone(),
        shop: world.shop.clone(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(listener::serve(state, async move {
        let _ = rx.await;
    }));
    tx.send(()).expect("shutdown signal");
    running.await.expect("task").expect("serve returns cleanly");
}
