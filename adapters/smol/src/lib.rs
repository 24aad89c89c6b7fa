//! [stormguard]'s retry future on [smol](https://docs.rs/smol): safe
//! retries — backoff with jitter, a shared retry budget, a circuit breaker,
//! deadlines, per-attempt timeouts and the idempotency gate — in one line
//! around an async call.
//!
//! This crate is only smol's timer ([`SmolSleeper`]) and the standard
//! clock ([`StdClock`]) plugged into the core's runtime-independent
//! [`driver`]; every decision is the core's. It re-exports the core, so one
//! `use stormguard_smol::*` (or a few names) is all a program needs.
//!
//! ```
//! use std::time::Duration;
//! use stormguard_smol::{Backoff, CircuitBreaker, Failure, RetryExt, RetryPolicy, Throttle};
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
//! let body = smol::block_on(async {
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

/// smol's timer as the driver's [`Sleeper`]: an `async_io::Timer`,
/// cancelled when dropped.
///
/// ```
/// use std::time::Duration;
/// use stormguard_smol::{Sleeper, SmolSleeper};
/// smol::block_on(SmolSleeper.sleep(Duration::from_millis(1)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SmolSleeper;

impl Sleeper for SmolSleeper {
    type Sleep = async_io::Timer;

    fn sleep(&self, duration: Duration) -> async_io::Timer {
        // A duration too long to represent makes a timer that never fires.
        async_io::Timer::after(duration)
    }
}

/// A retried call on smol: [`Retrying`] with smol's timer and the standard
/// clock.
pub type SmolRetrying<'a, Op> = Retrying<'a, Op, SmolSleeper, StdClock, FreshSeed>;

/// `(|| call()).retry(&policy)`, on smol's timer: the core's
/// [`driver::RetryExt`] with the runtime filled in.
///
/// ```
/// use stormguard_smol::{RetryExt, RetryPolicy};
/// let policy = RetryPolicy::default();
/// let value = smol::block_on(async {
///     (|| async { Ok::<_, std::io::Error>(42) }).retry(&policy).await
/// });
/// assert_eq!(value.unwrap(), 42);
/// ```
pub trait RetryExt: Sized {
    /// A retried call of `self` under `policy`; configure it further (see
    /// [`Retrying`]) and `.await` it.
    fn retry(self, policy: &RetryPolicy) -> SmolRetrying<'_, Self>;

    /// A hedged call of `self` under `policy` (copies sent over time, the
    /// first success wins; see [`Hedging`]); configure it further and
    /// `.await` it.
    fn hedge(self, policy: &HedgingPolicy) -> Hedging<'_, Self, SmolSleeper, StdClock>;
}

impl<Op, Fut, T, E> RetryExt for Op
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    fn retry(self, policy: &RetryPolicy) -> SmolRetrying<'_, Self> {
        driver::RetryExt::retry(self, policy)
            .sleeper(SmolSleeper)
            .clock(StdClock)
    }

    fn hedge(self, policy: &HedgingPolicy) -> Hedging<'_, Self, SmolSleeper, StdClock> {
        driver::RetryExt::hedge(self, policy)
            .sleeper(SmolSleeper)
            .clock(StdClock)
    }
}

/// The README's example, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
