//! The footprint of the async driver: the same call as
//! `footprint-decision`, through `(|| op()).retry(&policy)…` on a minimal
//! executor, with a sleeper and a clock that do nothing but hand their
//! inputs to `black_box`. scripts/footprint measures it against
//! `footprint-empty`.
#![no_std]
#![no_main]

use core::future::{ready, Future, IntoFuture, Ready};
use core::hint::black_box;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use panic_halt as _;
use stormguard::driver::{Clock, RetryExt};
use stormguard::{Backoff, CircuitBreaker, Instant, RetryPolicy, Throttle};

static POLICY: RetryPolicy = match RetryPolicy::builder()
    .max_attempts(4)
    .backoff(Backoff::exponential(Duration::from_millis(100), 2.0))
    .deadline(Duration::from_secs(10))
    .build()
{
    Ok(policy) => policy,
    Err(_) => panic!("invalid policy"),
};
static THROTTLE: Throttle = match Throttle::new(10, 0.1) {
    Ok(throttle) => throttle,
    Err(_) => panic!("invalid throttle"),
};
static BREAKER: CircuitBreaker = match CircuitBreaker::new(5, Duration::from_secs(30)) {
    Ok(breaker) => breaker,
    Err(_) => panic!("invalid breaker"),
};

/// A hardware timer would be read here.
struct Ticks;

impl Clock for Ticks {
    fn now(&self) -> Instant {
        Instant::from_micros(black_box(1_000))
    }
}

/// A timer would be armed here.
fn sleep(duration: Duration) -> Ready<()> {
    black_box(duration);
    ready(())
}

/// The operation: its answer comes from outside.
fn request() -> Ready<Result<u32, u16>> {
    ready(black_box(Err(503)))
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let call = request
        .retry(&POLICY)
        .sleeper(sleep)
        .clock(Ticks)
        .seed(black_box(0x5eed))
        .budget(&THROTTLE)
        .breaker(&BREAKER)
        .into_future();
    let mut call = pin!(call);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(result) = call.as_mut().poll(&mut cx) {
            black_box(result.is_ok());
            break;
        }
    }
    loop {
        cortex_m::asm::wfi();
    }
}
