//! A stateful IMSKLAD server (IMSKLAD API documentation) for tests and the demo, plus the
//! callbacks IMSKLAD sends to the shop's endpoint.
//!
//! Behaviour where the doc is silent (each answers `{"error": text, "code": N}`
//! with HTTP 200, like every documented error):
//! - wrong key → code 3 `Incorrect key`; unparsable JSON, unknown type/action,
//!   missing or mistyped required fields → code 3;
//! - a `storage_id` other than the configured one → code 2 `Storage not found`;
//! - `add_*` with a partner id that already exists → code 4 (`... already exists`),
//!   `update_*` of an unknown partner id → code 2;
//! - goods lines of orders, preorders and documents must name a known product
//!   (partner id, or failing that WMS id; see [`ImskladStrictness::line_ids`]) → else code 2;
//!
//! Where the documentation allows two readings, [`ImskladState::strict`] picks one
//! ([`ImskladStrictness`]: billing lines with or without `type`, the code of
//! `update_good` for an unknown id, the id space and JSON type of goods lines,
//! the id `get_good` callbacks carry).
//! - `get_stock` silently leaves out unknown WMS ids;
//! - `update_order` with `is_canceled = 1` moves an order that has not left the
//!   warehouse (status < 9) to status 10;
//! - `update_order` that changes the goods of an order in assembly (status ≥ 2)
//!   keeps the old goods, applies the rest and answers the documented warning.
//!
//! Orders only move `stock`/`reserved` when [`ImskladState::track_reservations`]
//! is on; the other knobs on [`ImskladState`] (`empty_stock`, `hidden_stock`, `stockless_rows`,
//! `stock_as_strings`, `trailing_commas`, `amounts_as_strings`, `answer_delay`,
//! [`ImskladState::fail_next`]) reproduce the service's quirks and failures.
//! HTTP-level faults (500, timeouts, truncated bodies) come from
//! [`SandboxControl`].

use crate::connectors::imsklad::{Doc, Good, Order, OrderGood, Preorder};
use crate::sandbox::common::{instrument, SandboxControl};
use crate::secret::Secret;
use crate::server::{spawn, RunningServer};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Highest documented order status (11 = delivered to the customer).
pub const MAX_ORDER_STATUS: i64 = 11;
/// Order status "picking": from here on `update_order` no longer changes goods.
pub const STATUS_ASSEMBLY: i64 = 2;
/// Order status "shipped to the carrier".
pub const STATUS_SHIPPED: i64 = 9;
/// Order status "cancelled".
pub const STATUS_CANCELLED: i64 = 10;

/// Error code 1: fatal server error.
pub const CODE_FATAL: i64 = 1;
/// Error code 2: object not found.
pub const CODE_NOT_FOUND: i64 = 2;
/// Error code 3: bad request data.
pub const CODE_BAD_DATA: i64 = 3;
/// Error code 4: operation not performed.
pub const CODE_NOT_PERFORMED: i64 = 4;

use crate::vendor_docs::imsklad::WARNING_GOODS_NOT_SAVED;
mod state;
pub use state::*;
mod server;
pub use server::*;
mod callbacks;
pub use callbacks::*;

// ---------------------------------------------------------------------------
// The doc's examples, verbatim from the IMSKLAD API documentation
// ---------------------------------------------------------------------------

/// Callback good/get_good request example, verbatim from the IMSKLAD API documentation.
pub const CALLBACK_GET_GOOD_EXAMPLE: &str =
    include_str!("../../../tests/fixtures/vendors/imsklad/24-avtorizaciya-request.json");

/// The answer the doc expects to good/get_good.
pub const CALLBACK_GET_GOOD_ANSWER_EXAMPLE: &str =
    include_str!("../../../tests/fixtures/vendors/imsklad/25-avtorizaciya-answer.json");

/// Callback order/update_order request example (`delivery_type_id`, `delivery_courier_id`).
pub const CALLBACK_UPDATE_ORDER_EXAMPLE: &str = include_str!(
    "../../../tests/fixtures/vendors/imsklad/26-callback-obnovlenie-zakaza-request.json"
);

/// The answer the doc expects to order/update_order (echoes the partner id).
pub const CALLBACK_UPDATE_ORDER_ANSWER_EXAMPLE: &str = include_str!(
    "../../../tests/fixtures/vendors/imsklad/27-callback-obnovlenie-zakaza-answer.json"
);

/// Callback order/set_status request example (trailing comma after `guid`).
pub const CALLBACK_SET_STATUS_EXAMPLE: &str = include_str!(
    "../../../tests/fixtures/vendors/imsklad/28-callback-obnovlenie-statusa-zakaza-request.json"
);

/// Callback example of "Создание документа" exactly as printed (it says order/set_status with empty data).
pub const CALLBACK_ADD_DOC_EXAMPLE: &str = include_str!(
    "../../../tests/fixtures/vendors/imsklad/30-callback-sozdanie-dokumenta-request.json"
);

/// Callback order/update_tracks request example (trailing comma after the last entry).
pub const CALLBACK_UPDATE_TRACKS_EXAMPLE: &str = include_str!(
    "../../../tests/fixtures/vendors/imsklad/32-callback-obnovlenie-trekov-zakazov-request.json"
);

/// The `{"result": "ok"}` answer the doc expects to callbacks.
pub const CALLBACK_OK_ANSWER_EXAMPLE: &str = include_str!(
    "../../../tests/fixtures/vendors/imsklad/29-callback-obnovlenie-statusa-zakaza-answer.json"
);

/// The client API examples of the IMSKLAD API documentation, verbatim (requests and answers).
pub mod doc_examples {
    /// The envelope example of "Авторизация и схема запроса" (goods/add_good).
    pub const ENVELOPE_REQUEST: &str = include_str!(
        "../../../tests/fixtures/vendors/imsklad/01-avtorizaciya-i-shema-zaprosa-request.json"
    );

    /// The `{"result":"ok","id":…}` answer example.
    pub const OK_ANSWER: &str = include_str!(
        "../../../tests/fixtures/vendors/imsklad/02-avtorizaciya-i-shema-zaprosa-answer.json"
    );

    /// The error answer example of "Сообщения об ошибках".
    pub const ERROR_ANSWER: &str = include_str!(
        "../../../tests/fixtures/vendors/imsklad/03-soobscheniya-ob-oshibkah-error-answer.json"
    );

    /// goods/add_good request example.
    pub const ADD_GOOD_REQUEST: &str =
        include_str!("../../../tests/fixtures/vendors/imsklad/04-dobavlenie-tovara-request.json");

    /// goods/update_good request example.
    pub const UPDATE_GOOD_REQUEST: &str =
        include_str!("../../../tests/fixtures/vendors/imsklad/06-obnovlenie-tovara-request.json");

    /// goods/get_stock request example (trailing comma after `ids`).
    pub const GET_STOCK_REQUEST: &str = include_str!(
        "../../../tests/fixtures/vendors/imsklad/08-poluchenie-ostatkov-na-sklade-request.json"
    );

    /// goods/get_stock answer example (a bare array).
    pub const GET_STOCK_ANSWER: &str = include_str!(
        "../../../tests/fixtures/vendors/imsklad/09-poluchenie-ostatkov-na-sklade-answer.json"
    );

    /// order/add_order request example.
    pub const ADD_ORDER_REQUEST: &str =
        include_str!("../../../tests/fixtures/vendors/imsklad/10-dobavlenie-zakaza-request.json");

    /// order/update_order request example.
    pub const UPDATE_ORDER_REQUEST: &str =
        include_str!("../../../tests/fixtures/vendors/imsklad/12-obnovlenie-zakaza-request.json");

    /// order/update_order warning answer example.
    pub const UPDATE_ORDER_WARNING_ANSWER: &str =
        include_str!("../../../tests/fixtures/vendors/imsklad/13-obnovlenie-zakaza-answer.json");

    /// preorder/add_preorder request example (date as `owner_date`).
    pub const ADD_PREORDER_REQUEST: &str = include_str!(
        "../../../tests/fixtures/vendors/imsklad/14-dobavlenie-predzakaza-postavschiku-request.json"
    );

    /// preorder/update_preorder request example (date as `date`).
    pub const UPDATE_PREORDER_REQUEST: &str = include_str!(
        "../../../tests/fixtures/vendors/imsklad/16-obnovlenie-predzakaza-postavschiku-request.json"
    );

    /// doc/add_doc request example.
    pub const ADD_DOC_REQUEST: &str = include_str!(
        "../../../tests/fixtures/vendors/imsklad/18-dobavlenie-dokumenta-request.json"
    );

    /// doc/update_doc request example.
    pub const UPDATE_DOC_REQUEST: &str = include_str!(
        "../../../tests/fixtures/vendors/imsklad/20-obnovlenie-dokumenta-request.json"
    );

    /// billing/get_billing request example.
    pub const GET_BILLING_REQUEST: &str = include_str!("../../../tests/fixtures/vendors/imsklad/22-poluchenie-stoimosti-operacii-i-balansa-request.json");

    /// billing/get_billing answer example (no `type` on its lines).
    pub const GET_BILLING_ANSWER: &str = include_str!("../../../tests/fixtures/vendors/imsklad/23-poluchenie-stoimosti-operacii-i-balansa-answer.json");
}

#[cfg(test)]
mod tests {
    use super::doc_examples as ex;
    use super::*;
    use crate::connectors::imsklad::Billing;
    use crate::lenient;

    const KEY: &str = "YOUR_API_KEY";

    fn state_with_doc_goods() -> ImskladState {
        let mut s = ImskladState::new(KEY, 1);
        s.add_good("123123", "Товар А", 100_000);
        s.add_good("342343", "Товар Б", 500_000);
        s
    }

    fn call(s: &mut ImskladState, body: &str) -> Value {
        let text = match process(s, body.as_bytes()) {
            Ok(t) => t,
            Err(f) => f.body(),
        };
        lenient::from_str(&text).expect("the sandbox answers JSON")
    }

    fn envelope(kind: &str, action: &str, data: Value) -> String {
        json!({"key": KEY, "type": kind, "action": action, "data": data}).to_string()
    }

    fn code(v: &Value) -> Option<i64> {
        v.get("code").and_then(Value::as_i64)
    }

    #[test]
    fn every_doc_request_example_is_accepted_verbatim() {
        let mut s = state_with_doc_goods();
        for example in [
            ex::ENVELOPE_REQUEST,
            ex::UPDATE_GOOD_REQUEST,
            ex::ADD_ORDER_REQUEST,
            ex::UPDATE_ORDER_REQUEST,
            ex::ADD_PREORDER_REQUEST,
            ex::UPDATE_PREORDER_REQUEST,
            ex::ADD_DOC_REQUEST,
            ex::UPDATE_DOC_REQUEST,
        ] {
            let answer = call(&mut s, example);
            assert_eq!(answer["result"], "ok", "{example} → {answer}");
            assert!(answer["id"].as_i64().is_some());
        }
        let order = s.order("AZ-1234").expect("stored");
        assert_eq!(order.order.total_paid_kop, 100_000);
        assert_eq!(
            s.preorder("4423").and_then(|p| p.doc.date),
            Some(1_565_397_798)
        );
        assert_eq!(s.doc("4423").map(|d| d.doc.goods.len()), Some(2));
        let stock = call(&mut s, ex::GET_STOCK_REQUEST);
        assert_eq!(stock, json!([]), "the doc's ids are not ours");
        let billing = call(&mut s, ex::GET_BILLING_REQUEST);
        assert_eq!(billing["billing"], json!([]));
        // add_good of the doc's product id 13 again: already exists.
        assert_eq!(
            code(&call(&mut s, ex::ADD_GOOD_REQUEST)),
            Some(CODE_NOT_PERFORMED)
        );
    }

    #[test]
    fn refusals_use_the_documented_error_shape() {
        let mut s = state_with_doc_goods();
        let wrong_key = ex::ADD_ORDER_REQUEST.replace(KEY, "nope");
        let cases: Vec<(String, i64)> = vec![
            ("{not json".into(), CODE_BAD_DATA),
            ("[1,2]".into(), CODE_BAD_DATA),
            (wrong_key, CODE_BAD_DATA),
            (envelope("goods", "delete_good", json!({})), CODE_BAD_DATA),
            (envelope("goods", "add_good", json!(null)), CODE_BAD_DATA),
            (
                envelope(
                    "goods",
                    "add_good",
                    json!({"id": "1", "price": 1, "cost": 1}),
                ),
                CODE_BAD_DATA,
            ),
            (
                envelope(
                    "goods",
                    "add_good",
                    json!({"id": "", "name": "x", "price": 1, "cost": 1}),
                ),
                CODE_BAD_DATA,
            ),
            (
                envelope(
                    "goods",
                    "update_good",
                    json!({"id": "nope", "name": "x", "price": 1, "cost": 1}),
                ),
                CODE_NOT_FOUND,
            ),
            (
                envelope("goods", "get_stock", json!({"storage_id": 2, "ids": [1]})),
                CODE_NOT_FOUND,
            ),
            (
                envelope("goods", "get_stock", json!({"ids": [1]})),
                CODE_BAD_DATA,
            ),
            (
                envelope("goods", "get_stock", json!({"storage_id": 1, "ids": "1"})),
                CODE_BAD_DATA,
            ),
            (
                ex::ADD_ORDER_REQUEST.replace("\"storage_id\" : 1", "\"storage_id\" : 7"),
                CODE_NOT_FOUND,
            ),
            (
                ex::ADD_ORDER_REQUEST.replace("\"total_paid\" : 1000,", ""),
                CODE_BAD_DATA,
            ),
            (
                ex::ADD_ORDER_REQUEST.replace("123123", "555"),
                CODE_NOT_FOUND,
            ),
            (ex::UPDATE_ORDER_REQUEST.to_string(), CODE_NOT_FOUND),
            (
                ex::ADD_DOC_REQUEST.replace("\"type\" : 0", "\"type\" : 3"),
                CODE_BAD_DATA,
            ),
            (
                envelope(
                    "billing",
                    "get_billing",
                    json!({"storage_id": 1, "from": 1}),
                ),
                CODE_BAD_DATA,
            ),
        ];
        for (body, want) in cases {
            let answer = call(&mut s, &body);
            assert_eq!(code(&answer), Some(want), "{body} → {answer}");
            assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
            assert!(!answer.to_string().contains(KEY));
        }
        assert_eq!(s.orders().count(), 0);
    }

    #[test]
    fn update_order_in_assembly_keeps_goods_and_warns() {
        let mut s = state_with_doc_goods();
        call(&mut s, ex::ADD_ORDER_REQUEST);
        let before = s.order("AZ-1234").expect("added").order.goods.clone();
        // Same goods, new address: plain ok even in assembly.
        s.set_order_status("AZ-1234", 3).expect("known");
        let same = ex::UPDATE_ORDER_REQUEST.replace("Домофон 1232", "Домофон 9");
        assert_eq!(call(&mut s, &same)["result"], "ok");
        // Changed goods in assembly: the documented warning, goods kept, rest applied.
        let changed = same
            .replace("\"quantity\" : 4", "\"quantity\" : 5")
            .replace("Доставить к 15:00", "к 16:00");
        let answer = call(&mut s, &changed);
        assert_eq!(answer["result"], "warning");
        assert_eq!(answer["warning"], WARNING_GOODS_NOT_SAVED);
        assert_eq!(answer["id"].as_i64(), s.order("AZ-1234").map(|o| o.wms_id));
        let o = s.order("AZ-1234").expect("kept");
        assert_eq!(o.order.goods, before);
        assert_eq!(o.order.owner_comment.as_deref(), Some("к 16:00"));
        // A new order takes changed goods.
        s.set_order_status("AZ-1234", 1).expect("known");
        assert_eq!(call(&mut s, &changed)["result"], "ok");
        assert_eq!(
            s.order("AZ-1234").map(|o| o.order.goods[0].quantity),
            Some(5)
        );
    }

    #[test]
    fn cancelling_moves_unshipped_orders_to_status_10() {
        let mut s = state_with_doc_goods();
        call(&mut s, ex::ADD_ORDER_REQUEST);
        let cancel = ex::UPDATE_ORDER_REQUEST.replace("\"is_canceled\" : 0", "\"is_canceled\" : 1");
        assert_eq!(call(&mut s, &cancel)["result"], "ok");
        assert_eq!(s.order("AZ-1234").map(|o| o.status), Some(STATUS_CANCELLED));
    }

    #[test]
    fn stock_knobs_shape_the_answer() {
        let mut s = ImskladState::new(KEY, 1);
        let a = s.add_good("A", "a", 100);
        let b = s.add_good("B", "b", 100);
        s.set_stock(a, 10, 2).expect("known");
        s.set_stock(b, 5, 7).expect("known");
        assert_eq!(s.set_stock(1, 1, 1), Err(SandboxError::UnknownGood(1)));
        let body = envelope(
            "goods",
            "get_stock",
            json!({"storage_id": "1", "ids": [a, b, 999]}),
        );
        assert_eq!(
            call(&mut s, &body),
            json!([{"id": a, "stock": 10, "reserved": 2}, {"id": b, "stock": 5, "reserved": 7}])
        );
        s.hidden_stock.insert(a);
        assert_eq!(call(&mut s, &body).as_array().map(Vec::len), Some(1));
        s.stock_as_strings = true;
        s.trailing_commas = true;
        let raw = process(&mut s, body.as_bytes()).expect("ok");
        assert!(raw.contains(",\n]") && raw.contains("\"5\""), "{raw}");
        assert!(
            serde_json::from_str::<Value>(&raw).is_err(),
            "really has trailing commas"
        );
        s.empty_stock = true;
        assert_eq!(call(&mut s, &body), json!([]));
    }

    #[test]
    fn billing_is_filtered_by_period() {
        let mut s = ImskladState::new(KEY, 1);
        s.set_balance(1_000_000);
        s.add_billing_line(NewBillingLine {
            order_id: Some(1),
            foreign_order_id: Some("359407".into()),
            kind: 0,
            date: 100,
            amount_kop: -5_050,
            ..NewBillingLine::default()
        });
        s.add_billing_line(NewBillingLine {
            doc_request_id: Some(1120),
            kind: 9,
            date: 200,
            amount_kop: -10_000,
            comment: "Забор товара".into(),
            ..NewBillingLine::default()
        });
        s.add_billing_line(NewBillingLine {
            kind: 1,
            date: 300,
            amount_kop: 50_000,
            ..NewBillingLine::default()
        });
        assert_eq!(s.billing_lines().len(), 3);
        assert_eq!(s.balance(), 1_034_950);
        let body = envelope(
            "billing",
            "get_billing",
            json!({"storage_id": 1, "from": 150, "to": 300}),
        );
        let b: Billing =
            lenient::from_str(&process(&mut s, body.as_bytes()).expect("ok")).expect("parses");
        assert_eq!(b.lines.len(), 2);
        assert_eq!(b.change_of_balance_kop, 40_000);
        assert_eq!(b.current_balance_kop, 1_034_950);
        s.amounts_as_strings = true;
        s.trailing_commas = true;
        let raw = process(&mut s, body.as_bytes()).expect("ok");
        assert!(raw.contains("\"-100.00\""), "{raw}");
        let b2: Billing = lenient::from_str(&raw).expect("parses leniently");
        assert_eq!(b2, b);
        assert_eq!(amount_json(-5_050, false), json!(-50.5));
        assert_eq!(amount_json(-5, true), json!("-0.05"));
        assert_eq!(amount_json(i64::MAX, false), json!("92233720368547758.07"));
    }

    #[test]
    fn unlisted_billing_and_slack_shape_the_answer() {
        let mut s = ImskladState::new(KEY, 1);
        let listed = |date, amount_kop| NewBillingLine {
            kind: 9,
            date,
            amount_kop,
            ..NewBillingLine::default()
        };
        s.add_billing_line(listed(1_000, -100));
        s.add_billing_line(listed(1_999, -200));
        s.add_unlisted_billing_line(listed(1_500, -5_000));
        assert_eq!(s.balance(), -5_300);
        let b = s.billing_between(1_000, 1_998);
        assert_eq!(b.lines.len(), 1);
        assert_eq!(
            b.change_of_balance_kop, -5_100,
            "unlisted counted, not listed"
        );
        s.billing_slack_secs = 1;
        let b = s.billing_between(1_000, 1_998);
        assert_eq!(
            b.lines.iter().map(|l| l.date).collect::<Vec<_>>(),
            [1_000, 1_999]
        );
        assert_eq!(b.change_of_balance_kop, -5_300);
    }

    #[test]
    fn orders_move_stock_when_reservations_are_tracked() {
        let mut s = state_with_doc_goods();
        s.track_reservations = true;
        let a = s
            .good_by_partner("123123")
            .map(|g| g.wms_id)
            .expect("seeded");
        let b = s
            .good_by_partner("342343")
            .map(|g| g.wms_id)
            .expect("seeded");
        s.set_stock(a, 10, 0).expect("known");
        s.set_stock(b, 3, 0).expect("known");
        call(&mut s, ex::ADD_ORDER_REQUEST); // 4 × a, 1 × b
        assert_eq!(
            (s.stock_of(a), s.stock_of(b)),
            (Some((10, 4)), Some((3, 1)))
        );
        let more = ex::UPDATE_ORDER_REQUEST.replace("\"quantity\" : 4", "\"quantity\" : 6");
        assert_eq!(call(&mut s, &more)["result"], "ok");
        assert_eq!(s.stock_of(a), Some((10, 6)));
        s.set_order_status("AZ-1234", 5).expect("known");
        assert_eq!(
            s.stock_of(a),
            Some((10, 6)),
            "picking keeps the reservation"
        );
        s.set_order_status("AZ-1234", STATUS_SHIPPED)
            .expect("known");
        assert_eq!((s.stock_of(a), s.stock_of(b)), (Some((4, 0)), Some((2, 0))));

        let second = ex::ADD_ORDER_REQUEST.replace("AZ-1234", "AZ-2");
        call(&mut s, &second);
        assert_eq!(s.stock_of(a), Some((4, 4)));
        let cancel = ex::UPDATE_ORDER_REQUEST
            .replace("AZ-1234", "AZ-2")
            .replace("\"is_canceled\" : 0", "\"is_canceled\" : 1");
        call(&mut s, &cancel);
        assert_eq!(s.stock_of(a), Some((4, 0)), "cancelling releases");
        s.set_order_status("AZ-2", 0).expect("known");
        assert_eq!(s.stock_of(a), Some((4, 4)), "revived orders reserve again");
    }

    #[test]
    fn stock_is_untouched_by_orders_by_default() {
        let mut s = state_with_doc_goods();
        let a = s
            .good_by_partner("123123")
            .map(|g| g.wms_id)
            .expect("seeded");
        s.set_stock(a, 10, 1).expect("known");
        call(&mut s, ex::ADD_ORDER_REQUEST);
        s.set_order_status("AZ-1234", STATUS_SHIPPED)
            .expect("known");
        assert_eq!(s.stock_of(a), Some((10, 1)));
    }

    #[test]
    fn scripted_errors_hit_their_action_only() {
        let mut s = ImskladState::new(KEY, 1);
        s.fail_next("get_stock", CODE_FATAL, "Fatal error", 2);
        let stock = envelope("goods", "get_stock", json!({"storage_id": 1, "ids": []}));
        let billing = envelope(
            "billing",
            "get_billing",
            json!({"storage_id": 1, "from": 0, "to": 1}),
        );
        assert!(call(&mut s, &billing).get("code").is_none());
        assert_eq!(code(&call(&mut s, &stock)), Some(CODE_FATAL));
        assert_eq!(code(&call(&mut s, &stock)), Some(CODE_FATAL));
        assert_eq!(call(&mut s, &stock), json!([]));
    }

    #[test]
    fn seeding_and_status_changes() {
        let mut s = state_with_doc_goods();
        let order: Order = serde_json::from_value(
            lenient::from_str::<Value>(ex::ADD_ORDER_REQUEST).expect("parses")["data"].clone(),
        )
        .expect("an order");
        let wms = s.seed_order(order.clone(), 4).expect("seeded");
        assert_eq!(
            s.seed_order(order.clone(), 0),
            Err(SandboxError::Duplicate("AZ-1234".into()))
        );
        let change = s.set_order_status("AZ-1234", 9).expect("known");
        assert_eq!(
            (change.old_status, change.new_status, change.system_id),
            (4, 9, wms)
        );
        assert_eq!(
            change.to_callback_data(),
            json!({"id": "AZ-1234", "old_status": 4, "new_status": 9, "system_id": wms,
                   "guid": "67060465-4b5e-11eb-80c6-00155dd99f08"})
        );
        assert_eq!(
            s.set_order_status("AZ-1234", 12),
            Err(SandboxError::BadStatus(12))
        );
        assert!(matches!(
            s.set_order_status("nope", 1),
            Err(SandboxError::UnknownOrder(_))
        ));
        let t = s.set_tracks("AZ-1234", "RA123").expect("known");
        assert_eq!(
            s.order("AZ-1234")
                .and_then(|o| o.order.track.clone())
                .as_deref(),
            Some("RA123")
        );
        assert_eq!(
            update_tracks_data(&[
                t,
                TrackUpdate::Err {
                    id: "AZ-2".into(),
                    guid: None,
                    err: "Incorrect pvz".into()
                }
            ]),
            json!([
                {"id": "AZ-1234", "guid": "67060465-4b5e-11eb-80c6-00155dd99f08", "track": "RA123"},
                {"id": "AZ-2", "guid": null, "err": "Incorrect pvz"}
            ])
        );
        let mut bad = order;
        bad.id = "X".into();
        bad.goods[0].id = "nope".into();
        assert_eq!(
            s.seed_order(bad, 0),
            Err(SandboxError::UnknownLine("nope".into()))
        );
    }

    #[test]
    fn callback_builders_match_the_doc_examples() {
        let doc: Value = lenient::from_str(CALLBACK_UPDATE_ORDER_EXAMPLE).expect("parses");
        let order: Order = serde_json::from_value(doc["data"].clone()).expect("an order");
        let built = update_order_callback_data(&order).expect("serialises");
        let mut expected = doc["data"].clone();
        if let Value::Object(m) = &mut expected {
            m.retain(|k, v| !v.is_null() || k == "guid");
        }
        assert_eq!(built, expected);
        let status: Value = lenient::from_str(CALLBACK_SET_STATUS_EXAMPLE).expect("trailing comma");
        let d = &status["data"];
        assert_eq!(
            set_status_data("AZ-1234", 0, 1, 11232, d["guid"].as_str()),
            d.clone()
        );
        let tracks: Value =
            lenient::from_str(CALLBACK_UPDATE_TRACKS_EXAMPLE).expect("trailing comma");
        let entries = [
            TrackUpdate::Track {
                id: "AZ-1234".into(),
                guid: Some("67060465-4b5e-11eb-80c6-00155dd99f08".into()),
                track: "345345345234".into(),
            },
            TrackUpdate::Track {
                id: "AZ-2322".into(),
                guid: None,
                track: "45345344544".into(),
            },
            TrackUpdate::Err {
                id: "AZ-2324".into(),
                guid: Some("9ec81f66-4ba7-11eb-80c6-00155dd99f08".into()),
                err: "Incorrect pvz".into(),
            },
        ];
        assert_eq!(update_tracks_data(&entries), tracks["data"]);
        for example in [
            CALLBACK_GET_GOOD_EXAMPLE,
            CALLBACK_ADD_DOC_EXAMPLE,
            CALLBACK_OK_ANSWER_EXAMPLE,
            CALLBACK_GET_GOOD_ANSWER_EXAMPLE,
            CALLBACK_UPDATE_ORDER_ANSWER_EXAMPLE,
        ] {
            assert!(lenient::from_str::<Value>(example).is_ok(), "{example}");
        }
        assert!(
            serde_json::from_str::<Value>(CALLBACK_SET_STATUS_EXAMPLE).is_err(),
            "verbatim, comma kept"
        );
    }
}
