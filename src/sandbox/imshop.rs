//! A stand-in for IMSHOP: a receiver for the shop's asynchronous scan status
//! updates, and helpers that play the IMSHOP app calling the shop's scan
//! registration and history hooks. The IMSHOP documentation's examples are kept verbatim.

use crate::connectors::imshop::ScanUpdate;
use crate::sandbox::common::{instrument, SandboxControl};
use crate::secret::Secret;
use crate::server::{spawn, RunningServer};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// IMSHOP marking documentation: the scan registration request example, verbatim.
pub const SAMPLE_SCAN_REQUEST: &str = include_str!(
    "../../tests/fixtures/vendors/imshop/01-otpravka-zaprosa-na-skanirovanie-zapros.json"
);

/// IMSHOP marking documentation: the scan registration answer example, verbatim — with its
/// `sucсess` typo (the second `с` is Cyrillic).
pub const SAMPLE_SCAN_ANSWER: &str = include_str!(
    "../../tests/fixtures/vendors/imshop/02-otpravka-zaprosa-na-skanirovanie-otvet.json"
);

/// IMSHOP marking documentation: the history request example, verbatim.
pub const SAMPLE_HISTORY_REQUEST: &str = include_str!(
    "../../tests/fixtures/vendors/imshop/03-zapros-statusov-skanirovaniya-zapros.json"
);

/// IMSHOP marking documentation: the history answer example, verbatim — not valid JSON: the scan
/// inside the array has no braces.
pub const SAMPLE_HISTORY_ANSWER: &str =
    include_str!("../../tests/fixtures/vendors/imshop/04-zapros-statusov-skanirovaniya-otvet.json");

/// IMSHOP marking documentation: the asynchronous status update example, verbatim.
pub const SAMPLE_STATUS_UPDATE: &str = include_str!(
    "../../tests/fixtures/vendors/imshop/05-asinhronnoe-obnovlenie-statusov-primer-zaprosa.json"
);

/// One status update as the sandbox received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedPush {
    /// The raw body.
    pub body: Value,
    /// The update, when the body was well-formed.
    pub update: Option<ScanUpdate>,
    /// Whether the key matched where the receiver looks for it ([`KeyPlacement`]).
    pub authorized: bool,
    /// Whether an `Authorization: Bearer …` header came.
    pub bearer_sent: bool,
    /// Whether a `key` body field came.
    pub body_key_sent: bool,
    /// The HTTP status answered.
    pub status: u16,
}

/// Where the receiver looks for the shop's key on a status update. The IMSHOP marking documentation
/// does not say (UNVERIFIED), so the sandbox has a switch for each reading;
/// sverka's side is `[imshop] push_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyPlacement {
    /// A Bearer header or a `key` body field (the lenient default).
    #[default]
    Either,
    /// Only `Authorization: Bearer <key>`.
    Bearer,
    /// Only a `key` field of the JSON body.
    Body,
}

/// The receiver's configuration and log.
#[derive(Debug)]
pub struct ImshopState {
    /// Where the key is looked for.
    pub key_placement: KeyPlacement,
    key: Secret,
    default_status: u16,
    per_scan: HashMap<String, u16>,
    pushes: Vec<ReceivedPush>,
}

impl ImshopState {
    /// A receiver accepting `key`; every well-formed, authorized update gets 204.
    pub fn new(key: &str) -> Self {
        ImshopState {
            key_placement: KeyPlacement::default(),
            key: Secret::new(key),
            default_status: 204,
            per_scan: HashMap::new(),
            pushes: Vec::new(),
        }
    }

    /// The status answered to authorized, well-formed updates without a per-scan override.
    pub fn set_default_status(&mut self, status: u16) {
        self.default_status = status;
    }

    /// The status answered to updates of scan `id` (e.g. 404 for an unknown scan).
    pub fn set_scan_status(&mut self, id: &str, status: u16) {
        self.per_scan.insert(id.to_string(), status);
    }

    /// Every update received, oldest first.
    pub fn pushes(&self) -> &[ReceivedPush] {
        &self.pushes
    }

    fn status_for(&self, id: &str) -> u16 {
        self.per_scan
            .get(id)
            .copied()
            .unwrap_or(self.default_status)
    }
}

/// The IMSHOP sandbox: the receiver's state plus fault-injection control.
#[derive(Clone)]
pub struct ImshopSandbox {
    /// The receiver's configuration and log.
    pub state: Arc<Mutex<ImshopState>>,
    /// Request log and fault injection.
    pub control: SandboxControl,
}

impl ImshopSandbox {
    /// A receiver accepting `key`; `seed` drives the random faults.
    pub fn new(key: &str, seed: u64) -> Self {
        ImshopSandbox {
            state: Arc::new(Mutex::new(ImshopState::new(key))),
            control: SandboxControl::new("imshop", seed),
        }
    }

    /// Locks the state (a poisoned lock is recovered).
    pub fn lock(&self) -> MutexGuard<'_, ImshopState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The instrumented router: `POST` on any path (the issued URL may embed a token).
    pub fn router(&self) -> Router {
        let app = Router::new()
            .fallback(receive)
            .with_state(self.state.clone());
        instrument(app, self.control.clone())
    }

    /// Serves on `addr` (port 0 for an ephemeral port).
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<RunningServer> {
        spawn(self.router(), addr).await
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn receive(
    State(state): State<Arc<Mutex<ImshopState>>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let raw: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut st = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let body_key = raw.get("key").and_then(Value::as_str).map(str::to_owned);
    let body_key_sent = body_key.is_some();
    let by_header = bearer(&headers).is_some_and(|k| st.key.matches(k));
    let by_body = body_key.as_deref().is_some_and(|k| st.key.matches(k));
    let authorized = match st.key_placement {
        KeyPlacement::Either => by_header || by_body,
        KeyPlacement::Bearer => by_header,
        KeyPlacement::Body => by_body,
    };
    let update: Option<ScanUpdate> = serde_json::from_value(without_key(&raw)).ok();
    let status = match (&update, authorized) {
        (_, false) => 401,
        (None, true) => 400,
        (Some(u), true) => st.status_for(&u.id),
    };
    st.pushes.push(ReceivedPush {
        body: raw,
        update,
        authorized,
        bearer_sent: bearer(&headers).is_some(),
        body_key_sent,
        status,
    });
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if code == StatusCode::NO_CONTENT {
        code.into_response()
    } else {
        (code, format!("imshop sandbox: {status}")).into_response()
    }
}

/// The body without the optional `key` field (strict parsing of the rest).
fn without_key(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "key")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------
// IMSHOP → shop
// ---------------------------------------------------------------------------

/// IMSHOP → shop: a scan to register, as the IMSHOP app sends it (IMSHOP API
/// documentation, "Отправка запроса на сканирование").
#[derive(serde::Serialize)]
struct ScanRequest {
    barcode: String,
    #[serde(rename = "userId")]
    user_id: String,
    timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Map<String, Value>>,
}

/// IMSHOP → shop: a user's scan history request (IMSHOP API documentation,
/// "Запрос статусов сканирования").
#[derive(serde::Serialize)]
struct HistoryRequest {
    #[serde(rename = "userId")]
    user_id: String,
}

async fn post_json(
    url: &str,
    key: &str,
    body: &impl serde::Serialize,
) -> Result<(u16, String), reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut req = client.post(url).json(body);
    if !key.is_empty() {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

/// Plays IMSHOP registering a scan on the shop's listener; returns status and body.
pub async fn send_scan(
    listener_url: &str,
    key: &str,
    barcode: &str,
    user_id: &str,
    timestamp: i64,
    data: Option<Map<String, Value>>,
) -> Result<(u16, String), reqwest::Error> {
    let req = ScanRequest {
        barcode: barcode.to_string(),
        user_id: user_id.to_string(),
        timestamp,
        data,
    };
    post_json(listener_url, key, &req).await
}

/// Plays IMSHOP asking the shop's listener for a user's scan history.
pub async fn send_history(
    listener_url: &str,
    key: &str,
    user_id: &str,
) -> Result<(u16, String), reqwest::Error> {
    let req = HistoryRequest {
        user_id: user_id.to_string(),
    };
    post_json(listener_url, key, &req).await
}

/// Posts one of the IMSHOP documentation's raw examples (e.g. [`SAMPLE_SCAN_REQUEST`]) verbatim.
pub async fn send_raw(
    listener_url: &str,
    key: &str,
    body: &str,
) -> Result<(u16, String), reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut req = client
        .post(listener_url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if !key.is_empty() {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::imshop::{
        HistoryAnswer, HistoryRequest, ScanAnswer, ScanRequest, ScanStatus,
    };

    #[test]
    fn seed_examples_parse_with_the_lenient_types() {
        let req: ScanRequest = serde_json::from_str(SAMPLE_SCAN_REQUEST).unwrap();
        assert_eq!(req.user_id, "79991234567");
        let answer: ScanAnswer = serde_json::from_str(SAMPLE_SCAN_ANSWER).unwrap();
        assert!(!answer.success);
        assert_eq!(answer.status, ScanStatus::Denied);
        assert!(SAMPLE_SCAN_ANSWER.contains("\"suc\u{0441}ess\""));
        let hist: HistoryRequest = serde_json::from_str(SAMPLE_HISTORY_REQUEST).unwrap();
        assert_eq!(hist.user_id, "79991234567");
        assert!(serde_json::from_str::<Value>(SAMPLE_HISTORY_ANSWER).is_err());
        let h = HistoryAnswer::parse_lenient(SAMPLE_HISTORY_ANSWER).unwrap();
        assert_eq!(h.scans.len(), 1);
        assert_eq!(
            h.scans[0].status_message.as_deref(),
            Some("Начислено 200 бонусов")
        );
        let u: ScanUpdate = serde_json::from_str(SAMPLE_STATUS_UPDATE).unwrap();
        assert_eq!(u.status, ScanStatus::Approved);
    }

    #[test]
    fn bearer_is_read_case_insensitively() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
