//! Figure 2a: the pure order reconcile on generated orders.

use anyhow::Result;
use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

use super::{csvout, timed_runs, CaseResult};
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

/// A text column under construction (straight into a Polars builder, so the
/// generated strings are not kept twice, as owned strings and in the frame).
fn text(name: &str, n: usize) -> StringChunkedBuilder {
    StringChunkedBuilder::new(name.into(), n)
}

struct ShopCols {
    id: StringChunkedBuilder,
    status: Vec<&'static str>,
    cancelled: Vec<bool>,
    needs: Vec<bool>,
    created: Vec<i64>,
    total: Vec<i64>,
}

struct WmsCols {
    id: StringChunkedBuilder,
    wms_id: StringChunkedBuilder,
    status: Vec<&'static str>,
    stage: Vec<&'static str>,
    track: StringChunkedBuilder,
    changed: Vec<i64>,
    total: Vec<Option<i64>>,
}

struct CrmCols {
    id: StringChunkedBuilder,
    status: Vec<&'static str>,
    shipped: Vec<bool>,
    track: StringChunkedBuilder,
    total: Vec<i64>,
}

struct ItemCols {
    id: StringChunkedBuilder,
    sku: StringChunkedBuilder,
    qty: Vec<i64>,
}

impl ItemCols {
    fn new(n: usize) -> Self {
        ItemCols {
            id: text("order_id", n),
            sku: text("sku", n),
            qty: Vec::with_capacity(n),
        }
    }

    fn finish(self) -> Result<DataFrame> {
        let qty = Column::new("quantity".into(), self.qty);
        let columns = vec![
            self.id.finish().into_column(),
            self.sku.finish().into_column(),
            qty,
        ];
        Ok(DataFrame::new(qty_len(&columns), columns)?)
    }
}

/// The height of generated columns (all the same length).
fn qty_len(columns: &[Column]) -> usize {
    columns.first().map_or(0, Column::len)
}

struct Cols {
    shop: ShopCols,
    shop_items: ItemCols,
    wms: WmsCols,
    wms_items: ItemCols,
    crm: CrmCols,
}

impl Cols {
    fn new(n: usize) -> Self {
        Cols {
            shop: ShopCols {
                id: text("order_id", n),
                status: Vec::with_capacity(n),
                cancelled: Vec::with_capacity(n),
                needs: Vec::with_capacity(n),
                created: Vec::with_capacity(n),
                total: Vec::with_capacity(n),
            },
            shop_items: ItemCols::new(n + n / 2),
            wms: WmsCols {
                id: text("order_id", n),
                wms_id: text("wms_order_id", n),
                status: Vec::with_capacity(n),
                stage: Vec::with_capacity(n),
                track: text("track", n),
                changed: Vec::with_capacity(n),
                total: Vec::with_capacity(n),
            },
            wms_items: ItemCols::new(n + n / 2),
            crm: CrmCols {
                id: text("order_id", n),
                status: Vec::with_capacity(n),
                shipped: Vec::with_capacity(n),
                track: text("track", n),
                total: Vec::with_capacity(n),
            },
        }
    }
}

/// The WMS (and CRM) status of a stage, as [`options`] maps it.
fn status_of(s: Stage) -> &'static str {
    match s {
        Stage::New => "new",
        Stage::Picking => "assembling",
        Stage::Packed => "assembled",
        Stage::Shipped => "send-to-delivery",
        Stage::Delivered => "complete",
        Stage::Cancelled => "cancel-other",
    }
}

/// One generated order with the drift its roll gave it.
struct Order {
    id: String,
    roll: u32,
    stage: Stage,
    goods: Vec<(String, i64)>,
    total: i64,
    created: i64,
    shop_cancelled: bool,
    in_shop: bool,
    in_wms: bool,
    in_crm: bool,
    shipped: bool,
    track: Option<String>,
    last_change: i64,
}

impl Order {
    /// Draws order `i` from `rng` (the order of the draws fixes the data).
    fn draw(rng: &mut StdRng, i: usize) -> Order {
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
        Order {
            id,
            roll,
            stage,
            goods,
            total,
            created,
            shop_cancelled,
            in_shop,
            in_wms,
            in_crm,
            shipped,
            track,
            last_change,
        }
    }
}

impl Cols {
    /// Appends order `o` to the shop's orders and lines.
    fn push_shop(&mut self, o: &Order) {
        let c = self;
        c.shop.id.append_value(&o.id);
        c.shop.status.push(if o.shop_cancelled {
            "cancelled"
        } else {
            "paid"
        });
        c.shop.cancelled.push(o.shop_cancelled);
        c.shop.needs.push(true);
        c.shop.created.push(o.created);
        c.shop.total.push(o.total);
        for (sku, q) in &o.goods {
            c.shop_items.id.append_value(&o.id);
            c.shop_items.sku.append_value(sku);
            c.shop_items.qty.push(*q);
        }
    }

    /// Appends order `o` (the `i`th) to the WMS's orders and lines.
    fn push_wms(&mut self, i: usize, o: &Order) {
        let c = self;
        c.wms.id.append_value(&o.id);
        c.wms.wms_id.append_value(format!("{}", 5_000_000 + i));
        c.wms.status.push(status_of(o.stage));
        c.wms.stage.push(o.stage.as_str());
        c.wms.track.append_option(o.track.as_deref());
        c.wms.changed.push(o.last_change);
        c.wms.total.push((i % 3 != 0).then_some(if o.roll == 10 {
            o.total + 500
        } else {
            o.total
        }));
        if i % 10 != 0 {
            for (l, (sku, q)) in o.goods.iter().enumerate() {
                let q = if o.roll == 9 && l == 0 { q + 1 } else { *q };
                c.wms_items.id.append_value(&o.id);
                c.wms_items.sku.append_value(sku);
                c.wms_items.qty.push(q);
            }
        }
    }

    /// Appends order `o` to the CRM's orders.
    fn push_crm(&mut self, o: &Order) {
        let c = self;
        let crm_status = if o.roll == 6 {
            "new"
        } else {
            status_of(o.stage)
        };
        let crm_shipped = o.shipped && o.roll != 4;
        let crm_track = if o.roll == 5 { None } else { o.track.clone() };
        c.crm.id.append_value(&o.id);
        c.crm.status.push(crm_status);
        c.crm.shipped.push(crm_shipped);
        c.crm.track.append_option(crm_track.as_deref());
        c.crm
            .total
            .push(if o.roll == 10 { o.total - 300 } else { o.total });
    }

    /// The five frames.
    fn finish(self) -> Result<Inputs> {
        let c = self;
        let frame = |columns: Vec<Column>| -> Result<DataFrame> {
            Ok(DataFrame::new(qty_len(&columns), columns)?)
        };
        let shop_orders = frame(vec![
            c.shop.id.finish().into_column(),
            Column::new("shop_status".into(), c.shop.status),
            Column::new("cancelled".into(), c.shop.cancelled),
            Column::new("needs_fulfilment".into(), c.shop.needs),
            Column::new("created_at".into(), c.shop.created),
            Column::new("total_kop".into(), c.shop.total),
        ])?;
        let shop_items = c.shop_items.finish()?;
        let wms_orders = frame(vec![
            c.wms.id.finish().into_column(),
            c.wms.wms_id.finish().into_column(),
            Column::new("wms_status".into(), c.wms.status),
            Column::new("wms_stage".into(), c.wms.stage),
            c.wms.track.finish().into_column(),
            Column::new("last_change_at".into(), c.wms.changed),
            Column::new("total_kop".into(), c.wms.total),
        ])?;
        let wms_items = c.wms_items.finish()?;
        let crm_orders = frame(vec![
            c.crm.id.finish().into_column(),
            Column::new("crm_status".into(), c.crm.status),
            Column::new("crm_shipped".into(), c.crm.shipped),
            c.crm.track.finish().into_column(),
            Column::new("total_kop".into(), c.crm.total),
        ])?;
        Ok(Inputs {
            shop_orders,
            shop_items,
            wms_orders,
            wms_items,
            crm_orders,
        })
    }
}

/// `n` orders (about 1.5 lines each) with a few percent drift per class,
/// sorted by order id. Deterministic for a given `n`.
pub fn generate(n: usize) -> Result<Inputs> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let opts = options();
    debug_assert!(Stage::ALL
        .iter()
        .all(|s| opts.stage_status.get(s).map(String::as_str) == Some(status_of(*s))));
    let mut c = Cols::new(n);
    for i in 0..n {
        let order = Order::draw(&mut rng, i);
        if order.in_shop {
            c.push_shop(&order);
        }
        if order.in_wms {
            c.push_wms(i, &order);
        }
        if order.in_crm {
            c.push_crm(&order);
        }
    }
    c.finish()
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
    let timed = timed_runs(repeat, || {
        Ok(classify_orders(
            &inputs.shop_orders,
            &inputs.shop_items,
            &inputs.wms_orders,
            &inputs.wms_items,
            &inputs.crm_orders,
            &opts,
        )?)
    })?;
    let out = timed.last.unwrap_or_default();
    let mut counts = BTreeMap::new();
    for name in out.column("class")?.str()?.iter().flatten() {
        *counts.entry(name.to_owned()).or_insert(0u64) += 1;
    }
    Ok(
        CaseResult::new("orders", n, rows_in, out.height(), timed.seconds)
            .with_memory(timed.input_mib, timed.peak_mib)
            .with_counts(counts),
    )
}
