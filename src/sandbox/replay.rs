//! Remembering what a sandbox was told, across processes.
//!
//! The sandbox servers live in memory. To let a later `sverka demo --reuse`
//! find the warehouse and the CRM exactly as the previous demo left them, the
//! demo saves every successful `POST` the servers received to a JSON-lines file
//! and the next demo regenerates the same seeded world, then sends those
//! requests again in order. Reads are harmless to repeat; writes land the same.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

use super::common::RecordedRequest;
use super::SandboxSet;

/// One saved request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SavedRequest {
    /// `imsklad`, `retailcrm`, `egon` or `imshop`.
    pub vendor: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// Content type.
    pub content_type: Option<String>,
    /// `Authorization` / `X-API-KEY` headers (sandbox keys only).
    pub headers: Vec<(String, String)>,
    /// Body, base64.
    pub body_b64: String,
}

/// Errors saving or replaying.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// File trouble.
    #[error("replay log {path}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not a saved request.
    #[error("replay log {path} line {line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The sandbox refused a replayed request.
    #[error("replaying {vendor} {path}: {message}")]
    Send {
        /// Vendor.
        vendor: String,
        /// Path.
        path: String,
        /// What happened.
        message: String,
    },
}

fn keep(r: &RecordedRequest) -> bool {
    r.method == "POST" && (200..300).contains(&r.status) && r.fault.is_none()
}

impl From<&RecordedRequest> for SavedRequest {
    fn from(r: &RecordedRequest) -> Self {
        SavedRequest {
            vendor: r.vendor.to_string(),
            path: r.path.clone(),
            query: r.query.clone(),
            content_type: r.content_type.clone(),
            headers: r
                .headers
                .iter()
                .filter(|(k, _)| k != "user-agent")
                .cloned()
                .collect(),
            body_b64: base64::engine::general_purpose::STANDARD.encode(&r.body),
        }
    }
}

/// Appends the successful POSTs every server of `set` received to `path`.
pub fn save(set: &SandboxSet, path: &Path) -> Result<usize, ReplayError> {
    let io = |source| ReplayError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut all: Vec<RecordedRequest> = Vec::new();
    for control in [
        &set.imsklad.control,
        &set.retailcrm.control,
        &set.egon.control,
        &set.imshop.control,
    ] {
        all.extend(control.requests().into_iter().filter(keep));
    }
    all.sort_by_key(|r| r.instant);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    for r in &all {
        let line = serde_json::to_string(&SavedRequest::from(r)).map_err(|e| io(e.into()))?;
        writeln!(file, "{line}").map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    Ok(all.len())
}

/// Reads a replay log (a missing file is an empty log).
pub fn load(path: &Path) -> Result<Vec<SavedRequest>, ReplayError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let file = std::fs::File::open(path).map_err(|source| ReplayError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| ReplayError::Io {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| ReplayError::Parse {
            path: path.display().to_string(),
            line: i + 1,
            message: e.to_string(),
        })?);
    }
    Ok(out)
}

/// Sends saved requests to the matching servers of `set`, in order.
/// Rate limits are lifted while replaying and the request logs cleared after.
pub async fn replay(set: &SandboxSet, saved: &[SavedRequest]) -> Result<(), ReplayError> {
    if saved.is_empty() {
        return Ok(());
    }
    let client = reqwest::Client::new();
    set.retailcrm.lock().set_rate_limit(0);
    set.egon
        .lock()
        .set_rate_limit(0, std::time::Duration::from_secs(60));
    let result = async {
        for s in saved {
            let base = match s.vendor.as_str() {
                "imsklad" => set.urls.imsklad.trim_end_matches('/').to_string(),
                "retailcrm" => set.urls.retailcrm.trim_end_matches('/').to_string(),
                "egon" => base_of(&set.urls.egon),
                "imshop" => base_of(&set.urls.imshop),
                other => {
                    return Err(ReplayError::Send {
                        vendor: other.into(),
                        path: s.path.clone(),
                        message: "unknown vendor".into(),
                    })
                }
            };
            let mut url = format!("{base}{}", s.path);
            if !s.query.is_empty() {
                url.push('?');
                url.push_str(&s.query);
            }
            let body = base64::engine::general_purpose::STANDARD
                .decode(&s.body_b64)
                .map_err(|e| ReplayError::Send {
                    vendor: s.vendor.clone(),
                    path: s.path.clone(),
                    message: e.to_string(),
                })?;
            let mut req = client.post(&url).body(body);
            if let Some(ct) = &s.content_type {
                req = req.header(reqwest::header::CONTENT_TYPE, ct);
            }
            for (k, v) in &s.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let status = req.send().await.map_err(|e| ReplayError::Send {
                vendor: s.vendor.clone(),
                path: s.path.clone(),
                message: e.to_string(),
            })?;
            if !status.status().is_success() {
                return Err(ReplayError::Send {
                    vendor: s.vendor.clone(),
                    path: s.path.clone(),
                    message: format!("HTTP {}", status.status()),
                });
            }
        }
        Ok(())
    }
    .await;
    set.retailcrm.lock().set_rate_limit(10);
    set.egon.lock().set_rate_limit(
        crate::vendor_docs::egon::DEFAULT_RATE_PER_MIN,
        std::time::Duration::from_secs(60),
    );
    for control in [
        &set.imsklad.control,
        &set.retailcrm.control,
        &set.egon.control,
        &set.imshop.control,
    ] {
        control.clear_requests();
    }
    result
}

/// `http://host:port` of a URL with a path.
fn base_of(url: &str) -> String {
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => url[..i + 3 + j].to_string(),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}
