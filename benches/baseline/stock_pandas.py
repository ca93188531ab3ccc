"""Stock classification in pandas, the way a user would write it: two outer
merges on the SKU, one vectorised mask per class, then the long (sku, class)
frame sorted like sverka's output. Mirrors sverka's `classify_one`
(src/reconcile/stock.rs); only the classification is timed."""

from pathlib import Path

import numpy as np
import pandas as pd

import _common

CLASSES = ["missing_in_crm", "missing_in_shop", "missing_in_wms", "ok",
           "qty_mismatch_crm", "qty_mismatch_shop", "reserved_exceeds_stock"]
COLUMNS = ["sku", "wms_id", "crm_offer_id", "wms_stock", "wms_reserved", "wms_sellable",
           "crm_quantity", "shop_quantity"]


def load(d):
    wms = pd.read_csv(d / "wms.csv", dtype={"sku": str, "wms_id": "Int64", "stock": "Int64", "reserved": "Int64"})
    crm = pd.read_csv(d / "crm.csv", dtype={"sku": str, "crm_offer_id": "int64", "quantity": "int64"})
    shop = pd.read_csv(d / "shop.csv", dtype={"sku": str, "quantity": "int64"})
    return wms, crm, shop


def classify(wms, crm, shop):
    w = wms.rename(columns={"stock": "wms_stock", "reserved": "wms_reserved"}).assign(_w=True)
    c = crm.rename(columns={"quantity": "crm_quantity"}).assign(_c=True)
    s = shop.rename(columns={"quantity": "shop_quantity"}).assign(_s=True)
    df = w.merge(c, on="sku", how="outer").merge(s, on="sku", how="outer")
    has_w = df["_w"].notna().to_numpy()
    has_c = df["_c"].notna().to_numpy()
    has_s = df["_s"].notna().to_numpy()
    stock = df["wms_stock"]
    reserved = df["wms_reserved"]
    df["wms_sellable"] = (stock - reserved.fillna(0)).clip(lower=0)
    has_stock = stock.notna().to_numpy()
    sellable = df["wms_sellable"].to_numpy(dtype="float64", na_value=np.nan)
    crm_q = df["crm_quantity"].to_numpy(dtype="float64", na_value=np.nan)
    shop_q = df["shop_quantity"].to_numpy(dtype="float64", na_value=np.nan)
    stock_f = stock.to_numpy(dtype="float64", na_value=np.nan)
    reserved_f = reserved.to_numpy(dtype="float64", na_value=np.nan)
    masks = {
        "qty_mismatch_crm": has_stock & has_c & (crm_q != sellable),
        "qty_mismatch_shop": has_stock & has_s & (shop_q != sellable),
        "missing_in_wms": has_s & ~has_stock,
        "missing_in_crm": (has_w | has_s) & ~has_c,
        "missing_in_shop": ~has_s & (np.nan_to_num(stock_f) > 0),
        "reserved_exceeds_stock": has_stock & ~np.isnan(reserved_f) & (reserved_f > stock_f),
    }
    any_class = np.zeros(len(df), dtype=bool)
    for m in masks.values():
        any_class |= m
    masks["ok"] = ~any_class
    base = df[COLUMNS]
    parts = [base[m].assign(**{"class": name}) for name, m in masks.items()]
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["sku", "class"], ignore_index=True)


def main():
    a = _common.args()
    wms, crm, shop = load(Path(a.dir))
    seconds, out = _common.timed(lambda: classify(wms, crm, shop), a.repeat)
    _common.report("pandas", pd.__version__, seconds, out["class"].value_counts().to_dict())


if __name__ == "__main__":
    main()
