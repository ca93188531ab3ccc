//! The scheduler's clock: the system one, and a manual one for tests.

use super::*;

/// The scheduler's notion of time, injectable so tests never wait for real ticks.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `t` has passed (at once when it already has).
    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'_, ()>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Longest single sleep of [`SystemClock`]: the wall clock is re-read at least
/// this often, so a suspended machine or a clock step is noticed in time.
pub(super) const SYSTEM_SLEEP_SLICE: Duration = Duration::from_secs(30);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let left = match (t - Utc::now()).to_std() {
                    Ok(left) if !left.is_zero() => left,
                    _ => return,
                };
                tokio::time::sleep(left.min(SYSTEM_SLEEP_SLICE)).await;
            }
        })
    }
}

/// A clock moved by hand, for tests: sleepers wake when it passes their time.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug)]
pub(super) struct ManualState {
    now: DateTime<Utc>,
    sleepers: Vec<(DateTime<Utc>, oneshot::Sender<()>)>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            state: Mutex::new(ManualState {
                now: start,
                sleepers: Vec::new(),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ManualState> {
        // The state stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the clock to `t` (never backwards) and wakes the sleepers whose time has come.
    pub fn set(&self, t: DateTime<Utc>) {
        let mut state = self.lock();
        if t > state.now {
            state.now = t;
        }
        let now = state.now;
        let (due, waiting): (Vec<_>, Vec<_>) =
            state.sleepers.drain(..).partition(|(at, _)| *at <= now);
        state.sleepers = waiting;
        drop(state);
        for (_, waker) in due {
            // A sleeper that was dropped meanwhile does not mind.
            let _ = waker.send(());
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let target = self.now() + by;
        self.set(target);
    }

    /// How many sleepers are waiting (dropped sleeps are not counted).
    pub fn sleepers(&self) -> usize {
        let mut state = self.lock();
        state.sleepers.retain(|(_, waker)| !waker.is_closed());
        state.sleepers.len()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'_, ()> {
        let mut state = self.lock();
        if t <= state.now {
            return Box::pin(std::future::ready(()));
        }
        let (waker, woken) = oneshot::channel();
        state.sleepers.retain(|(_, w)| !w.is_closed());
        state.sleepers.push((t, waker));
        Box::pin(async move {
            // An error means the clock went away: nothing will ever wake us.
            if woken.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
