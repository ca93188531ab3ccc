//! Merging several `get_billing` answers into one period's lines and daily changes.

use super::*;

// ---------------------------------------------------------------------------

/// The period's billing as read from several answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Merged {
    /// Each line once, dated in the period, sorted by id.
    pub lines: Vec<BillingLine>,
    /// Change of balance per day (lines attributed to the day of their date).
    pub day_change_kop: Vec<i64>,
    /// The period's change of balance: Σ of the daily changes.
    pub change_kop: i64,
    /// Balance at the end of the period.
    pub closing_kop: i64,
    /// Change from the period's end to now (None: the period reaches into the future).
    pub after_change_kop: Option<i64>,
    /// Extra appearances of lines already read (counted once).
    pub repeated: usize,
    /// Lines dated outside the period that an answer listed (left out).
    pub outside: usize,
}

pub(super) fn add(a: i64, b: i64, what: &'static str) -> Result<i64, BillingError> {
    a.checked_add(b).ok_or(BillingError::Overflow(what))
}

pub(super) fn sub(a: i64, b: i64, what: &'static str) -> Result<i64, BillingError> {
    a.checked_sub(b).ok_or(BillingError::Overflow(what))
}

/// Merges one answer per day of `period` (in order) and the answer from the
/// period's end to now (see the module docs).
pub fn merge_answers(
    period: &Period,
    answers: &[Billing],
    after: Option<&Billing>,
) -> Result<Merged, BillingError> {
    const WHAT: &str = "change of balance";
    let mut day_change: Vec<i64> = answers.iter().map(|a| a.change_of_balance_kop).collect();
    day_change.resize(period.days.len(), 0);
    // id → (line, its day, seen in its own day's answer)
    let mut kept: BTreeMap<i64, (BillingLine, usize, bool)> = BTreeMap::new();
    let mut outside: BTreeSet<i64> = BTreeSet::new();
    let mut repeated = 0;
    let mut after_change = after.map(|a| a.change_of_balance_kop);
    let sources = answers
        .iter()
        .enumerate()
        .map(|(j, a)| (Some(j), a))
        .chain(after.map(|a| (None, a)));
    for (answer_day, answer) in sources {
        for line in &answer.lines {
            let own = period.day_of(line.date);
            match (answer_day, own) {
                (Some(j), _) if own != Some(j) => {
                    if let Some(c) = day_change.get_mut(j) {
                        *c = sub(*c, line.amount_kop, WHAT)?;
                    }
                }
                (None, _) if line.date < period.end() => {
                    if let Some(c) = after_change.as_mut() {
                        *c = sub(*c, line.amount_kop, WHAT)?;
                    }
                }
                _ => {}
            }
            let Some(k) = own else {
                if answer_day.is_some() || line.date < period.start() {
                    outside.insert(line.id);
                }
                continue;
            };
            let in_own = answer_day == Some(k);
            match kept.get_mut(&line.id) {
                Some(entry) => {
                    repeated += 1;
                    entry.2 |= in_own;
                }
                None => {
                    kept.insert(line.id, (line.clone(), k, in_own));
                }
            }
        }
    }
    for (line, k, in_own) in kept.values() {
        if !in_own {
            if let Some(c) = day_change.get_mut(*k) {
                *c = add(*c, line.amount_kop, WHAT)?;
            }
        }
    }
    let change = day_change
        .iter()
        .try_fold(0i64, |sum, c| add(sum, *c, WHAT))?;
    let closing = match (after, after_change) {
        (Some(a), Some(c)) => sub(a.current_balance_kop, c, "closing balance")?,
        _ => answers.last().map_or(0, |a| a.current_balance_kop),
    };
    Ok(Merged {
        lines: kept.into_values().map(|(line, _, _)| line).collect(),
        day_change_kop: day_change,
        change_kop: change,
        closing_kop: closing,
        after_change_kop: after_change,
        repeated,
        outside: outside.len(),
    })
}

/// The balance at the end of each day: the closing balance minus the changes
/// of the days after it.
pub fn daily_closings(closing_kop: i64, day_change_kop: &[i64]) -> Result<Vec<i64>, BillingError> {
    let mut out = vec![0; day_change_kop.len()];
    let mut balance = closing_kop;
    for (i, change) in day_change_kop.iter().enumerate().rev() {
        out[i] = balance;
        balance = sub(balance, *change, "daily closing balance")?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
