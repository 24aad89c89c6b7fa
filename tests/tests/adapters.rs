//! The runtime adapters: one suite, written once, run on each — smol and
//! async-std on their own runtimes with real (short) sleeps, embassy on
//! `embassy-time`'s mock driver, on virtual time.
//!
//! Upper bounds on elapsed time are generous (a loaded CI machine must not
//! make them fail); lower bounds prove the sleeps really happened. On
//! virtual time both hold exactly, and the embassy module adds exact checks
//! of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future;

const MS: Duration = Duration::from_millis(1);
/// Far above any wait in these tests: only a hang would reach it.
const GENEROUS: Duration = Duration::from_secs(5);

/// Counts the sleeps a runtime's sleeper creates and how many are alive.
#[derive(Clone, Default)]
struct Counts {
    created: Arc<AtomicUsize>,
    live: Arc<AtomicUsize>,
}

struct Counting<S> {
    inner: S,
    counts: Counts,
}

struct Counted<F> {
    inner: F,
    live: Arc<AtomicUsize>,
}

impl<S> stormguard::Sleeper for Counting<S>
where
    S: stormguard::Sleeper,
    S::Sleep: Unpin,
{
    type Sleep = Counted<S::Sleep>;
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        self.counts.created.fetch_add(1, Ordering::SeqCst);
        self.counts.live.fetch_add(1, Ordering::SeqCst);
        Counted {
            inner: self.inner.sleep(duration),
            live: self.counts.live.clone(),
        }
    }
}

impl<F: Future + Unpin> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

impl<F> Drop for Counted<F> {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sets its flag when dropped: shows an attempt in flight was cancelled.
struct DropFlag(Arc<AtomicUsize>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The real clock, as a `Duration` since the first reading in the process.
fn real_now() -> Duration {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed()
}

/// The suite, for one runtime: `$adapter` (the crate), `$sleeper` (its
/// sleeper, for the counting wrapper), `$block_on` (runs a future), `$sleep`
/// (an async sleep on the runtime), `$now` (its clock, as a `Duration` since
/// any origin) and `$setup` (called at the start of each test; what it
/// returns is held until the test ends).
macro_rules! adapter_suite {
    ($adapter:ident, $sleeper:expr, $block_on:path, $sleep:path, $now:path, $setup:path) => {
        use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
        use std::sync::Arc;
        use std::time::Duration;

        use super::{future, Counting, Counts, DropFlag, GENEROUS, MS};
        use $adapter::{
            Backoff, CircuitBreaker, Failure, GiveUp, HedgingPolicy, Idempotency, Jitter,
            LastAttempt, RetryExt, RetryPolicy, Throttle,
        };

        /// Runs a retried call (or any future) to completion on the runtime.
        fn run<F: std::future::IntoFuture>(call: F) -> F::Output {
            $block_on(call.into_future())
        }

        /// Runs `call` for `limit` at most, then drops it; whether it finished.
        fn run_for<F: std::future::IntoFuture>(limit: Duration, call: F) -> bool {
            run(future::or(
                async {
                    call.await;
                    true
                },
                async {
                    $sleep(limit).await;
                    false
                },
            ))
        }

        fn policy(attempts: u32, backoff_ms: u32) -> RetryPolicy {
            RetryPolicy::builder()
                .max_attempts(attempts)
                .backoff(Backoff::constant(MS * backoff_ms).jitter(Jitter::None))
                .build()
                .unwrap()
        }

        fn status(s: &u16) -> Failure {
            $adapter::classify::http::failure_for_status(*s).unwrap_or(Failure::permanent())
        }

        /// An operation failing with `fails` 503s, then answering `Ok(n)`.
        fn flaky(
            fails: u32,
            calls: &AtomicU32,
        ) -> impl FnMut() -> future::Ready<Result<u32, u16>> + '_ {
            move || {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                future::ready(if n <= fails { Err(503) } else { Ok(n) })
            }
        }

        #[test]
        fn success_first_time() {
            let _setup = $setup();
            let calls = AtomicU32::new(0);
            let policy = policy(3, 1000);
            let start = $now();
            let out = run(flaky(0, &calls).retry(&policy).when(status));
            assert_eq!(out, Ok(1));
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            assert!(($now() - start) < Duration::from_millis(900), "no sleep");
        }

        #[test]
        fn success_after_failures_sleeps_between_attempts() {
            let _setup = $setup();
            let calls = AtomicU32::new(0);
            let policy = policy(5, 15);
            let start = $now();
            let out = run(flaky(2, &calls).retry(&policy).when(status));
            assert_eq!(out, Ok(3));
            let elapsed = $now() - start;
            assert!(elapsed >= MS * 30, "two real sleeps of 15 ms: {elapsed:?}");
            assert!(elapsed < GENEROUS);
        }

        #[test]
        fn give_up_reasons() {
            let _setup = $setup();
            let policy = policy(3, 1);
            let calls = AtomicU32::new(0);
            let err = run(flaky(9, &calls).retry(&policy).when(status)).unwrap_err();
            assert_eq!(
                (err.reason(), err.attempts()),
                (GiveUp::AttemptsExhausted, 3)
            );
            assert_eq!(err.last(), &LastAttempt::Failed(503));

            let err = run((|| future::ready(Err::<(), u16>(404)))
                .retry(&policy)
                .when(status))
            .unwrap_err();
            assert_eq!((err.reason(), err.attempts()), (GiveUp::NotRetryable, 1));

            let calls = AtomicU32::new(0);
            let err = run(flaky(9, &calls)
                .retry(&policy)
                .when(status)
                .idempotency(Idempotency::NonIdempotent))
            .unwrap_err();
            assert_eq!((err.reason(), err.attempts()), (GiveUp::UnsafeToReplay, 1));

            let throttle = Throttle::new(4, 0.1).unwrap();
            let calls = AtomicU32::new(0);
            let big = self::policy(10, 1);
            let err =
                run(flaky(99, &calls).retry(&big).when(status).budget(&throttle)).unwrap_err();
            assert_eq!((err.reason(), err.attempts()), (GiveUp::BudgetExhausted, 2));

            let breaker = CircuitBreaker::builder()
                .failure_threshold(1)
                .recovery_timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            let calls = AtomicU32::new(0);
            let err =
                run(flaky(99, &calls).retry(&big).when(status).breaker(&breaker)).unwrap_err();
            assert_eq!((err.reason(), err.attempts()), (GiveUp::CircuitOpen, 1));
            let err =
                run(flaky(99, &calls).retry(&big).when(status).breaker(&breaker)).unwrap_err();
            assert_eq!((err.reason(), err.attempts()), (GiveUp::CircuitOpen, 0));
            assert!(matches!(err.last(), LastAttempt::Refused(_)));
            assert_eq!(
                calls.load(Ordering::SeqCst),
                1,
                "an open breaker sends nothing"
            );
        }

        #[test]
        fn the_deadline_cuts_a_hanging_attempt() {
            let _setup = $setup();
            let policy = RetryPolicy::builder()
                .max_attempts(5)
                .deadline(MS * 80)
                .build()
                .unwrap();
            let start = $now();
            let err = run((|| future::pending::<Result<(), u16>>()).retry(&policy)).unwrap_err();
            let elapsed = $now() - start;
            assert_eq!(err.reason(), GiveUp::DeadlineExceeded);
            assert_eq!(err.last(), &LastAttempt::TimedOut);
            assert!(elapsed >= MS * 80 && elapsed < GENEROUS, "{elapsed:?}");
        }

        #[test]
        fn a_retry_that_cannot_finish_in_time_gives_up_at_once() {
            let _setup = $setup();
            let policy = RetryPolicy::builder()
                .max_attempts(5)
                .backoff(Backoff::constant(Duration::from_secs(2)).jitter(Jitter::None))
                .deadline(Duration::from_secs(1))
                .build()
                .unwrap();
            let calls = AtomicU32::new(0);
            let start = $now();
            let err = run(flaky(9, &calls).retry(&policy).when(status)).unwrap_err();
            assert_eq!(
                (err.reason(), err.attempts()),
                (GiveUp::DeadlineExceeded, 1)
            );
            assert!(
                ($now() - start) < Duration::from_millis(900),
                "it did not sleep into the deadline"
            );
        }

        #[test]
        fn a_timed_out_attempt_is_cancelled_and_retried() {
            let _setup = $setup();
            let policy = policy(3, 1);
            let calls = AtomicU32::new(0);
            let cancelled = Arc::new(AtomicUsize::new(0));
            let start = $now();
            let out = run((|| {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                let flag = DropFlag(cancelled.clone());
                async move {
                    if n == 1 {
                        future::pending::<()>().await;
                    }
                    drop(flag);
                    Ok::<u32, u16>(n)
                }
            })
            .retry(&policy)
            .attempt_timeout(MS * 40));
            assert_eq!(out, Ok(2));
            assert!(($now() - start) >= MS * 40);
            // Both attempts' futures are gone: the hung one was dropped.
            assert_eq!(cancelled.load(Ordering::SeqCst), 2);

            // A timed-out attempt may have run: a non-idempotent call stops.
            let err = run((|| future::pending::<Result<(), u16>>())
                .retry(&policy)
                .attempt_timeout(MS * 20)
                .idempotency(Idempotency::NonIdempotent))
            .unwrap_err();
            assert_eq!(
                (err.reason(), err.last()),
                (GiveUp::UnsafeToReplay, &LastAttempt::TimedOut)
            );
        }

        #[test]
        fn a_hedged_copy_overtakes_a_hung_one() {
            let policy = HedgingPolicy::builder()
                .max_attempts(3)
                .hedging_delay(MS * 20)
                .build()
                .unwrap();
            let _setup = $setup();
            let calls = AtomicU32::new(0);
            let cancelled = Arc::new(AtomicUsize::new(0));
            let start = $now();
            let out = run((|| {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                let flag = DropFlag(cancelled.clone());
                async move {
                    if n == 1 {
                        future::pending::<()>().await;
                    }
                    drop(flag);
                    Ok::<u32, u16>(n)
                }
            })
            .hedge(&policy));
            assert_eq!(out, Ok(2));
            let elapsed = $now() - start;
            assert!(elapsed >= MS * 20 && elapsed < GENEROUS, "{elapsed:?}");
            assert_eq!(calls.load(Ordering::SeqCst), 2);
            // Both copies are gone: the hung one was cancelled.
            assert_eq!(cancelled.load(Ordering::SeqCst), 2);
        }

        #[test]
        fn dropping_the_retry_leaves_no_timer_and_no_task_behind() {
            let _setup = $setup();
            // Dropped while sleeping between attempts.
            let counts = Counts::default();
            let calls = AtomicU32::new(0);
            let policy = policy(5, 200);
            let finished = run_for(
                MS * 30,
                flaky(9, &calls).retry(&policy).sleeper(Counting {
                    inner: $sleeper,
                    counts: counts.clone(),
                }),
            );
            assert!(!finished, "dropped while it slept");
            assert_eq!(counts.created.load(Ordering::SeqCst), 1);
            assert_eq!(
                counts.live.load(Ordering::SeqCst),
                0,
                "the pending sleep was dropped"
            );
            run($sleep(MS * 300));
            assert_eq!(
                calls.load(Ordering::SeqCst),
                1,
                "nothing kept retrying after the drop"
            );

            // Dropped during an attempt: the attempt and its timer go too.
            let counts = Counts::default();
            let cancelled = Arc::new(AtomicUsize::new(0));
            let hanging = || {
                let flag = DropFlag(cancelled.clone());
                async move {
                    future::pending::<()>().await;
                    drop(flag);
                    Ok::<(), u16>(())
                }
            };
            let finished = run_for(
                MS * 30,
                hanging
                    .retry(&policy)
                    .attempt_timeout(Duration::from_secs(60))
                    .sleeper(Counting {
                        inner: $sleeper,
                        counts: counts.clone(),
                    }),
            );
            assert!(!finished, "dropped during its attempt");
            assert_eq!(
                cancelled.load(Ordering::SeqCst),
                1,
                "the attempt was dropped"
            );
            assert_eq!(
                counts.created.load(Ordering::SeqCst),
                1,
                "the attempt's timer"
            );
            assert_eq!(counts.live.load(Ordering::SeqCst), 0);
        }
    };
}

/// Nothing to set up on a real runtime.
struct NoSetup;

fn no_setup() -> NoSetup {
    NoSetup
}

mod smol_runtime {
    async fn sleep(d: std::time::Duration) {
        smol::Timer::after(d).await;
    }
    use super::{no_setup, real_now};
    adapter_suite!(
        stormguard_smol,
        stormguard_smol::SmolSleeper,
        smol::block_on,
        sleep,
        real_now,
        no_setup
    );
}

mod async_std_runtime {
    use super::{no_setup, real_now};
    adapter_suite!(
        stormguard_async_std,
        stormguard_async_std::AsyncStdSleeper,
        async_std::task::block_on,
        async_std::task::sleep,
        real_now,
        no_setup
    );
}

/// embassy on `embassy-time`'s mock driver (its tick is 1 µs; a generic
/// timer queue): time moves only when the executor moves it, one tick at a time
/// while the future under test waits and no timer has woken it. The mock
/// driver is global, so each test holds a lock and resets it.
mod embassy_runtime {
    mod rt {
        use std::future::{Future, IntoFuture};
        use std::pin::pin;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex, MutexGuard};
        use std::task::{Context, Poll, Wake, Waker};
        use std::time::Duration;

        use embassy_time::MockDriver;
        use stormguard_embassy::Sleeper;

        static MOCK_DRIVER: Mutex<()> = Mutex::new(());

        /// Takes the mock driver for one test, at time zero.
        pub(super) fn setup() -> MutexGuard<'static, ()> {
            let guard = MOCK_DRIVER
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            MockDriver::get().reset();
            guard
        }

        /// The mock driver's time.
        pub(super) fn now() -> Duration {
            Duration::from_micros(embassy_time::Instant::now().as_micros())
        }

        pub(super) async fn sleep(d: Duration) {
            stormguard_embassy::EmbassySleeper.sleep(d).await;
        }

        struct Flag(AtomicBool);

        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }

        /// Far beyond any wait in the suite: only a hang reaches it.
        const VIRTUAL_LIMIT: Duration = Duration::from_secs(60);

        /// Runs `future`, moving the mock time on one tick whenever it waits
        /// and no timer woke it.
        pub(super) fn block_on<F: IntoFuture>(future: F) -> F::Output {
            let mut future = pin!(future.into_future());
            let flag = Arc::new(Flag(AtomicBool::new(false)));
            let waker = Waker::from(flag.clone());
            let mut cx = Context::from_waker(&waker);
            let tick = embassy_time::Duration::from_ticks(1);
            let start = now();
            loop {
                flag.0.store(false, Ordering::SeqCst);
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
                while !flag.0.load(Ordering::SeqCst) {
                    assert!(
                        now() - start < VIRTUAL_LIMIT,
                        "the future waits for nothing"
                    );
                    MockDriver::get().advance(tick);
                }
            }
        }
    }

    use rt::{block_on, now, setup, sleep};

    adapter_suite!(
        stormguard_embassy,
        stormguard_embassy::EmbassySleeper,
        block_on,
        sleep,
        now,
        setup
    );

    mod exact {
        //! On virtual time the waits are exact: the driver sleeps what the
        //! policy says, rounded up to the tick and no more.
        use std::cell::Cell;
        use std::future::ready;
        use std::time::Duration;

        use stormguard_embassy::{
            Backoff, Clock, EmbassyClock, GiveUp, Jitter, RetryExt, RetryPolicy, Sleeper,
        };

        use super::rt::{block_on, now, setup};

        fn failing_twice(
            calls: &Cell<u32>,
        ) -> impl FnMut() -> std::future::Ready<Result<u32, u16>> + '_ {
            move || {
                calls.set(calls.get() + 1);
                ready(if calls.get() <= 2 {
                    Err(503)
                } else {
                    Ok(calls.get())
                })
            }
        }

        #[test]
        fn a_backoff_shorter_than_a_tick_sleeps_one_tick_not_zero() {
            let _setup = setup();
            let policy = RetryPolicy::builder()
                .max_attempts(3)
                .backoff(Backoff::constant(Duration::from_nanos(900)).jitter(Jitter::None))
                .build()
                .unwrap();
            let calls = Cell::new(0);
            let start = now();
            let out = block_on(failing_twice(&calls).retry(&policy).seed(1));
            assert_eq!(out, Ok(3));
            // Two sleeps of one 1 µs tick each (truncating would make them 0).
            assert_eq!(now() - start, Duration::from_micros(2));
        }

        #[test]
        fn an_exponential_schedule_sleeps_exactly_its_delays() {
            let _setup = setup();
            let policy = RetryPolicy::builder()
                .max_attempts(4)
                .backoff(Backoff::exponential(Duration::from_millis(10), 2.0).jitter(Jitter::None))
                .build()
                .unwrap();
            let calls = Cell::new(0);
            let start = now();
            let out = block_on(failing_twice(&calls).retry(&policy).seed(2));
            assert_eq!(out, Ok(3));
            assert_eq!(now() - start, Duration::from_millis(10 + 20));
        }

        #[test]
        fn the_same_seed_sleeps_the_same_jittered_times() {
            let _setup = setup();
            let policy = RetryPolicy::builder()
                .max_attempts(3)
                .backoff(Backoff::exponential(Duration::from_millis(100), 2.0).jitter(Jitter::Full))
                .build()
                .unwrap();
            let mut elapsed = [Duration::ZERO; 2];
            for slot in &mut elapsed {
                let calls = Cell::new(0);
                let start = now();
                let out = block_on(failing_twice(&calls).retry(&policy).seed(42));
                assert_eq!(out, Ok(3));
                *slot = now() - start;
            }
            assert_eq!(elapsed[0], elapsed[1]);
            // The jittered delays, each rounded up to whole microseconds.
            let mut delays = policy
                .backoff()
                .delays(stormguard_embassy::Random::with_seed(42));
            let expected: Duration = (0..2)
                .map(|_| {
                    let d = delays.next().unwrap();
                    Duration::from_micros(d.as_nanos().div_ceil(1_000) as u64)
                })
                .sum();
            assert_eq!(elapsed[0], expected);
        }

        #[test]
        fn a_deadline_gives_up_without_sleeping_into_it() {
            let _setup = setup();
            let policy = RetryPolicy::builder()
                .max_attempts(5)
                .backoff(Backoff::constant(Duration::from_millis(600)).jitter(Jitter::None))
                .deadline(Duration::from_secs(1))
                .build()
                .unwrap();
            let calls = Cell::new(0);
            let start = now();
            let err = block_on(failing_twice(&calls).retry(&policy).seed(3)).unwrap_err();
            assert_eq!(
                (err.reason(), err.attempts()),
                (GiveUp::DeadlineExceeded, 2)
            );
            assert_eq!(now() - start, Duration::from_millis(600));
        }

        #[test]
        fn the_clock_and_extreme_sleeps() {
            let _setup = setup();
            assert_eq!(EmbassyClock.now().as_nanos(), 0);
            embassy_time::MockDriver::get().advance(embassy_time::Duration::from_millis(1_500));
            assert_eq!(EmbassyClock.now().as_millis(), 1_500);
            // The longest sleep saturates instead of panicking, and never ends.
            let forever = stormguard_embassy::EmbassySleeper.sleep(Duration::MAX);
            let done = block_on(futures_lite::future::or(
                async {
                    forever.await;
                    true
                },
                async {
                    super::rt::sleep(Duration::from_millis(50)).await;
                    false
                },
            ));
            assert!(!done);
            // A zero sleep is over at once.
            let start = now();
            block_on(stormguard_embassy::EmbassySleeper.sleep(Duration::ZERO));
            assert_eq!(now(), start);
        }
    }
}
