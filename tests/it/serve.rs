//! Issue 13: a listener that cannot be held open (timeouts, connection cap,
//! shutdown grace), several `sverka serve` processes on one PostgreSQL, and
//! kill -9 right after an acknowledged callback.

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use sverka::db::events;
use sverka::db::Db;
use sverka::listener::{self, ListenerSettings, ListenerState};
use sverka::shop::{Queries, Shop};

use crate::atomic::{self, IMSKLAD_KEY};
use crate::support;

/// Reads from `stream` until it is closed (Ok(bytes read)) or `limit` passes (Err).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Result<usize, ()> {
    let mut buf = vec![0u8; 4096];
    let mut total = 0;
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(total),
            Ok(Ok(n)) => total += n,
            Err(_) => return Err(()),
        }
    }
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    let t = support::sqlite();
    let settings = ListenerSettings {
        header_timeout: Duration::from_millis(700),
        body_timeout: Duration::from_millis(700),
        max_connections: 2,
        ..atomic::settings()
    };
    let f = atomic::Listener::start_with(&t.url, settings).await;
    let addr = f.server.addr;

    // Headers that never end: the connection is closed after the header timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /imsklad HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(5))
        .await
        .is_ok());

    // A body that never arrives: answered (413, IMSKLAD's code 3) after the body timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /imsklad HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"key\":")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut answer))
        .await
        .expect("answered within the body timeout")
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 413"));

    // Two idle connections fill the cap: a third client is not served...
    let idle1 = TcpStream::connect(addr).await.unwrap();
    let idle2 = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let url = format!("{}/healthz", f.server.url);
    assert!(quick.get(&url).send().await.is_err(), "served past the cap");
    // ... until they are gone (closed by the header timeout at the latest).
    drop((idle1, idle2));
    let mut served = false;
    for _ in 0..30 {
        if quick
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "never served after the idle connections went away");
    f.stop().await;
}

#[tokio::test]
async fn shutdown_waits_at_most_the_grace() {
    let t = support::sqlite();
    let state_db = Db::connect_state(&t.url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shop = Shop::new(
        Db::connect(&format!("sqlite://{}", dir.path().join("s.db").display()))
            .await
            .unwrap(),
        Queries::builtin(),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let settings = ListenerSettings {
        bind: port,
        header_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(60),
        shutdown_grace: Duration::from_millis(500),
        ..atomic::settings()
    };
    let state = ListenerState {
        settings: Arc::new(settings),
        state_db,
        shop,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(listener::serve(state, async move {
        let _ = rx.await;
    }));
    // A client that holds a request open (its body never arrives).
    let mut held = None;
    for _ in 0..50 {
        if let Ok(mut s) = TcpStream::connect(port).await {
            s.write_all(b"POST /imsklad HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
                .await
                .unwrap();
            held = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(held.is_some(), "listener never came up");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("serve returned within the grace")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
}

// --- the built binary ------------------------------------------------------

/// A free local port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a configuration for `sverka serve` on `port`.
fn write_config(
    dir: &Path,
    name: &str,
    state_url: &str,
    shop_url: &str,
    port: u16,
) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[state]\ndatabase_url = \"{state_url}\"\n[shop]\ndatabase_url = \"{shop_url}\"\n\
             [imsklad]\ncallback_key = \"{IMSKLAD_KEY}\"\n[listener]\nbind = \"127.0.0.1:{port}\"\n\
             shutdown_grace_secs = 2\n"
        ),
    )
    .unwrap();
    path
}

/// A `sverka serve` process.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    async fn start(config: &Path, port: u16) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sverka"))
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sverka serve");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if http
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return Serve { child, url };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("sverka serve on {port} never answered /healthz");
    }

    /// kill -9 and reap.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_serve_processes_on_one_postgres_lose_nothing() {
    let Some(t) = support::engines("two serve processes")
        .await
        .into_iter()
        .find(|t| t.engine() == "postgres")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shop_url = format!("sqlite://{}", dir.path().join("shop.db").display());
    // Migrations once, before two processes start at the same moment.
    Db::connect_state(&t.url).await.unwrap().close().await;
    let (pa, pb) = (free_port(), free_port());
    let a = Serve::start(
        &write_config(dir.path(), "a.toml", &t.url, &shop_url, pa),
        pa,
    )
    .await;
    let b = Serve::start(
        &write_config(dir.path(), "b.toml", &t.url, &shop_url, pb),
        pb,
    )
    .await;
    let urls = vec![format!("{}/imsklad", a.url), format!("{}/imsklad", b.url)];
    let http = reqwest::Client::new();
    // Each pair's two callbacks go to different processes (round robin).
    atomic::status_and_track_pairs(&http, &urls, "TWO", 120, true).await;
    atomic::status_and_track_pairs(&http, &urls, "NEW", 60, false).await;
    let db = Db::connect_state(&t.url).await.unwrap();
    let states = atomic::orders(&db).await;
    atomic::assert_pairs(&states, "TWO", 120, "postgres, two processes");
    atomic::assert_pairs(&states, "NEW", 60, "postgres, two processes");
    drop((a, b));
    db.close().await;
    t.drop_db().await;
}

#[tokio::test]
async fn kill_9_right_after_an_acknowledged_callback_loses_nothing() {
    for t in support::engines("kill -9 loop").await {
        if t.engine() == "mysql" {
            // SQLite (the default, fsync'ed at commit) and PostgreSQL are looped; MySQL
            // shares the code path of PostgreSQL.
            t.drop_db().await;
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let shop_url = format!("sqlite://{}", dir.path().join("shop.db").display());
        let port = free_port();
        let config = write_config(dir.path(), "k.toml", &t.url, &shop_url, port);
        let http = reqwest::Client::new();
        let mut acknowledged = Vec::new();
        for cycle in 0..20 {
            let serve = Serve::start(&config, port).await;
            // The previous cycle's last callback, redelivered after the crash: not journaled twice.
            if let Some((_, body)) = acknowledged.last() {
                let (_, a) = atomic::post(
                    &http,
                    &format!("{}/imsklad", serve.url),
                    String::clone(body),
                )
                .await;
                assert_eq!(a, json!({"result": "ok"}));
            }
            let id = format!("K-{cycle}");
            let body = atomic::tracks(json!([{"id": id, "track": format!("TRK-{cycle}")}]));
            let (status, a) =
                atomic::post(&http, &format!("{}/imsklad", serve.url), body.clone()).await;
            assert_eq!((status, a), (200, json!({"result": "ok"})), "cycle {cycle}");
            serve.kill();
            acknowledged.push((id, body));
        }
        let db = Db::connect_state(&t.url).await.unwrap();
        let journal: Vec<Value> = events::events(&db, "imsklad", 0)
            .await
            .unwrap()
            .iter()
            .map(|e| serde_json::from_str(&e.body).unwrap())
            .collect();
        assert_eq!(
            journal.len(),
            20,
            "{}: every acknowledged event once",
            t.engine()
        );
        let states = atomic::orders(&db).await;
        for (cycle, (id, _)) in acknowledged.iter().enumerate() {
            let n = journal
                .iter()
                .filter(|b| b["data"][0]["id"] == id.as_str())
                .count();
            assert_eq!(n, 1, "{}: {id} journaled {n} times", t.engine());
            assert_eq!(
                states[id].track.as_deref(),
                Some(format!("TRK-{cycle}").as_str()),
                "{}",
                t.engine()
            );
        }
        db.close().await;
        t.drop_db().await;
    }
}
