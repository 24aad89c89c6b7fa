//! The loopback demo end to end, on a tiny configuration: 40 clients, runs
//! of 1.2 s with a 0.5 s brownout, counted in 100 ms ticks (about 3 s for
//! both runs).
//!
//! Real sockets and timers on a possibly loaded machine: the margins are
//! generous (the demo shows about 2.5× against 0.3× during the brownout; the
//! test asks for a factor of 2), and nothing is asserted about speed.

use std::time::Duration;

use stormguard_examples::loopback::{run, Config, Report, Strategy, MAX_ATTEMPTS};

fn tiny() -> Config {
    Config {
        clients: 40,
        length: Duration::from_millis(1200),
        brownout: Duration::from_millis(300)..Duration::from_millis(800),
        tick: Duration::from_millis(100),
        ..Config::standard()
    }
}

/// Properties every run must have, whatever the machine's speed.
fn check_bounded(config: &Config, report: &Report) {
    let who = report.strategy;
    assert_eq!(
        report.calls,
        config.calls() as u64,
        "{who:?}: every scheduled call ran"
    );
    assert!(
        report.attempts <= report.calls * u64::from(MAX_ATTEMPTS),
        "{who:?}: {} attempts for {} calls",
        report.attempts,
        report.calls
    );
    assert!(
        report.requests <= report.attempts,
        "{who:?}: the server saw {} requests from {} attempts",
        report.requests,
        report.attempts
    );
    assert_eq!(report.open_sockets, 0, "{who:?}: every socket closed");
    assert!(
        report.peak_sockets > 0,
        "{who:?}: real connections were made"
    );
    assert_eq!(report.ticks.len(), 12);
    assert_eq!(report.ticks.iter().filter(|t| t.brownout).count(), 5);
}

#[test]
fn naive_retries_storm_and_stormguard_does_not() {
    let config = tiny();
    let naive = run(&config, Strategy::Naive).expect("naive run");
    let guarded = run(&config, Strategy::Stormguard).expect("stormguard run");
    check_bounded(&config, &naive);
    check_bounded(&config, &guarded);

    // Before the brownout both offer the calls (70 % of capacity) and get
    // answers: the server and the clients really talk.
    assert!(naive.successes > 0 && guarded.successes > 0);

    // The storm: retried failures pile onto the slowed-down server.
    let (storm, calm) = (naive.load_during_brownout(), guarded.load_during_brownout());
    eprintln!(
        "during the brownout: naive {storm:.2}×, stormguard {calm:.2}×; attempts per call: \
         naive {:.2}, stormguard {:.2}",
        naive.attempts_per_call(),
        guarded.attempts_per_call()
    );
    assert!(
        storm > 1.0,
        "naive retries offer more than the capacity in the brownout: {storm:.2}×"
    );
    assert!(
        storm > 2.0 * calm,
        "naive {storm:.2}× against stormguard {calm:.2}× during the brownout"
    );
    assert!(
        guarded.attempts_per_call() <= naive.attempts_per_call(),
        "stormguard {:.2} attempts per call, naive {:.2}",
        guarded.attempts_per_call(),
        naive.attempts_per_call()
    );
}

#[test]
fn invalid_configuration_is_an_error_not_a_panic() {
    let mut config = tiny();
    config.brownout = Duration::from_secs(5)..Duration::from_secs(6); // after the end
    let err = run(&config, Strategy::Naive).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("brownout"), "{err}");
}
