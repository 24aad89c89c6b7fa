//! The async driver: a future that runs an operation under a [`RetryPolicy`].
//!
//! The core stays sans-IO: it never sleeps and never reads a clock itself.
//! A runtime plugs in through two small traits — [`Sleeper`] (sleep for a
//! `Duration`) and [`Clock`] (now, as an [`Instant`]) — and the adapters
//! (`stormguard-smol`, `stormguard-async-std`) are nothing more than those
//! two for their runtime. The future ([`RetryFuture`]) is `no_std`, spawns
//! nothing and allocates nothing: every attempt's future, the pending sleep
//! and the per-attempt timer live inside it, so dropping it cancels the
//! attempt in flight and the sleep, and releases a breaker probe it holds.
//!
//! ```
//! use core::future::{ready, Future, Ready};
//! use core::time::Duration;
//! use stormguard::driver::{Clock, RetryExt, Sleeper};
//! use stormguard::{Backoff, Instant, RetryPolicy};
//!
//! // A runtime for this example: sleeps return at once, the clock stands still.
//! struct NoWait;
//! impl Sleeper for NoWait {
//!     type Sleep = Ready<()>;
//!     fn sleep(&self, _: Duration) -> Ready<()> { ready(()) }
//! }
//! impl Clock for NoWait {
//!     fn now(&self) -> Instant { Instant::ZERO }
//! }
//!
//! let policy = RetryPolicy::builder()
//!     .max_attempts(3)
//!     .backoff(Backoff::exponential(Duration::from_millis(10), 2.0))
//!     .build()?;
//! let mut calls = 0;
//! let fetch = || {
//!     calls += 1;
//!     ready(if calls < 3 { Err("503") } else { Ok("body") })
//! };
//! let future = fetch.retry(&policy).sleeper(NoWait).clock(NoWait).into_future();
//! # let body = poll_once(future);
//! assert_eq!(body, Ok("body"));
//! # fn poll_once<F: Future>(f: F) -> F::Output {
//! #     let mut f = core::pin::pin!(f);
//! #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
//! #     match f.as_mut().poll(&mut cx) { core::task::Poll::Ready(v) => v, _ => unreachable!() }
//! # }
//! # use core::future::IntoFuture;
//! # Ok::<(), stormguard::ConfigError>(())
//! ```

use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use fastrand::Rng;

use crate::breaker::{CircuitBreaker, Open, Permit};
use crate::budget::{Budget, NoBudget};
use crate::failure::Failure;
use crate::idempotency::Idempotency;
use crate::policy::RetryPolicy;
use crate::retry::{Decision, GiveUp, RetryState};
use crate::time::Instant;

/// Sleeps for a `Duration`: the one thing a runtime must give the driver.
///
/// `Sleep` may have any output (async-io's `Timer` yields the instant it
/// fired); the driver ignores it. Dropping a `Sleep` must cancel it.
///
/// ```
/// use core::future::{ready, Ready};
/// use core::time::Duration;
/// use stormguard::driver::Sleeper;
///
/// /// For tests: every sleep is over at once.
/// struct Instantly;
/// impl Sleeper for Instantly {
///     type Sleep = Ready<()>;
///     fn sleep(&self, _: Duration) -> Ready<()> { ready(()) }
/// }
/// let _sleep = Instantly.sleep(Duration::from_secs(1));
/// ```
pub trait Sleeper {
    /// The future of one sleep.
    type Sleep: Future;

    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Self::Sleep;
}

impl<S: Sleeper + ?Sized> Sleeper for &S {
    type Sleep = S::Sleep;

    fn sleep(&self, duration: Duration) -> S::Sleep {
        (**self).sleep(duration)
    }
}

/// Reads the time, as an [`Instant`] since an origin of the clock's choosing.
///
/// Must be monotonic (`std::time::Instant`, a hardware timer); a clock that
/// goes backwards never makes the driver panic or wait longer than a backoff.
///
/// ```
/// use stormguard::driver::Clock;
/// use stormguard::Instant;
///
/// struct Fixed(Instant);
/// impl Clock for Fixed {
///     fn now(&self) -> Instant { self.0 }
/// }
/// assert_eq!(Fixed(Instant::from_secs(3)).now(), Instant::from_secs(3));
/// ```
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// The monotonic clock of the standard library (`std::time::Instant`),
/// counted from the first time any `StdClock` is read in the process.
///
/// ```
/// use stormguard::driver::{Clock, StdClock};
/// let a = StdClock.now();
/// assert!(StdClock.now() >= a);
/// ```
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StdClock;

#[cfg(feature = "std")]
impl Clock for StdClock {
    fn now(&self) -> Instant {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let origin = *ORIGIN.get_or_init(std::time::Instant::now);
        Instant::from_std(origin, std::time::Instant::now())
    }
}

/// Turns an operation's error into the [`Failure`] the policy decides on.
///
/// Implemented by every `FnMut(&E) -> Failure` closure, and by
/// [`AnyError`], the default.
///
/// ```
/// use stormguard::driver::Classify;
/// use stormguard::{Failure, FailureClass};
/// let mut by_status = |status: &u16| if *status >= 500 { Failure::transient() } else { Failure::permanent() };
/// assert_eq!(by_status.classify(&503).class(), FailureClass::Transient);
/// assert_eq!(by_status.classify(&404).class(), FailureClass::Permanent);
/// ```
pub trait Classify<E> {
    /// The failure `error` describes.
    fn classify(&mut self, error: &E) -> Failure;
}

impl<E, F: FnMut(&E) -> Failure> Classify<E> for F {
    fn classify(&mut self, error: &E) -> Failure {
        self(error)
    }
}

/// The default classification: every error is [`Failure::transient`] — a
/// retryable failure that may have run ([`Replay::Unknown`](crate::Replay)),
/// so a non-idempotent call is still never replayed.
///
/// ```
/// use stormguard::driver::{AnyError, Classify};
/// use stormguard::Failure;
/// assert_eq!(AnyError.classify(&"anything"), Failure::transient());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnyError;

impl<E> Classify<E> for AnyError {
    fn classify(&mut self, _: &E) -> Failure {
        Failure::transient()
    }
}

/// Called before each sleep with the failed attempt and the wait: the hook
/// for logging.
///
/// Implemented by every `FnMut(&LastAttempt<E>, Duration)` closure, and by
/// [`NoNotify`], the default.
///
/// ```
/// use core::time::Duration;
/// use stormguard::driver::{LastAttempt, Notify};
/// let mut log = Vec::new();
/// let mut hook = |last: &LastAttempt<&str>, after: Duration| log.push(format!("{last}; retrying in {after:?}"));
/// hook.notify(&LastAttempt::Failed("503"), Duration::from_millis(20));
/// assert_eq!(log, ["503; retrying in 20ms"]);
/// ```
pub trait Notify<E> {
    /// An attempt failed with `last`; the next starts after `after`.
    fn notify(&mut self, last: &LastAttempt<E>, after: Duration);
}

impl<E, F: FnMut(&LastAttempt<E>, Duration)> Notify<E> for F {
    fn notify(&mut self, last: &LastAttempt<E>, after: Duration) {
        self(last, after)
    }
}

/// The default hook: does nothing.
///
/// ```
/// use core::time::Duration;
/// use stormguard::driver::{LastAttempt, NoNotify, Notify};
/// NoNotify.notify(&LastAttempt::<()>::TimedOut, Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoNotify;

impl<E> Notify<E> for NoNotify {
    fn notify(&mut self, _: &LastAttempt<E>, _: Duration) {}
}

/// How the last attempt of a call ended.
///
/// ```
/// use stormguard::driver::LastAttempt;
/// assert_eq!(LastAttempt::Failed("refused").into_error(), Some("refused"));
/// assert_eq!(LastAttempt::<&str>::TimedOut.to_string(), "the attempt timed out");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastAttempt<E> {
    /// The operation returned this error.
    Failed(E),
    /// The attempt did not finish within the per-attempt timeout or before
    /// the deadline, and was dropped (cancelled).
    TimedOut,
    /// The circuit breaker refused the first attempt: nothing was sent.
    Refused(Open),
}

impl<E> LastAttempt<E> {
    /// The operation's error, if it returned one.
    ///
    /// ```
    /// use stormguard::driver::LastAttempt;
    /// assert_eq!(LastAttempt::<u8>::TimedOut.error(), None);
    /// ```
    pub const fn error(&self) -> Option<&E> {
        match self {
            LastAttempt::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The operation's error, by value.
    ///
    /// ```
    /// use stormguard::driver::LastAttempt;
    /// assert_eq!(LastAttempt::Failed(7).into_error(), Some(7));
    /// ```
    pub fn into_error(self) -> Option<E> {
        match self {
            LastAttempt::Failed(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for LastAttempt<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LastAttempt::Failed(e) => e.fmt(f),
            LastAttempt::TimedOut => f.write_str("the attempt timed out"),
            LastAttempt::Refused(open) => open.fmt(f),
        }
    }
}

/// A retried call that gave up: why, after how many attempts, and how its
/// last attempt ended.
///
/// ```
/// use stormguard::driver::{LastAttempt, RetryError};
/// use stormguard::GiveUp;
/// let err = RetryError::new(GiveUp::AttemptsExhausted, 3, LastAttempt::Failed("503"));
/// assert_eq!(err.to_string(), "gave up after 3 attempts (attempts exhausted): 503");
/// assert_eq!(err.into_error(), Some("503"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryError<E> {
    reason: GiveUp,
    attempts: u32,
    last: LastAttempt<E>,
}

impl<E> RetryError<E> {
    /// An error with these parts (for tests and for wrappers).
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// let e = RetryError::new(stormguard::GiveUp::DeadlineExceeded, 2, LastAttempt::<()>::TimedOut);
    /// assert_eq!(e.attempts(), 2);
    /// ```
    pub const fn new(reason: GiveUp, attempts: u32, last: LastAttempt<E>) -> Self {
        RetryError {
            reason,
            attempts,
            last,
        }
    }

    /// Why the call gave up.
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// use stormguard::GiveUp;
    /// assert_eq!(RetryError::new(GiveUp::NotRetryable, 1, LastAttempt::Failed(())).reason(), GiveUp::NotRetryable);
    /// ```
    pub const fn reason(&self) -> GiveUp {
        self.reason
    }

    /// The attempts made (0 when the breaker refused the first one).
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// assert_eq!(RetryError::new(stormguard::GiveUp::NotRetryable, 1, LastAttempt::Failed(())).attempts(), 1);
    /// ```
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How the last attempt ended.
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// let e = RetryError::new(stormguard::GiveUp::DeadlineExceeded, 2, LastAttempt::<()>::TimedOut);
    /// assert_eq!(e.last(), &LastAttempt::TimedOut);
    /// ```
    pub const fn last(&self) -> &LastAttempt<E> {
        &self.last
    }

    /// The last attempt's error, if the operation returned one.
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// let e = RetryError::new(stormguard::GiveUp::DeadlineExceeded, 2, LastAttempt::<()>::TimedOut);
    /// assert_eq!(e.into_error(), None);
    /// ```
    pub fn into_error(self) -> Option<E> {
        self.last.into_error()
    }

    /// The failure to report to a layer above that also retries: marked
    /// already retried, so that layer does not retry it again ("retry at one
    /// layer", see [`GiveUp::into_failure`]).
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// let e = RetryError::new(stormguard::GiveUp::AttemptsExhausted, 3, LastAttempt::Failed(()));
    /// assert!(e.to_failure().is_already_retried());
    /// ```
    pub const fn to_failure(&self) -> Failure {
        self.reason.into_failure()
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "gave up after {} attempt{plural} ({}): {}",
            self.attempts, self.reason, self.last
        )
    }
}

impl<E: core::error::Error + 'static> core::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match &self.last {
            LastAttempt::Failed(e) => Some(e),
            LastAttempt::Refused(open) => Some(open),
            LastAttempt::TimedOut => None,
        }
    }
}

/// The extension that makes any async operation retryable:
/// `(|| fetch(url)).retry(&policy)`.
///
/// The operation is a closure that starts one attempt each time it is
/// called and returns a future of `Result<T, E>`. The adapters' own
/// `RetryExt` fills in their runtime's [`Sleeper`] and [`Clock`]; with the
/// core alone, give them with [`Retrying::sleeper`] and [`Retrying::clock`].
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
    fn retry(self, policy: &RetryPolicy) -> Retrying<'_, Self, (), ()>;
}

impl<Op, Fut> RetryExt for Op
where
    Op: FnMut() -> Fut,
    Fut: Future,
{
    fn retry(self, policy: &RetryPolicy) -> Retrying<'_, Self, (), ()> {
        Retrying {
            op: self,
            sleeper: (),
            clock: (),
            budget: NoBudget,
            classify: AnyError,
            notify: NoNotify,
            settings: Settings {
                policy,
                breaker: None,
                attempt_timeout: None,
                idempotency: None,
                rng: None,
            },
        }
    }
}

/// A retried call being configured; `.await` it (it is [`IntoFuture`]).
///
/// Built by [`RetryExt::retry`]. The call — its deadline included —
/// starts when it becomes a future (`.await` does that). Every setting has
/// a safe default: no
/// shared budget ([`NoBudget`]), no breaker, every error transient
/// ([`AnyError`]), no hook, no per-attempt timeout (the policy's deadline
/// still bounds every attempt), the policy's idempotency, a fresh random
/// seed.
///
/// ```
/// use core::time::Duration;
/// use stormguard::driver::RetryExt;
/// use stormguard::{CircuitBreaker, Failure, RetryPolicy, Throttle};
///
/// let policy = RetryPolicy::default();
/// let throttle = Throttle::new(10, 0.1)?;
/// let breaker = CircuitBreaker::default();
/// let call = (|| async { Err::<(), u16>(503) })
///     .retry(&policy)
///     .budget(&throttle)
///     .breaker(&breaker)
///     .when(|status: &u16| if *status >= 500 { Failure::transient() } else { Failure::permanent() })
///     .attempt_timeout(Duration::from_secs(2));
/// # let _ = call;
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[must_use = "a retried call does nothing until it is awaited"]
pub struct Retrying<'a, Op, S, C, B = NoBudget, K = AnyError, N = NoNotify> {
    op: Op,
    sleeper: S,
    clock: C,
    budget: B,
    classify: K,
    notify: N,
    settings: Settings<'a>,
}

/// The settings of a [`Retrying`] whose types never change.
struct Settings<'a> {
    policy: &'a RetryPolicy,
    breaker: Option<&'a CircuitBreaker>,
    attempt_timeout: Option<Duration>,
    idempotency: Option<Idempotency>,
    rng: Option<Rng>,
}

impl<'a, Op, S, C, B, K, N> Retrying<'a, Op, S, C, B, K, N> {
    /// The same call with its runtime, budget, classifier and hook passed
    /// through `f` (the builder methods that change a type use it).
    fn map<S2, C2, B2, K2, N2>(
        self,
        f: impl FnOnce((S, C, B, K, N)) -> (S2, C2, B2, K2, N2),
    ) -> Retrying<'a, Op, S2, C2, B2, K2, N2> {
        let parts = (
            self.sleeper,
            self.clock,
            self.budget,
            self.classify,
            self.notify,
        );
        let (sleeper, clock, budget, classify, notify) = f(parts);
        Retrying {
            op: self.op,
            sleeper,
            clock,
            budget,
            classify,
            notify,
            settings: self.settings,
        }
    }

    /// Sleeps with `sleeper` (the adapters set this for you).
    ///
    /// ```
    /// # use core::future::{ready, Ready};
    /// # use core::time::Duration;
    /// use stormguard::driver::{RetryExt, Sleeper};
    /// # struct Instantly;
    /// # impl Sleeper for Instantly { type Sleep = Ready<()>; fn sleep(&self, _: Duration) -> Ready<()> { ready(()) } }
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).sleeper(Instantly);
    /// # let _ = call;
    /// ```
    pub fn sleeper<S2: Sleeper>(self, sleeper: S2) -> Retrying<'a, Op, S2, C, B, K, N> {
        self.map(|(_, c, b, k, n)| (sleeper, c, b, k, n))
    }

    /// Reads the time from `clock` (the adapters set this for you).
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::{Clock, RetryExt};
    /// struct Zero;
    /// impl Clock for Zero { fn now(&self) -> stormguard::Instant { stormguard::Instant::ZERO } }
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).clock(Zero);
    /// # let _ = call;
    /// ```
    pub fn clock<C2: Clock>(self, clock: C2) -> Retrying<'a, Op, S, C2, B, K, N> {
        self.map(|(s, _, b, k, n)| (s, clock, b, k, n))
    }

    /// Shares `budget` (usually `&` a budget every call of the client
    /// shares) with the other calls.
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// let policy = stormguard::RetryPolicy::default();
    /// let budget = stormguard::RetryBudget::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).budget(&budget);
    /// # let _ = call;
    /// ```
    pub fn budget<B2: Budget>(self, budget: B2) -> Retrying<'a, Op, S, C, B2, K, N> {
        self.map(|(s, c, _, k, n)| (s, c, budget, k, n))
    }

    /// Asks `breaker` before every attempt and tells it how the attempt
    /// went: a retryable failure counts against the service, a success for
    /// it; a permanent failure (the service answered, the request was bad)
    /// is neither. A refused attempt gives up at once with
    /// [`GiveUp::CircuitOpen`].
    ///
    /// Takes `&breaker` or an `Option` of one, so a breaker chosen at run
    /// time needs no second call chain.
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// use stormguard::CircuitBreaker;
    /// let policy = stormguard::RetryPolicy::default();
    /// let breaker = CircuitBreaker::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).breaker(&breaker);
    /// let maybe: Option<&CircuitBreaker> = None;
    /// let other = (|| ready(Ok::<(), ()>(()))).retry(&policy).breaker(maybe);
    /// # let _ = (call, other);
    /// ```
    pub fn breaker(mut self, breaker: impl Into<Option<&'a CircuitBreaker>>) -> Self {
        self.settings.breaker = breaker.into();
        self
    }

    /// Classifies errors with `classify` (a closure `&E -> Failure`; see
    /// [`classify`](crate::classify) for HTTP and gRPC).
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::classify::http;
    /// use stormguard::driver::RetryExt;
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Err::<(), u16>(503)))
    ///     .retry(&policy)
    ///     .when(|status: &u16| http::failure_for_status(*status).unwrap_or(stormguard::Failure::permanent()));
    /// # let _ = call;
    /// ```
    pub fn when<K2>(self, classify: K2) -> Retrying<'a, Op, S, C, B, K2, N> {
        self.map(|(s, c, b, _, n)| (s, c, b, classify, n))
    }

    /// Calls `notify` before each sleep with the failed attempt and the
    /// wait (a closure `(&LastAttempt<E>, Duration)`), e.g. to log it.
    ///
    /// ```
    /// use core::future::ready;
    /// use core::time::Duration;
    /// use stormguard::driver::{LastAttempt, RetryExt};
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Err::<(), &str>("503")))
    ///     .retry(&policy)
    ///     .notify(|last: &LastAttempt<&str>, after: Duration| eprintln!("{last}; retrying in {after:?}"));
    /// # let _ = call;
    /// ```
    pub fn notify<N2>(self, notify: N2) -> Retrying<'a, Op, S, C, B, K, N2> {
        self.map(|(s, c, b, k, _)| (s, c, b, k, notify))
    }

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

    /// This call's idempotency instead of the policy's (one non-idempotent
    /// method under a policy shared by a client).
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// use stormguard::Idempotency;
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).idempotency(Idempotency::NonIdempotent);
    /// # let _ = call;
    /// ```
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.settings.idempotency = Some(idempotency);
        self
    }

    /// Draws the jitter from `seed`: the same seed, the same delays. By
    /// default each call is seeded freshly (with `std`), or — without `std`,
    /// where there is no entropy to draw on — from the clock's reading when
    /// the call starts; firmware should give each call a seed unique to the
    /// device, so that a fleet does not retry in lock-step.
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).seed(42);
    /// # let _ = call;
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.rng = Some(Rng::with_seed(seed));
        self
    }
}

impl<'a, Op, Fut, T, E, S, C, B, K, N> IntoFuture for Retrying<'a, Op, S, C, B, K, N>
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
    type IntoFuture = RetryFuture<'a, Op, Fut, E, S, C, B, K, N>;

    fn into_future(self) -> Self::IntoFuture {
        let Retrying {
            op,
            sleeper,
            clock,
            budget,
            classify,
            notify,
            settings,
        } = self;
        let now = clock.now();
        let rng = settings
            .rng
            .unwrap_or_else(|| fresh_rng(settings.policy, now));
        let mut call = RetryState::with_rng(settings.policy, now, rng);
        if let Some(idempotency) = settings.idempotency {
            call.set_idempotency(idempotency);
        }
        RetryFuture {
            op,
            policy: settings.policy,
            sleeper,
            clock,
            budget,
            breaker: settings.breaker,
            classify,
            notify,
            attempt_timeout: settings.attempt_timeout,
            call,
            start: Some(now),
            last: None,
            phase: Phase::Idle,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a retried call: [`Retrying`] after `.await` (or
    /// `.into_future()`).
    ///
    /// It holds the attempt in flight, its timer and the pending sleep
    /// inline — nothing is spawned or allocated. Dropping it cancels them
    /// and releases a breaker probe it holds. Polling it again after it
    /// completed returns `Pending`.
    #[must_use = "futures do nothing unless polled"]
    pub struct RetryFuture<'a, Op, Fut, E, S: Sleeper, C, B, K, N> {
        op: Op,
        policy: &'a RetryPolicy,
        sleeper: S,
        clock: C,
        budget: B,
        breaker: Option<&'a CircuitBreaker>,
        classify: K,
        notify: N,
        attempt_timeout: Option<Duration>,
        call: RetryState,
        // The clock's reading when the call was created: the first attempt
        // starts with it instead of reading the clock again.
        start: Option<Instant>,
        // The failed attempt the call is sleeping after, kept to report it if
        // the breaker then refuses the next attempt or the deadline passes.
        last: Option<LastAttempt<E>>,
        #[pin]
        phase: Phase<'a, Fut, S::Sleep>,
    }
}

pin_project_lite::pin_project! {
    #[project = PhaseProj]
    enum Phase<'a, Fut, Sl> {
        // About to start an attempt.
        Idle,
        Attempt {
            #[pin]
            attempt: Fut,
            #[pin]
            timer: Option<Sl>,
            permit: Option<Permit<'a>>,
            started: Instant,
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
                    let now = match this.start.take() {
                        Some(start) => start,
                        None => this.clock.now(),
                    };
                    let policy = *this.policy;
                    let call = &mut *this.call;
                    let time_left = call.time_left(now);
                    if time_left == Some(Duration::ZERO) {
                        // A sleep overshot the deadline: no attempt can run.
                        if let Some(metrics) = policy.metrics() {
                            metrics.give_up(GiveUp::DeadlineExceeded);
                        }
                        let last = this.last.take().unwrap_or(LastAttempt::TimedOut);
                        let error =
                            RetryError::new(GiveUp::DeadlineExceeded, call.attempts(), last);
                        this.phase.set(Phase::Done);
                        return Poll::Ready(Err(error));
                    }
                    let permit = match this.breaker {
                        None => None,
                        Some(breaker) => match breaker.try_acquire(now) {
                            Ok(permit) => Some(permit),
                            Err(open) => {
                                // Always `GiveUp(CircuitOpen)`; it counts the give-up.
                                let _ = call.on_circuit_open(policy);
                                let last = this.last.take().unwrap_or(LastAttempt::Refused(open));
                                let error =
                                    RetryError::new(GiveUp::CircuitOpen, call.attempts(), last);
                                this.phase.set(Phase::Done);
                                return Poll::Ready(Err(error));
                            }
                        },
                    };
                    *this.last = None;
                    let limit = match (*this.attempt_timeout, time_left) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    let timer = limit.map(|d| this.sleeper.sleep(d));
                    let attempt = (this.op)();
                    this.phase.set(Phase::Attempt {
                        attempt,
                        timer,
                        permit,
                        started: now,
                    });
                }
                PhaseProj::Attempt {
                    attempt,
                    timer,
                    permit,
                    started,
                } => {
                    let outcome = match attempt.poll(cx) {
                        Poll::Ready(Ok(value)) => {
                            // A success is reported as of its attempt's
                            // start: neither the budgets nor the breaker use
                            // the time of a success, and the clock is not
                            // read again (a read costs more than the rest of
                            // the success path).
                            let now = *started;
                            if let Some(permit) = permit.take() {
                                permit.success(now);
                            }
                            this.call.on_success(this.policy, now, &*this.budget);
                            this.phase.set(Phase::Done);
                            return Poll::Ready(Ok(value));
                        }
                        Poll::Ready(Err(error)) => LastAttempt::Failed(error),
                        Poll::Pending => {
                            let timed_out =
                                timer.as_pin_mut().is_some_and(|t| t.poll(cx).is_ready());
                            if !timed_out {
                                return Poll::Pending;
                            }
                            LastAttempt::TimedOut
                        }
                    };
                    let failure = match &outcome {
                        LastAttempt::Failed(error) => this.classify.classify(error),
                        _ => Failure::timeout(),
                    };
                    let now = this.clock.now();
                    if let Some(permit) = permit.take() {
                        if failure.class().is_retryable() {
                            permit.failure(now);
                        }
                        // A permanent failure says nothing of the service's
                        // health: the permit is dropped without a verdict.
                    }
                    let call = &mut *this.call;
                    match call.on_failure(this.policy, &failure, now, &*this.budget) {
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
                        Decision::GiveUp(reason) => {
                            let error = RetryError::new(reason, call.attempts(), outcome);
                            this.phase.set(Phase::Done);
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

impl<Op, S, C, B, K, N> fmt::Debug for Retrying<'_, Op, S, C, B, K, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrying")
            .field("policy", self.settings.policy)
            .field("breaker", &self.settings.breaker.is_some())
            .field("attempt_timeout", &self.settings.attempt_timeout)
            .field("idempotency", &self.settings.idempotency)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "std")]
fn fresh_rng(_: &RetryPolicy, _: Instant) -> Rng {
    Rng::new()
}

#[cfg(not(feature = "std"))]
fn fresh_rng(policy: &RetryPolicy, now: Instant) -> Rng {
    // No entropy without std: mix the start time with the policy's address
    // (see `Retrying::seed`).
    let address = policy as *const RetryPolicy as usize as u64;
    Rng::with_seed(now.as_nanos() ^ address.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
