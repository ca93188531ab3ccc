//! `sverka serve`: the callback listener and its events journal.
//!
//! # Routes
//! | Method | Path | Protocol |
//! |---|---|---|
//! | `POST` | `/imsklad` | IMSKLAD callbacks (the IMSKLAD API documentation): envelope `{key, type, action, data}` |
//! | `GET`, `POST` | `/egon` | EGON callbacks (EGON's callback documentation): `req` form field, raw JSON body or `?req=` |
//! | `POST` | `/imshop/scan` | IMSHOP marking scan registration (IMSHOP's marking-scan documentation) |
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
//! The journaled body is the request JSON re-serialised with the credentials
//! replaced by `***` by path (IMSKLAD's and IMSHOP's top-level `key`, EGON's
//! `auth.auth_key`; a `key` inside the data is data); the idempotency key is
//! the SHA-256 of source, method and that body in canonical form (object keys
//! sorted). Which repeats are redeliveries is decided per entity: see
//! [`crate::db::events`] (the rule is UNVERIFIED).
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
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::db::events::{self, Effect, NewEvent, Recorded};
use crate::db::{now_ms, Db, DbError};
use crate::secret::Secret;
use crate::server::RunningServer;
use crate::shop::{Shop, ShopError};

/// Default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default time a client has to send a request's headers (and idle keep-alive limit).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send a request's body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default time requests in flight get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Configuration of the listener.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Largest accepted request body (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// Time to send the headers (default [`DEFAULT_HEADER_TIMEOUT`]).
    pub header_timeout: Duration,
    /// Time to send the body (default [`DEFAULT_BODY_TIMEOUT`]).
    pub body_timeout: Duration,
    /// Open connections at most (default [`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// Time in-flight requests get on shutdown (default [`DEFAULT_SHUTDOWN_GRACE`]).
    pub shutdown_grace: Duration,
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
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            imsklad_callback_key: Secret::default(),
            egon_auth_id: String::new(),
            egon_auth_key: Secret::default(),
            imshop_hook_key: Secret::default(),
            retailcrm_client_id: Secret::default(),
            retailcrm_store: String::new(),
            crm_offer_key_is_xml_id: false,
            imsklad_carrier_export_elsewhere: false,
            egon_tz: crate::connectors::egon::EGON_TZ,
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
    /// The body is larger than `max_body_bytes`, could not be read, or did
    /// not arrive within the body timeout.
    #[error("request body larger than {limit} bytes, unreadable or too slow")]
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
    /// A field holds a value outside what sverka accepts (a status that is not
    /// an integer in 0..=999, a negative count).
    #[error("invalid value of `{field}`: {why}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        why: String,
    },
    /// An id or text is longer than its column.
    #[error("`{field}` is longer than {limit} characters")]
    TooLong {
        /// The field.
        field: String,
        /// Its column's length.
        limit: usize,
    },
    /// The requested object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The state database failed (temporary: the sender should retry).
    #[error("state database")]
    Db(#[from] DbError),
    /// The shop database failed (temporary: the sender should retry).
    #[error("shop database")]
    Shop(#[from] ShopError),
}

impl ListenerError {
    /// True for failures on sverka's side that a retry can fix.
    pub fn is_temporary(&self) -> bool {
        matches!(self, ListenerError::Db(_) | ListenerError::Shop(_))
    }

    /// True for the rejections of an authenticated notification that are kept
    /// in the journal (bad data; not a wrong key, an oversized body or a lookup miss).
    pub fn is_journaled_rejection(&self) -> bool {
        matches!(
            self,
            ListenerError::Malformed(_)
                | ListenerError::UnknownMethod(_)
                | ListenerError::Field(_)
                | ListenerError::Invalid { .. }
                | ListenerError::TooLong { .. }
        )
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
/// flight get `shutdown_grace` to finish (and be journaled) before their
/// connections are closed.
pub async fn serve(
    state: ListenerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.settings.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "listener started");
    serve_on(listener, state, shutdown).await
}

/// Starts the listener on `addr` (port 0 picks a free one) in the background;
/// the returned server knows its address and stops on `stop()` or drop.
pub async fn spawn(state: ListenerState, addr: SocketAddr) -> std::io::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let stopped = async move {
            let _ = rx.await;
        };
        if let Err(e) = serve_on(listener, state, stopped).await {
            tracing::warn!(error = %crate::errors::Chain(&e), "listener stopped with an error");
        }
    });
    Ok(RunningServer::from_task(addr, tx, handle))
}

/// The accept loop: HTTP/1 connections with a header read timeout, at most
/// `max_connections` at once (further clients wait in the accept queue), and
/// a bounded graceful shutdown.
async fn serve_on(
    listener: tokio::net::TcpListener,
    state: ListenerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let settings = state.settings.clone();
    let app = router(state);
    let permits = Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!(error = %crate::errors::Chain(&e), "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_timeout);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!(
                grace_secs = settings.shutdown_grace.as_secs(),
                "connections still open after the shutdown grace: closing them"
            );
        }
    }
    Ok(())
}

async fn healthz(axum::extract::State(state): axum::extract::State<ListenerState>) -> Response {
    match state
        .state_db
        .fetch_optional("SELECT 1 AS one", &[], "health check")
        .await
    {
        Ok(_) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// Reads the body up to `max_body_bytes`, within `body_timeout`.
pub(crate) async fn read_body(
    body: Body,
    settings: &ListenerSettings,
) -> Result<Bytes, ListenerError> {
    let limit = settings.max_body_bytes;
    match tokio::time::timeout(settings.body_timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) | Err(_) => Err(ListenerError::TooLarge { limit }),
    }
}

/// Parses JSON leniently (trailing commas) into a value.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ListenerError> {
    crate::lenient::from_slice::<Value>(bytes).map_err(|e| ListenerError::Malformed(e.to_string()))
}

pub use crate::json_canon::canonical_json;

/// A secret's place in a callback body: the object keys from the root.
pub type SecretPath = &'static [&'static str];

/// IMSKLAD: the envelope's `key`.
pub const IMSKLAD_SECRETS: &[SecretPath] = &[&["key"]];
/// EGON: `auth.auth_key` (and `auth.auth_token`, should EGON send one).
pub const EGON_SECRETS: &[SecretPath] = &[&["auth", "auth_key"], &["auth", "auth_token"]];
/// IMSHOP: the body's `key`.
pub const IMSHOP_SECRETS: &[SecretPath] = &[&["key"]];

/// `v` with the value at each of `paths` replaced by `***`; fields of the
/// same name elsewhere (e.g. a `key` inside `data`) are kept, so two different
/// bodies never share an idempotency key.
pub fn redact_paths(v: &Value, paths: &[SecretPath]) -> Value {
    let mut out = v.clone();
    for path in paths {
        let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
        if let Some(slot) = out.pointer_mut(&pointer) {
            *slot = Value::String("***".into());
        }
    }
    out
}

/// What a callback says about itself beyond its effects.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    /// The event's own time (EGON `change_timestamp`), Unix ms.
    pub event_at: Option<i64>,
    /// Subjects of a journal-only callback (see [`events::Entity`]).
    pub subjects: Vec<events::Entity>,
    /// Lines of a list callback that were rejected: (line JSON, reason).
    pub rejected: Vec<(Value, String)>,
}

/// Journals an event (body redacted at `secrets`) with its effects in one transaction.
pub(crate) async fn journal(
    db: &Db,
    source: &str,
    method: &str,
    body: &Value,
    secrets: &[SecretPath],
    effects: &[Effect],
    meta: Meta,
) -> Result<Recorded, ListenerError> {
    let redacted = redact_paths(body, secrets);
    let canonical = canonical_json(&redacted);
    let event = NewEvent {
        source: source.to_string(),
        method: method.to_string(),
        idem_key: events::idempotency_key(source, method, &canonical),
        body: redacted.to_string(),
        received_at: now_ms(),
        event_at: meta.event_at,
        subjects: meta.subjects,
        rejected: meta
            .rejected
            .iter()
            .map(|(line, why)| events::RejectedLine {
                body: cap_body(
                    &redact_paths(line, secrets).to_string(),
                    MAX_REJECTED_BODY_BYTES,
                ),
                reason: why.clone(),
            })
            .collect(),
    };
    if !event.rejected.is_empty() {
        tracing::warn!(
            source,
            method,
            rejected = event.rejected.len(),
            "callback lines rejected"
        );
    }
    let recorded = events::record(db, &event, effects).await?;
    match recorded {
        Recorded::Duplicate => {
            tracing::info!(
                source,
                method,
                "redelivery of the latest event: already journaled"
            )
        }
        Recorded::Stale(id) => {
            tracing::info!(
                source,
                method,
                id,
                "older than the latest event: journaled, not applied"
            )
        }
        Recorded::New(_) => {}
    }
    Ok(recorded)
}

/// Length of the state database's id columns (order ids, SKUs, tracks, codes, users).
pub const MAX_ID_CHARS: usize = 255;
/// Length of the WMS order id column.
pub const MAX_WMS_ID_CHARS: usize = 64;
/// Largest rejected body kept in the journal, bytes (the rest is cut off).
pub const MAX_REJECTED_BODY_BYTES: usize = 64 * 1024;

/// `value` unless it is longer than `limit` characters.
pub(crate) fn within(field: &str, value: String, limit: usize) -> Result<String, ListenerError> {
    if value.chars().count() > limit {
        return Err(ListenerError::TooLong {
            field: field.to_string(),
            limit,
        });
    }
    Ok(value)
}

/// An integer in `range` from a number, a numeric string or an integral
/// float; `None` for anything else (fractions, out-of-range or huge values:
/// nothing saturates).
pub fn int_in(v: &Value, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    let from_f64 = |f: f64| {
        (f.fract() == 0.0 && f >= *range.start() as f64 && f <= *range.end() as f64)
            .then_some(f as i64)
    };
    let n = match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(i),
            None => n.as_f64().and_then(from_f64),
        },
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<i64>() {
                Ok(i) => Some(i),
                Err(_) => s.parse::<f64>().ok().and_then(from_f64),
            }
        }
        _ => None,
    }?;
    range.contains(&n).then_some(n)
}

/// The range of a WMS status sverka accepts.
pub const STATUS_RANGE: std::ops::RangeInclusive<i64> = 0..=999;

/// The status in `data[field]`: an integer in [`STATUS_RANGE`].
pub(crate) fn status_field(data: &Value, field: &str, path: &str) -> Result<i64, ListenerError> {
    let v = data
        .get(field)
        .filter(|v| !v.is_null())
        .ok_or_else(|| ListenerError::Field(path.to_string()))?;
    int_in(v, STATUS_RANGE).ok_or_else(|| ListenerError::Invalid {
        field: path.to_string(),
        why: format!("{v} is not an integer in 0..=999"),
    })
}

/// `text` cut to at most `limit` bytes on a character boundary, with a marker.
pub fn cap_body(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} more bytes cut]", &text[..end], text.len() - end)
}

/// Journals a rejected authenticated notification: its body redacted at
/// `secrets` (or, when it is not JSON, the raw text with `raw_secrets`
/// replaced) and capped at [`MAX_REJECTED_BODY_BYTES`], with the reason.
/// A failure to journal is logged; the sender still gets the protocol's error.
pub(crate) async fn journal_rejected(
    db: &Db,
    source: &str,
    method: &str,
    body: Result<&Value, &[u8]>,
    secrets: &[SecretPath],
    raw_secrets: &[&Secret],
    reason: &ListenerError,
) {
    let text = match body {
        Ok(v) => redact_paths(v, secrets).to_string(),
        Err(raw) => {
            let mut t = String::from_utf8_lossy(raw).into_owned();
            for s in raw_secrets {
                if !s.is_empty() {
                    t = t.replace(s.expose(), "***");
                }
            }
            t
        }
    };
    let body = cap_body(&text, MAX_REJECTED_BODY_BYTES);
    // An unknown method's name comes from the sender: cut to the column's 64.
    let method: String = method.chars().take(64).collect();
    let method = method.as_str();
    let event = NewEvent {
        source: source.to_string(),
        method: method.to_string(),
        idem_key: events::idempotency_key(source, method, &body),
        body,
        received_at: now_ms(),
        event_at: None,
        subjects: Vec::new(),
        rejected: Vec::new(),
    };
    if let Err(e) = events::record_rejected(db, &event, &reason.to_string()).await {
        tracing::warn!(source, method, error = %crate::errors::Chain(&e), "could not journal a rejected callback");
    }
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
    fn redaction_is_by_path() {
        let v = json!({"key": "SECRET", "auth": {"auth_id": "id", "auth_key": "K"},
                       "data": {"key": "a"}, "list": [{"key": 1}]});
        let r = redact_paths(&v, IMSKLAD_SECRETS);
        assert_eq!(r["key"], "***");
        assert_eq!(
            (r["data"]["key"].clone(), r["list"][0]["key"].clone()),
            (json!("a"), json!(1))
        );
        let e = redact_paths(&v, EGON_SECRETS).to_string();
        assert!(
            !e.contains("\"K\"") && e.contains("SECRET") && e.contains("auth_id"),
            "{e}"
        );
        // Bodies differing only in a nested `key` keep different idempotency keys.
        let other = json!({"key": "SECRET", "data": {"key": "b"}});
        let a = canonical_json(&redact_paths(
            &json!({"key": "SECRET", "data": {"key": "a"}}),
            IMSKLAD_SECRETS,
        ));
        let b = canonical_json(&redact_paths(&other, IMSKLAD_SECRETS));
        assert_ne!(a, b);
        assert!(!a.contains("SECRET"));
        // A missing path or a non-object parent is left alone.
        assert_eq!(redact_paths(&json!([1]), EGON_SECRETS), json!([1]));
        assert_eq!(
            redact_paths(&json!({"auth": "x"}), EGON_SECRETS),
            json!({"auth": "x"})
        );
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
