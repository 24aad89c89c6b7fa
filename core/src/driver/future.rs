//! The async driver: a future that runs an operation's attempts over a
//! [`Call`], sleeping between them on the runtime's [`Sleeper`].

use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::adaptive::AdaptiveThrottle;
use crate::breaker::CircuitBreaker;
use crate::budget::Budget;
use crate::call::Call;
use crate::decision::Decision;
use crate::driver::builder::{
    hook_setters, LazySeed, SeedSource, Settings, Timekeeper, Unconfigured,
};
use crate::driver::error::retry_error;
use crate::driver::{
    Classify, Clock, Hedging, LastAttempt, Notify, RetryError, Retrying,
    SetAClockOrUseARuntimeAdapter, SetASleeperOrUseARuntimeAdapter, Sleeper,
};
use crate::failure::Failure;
use crate::hedging::HedgingPolicy;
use crate::policy::RetryPolicy;

/// The extension that makes any async operation retryable:
/// `(|| fetch(url)).retry(&policy)`.
///
/// The operation is a closure that starts one attempt each time it is
/// called and returns a future of `Result<T, E>`. The adapters' own
/// `RetryExt` (`stormguard_smol::RetryExt`, …) fill in their runtime's
/// [`Sleeper`] and [`Clock`]; with the core alone, give them with
/// [`Retrying::sleeper`] and [`Retrying::clock`].
///
/// ```
/// use core::future::ready;
/// use stormguard::driver::RetryExt;
/// use stormguard::RetryPolicy;
/// let policy = RetryPolicy::default();
/// let builder = (|| ready(Ok::<u8, ()>(1))).retry(&policy);
/// # let _ = builder;
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub trait RetryExt: Sized {
    /// A retried call of `self` under `policy`, without a runtime yet.
    fn retry(self, policy: &RetryPolicy) -> Unconfigured<'_, Self>;

    /// A hedged call of `self` under `policy` (copies sent over time, the
    /// first success wins: see [`Hedging`]), without a runtime yet.
    fn hedge(
        self,
        policy: &HedgingPolicy,
    ) -> Hedging<'_, Self, SetASleeperOrUseARuntimeAdapter, SetAClockOrUseARuntimeAdapter>;
}

impl<Op, Fut> RetryExt for Op
where
    Op: FnMut() -> Fut,
    Fut: Future,
{
    fn retry(self, policy: &RetryPolicy) -> Unconfigured<'_, Self> {
        Retrying::new(self, policy)
    }

    fn hedge(
        self,
        policy: &HedgingPolicy,
    ) -> Hedging<'_, Self, SetASleeperOrUseARuntimeAdapter, SetAClockOrUseARuntimeAdapter> {
        Hedging::new(self, policy)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl<'a, Op, Fut, S, C, B, K, N, R> Retrying<'a, Op, S, C, R, B, K, N>
where
    Op: FnMut() -> Fut,
    Fut: Future,
{
    /// Sleeps with `sleeper` (the adapters set this for you); any
    /// `Fn(Duration) -> impl Future` will do.
    ///
    /// ```
    /// # use core::future::{ready, Ready};
    /// # use core::time::Duration;
    /// use stormguard::driver::RetryExt;
    /// fn no_wait(_: Duration) -> Ready<()> { ready(()) }
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).sleeper(no_wait);
    /// # let _ = call;
    /// ```
    pub fn sleeper<S2: Sleeper>(self, sleeper: S2) -> Retrying<'a, Op, S2, C, R, B, K, N> {
        self.map(|(_, c, b, k, n, r)| (sleeper, c, b, k, n, r))
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl<'a, Op, Fut, T, E, S, C, B, K, N, R> Retrying<'a, Op, S, C, R, B, K, N>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    hook_setters!(
        E,
        Op,
        "RetryExt",
        "|| core::future::ready(Err::<(), u16>(503))",
        ""
    );

    /// Cancels an attempt that runs longer than `timeout`: it is dropped
    /// and counts as a [`Failure::timeout`] (class `Timeout`, replay
    /// `Unknown` — it may have run). Every attempt is also cut at the
    /// policy's deadline.
    ///
    /// ```
    /// use core::future::ready;
    /// use core::time::Duration;
    /// use stormguard::driver::RetryExt;
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).attempt_timeout(Duration::from_millis(250));
    /// # let _ = call;
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.settings.attempt_timeout = Some(timeout);
        self
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl<'a, Op, Fut, T, E, S, C, B, K, N, R> IntoFuture for Retrying<'a, Op, S, C, R, B, K, N>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: Sleeper,
    C: Clock,
    B: Budget,
    K: Classify<E>,
    N: Notify<E>,
    R: SeedSource,
{
    type Output = Result<T, RetryError<E>>;
    type IntoFuture = RetryFuture<'a, Op, Fut, E, S, C, B, K, N, R>;

    #[inline(always)]
    fn into_future(self) -> Self::IntoFuture {
        let Retrying {
            op,
            sleeper,
            clock,
            budget,
            classify,
            notify,
            seed,
            settings,
        } = self;
        // A call whose first attempt something may refuse is built at once;
        // any other, when its first attempt fails.
        let life = if crate::call::first_attempt_runs_unbuilt(
            settings.breaker.is_some(),
            settings.throttle.is_some(),
        ) {
            Life::Unbuilt {
                settings,
                budget,
                seed,
            }
        } else {
            Life::Built(Built::new(settings, budget, seed))
        };
        RetryFuture {
            op,
            sleeper,
            clock,
            classify,
            notify,
            life,
            timer: None,
            phase: Phase::Idle,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a retried call: [`Retrying`] after `.await` (or
    /// `.into_future()`).
    ///
    /// A thin loop over a [`Call`]: it holds the attempt in flight, its
    /// timer and the pending sleep inline — nothing is spawned or
    /// allocated. Dropping it cancels them and gives back a breaker probe
    /// it holds. An attempt's timer is armed only if the attempt does not
    /// finish on its first poll, so an answer that is ready at once costs no
    /// timer; and a call without a breaker or a throttle (nothing that can
    /// refuse its first attempt) builds its [`Call`] only if that attempt
    /// fails. Polling it again after it completed returns `Pending`.
    #[must_use = "futures do nothing unless polled"]
    #[project = RetryFutureProj]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub struct RetryFuture<'a, Op, Fut, E, S: Sleeper, C, B, K, N, R> {
        op: Op,
        sleeper: S,
        clock: C,
        classify: K,
        notify: N,
        life: Life<'a, E, B, R>,
        // The running attempt's timeout once armed, or the backoff sleep:
        // outside `phase`, so that replacing the phase of an attempt whose
        // future needs no drop tests nothing.
        #[pin]
        timer: Option<S::Sleep>,
        #[pin]
        phase: Phase<Fut>,
    }
}

/// The call's lifecycle: built when the future is made for a call with a
/// breaker or a throttle (either may refuse the first attempt), and for any
/// other only when its first attempt fails (a first-try success builds
/// nothing: see `call::succeed_unbuilt`).
// An explicit tag, not a niche in a field: the tag is tested on the success
// path and by the drop, and a niche (in the settings' `Option<Duration>`)
// takes a subtraction and a conditional move to decode — about 25 more
// instructions on the path of a call with a breaker, with fat LTO.
#[repr(u8)]
enum Life<'a, E, B, R> {
    Unbuilt {
        settings: Settings<'a>,
        budget: B,
        seed: R,
    },
    Built(Built<'a, E, B, R>),
    /// Only while the call is being built.
    Moved,
}

struct Built<'a, E, B, R> {
    call: Call<&'a RetryPolicy, B, &'a CircuitBreaker, &'a AdaptiveThrottle>,
    seed: LazySeed<R>,
    time: Timekeeper,
    attempt_timeout: Option<Duration>,
    // The failed attempt the call is sleeping after, kept to report it if
    // the breaker then refuses the next attempt or the deadline passes.
    last: Option<LastAttempt<E>>,
}

impl<'a, E, B: Budget, R: SeedSource> Built<'a, E, B, R> {
    /// The call's lifecycle, with everything the builder was given.
    #[inline(always)]
    fn new(settings: Settings<'a>, budget: B, seed: R) -> Self {
        let mut call = settings.start_call(budget);
        Built {
            seed: LazySeed::new(seed, &mut call),
            time: Timekeeper::new(&call),
            attempt_timeout: settings.attempt_timeout,
            call,
            last: None,
        }
    }
}

impl<'a, E, B: Budget, R: SeedSource> Life<'a, E, B, R> {
    /// The time the first attempt begins at, if it runs before the call is
    /// built (see `call::first_attempt_runs_unbuilt`: nothing can refuse
    /// it), read from `clock` only if the call uses the time; `None` once
    /// the call is built.
    #[inline(always)]
    fn unbuilt_start(&self, clock: &impl Clock) -> Option<crate::time::Instant> {
        match self {
            Life::Unbuilt {
                settings, budget, ..
            } => Some(
                if crate::call::needs_clock(settings.policy, budget, false, false) {
                    clock.now()
                } else {
                    crate::time::Instant::ZERO
                },
            ),
            _ => None,
        }
    }

    /// The call's lifecycle, built if it was not yet (`None` only while it
    /// is being built, which no poll sees).
    #[inline]
    fn built(&mut self) -> Option<&mut Built<'a, E, B, R>> {
        if let Life::Unbuilt { .. } = self {
            if let Life::Unbuilt {
                settings,
                budget,
                seed,
            } = core::mem::replace(self, Life::Moved)
            {
                *self = Life::Built(Built::new(settings, budget, seed));
            }
        }
        match self {
            Life::Built(built) => Some(built),
            _ => None,
        }
    }

    /// The running attempt, begun at `started`, succeeded.
    #[inline(always)]
    fn succeed(&mut self, started: crate::time::Instant) {
        // A success is reported as of its attempt's start: the clock is not
        // read again. The unbuilt call, the one to be quick, is tested for
        // first: one comparison.
        if let Life::Unbuilt {
            settings, budget, ..
        } = self
        {
            crate::call::succeed_unbuilt(settings.policy, budget, started);
        } else if let Life::Built(built) = self {
            built.call.succeed(started);
        }
    }

    /// The limits of an attempt begun at `started`: its timeout, and the
    /// time left before the deadline.
    fn attempt_limits(
        &self,
        started: crate::time::Instant,
    ) -> (Option<Duration>, Option<Duration>) {
        match self {
            Life::Built(built) => (built.attempt_timeout, built.call.time_left(started)),
            Life::Unbuilt { settings, .. } => (
                settings.attempt_timeout,
                crate::call::time_left_unbuilt(settings.policy, started),
            ),
            Life::Moved => (None, None),
        }
    }
}

pin_project_lite::pin_project! {
    #[project = PhaseProj]
    enum Phase<Fut> {
        // About to start an attempt.
        Idle,
        Attempt {
            #[pin]
            attempt: Fut,
            started: crate::time::Instant,
            // Whether the attempt's timer (if it has a limit) was armed.
            armed: bool,
        },
        // The backoff sleep is in `timer` (none: a zero wait).
        Sleeping,
        Done,
    }
}

impl<Op, Fut, T, E, S, C, B, K, N, R> Future for RetryFuture<'_, Op, Fut, E, S, C, B, K, N, R>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: Sleeper,
    C: Clock,
    B: Budget,
    K: Classify<E>,
    N: Notify<E>,
    R: SeedSource,
{
    type Output = Result<T, RetryError<E>>;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.as_mut().project();
        // The first step is not inside a loop, so that an attempt which is
        // ready on its first poll runs straight through from the future's
        // construction to its drop, and the optimizer can see every part a
        // call does not use (no breaker, no throttle, no timer, no failure)
        // and drop its checks; the loop runs only after a failure.
        match this.step(cx) {
            Some(out) => out,
            None => self.run(cx),
        }
    }
}

impl<Op, Fut, T, E, S, C, B, K, N, R> RetryFuture<'_, Op, Fut, E, S, C, B, K, N, R>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: Sleeper,
    C: Clock,
    B: Budget,
    K: Classify<E>,
    N: Notify<E>,
    R: SeedSource,
{
    /// Steps until the call is over or must wait: the steps after a failed
    /// attempt. Out of line, so the success path stays short.
    #[cold]
    #[inline(never)]
    fn run(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, RetryError<E>>> {
        let mut this = self.project();
        loop {
            if let Some(out) = this.step(cx) {
                return out;
            }
        }
    }
}

impl<Op, Fut, T, E, S, C, B, K, N, R> RetryFutureProj<'_, '_, Op, Fut, E, S, C, B, K, N, R>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: Sleeper,
    C: Clock,
    B: Budget,
    K: Classify<E>,
    N: Notify<E>,
    R: SeedSource,
{
    /// One step of the loop: ends a finished sleep, begins an attempt if
    /// none is running, and polls it. `None` when the attempt failed and
    /// the next may follow (the loop goes on).
    #[inline(always)]
    fn step(&mut self, cx: &mut Context<'_>) -> Option<Poll<Result<T, RetryError<E>>>> {
        match self.phase.as_mut().project() {
            PhaseProj::Idle => {}
            PhaseProj::Attempt { .. } => return self.poll_attempt(cx),
            PhaseProj::Sleeping => {
                if let Some(sleep) = self.timer.as_mut().as_pin_mut() {
                    if sleep.poll(cx).is_pending() {
                        return Some(Poll::Pending);
                    }
                    self.timer.set(None);
                }
            }
            PhaseProj::Done => return Some(Poll::Pending),
        }
        let started = match self.life.unbuilt_start(&*self.clock) {
            Some(now) => now,
            None => match self.begin_attempt() {
                Ok(now) => now,
                Err(out) => {
                    self.phase.set(Phase::Done);
                    return Some(out);
                }
            },
        };
        let attempt = (self.op)();
        self.phase.set(Phase::Attempt {
            attempt,
            started,
            armed: false,
        });
        self.poll_attempt(cx)
    }

    /// Begins an attempt in the (built) call: the time it begins at, or how
    /// the call ends.
    #[inline(always)]
    fn begin_attempt(&mut self) -> Result<crate::time::Instant, Poll<Result<T, RetryError<E>>>> {
        let Some(built) = self.life.built() else {
            return Err(Poll::Pending);
        };
        let now = built.time.before_attempt(&*self.clock);
        match built.call.start_attempt(now) {
            Ok(()) => Ok(now),
            Err(decision) => {
                let (attempts, refusal) = (built.call.attempts(), built.call.refusal());
                let error = retry_error(decision, attempts, built.last.take(), refusal);
                Err(Poll::Ready(Err(error)))
            }
        }
    }

    /// Polls the running attempt: its success ends the call; its failure or
    /// timeout is reported (`None` when a retry follows).
    #[inline(always)]
    fn poll_attempt(&mut self, cx: &mut Context<'_>) -> Option<Poll<Result<T, RetryError<E>>>> {
        let PhaseProj::Attempt {
            attempt,
            started,
            armed,
        } = self.phase.as_mut().project()
        else {
            return Some(Poll::Pending);
        };
        let outcome = match attempt.poll(cx) {
            Poll::Ready(Ok(value)) => {
                self.life.succeed(*started);
                self.phase.set(Phase::Done);
                return Some(Poll::Ready(Ok(value)));
            }
            Poll::Ready(Err(error)) => LastAttempt::Failed(error),
            Poll::Pending => {
                if !*armed {
                    *armed = true;
                    let (timeout, left) = self.life.attempt_limits(*started);
                    arm(self.timer.as_mut(), self.sleeper, timeout, left);
                }
                match self.timer.as_mut().as_pin_mut().map(|t| t.poll(cx)) {
                    Some(Poll::Ready(_)) => LastAttempt::TimedOut,
                    _ => return Some(Poll::Pending),
                }
            }
        };
        let started = *started;
        self.failed(outcome, started)
            .map(|error| Poll::Ready(Err(error)))
    }

    /// The attempt failed (or timed out): reports it and either starts the
    /// sleep before the next attempt or returns the call's error. Out of
    /// line, so the success path stays short.
    #[cold]
    #[inline(never)]
    fn failed(
        &mut self,
        outcome: LastAttempt<E>,
        started: crate::time::Instant,
    ) -> Option<RetryError<E>> {
        self.timer.set(None);
        let failure = match &outcome {
            LastAttempt::Failed(error) => self.classify.classify(error),
            _ => Failure::timeout(),
        };
        let unbuilt = matches!(self.life, Life::Unbuilt { .. });
        let Some(built) = self.life.built() else {
            self.phase.set(Phase::Done);
            return None;
        };
        if unbuilt {
            // The first attempt ran before the call was built: it begins
            // in the call now, as of when it began. Nothing can refuse it;
            // were it refused, the call would be over and `fail` below would
            // return how.
            let _ = built.call.start_attempt(started);
        }
        let now = built.time.after_failure(&*self.clock);
        built.seed.before_failure(&mut built.call);
        match built.call.fail(&failure, now) {
            Decision::Retry { after } => {
                self.notify.notify(&outcome, after);
                built.last = Some(outcome);
                if !after.is_zero() {
                    self.timer.set(Some(self.sleeper.sleep(after)));
                }
                self.phase.set(Phase::Sleeping);
                None
            }
            decision => {
                self.phase.set(Phase::Done);
                Some(retry_error(
                    decision,
                    built.call.attempts(),
                    Some(outcome),
                    None,
                ))
            }
        }
    }
}

/// An attempt was not ready at once: arms its timer (the attempt timeout,
/// cut at the deadline: `left`), as of when it began — the same poll. Out
/// of line: an answer that is ready at once never needs it.
#[cold]
#[inline(never)]
fn arm<S: Sleeper>(
    mut timer: Pin<&mut Option<S::Sleep>>,
    sleeper: &S,
    attempt_timeout: Option<Duration>,
    left: Option<Duration>,
) {
    let limit = match (attempt_timeout, left) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(limit) = limit {
        timer.set(Some(sleeper.sleep(limit)));
    }
}

impl<Op, Fut, E, S: Sleeper, C, B, K, N, R> fmt::Debug
    for RetryFuture<'_, Op, Fut, E, S, C, B, K, N, R>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Idle => "idle",
            Phase::Attempt { .. } => "attempt",
            Phase::Sleeping => "sleeping",
            Phase::Done => "done",
        };
        let attempts = match &self.life {
            Life::Built(built) => built.call.attempts(),
            // A call still unbuilt when it is over succeeded at once.
            _ => u32::from(matches!(self.phase, Phase::Done)),
        };
        f.debug_struct("RetryFuture")
            .field("attempts", &attempts)
            .field("phase", &phase)
            .finish_non_exhaustive()
    }
}
