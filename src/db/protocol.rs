//! What sverka keeps so that what it sends matches what the vendors already
//! hold (migration `0015_protocol.sql`):
//!
//! - `order_documents`: the last full IMSKLAD order sverka sent or received,
//!   so a cancellation re-sends that order with `is_canceled = 1` instead of
//!   one rebuilt from the shop (which lacks the WMS's discount, courier,
//!   pickup point and address parts);
//! - `scan_barcodes`: each IMSHOP scan's barcode exactly as IMSHOP sent it;
//! - `module_registrations`: a fingerprint of the RetailCRM warehouse module
//!   sverka registered, so a changed `clientId`, `callPoints` or URL
//!   re-registers it (the CRM may not echo `clientId` back);
//! - reads of journaled callbacks by method (carrier export requests and
//!   failures for the orders report).

use sqlx::Row;
use std::collections::BTreeMap;

use super::{now_ms, opt_text, text, Db, DbError, Dialect};

/// Where an order document came from.
pub mod origin {
    /// sverka sent it (`add_order` / `update_order`).
    pub const SENT: &str = "sent";
    /// IMSKLAD sent it (the `update_order` callback).
    pub const RECEIVED: &str = "received";
}

/// A stored full order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderDocument {
    /// The shop's order id.
    pub order_id: String,
    /// [`origin::SENT`] or [`origin::RECEIVED`].
    pub origin: String,
    /// The order object as JSON text.
    pub body: String,
    /// When it was stored, Unix ms.
    pub updated_at: i64,
}

fn upsert(dialect: Dialect, table: &str, key: &str, columns: &[&str]) -> String {
    let all: Vec<&str> = std::iter::once(key)
        .chain(columns.iter().copied())
        .collect();
    let marks = vec!["?"; all.len()].join(", ");
    let head = format!("INSERT INTO {table} ({}) VALUES ({marks})", all.join(", "));
    match dialect {
        Dialect::MySql => {
            let sets: Vec<String> = columns
                .iter()
                .map(|c| format!("{c} = VALUES({c})"))
                .collect();
            format!("{head} ON DUPLICATE KEY UPDATE {}", sets.join(", "))
        }
        _ => {
            let sets: Vec<String> = columns
                .iter()
                .map(|c| format!("{c} = excluded.{c}"))
                .collect();
            format!(
                "{head} ON CONFLICT ({key}) DO UPDATE SET {}",
                sets.join(", ")
            )
        }
    }
}

/// Stores (or replaces) the last full order of `order_id`.
pub async fn put_order_document(
    db: &Db,
    order_id: &str,
    origin: &str,
    body: &str,
) -> Result<(), DbError> {
    let sql = upsert(
        db.dialect(),
        "order_documents",
        "order_id",
        &["origin", "body", "updated_at"],
    );
    db.execute(
        &sql,
        &[order_id.into(), origin.into(), body.into(), now_ms().into()],
        "storing an order document",
    )
    .await?;
    Ok(())
}

/// The last full order of `order_id`, if sverka has one.
pub async fn order_document(db: &Db, order_id: &str) -> Result<Option<OrderDocument>, DbError> {
    let row = db
        .fetch_optional(
            "SELECT order_id, origin, body, updated_at FROM order_documents WHERE order_id = ?",
            &[order_id.into()],
            "reading an order document",
        )
        .await?;
    row.map(|r| {
        let e = |e: sqlx::Error| DbError::Corrupt(format!("order_documents row: {e}"));
        Ok(OrderDocument {
            order_id: text(&r, "order_id").map_err(e)?,
            origin: text(&r, "origin").map_err(e)?,
            body: text(&r, "body").map_err(e)?,
            updated_at: r.try_get::<i64, _>("updated_at").map_err(e)?,
        })
    })
    .transpose()
}

/// Stores the barcode of a scan as IMSHOP sent it.
pub async fn put_scan_barcode(db: &Db, scan_id: &str, barcode: &str) -> Result<(), DbError> {
    let sql = upsert(
        db.dialect(),
        "scan_barcodes",
        "scan_id",
        &["barcode", "updated_at"],
    );
    db.execute(
        &sql,
        &[scan_id.into(), barcode.into(), now_ms().into()],
        "storing a scan barcode",
    )
    .await?;
    Ok(())
}

/// The barcodes of the given scans as IMSHOP sent them (scans without one are left out).
pub async fn scan_barcodes(
    db: &Db,
    scan_ids: &[&str],
) -> Result<BTreeMap<String, String>, DbError> {
    let mut out = BTreeMap::new();
    for chunk in scan_ids.chunks(200) {
        if chunk.is_empty() {
            continue;
        }
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT scan_id, barcode FROM scan_barcodes WHERE scan_id IN ({marks})");
        let args: Vec<super::Arg> = chunk.iter().map(|id| (*id).into()).collect();
        for r in db.fetch_all(&sql, &args, "reading scan barcodes").await? {
            let e = |e: sqlx::Error| DbError::Corrupt(format!("scan_barcodes row: {e}"));
            out.insert(
                text(&r, "scan_id").map_err(e)?,
                text(&r, "barcode").map_err(e)?,
            );
        }
    }
    Ok(out)
}

/// The fingerprint of the module last registered under `code`.
pub async fn module_fingerprint(db: &Db, code: &str) -> Result<Option<String>, DbError> {
    let row = db
        .fetch_optional(
            "SELECT fingerprint FROM module_registrations WHERE code = ?",
            &[code.into()],
            "reading the module registration",
        )
        .await?;
    row.map(|r| {
        opt_text(&r, "fingerprint")
            .map(Option::unwrap_or_default)
            .map_err(|e| DbError::Corrupt(format!("module_registrations row: {e}")))
    })
    .transpose()
}

/// Records what was registered under `code`.
pub async fn put_module_fingerprint(db: &Db, code: &str, fingerprint: &str) -> Result<(), DbError> {
    let sql = upsert(
        db.dialect(),
        "module_registrations",
        "code",
        &["fingerprint", "registered_at"],
    );
    db.execute(
        &sql,
        &[code.into(), fingerprint.into(), now_ms().into()],
        "storing the module registration",
    )
    .await?;
    Ok(())
}

/// One journaled callback body with its arrival time.
#[derive(Debug, Clone, PartialEq)]
pub struct JournaledCall {
    /// Protocol method, e.g. `order.send_to_cdek`.
    pub method: String,
    /// The journaled body (credentials masked).
    pub body: String,
    /// Arrival, Unix ms.
    pub received_at: i64,
}

/// Journaled callbacks of `source` with one of `methods`, received at or after
/// `since_ms`, oldest first.
pub async fn calls_since(
    db: &Db,
    source: &str,
    methods: &[&str],
    since_ms: i64,
) -> Result<Vec<JournaledCall>, DbError> {
    if methods.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; methods.len()].join(", ");
    let sql = format!(
        "SELECT method, body, received_at FROM events \
         WHERE source = ? AND method IN ({marks}) AND received_at >= ? ORDER BY id"
    );
    let mut args: Vec<super::Arg> = vec![source.into()];
    args.extend(methods.iter().map(|m| (*m).into()));
    args.push(since_ms.into());
    db.fetch_all(&sql, &args, "reading journaled callbacks")
        .await?
        .iter()
        .map(|r| {
            let e = |e: sqlx::Error| DbError::Corrupt(format!("events row: {e}"));
            Ok(JournaledCall {
                method: text(r, "method").map_err(e)?,
                body: text(r, "body").map_err(e)?,
                received_at: r.try_get::<i64, _>("received_at").map_err(e)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_speak_each_dialect() {
        let q = upsert(Dialect::Sqlite, "t", "k", &["a", "b"]);
        assert_eq!(
            q,
            "INSERT INTO t (k, a, b) VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET a = excluded.a, b = excluded.b"
        );
        let m = upsert(Dialect::MySql, "t", "k", &["a"]);
        assert!(m.ends_with("ON DUPLICATE KEY UPDATE a = VALUES(a)"), "{m}");
    }
}
