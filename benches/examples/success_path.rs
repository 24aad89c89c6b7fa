//! The async success path, for an instruction count: runs `N` awaits of an
//! operation that is ready at once, through `bare`, `stormguard` (the smol
//! adapter, default policy), `stormguard-deadline`, `stormguard-breaker` (a
//! `Throttle` and a breaker) or `backon`, inside one
//! `block_on`. Run under `valgrind --tool=callgrind` with two values of `N`
//! and divide the difference by the difference of `N`: instructions per
//! call, exact and repeatable (`scripts/bench` does not run this; see
//! BENCHMARKS.md).
//!
//! `cargo run --release -p stormguard-benches --example success_path -- stormguard 100000`

use std::future::IntoFuture;
use std::hint::black_box;
use std::time::Duration;

use backon::Retryable;
use stormguard_smol::{CircuitBreaker, RetryExt, RetryPolicy, Throttle};

async fn call() -> Result<u32, std::io::Error> {
    Ok(black_box(42))
}

async fn smol_sleep(d: Duration) {
    async_io::Timer::after(d).await;
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let policy = RetryPolicy::default();
    let with_deadline = RetryPolicy::builder()
        .deadline(Duration::from_secs(30))
        .build()
        .expect("valid");
    let throttle = Throttle::new(10, 0.1).expect("gRPC A6 example values");
    let breaker = CircuitBreaker::default();
    let backon = backon::ExponentialBuilder::default().with_jitter();
    // One loop per variant, chosen once: the choice costs nothing per call.
    macro_rules! each {
        ($call:expr) => {
            smol::block_on(async {
                for _ in 0..n {
                    let out: Result<u32, std::io::Error> = $call;
                    black_box(out.ok());
                }
            })
        };
    }
    match which.as_str() {
        "bare" => each!(call().await),
        "clock" => each!({
            black_box(stormguard_smol::Clock::now(
                &stormguard_smol::driver::StdClock,
            ));
            call().await
        }),
        "stormguard" => each!(RetryExt::retry(call, &policy)
            .into_future()
            .await
            .map_err(|e| e.into_error().expect("an error"))),
        "stormguard-seeded" => each!(RetryExt::retry(call, &policy)
            .seed(1)
            .into_future()
            .await
            .map_err(|e| e.into_error().expect("an error"))),
        "stormguard-deadline" => each!(RetryExt::retry(call, &with_deadline)
            .into_future()
            .await
            .map_err(|e| e.into_error().expect("an error"))),
        "stormguard-breaker" => each!(RetryExt::retry(call, &policy)
            .budget(&throttle)
            .breaker(&breaker)
            .into_future()
            .await
            .map_err(|e| e.into_error().expect("an error"))),
        "backon" => each!(Retryable::retry(call, backon).sleep(smol_sleep).await),
        other => panic!("unknown: {other}"),
    }
}
