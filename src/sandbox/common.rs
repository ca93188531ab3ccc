//! What every sandbox server shares: a request log, latency and fault
//! injection as an axum middleware, a rate-window counter for the vendors'
//! limits, and the ephemeral local address servers bind to.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Bodies larger than this are refused by the sandbox servers (413).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// What a scripted fault does to the request it hits.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer this HTTP status with a short plain-text body.
    Status(u16),
    /// Hold the request for `Faults::timeout_delay`, then answer 504.
    Timeout,
    /// Run the handler, then send only the first half of its body.
    Truncate,
}

/// A fault aimed at specific requests: the ones whose path (and query) contains
/// `path_contains`, after `skip` of them went through, `times` times.
#[derive(Debug, Clone)]
pub struct ScriptedFault {
    /// Substring of `path?query` (or of the body) that selects the requests.
    pub path_contains: String,
    /// Matching requests let through before the fault starts.
    pub skip: usize,
    /// How many matching requests the fault hits (then it is spent).
    pub times: usize,
    /// What happens to them.
    pub kind: FaultKind,
}

/// The realism knobs of one sandbox server.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Added to every request before the handler runs.
    pub latency: Duration,
    /// Share of requests answered 500 (0.0–1.0).
    pub error_rate: f64,
    /// Share of requests held for `timeout_delay` and answered 504.
    pub timeout_rate: f64,
    /// Share of answers cut in half.
    pub truncate_rate: f64,
    /// How long a "timeout" holds the request.
    pub timeout_delay: Duration,
    /// Targeted faults, checked before the random ones.
    pub scripted: Vec<ScriptedFault>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: Duration::ZERO,
            error_rate: 0.0,
            timeout_rate: 0.0,
            truncate_rate: 0.0,
            timeout_delay: Duration::from_secs(60),
            scripted: Vec::new(),
        }
    }
}

/// One request as the sandbox received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Which server (`imsklad`, `retailcrm`, `egon`, `imshop`).
    pub vendor: &'static str,
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string (may be empty).
    pub query: String,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// `Authorization` and `X-API-KEY` headers are recorded so tests can check them.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Bytes,
    /// Wall-clock time of arrival.
    pub at: SystemTime,
    /// Monotonic arrival, for rate checks.
    pub instant: Instant,
    /// Status the sandbox answered.
    pub status: u16,
    /// Set when an injected fault answered instead of the handler.
    pub fault: Option<String>,
}

impl RecordedRequest {
    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Decodes an `application/x-www-form-urlencoded` body into pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).unwrap_or_default()
    }

    /// One form field of the body, if present.
    pub fn form_field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Handle to a sandbox server's knobs and request log; cheap to clone.
#[derive(Clone)]
pub struct SandboxControl {
    vendor: &'static str,
    faults: Arc<Mutex<Faults>>,
    hits: Arc<Mutex<Vec<usize>>>,
    log: Arc<Mutex<Vec<RecordedRequest>>>,
    rng: Arc<Mutex<StdRng>>,
    arrived: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for SandboxControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxControl")
            .field("vendor", &self.vendor)
            .finish()
    }
}

impl SandboxControl {
    /// A control for `vendor` with no faults; `seed` drives the random faults.
    pub fn new(vendor: &'static str, seed: u64) -> Self {
        SandboxControl {
            vendor,
            faults: Arc::new(Mutex::new(Faults::default())),
            hits: Arc::new(Mutex::new(Vec::new())),
            log: Arc::new(Mutex::new(Vec::new())),
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
            arrived: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// Requests that have arrived so far, counted on arrival (before the
    /// latency and before the answer; [`SandboxControl::requests`] records
    /// them once answered). Lets a test act while a client waits.
    pub fn arrived(&self) -> usize {
        self.arrived.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The vendor name.
    pub fn vendor(&self) -> &'static str {
        self.vendor
    }

    /// Replaces the fault configuration (takes effect on the next request).
    pub fn set_faults(&self, faults: Faults) {
        let n = faults.scripted.len();
        *lock(&self.faults) = faults;
        *lock(&self.hits) = vec![0; n];
    }

    /// Current fault configuration.
    pub fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// Sets only the latency.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.faults).latency = latency;
    }

    /// Adds one scripted fault.
    pub fn push_fault(&self, fault: ScriptedFault) {
        lock(&self.faults).scripted.push(fault);
        lock(&self.hits).push(0);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).clone()
    }

    /// Requests whose path contains `needle`.
    pub fn requests_to(&self, needle: &str) -> Vec<RecordedRequest> {
        lock(&self.log)
            .iter()
            .filter(|r| r.path.contains(needle))
            .cloned()
            .collect()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    /// The largest number of requests that arrived within any window of `per`.
    pub fn max_requests_per(&self, per: Duration) -> usize {
        let log = lock(&self.log);
        let stamps: Vec<Instant> = log.iter().map(|r| r.instant).collect();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..stamps.len() {
            while stamps[hi].duration_since(stamps[lo]) >= per {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    fn pick_fault(&self, target: &str, body: &[u8]) -> Option<FaultKind> {
        let faults = lock(&self.faults);
        let mut hits = lock(&self.hits);
        let body_text = String::from_utf8_lossy(body);
        for (i, f) in faults.scripted.iter().enumerate() {
            if target.contains(&f.path_contains) || body_text.contains(&f.path_contains) {
                let seen = hits.get(i).copied().unwrap_or(0);
                if let Some(h) = hits.get_mut(i) {
                    *h += 1;
                }
                if seen >= f.skip && seen < f.skip + f.times {
                    return Some(f.kind.clone());
                }
            }
        }
        let mut rng = lock(&self.rng);
        let roll: f64 = rng.random();
        if roll < faults.error_rate {
            return Some(FaultKind::Status(500));
        }
        if roll < faults.error_rate + faults.timeout_rate {
            return Some(FaultKind::Timeout);
        }
        if roll < faults.error_rate + faults.timeout_rate + faults.truncate_rate {
            return Some(FaultKind::Truncate);
        }
        None
    }

    fn record(&self, r: RecordedRequest) {
        lock(&self.log).push(r);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Wraps a vendor router with recording, latency and fault injection.
pub fn instrument(router: Router, control: SandboxControl) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        control,
        fault_middleware,
    ))
}

async fn fault_middleware(State(ctl): State<SandboxControl>, req: Request, next: Next) -> Response {
    let instant = Instant::now();
    let at = SystemTime::now();
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
    };
    let mut record = RecordedRequest::of(&ctl, &parts, &bytes, at, instant);
    let target = if record.query.is_empty() {
        record.path.clone()
    } else {
        format!("{}?{}", record.path, record.query)
    };
    let (latency, timeout_delay) = {
        let f = lock(&ctl.faults);
        (f.latency, f.timeout_delay)
    };
    let fault = ctl.pick_fault(&target, &bytes);
    ctl.arrived
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            record.fault = Some(format!("status {code}"));
            (status, format!("sandbox: injected {code}")).into_response()
        }
        Some(FaultKind::Timeout) => {
            record.fault = Some("timeout".into());
            tokio::time::sleep(timeout_delay).await;
            (StatusCode::GATEWAY_TIMEOUT, "sandbox: injected timeout").into_response()
        }
        Some(FaultKind::Truncate) => {
            record.fault = Some("truncate".into());
            let resp = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            truncated(resp).await
        }
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    };
    record.status = response.status().as_u16();
    ctl.record(record);
    response
}

/// The answer with its body cut in half (and a `Content-Length` to match):
/// a connection that dropped mid-body.
async fn truncated(resp: Response) -> Response {
    let (mut rparts, rbody) = resp.into_parts();
    let full = axum::body::to_bytes(rbody, MAX_BODY)
        .await
        .unwrap_or_default();
    let half = full.slice(..full.len() / 2);
    rparts.headers.insert(
        axum::http::header::CONTENT_LENGTH,
        HeaderValue::from(half.len()),
    );
    Response::from_parts(rparts, Body::from(half))
}

impl RecordedRequest {
    /// The record of a request as it arrived (status and fault still unset);
    /// only the headers tests look at are kept.
    fn of(
        ctl: &SandboxControl,
        parts: &axum::http::request::Parts,
        bytes: &axum::body::Bytes,
        at: SystemTime,
        instant: Instant,
    ) -> Self {
        let headers = parts
            .headers
            .iter()
            .filter(|(k, _)| {
                let k = k.as_str();
                k == "authorization" || k == "x-api-key" || k == "user-agent"
            })
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        RecordedRequest {
            vendor: ctl.vendor,
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            content_type: parts
                .headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            headers,
            body: bytes.clone(),
            at,
            instant,
            status: 0,
            fault: None,
        }
    }
}

/// Counts hits in a sliding window: the sandbox's view of a vendor rate limit.
#[derive(Debug)]
pub struct RateWindow {
    max: usize,
    per: Duration,
    hits: Mutex<VecDeque<Instant>>,
}

impl RateWindow {
    /// `max` hits per `per`; `max == 0` never limits.
    pub fn new(max: usize, per: Duration) -> Self {
        RateWindow {
            max,
            per,
            hits: Mutex::new(VecDeque::new()),
        }
    }

    /// Books a hit; false when the window is already full (the request must be refused).
    pub fn try_hit(&self) -> bool {
        if self.max == 0 {
            return true;
        }
        let now = Instant::now();
        let mut hits = lock(&self.hits);
        while let Some(&front) = hits.front() {
            if now.duration_since(front) >= self.per {
                hits.pop_front();
            } else {
                break;
            }
        }
        if hits.len() >= self.max {
            return false;
        }
        hits.push_back(now);
        true
    }
}

/// `127.0.0.1:0`
pub fn any_local_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
