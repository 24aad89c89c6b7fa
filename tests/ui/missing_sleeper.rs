// A retried call on the core alone, given a clock but no sleeper.
use std::future::ready;

use stormguard::driver::{RetryExt, StdClock};
use stormguard::RetryPolicy;

async fn fetch(policy: &RetryPolicy) -> Result<u32, stormguard::RetryError<()>> {
    (|| ready(Ok::<u32, ()>(1))).retry(policy).clock(StdClock).await
}

fn main() {
    let _ = fetch;
}
