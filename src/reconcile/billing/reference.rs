//! The implementation before the hash-map/builder rewrite, kept as the
//! oracle that the rewrite must equal: its own line/order readers and merge
//! machinery, with the production tariff reader and per-line rules.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

// The tariff frame reader and the per-line rules are shared with the
// production code; the merge machinery below is the oracle's own.
use super::{
    add, check_balance, class, kind, read_tariffs, tariff_for, BillingContext, BillingResult,
    ClassTotals, Tariffs, LINE_COLUMNS,
};
use crate::reconcile::input::{frame, Input, ReconcileError, Result};

#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    id: i64,
    wms_order_id: Option<i64>,
    foreign_order_id: Option<&'a str>,
    kind: i64,
    date: i64,
    amount_kop: i64,
    comment: &'a str,
}

impl Line<'_> {
    /// The order the line names: its foreign order id, unless that is blank.
    fn order(&self) -> Option<&str> {
        match self.foreign_order_id {
            Some(id) if !id.trim().is_empty() => Some(id.trim()),
            _ => None,
        }
    }

    /// A charge takes money: its amount is negative.
    fn is_charge(&self) -> bool {
        self.amount_kop.is_negative()
    }

    /// A charge for assembling an order.
    fn is_assembly_charge(&self) -> bool {
        matches!((self.kind, self.is_charge()), (kind::ASSEMBLY, true))
    }
}

#[derive(Debug, Clone, Copy)]
struct ShopOrder<'a> {
    status: &'a str,
    cancelled_before_picking: bool,
    shipped_at: Option<i64>,
    delivery_type: Option<i64>,
}

fn read_lines(df: &DataFrame) -> Result<Vec<Line<'_>>> {
    let input = Input::new(df, "lines");
    let ids = input.ints("id")?;
    let wms_ids = input.opt_ints("wms_order_id")?;
    let foreign = input.opt_strings("foreign_order_id")?;
    let kinds = input.ints("kind")?;
    let dates = input.ints("date")?;
    let amounts = input.ints("amount_kop")?;
    let comments = input.opt_strings("comment")?;
    let mut lines: Vec<Line<'_>> = (0..ids.len())
        .map(|i| Line {
            id: ids[i],
            wms_order_id: wms_ids[i],
            foreign_order_id: foreign[i],
            kind: kinds[i],
            date: dates[i],
            amount_kop: amounts[i],
            comment: comments[i].unwrap_or(""),
        })
        .collect();
    super::in_id_order(&mut lines, |l| l.id)?;
    Ok(lines)
}

fn read_orders(df: &DataFrame) -> Result<BTreeMap<&str, ShopOrder<'_>>> {
    let super::OrderColumns {
        ids,
        status,
        before_picking,
        shipped,
        delivery,
    } = super::OrderColumns::read(df)?;
    let mut orders = BTreeMap::new();
    for (i, id) in ids.into_iter().enumerate() {
        let order = ShopOrder {
            status: status[i],
            cancelled_before_picking: before_picking[i],
            shipped_at: shipped[i],
            delivery_type: delivery[i],
        };
        if orders.insert(id, order).is_some() {
            return Err(ReconcileError::DuplicateKey {
                frame: "shop_orders",
                column: "order_id",
                key: id.to_owned(),
            });
        }
    }
    Ok(orders)
}

/// Ids of assembly charges after the first (by date, then id) for each order.
fn duplicate_assembly_charges(lines: &[Line<'_>]) -> BTreeSet<i64> {
    let mut by_order: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.is_assembly_charge()) {
        if let Some(order) = line.order() {
            by_order
                .entry(order)
                .or_default()
                .push((line.date, line.id));
        }
    }
    by_order
        .into_values()
        .flat_map(|mut charges| {
            charges.sort_unstable();
            charges.into_iter().skip(1).map(|(_, id)| id)
        })
        .collect()
}

/// One line's verdict.
struct LineVerdict {
    classes: Vec<&'static str>,
    expected_kop: Option<i64>,
    difference_kop: Option<i64>,
}

fn classify_line(
    line: &Line<'_>,
    order: Option<&ShopOrder<'_>>,
    tariffs: &Tariffs,
    duplicates: &BTreeSet<i64>,
) -> LineVerdict {
    let mut classes = Vec::new();
    let unknown = match line.order() {
        Some(_) => order.is_none(),
        None => line.is_assembly_charge(),
    };
    if unknown {
        classes.push(class::CHARGE_FOR_UNKNOWN_ORDER);
    }
    if duplicates.contains(&line.id) {
        classes.push(class::DUPLICATE_CHARGE);
    }
    if line.is_charge() && order.is_some_and(|o| o.cancelled_before_picking) {
        classes.push(class::CHARGE_FOR_CANCELLED_ORDER);
    }
    let tariff = tariff_for(tariffs, line.kind, order.and_then(|o| o.delivery_type));
    let difference_kop = tariff.map(|t| {
        line.amount_kop
            .saturating_abs()
            .saturating_sub(t.expected_kop)
    });
    if let (Some(t), Some(diff)) = (tariff, difference_kop) {
        if diff.unsigned_abs() > t.tolerance_kop.unsigned_abs() {
            classes.push(class::AMOUNT_OFF_TARIFF);
        }
    }
    if classes.is_empty() {
        classes.push(class::OK);
    }
    classes.sort_unstable();
    LineVerdict {
        classes,
        expected_kop: tariff.map(|t| t.expected_kop),
        difference_kop,
    }
}

/// Output columns of the line frame under construction.
#[derive(Default)]
struct LineColumns {
    id: Vec<i64>,
    wms_order_id: Vec<Option<i64>>,
    foreign_order_id: Vec<Option<String>>,
    kind: Vec<i64>,
    date: Vec<i64>,
    amount_kop: Vec<i64>,
    comment: Vec<String>,
    order_status: Vec<Option<String>>,
    expected_kop: Vec<Option<i64>>,
    difference_kop: Vec<Option<i64>>,
    class: Vec<String>,
}

impl LineColumns {
    fn push(&mut self, line: &Line<'_>, order: Option<&ShopOrder<'_>>, verdict: &LineVerdict) {
        self.id.push(line.id);
        self.wms_order_id.push(line.wms_order_id);
        self.foreign_order_id
            .push(line.foreign_order_id.map(str::to_owned));
        self.kind.push(line.kind);
        self.date.push(line.date);
        self.amount_kop.push(line.amount_kop);
        self.comment.push(line.comment.to_owned());
        self.order_status.push(order.map(|o| o.status.to_owned()));
        self.expected_kop.push(verdict.expected_kop);
        self.difference_kop.push(verdict.difference_kop);
        self.class.push(verdict.classes.join(","));
    }

    fn finish(self) -> Result<DataFrame> {
        let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10] = LINE_COLUMNS;
        let height = self.id.len();
        let columns = vec![
            Series::new(c0.into(), &self.id).into(),
            Series::new(c1.into(), &self.wms_order_id).into(),
            Series::new(c2.into(), &self.foreign_order_id).into(),
            Series::new(c3.into(), &self.kind).into(),
            Series::new(c4.into(), &self.date).into(),
            Series::new(c5.into(), &self.amount_kop).into(),
            Series::new(c6.into(), &self.comment).into(),
            Series::new(c7.into(), &self.order_status).into(),
            Series::new(c8.into(), &self.expected_kop).into(),
            Series::new(c9.into(), &self.difference_kop).into(),
            Series::new(c10.into(), &self.class).into(),
        ];
        frame(height, columns, "building the billing lines frame")
    }
}

/// Orders shipped in `[from, to)` with no assembly charge among the lines.
fn missing_charges(
    orders: &BTreeMap<&str, ShopOrder<'_>>,
    lines: &[Line<'_>],
    context: &BillingContext,
) -> Result<DataFrame> {
    let charged: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l.is_assembly_charge())
        .filter_map(|l| l.order())
        .collect();
    let missing: Vec<(&str, &ShopOrder<'_>)> = orders
        .iter()
        .filter(|(id, o)| {
            let in_period = o
                .shipped_at
                .is_some_and(|t| context.from <= t && t < context.to);
            in_period && !charged.contains(**id)
        })
        .map(|(id, o)| (*id, o))
        .collect();
    let rows: Vec<_> = missing
        .iter()
        .map(|(id, o)| (*id, o.status, o.shipped_at, o.delivery_type))
        .collect();
    super::missing_charges_frame(&rows)
}

fn add_to_class(totals: &mut ClassTotals, name: &'static str, kop: i64) -> Result<()> {
    let entry = totals.entry(name).or_insert((0, 0));
    entry.0 += 1;
    entry.1 = add(entry.1, kop, "lines", "amount_kop")?;
    Ok(())
}

/// Classifies a period's billing lines (see the module docs).
///
/// Inputs:
/// - `lines`: `id: Int64, wms_order_id: Int64?, foreign_order_id: String?,
///   kind: Int64, date: Int64 (unix s), amount_kop: Int64 (negative = charge),
///   comment: String` (ids unique; a null comment reads as empty, a blank
///   `foreign_order_id` as none)
/// - `shop_orders`: `order_id, status: String, cancelled,
///   cancelled_before_picking: Boolean, shipped_at: Int64?, delivery_type: Int64?`
/// - `tariffs`: `kind: Int64, delivery_type: Int64? (null = any),
///   expected_kop, tolerance_kop: Int64` (unique per (kind, delivery_type))
pub fn classify_billing(
    lines: &DataFrame,
    shop_orders: &DataFrame,
    tariffs: &DataFrame,
    context: &BillingContext,
) -> Result<BillingResult> {
    let lines = read_lines(lines)?;
    let orders = read_orders(shop_orders)?;
    let tariffs = read_tariffs(tariffs)?;
    let duplicates = duplicate_assembly_charges(&lines);

    let mut columns = LineColumns::default();
    let mut by_kind: BTreeMap<i64, i64> = BTreeMap::new();
    let mut by_class = ClassTotals::new();
    let mut sum_kop = 0i64;
    for line in &lines {
        let order = line.order().and_then(|id| orders.get(id));
        let verdict = classify_line(line, order, &tariffs, &duplicates);
        for name in &verdict.classes {
            add_to_class(&mut by_class, name, line.amount_kop)?;
        }
        let kind_sum = by_kind.entry(line.kind).or_insert(0);
        *kind_sum = add(*kind_sum, line.amount_kop, "lines", "amount_kop")?;
        sum_kop = add(sum_kop, line.amount_kop, "lines", "amount_kop")?;
        columns.push(line, order, &verdict);
    }

    // Period-level classes: orders shipped without an assembly charge, and a
    // balance that does not add up (the gap: the change's when it has one,
    // else the closing balance's).
    let missing_charges = missing_charges(&orders, &lines, context)?;
    let without_charge = missing_charges.height();
    if without_charge != 0 {
        let count = i64::try_from(without_charge).unwrap_or(i64::MAX);
        by_class.insert(class::ORDER_WITHOUT_CHARGE, (count, 0));
    }
    let balance = check_balance(sum_kop, context)?;
    let gap = match balance.gap_change_kop {
        0 => balance.gap_balance_kop.unwrap_or(0),
        change => change,
    };
    if !balance.ok {
        by_class.insert(class::BALANCE_GAP, (1, gap));
    }
    Ok(BillingResult {
        lines: columns.finish()?,
        missing_charges,
        totals_by_kind: by_kind.into_iter().collect(),
        totals_by_class: by_class
            .into_iter()
            .map(|(name, (count, kop))| (name.to_owned(), count, kop))
            .collect(),
        balance,
    })
}
