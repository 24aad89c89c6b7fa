//! The retry budgets, shared by every call (and thread) that is given one.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use stormguard::{Budget, Failure, Instant, Withdrawal};

use crate::clock::now;
use crate::convert::{config, count, duration};

/// gRPC's retry throttle (proposal A6).
#[pyclass(name = "Throttle", module = "stormguard", frozen)]
pub(crate) struct Throttle {
    inner: stormguard::Throttle,
}

impl Throttle {
    /// A Python `Throttle` over a core one (a service config's).
    pub(crate) fn from_core(inner: stormguard::Throttle) -> Self {
        Throttle { inner }
    }
}

#[pymethods]
impl Throttle {
    #[new]
    fn new(max_tokens: &Bound<'_, PyAny>, token_ratio: f64) -> PyResult<Self> {
        let max_tokens = count("max_tokens", max_tokens)?;
        Ok(Throttle {
            inner: stormguard::Throttle::new(max_tokens, token_ratio).map_err(config)?,
        })
    }

    /// Takes one token: an attempt failed.
    fn on_failure(&self) {
        self.inner.record_failure();
    }

    /// Adds `token_ratio`: a call succeeded.
    fn on_success(&self) {
        self.inner.record_success();
    }

    /// Whether retries are allowed now (tokens > max_tokens / 2).
    fn allows_retry(&self) -> bool {
        self.inner.allows_retry()
    }

    /// The tokens in the bucket.
    #[getter]
    fn tokens(&self) -> f64 {
        f64::from(self.inner.tokens_milli()) / 1000.0
    }

    fn __repr__(&self) -> String {
        format!(
            "Throttle(max_tokens={}, token_ratio={}, tokens={})",
            self.inner.max_tokens_milli() / 1000,
            f64::from(self.inner.token_ratio_milli()) / 1000.0,
            self.tokens()
        )
    }
}

/// The ratio budget of Finagle and Linkerd.
#[pyclass(name = "RetryBudget", module = "stormguard", frozen)]
pub(crate) struct RetryBudget {
    inner: stormguard::RetryBudget,
}

#[pymethods]
impl RetryBudget {
    #[new]
    #[pyo3(
        signature = (ratio=0.2, min_per_second=None, ttl=None),
        text_signature = "(ratio=0.2, min_per_second=10, ttl=10.0)"
    )]
    fn new(
        ratio: f64,
        min_per_second: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let min = min_per_second.map_or(Ok(10), |v| count("min_per_second", v))?;
        let ttl = match ttl {
            Some(v) => duration("ttl", v)?,
            None => std::time::Duration::from_secs(10),
        };
        Ok(RetryBudget {
            inner: stormguard::RetryBudget::new(ratio, min, ttl).map_err(config)?,
        })
    }

    /// Retries available now.
    #[getter]
    fn available(&self) -> f64 {
        self.inner.available_milli(now()) as f64 / 1000.0
    }
}

/// At most `per_second` retries per second, bursts of `burst`.
#[pyclass(name = "RateBudget", module = "stormguard", frozen)]
pub(crate) struct RateBudget {
    inner: stormguard::RateBudget,
}

#[pymethods]
impl RateBudget {
    #[new]
    #[pyo3(signature = (per_second, burst=None))]
    fn new(per_second: f64, burst: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let burst = match burst {
            Some(b) => count("burst", b)?,
            // Default: a burst of one second's worth of retries.
            None if per_second.is_finite() => per_second.ceil().clamp(1.0, u32::MAX as f64) as u32,
            None => 1,
        };
        Ok(RateBudget {
            inner: stormguard::RateBudget::new(per_second, burst).map_err(config)?,
        })
    }
}

/// The AWS SDKs' cost-based retry quota.
#[pyclass(name = "CostBucket", module = "stormguard", frozen)]
pub(crate) struct CostBucket {
    inner: stormguard::CostBucket,
}

#[pymethods]
impl CostBucket {
    /// The AWS "standard" retry mode: capacity 500, retry 5, timeout 10.
    #[staticmethod]
    fn aws_standard() -> Self {
        CostBucket {
            inner: stormguard::CostBucket::aws_standard(),
        }
    }

    /// Tokens left.
    #[getter]
    fn tokens(&self) -> u32 {
        self.inner.tokens()
    }
}

/// One of the budget classes, held by a policy.
pub(crate) enum BudgetRef {
    Throttle(Py<Throttle>),
    Ratio(Py<RetryBudget>),
    Rate(Py<RateBudget>),
    Cost(Py<CostBucket>),
}

impl BudgetRef {
    /// Accepts any of the budget classes; anything else is a `TypeError`.
    pub(crate) fn extract(obj: &Bound<'_, PyAny>) -> PyResult<BudgetRef> {
        if let Ok(b) = obj.cast::<Throttle>() {
            return Ok(BudgetRef::Throttle(b.clone().unbind()));
        }
        if let Ok(b) = obj.cast::<RetryBudget>() {
            return Ok(BudgetRef::Ratio(b.clone().unbind()));
        }
        if let Ok(b) = obj.cast::<RateBudget>() {
            return Ok(BudgetRef::Rate(b.clone().unbind()));
        }
        if let Ok(b) = obj.cast::<CostBucket>() {
            return Ok(BudgetRef::Cost(b.clone().unbind()));
        }
        Err(PyTypeError::new_err(
            "budget must be a Throttle, RetryBudget, RateBudget or CostBucket",
        ))
    }

    /// Another handle on the same budget.
    pub(crate) fn clone_ref(&self, py: Python<'_>) -> BudgetRef {
        match self {
            BudgetRef::Throttle(b) => BudgetRef::Throttle(b.clone_ref(py)),
            BudgetRef::Ratio(b) => BudgetRef::Ratio(b.clone_ref(py)),
            BudgetRef::Rate(b) => BudgetRef::Rate(b.clone_ref(py)),
            BudgetRef::Cost(b) => BudgetRef::Cost(b.clone_ref(py)),
        }
    }

    fn get(&self) -> &dyn Budget {
        match self {
            BudgetRef::Throttle(b) => &b.get().inner,
            BudgetRef::Ratio(b) => &b.get().inner,
            BudgetRef::Rate(b) => &b.get().inner,
            BudgetRef::Cost(b) => &b.get().inner,
        }
    }
}

impl Budget for BudgetRef {
    fn on_request(&self, now: Instant) {
        self.get().on_request(now)
    }

    fn on_failure(&self, failure: &Failure, now: Instant) {
        self.get().on_failure(failure, now)
    }

    fn try_retry(&self, failure: &Failure, now: Instant) -> Option<Withdrawal> {
        self.get().try_retry(failure, now)
    }

    fn on_success(&self, last_retry: Option<Withdrawal>, now: Instant) {
        self.get().on_success(last_retry, now)
    }

    fn needs_time(&self) -> bool {
        self.get().needs_time()
    }
}
