//! IMSHOP: the status-update client against the sandbox receiver, and the
//! sandbox playing the app against a stand-in shop listener.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sverka::connectors::http::HttpPolicy;
use sverka::connectors::imshop::{
    barcode_text, decode_barcode, encode_barcode, HistoryAnswer, HistoryRequest, ImshopClient,
    ImshopConfig, ImshopError, PushOutcome, ScanAnswer, ScanRecord, ScanRequest, ScanStatus,
    ScanUpdate, GS,
};
use sverka::sandbox::common::{any_local_port, FaultKind, ScriptedFault};
use sverka::sandbox::imshop::{
    send_history, send_raw, send_scan, ImshopSandbox, SAMPLE_HISTORY_ANSWER, SAMPLE_SCAN_ANSWER,
    SAMPLE_SCAN_REQUEST, SAMPLE_STATUS_UPDATE,
};
use sverka::secret::Secret;
use sverka::server::{spawn, RunningServer};

const KEY: &str = "imshop-k3y";

fn policy() -> HttpPolicy {
    crate::support::client_policy()
}

fn client(url: &str, key: &str, key_in_body: bool) -> ImshopClient {
    ImshopClient::new(ImshopConfig {
        update_url: url.to_string(),
        key: Secret::new(key),
        key_in_header: true,
        key_in_body,
        policy: policy(),
    })
    .unwrap()
}

async fn setup() -> (ImshopSandbox, RunningServer, ImshopClient) {
    let sb = ImshopSandbox::new(KEY, 11);
    let srv = sb.start(any_local_port()).await.unwrap();
    let c = client(&format!("{}/hooks/scan-status?t=abc", srv.url), KEY, false);
    (sb, srv, c)
}

fn update(id: &str) -> ScanUpdate {
    ScanUpdate {
        id: id.to_string(),
        user_id: "79991234567".into(),
        timestamp: 1_662_660_581,
        code: "YXNkYXNkIGpha2RzIGxha2RzYWE=".into(),
        status: ScanStatus::Approved,
        status_message: Some("Начислено 200 бонусов".into()),
    }
}

#[tokio::test]
async fn accepted_with_bearer_and_exact_fields() {
    let (sb, _srv, c) = setup().await;
    let out = c.push_status(&update("scan-1")).await.unwrap();
    assert_eq!(out, PushOutcome::Accepted);
    let req = &sb.control.requests()[0];
    assert_eq!(req.path, "/hooks/scan-status");
    assert_eq!(req.query, "t=abc");
    let auth = req
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(auth.as_deref(), Some("Bearer imshop-k3y"));
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec![
            "code",
            "id",
            "status",
            "statusMessage",
            "timestamp",
            "userId"
        ]
    );
    // Same shape as the seed's example.
    let sample: Value = serde_json::from_str(SAMPLE_STATUS_UPDATE).unwrap();
    assert_eq!(
        body,
        json!({
            "id": "scan-1", "userId": sample["userId"], "code": sample["code"],
            "timestamp": sample["timestamp"], "status": "approved",
            "statusMessage": sample["statusMessage"]
        })
    );
    let st = sb.lock();
    assert!(st.pushes()[0].authorized);
    assert_eq!(st.pushes()[0].status, 204);
}

#[tokio::test]
async fn key_in_body_when_configured() {
    let (sb, srv, _c) = setup().await;
    let c = client(&srv.url, KEY, true);
    assert_eq!(
        c.push_status(&update("s")).await.unwrap(),
        PushOutcome::Accepted
    );
    let body: Value = serde_json::from_slice(&sb.control.requests()[0].body).unwrap();
    assert_eq!(body["key"], KEY);
}

#[tokio::test]
async fn rejections_are_final_and_reported() {
    let (sb, _srv, c) = setup().await;
    sb.lock().set_scan_status("unknown", 404);
    sb.lock().set_scan_status("bad", 400);
    match c.push_status(&update("unknown")).await.unwrap() {
        PushOutcome::Rejected { status, body } => {
            assert_eq!(status, 404);
            assert!(body.contains("404"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let out = c.push_status(&update("bad")).await.unwrap();
    assert!(matches!(out, PushOutcome::Rejected { status: 400, .. }));
    // No retry for either.
    assert_eq!(sb.control.requests().len(), 2);
    // Other scans still go through.
    assert_eq!(
        c.push_status(&update("ok")).await.unwrap(),
        PushOutcome::Accepted
    );
}

#[tokio::test]
async fn malformed_updates_get_400_from_the_sandbox() {
    let (sb, srv, _c) = setup().await;
    let (status, _) = send_raw(&srv.url, KEY, r#"{"id": "x", "status": "approved"}"#)
        .await
        .unwrap();
    assert_eq!(status, 400);
    let (status, _) = send_raw(&srv.url, KEY, SAMPLE_STATUS_UPDATE).await.unwrap();
    assert_eq!(status, 204);
    assert!(sb.lock().pushes()[1].update.is_some());
}

#[tokio::test]
async fn wrong_key_is_an_auth_error_without_retry() {
    let (sb, srv, _c) = setup().await;
    let wrong = client(&srv.url, "other-key", false);
    let e = wrong.push_status(&update("s")).await.unwrap_err();
    assert!(matches!(e, ImshopError::Auth { status: 401 }), "{e}");
    assert!(!e.to_string().contains("other-key"));
    assert_eq!(sb.control.requests().len(), 1);
    assert!(!sb.lock().pushes()[0].authorized);

    let (sb, _srv, c) = setup().await;
    sb.lock().set_default_status(403);
    let e = c.push_status(&update("s")).await.unwrap_err();
    assert!(matches!(e, ImshopError::Auth { status: 403 }), "{e}");
    assert_eq!(sb.control.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let (sb, _srv, c) = setup().await;
    sb.control.push_fault(ScriptedFault {
        path_contains: "scan-status".into(),
        skip: 0,
        times: 2,
        kind: FaultKind::Status(502),
    });
    assert_eq!(
        c.push_status(&update("s")).await.unwrap(),
        PushOutcome::Accepted
    );
    let statuses: Vec<u16> = sb.control.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![502, 502, 204]);
}

#[tokio::test]
async fn persistent_server_errors_end_unavailable() {
    let (sb, _srv, c) = setup().await;
    sb.lock().set_default_status(500);
    let e = c.push_status(&update("s")).await.unwrap_err();
    match e {
        ImshopError::Unavailable { attempts, last } => {
            assert_eq!(attempts, 3);
            assert!(last.contains("500"));
        }
        other => panic!("expected Unavailable, got {other}"),
    }
    assert_eq!(sb.control.requests().len(), 3);
}

#[tokio::test]
async fn timeouts_are_retried() {
    let (sb, srv, _c) = setup().await;
    let mut faults = sb.control.faults();
    faults.timeout_delay = Duration::from_millis(800);
    sb.control.set_faults(faults);
    sb.control.push_fault(ScriptedFault {
        path_contains: "/".into(),
        skip: 0,
        times: 1,
        kind: FaultKind::Timeout,
    });
    let c = ImshopClient::new(ImshopConfig {
        update_url: srv.url.clone(),
        key: Secret::new(KEY),
        key_in_header: true,
        key_in_body: false,
        policy: HttpPolicy {
            timeout: Duration::from_millis(250),
            ..policy()
        },
    })
    .unwrap();
    assert_eq!(
        c.push_status(&update("s")).await.unwrap(),
        PushOutcome::Accepted
    );
    assert_eq!(sb.lock().pushes().len(), 1);
}

#[tokio::test]
async fn unreachable_receiver_is_unavailable() {
    // Bind then drop a listener: the port is very likely closed afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client(&format!("http://127.0.0.1:{port}/"), KEY, false);
    let e = c.push_status(&update("s")).await.unwrap_err();
    assert!(
        matches!(e, ImshopError::Unavailable { attempts: 3, .. }),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// The sandbox as the IMSHOP app, against a stand-in shop listener
// ---------------------------------------------------------------------------

/// A received scan with the `Authorization` header it came with.
type ReceivedScan = (Option<String>, ScanRequest);

#[derive(Clone, Default)]
struct Shop {
    scans: Arc<Mutex<Vec<ReceivedScan>>>,
}

fn auth_of(h: &HeaderMap) -> Option<String> {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn scan_hook(State(shop): State<Shop>, headers: HeaderMap, body: Bytes) -> Json<ScanAnswer> {
    let req: ScanRequest = serde_json::from_slice(&body).unwrap();
    let code = barcode_text(&req.barcode);
    shop.scans
        .lock()
        .unwrap()
        .push((auth_of(&headers), req.clone()));
    Json(ScanAnswer {
        success: true,
        id: code,
        status: ScanStatus::Processing,
        alert_title: None,
        alert_message: None,
        status_message: Some("В обработке".into()),
    })
}

async fn history_hook(State(shop): State<Shop>, body: Bytes) -> Json<HistoryAnswer> {
    let req: HistoryRequest = serde_json::from_slice(&body).unwrap();
    let scans = shop
        .scans
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.user_id == req.user_id)
        .map(|(_, s)| ScanRecord {
            id: barcode_text(&s.barcode),
            timestamp: s.timestamp,
            code: s.barcode.clone(),
            status: ScanStatus::Processing,
            status_message: None,
        })
        .collect();
    Json(HistoryAnswer { scans })
}

async fn shop() -> (Shop, RunningServer) {
    let shop = Shop::default();
    let app = Router::new()
        .route("/scan", post(scan_hook))
        .route("/history", post(history_hook))
        .with_state(shop.clone());
    (shop.clone(), spawn(app, any_local_port()).await.unwrap())
}

#[tokio::test]
async fn scans_and_history_round_trip_with_gs1_codes() {
    let (shop, srv) = shop().await;
    let gs1 = format!("0104607004650076215'Xk6d{GS}93dGVz");
    let binary = encode_barcode(gs1.as_bytes());
    let mut data = Map::new();
    data.insert("customField1".into(), json!("value1"));

    let (status, body) = send_scan(
        &format!("{}/scan", srv.url),
        KEY,
        &binary,
        "79991234567",
        1_662_660_581,
        Some(data),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"success\":true"));
    let answer: ScanAnswer = serde_json::from_str(&body).unwrap();
    assert_eq!(answer.id, gs1);
    assert!(answer.id.contains(GS));

    // The same code sent as raw text (GS inside the JSON string) survives too.
    let (_, body) = send_scan(
        &format!("{}/scan", srv.url),
        KEY,
        &gs1,
        "79991234567",
        1,
        None,
    )
    .await
    .unwrap();
    let answer: ScanAnswer = serde_json::from_str(&body).unwrap();
    assert_eq!(decode_barcode(&answer.id), gs1.as_bytes());

    let scans = shop.scans.lock().unwrap().clone();
    assert_eq!(scans[0].0.as_deref(), Some("Bearer imshop-k3y"));
    assert_eq!(scans[0].1.data.as_ref().unwrap()["customField1"], "value1");

    let (status, body) = send_history(&format!("{}/history", srv.url), KEY, "79991234567")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let history = HistoryAnswer::parse_lenient(&body).unwrap();
    assert_eq!(history.scans.len(), 2);
    assert_eq!(history.scans[0].id, gs1);
}

#[tokio::test]
async fn the_seed_examples_go_through_verbatim() {
    let (shop, srv) = shop().await;
    let (status, _) = send_raw(&format!("{}/scan", srv.url), KEY, SAMPLE_SCAN_REQUEST)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let scans = shop.scans.lock().unwrap().clone();
    assert_eq!(barcode_text(&scans[0].1.barcode), "asdasd jakds lakdsaa");

    let typo: ScanAnswer = serde_json::from_str(SAMPLE_SCAN_ANSWER).unwrap();
    assert!(!typo.success);
    assert_eq!(typo.status, ScanStatus::Denied);
    assert_eq!(typo.alert_title.as_deref(), Some("Ошибка"));
    let rewritten = serde_json::to_value(&typo).unwrap();
    assert_eq!(rewritten["success"], json!(false));

    let history = HistoryAnswer::parse_lenient(SAMPLE_HISTORY_ANSWER).unwrap();
    assert_eq!(history.scans[0].id, "2cff9e9e-3d89-43de-98bf-b0d922233a62");
    assert_eq!(history.scans[0].status, ScanStatus::Approved);
}
