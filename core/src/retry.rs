//! The per-call state machine.

use core::fmt;
use core::time::Duration;

use fastrand::Rng;

use crate::budget::{Budget, Withdrawal};
use crate::failure::{Failure, FailureClass, Replay, RetryAfter};
use crate::idempotency::Idempotency;
use crate::policy::{DecisionOrder, RetryPolicy};
use crate::time::{duration_to_nanos, Instant};

/// What to do after a failed attempt.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Decision, GiveUp};
/// let d = Decision::Retry { after: Duration::from_millis(5) };
/// assert_eq!(d.retry_after(), Some(Duration::from_millis(5)));
/// assert_eq!(Decision::GiveUp(GiveUp::AttemptsExhausted).retry_after(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a decision says whether to retry; ignoring it retries blindly"]
pub enum Decision {
    /// Start the next attempt `after` from the `now` passed in. Starting
    /// earlier ignores the backoff (and a server's hint); starting much later
    /// is harmless for this call but may run past its deadline.
    Retry {
        /// How long to wait before the next attempt.
        after: Duration,
    },
    /// Stop, and report the last failure; the reason says why.
    GiveUp(GiveUp),
}

impl Decision {
    /// The wait before the next attempt, or `None` when giving up.
    ///
    /// ```
    /// use stormguard::{Decision, GiveUp};
    /// assert!(Decision::GiveUp(GiveUp::NotRetryable).retry_after().is_none());
    /// ```
    pub const fn retry_after(self) -> Option<Duration> {
        match self {
            Decision::Retry { after } => Some(after),
            Decision::GiveUp(_) => None,
        }
    }
}

/// Why a call gave up.
///
/// Every refusal is data, never silence: a caller (or the layer above) can
/// tell "the server is down" from "we are out of budget" from "retrying this
/// would bill twice".
///
/// ```
/// use stormguard::GiveUp;
/// assert_eq!(GiveUp::UnsafeToReplay.to_string(), "unsafe to replay");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GiveUp {
    /// The failure's class cannot be helped by retrying (or a lower layer
    /// already retried it).
    NotRetryable,
    /// The overall attempt limit, or the limit for the failure's class, is
    /// reached.
    AttemptsExhausted,
    /// The shared retry budget refused.
    BudgetExhausted,
    /// The next attempt could not start before the overall deadline: giving
    /// up now rather than sleeping uselessly into it.
    DeadlineExceeded,
    /// The first attempt may have run and the method is not idempotent.
    UnsafeToReplay,
    /// The server said not to retry (`RetryAfter::Stop`).
    ServerSaidStop,
    /// The circuit breaker is open.
    CircuitOpen,
}

impl GiveUp {
    /// Every reason, in declaration order.
    ///
    /// ```
    /// assert_eq!(stormguard::GiveUp::ALL.len(), 7);
    /// ```
    pub const ALL: [GiveUp; 7] = [
        GiveUp::NotRetryable,
        GiveUp::AttemptsExhausted,
        GiveUp::BudgetExhausted,
        GiveUp::DeadlineExceeded,
        GiveUp::UnsafeToReplay,
        GiveUp::ServerSaidStop,
        GiveUp::CircuitOpen,
    ];

    /// A dense index (0..7), for per-reason tables.
    ///
    /// ```
    /// assert_eq!(stormguard::GiveUp::CircuitOpen.index(), 6);
    /// ```
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The reason in lower-case words (`"attempts exhausted"`, …), the text
    /// the Python bindings put in their exception note.
    ///
    /// ```
    /// assert_eq!(stormguard::GiveUp::DeadlineExceeded.as_str(), "deadline exceeded");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            GiveUp::NotRetryable => "not retryable",
            GiveUp::AttemptsExhausted => "attempts exhausted",
            GiveUp::BudgetExhausted => "budget exhausted",
            GiveUp::DeadlineExceeded => "deadline exceeded",
            GiveUp::UnsafeToReplay => "unsafe to replay",
            GiveUp::ServerSaidStop => "server said stop",
            GiveUp::CircuitOpen => "circuit open",
        }
    }

    /// The failure to report to the layer above, marked as already retried
    /// ("retry at one layer").
    ///
    /// When layers nest — a gateway calls a service that calls a data layer —
    /// and each retries 3 times, one failing request costs 3³ = 27 calls at
    /// the bottom. If every layer reports its give-up this way, the upper
    /// layers' [`Retry`] refuse it as [`GiveUp::NotRetryable`] and the bottom
    /// sees 3 calls. The class says what happened below (a timeout for
    /// `DeadlineExceeded`, overload for budget, breaker and server stops).
    ///
    /// ```
    /// use stormguard::{Decision, GiveUp, Instant, NoBudget, Retry, RetryPolicy};
    ///
    /// let policy = RetryPolicy::default();
    /// let below = GiveUp::AttemptsExhausted.into_failure();
    /// let mut upper = Retry::with_seed(&policy, Instant::ZERO, 1);
    /// assert_eq!(
    ///     upper.on_failure(&below, Instant::ZERO, &NoBudget),
    ///     Decision::GiveUp(GiveUp::NotRetryable),
    /// );
    /// ```
    pub const fn into_failure(self) -> Failure {
        let class = match self {
            GiveUp::NotRetryable | GiveUp::UnsafeToReplay => FailureClass::Permanent,
            GiveUp::AttemptsExhausted => FailureClass::Transient,
            GiveUp::DeadlineExceeded => FailureClass::Timeout,
            GiveUp::BudgetExhausted | GiveUp::ServerSaidStop | GiveUp::CircuitOpen => {
                FailureClass::Overloaded
            }
        };
        let failure = Failure::new(class, Replay::Unknown).already_retried();
        match self {
            GiveUp::ServerSaidStop => failure.with_retry_after(RetryAfter::Stop),
            _ => failure,
        }
    }
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One logical call: the state that decides, after each failed attempt,
/// whether and when to try again.
///
/// `Retry` never sleeps, never reads a clock and never allocates: the caller
/// reports each outcome with the current [`Instant`] and gets a
/// [`Decision`] back. It borrows its [`RetryPolicy`] and is 48 bytes on
/// 64-bit targets (a policy reference, the deadline, the random generator,
/// the previous delay, two counters, per-class counters, the last budget
/// withdrawal and the idempotency).
///
/// [`on_failure`](Retry::on_failure) applies its gates in this order (see
/// [`DecisionOrder`] for gRPC's):
///
/// 1. the class is not retryable, or a lower layer already retried →
///    [`GiveUp::NotRetryable`] (not counted against the budget);
/// 2. an [`Unknown`](Replay::Unknown) replay of a non-idempotent method →
///    [`GiveUp::UnsafeToReplay`];
/// 3. the server said stop → [`GiveUp::ServerSaidStop`];
/// 4. the overall or per-class attempt limit is reached →
///    [`GiveUp::AttemptsExhausted`];
/// 5. the next attempt could not start before the deadline →
///    [`GiveUp::DeadlineExceeded`], at once rather than after a useless
///    sleep;
/// 6. the budget refuses → [`GiveUp::BudgetExhausted`];
/// 7. otherwise [`Decision::Retry`], after the backoff delay — or after the
///    server's delay, capped by the policy, which also restarts the
///    exponential sequence (gRPC A6). A server's delay passes every gate
///    above like any other retry.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Decision, Failure, GiveUp, Instant, NoBudget, Retry, RetryPolicy};
///
/// let policy = RetryPolicy::builder().max_attempts(2).build()?;
/// let mut call = Retry::with_seed(&policy, Instant::ZERO, 42);
/// let now = Instant::from_millis(30);
/// assert!(matches!(call.on_failure(&Failure::timeout(), now, &NoBudget), Decision::Retry { .. }));
/// assert_eq!(
///     call.on_failure(&Failure::timeout(), now, &NoBudget),
///     Decision::GiveUp(GiveUp::AttemptsExhausted),
/// );
/// assert_eq!(core::mem::size_of::<Retry>(), 48);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Retry<'p> {
    policy: &'p RetryPolicy,
    state: RetryState,
}

/// The state of one call without the borrow of its policy: what [`Retry`]
/// holds besides its `&RetryPolicy`.
///
/// For callers that cannot keep a borrow alive — a language binding whose
/// objects own their data, a struct that owns its policy — `RetryState`
/// takes the policy as an argument of every method instead. Pass the same
/// policy every time (its deadline and idempotency were read at creation);
/// otherwise it behaves exactly as [`Retry`], which is a thin wrapper over
/// it.
///
/// ```
/// use stormguard::{Decision, Failure, Instant, NoBudget, RetryPolicy, RetryState};
///
/// struct OwnedCall {
///     policy: RetryPolicy,
///     state: RetryState,
/// }
/// let policy = RetryPolicy::default();
/// let mut call = OwnedCall { state: RetryState::with_seed(&policy, Instant::ZERO, 1), policy };
/// let d = call.state.on_failure(&call.policy, &Failure::transient(), Instant::ZERO, &NoBudget);
/// assert!(matches!(d, Decision::Retry { .. }));
/// ```
#[derive(Clone, Debug)]
pub struct RetryState {
    /// `Instant::MAX` when the policy has no deadline.
    deadline: Instant,
    rng: Rng,
    /// The previous computed delay (decorrelated jitter grows from it).
    prev_delay: u64,
    /// Outcomes reported so far: the attempts made.
    attempts: u32,
    /// Retries since the start or the last server-given delay: the `n` of
    /// the backoff.
    backoff_step: u32,
    /// Failed attempts per retryable class.
    class_failures: [u8; 3],
    last_withdrawal: Option<Withdrawal>,
    idempotency: Idempotency,
}

impl<'p> Retry<'p> {
    /// A call starting at `now`, with a freshly seeded random generator (so
    /// that a fleet of clients does not jitter in lock-step).
    ///
    /// ```
    /// use stormguard::{Instant, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let call = Retry::new(&policy, Instant::ZERO);
    /// assert_eq!(call.attempts(), 0);
    /// ```
    #[cfg(feature = "std")]
    pub fn new(policy: &'p RetryPolicy, now: Instant) -> Self {
        Retry::with_rng(policy, now, Rng::new())
    }

    /// A call starting at `now` whose jitter comes from `seed`: the same
    /// seed gives the same delays. Without `std`, derive the seed from
    /// something unique per device and per call (a hardware RNG, a serial
    /// number mixed with a counter).
    ///
    /// ```
    /// use stormguard::{Failure, Instant, NoBudget, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut a = Retry::with_seed(&policy, Instant::ZERO, 7);
    /// let mut b = Retry::with_seed(&policy, Instant::ZERO, 7);
    /// let f = Failure::transient();
    /// assert_eq!(a.on_failure(&f, Instant::ZERO, &NoBudget), b.on_failure(&f, Instant::ZERO, &NoBudget));
    /// ```
    pub fn with_seed(policy: &'p RetryPolicy, now: Instant, seed: u64) -> Self {
        Retry::with_rng(policy, now, Rng::with_seed(seed))
    }

    /// A call starting at `now` drawing its jitter from `rng`.
    ///
    /// ```
    /// use stormguard::{Instant, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let call = Retry::with_rng(&policy, Instant::ZERO, fastrand::Rng::with_seed(3));
    /// assert_eq!(call.deadline(), None);
    /// ```
    pub fn with_rng(policy: &'p RetryPolicy, now: Instant, rng: Rng) -> Self {
        Retry {
            policy,
            state: RetryState::with_rng(policy, now, rng),
        }
    }

    /// The same call with another idempotency than the policy's — a policy
    /// shared by a client's methods, and one method that is not idempotent.
    ///
    /// ```
    /// use stormguard::{Decision, Failure, GiveUp, Idempotency, Instant, NoBudget, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut charge = Retry::with_seed(&policy, Instant::ZERO, 1)
    ///     .with_idempotency(Idempotency::NonIdempotent);
    /// assert_eq!(
    ///     charge.on_failure(&Failure::timeout(), Instant::ZERO, &NoBudget),
    ///     Decision::GiveUp(GiveUp::UnsafeToReplay),
    /// );
    /// ```
    pub fn with_idempotency(mut self, idempotency: Idempotency) -> Self {
        self.state.idempotency = idempotency;
        self
    }

    /// Reports a failed attempt and decides what to do.
    ///
    /// Call it once per failed attempt, with `now` the time the failure was
    /// observed; then either wait `after` and start the next attempt, or
    /// stop and report the failure (see [`GiveUp::into_failure`] when a layer
    /// above also retries). Passing a `now` earlier than a previous one
    /// (a clock that went backwards) is safe: it never makes a wait longer
    /// than the backoff or the server's capped hint.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Decision, Failure, Instant, NoBudget, Retry, RetryAfter, RetryPolicy};
    ///
    /// let policy = RetryPolicy::builder().max_server_delay(Duration::from_secs(30)).build()?;
    /// let mut call = Retry::with_seed(&policy, Instant::ZERO, 1);
    /// // A hostile Retry-After of a day is capped by the policy.
    /// let hint = Failure::overloaded().with_retry_after(RetryAfter::Delay(Duration::from_secs(86_400)));
    /// assert_eq!(
    ///     call.on_failure(&hint, Instant::ZERO, &NoBudget),
    ///     Decision::Retry { after: Duration::from_secs(30) },
    /// );
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn on_failure<B: Budget + ?Sized>(
        &mut self,
        failure: &Failure,
        now: Instant,
        budget: &B,
    ) -> Decision {
        self.state.on_failure(self.policy, failure, now, budget)
    }

    /// Reports that the circuit breaker refused the next attempt; the call
    /// gives up with [`GiveUp::CircuitOpen`] (counted in the policy's
    /// metrics). Failing fast is the point of an open breaker: waiting for
    /// it to half-open would hold the caller for the whole recovery timeout.
    ///
    /// ```
    /// use stormguard::{Decision, GiveUp, Instant, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Retry::with_seed(&policy, Instant::ZERO, 1);
    /// assert_eq!(call.on_circuit_open(), Decision::GiveUp(GiveUp::CircuitOpen));
    /// ```
    pub fn on_circuit_open(&mut self) -> Decision {
        self.state.on_circuit_open(self.policy)
    }

    /// Reports that an attempt succeeded; the call is over.
    ///
    /// Tells the budget (gRPC's throttle earns back a fraction of a token;
    /// the AWS bucket refunds the last retry's cost).
    ///
    /// ```
    /// use stormguard::{Instant, NoBudget, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Retry::with_seed(&policy, Instant::ZERO, 1);
    /// call.on_success(Instant::from_millis(3), &NoBudget);
    /// assert_eq!(call.attempts(), 1);
    /// ```
    pub fn on_success<B: Budget + ?Sized>(&mut self, now: Instant, budget: &B) {
        self.state.on_success(self.policy, now, budget)
    }

    /// The attempts reported so far (failures and the success, if any).
    ///
    /// ```
    /// use stormguard::{Failure, Instant, NoBudget, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Retry::with_seed(&policy, Instant::ZERO, 1);
    /// let _ = call.on_failure(&Failure::transient(), Instant::ZERO, &NoBudget);
    /// assert_eq!(call.attempts(), 1);
    /// ```
    pub const fn attempts(&self) -> u32 {
        self.state.attempts
    }

    /// The instant by which the call must be over, if the policy has a
    /// deadline.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Instant, Retry, RetryPolicy};
    /// let policy = RetryPolicy::builder().deadline(Duration::from_secs(2)).build()?;
    /// let call = Retry::with_seed(&policy, Instant::from_secs(10), 1);
    /// assert_eq!(call.deadline(), Some(Instant::from_secs(12)));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn deadline(&self) -> Option<Instant> {
        self.state.deadline()
    }

    /// The time left before the deadline (zero once it has passed), or
    /// `None` without a deadline: the natural bound for a per-attempt
    /// timeout.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Instant, Retry, RetryPolicy};
    /// let policy = RetryPolicy::builder().deadline(Duration::from_secs(2)).build()?;
    /// let call = Retry::with_seed(&policy, Instant::ZERO, 1);
    /// assert_eq!(call.time_left(Instant::from_millis(500)), Some(Duration::from_millis(1500)));
    /// assert_eq!(call.time_left(Instant::from_secs(3)), Some(Duration::ZERO));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn time_left(&self, now: Instant) -> Option<Duration> {
        self.state.time_left(now)
    }

    /// The policy this call follows.
    ///
    /// ```
    /// use stormguard::{Instant, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// assert_eq!(Retry::with_seed(&policy, Instant::ZERO, 1).policy().max_attempts(), 3);
    /// ```
    pub const fn policy(&self) -> &'p RetryPolicy {
        self.policy
    }

    /// The idempotency this call assumes.
    ///
    /// ```
    /// use stormguard::{Idempotency, Instant, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// assert_eq!(Retry::with_seed(&policy, Instant::ZERO, 1).idempotency(), Idempotency::Idempotent);
    /// ```
    pub const fn idempotency(&self) -> Idempotency {
        self.state.idempotency
    }

    /// The state without the policy borrow.
    ///
    /// ```
    /// use stormguard::{Instant, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let call = Retry::with_seed(&policy, Instant::ZERO, 1);
    /// assert_eq!(call.into_state().attempts(), 0);
    /// ```
    pub fn into_state(self) -> RetryState {
        self.state
    }
}

impl RetryState {
    /// The state of a call under `policy` starting at `now`, with a freshly
    /// seeded random generator.
    ///
    /// ```
    /// use stormguard::{Instant, RetryPolicy, RetryState};
    /// assert_eq!(RetryState::new(&RetryPolicy::default(), Instant::ZERO).attempts(), 0);
    /// ```
    #[cfg(feature = "std")]
    pub fn new(policy: &RetryPolicy, now: Instant) -> Self {
        RetryState::with_rng(policy, now, Rng::new())
    }

    /// Like [`Retry::with_seed`].
    ///
    /// ```
    /// use stormguard::{Instant, RetryPolicy, RetryState};
    /// assert_eq!(RetryState::with_seed(&RetryPolicy::default(), Instant::ZERO, 1).deadline(), None);
    /// ```
    pub fn with_seed(policy: &RetryPolicy, now: Instant, seed: u64) -> Self {
        RetryState::with_rng(policy, now, Rng::with_seed(seed))
    }

    /// Like [`Retry::with_rng`].
    ///
    /// ```
    /// use stormguard::{Instant, RetryPolicy, RetryState};
    /// let s = RetryState::with_rng(&RetryPolicy::default(), Instant::ZERO, fastrand::Rng::with_seed(1));
    /// assert_eq!(s.attempts(), 0);
    /// ```
    pub fn with_rng(policy: &RetryPolicy, now: Instant, rng: Rng) -> Self {
        let deadline = match policy.deadline() {
            Some(d) => now.saturating_add(d),
            None => Instant::MAX,
        };
        RetryState {
            deadline,
            rng,
            prev_delay: 0,
            attempts: 0,
            backoff_step: 0,
            class_failures: [0; 3],
            last_withdrawal: None,
            idempotency: policy.idempotency(),
        }
    }

    /// Overrides the policy's idempotency for this call.
    ///
    /// ```
    /// use stormguard::{Idempotency, Instant, RetryPolicy, RetryState};
    /// let mut s = RetryState::with_seed(&RetryPolicy::default(), Instant::ZERO, 1);
    /// s.set_idempotency(Idempotency::Keyed);
    /// assert_eq!(s.idempotency(), Idempotency::Keyed);
    /// ```
    pub fn set_idempotency(&mut self, idempotency: Idempotency) {
        self.idempotency = idempotency;
    }

    /// [`Retry::on_failure`], with the policy passed in.
    ///
    /// ```
    /// use stormguard::{Decision, Failure, Instant, NoBudget, RetryPolicy, RetryState};
    /// let policy = RetryPolicy::default();
    /// let mut s = RetryState::with_seed(&policy, Instant::ZERO, 1);
    /// assert!(matches!(s.on_failure(&policy, &Failure::timeout(), Instant::ZERO, &NoBudget), Decision::Retry { .. }));
    /// ```
    pub fn on_failure<B: Budget + ?Sized>(
        &mut self,
        policy: &RetryPolicy,
        failure: &Failure,
        now: Instant,
        budget: &B,
    ) -> Decision {
        self.count_attempt(policy, now, budget);
        let decision = self.decide(policy, failure, now, budget);
        if let Some(metrics) = policy.metrics() {
            match decision {
                Decision::Retry { .. } => metrics.retry(),
                Decision::GiveUp(reason) => metrics.give_up(reason),
            }
        }
        decision
    }

    /// [`Retry::on_circuit_open`], with the policy passed in.
    ///
    /// ```
    /// use stormguard::{Decision, GiveUp, Instant, RetryPolicy, RetryState};
    /// let policy = RetryPolicy::default();
    /// let mut s = RetryState::with_seed(&policy, Instant::ZERO, 1);
    /// assert_eq!(s.on_circuit_open(&policy), Decision::GiveUp(GiveUp::CircuitOpen));
    /// ```
    pub fn on_circuit_open(&mut self, policy: &RetryPolicy) -> Decision {
        if let Some(metrics) = policy.metrics() {
            metrics.give_up(GiveUp::CircuitOpen);
        }
        Decision::GiveUp(GiveUp::CircuitOpen)
    }

    /// [`Retry::on_success`], with the policy passed in.
    ///
    /// ```
    /// use stormguard::{Instant, NoBudget, RetryPolicy, RetryState};
    /// let policy = RetryPolicy::default();
    /// let mut s = RetryState::with_seed(&policy, Instant::ZERO, 1);
    /// s.on_success(&policy, Instant::ZERO, &NoBudget);
    /// assert_eq!(s.attempts(), 1);
    /// ```
    pub fn on_success<B: Budget + ?Sized>(
        &mut self,
        policy: &RetryPolicy,
        now: Instant,
        budget: &B,
    ) {
        self.count_attempt(policy, now, budget);
        if let Some(metrics) = policy.metrics() {
            metrics.success();
        }
        budget.on_success(self.last_withdrawal.take(), now);
    }

    fn decide<B: Budget + ?Sized>(
        &mut self,
        policy: &RetryPolicy,
        failure: &Failure,
        now: Instant,
        budget: &B,
    ) -> Decision {
        let server_stop = matches!(failure.retry_after(), Some(RetryAfter::Stop));
        if server_stop && policy.decision_order() == DecisionOrder::Grpc {
            budget.on_failure(failure, now);
            return Decision::GiveUp(GiveUp::ServerSaidStop);
        }
        let class = failure.class();
        if !class.is_retryable() || failure.is_already_retried() {
            return Decision::GiveUp(GiveUp::NotRetryable);
        }
        budget.on_failure(failure, now);
        if !self.idempotency.allows_replay(failure.replay()) {
            return Decision::GiveUp(GiveUp::UnsafeToReplay);
        }
        if server_stop {
            return Decision::GiveUp(GiveUp::ServerSaidStop);
        }
        if self.attempts_exhausted(policy, class) {
            return Decision::GiveUp(GiveUp::AttemptsExhausted);
        }
        let (delay, from_server) = match failure.retry_after() {
            Some(RetryAfter::Delay(hint)) => {
                let capped =
                    duration_to_nanos(hint).min(duration_to_nanos(policy.max_server_delay()));
                (capped, true)
            }
            _ => {
                let backoff = policy.backoff();
                (
                    backoff.delay_nanos(self.backoff_step, self.prev_delay, &mut self.rng),
                    false,
                )
            }
        };
        let after = Duration::from_nanos(delay);
        if self.deadline != Instant::MAX && now.saturating_add(after) >= self.deadline {
            return Decision::GiveUp(GiveUp::DeadlineExceeded);
        }
        match budget.try_retry(failure, now) {
            Some(withdrawal) => self.last_withdrawal = Some(withdrawal),
            None => return Decision::GiveUp(GiveUp::BudgetExhausted),
        }
        if from_server {
            // gRPC A6: after a pushback the exponential sequence restarts.
            self.backoff_step = 0;
            self.prev_delay = 0;
        } else {
            self.backoff_step = self.backoff_step.saturating_add(1);
            self.prev_delay = delay;
        }
        Decision::Retry { after }
    }

    fn count_attempt<B: Budget + ?Sized>(
        &mut self,
        policy: &RetryPolicy,
        now: Instant,
        budget: &B,
    ) {
        if self.attempts == 0 {
            budget.on_request(now);
        }
        self.attempts = self.attempts.saturating_add(1);
        if let Some(metrics) = policy.metrics() {
            metrics.attempt();
        }
    }

    fn attempts_exhausted(&mut self, policy: &RetryPolicy, class: FailureClass) -> bool {
        let i = class.index();
        let Some(count) = self.class_failures.get_mut(i) else {
            return true;
        };
        *count = count.saturating_add(1);
        let limit = policy.class_limit(i);
        self.attempts >= policy.max_attempts() || (limit != 0 && *count >= limit)
    }

    /// [`Retry::attempts`].
    ///
    /// ```
    /// use stormguard::{Instant, RetryPolicy, RetryState};
    /// assert_eq!(RetryState::with_seed(&RetryPolicy::default(), Instant::ZERO, 1).attempts(), 0);
    /// ```
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// [`Retry::deadline`].
    ///
    /// ```
    /// use stormguard::{Instant, RetryPolicy, RetryState};
    /// assert_eq!(RetryState::with_seed(&RetryPolicy::default(), Instant::ZERO, 1).deadline(), None);
    /// ```
    pub const fn deadline(&self) -> Option<Instant> {
        if self.deadline.as_nanos() == Instant::MAX.as_nanos() {
            None
        } else {
            Some(self.deadline)
        }
    }

    /// [`Retry::time_left`].
    ///
    /// ```
    /// use stormguard::{Instant, RetryPolicy, RetryState};
    /// assert_eq!(RetryState::with_seed(&RetryPolicy::default(), Instant::ZERO, 1).time_left(Instant::ZERO), None);
    /// ```
    pub const fn time_left(&self, now: Instant) -> Option<Duration> {
        match self.deadline() {
            Some(deadline) => Some(deadline.saturating_duration_since(now)),
            None => None,
        }
    }

    /// [`Retry::idempotency`].
    ///
    /// ```
    /// use stormguard::{Idempotency, Instant, RetryPolicy, RetryState};
    /// let s = RetryState::with_seed(&RetryPolicy::default(), Instant::ZERO, 1);
    /// assert_eq!(s.idempotency(), Idempotency::Idempotent);
    /// ```
    pub const fn idempotency(&self) -> Idempotency {
        self.idempotency
    }
}
