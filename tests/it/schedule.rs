//! The scheduler daemon, driven by a hand-moved clock: no test waits for a real
//! cron tick. Fake runners stand in for the jobs.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

use sverka::db::runs::{self, RunEnd, RunRecord, RunStatus};
use sverka::db::Db;
use sverka::jobs::schedule::{
    list, load_dir, next_fire, Clock, JobDef, JobRunner, ManualClock, ScheduleError, Scheduler,
};
use sverka::jobs::StopSignal;
use sverka::report::summary::{CorrectionCounts, JobSummary};

use crate::support;

type RunFuture<'a> = Pin<Box<dyn Future<Output = JobSummary> + Send + 'a>>;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

fn def(name: &str, job: &str, cron: &str, tz: &str) -> JobDef {
    def_with(name, job, cron, tz, "")
}

fn def_with(name: &str, job: &str, cron: &str, tz: &str, extra: &str) -> JobDef {
    let text = format!(
        "name = \"{name}\"\njob = \"{job}\"\ncron = \"{cron}\"\ntimezone = \"{tz}\"\n{extra}\n"
    );
    JobDef::parse(&text, Path::new(&format!("{name}.toml"))).expect("test definition")
}

fn summary(def: &JobDef, run_id: i64, status: RunStatus, error: Option<&str>) -> JobSummary {
    JobSummary {
        job: def.job.name().into(),
        run_id,
        status,
        dry_run: def.dry_run,
        forced: false,
        counts: BTreeMap::new(),
        corrections: CorrectionCounts::default(),
        reports: Vec::new(),
        duration_ms: 0,
        guard: None,
        error: error.map(str::to_string),
        extra: serde_json::Value::Null,
    }
}

async fn state_db() -> (support::TestDb, Db) {
    let test_db = support::sqlite();
    let db = Db::connect_state(&test_db.url).await.expect("state db");
    (test_db, db)
}

/// Polls `check` until it holds (a safety net against hangs, not a time limit
/// under test).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..2000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never happened: {what}");
}

/// Waits until the scheduler sleeps again after the clock moved: everything the
/// clock move triggered in the loop itself is done.
async fn settled(clock: &ManualClock) {
    eventually("the scheduler sleeps", || async { clock.sleepers() >= 1 }).await;
}

async fn runs_of(db: &Db, job: &str) -> Vec<RunRecord> {
    let mut all = runs::recent(db, Some(job), 100).await.expect("runs");
    all.reverse();
    all
}

type Journal = Arc<Mutex<Vec<String>>>;

fn entries(journal: &Journal) -> Vec<String> {
    journal.lock().expect("journal").clone()
}

fn push(journal: &Journal, entry: String) {
    journal.lock().expect("journal").push(entry);
}

/// Starts `scheduler` in a task; the returned sender shuts it down.
fn start(scheduler: Scheduler) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        scheduler
            .run(async move {
                let _ = rx.await;
            })
            .await;
    });
    (tx, handle)
}

/// Journals the job name with the clock's time and returns at once.
struct Recorder {
    clock: Arc<ManualClock>,
    journal: Journal,
}

impl JobRunner for Recorder {
    fn run<'a>(&'a self, def: &'a JobDef, _stop: StopSignal) -> RunFuture<'a> {
        Box::pin(async move {
            push(
                &self.journal,
                format!("{} {}", def.name, self.clock.now().to_rfc3339()),
            );
            summary(def, 0, RunStatus::Clean, None)
        })
    }
}

#[tokio::test]
async fn jobs_fire_at_their_ticks_in_moscow_and_across_berlin_dst() {
    let (_guard, db) = state_db().await;
    let clock = Arc::new(ManualClock::new(utc("2026-03-28T12:00:00Z")));
    let journal = Journal::default();
    let runner = Arc::new(Recorder {
        clock: Arc::clone(&clock),
        journal: Arc::clone(&journal),
    });
    let defs = vec![
        def("moscow", "orders", "30 3 * * *", "Europe/Moscow"),
        def("berlin", "billing", "30 2 * * *", "Europe/Berlin"),
    ];
    let scheduler = Scheduler::new(defs, runner, clock.clone(), db.clone());
    let status = scheduler.status();
    let (stop, handle) = start(scheduler);
    settled(&clock).await;

    // Each step: move the clock, then wait for the fires it causes.
    let steps: [(&str, usize); 7] = [
        // 03:30 MSK.
        ("2026-03-29T00:30:00Z", 1),
        // 02:30 Berlin does not exist that night: fired at the jump, 03:00 CEST.
        ("2026-03-29T01:00:00Z", 2),
        // 03:30 MSK and 02:30 CEST are the same instant.
        ("2026-03-30T00:30:00Z", 4),
        // Seven months asleep: every job fires once, not once per missed tick.
        ("2026-10-24T12:00:00Z", 6),
        // 03:30 MSK and the first 02:30 of Berlin's repeated hour (CEST).
        ("2026-10-25T00:30:00Z", 8),
        // The second 02:30 (CET) is no tick.
        ("2026-10-26T00:30:00Z", 9),
        ("2026-10-26T01:30:00Z", 10),
    ];
    for (at, expected) in steps {
        clock.set(utc(at));
        // Fired, and the runs over (so the jobs are free for their next tick).
        eventually(&format!("{expected} fires by {at}"), || async {
            entries(&journal).len() >= expected && status.is_idle()
        })
        .await;
        settled(&clock).await;
    }
    let mut fired = entries(&journal);
    fired.sort_by(|a, b| {
        let time = |s: &str| s.split(' ').nth(1).unwrap_or_default().to_string();
        time(a).cmp(&time(b)).then(a.cmp(b))
    });
    assert_eq!(
        fired,
        [
            "moscow 2026-03-29T00:30:00+00:00",
            "berlin 2026-03-29T01:00:00+00:00",
            "berlin 2026-03-30T00:30:00+00:00",
            "moscow 2026-03-30T00:30:00+00:00",
            "berlin 2026-10-24T12:00:00+00:00",
            "moscow 2026-10-24T12:00:00+00:00",
            "berlin 2026-10-25T00:30:00+00:00",
            "moscow 2026-10-25T00:30:00+00:00",
            "moscow 2026-10-26T00:30:00+00:00",
            "berlin 2026-10-26T01:30:00+00:00",
        ]
    );
    // Runs reported with run id 0 are recorded by the scheduler.
    for kind in ["orders", "billing"] {
        let runs = runs_of(&db, kind).await;
        assert_eq!(runs.len(), 5, "{kind}");
        assert!(runs.iter().all(|r| r.status == RunStatus::Clean), "{kind}");
    }
    let _ = stop.send(());
    handle.await.expect("scheduler");
}

/// Records its own run like the real jobs, then blocks until released.
struct Gate {
    db: Db,
    journal: Journal,
    release: Arc<Semaphore>,
}

impl JobRunner for Gate {
    fn run<'a>(&'a self, def: &'a JobDef, _stop: StopSignal) -> RunFuture<'a> {
        Box::pin(async move {
            let id = runs::start(&self.db, def.job.name(), (None, None), false, false)
                .await
                .expect("run start");
            push(&self.journal, format!("start {id}"));
            let permit = self.release.acquire().await.expect("gate");
            permit.forget();
            runs::finish(&self.db, id, RunStatus::Clean, &RunEnd::default())
                .await
                .expect("run end");
            push(&self.journal, format!("end {id}"));
            summary(def, id, RunStatus::Clean, None)
        })
    }
}

#[tokio::test]
async fn a_tick_during_a_run_is_skipped_recorded_and_caught_up_once() {
    let (_guard, db) = state_db().await;
    let clock = Arc::new(ManualClock::new(utc("2026-11-22T10:05:00Z")));
    let journal = Journal::default();
    let release = Arc::new(Semaphore::new(0));
    let runner = Arc::new(Gate {
        db: db.clone(),
        journal: Arc::clone(&journal),
        release: Arc::clone(&release),
    });
    let defs = vec![
        def("stock-quarterly", "stock", "*/15 * * * *", "UTC"),
        // Same job kind: it must not run while stock-quarterly runs either.
        def("stock-hourly", "stock", "0 * * * *", "UTC"),
    ];
    let scheduler = Scheduler::new(defs, runner, clock.clone(), db.clone());
    let (stop, handle) = start(scheduler);
    settled(&clock).await;

    clock.set(utc("2026-11-22T10:15:00Z"));
    eventually("the first run starts", || async {
        entries(&journal).len() == 1
    })
    .await;
    settled(&clock).await;
    for at in [
        "2026-11-22T10:30:00Z",
        "2026-11-22T10:45:00Z",
        "2026-11-22T11:00:00Z",
    ] {
        clock.set(utc(at));
        settled(&clock).await;
    }
    eventually("four skipped ticks recorded", || async {
        runs_of(&db, "stock")
            .await
            .iter()
            .filter(|r| r.status == RunStatus::Skipped)
            .count()
            == 4
    })
    .await;
    let skipped: Vec<RunRecord> = runs_of(&db, "stock")
        .await
        .into_iter()
        .filter(|r| r.status == RunStatus::Skipped)
        .collect();
    let reasons: Vec<String> = skipped.iter().filter_map(|r| r.error.clone()).collect();
    // 10:30, 10:45 and 11:00 of stock-quarterly, 11:00 of stock-hourly.
    assert_eq!(reasons.len(), 4);
    assert!(
        reasons[0].contains("2026-11-22 10:30:00 UTC"),
        "{}",
        reasons[0]
    );
    assert!(reasons[0].contains("still running"), "{}", reasons[0]);
    assert!(reasons[0].contains("`stock-quarterly`"), "{}", reasons[0]);
    assert!(reasons[3].contains("`stock-hourly`"), "{}", reasons[3]);
    assert!(skipped.iter().all(|r| r.finished_at.is_some()));
    assert_eq!(
        entries(&journal).len(),
        1,
        "nothing ran beside the first run"
    );

    // The run ends: one catch-up run per definition that missed ticks, one
    // after the other, not one per missed tick.
    release.add_permits(1);
    eventually("the first catch-up starts", || async {
        entries(&journal).len() == 3
    })
    .await;
    release.add_permits(1);
    eventually("the second catch-up starts", || async {
        entries(&journal).len() == 5
    })
    .await;
    release.add_permits(1);
    eventually("the second catch-up ends", || async {
        entries(&journal).len() == 6
    })
    .await;
    clock.set(utc("2026-11-22T11:14:59Z"));
    settled(&clock).await;
    assert_eq!(entries(&journal).len(), 6, "no further catch-up");
    let statuses: Vec<RunStatus> = runs_of(&db, "stock")
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == RunStatus::Clean).count(),
        3
    );
    assert!(!statuses.contains(&RunStatus::Running));
    let _ = stop.send(());
    handle.await.expect("scheduler");
}

/// Panics for `boom`, fails for `bad` (leaving its run open), succeeds otherwise.
struct Troubled {
    db: Db,
}

impl JobRunner for Troubled {
    fn run<'a>(&'a self, def: &'a JobDef, _stop: StopSignal) -> RunFuture<'a> {
        Box::pin(async move {
            match def.name.as_str() {
                "boom" => panic!("boom: the WMS answered nonsense"),
                "bad" => {
                    let id = runs::start(&self.db, def.job.name(), (None, None), false, false)
                        .await
                        .expect("run start");
                    summary(def, id, RunStatus::Failed, Some("the WMS is unreachable"))
                }
                _ => summary(def, 0, RunStatus::Clean, None),
            }
        })
    }
}

#[tokio::test]
async fn failing_and_panicking_jobs_are_recorded_and_the_others_keep_firing() {
    let (_guard, db) = state_db().await;
    let clock = Arc::new(ManualClock::new(utc("2026-11-22T10:01:00Z")));
    let runner = Arc::new(Troubled { db: db.clone() });
    let defs = vec![
        def("boom", "stock", "*/5 * * * *", "UTC"),
        def("bad", "orders", "*/5 * * * *", "UTC"),
        def("good", "billing", "*/5 * * * *", "UTC"),
    ];
    let scheduler = Scheduler::new(defs, runner, clock.clone(), db.clone());
    let status = scheduler.status();
    let (stop, handle) = start(scheduler);
    settled(&clock).await;

    for (round, at) in ["2026-11-22T10:05:00Z", "2026-11-22T10:10:00Z"]
        .into_iter()
        .enumerate()
    {
        clock.set(utc(at));
        eventually("every job's run is recorded", || async {
            let done = |runs: Vec<RunRecord>| {
                runs.iter()
                    .filter(|r| r.status != RunStatus::Running)
                    .count()
                    == round + 1
            };
            status.is_idle()
                && done(runs_of(&db, "stock").await)
                && done(runs_of(&db, "orders").await)
                && done(runs_of(&db, "billing").await)
        })
        .await;
        settled(&clock).await;
    }
    let stock = runs_of(&db, "stock").await;
    assert_eq!(stock.len(), 2);
    for run in &stock {
        assert_eq!(run.status, RunStatus::Failed);
        let error = run.error.as_deref().unwrap_or_default();
        assert!(error.contains("panicked: boom"), "{error}");
    }
    let orders = runs_of(&db, "orders").await;
    assert_eq!(
        orders.len(),
        2,
        "the job's own run is closed, not duplicated"
    );
    for run in &orders {
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.error.as_deref(), Some("the WMS is unreachable"));
    }
    let billing = runs_of(&db, "billing").await;
    assert_eq!(billing.len(), 2);
    assert!(billing.iter().all(|r| r.status == RunStatus::Clean));
    let _ = stop.send(());
    handle.await.expect("scheduler");
}

/// Works in steps: journals `planned N`, waits for the step to be released,
/// journals `settled N`, and checks `stop` between steps.
struct Stepper {
    journal: Journal,
    release: Arc<Semaphore>,
    seen: Arc<Mutex<Option<StopSignal>>>,
    steps: u32,
}

impl JobRunner for Stepper {
    fn run<'a>(&'a self, def: &'a JobDef, stop: StopSignal) -> RunFuture<'a> {
        Box::pin(async move {
            *self.seen.lock().expect("seen") = Some(stop.clone());
            let mut status = RunStatus::Clean;
            for step in 1..=self.steps {
                if stop.is_stopped() {
                    push(&self.journal, "stopped".into());
                    status = RunStatus::Discrepancies;
                    break;
                }
                push(&self.journal, format!("planned {step}"));
                let permit = self.release.acquire().await.expect("step");
                permit.forget();
                push(&self.journal, format!("settled {step}"));
            }
            summary(def, 0, status, None)
        })
    }
}

#[tokio::test]
async fn shutdown_lets_the_current_step_finish_and_returns() {
    let (_guard, db) = state_db().await;
    let clock = Arc::new(ManualClock::new(utc("2026-11-22T10:01:00Z")));
    let journal = Journal::default();
    let release = Arc::new(Semaphore::new(0));
    let seen = Arc::new(Mutex::new(None::<StopSignal>));
    let runner = Arc::new(Stepper {
        journal: Arc::clone(&journal),
        release: Arc::clone(&release),
        seen: Arc::clone(&seen),
        steps: 5,
    });
    let defs = vec![def("steps", "stock", "*/5 * * * *", "UTC")];
    let scheduler =
        Scheduler::new(defs, runner, clock.clone(), db.clone()).with_grace(Duration::from_secs(30));
    let (stop, handle) = start(scheduler);
    settled(&clock).await;

    clock.set(utc("2026-11-22T10:05:00Z"));
    eventually("step 1 is under way", || async {
        entries(&journal) == ["planned 1"]
    })
    .await;
    let _ = stop.send(());
    eventually("the job is asked to stop", || async {
        seen.lock()
            .expect("seen")
            .as_ref()
            .is_some_and(StopSignal::is_stopped)
    })
    .await;
    assert!(!handle.is_finished(), "the scheduler waits for the job");
    // Moving the clock past more ticks fires nothing now.
    clock.set(utc("2026-11-22T10:20:00Z"));
    release.add_permits(1);
    handle.await.expect("scheduler");

    let journal = entries(&journal);
    assert_eq!(journal, ["planned 1", "settled 1", "stopped"]);
    let planned = journal.iter().filter(|e| e.starts_with("planned")).count();
    let settled_steps = journal.iter().filter(|e| e.starts_with("settled")).count();
    assert_eq!(planned, settled_steps, "every planned step is settled");
    let runs = runs_of(&db, "stock").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Discrepancies);
}

/// Never returns, ignoring the stop signal.
struct Stuck;

impl JobRunner for Stuck {
    fn run<'a>(&'a self, _def: &'a JobDef, _stop: StopSignal) -> RunFuture<'a> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn a_job_that_ignores_the_stop_is_cancelled_after_the_grace_period() {
    let (_guard, db) = state_db().await;
    let clock = Arc::new(ManualClock::new(utc("2026-11-22T10:01:00Z")));
    let defs = vec![def("stuck", "scans", "*/5 * * * *", "UTC")];
    let scheduler = Scheduler::new(defs, Arc::new(Stuck), clock.clone(), db.clone())
        .with_grace(Duration::from_millis(50));
    let (stop, handle) = start(scheduler);
    settled(&clock).await;
    clock.set(utc("2026-11-22T10:05:00Z"));
    settled(&clock).await;
    let _ = stop.send(());
    handle.await.expect("scheduler");
    let runs = runs_of(&db, "scans").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Failed);
    let error = runs[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("grace period"), "{error}");
}

/// Fails the `orders` job, succeeds otherwise.
struct FailOrders;

impl JobRunner for FailOrders {
    fn run<'a>(&'a self, def: &'a JobDef, _stop: StopSignal) -> RunFuture<'a> {
        Box::pin(async move {
            if def.job.name() == "orders" {
                summary(def, 0, RunStatus::Failed, Some("CRM down"))
            } else {
                summary(def, 0, RunStatus::Discrepancies, None)
            }
        })
    }
}

#[tokio::test]
async fn heartbeats_ping_start_success_and_fail() {
    use axum::extract::OriginalUri;
    use axum::routing::get;
    use sverka::sandbox::common::any_local_port;
    use sverka::server::spawn;

    let pings = Journal::default();
    let seen = Arc::clone(&pings);
    let router = axum::Router::new().route(
        "/{*rest}",
        get(move |OriginalUri(uri): OriginalUri| {
            let seen = Arc::clone(&seen);
            async move {
                push(&seen, uri.path().to_string());
                "OK"
            }
        }),
    );
    let stub = spawn(router, any_local_port()).await.expect("stub");
    // A port nobody listens on: that heartbeat fails, the job must not.
    let closed = {
        let listener = std::net::TcpListener::bind(any_local_port()).expect("port");
        listener.local_addr().expect("addr")
    };

    let (_guard, db) = state_db().await;
    let clock = Arc::new(ManualClock::new(utc("2026-11-22T10:01:00Z")));
    let hb = |url: String| format!("heartbeat_url = \"{url}\"");
    let defs = vec![
        def_with(
            "ok",
            "stock",
            "*/5 * * * *",
            "UTC",
            &hb(format!("{}/ping/ok/", stub.url)),
        ),
        def_with(
            "bad",
            "orders",
            "*/5 * * * *",
            "UTC",
            &hb(format!("{}/ping/bad", stub.url)),
        ),
        def_with(
            "down",
            "billing",
            "*/5 * * * *",
            "UTC",
            &hb(format!("http://{closed}/ping")),
        ),
    ];
    let scheduler = Scheduler::new(defs, Arc::new(FailOrders), clock.clone(), db.clone())
        .with_heartbeat_timeout(Duration::from_secs(2));
    let (stop, handle) = start(scheduler);
    settled(&clock).await;
    clock.set(utc("2026-11-22T10:05:00Z"));
    // Each run finished (its record written after its last heartbeat), not just begun.
    let finished = |runs: Vec<sverka::db::runs::RunRecord>| {
        runs.len() == 1 && runs[0].status != RunStatus::Running
    };
    eventually("four pings and three finished runs", || async {
        entries(&pings).len() == 4
            && finished(runs_of(&db, "billing").await)
            && finished(runs_of(&db, "orders").await)
            && finished(runs_of(&db, "stock").await)
    })
    .await;
    let got = entries(&pings);
    let position = |p: &str| got.iter().position(|g| g == p);
    for path in [
        "/ping/ok/start",
        "/ping/ok",
        "/ping/bad/start",
        "/ping/bad/fail",
    ] {
        assert!(position(path).is_some(), "{path} missing from {got:?}");
    }
    assert!(position("/ping/ok/start") < position("/ping/ok"));
    assert!(position("/ping/bad/start") < position("/ping/bad/fail"));
    let billing = runs_of(&db, "billing").await;
    assert_eq!(
        billing[0].status,
        RunStatus::Discrepancies,
        "a failing heartbeat never fails the job"
    );
    let _ = stop.send(());
    handle.await.expect("scheduler");
    stub.stop().await;
}

#[tokio::test]
async fn the_shipped_job_definitions_parse_and_fire_when_expected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
    let defs = load_dir(&dir).expect("jobs/*.toml");
    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "billing",
            "orders",
            "scans",
            "stock-hourly",
            "stock-nightly"
        ]
    );
    assert!(defs.iter().all(|d| d.enabled && !d.dry_run));
    assert!(defs.iter().all(|d| d.timezone == chrono_tz::Europe::Moscow));
    // 18:00 in Moscow.
    let clock = ManualClock::new(utc("2026-11-22T15:00:00Z"));
    let next: BTreeMap<String, Option<DateTime<Utc>>> =
        list(&defs, &clock).await.into_iter().collect();
    let expect = [
        ("billing", "2026-11-23T03:00:00Z"),
        ("orders", "2026-11-22T15:15:00Z"),
        ("scans", "2026-11-22T15:05:00Z"),
        ("stock-hourly", "2026-11-22T15:05:00Z"),
        ("stock-nightly", "2026-11-23T00:30:00Z"),
    ];
    for (name, at) in expect {
        assert_eq!(next[name], Some(utc(at)), "{name}");
    }
    let orders = defs.iter().find(|d| d.name == "orders").expect("orders");
    assert_eq!(orders.window_days, Some(30));
    assert_eq!(
        next_fire(orders, utc("2026-11-22T15:15:00Z")),
        Some(utc("2026-11-22T15:30:00Z"))
    );
    assert_eq!(clock.now(), utc("2026-11-22T15:00:00Z"));
}

#[tokio::test]
async fn a_jobs_folder_with_mistakes_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |file: &str, text: &str| {
        std::fs::write(dir.path().join(file), text).expect("write");
    };
    write(
        "a.toml",
        "name = \"a\"\njob = \"stock\"\ncron = \"5 * * * *\",\n",
    );
    let err = load_dir(dir.path()).expect_err("trailing comma is not TOML");
    assert!(matches!(err, ScheduleError::Toml { .. }), "{err}");

    write(
        "a.toml",
        "name = \"a\"\njob = \"stock\"\ncron = \"5 * * * *\"\n",
    );
    write(
        "b.toml",
        "name = \"a\"\njob = \"orders\"\ncron = \"*/15 * * * *\"\n",
    );
    let err = load_dir(dir.path()).expect_err("duplicate name");
    assert!(matches!(err, ScheduleError::DuplicateName { .. }), "{err}");
    assert!(err.to_string().contains("b.toml"), "{err}");

    write(
        "b.toml",
        "name = \"b\"\njob = \"orders\"\ncron = \"*/15 * * * *\"\nretries = 3\n",
    );
    let err = load_dir(dir.path()).expect_err("unknown key");
    let text = err.to_string();
    assert!(
        text.contains("b.toml") && text.contains("`retries`"),
        "{text}"
    );

    write(
        "b.toml",
        "name = \"b\"\njob = \"orders\"\ncron = \"*/15 * * * *\"\nenabled = false\n",
    );
    write("notes.txt", "not a job");
    let defs = load_dir(dir.path()).expect("valid folder");
    assert_eq!(defs.len(), 2);
    let clock = ManualClock::new(utc("2026-11-22T15:00:00Z"));
    let listed = list(&defs, &clock).await;
    assert_eq!(
        listed,
        [
            ("a".to_string(), Some(utc("2026-11-22T15:05:00Z"))),
            ("b".to_string(), None)
        ]
    );
}

/// The real daemon: `sverka schedule` as a process with a stock job firing every
/// second against the sandbox. SIGTERM arrives while a run is applying its
/// corrections; the daemon lets the run finish its step, records it, and exits 0
/// with no run left `running`, no correction left `planned`, and the job lock
/// free for the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_daemon_mid_run_leaves_the_journal_consistent() {
    use sverka::sandbox::world::WorldSpec;
    use sverka::sandbox::SandboxOptions;

    // A latency on every request makes the apply step last long enough to be
    // interrupted (one IMSKLAD look-up per unmapped SKU, the CRM upload).
    let shop_db = crate::support::sqlite();
    let mut opts = crate::support::WorldOptions::new(
        WorldSpec {
            seed: 11,
            skus: 3000,
            orders: 0,
            days: 1,
            drift: true,
        },
        sverka::config::WmsKind::Imsklad,
    );
    opts.sandbox = SandboxOptions {
        latency: Duration::from_millis(40),
        ..SandboxOptions::default()
    };
    let w = crate::support::TestWorld::spawn(&shop_db, opts).await;
    let (dir, set, state) = (&w.dir, &w.set, &w.state);
    let state_url = format!("sqlite://{}", dir.path().join("state.db").display());
    let shop_url = shop_db.url.clone();
    let k = &set.keys;
    std::fs::write(
        dir.path().join("sverka.toml"),
        format!(
            "[state]\ndatabase_url = \"{state_url}\"\n\
             [shop]\ndatabase_url = \"{shop_url}\"\n\
             [imsklad]\nurl = \"{}\"\nkey = \"{}\"\nstorage_id = {}\n\
             [retailcrm]\nurl = \"{}\"\napi_key = \"{}\"\nsite = \"{}\"\nstore = \"{}\"\n\
             [safety]\nmax_change_share = 0.9\n\
             [reports]\ndir = \"reports\"\n",
            set.urls.imsklad,
            k.imsklad_key,
            k.imsklad_storage_id,
            set.urls.retailcrm,
            k.retailcrm_key,
            k.retailcrm_site,
            k.retailcrm_store,
        ),
    )
    .expect("config");
    let jobs = dir.path().join("jobs");
    std::fs::create_dir(&jobs).expect("jobs dir");
    std::fs::write(
        jobs.join("stock.toml"),
        "name = \"stock-every-second\"\njob = \"stock\"\ncron = \"* * * * * *\"\ntimezone = \"UTC\"\n",
    )
    .expect("job");

    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_sverka"))
        .args(["schedule", "--jobs-dir", "jobs"])
        .current_dir(dir.path())
        .env("RUST_LOG", "sverka=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sverka schedule starts");
    let pid = daemon.id().expect("pid");

    // Wait until the first run journals corrections, i.e. it is applying.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let journaled = state
            .fetch_all(
                "SELECT id FROM corrections WHERE job = ?",
                &["stock".into()],
                "journaled corrections",
            )
            .await
            .expect("corrections")
            .len();
        if journaled > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no correction was journaled within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = tokio::time::timeout(Duration::from_secs(90), daemon.wait())
        .await
        .expect("the daemon exits after SIGTERM")
        .expect("exit status");
    let mut stderr = String::new();
    if let Some(mut err) = daemon.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = err.read_to_string(&mut stderr).await;
    }
    assert!(status.success(), "exit {status:?}\n{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");

    let runs = runs_of(state, "stock").await;
    assert!(!runs.is_empty());
    assert!(
        runs.iter().all(|r| r.status != RunStatus::Running),
        "a run was left running: {runs:?}"
    );
    let planned = state
        .fetch_all(
            "SELECT id FROM corrections WHERE status = ?",
            &["planned".into()],
            "planned corrections",
        )
        .await
        .expect("corrections");
    assert!(
        planned.is_empty(),
        "{} corrections left planned",
        planned.len()
    );

    // The lock went with the daemon: the next run starts (not refused: exit 2)
    // and applies whatever the stopped run left; after it nothing differs.
    let reconcile = || async {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sverka"))
            .args(["reconcile", "stock", "--json"])
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .output()
            .await
            .expect("reconcile");
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), summary)
    };
    let (code, summary) = reconcile().await;
    assert_eq!(code, Some(1), "{summary}");
    assert_eq!(summary["corrections"]["failed"], 0, "{summary}");
    let (code, summary) = reconcile().await;
    assert_eq!(code, Some(1), "{summary}");
    assert_eq!(summary["corrections"]["applied"], 0, "{summary}");
    for class in ["qty_mismatch_crm", "qty_mismatch_shop"] {
        assert!(summary["counts"].get(class).is_none(), "{summary}");
    }
    state.close().await;
    w.set.stop().await;
}
