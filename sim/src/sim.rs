//! The discrete-event simulation: a backend with workers and a FIFO queue,
//! clients whose every retry decision is made by `stormguard`, and a virtual
//! clock that jumps from one event to the next.
//!
//! Nothing in here knows about storms. The storm comes out of four plain
//! rules: a busy backend queues requests in order; a client stops waiting
//! for an attempt after its timeout (and asks its `Call` what to do);
//! the backend still serves a request whose caller has given up (it cannot
//! know); and a new logical call starts on schedule however the earlier
//! ones fared. Once the queue is longer than a timeout's worth of work,
//! every served request is one whose caller already left, every attempt
//! fails, and each failure sends up to three more attempts to the queue.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use std::rc::Rc;

use stormguard::{
    AdaptiveThrottle, Budget, Call, CircuitBreaker, ConfigError, Decision, Failure, FailureClass,
    Instant, Replay, RetryPolicy,
};

use crate::config::{Config, InvalidConfig};
use crate::scenario::Scenario;
use crate::stream_seed;

/// What one scenario did to the backend, and what the clients got.
///
/// ```
/// use stormguard_sim::{simulate, Config, Scenario};
/// let result = simulate(&Config::small(), Scenario::NoRetries, 1)?;
/// assert!((result.attempts_per_call - 1.0).abs() < 1e-9);
/// # Ok::<(), stormguard_sim::SimError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioResult {
    /// Which scenario.
    pub scenario: Scenario,
    /// The highest offered load (attempts reaching the backend per second,
    /// as a multiple of its healthy capacity), averaged over the config's
    /// `peak_window`.
    pub peak_offered_load: f64,
    /// The mean offered load from the moment the trigger clears to the end
    /// of the run.
    pub offered_load_after_trigger: f64,
    /// How long after the trigger cleared the calls started succeeding
    /// again (every recovery window from then on reaches the config's
    /// `recovered_goodput`), or `None` if they never did (or the run ends
    /// when the trigger clears).
    pub recovered_after: Option<core::time::Duration>,
    /// The share of all logical calls that succeeded.
    pub goodput: f64,
    /// Attempts that reached the backend per logical call.
    pub attempts_per_call: f64,
    /// The share of the backend's served requests whose caller had already
    /// given up on them: the work the storm wastes.
    pub wasted_work: f64,
    /// The offered load in each bucket of the config's `bucket` length.
    pub offered_load: Vec<f64>,
    /// Logical calls started in each bucket.
    pub started: Vec<u32>,
    /// Of the logical calls started in each bucket, those that succeeded.
    pub succeeded: Vec<u32>,
    /// Logical calls started.
    pub logical_calls: u64,
}

/// Why a simulation could not run.
///
/// ```
/// use stormguard_sim::{simulate, Config, Scenario, SimError};
/// let bad = Config { clients: 0, ..Config::small() };
/// assert!(matches!(simulate(&bad, Scenario::Naive, 1), Err(SimError::Config(_))));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum SimError {
    /// The world's configuration is unusable.
    Config(InvalidConfig),
    /// A scenario's policy, budget or breaker could not be built.
    Policy(ConfigError),
}

impl core::fmt::Display for SimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SimError::Config(e) => write!(f, "{e}"),
            SimError::Policy(e) => write!(f, "scenario: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<InvalidConfig> for SimError {
    fn from(e: InvalidConfig) -> Self {
        SimError::Config(e)
    }
}

impl From<ConfigError> for SimError {
    fn from(e: ConfigError) -> Self {
        SimError::Policy(e)
    }
}

/// Random streams: the arrivals are the same in every scenario of a seed.
const ARRIVALS: u64 = 1;
const BACKEND: u64 = 2;
const JITTER: u64 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The next logical call starts.
    NewCall,
    /// A worker finished serving `attempt` of `call`.
    Served { call: u32, attempt: u32 },
    /// The client stops waiting for `attempt` of `call`.
    Timeout { call: u32, attempt: u32 },
    /// The backoff before the next attempt of `call` is over.
    Resend { call: u32 },
}

/// A client's budget, breaker and adaptive throttle, shared by its calls.
struct Client {
    budget: Rc<dyn Budget + Send>,
    breaker: Option<Rc<CircuitBreaker>>,
    throttle: Option<Rc<AdaptiveThrottle>>,
}

/// One logical call: its place in the world, and its lifecycle (the
/// breaker's permit, the budget, the decisions) in stormguard's `Call`.
struct SimCall {
    start_bucket: usize,
    /// Attempts sent so far; the current one's number.
    attempt: u32,
    /// Whether the client is waiting for the current attempt's answer.
    waiting: bool,
    lifecycle: Call<RetryPolicy, Rc<dyn Budget + Send>, Rc<CircuitBreaker>, Rc<AdaptiveThrottle>>,
}

/// What the backend did with an arriving request.
enum Admission {
    /// Being served, queued, or lost: the answer (if any) comes later.
    Later,
    /// The queue is full: answered 503 at once.
    Rejected,
}

struct Sim<'c> {
    config: &'c Config,
    policy: RetryPolicy,
    clients: Vec<Client>,
    calls: Vec<SimCall>,
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    next_seq: u64,
    /// Each call's jitter seed is derived from this and the call's number.
    jitter_seed: u64,
    arrivals: fastrand::Rng,
    backend: fastrand::Rng,
    busy: u32,
    queue: VecDeque<(u32, u32)>,
    // Times in nanoseconds.
    brownout: (u64, u64),
    end: u64,
    bucket: u64,
    timeout: u64,
    mean_gap_nanos: f64,
    // Per bucket: attempts arriving, calls started, of those succeeded.
    offered: Vec<u32>,
    started: Vec<u32>,
    succeeded: Vec<u32>,
    attempts: u64,
    served: u64,
    wasted: u64,
}

/// Runs one scenario on the config's world with the given seed: the same
/// inputs give the same result, bit for bit.
///
/// # Errors
/// [`SimError`] when the config is invalid or the scenario's policy cannot
/// be built.
///
/// ```
/// use stormguard_sim::{simulate, Config, Scenario};
/// let a = simulate(&Config::small(), Scenario::FullJitter, 9)?;
/// let b = simulate(&Config::small(), Scenario::FullJitter, 9)?;
/// assert_eq!(a, b);
/// # Ok::<(), stormguard_sim::SimError>(())
/// ```
pub fn simulate(
    config: &Config,
    scenario: Scenario,
    seed: u64,
) -> Result<ScenarioResult, SimError> {
    config.validate()?;
    let policy = scenario.policy()?;
    let mut clients = Vec::new();
    for _ in 0..config.clients {
        clients.push(Client {
            budget: Rc::<dyn Budget + Send>::from(scenario.budget()?),
            breaker: scenario.breaker()?.map(Rc::new),
            throttle: scenario.adaptive_throttle()?.map(Rc::new),
        });
    }
    let nanos = |d: core::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let bucket = nanos(config.bucket);
    let end = nanos(config.duration);
    let buckets = usize::try_from(end.div_ceil(bucket)).unwrap_or(usize::MAX);
    let mut sim = Sim {
        config,
        policy,
        clients,
        calls: Vec::new(),
        events: BinaryHeap::new(),
        next_seq: 0,
        jitter_seed: stream_seed(seed, JITTER),
        arrivals: fastrand::Rng::with_seed(stream_seed(seed, ARRIVALS)),
        backend: fastrand::Rng::with_seed(stream_seed(seed, BACKEND)),
        busy: 0,
        queue: VecDeque::new(),
        brownout: (nanos(config.brownout_start), nanos(config.brownout_end)),
        end,
        bucket,
        timeout: nanos(config.attempt_timeout),
        mean_gap_nanos: 1e9 / config.logical_calls_per_sec(),
        offered: vec![0; buckets],
        started: vec![0; buckets],
        succeeded: vec![0; buckets],
        attempts: 0,
        served: 0,
        wasted: 0,
    };
    sim.run();
    Ok(sim.summarise(scenario))
}

impl Sim<'_> {
    fn schedule(&mut self, at: u64, event: Event) {
        self.events.push(Reverse((at, self.next_seq, event)));
        self.next_seq += 1;
    }

    fn run(&mut self) {
        let first = self.next_arrival_gap();
        self.schedule(first, Event::NewCall);
        while let Some(Reverse((now, _, event))) = self.events.pop() {
            match event {
                Event::NewCall => self.new_call(now),
                Event::Served { call, attempt } => self.served(call, attempt, now),
                Event::Timeout { call, attempt } => {
                    if self.is_waiting_for(call, attempt) {
                        self.failed(call, &Failure::timeout(), now);
                    }
                }
                Event::Resend { call } => self.send(call, now),
            }
        }
    }

    /// Exponential gaps: Poisson arrivals at the configured rate.
    fn next_arrival_gap(&mut self) -> u64 {
        let u = 1.0 - self.arrivals.f64(); // (0, 1]
                                           // Saturating float-to-int conversion; the gap is at least 1 ns.
        ((-u.ln() * self.mean_gap_nanos) as u64).max(1)
    }

    fn in_brownout(&self, now: u64) -> bool {
        self.brownout.0 <= now && now < self.brownout.1
    }

    fn bucket_of(&self, now: u64) -> Option<usize> {
        usize::try_from(now / self.bucket)
            .ok()
            .filter(|&b| b < self.offered.len())
    }

    fn new_call(&mut self, now: u64) {
        let gap = self.next_arrival_gap();
        if now.saturating_add(gap) < self.end {
            self.schedule(now + gap, Event::NewCall);
        }
        let Ok(id) = u32::try_from(self.calls.len()) else {
            return; // unreachable within the validated call limit
        };
        let client = self.arrivals.u32(0..self.config.clients);
        let start_bucket = self.bucket_of(now).unwrap_or(0);
        if let Some(n) = self.started.get_mut(start_bucket) {
            *n += 1;
        }
        let client = &self.clients[client as usize];
        let lifecycle = Call::with_seed(self.policy, stream_seed(self.jitter_seed, u64::from(id)))
            .budget(Rc::clone(&client.budget))
            .breaker(client.breaker.clone())
            .throttle(client.throttle.clone());
        self.calls.push(SimCall {
            start_bucket,
            attempt: 0,
            waiting: false,
            lifecycle,
        });
        self.send(id, now);
    }

    /// Sends the next attempt of `call` — unless its lifecycle refuses (an
    /// open breaker, the adaptive throttle): then the call fails fast,
    /// unsent.
    fn send(&mut self, call: u32, now: u64) {
        let Some(c) = self.calls.get_mut(call as usize) else {
            return;
        };
        if c.lifecycle.start_attempt(Instant::from_nanos(now)).is_err() {
            return;
        }
        c.attempt += 1;
        c.waiting = true;
        let attempt = c.attempt;
        self.attempts += 1;
        if let Some(b) = self.bucket_of(now) {
            self.offered[b] += 1;
        }
        match self.arrive(call, attempt, now) {
            Admission::Later => self.schedule(
                now.saturating_add(self.timeout),
                Event::Timeout { call, attempt },
            ),
            Admission::Rejected => {
                let rejected = Failure::new(FailureClass::Overloaded, Replay::Rejected);
                self.failed(call, &rejected, now);
            }
        }
    }

    /// The backend receives a request.
    fn arrive(&mut self, call: u32, attempt: u32, now: u64) -> Admission {
        let drop = if self.in_brownout(now) {
            self.config.loss + self.config.brownout_drop
        } else {
            self.config.loss
        };
        if self.backend.f64() < drop {
            return Admission::Later; // lost: no answer ever comes
        }
        if self.busy < self.config.workers {
            self.busy += 1;
            self.start_service(call, attempt, now);
            Admission::Later
        } else if self.queue.len() < self.config.queue_limit as usize {
            self.queue.push_back((call, attempt));
            Admission::Later
        } else {
            Admission::Rejected
        }
    }

    fn start_service(&mut self, call: u32, attempt: u32, now: u64) {
        let mut nanos = self.config.service_time.as_nanos() as f64 * (0.5 + self.backend.f64());
        if self.in_brownout(now) {
            nanos *= self.config.slowdown;
        }
        // Saturating conversion; validated inputs keep it far below u64::MAX.
        let done = now.saturating_add((nanos as u64).max(1));
        self.schedule(done, Event::Served { call, attempt });
    }

    /// A worker finished a request: answer it, and take the next one from
    /// the queue.
    fn served(&mut self, call: u32, attempt: u32, now: u64) {
        self.served += 1;
        if self.is_waiting_for(call, attempt) {
            self.succeeded(call, now);
        } else {
            self.wasted += 1; // its caller gave up on it: wasted work
        }
        match self.queue.pop_front() {
            Some((next_call, next_attempt)) => self.start_service(next_call, next_attempt, now),
            None => self.busy -= 1,
        }
    }

    fn is_waiting_for(&self, call: u32, attempt: u32) -> bool {
        self.calls
            .get(call as usize)
            .is_some_and(|c| c.waiting && c.attempt == attempt)
    }

    fn succeeded(&mut self, call: u32, now: u64) {
        let c = &mut self.calls[call as usize];
        c.waiting = false;
        c.lifecycle.succeed(Instant::from_nanos(now));
        if let Some(n) = self.succeeded.get_mut(c.start_bucket) {
            *n += 1;
        }
    }

    fn failed(&mut self, call: u32, failure: &Failure, now: u64) {
        let c = &mut self.calls[call as usize];
        c.waiting = false;
        match c.lifecycle.fail(failure, Instant::from_nanos(now)) {
            Decision::Retry { after } => {
                let after = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
                self.schedule(now.saturating_add(after), Event::Resend { call });
            }
            Decision::GiveUp(_) => {}
        }
    }

    fn summarise(&self, scenario: Scenario) -> ScenarioResult {
        let config = self.config;
        let per_bucket = config.capacity_per_sec() * config.bucket.as_secs_f64();
        let offered_load: Vec<f64> = self
            .offered
            .iter()
            .map(|&n| f64::from(n) / per_bucket)
            .collect();
        let buckets_in = |d: core::time::Duration| {
            usize::try_from(d.as_nanos() / config.bucket.as_nanos())
                .unwrap_or(usize::MAX)
                .max(1)
        };
        let peak_width = buckets_in(config.peak_window)
            .min(offered_load.len())
            .max(1);
        let peak_offered_load = offered_load
            .windows(peak_width)
            .map(|w| w.iter().sum::<f64>() / w.len() as f64)
            .fold(0.0, f64::max);
        let clear = usize::try_from(self.brownout.1.div_ceil(self.bucket))
            .unwrap_or(usize::MAX)
            .min(offered_load.len());
        let after = &offered_load[clear..];
        let offered_load_after_trigger = if after.is_empty() {
            0.0
        } else {
            after.iter().sum::<f64>() / after.len() as f64
        };
        let recovered_after = self.recovery(clear, buckets_in(config.recovery_window));
        let calls: u64 = self.started.iter().map(|&n| u64::from(n)).sum();
        let good: u64 = self.succeeded.iter().map(|&n| u64::from(n)).sum();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        ScenarioResult {
            scenario,
            peak_offered_load,
            offered_load_after_trigger,
            recovered_after,
            goodput: ratio(good, calls),
            attempts_per_call: ratio(self.attempts, calls),
            wasted_work: ratio(self.wasted, self.served),
            offered_load,
            started: self.started.clone(),
            succeeded: self.succeeded.clone(),
            logical_calls: calls,
        }
    }

    /// The end of the last recovery window (after `clear`) whose calls fell
    /// short of the goodput threshold, measured from the trigger clearing;
    /// `None` if the last window itself fell short, or there is none.
    fn recovery(&self, clear: usize, width: usize) -> Option<core::time::Duration> {
        let threshold = self.config.recovered_goodput;
        let mut recovered_at = clear;
        let mut start = clear;
        let n = self.started.len();
        if start >= n {
            return None; // no time after the trigger: no recovery seen
        }
        while start < n {
            let stop = (start + width).min(n);
            let started: u32 = self.started[start..stop].iter().sum();
            let good: u32 = self.succeeded[start..stop].iter().sum();
            if started > 0 && f64::from(good) < threshold * f64::from(started) {
                if stop == n {
                    return None;
                }
                recovered_at = stop;
            }
            start = stop;
        }
        let nanos = (recovered_at as u64 * self.bucket).saturating_sub(self.brownout.1);
        Some(core::time::Duration::from_nanos(nanos))
    }
}
