//! IMSKLAD WMS client (IMSKLAD API documentation): one `POST /` endpoint taking the envelope
//! `{"key","type","action","data"}`.
//!
//! Answers are read liberally (trailing commas, ids and quantities as strings,
//! money with 0–2 decimals as numbers or strings); requests are written
//! exactly as documented. Money is kept as integer kopecks in every type and
//! converted to rubles only at the wire.
//!
//! Error codes (`{"error","code"}`): 1 fatal server error (retried with
//! backoff), 2 object not found, 3 bad request data, 4 operation not
//! performed. HTTP 5xx/408/429, timeouts and undecodable bodies are retried
//! too, within the [`HttpPolicy`]; undecodable bodies at most
//! [`MAX_DECODE_RETRIES`] times.

use crate::connectors::http::{request_id, send_json, snippet, HttpPolicy};
use crate::lenient;
use crate::progress::Progress;
use crate::secret::Secret;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::time::Duration;
use tokio::task::JoinSet;
mod error;
pub use error::*;
mod types;
pub use types::*;
mod answers;
pub use answers::*;

/// The IMSKLAD API client; cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct ImskladClient {
    http: reqwest::Client,
    cfg: std::sync::Arc<ImskladConfig>,
}

impl std::fmt::Debug for ImskladClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImskladClient")
            .field("url", &self.cfg.url)
            .field("storage_id", &self.cfg.storage_id)
            .finish_non_exhaustive()
    }
}

/// How one attempt ended, before retry policy is applied.
type Attempt = Result<Value, ImskladError>;

impl ImskladClient {
    /// Validates the configuration and builds the HTTP client.
    pub fn new(cfg: ImskladConfig) -> Result<Self, ImskladError> {
        if cfg.url.trim().is_empty() {
            return Err(ImskladError::Config("url is empty".into()));
        }
        if cfg.key.is_empty() {
            return Err(ImskladError::Config("key is empty".into()));
        }
        if cfg.stock_batch == 0 {
            return Err(ImskladError::Config(
                "stock_batch must be at least 1".into(),
            ));
        }
        if cfg.concurrency == 0 {
            return Err(ImskladError::Config(
                "concurrency must be at least 1".into(),
            ));
        }
        if cfg.policy.max_attempts == 0 {
            return Err(ImskladError::Config(
                "policy.max_attempts must be at least 1".into(),
            ));
        }
        let http = cfg.policy.client().map_err(ImskladError::Client)?;
        Ok(ImskladClient {
            http,
            cfg: std::sync::Arc::new(cfg),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ImskladConfig {
        &self.cfg
    }

    /// `goods/add_good`; returns the WMS goods id.
    pub async fn add_good(&self, g: &Good) -> Result<i64, ImskladError> {
        self.write_good("add_good", g).await
    }

    /// `goods/update_good`; returns the WMS goods id.
    pub async fn update_good(&self, g: &Good) -> Result<i64, ImskladError> {
        self.write_good("update_good", g).await
    }

    async fn write_good(&self, action: &str, g: &Good) -> Result<i64, ImskladError> {
        let data = encode(action, g)?;
        let answer = match self.call("goods", action, &data).await {
            Ok(answer) => answer,
            Err(e) => {
                let outcome = duplicate_add(action, e)?;
                tracing::warn!(
                    action,
                    warning = outcome.warning().unwrap_or(""),
                    "imsklad duplicate add"
                );
                return outcome.id().ok_or_else(|| ImskladError::Decode {
                    action: action.into(),
                    reason: "no goods id in the answer".into(),
                    snippet: String::new(),
                });
            }
        };
        let outcome = write_outcome(action, &answer)?;
        if let WriteOutcome::Warning { warning, .. } = &outcome {
            tracing::warn!(action, warning = %warning, "imsklad answered a warning");
        }
        outcome.id().ok_or_else(|| ImskladError::Decode {
            action: action.into(),
            reason: "no goods id in the answer".into(),
            snippet: snippet(&answer.to_string()),
        })
    }

    /// `goods/get_stock` for any number of WMS ids: deduplicated, split into
    /// `stock_batch`-sized calls with at most `concurrency` in flight, rows
    /// sorted by id. Ids the WMS does not answer for are simply absent.
    pub async fn get_stock(&self, wms_ids: &[i64]) -> Result<StockAnswer, ImskladError> {
        let mut ids = wms_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut answer = StockAnswer::default();
        let mut tasks: JoinSet<Result<StockAnswer, ImskladError>> = JoinSet::new();
        let batch = self.cfg.stock_batch.max(1);
        let bar = Progress::counter(
            "IMSKLAD get_stock",
            ids.len().div_ceil(batch) as u64,
            "batches",
        );
        for chunk in ids.chunks(batch) {
            while tasks.len() >= self.cfg.concurrency {
                answer.extend(join_one(&mut tasks).await?);
                bar.inc(1);
            }
            let client = self.clone();
            let chunk = chunk.to_vec();
            tasks.spawn(async move { client.get_stock_batch(&chunk).await });
        }
        while !tasks.is_empty() {
            answer.extend(join_one(&mut tasks).await?);
            bar.inc(1);
        }
        answer.rows.sort_by_key(|r| r.id);
        answer.rows.dedup_by_key(|r| r.id);
        answer.unreadable.sort_by_key(|r| r.id);
        answer.unreadable.dedup_by_key(|r| r.id);
        Ok(answer)
    }

    /// One `get_stock` call (no batching).
    pub async fn get_stock_batch(&self, wms_ids: &[i64]) -> Result<StockAnswer, ImskladError> {
        const ACTION: &str = "get_stock";
        let data = serde_json::json!({ "storage_id": self.cfg.storage_id, "ids": wms_ids });
        let answer = self.call("goods", ACTION, &data).await?;
        parse_stock(&answer).map_err(|reason| ImskladError::Decode {
            action: ACTION.into(),
            reason,
            snippet: snippet(&answer.to_string()),
        })
    }

    /// `order/add_order` (with the configured `storage_id`).
    pub async fn add_order(&self, o: &Order) -> Result<WriteOutcome, ImskladError> {
        let mut data = encode("add_order", o)?;
        insert_storage(&mut data, self.cfg.storage_id);
        self.write("order", "add_order", &data).await
    }

    /// `order/update_order`; the documented partial success (goods of an order
    /// in assembly not saved) comes back as [`WriteOutcome::Warning`].
    pub async fn update_order(&self, o: &Order) -> Result<WriteOutcome, ImskladError> {
        let data = encode("update_order", o)?;
        self.write("order", "update_order", &data).await
    }

    /// `preorder/add_preorder` (date sent as `owner_date`, with `storage_id`).
    pub async fn add_preorder(&self, p: &Preorder) -> Result<WriteOutcome, ImskladError> {
        let mut data = encode("add_preorder", p)?;
        rename_key(&mut data, "date", "owner_date");
        insert_storage(&mut data, self.cfg.storage_id);
        self.write("preorder", "add_preorder", &data).await
    }

    /// `preorder/update_preorder` (date sent as `date`).
    pub async fn update_preorder(&self, p: &Preorder) -> Result<WriteOutcome, ImskladError> {
        let data = encode("update_preorder", p)?;
        self.write("preorder", "update_preorder", &data).await
    }

    /// `doc/add_doc` (with `storage_id`).
    pub async fn add_doc(&self, d: &Doc) -> Result<WriteOutcome, ImskladError> {
        let mut data = encode("add_doc", d)?;
        insert_storage(&mut data, self.cfg.storage_id);
        self.write("doc", "add_doc", &data).await
    }

    /// `doc/update_doc`.
    pub async fn update_doc(&self, d: &Doc) -> Result<WriteOutcome, ImskladError> {
        let data = encode("update_doc", d)?;
        self.write("doc", "update_doc", &data).await
    }

    /// `billing/get_billing` for `[from_unix, to_unix]`.
    pub async fn get_billing(&self, from_unix: i64, to_unix: i64) -> Result<Billing, ImskladError> {
        const ACTION: &str = "get_billing";
        let data = serde_json::json!({
            "storage_id": self.cfg.storage_id,
            "from": from_unix,
            "to": to_unix,
        });
        let answer = self.call("billing", ACTION, &data).await?;
        serde_json::from_value(answer.clone()).map_err(|e| ImskladError::Decode {
            action: ACTION.into(),
            reason: e.to_string(),
            snippet: snippet(&answer.to_string()),
        })
    }

    async fn write(
        &self,
        kind: &str,
        action: &str,
        data: &Value,
    ) -> Result<WriteOutcome, ImskladError> {
        match self.call(kind, action, data).await {
            Ok(answer) => write_outcome(action, &answer),
            Err(e) => duplicate_add(action, e),
        }
    }

    /// Sends one envelope with retries; answers the decoded JSON of a
    /// non-error answer.
    pub async fn call(
        &self,
        kind: &str,
        action: &str,
        data: &Value,
    ) -> Result<Value, ImskladError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "key": self.cfg.key.expose(),
            "type": kind,
            "action": action,
            "data": data,
        }))
        .map_err(|e| ImskladError::Encode {
            action: action.into(),
            reason: e.to_string(),
        })?;
        let rid = request_id();
        let mut decode_failures = 0u32;
        let mut attempt = 1u32;
        loop {
            tracing::debug!(action, request_id = %rid, attempt, "imsklad request");
            let result = self.attempt(action, &rid, body.clone()).await;
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if matches!(err, ImskladError::Decode { .. }) {
                decode_failures += 1;
            }
            // A write that is not idempotent is never re-sent after an
            // answer that leaves its effect open.
            let may_retry = err.is_retryable()
                && (is_idempotent(action) || !err.is_ambiguous())
                && attempt < self.cfg.policy.max_attempts
                && decode_failures <= MAX_DECODE_RETRIES;
            if !may_retry {
                tracing::debug!(action, request_id = %rid, attempt, error = %crate::errors::Chain(&err), "imsklad request failed");
                return Err(err);
            }
            let wait = self.cfg.policy.backoff(attempt);
            tracing::debug!(action, request_id = %rid, attempt, error = %crate::errors::Chain(&err), wait_ms = wait.as_millis() as u64, "imsklad retry");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, action: &str, rid: &str, body: Vec<u8>) -> Attempt {
        let transport = |source: reqwest::Error| ImskladError::Transport {
            action: action.into(),
            timeout: source.is_timeout(),
            source,
        };
        let request = self.http.post(&self.cfg.url).header("X-Request-Id", rid);
        let response = send_json(request, body).await.map_err(transport)?;
        let status = response.status();
        let cap = if action == "get_billing" {
            crate::connectors::http::body_caps::IMSKLAD_BILLING
        } else {
            crate::connectors::http::body_caps::DEFAULT
        };
        let bytes = match crate::connectors::http::read_capped(response, cap)
            .await
            .map_err(transport)?
        {
            Ok(bytes) => bytes,
            Err(too_large) => {
                return Err(ImskladError::Decode {
                    action: action.into(),
                    reason: too_large.to_string(),
                    snippet: String::new(),
                })
            }
        };
        classify_answer(action, status.as_u16(), &bytes)
    }
}

/// Turns one HTTP answer into JSON or the error it stands for.
fn classify_answer(action: &str, status: u16, bytes: &[u8]) -> Attempt {
    let text = String::from_utf8_lossy(bytes);
    let parsed: Result<Value, _> = lenient::from_slice(bytes);
    match parsed {
        Ok(v) => {
            if let Some(err) = api_error(action, &v) {
                return Err(err);
            }
            if !(200..300).contains(&status) {
                return Err(ImskladError::Status {
                    action: action.into(),
                    status,
                    snippet: snippet(&text),
                });
            }
            Ok(v)
        }
        Err(e) if (200..300).contains(&status) => Err(ImskladError::Decode {
            action: action.into(),
            reason: e.to_string(),
            snippet: snippet(&text),
        }),
        Err(_) => Err(ImskladError::Status {
            action: action.into(),
            status,
            snippet: snippet(&text),
        }),
    }
}

/// A code-4 answer to an `add_*` that carries an id is read as "already
/// exists" ([`DUPLICATE_WITH_ID`], a warning); anything else stays the error.
fn duplicate_add(action: &str, e: ImskladError) -> Result<WriteOutcome, ImskladError> {
    match e {
        ImskladError::Api {
            code: 4,
            id: Some(id),
            ..
        } if !is_idempotent(action) => Ok(WriteOutcome::Warning {
            id: Some(id),
            warning: DUPLICATE_WITH_ID.into(),
        }),
        other => Err(other),
    }
}

/// `{"error": "...", "code": N}` → [`ImskladError::Api`]. A missing or
/// unreadable code is kept as 0 (no retry, no specific class).
fn api_error(action: &str, v: &Value) -> Option<ImskladError> {
    let obj = v.as_object()?;
    let message = obj.get("error")?;
    let code = obj.get("code").and_then(lenient::value_to_i64).unwrap_or(0);
    let message = match message {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(ImskladError::Api {
        action: action.into(),
        code,
        message,
        id: obj.get("id").and_then(lenient::value_to_i64),
    })
}

/// Reads `{"result":"ok"|"warning", "warning"?, "id"?}`.
fn write_outcome(action: &str, v: &Value) -> Result<WriteOutcome, ImskladError> {
    let decode = |reason: &str| ImskladError::Decode {
        action: action.into(),
        reason: reason.into(),
        snippet: snippet(&v.to_string()),
    };
    let obj = v.as_object().ok_or_else(|| decode("expected an object"))?;
    let id = obj.get("id").and_then(lenient::value_to_i64);
    let result = obj
        .get("result")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_ascii_lowercase());
    match result.as_deref() {
        Some("ok") => Ok(WriteOutcome::Ok { id }),
        Some("warning") => {
            let warning = obj
                .get("warning")
                .and_then(lenient::value_to_id)
                .unwrap_or_default();
            Ok(WriteOutcome::Warning { id, warning })
        }
        Some(_) => Err(decode("unknown result")),
        // Liberal: an id without a result still reports the write.
        None if id.is_some() => Ok(WriteOutcome::Ok { id }),
        None => Err(decode("no result field")),
    }
}

/// Reads the bare `get_stock` array (also `{}`/`null` as empty and a map keyed by id).
/// Reads `get_stock`'s rows. A row without a readable `id` fails the answer
/// (it cannot be attributed to a SKU); a row whose `stock` is missing, null,
/// non-numeric or negative (or whose `reserved` is non-numeric or negative) is
/// kept as [`UnreadableStock`]: missing is not zero.
pub fn parse_stock(v: &Value) -> Result<StockAnswer, String> {
    let items: Vec<&Value> = match v {
        Value::Null => Vec::new(),
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) => m.values().collect(),
        other => return Err(format!("expected an array, got {}", type_name(other))),
    };
    let mut out = StockAnswer::default();
    for item in items {
        let id = item
            .get("id")
            .and_then(lenient::value_to_i64)
            .ok_or_else(|| format!("a stock row without a readable id: {item}"))?;
        let stock = match item.get("stock") {
            None => Err("no `stock` in the row".to_string()),
            Some(v) => {
                lenient::value_to_count(v).ok_or_else(|| format!("`stock` is not a count: {v}"))
            }
        };
        let reserved = match item.get("reserved") {
            None | Some(Value::Null) => Ok(0),
            Some(v) => {
                lenient::value_to_count(v).ok_or_else(|| format!("`reserved` is not a count: {v}"))
            }
        };
        match (stock, reserved) {
            (Ok(stock), Ok(reserved)) => out.rows.push(StockRow {
                id,
                stock,
                reserved,
            }),
            (Err(reason), _) | (_, Err(reason)) => {
                out.unreadable.push(UnreadableStock { id, reason })
            }
        }
    }
    Ok(out)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn join_one(
    tasks: &mut JoinSet<Result<StockAnswer, ImskladError>>,
) -> Result<StockAnswer, ImskladError> {
    match tasks.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(join)) => Err(ImskladError::Task {
            action: "get_stock".into(),
            reason: join.to_string(),
        }),
        None => Ok(StockAnswer::default()),
    }
}

fn encode<T: Serialize>(action: &str, value: &T) -> Result<Value, ImskladError> {
    serde_json::to_value(value).map_err(|e| ImskladError::Encode {
        action: action.into(),
        reason: e.to_string(),
    })
}

fn insert_storage(data: &mut Value, storage_id: i64) {
    if let Value::Object(map) = data {
        map.insert("storage_id".into(), Value::from(storage_id));
    }
}

fn rename_key(data: &mut Value, from: &str, to: &str) {
    if let Value::Object(map) = data {
        if let Some(v) = map.remove(from) {
            map.insert(to.into(), v);
        }
    }
}

/// A small policy for tests and the demo: short timeouts and backoffs.
pub fn quick_policy(timeout: Duration, max_attempts: u32) -> HttpPolicy {
    HttpPolicy {
        timeout,
        connect_timeout: timeout,
        max_attempts,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::imsklad::doc_examples as ex;
    use serde_json::json;

    fn data_of(example: &str) -> Value {
        let v: Value = lenient::from_str(example).expect("doc example parses");
        v["data"].clone()
    }

    fn expected_rubles_text(kop: i64) -> String {
        let sign = if kop < 0 { "-" } else { "" };
        let abs = kop.unsigned_abs();
        let (whole, cents) = (abs / 100, abs % 100);
        match cents {
            0 => format!("{sign}{whole}"),
            c if c % 10 == 0 => format!("{sign}{whole}.{}", c / 10),
            c => format!("{sign}{whole}.{c:02}"),
        }
    }

    #[test]
    fn kopecks_serialise_exactly() {
        let samples = (-20_000..20_000)
            .chain([12_345, 9_999_999_999, 12_345_678_901_234, -1, 1, 10, 705])
            .chain((0..50).map(|i| (1i64 << i) + 1))
            .chain([
                money::MAX_EXACT_KOPECKS,
                -money::MAX_EXACT_KOPECKS,
                123_456_789_012_345,
            ]);
        for kop in samples {
            let text = money::to_rubles(kop).expect("in range").to_string();
            assert_eq!(text, expected_rubles_text(kop), "kop {kop}");
            let back: Value = serde_json::from_str(&text).expect("valid JSON");
            assert_eq!(money::from_value(&back), Some(kop), "round trip of {kop}");
        }
        assert_eq!(
            money::to_rubles(12_345).map(|n| n.to_string()).as_deref(),
            Some("123.45")
        );
        assert!(money::to_rubles(money::MAX_EXACT_KOPECKS + 2).is_none());
        assert!(money::to_rubles(i64::MAX).is_none());
        assert_eq!(
            money::to_rubles(i64::MAX / 100 * 100).map(|n| n.to_string()),
            Some((i64::MAX / 100).to_string())
        );
    }

    #[test]
    fn amounts_are_read_to_the_kopeck() {
        let cases = [
            (json!(100), Some(10_000)),
            (json!(-50), Some(-5_000)),
            (json!(123.45), Some(12_345)),
            (json!(0.1), Some(10)),
            (json!(1e3), Some(100_000)),
            (json!("11067"), Some(1_106_700)),
            (json!("-0.5"), Some(-50)),
            (json!(" 1 234,50 "), Some(123_450)),
            (json!("100.00"), Some(10_000)),
            (json!("100.000"), Some(10_000)),
            (json!(".5"), Some(50)),
            (json!("12.345"), None),
            (json!(0.001), None),
            (json!("abc"), None),
            (json!(""), None),
            (json!("-"), None),
            (json!(null), None),
            (json!(true), None),
        ];
        for (v, want) in cases {
            assert_eq!(money::from_value(&v), want, "{v}");
        }
    }

    #[test]
    fn goods_ids_in_lines_are_integers_when_numeric() {
        let line = |id: &str| {
            serde_json::to_value(OrderGood {
                id: id.into(),
                quantity: 1,
                price_kop: 150,
            })
            .expect("serialises")
        };
        assert_eq!(
            line("123123"),
            json!({"id": 123123, "quantity": 1, "price": 1.5})
        );
        assert_eq!(line("A-1")["id"], json!("A-1"));
        assert_eq!(line("007")["id"], json!("007"));
        assert_eq!(
            line("99999999999999999999")["id"],
            json!("99999999999999999999")
        );
    }

    #[test]
    fn good_matches_the_doc_example() {
        let data = data_of(ex::ADD_GOOD_REQUEST);
        let good: Good = serde_json::from_value(data.clone()).expect("doc example is a Good");
        assert_eq!(
            (good.id.as_str(), good.price_kop, good.cost_kop),
            ("13", 10_000, 10_000)
        );
        assert_eq!(good.color, Some(13));
        let mut expected = data;
        expected["id"] = json!("13"); // documented as String
        assert_eq!(serde_json::to_value(&good).expect("serialises"), expected);
    }

    #[test]
    fn order_matches_the_doc_example() {
        let data = data_of(ex::ADD_ORDER_REQUEST);
        let order: Order = serde_json::from_value(data.clone()).expect("doc example is an Order");
        assert_eq!(order.delivery_kop, 50_000);
        assert_eq!(order.total_paid_kop, 100_000);
        assert_eq!(order.goods[1].price_kop, 500_000);
        let mut expected = data;
        let map = expected.as_object_mut().expect("object");
        map.remove("storage_id"); // added by the client on add_order only
        map.retain(|_, v| !v.is_null()); // unset optional fields are left out
        assert_eq!(serde_json::to_value(&order).expect("serialises"), expected);
    }

    #[test]
    fn callback_order_spelling_is_accepted() {
        let v: Value = lenient::from_str(crate::sandbox::imsklad::CALLBACK_UPDATE_ORDER_EXAMPLE)
            .expect("parses");
        let order: Order = serde_json::from_value(v["data"].clone()).expect("an Order");
        assert_eq!((order.delivery_type, order.courier), (Some(4), Some(42)));
        assert_eq!(order.guid, None);
    }

    #[test]
    fn preorder_and_doc_examples_parse() {
        let p: Preorder =
            serde_json::from_value(data_of(ex::ADD_PREORDER_REQUEST)).expect("add_preorder");
        assert_eq!(
            (p.kind, p.date, p.extra.need_pickup),
            (0, Some(1_565_397_798), Some(1))
        );
        let p2: Preorder =
            serde_json::from_value(data_of(ex::UPDATE_PREORDER_REQUEST)).expect("update_preorder");
        assert_eq!(p2.date, p.date);
        let d: Doc = serde_json::from_value(data_of(ex::ADD_DOC_REQUEST)).expect("add_doc");
        assert_eq!((d.id.as_str(), d.goods.len()), ("4423", 2));
        let d2: Doc = serde_json::from_value(data_of(ex::UPDATE_DOC_REQUEST)).expect("update_doc");
        assert_eq!(d2, d);
    }

    #[test]
    fn constructors_send_only_required_fields() {
        let o = Order::new("A-1", "Иван", vec![OrderGood::new("5", 2, 1_999)]);
        assert_eq!(
            serde_json::to_value(&o).expect("serialises"),
            json!({"id": "A-1", "name": "Иван", "discount": 0, "delivery": 0, "total_paid": 0,
                   "goods": [{"id": 5, "quantity": 2, "price": 19.99}]})
        );
        assert!(!o.is_cancelled());
        assert_eq!(
            serde_json::to_value(Good::new("S", "n", 1)).expect("serialises"),
            json!({"id": "S", "name": "n", "price": 0.01, "cost": 0.01})
        );
    }

    #[test]
    fn quantities_may_be_floats_or_strings() {
        let line: OrderGood =
            serde_json::from_value(json!({"id": "5", "quantity": 2.0, "price": "10,50"}))
                .expect("lenient line");
        assert_eq!((line.quantity, line.price_kop), (2, 1_050));
        let line: OrderGood = serde_json::from_value(json!({"id": 5, "quantity": "3", "price": 1}))
            .expect("lenient line");
        assert_eq!((line.id.as_str(), line.quantity), ("5", 3));
        let goods: Order = serde_json::from_value(json!({
            "id": 1, "name": "n", "discount": 0, "delivery": 0, "total_paid": 0, "goods": {}
        }))
        .expect("goods as {}");
        assert!(goods.goods.is_empty());
    }

    #[test]
    fn adds_are_not_idempotent_and_a_duplicate_is_mapped_only_with_an_id() {
        for action in NOT_IDEMPOTENT {
            assert!(!is_idempotent(action));
        }
        assert!(is_idempotent("update_order") && is_idempotent("get_stock"));
        let dup = |id: Option<i64>| ImskladError::Api {
            action: "add_order".into(),
            code: 4,
            message: "Order already exists".into(),
            id,
        };
        let taken = duplicate_add("add_order", dup(Some(77))).expect("taken as created");
        assert_eq!(taken.id(), Some(77));
        assert!(taken.warning().unwrap_or("").contains("UNVERIFIED"));
        assert!(duplicate_add("add_order", dup(None)).is_err());
        assert!(duplicate_add("update_order", dup(Some(77))).is_err());
        let api = api_error(
            "add_good",
            &json!({"error": "Good already exists", "code": 4, "id": "12"}),
        );
        assert!(matches!(
            api,
            Some(ImskladError::Api {
                code: 4,
                id: Some(12),
                ..
            })
        ));
        let decode = ImskladError::Decode {
            action: "add_order".into(),
            reason: "truncated".into(),
            snippet: String::new(),
        };
        assert!(decode.is_ambiguous() && decode.is_retryable());
        let refused = ImskladError::Status {
            action: "add_order".into(),
            status: 429,
            snippet: String::new(),
        };
        assert!(!refused.is_ambiguous() && refused.is_retryable());
    }

    #[test]
    fn stock_answer_example_parses_verbatim() {
        let v: Value = lenient::from_str(ex::GET_STOCK_ANSWER).expect("parses");
        let rows = parse_stock(&v).expect("rows").rows;
        assert_eq!(
            rows,
            vec![
                StockRow {
                    id: 124_323,
                    stock: 10,
                    reserved: 2
                },
                StockRow {
                    id: 342_343,
                    stock: 25,
                    reserved: 4
                },
            ]
        );
        let quirky = r#"[{"id": "7", "stock": "3", "reserved": "1",}, {"id": 8, "stock": 2.0,},]"#;
        let v: Value = lenient::from_str(quirky).expect("trailing commas");
        let rows = parse_stock(&v).expect("rows").rows;
        assert_eq!(
            rows[0],
            StockRow {
                id: 7,
                stock: 3,
                reserved: 1
            }
        );
        assert_eq!(
            rows[1],
            StockRow {
                id: 8,
                stock: 2,
                reserved: 0
            }
        );
        assert!(parse_stock(&json!({}))
            .expect("{} is empty")
            .rows
            .is_empty());
        assert!(parse_stock(&json!("nope")).is_err());
        // Missing is not zero: rows without stock, or with unreadable figures.
        let odd = json!([
            {"id": 1, "reserved": 0},
            {"id": 2, "stock": null},
            {"id": 3, "stock": "n/a"},
            {"id": 4, "stock": -2},
            {"id": 5, "stock": 3, "reserved": -1},
            {"id": 6, "stock": 1e30},
            {"id": 7, "stock": 4},
        ]);
        let answer = parse_stock(&odd).expect("rows");
        assert_eq!(
            answer.rows,
            vec![StockRow {
                id: 7,
                stock: 4,
                reserved: 0
            }]
        );
        assert_eq!(
            answer.unreadable.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        assert!(
            parse_stock(&json!([{"stock": 1}])).is_err(),
            "a row without id"
        );
    }

    #[test]
    fn billing_example_parses_to_kopecks() {
        let b: Billing = lenient::from_str(ex::GET_BILLING_ANSWER).expect("parses");
        assert_eq!(b.current_balance_kop, 1_106_700);
        assert_eq!(b.change_of_balance_kop, -15_000);
        assert_eq!(b.lines.len(), 2);
        let first = &b.lines[0];
        assert_eq!(first.order_id, Some(153_383));
        assert_eq!(first.foreign_order_id.as_deref(), Some("359407"));
        // The example's lines carry no `type`: an empty comment names no
        // operation, "Забор товара" is a documented "other" (9).
        assert_eq!(
            (first.kind, first.amount_kop),
            (BILLING_KIND_UNTYPED, -5_000)
        );
        let second = &b.lines[1];
        assert_eq!((second.doc_request_id, second.order_id), (Some(1120), None));
        assert_eq!(second.comment, "Забор товара");
        assert_eq!(second.kind, BILLING_KIND_OTHER);
        let sum: i64 = b.lines.iter().map(|l| l.amount_kop).sum();
        assert_eq!(sum, b.change_of_balance_kop);
    }

    #[test]
    fn untyped_billing_lines_take_the_type_their_comment_documents() {
        for (comment, kind) in [
            ("Сборка заказа", 0),
            ("  сборка заказа 359407", 0),
            ("Пополнение баланса", 1),
            ("Доставка", 2),
            ("Доставка СДЭК", 2),
            ("Забор товара", BILLING_KIND_OTHER),
            ("", BILLING_KIND_UNTYPED),
            ("Хранение", BILLING_KIND_UNTYPED),
        ] {
            assert_eq!(billing_kind_from_comment(comment), kind, "{comment:?}");
        }
        // An explicit type always wins over the comment.
        let b: Billing = lenient::from_str(
            r#"{"current_balance": 0, "change_of_balance": 0, "billing": [
            {"id": 1, "type": 2, "date": 1, "amount": -1, "comment": "Сборка заказа"},
            {"id": 2, "date": 1, "amount": -1, "comment": "Сборка заказа"}]}"#,
        )
        .unwrap();
        assert_eq!((b.lines[0].kind, b.lines[1].kind), (2, 0));
    }

    #[test]
    fn billing_accepts_strings_and_decimals() {
        let text = r#"{"current_balance": "110.67", "change_of_balance": -1.5,
            "billing": [{"id": "1", "type": "0", "date": "1590775160", "amount": "-1.50",
            "comment": null, "foreign_order_id": 359407},]}"#;
        let b: Billing = lenient::from_str(text).expect("parses");
        assert_eq!(
            (b.current_balance_kop, b.change_of_balance_kop),
            (11_067, -150)
        );
        let l = &b.lines[0];
        assert_eq!((l.kind, l.amount_kop, l.comment.as_str()), (0, -150, ""));
        assert_eq!(l.foreign_order_id.as_deref(), Some("359407"));
        let empty: Billing =
            lenient::from_str(r#"{"current_balance": 0, "change_of_balance": 0, "billing": {}}"#)
                .expect("{} billing");
        assert!(empty.lines.is_empty());
    }

    #[test]
    fn answers_are_classified() {
        let warning = classify_answer(
            "update_order",
            200,
            ex::UPDATE_ORDER_WARNING_ANSWER.as_bytes(),
        )
        .and_then(|v| write_outcome("update_order", &v))
        .expect("a warning is a success");
        assert_eq!(
            warning,
            WriteOutcome::Warning {
                id: Some(124_323),
                warning: WARNING_GOODS_NOT_SAVED.into()
            }
        );
        let ok = classify_answer("add_good", 200, ex::OK_ANSWER.as_bytes())
            .and_then(|v| write_outcome("add_good", &v))
            .expect("ok");
        assert_eq!(ok.id(), Some(124_323));
        let err =
            classify_answer("add_good", 200, ex::ERROR_ANSWER.as_bytes()).expect_err("error body");
        assert!(err.is_bad_request() && !err.is_retryable());
        assert_eq!(err.action(), Some("add_good"));
        let err =
            classify_answer("x", 500, br#"{"error": "boom", "code": "1"}"#).expect_err("code 1");
        assert!(err.is_fatal_server_error() && err.is_retryable());
        let err = classify_answer("x", 502, b"<html>Bad gateway</html>").expect_err("502");
        assert!(matches!(err, ImskladError::Status { status: 502, .. }) && err.is_retryable());
        let err = classify_answer("get_stock", 200, b"[{\"id\": 1, \"st").expect_err("truncated");
        assert!(matches!(err, ImskladError::Decode { .. }) && err.is_retryable());
        assert!(err.to_string().contains("[{\"id\": 1"), "{err}");
        let err = classify_answer("x", 404, b"{}").expect_err("404");
        assert!(!err.is_retryable());
        let err = write_outcome("x", &json!({"result": "fail"})).expect_err("unknown result");
        assert!(matches!(err, ImskladError::Decode { .. }));
        let id_as_string = write_outcome("x", &json!({"result": "ok", "id": "77"})).expect("ok");
        assert_eq!(id_as_string.id(), Some(77));
        let bare_id = write_outcome("x", &json!({"id": 78})).expect("id only");
        assert_eq!(bare_id, WriteOutcome::Ok { id: Some(78) });
        assert!(write_outcome("x", &json!({})).is_err());
        assert!(write_outcome("x", &json!([1])).is_err());
    }

    #[test]
    fn configuration_is_validated_and_key_is_hidden() {
        let cfg = ImskladConfig::new("http://127.0.0.1:1/", Secret::new("k-SECRET-1"), 1);
        let client = ImskladClient::new(cfg.clone()).expect("valid");
        assert!(!format!("{client:?}{cfg:?}").contains("k-SECRET-1"));
        let bad = |f: fn(&mut ImskladConfig)| {
            let mut c = cfg.clone();
            f(&mut c);
            matches!(ImskladClient::new(c), Err(ImskladError::Config(_)))
        };
        assert!(bad(|c| c.stock_batch = 0));
        assert!(bad(|c| c.concurrency = 0));
        assert!(bad(|c| c.url = " ".into()));
        assert!(bad(|c| c.key = Secret::default()));
        assert!(bad(|c| c.policy.max_attempts = 0));
    }
}
