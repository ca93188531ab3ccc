//! `GET|POST /egon`: EGON callbacks (EGON's callback documentation).
//!
//! The envelope `{"auth":{"auth_id","auth_key"},"request":{"req_method","req_data"}}`
//! is read from, in this order: the form field `req` of a POST body
//! (`application/x-www-form-urlencoded`, or `multipart/form-data` as PHP's
//! cURL posts an array; UNVERIFIED which one EGON sends), a raw JSON POST
//! body, or the `req` query parameter. A `req` value that is not JSON as it
//! stands is HTML-entity-decoded (`&quot;` …) and parsed again.
//!
//! | req_method | effect | answer `response` |
//! |---|---|---|
//! | WriteOrderStatus | journal; order state: `status_id`, `order_id` as WMS id, first `packages[].package_nr` as track, `order_items` as goods; `change_timestamp` orders the statuses | `{"resp_status":1}` |
//! | InventoryStatusUpdate | journal; one stock snapshot per card (SKU = `ITEM_ID`, else the map key) | `{"resp_status":1}` |
//! | ShipmentNotifyConfirm, MyOrderClaimUpdate | journal | `{"resp_status":1}` |
//! | UpdatePackageTracking, OrderReturnLabelTracking (deprecated, removed from the docs) | journal | `{"resp_status":1}` |
//! | GetInvoiceUrl | — sverka issues no invoices | `{"resp_status":0,"resp_message":…}` |
//! | GetShippingLabel | — sverka prints no labels | `{"resp_status":0,"resp_message":…}` |
//!
//! Answers are HTTP 200 with `auth_status` 1 when the `auth_id`/`auth_key`
//! pair is right and 0 otherwise (also when the request cannot be parsed);
//! unknown methods and missing fields give `resp_status` 0 with a
//! `resp_message`. A failing state database gives HTTP 503 (EGON retries);
//! an oversized body HTTP 413.
//!
//! `change_timestamp` (`Y-m-d H:i:s`) is read in `[egon] timezone` (default
//! [`EGON_TZ`], iSklad being Slovak; UNVERIFIED).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{NaiveDateTime, TimeZone};
use serde_json::{json, Value};

use super::{answer, journal, read_body, ListenerError, ListenerState, Meta};
use crate::connectors::egon::EGON_TZ;
use crate::db::events::{Effect, OrderUpdate, StatusChange, StockSnapshot, SOURCE_EGON};
use crate::db::now_ms;
use crate::lenient::value_to_id;

/// Handles a GET callback (`?req=`).
pub async fn handle_get(State(state): State<ListenerState>, RawQuery(query): RawQuery) -> Response {
    let envelope = query
        .as_deref()
        .and_then(|q| form_field(q.as_bytes(), "req"))
        .ok_or_else(|| ListenerError::Field("req".into()))
        .and_then(|req| parse_req(&req));
    respond(&state, envelope).await
}

/// Handles a POST callback (form field `req`, raw JSON, or `?req=`).
pub async fn handle_post(
    State(state): State<ListenerState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let envelope = match read_body(body, &state.settings).await {
        Ok(bytes) => envelope_from(&headers, &bytes, query.as_deref()),
        Err(e) => Err(e),
    };
    respond(&state, envelope).await
}

/// Finds and parses the envelope of a POST.
pub fn envelope_from(
    headers: &HeaderMap,
    body: &[u8],
    query: Option<&str>,
) -> Result<Value, ListenerError> {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
        || body.starts_with(b"req=");
    if is_form {
        if let Some(req) = form_field(body, "req") {
            return parse_req(&req);
        }
    }
    if let Some(boundary) = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multipart_boundary)
    {
        return match multipart_field(body, &boundary, "req") {
            Some(req) => parse_req(&String::from_utf8_lossy(&req)),
            None => Err(ListenerError::Field("req".into())),
        };
    }
    let trimmed = body.trim_ascii();
    if !trimmed.is_empty() {
        return parse_req(&String::from_utf8_lossy(trimmed));
    }
    match query.and_then(|q| form_field(q.as_bytes(), "req")) {
        Some(req) => parse_req(&req),
        None => Err(ListenerError::Field("req".into())),
    }
}

/// The boundary of a `multipart/form-data` content type.
pub fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|b| !b.is_empty())
}

/// The value of the form field `name` in a `multipart/form-data` body.
pub fn multipart_field(body: &[u8], boundary: &str, name: &str) -> Option<Vec<u8>> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = body;
    while let Some(at) = find(rest, delimiter) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            return None;
        }
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest[..head_end]);
        let content = &rest[head_end + 4..];
        let end = find(content, delimiter).unwrap_or(content.len());
        let value = content[..end]
            .strip_suffix(b"\r\n")
            .unwrap_or(&content[..end]);
        let named = head.lines().any(|line| {
            let l = line.to_ascii_lowercase();
            l.starts_with("content-disposition:")
                && (l.contains(&format!("name=\"{name}\""))
                    || l.contains(&format!("name={name};"))
                    || l.ends_with(&format!("name={name}")))
        });
        if named {
            return Some(value.to_vec());
        }
        rest = &content[end..];
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn form_field(encoded: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(encoded)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Parses the `req` JSON, HTML-entity-decoding it when it does not parse as is.
pub fn parse_req(req: &str) -> Result<Value, ListenerError> {
    match crate::lenient::from_str::<Value>(req) {
        Ok(v) => Ok(v),
        Err(first) => {
            let decoded = html_escape::decode_html_entities(req);
            crate::lenient::from_str::<Value>(&decoded)
                .map_err(|_| ListenerError::Malformed(first.to_string()))
        }
    }
}

fn envelope_answer(auth_status: i64, response: Value) -> Response {
    answer(
        StatusCode::OK,
        json!({"auth_status": auth_status, "response": response}),
    )
}

fn refused(message: &str) -> Value {
    json!({"resp_status": 0, "resp_message": message})
}

async fn respond(state: &ListenerState, envelope: Result<Value, ListenerError>) -> Response {
    let envelope = match envelope {
        Ok(v) => v,
        Err(err) => {
            err.warn(SOURCE_EGON, "?");
            return match err {
                ListenerError::TooLarge { .. } => answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    json!({"auth_status": 0, "response": refused(&err.to_string())}),
                ),
                _ => envelope_answer(0, refused(&err.to_string())),
            };
        }
    };
    if !authorized(state, &envelope) {
        ListenerError::Unauthorized.warn(SOURCE_EGON, "?");
        return envelope_answer(0, refused("Unauthorized"));
    }
    let method = envelope
        .pointer("/request/req_method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match process(state, &envelope, &method).await {
        Ok(response) => envelope_answer(1, response),
        Err(err) => {
            err.warn(SOURCE_EGON, &method);
            if err.is_journaled_rejection() {
                super::journal_rejected(
                    &state.state_db,
                    SOURCE_EGON,
                    if method.is_empty() { "?" } else { &method },
                    Ok(&envelope),
                    super::EGON_SECRETS,
                    &[],
                    &err,
                )
                .await;
            }
            if err.is_temporary() {
                answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"auth_status": 1, "response": refused("Temporary failure, retry later")}),
                )
            } else {
                envelope_answer(1, refused(&err.to_string()))
            }
        }
    }
}

fn authorized(state: &ListenerState, envelope: &Value) -> bool {
    let id = envelope.pointer("/auth/auth_id").and_then(value_to_id);
    let key = envelope.pointer("/auth/auth_key").and_then(value_to_id);
    let settings = &state.settings;
    match (id, key) {
        (Some(id), Some(key)) => {
            // Both comparisons always run.
            let id_ok = crate::secret::Secret::new(settings.egon_auth_id.clone()).matches(&id);
            let key_ok = settings.egon_auth_key.matches(&key);
            id_ok & key_ok
        }
        _ => false,
    }
}

async fn process(
    state: &ListenerState,
    envelope: &Value,
    method: &str,
) -> Result<Value, ListenerError> {
    let data = envelope
        .pointer("/request/req_data")
        .cloned()
        .unwrap_or(Value::Null);
    let mut meta = Meta::default();
    let effects = match method {
        "WriteOrderStatus" => {
            let update = write_order_status_in(&data, state.settings.egon_tz)?;
            meta.event_at = update.status.as_ref().and_then(|s| s.event_at);
            vec![Effect::Order(update)]
        }
        "InventoryStatusUpdate" => {
            let (snapshots, rejected) = inventory_status_update(&data, now_ms())?;
            meta.rejected = rejected;
            snapshots.into_iter().map(Effect::Stock).collect()
        }
        "ShipmentNotifyConfirm" | "MyOrderClaimUpdate" => Vec::new(),
        // Deprecated (removed from the docs in ea83afb); older set-ups may
        // still send them: journaled, not refused.
        "UpdatePackageTracking" | "OrderReturnLabelTracking" => Vec::new(),
        "GetInvoiceUrl" => return Ok(refused("sverka issues no invoices")),
        "GetShippingLabel" => return Ok(refused("sverka prints no shipping labels")),
        "" => return Err(ListenerError::Field("request.req_method".into())),
        other => return Err(ListenerError::UnknownMethod(other.to_string())),
    };
    journal(
        &state.state_db,
        SOURCE_EGON,
        method,
        envelope,
        super::EGON_SECRETS,
        &effects,
        meta,
    )
    .await?;
    Ok(json!({"resp_status": 1}))
}

/// Parses `Y-m-d H:i:s` in [`EGON_TZ`] to Unix ms.
pub fn parse_change_timestamp(s: &str) -> Option<i64> {
    parse_change_timestamp_in(s, EGON_TZ)
}

/// Parses `Y-m-d H:i:s` in `tz` to Unix ms.
pub fn parse_change_timestamp_in(s: &str, tz: chrono_tz::Tz) -> Option<i64> {
    let naive = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
}

fn items(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Object(map)) => map.values().collect(),
        _ => Vec::new(),
    }
}

/// The order state a `WriteOrderStatus` callback implies ([`EGON_TZ`]).
///
/// `status_id` must be an integer in 0..=999; ids and the track must fit
/// their columns (else the callback is rejected and changes nothing).
pub fn write_order_status(data: &Value) -> Result<OrderUpdate, ListenerError> {
    write_order_status_in(data, EGON_TZ)
}

/// The order state a `WriteOrderStatus` callback implies, `change_timestamp` read in `tz`.
pub fn write_order_status_in(
    data: &Value,
    tz: chrono_tz::Tz,
) -> Result<OrderUpdate, ListenerError> {
    let order_id = data
        .get("order_original_id")
        .and_then(value_to_id)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ListenerError::Field("req_data.order_original_id".into()))?;
    let order_id = super::within("req_data.order_original_id", order_id, super::MAX_ID_CHARS)?;
    let status = super::status_field(data, "status_id", "req_data.status_id")?;
    let track = items(data.get("packages"))
        .into_iter()
        .filter_map(|p| p.get("package_nr").and_then(value_to_id))
        .find(|t| !t.is_empty())
        .map(|t| super::within("req_data.packages[].package_nr", t, super::MAX_ID_CHARS))
        .transpose()?;
    let wms_order_id = data
        .get("order_id")
        .and_then(value_to_id)
        .map(|t| super::within("req_data.order_id", t, super::MAX_WMS_ID_CHARS))
        .transpose()?;
    Ok(OrderUpdate {
        order_id,
        source: SOURCE_EGON.to_string(),
        wms_order_id,
        status: Some(StatusChange {
            status,
            old_status: None,
            event_at: data
                .get("change_timestamp")
                .and_then(Value::as_str)
                .and_then(|t| parse_change_timestamp_in(t, tz)),
        }),
        track,
        goods: data
            .get("order_items")
            .filter(|g| !g.is_null())
            .map(super::canonical_json),
        is_canceled: None,
    })
}

/// The snapshots of a stock callback's valid cards, and its rejected cards
/// (the card, the reason).
pub type Cards = (Vec<StockSnapshot>, Vec<(Value, String)>);

/// One card's snapshot, or why it cannot be read.
fn card_snapshot(key: Option<String>, card: &Value, now: i64) -> Result<StockSnapshot, String> {
    let sku = card
        .get("ITEM_ID")
        .and_then(value_to_id)
        .filter(|s| !s.is_empty())
        .or(key)
        .ok_or_else(|| "missing `ITEM_ID`".to_string())?;
    if sku.chars().count() > super::MAX_ID_CHARS {
        return Err(format!(
            "`ITEM_ID` is longer than {} characters",
            super::MAX_ID_CHARS
        ));
    }
    let figures =
        crate::connectors::egon::card_figures(card).map_err(|why| format!("`{sku}`: {why}"))?;
    Ok(StockSnapshot {
        sku,
        wms_stock: figures.stock,
        wms_reserved: figures.reserved,
        sellable: figures.sellable,
        source: SOURCE_EGON.to_string(),
        taken_at: now,
    })
}

/// The stock snapshots of an `InventoryStatusUpdate` callback, taken at `now` (Unix ms).
///
/// Sellable = ALL − EXPIRED − EXPIRATION_BLOCKED − DAMAGED − ORDERED − RESERVED
/// (never negative); reserved = ORDERED + RESERVED. Cards without a readable
/// `COUNT_TYPES` fall back to the deprecated `COUNT` (sellable = COUNT − ORDERED,
/// see [`crate::connectors::egon::card_figures`]).
///
/// A card without an id or without readable counters is rejected on its own
/// (returned with the reason); the other cards are applied.
pub fn inventory_status_update(data: &Value, now: i64) -> Result<Cards, ListenerError> {
    let cards: Vec<(Option<String>, &Value)> = match data {
        Value::Object(map) => map.iter().map(|(k, v)| (Some(k.clone()), v)).collect(),
        Value::Array(items) => items.iter().map(|v| (None, v)).collect(),
        _ => return Err(ListenerError::Field("req_data (a map of cards)".into())),
    };
    let mut out = Vec::with_capacity(cards.len());
    let mut rejected = Vec::new();
    for (key, card) in cards {
        match card_snapshot(key.clone(), card, now) {
            Ok(snapshot) => out.push(snapshot),
            Err(why) => {
                let line = match key {
                    Some(k) => json!({ k: card }),
                    None => card.clone(),
                };
                rejected.push((line, why));
            }
        }
    }
    Ok((out, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaped_req_is_decoded() {
        let v = parse_req("{&quot;a&quot;:1,}").unwrap();
        assert_eq!(v, json!({"a": 1}));
        assert!(parse_req("nope").is_err());
    }

    #[test]
    fn envelope_from_form_raw_or_query() {
        let mut form = HeaderMap::new();
        form.insert(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let body = b"req=%7B%22a%22%3A1%7D";
        assert_eq!(envelope_from(&form, body, None).unwrap(), json!({"a": 1}));
        assert_eq!(
            envelope_from(&HeaderMap::new(), br#"{"a":2}"#, None).unwrap(),
            json!({"a": 2})
        );
        assert_eq!(
            envelope_from(&HeaderMap::new(), b"", Some("req=%7B%22a%22%3A3%7D")).unwrap(),
            json!({"a": 3})
        );
    }

    #[test]
    fn sellable_subtracts_blocked_and_reserved_never_negative() {
        let data = json!({
            "SKU-1": {"ITEM_ID": 501, "COUNT_TYPES": {"ALL": 10, "EXPIRED": 1, "DAMAGED": "1",
                      "ORDERED": 2, "RESERVED": 1, "EXPIRATION_BLOCKED": 0}},
            "SKU-2": {"COUNT_TYPES": {"ALL": 1, "ORDERED": 5, "RESERVED": 0, "EXPIRED": 0,
                      "DAMAGED": 0, "EXPIRATION_BLOCKED": 0}},
            "SKU-3": {"COUNT": 4, "RESERVED_FOR_ORDERS": 1, "ORDERED": 2},
            "SKU-4": {"COUNT_TYPES": {"ALL": 9}, "COUNT": 6}
        });
        let (s, rejected) = inventory_status_update(&data, 7).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(
            (s[0].sku.as_str(), s[0].sellable, s[0].wms_reserved),
            ("501", 5, 3)
        );
        assert_eq!((s[1].sku.as_str(), s[1].sellable), ("SKU-2", 0));
        // COUNT already excludes reserved: sellable = COUNT − ORDERED.
        assert_eq!(
            (s[2].wms_stock, s[2].wms_reserved, s[2].sellable),
            (5, 3, 2)
        );
        // Incomplete COUNT_TYPES: the deprecated COUNT is used, not zeros.
        assert_eq!((s[3].sku.as_str(), s[3].sellable), ("SKU-4", 6));
        // Unreadable cards are rejected one by one; the readable one is applied.
        let (ok, rejected) = inventory_status_update(
            &json!({"X": {}, "Y": {"COUNT_TYPES": {"ALL": 3}}, "Z": {"COUNT": 2}}),
            7,
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].sku, "Z");
        assert_eq!(rejected.len(), 2);
        assert!(rejected.iter().all(|(_, why)| why.contains("COUNT")));
        assert!(inventory_status_update(&json!("x"), 7).is_err());
    }

    #[test]
    fn change_timestamp_is_local_bratislava_time() {
        let boundary = "XyZ";
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"req\"\r\n\r\n{\"a\":1}\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"XyZ\""),
            Some(boundary.to_string())
        );
        assert_eq!(multipart_boundary("application/json"), None);
        assert_eq!(
            multipart_field(body, boundary, "req").as_deref(),
            Some(&b"{\"a\":1}"[..])
        );
        assert_eq!(multipart_field(body, boundary, "nope"), None);
        // The time zone is a setting: the same wall time in Moscow is an hour or two earlier.
        let msk =
            parse_change_timestamp_in("2024-01-15 12:00:00", chrono_tz::Europe::Moscow).unwrap();
        let bts = parse_change_timestamp("2024-01-15 12:00:00").unwrap();
        assert_eq!(bts - msk, 2 * 3_600_000);
    }

    #[test]
    fn change_timestamp_defaults_to_bratislava_time() {
        let ms = parse_change_timestamp("2024-01-15 12:00:00").unwrap();
        assert_eq!(ms, 1_705_316_400_000);
        assert!(parse_change_timestamp("15.01.2024").is_none());
    }
}
