//! WMS corrections: goods registered or updated in the WMS, as the plan's
//! [`Registration`]s say (the records sent were read with the other sources).

use anyhow::Result;
use serde_json::json;

use super::super::Context;
use super::plan::{Registration, WmsStep};
use super::report::{Action, Fate, FateResult, Ledger};
use super::JOB;
use crate::config::WmsKind;
use crate::connectors::imsklad::{self, Good, ImskladClient, ImskladError};
use crate::db::journal::{CorrectionStatus, Target};
use crate::db::mapping::{self, MapKind};
use crate::progress::Progress;
use crate::reconcile::stock::class;
use crate::report::summary::CorrectionCounts;

/// True when an `update_good` look-up answer means "unknown to the WMS"
/// (code 2, or code 4: UNVERIFIED which one the real service sends).
fn unknown_good(e: &ImskladError) -> bool {
    e.is_not_found() || e.is_not_performed()
}

/// Takes each registration's step (none after a stop request) and records
/// its fate on the SKU's `missing_in_wms` line.
pub(super) async fn apply_wms(
    ctx: &Context,
    run_id: i64,
    registrations: &[Registration],
    ledger: &mut Ledger,
) -> Result<()> {
    if registrations.is_empty() {
        return Ok(());
    }
    if ctx.config.wms.kind == WmsKind::Egon {
        // EGON registers nothing: every step is a note.
        for r in registrations {
            let fate = match &r.step {
                WmsStep::Report(note) => Fate::report(note.text()),
                _ => Fate::report(String::new()),
            };
            ledger.set(&r.sku, class::MISSING_IN_WMS, fate);
        }
        return Ok(());
    }
    let wms = Registrar {
        ctx,
        client: ctx.imsklad()?,
        run_id,
    };
    let bar = Progress::counter(
        "registering SKUs in IMSKLAD",
        registrations.len() as u64,
        "SKUs",
    );
    for r in registrations {
        bar.inc(1);
        let fate = if ctx.stop.is_stopped() {
            Fate::new(Action::WmsRegister, FateResult::Skipped, "stop requested")
        } else {
            wms.register(r, &mut ledger.corrections).await?
        };
        ledger.set(&r.sku, class::MISSING_IN_WMS, fate);
    }
    drop(bar);
    Ok(())
}

/// The two IMSKLAD catalogue writes of a registration.
#[derive(Debug, Clone, Copy)]
enum GoodWrite {
    /// `update_good`: the look-up of a partner id (it refreshes the WMS copy).
    Update,
    /// `add_good`.
    Add,
}

impl GoodWrite {
    /// The IMSKLAD action, as journaled.
    fn action(self) -> &'static str {
        match self {
            GoodWrite::Update => "update_good",
            GoodWrite::Add => "add_good",
        }
    }
}

/// The IMSKLAD registrations of one run.
struct Registrar<'a> {
    ctx: &'a Context,
    client: ImskladClient,
    run_id: i64,
}

impl Registrar<'_> {
    /// Takes `r`'s step; the fate of the SKU's line.
    async fn register(&self, r: &Registration, corrections: &mut CorrectionCounts) -> Result<Fate> {
        match &r.step {
            WmsStep::Report(note) => Ok(Fate::report(note.text())),
            WmsStep::Add(good) => {
                let (result, note) = self.add_good(&r.sku, good, corrections).await?;
                Ok(Fate::new(Action::WmsAdd, result, note))
            }
            WmsStep::LookUp { good, create } => {
                self.look_up(&r.sku, good, *create, corrections).await
            }
        }
    }

    /// Journals `write` of `good` for `sku`, then sends it; a goods id in
    /// the answer is mapped and settles the write ([`record_mapped`]).
    /// Returns the journal id and the WMS's answer.
    async fn send(
        &self,
        write: GoodWrite,
        sku: &str,
        good: &Good,
        corrections: &mut CorrectionCounts,
    ) -> Result<(i64, std::result::Result<i64, ImskladError>)> {
        let payload = serde_json::to_value(good).unwrap_or_default();
        let id = self
            .ctx
            .journal(self.run_id, JOB)
            .plan(Target::Wms, write.action(), sku, &payload)
            .await?;
        let answer = match write {
            GoodWrite::Update => self.client.update_good(good).await,
            GoodWrite::Add => self.client.add_good(good).await,
        };
        if let Ok(wms_id) = answer {
            record_mapped(self.ctx, sku, id, wms_id, corrections).await?;
        }
        Ok((id, answer))
    }

    /// `update_good`, journaled: maps a SKU the WMS knows; one it does not
    /// know is created (`create`) or marked absent until the next look-up.
    async fn look_up(
        &self,
        sku: &str,
        good: &Good,
        create: bool,
        corrections: &mut CorrectionCounts,
    ) -> Result<Fate> {
        let ctx = self.ctx;
        let (id, answer) = self.send(GoodWrite::Update, sku, good, corrections).await?;
        match answer {
            Ok(wms_id) => {
                let note = format!("known to the WMS as goods id {wms_id}; mapped");
                Ok(Fate::new(Action::WmsRegister, FateResult::Applied, note))
            }
            // UNVERIFIED: the IMSKLAD API documentation does not say what update_good of an
            // unknown id answers; code 2 (not found) and code 4 (not
            // performed) both count as "unknown to the WMS".
            Err(e) if unknown_good(&e) => {
                ctx.writer()
                    .settle(id, CorrectionStatus::Failed, &crate::errors::chain(&e))
                    .await?;
                if create {
                    let (result, note) = self.add_good(sku, good, corrections).await?;
                    return Ok(Fate::new(Action::WmsAdd, result, note));
                }
                let now = crate::db::now_ms().to_string();
                mapping::put(&ctx.state, MapKind::AbsentGood, sku, &now).await?;
                Ok(Fate::report(
                    "unknown to the WMS; set [stock] create_missing_in_wms = true to create it",
                ))
            }
            Err(e) => {
                ctx.writer()
                    .settle(id, CorrectionStatus::Failed, &crate::errors::chain(&e))
                    .await?;
                corrections.failed += 1;
                Ok(Fate::new(
                    Action::WmsRegister,
                    FateResult::Failed,
                    crate::errors::chain(&e),
                ))
            }
        }
    }

    /// `add_good`, journaled; maps the SKU to the answered WMS id. The note
    /// is the new id, or the refusal's text.
    async fn add_good(
        &self,
        sku: &str,
        good: &Good,
        corrections: &mut CorrectionCounts,
    ) -> Result<(FateResult, String)> {
        let ctx = self.ctx;
        let (add, answer) = self.send(GoodWrite::Add, sku, good, corrections).await?;
        match answer {
            Ok(wms_id) => {
                let note = format!("created in the WMS as goods id {wms_id}");
                Ok((FateResult::Applied, note))
            }
            Err(e) => {
                // add_good is not idempotent: an ambiguous failure is `unknown`.
                let (status, outcome) = super::super::failed_write(
                    imsklad::is_idempotent(GoodWrite::Add.action()),
                    e.is_ambiguous(),
                );
                let mut text = crate::errors::chain(&e);
                if status == CorrectionStatus::Unknown {
                    text.push_str(
                        "; it may have been created: not re-sent in this run, the next run looks it up",
                    );
                }
                ctx.writer().settle(add, status, &text).await?;
                super::super::count_failure(corrections, status);
                Ok((outcome.into(), text))
            }
        }
    }
}

/// A SKU the WMS answered with its goods id: mapped, no longer absent, its
/// correction settled applied with the id, and counted.
async fn record_mapped(
    ctx: &Context,
    sku: &str,
    journal_id: i64,
    wms_id: i64,
    corrections: &mut CorrectionCounts,
) -> Result<()> {
    mapping::put(&ctx.state, MapKind::Good, sku, &wms_id.to_string()).await?;
    mapping::remove(&ctx.state, MapKind::AbsentGood, sku).await?;
    ctx.writer()
        .settle(
            journal_id,
            CorrectionStatus::Applied,
            &json!({"id": wms_id}).to_string(),
        )
        .await?;
    corrections.applied += 1;
    Ok(())
}
