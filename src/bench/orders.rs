//! Figure 2a: the pure order reconcile on generated orders.

use anyhow::Result;
use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::{csvout, memory, CaseResult};
use crate::reconcile::orders::{classify_orders, OrdersOptions, Stage};

/// Seed of the generated orders.
pub const SEED: u64 = 20_240_902;
/// "Now" of the generated world, unix ms.
pub const NOW_MS: i64 = 1_760_000_000_000;
const HOUR: i64 = 3_600_000;

/// The generated order frames.
pub struct Inputs {
    /// `shop_orders`
    pub shop_orders: DataFrame,
    /// `shop_items`
    pub shop_items: DataFrame,
    /// `wms_orders`
    pub wms_orders: DataFrame,
    /// `wms_items`
    pub wms_items: DataFrame,
    /// `crm_orders`
    pub crm_orders: DataFrame,
}

/// The options the bench (and its baselines) classify with.
pub fn options() -> OrdersOptions {
    let stage_status = [
        (Stage::New, "new"),
        (Stage::Picking, "assembling"),
        (Stage::Packed, "assembled"),
        (Stage::Shipped, "send-to-delivery"),
        (Stage::Delivered, "complete"),
        (Stage::Cancelled, "cancel-other"),
    ]
    .into_iter()
    .map(|(s, c)| (s, c.to_string()))
    .collect::<BTreeMap<_, _>>();
    OrdersOptions {
        now_ms: NOW_MS,
        stuck_hours: 48,
        amount_tolerance_kop: 100,
        stage_status,
    }
}

#[derive(Default)]
struct Cols {
    shop: (Vec<String>, Vec<&'static str>, Vec<bool>, Vec<bool>, Vec<i64>, Vec<i64>),
    shop_items: (Vec<String>, Vec<String>, Vec<i64>),
    wms: (
        Vec<String>,
        Vec<Option<String>>,
        Vec<&'static str>,
        Vec<&'static str>,
        Vec<Option<String>>,
        Vec<i64>,
        Vec<Option<i64>>,
    ),
    wms_items: (Vec<String>, Vec<String>, Vec<i64>),
    crm: (Vec<String>, Vec<&'static str>, Vec<bool>, Vec<Option<String>>, Vec<i64>),
}

/// `n` orders (about 1.5 lines each) with a few percent drift per class,
/// sorted by order id. Deterministic for a given `n`.
pub fn generate(n: usize) -> Result<Inputs> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let opts = options();
    let status_of = |s: Stage| -> &'static str {
        match s {
            Stage::New => "new",
            Stage::Picking => "assembling",
            Stage::Packed => "assembled",
            Stage::Shipped => "send-to-delivery",
            Stage::Delivered => "complete",
            Stage::Cancelled => "cancel-other",
        }
    };
    debug_assert!(Stage::ALL
        .iter()
        .all(|s| opts.stage_status.get(s).map(String::as_str) == Some(status_of(*s))));
    let mut c = Cols::default();
    for i in 0..n {
        let id = format!("ORD-{i:08}");
        let roll: u32 = rng.random_range(0..100);
        let mut stage = match rng.random_range(0..10) {
            0 => Stage::New,
            1 => Stage::Picking,
            2 => Stage::Packed,
            3..=6 => Stage::Shipped,
            _ => Stage::Delivered,
        };
        let lines = rng.random_range(1..=2);
        let goods: Vec<(String, i64)> = (0..lines)
            .map(|l| {
                let sku = format!("SKU-{:08}", (i * 7 + l * 13) % 1_000_003);
                (sku, rng.random_range(1..4))
            })
            .collect();
        let total: i64 = rng.random_range(50_000..5_000_000);
        let created = NOW_MS - rng.random_range(1..700) * HOUR;
        let mut shop_cancelled = false;
        let (mut in_shop, mut in_wms, mut in_crm) = (true, true, true);
        match roll {
            0 => in_wms = false,
            1 => {
                shop_cancelled = true;
                stage = Stage::Picking;
            }
            2 => {
                shop_cancelled = true;
                stage = Stage::Shipped;
            }
            3 => stage = Stage::Cancelled,
            7 => in_crm = false,
            8 => in_shop = false,
            _ => {}
        }
        let shipped = stage == Stage::Shipped || stage == Stage::Delivered;
        let track = shipped.then(|| format!("TRK{i:010}"));
        let last_change = if roll == 11 {
            stage = Stage::Packed;
            NOW_MS - 100 * HOUR
        } else {
            NOW_MS - rng.random_range(0..24) * HOUR
        };
        if in_shop {
            c.shop.0.push(id.clone());
            c.shop.1.push(if shop_cancelled { "cancelled" } else { "paid" });
            c.shop.2.push(shop_cancelled);
            c.shop.3.push(true);
            c.shop.4.push(created);
            c.shop.5.push(total);
            for (sku, q) in &goods {
                c.shop_items.0.push(id.clone());
                c.shop_items.1.push(sku.clone());
                c.shop_items.2.push(*q);
            }
        }
        if in_wms {
            c.wms.0.push(id.clone());
            c.wms.1.push(Some(format!("{}", 5_000_000 + i)));
            c.wms.2.push(status_of(stage));
            c.wms.3.push(stage.as_str());
            c.wms.4.push(track.clone());
            c.wms.5.push(last_change);
            c.wms.6.push((i % 3 != 0).then_some(if roll == 10 { total + 500 } else { total }));
            if i % 10 != 0 {
                for (l, (sku, q)) in goods.iter().enumerate() {
                    let q = if roll == 9 && l == 0 { q + 1 } else { *q };
                    c.wms_items.0.push(id.clone());
                    c.wms_items.1.push(sku.clone());
                    c.wms_items.2.push(q);
                }
            }
        }
        if in_crm {
            let crm_status = if roll == 6 { "new" } else { status_of(stage) };
            let crm_shipped = shipped && roll != 4;
            let crm_track = if roll == 5 { None } else { track.clone() };
            c.crm.0.push(id.clone());
            c.crm.1.push(crm_status);
            c.crm.2.push(crm_shipped);
            c.crm.3.push(crm_track);
            c.crm.4.push(if roll == 10 { total - 300 } else { total });
        }
    }
    let shop_orders = df!(
        "order_id" => c.shop.0,
        "shop_status" => c.shop.1,
        "cancelled" => c.shop.2,
        "needs_fulfilment" => c.shop.3,
        "created_at" => c.shop.4,
        "total_kop" => c.shop.5,
    )?;
    let shop_items = df!(
        "order_id" => c.shop_items.0,
        "sku" => c.shop_items.1,
        "quantity" => c.shop_items.2,
    )?;
    let wms_orders = df!(
        "order_id" => c.wms.0,
        "wms_order_id" => c.wms.1,
        "wms_status" => c.wms.2,
        "wms_stage" => c.wms.3,
        "track" => c.wms.4,
        "last_change_at" => c.wms.5,
        "total_kop" => c.wms.6,
    )?;
    let wms_items = df!(
        "order_id" => c.wms_items.0,
        "sku" => c.wms_items.1,
        "quantity" => c.wms_items.2,
    )?;
    let crm_orders = df!(
        "order_id" => c.crm.0,
        "crm_status" => c.crm.1,
        "crm_shipped" => c.crm.2,
        "track" => c.crm.3,
        "total_kop" => c.crm.4,
    )?;
    Ok(Inputs {
        shop_orders,
        shop_items,
        wms_orders,
        wms_items,
        crm_orders,
    })
}

/// Writes the five frames as CSV into `dir`.
pub fn write_csv(inputs: &Inputs, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, df) in [
        ("shop_orders", &inputs.shop_orders),
        ("shop_items", &inputs.shop_items),
        ("wms_orders", &inputs.wms_orders),
        ("wms_items", &inputs.wms_items),
        ("crm_orders", &inputs.crm_orders),
    ] {
        csvout::write_frame(df, &dir.join(format!("{name}.csv")))?;
    }
    Ok(())
}

/// Generates `n` orders and times `repeat` runs of [`classify_orders`].
pub fn case(n: usize, repeat: usize, csv_dir: Option<&Path>) -> Result<CaseResult> {
    let inputs = generate(n)?;
    if let Some(dir) = csv_dir {
        write_csv(&inputs, dir)?;
    }
    let opts = options();
    let rows_in = inputs.shop_orders.height()
        + inputs.shop_items.height()
        + inputs.wms_orders.height()
        + inputs.wms_items.height()
        + inputs.crm_orders.height();
    let input_mib = memory::rss_mib();
    memory::reset_peak();
    let mut seconds = Vec::with_capacity(repeat);
    let mut last: Option<DataFrame> = None;
    for _ in 0..repeat.max(1) {
        drop(last.take());
        let started = Instant::now();
        let out = classify_orders(
            &inputs.shop_orders,
            &inputs.shop_items,
            &inputs.wms_orders,
            &inputs.wms_items,
            &inputs.crm_orders,
            &opts,
        )?;
        seconds.push(started.elapsed().as_secs_f64());
        last = Some(out);
    }
    let peak_mib = memory::peak_mib();
    let out = last.unwrap_or_default();
    let mut counts = BTreeMap::new();
    for name in out.column("class")?.str()?.iter().flatten() {
        *counts.entry(name.to_owned()).or_insert(0u64) += 1;
    }
    Ok(CaseResult::new("orders", n, rows_in, out.height(), seconds)
        .with_memory(input_mib, peak_mib)
        .with_counts(counts))
}
