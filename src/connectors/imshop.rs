//! IMSHOP marking scans: the shop → IMSHOP asynchronous status update, and the
//! request/answer types of the two hooks IMSHOP calls on the shop (scan
//! registration and scan history).
//!
//! Incoming payloads are read liberally (`userId` and `timestamp` as numbers or
//! strings, the documentation's `sucсess` with a Cyrillic `с`, `{}` for an empty
//! list); outgoing ones use exactly the documented field names.

use crate::connectors::http::{request_id, send_json, snippet, HttpPolicy};
use crate::lenient;
use crate::secret::Secret;
use base64::Engine;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The ASCII group separator (GS, 29) that splits GS1 DataMatrix fields.
pub const GS: char = '\u{1d}';

/// The documentation's misspelt `success` key (Latin `suc`, Cyrillic `с`, Latin `ess`).
pub const SUCCESS_TYPO_KEY: &str = "suc\u{0441}ess";

/// Where and how to push status updates to IMSHOP.
#[derive(Clone)]
pub struct ImshopConfig {
    /// The URL IMSHOP's product manager issued (may embed a token).
    pub update_url: String,
    /// The key IMSHOP issued.
    pub key: Secret,
    /// Send the key as `Authorization: Bearer <key>` (UNVERIFIED where IMSHOP
    /// wants it: `[imshop] push_key`).
    pub key_in_header: bool,
    /// Send the key as a `key` field of the JSON body.
    pub key_in_body: bool,
    /// Timeouts and retry bounds.
    pub policy: HttpPolicy,
}

impl std::fmt::Debug for ImshopConfig {
    /// Without the URL, which may carry a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImshopConfig")
            .field("update_url", &"***")
            .field("key", &self.key)
            .field("key_in_body", &self.key_in_body)
            .finish_non_exhaustive()
    }
}

/// A scan's state (owned by the state database).
pub use crate::db::events::ScanStatus;

/// serde: a unix timestamp as a number, a numeric string or a float.
fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    lenient::value_to_i64(&v)
        .or_else(|| lenient::value_to_f64(&v).map(|f| f.trunc() as i64))
        .ok_or_else(|| de::Error::custom(format!("expected a unix timestamp, got {v}")))
}

/// serde: optional extra form fields; null, `[]` and `{}` are all empty.
fn form_data<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Map<String, Value>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(Value::Array(a)) if a.is_empty() => Ok(None),
        Some(other) => Err(de::Error::custom(format!(
            "expected an object of form fields, got {other}"
        ))),
    }
}

/// The status update the shop pushes to IMSHOP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanUpdate {
    /// Scan id (may equal the code when codes are unique).
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// IMSHOP user id.
    #[serde(rename = "userId", deserialize_with = "lenient::id")]
    pub user_id: String,
    /// Unix timestamp (seconds).
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: i64,
    /// The scanned code as IMSHOP sent it.
    #[serde(deserialize_with = "lenient::id")]
    pub code: String,
    /// New status.
    pub status: ScanStatus,
    /// Text shown in the scan history.
    #[serde(
        rename = "statusMessage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub status_message: Option<String>,
}

/// How IMSHOP took a pushed update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// 204 (or any other 2xx): accepted.
    Accepted,
    /// 400 (malformed) or 404 (unknown scan or user): final, to be reported, not retried.
    Rejected {
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
}

/// Errors of the IMSHOP client. No variant carries the key.
#[derive(Debug, thiserror::Error)]
pub enum ImshopError {
    /// The configuration cannot be used.
    #[error("IMSHOP: invalid configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("IMSHOP: cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The update could not be encoded as JSON.
    #[error("IMSHOP: cannot encode the update")]
    Encode(#[source] serde_json::Error),
    /// 401/403: the key or the URL is wrong; stop pushing and alert.
    #[error("IMSHOP: authorization refused (HTTP {status}); check the key and URL with IMSHOP")]
    Auth {
        /// 401 or 403.
        status: u16,
    },
    /// 5xx or network failures on every attempt.
    #[error("IMSHOP: unavailable after {attempts} attempts: {last}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

/// The client that pushes scan status updates to IMSHOP.
#[derive(Debug, Clone)]
pub struct ImshopClient {
    cfg: ImshopConfig,
    http: reqwest::Client,
}

/// What one attempt ended with.
enum Attempt {
    Done(PushOutcome),
    Retry(String),
}

impl ImshopClient {
    /// Builds the client; fails on an empty URL or key.
    pub fn new(cfg: ImshopConfig) -> Result<Self, ImshopError> {
        if cfg.update_url.trim().is_empty() {
            return Err(ImshopError::Config("update_url is empty".into()));
        }
        if cfg.key.is_empty() {
            return Err(ImshopError::Config("key is empty".into()));
        }
        let http = cfg.policy.client().map_err(ImshopError::Client)?;
        Ok(ImshopClient { cfg, http })
    }

    /// The JSON body of an update (plus `key` when configured).
    pub fn body(&self, u: &ScanUpdate) -> Result<Value, ImshopError> {
        let mut v = serde_json::to_value(u).map_err(ImshopError::Encode)?;
        if let (true, Value::Object(m)) = (self.cfg.key_in_body, &mut v) {
            m.insert("key".into(), Value::String(self.cfg.key.expose().into()));
        }
        Ok(v)
    }

    /// Pushes one update. 204 → [`PushOutcome::Accepted`]; 400/404 →
    /// [`PushOutcome::Rejected`]; 401/403 → [`ImshopError::Auth`]; 5xx, 408,
    /// 429 and network failures are retried with backoff, then
    /// [`ImshopError::Unavailable`].
    pub async fn push_status(&self, u: &ScanUpdate) -> Result<PushOutcome, ImshopError> {
        let body = self.body(u)?.to_string();
        let max = self.cfg.policy.max_attempts.max(1);
        let rid = request_id();
        let mut attempt = 1;
        loop {
            tracing::debug!(target: "sverka::imshop", rid, scan = %u.id, attempt, "push status");
            match self.attempt(body.clone()).await? {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::Retry(last) if attempt >= max => {
                    return Err(ImshopError::Unavailable {
                        attempts: attempt,
                        last,
                    })
                }
                Attempt::Retry(last) => {
                    let wait = self.cfg.policy.backoff(attempt);
                    tracing::warn!(target: "sverka::imshop", rid, attempt, error = %last, ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, body: String) -> Result<Attempt, ImshopError> {
        let mut request = self.http.post(&self.cfg.update_url);
        if self.cfg.key_in_header {
            request = request.bearer_auth(self.cfg.key.expose());
        }
        let sent = send_json(request, body).await;
        let resp = match sent {
            Ok(r) => r,
            // Without the URL: it may embed a token.
            Err(e) => return Ok(Attempt::Retry(e.without_url().to_string())),
        };
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok(match status {
            200..=299 => Attempt::Done(PushOutcome::Accepted),
            401 | 403 => return Err(ImshopError::Auth { status }),
            408 | 429 | 500..=599 => Attempt::Retry(format!("HTTP {status}: {}", snippet(&text))),
            _ => Attempt::Done(PushOutcome::Rejected {
                status,
                body: snippet(&text),
            }),
        })
    }
}

// ---------------------------------------------------------------------------
// Hooks IMSHOP calls on the shop
// ---------------------------------------------------------------------------

/// IMSHOP → shop: a scan to register.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// The code: text, or base64 for binary data (see [`decode_barcode`]).
    #[serde(deserialize_with = "lenient::id")]
    pub barcode: String,
    /// IMSHOP user id (number or string on input).
    #[serde(rename = "userId", deserialize_with = "lenient::id")]
    pub user_id: String,
    /// Unix timestamp of the scan (number or string on input).
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: i64,
    /// Extra form fields, if the shop asked for any.
    #[serde(
        default,
        deserialize_with = "form_data",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<Map<String, Value>>,
}

/// Shop → IMSHOP: the answer to a scan registration (HTTP 200).
///
/// Reads the documentation's `sucсess` (Cyrillic `с`) as `success`; always writes the Latin key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanAnswer {
    /// Whether the code was validated.
    #[serde(alias = "suc\u{0441}ess", deserialize_with = "lenient::boolean")]
    pub success: bool,
    /// Scan id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// Scan status.
    pub status: ScanStatus,
    /// Pop-up title.
    #[serde(
        rename = "alertTitle",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub alert_title: Option<String>,
    /// Pop-up text.
    #[serde(
        rename = "alertMessage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub alert_message: Option<String>,
    /// Text shown in the history next to the scan.
    #[serde(
        rename = "statusMessage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub status_message: Option<String>,
}

/// IMSHOP → shop: the scan history of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRequest {
    /// IMSHOP user id (number or string on input).
    #[serde(rename = "userId", deserialize_with = "lenient::id")]
    pub user_id: String,
}

/// One scan in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanRecord {
    /// Scan id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// Unix timestamp.
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: i64,
    /// The code.
    #[serde(deserialize_with = "lenient::id")]
    pub code: String,
    /// Status.
    pub status: ScanStatus,
    /// Text shown next to the scan.
    #[serde(
        rename = "statusMessage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub status_message: Option<String>,
}

/// Shop → IMSHOP: the user's full scan history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryAnswer {
    /// All scans of the user.
    #[serde(default, deserialize_with = "lenient::list")]
    pub scans: Vec<ScanRecord>,
}

/// Why a history answer could not be read.
#[derive(Debug, thiserror::Error)]
#[error("IMSHOP history answer: {0}")]
pub struct HistoryParseError(String);

impl HistoryAnswer {
    /// Parses a history answer, also the documentation's brace-less form
    /// (`"scans": [ "id": …, "code": … ]`, one scan without its `{}`).
    pub fn parse_lenient(text: &str) -> Result<HistoryAnswer, HistoryParseError> {
        match lenient::from_str::<HistoryAnswer>(text) {
            Ok(a) => Ok(a),
            Err(first) => {
                let repaired = wrap_braceless_scans(text)
                    .ok_or_else(|| HistoryParseError(first.to_string()))?;
                lenient::from_str(&repaired).map_err(|e| HistoryParseError(e.to_string()))
            }
        }
    }
}

/// Wraps the members of a brace-less `scans` array into one object: `[ "k": v ]` → `[{ "k": v }]`.
fn wrap_braceless_scans(text: &str) -> Option<String> {
    let key = text.find("\"scans\"")?;
    let open = key + text[key..].find('[')?;
    let first = text[open + 1..].trim_start();
    if !first.starts_with('"') {
        return None;
    }
    let close = matching_bracket(text, open)?;
    Some(format!(
        "{}[{{{}}}]{}",
        &text[..open],
        &text[open + 1..close],
        &text[close + 1..]
    ))
}

/// The index of the `]` closing the `[` at `open`, skipping strings.
fn matching_bracket(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, ch) in text.char_indices().skip_while(|(i, _)| *i < open) {
        if in_string {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => in_string = true,
            '[' | '{' => depth += 1,
            ']' | '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (ch == ']').then_some(i);
                }
            }
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Barcodes
// ---------------------------------------------------------------------------

/// Decodes a `barcode` field into the code's bytes.
///
/// IMSHOP sends text as is and binary data as base64. A value is taken as
/// base64 only when it could not be a text code: it must use the base64
/// alphabet only, not be all digits (EAN/UPC and other numeric codes), be a
/// whole number of 4-character groups (padding included) and decode cleanly.
/// Anything else — including GS1 DataMatrix text with its ASCII 29 group
/// separators — is returned as its UTF-8 bytes.
pub fn decode_barcode(barcode: &str) -> Vec<u8> {
    looks_like_base64(barcode)
        .then(|| {
            base64::engine::general_purpose::STANDARD
                .decode(barcode)
                .ok()
        })
        .flatten()
        .unwrap_or_else(|| barcode.as_bytes().to_vec())
}

/// The code as text: [`decode_barcode`] then UTF-8 (invalid bytes replaced).
/// GS separators are kept.
pub fn barcode_text(barcode: &str) -> String {
    String::from_utf8_lossy(&decode_barcode(barcode)).into_owned()
}

/// Encodes code bytes the way IMSHOP sends binary data (standard base64, padded).
pub fn encode_barcode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn looks_like_base64(s: &str) -> bool {
    !s.is_empty()
        && s.len() % 4 == 0
        && !s.bytes().all(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_uses_the_documented_field_names() {
        let u = ScanUpdate {
            id: "2cff9e9e".into(),
            user_id: "79991234567".into(),
            timestamp: 1_662_660_581,
            code: "YXNk".into(),
            status: ScanStatus::Approved,
            status_message: Some("ok".into()),
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            json!({"id": "2cff9e9e", "userId": "79991234567", "timestamp": 1662660581,
                "code": "YXNk", "status": "approved", "statusMessage": "ok"})
        );
        let bare = ScanUpdate {
            status_message: None,
            ..u
        };
        assert!(serde_json::to_value(&bare)
            .unwrap()
            .get("statusMessage")
            .is_none());
    }

    #[test]
    fn the_key_goes_in_the_body_only_when_configured() {
        let cfg = |key_in_body| ImshopConfig {
            update_url: "http://x".into(),
            key: Secret::new("k-s3cr3t"),
            key_in_header: true,
            key_in_body,
            policy: HttpPolicy::default(),
        };
        let u = ScanUpdate {
            id: "1".into(),
            user_id: "2".into(),
            timestamp: 3,
            code: "4".into(),
            status: ScanStatus::Denied,
            status_message: None,
        };
        let plain = ImshopClient::new(cfg(false)).unwrap();
        assert!(plain.body(&u).unwrap().get("key").is_none());
        let with_key = ImshopClient::new(cfg(true)).unwrap();
        assert_eq!(with_key.body(&u).unwrap()["key"], "k-s3cr3t");
        assert!(!format!("{with_key:?}").contains("s3cr3t"));
    }

    #[test]
    fn empty_key_or_url_is_refused() {
        let cfg = ImshopConfig {
            update_url: "http://x".into(),
            key: Secret::default(),
            key_in_header: true,
            key_in_body: false,
            policy: HttpPolicy::default(),
        };
        assert!(matches!(
            ImshopClient::new(cfg.clone()),
            Err(ImshopError::Config(_))
        ));
        let cfg = ImshopConfig {
            update_url: String::new(),
            key: Secret::new("k"),
            ..cfg
        };
        assert!(matches!(
            ImshopClient::new(cfg),
            Err(ImshopError::Config(_))
        ));
    }

    #[test]
    fn scan_requests_are_lenient() {
        let r: ScanRequest =
            serde_json::from_value(json!({"barcode": "abc", "userId": 79991234567u64,
                "timestamp": "1662660581", "data": []}))
            .unwrap();
        assert_eq!(r.user_id, "79991234567");
        assert_eq!(r.timestamp, 1_662_660_581);
        assert!(r.data.is_none());
        let r: ScanRequest = serde_json::from_value(
            json!({"barcode": "abc", "userId": "u", "timestamp": 1.5e9, "data": {"f": "v"}}),
        )
        .unwrap();
        assert_eq!(r.timestamp, 1_500_000_000);
        assert_eq!(r.data.unwrap()["f"], "v");
        let status: ScanStatus = serde_json::from_value(json!(" Approved ")).unwrap();
        assert_eq!(status, ScanStatus::Approved);
        assert!(serde_json::from_value::<ScanStatus>(json!("ok")).is_err());
    }

    #[test]
    fn answers_read_the_typo_and_write_latin() {
        let typo = format!(r#"{{"{SUCCESS_TYPO_KEY}": false, "id": 5, "status": "denied"}}"#);
        let a: ScanAnswer = serde_json::from_str(&typo).unwrap();
        assert!(!a.success);
        assert_eq!(a.id, "5");
        let out = serde_json::to_string(&a).unwrap();
        assert!(out.contains("\"success\":false"));
        assert!(!out.contains('\u{0441}'));
        let latin: ScanAnswer =
            serde_json::from_str(r#"{"success": 1, "id": "x", "status": "approved"}"#).unwrap();
        assert!(latin.success);
    }

    #[test]
    fn history_reads_braceless_and_empty_forms() {
        let braceless =
            r#"{"scans": [ "id": "a", "code": "c", "timestamp": 1, "status": "approved" ]}"#;
        let h = HistoryAnswer::parse_lenient(braceless).unwrap();
        assert_eq!(h.scans[0].id, "a");
        let empty = HistoryAnswer::parse_lenient(r#"{"scans": {}}"#).unwrap();
        assert!(empty.scans.is_empty());
        let normal = HistoryAnswer::parse_lenient(
            r#"{"scans": [{"id": 1, "code": "c", "timestamp": "2", "status": "denied"},]}"#,
        )
        .unwrap();
        assert_eq!(normal.scans[0].timestamp, 2);
        assert!(HistoryAnswer::parse_lenient("{\"scans\": [").is_err());
        assert!(HistoryAnswer::parse_lenient("nonsense").is_err());
    }

    #[test]
    fn barcodes_decode_base64_and_keep_text() {
        assert_eq!(
            barcode_text("YXNkYXNkIGpha2RzIGxha2RzYWE="),
            "asdasd jakds lakdsaa"
        );
        // Numeric codes stay text even though they use the base64 alphabet.
        assert_eq!(decode_barcode("4607004650076"), b"4607004650076");
        assert_eq!(decode_barcode("0104607004650076"), b"0104607004650076");
        let gs1 = format!("0104607004650076215'Xk6d{GS}93dGVz");
        assert_eq!(decode_barcode(&gs1), gs1.as_bytes());
        let binary = [0u8, 0x1d, 0xff, 0x10, 0x1d, 0x41];
        assert_eq!(decode_barcode(&encode_barcode(&binary)), binary);
        assert_eq!(decode_barcode(""), b"");
    }
}
