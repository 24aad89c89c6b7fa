//! [stormguard]'s retry future on [embassy](https://embassy.dev): safe
//! retries — backoff with jitter, a shared retry budget, a circuit breaker,
//! deadlines, per-attempt timeouts and the idempotency gate — for `no_std`
//! firmware, on `embassy-time`'s timer and clock.
//!
//! This crate is only `embassy-time`'s [`Timer`](embassy_time::Timer)
//! ([`EmbassySleeper`]) and [`Instant`](embassy_time::Instant)
//! ([`EmbassyClock`]) plugged into the core's runtime-independent
//! [`driver`]; every decision is the core's. It re-exports the core, so one
//! `use stormguard_embassy::*` (or a few names) is all a firmware needs.
//!
//! Without `std` there is no entropy, so a retried call needs a seed:
//! `.seed(...)`, unique to the device and to the call, or it does not
//! compile (see the README for ways to make one). It enables no `tick-*`,
//! driver or queue feature of `embassy-time`: the firmware chooses them.
//!
//! ```
//! use core::time::Duration;
//! use stormguard_embassy::{Backoff, CircuitBreaker, Failure, RetryExt, RetryPolicy, Throttle};
//!
//! // A client's shared parts: `static`s, built when the firmware compiles.
//! static POLICY: RetryPolicy = match RetryPolicy::builder()
//!     .max_attempts(4)
//!     .backoff(Backoff::exponential(Duration::from_millis(50), 2.0)) // full jitter
//!     .deadline(Duration::from_secs(2))
//!     .build()
//! {
//!     Ok(policy) => policy,
//!     Err(_) => panic!("invalid retry policy"),
//! };
//! static THROTTLE: Throttle = match Throttle::new(10, 0.1) {
//!     Ok(throttle) => throttle,
//!     Err(_) => panic!("invalid throttle"),
//! };
//! static BREAKER: CircuitBreaker = match CircuitBreaker::new(5, Duration::from_secs(30)) {
//!     Ok(breaker) => breaker,
//!     Err(_) => panic!("invalid breaker"),
//! };
//!
//! let seed = 0x5eed_0001; // unique to the device and the call: see the README
//! let mut calls = 0;
//! let sent = (|| {
//!     calls += 1;
//!     let n = calls;
//!     async move { if n < 3 { Err(503u16) } else { Ok("sent") } }
//! })
//! .retry(&POLICY)
//! .seed(seed)
//! .budget(&THROTTLE)
//! .breaker(&BREAKER)
//! .when(|status| if *status >= 500 { Failure::transient() } else { Failure::permanent() })
//! .attempt_timeout(Duration::from_millis(500));
//! # let sent = block_on(sent);
//! // let sent = sent.await;
//! assert_eq!(sent, Ok("sent"));
//! # fn block_on<F: core::future::IntoFuture>(f: F) -> F::Output {
//! #     let mut f = core::pin::pin!(f.into_future());
//! #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
//! #     loop {
//! #         if let core::task::Poll::Ready(v) = core::future::Future::poll(f.as_mut(), &mut cx) { return v; }
//! #         embassy_time::MockDriver::get().advance(embassy_time::Duration::from_ticks(1));
//! #     }
//! # }
//! ```
//!
//! [stormguard]: https://docs.rs/stormguard

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use core::future::Future;
use core::time::Duration;

pub use stormguard::driver::{
    AnyError, Classify, DefaultSeed, HedgeFuture, Hedging, LastAttempt, NoNotify, Notify,
    RetryError, RetryFuture, RetryIf, Retrying, Seed, WithoutStdSetASeed,
};
#[doc(no_inline)]
pub use stormguard::*;

const NANOS_PER_SEC: u64 = 1_000_000_000;

const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

/// `duration` in ticks of a `tick_hz` clock, rounded up, saturating.
#[inline]
const fn ticks_at(duration: Duration, tick_hz: u64) -> u64 {
    // ticks = nanos × tick_hz / 10⁹, with both reduced by their gcd. The
    // sub-second part is a u32, so its product fits a u64 for any reduced
    // rate below 2³² (every embassy tick rate: 5.24 GHz reduces to 16 384),
    // and the wide path below is compiled away; it is there for the rest.
    let divisor = gcd(tick_hz, NANOS_PER_SEC);
    let (num, den) = (tick_hz / divisor, NANOS_PER_SEC / divisor);
    let whole = duration.as_secs().saturating_mul(tick_hz);
    let sub = duration.subsec_nanos() as u64;
    let part = match sub.checked_mul(num) {
        Some(product) => product.div_ceil(den),
        None => {
            let wide = (sub as u128 * num as u128).div_ceil(den as u128);
            if wide > u64::MAX as u128 {
                u64::MAX
            } else {
                wide as u64
            }
        }
    };
    whole.saturating_add(part)
}

/// `duration` in ticks of `embassy-time`'s clock ([`TICK_HZ`]), rounded
/// **up**: a sleep never ends before `duration` has passed on that clock —
/// a 900 µs backoff on a 1 kHz tick is one tick (1 ms), not zero, as
/// truncating to whole milliseconds would make it. Saturates instead of
/// overflowing.
///
/// ```
/// use core::time::Duration;
/// use embassy_time::TICK_HZ;
/// use stormguard_embassy::ticks_rounded_up;
/// assert_eq!(ticks_rounded_up(Duration::from_secs(3)), 3 * TICK_HZ);
/// assert_eq!(ticks_rounded_up(Duration::from_nanos(1)), 1); // never 0
/// assert_eq!(ticks_rounded_up(Duration::ZERO), 0);
/// assert_eq!(ticks_rounded_up(Duration::MAX), u64::MAX);
/// ```
///
/// [`TICK_HZ`]: embassy_time::TICK_HZ
#[inline]
pub const fn ticks_rounded_up(duration: Duration) -> u64 {
    ticks_at(duration, embassy_time::TICK_HZ)
}

/// `embassy-time`'s [`Timer`](embassy_time::Timer) as the driver's
/// [`Sleeper`]: it sleeps for the duration rounded up to whole ticks, and
/// is cancelled when dropped.
///
/// The driver races each attempt against a sleep of this sleeper too (the
/// attempt's timeout, bounded by the deadline), so attempt timeouts are
/// embassy timers as well — what `embassy_time::with_timeout` would do.
///
/// A sleep begins at the current tick, so in real time it may end up to one
/// tick sooner than `duration` when it starts late in a tick — as every
/// tick-based timer does; on the clock the driver reads
/// ([`EmbassyClock`]) it never ends early.
///
/// ```
/// use core::time::Duration;
/// use stormguard_embassy::{EmbassySleeper, Sleeper};
/// let start = embassy_time::Instant::now();
/// block_on(EmbassySleeper.sleep(Duration::from_nanos(900)));
/// # fn block_on<F: core::future::IntoFuture>(f: F) -> F::Output {
/// #     let mut f = core::pin::pin!(f.into_future());
/// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
/// #     loop {
/// #         if let core::task::Poll::Ready(v) = core::future::Future::poll(f.as_mut(), &mut cx) { return v; }
/// #         embassy_time::MockDriver::get().advance(embassy_time::Duration::from_ticks(1));
/// #     }
/// # }
/// // A 900 ns sleep on the mock driver's 1 MHz tick: one tick, not zero.
/// assert_eq!(start.elapsed().as_ticks(), 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EmbassySleeper;

impl Sleeper for EmbassySleeper {
    type Sleep = embassy_time::Timer;

    fn sleep(&self, duration: Duration) -> embassy_time::Timer {
        let ticks = embassy_time::Duration::from_ticks(ticks_rounded_up(duration));
        // `Timer::after` panics when the deadline overflows; this saturates
        // (a sleep of `Duration::MAX` never ends).
        embassy_time::Timer::at(embassy_time::Instant::now().saturating_add(ticks))
    }
}

/// `embassy-time`'s [`Instant`](embassy_time::Instant) as the driver's
/// [`Clock`]: the time since boot, in nanoseconds (whole ticks; saturating
/// after 584 years).
///
/// ```
/// use stormguard_embassy::{Clock, EmbassyClock};
/// let a = EmbassyClock.now();
/// assert!(EmbassyClock.now() >= a);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now(&self) -> Instant {
        const DIVISOR: u64 = gcd(embassy_time::TICK_HZ, NANOS_PER_SEC);
        const NUM: u64 = NANOS_PER_SEC / DIVISOR;
        const DEN: u64 = embassy_time::TICK_HZ / DIVISOR;
        let ticks = embassy_time::Instant::now().as_ticks();
        Instant::from_nanos(ticks.checked_mul(NUM).map_or(u64::MAX, |n| n / DEN))
    }
}

/// A retried call on embassy: [`Retrying`] with embassy's timer and clock.
/// Without `std` its seed slot is [`WithoutStdSetASeed`]: it is a future
/// only once `.seed(...)` has given it one.
///
/// ```
/// use core::future::{ready, Ready};
/// use stormguard_embassy::{EmbassyRetrying, RetryExt, RetryPolicy};
/// fn answer() -> Ready<Result<u8, ()>> { ready(Ok(1)) }
/// let policy = RetryPolicy::default();
/// let call: EmbassyRetrying<'_, fn() -> Ready<Result<u8, ()>>> = (answer as fn() -> _).retry(&policy);
/// let _seeded = call.seed(42);
/// ```
pub type EmbassyRetrying<'a, Op> = Retrying<'a, Op, EmbassySleeper, EmbassyClock, DefaultSeed>;

/// `(|| call()).retry(&policy).seed(seed)`, on embassy's timer: the core's
/// [`driver::RetryExt`] with the runtime filled in.
///
/// ```
/// use stormguard_embassy::{RetryExt, RetryPolicy};
/// let policy = RetryPolicy::default();
/// let call = (|| async { Ok::<_, ()>(42) }).retry(&policy).seed(7);
/// assert_eq!(block_on(call), Ok(42));
/// # fn block_on<F: core::future::IntoFuture>(f: F) -> F::Output {
/// #     let mut f = core::pin::pin!(f.into_future());
/// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
/// #     loop {
/// #         if let core::task::Poll::Ready(v) = core::future::Future::poll(f.as_mut(), &mut cx) { return v; }
/// #         embassy_time::MockDriver::get().advance(embassy_time::Duration::from_ticks(1));
/// #     }
/// # }
/// ```
pub trait RetryExt: Sized {
    /// A retried call of `self` under `policy`; give it a seed
    /// ([`Retrying::seed`]), configure it further and `.await` it.
    fn retry(self, policy: &RetryPolicy) -> EmbassyRetrying<'_, Self>;

    /// A hedged call of `self` under `policy` (copies sent over time, the
    /// first success wins; see [`Hedging`]) on embassy's timer; configure it
    /// further and `.await` it. Hedging draws no random numbers, so it needs
    /// no seed.
    fn hedge(self, policy: &HedgingPolicy) -> Hedging<'_, Self, EmbassySleeper, EmbassyClock>;
}

impl<Op, Fut, T, E> RetryExt for Op
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    fn retry(self, policy: &RetryPolicy) -> EmbassyRetrying<'_, Self> {
        driver::RetryExt::retry(self, policy)
            .sleeper(EmbassySleeper)
            .clock(EmbassyClock)
    }

    fn hedge(self, policy: &HedgingPolicy) -> Hedging<'_, Self, EmbassySleeper, EmbassyClock> {
        driver::RetryExt::hedge(self, policy)
            .sleeper(EmbassySleeper)
            .clock(EmbassyClock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn rounding_up_to_the_tick_at_common_rates() {
        // A 900 µs backoff on a 1 kHz tick: one tick, never zero.
        assert_eq!(ticks_at(Duration::from_micros(900), 1_000), 1);
        assert_eq!(ticks_at(MS, 1_000), 1);
        assert_eq!(ticks_at(MS + Duration::from_nanos(1), 1_000), 2);
        assert_eq!(ticks_at(Duration::from_millis(2_500), 1_000), 2_500);
        // 32.768 kHz (an RTC): 1 ms is 32.768 ticks, so 33.
        assert_eq!(ticks_at(MS, 32_768), 33);
        assert_eq!(ticks_at(Duration::from_secs(2), 32_768), 65_536);
        // 1 MHz (the mock driver's, and embassy's default).
        assert_eq!(ticks_at(Duration::from_nanos(900), 1_000_000), 1);
        assert_eq!(ticks_at(Duration::from_nanos(1_001), 1_000_000), 2);
        assert_eq!(ticks_at(Duration::ZERO, 1_000_000), 0);
        // Never an overflow: the largest duration at a fast tick saturates.
        assert_eq!(ticks_at(Duration::MAX, 1_000), u64::MAX);
        assert_eq!(ticks_at(Duration::MAX, 5_000_000_000), u64::MAX);
        // A rate beyond any timer: exact all the same.
        let exact = (999_999_999u128 * u64::MAX as u128).div_ceil(1_000_000_000);
        assert_eq!(
            ticks_at(Duration::new(0, 999_999_999), u64::MAX) as u128,
            exact
        );
        assert_eq!(ticks_at(Duration::new(1, 0), u64::MAX), u64::MAX);
    }

    #[test]
    fn never_early_never_more_than_a_tick_late() {
        for hz in [1_000, 32_768, 1_000_000, 80_000_000] {
            for nanos in [
                0,
                1,
                999,
                1_000,
                30_517,
                30_518,
                999_999,
                1_000_001,
                7_777_777_777,
            ] {
                let d = Duration::from_nanos(nanos);
                let ticks = ticks_at(d, hz) as u128;
                let tick_nanos = 1_000_000_000u128;
                // ticks / hz ≥ d, and (ticks − 1) / hz < d.
                assert!(
                    ticks * tick_nanos >= d.as_nanos() * hz as u128,
                    "{hz} Hz, {d:?}"
                );
                if ticks > 0 {
                    assert!(
                        (ticks - 1) * tick_nanos < d.as_nanos() * hz as u128,
                        "{hz} Hz, {d:?}"
                    );
                }
            }
        }
    }
}

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
