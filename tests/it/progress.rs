//! Progress bars as a person sees them: `reconcile stock` against a 50k-SKU
//! sandbox process with RetailCRM's rate limit on (200 inventory pages at 10
//! requests/s), run under a pseudo-terminal, and again with stderr in a file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::optional;

/// A `sverka sandbox` process, killed on drop.
struct Sandbox {
    child: Child,
    /// `SVERKA_…` variables pointing a run at it.
    env: Vec<(String, String)>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the sandbox with `skus` SKUs, writing the shop and the mapping into `dir`.
fn sandbox(dir: &Path, skus: usize) -> Sandbox {
    let shop = format!("sqlite://{}", dir.join("shop.db").display());
    let state = format!("sqlite://{}", dir.join("state.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_sverka"))
        .args(["sandbox", "--skus", &skus.to_string(), "--orders", "10"])
        .args(["--write-shop", &shop, "--write-state", &state])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sverka sandbox starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut banner = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a banner line");
        let done = line.starts_with("Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let field = |vendor: &str, after: &str| -> String {
        let line = banner
            .iter()
            .find(|l| l.trim_start().starts_with(vendor))
            .unwrap_or_else(|| panic!("no {vendor} line in {banner:?}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| *w == after)
            .unwrap_or_else(|| panic!("no `{after}` in {line}"));
        words[at + 1].to_string()
    };
    let url = |vendor: &str| -> String {
        let line = banner
            .iter()
            .find(|l| l.trim_start().starts_with(vendor))
            .unwrap_or_else(|| panic!("no {vendor} line in {banner:?}"));
        let url = line.split_whitespace().nth(1).expect("a URL");
        url.trim_end_matches("/api/v5").to_string()
    };
    let env = [
        ("SVERKA_STATE__DATABASE_URL", state),
        ("SVERKA_SHOP__DATABASE_URL", shop),
        ("SVERKA_WMS__KIND", "imsklad".into()),
        ("SVERKA_IMSKLAD__URL", url("IMSKLAD")),
        ("SVERKA_IMSKLAD__KEY", field("IMSKLAD", "key")),
        ("SVERKA_IMSKLAD__STORAGE_ID", field("IMSKLAD", "storage_id")),
        ("SVERKA_RETAILCRM__URL", url("RetailCRM")),
        ("SVERKA_RETAILCRM__API_KEY", field("RetailCRM", "X-API-KEY")),
        ("SVERKA_RETAILCRM__SITE", field("RetailCRM", "site")),
        ("SVERKA_RETAILCRM__STORE", field("RetailCRM", "store")),
        ("SVERKA_SAFETY__MAX_CHANGE_SHARE", "1.0".into()),
        // A first run registers the sandbox's unmapped SKUs.
        ("SVERKA_SAFETY__MAX_REGISTRATIONS", "100000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Sandbox { child, env }
}

/// The shell command line of `sverka reconcile stock` (for `script` and tmux).
fn reconcile_line(dir: &Path, sandbox: &Sandbox, stderr: Option<&Path>) -> String {
    let mut line = String::from("cd '");
    line.push_str(&dir.display().to_string());
    line.push_str("' && env");
    for (k, v) in &sandbox.env {
        line.push_str(&format!(" {k}='{v}'"));
    }
    line.push_str(&format!(
        " '{}' --report-dir reports reconcile stock",
        env!("CARGO_BIN_EXE_sverka")
    ));
    if let Some(file) = stderr {
        line.push_str(&format!(" 2>'{}'", file.display()));
    }
    line
}

/// Finds the inventory bar's `pos/len pages` text, e.g. `37/200 pages`.
fn page_counter(text: &str) -> Option<(u64, u64)> {
    let mut rest = text;
    while let Some(at) = rest.find(" pages") {
        let before = &rest[..at];
        let token = before.rsplit(' ').next().unwrap_or("");
        if let Some((pos, len)) = token.split_once('/') {
            if let (Ok(pos), Ok(len)) = (pos.parse::<u64>(), len.parse::<u64>()) {
                return Some((pos, len));
            }
        }
        rest = &rest[at + 6..];
    }
    None
}

#[test]
fn the_page_counter_is_found_in_bar_text() {
    let line = "RetailCRM inventory pages [=====>    ] 37/200 pages · 00:00:04 · ETA 17s";
    assert_eq!(page_counter(line), Some((37, 200)));
    assert_eq!(page_counter("no bar here: 3 pages"), None);
}

fn exit_ok(status: std::process::ExitStatus, what: &str, log: &str) {
    // 0: clean or corrected; 1: discrepancies left for a person. 2 would be a failure.
    assert!(
        matches!(status.code(), Some(0) | Some(1)),
        "{what} failed ({status}):\n{log}"
    );
}

#[test]
fn reconcile_stock_draws_bars_on_a_terminal_and_none_into_a_file() {
    const TEST: &str = "reconcile_stock_draws_bars_on_a_terminal_and_none_into_a_file";
    let script = match optional::program("script", "bsdutils") {
        Ok(p) => p,
        Err(why) => return optional::skip(TEST, &why),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let sb = sandbox(dir.path(), 50_000);

    // 1. Under a pseudo-terminal: `script` records the raw stream.
    let typescript = dir.path().join("typescript");
    let status = Command::new(&script)
        .args(["-q", "-e", "-f", "-c"])
        .arg(reconcile_line(dir.path(), &sb, None))
        .arg(&typescript)
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "160")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .status()
        .expect("script runs");
    let raw = std::fs::read(&typescript).expect("the typescript");
    let raw = String::from_utf8_lossy(&raw);
    exit_ok(status, "reconcile stock under script", &raw);
    assert!(
        raw.contains("RetailCRM inventory pages"),
        "no inventory bar in the terminal stream:\n{raw}"
    );
    let (pos, len) = page_counter(&raw).expect("a pos/len pages counter on the terminal");
    assert!(len >= 100 && pos <= len, "{pos}/{len}");
    assert!(
        raw.contains("IMSKLAD get_stock"),
        "no get_stock bar:\n{raw}"
    );

    // 2. Stderr into a file: log lines only, no bar, no control characters.
    let log = dir.path().join("stderr.log");
    let status = Command::new("bash")
        .arg("-c")
        .arg(reconcile_line(dir.path(), &sb, Some(&log)))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("bash runs");
    let text = std::fs::read_to_string(&log).expect("the stderr file");
    exit_ok(status, "reconcile stock into a file", &text);
    assert!(!text.is_empty(), "the run logs something");
    assert!(
        !text.contains("inventory pages"),
        "a bar in the file:\n{text}"
    );
    assert!(page_counter(&text).is_none(), "{text}");
    let control: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(
        control.is_empty(),
        "control characters {control:?} in:\n{text}"
    );
}

/// tmux sees the bar on the screen while the CRM pages are read, with log
/// lines above it rather than through it.
#[test]
fn the_bar_is_on_the_screen_mid_run() {
    const TEST: &str = "the_bar_is_on_the_screen_mid_run";
    let tmux = match optional::program("tmux", "tmux") {
        Ok(p) => p,
        Err(why) => return optional::skip(TEST, &why),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let sb = sandbox(dir.path(), 50_000);
    let session = format!("sverka-{}", std::process::id());
    let socket = dir.path().join("tmux.sock");
    let tmux_cmd = |args: &[&str]| {
        Command::new(&tmux)
            .arg("-S")
            .arg(&socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs")
    };
    let done = dir.path().join("done");
    let line = format!(
        "{}; echo $? > '{}'",
        reconcile_line(dir.path(), &sb, None),
        done.display()
    );
    let started = tmux_cmd(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "160",
        "-y",
        "40",
        &line,
    ]);
    assert!(started.status.success(), "{started:?}");
    let _kill = KillServer(tmux.clone(), socket.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = None;
    while Instant::now() < deadline && !done.exists() {
        let screen = tmux_cmd(&["capture-pane", "-p", "-t", &session]);
        let screen = String::from_utf8_lossy(&screen.stdout).into_owned();
        if let Some(bar) = screen
            .lines()
            .find(|l| l.contains("RetailCRM inventory pages"))
        {
            if let Some((pos, len)) = page_counter(bar) {
                if pos > 0 && pos < len {
                    seen = Some(screen.clone());
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let screen = seen.expect("the inventory bar, mid-run, on the tmux screen");
    let bar_row = screen
        .lines()
        .position(|l| l.contains("RetailCRM inventory pages"))
        .expect("bar row");
    // Log lines printed so far stand above the bar, each on its own row.
    for (row, l) in screen.lines().enumerate() {
        if l.contains(" INFO ") || l.contains(" WARN ") {
            assert!(row < bar_row, "a log line below the bar:\n{screen}");
            assert!(
                !l.contains("inventory pages"),
                "a log line through the bar:\n{screen}"
            );
        }
    }
}

/// Kills the test's own tmux server (its socket) when the test ends, whatever happened.
struct KillServer(PathBuf, PathBuf);

impl Drop for KillServer {
    fn drop(&mut self) {
        let _ = Command::new(&self.0)
            .arg("-S")
            .arg(&self.1)
            .arg("kill-server")
            .output();
    }
}
