//! One run per job at a time.
//!
//! PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a dedicated
//! connection. MySQL/MariaDB: `GET_LOCK` on a dedicated connection. Both are
//! released by the server when the connection dies, so a crashed run never
//! blocks forever. SQLite: a lease row in `job_locks` with an expiry that the
//! holder renews; a crashed holder's lease simply runs out.

use sqlx::pool::PoolConnection;
use sqlx::{Any, Row};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

use super::{bind_args, now_ms, Arg, Db, DbError, Dialect};

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("job `{job}` is already running ({holder}); refusing to start a second run")]
    Held {
        /// The job.
        job: String,
        /// Who holds it, as far as sverka can tell.
        holder: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A run no longer holds its job lock: it must not write anything more.
#[derive(Debug, Clone, thiserror::Error)]
#[error("this run no longer holds the `{job}` job lock ({why}); it stops before its next write, so two runs never write at once")]
pub struct LockLost {
    /// The job.
    pub job: String,
    /// What the check found.
    pub why: String,
}

/// A held job lock. Call [`JobLock::release`]; dropping it also releases the
/// lock (by closing the connection, or by letting the lease expire on SQLite).
///
/// [`JobLock::check`] tells whether it is still held, before each batch of
/// writes: the SQLite lease row is still this holder's and unexpired (and
/// every renewal found it so), or the PostgreSQL/MySQL lock connection is
/// alive and still holds the lock.
pub struct JobLock {
    job: String,
    owner: String,
    db: Db,
    conn: Option<PoolConnection<Any>>,
    renew: Option<JoinHandle<()>>,
    /// MySQL: the lock's name (unique per state database).
    name: String,
    /// SQLite: why a renewal found the lease gone, once it did.
    lost: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for JobLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobLock")
            .field("job", &self.job)
            .field("owner", &self.owner)
            .finish()
    }
}

/// The 64-bit key of a job for PostgreSQL advisory locks.
fn advisory_key(job: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("sverka-job:{job}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The MySQL lock name of a job in the state database `database`.
///
/// `GET_LOCK` names are server-wide, so the name carries the database: two
/// deployments on one server do not block each other. Names longer than
/// MySQL's 64 characters are shortened with a hash, never truncated into
/// another deployment's name.
pub fn mysql_name(database: &str, job: &str) -> String {
    let name = format!("sverka:{database}:{job}");
    if name.len() <= 64 {
        return name;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let mut prefix: String = job.chars().take(20).collect();
    prefix.insert_str(0, "sverka:");
    format!("{prefix}:{hex}")
}

impl JobLock {
    /// Takes the lock for `job` or fails at once with [`LockError::Held`].
    ///
    /// `lease` is how long a SQLite lease lives without renewal (it is renewed
    /// every third of it while held).
    pub async fn acquire(db: &Db, job: &str, lease: Duration) -> Result<JobLock, LockError> {
        let owner = new_owner();
        match db.dialect() {
            Dialect::Postgres => acquire_postgres(db, job, owner).await,
            Dialect::MySql => acquire_mysql(db, job, owner).await,
            Dialect::Sqlite => acquire_sqlite(db, job, owner, lease).await,
        }
    }

    /// The job this lock is for.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Whether this lock is still held; call it before each batch of writes.
    ///
    /// SQLite: the lease row is still this holder's and has not expired, and
    /// no renewal found it gone. PostgreSQL: the lock connection answers
    /// (the server drops a session's advisory locks with it). MySQL: the
    /// lock connection answers and `IS_USED_LOCK` names it.
    pub async fn check(&mut self) -> Result<(), LockLost> {
        let lost = |why: String| LockLost {
            job: self.job.clone(),
            why,
        };
        match self.db.dialect() {
            Dialect::Sqlite => {
                if let Some(why) = self.lost.lock().ok().and_then(|g| g.clone()) {
                    return Err(lost(why));
                }
                let row = self
                    .db
                    .fetch_optional(
                        "SELECT owner, expires_at FROM job_locks WHERE job = ?",
                        &[self.job.clone().into()],
                        "checking the job lease",
                    )
                    .await
                    .map_err(|e| lost(format!("the lease could not be read: {e}")))?;
                let Some(row) = row else {
                    return Err(lost("the lease row is gone".into()));
                };
                let owner: String = row.try_get("owner").unwrap_or_default();
                let until: i64 = row.try_get("expires_at").unwrap_or_default();
                if owner != self.owner {
                    return Err(lost(format!("the lease is now held by {owner}")));
                }
                if until < now_ms() {
                    return Err(lost("the lease expired without renewal".into()));
                }
                Ok(())
            }
            Dialect::Postgres => {
                let Some(conn) = self.conn.as_mut() else {
                    return Err(lost("released".into()));
                };
                sqlx::query("SELECT 1")
                    .execute(&mut **conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| lost(format!("the lock's PostgreSQL connection is gone: {e}")))
            }
            Dialect::MySql => {
                let Some(conn) = self.conn.as_mut() else {
                    return Err(lost("released".into()));
                };
                let row = sqlx::query("SELECT CAST(IS_USED_LOCK(?) = CONNECTION_ID() AS SIGNED)")
                    .bind(self.name.clone())
                    .fetch_one(&mut **conn)
                    .await
                    .map_err(|e| lost(format!("the lock's MySQL connection is gone: {e}")))?;
                let mine: Option<i64> = row.try_get(0).unwrap_or(None);
                if mine == Some(1) {
                    Ok(())
                } else {
                    Err(lost("the named lock is no longer this connection's".into()))
                }
            }
        }
    }

    /// Releases the lock now.
    pub async fn release(mut self) -> Result<(), DbError> {
        self.release_now().await
    }

    /// Releases the lock now, leaving an empty handle behind (for a lock
    /// shared with an `apply::WriteGate`).
    pub async fn release_now(&mut self) -> Result<(), DbError> {
        if let Some(handle) = self.renew.take() {
            handle.abort();
        }
        match self.db.dialect() {
            Dialect::Postgres => {
                if let Some(mut conn) = self.conn.take() {
                    bind_args(
                        sqlx::query("SELECT pg_advisory_unlock($1)"),
                        &[Arg::I64(advisory_key(&self.job))],
                    )
                    .execute(&mut *conn)
                    .await
                    .map_err(DbError::query("releasing the advisory lock"))?;
                }
            }
            Dialect::MySql => {
                if let Some(mut conn) = self.conn.take() {
                    sqlx::query("SELECT RELEASE_LOCK(?)")
                        .bind(self.name.clone())
                        .execute(&mut *conn)
                        .await
                        .map_err(DbError::query("releasing GET_LOCK"))?;
                }
            }
            Dialect::Sqlite => {
                if self.owner.is_empty() {
                    return Ok(());
                }
                let owner = std::mem::take(&mut self.owner);
                self.db
                    .execute(
                        "DELETE FROM job_locks WHERE job = ? AND owner = ?",
                        &[self.job.clone().into(), owner.into()],
                        "releasing the job lease",
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Simulates a crash: stops renewing and abandons the lock without releasing
    /// it (the connection is closed for server-side locks). Used by tests.
    pub fn abandon(mut self) {
        if let Some(handle) = self.renew.take() {
            handle.abort();
        }
        if let Some(conn) = self.conn.take() {
            // Closing the socket makes the server drop the session's locks.
            drop(conn.detach());
        }
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        if let Some(handle) = self.renew.take() {
            handle.abort();
        }
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

/// Who takes a lock: the pid and host say who it is; the random part keeps
/// two holders apart where pids and hostnames repeat (containers).
fn new_owner() -> String {
    format!(
        "pid {} on {} ({})",
        std::process::id(),
        hostname().unwrap_or_else(|| "this host".into()),
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..12)
            .unwrap_or("x")
    )
}

/// PostgreSQL: a session advisory lock on a connection of its own.
async fn acquire_postgres(db: &Db, job: &str, owner: String) -> Result<JobLock, LockError> {
    let mut conn = lock_connection(db).await?;
    let row = sqlx::query("SELECT pg_try_advisory_lock($1)")
        .bind(advisory_key(job))
        .fetch_one(&mut *conn)
        .await
        .map_err(DbError::query("taking the advisory lock"))?;
    let got: bool = row
        .try_get(0)
        .map_err(DbError::query("reading the advisory lock answer"))?;
    let session = Session {
        job,
        owner,
        db,
        conn,
    };
    session.held_if(got, String::new(), "the PostgreSQL advisory lock")
}

/// MySQL/MariaDB: `GET_LOCK` on a connection of its own, named per state
/// database.
async fn acquire_mysql(db: &Db, job: &str, owner: String) -> Result<JobLock, LockError> {
    let mut conn = lock_connection(db).await?;
    let database: Option<String> = sqlx::query("SELECT DATABASE()")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(DbError::query("reading the state database's name"))?;
    let name = mysql_name(database.as_deref().unwrap_or(""), job);
    let row = sqlx::query("SELECT GET_LOCK(?, 0)")
        .bind(name.clone())
        .fetch_one(&mut *conn)
        .await
        .map_err(DbError::query("taking GET_LOCK"))?;
    let got: Option<i64> = row
        .try_get(0)
        .map_err(DbError::query("reading the GET_LOCK answer"))?;
    let session = Session {
        job,
        owner,
        db,
        conn,
    };
    session.held_if(got == Some(1), name, "the MySQL named lock")
}

/// SQLite: a lease row in `job_locks`, taken when absent or expired and then
/// renewed in the background every third of `lease`.
async fn acquire_sqlite(
    db: &Db,
    job: &str,
    owner: String,
    lease: Duration,
) -> Result<JobLock, LockError> {
    let lease_ms = lease.as_millis() as i64;
    let now = now_ms();
    let taken = db
        .execute(
            "INSERT INTO job_locks (job, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (job) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, \
             expires_at = excluded.expires_at WHERE job_locks.expires_at < ?",
            &[
                job.into(),
                owner.clone().into(),
                now.into(),
                (now + lease_ms).into(),
                now.into(),
            ],
            "taking the job lease",
        )
        .await?;
    if taken != 1 {
        return Err(LockError::Held {
            job: job.into(),
            holder: lease_holder(db, job, now).await?,
        });
    }
    let lost = Arc::new(Mutex::new(None));
    let renew = spawn_renewal(
        db.clone(),
        job.to_string(),
        owner.clone(),
        lease,
        lost.clone(),
    );
    Ok(JobLock {
        job: job.into(),
        owner,
        db: db.clone(),
        conn: None,
        renew: Some(renew),
        name: String::new(),
        lost,
    })
}

/// Who holds the SQLite lease of `job` and for how long, as of `now`.
async fn lease_holder(db: &Db, job: &str, now: i64) -> Result<String, DbError> {
    Ok(db
        .fetch_optional(
            "SELECT owner, expires_at FROM job_locks WHERE job = ?",
            &[job.into()],
            "reading the job lease",
        )
        .await?
        .map(|r| {
            let who: String = r.try_get("owner").unwrap_or_default();
            let until: i64 = r.try_get("expires_at").unwrap_or_default();
            format!(
                "held by {who}, lease expires in {} s unless renewed",
                ((until - now) / 1000).max(0)
            )
        })
        .unwrap_or_else(|| "held".into()))
}

/// Renews the SQLite lease of `job` every third of `lease` until it finds the
/// lease gone (then records why in `lost` and stops).
fn spawn_renewal(
    db: Db,
    job: String,
    owner: String,
    lease: Duration,
    lost: Arc<Mutex<Option<String>>>,
) -> JoinHandle<()> {
    let lease_ms = lease.as_millis() as i64;
    tokio::spawn(async move {
        let every = (lease / 3).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(every).await;
            // Only an unexpired lease of this holder is renewed: an
            // expired one may already be someone else's.
            let now = now_ms();
            let renewed = db
                .execute(
                    "UPDATE job_locks SET expires_at = ? WHERE job = ? AND owner = ? AND expires_at >= ?",
                    &[
                        (now + lease_ms).into(),
                        job.clone().into(),
                        owner.clone().into(),
                        now.into(),
                    ],
                    "renewing the job lease",
                )
                .await;
            match renewed {
                Ok(1) => {}
                Ok(_) => {
                    set_lost(
                        &lost,
                        "the lease expired or was taken over before it was renewed",
                    );
                    return;
                }
                Err(e) => {
                    // Not renewed this time; the next check reads the row.
                    tracing::warn!(job = %job, error = %crate::errors::Chain(&e), "could not renew the job lease");
                }
            }
        }
    })
}

fn set_lost(lost: &Mutex<Option<String>>, why: &str) {
    if let Ok(mut g) = lost.lock() {
        g.get_or_insert_with(|| why.to_string());
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A connection of its own for a session-scoped lock (PostgreSQL advisory
/// lock, MySQL `GET_LOCK`): the lock lives as long as the connection.
/// A PostgreSQL or MySQL lock attempt on its own session connection.
struct Session<'a> {
    job: &'a str,
    owner: String,
    db: &'a Db,
    conn: PoolConnection<Any>,
}

impl Session<'_> {
    /// The lock, held as long as the session is, when the engine granted it
    /// (`got`); else [`LockError::Held`] and the session is closed.
    fn held_if(mut self, got: bool, name: String, what: &str) -> Result<JobLock, LockError> {
        if !got {
            self.conn.close_on_drop();
            return Err(LockError::Held {
                job: self.job.into(),
                holder: format!("another session holds {what}"),
            });
        }
        Ok(JobLock {
            job: self.job.into(),
            owner: self.owner,
            db: self.db.clone(),
            conn: Some(self.conn),
            renew: None,
            name,
            lost: Arc::new(Mutex::new(None)),
        })
    }
}

async fn lock_connection(db: &Db) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, DbError> {
    db.pool()
        .acquire()
        .await
        .map_err(DbError::query("taking a connection for the job lock"))
}
