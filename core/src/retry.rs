//! The per-call decision state machine.

use core::borrow::Borrow;
use core::time::Duration;

use crate::budget::{Budget, Withdrawal};
use crate::decision::{Decision, GiveUp};
use crate::failure::{Failure, FailureClass, Replay, RetryAfter};
use crate::idempotency::Idempotency;
use crate::policy::{DecisionOrder, RetryPolicy};
use crate::random::Random;
use crate::time::{duration_to_nanos, Instant};

/// One logical call's decisions: after each failed attempt, whether and
/// when to try again.
///
/// `Retry` never sleeps, never reads a clock and never allocates: the caller
/// reports each outcome with the current [`Instant`] and gets a
/// [`Decision`] back. It is the decision half of a call; [`Call`](crate::Call)
/// adds the other half — the circuit breaker's permit for each attempt, the
/// budget it shares with other calls, and the metrics of attempts that never
/// ran — and is what a driver should use. Drive a `Retry` by hand when there
/// is no breaker and you hold the budget yourself.
///
/// # Owning or borrowing the policy
/// `P` is anything that lends a [`RetryPolicy`]: `&RetryPolicy` (the usual
/// case, 48 bytes on 64-bit targets: the reference, the deadline, the random
/// generator, the previous delay, two counters, per-class counters, the last
/// budget withdrawal and the idempotency), a `RetryPolicy` by value (it is
/// `Copy`) for a struct or a language binding that cannot hold a borrow, or
/// an `Arc<RetryPolicy>`. One type serves all three, so there is no second
/// "state without the policy" type whose methods must be kept in step.
///
/// [`on_failure`](Retry::on_failure) applies its gates in this order (see
/// [`DecisionOrder`] for gRPC's):
///
/// 1. the class is not retryable, or a lower layer already retried →
///    [`GiveUp::NotRetryable`] (not counted against the budget);
/// 2. an [`Unknown`](crate::Replay::Unknown) replay of a non-idempotent method →
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
/// assert_eq!(core::mem::size_of::<Retry<&RetryPolicy>>(), 48);
///
/// // Owning its policy: no borrow to keep alive.
/// struct Client { call: Retry<RetryPolicy> }
/// let client = Client { call: Retry::with_seed(policy, Instant::ZERO, 1) };
/// assert_eq!(client.call.policy().max_attempts(), 2);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Retry<P = &'static RetryPolicy> {
    policy: P,
    /// `Instant::MAX` when the policy has no deadline (or the call has not
    /// started, for a [`Call`](crate::Call)).
    deadline: Instant,
    rng: Random,
    /// The previous computed delay (decorrelated jitter grows from it).
    prev_delay: u64,
    /// Outcomes reported so far: the attempts made.
    attempts: u32,
    /// Retries since the start or the last server-given delay: the `n` of
    /// the backoff (saturating: far beyond any cap).
    backoff_step: u16,
    /// Transparent retries (gRPC A6) made so far, which the attempt limit
    /// does not count.
    transparent: Transparent,
    /// Failed attempts per retryable class.
    class_failures: [u8; 3],
    last_withdrawal: Option<Withdrawal>,
    idempotency: Idempotency,
}

// A `Retry` stays a few machine words — it lives in every call's state, on
// the stack of a small chip too: 48 bytes on x86-64 and on
// thumbv6m-none-eabi. Checked whenever the crate is built, for any target.
const _: () = assert!(
    core::mem::size_of::<Retry<&RetryPolicy>>() <= 48,
    "`Retry<&RetryPolicy>` grew beyond 48 bytes"
);

impl<P: Borrow<RetryPolicy>> Retry<P> {
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
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn new(policy: P, now: Instant) -> Self {
        Retry::with_rng(policy, now, Random::new())
    }

    /// A call starting at `now` whose jitter comes from `seed`: the same
    /// seed gives the same delays. Without `std` this is the only
    /// constructor: derive the seed from something unique per device and
    /// per call (a hardware random number, a serial number mixed with a
    /// counter) — identical devices rebooting together after a power cut
    /// must not retry in lock-step.
    ///
    /// ```
    /// use stormguard::{Failure, Instant, NoBudget, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let mut a = Retry::with_seed(&policy, Instant::ZERO, 7);
    /// let mut b = Retry::with_seed(&policy, Instant::ZERO, 7);
    /// let f = Failure::transient();
    /// assert_eq!(a.on_failure(&f, Instant::ZERO, &NoBudget), b.on_failure(&f, Instant::ZERO, &NoBudget));
    /// ```
    pub fn with_seed(policy: P, now: Instant, seed: u64) -> Self {
        Retry::with_rng(policy, now, Random::with_seed(seed))
    }

    /// A call starting at `now` drawing its jitter from `rng`.
    ///
    /// ```
    /// use stormguard::{Instant, Random, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let call = Retry::with_rng(&policy, Instant::ZERO, Random::with_seed(3));
    /// assert_eq!(call.deadline(), None);
    /// ```
    pub fn with_rng(policy: P, now: Instant, rng: Random) -> Self {
        let mut retry = Retry::unstarted(policy, rng);
        retry.start_at(now);
        retry
    }

    /// A call whose deadline is not counted yet: [`Call`](crate::Call)
    /// starts it at its first attempt.
    pub(crate) fn unstarted(policy: P, rng: Random) -> Self {
        let idempotency = policy.borrow().idempotency();
        Retry {
            policy,
            deadline: Instant::MAX,
            rng,
            prev_delay: 0,
            attempts: 0,
            backoff_step: 0,
            transparent: Transparent::NONE,
            class_failures: [0; 3],
            last_withdrawal: None,
            idempotency,
        }
    }

    /// Replaces the jitter generator (before any draw: see `Call::reseed`).
    #[cfg(any(feature = "async", feature = "std"))]
    #[inline]
    pub(crate) fn reseed(&mut self, rng: Random) {
        self.rng = rng;
    }

    /// A uniform random `u32` from the call's generator (the adaptive
    /// throttle's draw).
    #[inline]
    pub(crate) fn draw_u32(&mut self) -> u32 {
        self.rng.u32()
    }

    /// Counts the deadline from `now`.
    #[inline]
    pub(crate) fn start_at(&mut self, now: Instant) {
        self.deadline = deadline_from(self.policy.borrow(), now);
    }

    /// Reports a failed attempt and decides what to do.
    ///
    /// Call it once per failed attempt, with `now` the time the failure was
    /// observed; then either wait `after` and start the next attempt, or
    /// stop and report the failure (see [`GiveUp::into_failure`] when a layer
    /// above also retries). Calling it late (a `now` long after the failure)
    /// only makes the deadline gate stricter; calling it twice for one
    /// failure counts two attempts. Passing a `now` earlier than a previous
    /// one (a clock that went backwards) is safe: it never makes a wait
    /// longer than the backoff or the server's capped hint.
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
        self.count_attempt(now, budget);
        let decision = self.decide(failure, now, budget);
        if let Some(metrics) = self.policy.borrow().metrics() {
            match decision {
                Decision::Retry { .. } => metrics.retry(),
                Decision::GiveUp(reason) => metrics.give_up(reason),
            }
        }
        decision
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
    #[inline]
    pub fn on_success<B: Budget + ?Sized>(&mut self, now: Instant, budget: &B) {
        self.count_attempt(now, budget);
        report_success(
            self.policy.borrow(),
            self.last_withdrawal.take(),
            now,
            budget,
        );
    }

    fn decide<B: Budget + ?Sized>(
        &mut self,
        failure: &Failure,
        now: Instant,
        budget: &B,
    ) -> Decision {
        let grpc = self.policy.borrow().decision_order() == DecisionOrder::Grpc;
        let server_stop = matches!(failure.retry_after(), Some(RetryAfter::Stop));
        if server_stop && grpc {
            budget.on_failure(failure, now);
            return Decision::GiveUp(GiveUp::ServerSaidStop);
        }
        let class = failure.class();
        if !class.is_retryable() || failure.is_already_retried() {
            return Decision::GiveUp(GiveUp::NotRetryable);
        }
        if grpc {
            if let Some(decision) = self.transparent_retry(failure, now) {
                return decision;
            }
        }
        let policy = self.policy.borrow();
        budget.on_failure(failure, now);
        if !self.idempotency.allows_replay(failure.replay()) {
            return Decision::GiveUp(GiveUp::UnsafeToReplay);
        }
        if server_stop {
            return Decision::GiveUp(GiveUp::ServerSaidStop);
        }
        let counted = self.attempts.saturating_sub(self.transparent.count());
        if attempts_exhausted(policy, counted, &mut self.class_failures, class) {
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
                    backoff.delay_nanos(
                        u32::from(self.backoff_step),
                        self.prev_delay,
                        &mut self.rng,
                    ),
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

    /// gRPC A6's transparent retries: an attempt the server application never
    /// saw is retried without counting against `maxAttempts` or the budget.
    /// One that never left the client ([`Replay::NotSent`]) is retried until
    /// the deadline (after the backoff, so a refused connection is not a busy
    /// loop); one the server refused before its application ran it
    /// ([`Replay::Rejected`]) once, at once — A6's bound, as that retry puts
    /// load on the wire. `None`: the failure goes through the ordinary gates.
    fn transparent_retry(&mut self, failure: &Failure, now: Instant) -> Option<Decision> {
        let after = match failure.replay() {
            Replay::Rejected if !self.transparent.used_rejected() => {
                self.transparent = self.transparent.after_rejected();
                Duration::ZERO
            }
            Replay::NotSent => {
                let delay = self.policy.borrow().backoff().delay_nanos(
                    u32::from(self.backoff_step),
                    self.prev_delay,
                    &mut self.rng,
                );
                self.backoff_step = self.backoff_step.saturating_add(1);
                self.prev_delay = delay;
                self.transparent = self.transparent.after_not_sent();
                Duration::from_nanos(delay)
            }
            _ => return None,
        };
        if self.deadline != Instant::MAX && now.saturating_add(after) >= self.deadline {
            return Some(Decision::GiveUp(GiveUp::DeadlineExceeded));
        }
        Some(Decision::Retry { after })
    }

    #[inline]
    fn count_attempt<B: Budget + ?Sized>(&mut self, now: Instant, budget: &B) {
        count_attempt(self.policy.borrow(), self.attempts == 0, now, budget);
        self.attempts = self.attempts.saturating_add(1);
    }

    /// The wait the backoff would give if the attempt running now fails
    /// with a retryable failure that carries no server hint: the very
    /// delay [`on_failure`](Retry::on_failure) would then draw (jitter
    /// included), without drawing it.
    ///
    /// Ask it to show a caller what comes next (stamina's
    /// `Attempt.next_wait`). It is a forecast, not a promise: a server's
    /// delay replaces it, and the attempt limit, the deadline or the budget
    /// may still refuse the retry.
    ///
    /// ```
    /// use stormguard::{Decision, Failure, Instant, NoBudget, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default(); // full jitter from 100 ms
    /// let mut call = Retry::with_seed(&policy, Instant::ZERO, 9);
    /// let forecast = call.next_backoff();
    /// assert_eq!(
    ///     call.on_failure(&Failure::transient(), Instant::ZERO, &NoBudget),
    ///     Decision::Retry { after: forecast },
    /// );
    /// ```
    pub fn next_backoff(&self) -> Duration {
        let mut rng = self.rng.clone();
        Duration::from_nanos(self.policy.borrow().backoff().delay_nanos(
            u32::from(self.backoff_step),
            self.prev_delay,
            &mut rng,
        ))
    }

    /// The policy this call follows.
    ///
    /// ```
    /// use stormguard::{Instant, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// assert_eq!(Retry::with_seed(&policy, Instant::ZERO, 1).policy().max_attempts(), 3);
    /// ```
    pub fn policy(&self) -> &RetryPolicy {
        self.policy.borrow()
    }
}

impl<P> Retry<P> {
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
    #[must_use]
    pub fn with_idempotency(mut self, idempotency: Idempotency) -> Self {
        self.set_idempotency(idempotency);
        self
    }

    /// [`with_idempotency`](Retry::with_idempotency) in place.
    #[inline]
    pub(crate) fn set_idempotency(&mut self, idempotency: Idempotency) {
        self.idempotency = idempotency;
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
        self.attempts
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
        some_deadline(self.deadline)
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
        time_left(self.deadline, now)
    }

    /// The idempotency this call assumes.
    ///
    /// ```
    /// use stormguard::{Idempotency, Instant, Retry, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// assert_eq!(Retry::with_seed(&policy, Instant::ZERO, 1).idempotency(), Idempotency::Idempotent);
    /// ```
    pub const fn idempotency(&self) -> Idempotency {
        self.idempotency
    }
}

/// The transparent retries of a call: how many (15 bits, saturating), and
/// whether the one immediate retry after a server-library refusal was used
/// (the top bit). One `u16` keeps a [`Retry`] at 48 bytes. Past 32 767
/// transparent retries the count stops, so the extra ones count against
/// `max_attempts`: a call never retries more than its policy allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transparent(u16);

impl Transparent {
    const NONE: Transparent = Transparent(0);
    const REJECTED: u16 = 1 << 15;

    fn count(self) -> u32 {
        u32::from(self.0 & !Self::REJECTED)
    }

    fn used_rejected(self) -> bool {
        self.0 & Self::REJECTED != 0
    }

    fn bumped(self) -> u16 {
        (self.0 & !Self::REJECTED)
            .saturating_add(1)
            .min(!Self::REJECTED)
    }

    fn after_not_sent(self) -> Transparent {
        Transparent(self.bumped() | (self.0 & Self::REJECTED))
    }

    fn after_rejected(self) -> Transparent {
        Transparent(self.bumped() | Self::REJECTED)
    }
}

/// Counts a failure of `class` and says whether the overall or the class's
/// attempt limit is reached.
fn attempts_exhausted(
    policy: &RetryPolicy,
    attempts: u32,
    class_failures: &mut [u8; 3],
    class: FailureClass,
) -> bool {
    let i = class.index();
    let Some(count) = class_failures.get_mut(i) else {
        return true;
    };
    *count = count.saturating_add(1);
    let limit = policy.class_limit(i);
    attempts >= policy.max_attempts() || (limit != 0 && *count >= limit)
}

/// What an attempt's outcome tells the budget and the metrics, whatever it
/// was: the budget sees the call's first attempt as a request.
#[inline]
fn count_attempt<B: Budget + ?Sized>(policy: &RetryPolicy, first: bool, now: Instant, budget: &B) {
    if first {
        budget.on_request(now);
    }
    if let Some(metrics) = policy.metrics() {
        metrics.attempt();
    }
}

/// What a success tells the metrics and the budget (with the withdrawal of
/// the retry that led to it, if any).
#[inline]
fn report_success<B: Budget + ?Sized>(
    policy: &RetryPolicy,
    withdrawal: Option<Withdrawal>,
    now: Instant,
    budget: &B,
) {
    if let Some(metrics) = policy.metrics() {
        metrics.success();
    }
    budget.on_success(withdrawal, now);
}

/// What a new [`Retry`]'s [`on_success`](Retry::on_success) reports, without
/// the `Retry`: a driver that builds a call's state only when its first
/// attempt fails reports a first-try success with this (see
/// `Call::succeed_unbuilt`).
#[cfg(feature = "async")]
#[inline]
pub(crate) fn first_try_success<B: Budget + ?Sized>(
    policy: &RetryPolicy,
    now: Instant,
    budget: &B,
) {
    count_attempt(policy, true, now, budget);
    report_success(policy, None, now, budget);
}

/// The deadline of a call whose first attempt began at `now`:
/// `Instant::MAX` when the policy has none.
#[inline]
fn deadline_from(policy: &RetryPolicy, now: Instant) -> Instant {
    match policy.deadline() {
        Some(d) => now.saturating_add(d),
        None => Instant::MAX,
    }
}

/// `deadline`, unless it is `Instant::MAX` (none).
const fn some_deadline(deadline: Instant) -> Option<Instant> {
    if deadline.as_nanos() == Instant::MAX.as_nanos() {
        None
    } else {
        Some(deadline)
    }
}

/// The time left at `now` before `deadline` (`Instant::MAX`: none).
const fn time_left(deadline: Instant, now: Instant) -> Option<Duration> {
    match some_deadline(deadline) {
        Some(deadline) => Some(deadline.saturating_duration_since(now)),
        None => None,
    }
}

/// What [`Retry::time_left`] answers at the start of the first attempt, at
/// `now`, without the `Retry` (see [`first_try_success`]).
#[cfg(feature = "async")]
pub(crate) fn first_time_left(policy: &RetryPolicy, now: Instant) -> Option<Duration> {
    time_left(deadline_from(policy, now), now)
}
