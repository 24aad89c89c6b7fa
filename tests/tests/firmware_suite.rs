//! The suite the firmware runs on an emulated Cortex-M0 (`tests/firmware`,
//! run by scripts/test under QEMU), run here on the host, unchanged.
//!
//! Its tables — backoff schedules to the nanosecond for every jitter, the
//! budgets' arithmetic, the driver's virtual times — hold on both, so the
//! chip computes the same numbers as the host for the same seed: a table
//! that one side stopped matching fails on that side.

#[macro_use]
#[path = "../firmware/src/suite/mod.rs"]
#[allow(dead_code)] // the firmware uses some items the host run does not
mod suite;

struct Stdout;

impl suite::Report for Stdout {
    fn line(&mut self, line: std::fmt::Arguments<'_>) {
        println!("{line}");
    }
}

#[test]
fn the_firmware_suite_passes_on_the_host() {
    let summary = suite::run(&mut Stdout);
    assert_eq!(summary.failed, 0, "{summary:?}: see the FAIL lines above");
    assert_eq!(summary.tests as usize, suite::TESTS.len());
    assert!(summary.passed > 200, "{summary:?}");
}

/// A failing check is counted as a failure (and so fails the firmware's run).
#[test]
fn a_failing_check_is_counted() {
    let mut out = Stdout;
    let mut checks = suite::Checks::new(&mut out);
    checks.run("fails on purpose", |c| {
        check!(c, 1 + 1 == 3);
        check_eq!(c, 2, 2);
    });
    let summary = checks.summary(1);
    assert_eq!((summary.passed, summary.failed), (1, 1));
}
