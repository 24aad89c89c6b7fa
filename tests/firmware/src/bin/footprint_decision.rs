//! The footprint of the decision path: one call through `Call` — the
//! breaker's permit, the gRPC throttle, the policy's gates and the backoff
//! with jitter — driven by hand, as a firmware without an executor would.
//! scripts/footprint measures it against `footprint-empty`.
//!
//! Every input comes through `black_box`, so nothing is folded away at
//! compile time: the measured code is the code a firmware runs.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::time::Duration;

use panic_halt as _;
use stormguard::{
    Backoff, Call, CircuitBreaker, Decision, Failure, Instant, RetryPolicy, Throttle,
};

/// The client's shared parts, built when the crate compiles.
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

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut call = Call::with_seed(&POLICY, black_box(0x5eed))
        .budget(&THROTTLE)
        .breaker(&BREAKER);
    let mut now = Instant::from_nanos(black_box(1_000));
    loop {
        let attempt = match call.begin_attempt(now) {
            Ok(attempt) => attempt,
            Err(decision) => {
                let _ = black_box(decision);
                break;
            }
        };
        now = Instant::from_nanos(black_box(2_000));
        if black_box(false) {
            attempt.succeed(now);
            break;
        }
        match attempt.fail(&black_box(Failure::transient()), now) {
            Decision::Retry { after } => now += black_box(after),
            decision => {
                let _ = black_box(decision);
                break;
            }
        }
    }
    loop {
        cortex_m::asm::wfi();
    }
}
