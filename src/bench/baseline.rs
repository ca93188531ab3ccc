//! The baselines: the same reconciliation as a user would otherwise write it,
//! in pandas and in DuckDB SQL (`benches/baseline/*.py`), run on the same
//! generated data (CSV files the Rust side writes) in the same invocation.
//!
//! Each script loads the CSVs (untimed), times only the in-memory
//! classification, and prints one JSON object: `engine`, `version`,
//! `seconds` (one per repetition), `counts` (rows per class) and
//! `peak_rss_mib`. The counts are compared with Rust's, so a faster baseline
//! that computed something else would show as a mismatch, not as a win.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::stats::median;

/// Where the scripts live: `benches/baseline/` of the checkout (or of the
/// current folder when the binary was built elsewhere).
pub fn script_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baseline");
    if built.is_dir() {
        built
    } else {
        PathBuf::from("benches/baseline")
    }
}

/// One baseline's measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineResult {
    /// `pandas` or `duckdb`.
    pub engine: String,
    /// The library version.
    #[serde(default)]
    pub version: String,
    /// Seconds per repetition (classification only).
    pub seconds: Vec<f64>,
    /// Median of `seconds`.
    #[serde(default)]
    pub median_s: f64,
    /// Rows per class.
    pub counts: BTreeMap<String, u64>,
    /// Peak RSS of the Python process (loading included), MiB.
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
    /// Whether `counts` equal the Rust result's.
    #[serde(default)]
    pub counts_match: bool,
}

/// A baseline that ran, or why it did not.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Baseline {
    /// It ran.
    Ran(BaselineResult),
    /// It was skipped or failed; the reason is printed as `baseline skipped: …`.
    Skipped {
        /// Why.
        reason: String,
    },
}

impl Baseline {
    /// The result, when it ran.
    pub fn result(&self) -> Option<&BaselineResult> {
        match self {
            Baseline::Ran(r) => Some(r),
            Baseline::Skipped { .. } => None,
        }
    }
}

/// Checks that `python` runs and imports pandas and duckdb; the reason otherwise.
pub fn check_python(python: &str) -> Result<(), String> {
    let out = Command::new(python)
        .args(["-c", "import pandas, duckdb"])
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output();
    match out {
        Err(e) => Err(format!("cannot run `{python}`: {e}")),
        Ok(o) if !o.status.success() => Err(format!(
            "`{python}` cannot import pandas and duckdb ({}); pip install -r {}/requirements.txt",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .trim(),
            script_dir().display()
        )),
        Ok(_) => Ok(()),
    }
}

/// Runs `<case>_<engine>.py --dir <data> --repeat <n>` and compares its counts with `rust_counts`.
pub fn run(
    python: &str,
    case: &str,
    engine: &str,
    data: &Path,
    repeat: usize,
    rust_counts: &BTreeMap<String, u64>,
) -> Baseline {
    let script = script_dir().join(format!("{case}_{engine}.py"));
    if !script.is_file() {
        return Baseline::Skipped {
            reason: format!("{} not found", script.display()),
        };
    }
    // OpenBLAS tuning variables of this machine slow a current numpy; unset them
    // for the baseline alone so it runs at its best.
    let out = Command::new(python)
        .arg(&script)
        .arg("--dir")
        .arg(data)
        .arg("--repeat")
        .arg(repeat.max(1).to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            return Baseline::Skipped {
                reason: format!("cannot run {}: {e}", script.display()),
            }
        }
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Baseline::Skipped {
            reason: format!(
                "{} failed: {}",
                script.display(),
                err.lines().last().unwrap_or("").trim()
            ),
        };
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .map(serde_json::from_str::<BaselineResult>);
    match parsed {
        Some(Ok(mut r)) => {
            r.median_s = median(&r.seconds).unwrap_or(0.0);
            r.counts_match = &r.counts == rust_counts;
            if !r.counts_match {
                tracing::warn!(case, engine, python = ?r.counts, rust = ?rust_counts, "baseline counts differ from Rust's");
            }
            Baseline::Ran(r)
        }
        Some(Err(e)) => Baseline::Skipped {
            reason: format!("{} printed bad JSON: {e}", script.display()),
        },
        None => Baseline::Skipped {
            reason: format!("{} printed no result", script.display()),
        },
    }
}
