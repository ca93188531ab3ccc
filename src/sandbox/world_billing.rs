//! The billing of the sandbox world: what IMSKLAD charged the shop for the
//! world's orders over its days, consistent with the shop database, then
//! drifted so every billing class has an example.
//!
//! [`generate_billing`] derives, from the world's orders and its "now", the
//! billing facts the shop keeps (when each order shipped, its delivery type,
//! when it was cancelled) and the warehouse's operations: an assembly charge
//! (type 0) and a delivery charge (type 2, by delivery type) per shipped order
//! at its shipping time, top-ups (type 1), a daily storage fee and a goods
//! pickup (type 9). Amounts follow the built-in tariff table
//! ([`BillingSection::default`]); delivery charges vary within its tolerance.
//!
//! Known drift, all on the last complete day before "now" (what the nightly
//! run checks by default), one example each:
//! `order_without_charge` (a shipped order's assembly charge is missing),
//! `duplicate_charge` (an order charged twice for assembly),
//! `amount_off_tariff` (an assembly charged 60.00 instead of 45.00),
//! `charge_for_cancelled_order` (assembly charged for an order the shop
//! cancelled before picking), `charge_for_unknown_order` (an order id the
//! shop never had), and `balance_gap` (a 1 000.00 operation that moves the
//! balance and the day's `change_of_balance` but is missing from the listed
//! lines). Worlds of at least nine orders carry all of them.
//!
//! [`write_shop_billing`] writes the billing facts into the shop database
//! (after [`super::world_orders::write_shop_orders`]); [`seed_billing`] books
//! the operations into the IMSKLAD sandbox (after
//! [`super::world_orders::seed_orders`], whose WMS order ids the lines carry).

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;

use super::imsklad::NewBillingLine;
use super::world::WorldError;
use super::world_orders::{OrderDrift, WorldOrder};
use super::SandboxSet;
use crate::config::BillingSection;
use crate::db::{Arg, DbError};
use crate::shop::Shop;

/// The class names of sverka's billing report the world expects its lines to get,
/// written out here so the fake vendor does not share the client's reading.
mod class {
    pub const CHARGE_FOR_UNKNOWN_ORDER: &str = "charge_for_unknown_order";
    pub const DUPLICATE_CHARGE: &str = "duplicate_charge";
    pub const CHARGE_FOR_CANCELLED_ORDER: &str = "charge_for_cancelled_order";
    pub const AMOUNT_OFF_TARIFF: &str = "amount_off_tariff";
    pub const BALANCE_GAP: &str = "balance_gap";
    pub const OK: &str = "ok";
}

/// Billing line `type` values (the WMS operation), per the IMSKLAD API
/// documentation, §billing/get_billing.
mod kind {
    /// Order assembly.
    pub const ASSEMBLY: i64 = 0;
    /// Balance top-up.
    pub const TOP_UP: i64 = 1;
    /// Delivery.
    pub const DELIVERY: i64 = 2;
    /// Anything else.
    pub const OTHER: i64 = 9;
}

/// The first instant of local `day` in `tz` (unix seconds); when midnight does
/// not exist (a DST gap), the first existing minute within three hours.
fn day_start(tz: Tz, day: NaiveDate) -> Option<i64> {
    let midnight = day.and_hms_opt(0, 0, 0)?;
    (0..=180)
        .map(|m| midnight + chrono::Duration::minutes(m))
        .find_map(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.timestamp())
}

/// IMSKLAD delivery types of the world's orders, with the carrier names the
/// warehouse writes in its comments.
pub const DELIVERY_TYPES: [(i64, &str); 5] = [
    (4, "Почта России"),
    (16, "СДЭК"),
    (22, "Грастин"),
    (62, "Boxberry"),
    (113, "Пешкарики"),
];

/// The order id of the charge for an order the shop never had.
pub const UNKNOWN_ORDER_ID: &str = "ORD-900001";
/// The WMS order id of that charge.
pub const UNKNOWN_WMS_ORDER_ID: i64 = 999_001;
/// What the off-tariff assembly charge costs (the tariff is 45.00).
pub const OFF_TARIFF_KOP: i64 = 6_000;
/// The operation missing from the listed lines.
pub const UNLISTED_KOP: i64 = -100_000;
/// The balance before the world's first day.
pub const OPENING_KOP: i64 = 1_000_000;

const HOUR: i64 = 3_600;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// Which drift a billing line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingDrift {
    /// As it should be.
    None,
    /// Names an order the shop never had.
    ChargeForUnknownOrder,
    /// A second assembly charge for one order.
    DuplicateCharge,
    /// Assembly charged for an order cancelled before picking.
    ChargeForCancelledOrder,
    /// Charged off the tariff.
    AmountOffTariff,
    /// Moves the balance but is missing from the statement.
    BalanceGap,
}

impl BillingDrift {
    /// The class sverka gives the line (`balance_gap` is the period's, not a line's).
    pub fn class(self) -> &'static str {
        match self {
            BillingDrift::None => class::OK,
            BillingDrift::ChargeForUnknownOrder => class::CHARGE_FOR_UNKNOWN_ORDER,
            BillingDrift::DuplicateCharge => class::DUPLICATE_CHARGE,
            BillingDrift::ChargeForCancelledOrder => class::CHARGE_FOR_CANCELLED_ORDER,
            BillingDrift::AmountOffTariff => class::AMOUNT_OFF_TARIFF,
            BillingDrift::BalanceGap => class::BALANCE_GAP,
        }
    }
}

/// What the shop database knows of an order for billing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderFacts {
    /// Created (Unix ms; moved earlier for the drift examples).
    pub created_at: i64,
    /// Left the warehouse (Unix ms).
    pub shipped_at: Option<i64>,
    /// Cancelled in the shop (Unix ms).
    pub cancelled_at: Option<i64>,
    /// IMSKLAD delivery type.
    pub delivery_type: i64,
}

/// One operation of the world's billing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorldBillingLine {
    /// The shop order it names.
    pub foreign_order_id: Option<String>,
    /// Its WMS order id when not the seeded order's (the unknown order).
    pub wms_order_id: Option<i64>,
    /// WMS request id (the goods pickup).
    pub doc_request_id: Option<i64>,
    /// 0 assembly, 1 top-up, 2 delivery, 9 other.
    pub kind: i64,
    /// Unix seconds.
    pub date: i64,
    /// Kopecks; negative is a charge.
    pub amount_kop: i64,
    /// The warehouse's comment.
    pub comment: String,
    /// Listed by `get_billing` (false: only its amount shows, in the change of balance).
    pub listed: bool,
    /// The injected drift.
    pub drift: BillingDrift,
}

/// The world's billing.
#[derive(Debug, Clone)]
pub struct WorldBilling {
    /// The balance before the first operation.
    pub opening_kop: i64,
    /// Every operation, by date.
    pub lines: Vec<WorldBillingLine>,
    /// Billing facts per order id.
    pub orders: BTreeMap<String, OrderFacts>,
    /// The day the drift examples are on (the last complete day).
    pub drift_day: NaiveDate,
    /// The first day with operations.
    pub first_day: NaiveDate,
    /// The shipped order whose assembly charge is missing.
    pub order_without_charge: Option<String>,
}

impl WorldBilling {
    /// Operations dated in `[from, to)` (unix seconds), listed or not.
    pub fn lines_between(&self, from: i64, to: i64) -> impl Iterator<Item = &WorldBillingLine> {
        self.lines
            .iter()
            .filter(move |l| l.date >= from && l.date < to)
    }

    /// The balance after every operation.
    pub fn closing_kop(&self) -> i64 {
        self.opening_kop + self.lines.iter().map(|l| l.amount_kop).sum::<i64>()
    }
}

/// Local `date` at `hours` past its start, unix seconds.
fn at(tz: Tz, date: NaiveDate, hours: i64) -> i64 {
    day_start(tz, date).unwrap_or(0) + hours * HOUR
}

fn carrier(delivery_type: i64) -> &'static str {
    DELIVERY_TYPES
        .iter()
        .find(|(t, _)| *t == delivery_type)
        .map_or("курьер", |(_, name)| name)
}

/// The billing facts of every order, before the drift examples move some.
fn order_facts(
    orders: &[WorldOrder],
    rng: &mut StdRng,
    now_ms: i64,
) -> BTreeMap<String, OrderFacts> {
    orders
        .iter()
        .map(|o| {
            let delivery_type = DELIVERY_TYPES[rng.random_range(0..DELIVERY_TYPES.len())].0;
            let delay = rng.random_range(30 * MINUTE_MS..20 * HOUR_MS);
            let shipped_at = o
                .stage
                .filter(|s| s.is_shipped() && o.imsklad_status.is_some())
                .map(|_| {
                    (o.created_at + delay)
                        .min(now_ms - 30 * MINUTE_MS)
                        .max(o.created_at)
                });
            let facts = OrderFacts {
                created_at: o.created_at,
                shipped_at,
                cancelled_at: None,
                delivery_type,
            };
            (o.id.clone(), facts)
        })
        .collect()
}

/// When each order was cancelled: after shipping for those cancelled after
/// shipment, an hour after creation otherwise.
fn set_cancellations(orders: &[WorldOrder], facts: &mut BTreeMap<String, OrderFacts>, now_ms: i64) {
    for o in orders.iter().filter(|o| o.cancelled) {
        if let Some(f) = facts.get_mut(&o.id) {
            f.cancelled_at = Some(match f.shipped_at {
                Some(shipped) => shipped + (now_ms - shipped).max(2) / 2,
                None => f.created_at + HOUR_MS,
            });
        }
    }
}

/// The drift examples' orders.
struct Targets {
    without_charge: Option<String>,
    duplicate: Option<String>,
    off_tariff: Option<String>,
    cancelled: Option<String>,
}

fn pick_targets(orders: &[WorldOrder], facts: &BTreeMap<String, OrderFacts>) -> Targets {
    let shipped =
        |o: &&WorldOrder| !o.cancelled && facts.get(&o.id).is_some_and(|f| f.shipped_at.is_some());
    let mut candidates: Vec<&WorldOrder> = orders
        .iter()
        .filter(shipped)
        .filter(|o| o.drift == OrderDrift::None)
        .collect();
    candidates.extend(
        orders
            .iter()
            .filter(shipped)
            .filter(|o| o.drift != OrderDrift::None),
    );
    let mut ids = candidates.into_iter().map(|o| o.id.clone());
    Targets {
        without_charge: ids.next(),
        duplicate: ids.next(),
        off_tariff: ids.next(),
        cancelled: orders
            .iter()
            .find(|o| {
                o.drift == OrderDrift::CancelledInShopActiveInWms && o.imsklad_status.is_some()
            })
            .map(|o| o.id.clone()),
    }
}

/// Moves an order to ship at `shipped` (ms), created at least two hours before.
fn ship_at(facts: &mut BTreeMap<String, OrderFacts>, id: Option<&String>, shipped_ms: i64) {
    if let Some(f) = id.and_then(|id| facts.get_mut(id)) {
        f.created_at = f.created_at.min(shipped_ms - 2 * HOUR_MS);
        f.shipped_at = Some(shipped_ms);
    }
}

fn line(
    kind: i64,
    date: i64,
    amount_kop: i64,
    order: Option<&str>,
    comment: String,
    drift: BillingDrift,
) -> WorldBillingLine {
    WorldBillingLine {
        foreign_order_id: order.map(str::to_owned),
        wms_order_id: None,
        doc_request_id: None,
        kind,
        date,
        amount_kop,
        comment,
        listed: true,
        drift,
    }
}

/// Generates the world's billing (see the module docs). The same orders, seed
/// and `now_ms` always give the same billing.
pub fn generate_billing(
    orders: &[WorldOrder],
    seed: u64,
    days: u32,
    now_ms: i64,
    tz: Tz,
) -> WorldBilling {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6269_6c6c_696e_6721);
    let tariffs = BillingSection::default();
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.with_timezone(&tz).date_naive())
        .unwrap_or_default();
    let drift_day = today.pred_opt().unwrap_or(today);
    let first_day = today
        .checked_sub_days(chrono::Days::new(u64::from(days.max(1))))
        .unwrap_or(drift_day);
    let calendar = Calendar {
        tz,
        first_day,
        drift_day,
        assembly_kop: tariffs
            .tariff(kind::ASSEMBLY, None)
            .map_or(4_500, |t| t.amount_kop),
    };

    let mut facts = order_facts(orders, &mut rng, now_ms);
    let targets = pick_targets(orders, &facts);
    ship_at(
        &mut facts,
        targets.without_charge.as_ref(),
        calendar.y(11) * 1000,
    );
    ship_at(
        &mut facts,
        targets.duplicate.as_ref(),
        calendar.y(12) * 1000,
    );
    ship_at(
        &mut facts,
        targets.off_tariff.as_ref(),
        calendar.y(13) * 1000,
    );
    if let Some(f) = targets.cancelled.as_ref().and_then(|id| facts.get_mut(id)) {
        f.created_at = f.created_at.min(calendar.y(8) * 1000);
    }
    set_cancellations(orders, &mut facts, now_ms);

    let mut lines = order_lines(orders, &facts, &targets, &tariffs, &calendar, &mut rng);
    lines.extend(drift_lines(&targets, &calendar));
    lines.extend(account_lines(&calendar));
    lines.sort_by_key(|l| l.date);
    WorldBilling {
        opening_kop: OPENING_KOP,
        lines,
        orders: facts,
        drift_day,
        first_day,
        order_without_charge: targets.without_charge,
    }
}

/// The days of the world's billing and its assembly tariff.
struct Calendar {
    tz: Tz,
    first_day: NaiveDate,
    drift_day: NaiveDate,
    assembly_kop: i64,
}

impl Calendar {
    /// The drift day at `hours` past its start, unix seconds.
    fn y(&self, hours: i64) -> i64 {
        at(self.tz, self.drift_day, hours)
    }
}

/// Each shipped order's assembly and delivery charges, with the drift
/// examples that concern them (missing, duplicated and off-tariff assembly).
fn order_lines(
    orders: &[WorldOrder],
    facts: &BTreeMap<String, OrderFacts>,
    targets: &Targets,
    tariffs: &BillingSection,
    calendar: &Calendar,
    rng: &mut StdRng,
) -> Vec<WorldBillingLine> {
    let assembly_kop = calendar.assembly_kop;
    let mut lines = Vec::new();
    for o in orders {
        let Some(f) = facts.get(&o.id) else { continue };
        let Some(shipped_ms) = f.shipped_at else {
            continue;
        };
        let shipped = shipped_ms / 1000;
        let id = Some(o.id.as_str());
        let is = |t: &Option<String>| t.as_deref() == Some(o.id.as_str());
        if !is(&targets.without_charge) {
            let (amount, drift) = if is(&targets.off_tariff) {
                (OFF_TARIFF_KOP, BillingDrift::AmountOffTariff)
            } else {
                (assembly_kop, BillingDrift::None)
            };
            let comment = format!("Сборка заказа {}", o.id);
            lines.push(line(kind::ASSEMBLY, shipped, -amount, id, comment, drift));
        }
        if is(&targets.duplicate) {
            let comment = format!("Сборка заказа {}", o.id);
            lines.push(line(
                kind::ASSEMBLY,
                shipped + 900,
                -assembly_kop,
                id,
                comment,
                BillingDrift::DuplicateCharge,
            ));
        }
        let tariff = tariffs.tariff(kind::DELIVERY, Some(f.delivery_type));
        let (base, tolerance) = tariff.map_or((30_000, 0), |t| (t.amount_kop, t.tolerance_kop));
        let steps = tolerance / 200;
        let amount = base + 100 * rng.random_range(-steps..=steps);
        let comment = format!("Доставка {}: {}", carrier(f.delivery_type), o.id);
        lines.push(line(
            kind::DELIVERY,
            shipped + 60,
            -amount,
            id,
            comment,
            BillingDrift::None,
        ));
    }
    lines
}

/// The drift examples not tied to a shipped order: a charge for the cancelled
/// order, one for an order the shop never had, and the unlisted operation.
fn drift_lines(targets: &Targets, calendar: &Calendar) -> Vec<WorldBillingLine> {
    let assembly_kop = calendar.assembly_kop;
    let mut lines = Vec::new();
    if let Some(id) = &targets.cancelled {
        let comment = format!("Сборка заказа {id}");
        lines.push(line(
            kind::ASSEMBLY,
            calendar.y(14),
            -assembly_kop,
            Some(id),
            comment,
            BillingDrift::ChargeForCancelledOrder,
        ));
    }
    let mut unknown = line(
        kind::ASSEMBLY,
        calendar.y(15),
        -assembly_kop,
        Some(UNKNOWN_ORDER_ID),
        format!("Сборка заказа {UNKNOWN_ORDER_ID}"),
        BillingDrift::ChargeForUnknownOrder,
    );
    unknown.wms_order_id = Some(UNKNOWN_WMS_ORDER_ID);
    lines.push(unknown);
    let mut gap = line(
        kind::OTHER,
        calendar.y(16),
        UNLISTED_KOP,
        None,
        "Корректировка баланса".into(),
        BillingDrift::BalanceGap,
    );
    gap.listed = false;
    lines.push(gap);
    lines
}

/// The account's own operations: a goods pickup, two top-ups and the daily
/// storage fee over every day of the world.
fn account_lines(calendar: &Calendar) -> Vec<WorldBillingLine> {
    let tz = calendar.tz;
    let mut pickup = line(
        kind::OTHER,
        calendar.y(17),
        -10_000,
        None,
        "Забор товара".into(),
        BillingDrift::None,
    );
    pickup.doc_request_id = Some(1_120);
    let mut lines = vec![pickup];
    lines.push(line(
        kind::TOP_UP,
        at(tz, calendar.first_day, 9),
        5_000_000,
        None,
        "Пополнение баланса".into(),
        BillingDrift::None,
    ));
    lines.push(line(
        kind::TOP_UP,
        calendar.y(9),
        2_000_000,
        None,
        "Пополнение баланса".into(),
        BillingDrift::None,
    ));
    let mut day = calendar.first_day;
    while day <= calendar.drift_day {
        let comment = format!("Хранение товара за {}", day.format("%d.%m.%Y"));
        lines.push(line(
            kind::OTHER,
            at(tz, day, 23),
            -150_000,
            None,
            comment,
            BillingDrift::None,
        ));
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    lines
}

/// Writes the billing facts (created, shipped and cancelled times, delivery
/// type) into the shop's orders (reference schema), in one transaction.
pub async fn write_shop_billing(shop: &Shop, billing: &WorldBilling) -> Result<(), WorldError> {
    let db = shop.db();
    let sql = db
        .sql("UPDATE orders SET created_at = ?, shipped_at = ?, cancelled_at = ?, delivery_type = ? WHERE id = ?")
        .into_owned();
    let mut tx = db
        .pool()
        .begin()
        .await
        .map_err(DbError::query("starting the shop billing seed transaction"))?;
    for (id, f) in &billing.orders {
        let args = [
            Arg::I64(f.created_at),
            Arg::OptI64(f.shipped_at),
            Arg::OptI64(f.cancelled_at),
            Arg::OptI64(Some(f.delivery_type)),
            Arg::Text(id.clone()),
        ];
        crate::db::bind_args(sqlx::query(&sql), &args)
            .execute(&mut *tx)
            .await
            .map_err(DbError::query("seeding shop billing facts"))?;
    }
    tx.commit()
        .await
        .map_err(DbError::query("committing the shop billing seed"))?;
    Ok(())
}

/// Books the operations into the IMSKLAD sandbox, whose balance starts at the
/// opening balance; lines naming a seeded order carry its WMS id. Returns the
/// ids the sandbox gave the lines, in order.
pub fn seed_billing(set: &SandboxSet, billing: &WorldBilling) -> Vec<i64> {
    let mut wms = set.imsklad.lock();
    wms.set_balance(billing.opening_kop);
    billing
        .lines
        .iter()
        .map(|l| {
            let order_id = l.wms_order_id.or_else(|| {
                l.foreign_order_id
                    .as_deref()
                    .and_then(|id| wms.order(id))
                    .map(|o| o.wms_id)
            });
            let new = NewBillingLine {
                order_id,
                foreign_order_id: l.foreign_order_id.clone(),
                doc_request_id: l.doc_request_id,
                kind: l.kind,
                date: l.date,
                amount_kop: l.amount_kop,
                comment: l.comment.clone(),
            };
            if l.listed {
                wms.add_billing_line(new)
            } else {
                wms.add_unlisted_billing_line(new)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::world::{World, WorldSpec};
    use crate::sandbox::world_orders::generate_orders;

    const NOW: i64 = 1_800_000_000_000;

    fn billing(n_orders: usize) -> (Vec<WorldOrder>, WorldBilling) {
        let world = World::generate(&WorldSpec {
            skus: 40,
            orders: n_orders,
            ..WorldSpec::default()
        });
        let orders = generate_orders(&world, NOW);
        let tz: Tz = "Europe/Moscow".parse().unwrap();
        let b = generate_billing(&orders, world.spec.seed, world.spec.days, NOW, tz);
        (orders, b)
    }

    #[test]
    fn the_same_orders_and_now_give_the_same_billing() {
        let (_, a) = billing(30);
        let (_, b) = billing(30);
        assert_eq!(a.lines, b.lines);
        assert_eq!(a.orders, b.orders);
    }

    #[test]
    fn every_drift_is_on_the_drift_day_and_real() {
        let (orders, b) = billing(12);
        let tz: Tz = "Europe/Moscow".parse().unwrap();
        let (y0, y1) = (at(tz, b.drift_day, 0), at(tz, b.drift_day, 24));
        for drift in [
            BillingDrift::ChargeForUnknownOrder,
            BillingDrift::DuplicateCharge,
            BillingDrift::ChargeForCancelledOrder,
            BillingDrift::AmountOffTariff,
            BillingDrift::BalanceGap,
        ] {
            let hits: Vec<_> = b.lines.iter().filter(|l| l.drift == drift).collect();
            assert_eq!(hits.len(), 1, "{drift:?}");
            assert!(
                (y0..y1).contains(&hits[0].date),
                "{drift:?} on the drift day"
            );
        }
        let missing = b
            .order_without_charge
            .clone()
            .expect("an order without charge");
        let f = &b.orders[&missing];
        assert!(f
            .shipped_at
            .is_some_and(|s| (y0 * 1000..y1 * 1000).contains(&s)));
        assert!(!b
            .lines
            .iter()
            .any(|l| l.kind == kind::ASSEMBLY
                && l.foreign_order_id.as_deref() == Some(missing.as_str())));
        // The cancelled order was cancelled before its charge and never shipped.
        let charge = b
            .lines
            .iter()
            .find(|l| l.drift == BillingDrift::ChargeForCancelledOrder)
            .unwrap();
        let id = charge.foreign_order_id.clone().unwrap();
        let f = &b.orders[&id];
        assert!(f.shipped_at.is_none() && f.cancelled_at.is_some_and(|c| c <= charge.date * 1000));
        // Every shipped order is charged at its shipping time; dates are in the past.
        for o in &orders {
            let f = &b.orders[&o.id];
            if let Some(s) = f.shipped_at {
                assert!(f.created_at <= s && s < NOW, "{}", o.id);
            }
        }
        assert!(b.lines.iter().all(|l| l.date * 1000 < NOW));
        assert!(b.lines.windows(2).all(|w| w[0].date <= w[1].date));
        assert!(b.closing_kop() > 0, "the balance stays positive");
    }

    #[test]
    fn amounts_follow_the_tariffs() {
        let (_, b) = billing(60);
        let tariffs = BillingSection::default();
        for l in b.lines.iter().filter(|l| l.drift == BillingDrift::None) {
            let dt = l
                .foreign_order_id
                .as_ref()
                .map(|id| b.orders[id].delivery_type);
            if let Some(t) = tariffs.tariff(l.kind, dt) {
                assert!(
                    (l.amount_kop.abs() - t.amount_kop).abs() <= t.tolerance_kop,
                    "{l:?}"
                );
            }
        }
        let off = b
            .lines
            .iter()
            .find(|l| l.drift == BillingDrift::AmountOffTariff)
            .unwrap();
        assert_eq!(off.amount_kop, -OFF_TARIFF_KOP);
    }
}
