//! Figure 6: the local work of a stock run. `reconcile stock` end to end at
//! (by default) a million SKUs against the sandbox running as a separate
//! process (`sverka sandbox`, so its own work is not counted here) with no
//! latency and no rate limit, the shop and state databases on the same
//! engine; each phase comes from the job's own timing spans
//! ([`crate::jobs::phases`], the run summary's `phases_s`).
//!
//! Local work: the shop read, this process's CPU time while the WMS and
//! RetailCRM answers arrive (requests and decoding; the wall time there is
//! mostly the sandbox serving), classification and plan, guards, the stock
//! snapshot, the CRM uploads' journal and bookkeeping (their wall time minus
//! the time waiting on RetailCRM's answers), the shop's stock writes and the
//! report.

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::load::{Engine, Scratch};
use crate::config::WmsKind;
use crate::jobs::Context;
use crate::sandbox::{config_for, Locations, SandboxKeys, SandboxUrls};

/// The local phases, in the job's order: (span name, column title).
pub const LOCAL_PHASES: [(&str, &str); 8] = [
    ("shop_read", "shop read"),
    ("wms_crm_read_cpu", "WMS/CRM decode (CPU)"),
    ("classify", "classify"),
    ("guards", "guards"),
    ("snapshot", "snapshot"),
    ("journal", "journal"),
    ("shop_writes", "shop writes"),
    ("report", "report"),
];

/// Figure 6 for one engine.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct LocalResult {
    /// `sqlite` or `postgres` (shop and state databases alike).
    pub engine: String,
    /// SKUs in the world.
    pub skus: usize,
    /// Wall time of the whole job, s.
    pub seconds: f64,
    /// The job's spans (`phases_s`), plus `journal` (CRM uploads minus the
    /// wait for RetailCRM's answers), s.
    pub phases: BTreeMap<String, f64>,
    /// Σ of [`LOCAL_PHASES`], s.
    pub local_s: f64,
    /// Wall time of the WMS and RetailCRM reads (mostly the sandbox serving), s.
    pub read_wall_s: f64,
    /// RetailCRM offers read.
    pub crm_offers: u64,
    /// Offers uploaded.
    pub crm_changed: u64,
    /// Shop quantities corrected.
    pub shop_changed: u64,
    /// Seconds the sandbox took to start and write the shop and state databases (untimed).
    pub setup_s: f64,
    /// The job's status.
    pub status: String,
}

/// Runs the figure for `skus` SKUs on `engine`.
pub async fn run(engine: &Engine, skus: usize, work: &Path) -> Result<LocalResult> {
    let dir = work.join(format!("local-{}-{skus}", engine.name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let shop = Scratch::create(engine, &dir, "local_shop").await?;
    let state = Scratch::create(engine, &dir, "local_state").await?;
    let result = measure(engine, skus, &shop.url, &state.url, &dir).await;
    shop.drop_db().await;
    state.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The URLs a `sverka sandbox` prints, read from its standard output.
async fn sandbox_urls(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> Result<SandboxUrls> {
    let mut urls = SandboxUrls {
        imsklad: String::new(),
        retailcrm: String::new(),
        egon: String::new(),
        imshop: String::new(),
    };
    while let Some(line) = lines.next_line().await? {
        let mut words = line.split_whitespace();
        let (Some(name), Some(url)) = (words.next(), words.next()) else {
            continue;
        };
        match name {
            "IMSKLAD" => urls.imsklad = url.to_string(),
            "RetailCRM" => urls.retailcrm = url.trim_end_matches("/api/v5").to_string(),
            "EGON" => urls.egon = url.to_string(),
            "IMSHOP" => urls.imshop = url.to_string(),
            _ if line.starts_with("Ctrl-C") => return Ok(urls),
            _ => {}
        }
    }
    bail!("the sandbox ended before it printed its URLs")
}

async fn measure(
    engine: &Engine,
    skus: usize,
    shop_url: &str,
    state_url: &str,
    dir: &Path,
) -> Result<LocalResult> {
    let setup = Instant::now();
    let (mut child, urls) = start_sandbox(skus, shop_url, state_url).await?;
    let setup_s = setup.elapsed().as_secs_f64();
    let reports = dir.join("reports");
    let mut config = config_for(
        &urls,
        &SandboxKeys::default(),
        &Locations {
            state_url,
            shop_url,
            report_dir: &reports,
        },
        WmsKind::Imsklad,
    );
    config.safety.max_change_share = 0.9;
    // No client-side limit either: the vendors' limits are not what is measured.
    config.retailcrm.rate_per_sec = 0;
    let global = super::job_options(reports);
    let outcome = run_stock(&config, &global).await;
    let _ = child.kill().await;
    let (summary, seconds) = outcome?;
    if let Some(e) = &summary.error {
        bail!("the stock job failed: {e}");
    }
    let phases = phases_of(&summary);
    let get = |name: &str| phases.get(name).copied().unwrap_or(0.0);
    let local_s = LOCAL_PHASES.iter().map(|(name, _)| get(name)).sum();
    let read_wall_s = get("wms_crm_read");
    let count = |class: &str| summary.counts.get(class).copied().unwrap_or(0);
    Ok(LocalResult {
        engine: engine.name().to_string(),
        skus,
        seconds,
        read_wall_s,
        local_s,
        phases,
        crm_offers: summary
            .extra
            .get("crm_offers")
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        crm_changed: count("qty_mismatch_crm"),
        shop_changed: count("qty_mismatch_shop"),
        setup_s,
        status: summary.status.as_str().to_string(),
    })
}

/// Starts `sverka sandbox` as a child process writing the shop and state
/// databases; returns it with its URLs once it printed them.
async fn start_sandbox(
    skus: usize,
    shop_url: &str,
    state_url: &str,
) -> Result<(tokio::process::Child, SandboxUrls)> {
    let exe = std::env::current_exe().context("finding sverka's own binary")?;
    let mut child = tokio::process::Command::new(exe)
        .args(["sandbox", "--seed", "7", "--orders", "0", "--days", "1"])
        .args(["--latency-ms", "0", "--no-rate-limit", "--established"])
        .args(["--skus", &skus.to_string()])
        .args(["--write-shop", shop_url, "--write-state", state_url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting `sverka sandbox`")?;
    let stdout = child.stdout.take().context("the sandbox's output")?;
    let mut lines = BufReader::new(stdout).lines();
    let urls = tokio::time::timeout(Duration::from_secs(3600), sandbox_urls(&mut lines))
        .await
        .context("waiting for the sandbox")??;
    Ok((child, urls))
}

/// Runs the stock job once; returns its summary and wall time, seconds.
async fn run_stock(
    config: &crate::config::Config,
    global: &crate::options::RunOptions,
) -> Result<(crate::report::summary::JobSummary, f64)> {
    let ctx = Context::open(config, global, false).await?;
    let started = Instant::now();
    let summary = crate::jobs::stock::run(&ctx).await;
    let seconds = started.elapsed().as_secs_f64();
    ctx.state.close().await;
    ctx.shop.db().close().await;
    Ok((summary, seconds))
}

/// The job's phase timings, seconds, with `journal` (the CRM uploads' wall
/// time minus the wait for RetailCRM's answers) added.
fn phases_of(summary: &crate::report::summary::JobSummary) -> BTreeMap<String, f64> {
    let mut phases: BTreeMap<String, f64> = summary
        .extra
        .get("phases_s")
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_f64().map(|s| (k.clone(), s)))
                .collect()
        })
        .unwrap_or_default();
    let get = |p: &BTreeMap<String, f64>, name: &str| p.get(name).copied().unwrap_or(0.0);
    let journal = (get(&phases, "crm_uploads") - get(&phases, "crm_upload_wait")).max(0.0);
    phases.insert("journal".into(), journal);
    phases
}
