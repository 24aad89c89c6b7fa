//! `stormguard.CircuitBreaker` and `CircuitOpenError`.

use pyo3::create_exception;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use stormguard::{Open, PermitToken};

use crate::clock::now;
use crate::convert::{config, count, duration};
use crate::metrics::Metrics;

create_exception!(
    stormguard,
    CircuitOpenError,
    PyException,
    "The circuit breaker refused the call; `retry_in` says when it might let one through (seconds)."
);

/// The exception for a refusal, with its `retry_in` attribute set.
pub(crate) fn open_error(py: Python<'_>, open: Open) -> PyErr {
    let secs = open.retry_in.as_secs_f64();
    let err = CircuitOpenError::new_err(format!("circuit open; retry in {secs:.3} s"));
    // Setting an attribute on a fresh exception instance cannot fail.
    let _ = err.value(py).setattr("retry_in", secs);
    err
}

/// A circuit breaker shared by every call (and thread) given it.
#[pyclass(name = "CircuitBreaker", module = "stormguard", frozen)]
pub(crate) struct CircuitBreaker {
    pub(crate) inner: stormguard::CircuitBreaker,
}

impl CircuitBreaker {
    /// Acquires a permit now, as a token, or the refusal as an exception.
    pub(crate) fn acquire_token(&self, py: Python<'_>) -> PyResult<PermitToken> {
        match self.inner.try_acquire(now()) {
            Ok(permit) => Ok(permit.detach()),
            Err(open) => Err(open_error(py, open)),
        }
    }
}

#[pymethods]
impl CircuitBreaker {
    #[new]
    // `None` stands for the defaults shown, so that a huge or negative int
    // can be a ValueError rather than an OverflowError.
    #[pyo3(
        signature = (failure_threshold=None, recovery_timeout=None, half_open_probes=None, probe_timeout=None, metrics=None),
        text_signature = "(failure_threshold=5, recovery_timeout=30.0, half_open_probes=1, probe_timeout=None, metrics=None)"
    )]
    fn new(
        failure_threshold: Option<&Bound<'_, PyAny>>,
        recovery_timeout: Option<&Bound<'_, PyAny>>,
        half_open_probes: Option<&Bound<'_, PyAny>>,
        probe_timeout: Option<&Bound<'_, PyAny>>,
        metrics: Option<PyRef<'_, Metrics>>,
    ) -> PyResult<Self> {
        let threshold = failure_threshold.map_or(Ok(5), |v| count("failure_threshold", v))?;
        let probes = half_open_probes.map_or(Ok(1), |v| count("half_open_probes", v))?;
        let recovery = match recovery_timeout {
            Some(v) => duration("recovery_timeout", v)?,
            None => std::time::Duration::from_secs(30),
        };
        let mut builder = stormguard::CircuitBreaker::builder()
            .failure_threshold(threshold)
            .recovery_timeout(recovery)
            .half_open_probes(probes);
        if let Some(timeout) = probe_timeout {
            builder = builder.probe_timeout(duration("probe_timeout", timeout)?);
        }
        if let Some(metrics) = metrics {
            builder = builder.metrics(metrics.inner);
        }
        let inner = builder.build().map_err(config)?;
        Ok(CircuitBreaker { inner })
    }

    /// `"closed"`, `"open"` or `"half_open"`.
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().as_str()
    }

    /// Asks to make a call: a `Permit`, or raises `CircuitOpenError`.
    /// Report the outcome on the permit.
    fn acquire(slf: &Bound<'_, Self>) -> PyResult<Permit> {
        let token = slf.get().acquire_token(slf.py())?;
        Ok(Permit {
            breaker: slf.clone().unbind(),
            token,
            reported: AtomicBool::new(false),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "CircuitBreaker(failure_threshold={}, recovery_timeout={}, half_open_probes={}, state={:?})",
            self.inner.failure_threshold(),
            self.inner.recovery_timeout().as_secs_f64(),
            self.inner.half_open_probes(),
            self.state()
        )
    }
}

/// Permission to make one call; report its outcome once.
#[pyclass(name = "Permit", module = "stormguard", frozen)]
pub(crate) struct Permit {
    breaker: Py<CircuitBreaker>,
    token: PermitToken,
    reported: AtomicBool,
}

impl Permit {
    fn report(
        &self,
        verdict: impl FnOnce(&stormguard::CircuitBreaker, PermitToken),
    ) -> PyResult<()> {
        if self.reported.swap(true, Ordering::AcqRel) {
            return Err(PyRuntimeError::new_err("this permit was already reported"));
        }
        verdict(&self.breaker.get().inner, self.token);
        Ok(())
    }
}

#[pymethods]
impl Permit {
    /// The call succeeded.
    fn success(&self) -> PyResult<()> {
        self.report(|b, t| b.record_success(t, now()))
    }

    /// The call failed.
    fn failure(&self) -> PyResult<()> {
        self.report(|b, t| b.record_failure(t, now()))
    }

    /// The call ended without a verdict (cancelled); a probe's slot is freed.
    fn abandon(&self) -> PyResult<()> {
        self.report(|b, t| b.abandon(t))
    }

    /// Whether this call is a half-open probe.
    #[getter]
    fn is_probe(&self) -> bool {
        self.token.is_probe()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.reported.load(Ordering::Acquire) {
            self.breaker.get().inner.abandon(self.token);
        }
    }
}
