//! The bench data generator: deterministic synthetic stock sources.

use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::reconcile::input::{polars_ctx, Result};

/// Deterministic synthetic sources of `n` SKUs with a few percent drift per
/// class, for tests and benchmarks: `(wms, crm, shop)`, each sorted by SKU
/// as a connector or an `ORDER BY sku` query delivers them.
///
/// Drift: ~2 % shop SKUs unknown to the WMS (half with a mapping row, half
/// without), ~1 % WMS-only SKUs, ~2 % reserved > stock, ~3 % CRM and ~3 %
/// shop quantity mismatches, ~2 % SKUs absent from the CRM.
pub fn synthetic_stock(n: usize, seed: u64) -> Result<(DataFrame, DataFrame, DataFrame)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut wms = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut crm = (Vec::new(), Vec::new(), Vec::new());
    let mut shop = (Vec::new(), Vec::new());
    for i in 0..n {
        let sku = format!("SKU-{i:08}");
        let stock: i64 = rng.random_range(0..500);
        let mut reserved: i64 = rng.random_range(0..=stock / 4);
        let roll: u32 = rng.random_range(0..100);
        let sellable = match roll {
            0 | 1 => None,
            2 | 3 => {
                reserved = stock + rng.random_range(1..5);
                Some(0)
            }
            _ => Some(stock - reserved),
        };
        match (roll, sellable) {
            (0, _) => {
                wms.0.push(sku.clone());
                wms.1.push(None);
                wms.2.push(None);
                wms.3.push(None);
            }
            (1, _) => {}
            _ => {
                wms.0.push(sku.clone());
                wms.1.push(Some(i as i64 + 1_000_000));
                wms.2.push(Some(stock));
                wms.3.push(Some(reserved));
            }
        }
        let base = sellable.unwrap_or(0);
        if !(4..6).contains(&roll) {
            let drift = if (6..9).contains(&roll) {
                rng.random_range(1..10)
            } else {
                0
            };
            crm.0.push(sku.clone());
            crm.1.push(i as i64 + 1);
            crm.2.push(base + drift);
        }
        if roll != 9 {
            let drift = if (10..13).contains(&roll) {
                rng.random_range(1..10)
            } else {
                0
            };
            shop.0.push(sku);
            shop.1.push(base + drift);
        }
    }
    let context = "building synthetic stock frames";
    let wms = df!(
        "sku" => wms.0,
        "wms_id" => wms.1,
        "stock" => wms.2,
        "reserved" => wms.3,
    )
    .map_err(polars_ctx(context))?;
    let crm = df!("sku" => crm.0, "crm_offer_id" => crm.1, "quantity" => crm.2)
        .map_err(polars_ctx(context))?;
    let shop = df!("sku" => shop.0, "quantity" => shop.1).map_err(polars_ctx(context))?;
    Ok((wms, crm, shop))
}
