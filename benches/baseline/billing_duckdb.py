"""Billing classification in DuckDB SQL: lines joined to the shop's orders and
the tariffs, duplicate assembly charges by a window over (order, date, id),
comma-joined classes per line, orders shipped in the period without a charge,
and the balance check. Mirrors sverka's `classify_billing`
(src/reconcile/billing.rs). Only building the classified tables is timed."""

import json
from pathlib import Path

import duckdb

import _common

CLASSIFY = """
CREATE OR REPLACE TABLE classified AS
WITH l AS (
    SELECT *, NULLIF(trim(foreign_order_id), '') AS ord, amount_kop < 0 AS is_charge,
           kind = 0 AND amount_kop < 0 AS is_asm
    FROM lines
), dup AS (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY ord ORDER BY date, id) AS n
        FROM l WHERE is_asm AND ord IS NOT NULL
    ) WHERE n > 1
), j AS (
    SELECT l.*, o.order_id IS NOT NULL AS known, o.status AS order_status,
           COALESCE(o.cancelled_before_picking, false) AS cbp,
           COALESCE(ts.expected_kop, ta.expected_kop) AS expected_kop,
           COALESCE(ts.tolerance_kop, ta.tolerance_kop) AS tolerance_kop,
           dup.id IS NOT NULL AS duplicate
    FROM l
    LEFT JOIN shop_orders o ON o.order_id = l.ord
    LEFT JOIN tariffs ts ON ts.kind = l.kind AND ts.delivery_type = o.delivery_type
    LEFT JOIN tariffs ta ON ta.kind = l.kind AND ta.delivery_type IS NULL
    LEFT JOIN dup ON dup.id = l.id
)
SELECT id, wms_order_id, foreign_order_id, kind, date, amount_kop, COALESCE(comment, '') AS comment,
       order_status, expected_kop, abs(amount_kop) - expected_kop AS difference_kop,
       COALESCE(NULLIF(concat_ws(',',
           CASE WHEN expected_kop IS NOT NULL AND abs(abs(amount_kop) - expected_kop) > abs(tolerance_kop) THEN 'amount_off_tariff' END,
           CASE WHEN is_charge AND known AND cbp THEN 'charge_for_cancelled_order' END,
           CASE WHEN (ord IS NOT NULL AND NOT known) OR (ord IS NULL AND is_asm) THEN 'charge_for_unknown_order' END,
           CASE WHEN duplicate THEN 'duplicate_charge' END), ''), 'ok') AS class
FROM j
ORDER BY id;
CREATE OR REPLACE TABLE missing AS
SELECT order_id, status, shipped_at, delivery_type, 'order_without_charge' AS class
FROM shop_orders o
WHERE shipped_at >= $from AND shipped_at < $to
  AND order_id NOT IN (SELECT NULLIF(trim(foreign_order_id), '') FROM lines
                       WHERE kind = 0 AND amount_kop < 0 AND NULLIF(trim(foreign_order_id), '') IS NOT NULL)
ORDER BY order_id;
"""

TABLES = {
    "lines": "{'id': 'BIGINT', 'wms_order_id': 'BIGINT', 'foreign_order_id': 'VARCHAR', 'kind': 'BIGINT', 'date': 'BIGINT', 'amount_kop': 'BIGINT', 'comment': 'VARCHAR'}",
    "shop_orders": "{'order_id': 'VARCHAR', 'status': 'VARCHAR', 'cancelled': 'BOOLEAN', 'cancelled_before_picking': 'BOOLEAN', 'shipped_at': 'BIGINT', 'delivery_type': 'BIGINT'}",
    "tariffs": "{'kind': 'BIGINT', 'delivery_type': 'BIGINT', 'expected_kop': 'BIGINT', 'tolerance_kop': 'BIGINT'}",
}


def main():
    a = _common.args()
    d = Path(a.dir)
    ctx = json.loads((d / "context.json").read_text())
    con = duckdb.connect()
    for name, columns in TABLES.items():
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{d / (name + '.csv')}', header=true, columns={columns})")
    sql = CLASSIFY.replace("$from", str(int(ctx["from"]))).replace("$to", str(int(ctx["to"])))

    def run():
        con.execute(sql)
        return con.execute("SELECT sum(amount_kop) FROM lines").fetchone()[0]

    seconds, total = _common.timed(run, a.repeat)
    counts = {}
    for (label, n) in con.execute("SELECT class, count(*) FROM classified GROUP BY class").fetchall():
        for name in label.split(","):
            counts[name] = counts.get(name, 0) + n
    counts["order_without_charge"] = con.execute("SELECT count(*) FROM missing").fetchone()[0]
    gap_change = int(total or 0) - ctx["change_of_balance_kop"]
    prev = ctx["previous_closing_kop"]
    gap_balance = 0 if prev is None else prev + ctx["change_of_balance_kop"] - ctx["current_balance_kop"]
    counts["balance_gap"] = int(gap_change != 0 or gap_balance != 0)
    _common.report("duckdb", duckdb.__version__, seconds, counts)


if __name__ == "__main__":
    main()
