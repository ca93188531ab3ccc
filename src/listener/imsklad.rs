//! `POST /imsklad`: IMSKLAD callbacks (the IMSKLAD API documentation, "Обработка вызовов складской системы").
//!
//! Envelope `{"key", "type", "action", "data"}`; `key` is compared in constant
//! time with the configured endpoint key.
//!
//! | type | action | effect | answer |
//! |---|---|---|---|
//! | order | update_order | journal; order state: goods, track, is_canceled; the order kept as the last full copy (a cancellation re-sends it) | `{"result":"ok","id":<data.id>}` |
//! | order | set_status | journal; order status (see [`crate::db::events`] for ordering), `system_id` as WMS id | `{"result":"ok"}` |
//! | order | update_tracks | journal; each `{id, track}` sets the track (`err` lines are only journaled) | `{"result":"ok"}` |
//! | order | set_pay | journal | `{"result":"ok"}` |
//! | order | send_to_cdek, send_to_boxberry, send_act_to_boxberry | journal (the orders report lists them as `carrier_export_requested`) | `{"error":…,"code":4}`: sverka exports nothing to carriers; `{"result":"ok"}` only with `[imsklad] carrier_export = "elsewhere"` |
//! | doc | add_doc, update_doc (need `data.id`), set_status | journal | `{"result":"ok"}` |
//! | good (or goods) | get_good | — | the goods object: `id` (as sent), `name`, `description`, `price`, `cost` (roubles), and what the shop has of `image`, `weight` (g), `width`, `height`, `length` (mm), `color`, `size`; the id is looked up as a WMS goods id in the mapping first, then as a shop SKU |
//! | good | get_good_suppliers | — | array of supplier objects (empty when the product has none) |
//! | supplier | get_supplier | — | supplier object `{id, name, inn, phone, email, address}` |
//! | supplier | get_suppliers | — | array of supplier objects |
//!
//! Errors are `{"error": text, "code": N}` with HTTP 200 like IMSKLAD's own:
//! code 3 for a wrong key, malformed JSON, unknown type/action and missing
//! fields; code 2 for an unknown product or supplier; code 1 (HTTP 503) when
//! sverka's or the shop's database fails, so IMSKLAD retries. An oversized body
//! gets HTTP 413 with code 3.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::{answer, journal, parse_json, read_body, ListenerError, ListenerState, Meta};
use crate::db::events::{Effect, Entity, OrderUpdate, StatusChange, SOURCE_IMSKLAD};
use crate::lenient::{value_to_i64, value_to_id};
use crate::shop::{Product, Supplier};

/// IMSKLAD error code: fatal server error (retry later).
pub const CODE_FATAL: i64 = 1;
/// IMSKLAD error code: object not found.
pub const CODE_NOT_FOUND: i64 = 2;
/// IMSKLAD error code: bad request data.
pub const CODE_BAD_DATA: i64 = 3;
/// IMSKLAD error code: operation not performed.
pub const CODE_NOT_PERFORMED: i64 = 4;

/// Handles one IMSKLAD callback.
pub async fn handle(State(state): State<ListenerState>, body: Body) -> Response {
    let mut method = String::from("?");
    match process(&state, body, &mut method).await {
        Ok(value) => answer(StatusCode::OK, value),
        Err(err) => {
            err.warn(SOURCE_IMSKLAD, &method);
            error_answer(&err)
        }
    }
}

/// Renders an error in IMSKLAD's shape.
pub fn error_answer(err: &ListenerError) -> Response {
    let (status, code, message) = match err {
        ListenerError::TooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            CODE_BAD_DATA,
            err.to_string(),
        ),
        ListenerError::Unauthorized | ListenerError::Closed => {
            (StatusCode::OK, CODE_BAD_DATA, "Incorrect key".to_string())
        }
        ListenerError::NotFound(m) => (StatusCode::OK, CODE_NOT_FOUND, m.clone()),
        ListenerError::Db(_) | ListenerError::Shop(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            CODE_FATAL,
            "Temporary failure, retry later".to_string(),
        ),
        ListenerError::Malformed(_)
        | ListenerError::UnknownMethod(_)
        | ListenerError::Field(_)
        | ListenerError::Invalid { .. }
        | ListenerError::TooLong { .. } => (StatusCode::OK, CODE_BAD_DATA, err.to_string()),
    };
    answer(status, json!({"error": message, "code": code}))
}

async fn process(
    state: &ListenerState,
    body: Body,
    method: &mut String,
) -> Result<Value, ListenerError> {
    let bytes = read_body(body, &state.settings).await?;
    let envelope = parse_json(&bytes)?;
    let key = envelope
        .get("key")
        .and_then(value_to_id)
        .unwrap_or_default();
    if !state.settings.imsklad_callback_key.matches(&key) {
        return Err(ListenerError::Unauthorized);
    }
    let outcome = dispatch(state, &envelope, method).await;
    if let Err(err) = &outcome {
        if err.is_journaled_rejection() {
            super::journal_rejected(
                &state.state_db,
                SOURCE_IMSKLAD,
                method,
                Ok(&envelope),
                super::IMSKLAD_SECRETS,
                &[],
                err,
            )
            .await;
        }
    }
    outcome
}

async fn dispatch(
    state: &ListenerState,
    envelope: &Value,
    method: &mut String,
) -> Result<Value, ListenerError> {
    let mut kind = str_field(envelope, "type")?;
    let action = str_field(envelope, "action")?;
    if kind == "goods" {
        // The client API says `goods`, the callback table `good`: take both.
        kind = "good".into();
    }
    *method = format!("{kind}.{action}");
    let cb = Callback {
        state,
        envelope,
        method: method.clone(),
        data: envelope.get("data").cloned().unwrap_or(Value::Null),
    };
    let data = &cb.data;
    match (kind.as_str(), action.as_str()) {
        ("order", "update_order") => cb.update_order().await,
        ("order", "set_status") => {
            cb.notify(vec![Effect::Order(set_status(data)?)], Meta::default())
                .await?;
            Ok(ok())
        }
        ("order", "update_tracks") => {
            let (effects, rejected) = update_tracks(data)?;
            let meta = Meta {
                rejected,
                ..Meta::default()
            };
            cb.notify(effects, meta).await?;
            Ok(ok())
        }
        ("order", "send_to_cdek" | "send_to_boxberry" | "send_act_to_boxberry") => {
            cb.carrier_export().await
        }
        ("order", "set_pay") | ("doc", "set_status") => {
            cb.notify(Vec::new(), cb.subject()).await?;
            Ok(ok())
        }
        ("doc", "add_doc" | "update_doc") => {
            required_id(data, "id")?;
            cb.notify(Vec::new(), cb.subject()).await?;
            Ok(ok())
        }
        ("good", "get_good") => get_good(state, data).await,
        ("good", "get_good_suppliers") => get_good_suppliers(state, data).await,
        ("supplier", "get_supplier") => get_supplier(state, data).await,
        ("supplier", "get_suppliers") => get_suppliers(state).await,
        _ => Err(ListenerError::UnknownMethod(method.clone())),
    }
}

/// One IMSKLAD callback being dispatched: where it is journaled, its
/// envelope, its `type.action` and its `data`.
struct Callback<'a> {
    state: &'a ListenerState,
    envelope: &'a Value,
    method: String,
    data: Value,
}

impl Callback<'_> {
    /// Journals the callback with its effects.
    async fn notify(
        &self,
        effects: Vec<Effect>,
        meta: Meta,
    ) -> Result<crate::db::events::Recorded, ListenerError> {
        journal(
            &self.state.state_db,
            SOURCE_IMSKLAD,
            &self.method,
            self.envelope,
            super::IMSKLAD_SECRETS,
            &effects,
            meta,
        )
        .await
    }

    /// The journal's subject: the `data.id` the callback is about, if any.
    fn subject(&self) -> Meta {
        Meta {
            event_at: None,
            subjects: opt_text(&self.data, "id")
                .map(|id| Entity::Other {
                    kind: self.method.clone(),
                    id,
                })
                .into_iter()
                .collect(),
            rejected: Vec::new(),
        }
    }

    /// `order.update_order`: the order's new state, and its last full copy
    /// kept for a later cancellation.
    async fn update_order(&self) -> Result<Value, ListenerError> {
        let data = &self.data;
        let id = order_id(data, "id")?;
        self.notify(
            vec![Effect::Order(update_order(data, &id)?)],
            Meta::default(),
        )
        .await?;
        crate::db::protocol::put_order_document(
            &self.state.state_db,
            &id,
            crate::db::protocol::origin::RECEIVED,
            &data.to_string(),
        )
        .await?;
        Ok(json!({"result": "ok", "id": data.get("id").cloned().unwrap_or(Value::Null)}))
    }

    /// The carrier exports: journaled, answered `ok` only when another system does them.
    async fn carrier_export(&self) -> Result<Value, ListenerError> {
        self.notify(Vec::new(), self.subject()).await?;
        if self.state.settings.imsklad_carrier_export_elsewhere {
            Ok(ok())
        } else {
            // Not done here: saying "ok" would tell IMSKLAD the parcels
            // are registered with the carrier.
            Ok(json!({
                "error": "Carrier export is not performed by this endpoint (sverka); the request is reported to the shop",
                "code": CODE_NOT_PERFORMED,
            }))
        }
    }
}

fn ok() -> Value {
    json!({"result": "ok"})
}

fn str_field(v: &Value, name: &str) -> Result<String, ListenerError> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ListenerError::Field(name.to_string()))
}

fn required_id(data: &Value, name: &str) -> Result<String, ListenerError> {
    data.get(name)
        .and_then(value_to_id)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ListenerError::Field(format!("data.{name}")))
}

/// The order id in `data[name]`, no longer than its column.
fn order_id(data: &Value, name: &str) -> Result<String, ListenerError> {
    super::within(
        &format!("data.{name}"),
        required_id(data, name)?,
        super::MAX_ID_CHARS,
    )
}

fn opt_text(data: &Value, name: &str) -> Option<String> {
    data.get(name)
        .and_then(value_to_id)
        .filter(|s| !s.is_empty())
}

/// `data[name]` as text no longer than `limit` characters, when present.
fn opt_within(data: &Value, name: &str, limit: usize) -> Result<Option<String>, ListenerError> {
    opt_text(data, name)
        .map(|v| super::within(&format!("data.{name}"), v, limit))
        .transpose()
}

/// The order state an `update_order` callback implies.
pub fn update_order(data: &Value, id: &str) -> Result<OrderUpdate, ListenerError> {
    Ok(OrderUpdate {
        order_id: id.to_string(),
        source: SOURCE_IMSKLAD.to_string(),
        track: opt_within(data, "track", super::MAX_ID_CHARS)?,
        goods: data
            .get("goods")
            .filter(|g| !g.is_null())
            .map(super::canonical_json),
        is_canceled: data
            .get("is_canceled")
            .and_then(value_to_i64)
            .map(|v| v != 0),
        ..OrderUpdate::default()
    })
}

/// The order state a `set_status` callback implies.
///
/// `new_status` must be an integer in 0..=999 (else the callback is rejected
/// and changes nothing); an `old_status` outside that range is ignored.
pub fn set_status(data: &Value) -> Result<OrderUpdate, ListenerError> {
    let id = order_id(data, "id")?;
    let status = super::status_field(data, "new_status", "data.new_status")?;
    Ok(OrderUpdate {
        order_id: id,
        source: SOURCE_IMSKLAD.to_string(),
        wms_order_id: opt_within(data, "system_id", super::MAX_WMS_ID_CHARS)?,
        status: Some(StatusChange {
            status,
            old_status: data
                .get("old_status")
                .and_then(|v| super::int_in(v, super::STATUS_RANGE)),
            event_at: None,
        }),
        ..OrderUpdate::default()
    })
}

/// A list callback's valid effects and its rejected lines (line, reason).
pub type Lines = (Vec<Effect>, Vec<(Value, String)>);

/// The track updates of an `update_tracks` callback (lines with `err` carry
/// none). A line without an id, or with an id or track longer than its
/// column, is rejected on its own; the other lines are applied.
pub fn update_tracks(data: &Value) -> Result<Lines, ListenerError> {
    let lines: Vec<&Value> = match data {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map.values().collect(),
        _ => return Err(ListenerError::Field("data (a list of tracks)".into())),
    };
    let mut effects = Vec::new();
    let mut rejected = Vec::new();
    for line in lines {
        let parsed = order_id(line, "id")
            .and_then(|id| Ok((id, opt_within(line, "track", super::MAX_ID_CHARS)?)));
        match parsed {
            Ok((id, Some(track))) => effects.push(Effect::Order(OrderUpdate {
                order_id: id,
                source: SOURCE_IMSKLAD.to_string(),
                track: Some(track),
                ..OrderUpdate::default()
            })),
            Ok((_, None)) => {}
            Err(e) => rejected.push((line.clone(), e.to_string())),
        }
    }
    Ok((effects, rejected))
}

/// Kopecks as roubles: an integer when whole, else a decimal number.
pub fn roubles(kop: i64) -> Value {
    if kop % 100 == 0 {
        json!(kop / 100)
    } else {
        json!(kop as f64 / 100.0)
    }
}

/// The goods object of `get_good` for `product`, echoing the requested id:
/// every documented goods field the shop has.
pub fn good_object(requested_id: &Value, product: &Product) -> Value {
    let mut good = serde_json::to_value(product.to_imsklad_good()).unwrap_or_else(|_| json!({}));
    if let Some(obj) = good.as_object_mut() {
        obj.insert("id".into(), requested_id.clone());
        obj.entry("description").or_insert(json!(""));
        obj.insert("price".into(), roubles(product.price_kop));
        obj.insert("cost".into(), roubles(product.cost_kop));
    }
    good
}

/// The shop SKU a `get_good` id names: the WMS goods id in the mapping wins
/// (the IMSKLAD API documentation's example id is the one `add_good` returned), else the id is the
/// SKU itself. An id that is both a mapped WMS id and another product's SKU is
/// logged.
async fn sku_of_good_id(state: &ListenerState, id: &str) -> Result<String, ListenerError> {
    let partners =
        crate::db::mapping::partners_of(&state.state_db, crate::db::mapping::MapKind::Good, id)
            .await?;
    match partners.first() {
        Some(sku) => {
            if partners.len() > 1 {
                tracing::warn!(
                    wms_id = id,
                    skus = ?partners,
                    "get_good: several SKUs map to this WMS goods id; answering the first"
                );
            }
            if sku != id && state.shop.product(id).await?.is_some() {
                tracing::warn!(
                    id,
                    sku = %sku,
                    "get_good: the id is a mapped WMS goods id and also a shop SKU; the WMS id wins"
                );
            }
            Ok(sku.clone())
        }
        None => Ok(id.to_owned()),
    }
}

/// The supplier object of `get_supplier`.
pub fn supplier_object(s: &Supplier) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "inn": s.inn,
        "phone": s.phone,
        "email": s.email,
        "address": s.address,
    })
}

/// The shop product behind the callback's good `id` (`Good not found` else).
async fn product_of_good(
    state: &ListenerState,
    data: &Value,
) -> Result<crate::shop::Product, ListenerError> {
    let id = required_id(data, "id")?;
    let sku = sku_of_good_id(state, &id).await?;
    state
        .shop
        .product(&sku)
        .await?
        .ok_or_else(|| ListenerError::NotFound("Good not found".into()))
}

async fn get_good(state: &ListenerState, data: &Value) -> Result<Value, ListenerError> {
    let product = product_of_good(state, data).await?;
    Ok(good_object(
        data.get("id").unwrap_or(&Value::Null),
        &product,
    ))
}

async fn get_good_suppliers(state: &ListenerState, data: &Value) -> Result<Value, ListenerError> {
    let product = product_of_good(state, data).await?;
    let mut out = Vec::new();
    if let Some(id) = product.supplier_id.filter(|s| !s.is_empty()) {
        if let Some(supplier) = state.shop.supplier(&id).await? {
            out.push(supplier_object(&supplier));
        }
    }
    Ok(Value::Array(out))
}

async fn get_supplier(state: &ListenerState, data: &Value) -> Result<Value, ListenerError> {
    let id = required_id(data, "id")?;
    state
        .shop
        .supplier(&id)
        .await?
        .map(|s| supplier_object(&s))
        .ok_or_else(|| ListenerError::NotFound("Supplier not found".into()))
}

async fn get_suppliers(state: &ListenerState) -> Result<Value, ListenerError> {
    let suppliers = state.shop.suppliers().await?;
    if suppliers.is_empty() {
        return Err(ListenerError::NotFound("No suppliers".into()));
    }
    Ok(Value::Array(
        suppliers.iter().map(supplier_object).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roubles_are_whole_or_decimal() {
        assert_eq!(roubles(10000), json!(100));
        assert_eq!(roubles(12345), json!(123.45));
    }

    #[test]
    fn set_status_accepts_ids_as_numbers_and_strings() {
        let u = set_status(&json!({"id": 42, "new_status": "3", "old_status": 2, "system_id": 7}))
            .unwrap();
        assert_eq!(u.order_id, "42");
        assert_eq!(u.wms_order_id.as_deref(), Some("7"));
        assert_eq!(u.status.unwrap().status, 3);
        assert!(matches!(
            set_status(&json!({"id": "A"})),
            Err(ListenerError::Field(_))
        ));
        for bad in [
            json!(1e20),
            json!(-1),
            json!(1000),
            json!(2.5),
            json!("x"),
            json!("1e20"),
        ] {
            assert!(
                matches!(
                    set_status(&json!({"id": "A", "new_status": bad})),
                    Err(ListenerError::Invalid { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            set_status(&json!({"id": "A", "new_status": 99.0}))
                .unwrap()
                .status
                .unwrap()
                .status,
            99
        );
        let long = "x".repeat(256);
        assert!(matches!(
            set_status(&json!({"id": long, "new_status": 1})),
            Err(ListenerError::TooLong { limit: 255, .. })
        ));
    }

    #[test]
    fn update_tracks_takes_php_maps_and_skips_errors() {
        let (effects, rejected) = update_tracks(&json!({
            "0": {"id": "A", "track": "T"},
            "1": {"id": "B", "err": "Incorrect pvz"}
        }))
        .unwrap();
        assert_eq!((effects.len(), rejected.len()), (1, 0));
        assert!(update_tracks(&json!("x")).is_err());
        // A bad line is rejected alone; the good ones stay.
        let (effects, rejected) = update_tracks(&json!([
            {"track": "T"},
            {"id": "C", "track": "T2"},
            {"id": "D", "track": "x".repeat(300)}
        ]))
        .unwrap();
        assert_eq!((effects.len(), rejected.len()), (1, 2));
        assert!(rejected[0].1.contains("data.id"), "{}", rejected[0].1);
        assert!(
            rejected[1].1.contains("longer than 255"),
            "{}",
            rejected[1].1
        );
    }
}
