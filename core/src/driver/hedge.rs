//! The hedging driver: a future that runs copies of an operation at once,
//! as a [`Hedge`] schedules them, and returns the first success.

use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::budget::{Budget, NoBudget};
use crate::driver::{
    AnyError, Classify, Clock, LastAttempt, RetryError, RetryIf, SetAClockOrUseARuntimeAdapter,
    SetASleeperOrUseARuntimeAdapter, Sleeper,
};
use crate::failure::Failure;
use crate::hedging::{Hedge, HedgeStep, HedgingPolicy, MAX_HEDGED_ATTEMPTS};
use crate::time::Instant;

/// A hedged call being configured: `(|| fetch()).hedge(&policy)`, then
/// `.await` it. Made by `RetryExt::hedge` (the core's, or a runtime
/// adapter's, which sets the sleeper and the clock).
///
/// Every copy of the operation runs inside the future — at most five, held
/// inline, nothing spawned or allocated — and the first success wins: the
/// other copies are dropped (cancelled) at once, as they are when the future
/// is dropped. See [`Hedge`] for the rules.
///
/// ```
/// use core::future::{ready, Ready};
/// use core::time::Duration;
/// use stormguard::driver::{RetryExt, StdClock};
/// use stormguard::HedgingPolicy;
///
/// fn no_wait(_: Duration) -> Ready<()> { ready(()) }
/// let policy = HedgingPolicy::builder().max_attempts(2).build()?;
/// let call = (|| ready(Ok::<u8, ()>(7)))
///     .hedge(&policy)
///     .sleeper(no_wait)
///     .clock(StdClock)
///     .when(|_| stormguard::Failure::transient());
/// # let _ = call;
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
#[must_use = "a hedged call does nothing until it is awaited"]
pub struct Hedging<'a, Op, S, C, B = NoBudget, K = AnyError> {
    op: Op,
    sleeper: S,
    clock: C,
    budget: B,
    classify: K,
    policy: &'a HedgingPolicy,
}

impl<'a, Op> Hedging<'a, Op, SetASleeperOrUseARuntimeAdapter, SetAClockOrUseARuntimeAdapter> {
    pub(crate) fn new(op: Op, policy: &'a HedgingPolicy) -> Self {
        Hedging {
            op,
            sleeper: SetASleeperOrUseARuntimeAdapter,
            clock: SetAClockOrUseARuntimeAdapter,
            budget: NoBudget,
            classify: AnyError,
            policy,
        }
    }
}

impl<'a, Op, Fut, T, E, S, C, B, K> Hedging<'a, Op, S, C, B, K>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    /// Sleeps with `sleeper` until the next copy is due (the adapters set
    /// it).
    ///
    /// ```
    /// # use core::future::{ready, Ready};
    /// # use core::time::Duration;
    /// use stormguard::driver::RetryExt;
    /// fn no_wait(_: Duration) -> Ready<()> { ready(()) }
    /// let policy = stormguard::HedgingPolicy::builder().build()?;
    /// let call = (|| ready(Ok::<(), ()>(()))).hedge(&policy).sleeper(no_wait);
    /// # let _ = call;
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn sleeper<S2: Sleeper>(self, sleeper: S2) -> Hedging<'a, Op, S2, C, B, K> {
        Hedging {
            op: self.op,
            sleeper,
            clock: self.clock,
            budget: self.budget,
            classify: self.classify,
            policy: self.policy,
        }
    }

    /// Reads the time from `clock` (the adapters set it).
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::{RetryExt, StdClock};
    /// let policy = stormguard::HedgingPolicy::builder().build()?;
    /// let call = (|| ready(Ok::<(), ()>(()))).hedge(&policy).clock(StdClock);
    /// # let _ = call;
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn clock<C2: Clock>(self, clock: C2) -> Hedging<'a, Op, S, C2, B, K> {
        Hedging {
            op: self.op,
            sleeper: self.sleeper,
            clock,
            budget: self.budget,
            classify: self.classify,
            policy: self.policy,
        }
    }

    /// Shares `budget` (A6: a `Throttle`): every copy after the first needs
    /// its leave.
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// use stormguard::Throttle;
    /// let policy = stormguard::HedgingPolicy::builder().build()?;
    /// let throttle = Throttle::new(10, 0.1)?;
    /// let call = (|| ready(Ok::<(), ()>(()))).hedge(&policy).budget(&throttle);
    /// # let _ = call;
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn budget<B2: Budget>(self, budget: B2) -> Hedging<'a, Op, S, C, B2, K> {
        Hedging {
            op: self.op,
            sleeper: self.sleeper,
            clock: self.clock,
            budget,
            classify: self.classify,
            policy: self.policy,
        }
    }

    /// Classifies a copy's error: a retryable failure is A6's non-fatal
    /// (the next copy goes at once), a permanent one fatal (the call ends).
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// use stormguard::Failure;
    /// let policy = stormguard::HedgingPolicy::builder().build()?;
    /// let call = (|| ready(Err::<(), u16>(503)))
    ///     .hedge(&policy)
    ///     .when(|status| if *status >= 500 { Failure::transient() } else { Failure::permanent() });
    /// # let _ = call;
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn when<K2>(self, classify: K2) -> Hedging<'a, Op, S, C, B, K2>
    where
        K2: FnMut(&E) -> Failure,
    {
        Hedging {
            op: self.op,
            sleeper: self.sleeper,
            clock: self.clock,
            budget: self.budget,
            classify,
            policy: self.policy,
        }
    }

    /// Non-fatal errors are those for which `non_fatal` is `true`; every
    /// other error ends the call.
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// let policy = stormguard::HedgingPolicy::builder().build()?;
    /// let call = (|| ready(Err::<(), u16>(503))).hedge(&policy).retry_if(|s| *s == 503);
    /// # let _ = call;
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn retry_if<F>(self, non_fatal: F) -> Hedging<'a, Op, S, C, B, RetryIf<F>>
    where
        F: FnMut(&E) -> bool,
    {
        self.when_classifier(RetryIf(non_fatal))
    }

    fn when_classifier<K2>(self, classify: K2) -> Hedging<'a, Op, S, C, B, K2> {
        Hedging {
            op: self.op,
            sleeper: self.sleeper,
            clock: self.clock,
            budget: self.budget,
            classify,
            policy: self.policy,
        }
    }
}

impl<'a, Op, Fut, T, E, S, C, B, K> IntoFuture for Hedging<'a, Op, S, C, B, K>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: Sleeper,
    C: Clock,
    B: Budget,
    K: Classify<E>,
{
    type Output = Result<T, RetryError<E>>;
    type IntoFuture = HedgeFuture<'a, Op, Fut, E, S, C, B, K>;

    fn into_future(self) -> Self::IntoFuture {
        HedgeFuture {
            op: self.op,
            sleeper: self.sleeper,
            clock: self.clock,
            classify: self.classify,
            policy: self.policy,
            hedge: None,
            budget: Some(self.budget),
            last: None,
            timer_at: None,
            timer: None,
            copies: Copies {
                c0: None,
                c1: None,
                c2: None,
                c3: None,
                c4: None,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a hedged call: [`Hedging`] after `.await`.
    #[must_use = "futures do nothing unless polled"]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub struct HedgeFuture<'a, Op, Fut, E, S: Sleeper, C, B, K> {
        op: Op,
        sleeper: S,
        clock: C,
        classify: K,
        policy: &'a HedgingPolicy,
        // Made at the first poll: the call and its deadline start there.
        hedge: Option<Hedge<&'a HedgingPolicy, B>>,
        budget: Option<B>,
        // The last copy's error, reported if the call fails.
        last: Option<E>,
        // When the armed timer fires.
        timer_at: Option<Instant>,
        #[pin]
        timer: Option<S::Sleep>,
        #[pin]
        copies: Copies<Fut>,
    }
}

pin_project_lite::pin_project! {
    // The copies in flight, one slot each (A6 caps them at five).
    #[project = CopiesProj]
    struct Copies<Fut> {
        #[pin]
        c0: Option<Fut>,
        #[pin]
        c1: Option<Fut>,
        #[pin]
        c2: Option<Fut>,
        #[pin]
        c3: Option<Fut>,
        #[pin]
        c4: Option<Fut>,
    }
}

impl<Fut> Copies<Fut> {
    /// Slot `n`.
    fn slot(self: Pin<&mut Self>, n: u32) -> Option<Pin<&mut Option<Fut>>> {
        let CopiesProj { c0, c1, c2, c3, c4 } = self.project();
        match n {
            0 => Some(c0),
            1 => Some(c1),
            2 => Some(c2),
            3 => Some(c3),
            4 => Some(c4),
            _ => None,
        }
    }

    /// Drops every copy: the losers are cancelled.
    fn clear(mut self: Pin<&mut Self>) {
        for n in 0..MAX_HEDGED_ATTEMPTS {
            if let Some(mut slot) = self.as_mut().slot(n) {
                slot.set(None);
            }
        }
    }
}

/// What polling the copies found.
enum Answer<T, E> {
    Success(u32, T),
    Failure(u32, E),
    None,
}

impl<Op, Fut, T, E, S, C, B, K> Future for HedgeFuture<'_, Op, Fut, E, S, C, B, K>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: Sleeper,
    C: Clock,
    B: Budget,
    K: Classify<E>,
{
    type Output = Result<T, RetryError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let now = this.clock.now();
            let hedge = match (this.hedge.as_mut(), this.budget.take()) {
                (Some(hedge), _) => hedge,
                (None, Some(budget)) => this
                    .hedge
                    .insert(Hedge::new(*this.policy, now).budget(budget)),
                (None, None) => return Poll::Pending, // finished
            };
            // Send every copy that is due, then see when to look again.
            let mut step = hedge.poll(now);
            while let HedgeStep::Send(n) = step {
                if let Some(mut slot) = this.copies.as_mut().slot(n) {
                    slot.set(Some((this.op)()));
                }
                step = hedge.poll(now);
            }
            let step = match answer(this.copies.as_mut(), cx) {
                Answer::Success(n, value) => {
                    let _ = hedge.succeeded(n, now);
                    *this.hedge = None;
                    this.copies.as_mut().clear();
                    this.timer.set(None);
                    return Poll::Ready(Ok(value));
                }
                Answer::Failure(n, error) => {
                    let failure = this.classify.classify(&error);
                    *this.last = Some(error);
                    let mut step = hedge.failed(n, &failure, now);
                    while let HedgeStep::Send(n) = step {
                        if let Some(mut slot) = this.copies.as_mut().slot(n) {
                            slot.set(Some((this.op)()));
                        }
                        step = hedge.poll(now);
                    }
                    match step {
                        // A copy was sent: poll it (and the others) again.
                        HedgeStep::WaitUntil(_) | HedgeStep::WaitForAnswers => continue,
                        other => other,
                    }
                }
                Answer::None => step,
            };
            match step {
                HedgeStep::Finished(Ok(_)) | HedgeStep::Send(_) => continue,
                HedgeStep::Finished(Err(reason)) => {
                    let attempts = hedge.sent();
                    *this.hedge = None;
                    this.copies.as_mut().clear();
                    this.timer.set(None);
                    let last = match this.last.take() {
                        Some(error) => LastAttempt::Failed(error),
                        None => LastAttempt::TimedOut,
                    };
                    return Poll::Ready(Err(RetryError::new(reason, attempts, last)));
                }
                HedgeStep::WaitForAnswers => {
                    this.timer.set(None);
                    *this.timer_at = None;
                    return Poll::Pending;
                }
                HedgeStep::WaitUntil(at) => {
                    if *this.timer_at != Some(at) {
                        *this.timer_at = Some(at);
                        this.timer
                            .set(Some(this.sleeper.sleep(at.saturating_duration_since(now))));
                    }
                    match this.timer.as_mut().as_pin_mut().map(|t| t.poll(cx)) {
                        Some(Poll::Ready(_)) => {
                            this.timer.set(None);
                            *this.timer_at = None;
                        }
                        _ => return Poll::Pending,
                    }
                }
            }
        }
    }
}

/// Polls every copy in flight; the first that finished.
fn answer<T, E, Fut: Future<Output = Result<T, E>>>(
    mut copies: Pin<&mut Copies<Fut>>,
    cx: &mut Context<'_>,
) -> Answer<T, E> {
    for n in 0..MAX_HEDGED_ATTEMPTS {
        let Some(mut slot) = copies.as_mut().slot(n) else {
            continue;
        };
        let Some(copy) = slot.as_mut().as_pin_mut() else {
            continue;
        };
        if let Poll::Ready(out) = copy.poll(cx) {
            slot.set(None);
            return match out {
                Ok(value) => Answer::Success(n, value),
                Err(error) => Answer::Failure(n, error),
            };
        }
    }
    Answer::None
}

impl<Op, Fut, E, S: Sleeper, C, B, K> fmt::Debug for HedgeFuture<'_, Op, Fut, E, S, C, B, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeFuture")
            .field("sent", &self.hedge.as_ref().map(|h| h.sent()))
            .finish_non_exhaustive()
    }
}

impl<Op, S, C, B, K> fmt::Debug for Hedging<'_, Op, S, C, B, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedging")
            .field("policy", self.policy)
            .finish_non_exhaustive()
    }
}
