//! The async driver: a future that runs an operation's attempts over a
//! [`Call`], sleeping between them on the runtime's [`Sleeper`].

use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::breaker::CircuitBreaker;
use crate::budget::Budget;
use crate::call::Call;
use crate::decision::Decision;
use crate::driver::builder::{hook_setters, SeedSource, Timekeeper};
use crate::driver::error::retry_error;
use crate::driver::{Classify, Clock, LastAttempt, Notify, RetryError, Retrying, Sleeper};
use crate::failure::Failure;
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
pub trait RetryExt: Sized {
    /// A retried call of `self` under `policy`, without a runtime yet.
    fn retry(self, policy: &RetryPolicy) -> Retrying<'_, Self>;
}

impl<Op, Fut> RetryExt for Op
where
    Op: FnMut() -> Fut,
    Fut: Future,
{
    fn retry(self, policy: &RetryPolicy) -> Retrying<'_, Self> {
        Retrying::new(self, policy)
    }
}

impl<'a, Op, Fut, S, C, B, K, N, R> Retrying<'a, Op, S, C, B, K, N, R>
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
    pub fn sleeper<S2: Sleeper>(self, sleeper: S2) -> Retrying<'a, Op, S2, C, B, K, N, R> {
        self.map(|(_, c, b, k, n, r)| (sleeper, c, b, k, n, r))
    }
}

impl<'a, Op, Fut, T, E, S, C, B, K, N, R> Retrying<'a, Op, S, C, B, K, N, R>
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

impl<'a, Op, Fut, T, E, S, C, B, K, N, R> IntoFuture for Retrying<'a, Op, S, C, B, K, N, R>
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
    type IntoFuture = RetryFuture<'a, Op, Fut, E, S, C, B, K, N>;

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
        let call = Retrying::<Op, S, C, B, K, N, R>::start_call(&settings, budget, seed);
        RetryFuture {
            op,
            sleeper,
            clock,
            classify,
            notify,
            attempt_timeout: settings.attempt_timeout,
            time: Timekeeper::new(&call),
            call,
            last: None,
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
    /// it holds. Polling it again after it completed returns `Pending`.
    #[must_use = "futures do nothing unless polled"]
    pub struct RetryFuture<'a, Op, Fut, E, S: Sleeper, C, B, K, N> {
        op: Op,
        sleeper: S,
        clock: C,
        classify: K,
        notify: N,
        attempt_timeout: Option<Duration>,
        time: Timekeeper,
        call: Call<&'a RetryPolicy, B, &'a CircuitBreaker>,
        // The failed attempt the call is sleeping after, kept to report it if
        // the breaker then refuses the next attempt or the deadline passes.
        last: Option<LastAttempt<E>>,
        #[pin]
        phase: Phase<Fut, S::Sleep>,
    }
}

pin_project_lite::pin_project! {
    #[project = PhaseProj]
    enum Phase<Fut, Sl> {
        // About to start an attempt.
        Idle,
        Attempt {
            #[pin]
            attempt: Fut,
            #[pin]
            timer: Option<Sl>,
            started: crate::time::Instant,
        },
        Sleeping {
            #[pin]
            sleep: Sl,
        },
        Done,
    }
}

impl<Op, Fut, T, E, S, C, B, K, N> Future for RetryFuture<'_, Op, Fut, E, S, C, B, K, N>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: Sleeper,
    C: Clock,
    B: Budget,
    K: Classify<E>,
    N: Notify<E>,
{
    type Output = Result<T, RetryError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.phase.as_mut().project() {
                PhaseProj::Idle => {
                    let now = this.time.before_attempt(&*this.clock);
                    if let Err(decision) = this.call.start_attempt(now) {
                        let (attempts, refusal) = (this.call.attempts(), this.call.refusal());
                        this.phase.set(Phase::Done);
                        let last = this.last.take();
                        return Poll::Ready(Err(retry_error(decision, attempts, last, refusal)));
                    }
                    *this.last = None;
                    let limit = match (*this.attempt_timeout, this.call.time_left(now)) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    let timer = limit.map(|d| this.sleeper.sleep(d));
                    let attempt = (this.op)();
                    let started = now;
                    this.phase.set(Phase::Attempt {
                        attempt,
                        timer,
                        started,
                    });
                }
                PhaseProj::Attempt {
                    attempt,
                    timer,
                    started,
                } => {
                    let outcome = match poll_attempt(attempt, timer, cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(value)) => {
                            // A success is reported as of its attempt's start:
                            // the clock is not read again.
                            this.call.succeed(*started);
                            this.phase.set(Phase::Done);
                            return Poll::Ready(Ok(value));
                        }
                        Poll::Ready(Err(outcome)) => outcome,
                    };
                    let failure = match &outcome {
                        LastAttempt::Failed(error) => this.classify.classify(error),
                        _ => Failure::timeout(),
                    };
                    let now = this.time.after_failure(&*this.clock);
                    match this.call.fail(&failure, now) {
                        Decision::Retry { after } => {
                            this.notify.notify(&outcome, after);
                            *this.last = Some(outcome);
                            if after.is_zero() {
                                this.phase.set(Phase::Idle);
                            } else {
                                let sleep = this.sleeper.sleep(after);
                                this.phase.set(Phase::Sleeping { sleep });
                            }
                        }
                        decision => {
                            let attempts = this.call.attempts();
                            this.phase.set(Phase::Done);
                            let error = retry_error(decision, attempts, Some(outcome), None);
                            return Poll::Ready(Err(error));
                        }
                    }
                }
                PhaseProj::Sleeping { sleep } => {
                    if sleep.poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.phase.set(Phase::Idle);
                }
                PhaseProj::Done => return Poll::Pending,
            }
        }
    }
}

/// Polls the attempt, then its timer: the value, the error (or a timeout,
/// once the timer fired before the attempt finished), or pending.
#[inline]
fn poll_attempt<T, E, Fut, Sl>(
    attempt: Pin<&mut Fut>,
    timer: Pin<&mut Option<Sl>>,
    cx: &mut Context<'_>,
) -> Poll<Result<T, LastAttempt<E>>>
where
    Fut: Future<Output = Result<T, E>>,
    Sl: Future,
{
    match attempt.poll(cx) {
        Poll::Ready(Ok(value)) => Poll::Ready(Ok(value)),
        Poll::Ready(Err(error)) => Poll::Ready(Err(LastAttempt::Failed(error))),
        Poll::Pending => match timer.as_pin_mut().map(|timer| timer.poll(cx)) {
            Some(Poll::Ready(_)) => Poll::Ready(Err(LastAttempt::TimedOut)),
            _ => Poll::Pending,
        },
    }
}

impl<Op, Fut, E, S: Sleeper, C, B, K, N> fmt::Debug for RetryFuture<'_, Op, Fut, E, S, C, B, K, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Idle => "idle",
            Phase::Attempt { .. } => "attempt",
            Phase::Sleeping { .. } => "sleeping",
            Phase::Done => "done",
        };
        f.debug_struct("RetryFuture")
            .field("attempts", &self.call.attempts())
            .field("phase", &phase)
            .finish_non_exhaustive()
    }
}
