//! The footprint of the decision alone: a `Retry` with no budget and no
//! breaker, the same policy as `footprint-decision`. scripts/footprint
//! measures it against `footprint-empty`, to show what the budget and the
//! breaker add.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::time::Duration;

use panic_halt as _;
use stormguard::{Backoff, Decision, Failure, Instant, NoBudget, Retry, RetryPolicy};

static POLICY: RetryPolicy = match RetryPolicy::builder()
    .max_attempts(4)
    .backoff(Backoff::exponential(Duration::from_millis(100), 2.0))
    .deadline(Duration::from_secs(10))
    .build()
{
    Ok(policy) => policy,
    Err(_) => panic!("invalid policy"),
};

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut now = Instant::from_nanos(black_box(1_000));
    let mut retry = Retry::with_seed(&POLICY, now, black_box(0x5eed));
    loop {
        now = Instant::from_nanos(black_box(2_000));
        if black_box(false) {
            retry.on_success(now, &NoBudget);
            break;
        }
        match retry.on_failure(&black_box(Failure::transient()), now, &NoBudget) {
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
