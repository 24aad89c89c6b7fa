//! `stormguard._core`: the Rust half of the Python package.
//!
//! Python's `stormguard/__init__.py` holds the decorator and the iterator;
//! everything they decide goes through the types here, which wrap the
//! `stormguard` core. Every invalid argument becomes a `ValueError` carrying
//! the core's message, which names the field; nothing panics across the
//! boundary.

use pyo3::prelude::*;

mod backoff;
mod breaker;
mod budget;
mod call;
mod clock;
mod convert;
mod grpc;
mod hedge;
mod http;
mod idempotency;
mod metrics;
mod redis_support;

/// The compiled module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<backoff::Backoff>()?;
    m.add_class::<budget::Throttle>()?;
    m.add_class::<budget::RetryBudget>()?;
    m.add_class::<budget::RateBudget>()?;
    m.add_class::<budget::CostBucket>()?;
    m.add_class::<breaker::CircuitBreaker>()?;
    m.add_class::<breaker::Permit>()?;
    m.add_class::<call::Policy>()?;
    m.add_class::<call::Call>()?;
    m.add(
        "CircuitOpenError",
        m.py().get_type::<breaker::CircuitOpenError>(),
    )?;
    m.add_class::<idempotency::IdempotencyTable>()?;
    m.add_class::<idempotency::Ticket>()?;
    m.add_class::<idempotency::Begin>()?;
    m.add_function(wrap_pyfunction!(idempotency::new_idempotency_key, m)?)?;
    m.add_function(wrap_pyfunction!(idempotency::parse_retry_after, m)?)?;
    m.add_function(wrap_pyfunction!(clock::now_ns, m)?)?;
    m.add_function(wrap_pyfunction!(clock::skip, m)?)?;
    m.add_function(wrap_pyfunction!(clock::set_attempts_cap, m)?)?;
    m.add_class::<metrics::Metrics>()?;
    m.add_function(wrap_pyfunction!(metrics::give_up_reasons, m)?)?;
    m.add_function(wrap_pyfunction!(http::http_failure, m)?)?;
    m.add_function(wrap_pyfunction!(http::is_idempotent_method, m)?)?;
    m.add_function(wrap_pyfunction!(idempotency::fingerprint, m)?)?;
    m.add_class::<hedge::HedgePolicy>()?;
    m.add_class::<hedge::Hedge>()?;
    m.add_function(wrap_pyfunction!(grpc::grpc_method_config, m)?)?;
    m.add_function(wrap_pyfunction!(grpc::grpc_code, m)?)?;
    m.add_function(wrap_pyfunction!(grpc::grpc_pushback, m)?)?;
    m.add_function(wrap_pyfunction!(redis_support::redis_scripts, m)?)?;
    m.add_function(wrap_pyfunction!(redis_support::redis_entry_key, m)?)?;
    m.add_function(wrap_pyfunction!(redis_support::redis_fence_key, m)?)?;
    m.add_function(wrap_pyfunction!(redis_support::redis_check_prefix, m)?)?;
    m.add_function(wrap_pyfunction!(redis_support::redis_check_fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(redis_support::redis_hash_slot, m)?)?;
    Ok(())
}
