//! `sverka bench`: how fast sverka reconciles and how it scales.
//!
//! Five figures, each over a series of sizes (see `sverka bench --help`):
//! 1. the pure stock reconcile (three frames → classified frame): time and peak
//!    memory, beside pandas and DuckDB baselines on the same data;
//! 2. the pure orders and billing reconciles, likewise;
//! 3. loading the shop's stock and orders from SQLite and PostgreSQL into frames;
//! 4. `reconcile stock` end to end against the sandbox with RetailCRM's real
//!    limits, against the lower bound those limits impose;
//! 5. the callback listener: callbacks persisted per second, p50/p99 latency;
//! 6. the local work of a stock run (`reconcile stock` against the sandbox
//!    as another process, no latency, no rate limit), phase by phase.
//!
//! Each reconcile case runs in a child process of this binary (the hidden
//! `--case` flag) so its peak memory is its own ([`memory`]). `--readme`
//! rewrites the results block of the README ([`table`]).

pub mod args;
pub mod baseline;
pub mod billing;
pub mod csvout;
pub mod delta;
pub mod e2e;
pub mod listener;
pub mod load;
pub mod local;
pub mod memory;
pub mod orders;
pub mod stats;
pub mod stock;
pub mod synthetic;
pub mod table;

use crate::progress::Progress;
use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::options::RunOptions;
pub use args::{BenchArgs, BenchFigure};
use baseline::Baseline;

/// One measured reconcile case (what a `--case` child prints).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseResult {
    /// `stock`, `orders` or `billing`.
    pub case: String,
    /// SKUs, orders or billing lines.
    pub size: usize,
    /// Rows in all input frames.
    pub rows_in: usize,
    /// Rows in the output frame(s).
    pub rows_out: usize,
    /// Seconds per repetition.
    pub seconds: Vec<f64>,
    /// Median of `seconds`.
    pub median_s: f64,
    /// RSS with the inputs built, MiB.
    pub input_mib: Option<f64>,
    /// Peak RSS during the classification (inputs included), MiB.
    pub peak_mib: Option<f64>,
    /// Output rows per class.
    pub counts: BTreeMap<String, u64>,
}

impl CaseResult {
    /// A result with its median computed.
    pub fn new(
        case: &str,
        size: usize,
        rows_in: usize,
        rows_out: usize,
        seconds: Vec<f64>,
    ) -> Self {
        CaseResult {
            case: case.to_string(),
            size,
            rows_in,
            rows_out,
            median_s: stats::median(&seconds).unwrap_or(0.0),
            seconds,
            input_mib: None,
            peak_mib: None,
            counts: BTreeMap::new(),
        }
    }

    /// With the memory figures.
    pub fn with_memory(mut self, input_mib: Option<f64>, peak_mib: Option<f64>) -> Self {
        self.input_mib = input_mib;
        self.peak_mib = peak_mib;
        self
    }

    /// With the class counts.
    pub fn with_counts(mut self, counts: BTreeMap<String, u64>) -> Self {
        self.counts = counts;
        self
    }
}

/// The options of a job the bench runs itself: reports under `reports`,
/// the summary as JSON, nothing dry.
pub fn job_options(reports: std::path::PathBuf) -> RunOptions {
    RunOptions {
        config: None,
        dry_run: false,
        report_dir: Some(reports),
        json: true,
        log_format: crate::options::LogFormat::Human,
    }
}

/// Runs `measure` in a fresh scratch folder `work/name`, removed afterwards
/// whatever the outcome.
pub async fn in_scratch<T, F>(
    work: &std::path::Path,
    name: &str,
    measure: impl FnOnce(std::path::PathBuf) -> F,
) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    let dir = work.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = measure(dir.clone()).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// What [`timed_runs`] measured.
#[derive(Debug)]
pub struct Timed<T> {
    /// Seconds per run.
    pub seconds: Vec<f64>,
    /// The last run's output.
    pub last: Option<T>,
    /// RSS before the first run (the inputs built), MiB.
    pub input_mib: Option<f64>,
    /// Peak RSS over the runs, MiB.
    pub peak_mib: Option<f64>,
}

/// Times `repeat` runs of `run` (at least one). The previous output is
/// dropped before the next run, so the peak is one run's (inputs included).
pub fn timed_runs<T>(repeat: usize, mut run: impl FnMut() -> Result<T>) -> Result<Timed<T>> {
    let input_mib = memory::rss_mib();
    memory::reset_peak();
    let mut seconds = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat.max(1) {
        drop(last.take());
        let started = std::time::Instant::now();
        let out = run()?;
        seconds.push(started.elapsed().as_secs_f64());
        last = Some(out);
    }
    Ok(Timed {
        seconds,
        last,
        input_mib,
        peak_mib: memory::peak_mib(),
    })
}

/// A reconcile case with its baselines.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconcileRow {
    /// sverka's measurement.
    pub rust: CaseResult,
    /// pandas (None: `--no-baseline`).
    pub pandas: Option<Baseline>,
    /// DuckDB (None: `--no-baseline`).
    pub duckdb: Option<Baseline>,
}

/// The machine the numbers were measured on.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Logical CPUs available.
    pub cpus: usize,
    /// Memory (`/proc/meminfo` MemTotal), GiB.
    pub memory_gib: f64,
    /// Operating system and architecture.
    pub os: String,
}

impl Machine {
    /// Reads this machine's description.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, name)| name.trim().to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_gib = memory::parse_status_kib(&meminfo, "MemTotal")
            .map(|kib| kib as f64 / 1024.0 / 1024.0)
            .unwrap_or(0.0);
        Machine {
            cpu,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_gib,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// Everything one `sverka bench` invocation measured.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Report {
    /// Where.
    pub machine: Machine,
    /// sverka's version.
    pub version: String,
    /// Repetitions per timed case.
    pub repeat: usize,
    /// Figures 1–2.
    pub reconcile: Vec<ReconcileRow>,
    /// Figure 3.
    pub load: Vec<load::LoadResult>,
    /// Figure 4.
    pub e2e: Vec<e2e::E2eResult>,
    /// Figure 5.
    pub listener: Vec<listener::ListenerResult>,
    /// Figure 6.
    #[serde(default)]
    pub delta: Vec<delta::DeltaResult>,
    /// Figure 7.
    #[serde(default)]
    pub local: Vec<local::LocalResult>,
    /// Skipped parts, each with its reason.
    pub skipped: Vec<String>,
}

/// Runs `sverka bench`; returns the exit code.
pub async fn run(args: &BenchArgs, global: &RunOptions) -> Result<crate::exit::Exit> {
    if let Some(case) = &args.case {
        return run_case(case, args).map(|()| crate::exit::Exit::Clean);
    }
    if let Some(path) = &args.render {
        return render_saved(path, args, global);
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; measure with `cargo run --release -- bench`");
    }
    let (work, _temp) = work_dir(args)?;
    let mut report = Report {
        machine: Machine::detect(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        repeat: args.repeat.max(1),
        ..Report::default()
    };
    let python = find_python(args, global, &mut report);
    let mut bench = Bench {
        args,
        global,
        work: &work,
        bar: Progress::counter("sverka bench", phase_count(args) as u64, "phases"),
        report,
    };
    bench.reconciles(python)?;
    bench.load().await;
    bench.e2e().await;
    bench.listener().await;
    bench.delta().await;
    bench.local().await;
    let Bench { bar, report, .. } = bench;
    drop(bar);
    publish(&report, args, global)
}

/// `--render`: publishes a report saved earlier with `--json`.
fn render_saved(path: &Path, args: &BenchArgs, global: &RunOptions) -> Result<crate::exit::Exit> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a `sverka bench --json` report", path.display()))?;
    publish(&report, args, global)
}

/// The folder for generated data: `--work-dir` (created), or a temporary
/// folder removed when the returned guard drops.
fn work_dir(args: &BenchArgs) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok((dir.clone(), None))
        }
        None => {
            let temp = tempfile::tempdir().context("creating a temporary folder")?;
            Ok((temp.path().to_path_buf(), Some(temp)))
        }
    }
}

/// The Python interpreter for the baselines, or None (`--no-baseline`, or
/// the check failed: then recorded as skipped).
fn find_python<'a>(
    args: &'a BenchArgs,
    global: &RunOptions,
    report: &mut Report,
) -> Option<&'a str> {
    if args.no_baseline {
        return None;
    }
    match baseline::check_python(&args.python) {
        Ok(()) => Some(args.python.as_str()),
        Err(reason) => {
            say(global, &format!("baseline skipped: {reason}"));
            report.skipped.push(format!("baselines: {reason}"));
            None
        }
    }
}

/// Whether the run measures `figure` (no `--only`: every figure).
fn wants(args: &BenchArgs, figure: BenchFigure) -> bool {
    args.only.is_empty() || args.only.contains(&figure)
}

/// How many phases the progress bar counts.
fn phase_count(args: &BenchArgs) -> usize {
    let wants = |f: BenchFigure| wants(args, f);
    let engines = load::engines(args.postgres.as_deref()).len();
    let cases = [
        BenchFigure::Stock,
        BenchFigure::Orders,
        BenchFigure::Billing,
    ]
    .into_iter()
    .filter(|f| wants(*f))
    .count();
    cases * args.sizes.len()
        + usize::from(wants(BenchFigure::Load)) * args.sizes.len() * engines
        + usize::from(wants(BenchFigure::E2e)) * args.e2e_sizes.len()
        + usize::from(wants(BenchFigure::Delta)) * args.e2e_sizes.len()
        + usize::from(wants(BenchFigure::Listener)) * engines
        + usize::from(wants(BenchFigure::Local)) * args.local_sizes.len() * engines
}

/// One `sverka bench` run in progress: the figures measured so far.
struct Bench<'a> {
    args: &'a BenchArgs,
    global: &'a RunOptions,
    work: &'a Path,
    bar: Progress,
    report: Report,
}

impl Bench<'_> {
    /// Says `line` of a measurement that succeeded and returns it; records a
    /// failure as skipped (`what: error`). Either way one phase is done.
    fn outcome<T>(&mut self, result: Result<T>, line: fn(&T) -> String, what: &str) -> Option<T> {
        let kept = match result {
            Ok(r) => {
                say(self.global, &line(&r));
                Some(r)
            }
            Err(e) => {
                skip(self.global, &mut self.report, &format!("{what}: {e:#}"));
                None
            }
        };
        self.bar.inc(1);
        kept
    }

    /// Figures 1–2: the pure stock, orders and billing reconciles.
    fn reconciles(&mut self, python: Option<&str>) -> Result<()> {
        for (figure, case) in [
            (BenchFigure::Stock, "stock"),
            (BenchFigure::Orders, "orders"),
            (BenchFigure::Billing, "billing"),
        ] {
            if !wants(self.args, figure) {
                continue;
            }
            for &size in &self.args.sizes {
                say(self.global, &format!("{case} reconcile, {size} …"));
                let row = reconcile_row(case, size, self.args, python, self.work, self.global)?;
                say(self.global, &table::reconcile_line(&row));
                self.report.reconcile.push(row);
                self.bar.inc(1);
            }
        }
        Ok(())
    }

    /// Figure 3: loading from each engine.
    async fn load(&mut self) {
        if !wants(self.args, BenchFigure::Load) {
            return;
        }
        let args = self.args;
        for &size in &args.sizes {
            for engine in load::engines(args.postgres.as_deref()) {
                say(
                    self.global,
                    &format!("loading {size} from {} …", engine.name()),
                );
                let result = load::run(&engine, size, args.repeat.max(1), self.work).await;
                let what = format!("load {size} {}", engine.name());
                if let Some(r) = self.outcome(result, table::load_line, &what) {
                    self.report.load.push(r);
                }
            }
        }
        if args.postgres.is_none() {
            skip(
                self.global,
                &mut self.report,
                "load on PostgreSQL: set --postgres or SVERKA_BENCH_POSTGRES_URL",
            );
        }
    }

    /// Figure 4: `reconcile stock` end to end.
    async fn e2e(&mut self) {
        if !wants(self.args, BenchFigure::E2e) {
            return;
        }
        let args = self.args;
        for &size in &args.e2e_sizes {
            say(
                self.global,
                &format!(
                    "reconcile stock end to end, {size} SKUs, RetailCRM 10 req/s, {} ms latency …",
                    args.latency_ms
                ),
            );
            let result = e2e::run(size, args.latency_ms, self.work).await;
            if let Some(r) = self.outcome(result, table::e2e_line, &format!("e2e {size}")) {
                self.report.e2e.push(r);
            }
        }
    }

    /// Figure 5: the callback listener on each engine.
    async fn listener(&mut self) {
        if !wants(self.args, BenchFigure::Listener) {
            return;
        }
        let args = self.args;
        for engine in load::engines(args.postgres.as_deref()) {
            say(
                self.global,
                &format!("listener on {}, {} clients …", engine.name(), args.clients),
            );
            let result = listener::run(&engine, args.clients, args.callbacks, self.work).await;
            let what = format!("listener {}", engine.name());
            if let Some(r) = self.outcome(result, table::listener_line, &what) {
                self.report.listener.push(r);
            }
        }
    }

    /// Figure 6: a full stock run, then a delta run after WMS drift.
    async fn delta(&mut self) {
        if !wants(self.args, BenchFigure::Delta) {
            return;
        }
        let args = self.args;
        for &size in &args.e2e_sizes {
            say(
                self.global,
                &format!(
                    "reconcile stock full, then delta after 1 % WMS drift, {size} SKUs, {} ms latency …",
                    args.latency_ms
                ),
            );
            let result = delta::run(size, args.latency_ms, self.work).await;
            if let Some(r) = self.outcome(result, delta::line, &format!("delta {size}")) {
                self.report.delta.push(r);
            }
        }
    }

    /// Figure 7: the local work of a stock run on each engine.
    async fn local(&mut self) {
        if !wants(self.args, BenchFigure::Local) {
            return;
        }
        let args = self.args;
        for &size in &args.local_sizes {
            for engine in load::engines(args.postgres.as_deref()) {
                say(
                    self.global,
                    &format!(
                        "local work of a stock run, {size} SKUs on {} (sandbox as another process) …",
                        engine.name()
                    ),
                );
                let result = local::run(&engine, size, self.work).await;
                let what = format!("local {size} {}", engine.name());
                if let Some(r) = self.outcome(result, table::local_line, &what) {
                    self.report.local.push(r);
                }
            }
        }
    }
}

/// Prints the report (JSON or Markdown) and, with `--readme`, rewrites the README's block.
fn publish(report: &Report, args: &BenchArgs, global: &RunOptions) -> Result<crate::exit::Exit> {
    if global.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{}", table::markdown(report));
    }
    if let Some(path) = &args.readme {
        table::update_readme(path, &table::markdown(report))?;
        say(
            global,
            &format!("updated the results in {}", path.display()),
        );
    }
    Ok(crate::exit::Exit::Clean)
}

fn say(global: &RunOptions, line: &str) {
    if !global.json {
        crate::progress::println(&format!("· {line}"));
    } else {
        tracing::info!("{line}");
    }
}

fn skip(global: &RunOptions, report: &mut Report, reason: &str) {
    say(global, &format!("skipped: {reason}"));
    report.skipped.push(reason.to_string());
}

/// Measures one reconcile case in a child process, then its baselines.
fn reconcile_row(
    case: &str,
    size: usize,
    args: &BenchArgs,
    python: Option<&str>,
    work: &Path,
    global: &RunOptions,
) -> Result<ReconcileRow> {
    let data = work.join(format!("{case}-{size}"));
    let child_work = if python.is_some() {
        data.clone()
    } else {
        work.to_path_buf()
    };
    let rust = memory::run_child(
        case,
        size,
        args.repeat.max(1),
        &child_work,
        python.is_some(),
    )?;
    let (pandas, duckdb) = match python {
        None => (None, None),
        Some(py) => {
            let mut ran = Vec::new();
            for engine in ["pandas", "duckdb"] {
                let b = baseline::run(py, case, engine, &data, args.repeat.max(1), &rust.counts);
                if let Baseline::Skipped { reason } = &b {
                    say(global, &format!("baseline skipped: {reason}"));
                }
                ran.push(Some(b));
            }
            let _ = std::fs::remove_dir_all(&data);
            let duckdb = ran.pop().flatten();
            (ran.pop().flatten(), duckdb)
        }
    };
    Ok(ReconcileRow {
        rust,
        pandas,
        duckdb,
    })
}

/// The child side of [`memory::run_child`]: measure one case, print its JSON.
fn run_case(case: &str, args: &BenchArgs) -> Result<()> {
    let emit = std::env::var_os(memory::EMIT_CSV_ENV).is_some();
    let dir = args.work_dir.as_deref().filter(|_| emit);
    let result = match case {
        "stock" => stock::case(args.size, args.repeat, dir)?,
        "orders" => orders::case(args.size, args.repeat, dir)?,
        "billing" => billing::case(args.size, args.repeat, dir)?,
        other => bail!("unknown bench case `{other}`"),
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}
