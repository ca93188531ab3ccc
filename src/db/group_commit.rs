//! Group commit of callback transactions on a SQLite state database.
//!
//! With `synchronous = FULL` every commit waits for an fsync of the WAL, so
//! one transaction per callback caps the listener at the disk's fsync rate.
//! SQLite serialises writers anyway, so concurrent callbacks lose nothing by
//! sharing a transaction: each caller queues its event, and whoever holds
//! the leader lock takes every queued event (at most [`MAX_BATCH`]) into one
//! transaction — one savepoint per event, so an event that fails is rolled
//! back alone and answered with its error while the others commit — then
//! commits once and answers each caller. An answer is sent only after the
//! commit returned: durable before acknowledged holds for every event of the
//! group. The leader's work runs in its own task, so a caller whose request
//! is cancelled (a client hanging up) never abandons the others' events
//! half-way.
//!
//! PostgreSQL and MySQL keep one transaction per callback: their row locks
//! let callbacks for different orders commit in parallel (several listener
//! processes on one database included), and grouping them would only widen
//! the deadlocks between processes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::events::{self, Effect, NewEvent, Recorded};
use super::{Db, DbError};

/// Most events committed in one transaction; the rest wait for the next one.
pub const MAX_BATCH: usize = 256;

/// One caller's event waiting for a group.
struct Pending {
    event: NewEvent,
    effects: Vec<Effect>,
    reply: oneshot::Sender<Result<Recorded, DbError>>,
}

/// The queue and leader lock of one state database (shared by the pool's clones).
#[derive(Default)]
pub struct GroupCommit {
    queue: Mutex<Vec<Pending>>,
    leader: Arc<tokio::sync::Mutex<()>>,
    groups: AtomicU64,
    events: AtomicU64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("groups", &self.groups.load(Ordering::Relaxed))
            .field("events", &self.events.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// How many transactions committed how many events so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupStats {
    /// Group transactions committed (or rolled back).
    pub groups: u64,
    /// Events they carried.
    pub events: u64,
}

impl GroupCommit {
    /// Transactions and events so far.
    pub fn stats(&self) -> GroupStats {
        GroupStats {
            groups: self.groups.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
        }
    }

    fn push(&self, pending: Pending) {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(pending);
    }

    fn take(&self) -> Vec<Pending> {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let take = queue.len().min(MAX_BATCH);
        let rest = queue.split_off(take);
        std::mem::replace(&mut *queue, rest)
    }
}

/// Journals `event` with its `effects` in the next group transaction of
/// `group` and answers once that transaction committed.
pub(super) async fn record(
    db: &Db,
    group: &Arc<GroupCommit>,
    event: &NewEvent,
    effects: &[Effect],
) -> Result<Recorded, DbError> {
    let (reply, answer) = oneshot::channel();
    group.push(Pending {
        event: event.clone(),
        effects: effects.to_vec(),
        reply,
    });
    let guard = group.leader.clone().lock_owned().await;
    let batch = group.take();
    if batch.is_empty() {
        // An earlier leader took this event: its answer is on the way.
        drop(guard);
    } else {
        let db = db.clone();
        let group = group.clone();
        tokio::spawn(async move {
            let _leader = guard;
            group.groups.fetch_add(1, Ordering::Relaxed);
            group
                .events
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            commit(&db, batch).await;
        });
    }
    answer.await.unwrap_or_else(|_| {
        Err(DbError::Corrupt(
            "the group transaction ended without answering this callback".into(),
        ))
    })
}

/// Runs the group (again after a conflict, as [`events::with_retry`] does)
/// and answers every caller.
async fn commit(db: &Db, batch: Vec<Pending>) {
    let (items, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|p| ((p.event, p.effects), p.reply))
        .unzip();
    let outcome = events::with_retry("committing a group of callbacks", || {
        events::record_group(db, &items)
    })
    .await;
    match outcome {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                // A caller that hung up gets no answer; its event is committed.
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            // Nothing of the group was committed: every caller is told so.
            let text = e.to_string();
            let mut replies = replies.into_iter();
            if let Some(first) = replies.next() {
                let _ = first.send(Err(e));
            }
            for reply in replies {
                let _ = reply.send(Err(DbError::Query {
                    what: "journaling a callback".into(),
                    source: sqlx::Error::Protocol(text.clone()),
                }));
            }
        }
    }
}
