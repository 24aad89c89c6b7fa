//! Backoff schedules and jitter.
//!
//! A [`Backoff`] turns "this is retry number *n*" into a delay. Three shapes —
//! constant, linear (`base + n·step`) and exponential (`base·factorⁿ`) — each
//! capped by `max_delay`, and five kinds of [`Jitter`], with the formulas of
//! the AWS Architecture Blog article "Exponential Backoff and Jitter" and of
//! gRPC proposal A6.
//!
//! All arithmetic is on integer nanoseconds and saturates: for every retry
//! number up to `u32::MAX`, every factor and every cap, computing a delay
//! never panics, never overflows, takes O(log n) steps, and never returns
//! more than `max_delay` — jitter included (additive jitter in other crates
//! can reach twice the cap).

use core::time::Duration;

use crate::config::{ConfigError, ConfigErrorKind};
use crate::random::Random;
use crate::time::duration_to_nanos;

/// How a computed delay is randomised.
///
/// Jitter is what keeps a fleet of clients that failed at the same instant
/// from retrying at the same instant ("the thundering herd"). With `d` the
/// capped nominal delay and `cap` the backoff's `max_delay`:
///
/// | jitter | delay | source |
/// |---|---|---|
/// | `None` | `d` | |
/// | `Full` | `U[0, d]` | AWS "Exponential Backoff and Jitter"; gRPC before 2024 |
/// | `Equal` | `d/2 + U[0, d/2]` | AWS |
/// | `Decorrelated` | `min(cap, U[base, 3·prev])`, `prev₀ = base` | AWS |
/// | `Proportional(p)` | `min(cap, d·(1 ± p/1000))` | gRPC A6 since 2024: `Proportional(200)` = ×U(0.8, 1.2) |
///
/// `Proportional` takes its proportion in per mille so that a `Jitter` stays
/// `Eq` and `const`: `Proportional(200)` is ±20 %.
///
/// ```
/// use stormguard::Jitter;
/// assert_eq!(Jitter::GRPC, Jitter::Proportional(200));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// The nominal delay, unchanged. Only for a single client or for tests:
    /// a fleet without jitter retries in synchronised waves.
    None,
    /// Uniform in `[0, d]`: the fewest calls in the AWS experiment.
    Full,
    /// `d/2 + U[0, d/2]`: never shorter than half the nominal delay.
    Equal,
    /// `min(cap, U[base, 3·prev])`: each delay grows from the previous one
    /// rather than from the retry number.
    Decorrelated,
    /// `d·(1 ± p/1000)`, clamped to the cap: `p` in per mille, at most 1000.
    Proportional(u16),
}

impl Jitter {
    /// gRPC's backoff jitter since proposal A6's 2024 revision: ×U(0.8, 1.2).
    pub const GRPC: Jitter = Jitter::Proportional(200);

    /// The jitter's name in lower case (`"none"`, `"full"`, `"equal"`,
    /// `"decorrelated"`, `"proportional"`).
    ///
    /// ```
    /// assert_eq!(stormguard::Jitter::Full.as_str(), "full");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
            Jitter::Proportional(_) => "proportional",
        }
    }
}

/// The growth of the nominal delay with the retry number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Shape {
    Constant,
    Linear {
        step: u64,
    },
    /// The factor in unsigned 96.32 fixed point, so that `2.0` is exact and
    /// a product never needs floating point.
    Exponential {
        factor_q32: u128,
    },
}

/// A validated backoff schedule: shape, cap and jitter.
///
/// Built with [`Backoff::constant`], [`Backoff::linear`] or
/// [`Backoff::exponential`], then [`BackoffBuilder::build`]. A `Backoff` is
/// `Copy`, holds no state and no randomness: the per-call state (retry
/// number, previous delay, random generator) lives in the caller —
/// [`Retry`](crate::Retry) or the [`Delays`] iterator.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Backoff, Jitter};
///
/// let backoff = Backoff::exponential(Duration::from_millis(100), 2.0)
///     .max_delay(Duration::from_secs(1))
///     .jitter(Jitter::None)
///     .build()?;
/// let ms: Vec<u128> = backoff.delays(stormguard::Random::with_seed(7))
///     .take(6)
///     .map(|d| d.as_millis())
///     .collect();
/// assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    shape: Shape,
    base: u64,
    max: u64,
    jitter: Jitter,
}

/// The unvalidated settings of a [`Backoff`]; `build()` checks them.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Backoff, Jitter};
/// let b = Backoff::linear(Duration::from_millis(10), Duration::from_millis(10))
///     .max_delay(Duration::from_millis(50))
///     .jitter(Jitter::Equal)
///     .build()?;
/// assert_eq!(b.max_delay(), Duration::from_millis(50));
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use = "a builder does nothing until `build()`"]
pub struct BackoffBuilder {
    kind: Kind,
    base: Duration,
    step: Duration,
    factor: f64,
    max_delay: Option<Duration>,
    jitter: Jitter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Constant,
    Linear,
    Exponential,
}

/// The default `max_delay` of the growing shapes when the caller sets none.
const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(10);

impl Backoff {
    /// The same delay before every retry. Jitter defaults to
    /// [`Jitter::None`] and `max_delay` to the delay itself.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::Backoff::constant(Duration::from_millis(250)).build()?;
    /// assert_eq!(b.nominal(1_000_000), Duration::from_millis(250));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn constant(delay: Duration) -> BackoffBuilder {
        BackoffBuilder {
            kind: Kind::Constant,
            base: delay,
            step: Duration::ZERO,
            factor: 1.0,
            max_delay: None,
            jitter: Jitter::None,
        }
    }

    /// `base + n·step` before retry `n` (0-based). Jitter defaults to
    /// [`Jitter::None`]; `max_delay` to 10 s or `base`, whichever is larger.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::Backoff::linear(Duration::from_secs(1), Duration::from_secs(1)).build()?;
    /// assert_eq!(b.nominal(2), Duration::from_secs(3));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn linear(base: Duration, step: Duration) -> BackoffBuilder {
        BackoffBuilder {
            kind: Kind::Linear,
            base,
            step,
            factor: 1.0,
            max_delay: None,
            jitter: Jitter::None,
        }
    }

    /// `base·factorⁿ` before retry `n` (0-based). Jitter defaults to
    /// [`Jitter::Full`] (a safe default: a fleet must not retry in waves);
    /// `max_delay` to 10 s or `base`, whichever is larger. `factor` must be
    /// finite and at least 1; it is kept to 32 fractional bits.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::Backoff::exponential(Duration::from_millis(5), 2.0).build()?;
    /// assert_eq!(b.nominal(3), Duration::from_millis(40));
    /// assert_eq!(b.jitter(), stormguard::Jitter::Full);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn exponential(base: Duration, factor: f64) -> BackoffBuilder {
        BackoffBuilder {
            kind: Kind::Exponential,
            base,
            step: Duration::ZERO,
            factor,
            max_delay: None,
            jitter: Jitter::Full,
        }
    }

    /// The nominal delay before retry `n` (0-based), capped, before jitter.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::Backoff::exponential(Duration::from_millis(1), 10.0)
    ///     .max_delay(Duration::from_secs(60))
    ///     .build()?;
    /// assert_eq!(b.nominal(2), Duration::from_millis(100));
    /// assert_eq!(b.nominal(u32::MAX), Duration::from_secs(60));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn nominal(&self, n: u32) -> Duration {
        Duration::from_nanos(self.nominal_nanos(n))
    }

    const fn nominal_nanos(&self, n: u32) -> u64 {
        let raw = match self.shape {
            Shape::Constant => self.base,
            Shape::Linear { step } => self.base.saturating_add(step.saturating_mul(n as u64)),
            Shape::Exponential { factor_q32 } => {
                exponential_nanos(self.base, factor_q32, n, self.max)
            }
        };
        if raw < self.max {
            raw
        } else {
            self.max
        }
    }

    /// The jittered delay before retry `n` (0-based).
    ///
    /// `prev` is the delay this function returned for the previous retry
    /// (only [`Jitter::Decorrelated`] uses it; pass `Duration::ZERO` for the
    /// first retry, or after a server-given delay restarted the sequence).
    /// The result never exceeds [`max_delay`](Backoff::max_delay).
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::Backoff::exponential(Duration::from_millis(100), 2.0).build()?;
    /// let mut rng = stormguard::Random::with_seed(1);
    /// let d = b.delay(3, Duration::ZERO, &mut rng);
    /// assert!(d <= Duration::from_millis(800));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn delay(&self, n: u32, prev: Duration, rng: &mut Random) -> Duration {
        Duration::from_nanos(self.delay_nanos(n, duration_to_nanos(prev), rng))
    }

    #[inline]
    pub(crate) fn delay_nanos(&self, n: u32, prev: u64, rng: &mut Random) -> u64 {
        match self.jitter {
            Jitter::None => self.nominal_nanos(n),
            Jitter::Full => rng.u64(0..=self.nominal_nanos(n)),
            Jitter::Equal => {
                let d = self.nominal_nanos(n);
                let half = d / 2;
                half + rng.u64(0..=d - half)
            }
            Jitter::Decorrelated => {
                let prev = if prev < self.base { self.base } else { prev };
                let hi = prev.saturating_mul(3);
                let d = rng.u64(self.base..=hi);
                d.min(self.max)
            }
            Jitter::Proportional(per_mille) => {
                let d = self.nominal_nanos(n);
                let spread = (d as u128 * per_mille as u128 / 1000) as u64;
                rng.u64(d - spread..=d.saturating_add(spread)).min(self.max)
            }
        }
    }

    /// An endless iterator over the jittered delays before retry 0, 1, 2, …
    ///
    /// Seed the generator to make the schedule reproducible (in tests);
    /// seed it differently per client in production, or a fleet jitters in
    /// lock-step.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::Backoff::exponential(Duration::from_millis(100), 2.0).build()?;
    /// let a: Vec<_> = b.delays(stormguard::Random::with_seed(42)).take(5).collect();
    /// let again: Vec<_> = b.delays(stormguard::Random::with_seed(42)).take(5).collect();
    /// assert_eq!(a, again);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn delays(&self, rng: Random) -> Delays {
        Delays {
            backoff: *self,
            n: 0,
            prev: 0,
            rng,
        }
    }

    /// The first nominal delay.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::Backoff::constant(Duration::from_secs(1)).build()?;
    /// assert_eq!(b.base(), Duration::from_secs(1));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn base(&self) -> Duration {
        Duration::from_nanos(self.base)
    }

    /// The cap no delay exceeds, jitter included.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::Backoff::exponential(Duration::from_secs(1), 2.0).build()?;
    /// assert_eq!(b.max_delay(), Duration::from_secs(10));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn max_delay(&self) -> Duration {
        Duration::from_nanos(self.max)
    }

    /// The jitter applied to each delay.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::Backoff::constant(Duration::from_secs(1)).build()?;
    /// assert_eq!(b.jitter(), stormguard::Jitter::None);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }
}

impl Default for Backoff {
    /// Exponential from 100 ms, factor 2, capped at 10 s, full jitter.
    fn default() -> Self {
        // Built when the crate compiles: invalid defaults fail the build.
        const DEFAULT: Backoff = match Backoff::exponential(Duration::from_millis(100), 2.0)
            .max_delay(Duration::from_secs(10))
            .jitter(Jitter::Full)
            .build()
        {
            Ok(backoff) => backoff,
            Err(_) => panic!("the default backoff is invalid"),
        };
        DEFAULT
    }
}

impl BackoffBuilder {
    /// Caps every delay, jitter included.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::Backoff::exponential(Duration::from_secs(1), 3.0)
    ///     .max_delay(Duration::from_secs(5))
    ///     .build()?;
    /// assert_eq!(b.nominal(10), Duration::from_secs(5));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = Some(max_delay);
        self
    }

    /// Sets the jitter.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Backoff, Jitter};
    /// let b = Backoff::exponential(Duration::from_secs(1), 2.0).jitter(Jitter::GRPC).build()?;
    /// assert_eq!(b.jitter(), Jitter::Proportional(200));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field when: `backoff.factor` is NaN,
    /// infinite, zero or negative (a factor below 1 shrinks the delays, as
    /// gRPC A6 allows); `backoff.base` is zero for an exponential shape
    /// or for decorrelated jitter (the delay could never grow);
    /// `backoff.max_delay` is below the base; `backoff.jitter` is a
    /// proportion above 1000 per mille.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::Backoff;
    /// let err = Backoff::exponential(Duration::from_secs(2), 2.0)
    ///     .max_delay(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "backoff.max_delay");
    /// ```
    pub const fn build(self) -> Result<Backoff, ConfigError> {
        let base = duration_to_nanos(self.base);
        let shape = match self.kind {
            Kind::Constant => Shape::Constant,
            Kind::Linear => Shape::Linear {
                step: duration_to_nanos(self.step),
            },
            Kind::Exponential => {
                if !self.factor.is_finite() {
                    return Err(ConfigError::new(
                        "backoff.factor",
                        ConfigErrorKind::NotFinite,
                    ));
                }
                if self.factor <= 0.0 {
                    return Err(ConfigError::new(
                        "backoff.factor",
                        ConfigErrorKind::OutOfRange("greater than 0"),
                    ));
                }
                if base == 0 {
                    return Err(ConfigError::new("backoff.base", ConfigErrorKind::Zero));
                }
                // `as` saturates: a factor beyond 2^96 is as good as infinite
                // here, since 1 ns × 2^96 is far beyond any u64 cap. A
                // positive factor below 2^-32 keeps the smallest fraction
                // instead of rounding to zero, which `build` refuses: the
                // backoff stays one that `BackoffBuilder::from` rebuilds.
                let factor_q32 = (self.factor * 4_294_967_296.0) as u128;
                Shape::Exponential {
                    factor_q32: if factor_q32 == 0 { 1 } else { factor_q32 },
                }
            }
        };
        if base == 0 && matches!(self.jitter, Jitter::Decorrelated) {
            return Err(ConfigError::new("backoff.base", ConfigErrorKind::Zero));
        }
        if let Jitter::Proportional(per_mille) = self.jitter {
            if per_mille > 1000 {
                return Err(ConfigError::new(
                    "backoff.jitter",
                    ConfigErrorKind::OutOfRange("a proportion of at most 1000 per mille"),
                ));
            }
        }
        let max = match self.max_delay {
            Some(max) => duration_to_nanos(max),
            None => match self.kind {
                Kind::Constant => base,
                _ => {
                    let default = duration_to_nanos(DEFAULT_MAX_DELAY);
                    if base > default {
                        base
                    } else {
                        default
                    }
                }
            },
        };
        if max < base {
            return Err(ConfigError::new(
                "backoff.max_delay",
                ConfigErrorKind::OutOfRange("at least backoff.base"),
            ));
        }
        Ok(Backoff {
            shape,
            base,
            max,
            jitter: self.jitter,
        })
    }
}

impl From<Backoff> for BackoffBuilder {
    fn from(b: Backoff) -> Self {
        let (kind, step, factor) = match b.shape {
            Shape::Constant => (Kind::Constant, 0, 1.0),
            Shape::Linear { step } => (Kind::Linear, step, 1.0),
            Shape::Exponential { factor_q32 } => {
                (Kind::Exponential, 0, factor_q32 as f64 / 4_294_967_296.0)
            }
        };
        BackoffBuilder {
            kind,
            base: Duration::from_nanos(b.base),
            step: Duration::from_nanos(step),
            factor,
            max_delay: Some(Duration::from_nanos(b.max)),
            jitter: b.jitter,
        }
    }
}

/// `min(cap, base·factorⁿ)` by binary exponentiation in 96.32 fixed point:
/// O(log n) multiplications, each checked, and an early exit at the cap.
const fn exponential_nanos(base: u64, factor_q32: u128, n: u32, cap: u64) -> u64 {
    if base >= cap {
        return cap;
    }
    let cap_wide = cap as u128;
    let mut result = base as u128;
    // factor^(2^i), saturating: once it overflows it is beyond any cap.
    let mut power = factor_q32;
    let mut e = n;
    while e > 0 {
        if e & 1 == 1 {
            result = match result.checked_mul(power) {
                Some(p) => p >> 32,
                None => return cap,
            };
            if result >= cap_wide {
                return cap;
            }
        }
        e >>= 1;
        if e > 0 {
            power = match power.checked_mul(power) {
                Some(p) => p >> 32,
                None => u128::MAX,
            };
        }
    }
    result as u64
}

/// An endless iterator over a [`Backoff`]'s jittered delays.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Backoff, Jitter};
/// let b = Backoff::constant(Duration::from_millis(10)).build()?;
/// assert!(b.delays(stormguard::Random::with_seed(0)).take(3).all(|d| d == Duration::from_millis(10)));
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Delays {
    backoff: Backoff,
    n: u32,
    prev: u64,
    rng: Random,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let d = self.backoff.delay_nanos(self.n, self.prev, &mut self.rng);
        self.n = self.n.saturating_add(1);
        self.prev = d;
        Some(Duration::from_nanos(d))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::random::Random as Rng;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    fn exp(base_ms: u64, factor: f64, cap_ms: u64, jitter: Jitter) -> Backoff {
        Backoff::exponential(Duration::from_millis(base_ms), factor)
            .max_delay(Duration::from_millis(cap_ms))
            .jitter(jitter)
            .build()
            .unwrap()
    }

    #[test]
    fn doubling_schedule_without_jitter() {
        // Base 100 ms, factor 2: 100, 200, 400, 800, 1600 ms.
        let b = exp(100, 2.0, 60_000, Jitter::None);
        let ms: Vec<u64> = (0..5).map(|n| b.nominal_nanos(n) / MS).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600]);
    }

    #[test]
    fn aws_standard_mode_schedule_is_full_jitter_under_20s() {
        // AWS SDK standard mode: rand[0,1) · min(2^i · 1 s, 20 s).
        let b = exp(1000, 2.0, 20_000, Jitter::Full);
        let nominal: Vec<u64> = (0..7).map(|n| b.nominal_nanos(n) / MS).collect();
        assert_eq!(nominal, [1000, 2000, 4000, 8000, 16000, 20000, 20000]);
        let mut rng = Rng::with_seed(3);
        for n in 0..50 {
            assert!(b.delay_nanos(n, 0, &mut rng) <= 20_000 * MS);
        }
    }

    #[test]
    fn linear_and_constant() {
        let b = Backoff::linear(Duration::from_millis(100), Duration::from_millis(50))
            .max_delay(Duration::from_millis(300))
            .build()
            .unwrap();
        let ms: Vec<u64> = (0..6).map(|n| b.nominal_nanos(n) / MS).collect();
        assert_eq!(ms, [100, 150, 200, 250, 300, 300]);
        let c = Backoff::constant(Duration::from_millis(7)).build().unwrap();
        assert_eq!(c.nominal_nanos(u32::MAX), 7 * MS);
        let zero = Backoff::constant(Duration::ZERO).build().unwrap();
        assert_eq!(zero.delays(Rng::with_seed(1)).next(), Some(Duration::ZERO));
    }

    #[test]
    fn grpc_jitter_stays_within_twenty_percent() {
        let b = exp(1000, 1.0, 10_000, Jitter::GRPC);
        let mut rng = Rng::with_seed(9);
        let (mut lo, mut hi) = (u64::MAX, 0);
        for _ in 0..10_000 {
            let d = b.delay_nanos(0, 0, &mut rng);
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert!((800 * MS..810 * MS).contains(&lo), "{lo}");
        assert!((1190 * MS + 1..=1200 * MS).contains(&hi), "{hi}");
    }

    #[test]
    fn equal_jitter_keeps_the_lower_half() {
        let b = exp(1000, 2.0, 10_000, Jitter::Equal);
        let mut rng = Rng::with_seed(4);
        let (mut lo, mut hi) = (u64::MAX, 0);
        for _ in 0..1000 {
            let d = b.delay_nanos(1, 0, &mut rng);
            assert!((1000 * MS..=2000 * MS).contains(&d));
            lo = lo.min(d);
            hi = hi.max(d);
        }
        // And covers the upper half: 1000 draws reach both ends' tenths.
        assert!(lo < 1100 * MS && hi > 1900 * MS, "[{lo}, {hi}]");
    }

    #[test]
    fn delays_never_end() {
        let b = exp(100, 2.0, 60_000, Jitter::Full);
        let delays = b.delays(Rng::with_seed(3));
        assert_eq!(delays.size_hint(), (usize::MAX, None));
        assert_eq!(delays.skip(10_000).take(3).count(), 3);
    }

    #[test]
    fn jitter_names() {
        let names = [
            (Jitter::None, "none"),
            (Jitter::Full, "full"),
            (Jitter::Equal, "equal"),
            (Jitter::Decorrelated, "decorrelated"),
            (Jitter::Proportional(10), "proportional"),
        ];
        for (jitter, name) in names {
            assert_eq!(jitter.as_str(), name);
        }
    }

    #[test]
    fn the_default_cap() {
        let s = Duration::from_secs;
        // A constant backoff's cap is its delay; the others' is 10 s, or the
        // base when that is longer.
        let constant = Backoff::constant(s(1)).jitter(Jitter::Decorrelated).build();
        assert_eq!(constant.unwrap().max_delay(), s(1));
        assert_eq!(
            Backoff::linear(s(1), s(1)).build().unwrap().max_delay(),
            s(10)
        );
        let long = Backoff::exponential(s(30), 2.0).build().unwrap();
        assert_eq!(long.max_delay(), s(30));
        let ten = Backoff::exponential(s(10), 2.0).build().unwrap();
        assert_eq!(ten.max_delay(), s(10));
    }

    #[test]
    fn proportional_jitter_up_to_a_thousand_per_mille() {
        let b = Backoff::constant(Duration::from_secs(1));
        assert!(b.jitter(Jitter::Proportional(1000)).build().is_ok());
        let err = b.jitter(Jitter::Proportional(1001)).build().unwrap_err();
        assert_eq!(err.field(), "backoff.jitter");
    }

    #[test]
    fn delay_is_delay_nanos_in_a_duration() {
        let b = exp(100, 2.0, 60_000, Jitter::None);
        let mut rng = Rng::with_seed(1);
        assert_eq!(
            b.delay(3, Duration::ZERO, &mut rng),
            Duration::from_millis(800)
        );
        let b = exp(100, 2.0, 60_000, Jitter::Decorrelated);
        let (mut a, mut c) = (Rng::with_seed(9), Rng::with_seed(9));
        let prev = Duration::from_millis(300);
        assert_eq!(
            b.delay(0, prev, &mut a).as_nanos() as u64,
            b.delay_nanos(0, 300 * MS, &mut c)
        );
    }

    #[test]
    fn decorrelated_grows_from_the_previous_delay() {
        let b = exp(10, 2.0, 1_000, Jitter::Decorrelated);
        let mut prev = 0;
        let mut rng = Rng::with_seed(5);
        for n in 0..100 {
            let d = b.delay_nanos(n, prev, &mut rng);
            let lo = 10 * MS;
            let hi = (prev.max(lo) * 3).min(1_000 * MS);
            assert!(d >= lo.min(hi) && d <= hi, "{d} not in [{lo}, {hi}]");
            prev = d;
        }
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let b = Backoff::default();
        let a: Vec<_> = b.delays(Rng::with_seed(1)).take(8).collect();
        let again: Vec<_> = b.delays(Rng::with_seed(1)).take(8).collect();
        let other: Vec<_> = b.delays(Rng::with_seed(2)).take(8).collect();
        assert_eq!(a, again);
        assert_ne!(a, other);
    }

    #[test]
    fn invalid_settings_name_their_field() {
        let d = Duration::from_millis(100);
        let field = |b: BackoffBuilder| b.build().unwrap_err().field();
        assert_eq!(field(Backoff::exponential(d, f64::NAN)), "backoff.factor");
        assert_eq!(
            field(Backoff::exponential(d, f64::INFINITY)),
            "backoff.factor"
        );
        assert_eq!(field(Backoff::exponential(d, 0.0)), "backoff.factor");
        assert_eq!(field(Backoff::exponential(d, -2.0)), "backoff.factor");
        // A factor below 1 shrinks the delays (gRPC A6 allows it).
        let shrinking = Backoff::exponential(d, 0.5).build().unwrap();
        assert_eq!(shrinking.nominal(1), Duration::from_millis(50));
        assert_eq!(shrinking.nominal(3), Duration::from_micros(12_500));
        assert_eq!(
            field(Backoff::exponential(Duration::ZERO, 2.0)),
            "backoff.base"
        );
        assert_eq!(
            field(Backoff::constant(Duration::ZERO).jitter(Jitter::Decorrelated)),
            "backoff.base"
        );
        assert_eq!(
            field(Backoff::linear(d, d).max_delay(Duration::from_millis(1))),
            "backoff.max_delay"
        );
        assert_eq!(
            field(Backoff::constant(d).jitter(Jitter::Proportional(1001))),
            "backoff.jitter"
        );
    }

    #[test]
    fn builder_round_trips_through_from() {
        let b = exp(100, 1.5, 5_000, Jitter::Equal);
        assert_eq!(BackoffBuilder::from(b).build().unwrap(), b);
    }

    /// Found by the `builders` fuzz target: a positive factor below 2^-32
    /// was kept as zero, so the built backoff's builder (`From`) held a
    /// factor of 0.0, which `build` refuses.
    #[test]
    fn a_tiny_positive_factor_round_trips() {
        for factor in [1e-12, f64::MIN_POSITIVE, 2.0f64.powi(-33)] {
            let b = exp(100, factor, 5_000, Jitter::None);
            assert_eq!(BackoffBuilder::from(b).build(), Ok(b), "{factor}");
            assert_eq!(b.nominal(0), Duration::from_millis(100));
            assert_eq!(b.nominal(1), Duration::ZERO);
        }
    }

    #[test]
    fn const_construction_works_in_a_static() {
        static B: Backoff = match Backoff::exponential(Duration::from_millis(1), 2.0).build() {
            Ok(b) => b,
            Err(_) => panic!("invalid"),
        };
        assert_eq!(B.nominal(3), Duration::from_millis(8));
    }

    fn any_jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
            (0u16..=1000).prop_map(Jitter::Proportional),
        ]
    }

    fn any_backoff() -> impl Strategy<Value = Backoff> {
        let base = prop_oneof![1u64..1_000, 1u64..10_000_000_000, 1u64..=u64::MAX];
        let factor = prop_oneof![1.0f64..1.01, 1.0f64..4.0, 1.0f64..1e12, Just(f64::MAX)];
        (
            0u8..3,
            base,
            factor,
            any::<u64>(),
            any::<u64>(),
            any_jitter(),
        )
            .prop_map(|(kind, base, factor, step, extra, jitter)| {
                let builder = match kind {
                    0 => Backoff::constant(Duration::from_nanos(base)),
                    1 => Backoff::linear(Duration::from_nanos(base), Duration::from_nanos(step)),
                    _ => Backoff::exponential(Duration::from_nanos(base), factor),
                };
                builder
                    .max_delay(Duration::from_nanos(base.saturating_add(extra % (1 << 40))))
                    .jitter(jitter)
                    .build()
                    .unwrap()
            })
    }

    proptest! {
        #[test]
        fn never_above_the_cap(b in any_backoff(), n in any::<u32>(), prev in any::<u64>(), seed in any::<u64>()) {
            let mut rng = Rng::with_seed(seed);
            prop_assert!(b.nominal_nanos(n) <= b.max);
            prop_assert!(b.delay_nanos(n, prev, &mut rng) <= b.max);
        }

        #[test]
        fn huge_retry_numbers_reach_the_cap(b in any_backoff()) {
            // Whenever the exact value base·factor^(2^32-1) is clearly above
            // the cap, the fixed-point computation reaches the cap too.
            let ln_cap = (b.max as f64).ln();
            let clearly_above = match b.shape {
                Shape::Constant => false,
                Shape::Linear { step } => (b.base as f64 + step as f64 * u32::MAX as f64).ln() > ln_cap + 0.1,
                Shape::Exponential { factor_q32 } => {
                    let factor = factor_q32 as f64 / 4_294_967_296.0;
                    (b.base as f64).ln() + u32::MAX as f64 * factor.ln() > ln_cap + 0.1
                }
            };
            if clearly_above {
                prop_assert_eq!(b.nominal_nanos(u32::MAX), b.max);
            }
        }

        #[test]
        fn exponential_matches_a_float_reference(
            base_us in 1u64..1_000_000,
            factor in 1.0f64..3.0,
            n in 0u32..40,
            cap_s in 1u64..100_000,
        ) {
            let b = Backoff::exponential(Duration::from_micros(base_us), factor)
                .max_delay(Duration::from_secs(cap_s).max(Duration::from_micros(base_us)))
                .build()
                .unwrap();
            let reference = (base_us as f64 * 1000.0 * factor.powi(n as i32)).min(b.max as f64);
            let got = b.nominal_nanos(n) as f64;
            // Every step rounds down: the factor to 32 fractional bits, each
            // squaring of it (an error that doubles with each squaring: 2n
            // units of 2^-32 in all, and n more for the factor itself), and
            // each of the popcount(n) multiplications of the result to whole
            // nanoseconds — an error of at most 1 ns in a value of at least
            // `base`, so a relative 1/base that the later factors carry along.
            // So the schedule is never above the exact one (but for the
            // float reference's own rounding, under a nanosecond), and below
            // it by at most that relative error.
            let base_ns = base_us as f64 * 1000.0;
            let relative = f64::from(n.count_ones()) / base_ns
                + 3.0 * (f64::from(n) + 1.0) / 4_294_967_296.0;
            prop_assert!(got <= reference + 1.0, "{} above {}", got, reference);
            prop_assert!(reference - got <= reference * relative + 1.0, "{} vs {}", got, reference);
        }

        #[test]
        fn linear_matches_saturating_reference(base in any::<u64>(), step in any::<u64>(), n in any::<u32>(), cap in any::<u64>()) {
            let cap = cap.max(base);
            let b = Backoff::linear(Duration::from_nanos(base), Duration::from_nanos(step))
                .max_delay(Duration::from_nanos(cap))
                .build()
                .unwrap();
            let reference = (base as u128 + step as u128 * n as u128).min(cap as u128) as u64;
            prop_assert_eq!(b.nominal_nanos(n), reference);
        }

        #[test]
        fn full_jitter_stays_below_nominal(b in any_backoff(), n in 0u32..64, seed in any::<u64>()) {
            let b = Backoff { jitter: Jitter::Full, ..b };
            let mut rng = Rng::with_seed(seed);
            prop_assert!(b.delay_nanos(n, 0, &mut rng) <= b.nominal_nanos(n));
        }
    }
}
