//! Every rule of gRPC A6's hedging policy, one test each, on virtual time.

use core::time::Duration;

use proptest::prelude::*;
use stormguard::{
    Failure, GiveUp, Hedge, HedgeStep, HedgingPolicy, Idempotency, Instant, RetryAfter, Throttle,
};

const MS: Duration = Duration::from_millis(1);

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn policy(attempts: u32, delay_ms: u32) -> HedgingPolicy {
    HedgingPolicy::builder()
        .max_attempts(attempts)
        .hedging_delay(MS * delay_ms)
        .build()
        .unwrap()
}

#[test]
fn copies_go_out_one_delay_apart_until_max_attempts() {
    let p = policy(4, 100);
    let mut h = Hedge::new(&p, at(0));
    assert_eq!(h.poll(at(0)), HedgeStep::Send(0));
    assert_eq!(h.poll(at(0)), HedgeStep::WaitUntil(at(100)));
    assert_eq!(h.poll(at(99)), HedgeStep::WaitUntil(at(100)));
    assert_eq!(h.poll(at(100)), HedgeStep::Send(1));
    assert_eq!(h.poll(at(200)), HedgeStep::Send(2));
    assert_eq!(h.poll(at(300)), HedgeStep::Send(3));
    assert_eq!(h.poll(at(400)), HedgeStep::WaitForAnswers);
    assert_eq!(h.sent(), 4);
    assert_eq!(h.in_flight(), 0b1111);
}

#[test]
fn the_first_success_wins_and_ends_the_call() {
    let p = policy(3, 100);
    let mut h = Hedge::new(&p, at(0));
    let _ = h.poll(at(0));
    let _ = h.poll(at(100));
    assert_eq!(h.succeeded(1, at(150)), HedgeStep::Finished(Ok(1)));
    // The others are to be cancelled: nothing is in flight any more, and a
    // late answer changes nothing.
    assert_eq!(h.in_flight(), 0);
    assert_eq!(h.succeeded(0, at(160)), HedgeStep::Finished(Ok(1)));
    assert_eq!(h.poll(at(500)), HedgeStep::Finished(Ok(1)));
}

#[test]
fn a_non_fatal_failure_sends_the_next_copy_at_once_and_later_ones_keep_the_delay() {
    let p = policy(4, 100);
    let mut h = Hedge::new(&p, at(0));
    let _ = h.poll(at(0));
    assert_eq!(
        h.failed(0, &Failure::transient(), at(30)),
        HedgeStep::Send(1)
    );
    // The next resumes a delay after that copy, not on the old schedule.
    assert_eq!(h.poll(at(30)), HedgeStep::WaitUntil(at(130)));
    assert_eq!(h.poll(at(130)), HedgeStep::Send(2));
}

#[test]
fn a_fatal_failure_ends_the_call() {
    let p = policy(4, 100);
    let mut h = Hedge::new(&p, at(0));
    let _ = h.poll(at(0));
    let _ = h.poll(at(100));
    assert_eq!(
        h.failed(1, &Failure::permanent(), at(120)),
        HedgeStep::Finished(Err(GiveUp::NotRetryable))
    );
    assert_eq!(h.in_flight(), 0, "the first copy is to be cancelled");
}

#[test]
fn a_pushback_schedules_the_next_copy() {
    let p = policy(4, 100);
    let mut h = Hedge::new(&p, at(0));
    let _ = h.poll(at(0));
    let pushback = Failure::overloaded().with_retry_after(RetryAfter::Delay(MS * 250));
    assert_eq!(
        h.failed(0, &pushback, at(20)),
        HedgeStep::WaitUntil(at(270))
    );
    assert_eq!(h.poll(at(270)), HedgeStep::Send(1));
    // Later copies resume at pushback + hedging delay.
    assert_eq!(h.poll(at(270)), HedgeStep::WaitUntil(at(370)));
}

#[test]
fn dont_retry_stops_new_copies_but_not_those_in_flight() {
    let p = policy(4, 100);
    let mut h = Hedge::new(&p, at(0));
    let _ = h.poll(at(0));
    let _ = h.poll(at(100));
    let stop = Failure::overloaded().with_retry_after(RetryAfter::Stop);
    assert_eq!(h.failed(1, &stop, at(150)), HedgeStep::WaitForAnswers);
    assert_eq!(h.poll(at(1000)), HedgeStep::WaitForAnswers, "no copy 2");
    assert_eq!(h.succeeded(0, at(1200)), HedgeStep::Finished(Ok(0)));
    // Had the first failed too, the call would report the stop.
    let mut h = Hedge::new(&p, at(0));
    let _ = h.poll(at(0));
    let _ = h.poll(at(100));
    let _ = h.failed(1, &stop, at(150));
    assert_eq!(
        h.failed(0, &Failure::transient(), at(160)),
        HedgeStep::Finished(Err(GiveUp::ServerSaidStop))
    );
}

#[test]
fn copies_after_the_first_need_a_throttle_token_and_failures_take_them() {
    let p = policy(5, 10);
    // 10 tokens: retries allowed while more than 5 remain.
    let throttle = Throttle::new(10, 0.1).unwrap();
    for _ in 0..4 {
        throttle.record_failure(); // 6 tokens: one more failure throttles
    }
    let mut h = Hedge::new(&p, at(0)).budget(&throttle);
    assert_eq!(h.poll(at(0)), HedgeStep::Send(0), "the first always goes");
    assert_eq!(h.poll(at(10)), HedgeStep::Send(1), "6 tokens > 5");
    // Copy 1 fails (non-fatal): a token goes, 5 left: no more copies.
    assert_eq!(
        h.failed(1, &Failure::transient(), at(15)),
        HedgeStep::WaitForAnswers
    );
    assert_eq!(throttle.tokens_milli(), 5_000);
    assert_eq!(
        h.failed(0, &Failure::transient(), at(20)),
        HedgeStep::Finished(Err(GiveUp::BudgetExhausted))
    );
    // A success earns tokens back.
    let mut h = Hedge::new(&p, at(100)).budget(&throttle);
    let _ = h.poll(at(100));
    let _ = h.succeeded(0, at(110));
    assert_eq!(throttle.tokens_milli(), 4_100);
}

#[test]
fn the_deadline_bounds_everything() {
    let p = HedgingPolicy::builder()
        .max_attempts(5)
        .hedging_delay(MS * 100)
        .deadline(MS * 250)
        .build()
        .unwrap();
    let mut h = Hedge::new(&p, at(0));
    let _ = h.poll(at(0));
    let _ = h.poll(at(100));
    let _ = h.poll(at(200));
    // The next copy would be due at 300, after the deadline: wait for it.
    assert_eq!(h.poll(at(200)), HedgeStep::WaitUntil(at(250)));
    assert_eq!(
        h.poll(at(250)),
        HedgeStep::Finished(Err(GiveUp::DeadlineExceeded))
    );
    assert_eq!(h.sent(), 3);
}

#[test]
fn all_copies_failing_exhausts_the_attempts() {
    let p = policy(2, 100);
    let mut h = Hedge::new(&p, at(0));
    let _ = h.poll(at(0));
    assert_eq!(
        h.failed(0, &Failure::transient(), at(10)),
        HedgeStep::Send(1)
    );
    assert_eq!(
        h.failed(1, &Failure::transient(), at(20)),
        HedgeStep::Finished(Err(GiveUp::AttemptsExhausted))
    );
}

#[test]
fn a_non_idempotent_method_is_never_hedged() {
    let p = HedgingPolicy::builder()
        .max_attempts(3)
        .idempotency(Idempotency::NonIdempotent)
        .build()
        .unwrap();
    let mut h = Hedge::new(&p, at(0));
    assert_eq!(h.poll(at(0)), HedgeStep::Send(0));
    assert_eq!(h.poll(at(1000)), HedgeStep::WaitForAnswers);
    assert_eq!(
        h.failed(0, &Failure::transient(), at(1000)),
        HedgeStep::Finished(Err(GiveUp::AttemptsExhausted))
    );
}

#[test]
fn max_attempts_is_capped_at_five_and_at_least_two() {
    assert_eq!(policy(9, 1).max_attempts(), 5);
    assert_eq!(
        HedgingPolicy::builder()
            .max_attempts(1)
            .build()
            .unwrap_err()
            .field(),
        "maxAttempts"
    );
}

#[test]
fn a_hedge_shows_its_deadline_and_state() {
    let p = HedgingPolicy::builder()
        .max_attempts(2)
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut h = Hedge::new(&p, at(500));
    assert_eq!(h.deadline(), Some(at(1_500)));
    assert_eq!(h.poll(at(500)), HedgeStep::Send(0));
    assert_eq!(
        format!("{h:?}"),
        "Hedge { sent: 1, in_flight: 1, next_at: Instant { nanos: 600000000 }, stopped: None, finished: None, .. }"
    );
}

#[test]
fn the_client_cap_is_between_two_and_five() {
    let capped = |cap| {
        HedgingPolicy::builder()
            .max_attempts(5)
            .attempts_cap(cap)
            .build()
    };
    for cap in [2, 3, 5] {
        assert_eq!(capped(cap).unwrap().max_attempts(), cap);
    }
    for cap in [0, 1, 6, u32::MAX] {
        assert_eq!(
            capped(cap).unwrap_err().field(),
            "attempts_cap",
            "cap {cap}"
        );
    }
}

#[test]
fn answers_for_copies_not_in_flight_change_nothing() {
    let p = policy(3, 100);
    let mut h = Hedge::new(&p, at(0));
    assert_eq!(h.poll(at(0)), HedgeStep::Send(0));
    // Copies 1 and 7 were never sent; 8 and 9 are beyond any copy.
    for n in [1, 7, 8, 9, u32::MAX] {
        assert_eq!(h.succeeded(n, at(10)), HedgeStep::WaitUntil(at(100)));
        assert_eq!(
            h.failed(n, &Failure::permanent(), at(10)),
            HedgeStep::WaitUntil(at(100))
        );
    }
    assert_eq!(h.in_flight(), 1);
    // Copy 0 fails: it is no longer in flight, and a second answer from it
    // is ignored too.
    assert_eq!(
        h.failed(0, &Failure::transient(), at(20)),
        HedgeStep::Send(1)
    );
    assert_eq!(h.succeeded(0, at(20)), HedgeStep::WaitUntil(at(120)));
    assert_eq!(h.succeeded(1, at(30)), HedgeStep::Finished(Ok(1)));
    // After the end, answers change nothing either.
    assert_eq!(h.succeeded(1, at(40)), HedgeStep::Finished(Ok(1)));
    assert_eq!(
        h.failed(1, &Failure::permanent(), at(40)),
        HedgeStep::Finished(Ok(1))
    );
}

/// Found by the `hedge` fuzz target: without a deadline, a clock at the end
/// of time (`Instant::MAX`, the "no deadline" value) made the call give up
/// with `DeadlineExceeded`; and a deadline beyond the end of time is none.
#[test]
fn no_deadline_is_never_exceeded_even_at_the_end_of_time() {
    let p = policy(2, 100);
    let mut h = Hedge::new(&p, at(0));
    assert_eq!(h.deadline(), None);
    assert_eq!(h.poll(Instant::MAX), HedgeStep::Send(0));
    assert_eq!(h.poll(Instant::MAX), HedgeStep::Send(1));
    assert_eq!(h.poll(Instant::MAX), HedgeStep::WaitForAnswers);
    assert_eq!(h.succeeded(1, Instant::MAX), HedgeStep::Finished(Ok(1)));

    let far = HedgingPolicy::builder()
        .deadline(Duration::MAX)
        .build()
        .unwrap();
    let mut h = Hedge::new(&far, at(5));
    assert_eq!(h.deadline(), None);
    assert_eq!(h.poll(Instant::MAX), HedgeStep::Send(0));
}

proptest! {
    /// Whatever the answers and their times: never more than `max_attempts`
    /// copies, never a copy sent at or after the deadline, never more than
    /// one outcome, never a panic.
    #[test]
    fn any_schedule_keeps_the_limits(
        events in proptest::collection::vec((0u8..4, 0u32..5, 0u64..300), 0..30),
        attempts in 2u32..6,
        delay in 0u32..200,
        deadline in prop::option::of(1u32..2000),
    ) {
        let mut b = HedgingPolicy::builder().max_attempts(attempts).hedging_delay(MS * delay);
        if let Some(d) = deadline {
            b = b.deadline(MS * d);
        }
        let p = b.build().unwrap();
        let mut h = Hedge::new(&p, at(0));
        let mut now = 0;
        let mut sent = 0u32;
        let mut finished = None;
        for (kind, copy, dt) in events {
            now += dt;
            let step = match kind {
                0 => h.poll(at(now)),
                1 => h.succeeded(copy, at(now)),
                2 => h.failed(copy, &Failure::transient(), at(now)),
                _ => h.failed(copy, &Failure::overloaded().with_retry_after(RetryAfter::Delay(MS * 50)), at(now)),
            };
            let mut step = step;
            loop {
                match step {
                    HedgeStep::Send(n) => {
                        prop_assert_eq!(n, sent);
                        sent += 1;
                        prop_assert!(sent <= p.max_attempts());
                        if let Some(d) = deadline {
                            prop_assert!(now < u64::from(d));
                        }
                        step = h.poll(at(now));
                    }
                    HedgeStep::Finished(outcome) => {
                        if let Some(first) = finished {
                            prop_assert_eq!(first, outcome, "one outcome");
                        }
                        finished = Some(outcome);
                        break;
                    }
                    _ => break,
                }
            }
        }
    }
}
