//! EGON client API documentation: the response codes, the order statuses,
//! the date-time format and the rate limit.

/// EGON's documented limit: requests per minute per `auth_id`.
pub const DEFAULT_RATE_PER_MIN: usize = 180;

/// The `Y-m-d H:i:s` format EGON uses for date-times.
pub const DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The numeric codes of the EGON client API.
pub mod codes {
    /// `auth_status`: credentials accepted.
    pub const AUTH_ACCEPTED: i64 = 201;
    /// `auth_status`: credentials refused.
    pub const AUTH_UNAUTHORIZED: i64 = 202;
    /// `auth_status` / `resp_code`: the request does not match the structure.
    pub const BAD_REQUEST: i64 = 301;
    /// `resp_code`: OK.
    pub const OK: i64 = 200;
    /// `resp_code`: unknown `req_method`.
    pub const METHOD_NOT_FOUND: i64 = 302;
    /// `resp_code`: the operation is not allowed (e.g. cancelling a shipped order).
    pub const NOT_ALLOWED: i64 = 303;
    /// `resp_code`: entry created.
    pub const CREATED: i64 = 401;
    /// `resp_code`: entry updated.
    pub const UPDATED: i64 = 402;
    /// `resp_code`: content found and returned.
    pub const FOUND: i64 = 403;
    /// `resp_code`: content not found.
    pub const NOT_FOUND: i64 = 404;
    /// `resp_code`: too many requests.
    pub const TOO_MANY_REQUESTS: i64 = 429;
    /// `resp_code`: server error.
    pub const SERVER_ERROR: i64 = 500;

    /// The documented text for a code (`"403: Content Found"` style without the number).
    pub fn text(code: i64) -> &'static str {
        match code {
            OK => "OK",
            AUTH_ACCEPTED => "Auth Accepted",
            AUTH_UNAUTHORIZED => "Unauthorized",
            BAD_REQUEST => "Bad Request",
            METHOD_NOT_FOUND => "Method Not Found",
            NOT_ALLOWED => "Method Not Allowed",
            CREATED => "Entry Created",
            UPDATED => "Entry Updated",
            FOUND => "Content Found",
            NOT_FOUND => "Content Not Found",
            TOO_MANY_REQUESTS => "Too Many Requests",
            SERVER_ERROR => "Error",
            _ => "Unknown",
        }
    }
}

/// The documented order statuses (a selection of EGON's code list).
pub const ORDER_STATUSES: &[(i64, &str)] = &[
    (0, "data received"),
    (1, "awaiting reservation"),
    (2, "waiting for packing"),
    (3, "being finalized"),
    (4, "packed, waiting for dispatch"),
    (5, "shipped"),
    (6, "completed"),
    (7, "ready for pickup"),
    (9, "cancelled"),
    (10, "problem"),
    (13, "delivered, COD on the way"),
    (14, "undelivered"),
    (15, "undelivered and cancelled"),
    (16, "delivered (COD received)"),
    (19, "picked up by customer"),
    (55, "deleted"),
    (56, "cancelled, missing goods"),
];

/// The documented name of a status id.
pub fn status_name(status_id: i64) -> Option<&'static str> {
    ORDER_STATUSES
        .iter()
        .find(|(id, _)| *id == status_id)
        .map(|(_, name)| *name)
}
