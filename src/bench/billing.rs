//! Figure 2b: the pure billing reconcile on generated billing lines.

use anyhow::Result;
use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

use super::{csvout, timed_runs, CaseResult};
use crate::reconcile::billing::{classify_billing, kind, BillingContext};

/// Seed of the generated billing period.
pub const SEED: u64 = 20_240_903;
/// Period start (unix s).
pub const FROM: i64 = 1_750_000_000;
/// Period end (unix s, exclusive).
pub const TO: i64 = FROM + 30 * 86_400;

/// The generated billing frames and the period's balance figures.
pub struct Inputs {
    /// `lines`
    pub lines: DataFrame,
    /// `shop_orders`
    pub shop_orders: DataFrame,
    /// `tariffs`
    pub tariffs: DataFrame,
    /// The period.
    pub context: BillingContext,
}

/// The generated shop orders, column by column.
struct OrderCols {
    order_id: Vec<String>,
    status: Vec<&'static str>,
    cancelled: Vec<bool>,
    cancelled_before_picking: Vec<bool>,
    shipped_at: Vec<Option<i64>>,
    delivery_type: Vec<Option<i64>>,
}

impl OrderCols {
    /// Draws `n_orders` shop orders from `rng`.
    fn generate(rng: &mut StdRng, n_orders: usize) -> Self {
        let mut orders = OrderCols {
            order_id: Vec::with_capacity(n_orders),
            status: Vec::with_capacity(n_orders),
            cancelled: Vec::with_capacity(n_orders),
            cancelled_before_picking: Vec::with_capacity(n_orders),
            shipped_at: Vec::with_capacity(n_orders),
            delivery_type: Vec::with_capacity(n_orders),
        };
        for i in 0..n_orders {
            let roll: u32 = rng.random_range(0..100);
            let cancelled_before = roll == 0;
            orders.order_id.push(format!("ORD-{i:08}"));
            orders.status.push(if cancelled_before {
                "cancelled"
            } else {
                "completed"
            });
            orders.cancelled.push(cancelled_before);
            orders.cancelled_before_picking.push(cancelled_before);
            orders
                .shipped_at
                .push((!cancelled_before).then(|| FROM + rng.random_range(0..30 * 86_400)));
            orders.delivery_type.push(Some(rng.random_range(1..=3i64)));
        }
        orders
    }

    /// The `shop_orders` frame.
    fn finish(self) -> Result<DataFrame> {
        Ok(df!(
            "order_id" => self.order_id,
            "status" => self.status,
            "cancelled" => self.cancelled,
            "cancelled_before_picking" => self.cancelled_before_picking,
            "shipped_at" => self.shipped_at,
            "delivery_type" => self.delivery_type,
        )?)
    }
}

/// The generated billing lines, column by column, and their amounts' sum.
struct LineCols {
    id: Vec<i64>,
    wms_order_id: Vec<Option<i64>>,
    foreign_order_id: Vec<Option<String>>,
    kind: Vec<i64>,
    date: Vec<i64>,
    amount_kop: Vec<i64>,
    comment: Vec<String>,
    sum: i64,
}

impl LineCols {
    /// Draws `n` billing lines from `rng` over `orders`, mostly one assembly
    /// and one delivery charge per order, in order.
    fn generate(rng: &mut StdRng, n: usize, orders: &OrderCols) -> Self {
        let mut lines = LineCols {
            id: Vec::with_capacity(n),
            wms_order_id: Vec::with_capacity(n),
            foreign_order_id: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            date: Vec::with_capacity(n),
            amount_kop: Vec::with_capacity(n),
            comment: Vec::with_capacity(n),
            sum: 0,
        };
        let n_orders = orders.order_id.len();
        let mut id = 0i64;
        let mut order = 0usize;
        while lines.id.len() < n {
            id += 1;
            let roll: u32 = rng.random_range(0..100);
            let o = order % n_orders;
            let (k, amount) = charge(rng, roll, orders.delivery_type[o]);
            let foreign = match roll {
                0 => Some(format!("UNKNOWN-{id}")),
                1 => None,
                // A second assembly charge for the previous order.
                2 => Some(orders.order_id[o.saturating_sub(1)].clone()),
                _ => Some(orders.order_id[o].clone()),
            };
            if k == kind::ASSEMBLY && roll != 2 {
                order += 1;
            }
            if roll == 48 {
                // Skip an order: shipped without any assembly charge.
                order += 1;
            }
            lines.push(rng, id, foreign, k, amount);
        }
        lines
    }

    /// Appends line `id` (its date drawn from `rng`).
    fn push(&mut self, rng: &mut StdRng, id: i64, foreign: Option<String>, k: i64, amount: i64) {
        self.sum += amount;
        self.id.push(id);
        self.wms_order_id
            .push(foreign.as_ref().map(|_| 7_000_000 + id));
        self.foreign_order_id.push(foreign);
        self.kind.push(k);
        self.date.push(FROM + rng.random_range(0..30 * 86_400));
        self.amount_kop.push(amount);
        self.comment.push(format!("line {id}"));
    }

    /// The `lines` frame.
    fn finish(self) -> Result<DataFrame> {
        Ok(df!(
            "id" => self.id,
            "wms_order_id" => self.wms_order_id,
            "foreign_order_id" => self.foreign_order_id,
            "kind" => self.kind,
            "date" => self.date,
            "amount_kop" => self.amount_kop,
            "comment" => self.comment,
        )?)
    }
}

/// The kind and amount of a line with `roll`, for an order of `delivery_type`.
fn charge(rng: &mut StdRng, roll: u32, delivery_type: Option<i64>) -> (i64, i64) {
    match roll {
        // A second assembly charge for the previous order.
        2 => (kind::ASSEMBLY, -5_000),
        3 => (kind::TOP_UP, rng.random_range(100_000..10_000_000)),
        4..=49 => (kind::ASSEMBLY, if roll == 4 { -5_900 } else { -5_000 }),
        _ => {
            let dt = delivery_type.unwrap_or(1);
            let base = [25_000, 30_000, 27_000][(dt as usize - 1) % 3];
            (kind::DELIVERY, -(base + rng.random_range(-50..=50)))
        }
    }
}

/// `n` billing lines (about one shop order per two lines) with a few percent drift
/// per class. Deterministic for a given `n`.
pub fn generate(n: usize) -> Result<Inputs> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let n_orders = (n * 47 / 100).max(1);
    let orders = OrderCols::generate(&mut rng, n_orders);
    let lines = LineCols::generate(&mut rng, n, &orders);
    let sum = lines.sum;
    let lines = lines.finish()?;
    let shop_orders = orders.finish()?;
    let tariffs = df!(
        "kind" => [kind::ASSEMBLY, kind::DELIVERY, kind::DELIVERY, kind::DELIVERY],
        "delivery_type" => [None, Some(1i64), Some(2), None],
        "expected_kop" => [5_000i64, 25_000, 30_000, 27_000],
        "tolerance_kop" => [0i64, 40, 40, 500],
    )?;
    let context = BillingContext {
        from: FROM,
        to: TO,
        current_balance_kop: 1_000_000_000 + sum,
        change_of_balance_kop: sum - 1_000,
        previous_closing_kop: Some(1_000_000_000),
    };
    Ok(Inputs {
        lines,
        shop_orders,
        tariffs,
        context,
    })
}

/// Writes the three frames as CSV and the period as `context.json` into `dir`.
pub fn write_csv(inputs: &Inputs, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    csvout::write_frame(&inputs.lines, &dir.join("lines.csv"))?;
    csvout::write_frame(&inputs.shop_orders, &dir.join("shop_orders.csv"))?;
    csvout::write_frame(&inputs.tariffs, &dir.join("tariffs.csv"))?;
    let c = &inputs.context;
    let context = json!({
        "from": c.from,
        "to": c.to,
        "current_balance_kop": c.current_balance_kop,
        "change_of_balance_kop": c.change_of_balance_kop,
        "previous_closing_kop": c.previous_closing_kop,
    });
    std::fs::write(dir.join("context.json"), context.to_string())?;
    Ok(())
}

/// Generates `n` lines and times `repeat` runs of [`classify_billing`]. The
/// counts are `totals_by_class`' (a line with two classes counts under each).
pub fn case(n: usize, repeat: usize, csv_dir: Option<&Path>) -> Result<CaseResult> {
    let inputs = generate(n)?;
    if let Some(dir) = csv_dir {
        write_csv(&inputs, dir)?;
    }
    let rows_in = inputs.lines.height() + inputs.shop_orders.height() + inputs.tariffs.height();
    let timed = timed_runs(repeat, || {
        Ok(classify_billing(
            &inputs.lines,
            &inputs.shop_orders,
            &inputs.tariffs,
            &inputs.context,
        )?)
    })?;
    let (rows_out, counts) = match timed.last {
        Some(out) => (
            out.lines.height() + out.missing_charges.height(),
            out.totals_by_class
                .into_iter()
                .map(|(name, count, _)| (name, count.max(0) as u64))
                .collect(),
        ),
        None => (0, BTreeMap::new()),
    };
    Ok(
        CaseResult::new("billing", n, rows_in, rows_out, timed.seconds)
            .with_memory(timed.input_mib, timed.peak_mib)
            .with_counts(counts),
    )
}
