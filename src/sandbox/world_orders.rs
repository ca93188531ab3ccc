//! The orders of the sandbox world: consistent across the shop database, the
//! warehouse (IMSKLAD or EGON) and the CRM, then drifted so every order class
//! has examples.
//!
//! [`generate_orders`] derives the orders from a [`World`] (its SKUs) and a
//! "now"; [`write_shop_orders`] writes them to the shop database,
//! [`seed_orders`] loads them into the sandbox servers (the CRM's shipped
//! marks and tracks go through its HTTP API, as an earlier warehouse
//! integration would have set them), [`write_order_mapping`] stores the
//! WMS ids of the orders sverka sent itself, and [`deliver_callbacks`] plays
//! the warehouse reporting its state to sverka's listener — the only way the
//! IMSKLAD order state reaches sverka.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use super::world::{World, WorldError, WorldSku};
use super::SandboxSet;
use crate::config::WmsKind;
use crate::connectors::imsklad::{Order, OrderGood};
use crate::db::mapping::{self, MapKind};
use crate::db::{Arg, Db, DbError};
use crate::shop::Shop;

/// Which drift an order carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderDrift {
    /// The three systems agree.
    None,
    /// Shipped by the WMS, not marked shipped (nor tracked) in the CRM.
    ShippedNotMarkedInCrm,
    /// Delivered and marked shipped, but the CRM lacks the track.
    TrackMissingInCrm,
    /// Cancelled in the shop while the WMS is picking it.
    CancelledInShopActiveInWms,
    /// Paid in the shop, never sent to the WMS.
    MissingInWms,
    /// In the shop and the WMS, absent from the CRM.
    MissingInCrm,
    /// The WMS holds other goods than the shop ordered.
    GoodsMismatch,
    /// The CRM's total differs from the shop's.
    AmountMismatch,
    /// Sent to the WMS days ago, never moved.
    Stuck,
    /// Cancelled in the shop after the WMS shipped it.
    CancelledAfterShipment,
}

/// One line of a world order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorldOrderLine {
    /// SKU.
    pub sku: String,
    /// Pieces.
    pub quantity: i64,
    /// Unit price, kopecks.
    pub price_kop: i64,
}

/// The CRM's copy of a world order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorldCrmOrder {
    /// Status code.
    pub status: String,
    /// Marked shipped from the warehouse.
    pub shipped: bool,
    /// `delivery.data.trackNumber`.
    pub track: Option<String>,
    /// Delivery cost, kopecks (differs from the shop's for an amount mismatch).
    pub delivery_kop: i64,
}

/// One order of the world.
#[derive(Debug, Clone, Serialize)]
pub struct WorldOrder {
    /// Order id (shop id = IMSKLAD partner id = CRM externalId = EGON original id).
    pub id: String,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Shop status text.
    pub shop_status: String,
    /// Paid in the shop.
    pub paid: bool,
    /// Cancelled in the shop.
    pub cancelled: bool,
    /// The shop's lines.
    pub lines: Vec<WorldOrderLine>,
    /// Delivery cost, kopecks.
    pub delivery_kop: i64,
    /// Customer.
    pub customer_name: String,
    /// Delivery address (`postal code, city, street, house`).
    pub address: String,
    /// The WMS stage (None: the WMS does not have the order).
    #[serde(serialize_with = "stage_name")]
    pub stage: Option<Stage>,
    /// IMSKLAD status (0–11) for the stage.
    pub imsklad_status: Option<i64>,
    /// EGON status for the stage.
    pub egon_status: Option<i64>,
    /// The WMS's lines (SKU, pieces).
    pub wms_lines: Vec<(String, i64)>,
    /// The carrier track, once shipped.
    pub track: Option<String>,
    /// Whether the WMS reported the order through callbacks.
    pub reported: bool,
    /// The CRM's copy (None: missing in the CRM).
    pub crm: Option<WorldCrmOrder>,
    /// The injected drift.
    pub drift: OrderDrift,
}

/// The fulfilment stage the world gives an order; the warehouse and CRM
/// statuses it gets are picked from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Accepted, not yet picked.
    New,
    /// Being picked.
    Picking,
    /// Packed, waiting for the carrier.
    Packed,
    /// Handed to the carrier.
    Shipped,
    /// Delivered to the customer.
    Delivered,
    /// Cancelled in the warehouse.
    Cancelled,
}

impl Stage {
    /// The stage's name (`new`, `picking`, …, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Picking => "picking",
            Stage::Packed => "packed",
            Stage::Shipped => "shipped",
            Stage::Delivered => "delivered",
            Stage::Cancelled => "cancelled",
        }
    }

    /// Handed over: shipped or delivered.
    pub fn is_shipped(self) -> bool {
        matches!(self, Stage::Shipped | Stage::Delivered)
    }
}

/// serde: a stage as its name.
fn stage_name<S: serde::Serializer>(stage: &Option<Stage>, s: S) -> Result<S::Ok, S::Error> {
    match stage {
        Some(st) => s.serialize_some(st.as_str()),
        None => s.serialize_none(),
    }
}

impl WorldOrder {
    /// The shop's total: lines plus delivery, kopecks.
    pub fn total_kop(&self) -> i64 {
        self.lines
            .iter()
            .map(|l| l.price_kop * l.quantity)
            .sum::<i64>()
            + self.delivery_kop
    }
}

/// The CRM status the sandbox account shows for a stage (the built-in status map).
pub fn crm_status(stage: Stage) -> &'static str {
    match stage {
        Stage::New => "new",
        Stage::Picking => "assembling",
        Stage::Packed => "assembling-complete",
        Stage::Shipped => "send-to-delivery",
        Stage::Delivered => "complete",
        Stage::Cancelled => "cancel-other",
    }
}

fn imsklad_status(stage: Stage, rng: &mut StdRng) -> i64 {
    match stage {
        Stage::New => 0,
        Stage::Picking => rng.random_range(2..=5),
        Stage::Packed => rng.random_range(6..=8),
        Stage::Shipped => 9,
        Stage::Delivered => 11,
        Stage::Cancelled => 10,
    }
}

fn egon_status(stage: Stage, rng: &mut StdRng) -> i64 {
    match stage {
        Stage::New => rng.random_range(0..=1),
        Stage::Picking => rng.random_range(2..=3),
        Stage::Packed => 4,
        Stage::Shipped => 5,
        Stage::Delivered => *[6, 16, 19].get(rng.random_range(0..3)).unwrap_or(&6),
        Stage::Cancelled => 9,
    }
}

fn drift_for(i: usize, rng: &mut StdRng) -> OrderDrift {
    super::world::pick_drift(
        i,
        rng,
        &[
            (Some(39), OrderDrift::ShippedNotMarkedInCrm),
            (Some(69), OrderDrift::TrackMissingInCrm),
            (Some(84), OrderDrift::CancelledInShopActiveInWms),
            (Some(99), OrderDrift::MissingInWms),
            (Some(109), OrderDrift::MissingInCrm),
            (Some(119), OrderDrift::GoodsMismatch),
            (Some(129), OrderDrift::AmountMismatch),
            // Stuck is only ever forced: it has no band of its own.
            (None, OrderDrift::Stuck),
            (Some(134), OrderDrift::CancelledAfterShipment),
        ],
        OrderDrift::None,
    )
}

/// The stage a drift needs (None: random among the live stages).
fn drift_stage(drift: OrderDrift) -> Option<Option<Stage>> {
    match drift {
        OrderDrift::ShippedNotMarkedInCrm | OrderDrift::CancelledAfterShipment => {
            Some(Some(Stage::Shipped))
        }
        OrderDrift::TrackMissingInCrm => Some(Some(Stage::Delivered)),
        OrderDrift::CancelledInShopActiveInWms | OrderDrift::MissingInCrm => {
            Some(Some(Stage::Picking))
        }
        OrderDrift::GoodsMismatch | OrderDrift::AmountMismatch => Some(Some(Stage::Packed)),
        OrderDrift::Stuck => Some(Some(Stage::New)),
        OrderDrift::MissingInWms => Some(None),
        OrderDrift::None => None,
    }
}

/// Generates `world.spec.orders` orders over the world's SKUs, created within
/// `world.spec.days` before `now_ms` (the stuck ones three days ago). The same
/// world and `now_ms` always give the same orders.
pub fn generate_orders(world: &World, now_ms: i64) -> Vec<WorldOrder> {
    let mut rng = StdRng::seed_from_u64(world.spec.seed ^ 0x6f72_6465_7273);
    let eligible: Vec<&WorldSku> = world
        .skus
        .iter()
        .filter(|s| s.in_wms && s.shop_quantity.is_some() && s.crm_quantity.is_some())
        .collect();
    if eligible.is_empty() {
        return Vec::new();
    }
    let span_ms = i64::from(world.spec.days.max(1)) * 24 * 3_600_000;
    (0..world.spec.orders)
        .map(|i| generate_order(i, &eligible, span_ms, now_ms, &mut rng))
        .collect()
}

/// The stages an order without drift may be in.
const LIVE_STAGES: [Stage; 5] = [
    Stage::New,
    Stage::Picking,
    Stage::Packed,
    Stage::Shipped,
    Stage::Delivered,
];

/// The `i`-th order (0-based) of the world. Draws from `rng` in a fixed order:
/// drift, stage, lines, delivery, creation time, then the WMS statuses.
fn generate_order(
    i: usize,
    eligible: &[&WorldSku],
    span_ms: i64,
    now_ms: i64,
    rng: &mut StdRng,
) -> WorldOrder {
    let drift = drift_for(i, rng);
    let stage = drift_stage(drift)
        .unwrap_or_else(|| Some(LIVE_STAGES[rng.random_range(0..LIVE_STAGES.len())]));
    let lines = order_lines(eligible, rng);
    let mut wms_lines: Vec<(String, i64)> =
        lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect();
    if drift == OrderDrift::GoodsMismatch {
        if let Some(first) = wms_lines.first_mut() {
            first.1 += 1;
        }
    }
    let cancelled = matches!(
        drift,
        OrderDrift::CancelledInShopActiveInWms | OrderDrift::CancelledAfterShipment
    );
    let track = stage
        .filter(|s| s.is_shipped())
        .map(|_| format!("RA{:09}RU", 100_000 + i));
    let delivery_kop = rng.random_range(0..5) * 10_000;
    let crm = (drift != OrderDrift::MissingInCrm)
        .then(|| crm_order(drift, stage, track.clone(), delivery_kop));
    let created_at = if drift == OrderDrift::Stuck {
        now_ms - 72 * 3_600_000
    } else {
        now_ms - rng.random_range(3_600_000..span_ms.max(3_600_001))
    };
    WorldOrder {
        id: format!("ORD-{:06}", i + 1),
        created_at,
        shop_status: shop_status(cancelled, stage).to_owned(),
        paid: true,
        cancelled,
        lines,
        delivery_kop,
        customer_name: format!("Покупатель Номер{}", i + 1),
        address: format!("1010{:02}, Москва, ул. Тверская, д. {}", i % 100, i + 1),
        imsklad_status: stage.map(|s| imsklad_status(s, rng)),
        egon_status: stage.map(|s| egon_status(s, rng)),
        stage,
        wms_lines,
        track,
        reported: drift != OrderDrift::Stuck,
        crm,
        drift,
    }
}

/// One to three lines of distinct SKUs (a repeated draw is skipped).
fn order_lines(eligible: &[&WorldSku], rng: &mut StdRng) -> Vec<WorldOrderLine> {
    let n_lines = rng.random_range(1..=3usize);
    let mut lines: Vec<WorldOrderLine> = Vec::new();
    for _ in 0..n_lines {
        let sku = eligible[rng.random_range(0..eligible.len())];
        if lines.iter().any(|l| l.sku == sku.sku) {
            continue;
        }
        lines.push(WorldOrderLine {
            sku: sku.sku.clone(),
            quantity: rng.random_range(1..=3),
            price_kop: sku.price_kop,
        });
    }
    lines
}

/// The shop's status of an order.
fn shop_status(cancelled: bool, stage: Option<Stage>) -> &'static str {
    match (cancelled, stage) {
        (true, _) => "cancelled",
        (false, Some(Stage::Delivered)) => "completed",
        (false, Some(Stage::Shipped)) => "shipped",
        _ => "paid",
    }
}

/// The CRM's copy of an order, with its drift applied.
fn crm_order(
    drift: OrderDrift,
    stage: Option<Stage>,
    track: Option<String>,
    delivery_kop: i64,
) -> WorldCrmOrder {
    let mut c = WorldCrmOrder {
        status: stage.map_or("new", crm_status).to_owned(),
        shipped: stage.is_some_and(Stage::is_shipped),
        track,
        delivery_kop,
    };
    match drift {
        OrderDrift::ShippedNotMarkedInCrm => {
            c.status = crm_status(Stage::Packed).to_owned();
            c.shipped = false;
            c.track = None;
        }
        OrderDrift::TrackMissingInCrm => c.track = None,
        OrderDrift::AmountMismatch => c.delivery_kop += 50_000,
        _ => {}
    }
    c
}

/// Orders per injected drift.
pub fn drift_counts(orders: &[WorldOrder]) -> BTreeMap<String, usize> {
    super::world::count_by_name(orders.iter().map(|o| o.drift))
}

/// Writes the orders and their lines to the shop database (reference schema).
pub async fn write_shop_orders(shop: &Shop, orders: &[WorldOrder]) -> Result<(), WorldError> {
    let mut tx = super::world::begin_shop_seed(shop, "shop orders").await?;
    let db = shop.db();
    let order_sql = db
        .sql(
            "INSERT INTO orders (id, status, paid, cancelled, cancelled_at, created_at, shipped_at, \
             total_kop, delivery_kop, delivery_type, customer_name, email, phone, address) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .into_owned();
    let item_sql = db
        .sql("INSERT INTO order_items (order_id, sku, quantity, price_kop) VALUES (?, ?, ?, ?)")
        .into_owned();
    for o in orders {
        crate::db::bind_args(
            sqlx::query(&order_sql),
            &[
                Arg::Text(o.id.clone()),
                Arg::Text(o.shop_status.clone()),
                Arg::I64(i64::from(o.paid)),
                Arg::I64(i64::from(o.cancelled)),
                Arg::OptI64(o.cancelled.then_some(o.created_at + 3_600_000)),
                Arg::I64(o.created_at),
                Arg::OptI64(None),
                Arg::I64(o.total_kop()),
                Arg::I64(o.delivery_kop),
                Arg::OptI64(Some(16)),
                Arg::Text(o.customer_name.clone()),
                Arg::OptText(Some(format!("{}@example.ru", o.id.to_lowercase()))),
                Arg::OptText(Some("+7 900 000-00-00".into())),
                Arg::OptText(Some(o.address.clone())),
            ],
        )
        .execute(&mut *tx)
        .await
        .map_err(DbError::query("seeding shop orders"))?;
        for l in &o.lines {
            crate::db::bind_args(
                sqlx::query(&item_sql),
                &[
                    Arg::Text(o.id.clone()),
                    Arg::Text(l.sku.clone()),
                    Arg::I64(l.quantity),
                    Arg::I64(l.price_kop),
                ],
            )
            .execute(&mut *tx)
            .await
            .map_err(DbError::query("seeding shop order items"))?;
        }
    }
    tx.commit()
        .await
        .map_err(DbError::query("committing the shop orders seed"))?;
    Ok(())
}

fn seed_err(vendor: &'static str, e: impl std::fmt::Display) -> WorldError {
    WorldError::Seed {
        vendor,
        message: e.to_string(),
    }
}

/// The code of the warehouse module an earlier integration registered in the
/// sandbox CRM (it lets the seed set `shipped`).
pub const EARLIER_MODULE_CODE: &str = "earlier-fulfilment";

/// Loads the orders into the IMSKLAD and EGON sandboxes and the CRM. The CRM's
/// shipped marks and tracks are set through its API (requests the caller may
/// want to clear from the request log afterwards).
pub async fn seed_orders(set: &SandboxSet, orders: &[WorldOrder]) -> Result<(), WorldError> {
    seed_imsklad(set, orders)?;
    seed_egon(set, orders)?;
    let store = set.keys.retailcrm_store.clone();
    {
        let mut crm = set.retailcrm.lock();
        crm.register_module(json!({
            "code": EARLIER_MODULE_CODE,
            "name": "Earlier fulfilment integration",
            "active": true,
            "baseUrl": "https://earlier.example",
            "clientId": "earlier",
            "integrations": {"store": {"actions": []}},
        }))
        .map_err(|e| seed_err("retailcrm", e))?;
        for o in orders {
            let Some(c) = &o.crm else { continue };
            crm.add_order(super::retailcrm::NewOrder {
                external_id: o.id.clone(),
                status: c.status.clone(),
                items: o
                    .lines
                    .iter()
                    .map(|l| super::retailcrm::NewOrderItem {
                        sku: l.sku.clone(),
                        quantity: l.quantity as f64,
                        price_kop: l.price_kop,
                    })
                    .collect(),
                delivery_code: None,
                delivery_cost_kop: c.delivery_kop,
                shipment_store: Some(store.clone()),
            })
            .map_err(|e| seed_err("retailcrm", e))?;
        }
    }
    {
        // What the warehouse module reported earlier: shipped flags and tracks.
        let mut crm = set.retailcrm.lock();
        for o in orders {
            let Some(c) = &o.crm else { continue };
            crm.set_order_fulfilment(&o.id, c.shipped, c.track.clone())
                .map_err(|e| seed_err("retailcrm", e))?;
        }
    }
    Ok(())
}

fn seed_imsklad(set: &SandboxSet, orders: &[WorldOrder]) -> Result<(), WorldError> {
    let mut wms = set.imsklad.lock();
    for o in orders {
        let Some(status) = o.imsklad_status else {
            continue;
        };
        let prices: BTreeMap<&str, i64> = o
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.price_kop))
            .collect();
        let goods = o
            .wms_lines
            .iter()
            .map(|(sku, q)| {
                OrderGood::new(
                    sku.clone(),
                    *q,
                    prices.get(sku.as_str()).copied().unwrap_or(0),
                )
            })
            .collect();
        let mut order = Order::new(o.id.clone(), o.customer_name.clone(), goods);
        order.address = Some(o.address.clone());
        order.delivery_kop = o.delivery_kop;
        order.total_paid_kop = o.total_kop();
        order.delivery_type = Some(16);
        wms.seed_order(order, status)
            .map_err(|e| seed_err("imsklad", e))?;
        if let Some(track) = &o.track {
            wms.set_tracks(&o.id, track)
                .map_err(|e| seed_err("imsklad", e))?;
        }
    }
    Ok(())
}

fn seed_egon(set: &SandboxSet, orders: &[WorldOrder]) -> Result<(), WorldError> {
    let mut egon = set.egon.lock();
    for o in orders {
        let Some(status) = o.egon_status else {
            continue;
        };
        let lines: Vec<(&str, i64)> = o.wms_lines.iter().map(|(s, q)| (s.as_str(), *q)).collect();
        egon.seed_order(&o.id, &lines);
        egon.set_order_status(&o.id, status)
            .map_err(|e| seed_err("egon", e))?;
        if let Some(track) = &o.track {
            egon.add_package(&o.id, track)
                .map_err(|e| seed_err("egon", e))?;
        }
    }
    Ok(())
}

/// Stores the IMSKLAD ids of the orders sverka sent itself and the warehouse
/// never reported on (the stuck ones), as sverka's `add_order` would have.
pub async fn write_order_mapping(
    state: &Db,
    set: &SandboxSet,
    orders: &[WorldOrder],
) -> Result<(), WorldError> {
    let ids: Vec<(String, i64)> = {
        let wms = set.imsklad.lock();
        orders
            .iter()
            .filter(|o| !o.reported)
            .filter_map(|o| wms.order(&o.id).map(|w| (o.id.clone(), w.wms_id)))
            .collect()
    };
    for (id, wms_id) in ids {
        mapping::put(state, MapKind::Order, &id, &wms_id.to_string()).await?;
    }
    Ok(())
}

/// Checks a listener answer: HTTP 200 and no refusal in the body.
fn accepted(
    vendor: &'static str,
    answer: Result<(u16, String), reqwest::Error>,
) -> Result<(), WorldError> {
    let (status, body) = answer.map_err(|e| seed_err(vendor, e))?;
    let refused = serde_json::from_str::<Value>(&body).ok().is_some_and(|v| {
        v.get("error").is_some() || v.pointer("/response/resp_status") == Some(&json!(0))
    });
    if status != 200 || refused {
        return Err(seed_err(
            vendor,
            format!("the listener answered {status}: {body}"),
        ));
    }
    Ok(())
}

/// Plays the WMS reporting the orders' state to sverka's listener at
/// `listener_url` (no trailing slash): IMSKLAD `update_order` (goods),
/// `set_status` (from 0 to the current status) and one `update_tracks`; EGON
/// `WriteOrderStatus`. Orders the WMS never reported are left out. Returns
/// the number of callbacks sent.
pub async fn deliver_callbacks(
    set: &SandboxSet,
    orders: &[WorldOrder],
    listener_url: &str,
    kind: WmsKind,
) -> Result<usize, WorldError> {
    let reported: Vec<&WorldOrder> = orders
        .iter()
        .filter(|o| o.reported && o.stage.is_some())
        .collect();
    let mut sent = 0;
    match kind {
        WmsKind::Imsklad => {
            let url = format!("{listener_url}/imsklad");
            let key = set.keys.imsklad_callback_key.clone();
            let mut payloads: Vec<(&str, Value)> = Vec::new();
            let mut tracks = Vec::new();
            {
                let wms = set.imsklad.lock();
                for o in &reported {
                    let Some(w) = wms.order(&o.id) else { continue };
                    let data = super::imsklad::update_order_callback_data(&w.order)
                        .map_err(|e| seed_err("imsklad", e))?;
                    payloads.push(("update_order", data));
                    let guid = w.order.guid.as_deref();
                    payloads.push((
                        "set_status",
                        super::imsklad::set_status_data(&o.id, 0, w.status, w.wms_id, guid),
                    ));
                    if let Some(track) = &w.order.track {
                        tracks.push(super::imsklad::TrackUpdate::Track {
                            id: o.id.clone(),
                            guid: w.order.guid.clone(),
                            track: track.clone(),
                        });
                    }
                }
            }
            if !tracks.is_empty() {
                payloads.push(("update_tracks", super::imsklad::update_tracks_data(&tracks)));
            }
            for (action, data) in payloads {
                let answer =
                    super::imsklad::send_callback(&url, &key, "order", action, &data).await;
                accepted("imsklad", answer)?;
                sent += 1;
            }
        }
        WmsKind::Egon => {
            let url = format!("{listener_url}/egon");
            let payloads: Vec<Value> = {
                let egon = set.egon.lock();
                reported
                    .iter()
                    .filter_map(|o| egon.write_order_status_payload(&o.id))
                    .collect()
            };
            for data in payloads {
                let answer = super::egon::send_callback(
                    &url,
                    &set.keys.egon_auth_id,
                    &set.keys.egon_auth_key,
                    "WriteOrderStatus",
                    &data,
                    super::egon::Transport::RawJson,
                )
                .await;
                accepted("egon", answer)?;
                sent += 1;
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::world::tests::assert_carries_every;
    use crate::sandbox::world::WorldSpec;

    const NOW: i64 = 1_800_000_000_000;

    fn orders(n: usize) -> Vec<WorldOrder> {
        let world = World::generate(&WorldSpec {
            skus: 40,
            orders: n,
            ..WorldSpec::default()
        });
        generate_orders(&world, NOW)
    }

    #[test]
    fn the_same_world_and_now_give_the_same_orders() {
        let a = orders(50);
        let b = orders(50);
        assert_eq!(a.len(), 50);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (&x.id, x.created_at, &x.lines, x.drift),
                (&y.id, y.created_at, &y.lines, y.drift)
            );
        }
    }

    #[test]
    fn small_worlds_carry_every_drift_and_drift_is_real() {
        let all = orders(12);
        assert_carries_every(
            &drift_counts(&all),
            &[
                "shipped_not_marked_in_crm",
                "track_missing_in_crm",
                "cancelled_in_shop_active_in_wms",
                "missing_in_wms",
                "missing_in_crm",
                "goods_mismatch",
                "amount_mismatch",
                "stuck",
                "cancelled_after_shipment",
            ],
        );
        for o in &all {
            assert!(!o.lines.is_empty());
            let shop_goods: Vec<(String, i64)> = o
                .lines
                .iter()
                .map(|l| (l.sku.clone(), l.quantity))
                .collect();
            match o.drift {
                OrderDrift::GoodsMismatch => assert_ne!(shop_goods, o.wms_lines),
                OrderDrift::MissingInWms => {
                    assert!(o.stage.is_none() && o.imsklad_status.is_none())
                }
                OrderDrift::MissingInCrm => assert!(o.crm.is_none()),
                OrderDrift::AmountMismatch => {
                    assert_ne!(o.crm.as_ref().map(|c| c.delivery_kop), Some(o.delivery_kop))
                }
                OrderDrift::Stuck => assert!(!o.reported && NOW - o.created_at > 48 * 3_600_000),
                OrderDrift::ShippedNotMarkedInCrm => {
                    let c = o.crm.as_ref().unwrap();
                    assert!(o.track.is_some() && !c.shipped && c.track.is_none());
                }
                OrderDrift::CancelledAfterShipment => {
                    assert!(o.cancelled && o.stage == Some(Stage::Shipped))
                }
                OrderDrift::None => {
                    let c = o.crm.as_ref().unwrap();
                    assert_eq!(shop_goods, o.wms_lines);
                    assert_eq!(c.shipped, o.stage.unwrap().is_shipped());
                    assert_eq!(c.track, o.track);
                    assert_eq!(c.status, crm_status(o.stage.unwrap()));
                }
                _ => {}
            }
        }
    }

    #[test]
    fn wms_statuses_match_the_built_in_status_map() {
        let map = crate::jobs::orders::StatusMap::builtin().unwrap();
        for o in orders(60) {
            if let Some(stage) = o.stage {
                let crm = crm_status(stage);
                let stage = crate::reconcile::orders::Stage::parse(stage.as_str());
                let stage = stage.expect("a stage sverka knows");
                assert_eq!(
                    map.stage(WmsKind::Imsklad, o.imsklad_status.unwrap()),
                    Some(stage)
                );
                assert_eq!(
                    map.stage(WmsKind::Egon, o.egon_status.unwrap()),
                    Some(stage)
                );
                assert_eq!(map.crm.get(&stage).map(String::as_str), Some(crm));
            }
        }
    }
}
