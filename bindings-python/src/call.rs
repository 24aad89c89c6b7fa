//! `Policy` (one decorator's validated settings) and `Call` (one logical
//! call's state): what the Python decorator and iterator drive.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyString};
use stormguard::{
    Budget, Decision, Failure, FailureClass, GiveUp, Idempotency, Instant, NoBudget, PermitToken,
    Replay, RetryAfter, RetryPolicy, RetryState,
};

use crate::backoff::Backoff;
use crate::breaker::CircuitBreaker;
use crate::budget::BudgetRef;
use crate::clock::now;
use crate::convert::{config, count, seconds};

/// One decorator's (or `retrying()`'s) validated settings, with its budget
/// and breaker.
#[pyclass(name = "Policy", module = "stormguard._core", frozen)]
pub(crate) struct Policy {
    policy: RetryPolicy,
    budget: Option<BudgetRef>,
    breaker: Option<Py<CircuitBreaker>>,
}

impl Policy {
    fn budget(&self) -> &dyn Budget {
        match &self.budget {
            Some(b) => b,
            None => &NoBudget,
        }
    }
}

#[pymethods]
impl Policy {
    #[new]
    #[pyo3(signature = (attempts=None, backoff=None, deadline=None, max_server_delay=None, idempotent=true, budget=None, breaker=None))]
    fn new(
        attempts: Option<&Bound<'_, PyAny>>,
        backoff: Option<PyRef<'_, Backoff>>,
        deadline: Option<f64>,
        max_server_delay: Option<f64>,
        idempotent: bool,
        budget: Option<&Bound<'_, PyAny>>,
        breaker: Option<Py<CircuitBreaker>>,
    ) -> PyResult<Self> {
        let mut builder = RetryPolicy::builder().idempotency(if idempotent {
            Idempotency::Idempotent
        } else {
            Idempotency::NonIdempotent
        });
        if let Some(attempts) = attempts {
            builder = builder.max_attempts(count("attempts", attempts)?);
        }
        if let Some(backoff) = backoff {
            builder = builder.backoff(backoff.inner.into());
        }
        if let Some(deadline) = deadline {
            builder = builder.deadline(seconds("deadline", deadline)?);
        }
        if let Some(max) = max_server_delay {
            builder = builder.max_server_delay(seconds("max_server_delay", max)?);
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

    /// Whether calls must go through `start()` for every attempt (a breaker
    /// needs a permit before the first one).
    #[getter]
    fn has_breaker(&self) -> bool {
        self.breaker.is_some()
    }

    /// Whether the policy has an overall deadline (the caller then reads
    /// the clock before the first attempt).
    #[getter]
    fn has_deadline(&self) -> bool {
        self.policy.deadline().is_some()
    }

    /// The first attempt succeeded: tell the budget (no `Call` needed).
    fn first_try_success(&self) {
        if let Some(budget) = &self.budget {
            let t = now();
            budget.on_request(t);
            budget.on_success(None, t);
        }
    }

    /// The breaker's permit for a first attempt, as an int; raises
    /// `CircuitOpenError` when refused. Without a breaker, 0.
    fn acquire(&self, py: Python<'_>) -> PyResult<u32> {
        match &self.breaker {
            Some(breaker) => Ok(breaker.get().acquire_token(py)?.to_bits()),
            None => Ok(0),
        }
    }

    /// The first attempt, made under `permit`, succeeded: tell the breaker
    /// and the budget (no `Call` needed).
    fn first_try_success_with(&self, permit: u32) {
        if let Some(breaker) = &self.breaker {
            breaker
                .get()
                .inner
                .record_success(PermitToken::from_bits(permit), now());
        }
        self.first_try_success();
    }

    /// Starts a call whose first attempt began at `started_ns` (stormguard's
    /// clock; default now). With a breaker, the first attempt's permit is
    /// `permit` (from `acquire`), or is acquired now, raising
    /// `CircuitOpenError` when refused.
    #[pyo3(signature = (started_ns=None, permit=None))]
    fn start(
        slf: &Bound<'_, Self>,
        started_ns: Option<u64>,
        permit: Option<u32>,
    ) -> PyResult<Call> {
        let this = slf.get();
        let started = started_ns.map_or_else(now, Instant::from_nanos);
        let token = match (&this.breaker, permit) {
            (Some(_), Some(bits)) => Some(PermitToken::from_bits(bits)),
            (Some(breaker), None) => Some(breaker.get().acquire_token(slf.py())?),
            (None, _) => None,
        };
        Ok(Call {
            policy: slf.clone().unbind(),
            state: RetryState::new(&this.policy, started),
            token,
        })
    }
}

/// One logical call in progress.
#[pyclass(name = "Call", module = "stormguard._core")]
pub(crate) struct Call {
    policy: Py<Policy>,
    state: RetryState,
    token: Option<PermitToken>,
}

const CLASSES: [FailureClass; 4] = [
    FailureClass::Transient,
    FailureClass::Timeout,
    FailureClass::Overloaded,
    FailureClass::Permanent,
];
const REPLAYS: [Replay; 3] = [Replay::NotSent, Replay::Rejected, Replay::Unknown];

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
        let (Some(&class), Some(&replay)) = (CLASSES.get(class_), REPLAYS.get(replay)) else {
            return Err(PyValueError::new_err(
                "invalid failure class or replay code",
            ));
        };
        let mut failure = Failure::new(class, replay);
        if stop {
            failure = failure.with_retry_after(RetryAfter::Stop);
        } else if let Some(d) = delay.filter(|d| d.is_finite() && *d >= 0.0) {
            let d = Duration::try_from_secs_f64(d).unwrap_or(Duration::MAX);
            failure = failure.with_retry_after(RetryAfter::Delay(d));
        }
        let policy = self.policy.get();
        let t = now();
        if let (Some(breaker), Some(token)) = (&policy.breaker, self.token.take()) {
            breaker.get().inner.record_failure(token, t);
        }
        Ok(
            match self
                .state
                .on_failure(&policy.policy, &failure, t, policy.budget())
            {
                Decision::Retry { after } => PyFloat::new(py, after.as_secs_f64()).into_any(),
                Decision::GiveUp(reason) => PyString::intern(py, reason.as_str()).into_any(),
            },
        )
    }

    /// Before a retry: with a breaker, acquires the attempt's permit.
    /// Returns `None` to go ahead, or `"circuit open"` to give up.
    fn before_attempt(&mut self) -> Option<&'static str> {
        let policy = self.policy.get();
        let breaker = policy.breaker.as_ref()?;
        match breaker.get().inner.try_acquire(now()) {
            Ok(permit) => {
                self.token = Some(permit.detach());
                None
            }
            Err(_) => {
                // Counts the give-up in the policy's metrics; always CircuitOpen.
                let _ = self.state.on_circuit_open(&policy.policy);
                Some(GiveUp::CircuitOpen.as_str())
            }
        }
    }

    /// The attempt succeeded: the call is over.
    fn on_success(&mut self) {
        let policy = self.policy.get();
        let t = now();
        if let (Some(breaker), Some(token)) = (&policy.breaker, self.token.take()) {
            breaker.get().inner.record_success(token, t);
        }
        self.state.on_success(&policy.policy, t, policy.budget());
    }

    /// The attempt ended with an error that is not retried: free the
    /// breaker permit without a verdict.
    fn abandon(&mut self) {
        if let (Some(breaker), Some(token)) = (&self.policy.get().breaker, self.token.take()) {
            breaker.get().inner.abandon(token);
        }
    }

    /// Attempts reported so far.
    #[getter]
    fn attempts(&self) -> u32 {
        self.state.attempts()
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.abandon();
    }
}
