"""Order classification in DuckDB SQL: full outer joins of the shop, WMS and
CRM orders, goods compared per (order, SKU), the class list per order,
unnested and ordered like sverka's output. Mirrors sverka's
`classify_orders` (src/reconcile/orders.rs) with the bench's options; the
explanatory notes are not built. Only building the classified table is timed."""

from pathlib import Path

import duckdb

import _common

CLASSIFY = """
CREATE OR REPLACE TABLE classified AS
WITH sg AS (SELECT order_id, sku, sum(quantity) AS q FROM shop_items GROUP BY ALL),
wg AS (SELECT order_id, sku, sum(quantity) AS q FROM wms_items GROUP BY ALL),
reported AS (SELECT DISTINCT order_id FROM wms_items),
differ AS (
    SELECT DISTINCT COALESCE(sg.order_id, wg.order_id) AS order_id
    FROM sg FULL OUTER JOIN wg ON sg.order_id = wg.order_id AND sg.sku = wg.sku
    WHERE COALESCE(sg.q, 0) <> COALESCE(wg.q, 0)
),
stage_status(stage, status) AS (VALUES ('new', 'new'), ('picking', 'assembling'), ('packed', 'assembled'),
    ('shipped', 'send-to-delivery'), ('delivered', 'complete'), ('cancelled', 'cancel-other')),
j AS (
    SELECT COALESCE(s.order_id, w.order_id, c.order_id) AS order_id,
           w.wms_order_id, s.shop_status, w.wms_status, w.wms_stage, c.crm_status, c.crm_shipped,
           w.track AS track_wms, c.track AS track_crm,
           s.order_id IS NOT NULL AS has_s, w.order_id IS NOT NULL AS has_w, c.order_id IS NOT NULL AS has_c,
           COALESCE(s.cancelled, false) AS cancelled, COALESCE(s.needs_fulfilment, false) AS needs,
           w.wms_stage IN ('new', 'picking', 'packed') AS active,
           w.wms_stage IN ('shipped', 'delivered') AS shipped,
           NULLIF(trim(w.track), '') AS tw, NULLIF(trim(c.track), '') AS tc,
           ss.status AS expected, s.total_kop AS shop_total, c.total_kop AS crm_total, w.total_kop AS wms_total,
           w.last_change_at,
           r.order_id IS NOT NULL AS goods_reported, d.order_id IS NOT NULL AS goods_differ
    FROM shop_orders s
    FULL OUTER JOIN wms_orders w ON w.order_id = s.order_id
    FULL OUTER JOIN crm_orders c ON c.order_id = COALESCE(s.order_id, w.order_id)
    LEFT JOIN stage_status ss ON ss.stage = w.wms_stage
    LEFT JOIN reported r ON r.order_id = COALESCE(s.order_id, w.order_id, c.order_id)
    LEFT JOIN differ d ON d.order_id = COALESCE(s.order_id, w.order_id, c.order_id)
), k AS (
    SELECT *, list_filter([
        CASE WHEN has_s AND needs AND NOT cancelled AND NOT has_w THEN 'missing_in_wms' END,
        CASE WHEN has_s AND cancelled AND active THEN 'cancelled_in_shop_active_in_wms' END,
        CASE WHEN has_s AND cancelled AND shipped THEN 'cancelled_after_shipment' END,
        CASE WHEN has_s AND NOT cancelled AND wms_stage = 'cancelled' THEN 'cancelled_in_wms_active_in_shop' END,
        CASE WHEN has_w AND has_c AND shipped AND NOT crm_shipped THEN 'shipped_not_marked_in_crm' END,
        CASE WHEN has_w AND has_c AND tw IS NOT NULL AND (tc IS NULL OR tc <> tw) THEN 'track_missing_in_crm' END,
        CASE WHEN has_w AND has_c AND expected IS NOT NULL AND crm_status <> expected THEN 'status_mismatch' END,
        CASE WHEN NOT has_c AND (has_s OR has_w) THEN 'missing_in_crm' END,
        CASE WHEN has_w AND NOT has_s THEN 'missing_in_shop' END,
        CASE WHEN has_s AND goods_reported AND goods_differ THEN 'goods_mismatch' END,
        CASE WHEN has_s AND ((has_c AND abs(shop_total - crm_total) > 100)
                          OR (wms_total IS NOT NULL AND abs(shop_total - wms_total) > 100)) THEN 'amount_mismatch' END,
        CASE WHEN has_w AND active AND 1760000000000 - last_change_at > 48 * 3600000 THEN 'stuck' END
    ], lambda x: x IS NOT NULL) AS classes
    FROM j
)
SELECT order_id, wms_order_id, shop_status, wms_status, wms_stage, crm_status, crm_shipped, track_wms, track_crm,
       UNNEST(CASE WHEN len(classes) = 0 THEN ['ok'] ELSE classes END) AS class
FROM k
ORDER BY order_id, class
"""

TABLES = {
    "shop_orders": "{'order_id': 'VARCHAR', 'shop_status': 'VARCHAR', 'cancelled': 'BOOLEAN', 'needs_fulfilment': 'BOOLEAN', 'created_at': 'BIGINT', 'total_kop': 'BIGINT'}",
    "shop_items": "{'order_id': 'VARCHAR', 'sku': 'VARCHAR', 'quantity': 'BIGINT'}",
    "wms_orders": "{'order_id': 'VARCHAR', 'wms_order_id': 'VARCHAR', 'wms_status': 'VARCHAR', 'wms_stage': 'VARCHAR', 'track': 'VARCHAR', 'last_change_at': 'BIGINT', 'total_kop': 'BIGINT'}",
    "wms_items": "{'order_id': 'VARCHAR', 'sku': 'VARCHAR', 'quantity': 'BIGINT'}",
    "crm_orders": "{'order_id': 'VARCHAR', 'crm_status': 'VARCHAR', 'crm_shipped': 'BOOLEAN', 'track': 'VARCHAR', 'total_kop': 'BIGINT'}",
}


def main():
    a = _common.args()
    d = Path(a.dir)
    con = duckdb.connect()
    for name, columns in TABLES.items():
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{d / (name + '.csv')}', header=true, columns={columns})")
    seconds, _ = _common.timed(lambda: con.execute(CLASSIFY), a.repeat)
    counts = dict(con.execute("SELECT class, count(*) FROM classified GROUP BY class").fetchall())
    _common.report("duckdb", duckdb.__version__, seconds, counts)


if __name__ == "__main__":
    main()
