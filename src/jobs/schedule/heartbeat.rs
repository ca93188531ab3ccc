//! Healthchecks-style heartbeat pings around each run.

use super::*;

/// The stage a heartbeat reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ping {
    Start,
    Success,
    Fail,
}

impl Ping {
    pub(super) fn suffix(self) -> &'static str {
        match self {
            Ping::Start => "/start",
            Ping::Success => "",
            Ping::Fail => "/fail",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Ping::Start => "start",
            Ping::Success => "success",
            Ping::Fail => "fail",
        }
    }
}

/// Healthchecks.io-style pings; a failing ping is a warning, never a failure.
#[derive(Clone)]
pub(super) struct Heartbeat {
    client: Option<reqwest::Client>,
    pub(super) timeout: Duration,
}

impl Heartbeat {
    pub(super) fn new(timeout: Duration) -> Self {
        let policy = HttpPolicy {
            timeout,
            connect_timeout: timeout,
            max_attempts: 1,
            ..HttpPolicy::default()
        };
        let client = match policy.client() {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::warn!(error = %crate::errors::Chain(&e), "cannot build the heartbeat HTTP client: heartbeats are off");
                None
            }
        };
        Heartbeat { client, timeout }
    }

    pub(super) async fn ping(&self, def: &JobDef, ping: Ping) {
        let (Some(base), Some(client)) = (&def.heartbeat_url, &self.client) else {
            return;
        };
        let url = format!("{}{}", base.expose().trim_end_matches('/'), ping.suffix());
        // Neither the URL nor errors that contain it are logged: it carries a token.
        match client.get(&url).send().await {
            Ok(answer) if answer.status().is_success() => {
                tracing::debug!(job = %def.name, ping = ping.name(), "heartbeat sent");
            }
            Ok(answer) => tracing::warn!(
                job = %def.name,
                ping = ping.name(),
                status = %answer.status(),
                "the heartbeat was refused"
            ),
            Err(e) => tracing::warn!(
                job = %def.name,
                ping = ping.name(),
                error = %e.without_url(),
                "the heartbeat failed"
            ),
        }
    }
}
