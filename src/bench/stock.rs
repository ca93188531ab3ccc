//! Figure 1: the pure stock reconcile, three frames → classified frame.

use anyhow::Result;
use polars::prelude::*;
use std::path::Path;
use std::time::Instant;

use super::synthetic::synthetic_stock;
use super::{csvout, memory, CaseResult};
use crate::reconcile::stock::{classify_stock, count_by_class};

/// The seed of every generated stock world, so Rust and the baselines see the same data.
pub const SEED: u64 = 20_240_901;

/// The generated inputs of `n` SKUs.
pub struct Inputs {
    /// WMS frame.
    pub wms: DataFrame,
    /// CRM frame.
    pub crm: DataFrame,
    /// Shop frame.
    pub shop: DataFrame,
}

/// Generates the inputs of `n` SKUs (sorted by SKU, as a connector or an
/// `ORDER BY sku` query delivers them).
pub fn generate(n: usize) -> Result<Inputs> {
    let (wms, crm, shop) = synthetic_stock(n, SEED)?;
    Ok(Inputs { wms, crm, shop })
}

/// Writes `wms.csv`, `crm.csv` and `shop.csv` into `dir` for the baselines.
pub fn write_csv(inputs: &Inputs, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    csvout::write_frame(&inputs.wms, &dir.join("wms.csv"))?;
    csvout::write_frame(&inputs.crm, &dir.join("crm.csv"))?;
    csvout::write_frame(&inputs.shop, &dir.join("shop.csv"))?;
    Ok(())
}

/// Generates `n` SKUs, then times `repeat` runs of [`classify_stock`] with
/// the peak memory of the classification (inputs included).
pub fn case(n: usize, repeat: usize, csv_dir: Option<&Path>) -> Result<CaseResult> {
    let inputs = generate(n)?;
    if let Some(dir) = csv_dir {
        write_csv(&inputs, dir)?;
    }
    let rows_in = inputs.wms.height() + inputs.crm.height() + inputs.shop.height();
    let input_mib = memory::rss_mib();
    memory::reset_peak();
    let mut seconds = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat.max(1) {
        // The previous output is dropped before the next run, so the peak is one run's.
        drop(last.take());
        let started = Instant::now();
        let out = classify_stock(&inputs.wms, &inputs.crm, &inputs.shop)?;
        seconds.push(started.elapsed().as_secs_f64());
        last = Some(out);
    }
    let peak_mib = memory::peak_mib();
    let out = last.unwrap_or_default();
    let counts = count_by_class(&out)?;
    Ok(CaseResult::new("stock", n, rows_in, out.height(), seconds)
        .with_memory(input_mib, peak_mib)
        .with_counts(counts))
}
