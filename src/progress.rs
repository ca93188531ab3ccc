//! Progress bars for long steps, drawn on stderr only when a person watches it.
//!
//! Bars are off until the command-line edge calls [`enable`], which it does
//! only when stderr is a terminal and logs are human-readable: under cron, with
//! stderr redirected to a file, or with `--log-format json` nothing is drawn and
//! every [`Progress`] is a no-op. Any layer may create a bar (a connector
//! counting pages, a job counting edits) without knowing whether it is shown.
//!
//! All bars share one [`indicatif::MultiProgress`]; log lines go through
//! [`LogWriter`], which prints them above the bars (indicatif's `suspend`)
//! instead of through them.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::borrow::Cow;
use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Turns bars on for this process (call once, from the edge, when stderr is a
/// terminal and logs are human-readable). Later calls change nothing.
pub fn enable() {
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
}

/// Whether bars are drawn in this process.
pub fn is_enabled() -> bool {
    BARS.get().is_some()
}

/// One bar or spinner; a no-op when bars are off. Dropping it clears it.
#[derive(Debug, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A no-op progress.
    pub fn hidden() -> Self {
        Self::default()
    }

    /// A bar counting `len` steps of `unit` (e.g. "pages"), with the time taken and an ETA.
    /// Steps of fewer than two units are not worth a bar.
    pub fn counter(msg: impl Into<Cow<'static, str>>, len: u64, unit: &str) -> Self {
        let Some(multi) = BARS.get() else {
            return Self::hidden();
        };
        if len < 2 {
            return Self::hidden();
        }
        let template = format!(
            "{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} · {{elapsed_precise}} · ETA {{eta}}"
        );
        let bar = multi.add(ProgressBar::new(len));
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(msg);
        Self { bar: Some(bar) }
    }

    /// A spinner counting bytes received, for one long call whose size is unknown.
    pub fn bytes(msg: impl Into<Cow<'static, str>>) -> Self {
        let Some(multi) = BARS.get() else {
            return Self::hidden();
        };
        let bar = multi.add(ProgressBar::new_spinner());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {msg}: {bytes} received · {bytes_per_sec} · {elapsed}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(msg);
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar: Some(bar) }
    }

    /// Counts `n` more steps (or bytes).
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Sets the number of steps, when it becomes known or grows.
    pub fn set_length(&self, len: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(len);
        }
    }

    /// Whether this progress is drawn.
    pub fn is_visible(&self) -> bool {
        self.bar.is_some()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            if let Some(multi) = BARS.get() {
                multi.remove(&bar);
            }
        }
    }
}

/// Prints a human line on stderr above the bars (or plainly when they are off).
pub fn println(line: &str) {
    match BARS.get() {
        Some(multi) => {
            if multi.println(line).is_err() {
                eprintln!("{line}");
            }
        }
        None => eprintln!("{line}"),
    }
}

/// A `tracing` writer for stderr that keeps log lines above the bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(multi) => multi.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_no_ops_until_enabled() {
        // Unit tests never call `enable`: a job or connector run under test draws nothing.
        assert!(!is_enabled());
        let p = Progress::counter("pages", 10, "pages");
        assert!(!p.is_visible());
        p.inc(3);
        p.set_length(20);
        assert!(!Progress::bytes("InventoryDetail").is_visible());
    }
}
