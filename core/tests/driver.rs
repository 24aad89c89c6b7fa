//! The async driver on a virtual clock: a tiny executor that, whenever the
//! future is pending, jumps time to the earliest timer. Every figure is exact.
#![cfg(feature = "async")]

use core::cell::{Cell, RefCell};
use core::future::{Future, IntoFuture};
use core::pin::{pin, Pin};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::rc::Rc;

use proptest::prelude::*;
use stormguard::driver::{Clock, LastAttempt, RetryError, RetryExt, Retrying, Sleeper};
use stormguard::{
    Backoff, BreakerState, CircuitBreaker, Failure, GiveUp, Idempotency, Instant, Jitter, Replay,
    RetryAfter, RetryPolicy, Throttle,
};

const MS: Duration = Duration::from_millis(1);

/// Virtual time shared by the clock, the sleeps and the executor.
#[derive(Clone, Default)]
struct World(Rc<WorldInner>);

#[derive(Default)]
struct WorldInner {
    now: Cell<u64>,
    /// The timers alive now: id, deadline (ms), and whether the last poll
    /// left it armed (returned `Pending`, so it will wake the task at its
    /// deadline). A timer that returned `Ready` wakes no one any more.
    timers: RefCell<Vec<(u32, u64, bool)>>,
    /// Timers created so far, and dropped so far.
    created: Cell<u32>,
    dropped: Cell<u32>,
}

impl World {
    fn now_ms(&self) -> u64 {
        self.0.now.get()
    }

    fn timer(&self, ms: u64) -> Timer {
        let at = self.now_ms().saturating_add(ms);
        let id = self.0.created.get();
        self.0.created.set(id + 1);
        self.0.timers.borrow_mut().push((id, at, false));
        Timer {
            world: self.clone(),
            id,
            at,
        }
    }

    fn live_timers(&self) -> u32 {
        self.0.created.get() - self.0.dropped.get()
    }

    /// Polls `future` to completion, advancing time to the next timer
    /// whenever it is pending. Panics if it is pending with no armed timer:
    /// on a real executor nothing would wake it again.
    fn run<F: IntoFuture>(&self, future: F) -> F::Output {
        self.poll_to_end(pin!(future.into_future()))
    }

    /// [`World::run`] on a future the caller keeps (to look at what it
    /// still holds once it has answered).
    fn poll_to_end<F: Future + ?Sized>(&self, mut future: Pin<&mut F>) -> F::Output {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            let timers = self.0.timers.borrow();
            let next = timers.iter().filter(|t| t.2).map(|t| t.1).min();
            let next = next.expect("pending with no armed timer: the future would hang");
            drop(timers);
            self.0.now.set(self.0.now.get().max(next));
        }
    }
}

/// Runs a retried call on the virtual world.
trait OnWorld: Sized {
    type On;
    fn on(self, world: &World) -> Self::On;
}

impl<'a, Op, Fut, T, E> OnWorld for stormguard::driver::Unconfigured<'a, Op>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type On = Retrying<'a, Op, World, World, stormguard::driver::FreshSeed>;
    fn on(self, world: &World) -> Self::On {
        self.sleeper(world.clone()).clock(world.clone())
    }
}

impl Clock for World {
    fn now(&self) -> Instant {
        Instant::from_millis(self.now_ms())
    }
}

impl Sleeper for World {
    type Sleep = Timer;
    fn sleep(&self, duration: Duration) -> Timer {
        self.timer(duration.as_millis() as u64)
    }
}

struct Timer {
    world: World,
    id: u32,
    at: u64,
}

impl Timer {
    fn arm(&self, armed: bool) {
        let mut timers = self.world.0.timers.borrow_mut();
        if let Some(t) = timers.iter_mut().find(|t| t.0 == self.id) {
            t.2 = armed;
        }
    }
}

impl Future for Timer {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let ready = self.world.now_ms() >= self.at;
        self.arm(!ready);
        if ready {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        let mut timers = self.world.0.timers.borrow_mut();
        if let Some(i) = timers.iter().position(|t| t.0 == self.id) {
            timers.swap_remove(i);
        }
        self.world.0.dropped.set(self.world.0.dropped.get() + 1);
    }
}

/// A scripted service: each attempt takes `latency` ms, then answers with
/// the next entry of `script` (the last one repeats). Records when each
/// attempt started.
struct Service {
    world: World,
    latency: u64,
    script: Vec<Result<u32, u16>>,
    starts: RefCell<Vec<u64>>,
    finished: Cell<u32>,
}

impl Service {
    fn new(world: &World, latency: u64, script: &[Result<u32, u16>]) -> Service {
        Service {
            world: world.clone(),
            latency,
            script: script.to_vec(),
            starts: RefCell::new(Vec::new()),
            finished: Cell::new(0),
        }
    }

    fn call(&self) -> impl Future<Output = Result<u32, u16>> + '_ {
        let n = self.starts.borrow().len();
        self.starts.borrow_mut().push(self.world.now_ms());
        let answer = self.script[n.min(self.script.len() - 1)];
        let sleep = self.world.timer(self.latency);
        async move {
            sleep.await;
            self.finished.set(self.finished.get() + 1);
            answer
        }
    }

    fn starts(&self) -> Vec<u64> {
        self.starts.borrow().clone()
    }
}

fn http(status: &u16) -> Failure {
    stormguard::classify::http::failure_for_status(*status).unwrap_or(Failure::permanent())
}

fn policy(attempts: u32, base_ms: u64) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::exponential(MS * base_ms as u32, 2.0).jitter(Jitter::None))
        .build()
        .unwrap()
}

#[test]
fn success_first_time_sleeps_nowhere() {
    let world = World::default();
    let svc = Service::new(&world, 5, &[Ok(7)]);
    let policy = policy(3, 100);
    let out = world.run((|| svc.call()).retry(&policy).on(&world));
    assert_eq!(out, Ok(7));
    assert_eq!(svc.starts(), [0]);
    assert_eq!(world.now_ms(), 5);
    assert_eq!(world.live_timers(), 0);
}

#[test]
fn success_after_failures_waits_the_backoff() {
    let world = World::default();
    let svc = Service::new(&world, 10, &[Err(503), Err(502), Ok(1)]);
    let policy = policy(5, 100);
    let mut waits = Vec::new();
    let out = world.run((|| svc.call()).retry(&policy).on(&world).when(http).notify(
        |last: &LastAttempt<u16>, after: Duration| {
            waits.push((*last.error().unwrap(), after.as_millis()))
        },
    ));
    assert_eq!(out, Ok(1));
    // 0..10 fails, sleeps 100; 110..120 fails, sleeps 200; 320..330 succeeds.
    assert_eq!(svc.starts(), [0, 110, 320]);
    assert_eq!(waits, [(503, 100), (502, 200)]);
    assert_eq!(world.now_ms(), 330);
}

#[test]
fn attempts_exhausted_returns_the_last_error() {
    let world = World::default();
    let svc = Service::new(&world, 1, &[Err(500), Err(503)]);
    let policy = policy(3, 10);
    let err = world
        .run((|| svc.call()).retry(&policy).on(&world).when(http))
        .unwrap_err();
    assert_eq!(err.reason(), GiveUp::AttemptsExhausted);
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.last(), &LastAttempt::Failed(503));
    assert_eq!(
        err.to_string(),
        "gave up after 3 attempts (attempts exhausted): 503"
    );
    assert!(err.to_failure().is_already_retried());
}

#[test]
fn a_permanent_error_is_not_retried() {
    let world = World::default();
    let svc = Service::new(&world, 1, &[Err(404)]);
    let policy = policy(3, 10);
    let err = world
        .run((|| svc.call()).retry(&policy).on(&world).when(http))
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::NotRetryable, 1));
}

#[test]
fn a_non_idempotent_call_is_not_replayed_after_an_unknown_failure() {
    let world = World::default();
    let svc = Service::new(&world, 1, &[Err(503), Ok(1)]);
    let policy = policy(3, 10);
    let err = world
        .run(
            (|| svc.call())
                .retry(&policy)
                .on(&world)
                .idempotency(Idempotency::NonIdempotent),
        )
        .unwrap_err();
    assert_eq!(err.reason(), GiveUp::UnsafeToReplay);
    // …but a refused connection never left the client: replayed.
    let svc = Service::new(&world, 1, &[Err(0), Ok(1)]);
    let out = world.run(
        (|| svc.call())
            .retry(&policy)
            .on(&world)
            .idempotency(Idempotency::NonIdempotent)
            .when(|_: &u16| Failure::transient().with_replay(Replay::NotSent)),
    );
    assert_eq!(out, Ok(1));
}

#[test]
fn server_hints_replace_the_backoff_and_stop_means_stop() {
    let world = World::default();
    let svc = Service::new(&world, 0, &[Err(429), Err(503), Ok(1)]);
    let policy = policy(5, 100);
    let out = world.run(
        (|| svc.call())
            .retry(&policy)
            .on(&world)
            .when(|s: &u16| match s {
                429 => Failure::overloaded().with_retry_after(RetryAfter::Delay(MS * 1500)),
                _ => Failure::transient(),
            }),
    );
    assert_eq!(out, Ok(1));
    // The hint (1.5 s) replaced the backoff and restarted it at 100 ms.
    assert_eq!(svc.starts(), [0, 1500, 1600]);

    let svc = Service::new(&world, 0, &[Err(503)]);
    let err = world
        .run(
            (|| svc.call())
                .retry(&policy)
                .on(&world)
                .when(|_: &u16| Failure::overloaded().with_retry_after(RetryAfter::Stop)),
        )
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::ServerSaidStop, 1));
}

#[test]
fn the_deadline_covers_attempts_and_sleeps() {
    let world = World::default();
    // Every attempt hangs for 10 s; the deadline is 1 s.
    let svc = Service::new(&world, 10_000, &[Ok(1)]);
    let policy = RetryPolicy::builder()
        .max_attempts(10)
        .backoff(Backoff::constant(MS * 100).jitter(Jitter::None))
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    let err = world
        .run(
            (|| svc.call())
                .retry(&policy)
                .on(&world)
                .attempt_timeout(MS * 300),
        )
        .unwrap_err();
    // 0..300 timed out, 400..700 timed out, 800..1000 cut by the deadline:
    // no attempt ever finished, and the call ends at the deadline.
    assert_eq!(svc.starts(), [0, 400, 800]);
    assert_eq!(svc.finished.get(), 0);
    assert_eq!(err.reason(), GiveUp::DeadlineExceeded);
    assert_eq!(err.last(), &LastAttempt::TimedOut);
    assert_eq!(world.now_ms(), 1000);
    assert_eq!(world.live_timers(), 0);
}

#[test]
fn a_retry_that_cannot_finish_in_time_gives_up_at_once() {
    let world = World::default();
    let svc = Service::new(&world, 100, &[Err(503)]);
    let policy = RetryPolicy::builder()
        .max_attempts(10)
        .backoff(Backoff::constant(MS * 950).jitter(Jitter::None))
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    let err = world
        .run((|| svc.call()).retry(&policy).on(&world).when(http))
        .unwrap_err();
    // Failing at 100 ms, a retry at 1050 ms would start after the deadline:
    // give up at 100 ms rather than sleep into it.
    assert_eq!(
        (err.reason(), err.attempts()),
        (GiveUp::DeadlineExceeded, 1)
    );
    assert_eq!(err.last(), &LastAttempt::Failed(503));
    assert_eq!(world.now_ms(), 100);
}

#[test]
fn a_sleep_that_overshoots_the_deadline_ends_the_call_before_the_next_attempt() {
    static METRICS: stormguard::Metrics = stormguard::Metrics::new();
    let world = World::default();
    let svc = Service::new(&world, 10, &[Err(503)]);
    let policy = RetryPolicy::builder()
        .max_attempts(10)
        .backoff(Backoff::constant(MS * 100).jitter(Jitter::None))
        .deadline(MS * 500)
        .metrics(&METRICS)
        .build()
        .unwrap();
    // The runtime wakes the call a second late: the next attempt would
    // begin after the deadline, so it never begins.
    let late = |d: Duration| world.timer(d.as_millis() as u64 + 1000);
    let err = world
        .run(
            (|| svc.call())
                .retry(&policy)
                .sleeper(late)
                .clock(world.clone())
                .when(http),
        )
        .unwrap_err();
    assert_eq!(
        (err.reason(), err.attempts()),
        (GiveUp::DeadlineExceeded, 1)
    );
    assert_eq!(err.last(), &LastAttempt::Failed(503));
    assert_eq!(svc.starts().len(), 1);
    assert_eq!(
        METRICS.snapshot().give_ups().get(GiveUp::DeadlineExceeded),
        1,
        "counted once, by the lifecycle"
    );
}

#[test]
fn permanent_errors_and_unsafe_replays_never_open_the_breaker() {
    let world = World::default();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .build()
        .unwrap();
    let policy = policy(3, 10);
    for _ in 0..5 {
        let not_found = Service::new(&world, 1, &[Err(404)]);
        let err = world
            .run(
                (|| not_found.call())
                    .retry(&policy)
                    .on(&world)
                    .when(http)
                    .breaker(&breaker),
            )
            .unwrap_err();
        assert_eq!(err.reason(), GiveUp::NotRetryable);
        let charge = Service::new(&world, 1, &[Err(503)]);
        let err = world
            .run(
                (|| charge.call())
                    .retry(&policy)
                    .on(&world)
                    .when(http)
                    .breaker(&breaker)
                    .idempotency(Idempotency::NonIdempotent),
            )
            .unwrap_err();
        assert_eq!(err.reason(), GiveUp::UnsafeToReplay);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    // A retryable 503 on an idempotent call is the breaker's business.
    let down = Service::new(&world, 1, &[Err(503)]);
    let _ = world.run(
        (|| down.call())
            .retry(&policy)
            .on(&world)
            .when(http)
            .breaker(&breaker),
    );
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[test]
fn a_timed_out_attempt_is_a_timeout_that_may_have_run() {
    let world = World::default();
    let svc = Service::new(&world, 1000, &[Ok(1)]);
    let policy = policy(3, 10);
    let mut seen = Vec::new();
    // A non-idempotent call: the timed-out attempt may have run, so no replay.
    let err = world
        .run(
            (|| svc.call())
                .retry(&policy)
                .on(&world)
                .attempt_timeout(MS * 50)
                .idempotency(Idempotency::NonIdempotent)
                .notify(|last: &LastAttempt<u16>, _: Duration| seen.push(*last)),
        )
        .unwrap_err();
    assert_eq!(err.reason(), GiveUp::UnsafeToReplay);
    assert_eq!(err.last(), &LastAttempt::TimedOut);
    assert!(seen.is_empty());
    assert_eq!(world.now_ms(), 50);
    // An idempotent one is retried, each attempt cut at 50 ms.
    let svc = Service::new(&world, 1000, &[Ok(1)]);
    let err = world
        .run(
            (|| svc.call())
                .retry(&policy)
                .on(&world)
                .attempt_timeout(MS * 50),
        )
        .unwrap_err();
    assert_eq!(
        (err.reason(), err.attempts()),
        (GiveUp::AttemptsExhausted, 3)
    );
    assert_eq!(svc.starts(), [50, 110, 180]);
}

#[test]
fn the_budget_is_shared_and_refuses() {
    let world = World::default();
    let throttle = Throttle::new(4, 0.1).unwrap();
    let policy = policy(10, 1);
    // Failures drain the bucket: 4 tokens, throttled at ≤ 2.
    let svc = Service::new(&world, 0, &[Err(503)]);
    let err = world
        .run((|| svc.call()).retry(&policy).on(&world).budget(&throttle))
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::BudgetExhausted, 2));
    assert_eq!(throttle.tokens_milli(), 2000);
}

#[test]
fn the_breaker_opens_refuses_and_recovers_with_one_probe() {
    let world = World::default();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(2)
        .recovery_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let policy = policy(5, 10);
    let svc = Service::new(&world, 1, &[Err(503), Err(503), Ok(9)]);
    let run = |svc: &Service| {
        world.run(
            (|| svc.call())
                .retry(&policy)
                .on(&world)
                .breaker(&breaker)
                .when(http),
        )
    };
    // Two failures open it; the third attempt is refused, reported with the
    // last real error.
    let err = run(&svc).unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::CircuitOpen, 2));
    assert_eq!(err.last(), &LastAttempt::Failed(503));
    assert_eq!(breaker.state(), BreakerState::Open);
    // A new call is refused before sending anything.
    let err = run(&svc).unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::CircuitOpen, 0));
    assert!(matches!(err.last(), LastAttempt::Refused(_)));
    assert_eq!(svc.starts().len(), 2);
    // After the recovery timeout one probe goes through and closes it.
    world.0.now.set(world.now_ms() + 5000);
    assert_eq!(run(&svc), Ok(9));
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn dropping_the_future_cancels_the_attempt_the_sleep_and_frees_the_probe() {
    let world = World::default();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .recovery_timeout(MS * 100)
        .build()
        .unwrap();
    let policy = policy(5, 1000);
    // Open the breaker, then let it turn half-open.
    let failing = Service::new(&world, 0, &[Err(503)]);
    let _ = world.run(
        (|| failing.call())
            .retry(&policy)
            .on(&world)
            .breaker(&breaker),
    );
    world.0.now.set(world.now_ms() + 100);

    // A probe attempt in flight, then dropped.
    let slow = Service::new(&world, 10_000, &[Ok(1)]);
    {
        let mut probe = pin!((|| slow.call())
            .retry(&policy)
            .on(&world)
            .breaker(&breaker)
            .into_future());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(probe.as_mut().poll(&mut cx).is_pending());
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(
            breaker.try_acquire(world.now()).is_err(),
            "the probe slot is taken"
        );
    }
    assert_eq!(world.live_timers(), 0, "the attempt's timer went with it");
    assert_eq!(slow.finished.get(), 0);
    // The slot is free again: the next caller probes (and closes it).
    let quick = Service::new(&world, 1, &[Ok(2)]);
    assert_eq!(
        world.run(
            (|| quick.call())
                .retry(&policy)
                .on(&world)
                .breaker(&breaker)
        ),
        Ok(2)
    );
    assert_eq!(breaker.state(), BreakerState::Closed);

    // A call sleeping between attempts, dropped: its sleep is gone and the
    // operation is never called again.
    let flaky = Service::new(&world, 0, &[Err(503), Ok(3)]);
    {
        let mut call = pin!((|| flaky.call()).retry(&policy).on(&world).into_future());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(call.as_mut().poll(&mut cx).is_pending());
        assert!(format!("{call:?}").contains("sleeping"));
        assert_eq!(world.live_timers(), 1);
    }
    assert_eq!(world.live_timers(), 0);
    world.0.now.set(world.now_ms() + 60_000);
    assert_eq!(flaky.starts().len(), 1);
}

#[test]
fn polling_after_completion_does_not_panic() {
    let world = World::default();
    let svc = Service::new(&world, 0, &[Ok(1)]);
    let policy = policy(3, 10);
    let mut fut = pin!((|| svc.call()).retry(&policy).on(&world).into_future());
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(1)));
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
    assert_eq!(svc.starts().len(), 1);
}

/// A budget that records what it is told and when, and says whether it
/// uses the time.
struct TimedRecorder {
    log: RefCell<Vec<(&'static str, Instant)>>,
    timed: bool,
}

impl stormguard::Budget for TimedRecorder {
    fn on_request(&self, now: Instant) {
        self.log.borrow_mut().push(("request", now));
    }
    fn on_failure(&self, _: &Failure, now: Instant) {
        self.log.borrow_mut().push(("failure", now));
    }
    fn try_retry(&self, _: &Failure, now: Instant) -> Option<stormguard::Withdrawal> {
        self.log.borrow_mut().push(("try_retry", now));
        Some(stormguard::Withdrawal::new(1))
    }
    fn on_success(&self, _: Option<stormguard::Withdrawal>, now: Instant) {
        self.log.borrow_mut().push(("success", now));
    }
    fn needs_time(&self) -> bool {
        self.timed
    }
}

/// A call with neither breaker nor throttle runs its first attempt before
/// its lifecycle is built; the budget and the metrics hear the same as
/// from a built call, at the time the attempt began — read from the clock
/// only for a budget that uses it.
#[test]
fn a_first_attempt_tells_the_budget_when_it_began() {
    static METRICS: stormguard::Metrics = stormguard::Metrics::new();
    let world = World::default();
    world.0.now.set(250);
    let svc = Service::new(&world, 40, &[Ok(1)]);
    let policy = RetryPolicy::builder().metrics(&METRICS).build().unwrap();
    for timed in [true, false] {
        let budget = TimedRecorder {
            log: RefCell::new(Vec::new()),
            timed,
        };
        let out = world.run((|| svc.call()).retry(&policy).on(&world).budget(&budget));
        assert_eq!(out, Ok(1));
        let at = if timed {
            Instant::from_millis(250)
        } else {
            Instant::ZERO
        };
        // A success is reported as of its attempt's start.
        assert_eq!(*budget.log.borrow(), [("request", at), ("success", at)]);
        world.0.now.set(250);
    }
    let counts = METRICS.snapshot();
    assert_eq!((counts.attempts(), counts.successes()), (2, 2));
}

/// Three attempts, a constant backoff of `backoff_ms` without jitter, and
/// a deadline of one second.
fn three_attempts_in_a_second(backoff_ms: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .backoff(Backoff::constant(MS * backoff_ms).jitter(Jitter::None))
        .deadline(MS * 1_000)
        .build()
        .unwrap()
}

/// A first attempt that fails builds the lifecycle as of when the attempt
/// began: the deadline counts from there; the budget hears the request
/// with the first outcome, as from any call.
#[test]
fn a_first_attempt_that_fails_begins_the_call_when_it_began() {
    let world = World::default();
    world.0.now.set(1_000);
    let svc = Service::new(&world, 300, &[Err(503), Ok(7)]);
    let policy = three_attempts_in_a_second(100);
    let budget = TimedRecorder {
        log: RefCell::new(Vec::new()),
        timed: true,
    };
    let mut fut = pin!((|| svc.call())
        .retry(&policy)
        .on(&world)
        .budget(&budget)
        .when(http)
        .into_future());
    assert!(format!("{fut:?}").contains("attempts: 0"));
    assert_eq!(world.poll_to_end(fut.as_mut()), Ok(7));
    assert!(format!("{fut:?}").contains("attempts: 2"));
    assert_eq!(svc.starts(), [1_000, 1_400]);
    let at = Instant::from_millis;
    assert_eq!(
        *budget.log.borrow(),
        [
            ("request", at(1_300)),
            ("failure", at(1_300)),
            ("try_retry", at(1_300)),
            ("success", at(1_400)),
        ]
    );

    // Had the deadline counted from the failure (1 350 ms), the second
    // attempt (1 750 to 2 100 ms) would fit; from the start it cannot: it is
    // cut at the deadline, 2 000 ms.
    let world = World::default();
    world.0.now.set(1_000);
    let svc = Service::new(&world, 350, &[Err(503), Ok(7)]);
    let policy = three_attempts_in_a_second(400);
    let err = world
        .run((|| svc.call()).retry(&policy).on(&world).when(http))
        .unwrap_err();
    assert_eq!(svc.starts(), [1_000, 1_750]);
    assert_eq!(err.reason(), GiveUp::DeadlineExceeded);
    assert_eq!(err.last(), &LastAttempt::TimedOut);
    assert_eq!(world.now_ms(), 2_000);
}

/// A first attempt that succeeds at once shows one attempt when it is over.
#[test]
fn a_first_try_success_shows_one_attempt() {
    let world = World::default();
    let svc = Service::new(&world, 0, &[Ok(1)]);
    let policy = policy(3, 10);
    let mut fut = pin!((|| svc.call()).retry(&policy).on(&world).into_future());
    assert!(format!("{fut:?}").contains("attempts: 0"));
    assert_eq!(world.poll_to_end(fut.as_mut()), Ok(1));
    let shown = format!("{fut:?}");
    assert!(
        shown.contains("attempts: 1") && shown.contains("done"),
        "{shown}"
    );
}

#[test]
fn the_same_seed_gives_the_same_schedule() {
    let schedule = |seed: u64| {
        let world = World::default();
        let svc = Service::new(&world, 0, &[Err(503)]);
        let policy = RetryPolicy::builder()
            .max_attempts(6)
            .backoff(Backoff::exponential(MS * 100, 2.0))
            .build()
            .unwrap();
        let _ = world.run((|| svc.call()).retry(&policy).on(&world).seed(seed));
        svc.starts()
    };
    assert_eq!(schedule(7), schedule(7));
    assert_ne!(schedule(7), schedule(8));
}

#[test]
fn the_error_carries_its_source() {
    let err: RetryError<std::io::Error> = RetryError::new(
        GiveUp::AttemptsExhausted,
        2,
        LastAttempt::Failed(std::io::Error::other("reset")),
    );
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "reset");
}

proptest! {
    /// Whatever the script, the driver makes exactly the decisions the
    /// state machine makes by hand: same attempts, same start times, same
    /// outcome; and it never leaves a timer behind.
    #[test]
    fn the_driver_agrees_with_the_state_machine(
        script in proptest::collection::vec(prop_oneof![Just(Ok(1u32)), Just(Err(503u16)), Just(Err(404)), Just(Err(429))], 1..8),
        latency in 0u64..200,
        attempts in 1u32..6,
        deadline_ms in 200u64..3000,
        seed in any::<u64>(),
    ) {
        let policy = RetryPolicy::builder()
            .max_attempts(attempts)
            .backoff(Backoff::exponential(MS * 50, 2.0))
            .deadline(MS * deadline_ms as u32)
            .build()
            .unwrap();
        let classify = |s: &u16| match s {
            429 => Failure::overloaded().with_retry_after(RetryAfter::Delay(MS * 120)),
            s => http(s),
        };

        let world = World::default();
        let svc = Service::new(&world, latency, &script);
        let out = world.run((|| svc.call()).retry(&policy).on(&world).when(classify).seed(seed));
        prop_assert_eq!(world.live_timers(), 0);

        // The same call driven by hand.
        let mut call = stormguard::Retry::with_seed(&policy, Instant::ZERO, seed);
        let mut now = 0u64;
        let mut starts = Vec::new();
        let expected = loop {
            starts.push(now);
            let answer = script[(starts.len() - 1).min(script.len() - 1)];
            let left = deadline_ms - now;
            let failure = if latency > left {
                now += left;
                Failure::timeout()
            } else {
                now += latency;
                match answer {
                    Ok(v) => break Ok(v),
                    Err(s) => classify(&s),
                }
            };
            match call.on_failure(&failure, Instant::from_millis(now), &stormguard::NoBudget) {
                stormguard::Decision::Retry { after } => now += after.as_millis() as u64,
                stormguard::Decision::GiveUp(reason) => break Err(reason),
            }
        };
        prop_assert_eq!(svc.starts(), starts);
        prop_assert_eq!(out.map_err(|e| e.reason()), expected);
    }
}

mod hedging {
    use super::*;
    use stormguard::HedgingPolicy;

    /// A service whose n-th copy takes `latencies[n]` ms and answers
    /// `answers[n]`; records which copies were dropped before answering.
    struct Replicas {
        world: World,
        latencies: Vec<u64>,
        answers: Vec<Result<u32, u16>>,
        sent: Cell<usize>,
        answered: Rc<Cell<u32>>,
        cancelled: Rc<Cell<u32>>,
    }

    struct Copy {
        sleep: Timer,
        answer: Result<u32, u16>,
        done: bool,
        answered: Rc<Cell<u32>>,
        cancelled: Rc<Cell<u32>>,
    }

    impl Future for Copy {
        type Output = Result<u32, u16>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            if Pin::new(&mut self.sleep).poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.done = true;
            self.answered.set(self.answered.get() + 1);
            Poll::Ready(self.answer)
        }
    }

    impl Drop for Copy {
        fn drop(&mut self) {
            if !self.done {
                self.cancelled.set(self.cancelled.get() + 1);
            }
        }
    }

    impl Replicas {
        fn new(world: &World, latencies: &[u64], answers: &[Result<u32, u16>]) -> Replicas {
            Replicas {
                world: world.clone(),
                latencies: latencies.to_vec(),
                answers: answers.to_vec(),
                sent: Cell::new(0),
                answered: Rc::default(),
                cancelled: Rc::default(),
            }
        }

        fn call(&self) -> Copy {
            let n = self.sent.get();
            self.sent.set(n + 1);
            Copy {
                sleep: self.world.timer(self.latencies[n]),
                answer: self.answers[n],
                done: false,
                answered: self.answered.clone(),
                cancelled: self.cancelled.clone(),
            }
        }
    }

    fn hedging(attempts: u32, delay_ms: u32) -> HedgingPolicy {
        HedgingPolicy::builder()
            .max_attempts(attempts)
            .hedging_delay(MS * delay_ms)
            .build()
            .unwrap()
    }

    #[test]
    fn a_later_copy_overtakes_a_slow_one_which_is_cancelled() {
        let world = World::default();
        let svc = Replicas::new(&world, &[1000, 10, 10], &[Ok(1), Ok(2), Ok(3)]);
        let policy = hedging(3, 50);
        let out = world.run(
            (|| svc.call())
                .hedge(&policy)
                .sleeper(world.clone())
                .clock(world.clone()),
        );
        assert_eq!(out, Ok(2));
        assert_eq!(
            world.now_ms(),
            60,
            "the second copy, sent at 50 ms, answered"
        );
        assert_eq!(svc.sent.get(), 2, "no third copy");
        assert_eq!(svc.cancelled.get(), 1, "the slow copy was dropped");
        assert_eq!(world.live_timers(), 0);
    }

    #[test]
    fn a_non_fatal_failure_sends_the_next_copy_at_once() {
        let world = World::default();
        let svc = Replicas::new(&world, &[5, 20, 20], &[Err(503), Ok(2), Ok(3)]);
        let policy = hedging(3, 100);
        let out = world.run(
            (|| svc.call())
                .hedge(&policy)
                .sleeper(world.clone())
                .clock(world.clone())
                .when(http),
        );
        assert_eq!(out, Ok(2));
        assert_eq!(world.now_ms(), 25, "copy 1 went out at 5 ms, not 100");
    }

    #[test]
    fn a_fatal_failure_ends_the_call_and_cancels_the_rest() {
        let world = World::default();
        let svc = Replicas::new(&world, &[500, 10], &[Ok(1), Err(404)]);
        let policy = hedging(2, 50);
        let err = world
            .run(
                (|| svc.call())
                    .hedge(&policy)
                    .sleeper(world.clone())
                    .clock(world.clone())
                    .when(http),
            )
            .unwrap_err();
        assert_eq!(err.reason(), GiveUp::NotRetryable);
        assert_eq!(err.last(), &LastAttempt::Failed(404));
        assert_eq!(world.now_ms(), 60);
        assert_eq!(svc.cancelled.get(), 1);
        assert_eq!(world.live_timers(), 0);
    }

    #[test]
    fn each_of_the_five_copies_can_win() {
        for winner in 0..5u64 {
            let world = World::default();
            let mut latencies = [1000; 5];
            latencies[winner as usize] = 5;
            let svc = Replicas::new(&world, &latencies, &[Ok(0), Ok(1), Ok(2), Ok(3), Ok(4)]);
            let policy = hedging(5, 10);
            let out = world.run(
                (|| svc.call())
                    .hedge(&policy)
                    .sleeper(world.clone())
                    .clock(world.clone()),
            );
            assert_eq!(out, Ok(winner as u32), "copy {winner}");
            assert_eq!(world.now_ms(), winner * 10 + 5, "copy {winner}");
            assert_eq!(svc.sent.get() as u64, winner + 1, "copy {winner}");
            assert_eq!(svc.cancelled.get() as u64, winner, "copy {winner}");
        }
    }

    #[test]
    fn the_losers_are_cancelled_when_the_answer_comes_not_when_the_future_goes() {
        let world = World::default();
        let svc = Replicas::new(&world, &[1000, 10, 1000], &[Ok(1), Ok(2), Ok(3)]);
        let policy = hedging(3, 5);
        let future = (|| svc.call())
            .hedge(&policy)
            .sleeper(world.clone())
            .clock(world.clone())
            .into_future();
        let mut future = pin!(future);
        assert!(format!("{future:?}").starts_with("HedgeFuture"));
        assert_eq!(world.poll_to_end(future.as_mut()), Ok(2));
        // The future is still alive, but holds nothing any more.
        assert_eq!(world.now_ms(), 15);
        assert_eq!(
            svc.cancelled.get(),
            2,
            "copies 0 and 2 dropped with the answer"
        );
        assert_eq!(world.live_timers(), 0);
    }

    /// A clock a millisecond behind the world's timers (a clock and a
    /// sleeper from different sources, or of different resolution).
    #[derive(Clone)]
    struct Lagging(World);

    impl Clock for Lagging {
        fn now(&self) -> Instant {
            Instant::from_millis(self.0.now_ms().saturating_sub(1))
        }
    }

    #[test]
    fn a_timer_that_fires_before_the_clock_shows_the_time_is_armed_again() {
        let world = World::default();
        let svc = Replicas::new(&world, &[1000, 10, 1000], &[Ok(1), Ok(2), Ok(3)]);
        let policy = hedging(3, 50);
        let out = world.run(
            (|| svc.call())
                .hedge(&policy)
                .sleeper(world.clone())
                .clock(Lagging(world.clone())),
        );
        assert_eq!(out, Ok(2));
        // The timer for 50 ms fired when the clock said 49: one more
        // millisecond's timer, then copy 1 went out (at 51 ms by the
        // world, 50 by the clock) and answered 10 ms later.
        assert_eq!(world.now_ms(), 61);
        assert_eq!(svc.cancelled.get(), 1);
    }

    #[test]
    fn the_builder_shows_its_policy() {
        let policy = hedging(3, 5);
        let world = World::default();
        let svc = Replicas::new(&world, &[1], &[Ok(1)]);
        let shown = format!("{:?}", (|| svc.call()).hedge(&policy));
        assert!(
            shown.starts_with("Hedging { policy: HedgingPolicy"),
            "{shown}"
        );
    }

    #[test]
    fn the_deadline_cancels_every_copy() {
        let world = World::default();
        let svc = Replicas::new(&world, &[10_000, 10_000, 10_000], &[Ok(1), Ok(2), Ok(3)]);
        let policy = HedgingPolicy::builder()
            .max_attempts(3)
            .hedging_delay(MS * 100)
            .deadline(MS * 250)
            .build()
            .unwrap();
        let err = world
            .run(
                (|| svc.call())
                    .hedge(&policy)
                    .sleeper(world.clone())
                    .clock(world.clone()),
            )
            .unwrap_err();
        assert_eq!(
            (err.reason(), err.attempts(), err.last()),
            (GiveUp::DeadlineExceeded, 3, &LastAttempt::TimedOut)
        );
        assert_eq!(world.now_ms(), 250);
        assert_eq!(svc.cancelled.get(), 3);
        assert_eq!(world.live_timers(), 0);
    }
}

#[test]
fn the_last_attempt_gives_its_error_by_reference_and_by_value() {
    assert_eq!(LastAttempt::Failed(7u8).error(), Some(&7));
    assert_eq!(LastAttempt::Failed(7u8).into_error(), Some(7));
    assert_eq!(LastAttempt::<u8>::TimedOut.into_error(), None);
    assert_eq!(LastAttempt::<u8>::TimedOut.error(), None);
}

#[test]
fn a_retry_error_gives_back_the_operations_error() {
    let e = RetryError::new(GiveUp::NotRetryable, 1, LastAttempt::Failed(503u16));
    assert_eq!(e.into_error(), Some(503));
}

#[test]
fn the_builder_shows_its_settings() {
    let policy = policy(3, 100);
    let world = World::default();
    let svc = Service::new(&world, 5, &[Ok(7)]);
    let shown = format!("{:?}", (|| svc.call()).retry(&policy).on(&world));
    assert!(
        shown.starts_with("Retrying { policy: RetryPolicy"),
        "{shown}"
    );
    assert!(shown.contains("breaker: false"), "{shown}");
}

#[test]
fn a_borrowed_clock_reads_the_clock_it_borrows() {
    let world = World::default();
    world.0.now.set(42);
    assert_eq!(Clock::now(&&world), Instant::from_millis(42));
}

#[cfg(feature = "std")]
#[test]
fn the_std_clock_moves_forward() {
    use stormguard::driver::StdClock;
    let a = StdClock.now();
    std::thread::sleep(MS * 2);
    // `thread::sleep` sleeps at least as long as asked, on the same
    // monotonic clock: no timing assumption beyond that.
    assert!(StdClock.now().saturating_duration_since(a) >= MS * 2);
}
