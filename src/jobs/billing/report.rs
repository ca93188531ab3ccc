//! The billing report: frames for the reconciliation and the CSV/HTML output.

use super::*;

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

pub(super) fn lines_frame(lines: &[BillingLine]) -> PolarsResult<DataFrame> {
    df!(
        "id" => lines.iter().map(|l| l.id).collect::<Vec<_>>(),
        "wms_order_id" => lines.iter().map(|l| l.order_id).collect::<Vec<_>>(),
        "foreign_order_id" => lines.iter().map(|l| l.foreign_order_id.clone()).collect::<Vec<_>>(),
        "kind" => lines.iter().map(|l| l.kind).collect::<Vec<_>>(),
        "date" => lines.iter().map(|l| l.date).collect::<Vec<_>>(),
        "amount_kop" => lines.iter().map(|l| l.amount_kop).collect::<Vec<_>>(),
        "comment" => lines.iter().map(|l| l.comment.clone()).collect::<Vec<_>>(),
    )
}

/// Whether a shop order counts as cancelled before picking: cancelled, never
/// shipped, and cancelled no later than its first assembly charge (an unknown
/// cancellation time counts as before).
pub fn cancelled_before_picking(order: &BillingOrder, first_assembly_unix: Option<i64>) -> bool {
    let before = match (order.cancelled_at, first_assembly_unix) {
        (Some(cancelled_ms), Some(assembly)) => cancelled_ms <= assembly.saturating_mul(1000),
        _ => true,
    };
    order.cancelled && order.shipped_at.is_none() && before
}

pub(super) fn orders_frame(
    orders: &[BillingOrder],
    lines: &[BillingLine],
) -> PolarsResult<DataFrame> {
    let mut first_assembly: BTreeMap<&str, i64> = BTreeMap::new();
    for line in lines
        .iter()
        .filter(|l| l.kind == kind::ASSEMBLY && l.amount_kop < 0)
    {
        if let Some(id) = line_order(line) {
            let at = first_assembly.entry(id).or_insert(line.date);
            *at = (*at).min(line.date);
        }
    }
    let before: Vec<bool> = orders
        .iter()
        .map(|o| cancelled_before_picking(o, first_assembly.get(o.id.as_str()).copied()))
        .collect();
    df!(
        "order_id" => orders.iter().map(|o| o.id.clone()).collect::<Vec<_>>(),
        "status" => orders.iter().map(|o| o.status.clone()).collect::<Vec<_>>(),
        "cancelled" => orders.iter().map(|o| o.cancelled).collect::<Vec<_>>(),
        "cancelled_before_picking" => before,
        "shipped_at" => orders.iter().map(|o| o.shipped_at.map(|ms| ms.div_euclid(1000))).collect::<Vec<_>>(),
        "delivery_type" => orders.iter().map(|o| o.delivery_type).collect::<Vec<_>>(),
    )
}

pub(super) fn tariffs_frame(billing: &BillingSection) -> PolarsResult<DataFrame> {
    let t = &billing.tariffs;
    df!(
        "kind" => t.iter().map(|t| t.kind).collect::<Vec<_>>(),
        "delivery_type" => t.iter().map(|t| t.delivery_type).collect::<Vec<_>>(),
        "expected_kop" => t.iter().map(|t| t.amount_kop).collect::<Vec<_>>(),
        "tolerance_kop" => t.iter().map(|t| t.tolerance_kop).collect::<Vec<_>>(),
    )
}

// ---------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------

/// A readable name of an IMSKLAD operation type.
pub fn kind_name(k: i64) -> String {
    match k {
        kind::ASSEMBLY => "assembly".into(),
        kind::TOP_UP => "top_up".into(),
        kind::DELIVERY => "delivery".into(),
        kind::OTHER => "other".into(),
        kind::UNTYPED => "untyped".into(),
        other => format!("type {other}"),
    }
}

/// Unix seconds as local `YYYY-MM-DD HH:MM:SS`.
pub(super) fn local_time(tz: Tz, unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// One row of the classified lines frame.
#[derive(Debug, Clone)]
pub(super) struct LineRow {
    pub(super) id: i64,
    pub(super) wms_order_id: Option<i64>,
    pub(super) order_id: Option<String>,
    pub(super) kind: i64,
    pub(super) date: i64,
    pub(super) amount_kop: i64,
    pub(super) comment: String,
    pub(super) order_status: Option<String>,
    pub(super) expected_kop: Option<i64>,
    pub(super) difference_kop: Option<i64>,
    pub(super) class: String,
}

pub(super) fn line_rows(lines: &DataFrame) -> Result<Vec<LineRow>, ReconcileError> {
    let input = Input::new(lines, "billing_lines");
    let ids = input.ints("id")?;
    let wms = input.opt_ints("wms_order_id")?;
    let orders = input.opt_strings("foreign_order_id")?;
    let kinds = input.ints("kind")?;
    let dates = input.ints("date")?;
    let amounts = input.ints("amount_kop")?;
    let comments = input.opt_strings("comment")?;
    let status = input.opt_strings("order_status")?;
    let expected = input.opt_ints("expected_kop")?;
    let difference = input.opt_ints("difference_kop")?;
    let classes = input.strings("class")?;
    Ok((0..ids.len())
        .map(|i| LineRow {
            id: ids[i],
            wms_order_id: wms[i],
            order_id: orders[i].map(str::to_owned),
            kind: kinds[i],
            date: dates[i],
            amount_kop: amounts[i],
            comment: comments[i].unwrap_or("").to_owned(),
            order_status: status[i].map(str::to_owned),
            expected_kop: expected[i],
            difference_kop: difference[i],
            class: classes[i].to_owned(),
        })
        .collect())
}

/// One order shipped in the period without an assembly charge.
#[derive(Debug, Clone)]
pub(super) struct MissingCharge {
    pub(super) order_id: String,
    pub(super) status: String,
    pub(super) shipped_at: Option<i64>,
    pub(super) expected_kop: Option<i64>,
}

pub(super) fn missing_rows(
    missing: &DataFrame,
    billing: &BillingSection,
) -> Result<Vec<MissingCharge>, ReconcileError> {
    let input = Input::new(missing, "missing_charges");
    let ids = input.strings("order_id")?;
    let status = input.strings("status")?;
    let shipped = input.opt_ints("shipped_at")?;
    let delivery = input.opt_ints("delivery_type")?;
    Ok((0..ids.len())
        .map(|i| MissingCharge {
            order_id: ids[i].to_owned(),
            status: status[i].to_owned(),
            shipped_at: shipped[i],
            expected_kop: billing
                .tariff(kind::ASSEMBLY, delivery[i])
                .map(|t| t.amount_kop),
        })
        .collect())
}

/// Everything the reports show.
pub(super) struct ReportData<'a> {
    pub(super) ctx: &'a Context,
    pub(super) run_id: i64,
    pub(super) period: &'a Period,
    pub(super) merged: &'a Merged,
    pub(super) result: &'a BillingResult,
    pub(super) rows: Vec<LineRow>,
    pub(super) missing: Vec<MissingCharge>,
    pub(super) doc_requests: BTreeMap<i64, i64>,
    pub(super) previous: Option<i64>,
    pub(super) calls: usize,
}

impl ReportData<'_> {
    pub(super) fn tz(&self) -> Tz {
        self.ctx.config.tz()
    }

    pub(super) fn write_lines_csv(&self) -> Result<String, ReportError> {
        let tz = self.tz();
        let mut report = self.ctx.csv_report(
            &format!("{JOB}-{}.csv", self.period.slug()),
            &LINE_REPORT_COLUMNS,
        )?;
        for r in &self.rows {
            report.row(&[
                Cell::Int(r.id),
                Cell::Text(local_time(tz, r.date)),
                if r.kind == kind::UNTYPED {
                    Cell::Empty
                } else {
                    Cell::Int(r.kind)
                },
                Cell::Text(kind_name(r.kind)),
                Cell::Money(r.amount_kop),
                r.wms_order_id.into(),
                r.order_id.clone().into(),
                self.doc_requests.get(&r.id).copied().into(),
                Cell::Text(r.comment.clone()),
                r.order_status.clone().into(),
                r.expected_kop.map_or(Cell::Empty, Cell::Money),
                r.difference_kop.map_or(Cell::Empty, Cell::Money),
                Cell::Text(r.class.clone()),
            ])?;
        }
        for m in &self.missing {
            let shipped = m.shipped_at.map(|s| local_time(tz, s));
            report.row(&[
                Cell::Empty,
                shipped.clone().into(),
                Cell::Int(kind::ASSEMBLY),
                Cell::Text(kind_name(kind::ASSEMBLY)),
                Cell::Empty,
                Cell::Empty,
                Cell::Text(m.order_id.clone()),
                Cell::Empty,
                Cell::Text(format!(
                    "shipped {} without an assembly charge in the period",
                    shipped.unwrap_or_default()
                )),
                Cell::Text(m.status.clone()),
                m.expected_kop.map_or(Cell::Empty, Cell::Money),
                Cell::Empty,
                Cell::Text(class::ORDER_WITHOUT_CHARGE.into()),
            ])?;
        }
        Ok(report.finish()?.display().to_string())
    }

    pub(super) fn kind_counts(&self) -> BTreeMap<i64, i64> {
        let mut counts = BTreeMap::new();
        for r in &self.rows {
            *counts.entry(r.kind).or_insert(0) += 1;
        }
        counts
    }

    /// (label, kop, bad) rows of the balance arithmetic.
    pub(super) fn balance_rows(&self) -> Vec<(String, Option<i64>, bool)> {
        let b = &self.result.balance;
        let implied = b.current_balance_kop.checked_sub(b.change_of_balance_kop);
        vec![
            (
                "opening: the previous run's closing balance".into(),
                self.previous,
                false,
            ),
            (
                "opening implied by IMSKLAD (closing − change)".into(),
                implied,
                false,
            ),
            ("Σ amounts of the lines".into(), Some(b.sum_kop), false),
            (
                "change_of_balance reported by IMSKLAD".into(),
                Some(b.change_of_balance_kop),
                false,
            ),
            (
                "closing: balance at the end of the period".into(),
                Some(b.current_balance_kop),
                false,
            ),
            (
                "gap: Σ amounts − change_of_balance".into(),
                Some(b.gap_change_kop),
                b.gap_change_kop != 0,
            ),
            (
                "gap: opening + change − closing".into(),
                b.gap_balance_kop,
                b.gap_balance_kop.is_some_and(|g| g != 0),
            ),
        ]
    }

    pub(super) fn balance_note(&self) -> String {
        let b = &self.result.balance;
        let chain = match (self.previous, b.gap_balance_kop) {
            (None, _) => format!(
                "No closing balance was stored for {} 00:00 (the start of the period), so the balance chain starts with this run.",
                self.period.first
            ),
            (Some(_), Some(0)) => "The previous closing balance plus the period's change gives this closing balance.".into(),
            (Some(_), _) => "The previous closing balance plus the period's change does NOT give this closing balance: the balance moved by something the period's lines do not explain.".into(),
        };
        let lines = if b.gap_change_kop == 0 {
            "The lines add up to the change of balance IMSKLAD reported."
        } else {
            "The lines do NOT add up to the change of balance IMSKLAD reported: an operation is missing from the statement (or listed twice)."
        };
        format!("{lines} {chain}")
    }

    pub(super) fn write_summary_csv(&self) -> Result<String, ReportError> {
        let mut report = self.ctx.csv_report(
            &format!("{JOB}-summary-{}.csv", self.period.slug()),
            &SUMMARY_REPORT_COLUMNS,
        )?;
        let text = |s: &str| Cell::Text(s.to_owned());
        let period_rows = [
            ("first_day", self.period.first.to_string()),
            ("last_day", self.period.last.to_string()),
            ("time_zone", self.ctx.config.timezone.name().to_owned()),
        ];
        for (item, value) in period_rows {
            report.row(&[
                text("period"),
                text(item),
                Cell::Text(value),
                Cell::Empty,
                Cell::Empty,
            ])?;
        }
        report.row(&[
            text("period"),
            text("get_billing_calls"),
            Cell::Empty,
            Cell::Int(self.calls as i64),
            Cell::Empty,
        ])?;
        let counts = self.kind_counts();
        for (k, kop) in &self.result.totals_by_kind {
            report.row(&[
                text("type"),
                Cell::Text(format!("{k} {}", kind_name(*k))),
                Cell::Empty,
                Cell::Int(counts.get(k).copied().unwrap_or(0)),
                Cell::Money(*kop),
            ])?;
        }
        for (name, count, kop) in &self.result.totals_by_class {
            report.row(&[
                text("class"),
                Cell::Text(name.clone()),
                Cell::Empty,
                Cell::Int(*count),
                Cell::Money(*kop),
            ])?;
        }
        for (label, kop, _) in self.balance_rows() {
            report.row(&[
                text("balance"),
                Cell::Text(label),
                Cell::Empty,
                Cell::Empty,
                kop.map_or(Cell::Empty, Cell::Money),
            ])?;
        }
        let check = if self.result.balance.ok { "ok" } else { "gap" };
        report.row(&[
            text("balance"),
            text("check"),
            text(check),
            Cell::Empty,
            Cell::Empty,
        ])?;
        Ok(report.finish()?.display().to_string())
    }

    pub(super) fn page(&self) -> BillingPage {
        let tz = self.tz();
        let counts = self.kind_counts();
        let b = &self.result.balance;
        BillingPage {
            title: format!("Billing {} – {}", self.period.first, self.period.last),
            period: format!(
                "{} – {} ({} day{}, {})",
                self.period.first,
                self.period.last,
                self.period.days.len(),
                if self.period.days.len() == 1 { "" } else { "s" },
                self.ctx.config.timezone.name()
            ),
            generated: format!(
                "sverka run #{}{}, {}",
                self.run_id,
                if self.ctx.dry_run { " (dry run)" } else { "" },
                local_time(tz, now_ms() / 1000)
            ),
            dialect: self.ctx.config.reports.dialect,
            kinds: self
                .result
                .totals_by_kind
                .iter()
                .map(|(k, kop)| Total {
                    name: format!("{k} {}", kind_name(*k)),
                    count: counts.get(k).copied().unwrap_or(0),
                    kop: *kop,
                })
                .collect(),
            classes: self
                .result
                .totals_by_class
                .iter()
                .map(|(name, count, kop)| Total {
                    name: name.clone(),
                    count: *count,
                    kop: *kop,
                })
                .collect(),
            balance: self
                .balance_rows()
                .into_iter()
                .map(|(label, kop, bad)| BalanceRow { label, kop, bad })
                .collect(),
            balance_ok: b.ok,
            balance_note: self.balance_note(),
            days: self.day_bars(),
            discrepancies: self.discrepancy_rows(),
        }
    }

    /// The page's chart: each day's charges and line count.
    fn day_bars(&self) -> Vec<DayBar> {
        let mut days: Vec<DayBar> = self
            .period
            .days
            .iter()
            .map(|d| DayBar {
                label: d.date.format("%d.%m").to_string(),
                date: d.date.to_string(),
                charges_kop: 0,
                count: 0,
            })
            .collect();
        for r in &self.rows {
            if let Some(bar) = self.period.day_of(r.date).and_then(|i| days.get_mut(i)) {
                bar.count += 1;
                if r.amount_kop < 0 {
                    bar.charges_kop = bar
                        .charges_kop
                        .saturating_add(r.amount_kop.saturating_neg());
                }
            }
        }
        days
    }

    /// The page's discrepancy table: the lines not `ok`, the orders without a
    /// charge, then the balance gap (if any).
    fn discrepancy_rows(&self) -> Vec<DiscrepancyRow> {
        let tz = self.tz();
        let mut discrepancies: Vec<DiscrepancyRow> = self
            .rows
            .iter()
            .filter(|r| r.class != class::OK)
            .map(|r| DiscrepancyRow {
                id: r.id.to_string(),
                date: local_time(tz, r.date),
                type_name: kind_name(r.kind),
                order_id: r.order_id.clone().unwrap_or_default(),
                wms_order_id: r.wms_order_id.map(|i| i.to_string()).unwrap_or_default(),
                amount_kop: Some(r.amount_kop),
                expected_kop: r.expected_kop,
                difference_kop: r.difference_kop,
                class: r.class.clone(),
                comment: r.comment.clone(),
            })
            .collect();
        discrepancies.extend(self.missing.iter().map(|m| DiscrepancyRow {
            date: m.shipped_at.map(|s| local_time(tz, s)).unwrap_or_default(),
            type_name: kind_name(kind::ASSEMBLY),
            order_id: m.order_id.clone(),
            expected_kop: m.expected_kop,
            class: class::ORDER_WITHOUT_CHARGE.into(),
            comment: format!(
                "shipped in the period ({}) without an assembly charge",
                m.status
            ),
            ..DiscrepancyRow::default()
        }));
        discrepancies.extend(self.balance_discrepancy());
        discrepancies
    }

    /// The balance gap as a discrepancy row, when the balance does not add up.
    fn balance_discrepancy(&self) -> Option<DiscrepancyRow> {
        let b = &self.result.balance;
        if b.ok {
            return None;
        }
        let (gap, why) = if b.gap_change_kop != 0 {
            (
                b.gap_change_kop,
                "Σ amounts ≠ change_of_balance: an operation is missing from the statement (or listed twice)",
            )
        } else {
            (
                b.gap_balance_kop.unwrap_or(0),
                "previous closing + change ≠ closing: the balance moved by something the lines do not explain",
            )
        };
        Some(DiscrepancyRow {
            type_name: "balance".into(),
            difference_kop: Some(gap),
            class: class::BALANCE_GAP.into(),
            comment: why.into(),
            ..DiscrepancyRow::default()
        })
    }

    pub(super) fn write_html(&self) -> Result<String, ReportError> {
        let html = html::render_billing(&self.page());
        let name = format!("{JOB}-{}.html", self.period.slug());
        Ok(html::write(&self.ctx.report_dir, &name, &html)?
            .display()
            .to_string())
    }
}

impl ReportData<'_> {
    /// The job-specific figures stored with the run.
    pub(super) fn extra(&self, days: usize, stored: usize) -> serde_json::Value {
        let b = &self.result.balance;
        json!({
            "first_day": self.period.first.to_string(),
            "last_day": self.period.last.to_string(),
            "window_from_ms": self.period.start() * 1000,
            "window_to_ms": self.period.end() * 1000,
            "days": days,
            "get_billing_calls": self.calls,
            "lines": self.merged.lines.len(),
            "repeated_lines": self.merged.repeated,
            "lines_outside_period": self.merged.outside,
            "totals_by_type_kop": self.result.totals_by_kind.iter().map(|(k, kop)| (k.to_string(), *kop)).collect::<BTreeMap<_, _>>(),
            "balance": {
                "previous_closing_kop": self.previous,
                "sum_kop": b.sum_kop,
                "change_of_balance_kop": b.change_of_balance_kop,
                "closing_kop": b.current_balance_kop,
                "gap_change_kop": b.gap_change_kop,
                "gap_balance_kop": b.gap_balance_kop,
                "ok": b.ok,
            },
            "closings_stored": if self.ctx.dry_run { 0 } else { stored },
        })
    }
}
