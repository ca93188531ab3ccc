//! The validated order inputs of [`super::classify_orders`], each walked in
//! id order: the three order frames (zero-copy order when already sorted,
//! otherwise one Polars `arg_sort`), the goods grouped by order in one flat
//! sorted table, and the split of the id space into ranges for threads.

use polars::prelude::*;

use super::Stage;
use crate::reconcile::input::{polars_ctx, Input, ReconcileError, Result};

#[derive(Debug, Clone, Copy)]
pub(super) struct ShopOrder {
    pub(super) cancelled: bool,
    pub(super) needs_fulfilment: bool,
    pub(super) total_kop: i64,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct WmsOrder<'a> {
    pub(super) stage: Stage,
    pub(super) track: Option<&'a str>,
    pub(super) last_change_at: i64,
    pub(super) total_kop: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct CrmOrder<'a> {
    pub(super) status: &'a str,
    pub(super) shipped: bool,
    pub(super) track: Option<&'a str>,
    pub(super) total_kop: i64,
}

/// One order frame's rows (in row order) with the row order that sorts them by id.
pub(super) struct Keyed<'a, T> {
    pub(super) ids: Vec<&'a str>,
    pub(super) rows: Vec<T>,
    /// Row of the i-th smallest id; None when the frame is already sorted.
    pub(super) order: Option<Vec<IdxSize>>,
}

impl<'a, T: Copy> Keyed<'a, T> {
    /// Orders the rows by id, rejecting a repeated id (the first repeat in
    /// row order is the one reported).
    pub(super) fn new(
        frame_name: &'static str,
        df: &DataFrame,
        ids: Vec<&'a str>,
        rows: Vec<T>,
    ) -> Result<Self> {
        let mut keyed = Keyed {
            ids,
            rows,
            order: None,
        };
        if keyed.ids.windows(2).all(|w| w[0] < w[1]) {
            return Ok(keyed);
        }
        let options = SortOptions {
            multithreaded: true,
            ..SortOptions::default()
        };
        let column = df
            .column("order_id")
            .map_err(polars_ctx("sorting order ids"))?;
        let order: Vec<IdxSize> = column
            .as_materialized_series()
            .arg_sort(options)
            .into_no_null_iter()
            .collect();
        let ids = &keyed.ids;
        if order
            .windows(2)
            .any(|w| ids[w[0] as usize] == ids[w[1] as usize])
        {
            return Err(crate::reconcile::input::repeated_order_id(frame_name, ids));
        }
        keyed.order = Some(order);
        Ok(keyed)
    }

    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The row holding the `pos`-th smallest id.
    pub(super) fn row(&self, pos: usize) -> usize {
        match &self.order {
            Some(order) => order[pos] as usize,
            None => pos,
        }
    }

    /// The `pos`-th smallest id.
    pub(super) fn id_at(&self, pos: usize) -> &'a str {
        self.ids[self.row(pos)]
    }

    /// The first position whose id is not below `id`.
    pub(super) fn lower_bound(&self, id: &str) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.id_at(mid) < id {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// A walk over the positions `from..to`.
    pub(super) fn cursor(&self, (from, to): (usize, usize)) -> Cursor<'_, 'a, T> {
        Cursor {
            keyed: self,
            pos: from,
            end: to,
        }
    }
}

/// A walk in id order over a range of one keyed frame's positions.
pub(super) struct Cursor<'k, 'a, T> {
    pub(super) keyed: &'k Keyed<'a, T>,
    pub(super) pos: usize,
    pub(super) end: usize,
}

impl<'a, T: Copy> Cursor<'_, 'a, T> {
    pub(super) fn head(&self) -> Option<&'a str> {
        (self.pos < self.end).then(|| self.keyed.id_at(self.pos))
    }

    /// The row (and its index) for `id` if it is this walk's next id (then advances).
    pub(super) fn take(&mut self, id: &str) -> Option<(IdxSize, T)> {
        if self.pos >= self.end {
            return None;
        }
        let row = self.keyed.row(self.pos);
        if self.keyed.ids[row] != id {
            return None;
        }
        self.pos += 1;
        Some((row as IdxSize, self.keyed.rows[row]))
    }
}

fn read_shop(df: &DataFrame) -> Result<Keyed<'_, ShopOrder>> {
    let input = Input::new(df, "shop_orders");
    let ids = input.strings("order_id")?;
    // Validated here; the output gathers the column itself.
    input.strings("shop_status")?;
    let cancelled = input.bools("cancelled")?;
    let needs = input.bools("needs_fulfilment")?;
    // Validated for the documented schema; the window is applied by the caller.
    input.ints("created_at")?;
    let total = input.ints("total_kop")?;
    let rows = (0..ids.len())
        .map(|i| ShopOrder {
            cancelled: cancelled[i],
            needs_fulfilment: needs[i],
            total_kop: total[i],
        })
        .collect();
    Keyed::new("shop_orders", df, ids, rows)
}

/// The `wms_stage` column read as stages; an unknown name is an input error.
pub(super) fn parse_stages(names: &[&str]) -> Result<Vec<Stage>> {
    names
        .iter()
        .map(|name| {
            Stage::parse(name).ok_or_else(|| ReconcileError::InvalidValue {
                frame: "wms_orders",
                column: "wms_stage",
                value: (*name).to_owned(),
            })
        })
        .collect()
}

/// The `wms_orders` frame's columns, read and validated.
pub(super) struct WmsColumns<'a> {
    pub(super) ids: Vec<&'a str>,
    // Validated for every reader; the classification gathers these two from
    // the frame itself, the test oracle reads them here.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) wms_ids: Vec<Option<&'a str>>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) status: Vec<&'a str>,
    pub(super) stages: Vec<Stage>,
    pub(super) track: Vec<Option<&'a str>>,
    pub(super) changed: Vec<i64>,
    pub(super) total: Vec<Option<i64>>,
}

impl<'a> WmsColumns<'a> {
    /// Reads every documented column of `df` (`wms_orders`).
    pub(super) fn read(df: &'a DataFrame) -> Result<WmsColumns<'a>> {
        let input = Input::new(df, "wms_orders");
        Ok(WmsColumns {
            ids: input.strings("order_id")?,
            wms_ids: input.opt_strings("wms_order_id")?,
            status: input.strings("wms_status")?,
            stages: parse_stages(&input.strings("wms_stage")?)?,
            track: input.opt_strings("track")?,
            changed: input.ints("last_change_at")?,
            total: input.opt_ints("total_kop")?,
        })
    }
}

fn read_wms(df: &DataFrame) -> Result<Keyed<'_, WmsOrder<'_>>> {
    // The output gathers the ids and statuses from the frame itself.
    let c = WmsColumns::read(df)?;
    let rows = (0..c.ids.len())
        .map(|i| WmsOrder {
            stage: c.stages[i],
            track: c.track[i],
            last_change_at: c.changed[i],
            total_kop: c.total[i],
        })
        .collect();
    Keyed::new("wms_orders", df, c.ids, rows)
}

/// The `crm_orders` frame's columns, read and validated.
pub(super) struct CrmColumns<'a> {
    pub(super) ids: Vec<&'a str>,
    pub(super) status: Vec<&'a str>,
    pub(super) shipped: Vec<bool>,
    pub(super) track: Vec<Option<&'a str>>,
    pub(super) total: Vec<i64>,
}

impl<'a> CrmColumns<'a> {
    /// Reads every documented column of `df` (`crm_orders`).
    pub(super) fn read(df: &'a DataFrame) -> Result<CrmColumns<'a>> {
        let input = Input::new(df, "crm_orders");
        Ok(CrmColumns {
            ids: input.strings("order_id")?,
            status: input.strings("crm_status")?,
            shipped: input.bools("crm_shipped")?,
            track: input.opt_strings("track")?,
            total: input.ints("total_kop")?,
        })
    }

    /// Row `i` as an order.
    pub(super) fn order(&self, i: usize) -> CrmOrder<'a> {
        CrmOrder {
            status: self.status[i],
            shipped: self.shipped[i],
            track: self.track[i],
            total_kop: self.total[i],
        }
    }
}

fn read_crm(df: &DataFrame) -> Result<Keyed<'_, CrmOrder<'_>>> {
    let c = CrmColumns::read(df)?;
    let rows = (0..c.ids.len()).map(|i| c.order(i)).collect();
    Keyed::new("crm_orders", df, c.ids, rows)
}

/// Goods lines of one order: (sku, quantity) per SKU, repeated lines
/// summed, sorted by SKU.
pub(super) type GoodsLines<'a> = [(&'a str, i64)];

/// Every order's goods, grouped by order id (ascending) in one flat table.
pub(super) struct Goods<'a> {
    pub(super) orders: Vec<&'a str>,
    /// `lines[bounds[i]..bounds[i + 1]]` are the goods of `orders[i]`.
    pub(super) bounds: Vec<usize>,
    pub(super) lines: Vec<(&'a str, i64)>,
}

impl<'a> Goods<'a> {
    /// The first position whose order id is not below `id`.
    pub(super) fn lower_bound(&self, id: &str) -> usize {
        self.orders.partition_point(|o| *o < id)
    }

    /// A walk over the orders at positions `from..to`.
    pub(super) fn cursor(&self, (from, to): (usize, usize)) -> GoodsCursor<'_, 'a> {
        GoodsCursor {
            goods: self,
            pos: from,
            end: to,
        }
    }
}

/// A walk in id order over a range of [`Goods`]' orders.
pub(super) struct GoodsCursor<'g, 'a> {
    pub(super) goods: &'g Goods<'a>,
    pub(super) pos: usize,
    pub(super) end: usize,
}

impl<'g, 'a> GoodsCursor<'g, 'a> {
    /// The goods of `id` if it has any (then advances; ids must be asked in
    /// ascending order).
    pub(super) fn take(&mut self, id: &str) -> Option<&'g GoodsLines<'a>> {
        let orders = &self.goods.orders;
        while self.pos < self.end && orders[self.pos] < id {
            self.pos += 1;
        }
        if self.pos >= self.end || orders[self.pos] != id {
            return None;
        }
        let bounds = &self.goods.bounds;
        let (from, to) = (bounds[self.pos], bounds[self.pos + 1]);
        self.pos += 1;
        Some(&self.goods.lines[from..to])
    }
}

fn read_goods<'a>(df: &'a DataFrame, frame_name: &'static str) -> Result<Goods<'a>> {
    let input = Input::new(df, frame_name);
    let ids = input.strings("order_id")?;
    let skus = input.strings("sku")?;
    let qty = input.ints("quantity")?;
    // Row order grouped by order id; a stable sort keeps each order's lines
    // in row order, so repeated lines are summed in the same order as before.
    let mut rows: Vec<usize> = (0..ids.len()).collect();
    if !ids.windows(2).all(|w| w[0] <= w[1]) {
        rows.sort_by(|&a, &b| ids[a].cmp(ids[b]));
    }
    let mut goods = Goods {
        orders: Vec::new(),
        bounds: vec![0],
        lines: Vec::with_capacity(ids.len()),
    };
    let mut run: Vec<(&str, i64)> = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let id = ids[rows[start]];
        let end = rows[start..]
            .iter()
            .position(|&r| ids[r] != id)
            .map_or(rows.len(), |n| start + n);
        run.clear();
        run.extend(rows[start..end].iter().map(|&r| (skus[r], qty[r])));
        run.sort_by(|a, b| a.0.cmp(b.0));
        let run_start = goods.lines.len();
        for &(sku, q) in &run {
            match goods.lines[run_start..].last_mut() {
                Some(last) if last.0 == sku => {
                    last.1 = last.1.checked_add(q).ok_or(ReconcileError::Overflow {
                        frame: frame_name,
                        column: "quantity",
                    })?;
                }
                _ => goods.lines.push((sku, q)),
            }
        }
        goods.orders.push(id);
        goods.bounds.push(goods.lines.len());
        start = end;
    }
    Ok(goods)
}

/// The validated inputs, each in id order.
pub(super) struct Sources<'a> {
    pub(super) shop: Keyed<'a, ShopOrder>,
    pub(super) wms: Keyed<'a, WmsOrder<'a>>,
    pub(super) crm: Keyed<'a, CrmOrder<'a>>,
    pub(super) shop_goods: Goods<'a>,
    pub(super) wms_goods: Goods<'a>,
}

impl<'a> Sources<'a> {
    /// Reads the five frames (on two threads when `parallel`); the first
    /// error in the order shop, shop goods, WMS, WMS goods, CRM is the one
    /// reported, as if they were read one after the other.
    pub(super) fn read(frames: [&'a DataFrame; 5], parallel: bool) -> Result<Sources<'a>> {
        let [shop_orders, shop_items, wms_orders, wms_items, crm_orders] = frames;
        let first = || (read_shop(shop_orders), read_goods(shop_items, "shop_items"));
        let second = || {
            (
                read_wms(wms_orders),
                read_goods(wms_items, "wms_items"),
                read_crm(crm_orders),
            )
        };
        let ((shop, shop_goods), (wms, wms_goods, crm)) =
            crate::reconcile::input::both(parallel, first, second);
        let (shop, shop_goods) = (shop?, shop_goods?);
        let (wms, wms_goods, crm) = (wms?, wms_goods?, crm?);
        Ok(Sources {
            shop,
            wms,
            crm,
            shop_goods,
            wms_goods,
        })
    }

    /// Splits the id space into at most `parts` ranges of about equal size
    /// (by the largest frame), each as positions in every source.
    pub(super) fn ranges(&self, parts: usize) -> Vec<Ranges> {
        let frames = [self.shop.len(), self.wms.len(), self.crm.len()];
        let largest = frames.iter().copied().max().unwrap_or(0);
        let parts = parts.clamp(1, largest.max(1));
        let pivot = |j: usize| -> &'a str {
            let at = largest * j / parts;
            if self.shop.len() == largest {
                self.shop.id_at(at)
            } else if self.wms.len() == largest {
                self.wms.id_at(at)
            } else {
                self.crm.id_at(at)
            }
        };
        let mut pivots: Vec<&str> = (1..parts).map(pivot).collect();
        pivots.dedup();
        let cut = |lower: &dyn Fn(&str) -> usize, len: usize| -> Vec<usize> {
            let mut cuts = vec![0];
            cuts.extend(pivots.iter().map(|p| lower(p)));
            cuts.push(len);
            cuts
        };
        let shop = cut(&|p| self.shop.lower_bound(p), self.shop.len());
        let wms = cut(&|p| self.wms.lower_bound(p), self.wms.len());
        let crm = cut(&|p| self.crm.lower_bound(p), self.crm.len());
        let shop_goods = cut(
            &|p| self.shop_goods.lower_bound(p),
            self.shop_goods.orders.len(),
        );
        let wms_goods = cut(
            &|p| self.wms_goods.lower_bound(p),
            self.wms_goods.orders.len(),
        );
        (0..=pivots.len())
            .map(|j| Ranges {
                shop: (shop[j], shop[j + 1]),
                wms: (wms[j], wms[j + 1]),
                crm: (crm[j], crm[j + 1]),
                shop_goods: (shop_goods[j], shop_goods[j + 1]),
                wms_goods: (wms_goods[j], wms_goods[j + 1]),
            })
            .collect()
    }
}

/// One range of order ids, as positions `(from, to)` in each source.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ranges {
    pub(super) shop: (usize, usize),
    pub(super) wms: (usize, usize),
    pub(super) crm: (usize, usize),
    pub(super) shop_goods: (usize, usize),
    pub(super) wms_goods: (usize, usize),
}
