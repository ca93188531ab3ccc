//! RetailCRM error kinds and the client error type.

use super::*;

/// What kind of refusal an API error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// 403: wrong or missing API key, or the key lacks access.
    Forbidden,
    /// 404: the entity (order, module) or the method does not exist.
    NotFound,
    /// 400 `Parameter 'x' is missing`.
    MissingParameter,
    /// 400: other validation errors.
    Validation,
    /// 405: wrong HTTP method.
    MethodNotAllowed,
    /// 460: a batch was only partly applied.
    PartialFailure,
    /// Any other refusal (including `success:false` with a 2xx status).
    Other,
}

impl ApiErrorKind {
    /// Classifies a refusal by its status and message.
    pub fn classify(status: u16, message: &str) -> Self {
        match status {
            403 => ApiErrorKind::Forbidden,
            404 => ApiErrorKind::NotFound,
            405 => ApiErrorKind::MethodNotAllowed,
            460 => ApiErrorKind::PartialFailure,
            400 if message.starts_with("Parameter '") && message.ends_with("is missing") => {
                ApiErrorKind::MissingParameter
            }
            400 => ApiErrorKind::Validation,
            _ => ApiErrorKind::Other,
        }
    }
}

impl fmt::Display for ApiErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiErrorKind::Forbidden => "wrong API key or access denied",
            ApiErrorKind::NotFound => "not found",
            ApiErrorKind::MissingParameter => "missing parameter",
            ApiErrorKind::Validation => "invalid parameters",
            ApiErrorKind::MethodNotAllowed => "method not allowed",
            ApiErrorKind::PartialFailure => "partly applied",
            ApiErrorKind::Other => "refused",
        })
    }
}

/// One entry of an error answer's `errors` (a map `{field: message}` or a list of messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field the message is about, when the server sent a map.
    pub field: Option<String>,
    /// The message.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

pub(super) fn join_errors(errors: &[FieldError]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!(" [{}]", parts.join("; "))
}

/// Everything that can go wrong talking to RetailCRM. No variant carries the API key.
#[derive(Debug, thiserror::Error)]
pub enum RetailCrmError {
    /// The configuration cannot work (bad URL, empty key, client construction failed).
    #[error("RetailCRM configuration: {0}")]
    Config(String),
    /// The request did not complete (connect error, timeout, reset).
    #[error("RetailCRM {endpoint}: request failed{}", if *.timeout { " (timeout)" } else { "" })]
    Transport {
        /// API path, e.g. `/store/inventories`.
        endpoint: String,
        /// True when the policy's timeout ran out.
        timeout: bool,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// 429 or 503: the account's rate limit was hit.
    #[error("RetailCRM {endpoint}: rate limited (HTTP {status})")]
    RateLimited {
        /// API path.
        endpoint: String,
        /// 429 or 503.
        status: u16,
    },
    /// Another 5xx answer.
    #[error("RetailCRM {endpoint}: server error HTTP {status}: {snippet}")]
    Server {
        /// API path.
        endpoint: String,
        /// The status.
        status: u16,
        /// Start of the body.
        snippet: String,
    },
    /// An HTML page instead of JSON: the account does not exist or the URL is not the API.
    #[error("RetailCRM {endpoint}: HTTP {status} answered an HTML page: the account does not exist or the URL is not a RetailCRM API ({snippet})")]
    NotApi {
        /// API path.
        endpoint: String,
        /// The status.
        status: u16,
        /// Start of the page.
        snippet: String,
    },
    /// A body that is neither JSON nor HTML (typically cut off in transit).
    #[error("RetailCRM {endpoint}: HTTP {status}: unreadable answer: {snippet}")]
    Malformed {
        /// API path.
        endpoint: String,
        /// The status.
        status: u16,
        /// Start of the body.
        snippet: String,
    },
    /// `{"success": false, "errorMsg": …, "errors": …}`.
    #[error("RetailCRM {endpoint}: HTTP {status} {kind}: {message}{}", join_errors(.errors))]
    Api {
        /// API path.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// Classification of the refusal.
        kind: ApiErrorKind,
        /// `errorMsg`.
        message: String,
        /// `errors`, as a map or a list.
        errors: Vec<FieldError>,
    },
    /// A JSON answer whose shape does not match the documented one.
    #[error("RetailCRM {endpoint}: unexpected answer shape: {detail}")]
    Schema {
        /// API path.
        endpoint: String,
        /// What did not fit.
        detail: String,
    },
    /// More offers than one upload may carry.
    #[error("RetailCRM: {count} offers in one upload, at most {MAX_OFFERS_PER_UPLOAD} allowed")]
    TooManyOffers {
        /// Offers given.
        count: usize,
    },
}

impl RetailCrmError {
    /// True for failures worth another attempt: rate limits, 5xx, transport errors, cut-off bodies.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RetailCrmError::Transport { .. }
                | RetailCrmError::RateLimited { .. }
                | RetailCrmError::Server { .. }
                | RetailCrmError::Malformed { .. }
        )
    }

    /// The API refusal kind, when this is an [`RetailCrmError::Api`] error.
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        match self {
            RetailCrmError::Api { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}
