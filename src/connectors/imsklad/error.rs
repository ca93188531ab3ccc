//! IMSKLAD error type, retry limits and the idempotency rules of actions.

/// The callbacks asking the shop to export orders to a carrier.
pub const CARRIER_EXPORT_ACTIONS: [&str; 3] =
    ["send_to_cdek", "send_to_boxberry", "send_act_to_boxberry"];

/// How many times an undecodable (e.g. truncated) answer is retried.
pub const MAX_DECODE_RETRIES: u32 = 2;

/// The warning text IMSKLAD answers when `update_order` could not change the
/// goods of an order that is already being assembled.
pub use crate::vendor_docs::imsklad::WARNING_GOODS_NOT_SAVED;

/// Errors of the IMSKLAD client; each carries the action it happened in.
#[derive(Debug, thiserror::Error)]
pub enum ImskladError {
    /// The configuration cannot be used (empty URL, zero batch size …).
    #[error("IMSKLAD configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("IMSKLAD HTTP client")]
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
    #[error("IMSKLAD {action}: request failed{}", if *.timeout { " (timeout)" } else { "" })]
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
