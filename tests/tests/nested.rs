//! "Retry at one layer": three layers that each retry 3 times cost
//! 3³ = 27 calls at the bottom when every layer retries blindly, and 3 when
//! each layer reports its give-up as already retried.

use core::cell::Cell;
use core::time::Duration;

use stormguard::{Backoff, Decision, Failure, Instant, NoBudget, Retry, RetryPolicy};

/// One layer: retries `call` under `policy`; on giving up, reports either a
/// plain transient failure (blind) or the give-up marked as already retried.
fn layer(
    policy: &RetryPolicy,
    mark: bool,
    call: &dyn Fn() -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut retry = Retry::with_seed(policy, Instant::ZERO, 7);
    loop {
        match call() {
            Ok(()) => return Ok(()),
            Err(failure) => match retry.on_failure(&failure, Instant::ZERO, &NoBudget) {
                Decision::Retry { .. } => continue,
                Decision::GiveUp(reason) if mark => return Err(reason.into_failure()),
                Decision::GiveUp(_) => return Err(Failure::transient()),
            },
        }
    }
}

fn pool_calls(layers: u32, mark: bool) -> u32 {
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::ZERO))
        .build()
        .unwrap();
    let calls = Cell::new(0u32);
    let dead_pool = || -> Result<(), Failure> {
        calls.set(calls.get() + 1);
        Err(Failure::transient())
    };
    fn nest<'a>(
        depth: u32,
        policy: &'a RetryPolicy,
        mark: bool,
        bottom: &'a dyn Fn() -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        if depth == 0 {
            bottom()
        } else {
            layer(policy, mark, &|| nest(depth - 1, policy, mark, bottom))
        }
    }
    assert!(nest(layers, &policy, mark, &dead_pool).is_err());
    calls.get()
}

#[test]
fn three_blind_layers_cost_27_pool_calls() {
    assert_eq!(pool_calls(3, false), 27);
    assert_eq!(pool_calls(2, false), 9);
}

#[test]
fn retry_at_one_layer_costs_3() {
    assert_eq!(pool_calls(3, true), 3);
    assert_eq!(pool_calls(5, true), 3);
}
