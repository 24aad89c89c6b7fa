//! What every benchmark file shares.

use std::time::Duration;

use criterion::Criterion;

/// Short runs, so `scripts/bench` finishes in minutes: 0.3 s of warm-up and
/// 1 s of measurement per benchmark, 50 samples. Criterion's command-line
/// flags (`-- --measurement-time 5`) override these.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(50)
}
