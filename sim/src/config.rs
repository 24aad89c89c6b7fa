//! The parameters of the brownout simulation, and their validation.

use core::fmt;
use core::time::Duration;

/// The world the clients and the backend live in.
///
/// The backend serves `workers` requests at once, each taking
/// `service_time × U(0.5, 1.5)`; a request that finds every worker busy
/// waits in a FIFO queue of `queue_limit`, and one that finds the queue full
/// is answered 503 at once. It never learns that a caller gave up: a queued
/// request is served even when its client timed out long ago. From
/// `brownout_start` to `brownout_end` (the trigger) every service takes
/// `slowdown` times longer and `brownout_drop` of the calls are lost
/// without an answer; outside it `loss` of the calls are lost.
///
/// `clients` client processes start logical calls open-loop (Poisson, no
/// matter how the earlier calls fared) at `load × capacity` per second in
/// total, during `[0, duration)`, and wait `attempt_timeout` for each
/// attempt. Each client has its own budget and breaker, as a process would.
///
/// ```
/// use stormguard_sim::Config;
/// let config = Config::standard();
/// assert_eq!(config.capacity_per_sec(), 1000.0);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Requests the backend serves at the same time.
    pub workers: u32,
    /// Mean time to serve one request when healthy.
    pub service_time: Duration,
    /// Requests that may wait in the backend's FIFO queue.
    pub queue_limit: u32,
    /// Client processes, each with its own budget and breaker.
    pub clients: u32,
    /// Logical calls per second of all clients together, as a fraction of
    /// the backend's healthy capacity (below 1: the backend can serve them).
    pub load: f64,
    /// How long a client waits for one attempt before it gives up on it.
    pub attempt_timeout: Duration,
    /// Fraction of calls lost (no answer) at any time.
    pub loss: f64,
    /// When the trigger starts.
    pub brownout_start: Duration,
    /// When the trigger clears.
    pub brownout_end: Duration,
    /// How many times longer each service takes during the brownout.
    pub slowdown: f64,
    /// Fraction of calls dropped (no answer) during the brownout.
    pub brownout_drop: f64,
    /// Logical calls start during `[0, duration)`; the calls still running
    /// then are followed to their end.
    pub duration: Duration,
    /// The resolution of the offered-load and goodput time series.
    pub bucket: Duration,
    /// The sliding window over which the peak offered load is averaged.
    pub peak_window: Duration,
    /// The windows in which recovery is judged after the trigger clears.
    pub recovery_window: Duration,
    /// The share of a window's logical calls that must succeed for the
    /// window to count as recovered.
    pub recovered_goodput: f64,
}

/// A [`Config`] field with an unusable value.
///
/// ```
/// use stormguard_sim::Config;
/// let config = Config { workers: 0, ..Config::standard() };
/// assert_eq!(config.validate().unwrap_err().field(), "workers");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidConfig {
    field: &'static str,
    reason: &'static str,
}

impl InvalidConfig {
    /// The field's name.
    ///
    /// ```
    /// use stormguard_sim::Config;
    /// let config = Config { load: f64::NAN, ..Config::standard() };
    /// assert_eq!(config.validate().unwrap_err().field(), "load");
    /// ```
    pub const fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for InvalidConfig {}

/// The most time-series buckets a run may have (memory bound).
const MAX_BUCKETS: u128 = 1_000_000;
/// The longest duration, service time or timeout (keeps nanoseconds far
/// from overflow).
const MAX_SPAN: Duration = Duration::from_secs(86_400);
/// The most logical calls a run may expect (time bound).
const MAX_CALLS: f64 = 5_000_000.0;

impl Config {
    /// The program's world: a backend of 10 workers × 10 ms (1000 calls/s)
    /// with a queue of 200 (200 ms of work), 10 clients at 0.8 × capacity,
    /// a 100 ms attempt timeout and 1 % loss; from 5 s to 15 s each service
    /// takes 3 × longer (capacity 333/s) and 20 % of calls are dropped;
    /// calls start for 30 s.
    ///
    /// ```
    /// let c = stormguard_sim::Config::standard();
    /// assert_eq!(c.logical_calls_per_sec(), 800.0);
    /// ```
    pub fn standard() -> Config {
        Config {
            workers: 10,
            service_time: Duration::from_millis(10),
            queue_limit: 200,
            clients: 10,
            load: 0.8,
            attempt_timeout: Duration::from_millis(100),
            loss: 0.01,
            brownout_start: Duration::from_secs(5),
            brownout_end: Duration::from_secs(15),
            slowdown: 3.0,
            brownout_drop: 0.2,
            duration: Duration::from_secs(30),
            bucket: Duration::from_millis(100),
            peak_window: Duration::from_secs(1),
            recovery_window: Duration::from_millis(250),
            recovered_goodput: 0.9,
        }
    }

    /// The same world, smaller and shorter, for tests in debug builds: 4
    /// workers (400 calls/s), a queue of 80, 4 clients; the brownout from
    /// 2 s to 6 s, calls start for 14 s.
    ///
    /// ```
    /// let c = stormguard_sim::Config::small();
    /// assert_eq!(c.capacity_per_sec(), 400.0);
    /// ```
    pub fn small() -> Config {
        Config {
            workers: 4,
            queue_limit: 80,
            clients: 4,
            brownout_start: Duration::from_secs(2),
            brownout_end: Duration::from_secs(6),
            duration: Duration::from_secs(14),
            ..Config::standard()
        }
    }

    /// Requests per second the healthy backend can serve.
    ///
    /// ```
    /// let c = stormguard_sim::Config::standard();
    /// assert_eq!(c.capacity_per_sec(), 1000.0);
    /// ```
    pub fn capacity_per_sec(&self) -> f64 {
        f64::from(self.workers) / self.service_time.as_secs_f64()
    }

    /// Logical calls per second, all clients together.
    ///
    /// ```
    /// let c = stormguard_sim::Config::small();
    /// assert_eq!(c.logical_calls_per_sec(), 320.0);
    /// ```
    pub fn logical_calls_per_sec(&self) -> f64 {
        self.load * self.capacity_per_sec()
    }

    /// Checks every field; the simulation runs only a valid configuration.
    ///
    /// # Errors
    /// The first field with an unusable value: zero workers, clients or
    /// durations, a probability outside [0, 1], a load outside (0, 10], a
    /// slowdown below 1, a brownout that does not lie within the run, or a
    /// run too large to simulate in memory.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard_sim::Config;
    /// let late = Config { brownout_end: Duration::from_secs(99), ..Config::standard() };
    /// assert_eq!(late.validate().unwrap_err().field(), "brownout_end");
    /// ```
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let err = |field, reason| Err(InvalidConfig { field, reason });
        let probability = |p: f64| p.is_finite() && (0.0..=1.0).contains(&p);
        if self.workers == 0 {
            return err("workers", "must not be zero");
        }
        if self.service_time.is_zero() {
            return err("service_time", "must not be zero");
        }
        if self.clients == 0 {
            return err("clients", "must not be zero");
        }
        if !(self.load.is_finite() && self.load > 0.0 && self.load <= 10.0) {
            return err("load", "must be in (0, 10]");
        }
        if self.attempt_timeout.is_zero() {
            return err("attempt_timeout", "must not be zero");
        }
        if !probability(self.loss) {
            return err("loss", "must be in [0, 1]");
        }
        if !probability(self.brownout_drop) {
            return err("brownout_drop", "must be in [0, 1]");
        }
        if !probability(self.recovered_goodput) {
            return err("recovered_goodput", "must be in [0, 1]");
        }
        if !(self.slowdown.is_finite() && (1.0..=1000.0).contains(&self.slowdown)) {
            return err("slowdown", "must be in [1, 1000]");
        }
        if self.bucket.is_zero() {
            return err("bucket", "must not be zero");
        }
        if self.duration < self.bucket {
            return err("duration", "must be at least one bucket");
        }
        if self.brownout_start > self.brownout_end {
            return err("brownout_start", "must not be after brownout_end");
        }
        if self.brownout_end > self.duration {
            return err("brownout_end", "must not be after duration");
        }
        if self.peak_window < self.bucket {
            return err("peak_window", "must be at least one bucket");
        }
        if self.recovery_window < self.bucket {
            return err("recovery_window", "must be at least one bucket");
        }
        if self.duration.as_nanos() / self.bucket.as_nanos() > MAX_BUCKETS {
            return err("bucket", "too small for the duration (over 10^6 buckets)");
        }
        if self.duration > MAX_SPAN {
            return err("duration", "must be at most a day");
        }
        if self.service_time > MAX_SPAN || self.attempt_timeout > MAX_SPAN {
            return err(
                "service_time",
                "service_time and attempt_timeout must be at most a day",
            );
        }
        let calls = self.logical_calls_per_sec() * self.duration.as_secs_f64();
        if calls > MAX_CALLS {
            return err("duration", "too many logical calls (over 5 × 10^6)");
        }
        Ok(())
    }
}
