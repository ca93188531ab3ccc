//! Command-line definitions (clap): the flags every command shares, which
//! resolve to [`crate::options::RunOptions`], and the subcommands (each edge
//! module defines its own arguments). `app` dispatches.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub use crate::bench::args::{BenchArgs, BenchFigure};
pub use crate::demo::DemoArgs;
use crate::jobs::Job;
pub use crate::map_import::{MapAction, MapArgs};
pub use crate::options::LogFormat;
use crate::options::RunOptions;

/// sverka keeps an online shop, its fulfillment warehouse (IMSKLAD or EGON) and
/// its RetailCRM account telling the same story.
///
/// Exit codes: 0 clean or everything corrected, 1 discrepancies left for a
/// person, 2 the run failed (error, unreachable source, safety guard).
#[derive(Debug, Parser)]
#[command(name = "sverka", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Configuration file (default: ./sverka.toml if present, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Plan and report, but write nothing anywhere.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Where reports go (overrides [reports] dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Print a machine-readable JSON summary on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole tour on SQLite against the built-in sandbox: generate a world
    /// with drift, reconcile, correct, write reports, print a summary.
    Demo(DemoArgs),
    /// Reconcile one job (or all) now.
    Reconcile(ReconcileArgs),
    /// Run the callback listener for IMSKLAD, EGON, IMSHOP and RetailCRM.
    Serve,
    /// Run the cron scheduler daemon over jobs/*.toml.
    Schedule(ScheduleArgs),
    /// Start the local sandbox servers (IMSKLAD, RetailCRM, EGON, IMSHOP) with a seeded world.
    Sandbox(SandboxArgs),
    /// Apply the state database migrations.
    Migrate,
    /// Validate the configuration and check that the databases can be reached.
    Check,
    /// List recent runs.
    Runs(RunsArgs),
    /// List journaled callbacks (newest first), e.g. the rejected ones.
    Events(EventsArgs),
    /// The goods id mapping (shop SKU → IMSKLAD goods id).
    Map(MapArgs),
    /// Measure how fast sverka reconciles and how it scales (build with --release):
    /// pure stock/orders/billing reconcile (time, peak memory, pandas and DuckDB
    /// baselines), loading from SQLite/PostgreSQL, the end-to-end stock job against
    /// the rate-limited sandbox, and the callback listener.
    Bench(BenchArgs),
}

/// Which reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobKind {
    /// Stock: WMS → CRM and shop.
    Stock,
    /// Order states.
    Orders,
    /// Billing (finance report).
    Billing,
    /// IMSHOP marking scans.
    Scans,
    /// All of the above, in that order.
    All,
}

impl JobKind {
    /// The one job chosen, `None` for `all`.
    pub fn job(self) -> Option<Job> {
        match self {
            JobKind::Stock => Some(Job::Stock),
            JobKind::Orders => Some(Job::Orders),
            JobKind::Billing => Some(Job::Billing),
            JobKind::Scans => Some(Job::Scans),
            JobKind::All => None,
        }
    }
}

/// `sverka reconcile`
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The job.
    #[arg(value_enum)]
    pub job: JobKind,
    /// Override a safety guard (recorded in the run).
    #[arg(long)]
    pub force: bool,
    /// Window start (YYYY-MM-DD, in the configured time zone).
    #[arg(long, value_name = "DATE")]
    pub from: Option<chrono::NaiveDate>,
    /// Window end, inclusive (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<chrono::NaiveDate>,
    /// Stock: read every CRM inventory page (`full`) or only the offers that
    /// moved since the known state (`delta`); over `[stock] mode` and a job's `mode`.
    #[arg(long, value_enum)]
    pub mode: Option<crate::config::StockMode>,
}

/// `sverka schedule`
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Folder with job definitions.
    #[arg(long, default_value = "jobs")]
    pub jobs_dir: PathBuf,
    /// Print the next run times and exit.
    #[arg(long)]
    pub list: bool,
}

/// `sverka sandbox`
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Random seed of the generated world.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// SKUs.
    #[arg(long, default_value_t = 1000)]
    pub skus: usize,
    /// Orders.
    #[arg(long, default_value_t = 200)]
    pub orders: usize,
    /// Days of billing history.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// First port (IMSKLAD; RetailCRM, EGON, IMSHOP take the next ones). 0 = any free ports.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Added latency per request, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Also write the matching shop database to this URL (sqlite://, postgres://, mysql://).
    #[arg(long, value_name = "URL")]
    pub write_shop: Option<String>,
    /// Also write the goods id mapping into this state database URL.
    #[arg(long, value_name = "URL")]
    pub write_state: Option<String>,
    /// Switch every sandbox strictness switch to its strict reading (see the
    /// README's "Protocol notes").
    #[arg(long)]
    pub strict: bool,
    /// Lift the vendors' rate limits (RetailCRM's 10 requests/s, EGON's):
    /// for measuring sverka's own work, not the vendors'.
    #[arg(long)]
    pub no_rate_limit: bool,
    /// An established catalogue: leave out the SKUs the WMS does not know yet
    /// (their one-by-one registration is a first-run cost).
    #[arg(long)]
    pub established: bool,
}

impl SandboxArgs {
    /// The sandbox's own options for these arguments.
    pub fn serve_options(&self) -> crate::sandbox::serve::ServeOptions {
        crate::sandbox::serve::ServeOptions {
            seed: self.seed,
            skus: self.skus,
            orders: self.orders,
            days: self.days,
            port: self.port,
            latency_ms: self.latency_ms,
            write_shop: self.write_shop.clone(),
            write_state: self.write_state.clone(),
            strict: self.strict,
            no_rate_limit: self.no_rate_limit,
            established: self.established,
        }
    }
}

/// `sverka runs`
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only this job.
    #[arg(long)]
    pub job: Option<String>,
    /// How many.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
}

/// `sverka events`
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only rejected callbacks and lines (with the reason and the redacted body).
    #[arg(long)]
    pub rejected: bool,
    /// Only this source: imsklad, egon, imshop.
    #[arg(long, value_name = "S")]
    pub source: Option<String>,
    /// Only events received at or after this local time (YYYY-MM-DD or YYYY-MM-DDTHH:MM).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<chrono::NaiveDateTime>,
    /// How many at most.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
}

/// Parses `YYYY-MM-DD` (midnight) or `YYYY-MM-DDTHH:MM`.
pub fn parse_since(s: &str) -> Result<chrono::NaiveDateTime, String> {
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M") {
        return Ok(t);
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(|| format!("`{s}` is neither YYYY-MM-DD nor YYYY-MM-DDTHH:MM"))
}

impl GlobalArgs {
    /// The options these flags resolve to.
    pub fn options(&self) -> RunOptions {
        RunOptions {
            config: self.config.clone(),
            dry_run: self.dry_run,
            report_dir: self.report_dir.clone(),
            json: self.json,
            log_format: self.log_format,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconcile(args: &[&str]) -> Result<ReconcileArgs, clap::Error> {
        let all = ["sverka", "reconcile"].iter().chain(args).copied();
        match Cli::try_parse_from(all)?.command {
            Command::Reconcile(r) => Ok(r),
            other => panic!("not reconcile: {other:?}"),
        }
    }

    #[test]
    fn reconcile_stock_takes_a_mode_flag_or_none() {
        use crate::config::StockMode;
        assert_eq!(reconcile(&["stock"]).unwrap().mode, None);
        assert_eq!(
            reconcile(&["stock", "--mode", "delta"]).unwrap().mode,
            Some(StockMode::Delta)
        );
        assert_eq!(
            reconcile(&["stock", "--mode", "full"]).unwrap().mode,
            Some(StockMode::Full)
        );
        assert!(reconcile(&["stock", "--mode", "partial"]).is_err());
    }
}
