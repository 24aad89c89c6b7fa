//! `stormguard.Backoff`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use stormguard::{BackoffBuilder, Jitter, Random};

use crate::convert::{config, duration, whole};

/// A `max_delay` argument: left out (the core's default), `None` (no cap),
/// or a number of seconds or a timedelta.
pub(crate) enum MaxDelay<'py> {
    Default,
    Given(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for MaxDelay<'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(MaxDelay::Given(obj.to_owned()))
    }
}

/// The cap a `max_delay=None` stands for: the largest delay the core can
/// hold (about 584 years), so nothing is capped in practice.
const NO_CAP: std::time::Duration = std::time::Duration::from_nanos(u64::MAX);

/// A validated backoff schedule (constant, linear or exponential, capped,
/// with jitter).
#[pyclass(name = "Backoff", module = "stormguard", frozen)]
#[derive(Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) inner: stormguard::Backoff,
}

fn jitter(name: &str) -> PyResult<Jitter> {
    match name {
        "none" => Ok(Jitter::None),
        "full" => Ok(Jitter::Full),
        "equal" => Ok(Jitter::Equal),
        "decorrelated" => Ok(Jitter::Decorrelated),
        _ => Err(PyValueError::new_err(format!(
            "invalid backoff.jitter: must be one of \"none\", \"full\", \"equal\", \"decorrelated\" (got {name:?})"
        ))),
    }
}

fn build(builder: BackoffBuilder, max_delay: MaxDelay<'_>, jitter_name: &str) -> PyResult<Backoff> {
    let mut builder = builder.jitter(jitter(jitter_name)?);
    match max_delay {
        MaxDelay::Default => {}
        MaxDelay::Given(max) if max.is_none() => builder = builder.max_delay(NO_CAP),
        MaxDelay::Given(max) => builder = builder.max_delay(duration("backoff.max_delay", &max)?),
    }
    Ok(Backoff {
        inner: builder.build().map_err(config)?,
    })
}

#[pymethods]
impl Backoff {
    /// The same delay before every retry (seconds or a timedelta).
    #[staticmethod]
    fn constant(delay: &Bound<'_, PyAny>) -> PyResult<Backoff> {
        build(
            stormguard::Backoff::constant(duration("backoff.delay", delay)?),
            MaxDelay::Default,
            "none",
        )
    }

    /// `base + n·step` before retry `n`, capped at `max_delay` (default:
    /// 10 s or `base`, whichever is larger; `None`: no cap).
    #[staticmethod]
    #[pyo3(
        signature = (base, step, max_delay=MaxDelay::Default, jitter="none"),
        text_signature = "(base, step, max_delay=..., jitter='none')"
    )]
    fn linear(
        base: &Bound<'_, PyAny>,
        step: &Bound<'_, PyAny>,
        max_delay: MaxDelay<'_>,
        jitter: &str,
    ) -> PyResult<Backoff> {
        build(
            stormguard::Backoff::linear(
                duration("backoff.base", base)?,
                duration("backoff.step", step)?,
            ),
            max_delay,
            jitter,
        )
    }

    /// `base·factorⁿ` before retry `n`, capped at `max_delay` (`None`: no
    /// cap).
    #[staticmethod]
    #[pyo3(
        signature = (base=None, factor=2.0, max_delay=MaxDelay::Default, jitter="full"),
        text_signature = "(base=0.1, factor=2.0, max_delay=10.0, jitter='full')"
    )]
    fn exponential(
        base: Option<&Bound<'_, PyAny>>,
        factor: f64,
        max_delay: MaxDelay<'_>,
        jitter: &str,
    ) -> PyResult<Backoff> {
        let base = match base {
            Some(b) => duration("backoff.base", b)?,
            None => std::time::Duration::from_millis(100),
        };
        build(
            stormguard::Backoff::exponential(base, factor),
            max_delay,
            jitter,
        )
    }

    /// The first `n` delays in seconds; the same `seed` (an int in
    /// 0..2**64) gives the same delays, no seed a fresh random schedule.
    #[pyo3(signature = (n, seed=None))]
    fn delays(&self, n: &Bound<'_, PyAny>, seed: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<f64>> {
        let n = crate::convert::count("n", n)?;
        if n > 1_000_000 {
            return Err(PyValueError::new_err("invalid n: must be at most 1000000"));
        }
        let seed = seed.map(|s| whole("seed", s, u64::MAX)).transpose()?;
        let rng = seed.map_or_else(Random::new, Random::with_seed);
        Ok(self
            .inner
            .delays(rng)
            .take(n as usize)
            .map(|d| d.as_secs_f64())
            .collect())
    }

    /// The cap no delay exceeds, in seconds.
    #[getter]
    fn max_delay(&self) -> f64 {
        self.inner.max_delay().as_secs_f64()
    }

    /// The jitter's name.
    #[getter]
    fn jitter(&self) -> &'static str {
        self.inner.jitter().as_str()
    }

    fn __repr__(&self) -> String {
        format!(
            "Backoff(base={}, max_delay={}, jitter={:?})",
            self.inner.base().as_secs_f64(),
            self.inner.max_delay().as_secs_f64(),
            self.inner.jitter().as_str()
        )
    }
}
