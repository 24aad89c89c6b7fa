//! The collected results, as the printed table and as JSON.

use core::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::Config;
use super::ContentionResult;
use super::NestedResult;
use super::ScenarioResult;
use super::{HerdResult, HERD_ATTEMPTS, HERD_BASE};
use super::{
    TailResult, TAIL_MEAN_EXTRA, TAIL_MIN_LATENCY, TAIL_REPLICAS, TAIL_RETRY_ATTEMPTS,
    TAIL_SLOWDOWN,
};

/// Everything one run of the program found.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The world the scenarios ran in.
    pub config: Config,
    /// The seed every random stream was derived from.
    pub seed: u64,
    /// One result per scenario, in table order.
    pub scenarios: Vec<ScenarioResult>,
    /// One result per jitter kind.
    pub herd: Vec<HerdResult>,
    /// The nested-retries counts.
    pub nested: NestedResult,
    /// One result per jitter kind.
    pub contention: Vec<ContentionResult>,
    /// One result per strategy of the tail-latency study.
    pub tail: Vec<TailResult>,
}

fn ms(d: core::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 1000.0 && ms % 1000.0 == 0.0 {
        format!("{} s", ms / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

impl Report {
    /// The results as the program prints them: the world, the scenario
    /// table, then the studies.
    pub fn table(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "backend: {} workers × {} = {:.0} calls/s, FIFO queue of {}, serves requests whose caller gave up",
            c.workers,
            ms(c.service_time),
            c.capacity_per_sec(),
            c.queue_limit
        );
        let _ = writeln!(
            out,
            "clients: {}, {:.0} logical calls/s open-loop ({:.2} × capacity), attempt timeout {}, {}% of calls lost",
            c.clients,
            c.logical_calls_per_sec(),
            c.load,
            ms(c.attempt_timeout),
            c.loss * 100.0
        );
        let _ = writeln!(
            out,
            "brownout: from {} to {} every service takes {}× longer and {}% of calls are dropped; calls start for {} (seed {})",
            ms(c.brownout_start),
            ms(c.brownout_end),
            c.slowdown,
            c.brownout_drop * 100.0,
            ms(c.duration),
            self.seed
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<42} {:>10} {:>12} {:>11} {:>8} {:>14}",
            "scenario", "peak load", "after clear", "recovered", "goodput", "attempts/call"
        );
        for r in &self.scenarios {
            let recovered = match r.recovered_after {
                Some(d) => format!("{:.1} s", d.as_secs_f64()),
                None => "never".to_string(),
            };
            let _ = writeln!(
                out,
                "{:<42} {:>9.2}× {:>11.2}× {:>11} {:>7.1}% {:>14.2}",
                r.scenario.name(),
                r.peak_offered_load,
                r.offered_load_after_trigger,
                recovered,
                r.goodput * 100.0,
                r.attempts_per_call
            );
        }
        let _ = writeln!(
            out,
            "(load: attempts reaching the backend ÷ its capacity; peak over {}, \"after clear\" from the trigger clearing to the end;",
            ms(c.peak_window)
        );
        let _ = writeln!(
            out,
            " recovered: from the trigger clearing until every {} window has ≥ {}% of its calls succeeding; goodput: calls that succeeded)",
            ms(c.recovery_window),
            c.recovered_goodput * 100.0
        );

        let wasted: Vec<String> = self
            .scenarios
            .iter()
            .map(|r| format!("{:.0}%", r.wasted_work * 100.0))
            .collect();
        let _ = writeln!(
            out,
            "work the backend spent on requests whose caller had given up, in table order: {}",
            wasted.join(" / ")
        );

        let _ = writeln!(out);
        let clients = self.herd.first().map_or(0, |h| h.clients);
        let _ = writeln!(
            out,
            "herd: {clients} clients fail at the same instant; {} attempts each, backoff {} × 2ⁿ",
            HERD_ATTEMPTS,
            ms(HERD_BASE)
        );
        let _ = writeln!(
            out,
            "  {:<14} {:>22} {:>16}",
            "jitter", "peak retries per 10 ms", "last retry at"
        );
        for h in &self.herd {
            let _ = writeln!(
                out,
                "  {:<14} {:>22} {:>14.2} s",
                h.jitter.as_str(),
                h.peak_per_bin,
                h.last_retry.as_secs_f64()
            );
        }

        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "nested: {} layers × {} attempts against a dead pool: {} pool calls retrying blindly, {} retrying at one layer",
            self.nested.layers, self.nested.attempts, self.nested.blind, self.nested.one_layer
        );

        let _ = writeln!(out);
        let (clients, runs) = self
            .contention
            .first()
            .map_or((0, 0), |r| (r.clients, r.runs));
        let _ = writeln!(
            out,
            "contention (AWS \"Exponential Backoff and Jitter\"): {clients} clients write one row with optimistic concurrency,"
        );
        let _ = writeln!(
            out,
            "  net delay ~N(10 ms, 2 ms), backoff base 5 ms, cap 2000 ms; mean of {runs} seeds"
        );
        let _ = writeln!(
            out,
            "  {:<14} {:>10} {:>16}",
            "jitter", "calls", "completion"
        );
        for r in &self.contention {
            let _ = writeln!(
                out,
                "  {:<14} {:>10.0} {:>13.0} ms",
                r.jitter.as_str(),
                r.calls,
                r.completion_ms
            );
        }

        let _ = writeln!(out);
        let calls = self.tail.first().map_or(0, |r| r.calls);
        let _ = writeln!(
            out,
            "tail latency (\"The Tail at Scale\"): {TAIL_REPLICAS} replicas answer in {} + Exp({}), one of them {TAIL_SLOWDOWN}× slower;",
            ms(TAIL_MIN_LATENCY),
            ms(TAIL_MEAN_EXTRA)
        );
        let _ = writeln!(
            out,
            "  {calls} calls each way; the timeout (then up to {TAIL_RETRY_ATTEMPTS} attempts) and the hedging delay (2 copies) are the no-hedging p95"
        );
        let _ = writeln!(
            out,
            "  {:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>13} {:>13}",
            "strategy", "p50", "p90", "p95", "p99", "p99.9", "requests/call", "busy ms/call"
        );
        let latency = |d: core::time::Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        for r in &self.tail {
            let _ = writeln!(
                out,
                "  {:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>13.3} {:>13.2}",
                r.strategy.name(),
                latency(r.p50),
                latency(r.p90),
                latency(r.p95),
                latency(r.p99),
                latency(r.p999),
                r.requests_per_call,
                r.busy_ms_per_call
            );
        }
        out
    }

    /// The results as one JSON object with the keys `scenarios`, `herd`,
    /// `nested`, `contention` and `tail`.
    pub fn to_json(&self) -> Value {
        let scenarios: Vec<Value> = self
            .scenarios
            .iter()
            .map(|r| {
                json!({
                    "name": r.scenario.name(),
                    "peak_offered_load": r.peak_offered_load,
                    "offered_load_after_trigger": r.offered_load_after_trigger,
                    "recovered_after_s": r.recovered_after.map(|d| d.as_secs_f64()),
                    "goodput": r.goodput,
                    "attempts_per_call": r.attempts_per_call,
                })
            })
            .collect();
        let mut herd = Map::new();
        for h in &self.herd {
            herd.insert(h.jitter.as_str().to_string(), json!(h.peak_per_bin));
        }
        let contention: Vec<Value> = self
            .contention
            .iter()
            .map(|r| {
                json!({
                    "jitter": r.jitter.as_str(),
                    "calls": r.calls,
                    "completion_ms": r.completion_ms,
                })
            })
            .collect();
        let ms = |d: core::time::Duration| d.as_secs_f64() * 1e3;
        let tail: Vec<Value> = self
            .tail
            .iter()
            .map(|r| {
                json!({
                    "strategy": r.strategy.name(),
                    "delay_ms": ms(r.delay),
                    "p50_ms": ms(r.p50),
                    "p90_ms": ms(r.p90),
                    "p95_ms": ms(r.p95),
                    "p99_ms": ms(r.p99),
                    "p999_ms": ms(r.p999),
                    "requests_per_call": r.requests_per_call,
                    "busy_ms_per_call": r.busy_ms_per_call,
                    "failed": r.failed,
                })
            })
            .collect();
        json!({
            "scenarios": scenarios,
            "herd": herd,
            "nested": { "blind": self.nested.blind, "one_layer": self.nested.one_layer },
            "contention": contention,
            "tail": tail,
        })
    }
}
