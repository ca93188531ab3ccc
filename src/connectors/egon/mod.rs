//! Client for the iSklad EGON warehouse API, and the payload types EGON sends
//! back to the shop (`WriteOrderStatus`, `InventoryStatusUpdate`).
//!
//! Every call is a `POST` of raw JSON to one URL with the envelope
//! `{"auth":{auth_id, auth_key, auth_token}, "request":{req_method, req_data}}`.
//! EGON answers `auth_status` (201 accepted, 202 unauthorized, 301 bad request)
//! and `response{resp_code, resp_message, resp_data}`; see [`codes`].
//!
//! Answers are read liberally (ids as numbers or strings, `{}` where a list is
//! documented, `order_items` as an object or an array, the payload either in
//! `resp_data` or directly in `response`); requests are sent exactly as documented.

use crate::connectors::http::{request_id, send_json, snippet, HttpPolicy, RateLimiter};
use crate::lenient;
use crate::progress::Progress;
use crate::secret::Secret;
use chrono::NaiveDateTime;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
mod error;
pub use error::*;
mod wire;
pub use wire::*;
mod stock;
pub use stock::*;
mod orders;
pub use orders::*;

pub use crate::vendor_docs::egon::{codes, DATETIME_FORMAT, DEFAULT_RATE_PER_MIN};

/// EGON's production endpoint.
pub const DEFAULT_URL: &str = "https://api.isklad.com/rest/v1";

/// The default time zone of EGON's `change_timestamp` (`[egon] timezone`).
pub const EGON_TZ: chrono_tz::Tz = chrono_tz::Europe::Bratislava;

/// Connection settings for one EGON account.
#[derive(Debug, Clone)]
pub struct EgonConfig {
    /// Endpoint, normally [`DEFAULT_URL`].
    pub url: String,
    /// `auth_id` issued by the merchant.
    pub auth_id: String,
    /// `auth_key` issued by the merchant.
    pub auth_key: Secret,
    /// `auth_token` issued by the merchant (only used towards EGON, never in callbacks).
    pub auth_token: Secret,
    /// Client-side limit per [`EgonConfig::rate_window`]; 0 disables it. EGON allows 180 per
    /// minute. The client spaces requests over a slightly longer window (see `rate_margin`).
    pub rate_per_min: usize,
    /// The window `rate_per_min` counts in: one minute in production (shorter in tests).
    pub rate_window: Duration,
    /// `shop_setting_id` sent with `StornoOrder` (mandatory when the account has several e-shops).
    pub shop_setting_id: Option<i64>,
    /// Timeouts and retry bounds.
    pub policy: HttpPolicy,
    /// The least time between two `CreateNewOrder` requests for one order
    /// ([`ORDER_UPDATE_INTERVAL`]; shorter in tests).
    pub order_update_interval: Duration,
}

/// `CreateNewOrder.md`: "There must be at least 20 seconds between two
/// update requests for the same order". A retry of a `CreateNewOrder` whose
/// answer was lost is such an update (the method is an upsert by original
/// id), so it waits this long after the previous attempt was sent.
pub const ORDER_UPDATE_INTERVAL: Duration = Duration::from_secs(20);

impl EgonConfig {
    /// Settings with the documented defaults (180 requests per minute, default policy).
    pub fn new(
        url: impl Into<String>,
        auth_id: impl Into<String>,
        auth_key: Secret,
        auth_token: Secret,
    ) -> Self {
        EgonConfig {
            url: url.into(),
            auth_id: auth_id.into(),
            auth_key,
            auth_token,
            rate_per_min: DEFAULT_RATE_PER_MIN,
            rate_window: Duration::from_secs(60),
            shop_setting_id: None,
            policy: HttpPolicy::default(),
            order_update_interval: ORDER_UPDATE_INTERVAL,
        }
    }
}

// ---------------------------------------------------------------------------
// The answer envelope
// ---------------------------------------------------------------------------

/// A decoded EGON answer.
#[derive(Debug, Clone)]
struct Answer {
    auth_status: Option<i64>,
    resp_code: Option<i64>,
    message: String,
    /// `response.resp_data` when present, else `response` itself.
    data: Value,
}

impl Answer {
    /// Reads the envelope; the payload may sit in `resp_data` or directly in `response`.
    fn parse(body: &str) -> Result<Answer, String> {
        let v: Value = lenient::from_str(body).map_err(|e| e.to_string())?;
        let Value::Object(top) = v else {
            return Err("the answer is not a JSON object".into());
        };
        let response = top.get("response").cloned().unwrap_or(Value::Null);
        let resp_code = response
            .get("resp_code")
            .and_then(lenient::value_to_i64)
            .or_else(|| top.get("resp_code").and_then(lenient::value_to_i64));
        let message = ["resp_message", "resp_note"]
            .iter()
            .find_map(|k| response.get(*k).and_then(lenient::value_to_id))
            .or_else(|| top.get("resp_note").and_then(lenient::value_to_id))
            .or_else(|| {
                top.get("auth_status_message")
                    .and_then(lenient::value_to_id)
            })
            .unwrap_or_default();
        let data = match response.get("resp_data") {
            Some(d) if !d.is_null() => d.clone(),
            _ => response,
        };
        Ok(Answer {
            auth_status: top.get("auth_status").and_then(lenient::value_to_i64),
            resp_code,
            message,
            data,
        })
    }
}

/// What one attempt ended with.
enum Attempt {
    Done(Answer),
    Retry(EgonError),
    Fail(EgonError),
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/// A client for one EGON account. Clones share the HTTP pool; every client of
/// the same `auth_id` shares one rate limiter.
#[derive(Clone, Debug)]
pub struct EgonClient {
    cfg: Arc<EgonConfig>,
    http: reqwest::Client,
    limiter: RateLimiter,
    /// The account's limit shared with every sverka process of the state
    /// database ([`crate::db::rate`]), when set.
    shared: Option<crate::db::rate::SharedRateLimit>,
}

impl EgonClient {
    /// Builds the client; fails on an empty URL or `auth_id`, or if TLS cannot start.
    pub fn new(cfg: EgonConfig) -> Result<Self, EgonError> {
        if cfg.url.trim().is_empty() {
            return Err(EgonError::Config("url is empty".into()));
        }
        if cfg.auth_id.trim().is_empty() {
            return Err(EgonError::Config("auth_id is empty".into()));
        }
        let http = cfg.policy.client().map_err(EgonError::Client)?;
        // EGON counts requests per auth_id: every client of the account
        // shares one limiter.
        let limiter = RateLimiter::shared(
            &format!("{} {}", cfg.url.trim_end_matches('/'), cfg.auth_id),
            cfg.rate_per_min,
            cfg.rate_window + rate_margin(cfg.rate_window),
        );
        Ok(EgonClient {
            cfg: Arc::new(cfg),
            http,
            limiter,
            shared: None,
        })
    }

    /// This client, also keeping `limit`: the account's 180 requests a
    /// minute shared with every sverka process of one state database.
    pub fn with_shared_limit(mut self, limit: crate::db::rate::SharedRateLimit) -> Self {
        self.shared = Some(limit);
        self
    }

    /// The bucket name and limit of this account for [`Self::with_shared_limit`].
    pub fn shared_limit_key(&self) -> (String, usize, Duration) {
        (
            format!(
                "egon:{} {}",
                self.cfg.url.trim_end_matches('/'),
                self.cfg.auth_id
            ),
            self.cfg.rate_per_min,
            self.cfg.rate_window,
        )
    }

    /// `InventoryDetail`: the cards `item_ids` (all cards when empty), optionally
    /// only those on stock. Asks for live figures (`cached: 0`); "nothing found"
    /// (404 or an empty `[]`) is an empty list.
    pub async fn inventory_detail(
        &self,
        item_ids: &[String],
        only_on_stock: bool,
    ) -> Result<Vec<InventoryItem>, EgonError> {
        const M: &str = "InventoryDetail";
        let ids: Vec<Value> = item_ids.iter().map(|id| id_value(id)).collect();
        let req = json!({
            "item_id_list": ids,
            "cached": 0,
            "only_on_stock": u8::from(only_on_stock),
        });
        let answer = self.call(M, req).await?;
        match answer.resp_code {
            Some(codes::OK) | Some(codes::FOUND) | None => {}
            Some(codes::NOT_FOUND) => return Ok(Vec::new()),
            Some(code) => return Err(unexpected(M, code, &answer)),
        }
        let details = answer
            .data
            .get("inventory_details")
            .cloned()
            .unwrap_or(Value::Null);
        parse_inventory_details(details).map_err(|detail| EgonError::Decode {
            method: M,
            detail,
            body: snippet(&answer.data.to_string()),
        })
    }

    /// `GetOrderStatus`: the order's current state; [`EgonError::NotFound`] when EGON has no such order.
    pub async fn get_order_status(&self, key: OrderRef) -> Result<OrderStatus, EgonError> {
        const M: &str = "GetOrderStatus";
        let answer = self.call(M, Value::Object(key.to_req_data())).await?;
        match answer.resp_code {
            Some(codes::FOUND) | Some(codes::OK) => decode(M, answer.data),
            Some(code) => Err(unexpected(M, code, &answer)),
            None => Err(missing_code(M, &answer)),
        }
    }

    /// `CreateNewOrder`: creates the order, or updates it when EGON already has its original id.
    pub async fn create_new_order(&self, o: &NewOrder) -> Result<CreatedOrder, EgonError> {
        const M: &str = "CreateNewOrder";
        let req =
            serde_json::to_value(o).map_err(|source| EgonError::Encode { method: M, source })?;
        let answer = self.call(M, req).await?;
        let created = match answer.resp_code {
            Some(codes::CREATED) => true,
            Some(codes::UPDATED) => false,
            Some(code) => return Err(unexpected(M, code, &answer)),
            None => return Err(missing_code(M, &answer)),
        };
        let mut out: CreatedOrder = decode(M, answer.data)?;
        out.created = created;
        Ok(out)
    }

    /// `StornoOrder`: cancels an order not yet dispatched ([`EgonError::NotAllowed`] otherwise).
    pub async fn storno_order(&self, key: OrderRef) -> Result<(), EgonError> {
        const M: &str = "StornoOrder";
        let mut req = key.to_req_data();
        if let Some(id) = self.cfg.shop_setting_id {
            req.insert("shop_setting_id".into(), json!(id));
        }
        let answer = self.call(M, Value::Object(req)).await?;
        match answer.resp_code {
            Some(codes::UPDATED) | Some(codes::OK) => Ok(()),
            Some(code) => Err(unexpected(M, code, &answer)),
            None => Err(missing_code(M, &answer)),
        }
    }

    /// `UpdateInventoryCard`: inserts or updates a card.
    pub async fn update_inventory_card(&self, c: &InventoryCard) -> Result<(), EgonError> {
        const M: &str = "UpdateInventoryCard";
        let req =
            serde_json::to_value(c).map_err(|source| EgonError::Encode { method: M, source })?;
        let answer = self.call(M, req).await?;
        match answer.resp_code {
            Some(codes::CREATED) | Some(codes::UPDATED) => Ok(()),
            Some(code) => Err(unexpected(M, code, &answer)),
            None => Err(missing_code(M, &answer)),
        }
    }

    /// The request envelope, exactly as documented.
    fn envelope(&self, method: &str, req_data: Value) -> Value {
        json!({
            "auth": {
                "auth_id": self.cfg.auth_id,
                "auth_key": self.cfg.auth_key.expose(),
                "auth_token": self.cfg.auth_token.expose(),
            },
            "request": { "req_method": method, "req_data": req_data },
        })
    }

    /// Sends one method call with rate limiting and bounded retries. Codes that
    /// end any call (202, 301, 302, 303) become errors here; the others are left
    /// to the method. HTTP 429/5xx, `resp_code` 429/500, network failures and
    /// undecodable answers are retried: every method used here is idempotent by
    /// its key (`CreateNewOrder` with a known original id updates the order;
    /// its retries keep [`EgonConfig::order_update_interval`] after the
    /// previous attempt, as EGON asks of updates of one order).
    async fn call(&self, method: &'static str, req_data: Value) -> Result<Answer, EgonError> {
        let body = self.envelope(method, req_data).to_string();
        let max = self.cfg.policy.max_attempts.max(1);
        let rid = request_id();
        let mut attempt = 1;
        loop {
            // Held until the answer is in, so EGON's own window never sees more
            // than the limit however late a request arrives (see `RateLimiter::acquire_held`).
            let permit = self.limiter.acquire_held().await;
            // Across processes: a slot in the state database, held until the
            // answer is in (a state database that cannot be asked leaves this
            // process's own limit).
            let slot = match &self.shared {
                Some(limit) => match limit.acquire().await {
                    Ok(slot) => Some(slot),
                    Err(e) => {
                        tracing::warn!(target: "sverka::egon", error = %crate::errors::Chain(&e), "shared EGON rate limit unavailable; keeping this process's own");
                        None
                    }
                },
                None => None,
            };
            tracing::debug!(target: "sverka::egon", rid, method, attempt, "request");
            let outcome = self.attempt(method, body.clone(), attempt).await;
            drop(permit);
            if let Some(slot) = slot {
                if let Err(e) = slot.release().await {
                    tracing::warn!(target: "sverka::egon", error = %crate::errors::Chain(&e), "could not give back a shared rate-limit slot");
                }
            }
            match outcome {
                Attempt::Done(answer) => return Ok(answer),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e) if attempt >= max => return Err(e),
                Attempt::Retry(e) => {
                    let mut wait = self.cfg.policy.backoff(attempt);
                    if method == "CreateNewOrder" {
                        // Counted from the failed attempt's end: EGON received
                        // it no later than that.
                        wait = wait.max(self.cfg.order_update_interval);
                    }
                    tracing::warn!(target: "sverka::egon", rid, method, attempt, error = %crate::errors::Chain(&e), ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One HTTP round trip, classified.
    async fn attempt(&self, method: &'static str, body: String, attempt: u32) -> Attempt {
        let sent = send_json(self.http.post(&self.cfg.url), body).await;
        let resp = match sent {
            Ok(r) => r,
            Err(source) => {
                return Attempt::Retry(EgonError::Transport {
                    method,
                    attempts: attempt,
                    source: source.without_url(),
                })
            }
        };
        let status = resp.status().as_u16();
        // InventoryDetail answers the whole catalogue at once: show the bytes as they arrive.
        let (cap, bar) = if method == "InventoryDetail" {
            (
                crate::connectors::http::body_caps::EGON_INVENTORY,
                Progress::bytes("EGON InventoryDetail"),
            )
        } else {
            (
                crate::connectors::http::body_caps::DEFAULT,
                Progress::hidden(),
            )
        };
        let text = match crate::connectors::http::read_capped_counting(resp, cap, &bar).await {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Err(too_large)) => {
                return Attempt::Fail(EgonError::Decode {
                    method,
                    detail: too_large.to_string(),
                    body: String::new(),
                })
            }
            Err(source) => {
                return Attempt::Retry(EgonError::Transport {
                    method,
                    attempts: attempt,
                    source: source.without_url(),
                })
            }
        };
        if status == 429 {
            return Attempt::Retry(EgonError::RateLimited {
                method,
                attempts: attempt,
            });
        }
        if status >= 500 {
            return Attempt::Retry(EgonError::Server {
                method,
                attempts: attempt,
                message: format!("HTTP {status}: {}", snippet(&text)),
            });
        }
        if !(200..300).contains(&status) {
            // response-codes.md: HTTP 401 when `auth_status` is 202, 403 when
            // the account or API is disabled; the body still says which.
            if let Ok(fail @ Attempt::Fail(_)) =
                Answer::parse(&text).map(|a| self.classify(method, a, attempt))
            {
                return fail;
            }
            return Attempt::Fail(EgonError::Http {
                method,
                status,
                body: snippet(&text),
            });
        }
        match Answer::parse(&text) {
            Ok(answer) => self.classify(method, answer, attempt),
            Err(detail) => Attempt::Retry(EgonError::Decode {
                method,
                detail,
                body: snippet(&text),
            }),
        }
    }

    /// Turns the documented codes into retries, errors or a usable answer.
    fn classify(&self, method: &'static str, answer: Answer, attempt: u32) -> Attempt {
        match answer.auth_status {
            Some(codes::AUTH_UNAUTHORIZED) => {
                return Attempt::Fail(EgonError::Unauthorized {
                    method,
                    auth_id: self.cfg.auth_id.clone(),
                })
            }
            Some(codes::BAD_REQUEST) => {
                return Attempt::Fail(EgonError::BadRequest {
                    method,
                    message: answer.message,
                })
            }
            _ => {}
        }
        let message = answer.message.clone();
        match answer.resp_code {
            Some(codes::TOO_MANY_REQUESTS) => Attempt::Retry(EgonError::RateLimited {
                method,
                attempts: attempt,
            }),
            Some(codes::SERVER_ERROR) => Attempt::Retry(EgonError::Server {
                method,
                attempts: attempt,
                message,
            }),
            Some(codes::BAD_REQUEST) => Attempt::Fail(EgonError::BadRequest { method, message }),
            Some(codes::METHOD_NOT_FOUND) => {
                Attempt::Fail(EgonError::MethodNotFound { method, message })
            }
            Some(codes::NOT_ALLOWED) => Attempt::Fail(EgonError::NotAllowed { method, message }),
            _ => Attempt::Done(answer),
        }
    }
}

/// Extra spacing added to the client's window so that network jitter (a
/// request booked early but delivered late) never lets EGON count more than
/// the limit in its own window: a tenth of the window, at most one second.
fn rate_margin(window: Duration) -> Duration {
    (window / 10).min(Duration::from_secs(1))
}

/// An id as the JSON value EGON documents (a number when numeric).
fn id_value(id: &str) -> Value {
    match id.parse::<i64>() {
        Ok(n) if n.to_string() == id => json!(n),
        _ => json!(id),
    }
}

/// Reads `inventory_details`: a map keyed by EGON id, a list, or `[]`/null when empty.
fn parse_inventory_details(v: Value) -> Result<Vec<InventoryItem>, String> {
    let cards: Vec<Value> = match v {
        Value::Null => Vec::new(),
        Value::Array(a) => a,
        Value::Object(m) => m.into_iter().map(|(_, card)| card).collect(),
        other => return Err(format!("inventory_details is not a list: {other}")),
    };
    cards
        .into_iter()
        .map(|mut c| {
            // InventoryDetail.md puts `changed_at` inside `count_types`; a
            // card-level one is read only when that is missing.
            let inner = c
                .pointer("/count_types/changed_at")
                .filter(|v| !v.is_null())
                .cloned();
            if let (Some(at), Some(card)) = (inner, c.as_object_mut()) {
                card.insert("changed_at".into(), at);
            }
            serde_json::from_value::<InventoryItem>(c).map_err(|e| e.to_string())
        })
        .collect()
}

fn decode<T: serde::de::DeserializeOwned>(
    method: &'static str,
    data: Value,
) -> Result<T, EgonError> {
    serde_json::from_value(data.clone()).map_err(|e| EgonError::Decode {
        method,
        detail: e.to_string(),
        body: snippet(&data.to_string()),
    })
}

/// The error for a code the method does not take as success: 404 is
/// [`EgonError::NotFound`], anything else [`EgonError::Unexpected`].
fn unexpected(method: &'static str, code: i64, answer: &Answer) -> EgonError {
    let message = answer.message.clone();
    if code == codes::NOT_FOUND {
        EgonError::NotFound { method, message }
    } else {
        EgonError::Unexpected {
            method,
            code,
            message,
        }
    }
}

fn missing_code(method: &'static str, answer: &Answer) -> EgonError {
    EgonError::Decode {
        method,
        detail: "the answer has no resp_code".into(),
        body: snippet(&answer.data.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sellable_follows_the_formula_and_never_goes_negative() {
        let c = CountTypes {
            all: 236,
            expired: 2,
            damaged: 4,
            ordered: 15,
            reserved: 21,
            expiration_blocked: 3,
        };
        assert_eq!(c.sellable(), 191);
        let huge = CountTypes {
            all: i64::MAX,
            expired: i64::MIN,
            damaged: 0,
            ordered: 0,
            reserved: 0,
            expiration_blocked: 0,
        };
        assert_eq!(huge.sellable(), i64::MAX);
        let short = CountTypes {
            all: 1,
            reserved: 5,
            ..CountTypes::default()
        };
        assert_eq!(short.sellable(), 0);
    }

    #[test]
    fn count_types_read_both_spellings() {
        let lower: CountTypes = serde_json::from_value(json!({
            "all": "10", "expired": 1, "damaged": 1.0, "ordered": 2, "reserved": 0,
            "expirationBlocked": 1, "changed_at": "2022-09-12 11:07:51"
        }))
        .unwrap();
        let upper: CountTypes = serde_json::from_value(json!({
            "ALL": 10, "EXPIRED": "1", "DAMAGED": 1, "ORDERED": 2, "RESERVED": null,
            "EXPIRATION_BLOCKED": 1
        }))
        .unwrap();
        assert_eq!(lower, upper);
        assert_eq!(lower.sellable(), 5);
    }

    #[test]
    fn cards_without_usable_counters_are_unreadable_not_zero() {
        let full = json!({"all": 5, "expired": 0, "damaged": 0, "ordered": 1,
            "reserved": 1, "expirationBlocked": 0});
        assert_eq!(
            CountTypes::read_strict(Some(&full)).map(|c| c.sellable()),
            Ok(3)
        );
        let upper = json!({"ALL": 5, "EXPIRED": 0, "DAMAGED": 0, "ORDERED": 1,
            "RESERVED": 1, "EXPIRATION_BLOCKED": 0});
        assert_eq!(
            CountTypes::read_strict(Some(&upper)),
            CountTypes::read_strict(Some(&full))
        );
        for bad in [
            json!(null),
            json!([]),
            json!({}),
            json!({"expired": 0, "damaged": 0, "ordered": 1, "reserved": 1, "expirationBlocked": 0}),
            json!({"all": null, "expired": 0, "damaged": 0, "ordered": 1, "reserved": 1, "expirationBlocked": 0}),
            json!({"all": "lots", "expired": 0, "damaged": 0, "ordered": 1, "reserved": 1, "expirationBlocked": 0}),
            json!({"all": -4, "expired": 0, "damaged": 0, "ordered": 1, "reserved": 1, "expirationBlocked": 0}),
            json!({"all": 5, "expired": 0, "damaged": 0, "ordered": 1, "expirationBlocked": 0}),
            json!("5"),
        ] {
            assert!(CountTypes::read_strict(Some(&bad)).is_err(), "{bad}");
        }
        assert!(CountTypes::read_strict(None).is_err());
        // Card level: missing, null, [], {} all read as unreadable.
        for card in [
            json!({"id": 1, "item_id": "A"}),
            json!({"id": 1, "item_id": "A", "count_types": null}),
            json!({"id": 1, "item_id": "A", "count_types": []}),
            json!({"id": 1, "item_id": "A", "count_types": {}}),
            json!({"id": 1, "item_id": "A", "count_types": {"all": 3}}),
        ] {
            let item: InventoryItem = serde_json::from_value(card.clone()).unwrap();
            assert!(item.counts.is_err(), "{card}");
        }
        // Sums that overflow are unreadable, never wrapped.
        let huge = CountTypes {
            all: 10,
            ordered: i64::MAX,
            reserved: 1,
            ..CountTypes::default()
        };
        assert_eq!(huge.usable_and_promised(), None);
        assert_eq!(huge.sellable(), 0);
    }

    #[test]
    fn deprecated_count_fallback_subtracts_ordered_only() {
        let card: InventoryCardStatus = serde_json::from_value(json!({
            "ITEM_ID": "A", "COUNT": 10, "ORDERED": 3, "RESERVED_FOR_ORDERS": 4
        }))
        .unwrap();
        // COUNT already excludes reserved units: sellable = COUNT − ORDERED.
        assert_eq!(card.sellable(), Some(7));
    }

    #[test]
    fn inventory_details_accept_map_list_and_empty_array() {
        // InventoryDetail.md's sample: `changed_at` sits inside `count_types`.
        let doc = json!({"240442": {"id": 240442, "item_id": 1, "count_types": {
            "all": 0, "ordered": 1, "changed_at": "2022-09-12 11:07:51"}}});
        let items = parse_inventory_details(doc).unwrap();
        assert_eq!(items[0].changed_at, parse_datetime("2022-09-12 11:07:51"));
        // A card-level one only counts when count_types has none.
        let both = json!([{"item_id": 1, "changed_at": "2020-01-01 00:00:00",
            "count_types": {"all": 1, "changed_at": "2022-09-12 11:07:51"}},
            {"item_id": 2, "changed_at": "2020-01-01 00:00:00", "count_types": {"all": 1}}]);
        let items = parse_inventory_details(both).unwrap();
        assert_eq!(items[0].changed_at, parse_datetime("2022-09-12 11:07:51"));
        assert_eq!(items[1].changed_at, parse_datetime("2020-01-01 00:00:00"));
    }

    #[test]
    fn inventory_details_also_accept_list_and_empty_array() {
        let map = json!({"240442": {"id": 240442, "item_id": 1, "ean": "123",
            "count_types": {"all": 3}, "paired_cards": []}});
        let items = parse_inventory_details(map).unwrap();
        assert_eq!(items[0].item_id, "1");
        assert_eq!(items[0].egon_id, Some(240442));
        // Only `all`: the other sub-counts are missing, so the card is unreadable.
        assert!(items[0].counts.is_err());
        let full = json!({"1": {"id": 1, "item_id": 1, "count_types": {"all": 3,
            "expired": 0, "damaged": 0, "ordered": 1, "reserved": 0, "expirationBlocked": 0}}});
        let items = parse_inventory_details(full).unwrap();
        assert_eq!(items[0].counts.as_ref().map(CountTypes::sellable), Ok(2));
        let list = json!([{"id": "7", "item_id": "SKU-7", "count_types": []}]);
        let parsed = parse_inventory_details(list).unwrap();
        assert_eq!(parsed[0].egon_id, Some(7));
        assert!(parsed[0].counts.is_err());
        assert!(parse_inventory_details(json!([])).unwrap().is_empty());
        assert!(parse_inventory_details(json!("x")).is_err());
    }

    #[test]
    fn order_status_reads_the_documented_sample_with_quirks() {
        let data = json!({
            "order_original_id": 123456, "reference_number": "123456", "order_id": "654321",
            "status_id": "6", "status_name": "is completed", "api_update_enabled": false,
            "change_timestamp": "2022-09-12 19:00:54", "delivery_id": 291,
            "order_items": {"0": {"ITEM_ID": 123, "COUNT": 1, "COUNT_RESERVED": 1,
                "ISSUE_CARD_ITEMS": [{"INVENTORY_ID": 321, "QR_CODE": "xyz"}]}},
            "packages": [{"package_nr": "ABC123456", "tracking_data": [{"timestamp":
                "2022-09-06 16:25:33", "shipment_status": 13}], "images": {}, "weight": 624}],
            "total_cost": 4.89, "cost_by_item": [{"item_id": 11, "name": "Picking", "price": "0.13"}],
            "order_errors": {}, "invoice_url": null, "invoice_id": 123
        });
        let s: OrderStatus = serde_json::from_value(data).unwrap();
        assert_eq!(s.order_original_id, "123456");
        assert_eq!(s.order_id, Some(654321));
        assert_eq!(s.status_id, 6);
        assert_eq!(s.change_timestamp, parse_datetime("2022-09-12 19:00:54"));
        assert_eq!(s.order_items[0].item_id, "123");
        assert_eq!(
            s.order_items[0].issue_card_items[0].qr_code.as_deref(),
            Some("xyz")
        );
        assert_eq!(s.tracks(), vec!["ABC123456"]);
        assert_eq!(s.total_cost_kop, Some(489));
        assert_eq!(s.cost_by_item[0].price_kop, Some(13));
        assert!(s.order_errors.is_empty());
        assert_eq!(s.invoice_id.as_deref(), Some("123"));
    }

    #[test]
    fn inventory_status_update_accepts_map_list_and_empty() {
        let map: InventoryStatusUpdate = serde_json::from_value(json!({
            "123456": {"ITEM_ID": "123456", "EAN": 123456789012u64, "ESHOP_ID": "108",
                "PURCHASE_PRICE": 54.45, "WITH_VAT": 0,
                "COUNT_TYPES": {"ALL": 236, "EXPIRED": 2, "DAMAGED": 4, "ORDERED": 15,
                    "RESERVED": 21, "EXPIRATION_BLOCKED": 0}}
        }))
        .unwrap();
        let card = &map.0["123456"];
        assert_eq!(card.ean.as_deref(), Some("123456789012"));
        assert_eq!(card.eshop_id, Some(108));
        assert_eq!(card.purchase_price_kop, Some(5445));
        assert_eq!(card.sellable(), Some(194));
        let list: InventoryStatusUpdate =
            serde_json::from_value(json!([{"ITEM_ID": 5, "COUNT": 9, "ORDERED": 2}])).unwrap();
        assert_eq!(list.0["5"].sellable(), Some(7));
        let empty: InventoryStatusUpdate = serde_json::from_value(json!([])).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn answers_are_read_from_resp_data_or_response() {
        let a = Answer::parse(
            r#"{"auth_status":201,"resp_code":403,"response":{"resp_code":403,
            "resp_message":"403: Content Found","resp_data":{"x":1},}}"#,
        )
        .unwrap();
        assert_eq!((a.auth_status, a.resp_code), (Some(201), Some(403)));
        assert_eq!(a.data, json!({"x": 1}));
        let b = Answer::parse(
            r#"{"auth_status":"201","resp_code":200,"response":{"success":true,
            "inventory_details":[]}}"#,
        )
        .unwrap();
        assert_eq!(b.resp_code, Some(200));
        assert_eq!(b.data["inventory_details"], json!([]));
        assert!(Answer::parse("[1]").is_err());
        assert!(Answer::parse("{\"auth_status\":").is_err());
    }

    #[test]
    fn requests_are_sent_as_documented() {
        let card = InventoryCard {
            item_id: "123456".into(),
            shop_setting_id: 1,
            name: "product name".into(),
            catalog_id: None,
            ean: Some("0123".into()),
            mj: None,
            enabled: Some(true),
            price_without_tax_kop: Some(125),
            tax: None,
        };
        assert_eq!(
            serde_json::to_value(&card).unwrap(),
            json!({"item_id": 123456, "shop_setting_id": 1, "name": "product name",
                "ean": "0123", "enabled": 1, "price_without_tax": 1.25})
        );
        assert_eq!(id_value("00123"), json!("00123"));
        assert_eq!(id_value("SKU-1"), json!("SKU-1"));
        assert_eq!(id_value("42"), json!(42));
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let cfg = EgonConfig::new(
            "http://x",
            "id",
            Secret::new("k-s3cr3t"),
            Secret::new("t-s3cr3t"),
        );
        let client = EgonClient::new(cfg).unwrap();
        let dbg = format!("{client:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        let err = EgonError::Unauthorized {
            method: "InventoryDetail",
            auth_id: "id".into(),
        };
        assert!(!err.to_string().contains("s3cr3t"));
    }

    #[test]
    fn empty_configuration_is_refused() {
        let cfg = EgonConfig::new(" ", "id", Secret::new("k"), Secret::new("t"));
        assert!(matches!(EgonClient::new(cfg), Err(EgonError::Config(_))));
        let cfg = EgonConfig::new("http://x", "", Secret::new("k"), Secret::new("t"));
        assert!(matches!(EgonClient::new(cfg), Err(EgonError::Config(_))));
    }
}
