//! The run summary a job prints: a small table for people, JSON with `--json`.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::db::runs::RunStatus;
use crate::exit::Exit;

/// Corrections by outcome.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CorrectionCounts {
    /// Planned (all of them, dry run included).
    pub planned: u64,
    /// Applied.
    pub applied: u64,
    /// Partly applied (IMSKLAD `warning`).
    pub partial: u64,
    /// Failed.
    pub failed: u64,
    /// Outcome unknown: a write that is not idempotent failed ambiguously
    /// (timeout, reset, unreadable answer) and was not sent again.
    pub unknown: u64,
}

/// What one job run did.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    /// Job name.
    pub job: String,
    /// Run id (0 when the run could not be recorded).
    pub run_id: i64,
    /// Outcome.
    pub status: RunStatus,
    /// Dry run: nothing was written.
    pub dry_run: bool,
    /// A guard was overridden with `--force`.
    pub forced: bool,
    /// Discrepancies per class (`ok` included).
    pub counts: BTreeMap<String, u64>,
    /// Corrections.
    pub corrections: CorrectionCounts,
    /// Reports written.
    pub reports: Vec<String>,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// Why a guard stopped the run.
    pub guard: Option<String>,
    /// The error of a failed run.
    pub error: Option<String>,
    /// Job-specific figures.
    pub extra: serde_json::Value,
}

impl JobSummary {
    /// The process exit code this run stands for: 0 clean or all corrected,
    /// 1 discrepancies left for a person, 2 failed, stopped by a guard, or refused
    /// because the job was already running.
    pub fn exit(&self) -> Exit {
        match self.status {
            RunStatus::Clean => Exit::Clean,
            RunStatus::Discrepancies => Exit::Discrepancies,
            RunStatus::Guarded | RunStatus::Failed | RunStatus::Running | RunStatus::Skipped => {
                Exit::Failed
            }
        }
    }

    /// [`JobSummary::exit`] as its number.
    pub fn exit_code(&self) -> u8 {
        self.exit().code()
    }

    /// A human-readable block.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mode = if self.dry_run { " (dry run)" } else { "" };
        out.push_str(&format!(
            "{} run #{}: {}{} in {:.2} s\n",
            self.job,
            self.run_id,
            self.status.as_str(),
            mode,
            self.duration_ms as f64 / 1000.0
        ));
        if let Some(g) = &self.guard {
            out.push_str(&format!("  stopped by a safety guard: {g}\n"));
        }
        if let Some(e) = &self.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        if !self.counts.is_empty() {
            let width = self.counts.keys().map(|k| k.len()).max().unwrap_or(0);
            for (class, n) in &self.counts {
                out.push_str(&format!("  {class:<width$}  {n:>9}\n"));
            }
        }
        let c = &self.corrections;
        out.push_str(&format!(
            "  corrections: {} planned, {} applied, {} partial, {} failed",
            c.planned, c.applied, c.partial, c.failed
        ));
        if c.unknown > 0 {
            out.push_str(&format!(", {} unknown", c.unknown));
        }
        out.push('\n');
        for r in &self.reports {
            out.push_str(&format!("  report: {r}\n"));
        }
        out
    }
}

/// Combines several job summaries into one exit code (the worst wins).
pub fn combined_exit(summaries: &[JobSummary]) -> Exit {
    Exit::worst(summaries.iter().map(JobSummary::exit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(status: RunStatus) -> JobSummary {
        JobSummary {
            job: "stock".into(),
            run_id: 3,
            status,
            dry_run: false,
            forced: false,
            counts: BTreeMap::from([("ok".to_string(), 10), ("qty_mismatch_crm".to_string(), 2)]),
            corrections: CorrectionCounts::default(),
            reports: vec!["reports/stock-2026-11-22-3.csv".into()],
            duration_ms: 1500,
            guard: None,
            error: None,
            extra: serde_json::Value::Null,
        }
    }

    #[test]
    fn exit_codes_follow_the_readme() {
        assert_eq!(summary(RunStatus::Clean).exit_code(), 0);
        assert_eq!(summary(RunStatus::Discrepancies).exit_code(), 1);
        assert_eq!(summary(RunStatus::Guarded).exit_code(), 2);
        assert_eq!(summary(RunStatus::Failed).exit_code(), 2);
        assert_eq!(
            combined_exit(&[summary(RunStatus::Clean), summary(RunStatus::Discrepancies)]).code(),
            1
        );
    }

    #[test]
    fn render_lists_classes_and_reports() {
        let text = summary(RunStatus::Discrepancies).render();
        assert!(text.contains("qty_mismatch_crm"));
        assert!(text.contains("reports/stock-2026-11-22-3.csv"));
        assert!(text.contains("1.50 s"));
    }
}
