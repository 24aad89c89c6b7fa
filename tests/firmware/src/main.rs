//! The stormguard core on an emulated Cortex-M0: runs the suite (see
//! `suite/mod.rs`) and exits QEMU with the verdict — 0 when every check
//! held, 1 otherwise (a panic or a hard fault exits 1 too).
//!
//! ```text
//! cd tests/firmware && cargo run
//! ```
#![no_std]
#![no_main]

use core::fmt::{self, Write};

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hio};
// A panic prints its message and exits QEMU with a failure.
use panic_semihosting as _;

#[macro_use]
mod suite;

/// The suite's lines go to the host's stdout through semihosting.
struct Semihosting(Option<hio::HostStream>);

impl suite::Report for Semihosting {
    fn line(&mut self, line: fmt::Arguments<'_>) {
        if let Some(out) = &mut self.0 {
            let _ = out.write_fmt(line);
            let _ = out.write_str("\n");
        }
    }
}

#[entry]
fn main() -> ! {
    let mut report = Semihosting(hio::hstdout().ok());
    #[allow(unused_mut)]
    let mut summary = suite::run(&mut report);
    // Proof that a failing check fails the run: built only with
    // `--features fail-on-purpose` (scripts/test runs it once, expecting 1).
    #[cfg(feature = "fail-on-purpose")]
    {
        let mut checks = suite::Checks::new(&mut report);
        checks.run("fail_on_purpose", |c| check_eq!(c, 1 + 1, 3));
        summary.failed += checks.summary(1).failed;
    }
    let verdict = if summary.failed == 0 && summary.tests > 0 {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    };
    suite::Report::line(
        &mut report,
        format_args!(
            "stormguard on a Cortex-M0: {} tests, {} checks, {} failed",
            summary.tests,
            summary.passed + summary.failed,
            summary.failed
        ),
    );
    debug::exit(verdict);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// A hard fault (a bad memory access, an unaligned access the M0 cannot
/// do) ends the run as a failure instead of hanging QEMU.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    if let Ok(mut out) = hio::hstdout() {
        let _ = writeln!(out, "HARD FAULT at pc {:#010x}", frame.pc());
    }
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
