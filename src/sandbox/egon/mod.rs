//! A stand-in for the iSklad EGON warehouse API, plus the callbacks EGON sends
//! to the shop.
//!
//! The server keeps inventory cards and orders, answers `InventoryDetail`,
//! `GetOrderStatus`, `CreateNewOrder`, `StornoOrder` and `UpdateInventoryCard`
//! with the documented envelope and codes, refuses wrong credentials (202),
//! malformed requests (301) and unknown methods (302), and limits each
//! `auth_id` to `rate_per_min` requests per window (HTTP 429, `resp_code` 429).
//!
//! [`send_callback`] plays EGON calling the shop's listener, in each of the
//! transports EGON uses, with payloads built from the state
//! ([`EgonState::write_order_status_payload`], [`EgonState::inventory_status_update_payload`]).

use crate::connectors::egon::CountTypes;
use crate::lenient;
use crate::sandbox::common::{instrument, RateWindow, SandboxControl};
use crate::secret::Secret;
use crate::server::{spawn, RunningServer};
use crate::vendor_docs::egon::{codes, status_name, DATETIME_FORMAT};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The EGON client API documentation's sample callback request, verbatim.
pub const SAMPLE_CALLBACK_REQUEST: &str =
    include_str!("../../../tests/fixtures/vendors/egon/01-egon-to-client-sample-request.json");

/// The EGON client API documentation's sample callback answer, verbatim.
pub const SAMPLE_CALLBACK_RESPONSE: &str =
    include_str!("../../../tests/fixtures/vendors/egon/02-egon-to-client-sample-response.json");

/// Order statuses in which `StornoOrder` is allowed (nothing has left the warehouse).
pub const CANCELLABLE_STATUSES: &[i64] = &[0, 1, 2, 3, 10];

/// Order statuses in which `CreateNewOrder` with a known original id updates the order.
pub const UPDATABLE_STATUSES: &[i64] = &[0, 1, 2, 11, 12];

/// The fields `CreateNewOrder` documents as mandatory.
pub const CREATE_ORDER_MANDATORY: &[&str] = &[
    "original_order_id",
    "shop_setting_id",
    "customer_name",
    "customer_surname",
    "customer_phone",
    "customer_email",
    "name",
    "surname",
    "phone",
    "email",
    "street",
    "street_number",
    "city",
    "country",
    "postal_code",
    "id_delivery",
    "payment_cod",
    "items",
];

mod state;
pub use state::*;
mod server;
pub use server::*;
mod callbacks;
pub use callbacks::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_samples_are_valid_json() {
        let req: Value = serde_json::from_str(SAMPLE_CALLBACK_REQUEST).unwrap();
        assert_eq!(req["request"]["req_method"], "MethodName");
        assert!(req["auth"].get("auth_token").is_none());
        let resp: Value = serde_json::from_str(SAMPLE_CALLBACK_RESPONSE).unwrap();
        assert_eq!(resp["response"]["resp_status"], 1);
    }

    #[test]
    fn payloads_keep_the_documented_quirks() {
        let mut st = EgonState::new("id", "key", "token", 1);
        st.add_item(
            "123456",
            CountTypes {
                all: 236,
                expired: 2,
                damaged: 4,
                ordered: 15,
                reserved: 21,
                expiration_blocked: 0,
            },
        );
        st.seed_order("A-1", &[("123456", 2)]);
        st.add_package("A-1", "ABC123").unwrap();
        let order = st.write_order_status_payload("A-1").unwrap();
        assert!(order["order_items"].is_array());
        assert_eq!(order["order_items"][0]["ITEM_ID"], json!(123456));
        assert_eq!(order["order_errors"], json!({}));
        assert_eq!(order["packages"][0]["images"], json!({}));
        let inv = st.inventory_status_update_payload(&[]);
        assert_eq!(inv["123456"]["ITEM_ID"], json!("123456"));
        assert_eq!(inv["123456"]["COUNT"], json!(209));
        assert_eq!(st.inventory_status_update_payload(&["nope"]), json!([]));
    }

    #[test]
    fn seeding_checks_statuses_and_orders() {
        let mut st = EgonState::new("id", "key", "token", 1);
        st.seed_order("A-1", &[("1", 1)]);
        let before = st.order("A-1").unwrap().change_timestamp;
        assert_eq!(
            st.set_order_status("A-1", 8),
            Err(EgonSandboxError::UnknownStatus(8))
        );
        assert_eq!(
            st.set_order_status("B", 5),
            Err(EgonSandboxError::UnknownOrder("B".into()))
        );
        st.set_order_status("A-1", 5).unwrap();
        assert!(st.order("A-1").unwrap().change_timestamp > before);
    }

    #[test]
    fn scripted_codes_are_spent() {
        let mut st = EgonState::new("id", "key", "token", 1);
        st.script_code("GetOrderStatus", 500, 2);
        assert_eq!(st.take_scripted("InventoryDetail"), None);
        assert_eq!(st.take_scripted("GetOrderStatus"), Some(500));
        assert_eq!(st.take_scripted("GetOrderStatus"), Some(500));
        assert_eq!(st.take_scripted("GetOrderStatus"), None);
    }
}
