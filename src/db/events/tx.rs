//! One event's transaction: heads locked and moved, effects applied, per
//! dialect (the PostgreSQL fast path included).

use super::*;

/// A transaction on the state database with its dialect.
pub(super) struct Tx<'c> {
    pub(super) tx: Transaction<'c, Any>,
    pub(super) dialect: Dialect,
}

impl Tx<'_> {
    pub(super) async fn begin(db: &Db, what: &str) -> Result<Tx<'static>, DbError> {
        let tx = db.pool().begin().await.map_err(DbError::query(what))?;
        Ok(Tx {
            tx,
            dialect: db.dialect(),
        })
    }

    pub(super) async fn execute(
        &mut self,
        sql: &str,
        args: &[Arg],
        what: &str,
    ) -> Result<u64, DbError> {
        let text = crate::db::translate(sql, self.dialect);
        let done = bind_args(sqlx::query(&text), args)
            .execute(&mut *self.tx)
            .await
            .map_err(DbError::query(what))?;
        Ok(done.rows_affected())
    }

    pub(super) async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Arg],
        what: &str,
    ) -> Result<Option<AnyRow>, DbError> {
        let text = crate::db::translate(sql, self.dialect);
        bind_args(sqlx::query(&text), args)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(DbError::query(what))
    }

    pub(super) async fn commit(self, what: &str) -> Result<(), DbError> {
        self.tx.commit().await.map_err(DbError::query(what))
    }

    pub(super) async fn rollback(self, what: &str) -> Result<(), DbError> {
        self.tx.rollback().await.map_err(DbError::query(what))
    }

    /// Inserts the event with `status` (and `error`) and returns its id.
    pub(super) async fn insert_event(
        &mut self,
        event: &NewEvent,
        status: &str,
        error: Option<&str>,
    ) -> Result<i64, DbError> {
        const WHAT: &str = "journaling a callback event";
        let sql = INSERT_EVENT;
        let args = event.insert_args(status, error);
        let text = if self.dialect == Dialect::MySql {
            sql.to_string()
        } else {
            format!("{} RETURNING id", crate::db::translate(sql, self.dialect))
        };
        let query = bind_args(sqlx::query(&text), &args);
        let outcome = if self.dialect == Dialect::MySql {
            query
                .execute(&mut *self.tx)
                .await
                .map(|done| done.last_insert_id())
        } else {
            query
                .fetch_one(&mut *self.tx)
                .await
                .and_then(|row| int(&row, "id").map(Some))
        };
        match outcome {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(DbError::Corrupt(format!(
                "{WHAT}: the driver returned no id"
            ))),
            Err(source) => Err(DbError::Query {
                what: WHAT.to_string(),
                source,
            }),
        }
    }

    /// PostgreSQL: inserts the event (as [`Tx::insert_event`]) and moves the
    /// heads of `fresh` (locked by [`Tx::lock_head`]) to it in one statement.
    /// A head's `event_at` becomes the later of its own and the event's.
    pub(super) async fn insert_event_moving_heads(
        &mut self,
        event: &NewEvent,
        status: &str,
        error: Option<&str>,
        fresh: &[&Entity],
    ) -> Result<i64, DbError> {
        let (mut sql, args) = event_and_heads(event, status, error, fresh);
        sql.push_str(" SELECT id FROM e");
        self.fetch_event_id(&sql, &args).await
    }

    /// Runs a statement answering the new event's `id`.
    pub(super) async fn fetch_event_id(&mut self, sql: &str, args: &[Arg]) -> Result<i64, DbError> {
        const WHAT: &str = "journaling a callback event";
        let row = self
            .fetch_optional(sql, args, WHAT)
            .await?
            .ok_or_else(|| DbError::Corrupt(format!("{WHAT}: the database returned no id")))?;
        int(&row, "id").map_err(corrupt("events"))
    }

    /// Creates the entity's head if absent and locks it; returns the stored
    /// head (`None` when just created).
    pub(super) async fn lock_head(&mut self, entity: &Entity) -> Result<Option<Head>, DbError> {
        let key = entity.key();
        let args = [
            Arg::from(key.as_str()),
            entity.kind().into(),
            entity.subject().into(),
        ];
        let row = match self.dialect {
            Dialect::MySql => {
                self.execute(
                    "INSERT INTO event_heads (entity, kind, subject, event_id, idem_key, received_at) \
                     VALUES (?, ?, ?, 0, '', 0) ON DUPLICATE KEY UPDATE entity = entity",
                    &args,
                    "creating an event head",
                )
                .await?;
                self.fetch_optional(
                    "SELECT event_id, idem_key, event_at FROM event_heads WHERE entity = ? FOR UPDATE",
                    &[key.as_str().into()],
                    "locking an event head",
                )
                .await?
            }
            _ => {
                self.fetch_optional(
                    "INSERT INTO event_heads (entity, kind, subject, event_id, idem_key, received_at) \
                     VALUES (?, ?, ?, 0, '', 0) ON CONFLICT (entity) DO UPDATE SET entity = excluded.entity \
                     RETURNING event_id, idem_key, event_at",
                    &args,
                    "locking an event head",
                )
                .await?
            }
        };
        let row =
            row.ok_or_else(|| DbError::Corrupt("event head missing after its upsert".into()))?;
        let e = corrupt("event_heads");
        if int(&row, "event_id").map_err(&e)? == 0 {
            return Ok(None);
        }
        Ok(Some(Head {
            idem_key: text(&row, "idem_key").map_err(&e)?,
            event_at: opt_int(&row, "event_at").map_err(&e)?,
        }))
    }

    /// Moves the entity's head to event `id`.
    pub(super) async fn set_head(
        &mut self,
        entity: &Entity,
        id: i64,
        event: &NewEvent,
        event_at: Option<i64>,
    ) -> Result<(), DbError> {
        self.execute(
            "UPDATE event_heads SET event_id = ?, idem_key = ?, event_at = ?, received_at = ? \
             WHERE entity = ?",
            &[
                id.into(),
                event.idem_key.as_str().into(),
                event_at.into(),
                event.received_at.into(),
                entity.key().into(),
            ],
            "moving an event head",
        )
        .await
        .map(drop)
    }

    /// PostgreSQL: creates the entity's head and the order's row if absent
    /// and locks both, in one statement; returns the stored head (`None` when
    /// just created) and the order row.
    pub(super) async fn lock_head_and_order(
        &mut self,
        entity: &Entity,
        update: &OrderUpdate,
        received_at: i64,
    ) -> Result<(Option<Head>, OrderState), DbError> {
        let sql = format!(
            "WITH h AS (INSERT INTO event_heads (entity, kind, subject, event_id, idem_key, received_at) \
             VALUES (?, ?, ?, 0, '', 0) ON CONFLICT (entity) DO UPDATE SET entity = excluded.entity \
             RETURNING event_id, idem_key, event_at), \
             o AS (INSERT INTO order_states (order_id, source, updated_at, is_canceled) \
             VALUES (?, ?, ?, 0) ON CONFLICT (order_id) DO UPDATE SET order_id = excluded.order_id \
             RETURNING {ORDER_COLUMNS}) \
             SELECT h.event_id, h.idem_key, h.event_at, o.* FROM h CROSS JOIN o"
        );
        let row = self
            .fetch_optional(
                &sql,
                &[
                    Arg::from(entity.key()),
                    entity.kind().into(),
                    entity.subject().into(),
                    update.order_id.as_str().into(),
                    update.source.as_str().into(),
                    received_at.into(),
                ],
                "locking an order and its event head",
            )
            .await?
            .ok_or_else(|| {
                DbError::Corrupt("event head or order missing after its upsert".into())
            })?;
        let e = corrupt("event_heads");
        let head = if int(&row, "event_id").map_err(&e)? == 0 {
            None
        } else {
            Some(Head {
                idem_key: text(&row, "idem_key").map_err(&e)?,
                event_at: opt_int(&row, "event_at").map_err(&e)?,
            })
        };
        Ok((head, order_from(&row)?))
    }

    /// PostgreSQL: inserts the accepted event, moves the entity's head to it
    /// and writes the merged order, in one statement; returns the event id.
    pub(super) async fn finish_order_event(
        &mut self,
        event: &NewEvent,
        entity: &Entity,
        next: &OrderState,
    ) -> Result<i64, DbError> {
        let (mut sql, mut args) = event_and_heads(event, STATUS_ACCEPTED, None, &[entity]);
        sql.push_str(", o AS (");
        sql.push_str(UPDATE_ORDER_STATE);
        sql.push_str(") SELECT id FROM e");
        args.extend(next.update_args());
        self.fetch_event_id(&sql, &args).await
    }

    /// Applies one order update: the row is created if absent and locked
    /// (see the module doc), merged in Rust and written back, so two
    /// concurrent callbacks for one order never overwrite each other.
    pub(super) async fn apply_order(
        &mut self,
        update: &OrderUpdate,
        received_at: i64,
    ) -> Result<(), DbError> {
        let key = [
            Arg::from(update.order_id.as_str()),
            update.source.as_str().into(),
            received_at.into(),
        ];
        let row = match self.dialect {
            Dialect::MySql => {
                self.execute(
                    "INSERT INTO order_states (order_id, source, updated_at, is_canceled) \
                     VALUES (?, ?, ?, 0) ON DUPLICATE KEY UPDATE order_id = order_id",
                    &key,
                    "creating an order state",
                )
                .await?;
                self.fetch_optional(
                    &format!("SELECT {ORDER_COLUMNS} FROM order_states WHERE order_id = ? FOR UPDATE"),
                    &[update.order_id.as_str().into()],
                    "locking an order state",
                )
                .await?
            }
            // One statement creates the row if absent and returns it locked
            // (PostgreSQL's DO UPDATE takes the row lock; SQLite has one writer).
            _ => {
                self.fetch_optional(
                    &format!(
                        "INSERT INTO order_states (order_id, source, updated_at, is_canceled) \
                         VALUES (?, ?, ?, 0) ON CONFLICT (order_id) DO UPDATE SET order_id = excluded.order_id \
                         RETURNING {ORDER_COLUMNS}"
                    ),
                    &key,
                    "locking an order state",
                )
                .await?
            }
        };
        let existing = row.map(|r| order_from(&r)).transpose()?.ok_or_else(|| {
            DbError::Corrupt(format!(
                "order state `{}` missing right after it was created",
                update.order_id
            ))
        })?;
        // A row just created holds no state yet: merging into it is merging into nothing.
        let next = merge_order(Some(&existing), update, received_at);
        self.execute(
            UPDATE_ORDER_STATE,
            &next.update_args(),
            "storing an order state",
        )
        .await?;
        Ok(())
    }

    /// Stores one SKU's stock unless a newer snapshot of it is stored, in one
    /// atomic upsert (the comparison is made on the row as locked by the engine).
    pub(super) async fn apply_stock(&mut self, s: &StockSnapshot) -> Result<(), DbError> {
        let args = s.upsert_args();
        self.execute(
            upsert_stock_sql(self.dialect, 1),
            &args,
            "storing a stock snapshot",
        )
        .await?;
        Ok(())
    }

    /// Stores a scan: one upsert by (user, code), so a first-insert race
    /// between two deliveries cannot fail.
    pub(super) async fn apply_scan(&mut self, w: &ScanWrite, now: i64) -> Result<(), DbError> {
        let sql = match self.dialect {
            Dialect::MySql => {
                "INSERT INTO scans (id, user_id, code, status, status_message, scanned_at, \
                 created_at, updated_at, pushed_status, pushed_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
                 status = VALUES(status), status_message = VALUES(status_message), \
                 updated_at = VALUES(updated_at), pushed_status = VALUES(pushed_status), \
                 pushed_at = VALUES(pushed_at), push_error = NULL"
            }
            _ => {
                "INSERT INTO scans (id, user_id, code, status, status_message, scanned_at, \
                 created_at, updated_at, pushed_status, pushed_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, code) DO UPDATE SET \
                 status = excluded.status, status_message = excluded.status_message, \
                 updated_at = excluded.updated_at, pushed_status = excluded.pushed_status, \
                 pushed_at = excluded.pushed_at, push_error = NULL"
            }
        };
        let status = w.status.as_str();
        self.execute(
            sql,
            &[
                uuid::Uuid::new_v4().to_string().into(),
                w.user_id.as_str().into(),
                w.code.as_str().into(),
                status.into(),
                w.status_message.clone().into(),
                w.scanned_at.into(),
                now.into(),
                now.into(),
                status.into(),
                now.into(),
            ],
            "storing a scan",
        )
        .await?;
        Ok(())
    }
}

/// PostgreSQL: the CTEs `e` (the event inserted with `status` and `error`,
/// answering its `id`) and `h` (the heads of `fresh` moved to it, each
/// `event_at` the later of its own and the event's), with their arguments;
/// the caller adds what follows (more CTEs, the final `SELECT`).
pub(super) fn event_and_heads(
    event: &NewEvent,
    status: &str,
    error: Option<&str>,
    fresh: &[&Entity],
) -> (String, Vec<Arg>) {
    let mut sql = format!(
        "WITH e AS ({INSERT_EVENT} RETURNING id), \
         h AS (UPDATE event_heads SET event_id = (SELECT id FROM e), idem_key = ?, received_at = ?, \
         event_at = CASE WHEN CAST(? AS BIGINT) IS NULL THEN event_at \
         WHEN event_at IS NULL THEN CAST(? AS BIGINT) ELSE GREATEST(event_at, CAST(? AS BIGINT)) END \
         WHERE entity IN (",
    );
    let mut args = event.insert_args(status, error).to_vec();
    args.extend([
        Arg::from(event.idem_key.as_str()),
        event.received_at.into(),
        event.event_at.into(),
        event.event_at.into(),
        event.event_at.into(),
    ]);
    for (i, entity) in fresh.iter().enumerate() {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
        args.push(entity.key().into());
    }
    sql.push_str("))");
    (sql, args)
}

/// The upsert of `rows` stock snapshots `(sku, wms_stock, wms_reserved,
/// sellable, source, taken_at)` that keeps a stored row with a newer `taken_at`.
///
/// MySQL assigns `ON DUPLICATE KEY UPDATE` columns left to right, each seeing
/// the ones already assigned, so `taken_at` is compared in every column and
/// assigned last.
// The cache holds `&'static str`s: the `*` copies one out of the map (clippy
// reads it as a needless deref).
#[allow(clippy::explicit_auto_deref)]
pub(super) fn upsert_stock_sql(dialect: Dialect, rows: usize) -> &'static str {
    use std::sync::OnceLock;
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<(u8, usize), &'static str>>> =
        OnceLock::new();
    let key = (dialect as u8, rows);
    let cache = CACHE.get_or_init(Default::default);
    let mut guard = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *guard.entry(key).or_insert_with(|| {
        let mut sql = String::from(
            "INSERT INTO stock_snapshots (sku, wms_stock, wms_reserved, sellable, source, taken_at) VALUES ",
        );
        for i in 0..rows {
            sql.push_str(if i == 0 { "(?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?)" });
        }
        match dialect {
            Dialect::MySql => sql.push_str(
                " ON DUPLICATE KEY UPDATE \
                 wms_stock = IF(taken_at <= VALUES(taken_at), VALUES(wms_stock), wms_stock), \
                 wms_reserved = IF(taken_at <= VALUES(taken_at), VALUES(wms_reserved), wms_reserved), \
                 sellable = IF(taken_at <= VALUES(taken_at), VALUES(sellable), sellable), \
                 source = IF(taken_at <= VALUES(taken_at), VALUES(source), source), \
                 taken_at = GREATEST(taken_at, VALUES(taken_at))",
            ),
            _ => sql.push_str(
                " ON CONFLICT (sku) DO UPDATE SET wms_stock = excluded.wms_stock, \
                 wms_reserved = excluded.wms_reserved, sellable = excluded.sellable, \
                 source = excluded.source, taken_at = excluded.taken_at \
                 WHERE stock_snapshots.taken_at <= excluded.taken_at",
            ),
        }
        Box::leak(sql.into_boxed_str())
    })
}
