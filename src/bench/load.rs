//! Figure 3: loading the shop's stock and orders from SQLite and PostgreSQL
//! into frames, through the real [`Shop`] queries (`sql/shop/*.sql`).
//!
//! The tables are filled with multi-row INSERTs of generated rows (untimed);
//! the timed part is the query, the row decoding and the frame building, as
//! the stock and order jobs do it.

use anyhow::{Context as _, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use super::stats::{median, rate};
use crate::db::{with_database, Db};
use crate::shop::{Queries, Shop};

/// A database engine to measure on.
#[derive(Debug, Clone)]
pub enum Engine {
    /// A SQLite file in the work folder.
    Sqlite,
    /// A fresh database on this PostgreSQL server (admin URL), dropped afterwards.
    Postgres(String),
}

impl Engine {
    /// `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }
}

/// SQLite always; PostgreSQL when a server URL is given.
pub fn engines(postgres: Option<&str>) -> Vec<Engine> {
    let mut out = vec![Engine::Sqlite];
    if let Some(url) = postgres.filter(|u| !u.is_empty()) {
        out.push(Engine::Postgres(url.to_string()));
    }
    out
}

/// A database created for one measurement; [`Scratch::drop_db`] removes it.
pub struct Scratch {
    /// Its URL.
    pub url: String,
    admin: Option<(String, String)>,
    file: Option<std::path::PathBuf>,
}

impl Scratch {
    /// Creates an empty database named after `tag` on `engine`.
    pub async fn create(engine: &Engine, work: &Path, tag: &str) -> Result<Scratch> {
        let name = format!("sverka_bench_{}_{tag}", std::process::id());
        match engine {
            Engine::Sqlite => {
                let path = work.join(format!("{name}.db"));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Ok(Scratch {
                    url: format!("sqlite://{}", path.display()),
                    admin: None,
                    file: Some(path),
                })
            }
            Engine::Postgres(admin) => {
                let db = Db::connect(admin).await?;
                db.execute(
                    &format!("DROP DATABASE IF EXISTS {name}"),
                    &[],
                    "dropping an old bench database",
                )
                .await?;
                db.execute(
                    &format!("CREATE DATABASE {name}"),
                    &[],
                    "creating the bench database",
                )
                .await?;
                db.close().await;
                Ok(Scratch {
                    url: with_database(admin, &name),
                    admin: Some((admin.clone(), name)),
                    file: None,
                })
            }
        }
    }

    /// Drops the database (or removes the SQLite files).
    pub async fn drop_db(self) {
        if let Some(path) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        if let Some((admin, name)) = self.admin {
            if let Ok(db) = Db::connect(&admin).await {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = db.execute(&sql, &[], "dropping the bench database").await {
                    tracing::warn!("could not drop {name}: {e}");
                }
                db.close().await;
            }
        }
    }
}

/// Figure 3 for one engine and size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    /// `sqlite` or `postgres`.
    pub engine: String,
    /// SKUs in the catalogue, and orders in the window.
    pub size: usize,
    /// Rows of `stock_select` (one per SKU).
    pub stock_rows: usize,
    /// Median seconds to load the stock into a frame.
    pub stock_s: f64,
    /// `stock_rows / stock_s`.
    pub stock_rows_per_s: f64,
    /// Rows of `orders_select` plus `order_items_select`.
    pub order_rows: usize,
    /// Median seconds to load orders and items into frames.
    pub orders_s: f64,
    /// `order_rows / orders_s`.
    pub order_rows_per_s: f64,
    /// Seconds the (untimed) fill took, for reference.
    pub fill_s: f64,
}

const CHUNK: usize = 1000;

async fn exec(shop: &Shop, sql: &str) -> Result<()> {
    sqlx::query(sql)
        .execute(shop.db().pool())
        .await
        .with_context(|| format!("filling the bench database: {}", &sql[..sql.len().min(80)]))?;
    Ok(())
}

/// Fills products + stock with `n` SKUs and orders + items with `n` orders.
async fn fill(shop: &Shop, n: usize, now: i64) -> Result<()> {
    shop.create_reference_schema().await?;
    let mut sql = String::new();
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        sql.clear();
        sql.push_str("INSERT INTO products (sku, name, description, price_kop, cost_kop, weight_g, ean, supplier_id, active) VALUES ");
        for i in start..end {
            let sep = if i > start { "," } else { "" };
            let _ = write!(
                sql,
                "{sep}('SKU-{i:08}','Product {i}',NULL,{},{},{},NULL,'SUP-1',1)",
                10_000 + i % 900,
                5_000 + i % 400,
                100 + i % 50
            );
        }
        exec(shop, &sql).await?;
        sql.clear();
        sql.push_str("INSERT INTO stock (sku, quantity, updated_at) VALUES ");
        for i in start..end {
            let sep = if i > start { "," } else { "" };
            let _ = write!(sql, "{sep}('SKU-{i:08}',{},{now})", i % 500);
        }
        exec(shop, &sql).await?;
        sql.clear();
        sql.push_str("INSERT INTO orders (id, status, paid, cancelled, cancelled_at, created_at, shipped_at, total_kop, delivery_kop, delivery_type, customer_name, email, phone, address) VALUES ");
        for i in start..end {
            let sep = if i > start { "," } else { "" };
            let created = now - (i as i64 % 600) * 3_600_000;
            let _ = write!(sql, "{sep}('ORD-{i:08}','completed',1,0,NULL,{created},NULL,{},0,1,'Customer {i}','c{i}@example.ru','+7999{i:07}','Moscow')", 100_000 + i % 9000);
        }
        exec(shop, &sql).await?;
        sql.clear();
        sql.push_str("INSERT INTO order_items (order_id, sku, quantity, price_kop) VALUES ");
        for i in start..end {
            let sep = if i > start { "," } else { "" };
            let _ = write!(
                sql,
                "{sep}('ORD-{i:08}','SKU-{:08}',1,1000)",
                (i * 7) % n.max(1)
            );
            if i % 2 == 0 {
                let _ = write!(
                    sql,
                    ",('ORD-{i:08}','SKU-{:08}',2,2000)",
                    (i * 7 + 1) % n.max(1)
                );
            }
        }
        exec(shop, &sql).await?;
    }
    if shop.db().dialect() == crate::db::Dialect::Postgres {
        exec(shop, "ANALYZE").await?;
    }
    Ok(())
}

/// The shop's stock as the stock job's `shop` frame.
async fn load_stock(shop: &Shop) -> Result<DataFrame> {
    let rows = shop.stock().await?;
    let skus: Vec<&str> = rows.iter().map(|s| s.sku.as_str()).collect();
    let qty: Vec<i64> = rows.iter().map(|s| s.quantity).collect();
    Ok(df!("sku" => skus, "quantity" => qty)?)
}

/// The window's orders and items as the order job's shop frames.
async fn load_orders(shop: &Shop, from: i64, to: i64) -> Result<(DataFrame, DataFrame)> {
    let (orders, items) = shop.orders_and_items(from, to).await?;
    let orders_df = df!(
        "order_id" => orders.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        "shop_status" => orders.iter().map(|o| o.status.as_str()).collect::<Vec<_>>(),
        "cancelled" => orders.iter().map(|o| o.cancelled).collect::<Vec<_>>(),
        "needs_fulfilment" => orders.iter().map(|o| o.paid && !o.cancelled).collect::<Vec<_>>(),
        "created_at" => orders.iter().map(|o| o.created_at).collect::<Vec<_>>(),
        "total_kop" => orders.iter().map(|o| o.total_kop).collect::<Vec<_>>(),
    )?;
    let items_df = df!(
        "order_id" => items.iter().map(|i| i.order_id.as_str()).collect::<Vec<_>>(),
        "sku" => items.iter().map(|i| i.sku.as_str()).collect::<Vec<_>>(),
        "quantity" => items.iter().map(|i| i.quantity).collect::<Vec<_>>(),
    )?;
    Ok((orders_df, items_df))
}

/// Fills a fresh database with `n` SKUs and `n` orders, then times loading them.
pub async fn run(engine: &Engine, n: usize, repeat: usize, work: &Path) -> Result<LoadResult> {
    let scratch = Scratch::create(engine, work, &format!("load_{n}")).await?;
    let result = measure(&scratch.url, engine, n, repeat).await;
    scratch.drop_db().await;
    result
}

async fn measure(url: &str, engine: &Engine, n: usize, repeat: usize) -> Result<LoadResult> {
    let shop = Shop::new(Db::connect(url).await?, Queries::builtin());
    let now = crate::db::now_ms();
    let started = Instant::now();
    fill(&shop, n, now).await?;
    let fill_s = started.elapsed().as_secs_f64();
    let (mut stock_t, mut orders_t) = (Vec::new(), Vec::new());
    let (mut stock_rows, mut order_rows) = (0, 0);
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let df = load_stock(&shop).await?;
        stock_t.push(t.elapsed().as_secs_f64());
        stock_rows = df.height();
        drop(df);
        let t = Instant::now();
        let (o, i) = load_orders(&shop, now - 30 * 86_400_000, now + 1).await?;
        orders_t.push(t.elapsed().as_secs_f64());
        order_rows = o.height() + i.height();
    }
    shop.db().close().await;
    let stock_s = median(&stock_t).unwrap_or(0.0);
    let orders_s = median(&orders_t).unwrap_or(0.0);
    Ok(LoadResult {
        engine: engine.name().to_string(),
        size: n,
        stock_rows,
        stock_s,
        stock_rows_per_s: rate(stock_rows, stock_s),
        order_rows,
        orders_s,
        order_rows_per_s: rate(order_rows, orders_s),
        fill_s,
    })
}
