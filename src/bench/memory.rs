//! Peak memory of one measured case.
//!
//! Each reconcile case runs in a child process of the same binary (the hidden
//! `sverka bench --case …`), so one case's allocations never inflate another's
//! peak. Inside the child, the peak resident set size (`VmHWM`) is reset once
//! the inputs are built (`/proc/self/clear_refs` ← `5`), so the reported peak
//! is the inputs plus what the reconciliation itself allocates.

use anyhow::{bail, Context as _, Result};
use std::path::Path;
use std::process::Command;

use super::CaseResult;

/// A `kB` field (`VmHWM`, `VmRSS`) of `/proc/self/status`, in MiB.
fn status_field(field: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&text, field).map(|kib| kib as f64 / 1024.0)
}

/// Reads `<field>:   123 kB` from a `/proc/<pid>/status` text.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The current resident set size, MiB (None off Linux).
pub fn rss_mib() -> Option<f64> {
    status_field("VmRSS")
}

/// The peak resident set size since start or the last [`reset_peak`], MiB.
pub fn peak_mib() -> Option<f64> {
    status_field("VmHWM")
}

/// Resets the peak to the current RSS; false where the kernel does not allow it.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Set (to anything) for a `--case` child that should also write its
/// generated inputs as CSV into its `--work-dir`, for the baselines.
pub const EMIT_CSV_ENV: &str = "SVERKA_BENCH_EMIT_CSV";

/// Runs `sverka bench --case <case> --size <size> --repeat <repeat>` in a
/// child process and parses the [`CaseResult`] it prints; with `emit_csv`
/// the child also writes its inputs as CSV into `work`.
pub fn run_child(
    case: &str,
    size: usize,
    repeat: usize,
    work: &Path,
    emit_csv: bool,
) -> Result<CaseResult> {
    let exe = std::env::current_exe().context("locating the sverka binary")?;
    let mut command = Command::new(exe);
    if emit_csv {
        command.env(EMIT_CSV_ENV, "1");
    } else {
        command.env_remove(EMIT_CSV_ENV);
    }
    let out = command
        .args(["bench", "--case", case, "--size"])
        .arg(size.to_string())
        .arg("--repeat")
        .arg(repeat.to_string())
        .arg("--work-dir")
        .arg(work)
        .env("RUST_LOG", "warn")
        .output()
        .with_context(|| format!("starting the {case} case"))?;
    if !out.status.success() {
        bail!(
            "the {case} case at {size} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("the {case} case printed no result: {text}"))?;
    serde_json::from_str(line).with_context(|| format!("parsing the {case} case's result"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status_fields() {
        let text = "Name:\tsverka\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(parse_status_kib(text, "VmHWM"), Some(204_800));
        assert_eq!(parse_status_kib(text, "VmRSS"), Some(102_400));
        assert_eq!(parse_status_kib(text, "VmSwap"), None);
    }

    #[test]
    fn own_memory_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            let rss = rss_mib().unwrap_or(0.0);
            assert!(rss > 0.0);
            assert!(peak_mib().unwrap_or(0.0) >= rss * 0.5);
        }
    }
}
