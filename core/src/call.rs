//! One logical call's lifecycle: the breaker's permit for each attempt, what
//! the breaker and the budget are told, every metric, and the decision.

use core::borrow::Borrow;
use core::fmt;
use core::time::Duration;

use crate::adaptive::AdaptiveThrottle;
use crate::breaker::{CircuitBreaker, Open, PermitToken};
use crate::budget::{Budget, NoBudget};
use crate::decision::{Decision, GiveUp};
use crate::failure::Failure;
use crate::idempotency::Idempotency;
use crate::policy::RetryPolicy;
use crate::random::Random;
use crate::retry::Retry;
use crate::time::Instant;

/// What [`Call::breaker`] takes: `&CircuitBreaker`, or an `Option` of
/// anything that lends one (`&CircuitBreaker`, an owned breaker, an
/// `Arc<CircuitBreaker>`…), so a breaker chosen at run time needs no second
/// code path.
///
/// ```
/// use stormguard::{CircuitBreaker, IntoBreaker};
/// let breaker = CircuitBreaker::default();
/// assert!((&breaker).into_breaker().is_some());
/// assert!(None::<&CircuitBreaker>.into_breaker().is_none());
/// ```
pub trait IntoBreaker {
    /// How the call holds the breaker.
    type Breaker: Borrow<CircuitBreaker>;

    /// The breaker, if any.
    fn into_breaker(self) -> Option<Self::Breaker>;
}

impl<'a> IntoBreaker for &'a CircuitBreaker {
    type Breaker = &'a CircuitBreaker;

    fn into_breaker(self) -> Option<&'a CircuitBreaker> {
        Some(self)
    }
}

impl<K: Borrow<CircuitBreaker>> IntoBreaker for Option<K> {
    type Breaker = K;

    fn into_breaker(self) -> Option<K> {
        self
    }
}

/// What [`Call::throttle`] takes: `&AdaptiveThrottle`, or an `Option` of
/// anything that lends one.
///
/// ```
/// use stormguard::{AdaptiveThrottle, IntoThrottle};
/// let throttle = AdaptiveThrottle::sre();
/// assert!((&throttle).into_throttle().is_some());
/// assert!(None::<&AdaptiveThrottle>.into_throttle().is_none());
/// ```
pub trait IntoThrottle {
    /// How the call holds the throttle.
    type Throttle: Borrow<AdaptiveThrottle>;

    /// The throttle, if any.
    fn into_throttle(self) -> Option<Self::Throttle>;
}

impl<'a> IntoThrottle for &'a AdaptiveThrottle {
    type Throttle = &'a AdaptiveThrottle;

    fn into_throttle(self) -> Option<&'a AdaptiveThrottle> {
        Some(self)
    }
}

impl<T: Borrow<AdaptiveThrottle>> IntoThrottle for Option<T> {
    type Throttle = T;

    fn into_throttle(self) -> Option<T> {
        self
    }
}

/// One logical call, attempt by attempt: the sans-IO object every driver
/// (the async future, the blocking loop, the Python wrappers, a simulator)
/// is a thin loop over.
///
/// A [`Retry`] decides what to do after a failure. A `Call` owns everything
/// around one attempt as well: it asks the [`CircuitBreaker`] for a permit
/// before the attempt, holds it while the attempt runs, tells the breaker
/// and the [`Budget`] how the attempt went, counts every metric, and hands
/// back the [`Decision`]. So the rules below exist once, here, and no driver
/// keeps a copy of them.
///
/// # The rules
///
/// | what happens | the breaker is told | the budget | the policy's metrics | the answer |
/// |---|---|---|---|---|
/// | an attempt begins after the deadline passed (a sleep overshot it) | nothing (no permit is taken) | nothing | a give-up, `DeadlineExceeded` | `Err(GiveUp(DeadlineExceeded))` |
/// | an attempt begins and the breaker refuses | nothing more (it counts its own refusal) | nothing | a give-up, `CircuitOpen` | `Err(GiveUp(CircuitOpen))`; [`refusal`](Call::refusal) says when to come back |
/// | an attempt begins and the adaptive throttle (if any) rejects it locally | nothing: the permit just taken goes back | nothing | a give-up, `ClientThrottled` (the throttle counted a request) | `Err(GiveUp(ClientThrottled))` |
/// | an attempt begins | a permit is taken and held | nothing | nothing yet (the throttle counts a request) | `Ok(Attempt)` |
/// | the attempt succeeds | success | a deposit (first attempt), then a refund or a reward | an attempt, a success | the call is over |
/// | the attempt fails with a retryable class, and replaying it is safe | failure | as the gates in [`Retry::on_failure`] say | an attempt, and a retry or a give-up by reason | the [`Decision`] |
/// | the attempt fails with a permanent class (the service answered: a 404, a bad request) | nothing: the permit is released, a probe slot comes back | nothing | an attempt, a give-up `NotRetryable` | `GiveUp(NotRetryable)` |
/// | the attempt fails, but replaying it is unsafe (it may have run and the method is not idempotent) | nothing: released | its failure is counted | an attempt, a give-up `UnsafeToReplay` | `GiveUp(UnsafeToReplay)` |
/// | the attempt is dropped or cancelled (the caller gave up on it, the future was dropped), or the `Call` is dropped during it | nothing: released | nothing | nothing | the call may begin another attempt |
///
/// The adaptive throttle counts an attempt as *accepted* when it succeeded,
/// or failed with a permanent or transient error the server answered
/// ([`Replay::Unknown`](crate::Replay::Unknown)); overload, a timeout, and a
/// request refused or never sent are not accepts.
///
/// A permanent failure or an unsafe replay says nothing about the service's
/// health, so it is not the breaker's business; a half-open probe that ends
/// that way gives its slot to the next caller instead of closing or
/// reopening the breaker. (A failure a lower layer already retried still
/// counts against the breaker when its class is retryable: the service
/// below is failing.)
///
/// After the call succeeded or gave up, it is over: beginning another
/// attempt answers the same give-up again (`NotRetryable` after a success)
/// and counts nothing.
///
/// # Time
/// Every method takes `now`; the deadline counts from the first attempt's
/// `now`. When [`needs_clock`](Call::needs_clock) is false (no deadline, a
/// budget that ignores time, no breaker), only [`fail`](Call::fail) uses
/// `now` — and only for a deadline — so a driver may skip reading a clock
/// before an attempt and after a success.
///
/// # Two ways to hold an attempt
/// [`begin_attempt`](Call::begin_attempt) returns an [`Attempt`] guard that
/// borrows the call: report it with [`Attempt::succeed`] or
/// [`Attempt::fail`]; dropping it cancels the attempt. A driver whose
/// attempt outlives that borrow (a future that keeps the call across
/// polls, a language binding) uses the same steps on the call itself:
/// [`start_attempt`](Call::start_attempt), then [`succeed`](Call::succeed),
/// [`fail`](Call::fail) or [`cancel_attempt`](Call::cancel_attempt).
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Call, CircuitBreaker, Decision, Failure, GiveUp, Instant, RetryPolicy, Throttle};
///
/// let policy = RetryPolicy::builder().max_attempts(3).build()?;
/// let throttle = Throttle::new(10, 0.1)?;
/// let breaker = CircuitBreaker::default();
/// let mut call = Call::with_seed(&policy, 7).budget(&throttle).breaker(&breaker);
///
/// let mut now = Instant::ZERO;
/// let mut answers = [Err(503), Err(503), Ok("body")].into_iter();
/// let body = loop {
///     let attempt = match call.begin_attempt(now) {
///         Ok(attempt) => attempt,
///         Err(decision) => break Err(decision),
///     };
///     now += Duration::from_millis(20); // the attempt runs
///     match answers.next().unwrap() {
///         Ok(body) => {
///             attempt.succeed(now);
///             break Ok(body);
///         }
///         Err(_status) => match attempt.fail(&Failure::transient(), now) {
///             Decision::Retry { after } => now += after,
///             decision => break Err(decision),
///         },
///     }
/// };
/// assert_eq!(body, Ok("body"));
/// assert_eq!(call.attempts(), 3);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
pub struct Call<
    P,
    B = NoBudget,
    K: Borrow<CircuitBreaker> = &'static CircuitBreaker,
    T = &'static AdaptiveThrottle,
> {
    retry: Retry<P>,
    budget: B,
    lease: Lease<K>,
    /// The adaptive throttle asked before each attempt, if any.
    throttle: Option<T>,
    phase: Phase,
    /// Why the call gave up, once `phase` is `GaveUp`.
    reason: GiveUp,
    refusal: Option<Open>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No attempt yet: the deadline is not counted.
    NotStarted,
    /// Between attempts.
    Between,
    /// An attempt is running.
    Attempting,
    Succeeded,
    GaveUp,
}

/// The breaker and the permit of the attempt in flight; giving the permit
/// back without a verdict when dropped.
struct Lease<K: Borrow<CircuitBreaker>> {
    breaker: Option<K>,
    permit: Option<PermitToken>,
}

impl<K: Borrow<CircuitBreaker>> Lease<K> {
    /// Gives the permit back without a verdict: a probe's slot is freed.
    #[inline]
    fn release(&mut self) {
        // Tested before it is taken: no permit (no breaker, or none held) is
        // one load and no store.
        if self.permit.is_some() {
            if let (Some(breaker), Some(permit)) = (&self.breaker, self.permit.take()) {
                breaker.borrow().abandon(permit);
            }
        }
    }
}

impl<K: Borrow<CircuitBreaker>> Drop for Lease<K> {
    #[inline]
    fn drop(&mut self) {
        self.release();
    }
}

/// [`Call::needs_clock`] for the parts of a call not built yet.
#[inline]
pub(crate) fn needs_clock<B: Budget + ?Sized>(
    policy: &RetryPolicy,
    budget: &B,
    breaker: bool,
    throttle: bool,
) -> bool {
    policy.deadline().is_some() || budget.needs_time() || breaker || throttle
}

/// Whether the first attempt of a call with these parts may run before the
/// call is built: nothing can refuse it — no breaker's permit, no
/// throttle's admission, and the deadline counts from it. A driver that
/// builds its call lazily runs such an attempt at once (reading the clock
/// only if [`Call::needs_clock`] would), reports its success with
/// [`succeed_unbuilt`], and builds the call only if it fails, beginning
/// the attempt in it as of when it began.
#[cfg(feature = "async")]
#[inline]
pub(crate) const fn first_attempt_runs_unbuilt(breaker: bool, throttle: bool) -> bool {
    !breaker && !throttle
}

/// What [`Call::start_attempt`] at `now` and then [`Call::succeed`] report
/// for the first attempt of a call that may run it unbuilt (see
/// [`first_attempt_runs_unbuilt`]): with no breaker and no throttle to
/// tell, what the budget and the metrics are told.
/// `first_try_success_reports_what_a_call_reports` checks that the two
/// agree.
#[cfg(feature = "async")]
#[inline]
pub(crate) fn succeed_unbuilt<B: Budget + ?Sized>(policy: &RetryPolicy, budget: &B, now: Instant) {
    crate::retry::first_try_success(policy, now, budget);
}

/// What [`Call::time_left`] answers for the first attempt of a call that
/// runs it unbuilt, begun at `now`: the whole deadline.
#[cfg(feature = "async")]
#[inline]
pub(crate) fn time_left_unbuilt(policy: &RetryPolicy, now: Instant) -> Option<Duration> {
    crate::retry::first_time_left(policy, now)
}

impl<P: Borrow<RetryPolicy>> Call<P> {
    /// A call under `policy`, with a freshly seeded jitter generator, no
    /// budget and no breaker.
    ///
    /// ```
    /// use stormguard::{Call, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let call = Call::new(&policy);
    /// assert_eq!(call.attempts(), 0);
    /// ```
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn new(policy: P) -> Self {
        Call::with_rng(policy, Random::new())
    }

    /// A call whose jitter comes from `seed` (the same seed, the same
    /// delays). Without `std` this is how a call is made: give each one a
    /// seed unique to the device and the call (see [`Random`]).
    ///
    /// ```
    /// use stormguard::{Call, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// assert_eq!(Call::with_seed(&policy, 42).deadline(), None);
    /// ```
    pub fn with_seed(policy: P, seed: u64) -> Self {
        Call::with_rng(policy, Random::with_seed(seed))
    }

    /// A call drawing its jitter from `rng`.
    ///
    /// ```
    /// use stormguard::{Call, Random, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let call = Call::with_rng(&policy, Random::with_seed(1));
    /// assert!(!call.needs_clock());
    /// ```
    pub fn with_rng(policy: P, rng: Random) -> Self {
        Call::from_parts(policy, rng, NoBudget, None, None)
    }
}

impl<P: Borrow<RetryPolicy>, B, K: Borrow<CircuitBreaker>, T> Call<P, B, K, T> {
    /// A call made with everything at once: what
    /// [`with_rng`](Call::with_rng) and then [`budget`](Call::budget),
    /// [`breaker`](Call::breaker) and [`throttle`](Call::throttle) make,
    /// without moving it from one to the next (a driver makes one per
    /// retried call).
    #[inline]
    pub(crate) fn from_parts(
        policy: P,
        rng: Random,
        budget: B,
        breaker: Option<K>,
        throttle: Option<T>,
    ) -> Self {
        Call {
            retry: Retry::unstarted(policy, rng),
            budget,
            lease: Lease {
                breaker,
                permit: None,
            },
            throttle,
            phase: Phase::NotStarted,
            reason: GiveUp::NotRetryable,
            refusal: None,
        }
    }
}

impl<P, B, K: Borrow<CircuitBreaker>, T> Call<P, B, K, T> {
    /// The same call sharing `budget` (usually `&` a budget every call of a
    /// client shares; an `Option` of one is a budget too).
    ///
    /// ```
    /// use stormguard::{Call, RetryBudget, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let budget = RetryBudget::default();
    /// let call = Call::with_seed(&policy, 1).budget(&budget);
    /// assert!(call.needs_clock()); // a ratio budget fades with time
    /// ```
    #[must_use]
    pub fn budget<B2: Budget>(self, budget: B2) -> Call<P, B2, K, T> {
        Call {
            retry: self.retry,
            budget,
            lease: self.lease,
            throttle: self.throttle,
            phase: self.phase,
            reason: self.reason,
            refusal: self.refusal,
        }
    }

    /// The same call asking `breaker` before every attempt (takes `&breaker`,
    /// an owned or shared handle, or an `Option` of one, so a breaker chosen
    /// at run time needs no second code path). A permit held by an attempt
    /// in flight is given back first.
    ///
    /// ```
    /// use stormguard::{Call, CircuitBreaker, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let breaker = CircuitBreaker::default();
    /// let call = Call::with_seed(&policy, 1).breaker(&breaker);
    /// let none: Option<&CircuitBreaker> = None;
    /// let without = Call::with_seed(&policy, 1).breaker(none);
    /// assert!(call.needs_clock() && !without.needs_clock());
    /// ```
    #[must_use]
    pub fn breaker<I: IntoBreaker>(self, breaker: I) -> Call<P, B, I::Breaker, T> {
        let Call {
            retry,
            budget,
            lease,
            throttle,
            phase,
            reason,
            refusal,
        } = self;
        drop(lease); // gives a permit held by an attempt in flight back
        Call {
            retry,
            budget,
            lease: Lease {
                breaker: breaker.into_breaker(),
                permit: None,
            },
            throttle,
            phase: match phase {
                Phase::Attempting => Phase::Between,
                other => other,
            },
            reason,
            refusal,
        }
    }

    /// The same call asking the adaptive `throttle` before every attempt
    /// (`&throttle`, an owned or shared handle, or an `Option` of one): an
    /// attempt it rejects locally ends the call with
    /// [`GiveUp::ClientThrottled`]. The call counts each attempt it sends as
    /// a request and each one the backend answered (see the rules) as an
    /// accept.
    ///
    /// ```
    /// use stormguard::{AdaptiveThrottle, Call, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let throttle = AdaptiveThrottle::sre();
    /// let call = Call::with_seed(&policy, 1).throttle(&throttle);
    /// assert!(call.needs_clock());
    /// ```
    #[must_use]
    pub fn throttle<I: IntoThrottle>(self, throttle: I) -> Call<P, B, K, I::Throttle> {
        let Call {
            retry,
            budget,
            lease,
            throttle: _,
            phase,
            reason,
            refusal,
        } = self;
        Call {
            retry,
            budget,
            lease,
            throttle: throttle.into_throttle(),
            phase,
            reason,
            refusal,
        }
    }

    /// The same call with another idempotency than the policy's (one
    /// non-idempotent method under a policy shared by a client).
    ///
    /// ```
    /// use stormguard::{Call, Decision, Failure, GiveUp, Idempotency, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut charge = Call::with_seed(&policy, 1).with_idempotency(Idempotency::NonIdempotent);
    /// let attempt = charge.begin_attempt(Instant::ZERO).unwrap();
    /// assert_eq!(attempt.fail(&Failure::timeout(), Instant::ZERO), Decision::GiveUp(GiveUp::UnsafeToReplay));
    /// ```
    #[must_use]
    pub fn with_idempotency(mut self, idempotency: Idempotency) -> Self {
        self.set_idempotency(idempotency);
        self
    }

    /// [`with_idempotency`](Call::with_idempotency) in place: a driver
    /// building its call applies a setting without moving the call.
    #[inline]
    pub(crate) fn set_idempotency(&mut self, idempotency: Idempotency) {
        self.retry.set_idempotency(idempotency);
    }

    /// The attempts whose outcome was reported (a cancelled attempt is not
    /// one).
    ///
    /// ```
    /// let policy = stormguard::RetryPolicy::default();
    /// assert_eq!(stormguard::Call::with_seed(&policy, 1).attempts(), 0);
    /// ```
    pub const fn attempts(&self) -> u32 {
        self.retry.attempts()
    }

    /// The instant by which the call must be over: `None` without a
    /// deadline, or before the first attempt began.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Call, Instant, RetryPolicy};
    /// let policy = RetryPolicy::builder().deadline(Duration::from_secs(2)).build()?;
    /// let mut call = Call::with_seed(&policy, 1);
    /// assert_eq!(call.deadline(), None);
    /// call.start_attempt(Instant::from_secs(10)).unwrap();
    /// assert_eq!(call.deadline(), Some(Instant::from_secs(12)));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn deadline(&self) -> Option<Instant> {
        self.retry.deadline()
    }

    /// The time left before the deadline (zero once it passed), or `None`
    /// without one: the bound for an attempt's timeout.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Call, Instant, RetryPolicy};
    /// let policy = RetryPolicy::builder().deadline(Duration::from_secs(2)).build()?;
    /// let mut call = Call::with_seed(&policy, 1);
    /// call.start_attempt(Instant::ZERO).unwrap();
    /// assert_eq!(call.time_left(Instant::from_millis(500)), Some(Duration::from_millis(1500)));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn time_left(&self, now: Instant) -> Option<Duration> {
        self.retry.time_left(now)
    }

    /// The breaker's refusal that ended the call, if it ended that way: when
    /// to try again.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Call, CircuitBreaker, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let breaker = CircuitBreaker::new(1, Duration::from_secs(5))?;
    /// breaker.try_acquire(Instant::ZERO).unwrap().failure(Instant::ZERO); // open
    /// let mut call = Call::with_seed(&policy, 1).breaker(&breaker);
    /// assert!(call.begin_attempt(Instant::from_secs(1)).is_err());
    /// assert_eq!(call.refusal().unwrap().retry_in, Duration::from_secs(4));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn refusal(&self) -> Option<Open> {
        self.refusal
    }

    /// Whether the call is over (it succeeded or gave up).
    ///
    /// ```
    /// use stormguard::{Call, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Call::with_seed(&policy, 1);
    /// call.begin_attempt(Instant::ZERO).unwrap().succeed(Instant::ZERO);
    /// assert!(call.is_over());
    /// ```
    pub const fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Succeeded | Phase::GaveUp)
    }

    /// Whether an attempt is running (begun, its outcome not yet reported).
    ///
    /// ```
    /// use stormguard::{Call, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Call::with_seed(&policy, 1);
    /// call.start_attempt(Instant::ZERO).unwrap();
    /// assert!(call.is_attempting());
    /// call.cancel_attempt();
    /// assert!(!call.is_attempting());
    /// ```
    pub const fn is_attempting(&self) -> bool {
        matches!(self.phase, Phase::Attempting)
    }

    /// The wait the backoff would give if the running attempt fails without
    /// a server hint (see [`Retry::next_backoff`]): a forecast the attempt
    /// limit, the deadline or the budget may still overrule.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Backoff, Call, Instant, RetryPolicy};
    /// let policy = RetryPolicy::builder()
    ///     .backoff(Backoff::constant(Duration::from_millis(250)))
    ///     .build()?;
    /// let call = Call::with_seed(&policy, 1);
    /// assert_eq!(call.next_backoff(), Duration::from_millis(250));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn next_backoff(&self) -> Duration
    where
        P: Borrow<RetryPolicy>,
    {
        self.retry.next_backoff()
    }

    /// The decision state inside the call.
    ///
    /// ```
    /// use stormguard::{Call, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// assert_eq!(Call::with_seed(&policy, 1).retry().attempts(), 0);
    /// ```
    pub const fn retry(&self) -> &Retry<P> {
        &self.retry
    }

    /// Gives the running attempt's permit back without a verdict: the
    /// attempt was cancelled (a timeout the caller enforces itself that
    /// should not count, a caller that went away). A probe's slot is freed;
    /// no attempt is counted; the call may begin another attempt. Does
    /// nothing when no attempt is running.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{BreakerState, Call, CircuitBreaker, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let breaker = CircuitBreaker::new(1, Duration::from_secs(1))?;
    /// breaker.try_acquire(Instant::ZERO).unwrap().failure(Instant::ZERO); // open
    /// let later = Instant::from_secs(1);
    /// let mut call = Call::with_seed(&policy, 1).breaker(&breaker);
    /// call.start_attempt(later).unwrap(); // the half-open probe
    /// assert!(breaker.try_acquire(later).is_err()); // its slot is taken
    /// call.cancel_attempt();
    /// assert!(breaker.try_acquire(later).is_ok()); // and given back
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    #[inline]
    pub fn cancel_attempt(&mut self) {
        if self.phase == Phase::Attempting {
            self.lease.release();
            self.phase = Phase::Between;
        }
    }
}

impl<P: Borrow<RetryPolicy>, B: Budget, K: Borrow<CircuitBreaker>, T: Borrow<AdaptiveThrottle>>
    Call<P, B, K, T>
{
    /// Replaces the jitter generator: a driver that seeds only when a retry
    /// may need jitter (a first-try success then draws no entropy at all)
    /// calls this before the first failure.
    #[cfg(any(feature = "async", feature = "std"))]
    #[inline]
    pub(crate) fn reseed(&mut self, rng: Random) {
        self.retry.reseed(rng);
    }

    /// Whether the call draws random numbers before its first failure (the
    /// adaptive throttle's draw at every attempt): a driver that seeds
    /// lazily must seed such a call before its first attempt.
    #[cfg(any(feature = "async", feature = "std"))]
    pub(crate) fn draws_before_failure(&self) -> bool {
        self.throttle.is_some()
    }

    /// Whether this call uses the time it is given before an attempt and
    /// after a success: true with a deadline, a time-based budget
    /// ([`Budget::needs_time`]) or a breaker. When false, a driver may pass
    /// any `Instant` there (the last one it read, or [`Instant::ZERO`]) and
    /// read its clock only after a failure.
    ///
    /// ```
    /// use stormguard::{Call, RetryPolicy, Throttle};
    /// let policy = RetryPolicy::default();
    /// let throttle = Throttle::new(10, 0.1)?;
    /// assert!(!Call::with_seed(&policy, 1).budget(&throttle).needs_clock());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    #[inline]
    pub fn needs_clock(&self) -> bool {
        needs_clock(
            self.retry.policy(),
            &self.budget,
            self.lease.breaker.is_some(),
            self.throttle.is_some(),
        )
    }

    /// Begins an attempt at `now`: checks the deadline, takes the breaker's
    /// permit, and returns the [`Attempt`] to report the outcome on — or the
    /// give-up that ends the call (see the rules in the type's docs).
    ///
    /// Call it right before the attempt starts; calling it early makes the
    /// deadline check (and a half-open probe's slot) cover time the attempt
    /// does not use.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Call, Decision, GiveUp, Instant, RetryPolicy};
    /// let policy = RetryPolicy::builder().deadline(Duration::from_secs(1)).build()?;
    /// let mut call = Call::with_seed(&policy, 1);
    /// let attempt = call.begin_attempt(Instant::ZERO).unwrap();
    /// let _ = attempt.fail(&stormguard::Failure::transient(), Instant::from_millis(10));
    /// // The sleep overshot the deadline: no attempt can start.
    /// assert_eq!(
    ///     call.begin_attempt(Instant::from_secs(2)).err(),
    ///     Some(Decision::GiveUp(GiveUp::DeadlineExceeded)),
    /// );
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn begin_attempt(&mut self, now: Instant) -> Result<Attempt<'_, P, B, K, T>, Decision> {
        self.start_attempt(now)?;
        Ok(Attempt { call: self })
    }

    /// [`begin_attempt`](Call::begin_attempt) without the guard: the
    /// attempt stays open in the call until [`succeed`](Call::succeed),
    /// [`fail`](Call::fail) or [`cancel_attempt`](Call::cancel_attempt) (or
    /// until the call is dropped, which cancels it). An attempt still
    /// running is cancelled first.
    ///
    /// # Errors
    /// The give-up that ends the call: [`GiveUp::DeadlineExceeded`] when the
    /// deadline passed, [`GiveUp::CircuitOpen`] when the breaker refused, or
    /// the reason the call already ended.
    ///
    /// ```
    /// use stormguard::{Call, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Call::with_seed(&policy, 1);
    /// call.start_attempt(Instant::ZERO)?;
    /// call.succeed(Instant::ZERO);
    /// assert!(call.is_over());
    /// # Ok::<(), stormguard::Decision>(())
    /// ```
    #[inline(always)]
    pub fn start_attempt(&mut self, now: Instant) -> Result<(), Decision> {
        // The first attempt is tested for first: one comparison, not a
        // jump table.
        if self.phase == Phase::NotStarted {
            // The deadline counts from here: the first attempt always fits.
            self.retry.start_at(now);
        } else {
            self.restart_attempt(now)?;
        }
        self.acquire(now)
    }

    /// [`start_attempt`](Call::start_attempt) after the first: the call may
    /// be over, or an attempt still running, or the deadline passed.
    fn restart_attempt(&mut self, now: Instant) -> Result<(), Decision> {
        match self.phase {
            Phase::Succeeded | Phase::GaveUp => return Err(Decision::GiveUp(self.reason)),
            Phase::NotStarted => {}
            Phase::Attempting | Phase::Between => {
                self.cancel_attempt();
                if self.time_left(now) == Some(Duration::ZERO) {
                    // A sleep overshot the deadline: no attempt can run.
                    return Err(self.give_up(GiveUp::DeadlineExceeded));
                }
            }
        }
        Ok(())
    }

    /// The breaker's permit and the throttle's admission for an attempt
    /// about to begin: the end of [`start_attempt`](Call::start_attempt).
    #[inline(always)]
    fn acquire(&mut self, now: Instant) -> Result<(), Decision> {
        let acquired = self.lease.breaker.as_ref().map(|breaker| {
            breaker
                .borrow()
                .try_acquire(now)
                .map(|permit| permit.detach())
        });
        match acquired {
            None => {}
            Some(Ok(permit)) => self.lease.permit = Some(permit),
            Some(Err(open)) => {
                self.refusal = Some(open);
                return Err(self.give_up(GiveUp::CircuitOpen));
            }
        }
        if let Some(throttle) = &self.throttle {
            let draw = self.retry.draw_u32();
            if !throttle.borrow().admit(now, draw) {
                self.lease.release();
                return Err(self.give_up(GiveUp::ClientThrottled));
            }
        }
        self.phase = Phase::Attempting;
        Ok(())
    }

    /// The running attempt succeeded at `now`: tells the breaker and the
    /// budget, counts it; the call is over. Does nothing if the call was
    /// already over.
    ///
    /// ```
    /// use stormguard::{Call, Instant, Metrics, RetryPolicy};
    /// static METRICS: Metrics = Metrics::new();
    /// let policy = RetryPolicy::builder().metrics(&METRICS).build()?;
    /// let mut call = Call::with_seed(&policy, 1);
    /// call.start_attempt(Instant::ZERO).unwrap();
    /// call.succeed(Instant::ZERO);
    /// assert_eq!(METRICS.snapshot().successes(), 1);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    #[inline(always)]
    pub fn succeed(&mut self, now: Instant) {
        // An attempt running is the usual case: one comparison.
        if self.phase != Phase::Attempting {
            match self.phase {
                Phase::Succeeded | Phase::GaveUp => return,
                Phase::NotStarted => self.retry.start_at(now),
                Phase::Attempting | Phase::Between => {}
            }
        }
        // Tested before it is taken: no permit is one load and no store.
        if self.lease.permit.is_some() {
            if let (Some(breaker), Some(permit)) = (&self.lease.breaker, self.lease.permit.take()) {
                breaker.borrow().record_success(permit, now);
            }
        }
        if let Some(throttle) = &self.throttle {
            throttle.borrow().on_accept(now);
        }
        self.retry.on_success(now, &self.budget);
        self.phase = Phase::Succeeded;
        // What a call that is over answers when asked to begin again.
        self.reason = GiveUp::NotRetryable;
    }

    /// The running attempt failed with `failure`, observed at `now`: tells
    /// the breaker (only what is its business, see the rules), lets the
    /// policy and the budget decide, counts it, and returns the decision.
    /// After a give-up the call is over; calling `fail` again then returns
    /// the same give-up and counts nothing.
    ///
    /// ```
    /// use stormguard::{BreakerState, Call, CircuitBreaker, Decision, Failure, GiveUp, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let breaker = CircuitBreaker::new(1, core::time::Duration::from_secs(1))?;
    /// let mut call = Call::with_seed(&policy, 1).breaker(&breaker);
    /// call.start_attempt(Instant::ZERO).unwrap();
    /// // A 404 is not the service failing: the breaker stays closed.
    /// assert_eq!(call.fail(&Failure::permanent(), Instant::ZERO), Decision::GiveUp(GiveUp::NotRetryable));
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn fail(&mut self, failure: &Failure, now: Instant) -> Decision {
        match self.phase {
            Phase::Succeeded | Phase::GaveUp => return Decision::GiveUp(self.reason),
            Phase::NotStarted => self.retry.start_at(now),
            Phase::Between | Phase::Attempting => {}
        }
        if let Some(permit) = self.lease.permit.take() {
            if let Some(breaker) = &self.lease.breaker {
                let breaker = breaker.borrow();
                if self.is_breakers_business(failure) {
                    breaker.record_failure(permit, now);
                } else {
                    breaker.abandon(permit);
                }
            }
        }
        if let Some(throttle) = &self.throttle {
            if backend_accepted(failure) {
                throttle.borrow().on_accept(now);
            }
        }
        let decision = self.retry.on_failure(failure, now, &self.budget);
        match decision {
            Decision::Retry { .. } => self.phase = Phase::Between,
            Decision::GiveUp(reason) => {
                self.phase = Phase::GaveUp;
                self.reason = reason;
            }
        }
        decision
    }

    /// Whether `failure` says something about the service's health: a
    /// retryable class whose replay is safe for this call.
    fn is_breakers_business(&self, failure: &Failure) -> bool {
        failure.class().is_retryable() && self.retry.idempotency().allows_replay(failure.replay())
    }

    /// Ends the call with `reason` before an attempt could run, and counts
    /// it.
    fn give_up(&mut self, reason: GiveUp) -> Decision {
        if let Some(metrics) = self.retry.policy().metrics() {
            metrics.give_up(reason);
        }
        self.phase = Phase::GaveUp;
        self.reason = reason;
        Decision::GiveUp(reason)
    }
}

/// Whether a failed attempt counts as *accepted* by the backend for the
/// adaptive throttle: it ran there and ended for a reason other than
/// overload — a permanent or transient error the server answered
/// ([`Replay::Unknown`]). Overload, a timeout (the server may be drowning),
/// and a request refused or never sent are not accepts.
///
/// [`Replay::Unknown`]: crate::Replay::Unknown
fn backend_accepted(failure: &Failure) -> bool {
    use crate::failure::{FailureClass, Replay};
    failure.replay() == Replay::Unknown
        && matches!(
            failure.class(),
            FailureClass::Permanent | FailureClass::Transient
        )
}

impl<P, B, K: Borrow<CircuitBreaker>, T> fmt::Debug for Call<P, B, K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("attempts", &self.retry.attempts())
            .field("phase", &self.phase)
            .field("breaker", &self.lease.breaker.is_some())
            .field("refusal", &self.refusal)
            .finish_non_exhaustive()
    }
}

/// An attempt in flight, begun by [`Call::begin_attempt`]: report how it
/// ended with [`succeed`](Attempt::succeed) or [`fail`](Attempt::fail).
/// Dropping it without a verdict cancels it (the breaker's permit goes
/// back, no attempt is counted).
///
/// ```
/// use stormguard::{Call, Instant, RetryPolicy};
/// let policy = RetryPolicy::default();
/// let mut call = Call::with_seed(&policy, 1);
/// {
///     let _attempt = call.begin_attempt(Instant::ZERO).unwrap();
///     // the caller went away: dropped without a verdict
/// }
/// assert!(!call.is_attempting() && !call.is_over());
/// assert_eq!(call.attempts(), 0);
/// ```
#[must_use = "report the attempt's outcome with `succeed` or `fail`; dropping it cancels the attempt"]
pub struct Attempt<'c, P, B, K: Borrow<CircuitBreaker>, T> {
    call: &'c mut Call<P, B, K, T>,
}

impl<P: Borrow<RetryPolicy>, B: Budget, K: Borrow<CircuitBreaker>, T: Borrow<AdaptiveThrottle>>
    Attempt<'_, P, B, K, T>
{
    /// The attempt succeeded at `now` (see [`Call::succeed`]).
    ///
    /// ```
    /// use stormguard::{Call, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Call::with_seed(&policy, 1);
    /// call.begin_attempt(Instant::ZERO).unwrap().succeed(Instant::ZERO);
    /// assert_eq!(call.attempts(), 1);
    /// ```
    pub fn succeed(self, now: Instant) {
        self.call.succeed(now);
    }

    /// The attempt failed with `failure` at `now`; what to do next (see
    /// [`Call::fail`]).
    ///
    /// ```
    /// use stormguard::{Call, Decision, Failure, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Call::with_seed(&policy, 1);
    /// let attempt = call.begin_attempt(Instant::ZERO).unwrap();
    /// assert!(matches!(attempt.fail(&Failure::transient(), Instant::ZERO), Decision::Retry { .. }));
    /// ```
    pub fn fail(self, failure: &Failure, now: Instant) -> Decision {
        self.call.fail(failure, now)
    }
}

impl<P, B, K: Borrow<CircuitBreaker>, T> Attempt<'_, P, B, K, T> {
    /// This attempt's number, from 1.
    ///
    /// ```
    /// use stormguard::{Call, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Call::with_seed(&policy, 1);
    /// assert_eq!(call.begin_attempt(Instant::ZERO).unwrap().number(), 1);
    /// ```
    pub fn number(&self) -> u32 {
        self.call.attempts().saturating_add(1)
    }

    /// Whether this attempt is the breaker's half-open probe.
    ///
    /// ```
    /// use stormguard::{Call, CircuitBreaker, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let breaker = CircuitBreaker::default();
    /// let mut call = Call::with_seed(&policy, 1).breaker(&breaker);
    /// assert!(!call.begin_attempt(Instant::ZERO).unwrap().is_probe());
    /// ```
    pub fn is_probe(&self) -> bool {
        self.call.lease.permit.is_some_and(|p| p.is_probe())
    }

    /// The time left before the call's deadline, if it has one.
    ///
    /// ```
    /// use stormguard::{Call, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Call::with_seed(&policy, 1);
    /// assert_eq!(call.begin_attempt(Instant::ZERO).unwrap().time_left(Instant::ZERO), None);
    /// ```
    pub fn time_left(&self, now: Instant) -> Option<Duration> {
        self.call.time_left(now)
    }

    /// Cancels the attempt: the same as dropping it.
    ///
    /// ```
    /// use stormguard::{Call, Instant, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut call = Call::with_seed(&policy, 1);
    /// call.begin_attempt(Instant::ZERO).unwrap().cancel();
    /// assert!(!call.is_attempting());
    /// ```
    pub fn cancel(self) {}
}

impl<P, B, K: Borrow<CircuitBreaker>, T> Drop for Attempt<'_, P, B, K, T> {
    fn drop(&mut self) {
        self.call.cancel_attempt();
    }
}

impl<P, B, K: Borrow<CircuitBreaker>, T> fmt::Debug for Attempt<'_, P, B, K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("number", &self.number())
            .field("probe", &self.is_probe())
            .finish()
    }
}

#[cfg(all(test, feature = "async", not(loom)))]
mod tests {
    extern crate std;
    use std::boxed::Box;
    use std::cell::RefCell;
    use std::vec::Vec;

    use super::*;
    use crate::budget::{CostBucket, RetryBudget, Throttle, Withdrawal};
    use crate::metrics::Metrics;

    /// A budget that records what it is told, and says whether it uses the
    /// time.
    #[derive(Default)]
    struct Recorder {
        log: RefCell<Vec<(&'static str, Option<Withdrawal>, Instant)>>,
        timed: bool,
    }

    impl Budget for Recorder {
        fn on_request(&self, now: Instant) {
            self.log.borrow_mut().push(("request", None, now));
        }
        fn on_failure(&self, _: &Failure, now: Instant) {
            self.log.borrow_mut().push(("failure", None, now));
        }
        fn try_retry(&self, _: &Failure, now: Instant) -> Option<Withdrawal> {
            self.log.borrow_mut().push(("try_retry", None, now));
            Some(Withdrawal::new(1))
        }
        fn on_success(&self, last: Option<Withdrawal>, now: Instant) {
            self.log.borrow_mut().push(("success", last, now));
        }
        fn needs_time(&self) -> bool {
            self.timed
        }
    }

    fn policy(metrics: Option<&'static Metrics>, deadline: bool) -> RetryPolicy {
        let mut builder = RetryPolicy::builder();
        if let Some(metrics) = metrics {
            builder = builder.metrics(metrics);
        }
        if deadline {
            builder = builder.deadline(Duration::from_secs(2));
        }
        builder.build().unwrap()
    }

    /// A first-try success reported without a call tells the budget and the
    /// metrics exactly what a call's first attempt and its success tell
    /// them, for every call without a breaker or a throttle.
    #[test]
    fn first_try_success_reports_what_a_call_reports() {
        assert!(first_attempt_runs_unbuilt(false, false));
        assert!(!first_attempt_runs_unbuilt(true, false));
        assert!(!first_attempt_runs_unbuilt(false, true));
        let now = Instant::from_secs(7);
        for (with_metrics, deadline) in [(false, false), (true, false), (true, true)] {
            let leak = || &*Box::leak(Box::new(Metrics::new()));
            let (m1, m2) = (leak(), leak());
            let p1 = policy(with_metrics.then_some(m1), deadline);
            let p2 = policy(with_metrics.then_some(m2), deadline);

            for timed in [false, true] {
                let r1 = Recorder {
                    timed,
                    ..Recorder::default()
                };
                let r2 = Recorder {
                    timed,
                    ..Recorder::default()
                };
                let mut call = Call::with_seed(&p1, 1).budget(&r1);
                call.start_attempt(now).unwrap();
                call.succeed(now);
                succeed_unbuilt(&p2, &r2, now);
                assert_eq!(*r1.log.borrow(), *r2.log.borrow());
                assert_eq!(r2.log.borrow().len(), 2);
            }

            // Budgets with state earn back the same.
            let (t1, t2) = (
                Throttle::new(10, 0.5).unwrap(),
                Throttle::new(10, 0.5).unwrap(),
            );
            for t in [&t1, &t2] {
                t.record_failure();
                t.record_failure();
            }
            let mut call = Call::with_seed(&p1, 1).budget(&t1);
            call.start_attempt(now).unwrap();
            call.succeed(now);
            succeed_unbuilt(&p2, &t2, now);
            assert_eq!(t1.tokens_milli(), t2.tokens_milli());
            assert_ne!(t2.tokens_milli(), 8_000);

            let (b1, b2) = (RetryBudget::default(), RetryBudget::default());
            let mut call = Call::with_seed(&p1, 1).budget(&b1);
            call.start_attempt(now).unwrap();
            call.succeed(now);
            succeed_unbuilt(&p2, &b2, now);
            assert_eq!(b1.available_milli(now), b2.available_milli(now));

            let (c1, c2) = (CostBucket::aws_standard(), CostBucket::aws_standard());
            for c in [&c1, &c2] {
                let _ = c.try_retry(&Failure::transient(), now);
            }
            let mut call = Call::with_seed(&p1, 1).budget(&c1);
            call.start_attempt(now).unwrap();
            call.succeed(now);
            succeed_unbuilt(&p2, &c2, now);
            assert_eq!(c1.tokens(), c2.tokens());

            let calls = 5; // each of the five calls above counted once
            assert_eq!(m1.snapshot(), m2.snapshot());
            assert_eq!(
                m2.snapshot().successes(),
                if with_metrics { calls } else { 0 }
            );
        }
    }

    /// The time left at the start of an unbuilt first attempt is what the
    /// call would say, near the end of time too.
    #[test]
    fn time_left_unbuilt_is_the_calls() {
        let plain = RetryPolicy::default();
        let with = policy(None, true);
        let end = Instant::from_nanos(u64::MAX);
        for now in [
            Instant::ZERO,
            Instant::from_secs(3),
            end.saturating_sub(Duration::from_secs(1)),
            end,
        ] {
            for p in [&plain, &with] {
                let mut call = Call::with_seed(p, 1);
                call.start_attempt(now).unwrap();
                assert_eq!(time_left_unbuilt(p, now), call.time_left(now));
            }
        }
        assert_eq!(
            time_left_unbuilt(&with, Instant::ZERO),
            Some(Duration::from_secs(2))
        );
        assert_eq!(time_left_unbuilt(&plain, Instant::ZERO), None);
    }

    /// The rule behind `needs_clock` is the same for a call and its parts.
    #[test]
    fn needs_clock_of_the_parts_is_the_calls() {
        let deadline = policy(None, true);
        let plain = RetryPolicy::default();
        let breaker = CircuitBreaker::default();
        let throttle = AdaptiveThrottle::sre();
        let ratio = RetryBudget::default();
        assert!(needs_clock(&deadline, &NoBudget, false, false));
        assert!(needs_clock(&plain, &ratio, false, false));
        assert!(needs_clock(&plain, &NoBudget, true, false));
        assert!(needs_clock(&plain, &NoBudget, false, true));
        assert!(!needs_clock(&plain, &NoBudget, false, false));
        assert!(Call::with_seed(&plain, 1).breaker(&breaker).needs_clock());
        assert!(Call::with_seed(&plain, 1).throttle(&throttle).needs_clock());
        assert!(Call::with_seed(&deadline, 1).needs_clock());
        assert!(Call::with_seed(&plain, 1).budget(&ratio).needs_clock());
        assert!(!Call::with_seed(&plain, 1).needs_clock());
    }
}
