//! Python values to core values, with errors that name the argument.

use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyType};
use stormguard::{ConfigError, Failure, FailureClass, Replay, RetryAfter};

/// The core's validation error as a Python `ValueError` with the same text.
pub(crate) fn config(err: ConfigError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// A number of seconds (finite, ≥ 0, representable) as a `Duration`.
pub(crate) fn seconds(field: &str, value: f64) -> PyResult<Duration> {
    if !value.is_finite() {
        return Err(PyValueError::new_err(format!(
            "invalid {field}: must be a finite number"
        )));
    }
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "invalid {field}: must be a number of seconds between 0 and 584 years"
        ))
    })
}

/// `datetime.timedelta`, imported once.
fn timedelta(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    TIMEDELTA.import(py, "datetime", "timedelta")
}

/// A duration argument as a number of seconds: an `int`, a `float` or a
/// `datetime.timedelta` (not a `bool`: `True` seconds is a bug, not a
/// duration). Any other type is a `TypeError` naming the argument.
pub(crate) fn duration_secs(field: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{field} must be a number of seconds or a timedelta, not bool"
        )));
    }
    if value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>() {
        return value.extract::<f64>().or_else(|_| Ok(f64::INFINITY));
    }
    if value.is_instance(timedelta(value.py())?)? {
        return value.call_method0("total_seconds")?.extract::<f64>();
    }
    Err(PyTypeError::new_err(format!(
        "{field} must be a number of seconds or a timedelta, not {}",
        type_name(value)
    )))
}

/// A duration argument (see [`duration_secs`]) as a `Duration`.
pub(crate) fn duration(field: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    seconds(field, duration_secs(field, value)?)
}

/// The name of a value's type, for messages.
pub(crate) fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A whole number in `0..=max`: a wrong type (a `bool` included) is a
/// `TypeError`, a negative or huge number a `ValueError` (never an
/// `OverflowError`).
pub(crate) fn whole(field: &str, value: &Bound<'_, PyAny>, max: u64) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{field} must be an int, not {}",
            type_name(value)
        )));
    }
    let too_big = || PyValueError::new_err(format!("invalid {field}: must be at most {max}"));
    let value: i128 = match value.extract() {
        Ok(v) => v,
        Err(e) if e.is_instance_of::<PyOverflowError>(value.py()) => {
            // Beyond 128 bits: negative or positive?
            return Err(if value.lt(0)? {
                PyValueError::new_err(format!("invalid {field}: must not be negative"))
            } else {
                too_big()
            });
        }
        Err(e) => return Err(e),
    };
    if value < 0 {
        return Err(PyValueError::new_err(format!(
            "invalid {field}: must not be negative"
        )));
    }
    u64::try_from(value)
        .ok()
        .filter(|v| *v <= max)
        .ok_or_else(too_big)
}

/// A whole number that must fit in a `u32` (see [`whole`]).
pub(crate) fn count(field: &str, value: &Bound<'_, PyAny>) -> PyResult<u32> {
    // `whole` bounds it by u32::MAX.
    whole(field, value, u64::from(u32::MAX)).map(|v| v as u32)
}

const CLASSES: [FailureClass; 4] = [
    FailureClass::Transient,
    FailureClass::Timeout,
    FailureClass::Overloaded,
    FailureClass::Permanent,
];
const REPLAYS: [Replay; 3] = [Replay::NotSent, Replay::Rejected, Replay::Unknown];

/// A failed attempt as the Python loops report it: `class_` 0 transient,
/// 1 timeout, 2 overloaded, 3 permanent; `replay` 0 not sent, 1 rejected,
/// 2 unknown; `delay` a server-given delay in seconds (ignored unless
/// finite and ≥ 0); `stop` the server said not to retry.
pub(crate) fn failure(
    class_: usize,
    replay: usize,
    delay: Option<f64>,
    stop: bool,
) -> PyResult<Failure> {
    let (Some(&class), Some(&replay)) = (CLASSES.get(class_), REPLAYS.get(replay)) else {
        return Err(PyValueError::new_err(
            "invalid failure class or replay code",
        ));
    };
    let failure = Failure::new(class, replay);
    Ok(if stop {
        failure.with_retry_after(RetryAfter::Stop)
    } else if let Some(d) = delay.filter(|d| d.is_finite() && *d >= 0.0) {
        let d = Duration::try_from_secs_f64(d).unwrap_or(Duration::MAX);
        failure.with_retry_after(RetryAfter::Delay(d))
    } else {
        failure
    })
}
