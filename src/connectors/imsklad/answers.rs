//! IMSKLAD answer types: write outcomes, stock answers and billing.

use super::*;

/// The result of a write that IMSKLAD accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// `{"result":"ok","id":…}`.
    Ok {
        /// WMS id of the object, when answered.
        id: Option<i64>,
    },
    /// `{"result":"warning","warning":…,"id":…}`: partially applied.
    Warning {
        /// WMS id of the object, when answered.
        id: Option<i64>,
        /// The warning text.
        warning: String,
    },
}

impl WriteOutcome {
    /// The WMS id, whatever the outcome.
    pub fn id(&self) -> Option<i64> {
        match self {
            WriteOutcome::Ok { id } | WriteOutcome::Warning { id, .. } => *id,
        }
    }

    /// The warning text, if any.
    pub fn warning(&self) -> Option<&str> {
        match self {
            WriteOutcome::Ok { .. } => None,
            WriteOutcome::Warning { warning, .. } => Some(warning),
        }
    }
}

/// Stock of one product (`get_stock` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockRow {
    /// WMS goods id.
    pub id: i64,
    /// Units in the warehouse.
    pub stock: i64,
    /// Units reserved by orders (a missing `reserved` is 0).
    pub reserved: i64,
}

/// A `get_stock` row whose figures sverka cannot read: no `stock`, or a
/// `stock`/`reserved` that is not a non-negative integer. Its SKU is
/// `wms_unreadable`: nothing is corrected for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableStock {
    /// WMS goods id.
    pub id: i64,
    /// What is wrong with the row.
    pub reason: String,
}

/// `get_stock`'s answer: the readable rows (sorted by id) and the unreadable ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockAnswer {
    /// Rows with readable figures.
    pub rows: Vec<StockRow>,
    /// Rows sverka cannot read.
    pub unreadable: Vec<UnreadableStock>,
}

impl StockAnswer {
    pub(super) fn extend(&mut self, other: StockAnswer) {
        self.rows.extend(other.rows);
        self.unreadable.extend(other.unreadable);
    }
}

/// Billing type "other".
pub const BILLING_KIND_OTHER: i64 = 9;
/// A billing line without `type` whose comment names no documented operation
/// (the IMSKLAD API documentation's own example has no `type` on any line): it takes part in no
/// tariff or duplicate check and is reported as `untyped_charge`.
pub const BILLING_KIND_UNTYPED: i64 = -1;

/// The operation type a line's comment names, for lines without `type`:
/// the comments the IMSKLAD API documentation lists ("Сборка заказа" → 0, "Пополнение баланса"
/// → 1, "Доставка…" → 2, "Забор товара" → 9; case and surrounding spaces
/// ignored), else [`BILLING_KIND_UNTYPED`].
pub fn billing_kind_from_comment(comment: &str) -> i64 {
    let c = comment.trim().to_lowercase();
    if c.starts_with("сборка заказа") {
        0
    } else if c.starts_with("пополнение баланса") {
        1
    } else if c.starts_with("доставка") {
        2
    } else if c.starts_with("забор товара") {
        BILLING_KIND_OTHER
    } else {
        BILLING_KIND_UNTYPED
    }
}

pub(super) fn comment_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient::opt_id_keep_empty(d)?.unwrap_or_default())
}

/// A `billing[]` line as sent: `type` may be missing.
#[derive(Deserialize)]
pub(super) struct RawBillingLine {
    #[serde(deserialize_with = "lenient::int")]
    pub(super) id: i64,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub(super) order_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) foreign_order_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub(super) doc_request_id: Option<i64>,
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_int")]
    pub(super) kind: Option<i64>,
    #[serde(deserialize_with = "lenient::int")]
    pub(super) date: i64,
    #[serde(rename = "amount", with = "money")]
    pub(super) amount_kop: i64,
    #[serde(default, deserialize_with = "comment_text")]
    pub(super) comment: String,
}

impl From<RawBillingLine> for BillingLine {
    fn from(r: RawBillingLine) -> Self {
        BillingLine {
            id: r.id,
            order_id: r.order_id,
            foreign_order_id: r.foreign_order_id,
            doc_request_id: r.doc_request_id,
            kind: r
                .kind
                .unwrap_or_else(|| billing_kind_from_comment(&r.comment)),
            date: r.date,
            amount_kop: r.amount_kop,
            comment: r.comment,
        }
    }
}

/// One balance operation (`get_billing` → `billing[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RawBillingLine")]
pub struct BillingLine {
    /// Operation id.
    pub id: i64,
    /// WMS order id.
    pub order_id: Option<i64>,
    /// Partner (shop) order id.
    pub foreign_order_id: Option<String>,
    /// WMS request (document) id.
    pub doc_request_id: Option<i64>,
    /// `type`: 0 assembly, 1 top-up, 2 delivery, 9 other; without `type`, the
    /// type its comment names ([`billing_kind_from_comment`]), else
    /// [`BILLING_KIND_UNTYPED`].
    pub kind: i64,
    /// Operation time (unix).
    pub date: i64,
    /// Amount in kopecks; negative is a charge.
    pub amount_kop: i64,
    /// Comment (empty when absent).
    pub comment: String,
}

/// The `get_billing` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Billing {
    /// Balance now, kopecks.
    #[serde(rename = "current_balance", with = "money")]
    pub current_balance_kop: i64,
    /// Balance change over the period, kopecks.
    #[serde(rename = "change_of_balance", with = "money")]
    pub change_of_balance_kop: i64,
    /// Operations of the period.
    #[serde(rename = "billing", default, deserialize_with = "lenient::list")]
    pub lines: Vec<BillingLine>,
}
