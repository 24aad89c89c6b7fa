//! Prints the size of every type a program keeps per client or per call,
//! and of each adapter's retry future, as a Markdown table:
//! `cargo run --release -p stormguard-benches --example sizes`.
//!
//! Future sizes are for an operation whose own future is `call()` below
//! (an `async fn` returning `Result<u32, io::Error>`); the retry futures
//! embed it, so add what your operation's future weighs beyond it.

use std::future::IntoFuture;
use std::time::Duration;

use stormguard::{CircuitBreaker, RetryPolicy, Throttle};

async fn call() -> Result<u32, std::io::Error> {
    Ok(42)
}

async fn smol_sleep(d: Duration) {
    async_io::Timer::after(d).await;
}

fn main() {
    let policy = RetryPolicy::default();
    let throttle = Throttle::new(10, 0.1).expect("valid");
    let breaker = CircuitBreaker::default();

    let mut rows = stormguard_benches::sizes();
    rows.push(("the operation's future (`call()`)", size_of_val(&call())));
    rows.push((
        "stormguard-smol retry future",
        size_of_val(&stormguard_smol::RetryExt::retry(call, &policy).into_future()),
    ));
    rows.push((
        "stormguard-smol retry future + budget + breaker",
        size_of_val(
            &stormguard_smol::RetryExt::retry(call, &policy)
                .budget(&throttle)
                .breaker(&breaker)
                .into_future(),
        ),
    ));
    rows.push((
        "stormguard-async-std retry future",
        size_of_val(&stormguard_async_std::RetryExt::retry(call, &policy).into_future()),
    ));
    rows.push((
        "backon retry future, smol sleeper",
        size_of_val(
            &backon::Retryable::retry(call, backon::ExponentialBuilder::default())
                .sleep(smol_sleep),
        ),
    ));

    let word = size_of::<usize>();
    println!("| type | bytes | machine words |");
    println!("|---|---:|---:|");
    for (name, size) in rows {
        println!("| {name} | {size} | {:.1} |", size as f64 / word as f64);
    }
}
