//! The scheduler's [`JobRunner`](super::schedule::JobRunner) for the real jobs:
//! each definition runs exactly as `sverka reconcile <job>` would.

use std::future::Future;
use std::pin::Pin;

use super::schedule::{JobDef, JobRunner};
use super::Job;
use super::{Context, StopSignal};
use crate::config::{Config, WmsKind};
use crate::db::runs::RunStatus;
use crate::options::RunOptions;
use crate::report::summary::JobSummary;

/// Runs scheduled jobs with a fixed configuration.
#[derive(Debug, Clone)]
pub struct ConfiguredRunner {
    config: Config,
    global: RunOptions,
}

impl ConfiguredRunner {
    /// A runner using `config` and the command line's global flags.
    pub fn new(config: Config, global: RunOptions) -> Self {
        ConfiguredRunner { config, global }
    }
}

/// Runs `job` in `ctx` (the same path `sverka reconcile <job>` takes).
pub async fn run_one(ctx: &Context, job: Job, window: WindowArgs) -> JobSummary {
    match job {
        Job::Stock => super::stock::run(ctx).await,
        Job::Scans => super::scans::run(ctx).await,
        Job::Orders => super::orders::run(ctx, window.from, window.to).await,
        Job::Billing => super::billing::run(ctx, window.from, window.to).await,
    }
}

/// `reconcile all`: stock, orders, billing and scans in that order; with
/// `[wms] kind = "egon"` billing is left out (an IMSKLAD-only report that
/// `reconcile billing` refuses with exit code 2).
pub async fn run_all(ctx: &Context, window: WindowArgs) -> Vec<JobSummary> {
    let mut out = Vec::new();
    for job in Job::ALL {
        if job == Job::Billing && ctx.config.wms.kind == WmsKind::Egon {
            tracing::info!("billing is IMSKLAD-only; `reconcile all` leaves it out with EGON");
            continue;
        }
        out.push(run_one(ctx, job, window).await);
    }
    out
}

/// `--from/--to` as passed to a job.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowArgs {
    /// First day.
    pub from: Option<chrono::NaiveDate>,
    /// Last day (inclusive).
    pub to: Option<chrono::NaiveDate>,
}

impl JobRunner for ConfiguredRunner {
    fn run<'a>(
        &'a self,
        def: &'a JobDef,
        stop: StopSignal,
    ) -> Pin<Box<dyn Future<Output = JobSummary> + Send + 'a>> {
        Box::pin(async move {
            let mut global = self.global.clone();
            global.dry_run = global.dry_run || def.dry_run;
            let mut ctx = match Context::open(&self.config, &global, false).await {
                Ok(c) => c,
                Err(e) => {
                    return JobSummary {
                        job: def.job.name().to_string(),
                        run_id: 0,
                        status: RunStatus::Failed,
                        dry_run: global.dry_run,
                        forced: false,
                        counts: Default::default(),
                        corrections: Default::default(),
                        reports: Vec::new(),
                        duration_ms: 0,
                        guard: None,
                        error: Some(format!("{e:#}")),
                        extra: serde_json::Value::Null,
                    }
                }
            };
            ctx.stop = stop;
            if let Some(days) = def.window_days {
                // orders: created in the last N days; billing: re-check the last N complete days.
                match def.job {
                    Job::Orders => ctx.config.orders.window_days = i64::from(days),
                    Job::Billing => ctx.config.billing.window_days = i64::from(days),
                    Job::Stock | Job::Scans => {}
                }
            }
            if let Some(mode) = def.mode {
                // The job option wins over `[stock] mode`.
                ctx.config.stock.mode = mode;
            }
            run_one(&ctx, def.job, WindowArgs::default()).await
        })
    }
}
