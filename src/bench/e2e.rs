//! Figure 4: `reconcile stock` end to end against the in-process sandbox with
//! RetailCRM's real limits (10 requests/s, 250 offers a request) and a
//! latency on every request, compared with the lower bound those limits
//! impose: the fewest RetailCRM requests the job can make (every inventory
//! page of 250 offers, plus one upload per 250 changed offers) ÷ 10 per second.
//!
//! The world is the sandbox's seeded world with drift, minus the SKUs the
//! WMS does not know yet (their one-by-one IMSKLAD registration is a first-run
//! cost bounded by IMSKLAD's latency, not by RetailCRM's limits): a nightly
//! run over an established catalogue.

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::{Config, WmsKind};
use crate::connectors::retailcrm::{INVENTORY_PAGE_LIMIT, MAX_OFFERS_PER_UPLOAD};
use crate::db::Db;
use crate::jobs::Context;
use crate::sandbox::world::{StockDrift, World, WorldSpec};
use crate::sandbox::{SandboxOptions, SandboxSet};
use crate::shop::{Queries, Shop};

/// RetailCRM's documented limit, requests per second.
pub const CRM_RATE_PER_SEC: usize = 10;

/// Figure 4 for one size.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct E2eResult {
    /// SKUs in the world.
    pub skus: usize,
    /// Latency the sandbox added to every request, ms.
    pub latency_ms: u64,
    /// Wall time of the whole job (read, classify, guard, apply, report), s.
    pub seconds: f64,
    /// RetailCRM offers (what the inventory pages cover).
    pub crm_offers: usize,
    /// Offers whose quantity the job uploaded.
    pub crm_changed: usize,
    /// Inventory page requests made.
    pub crm_reads: usize,
    /// Upload requests made.
    pub crm_uploads: usize,
    /// Other RetailCRM requests.
    pub crm_other: usize,
    /// Requests answered 503 (over the limit); must be 0.
    pub crm_rejected: usize,
    /// Most RetailCRM requests that arrived within any one second; must be ≤ 10.
    pub crm_max_per_second: usize,
    /// IMSKLAD requests made (stock reads in batches, concurrently).
    pub wms_requests: usize,
    /// ceil(offers / 250) + ceil(changed / 250).
    pub min_requests: usize,
    /// `min_requests / 10`, s.
    pub lower_bound_s: f64,
    /// `seconds / lower_bound_s`.
    pub ratio: f64,
    /// First to last RetailCRM request answered, s.
    pub crm_span_s: f64,
    /// First to last inventory page (arrivals at the sandbox), s.
    pub reads_s: f64,
    /// Last inventory page to first upload: classification, guards, the
    /// stock snapshot and the journal, s.
    pub between_s: f64,
    /// First to last upload, s.
    pub uploads_s: f64,
    /// The job's status.
    pub status: String,
}

/// Runs the stock job once against a fresh sandbox world of `skus` SKUs.
pub async fn run(skus: usize, latency_ms: u64, work: &Path) -> Result<E2eResult> {
    super::in_scratch(work, &format!("e2e-{skus}"), |dir| async move {
        measure(skus, latency_ms, &dir).await
    })
    .await
}

/// A started sandbox seeded with the stock world of `skus` SKUs (the SKUs
/// the WMS does not know yet left out), the shop and mapping databases under
/// `dir`, and the configuration to run jobs against it: `(sandbox, world,
/// config, CRM offers)`.
pub(super) async fn stock_world(
    skus: usize,
    latency_ms: u64,
    dir: &Path,
) -> Result<(SandboxSet, World, Config, usize)> {
    let set = SandboxSet::start(&SandboxOptions {
        latency: Duration::from_millis(latency_ms),
        rate_limits: true,
        ..SandboxOptions::default()
    })
    .await
    .context("starting the sandbox")?;
    let mut world = World::generate(&WorldSpec {
        seed: 7,
        skus,
        orders: 0,
        days: 1,
        drift: true,
    });
    world
        .skus
        .retain(|s| !matches!(s.drift, StockDrift::MissingInWms | StockDrift::Unmapped));
    world.seed_servers(&set)?;
    let state_url = format!("sqlite://{}", dir.join("state.db").display());
    let shop_url = format!("sqlite://{}", dir.join("shop.db").display());
    let mut config = set.config(
        &state_url,
        &shop_url,
        &dir.join("reports"),
        WmsKind::Imsklad,
    );
    config.safety.max_change_share = 0.9;
    config.retailcrm.rate_per_sec = CRM_RATE_PER_SEC;
    let shop = Shop::new(Db::connect(&shop_url).await?, Queries::builtin());
    world.write_shop(&shop).await?;
    let state = Db::connect_state(&state_url).await?;
    world.write_mapping(&state, &set).await?;
    shop.db().close().await;
    state.close().await;
    let crm_offers = set.retailcrm.lock().offer_count();
    Ok((set, world, config, crm_offers))
}

async fn measure(skus: usize, latency_ms: u64, dir: &Path) -> Result<E2eResult> {
    let (set, _world, config, crm_offers) = stock_world(skus, latency_ms, dir).await?;
    for control in [&set.retailcrm.control, &set.imsklad.control] {
        control.clear_requests();
    }

    let global = super::job_options(dir.join("reports"));
    let ctx = Context::open(&config, &global, false).await?;
    let started = Instant::now();
    let summary = crate::jobs::stock::run(&ctx).await;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(e) = &summary.error {
        anyhow::bail!("the stock job failed: {e}");
    }

    let requests = set.retailcrm.control.requests();
    let is_upload = |p: &str| p.ends_with("/store/inventories/upload");
    let is_read = |p: &str| p.ends_with("/store/inventories");
    let crm_reads = requests.iter().filter(|r| is_read(&r.path)).count();
    let crm_uploads = requests.iter().filter(|r| is_upload(&r.path)).count();
    let crm_rejected = requests.iter().filter(|r| r.status == 503).count();
    let crm_span_s = match (requests.first(), requests.last()) {
        (Some(a), Some(b)) => {
            b.instant.duration_since(a.instant).as_secs_f64() + latency_ms as f64 / 1000.0
        }
        _ => 0.0,
    };
    let span = |filter: &dyn Fn(&str) -> bool| {
        let mut it = requests
            .iter()
            .filter(|r| filter(&r.path))
            .map(|r| r.instant);
        let first = it.next();
        let last = it.last().or(first);
        first.zip(last)
    };
    let reads = span(&|p| is_read(p));
    let uploads = span(&|p| is_upload(p));
    let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
    let reads_s = reads.map_or(0.0, |(a, b)| secs(a, b));
    let uploads_s = uploads.map_or(0.0, |(a, b)| secs(a, b));
    let between_s = match (reads, uploads) {
        (Some((_, last_read)), Some((first_upload, _))) => secs(last_read, first_upload),
        _ => 0.0,
    };
    let crm_changed = summary.counts.get("qty_mismatch_crm").copied().unwrap_or(0) as usize;
    let min_requests = min_requests(crm_offers, crm_changed);
    let lower_bound_s = min_requests as f64 / CRM_RATE_PER_SEC as f64;
    let result = E2eResult {
        skus,
        latency_ms,
        seconds,
        crm_offers,
        crm_changed,
        crm_reads,
        crm_uploads,
        crm_other: requests.len() - crm_reads - crm_uploads,
        crm_rejected,
        crm_max_per_second: set
            .retailcrm
            .control
            .max_requests_per(Duration::from_secs(1)),
        wms_requests: set.imsklad.control.requests().len(),
        min_requests,
        lower_bound_s,
        ratio: super::stats::ratio(seconds, lower_bound_s).unwrap_or(0.0),
        crm_span_s,
        reads_s,
        between_s,
        uploads_s,
        status: summary.status.as_str().to_string(),
    };
    ctx.state.close().await;
    set.stop().await;
    Ok(result)
}

/// The fewest RetailCRM requests a stock run can make: every inventory page
/// (at least one) and one upload per 250 changed offers.
pub fn min_requests(offers: usize, changed: usize) -> usize {
    offers.div_ceil(INVENTORY_PAGE_LIMIT as usize).max(1) + changed.div_ceil(MAX_OFFERS_PER_UPLOAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_requests() {
        assert_eq!(min_requests(0, 0), 1);
        assert_eq!(min_requests(250, 0), 1);
        assert_eq!(min_requests(251, 1), 3);
        assert_eq!(min_requests(100_000, 5_001), 400 + 21);
    }
}
