//! `sverka demo`: the whole tour on SQLite against the in-process sandbox.
//!
//! A fresh demo generates a seeded world with drift, writes the shop database
//! and sverka's state database into the work folder, starts the sandbox
//! servers and the callback listener on free local ports, runs the jobs,
//! applies the corrections, writes every report and prints a summary table.
//! `--reuse` keeps the work folder and replays what the sandbox was told last
//! time (see [`crate::sandbox::replay`]), so it shows that nothing is left to
//! correct.

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Config, WmsKind};
use crate::db::Db;
use crate::exit::Exit;
use crate::jobs::Context;
use crate::listener::{ListenerSettings, ListenerState};
use crate::options::RunOptions;
use crate::report::summary::JobSummary;
use crate::sandbox::world::{World, WorldSpec};
use crate::sandbox::{replay, world_billing, world_orders, SandboxOptions, SandboxSet};
use crate::server::RunningServer;
use crate::shop::{Queries, Shop};

/// File name of the sandbox replay log inside the work folder.
pub const REPLAY_LOG: &str = "sandbox-replay.jsonl";

/// Paths inside the demo's work folder.
#[derive(Debug, Clone)]
pub struct WorkDir {
    /// The folder.
    pub root: PathBuf,
    /// Where the reports go: `--report-dir` when given, else `<root>/reports`.
    pub reports: PathBuf,
}

impl WorkDir {
    /// `sqlite://<root>/state.db`
    pub fn state_url(&self) -> String {
        format!("sqlite://{}", self.root.join("state.db").display())
    }
    /// `sqlite://<root>/shop.db`
    pub fn shop_url(&self) -> String {
        format!("sqlite://{}", self.root.join("shop.db").display())
    }
    /// The folder and its reports folder (`report_dir` wins over `<root>/reports`).
    pub fn new(root: PathBuf, report_dir: Option<PathBuf>) -> Self {
        let reports = report_dir.unwrap_or_else(|| root.join("reports"));
        Self { root, reports }
    }
    /// Where the reports go.
    pub fn reports(&self) -> PathBuf {
        self.reports.clone()
    }
    /// The replay log.
    pub fn replay_log(&self) -> PathBuf {
        self.root.join(REPLAY_LOG)
    }
}

/// The listener settings for a configuration.
pub fn listener_settings(config: &Config) -> ListenerSettings {
    ListenerSettings {
        bind: config.listener.bind,
        max_body_bytes: config.listener.max_body_bytes,
        header_timeout: std::time::Duration::from_secs(config.listener.header_timeout_secs),
        body_timeout: std::time::Duration::from_secs(config.listener.body_timeout_secs),
        max_connections: config.listener.max_connections,
        shutdown_grace: std::time::Duration::from_secs(config.listener.shutdown_grace_secs),
        imsklad_callback_key: config.imsklad.callback_key.clone(),
        egon_auth_id: config.egon.auth_id.clone(),
        egon_auth_key: config.egon.auth_key.clone(),
        imshop_hook_key: config.imshop.hook_key.clone(),
        retailcrm_client_id: config.retailcrm.client_id.clone(),
        retailcrm_store: config.retailcrm.store.clone(),
        crm_offer_key_is_xml_id: config.retailcrm.offer_key == crate::config::OfferKeyField::XmlId,
        imsklad_carrier_export_elsewhere: config.imsklad.carrier_export
            == crate::config::CarrierExport::Elsewhere,
        egon_tz: config.egon.tz(),
        imshop_hook_auth_none: config.imshop.hook_auth == crate::config::HookAuth::None,
    }
}

/// `sverka demo`
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Work folder for the databases and reports.
    #[arg(long, default_value = "sverka-demo")]
    pub dir: PathBuf,
    /// Reuse the work folder from a previous demo (shows nothing is left to correct).
    #[arg(long)]
    pub reuse: bool,
    /// SKUs in the generated world.
    #[arg(long, default_value_t = 2000)]
    pub skus: usize,
    /// Orders in the generated world.
    #[arg(long, default_value_t = 300)]
    pub orders: usize,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs the demo; returns the exit code (0 when every job ran).
pub async fn run(args: &DemoArgs, global: &RunOptions) -> Result<Exit> {
    let started = Instant::now();
    let (work, reuse) = prepare_work_dir(args, global)?;
    let mut tour = Tour::build(args, global, work, reuse).await?;
    fill_databases(global, &tour).await?;
    let listener = start_listener(global, &tour).await?;
    // RetailCRM calls the warehouse module back at the listener (loopback http).
    tour.config.orders.listener_url = Some(listener.url.clone());
    let summaries = run_jobs(global, &tour, &listener.url).await?;

    let saved = replay::save(&tour.set, &tour.work.replay_log())?;
    tracing::debug!(saved, "sandbox requests saved for --reuse");
    listener.stop().await;
    tour.set.stop().await;

    let failed = summaries.iter().any(|s| s.exit() == Exit::Failed);
    print_outcome(global, &tour.work, reuse, &summaries, started)?;
    Ok(if failed { Exit::Failed } else { Exit::Clean })
}

/// Clears (unless reused) and creates the work folder; returns it and whether
/// a previous demo is reused.
fn prepare_work_dir(args: &DemoArgs, global: &RunOptions) -> Result<(WorkDir, bool)> {
    let work = WorkDir::new(args.dir.clone(), global.report_dir.clone());
    let reuse = args.reuse && work.root.join("state.db").exists();
    if args.reuse && !reuse {
        eprintln!(
            "no previous demo in {}; starting a fresh one",
            work.root.display()
        );
    }
    if !reuse && work.root.exists() {
        std::fs::remove_dir_all(&work.root)
            .with_context(|| format!("clearing the demo folder {}", work.root.display()))?;
    }
    for dir in [&work.root, &work.reports] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok((work, reuse))
}

/// The world's "now": kept with the demo so a re-run regenerates the same orders.
fn world_now(work: &WorkDir, reuse: bool) -> Result<i64> {
    let now_file = work.root.join("world-now");
    let saved_now = std::fs::read_to_string(&now_file)
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok());
    Ok(match saved_now {
        Some(t) if reuse => t,
        _ => {
            let t = crate::db::now_ms();
            std::fs::write(&now_file, t.to_string())
                .with_context(|| format!("writing {}", now_file.display()))?;
            t
        }
    })
}

/// What a demo run sets up: the work folder, the seeded world and sandbox,
/// the configuration pointing at them, and the two databases.
struct Tour {
    work: WorkDir,
    reuse: bool,
    world: World,
    set: SandboxSet,
    orders: Vec<world_orders::WorldOrder>,
    billing: world_billing::WorldBilling,
    config: Config,
    state: Db,
    shop: Shop,
}

impl Tour {
    /// Generates the world, starts and seeds the sandbox servers, and opens the databases.
    async fn build(
        args: &DemoArgs,
        global: &RunOptions,
        work: WorkDir,
        reuse: bool,
    ) -> Result<Self> {
        let spec = WorldSpec {
            seed: args.seed,
            skus: args.skus,
            orders: args.orders,
            days: 7,
            drift: true,
        };
        step(
            global,
            &format!(
                "generating a world of {} SKUs (seed {})",
                spec.skus, spec.seed
            ),
        );
        let world = World::generate(&spec);
        let set = SandboxSet::start(&SandboxOptions {
            seed: args.seed,
            ..SandboxOptions::default()
        })
        .await
        .context("starting the sandbox servers")?;
        world.seed_servers(&set)?;
        let now = world_now(&work, reuse)?;
        let orders = world_orders::generate_orders(&world, now);
        world_orders::seed_orders(&set, &orders).await?;
        let mut config = set.config(
            &work.state_url(),
            &work.shop_url(),
            &work.reports(),
            WmsKind::Imsklad,
        );
        config.safety.max_change_share = 0.9;
        config.orders.create_missing_in_wms = true;
        // The warehouse's billing over the world's days; its drift is on the last complete day.
        let billing =
            world_billing::generate_billing(&orders, spec.seed, spec.days, now, config.tz());
        world_billing::seed_billing(&set, &billing);
        let state = Db::connect_state(&work.state_url()).await?;
        let shop = Shop::new(Db::connect(&work.shop_url()).await?, Queries::builtin());
        Ok(Self {
            work,
            reuse,
            world,
            set,
            orders,
            billing,
            config,
            state,
            shop,
        })
    }
}

/// A fresh demo writes the shop database and the mappings; a reused one
/// replays what the sandbox received in earlier demos.
async fn fill_databases(global: &RunOptions, tour: &Tour) -> Result<()> {
    if tour.reuse {
        let saved = replay::load(&tour.work.replay_log())?;
        step(
            global,
            &format!(
                "replaying {} requests the sandbox received in earlier demos",
                saved.len()
            ),
        );
        replay::replay(&tour.set, &saved).await?;
    } else {
        step(global, "writing the shop database and the goods mapping");
        tour.world.write_shop(&tour.shop).await?;
        tour.world.write_mapping(&tour.state, &tour.set).await?;
        world_orders::write_shop_orders(&tour.shop, &tour.orders).await?;
        world_orders::write_order_mapping(&tour.state, &tour.set, &tour.orders).await?;
        world_billing::write_shop_billing(&tour.shop, &tour.billing).await?;
    }
    Ok(())
}

/// Starts the callback listener on a free local port and says where everything listens.
async fn start_listener(global: &RunOptions, tour: &Tour) -> Result<RunningServer> {
    let listener = crate::listener::spawn(
        ListenerState {
            settings: Arc::new(listener_settings(&tour.config)),
            state_db: tour.state.clone(),
            shop: tour.shop.clone(),
        },
        crate::sandbox::common::any_local_port(),
    )
    .await
    .context("starting the callback listener")?;
    step(
        global,
        &format!(
            "sandbox: IMSKLAD {} · RetailCRM {} · listener {}",
            tour.set.urls.imsklad, tour.set.urls.retailcrm, listener.url
        ),
    );
    Ok(listener)
}

/// Runs stock, orders, billing and scans in turn, playing the warehouse's
/// callbacks and the IMSHOP users before the jobs that need them.
async fn run_jobs(global: &RunOptions, tour: &Tour, listener_url: &str) -> Result<Vec<JobSummary>> {
    let ctx_global = RunOptions {
        config: None,
        dry_run: global.dry_run,
        report_dir: Some(tour.work.reports()),
        json: global.json,
        log_format: global.log_format,
    };
    let ctx = Context::open(&tour.config, &ctx_global, false).await?;
    let mut summaries: Vec<JobSummary> = Vec::new();
    step(global, "reconciling stock");
    summaries.push(crate::jobs::stock::run(&ctx).await);

    step(
        global,
        "the warehouse reports order statuses and tracks to the listener; reconciling orders",
    );
    let delivered =
        world_orders::deliver_callbacks(&tour.set, &tour.orders, listener_url, WmsKind::Imsklad)
            .await?;
    tracing::debug!(delivered, "order callbacks delivered");
    summaries.push(crate::jobs::orders::run(&ctx, None, None).await);

    let billing = &tour.billing;
    step(
        global,
        &format!(
            "reconciling the warehouse's billing for the world's days, {} to {}",
            billing.first_day, billing.drift_day
        ),
    );
    summaries.push(
        crate::jobs::billing::run(&ctx, Some(billing.first_day), Some(billing.drift_day)).await,
    );

    step(
        global,
        "IMSHOP users scan marking codes (some while the shop database is down); settling and pushing the scan statuses",
    );
    scan_codes(&tour.world, &tour.set, listener_url).await?;
    step(
        global,
        "simulating a shop-database outage: the listener answers scans `processing` (the warnings below are expected)",
    );
    scans_during_outage(
        &tour.world,
        &tour.set,
        &tour.config,
        &tour.state,
        &tour.work,
    )
    .await?;
    summaries.push(crate::jobs::scans::run(&ctx).await);
    Ok(summaries)
}

/// The closing summary: JSON, or the table and a line about the work folder.
fn print_outcome(
    global: &RunOptions,
    work: &WorkDir,
    reuse: bool,
    summaries: &[JobSummary],
    started: Instant,
) -> Result<()> {
    if global.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "work_dir": work.root.display().to_string(),
                "reused": reuse,
                "jobs": summaries,
                "seconds": started.elapsed().as_secs_f64(),
            }))?
        );
    } else {
        print!("{}", table(summaries));
        println!(
            "\ndemo {} in {:.1} s — work folder: {} (run `sverka demo --reuse` to see that nothing is left to correct)",
            if reuse { "re-run" } else { "run" },
            started.elapsed().as_secs_f64(),
            work.root.display()
        );
    }
    Ok(())
}

/// Plays the IMSHOP app: users scan some of the world's marking codes (as text
/// and as base64), one code twice by different users, and one unknown code.
async fn scan_codes(world: &World, set: &SandboxSet, listener_url: &str) -> Result<()> {
    let url = format!("{listener_url}/imshop/scan");
    let key = &set.keys.imshop_hook_key;
    let codes = world.marking_codes();
    let now = chrono::Utc::now().timestamp();
    let mut sent = 0;
    for (i, (code, _)) in codes.iter().take(12).enumerate() {
        let user = format!("7999000000{}", i % 4);
        let barcode = if i % 2 == 0 {
            code.clone()
        } else {
            crate::connectors::imshop::encode_barcode(code.as_bytes())
        };
        crate::sandbox::imshop::send_scan(&url, key, &barcode, &user, now, None)
            .await
            .context("sending a scan to the listener")?;
        sent += 1;
    }
    if let Some((code, _)) = codes.first() {
        // The same code scanned by somebody else: denied as already used.
        crate::sandbox::imshop::send_scan(&url, key, code, "79990000099", now, None)
            .await
            .context("sending a scan to the listener")?;
    }
    crate::sandbox::imshop::send_scan(
        &url,
        key,
        "0104600000000000215UNKNOWN\u{1d}91EE07",
        "79990000001",
        now,
        None,
    )
    .await
    .context("sending a scan to the listener")?;
    tracing::debug!(sent, "demo scans sent");
    Ok(())
}

/// Plays a shop-database outage: a listener whose shop pool is closed answers
/// a few scans `processing`, so the scans job has something to settle — it
/// re-checks them against the shop and pushes the verdicts to IMSHOP. On
/// `--reuse` the same users scan the same codes again, which the listener
/// answers from their stored verdicts, so nothing is left to push.
async fn scans_during_outage(
    world: &World,
    set: &SandboxSet,
    config: &Config,
    state: &Db,
    work: &WorkDir,
) -> Result<()> {
    let down = Shop::new(Db::connect(&work.shop_url()).await?, Queries::builtin());
    down.db().close().await;
    let outage = crate::listener::spawn(
        ListenerState {
            settings: Arc::new(listener_settings(config)),
            state_db: state.clone(),
            shop: down,
        },
        crate::sandbox::common::any_local_port(),
    )
    .await
    .context("starting the listener with the shop database down")?;
    let url = format!("{}/imshop/scan", outage.url);
    let key = &set.keys.imshop_hook_key;
    let now = chrono::Utc::now().timestamp();
    let codes = world.marking_codes();
    let mut sent = 0;
    for (i, (code, _)) in codes.iter().skip(12).take(4).enumerate() {
        let user = format!("7999100000{i}");
        crate::sandbox::imshop::send_scan(&url, key, code, &user, now, None)
            .await
            .context("sending a scan to the listener")?;
        sent += 1;
    }
    // A code nobody knows, scanned during the outage: denied once re-checked.
    crate::sandbox::imshop::send_scan(
        &url,
        key,
        "0104600000000000215LOST\u{1d}93AB12",
        "79991000009",
        now,
        None,
    )
    .await
    .context("sending a scan to the listener")?;
    outage.stop().await;
    tracing::debug!(sent, "demo scans sent during the shop outage");
    Ok(())
}

fn step(global: &RunOptions, msg: &str) {
    if !global.json {
        crate::progress::println(&format!("· {msg}"));
    }
}

/// The summary table: per job, discrepancies by class, corrections, reports, timings.
pub fn table(summaries: &[JobSummary]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\n{:<8} {:<13} {:>8} {:>8} {:>7} {:>8}  discrepancies by class\n",
        "job", "status", "applied", "failed", "ok", "seconds"
    ));
    for s in summaries {
        let classes: Vec<String> = s
            .counts
            .iter()
            .filter(|(k, _)| k.as_str() != "ok")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!(
            "{:<8} {:<13} {:>8} {:>8} {:>7} {:>8.2}  {}\n",
            s.job,
            s.status.as_str(),
            s.corrections.applied,
            s.corrections.failed,
            s.counts.get("ok").copied().unwrap_or(0),
            s.duration_ms as f64 / 1000.0,
            if classes.is_empty() {
                "none".to_string()
            } else {
                classes.join(", ")
            }
        ));
        if let Some(g) = &s.guard {
            out.push_str(&format!("         guard: {g}\n"));
        }
        if let Some(e) = &s.error {
            out.push_str(&format!("         error: {e}\n"));
        }
    }
    out.push_str("\nreports:\n");
    for s in summaries {
        for r in &s.reports {
            out.push_str(&format!("  {r}\n"));
        }
    }
    out
}

/// Whether `path` holds a previous demo.
pub fn has_previous(path: &Path) -> bool {
    path.join("state.db").exists()
}
