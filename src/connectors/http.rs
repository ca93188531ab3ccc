//! The HTTP policy every connector shares: one `reqwest` client with timeouts
//! and a `User-Agent`, a client-side rate limiter, and bounded retries with
//! exponential backoff.
//!
//! Vendor modules decide *what* is retryable (IMSKLAD code 1, RetailCRM 503,
//! EGON 429 …); this module decides *how* to wait.

use std::time::Duration;

/// The `User-Agent` every connector sends.
pub const USER_AGENT: &str = concat!("sverka/", env!("CARGO_PKG_VERSION"));

/// Sends `body` as JSON (`Content-Type: application/json`) with `request`,
/// a POST the caller has built (URL, authentication, extra headers).
pub async fn send_json(
    request: reqwest::RequestBuilder,
    body: impl Into<reqwest::Body>,
) -> reqwest::Result<reqwest::Response> {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
}

/// Timeouts and retry bounds for one outside system.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Attempts in total, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles on each further one.
    pub base_backoff: Duration,
    /// Upper bound of one backoff delay.
    pub max_backoff: Duration,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_attempts: 4,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl HttpPolicy {
    /// The delay before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// Builds the `reqwest` client for this policy (rustls, `User-Agent`,
    /// timeouts). It follows **no redirects**: a redirect would carry the
    /// vendor's key (in `X-API-KEY` or in the body of a 307/308) to wherever
    /// it points, so a 3xx is an answer like any other non-success status.
    pub fn client(&self) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
    }
}

/// The most bytes read of one answer, per kind of endpoint: a server that
/// sends more is answered with [`BodyTooLarge`], never buffered whole.
pub mod body_caps {
    /// Ordinary API answers (a RetailCRM page, an IMSKLAD batch, an EGON order).
    pub const DEFAULT: usize = 32 * 1024 * 1024;
    /// EGON `InventoryDetail` answers the whole catalogue at once: about 400
    /// bytes a card, so 1 GiB holds well over a million cards.
    pub const EGON_INVENTORY: usize = 1024 * 1024 * 1024;
    /// IMSKLAD `get_billing` over a long period.
    pub const IMSKLAD_BILLING: usize = 256 * 1024 * 1024;
}

/// An answer longer than its endpoint's cap.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the answer exceeds {cap} bytes; refusing to read it whole")]
pub struct BodyTooLarge {
    /// The cap, in bytes.
    pub cap: usize,
}

/// Reads a response body, at most `cap` bytes (a `Content-Length` above the
/// cap is refused before reading).
pub async fn read_capped(
    response: reqwest::Response,
    cap: usize,
) -> Result<Result<Vec<u8>, BodyTooLarge>, reqwest::Error> {
    read_capped_counting(response, cap, &crate::progress::Progress::hidden()).await
}

/// [`read_capped`], counting the bytes on `progress` as they arrive (a
/// spinner for one long call such as EGON `InventoryDetail`).
pub async fn read_capped_counting(
    mut response: reqwest::Response,
    cap: usize,
    progress: &crate::progress::Progress,
) -> Result<Result<Vec<u8>, BodyTooLarge>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Ok(Err(BodyTooLarge { cap }));
    }
    let mut out = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await? {
        if out.len() + chunk.len() > cap {
            return Ok(Err(BodyTooLarge { cap }));
        }
        progress.inc(chunk.len() as u64);
        out.extend_from_slice(&chunk);
    }
    Ok(Ok(out))
}

pub use crate::net::{is_loopback, RateLimiter};

/// A short id for correlating a request with its log lines.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Cuts a response body for an error message (bodies can be HTML pages).
pub fn snippet(body: &str) -> String {
    const MAX: usize = 200;
    let trimmed = body.trim();
    if trimmed.chars().count() <= MAX {
        trimmed.to_string()
    } else {
        let cut: String = trimmed.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = HttpPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..HttpPolicy::default()
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(350));
        assert_eq!(p.backoff(40), Duration::from_millis(350));
    }

    #[test]
    fn snippet_cuts_long_bodies() {
        let long = "x".repeat(500);
        assert_eq!(snippet(&long).chars().count(), 201);
        assert_eq!(snippet("  short "), "short");
    }
}
