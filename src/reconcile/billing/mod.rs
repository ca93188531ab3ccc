//! Billing reconciliation (finance's view; nothing is pushed).
//!
//! The WMS's billing lines for a period are checked against the shop's
//! orders and the expected tariffs, and their sum against the reported
//! balance. Money is `i64` kopecks end to end, summed with overflow checks;
//! no float ever touches an amount.
//!
//! Every billing line appears exactly once in [`BillingResult::lines`], so
//! sums over that frame stay exact. A line with several classes carries them
//! comma-joined in alphabetical order (e.g. `charge_for_cancelled_order,duplicate_charge`);
//! [`BillingResult::totals_by_class`] counts such a line under each class.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::input::{frame, polars_ctx, Input, ReconcileError, Result};

/// A billing class; `as_str()` is the name in the `class` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BillingClass {
    /// The line's `foreign_order_id` is unknown to the shop (or an assembly
    /// charge names no order at all).
    ChargeForUnknownOrder,
    /// An order shipped in the period has no assembly charge.
    OrderWithoutCharge,
    /// A second (third, …) assembly charge for one order.
    DuplicateCharge,
    /// A charge for an order cancelled before picking.
    ChargeForCancelledOrder,
    /// |amount| differs from the tariff beyond its tolerance.
    AmountOffTariff,
    /// Σ amount ≠ change of balance, or previous closing + change ≠ current balance.
    BalanceGap,
    /// A line without `type` whose comment names no documented operation:
    /// listed, and left out of the tariff and duplicate checks.
    UntypedCharge,
    /// No discrepancy.
    Ok,
}

impl BillingClass {
    /// Every class, in declaration order.
    pub const ALL: [BillingClass; 8] = [
        BillingClass::ChargeForUnknownOrder,
        BillingClass::OrderWithoutCharge,
        BillingClass::DuplicateCharge,
        BillingClass::ChargeForCancelledOrder,
        BillingClass::AmountOffTariff,
        BillingClass::BalanceGap,
        BillingClass::UntypedCharge,
        BillingClass::Ok,
    ];

    /// The class name as written in the `class` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            BillingClass::ChargeForUnknownOrder => "charge_for_unknown_order",
            BillingClass::OrderWithoutCharge => "order_without_charge",
            BillingClass::DuplicateCharge => "duplicate_charge",
            BillingClass::ChargeForCancelledOrder => "charge_for_cancelled_order",
            BillingClass::AmountOffTariff => "amount_off_tariff",
            BillingClass::BalanceGap => "balance_gap",
            BillingClass::UntypedCharge => "untyped_charge",
            BillingClass::Ok => "ok",
        }
    }
}

/// Billing class names.
pub mod class {
    use super::BillingClass;

    /// See [`BillingClass::ChargeForUnknownOrder`].
    pub const CHARGE_FOR_UNKNOWN_ORDER: &str = BillingClass::ChargeForUnknownOrder.as_str();
    /// See [`BillingClass::OrderWithoutCharge`].
    pub const ORDER_WITHOUT_CHARGE: &str = BillingClass::OrderWithoutCharge.as_str();
    /// See [`BillingClass::DuplicateCharge`].
    pub const DUPLICATE_CHARGE: &str = BillingClass::DuplicateCharge.as_str();
    /// See [`BillingClass::ChargeForCancelledOrder`].
    pub const CHARGE_FOR_CANCELLED_ORDER: &str = BillingClass::ChargeForCancelledOrder.as_str();
    /// See [`BillingClass::AmountOffTariff`].
    pub const AMOUNT_OFF_TARIFF: &str = BillingClass::AmountOffTariff.as_str();
    /// See [`BillingClass::BalanceGap`].
    pub const BALANCE_GAP: &str = BillingClass::BalanceGap.as_str();
    /// See [`BillingClass::UntypedCharge`].
    pub const UNTYPED_CHARGE: &str = BillingClass::UntypedCharge.as_str();
    /// See [`BillingClass::Ok`].
    pub const OK: &str = BillingClass::Ok.as_str();
}

/// Billing line kinds (the WMS operation type).
pub mod kind {
    /// Order assembly (the per-order charge).
    pub const ASSEMBLY: i64 = 0;
    /// Balance top-up.
    pub const TOP_UP: i64 = 1;
    /// Delivery.
    pub const DELIVERY: i64 = 2;
    /// Anything else.
    pub const OTHER: i64 = 9;
    /// No `type`, and a comment naming no documented operation (the
    /// IMSKLAD connector maps such lines to this value).
    pub const UNTYPED: i64 = -1;
}

/// Output column names of [`BillingResult::lines`].
pub const LINE_COLUMNS: [&str; 11] = [
    "id",
    "wms_order_id",
    "foreign_order_id",
    "kind",
    "date",
    "amount_kop",
    "comment",
    "order_status",
    "expected_kop",
    "difference_kop",
    "class",
];

/// Output column names of [`BillingResult::missing_charges`].
pub const MISSING_CHARGE_COLUMNS: [&str; 5] =
    ["order_id", "status", "shipped_at", "delivery_type", "class"];

/// The billing period and the balance figures reported for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingContext {
    /// Period start, unix seconds (inclusive).
    pub from: i64,
    /// Period end, unix seconds (exclusive).
    pub to: i64,
    /// Balance at the end of the period, kopecks.
    pub current_balance_kop: i64,
    /// Change of balance over the period as reported by the WMS, kopecks.
    pub change_of_balance_kop: i64,
    /// The previous run's closing balance, when known.
    pub previous_closing_kop: Option<i64>,
}

/// The balance arithmetic of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceCheck {
    /// Σ amount_kop over the period's lines.
    pub sum_kop: i64,
    /// The reported change of balance.
    pub change_of_balance_kop: i64,
    /// The previous run's closing balance, when known.
    pub previous_closing_kop: Option<i64>,
    /// The reported current balance.
    pub current_balance_kop: i64,
    /// sum − change (0 when consistent).
    pub gap_change_kop: i64,
    /// previous + change − current (0 when consistent; None without a previous balance).
    pub gap_balance_kop: Option<i64>,
    /// Both gaps are zero.
    pub ok: bool,
}

/// Everything [`classify_billing`] finds.
#[derive(Debug, Clone)]
pub struct BillingResult {
    /// Every line, sorted by id, with [`LINE_COLUMNS`].
    pub lines: DataFrame,
    /// Orders shipped in the period without an assembly charge, sorted by
    /// order id, with [`MISSING_CHARGE_COLUMNS`].
    pub missing_charges: DataFrame,
    /// (kind, Σ amount_kop), sorted by kind.
    pub totals_by_kind: Vec<(i64, i64)>,
    /// (class, count, Σ amount_kop), sorted by class, classes with a count only.
    /// `order_without_charge` counts orders (0 kop); `balance_gap` counts 1 and
    /// carries the change gap (or, when that is 0, the balance gap).
    pub totals_by_class: Vec<(String, i64, i64)>,
    /// The balance check.
    pub balance: BalanceCheck,
}

#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    /// Its row in the input frame.
    row: IdxSize,
    id: i64,
    foreign_order_id: Option<&'a str>,
    kind: i64,
    date: i64,
    amount_kop: i64,
}

impl Line<'_> {
    /// The order the line refers to (blank ids mean none).
    fn order(&self) -> Option<&str> {
        self.foreign_order_id
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    fn is_charge(&self) -> bool {
        self.amount_kop < 0
    }

    fn is_assembly_charge(&self) -> bool {
        self.kind == kind::ASSEMBLY && self.is_charge()
    }
}

#[derive(Debug, Clone, Copy)]
struct ShopOrder<'a> {
    /// Its row in the input frame.
    row: IdxSize,
    status: &'a str,
    cancelled_before_picking: bool,
    shipped_at: Option<i64>,
    delivery_type: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Tariff {
    expected_kop: i64,
    tolerance_kop: i64,
}

/// Tariffs by (kind, delivery_type); `None` delivery type = any.
type Tariffs = BTreeMap<(i64, Option<i64>), Tariff>;

fn read_lines(df: &DataFrame) -> Result<Vec<Line<'_>>> {
    let input = Input::new(df, "lines");
    let ids = input.ints("id")?;
    // Validated here; the output takes these columns from the frame itself.
    input.opt_ints("wms_order_id")?;
    let foreign = input.opt_strings("foreign_order_id")?;
    let kinds = input.ints("kind")?;
    let dates = input.ints("date")?;
    let amounts = input.ints("amount_kop")?;
    input.opt_strings("comment")?;
    let mut lines: Vec<Line<'_>> = (0..ids.len())
        .map(|i| Line {
            row: i as IdxSize,
            id: ids[i],
            foreign_order_id: foreign[i],
            kind: kinds[i],
            date: dates[i],
            amount_kop: amounts[i],
        })
        .collect();
    in_id_order(&mut lines, |l| l.id)?;
    Ok(lines)
}

/// Sorts billing `lines` by `id`; a repeated id is an input error.
pub(super) fn in_id_order<T>(lines: &mut [T], id: impl Fn(&T) -> i64) -> Result<()> {
    lines.sort_by_key(&id);
    match lines.windows(2).find(|w| id(&w[0]) == id(&w[1])) {
        Some(w) => Err(ReconcileError::DuplicateKey {
            frame: "lines",
            column: "id",
            key: id(&w[0]).to_string(),
        }),
        None => Ok(()),
    }
}

/// The shop's orders: looked up by id (hash map) and listed in id order.
struct Orders<'a> {
    /// (id, order), sorted by id.
    sorted: Vec<(&'a str, ShopOrder<'a>)>,
    /// id → position in `sorted` (Polars' fast hasher: ids are not attacker-chosen keys
    /// of a long-lived map, and the lookup is the hot loop).
    index: PlHashMap<&'a str, usize>,
}

impl<'a> Orders<'a> {
    /// The order `id`. `hint` is the position of the previous look-up:
    /// billing lines come in date order and orders are numbered in date order,
    /// so the next line's order is usually the same one or the next one — two
    /// comparisons in memory already in cache instead of a hash look-up.
    fn get(&self, id: &str, hint: &mut usize) -> Option<&ShopOrder<'a>> {
        let i = self.position(id, hint)?;
        Some(&self.sorted[i].1)
    }

    /// The position of order `id` in `sorted` (see [`Orders::get`]).
    fn position(&self, id: &str, hint: &mut usize) -> Option<usize> {
        for i in [*hint, *hint + 1] {
            if let Some((key, _)) = self.sorted.get(i) {
                if *key == id {
                    *hint = i;
                    return Some(i);
                }
            }
        }
        let &i = self.index.get(id)?;
        *hint = i;
        Some(i)
    }
}

/// The `shop_orders` frame's columns, read and validated.
pub(super) struct OrderColumns<'a> {
    pub(super) ids: Vec<&'a str>,
    pub(super) status: Vec<&'a str>,
    pub(super) before_picking: Vec<bool>,
    pub(super) shipped: Vec<Option<i64>>,
    pub(super) delivery: Vec<Option<i64>>,
}

impl<'a> OrderColumns<'a> {
    /// Reads every documented column of `df` (`shop_orders`).
    pub(super) fn read(df: &'a DataFrame) -> Result<OrderColumns<'a>> {
        let input = Input::new(df, "shop_orders");
        let ids = input.strings("order_id")?;
        let status = input.strings("status")?;
        // Validated for the documented schema; the rules use the finer flag.
        input.bools("cancelled")?;
        Ok(OrderColumns {
            ids,
            status,
            before_picking: input.bools("cancelled_before_picking")?,
            shipped: input.opt_ints("shipped_at")?,
            delivery: input.opt_ints("delivery_type")?,
        })
    }
}

fn read_orders(df: &DataFrame) -> Result<Orders<'_>> {
    let OrderColumns {
        ids,
        status,
        before_picking,
        shipped,
        delivery,
    } = OrderColumns::read(df)?;
    let mut sorted: Vec<(&str, ShopOrder<'_>)> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let order = ShopOrder {
                row: i as IdxSize,
                status: status[i],
                cancelled_before_picking: before_picking[i],
                shipped_at: shipped[i],
                delivery_type: delivery[i],
            };
            (id, order)
        })
        .collect();
    if !sorted.windows(2).all(|w| w[0].0 < w[1].0) {
        // Stable, so that the first of repeated ids is found in row order below.
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(crate::reconcile::input::repeated_order_id(
                "shop_orders",
                &ids,
            ));
        }
    }
    let index = sorted
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    Ok(Orders { sorted, index })
}

fn read_tariffs(df: &DataFrame) -> Result<Tariffs> {
    let input = Input::new(df, "tariffs");
    let kinds = input.ints("kind")?;
    let delivery = input.opt_ints("delivery_type")?;
    let expected = input.ints("expected_kop")?;
    let tolerance = input.ints("tolerance_kop")?;
    let mut tariffs = Tariffs::new();
    for i in 0..kinds.len() {
        let key = (kinds[i], delivery[i]);
        let tariff = Tariff {
            expected_kop: expected[i],
            tolerance_kop: tolerance[i],
        };
        if tariffs.insert(key, tariff).is_some() {
            let any = "any".to_owned();
            let dt = delivery[i].map_or(any, |d| d.to_string());
            return Err(ReconcileError::DuplicateKey {
                frame: "tariffs",
                column: "kind, delivery_type",
                key: format!("{}, {dt}", kinds[i]),
            });
        }
    }
    Ok(tariffs)
}

/// The tariff for (kind, delivery type), falling back to (kind, any).
fn tariff_for(tariffs: &Tariffs, kind: i64, delivery_type: Option<i64>) -> Option<Tariff> {
    delivery_type
        .and_then(|d| tariffs.get(&(kind, Some(d))))
        .or_else(|| tariffs.get(&(kind, None)))
        .copied()
}

/// For each line (in id order): whether it is an assembly charge after the
/// first (by date, then id) for its order. Two linear passes: the first
/// charge of each order (by its position among the shop's orders, or by id
/// for an order the shop does not know), then every other charge.
fn duplicate_assembly_charges(lines: &[Line<'_>], orders: &Orders<'_>) -> Vec<bool> {
    const OTHER: usize = usize::MAX;
    let mut first_known: Vec<Option<(i64, i64)>> = vec![None; orders.sorted.len()];
    let mut first_other: PlHashMap<&str, (i64, i64)> = PlHashMap::new();
    // (line, order position or OTHER) of every assembly charge naming an order.
    let mut charges: Vec<(usize, usize)> = Vec::new();
    let mut hint = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(order) = line.order().filter(|_| line.is_assembly_charge()) else {
            continue;
        };
        let key = (line.date, line.id);
        let slot = match orders.position(order, &mut hint) {
            Some(p) => {
                charges.push((i, p));
                first_known[p].get_or_insert(key)
            }
            None => {
                charges.push((i, OTHER));
                first_other.entry(order).or_insert(key)
            }
        };
        if key < *slot {
            *slot = key;
        }
    }
    let mut duplicate = vec![false; lines.len()];
    for (i, p) in charges {
        let line = &lines[i];
        let first = if p == OTHER {
            line.order().and_then(|o| first_other.get(o)).copied()
        } else {
            first_known[p]
        };
        duplicate[i] = first != Some((line.date, line.id));
    }
    duplicate
}

/// One line's verdict.
struct LineVerdict {
    /// The first `n_classes` entries, sorted.
    classes: [&'static str; 4],
    n_classes: usize,
    expected_kop: Option<i64>,
    difference_kop: Option<i64>,
}

impl LineVerdict {
    fn classes(&self) -> &[&'static str] {
        &self.classes[..self.n_classes]
    }
}

fn classify_line(
    line: &Line<'_>,
    order: Option<&ShopOrder<'_>>,
    tariffs: &Tariffs,
    duplicate: bool,
) -> LineVerdict {
    let mut classes = [class::OK; 4];
    let mut n = 0;
    let mut push = |name: &'static str| {
        classes[n] = name;
        n += 1;
    };
    let unknown = match line.order() {
        Some(_) => order.is_none(),
        None => line.is_assembly_charge(),
    };
    if unknown {
        push(class::CHARGE_FOR_UNKNOWN_ORDER);
    }
    if duplicate {
        push(class::DUPLICATE_CHARGE);
    }
    if line.is_charge() && order.is_some_and(|o| o.cancelled_before_picking) {
        push(class::CHARGE_FOR_CANCELLED_ORDER);
    }
    if line.kind == kind::UNTYPED {
        push(class::UNTYPED_CHARGE);
    }
    // An untyped line has no tariff (no tariff names type -1).
    let tariff = tariff_for(tariffs, line.kind, order.and_then(|o| o.delivery_type));
    let difference_kop = tariff.map(|t| {
        line.amount_kop
            .saturating_abs()
            .saturating_sub(t.expected_kop)
    });
    if let (Some(t), Some(diff)) = (tariff, difference_kop) {
        if diff.unsigned_abs() > t.tolerance_kop.unsigned_abs() {
            push(class::AMOUNT_OFF_TARIFF);
        }
    }
    if n == 0 {
        // `classes` starts filled with `ok`.
        n = 1;
    }
    classes[..n].sort_unstable();
    LineVerdict {
        classes,
        n_classes: n,
        expected_kop: tariff.map(|t| t.expected_kop),
        difference_kop,
    }
}

/// Adds with an overflow error naming the summed column.
fn add(sum: i64, value: i64, frame: &'static str, column: &'static str) -> Result<i64> {
    sum.checked_add(value)
        .ok_or(ReconcileError::Overflow { frame, column })
}

/// Checks Σ amount against the reported change and balances.
pub fn check_balance(sum_kop: i64, context: &BillingContext) -> Result<BalanceCheck> {
    let overflow = |column| ReconcileError::Overflow {
        frame: "context",
        column,
    };
    let gap_change_kop = sum_kop
        .checked_sub(context.change_of_balance_kop)
        .ok_or_else(|| overflow("change_of_balance_kop"))?;
    let gap_balance_kop = match context.previous_closing_kop {
        Some(previous) => Some(
            previous
                .checked_add(context.change_of_balance_kop)
                .and_then(|expected| expected.checked_sub(context.current_balance_kop))
                .ok_or_else(|| overflow("current_balance_kop"))?,
        ),
        None => None,
    };
    Ok(BalanceCheck {
        sum_kop,
        change_of_balance_kop: context.change_of_balance_kop,
        previous_closing_kop: context.previous_closing_kop,
        current_balance_kop: context.current_balance_kop,
        gap_change_kop,
        gap_balance_kop,
        ok: gap_change_kop == 0 && gap_balance_kop.unwrap_or(0) == 0,
    })
}

/// The classes a line can have, in the order of their bits in a class set.
const LINE_CLASSES: [&str; 6] = [
    class::AMOUNT_OFF_TARIFF,
    class::CHARGE_FOR_CANCELLED_ORDER,
    class::CHARGE_FOR_UNKNOWN_ORDER,
    class::DUPLICATE_CHARGE,
    class::OK,
    class::UNTYPED_CHARGE,
];

/// The bit of a line class in a class set.
fn class_bit(name: &str) -> usize {
    // Every name `classify_line` gives is listed (see the tests).
    LINE_CLASSES.iter().position(|c| *c == name).unwrap_or(0)
}

/// An absent order (a null order status).
const NO_ROW: IdxSize = IdxSize::MAX;

/// The line frame under construction: the computed columns straight into
/// Polars builders, the class column as indices into the class sets met so
/// far (each joined once), and the order of each line by its row; the input
/// columns are taken from the frames at the end.
struct LineColumns {
    order_rows: Vec<IdxSize>,
    expected_kop: PrimitiveChunkedBuilder<Int64Type>,
    difference_kop: PrimitiveChunkedBuilder<Int64Type>,
    class: Vec<IdxSize>,
    /// Index into `class_names` of each class set (by its bits), once met.
    sets: [Option<IdxSize>; 1 << LINE_CLASSES.len()],
    class_names: Vec<String>,
}

impl LineColumns {
    fn with_capacity(n: usize) -> Self {
        let int = |name: &str| PrimitiveChunkedBuilder::<Int64Type>::new(name.into(), n);
        LineColumns {
            order_rows: Vec::with_capacity(n),
            expected_kop: int(LINE_COLUMNS[8]),
            difference_kop: int(LINE_COLUMNS[9]),
            class: Vec::with_capacity(n),
            sets: [None; 1 << LINE_CLASSES.len()],
            class_names: Vec::new(),
        }
    }

    fn push(&mut self, order: Option<&ShopOrder<'_>>, verdict: &LineVerdict) {
        self.order_rows.push(order.map_or(NO_ROW, |o| o.row));
        self.expected_kop.append_option(verdict.expected_kop);
        self.difference_kop.append_option(verdict.difference_kop);
        let bits = verdict
            .classes()
            .iter()
            .fold(0, |bits, name| bits | 1 << class_bit(name));
        let code = match self.sets[bits] {
            Some(code) => code,
            None => {
                // `classes()` is sorted: joined as before, e.g. `a,b`.
                let code = self.class_names.len() as IdxSize;
                self.class_names.push(verdict.classes().join(","));
                self.sets[bits] = Some(code);
                code
            }
        };
        self.class.push(code);
    }

    /// The frame, in line id order: `rows` are the input rows in that order
    /// (None when the input already is).
    fn finish(
        self,
        lines: &DataFrame,
        orders: &DataFrame,
        rows: Option<&IdxCa>,
    ) -> Result<DataFrame> {
        let height = self.class.len();
        let [c0, c1, c2, c3, c4, c5, c6, c7, _, _, c10] = LINE_COLUMNS;
        let int = DataType::Int64;
        let text = DataType::String;
        let from_lines = || -> Result<[Column; 7]> {
            let comment = passthrough(lines, c6, rows, &text)?;
            let comment = if comment.null_count() > 0 {
                // A null comment reads as empty.
                let ca = comment
                    .str()
                    .map_err(polars_ctx("reading the comment column"))?;
                let filled: StringChunked = ca.iter().map(|c| Some(c.unwrap_or(""))).collect();
                filled.with_name(c6.into()).into_column()
            } else {
                comment
            };
            Ok([
                passthrough(lines, c0, rows, &int)?,
                passthrough(lines, c1, rows, &int)?,
                passthrough(lines, c2, rows, &text)?,
                passthrough(lines, c3, rows, &int)?,
                passthrough(lines, c4, rows, &int)?,
                passthrough(lines, c5, rows, &int)?,
                comment,
            ])
        };
        let computed = || -> Result<[Column; 2]> {
            let order_rows = IdxCa::from_iter_options(
                "row".into(),
                self.order_rows.iter().map(|&r| (r != NO_ROW).then_some(r)),
            );
            let status = orders
                .column("status")
                .map_err(polars_ctx("reading the order status"))?;
            let status = if status.dtype() == &DataType::Null {
                Column::full_null(c7.into(), height, &text)
            } else {
                status
                    .take(&order_rows)
                    .map_err(polars_ctx("gathering the order status"))?
                    .with_name(c7.into())
            };
            let names = StringChunked::from_iter_values(
                c10.into(),
                self.class_names.iter().map(String::as_str),
            );
            let class = names
                .take(&IdxCa::from_vec("class".into(), self.class))
                .map_err(polars_ctx("building the class column"))?;
            Ok([status, class.into_column()])
        };
        let (taken, computed) =
            crate::reconcile::input::both(height >= PARALLEL_MIN_LINES, from_lines, computed);
        let [id, wms_order_id, foreign_order_id, kind, date, amount, comment] = taken?;
        let [order_status, class] = computed?;
        let columns = vec![
            id,
            wms_order_id,
            foreign_order_id,
            kind,
            date,
            amount,
            comment,
            order_status,
            self.expected_kop.finish().into_column(),
            self.difference_kop.finish().into_column(),
            class,
        ];
        frame(height, columns, "building the billing lines frame")
    }
}

/// Lines from which the output columns are built on two threads.
const PARALLEL_MIN_LINES: usize = 50_000;

/// Input column `name` of `df` as `dtype` (widened integers; an all-null
/// `Null` column gives nulls), at `rows` (None: as it is).
fn passthrough(
    df: &DataFrame,
    name: &'static str,
    rows: Option<&IdxCa>,
    dtype: &DataType,
) -> Result<Column> {
    let input = df
        .column(name)
        .map_err(polars_ctx("reading an input column"))?;
    let len = rows.map_or(input.len(), IdxCa::len);
    if input.dtype() == &DataType::Null {
        return Ok(Column::full_null(name.into(), len, dtype));
    }
    let typed = if input.dtype() == dtype {
        input.clone()
    } else {
        input
            .strict_cast(dtype)
            .map_err(polars_ctx("widening an input column"))?
    };
    match rows {
        Some(rows) => typed
            .take(rows)
            .map_err(polars_ctx("gathering an input column")),
        None => Ok(typed),
    }
}

/// The missing-charges frame, one row per order: (id, status, shipped at,
/// delivery type), each classed [`class::ORDER_WITHOUT_CHARGE`].
pub(super) fn missing_charges_frame(
    missing: &[(&str, &str, Option<i64>, Option<i64>)],
) -> Result<DataFrame> {
    let [c0, c1, c2, c3, c4] = MISSING_CHARGE_COLUMNS;
    let ids: Vec<&str> = missing.iter().map(|m| m.0).collect();
    let statuses: Vec<&str> = missing.iter().map(|m| m.1).collect();
    let shipped: Vec<Option<i64>> = missing.iter().map(|m| m.2).collect();
    let delivery: Vec<Option<i64>> = missing.iter().map(|m| m.3).collect();
    let columns = vec![
        Series::new(c0.into(), ids).into(),
        Series::new(c1.into(), statuses).into(),
        Series::new(c2.into(), shipped).into(),
        Series::new(c3.into(), delivery).into(),
        Series::new(c4.into(), vec![class::ORDER_WITHOUT_CHARGE; missing.len()]).into(),
    ];
    frame(missing.len(), columns, "building the missing charges frame")
}

/// Orders shipped in `[from, to)` with no assembly charge among the lines.
fn missing_charges(
    orders: &Orders<'_>,
    lines: &[Line<'_>],
    context: &BillingContext,
) -> Result<DataFrame> {
    // charged[i]: the i-th order (in id order) has an assembly charge.
    let mut charged = vec![false; orders.sorted.len()];
    let mut hint = 0;
    for line in lines.iter().filter(|l| l.is_assembly_charge()) {
        if line
            .order()
            .and_then(|id| orders.get(id, &mut hint))
            .is_some()
        {
            charged[hint] = true;
        }
    }
    let missing: Vec<(&str, &ShopOrder<'_>)> = orders
        .sorted
        .iter()
        .zip(&charged)
        .filter(|((_, o), &charged)| {
            let in_period = o
                .shipped_at
                .is_some_and(|t| context.from <= t && t < context.to);
            in_period && !charged
        })
        .map(|((id, o), _)| (*id, o))
        .collect();
    let rows: Vec<_> = missing
        .iter()
        .map(|(id, o)| (*id, o.status, o.shipped_at, o.delivery_type))
        .collect();
    missing_charges_frame(&rows)
}

/// (count, Σ kop) per class accumulated over lines.
type ClassTotals = BTreeMap<&'static str, (i64, i64)>;

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
    let (lines_frame, orders_frame) = (lines, shop_orders);
    let lines = read_lines(lines)?;
    let orders = read_orders(shop_orders)?;
    let tariffs = read_tariffs(tariffs)?;
    let duplicates = duplicate_assembly_charges(&lines, &orders);

    let mut columns = LineColumns::with_capacity(lines.len());
    // (kind, Σ kop) in the order kinds are met; there are a handful.
    let mut by_kind: Vec<(i64, i64)> = Vec::new();
    // (count, Σ kop) per line class, by its bit.
    let mut per_class = [(0i64, 0i64); LINE_CLASSES.len()];
    let mut sum_kop = 0i64;
    let mut hint = 0;
    for (line, &duplicate) in lines.iter().zip(&duplicates) {
        let order = line.order().and_then(|id| orders.get(id, &mut hint));
        let verdict = classify_line(line, order, &tariffs, duplicate);
        for name in verdict.classes() {
            let totals = &mut per_class[class_bit(name)];
            totals.0 += 1;
            totals.1 = add(totals.1, line.amount_kop, "lines", "amount_kop")?;
        }
        let at = match by_kind.iter().position(|(k, _)| *k == line.kind) {
            Some(at) => at,
            None => {
                by_kind.push((line.kind, 0));
                by_kind.len() - 1
            }
        };
        by_kind[at].1 = add(by_kind[at].1, line.amount_kop, "lines", "amount_kop")?;
        sum_kop = add(sum_kop, line.amount_kop, "lines", "amount_kop")?;
        columns.push(order, &verdict);
    }
    by_kind.sort_unstable();
    let mut by_class: ClassTotals = LINE_CLASSES
        .iter()
        .zip(per_class)
        .filter(|(_, (count, _))| *count > 0)
        .map(|(name, totals)| (*name, totals))
        .collect();
    let in_id_order = lines.iter().enumerate().all(|(i, l)| l.row as usize == i);
    let rows = (!in_id_order)
        .then(|| IdxCa::from_vec("row".into(), lines.iter().map(|l| l.row).collect()));

    let missing_charges = missing_charges(&orders, &lines, context)?;
    if missing_charges.height() > 0 {
        let count = i64::try_from(missing_charges.height()).unwrap_or(i64::MAX);
        by_class.insert(class::ORDER_WITHOUT_CHARGE, (count, 0));
    }
    let balance = check_balance(sum_kop, context)?;
    if !balance.ok {
        let gap = if balance.gap_change_kop != 0 {
            balance.gap_change_kop
        } else {
            balance.gap_balance_kop.unwrap_or(0)
        };
        by_class.insert(class::BALANCE_GAP, (1, gap));
    }
    Ok(BillingResult {
        lines: columns.finish(lines_frame, orders_frame, rows.as_ref())?,
        missing_charges,
        totals_by_kind: by_kind,
        totals_by_class: by_class
            .into_iter()
            .map(|(name, (count, kop))| (name.to_owned(), count, kop))
            .collect(),
        balance,
    })
}

/// The implementation before the hash-map/builder rewrite, kept verbatim
/// as the oracle that the rewrite must equal.
#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    #[test]
    fn an_untyped_line_is_listed_and_takes_part_in_no_tariff_or_duplicate_check() {
        let tariffs: Tariffs = [(
            (kind::ASSEMBLY, None),
            Tariff {
                expected_kop: 4_500,
                tolerance_kop: 0,
            },
        )]
        .into_iter()
        .collect();
        let line = Line {
            row: 0,
            id: 1,
            foreign_order_id: Some("A"),
            kind: kind::UNTYPED,
            date: 1,
            amount_kop: -9_999,
        };
        let order = ShopOrder {
            row: 0,
            status: "shipped",
            cancelled_before_picking: false,
            shipped_at: Some(1),
            delivery_type: None,
        };
        let v = classify_line(&line, Some(&order), &tariffs, false);
        assert_eq!(v.classes(), [class::UNTYPED_CHARGE]);
        assert_eq!(v.expected_kop, None);
        let twice = [line, Line { id: 2, ..line }];
        let orders = Orders {
            sorted: vec![("A", order)],
            index: [("A", 0)].into_iter().collect(),
        };
        assert_eq!(duplicate_assembly_charges(&twice, &orders), [false, false]);
    }

    use super::*;

    const FROM: i64 = 1_000;
    const TO: i64 = 2_000;

    type L = (i64, Option<&'static str>, i64, i64, i64);

    fn lines(rows: &[L]) -> DataFrame {
        df!(
            "id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "wms_order_id" => rows.iter().map(|r| r.1.map(|_| r.0 + 500)).collect::<Vec<_>>(),
            "foreign_order_id" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "kind" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "date" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "amount_kop" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            "comment" => rows.iter().map(|r| format!("line {}", r.0)).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn orders() -> DataFrame {
        df!(
            "order_id" => ["A", "B", "C", "D", "E"],
            "status" => ["shipped", "shipped", "cancelled", "shipped", "shipped"],
            "cancelled" => [false, false, true, false, false],
            "cancelled_before_picking" => [false, false, true, false, false],
            "shipped_at" => [Some(1_100i64), Some(1_999), None, Some(999), Some(1_000)],
            "delivery_type" => [Some(1i64), None, None, None, Some(2)],
        )
        .unwrap()
    }

    fn tariffs() -> DataFrame {
        df!(
            "kind" => [0i64, 0, 2],
            "delivery_type" => [None, Some(1i64), None],
            "expected_kop" => [5_000i64, 7_000, 30_000],
            "tolerance_kop" => [100i64, 0, 500],
        )
        .unwrap()
    }

    fn world_lines() -> DataFrame {
        lines(&[
            (1, Some("A"), kind::ASSEMBLY, 1_100, -7_000),
            (2, Some("C"), kind::ASSEMBLY, 1_100, -5_000),
            (3, Some("E"), kind::ASSEMBLY, 1_050, -5_000),
            (4, Some("E"), kind::ASSEMBLY, 1_200, -5_050),
            (5, Some("ZZZ"), kind::ASSEMBLY, 1_300, -5_000),
            (6, None, kind::TOP_UP, 1_300, 100_000),
            (7, Some("E"), kind::DELIVERY, 1_300, -31_000),
            (8, Some("A"), kind::DELIVERY, 1_300, -30_400),
            (9, None, kind::OTHER, 1_300, -1_234),
            (10, Some("C"), kind::ASSEMBLY, 1_400, -9_999),
            (11, Some(" "), kind::ASSEMBLY, 1_400, -5_000),
        ])
    }

    const WORLD_SUM: i64 =
        -7_000 - 5_000 - 5_000 - 5_050 - 5_000 + 100_000 - 31_000 - 30_400 - 1_234 - 9_999 - 5_000;

    fn context(change: i64) -> BillingContext {
        BillingContext {
            from: FROM,
            to: TO,
            current_balance_kop: 50_000 + change,
            change_of_balance_kop: change,
            previous_closing_kop: Some(50_000),
        }
    }

    fn column_strings(df: &DataFrame, column: &'static str) -> Vec<Option<String>> {
        Input::new(df, "out")
            .opt_strings(column)
            .unwrap()
            .into_iter()
            .map(|s| s.map(str::to_owned))
            .collect()
    }

    /// Random small periods: unknown, blank and padded order ids, repeated
    /// assembly charges, cancelled orders, tariffs with and without a delivery type.
    fn random_period(rng: &mut rand::rngs::StdRng) -> (DataFrame, DataFrame, DataFrame) {
        use rand::Rng;
        let n_orders = rng.random_range(0..15);
        let ids: Vec<String> = (0..n_orders).map(|i| format!("O{i:02}")).collect();
        let n = ids.len();
        let orders = df!(
            "order_id" => ids.clone(),
            "status" => vec!["completed"; n],
            "cancelled" => (0..n).map(|_| rng.random_bool(0.2)).collect::<Vec<_>>(),
            "cancelled_before_picking" => (0..n).map(|_| rng.random_bool(0.2)).collect::<Vec<_>>(),
            "shipped_at" => (0..n).map(|_| rng.random_bool(0.7).then(|| rng.random_range(FROM - 100..TO + 100))).collect::<Vec<_>>(),
            "delivery_type" => (0..n).map(|_| rng.random_bool(0.8).then(|| rng.random_range(1..4i64))).collect::<Vec<_>>(),
        )
        .unwrap();
        let n_lines = rng.random_range(0..40);
        let mut line_ids: Vec<i64> = (1..=n_lines).collect();
        use rand::seq::SliceRandom;
        line_ids.shuffle(rng);
        let foreign: Vec<Option<String>> = (0..n_lines)
            .map(|_| match rng.random_range(0..10) {
                0 => None,
                1 => Some("  ".into()),
                2 => Some("X99".into()),
                3 if n_orders > 0 => Some(format!(" O{:02} ", rng.random_range(0..n_orders))),
                _ if n_orders > 0 => Some(format!("O{:02}", rng.random_range(0..n_orders))),
                _ => None,
            })
            .collect();
        let k = n_lines as usize;
        let lines = df!(
            "id" => line_ids,
            "wms_order_id" => (0..k).map(|i| (i % 2 == 0).then_some(i as i64)).collect::<Vec<_>>(),
            "foreign_order_id" => foreign,
            "kind" => (0..k).map(|_| [kind::ASSEMBLY, kind::TOP_UP, kind::DELIVERY, kind::OTHER][rng.random_range(0..4)]).collect::<Vec<_>>(),
            "date" => (0..k).map(|_| rng.random_range(FROM..FROM + 5)).collect::<Vec<_>>(),
            "amount_kop" => (0..k).map(|_| rng.random_range(-12_000..3_000i64)).collect::<Vec<_>>(),
            "comment" => (0..k).map(|i| (i % 3 != 0).then(|| format!("c{i}"))).collect::<Vec<_>>(),
        )
        .unwrap();
        let tariffs = df!(
            "kind" => [kind::ASSEMBLY, kind::DELIVERY, kind::DELIVERY],
            "delivery_type" => [None, Some(1i64), None],
            "expected_kop" => [5_000i64, 10_000, 9_000],
            "tolerance_kop" => [rng.random_range(0..200i64), 100, -300],
        )
        .unwrap();
        (lines, orders, tariffs)
    }

    #[test]
    fn every_line_class_has_its_bit() {
        let mut sorted = LINE_CLASSES;
        sorted.sort_unstable();
        assert_eq!(sorted, LINE_CLASSES);
        for (bit, name) in LINE_CLASSES.iter().enumerate() {
            assert_eq!(class_bit(name), bit);
        }
    }

    #[test]
    fn rewrite_equals_the_reference_implementation() {
        use rand::SeedableRng;
        fn same(a: &BillingResult, b: &BillingResult) {
            assert!(a.lines.equals_missing(&b.lines), "{}\n{}", a.lines, b.lines);
            assert!(a.missing_charges.equals_missing(&b.missing_charges));
            assert_eq!(a.totals_by_kind, b.totals_by_kind);
            assert_eq!(a.totals_by_class, b.totals_by_class);
            assert_eq!(a.balance, b.balance);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for i in 0..300 {
            let (lines, orders, tariffs) = random_period(&mut rng);
            let ctx = context(i * 10);
            let fast = classify_billing(&lines, &orders, &tariffs, &ctx).unwrap();
            let slow = reference::classify_billing(&lines, &orders, &tariffs, &ctx).unwrap();
            same(&fast, &slow);
        }
        let g = crate::bench::billing::generate(60_000).unwrap();
        let fast = classify_billing(&g.lines, &g.shop_orders, &g.tariffs, &g.context).unwrap();
        let slow =
            reference::classify_billing(&g.lines, &g.shop_orders, &g.tariffs, &g.context).unwrap();
        same(&fast, &slow);
        let reversed = g.shop_orders.reverse();
        let fast = classify_billing(&g.lines.reverse(), &reversed, &g.tariffs, &g.context).unwrap();
        same(&fast, &slow);
    }

    #[test]
    fn duplicate_order_ids_report_the_first_repeat_like_before() {
        let orders = df!(
            "order_id" => ["C", "A", "C", "A"],
            "status" => ["s"; 4],
            "cancelled" => [false; 4],
            "cancelled_before_picking" => [false; 4],
            "shipped_at" => [None::<i64>; 4],
            "delivery_type" => [None::<i64>; 4],
        )
        .unwrap();
        let ctx = context(0);
        let fast = classify_billing(&world_lines(), &orders, &tariffs(), &ctx).unwrap_err();
        let slow =
            reference::classify_billing(&world_lines(), &orders, &tariffs(), &ctx).unwrap_err();
        assert_eq!(fast.to_string(), slow.to_string());
    }

    #[test]
    fn every_line_class_on_a_small_world() {
        let result =
            classify_billing(&world_lines(), &orders(), &tariffs(), &context(WORLD_SUM)).unwrap();
        let classes: Vec<String> = column_strings(&result.lines, "class")
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(
            classes,
            [
                "ok",
                "charge_for_cancelled_order",
                "ok",
                "duplicate_charge",
                "charge_for_unknown_order",
                "ok",
                "amount_off_tariff",
                "ok",
                "ok",
                "amount_off_tariff,charge_for_cancelled_order,duplicate_charge",
                "charge_for_unknown_order",
            ]
        );
        let names: Vec<String> = result
            .lines
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, LINE_COLUMNS);
        let input = Input::new(&result.lines, "out");
        let expected = input.opt_ints("expected_kop").unwrap();
        let diff = input.opt_ints("difference_kop").unwrap();
        assert_eq!((expected[0], diff[0]), (Some(7_000), Some(0)));
        assert_eq!((expected[6], diff[6]), (Some(30_000), Some(1_000)));
        assert_eq!((expected[5], diff[5]), (None, None));
        let status = column_strings(&result.lines, "order_status");
        assert_eq!(status[1].as_deref(), Some("cancelled"));
        assert_eq!(status[4], None);
    }

    #[test]
    fn orders_shipped_in_period_without_assembly_charge() {
        let result =
            classify_billing(&world_lines(), &orders(), &tariffs(), &context(WORLD_SUM)).unwrap();
        let ids: Vec<String> = column_strings(&result.missing_charges, "order_id")
            .into_iter()
            .flatten()
            .collect();
        // B shipped at the last second of the period; D before it; A and E are charged.
        assert_eq!(ids, ["B"]);
        let names: Vec<String> = result
            .missing_charges
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, MISSING_CHARGE_COLUMNS);
        assert_eq!(
            column_strings(&result.missing_charges, "class"),
            [Some(class::ORDER_WITHOUT_CHARGE.to_owned())]
        );
    }

    #[test]
    fn totals_and_consistent_balance() {
        let result =
            classify_billing(&world_lines(), &orders(), &tariffs(), &context(WORLD_SUM)).unwrap();
        assert_eq!(
            result.totals_by_kind,
            [
                (
                    kind::ASSEMBLY,
                    -7_000 - 5_000 - 5_000 - 5_050 - 5_000 - 9_999 - 5_000
                ),
                (kind::TOP_UP, 100_000),
                (kind::DELIVERY, -61_400),
                (kind::OTHER, -1_234),
            ]
        );
        let by_class: BTreeMap<String, (i64, i64)> = result
            .totals_by_class
            .iter()
            .map(|(c, n, k)| (c.clone(), (*n, *k)))
            .collect();
        assert_eq!(by_class["duplicate_charge"], (2, -5_050 - 9_999));
        assert_eq!(by_class["charge_for_unknown_order"], (2, -10_000));
        assert_eq!(by_class["order_without_charge"], (1, 0));
        assert!(!by_class.contains_key("balance_gap"));
        assert_eq!(result.balance.sum_kop, WORLD_SUM);
        assert!(result.balance.ok);
        assert_eq!(result.balance.gap_balance_kop, Some(0));
    }

    #[test]
    fn balance_gaps_are_reported() {
        let mut ctx = context(WORLD_SUM + 10);
        let result = classify_billing(&world_lines(), &orders(), &tariffs(), &ctx).unwrap();
        assert!(!result.balance.ok);
        assert_eq!(result.balance.gap_change_kop, -10);
        let gap = result
            .totals_by_class
            .iter()
            .find(|t| t.0 == class::BALANCE_GAP);
        assert_eq!(gap, Some(&(class::BALANCE_GAP.to_owned(), 1, -10)));

        ctx = context(WORLD_SUM);
        ctx.current_balance_kop -= 1;
        let check = check_balance(WORLD_SUM, &ctx).unwrap();
        assert_eq!(
            (check.gap_change_kop, check.gap_balance_kop, check.ok),
            (0, Some(1), false)
        );

        ctx.previous_closing_kop = None;
        let check = check_balance(WORLD_SUM, &ctx).unwrap();
        assert_eq!((check.gap_balance_kop, check.ok), (None, true));
    }

    #[test]
    fn money_sums_are_exact_to_the_kopeck() {
        // 10 000 charges of −0.10 ₽: a binary-float sum would drift.
        let rows: Vec<L> = (0..10_000)
            .map(|i| (i, None, kind::OTHER, 1_500, -10))
            .collect();
        let ctx = BillingContext {
            from: FROM,
            to: TO,
            current_balance_kop: 0,
            change_of_balance_kop: -100_000,
            previous_closing_kop: Some(100_000),
        };
        let empty_orders = orders().clear();
        let result = classify_billing(&lines(&rows), &empty_orders, &tariffs(), &ctx).unwrap();
        assert_eq!(result.balance.sum_kop, -100_000);
        assert!(result.balance.ok);
        assert_eq!(result.totals_by_kind, [(kind::OTHER, -100_000)]);
        assert_eq!(
            result.totals_by_class,
            [("ok".to_owned(), 10_000, -100_000)]
        );
    }

    #[test]
    fn overflowing_sums_are_errors() {
        let rows: Vec<L> = vec![
            (1, None, kind::TOP_UP, 1_500, i64::MAX),
            (2, None, kind::TOP_UP, 1_500, 1),
        ];
        let err = classify_billing(&lines(&rows), &orders(), &tariffs(), &context(0)).unwrap_err();
        assert!(matches!(
            err,
            ReconcileError::Overflow {
                frame: "lines",
                column: "amount_kop"
            }
        ));
    }

    #[test]
    fn schema_errors_name_frame_and_column() {
        let floats = world_lines()
            .clone()
            .with_column(Column::new("amount_kop".into(), vec![-0.1f64; 11]))
            .unwrap()
            .clone();
        let err = classify_billing(&floats, &orders(), &tariffs(), &context(0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame `lines`: column `amount_kop` has dtype f64, expected Int64"
        );

        let no_tolerance = tariffs().drop("tolerance_kop").unwrap();
        let err =
            classify_billing(&world_lines(), &orders(), &no_tolerance, &context(0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame `tariffs`: missing column `tolerance_kop`"
        );

        let dup = lines(&[(1, None, 9, 1_500, -1), (1, None, 9, 1_500, -1)]);
        let err = classify_billing(&dup, &orders(), &tariffs(), &context(0)).unwrap_err();
        assert!(matches!(
            err,
            ReconcileError::DuplicateKey { frame: "lines", .. }
        ));

        let dup_tariffs = tariffs().vstack(&tariffs()).unwrap();
        let err =
            classify_billing(&world_lines(), &orders(), &dup_tariffs, &context(0)).unwrap_err();
        assert!(matches!(
            err,
            ReconcileError::DuplicateKey {
                frame: "tariffs",
                ..
            }
        ));
    }

    #[test]
    fn deterministic_and_sorted_by_id() {
        let shuffled = world_lines().reverse();
        let a =
            classify_billing(&world_lines(), &orders(), &tariffs(), &context(WORLD_SUM)).unwrap();
        let b = classify_billing(
            &shuffled,
            &orders().reverse(),
            &tariffs().reverse(),
            &context(WORLD_SUM),
        )
        .unwrap();
        assert!(a.lines.equals_missing(&b.lines));
        assert!(a.missing_charges.equals_missing(&b.missing_charges));
        assert_eq!(a.totals_by_class, b.totals_by_class);
        let ids = Input::new(&a.lines, "out").ints("id").unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
