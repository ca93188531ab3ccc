//! A job's own timing spans: consecutive phases, each the wall time since
//! the previous one, plus the process's CPU time where the wall time is
//! mostly spent waiting on a vendor. Reported in the run summary's `extra`
//! (`phases_s`, seconds) and at `debug` in the log; `sverka bench` reads them
//! back for its local-work figure.

use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// Consecutive timed phases of one run.
#[derive(Debug)]
pub struct Phases {
    last: Instant,
    cpu_mark: Option<Duration>,
    spans: Vec<(&'static str, f64)>,
}

impl Default for Phases {
    fn default() -> Self {
        Phases::new()
    }
}

impl Phases {
    /// Starts timing now.
    pub fn new() -> Phases {
        Phases {
            last: Instant::now(),
            cpu_mark: None,
            spans: Vec::new(),
        }
    }

    /// Ends the current phase as `name` (the time since the previous call)
    /// and starts the next one.
    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        let seconds = now.duration_since(self.last).as_secs_f64();
        tracing::debug!(phase = name, seconds, "phase done");
        self.spans.push((name, seconds));
        self.last = now;
    }

    /// Marks the process's CPU time now, for [`Phases::cpu_lap`].
    pub fn mark_cpu(&mut self) {
        self.cpu_mark = process_cpu_time();
    }

    /// Records as `name` the CPU time this process used (all its threads)
    /// since [`Phases::mark_cpu`]; nothing where the OS does not tell.
    pub fn cpu_lap(&mut self, name: &'static str) {
        if let (Some(from), Some(to)) = (self.cpu_mark.take(), process_cpu_time()) {
            self.spans
                .push((name, to.saturating_sub(from).as_secs_f64()));
        }
    }

    /// Records a span measured elsewhere (e.g. time spent waiting on a vendor
    /// inside a phase).
    pub fn record(&mut self, name: &'static str, took: Duration) {
        self.spans.push((name, took.as_secs_f64()));
    }

    /// `{name: seconds}` (a name recorded twice is summed).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (name, seconds) in &self.spans {
            let sum = map.get(*name).and_then(Value::as_f64).unwrap_or(0.0) + seconds;
            map.insert((*name).to_string(), Value::from(sum));
        }
        Value::Object(map)
    }
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`).
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks * 1000 / CLOCK_TICKS))
}

/// `sysconf(_SC_CLK_TCK)` on every Linux architecture sverka builds for.
const CLOCK_TICKS: u64 = 100;

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in ticks.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces; fields after it follow `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_are_consecutive_and_summed_by_name() {
        let mut p = Phases::new();
        p.lap("a");
        p.record("b", Duration::from_millis(250));
        p.record("b", Duration::from_millis(250));
        let json = p.to_json();
        assert!(json["a"].as_f64().is_some_and(|s| s >= 0.0));
        assert_eq!(json["b"].as_f64(), Some(0.5));
    }

    #[test]
    fn cpu_ticks_from_a_stat_line() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 1";
        assert_eq!(parse_cpu_ticks(line), Some(42));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert!(process_cpu_time().is_some());
    }
}
