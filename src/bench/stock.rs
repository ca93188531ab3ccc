//! Figure 1: the pure stock reconcile, three frames → classified frame.

use anyhow::Result;
use polars::prelude::*;
use std::path::Path;

use super::synthetic::synthetic_stock;
use super::{csvout, timed_runs, CaseResult};
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
    let timed = timed_runs(repeat, || {
        Ok(classify_stock(&inputs.wms, &inputs.crm, &inputs.shop)?)
    })?;
    let out = timed.last.unwrap_or_default();
    let counts = count_by_class(&out)?;
    Ok(
        CaseResult::new("stock", n, rows_in, out.height(), timed.seconds)
            .with_memory(timed.input_mib, timed.peak_mib)
            .with_counts(counts),
    )
}
