//! The one clock every Python-facing object reads.
//!
//! Monotonic time since the module was first used, plus the time that
//! testing mode skipped: when `stormguard.testing()` removes a wait, the
//! clock jumps ahead by it instead, so deadlines and breaker timeouts behave
//! as if the wait had happened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;
use stormguard::Instant;

static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
static SKIPPED_NANOS: AtomicU64 = AtomicU64::new(0);

/// Now, as the core's `Instant`.
pub(crate) fn now() -> Instant {
    let origin = *ORIGIN.get_or_init(std::time::Instant::now);
    Instant::from_std(origin, std::time::Instant::now())
        + Duration::from_nanos(SKIPPED_NANOS.load(Ordering::Relaxed))
}

/// Now, in nanoseconds on stormguard's clock.
#[pyfunction]
pub(crate) fn now_ns() -> u64 {
    now().as_nanos()
}

/// Moves stormguard's clock forward by `seconds` (testing mode uses this in
/// place of a sleep).
#[pyfunction]
pub(crate) fn skip(seconds: f64) -> PyResult<()> {
    let d = crate::convert::seconds("seconds", seconds)?;
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    SKIPPED_NANOS.fetch_add(nanos, Ordering::Relaxed);
    Ok(())
}
