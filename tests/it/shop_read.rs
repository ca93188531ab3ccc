//! The shop's whole-table reads on a SQLite file (the typed SQLite path)
//! give what the `sqlx::Any` path gives on the same rows (a shared
//! in-memory database, which only this process's pool can see, is read
//! through `Any`): NULLs, blanks, narrow integers, text stored as blobs, optional
//! columns present or not.

use sverka::db::Db;
use sverka::shop::{Queries, Shop};

const ROWS: &str = "
INSERT INTO products (sku, name, price_kop, cost_kop, active) VALUES
  ('B-2', 'b', 100, 50, 1), ('A-1', 'a', 100, 50, 1), ('C-3', 'c', 1, 1, 0), ('D-4', 'd', 1, 1, 1);
INSERT INTO stock (sku, quantity, updated_at) VALUES ('A-1', 5, 1), ('B-2', -2, 1), ('C-3', 9, 1);
INSERT INTO orders (id, status, paid, cancelled, cancelled_at, created_at, shipped_at, total_kop,
  delivery_kop, delivery_type, customer_name, email, phone, address, discount_kop, courier,
  pickup_point, post_code, city, street, house, room) VALUES
  ('O-2', 'paid', 1, 0, NULL, 1500, NULL, 1000, 0, NULL, 'Ann', NULL, '+7', 'addr', 0, NULL,
   '  ', NULL, 'Moscow', '', NULL, NULL),
  ('O-1', 'cancelled', 0, 1, 1600, 1400, 1700, 2000, 300, 2, 'Bob', 'b@x.ru', NULL, NULL, 150, 7,
   'PVZ-1', '101000', NULL, 'Tverskaya', '1', '2'),
  ('O-3', 'completed', 1, 0, NULL, 10, NULL, 1, 0, NULL, 'Old', NULL, NULL, NULL, 0, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO order_items (order_id, sku, quantity, price_kop) VALUES
  ('O-1', 'B-2', 2, 100), ('O-1', 'A-1', 1, 100), ('O-2', 'Z-9', 3, 5), ('O-3', 'A-1', 1, 1);
UPDATE orders SET room = CAST('flat 5' AS BLOB) WHERE id = 'O-2';
";

/// Orders without the optional columns (an adapted query that does not return them).
const ORDERS_WITHOUT_OPTIONAL: &str =
    "SELECT id, status, paid, cancelled, cancelled_at, created_at,
  shipped_at, total_kop, delivery_kop, delivery_type, customer_name, email, phone, address
  FROM orders WHERE (created_at >= ? AND created_at < ?) OR status NOT IN ('completed', 'cancelled')
  ORDER BY id";

async fn shop(url: &str, queries: Queries) -> Shop {
    let shop = Shop::new(Db::connect(url).await.expect("connect"), queries);
    shop.create_reference_schema().await.expect("schema");
    for statement in ROWS.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement)
            .execute(shop.db().pool())
            .await
            .expect("rows");
    }
    shop
}

#[tokio::test]
async fn typed_sqlite_reads_equal_the_any_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file_url = format!("sqlite://{}", dir.path().join("shop.db").display());
    let adapted = {
        let mut q = Queries::builtin();
        q.orders_select = ORDERS_WITHOUT_OPTIONAL.to_string();
        q
    };
    for (n, queries) in [Queries::builtin(), adapted].into_iter().enumerate() {
        let _ = std::fs::remove_file(dir.path().join("shop.db"));
        let typed = shop(&file_url, queries.clone()).await;
        // Shared between the pool's connections, and invisible to any other.
        let memory = format!("sqlite:file:shop_read_{n}?mode=memory&cache=shared");
        let any = shop(&memory, queries).await;
        assert!(typed.db().sqlite_url().is_some());
        assert!(any.db().sqlite_url().is_none());
        let stock = typed.stock().await.expect("typed stock");
        assert_eq!(stock, any.stock().await.expect("any stock"));
        assert_eq!(stock.len(), 3, "{stock:?}");
        let orders = typed.orders(1000, 2000).await.expect("typed orders");
        assert_eq!(orders, any.orders(1000, 2000).await.expect("any orders"));
        assert_eq!(orders.len(), 2);
        let items = typed.order_items(1000, 2000).await.expect("typed items");
        assert_eq!(items, any.order_items(1000, 2000).await.expect("any items"));
        assert_eq!(items.len(), 3);
        typed.db().close().await;
        any.db().close().await;
    }
}

#[tokio::test]
async fn typed_sqlite_read_names_the_query_of_a_missing_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("shop.db").display());
    let mut queries = Queries::builtin();
    queries.stock_select = "SELECT sku FROM products".to_string();
    let shop = shop(&url, queries).await;
    let err = shop.stock().await.expect_err("no quantity column");
    assert!(err.to_string().contains("stock_select"), "{err}");
    shop.db().close().await;
}

#[tokio::test]
async fn typed_sqlite_read_refuses_what_the_any_path_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file_url = format!("sqlite://{}", dir.path().join("shop.db").display());
    // A SKU that is a number, and a quantity that is NULL: both paths refuse
    // them, naming the query.
    for (n, sql) in [
        "SELECT 5 AS sku, 1 AS quantity FROM products",
        "SELECT sku, NULL AS quantity FROM products",
        "SELECT sku, 'many' AS quantity FROM products",
    ]
    .into_iter()
    .enumerate()
    {
        let mut queries = Queries::builtin();
        queries.stock_select = sql.to_string();
        let _ = std::fs::remove_file(dir.path().join("shop.db"));
        let typed = shop(&file_url, queries.clone()).await;
        let memory = format!("sqlite:file:shop_refuse_{n}?mode=memory&cache=shared");
        let any = shop(&memory, queries).await;
        let typed_err = typed.stock().await.expect_err(sql);
        let any_err = any.stock().await.expect_err(sql);
        for err in [&typed_err, &any_err] {
            assert!(err.to_string().contains("stock_select"), "{sql}: {err}");
            assert!(!err.is_unavailable(), "{sql}: {err:?}");
        }
        typed.db().close().await;
        any.db().close().await;
    }
}

#[tokio::test]
async fn typed_sqlite_read_of_a_vanished_file_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shop.db");
    let url = format!("sqlite://{}", path.display());
    let shop = shop(&url, Queries::builtin()).await;
    shop.db().close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let err = shop.stock().await.expect_err("no file");
    assert!(err.is_unavailable(), "{err:?}");
    assert!(err.to_string().contains("stock_select"), "{err}");
}

#[tokio::test]
async fn orders_and_items_are_read_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("shop.db").display());
    let shop = shop(&url, Queries::builtin()).await;
    let (orders, items) = shop.orders_and_items(1000, 2000).await.expect("both");
    assert_eq!(orders, shop.orders(1000, 2000).await.expect("orders"));
    assert_eq!(items, shop.order_items(1000, 2000).await.expect("items"));
    assert_eq!((orders.len(), items.len()), (2, 3));
    shop.db().close().await;
}

#[tokio::test]
async fn sqlite_stock_writes_equal_the_any_path() {
    use sverka::shop::StockWrite;
    let dir = tempfile::tempdir().expect("tempdir");
    let file_url = format!("sqlite://{}", dir.path().join("shop.db").display());
    let typed = shop(&file_url, Queries::builtin()).await;
    let any = shop(
        "sqlite:file:shop_write?mode=memory&cache=shared",
        Queries::builtin(),
    )
    .await;
    let write = |sku: &str, from: i64, to: i64| StockWrite {
        sku: sku.into(),
        from,
        to,
    };
    let writes = [
        write("A-1", 5, 7), // holds 5: updated
        write("B-2", 0, 4), // holds -2, read as 0: the insert finds the row
        write("C-3", 1, 2), // holds 9: changed since the read
        write("D-4", 0, 3), // no row: inserted
    ];
    let outcome = typed.update_stock(&writes).await.expect("typed write");
    assert_eq!(outcome, any.update_stock(&writes).await.expect("any write"));
    assert_eq!(outcome.updated, ["A-1"]);
    assert_eq!(outcome.inserted, ["D-4"]);
    assert_eq!(outcome.changed_during_run, ["B-2", "C-3"]);
    let after = typed.stock().await.expect("stock");
    assert_eq!(after, any.stock().await.expect("any stock"));
    let quantity = |sku: &str| after.iter().find(|s| s.sku == sku).map(|s| s.quantity);
    assert_eq!(
        (quantity("A-1"), quantity("B-2"), quantity("D-4")),
        (Some(7), Some(-2), Some(3))
    );
    typed.db().close().await;
    any.db().close().await;
}
