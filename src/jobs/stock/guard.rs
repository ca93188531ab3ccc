//! The stock guards: how much of the catalogue a run may change before it stops.

use super::super::Context;
use super::read::WmsSnapshot;

/// What the guards look at.
pub(super) struct GuardInput {
    /// SKUs whose CRM or shop quantity the plan would change.
    pub(super) changed: usize,
    /// SKUs the run would look up or register in the WMS.
    pub(super) registrations: usize,
    /// Σ sellable now.
    pub(super) sellable_now: i64,
    /// Σ sellable of the baseline run (see [`crate::db::runs::last_baseline`]).
    pub(super) sellable_before: Option<i64>,
}

/// The guard that stops a run before it writes, if any.
pub(super) fn check_guards(ctx: &Context, snap: &WmsSnapshot, g: &GuardInput) -> Option<String> {
    let safety = &ctx.config.safety;
    let coverage = snap.coverage();
    if snap.expected > 0 && snap.reported == 0 {
        return Some(format!(
            "the WMS returned no readable stock rows for {} expected SKUs; refusing to treat that as zero stock",
            snap.expected
        ));
    }
    if coverage < safety.min_wms_coverage {
        return Some(format!(
            "the WMS reported {} of {} expected SKUs ({:.1}%), below [safety] min_wms_coverage = {:.1}%",
            snap.reported,
            snap.expected,
            coverage * 100.0,
            safety.min_wms_coverage * 100.0
        ));
    }
    // The share is over the SKUs the WMS should have reported (the mapped
    // ones; with EGON the shop's), not every SKU any source knows.
    if let Some(reason) =
        safety.change_guard(g.changed, snap.expected, "SKUs the WMS should report")
    {
        return Some(reason);
    }
    if let Some(before) = g.sellable_before.filter(|b| *b > 0) {
        let drop = before.saturating_sub(g.sellable_now) as f64 / before as f64;
        if drop > safety.max_stock_drop_share {
            return Some(format!(
                "total sellable stock fell from {before} to {} ({:.1}%) since the last successful run, above [safety] max_stock_drop_share = {:.1}%",
                g.sellable_now,
                drop * 100.0,
                safety.max_stock_drop_share * 100.0
            ));
        }
    }
    if g.registrations > safety.max_registrations {
        return Some(format!(
            "the run would look up or register {} SKUs in the WMS, above [safety] max_registrations = {} (a first run, or a lost id mapping?); check the mapping, then run with --force",
            g.registrations, safety.max_registrations
        ));
    }
    None
}
