//! The contention study: the experiment of the AWS Architecture Blog's
//! "Exponential Backoff and Jitter", rebuilt on stormguard's `Retry`.
//!
//! N clients each want to update one database row once, with optimistic
//! concurrency: read the row's version, then write "if the version is still
//! this one". Every message takes a network delay drawn from
//! `|N(10 ms, 2 ms)|`. A write whose version is stale fails, and the
//! client's `Retry` decides how long to back off (base 5 ms, cap
//! 2000 ms) before it reads again. Counted: the writes sent (the article's
//! "calls") and the time until the last client succeeded.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use core::time::Duration;

use stormguard::{
    Backoff, ConfigError, Decision, Failure, FailureClass, Instant, Jitter, NoBudget, Replay,
    Retry, RetryPolicy,
};

use crate::stream_seed;

/// The article's first backoff.
pub const CONTENTION_BASE: Duration = Duration::from_millis(5);
/// The article's backoff cap.
pub const CONTENTION_CAP: Duration = Duration::from_millis(2000);
/// The network's mean one-way delay.
pub const NET_MEAN_MS: f64 = 10.0;
/// The network delay's standard deviation.
pub const NET_SD_MS: f64 = 2.0;
/// Writes after which a run is cut short (a guard for huge client counts).
const MAX_WRITES: u64 = 50_000_000;

/// One jitter kind's averages over the runs.
///
/// ```
/// use stormguard::Jitter;
/// use stormguard_sim::contention;
/// let r = contention(10, Jitter::Full, 5, 1)?;
/// assert!(r.calls >= 10.0); // every client writes at least once
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContentionResult {
    /// The jitter kind.
    pub jitter: Jitter,
    /// Clients contending for the row.
    pub clients: u32,
    /// Writes sent, on average over the runs.
    pub calls: f64,
    /// Milliseconds until every client had written, on average.
    pub completion_ms: f64,
    /// How many runs (seeds) were averaged.
    pub runs: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A client's read reaches the row.
    Read { client: u32 },
    /// A client's conditional write reaches the row.
    Write { client: u32, version: u64 },
    /// The write's answer reaches the client.
    Answer { client: u32, ok: bool },
}

/// `clients` clients contend for one row, `runs` times with seeds derived
/// from `seed`; returns the averages for `jitter`.
///
/// # Errors
/// A `ConfigError` if the backoff cannot be built (never for the four AWS
/// kinds).
pub fn contention(
    clients: u32,
    jitter: Jitter,
    runs: u32,
    seed: u64,
) -> Result<ContentionResult, ConfigError> {
    let policy = RetryPolicy::builder()
        .max_attempts(u32::MAX)
        .backoff(
            Backoff::exponential(CONTENTION_BASE, 2.0)
                .max_delay(CONTENTION_CAP)
                .jitter(jitter),
        )
        .build()?;
    let (mut calls, mut millis) = (0.0, 0.0);
    for run in 0..runs {
        let (c, t) = one_run(&policy, clients, stream_seed(seed, 1_000 + u64::from(run)));
        calls += c as f64;
        millis += t as f64 / 1e6;
    }
    let n = f64::from(runs.max(1));
    Ok(ContentionResult {
        jitter,
        clients,
        calls: calls / n,
        completion_ms: millis / n,
        runs,
    })
}

/// One run: (writes sent, nanoseconds until the last success).
fn one_run(policy: &RetryPolicy, clients: u32, seed: u64) -> (u64, u64) {
    let mut net = fastrand::Rng::with_seed(stream_seed(seed, 1));
    let jitter_seed = stream_seed(seed, 2);
    let mut delay = move || -> u64 {
        // Box–Muller; |x| as the article's model takes it.
        let u1 = 1.0 - net.f64();
        let u2 = net.f64();
        let z = (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos();
        ((NET_MEAN_MS + NET_SD_MS * z).abs() * 1e6) as u64
    };
    let mut states: Vec<Retry<&RetryPolicy>> = (0..clients)
        .map(|c| {
            Retry::with_seed(
                policy,
                Instant::ZERO,
                stream_seed(jitter_seed, u64::from(c)),
            )
        })
        .collect();
    let mut events = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |events: &mut BinaryHeap<Reverse<(u64, u64, Event)>>, at: u64, e: Event| {
        events.push(Reverse((at, seq, e)));
        seq += 1;
    };
    for client in 0..clients {
        push(&mut events, delay(), Event::Read { client });
    }
    let stale = Failure::new(FailureClass::Transient, Replay::Rejected);
    let (mut version, mut writes, mut last) = (0u64, 0u64, 0u64);
    while let Some(Reverse((now, _, event))) = events.pop() {
        match event {
            Event::Read { client } => {
                // The version travels back, and the write travels out.
                let at = now.saturating_add(delay()).saturating_add(delay());
                push(&mut events, at, Event::Write { client, version });
            }
            Event::Write {
                client,
                version: read,
            } => {
                writes += 1;
                let ok = read == version;
                if ok {
                    version += 1;
                }
                if writes >= MAX_WRITES {
                    break;
                }
                push(
                    &mut events,
                    now.saturating_add(delay()),
                    Event::Answer { client, ok },
                );
            }
            Event::Answer { client, ok } => {
                let Some(state) = states.get_mut(client as usize) else {
                    continue;
                };
                let at = Instant::from_nanos(now);
                if ok {
                    state.on_success(at, &NoBudget);
                    last = last.max(now);
                    continue;
                }
                if let Decision::Retry { after } = state.on_failure(&stale, at, &NoBudget) {
                    let after = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
                    let at = now.saturating_add(after).saturating_add(delay());
                    push(&mut events, at, Event::Read { client });
                }
            }
        }
    }
    (writes, last)
}
