//! One runner per job, wiring connectors → reconcile → plan → apply → report.

pub mod billing;
pub mod gate;
pub mod orders;
pub mod orders_protocol;
pub mod phases;
pub mod runner;
pub mod scans;
pub mod schedule;
pub mod stock;
pub mod stock_delta;
mod stock_upload;

use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, OfferKeyField};
use crate::connectors::egon::{EgonClient, EgonConfig};
use crate::connectors::http::HttpPolicy;
use crate::connectors::imshop::{ImshopClient, ImshopConfig};
use crate::connectors::imsklad::{ImskladClient, ImskladConfig};
use crate::connectors::retailcrm::{OfferKey, RetailCrmClient, RetailCrmConfig};
use crate::db::Db;
use crate::options::RunOptions;
use crate::shop::{Queries, Shop};

/// The jobs sverka runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Stock: WMS → CRM and shop.
    Stock,
    /// Order states.
    Orders,
    /// Billing (finance report).
    Billing,
    /// IMSHOP marking scans.
    Scans,
}

impl Job {
    /// Every job, in the order `reconcile all` runs them.
    pub const ALL: [Job; 4] = [Job::Stock, Job::Orders, Job::Billing, Job::Scans];

    /// The job's name in runs, reports and job definitions.
    pub const fn name(self) -> &'static str {
        match self {
            Job::Stock => "stock",
            Job::Orders => "orders",
            Job::Billing => "billing",
            Job::Scans => "scans",
        }
    }

    /// The job named `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Job> {
        Job::ALL
            .into_iter()
            .find(|j| j.name().eq_ignore_ascii_case(name))
    }
}

/// How long a SQLite job lease lives without renewal.
pub const LOCK_LEASE: Duration = Duration::from_secs(120);

/// A request to stop, shared between the signal handler and running jobs.
///
/// Jobs check it between steps: a stop never interrupts a step halfway, and
/// everything a job did is journaled before it returns.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks running jobs to stop after their current step.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Everything a job run needs.
#[derive(Debug, Clone)]
pub struct Context {
    /// The configuration.
    pub config: Config,
    /// sverka's state database (migrated).
    pub state: Db,
    /// The shop database with its queries.
    pub shop: Shop,
    /// Where reports go.
    pub report_dir: PathBuf,
    /// Plan and report only.
    pub dry_run: bool,
    /// Override the safety guards (recorded in the run).
    pub force: bool,
    /// Policy for outside HTTP calls.
    pub http: HttpPolicy,
    /// Stop request (SIGTERM in the scheduler).
    pub stop: StopSignal,
    /// The running job's lock, checked before each batch of writes (set by
    /// [`RunGuard::scope`]; None outside a run).
    pub run_lock: Option<WriteGate>,
}

impl Context {
    /// Opens the databases named by the configuration.
    pub async fn open(config: &Config, global: &RunOptions, force: bool) -> Result<Context> {
        config.warn_plain_http();
        let state = Db::connect_state(config.state.database_url.expose())
            .await
            .context("opening the state database")?;
        let shop_db = Db::connect_with(
            config.shop.database_url.expose(),
            Duration::from_secs(config.shop.lock_timeout_secs),
        )
        .await
        .context("opening the shop database")?;
        let queries = Queries::load(config.shop.queries_dir.as_deref())?;
        Ok(Context {
            config: config.clone(),
            state,
            shop: Shop::new(shop_db, queries),
            report_dir: global
                .report_dir
                .clone()
                .unwrap_or_else(|| config.reports.dir.clone()),
            dry_run: global.dry_run,
            force,
            http: HttpPolicy::default(),
            stop: StopSignal::new(),
            run_lock: None,
        })
    }

    /// Checks that the running job still holds its lock; every batch of
    /// writes starts with this (through [`Context::writer`] or directly for
    /// writes that are not corrections). Outside a run there is no lock to
    /// check and the answer is Ok.
    pub async fn check_lock(&self) -> std::result::Result<(), crate::db::lock::LockLost> {
        self.writer().check_lock().await
    }

    /// The journaled write path for this run ([`crate::apply`]): every
    /// correction is planned through it before it is sent and settled after.
    pub fn writer(&self) -> crate::apply::Writer<'_> {
        crate::apply::Writer::new(&self.state, self.run_lock.as_ref())
    }

    /// The IMSKLAD client for `[imsklad]`.
    pub fn imsklad(&self) -> Result<ImskladClient> {
        let c = &self.config.imsklad;
        let mut cfg = ImskladConfig::new(c.url.clone(), c.key.clone(), c.storage_id);
        cfg.stock_batch = c.stock_batch;
        cfg.concurrency = c.concurrency;
        cfg.policy = self.http.clone();
        ImskladClient::new(cfg).context("configuring the IMSKLAD client")
    }

    /// The EGON client for `[egon]`.
    pub fn egon(&self) -> Result<EgonClient> {
        let c = &self.config.egon;
        let mut cfg = EgonConfig::new(
            c.url.clone(),
            c.auth_id.clone(),
            c.auth_key.clone(),
            c.auth_token.clone(),
        );
        cfg.policy = self.http.clone();
        EgonClient::new(cfg)
            .map(|client| self.share_egon_limit(client))
            .context("configuring the EGON client")
    }

    /// `client` sharing its account's rate limit (180 requests a minute)
    /// with every sverka process of the state database.
    pub fn share_egon_limit(&self, client: EgonClient) -> EgonClient {
        let (bucket, max, window) = client.shared_limit_key();
        if max == 0 {
            return client;
        }
        let limit = crate::db::rate::SharedRateLimit::new(
            self.state.clone(),
            &bucket,
            max,
            window,
            self.http.timeout + Duration::from_secs(5),
        );
        client.with_shared_limit(limit)
    }

    /// The RetailCRM client for `[retailcrm]`.
    pub fn retailcrm(&self) -> Result<RetailCrmClient> {
        let c = &self.config.retailcrm;
        RetailCrmClient::new(RetailCrmConfig {
            url: c.url.clone(),
            api_key: c.api_key.clone(),
            site: c.site.clone(),
            store: c.store.clone(),
            offer_key: match c.offer_key {
                OfferKeyField::ExternalId => OfferKey::ExternalId,
                OfferKeyField::XmlId => OfferKey::XmlId,
            },
            rate_per_sec: c.rate_per_sec,
            policy: self.http.clone(),
        })
        .map(|client| {
            if c.rate_per_sec == 0 {
                return client;
            }
            // RetailCRM counts the account's requests, whichever process sends
            // them: the limit is shared through the state database.
            client.with_shared_limit(crate::db::rate::SharedRateLimit::new(
                self.state.clone(),
                &format!("retailcrm:{}", c.url.trim_end_matches('/')),
                c.rate_per_sec,
                Duration::from_secs(1),
                self.http.timeout + Duration::from_secs(5),
            ))
        })
        .context("configuring the RetailCRM client")
    }

    /// The IMSHOP client for `[imshop]`.
    pub fn imshop(&self) -> Result<ImshopClient> {
        let c = &self.config.imshop;
        ImshopClient::new(ImshopConfig {
            update_url: c.update_url.expose().to_string(),
            key: c.key.clone(),
            key_in_header: c.push_key.in_header(),
            key_in_body: c.push_key.in_body(),
            policy: self.http.clone(),
        })
        .context("configuring the IMSHOP client")
    }

    /// Today in the configured time zone.
    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now()
            .with_timezone(&self.config.tz())
            .date_naive()
    }
}

pub use crate::apply::{count_failure, failed_write, WriteError, WriteGate};

/// A job run in progress: holds the job lock and the run record.
///
/// [`begin`] takes the lock, closes runs and corrections a crashed process left
/// open, and records the start; [`RunGuard::finish`] records the outcome,
/// releases the lock and builds the summary.
#[derive(Debug)]
pub struct RunGuard {
    /// The run id.
    pub run_id: i64,
    /// The job name.
    pub job: String,
    gate: WriteGate,
    started: std::time::Instant,
    dry_run: bool,
    forced: bool,
}

/// What a job hands to [`RunGuard::finish`].
#[derive(Debug, Default)]
pub struct Outcome {
    /// Discrepancies per class (`ok` included).
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Corrections.
    pub corrections: crate::report::summary::CorrectionCounts,
    /// Reports written.
    pub reports: Vec<String>,
    /// Why a guard stopped the run.
    pub guard: Option<String>,
    /// Job-specific figures (also stored in the run).
    pub extra: serde_json::Value,
}

/// Starts a run of `job`: lock, crash clean-up, run record.
///
/// On failure returns the summary to report (lock held elsewhere, database down).
pub async fn begin(
    ctx: &Context,
    job: &str,
    window: (Option<i64>, Option<i64>),
) -> std::result::Result<RunGuard, Box<crate::report::summary::JobSummary>> {
    use crate::db::runs;
    let started = std::time::Instant::now();
    let fail = |status: crate::db::runs::RunStatus, error: String| {
        Box::new(crate::report::summary::JobSummary {
            job: job.to_string(),
            run_id: 0,
            status,
            dry_run: ctx.dry_run,
            forced: ctx.force,
            counts: Default::default(),
            corrections: Default::default(),
            reports: Vec::new(),
            duration_ms: started.elapsed().as_millis() as u64,
            guard: None,
            error: Some(error),
            extra: serde_json::Value::Null,
        })
    };
    let lock = match crate::db::lock::JobLock::acquire(&ctx.state, job, LOCK_LEASE).await {
        Ok(l) => l,
        Err(crate::db::lock::LockError::Held { job, holder }) => {
            return Err(fail(
                runs::RunStatus::Skipped,
                format!("job `{job}` is already running ({holder}); this run was refused"),
            ))
        }
        Err(e) => return Err(fail(runs::RunStatus::Failed, crate::errors::chain(&e))),
    };
    let run_id = match runs::start(&ctx.state, job, window, ctx.dry_run, ctx.force).await {
        Ok(id) => id,
        Err(e) => {
            let _ = lock.release().await;
            return Err(fail(runs::RunStatus::Failed, crate::errors::chain(&e)));
        }
    };
    // We hold the lock, so any run still marked running, and any correction
    // still planned, belongs to a process that died.
    if let Err(e) = runs::mark_abandoned(&ctx.state, job, run_id).await {
        tracing::warn!(job, error = %crate::errors::Chain(&e), "could not close abandoned runs");
    }
    crate::apply::Writer::new(&ctx.state, None)
        .abandon_unsettled(job)
        .await;
    Ok(RunGuard {
        run_id,
        job: job.to_string(),
        gate: WriteGate::new(lock),
        started,
        dry_run: ctx.dry_run,
        forced: ctx.force,
    })
}

/// What a job's `execute` ends with: the run's status, its outcome and an
/// error to record (if any); or the text of the error that failed the run.
pub type Executed =
    std::result::Result<(crate::db::runs::RunStatus, Outcome, Option<String>), String>;

/// The one job skeleton: begins a run of `job` over `window`, runs `execute`
/// with the run's scoped context and id, and finishes the run with what it
/// returned (a failure is recorded as a failed run with the error's text).
pub async fn run_job<F, Fut>(
    ctx: &Context,
    job: &'static str,
    window: (Option<i64>, Option<i64>),
    execute: F,
) -> crate::report::summary::JobSummary
where
    F: FnOnce(Context, i64) -> Fut,
    Fut: std::future::Future<Output = Executed>,
{
    let guard = match begin(ctx, job, window).await {
        Ok(g) => g,
        Err(summary) => return *summary,
    };
    let run_id = guard.run_id;
    match execute(guard.scope(ctx), run_id).await {
        Ok((status, outcome, error)) => guard.finish(ctx, status, outcome, error).await,
        Err(e) => {
            tracing::error!(run = run_id, "{job} run failed: {e}");
            guard
                .finish(
                    ctx,
                    crate::db::runs::RunStatus::Failed,
                    Outcome::default(),
                    Some(e),
                )
                .await
        }
    }
}

impl RunGuard {
    /// `ctx` for this run: the same context, with the run's lock to check
    /// before writing ([`Context::check_lock`], [`Context::writer`]).
    pub fn scope(&self, ctx: &Context) -> Context {
        let mut scoped = ctx.clone();
        scoped.run_lock = Some(self.gate.clone());
        scoped
    }

    /// Records the outcome, releases the lock and returns the summary.
    pub async fn finish(
        self,
        ctx: &Context,
        status: crate::db::runs::RunStatus,
        outcome: Outcome,
        error: Option<String>,
    ) -> crate::report::summary::JobSummary {
        use crate::db::runs;
        let mut summary_json = match &outcome.extra {
            serde_json::Value::Object(m) => serde_json::Value::Object(m.clone()),
            _ => serde_json::json!({}),
        };
        if let Some(obj) = summary_json.as_object_mut() {
            obj.insert(
                "corrections".into(),
                serde_json::to_value(&outcome.corrections).unwrap_or_default(),
            );
            if let Some(g) = &outcome.guard {
                obj.insert("guard".into(), serde_json::Value::String(g.clone()));
            }
        }
        let end = runs::RunEnd {
            counts: outcome.counts.clone(),
            report_paths: outcome.reports.clone(),
            summary: summary_json,
            error: error.clone().or_else(|| outcome.guard.clone()),
        };
        let mut error = error;
        if let Err(e) = runs::finish(&ctx.state, self.run_id, status, &end).await {
            tracing::error!(run = self.run_id, error = %crate::errors::Chain(&e), "could not record the run's end");
            error.get_or_insert_with(|| {
                format!("recording the run failed: {}", crate::errors::Chain(&e))
            });
        }
        if let Err(e) = self.gate.lock().lock().await.release_now().await {
            tracing::warn!(job = %self.job, error = %crate::errors::Chain(&e), "could not release the job lock");
        }
        crate::report::summary::JobSummary {
            job: self.job,
            run_id: self.run_id,
            status,
            dry_run: self.dry_run,
            forced: self.forced,
            counts: outcome.counts,
            corrections: outcome.corrections,
            reports: outcome.reports,
            duration_ms: self.started.elapsed().as_millis() as u64,
            guard: outcome.guard,
            error,
            extra: outcome.extra,
        }
    }
}

/// One run's journal: [`Context::writer`] with the run and the job filled in,
/// so a correction is journaled by naming only its target, action, item and
/// payload.
#[derive(Debug, Clone, Copy)]
pub struct RunJournal<'a> {
    writer: crate::apply::Writer<'a>,
    run_id: i64,
    job: &'a str,
}

impl Context {
    /// Creates the CSV report `name` in the report folder, in the configured
    /// dialect, with the header `columns`.
    pub fn csv_report(
        &self,
        name: &str,
        columns: &[&str],
    ) -> std::result::Result<crate::report::csv::CsvReport, crate::report::csv::ReportError> {
        crate::report::csv::CsvReport::create(
            &self.report_dir,
            name,
            self.config.reports.dialect,
            columns,
        )
    }

    /// Creates run `run_id`'s report of `job`, `<job>-<date>-<run>.csv`
    /// (see [`Context::csv_report`]).
    pub fn run_report(
        &self,
        job: &str,
        run_id: i64,
        columns: &[&str],
    ) -> std::result::Result<crate::report::csv::CsvReport, crate::report::csv::ReportError> {
        let name = crate::report::csv::file_name(job, self.today(), run_id);
        self.csv_report(&name, columns)
    }

    /// The journal of run `run_id` of `job`.
    pub fn journal<'a>(&'a self, run_id: i64, job: &'a str) -> RunJournal<'a> {
        RunJournal {
            writer: self.writer(),
            run_id,
            job,
        }
    }
}

impl RunJournal<'_> {
    /// Journals a correction before it is sent ([`crate::apply::Writer::plan`]:
    /// the run's lock is checked first); returns its journal id.
    pub async fn plan(
        &self,
        target: crate::db::journal::Target,
        action: &str,
        item_key: &str,
        payload: &serde_json::Value,
    ) -> std::result::Result<i64, WriteError> {
        self.writer
            .plan(&crate::db::journal::Planned {
                run_id: self.run_id,
                job: self.job,
                target,
                action,
                item_key,
                payload,
            })
            .await
    }
}
