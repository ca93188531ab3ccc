//! Figure 6: the stock job's delta mode end to end, beside the full run it
//! follows, in the same sandbox world (RetailCRM's real limits, a latency on
//! every request, its filtered reads indexed).
//!
//! The world is figure 4's (an established catalogue: no SKU waits for WMS
//! registration). A full run brings it in line and records what the CRM
//! holds; then 1 % of the SKUs drift in the WMS and a delta run corrects
//! them. The delta run's minimum RetailCRM requests are one filtered read per
//! batch of moved offers (250 ids fit a URL under 8 KB) plus one upload per
//! 250 changed offers; the rest of the run is bounded by the WMS read
//! (IMSKLAD `get_stock` in batches of `[imsklad] stock_batch`,
//! `[imsklad] concurrency` at once).

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

use super::e2e::{min_requests, stock_world, CRM_RATE_PER_SEC};
use crate::config::StockMode;
use crate::connectors::retailcrm::{INVENTORY_PAGE_LIMIT, MAX_OFFERS_PER_UPLOAD};
use crate::jobs::Context;
use crate::sandbox::common::RecordedRequest;
use crate::sandbox::world::StockDrift;
use crate::sandbox::SandboxSet;

/// Share of the SKUs whose WMS figure moves between the full and the delta run.
pub const DRIFT_SHARE: f64 = 0.01;

/// One run's RetailCRM and IMSKLAD traffic.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RunTraffic {
    /// Wall time of the whole job, s.
    pub seconds: f64,
    /// Inventory reads (pages or filtered batches).
    pub crm_reads: usize,
    /// Upload requests.
    pub crm_uploads: usize,
    /// Other RetailCRM requests.
    pub crm_other: usize,
    /// The fewest RetailCRM requests this run could make.
    pub min_requests: usize,
    /// Time in RetailCRM requests, s: first to last answer of the reads,
    /// plus the same of the uploads (the local work between them, a stock
    /// snapshot and the journal, is not RetailCRM's).
    pub crm_s: f64,
    /// Requests answered 503 (over the limit).
    pub crm_rejected: usize,
    /// Most RetailCRM requests within any one second.
    pub crm_max_per_second: usize,
    /// IMSKLAD requests.
    pub wms_requests: usize,
    /// First IMSKLAD request to the last answer, s.
    pub wms_s: f64,
    /// Offers uploaded.
    pub crm_changed: usize,
    /// The job's status.
    pub status: String,
}

/// Figure 6 for one size.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct DeltaResult {
    /// SKUs in the world.
    pub skus: usize,
    /// Latency on every request, ms.
    pub latency_ms: u64,
    /// The full run.
    pub full: RunTraffic,
    /// The full run's lower bound (`min_requests / 10`), s.
    pub full_bound_s: f64,
    /// SKUs whose WMS figure moved before the delta run.
    pub drifted: usize,
    /// Offers the delta run found moved.
    pub moved: usize,
    /// The delta run.
    pub delta: RunTraffic,
    /// `full.seconds / delta.seconds`.
    pub speedup: f64,
}

fn traffic(set: &SandboxSet, latency_ms: u64, seconds: f64, status: &str) -> RunTraffic {
    let crm = set.retailcrm.control.requests();
    let wms = set.imsklad.control.requests();
    let span = |r: &[&RecordedRequest]| match (r.first(), r.last()) {
        (Some(a), Some(b)) => {
            b.instant.duration_since(a.instant).as_secs_f64() + latency_ms as f64 / 1000.0
        }
        _ => 0.0,
    };
    let of = |f: &dyn Fn(&str) -> bool| -> Vec<&RecordedRequest> {
        crm.iter().filter(|r| f(&r.path)).collect()
    };
    let crm_s = span(&of(&|p| p.ends_with("/store/inventories")))
        + span(&of(&|p| p.ends_with("/store/inventories/upload")));
    let reads = crm
        .iter()
        .filter(|r| r.path.ends_with("/store/inventories"))
        .count();
    let uploads = crm
        .iter()
        .filter(|r| r.path.ends_with("/store/inventories/upload"))
        .count();
    RunTraffic {
        seconds,
        crm_reads: reads,
        crm_uploads: uploads,
        crm_other: crm.len() - reads - uploads,
        min_requests: 0,
        crm_s,
        crm_rejected: crm.iter().filter(|r| r.status == 503).count(),
        crm_max_per_second: set
            .retailcrm
            .control
            .max_requests_per(Duration::from_secs(1)),
        wms_requests: wms.len(),
        wms_s: span(&wms.iter().collect::<Vec<_>>()),
        crm_changed: 0,
        status: status.to_string(),
    }
}

/// Runs the full and the delta run against a fresh world of `skus` SKUs.
pub async fn run(skus: usize, latency_ms: u64, work: &Path) -> Result<DeltaResult> {
    super::in_scratch(work, &format!("delta-{skus}"), |dir| async move {
        measure(skus, latency_ms, &dir).await
    })
    .await
}

async fn measure(skus: usize, latency_ms: u64, dir: &Path) -> Result<DeltaResult> {
    let (set, world, mut config, crm_offers) = stock_world(skus, latency_ms, dir).await?;
    let global = super::job_options(dir.join("reports"));
    let clear = |set: &SandboxSet| {
        for control in [&set.retailcrm.control, &set.imsklad.control] {
            control.clear_requests();
        }
    };

    // The full run.
    clear(&set);
    config.stock.mode = StockMode::Full;
    let ctx = Context::open(&config, &global, false).await?;
    let started = Instant::now();
    let full = crate::jobs::stock::run(&ctx).await;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(e) = &full.error {
        anyhow::bail!("the full stock run failed: {e}");
    }
    ctx.state.close().await;
    let mut full_traffic = traffic(&set, latency_ms, seconds, full.status.as_str());
    full_traffic.crm_changed = full.counts.get("qty_mismatch_crm").copied().unwrap_or(0) as usize;
    full_traffic.min_requests = min_requests(crm_offers, full_traffic.crm_changed);

    // 1 % of the SKUs move in the WMS (SKUs every source knows, no other drift).
    let plain: Vec<&str> = world
        .skus
        .iter()
        .filter(|s| s.drift == StockDrift::None && s.crm_quantity.is_some())
        .map(|s| s.sku.as_str())
        .collect();
    let target = ((world.skus.len() as f64 * DRIFT_SHARE).round() as usize).max(1);
    let step = (plain.len() / target).max(1);
    let drifted = {
        let mut wms = set.imsklad.lock();
        let mut n = 0;
        for sku in plain.iter().step_by(step).take(target) {
            let Some(id) = wms.good_by_partner(sku).map(|g| g.wms_id) else {
                continue;
            };
            let (stock, reserved) = wms.stock_of(id).unwrap_or((0, 0));
            wms.set_stock(id, stock + 3, reserved)?;
            n += 1;
        }
        n
    };

    // The delta run.
    clear(&set);
    config.stock.mode = StockMode::Delta;
    let ctx = Context::open(&config, &global, false).await?;
    let started = Instant::now();
    let delta = crate::jobs::stock::run(&ctx).await;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(e) = &delta.error {
        anyhow::bail!("the delta stock run failed: {e}");
    }
    if delta.extra["mode"] != "delta" {
        anyhow::bail!("the delta run ran as {}", delta.extra["mode"]);
    }
    ctx.state.close().await;
    let moved = delta.extra["delta"]["moved"].as_u64().unwrap_or(0) as usize;
    let mut delta_traffic = traffic(&set, latency_ms, seconds, delta.status.as_str());
    delta_traffic.crm_changed = delta.counts.get("qty_mismatch_crm").copied().unwrap_or(0) as usize;
    delta_traffic.min_requests = moved.div_ceil(INVENTORY_PAGE_LIMIT as usize)
        + delta_traffic.crm_changed.div_ceil(MAX_OFFERS_PER_UPLOAD);
    set.stop().await;
    Ok(DeltaResult {
        skus,
        latency_ms,
        full_bound_s: full_traffic.min_requests as f64 / CRM_RATE_PER_SEC as f64,
        speedup: super::stats::ratio(full_traffic.seconds, delta_traffic.seconds).unwrap_or(0.0),
        full: full_traffic,
        drifted,
        moved,
        delta: delta_traffic,
    })
}

/// One progress line.
pub fn line(r: &DeltaResult) -> String {
    use super::table::{duration, thousands};
    format!(
        "{} SKUs, {} drifted in the WMS: full {} ({} CRM requests, minimum {}), delta {} ({} moved; CRM {} in {} reads + {} uploads, minimum {}; IMSKLAD {} requests in {}), {:.1}× faster",
        thousands(r.skus),
        thousands(r.drifted),
        duration(r.full.seconds),
        r.full.crm_reads + r.full.crm_uploads + r.full.crm_other,
        r.full.min_requests,
        duration(r.delta.seconds),
        thousands(r.moved),
        duration(r.delta.crm_s),
        r.delta.crm_reads,
        r.delta.crm_uploads,
        r.delta.min_requests,
        r.delta.wms_requests,
        duration(r.delta.wms_s),
        r.speedup
    )
}

/// The README table of figure 6 (empty without results).
pub fn markdown(results: &[DeltaResult]) -> String {
    use super::table::{duration, thousands};
    use std::fmt::Write as _;
    let Some(first) = results.first() else {
        return String::new();
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "**6. Delta stock run** (the same sandbox, {} ms latency; a full run, then {:.0} % of the SKUs drift in the WMS and a delta run corrects them; minimum = filtered reads of 250 moved offers + uploads of 250)\n",
        first.latency_ms,
        DRIFT_SHARE * 100.0
    );
    out.push_str("| SKUs | full run | full ÷ its bound | drifted | delta run | × faster | delta CRM time | CRM requests (reads + uploads) | minimum | rejected | IMSKLAD requests | IMSKLAD time |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2}× | {} | {} | {:.1}× | {} | {} ({} + {}) | {} | {} | {} | {} |",
            thousands(r.skus),
            duration(r.full.seconds),
            super::stats::ratio(r.full.seconds, r.full_bound_s).unwrap_or(0.0),
            thousands(r.drifted),
            duration(r.delta.seconds),
            r.speedup,
            duration(r.delta.crm_s),
            r.delta.crm_reads + r.delta.crm_uploads + r.delta.crm_other,
            r.delta.crm_reads,
            r.delta.crm_uploads,
            r.delta.min_requests,
            r.delta.crm_rejected,
            r.delta.wms_requests,
            duration(r.delta.wms_s)
        );
    }
    out.push('\n');
    out
}
