//! Id mappings between the shop's ids (partner ids) and the WMS's own ids.

use sqlx::Row;
use std::collections::BTreeMap;

use super::{now_ms, Db, DbError, Dialect};

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
    let sql = match db.dialect() {
        Dialect::MySql => {
            "INSERT INTO id_map (kind, partner_id, wms_id, updated_at) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE wms_id = VALUES(wms_id), updated_at = VALUES(updated_at)"
        }
        _ => {
            "INSERT INTO id_map (kind, partner_id, wms_id, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (kind, partner_id) DO UPDATE SET wms_id = excluded.wms_id, updated_at = excluded.updated_at"
        }
    };
    db.execute(
        sql,
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

/// All mappings of one kind: partner id → WMS id.
pub async fn all(db: &Db, kind: MapKind) -> Result<BTreeMap<String, String>, DbError> {
    let rows = db
        .fetch_all(
            "SELECT partner_id, wms_id FROM id_map WHERE kind = ?",
            &[kind.as_str().into()],
            "reading id mappings",
        )
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
