//! Wire helpers of the RetailCRM sandbox: query/form parameters, paging, refusals.

use super::*;

/// The rules [`RetailCrmStrictness::strict_modules`] adds to a module edit.
pub(super) fn strict_module_errors(module: &Map<String, Value>, errors: &mut Map<String, Value>) {
    let ic = module
        .get("integrationCode")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty());
    if ic.is_none() {
        errors.insert(
            "integrationCode".into(),
            json!("This value should not be blank."),
        );
    }
    if let Some(base) = module.get("baseUrl").and_then(Value::as_str) {
        let allowed = match reqwest::Url::parse(base) {
            Ok(u) => {
                u.scheme() == "https"
                    || (u.scheme() == "http"
                        && crate::config::is_loopback_host(u.host_str().unwrap_or_default()))
            }
            Err(_) => false,
        };
        if !allowed {
            errors.insert(
                "baseUrl".into(),
                json!("This value is not a valid URL: https is required."),
            );
        }
    }
    let actions = module
        .get("integrations")
        .and_then(|i| i.get("store"))
        .and_then(|s| s.get("actions"));
    for (i, action) in php_list(actions).iter().enumerate() {
        let code = action.get("code").and_then(Value::as_str).unwrap_or("");
        if !code.is_empty() && !KNOWN_STORE_ACTIONS.contains(&code) {
            errors.insert(
                format!("integrations[store][actions][{i}][code]"),
                json!("The value you selected is not a valid choice."),
            );
        }
        let points = php_list(action.get("callPoints"));
        if points.is_empty() || points.iter().any(|p| p.as_str().is_none_or(str::is_empty)) {
            errors.insert(
                format!("integrations[store][actions][{i}][callPoints]"),
                json!("This collection should contain 1 element or more."),
            );
        }
    }
}

/// What one upload entry matched.
pub(super) enum OfferMatch {
    /// Offer index and the store changes to apply.
    Found(usize, Vec<StoreChange>),
    /// A `notFoundOffers` entry.
    NotFound(Value),
}

pub(super) struct StoreChange {
    pub(super) code: String,
    pub(super) available: Option<f64>,
    pub(super) purchase_price_kop: Option<i64>,
}

#[derive(Default)]
pub(super) struct OrderEdit {
    pub(super) status: Option<String>,
    pub(super) shipped: Option<bool>,
    pub(super) shipment_store: Option<String>,
    pub(super) shipment_date: Option<NaiveDate>,
    pub(super) track_number: Option<String>,
}

// ---------------------------------------------------------------------------
// Wire helpers
// ---------------------------------------------------------------------------

/// Decoded query-string or form pairs, PHP style.
#[derive(Debug, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes `application/x-www-form-urlencoded` bytes; an undecodable body
    /// counts as empty, so its fields are reported as missing, like RetailCRM does.
    pub(super) fn parse(bytes: &[u8]) -> Self {
        Params(serde_urlencoded::from_bytes(bytes).unwrap_or_default())
    }

    /// The first value of exactly `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of `name[]` and `name[N]`.
    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('['))
                    .and_then(|rest| rest.strip_suffix(']'))
                    .is_some_and(|inner| inner.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|(_, v)| v.clone())
            .collect()
    }
}

pub(super) fn now_text() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Moscow)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub(super) fn money(kop: i64) -> f64 {
    kop as f64 / 100.0
}

pub(super) fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => text_truthy(s),
        _ => None,
    }
}

pub(super) fn text_truthy(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// A list PHP may have encoded as an array or as an object keyed by index.
pub(super) fn php_list(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(m)) => m.values().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Reads a form field holding JSON: missing → 400 `Parameter 'x' is missing`, bad JSON → 400.
pub(super) fn json_field(form: &Params, name: &str) -> Result<Value, Refusal> {
    let raw = form
        .get(name)
        .ok_or_else(|| fail(400, &format!("Parameter '{name}' is missing"), None))?;
    serde_json::from_str(raw).map_err(|e| bad_input(name, &format!("Invalid JSON: {e}")))
}

pub(super) fn page_params(query: &Params) -> Result<(usize, usize), Refusal> {
    page_params_with(query, &LIMITS)
}

/// `page` and `limit` of a list request, `limit` one of `allowed`.
pub(super) fn page_params_with(
    query: &Params,
    allowed: &[usize],
) -> Result<(usize, usize), Refusal> {
    let limit = match query.get("limit") {
        None => 20,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(l) if allowed.contains(&l) => l,
            _ => return Err(bad_input("limit", "This value is not valid.")),
        },
    };
    let page = match query.get("page") {
        None => 1,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(p) if p >= 1 => p,
            _ => {
                return Err(bad_input(
                    "page",
                    "This value should be greater than or equal to 1.",
                ))
            }
        },
    };
    Ok((page, limit))
}

pub(super) fn paginate<T: Clone>(items: &[T], page: usize, limit: usize) -> (Vec<T>, Value) {
    let (slice, pagination) = paginate_slice(items, page, limit);
    (slice.to_vec(), pagination)
}

/// One page of `items` (pages count from 1) and RetailCRM's `pagination` object.
pub(super) fn paginate_slice<T>(items: &[T], page: usize, limit: usize) -> (&[T], Value) {
    let total = items.len();
    let pages = total.div_ceil(limit);
    let start = (page - 1).saturating_mul(limit).min(total);
    let end = start.saturating_add(limit).min(total);
    let pagination =
        json!({"limit": limit, "totalCount": total, "currentPage": page, "totalPageCount": pages});
    (&items[start..end], pagination)
}

/// Positions of the offers in [`RetailCrmState`]'s list by each of their keys
/// (the first offer wins when two share a key, as a scan would find it).
#[derive(Debug, Default)]
pub(super) struct OfferIndex {
    pub(super) by_id: HashMap<i64, usize>,
    pub(super) by_external: HashMap<String, usize>,
    pub(super) by_xml: HashMap<String, usize>,
    /// Offers whose `externalId` or `xmlId` an earlier offer holds too (the
    /// maps keep the first): a filtered read looks at them as well.
    pub(super) shared: Vec<usize>,
}

impl OfferIndex {
    pub(super) fn build(offers: &[SandboxOffer]) -> OfferIndex {
        let mut index = OfferIndex::default();
        for (i, o) in offers.iter().enumerate() {
            index.add(i, o);
        }
        index
    }

    pub(super) fn add(&mut self, position: usize, offer: &SandboxOffer) {
        self.by_id.entry(offer.id).or_insert(position);
        let mut shared = false;
        if let Some(e) = &offer.external_id {
            shared |= *self.by_external.entry(e.clone()).or_insert(position) != position;
        }
        if let Some(x) = &offer.xml_id {
            shared |= *self.by_xml.entry(x.clone()).or_insert(position) != position;
        }
        if shared {
            self.shared.push(position);
        }
    }
}

pub(super) fn respond(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

pub(super) fn ok(mut body: Value) -> Answer {
    if let Value::Object(m) = &mut body {
        let mut with_success = Map::new();
        with_success.insert("success".into(), Value::Bool(true));
        with_success.extend(std::mem::take(m));
        *m = with_success;
    }
    Ok(respond(200, body))
}

/// What a handler produces: an answer, or a refusal rendered as RetailCRM's error JSON.
pub(super) type Answer = Result<Response, Refusal>;

/// A refused request.
#[derive(Debug)]
pub(super) enum Refusal {
    /// `{"success": false, "errorMsg": …, "errors": …}` with this status.
    Api {
        status: u16,
        message: String,
        errors: Option<Value>,
    },
    /// The HTML page of a non-existent account.
    AccountMissing,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Api {
                status,
                message,
                errors,
            } => {
                let mut body = json!({"success": false, "errorMsg": message});
                if let Some(e) = errors {
                    body["errors"] = e;
                }
                respond(status, body)
            }
            Refusal::AccountMissing => account_missing_page(),
        }
    }
}

pub(super) fn fail(status: u16, message: &str, errors: Option<Value>) -> Refusal {
    Refusal::Api {
        status,
        message: message.to_string(),
        errors,
    }
}

pub(super) fn bad_input(field: &str, message: &str) -> Refusal {
    fail(
        400,
        "Errors in the input parameters",
        Some(json!({ field: message })),
    )
}

pub(super) fn account_missing_page() -> Response {
    let page = "<!DOCTYPE html>\n<html><head><title>Account not found</title></head>\
                <body><h1>Аккаунт не найден</h1><p>The account does not exist or was deleted.</p></body></html>";
    (
        StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}
