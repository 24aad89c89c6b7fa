//! `HedgePolicy` and `Hedge`: the core's hedging state machine (gRPC A6)
//! behind Python objects, for `stormguard.hedge`. Every rule — when a copy
//! is due, what a failure or a pushback does, the budget, the deadline — is
//! the core's `stormguard::Hedge`; the Python loop only runs the copies.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyString, PyTuple};
use stormguard::{
    HedgeStep, HedgingPolicy, HedgingPolicyBuilder, Idempotency, Instant, MAX_HEDGED_ATTEMPTS,
};

use crate::budget::BudgetRef;
use crate::clock::{attempts_cap, now};
use crate::convert::{config, count, duration, failure};

/// One `hedge` decorator's validated settings, with its budget.
#[pyclass(name = "HedgePolicy", module = "stormguard._core", frozen)]
pub(crate) struct HedgePolicy {
    policy: HedgingPolicy,
    /// The settings it was built from, to build capped copies of it.
    builder: HedgingPolicyBuilder,
    budget: Option<BudgetRef>,
}

#[pymethods]
impl HedgePolicy {
    #[new]
    #[pyo3(signature = (*, attempts, delay, deadline=None, max_server_delay=None, idempotent=true, budget=None))]
    fn new(
        attempts: &Bound<'_, PyAny>,
        delay: &Bound<'_, PyAny>,
        deadline: Option<&Bound<'_, PyAny>>,
        max_server_delay: Option<&Bound<'_, PyAny>>,
        idempotent: bool,
        budget: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let attempts = count("attempts", attempts)?;
        // A6 caps hedged copies at 5 on the client; a Python caller asking
        // for more gets an error rather than silently fewer.
        if !(2..=MAX_HEDGED_ATTEMPTS).contains(&attempts) {
            return Err(PyValueError::new_err(format!(
                "invalid attempts: must be between 2 and {MAX_HEDGED_ATTEMPTS} (got {attempts})"
            )));
        }
        let mut builder = HedgingPolicy::builder()
            .max_attempts(attempts)
            .hedging_delay(duration("delay", delay)?)
            .idempotency(if idempotent {
                Idempotency::Idempotent
            } else {
                Idempotency::NonIdempotent
            });
        if let Some(deadline) = deadline {
            builder = builder.deadline(duration("deadline", deadline)?);
        }
        if let Some(max) = max_server_delay {
            builder = builder.max_server_delay(duration("max_server_delay", max)?);
        }
        Ok(HedgePolicy {
            policy: builder.build().map_err(config)?,
            builder,
            budget: budget.map(BudgetRef::extract).transpose()?,
        })
    }

    /// The most copies a call sends.
    #[getter]
    fn attempts(&self) -> u32 {
        self.policy.max_attempts()
    }

    /// Seconds between two copies.
    #[getter]
    fn delay(&self) -> f64 {
        self.policy.hedging_delay().as_secs_f64()
    }

    /// Starts a hedged call now (stormguard's clock). While testing mode or
    /// `set_active(False)` caps attempts, the call sends at most that many
    /// copies (one: no hedging at all).
    fn start(&self, py: Python<'_>) -> PyResult<Hedge> {
        let policy = match attempts_cap() {
            None => Ok(self.policy),
            // One copy: a policy that may not replay never sends a second.
            Some(1) => self.builder.idempotency(Idempotency::NonIdempotent).build(),
            Some(cap) => self
                .builder
                .max_attempts(self.policy.max_attempts().min(cap))
                .build(),
        }
        .map_err(config)?;
        let budget = self.budget.as_ref().map(|b| b.clone_ref(py));
        Ok(Hedge {
            hedge: stormguard::Hedge::new(policy, now()).budget(budget),
        })
    }
}

/// One hedged call in progress.
#[pyclass(name = "Hedge", module = "stormguard._core")]
pub(crate) struct Hedge {
    hedge: stormguard::Hedge<HedgingPolicy, Option<BudgetRef>>,
}

/// What to do next, as `(kind, value)`: `(0, n)` send copy `n` (then ask
/// again); `(1, seconds)` wait that long for an answer; `(2, None)` wait
/// for an answer, however long; `(3, n)` copy `n` won; `(4, reason)` the
/// call gave up.
fn step<'py>(py: Python<'py>, step: HedgeStep, now: Instant) -> PyResult<Bound<'py, PyTuple>> {
    let (kind, value): (u8, Bound<'py, PyAny>) = match step {
        HedgeStep::Send(n) => (0, PyInt::new(py, n).into_any()),
        HedgeStep::WaitUntil(at) => (
            1,
            PyFloat::new(py, at.saturating_duration_since(now).as_secs_f64()).into_any(),
        ),
        HedgeStep::WaitForAnswers => (2, py.None().into_bound(py)),
        HedgeStep::Finished(Ok(n)) => (3, PyInt::new(py, n).into_any()),
        HedgeStep::Finished(Err(reason)) => (4, PyString::intern(py, reason.as_str()).into_any()),
    };
    PyTuple::new(py, [PyInt::new(py, kind).into_any(), value])
}

#[pymethods]
impl Hedge {
    /// What to do now (see the module's docs for the steps).
    fn poll<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let t = now();
        step(py, self.hedge.poll(t), t)
    }

    /// Copy `n` succeeded.
    fn succeeded<'py>(&mut self, py: Python<'py>, n: u32) -> PyResult<Bound<'py, PyTuple>> {
        let t = now();
        step(py, self.hedge.succeeded(n, t), t)
    }

    /// Copy `n` failed: `class_` 0 transient, 1 timeout, 2 overloaded, 3
    /// permanent (fatal); `replay` 0 not sent, 1 rejected, 2 unknown;
    /// `delay` a server pushback in seconds; `stop` the server said not to
    /// retry.
    #[pyo3(signature = (n, class_=0, replay=2, delay=None, stop=false))]
    fn failed<'py>(
        &mut self,
        py: Python<'py>,
        n: u32,
        class_: usize,
        replay: usize,
        delay: Option<f64>,
        stop: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let failure = failure(class_, replay, delay, stop)?;
        let t = now();
        step(py, self.hedge.failed(n, &failure, t), t)
    }

    /// Copies sent so far.
    #[getter]
    fn sent(&self) -> u32 {
        self.hedge.sent()
    }
}
