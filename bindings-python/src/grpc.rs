//! gRPC for Python: a service config's method settings
//! (`stormguard.from_grpc_service_config`), status codes by name or number,
//! and the `grpc-retry-pushback-ms` hint — all read by the core
//! (`stormguard::grpc_config`, `stormguard::classify::grpc`).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyString};
use stormguard::classify::grpc::{pushback_hint, Code};
use stormguard::grpc_config::{MethodPolicy, ServiceConfig};
use stormguard::RetryAfter;

use crate::backoff::Backoff;
use crate::budget::Throttle;
use crate::convert::{count, type_name};

/// The settings of `method` of `service` in a gRPC service config, as a
/// dict the Python side turns into decorator arguments: `kind` ("retry",
/// "hedging" or None), `attempts`, `backoff` (a `Backoff`, retry only),
/// `delay` (seconds, hedging only), `deadline` (the method's timeout, or
/// None), `codes` (the retryable or non-fatal codes, as numbers),
/// `throttle` (a new `Throttle` from `retryThrottling`, or None),
/// `wait_for_ready` and `matched` (whether a `methodConfig` names the
/// method). An invalid config is a `ValueError` naming its JSON path.
#[pyfunction]
#[pyo3(signature = (json_text, service, method, max_attempts_cap=None))]
pub(crate) fn grpc_method_config<'py>(
    py: Python<'py>,
    json_text: &Bound<'py, PyAny>,
    service: &str,
    method: &str,
    max_attempts_cap: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let text: String = if let Ok(s) = json_text.cast::<PyString>() {
        s.extract::<String>()?
    } else if let Ok(b) = json_text.cast::<PyBytes>() {
        String::from_utf8(b.as_bytes().to_vec())
            .map_err(|e| PyValueError::new_err(format!("invalid json_text: not UTF-8 ({e})")))?
    } else {
        return Err(PyTypeError::new_err(format!(
            "json_text must be a str or bytes, not {}",
            type_name(json_text)
        )));
    };
    let config = match max_attempts_cap {
        Some(cap) => ServiceConfig::from_json_capped(&text, count("max_attempts_cap", cap)?),
        None => ServiceConfig::from_json(&text),
    }
    .map_err(|e| PyValueError::new_err(e.to_string()))?;

    let out = PyDict::new(py);
    let found = config.method(service, method);
    out.set_item("matched", found.is_some())?;
    out.set_item(
        "throttle",
        config
            .throttle()
            .map(|t| Py::new(py, Throttle::from_core(t)))
            .transpose()?,
    )?;
    out.set_item(
        "deadline",
        found.and_then(|m| m.timeout()).map(|d| d.as_secs_f64()),
    )?;
    out.set_item("wait_for_ready", found.and_then(|m| m.wait_for_ready()))?;
    let codes = found.map(|m| m.codes()).unwrap_or_default();
    let numbers: Vec<i32> = (0..=16)
        .filter(|&n| Code::try_from(n).is_ok_and(|c| codes.contains(c)))
        .collect();
    out.set_item("codes", numbers)?;
    match found.and_then(|m| m.policy()) {
        Some(MethodPolicy::Retry { policy, .. }) => {
            out.set_item("kind", "retry")?;
            out.set_item("attempts", policy.max_attempts())?;
            out.set_item(
                "backoff",
                Py::new(
                    py,
                    Backoff {
                        inner: *policy.backoff(),
                    },
                )?,
            )?;
        }
        Some(MethodPolicy::Hedging { policy, .. }) => {
            out.set_item("kind", "hedging")?;
            out.set_item("attempts", policy.max_attempts())?;
            out.set_item("delay", policy.hedging_delay().as_secs_f64())?;
        }
        // No policy (or one a later core adds): one attempt.
        _ => {
            out.set_item("kind", py.None())?;
            out.set_item("attempts", 1)?;
        }
    }
    Ok(out)
}

/// A status code, given as a number (`14`) or a name in any case
/// (`"UNAVAILABLE"`, `"unavailable"`), as its number; a `ValueError` for
/// any other number or name.
#[pyfunction]
pub(crate) fn grpc_code(code: &Bound<'_, PyAny>) -> PyResult<i32> {
    let parsed = if let Ok(n) = code.cast::<PyInt>() {
        n.extract::<i32>().ok().and_then(|n| Code::try_from(n).ok())
    } else if let Ok(s) = code.cast::<PyString>() {
        s.extract::<String>()?.parse::<Code>().ok()
    } else {
        return Err(PyTypeError::new_err(format!(
            "a gRPC status code is an int or a name, not {}",
            type_name(code)
        )));
    };
    parsed
        .map(|c| c as i32)
        .ok_or_else(|| PyValueError::new_err(format!("unknown gRPC status code {code}")))
}

/// The server's hint from every `grpc-retry-pushback-ms` value of a
/// response (A6): None without one, the delay in seconds for one valid
/// value, and -1.0 ("do not retry") for a negative, malformed or repeated
/// one.
#[pyfunction]
pub(crate) fn grpc_pushback(values: Vec<Vec<u8>>) -> Option<f64> {
    let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    match pushback_hint(&values)? {
        RetryAfter::Delay(d) => Some(d.as_secs_f64()),
        _ => Some(-1.0),
    }
}
