//! Benchmarks of stormguard against the libraries it replaces.
//!
//! The criterion benchmarks live in `benches/` (one file per part: budget,
//! backoff, decision, breaker, async); `examples/sizes.rs` prints the size of
//! every type a program keeps per client or per call, and of the adapters'
//! retry futures. This library holds what they share: the reference designs stormguard is compared with when no crate
//! ships them, a clock helper, and the two-thread contention harness.
//!
//! Run everything with `scripts/bench`; the numbers are in `BENCHMARKS.md`.

use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use stormguard::Instant;

/// grpc-go's retry throttler (`clientconn.go`, `retryThrottler`): gRPC A6
/// token accounting, a float behind a mutex.
///
/// Kept line for line with the Go code so the comparison is with the design
/// stormguard's [`Throttle`](stormguard::Throttle) replaces with one atomic
/// word of milli-tokens.
///
/// ```
/// let t = stormguard_benches::GrpcThrottler::new(10.0, 0.1);
/// for _ in 0..4 {
///     assert!(!t.throttle()); // failures 1–4: still above half
/// }
/// assert!(t.throttle()); // the 5th leaves 5 tokens: throttled
/// t.successful_rpc();
/// ```
#[derive(Debug)]
pub struct GrpcThrottler {
    max: f64,
    thresh: f64,
    ratio: f64,
    tokens: Mutex<f64>,
}

impl GrpcThrottler {
    /// A full bucket of `max_tokens`; a success earns `token_ratio`.
    pub fn new(max_tokens: f64, token_ratio: f64) -> Self {
        GrpcThrottler {
            max: max_tokens,
            thresh: max_tokens / 2.0,
            ratio: token_ratio,
            tokens: Mutex::new(max_tokens),
        }
    }

    /// A failed RPC: takes a token and answers whether a retry is throttled
    /// (grpc-go `throttle()`).
    pub fn throttle(&self) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        *tokens -= 1.0;
        if *tokens < 0.0 {
            *tokens = 0.0;
        }
        *tokens <= self.thresh
    }

    /// A successful RPC: earns `token_ratio` (grpc-go `successfulRPC()`).
    pub fn successful_rpc(&self) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        *tokens += self.ratio;
        if *tokens > self.max {
            *tokens = self.max;
        }
    }
}

/// A stormguard [`Instant`] read from the monotonic clock, as a caller that
/// has no `now` at hand would get one (one `clock_gettime` through the vDSO).
///
/// Used where an alternative reads the clock itself (tower's `TpsBudget`),
/// so both sides of the comparison pay for one clock read.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: StdInstant,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Clock {
            origin: StdInstant::now(),
        }
    }

    /// The time since the origin.
    pub fn now(&self) -> Instant {
        Instant::from_std(self.origin, StdInstant::now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Runs `op` `iters` times on each of `threads` threads at once, all sharing
/// `shared`, and returns the wall time from the common start to the last
/// thread's end: the time per operation *per thread* under contention, in
/// the shape criterion's `iter_custom` wants.
///
/// Thread start-up is outside the measured span (a barrier releases every
/// thread together); each thread stops its own clock.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// let counter = AtomicU64::new(0);
/// stormguard_benches::contend(2, 1000, &counter, |c| {
///     c.fetch_add(1, Ordering::Relaxed);
/// });
/// assert_eq!(counter.load(Ordering::Relaxed), 2000);
/// ```
pub fn contend<T: Sync>(
    threads: usize,
    iters: u64,
    shared: &T,
    op: impl Fn(&T) + Sync,
) -> Duration {
    let barrier = Barrier::new(threads);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (barrier, op) = (&barrier, &op);
                scope.spawn(move || {
                    barrier.wait();
                    let start = StdInstant::now();
                    for _ in 0..iters {
                        op(shared);
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .max()
            .unwrap_or_default()
    })
}

/// The size in bytes of each type a program keeps per client (budgets, the
/// breaker, the policy) or per logical call (the retry state machine).
pub fn sizes() -> Vec<(&'static str, usize)> {
    use core::mem::size_of;
    use stormguard::*;
    vec![
        ("`Retry<&RetryPolicy>`", size_of::<Retry<&RetryPolicy>>()),
        (
            "`Call<&RetryPolicy>` (no budget, no breaker)",
            size_of::<Call<&RetryPolicy>>(),
        ),
        (
            "`Call<&RetryPolicy, &Throttle, &CircuitBreaker>`",
            size_of::<Call<&RetryPolicy, &Throttle, &CircuitBreaker>>(),
        ),
        ("`Decision`", size_of::<Decision>()),
        ("`Failure`", size_of::<Failure>()),
        ("`RetryPolicy`", size_of::<RetryPolicy>()),
        ("`Backoff`", size_of::<Backoff>()),
        ("`Throttle`", size_of::<Throttle>()),
        ("`RetryBudget`", size_of::<RetryBudget>()),
        ("`RateBudget`", size_of::<RateBudget>()),
        ("`CostBucket`", size_of::<CostBucket>()),
        ("`CircuitBreaker`", size_of::<CircuitBreaker>()),
        ("`Permit<'_>`", size_of::<Permit<'static>>()),
        ("`PermitToken`", size_of::<PermitToken>()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_throttler_matches_the_a6_vector() {
        // The same vector as stormguard's Throttle test: max 10, ratio 0.1.
        let t = GrpcThrottler::new(10.0, 0.1);
        for _ in 0..4 {
            assert!(!t.throttle());
        }
        assert!(t.throttle());
        for _ in 0..10 {
            t.successful_rpc();
        }
        // 5 + 10 × 0.1 = 6, give or take the float error the design carries.
        let tokens = *t.tokens.lock().unwrap();
        assert!((tokens - 6.0).abs() < 1e-9, "{tokens}");
    }

    #[test]
    fn a_retry_is_a_few_machine_words() {
        let word = size_of::<usize>();
        for (name, size) in sizes() {
            if name.starts_with("`Retry<") {
                assert!(size <= 8 * word, "{name} is {size} bytes");
            }
        }
    }
}
