//! The callbacks IMSKLAD sends to the shop's endpoint: bodies and senders.

use super::*;

/// Rubles as the service sends them: a number (`-50`, `12.5`) or, as a
/// quirk, a string with two decimals (`"-50.00"`).
/// Amounts too large for an exact JSON number also go out as such strings.
pub fn amount_json(kop: i64, as_string: bool) -> Value {
    match crate::money::to_rubles(kop) {
        Some(n) if !as_string => Value::Number(n),
        _ => {
            let sign = if kop < 0 { "-" } else { "" };
            let abs = kop.unsigned_abs();
            Value::String(format!("{sign}{}.{:02}", abs / 100, abs % 100))
        }
    }
}

// ---------------------------------------------------------------------------
// Callbacks: IMSKLAD → shop endpoint
// ---------------------------------------------------------------------------

/// One entry of an `order/update_tracks` callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackUpdate {
    /// `{id, guid, track}`: the carrier's track number.
    Track {
        /// Partner order id.
        id: String,
        /// Partner GUID (null when none).
        guid: Option<String>,
        /// Track number.
        track: String,
    },
    /// `{id, guid, err}`: the order could not be handed to the carrier.
    Err {
        /// Partner order id.
        id: String,
        /// Partner GUID (null when none).
        guid: Option<String>,
        /// Error text.
        err: String,
    },
}

impl TrackUpdate {
    /// The JSON object of this entry.
    pub fn to_json(&self) -> Value {
        match self {
            TrackUpdate::Track { id, guid, track } => {
                json!({ "id": id, "guid": guid, "track": track })
            }
            TrackUpdate::Err { id, guid, err } => json!({ "id": id, "guid": guid, "err": err }),
        }
    }
}

/// The `data` of `order/set_status`.
pub fn set_status_data(
    id: &str,
    old_status: i64,
    new_status: i64,
    system_id: i64,
    guid: Option<&str>,
) -> Value {
    json!({
        "id": id,
        "old_status": old_status,
        "new_status": new_status,
        "system_id": system_id,
        "guid": guid,
    })
}

/// The `data` of the `order/update_order` callback: the order object with
/// the callback's spelling (`delivery_type_id`, `delivery_courier_id`) and
/// `guid` always present (null when none).
pub fn update_order_callback_data(order: &Order) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(order)?;
    if let Value::Object(map) = &mut v {
        if let Some(t) = map.remove("delivery_type") {
            map.insert("delivery_type_id".into(), t);
        }
        if let Some(c) = map.remove("courier") {
            map.insert("delivery_courier_id".into(), c);
        }
        map.entry("guid").or_insert(Value::Null);
    }
    Ok(v)
}

/// The `data` of `order/update_tracks`.
pub fn update_tracks_data(entries: &[TrackUpdate]) -> Value {
    Value::Array(entries.iter().map(TrackUpdate::to_json).collect())
}

/// The `data` of `good/get_good`: the WMS goods id to describe.
pub fn get_good_data(wms_id: i64) -> Value {
    json!({ "id": wms_id })
}

/// The full callback envelope.
pub fn callback_envelope(key: &str, kind: &str, action: &str, data: &Value) -> Value {
    json!({ "key": key, "type": kind, "action": action, "data": data })
}

/// POSTs a callback envelope to the shop's listener; answers `(status, body)`.
pub async fn send_callback(
    listener_url: &str,
    key: &str,
    kind: &str,
    action: &str,
    data: &serde_json::Value,
) -> Result<(u16, String), reqwest::Error> {
    let body = callback_envelope(key, kind, action, data).to_string();
    send_raw_callback(listener_url, &body).await
}

/// POSTs `body` verbatim (e.g. one of the doc's examples, trailing commas included).
pub async fn send_raw_callback(
    listener_url: &str,
    body: &str,
) -> Result<(u16, String), reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let response = client
        .post(listener_url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((status, text))
}
