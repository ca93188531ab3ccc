//! The parts of the orders job that follow the vendors' documents closely
//! (issue 15): what IMSKLAD asked the shop to do that sverka does not do
//! (carrier exports), carrier export failures, the full order a cancellation
//! re-sends, what `add_order` carries, and what EGON's `CreateNewOrder` would
//! refuse.

use serde_json::Value;
use std::collections::BTreeMap;

use crate::connectors::egon::NewOrder;
use crate::connectors::imsklad::CARRIER_EXPORT_ACTIONS;
use crate::connectors::imsklad::{AddressObj, Order, OrderGood};
use crate::db::events::SOURCE_IMSKLAD;
use crate::db::protocol;
use crate::db::{Db, DbError};
use crate::lenient::value_to_id;
use crate::shop::{ShopOrder, ShopOrderItem};

/// IMSKLAD asked the shop to export an order to a carrier (`send_to_cdek`,
/// `send_to_boxberry`, `send_act_to_boxberry`) and sverka does not do that.
pub const CLASS_CARRIER_EXPORT_REQUESTED: &str = "carrier_export_requested";
/// An `update_tracks` line carried `err`: the order could not be handed to
/// the carrier (and no track arrived since).
pub const CLASS_CARRIER_EXPORT_FAILED: &str = "carrier_export_failed";
/// A cancellation went out with the shop's data because sverka has no full
/// copy of the order as the WMS holds it.
pub const CLASS_PARTIAL_ORDER_DATA: &str = "partial_order_data";

/// One report row the orders job adds beside the classified ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The shop's order id.
    pub order_id: String,
    /// Report class.
    pub class: &'static str,
    /// What happened.
    pub note: String,
}

/// The order ids a carrier export request names. The seed only says it
/// "passes the ids of the orders": a list of ids or of objects with `id`, an
/// object with `ids` / `orders`, or one object with `id` are all read.
pub fn order_ids_in(data: &Value) -> Vec<String> {
    fn from_item(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(id) = m.get("id").and_then(value_to_id) {
                    out.push(id);
                }
            }
            other => {
                if let Some(id) = value_to_id(other) {
                    out.push(id);
                }
            }
        }
    }
    let mut out = Vec::new();
    match data {
        Value::Array(items) => items.iter().for_each(|v| from_item(v, &mut out)),
        Value::Object(m) => {
            let list = ["ids", "orders", "order_ids"]
                .iter()
                .find_map(|k| m.get(*k).and_then(Value::as_array));
            match list {
                Some(items) => items.iter().for_each(|v| from_item(v, &mut out)),
                None => match m.get("id") {
                    Some(_) => from_item(data, &mut out),
                    None => m.values().for_each(|v| from_item(v, &mut out)),
                },
            }
        }
        other => from_item(other, &mut out),
    }
    out.retain(|id| !id.is_empty());
    out
}

fn carrier_name(method: &str) -> &'static str {
    match method.rsplit('.').next().unwrap_or_default() {
        "send_to_cdek" => "CDEK",
        "send_act_to_boxberry" => "the BoxBerry shipment act",
        _ => "BoxBerry",
    }
}

fn when(ms: i64, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Notes by (order id, class): a later note of an order's class replaces the earlier one.
type LatestNotes = BTreeMap<(String, &'static str), Note>;

fn keep_latest(notes: &mut LatestNotes, order_id: String, class: &'static str, note: String) {
    notes.insert(
        (order_id.clone(), class),
        Note {
            order_id,
            class,
            note,
        },
    );
}

/// The carrier export requests and failures IMSKLAD sent since `since_ms`:
/// one note per order (the latest request or failure wins). With
/// `[imsklad] carrier_export = "elsewhere"` requests are not reported (the
/// shop's other system does them); failures always are, unless a track
/// arrived for the order since (`has_track`).
pub async fn carrier_notes(
    db: &Db,
    since_ms: i64,
    report_requests: bool,
    tz: chrono_tz::Tz,
    has_track: impl Fn(&str) -> bool,
) -> Result<Vec<Note>, DbError> {
    let mut methods: Vec<String> = vec!["order.update_tracks".into()];
    if report_requests {
        methods.extend(CARRIER_EXPORT_ACTIONS.iter().map(|a| format!("order.{a}")));
    }
    let names: Vec<&str> = methods.iter().map(String::as_str).collect();
    let calls = protocol::calls_since(db, SOURCE_IMSKLAD, &names, since_ms).await?;
    let mut notes = LatestNotes::new();
    for call in calls {
        let Ok(body) = crate::lenient::from_str::<Value>(&call.body) else {
            continue;
        };
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        if call.method == "order.update_tracks" {
            let lines: Vec<&Value> = match &data {
                Value::Array(items) => items.iter().collect(),
                Value::Object(m) => m.values().collect(),
                _ => Vec::new(),
            };
            for line in lines {
                let (Some(id), Some(err)) = (
                    line.get("id").and_then(value_to_id),
                    line.get("err")
                        .and_then(value_to_id)
                        .filter(|e| !e.is_empty()),
                ) else {
                    continue;
                };
                if has_track(&id) {
                    continue;
                }
                let note = format!(
                    "IMSKLAD could not hand the order to the carrier ({}): {err}",
                    when(call.received_at, tz)
                );
                keep_latest(&mut notes, id, CLASS_CARRIER_EXPORT_FAILED, note);
            }
        } else {
            for id in order_ids_in(&data) {
                let note = format!(
                    "IMSKLAD asked the shop to export the order to {} ({}); sverka does not and answered error code 4: export it, or set [imsklad] carrier_export = \"elsewhere\" if another system does",
                    carrier_name(&call.method),
                    when(call.received_at, tz)
                );
                keep_latest(&mut notes, id, CLASS_CARRIER_EXPORT_REQUESTED, note);
            }
        }
    }
    Ok(notes.into_values().collect())
}

/// Which id an order line carries (see `[imsklad] order_goods_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineIds<'a> {
    /// The shop SKU.
    Partner,
    /// The mapped WMS goods id (SKU → WMS id).
    Wms(&'a BTreeMap<String, String>),
}

/// The IMSKLAD order for a shop order and its lines: everything the shop has
/// of it (discount, courier, pickup point, post code, the address in parts).
/// Fails naming the first SKU without a WMS id when lines carry WMS ids.
pub fn imsklad_order(
    order: &ShopOrder,
    items: &[&ShopOrderItem],
    ids: LineIds<'_>,
) -> Result<Order, String> {
    let mut goods = Vec::with_capacity(items.len());
    for i in items {
        let id = match ids {
            LineIds::Partner => i.sku.clone(),
            LineIds::Wms(map) => map.get(&i.sku).cloned().ok_or_else(|| {
                format!(
                    "SKU {} has no WMS goods id ([imsklad] order_goods_id = \"wms\"); map it first",
                    i.sku
                )
            })?,
        };
        goods.push(OrderGood::new(id, i.quantity, i.price_kop));
    }
    let mut o = Order::new(order.id.clone(), order.customer_name.clone(), goods);
    o.email.clone_from(&order.email);
    o.phone.clone_from(&order.phone);
    o.address.clone_from(&order.address);
    o.discount_kop = order.discount_kop;
    o.delivery_kop = order.delivery_kop;
    o.total_paid_kop = if order.paid { order.total_kop } else { 0 };
    o.delivery_type = order.delivery_type;
    o.courier = order.courier;
    o.pickup_point.clone_from(&order.pickup_point);
    o.post_code.clone_from(&order.post_code);
    let parts = &order.address_parts;
    if !parts.is_empty() {
        o.address_obj = Some(AddressObj {
            city: parts.city.clone(),
            street: parts.street.clone(),
            house: parts.house.clone(),
            room: parts.room.clone(),
        });
    }
    Ok(o)
}

/// The last full copy sverka sent or received of each of `ids` that has
/// one: order id → the stored body (read before the run's first write).
pub async fn stored_documents(db: &Db, ids: &[&str]) -> Result<BTreeMap<String, String>, DbError> {
    let mut out = BTreeMap::new();
    for &id in ids {
        if let Some(doc) = protocol::order_document(db, id).await? {
            out.insert(id.to_owned(), doc.body);
        }
    }
    Ok(out)
}

/// The order a cancellation sends: the last full copy sverka sent or received
/// (`stored`, see [`stored_documents`]) with `is_canceled = 1` (`true` in the
/// second place), else the shop's data (`false`: reported as
/// [`CLASS_PARTIAL_ORDER_DATA`]).
pub fn cancellation(
    stored: Option<&str>,
    id: &str,
    from_shop: impl FnOnce() -> Result<Order, String>,
) -> Result<(Order, bool), String> {
    let stored = stored.and_then(|body| match crate::lenient::from_str::<Order>(body) {
        Ok(order) => Some(order),
        Err(e) => {
            tracing::warn!(
                order = id,
                "the stored copy of the order does not parse ({e}); sending the shop's data"
            );
            None
        }
    });
    let (mut order, full) = match stored {
        Some(o) => (o, true),
        None => (from_shop()?, false),
    };
    order.id = id.to_owned();
    order.is_canceled = Some(1);
    Ok((order, full))
}

/// Stores what sverka sent and IMSKLAD accepted as the order's last full copy.
pub async fn remember_sent(db: &Db, order: &Order) -> Result<(), DbError> {
    let body = serde_json::to_string(order).unwrap_or_default();
    protocol::put_order_document(db, &order.id, protocol::origin::SENT, &body).await
}

/// What EGON would refuse with 301 in a `CreateNewOrder`, named by field:
/// empty mandatory customer and address parts, and `item_id`s that are not
/// integers (the documentation types `item_id` Integer).
pub fn create_order_problems(o: &NewOrder) -> Vec<String> {
    let mut out = Vec::new();
    // CreateNewOrder.md marks these mandatory (`phone` is not).
    let required = [
        ("customer_name", o.customer_name.as_str()),
        ("customer_surname", o.customer_surname.as_str()),
        ("customer_phone", o.customer_phone.as_str()),
        ("customer_email", o.customer_email.as_str()),
        ("name", o.name.as_str()),
        ("surname", o.surname.as_str()),
        ("email", o.email.as_str()),
        ("street", o.street.as_str()),
        ("street_number", o.street_number.as_str()),
        ("city", o.city.as_str()),
        ("country", o.country.as_str()),
        ("postal_code", o.postal_code.as_str()),
    ];
    for (field, value) in required {
        if value.trim().is_empty() {
            out.push(format!("`{field}` is empty"));
        }
    }
    if o.items.is_empty() {
        out.push("`items` is empty".into());
    }
    for (i, item) in o.items.iter().enumerate() {
        let integer = !item.item_id.is_empty()
            && item
                .item_id
                .parse::<i64>()
                .is_ok_and(|n| n.to_string() == item.item_id);
        if !integer {
            out.push(format!(
                "`items[{i}].item_id` {:?} is not an integer",
                item.item_id
            ));
        }
        if item.name.trim().is_empty() {
            out.push(format!("`items[{i}].name` is empty"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new_order(item_id: &str, street_number: &str) -> NewOrder {
        NewOrder {
            original_order_id: "1".into(),
            shop_setting_id: 1,
            reference_number: None,
            customer_name: "Иван".into(),
            customer_surname: "Петров".into(),
            customer_phone: "+7 900".into(),
            customer_email: "i@example.ru".into(),
            name: "Иван".into(),
            surname: "Петров".into(),
            phone: "+7 900".into(),
            email: "i@example.ru".into(),
            street: "ул. Тверская".into(),
            street_number: street_number.into(),
            city: "Москва".into(),
            country: "RU".into(),
            postal_code: "101000".into(),
            id_delivery: 291,
            delivery_branch_id: None,
            payment_cod: false,
            cod_price_kop: None,
            currency: None,
            note: None,
            items: vec![crate::connectors::egon::NewOrderItem {
                item_id: item_id.into(),
                name: "Тестовый товар".into(),
                count: 1,
                catalog_id: None,
                price_with_tax_kop: None,
            }],
        }
    }

    #[test]
    fn what_egon_refuses_with_301_is_named_before_sending() {
        assert!(create_order_problems(&new_order("101", "7")).is_empty());
        let p = create_order_problems(&new_order("A-1", ""));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("`street_number`"), "{p:?}");
        assert!(p[1].contains("`items[0].item_id`"), "{p:?}");
        assert!(!create_order_problems(&new_order("007", "7")).is_empty());
    }

    #[test]
    fn carrier_requests_name_their_orders_in_any_shape() {
        assert_eq!(order_ids_in(&json!(["AZ-1", 12])), ["AZ-1", "12"]);
        assert_eq!(
            order_ids_in(&json!([{"id": "AZ-1"}, {"id": 7}])),
            ["AZ-1", "7"]
        );
        assert_eq!(order_ids_in(&json!({"ids": ["A", "B"]})), ["A", "B"]);
        assert_eq!(order_ids_in(&json!({"id": "A", "guid": null})), ["A"]);
        assert_eq!(
            order_ids_in(&json!({"0": "A", "1": {"id": "B"}})),
            ["A", "B"]
        );
        assert!(order_ids_in(&json!({})).is_empty());
    }
}
