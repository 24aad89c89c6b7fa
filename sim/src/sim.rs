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
//!
//! [`Sim`] is the simulation as a state machine that a caller steps
//! ([`Sim::advance_to`]): [`simulate`] runs it to the end in one go, the
//! playground a few virtual milliseconds per animation frame.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use std::rc::Rc;

use core::time::Duration;

use stormguard::{
    AdaptiveThrottle, Begin, BreakerState, Budget, Call, CircuitBreaker, ConfigError, Decision,
    Failure, FailureClass, GiveUp, IdempotencyKey, IdempotencyTable, Instant, Replay, RetryBudget,
    RetryPolicy, Throttle,
};

use crate::clients::{ClientBudget, Clients, Method};
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

/// The span the live readouts ([`Sim::recent_offered_load`],
/// [`Sim::successes_per_sec`]) average over: the last second of complete
/// buckets.
pub const READOUT_WINDOW: Duration = Duration::from_secs(1);

/// How long after the trigger clears [`Sim::is_metastable`] starts judging:
/// by then a backend that can recover has drained the queue the brownout
/// built (without retries it takes 0.6 s in the standard world) and the
/// readout window holds no second of the brownout.
pub const METASTABLE_AFTER: Duration = Duration::from_secs(2);

/// How long the backend's idempotency table keeps a charge's answer:
/// longer than any call of the standard world can last (at most 6
/// attempts, each a 100 ms timeout and a backoff of at most 2 s, plus the
/// queue's wait).
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(30);

/// The backend's idempotency table is this many `IdempotencyTable`s, a key
/// going to the shard its number picks (the table's own advice for
/// thousands of keys); each holds [`IDEMPOTENCY_SHARD_KEYS`] keys. 32,768
/// keys in all, above the 24,000 that 800 calls/s leave live over
/// [`IDEMPOTENCY_TTL`].
pub const IDEMPOTENCY_SHARDS: usize = 128;
/// Keys per shard of the backend's idempotency table.
pub const IDEMPOTENCY_SHARD_KEYS: usize = 256;

/// Every attempt of a call charges the same amount to the same customer, so
/// its payload's fingerprint is the same.
const CHARGE_FINGERPRINT: u64 = 0x00c4_a26e;

type Shard = IdempotencyTable<IdempotencyKey, u64, IDEMPOTENCY_SHARD_KEYS>;

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

impl Event {
    fn call(self) -> Option<u32> {
        match self {
            Event::NewCall => None,
            Event::Served { call, .. } | Event::Timeout { call, .. } | Event::Resend { call } => {
                Some(call)
            }
        }
    }
}

/// A client's budget, breaker and adaptive throttle, shared by its calls.
struct Client {
    budget: Rc<dyn Budget + Send>,
    /// The same budget, when it is a `Throttle`: for its tokens.
    throttle_budget: Option<Rc<Throttle>>,
    /// The same budget, when it is a `RetryBudget`: for its balance.
    ratio_budget: Option<Rc<RetryBudget>>,
    breaker: Option<Rc<CircuitBreaker>>,
    throttle: Option<Rc<AdaptiveThrottle>>,
}

impl Client {
    fn new(clients: &Clients) -> Result<Client, ConfigError> {
        let (budget, throttle_budget, ratio_budget): (Rc<dyn Budget + Send>, _, _) =
            match clients.budget.build()? {
                None => (Rc::new(stormguard::NoBudget), None, None),
                Some(ClientBudget::Throttle(t)) => {
                    let t = Rc::new(t);
                    (t.clone(), Some(t), None)
                }
                Some(ClientBudget::RetryBudget(r)) => {
                    let r = Rc::new(r);
                    (r.clone(), None, Some(r))
                }
            };
        Ok(Client {
            budget,
            throttle_budget,
            ratio_budget,
            breaker: clients.breaker()?.map(Rc::new),
            throttle: clients.adaptive_throttle()?.map(Rc::new),
        })
    }
}

/// One logical call: its place in the world, and its lifecycle (the
/// breaker's permit, the budget, the decisions) in stormguard's `Call`.
struct SimCall {
    start_bucket: usize,
    /// Attempts sent so far; the current one's number.
    attempt: u32,
    /// Whether the client is waiting for the current attempt's answer.
    waiting: bool,
    /// Events and queued requests that name this call. At zero nothing can
    /// happen to it any more, and its memory can go.
    pending: u32,
    method: Method,
    /// How many times the backend ran this call's charge.
    charged: u32,
    lifecycle: Call<RetryPolicy, Rc<dyn Budget + Send>, Rc<CircuitBreaker>, Rc<AdaptiveThrottle>>,
}

/// What the backend did with an arriving request.
enum Admission {
    /// Being served, queued, or lost: the answer (if any) comes later.
    Later,
    /// The queue is full: answered 503 at once.
    Rejected,
}

/// The brownout simulation as a state machine on a virtual clock: build it,
/// step it with [`advance_to`](Self::advance_to), read it at any time.
///
/// Two kinds of run:
///
/// - [`Sim::new`] is the table's run: the trigger holds from the config's
///   `brownout_start` to its `brownout_end`, logical calls start during
///   `[0, duration)`, and the time series cover that span.
///   [`simulate`] is `Sim::new`, [`run_to_end`](Self::run_to_end) and
///   [`summary`](Self::summary).
/// - [`Sim::open_ended`] is the playground's: calls start for ever, and the
///   trigger is pulled by hand with [`set_trigger`](Self::set_trigger).
///
/// Either way the clients' settings may change mid-run
/// ([`set_clients`](Self::set_clients)); the calls already running keep
/// theirs. The same inputs at the same virtual times give the same run, bit
/// for bit, whatever the steps: stepping to 5 s and then to 10 s is the
/// same as stepping to 10 s at once.
///
/// ```
/// use core::time::Duration;
/// use stormguard_sim::{Config, Scenario, Sim};
/// let mut sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
/// sim.set_trigger(true);
/// sim.advance_to(Duration::from_secs(4));
/// sim.set_trigger(false);
/// sim.advance_to(Duration::from_secs(8));
/// assert!(sim.recent_offered_load() > 2.0); // the storm outlives its trigger
/// assert!(sim.is_metastable());
/// # Ok::<(), stormguard_sim::SimError>(())
/// ```
pub struct Sim {
    config: Config,
    settings: Clients,
    policy: RetryPolicy,
    clients: Vec<Client>,
    /// The calls that may still be named by an event; the first is number
    /// `first_call`.
    calls: VecDeque<SimCall>,
    first_call: u32,
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    next_seq: u64,
    /// Times in nanoseconds.
    now: u64,
    /// Each call's jitter seed is derived from this and the call's number.
    jitter_seed: u64,
    arrivals: fastrand::Rng,
    backend: fastrand::Rng,
    busy: u32,
    queue: VecDeque<(u32, u32)>,
    /// The latest trigger: on during `[start, end)`; `(MAX, MAX)` before the
    /// first.
    brownout: (u64, u64),
    /// Logical calls start before this.
    end: u64,
    bucket: u64,
    /// The time series stop at this many buckets.
    max_buckets: usize,
    timeout: u64,
    mean_gap_nanos: f64,
    // Per bucket: attempts arriving, calls started, of those succeeded, and
    // calls that succeeded (by when).
    offered: Vec<u32>,
    started: Vec<u32>,
    succeeded: Vec<u32>,
    completed: Vec<u32>,
    attempts: u64,
    served: u64,
    wasted: u64,
    charges: u64,
    double_charges: u64,
    replayed: u64,
    unsafe_refused: u64,
    /// The backend's idempotency table, made when the first keyed charge
    /// arrives.
    table: Vec<Shard>,
}

/// The table's numbers for a run (see [`ScenarioResult`] for each field's
/// meaning).
///
/// ```
/// use stormguard_sim::{Config, Scenario, Sim};
/// let mut sim = Sim::new(&Config::small(), &Scenario::NoRetries.clients(), 1)?;
/// sim.run_to_end();
/// assert!((sim.summary().attempts_per_call - 1.0).abs() < 1e-9);
/// # Ok::<(), stormguard_sim::SimError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// The highest offered load, averaged over the config's `peak_window`.
    pub peak_offered_load: f64,
    /// The mean offered load from the trigger clearing to the end.
    pub offered_load_after_trigger: f64,
    /// How long after the trigger cleared the calls succeeded again.
    pub recovered_after: Option<Duration>,
    /// The share of all logical calls that succeeded.
    pub goodput: f64,
    /// Attempts that reached the backend per logical call.
    pub attempts_per_call: f64,
    /// The share of served requests whose caller had already given up.
    pub wasted_work: f64,
    /// Logical calls started.
    pub logical_calls: u64,
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
    let mut sim = Sim::new(config, &scenario.clients(), seed)?;
    sim.run_to_end();
    let s = sim.summary();
    Ok(ScenarioResult {
        scenario,
        peak_offered_load: s.peak_offered_load,
        offered_load_after_trigger: s.offered_load_after_trigger,
        recovered_after: s.recovered_after,
        goodput: s.goodput,
        attempts_per_call: s.attempts_per_call,
        wasted_work: s.wasted_work,
        offered_load: sim.offered_load(),
        started: sim.started,
        succeeded: sim.succeeded,
        logical_calls: s.logical_calls,
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Adds one to `series[i]`, growing the series when needed.
fn count(series: &mut Vec<u32>, i: usize) {
    if series.len() <= i {
        series.resize(i + 1, 0);
    }
    series[i] += 1;
}

impl Sim {
    /// The table's run of `clients` in the config's world: the trigger from
    /// `brownout_start` to `brownout_end`, calls starting during
    /// `[0, duration)`. Nothing has happened yet: the clock is at zero.
    ///
    /// # Errors
    /// [`SimError`] when the config is invalid or the clients' policy,
    /// budget, breaker or throttle cannot be built.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let config = Config::small();
    /// let mut sim = Sim::new(&config, &Scenario::Naive.clients(), 1)?;
    /// sim.advance_to(config.brownout_end);
    /// assert!(sim.recent_offered_load() > 3.0);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn new(config: &Config, clients: &Clients, seed: u64) -> Result<Sim, SimError> {
        config.validate()?;
        let end = nanos(config.duration);
        let buckets = usize::try_from(end.div_ceil(nanos(config.bucket))).unwrap_or(usize::MAX);
        let brownout = (nanos(config.brownout_start), nanos(config.brownout_end));
        Sim::build(config, clients, seed, brownout, end, buckets)
    }

    /// The playground's run: calls start for ever, and there is no trigger
    /// until [`set_trigger`](Self::set_trigger) pulls it. The config's
    /// `brownout_start`, `brownout_end` and `duration` are not used (they
    /// must still be valid).
    ///
    /// # Errors
    /// As [`Sim::new`].
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// sim.advance_to(Duration::from_secs(60)); // calls go on past `duration`
    /// assert!(sim.recent_offered_load() > 0.7);
    /// assert!(!sim.trigger());
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn open_ended(config: &Config, clients: &Clients, seed: u64) -> Result<Sim, SimError> {
        config.validate()?;
        Sim::build(
            config,
            clients,
            seed,
            (u64::MAX, u64::MAX),
            u64::MAX,
            usize::MAX,
        )
    }

    fn build(
        config: &Config,
        settings: &Clients,
        seed: u64,
        brownout: (u64, u64),
        end: u64,
        max_buckets: usize,
    ) -> Result<Sim, SimError> {
        let policy = settings.policy()?;
        let mut clients = Vec::new();
        for _ in 0..config.clients {
            clients.push(Client::new(settings)?);
        }
        // The table's run has its whole series from the start (the empty
        // buckets at its end included); an open-ended one grows them.
        let series = if max_buckets == usize::MAX {
            Vec::new()
        } else {
            vec![0; max_buckets]
        };
        let mut sim = Sim {
            config: config.clone(),
            settings: *settings,
            policy,
            clients,
            calls: VecDeque::new(),
            first_call: 0,
            events: BinaryHeap::new(),
            next_seq: 0,
            now: 0,
            jitter_seed: stream_seed(seed, JITTER),
            arrivals: fastrand::Rng::with_seed(stream_seed(seed, ARRIVALS)),
            backend: fastrand::Rng::with_seed(stream_seed(seed, BACKEND)),
            busy: 0,
            queue: VecDeque::new(),
            brownout,
            end,
            bucket: nanos(config.bucket),
            max_buckets,
            timeout: nanos(config.attempt_timeout),
            mean_gap_nanos: 1e9 / config.logical_calls_per_sec(),
            offered: series.clone(),
            started: series.clone(),
            succeeded: series.clone(),
            completed: series,
            attempts: 0,
            served: 0,
            wasted: 0,
            charges: 0,
            double_charges: 0,
            replayed: 0,
            unsafe_refused: 0,
            table: Vec::new(),
        };
        let first = sim.next_arrival_gap();
        sim.schedule(first, Event::NewCall);
        Ok(sim)
    }

    /// From now on, new logical calls follow `clients` (each client process
    /// gets a fresh budget, breaker and throttle); the calls already running
    /// finish as they started.
    ///
    /// # Errors
    /// [`SimError::Policy`] when the settings cannot be built; the old ones
    /// then stay.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// sim.set_clients(&Scenario::Throttle.clients())?;
    /// assert_eq!(sim.clients(), &Scenario::Throttle.clients());
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn set_clients(&mut self, clients: &Clients) -> Result<(), SimError> {
        let policy = clients.policy()?;
        let mut fresh = Vec::new();
        for _ in 0..self.config.clients {
            fresh.push(Client::new(clients)?);
        }
        self.settings = *clients;
        self.policy = policy;
        self.clients = fresh;
        Ok(())
    }

    /// The clients' current settings.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::new(&Config::small(), &Scenario::Naive.clients(), 1)?;
    /// assert_eq!(sim.clients().retries, 3);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn clients(&self) -> &Clients {
        &self.settings
    }

    /// The world the run lives in.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::new(&Config::small(), &Scenario::Naive.clients(), 1)?;
    /// assert_eq!(sim.config(), &Config::small());
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Pulls the trigger (`true`) or clears it (`false`) now: from this
    /// instant every service takes the config's `slowdown` times longer and
    /// `brownout_drop` of the calls are lost, or no longer. Pulling it while
    /// it is on, or clearing it while it is off, changes nothing. In the
    /// table's run this overrides the config's trigger from now on.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// sim.set_trigger(true);
    /// assert!(sim.trigger());
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn set_trigger(&mut self, on: bool) {
        match (on, self.trigger()) {
            (true, false) => self.brownout = (self.now, u64::MAX),
            (false, true) => self.brownout.1 = self.now,
            _ => {}
        }
    }

    /// Whether the trigger holds now.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let config = Config::small();
    /// let mut sim = Sim::new(&config, &Scenario::Naive.clients(), 1)?;
    /// sim.advance_to(config.brownout_start);
    /// assert!(sim.trigger());
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn trigger(&self) -> bool {
        self.in_brownout(self.now)
    }

    /// When the latest trigger cleared, if it has.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let config = Config::small();
    /// let mut sim = Sim::new(&config, &Scenario::Naive.clients(), 1)?;
    /// assert_eq!(sim.trigger_cleared_at(), None);
    /// sim.advance_to(config.brownout_end);
    /// assert_eq!(sim.trigger_cleared_at(), Some(config.brownout_end));
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn trigger_cleared_at(&self) -> Option<Duration> {
        let (start, end) = self.brownout;
        (start <= end && end <= self.now).then(|| Duration::from_nanos(end))
    }

    /// The virtual clock.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::new(&Config::small(), &Scenario::Naive.clients(), 1)?;
    /// sim.advance_to(Duration::from_millis(250));
    /// assert_eq!(sim.now(), Duration::from_millis(250));
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// Runs every event before `t` and sets the clock to `t` (or leaves it,
    /// if it is already past). Events at `t` itself run on the next step,
    /// so a [`set_trigger`](Self::set_trigger) at `t` applies to them.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let clients = Scenario::Throttle.clients();
    /// let mut stepped = Sim::new(&Config::small(), &clients, 3)?;
    /// for ms in (0..=14_000).step_by(17) {
    ///     stepped.advance_to(Duration::from_millis(ms));
    /// }
    /// let mut at_once = Sim::new(&Config::small(), &clients, 3)?;
    /// at_once.advance_to(Duration::from_millis(13_991));
    /// assert_eq!(stepped.offered_load(), at_once.offered_load());
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn advance_to(&mut self, t: Duration) {
        let t = nanos(t);
        while let Some(&Reverse((at, _, _))) = self.events.peek() {
            if at >= t {
                break;
            }
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Runs every event there is. A table's run ends (its calls stop
    /// starting at `duration`, and each call ends); an open-ended one never
    /// would, so there this runs nothing.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::new(&Config::small(), &Scenario::Naive.clients(), 1)?;
    /// sim.run_to_end();
    /// assert!(sim.is_finished());
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn run_to_end(&mut self) {
        if self.end == u64::MAX {
            return;
        }
        while !self.events.is_empty() {
            self.step();
        }
    }

    /// Whether nothing is left to happen (only after a table's run ended).
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::new(&Config::small(), &Scenario::Naive.clients(), 1)?;
    /// assert!(!sim.is_finished());
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.events.is_empty()
    }

    fn step(&mut self) {
        let Some(Reverse((now, _, event))) = self.events.pop() else {
            return;
        };
        self.now = self.now.max(now);
        if let Some(call) = event.call() {
            self.release(call);
        }
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
        // A call nothing names any more can never change again.
        while self.calls.front().is_some_and(|c| c.pending == 0) {
            self.calls.pop_front();
            self.first_call += 1;
        }
    }

    fn call_mut(&mut self, call: u32) -> Option<&mut SimCall> {
        let i = call.checked_sub(self.first_call)?;
        self.calls.get_mut(i as usize)
    }

    /// One more event or queued request names `call`.
    fn hold(&mut self, call: u32) {
        if let Some(c) = self.call_mut(call) {
            c.pending += 1;
        }
    }

    /// One fewer event or queued request names `call`.
    fn release(&mut self, call: u32) {
        if let Some(c) = self.call_mut(call) {
            c.pending -= 1;
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        if let Some(call) = event.call() {
            self.hold(call);
        }
        self.events.push(Reverse((at, self.next_seq, event)));
        self.next_seq += 1;
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
            .filter(|&b| b < self.max_buckets)
    }

    fn new_call(&mut self, now: u64) {
        let gap = self.next_arrival_gap();
        if now.saturating_add(gap) < self.end {
            self.schedule(now + gap, Event::NewCall);
        }
        let Some(id) = u32::try_from(self.calls.len())
            .ok()
            .and_then(|n| self.first_call.checked_add(n))
        else {
            return; // unreachable within the validated call limit
        };
        let client = self.arrivals.u32(0..self.config.clients);
        let start_bucket = self.bucket_of(now).unwrap_or(0);
        count(&mut self.started, start_bucket);
        let client = &self.clients[client as usize];
        let lifecycle = Call::with_seed(self.policy, stream_seed(self.jitter_seed, u64::from(id)))
            .budget(Rc::clone(&client.budget))
            .breaker(client.breaker.clone())
            .throttle(client.throttle.clone());
        self.calls.push_back(SimCall {
            start_bucket,
            attempt: 0,
            waiting: false,
            pending: 0,
            method: self.settings.method,
            charged: 0,
            lifecycle,
        });
        self.send(id, now);
    }

    /// Sends the next attempt of `call` — unless its lifecycle refuses (an
    /// open breaker, the adaptive throttle): then the call fails fast,
    /// unsent.
    fn send(&mut self, call: u32, now: u64) {
        let Some(c) = self.call_mut(call) else {
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
            count(&mut self.offered, b);
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
            self.hold(call);
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

    /// A worker finished a request: run it, answer it, and take the next
    /// one from the queue.
    fn served(&mut self, call: u32, attempt: u32, now: u64) {
        self.served += 1;
        let answered = self.execute(call, now);
        if self.is_waiting_for(call, attempt) {
            if answered {
                self.succeeded(call, now);
            } else {
                let unavailable = Failure::new(FailureClass::Overloaded, Replay::Rejected);
                self.failed(call, &unavailable, now);
            }
        } else {
            self.wasted += 1; // its caller gave up on it: wasted work
        }
        match self.queue.pop_front() {
            Some((next_call, next_attempt)) => {
                self.release(next_call);
                self.start_service(next_call, next_attempt, now);
            }
            None => self.busy -= 1,
        }
    }

    /// The request's side effect, when the backend finishes serving it. A
    /// `charge` bills each time it runs — unless it carries its call's
    /// idempotency key and the backend's table has run that key already,
    /// and answers with the stored receipt. `false`: the backend answered
    /// an error without running it (its table is full: 503).
    fn execute(&mut self, call: u32, now: u64) -> bool {
        let Some(method) = self.call_mut(call).map(|c| c.method) else {
            return true;
        };
        match method {
            Method::Greet => true,
            Method::Charge | Method::ChargeNonIdempotent => {
                self.bill(call);
                true
            }
            Method::ChargeWithKey => {
                if self.table.is_empty() {
                    self.table = (0..IDEMPOTENCY_SHARDS)
                        .map(|_| Shard::with_ttl(IDEMPOTENCY_TTL).unwrap_or_default())
                        .collect();
                }
                // The simulator numbers its calls; a real client draws a
                // random key (`IdempotencyKey::new`) once per logical call.
                let key = IdempotencyKey::from_u128(u128::from(call));
                let now = Instant::from_nanos(now);
                let receipt = self.charges + 1;
                let shard = &mut self.table[call as usize % IDEMPOTENCY_SHARDS];
                match shard.begin(key, CHARGE_FINGERPRINT, now) {
                    Begin::Execute(ticket) => {
                        // Stored at once: the charge and its receipt are one
                        // step here, so no repeat finds it in flight.
                        let stored = shard.complete(ticket, receipt, now).is_ok();
                        self.bill(call);
                        debug_assert!(stored);
                        true
                    }
                    Begin::Replay(_) => {
                        self.replayed += 1;
                        true
                    }
                    // 409, 422 or 503: nothing ran.
                    _ => false,
                }
            }
        }
    }

    fn bill(&mut self, call: u32) {
        self.charges += 1;
        if let Some(c) = self.call_mut(call) {
            c.charged += 1;
            if c.charged > 1 {
                self.double_charges += 1;
            }
        }
    }

    fn is_waiting_for(&self, call: u32, attempt: u32) -> bool {
        call.checked_sub(self.first_call)
            .and_then(|i| self.calls.get(i as usize))
            .is_some_and(|c| c.waiting && c.attempt == attempt)
    }

    fn succeeded(&mut self, call: u32, now: u64) {
        let done = self.bucket_of(now);
        let Some(c) = self.call_mut(call) else {
            return;
        };
        c.waiting = false;
        c.lifecycle.succeed(Instant::from_nanos(now));
        let start = c.start_bucket;
        count(&mut self.succeeded, start);
        if let Some(b) = done {
            count(&mut self.completed, b);
        }
    }

    fn failed(&mut self, call: u32, failure: &Failure, now: u64) {
        let Some(c) = self.call_mut(call) else {
            return;
        };
        c.waiting = false;
        match c.lifecycle.fail(failure, Instant::from_nanos(now)) {
            Decision::Retry { after } => {
                let after = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
                self.schedule(now.saturating_add(after), Event::Resend { call });
            }
            Decision::GiveUp(GiveUp::UnsafeToReplay) => self.unsafe_refused += 1,
            Decision::GiveUp(_) => {}
        }
    }

    /// The offered load (attempts reaching the backend ÷ its capacity) in
    /// each bucket of the config's `bucket` length, up to now (or to the end
    /// of a table's run).
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::new(&Config::small(), &Scenario::NoRetries.clients(), 1)?;
    /// sim.advance_to(Duration::from_secs(1));
    /// let load = sim.offered_load();
    /// assert!(load[..10].iter().all(|&x| x > 0.5 && x < 1.1));
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn offered_load(&self) -> Vec<f64> {
        let per_bucket = self.per_bucket_capacity();
        self.offered
            .iter()
            .map(|&n| f64::from(n) / per_bucket)
            .collect()
    }

    /// The offered load in bucket `i` alone (× capacity; zero past the
    /// series): the playground's chart and export read it bucket by bucket,
    /// `brownout --settings` prints it, so both compute it here.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::new(&Config::small(), &Scenario::NoRetries.clients(), 1)?;
    /// sim.advance_to(Duration::from_secs(1));
    /// assert_eq!(sim.offered_load_at(3), sim.offered_load()[3]);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn offered_load_at(&self, i: usize) -> f64 {
        f64::from(self.offered_at(i)) / self.per_bucket_capacity()
    }

    /// Attempts that reached the backend in bucket `i` (zero past the
    /// series).
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::new(&Config::small(), &Scenario::Naive.clients(), 1)?;
    /// assert_eq!(sim.offered_at(0), 0); // nothing has run yet
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn offered_at(&self, i: usize) -> u32 {
        self.offered.get(i).copied().unwrap_or(0)
    }

    /// The number of buckets the clock has reached (the current, partial
    /// one included), at most the table's run's series.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// sim.advance_to(Duration::from_millis(1050));
    /// assert_eq!(sim.buckets(), 11);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn buckets(&self) -> usize {
        usize::try_from(self.now / self.bucket)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .min(self.max_buckets)
    }

    fn per_bucket_capacity(&self) -> f64 {
        self.config.capacity_per_sec() * self.config.bucket.as_secs_f64()
    }

    /// The mean of `series` over the complete buckets of the last
    /// [`READOUT_WINDOW`], per bucket.
    fn recent(&self, series: &[u32]) -> f64 {
        let complete = usize::try_from(self.now / self.bucket).unwrap_or(usize::MAX);
        let width = usize::try_from(nanos(READOUT_WINDOW) / self.bucket)
            .unwrap_or(1)
            .max(1);
        let from = complete.saturating_sub(width);
        if complete == from {
            return 0.0;
        }
        let sum: u64 = (from..complete)
            .map(|i| u64::from(series.get(i).copied().unwrap_or(0)))
            .sum();
        sum as f64 / (complete - from) as f64
    }

    /// The offered load over the last second (complete buckets): the meter.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::open_ended(&Config::standard(), &Scenario::NoRetries.clients(), 1)?;
    /// sim.advance_to(Duration::from_secs(3));
    /// assert!((sim.recent_offered_load() - 0.8).abs() < 0.1); // the clients' 0.8
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn recent_offered_load(&self) -> f64 {
        self.recent(&self.offered) / self.per_bucket_capacity()
    }

    /// Logical calls that succeeded per second, over the last second.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::open_ended(&Config::standard(), &Scenario::NoRetries.clients(), 1)?;
    /// sim.advance_to(Duration::from_secs(3));
    /// assert!(sim.successes_per_sec() > 700.0); // 800 calls/s, 1 % lost
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn successes_per_sec(&self) -> f64 {
        self.recent(&self.completed) / self.config.bucket.as_secs_f64()
    }

    /// The METASTABLE badge: the trigger cleared at least
    /// [`METASTABLE_AFTER`] ago (and has not been pulled again), and the
    /// offered load over the last second is still above the backend's
    /// capacity. The cause is gone; the retries keep the overload going.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::open_ended(&Config::standard(), &Scenario::Throttle.clients(), 1)?;
    /// sim.set_trigger(true);
    /// sim.advance_to(Duration::from_secs(4));
    /// sim.set_trigger(false);
    /// sim.advance_to(Duration::from_secs(8));
    /// assert!(!sim.is_metastable()); // the throttle lets it recover
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn is_metastable(&self) -> bool {
        self.trigger_cleared_at()
            .is_some_and(|cleared| self.now() >= cleared + METASTABLE_AFTER)
            && self.recent_offered_load() > 1.0
    }

    /// The clients' `Throttle` buckets, each as a fraction of its size,
    /// averaged over the clients (retries pause at or below 0.5); `None`
    /// when the budget is not a `Throttle`.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::open_ended(&Config::standard(), &Scenario::Throttle.clients(), 1)?;
    /// assert_eq!(sim.throttle_fill(), Some(1.0)); // they start full
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn throttle_fill(&self) -> Option<f64> {
        let fills: Vec<f64> = self
            .clients
            .iter()
            .filter_map(|c| c.throttle_budget.as_ref())
            .map(|t| f64::from(t.tokens_milli()) / f64::from(t.max_tokens_milli()))
            .collect();
        (!fills.is_empty()).then(|| fills.iter().sum::<f64>() / fills.len() as f64)
    }

    /// The retries each client's `RetryBudget` would allow now, on average;
    /// `None` when the budget is not a `RetryBudget`.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::open_ended(&Config::standard(), &Scenario::RetryBudget.clients(), 1)?;
    /// assert_eq!(sim.retry_budget_available(), Some(0.0)); // nothing banked yet
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn retry_budget_available(&self) -> Option<f64> {
        let now = Instant::from_nanos(self.now);
        let balances: Vec<f64> = self
            .clients
            .iter()
            .filter_map(|c| c.ratio_budget.as_ref())
            .map(|r| r.available_milli(now) as f64 / 1000.0)
            .collect();
        (!balances.is_empty()).then(|| balances.iter().sum::<f64>() / balances.len() as f64)
    }

    /// How many clients' circuit breakers are open now.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::open_ended(&Config::standard(), &Scenario::ThrottleAndBreaker.clients(), 1)?;
    /// assert_eq!(sim.open_breakers(), 0);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn open_breakers(&self) -> u32 {
        let open = self
            .clients
            .iter()
            .filter_map(|c| c.breaker.as_ref())
            .filter(|b| b.state() == BreakerState::Open)
            .count();
        u32::try_from(open).unwrap_or(u32::MAX)
    }

    /// The clients' adaptive throttles' rejection probability now, on
    /// average; `None` without them.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::open_ended(&Config::standard(), &Scenario::ThrottleAndAdaptive.clients(), 1)?;
    /// assert_eq!(sim.adaptive_reject_probability(), Some(0.0));
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn adaptive_reject_probability(&self) -> Option<f64> {
        let now = Instant::from_nanos(self.now);
        let p: Vec<f64> = self
            .clients
            .iter()
            .filter_map(|c| c.throttle.as_ref())
            .map(|t| t.reject_probability(now))
            .collect();
        (!p.is_empty()).then(|| p.iter().sum::<f64>() / p.len() as f64)
    }

    /// Requests waiting in the backend's queue.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// assert_eq!(sim.queue_len(), 0);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Charges the backend ran (each time a `charge` request ran, whatever
    /// became of its answer).
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// assert_eq!(sim.charges(), 0);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn charges(&self) -> u64 {
        self.charges
    }

    /// Double charges: charges of a logical call beyond its first (a call
    /// billed three times counts two). Only a [`Method::Charge`] without a
    /// key, retried after a timeout, can make one.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Clients, Config, Method, Scenario, Sim};
    /// let blind = Clients { method: Method::Charge, ..Scenario::Naive.clients() };
    /// let keyed = Clients { method: Method::ChargeWithKey, ..blind };
    /// let mut runs = [blind, keyed].map(|c| Sim::open_ended(&Config::standard(), &c, 1));
    /// for sim in runs.iter_mut().flatten() {
    ///     sim.set_trigger(true);
    ///     sim.advance_to(Duration::from_secs(3));
    /// }
    /// let [blind, keyed] = runs;
    /// assert!(blind?.double_charges() > 0);
    /// assert_eq!(keyed?.double_charges(), 0);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn double_charges(&self) -> u64 {
        self.double_charges
    }

    /// Repeats of a keyed charge that the backend answered from its
    /// idempotency table instead of charging again.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// assert_eq!(sim.replayed(), 0);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    /// Calls that stormguard stopped because their next attempt would have
    /// replayed a non-idempotent request that may have run
    /// (`GiveUp::UnsafeToReplay`).
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// assert_eq!(sim.unsafe_replays_refused(), 0);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn unsafe_replays_refused(&self) -> u64 {
        self.unsafe_refused
    }

    /// Logical calls started so far.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// sim.advance_to(Duration::from_secs(1));
    /// assert!(sim.calls_started() > 700);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn calls_started(&self) -> u64 {
        self.started.iter().map(|&n| u64::from(n)).sum()
    }

    /// Logical calls that succeeded so far.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// assert_eq!(sim.calls_succeeded(), 0);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn calls_succeeded(&self) -> u64 {
        self.succeeded.iter().map(|&n| u64::from(n)).sum()
    }

    /// Attempts that reached the backend so far.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1)?;
    /// assert_eq!(sim.attempts(), 0);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// The table's numbers for the run so far — for a table's run, call
    /// it after [`run_to_end`](Self::run_to_end), as [`simulate`] does.
    ///
    /// ```
    /// use stormguard_sim::{Config, Scenario, Sim};
    /// let mut sim = Sim::new(&Config::small(), &Scenario::Naive.clients(), 1)?;
    /// sim.run_to_end();
    /// assert_eq!(sim.summary().recovered_after, None);
    /// # Ok::<(), stormguard_sim::SimError>(())
    /// ```
    pub fn summary(&self) -> Summary {
        let config = &self.config;
        let offered_load = self.offered_load();
        let buckets_in = |d: Duration| {
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
        let calls = self.calls_started();
        let good = self.calls_succeeded();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Summary {
            peak_offered_load,
            offered_load_after_trigger,
            recovered_after,
            goodput: ratio(good, calls),
            attempts_per_call: ratio(self.attempts, calls),
            wasted_work: ratio(self.wasted, self.served),
            logical_calls: calls,
        }
    }

    /// The end of the last recovery window (after `clear`) whose calls fell
    /// short of the goodput threshold, measured from the trigger clearing;
    /// `None` if the last window itself fell short, or there is none.
    fn recovery(&self, clear: usize, width: usize) -> Option<Duration> {
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
        Some(Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{BackoffKind, BudgetKind};

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// The storm's script: the trigger on from 1 s to 5 s, then watched
    /// until `until`; `check` sees the sim every 100 ms.
    fn storm(clients: &Clients, until: u64, mut check: impl FnMut(&Sim)) -> Sim {
        let mut sim = Sim::open_ended(&Config::standard(), clients, 1).unwrap();
        for t in (0..=until).step_by(100) {
            sim.advance_to(ms(t));
            if t == 1_000 {
                sim.set_trigger(true);
            }
            if t == 5_000 {
                sim.set_trigger(false);
            }
            check(&sim);
        }
        sim
    }

    #[test]
    fn stepping_gives_the_same_run_as_simulate() {
        let config = Config::small();
        for scenario in [Scenario::Naive, Scenario::ThrottleAndBreaker] {
            let whole = simulate(&config, scenario, 5).unwrap();
            let mut sim = Sim::new(&config, &scenario.clients(), 5).unwrap();
            let mut t = 0;
            while !sim.is_finished() {
                t += 33;
                sim.advance_to(ms(t));
            }
            assert_eq!(sim.offered_load(), whole.offered_load, "{scenario}");
            let s = sim.summary();
            assert_eq!(s.goodput, whole.goodput, "{scenario}");
            assert_eq!(s.recovered_after, whole.recovered_after, "{scenario}");
            assert_eq!(sim.started, whole.started, "{scenario}");
        }
    }

    #[test]
    fn a_pulled_trigger_is_the_configured_one() {
        // Pulling the trigger by hand at the config's instants gives the
        // table's run.
        let config = Config::small();
        let clients = Scenario::FullJitter.clients();
        let mut table = Sim::new(&config, &clients, 2).unwrap();
        let mut by_hand = Sim::new(
            &Config {
                brownout_start: config.duration,
                brownout_end: config.duration,
                ..config.clone()
            },
            &clients,
            2,
        )
        .unwrap();
        by_hand.advance_to(config.brownout_start);
        by_hand.set_trigger(true);
        by_hand.advance_to(config.brownout_end);
        by_hand.set_trigger(false);
        table.run_to_end();
        by_hand.run_to_end();
        assert_eq!(table.offered_load(), by_hand.offered_load());
    }

    #[test]
    fn naive_retries_go_metastable_and_stay_so_but_not_before_the_trigger_clears() {
        let sim = storm(&Scenario::Naive.clients(), 12_000, |sim| {
            let t = sim.now();
            if t < ms(7_000) {
                assert!(!sim.is_metastable(), "at {t:?}");
            } else {
                assert!(
                    sim.is_metastable(),
                    "at {t:?}: {}",
                    sim.recent_offered_load()
                );
            }
        });
        assert!(sim.recent_offered_load() > 2.5);
    }

    #[test]
    fn budgets_never_go_metastable() {
        let throttle = Scenario::Throttle.clients();
        let ratio = Scenario::RetryBudget.clients();
        let none = Scenario::NoRetries.clients();
        for clients in [throttle, ratio, none] {
            storm(&clients, 12_000, |sim| {
                assert!(!sim.is_metastable(), "{clients:?} at {:?}", sim.now());
                assert!(sim.now() < ms(7_000) || sim.recent_offered_load() < 1.0);
            });
        }
    }

    #[test]
    fn a_throttle_switched_on_mid_storm_breaks_it() {
        let mut sim = storm(&Scenario::Naive.clients(), 8_000, |_| {});
        assert!(sim.is_metastable());
        sim.set_clients(&Scenario::Throttle.clients()).unwrap();
        assert_eq!(sim.throttle_fill(), Some(1.0));
        sim.advance_to(ms(12_000));
        assert!(!sim.is_metastable(), "{}", sim.recent_offered_load());
        assert!(sim.recent_offered_load() < 1.0);
        assert!(sim.successes_per_sec() > 700.0);
    }

    #[test]
    fn only_a_blind_charge_bills_twice() {
        let naive = Scenario::Naive.clients();
        let with = |method| Clients { method, ..naive };
        let blind = storm(&with(Method::Charge), 8_000, |_| {});
        assert!(blind.double_charges() > 100, "{}", blind.double_charges());
        assert_eq!(blind.unsafe_replays_refused(), 0);

        let declared = storm(&with(Method::ChargeNonIdempotent), 8_000, |_| {});
        assert_eq!(declared.double_charges(), 0);
        assert!(declared.unsafe_replays_refused() > 100);
        assert!(declared.charges() > 0);
        // Refusing the replays also starves the storm.
        assert!(!declared.is_metastable());

        let keyed = storm(&with(Method::ChargeWithKey), 8_000, |_| {});
        assert_eq!(keyed.double_charges(), 0);
        assert!(keyed.replayed() > 100, "{}", keyed.replayed());
        assert!(keyed.is_metastable()); // a key stops double bills, not storms

        let greet = storm(&naive, 8_000, |_| {});
        assert_eq!((greet.charges(), greet.double_charges()), (0, 0));
    }

    #[test]
    fn the_throttle_drains_to_half_in_the_brownout_and_refills_after() {
        let clients = Clients {
            budget: BudgetKind::Throttle {
                max_tokens: 10,
                token_ratio: 0.1,
            },
            backoff: BackoffKind::FullJitter,
            ..Scenario::Naive.clients()
        };
        let mut lowest: f64 = 1.0;
        let sim = storm(&clients, 12_000, |sim| {
            lowest = lowest.min(sim.throttle_fill().unwrap());
        });
        assert!(lowest <= 0.5, "{lowest}");
        assert!(sim.throttle_fill().unwrap() > 0.9);
    }

    #[test]
    fn an_open_ended_run_forgets_finished_calls() {
        let mut sim = Sim::open_ended(&Config::standard(), &Scenario::Naive.clients(), 1).unwrap();
        sim.set_trigger(true);
        sim.advance_to(Duration::from_secs(20));
        // 16,000 calls started; the ones in memory are those an event may
        // still name (a few seconds' worth at most).
        assert!(sim.calls_started() > 15_000);
        assert!(sim.calls.len() < 3_000, "{}", sim.calls.len());
        assert_eq!(sim.buckets(), 201);
    }
}
