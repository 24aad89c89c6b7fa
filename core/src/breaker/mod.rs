//! A lock-free circuit breaker whose half-open state admits exactly the
//! configured number of probes.

use core::fmt;
use core::time::Duration;

use crate::config::{expect_valid, ConfigError, ConfigErrorKind};
use crate::metrics::Metrics;
use crate::sync::{const_unless_loom, transition_u64, AtomicU64, Ordering};
use crate::time::{duration_to_nanos, Instant};

mod word;

use word::{
    deadline_generation, deadline_nanos, deadline_word, field, generation, next_generation,
    not_older, phase, word, CLOSED, GEN_MASK, HALF_OPEN, OPEN,
};

/// The breaker's state.
///
/// ```
/// use stormguard::{BreakerState, CircuitBreaker};
/// assert_eq!(CircuitBreaker::default().state(), BreakerState::Closed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls are refused at once until the recovery timeout has passed.
    Open,
    /// A limited number of probe calls test whether the service recovered.
    HalfOpen,
}

impl BreakerState {
    /// `"closed"`, `"open"` or `"half_open"`.
    ///
    /// ```
    /// assert_eq!(stormguard::BreakerState::HalfOpen.as_str(), "half_open");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the breaker is open (or half-open with every probe slot
/// taken). Try again in `retry_in` at the earliest.
///
/// ```
/// use core::time::Duration;
/// let open = stormguard::Open { retry_in: Duration::from_secs(3) };
/// assert_eq!(open.to_string(), "circuit open; retry in 3000 ms");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Open {
    /// When a call might next be let through (an upper bound when a probe
    /// is in flight: a successful probe closes the breaker sooner).
    pub retry_in: Duration,
}

impl fmt::Display for Open {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit open; retry in {} ms", self.retry_in.as_millis())
    }
}

impl core::error::Error for Open {}

/// Stops calls to a service that is down, and lets a few probes test its
/// recovery.
///
/// - **Closed → Open** after `failure_threshold` consecutive failures, or
///   when the failure rate over a count window reaches `failure_rate` after
///   at least `min_calls` calls (the window is tumbling: it restarts every
///   `window` calls).
/// - **Open → HalfOpen** once `recovery_timeout` has passed, on the next
///   [`try_acquire`](CircuitBreaker::try_acquire).
/// - **HalfOpen** admits exactly `half_open_probes` callers (default 1),
///   however many race for it; every other caller is refused at once with
///   [`Open`]. All probes succeeding → **Closed**; any probe failing →
///   **Open** with a fresh timeout.
///
/// Two things hand-rolled breakers get wrong are handled here. A probe whose
/// [`Permit`] is dropped without a verdict gives its slot back, and a probe
/// that never reports at all (its task hung, its permit was leaked) lets a
/// new probe round start after `probe_timeout` (default: the recovery
/// timeout, as Polly does) — the breaker never wedges in half-open. And
/// every state carries a generation number that each permit remembers: the
/// verdict of a permit from an earlier round (a slow call that started
/// before the breaker opened) changes nothing.
///
/// # Lock-freedom
/// The state, generation and counters are one `AtomicU64`, changed only by
/// compare-and-swap; the open/probe deadline is a second word tagged with
/// the generation it belongs to. Nothing locks, allocates or reads a clock.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{BreakerState, CircuitBreaker, Instant};
///
/// let breaker = CircuitBreaker::new(2, Duration::from_secs(5))?;
/// let t = Instant::from_secs(100);
/// for _ in 0..2 {
///     breaker.try_acquire(t).unwrap().failure(t);
/// }
/// assert_eq!(breaker.state(), BreakerState::Open);
/// let refused = breaker.try_acquire(t + Duration::from_secs(1)).unwrap_err();
/// assert_eq!(refused.retry_in, Duration::from_secs(4));
///
/// let later = t + Duration::from_secs(5);
/// let probe = breaker.try_acquire(later).unwrap(); // the one probe
/// assert!(breaker.try_acquire(later).is_err()); // everyone else: refused
/// probe.success(later);
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
pub struct CircuitBreaker {
    state: AtomicU64,
    deadline: AtomicU64,
    failure_threshold: u16,
    rate_permille: u16,
    window: u16,
    min_calls: u16,
    half_open_probes: u16,
    recovery_nanos: u64,
    probe_nanos: u64,
    metrics: Option<&'static Metrics>,
}

/// The unvalidated settings of a [`CircuitBreaker`].
///
/// ```
/// use core::time::Duration;
/// let breaker = stormguard::CircuitBreaker::builder()
///     .failure_threshold(3)
///     .recovery_timeout(Duration::from_secs(10))
///     .half_open_probes(2)
///     .build()?;
/// assert_eq!(breaker.half_open_probes(), 2);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "a builder does nothing until `build()`"]
pub struct CircuitBreakerBuilder {
    failure_threshold: u32,
    failure_rate: Option<(f64, u32, u32)>,
    recovery_timeout: Duration,
    half_open_probes: u32,
    probe_timeout: Option<Duration>,
    metrics: Option<&'static Metrics>,
}

/// What a verdict did to the state.
enum Effect {
    None,
    Opened(u16),
    Closed,
}

impl CircuitBreaker {
    /// A builder with the defaults: open after 5 consecutive failures, no
    /// failure-rate rule, recover after 30 s, one
    /// half-open probe, a probe timeout equal to the recovery timeout.
    ///
    /// ```
    /// let b = stormguard::CircuitBreaker::builder().build()?;
    /// assert_eq!(b.failure_threshold(), 5);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn builder() -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            failure_threshold: 5,
            failure_rate: None,
            recovery_timeout: Duration::from_secs(30),
            half_open_probes: 1,
            probe_timeout: None,
            metrics: None,
        }
    }

    const_unless_loom! {
        /// Opens after `failure_threshold` consecutive failures; half-opens
        /// after `recovery_timeout`; one probe.
        ///
        /// # Errors
        /// See [`CircuitBreakerBuilder::build`].
        ///
        /// ```
        /// use core::time::Duration;
        /// let err = stormguard::CircuitBreaker::new(0, Duration::from_secs(1)).unwrap_err();
        /// assert_eq!(err.field(), "failure_threshold");
        /// ```
        pub const fn new(failure_threshold: u32, recovery_timeout: Duration) -> Result<CircuitBreaker, ConfigError> {
            CircuitBreaker::builder()
                .failure_threshold(failure_threshold)
                .recovery_timeout(recovery_timeout)
                .build()
        }
    }

    const_unless_loom! {
        /// resilience4j's defaults: open when ≥ 50 % of the last 100 calls
        /// failed (after at least 100 calls), stay open 60 s, then 10 probes.
        /// (Consecutive failures alone never open it.)
        ///
        /// ```
        /// assert_eq!(stormguard::CircuitBreaker::resilience4j().half_open_probes(), 10);
        /// ```
        pub const fn resilience4j() -> CircuitBreaker {
            const RESILIENCE4J: CircuitBreakerBuilder = CircuitBreaker::builder()
                .failure_threshold(u16::MAX as u32)
                .failure_rate(0.5, 100, 100)
                .recovery_timeout(Duration::from_secs(60))
                .half_open_probes(10);
            const _: () = expect_valid(RESILIENCE4J.validate());
            RESILIENCE4J.build_unchecked()
        }
    }

    /// Asks to make a call at `now`.
    ///
    /// Closed: a permit. Open: refused until the recovery timeout has
    /// passed; the first caller after it becomes the probe (the breaker
    /// turns half-open). Half-open: a probe permit while probe slots are
    /// free, otherwise refused. Report the call's outcome on the permit.
    /// Calling with a `now` earlier than a previous one only makes the
    /// breaker stay open longer; it never panics.
    ///
    /// # Errors
    /// [`Open`] with the time until a call might be let through.
    ///
    /// ```
    /// use core::time::Duration;
    /// let breaker = stormguard::CircuitBreaker::new(1, Duration::from_secs(1))?;
    /// let permit = breaker.try_acquire(stormguard::Instant::ZERO).unwrap();
    /// permit.success(stormguard::Instant::ZERO);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self, now: Instant) -> Result<Permit<'_>, Open> {
        let limit = self.half_open_probes;
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let gen = generation(current);
            let (next, started_round) = match phase(current) {
                CLOSED => return Ok(Permit::new(self, gen, false)),
                OPEN => match self.deadline_of(gen, now) {
                    Some(Duration::ZERO) => (word(HALF_OPEN, next_generation(gen), 0, 1, 0), true),
                    Some(left) => return Err(self.refuse(left)),
                    None => match self.reload_if_changed(current) {
                        Some(actual) => {
                            current = actual;
                            continue;
                        }
                        None => return Err(self.refuse(Duration::from_nanos(self.recovery_nanos))),
                    },
                },
                _ => {
                    let (admitted, succeeded) = (field(current, 1), field(current, 0));
                    if admitted < limit {
                        (word(HALF_OPEN, gen, 0, admitted + 1, succeeded), false)
                    } else {
                        match self.deadline_of(gen, now) {
                            // Every slot is taken and the probes are overdue:
                            // a new round, fencing the lost probes out.
                            Some(Duration::ZERO) => {
                                (word(HALF_OPEN, next_generation(gen), 0, 1, 0), true)
                            }
                            Some(left) => return Err(self.refuse(left)),
                            None => match self.reload_if_changed(current) {
                                Some(actual) => {
                                    current = actual;
                                    continue;
                                }
                                None => {
                                    return Err(self.refuse(Duration::from_nanos(self.probe_nanos)))
                                }
                            },
                        }
                    }
                }
            };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let gen = generation(next);
                    if started_round {
                        self.set_deadline(gen, now, self.probe_nanos);
                        if let Some(m) = self.metrics {
                            m.breaker_half_opened();
                        }
                    }
                    return Ok(Permit::new(self, gen, true));
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// The state word, if it moved on from `seen`: a deadline that does not
    /// match a stale snapshot of the state proves nothing, so the caller
    /// must look again rather than refuse.
    fn reload_if_changed(&self, seen: u64) -> Option<u64> {
        let actual = self.state.load(Ordering::Acquire);
        (actual != seen).then_some(actual)
    }

    /// The time left before the deadline of generation `gen`: `Some(ZERO)`
    /// once it has passed, `None` while the deadline word still belongs to
    /// an older generation (the transition that set `gen` has not stored
    /// its deadline yet).
    fn deadline_of(&self, gen: u16, now: Instant) -> Option<Duration> {
        let stored = self.deadline.load(Ordering::Acquire);
        if deadline_generation(stored) != gen {
            return None;
        }
        let left = deadline_nanos(stored).saturating_sub(now.as_nanos() as u128);
        Some(Duration::from_nanos(left.min(u64::MAX as u128) as u64))
    }

    /// Stores generation `gen`'s deadline, unless a newer generation's is
    /// already there (a slow writer must not overwrite a fresher state's
    /// deadline, or the breaker could wedge).
    fn set_deadline(&self, gen: u16, now: Instant, timeout_nanos: u64) {
        let value = deadline_word(gen, now, timeout_nanos);
        let _ = transition_u64(&self.deadline, |stored| {
            if not_older(gen, deadline_generation(stored)) {
                Ok(((), value))
            } else {
                Err(())
            }
        });
    }

    fn refuse(&self, retry_in: Duration) -> Open {
        if let Some(m) = self.metrics {
            m.breaker_rejected();
        }
        Open { retry_in }
    }

    fn open(&self, gen: u16, now: Instant) {
        self.set_deadline(gen, now, self.recovery_nanos);
        if let Some(m) = self.metrics {
            m.breaker_opened();
        }
    }

    /// A verdict from a permit of generation `gen`.
    #[inline]
    fn record(&self, gen: u16, probe: bool, success: bool, now: Instant) {
        let effect = transition_u64(&self.state, |current| {
            if generation(current) != gen {
                return Err(()); // a stale permit: fenced out
            }
            match (phase(current), probe) {
                (CLOSED, false) => Ok(self.closed_verdict(current, gen, success)),
                (HALF_OPEN, true) if success => {
                    let succeeded = field(current, 0) + 1;
                    if succeeded >= self.half_open_probes {
                        Ok((Effect::Closed, word(CLOSED, next_generation(gen), 0, 0, 0)))
                    } else {
                        Ok((
                            Effect::None,
                            word(HALF_OPEN, gen, 0, field(current, 1), succeeded),
                        ))
                    }
                }
                (HALF_OPEN, true) => {
                    let gen = next_generation(gen);
                    Ok((Effect::Opened(gen), word(OPEN, gen, 0, 0, 0)))
                }
                _ => Err(()),
            }
        });
        match effect {
            Ok(Effect::Opened(gen)) => self.open(gen, now),
            Ok(Effect::Closed) => {
                if let Some(m) = self.metrics {
                    m.breaker_closed();
                }
            }
            Ok(Effect::None) | Err(()) => {}
        }
    }

    /// A verdict in the closed state: count it, and open when a threshold
    /// is reached.
    #[inline]
    fn closed_verdict(&self, current: u64, gen: u16, success: bool) -> (Effect, u64) {
        let consecutive = if success {
            0
        } else {
            field(current, 2).saturating_add(1)
        };
        // Without a failure-rate rule nothing reads the count window: it
        // stays at zero, so a success after a success writes nothing (the
        // healthy path is a plain load of the shared word).
        let counting = self.rate_permille > 0;
        let calls = if counting { field(current, 1) + 1 } else { 0 };
        let failures = if counting {
            field(current, 0) + !success as u16
        } else {
            0
        };
        let too_many_in_a_row = consecutive >= self.failure_threshold;
        let rate_reached = counting
            && calls >= self.min_calls
            && failures as u32 * 1000 >= self.rate_permille as u32 * calls as u32;
        if !success && (too_many_in_a_row || rate_reached) {
            let gen = next_generation(gen);
            return (Effect::Opened(gen), word(OPEN, gen, 0, 0, 0));
        }
        // The count window is tumbling: it restarts when full.
        let (calls, failures) = if calls >= self.window {
            (0, 0)
        } else {
            (calls, failures)
        };
        (
            Effect::None,
            word(CLOSED, gen, consecutive, calls, failures),
        )
    }

    /// Reports a success for a detached permit (see [`Permit::detach`]).
    ///
    /// ```
    /// use stormguard::{CircuitBreaker, Instant};
    /// let b = CircuitBreaker::default();
    /// let token = b.try_acquire(Instant::ZERO).unwrap().detach();
    /// b.record_success(token, Instant::ZERO);
    /// ```
    #[inline]
    pub fn record_success(&self, token: PermitToken, now: Instant) {
        self.record(token.generation, token.probe, true, now);
    }

    /// Reports a failure for a detached permit (see [`Permit::detach`]).
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{BreakerState, CircuitBreaker, Instant};
    /// let b = CircuitBreaker::new(1, Duration::from_secs(1))?;
    /// let token = b.try_acquire(Instant::ZERO).unwrap().detach();
    /// b.record_failure(token, Instant::ZERO);
    /// assert_eq!(b.state(), BreakerState::Open);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    #[inline]
    pub fn record_failure(&self, token: PermitToken, now: Instant) {
        self.record(token.generation, token.probe, false, now);
    }

    /// Gives a detached permit back without a verdict (the call was
    /// cancelled): a probe's slot is freed, anything else changes nothing.
    ///
    /// ```
    /// use stormguard::{CircuitBreaker, Instant};
    /// let b = CircuitBreaker::default();
    /// b.abandon(b.try_acquire(Instant::ZERO).unwrap().detach());
    /// ```
    pub fn abandon(&self, token: PermitToken) {
        if token.probe {
            self.release(token.generation);
        }
    }

    /// A probe permit dropped without a verdict gives its slot back.
    #[inline]
    fn release(&self, gen: u16) {
        let _ = transition_u64(&self.state, |current| {
            let admitted = field(current, 1);
            if phase(current) == HALF_OPEN
                && generation(current) == gen
                && admitted > field(current, 0)
            {
                Ok(((), word(HALF_OPEN, gen, 0, admitted - 1, field(current, 0))))
            } else {
                Err(())
            }
        });
    }

    /// The state now (an open breaker whose timeout has passed reads as
    /// open until a caller turns it half-open).
    ///
    /// ```
    /// assert_eq!(stormguard::CircuitBreaker::default().state().as_str(), "closed");
    /// ```
    pub fn state(&self) -> BreakerState {
        match phase(self.state.load(Ordering::Acquire)) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// Consecutive failures that open the breaker.
    ///
    /// ```
    /// assert_eq!(stormguard::CircuitBreaker::default().failure_threshold(), 5);
    /// ```
    pub const fn failure_threshold(&self) -> u32 {
        self.failure_threshold as u32
    }

    /// Probes admitted in half-open.
    ///
    /// ```
    /// assert_eq!(stormguard::CircuitBreaker::default().half_open_probes(), 1);
    /// ```
    pub const fn half_open_probes(&self) -> u32 {
        self.half_open_probes as u32
    }

    /// How long the breaker stays open.
    ///
    /// ```
    /// use core::time::Duration;
    /// assert_eq!(stormguard::CircuitBreaker::default().recovery_timeout(), Duration::from_secs(30));
    /// ```
    pub const fn recovery_timeout(&self) -> Duration {
        Duration::from_nanos(self.recovery_nanos)
    }
}

impl Default for CircuitBreaker {
    /// The [`CircuitBreaker::builder`] defaults.
    fn default() -> Self {
        const DEFAULTS: CircuitBreakerBuilder = CircuitBreaker::builder();
        const _: () = expect_valid(DEFAULTS.validate());
        DEFAULTS.build_unchecked()
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.state())
            .field("failure_threshold", &self.failure_threshold)
            .field("recovery_timeout", &self.recovery_timeout())
            .field("half_open_probes", &self.half_open_probes)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerBuilder {
    /// Consecutive failures that open the breaker, in 1..=65535.
    ///
    /// ```
    /// let b = stormguard::CircuitBreaker::builder().failure_threshold(3).build()?;
    /// assert_eq!(b.failure_threshold(), 3);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn failure_threshold(mut self, failures: u32) -> Self {
        self.failure_threshold = failures;
        self
    }

    /// Also open when at least `rate` (in (0, 1]) of the calls in a count
    /// window of `window` calls failed, once `min_calls` calls were seen.
    ///
    /// ```
    /// let b = stormguard::CircuitBreaker::builder().failure_rate(0.5, 20, 10).build();
    /// assert!(b.is_ok());
    /// ```
    pub const fn failure_rate(mut self, rate: f64, window: u32, min_calls: u32) -> Self {
        self.failure_rate = Some((rate, window, min_calls));
        self
    }

    /// How long the breaker stays open before letting a probe through.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::CircuitBreaker::builder().recovery_timeout(Duration::from_secs(5)).build()?;
    /// assert_eq!(b.recovery_timeout(), Duration::from_secs(5));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn recovery_timeout(mut self, timeout: Duration) -> Self {
        self.recovery_timeout = timeout;
        self
    }

    /// How many probes half-open admits, in 1..=1000 (all must succeed to
    /// close).
    ///
    /// ```
    /// let err = stormguard::CircuitBreaker::builder().half_open_probes(0).build().unwrap_err();
    /// assert_eq!(err.field(), "half_open_probes");
    /// ```
    pub const fn half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes;
        self
    }

    /// How long probes may stay silent before a new probe round starts
    /// (default: the recovery timeout).
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::CircuitBreaker::builder().probe_timeout(Duration::from_secs(2)).build();
    /// assert!(b.is_ok());
    /// ```
    pub const fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = Some(timeout);
        self
    }

    /// Counts transitions and refusals in `metrics`.
    ///
    /// ```
    /// static M: stormguard::Metrics = stormguard::Metrics::new();
    /// let b = stormguard::CircuitBreaker::builder().metrics(&M).build();
    /// assert!(b.is_ok());
    /// ```
    pub const fn metrics(mut self, metrics: &'static Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    const_unless_loom! {
        /// Validates the settings.
        ///
        /// # Errors
        /// `failure_threshold` outside 1..=65535; `failure_rate` not in
        /// (0, 1], or its window outside 1..=65535, or `min_calls` outside
        /// 1..=window; `recovery_timeout` or `probe_timeout` zero;
        /// `half_open_probes` outside 1..=1000.
        ///
        /// ```
        /// let err = stormguard::CircuitBreaker::builder().failure_rate(1.5, 10, 10).build().unwrap_err();
        /// assert_eq!(err.field(), "failure_rate");
        /// ```
        pub const fn build(self) -> Result<CircuitBreaker, ConfigError> {
            match self.validate() {
                Ok(()) => Ok(self.build_unchecked()),
                Err(error) => Err(error),
            }
        }
    }

    /// The checks of [`build`](CircuitBreakerBuilder::build).
    const fn validate(&self) -> Result<(), ConfigError> {
        if self.failure_threshold == 0 {
            return Err(ConfigError::new("failure_threshold", ConfigErrorKind::Zero));
        }
        if self.failure_threshold > u16::MAX as u32 {
            return Err(ConfigError::new(
                "failure_threshold",
                ConfigErrorKind::OutOfRange("at most 65535"),
            ));
        }
        if let Some((rate, window, min_calls)) = self.failure_rate {
            if !rate.is_finite() {
                return Err(ConfigError::new("failure_rate", ConfigErrorKind::NotFinite));
            }
            if rate <= 0.0 || rate > 1.0 {
                return Err(ConfigError::new(
                    "failure_rate",
                    ConfigErrorKind::OutOfRange("in (0, 1]"),
                ));
            }
            if window == 0 || window > u16::MAX as u32 {
                return Err(ConfigError::new(
                    "failure_rate.window",
                    ConfigErrorKind::OutOfRange("between 1 and 65535"),
                ));
            }
            if min_calls == 0 || min_calls > window {
                return Err(ConfigError::new(
                    "failure_rate.min_calls",
                    ConfigErrorKind::OutOfRange("between 1 and the window"),
                ));
            }
        }
        if self.recovery_timeout.is_zero() {
            return Err(ConfigError::new("recovery_timeout", ConfigErrorKind::Zero));
        }
        if self.half_open_probes == 0 || self.half_open_probes > 1000 {
            return Err(ConfigError::new(
                "half_open_probes",
                ConfigErrorKind::OutOfRange("between 1 and 1000"),
            ));
        }
        if let Some(timeout) = self.probe_timeout {
            if timeout.is_zero() {
                return Err(ConfigError::new("probe_timeout", ConfigErrorKind::Zero));
            }
        }
        Ok(())
    }

    const_unless_loom! {
        /// The breaker, from settings [`validate`](Self::validate) accepted.
        const fn build_unchecked(self) -> CircuitBreaker {
            let (rate_permille, window, min_calls) = match self.failure_rate {
                None => (0, u16::MAX, u16::MAX),
                Some((rate, window, min_calls)) => {
                    // At least 1 per mille, so a tiny rate is not "off".
                    let permille = (rate * 1000.0 + 1e-6) as u16;
                    (if permille == 0 { 1 } else { permille }, window as u16, min_calls as u16)
                }
            };
            let recovery_nanos = duration_to_nanos(self.recovery_timeout);
            let probe_nanos = match self.probe_timeout {
                Some(timeout) => duration_to_nanos(timeout),
                None => recovery_nanos,
            };
            CircuitBreaker {
                state: AtomicU64::new(word(CLOSED, 0, 0, 0, 0)),
                deadline: AtomicU64::new(0),
                failure_threshold: self.failure_threshold as u16,
                rate_permille,
                window,
                min_calls,
                half_open_probes: self.half_open_probes as u16,
                recovery_nanos,
                probe_nanos,
                metrics: self.metrics,
            }
        }
    }
}

/// Permission to make one call; report how it went.
///
/// [`success`](Permit::success) and [`failure`](Permit::failure) consume the
/// permit, so a call reports once. A permit dropped without a verdict (the
/// call was cancelled) changes nothing — except that a probe's slot is given
/// back so another caller can probe. Verdicts of permits from an earlier
/// breaker generation are ignored.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{BreakerState, CircuitBreaker, Instant};
/// let breaker = CircuitBreaker::new(1, Duration::from_secs(1))?;
/// let slow = breaker.try_acquire(Instant::ZERO).unwrap(); // started while closed
/// breaker.try_acquire(Instant::ZERO).unwrap().failure(Instant::ZERO); // opens it
/// slow.success(Instant::ZERO); // a stale verdict: does not close it
/// assert_eq!(breaker.state(), BreakerState::Open);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[must_use = "report the call's outcome with `success` or `failure`"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u16,
    probe: bool,
    reported: bool,
}

impl<'a> Permit<'a> {
    #[inline]
    fn new(breaker: &'a CircuitBreaker, generation: u16, probe: bool) -> Self {
        Permit {
            breaker,
            generation,
            probe,
            reported: false,
        }
    }

    /// Whether this call is a half-open probe.
    ///
    /// ```
    /// let b = stormguard::CircuitBreaker::default();
    /// assert!(!b.try_acquire(stormguard::Instant::ZERO).unwrap().is_probe());
    /// ```
    pub const fn is_probe(&self) -> bool {
        self.probe
    }

    /// The permit as a plain value, without the borrow of its breaker, for
    /// callers that cannot hold a borrow (a language binding, a struct that
    /// owns its breaker). Report it with [`CircuitBreaker::record_success`],
    /// [`CircuitBreaker::record_failure`] or [`CircuitBreaker::abandon`] on
    /// the same breaker; a token that is never reported frees its probe
    /// slot only when the probe timeout passes.
    ///
    /// ```
    /// let b = stormguard::CircuitBreaker::default();
    /// let token = b.try_acquire(stormguard::Instant::ZERO).unwrap().detach();
    /// assert!(!token.is_probe());
    /// ```
    pub fn detach(mut self) -> PermitToken {
        self.reported = true;
        PermitToken {
            generation: self.generation,
            probe: self.probe,
        }
    }

    /// The call succeeded.
    ///
    /// ```
    /// let b = stormguard::CircuitBreaker::default();
    /// b.try_acquire(stormguard::Instant::ZERO).unwrap().success(stormguard::Instant::ZERO);
    /// ```
    #[inline]
    pub fn success(mut self, now: Instant) {
        self.reported = true;
        self.breaker.record(self.generation, self.probe, true, now);
    }

    /// The call failed in a way that counts against the service (report
    /// client errors such as a 400 as `success`, or drop the permit: the
    /// service answered).
    ///
    /// ```
    /// let b = stormguard::CircuitBreaker::default();
    /// b.try_acquire(stormguard::Instant::ZERO).unwrap().failure(stormguard::Instant::ZERO);
    /// ```
    #[inline]
    pub fn failure(mut self, now: Instant) {
        self.reported = true;
        self.breaker.record(self.generation, self.probe, false, now);
    }
}

/// A detached [`Permit`]: the breaker generation it belongs to and whether
/// it is a probe. `Copy`, two bytes and a flag.
///
/// ```
/// let b = stormguard::CircuitBreaker::default();
/// let token = b.try_acquire(stormguard::Instant::ZERO).unwrap().detach();
/// b.record_success(token, stormguard::Instant::ZERO);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PermitToken {
    generation: u16,
    probe: bool,
}

impl PermitToken {
    /// The token as a `u32` (generation and probe flag), for a binding that
    /// hands it to another language and back.
    ///
    /// ```
    /// use stormguard::{CircuitBreaker, Instant, PermitToken};
    /// let b = CircuitBreaker::default();
    /// let token = b.try_acquire(Instant::ZERO).unwrap().detach();
    /// assert_eq!(PermitToken::from_bits(token.to_bits()), token);
    /// ```
    pub const fn to_bits(self) -> u32 {
        ((self.generation as u32) << 1) | self.probe as u32
    }

    /// A token from [`to_bits`](PermitToken::to_bits). Bits that did not
    /// come from `to_bits` make a token of some generation: reported, it is
    /// fenced out unless that generation is the breaker's current one.
    ///
    /// ```
    /// use stormguard::PermitToken;
    /// assert_eq!(PermitToken::from_bits(0b11).to_bits(), 0b11);
    /// ```
    pub const fn from_bits(bits: u32) -> Self {
        PermitToken {
            generation: ((bits >> 1) as u16) & GEN_MASK,
            probe: bits & 1 == 1,
        }
    }

    /// Whether the permit is a half-open probe.
    ///
    /// ```
    /// let b = stormguard::CircuitBreaker::default();
    /// assert!(!b.try_acquire(stormguard::Instant::ZERO).unwrap().detach().is_probe());
    /// ```
    pub const fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.release(self.generation);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("generation", &self.generation)
            .field("probe", &self.probe)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::format;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_deadline_not_stored_yet_refuses_for_the_whole_timeout() {
        // Another thread has moved the state word to a new generation and
        // not yet stored that generation's deadline: a caller that sees the
        // word unchanged on a second look refuses for the whole timeout
        // rather than guessing from the older generation's deadline.
        let b = CircuitBreaker::builder()
            .failure_threshold(1)
            .recovery_timeout(SEC * 5)
            .probe_timeout(SEC * 3)
            .build()
            .unwrap();
        b.try_acquire(at(0)).unwrap().failure(at(0));
        assert_eq!(b.state(), BreakerState::Open);
        let gen = generation(b.state.load(Ordering::Acquire));

        let gen = next_generation(gen);
        b.state.store(word(OPEN, gen, 0, 0, 0), Ordering::Release);
        assert_eq!(b.try_acquire(at(100)).unwrap_err().retry_in, SEC * 5);

        let gen = next_generation(gen);
        b.state
            .store(word(HALF_OPEN, gen, 0, 1, 0), Ordering::Release);
        assert_eq!(b.try_acquire(at(200)).unwrap_err().retry_in, SEC * 3);
    }

    #[test]
    fn a_failure_rate_below_the_threshold_keeps_it_closed() {
        // 50 % over windows of 10 calls, the consecutive rule out of reach.
        let b = CircuitBreaker::builder()
            .failure_threshold(100)
            .failure_rate(0.5, 10, 10)
            .build()
            .unwrap();
        for i in 0..10 {
            let p = b.try_acquire(at(i)).unwrap();
            if i % 3 == 0 {
                p.failure(at(i)); // calls 0, 3, 6 and 9: 4 of 10
            } else {
                p.success(at(i));
            }
        }
        assert_eq!(b.state(), BreakerState::Closed);
        // The next window: 5 failures of 10 reach the rate.
        for i in 10..20 {
            let p = b.try_acquire(at(i)).unwrap();
            if i % 2 == 1 {
                p.failure(at(i));
            } else {
                p.success(at(i));
            }
        }
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_stale_probe_given_back_frees_no_slot_of_a_later_round() {
        let b = CircuitBreaker::builder()
            .failure_threshold(1)
            .recovery_timeout(SEC)
            .probe_timeout(SEC)
            .failure_rate(0.5, 100, 100)
            .build()
            .unwrap();
        b.try_acquire(at(0)).unwrap().failure(at(0));
        let lost = b.try_acquire(at(1)).unwrap().detach();
        // The probe is overdue: a new round, whose probe is in flight.
        let second = b.try_acquire(at(3)).unwrap().detach();
        b.abandon(lost);
        assert!(b.try_acquire(at(3)).is_err(), "the lost probe freed a slot");
        // The second probe closes the breaker; a healthy call is counted.
        b.record_success(second, at(3));
        assert_eq!(b.state(), BreakerState::Closed);
        b.try_acquire(at(3)).unwrap().success(at(3));
        b.abandon(lost);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_probe_given_back_twice_frees_one_slot() {
        let b = CircuitBreaker::builder()
            .failure_threshold(1)
            .recovery_timeout(SEC)
            .half_open_probes(2)
            .build()
            .unwrap();
        assert_eq!(b.failure_threshold(), 1);
        assert_eq!(b.half_open_probes(), 2);
        b.try_acquire(at(0)).unwrap().failure(at(0));
        let first = b.try_acquire(at(1)).unwrap().detach();
        let second = b.try_acquire(at(1)).unwrap().detach();
        b.record_success(first, at(1));
        b.abandon(second);
        b.abandon(second);
        let third = b.try_acquire(at(1)).unwrap();
        assert!(b.try_acquire(at(1)).is_err(), "one slot was freed twice");
        third.success(at(1));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn validation_accepts_its_bounds() {
        let b = CircuitBreaker::builder;
        assert!(b().failure_rate(1.0, 10, 10).build().is_ok());
        let over = b().failure_rate(1.5, 10, 10).build().unwrap_err();
        assert_eq!(over.field(), "failure_rate");
        assert!(b().failure_rate(0.001, 65_535, 1).build().is_ok());
        assert!(b()
            .failure_threshold(65_535)
            .half_open_probes(1000)
            .build()
            .is_ok());
    }

    #[test]
    fn permit_tokens_round_trip_through_bits() {
        let token = |generation, probe| PermitToken { generation, probe };
        assert_eq!(token(5, true).to_bits(), 0b1011);
        assert_eq!(token(5, false).to_bits(), 0b1010);
        assert_eq!(PermitToken::from_bits(0b1011), token(5, true));
        assert_eq!(PermitToken::from_bits(0b1010), token(5, false));
        assert_eq!(PermitToken::from_bits(u32::MAX), token(GEN_MASK, true));
        for generation in [0, 1, 2, 1000, GEN_MASK] {
            for probe in [false, true] {
                let t = token(generation, probe);
                assert_eq!(PermitToken::from_bits(t.to_bits()), t);
            }
        }
    }

    #[test]
    fn names_and_debug_forms() {
        let names = [
            (BreakerState::Closed, "closed"),
            (BreakerState::Open, "open"),
            (BreakerState::HalfOpen, "half_open"),
        ];
        for (state, name) in names {
            assert_eq!(state.as_str(), name);
            assert_eq!(format!("{state}"), name);
        }
        let open = Open {
            retry_in: Duration::from_millis(1500),
        };
        assert_eq!(format!("{open}"), "circuit open; retry in 1500 ms");
        let b = CircuitBreaker::builder()
            .failure_threshold(3)
            .recovery_timeout(SEC * 7)
            .build()
            .unwrap();
        assert_eq!(
            format!("{b:?}"),
            "CircuitBreaker { state: Closed, failure_threshold: 3, \
             recovery_timeout: 7s, half_open_probes: 1, .. }"
        );
        assert_eq!(b.failure_threshold(), 3);
        let permit = b.try_acquire(at(1)).unwrap();
        assert_eq!(
            format!("{permit:?}"),
            "Permit { generation: 0, probe: false }"
        );
    }

    fn at(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    fn fail(b: &CircuitBreaker, now: Instant) {
        b.try_acquire(now).unwrap().failure(now);
    }

    #[test]
    fn a_healthy_call_writes_nothing_without_a_rate_rule() {
        let b = CircuitBreaker::new(3, 10 * SEC).unwrap();
        let before = b.state.load(Ordering::Relaxed);
        for _ in 0..10 {
            b.try_acquire(at(0)).unwrap().success(at(0));
        }
        assert_eq!(b.state.load(Ordering::Relaxed), before);
        // With a rate rule the window counts every call.
        let b = CircuitBreaker::builder()
            .failure_rate(0.5, 100, 10)
            .build()
            .unwrap();
        b.try_acquire(at(0)).unwrap().success(at(0));
        assert_eq!(field(b.state.load(Ordering::Relaxed), 1), 1);
    }

    #[test]
    fn opens_on_consecutive_failures_only() {
        let b = CircuitBreaker::new(3, 10 * SEC).unwrap();
        fail(&b, at(0));
        fail(&b, at(0));
        b.try_acquire(at(0)).unwrap().success(at(0)); // resets the run
        fail(&b, at(0));
        fail(&b, at(0));
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b, at(0));
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn opens_on_failure_rate_after_min_calls() {
        let b = CircuitBreaker::builder()
            .failure_threshold(1000)
            .failure_rate(0.5, 10, 4)
            .build()
            .unwrap();
        let now = at(0);
        // S F S F: 50 % after 4 calls → open on the 4th.
        b.try_acquire(now).unwrap().success(now);
        fail(&b, now);
        b.try_acquire(now).unwrap().success(now);
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b, now);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn rate_window_is_tumbling() {
        let b = CircuitBreaker::builder()
            .failure_threshold(1000)
            .failure_rate(0.5, 4, 4)
            .build()
            .unwrap();
        let now = at(0);
        // A full window of 1 failure in 4 (25 %): the window restarts.
        fail(&b, now);
        for _ in 0..3 {
            b.try_acquire(now).unwrap().success(now);
        }
        // The next window: S S F F reaches 50 % at its 4th call.
        b.try_acquire(now).unwrap().success(now);
        b.try_acquire(now).unwrap().success(now);
        fail(&b, now);
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b, now);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn full_cycle_with_retry_in() {
        let b = CircuitBreaker::new(1, 10 * SEC).unwrap();
        fail(&b, at(100));
        assert_eq!(b.try_acquire(at(103)).unwrap_err().retry_in, 7 * SEC);
        // A clock that went backwards: refused, a longer wait, no panic.
        assert_eq!(b.try_acquire(at(50)).unwrap_err().retry_in, 60 * SEC);
        let probe = b.try_acquire(at(110)).unwrap();
        assert!(probe.is_probe());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // The others are refused with the time until the probe is overdue.
        assert_eq!(b.try_acquire(at(112)).unwrap_err().retry_in, 8 * SEC);
        probe.failure(at(112));
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.try_acquire(at(113)).unwrap_err().retry_in,
            9 * SEC,
            "a fresh timeout"
        );
        b.try_acquire(at(122)).unwrap().success(at(122));
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(!b.try_acquire(at(122)).unwrap().is_probe());
    }

    #[test]
    fn several_probes_must_all_succeed() {
        let b = CircuitBreaker::builder()
            .failure_threshold(1)
            .recovery_timeout(SEC)
            .half_open_probes(3)
            .build()
            .unwrap();
        fail(&b, at(0));
        let probes: [_; 3] = core::array::from_fn(|_| b.try_acquire(at(1)).unwrap());
        assert!(b.try_acquire(at(1)).is_err());
        let [p1, p2, p3] = probes;
        p1.success(at(1));
        p2.success(at(1));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        p3.success(at(1));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn detached_tokens_behave_like_permits() {
        let b = CircuitBreaker::new(1, SEC).unwrap();
        let stale = b.try_acquire(at(0)).unwrap().detach();
        b.record_failure(b.try_acquire(at(0)).unwrap().detach(), at(0));
        b.record_success(stale, at(0)); // fenced
        assert_eq!(b.state(), BreakerState::Open);
        let probe = b.try_acquire(at(1)).unwrap().detach();
        assert!(probe.is_probe());
        assert!(b.try_acquire(at(1)).is_err());
        b.abandon(probe);
        let probe = b.try_acquire(at(1)).unwrap().detach();
        b.record_success(probe, at(1));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_dropped_probe_gives_its_slot_back() {
        let b = CircuitBreaker::new(1, SEC).unwrap();
        fail(&b, at(0));
        drop(b.try_acquire(at(1)).unwrap());
        let probe = b.try_acquire(at(1)).unwrap();
        assert!(probe.is_probe());
        probe.success(at(1));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_lost_probe_does_not_wedge_half_open() {
        let b = CircuitBreaker::builder()
            .failure_threshold(1)
            .recovery_timeout(10 * SEC)
            .probe_timeout(5 * SEC)
            .build()
            .unwrap();
        fail(&b, at(0));
        let lost = b.try_acquire(at(10)).unwrap();
        core::mem::forget(lost); // never reports, never drops
        assert!(b.try_acquire(at(14)).is_err());
        let second = b.try_acquire(at(15)).unwrap();
        assert!(second.is_probe());
        second.success(at(15));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn stale_probe_from_an_earlier_round_is_fenced() {
        let b = CircuitBreaker::builder()
            .failure_threshold(1)
            .recovery_timeout(10 * SEC)
            .probe_timeout(5 * SEC)
            .build()
            .unwrap();
        fail(&b, at(0));
        let slow = b.try_acquire(at(10)).unwrap();
        let fresh = b.try_acquire(at(15)).unwrap(); // new round: `slow` is overdue
        slow.failure(at(16)); // stale: must not reopen
        assert_eq!(b.state(), BreakerState::HalfOpen);
        fresh.success(at(16));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn metrics_count_transitions() {
        static M: Metrics = Metrics::new();
        let b = CircuitBreaker::builder()
            .failure_threshold(1)
            .recovery_timeout(SEC)
            .metrics(&M)
            .build()
            .unwrap();
        fail(&b, at(0));
        assert!(b.try_acquire(at(0)).is_err());
        b.try_acquire(at(1)).unwrap().failure(at(1));
        b.try_acquire(at(2)).unwrap().success(at(2));
        let s = M.snapshot();
        assert_eq!(
            (
                s.breaker_opened(),
                s.breaker_half_opened(),
                s.breaker_closed(),
                s.breaker_rejected()
            ),
            (2, 2, 1, 1)
        );
    }

    #[test]
    fn validation_names_fields() {
        let field = |b: CircuitBreakerBuilder| b.build().unwrap_err().field();
        let b = CircuitBreaker::builder;
        assert_eq!(field(b().failure_threshold(0)), "failure_threshold");
        assert_eq!(field(b().failure_threshold(70_000)), "failure_threshold");
        assert_eq!(field(b().failure_rate(f64::NAN, 10, 5)), "failure_rate");
        assert_eq!(field(b().failure_rate(0.0, 10, 5)), "failure_rate");
        assert_eq!(field(b().failure_rate(0.5, 0, 0)), "failure_rate.window");
        assert_eq!(
            field(b().failure_rate(0.5, 10, 11)),
            "failure_rate.min_calls"
        );
        assert_eq!(
            field(b().recovery_timeout(Duration::ZERO)),
            "recovery_timeout"
        );
        assert_eq!(field(b().probe_timeout(Duration::ZERO)), "probe_timeout");
        assert_eq!(field(b().half_open_probes(1001)), "half_open_probes");
    }

    #[test]
    fn resilience4j_preset() {
        let b = CircuitBreaker::resilience4j();
        let now = at(0);
        for i in 0..99 {
            let p = b.try_acquire(now).unwrap();
            if i % 2 == 0 {
                p.failure(now)
            } else {
                p.success(now)
            }
        }
        assert_eq!(b.state(), BreakerState::Closed, "fewer than 100 calls");
        fail(&b, now);
        assert_eq!(b.state(), BreakerState::Open, "51 of 100 failed");
        assert_eq!(b.try_acquire(now).unwrap_err().retry_in, 60 * SEC);
    }
}
