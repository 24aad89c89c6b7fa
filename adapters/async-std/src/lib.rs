//! [stormguard]'s retry future on [async-std](https://docs.rs/async-std): safe
//! retries — backoff with jitter, a shared retry budget, a circuit breaker,
//! deadlines, per-attempt timeouts and the idempotency gate — in one line
//! around an async call.
//!
//! This crate is only async-std's timer ([`AsyncStdSleeper`]) and the standard
//! clock ([`StdClock`]) plugged into the core's runtime-independent
//! [`driver`]; every decision is the core's. It re-exports the core, so one
//! `use stormguard_async_std::*` (or a few names) is all a program needs.
//!
//! ```
//! use std::time::Duration;
//! use stormguard_async_std::{Backoff, CircuitBreaker, Failure, RetryExt, RetryPolicy, Throttle};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = RetryPolicy::builder()
//!     .max_attempts(4)
//!     .backoff(Backoff::exponential(Duration::from_millis(1), 2.0)) // full jitter
//!     .deadline(Duration::from_secs(2))
//!     .build()?;
//! let throttle = Throttle::new(10, 0.1)?; // gRPC's numbers, shared by the client
//! let breaker = CircuitBreaker::default();
//!
//! let mut calls = 0;
//! let body = async_std::task::block_on(async {
//!     (|| {
//!         calls += 1;
//!         let n = calls;
//!         async move { if n < 3 { Err(503) } else { Ok("hello") } }
//!     })
//!     .retry(&policy)
//!     .budget(&throttle)
//!     .breaker(&breaker)
//!     .when(|status: &u16| if *status >= 500 { Failure::transient() } else { Failure::permanent() })
//!     .attempt_timeout(Duration::from_millis(500))
//!     .await
//! });
//! assert_eq!((body, calls), (Ok("hello"), 3));
//! # Ok(())
//! # }
//! ```
//!
//! async-std is discontinued upstream (its authors point to smol). This
//! adapter stays exactly as thin as `stormguard-smol` — the same timer (an
//! `async_io::Timer`, which is what `async_std::task::sleep` awaits), the
//! same clock, the same API — so moving to smol is a change of one `use`.
//!
//! [stormguard]: https://docs.rs/stormguard

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use core::future::Future;
use core::time::Duration;

pub use stormguard::driver::{
    AnyError, Classify, FreshSeed, HedgeFuture, Hedging, LastAttempt, NoNotify, Notify, RetryError,
    RetryFuture, RetryIf, Retrying, StdClock,
};
#[doc(no_inline)]
pub use stormguard::*;

/// async-std's timer as the driver's [`Sleeper`]: an `async_io::Timer`
/// (async-std's own sleeps are one, on the same reactor), cancelled when
/// dropped.
///
/// ```
/// use std::time::Duration;
/// use stormguard_async_std::{Sleeper, AsyncStdSleeper};
/// async_std::task::block_on(AsyncStdSleeper.sleep(Duration::from_millis(1)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsyncStdSleeper;

impl Sleeper for AsyncStdSleeper {
    type Sleep = async_io::Timer;

    fn sleep(&self, duration: Duration) -> async_io::Timer {
        // A duration too long to represent makes a timer that never fires.
        async_io::Timer::after(duration)
    }
}

/// A retried call on async-std: [`Retrying`] with async-std's timer and the standard
/// clock.
pub type AsyncStdRetrying<'a, Op> = Retrying<'a, Op, AsyncStdSleeper, StdClock, FreshSeed>;

/// `(|| call()).retry(&policy)`, on async-std's timer: the core's
/// [`driver::RetryExt`] with the runtime filled in.
///
/// ```
/// use stormguard_async_std::{RetryExt, RetryPolicy};
/// let policy = RetryPolicy::default();
/// let value = async_std::task::block_on(async {
///     (|| async { Ok::<_, std::io::Error>(42) }).retry(&policy).await
/// });
/// assert_eq!(value.unwrap(), 42);
/// ```
pub trait RetryExt: Sized {
    /// A retried call of `self` under `policy`; configure it further (see
    /// [`Retrying`]) and `.await` it.
    fn retry(self, policy: &RetryPolicy) -> AsyncStdRetrying<'_, Self>;

    /// A hedged call of `self` under `policy` (copies sent over time, the
    /// first success wins; see [`Hedging`]); configure it further and
    /// `.await` it.
    fn hedge(self, policy: &HedgingPolicy) -> Hedging<'_, Self, AsyncStdSleeper, StdClock>;
}

impl<Op, Fut, T, E> RetryExt for Op
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    fn retry(self, policy: &RetryPolicy) -> AsyncStdRetrying<'_, Self> {
        driver::RetryExt::retry(self, policy)
            .sleeper(AsyncStdSleeper)
            .clock(StdClock)
    }

    fn hedge(self, policy: &HedgingPolicy) -> Hedging<'_, Self, AsyncStdSleeper, StdClock> {
        driver::RetryExt::hedge(self, policy)
            .sleeper(AsyncStdSleeper)
            .clock(StdClock)
    }
}

/// The README's example, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
