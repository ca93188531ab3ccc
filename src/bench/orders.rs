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
struct ShopCols {
    id: Vec<String>,
    status: Vec<&'static str>,
    cancelled: Vec<bool>,
    needs: Vec<bool>,
    created: Vec<i64>,
    total: Vec<i64>,
}

#[derive(Default)]
struct WmsCols {
    id: Vec<String>,
    wms_id: Vec<Option<String>>,
    status: Vec<&'static str>,
    stage: Vec<&'static str>,
    track: Vec<Option<String>>,
    changed: Vec<i64>,
    total: Vec<Option<i64>>,
}

#[derive(Default)]
struct CrmCols {
    id: Vec<String>,
    status: Vec<&'static str>,
    shipped: Vec<bool>,
    track: Vec<Option<String>>,
    total: Vec<i64>,
}

#[derive(Default)]
struct ItemCols {
    id: Vec<String>,
    sku: Vec<String>,
    qty: Vec<i64>,
}

#[derive(Default)]
struct Cols {
    shop: ShopCols,
    shop_items: ItemCols,
    wms: WmsCols,
    wms_items: ItemCols,
    crm: CrmCols,
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
            c.shop.id.push(id.clone());
            c.shop
                .status
                .push(if shop_cancelled { "cancelled" } else { "paid" });
            c.shop.cancelled.push(shop_cancelled);
            c.shop.needs.push(true);
            c.shop.created.push(created);
            c.shop.total.push(total);
            for (sku, q) in &goods {
                c.shop_items.id.push(id.clone());
                c.shop_items.sku.push(sku.clone());
                c.shop_items.qty.push(*q);
            }
        }
        if in_wms {
            c.wms.id.push(id.clone());
            c.wms.wms_id.push(Some(format!("{}", 5_000_000 + i)));
            c.wms.status.push(status_of(stage));
            c.wms.stage.push(stage.as_str());
            c.wms.track.push(track.clone());
            c.wms.changed.push(last_change);
            c.wms
                .total
                .push((i % 3 != 0).then_some(if roll == 10 { total + 500 } else { total }));
            if i % 10 != 0 {
                for (l, (sku, q)) in goods.iter().enumerate() {
                    let q = if roll == 9 && l == 0 { q + 1 } else { *q };
                    c.wms_items.id.push(id.clone());
                    c.wms_items.sku.push(sku.clone());
                    c.wms_items.qty.push(q);
                }
            }
        }
        if in_crm {
            let crm_status = if roll == 6 { "new" } else { status_of(stage) };
            let crm_shipped = shipped && roll != 4;
            let crm_track = if roll == 5 { None } else { track.clone() };
            c.crm.id.push(id.clone());
            c.crm.status.push(crm_status);
            c.crm.shipped.push(crm_shipped);
            c.crm.track.push(crm_track);
            c.crm
                .total
                .push(if roll == 10 { total - 300 } else { total });
        }
    }
    let shop_orders = df!(
        "order_id" => c.shop.id,
        "shop_status" => c.shop.status,
        "cancelled" => c.shop.cancelled,
        "needs_fulfilment" => c.shop.needs,
        "created_at" => c.shop.created,
        "total_kop" => c.shop.total,
    )?;
    let shop_items = df!(
        "order_id" => c.shop_items.id,
        "sku" => c.shop_items.sku,
        "quantity" => c.shop_items.qty,
    )?;
    let wms_orders = df!(
        "order_id" => c.wms.id,
        "wms_order_id" => c.wms.wms_id,
        "wms_status" => c.wms.status,
        "wms_stage" => c.wms.stage,
        "track" => c.wms.track,
        "last_change_at" => c.wms.changed,
        "total_kop" => c.wms.total,
    )?;
    let wms_items = df!(
        "order_id" => c.wms_items.id,
        "sku" => c.wms_items.sku,
        "quantity" => c.wms_items.qty,
    )?;
    let crm_orders = df!(
        "order_id" => c.crm.id,
        "crm_status" => c.crm.status,
        "crm_shipped" => c.crm.shipped,
        "track" => c.crm.track,
        "total_kop" => c.crm.total,
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
