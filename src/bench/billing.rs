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

/// `n` billing lines (about one shop order per two lines) with a few percent drift
/// per class. Deterministic for a given `n`.
pub fn generate(n: usize) -> Result<Inputs> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let n_orders = (n * 47 / 100).max(1);
    let mut orders = (
        Vec::with_capacity(n_orders),
        Vec::with_capacity(n_orders),
        Vec::with_capacity(n_orders),
        Vec::with_capacity(n_orders),
        Vec::with_capacity(n_orders),
        Vec::with_capacity(n_orders),
    );
    for i in 0..n_orders {
        let roll: u32 = rng.random_range(0..100);
        let cancelled_before = roll == 0;
        orders.0.push(format!("ORD-{i:08}"));
        orders.1.push(if cancelled_before {
            "cancelled"
        } else {
            "completed"
        });
        orders.2.push(cancelled_before);
        orders.3.push(cancelled_before);
        orders
            .4
            .push((!cancelled_before).then(|| FROM + rng.random_range(0..30 * 86_400)));
        orders.5.push(Some(rng.random_range(1..=3i64)));
    }
    let mut lines = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut id = 0i64;
    let mut order = 0usize;
    let mut sum = 0i64;
    while lines.0.len() < n {
        id += 1;
        let roll: u32 = rng.random_range(0..100);
        let o = order % n_orders;
        let foreign = match roll {
            0 => Some(format!("UNKNOWN-{id}")),
            1 => None,
            _ => Some(orders.0[o].clone()),
        };
        let (k, amount) = match roll {
            // A second assembly charge for the previous order.
            2 => (kind::ASSEMBLY, -5_000),
            3 => (kind::TOP_UP, rng.random_range(100_000..10_000_000)),
            4..=49 => (kind::ASSEMBLY, if roll == 4 { -5_900 } else { -5_000 }),
            _ => {
                let dt = orders.5[o].unwrap_or(1);
                let base = [25_000, 30_000, 27_000][(dt as usize - 1) % 3];
                (kind::DELIVERY, -(base + rng.random_range(-50..=50)))
            }
        };
        let foreign = if roll == 2 {
            Some(orders.0[o.saturating_sub(1)].clone())
        } else {
            foreign
        };
        if k == kind::ASSEMBLY && roll != 2 {
            order += 1;
        }
        if roll == 48 {
            // Skip an order: shipped without any assembly charge.
            order += 1;
        }
        sum += amount;
        lines.0.push(id);
        lines.1.push(foreign.as_ref().map(|_| 7_000_000 + id));
        lines.2.push(foreign);
        lines.3.push(k);
        lines.4.push(FROM + rng.random_range(0..30 * 86_400));
        lines.5.push(amount);
        lines.6.push(format!("line {id}"));
    }
    let lines = df!(
        "id" => lines.0,
        "wms_order_id" => lines.1,
        "foreign_order_id" => lines.2,
        "kind" => lines.3,
        "date" => lines.4,
        "amount_kop" => lines.5,
        "comment" => lines.6,
    )?;
    let shop_orders = df!(
        "order_id" => orders.0,
        "status" => orders.1,
        "cancelled" => orders.2,
        "cancelled_before_picking" => orders.3,
        "shipped_at" => orders.4,
        "delivery_type" => orders.5,
    )?;
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
