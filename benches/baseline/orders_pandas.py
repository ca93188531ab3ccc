"""Order classification in pandas: outer merges of the shop, WMS and CRM
orders, goods compared per (order, SKU), one mask per class, the long
(order_id, class) frame sorted like sverka's output. Mirrors sverka's
`classify_orders` (src/reconcile/orders.rs) with the bench's options
(src/bench/orders.rs); the explanatory notes are not built. Only the
classification is timed."""

from pathlib import Path

import numpy as np
import pandas as pd

import _common

NOW_MS = 1_760_000_000_000
STUCK_MS = 48 * 3_600_000
TOLERANCE = 100
STAGE_STATUS = {"new": "new", "picking": "assembling", "packed": "assembled",
                "shipped": "send-to-delivery", "delivered": "complete", "cancelled": "cancel-other"}
COLUMNS = ["order_id", "wms_order_id", "shop_status", "wms_status", "wms_stage", "crm_status",
           "crm_shipped", "track_wms", "track_crm"]


def load(d):
    s = {"order_id": str, "sku": str}
    return (
        pd.read_csv(d / "shop_orders.csv", dtype={**s, "shop_status": str}),
        pd.read_csv(d / "shop_items.csv", dtype=s),
        pd.read_csv(d / "wms_orders.csv", dtype={**s, "wms_order_id": str, "wms_status": str, "wms_stage": str,
                                                 "track": str, "total_kop": "Int64"}),
        pd.read_csv(d / "wms_items.csv", dtype=s),
        pd.read_csv(d / "crm_orders.csv", dtype={**s, "crm_status": str, "track": str}),
    )


def clean(track):
    t = track.str.strip()
    return t.where(t != "")


def classify(shop, shop_items, wms, wms_items, crm):
    df = (shop.rename(columns={"total_kop": "shop_total"})
          .merge(wms.rename(columns={"track": "track_wms", "total_kop": "wms_total"}), on="order_id", how="outer")
          .merge(crm.rename(columns={"track": "track_crm", "total_kop": "crm_total"}), on="order_id", how="outer"))
    has_s = df["shop_status"].notna().to_numpy()
    has_w = df["wms_stage"].notna().to_numpy()
    has_c = df["crm_status"].notna().to_numpy()
    stage = df["wms_stage"]
    active = stage.isin(["new", "picking", "packed"]).to_numpy()
    shipped = stage.isin(["shipped", "delivered"]).to_numpy()
    cancelled = df["cancelled"].fillna(False).astype(bool).to_numpy()
    needs = df["needs_fulfilment"].fillna(False).astype(bool).to_numpy()
    crm_shipped = df["crm_shipped"].fillna(False).astype(bool).to_numpy()
    wc = has_w & has_c
    tw, tc = clean(df["track_wms"]), clean(df["track_crm"])
    expected = stage.map(STAGE_STATUS)

    sg = shop_items.groupby(["order_id", "sku"], sort=False)["quantity"].sum()
    wg = wms_items.groupby(["order_id", "sku"], sort=False)["quantity"].sum()
    goods = pd.concat([sg.rename("s"), wg.rename("w")], axis=1).fillna(0)
    differ = goods.index.get_level_values(0)[(goods["s"] != goods["w"]).to_numpy()].unique()
    reported = wms_items["order_id"].unique()
    ids = df["order_id"]

    shop_total = df["shop_total"].to_numpy(dtype="float64", na_value=np.nan)
    crm_total = df["crm_total"].to_numpy(dtype="float64", na_value=np.nan)
    wms_total = df["wms_total"].to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        crm_off = has_s & has_c & (np.abs(shop_total - crm_total) > TOLERANCE)
        wms_off = has_s & ~np.isnan(wms_total) & (np.abs(shop_total - wms_total) > TOLERANCE)
    idle = NOW_MS - df["last_change_at"].to_numpy(dtype="float64", na_value=np.nan)

    masks = {
        "missing_in_wms": has_s & needs & ~cancelled & ~has_w,
        "cancelled_in_shop_active_in_wms": has_s & cancelled & active,
        "cancelled_after_shipment": has_s & cancelled & shipped,
        "cancelled_in_wms_active_in_shop": has_s & ~cancelled & (stage == "cancelled").to_numpy(),
        "shipped_not_marked_in_crm": wc & shipped & ~crm_shipped,
        "track_missing_in_crm": wc & tw.notna().to_numpy() & (tc.isna() | (tc != tw)).to_numpy(),
        "status_mismatch": wc & expected.notna().to_numpy() & (df["crm_status"] != expected).to_numpy(),
        "missing_in_crm": ~has_c & (has_s | has_w),
        "missing_in_shop": has_w & ~has_s,
        "goods_mismatch": has_s & ids.isin(reported).to_numpy() & ids.isin(differ).to_numpy(),
        "amount_mismatch": crm_off | wms_off,
        "stuck": has_w & active & (idle > STUCK_MS),
    }
    any_class = np.zeros(len(df), dtype=bool)
    for m in masks.values():
        any_class |= m
    masks["ok"] = ~any_class
    base = df.rename(columns={})[COLUMNS]
    parts = [base[m].assign(**{"class": name}) for name, m in masks.items()]
    return pd.concat(parts, ignore_index=True).sort_values(["order_id", "class"], ignore_index=True)


def main():
    a = _common.args()
    frames = load(Path(a.dir))
    seconds, out = _common.timed(lambda: classify(*frames), a.repeat)
    _common.report("pandas", pd.__version__, seconds, out["class"].value_counts().to_dict())


if __name__ == "__main__":
    main()
