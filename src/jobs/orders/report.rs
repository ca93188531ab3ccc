//! Report rows and cells: each discrepancy's class and fate, and the report
//! itself (the run's last phase).

use super::*;

/// A CRM order edit of the orders job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CrmEdit {
    /// The order is marked shipped (with its track and status when planned).
    ShipMark,
    /// The order's track number is set.
    Track,
}

impl CrmEdit {
    /// The journal action of the edit (also its report action).
    pub(super) fn journal(self) -> JournalAction {
        match self {
            CrmEdit::ShipMark => JournalAction::CrmShipMark,
            CrmEdit::Track => JournalAction::CrmTrack,
        }
    }
}

/// The report's `action` column: what the run did (or would do) about a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReportAction {
    /// Nothing is sent: the row is for a person.
    Report,
    /// The order is added to the WMS.
    WmsAdd,
    /// The order is cancelled in the WMS.
    WmsCancel,
    /// A CRM order edit.
    Crm(CrmEdit),
}

impl ReportAction {
    /// The report's word.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ReportAction::Report => "report",
            ReportAction::WmsAdd => "wms_add",
            ReportAction::WmsCancel => "wms_cancel",
            ReportAction::Crm(edit) => edit.journal().as_str(),
        }
    }
}

/// The report's `result` column: how a row's correction went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FateResult {
    /// No correction was attempted (an empty cell).
    Blank,
    /// The target took it.
    Applied,
    /// The target took part of it (an IMSKLAD `warning`).
    Partial,
    /// The target refused it or could not be reached.
    Failed,
    /// It may or may not have landed (see [`crate::apply::failed_write`]).
    Unknown,
    /// A stop was requested before it was sent.
    Skipped,
    /// The gate kept it (`guarded` or `dry-run`).
    Unsent(gate::Unsent),
}

impl FateResult {
    /// The report's word.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            FateResult::Blank => "",
            FateResult::Applied => "applied",
            FateResult::Partial => "partial",
            FateResult::Failed => "failed",
            FateResult::Unknown => "unknown",
            FateResult::Skipped => "skipped",
            FateResult::Unsent(unsent) => unsent.as_str(),
        }
    }

    /// The result of a failed write journaled with `status`.
    pub(super) fn of_failure(status: CorrectionStatus) -> FateResult {
        if status == CorrectionStatus::Unknown {
            FateResult::Unknown
        } else {
            FateResult::Failed
        }
    }
}

/// What happened to one (order, class) row.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fate {
    pub(super) action: ReportAction,
    pub(super) result: FateResult,
    pub(super) note: String,
}

impl Fate {
    pub(super) fn new(action: ReportAction, result: FateResult, note: impl Into<String>) -> Fate {
        Fate {
            action,
            result,
            note: note.into(),
        }
    }

    /// A row left for a person, with why.
    pub(super) fn report(note: impl Into<String>) -> Fate {
        Fate::new(ReportAction::Report, FateResult::Blank, note)
    }

    /// A correction not sent because a stop was requested.
    pub(super) fn skipped(action: ReportAction) -> Fate {
        Fate::new(
            action,
            FateResult::Skipped,
            "stop requested; the next run retries",
        )
    }

    /// Whether the row is settled without a person: its correction landed.
    fn settled(&self) -> bool {
        self.action != ReportAction::Report && self.result == FateResult::Applied
    }
}

/// The fates of the run's rows by (order id, class).
pub(super) type Fates = BTreeMap<(String, OrderClass), Fate>;

/// The class a classified row names; None for a name the classifier does not
/// have.
pub(super) fn order_class(name: &str) -> Option<OrderClass> {
    OrderClass::ALL.into_iter().find(|c| c.as_str() == name)
}

pub(super) fn extra_row(order_id: &str, class_name: &str, wms_status: Option<String>) -> Row {
    Row {
        order_id: order_id.to_owned(),
        wms_order_id: None,
        shop_status: None,
        wms_status,
        wms_stage: None,
        crm_status: None,
        crm_shipped: None,
        track_wms: None,
        track_crm: None,
        class: class_name.to_owned(),
        note: None,
    }
}

pub(super) fn cells(row: &Row, fate: &Fate) -> Vec<Cell> {
    let note = match (row.note.as_deref(), fate.note.as_str()) {
        (Some(n), "") => n.to_owned(),
        (Some(n), f) => format!("{n}; {f}"),
        (None, f) => f.to_owned(),
    };
    vec![
        Cell::Text(row.order_id.clone()),
        row.wms_order_id.clone().into(),
        row.shop_status.clone().into(),
        row.wms_status.clone().into(),
        row.wms_stage.clone().into(),
        row.crm_status.clone().into(),
        row.crm_shipped.map(|b| b.to_string()).into(),
        row.track_wms.clone().into(),
        row.track_crm.clone().into(),
        Cell::Text(row.class.clone()),
        Cell::Text(fate.action.as_str().into()),
        Cell::Text(fate.result.as_str().into()),
        Cell::Text(note),
    ]
}

/// Records every planned correction as not sent (`guarded` or `dry-run`).
pub(super) fn mark_unsent(plan: &OrdersPlan, unsent: gate::Unsent, fates: &mut Fates) {
    let result = FateResult::Unsent(unsent);
    for m in &plan.crm_ship_marks {
        let fate = Fate::new(ReportAction::Crm(CrmEdit::ShipMark), result, "");
        for_ship_mark(
            fates,
            &m.order_id,
            m.track.is_some(),
            m.status.is_some(),
            &fate,
        );
    }
    for t in &plan.crm_tracks {
        fates.insert(
            (t.order_id.clone(), OrderClass::TrackMissingInCrm),
            Fate::new(
                ReportAction::Crm(CrmEdit::Track),
                result,
                format!("track {}", t.track),
            ),
        );
    }
    for id in &plan.wms_adds {
        fates.insert(
            (id.clone(), OrderClass::MissingInWms),
            Fate::new(ReportAction::WmsAdd, result, ""),
        );
    }
    for id in &plan.wms_cancels {
        fates.insert(
            (id.clone(), OrderClass::CancelledInShopActiveInWms),
            Fate::new(ReportAction::WmsCancel, result, ""),
        );
    }
}

/// A shipped mark also settles the order's track and status rows when it carries them.
pub(super) fn for_ship_mark(fates: &mut Fates, id: &str, track: bool, status: bool, fate: &Fate) {
    fates.insert(
        (id.to_owned(), OrderClass::ShippedNotMarkedInCrm),
        fate.clone(),
    );
    if track {
        fates.insert((id.to_owned(), OrderClass::TrackMissingInCrm), fate.clone());
    }
    if status {
        fates.insert((id.to_owned(), OrderClass::StatusMismatch), fate.clone());
    }
}

/// The report being written: its rows, the count of each class, and whether
/// something is left for a person.
struct ReportOut {
    csv: CsvReport,
    counts: BTreeMap<String, u64>,
    left_for_people: bool,
}

impl ReportOut {
    fn row(&mut self, row: &Row, fate: &Fate) -> Result<()> {
        *self.counts.entry(row.class.clone()).or_insert(0) += 1;
        if !fate.settled() {
            self.left_for_people = true;
        }
        self.csv.row(&cells(row, fate))?;
        Ok(())
    }

    /// A report-only row beside the classified ones.
    fn extra(
        &mut self,
        order_id: &str,
        class_name: &str,
        wms_status: Option<String>,
        note: impl Into<String>,
    ) -> Result<()> {
        let row = extra_row(order_id, class_name, wms_status);
        self.row(&row, &Fate::report(note))
    }
}

/// What the report phase hands to [`gate::finish`].
pub(super) struct Reported {
    pub(super) path: PathBuf,
    pub(super) counts: BTreeMap<String, u64>,
    pub(super) left_for_people: bool,
}

/// Writes `orders-<date>-<run>.csv`: every classified row that is not `ok`
/// with its fate, then the unmapped, unknown and noted orders.
pub(super) fn write_report(
    ctx: &Context,
    run_id: i64,
    src: &Sources,
    plan: &RunPlan,
    fates: &Fates,
    notes: &[op::Note],
) -> Result<Reported> {
    let csv = CsvReport::create(
        &ctx.report_dir,
        &file_name(JOB, ctx.today(), run_id),
        ctx.config.reports.dialect,
        &REPORT_COLUMNS,
    )?;
    let mut out = ReportOut {
        csv,
        counts: BTreeMap::new(),
        left_for_people: false,
    };
    for row in &plan.rows {
        if row.class == class::OK {
            *out.counts.entry(row.class.clone()).or_insert(0) += 1;
            continue;
        }
        let fate = order_class(&row.class)
            .and_then(|c| fates.get(&(row.order_id.clone(), c)))
            .cloned()
            .unwrap_or_else(|| Fate::report(""));
        out.row(row, &fate)?;
    }
    for (id, status) in &plan.unmapped {
        let note =
            format!("WMS status {status} is not in the status map; the order was not compared");
        out.extra(id, CLASS_UNMAPPED_STATUS, Some(status.to_string()), note)?;
    }
    for (id, why) in &src.wms.unknown {
        out.extra(id, CLASS_WMS_STATE_UNKNOWN, None, why.clone())?;
    }
    for n in notes {
        let wms_status = src.wms.views.get(&n.order_id).map(|v| v.status.to_string());
        out.extra(&n.order_id, n.class, wms_status, n.note.clone())?;
    }
    Ok(Reported {
        path: out.csv.finish()?,
        counts: out.counts,
        left_for_people: out.left_for_people,
    })
}
