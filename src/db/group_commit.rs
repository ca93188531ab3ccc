//! Group commit of callback transactions on a SQLite state database.
//!
//! With `synchronous = FULL` every commit waits for an fsync of the WAL, so
//! one transaction per callback caps the listener at the disk's fsync rate.
//! SQLite serialises writers anyway, so concurrent callbacks lose nothing by
//! sharing a transaction: each caller queues its event for the database's
//! writer task, which takes every queued event (at most [`MAX_BATCH`]) into
//! one transaction — an event that fails is left out and the group run again, so
//! it alone is answered with its error while the others commit — then
//! commits once and answers each caller. An answer is sent only after the
//! commit returned: durable before acknowledged holds for every event of the
//! group. The writer is a task of its own, so a caller whose request is
//! cancelled (a client hanging up) never abandons the others' events half-way.
//!
//! PostgreSQL and MySQL keep one transaction per callback: their row locks
//! let callbacks for different orders commit in parallel (several listener
//! processes on one database included), and grouping them would only widen
//! the deadlocks between processes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

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

/// The writer of one state database: callers hand it their events through a
/// channel; it takes whatever is queued (at most [`MAX_BATCH`]) into one
/// transaction, commits, answers, and goes on. Started on first use; it ends
/// when the last clone of the database handle is dropped.
#[derive(Default)]
pub struct GroupCommit {
    writer: std::sync::OnceLock<mpsc::UnboundedSender<Pending>>,
    groups: Arc<AtomicU64>,
    events: Arc<AtomicU64>,
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
    /// Group transactions run.
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

    /// The writer's queue, starting the writer on first use. It holds the
    /// pool, not the handle (whose drop is what closes the queue).
    fn writer(&self, db: &Db) -> &mpsc::UnboundedSender<Pending> {
        self.writer.get_or_init(|| {
            let (queue, inbox) = mpsc::unbounded_channel();
            let db = db.without_group_commit();
            let (groups, events) = (self.groups.clone(), self.events.clone());
            tokio::spawn(write(db, inbox, groups, events));
            queue
        })
    }
}

/// The writer's loop: one group per turn, of everything queued meanwhile.
async fn write(
    db: Db,
    mut inbox: mpsc::UnboundedReceiver<Pending>,
    groups: Arc<AtomicU64>,
    events: Arc<AtomicU64>,
) {
    while let Some(first) = inbox.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        groups.fetch_add(1, Ordering::Relaxed);
        events.fetch_add(batch.len() as u64, Ordering::Relaxed);
        commit(&db, batch).await;
    }
}

/// Journals `event` with its `effects` in the writer's next group
/// transaction and answers once that transaction committed.
pub(super) async fn record(
    db: &Db,
    group: &GroupCommit,
    event: &NewEvent,
    effects: &[Effect],
) -> Result<Recorded, DbError> {
    let (reply, answer) = oneshot::channel();
    let pending = Pending {
        event: event.clone(),
        effects: effects.to_vec(),
        reply,
    };
    if group.writer(db).send(pending).is_err() {
        return Err(DbError::Corrupt(
            "the state database's writer has stopped".into(),
        ));
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
