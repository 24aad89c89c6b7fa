//! `stormguard.Backoff`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use stormguard::{BackoffBuilder, Jitter, Random};

use crate::convert::{config, seconds};

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

fn build(builder: BackoffBuilder, max_delay: Option<f64>, jitter_name: &str) -> PyResult<Backoff> {
    let mut builder = builder.jitter(jitter(jitter_name)?);
    if let Some(max) = max_delay {
        builder = builder.max_delay(seconds("backoff.max_delay", max)?);
    }
    Ok(Backoff {
        inner: builder.build().map_err(config)?,
    })
}

#[pymethods]
impl Backoff {
    /// The same delay before every retry.
    #[staticmethod]
    fn constant(delay: f64) -> PyResult<Backoff> {
        build(
            stormguard::Backoff::constant(seconds("backoff.delay", delay)?),
            None,
            "none",
        )
    }

    /// `base + n·step` before retry `n`, capped at `max_delay`.
    #[staticmethod]
    #[pyo3(signature = (base, step, max_delay=None, jitter="none"))]
    fn linear(base: f64, step: f64, max_delay: Option<f64>, jitter: &str) -> PyResult<Backoff> {
        build(
            stormguard::Backoff::linear(
                seconds("backoff.base", base)?,
                seconds("backoff.step", step)?,
            ),
            max_delay,
            jitter,
        )
    }

    /// `base·factorⁿ` before retry `n`, capped at `max_delay`.
    #[staticmethod]
    #[pyo3(signature = (base=0.1, factor=2.0, max_delay=10.0, jitter="full"))]
    fn exponential(
        base: f64,
        factor: f64,
        max_delay: Option<f64>,
        jitter: &str,
    ) -> PyResult<Backoff> {
        build(
            stormguard::Backoff::exponential(seconds("backoff.base", base)?, factor),
            max_delay,
            jitter,
        )
    }

    /// The first `n` delays in seconds; the same `seed` gives the same
    /// delays, no seed a fresh random schedule.
    #[pyo3(signature = (n, seed=None))]
    fn delays(&self, n: &Bound<'_, PyAny>, seed: Option<u64>) -> PyResult<Vec<f64>> {
        let n = crate::convert::count("n", n)?;
        if n > 1_000_000 {
            return Err(PyValueError::new_err("invalid n: must be at most 1000000"));
        }
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
