//! One run per job at a time.
//!
//! PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a dedicated
//! connection. MySQL/MariaDB: `GET_LOCK` on a dedicated connection. Both are
//! released by the server when the connection dies, so a crashed run never
//! blocks forever. SQLite: a lease row in `job_locks` with an expiry that the
//! holder renews; a crashed holder's lease simply runs out.

use sqlx::pool::PoolConnection;
use sqlx::{Any, Row};
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

/// A held job lock. Call [`JobLock::release`]; dropping it also releases the
/// lock (by closing the connection, or by letting the lease expire on SQLite).
pub struct JobLock {
    job: String,
    owner: String,
    db: Db,
    conn: Option<PoolConnection<Any>>,
    renew: Option<JoinHandle<()>>,
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

/// The MySQL lock name of a job (at most 64 characters).
fn mysql_name(job: &str) -> String {
    let mut name = format!("sverka:{job}");
    name.truncate(64);
    name
}

impl JobLock {
    /// Takes the lock for `job` or fails at once with [`LockError::Held`].
    ///
    /// `lease` is how long a SQLite lease lives without renewal (it is renewed
    /// every third of it while held).
    pub async fn acquire(db: &Db, job: &str, lease: Duration) -> Result<JobLock, LockError> {
        let owner = format!(
            "pid {} on {}",
            std::process::id(),
            hostname().unwrap_or_else(|| "this host".into())
        );
        match db.dialect() {
            Dialect::Postgres => {
                let mut conn = db
                    .pool()
                    .acquire()
                    .await
                    .map_err(DbError::query("taking a connection for the job lock"))?;
                let row = sqlx::query("SELECT pg_try_advisory_lock($1)")
                    .bind(advisory_key(job))
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(DbError::query("taking the advisory lock"))?;
                let got: bool = row
                    .try_get(0)
                    .map_err(DbError::query("reading the advisory lock answer"))?;
                if !got {
                    conn.close_on_drop();
                    return Err(LockError::Held {
                        job: job.into(),
                        holder: "another session holds the PostgreSQL advisory lock".into(),
                    });
                }
                Ok(JobLock {
                    job: job.into(),
                    owner,
                    db: db.clone(),
                    conn: Some(conn),
                    renew: None,
                })
            }
            Dialect::MySql => {
                let mut conn = db
                    .pool()
                    .acquire()
                    .await
                    .map_err(DbError::query("taking a connection for the job lock"))?;
                let row = sqlx::query("SELECT GET_LOCK(?, 0)")
                    .bind(mysql_name(job))
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(DbError::query("taking GET_LOCK"))?;
                let got: Option<i64> = row
                    .try_get(0)
                    .map_err(DbError::query("reading the GET_LOCK answer"))?;
                if got != Some(1) {
                    conn.close_on_drop();
                    return Err(LockError::Held {
                        job: job.into(),
                        holder: "another session holds the MySQL named lock".into(),
                    });
                }
                Ok(JobLock {
                    job: job.into(),
                    owner,
                    db: db.clone(),
                    conn: Some(conn),
                    renew: None,
                })
            }
            Dialect::Sqlite => {
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
                    let holder = db
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
                        .unwrap_or_else(|| "held".into());
                    return Err(LockError::Held {
                        job: job.into(),
                        holder,
                    });
                }
                let renew_db = db.clone();
                let renew_job = job.to_string();
                let renew_owner = owner.clone();
                let renew = tokio::spawn(async move {
                    let every = (lease / 3).max(Duration::from_millis(50));
                    loop {
                        tokio::time::sleep(every).await;
                        let _ = renew_db
                            .execute(
                                "UPDATE job_locks SET expires_at = ? WHERE job = ? AND owner = ?",
                                &[
                                    (now_ms() + lease_ms).into(),
                                    renew_job.clone().into(),
                                    renew_owner.clone().into(),
                                ],
                                "renewing the job lease",
                            )
                            .await;
                    }
                });
                Ok(JobLock {
                    job: job.into(),
                    owner,
                    db: db.clone(),
                    conn: None,
                    renew: Some(renew),
                })
            }
        }
    }

    /// The job this lock is for.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Releases the lock now.
    pub async fn release(mut self) -> Result<(), DbError> {
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
                        .bind(mysql_name(&self.job))
                        .execute(&mut *conn)
                        .await
                        .map_err(DbError::query("releasing GET_LOCK"))?;
                }
            }
            Dialect::Sqlite => {
                self.db
                    .execute(
                        "DELETE FROM job_locks WHERE job = ? AND owner = ?",
                        &[self.job.clone().into(), self.owner.clone().into()],
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

fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
