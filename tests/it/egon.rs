//! EGON: the client against the sandbox over real HTTP, and the callbacks the
//! sandbox sends to a listener.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sverka::connectors::egon::{
    CountTypes, EgonClient, EgonConfig, EgonError, InventoryCard, InventoryStatusUpdate, NewOrder,
    NewOrderItem, OrderRef, OrderStatus,
};
use sverka::connectors::http::HttpPolicy;
use sverka::sandbox::common::{any_local_port, FaultKind, ScriptedFault};
use sverka::sandbox::egon::{
    callback_envelope, send_callback, EgonSandbox, Transport, SAMPLE_CALLBACK_REQUEST,
};
use sverka::secret::Secret;
use sverka::server::{spawn, RunningServer};

const ID: &str = "shop-1";
const KEY: &str = "key-s3cr3t";
const TOKEN: &str = "token-s3cr3t";

fn fast_policy() -> HttpPolicy {
    crate::support::client_policy()
}

fn config(url: &str) -> EgonConfig {
    let mut cfg = EgonConfig::new(url, ID, Secret::new(KEY), Secret::new(TOKEN));
    cfg.policy = fast_policy();
    cfg
}

async fn setup() -> (EgonSandbox, RunningServer, EgonClient) {
    let sb = EgonSandbox::new(ID, KEY, TOKEN, 7);
    let server = sb.start(any_local_port()).await.unwrap();
    let client = EgonClient::new(config(&format!("{}/rest/v1", server.url))).unwrap();
    (sb, server, client)
}

fn counts(all: i64, reserved: i64) -> CountTypes {
    CountTypes {
        all,
        reserved,
        ..CountTypes::default()
    }
}

fn new_order(id: &str, lines: &[(&str, i64)]) -> NewOrder {
    NewOrder {
        original_order_id: id.into(),
        shop_setting_id: 1,
        reference_number: None,
        customer_name: "Ivan".into(),
        customer_surname: "Petrov".into(),
        customer_phone: "+79991234567".into(),
        customer_email: "ivan@example.com".into(),
        name: "Ivan".into(),
        surname: "Petrov".into(),
        phone: "+79991234567".into(),
        email: "ivan@example.com".into(),
        street: "Lenina".into(),
        street_number: "1".into(),
        city: "Moscow".into(),
        country: "RU".into(),
        postal_code: "101000".into(),
        id_delivery: 12,
        delivery_branch_id: None,
        payment_cod: true,
        cod_price_kop: Some(12_100),
        currency: Some("RUB".into()),
        note: None,
        items: lines
            .iter()
            .map(|(sku, n)| NewOrderItem {
                item_id: sku.to_string(),
                name: format!("Product {sku}"),
                count: *n,
                catalog_id: None,
                price_with_tax_kop: Some(6_000),
            })
            .collect(),
    }
}

fn bodies(sb: &EgonSandbox) -> Vec<Value> {
    sb.control
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn inventory_detail_all_some_and_on_stock() {
    let (sb, _srv, client) = setup().await;
    {
        let mut st = sb.lock();
        st.add_item("100", counts(10, 2));
        st.add_item("SKU-B", counts(0, 0));
        st.set_ean("100", "4601234567890").unwrap();
    }
    let mut all = client.inventory_detail(&[], false).await.unwrap();
    all.sort_by(|a, b| a.item_id.cmp(&b.item_id));
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].item_id, "100");
    assert_eq!(all[0].ean.as_deref(), Some("4601234567890"));
    assert_eq!(all[0].counts.as_ref().map(|c| c.sellable()), Ok(8));
    assert!(all[0].egon_id.is_some());

    let some = client
        .inventory_detail(&["SKU-B".to_string()], false)
        .await
        .unwrap();
    assert_eq!(some.len(), 1);
    assert_eq!(some[0].item_id, "SKU-B");

    let on_stock = client.inventory_detail(&[], true).await.unwrap();
    assert_eq!(on_stock.len(), 1);

    // Nothing found: EGON answers `inventory_details: []`.
    let none = client
        .inventory_detail(&["missing".to_string()], false)
        .await
        .unwrap();
    assert!(none.is_empty());

    // Exact request: raw JSON, full envelope, numeric ids as numbers.
    let sent = bodies(&sb);
    assert_eq!(sent[0]["auth"]["auth_id"], ID);
    assert_eq!(sent[0]["auth"]["auth_token"], TOKEN);
    assert_eq!(sent[0]["request"]["req_method"], "InventoryDetail");
    assert_eq!(sent[0]["request"]["req_data"]["item_id_list"], json!([]));
    assert_eq!(sent[2]["request"]["req_data"]["only_on_stock"], json!(1));
    let ct = sb.control.requests()[0].content_type.clone();
    assert_eq!(ct.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn get_order_status_by_either_id_and_not_found() {
    let (sb, _srv, client) = setup().await;
    let egon_id = {
        let mut st = sb.lock();
        st.add_item("100", counts(5, 0));
        let id = st.seed_order("A-1", &[("100", 2)]);
        st.set_order_status("A-1", 5).unwrap();
        st.add_package("A-1", "TRACK-1").unwrap();
        st.set_total_cost("A-1", 489).unwrap();
        id
    };
    let by_original = client
        .get_order_status(OrderRef::Original("A-1".into()))
        .await
        .unwrap();
    assert_eq!(by_original.order_id, Some(egon_id));
    assert_eq!(by_original.status_id, 5);
    assert_eq!(by_original.status_name, "shipped");
    assert_eq!(by_original.tracks(), vec!["TRACK-1"]);
    assert_eq!(by_original.order_items[0].item_id, "100");
    assert_eq!(by_original.order_items[0].count, 2);
    assert_eq!(by_original.total_cost_kop, Some(489));
    assert_eq!(
        by_original.change_timestamp,
        Some(sb.lock().order("A-1").unwrap().change_timestamp)
    );

    let by_egon = client
        .get_order_status(OrderRef::EgonId(egon_id))
        .await
        .unwrap();
    assert_eq!(by_egon, by_original);

    let err = client
        .get_order_status(OrderRef::Original("nope".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, EgonError::NotFound { .. }), "{err}");
    // 404 is final: one request, no retry.
    assert_eq!(sb.control.requests().len(), 3);
}

#[tokio::test]
async fn create_update_and_refuse_orders() {
    let (sb, _srv, client) = setup().await;
    let created = client
        .create_new_order(&new_order("A-7", &[("100", 1)]))
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(created.order_status_id, Some(0));
    let sent = &bodies(&sb)[0]["request"]["req_data"];
    assert_eq!(sent["payment_cod"], json!(1));
    assert_eq!(sent["cod_price"], json!(121.0));
    assert_eq!(
        sent["items"][0],
        json!({"item_id": 100, "name": "Product 100",
        "count": 1, "price_with_tax": 60.0})
    );

    let updated = client
        .create_new_order(&new_order("A-7", &[("100", 3)]))
        .await
        .unwrap();
    assert!(!updated.created);
    assert_eq!(updated.order_id, created.order_id);
    assert_eq!(sb.lock().order("A-7").unwrap().lines[0].count, 3);

    sb.lock().set_order_status("A-7", 5).unwrap();
    let err = client
        .create_new_order(&new_order("A-7", &[("100", 1)]))
        .await
        .unwrap_err();
    assert!(matches!(err, EgonError::NotAllowed { .. }), "{err}");

    let mut bad = new_order("A-8", &[("100", 1)]);
    bad.customer_email.clear();
    let err = client.create_new_order(&bad).await.unwrap_err();
    match err {
        EgonError::BadRequest { message, .. } => assert!(message.contains("customer_email")),
        other => panic!("expected BadRequest, got {other}"),
    }
}

#[tokio::test]
async fn a_lost_create_new_order_answer_is_retried_after_the_update_interval() {
    let sb = EgonSandbox::new(ID, KEY, TOKEN, 7);
    let server = sb.start(any_local_port()).await.unwrap();
    let mut cfg = config(&format!("{}/rest/v1", server.url));
    cfg.order_update_interval = Duration::from_millis(1200);
    let client = EgonClient::new(cfg).unwrap();
    // EGON creates the order but its answer is cut off: CreateNewOrder is an
    // upsert by original id, so sending it again is safe, once 20 s (here
    // 1.2 s) have passed since the first request.
    sb.control.push_fault(ScriptedFault {
        path_contains: "CreateNewOrder".into(),
        skip: 0,
        times: 1,
        kind: FaultKind::Truncate,
    });
    let answer = client
        .create_new_order(&new_order("R-1", &[("100", 2)]))
        .await
        .expect("retried");
    assert!(
        !answer.created,
        "the retry updated the order the first request created"
    );
    let sent = sb.control.requests_to("/rest/v1");
    assert_eq!(sent.len(), 2);
    let gap = sent[1].instant.duration_since(sent[0].instant);
    assert!(gap >= Duration::from_millis(1200), "retried after {gap:?}");
    assert_eq!(sb.lock().order("R-1").unwrap().lines[0].count, 2);
}

#[tokio::test]
async fn storno_cancels_once_and_only_before_dispatch() {
    let (sb, _srv, client) = setup().await;
    {
        let mut st = sb.lock();
        st.seed_order("A-1", &[("100", 1)]);
        st.seed_order("A-2", &[("100", 1)]);
        st.set_order_status("A-2", 5).unwrap();
    }
    client
        .storno_order(OrderRef::Original("A-1".into()))
        .await
        .unwrap();
    assert_eq!(sb.lock().order("A-1").unwrap().status_id, 9);
    let again = client
        .storno_order(OrderRef::Original("A-1".into()))
        .await
        .unwrap_err();
    assert!(matches!(again, EgonError::NotAllowed { .. }), "{again}");
    let shipped = client
        .storno_order(OrderRef::Original("A-2".into()))
        .await
        .unwrap_err();
    assert!(matches!(shipped, EgonError::NotAllowed { .. }), "{shipped}");
    let missing = client.storno_order(OrderRef::EgonId(1)).await.unwrap_err();
    assert!(matches!(missing, EgonError::NotFound { .. }), "{missing}");
}

#[tokio::test]
async fn update_inventory_card_creates_then_updates() {
    let (sb, _srv, client) = setup().await;
    let mut card = InventoryCard {
        item_id: "SKU-9".into(),
        shop_setting_id: 1,
        name: "Tea".into(),
        catalog_id: None,
        ean: Some("4600000000001".into()),
        mj: Some("pcs".into()),
        enabled: Some(true),
        price_without_tax_kop: Some(10_050),
        tax: Some(20.0),
    };
    client.update_inventory_card(&card).await.unwrap();
    assert_eq!(sb.lock().item("SKU-9").unwrap().name, "Tea");
    card.name = "Green tea".into();
    client.update_inventory_card(&card).await.unwrap();
    assert_eq!(sb.lock().item("SKU-9").unwrap().name, "Green tea");
    let sent = &bodies(&sb)[0]["request"]["req_data"];
    assert_eq!(sent["item_id"], json!("SKU-9"));
    assert_eq!(sent["price_without_tax"], json!(100.5));
    assert_eq!(sent["enabled"], json!(1));

    card.name.clear();
    let err = client.update_inventory_card(&card).await.unwrap_err();
    assert!(matches!(err, EgonError::BadRequest { .. }), "{err}");
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized_without_retry() {
    let (sb, srv, _client) = setup().await;
    let mut cfg = config(&srv.url);
    cfg.auth_token = Secret::new("wrong-token");
    let client = EgonClient::new(cfg).unwrap();
    let err = client.inventory_detail(&[], false).await.unwrap_err();
    assert!(matches!(err, EgonError::Unauthorized { .. }), "{err}");
    assert!(!err.to_string().contains("s3cr3t"));
    assert!(!format!("{err:?}").contains("wrong-token"));
    assert_eq!(sb.control.requests().len(), 1);
}

#[tokio::test]
async fn malformed_requests_and_unknown_methods() {
    let (_sb, srv, _client) = setup().await;
    let http = reqwest::Client::new();
    let text = http
        .post(&srv.url)
        .body("{not json")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["auth_status"], 301);

    let unknown = json!({"auth": {"auth_id": ID, "auth_key": KEY, "auth_token": TOKEN},
        "request": {"req_method": "NoSuchMethod", "req_data": {}}});
    let v: Value = http
        .post(&srv.url)
        .json(&unknown)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["auth_status"], 201);
    assert_eq!(v["response"]["resp_code"], 302);

    // Trailing commas and a string order id are accepted by the sandbox too.
    let lenient = format!(
        r#"{{"auth": {{"auth_id": "{ID}", "auth_key": "{KEY}", "auth_token": "{TOKEN}",}},
        "request": {{"req_method": "GetOrderStatus", "req_data": {{"order_id": "1",}},}},}}"#
    );
    let v: Value = http
        .post(&srv.url)
        .body(lenient)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["response"]["resp_code"], 404);
}

#[tokio::test]
async fn documented_codes_map_to_typed_errors() {
    let (sb, _srv, client) = setup().await;
    sb.lock().seed_order("A-1", &[("1", 1)]);
    let key = || OrderRef::Original("A-1".into());
    sb.lock().script_code("GetOrderStatus", 302, 1);
    let e = client.get_order_status(key()).await.unwrap_err();
    assert!(matches!(e, EgonError::MethodNotFound { .. }), "{e}");
    sb.lock().script_code("GetOrderStatus", 301, 1);
    let e = client.get_order_status(key()).await.unwrap_err();
    assert!(matches!(e, EgonError::BadRequest { .. }), "{e}");
    sb.lock().script_code("GetOrderStatus", 303, 1);
    let e = client.get_order_status(key()).await.unwrap_err();
    assert!(matches!(e, EgonError::NotAllowed { .. }), "{e}");
    sb.lock().script_code("GetOrderStatus", 401, 1);
    let e = client.get_order_status(key()).await.unwrap_err();
    assert!(matches!(e, EgonError::Unexpected { code: 401, .. }), "{e}");
    assert_eq!(sb.control.requests().len(), 4);
}

#[tokio::test]
async fn retries_on_500_and_429_in_the_body() {
    let (sb, _srv, client) = setup().await;
    sb.lock().seed_order("A-1", &[("1", 1)]);
    sb.lock().script_code("GetOrderStatus", 500, 2);
    let s = client
        .get_order_status(OrderRef::Original("A-1".into()))
        .await
        .unwrap();
    assert_eq!(s.order_original_id, "A-1");
    assert_eq!(sb.control.requests().len(), 3);

    sb.control.clear_requests();
    sb.lock().script_code("GetOrderStatus", 429, 1);
    client
        .get_order_status(OrderRef::Original("A-1".into()))
        .await
        .unwrap();
    let statuses: Vec<u16> = sb.control.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);

    sb.control.clear_requests();
    sb.lock().script_code("GetOrderStatus", 500, 5);
    let e = client
        .get_order_status(OrderRef::Original("A-1".into()))
        .await
        .unwrap_err();
    assert!(matches!(e, EgonError::Server { attempts: 3, .. }), "{e}");
    assert!(e.is_transient());
    assert_eq!(sb.control.requests().len(), 3);
}

#[tokio::test]
async fn retries_on_http_faults_truncation_and_timeouts() {
    let (sb, _srv, client) = setup().await;
    sb.lock().add_item("1", counts(3, 0));
    sb.control.push_fault(ScriptedFault {
        path_contains: "InventoryDetail".into(),
        skip: 0,
        times: 1,
        kind: FaultKind::Status(503),
    });
    sb.control.push_fault(ScriptedFault {
        path_contains: "InventoryDetail".into(),
        // Faults are checked in order and the first match wins, so this one only
        // counts the requests the 503 let through.
        skip: 0,
        times: 1,
        kind: FaultKind::Truncate,
    });
    let items = client.inventory_detail(&[], false).await.unwrap();
    assert_eq!(items.len(), 1);
    let faults: Vec<Option<String>> = sb
        .control
        .requests()
        .iter()
        .map(|r| r.fault.clone())
        .collect();
    assert_eq!(
        faults,
        vec![Some("status 503".into()), Some("truncate".into()), None]
    );

    // A request held past the client's timeout is retried.
    let mut faults = sb.control.faults();
    faults.timeout_delay = Duration::from_millis(800);
    faults.scripted.clear();
    sb.control.set_faults(faults);
    sb.control.push_fault(ScriptedFault {
        path_contains: "GetOrderStatus".into(),
        skip: 0,
        times: 1,
        kind: FaultKind::Timeout,
    });
    sb.lock().seed_order("A-1", &[("1", 1)]);
    let mut cfg = config(&_srv.url);
    cfg.policy.timeout = Duration::from_millis(300);
    let impatient = EgonClient::new(cfg).unwrap();
    let s = impatient
        .get_order_status(OrderRef::Original("A-1".into()))
        .await
        .unwrap();
    assert_eq!(s.status_id, 0);
}

#[tokio::test]
async fn client_rate_limit_keeps_the_sandbox_window() {
    let (sb, srv, _client) = setup().await;
    let window = Duration::from_millis(300);
    sb.lock().set_rate_limit(4, window);
    sb.lock().add_item("1", counts(1, 0));
    let mut cfg = config(&srv.url);
    cfg.rate_per_min = 4;
    cfg.rate_window = window;
    let client = EgonClient::new(cfg).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let c = client.clone();
        tasks.push(tokio::spawn(
            async move { c.inventory_detail(&[], false).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let log = sb.control.requests();
    assert_eq!(log.len(), 10);
    assert!(log.iter().all(|r| r.status == 200));
    assert!(sb.control.max_requests_per(window) <= 4);
}

#[tokio::test]
async fn sandbox_refuses_over_the_limit_with_429() {
    let (sb, srv, _client) = setup().await;
    sb.lock().set_rate_limit(2, Duration::from_secs(30));
    let mut cfg = config(&srv.url);
    cfg.rate_per_min = 0;
    cfg.policy.max_attempts = 2;
    let client = EgonClient::new(cfg).unwrap();
    client.inventory_detail(&[], false).await.unwrap();
    client.inventory_detail(&[], false).await.unwrap();
    let e = client.inventory_detail(&[], false).await.unwrap_err();
    assert!(
        matches!(e, EgonError::RateLimited { attempts: 2, .. }),
        "{e}"
    );
    let last = sb.control.requests().pop().unwrap();
    assert_eq!(last.status, 429);
    let v: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(v["auth"]["auth_id"], ID);

    // Another auth_id has its own window (and is then refused as unauthorized).
    let mut other = config(&srv.url);
    other.auth_id = "someone-else".into();
    let e = EgonClient::new(other)
        .unwrap()
        .inventory_detail(&[], false)
        .await
        .unwrap_err();
    assert!(matches!(e, EgonError::Unauthorized { .. }), "{e}");
}

// ---------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Received {
    method: Method,
    content_type: Option<String>,
    query: Option<String>,
    body: Bytes,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

async fn record(
    State(inbox): State<Inbox>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> &'static str {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    inbox.lock().unwrap().push(Received {
        method,
        content_type,
        query,
        body,
    });
    r#"{"auth_status":1,"response":{"resp_status":1}}"#
}

async fn listener() -> (Inbox, RunningServer) {
    let inbox: Inbox = Arc::default();
    let app = Router::new()
        .route("/listener", any(record))
        .with_state(inbox.clone());
    let srv = spawn(app, any_local_port()).await.unwrap();
    (inbox, srv)
}

/// The JSON a listener would read from one received callback.
fn decode_received(r: &Received) -> Value {
    let form_field = |raw: &[u8]| -> String {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw).unwrap();
        pairs.into_iter().find(|(k, _)| k == "req").unwrap().1
    };
    let text = if r.method == Method::GET {
        form_field(r.query.clone().unwrap_or_default().as_bytes())
    } else if r.content_type.as_deref() == Some("application/json") {
        String::from_utf8(r.body.to_vec()).unwrap()
    } else {
        let raw = form_field(&r.body);
        html_escape::decode_html_entities(&raw).into_owned()
    };
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn callbacks_arrive_in_every_transport() {
    let (inbox, srv) = listener().await;
    let sb = EgonSandbox::new(ID, KEY, TOKEN, 3);
    let payload = {
        let mut st = sb.lock();
        st.add_item("SKU-1", counts(4, 1));
        st.seed_order("A-1", &[("SKU-1", 1)]);
        st.add_package("A-1", "TRACK-9").unwrap();
        st.write_order_status_payload("A-1").unwrap()
    };
    let url = format!("{}/listener", srv.url);
    let transports = [
        Transport::FormReq,
        Transport::RawJson,
        Transport::QueryReq,
        Transport::FormReqHtmlEscaped,
    ];
    for t in transports {
        let (status, body) = send_callback(&url, ID, KEY, "WriteOrderStatus", &payload, t)
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("resp_status"));
    }
    let received = inbox.lock().unwrap().clone();
    assert_eq!(received.len(), 4);
    assert_eq!(received[2].method, Method::GET);
    assert_eq!(
        received[0].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let escaped_raw: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&received[3].body).unwrap();
    assert!(escaped_raw[0].1.contains("&quot;"));
    for r in &received {
        let v = decode_received(r);
        assert_eq!(v["auth"], json!({"auth_id": ID, "auth_key": KEY}));
        assert_eq!(v["request"]["req_method"], "WriteOrderStatus");
        let status: OrderStatus = serde_json::from_value(v["request"]["req_data"].clone()).unwrap();
        assert_eq!(status.order_original_id, "A-1");
        assert_eq!(status.tracks(), vec!["TRACK-9"]);
    }
}

#[tokio::test]
async fn inventory_status_update_payload_parses_back() {
    let (inbox, srv) = listener().await;
    let sb = EgonSandbox::new(ID, KEY, TOKEN, 3);
    let payload = {
        let mut st = sb.lock();
        st.add_item(
            "123456",
            CountTypes {
                all: 236,
                expired: 2,
                damaged: 4,
                ordered: 15,
                reserved: 21,
                expiration_blocked: 1,
            },
        );
        st.add_item("SKU-2", counts(0, 0));
        st.inventory_status_update_payload(&[])
    };
    let url = format!("{}/listener", srv.url);
    send_callback(
        &url,
        ID,
        KEY,
        "InventoryStatusUpdate",
        &payload,
        Transport::FormReq,
    )
    .await
    .unwrap();
    let received = inbox.lock().unwrap().clone();
    let v = decode_received(&received[0]);
    let update: InventoryStatusUpdate =
        serde_json::from_value(v["request"]["req_data"].clone()).unwrap();
    assert_eq!(update.len(), 2);
    assert_eq!(update.0["123456"].item_id, "123456");
    assert_eq!(update.0["123456"].sellable(), Some(193));
    assert_eq!(update.0["SKU-2"].sellable(), Some(0));
}

#[test]
fn the_seed_sample_is_the_callback_envelope() {
    let sample: Value = serde_json::from_str(SAMPLE_CALLBACK_REQUEST).unwrap();
    let built = callback_envelope(
        "AUTH_ID",
        "AUTH_KEY",
        "MethodName",
        &json!({"param1": 1, "param2": 2}),
    );
    assert_eq!(sample, built);
    assert!(SAMPLE_CALLBACK_REQUEST.contains("\"req_method\": \"MethodName\""));
}

#[test]
fn a_quirky_write_order_status_parses() {
    // Ids as strings and numbers, `order_items` as an object keyed by index,
    // `order_errors`/`images` as `{}`, null fields and trailing commas.
    let text = r#"{
      "auth": {"auth_id": "AUTH_ID", "auth_key": "AUTH_KEY"},
      "request": {"req_method": "WriteOrderStatus", "req_data": {
        "order_original_id": 1001, "reference_number": null, "order_id": "654321",
        "status_id": "13", "status_name": "delivered, COD on the way",
        "api_update_enabled": "0", "change_timestamp": "2024-02-01 10:11:12",
        "delivery_id": "", "order_items": {"0": {"ITEM_ID": "SKU-1", "EAN": 4601234567890,
          "COUNT": "2", "COUNT_RESERVED": 2.0, "RESERVATION_ITEMS": {}, "ISSUE_CARD_ITEMS": {}},},
        "packages": [{"package_nr": 80012345, "tracking_data": {}, "images": {},}],
        "total_cost": "4,89", "cost_by_item": {}, "order_errors": {}, "returned_items": [],
      }}
    }"#;
    let v: Value = sverka::lenient::from_str(text).unwrap();
    let s: OrderStatus = serde_json::from_value(v["request"]["req_data"].clone()).unwrap();
    assert_eq!(s.order_original_id, "1001");
    assert_eq!(s.order_id, Some(654_321));
    assert_eq!(s.status_id, 13);
    assert!(!s.api_update_enabled);
    assert_eq!(s.delivery_id, None);
    assert_eq!(s.order_items[0].item_id, "SKU-1");
    assert_eq!(s.order_items[0].ean.as_deref(), Some("4601234567890"));
    assert_eq!(
        (s.order_items[0].count, s.order_items[0].count_reserved),
        (2, 2)
    );
    assert_eq!(s.tracks(), vec!["80012345"]);
    assert_eq!(s.total_cost_kop, Some(489));
    assert!(s.order_errors.is_empty() && s.cost_by_item.is_empty());
}
