//! IMSKLAD WMS client (seed 002): one `POST /` endpoint taking the envelope
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

use crate::connectors::http::{request_id, snippet, HttpPolicy};
use crate::lenient;
use crate::progress::Progress;
use crate::secret::Secret;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::time::Duration;
use tokio::task::JoinSet;

/// How many times an undecodable (e.g. truncated) answer is retried.
pub const MAX_DECODE_RETRIES: u32 = 2;

/// The warning text IMSKLAD answers when `update_order` could not change the
/// goods of an order that is already being assembled.
pub const WARNING_GOODS_NOT_SAVED: &str = "The order in the assembly process(goods not saved)";

/// Errors of the IMSKLAD client; each carries the action it happened in.
#[derive(Debug, thiserror::Error)]
pub enum ImskladError {
    /// The configuration cannot be used (empty URL, zero batch size …).
    #[error("IMSKLAD configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("IMSKLAD HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// IMSKLAD answered `{"error": message, "code": code}`.
    #[error("IMSKLAD {action}: error code {code}: {message}")]
    Api {
        /// The action called.
        action: String,
        /// 1 fatal, 2 not found, 3 bad data, 4 not performed (others kept as sent).
        code: i64,
        /// The service's error text.
        message: String,
        /// An object id the error answer carried, if any (a duplicate add may
        /// name the existing object; undocumented, see [`DUPLICATE_WITH_ID`]).
        id: Option<i64>,
    },
    /// A non-success HTTP status without an IMSKLAD error body.
    #[error("IMSKLAD {action}: HTTP {status}: {snippet}")]
    Status {
        /// The action called.
        action: String,
        /// HTTP status code.
        status: u16,
        /// Start of the body.
        snippet: String,
    },
    /// The request did not complete (connect error, timeout, reset).
    #[error("IMSKLAD {action}: request failed{}: {source}", if *.timeout { " (timeout)" } else { "" })]
    Transport {
        /// The action called.
        action: String,
        /// True when the request timed out.
        timeout: bool,
        /// The underlying error (its text holds the URL, never the key: the key travels in the body).
        #[source]
        source: reqwest::Error,
    },
    /// The answer is not the JSON the action documents (truncated, HTML, wrong shape).
    #[error("IMSKLAD {action}: undecodable answer ({reason}): {snippet}")]
    Decode {
        /// The action called.
        action: String,
        /// What was wrong.
        reason: String,
        /// Start of the body.
        snippet: String,
    },
    /// A concurrent `get_stock` batch did not finish (it panicked or was cancelled).
    #[error("IMSKLAD {action}: batch task failed: {reason}")]
    Task {
        /// The action called.
        action: String,
        /// What happened to the task.
        reason: String,
    },
    /// A value of ours cannot be expressed on the wire (e.g. an amount too large to send exactly).
    #[error("IMSKLAD {action}: cannot encode the request: {reason}")]
    Encode {
        /// The action called.
        action: String,
        /// What was wrong.
        reason: String,
    },
}

impl ImskladError {
    /// The IMSKLAD error code, when the service answered one.
    pub fn code(&self) -> Option<i64> {
        match self {
            ImskladError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Code 1: fatal server error (worth retrying later).
    pub fn is_fatal_server_error(&self) -> bool {
        self.code() == Some(1)
    }

    /// Code 2: the object was not found.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(2)
    }

    /// Code 3: the request data was refused (also a wrong key, see the sandbox).
    pub fn is_bad_request(&self) -> bool {
        self.code() == Some(3)
    }

    /// Code 4: the operation was not performed.
    pub fn is_not_performed(&self) -> bool {
        self.code() == Some(4)
    }

    /// The action the error happened in, if it happened in one.
    pub fn action(&self) -> Option<&str> {
        match self {
            ImskladError::Api { action, .. }
            | ImskladError::Status { action, .. }
            | ImskladError::Transport { action, .. }
            | ImskladError::Decode { action, .. }
            | ImskladError::Task { action, .. }
            | ImskladError::Encode { action, .. } => Some(action),
            ImskladError::Config(_) | ImskladError::Client(_) => None,
        }
    }

    /// Whether the request may have taken effect although no usable answer
    /// came back: a timeout or a reset after the request was sent, an
    /// unreadable answer, HTTP 5xx/408, or code 1 (fatal server error). A
    /// connect failure, HTTP 429 or a documented refusal did nothing.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            ImskladError::Transport { source, .. } => !source.is_connect(),
            ImskladError::Decode { .. } => true,
            ImskladError::Status { status, .. } => *status >= 500 || *status == 408,
            ImskladError::Api { code, .. } => *code == 1,
            ImskladError::Config(_)
            | ImskladError::Client(_)
            | ImskladError::Task { .. }
            | ImskladError::Encode { .. } => false,
        }
    }

    /// Whether a new attempt may succeed: code 1, HTTP 5xx/408/429, transport
    /// failures and undecodable answers.
    pub fn is_retryable(&self) -> bool {
        match self {
            ImskladError::Api { code, .. } => *code == 1,
            ImskladError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            ImskladError::Transport { .. } | ImskladError::Decode { .. } => true,
            ImskladError::Config(_)
            | ImskladError::Client(_)
            | ImskladError::Task { .. }
            | ImskladError::Encode { .. } => false,
        }
    }
}

/// The actions that are not idempotent: sent twice, they would create twice
/// (or, since IMSKLAD refuses a second object with the same partner id,
/// answer code 4 "operation not performed"). After an ambiguous failure
/// ([`ImskladError::is_ambiguous`]) they are not retried within a run: the
/// job journals them `unknown`.
pub const NOT_IDEMPOTENT: [&str; 4] = ["add_order", "add_good", "add_doc", "add_preorder"];

/// Whether `action` may be sent again after an ambiguous failure.
pub fn is_idempotent(action: &str) -> bool {
    !NOT_IDEMPOTENT.contains(&action)
}

/// The warning recorded when an `add_*` is answered code 4 with an id.
///
/// UNVERIFIED: IMSKLAD documents code 4 only as "operation not performed"
/// and not what it answers to a duplicate add. sverka takes the answer as
/// "already exists, here is its id" (and maps it) only when it carries an
/// `id`; without one it stays a failure. The sandbox answers either way
/// (`ImskladState::duplicate_add_carries_id`).
pub const DUPLICATE_WITH_ID: &str = "IMSKLAD answered code 4 (operation not performed) with an id: taken as already created (UNVERIFIED reading of an undocumented answer)";

/// Connection settings of the IMSKLAD client.
#[derive(Debug, Clone)]
pub struct ImskladConfig {
    /// Endpoint URL, e.g. `http://client.imsklad.ru:7000/`.
    pub url: String,
    /// API key (sent in the body, never logged).
    pub key: Secret,
    /// Warehouse id (`storage_id`, 1 today).
    pub storage_id: i64,
    /// WMS ids per `get_stock` call.
    pub stock_batch: usize,
    /// `get_stock` calls in flight at once.
    pub concurrency: usize,
    /// Timeouts and retries.
    pub policy: HttpPolicy,
}

impl ImskladConfig {
    /// A configuration with the default batch (500), concurrency (4) and policy.
    pub fn new(url: impl Into<String>, key: Secret, storage_id: i64) -> Self {
        ImskladConfig {
            url: url.into(),
            key,
            storage_id,
            stock_batch: 500,
            concurrency: 4,
            policy: HttpPolicy::default(),
        }
    }
}

/// Serde helpers for money: integer kopecks in our types, rubles on the wire.
pub mod money {
    use super::*;

    /// Largest magnitude (in kopecks) sent as a JSON number with cents: up to
    /// 15 significant digits every decimal survives the trip through an `f64`
    /// (`DBL_DIG`), so the printed number is exactly the amount.
    pub const MAX_EXACT_KOPECKS: i64 = 999_999_999_999_999;

    /// The rubles JSON number for `kop`: an integer when whole (`100`), else
    /// the shortest decimal (`123.45`, `0.5`). `None` for amounts with cents
    /// beyond [`MAX_EXACT_KOPECKS`].
    ///
    /// `kop as f64 / 100.0` is the double nearest to the exact decimal (both
    /// operands are exact and IEEE division rounds correctly), and serde_json
    /// prints the shortest text that reads back to it, which within 15
    /// significant digits is that decimal.
    pub fn to_rubles(kop: i64) -> Option<serde_json::Number> {
        if kop % 100 == 0 {
            return Some(serde_json::Number::from(kop / 100));
        }
        if kop.unsigned_abs() > MAX_EXACT_KOPECKS as u64 {
            return None;
        }
        serde_json::Number::from_f64(kop as f64 / 100.0)
    }

    /// Kopecks from a decimal text with 0–2 decimals (`"123"`, `"-0.5"`,
    /// `"1 234,50"`, `"100.00"`); more non-zero decimals or anything else → `None`.
    pub fn parse_decimal(text: &str) -> Option<i64> {
        let cleaned: String = text
            .trim()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '\u{a0}')
            .map(|c| if c == ',' { '.' } else { c })
            .collect();
        let (negative, digits) = match cleaned.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let (cents, rest) = frac.split_at(frac.len().min(2));
        if rest.chars().any(|c| c != '0') {
            return None;
        }
        let rubles: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let cents: i64 = match cents.len() {
            0 => 0,
            1 => cents.parse::<i64>().ok()? * 10,
            _ => cents.parse().ok()?,
        };
        let kop = rubles.checked_mul(100)?.checked_add(cents)?;
        Some(if negative { -kop } else { kop })
    }

    /// Kopecks from a JSON number or string of rubles.
    pub fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Number(n) => parse_decimal(&n.to_string()),
            Value::String(s) => parse_decimal(s),
            _ => None,
        }
    }

    /// serde: write kopecks as rubles.
    pub fn serialize<S: Serializer>(kop: &i64, s: S) -> Result<S::Ok, S::Error> {
        match to_rubles(*kop) {
            Some(n) => n.serialize(s),
            None => Err(serde::ser::Error::custom(format!(
                "amount {kop} kopecks is too large to send exactly"
            ))),
        }
    }

    /// serde: read rubles (number or string, 0–2 decimals) as kopecks.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let v = Value::deserialize(d)?;
        from_value(&v).ok_or_else(|| de::Error::custom(format!("expected an amount, got {v}")))
    }
}

/// serde: a partner id is sent as a JSON integer when it is one (the doc types
/// goods ids in orders as Int), else as a string.
fn ser_id_int_if_numeric<S: Serializer>(id: &str, s: S) -> Result<S::Ok, S::Error> {
    let numeric = !id.is_empty()
        && id.len() <= 18
        && id.bytes().all(|b| b.is_ascii_digit())
        && !(id.len() > 1 && id.starts_with('0'));
    match id.parse::<i64>() {
        Ok(n) if numeric => s.serialize_i64(n),
        _ => s.serialize_str(id),
    }
}

fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(lenient::value_to_id))
}

fn de_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(lenient::value_to_f64))
}

/// A product (`goods` / `add_good`, `update_good`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Good {
    /// Partner (shop) SKU.
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub description: Option<String>,
    /// Retail price, kopecks (`price`, rubles on the wire).
    #[serde(rename = "price", with = "money")]
    pub price_kop: i64,
    /// Cost, kopecks (`cost`, rubles on the wire).
    #[serde(rename = "cost", with = "money")]
    pub cost_kop: i64,
    /// External picture URL.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub image: Option<String>,
    /// Weight, grams.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub weight: Option<i64>,
    /// Width, mm.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub width: Option<i64>,
    /// Height, mm.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub height: Option<i64>,
    /// Length, mm.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub length: Option<i64>,
    /// Colour id from the doc's colour table.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub color: Option<i64>,
    /// Size (`XL`, `10 см x 20 см`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub size: Option<String>,
}

impl Good {
    /// A product with the required fields only (cost = price).
    pub fn new(id: impl Into<String>, name: impl Into<String>, price_kop: i64) -> Self {
        Good {
            id: id.into(),
            name: name.into(),
            description: None,
            price_kop,
            cost_kop: price_kop,
            image: None,
            weight: None,
            width: None,
            height: None,
            length: None,
            color: None,
            size: None,
        }
    }
}

/// One line of an order, preorder or document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderGood {
    /// Partner SKU (sent as an integer when numeric, as documented).
    #[serde(
        serialize_with = "ser_id_int_if_numeric",
        deserialize_with = "lenient::id"
    )]
    pub id: String,
    /// Quantity (accepted as `4`, `4.0` or `"4"`).
    #[serde(deserialize_with = "lenient::int")]
    pub quantity: i64,
    /// Unit price, kopecks (`price`, rubles on the wire).
    #[serde(rename = "price", with = "money")]
    pub price_kop: i64,
}

impl OrderGood {
    /// A line of `quantity` × `id` at `price_kop` each.
    pub fn new(id: impl Into<String>, quantity: i64, price_kop: i64) -> Self {
        OrderGood {
            id: id.into(),
            quantity,
            price_kop,
        }
    }
}

/// Delivery address in parts (`address_obj`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AddressObj {
    /// City.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub city: Option<String>,
    /// Street.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub street: Option<String>,
    /// House.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub house: Option<String>,
    /// Flat.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub room: Option<String>,
}

/// An order (`order` / `add_order`, `update_order`). `storage_id` is added by
/// the client on `add_order` only, as documented. Deserialising also accepts
/// the callback spelling (`delivery_type_id`, `delivery_courier_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Partner (shop) order id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// Partner order GUID, echoed back by the WMS.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub guid: Option<String>,
    /// Comma-separated tags (`call`, `nosms`, `problem`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub tags: Option<String>,
    /// Customer's full name.
    pub name: String,
    /// Customer e-mail.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub email: Option<String>,
    /// Customer phone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub phone: Option<String>,
    /// Second phone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub phone2: Option<String>,
    /// Post code.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub post_code: Option<String>,
    /// Delivery address.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub address: Option<String>,
    /// Latitude of the address.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_f64"
    )]
    pub address_lat: Option<f64>,
    /// Longitude of the address.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_f64"
    )]
    pub address_lng: Option<f64>,
    /// Customer's comment.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub comment: Option<String>,
    /// Shop's comment.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub owner_comment: Option<String>,
    /// Discount, kopecks (`discount`).
    #[serde(rename = "discount", with = "money")]
    pub discount_kop: i64,
    /// Delivery cost, kopecks (`delivery`).
    #[serde(rename = "delivery", with = "money")]
    pub delivery_kop: i64,
    /// Amount paid by the customer, kopecks (`total_paid`).
    #[serde(rename = "total_paid", with = "money")]
    pub total_paid_kop: i64,
    /// Delivery type id (4 Russian Post, 16 CDEK, 22 Grastin, 62 BoxBerry, 113 Peshkariki).
    #[serde(
        default,
        alias = "delivery_type_id",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub delivery_type: Option<i64>,
    /// Delivery window start (unix).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub delivery_date_from: Option<i64>,
    /// Delivery window end (unix).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub delivery_date_to: Option<i64>,
    /// Shipment date (unix).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub shipment_date: Option<i64>,
    /// Courier id.
    #[serde(
        default,
        alias = "delivery_courier_id",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub courier: Option<i64>,
    /// 1 when cancelled, 0 otherwise.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub is_canceled: Option<i64>,
    /// Tracking flag (unused by IMSKLAD today).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub tracked: Option<i64>,
    /// Carrier tracking number.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub track: Option<String>,
    /// Tracking status (unused by IMSKLAD today).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub track_status: Option<String>,
    /// Tracking update time (unix, unused by IMSKLAD today).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub track_update: Option<i64>,
    /// Delivery city id.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub city_id: Option<i64>,
    /// Carrier pickup point code.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub pickup_point: Option<String>,
    /// Carrier city code.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub courier_city_code: Option<String>,
    /// Address in parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_obj: Option<AddressObj>,
    /// Lines.
    #[serde(deserialize_with = "lenient::list")]
    pub goods: Vec<OrderGood>,
}

impl Order {
    /// An order with the required fields only: no discount, no delivery
    /// cost, nothing paid, every optional field unset.
    pub fn new(id: impl Into<String>, name: impl Into<String>, goods: Vec<OrderGood>) -> Self {
        Order {
            id: id.into(),
            guid: None,
            tags: None,
            name: name.into(),
            email: None,
            phone: None,
            phone2: None,
            post_code: None,
            address: None,
            address_lat: None,
            address_lng: None,
            comment: None,
            owner_comment: None,
            discount_kop: 0,
            delivery_kop: 0,
            total_paid_kop: 0,
            delivery_type: None,
            delivery_date_from: None,
            delivery_date_to: None,
            shipment_date: None,
            courier: None,
            is_canceled: None,
            tracked: None,
            track: None,
            track_status: None,
            track_update: None,
            city_id: None,
            pickup_point: None,
            courier_city_code: None,
            address_obj: None,
            goods,
        }
    }

    /// True when `is_canceled` is 1.
    pub fn is_cancelled(&self) -> bool {
        self.is_canceled == Some(1)
    }
}

/// A supplier preorder (`preorder` / `add_preorder`, `update_preorder`).
///
/// The document date is sent as `owner_date` by `add_preorder` and as `date`
/// by `update_preorder`, as the doc spells them; both are read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preorder {
    /// Partner document id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// Document code.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub code: Option<String>,
    /// 0 inbound from the supplier, 1 return to the supplier.
    #[serde(rename = "type", deserialize_with = "lenient::int")]
    pub kind: i64,
    /// Document date (unix).
    #[serde(
        default,
        alias = "owner_date",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub date: Option<i64>,
    /// 1 when a courier must collect from the supplier.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub need_pickup: Option<i64>,
    /// Supplier's address.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub pickup_address: Option<String>,
    /// Supplier's contacts.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub pickup_contacts: Option<String>,
    /// Supplier's name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub supplier_name: Option<String>,
    /// Lines.
    #[serde(deserialize_with = "lenient::list")]
    pub goods: Vec<OrderGood>,
}

/// A stock document (`doc` / `add_doc`, `update_doc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    /// Partner document id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// Document code.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub code: Option<String>,
    /// 0 receipt, 1 write-off.
    #[serde(rename = "type", deserialize_with = "lenient::int")]
    pub kind: i64,
    /// Document date (unix).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub date: Option<i64>,
    /// Lines.
    #[serde(deserialize_with = "lenient::list")]
    pub goods: Vec<OrderGood>,
}

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
    fn extend(&mut self, other: StockAnswer) {
        self.rows.extend(other.rows);
        self.unreadable.extend(other.unreadable);
    }
}

/// Billing type "other".
pub const BILLING_KIND_OTHER: i64 = 9;
/// A billing line without `type` whose comment names no documented operation
/// (seed 002's own example has no `type` on any line): it takes part in no
/// tariff or duplicate check and is reported as `untyped_charge`.
pub const BILLING_KIND_UNTYPED: i64 = -1;

/// The operation type a line's comment names, for lines without `type`:
/// the comments seed 002 documents ("Сборка заказа" → 0, "Пополнение баланса"
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

fn comment_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(de_opt_string(d)?.unwrap_or_default())
}

/// A `billing[]` line as sent: `type` may be missing.
#[derive(Deserialize)]
struct RawBillingLine {
    #[serde(deserialize_with = "lenient::int")]
    id: i64,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    order_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    foreign_order_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    doc_request_id: Option<i64>,
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_int")]
    kind: Option<i64>,
    #[serde(deserialize_with = "lenient::int")]
    date: i64,
    #[serde(rename = "amount", with = "money")]
    amount_kop: i64,
    #[serde(default, deserialize_with = "comment_text")]
    comment: String,
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
                tracing::debug!(action, request_id = %rid, attempt, error = %err, "imsklad request failed");
                return Err(err);
            }
            let wait = self.cfg.policy.backoff(attempt);
            tracing::debug!(action, request_id = %rid, attempt, error = %err, wait_ms = wait.as_millis() as u64, "imsklad retry");
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
        let response = self
            .http
            .post(&self.cfg.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Request-Id", rid)
            .body(body)
            .send()
            .await
            .map_err(transport)?;
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
            (p.kind, p.date, p.need_pickup),
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
