// A retried call on the core alone, given a sleeper but no clock.
use std::future::ready;
use std::time::Duration;

use stormguard::driver::RetryExt;
use stormguard::RetryPolicy;

async fn fetch(policy: &RetryPolicy) -> Result<u32, stormguard::RetryError<()>> {
    (|| ready(Ok::<u32, ()>(1)))
        .retry(policy)
        .sleeper(|_: Duration| ready(()))
        .await
}

fn main() {
    let _ = fetch;
}
