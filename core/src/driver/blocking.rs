//! The blocking driver: the same builder and the same [`Call`] as the async
//! one, for synchronous code, sleeping the thread between attempts.

use core::time::Duration;

use crate::budget::Budget;
use crate::decision::Decision;
use crate::driver::builder::{hook_setters, LazySeed, SeedSource, Timekeeper};
use crate::driver::error::retry_error;
use crate::driver::{
    Classify, Clock, FreshSeed, LastAttempt, Notify, RetryError, Retrying, StdClock,
};
use crate::failure::Failure;
use crate::policy::RetryPolicy;

/// A blocking operation inside a [`Retrying`]: what
/// [`BlockingRetryExt::retry`] wraps the closure in, so the builder knows
/// to [`call`](Retrying::call) it rather than await it.
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Blocking<Op>(pub Op);

/// Sleeps the calling thread: what the blocking driver waits with.
///
/// Implemented by every `Fn(Duration)` and by [`ThreadSleep`], the default.
///
/// ```
/// use core::time::Duration;
/// use stormguard::driver::{BlockingSleeper, ThreadSleep};
/// ThreadSleep.sleep(Duration::from_millis(1));
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub trait BlockingSleeper {
    /// Returns after `duration`.
    fn sleep(&self, duration: Duration);
}

impl<F: Fn(Duration)> BlockingSleeper for F {
    fn sleep(&self, duration: Duration) {
        self(duration)
    }
}

/// `std::thread::sleep`.
///
/// ```
/// use stormguard::driver::{BlockingSleeper, ThreadSleep};
/// ThreadSleep.sleep(core::time::Duration::ZERO);
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ThreadSleep;

impl BlockingSleeper for ThreadSleep {
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration)
    }
}

/// The extension that makes any blocking operation retryable:
/// `(|| fetch(url)).retry(&policy).call()`.
///
/// The operation is a closure that makes one attempt each time it is
/// called and returns `Result<T, E>`. The builder is the async driver's
/// ([`Retrying`]) with the thread's sleep and the standard clock already
/// set, and the same rules, through the same [`Call`](crate::Call). An
/// attempt cannot be cut short from outside a blocking call, so there is no
/// per-attempt timeout: give the operation its own (a socket timeout), and
/// classify it as a [`Failure::timeout`].
///
/// ```
/// use core::time::Duration;
/// use stormguard::driver::BlockingRetryExt;
/// use stormguard::{Backoff, Failure, RetryPolicy};
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(3)
///     .backoff(Backoff::constant(Duration::from_millis(1)))
///     .build()?;
/// let mut calls = 0;
/// let body = (|| {
///     calls += 1;
///     if calls < 3 { Err(503) } else { Ok("body") }
/// })
/// .retry(&policy)
/// .when(|status| if *status >= 500 { Failure::transient() } else { Failure::permanent() })
/// .call();
/// assert_eq!(body, Ok("body"));
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub trait BlockingRetryExt: Sized {
    /// A retried blocking call of `self` under `policy`; configure it
    /// further and run it with [`.call()`](Retrying::call).
    fn retry(
        self,
        policy: &RetryPolicy,
    ) -> Retrying<'_, Blocking<Self>, ThreadSleep, StdClock, FreshSeed>;
}

impl<Op, T, E> BlockingRetryExt for Op
where
    Op: FnMut() -> Result<T, E>,
{
    fn retry(
        self,
        policy: &RetryPolicy,
    ) -> Retrying<'_, Blocking<Self>, ThreadSleep, StdClock, FreshSeed> {
        Retrying::new(Blocking(self), policy)
            .map(|(_, _, b, k, n, r)| (ThreadSleep, StdClock, b, k, n, r))
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl<'a, Op, T, E, S, C, B, K, N, R> Retrying<'a, Blocking<Op>, S, C, R, B, K, N>
where
    Op: FnMut() -> Result<T, E>,
{
    hook_setters!(
        E,
        Blocking<Op>,
        "BlockingRetryExt",
        "|| Err::<(), u16>(503)",
        ".sleeper(|_| {}).call()"
    );

    /// Sleeps with `sleeper` instead of the thread's sleep (any
    /// `Fn(Duration)`: a test's fake, a sleep that can be interrupted).
    ///
    /// ```
    /// use std::cell::Cell;
    /// use core::time::Duration;
    /// use stormguard::driver::BlockingRetryExt;
    /// let slept = Cell::new(Duration::ZERO);
    /// let policy = stormguard::RetryPolicy::default();
    /// let mut n = 0;
    /// let out = (|| { n += 1; if n < 2 { Err(()) } else { Ok(n) } })
    ///     .retry(&policy)
    ///     .sleeper(|d| slept.set(slept.get() + d))
    ///     .call();
    /// assert_eq!(out, Ok(2));
    /// assert!(slept.get() <= Duration::from_millis(100)); // the first backoff, full jitter
    /// ```
    pub fn sleeper<S2: super::BlockingSleeper>(
        self,
        sleeper: S2,
    ) -> Retrying<'a, Blocking<Op>, S2, C, R, B, K, N> {
        self.map(|(_, c, b, k, n, r)| (sleeper, c, b, k, n, r))
    }

    /// Runs the call: attempts, sleeps between them, and returns the first
    /// success or the error of the give-up.
    ///
    /// # Errors
    /// A [`RetryError`]: why the call gave up, after how many attempts,
    /// and the last attempt's error.
    ///
    /// ```
    /// use stormguard::driver::BlockingRetryExt;
    /// use stormguard::{GiveUp, RetryPolicy};
    /// let policy = RetryPolicy::builder().max_attempts(2).build()?;
    /// let err = (|| Err::<(), _>("refused"))
    ///     .retry(&policy)
    ///     .sleeper(|_| {})
    ///     .call()
    ///     .unwrap_err();
    /// assert_eq!((err.reason(), err.attempts()), (GiveUp::AttemptsExhausted, 2));
    /// assert_eq!(err.into_error(), Some("refused"));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn call(self) -> Result<T, RetryError<E>>
    where
        S: super::BlockingSleeper,
        C: Clock,
        B: Budget,
        K: Classify<E>,
        N: Notify<E>,
        R: SeedSource,
    {
        let Retrying {
            op: Blocking(mut op),
            sleeper,
            clock,
            budget,
            mut classify,
            mut notify,
            seed,
            settings,
        } = self;
        let mut call = settings.start_call(budget);
        let mut seed = LazySeed::new(seed, &mut call);
        let mut time = Timekeeper::new(&call);
        let mut last = None;
        loop {
            let now = time.before_attempt(&clock);
            if let Err(decision) = call.start_attempt(now) {
                return Err(retry_error(decision, call.attempts(), last, call.refusal()));
            }
            let error = match op() {
                Ok(value) => {
                    call.succeed(now);
                    return Ok(value);
                }
                Err(error) => error,
            };
            let failure: Failure = classify.classify(&error);
            let outcome = LastAttempt::Failed(error);
            seed.before_failure(&mut call);
            match call.fail(&failure, time.after_failure(&clock)) {
                Decision::Retry { after } => {
                    notify.notify(&outcome, after);
                    last = Some(outcome);
                    if !after.is_zero() {
                        sleeper.sleep(after);
                    }
                }
                decision => {
                    return Err(retry_error(decision, call.attempts(), Some(outcome), None))
                }
            }
        }
    }
}
