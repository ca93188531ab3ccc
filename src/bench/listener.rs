//! Figure 5: the callback listener under load. `clients` concurrent HTTP
//! clients send `callbacks` order callbacks to [`crate::listener::spawn`]:
//! EGON `WriteOrderStatus` (odd indexes) and IMSKLAD pairs for one order, a
//! `set_status` and an `update_tracks` sent back to back (indexes 4k and
//! 4k+2), so that callbacks for the same order are in flight at once. Each is
//! journaled with its effect in one transaction before the answer, so
//! callbacks/s is the persisted rate; afterwards every order's state is
//! checked and an effect that is missing counts as lost (the run fails).

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::load::{Engine, Scratch};
use super::stats::{median, percentile, rate};
use crate::db::Db;
use crate::listener::{ListenerSettings, ListenerState};
use crate::sandbox::common::any_local_port;
use crate::secret::Secret;
use crate::shop::{Queries, Shop};

const IMSKLAD_KEY: &str = "bench-imsklad-key";
const EGON_ID: &str = "bench-egon";
const EGON_KEY: &str = "bench-egon-key";

/// Figure 5 for one state database engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListenerResult {
    /// `sqlite` or `postgres` (the state database the callbacks are journaled in).
    pub engine: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Callbacks sent (and acknowledged).
    pub callbacks: usize,
    /// Wall time, s.
    pub seconds: f64,
    /// Acknowledged (persisted) callbacks per second.
    pub per_second: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Acknowledged effects missing from the order states afterwards (must be 0).
    #[serde(default)]
    pub lost_effects: usize,
    /// Callbacks per transaction when the state database groups commits
    /// (SQLite); `None` for one transaction per callback.
    #[serde(default)]
    pub per_commit: Option<f64>,
}

/// The IMSKLAD order of callback `i` (even), its track.
fn imsklad_order(i: usize) -> (String, String) {
    (format!("B-{:08}", i / 4), format!("T-{:08}", i / 4))
}

/// The `i`-th callback: (path, content type, body).
fn callback(i: usize) -> (&'static str, &'static str, String) {
    if i % 4 == 0 {
        let (id, _) = imsklad_order(i);
        let body = json!({
            "key": IMSKLAD_KEY,
            "type": "order",
            "action": "set_status",
            "data": {"id": id, "old_status": 0, "new_status": 1, "system_id": 100_000 + i},
        });
        ("/imsklad", "application/json", body.to_string())
    } else if i % 4 == 2 {
        let (id, track) = imsklad_order(i);
        let body = json!({
            "key": IMSKLAD_KEY,
            "type": "order",
            "action": "update_tracks",
            "data": [{"id": id, "track": track}],
        });
        ("/imsklad", "application/json", body.to_string())
    } else {
        let req = json!({
            "auth": {"auth_id": EGON_ID, "auth_key": EGON_KEY},
            "request": {"req_method": "WriteOrderStatus", "req_data": {
                "order_original_id": format!("E-{i:08}"), "order_id": 200_000 + i, "status_id": 2,
                "change_timestamp": "2026-01-15 10:00:00"}},
        });
        let form = serde_urlencoded::to_string([("req", req.to_string())]).unwrap_or_default();
        ("/egon", "application/x-www-form-urlencoded", form)
    }
}

fn acknowledged(path: &str, status: u16, body: &serde_json::Value) -> bool {
    status == 200
        && match path {
            "/imsklad" => body["result"] == "ok",
            _ => body["response"]["resp_status"] == 1,
        }
}

/// Starts a listener on a fresh state database of `engine` and loads it.
pub async fn run(
    engine: &Engine,
    clients: usize,
    callbacks: usize,
    work: &Path,
) -> Result<ListenerResult> {
    let scratch = Scratch::create(engine, work, "listener").await?;
    let result = measure(&scratch.url, engine, clients.max(1), callbacks, work).await;
    scratch.drop_db().await;
    result
}

async fn measure(
    state_url: &str,
    engine: &Engine,
    clients: usize,
    callbacks: usize,
    work: &Path,
) -> Result<ListenerResult> {
    let state_db = Db::connect_state(state_url).await?;
    let shop_path = work.join("listener-shop.db");
    let _ = std::fs::remove_file(&shop_path);
    let shop = Shop::new(
        Db::connect(&format!("sqlite://{}", shop_path.display())).await?,
        Queries::builtin(),
    );
    shop.create_reference_schema().await?;
    let server = start_listener(&state_db, &shop).await?;
    let groups_before = state_db.group_commit().map(|g| g.stats());
    let started = Instant::now();
    let latencies = send_callbacks(&server.url, clients, callbacks).await?;
    let seconds = started.elapsed().as_secs_f64();
    server.stop().await;
    let per_commit =
        callbacks_per_commit(groups_before, state_db.group_commit().map(|g| g.stats()));
    let journaled = state_db
        .fetch_all(
            "SELECT id FROM events",
            &[],
            "counting the journaled callbacks",
        )
        .await?
        .len();
    let lost_effects = lost(&state_db, callbacks).await?;
    state_db.close().await;
    shop.db().close().await;
    let _ = std::fs::remove_file(&shop_path);
    if journaled < callbacks {
        bail!("only {journaled} of {callbacks} callbacks were journaled");
    }
    if lost_effects > 0 {
        bail!("{lost_effects} acknowledged effects were lost (of {callbacks} callbacks)");
    }
    Ok(ListenerResult {
        engine: engine.name().to_string(),
        clients,
        callbacks,
        seconds,
        per_second: rate(callbacks, seconds),
        p50_ms: median(&latencies).unwrap_or(0.0),
        p99_ms: percentile(&latencies, 99.0).unwrap_or(0.0),
        lost_effects,
        per_commit,
    })
}

/// Starts the listener on any local port with the bench's keys.
async fn start_listener(state_db: &Db, shop: &Shop) -> Result<crate::server::RunningServer> {
    let settings = ListenerSettings {
        bind: any_local_port(),
        imsklad_callback_key: Secret::new(IMSKLAD_KEY),
        egon_auth_id: EGON_ID.into(),
        egon_auth_key: Secret::new(EGON_KEY),
        ..ListenerSettings::default()
    };
    crate::listener::spawn(
        ListenerState {
            settings: Arc::new(settings),
            state_db: state_db.clone(),
            shop: shop.clone(),
        },
        any_local_port(),
    )
    .await
    .context("starting the listener")
}

/// Sends `callbacks` callbacks to `base` from `clients` concurrent clients;
/// returns every callback's latency, ms.
async fn send_callbacks(base: &str, clients: usize, callbacks: usize) -> Result<Vec<f64>> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, next, base) = (http.clone(), next.clone(), base.to_string());
        tasks.spawn(async move { client(&http, &next, &base, callbacks).await });
    }
    let mut latencies = Vec::with_capacity(callbacks);
    while let Some(joined) = tasks.join_next().await {
        latencies.extend(joined??);
    }
    Ok(latencies)
}

/// One client: sends the next unsent callback until all `callbacks` are
/// taken; returns its latencies, ms.
async fn client(
    http: &reqwest::Client,
    next: &AtomicUsize,
    base: &str,
    callbacks: usize,
) -> Result<Vec<f64>> {
    let mut latencies = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= callbacks {
            return Ok(latencies);
        }
        let (path, content_type, body) = callback(i);
        let t = Instant::now();
        let resp = http
            .post(format!("{base}{path}"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let answer: serde_json::Value = resp.json().await?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        if !acknowledged(path, status, &answer) {
            bail!("callback {i} to {path} not acknowledged: HTTP {status} {answer}");
        }
    }
}

/// Journaled events per group commit between two snapshots (None: no group
/// commit, or no group committed in between).
fn callbacks_per_commit(
    before: Option<crate::db::group_commit::GroupStats>,
    after: Option<crate::db::group_commit::GroupStats>,
) -> Option<f64> {
    match (after, before) {
        (Some(after), Some(before)) if after.groups > before.groups => {
            Some((after.events - before.events) as f64 / (after.groups - before.groups) as f64)
        }
        _ => None,
    }
}

/// Effects of the `callbacks` sent that the order states do not show.
async fn lost(state_db: &Db, callbacks: usize) -> Result<usize> {
    let states: std::collections::HashMap<String, crate::db::events::OrderState> =
        crate::db::events::order_states(state_db)
            .await?
            .into_iter()
            .map(|o| (o.order_id.clone(), o))
            .collect();
    let mut lost = 0;
    for i in 0..callbacks {
        let ok = match i % 4 {
            0 => states
                .get(&imsklad_order(i).0)
                .is_some_and(|o| o.wms_status == Some(1)),
            2 => {
                let (id, track) = imsklad_order(i);
                states
                    .get(&id)
                    .is_some_and(|o| o.track.as_deref() == Some(track.as_str()))
            }
            _ => states
                .get(&format!("E-{i:08}"))
                .is_some_and(|o| o.wms_status == Some(2)),
        };
        if !ok {
            lost += 1;
        }
    }
    Ok(lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_alternate_and_pair_up_on_one_order() {
        let (p0, _, b0) = callback(0);
        let (p1, c1, b1) = callback(1);
        let (p2, _, b2) = callback(2);
        assert_eq!((p0, p1, p2), ("/imsklad", "/egon", "/imsklad"));
        assert_eq!(c1, "application/x-www-form-urlencoded");
        assert!(b0.contains("set_status") && b2.contains("update_tracks"));
        assert!(b0.contains("B-00000000") && b2.contains("B-00000000"));
        assert!(b1.starts_with("req="));
        assert!(callback(4).2.contains("B-00000001"));
    }
}
