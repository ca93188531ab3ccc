//! Network helpers shared by the connectors, the configuration and the
//! database layer: loopback detection and the client-side rate limiter.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Whether `url` points at this machine (`localhost`, `127.0.0.0/8`, `::1`).
pub fn is_loopback(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A client-side rate limiter: at most `max` requests in any sliding `per` window.
///
/// Shared by every clone, so all tasks of one connector (one API key) draw from
/// the same budget. A sliding window (rather than a token bucket with burst) keeps
/// the vendor's own counter, which counts requests per wall-clock window, from
/// ever seeing more than `max` in one window.
///
/// Two ways to take a slot:
/// - [`RateLimiter::acquire`] books it at the moment of sending; it leaves the
///   window `per` later. The caller adds a margin to `per` for the time a
///   request takes to reach the server.
/// - [`RateLimiter::acquire_held`] holds it while the request is in flight and
///   lets it leave the window `per` after the answer came back. The server
///   counts a request somewhere between its sending and its answer, so no
///   server-side window can ever hold more than `max` such requests, however
///   late a request arrives (a slow connection set-up, a busy network), and no
///   margin is needed: the cost is one round trip per window instead of a guess.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    window: std::sync::Mutex<Window>,
    /// Woken when a held slot is released.
    released: Notify,
}

#[derive(Debug)]
struct Window {
    max: usize,
    per: Duration,
    /// Each taken slot: `None` while its request is in flight, else when it
    /// started to age (booked, or answered).
    slots: Vec<(u64, Option<Instant>)>,
    next_id: u64,
}

impl Window {
    /// Drops expired slots; Ok(()) when one more fits, else how long to wait
    /// (None: every slot is in flight, wait for a release).
    fn room(&mut self, now: Instant) -> Result<(), Option<Duration>> {
        let per = self.per;
        self.slots
            .retain(|(_, since)| since.is_none_or(|t| now.duration_since(t) < per));
        if self.slots.len() < self.max {
            return Ok(());
        }
        Err(self
            .slots
            .iter()
            .filter_map(|(_, since)| *since)
            .map(|t| (t + per).saturating_duration_since(now))
            .min())
    }
}

/// A slot taken with [`RateLimiter::acquire_held`]; dropping it (when the
/// answer is in) starts the slot's `per` in the window.
#[derive(Debug)]
pub struct RatePermit {
    limiter: Option<RateLimiter>,
    id: u64,
}

impl Drop for RatePermit {
    fn drop(&mut self) {
        if let Some(limiter) = self.limiter.take() {
            let now = Instant::now();
            {
                let mut w = limiter.lock();
                if let Some(slot) = w.slots.iter_mut().find(|(id, _)| *id == self.id) {
                    slot.1 = Some(now);
                }
            }
            limiter.inner.released.notify_waiters();
        }
    }
}

impl RateLimiter {
    /// `max` requests per `per`. `max == 0` disables limiting.
    pub fn new(max: usize, per: Duration) -> Self {
        RateLimiter {
            inner: Arc::new(Shared {
                window: std::sync::Mutex::new(Window {
                    max,
                    per,
                    slots: Vec::with_capacity(max),
                    next_id: 0,
                }),
                released: Notify::new(),
            }),
        }
    }

    /// The process-wide limiter of one vendor account (`account`: its API URL
    /// and login, say) at `max` requests per `per`. A vendor counts an
    /// account's requests however many clients send them, so every client of
    /// the account shares this one: jobs that build a client to read and
    /// another to write, or two jobs the scheduler runs at once, stay within
    /// the vendor's limit together.
    pub fn shared(account: &str, max: usize, per: Duration) -> Self {
        type Limiters = std::collections::HashMap<(String, usize, Duration), RateLimiter>;
        static LIMITERS: std::sync::OnceLock<std::sync::Mutex<Limiters>> =
            std::sync::OnceLock::new();
        let mut limiters = LIMITERS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        limiters
            .entry((account.to_string(), max, per))
            .or_insert_with(|| RateLimiter::new(max, per))
            .clone()
    }

    /// No limit at all.
    pub fn unlimited() -> Self {
        Self::new(0, Duration::from_secs(1))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        // The window holds no invariant a panic could break half-way.
        self.inner
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until one more request fits in the window, then books it
    /// (the slot ages from now).
    pub async fn acquire(&self) {
        self.take(false).await;
    }

    /// Waits until one more request fits in the window and holds the slot
    /// until the returned permit is dropped (see the type's documentation).
    pub async fn acquire_held(&self) -> RatePermit {
        match self.take(true).await {
            Some(id) => RatePermit {
                limiter: Some(self.clone()),
                id,
            },
            None => RatePermit {
                limiter: None,
                id: 0,
            },
        }
    }

    /// Takes a slot (held: in flight until released); None when unlimited.
    async fn take(&self, held: bool) -> Option<u64> {
        loop {
            let released = self.inner.released.notified();
            tokio::pin!(released);
            // Registered before the window is checked, so a release between the
            // check and the wait is not missed.
            released.as_mut().enable();
            let wait = {
                let mut w = self.lock();
                if w.max == 0 {
                    return None;
                }
                let now = Instant::now();
                match w.room(now) {
                    Ok(()) => {
                        let id = w.next_id;
                        w.next_id += 1;
                        w.slots.push((id, (!held).then_some(now)));
                        return Some(id);
                    }
                    Err(wait) => wait,
                }
            };
            match wait {
                Some(wait) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait + Duration::from_millis(1)) => {}
                        _ = &mut released => {}
                    }
                }
                None => released.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limiter_never_exceeds_window() {
        let l = RateLimiter::new(5, Duration::from_millis(200));
        let start = Instant::now();
        let mut stamps = Vec::new();
        for _ in 0..12 {
            l.acquire().await;
            stamps.push(start.elapsed());
        }
        for (i, t) in stamps.iter().enumerate() {
            let in_window = stamps[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_millis(200))
                .count();
            assert!(in_window <= 5, "{in_window} requests within one window");
        }
        assert!(stamps[11] >= Duration::from_millis(400));
    }

    #[tokio::test]
    async fn held_slots_age_from_their_answer() {
        let l = RateLimiter::new(2, Duration::from_millis(200));
        let start = Instant::now();
        let a = l.acquire_held().await;
        let b = l.acquire_held().await;
        // Both in flight: a third request waits for an answer plus the window.
        let third = {
            let l = l.clone();
            tokio::spawn(async move {
                let p = l.acquire_held().await;
                (start.elapsed(), p)
            })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        drop(a);
        let answered = start.elapsed();
        let (took, _p) = third.await.unwrap();
        assert!(
            took >= answered + Duration::from_millis(200),
            "{took:?} vs {answered:?}"
        );
        drop(b);
    }

    #[tokio::test]
    async fn unlimited_never_waits() {
        let l = RateLimiter::unlimited();
        for _ in 0..100 {
            let _p = l.acquire_held().await;
            l.acquire().await;
        }
    }
}
