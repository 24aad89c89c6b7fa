//! `Policy` (one decorator's validated settings) and `Call` (one logical
//! call): what the Python decorator and iterator drive. `Call` is the
//! core's attempt lifecycle (`stormguard::Call`) behind a Python object:
//! every rule about the breaker, the budget and the decision is the core's.

use std::borrow::Borrow;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyString};
use stormguard::{Decision, GiveUp, Idempotency, Random, RetryPolicy};

use crate::backoff::Backoff;
use crate::breaker::{open_error, CircuitBreaker};
use crate::budget::BudgetRef;
use crate::clock::{attempts_cap, now};
use crate::convert::{config, count, duration, failure};
use crate::metrics::Metrics;

/// One decorator's (or `retrying()`'s) validated settings, with its budget
/// and breaker.
#[pyclass(name = "Policy", module = "stormguard._core", frozen)]
pub(crate) struct Policy {
    policy: RetryPolicy,
    budget: Option<BudgetRef>,
    breaker: Option<Py<CircuitBreaker>>,
}

/// A `Policy` object lending the core its `RetryPolicy` — or, while a cap
/// on attempts is in force (testing mode's `attempts=`, `set_active(False)`),
/// a copy of it with the cap applied, taken when the call started.
struct PolicyRef {
    shared: Py<Policy>,
    /// Boxed: a call made without a cap (every call outside tests) carries
    /// one word for it, not a whole policy.
    capped: Option<Box<RetryPolicy>>,
}

impl Borrow<RetryPolicy> for PolicyRef {
    fn borrow(&self) -> &RetryPolicy {
        match &self.capped {
            Some(policy) => policy,
            None => &self.shared.get().policy,
        }
    }
}

/// A `CircuitBreaker` object lending the core its breaker.
struct BreakerRef(Py<CircuitBreaker>);

impl Borrow<stormguard::CircuitBreaker> for BreakerRef {
    fn borrow(&self) -> &stormguard::CircuitBreaker {
        &self.0.get().inner
    }
}

type Lifecycle = stormguard::Call<PolicyRef, Option<BudgetRef>, BreakerRef>;

#[pymethods]
impl Policy {
    #[new]
    #[pyo3(signature = (*, attempts, backoff=None, deadline=None, max_server_delay=None, idempotent=true, budget=None, breaker=None, metrics=None))]
    #[allow(clippy::too_many_arguments)] // one per decorator argument
    fn new(
        attempts: Option<&Bound<'_, PyAny>>,
        backoff: Option<&Bound<'_, PyAny>>,
        deadline: Option<&Bound<'_, PyAny>>,
        max_server_delay: Option<&Bound<'_, PyAny>>,
        idempotent: bool,
        budget: Option<&Bound<'_, PyAny>>,
        breaker: Option<&Bound<'_, PyAny>>,
        metrics: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let backoff = backoff
            .map(|b| of_class::<Backoff>(b, "backoff", "Backoff"))
            .transpose()?;
        let breaker = breaker
            .map(|b| of_class::<CircuitBreaker>(b, "breaker", "CircuitBreaker"))
            .transpose()?
            .map(Bound::unbind);
        let metrics = metrics
            .map(|m| of_class::<Metrics>(m, "metrics", "Metrics"))
            .transpose()?;
        let mut builder = RetryPolicy::builder().idempotency(if idempotent {
            Idempotency::Idempotent
        } else {
            Idempotency::NonIdempotent
        });
        match attempts {
            Some(attempts) => builder = builder.max_attempts(count("attempts", attempts)?),
            // stamina's meaning: no attempt limit. Something else must end
            // a call that keeps failing.
            None if deadline.is_some() || budget.is_some() => {
                builder = builder.max_attempts(u32::MAX);
            }
            None => {
                return Err(PyValueError::new_err(
                    "invalid attempts: None (no attempt limit) needs a deadline or a budget to bound the call",
                ))
            }
        }
        if let Some(backoff) = backoff {
            builder = builder.backoff(backoff.get().inner.into());
        }
        if let Some(deadline) = deadline {
            builder = builder.deadline(duration("deadline", deadline)?);
        }
        if let Some(max) = max_server_delay {
            builder = builder.max_server_delay(duration("max_server_delay", max)?);
        }
        if let Some(metrics) = metrics {
            builder = builder.metrics(metrics.get().inner);
        }
        // Python callers say `attempts`, the core `max_attempts`.
        let policy = builder.build().map_err(|e| match e.field() {
            "max_attempts" => {
                PyValueError::new_err(e.to_string().replace("max_attempts", "attempts"))
            }
            _ => config(e),
        })?;
        Ok(Policy {
            policy,
            budget: budget.map(BudgetRef::extract).transpose()?,
            breaker,
        })
    }

    /// Whether a call that succeeds at once has anything to report: a
    /// budget's deposit, a breaker's verdict or metrics to count. Without
    /// any of them the core's `succeed` on a fresh call changes nothing
    /// outside the call, and the decorator skips it.
    #[getter]
    fn reports_success(&self) -> bool {
        self.budget.is_some() || self.breaker.is_some() || self.policy.metrics().is_some()
    }

    /// Whether the first attempt must go through `start()` before it runs:
    /// a breaker's permit, or a deadline counted from it. Without either, a
    /// call that succeeds at once needs only `first_try_success()`.
    #[getter]
    fn needs_start(&self) -> bool {
        self.breaker.is_some() || self.policy.deadline().is_some()
    }

    /// A call whose first attempt already ran and succeeded: the core's
    /// lifecycle for it, in one step (the budget is paid, no object made).
    fn first_try_success(slf: &Bound<'_, Self>) -> PyResult<()> {
        let mut call = lifecycle(slf, Random::with_seed(0));
        let t = now();
        call.start_attempt(t)
            .map_err(|d| refused(slf.py(), &call, d))?;
        call.succeed(t);
        Ok(())
    }

    /// Starts a call and begins its first attempt at `started_ns`
    /// (stormguard's clock; default now): with a breaker, takes its permit,
    /// raising `CircuitOpenError` when refused.
    #[pyo3(signature = (started_ns=None))]
    fn start(slf: &Bound<'_, Self>, started_ns: Option<u64>) -> PyResult<Call> {
        let mut call = lifecycle(slf, Random::new());
        let started = started_ns.map_or_else(now, stormguard::Instant::from_nanos);
        call.start_attempt(started)
            .map_err(|d| refused(slf.py(), &call, d))?;
        Ok(Call { call })
    }
}

/// `value` as a `T`, or a `TypeError` naming the argument.
fn of_class<'py, T: pyo3::PyTypeCheck>(
    value: &Bound<'py, PyAny>,
    field: &str,
    class: &str,
) -> PyResult<Bound<'py, T>> {
    value.cast::<T>().cloned().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{field} must be a stormguard.{class}, not {}",
            crate::convert::type_name(value)
        ))
    })
}

/// The core's lifecycle for one call under `policy`.
fn lifecycle(policy: &Bound<'_, Policy>, rng: Random) -> Lifecycle {
    let this = policy.get();
    let shared = PolicyRef {
        shared: policy.clone().unbind(),
        capped: attempts_cap().map(|cap| Box::new(this.policy.capped_attempts(cap))),
    };
    stormguard::Call::with_rng(shared, rng)
        .budget(this.budget.as_ref().map(|b| b.clone_ref(policy.py())))
        .breaker(
            this.breaker
                .as_ref()
                .map(|b| BreakerRef(b.clone_ref(policy.py()))),
        )
}

/// The error for a first attempt the call refused: `CircuitOpenError`
/// (with when to come back) for the breaker, else a `ValueError` naming
/// the reason (a first attempt meets no other give-up).
fn refused<P, B, K: Borrow<stormguard::CircuitBreaker>>(
    py: Python<'_>,
    call: &stormguard::Call<P, B, K>,
    decision: Decision,
) -> PyErr {
    match call.refusal() {
        Some(open) => open_error(py, open),
        None => PyValueError::new_err(format!("the call could not start: {decision:?}")),
    }
}

/// One logical call in progress.
#[pyclass(name = "Call", module = "stormguard._core")]
pub(crate) struct Call {
    call: Lifecycle,
}

/// A decision as Python sees it: the wait in seconds (a float), or the
/// reason for giving up (a str).
fn to_python(py: Python<'_>, decision: Decision) -> Bound<'_, PyAny> {
    match decision {
        Decision::Retry { after } => PyFloat::new(py, after.as_secs_f64()).into_any(),
        Decision::GiveUp(reason) => PyString::intern(py, reason.as_str()).into_any(),
    }
}

#[pymethods]
impl Call {
    /// The attempt failed. `class`: 0 transient, 1 timeout, 2 overloaded,
    /// 3 permanent; `replay`: 0 not sent, 1 rejected, 2 unknown; `delay`: a
    /// server-given delay in seconds (ignored unless finite and ≥ 0);
    /// `stop`: the server said not to retry. Returns the wait in seconds
    /// (a float), or the reason for giving up (a str).
    #[pyo3(signature = (class_=0, replay=2, delay=None, stop=false))]
    fn on_failure<'py>(
        &mut self,
        py: Python<'py>,
        class_: usize,
        replay: usize,
        delay: Option<f64>,
        stop: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let failure = failure(class_, replay, delay, stop)?;
        Ok(to_python(py, self.call.fail(&failure, now())))
    }

    /// Begins the next attempt (after the wait): `None` to go ahead, or the
    /// reason the call gives up instead (`"deadline exceeded"` when the
    /// wait overshot the deadline, `"circuit open"` when the breaker
    /// refuses).
    fn begin(&mut self) -> Option<&'static str> {
        match self.call.start_attempt(now()) {
            Ok(()) => None,
            Err(Decision::GiveUp(reason)) => Some(reason.as_str()),
            Err(Decision::Retry { .. }) => Some(GiveUp::NotRetryable.as_str()),
        }
    }

    /// The attempt succeeded: the call is over.
    fn on_success(&mut self) {
        self.call.succeed(now());
    }

    /// The attempt ended with an exception that is not retried (or was
    /// abandoned): its breaker permit goes back without a verdict.
    fn abandon(&mut self) {
        self.call.cancel_attempt();
    }

    /// Attempts reported so far.
    #[getter]
    fn attempts(&self) -> u32 {
        self.call.attempts()
    }

    /// The wait the backoff would give if the running attempt fails without
    /// a server hint, in seconds: a forecast (the attempt limit, the
    /// deadline or the budget may still refuse the retry).
    #[getter]
    fn next_backoff(&self) -> f64 {
        self.call.next_backoff().as_secs_f64()
    }

    /// Whether the call is over (it succeeded or gave up).
    #[getter]
    fn is_over(&self) -> bool {
        self.call.is_over()
    }
}
