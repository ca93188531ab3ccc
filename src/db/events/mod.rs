//! The callback events journal and the state derived from it.
//!
//! Every callback the listener accepts is stored in `events` (source, method,
//! raw body, idempotency key, arrival time) and the state it implies
//! (`order_states`, `stock_snapshots`, `scans`) is updated in the same
//! transaction, before the callback is acknowledged.
//!
//! # Atomic effects
//! Each derived row is written under a row lock: an order state is created if
//! absent and locked in one statement (`INSERT … ON CONFLICT DO UPDATE …
//! RETURNING`, which takes PostgreSQL's row lock; MySQL: `ON DUPLICATE KEY
//! UPDATE` as a no-op, then `SELECT … FOR UPDATE`), merged in Rust and written
//! back; stock snapshots and scans are single upserts whose conditions the
//! engine evaluates on the locked row. Rows are locked in a fixed order. A
//! deadlock, serialization failure, busy SQLite file or first-insert race
//! rolls the transaction back and runs it again ([`with_retry`]), so two
//! callbacks for one order (or several `sverka serve` processes on one
//! PostgreSQL/MySQL database) never lose each other's update.
//!
//! On a SQLite state database concurrent callbacks share one transaction
//! ([`super::group_commit`]): one fsync for the group, each answered after it.
//!
//! # Redeliveries (the rule is UNVERIFIED)
//! IMSKLAD bodies and EGON `InventoryStatusUpdate` carry no event id, so a
//! redelivery cannot be told from a real repeat by the body alone. sverka
//! assumes — this is **UNVERIFIED** against the vendors, who document no
//! redelivery behaviour — that:
//! - a callback identical (same idempotency key: source, method, canonical
//!   body with secrets redacted by path) to the **latest event applied to each
//!   entity it is about** (order, SKU card, scan; [`Entity`]) is a
//!   redelivery: answered ok, neither journaled nor applied again;
//! - otherwise it is journaled and applied, even when its body equals an older
//!   event: stock 5 → 9 → 5 ends at 5, a track T1 → T2 → T1 at T1;
//! - where the protocol carries a time (EGON `change_timestamp`), an event
//!   older than the entity's latest is journaled with status `stale` and not
//!   applied.
//!
//! `event_heads` holds the latest event per entity. The stock job's snapshot
//! supersedes the SKU heads older than its WMS read, so a callback repeating
//! the last one after a stock run is applied again.
//!
//! # Order status ordering
//! Callbacks can arrive late or twice. [`status_may_move`] decides whether a
//! status change is applied:
//! - an event whose own timestamp is older than the stored `status_at` never
//!   moves the status;
//! - IMSKLAD (statuses 0–11, no event timestamp): 10 (cancelled) and 11
//!   (delivered) are final; 9 (shipped) may only move on to 10 or 11; a higher
//!   status is always taken; a lower one only when the event names the stored
//!   status as its `old_status` (a genuine step back reported by the warehouse);
//!   a stored status outside 0–11 (unknown, reported as `unmapped_wms_status`)
//!   never blocks the next one. The listener rejects statuses that are not
//!   integers in 0..=999, so none is stored;
//! - EGON (non-monotonic status ids, events carry `change_timestamp`): the
//!   final states (6, 9, 15, 16, 19, 55, 56) never change, otherwise the newer
//!   or equally new event wins.
//!
//! Other fields (track, goods, cancellation, WMS id) are last-writer-wins and
//! only overwritten by values that are present.

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use super::{bind_args, int, now_ms, opt_int, opt_text, text, Arg, Db, DbError, Dialect};

mod tx;
mod types;

use tx::*;
pub use types::*;

/// True when `err` is a transient conflict a fresh attempt of the whole
/// transaction resolves: a serialization failure or deadlock (PostgreSQL
/// `40001`/`40P01`, MySQL 1213/1205), a busy SQLite database, or a unique
/// violation of a first insert that raced another one.
pub fn is_retryable(err: &DbError) -> bool {
    let DbError::Query { source, .. } = err else {
        return false;
    };
    let sqlx::Error::Database(e) = source else {
        return matches!(source, sqlx::Error::PoolTimedOut);
    };
    if let Some(my) = e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(my.number(), 1213 | 1205) || e.is_unique_violation();
    }
    let code = e.code().map(|c| c.into_owned()).unwrap_or_default();
    if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        let primary = code.parse::<i64>().map(|c| c & 0xff).unwrap_or(0);
        return matches!(primary, 5 | 6) || e.is_unique_violation();
    }
    matches!(code.as_str(), "40001" | "40P01") || e.is_unique_violation()
}

/// Attempts of a callback transaction before a conflict is reported.
pub const MAX_ATTEMPTS: u32 = 12;

/// Runs `attempt` until it succeeds, fails for good, or [`MAX_ATTEMPTS`]
/// conflicts ([`is_retryable`]) happened, waiting a little (growing, jittered)
/// between attempts.
pub async fn with_retry<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let mut n = 0u32;
    loop {
        match attempt().await {
            Err(e) if is_retryable(&e) && n + 1 < MAX_ATTEMPTS => {
                n += 1;
                let base = 2u64.saturating_pow(n.min(7)).min(200);
                let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % (base + 1);
                tracing::debug!(what, attempt = n, error = %crate::errors::Chain(&e), "conflict: retrying");
                tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
            }
            other => return other,
        }
    }
}

/// Journals `event` and applies `effects` in one transaction.
///
/// A redelivery (see the module doc) is rolled back and reported as
/// [`Recorded::Duplicate`]: its effects were applied the first time. A
/// conflict with a concurrent callback (deadlock, serialization failure,
/// first-insert race) rolls back and runs the whole transaction again.
pub async fn record(db: &Db, event: &NewEvent, effects: &[Effect]) -> Result<Recorded, DbError> {
    if let Some(group) = db.group_commit() {
        return super::group_commit::record(db, group, event, effects).await;
    }
    with_retry("journaling a callback", || record_once(db, event, effects)).await
}

async fn record_once(db: &Db, event: &NewEvent, effects: &[Effect]) -> Result<Recorded, DbError> {
    let mut tx = Tx::begin(db, "starting a callback transaction").await?;
    let recorded = record_in(&mut tx, event, effects).await?;
    if recorded != Recorded::Duplicate {
        tx.commit("committing a callback event").await?;
    }
    // A redelivery's transaction is dropped: rolled back.
    Ok(recorded)
}

/// Journals every `(event, effects)` of a group in one transaction. An
/// event that fails (not a conflict) rolls the group back and the group runs
/// again without it, so it alone is answered with its error (no savepoints:
/// two statements per callback saved; a failing event is rare). A conflict
/// ([`is_retryable`]) or a failed commit fails the whole group, to be run again.
pub(super) async fn record_group(
    db: &Db,
    items: &[(NewEvent, Vec<Effect>)],
) -> Result<Vec<Result<Recorded, DbError>>, DbError> {
    let mut failed: std::collections::BTreeMap<usize, DbError> = Default::default();
    'group: loop {
        let mut tx = Tx::begin(db, "starting a group of callbacks").await?;
        let mut done = Vec::with_capacity(items.len());
        for (i, (event, effects)) in items.iter().enumerate() {
            if failed.contains_key(&i) {
                continue;
            }
            // A redelivery wrote nothing but no-op head upserts: it stays in.
            match record_in(&mut tx, event, effects).await {
                Ok(recorded) => done.push((i, recorded)),
                Err(e) if is_retryable(&e) => return Err(e),
                Err(e) => {
                    tx.rollback("rolling back a group of callbacks").await?;
                    failed.insert(i, e);
                    continue 'group;
                }
            }
        }
        tx.commit("committing a group of callbacks").await?;
        let mut done = done.into_iter();
        let mut results = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            match failed.remove(&i) {
                Some(e) => results.push(Err(e)),
                None => match done.next() {
                    Some((_, recorded)) => results.push(Ok(recorded)),
                    None => {
                        return Err(DbError::Corrupt(
                            "a group of callbacks lost track of an event".into(),
                        ))
                    }
                },
            }
        }
        return Ok(results);
    }
}

/// PostgreSQL, the common callback (one order, nothing else): the same rule
/// as [`record_in`] in two statements instead of five — the head and the
/// order row are created if absent and locked together, then the event is
/// inserted, the head moved and the merged order written together.
async fn record_one_order_pg(
    tx: &mut Tx<'_>,
    event: &NewEvent,
    update: &OrderUpdate,
) -> Result<Recorded, DbError> {
    let entity = Entity::Order(update.order_id.clone());
    let (head, existing) = tx
        .lock_head_and_order(&entity, update, event.received_at)
        .await?;
    if head.as_ref().is_some_and(|h| h.idem_key == event.idem_key) {
        return Ok(Recorded::Duplicate);
    }
    let latest = head.as_ref().and_then(|h| h.event_at);
    if let (Some(at), Some(latest)) = (event.event_at, latest) {
        if at < latest {
            let id = tx.insert_event(event, STATUS_STALE, None).await?;
            return Ok(Recorded::Stale(id));
        }
    }
    let next = merge_order(Some(&existing), update, event.received_at);
    let id = tx.finish_order_event(event, &entity, &next).await?;
    Ok(Recorded::New(id))
}

/// Journals `event` and applies `effects` inside `tx` (see the module doc);
/// a redelivery returns [`Recorded::Duplicate`] having written nothing the
/// caller should keep (it rolls back).
async fn record_in(
    tx: &mut Tx<'_>,
    event: &NewEvent,
    effects: &[Effect],
) -> Result<Recorded, DbError> {
    if let (Dialect::Postgres, [Effect::Order(update)], true, true) = (
        tx.dialect,
        effects,
        event.subjects.is_empty(),
        event.rejected.is_empty(),
    ) {
        return record_one_order_pg(tx, event, update).await;
    }
    let entities = touched_entities(event, effects);
    // Heads (and then rows) are locked in one order, so that two callbacks
    // about the same entities cannot deadlock.
    let mut heads = Vec::with_capacity(entities.len());
    for entity in &entities {
        heads.push(tx.lock_head(entity).await?);
    }
    let redelivery = heads
        .iter()
        .all(|h| h.as_ref().is_some_and(|h| h.idem_key == event.idem_key));
    if redelivery {
        return Ok(Recorded::Duplicate);
    }
    let stale = stale_flags(event, &heads);
    let all_stale = stale.iter().all(|s| *s);
    let status = if all_stale {
        STATUS_STALE
    } else {
        STATUS_ACCEPTED
    };
    let note = (!event.rejected.is_empty()).then(|| {
        format!(
            "{} line(s) rejected, journaled beside this event",
            event.rejected.len()
        )
    });
    let fresh: Vec<&Entity> = entities
        .iter()
        .zip(&stale)
        .filter(|(_, s)| !**s)
        .map(|(e, _)| e)
        .collect();
    // PostgreSQL moves the heads in the event's own INSERT (a round trip per
    // callback saved); the others move them after the effects, below.
    let heads_moved = tx.dialect == Dialect::Postgres && !fresh.is_empty();
    let id = if heads_moved {
        tx.insert_event_moving_heads(event, status, note.as_deref(), &fresh)
            .await?
    } else {
        tx.insert_event(event, status, note.as_deref()).await?
    };
    insert_rejected_lines(tx, event).await?;
    apply_fresh_effects(tx, event, effects, &entities, &stale).await?;
    if !heads_moved {
        move_fresh_heads(tx, event, id, &entities, &heads, &stale).await?;
    }
    Ok(if all_stale {
        Recorded::Stale(id)
    } else {
        Recorded::New(id)
    })
}

/// The entities `event` touches (its effects' and its subjects'), sorted and
/// deduplicated; an event about nothing known gets one `Other` entity of its
/// source and method.
fn touched_entities(event: &NewEvent, effects: &[Effect]) -> Vec<Entity> {
    let mut entities: Vec<Entity> = effects
        .iter()
        .map(Effect::entity)
        .chain(event.subjects.iter().cloned())
        .collect();
    if entities.is_empty() {
        entities.push(Entity::Other {
            kind: format!("{}.{}", event.source, event.method),
            id: String::new(),
        });
    }
    entities.sort();
    entities.dedup();
    entities
}

/// Per entity: is `event` older than the latest one applied to it?
fn stale_flags(event: &NewEvent, heads: &[Option<Head>]) -> Vec<bool> {
    heads
        .iter()
        .map(
            |h| match (event.event_at, h.as_ref().and_then(|h| h.event_at)) {
                (Some(at), Some(latest)) => at < latest,
                _ => false,
            },
        )
        .collect()
}

/// Journals each rejected line of `event` beside it, with its reason.
async fn insert_rejected_lines(tx: &mut Tx<'_>, event: &NewEvent) -> Result<(), DbError> {
    for line in &event.rejected {
        let rejected = NewEvent {
            idem_key: idempotency_key(&event.source, &event.method, &line.body),
            body: line.body.clone(),
            ..event.clone()
        };
        tx.insert_event(&rejected, STATUS_REJECTED, Some(&line.reason))
            .await?;
    }
    Ok(())
}

/// Applies `effects` in entity order, skipping those on entities where
/// `event` is stale (`stale` runs beside `entities`).
async fn apply_fresh_effects(
    tx: &mut Tx<'_>,
    event: &NewEvent,
    effects: &[Effect],
    entities: &[Entity],
    stale: &[bool],
) -> Result<(), DbError> {
    let stale_entities: std::collections::HashSet<&Entity> = entities
        .iter()
        .zip(stale)
        .filter(|(_, s)| **s)
        .map(|(e, _)| e)
        .collect();
    let now = now_ms();
    let mut ordered: Vec<(Entity, &Effect)> = effects.iter().map(|e| (e.entity(), e)).collect();
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    for (entity, effect) in ordered {
        if stale_entities.contains(&entity) {
            continue;
        }
        match effect {
            Effect::Order(update) => tx.apply_order(update, event.received_at).await?,
            Effect::Stock(snapshot) => tx.apply_stock(snapshot).await?,
            Effect::Scan(scan) => tx.apply_scan(scan, now).await?,
        }
    }
    Ok(())
}

/// Points the head of each entity where `event` is not stale at event `id`,
/// keeping the later of its and the event's time.
async fn move_fresh_heads(
    tx: &mut Tx<'_>,
    event: &NewEvent,
    id: i64,
    entities: &[Entity],
    heads: &[Option<Head>],
    stale: &[bool],
) -> Result<(), DbError> {
    for ((entity, head), stale) in entities.iter().zip(heads).zip(stale) {
        if !*stale {
            let latest = head.as_ref().and_then(|h| h.event_at);
            let event_at = match (event.event_at, latest) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            tx.set_head(entity, id, event, event_at).await?;
        }
    }
    Ok(())
}

/// Journals a rejected callback (or one rejected line of it) with the reason;
/// nothing is applied. `event.body` should already be redacted and capped.
pub async fn record_rejected(db: &Db, event: &NewEvent, reason: &str) -> Result<i64, DbError> {
    with_retry("journaling a rejected callback", || async {
        let mut tx = Tx::begin(db, "starting a callback transaction").await?;
        let id = tx
            .insert_event(event, STATUS_REJECTED, Some(reason))
            .await?;
        tx.commit("committing a rejected callback").await?;
        Ok(id)
    })
    .await
}

/// Every order state, by order id.
pub async fn order_states(db: &Db) -> Result<Vec<OrderState>, DbError> {
    db.fetch_all(
        &format!("SELECT {ORDER_COLUMNS} FROM order_states ORDER BY order_id"),
        &[],
        "reading order states",
    )
    .await?
    .iter()
    .map(order_from)
    .collect()
}

/// The latest stock snapshot, by SKU.
pub async fn stock_snapshot(db: &Db) -> Result<Vec<StockSnapshot>, DbError> {
    db.fetch_all(
        &format!("SELECT {STOCK_COLUMNS} FROM stock_snapshots ORDER BY sku"),
        &[],
        "reading the stock snapshot",
    )
    .await?
    .iter()
    .map(stock_from)
    .collect()
}

/// Replaces the stock snapshot with `rows` in one transaction (the stock job),
/// keeping what is newer than the run.
///
/// `rows` carry the time the job began reading the WMS (`taken_at`; the
/// oldest one is the cut-off). A stored snapshot taken after the cut-off —
/// an EGON `InventoryStatusUpdate` acknowledged while the job ran — is kept,
/// whether or not the run reported that SKU; everything else is replaced or
/// removed, and the SKU heads up to the cut-off are superseded (a
/// callback repeating the last one is then applied again, see the module doc).
/// A repeated SKU keeps its last row. Empty `rows` change nothing.
pub async fn put_stock_snapshot(db: &Db, rows: &[StockSnapshot]) -> Result<(), DbError> {
    let Some(cutoff) = rows.iter().map(|r| r.taken_at).min() else {
        return Ok(());
    };
    // One row per SKU, the last given winning, in SKU order: a stable sort
    // (linear on the SKU-ordered rows a stock run gives) and a pass that
    // keeps the last of each run of equal SKUs.
    let mut sorted: Vec<&StockSnapshot> = rows.iter().collect();
    sorted.sort_by(|a, b| a.sku.cmp(&b.sku));
    let mut rows: Vec<&StockSnapshot> = Vec::with_capacity(sorted.len());
    for row in sorted {
        match rows.last_mut() {
            Some(last) if last.sku == row.sku => *last = row,
            _ => rows.push(row),
        }
    }
    with_retry("saving the stock snapshot", || {
        put_stock_snapshot_once(db, &rows, cutoff)
    })
    .await
}

async fn put_stock_snapshot_once(
    db: &Db,
    rows: &[&StockSnapshot],
    cutoff: i64,
) -> Result<(), DbError> {
    let mut tx = Tx::begin(db, "starting a stock snapshot transaction").await?;
    // Heads first, then snapshots: the order callbacks lock them in.
    tx.execute(
        "DELETE FROM event_heads WHERE kind = 'sku' AND received_at <= ?",
        &[cutoff.into()],
        "superseding the SKU event heads",
    )
    .await?;
    tx.execute(
        "DELETE FROM stock_snapshots WHERE taken_at <= ?",
        &[cutoff.into()],
        "clearing the stock snapshot",
    )
    .await?;
    // Multi-row upserts: one statement per 500 rows instead of one per row
    // (a million SKUs is minutes row by row, seconds this way); 3,000 bound
    // parameters stay far below every engine's limit.
    const ROWS_PER_INSERT: usize = 500;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut args = Vec::with_capacity(chunk.len() * 6);
        for s in chunk {
            args.extend(s.upsert_args());
        }
        tx.execute(
            upsert_stock_sql(tx.dialect, chunk.len()),
            &args,
            "storing a stock snapshot",
        )
        .await?;
    }
    tx.commit("committing the stock snapshot").await
}

/// Journaled notifications of `source` (accepted or stale; rejected ones are
/// listed by [`list`]) with an id above `since_id`, oldest first.
pub async fn events(db: &Db, source: &str, since_id: i64) -> Result<Vec<EventRecord>, DbError> {
    db.fetch_all(
        "SELECT id, source, method, idem_key, body, received_at, status, error FROM events \
         WHERE source = ? AND id > ? AND status <> ? ORDER BY id",
        &[source.into(), since_id.into(), STATUS_REJECTED.into()],
        "reading callback events",
    )
    .await?
    .iter()
    .map(event_from)
    .collect()
}

/// Which events [`list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only rejected callbacks and lines.
    pub rejected_only: bool,
    /// Only this source.
    pub source: Option<String>,
    /// Only events received at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    /// At most this many (newest first).
    pub limit: i64,
}

/// Journaled events matching `filter`, newest first.
pub async fn list(db: &Db, filter: &EventFilter) -> Result<Vec<EventRecord>, DbError> {
    let mut sql = String::from(
        "SELECT id, source, method, idem_key, body, received_at, status, error FROM events WHERE 1 = 1",
    );
    let mut args: Vec<Arg> = Vec::new();
    if filter.rejected_only {
        sql.push_str(" AND status = ?");
        args.push(STATUS_REJECTED.into());
    }
    if let Some(source) = &filter.source {
        sql.push_str(" AND source = ?");
        args.push(source.as_str().into());
    }
    if let Some(since) = filter.since_ms {
        sql.push_str(" AND received_at >= ?");
        args.push(since.into());
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(filter.limit.max(0).into());
    db.fetch_all(&sql, &args, "listing callback events")
        .await?
        .iter()
        .map(event_from)
        .collect()
}

/// The scan of `user_id` for `code`, if any.
pub async fn scan(db: &Db, user_id: &str, code: &str) -> Result<Option<Scan>, DbError> {
    db.fetch_optional(
        &format!("SELECT {SCAN_COLUMNS} FROM scans WHERE user_id = ? AND code = ?"),
        &[user_id.into(), code.into()],
        "reading a scan",
    )
    .await?
    .map(|r| scan_from(&r))
    .transpose()
}

/// The scans of one user, newest first.
pub async fn user_scans(db: &Db, user_id: &str) -> Result<Vec<Scan>, DbError> {
    db.fetch_all(
        &format!(
            "SELECT {SCAN_COLUMNS} FROM scans WHERE user_id = ? \
             ORDER BY scanned_at DESC, created_at DESC, id"
        ),
        &[user_id.into()],
        "reading a user's scans",
    )
    .await?
    .iter()
    .map(scan_from)
    .collect()
}

/// Scans whose current status IMSHOP has not learned yet (to push), oldest change first.
pub async fn scans_to_push(db: &Db) -> Result<Vec<Scan>, DbError> {
    db.fetch_all(
        &format!(
            "SELECT {SCAN_COLUMNS} FROM scans \
             WHERE pushed_status IS NULL OR pushed_status <> status ORDER BY updated_at, id"
        ),
        &[],
        "reading scans to push",
    )
    .await?
    .iter()
    .map(scan_from)
    .collect()
}

/// Records a push attempt: on success (`error` = None) IMSHOP now knows
/// `status`; on failure the error is kept and the scan stays due.
pub async fn mark_scan_pushed(
    db: &Db,
    id: &str,
    status: ScanStatus,
    error: Option<&str>,
) -> Result<(), DbError> {
    let now = now_ms();
    match error {
        None => db
            .execute(
                "UPDATE scans SET pushed_status = ?, pushed_at = ?, push_error = NULL WHERE id = ?",
                &[status.as_str().into(), now.into(), id.into()],
                "marking a scan pushed",
            )
            .await
            .map(drop),
        Some(message) => db
            .execute(
                "UPDATE scans SET pushed_at = ?, push_error = ? WHERE id = ?",
                &[now.into(), message.into(), id.into()],
                "recording a failed scan push",
            )
            .await
            .map(drop),
    }
}

/// Changes a scan's status after a re-check (e.g. `processing` → `approved`);
/// it then shows up in [`scans_to_push`].
pub async fn set_scan_status(
    db: &Db,
    id: &str,
    status: ScanStatus,
    message: Option<&str>,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE scans SET status = ?, status_message = ?, updated_at = ? WHERE id = ?",
        &[
            status.as_str().into(),
            message.map(str::to_string).into(),
            now_ms().into(),
            id.into(),
        ],
        "updating a scan status",
    )
    .await
    .map(drop)
}

/// Scans still `processing` whose last change is at least `older_than_ms` ago.
pub async fn scans_stuck_processing(db: &Db, older_than_ms: i64) -> Result<Vec<Scan>, DbError> {
    db.fetch_all(
        &format!(
            "SELECT {SCAN_COLUMNS} FROM scans WHERE status = 'processing' AND updated_at <= ? \
             ORDER BY updated_at, id"
        ),
        &[(now_ms() - older_than_ms).into()],
        "reading scans stuck in processing",
    )
    .await?
    .iter()
    .map(scan_from)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: i64, old: Option<i64>, at: Option<i64>) -> StatusChange {
        StatusChange {
            status,
            old_status: old,
            event_at: at,
        }
    }

    #[test]
    fn imsklad_status_moves_forward_and_not_back() {
        let s = SOURCE_IMSKLAD;
        assert!(status_may_move(s, None, &change(3, Some(0), None), 5));
        assert!(status_may_move(
            s,
            Some((3, 5)),
            &change(6, Some(5), None),
            6
        ));
        assert!(!status_may_move(
            s,
            Some((6, 5)),
            &change(2, Some(1), None),
            9
        ));
        // A step back the warehouse reports from the stored status is taken.
        assert!(status_may_move(
            s,
            Some((6, 5)),
            &change(5, Some(6), None),
            9
        ));
        // Final states stay; shipped only moves on to a final one.
        assert!(!status_may_move(
            s,
            Some((10, 5)),
            &change(5, Some(10), None),
            9
        ));
        assert!(!status_may_move(
            s,
            Some((11, 5)),
            &change(10, Some(11), None),
            9
        ));
        assert!(!status_may_move(
            s,
            Some((9, 5)),
            &change(8, Some(9), None),
            9
        ));
        assert!(status_may_move(
            s,
            Some((9, 5)),
            &change(11, Some(9), None),
            9
        ));
        // An unknown stored status never blocks a real one.
        assert!(status_may_move(
            s,
            Some((99, 5)),
            &change(9, Some(8), None),
            9
        ));
    }

    #[test]
    fn egon_status_follows_event_time_until_final() {
        let s = SOURCE_EGON;
        assert!(status_may_move(
            s,
            Some((5, 100)),
            &change(7, None, Some(200)),
            200
        ));
        assert!(!status_may_move(
            s,
            Some((7, 200)),
            &change(5, None, Some(100)),
            100
        ));
        assert!(status_may_move(
            s,
            Some((5, 100)),
            &change(2, None, Some(150)),
            150
        ));
        assert!(!status_may_move(
            s,
            Some((6, 100)),
            &change(5, None, Some(300)),
            300
        ));
    }

    #[test]
    fn merge_keeps_present_fields_and_sets_cancel() {
        let first = merge_order(
            None,
            &OrderUpdate {
                order_id: "A".into(),
                source: SOURCE_IMSKLAD.into(),
                track: Some("T1".into()),
                ..Default::default()
            },
            10,
        );
        let next = merge_order(
            Some(&first),
            &OrderUpdate {
                order_id: "A".into(),
                source: SOURCE_IMSKLAD.into(),
                status: Some(change(10, Some(0), None)),
                wms_order_id: Some("77".into()),
                ..Default::default()
            },
            20,
        );
        assert_eq!(next.track.as_deref(), Some("T1"));
        assert_eq!(next.wms_status, Some(10));
        assert_eq!(next.status_at, Some(20));
        assert!(next.is_canceled);
        assert_eq!(next.wms_order_id.as_deref(), Some("77"));
        assert_eq!(next.updated_at, 20);
    }

    #[test]
    fn idempotency_key_separates_fields() {
        let a = idempotency_key("imsklad", "ab", "c");
        let b = idempotency_key("imsklad", "a", "bc");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(a, idempotency_key("imsklad", "ab", "c"));
    }
}
