"""Stock classification in DuckDB SQL: two full outer joins on the SKU, the
class list per SKU, unnested and ordered like sverka's output. Mirrors
sverka's `classify_one` (src/reconcile/stock.rs); loading the CSVs into
tables is not timed, building the classified table is."""

from pathlib import Path

import duckdb

import _common

CLASSIFY = """
CREATE OR REPLACE TABLE classified AS
WITH j AS (
    SELECT COALESCE(w.sku, c.sku, s.sku) AS sku,
           w.wms_id, c.crm_offer_id,
           w.stock AS wms_stock, w.reserved AS wms_reserved,
           CASE WHEN w.stock IS NOT NULL THEN GREATEST(w.stock - COALESCE(w.reserved, 0), 0) END AS wms_sellable,
           c.quantity AS crm_quantity, s.quantity AS shop_quantity,
           w.sku IS NOT NULL AS has_w, c.sku IS NOT NULL AS has_c, s.sku IS NOT NULL AS has_s
    FROM wms w
    FULL OUTER JOIN crm c ON c.sku = w.sku
    FULL OUTER JOIN shop s ON s.sku = COALESCE(w.sku, c.sku)
), k AS (
    SELECT *, list_filter([
        CASE WHEN wms_stock IS NOT NULL AND has_c AND crm_quantity <> wms_sellable THEN 'qty_mismatch_crm' END,
        CASE WHEN wms_stock IS NOT NULL AND has_s AND shop_quantity <> wms_sellable THEN 'qty_mismatch_shop' END,
        CASE WHEN has_s AND wms_stock IS NULL THEN 'missing_in_wms' END,
        CASE WHEN (has_w OR has_s) AND NOT has_c THEN 'missing_in_crm' END,
        CASE WHEN NOT has_s AND COALESCE(wms_stock, 0) > 0 THEN 'missing_in_shop' END,
        CASE WHEN wms_reserved > wms_stock THEN 'reserved_exceeds_stock' END
    ], lambda x: x IS NOT NULL) AS classes
    FROM j
)
SELECT sku, wms_id, crm_offer_id, wms_stock, wms_reserved, wms_sellable, crm_quantity, shop_quantity,
       UNNEST(CASE WHEN len(classes) = 0 THEN ['ok'] ELSE classes END) AS class
FROM k
ORDER BY sku, class
"""


def main():
    a = _common.args()
    d = Path(a.dir)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE wms AS SELECT * FROM read_csv('{d / 'wms.csv'}', header=true, columns={{'sku': 'VARCHAR', 'wms_id': 'BIGINT', 'stock': 'BIGINT', 'reserved': 'BIGINT'}})")
    con.execute(f"CREATE TABLE crm AS SELECT * FROM read_csv('{d / 'crm.csv'}', header=true, columns={{'sku': 'VARCHAR', 'crm_offer_id': 'BIGINT', 'quantity': 'BIGINT'}})")
    con.execute(f"CREATE TABLE shop AS SELECT * FROM read_csv('{d / 'shop.csv'}', header=true, columns={{'sku': 'VARCHAR', 'quantity': 'BIGINT'}})")
    seconds, _ = _common.timed(lambda: con.execute(CLASSIFY), a.repeat)
    counts = dict(con.execute("SELECT class, count(*) FROM classified GROUP BY class").fetchall())
    _common.report("duckdb", duckdb.__version__, seconds, counts)


if __name__ == "__main__":
    main()
