//! Sequences of decisions: calls sharing a budget, a breaker and an
//! adaptive throttle, driven through `Call` and `Retry` by arbitrary
//! failures, server hints and clock jumps, with the core's promises checked
//! after every step.

use core::cell::Cell;
use core::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use stormguard::{
    Budget, Call, CircuitBreaker, Decision, DecisionOrder, Failure, GiveUp, Idempotency, Instant,
    PermitToken, Replay, Retry, RetryAfter, RetryPolicy, Withdrawal,
};

use crate::arbitrary_values::{idempotency, AnyFailure};
use crate::builders::{AdaptiveSpec, BreakerSpec, BudgetSpec, PolicySpec};

/// Calls running side by side.
const CALLS: usize = 3;
/// Steps per scenario: enough for every state, short enough to stay fast.
const MAX_STEPS: usize = 512;

#[derive(Arbitrary, Debug)]
struct Scenario {
    policy: PolicySpec,
    budget: BudgetSpec,
    breaker: Option<BreakerSpec>,
    throttle: Option<AdaptiveSpec>,
    /// Per-call idempotency, overriding the policy's.
    idempotency: Option<u8>,
    seed: u64,
    start_millis: u32,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// `start_attempt` on a call.
    Start(u8),
    /// `fail` on a call (with or without an attempt running).
    Fail(u8, AnyFailure),
    /// `succeed` on a call.
    Succeed(u8),
    /// `cancel_attempt` on a call.
    Cancel(u8),
    /// `begin_attempt`, then a verdict on the guard.
    Guarded(u8, Verdict),
    /// The call is dropped and a new one takes its place.
    Renew(u8),
    /// The clock moves.
    Clock(Jump),
    /// A permit straight from the shared breaker, held by the harness.
    BreakerAcquire,
    /// A verdict on a permit the harness holds.
    BreakerReport(u8, Report),
    /// `Retry::on_failure` on a call without a breaker, sharing the budget.
    RetryFail(AnyFailure),
    /// `Retry::on_success` on it.
    RetrySucceed,
}

#[derive(Arbitrary, Debug)]
enum Verdict {
    Succeed,
    Fail(AnyFailure),
    Cancel,
    Drop,
}

/// What became of a guarded attempt.
enum Guarded {
    Refused(Decision),
    Succeeded,
    Failed(Failure, Decision),
    Cancelled,
}

#[derive(Arbitrary, Debug)]
enum Report {
    Success,
    Failure,
    Abandon,
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Jump {
    /// Forward by some milliseconds.
    Millis(u16),
    /// Forward by some nanoseconds.
    Nanos(u64),
    /// Not at all.
    Zero,
    /// Forward by up to 136 years.
    Huge(u32),
    /// Backwards by some milliseconds (a clock that is not monotonic).
    Back(u32),
    /// To the end of time.
    End,
    /// Forward by the last retry's delay: what a driver does.
    Sleep,
}

impl Jump {
    /// The clock after the jump; `Sleep` waits `wait`.
    pub(crate) fn apply(&self, now: Instant, wait: Duration) -> Instant {
        match self {
            Jump::Millis(ms) => now.saturating_add(Duration::from_millis(u64::from(*ms))),
            Jump::Nanos(ns) => now.saturating_add(Duration::from_nanos(*ns)),
            Jump::Zero => now,
            Jump::Huge(secs) => now.saturating_add(Duration::from_secs(u64::from(*secs))),
            Jump::Back(ms) => now.saturating_sub(Duration::from_millis(u64::from(*ms))),
            Jump::End => Instant::MAX,
            Jump::Sleep => now.saturating_add(wait),
        }
    }
}

/// A budget that counts what the core asks of it, and forwards.
pub(crate) struct Observed<'a> {
    inner: &'a dyn Budget,
    granted: Cell<u64>,
    refused: Cell<u64>,
    failures: Cell<u64>,
}

impl Budget for Observed<'_> {
    fn on_request(&self, now: Instant) {
        self.inner.on_request(now);
    }

    fn on_failure(&self, failure: &Failure, now: Instant) {
        self.failures.set(self.failures.get() + 1);
        self.inner.on_failure(failure, now);
    }

    fn try_retry(&self, failure: &Failure, now: Instant) -> Option<Withdrawal> {
        let withdrawal = self.inner.try_retry(failure, now);
        let counter = if withdrawal.is_some() {
            &self.granted
        } else {
            &self.refused
        };
        counter.set(counter.get() + 1);
        withdrawal
    }

    fn on_success(&self, last_retry: Option<Withdrawal>, now: Instant) {
        self.inner.on_success(last_retry, now);
    }

    fn needs_time(&self) -> bool {
        self.inner.needs_time()
    }
}

impl<'a> Observed<'a> {
    pub(crate) fn new(inner: &'a dyn Budget) -> Self {
        Observed {
            inner,
            granted: Cell::new(0),
            refused: Cell::new(0),
            failures: Cell::new(0),
        }
    }

    /// Withdrawals granted, refused, and failures counted so far.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        (self.granted.get(), self.refused.get(), self.failures.get())
    }
}

/// What the harness knows of one call, to check each decision against.
#[derive(Default)]
struct Model {
    /// How the call ended, once it did.
    over: Option<GiveUp>,
    succeeded: bool,
    /// Whether the deadline started counting.
    started: bool,
    /// gRPC A6 transparent retries so far, and whether the one immediate
    /// retry after a refusal was used.
    transparent: u32,
    used_rejected: bool,
    /// Failures per retryable class that reached the attempt limits' gate
    /// (the per-class limit's count).
    class_failures: [u32; 4],
}

struct Rules<'p> {
    policy: &'p RetryPolicy,
    idempotency: Idempotency,
    has_breaker: bool,
    has_throttle: bool,
    longest_refusal: Duration,
}

/// The longest a breaker's refusal may ask to wait at `now`: its longest
/// timeout, plus however far the clock went back since the latest `now`
/// (a clock that goes backwards only keeps the breaker open longer).
fn refusal_bound(rules: &Rules<'_>, now: Instant, latest: Instant) -> Duration {
    rules
        .longest_refusal
        .saturating_add(latest.saturating_duration_since(now))
}

/// Arbitrary sequences of calls under one policy, sharing a budget, a
/// circuit breaker and an adaptive throttle; failures of every class,
/// replay safety and server hint (huge delays and `Stop` included);
/// clock jumps forward, none, huge and backwards. After every step:
/// no panic; a retry waits no longer than the backoff's cap, or the server's
/// hint capped by `max_server_delay`; no retry is scheduled at or past the
/// deadline; attempts stay within `max_attempts` (and each class's limit);
/// every give-up has its reason; a call that is over stays over; the
/// budget's tokens stay within `[0, max]`; the breaker's half-open round
/// never admits more probes than configured.
///
/// ```
/// stormguard_fuzz_checks::check_decisions(&[1; 64]);
/// ```
pub fn check_decisions(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(scenario) = u.arbitrary::<Scenario>() else {
        return;
    };
    let Ok(policy) = scenario.policy.build() else {
        return;
    };
    let Ok(budget) = scenario.budget.build() else {
        return;
    };
    let breaker = match scenario.breaker.map(BreakerSpec::build) {
        None => None,
        Some(Ok(breaker)) => Some(breaker),
        Some(Err(_)) => return,
    };
    let throttle = match scenario.throttle.map(AdaptiveSpec::build) {
        None => None,
        Some(Ok(throttle)) => Some(throttle),
        Some(Err(_)) => return,
    };
    let idempotency = match scenario.idempotency {
        Some(byte) => idempotency(&mut Unstructured::new(&[byte])).unwrap_or_default(),
        None => policy.idempotency(),
    };
    let rules = Rules {
        policy: &policy,
        idempotency,
        has_breaker: breaker.is_some(),
        has_throttle: throttle.is_some(),
        longest_refusal: scenario
            .breaker
            .map_or(Duration::ZERO, BreakerSpec::longest_wait),
    };
    let observed = Observed::new(budget.as_dyn());
    let new_call = |seed: u64| {
        Call::with_seed(&policy, seed)
            .budget(&observed)
            .breaker(breaker.as_ref())
            .throttle(throttle.as_ref())
            .with_idempotency(idempotency)
    };
    let mut calls: [_; CALLS] = core::array::from_fn(|i| new_call(scenario.seed ^ i as u64));
    let mut models: [Model; CALLS] = Default::default();
    let mut now = Instant::from_millis(u64::from(scenario.start_millis));
    let mut retry = Retry::with_seed(&policy, now, scenario.seed).with_idempotency(idempotency);
    let mut retry_model = Model {
        started: true,
        ..Model::default()
    };
    let mut last_after = Duration::ZERO;
    let mut latest = now;
    let mut permits: Vec<PermitToken> = Vec::new();
    // Per breaker generation: probes held by the harness, and succeeded.
    let mut probes: std::collections::HashMap<u32, (u32, u32)> = Default::default();
    let probe_limit = breaker.as_ref().map_or(0, CircuitBreaker::half_open_probes);

    for step in scenario.steps.iter().take(MAX_STEPS) {
        match step {
            Step::Start(i) => {
                let i = usize::from(*i) % CALLS;
                let before = calls[i].attempts();
                let result = calls[i].start_attempt(now);
                check_start(&rules, &mut models[i], &calls[i], result, (now, latest));
                assert_eq!(calls[i].attempts(), before, "beginning counts no attempt");
            }
            Step::Fail(i, AnyFailure(failure)) => {
                let i = usize::from(*i) % CALLS;
                let (before, counts) = (calls[i].attempts(), observed.counts());
                let decision = calls[i].fail(failure, now);
                let deadline = calls[i].deadline();
                let after = calls[i].attempts();
                check_failure(
                    &rules,
                    &mut models[i],
                    failure,
                    now,
                    decision,
                    (before, after),
                    deadline,
                    (counts, observed.counts()),
                );
                if let Decision::Retry { after } = decision {
                    last_after = after;
                }
            }
            Step::Succeed(i) => {
                let i = usize::from(*i) % CALLS;
                let before = calls[i].attempts();
                calls[i].succeed(now);
                check_success(&mut models[i], before, calls[i].attempts());
            }
            Step::Cancel(i) => {
                let i = usize::from(*i) % CALLS;
                let before = calls[i].attempts();
                calls[i].cancel_attempt();
                assert!(!calls[i].is_attempting());
                assert_eq!(calls[i].attempts(), before);
            }
            Step::Guarded(i, verdict) => {
                let i = usize::from(*i) % CALLS;
                let before = calls[i].attempts();
                let counts = observed.counts();
                let call = &mut calls[i];
                let model = &mut models[i];
                let outcome = match call.begin_attempt(now) {
                    Err(decision) => Guarded::Refused(decision),
                    Ok(attempt) => {
                        assert_eq!(attempt.number(), before.saturating_add(1));
                        let _ = (attempt.is_probe(), attempt.time_left(now));
                        match verdict {
                            Verdict::Succeed => {
                                attempt.succeed(now);
                                Guarded::Succeeded
                            }
                            Verdict::Fail(AnyFailure(failure)) => {
                                Guarded::Failed(*failure, attempt.fail(failure, now))
                            }
                            Verdict::Cancel => {
                                attempt.cancel();
                                Guarded::Cancelled
                            }
                            Verdict::Drop => {
                                drop(attempt);
                                Guarded::Cancelled
                            }
                        }
                    }
                };
                match outcome {
                    Guarded::Refused(decision) => {
                        assert_eq!(call.attempts(), before);
                        check_start(&rules, model, call, Err(decision), (now, latest));
                    }
                    Guarded::Succeeded => {
                        check_start(&rules, model, call, Ok(()), (now, latest));
                        check_success(model, before, call.attempts());
                    }
                    Guarded::Failed(failure, decision) => {
                        check_start(&rules, model, call, Ok(()), (now, latest));
                        check_failure(
                            &rules,
                            model,
                            &failure,
                            now,
                            decision,
                            (before, call.attempts()),
                            call.deadline(),
                            (counts, observed.counts()),
                        );
                        if let Decision::Retry { after } = decision {
                            last_after = after;
                        }
                    }
                    Guarded::Cancelled => {
                        check_start(&rules, model, call, Ok(()), (now, latest));
                        assert!(!call.is_attempting());
                        assert_eq!(call.attempts(), before);
                    }
                }
            }
            Step::Renew(i) => {
                let i = usize::from(*i) % CALLS;
                calls[i] = new_call(scenario.seed.rotate_left(i as u32 + 7) ^ now.as_nanos());
                models[i] = Model::default();
            }
            Step::Clock(jump) => {
                now = jump.apply(now, last_after);
                latest = latest.max(now);
            }
            Step::BreakerAcquire => {
                let Some(breaker) = &breaker else { continue };
                match breaker.try_acquire(now) {
                    Ok(permit) => {
                        let token = permit.detach();
                        if token.is_probe() {
                            let (held, succeeded) = probes.entry(token.to_bits() >> 1).or_default();
                            *held += 1;
                            assert!(
                                *held + *succeeded <= probe_limit,
                                "{held} probes held and {succeeded} succeeded in one round, \
                                 at most {probe_limit} allowed"
                            );
                        }
                        permits.push(token);
                    }
                    Err(open) => assert!(
                        open.retry_in <= refusal_bound(&rules, now, latest),
                        "a refusal asks to wait {:?}, longer than {:?}",
                        open.retry_in,
                        rules.longest_refusal
                    ),
                }
            }
            Step::BreakerReport(which, report) => {
                let Some(breaker) = &breaker else { continue };
                if permits.is_empty() {
                    continue;
                }
                let token = permits.swap_remove(usize::from(*which) % permits.len());
                if token.is_probe() {
                    let (held, succeeded) = probes.entry(token.to_bits() >> 1).or_default();
                    *held -= 1;
                    if matches!(report, Report::Success) {
                        *succeeded += 1;
                    }
                }
                match report {
                    Report::Success => breaker.record_success(token, now),
                    Report::Failure => breaker.record_failure(token, now),
                    Report::Abandon => breaker.abandon(token),
                }
            }
            Step::RetryFail(AnyFailure(failure)) => {
                let (before, counts) = (retry.attempts(), observed.counts());
                let decision = retry.on_failure(failure, now, &observed);
                let deadline = retry.deadline();
                // A bare `Retry` has no breaker and no phases: it decides
                // again after a give-up; only the decision rules apply.
                retry_model.over = None;
                let bare = Rules {
                    has_breaker: false,
                    has_throttle: false,
                    ..rules
                };
                check_failure(
                    &bare,
                    &mut retry_model,
                    failure,
                    now,
                    decision,
                    (before, retry.attempts()),
                    deadline,
                    (counts, observed.counts()),
                );
                if let Decision::Retry { after } = decision {
                    last_after = after;
                }
            }
            Step::RetrySucceed => {
                let before = retry.attempts();
                retry.on_success(now, &observed);
                assert_eq!(retry.attempts(), before.saturating_add(1));
            }
        }
        budget.check_tokens(scenario.budget);
        if let Some(throttle) = &throttle {
            let p = throttle.reject_probability(now);
            let cap = scenario.throttle.map_or(1.0, AdaptiveSpec::max_reject);
            assert!((0.0..=cap + 1e-6).contains(&p), "reject probability {p}");
        }
        for (call, model) in calls.iter().zip(&models) {
            assert_eq!(call.is_over(), model.over.is_some() || model.succeeded);
        }
    }
}

/// `start_attempt`'s answer against the rules.
fn check_start<P, B, K, T>(
    rules: &Rules<'_>,
    model: &mut Model,
    call: &Call<P, B, K, T>,
    result: Result<(), Decision>,
    (now, latest): (Instant, Instant),
) where
    K: core::borrow::Borrow<CircuitBreaker>,
{
    let first = !model.started;
    if let Some(reason) = model.over {
        assert_eq!(result, Err(Decision::GiveUp(reason)), "a call that is over");
        return;
    }
    if model.succeeded {
        assert_eq!(result, Err(Decision::GiveUp(GiveUp::NotRetryable)));
        return;
    }
    model.started = true;
    match result {
        Ok(()) => {
            if let (false, Some(deadline)) = (first, call.deadline()) {
                assert!(
                    now < deadline,
                    "an attempt began at {now:?}, deadline {deadline:?}"
                );
            }
        }
        Err(Decision::GiveUp(reason)) => {
            match reason {
                GiveUp::DeadlineExceeded => {
                    assert!(!first, "the first attempt always fits the deadline");
                    assert_eq!(call.time_left(now), Some(Duration::ZERO));
                }
                GiveUp::CircuitOpen => {
                    assert!(rules.has_breaker);
                    let refusal = call.refusal().expect("a refusal says when to come back");
                    assert!(refusal.retry_in <= refusal_bound(rules, now, latest));
                }
                GiveUp::ClientThrottled => assert!(rules.has_throttle),
                other => panic!("beginning an attempt gave up with {other:?}"),
            }
            model.over = Some(reason);
        }
        Err(decision) => panic!("beginning an attempt answered {decision:?}"),
    }
}

fn check_success(model: &mut Model, before: u32, after: u32) {
    if model.over.is_some() || model.succeeded {
        assert_eq!(after, before, "a call that is over counts nothing");
    } else {
        assert_eq!(after, before.saturating_add(1));
        model.succeeded = true;
        model.started = true;
    }
}

type Counts = (u64, u64, u64);

/// A failure's decision against the rules of `Retry::on_failure` and
/// `DecisionOrder`.
#[allow(clippy::too_many_arguments)]
fn check_failure(
    rules: &Rules<'_>,
    model: &mut Model,
    failure: &Failure,
    now: Instant,
    decision: Decision,
    (before, attempts): (u32, u32),
    deadline: Option<Instant>,
    (counts_before, counts_after): (Counts, Counts),
) {
    if model.succeeded {
        assert_eq!(decision, Decision::GiveUp(GiveUp::NotRetryable));
        assert_eq!(attempts, before);
        return;
    }
    if let Some(reason) = model.over {
        assert_eq!(decision, Decision::GiveUp(reason), "a call that is over");
        assert_eq!(attempts, before);
        return;
    }
    model.started = true;
    assert_eq!(
        attempts,
        before.saturating_add(1),
        "a failure is one attempt"
    );
    let policy = rules.policy;
    let granted = counts_after.0 - counts_before.0;
    let refused = counts_after.1 - counts_before.1;
    assert!(granted + refused <= 1, "one withdrawal per failure");
    let grpc = policy.decision_order() == DecisionOrder::Grpc;
    let hint = failure.retry_after();
    let stop = hint == Some(RetryAfter::Stop);
    let retryable = failure.class().is_retryable() && !failure.is_already_retried();
    let transparent = grpc
        && retryable
        && !stop
        && match failure.replay() {
            Replay::NotSent => true,
            Replay::Rejected => !model.used_rejected,
            Replay::Unknown => false,
        };
    let class = failure.class().index().min(3);
    let reaches_limits =
        !transparent && retryable && !stop && rules.idempotency.allows_replay(failure.replay());
    if reaches_limits {
        model.class_failures[class] += 1;
    }
    let class_full = policy
        .max_attempts_for(failure.class())
        .is_some_and(|limit| model.class_failures[class] >= limit);
    if transparent {
        model.transparent += 1;
        if failure.replay() == Replay::Rejected {
            model.used_rejected = true;
        }
        assert_eq!(
            counts_after, counts_before,
            "a transparent retry leaves the budget alone"
        );
    }
    match decision {
        Decision::Retry { after } => {
            assert!(retryable && !stop, "{failure:?} retried");
            assert!(transparent || rules.idempotency.allows_replay(failure.replay()));
            match (transparent, failure.replay(), hint) {
                (true, Replay::Rejected, _) => assert_eq!(after, Duration::ZERO),
                (false, _, Some(RetryAfter::Delay(hint))) => {
                    let capped = hint.min(policy.max_server_delay());
                    let capped =
                        Duration::from_nanos(u64::try_from(capped.as_nanos()).unwrap_or(u64::MAX));
                    assert_eq!(after, capped, "a server's delay, capped");
                }
                _ => assert!(
                    after <= policy.backoff().max_delay(),
                    "{after:?} above the cap {:?}",
                    policy.backoff().max_delay()
                ),
            }
            if let Some(deadline) = deadline {
                assert!(
                    now.saturating_add(after) < deadline,
                    "a retry at {now:?} + {after:?} is past the deadline {deadline:?}"
                );
            }
            if !transparent {
                assert!(reaches_limits);
                assert_eq!(granted, 1, "a retry is paid for");
                let counted = attempts - model.transparent.min(attempts);
                assert!(
                    counted < policy.max_attempts(),
                    "retry after {counted} counted attempts, at most {}",
                    policy.max_attempts()
                );
                assert!(!class_full, "a retry beyond the class's limit");
            }
        }
        Decision::GiveUp(reason) => {
            match reason {
                GiveUp::NotRetryable => assert!(!(retryable || grpc && stop)),
                GiveUp::UnsafeToReplay => {
                    assert!(!rules.idempotency.allows_replay(failure.replay()))
                }
                GiveUp::ServerSaidStop => assert!(stop),
                GiveUp::AttemptsExhausted => {
                    let counted = attempts - model.transparent.min(attempts);
                    assert!(reaches_limits);
                    assert!(counted >= policy.max_attempts() || class_full);
                }
                GiveUp::DeadlineExceeded => assert!(deadline.is_some()),
                GiveUp::BudgetExhausted => assert_eq!(refused, 1, "the budget refused"),
                other => panic!("a failure gave up with {other:?}"),
            }
            if reason != GiveUp::BudgetExhausted {
                assert_eq!(granted + refused, 0, "no withdrawal for {reason:?}");
            }
            model.over = Some(reason);
        }
    }
}
