//! Id mappings between the shop's ids (partner ids) and the WMS's own ids.

use sqlx::Row;
use std::collections::BTreeMap;

use super::{bind_args, now_ms, Arg, Db, DbError, Dialect};

/// Mappings per multi-row upsert (4 parameters each: far below every
/// engine's limit).
const ROWS_PER_INSERT: usize = 500;

/// What kind of object a mapping is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// Goods: shop SKU → WMS goods id.
    Good,
    /// Orders: shop order id → WMS order id.
    Order,
    /// Goods the WMS answered "not found" for: SKU → when it was checked (Unix ms),
    /// so a run does not ask again before the re-check interval.
    AbsentGood,
}

impl MapKind {
    fn as_str(self) -> &'static str {
        match self {
            MapKind::Good => "good",
            MapKind::Order => "order",
            MapKind::AbsentGood => "absent_good",
        }
    }
}

/// Stores (or replaces) one mapping.
pub async fn put(db: &Db, kind: MapKind, partner_id: &str, wms_id: &str) -> Result<(), DbError> {
    db.execute(
        &upsert_sql(1, db.dialect()),
        &[
            kind.as_str().into(),
            partner_id.into(),
            wms_id.into(),
            now_ms().into(),
        ],
        "storing an id mapping",
    )
    .await?;
    Ok(())
}

/// Stores (or replaces) many mappings of one kind in one transaction, with
/// multi-row upserts: what seeding a world of a million goods needs. A
/// partner id given twice keeps the last WMS id.
pub async fn put_many(db: &Db, kind: MapKind, pairs: &[(String, String)]) -> Result<(), DbError> {
    if pairs.is_empty() {
        return Ok(());
    }
    let what = "storing id mappings";
    // One statement may not name a key twice (PostgreSQL refuses it).
    let mut last: std::collections::HashMap<&str, &str> =
        std::collections::HashMap::with_capacity(pairs.len());
    for (partner, wms) in pairs {
        last.insert(partner.as_str(), wms.as_str());
    }
    let mut rows: Vec<(&str, &str)> = last.into_iter().collect();
    rows.sort_unstable();
    let dialect = db.dialect();
    let now = now_ms();
    let mut tx = db.pool().begin().await.map_err(DbError::query(what))?;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = super::translate(&upsert_sql(chunk.len(), dialect), dialect).into_owned();
        let mut args: Vec<Arg> = Vec::with_capacity(chunk.len() * 4);
        for (partner, wms) in chunk {
            args.extend([
                kind.as_str().into(),
                Arg::from(*partner),
                Arg::from(*wms),
                now.into(),
            ]);
        }
        bind_args(sqlx::query(&sql), &args)
            .execute(&mut *tx)
            .await
            .map_err(DbError::query(what))?;
    }
    tx.commit().await.map_err(DbError::query(what))
}

/// An upsert of `rows` mappings, in `?` placeholders.
fn upsert_sql(rows: usize, dialect: Dialect) -> String {
    let mut sql = String::from("INSERT INTO id_map (kind, partner_id, wms_id, updated_at) VALUES ");
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?)"
        });
    }
    sql.push_str(match dialect {
        Dialect::MySql => {
            " ON DUPLICATE KEY UPDATE wms_id = VALUES(wms_id), updated_at = VALUES(updated_at)"
        }
        _ => {
            " ON CONFLICT (kind, partner_id) DO UPDATE SET wms_id = excluded.wms_id, \
             updated_at = excluded.updated_at"
        }
    });
    sql
}

/// All mappings of one kind: partner id → WMS id.
pub async fn all(db: &Db, kind: MapKind) -> Result<BTreeMap<String, String>, DbError> {
    const SQL: &str = "SELECT partner_id, wms_id FROM id_map WHERE kind = ?";
    if let Some(url) = db.sqlite_url() {
        let pairs = super::sqlite_bulk::state_rows(
            url,
            "reading id mappings",
            SQL,
            vec![kind.as_str().to_string().into()],
            |r| {
                Ok((
                    super::sqlite_bulk::text(r, 0)?,
                    super::sqlite_bulk::text(r, 1)?,
                ))
            },
        )
        .await?;
        return Ok(pairs.into_iter().collect());
    }
    let rows = db
        .fetch_all(SQL, &[kind.as_str().into()], "reading id mappings")
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let e = |e: sqlx::Error| DbError::Corrupt(format!("id_map row: {e}"));
        out.insert(
            r.try_get("partner_id").map_err(e)?,
            r.try_get("wms_id").map_err(e)?,
        );
    }
    Ok(out)
}

/// One mapping.
pub async fn get(db: &Db, kind: MapKind, partner_id: &str) -> Result<Option<String>, DbError> {
    let row = db
        .fetch_optional(
            "SELECT wms_id FROM id_map WHERE kind = ? AND partner_id = ?",
            &[kind.as_str().into(), partner_id.into()],
            "reading an id mapping",
        )
        .await?;
    row.map(|r| {
        r.try_get::<String, _>("wms_id")
            .map_err(|e| DbError::Corrupt(format!("id_map row: {e}")))
    })
    .transpose()
}

/// Forgets one mapping.
pub async fn remove(db: &Db, kind: MapKind, partner_id: &str) -> Result<(), DbError> {
    db.execute(
        "DELETE FROM id_map WHERE kind = ? AND partner_id = ?",
        &[kind.as_str().into(), partner_id.into()],
        "removing an id mapping",
    )
    .await?;
    Ok(())
}

/// The partner ids mapped to `wms_id` (a reverse look-up: IMSKLAD's `get_good`
/// callback may name a product by its WMS goods id). Normally one; several
/// mean the mapping holds a duplicate, and the first (by partner id) is used.
pub async fn partners_of(db: &Db, kind: MapKind, wms_id: &str) -> Result<Vec<String>, DbError> {
    let rows = db
        .fetch_all(
            "SELECT partner_id FROM id_map WHERE kind = ? AND wms_id = ? ORDER BY partner_id",
            &[kind.as_str().into(), wms_id.into()],
            "reading an id mapping by WMS id",
        )
        .await?;
    rows.iter()
        .map(|r| {
            r.try_get::<String, _>("partner_id")
                .map_err(|e| DbError::Corrupt(format!("id_map row: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn many_mappings_are_stored_in_chunks_and_the_last_of_a_repeat_wins() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let db = Db::connect_state(&url).await.expect("state db");
        put(&db, MapKind::Good, "A", "old").await.expect("put");
        let mut pairs: Vec<(String, String)> = (0..1234)
            .map(|i| (format!("SKU{i}"), i.to_string()))
            .collect();
        pairs.push(("A".into(), "first".into()));
        pairs.push(("A".into(), "new".into()));
        put_many(&db, MapKind::Good, &pairs)
            .await
            .expect("put_many");
        let good = all(&db, MapKind::Good).await.expect("all");
        assert_eq!(good.len(), 1235);
        assert_eq!(good["A"], "new");
        assert_eq!(good["SKU1233"], "1233");
        assert!(all(&db, MapKind::Order).await.expect("orders").is_empty());
        put_many(&db, MapKind::Order, &[]).await.expect("nothing");
    }
}
