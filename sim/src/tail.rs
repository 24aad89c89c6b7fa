//! The tail-latency study ("The Tail at Scale", Dean & Barroso, 2013): one
//! replica in ten is 20× slower, and the 99th percentile is all it.
//!
//! Ten replicas serve every call; nine answer in 5 ms plus an exponential
//! 5 ms on average, the tenth takes twenty times that. Each call goes to a
//! random replica. Three ways to call:
//!
//! - **no hedging**: one request, waited for;
//! - **retry after a timeout**: give up on a request after the no-hedging
//!   run's 95th percentile, cancel it and send the call again to another
//!   replica (up to 3 attempts, no backoff) — every decision by a real
//!   [`Retry`];
//! - **hedging at the p95 delay**: after the same delay send a second copy
//!   to another replica and take whichever answers first, cancelling the
//!   other — every step by a real [`Hedge`] (gRPC A6 hedging).
//!
//! Calls are independent (the replicas have no queue), so "load" is what
//! the calls send: requests per call, and the replicas' busy time per call
//! (a cancelled request's work up to its cancellation included).

use core::time::Duration;

use stormguard::{
    Backoff, ConfigError, Decision, Failure, Hedge, HedgeStep, HedgingPolicy, Instant, NoBudget,
    Retry, RetryPolicy,
};

use crate::stream_seed;

/// Replicas behind the service.
pub const TAIL_REPLICAS: u32 = 10;
/// How many times slower the slow replica is.
pub const TAIL_SLOWDOWN: u64 = 20;
/// The fixed part of a healthy replica's latency.
pub const TAIL_MIN_LATENCY: Duration = Duration::from_millis(5);
/// The mean of the exponential part of a healthy replica's latency.
pub const TAIL_MEAN_EXTRA: Duration = Duration::from_millis(5);
/// Attempts of the retry-after-timeout strategy.
pub const TAIL_RETRY_ATTEMPTS: u32 = 3;

/// How the calls are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TailStrategy {
    /// One request, waited for.
    NoHedging,
    /// Cancel and resend after a timeout.
    RetryAfterTimeout,
    /// A second copy after a delay; the first answer wins.
    Hedging,
}

impl TailStrategy {
    /// Every strategy, in table order.
    pub const ALL: [TailStrategy; 3] = [
        TailStrategy::NoHedging,
        TailStrategy::RetryAfterTimeout,
        TailStrategy::Hedging,
    ];

    /// The strategy's name in the table.
    ///
    /// ```
    /// use stormguard_sim::TailStrategy;
    /// assert_eq!(TailStrategy::Hedging.name(), "hedging at the p95 delay");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            TailStrategy::NoHedging => "no hedging",
            TailStrategy::RetryAfterTimeout => "retry after a p95 timeout",
            TailStrategy::Hedging => "hedging at the p95 delay",
        }
    }
}

/// The latencies and the load of one strategy.
///
/// ```
/// use stormguard_sim::{tail, TailStrategy};
/// let results = tail(20_000, 1)?;
/// let none = &results[0];
/// let hedged = &results[2];
/// assert_eq!(hedged.strategy, TailStrategy::Hedging);
/// assert!(hedged.p99 < none.p99 * 3 / 5);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TailResult {
    /// The strategy.
    pub strategy: TailStrategy,
    /// Calls made.
    pub calls: u32,
    /// The timeout or the hedging delay (zero without hedging).
    pub delay: Duration,
    /// Median latency of a call.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Requests sent per call.
    pub requests_per_call: f64,
    /// The replicas' busy time per call, in milliseconds.
    pub busy_ms_per_call: f64,
    /// Calls that ended without an answer.
    pub failed: u32,
}

/// One call's random world: which replicas its requests go to (never the
/// same one twice) and how long each takes. The same `call` draws the same
/// replicas and latencies whatever the strategy (common random numbers), so
/// the strategies differ only in what they do with them.
struct CallWorld {
    rng: fastrand::Rng,
    used: u32,
}

impl CallWorld {
    fn new(seed: u64, call: u32) -> Self {
        CallWorld {
            rng: fastrand::Rng::with_seed(stream_seed(seed, u64::from(call))),
            used: 0,
        }
    }

    /// The latency of the next request, on a replica this call has not
    /// used yet (replica 0 is the slow one).
    fn next_request(&mut self) -> Duration {
        let free = TAIL_REPLICAS - self.used.count_ones();
        let mut pick = self.rng.u32(0..free.max(1));
        let mut replica = 0;
        for r in 0..TAIL_REPLICAS {
            if self.used & (1 << r) == 0 {
                if pick == 0 {
                    replica = r;
                    break;
                }
                pick -= 1;
            }
        }
        self.used |= 1 << replica;
        // 5 ms + Exp(5 ms), by inversion; 1 − U is in (0, 1].
        let u = 1.0 - self.rng.f64();
        let extra = TAIL_MEAN_EXTRA.as_secs_f64() * -u.ln();
        let healthy = TAIL_MIN_LATENCY + Duration::from_secs_f64(extra);
        if replica == 0 {
            healthy * TAIL_SLOWDOWN as u32
        } else {
            healthy
        }
    }
}

/// What one call took: its latency, the requests it sent, the replicas'
/// busy time, and whether it got an answer.
struct CallOutcome {
    latency: Duration,
    requests: u32,
    busy: Duration,
    answered: bool,
}

fn no_hedging(world: &mut CallWorld) -> CallOutcome {
    let latency = world.next_request();
    CallOutcome {
        latency,
        requests: 1,
        busy: latency,
        answered: true,
    }
}

fn retry_after_timeout(
    world: &mut CallWorld,
    policy: &RetryPolicy,
    timeout: Duration,
) -> CallOutcome {
    let mut now = Duration::ZERO;
    let mut retry = Retry::with_seed(policy, Instant::ZERO, 0);
    let mut outcome = CallOutcome {
        latency: Duration::ZERO,
        requests: 0,
        busy: Duration::ZERO,
        answered: false,
    };
    loop {
        let latency = world.next_request();
        outcome.requests += 1;
        if latency <= timeout {
            outcome.busy += latency;
            outcome.latency = now + latency;
            outcome.answered = true;
            retry.on_success(Instant::from_nanos(nanos(now + latency)), &NoBudget);
            return outcome;
        }
        // Timed out: the request is cancelled, its work so far wasted.
        outcome.busy += timeout;
        now += timeout;
        match retry.on_failure(
            &Failure::timeout(),
            Instant::from_nanos(nanos(now)),
            &NoBudget,
        ) {
            Decision::Retry { after } => now += after,
            _ => {
                outcome.latency = now;
                return outcome;
            }
        }
    }
}

fn hedging(world: &mut CallWorld, policy: &HedgingPolicy) -> CallOutcome {
    let mut hedge = Hedge::new(policy, Instant::ZERO);
    // (answer at, copy, sent at); at most two copies.
    let mut in_flight: Vec<(Duration, u32, Duration)> = Vec::with_capacity(2);
    let mut outcome = CallOutcome {
        latency: Duration::ZERO,
        requests: 0,
        busy: Duration::ZERO,
        answered: false,
    };
    let mut now = Duration::ZERO;
    loop {
        let wait_until = match hedge.poll(Instant::from_nanos(nanos(now))) {
            HedgeStep::Send(copy) => {
                let latency = world.next_request();
                outcome.requests += 1;
                in_flight.push((now + latency, copy, now));
                continue;
            }
            HedgeStep::WaitUntil(at) => Some(Duration::from_nanos(at.as_nanos())),
            HedgeStep::WaitForAnswers => None,
            HedgeStep::Finished(result) => {
                // The losers are cancelled now: their work so far is spent.
                for (_, _, sent) in &in_flight {
                    outcome.busy += now - *sent;
                }
                outcome.latency = now;
                outcome.answered = result.is_ok();
                return outcome;
            }
        };
        let first = in_flight
            .iter()
            .enumerate()
            .min_by_key(|(_, (at, _, _))| *at)
            .map(|(i, (at, _, _))| (i, *at));
        match (first, wait_until) {
            (Some((i, at)), until) if until.is_none_or(|until| at <= until) => {
                let (answer_at, copy, sent) = in_flight.swap_remove(i);
                now = answer_at;
                outcome.busy += answer_at - sent;
                hedge.succeeded(copy, Instant::from_nanos(nanos(now)));
            }
            (_, Some(until)) => now = until,
            // Waiting for answers with none in flight: the Hedge never
            // asks for that, but if it did the call would have no answer.
            (_, None) => {
                outcome.latency = now;
                return outcome;
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summarise(
    strategy: TailStrategy,
    delay: Duration,
    outcomes: impl Iterator<Item = CallOutcome>,
) -> TailResult {
    let mut latencies = Vec::new();
    let (mut requests, mut busy, mut failed) = (0u64, Duration::ZERO, 0u32);
    for o in outcomes {
        latencies.push(o.latency);
        requests += u64::from(o.requests);
        busy += o.busy;
        failed += u32::from(!o.answered);
    }
    latencies.sort_unstable();
    let calls = latencies.len().max(1) as f64;
    TailResult {
        strategy,
        calls: u32::try_from(latencies.len()).unwrap_or(u32::MAX),
        delay,
        p50: quantile(&latencies, 0.50),
        p90: quantile(&latencies, 0.90),
        p95: quantile(&latencies, 0.95),
        p99: quantile(&latencies, 0.99),
        p999: quantile(&latencies, 0.999),
        requests_per_call: requests as f64 / calls,
        busy_ms_per_call: busy.as_secs_f64() * 1e3 / calls,
        failed,
    }
}

/// Runs `calls` calls each way against the same replicas (the same seed
/// gives each call the same replicas and latencies in every strategy). The
/// timeout and the hedging delay are the no-hedging run's 95th percentile,
/// measured first.
///
/// # Errors
/// A [`ConfigError`] if a policy cannot be built (never for these numbers).
pub fn tail(calls: u32, seed: u64) -> Result<Vec<TailResult>, ConfigError> {
    let seed = stream_seed(seed, 11);
    let none = summarise(
        TailStrategy::NoHedging,
        Duration::ZERO,
        (0..calls).map(|call| no_hedging(&mut CallWorld::new(seed, call))),
    );
    let delay = none.p95;
    let retry_policy = RetryPolicy::builder()
        .max_attempts(TAIL_RETRY_ATTEMPTS)
        .backoff(Backoff::constant(Duration::ZERO))
        .build()?;
    let retried = summarise(
        TailStrategy::RetryAfterTimeout,
        delay,
        (0..calls)
            .map(|call| retry_after_timeout(&mut CallWorld::new(seed, call), &retry_policy, delay)),
    );
    let hedging_policy = HedgingPolicy::builder()
        .max_attempts(2)
        .hedging_delay(delay)
        .build()?;
    let hedged = summarise(
        TailStrategy::Hedging,
        delay,
        (0..calls).map(|call| hedging(&mut CallWorld::new(seed, call), &hedging_policy)),
    );
    Ok(vec![none, retried, hedged])
}
