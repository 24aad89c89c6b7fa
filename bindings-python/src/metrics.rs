//! `stormguard.Metrics`: the core's counters, readable from Python.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use stormguard::GiveUp;

/// Counters of attempts, retries, successes, give-ups by reason and breaker
/// transitions, shared by every policy and breaker given them.
///
/// The core's policies hold a `&'static Metrics` (a policy is `Copy` and
/// may live in a `static`), so each `Metrics` made here lives until the
/// process exits: make one per client or per program, not one per call.
#[pyclass(name = "Metrics", module = "stormguard", frozen)]
pub(crate) struct Metrics {
    pub(crate) inner: &'static stormguard::Metrics,
}

#[pymethods]
impl Metrics {
    #[new]
    fn new() -> Self {
        Metrics {
            inner: Box::leak(Box::new(stormguard::Metrics::new())),
        }
    }

    /// Attempts whose outcome was reported.
    #[getter]
    fn attempts(&self) -> u64 {
        self.inner.snapshot().attempts()
    }

    /// Decisions to retry.
    #[getter]
    fn retries(&self) -> u64 {
        self.inner.snapshot().retries()
    }

    /// Calls that succeeded.
    #[getter]
    fn successes(&self) -> u64 {
        self.inner.snapshot().successes()
    }

    /// Calls that gave up, by reason (`"attempts exhausted"`, …; every
    /// reason is a key).
    #[getter]
    fn give_ups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (reason, count) in self.inner.snapshot().give_ups().iter() {
            dict.set_item(reason.as_str(), count)?;
        }
        Ok(dict)
    }

    /// Breaker transitions to open.
    #[getter]
    fn breaker_opened(&self) -> u64 {
        self.inner.snapshot().breaker_opened()
    }

    /// Breaker transitions to half-open.
    #[getter]
    fn breaker_half_opened(&self) -> u64 {
        self.inner.snapshot().breaker_half_opened()
    }

    /// Breaker transitions to closed.
    #[getter]
    fn breaker_closed(&self) -> u64 {
        self.inner.snapshot().breaker_closed()
    }

    /// Calls the breaker refused.
    #[getter]
    fn breaker_rejected(&self) -> u64 {
        self.inner.snapshot().breaker_rejected()
    }

    fn __repr__(&self) -> String {
        let s = self.inner.snapshot();
        format!(
            "Metrics(attempts={}, retries={}, successes={}, give_ups={}, breaker_opened={})",
            s.attempts(),
            s.retries(),
            s.successes(),
            s.give_ups().total(),
            s.breaker_opened()
        )
    }
}

/// Every give-up reason's text, in the core's order.
#[pyfunction]
pub(crate) fn give_up_reasons() -> Vec<&'static str> {
    GiveUp::ALL.iter().map(|r| r.as_str()).collect()
}
