//! The one apply path: every correction a job sends goes through here.
//!
//! A correction is journaled as `planned` **before** it is sent (after a check
//! that the run still holds its job lock), and settled with the target's answer
//! **after** ([`Writer::plan`], then [`Writer::settle`] with the answer). Jobs never call [`crate::db::journal::plan`] or
//! [`crate::db::journal::settle`] themselves; `tests/it/layers.rs` checks that.
//!
//! Outcomes beyond applied/failed are the journal's: `partial` (the target took
//! part of it), `unknown` (a write that is not idempotent failed ambiguously, see
//! [`failed_write`]), and per item `changed_during_run` ([`ItemOutcome`]).

use std::sync::Arc;

use crate::db::journal::{self, CorrectionStatus, ItemOutcome, Planned};
use crate::db::lock::{JobLock, LockLost};
use crate::db::{Db, DbError};
use crate::report::summary::CorrectionCounts;

/// The handle a run checks its job lock with before it writes. Once the lock
/// is found lost it stays lost.
#[derive(Clone)]
pub struct WriteGate {
    lock: Arc<tokio::sync::Mutex<JobLock>>,
    lost: Arc<std::sync::Mutex<Option<LockLost>>>,
}

impl std::fmt::Debug for WriteGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGate").finish_non_exhaustive()
    }
}

impl WriteGate {
    /// A gate over the run's `lock`.
    pub fn new(lock: JobLock) -> Self {
        WriteGate {
            lock: Arc::new(tokio::sync::Mutex::new(lock)),
            lost: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Whether the run still holds its lock ([`JobLock::check`]).
    pub async fn check(&self) -> Result<(), LockLost> {
        if let Some(lost) = self.lost.lock().ok().and_then(|g| g.clone()) {
            return Err(lost);
        }
        let result = self.lock.lock().await.check().await;
        if let Err(lost) = &result {
            tracing::error!("{lost}");
            if let Ok(mut g) = self.lost.lock() {
                *g = Some(lost.clone());
            }
        }
        result
    }

    /// The lock, for the run's end (renewal stops, then it is released).
    pub fn lock(&self) -> &Arc<tokio::sync::Mutex<JobLock>> {
        &self.lock
    }
}

/// Why a write was not journaled (and so not sent).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The run lost its job lock: it stops writing.
    #[error(transparent)]
    LockLost(#[from] LockLost),
    /// The journal could not be written.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The journaled write path of one run: the state database and the run's
/// lock (none outside a run, e.g. in a one-off tool).
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    db: &'a Db,
    gate: Option<&'a WriteGate>,
}

impl<'a> Writer<'a> {
    /// Writes journaled in `db`, each first checking `gate`.
    pub fn new(db: &'a Db, gate: Option<&'a WriteGate>) -> Self {
        Writer { db, gate }
    }

    /// Checks that the run still holds its job lock.
    pub async fn check_lock(&self) -> Result<(), LockLost> {
        match self.gate {
            Some(gate) => gate.check().await,
            None => Ok(()),
        }
    }

    /// Checks the lock, then journals `planned` as planned; returns its id.
    /// Nothing may be sent for it unless this succeeded.
    pub async fn plan(&self, planned: &Planned<'_>) -> Result<i64, WriteError> {
        self.check_lock().await?;
        Ok(journal::plan(self.db, planned).await?)
    }

    /// Records the target's answer for correction `id`.
    pub async fn settle(
        &self,
        id: i64,
        status: CorrectionStatus,
        answer: &str,
    ) -> Result<(), DbError> {
        journal::settle(self.db, id, status, answer).await
    }

    /// Settles every correction a crashed run of `job` left planned as
    /// `unknown` (sent or not, nobody knows); called by a run that holds the
    /// job's lock before it plans anything.
    pub async fn abandon_unsettled(&self, job: &str) {
        match journal::unsettled(self.db, job).await {
            Ok(left) => {
                for c in left {
                    tracing::warn!(job, correction = c.id, run = c.run_id, "a crashed run left a correction unsettled; it will be re-planned from fresh data");
                    let _ = journal::settle(
                        self.db,
                        c.id,
                        CorrectionStatus::Unknown,
                        "abandoned: the process stopped before the answer was recorded (it may have been sent); re-planned by the next run from fresh data",
                    )
                    .await;
                }
            }
            Err(e) => {
                tracing::warn!(job, error = %crate::errors::Chain(&e), "could not read unsettled corrections")
            }
        }
    }
}

/// How a failed write is journaled and reported.
///
/// A write that is not idempotent whose failure leaves its effect open (a
/// timeout, a reset, an unreadable answer) is `unknown`: it may have taken
/// effect, so it is not sent again within the run. Every other failure is
/// `failed` (nothing happened, or sending it again does no harm).
pub fn failed_write(idempotent: bool, ambiguous: bool) -> (CorrectionStatus, ItemOutcome) {
    if !idempotent && ambiguous {
        (CorrectionStatus::Unknown, ItemOutcome::Unknown)
    } else {
        (CorrectionStatus::Failed, ItemOutcome::Failed)
    }
}

/// Adds a failed write to the run's counts.
pub fn count_failure(corrections: &mut CorrectionCounts, status: CorrectionStatus) {
    if status == CorrectionStatus::Unknown {
        corrections.unknown += 1;
    } else {
        corrections.failed += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ambiguous_failure_of_a_non_idempotent_write_is_unknown() {
        assert_eq!(
            failed_write(false, true),
            (CorrectionStatus::Unknown, ItemOutcome::Unknown)
        );
        for (idem, amb) in [(true, true), (true, false), (false, false)] {
            assert_eq!(
                failed_write(idem, amb),
                (CorrectionStatus::Failed, ItemOutcome::Failed)
            );
        }
        let mut c = CorrectionCounts::default();
        count_failure(&mut c, CorrectionStatus::Unknown);
        count_failure(&mut c, CorrectionStatus::Failed);
        assert_eq!((c.unknown, c.failed), (1, 1));
    }
}
