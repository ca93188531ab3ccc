//! Optional tools some tests need (Python with pandas and DuckDB, Chromium,
//! `script`, tmux), and the one way a test says it could not run.
//!
//! A test whose tool is missing calls [`skip`]: it prints
//! `SKIPPED <test>: <what is missing and how to get it>` on the real stderr
//! and returns. Under `CI=true` a skip is a failure instead, so a CI machine
//! whose `.ci/run` forgot an install step cannot go green.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Reports that `test` could not run and why; panics under `CI=true`.
pub fn skip(test: &str, why: &str) {
    let line = format!("SKIPPED {test}: {why}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{line} (CI=true: .ci/run must install every optional tool)");
    }
    // Written to the real stderr (not through eprintln!, which the test
    // harness captures), so a skipped test is always visible.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The Python interpreter tests use: `SVERKA_TEST_PYTHON`, default `python3`.
pub fn python() -> String {
    std::env::var("SVERKA_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

/// The interpreter when it imports pandas and duckdb; otherwise what is missing.
pub fn python_with_baselines() -> Result<String, String> {
    let python = python();
    let requirements =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/baseline/requirements.txt");
    let how = format!(
        "install them with `{python} -m pip install -r {}` or point SVERKA_TEST_PYTHON at an interpreter that has them",
        requirements.display()
    );
    match Command::new(&python)
        .args(["-c", "import pandas, duckdb"])
        .output()
    {
        Err(e) => Err(format!("cannot run `{python}` ({e}); {how}")),
        Ok(o) if !o.status.success() => {
            let err = String::from_utf8_lossy(&o.stderr);
            let last = err.lines().last().unwrap_or("").trim().to_string();
            Err(format!("`{python}` lacks pandas/duckdb ({last}); {how}"))
        }
        Ok(_) => Ok(python),
    }
}

/// Debian's Chromium, when installed.
pub fn chromium() -> Result<PathBuf, String> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        Ok(path)
    } else {
        Err(
            "/usr/bin/chromium is missing; install Debian's chromium (apt-get install -y chromium)"
                .into(),
        )
    }
}

/// A program on `PATH` (e.g. `script` from util-linux, `tmux`), or how to get it.
pub fn program(name: &str, package: &str) -> Result<PathBuf, String> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.ok_or_else(|| {
        format!(
            "`{name}` is not on PATH; install Debian's {package} (apt-get install -y {package})"
        )
    })
}
