//! The WebAssembly exports, by name; numbers in, numbers out.
//!
//! Every function here is `#[unsafe(no_mangle)] pub extern "C"`: exported
//! from the module under its own name. That attribute is the crate's only
//! unsafe code (see the crate docs), allowed on this module alone.
#![allow(unsafe_code)]

use stormguard_sim::{
    page_time, BackoffKind, BudgetKind, Clients, Method, Scenario, Sim, THROTTLE_RATIO,
    THROTTLE_TOKENS,
};

use super::{
    code, count, millis, read, summary, with, world, BAD_CODE, INVALID, METASTABLE_AFTER, OK,
};

/// Sets how the clients call: `retries` per call; `backoff` 0 none, 1
/// exponential, 2 exponential with full jitter; `budget` 0 off, 1 a
/// `Throttle` of `max_tokens` earning `token_ratio` per success, 2 a
/// `RetryBudget`; `breaker` and `adaptive` 0 or 1; `method` 0 `greet`, 1
/// `charge` without a key, 2 `charge` declared non-idempotent, 3 `charge`
/// with an idempotency key. A running simulation applies them to the calls
/// it starts from now on.
///
/// Returns [`OK`], [`BAD_CODE`] or [`INVALID`] (then nothing changed).
///
/// ```
/// use stormguard_playground::*;
/// assert_eq!(sg_set_clients(3, 2, 1, 10, 0.1, 0, 0, 0), OK); // the table's Throttle
/// assert_eq!(sg_set_clients(3, 2, 1, 0, 0.1, 0, 0, 0), INVALID); // no tokens
/// ```
#[allow(clippy::too_many_arguments)] // one number per control of the page
#[unsafe(no_mangle)]
pub extern "C" fn sg_set_clients(
    retries: u32,
    backoff: u32,
    budget: u32,
    max_tokens: u32,
    token_ratio: f64,
    breaker: u32,
    adaptive: u32,
    method: u32,
) -> i32 {
    // The codes are the simulator's (`BackoffKind::from_code` and the
    // others), so `brownout --settings` reads the page's export with the
    // same table.
    let (Some(backoff), Some(budget_kind), Some(method)) = (
        BackoffKind::from_code(backoff),
        BudgetKind::from_code(budget, max_tokens, token_ratio),
        Method::from_code(method),
    ) else {
        return BAD_CODE;
    };
    if breaker > 1 || adaptive > 1 {
        return BAD_CODE;
    }
    let clients = Clients {
        retries,
        backoff,
        budget: budget_kind,
        breaker: breaker == 1,
        adaptive: adaptive == 1,
        method,
    };
    // The throttle's numbers are kept even while another budget is chosen.
    apply(clients, (max_tokens, token_ratio))
}

/// Applies valid settings (to the run too), or changes nothing.
fn apply(clients: Clients, throttle: (u32, f64)) -> i32 {
    with(|p| {
        let valid = match p.sim.as_mut() {
            Some(sim) => code(sim.set_clients(&clients)),
            None => code(clients.validate().map_err(Into::into)),
        };
        if valid == OK {
            p.clients = clients;
            p.throttle = throttle;
        }
        valid
    })
}

/// Sets the clients to one of the table's scenarios, in table order (0 no
/// retries, 1 naive, 2 exponential backoff, 3 full jitter, 4 + `Throttle`,
/// 5 + `RetryBudget`, 6 + `Throttle` + breaker, 7 + `Throttle` + adaptive
/// throttle), calling `greet`. Read the settings back with [`sg_retries`]
/// and the others.
///
/// ```
/// use stormguard_playground::*;
/// assert_eq!(sg_preset(4), OK);
/// assert_eq!((sg_budget(), sg_max_tokens()), (1, 10));
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_preset(index: u32) -> i32 {
    match Scenario::ALL.get(index as usize) {
        Some(scenario) => apply(scenario.clients(), (THROTTLE_TOKENS, THROTTLE_RATIO)),
        None => BAD_CODE,
    }
}

/// How many presets there are: the table's scenarios.
///
/// ```
/// assert_eq!(stormguard_playground::sg_presets(), 8);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_presets() -> u32 {
    Scenario::ALL.len() as u32
}

/// The retries per call.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(0);
/// assert_eq!(sg_retries(), 0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_retries() -> u32 {
    with(|p| p.clients.retries)
}

/// The backoff's code (see [`sg_set_clients`]).
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(3);
/// assert_eq!(sg_backoff(), 2); // full jitter
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_backoff() -> u32 {
    with(|p| p.clients.backoff.code())
}

/// The budget's code (see [`sg_set_clients`]).
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(5);
/// assert_eq!(sg_budget(), 2); // a RetryBudget
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_budget() -> u32 {
    with(|p| p.clients.budget.code())
}

/// The `Throttle`'s size, kept while another budget is chosen.
///
/// ```
/// use stormguard_playground::*;
/// sg_set_clients(3, 0, 0, 40, 0.5, 0, 0, 0);
/// assert_eq!(sg_max_tokens(), 40);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_max_tokens() -> u32 {
    with(|p| p.throttle.0)
}

/// The `Throttle`'s token ratio, kept while another budget is chosen.
///
/// ```
/// use stormguard_playground::*;
/// sg_set_clients(3, 0, 0, 40, 0.5, 0, 0, 0);
/// assert_eq!(sg_token_ratio(), 0.5);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_token_ratio() -> f64 {
    with(|p| p.throttle.1)
}

/// 1 when each client has a circuit breaker.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(6);
/// assert_eq!(sg_breaker(), 1);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_breaker() -> u32 {
    with(|p| u32::from(p.clients.breaker))
}

/// 1 when each client has an adaptive throttle.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(7);
/// assert_eq!(sg_adaptive(), 1);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_adaptive() -> u32 {
    with(|p| u32::from(p.clients.adaptive))
}

/// The method's code (see [`sg_set_clients`]).
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(1);
/// assert_eq!(sg_method(), 0); // greet
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_method() -> u32 {
    with(|p| p.clients.method.code())
}

/// Starts a new run with the current settings and `seed`: open-ended with
/// the trigger by hand when `scripted` is 0; the table's run (the trigger
/// from 5 s to 15 s, calls for 30 s) when it is 1. The clock is at zero.
///
/// ```
/// use stormguard_playground::*;
/// assert_eq!(sg_start(7, 1), OK);
/// assert_eq!(sg_now_ms(), 0.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_start(seed: u64, scripted: u32) -> i32 {
    with(|p| {
        let sim = match scripted {
            0 => Sim::open_ended(&world(), &p.clients, seed),
            1 => Sim::new(&world(), &p.clients, seed),
            _ => return BAD_CODE,
        };
        match sim {
            Ok(sim) => {
                p.sim = Some(sim);
                OK
            }
            Err(_) => INVALID,
        }
    })
}

/// Runs the simulation to virtual time `ms` (milliseconds since the start;
/// an earlier time changes nothing).
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 0);
/// sg_advance_to(1_500.0);
/// assert_eq!(sg_now_ms(), 1_500.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_advance_to(ms: f64) {
    // Whole microseconds, so the page's fractional frames add up exactly;
    // `brownout --settings` reads a recorded time with the same function.
    let t = page_time(ms);
    with(|p| {
        if let Some(sim) = p.sim.as_mut() {
            sim.advance_to(t);
        }
    });
}

/// Runs a scripted run to its end (every call finished), for its table
/// row; an open-ended run never ends, and this does nothing there.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(0);
/// sg_start(1, 1);
/// sg_run_to_end();
/// assert!(sg_goodput() > 0.5);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_run_to_end() {
    with(|p| {
        if let Some(sim) = p.sim.as_mut() {
            sim.run_to_end();
        }
    });
}

/// Pulls the trigger (1) or clears it (0) at the current virtual time.
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 0);
/// sg_set_trigger(1);
/// assert_eq!(sg_trigger(), 1);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_set_trigger(on: u32) {
    with(|p| {
        if let Some(sim) = p.sim.as_mut() {
            sim.set_trigger(on != 0);
        }
    });
}

/// 1 while the trigger holds.
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 0);
/// assert_eq!(sg_trigger(), 0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_trigger() -> u32 {
    read(0, |sim| u32::from(sim.trigger()))
}

/// When the latest trigger cleared, in virtual milliseconds; -1 if it has
/// not.
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 1);
/// sg_advance_to(16_000.0);
/// assert_eq!(sg_trigger_cleared_ms(), 15_000.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_trigger_cleared_ms() -> f64 {
    read(-1.0, |sim| sim.trigger_cleared_at().map_or(-1.0, millis))
}

/// The virtual clock, in milliseconds.
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 0);
/// sg_advance_to(20.5);
/// assert_eq!(sg_now_ms(), 20.5);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_now_ms() -> f64 {
    read(0.0, |sim| millis(sim.now()))
}

/// The offered load over the last second, × the backend's capacity: the
/// meter.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(0);
/// sg_start(1, 0);
/// sg_advance_to(3_000.0);
/// assert!(sg_load() > 0.7 && sg_load() < 0.9);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_load() -> f64 {
    read(0.0, Sim::recent_offered_load)
}

/// 1 when the run is metastable: the trigger cleared at least
/// [`sg_metastable_after_ms`] ago and the load is still above capacity.
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 0);
/// assert_eq!(sg_metastable(), 0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_metastable() -> u32 {
    read(0, |sim| u32::from(sim.is_metastable()))
}

/// How long after the trigger clears the METASTABLE badge may show, in
/// milliseconds.
///
/// ```
/// assert_eq!(stormguard_playground::sg_metastable_after_ms(), 2_000.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_metastable_after_ms() -> f64 {
    millis(METASTABLE_AFTER)
}

/// The clients' `Throttle` buckets' mean fill (0 to 1; retries pause at or
/// below 0.5); -1 when the budget is not a `Throttle`.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(4);
/// sg_start(1, 0);
/// assert_eq!(sg_throttle_fill(), 1.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_throttle_fill() -> f64 {
    read(-1.0, |sim| sim.throttle_fill().unwrap_or(-1.0))
}

/// The retries a client's `RetryBudget` allows now, on average; -1 when
/// the budget is not a `RetryBudget`.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(5);
/// sg_start(1, 0);
/// sg_advance_to(2_000.0);
/// assert!(sg_retry_budget() > 0.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_retry_budget() -> f64 {
    read(-1.0, |sim| sim.retry_budget_available().unwrap_or(-1.0))
}

/// Logical calls that succeeded per second, over the last second.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(0);
/// sg_start(1, 0);
/// sg_advance_to(3_000.0);
/// assert!(sg_successes_per_sec() > 700.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_successes_per_sec() -> f64 {
    read(0.0, Sim::successes_per_sec)
}

/// Charges the backend ran.
///
/// ```
/// use stormguard_playground::*;
/// sg_set_clients(3, 0, 0, 10, 0.1, 0, 0, 1); // charge, no key
/// sg_start(1, 0);
/// sg_advance_to(1_000.0);
/// assert!(sg_charges() > 700.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_charges() -> f64 {
    read(0.0, |sim| count(sim.charges()))
}

/// Double charges: charges of a call beyond its first.
///
/// ```
/// use stormguard_playground::*;
/// sg_set_clients(3, 0, 0, 10, 0.1, 0, 0, 3); // charge with a key
/// sg_start(1, 0);
/// sg_set_trigger(1);
/// sg_advance_to(3_000.0);
/// assert_eq!(sg_double_charges(), 0.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_double_charges() -> f64 {
    read(0.0, |sim| count(sim.double_charges()))
}

/// Repeats of keyed charges answered from the backend's idempotency table.
///
/// ```
/// use stormguard_playground::*;
/// sg_set_clients(3, 0, 0, 10, 0.1, 0, 0, 3); // charge with a key
/// sg_start(1, 0);
/// sg_set_trigger(1);
/// sg_advance_to(3_000.0);
/// assert!(sg_replayed() > 0.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_replayed() -> f64 {
    read(0.0, |sim| count(sim.replayed()))
}

/// Calls stopped because a retry would have replayed a non-idempotent
/// request that may have run.
///
/// ```
/// use stormguard_playground::*;
/// sg_set_clients(3, 0, 0, 10, 0.1, 0, 0, 2); // charge, declared
/// sg_start(1, 0);
/// sg_set_trigger(1);
/// sg_advance_to(3_000.0);
/// assert!(sg_unsafe_refused() > 0.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_unsafe_refused() -> f64 {
    read(0.0, |sim| count(sim.unsafe_replays_refused()))
}

/// Requests waiting in the backend's queue.
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 0);
/// assert_eq!(sg_queue_len(), 0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_queue_len() -> u32 {
    read(0, |sim| u32::try_from(sim.queue_len()).unwrap_or(u32::MAX))
}

/// The backend's queue limit.
///
/// ```
/// assert_eq!(stormguard_playground::sg_queue_limit(), 200);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_queue_limit() -> u32 {
    world().queue_limit
}

/// Client processes (each with its own budget, breaker and throttle).
///
/// ```
/// assert_eq!(stormguard_playground::sg_client_processes(), 10);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_client_processes() -> u32 {
    world().clients
}

/// The backend's healthy capacity, calls per second.
///
/// ```
/// assert_eq!(stormguard_playground::sg_capacity_per_sec(), 1000.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_capacity_per_sec() -> f64 {
    world().capacity_per_sec()
}

/// How many clients' breakers are open.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(6);
/// sg_start(1, 0);
/// assert_eq!(sg_open_breakers(), 0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_open_breakers() -> u32 {
    read(0, Sim::open_breakers)
}

/// The adaptive throttles' mean rejection probability; -1 without them.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(7);
/// sg_start(1, 0);
/// assert_eq!(sg_reject_probability(), 0.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_reject_probability() -> f64 {
    read(-1.0, |sim| {
        sim.adaptive_reject_probability().unwrap_or(-1.0)
    })
}

/// Logical calls started so far.
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 0);
/// sg_advance_to(1_000.0);
/// assert!(sg_calls_started() > 700.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_calls_started() -> f64 {
    read(0.0, |sim| count(sim.calls_started()))
}

/// Logical calls that succeeded so far.
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 0);
/// sg_advance_to(1_000.0);
/// assert!(sg_calls_succeeded() > 600.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_calls_succeeded() -> f64 {
    read(0.0, |sim| count(sim.calls_succeeded()))
}

/// Attempts that reached the backend so far.
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 0);
/// sg_advance_to(1_000.0);
/// assert!(sg_attempts() >= sg_calls_started() * 0.9);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_attempts() -> f64 {
    read(0.0, |sim| count(sim.attempts()))
}

/// How many buckets of offered load there are so far (the current one
/// included); 0 without a run.
///
/// ```
/// use stormguard_playground::*;
/// sg_start(1, 0);
/// sg_advance_to(950.0);
/// assert_eq!(sg_buckets(), 10);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_buckets() -> u32 {
    read(0, |sim| u32::try_from(sim.buckets()).unwrap_or(u32::MAX))
}

/// The offered load in bucket `i` (× capacity): the chart's points and the
/// page's export.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(0);
/// sg_start(1, 0);
/// sg_advance_to(1_000.0);
/// assert!(sg_offered_at(3) > 0.5);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_offered_at(i: u32) -> f64 {
    read(0.0, |sim| sim.offered_load_at(i as usize))
}

/// A bucket's length, in milliseconds.
///
/// ```
/// assert_eq!(stormguard_playground::sg_bucket_ms(), 100.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_bucket_ms() -> f64 {
    millis(world().bucket)
}

/// When the trigger is pulled in a scripted run (the table's), in
/// milliseconds.
///
/// ```
/// assert_eq!(stormguard_playground::sg_table_trigger_start_ms(), 5_000.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_table_trigger_start_ms() -> f64 {
    millis(world().brownout_start)
}

/// When the trigger clears in a scripted run, in milliseconds.
///
/// ```
/// assert_eq!(stormguard_playground::sg_table_trigger_end_ms(), 15_000.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_table_trigger_end_ms() -> f64 {
    millis(world().brownout_end)
}

/// How long calls start in a scripted run, in milliseconds: its series
/// end there.
///
/// ```
/// assert_eq!(stormguard_playground::sg_table_duration_ms(), 30_000.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_table_duration_ms() -> f64 {
    millis(world().duration)
}

/// The table's "peak load" for the run so far.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(1);
/// sg_start(1, 1);
/// sg_run_to_end();
/// assert!(sg_peak_load() > 3.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_peak_load() -> f64 {
    summary(|s| s.peak_offered_load, 0.0)
}

/// The table's "after clear" load.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(1);
/// sg_start(1, 1);
/// sg_run_to_end();
/// assert!(sg_load_after_trigger() > 3.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_load_after_trigger() -> f64 {
    summary(|s| s.offered_load_after_trigger, 0.0)
}

/// The table's "recovered", in milliseconds after the trigger cleared; -1
/// for never.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(1);
/// sg_start(1, 1);
/// sg_run_to_end();
/// assert_eq!(sg_recovered_after_ms(), -1.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_recovered_after_ms() -> f64 {
    summary(|s| s.recovered_after.map_or(-1.0, millis), -1.0)
}

/// The table's "goodput": the share of logical calls that succeeded.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(1);
/// sg_start(1, 1);
/// sg_run_to_end();
/// assert!(sg_goodput() < 0.2);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_goodput() -> f64 {
    summary(|s| s.goodput, 0.0)
}

/// The table's "attempts/call".
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(0);
/// sg_start(1, 1);
/// sg_run_to_end();
/// assert_eq!(sg_attempts_per_call(), 1.0);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_attempts_per_call() -> f64 {
    summary(|s| s.attempts_per_call, 0.0)
}

/// The share of served requests whose caller had given up.
///
/// ```
/// use stormguard_playground::*;
/// sg_preset(1);
/// sg_start(1, 1);
/// sg_run_to_end();
/// assert!(sg_wasted_work() > 0.6);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn sg_wasted_work() -> f64 {
    summary(|s| s.wasted_work, 0.0)
}
