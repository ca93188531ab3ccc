//! Command-line definitions (clap) and the dispatch from flags to jobs.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
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
    /// The job's name in runs and reports.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Stock => "stock",
            JobKind::Orders => "orders",
            JobKind::Billing => "billing",
            JobKind::Scans => "scans",
            JobKind::All => "all",
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

/// `sverka demo`
#[derive(Debug, Args)]
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

/// `sverka map`
#[derive(Debug, Args)]
pub struct MapArgs {
    /// What to do with the mapping.
    #[command(subcommand)]
    pub action: MapAction,
}

/// `sverka map …`
#[derive(Debug, Subcommand)]
pub enum MapAction {
    /// Import `sku,wms_id` pairs from a CSV file (header optional), for a shop
    /// that already runs on IMSKLAD: no `update_good` look-up is needed for them.
    Import {
        /// The CSV file: `sku,wms_id` per line (`,` or `;`).
        file: PathBuf,
    },
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

/// One benchmark figure of `sverka bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum BenchFigure {
    /// Pure stock reconcile: three frames → classified frame.
    Stock,
    /// Pure order reconcile.
    Orders,
    /// Pure billing reconcile.
    Billing,
    /// Loading the shop's stock and orders from SQLite and PostgreSQL into frames.
    Load,
    /// `reconcile stock` end to end against the rate-limited sandbox.
    E2e,
    /// The callback listener under concurrent load.
    Listener,
    /// The stock job's delta mode after a full run, against the same sandbox.
    Delta,
    /// The local work of a stock run, phase by phase (sandbox as another process).
    Local,
}

/// `sverka bench`
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Sizes (SKUs, orders or billing lines) for the reconcile and load figures.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub sizes: Vec<usize>,
    /// SKU counts for the end-to-end and delta figures (bounded by RetailCRM's 10 requests/s:
    /// 1,000,000 SKUs need over 400 s of requests alone).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub e2e_sizes: Vec<usize>,
    /// SKU counts for the local-work figure (a stock run against the sandbox
    /// as another process, no latency, no rate limit).
    #[arg(long, value_delimiter = ',', default_value = "1000000")]
    pub local_sizes: Vec<usize>,
    /// Only these figures (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<BenchFigure>,
    /// Timed repetitions per case; the tables show medians.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Skip the pandas and DuckDB baselines.
    #[arg(long)]
    pub no_baseline: bool,
    /// Rewrite the results block of this README (between the bench markers) and print it.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "README.md")]
    pub readme: Option<PathBuf>,
    /// Python interpreter for the baselines (needs pandas and duckdb).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// PostgreSQL server for the load and listener figures (a database is created and dropped).
    #[arg(long, env = "SVERKA_BENCH_POSTGRES_URL", value_name = "URL")]
    pub postgres: Option<String>,
    /// Simulated latency of every sandbox request in the end-to-end figure, milliseconds.
    #[arg(long, default_value_t = 120)]
    pub latency_ms: u64,
    /// Concurrent clients of the listener figure.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Callbacks sent per engine in the listener figure.
    #[arg(long, default_value_t = 20000)]
    pub callbacks: usize,
    /// Measure nothing: render a report saved earlier with `--json` (with `--readme`: into the README).
    #[arg(long, value_name = "FILE")]
    pub render: Option<PathBuf>,
    /// Folder for generated data (default: a temporary folder, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Internal: run one measured case in this process and print its JSON (used
    /// by the parent bench so that each case's peak memory is its own).
    #[arg(long, hide = true, value_name = "CASE")]
    pub case: Option<String>,
    /// Internal: the size of `--case`.
    #[arg(long, hide = true, default_value_t = 0)]
    pub size: usize,
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
