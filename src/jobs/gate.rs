//! The part of the job skeleton between plan and apply: the safety guard,
//! `--force` and `--dry-run` decide whether a planned correction is sent, and
//! the run's status follows from what was applied and what was left.
//!
//! Every job that writes asks [`Gate::decide`] once, after its plan is
//! complete and before its first write, and ends with [`finish`].

use serde_json::{json, Value};

use super::{Context, Outcome};
use crate::db::runs::RunStatus;
use crate::report::summary::CorrectionCounts;

/// Whether the planned corrections of a run are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Sent: no guard stopped the run (or `--force` went past it).
    Open,
    /// Not sent: `--dry-run`.
    DryRun,
    /// Not sent: the safety guard stopped the run; the reason.
    Guarded(String),
}

/// Why a planned correction was not sent, as the report's `result` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// The safety guard stopped the run.
    Guarded,
    /// `--dry-run`.
    DryRun,
}

impl Unsent {
    /// The report's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Unsent::Guarded => "guarded",
            Unsent::DryRun => "dry-run",
        }
    }
}

impl Gate {
    /// The gate for a run whose plan tripped `guard` (None: it did not). With
    /// `--force` a tripped guard is logged, recorded in `extra.forced_past`
    /// and passed.
    pub fn decide(ctx: &Context, run_id: i64, guard: Option<String>, extra: &mut Value) -> Gate {
        match guard {
            Some(reason) if ctx.force => {
                tracing::warn!(
                    run = run_id,
                    "safety guard overridden with --force: {reason}"
                );
                extra["forced_past"] = json!(reason);
                Gate::open_or_dry(ctx)
            }
            Some(reason) => Gate::Guarded(reason),
            None => Gate::open_or_dry(ctx),
        }
    }

    fn open_or_dry(ctx: &Context) -> Gate {
        if ctx.dry_run {
            Gate::DryRun
        } else {
            Gate::Open
        }
    }

    /// Why nothing is sent, or None when the corrections go out.
    pub fn unsent(&self) -> Option<Unsent> {
        match self {
            Gate::Open => None,
            Gate::DryRun => Some(Unsent::DryRun),
            Gate::Guarded(_) => Some(Unsent::Guarded),
        }
    }

    /// Whether the safety guard stopped the run.
    pub fn blocked(&self) -> bool {
        matches!(self, Gate::Guarded(_))
    }

    /// The guard's reason, when it stopped the run.
    pub fn reason(&self) -> Option<String> {
        match self {
            Gate::Guarded(reason) => Some(reason.clone()),
            _ => None,
        }
    }
}

/// The run's status: guarded when the guard stopped it, discrepancies when
/// something is left for a person or a correction did not fully land, clean
/// otherwise.
pub fn run_status(gate: &Gate, left_for_people: bool, corrections: &CorrectionCounts) -> RunStatus {
    if gate.blocked() {
        RunStatus::Guarded
    } else if left_for_people
        || corrections.failed > 0
        || corrections.partial > 0
        || corrections.unknown > 0
    {
        RunStatus::Discrepancies
    } else {
        RunStatus::Clean
    }
}

/// What a run that wrote one report hands to [`super::RunGuard::finish`].
pub fn finish(
    gate: &Gate,
    left_for_people: bool,
    counts: std::collections::BTreeMap<String, u64>,
    corrections: CorrectionCounts,
    report: &std::path::Path,
    extra: Value,
) -> (RunStatus, Outcome) {
    (
        run_status(gate, left_for_people, &corrections),
        Outcome {
            counts,
            corrections,
            reports: vec![report.display().to_string()],
            guard: gate.reason(),
            extra,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_gate_and_what_landed() {
        let clean = CorrectionCounts::default();
        let open = Gate::Open;
        assert_eq!(run_status(&open, false, &clean), RunStatus::Clean);
        assert_eq!(run_status(&open, true, &clean), RunStatus::Discrepancies);
        for c in [
            CorrectionCounts { failed: 1, ..clean },
            CorrectionCounts {
                partial: 1,
                ..clean
            },
            CorrectionCounts {
                unknown: 1,
                ..clean
            },
        ] {
            assert_eq!(run_status(&open, false, &c), RunStatus::Discrepancies);
        }
        let guarded = Gate::Guarded("too many".into());
        assert_eq!(run_status(&guarded, true, &clean), RunStatus::Guarded);
        assert_eq!(guarded.unsent(), Some(Unsent::Guarded));
        assert_eq!(guarded.reason().as_deref(), Some("too many"));
        assert_eq!(Gate::DryRun.unsent().map(Unsent::as_str), Some("dry-run"));
        assert_eq!(run_status(&Gate::DryRun, false, &clean), RunStatus::Clean);
        assert!(Gate::Open.unsent().is_none());
    }
}
