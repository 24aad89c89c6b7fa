//! Python values to core values, with `ValueError`s that name the field.

use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;
use stormguard::ConfigError;

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

/// A whole number that must fit in a `u32`: a wrong type is a `TypeError`,
/// a negative or huge number a `ValueError` (not an `OverflowError`).
pub(crate) fn count(field: &str, value: &Bound<'_, PyAny>) -> PyResult<u32> {
    let value: i64 = match value.extract() {
        Ok(v) => v,
        Err(e) if e.is_instance_of::<PyOverflowError>(value.py()) => {
            return Err(PyValueError::new_err(format!(
                "invalid {field}: must be at most 4294967295"
            )))
        }
        Err(e) => return Err(e),
    };
    if value < 0 {
        return Err(PyValueError::new_err(format!(
            "invalid {field}: must not be negative"
        )));
    }
    u32::try_from(value)
        .map_err(|_| PyValueError::new_err(format!("invalid {field}: must be at most 4294967295")))
}
