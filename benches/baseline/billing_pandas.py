"""Billing classification in pandas: lines joined to the shop's orders and to
the tariffs (specific delivery type, else "any"), duplicate assembly charges
by (order, date, id), comma-joined classes per line, orders shipped in the
period without a charge, and the balance check. Mirrors sverka's
`classify_billing` (src/reconcile/billing.rs); counts are per class, a line
with two classes counted under each. Only the classification is timed."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

import _common

ASSEMBLY = 0


def load(d):
    lines = pd.read_csv(d / "lines.csv", dtype={"foreign_order_id": str, "comment": str, "wms_order_id": "Int64"})
    orders = pd.read_csv(d / "shop_orders.csv", dtype={"order_id": str, "status": str, "shipped_at": "Int64",
                                                      "delivery_type": "Int64"})
    tariffs = pd.read_csv(d / "tariffs.csv", dtype={"delivery_type": "Int64"})
    context = json.loads((d / "context.json").read_text())
    return lines, orders, tariffs, context


def classify(lines, orders, tariffs, ctx):
    lines = lines.sort_values("id", ignore_index=True)
    if lines["id"].duplicated().any():
        raise ValueError("duplicate line id")
    order = lines["foreign_order_id"].str.strip()
    order = order.where(order != "")
    m = lines.assign(order=order).merge(orders, left_on="order", right_on="order_id", how="left")
    known = m["order_id"].notna().to_numpy()
    has_order = order.notna().to_numpy()
    amount = m["amount_kop"].to_numpy()
    is_charge = amount < 0
    is_asm = (m["kind"].to_numpy() == ASSEMBLY) & is_charge

    asm = m.loc[is_asm & has_order, ["order", "date", "id"]].sort_values(["order", "date", "id"])
    dup_ids = asm.loc[asm.duplicated("order", keep="first"), "id"]

    specific = tariffs[tariffs["delivery_type"].notna()]
    generic = tariffs[tariffs["delivery_type"].isna()][["kind", "expected_kop", "tolerance_kop"]]
    t = (m[["kind", "delivery_type"]]
         .merge(specific, on=["kind", "delivery_type"], how="left")
         .merge(generic, on="kind", how="left", suffixes=("", "_any")))
    use_specific = t["expected_kop"].notna().to_numpy()
    expected = np.where(use_specific, t["expected_kop"].to_numpy(dtype="float64", na_value=np.nan),
                        t["expected_kop_any"].to_numpy(dtype="float64", na_value=np.nan))
    tolerance = np.where(use_specific, t["tolerance_kop"].to_numpy(dtype="float64", na_value=np.nan),
                         t["tolerance_kop_any"].to_numpy(dtype="float64", na_value=np.nan))
    with np.errstate(invalid="ignore"):
        off = ~np.isnan(expected) & (np.abs(np.abs(amount) - expected) > np.abs(tolerance))

    flags = {
        "amount_off_tariff": off,
        "charge_for_cancelled_order": is_charge & known & m["cancelled_before_picking"].fillna(False).astype(bool).to_numpy(),
        "charge_for_unknown_order": (has_order & ~known) | (~has_order & is_asm),
        "duplicate_charge": m["id"].isin(dup_ids).to_numpy(),
    }
    label = pd.Series([""] * len(m), dtype=object)
    for name in sorted(flags):
        label = label.where(~flags[name], label + np.where(label == "", "", ",") + name)
    label = label.where(label != "", "ok")
    out = m.assign(order_status=m["status"], expected_kop=expected, difference_kop=np.abs(amount) - expected,
                   **{"class": label})

    counts = {name: int(f.sum()) for name, f in flags.items()}
    counts["ok"] = int((label == "ok").sum())
    charged = set(asm["order"])
    shipped = orders["shipped_at"]
    in_period = shipped.notna() & (shipped >= ctx["from"]) & (shipped < ctx["to"])
    missing = orders[in_period.fillna(False).to_numpy() & ~orders["order_id"].isin(charged).to_numpy()]
    counts["order_without_charge"] = len(missing)
    gap_change = int(amount.sum()) - ctx["change_of_balance_kop"]
    prev = ctx["previous_closing_kop"]
    gap_balance = 0 if prev is None else prev + ctx["change_of_balance_kop"] - ctx["current_balance_kop"]
    counts["balance_gap"] = int(gap_change != 0 or gap_balance != 0)
    return out, missing, counts


def main():
    a = _common.args()
    frames = load(Path(a.dir))
    seconds, result = _common.timed(lambda: classify(*frames), a.repeat)
    _common.report("pandas", pd.__version__, seconds, result[2])


if __name__ == "__main__":
    main()
