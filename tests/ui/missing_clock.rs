// A retried call on the core alone, given a sleeper but no clock.
use std::future::{ready, Ready};
use std::time::Duration;

use stormguard::driver::RetryExt;
use stormguard::RetryPolicy;

fn no_wait(_: Duration) -> Ready<()> {
    ready(())
}

async fn fetch(policy: &RetryPolicy) -> Result<u32, stormguard::RetryError<()>> {
    (|| ready(Ok::<u32, ()>(1))).retry(policy).sleeper(no_wait).await
}

fn main() {
    let _ = fetch;
}
