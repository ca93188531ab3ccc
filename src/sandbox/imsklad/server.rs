//! The IMSKLAD sandbox HTTP server and its request dispatch (one handler per type/action).

use super::*;

/// An error answer `{"error": message, "code": code}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ApiFail {
    pub(super) code: i64,
    pub(super) message: String,
    pub(super) id: Option<i64>,
}

impl ApiFail {
    pub(super) fn new(code: i64, message: impl Into<String>) -> Self {
        ApiFail {
            code,
            message: message.into(),
            id: None,
        }
    }

    /// The answer to an `add_*` of a partner id that exists: code 4, with
    /// the existing object's id when [`ImskladState::duplicate_add_carries_id`].
    pub(super) fn duplicate(state: &ImskladState, message: &str, existing: i64) -> Self {
        ApiFail {
            code: CODE_NOT_PERFORMED,
            message: message.into(),
            id: state.duplicate_add_carries_id.then_some(existing),
        }
    }

    pub(super) fn bad(message: impl Into<String>) -> Self {
        Self::new(CODE_BAD_DATA, message)
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(CODE_NOT_FOUND, message)
    }

    pub(super) fn body(&self) -> String {
        match self.id {
            Some(id) => json!({ "error": self.message, "code": self.code, "id": id }),
            None => json!({ "error": self.message, "code": self.code }),
        }
        .to_string()
    }
}

/// The IMSKLAD sandbox: state, knobs and request log.
#[derive(Clone, Debug)]
pub struct ImskladSandbox {
    /// Warehouse state and test knobs.
    pub state: Arc<Mutex<ImskladState>>,
    /// Request log, latency and HTTP-level faults.
    pub control: SandboxControl,
}

impl ImskladSandbox {
    /// A sandbox accepting `key` for `storage_id`; `seed` drives random faults.
    pub fn new(key: &str, storage_id: i64, seed: u64) -> Self {
        ImskladSandbox {
            state: Arc::new(Mutex::new(ImskladState::new(key, storage_id))),
            control: SandboxControl::new("imsklad", seed),
        }
    }

    /// Locks the state (a poisoned lock is recovered: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, ImskladState> {
        lock(&self.state)
    }

    /// `POST /`, instrumented with the request log and fault injection.
    pub fn router(&self) -> Router {
        let app = Router::new()
            .route("/", post(handle))
            .with_state(self.state.clone());
        instrument(app, self.control.clone())
    }

    /// Serves the sandbox on `addr` (port 0 for an ephemeral port).
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<RunningServer> {
        spawn(self.router(), addr).await
    }
}

pub(super) fn lock(m: &Mutex<ImskladState>) -> MutexGuard<'_, ImskladState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn json_response(body: String) -> Response {
    ([(CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

pub(super) async fn handle(State(state): State<Arc<Mutex<ImskladState>>>, body: Bytes) -> Response {
    let _in_flight = InFlight::enter(&state);
    let delay = lock(&state).answer_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let answer = process(&mut lock(&state), &body);
    match answer {
        Ok(text) => json_response(text),
        Err(fail) => json_response(fail.body()),
    }
}

/// Counts a call as inside the handler until dropped (also when the client
/// goes away and the handler is cancelled mid-delay).
pub(super) struct InFlight<'a>(&'a Mutex<ImskladState>);

impl<'a> InFlight<'a> {
    pub(super) fn enter(state: &'a Mutex<ImskladState>) -> Self {
        let mut s = lock(state);
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut s = lock(self.0);
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

/// Parses the envelope, authenticates and dispatches; answers the body text.
pub(super) fn process(state: &mut ImskladState, body: &[u8]) -> Result<String, ApiFail> {
    let envelope: Value =
        crate::lenient::from_slice(body).map_err(|_| ApiFail::bad("Incorrect JSON"))?;
    let obj = envelope
        .as_object()
        .ok_or_else(|| ApiFail::bad("Incorrect request"))?;
    let key = obj.get("key").and_then(Value::as_str).unwrap_or("");
    if !state.key.matches(key) {
        return Err(ApiFail::bad("Incorrect key"));
    }
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
    let action = obj.get("action").and_then(Value::as_str).unwrap_or("");
    let data = match obj.get("data") {
        Some(Value::Null) | None => return Err(ApiFail::bad("Incorrect data: no data")),
        Some(d) => d,
    };
    if let Some(fail) = state.take_scripted(action) {
        return Err(fail);
    }
    dispatch(state, kind, action, data)
}

pub(super) fn dispatch(
    state: &mut ImskladState,
    kind: &str,
    action: &str,
    data: &Value,
) -> Result<String, ApiFail> {
    match (kind, action) {
        ("goods", "add_good") => add_good(state, data),
        ("goods", "update_good") => update_good(state, data),
        ("goods", "get_stock") => get_stock(state, data),
        ("order", "add_order") => add_order(state, data),
        ("order", "update_order") => update_order(state, data),
        ("preorder", "add_preorder") => add_preorder(state, data),
        ("preorder", "update_preorder") => update_preorder(state, data),
        ("doc", "add_doc") => add_doc(state, data),
        ("doc", "update_doc") => update_doc(state, data),
        ("billing", "get_billing") => get_billing(state, data),
        _ => Err(ApiFail::bad(format!(
            "Unknown type or action: {kind}/{action}"
        ))),
    }
}

pub(super) fn ok_id(id: i64) -> String {
    json!({ "result": "ok", "id": id }).to_string()
}

pub(super) fn parse<T: DeserializeOwned>(data: &Value) -> Result<T, ApiFail> {
    serde_json::from_value(data.clone()).map_err(|e| ApiFail::bad(format!("Incorrect data: {e}")))
}

pub(super) fn require_nonempty(id: &str) -> Result<(), ApiFail> {
    if id.trim().is_empty() {
        return Err(ApiFail::bad("Incorrect data: empty id"));
    }
    Ok(())
}

/// Checks the required `storage_id` against the configured one.
pub(super) fn check_storage(state: &ImskladState, data: &Value) -> Result<(), ApiFail> {
    let given = data
        .get("storage_id")
        .ok_or_else(|| ApiFail::bad("Incorrect data: missing field `storage_id`"))?;
    match crate::lenient::value_to_i64(given) {
        Some(id) if id == state.storage_id => Ok(()),
        Some(_) => Err(ApiFail::not_found("Storage not found")),
        None => Err(ApiFail::bad("Incorrect data: storage_id")),
    }
}

/// [`ImskladStrictness::integer_line_ids`]: every `goods[].id` a JSON integer.
pub(super) fn check_integer_lines(state: &ImskladState, data: &Value) -> Result<(), ApiFail> {
    if !state.strict.integer_line_ids {
        return Ok(());
    }
    let lines = data.get("goods").map_or_else(Vec::new, |g| match g {
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) => m.values().collect(),
        _ => Vec::new(),
    });
    match lines
        .iter()
        .find(|l| !l.get("id").is_some_and(|v| v.is_i64() || v.is_u64()))
    {
        Some(l) => Err(ApiFail::bad(format!(
            "Incorrect data: goods.id must be Int, got {}",
            l.get("id").cloned().unwrap_or(Value::Null)
        ))),
        None => Ok(()),
    }
}

pub(super) fn check_lines(state: &ImskladState, lines: &[OrderGood]) -> Result<(), ApiFail> {
    if let Some(l) = lines.iter().find(|l| l.quantity <= 0) {
        return Err(ApiFail::bad(format!(
            "Incorrect data: quantity {} of good {}",
            l.quantity, l.id
        )));
    }
    match state.unknown_line(lines) {
        Some(missing) => Err(ApiFail::not_found(format!("Good not found: {missing}"))),
        None => Ok(()),
    }
}

pub(super) fn add_good(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    let good: Good = parse(data)?;
    require_nonempty(&good.id)?;
    if let Some(existing) = state.goods.get(&good.id) {
        return Err(ApiFail::duplicate(
            state,
            "Good already exists",
            existing.wms_id,
        ));
    }
    Ok(ok_id(state.put_good(good)))
}

pub(super) fn update_good(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    let good: Good = parse(data)?;
    if !state.goods.contains_key(&good.id) {
        let code = state.strict.update_good_unknown_code;
        return Err(ApiFail::new(
            code,
            if code == CODE_NOT_FOUND {
                "Good not found"
            } else {
                "Operation not performed"
            },
        ));
    }
    Ok(ok_id(state.put_good(good)))
}

pub(super) fn get_stock(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_storage(state, data)?;
    let ids = data
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiFail::bad("Incorrect data: ids must be an array"))?;
    let mut rows = Vec::new();
    for v in ids {
        let id = crate::lenient::value_to_i64(v)
            .ok_or_else(|| ApiFail::bad(format!("Incorrect data: id {v}")))?;
        if state.empty_stock || state.hidden_stock.contains(&id) {
            continue;
        }
        if let Some((stock, reserved)) = state.stock_of(id) {
            let mut row = stock_row(id, stock, reserved, state.stock_as_strings);
            if state.stockless_rows.contains(&id) {
                if let Some(obj) = row.as_object_mut() {
                    obj.remove("stock");
                }
            }
            rows.push(row);
        }
    }
    Ok(render_array(&rows, state.trailing_commas))
}

pub(super) fn stock_row(id: i64, stock: i64, reserved: i64, as_strings: bool) -> Value {
    if as_strings {
        json!({ "id": id.to_string(), "stock": stock.to_string(), "reserved": reserved.to_string() })
    } else {
        json!({ "id": id, "stock": stock, "reserved": reserved })
    }
}

/// A JSON array, pretty-printed and, if asked, with the doc's trailing commas.
pub(super) fn render_array(items: &[Value], trailing_commas: bool) -> String {
    if !trailing_commas {
        return Value::Array(items.to_vec()).to_string();
    }
    let mut out = String::from("[\n");
    for item in items {
        out.push_str(&render_object_trailing(item));
        out.push_str(",\n");
    }
    out.push(']');
    out
}

/// `{ "a": 1, "b": 2, }` (values rendered strictly).
pub(super) fn render_object_trailing(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut out = String::from("{");
            for (k, val) in map {
                out.push_str(&format!(" {}: {},", Value::from(k.as_str()), val));
            }
            out.push_str(" }");
            out
        }
        other => other.to_string(),
    }
}

pub(super) fn add_order(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_storage(state, data)?;
    check_integer_lines(state, data)?;
    let order: Order = parse(data)?;
    require_nonempty(&order.id)?;
    if let Some(existing) = state.orders.get(&order.id) {
        return Err(ApiFail::duplicate(
            state,
            "Order already exists",
            existing.wms_id,
        ));
    }
    check_lines(state, &order.goods)?;
    let status = if order.is_cancelled() {
        STATUS_CANCELLED
    } else {
        0
    };
    Ok(ok_id(state.insert_order(order, status)))
}

pub(super) fn update_order(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_integer_lines(state, data)?;
    let mut order: Order = parse(data)?;
    check_lines(state, &order.goods)?;
    let existing = state
        .orders
        .get(&order.id)
        .cloned()
        .ok_or_else(|| ApiFail::not_found("Order not found"))?;
    let goods_locked = existing.status >= STATUS_ASSEMBLY && existing.order.goods != order.goods;
    if goods_locked {
        order.goods = existing.order.goods.clone();
    }
    if order.guid.is_none() {
        order.guid = existing.order.guid.clone();
    }
    if ImskladState::holds_reservation(existing.status) && existing.order.goods != order.goods {
        state.reserve(&existing.order.goods, -1);
        state.reserve(&order.goods, 1);
    }
    let cancel = order.is_cancelled() && existing.status < STATUS_SHIPPED;
    let new_status = if cancel {
        STATUS_CANCELLED
    } else {
        existing.status
    };
    let goods = order.goods.clone();
    let wms_id = existing.wms_id;
    state.orders.insert(
        order.id.clone(),
        SandboxOrder {
            wms_id,
            status: new_status,
            order,
        },
    );
    state.move_stock_on_status(&goods, existing.status, new_status);
    if goods_locked {
        return Ok(
            json!({ "result": "warning", "warning": WARNING_GOODS_NOT_SAVED, "id": wms_id })
                .to_string(),
        );
    }
    Ok(ok_id(wms_id))
}

pub(super) fn add_preorder(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_storage(state, data)?;
    check_integer_lines(state, data)?;
    let doc: Preorder = parse(data)?;
    require_nonempty(&doc.id)?;
    check_kind(doc.kind)?;
    if let Some(existing) = state.preorders.get(&doc.id) {
        return Err(ApiFail::duplicate(
            state,
            "Preorder already exists",
            existing.wms_id,
        ));
    }
    check_lines(state, &doc.goods)?;
    let wms_id = state.allocate_id();
    state
        .preorders
        .insert(doc.id.clone(), SandboxDocument { wms_id, doc });
    Ok(ok_id(wms_id))
}

pub(super) fn update_preorder(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_integer_lines(state, data)?;
    let doc: Preorder = parse(data)?;
    check_kind(doc.kind)?;
    check_lines(state, &doc.goods)?;
    let existing = state
        .preorders
        .get_mut(&doc.id)
        .ok_or_else(|| ApiFail::not_found("Preorder not found"))?;
    existing.doc = doc;
    Ok(ok_id(existing.wms_id))
}

pub(super) fn add_doc(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_storage(state, data)?;
    check_integer_lines(state, data)?;
    let doc: Doc = parse(data)?;
    require_nonempty(&doc.id)?;
    check_kind(doc.kind)?;
    if let Some(existing) = state.docs.get(&doc.id) {
        return Err(ApiFail::duplicate(
            state,
            "Document already exists",
            existing.wms_id,
        ));
    }
    check_lines(state, &doc.goods)?;
    let wms_id = state.allocate_id();
    state
        .docs
        .insert(doc.id.clone(), SandboxDocument { wms_id, doc });
    Ok(ok_id(wms_id))
}

pub(super) fn update_doc(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_integer_lines(state, data)?;
    let doc: Doc = parse(data)?;
    check_kind(doc.kind)?;
    check_lines(state, &doc.goods)?;
    let existing = state
        .docs
        .get_mut(&doc.id)
        .ok_or_else(|| ApiFail::not_found("Document not found"))?;
    existing.doc = doc;
    Ok(ok_id(existing.wms_id))
}

/// Preorder and document `type`: 0 inbound / receipt, 1 outbound / write-off.
pub(super) fn check_kind(kind: i64) -> Result<(), ApiFail> {
    if kind == 0 || kind == 1 {
        Ok(())
    } else {
        Err(ApiFail::bad(format!("Incorrect data: type {kind}")))
    }
}

pub(super) fn get_billing(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_storage(state, data)?;
    let bound = |name: &str| {
        data.get(name)
            .and_then(crate::lenient::value_to_i64)
            .ok_or_else(|| ApiFail::bad(format!("Incorrect data: missing field `{name}`")))
    };
    let (from, to) = (bound("from")?, bound("to")?);
    let billing = state.billing_between(from, to);
    let strings = state.amounts_as_strings;
    let lines: Vec<Value> = billing
        .lines
        .iter()
        .map(|l| billing_line_json(l, strings, state.strict.billing_type))
        .collect();
    let lines_text = render_array(&lines, state.trailing_commas);
    Ok(format!(
        "{{\"current_balance\": {}, \"change_of_balance\": {}, \"from\": {from}, \"to\": {to}, \"billing\": {lines_text}}}",
        amount_json(billing.current_balance_kop, strings),
        amount_json(billing.change_of_balance_kop, strings),
    ))
}

pub(super) fn billing_line_json(l: &BookedLine, strings: bool, with_type: bool) -> Value {
    let mut v = json!({
        "id": l.id,
        "order_id": l.order_id,
        "foreign_order_id": l.foreign_order_id,
        "doc_request_id": l.doc_request_id,
        "type": l.kind,
        "date": l.date,
        "amount": amount_json(l.amount_kop, strings),
        "comment": l.comment,
    });
    if !with_type {
        if let Some(m) = v.as_object_mut() {
            m.remove("type");
        }
    }
    v
}
