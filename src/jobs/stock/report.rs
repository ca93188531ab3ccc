//! Phase 5 of the stock run: the report, each discrepancy with its class,
//! note and fate.

use anyhow::Result;
use polars::prelude::DataFrame;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::super::gate::Unsent;
use super::super::Context;
use super::plan::Plan;
use super::read::{Sources, Unreadable};
use super::{JOB, REPORT_COLUMNS};
use crate::db::journal::ItemOutcome;
use crate::reconcile::cost::COST_MISMATCH_CRM;
use crate::reconcile::input::Input;
use crate::reconcile::stock::{class, col};
use crate::report::csv::{Cell, CsvReport};
use crate::report::summary::CorrectionCounts;

/// A report line's `action`: what the run does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::jobs) enum Action {
    /// A RetailCRM `inventories/upload` offer (quantity, cost or both).
    CrmUpload,
    /// The shop's quantity, written back.
    ShopUpdate,
    /// An IMSKLAD `update_good` look-up of an unmapped SKU.
    WmsRegister,
    /// An IMSKLAD `add_good`.
    WmsAdd,
    /// Nothing: left for people.
    Report,
}

impl Action {
    /// The report's word.
    pub(in crate::jobs) fn as_str(self) -> &'static str {
        match self {
            Action::CrmUpload => "crm_upload",
            Action::ShopUpdate => "shop_update",
            Action::WmsRegister => "wms_register",
            Action::WmsAdd => "wms_add",
            Action::Report => "report",
        }
    }
}

/// A report line's `result`: what became of its correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::jobs) enum FateResult {
    /// No correction (a line for people): the column is empty.
    Nothing,
    /// The target took it.
    Applied,
    /// The target refused it or could not be reached.
    Failed,
    /// An ambiguous failure of a write that is not idempotent.
    Unknown,
    /// The shop row changed since sverka read it: left as it is.
    ChangedDuringRun,
    /// Not sent: the safety guard stopped the run.
    Guarded,
    /// Not sent: `--dry-run`.
    DryRun,
    /// Not sent: an earlier chunk failed, or a stop was requested.
    Skipped,
    /// The CRM answered the offer in `notFoundOffers`.
    NotFound,
}

impl FateResult {
    /// The report's word.
    pub(in crate::jobs) fn as_str(self) -> &'static str {
        match self {
            FateResult::Nothing => "",
            FateResult::Applied => ItemOutcome::Applied.as_str(),
            FateResult::Failed => ItemOutcome::Failed.as_str(),
            FateResult::Unknown => ItemOutcome::Unknown.as_str(),
            FateResult::ChangedDuringRun => ItemOutcome::ChangedDuringRun.as_str(),
            FateResult::Guarded => Unsent::Guarded.as_str(),
            FateResult::DryRun => Unsent::DryRun.as_str(),
            FateResult::Skipped => "skipped",
            FateResult::NotFound => "not_found",
        }
    }
}

impl From<ItemOutcome> for FateResult {
    fn from(outcome: ItemOutcome) -> Self {
        match outcome {
            ItemOutcome::Applied => FateResult::Applied,
            ItemOutcome::Failed => FateResult::Failed,
            ItemOutcome::ChangedDuringRun => FateResult::ChangedDuringRun,
            ItemOutcome::Unknown => FateResult::Unknown,
        }
    }
}

impl From<Unsent> for FateResult {
    fn from(unsent: Unsent) -> Self {
        match unsent {
            Unsent::Guarded => FateResult::Guarded,
            Unsent::DryRun => FateResult::DryRun,
        }
    }
}

/// One report line's correction state.
#[derive(Debug, Clone)]
pub(in crate::jobs) struct Fate {
    pub(in crate::jobs) action: Action,
    pub(in crate::jobs) result: FateResult,
    pub(in crate::jobs) note: String,
}

impl Fate {
    /// A correction's fate.
    pub(in crate::jobs) fn new(
        action: Action,
        result: FateResult,
        note: impl Into<String>,
    ) -> Fate {
        Fate {
            action,
            result,
            note: note.into(),
        }
    }

    /// A line for people: nothing sent for it.
    pub(in crate::jobs) fn report(note: impl Into<String>) -> Fate {
        Fate::new(Action::Report, FateResult::Nothing, note)
    }

    /// Whether the line is left for people: reported only, or its correction
    /// did not land.
    fn left_for_people(&self) -> bool {
        self.action == Action::Report || self.result != FateResult::Applied
    }
}

/// What the apply step did (or, unsent, would have done): each correction's
/// fate by (SKU, class), the corrections counted, and the lines it added.
#[derive(Debug, Default)]
pub(in crate::jobs) struct Ledger {
    /// The fate of each (SKU, class) a correction was planned for.
    pub(in crate::jobs) fates: HashMap<(String, &'static str), Fate>,
    /// The corrections counted.
    pub(in crate::jobs) corrections: CorrectionCounts,
    /// Lines the targets' answers added: (SKU, class, fate).
    pub(in crate::jobs) extra_rows: Vec<(String, &'static str, Fate)>,
}

impl Ledger {
    /// An empty ledger of `planned` corrections.
    pub(in crate::jobs) fn new(planned: u64) -> Ledger {
        Ledger {
            corrections: CorrectionCounts {
                planned,
                ..CorrectionCounts::default()
            },
            ..Ledger::default()
        }
    }

    /// Records the fate of `sku`'s `class_name` line.
    pub(in crate::jobs) fn set(&mut self, sku: &str, class_name: &'static str, fate: Fate) {
        self.fates.insert((sku.to_string(), class_name), fate);
    }

    fn get(&self, sku: &str, class_name: &'static str) -> Option<&Fate> {
        self.fates.get(&(sku.to_string(), class_name))
    }
}

/// The class constant named `name`, or None for a name that is no class.
pub(super) fn class_static(name: &str) -> Option<&'static str> {
    class::ALL.iter().copied().find(|c| *c == name)
}

pub(super) fn note_for(class_name: &str) -> String {
    match class_name {
        class::MISSING_IN_CRM => "the CRM has no offer for this SKU".into(),
        class::MISSING_IN_SHOP => "the WMS holds stock of a SKU the shop does not sell".into(),
        class::RESERVED_EXCEEDS_STOCK => "the WMS reserves more than it holds".into(),
        class::MISSING_IN_WMS => "the WMS does not know this SKU".into(),
        _ => String::new(),
    }
}

/// A report line with only its SKU (the other twelve columns filled by the caller).
pub(super) fn empty_cells(sku: &str) -> Vec<Cell> {
    let mut cells = vec![Cell::Empty; 12];
    cells[0] = Cell::Text(sku.to_string());
    cells
}

/// The classified frame as plain columns, for the report.
pub(in crate::jobs) struct ClassifiedRows {
    pub(super) sku: Vec<String>,
    pub(super) wms_id: Vec<Option<i64>>,
    pub(super) crm_offer_id: Vec<Option<i64>>,
    pub(super) wms_stock: Vec<Option<i64>>,
    pub(super) wms_reserved: Vec<Option<i64>>,
    pub(in crate::jobs) wms_sellable: Vec<Option<i64>>,
    pub(in crate::jobs) crm_quantity: Vec<Option<i64>>,
    pub(super) shop_quantity: Vec<Option<i64>>,
    pub(super) class: Vec<String>,
}

impl ClassifiedRows {
    pub(super) fn read(df: &DataFrame) -> Result<Self> {
        let input = Input::new(df, "classified_stock");
        Ok(ClassifiedRows {
            sku: input
                .strings(col::SKU)?
                .into_iter()
                .map(str::to_string)
                .collect(),
            wms_id: input.opt_ints(col::WMS_ID)?,
            crm_offer_id: input.opt_ints(col::CRM_OFFER_ID)?,
            wms_stock: input.opt_ints(col::WMS_STOCK)?,
            wms_reserved: input.opt_ints(col::WMS_RESERVED)?,
            wms_sellable: input.opt_ints(col::WMS_SELLABLE)?,
            crm_quantity: input.opt_ints(col::CRM_QUANTITY)?,
            shop_quantity: input.opt_ints(col::SHOP_QUANTITY)?,
            class: input
                .strings(col::CLASS)?
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
    }

    pub(super) fn len(&self) -> usize {
        self.sku.len()
    }

    pub(super) fn distinct_skus(&self) -> usize {
        // Sorted by (sku, class), so equal SKUs are adjacent.
        self.sku.windows(2).filter(|w| w[0] != w[1]).count() + usize::from(!self.sku.is_empty())
    }

    pub(in crate::jobs) fn find(&self, sku: &str) -> Option<usize> {
        self.sku.binary_search_by(|s| s.as_str().cmp(sku)).ok()
    }

    pub(super) fn cells(&self, i: usize, fate: &Fate) -> Vec<Cell> {
        vec![
            Cell::Text(self.sku[i].clone()),
            self.wms_id[i].into(),
            self.crm_offer_id[i].into(),
            self.wms_stock[i].into(),
            self.wms_reserved[i].into(),
            self.wms_sellable[i].into(),
            self.crm_quantity[i].into(),
            self.shop_quantity[i].into(),
            Cell::Text(self.class[i].clone()),
            Cell::Text(fate.action.as_str().into()),
            Cell::Text(fate.result.as_str().into()),
            Cell::Text(fate.note.clone()),
        ]
    }
}

/// The report being written, and whether a line is left for people.
struct StockReport<'a> {
    csv: CsvReport,
    plan: &'a Plan<'a>,
    shop_costs: HashMap<&'a str, i64>,
    left_for_people: bool,
}

impl StockReport<'_> {
    /// The two cost cells of `sku`: the shop's and the CRM's cost price.
    fn cost_cells(&self, sku: &str) -> [Cell; 2] {
        [
            self.shop_cost(sku),
            self.plan
                .crm_costs
                .get(sku)
                .and_then(|c| c.cost_kop)
                .map_or(Cell::Empty, Cell::Money),
        ]
    }

    fn shop_cost(&self, sku: &str) -> Cell {
        self.shop_costs
            .get(sku)
            .map_or(Cell::Empty, |c| Cell::Money(*c))
    }

    /// One line of each classified discrepancy (not `ok`), with its fate.
    fn classified(&mut self, ledger: &Ledger) -> Result<()> {
        let rows = &self.plan.rows;
        for i in 0..rows.len() {
            let class_name = rows.class[i].as_str();
            if class_name == class::OK {
                continue;
            }
            let fate = class_static(class_name)
                .and_then(|c| ledger.get(&rows.sku[i], c))
                .cloned()
                .unwrap_or_else(|| Fate::report(note_for(class_name)));
            self.left_for_people |= fate.left_for_people();
            let mut cells = rows.cells(i, &fate);
            cells.extend(self.cost_cells(&rows.sku[i]));
            self.csv.row(&cells)?;
        }
        Ok(())
    }

    /// A line of `class_name` for `sku` beside the classified ones: the SKU's
    /// figures (if classified), the class and the fate.
    fn side_line(&mut self, sku: &str, class_name: &str, fate: &Fate) -> Result<()> {
        let mut cells = match self.plan.rows.find(sku) {
            Some(i) => self.plan.rows.cells(i, fate),
            None => empty_cells(sku),
        };
        cells[8] = Cell::Text(class_name.to_string());
        cells[9] = Cell::Text(fate.action.as_str().into());
        cells[10] = Cell::Text(fate.result.as_str().into());
        cells[11] = Cell::Text(fate.note.clone());
        cells.extend(self.cost_cells(sku));
        self.csv.row(&cells)?;
        Ok(())
    }

    /// One line of each SKU the WMS answered unreadable figures for.
    fn unreadable(&mut self, u: &Unreadable) -> Result<()> {
        self.left_for_people = true;
        let crm = self.plan.unreadable_crm.get(u.sku.as_str());
        self.csv.row(&[
            Cell::Text(u.sku.clone()),
            u.wms_id.into(),
            crm.map(|c| c.0).into(),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            crm.map(|c| c.1).into(),
            self.plan
                .unreadable_shop
                .get(u.sku.as_str())
                .copied()
                .into(),
            Cell::Text(class::WMS_UNREADABLE.into()),
            Cell::Text(Action::Report.as_str().into()),
            Cell::Text(FateResult::Nothing.as_str().into()),
            Cell::Text(format!("{}; nothing corrected for this SKU", u.reason)),
            self.shop_cost(u.sku.as_str()),
            Cell::Empty,
        ])?;
        Ok(())
    }
}

/// Writes `stock-<date>-<run>.csv`: the classified discrepancies, the cost
/// mismatches, the lines the targets' answers added and the unreadable SKUs.
/// Returns its path and whether anything is left for people.
pub(super) fn write(
    ctx: &Context,
    run_id: i64,
    sources: &Sources,
    plan: &Plan<'_>,
    ledger: &Ledger,
) -> Result<(PathBuf, bool)> {
    let csv = ctx.run_report(JOB, run_id, &REPORT_COLUMNS)?;
    let mut report = StockReport {
        csv,
        plan,
        shop_costs: sources
            .shop_stock
            .iter()
            .filter_map(|s| Some((s.sku.as_str(), s.cost_kop?)))
            .collect(),
        left_for_people: false,
    };
    report.classified(ledger)?;
    for c in &plan.cost_plan {
        let fate = ledger
            .get(&c.sku, COST_MISMATCH_CRM)
            .cloned()
            .unwrap_or_else(|| Fate::report(String::new()));
        report.left_for_people |= fate.result != FateResult::Applied;
        report.side_line(&c.sku, COST_MISMATCH_CRM, &fate)?;
    }
    for (sku, class_name, fate) in &ledger.extra_rows {
        report.left_for_people = true;
        report.side_line(sku, class_name, fate)?;
    }
    if !sources.snap.unreadable.is_empty() {
        tracing::warn!(
            run = run_id,
            skus = sources.snap.unreadable.len(),
            "the WMS answered figures sverka cannot read; those SKUs are reported wms_unreadable and not corrected"
        );
    }
    for u in &sources.snap.unreadable {
        report.unreadable(u)?;
    }
    let path = report.csv.finish()?;
    Ok((path, report.left_for_people))
}

/// The run's counts per class: the classification's, with the lines the
/// targets' answers added.
pub(super) fn counts(plan: &Plan<'_>, ledger: &Ledger) -> BTreeMap<String, u64> {
    let mut counts = plan.counts.clone();
    for (_, class_name, _) in &ledger.extra_rows {
        *counts.entry(class_name.to_string()).or_insert(0) += 1;
    }
    counts
}
