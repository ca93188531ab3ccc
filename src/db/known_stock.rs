//! What the CRM is known to hold per offer of the configured store, for the
//! stock job's delta mode: the last full inventory read, plus every upload
//! since that the CRM acknowledged (`stock_known`), and when that full read
//! happened (`stock_known_meta`).
//!
//! A full run replaces the whole state after its read ([`replace`]); every
//! acknowledged upload and every filtered read of a delta run updates the
//! offers it confirmed ([`confirm`]). The state belongs to one store and one
//! offer key: [`load`] answers `None` for another one, so a changed
//! configuration makes the next run a full one.

use sqlx::Row;
use std::collections::HashMap;

use super::{bind_args, now_ms, Arg, Db, DbError, Dialect};

/// The meta row's name.
const META: &str = "full";
/// Rows per multi-row INSERT (5 parameters each: far below every engine's limit).
const ROWS_PER_INSERT: usize = 500;

/// What the CRM is known to hold for one offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownOffer {
    /// The shop SKU (the offer's `externalId` or `xmlId`).
    pub sku: String,
    /// The CRM offer id.
    pub offer_id: i64,
    /// The store quantity.
    pub quantity: i64,
    /// The store purchase price in kopecks, when the CRM has one.
    pub cost_kop: Option<i64>,
}

/// The known state of one store.
#[derive(Debug, Clone, Default)]
pub struct KnownStock {
    /// When the last full read was taken, Unix ms.
    pub full_at: i64,
    /// Per SKU.
    pub offers: HashMap<String, KnownOffer>,
}

/// The known state for `store` and `offer_key`; `None` when there is none
/// (no full run yet) or it belongs to another store or offer key.
pub async fn load(db: &Db, store: &str, offer_key: &str) -> Result<Option<KnownStock>, DbError> {
    let what = "reading the known CRM stock";
    let Some(meta) = db
        .fetch_optional(
            "SELECT store, offer_key, full_at FROM stock_known_meta WHERE name = ?",
            &[META.into()],
            what,
        )
        .await?
    else {
        return Ok(None);
    };
    let meta_store = super::text(&meta, "store").map_err(DbError::query(what))?;
    let meta_key = super::text(&meta, "offer_key").map_err(DbError::query(what))?;
    if meta_store != store || meta_key != offer_key {
        return Ok(None);
    }
    let full_at: i64 = meta.try_get("full_at").map_err(DbError::query(what))?;
    const SQL: &str = "SELECT sku, offer_id, quantity, cost_kop FROM stock_known";
    let read: Vec<KnownOffer> = match db.sqlite_url() {
        Some(url) => {
            use super::sqlite_bulk::{int, opt_int, state_rows, text};
            state_rows(url, what, SQL, Vec::new(), |r| {
                Ok(KnownOffer {
                    sku: text(r, 0)?,
                    offer_id: int(r, 1)?,
                    quantity: int(r, 2)?,
                    cost_kop: opt_int(r, 3)?,
                })
            })
            .await?
        }
        None => db
            .fetch_all(SQL, &[], what)
            .await?
            .iter()
            .map(|r| {
                Ok(KnownOffer {
                    sku: super::text(r, "sku")?,
                    offer_id: r.try_get("offer_id")?,
                    quantity: r.try_get("quantity")?,
                    cost_kop: r.try_get::<Option<i64>, _>("cost_kop")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::query(what))?,
    };
    let mut offers = HashMap::with_capacity(read.len());
    for offer in read {
        offers.insert(offer.sku.clone(), offer);
    }
    Ok(Some(KnownStock { full_at, offers }))
}

/// When the last full read of `store` was taken (Unix ms), if any.
pub async fn full_at(db: &Db, store: &str, offer_key: &str) -> Result<Option<i64>, DbError> {
    let what = "reading the known CRM stock's age";
    let row = db
        .fetch_optional(
            "SELECT full_at FROM stock_known_meta WHERE name = ? AND store = ? AND offer_key = ?",
            &[META.into(), store.into(), offer_key.into()],
            what,
        )
        .await?;
    row.map(|r| r.try_get::<i64, _>("full_at").map_err(DbError::query(what)))
        .transpose()
}

/// Replaces the whole known state with a full read taken at `full_at`, in
/// one transaction. With `previous` (the stored state, read while the CRM
/// was being read) only what differs is written: offers gone are deleted,
/// new and changed ones upserted — a few percent of a large catalogue
/// instead of all of it.
pub async fn replace(
    db: &Db,
    store: &str,
    offer_key: &str,
    full_at: i64,
    offers: &[KnownOffer],
    previous: Option<&KnownStock>,
) -> Result<(), DbError> {
    let what = "replacing the known CRM stock";
    let mut tx = db.pool().begin().await.map_err(DbError::query(what))?;
    let dialect = db.dialect();
    let run = |sql: &str| super::translate(sql, dialect).into_owned();
    let now = now_ms();
    let (write, upsert): (Vec<KnownOffer>, bool) = match previous {
        None => {
            sqlx::query(&run("DELETE FROM stock_known"))
                .execute(&mut *tx)
                .await
                .map_err(DbError::query(what))?;
            (offers.to_vec(), false)
        }
        Some(prev) => {
            let mut latest: HashMap<&str, &KnownOffer> = HashMap::with_capacity(offers.len());
            for o in offers {
                latest.insert(o.sku.as_str(), o);
            }
            let gone: Vec<&str> = prev
                .offers
                .keys()
                .map(String::as_str)
                .filter(|sku| !latest.contains_key(sku))
                .collect();
            for chunk in gone.chunks(ROWS_PER_INSERT) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let sql = run(&format!("DELETE FROM stock_known WHERE sku IN ({marks})"));
                let args: Vec<Arg> = chunk.iter().map(|s| Arg::from(*s)).collect();
                bind_args(sqlx::query(&sql), &args)
                    .execute(&mut *tx)
                    .await
                    .map_err(DbError::query(what))?;
            }
            let changed = latest
                .into_values()
                .filter(|o| prev.offers.get(&o.sku) != Some(*o))
                .cloned()
                .collect();
            (changed, true)
        }
    };
    for chunk in write.chunks(ROWS_PER_INSERT) {
        let sql = run(&insert_sql(chunk.len(), dialect, upsert));
        let args = row_args(chunk, now);
        bind_args(sqlx::query(&sql), &args)
            .execute(&mut *tx)
            .await
            .map_err(DbError::query(what))?;
    }
    sqlx::query(&run("DELETE FROM stock_known_meta WHERE name = ?"))
        .bind(META)
        .execute(&mut *tx)
        .await
        .map_err(DbError::query(what))?;
    sqlx::query(&run(
        "INSERT INTO stock_known_meta (name, store, offer_key, full_at) VALUES (?, ?, ?, ?)",
    ))
    .bind(META)
    .bind(store.to_string())
    .bind(offer_key.to_string())
    .bind(full_at)
    .execute(&mut *tx)
    .await
    .map_err(DbError::query(what))?;
    tx.commit().await.map_err(DbError::query(what))
}

/// Records what the CRM confirmed for these offers (a filtered read, or an
/// acknowledged upload), replacing their known figures. Nothing when empty.
pub async fn confirm(db: &Db, offers: &[KnownOffer]) -> Result<(), DbError> {
    if offers.is_empty() {
        return Ok(());
    }
    let what = "recording the confirmed CRM stock";
    let dialect = db.dialect();
    let now = now_ms();
    let mut tx = db.pool().begin().await.map_err(DbError::query(what))?;
    for chunk in offers.chunks(ROWS_PER_INSERT) {
        let sql = super::translate(&insert_sql(chunk.len(), dialect, true), dialect).into_owned();
        let args = row_args(chunk, now);
        bind_args(sqlx::query(&sql), &args)
            .execute(&mut *tx)
            .await
            .map_err(DbError::query(what))?;
    }
    tx.commit().await.map_err(DbError::query(what))
}

/// The purchase price the CRM is known to hold per SKU (the shop's cost once
/// a stock run uploaded it): what the `inventoriesUpload` answer sends.
pub async fn costs(db: &Db) -> Result<HashMap<String, i64>, DbError> {
    let what = "reading the known purchase prices";
    let rows = db
        .fetch_all(
            "SELECT sku, cost_kop FROM stock_known WHERE cost_kop IS NOT NULL",
            &[],
            what,
        )
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        out.insert(
            super::text(r, "sku").map_err(DbError::query(what))?,
            r.try_get::<i64, _>("cost_kop")
                .map_err(DbError::query(what))?,
        );
    }
    Ok(out)
}

fn row_args(chunk: &[KnownOffer], now: i64) -> Vec<Arg> {
    let mut args = Vec::with_capacity(chunk.len() * 5);
    for o in chunk {
        args.extend([
            Arg::from(o.sku.as_str()),
            o.offer_id.into(),
            o.quantity.into(),
            o.cost_kop.into(),
            now.into(),
        ]);
    }
    args
}

/// A multi-row INSERT of `rows` offers; `upsert` replaces existing rows.
/// Repeated SKUs within one statement are the caller's to avoid.
fn insert_sql(rows: usize, dialect: Dialect, upsert: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO stock_known (sku, offer_id, quantity, cost_kop, updated_at) VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?)"
        });
    }
    if upsert {
        match dialect {
            Dialect::MySql => sql.push_str(
                " ON DUPLICATE KEY UPDATE offer_id = VALUES(offer_id), quantity = VALUES(quantity), \
                 cost_kop = VALUES(cost_kop), updated_at = VALUES(updated_at)",
            ),
            _ => sql.push_str(
                " ON CONFLICT (sku) DO UPDATE SET offer_id = excluded.offer_id, \
                 quantity = excluded.quantity, cost_kop = excluded.cost_kop, \
                 updated_at = excluded.updated_at",
            ),
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(sku: &str, quantity: i64, cost: Option<i64>) -> KnownOffer {
        KnownOffer {
            sku: sku.into(),
            offer_id: 7,
            quantity,
            cost_kop: cost,
        }
    }

    #[tokio::test]
    async fn a_full_read_is_replaced_and_confirmations_update_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let db = Db::connect_state(&url).await.expect("state db");
        assert!(load(&db, "main", "externalId")
            .await
            .expect("load")
            .is_none());
        replace(
            &db,
            "main",
            "externalId",
            1_000,
            &[offer("A", 1, Some(100)), offer("B", 2, None)],
            None,
        )
        .await
        .expect("replace");
        confirm(&db, &[offer("B", 5, Some(250)), offer("C", 3, None)])
            .await
            .expect("confirm");
        let known = load(&db, "main", "externalId")
            .await
            .expect("load")
            .expect("known");
        assert_eq!(known.full_at, 1_000);
        assert_eq!(known.offers.len(), 3);
        assert_eq!(known.offers["B"], offer("B", 5, Some(250)));
        assert_eq!(
            costs(&db).await.expect("costs"),
            HashMap::from([("A".to_string(), 100), ("B".to_string(), 250)])
        );
        // Another store or key: unknown.
        assert!(load(&db, "spb", "externalId")
            .await
            .expect("load")
            .is_none());
        assert!(load(&db, "main", "xmlId").await.expect("load").is_none());
        assert_eq!(
            full_at(&db, "main", "externalId").await.expect("age"),
            Some(1_000)
        );
        // Against the stored state: only the differences are written.
        let previous = known.clone();
        replace(
            &db,
            "main",
            "externalId",
            2_000,
            &[
                offer("A", 9, None),
                offer("C", 3, None),
                offer("D", 4, None),
            ],
            Some(&previous),
        )
        .await
        .expect("replace again");
        let known = load(&db, "main", "externalId")
            .await
            .expect("load")
            .expect("known");
        assert_eq!(known.offers.len(), 3);
        assert_eq!(known.offers["A"], offer("A", 9, None));
        assert!(!known.offers.contains_key("B"));
        assert_eq!(known.full_at, 2_000);
        replace(
            &db,
            "main",
            "externalId",
            3_000,
            &[offer("Z", 1, None)],
            None,
        )
        .await
        .expect("replace without a previous state");
        let known = load(&db, "main", "externalId")
            .await
            .expect("load")
            .expect("known");
        assert_eq!(known.offers.len(), 1);
    }
}
