//! What `main` runs: parse flags, load the configuration, dispatch, and turn
//! the outcome into an exit code.

use anyhow::{Context as _, Result};
use clap::Parser;
use std::io::IsTerminal;

use crate::cli::{
    Cli, Command, EventsArgs, GlobalArgs, LogFormat, ReconcileArgs, RunsArgs, ScheduleArgs,
};
use crate::config::Config;
use crate::db::{runs, Db};
use crate::exit::Exit;
use crate::options::RunOptions;
use crate::report::summary::{combined_exit, JobSummary};

/// Runs the command line and returns the process exit code.
pub fn main_with_args() -> Exit {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::Failed
        }
    }
}

/// Logs go to stderr; progress bars are drawn there too, but only for a person:
/// stderr a terminal, human log lines, no `--json`.
fn init_logging(global: &GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("sverka=info,warn"));
    let terminal = std::io::stderr().is_terminal();
    if terminal && global.log_format == LogFormat::Human && !global.json {
        crate::progress::enable();
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::progress::LogWriter)
        .with_ansi(terminal);
    let _ = match global.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn run(cli: Cli) -> Result<Exit> {
    let options = cli.global.options();
    match cli.command {
        Command::Migrate => migrate(&options).await,
        Command::Check => crate::check::run(&options).await,
        Command::Map(args) => crate::map_import::run(&args, &options).await,
        Command::Runs(args) => list_runs(&args, &options).await,
        Command::Events(args) => list_events(&args, &options).await,
        Command::Reconcile(args) => reconcile(&args, &options).await,
        Command::Serve => serve(&options).await,
        Command::Schedule(args) => schedule(&args, &options).await,
        Command::Sandbox(args) => {
            crate::sandbox::serve::run(&args.serve_options(), shutdown_signal()).await?;
            Ok(Exit::Clean)
        }
        Command::Demo(args) => crate::demo::run(&args, &options).await,
        Command::Bench(args) => crate::bench::run(&args, &options).await,
    }
}

/// `sverka migrate`: applies the state database migrations and says so.
async fn migrate(options: &RunOptions) -> Result<Exit> {
    let config = options.load_config()?;
    let db = Db::connect_state(config.state.database_url.expose())
        .await
        .context("migrating the state database")?;
    let msg = format!("state database {} is up to date", db.redacted_url());
    if options.json {
        println!("{}", serde_json::json!({"ok": true, "message": msg}));
    } else {
        println!("{msg}");
    }
    Ok(Exit::Clean)
}

/// A millisecond timestamp as local `YYYY-MM-DD HH:MM:SS` (empty if out of range).
fn local_time(config: &Config, ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&config.tz())
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// `sverka runs`: the recent runs as a table or JSON.
async fn list_runs(args: &RunsArgs, options: &RunOptions) -> Result<Exit> {
    let config = options.load_config()?;
    let db = Db::connect_state(config.state.database_url.expose()).await?;
    let list = runs::recent(&db, args.job.as_deref(), args.limit).await?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        println!("no runs recorded yet");
    } else {
        println!(
            "{:>6}  {:<8}  {:<19}  {:>8}  {:<13}  classes",
            "run", "job", "started", "seconds", "status"
        );
        for r in list {
            print_run_row(&config, r);
        }
    }
    Ok(Exit::Clean)
}

/// One row of the `sverka runs` table.
fn print_run_row(config: &Config, r: runs::RunRecord) {
    let started = local_time(config, r.started_at);
    let secs = r
        .finished_at
        .map(|f| format!("{:.1}", (f - r.started_at) as f64 / 1000.0))
        .unwrap_or_else(|| "-".into());
    let classes: Vec<String> = r
        .counts
        .iter()
        .filter(|(k, _)| k.as_str() != "ok")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut status = r.status.as_str().to_string();
    if r.dry_run {
        status.push_str(" (dry)");
    }
    println!(
        "{:>6}  {:<8}  {:<19}  {:>8}  {:<13}  {}{}",
        r.id,
        r.job,
        started,
        secs,
        status,
        classes.join(" "),
        r.error.map(|e| format!("  error: {e}")).unwrap_or_default()
    );
}

/// `--since` (local time in the configured zone) as epoch milliseconds.
fn since_ms(config: &Config, since: Option<chrono::NaiveDateTime>) -> Result<Option<i64>> {
    use chrono::TimeZone;
    since
        .map(|t| {
            config
                .tz()
                .from_local_datetime(&t)
                .earliest()
                .map(|t| t.timestamp_millis())
                .with_context(|| format!("--since {t} does not exist in {}", config.tz()))
        })
        .transpose()
}

/// `sverka events`: the journaled callbacks, newest first, as lines or JSON.
async fn list_events(args: &EventsArgs, options: &RunOptions) -> Result<Exit> {
    let config = options.load_config()?;
    let db = Db::connect_state(config.state.database_url.expose()).await?;
    let since = since_ms(&config, args.since)?;
    let list = crate::db::events::list(
        &db,
        &crate::db::events::EventFilter {
            rejected_only: args.rejected,
            source: args.source.clone(),
            since_ms: since,
            limit: args.limit,
        },
    )
    .await?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        println!("no events");
    } else {
        for e in list {
            let at = local_time(&config, e.received_at);
            println!(
                "{:>8}  {at}  {:<8} {:<24} {:<9} {}",
                e.id,
                e.source,
                e.method,
                e.status,
                e.error.as_deref().unwrap_or("")
            );
            if e.status == crate::db::events::STATUS_REJECTED {
                println!("          body: {}", e.body);
            }
        }
    }
    Ok(Exit::Clean)
}

/// `sverka reconcile`: runs one job (or all) now and prints the summaries.
async fn reconcile(args: &ReconcileArgs, options: &RunOptions) -> Result<Exit> {
    let mut config = options.load_config()?;
    if let Some(mode) = args.mode {
        // The flag wins over `[stock] mode`.
        config.stock.mode = mode;
    }
    let ctx = crate::jobs::Context::open(&config, options, args.force).await?;
    let window = crate::jobs::runner::WindowArgs {
        from: args.from,
        to: args.to,
    };
    // SIGTERM or Ctrl-C as with the daemon: the running job stops after
    // its current step (each correction is journaled), then reports.
    let stop = ctx.stop.clone();
    let watcher = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::warn!("stop requested: the job stops after its current step");
        stop.stop();
    });
    let summaries = match args.job.job() {
        Some(job) => vec![crate::jobs::runner::run_one(&ctx, job, window).await],
        None => crate::jobs::runner::run_all(&ctx, window).await,
    };
    watcher.abort();
    print_summaries(&summaries, options.json)?;
    Ok(combined_exit(&summaries))
}

/// `sverka serve`: the callback listener until a stop signal.
async fn serve(options: &RunOptions) -> Result<Exit> {
    let config = options.load_config()?;
    let ctx = crate::jobs::Context::open(&config, options, false).await?;
    let state = crate::listener::ListenerState {
        settings: std::sync::Arc::new(crate::demo::listener_settings(&config)),
        state_db: ctx.state.clone(),
        shop: ctx.shop.clone(),
    };
    eprintln!(
        "sverka serve: listening on http://{} (routes: /imsklad /egon /imshop/scan /imshop/history /retailcrm/inventories /healthz)",
        config.listener.bind
    );
    crate::listener::serve(state, shutdown_signal())
        .await
        .with_context(|| format!("serving on {}", config.listener.bind))?;
    Ok(Exit::Clean)
}

/// `sverka schedule`: lists the next runs (`--list`) or runs the cron daemon.
async fn schedule(args: &ScheduleArgs, options: &RunOptions) -> Result<Exit> {
    let config = options.load_config()?;
    let defs = crate::jobs::schedule::load_dir(&args.jobs_dir)?;
    let clock: std::sync::Arc<dyn crate::jobs::schedule::Clock> =
        std::sync::Arc::new(crate::jobs::schedule::SystemClock);
    if args.list {
        for (name, next) in crate::jobs::schedule::list(&defs, clock.as_ref()).await {
            let when = next
                .map(|t| {
                    t.with_timezone(&config.tz())
                        .format("%Y-%m-%d %H:%M %Z")
                        .to_string()
                })
                .unwrap_or_else(|| "disabled".into());
            println!("{name:<16} {when}");
        }
        return Ok(Exit::Clean);
    }
    let state = Db::connect_state(config.state.database_url.expose()).await?;
    let runner = std::sync::Arc::new(crate::jobs::runner::ConfiguredRunner::new(
        config,
        options.clone(),
    ));
    eprintln!("sverka schedule: {} job definitions from {}; SIGTERM or Ctrl-C stops after the current step", defs.len(), args.jobs_dir.display());
    let scheduler = crate::jobs::schedule::Scheduler::new(defs, runner, clock, state);
    scheduler.run(shutdown_signal()).await;
    Ok(Exit::Clean)
}

/// Prints job summaries as text or JSON.
pub fn print_summaries(summaries: &[JobSummary], json: bool) -> Result<()> {
    if json {
        let value = if summaries.len() == 1 {
            serde_json::to_value(&summaries[0])?
        } else {
            serde_json::to_value(summaries)?
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for s in summaries {
            print!("{}", s.render());
        }
    }
    Ok(())
}

pub use crate::jobs::schedule::shutdown_signal;
