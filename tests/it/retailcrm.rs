//! Black-box tests: the RetailCRM client against the RetailCRM sandbox over real HTTP.

use chrono::NaiveDate;
use serde_json::{json, Value};
use std::time::Duration;
use sverka::connectors::http::HttpPolicy;
use sverka::connectors::retailcrm::{
    interpret, ApiErrorKind, IntegrationModule, Integrations, OfferKey, OfferStock, OrderPatch,
    RetailCrmClient, RetailCrmConfig, RetailCrmError, StoreAction, StoreIntegration,
};
use sverka::sandbox::common::{any_local_port, FaultKind, Faults, ScriptedFault};
use sverka::sandbox::retailcrm::{NewOrder, NewOrderItem, RetailCrmSandbox};
use sverka::secret::Secret;
use sverka::server::{spawn, RunningServer};

const KEY: &str = "crm-test-key-5f2a";
const SITE: &str = "shop-ru";

fn policy() -> HttpPolicy {
    crate::support::client_policy()
}

fn config(url: &str, key: &str) -> RetailCrmConfig {
    RetailCrmConfig {
        url: url.to_string(),
        api_key: Secret::new(key),
        site: Some(SITE.into()),
        store: "main".into(),
        offer_key: OfferKey::ExternalId,
        rate_per_sec: 10,
        policy: policy(),
    }
}

struct Env {
    sb: RetailCrmSandbox,
    server: RunningServer,
    client: RetailCrmClient,
}

async fn env() -> Env {
    let sb = RetailCrmSandbox::new(KEY, SITE, 7);
    let server = sb.start(any_local_port()).await.unwrap();
    let client = RetailCrmClient::new(config(&server.url, KEY)).unwrap();
    Env { sb, server, client }
}

fn stock(sku: &str, available: i64) -> OfferStock {
    OfferStock {
        sku: sku.into(),
        available: Some(available),
        purchase_price_kop: None,
    }
}

fn seed_offers(sb: &RetailCrmSandbox, n: usize) {
    let mut st = sb.lock();
    for i in 0..n {
        let sku = format!("SKU-{i:04}");
        st.add_offer(
            Some(&sku),
            Some(&format!("x-{i}")),
            "Thing",
            1999,
            &[("main", 5.0), ("spb", 1.0)],
        );
    }
}

fn seed_order(sb: &RetailCrmSandbox, external_id: &str) {
    sb.lock()
        .add_order(NewOrder {
            external_id: external_id.into(),
            status: "assembling".into(),
            items: vec![NewOrderItem {
                sku: "SKU-0000".into(),
                quantity: 2.0,
                price_kop: 1999,
            }],
            delivery_code: Some("courier".into()),
            delivery_cost_kop: 30_000,
            shipment_store: None,
        })
        .unwrap();
}

fn warehouse_module() -> IntegrationModule {
    IntegrationModule {
        code: "sverka-wms".into(),
        integration_code: Some("sverka".into()),
        name: "sverka WMS bridge".into(),
        active: true,
        base_url: "https://hooks.example.org".into(),
        client_id: Secret::new("client-7"),
        logo: None,
        account_url: None,
        integrations: Some(Integrations {
            store: Some(StoreIntegration {
                actions: vec![StoreAction {
                    code: "inventoriesUpload".into(),
                    url: "/crm/inventories".into(),
                    call_points: vec![],
                }],
            }),
        }),
    }
}

async fn raw_get(url: &str, key: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(k) = key {
        req = req.header("X-API-KEY", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn raw_post(url: &str, form: &[(&str, String)]) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("X-API-KEY", KEY)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn reference_books() {
    let e = env().await;
    e.sb.lock().add_store("spb", "Склад СПб");
    let stores = e.client.stores().await.unwrap();
    assert!(stores
        .iter()
        .any(|s| s.code == "main" && s.inventory_type.as_deref() == Some("integer")));
    assert!(stores.iter().any(|s| s.code == "spb"));
    let statuses = e.client.statuses().await.unwrap();
    let group = |code: &str| {
        statuses
            .iter()
            .find(|s| s.code == code)
            .map(|s| s.group.clone())
    };
    assert_eq!(group("new").as_deref(), Some("new"));
    assert_eq!(group("send-to-delivery").as_deref(), Some("delivery"));
    assert_eq!(group("complete").as_deref(), Some("complete"));
    assert_eq!(group("cancel-other").as_deref(), Some("cancel"));
    // The key travels as a header, never in the URL.
    for r in e.sb.control.requests() {
        assert!(r.headers.iter().any(|(k, v)| k == "x-api-key" && v == KEY));
        assert!(!r.query.contains(KEY));
    }
}

#[tokio::test]
async fn wrong_key_is_forbidden_and_not_leaked() {
    let e = env().await;
    let bad = RetailCrmClient::new(config(&e.server.url, "wrong-key-999")).unwrap();
    let err = bad.stores().await.unwrap_err();
    match &err {
        RetailCrmError::Api {
            status,
            kind,
            message,
            ..
        } => {
            assert_eq!((*status, *kind), (403, ApiErrorKind::Forbidden));
            assert_eq!(message, "Wrong \"apiKey\" value.");
        }
        other => panic!("{other:?}"),
    }
    let text = format!("{err} {err:?}");
    assert!(!text.contains("wrong-key-999"));
    assert_eq!(e.sb.control.requests().len(), 1, "a 403 is not retried");
    let (status, body) = raw_get(&format!("{}/api/v5/reference/stores", e.server.url), None).await;
    assert_eq!(status, 403);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["success"],
        false
    );
    // The documented alternative: apiKey in the query.
    let (status, _) = raw_get(
        &format!("{}/api/v5/reference/stores?apiKey={KEY}", e.server.url),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sandbox_refuses_bad_input() {
    let e = env().await;
    let upload = format!("{}/api/v5/store/inventories/upload", e.server.url);
    let (status, body) = raw_post(&upload, &[("site", SITE.into())]).await;
    assert_eq!(status, 400);
    let err = interpret("/store/inventories/upload", status, &body).unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::MissingParameter));
    assert!(err.to_string().contains("Parameter 'offers' is missing"));

    let (status, body) = raw_post(&upload, &[("offers", "[{\"externalId\":".into())]).await;
    assert_eq!(status, 400);
    assert!(body.contains("offers"));

    let many: Vec<Value> = (0..251)
        .map(|i| json!({"externalId": format!("S{i}")}))
        .collect();
    let (status, body) = raw_post(&upload, &[("offers", Value::Array(many).to_string())]).await;
    assert_eq!(status, 400);
    assert!(body.contains("250"));

    let (status, _) = raw_get(
        &format!("{}/api/v5/store/inventories?limit=30", e.server.url),
        Some(KEY),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = raw_get(
        &format!("{}/api/v5/orders?limit=100&page=1", e.server.url),
        Some(KEY),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = raw_get(
        &format!("{}/api/v5/no/such/method", e.server.url),
        Some(KEY),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.contains("\"success\":false"));
}

#[tokio::test]
async fn partial_upload_is_460() {
    let e = env().await;
    seed_offers(&e.sb, 2);
    let offers = json!([
        {"externalId": "SKU-0000", "stores": [{"code": "main", "available": 9}]},
        {"externalId": "SKU-0001", "stores": [{"code": "ghost", "available": 1}]},
    ]);
    let url = format!("{}/api/v5/store/inventories/upload", e.server.url);
    let (status, body) = raw_post(&url, &[("offers", offers.to_string())]).await;
    assert_eq!(status, 460);
    let err = interpret("/store/inventories/upload", status, &body).unwrap_err();
    match err {
        RetailCrmError::Api { kind, errors, .. } => {
            assert_eq!(kind, ApiErrorKind::PartialFailure);
            assert!(errors
                .iter()
                .any(|f| f.field.as_deref() == Some("offers[1][stores][0][code]")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.sb.lock().quantity("SKU-0000", "main"), Some(9.0));
    assert_eq!(e.sb.lock().quantity("SKU-0001", "main"), Some(5.0));

    // Through the client: a store the CRM lacks fails every offer → 400.
    let mut cfg = config(&e.server.url, KEY);
    cfg.store = "ghost".into();
    let ghost = RetailCrmClient::new(cfg).unwrap();
    let err = ghost
        .upload_chunk(&[stock("SKU-0000", 1)])
        .await
        .unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::Validation));
}

#[tokio::test]
async fn html_page_means_no_account() {
    let e = env().await;
    e.sb.lock().set_account_exists(false);
    let err = e.client.stores().await.unwrap_err();
    assert!(
        matches!(err, RetailCrmError::NotApi { status: 404, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("account does not exist"));
    assert_eq!(e.sb.control.requests().len(), 1);
}

#[tokio::test]
async fn rate_limit_answers_are_retried_then_ok() {
    let e = env().await;
    e.sb.control.push_fault(ScriptedFault {
        path_contains: "/reference/stores".into(),
        skip: 0,
        times: 2,
        kind: FaultKind::Status(503),
    });
    e.sb.control.push_fault(ScriptedFault {
        path_contains: "/reference/statuses".into(),
        skip: 0,
        times: 1,
        kind: FaultKind::Status(429),
    });
    assert!(!e.client.stores().await.unwrap().is_empty());
    assert!(!e.client.statuses().await.unwrap().is_empty());
    let statuses: Vec<u16> = e.sb.control.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 200, 429, 200]);
}

#[tokio::test]
async fn retries_are_bounded() {
    let e = env().await;
    e.sb.control.push_fault(ScriptedFault {
        path_contains: "/reference/stores".into(),
        skip: 0,
        times: 100,
        kind: FaultKind::Status(500),
    });
    let err = e.client.stores().await.unwrap_err();
    assert!(
        matches!(err, RetailCrmError::Server { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(e.sb.control.requests().len(), 3, "policy allows 3 attempts");
}

#[tokio::test]
async fn timeouts_and_cut_answers_are_retried() {
    let e = env().await;
    e.sb.control.set_faults(Faults {
        timeout_delay: Duration::from_millis(800),
        scripted: vec![
            ScriptedFault {
                path_contains: "/reference/stores".into(),
                skip: 0,
                times: 1,
                kind: FaultKind::Timeout,
            },
            ScriptedFault {
                path_contains: "/reference/statuses".into(),
                skip: 0,
                times: 1,
                kind: FaultKind::Truncate,
            },
        ],
        ..Faults::default()
    });
    let mut cfg = config(&e.server.url, KEY);
    cfg.policy.timeout = Duration::from_millis(300);
    let impatient = RetailCrmClient::new(cfg).unwrap();
    assert!(!impatient.stores().await.unwrap().is_empty());
    assert!(!impatient.statuses().await.unwrap().is_empty());
    assert_eq!(e.sb.control.requests_to("/reference/statuses").len(), 2);
}

#[tokio::test]
async fn upload_is_chunked_by_250() {
    let e = env().await;
    seed_offers(&e.sb, 501);
    let offers: Vec<OfferStock> = (0..501)
        .map(|i| stock(&format!("SKU-{i:04}"), (i % 7) as i64))
        .collect();
    let outcomes = e.client.upload_inventories(&offers).await;
    assert_eq!(outcomes.len(), 3);
    let sizes: Vec<usize> = outcomes.iter().map(|o| o.skus.len()).collect();
    assert_eq!(sizes, vec![250, 250, 1]);
    for o in &outcomes {
        let r = o.result.as_ref().unwrap();
        assert_eq!(r.processed as usize, o.skus.len());
        assert!(r.not_found.is_empty());
    }
    let uploads = e.sb.control.requests_to("/store/inventories/upload");
    let counts: Vec<usize> = uploads
        .iter()
        .map(|r| {
            assert_eq!(
                r.content_type.as_deref(),
                Some("application/x-www-form-urlencoded")
            );
            assert_eq!(r.form_field("site").as_deref(), Some(SITE));
            let offers: Vec<Value> =
                serde_json::from_str(&r.form_field("offers").unwrap()).unwrap();
            offers.len()
        })
        .collect();
    assert_eq!(counts, vec![250, 250, 1]);
    // `available: 0` is sent, not dropped.
    let first: Value = serde_json::from_str(&uploads[0].form_field("offers").unwrap()).unwrap();
    assert_eq!(
        first[0],
        json!({"externalId": "SKU-0000", "site": SITE, "stores": [{"code": "main", "available": 0}]})
    );
    let st = e.sb.lock();
    assert_eq!(st.quantity("SKU-0000", "main"), Some(0.0));
    assert_eq!(st.quantity("SKU-0500", "main"), Some((500 % 7) as f64));
    assert_eq!(
        st.quantity("SKU-0500", "spb"),
        Some(1.0),
        "other stores untouched"
    );
}

#[tokio::test]
async fn unknown_offers_are_reported_not_failed() {
    let e = env().await;
    seed_offers(&e.sb, 1);
    let r = e
        .client
        .upload_chunk(&[stock("SKU-0000", 3), stock("NOPE-1", 2), stock("NOPE-2", 0)])
        .await
        .unwrap();
    assert_eq!(r.processed, 1);
    assert_eq!(
        r.not_found,
        vec!["NOPE-1".to_string(), "NOPE-2".to_string()]
    );
    let too_many: Vec<OfferStock> = (0..251).map(|i| stock(&format!("S{i}"), 1)).collect();
    let err = e.client.upload_chunk(&too_many).await.unwrap_err();
    assert!(matches!(err, RetailCrmError::TooManyOffers { count: 251 }));
    assert_eq!(
        e.sb.control.requests().len(),
        1,
        "the oversize chunk is never sent"
    );
}

#[tokio::test]
async fn xml_id_key_is_honoured() {
    let e = env().await;
    seed_offers(&e.sb, 2);
    let mut cfg = config(&e.server.url, KEY);
    cfg.offer_key = OfferKey::XmlId;
    let c = RetailCrmClient::new(cfg).unwrap();
    let r = c
        .upload_chunk(&[stock("x-1", 4), stock("x-404", 1)])
        .await
        .unwrap();
    assert_eq!((r.processed, r.not_found), (1, vec!["x-404".to_string()]));
    assert_eq!(e.sb.lock().quantity("SKU-0001", "main"), Some(4.0));
    let offers = c.inventories_for(&["x-1".to_string()]).await.unwrap();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].sku(OfferKey::XmlId), Some("x-1"));
    let req =
        e.sb.control
            .requests_to("/store/inventories")
            .pop()
            .unwrap();
    assert!(
        req.query.contains("filter%5BofferXmlId%5D%5B%5D=x-1"),
        "{}",
        req.query
    );
}

#[tokio::test]
async fn inventories_are_paged() {
    let e = env().await;
    seed_offers(&e.sb, 260);
    let offers = e.client.inventories().await.unwrap();
    assert_eq!(offers.len(), 260);
    let o = offers
        .iter()
        .find(|o| o.sku(OfferKey::ExternalId) == Some("SKU-0259"))
        .unwrap();
    assert_eq!(o.store_quantity("main"), Some(5.0));
    assert_eq!(o.store_quantity("spb"), Some(1.0));
    assert_eq!(o.quantity, 6.0);
    let reqs = e.sb.control.requests_to("/store/inventories");
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].query.contains("limit=250") && reqs[0].query.contains("page=1"));
    assert!(reqs[1].query.contains("page=2"));
    assert!(reqs[0].query.contains("filter%5Bdetails%5D=1"));
}

#[tokio::test]
async fn orders_are_batched_and_paged() {
    let e = env().await;
    seed_offers(&e.sb, 1);
    let ids: Vec<String> = (0..120).map(|i| format!("S-{i}")).collect();
    for id in &ids {
        seed_order(&e.sb, id);
    }
    let mut wanted = ids.clone();
    wanted.push("S-unknown".into());
    let orders = e.client.orders_by_external_ids(&wanted).await.unwrap();
    assert_eq!(orders.len(), 120);
    assert_eq!(
        e.sb.control.requests_to("/api/v5/orders").len(),
        3,
        "100 ids in 2 pages + 21 ids"
    );
    let o = orders
        .iter()
        .find(|o| o.external_id.as_deref() == Some("S-7"))
        .unwrap();
    assert_eq!(o.status.as_deref(), Some("assembling"));
    assert!(!o.shipped);
    assert_eq!(o.total_summ_kop, 2 * 1999 + 30_000);
    assert_eq!(o.items[0].quantity, 2.0);
    assert_eq!(o.items[0].initial_price_kop, 1999);
    assert_eq!(o.items[0].sku(OfferKey::ExternalId), Some("SKU-0000"));
    assert_eq!(o.delivery_code.as_deref(), Some("courier"));
    assert_eq!(o.track_number, None);
    assert!(e
        .client
        .orders_by_external_ids(&[])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn order_edit_marks_shipment_once_a_module_exists() {
    let e = env().await;
    seed_offers(&e.sb, 1);
    seed_order(&e.sb, "S-1");
    let patch = OrderPatch {
        shipped: Some(true),
        shipment_store: Some("main".into()),
        shipment_date: NaiveDate::from_ymd_opt(2026, 11, 21),
        status: Some("send-to-delivery".into()),
        track_number: Some("RA123456789RU".into()),
    };
    let err = e.client.order_edit("S-1", &patch).await.unwrap_err();
    match &err {
        RetailCrmError::Api {
            status,
            kind,
            message,
            ..
        } => {
            assert_eq!((*status, *kind), (400, ApiErrorKind::Validation));
            assert!(message.contains("warehouse"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.sb.lock().order("S-1").unwrap().shipped);

    assert_eq!(
        e.client.integration_module_get("sverka-wms").await.unwrap(),
        None
    );
    e.client
        .integration_module_edit(&warehouse_module())
        .await
        .unwrap();
    let back = e
        .client
        .integration_module_get("sverka-wms")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, warehouse_module());
    assert_eq!(
        e.sb.lock().module("sverka-wms").unwrap()["clientId"],
        "client-7"
    );

    e.client.order_edit("S-1", &patch).await.unwrap();
    {
        let st = e.sb.lock();
        let o = st.order("S-1").unwrap();
        assert!(o.shipped);
        assert_eq!(o.status, "send-to-delivery");
        assert_eq!(o.shipment_store.as_deref(), Some("main"));
        assert_eq!(o.shipment_date, NaiveDate::from_ymd_opt(2026, 11, 21));
        assert_eq!(o.track_number.as_deref(), Some("RA123456789RU"));
    }
    let edit = e.sb.control.requests_to("/orders/S-1/edit").pop().unwrap();
    assert_eq!(edit.form_field("by").as_deref(), Some("externalId"));
    assert_eq!(edit.form_field("site").as_deref(), Some(SITE));
    let sent: Value = serde_json::from_str(&edit.form_field("order").unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({"shipped": true, "shipmentStore": "main", "shipmentDate": "2026-11-21",
               "status": "send-to-delivery", "delivery": {"data": {"trackNumber": "RA123456789RU"}}})
    );
    let only_track = OrderPatch {
        track_number: Some("RA2".into()),
        ..OrderPatch::default()
    };
    e.client.order_edit("S-1", &only_track).await.unwrap();
    let sent =
        e.sb.control
            .requests_to("/orders/S-1/edit")
            .pop()
            .unwrap()
            .form_field("order")
            .unwrap();
    assert_eq!(sent, r#"{"delivery":{"data":{"trackNumber":"RA2"}}}"#);

    let crm = e
        .client
        .orders_by_external_ids(&["S-1".into()])
        .await
        .unwrap();
    assert_eq!(crm[0].track_number.as_deref(), Some("RA2"));
    assert_eq!(crm[0].shipment_date, NaiveDate::from_ymd_opt(2026, 11, 21));
    assert!(crm[0].shipped);
}

#[tokio::test]
async fn unknown_order_and_bad_fields_are_refused() {
    let e = env().await;
    seed_offers(&e.sb, 1);
    seed_order(&e.sb, "S-1");
    let patch = OrderPatch {
        status: Some("complete".into()),
        ..OrderPatch::default()
    };
    let err = e.client.order_edit("S-404", &patch).await.unwrap_err();
    match &err {
        RetailCrmError::Api {
            status,
            kind,
            message,
            ..
        } => {
            assert_eq!(
                (*status, *kind, message.as_str()),
                (404, ApiErrorKind::NotFound, "Not found")
            );
        }
        other => panic!("{other:?}"),
    }
    let bad = OrderPatch {
        status: Some("no-such-status".into()),
        ..OrderPatch::default()
    };
    let err = e.client.order_edit("S-1", &bad).await.unwrap_err();
    match err {
        RetailCrmError::Api { kind, errors, .. } => {
            assert_eq!(kind, ApiErrorKind::Validation);
            assert_eq!(errors[0].field.as_deref(), Some("status"));
        }
        other => panic!("{other:?}"),
    }
    // An empty patch sends nothing.
    let before = e.sb.control.requests().len();
    e.client
        .order_edit("S-1", &OrderPatch::default())
        .await
        .unwrap();
    assert_eq!(e.sb.control.requests().len(), before);

    let mut module = warehouse_module();
    module.base_url = String::new();
    let err = e.client.integration_module_edit(&module).await.unwrap_err();
    match err {
        RetailCrmError::Api { kind, errors, .. } => {
            assert_eq!(kind, ApiErrorKind::Validation);
            assert!(errors.iter().any(|f| f.field.as_deref() == Some("baseUrl")));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn history_cursor_resumes_after_the_last_id() {
    let e = env().await;
    seed_offers(&e.sb, 1);
    for i in 0..105 {
        seed_order(&e.sb, &format!("S-{i}"));
    }
    let (all, last) = e.client.orders_history(None).await.unwrap();
    assert_eq!(all.len(), 105);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert!(all[0].created);
    assert_eq!(last, all.last().map(|h| h.id));
    assert_eq!(e.sb.control.requests_to("/orders/history").len(), 2);

    let (none, same) = e.client.orders_history(last).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(same, last);

    let patch = OrderPatch {
        status: Some("complete".into()),
        track_number: Some("T-1".into()),
        ..OrderPatch::default()
    };
    e.client.order_edit("S-3", &patch).await.unwrap();
    let (fresh, next) = e.client.orders_history(last).await.unwrap();
    assert_eq!(fresh.len(), 2);
    assert!(fresh.iter().all(|h| h.id > last.unwrap()));
    let status = fresh
        .iter()
        .find(|h| h.field.as_deref() == Some("status"))
        .unwrap();
    assert_eq!(status.new_value, json!({"code": "complete"}));
    assert_eq!(status.old_value, json!({"code": "assembling"}));
    assert_eq!(
        status.order.as_ref().unwrap().external_id.as_deref(),
        Some("S-3")
    );
    assert_eq!(next, fresh.last().map(|h| h.id));
    assert_eq!(e.sb.lock().history_len(), 107);
    let q =
        e.sb.control
            .requests_to("/orders/history")
            .pop()
            .unwrap()
            .query;
    assert!(
        q.contains(&format!("filter%5BsinceId%5D={}", last.unwrap())),
        "{q}"
    );
}

#[tokio::test]
async fn catalogue_is_typed_and_paged() {
    let e = env().await;
    seed_offers(&e.sb, 25);
    {
        let mut st = e.sb.lock();
        let root = st.add_product_group("Одежда", None);
        let child = st.add_product_group("Куртки", Some(root));
        let offer = st.offer("SKU-0000").unwrap().id;
        st.put_in_group(offer, child);
        st.add_property("color", "Цвет");
    }
    let p1 = e.client.products(1, 20).await.unwrap();
    assert_eq!(
        (p1.items.len(), p1.pagination.total_page_count),
        (20, Some(2))
    );
    let p2 = e.client.products(2, 20).await.unwrap();
    assert_eq!(p2.items.len(), 5);
    let first = &p1.items[0];
    assert_eq!(first.offers[0].external_id.as_deref(), Some("SKU-0000"));
    assert_eq!(first.offers[0].price_kop, Some(1999));
    assert_eq!(first.offers[0].quantity, 6.0);
    assert_eq!(first.groups.len(), 1);
    let groups = e.client.product_groups(1, 50).await.unwrap();
    assert_eq!(groups.items.len(), 2);
    assert!(groups
        .items
        .iter()
        .any(|g| g.name == "Куртки" && g.parent_id.is_some()));
    let props = e.client.product_properties(1, 100).await.unwrap();
    assert_eq!(props.items[0].code, "color");
    assert_eq!(props.items[0].sites, vec![SITE.to_string()]);
    assert!(matches!(
        e.client.products(1, 30).await,
        Err(RetailCrmError::Config(_))
    ));
}

#[tokio::test]
async fn client_stays_under_ten_per_second_while_sandbox_enforces_it() {
    let e = env().await;
    let calls = (0..22).map(|_| {
        let c = e.client.clone();
        tokio::spawn(async move { c.statuses().await })
    });
    for call in calls {
        assert!(call.await.unwrap().is_ok());
    }
    assert!(e.sb.control.max_requests_per(Duration::from_secs(1)) <= 10);
    assert!(e.sb.control.requests().iter().all(|r| r.status == 200));

    // A client that ignores the limit meets the sandbox's 503s.
    e.sb.control.clear_requests();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v5/reference/stores", e.server.url);
    let mut refused = 0;
    for _ in 0..15 {
        let resp = http
            .get(&url)
            .header("X-API-KEY", KEY)
            .send()
            .await
            .unwrap();
        if resp.status().as_u16() == 503 {
            let body: Value = resp.json().await.unwrap();
            assert_eq!(
                body,
                json!({"success": false, "errorMsg": "Rate limit exceeded"})
            );
            refused += 1;
        }
    }
    assert!(refused >= 5, "{refused} refused");

    // 0 switches the sandbox limit off.
    e.sb.lock().set_rate_limit(0);
    for _ in 0..15 {
        let resp = http
            .get(&url)
            .header("X-API-KEY", KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
}

#[tokio::test]
async fn verbatim_php_answers_parse() {
    // A server that answers like the PHP backend: trailing commas, ids as
    // strings, floats, `[]` for empty maps, `{}` for an empty list.
    let inventories = r#"{"success":true,"pagination":{"limit":"250","totalCount":2,"currentPage":1,"totalPageCount":1},
        "offers":[{"id":"31","externalId":1001,"xmlId":"x-31","site":"shop-ru","quantity":"7.0",
                   "stores":[{"store":"main","quantity":4.0,"purchasePrice":10.29},]},
                  {"id":32,"xmlId":"x-32","site":"shop-ru","quantity":0,"stores":{}},],}"#;
    let orders = r#"{"success":true,"pagination":{"limit":50,"totalCount":1,"currentPage":1,"totalPageCount":1},
        "orders":[{"id":"77","externalId":"S-77","number":"77A","site":"shop-ru","status":"delivering",
          "shipped":1,"shipmentStore":"main","shipmentDate":"2026-11-20","totalSumm":"1234.565",
          "payments":[],"customFields":[],"delivery":{"code":"russian-post","cost":0,"data":{"trackNumber":"RA9"}},
          "items":{"5":{"id":5,"quantity":1.5,"initialPrice":0.29,"offer":{"id":31,"externalId":"1001"},"properties":[]}}}]}"#;
    let router = axum::Router::new()
        .route("/api/v5/store/inventories", axum::routing::get(move || async move { inventories }))
        .route("/api/v5/orders", axum::routing::get(move || async move { orders }))
        .route(
            "/api/v5/store/inventories/upload",
            axum::routing::post(|| async {
                r#"{"success":true,"processedOffersCount":"1","notFoundOffers":{"0":{"externalId":"Z-1","xmlId":null}}}"#
            }),
        );
    let server = spawn(router, any_local_port()).await.unwrap();
    let c = RetailCrmClient::new(config(&server.url, KEY)).unwrap();
    let offers = c.inventories().await.unwrap();
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[0].sku(OfferKey::ExternalId), Some("1001"));
    assert_eq!(
        (offers[0].quantity, offers[0].store_quantity("main")),
        (7.0, Some(4.0))
    );
    assert_eq!(offers[0].stores[0].purchase_price_kop, Some(1029));
    assert!(offers[1].stores.is_empty());
    let o = &c.orders_by_external_ids(&["S-77".into()]).await.unwrap()[0];
    assert_eq!((o.id, o.shipped, o.total_summ_kop), (77, true, 123457));
    assert_eq!(o.items[0].quantity, 1.5);
    assert_eq!(o.items[0].initial_price_kop, 29);
    assert_eq!(o.track_number.as_deref(), Some("RA9"));
    let r = c
        .upload_chunk(&[stock("1001", 1), stock("Z-1", 0)])
        .await
        .unwrap();
    assert_eq!((r.processed, r.not_found), (1, vec!["Z-1".to_string()]));
}

#[tokio::test]
async fn inventory_pages_overlap_within_the_rate_limit_and_keep_their_order() {
    let e = env().await;
    seed_offers(&e.sb, 250 * 24 + 7);
    e.sb.control.set_latency(Duration::from_millis(60));
    let offers = e.client.inventories().await.unwrap();
    let skus: Vec<&str> = offers
        .iter()
        .filter_map(|o| o.sku(OfferKey::ExternalId))
        .collect();
    let expected: Vec<String> = (0..250 * 24 + 7).map(|i| format!("SKU-{i:04}")).collect();
    assert_eq!(skus, expected, "every page once, in page order");
    let reqs = e.sb.control.requests_to("/store/inventories");
    assert_eq!(reqs.len(), 25, "the minimum number of requests");
    assert!(
        reqs.iter().all(|r| r.status == 200),
        "nothing over the limit"
    );
    assert!(e.sb.control.max_requests_per(Duration::from_secs(1)) <= 10);
    // Pages after the first are in flight together, not one after another.
    assert!(e.sb.control.max_requests_per(Duration::from_millis(30)) >= 2);
}
