//! EGON error type and order references.

use super::*;

/// Everything that can go wrong talking to EGON. No variant carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum EgonError {
    /// The configuration cannot be used.
    #[error("EGON: invalid configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("EGON: cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// `auth_status` 202: the credentials were refused.
    #[error("EGON {method}: unauthorized (auth_status 202) for auth_id {auth_id}")]
    Unauthorized {
        /// The called method.
        method: &'static str,
        /// The `auth_id` used (not secret).
        auth_id: String,
    },
    /// `auth_status` or `resp_code` 301: the request does not match the expected structure.
    #[error("EGON {method}: bad request (301): {message}")]
    BadRequest {
        /// The called method.
        method: &'static str,
        /// EGON's message.
        message: String,
    },
    /// `resp_code` 302: EGON does not know the method.
    #[error("EGON {method}: method not found (302): {message}")]
    MethodNotFound {
        /// The called method.
        method: &'static str,
        /// EGON's message.
        message: String,
    },
    /// `resp_code` 303: the operation is not allowed in the current state.
    #[error("EGON {method}: not allowed (303): {message}")]
    NotAllowed {
        /// The called method.
        method: &'static str,
        /// EGON's message.
        message: String,
    },
    /// `resp_code` 404: the order or card does not exist.
    #[error("EGON {method}: not found (404): {message}")]
    NotFound {
        /// The called method.
        method: &'static str,
        /// EGON's message.
        message: String,
    },
    /// 429 on every attempt.
    #[error("EGON {method}: rate limited (429) after {attempts} attempts")]
    RateLimited {
        /// The called method.
        method: &'static str,
        /// Attempts made.
        attempts: u32,
    },
    /// HTTP 5xx or `resp_code` 500 on every attempt.
    #[error("EGON {method}: server error after {attempts} attempts: {message}")]
    Server {
        /// The called method.
        method: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last error seen.
        message: String,
    },
    /// Network failure or timeout on every attempt.
    #[error("EGON {method}: transport failure after {attempts} attempts")]
    Transport {
        /// The called method.
        method: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP status that is neither success nor retryable.
    #[error("EGON {method}: HTTP {status}: {body}")]
    Http {
        /// The called method.
        method: &'static str,
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// A request could not be encoded as JSON.
    #[error("EGON {method}: cannot encode the request")]
    Encode {
        /// The called method.
        method: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// The answer could not be decoded (on every attempt).
    #[error("EGON {method}: cannot decode the answer: {detail} (body: {body})")]
    Decode {
        /// The called method.
        method: &'static str,
        /// What failed.
        detail: String,
        /// Start of the body.
        body: String,
    },
    /// A documented but unexpected code for this method.
    #[error("EGON {method}: unexpected code {code}: {message}")]
    Unexpected {
        /// The called method.
        method: &'static str,
        /// `auth_status` or `resp_code`.
        code: i64,
        /// EGON's message.
        message: String,
    },
}

impl EgonError {
    /// True for errors a later run may fix by itself (rate limit, server, network).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EgonError::RateLimited { .. }
                | EgonError::Server { .. }
                | EgonError::Transport { .. }
                | EgonError::Decode { .. }
        )
    }
}

/// How an order is looked up: by EGON's id or by the shop's original id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRef {
    /// `order_id`, EGON's number.
    EgonId(i64),
    /// `original_order_id`, the shop's order number.
    Original(String),
}

impl OrderRef {
    /// The `req_data` fields selecting this order.
    pub(super) fn to_req_data(&self) -> Map<String, Value> {
        let mut m = Map::new();
        match self {
            OrderRef::EgonId(id) => m.insert("order_id".into(), json!(id)),
            OrderRef::Original(id) => m.insert("original_order_id".into(), json!(id)),
        };
        m
    }
}

impl std::fmt::Display for OrderRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderRef::EgonId(id) => write!(f, "order_id {id}"),
            OrderRef::Original(id) => write!(f, "original_order_id {id}"),
        }
    }
}
