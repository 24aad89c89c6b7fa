//! The checks the firmware runs on the emulated Cortex-M0 — and, unchanged,
//! on the host (`tests/tests/firmware_suite.rs` includes this module), so
//! every number below is the same on a 32-bit chip without compare-and-swap
//! or a divider as on x86-64.
//!
//! `no_std`, no allocation, nothing target-specific: the chip's `main.rs`
//! and the host test only supply a [`Report`] (where the lines go). A failed
//! check is recorded and the run goes on, so one run shows every failure;
//! the caller turns [`Summary::failed`] into the verdict (QEMU's exit code on
//! the chip, a failed `#[test]` on the host).

use core::fmt;

/// Records a check: `check!(checks, condition)` or with a message format.
macro_rules! check {
    ($checks:expr, $cond:expr) => {
        $checks.check($cond, stringify!($cond), line!(), format_args!(""))
    };
    ($checks:expr, $cond:expr, $($msg:tt)+) => {
        $checks.check($cond, stringify!($cond), line!(), format_args!($($msg)+))
    };
}

/// Records an equality check, printing both sides when they differ.
macro_rules! check_eq {
    ($checks:expr, $left:expr, $right:expr) => {
        match (&$left, &$right) {
            (left, right) => $checks.check(
                *left == *right,
                concat!(stringify!($left), " == ", stringify!($right)),
                line!(),
                format_args!("left: {:?}, right: {:?}", left, right),
            ),
        }
    };
}

pub mod backoff;
pub mod breaker;
pub mod budgets;
pub mod call;
pub mod driver;
pub mod executor;
pub mod retry;
pub mod table;

/// Where the suite's lines go: semihosting on the chip, stdout on the host.
pub trait Report {
    /// Writes one line.
    fn line(&mut self, line: fmt::Arguments<'_>);
}

/// The checks of one run: counts, and the test they belong to.
pub struct Checks<'r> {
    report: &'r mut dyn Report,
    test: &'static str,
    passed: u32,
    failed: u32,
}

/// How a run went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Checks that held.
    pub passed: u32,
    /// Checks that failed.
    pub failed: u32,
    /// Tests run.
    pub tests: u32,
}

impl<'r> Checks<'r> {
    /// Checks that report to `report`.
    pub fn new(report: &'r mut dyn Report) -> Self {
        Checks {
            report,
            test: "",
            passed: 0,
            failed: 0,
        }
    }

    /// Records one check; prints it when it failed.
    pub fn check(&mut self, ok: bool, what: &str, line: u32, detail: fmt::Arguments<'_>) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.report.line(format_args!(
                "FAIL {} (line {}): {} {}",
                self.test, line, what, detail
            ));
        }
    }

    /// Writes a line to the report.
    pub fn note(&mut self, line: fmt::Arguments<'_>) {
        self.report.line(line);
    }

    /// Runs `test` under `name`, printing whether it passed.
    pub fn run(&mut self, name: &'static str, test: Test) {
        self.test = name;
        let before = self.failed;
        test(self);
        let verdict = if self.failed == before {
            "ok"
        } else {
            "FAILED"
        };
        self.report.line(format_args!("test {name} ... {verdict}"));
    }

    /// The counts so far.
    pub fn summary(&self, tests: u32) -> Summary {
        Summary {
            passed: self.passed,
            failed: self.failed,
            tests,
        }
    }
}

/// One test: it records its checks.
pub type Test = fn(&mut Checks<'_>);

/// Every test of the suite, by name.
pub const TESTS: &[(&str, Test)] = &[
    (
        "backoff::schedules_for_every_jitter",
        backoff::schedules_for_every_jitter,
    ),
    (
        "backoff::extreme_retry_numbers",
        backoff::extreme_retry_numbers,
    ),
    ("budgets::throttle_grpc_a6", budgets::throttle_grpc_a6),
    ("budgets::retry_budget", budgets::retry_budget),
    ("budgets::rate_budget", budgets::rate_budget),
    ("budgets::cost_bucket", budgets::cost_bucket),
    ("breaker::full_cycle", breaker::full_cycle),
    (
        "breaker::abandoned_and_stale_permits",
        breaker::abandoned_and_stale_permits,
    ),
    ("breaker::failure_rate", breaker::failure_rate),
    ("retry::every_gate", retry::every_gate),
    ("retry::server_delay", retry::server_delay),
    ("call::lifecycle", call::lifecycle),
    ("call::breaker_rules", call::breaker_rules),
    ("table::idempotency_table", table::idempotency_table),
    (
        "driver::retries_on_virtual_time",
        driver::retries_on_virtual_time,
    ),
    ("driver::every_give_up", driver::every_give_up),
    (
        "driver::timeouts_and_cancellation",
        driver::timeouts_and_cancellation,
    ),
    ("driver::seeded_schedule", driver::seeded_schedule),
    ("sizes", sizes),
];

/// Runs every test; the caller turns the summary into a verdict.
pub fn run(report: &mut dyn Report) -> Summary {
    let mut checks = Checks::new(report);
    for (name, test) in TESTS {
        checks.run(name, *test);
    }
    let summary = checks.summary(TESTS.len() as u32);
    checks.note(format_args!(
        "{} passed, {} failed",
        summary.passed, summary.failed
    ));
    summary
}

/// The sizes the documentation promises hold on this target too; and the
/// state a call keeps on the stack, printed for scripts/footprint.
pub fn sizes(c: &mut Checks<'_>) {
    use core::future::{ready, IntoFuture, Ready};
    use core::mem::{size_of, size_of_val};
    use core::time::Duration;
    use stormguard::driver::RetryExt;
    use stormguard::{Call, CircuitBreaker, Retry, RetryPolicy, Throttle};

    check!(c, size_of::<Retry<&RetryPolicy>>() <= 48);
    check_eq!(c, size_of::<Throttle>(), 12);
    let policy = RetryPolicy::default();
    let Ok(throttle) = Throttle::new(10, 0.1) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let breaker = CircuitBreaker::default();
    fn no_wait(_: Duration) -> Ready<()> {
        ready(())
    }
    let time = executor::VirtualTime::new();
    let future = (|| ready(Ok::<u32, u16>(1)))
        .retry(&policy)
        .sleeper(no_wait)
        .clock(&time)
        .seed(1)
        .budget(&throttle)
        .breaker(&breaker)
        .into_future();
    let sizes = [
        ("Retry<&RetryPolicy>", size_of::<Retry<&RetryPolicy>>()),
        (
            "Call<&RetryPolicy, &Throttle, &CircuitBreaker>",
            size_of::<Call<&RetryPolicy, &Throttle, &CircuitBreaker>>(),
        ),
        ("RetryPolicy", size_of::<RetryPolicy>()),
        ("Throttle", size_of::<Throttle>()),
        ("CircuitBreaker", size_of::<CircuitBreaker>()),
        (
            "the retry future (ready op, Ready<()> sleeper, budget, breaker)",
            size_of_val(&future),
        ),
    ];
    for (name, bytes) in sizes {
        c.note(format_args!("  size_of {name}: {bytes} bytes"));
    }
}
