//! Hedged calls: `Hedge` driven by arbitrary answers and clock jumps,
//! against a model of gRPC A6's hedging rules.

use core::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use stormguard::{GiveUp, Hedge, HedgeStep, Idempotency, Instant, RetryAfter};

use crate::arbitrary_values::AnyFailure;
use crate::builders::{BudgetSpec, HedgingSpec};
use crate::decisions::{Jump, Observed};

const MAX_STEPS: usize = 256;

#[derive(Arbitrary, Debug)]
struct Scenario {
    policy: HedgingSpec,
    budget: BudgetSpec,
    start_millis: u32,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Poll,
    Succeeded(u8),
    Failed(u8, AnyFailure),
    Clock(Jump),
}

/// What the harness expects of the hedge.
struct Model {
    sent: u32,
    in_flight: u8,
    /// No copy may be sent before this instant.
    not_before: Instant,
    /// Whether no more copies may be sent (a server's stop, the budget).
    stopped: bool,
    finished: Option<HedgeStep>,
}

/// A hedged call (gRPC A6 `hedgingPolicy`) under arbitrary settings,
/// budgets, answers and clock jumps. At every step: copies are numbered in
/// order, never more than `max_attempts`, never at or after the deadline,
/// never before their time (`hedging_delay` after the previous copy, at once
/// after a retryable failure, after a server's capped pushback), never after
/// a server's stop or a budget's refusal, and never a second copy of a
/// non-idempotent request; every copy after the first is paid for; a wait
/// ends between now and the deadline; a call that finished stays finished
/// with the same outcome and nothing in flight.
///
/// ```
/// stormguard_fuzz_checks::check_hedge(&[3; 48]);
/// ```
pub fn check_hedge(data: &[u8]) {
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
    let observed = Observed::new(budget.as_dyn());
    let start = Instant::from_millis(u64::from(scenario.start_millis));
    let mut hedge = Hedge::new(&policy, start).budget(&observed);
    let deadline = hedge.deadline();
    let cap = scenario.policy.max_server_delay();
    let mut model = Model {
        sent: 0,
        in_flight: 0,
        not_before: start,
        stopped: false,
        finished: None,
    };
    let mut now = start;
    let mut wait = Duration::ZERO;
    for step in scenario.steps.iter().take(MAX_STEPS) {
        let counts = observed.counts();
        let answered = match step {
            Step::Poll => Some(hedge.poll(now)),
            Step::Succeeded(n) => {
                let n = u32::from(*n % 8);
                let result = hedge.succeeded(n, now);
                if model.finished.is_none() && model.in_flight & (1 << n) != 0 {
                    let done = HedgeStep::Finished(Ok(n));
                    assert_eq!(result, done, "copy {n} succeeded");
                    model.finished = Some(done);
                    model.in_flight = 0;
                    None
                } else {
                    Some(result)
                }
            }
            Step::Failed(n, AnyFailure(failure)) => {
                let n = u32::from(*n % 8);
                if model.finished.is_none() && model.in_flight & (1 << n) != 0 {
                    model.in_flight &= !(1 << n);
                    if !failure.class().is_retryable() || failure.is_already_retried() {
                        let result = hedge.failed(n, failure, now);
                        let done = HedgeStep::Finished(Err(GiveUp::NotRetryable));
                        assert_eq!(result, done, "a fatal failure ends the call");
                        model.finished = Some(done);
                        model.in_flight = 0;
                        None
                    } else {
                        match failure.retry_after() {
                            Some(RetryAfter::Stop) => model.stopped = true,
                            Some(RetryAfter::Delay(hint)) => {
                                model.not_before = now.saturating_add(hint.min(cap))
                            }
                            None => model.not_before = now,
                        }
                        Some(hedge.failed(n, failure, now))
                    }
                } else {
                    Some(hedge.failed(n, failure, now))
                }
            }
            Step::Clock(jump) => {
                now = jump.apply(now, wait);
                None
            }
        };
        if let Some(result) = answered {
            check_step(
                &mut model, &policy, deadline, now, result, counts, &observed,
            );
            if let HedgeStep::WaitUntil(until) = result {
                wait = until.saturating_duration_since(now);
            }
        }
        budget.check_tokens(scenario.budget);
        assert_eq!(hedge.sent(), model.sent);
        assert_eq!(hedge.in_flight(), model.in_flight);
        assert!(hedge.sent() <= policy.max_attempts());
    }
}

fn check_step(
    model: &mut Model,
    policy: &stormguard::HedgingPolicy,
    deadline: Option<Instant>,
    now: Instant,
    result: HedgeStep,
    counts: (u64, u64, u64),
    observed: &Observed<'_>,
) {
    if let Some(done) = model.finished {
        assert_eq!(result, done, "a finished call stays finished");
        return;
    }
    let (granted, refused, _) = observed.counts();
    let (granted, refused) = (granted - counts.0, refused - counts.1);
    if refused > 0 {
        model.stopped = true;
    }
    match result {
        HedgeStep::Send(n) => {
            assert_eq!(n, model.sent, "copies go out in order");
            assert!(
                n < policy.max_attempts(),
                "copy {n} of {}",
                policy.max_attempts()
            );
            assert!(!model.stopped, "a copy after a stop");
            assert!(
                now >= model.not_before,
                "copy {n} at {now:?}, due {:?}",
                model.not_before
            );
            if let Some(deadline) = deadline {
                assert!(now < deadline, "a copy at the deadline");
            }
            if n > 0 {
                assert_ne!(policy.idempotency(), Idempotency::NonIdempotent);
                assert_eq!(granted, 1, "a hedged copy is paid for");
            }
            model.sent += 1;
            model.in_flight |= 1 << n;
            model.not_before = now.saturating_add(policy.hedging_delay());
        }
        HedgeStep::WaitUntil(until) => {
            assert!(
                until >= now,
                "a wait until {until:?} is in the past of {now:?}"
            );
            if let Some(deadline) = deadline {
                assert!(until <= deadline, "a wait past the deadline");
            }
        }
        HedgeStep::WaitForAnswers => {
            assert!(deadline.is_none());
            assert_ne!(
                model.in_flight, 0,
                "waiting for answers with none in flight"
            );
        }
        HedgeStep::Finished(outcome) => {
            match outcome {
                Ok(n) => panic!("copy {n} won without succeeding"),
                Err(GiveUp::DeadlineExceeded) => {
                    assert!(
                        deadline.is_some_and(|d| now >= d),
                        "deadline given up early"
                    )
                }
                Err(
                    GiveUp::AttemptsExhausted | GiveUp::BudgetExhausted | GiveUp::ServerSaidStop,
                ) => assert_eq!(model.in_flight, 0, "gave up with copies in flight"),
                Err(other) => panic!("a hedge gave up with {other:?}"),
            }
            model.finished = Some(result);
            model.in_flight = 0;
        }
    }
}
