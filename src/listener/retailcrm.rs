//! `GET|POST /retailcrm/inventories`: RetailCRM's `inventoriesUpload` callback.
//!
//! The account is identified by `clientId`, taken from the form body or the
//! query string and compared in constant time with the configured module
//! `clientId` (none configured: closed). The answer lists every SKU of the
//! latest stock snapshot: `{"success":true,"offers":[{"externalId"|"xmlId": sku,
//! "stores":[{"code": store, "available": sellable, "purchasePrice": cost}]}]}`;
//! `available` is always present, 0 included; `purchasePrice` (decimal roubles)
//! where the CRM is known to hold the shop's cost for the offer
//! ([`crate::db::known_stock::costs`]). Errors use RetailCRM's shape `{"success":false,"errorMsg":…}`
//! (403 wrong or missing `clientId`, 413 oversized body, 503 database failure).
//! The callback is a query and is not journaled.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::{answer, read_body, ListenerError, ListenerSettings, ListenerState};
use crate::db::events::{self, StockSnapshot};

/// Handles the callback (GET or POST).
pub async fn inventories(
    State(state): State<ListenerState>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    match process(&state, query.as_deref(), body).await {
        Ok(v) => answer(StatusCode::OK, v),
        Err(err) => {
            err.warn("retailcrm", "inventoriesUpload");
            let (status, message) = match &err {
                ListenerError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, err.to_string()),
                ListenerError::Db(_) | ListenerError::Shop(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporary failure, retry later".to_string(),
                ),
                _ => (
                    StatusCode::FORBIDDEN,
                    "Wrong \"clientId\" value.".to_string(),
                ),
            };
            answer(status, json!({"success": false, "errorMsg": message}))
        }
    }
}

fn field(encoded: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(encoded)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

async fn process(
    state: &ListenerState,
    query: Option<&str>,
    body: Body,
) -> Result<Value, ListenerError> {
    let bytes = read_body(body, &state.settings).await?;
    let client_id = field(&bytes, "clientId")
        .or_else(|| query.and_then(|q| field(q.as_bytes(), "clientId")))
        .ok_or(ListenerError::Unauthorized)?;
    if !state.settings.retailcrm_client_id.matches(&client_id) {
        return Err(ListenerError::Unauthorized);
    }
    let snapshot = events::stock_snapshot(&state.state_db).await?;
    let costs = crate::db::known_stock::costs(&state.state_db).await?;
    Ok(offers_answer(&state.settings, &snapshot, &costs))
}

/// The callback's answer for a stock snapshot.
pub fn offers_answer(
    settings: &ListenerSettings,
    snapshot: &[StockSnapshot],
    costs: &std::collections::HashMap<String, i64>,
) -> Value {
    let key = if settings.crm_offer_key_is_xml_id {
        "xmlId"
    } else {
        "externalId"
    };
    let offers: Vec<Value> = snapshot
        .iter()
        .map(|s| {
            let mut store =
                json!({"code": settings.retailcrm_store, "available": s.sellable.max(0)});
            if let Some(kop) = costs.get(&s.sku) {
                store["purchasePrice"] = json!(crate::money::kop_to_money(*kop));
            }
            json!({key: s.sku, "stores": [store]})
        })
        .collect();
    json!({"success": true, "offers": offers})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_named_by_the_configured_key_and_keep_zero() {
        let mut settings = ListenerSettings {
            retailcrm_store: "main".into(),
            ..ListenerSettings::default()
        };
        let snap = vec![StockSnapshot {
            sku: "A".into(),
            wms_stock: 1,
            wms_reserved: 1,
            sellable: 0,
            source: "egon".into(),
            taken_at: 1,
        }];
        let none = std::collections::HashMap::new();
        assert_eq!(
            offers_answer(&settings, &snap, &none),
            json!({"success": true, "offers": [{"externalId": "A", "stores": [{"code": "main", "available": 0}]}]})
        );
        let costs = std::collections::HashMap::from([("A".to_string(), 1029)]);
        assert_eq!(
            offers_answer(&settings, &snap, &costs)["offers"][0]["stores"][0]["purchasePrice"],
            json!(10.29)
        );
        settings.crm_offer_key_is_xml_id = true;
        assert_eq!(
            offers_answer(&settings, &snap, &none)["offers"][0]["xmlId"],
            "A"
        );
    }
}
