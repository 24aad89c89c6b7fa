//! The one clock every Python-facing object reads.
//!
//! Monotonic time since the module was first used, plus the time that
//! testing mode skipped: when `stormguard.testing()` removes a wait, the
//! clock jumps ahead by it instead, so deadlines and breaker timeouts behave
//! as if the wait had happened.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use stormguard::Instant;

static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
static SKIPPED_NANOS: AtomicU64 = AtomicU64::new(0);

/// The most time the clock may be moved forward in all (about 146 years):
/// far below where the core's nanosecond instants saturate, so a skip can
/// neither wrap the clock nor pin it at its end.
const MAX_SKIPPED_NANOS: u64 = u64::MAX / 4;

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

/// Moves stormguard's clock forward by `seconds` (a number or a timedelta;
/// testing mode uses this in place of a sleep). `ValueError` when the clock
/// would move past about 146 years in all.
#[pyfunction]
pub(crate) fn skip(seconds: &Bound<'_, PyAny>) -> PyResult<()> {
    let d = crate::convert::duration("seconds", seconds)?;
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    SKIPPED_NANOS
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |skipped| {
            skipped
                .checked_add(nanos)
                .filter(|total| *total <= MAX_SKIPPED_NANOS)
        })
        .map(|_| ())
        .map_err(|_| {
            PyValueError::new_err(
                "invalid seconds: stormguard's clock cannot be moved more than 146 years ahead",
            )
        })
}

/// At most this many attempts per call (0: no cap): testing mode's
/// `attempts=` and `set_active(False)`, read when a call starts.
static ATTEMPTS_CAP: AtomicU32 = AtomicU32::new(0);

/// The cap on attempts per call in force, if any.
pub(crate) fn attempts_cap() -> Option<u32> {
    match ATTEMPTS_CAP.load(Ordering::Relaxed) {
        0 => None,
        n => Some(n),
    }
}

/// Sets (or, with `None`, lifts) the cap on attempts per call for every
/// call that starts from now on.
#[pyfunction]
#[pyo3(signature = (cap))]
pub(crate) fn set_attempts_cap(cap: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let cap = match cap {
        None => 0,
        Some(v) => {
            let n = crate::convert::count("attempts", v)?;
            if n == 0 {
                return Err(PyValueError::new_err("invalid attempts: must not be zero"));
            }
            n
        }
    };
    ATTEMPTS_CAP.store(cap, Ordering::Relaxed);
    Ok(())
}
