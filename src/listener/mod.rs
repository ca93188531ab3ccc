//! `sverka serve`: the callback listener and its events journal.
//!
//! # Routes
//! | Method | Path | Protocol |
//! |---|---|---|
//! | `POST` | `/imsklad` | IMSKLAD callbacks (seed 002): envelope `{key, type, action, data}` |
//! | `GET`, `POST` | `/egon` | EGON callbacks (seed 000): `req` form field, raw JSON body or `?req=` |
//! | `POST` | `/imshop/scan` | IMSHOP marking scan registration (seed 003) |
//! | `POST` | `/imshop/history` | IMSHOP scan history of one user |
//! | `GET`, `POST` | `/retailcrm/inventories` | RetailCRM `inventoriesUpload` callback |
//! | `GET` | `/healthz` | `{"status":"ok"}` when the state database answers, else 503 |
//!
//! # Durability
//! A notification (a callback that reports something: an order status, a
//! track, stock, a scan) is journaled in `events` and the state it implies is
//! updated in the same transaction *before* the answer is sent (see
//! [`crate::db::events`]). If that fails the answer is a protocol-shaped
//! temporary error with HTTP 503, so the sender retries. Queries (`get_good`,
//! `get_supplier(s)`, `get_good_suppliers`, scan history, `inventoriesUpload`,
//! `GetInvoiceUrl`, `GetShippingLabel`) are answered from data and not journaled.
//!
//! The journaled body is the request JSON re-serialised with credential fields
//! (`key`, `auth_key`) replaced by `***`; the idempotency key is the SHA-256 of
//! source, method and that body in canonical form (object keys sorted).
//!
//! # Errors
//! Every rejection is answered in the protocol's own shape and logged with
//! `tracing::warn!` (never with a key). Bodies above `max_body_bytes` get HTTP 413.
//! IMSKLAD and EGON errors are HTTP 200 with the error in the body, like the
//! vendors' own; IMSHOP uses 400/401/403/404 as its hook documentation does.

pub mod egon;
pub mod imshop;
pub mod imsklad;
pub mod retailcrm;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::db::events::{self, Effect, NewEvent, Recorded};
use crate::db::{now_ms, Db, DbError};
use crate::sandbox::common::RunningServer;
use crate::secret::Secret;
use crate::shop::{Shop, ShopError};

/// Default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Configuration of the listener.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Largest accepted request body (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// The endpoint key IMSKLAD sends in its callbacks.
    pub imsklad_callback_key: Secret,
    /// EGON `auth_id` expected in callbacks.
    pub egon_auth_id: String,
    /// EGON `auth_key` expected in callbacks.
    pub egon_auth_key: Secret,
    /// Key IMSHOP sends to the scan hooks (empty: hooks closed).
    pub imshop_hook_key: Secret,
    /// RetailCRM `clientId` of the warehouse module (empty: callback closed).
    pub retailcrm_client_id: Secret,
    /// RetailCRM store code the stock is reported for.
    pub retailcrm_store: String,
    /// Name offers by `xmlId` instead of `externalId`.
    pub crm_offer_key_is_xml_id: bool,
    /// Another system of the shop exports orders to carriers: IMSKLAD's
    /// `send_to_cdek`, `send_to_boxberry` and `send_act_to_boxberry` are
    /// answered ok (`[imsklad] carrier_export = "elsewhere"`); otherwise they
    /// are journaled and answered error code 4.
    pub imsklad_carrier_export_elsewhere: bool,
    /// Time zone of EGON's `change_timestamp` (`[egon] timezone`).
    pub egon_tz: chrono_tz::Tz,
    /// The IMSHOP hooks take no credential (`[imshop] hook_auth = "none"`).
    pub imshop_hook_auth_none: bool,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8787)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            imsklad_callback_key: Secret::default(),
            egon_auth_id: String::new(),
            egon_auth_key: Secret::default(),
            imshop_hook_key: Secret::default(),
            retailcrm_client_id: Secret::default(),
            retailcrm_store: String::new(),
            crm_offer_key_is_xml_id: false,
            imsklad_carrier_export_elsewhere: false,
            egon_tz: crate::listener::egon::EGON_TZ,
            imshop_hook_auth_none: false,
        }
    }
}

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct ListenerState {
    /// Settings.
    pub settings: Arc<ListenerSettings>,
    /// sverka's state database (journal and derived state).
    pub state_db: Db,
    /// The shop database (goods, suppliers, marking codes).
    pub shop: Shop,
}

/// Why a callback was rejected; each protocol renders it in its own shape.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The body is larger than `max_body_bytes` (or could not be read).
    #[error("request body larger than {limit} bytes or unreadable")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body is not the protocol's JSON.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Wrong or missing credentials.
    #[error("wrong or missing credentials")]
    Unauthorized,
    /// No credentials are configured: the endpoint is closed.
    #[error("endpoint closed: no key configured")]
    Closed,
    /// The type/action/method is not part of the protocol.
    #[error("unknown method `{0}`")]
    UnknownMethod(String),
    /// A required field is missing or has the wrong type.
    #[error("missing or invalid field `{0}`")]
    Field(String),
    /// The requested object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The state database failed (temporary: the sender should retry).
    #[error("state database: {0}")]
    Db(#[from] DbError),
    /// The shop database failed (temporary: the sender should retry).
    #[error("shop database: {0}")]
    Shop(#[from] ShopError),
}

impl ListenerError {
    /// True for failures on sverka's side that a retry can fix.
    pub fn is_temporary(&self) -> bool {
        matches!(self, ListenerError::Db(_) | ListenerError::Shop(_))
    }

    /// Logs the rejection (the error never carries a credential).
    fn warn(&self, source: &str, method: &str) {
        tracing::warn!(source, method, error = %self, "callback rejected");
    }
}

/// The listener's routes (see the module doc).
pub fn router(state: ListenerState) -> Router {
    Router::new()
        .route("/imsklad", post(imsklad::handle))
        .route("/egon", get(egon::handle_get).post(egon::handle_post))
        .route("/imshop/scan", post(imshop::scan))
        .route("/imshop/history", post(imshop::history))
        .route(
            "/retailcrm/inventories",
            get(retailcrm::inventories).post(retailcrm::inventories),
        )
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Serves on `state.settings.bind` until `shutdown` resolves; requests in
/// flight finish (and are journaled) before it returns.
pub async fn serve(
    state: ListenerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.settings.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "listener started");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Starts the listener on `addr` (port 0 picks a free one) in the background;
/// the returned server knows its address and stops on `stop()` or drop.
pub async fn spawn(state: ListenerState, addr: SocketAddr) -> std::io::Result<RunningServer> {
    crate::sandbox::common::spawn(router(state), addr).await
}

async fn healthz(axum::extract::State(state): axum::extract::State<ListenerState>) -> Response {
    match state
        .state_db
        .fetch_optional("SELECT 1 AS one", &[], "health check")
        .await
    {
        Ok(_) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// Reads the body up to `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ListenerError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ListenerError::TooLarge { limit })
}

/// Parses JSON leniently (trailing commas) into a value.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ListenerError> {
    crate::lenient::from_slice::<Value>(bytes).map_err(|e| ListenerError::Malformed(e.to_string()))
}

/// JSON text with object keys sorted at every level, no whitespace.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    if let Some(inner) = map.get(*k) {
                        write(inner, out);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// `v` with every object field named in `fields` (at any depth) replaced by `***`.
pub fn redact_fields(v: &Value, fields: &[&str]) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, inner)| {
                    let value = if fields.contains(&k.as_str()) {
                        Value::String("***".into())
                    } else {
                        redact_fields(inner, fields)
                    };
                    (k.clone(), value)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| redact_fields(i, fields)).collect())
        }
        scalar => scalar.clone(),
    }
}

/// Journals an event (body redacted of `secret_fields`) with its effects in one transaction.
pub(crate) async fn journal(
    db: &Db,
    source: &str,
    method: &str,
    body: &Value,
    secret_fields: &[&str],
    effects: &[Effect],
) -> Result<Recorded, ListenerError> {
    let redacted = redact_fields(body, secret_fields);
    let canonical = canonical_json(&redacted);
    let event = NewEvent {
        source: source.to_string(),
        method: method.to_string(),
        idem_key: events::idempotency_key(source, method, &canonical),
        body: redacted.to_string(),
        received_at: now_ms(),
    };
    let recorded = events::record(db, &event, effects).await?;
    if recorded == Recorded::Duplicate {
        tracing::info!(source, method, "duplicate callback: already journaled");
    }
    Ok(recorded)
}

/// A JSON answer with a status code.
pub(crate) fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"d": [1, {"z": 1, "y": 2}], "c": "x"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn redaction_hides_credentials_anywhere() {
        let v = json!({"key": "SECRET", "auth": {"auth_id": "id", "auth_key": "K"}, "list": [{"key": 1}]});
        let r = redact_fields(&v, &["key", "auth_key"]).to_string();
        assert!(!r.contains("SECRET") && !r.contains("\"K\""), "{r}");
        assert!(r.contains("auth_id"));
    }

    #[test]
    fn settings_debug_hides_keys() {
        let s = ListenerSettings {
            imsklad_callback_key: Secret::new("K-IMSKLAD"),
            egon_auth_key: Secret::new("K-EGON"),
            imshop_hook_key: Secret::new("K-IMSHOP"),
            retailcrm_client_id: Secret::new("K-CRM"),
            ..ListenerSettings::default()
        };
        let text = format!("{s:?}");
        assert!(!text.contains("K-"), "{text}");
    }

    #[test]
    fn errors_never_show_credentials_and_classify_temporary() {
        let e = ListenerError::Unauthorized;
        assert!(!e.is_temporary());
        assert!(ListenerError::Db(DbError::Corrupt("x".into())).is_temporary());
    }
}
