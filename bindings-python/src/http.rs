//! The core's HTTP classifier (`stormguard::classify::http`) for Python's
//! transports: status → failure, `Retry-After`, idempotent methods.

use std::borrow::Cow;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use stormguard::{FailureClass, Replay, RetryAfter};

use crate::convert::type_name;

/// A header or method value as bytes: `str` (as UTF-8) or `bytes`.
pub(crate) fn text_bytes<'a>(field: &str, value: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(match s.to_cow()? {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        });
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    Err(PyTypeError::new_err(format!(
        "{field} must be str or bytes, not {}",
        type_name(value)
    )))
}

/// The current Unix time in whole seconds (0 before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn class_name(class: FailureClass) -> &'static str {
    match class {
        FailureClass::Transient => "transient",
        FailureClass::Timeout => "timeout",
        FailureClass::Overloaded => "overloaded",
        _ => "permanent",
    }
}

fn replay_name(replay: Replay) -> &'static str {
    match replay {
        Replay::NotSent => "not_sent",
        Replay::Rejected => "rejected",
        _ => "unknown",
    }
}

/// What a response with `status` (and its `Retry-After` value, if any)
/// says as a failure: `(class, replay, delay)` — the class `"transient"`,
/// `"timeout"`, `"overloaded"` or `"permanent"`, the replay `"rejected"`
/// (408, 429: not acted on) or `"unknown"`, and the server's delay in
/// seconds (`None` when absent or not parsable) — or `None` when the status
/// is not a failure (1xx–3xx). RFC 9110 §15, RFC 6585 §4.
#[pyfunction]
#[pyo3(signature = (status, retry_after=None, now=None))]
pub(crate) fn http_failure(
    status: &Bound<'_, PyAny>,
    retry_after: Option<&Bound<'_, PyAny>>,
    now: Option<f64>,
) -> PyResult<Option<(&'static str, &'static str, Option<f64>)>> {
    let status = crate::convert::whole("status", status, u64::MAX)?;
    // Not a status at all (RFC 9110 §15): the core's "broken peer" class.
    let status = u16::try_from(status).unwrap_or(0);
    let value = retry_after
        .map(|v| text_bytes("retry_after", v))
        .transpose()?;
    let now = match now {
        Some(t) if t.is_finite() && t >= 0.0 => t as u64,
        _ => unix_now(),
    };
    Ok(
        stormguard::classify::http::failure_for_response(status, value.as_deref(), now).map(|f| {
            let delay = match f.retry_after() {
                Some(RetryAfter::Delay(d)) => Some(d.as_secs_f64()),
                _ => None,
            };
            (class_name(f.class()), replay_name(f.replay()), delay)
        }),
    )
}

/// Whether an HTTP method is idempotent by RFC 9110 §9.2.2 (GET, HEAD,
/// OPTIONS, TRACE, PUT, DELETE; names are case-sensitive).
#[pyfunction]
pub(crate) fn is_idempotent_method(method: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(stormguard::classify::http::is_idempotent_method(
        &text_bytes("method", method)?,
    ))
}
