//! The scheduler's [`JobRunner`](super::schedule::JobRunner) for the real jobs:
//! each definition runs exactly as `sverka reconcile <job>` would.

use std::future::Future;
use std::pin::Pin;

use super::schedule::{JobDef, JobRunner};
use super::{Context, StopSignal};
use crate::cli::{GlobalArgs, JobKind};
use crate::config::{Config, WmsKind};
use crate::db::runs::RunStatus;
use crate::report::summary::JobSummary;

/// Runs scheduled jobs with a fixed configuration.
#[derive(Debug, Clone)]
pub struct ConfiguredRunner {
    config: Config,
    global: GlobalArgs,
}

impl ConfiguredRunner {
    /// A runner using `config` and the command line's global flags.
    pub fn new(config: Config, global: GlobalArgs) -> Self {
        ConfiguredRunner { config, global }
    }
}

/// Runs one job kind in `ctx` (the same path `sverka reconcile` takes).
///
/// `all` runs stock, orders, billing and scans in that order; with
/// `[wms] kind = "egon"` it leaves billing out (an IMSKLAD-only report that
/// `reconcile billing` refuses with exit code 2).
pub async fn run_kind(ctx: &Context, kind: JobKind, window: WindowArgs) -> Vec<JobSummary> {
    match kind {
        JobKind::Stock => vec![super::stock::run(ctx).await],
        JobKind::Scans => vec![super::scans::run(ctx).await],
        JobKind::Orders => vec![super::orders::run(ctx, window.from, window.to).await],
        JobKind::Billing => vec![super::billing::run(ctx, window.from, window.to).await],
        JobKind::All => {
            let mut out = Vec::new();
            for k in [
                JobKind::Stock,
                JobKind::Orders,
                JobKind::Billing,
                JobKind::Scans,
            ] {
                if k == JobKind::Billing && ctx.config.wms.kind == WmsKind::Egon {
                    tracing::info!(
                        "billing is IMSKLAD-only; `reconcile all` leaves it out with EGON"
                    );
                    continue;
                }
                out.extend(Box::pin(run_kind(ctx, k, window)).await);
            }
            out
        }
    }
}

/// `--from/--to` as passed to a job.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowArgs {
    /// First day.
    pub from: Option<chrono::NaiveDate>,
    /// Last day (inclusive).
    pub to: Option<chrono::NaiveDate>,
}

/// The summary of a scheduled run that produced none (it cannot happen for a
/// single job kind; kept so the scheduler always records something).
fn not_available(ctx: &Context, kind: JobKind) -> JobSummary {
    JobSummary {
        job: kind.name().to_string(),
        run_id: 0,
        status: RunStatus::Failed,
        dry_run: ctx.dry_run,
        forced: ctx.force,
        counts: Default::default(),
        corrections: Default::default(),
        reports: Vec::new(),
        duration_ms: 0,
        guard: None,
        error: Some(format!(
            "the {} job produced no summary; nothing was done",
            kind.name()
        )),
        extra: serde_json::Value::Null,
    }
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
                    JobKind::Orders => ctx.config.orders.window_days = i64::from(days),
                    JobKind::Billing => ctx.config.billing.window_days = i64::from(days),
                    JobKind::All => {
                        ctx.config.orders.window_days = i64::from(days);
                        ctx.config.billing.window_days = i64::from(days);
                    }
                    JobKind::Stock | JobKind::Scans => {}
                }
            }
            if let Some(mode) = def.mode {
                // The job option wins over `[stock] mode`.
                ctx.config.stock.mode = mode;
            }
            let window = WindowArgs::default();
            let mut summaries = run_kind(&ctx, def.job, window).await;
            summaries
                .pop()
                .unwrap_or_else(|| not_available(&ctx, def.job))
        })
    }
}
