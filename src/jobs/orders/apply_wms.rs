//! WMS corrections: the orders and cancellations planned for IMSKLAD or EGON
//! (built from what the run read), and sending them.

use super::*;

// ---------------------------------------------------------------------------
// WMS corrections
// ---------------------------------------------------------------------------

/// What the WMS steps are planned from: the shop's orders and items by
/// order id, the goods id mapping and the stored order copies.
pub(super) struct ShopData<'a> {
    orders: BTreeMap<&'a str, &'a ShopOrder>,
    items: BTreeMap<&'a str, Vec<&'a ShopOrderItem>>,
    goods_ids: &'a Option<BTreeMap<String, String>>,
    documents: &'a BTreeMap<String, String>,
}

impl<'a> ShopData<'a> {
    /// Indexes what the run read.
    pub(super) fn of(src: &'a Sources) -> ShopData<'a> {
        let mut items: BTreeMap<&str, Vec<&ShopOrderItem>> = BTreeMap::new();
        for item in &src.shop_items {
            items.entry(item.order_id.as_str()).or_default().push(item);
        }
        ShopData {
            orders: src.shop_orders.iter().map(|o| (o.id.as_str(), o)).collect(),
            items,
            goods_ids: &src.goods_ids,
            documents: &src.documents,
        }
    }

    fn line_ids(&self) -> op::LineIds<'_> {
        match self.goods_ids {
            Some(m) => op::LineIds::Wms(m),
            None => op::LineIds::Partner,
        }
    }
}

/// EGON's address fields, split from the shop's one-line address.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct AddressParts {
    pub(super) postal_code: String,
    pub(super) city: String,
    pub(super) street: String,
    pub(super) number: String,
}

/// Splits a one-line address `postal code, city, street, house` (each part
/// optional, in that order; `д.`/`дом` before the house number is dropped).
/// Parts that cannot be found stay empty, and EGON refuses the order naming them.
pub(super) fn split_address(address: &str) -> AddressParts {
    let mut parts: Vec<&str> = address
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let mut out = AddressParts::default();
    if parts
        .first()
        .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
    {
        out.postal_code = parts.remove(0).to_owned();
    }
    let house = |p: &str| {
        let p = p.trim();
        let p = p
            .strip_prefix("д.")
            .or_else(|| p.strip_prefix("дом"))
            .unwrap_or(p);
        p.trim().to_owned()
    };
    match parts.as_slice() {
        [] => {}
        [street] => out.street = (*street).to_owned(),
        [city, street] => {
            out.city = (*city).to_owned();
            match street.rsplit_once(' ') {
                Some((name, number)) if number.chars().any(|c| c.is_ascii_digit()) => {
                    out.street = name.trim().to_owned();
                    out.number = house(number);
                }
                _ => out.street = (*street).to_owned(),
            }
        }
        [city, middle @ .., last] => {
            out.city = (*city).to_owned();
            if last.chars().any(|c| c.is_ascii_digit()) {
                out.street = middle.join(", ");
                out.number = house(last);
            } else {
                out.street = middle
                    .iter()
                    .chain([last])
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
            }
        }
    }
    out
}

/// The EGON order for a shop order and its lines.
pub(super) fn egon_order(
    order: &ShopOrder,
    items: &[&ShopOrderItem],
    shop_setting_id: i64,
    delivery_id: i64,
) -> NewOrder {
    let name = order.customer_name.trim();
    let (first, last) = name.split_once(' ').unwrap_or((name, ""));
    let phone = order.phone.clone().unwrap_or_default();
    let email = order.email.clone().unwrap_or_default();
    let address = split_address(order.address.as_deref().unwrap_or_default());
    NewOrder {
        original_order_id: order.id.clone(),
        shop_setting_id,
        reference_number: Some(order.id.clone()),
        customer_name: first.to_owned(),
        customer_surname: last.trim().to_owned(),
        customer_phone: phone.clone(),
        customer_email: email.clone(),
        name: first.to_owned(),
        surname: last.trim().to_owned(),
        phone,
        email,
        street: address.street,
        street_number: address.number,
        city: address.city,
        country: "RU".into(),
        postal_code: address.postal_code,
        id_delivery: delivery_id,
        delivery_branch_id: None,
        payment_cod: !order.paid,
        cod_price_kop: (!order.paid).then_some(order.total_kop),
        currency: Some("RUB".into()),
        note: None,
        items: items
            .iter()
            .map(|i| egon::NewOrderItem {
                item_id: i.sku.clone(),
                name: i.name.clone().unwrap_or_else(|| i.sku.clone()),
                count: i.quantity,
                catalog_id: None,
                price_with_tax_kop: Some(i.price_kop),
            })
            .collect(),
    }
}

/// The WMS addition of order `id` as it goes out, or why it does not.
pub(super) fn plan_add(config: &crate::config::Config, shop: &ShopData<'_>, id: &str) -> WmsStep {
    let (Some(order), Some(items)) = (shop.orders.get(id), shop.items.get(id)) else {
        return WmsStep::Held("the shop lists no items for this order; not sent".into());
    };
    match config.wms.kind {
        WmsKind::Imsklad => match op::imsklad_order(order, items, shop.line_ids()) {
            Ok(o) => WmsStep::ImskladAdd(o),
            Err(why) => WmsStep::Held(format!("not sent: {why}")),
        },
        WmsKind::Egon => {
            let (Some(setting), Some(delivery)) = (
                config.orders.egon_shop_setting_id,
                config.orders.egon_delivery_id,
            ) else {
                return WmsStep::Held(
                    "set [orders] egon_shop_setting_id and egon_delivery_id to send it to EGON"
                        .into(),
                );
            };
            let o = egon_order(order, items, setting, delivery);
            let problems = op::create_order_problems(&o);
            if problems.is_empty() {
                WmsStep::EgonAdd(o)
            } else {
                WmsStep::Held(format!(
                    "not sent: EGON would refuse CreateNewOrder with 301: {}",
                    problems.join("; ")
                ))
            }
        }
    }
}

/// The WMS cancellation of order `id` as it goes out, or why it does not.
pub(super) fn plan_cancel(kind: WmsKind, shop: &ShopData<'_>, id: &str) -> WmsStep {
    if kind == WmsKind::Egon {
        return WmsStep::EgonCancel;
    }
    let from_shop = || {
        let order = shop
            .orders
            .get(id)
            .ok_or_else(|| "not in the shop's window; not cancelled".to_owned())?;
        let items = shop.items.get(id).map(Vec::as_slice).unwrap_or_default();
        op::imsklad_order(order, items, shop.line_ids())
    };
    let stored = shop.documents.get(id).map(String::as_str);
    match op::cancellation(stored, id, from_shop) {
        Ok((order, full)) => WmsStep::ImskladCancel { order, full },
        Err(why) => WmsStep::Held(why),
    }
}

/// Journals a correction as planned (the lock checked first); answers its id.
pub(super) async fn plan_write(
    ctx: &Context,
    run_id: i64,
    target: Target,
    action: JournalAction,
    id: &str,
    payload: &Value,
) -> Result<i64> {
    Ok(ctx
        .writer()
        .plan(&Planned {
            run_id,
            job: JOB,
            target,
            action: action.as_str(),
            item_key: id,
            payload,
        })
        .await?)
}

/// Settles a write that either landed (journaled as applied with `answer`)
/// or failed (with the error's text, which the inner error carries).
pub(super) async fn settle_plain(
    ctx: &Context,
    journal_id: i64,
    answer: Result<String, String>,
) -> Result<Result<(), String>> {
    let (status, text) = match &answer {
        Ok(answer) => (CorrectionStatus::Applied, answer),
        Err(text) => (CorrectionStatus::Failed, text),
    };
    ctx.writer().settle(journal_id, status, text).await?;
    Ok(answer.map(|_| ()))
}

/// Settles an IMSKLAD write: `ok` applied, `warning` partial, error failed.
pub(super) async fn settle_imsklad(
    ctx: &Context,
    journal_id: i64,
    answer: &Result<WriteOutcome, crate::connectors::imsklad::ImskladError>,
    corrections: &mut CorrectionCounts,
) -> Result<(FateResult, String)> {
    Ok(match answer {
        Ok(WriteOutcome::Ok { id }) => {
            ctx.writer()
                .settle(
                    journal_id,
                    CorrectionStatus::Applied,
                    &json!({"result": "ok", "id": id}).to_string(),
                )
                .await?;
            corrections.applied += 1;
            (
                FateResult::Applied,
                id.map(|i| format!("WMS order id {i}")).unwrap_or_default(),
            )
        }
        Ok(WriteOutcome::Warning { id, warning }) => {
            let answer = json!({"result": "warning", "warning": warning, "id": id}).to_string();
            ctx.writer()
                .settle(journal_id, CorrectionStatus::Partial, &answer)
                .await?;
            corrections.partial += 1;
            (FateResult::Partial, format!("IMSKLAD warning: {warning}"))
        }
        Err(e) => {
            let idempotent = e
                .action()
                .is_none_or(crate::connectors::imsklad::is_idempotent);
            let (status, _) = super::super::failed_write(idempotent, e.is_ambiguous());
            let mut text = crate::errors::chain(&e);
            if status == CorrectionStatus::Unknown {
                text.push_str(
                    "; it may have been applied: not re-sent in this run, the next run's read tells",
                );
            }
            ctx.writer().settle(journal_id, status, &text).await?;
            super::super::count_failure(corrections, status);
            (FateResult::of_failure(status), text)
        }
    })
}

/// The warehouse sverka writes to this run.
pub(super) enum WmsClient {
    /// IMSKLAD.
    Imsklad(crate::connectors::imsklad::ImskladClient),
    /// EGON.
    Egon(EgonClient),
}

/// Sends the planned WMS additions, then the cancellations.
pub(super) async fn apply_wms(
    ctx: &Context,
    run_id: i64,
    plan: &RunPlan,
    applied: &mut Applied,
) -> Result<()> {
    if plan.wms_adds.is_empty() && plan.wms_cancels.is_empty() {
        return Ok(());
    }
    let client = match ctx.config.wms.kind {
        WmsKind::Imsklad => WmsClient::Imsklad(ctx.imsklad()?),
        WmsKind::Egon => WmsClient::Egon(egon_client(ctx)?),
    };
    let bar = Progress::counter(
        "WMS order writes",
        (plan.wms_adds.len() + plan.wms_cancels.len()) as u64,
        "orders",
    );
    let add = (ReportAction::WmsAdd, OrderClass::MissingInWms);
    let cancel = (
        ReportAction::WmsCancel,
        OrderClass::CancelledInShopActiveInWms,
    );
    let adds = plan.wms_adds.iter().map(|s| (s, add));
    let cancels = plan.wms_cancels.iter().map(|s| (s, cancel));
    // Collected: an iterator of closures held across the awaits would make
    // the run's future lose `Send`.
    let steps: Vec<_> = adds.chain(cancels).collect();
    for ((id, step), (act, class)) in steps {
        bar.inc(1);
        let fate = if ctx.stop.is_stopped() {
            Fate::skipped(act)
        } else {
            send_step(ctx, &client, run_id, id, step, applied).await?
        };
        applied.fates.insert((id.clone(), class), fate);
    }
    Ok(())
}

/// Sends one planned WMS step and answers its fate.
async fn send_step(
    ctx: &Context,
    client: &WmsClient,
    run_id: i64,
    id: &str,
    step: &WmsStep,
    applied: &mut Applied,
) -> Result<Fate> {
    let corrections = &mut applied.corrections;
    match (step, client) {
        (WmsStep::Held(note), _) => Ok(Fate::report(note.clone())),
        (WmsStep::ImskladAdd(o), WmsClient::Imsklad(imsklad)) => {
            let act = ReportAction::WmsAdd;
            imsklad_send(ctx, imsklad, run_id, (id, o), act, corrections).await
        }
        (WmsStep::ImskladCancel { order, full }, WmsClient::Imsklad(imsklad)) => {
            if !full {
                applied.notes.push(partial_data_note(id, order));
            }
            let act = ReportAction::WmsCancel;
            imsklad_send(ctx, imsklad, run_id, (id, order), act, corrections).await
        }
        (WmsStep::EgonAdd(o), WmsClient::Egon(egon_api)) => {
            egon_add(ctx, egon_api, run_id, id, o, corrections).await
        }
        (WmsStep::EgonCancel, WmsClient::Egon(egon_api)) => {
            egon_cancel(ctx, egon_api, run_id, id, corrections).await
        }
        _ => anyhow::bail!("order {id}: the planned WMS write does not match [wms] kind"),
    }
}

/// IMSKLAD `add_order` (`act` [`ReportAction::WmsAdd`]: the WMS order id is
/// mapped) or `update_order` with `is_canceled = 1`
/// ([`ReportAction::WmsCancel`]); the order is remembered as sent.
async fn imsklad_send(
    ctx: &Context,
    imsklad: &crate::connectors::imsklad::ImskladClient,
    run_id: i64,
    (id, o): (&str, &Order),
    act: ReportAction,
    corrections: &mut CorrectionCounts,
) -> Result<Fate> {
    let add = act == ReportAction::WmsAdd;
    let action = if add {
        JournalAction::ImskladAdd
    } else {
        JournalAction::ImskladCancel
    };
    let payload = serde_json::to_value(o).unwrap_or_default();
    let jid = plan_write(ctx, run_id, Target::Wms, action, id, &payload).await?;
    let answer = if add {
        imsklad.add_order(o).await
    } else {
        imsklad.update_order(o).await
    };
    if let Some(wms_id) = answer
        .as_ref()
        .ok()
        .and_then(WriteOutcome::id)
        .filter(|_| add)
    {
        mapping::put(&ctx.state, MapKind::Order, id, &wms_id.to_string()).await?;
    }
    if answer.is_ok() {
        op::remember_sent(&ctx.state, o).await?;
    }
    let (result, note) = settle_imsklad(ctx, jid, &answer, corrections).await?;
    Ok(Fate::new(act, result, note))
}

/// EGON `CreateNewOrder`: the EGON order id is mapped.
async fn egon_add(
    ctx: &Context,
    egon_api: &EgonClient,
    run_id: i64,
    id: &str,
    o: &NewOrder,
    corrections: &mut CorrectionCounts,
) -> Result<Fate> {
    let payload = serde_json::to_value(o).unwrap_or_default();
    let action = JournalAction::EgonAdd;
    let jid = plan_write(ctx, run_id, Target::Wms, action, id, &payload).await?;
    let (answer, note) = match egon_api.create_new_order(o).await {
        Ok(created) => {
            let wms_id = created.order_id.to_string();
            mapping::put(&ctx.state, MapKind::Order, id, &wms_id).await?;
            let answer = json!({"order_id": created.order_id, "created": created.created});
            (Ok(answer.to_string()), format!("EGON order id {wms_id}"))
        }
        Err(e) => (Err(crate::errors::chain(&e)), String::new()),
    };
    let settled = settle_plain(ctx, jid, answer).await?;
    Ok(plain_fate(ReportAction::WmsAdd, settled, note, corrections))
}

/// The fate of a correction settled by [`settle_plain`], counted: applied
/// with `note`, or failed with the error's text.
pub(super) fn plain_fate(
    action: ReportAction,
    settled: Result<(), String>,
    note: String,
    corrections: &mut CorrectionCounts,
) -> Fate {
    match settled {
        Ok(()) => {
            corrections.applied += 1;
            Fate::new(action, FateResult::Applied, note)
        }
        Err(text) => {
            corrections.failed += 1;
            Fate::new(action, FateResult::Failed, text)
        }
    }
}

/// The note of a cancellation sent with the shop's data.
fn partial_data_note(id: &str, o: &Order) -> op::Note {
    op::Note {
        order_id: id.to_owned(),
        class: op::CLASS_PARTIAL_ORDER_DATA,
        note: format!(
            "sverka holds no full copy of the order as the WMS has it; the cancellation went out with the shop's data (discount {}, {} goods lines)",
            o.discount_kop as f64 / 100.0,
            o.goods.len()
        ),
    }
}

/// EGON `StornoOrder` by the shop's order id.
async fn egon_cancel(
    ctx: &Context,
    egon_api: &EgonClient,
    run_id: i64,
    id: &str,
    corrections: &mut CorrectionCounts,
) -> Result<Fate> {
    let payload = json!({"original_order_id": id});
    let action = JournalAction::EgonCancel;
    let jid = plan_write(ctx, run_id, Target::Wms, action, id, &payload).await?;
    let answer = egon_api
        .storno_order(OrderRef::Original(id.to_owned()))
        .await
        .map(|()| "{}".to_owned())
        .map_err(|e| crate::errors::chain(&e));
    let settled = settle_plain(ctx, jid, answer).await?;
    Ok(plain_fate(
        ReportAction::WmsCancel,
        settled,
        String::new(),
        corrections,
    ))
}
