//! stormguard makes retrying safe.
//!
//! For each failed attempt of a call, stormguard decides whether to try again
//! and when — and refuses when a retry would hurt: when the method is not
//! idempotent and the first attempt may have run, when the shared retry
//! budget is spent, when the deadline cannot be met, or when the server said
//! stop. It is a `no_std`, allocation-free, sans-IO core: it never sleeps,
//! never reads a clock and never does I/O. The caller passes `now` in and
//! gets a [`Decision`] out, in the style of smoltcp and quinn-proto.
//!
//! # With a runtime: the async driver
//!
//! ```
//! use core::future::{ready, Ready};
//! use core::time::Duration;
//! use stormguard::driver::{RetryExt, StdClock};
//! use stormguard::{Failure, RetryPolicy};
//!
//! // Any `Fn(Duration) -> impl Future` sleeps; a runtime adapter
//! // (stormguard-smol, stormguard-async-std) sets its own for you.
//! fn no_wait(_: Duration) -> Ready<()> { ready(()) }
//!
//! let policy = RetryPolicy::builder().max_attempts(3).build()?;
//! let mut calls = 0;
//! let call = (|| { calls += 1; ready(if calls < 3 { Err(503u16) } else { Ok("body") }) })
//!     .retry(&policy)
//!     .sleeper(no_wait)
//!     .clock(StdClock)
//!     .when(|status| if *status >= 500 { Failure::transient() } else { Failure::permanent() });
//! # let body = futures_poll(call);
//! // let body = call.await;
//! assert_eq!(body, Ok("body"));
//! # fn futures_poll<F: core::future::IntoFuture>(f: F) -> F::Output {
//! #     let mut f = core::pin::pin!(f.into_future());
//! #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
//! #     loop { if let core::task::Poll::Ready(v) = core::future::Future::poll(f.as_mut(), &mut cx) { return v; } }
//! # }
//! # Ok::<(), stormguard::ConfigError>(())
//! ```
//!
//! # Driving the state machine by hand
//!
//! Every driver is a thin loop over [`Call`]: it takes the breaker's
//! permit before each attempt, tells the breaker and the budget how the
//! attempt went, counts the metrics and hands back the [`Decision`]. The
//! caller only runs attempts, reads its clock and sleeps:
//!
//! ```
//! use core::time::Duration;
//! use stormguard::{Backoff, Call, Decision, Failure, GiveUp, Instant, Jitter, RetryPolicy};
//!
//! let policy = RetryPolicy::builder()
//!     .max_attempts(5)
//!     .backoff(Backoff::exponential(Duration::from_millis(100), 2.0).jitter(Jitter::None))
//!     .deadline(Duration::from_secs(1))
//!     .build()?;
//! let mut now = Instant::ZERO; // a fake clock: time is just a value
//! let mut call = Call::with_seed(&policy, 42);
//! let mut waits = Vec::new();
//! let outcome = loop {
//!     let attempt = match call.begin_attempt(now) {
//!         Ok(attempt) => attempt,
//!         Err(decision) => break decision,
//!     };
//!     now += Duration::from_millis(100); // the attempt runs 100 ms, then times out
//!     match attempt.fail(&Failure::timeout(), now) {
//!         Decision::Retry { after } => { waits.push(after.as_millis()); now += after; }
//!         decision => break decision,
//!     }
//! };
//! assert_eq!(waits, [100, 200]); // a third retry, at 600 + 400 ms, would miss the deadline
//! assert_eq!(outcome, Decision::GiveUp(GiveUp::DeadlineExceeded));
//! assert_eq!(call.attempts(), 3);
//! # Ok::<(), stormguard::ConfigError>(())
//! ```
//!
//! # The parts
//!
//! | part | what it does |
//! |---|---|
//! | [`Instant`] | time as a value the caller passes in |
//! | [`Backoff`], [`Jitter`] | delay schedules: constant, linear, exponential; five jitters |
//! | [`Failure`], [`FailureClass`], [`Replay`], [`RetryAfter`] | how the caller describes a failed attempt |
//! | [`classify`] | HTTP and gRPC status codes, `Retry-After` and `grpc-retry-pushback-ms` parsers |
//! | [`Idempotency`] | the gate that refuses to replay a non-idempotent request that may have run |
//! | [`Budget`] and its implementations | the limit on retries shared by every call of a client |
//! | [`CircuitBreaker`] | stops calls to a service that is down; half-open admits exactly N probes |
//! | [`RetryPolicy`] | validated, shareable configuration (`const`, usable in a `static`) |
//! | [`Call`], [`Attempt`] | one logical call's lifecycle: the breaker's permit per attempt, what the breaker and the budget are told, the metrics, the decision |
//! | [`Retry`], [`Decision`], [`GiveUp`] | the decision half of a call |
//! | [`HedgingPolicy`], [`Hedge`] | hedged requests (A6 `hedgingPolicy`): copies `hedging_delay` apart, the first success wins |
//! | [`AdaptiveThrottle`] | client-side adaptive throttling: reject locally as the backend's accept rate falls |
//! | `grpc_config` (feature `grpc-config`) | policies from a gRPC service config JSON |
//! | [`Metrics`] | atomic counters of attempts, retries, give-ups by reason, breaker transitions |
//! | [`Random`] | the seedable generator jitter is drawn from |
//! | [`driver`] | the async retry future over any runtime's [`Sleeper`] and [`Clock`] (`(|| call()).retry(&policy).await`), and a blocking loop |
//!
//! # Which budget to pick
//!
//! | budget | limits retries to | pick it when | follows |
//! |---|---|---|---|
//! | [`Throttle`] | none while more than half the bucket is gone; each failure takes 1 token, each success earns `token_ratio` | you speak gRPC, or want the A6 numbers (10 tokens, ratio 0.1) | gRPC proposal A6 `retryThrottling` |
//! | [`RetryBudget`] | `ratio` × requests + `min_per_second` | traffic varies and retries should scale with it (the usual choice for a service) | Finagle `RetryBudget`, Linkerd, tower `TpsBudget` |
//! | [`RateBudget`] | `per_second`, bursts of `burst` | the server's spare capacity for retries is a fixed, known number | the generic cell rate algorithm (GCRA), as in governor |
//! | [`CostBucket`] | a capacity paid per retry by class, refunded on success | you want the AWS SDK "standard" retry quota | AWS SDKs' standard retry mode |
//! | [`NoBudget`] | nothing | one client cannot hurt the server, or tests | |
//!
//! A retry budget pairs well with a [`CircuitBreaker`]: the budget caps
//! the extra load while a service struggles; the breaker stops calls (and
//! so retries) once it is down, and probes for its recovery.
//!
//! # Features
//!
//! - `std` (default): [`Call::new`], [`Retry::new`] and the drivers seed
//!   each call's jitter freshly, [`Instant::from_std`] converts from
//!   `std::time::Instant`, and the blocking driver
//!   ([`driver::BlockingRetryExt`]) sleeps the thread. Firmware turns default
//!   features off (`default-features = false`); the crate then builds for
//!   targets without a heap, such as `thumbv6m-none-eabi`. Without `std`
//!   there is no entropy, and no silent default: a call needs a seed
//!   ([`Call::with_seed`], [`Retry::with_seed`], or `.seed(...)` on a retry
//!   future, without which it does not compile), unique to the device and
//!   the call, or identical devices rebooting together after a power cut
//!   would retry in lock-step.
//! - `async` (default): the [`driver`]'s retry future, `no_std` and
//!   allocation-free, for any executor (smol, async-std, embassy…).
//! - `grpc-config` (std): [`grpc_config::ServiceConfig`] reads a gRPC
//!   service config's retry, hedging and throttling policies (proposal A6)
//!   with `serde_json`, strictly, every error naming its JSON path.
//! - `critical-section`: for targets without atomic compare-and-swap
//!   (`thumbv6m-none-eabi`): the budgets, the breaker and the metrics run
//!   their atomic updates in a critical section, which the firmware provides
//!   (for example cortex-m's `critical-section-single-core`). Single-core
//!   firmware may build with
//!   `RUSTFLAGS="--cfg portable_atomic_unsafe_assume_single_core"` instead.
//!   On 32-bit targets without 64-bit atomics, the 64-bit words go through
//!   `portable-atomic`'s fallback, which is not lock-free; so does
//!   [`RetryBudget`]'s 128-bit word on targets without a 128-bit
//!   compare-and-swap.
//!
//! Where common practice and the standards differ (gRPC proposal A6, RFC 9110,
//! the IETF Idempotency-Key draft), stormguard follows the standard and says
//! so where it matters.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

pub mod adaptive;
pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod call;
pub mod classify;
mod config;
pub mod decision;
#[cfg(any(feature = "async", feature = "std"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "async", feature = "std"))))]
pub mod driver;
pub mod failure;
#[cfg(feature = "grpc-config")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc-config")))]
pub mod grpc_config;
pub mod hedging;
pub mod idempotency;
pub mod metrics;
pub mod policy;
pub mod random;
pub mod retry;
mod sync;
pub mod time;

pub use adaptive::{AdaptiveThrottle, AdaptiveThrottleBuilder};
pub use backoff::{Backoff, BackoffBuilder, Delays, Jitter};
pub use breaker::{BreakerState, CircuitBreaker, CircuitBreakerBuilder, Open, Permit, PermitToken};
pub use budget::{Budget, CostBucket, NoBudget, RateBudget, RetryBudget, Throttle, Withdrawal};
pub use call::{Attempt, Call, IntoBreaker, IntoThrottle};
pub use config::{ConfigError, ConfigErrorKind};
pub use decision::{Decision, GiveUp};
#[cfg(any(feature = "async", feature = "std"))]
pub use driver::{Clock, RetryError, Sleeper};
pub use failure::{Failure, FailureClass, Replay, RetryAfter};
pub use hedging::{Hedge, HedgeStep, HedgingPolicy, HedgingPolicyBuilder, MAX_HEDGED_ATTEMPTS};
#[cfg(feature = "std")]
pub use idempotency::SyncIdempotencyTable;
pub use idempotency::{
    fingerprint, Begin, Idempotency, IdempotencyKey, IdempotencyTable, KeyParseError, StaleTicket,
    Ticket,
};
pub use metrics::{GiveUpCounts, Metrics, MetricsSnapshot};
pub use policy::{DecisionOrder, RetryPolicy, RetryPolicyBuilder};
pub use random::Random;
pub use retry::Retry;
pub use time::Instant;
