//! The brownout simulator for the browser: `stormguard-sim`'s [`Sim`] behind
//! plain WebAssembly exports, for the playground page (`playground/`).
//!
//! The page is a static file with a small script; it loads this crate built
//! for `wasm32-unknown-unknown` (`./scripts/playground`) and calls the
//! exports below by name. Every export takes and returns numbers only — no
//! strings, no pointers into the module's memory, no JavaScript glue to
//! generate — so the page needs no build step and the crate no
//! `wasm-bindgen`. A `u64` (the seed) is a JavaScript `BigInt`; counts come
//! back as `f64` (exact below 2⁵³); "none" is `-1`.
//!
//! One simulation lives in the module at a time, with the settings of the
//! clients beside it. The page's loop is: set the clients
//! ([`sg_set_clients`] or [`sg_preset`]), [`sg_start`] with a seed, then per
//! animation frame [`sg_advance_to`] a few virtual milliseconds further and
//! read the meters. Settings and the trigger may change at any time, and
//! apply from that virtual instant on, as in [`Sim::set_clients`] and
//! [`Sim::set_trigger`].
//!
//! The numbers are the simulator's own: with a table preset and
//! `scripted`, the run is exactly the one `./scripts/run` prints for the
//! same seed.
//!
//! ```
//! use stormguard_playground::*;
//! assert_eq!(sg_preset(1), OK); // naive: 3 immediate retries
//! assert_eq!(sg_start(1, 0), OK); // seed 1, the trigger by hand
//! sg_set_trigger(1);
//! sg_advance_to(4_000.0);
//! sg_set_trigger(0);
//! sg_advance_to(8_000.0);
//! assert_eq!(sg_metastable(), 1);
//! ```
//!
//! # Unsafe code
//!
//! None runs: the only unsafe construct is the `#[unsafe(no_mangle)]`
//! attribute on each export, which makes it a WebAssembly export under its
//! own name (two exports of one name would clash at link time, hence the
//! lint). The workspace forbids unsafe code; this crate denies it and allows
//! it on the exports' module alone.

use std::cell::RefCell;

use core::time::Duration;

use stormguard_sim::{
    page_ms, Clients, Config, Scenario, Sim, SimError, Summary, METASTABLE_AFTER, THROTTLE_RATIO,
    THROTTLE_TOKENS,
};

mod exports;

pub use exports::*;

/// What an export that changes something returns when it did.
pub const OK: i32 = 0;
/// A setting's code is out of range (a backoff, budget or method number
/// that does not exist, a preset past the table).
pub const BAD_CODE: i32 = -1;
/// stormguard refused the settings (e.g. a `Throttle` of 0 tokens, or a
/// ratio above 1); nothing changed.
pub const INVALID: i32 = -2;

/// The playground's state: the clients' settings, and the run.
struct Playground {
    clients: Clients,
    /// The `Throttle`'s size and ratio, kept while another budget is chosen.
    throttle: (u32, f64),
    sim: Option<Sim>,
}

thread_local! {
    // A wasm module runs on one thread; natively each test thread has its own.
    static PLAYGROUND: RefCell<Playground> = const {
        RefCell::new(Playground {
            clients: Scenario::Naive.clients(),
            throttle: (THROTTLE_TOKENS, THROTTLE_RATIO),
            sim: None,
        })
    };
}

fn with<R>(f: impl FnOnce(&mut Playground) -> R) -> R {
    PLAYGROUND.with(|p| f(&mut p.borrow_mut()))
}

/// A readout of the run, or `none` when there is no run.
fn read<R>(none: R, f: impl FnOnce(&Sim) -> R) -> R {
    with(|p| p.sim.as_ref().map_or(none, f))
}

fn summary<R>(f: impl FnOnce(Summary) -> R, none: R) -> R {
    read(none, |sim| f(sim.summary()))
}

fn code(result: Result<(), SimError>) -> i32 {
    match result {
        Ok(()) => OK,
        Err(_) => INVALID,
    }
}

/// The page's world: the table's (`Config::standard`).
fn world() -> Config {
    Config::standard()
}

fn millis(d: Duration) -> f64 {
    page_ms(d)
}

/// A count as the page reads it.
fn count(n: u64) -> f64 {
    n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use stormguard_sim::simulate;

    /// Each test thread has its own playground (thread-local), so tests do
    /// not see each other's runs.
    #[test]
    fn a_scripted_preset_is_the_tables_run() {
        for (i, &scenario) in Scenario::ALL.iter().enumerate() {
            let native = simulate(&world(), scenario, 1).unwrap();
            assert_eq!(sg_preset(i as u32), OK);
            assert_eq!(sg_start(1, 1), OK);
            // As the page does: a frame at a time.
            let mut t = 0.0;
            while t < 31_000.0 {
                t += 16.7;
                sg_advance_to(t);
            }
            assert_eq!(sg_buckets() as usize, native.offered_load.len());
            for (b, &load) in native.offered_load.iter().enumerate() {
                assert_eq!(sg_offered_at(b as u32), load, "{scenario}: bucket {b}");
            }
            sg_run_to_end();
            assert_eq!(sg_peak_load(), native.peak_offered_load, "{scenario}");
            assert_eq!(sg_goodput(), native.goodput, "{scenario}");
            assert_eq!(sg_attempts_per_call(), native.attempts_per_call);
            let recovered = native.recovered_after.map_or(-1.0, millis);
            assert_eq!(sg_recovered_after_ms(), recovered, "{scenario}");
        }
    }

    /// What `brownout --settings` runs for a free-play run is what the
    /// exports did: a custom setting, the trigger by hand and a change of
    /// the settings mid-run, recorded at the times the page reads from
    /// `sg_now_ms` (the browser test checks the page's own recording).
    #[test]
    fn a_recorded_free_play_run_replays_natively() {
        use stormguard_sim::{page_time, BackoffKind, BudgetKind, Change, Method, Recording};
        let clients = |retries, breaker| Clients {
            retries,
            backoff: BackoffKind::FullJitter,
            budget: BudgetKind::RetryBudget,
            breaker,
            adaptive: false,
            method: Method::ChargeWithKey,
        };
        assert_eq!(sg_set_clients(3, 2, 2, 10, 0.1, 1, 0, 3), OK);
        assert_eq!(sg_start(7, 0), OK);
        let mut changes = Vec::new();
        let mut t = 0.0;
        let mut frames_to = |to: f64| {
            while t < to {
                t = (t + 16.7_f64).min(to);
                sg_advance_to(t);
            }
        };
        frames_to(1_000.3);
        sg_set_trigger(1);
        changes.push((page_time(sg_now_ms()), Change::Trigger(true)));
        frames_to(2_500.0);
        assert_eq!(sg_set_clients(4, 2, 2, 10, 0.1, 1, 0, 3), OK);
        changes.push((page_time(sg_now_ms()), Change::Clients(clients(4, true))));
        frames_to(6_000.0);
        sg_set_trigger(0);
        changes.push((page_time(sg_now_ms()), Change::Trigger(false)));
        frames_to(9_050.0);
        let recording = Recording {
            scripted: false,
            clients: clients(3, true),
            changes,
            until: Some(page_time(sg_now_ms())),
        };
        let native = recording.replay(&world(), 7).unwrap();
        assert_eq!(sg_buckets() as usize, native.buckets());
        for b in 0..native.buckets() {
            assert_eq!(
                sg_offered_at(b as u32),
                native.offered_load_at(b),
                "bucket {b}"
            );
        }
        assert_eq!(sg_attempts(), count(native.attempts()));
        assert_eq!(sg_replayed(), count(native.replayed()));
        assert!(sg_replayed() > 0.0);
    }

    #[test]
    fn settings_round_trip_and_bad_ones_change_nothing() {
        assert_eq!(sg_set_clients(5, 2, 1, 20, 0.25, 1, 1, 3), OK);
        assert_eq!(
            (sg_retries(), sg_backoff(), sg_budget(), sg_max_tokens()),
            (5, 2, 1, 20)
        );
        assert_eq!(sg_token_ratio(), 0.25);
        assert_eq!((sg_breaker(), sg_adaptive(), sg_method()), (1, 1, 3));
        assert_eq!(sg_set_clients(1, 3, 0, 10, 0.1, 0, 0, 0), BAD_CODE);
        assert_eq!(sg_set_clients(1, 0, 1, 0, 0.1, 0, 0, 0), INVALID);
        assert_eq!(sg_set_clients(1, 0, 0, 10, 0.1, 0, 0, 9), BAD_CODE);
        assert_eq!(sg_preset(8), BAD_CODE);
        assert_eq!(sg_retries(), 5);
    }

    #[test]
    fn no_run_reads_as_none() {
        assert_eq!(sg_now_ms(), 0.0);
        assert_eq!(sg_throttle_fill(), -1.0);
        assert_eq!(sg_metastable(), 0);
        assert_eq!(sg_buckets(), 0);
    }
}
