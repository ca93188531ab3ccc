//! `sverka bench`'s arguments (clap): which figures, sizes, baselines.

use clap::{Args, ValueEnum};
use std::path::PathBuf;

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
