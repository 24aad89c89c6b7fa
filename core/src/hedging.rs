//! Hedged requests: send copies of a request over time and take the first
//! answer — gRPC proposal A6's hedging policy, as a sans-IO state machine.

use core::borrow::Borrow;
use core::fmt;
use core::time::Duration;

use crate::budget::{Budget, NoBudget};
use crate::config::{ConfigError, ConfigErrorKind};
use crate::decision::GiveUp;
use crate::failure::{Failure, RetryAfter};
use crate::idempotency::Idempotency;
use crate::time::{duration_to_nanos, Instant};

/// The most copies of one request a hedged call may send: A6's default
/// client-side cap on `maxAttempts`.
pub const MAX_HEDGED_ATTEMPTS: u32 = 5;

/// How a call hedges: up to `max_attempts` copies, one every
/// `hedging_delay` until an answer arrives (gRPC A6 `hedgingPolicy`).
///
/// Hedging trades load for tail latency: a request stuck behind a slow
/// replica is overtaken by a copy sent a little later to another one ("The
/// Tail at Scale", Dean & Barroso). It replays the request while the first
/// copy may still be running, so it is only for idempotent (or keyed)
/// methods: a [`NonIdempotent`](Idempotency::NonIdempotent) policy never
/// sends a second copy.
///
/// ```
/// use core::time::Duration;
/// use stormguard::HedgingPolicy;
/// let policy = HedgingPolicy::builder()
///     .max_attempts(3)
///     .hedging_delay(Duration::from_millis(50))
///     .deadline(Duration::from_secs(2))
///     .build()?;
/// assert_eq!(policy.max_attempts(), 3);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HedgingPolicy {
    max_attempts: u32,
    delay_nanos: u64,
    deadline: Option<Duration>,
    max_server_delay: Duration,
    idempotency: Idempotency,
}

/// The unvalidated settings of a [`HedgingPolicy`].
///
/// ```
/// let p = stormguard::HedgingPolicy::builder().build()?;
/// assert_eq!(p.max_attempts(), 3);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a builder does nothing until `build()`"]
pub struct HedgingPolicyBuilder {
    max_attempts: u32,
    delay: Duration,
    deadline: Option<Duration>,
    max_server_delay: Duration,
    idempotency: Idempotency,
    cap: u32,
}

impl HedgingPolicy {
    /// A builder with A6's example numbers where it has them: 3 copies,
    /// 100 ms apart, no deadline, server pushbacks honoured up to 60 s,
    /// idempotent.
    ///
    /// ```
    /// use core::time::Duration;
    /// let p = stormguard::HedgingPolicy::builder().build()?;
    /// assert_eq!(p.hedging_delay(), Duration::from_millis(100));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn builder() -> HedgingPolicyBuilder {
        HedgingPolicyBuilder {
            max_attempts: 3,
            delay: Duration::from_millis(100),
            deadline: None,
            max_server_delay: Duration::from_secs(60),
            idempotency: Idempotency::Idempotent,
            cap: MAX_HEDGED_ATTEMPTS,
        }
    }

    /// The most copies sent, the first included.
    ///
    /// ```
    /// assert_eq!(stormguard::HedgingPolicy::builder().max_attempts(4).build()?.max_attempts(), 4);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The time between two copies.
    ///
    /// ```
    /// assert!(!stormguard::HedgingPolicy::builder().build()?.hedging_delay().is_zero());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn hedging_delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos)
    }

    /// The deadline of the whole call, from its start.
    ///
    /// ```
    /// assert_eq!(stormguard::HedgingPolicy::builder().build()?.deadline(), None);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The method's idempotency.
    ///
    /// ```
    /// use stormguard::{HedgingPolicy, Idempotency};
    /// assert_eq!(HedgingPolicy::builder().build()?.idempotency(), Idempotency::Idempotent);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn idempotency(&self) -> Idempotency {
        self.idempotency
    }
}

impl HedgingPolicyBuilder {
    /// The most copies sent, the first included (A6 `maxAttempts`: two or
    /// more; values above the cap — 5 by default — are treated as the cap).
    ///
    /// ```
    /// let p = stormguard::HedgingPolicy::builder().max_attempts(9).build()?;
    /// assert_eq!(p.max_attempts(), 5);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The client-side cap on `max_attempts` (A6: 5 by default, which the
    /// client may change), in 2..=5: a hedged call's copies run at once, and
    /// the driver holds them without allocating.
    ///
    /// ```
    /// let p = stormguard::HedgingPolicy::builder().max_attempts(5).attempts_cap(3).build()?;
    /// assert_eq!(p.max_attempts(), 3);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn attempts_cap(mut self, cap: u32) -> Self {
        self.cap = cap;
        self
    }

    /// The time between two copies (A6 `hedgingDelay`; zero sends every
    /// copy at once).
    ///
    /// ```
    /// use core::time::Duration;
    /// let p = stormguard::HedgingPolicy::builder().hedging_delay(Duration::ZERO).build()?;
    /// assert!(p.hedging_delay().is_zero());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn hedging_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The deadline of the whole call, covering every copy (non-zero).
    ///
    /// ```
    /// use core::time::Duration;
    /// let err = stormguard::HedgingPolicy::builder().deadline(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), "deadline");
    /// ```
    pub const fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The longest server pushback honoured before the next copy.
    ///
    /// ```
    /// use core::time::Duration;
    /// let p = stormguard::HedgingPolicy::builder().max_server_delay(Duration::from_secs(1)).build();
    /// assert!(p.is_ok());
    /// ```
    pub const fn max_server_delay(mut self, max: Duration) -> Self {
        self.max_server_delay = max;
        self
    }

    /// The method's idempotency: a non-idempotent method is never hedged.
    ///
    /// ```
    /// use stormguard::{HedgingPolicy, Idempotency};
    /// let p = HedgingPolicy::builder().idempotency(Idempotency::Keyed).build()?;
    /// assert_eq!(p.idempotency(), Idempotency::Keyed);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field: `maxAttempts` below 2 (the A6
    /// name, as a service config spells it), `attempts_cap` outside 2..=5,
    /// `deadline` zero.
    ///
    /// ```
    /// let err = stormguard::HedgingPolicy::builder().max_attempts(1).build().unwrap_err();
    /// assert_eq!(err.field(), "maxAttempts");
    /// ```
    pub const fn build(self) -> Result<HedgingPolicy, ConfigError> {
        if self.max_attempts < 2 {
            return Err(ConfigError::new(
                "maxAttempts",
                ConfigErrorKind::OutOfRange("two or more"),
            ));
        }
        if self.cap < 2 || self.cap > MAX_HEDGED_ATTEMPTS {
            return Err(ConfigError::new(
                "attempts_cap",
                ConfigErrorKind::OutOfRange("between 2 and 5"),
            ));
        }
        if let Some(deadline) = self.deadline {
            if deadline.is_zero() {
                return Err(ConfigError::new("deadline", ConfigErrorKind::Zero));
            }
        }
        Ok(HedgingPolicy {
            max_attempts: if self.max_attempts > self.cap {
                self.cap
            } else {
                self.max_attempts
            },
            delay_nanos: duration_to_nanos(self.delay),
            deadline: self.deadline,
            max_server_delay: self.max_server_delay,
            idempotency: self.idempotency,
        })
    }
}

/// What a hedged call does next.
///
/// ```
/// use stormguard::{Hedge, HedgeStep, HedgingPolicy, Instant};
/// let policy = HedgingPolicy::builder().build()?;
/// let mut hedge = Hedge::new(&policy, Instant::ZERO);
/// assert_eq!(hedge.poll(Instant::ZERO), HedgeStep::Send(0));
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HedgeStep {
    /// Send copy number `n` now (0 is the original request), then call
    /// [`Hedge::poll`] again: several copies may be due at once.
    Send(u32),
    /// Nothing to send before this instant (the next copy, or the
    /// deadline); wait for it or for an answer, whichever comes first.
    WaitUntil(Instant),
    /// Nothing to send ever again; wait for the copies in flight.
    WaitForAnswers,
    /// The call is over: the copy that succeeded, or why it failed. Cancel
    /// every copy still in flight.
    Finished(Result<u32, GiveUp>),
}

/// One hedged call: when to send each copy, and when to stop (gRPC A6).
///
/// The rules, as A6's "Summary of Retry and Hedging Logic" states them:
///
/// - copy *k* is sent *k* × `hedging_delay` after the first, while no
///   answer has arrived and fewer than `max_attempts` were sent;
/// - **OK**: the call succeeds with that copy; cancel the others;
/// - **a retryable (non-fatal) failure**: the next copy is sent at once;
///   later ones resume `hedging_delay` apart;
/// - **a fatal (permanent) failure**: the call fails; cancel the others;
/// - **pushback "retry in n"**: the next copy waits n (capped by the
///   policy); later ones resume `hedging_delay` apart from it;
/// - **pushback "don't retry"**: no more copies; those in flight may still
///   succeed;
/// - every copy after the first needs the budget to allow a retry (A6: "the
///   first outgoing RPC will always be sent, but subsequent hedged RPCs will
///   only be sent if `token_count` is greater than the threshold"); a
///   refused copy is not sent and none after it;
/// - the budget counts retryable failures and "don't retry" pushbacks as
///   failures, and the success;
/// - the deadline bounds everything: no copy is sent at or after it, and
///   the call fails with [`GiveUp::DeadlineExceeded`] when it passes;
/// - when no copy is in flight and none may be sent, the call fails with
///   the reason the last one could not be: attempts exhausted, budget,
///   server stop.
///
/// Sans-IO like [`Call`](crate::Call): the caller sends copies when told,
/// reports each answer with [`succeeded`](Self::succeeded) or
/// [`failed`](Self::failed), and waits as [`poll`](Self::poll) says.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Failure, GiveUp, Hedge, HedgeStep, HedgingPolicy, Instant};
///
/// let policy = HedgingPolicy::builder()
///     .max_attempts(3)
///     .hedging_delay(Duration::from_millis(50))
///     .build()?;
/// let at = Instant::from_millis;
/// let mut hedge = Hedge::new(&policy, at(0));
/// assert_eq!(hedge.poll(at(0)), HedgeStep::Send(0));
/// assert_eq!(hedge.poll(at(0)), HedgeStep::WaitUntil(at(50)));
/// // The first copy is slow; at 50 ms the second goes out.
/// assert_eq!(hedge.poll(at(50)), HedgeStep::Send(1));
/// // It fails with a retryable error: the third goes out at once.
/// assert_eq!(hedge.failed(1, &Failure::transient(), at(60)), HedgeStep::Send(2));
/// // The first copy answers: the call succeeds, the third is cancelled.
/// assert_eq!(hedge.succeeded(0, at(70)), HedgeStep::Finished(Ok(0)));
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
pub struct Hedge<P, B = NoBudget> {
    policy: P,
    budget: B,
    /// `Instant::MAX` without a deadline.
    deadline: Instant,
    /// When the next copy is due (`Instant::MAX`: not scheduled).
    next_at: Instant,
    /// Copies sent so far; the next copy's number.
    sent: u32,
    /// One bit per copy in flight.
    in_flight: u8,
    /// Why no more copies may be sent, once that is so.
    stopped: Option<GiveUp>,
    /// The outcome, once the call is over.
    finished: Option<Result<u32, GiveUp>>,
}

impl<P: Borrow<HedgingPolicy>> Hedge<P> {
    /// A hedged call starting at `now`, with no budget.
    ///
    /// ```
    /// use stormguard::{Hedge, HedgingPolicy, Instant};
    /// let policy = HedgingPolicy::builder().build()?;
    /// let hedge = Hedge::new(&policy, Instant::ZERO);
    /// assert_eq!(hedge.sent(), 0);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn new(policy: P, now: Instant) -> Self {
        let deadline = match policy.borrow().deadline() {
            Some(d) => now.saturating_add(d),
            None => Instant::MAX,
        };
        Hedge {
            policy,
            budget: NoBudget,
            deadline,
            next_at: now,
            sent: 0,
            in_flight: 0,
            stopped: None,
            finished: None,
        }
    }
}

impl<P: Borrow<HedgingPolicy>, B: Budget> Hedge<P, B> {
    /// The same call sharing `budget` (A6's `retryThrottling`: a
    /// [`Throttle`](crate::Throttle)).
    ///
    /// ```
    /// use stormguard::{Hedge, HedgingPolicy, Instant, Throttle};
    /// let policy = HedgingPolicy::builder().build()?;
    /// let throttle = Throttle::new(10, 0.1)?;
    /// let hedge = Hedge::new(&policy, Instant::ZERO).budget(&throttle);
    /// # let _ = hedge;
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    #[must_use]
    pub fn budget<B2: Budget>(self, budget: B2) -> Hedge<P, B2> {
        Hedge {
            policy: self.policy,
            budget,
            deadline: self.deadline,
            next_at: self.next_at,
            sent: self.sent,
            in_flight: self.in_flight,
            stopped: self.stopped,
            finished: self.finished,
        }
    }

    /// What to do at `now`: a copy to send, a time to wait until, or the
    /// end. Call it after every answer and whenever a wait is over;
    /// calling it early only answers "wait".
    ///
    /// ```
    /// use stormguard::{Hedge, HedgeStep, HedgingPolicy, Instant};
    /// let policy = HedgingPolicy::builder().max_attempts(2).build()?;
    /// let mut hedge = Hedge::new(&policy, Instant::ZERO);
    /// assert_eq!(hedge.poll(Instant::ZERO), HedgeStep::Send(0));
    /// assert_eq!(hedge.poll(Instant::from_millis(100)), HedgeStep::Send(1));
    /// assert_eq!(hedge.poll(Instant::from_millis(200)), HedgeStep::WaitForAnswers);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn poll(&mut self, now: Instant) -> HedgeStep {
        if let Some(outcome) = self.finished {
            return HedgeStep::Finished(outcome);
        }
        // `Instant::MAX` is "no deadline": even a clock at the end of time
        // has not passed it.
        if self.deadline != Instant::MAX && now >= self.deadline {
            return self.finish(Err(GiveUp::DeadlineExceeded));
        }
        let (max_attempts, delay, idempotency) = {
            let policy = self.policy.borrow();
            (policy.max_attempts, policy.delay_nanos, policy.idempotency)
        };
        // A copy replays a request that may be running: only for a method
        // that allows it.
        let may_hedge = self.sent == 0 || idempotency.allows_replay(crate::Replay::Unknown);
        if self.stopped.is_none() && self.sent < max_attempts && may_hedge && now >= self.next_at {
            if self.sent > 0 {
                // A6: every copy after the first needs the throttle's leave.
                let ask = Failure::transient();
                if self.budget.try_retry(&ask, now).is_none() {
                    self.stopped = Some(GiveUp::BudgetExhausted);
                    return self.idle(now);
                }
            } else {
                self.budget.on_request(now);
            }
            let n = self.sent;
            self.sent += 1;
            self.in_flight |= 1 << n;
            self.next_at = now.saturating_add(Duration::from_nanos(delay));
            return HedgeStep::Send(n);
        }
        if self.sent >= max_attempts || !may_hedge {
            self.stopped.get_or_insert(GiveUp::AttemptsExhausted);
        }
        self.idle(now)
    }

    /// Nothing to send now: wait, or end the call if nothing is in flight
    /// and nothing more may be sent.
    fn idle(&mut self, now: Instant) -> HedgeStep {
        match self.stopped {
            Some(reason) if self.in_flight == 0 => self.finish(Err(reason)),
            Some(_) if self.deadline == Instant::MAX => HedgeStep::WaitForAnswers,
            Some(_) => HedgeStep::WaitUntil(self.deadline),
            None => HedgeStep::WaitUntil(if self.next_at < self.deadline {
                self.next_at.max(now)
            } else {
                self.deadline
            }),
        }
    }

    fn finish(&mut self, outcome: Result<u32, GiveUp>) -> HedgeStep {
        self.finished = Some(outcome);
        self.in_flight = 0;
        HedgeStep::Finished(outcome)
    }

    /// Copy `n` answered successfully at `now`: the call is over (cancel
    /// the others). An answer for a copy not in flight, or after the end,
    /// changes nothing.
    ///
    /// ```
    /// use stormguard::{Hedge, HedgeStep, HedgingPolicy, Instant};
    /// let policy = HedgingPolicy::builder().build()?;
    /// let mut hedge = Hedge::new(&policy, Instant::ZERO);
    /// let _ = hedge.poll(Instant::ZERO);
    /// assert_eq!(hedge.succeeded(0, Instant::ZERO), HedgeStep::Finished(Ok(0)));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn succeeded(&mut self, n: u32, now: Instant) -> HedgeStep {
        if self.finished.is_some() || !self.is_in_flight(n) {
            return self.poll(now);
        }
        self.budget.on_success(None, now);
        self.finish(Ok(n))
    }

    /// Copy `n` failed with `failure` at `now`: what to do next (see the
    /// rules). A fatal failure ends the call; a retryable one sends the next
    /// copy at once, a pushback after its delay.
    ///
    /// ```
    /// use stormguard::{Failure, GiveUp, Hedge, HedgeStep, HedgingPolicy, Instant};
    /// let policy = HedgingPolicy::builder().build()?;
    /// let mut hedge = Hedge::new(&policy, Instant::ZERO);
    /// let _ = hedge.poll(Instant::ZERO);
    /// assert_eq!(
    ///     hedge.failed(0, &Failure::permanent(), Instant::ZERO),
    ///     HedgeStep::Finished(Err(GiveUp::NotRetryable)),
    /// );
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn failed(&mut self, n: u32, failure: &Failure, now: Instant) -> HedgeStep {
        if self.finished.is_some() || !self.is_in_flight(n) {
            return self.poll(now);
        }
        self.in_flight &= !(1 << n);
        let stop = matches!(failure.retry_after(), Some(RetryAfter::Stop));
        if !failure.class().is_retryable() || failure.is_already_retried() {
            if stop {
                self.budget.on_failure(failure, now);
            }
            return self.finish(Err(GiveUp::NotRetryable));
        }
        self.budget.on_failure(failure, now);
        match failure.retry_after() {
            Some(RetryAfter::Stop) => {
                self.stopped = Some(GiveUp::ServerSaidStop);
            }
            Some(RetryAfter::Delay(hint)) => {
                let cap = self.policy.borrow().max_server_delay;
                self.next_at = now.saturating_add(hint.min(cap));
            }
            None => self.next_at = now,
        }
        self.poll(now)
    }

    fn is_in_flight(&self, n: u32) -> bool {
        n < 8 && self.in_flight & (1 << n) != 0
    }
}

impl<P, B> Hedge<P, B> {
    /// Copies sent so far.
    ///
    /// ```
    /// use stormguard::{Hedge, HedgingPolicy, Instant};
    /// let policy = HedgingPolicy::builder().build()?;
    /// let mut hedge = Hedge::new(&policy, Instant::ZERO);
    /// let _ = hedge.poll(Instant::ZERO);
    /// assert_eq!(hedge.sent(), 1);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn sent(&self) -> u32 {
        self.sent
    }

    /// The copies in flight, as a bit set (bit *n* for copy *n*).
    ///
    /// ```
    /// use stormguard::{Hedge, HedgingPolicy, Instant};
    /// let policy = HedgingPolicy::builder().build()?;
    /// let mut hedge = Hedge::new(&policy, Instant::ZERO);
    /// let _ = hedge.poll(Instant::ZERO);
    /// assert_eq!(hedge.in_flight(), 0b1);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn in_flight(&self) -> u8 {
        self.in_flight
    }

    /// The instant by which the call must be over, if it has a deadline.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Hedge, HedgingPolicy, Instant};
    /// let policy = HedgingPolicy::builder().deadline(Duration::from_secs(1)).build()?;
    /// assert_eq!(Hedge::new(&policy, Instant::ZERO).deadline(), Some(Instant::from_secs(1)));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn deadline(&self) -> Option<Instant> {
        if self.deadline.as_nanos() == Instant::MAX.as_nanos() {
            None
        } else {
            Some(self.deadline)
        }
    }
}

impl<P, B> fmt::Debug for Hedge<P, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("sent", &self.sent)
            .field("in_flight", &self.in_flight)
            .field("next_at", &self.next_at)
            .field("stopped", &self.stopped)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
