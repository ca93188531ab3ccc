//! The loop: fires jobs on their ticks, never overlaps a job with itself,
//! records each attempt in `runs`, and shuts down within a grace period.

use super::*;

/// Runs one job definition; the real implementation wires the jobs, tests use fakes.
///
/// A runner records its own run in the `runs` table and returns its id in the
/// summary; the scheduler records the run itself when the id is 0, finishes a
/// run left `running`, and records a failed run when the runner panics.
pub trait JobRunner: Send + Sync {
    /// Runs `def` once. `stop` is raised on shutdown: the job finishes its
    /// current step, journals it and returns.
    fn run<'a>(
        &'a self,
        def: &'a JobDef,
        stop: StopSignal,
    ) -> Pin<Box<dyn Future<Output = JobSummary> + Send + 'a>>;
}

/// The cron daemon: fires job definitions on their ticks (see the module documentation).
pub struct Scheduler {
    defs: Vec<Arc<JobDef>>,
    runner: Arc<dyn JobRunner>,
    clock: Arc<dyn Clock>,
    state: Db,
    grace: Duration,
    heartbeat: Heartbeat,
    status: SchedulerStatus,
}

/// What a scheduler is running right now, readable from outside while it runs
/// (for logs, health checks and tests).
#[derive(Debug, Clone, Default)]
pub struct SchedulerStatus(Arc<Mutex<BTreeMap<String, DateTime<Utc>>>>);

impl SchedulerStatus {
    pub(super) fn lock(&self) -> MutexGuard<'_, BTreeMap<String, DateTime<Utc>>> {
        // A plain map: consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The definitions running now, by name, with the time their run started.
    pub fn running(&self) -> Vec<(String, DateTime<Utc>)> {
        self.lock().iter().map(|(n, t)| (n.clone(), *t)).collect()
    }

    /// Whether no job is running (finished runs are recorded by then).
    pub fn is_idle(&self) -> bool {
        self.lock().is_empty()
    }
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("defs", &self.defs)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

/// A run in progress.
pub(super) struct Running {
    def: usize,
    started: DateTime<Utc>,
    cancel: Arc<Notify>,
}

/// The scheduler loop's bookkeeping.
pub(super) struct LoopState {
    next: Vec<Option<DateTime<Utc>>>,
    catch_up: Vec<bool>,
    running: HashMap<&'static str, Running>,
    tasks: JoinSet<usize>,
    task_defs: HashMap<tokio::task::Id, usize>,
    stop: StopSignal,
}

impl Scheduler {
    /// A scheduler over `defs` (disabled ones are kept for listing, never fired).
    pub fn new(
        defs: Vec<JobDef>,
        runner: Arc<dyn JobRunner>,
        clock: Arc<dyn Clock>,
        state: Db,
    ) -> Self {
        Scheduler {
            defs: defs.into_iter().map(Arc::new).collect(),
            runner,
            clock,
            state,
            grace: DEFAULT_GRACE,
            heartbeat: Heartbeat::new(DEFAULT_HEARTBEAT_TIMEOUT),
            status: SchedulerStatus::default(),
        }
    }

    /// A handle on what this scheduler is running.
    pub fn status(&self) -> SchedulerStatus {
        self.status.clone()
    }

    /// How long shutdown waits for running jobs before cancelling them. The
    /// grace period is measured on the runtime's monotonic clock, not on the
    /// injected [`Clock`]: it bounds a real wait.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The timeout of one heartbeat ping.
    pub fn with_heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat = Heartbeat::new(timeout);
        self
    }

    /// The definitions.
    pub fn defs(&self) -> impl Iterator<Item = &JobDef> {
        self.defs.iter().map(|d| d.as_ref())
    }

    /// Fires the jobs until `shutdown` resolves, then stops them (see the module
    /// documentation) and returns.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let now = self.clock.now();
        let mut st = LoopState {
            next: self
                .defs
                .iter()
                .map(|d| d.enabled.then(|| next_fire(d, now)).flatten())
                .collect(),
            catch_up: vec![false; self.defs.len()],
            running: HashMap::new(),
            tasks: JoinSet::new(),
            task_defs: HashMap::new(),
            stop: StopSignal::new(),
        };
        for (def, next) in self.defs.iter().zip(&st.next) {
            match next {
                Some(at) => tracing::info!(job = %def.name, next = %at, "scheduled"),
                None => tracing::info!(job = %def.name, "not scheduled (disabled or never due)"),
            }
        }
        loop {
            let sleep = match st.next.iter().flatten().min() {
                Some(due) => self.clock.sleep_until(*due),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(done) = st.tasks.join_next_with_id(), if !st.tasks.is_empty() => {
                    if let Some(kind) = self.settle(&mut st, done).await {
                        self.catch_up(&mut st, kind);
                    }
                }
                _ = sleep => {
                    let now = self.clock.now();
                    self.fire_due(&mut st, now).await;
                }
            }
        }
        self.drain(&mut st).await;
    }

    /// Fires every definition whose tick has come; all its ticks up to `now`
    /// collapse into this one firing.
    pub(super) async fn fire_due(&self, st: &mut LoopState, now: DateTime<Utc>) {
        for index in 0..self.defs.len() {
            let Some(tick) = st.next[index].filter(|t| *t <= now) else {
                continue;
            };
            let def = &self.defs[index];
            st.next[index] = next_fire(def, now);
            let kind = def.job.name();
            match st.running.get(kind) {
                Some(busy) => {
                    let reason = format!(
                        "skipped the {tick} tick of `{}`: `{}` (started {}) is still running; \
                         one catch-up run follows when it ends",
                        def.name, self.defs[busy.def].name, busy.started
                    );
                    tracing::warn!(job = %def.name, "{reason}");
                    st.catch_up[index] = true;
                    self.record_skip(def, tick, &reason).await;
                }
                None => self.start(st, index, now),
            }
        }
    }

    /// Starts a run of definition `index`.
    pub(super) fn start(&self, st: &mut LoopState, index: usize, now: DateTime<Utc>) {
        let def = Arc::clone(&self.defs[index]);
        tracing::info!(job = %def.name, kind = def.job.name(), "starting");
        let cancel = Arc::new(Notify::new());
        let attempt = Attempt {
            def: Arc::clone(&def),
            runner: Arc::clone(&self.runner),
            state: self.state.clone(),
            heartbeat: self.heartbeat.clone(),
            stop: st.stop.clone(),
            cancel: Arc::clone(&cancel),
        };
        let handle = st.tasks.spawn(async move {
            attempt.run().await;
            index
        });
        st.task_defs.insert(handle.id(), index);
        self.status.lock().insert(def.name.clone(), now);
        st.running.insert(
            def.job.name(),
            Running {
                def: index,
                started: now,
                cancel,
            },
        );
    }

    /// Books a finished attempt; returns the job kind that became free.
    pub(super) async fn settle(
        &self,
        st: &mut LoopState,
        done: Result<(tokio::task::Id, usize), JoinError>,
    ) -> Option<&'static str> {
        let index = match done {
            Ok((id, index)) => {
                st.task_defs.remove(&id);
                index
            }
            Err(e) => {
                let index = st.task_defs.remove(&e.id())?;
                // The attempt wrapper itself died (it handles every error of
                // the job): make sure the run does not go unrecorded.
                let def = &self.defs[index];
                let reason = format!("the scheduler lost the run: {}", join_reason(e));
                tracing::error!(job = %def.name, "{reason}");
                record_failed(&self.state, def, &reason).await;
                index
            }
        };
        let kind = self.defs[index].job.name();
        st.running.remove(kind);
        self.status.lock().remove(&self.defs[index].name);
        Some(kind)
    }

    /// Starts the one catch-up run owed to a definition of `kind`, if any.
    pub(super) fn catch_up(&self, st: &mut LoopState, kind: &'static str) {
        let owed =
            (0..self.defs.len()).find(|&i| st.catch_up[i] && self.defs[i].job.name() == kind);
        if let Some(index) = owed {
            st.catch_up[index] = false;
            tracing::info!(job = %self.defs[index].name, "catch-up run for skipped ticks");
            let now = self.clock.now();
            self.start(st, index, now);
        }
    }

    /// Stops the running jobs: stop signal, grace period, then cancellation.
    pub(super) async fn drain(&self, st: &mut LoopState) {
        st.stop.stop();
        if st.tasks.is_empty() {
            return;
        }
        tracing::info!(
            running = st.tasks.len(),
            grace_s = self.grace.as_secs_f64(),
            "shutting down: waiting for running jobs to finish their current step"
        );
        self.wait_all(st, self.grace).await;
        if st.tasks.is_empty() {
            return;
        }
        for running in st.running.values() {
            tracing::warn!(
                job = %self.defs[running.def].name,
                "still running after the grace period: cancelling it"
            );
            running.cancel.notify_one();
        }
        // Cancelled attempts record their failure and ping their heartbeat.
        self.wait_all(st, self.grace + self.heartbeat.timeout).await;
        if !st.tasks.is_empty() {
            tracing::error!(left = st.tasks.len(), "abandoning jobs that would not stop");
            st.tasks.abort_all();
        }
    }

    /// Settles attempts as they end, for at most `limit`.
    pub(super) async fn wait_all(&self, st: &mut LoopState, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !st.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, st.tasks.join_next_with_id()).await {
                Ok(Some(done)) => {
                    self.settle(st, done).await;
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Records a skipped tick in the `runs` table.
    pub(super) async fn record_skip(&self, def: &JobDef, tick: DateTime<Utc>, reason: &str) {
        let end = RunEnd {
            summary: serde_json::json!({
                "schedule": def.name,
                "tick": tick.to_rfc3339(),
            }),
            error: Some(reason.to_string()),
            ..RunEnd::default()
        };
        record(&self.state, def, RunStatus::Skipped, &end).await;
    }
}

/// One firing of a definition: heartbeat, the job in its own task (so a panic
/// is caught), bookkeeping, heartbeat.
pub(super) struct Attempt {
    def: Arc<JobDef>,
    runner: Arc<dyn JobRunner>,
    state: Db,
    heartbeat: Heartbeat,
    stop: StopSignal,
    cancel: Arc<Notify>,
}

impl Attempt {
    pub(super) async fn run(self) {
        self.heartbeat.ping(&self.def, Ping::Start).await;
        let (runner, def, stop) = (
            Arc::clone(&self.runner),
            Arc::clone(&self.def),
            self.stop.clone(),
        );
        let mut job = tokio::spawn(async move { runner.run(&def, stop).await });
        let outcome = tokio::select! {
            outcome = &mut job => outcome,
            _ = self.cancel.notified() => {
                job.abort();
                (&mut job).await
            }
        };
        let succeeded = match outcome {
            Ok(summary) => ensure_recorded(&self.state, &self.def, summary).await,
            Err(e) => {
                let reason = join_reason(e);
                tracing::error!(job = %self.def.name, "{reason}");
                record_failed(&self.state, &self.def, &reason).await;
                false
            }
        };
        let ping = if succeeded { Ping::Success } else { Ping::Fail };
        self.heartbeat.ping(&self.def, ping).await;
    }
}

/// Why a job task ended without a summary.
pub(super) fn join_reason(e: JoinError) -> String {
    if e.is_panic() {
        let payload = e.into_panic();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        format!("the job panicked: {message}")
    } else {
        "the job was cancelled: it did not stop within the shutdown grace period".into()
    }
}

/// Makes sure the run a job returned is recorded and finished; returns whether
/// it succeeded (exit code 0 or 1).
pub(super) async fn ensure_recorded(state: &Db, def: &JobDef, summary: JobSummary) -> bool {
    let status = match summary.status {
        RunStatus::Running => RunStatus::Failed,
        other => other,
    };
    let mut error = summary.error.clone().or_else(|| summary.guard.clone());
    if summary.status == RunStatus::Running {
        error.get_or_insert_with(|| "the job returned without finishing its run".into());
    }
    tracing::info!(job = %def.name, run = summary.run_id, status = status.as_str(), "finished");
    let end = RunEnd {
        counts: summary.counts.clone(),
        report_paths: summary.reports.clone(),
        summary: serde_json::to_value(&summary).unwrap_or_default(),
        error,
    };
    let stored = match summary.run_id {
        0 => None,
        id => match runs::get(state, id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(job = %def.name, run = id, error = %crate::errors::Chain(&e), "cannot read the run back");
                None
            }
        },
    };
    match stored {
        Some(run) if run.status != RunStatus::Running => {}
        Some(run) => {
            if let Err(e) = runs::finish(state, run.id, status, &end).await {
                tracing::error!(job = %def.name, run = run.id, error = %crate::errors::Chain(&e), "cannot record the run end");
            }
        }
        None => record(state, def, status, &end).await,
    }
    status != RunStatus::Failed && status != RunStatus::Guarded
}

/// Records a failed run with `reason`.
pub(super) async fn record_failed(state: &Db, def: &JobDef, reason: &str) {
    let end = RunEnd {
        summary: serde_json::json!({ "schedule": def.name }),
        error: Some(reason.to_string()),
        ..RunEnd::default()
    };
    record(state, def, RunStatus::Failed, &end).await;
}

/// Inserts a finished run of `def`'s job kind.
pub(super) async fn record(state: &Db, def: &JobDef, status: RunStatus, end: &RunEnd) {
    let kind = def.job.name();
    let recorded = async {
        let id = runs::start(state, kind, (None, None), def.dry_run, false).await?;
        runs::finish(state, id, status, end).await
    };
    if let Err(e) = recorded.await {
        tracing::error!(job = %def.name, status = status.as_str(), error = %crate::errors::Chain(&e), "cannot record the run");
    }
}
