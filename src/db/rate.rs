//! Rate limits shared by every sverka process of one state database.
//!
//! RetailCRM allows an account 10 requests a second, whoever sends them: the
//! daemon, a cron run, a manual `reconcile`, the listener. Each process already
//! keeps its own requests within the limit ([`crate::net::RateLimiter`]);
//! this keeps them within it *together*. A request takes a slot in the state
//! database's `rate_slots` table before it is sent and gives it back when its
//! answer is in; at most `max` slots may be in flight or released within the
//! last `window`, so no server-side window of that length can count more than
//! `max` requests of all processes. Taking a slot is serialised per account
//! by a row lock on `rate_buckets` (the write lock on SQLite). A slot a dead
//! process never gave back stops counting after `stale`.
//!
//! A vendor may count a request at any instant before it answers, even the
//! last one, and the slots' stamps are whole milliseconds of the wall clock:
//! a released slot therefore keeps counting for [`CLOCK_MARGIN`] beyond its
//! window, so a stamp rounded down, or an answer read a fraction of a
//! millisecond after the vendor counted it, cannot let one request too many
//! into the vendor's window.

use std::time::Duration;

use super::{bind_args, now_ms, Arg, Db, DbError, Dialect};

/// The transaction a slot is taken in.
type RateTx = sqlx::Transaction<'static, sqlx::Any>;

/// How long a released slot counts beyond its window: the rounding of the
/// millisecond stamps plus the instant between the vendor counting a request
/// and the answer arriving.
pub const CLOCK_MARGIN: Duration = Duration::from_millis(10);

/// A limit of `max` requests per `window` for one account, shared through `db`.
#[derive(Debug, Clone)]
pub struct SharedRateLimit {
    db: Db,
    bucket: String,
    max: usize,
    window: Duration,
    stale: Duration,
}

/// A slot taken with [`SharedRateLimit::acquire`]; give it back with
/// [`SharedSlot::release`] once the answer is in.
#[derive(Debug)]
pub struct SharedSlot {
    db: Db,
    slot: String,
}

impl SharedRateLimit {
    /// A limit of `max` requests per `window` for the account named `bucket`.
    /// A slot held longer than `stale` (a crashed process) stops counting.
    pub fn new(db: Db, bucket: &str, max: usize, window: Duration, stale: Duration) -> Self {
        // The key is a name, never a secret: callers pass the account URL.
        let mut bucket = bucket.to_string();
        bucket.truncate(190);
        SharedRateLimit {
            db,
            bucket,
            max: max.max(1),
            window,
            stale,
        }
    }

    /// Waits for a free slot and takes it.
    pub async fn acquire(&self) -> Result<SharedSlot, DbError> {
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(slot) = self.try_take().await? {
                return Ok(SharedSlot {
                    db: self.db.clone(),
                    slot,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(40));
        }
    }

    async fn try_take(&self) -> Result<Option<String>, DbError> {
        let q = |what: &'static str| DbError::query(what);
        let mut tx = self
            .db
            .pool()
            .begin()
            .await
            .map_err(q("taking a shared rate-limit slot"))?;
        let now = now_ms();
        if !self.lock_bucket(&mut tx).await? {
            self.ensure_bucket(&mut tx, now).await?;
            tx.commit().await.map_err(q("creating the rate bucket"))?;
            return Ok(None);
        }
        let window_ms = (self.window + CLOCK_MARGIN).as_millis() as i64;
        let stale_ms = self.stale.as_millis() as i64;
        let count = self.count_slots(&mut tx, now, window_ms, stale_ms).await?;
        let taken = if (count as usize) < self.max {
            Some(self.insert_slot(&mut tx, now, window_ms, stale_ms).await?)
        } else {
            None
        };
        tx.commit()
            .await
            .map_err(q("taking a shared rate-limit slot"))?;
        Ok(taken)
    }

    /// Locks the bucket's row; false when there is no row yet.
    ///
    /// The row lock (SQLite: the write lock) serialises the slot count. It is
    /// taken by an UPDATE first: an INSERT that finds the row would take a
    /// shared lock, and two of those upgrading deadlock.
    async fn lock_bucket(&self, tx: &mut RateTx) -> Result<bool, DbError> {
        let locked = bind_args(
            sqlx::query(
                &self
                    .db
                    .sql("UPDATE rate_buckets SET touched_at = touched_at + 1 WHERE name = ?"),
            ),
            &[Arg::Text(self.bucket.clone())],
        )
        .execute(&mut **tx)
        .await
        .map_err(DbError::query("locking the rate bucket"))?
        .rows_affected();
        Ok(locked != 0)
    }

    /// Creates the bucket's row unless another process just did.
    async fn ensure_bucket(&self, tx: &mut RateTx, now: i64) -> Result<(), DbError> {
        let ensure = match self.db.dialect() {
            Dialect::MySql => "INSERT IGNORE INTO rate_buckets (name, touched_at) VALUES (?, ?)",
            _ => "INSERT INTO rate_buckets (name, touched_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        };
        bind_args(
            sqlx::query(&self.db.sql(ensure)),
            &[Arg::Text(self.bucket.clone()), Arg::I64(now)],
        )
        .execute(&mut **tx)
        .await
        .map_err(DbError::query("creating the rate bucket"))?;
        Ok(())
    }

    /// How many slots of the bucket still count at `now`.
    async fn count_slots(
        &self,
        tx: &mut RateTx,
        now: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<i64, DbError> {
        let q = |what: &'static str| DbError::query(what);
        // A current read, not a snapshot: on MySQL (REPEATABLE READ) a plain
        // SELECT may read the snapshot of an earlier statement of this
        // transaction and miss a slot committed while it waited for the lock.
        let count_sql = format!(
            "SELECT COUNT(*) FROM rate_slots WHERE bucket = ? AND \
             ((released_at IS NULL AND taken_at > ?) OR released_at > ?){}",
            if self.db.dialect() == Dialect::MySql {
                " FOR UPDATE"
            } else {
                ""
            }
        );
        let row = bind_args(
            sqlx::query(&self.db.sql(&count_sql)),
            &[
                Arg::Text(self.bucket.clone()),
                Arg::I64(now - stale_ms),
                Arg::I64(now - window_ms),
            ],
        )
        .fetch_one(&mut **tx)
        .await
        .map_err(q("counting rate slots"))?;
        sqlx::Row::try_get(&row, 0).map_err(q("reading the rate slot count"))
    }

    /// Takes a new slot at `now` and prunes old ones; returns the slot's id.
    async fn insert_slot(
        &self,
        tx: &mut RateTx,
        now: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<String, DbError> {
        let slot = uuid::Uuid::new_v4().simple().to_string();
        bind_args(
            sqlx::query(&self.db.sql(
                "INSERT INTO rate_slots (slot, bucket, taken_at, released_at) VALUES (?, ?, ?, NULL)",
            )),
            &[
                Arg::Text(slot.clone()),
                Arg::Text(self.bucket.clone()),
                Arg::I64(now),
            ],
        )
        .execute(&mut **tx)
        .await
        .map_err(DbError::query("taking a rate slot"))?;
        // Old slots go, so the table stays small.
        bind_args(
            sqlx::query(&self.db.sql(
                "DELETE FROM rate_slots WHERE bucket = ? AND taken_at < ? AND (released_at IS NOT NULL OR taken_at < ?)",
            )),
            &[
                Arg::Text(self.bucket.clone()),
                Arg::I64(now - 10 * window_ms),
                Arg::I64(now - stale_ms),
            ],
        )
        .execute(&mut **tx)
        .await
        .map_err(DbError::query("pruning rate slots"))?;
        Ok(slot)
    }
}

impl SharedSlot {
    /// Gives the slot back: it keeps counting for one window from now.
    pub async fn release(self) -> Result<(), DbError> {
        self.db
            .execute(
                "UPDATE rate_slots SET released_at = ? WHERE slot = ?",
                &[now_ms().into(), self.slot.clone().into()],
                "releasing a rate slot",
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A slot given back at R keeps its place until a full window after R, as
    /// a vendor that counted the request just before answering sees it.
    #[tokio::test]
    async fn a_released_slot_counts_for_a_whole_window_after_its_release() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let db = Db::connect_state(&url).await.expect("state db");
        let window = Duration::from_millis(200);
        let limit = SharedRateLimit::new(db, "retailcrm:test", 1, window, Duration::from_secs(60));
        for _ in 0..5 {
            let slot = limit.acquire().await.expect("slot");
            let released = Instant::now();
            slot.release().await.expect("release");
            limit
                .acquire()
                .await
                .expect("next slot")
                .release()
                .await
                .expect("release");
            assert!(
                released.elapsed() >= window,
                "a slot was taken again {:?} after the last was given back",
                released.elapsed()
            );
        }
    }

    /// Taking up to `max` slots is immediate; a held slot keeps counting.
    #[tokio::test]
    async fn at_most_max_slots_are_taken_at_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let db = Db::connect_state(&url).await.expect("state db");
        let limit =
            SharedRateLimit::new(db, "b", 2, Duration::from_secs(30), Duration::from_secs(60));
        let _a = limit.acquire().await.expect("first");
        let _b = limit.acquire().await.expect("second");
        assert!(
            limit.try_take().await.expect("try").is_none(),
            "a third slot was taken"
        );
    }
}
