//! The drivers: an async future and a blocking loop that run an operation
//! under a [`RetryPolicy`](crate::RetryPolicy).
//!
//! Both are thin loops over a [`Call`](crate::Call), which owns every rule
//! around an attempt; they only run attempts, sleep and read the clock. The
//! core stays sans-IO: a runtime plugs in through two small traits —
//! [`Sleeper`] (sleep for a `Duration`; any `Fn(Duration) -> impl Future`
//! is one) and [`Clock`] (now, as an [`Instant`](crate::Instant)) — and the
//! adapters (`stormguard-smol`, `stormguard-async-std`) are nothing more
//! than those two for their runtime. The future ([`RetryFuture`]) is
//! `no_std`, spawns nothing and allocates nothing: every attempt's future,
//! the pending sleep and the per-attempt timer live inside it, so dropping
//! it cancels the attempt in flight and the sleep, and gives back a breaker
//! probe it holds. The clock is read only when something needs it: before
//! an attempt only with a deadline, a time-based budget or a breaker, and
//! otherwise only after a failure — never on a first-try success.
//!
//! With `std`, [`BlockingRetryExt`] retries synchronous code with the same
//! builder, sleeping the thread.
//!
//! ```
//! use core::future::{ready, Future, Ready};
//! use core::time::Duration;
//! use stormguard::driver::{Clock, RetryExt};
//! use stormguard::{Backoff, Instant, RetryPolicy};
//!
//! // A runtime for this example: sleeps return at once, the clock stands still.
//! fn no_wait(_: Duration) -> Ready<()> { ready(()) }
//! struct Still;
//! impl Clock for Still {
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
//! let future = fetch.retry(&policy).sleeper(no_wait).clock(Still).into_future();
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

#[cfg(feature = "std")]
mod blocking;
mod builder;
mod error;
#[cfg(feature = "async")]
mod future;
#[cfg(feature = "async")]
mod hedge;
mod hooks;
mod runtime;

#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub use blocking::{Blocking, BlockingRetryExt, BlockingSleeper, ThreadSleep};
pub use builder::{
    DefaultSeed, FreshSeed, Retrying, Seed, SeedSource, Unconfigured, WithoutStdSetASeed,
};
pub use error::{LastAttempt, RetryError};
#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use future::{RetryExt, RetryFuture};
#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use hedge::{HedgeFuture, Hedging};
pub use hooks::{AnyError, Classify, NoNotify, Notify, RetryIf};
#[cfg(feature = "std")]
pub use runtime::StdClock;
pub use runtime::{Clock, SetAClockOrUseARuntimeAdapter, SetASleeperOrUseARuntimeAdapter, Sleeper};
