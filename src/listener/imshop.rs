//! `POST /imshop/scan` and `POST /imshop/history`: IMSHOP marking scans (IMSHOP's marking-scan documentation).
//!
//! # Key
//! Seed 003 documents no credential on these hooks. sverka takes `[imshop]
//! hook_key` as `Authorization: Bearer <key>`, a `key` field in the JSON body,
//! or a `key` query parameter of the hook URL the shop gives IMSHOP (e.g.
//! `https://shop.example/imshop/scan?key=…`), compared in constant time. No key
//! configured: the hooks are closed, unless `[imshop] hook_auth = "none"` says
//! explicitly that they take no credential (for setups restricted by IP).
//!
//! # Answers
//! Seed 003 says the scan hook answers HTTP 200: refusals (closed, wrong key,
//! malformed body, missing field, oversized body) are HTTP 200 with
//! `success: false`, `status: "denied"` and the reason (`error`,
//! `statusMessage`, `alertMessage`); the history hook refuses with HTTP 200,
//! `success: false` and an empty `scans`. Only a failing state database
//! answers HTTP 503: the scan could not be stored, and an HTTP 200 would drop it.
//!
//! # Barcode decoding
//! `barcode` is "text, or base64 for binary data". It is taken as base64 when
//! all of these hold: it uses only the standard base64 alphabet with correct
//! `=` padding and a length that is a multiple of 4, it decodes to UTF-8, and
//! the decoded text has no control characters other than the GS1 group
//! separator (ASCII 29). Otherwise it is the code itself (a DataMatrix code
//! with raw ASCII 29 separators is never valid base64, so it passes unchanged).
//! When the decoded form is unknown to the shop but the barcode as sent is
//! known, the barcode as sent is the code.
//!
//! # Scan answer
//! - `approved`: the code is known and free (sverka marks it used by the user),
//!   or already used by the same user (idempotent);
//! - `denied`: unknown code, or used by another user (Russian `alertTitle`,
//!   `alertMessage`, `statusMessage`);
//! - `processing`: the shop database could not be asked; the scan is stored
//!   and re-checked later ([`crate::db::events::scans_stuck_processing`]).
//!
//! The answer always has the Latin `success` key (true unless denied) and the
//! scan `id` (a UUID, one per user and code). The scan is journaled and stored
//! in one transaction before the answer; a duplicate delivery is answered
//! from the stored scan.
//!
//! # History
//! `{"userId": …}` (string or number) → `{"scans":[{"id","timestamp","code",
//! "status","statusMessage"?}]}`, newest first; `code` is the barcode exactly
//! as IMSHOP sent it in that scan (the decoded code for scans stored before
//! sverka kept barcodes).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value};

use super::{answer, journal, parse_json, read_body, ListenerError, ListenerState, Meta};
use crate::db::events::{self, Effect, Scan, ScanStatus, ScanWrite, SOURCE_IMSHOP};
use crate::db::DbError;
use crate::lenient::{value_to_i64, value_to_id};
use crate::shop::scans::{decide, Verdict, APPROVED, DENIED_UNKNOWN, DENIED_USED, PROCESSING};
use crate::shop::Shop;

/// GS1 group separator (ASCII 29) kept inside marking codes.
pub const GS: char = '\u{1d}';

/// Handles a scan registration.
pub async fn scan(
    State(state): State<ListenerState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match process_scan(&state, &headers, query.as_deref(), body).await {
        Ok(v) => answer(StatusCode::OK, v),
        Err(err) => {
            err.warn(SOURCE_IMSHOP, "scan");
            scan_refusal(&err)
        }
    }
}

/// Handles a history request.
pub async fn history(
    State(state): State<ListenerState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match process_history(&state, &headers, query.as_deref(), body).await {
        Ok(v) => answer(StatusCode::OK, v),
        Err(err) if err.is_temporary() => {
            err.warn(SOURCE_IMSHOP, "history");
            error_answer(&err)
        }
        Err(err) => {
            err.warn(SOURCE_IMSHOP, "history");
            answer(
                StatusCode::OK,
                json!({"success": false, "error": err.to_string(), "scans": []}),
            )
        }
    }
}

/// A refused scan in the documented answer shape, HTTP 200 (a failing state
/// database still answers 503: the scan was not stored, IMSHOP should retry).
pub fn scan_refusal(err: &ListenerError) -> Response {
    if err.is_temporary() {
        return error_answer(err);
    }
    let message = err.to_string();
    answer(
        StatusCode::OK,
        json!({
            "success": false,
            "status": ScanStatus::Denied.as_str(),
            "error": message,
            "alertTitle": "Ошибка",
            "alertMessage": message,
            "statusMessage": "Сканирование не принято",
        }),
    )
}

/// Renders an error: `{"success": false, "error": text}` with a fitting HTTP status.
pub fn error_answer(err: &ListenerError) -> Response {
    let status = match err {
        ListenerError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ListenerError::Closed => StatusCode::FORBIDDEN,
        ListenerError::Unauthorized => StatusCode::UNAUTHORIZED,
        ListenerError::NotFound(_) => StatusCode::NOT_FOUND,
        ListenerError::Db(_) | ListenerError::Shop(_) => StatusCode::SERVICE_UNAVAILABLE,
        ListenerError::Malformed(_)
        | ListenerError::UnknownMethod(_)
        | ListenerError::Field(_)
        | ListenerError::Invalid { .. }
        | ListenerError::TooLong { .. } => StatusCode::BAD_REQUEST,
    };
    let message = if err.is_temporary() {
        "Temporary failure, retry later".to_string()
    } else {
        err.to_string()
    };
    answer(status, json!({"success": false, "error": message}))
}

/// Reads the body and checks the key: the bearer token, the `key` field, or
/// the `key` query parameter ([`crate::config::HookAuth`]).
async fn authorized_body(
    state: &ListenerState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
) -> Result<Value, ListenerError> {
    let (_, parsed) = authorized(state, headers, query, body).await?;
    parsed
}

/// Reads the body and checks the key; returns the bytes and their parse (an
/// authenticated body that is not JSON is the inner error).
async fn authorized(
    state: &ListenerState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
) -> Result<(axum::body::Bytes, Result<Value, ListenerError>), ListenerError> {
    let key = &state.settings.imshop_hook_key;
    let open = state.settings.imshop_hook_auth_none;
    if key.is_empty() && !open {
        return Err(ListenerError::Closed);
    }
    let bytes = read_body(body, &state.settings).await?;
    let parsed = parse_json(&bytes);
    if open {
        return Ok((bytes, parsed));
    }
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let field = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("key"))
        .and_then(value_to_id);
    let in_query = query.and_then(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v)
    });
    // Every comparison runs, whichever carries the key.
    let ok = bearer.is_some_and(|b| key.matches(b))
        | field.is_some_and(|f| key.matches(&f))
        | in_query.is_some_and(|q| key.matches(&q));
    if !ok {
        return Err(ListenerError::Unauthorized);
    }
    Ok((bytes, parsed))
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn user_id(body: &Value) -> Result<String, ListenerError> {
    let id = body
        .get("userId")
        .and_then(value_to_id)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ListenerError::Field("userId".into()))?;
    super::within("userId", id, super::MAX_ID_CHARS)
}

/// The code candidates of a barcode: the decoded base64 text (if the rule in
/// the module doc applies) and the barcode as sent, in lookup order.
pub fn decode_barcode(barcode: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(2);
    if let Some(decoded) = base64_text(barcode) {
        out.push(decoded);
    }
    out.push(barcode.to_string());
    out
}

fn base64_text(barcode: &str) -> Option<String> {
    if barcode.is_empty() || barcode.len() % 4 != 0 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(barcode)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let printable = !text.is_empty() && text.chars().all(|c| c == GS || !c.is_control());
    printable.then_some(text)
}

/// Decides a scan against the shop, marking a free code used by `user`.
async fn verdict(shop: &Shop, candidates: &[String], user: &str) -> (String, Verdict) {
    let fallback = candidates.first().cloned().unwrap_or_default();
    match decide(shop, candidates, user).await {
        Ok(done) => done,
        Err(e) if e.is_unavailable() => {
            tracing::warn!(
                error = %crate::errors::Chain(&e),
                "shop database closed or unreachable: scan stays processing; `reconcile scans` re-checks it"
            );
            (fallback, PROCESSING)
        }
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "marking code lookup failed: scan stays processing");
            (fallback, PROCESSING)
        }
    }
}

fn scan_answer(scan: &Scan, verdict: Option<&Verdict>) -> Value {
    let mut out = json!({
        "success": scan.status != ScanStatus::Denied,
        "id": scan.id,
        "status": scan.status.as_str(),
    });
    if let Some(obj) = out.as_object_mut() {
        if let Some(v) = verdict.filter(|v| v.status == scan.status) {
            if let Some(t) = v.alert_title {
                obj.insert("alertTitle".into(), json!(t));
            }
            if let Some(m) = v.alert_message {
                obj.insert("alertMessage".into(), json!(m));
            }
        }
        if let Some(m) = &scan.status_message {
            obj.insert("statusMessage".into(), json!(m));
        }
    }
    out
}

async fn process_scan(
    state: &ListenerState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
) -> Result<Value, ListenerError> {
    let (bytes, parsed) = authorized(state, headers, query, body).await?;
    let outcome = match &parsed {
        Ok(body) => scan_body(state, body).await,
        Err(ListenerError::Malformed(m)) => Err(ListenerError::Malformed(m.clone())),
        Err(other) => Err(ListenerError::Malformed(other.to_string())),
    };
    if let Err(err) = &outcome {
        if err.is_journaled_rejection() {
            let key = &state.settings.imshop_hook_key;
            super::journal_rejected(
                &state.state_db,
                SOURCE_IMSHOP,
                "scan",
                parsed.as_ref().map_err(|_| &bytes[..]),
                super::IMSHOP_SECRETS,
                &[key],
                err,
            )
            .await;
        }
    }
    outcome
}

async fn scan_body(state: &ListenerState, body: &Value) -> Result<Value, ListenerError> {
    let body = body.clone();
    let user = user_id(&body)?;
    let barcode_value = body
        .get("barcode")
        .and_then(value_to_id)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ListenerError::Field("barcode".into()))?;
    let barcode = barcode_value.as_str();
    let scanned_at = body
        .get("timestamp")
        .and_then(value_to_i64)
        .unwrap_or_else(|| crate::db::now_ms() / 1000);
    let candidates: Vec<String> = decode_barcode(barcode)
        .into_iter()
        .filter(|c| c.chars().count() <= super::MAX_ID_CHARS)
        .collect();
    if candidates.is_empty() {
        return Err(ListenerError::TooLong {
            field: "barcode".into(),
            limit: super::MAX_ID_CHARS,
        });
    }
    let (code, mut verdict) = verdict(&state.shop, &candidates, &user).await;
    if verdict.status == ScanStatus::Processing {
        // The shop cannot be asked now: a decision taken earlier stands.
        if let Some(known) = known_verdict(state, &user, &candidates).await? {
            verdict = known;
        }
    }
    let write = ScanWrite {
        user_id: user.clone(),
        code: code.clone(),
        status: verdict.status,
        status_message: Some(verdict.status_message.to_string()),
        scanned_at,
    };
    journal(
        &state.state_db,
        SOURCE_IMSHOP,
        "scan",
        &body,
        super::IMSHOP_SECRETS,
        &[Effect::Scan(write)],
        Meta::default(),
    )
    .await?;
    let stored = events::scan(&state.state_db, &user, &code)
        .await?
        .ok_or_else(|| {
            ListenerError::Db(DbError::Corrupt(
                "the scan is missing right after it was stored".into(),
            ))
        })?;
    // The barcode exactly as IMSHOP sent it: history and pushes repeat it as `code`.
    crate::db::protocol::put_scan_barcode(&state.state_db, &stored.id, barcode).await?;
    Ok(scan_answer(&stored, Some(&verdict)))
}

/// The verdict already stored for this user and code, unless it is `processing`.
async fn known_verdict(
    state: &ListenerState,
    user: &str,
    candidates: &[String],
) -> Result<Option<Verdict>, ListenerError> {
    for code in candidates {
        if let Some(scan) = events::scan(&state.state_db, user, code).await? {
            return Ok(match scan.status {
                ScanStatus::Approved => Some(APPROVED),
                ScanStatus::Denied
                    if scan.status_message.as_deref() == Some(DENIED_USED.status_message) =>
                {
                    Some(DENIED_USED)
                }
                ScanStatus::Denied => Some(DENIED_UNKNOWN),
                ScanStatus::Processing => None,
            });
        }
    }
    Ok(None)
}

async fn process_history(
    state: &ListenerState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
) -> Result<Value, ListenerError> {
    let body = authorized_body(state, headers, query, body).await?;
    let user = user_id(&body)?;
    let scans = events::user_scans(&state.state_db, &user).await?;
    let ids: Vec<&str> = scans.iter().map(|s| s.id.as_str()).collect();
    let barcodes = crate::db::protocol::scan_barcodes(&state.state_db, &ids).await?;
    let list: Vec<Value> = scans
        .iter()
        .map(|s| {
            let mut item = json!({
                "id": s.id,
                "timestamp": s.scanned_at,
                "code": barcodes.get(&s.id).unwrap_or(&s.code),
                "status": s.status.as_str(),
            });
            if let (Some(m), Some(obj)) = (&s.status_message, item.as_object_mut()) {
                obj.insert("statusMessage".into(), json!(m));
            }
            item
        })
        .collect();
    Ok(json!({"scans": list}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_text_is_decoded_first() {
        assert_eq!(
            decode_barcode("YXNkYXNkIGpha2RzIGxha2RzYWE="),
            vec![
                "asdasd jakds lakdsaa".to_string(),
                "YXNkYXNkIGpha2RzIGxha2RzYWE=".to_string()
            ]
        );
    }

    #[test]
    fn gs1_code_with_group_separators_survives() {
        let code = "0104601234567890215abcDEF\u{1d}93ABCD";
        assert_eq!(decode_barcode(code), vec![code.to_string()]);
        // The same code sent as base64 of its bytes decodes back with GS intact.
        let b64 = base64::engine::general_purpose::STANDARD.encode(code);
        assert_eq!(decode_barcode(&b64)[0], code);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn binary_or_plain_codes_are_kept_as_sent() {
        // Valid base64 of non-text bytes.
        let bin = base64::engine::general_purpose::STANDARD.encode([0xff, 0x00, 0x81]);
        assert_eq!(decode_barcode(&bin), vec![bin.clone()]);
        // Not a multiple of 4.
        assert_eq!(decode_barcode("4601234567890"), vec!["4601234567890"]);
    }
}
