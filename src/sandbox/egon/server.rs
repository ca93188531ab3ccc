//! The EGON sandbox HTTP server and its method handlers.

use super::*;

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// The EGON sandbox: shared state plus the fault-injection control.
#[derive(Clone)]
pub struct EgonSandbox {
    /// The world; lock it to seed or inspect.
    pub state: Arc<Mutex<EgonState>>,
    /// Request log and fault injection.
    pub control: SandboxControl,
}

impl EgonSandbox {
    /// A sandbox accepting these credentials; `seed` drives ids and random faults.
    pub fn new(auth_id: &str, auth_key: &str, auth_token: &str, seed: u64) -> Self {
        EgonSandbox {
            state: Arc::new(Mutex::new(EgonState::new(
                auth_id, auth_key, auth_token, seed,
            ))),
            control: SandboxControl::new("egon", seed),
        }
    }

    /// Locks the state (a poisoned lock is recovered: the sandbox keeps serving).
    pub fn lock(&self) -> MutexGuard<'_, EgonState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The instrumented router: `POST /` and `POST /rest/v1`.
    pub fn router(&self) -> Router {
        let app = Router::new()
            .route("/", post(handle))
            .route("/rest/v1", post(handle))
            .with_state(self.state.clone());
        instrument(app, self.control.clone())
    }

    /// Serves on `addr` (port 0 for an ephemeral port).
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<RunningServer> {
        spawn(self.router(), addr).await
    }
}

/// An answer: the documented envelope with `auth_status` 201 and `resp_code`.
pub(super) fn answer(code: i64, data: Option<Value>) -> Response {
    let note = format!("{code}: {}", codes::text(code));
    let mut response = json!({"resp_code": code, "resp_message": note});
    if let Some(d) = data {
        response["resp_data"] = d;
    }
    let status = if code == codes::TOO_MANY_REQUESTS {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    let body = json!({
        "auth_status": codes::AUTH_ACCEPTED,
        "auth_status_message": "201: Auth Accepted",
        "resp_code": code,
        "resp_note": note,
        "response": response,
    });
    (status, Json(body)).into_response()
}

/// An answer refused at the authentication stage (202 or 301).
pub(super) fn auth_answer(auth_status: i64) -> Response {
    let body = json!({
        "auth_status": auth_status,
        "auth_status_message": format!("{auth_status}: {}", codes::text(auth_status)),
    });
    (StatusCode::OK, Json(body)).into_response()
}

pub(super) fn bad_request(message: &str) -> Response {
    let body = json!({
        "auth_status": codes::AUTH_ACCEPTED,
        "auth_status_message": "201: Auth Accepted",
        "resp_code": codes::BAD_REQUEST,
        "resp_note": "301: Bad Request",
        "response": {"resp_code": codes::BAD_REQUEST, "resp_message": format!("301: Bad Request: {message}")},
    });
    (StatusCode::OK, Json(body)).into_response()
}

pub(super) async fn handle(State(state): State<Arc<Mutex<EgonState>>>, body: Bytes) -> Response {
    let Ok(v) = lenient::from_slice::<Value>(&body) else {
        return auth_answer(codes::BAD_REQUEST);
    };
    let (Some(auth), Some(request)) = (v.get("auth"), v.get("request")) else {
        return auth_answer(codes::BAD_REQUEST);
    };
    let Some(method) = request.get("req_method").and_then(Value::as_str) else {
        return auth_answer(codes::BAD_REQUEST);
    };
    let req_data = request.get("req_data").cloned().unwrap_or(Value::Null);
    let auth_id = auth
        .get("auth_id")
        .and_then(lenient::value_to_id)
        .unwrap_or_default();
    let mut st = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !st.admit(&auth_id) {
        return answer(codes::TOO_MANY_REQUESTS, None);
    }
    if !st.credentials_match(auth) {
        let mut refused = auth_answer(codes::AUTH_UNAUTHORIZED);
        if st.strict.auth_refusal_http_401 {
            *refused.status_mut() = StatusCode::UNAUTHORIZED;
        }
        return refused;
    }
    if let Some(code) = st.take_scripted(method) {
        return answer(code, None);
    }
    match method {
        "InventoryDetail" => inventory_detail(&st, &req_data),
        "GetOrderStatus" => get_order_status(&st, &req_data),
        "CreateNewOrder" => create_new_order(&mut st, &req_data),
        "StornoOrder" => storno_order(&mut st, &req_data),
        "UpdateInventoryCard" => update_inventory_card(&mut st, &req_data),
        _ => answer(codes::METHOD_NOT_FOUND, None),
    }
}

/// `InventoryDetail`: as documented, the payload sits directly in `response`
/// (no `resp_data`), keyed by EGON's card id; nothing found is PHP's `[]`.
pub(super) fn inventory_detail(st: &EgonState, data: &Value) -> Response {
    let ids: Vec<String> = match data.get("item_id_list") {
        Some(Value::Array(list)) => list.iter().filter_map(lenient::value_to_id).collect(),
        Some(Value::Object(m)) => m.values().filter_map(lenient::value_to_id).collect(),
        _ => return bad_request("item_id_list is mandatory"),
    };
    let only_on_stock = data
        .get("only_on_stock")
        .and_then(lenient::value_to_i64)
        .unwrap_or(0)
        != 0;
    let mut details = Map::new();
    for card in st.cards.values() {
        if !ids.is_empty() && !ids.contains(&card.item_id) {
            continue;
        }
        if only_on_stock && card.counts.all <= 0 {
            continue;
        }
        let entry = card_entry(st, card);
        details.insert(card.egon_id.to_string(), entry);
    }
    let details = if details.is_empty() {
        Value::Array(Vec::new())
    } else {
        Value::Object(details)
    };
    let body = json!({
        "auth_status": codes::AUTH_ACCEPTED,
        "auth_status_message": "201: Auth Accepted",
        "resp_code": codes::OK,
        "resp_note": "200: OK",
        "response": {
            "success": true,
            "inventory_details": details,
            "resp_code": codes::OK,
            "resp_note": "200: OK",
        },
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// One card of `InventoryDetail`, its counts broken as the fault asks.
fn card_entry(st: &EgonState, card: &SandboxCard) -> Value {
    let c = &card.counts;
    let mut entry = json!({
        "id": card.egon_id,
        "item_id": id_value(&card.item_id),
        "catalog_id": card.catalog_id,
        "ean": card.ean,
        "name": card.name,
        "count_types": {
            "all": c.all,
            "expired": c.expired,
            "damaged": c.damaged,
            "ordered": c.ordered,
            "reserved": c.reserved,
            "expirationBlocked": c.expiration_blocked,
            "changed_at": card.changed_at.format(DATETIME_FORMAT).to_string(),
        },
        "paired_cards": [],
    });
    if let (Some(&broken), Some(obj)) = (st.broken_counts.get(&card.item_id), entry.as_object_mut())
    {
        break_counts(obj, broken, c);
    }
    if st.strict.changed_at_on_card {
        entry["changed_at"] = json!(card.changed_at.format(DATETIME_FORMAT).to_string());
    }
    entry
}

/// Breaks a card's `count_types` the way the fault names.
fn break_counts(obj: &mut Map<String, Value>, broken: BrokenCounts, c: &CountTypes) {
    match broken {
        BrokenCounts::Missing => {
            obj.remove("count_types");
        }
        BrokenCounts::Null => {
            obj.insert("count_types".into(), Value::Null);
        }
        BrokenCounts::EmptyArray => {
            obj.insert("count_types".into(), json!([]));
        }
        BrokenCounts::EmptyObject => {
            obj.insert("count_types".into(), json!({}));
        }
        BrokenCounts::WithoutAll => {
            if let Some(Value::Object(counts)) = obj.get_mut("count_types") {
                counts.remove("all");
            }
        }
        BrokenCounts::UpperCase => {
            obj.remove("count_types");
            obj.insert("COUNT_TYPES".into(), super::state::upper_count_types(c));
        }
    }
}

/// Finds the order a request names: `order_id` has priority over `original_order_id`.
pub(super) enum Lookup<'a> {
    Found(&'a SandboxOrder),
    Missing,
    NoKey,
}

pub(super) fn lookup<'a>(st: &'a EgonState, data: &Value) -> Lookup<'a> {
    if let Some(id) = data.get("order_id").and_then(lenient::value_to_i64) {
        return st
            .order_by_egon_id(id)
            .map_or(Lookup::Missing, Lookup::Found);
    }
    if let Some(id) = data.get("original_order_id").and_then(lenient::value_to_id) {
        return st.order(&id).map_or(Lookup::Missing, Lookup::Found);
    }
    Lookup::NoKey
}

pub(super) fn get_order_status(st: &EgonState, data: &Value) -> Response {
    match lookup(st, data) {
        Lookup::Found(o) => answer(codes::FOUND, Some(st.order_json(o))),
        Lookup::Missing => answer(codes::NOT_FOUND, None),
        Lookup::NoKey => bad_request("order_id or original_order_id is mandatory"),
    }
}

/// Reads order lines (`items` as an array or a map) into (SKU, pieces).
pub(super) fn order_lines(items: &Value) -> Option<Vec<SandboxLine>> {
    let list: Vec<&Value> = match items {
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) => m.values().collect(),
        _ => return None,
    };
    let lines: Option<Vec<SandboxLine>> = list
        .into_iter()
        .map(|item| {
            let item_id = item.get("item_id").and_then(lenient::value_to_id)?;
            let count = item.get("count").and_then(lenient::value_to_i64)?;
            (count > 0 && !item_id.is_empty()).then_some(SandboxLine {
                item_id,
                count,
                count_reserved: 0,
            })
        })
        .collect();
    lines.filter(|l| !l.is_empty())
}

/// The first `items[].item_id` that is not an integer (the strict reading),
/// or `null` for a line without one.
fn non_integer_item_id(data: &Value) -> Option<Value> {
    let items: Vec<&Value> = match data.get("items") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(m)) => m.values().collect(),
        _ => Vec::new(),
    };
    // Integer as a JSON number or as digits in a string: the
    // documentation's own example sends `"item_id": "1"`.
    let integer = |v: &Value| {
        v.is_i64()
            || v.is_u64()
            || v.as_str()
                .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    };
    items
        .iter()
        .find(|i| !i.get("item_id").is_some_and(integer))
        .map(|bad| bad.get("item_id").cloned().unwrap_or(Value::Null))
}

/// `CreateNewOrder`: creates the order, or replaces the lines of one still
/// in an updatable status.
pub(super) fn create_new_order(st: &mut EgonState, data: &Value) -> Response {
    let missing: Vec<&str> = CREATE_ORDER_MANDATORY
        .iter()
        .copied()
        .filter(|k| data.get(*k).is_none_or(|v| v.is_null() || v == ""))
        .collect();
    if !missing.is_empty() {
        return bad_request(&format!("missing {}", missing.join(", ")));
    }
    let Some(original_id) = data.get("original_order_id").and_then(lenient::value_to_id) else {
        return bad_request("original_order_id");
    };
    let Some(lines) = data.get("items").and_then(order_lines) else {
        return bad_request("items need item_id and a positive count");
    };
    if st.strict.integer_item_ids {
        if let Some(bad) = non_integer_item_id(data) {
            return bad_request(&format!("items.item_id must be Integer, got {bad}"));
        }
    }
    let reference = data.get("reference_number").and_then(lenient::value_to_id);
    let delivery_id = data.get("id_delivery").and_then(lenient::value_to_i64);
    let now = st.tick();
    let (code, original) = match st.orders.get_mut(&original_id) {
        Some(o) if UPDATABLE_STATUSES.contains(&o.status_id) => {
            o.lines = lines;
            o.reference_number = reference.or(o.reference_number.take());
            o.delivery_id = delivery_id;
            o.change_timestamp = now;
            (codes::UPDATED, original_id)
        }
        Some(_) => return answer(codes::NOT_ALLOWED, None),
        None => {
            let egon_id = take_id(&mut st.next_order_id);
            st.orders.insert(
                original_id.clone(),
                SandboxOrder {
                    egon_id,
                    original_id: original_id.clone(),
                    reference_number: reference,
                    status_id: 0,
                    change_timestamp: now,
                    delivery_id,
                    lines,
                    packages: Vec::new(),
                    total_cost_kop: None,
                },
            );
            (codes::CREATED, original_id)
        }
    };
    let Some(order) = st.order(&original) else {
        return answer(codes::SERVER_ERROR, None);
    };
    let data = json!({
        "order_id": order.egon_id,
        "order_status_id": order.status_id,
        "myorder_url": format!("https://myorder.example/{}", order.egon_id),
        "order_status_data": st.order_json(order),
    });
    answer(code, Some(data))
}

pub(super) fn storno_order(st: &mut EgonState, data: &Value) -> Response {
    let original = match lookup(st, data) {
        Lookup::Found(o) if CANCELLABLE_STATUSES.contains(&o.status_id) => o.original_id.clone(),
        Lookup::Found(_) => return answer(codes::NOT_ALLOWED, None),
        Lookup::Missing => return answer(codes::NOT_FOUND, None),
        Lookup::NoKey => return bad_request("order_id or original_order_id is mandatory"),
    };
    let cancelled = 9;
    if st.set_order_status(&original, cancelled).is_err() {
        return answer(codes::SERVER_ERROR, None);
    }
    let egon_id = st.order(&original).map(|o| o.egon_id);
    answer(
        codes::UPDATED,
        Some(json!({"order_id": egon_id, "new_status_id": cancelled})),
    )
}

pub(super) fn update_inventory_card(st: &mut EgonState, data: &Value) -> Response {
    let item_id = data.get("item_id").and_then(lenient::value_to_id);
    let name = data.get("name").and_then(lenient::value_to_id);
    let shop = data.get("shop_setting_id").and_then(lenient::value_to_i64);
    let (Some(item_id), Some(name), Some(_)) = (item_id, name, shop) else {
        return bad_request("item_id, shop_setting_id and name are mandatory");
    };
    if item_id.is_empty() || name.is_empty() {
        return bad_request("item_id and name must not be empty");
    }
    let ean = data.get("ean").and_then(lenient::value_to_id);
    let catalog_id = data.get("catalog_id").and_then(lenient::value_to_id);
    let (code, egon_id) = if st.cards.contains_key(&item_id) {
        let now = st.tick();
        let Some(card) = st.cards.get_mut(&item_id) else {
            return answer(codes::SERVER_ERROR, None);
        };
        card.changed_at = now;
        (codes::UPDATED, card.egon_id)
    } else {
        (codes::CREATED, st.add_item(&item_id, CountTypes::default()))
    };
    if let Some(card) = st.cards.get_mut(&item_id) {
        card.name = name;
        if ean.is_some() {
            card.ean = ean;
        }
        if catalog_id.is_some() {
            card.catalog_id = catalog_id;
        }
    }
    answer(code, Some(json!({"inventory_id": egon_id})))
}
